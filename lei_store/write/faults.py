"""Test-only fault injection at the writer's durability boundaries.

LEI_STORE_FAULT=POINT:N[:kill|eio] makes the writer SIGKILL itself (kill, the
default) or raise an I/O error (eio) the N-th time it reaches POINT. The crash
and I/O-error tests use it to stop an import exactly between two steps of the
commit order; unset, `reached()` costs one comparison.
"""

from __future__ import annotations

import errno
import os
import signal

POINTS = (
    "store-building",  # a new store's parts are being made (before it is renamed into place)
    "blob-written",  # a message's commit was streamed to git fast-import
    "over-row",  # its over/id2num/xref3 rows were written (uncommitted)
    "xapian-doc",  # its Xapian document was sent to the shard writer
    "sync-row",  # its mail_sync row was written (uncommitted)
    "keywords-set",  # a duplicate's keywords were updated (uncommitted)
    "git-checkpoint",  # fast-import made the batch's objects and refs durable
    "journal-record",  # the batch's keyword changes were appended (uncommitted)
    "journal-commit",  # ... and committed
    "xapian-commit",  # every shard committed
    "over-commit",  # over.sqlite3 committed
    "sync-commit",  # mail_sync.sqlite3 committed: the batch is complete
)
# points an import does not pass (tests/test_crash.py kills each where it is reached)
MAINTENANCE_POINTS = (
    "feed-backfill",  # a chunk of a store's old messages was recorded in the change feed
    "expunge-rewritten",  # gc --expunge rewrote an epoch, before the journal and the marks say so
)

_spec = os.environ.get("LEI_STORE_FAULT")
_counts: dict[str, int] = {}


def _parse(spec: str) -> tuple[str, int, str]:
    point, _, rest = spec.partition(":")
    count, _, mode = rest.partition(":")
    return point, int(count or 1), mode or "kill"


def reached(point: str) -> None:
    """Mark a boundary; fires the configured fault when this is its N-th passage."""
    if _spec is None:
        return
    want, count, mode = _parse(_spec)
    if point != want:
        return
    _counts[point] = _counts.get(point, 0) + 1
    if _counts[point] != count:
        return
    if mode == "eio":
        raise OSError(errno.EIO, f"injected I/O error at {point}")
    os.kill(os.getpid(), signal.SIGKILL)
