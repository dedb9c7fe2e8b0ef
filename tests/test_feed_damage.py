"""The change feed when its journal is lost, emptied or damaged, or the store goes away: the
keywords and labels are never dropped (fsck says so, repair and reindex rebuild the journal from
the index first), every follower is told to resync, and a watcher ends with one line."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import run_cli


@pytest.fixture
def store(sample_corpus, tmp_path) -> Path:
    s = tmp_path / "store"
    run_cli("import", "--store", str(s), "-q", str(shutil.copytree(sample_corpus / "maildir", tmp_path / "md")))
    run_cli("tag", "--store", str(s), "--quiet", "-q", "s:scrub", "+kw:flagged", "+L:keepme")
    return s


def hits(store: Path, query: str) -> int:
    return len(run_cli("q", "--store", str(store), "-f", "jsonl", "--dedupe=none", query).stdout.splitlines())


def highest(store: Path) -> int:
    """Where a follower that has just read the state follows from (the resync line names it)."""
    r = run_cli("changes", "--store", str(store), "--since", "0", check=False)
    if r.returncode == 3:
        return int(r.stderr.decode().split("follow from ")[1].split(",")[0])
    return int(r.stdout.split()[-1])


def mailbox_names(store: Path) -> set[str]:
    return {line.split("\t")[0] for line in run_cli("mailboxes", "--store", str(store)).stdout.decode().splitlines()}


def lose_journal(store: Path) -> None:
    for f in store.glob("journal.sqlite3*"):
        f.unlink()


@pytest.mark.parametrize("how", ["deleted", "emptied"])
def test_a_lost_journal_is_an_error_and_reindex_keeps_the_keywords(store, how):
    flagged, labelled = hits(store, "kw:flagged"), hits(store, "L:keepme")
    old = highest(store)
    lose_journal(store)
    if how == "emptied":
        (store / "journal.sqlite3").write_bytes(b"")
        r = run_cli("mailboxes", "--store", str(store), check=False)
        assert r.returncode == 65 and b"fsck --repair" in r.stderr and b"Traceback" not in r.stderr
    r = run_cli("fsck", "--store", str(store), check=False)
    assert r.returncode == 2 and b"journal missing" in r.stdout
    r = run_cli("reindex", "--store", str(store))
    assert b"journal.sqlite3 was missing: rebuilt" in r.stderr
    assert hits(store, "kw:flagged") == flagged and hits(store, "L:keepme") == labelled
    assert {"All", "keepme"} <= mailbox_names(store)  # the feed is whole at once, not at the next write
    assert run_cli("changes", "--store", str(store), "--since", str(old), check=False).returncode == 3
    assert run_cli("fsck", "--store", str(store)).returncode == 0


def test_fsck_repair_rebuilds_a_lost_journal(store):
    old = highest(store)
    lose_journal(store)
    r = run_cli("changes", "--store", str(store), "--since", str(old), check=False)
    assert r.returncode == 3 and b"resync needed" in r.stderr
    run_cli("fsck", "--store", str(store), "--repair")
    assert run_cli("fsck", "--store", str(store)).returncode == 0
    assert {"All", "keepme"} <= mailbox_names(store)
    run_cli("reindex", "--store", str(store), "-q")
    assert hits(store, "L:keepme") > 10


def test_followers_resync_after_a_damaged_journal_is_rebuilt(store):
    """A rebuilt journal numbers its changes past any the lost one gave out: a follower's old modseq
    gets "resync needed" now and after later writes, never a silent run of renumbered changes."""
    old = highest(store)
    (store / "journal.sqlite3").write_bytes(b"garbage " * 5000)
    for f in store.glob("journal.sqlite3-*"):
        f.unlink()
    run_cli("fsck", "--store", str(store), "--repair")
    for _ in range(2):
        r = run_cli("changes", "--store", str(store), "--since", str(old), check=False)
        assert r.returncode == 3 and b"resync needed" in r.stderr
        run_cli("tag", "--store", str(store), "--quiet", "-q", "s:balance", "+L:later")
    now = highest(store)
    assert now > old and run_cli("changes", "--store", str(store), "--since", str(now)).returncode == 0
    r = run_cli("changes", "--store", str(store), "--since", str(now + 1), check=False)
    assert r.returncode == 3 and b"beyond" in r.stderr and str(now).encode() in r.stderr


def test_a_feed_reset_tells_a_follower_that_was_up_to_date(store):
    """fsck --repair of the feed's tables alone: even a follower at the highest modseq resyncs (its
    UIDs are the old UIDVALIDITY's), and one that reads the state afterwards follows from there."""
    import sqlite3

    old = highest(store)
    db = sqlite3.connect(store / "journal.sqlite3")
    db.execute("UPDATE members SET seen = 1 - seen")  # the feed out of step with the index
    db.commit()
    db.close()
    run_cli("fsck", "--store", str(store), "--repair")
    assert run_cli("changes", "--store", str(store), "--since", str(old), check=False).returncode == 3
    now = highest(store)
    assert now > old and run_cli("changes", "--store", str(store), "--since", str(now)).returncode == 0


def test_a_watcher_ends_with_one_line_when_the_store_goes(store):
    watch = subprocess.Popen([sys.executable, "-m", "lei_store", "watch", "--store", str(store), "--since",
                              str(highest(store))], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    time.sleep(1.0)
    store.rename(store.with_name("elsewhere"))  # moved away (rm -rf races with the watcher's reads)
    try:
        _, err = watch.communicate(timeout=10)
    finally:
        watch.kill()
    assert watch.returncode == 1 and len(err.splitlines()) == 1 and b"gone" in err, err


def test_a_read_only_journal_is_permission_denied(sample_corpus, tmp_path):
    """Writes into a store whose journal the user may not write: exit 77 and one line (it was 70,
    an "internal error"); the store stays as it was."""
    import os

    from conftest import as_unprivileged_user

    with as_unprivileged_user(tmp_path) as (prefix, base):
        s = base / "store"
        run_cli("import", "--store", str(s), "-q", str(shutil.copytree(sample_corpus / "maildir", base / "md")))
        if prefix:
            for top, dirs, files in os.walk(base):
                for name in dirs + files:
                    os.chown(os.path.join(top, name), 65534, 65534)
        (s / "journal.sqlite3").chmod(0o444)
        before = hits(s, "L:ro")
        cmd = [*prefix, sys.executable, "-m", "lei_store", "tag", "--store", str(s), "-q", "s:scrub", "+L:ro"]
        r = subprocess.run(cmd, capture_output=True, env=dict(os.environ, HOME=str(base)), cwd=base, timeout=120)
        assert r.returncode == 77 and len(r.stderr.splitlines()) == 1 and b"permission denied" in r.stderr, r.stderr
        assert hits(s, "L:ro") == before == 0
