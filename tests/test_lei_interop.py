"""Interop with real lei 1.9: lei queries the store we write, and our dedup equals lei's.

Uses ../shared/corpora/small.tar.xz (441 awkward real messages); skips without it or without lei.
"""

from __future__ import annotations

import json
import shutil
import time
from collections import defaultdict
from pathlib import Path

import pytest
from conftest import Lei, need_lei, run_cli
from storecheck import blob_oid, doc_terms, over_rows, sql, xref3


@pytest.fixture(scope="module")
def stores(small_corpus, tmp_path_factory):
    """The small corpus imported once by lei-store and once by real lei (Maildir + mbox each)."""
    need_lei()
    base = tmp_path_factory.mktemp("interop")
    ours = base / "ours"
    run_cli("import", "--store", str(ours), "-q", str(shutil.copytree(small_corpus / "maildir", base / "md1")))
    run_cli("import", "--store", str(ours), "-q", f"mboxrd:{small_corpus / 'corpus.mboxrd'}")
    lei = Lei(base / "lei")
    lei("import", str(shutil.copytree(small_corpus / "maildir", base / "md2")))
    lei("import", f"mboxrd:{small_corpus / 'corpus.mboxrd'}")
    # lei reading our store: a second lei home whose config points at it
    reader = Lei(base / "reader")
    reader("init", str(ours))
    yield ours, lei, reader, small_corpus
    lei.close()
    reader.close()


def lei_q(reader: Lei, *query: str) -> set[str]:
    out = reader("q", "-f", "jsonl", "--dedupe=none", *query).stdout.decode()
    return {json.loads(line)["blob"] for line in out.splitlines() if line.strip()}


def rows_by_blob(store: Path) -> dict[str, tuple]:
    return {r[5][5]: r for r in over_rows(store)}


def test_lei_q_finds_everything_we_stored(stores):
    ours, _lei, reader, _ = stores
    assert lei_q(reader, "z:1..") == set(rows_by_blob(ours))


def test_lei_q_by_message_id_subject_and_from(stores):
    ours, _lei, reader, _ = stores
    rows = [r for r in over_rows(ours) if r[5][6] and r[5][6].isascii() and " " not in r[5][6]][::25]
    assert len(rows) >= 10
    for *_, f in rows:
        blob, mid = f[5], f[6]
        expect = {b for b, r in rows_by_blob(ours).items() if r[5][6] == mid}
        assert lei_q(reader, f"mid:{mid}") >= expect, mid
        words = [w for w in f[0].split() if w.isalpha() and w.isascii() and len(w) > 3]
        if words:
            assert blob in lei_q(reader, f"s:{words[0]}"), f[0]
        addr = f[1].rsplit("<", 1)[-1].rstrip(">").strip()
        if "@" in addr and addr.isascii():
            assert blob in lei_q(reader, f"f:{addr}"), f[1]


def test_lei_q_by_date_range(stores):
    ours, _lei, reader, _ = stores
    rows = over_rows(ours)
    day = lambda ds: int(time.strftime("%Y%m%d", time.gmtime(ds)))
    lo, hi = 20090101, 20121231
    expect = {r[5][5] for r in rows if lo <= day(r[4]) <= hi}
    assert expect and lei_q(reader, f"d:{lo}..{hi}") == expect


def test_lei_q_by_keyword(stores):
    ours, _lei, reader, corpus = stores
    docids = set()
    for line in (corpus / "MANIFEST.tsv").read_text().splitlines()[1:]:
        seq, path, _oid, _size, flags, _origin = line.split("\t")
        if "F" in flags:
            raw = (corpus / path).read_bytes()
            hits = sql(ours, "SELECT docid FROM xref3 WHERE oidbin = ?", (bytes.fromhex(blob_oid(raw)),))
            docids.update(d for (d,) in hits)
    blobs = {r[5][5] for r in over_rows(ours) if r[0] in docids}
    flagged = lei_q(reader, "kw:flagged")
    assert blobs and flagged >= blobs
    for num in {r[0] for r in over_rows(ours) if r[5][5] in flagged}:
        assert "Kflagged" in doc_terms(ours, num)


def partition(store: Path, rename: dict[str, str] | None = None) -> set[frozenset[str]]:
    groups = defaultdict(set)
    for docid, oid in xref3(store):
        groups[docid].add((rename or {}).get(oid, oid))
    return {frozenset(g) for g in groups.values()}


def headerless_renames(lei_store: Path) -> dict[str, str]:
    """lei stores a message that has no header at all with a newline put in front of it; we keep
    the bytes exactly as received. Map lei's OID of such a blob to the OID of the original bytes."""
    from storecheck import git_blob

    renames = {}
    for _docid, oid in xref3(lei_store):
        data = git_blob(lei_store, oid)
        if data.startswith(b"\n"):
            renames[oid] = blob_oid(data[1:])
    return renames


def test_dedup_outcome_equals_leis(stores):
    """Same blobs stored, grouped into the same messages (content hash parity), same Message-IDs."""
    ours, lei, _reader, _ = stores
    renames = headerless_renames(lei.store)
    assert len(renames) <= 2  # only the corpus's header-less diffs
    assert partition(ours) == partition(lei.store, renames)
    assert set(sql(ours, "SELECT mid FROM msgid")) >= set(sql(lei.store, "SELECT mid FROM msgid"))


def _lei_docs(store: Path) -> dict[frozenset[str], dict[str, int]]:
    """Every message's Xapian terms and wdf (without keywords/labels), keyed by its set of blobs."""
    import xapian

    shards = sorted((p for p in (store / "ei15").iterdir() if p.name.isdigit()), key=lambda p: int(p.name))
    dbs = [xapian.Database(str(p)) for p in shards]  # message num lives in shard num % count
    groups = defaultdict(set)
    for num, oid in xref3(store):
        groups[num].add(oid)
    docs = {}
    for num, oids in groups.items():
        terms = {t.term.decode("utf-8", "replace"): t.wdf for t in dbs[num % len(dbs)].termlist(num)
                 if not t.term.startswith((b"K", b"L"))}
        docs[frozenset(oids)] = terms
    return docs


def test_xapian_documents_equal_leis(stores):
    """Same terms with the same wdf for every message, attached copies' List-Ids included."""
    ours, lei, _reader, _ = stores
    renames = headerless_renames(lei.store)
    theirs = {frozenset(renames.get(o, o) for o in k): v for k, v in _lei_docs(lei.store).items()}
    mine = _lei_docs(ours)
    assert set(mine) == set(theirs)
    bad = [sorted(k)[0] for k in mine if mine[k] != theirs[k]]
    assert not bad, f"{len(bad)} documents differ, e.g. blob {bad[0]}"


def test_lei_can_write_into_our_store(stores, tmp_path):
    """Runs last in this module: it changes the shared store."""
    ours, _lei, reader, corpus = stores
    msg = b"From: New <new@example.org>\nSubject: added by real lei\nMessage-ID: <by-lei@example.org>\n\nhello\n"
    (tmp_path / "n.eml").write_bytes(msg)
    reader("import", str(tmp_path / "n.eml"))
    assert lei_q(reader, "mid:by-lei@example.org") == {blob_oid(msg)}
    # and we keep importing after lei: our writer continues lei's numbering
    (tmp_path / "o.eml").write_bytes(msg.replace(b"by-lei", b"after-lei"))
    reader("daemon-kill")
    run_cli("import", "--store", str(ours), "-q", str(tmp_path / "o.eml"))
    nums = [r[0] for r in over_rows(ours)]
    assert len(nums) == len(set(nums)) and lei_q(reader, "mid:after-lei@example.org")
    # lei and lei-store one after the other leave the store consistent
    r = run_cli("fsck", "--store", str(ours), "--json")
    report = json.loads(r.stdout)
    assert r.returncode == 0 and report["ok"], [p for p in report["problems"] if p["severity"] == "error"]
