"""Keywords and labels across real lei 1.9 and lei-store: each sees the other's tags."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from conftest import Lei, need_lei, run_cli


def ours_q(store: Path, *query: str) -> set[str]:
    out = run_cli("q", "--store", str(store), "-f", "jsonl", "--dedupe=none", *query).stdout.decode()
    return {json.loads(line)["blob"] for line in out.splitlines()}


def lei_q(lei: Lei, *query: str) -> set[str]:
    out = lei("q", "-f", "jsonl", "--dedupe=none", *query).stdout.decode()
    return {json.loads(line)["blob"] for line in out.splitlines() if line.strip() and line != "null"}


def test_lei_sees_our_tags_and_we_see_leis(sample_corpus, tmp_path):
    need_lei()
    store = tmp_path / "ours"
    run_cli("import", "--store", str(store), "-q", str(shutil.copytree(sample_corpus / "maildir", tmp_path / "md")))
    run_cli("tag", "--store", str(store), "--quiet", "-q", "s:btrfs", "+kw:flagged", "+L:work")
    run_cli("tag", "--store", str(store), "--quiet", "-q", "s:scrub", "-kw:seen", "+L:later")
    lei = Lei(tmp_path / "lei")
    try:
        lei("init", str(store))
        for query in (["kw:flagged"], ["L:work"], ["L:later"], ["kw:seen"], ["L:work", "AND", "NOT", "kw:seen"]):
            expect = ours_q(store, *query)
            assert expect and lei_q(lei, *query) == expect, query
        # lei writes tags into our store; we read them, and keep writing after it
        one = sorted(ours_q(store, "L:later"))[0]
        msg = run_cli("blob", "--store", str(store), one).stdout
        (tmp_path / "one.eml").write_bytes(msg)
        lei("tag", str(tmp_path / "one.eml"), "+L:from-lei", "+kw:answered")
        assert ours_q(store, "L:from-lei") == lei_q(lei, "L:from-lei") and one in ours_q(store, "L:from-lei")
        assert one in ours_q(store, "kw:answered")
        run_cli("tag", "--store", str(store), "--quiet", "-q", "L:from-lei", "-L:from-lei")
        assert lei_q(lei, "L:from-lei") == set()
    finally:
        lei.close()


def test_we_read_tags_lei_set_on_its_own_store(sample_corpus, tmp_path):
    need_lei()
    lei = Lei(tmp_path / "lei")
    try:
        md = Path(shutil.copytree(sample_corpus / "maildir", tmp_path / "md"))
        lei("import", str(md))
        picked = sorted((md / "cur").iterdir())[:20:3]
        lei("tag", *map(str, picked), "+L:work", "+kw:flagged", "-kw:seen")
        for query in (["L:work"], ["kw:flagged"], ["kw:seen"], ["L:work", "kw:flagged"]):
            expect = lei_q(lei, *query)
            assert expect and ours_q(lei.store, *query) == expect, query
        labels = run_cli("ls-label", "--store", str(lei.store)).stdout.decode().split()
        assert labels == ["work"]
    finally:
        lei.close()
