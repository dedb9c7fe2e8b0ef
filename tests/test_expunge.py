"""Retention: `purge` removes what a query finds (tombstones in the feed), `gc --expunge` drops the
purged blobs from git itself by rewriting only the epochs that hold them; every other message
keeps its blob and keywords, real lei still answers, and a replica's fetch converges."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import Lei, need_lei, run_cli
from storecheck import commits, xref3


def answers(store: Path) -> dict[str, tuple]:
    out = run_cli("q", "--store", str(store), "-f", "jsonl", "--dedupe=none", "z:1..").stdout.splitlines()
    return {r["blob"]: (tuple(r.get("kw", [])), tuple(r.get("L", []))) for r in map(json.loads, out)}


def in_git(store: Path, oid: str) -> bool:
    return subprocess.run(["git", f"--git-dir={store / 'ALL.git'}", "cat-file", "-e", oid]).returncode == 0


@pytest.fixture
def store(sample_corpus, tmp_path) -> Path:
    s = tmp_path / "store"
    run_cli("import", "--store", str(s), "-q", "--rotate-bytes", "60000",  # several epochs
            str(shutil.copytree(sample_corpus / "maildir", tmp_path / "md")))
    run_cli("tag", "--store", str(s), "--quiet", "-q", "s:balance", "+L:keep", "+kw:flagged")
    return s


def purged_blobs(result: dict) -> set[str]:
    return {m["blob"] for m in result["messages"]}


def test_dry_run_lists_exactly_what_purge_removes(store):
    before = answers(store)
    dry = json.loads(run_cli("purge", "--store", str(store), "--dry-run", "--json", "s:scrub").stdout)
    assert dry["dry_run"] and len(dry["messages"]) > 10 and answers(store) == before
    done = json.loads(run_cli("purge", "--store", str(store), "--json", "s:scrub").stdout)
    assert purged_blobs(done) == purged_blobs(dry)
    assert set(answers(store)) == set(before) - purged_blobs(dry)
    rows = [json.loads(x) for x in run_cli("changes", "--store", str(store), "--json").stdout.splitlines()[:-1]]
    assert sum(c["kind"] == "removed" for c in rows) == len(dry["messages"])


def test_older_than_keeps_the_recent(store):
    assert json.loads(run_cli("purge", "--store", str(store), "--dry-run", "--json", "--older-than", "100y",
                              "z:1..").stdout)["messages"] == []
    r = run_cli("purge", "--store", str(store), "--older-than", "soon", "z:1..", check=False)
    assert r.returncode == 1 and b"not an age" in r.stderr


def test_gc_expunge_drops_purged_blobs_from_git_and_keeps_the_rest(store, tmp_path):
    keep_before = answers(store)
    epochs_before = sorted(p.name for p in (store / "local").iterdir())
    assert len(epochs_before) > 2
    done = json.loads(run_cli("purge", "--store", str(store), "--json", "s:scrub").stdout)
    gone = purged_blobs(done)
    kept = {b: v for b, v in keep_before.items() if b not in gone}
    assert all(in_git(store, b) for b in gone)  # purge alone keeps them in git
    r = json.loads(run_cli("gc", "--store", str(store), "--expunge", "--json").stdout)
    assert r["blobs_expunged"] >= len(gone) and r["epochs_rewritten"]
    last = [json.loads(x) for x in run_cli("changes", "--store", str(store), "--json").stdout.splitlines()][-2]
    assert last["kind"] == "expunged" and last["epochs"] == r["epochs_rewritten"]  # followers learn of it
    assert not any(in_git(store, b) for b in gone)  # from every pack, loose object and reflog
    for epoch in (store / "local").iterdir():
        listed = subprocess.run(["git", f"--git-dir={epoch}", "rev-list", "--all", "--objects"],
                                capture_output=True, text=True).stdout
        assert not any(b in listed for b in gone)
    assert answers(store) == kept and all(in_git(store, b) for b in kept)
    assert commits(store) == len(xref3(store))  # one m commit per indexed blob: none of a purged one is left
    assert run_cli("fsck", "--store", str(store)).returncode == 0
    assert json.loads(run_cli("gc", "--store", str(store), "--expunge", "--json").stdout)["epochs_rewritten"] == []
    run_cli("reindex", "--store", str(store), "-q")  # git alone gives the same store
    assert answers(store) == kept


def test_real_lei_and_a_replica_after_expunge(store, tmp_path):
    need_lei()
    replica = tmp_path / "replica"
    run_cli("clone", str(store), str(replica), "-q")
    done = json.loads(run_cli("purge", "--store", str(store), "--json", "s:scrub").stdout)
    run_cli("gc", "--store", str(store), "--expunge", "-q")
    reader = Lei(tmp_path / "lei")
    try:
        reader("init", str(store))
        out = reader("q", "-f", "jsonl", "--dedupe=none", "z:1..").stdout.splitlines()
        assert {json.loads(x)["blob"] for x in out} == set(answers(store))
    finally:
        reader.close()
    fetched = json.loads(run_cli("fetch", "--store", str(replica), "--json", "-q").stdout)
    assert fetched["epochs_rewritten"] and answers(replica) == answers(store)
    assert not any(in_git(replica, b) for b in purged_blobs(done))
    assert run_cli("fsck", "--store", str(replica)).returncode == 0


def test_mail_stored_again_after_its_purge_is_not_expunged(store, sample_corpus):
    """purge, then import the same mail again: those blobs are messages again, and gc --expunge
    must keep them (it dropped them and left the index pointing at missing blobs)."""
    done = json.loads(run_cli("purge", "--store", str(store), "--json", "s:scrub").stdout)
    run_cli("import", "--store", str(store), "-q", "mboxrd:" + str(sample_corpus / "sample.mboxrd"))
    back = set(answers(store))
    assert purged_blobs(done) & back
    run_cli("gc", "--store", str(store), "--expunge", "-q")
    assert all(in_git(store, b) for b in back) and set(answers(store)) == back
    assert run_cli("fsck", "--store", str(store)).returncode == 0


def test_purging_everything_then_expunge_empties_the_epochs(store, sample_corpus, tmp_path):
    """Every commit of an epoch dropped: its branch goes (fast-import alone leaves the old one),
    the blobs leave git, and the store takes the same mail again afterwards."""
    everything = set(answers(store))
    run_cli("purge", "--store", str(store), "-q", "z:1..")
    r = json.loads(run_cli("gc", "--store", str(store), "--expunge", "--json").stdout)
    assert r["blobs_expunged"] >= len(everything)
    assert not any(in_git(store, b) for b in everything) and answers(store) == {}
    assert run_cli("fsck", "--store", str(store)).returncode == 0
    run_cli("import", "--store", str(store), "-q", str(shutil.copytree(sample_corpus / "maildir", tmp_path / "again")))
    assert set(answers(store)) == everything and all(in_git(store, b) for b in everything)
    assert run_cli("fsck", "--store", str(store)).returncode == 0
    run_cli("reindex", "--store", str(store), "-q")
    assert set(answers(store)) == everything
