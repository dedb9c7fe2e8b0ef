"""Read-only helpers the tests use to look inside a store with plain sqlite3, git and xapian."""

from __future__ import annotations

import sqlite3
import subprocess
import zlib
from pathlib import Path

import xapian


def over_rows(store: Path) -> list[tuple]:
    db = sqlite3.connect(store / "ei15" / "over.sqlite3")
    rows = db.execute("SELECT num, tid, sid, ts, ds, ddd FROM over WHERE num > 0 ORDER BY num").fetchall()
    db.close()
    return [(n, t, s, ts, ds, zlib.decompress(d).decode().split("\n")) for n, t, s, ts, ds, d in rows]


def sql(store: Path, query: str, args=()) -> list[tuple]:
    db = sqlite3.connect(store / "ei15" / "over.sqlite3")
    try:
        return db.execute(query, args).fetchall()
    finally:
        db.close()


def xref3(store: Path) -> list[tuple[int, str]]:
    return [(d, bytes(o).hex()) for d, o in sql(store, "SELECT docid, oidbin FROM xref3 ORDER BY docid")]


def commits(store: Path) -> int:
    total = 0
    for epoch in sorted((store / "local").glob("*.git")):
        r = subprocess.run(["git", f"--git-dir={epoch}", "rev-list", "--count", "HEAD"],
                           capture_output=True, text=True)
        total += int(r.stdout.strip() or 0)
    return total


def xdb(store: Path) -> xapian.Database:
    shards = sorted((p for p in (store / "ei15").iterdir() if p.name.isdigit()), key=lambda p: int(p.name))
    db = xapian.Database(str(shards[0]))
    for s in shards[1:]:
        db.add_database(xapian.Database(str(s)))
    return db


def doc_terms(store: Path, num: int) -> set[str]:
    shards = sorted((p for p in (store / "ei15").iterdir() if p.name.isdigit()), key=lambda p: int(p.name))
    db = xapian.Database(str(shards[num % len(shards)]))
    return {t.term.decode() for t in db.termlist(num)}


def docid_of_blob(store: Path, oid: str) -> int:
    (row,) = sql(store, "SELECT docid FROM xref3 WHERE oidbin = ?", (bytes.fromhex(oid),))
    return row[0]


def git_blob(store: Path, oid: str) -> bytes:
    return subprocess.run(["git", f"--git-dir={store / 'ALL.git'}", "cat-file", "blob", oid],
                          capture_output=True, check=True).stdout


def blob_oid(data: bytes) -> str:
    import hashlib

    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def volatile_by_blob(store: Path) -> dict[str, tuple[frozenset, frozenset]]:
    """Keywords and labels of every message, keyed by its over row's blob (stable across rebuilds)."""
    shards = sorted((p for p in (store / "ei15").iterdir() if p.name.isdigit()), key=lambda p: int(p.name))
    dbs = [xapian.Database(str(s)) for s in shards]
    out = {}
    for num, _tid, _sid, _ts, _ds, ddd in over_rows(store):
        terms = [t.term.decode() for t in dbs[num % len(dbs)].termlist(num)]
        kw = frozenset(t[1:] for t in terms if t.startswith("K") and t[1:2] and not t[1:2].isupper())
        labels = frozenset(t[1:] for t in terms if t.startswith("L") and t[1:2] and not t[1:2].isupper())
        out[ddd[5]] = (kw, labels)
    return out


def wipe_volatile(store: Path) -> int:
    """Delete every K/L term from every shard, as a lost or rebuilt index would; returns docs touched."""
    touched = 0
    for shard in (p for p in (store / "ei15").iterdir() if p.name.isdigit()):
        db = xapian.WritableDatabase(str(shard), xapian.DB_OPEN)
        for docid in [p.docid for p in db.postlist("")]:
            doc = db.get_document(docid)
            volatile = [t.term for t in doc.termlist()
                        if t.term[:1] in (b"K", b"L") and t.term[1:2] and not t.term[1:2].isupper()]
            for term in volatile:
                doc.remove_term(term)
            if volatile:
                db.replace_document(docid, doc)
                touched += 1
        db.commit()
        db.close()
    return touched


def has_blob(store: Path, oid: str) -> bool:
    return subprocess.run(["git", f"--git-dir={store / 'ALL.git'}", "cat-file", "-e", oid]).returncode == 0
