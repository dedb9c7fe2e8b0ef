"""`lei-store quota`: a store-wide limit in bytes and in messages (rusmes Quota, chatmail).

The usage is kept by every writer with the change feed (write/feedidx.py), in the same
transaction as the messages it counts, and checked against git (the truth) by fsck. An import
that would go over the limit stores what fits and reports the rest (exit 73).
"""

from __future__ import annotations

from pathlib import Path

from lei_store.disk.quota import Quota, read
from lei_store.write.store import Store


def quota(root: Path, *, set_bytes: int | None = None, set_messages: int | None = None,
          lock_timeout: float | None = None) -> Quota:
    """The quota, after setting what is given (through the writer: the limit is journaled)."""
    if set_bytes is not None or set_messages is not None:
        with Store.open(root).writer(lock_timeout=lock_timeout, jobs=1) as w:
            assert w.feed is not None
            w.journal.begin()
            w.feed.set_quota(set_bytes, set_messages)
    return read(root)
