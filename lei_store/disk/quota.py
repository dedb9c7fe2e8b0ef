"""The store's quota and usage as readers see them (journal.sqlite3's settings; no lock).

Writers keep the usage (write/feedidx.py); `lei-store quota --set-...` sets the limits
(ops/quota.py).
"""

from __future__ import annotations

from pathlib import Path

import msgspec

from lei_store.disk.journal import Journal
from lei_store.paths import existing_store


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
