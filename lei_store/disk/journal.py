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

from lei_store.errors import DamagedStoreError
from lei_store.sqlite import connect_ro, connect_rw


class Entry(NamedTuple):
    """One journal row: a message's whole keyword/label state (or its removal), keyed by a blob."""
    seq: int
    oidbin: bytes
    op: str  # "set" (the message's keywords/labels are now kw/labels) or "rm" (lei-store rm)
    kw: tuple[str, ...]
    labels: tuple[str, ...]
    at: int


class Event(NamedTuple):
    """A row to append: a change to the store, which the append gives the next modseq."""

    oidbin: bytes  # the message's key blob (its first); b"" for an event about a mailbox
    op: str  # "set" (its state is now kw/labels) or "rm" (it was removed)
    kw: Iterable[str] = ()
    labels: Iterable[str] = ()
    kind: str | None = None  # added, changed, copy, removed, mailbox, rewrite (feed.py); None: as op says
    detail: str | None = None  # copy: the attached blob; mailbox, rewrite: what happened, as JSON


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split()) if text else ()


class Journal:
    """Handle on journal.sqlite3. Writes accumulate in a transaction until commit()."""

    def __init__(self, path: Path, *, readonly: bool = False):
        self.path = path
        if readonly:
            self.db = connect_ro(path)
            if self.db.execute("SELECT 1 FROM sqlite_master WHERE name = 'volatile'").fetchone() is None:
                self.db.close()
                raise DamagedStoreError(f"{path}: holds no journal (emptied?): `lei-store fsck --repair` "
                                        "rebuilds it from the index")
            return
        self.db = connect_rw(path, "journal", "rebuilds it from the index")
        from lei_store.disk import journaldb

        journaldb.ensure(self.db)

    def close(self) -> None:
        self.commit()
        self.db.close()

    def record(self, entries: Iterable[tuple[bytes, str, Iterable[str], Iterable[str]] | Event],
               at: int | None = None) -> int:
        """Append entries ((oidbin, op, keywords, labels) or Events); returns the modseq of the first
        (the others follow it one by one: a single writer appends in one transaction), 0 for none."""
        at = int(time.time()) if at is None else at
        rows = [(e[0], e[1], " ".join(sorted(e[2])), " ".join(sorted(e[3])), at,
                 e.kind if isinstance(e, Event) else None, e.detail if isinstance(e, Event) else None)
                for e in entries]
        if not rows:
            return 0
        self.begin()
        cur = self.db.executemany("INSERT INTO volatile (oidbin, op, kw, labels, at, kind, detail) "
                                  "VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
        last = self.db.execute("SELECT last_insert_rowid()").fetchone()[0]
        assert cur.rowcount == len(rows)
        return last - len(rows) + 1

    def begin(self) -> None:
        if not self.db.in_transaction:
            self.db.execute("BEGIN IMMEDIATE")

    def commit(self) -> None:
        if self.db.in_transaction:
            self.db.execute("COMMIT")

    def rollback(self) -> None:
        if self.db.in_transaction:
            self.db.execute("ROLLBACK")

    def latest(self) -> Iterator[Entry]:
        """The newest entry of every blob, oldest first (apply in this order: the last one wins)."""
        q = ("SELECT seq, oidbin, op, kw, labels, at FROM volatile WHERE seq IN "
             "(SELECT MAX(seq) FROM volatile WHERE oidbin != x'' GROUP BY oidbin) ORDER BY seq")
        for seq, oid, op, kw, labels, at in self.db.execute(q):
            yield Entry(seq, bytes(oid), op, _words(kw), _words(labels), at)

    def history(self, oidbin: bytes) -> list[Entry]:
        q = "SELECT seq, oidbin, op, kw, labels, at FROM volatile WHERE oidbin = ? ORDER BY seq"
        rows = self.db.execute(q, (oidbin,))
        return [Entry(s, bytes(o), op, _words(k), _words(la), at) for s, o, op, k, la, at in rows]

    def count(self) -> int:
        return self.db.execute("SELECT COUNT(*) FROM volatile").fetchone()[0]
