"""`lei-store purge`: retention (chatmail's purge jobs, rusmes `compact_expunged(older_than)`).

The messages a query finds (received longer ago than AGE, when given) are removed as `rm`
removes them: out of the index and out of every mailbox, with tombstones in the change feed.
Their blobs are remembered as purged, for `gc --expunge` to drop them from git itself.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import msgspec

from lei_store.errors import InputError
from lei_store.read.search import Reader
from lei_store.write.store import Store

_UNITS = {"h": 3600, "d": 86400, "w": 7 * 86400, "m": 30 * 86400, "y": 365 * 86400}


class PurgedMessage(msgspec.Struct):
    """One message purge removes (or would remove)."""

    blob: str
    received: str
    subject: str


class PurgeResult(msgspec.Struct):
    """What purge did, or would do with --dry-run."""

    dry_run: bool
    messages: list[PurgedMessage]


def age_seconds(text: str) -> int:
    """30d, 6m (months of 30 days), 2y, 12h, 3w."""
    m = re.fullmatch(r"\s*(\d+)\s*([hdwmy])\s*", text.lower())
    if not m:
        raise InputError(f"not an age: {text!r} (e.g. 30d, 6m, 2y, 12h)")
    return int(m.group(1)) * _UNITS[m.group(2)]


def _matches(reader: Reader, query: str, cutoff: int | None):
    for hit in reader.search(query, dedupe="none", limit=2**31 - 1, sort="docid"):
        if cutoff is None or hit.row.ts < cutoff:
            yield hit


def purge(root: Path, query: str, *, older_than: str | None = None, dry_run: bool = False,
          lock_timeout: float | None = None) -> PurgeResult:
    """Remove (or with DRY_RUN list) the messages QUERY finds that are older than OLDER_THAN."""
    cutoff = int(time.time()) - age_seconds(older_than) if older_than else None
    if dry_run:
        reader = Reader(Path(root))
        try:
            return PurgeResult(True, [_described(h) for h in _matches(reader, query, cutoff)])
        finally:
            reader.close()
    with Store.open(root).writer(lock_timeout=lock_timeout, jobs=1) as w:
        reader = Reader(w.store.root)
        try:
            hits = list(_matches(reader, query, cutoff))
        finally:
            reader.close()
        nums = [h.row.num for h in hits]
        blobs = [oid for num in nums for oid in w.over.blobs_of(num)]
        w.remove(nums)
        assert w.feed is not None
        w.feed.mark_purged(blobs)
        w.flush()
    return PurgeResult(False, [_described(h) for h in hits])


def _described(hit) -> PurgedMessage:
    r = hit.record()
    return PurgedMessage(r.blob, r.rt, r.s)
