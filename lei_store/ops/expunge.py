"""`gc --expunge`: drop purged blobs from git itself (what public-inbox-purge does).

Only the epochs that hold a purged blob are rewritten: their history is streamed through
`git fast-export --full-tree --no-data` (blobs by OID: no message's bytes are read or written
again), every commit of a purged blob (its `m` and its `d`) left out and the others chained to
the last commit kept, into `git fast-import`; the reflog is expired and `git gc --prune=now`
drops the purged blobs from every pack. Every other message keeps its blob (the same OID) and so
its keywords, labels and index entry; the index marks move to the new tips. A `rewrite` row in
the journal records it; a replica's `fetch` sees the epoch's old tip is no longer in its history
and rebuilds its index from git instead of failing (ops/replica.py).
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import IO

import msgspec

from lei_store import git
from lei_store.disk import gitlog
from lei_store.disk.journal import Event, Journal
from lei_store.disk.over import Over
from lei_store.paths import Layout
from lei_store.write import epochs
from lei_store.write.faults import reached


class ExpungeStats(msgspec.Struct):
    """What gc --expunge did."""

    epochs_rewritten: list[int] = []
    commits_dropped: int = 0
    blobs_dropped: int = 0


def _purged(lay: Layout) -> set[str]:
    """The purged blobs that no message holds now: one stored again since its purge (an import
    of the same mail) is indexed again and must stay in git."""
    journal = Journal(lay.journal, readonly=True)
    try:
        if journal.db.execute("SELECT 1 FROM sqlite_master WHERE name = 'purged'").fetchone() is None:
            return set()
        oids = [bytes(o) for (o,) in journal.db.execute("SELECT oidbin FROM purged")]
    finally:
        journal.db.close()
    with Over(lay.over) as over:
        return {o.hex() for o in oids if not over.holds_blob(o)}


def _holds(repo: Path, purged: set[str]) -> bool:
    head = gitlog.head_commit(repo)
    return head is not None and any(c.oid in purged for c in gitlog.commits_since(repo, 0, None))


def _filter(export: IO[bytes], into: IO[bytes], purged: set[str]) -> tuple[int, int]:
    """Copy a fast-export stream, leaving out the commits whose tree holds a purged blob and
    chaining each kept commit to the last kept one; returns how many were left out and kept."""
    dropped, kept, last_kept = 0, 0, None
    block: list[bytes] = []

    def flush() -> None:
        nonlocal dropped, kept, last_kept
        if not block:
            return
        if block[0].startswith(b"commit "):
            mark = next((ln[5:].strip() for ln in block if ln.startswith(b"mark ")), None)
            files = [ln for ln in block if ln.startswith(b"M ")]
            if any(ln.split()[2].decode() in purged for ln in files):
                dropped += 1
                block.clear()
                return
            block[:] = [ln for ln in block if not ln.startswith(b"from ")]
            if last_kept is not None:
                at = next(i for i, ln in enumerate(block) if ln.startswith(b"deleteall"))
                block.insert(at, b"from " + last_kept + b"\n")
            last_kept, kept = mark, kept + 1
        into.writelines(block)
        block.clear()

    while line := export.readline():
        if line.startswith(b"data "):  # the commit message: its bytes are counted, not parsed
            block.append(line)
            block.append(export.read(int(line[5:])))
            continue
        if line.startswith((b"commit ", b"reset ", b"done")) and block:
            flush()
        block.append(line)
    flush()
    return dropped, kept


def _rewrite(repo: Path, branch: str, purged: set[str]) -> int:
    """Rewrite one epoch's branch without the purged blobs' commits; how many were dropped."""
    export = git.popen(repo, "fast-export", "--full-tree", "--no-data", "--signed-tags=strip",
                       "--reencode=no", f"refs/heads/{branch}")
    imp = git.popen(repo, "fast-import", "--quiet", "--force", "--done", stdin=subprocess.PIPE)
    assert export.stdout is not None and imp.stdin is not None
    dropped, kept = _filter(export.stdout, imp.stdin, purged)
    imp.stdin.write(b"done\n")
    imp.stdin.close()
    for proc, what in ((export, "fast-export"), (imp, "fast-import")):
        if proc.wait() != 0:
            raise git.failure(repo, [what], proc.returncode, proc.stderr.read() if proc.stderr else b"")
    if not kept:  # every message went: fast-import wrote no commit, so the old branch must go
        git.output(repo, "update-ref", "-d", f"refs/heads/{branch}")
    git.output(repo, "reflog", "expire", "--expire=now", "--all")
    git.output(repo, "-c", "gc.autoDetach=false", "gc", "--prune=now", "--quiet")
    return dropped


def expunge(lay: Layout) -> ExpungeStats:
    """Rewrite the epochs holding purged blobs (the caller holds ei.lock)."""
    stats = ExpungeStats()
    purged = _purged(lay)
    if not purged:
        return stats
    branch = epochs.default_branch()
    tips = {}
    for n in lay.epoch_numbers():
        repo = lay.epoch(n)
        if _holds(repo, purged):
            head = git.output(repo, "symbolic-ref", "--short", "HEAD") or branch
            stats.commits_dropped += _rewrite(repo, head, purged)
            stats.epochs_rewritten.append(n)
            tips[n] = gitlog.head_commit(repo)
            reached("expunge-rewritten")
    gone = [oid for oid in purged if not git.ok(lay.all_git, "cat-file", "-e", oid)]
    stats.blobs_dropped = len(gone)
    _record(lay, stats, tips, gone)
    return stats


def _record(lay: Layout, stats: ExpungeStats, tips: dict[int, str | None], gone: list[str]) -> None:
    """The rewrite in the journal (replicas and followers learn of it), the marks at the new tips,
    the dropped blobs no longer purged-but-present."""
    from lei_store.write.overidx import OverIdx

    journal = Journal(lay.journal)
    try:
        journal.record([Event(b"", "set", kind="rewrite",
                              detail=json.dumps({"epochs": stats.epochs_rewritten, "at": int(time.time())}))])
        journal.db.executemany("DELETE FROM purged WHERE oidbin = ?", [(bytes.fromhex(o),) for o in gone])
        journal.commit()
    finally:
        journal.close()
    over = OverIdx(lay.over)
    try:
        over.begin()
        for n, tip in tips.items():
            if tip:
                over.set_meta(gitlog.mark_key(n), tip)
            else:  # an emptied epoch: its next commit starts a new history
                over.delete_meta(gitlog.mark_key(n))
        over.commit()
    finally:
        over.close()
