"""Writing the sharded Xapian index ei15/<shard> (spec §6): values, keywords and labels.

Text terms come from terms.py (built in worker processes); this module owns
writing the shards: creating them, placing a message in shard `num % nshards` under
docid `num`, and changing the volatile metadata (K<keyword>, L<label> boolean terms).
What readers need of the shards (slots, opening, K/L terms) is shards.py.
"""

from __future__ import annotations

import time
from pathlib import Path

import msgspec
import xapian

from lei_store.disk.shards import BYTES, DT, THREADID, TS, UID, YYYYMMDD, open_checked, volatile_of
from lei_store.mail.keywords import VolatileChange
from lei_store.paths import Layout


def content_values(doc: xapian.Document, ts: int, ds: int, nbytes: int) -> None:
    """Value slots 0-3, which depend only on the message (§6.2)."""
    ser = xapian.sortable_serialise
    tm = time.gmtime(ds)
    doc.add_value(TS, ser(ts))
    doc.add_value(YYYYMMDD, ser(int(time.strftime("%Y%m%d", tm))))
    doc.add_value(DT, ser(int(time.strftime("%Y%m%d%H%M%S", tm))))
    doc.add_value(BYTES, ser(nbytes))


def create_shards(layout: Layout, count: int) -> None:
    """Create ei15/0..count-1 (shard 0 carries has_threadid=1) and ei15/misc."""
    layout.ei.mkdir(parents=True, exist_ok=True)
    layout.misc.mkdir(exist_ok=True)
    for i in range(count):
        db = xapian.WritableDatabase(str(layout.shard(i)), xapian.DB_CREATE_OR_OPEN)
        if i == 0 and not db.get_metadata("has_threadid"):
            db.set_metadata("has_threadid", "1")
        db.commit()
        db.close()


def shard_paths(layout: Layout) -> list[Path]:
    return [layout.shard(i) for i in range(layout.shard_count())]


class VolatileState(msgspec.Struct, array_like=True):
    """A message's keywords and labels after a change (for the journal)."""

    num: int
    kw: list[str]
    labels: list[str]
    kw_changed: bool = True  # False when only labels changed: Maildir copies are left alone


class ShardWriters:
    """Writable handles on shards, in this process. Message `num` lives in shard num % len(paths)."""

    def __init__(self, paths: list[Path], *, sync: bool = True):
        self.count = len(paths)
        flags = 0 if sync else xapian.DB_NO_SYNC
        self.dbs = [open_checked(p, writable=True, flags=flags) for p in paths]  # created only by create_shards
        self.changed = 0  # documents whose keywords/labels changed since the last commit
        self.changes: dict[int, VolatileState] = {}  # num -> its new state, for the journal

    def shard_of(self, num: int) -> xapian.WritableDatabase:
        return self.dbs[num % self.count]

    def add(self, num: int, doc: xapian.Document | bytes, tid: int,
            keywords=frozenset(), labels=frozenset()) -> None:
        if isinstance(doc, bytes):
            doc = xapian.Document.unserialise(doc)
        doc.add_value(UID, xapian.sortable_serialise(num))
        doc.add_value(THREADID, xapian.sortable_serialise(tid))
        for kw in keywords:
            doc.add_boolean_term("K" + kw)
        for label in labels:
            doc.add_boolean_term("L" + label)
        self.shard_of(num).replace_document(num, doc)
        if keywords or labels:
            self.changes[num] = VolatileState(num, sorted(keywords), sorted(labels))

    def get(self, num: int) -> xapian.Document | None:
        try:
            return self.shard_of(num).get_document(num)
        except xapian.DocNotFoundError:
            return None

    def update_volatile(self, num: int, change: VolatileChange) -> bool:
        """Change a document's keywords/labels; True when anything changed."""
        doc = self.get(num)
        if doc is None:
            return False
        kws, labels = volatile_of(doc)
        new_kws, new_labels = change.apply(kws, labels)
        if new_kws == kws and new_labels == labels:
            return False
        for prefix, old, new in (("K", kws, new_kws), ("L", labels, new_labels)):
            for word in old - new:
                doc.remove_term(prefix + word)
            for word in new - old:
                doc.add_boolean_term(prefix + word)
        self.shard_of(num).replace_document(num, doc)
        self.changed += 1
        earlier = self.changes.get(num)
        kw_changed = new_kws != kws or (earlier is not None and earlier.kw_changed)
        self.changes[num] = VolatileState(num, sorted(new_kws), sorted(new_labels), kw_changed)
        return True

    def delete(self, num: int) -> None:
        try:
            self.shard_of(num).delete_document(num)
        except xapian.DocNotFoundError:
            pass
        self.changes.pop(num, None)

    def take_changes(self) -> list[VolatileState]:
        """Keyword/label states set since the last call."""
        out = list(self.changes.values())
        self.changes = {}
        return out

    def merge_terms(self, num: int, extra: bytes) -> None:
        """Add another copy's terms (its List-Ids, as lei does when it attaches a copy)."""
        doc = self.get(num)
        if doc is None or not extra:
            return
        copy = xapian.Document.unserialise(extra)  # keep a reference: its termlist points into it
        for term, wdf, positions in [(t.term, t.wdf, list(t.positer)) for t in copy.termlist()]:
            for pos in positions:
                doc.add_posting(term, pos, 1)
            if not positions:
                doc.add_term(term, wdf)
        self.shard_of(num).replace_document(num, doc)

    def commit(self) -> int:
        """Commit every shard; returns how many documents' keywords/labels changed."""
        for db in self.dbs:
            db.commit()
        changed, self.changed = self.changed, 0
        return changed

    def close(self) -> None:
        for db in self.dbs:
            db.close()
        self.dbs = []

