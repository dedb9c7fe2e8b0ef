"""Crash and I/O-error safety: an import killed (SIGKILL) or failing with EIO at each durability
boundary, or killed at a random moment, then run again, leaves every message stored exactly once,
every keyword in place and fsck clean. tools/crash_soak.py runs the long version (50+ random kills)."""

from __future__ import annotations

import random
import subprocess
import sys

import pytest
from conftest import ROOT

sys.path.insert(0, str(ROOT / "tools"))
import crash_soak  # noqa: E402

from lei_store.write.faults import POINTS


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    base = tmp_path_factory.mktemp("crash")
    corpus = crash_soak.make_corpus(base / "corpus")
    store = base / "reference" / "store"
    assert crash_soak.run_all(store, corpus) == [0, 0]
    return corpus, crash_soak.state(store)


@pytest.mark.parametrize("point", POINTS)
def test_sigkill_at_each_boundary(reference, tmp_path, point):
    corpus, ref = reference
    ok, what = crash_soak.check_case(tmp_path, corpus, ref, fault=f"{point}:{crash_soak.NTH[point]}")
    assert ok, what
    assert "-9" in what  # the fault really fired


@pytest.mark.parametrize("point", ["blob-written", "git-checkpoint", "journal-commit", "xapian-commit",
                                   "over-commit"])
def test_io_error_at_a_boundary_is_one_line_and_recoverable(reference, tmp_path, point):
    corpus, ref = reference
    store = tmp_path / "store"
    cmd = crash_soak.imports(store, corpus)[0]
    r = subprocess.run(cmd, env=crash_soak._env(f"{point}:{crash_soak.NTH[point]}:eio"), capture_output=True)
    err = r.stderr.decode()
    assert r.returncode == 74 and err.count("\n") == 1 and "injected I/O error" in err, err
    ok, what = crash_soak.check_case(tmp_path, corpus, ref)
    assert ok, what


@pytest.mark.parametrize("seed", range(6))
def test_sigkill_at_a_random_moment(reference, tmp_path, seed):
    corpus, ref = reference
    ok, what = crash_soak.check_case(tmp_path, corpus, ref, kill_after=random.Random(seed).uniform(0.1, 2.0))
    assert ok, what


def test_failed_tag_batch_keeps_nothing(reference, tmp_path):
    """An error before the journal commit must not leave the change in Xapian (it would never be
    journaled, and the next reindex would drop it)."""
    from conftest import run_cli

    corpus, _ = reference
    store = tmp_path / "store"
    run_cli("import", "--store", str(store), "-q", f"mboxrd:{corpus / 'sample.mboxrd'}")
    r = subprocess.run([sys.executable, "-m", "lei_store", "tag", "--store", str(store), "-q", "z:1..", "+L:foo"],
                       env=crash_soak._env("journal-record:1:eio"), capture_output=True)
    assert r.returncode == 74
    assert run_cli("q", "--store", str(store), "L:foo", "-f", "jsonl").stdout == b""
    run_cli("tag", "--store", str(store), "--quiet", "-q", "z:1..", "+L:foo")
    run_cli("reindex", "--store", str(store), "-q")
    assert len(run_cli("q", "--store", str(store), "L:foo", "-f", "jsonl", "--dedupe=none").stdout.splitlines()) > 200


def test_rm_killed_between_commits_stays_removed_and_repairable(reference, tmp_path):
    from conftest import run_cli

    corpus, _ = reference
    store = tmp_path / "store"
    mbox = f"mboxrd:{corpus / 'sample.mboxrd'}"
    run_cli("import", "--store", str(store), "-q", mbox)
    hits = lambda: len(run_cli("q", "--store", str(store), "a:carol*", "-f", "jsonl", "--dedupe=none").stdout.splitlines())
    assert hits() > 10
    r = subprocess.run([sys.executable, "-m", "lei_store", "rm", "--store", str(store), "-q", "a:carol*"],
                       env=crash_soak._env("xapian-commit:1"), capture_output=True)
    assert r.returncode == -9
    assert hits() == 0  # the rows went first: removed, and no unsearchable rows are left behind
    run_cli("fsck", "--store", str(store), "--repair")  # leftover documents are only derived data
    assert run_cli("fsck", "--store", str(store)).returncode == 0
    run_cli("import", "--store", str(store), "-q", mbox)  # importing them again brings them back
    assert hits() > 10


def test_the_next_writer_indexes_what_a_killed_one_left_in_git(reference, tmp_path):
    """Killed after a batch's git checkpoint, before its index commit: git holds commits the index
    does not. The next writer, whatever it is, indexes them; nothing is committed twice."""
    from conftest import run_cli
    from storecheck import commits, over_rows

    corpus, ref = reference
    store = tmp_path / "store"
    r = subprocess.run(crash_soak.imports(store, corpus)[0], env=crash_soak._env("journal-record:2"),
                       capture_output=True)
    assert r.returncode == -9
    in_git = commits(store)
    assert in_git > len(over_rows(store))  # the killed batch is in git only
    run_cli("tag", "--store", str(store), "--quiet", "-q", "z:1..", "+L:later")
    assert len(over_rows(store)) == in_git and commits(store) == in_git
    labelled = run_cli("q", "--store", str(store), "L:later", "-f", "jsonl", "--dedupe=none").stdout
    assert len(labelled.splitlines()) == in_git  # the tag saw them: they were indexed first
    assert crash_soak.run_all(store, corpus) == [0, 0]
    assert commits(store) == ref[3]


def test_killed_while_the_feed_records_an_old_store(reference, tmp_path):
    """A store from before the change feed is recorded in it by the first writer, in chunks; killed
    after one, the next writer finishes the job: every message once, fsck clean."""
    import sqlite3

    from conftest import run_cli

    corpus, _ = reference
    store = tmp_path / "store"
    run_cli("import", "--store", str(store), "-q", f"mboxrd:{corpus / 'sample.mboxrd'}")
    db = sqlite3.connect(store / "journal.sqlite3")  # as a journal from before the feed
    for table in ("messages", "blobs", "members", "vanished"):
        db.execute(f"DELETE FROM {table}")
    db.execute("DELETE FROM settings WHERE key IN ('backfilled', 'usage_bytes', 'usage_messages')")
    db.commit()
    db.close()
    r = subprocess.run([sys.executable, "-m", "lei_store", "tag", "--store", str(store), "--quiet", "-q", "z:1..",
                        "+L:x"], env=crash_soak._env("feed-backfill:1"), capture_output=True)
    assert r.returncode == -9
    run_cli("tag", "--store", str(store), "--quiet", "-q", "s:scrub", "+L:y")
    assert run_cli("fsck", "--store", str(store)).returncode == 0


def test_killed_while_expunging(reference, tmp_path):
    from conftest import run_cli

    corpus, _ = reference
    store = tmp_path / "store"
    run_cli("import", "--store", str(store), "-q", "--rotate-bytes", "60000", str(corpus / "maildir"))
    run_cli("purge", "--store", str(store), "-q", "s:scrub")
    r = subprocess.run([sys.executable, "-m", "lei_store", "gc", "--store", str(store), "--expunge", "-q"],
                       env=crash_soak._env("expunge-rewritten:1"), capture_output=True)
    assert r.returncode == -9
    run_cli("gc", "--store", str(store), "--expunge", "-q")  # run again: the rest of the work, once
    assert run_cli("fsck", "--store", str(store)).returncode == 0
    run_cli("import", "--store", str(store), "-q", f"mboxrd:{corpus / 'sample.mboxrd'}")  # a writer after it
    assert run_cli("fsck", "--store", str(store)).returncode == 0
