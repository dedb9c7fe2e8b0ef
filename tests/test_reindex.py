"""reindex: the index rebuilt from git alone answers exactly as the one built by imports did."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import run_cli

QUERIES = [["z:1.."], ["kw:seen"], ["kw:flagged"], ["L:work"], ["L:later", "OR", "kw:draft"], ["s:btrfs"],
           ["f:alice", "AND", "NOT", "s:patch"], ["d:2024-03-05..2024-03-09"], ["-t", "s:scrub"],
           ["b:question"], ["dfn:fs/btrfs/scrub.c"], ["lid:btrfs.example.org"], ["z:1..", "--dedupe=mid"]]


def answers(store: Path) -> list[list[dict]]:
    out = []
    for query in QUERIES:
        r = run_cli("q", "--store", str(store), "-f", "jsonl", "--dedupe=none", "--sort=docid", *query)
        out.append(sorted((json.loads(line) for line in r.stdout.splitlines()), key=lambda d: d["blob"]))
    return out


@pytest.fixture
def built(sample_corpus, tmp_path, monkeypatch):
    """A store with two epochs, keywords from flags, tags, and a removal."""
    monkeypatch.setenv("LEI_STORE_ROTATE_BYTES", "200000")
    store = tmp_path / "store"
    md = Path(shutil.copytree(sample_corpus / "maildir", tmp_path / "md"))
    run_cli("import", "--store", str(store), "-q", str(md))
    run_cli("import", "--store", str(store), "-q", f"mboxrd:{sample_corpus / 'sample.mboxrd'}")
    run_cli("tag", "--store", str(store), "--quiet", "-q", "s:btrfs", "+L:work", "+kw:junk")
    run_cli("tag", "--store", str(store), "--quiet", "-q", "f:carol", "+L:later", "-kw:seen")
    victim = json.loads(run_cli("q", "--store", str(store), "-f", "jsonl", "-n", "1", "s:scrub").stdout)["m"]
    r = run_cli("rm", "--store", str(store), "--json", "--quiet", "-q", f"mid:{victim}")
    assert json.loads(r.stdout)["changed"] == 1
    assert len(list((store / "local").glob("*.git"))) >= 2
    return store, victim


def test_reindex_answers_like_the_incremental_index(built):
    store, victim = built
    before = answers(store)
    assert all(before[:7]) and not any(r.get("m") == victim for r in before[0])
    r = run_cli("reindex", "--store", str(store), "--json", "-q")
    stats = json.loads(r.stdout)
    assert stats["removed"] == 1 and stats["keywords_restored"] > 100 and not stats["resumed"]
    assert answers(store) == before
    assert not (store / "ei15.reindex").exists() and not (store / "ei15.old").exists()
    assert run_cli("fsck", "--store", str(store)).returncode == 0


def test_reindex_reshards(built):
    store, _ = built
    before = answers(store)
    run_cli("reindex", "--store", str(store), "--shards", "3", "-q")
    assert sorted(p.name for p in (store / "ei15").iterdir() if p.name.isdigit()) == ["0", "1", "2"]
    assert answers(store) == before


def test_killed_reindex_resumes(built):
    store, _ = built
    before = answers(store)
    code = ("import os, sys\nfrom lei_store.ops.reindex import reindex\nseen = [0]\n"
            "def tick(n):\n    seen[0] += n\n    if seen[0] >= 120: os._exit(9)\n"
            "reindex(sys.argv[1], progress=tick, jobs=1, batch_size=25)\n")
    r = subprocess.run([sys.executable, "-c", code, str(store)], capture_output=True)
    assert r.returncode == 9
    assert (store / "ei15.reindex" / "over.sqlite3").exists()
    assert answers(store) == before  # searches still use the old index meanwhile
    r = run_cli("reindex", "--store", str(store), "--json", "-q")
    stats = json.loads(r.stdout)
    assert stats["resumed"] and 0 < stats["messages"] < 240  # only what the killed run had not committed
    assert answers(store) == before


def test_reindex_restores_keywords_a_lost_index_dropped(built):
    from storecheck import volatile_by_blob, wipe_volatile

    store, _ = built
    want = volatile_by_blob(store)
    wipe_volatile(store)
    run_cli("reindex", "--store", str(store), "-q")
    assert volatile_by_blob(store) == want


def test_reindex_of_a_non_store_is_one_line(tmp_path):
    r = run_cli("reindex", "--store", str(tmp_path / "nothing"), check=False)
    assert r.returncode == 1 and r.stderr.count(b"\n") == 1


def test_fsck_repair_rebuilds_a_damaged_index_from_git(built):
    import sqlite3

    import xapian

    store, _ = built
    before = answers(store)
    db = sqlite3.connect(store / "ei15" / "over.sqlite3")
    (num,) = db.execute("SELECT MAX(num) FROM over").fetchone()
    db.execute("DELETE FROM over WHERE num = ?", (num,))
    db.commit()
    db.close()
    shard = xapian.WritableDatabase(str(store / "ei15" / "0"), xapian.DB_OPEN)
    shard.delete_document(next(p.docid for p in shard.postlist("")))
    shard.commit()
    shard.close()
    (store / "ALL.git" / "objects" / "info" / "alternates").write_text("")
    assert run_cli("fsck", "--store", str(store), check=False).returncode == 2
    r = run_cli("fsck", "--store", str(store), "--repair")
    assert b"rebuilt the index from git" in r.stderr and r.stdout.decode().splitlines()[-1].startswith("ok")
    assert answers(store) == before


def test_fsck_repair_never_touches_damaged_git(built):
    store, _ = built
    epoch = store / "local" / "0.git"
    branch = (epoch / "HEAD").read_text().split("ref:")[1].strip()
    (epoch / branch).parent.mkdir(parents=True, exist_ok=True)
    (epoch / branch).write_text("1" * 40 + "\n")
    (epoch / "packed-refs").unlink(missing_ok=True)
    r = run_cli("fsck", "--store", str(store), "--repair", check=False)
    assert r.returncode != 0 and b"git itself is damaged" in r.stderr and r.stderr.count(b"\n") == 1


def test_reindex_answers_the_parity_suite_like_the_import(small_corpus, tmp_path):
    """Every query of the lei parity suite (tests/test_q_parity.py), on real awkward mail."""
    from test_q_parity import OPTION_QUERIES, STATIC_QUERIES, data_queries

    store = tmp_path / "store"
    run_cli("import", "--store", str(store), "-q", str(shutil.copytree(small_corpus / "maildir", tmp_path / "md")))
    run_cli("import", "--store", str(store), "-q", f"mboxrd:{small_corpus / 'corpus.mboxrd'}")
    run_cli("tag", "--store", str(store), "--quiet", "-q", "s:notmuch", "+L:imported")
    suite = [(["--dedupe=none"], q) for q in STATIC_QUERIES + data_queries(store)] + OPTION_QUERIES

    def run() -> list[list[str]]:
        return [sorted(run_cli("q", "--store", str(store), "-f", "jsonl", *opts, *q).stdout.decode().splitlines())
                for opts, q in suite]

    before = run()
    assert sum(map(bool, before)) > 40
    run_cli("reindex", "--store", str(store), "-q")
    assert run() == before
