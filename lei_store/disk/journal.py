"""journal.sqlite3: the durable, append-only record of keyword and label changes.

lei keeps keywords and labels only as Xapian terms, so an index rebuilt from
git loses them. Every change the writer makes is also appended here (before
the Xapian commit that makes it visible), as the message's whole keyword and
label state, keyed by one of its blob OIDs. Replaying the newest entry per
blob therefore restores every message's state, whatever docids a rebuild
hands out. lei ignores the file, so the store stays lei-compatible.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Iterable, Iterator, NamedTuple

from lei_store.sqlite import connect_ro, connect_rw


class Entry(NamedTuple):
    """One journal row: a message's whole keyword/label state (or its removal), keyed by a blob."""
    seq: int
    oidbin: bytes
    op: str  # "set" (the message's keywords/labels are now kw/labels) or "rm" (lei-store rm)
    kw: tuple[str, ...]
    labels: tuple[str, ...]
    at: int


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split()) if text else ()


class Journal:
    """Handle on journal.sqlite3. Writes accumulate in a transaction until commit()."""

    def __init__(self, path: Path, *, readonly: bool = False):
        self.path = path
        if readonly:
            self.db = connect_ro(path)
            return
        self.db = connect_rw(path, "journal", "rebuilds it from the index")

    def close(self) -> None:
        self.commit()
        self.db.close()

    def record(self, entries: Iterable[tuple[bytes, str, Iterable[str], Iterable[str]]],
               at: int | None = None) -> int:
        """Append (oidbin, op, keywords, labels) entries; returns how many."""
        at = int(time.time()) if at is None else at
        rows = [(oid, op, " ".join(sorted(kw)), " ".join(sorted(labels)), at)
                for oid, op, kw, labels in entries]
        if rows:
            if not self.db.in_transaction:
                self.db.execute("BEGIN IMMEDIATE")
            self.db.executemany("INSERT INTO volatile (oidbin, op, kw, labels, at) VALUES (?, ?, ?, ?, ?)", rows)
        return len(rows)

    def commit(self) -> None:
        if self.db.in_transaction:
            self.db.execute("COMMIT")

    def rollback(self) -> None:
        if self.db.in_transaction:
            self.db.execute("ROLLBACK")

    def latest(self) -> Iterator[Entry]:
        """The newest entry of every blob, oldest first (apply in this order: the last one wins)."""
        q = ("SELECT seq, oidbin, op, kw, labels, at FROM volatile WHERE seq IN "
             "(SELECT MAX(seq) FROM volatile GROUP BY oidbin) ORDER BY seq")
        for seq, oid, op, kw, labels, at in self.db.execute(q):
            yield Entry(seq, bytes(oid), op, _words(kw), _words(labels), at)

    def history(self, oidbin: bytes) -> list[Entry]:
        q = "SELECT seq, oidbin, op, kw, labels, at FROM volatile WHERE oidbin = ? ORDER BY seq"
        rows = self.db.execute(q, (oidbin,))
        return [Entry(s, bytes(o), op, _words(k), _words(la), at) for s, o, op, k, la, at in rows]

    def count(self) -> int:
        return self.db.execute("SELECT COUNT(*) FROM volatile").fetchone()[0]
