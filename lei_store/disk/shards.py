"""The Xapian shards ei15/<N> as every reader sees them (spec §6): value slots, where a message's
document is, opening a shard (checked for lost files), and the volatile metadata: keywords
(K<keyword>) and labels (L<label>) as boolean terms.

Writers (searchindex.py) build on this; readers (search, fsck, repair) never import the writer.
"""

from __future__ import annotations

from pathlib import Path

import xapian

from lei_store.errors import DamagedStoreError
from lei_store.paths import Layout

# value slots (§6.2), lei's numbers
TS, YYYYMMDD, DT, BYTES, UID, THREADID = range(6)
SLOT_NAMES = {TS: "TS", YYYYMMDD: "YYYYMMDD", DT: "DT", BYTES: "BYTES", UID: "UID", THREADID: "THREADID"}
VOLATILE_PREFIXES = (b"K", b"L")  # keywords, labels

_REQUIRED_TABLES = ("iamglass", "postlist.glass", "termlist.glass")  # the others are created lazily


def docid_of(num: int, nshards: int) -> int:
    """The docid of message NUM in the combined database of NSHARDS shards."""
    return (num - 1) * nshards + num % nshards + 1


def num_of(docid: int, nshards: int) -> int:
    return (docid - 1) // nshards + 1


def shard_damage(path: Path, db: xapian.Database | None = None) -> str | None:
    """What is missing from a shard, None when nothing visibly is: a lost file must not read as
    an empty index (and opened for writing, a shard without its postlist would be created anew)."""
    missing = [t for t in _REQUIRED_TABLES if not (path / t).exists()]
    if missing:
        return f"{', '.join(missing)} missing"
    if db is not None and db.get_doccount() and not db.has_positions():
        return "position.glass missing (documents without positions: phrase searches would fail)"
    return None


def open_checked(path: Path, writable: bool = False, flags: int = 0) -> xapian.Database:
    """Open an existing shard, or raise DamagedStoreError saying what is wrong with it."""
    problem = shard_damage(path)
    if problem is None:
        try:
            db = xapian.WritableDatabase(str(path), xapian.DB_OPEN | flags) if writable else xapian.Database(str(path))
        except xapian.DatabaseError as e:
            problem = e.get_msg()
        else:
            problem = shard_damage(path, db)
            if problem is None:
                return db
            db.close()
    raise DamagedStoreError(f"Xapian shard {path} is damaged ({problem}); `lei-store fsck --repair` "
                            "rebuilds the index from git")


def open_all(layout: Layout) -> xapian.Database:
    """Every shard of a store as one database (docids interleaved: docid_of)."""
    count = layout.shard_count()
    if not count:
        raise DamagedStoreError(f"{layout.root}: no Xapian shards in {layout.ei}; `lei-store fsck --repair` "
                                "rebuilds the index from git")
    db = open_checked(layout.shard(0))
    for i in range(1, count):
        db.add_database(open_checked(layout.shard(i)))
    return db


def _volatile_word(term: bytes, prefix: bytes) -> str | None:
    """The keyword or label a K/L term names; None for another prefix that starts alike
    (a K or L followed by upper case)."""
    rest = term[len(prefix):]
    if not rest or rest[:1].isupper():
        return None
    return rest.decode("utf-8", "replace")


def volatile_terms(db: xapian.Database, prefix: bytes):
    """(word, term, termfreq) of every keyword (K) or label (L) term, sorted by word."""
    for t in db.allterms(prefix):
        word = _volatile_word(t.term, prefix)
        if word is not None:
            yield word, t.term, t.termfreq


def volatile_for(db: xapian.Database, docids: list[int]) -> dict[int, tuple[list[str], list[str]]]:
    """docid -> (keywords, labels) for the documents that have any, each list sorted.

    The few K and L terms are visited once each: a posting list shorter than the docid
    list is walked whole, a longer one is skipped through docid by docid. The raw SWIG
    iterators are used because the Pythonic wrapper builds an object per posting (3x slower).
    """
    wanted = sorted(set(docids))
    want = set(wanted)
    found: dict[int, tuple[list[str], list[str]]] = {}
    for slot, prefix in enumerate(VOLATILE_PREFIXES):
        for name, term, termfreq in volatile_terms(db, prefix):
            it, end = db._postlist_begin(term), db._postlist_end(term)
            if termfreq <= len(wanted):
                while not it.equals(end):
                    if (d := it.get_docid()) in want:
                        found.setdefault(d, ([], []))[slot].append(name)
                    next(it)
                continue
            for d in wanted:
                it.skip_to(d)
                if it.equals(end):
                    break
                if it.get_docid() == d:
                    found.setdefault(d, ([], []))[slot].append(name)
    return found


def volatile_all(db: xapian.Database) -> dict[int, tuple[frozenset[str], frozenset[str]]]:
    """docid -> (keywords, labels) of every document that has any."""
    out: dict[int, tuple[set[str], set[str]]] = {}
    for slot, prefix in enumerate(VOLATILE_PREFIXES):
        for word, term, _freq in volatile_terms(db, prefix):
            for p in db.postlist(term):
                out.setdefault(p.docid, (set(), set()))[slot].add(word)
    return {d: (frozenset(k), frozenset(v)) for d, (k, v) in out.items()}


def volatile_of(doc: xapian.Document) -> tuple[set[str], set[str]]:
    """(keywords, labels) recorded on one document (skip_to the prefix: a document has many terms)."""
    found: tuple[set[str], set[str]] = (set(), set())
    for slot, prefix in enumerate(VOLATILE_PREFIXES):
        tl = doc.termlist()
        try:
            t = tl.skip_to(prefix)
            while t.term.startswith(prefix):
                word = _volatile_word(t.term, prefix)
                if word is not None:
                    found[slot].add(word)
                t = next(tl)
        except StopIteration:
            pass
    return found


def labels(db: xapian.Database) -> list[str]:
    """Every label in use, sorted."""
    return [word for word, _term, _freq in volatile_terms(db, b"L")]
