"""`lei-store quota`: a store-wide limit in bytes and in messages (rusmes Quota, chatmail).

The usage is kept by every writer with the change feed (write/feedidx.py), in the same
transaction as the messages it counts, and checked against git (the truth) by fsck. An import
that would go over the limit stores what fits and reports the rest (exit 73).
"""

from __future__ import annotations

from pathlib import Path

import msgspec

from lei_store.disk.journal import Journal
from lei_store.paths import existing_store
from lei_store.write.store import Store


class Quota(msgspec.Struct):
    """What the store holds and may hold (0: no limit)."""

    bytes: int
    messages: int
    max_bytes: int
    max_messages: int


def read(root: Path) -> Quota:
    lay = existing_store(Path(root))
    if not lay.journal.exists():
        return Quota(0, 0, 0, 0)
    journal = Journal(lay.journal, readonly=True)
    try:
        has = journal.db.execute("SELECT 1 FROM sqlite_master WHERE name = 'settings'").fetchone()
        settings = dict(journal.db.execute("SELECT key, value FROM settings")) if has else {}
    finally:
        journal.db.close()
    return Quota(settings.get("usage_bytes", 0), settings.get("usage_messages", 0),
                 settings.get("quota_bytes", 0), settings.get("quota_messages", 0))


def quota(root: Path, *, set_bytes: int | None = None, set_messages: int | None = None,
          lock_timeout: float | None = None) -> Quota:
    """The quota, after setting what is given (through the writer: the limit is journaled)."""
    if set_bytes is not None or set_messages is not None:
        with Store.open(root).writer(lock_timeout=lock_timeout, jobs=1) as w:
            assert w.feed is not None
            w.journal.begin()
            w.feed.set_quota(set_bytes, set_messages)
    return read(root)
