"""Index what git holds past the index marks: commits the index has not seen.

Two ways a store gets there. A writer killed (or out of disk) after a batch's git
checkpoint but before the index committed it: git has the commits, the index does not.
Writing them again would grow history that replicas fetch, so the next writer indexes
them instead (Writer.__enter__). And a replica after `git fetch` (replica.py).

Only each blob's last change in the walk matters: a message added and removed again
within it is never indexed; blobs the index already holds (lei indexes its own commits,
and an epoch never written by us has no mark) cost a lookup, not an analysis.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

from lei_store import git
from lei_store.disk.gitlog import BlobStream, Change, commits_since, head_commit, mark_key
from lei_store.sources.items import Item


class CaughtUp(NamedTuple):
    """What a catch-up walked and indexed."""
    commits: int = 0  # commits walked
    messages: int = 0  # blobs indexed
    removed: int = 0  # messages unindexed by d commits


def _is_ancestor(repo: Path, old: str, new: str) -> bool:
    return git.ok(repo, "merge-base", "--is-ancestor", old, new)


def _tail(repo: Path, epoch: int, mark: str | None) -> tuple[list[Change], str | None]:
    """The epoch's changes past MARK (all of them when MARK is gone from its history), and its tip."""
    tip = head_commit(repo)
    if tip is None or tip == mark:
        return [], tip
    if mark and not _is_ancestor(repo, mark, tip):
        mark = None  # history was rewritten under the mark: walk it all, indexed blobs are skipped
    return list(commits_since(repo, epoch, mark)), tip


def _last_changes(changes: list[Change]) -> list[Change]:
    """Each blob's last change, in commit order."""
    last = {c.oid: i for i, c in enumerate(changes)}
    return [c for i, c in enumerate(changes) if last[c.oid] == i]


def catch_up(writer, layout) -> CaughtUp:
    """Bring the index level with git, epoch by epoch, committing as it goes (writer: a Writer
    holding the lock; layout: the store whose epochs are walked)."""
    commits = messages = removed = 0
    blobs = None
    try:
        for epoch in layout.epoch_numbers():
            changes, tip = _tail(layout.epoch(epoch), epoch, writer.index_mark(epoch))
            if not changes:
                continue
            commits += len(changes)
            adds, drops, others = [], [], []
            for c in _last_changes(changes):
                held = writer.over.docids_of_blob(bytes.fromhex(c.oid))
                if c.path == "m" and not held:
                    adds.append(c)
                elif c.path == "d" and held:
                    drops.extend(held)
                elif c.path == "m":
                    others.extend(held)  # indexed by someone else (lei): the feed may not know it
            blobs = blobs or BlobStream(layout.all_git)
            items = (Item(blobs.read(c.oid), None, origin=f"{c.epoch}.git {c.commit}", now=c.when) for c in adds)
            writer.add_from_git(items)
            removed += writer.remove(drops, from_git=True)
            if writer.feed is not None and others:
                from lei_store.write.feedidx import adopt

                adopt(writer, sorted(set(others)))
            messages += len(adds)
            writer.set_meta(mark_key(epoch), tip)
            writer.flush()
    finally:
        if blobs is not None:
            blobs.close()
    return CaughtUp(commits, messages, removed)
