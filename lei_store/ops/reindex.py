"""Rebuild the index from git alone: over.sqlite3 and every Xapian shard, then the journal.

Git is the source of truth. `reindex()` walks every epoch's commits in order
(`m` = a message, `d` = its removal, spec §2.4), indexes the blobs into a new
`ei15.reindex/` beside the live `ei15/`, replays the keyword/label journal,
and swaps the two directories. Readers keep using the old index until the
swap. Progress (the last commit indexed per epoch) is committed with each
batch into the new over.sqlite3, so a killed reindex resumes where it stopped.
`index_new_commits()` indexes, on the live index, what git holds past the marks
(catchup.py): how a replica indexes what `git fetch` brought.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Callable, Iterator

import msgspec

from lei_store.disk.gitlog import BlobStream, Change, commits_since, mark_key
from lei_store.disk.journal import Entry, Journal
from lei_store.disk.over import Over
from lei_store.mail.keywords import VolatileChange
from lei_store.ops import rejournal
from lei_store.paths import Layout, existing_store
from lei_store.sources.items import Item
from lei_store.write import epochs, overidx, searchidx
from lei_store.write.writer import Writer

BUILD = "ei15.reindex"
DONE = "lei-store:reindex-complete"


class ReindexStats(msgspec.Struct):
    """What a reindex (or an incremental index of fetched commits) did."""

    commits: int = 0  # commits read
    messages: int = 0  # message blobs indexed
    removed: int = 0  # messages unindexed by `d` commits
    keywords_restored: int = 0  # messages whose keywords/labels came back from the journal
    resumed: bool = False  # an interrupted reindex was continued
    seconds: float = 0.0
    epochs_rewritten: list[int] = []  # fetch: epochs the source rewrote (gc --expunge), so all was re-indexed
    journal_rebuilt: str | None = None  # a lost journal was first written again from the old index


def journaled_states(lay: Layout) -> dict[bytes, Entry]:
    """Each blob's last journaled keyword/label state: rebuilt documents are given it as they are
    added (much cheaper than changing each document afterwards)."""
    if not lay.journal.exists():
        return {}
    journal = Journal(lay.journal, readonly=True)
    try:
        return {e.oidbin: e for e in journal.latest() if e.op == "set"}
    finally:
        journal.db.close()


def replay_journal(writer: Writer) -> int:
    """Set every message's keywords and labels to their last journaled state (after a rebuild).
    The writer must not journal (journaling=False): the journal is the source here."""
    if writer.journaling:
        raise ValueError("replay_journal needs a writer opened with journaling=False")
    applied = 0
    for entry in writer.journal.latest():
        if entry.op != "set":
            continue
        nums = writer.over.docids_of_blob(entry.oidbin)
        writer.change_volatile(nums, VolatileChange(set_kw=frozenset(entry.kw), set_labels=frozenset(entry.labels)))
        applied += len(nums)
        if not nums:
            writer.tick()
    writer.flush()
    return applied


def _index_epochs(writer: Writer, lay: Layout, stats: ReindexStats) -> None:
    """Index every commit after each epoch's mark; marks advance with each committed batch."""
    blobs = BlobStream(lay.all_git)
    try:
        for epoch in lay.epoch_numbers():
            _index_changes(writer, commits_since(lay.epoch(epoch), epoch, writer.index_mark(epoch)), blobs, stats)
            writer.flush()
    finally:
        blobs.close()


def _index_changes(writer: Writer, changes: Iterator[Change], blobs: BlobStream, stats: ReindexStats) -> None:
    """Messages go through the import pipeline in runs; a removal waits for the run before it."""
    run: list[Change] = []

    def items():
        for c in run:
            yield Item(blobs.read(c.oid), None, origin=f"{c.epoch}.git {c.commit}", now=c.when)

    def mark(item: Item) -> None:
        epoch, commit = item.origin.split()
        writer.set_meta(mark_key(int(epoch.removesuffix(".git"))), commit)

    def drain() -> None:
        if run:
            writer.add_from_git(items(), after_each=mark)
            stats.messages += len(run)
            run.clear()

    for change in changes:
        stats.commits += 1
        if change.path == "m":
            run.append(change)
            if len(run) >= 5000:
                drain()
            continue
        drain()
        stats.removed += writer.remove(writer.over.docids_of_blob(bytes.fromhex(change.oid)))
        writer.set_meta(mark_key(change.epoch), change.commit)
    drain()


def _finish_swap(lay: Layout) -> bool:
    """Put a completed rebuild in place of the live index; True when one was waiting."""
    build = lay.root / BUILD
    if not (build / "over.sqlite3").exists():
        return False
    with Over(build / "over.sqlite3") as over:
        done = over.meta(DONE)
    if not done:
        return False
    old = lay.root / f"{lay.ei.name}.old"
    if lay.ei.exists():
        shutil.rmtree(old, ignore_errors=True)
        lay.ei.rename(old)
    build.rename(lay.ei)
    shutil.rmtree(old, ignore_errors=True)
    return True


def reindex(root: Path, *, shards: int | None = None, jobs: int | None = None,
            progress: Callable[[int], None] | None = None, lock_timeout: float | None = None,
            batch_size: int = 1000) -> ReindexStats:
    """Rebuild over.sqlite3 and the Xapian shards from the epochs, then replay the journal."""
    from lei_store.locks import locked
    from lei_store.write.store import Store

    started = time.monotonic()
    lay = Layout(Path(root).absolute())
    if not lay.all_git.is_dir():
        existing_store(lay.root)  # raises the usual "not a store" error
    stats = ReindexStats()
    store = Store(lay.root, BUILD)
    stats.journal_rebuilt = rejournal.ensure_journal(lay, lock_timeout)  # before the index that holds it goes
    with locked(lay.writer_lock, lock_timeout):
        if _finish_swap(lay):  # a previous run was killed just before its swap
            stats.resumed = True
        else:
            stats.resumed = (store.layout.over).exists()
            if not stats.resumed:
                shutil.rmtree(store.layout.ei, ignore_errors=True)
                searchidx.create_shards(store.layout, shards or lay.shard_count() or 1)
                overidx.create(store.layout.over)
            with store.writer(jobs=jobs, write_git=False, journaling=False, journaled=journaled_states(lay),
                              batch_size=batch_size, progress=progress, take_lock=False) as writer:
                _index_epochs(writer, lay, stats)
                stats.keywords_restored = replay_journal(writer)
                writer.set_meta(DONE, str(int(time.time())))
                writer.flush()
            _finish_swap(lay)
    if stats.journal_rebuilt:
        rejournal.record_feed(lay, lock_timeout)  # mailboxes and counters now, not at the next write
    stats.seconds = time.monotonic() - started
    return stats


def index_new_commits(root: Path, *, jobs: int | None = None, progress=None,
                      lock_timeout: float | None = None) -> ReindexStats:
    """Index the commits the live index has not seen (after `git fetch` on a replica), each
    message with its journaled keywords and labels."""
    from lei_store.write.catchup import catch_up
    from lei_store.write.store import Store

    started = time.monotonic()
    stats = ReindexStats()
    store = Store.open(root)
    with store.writer(jobs=jobs, write_git=False, journaling=False, journaled=journaled_states(store.layout),
                      progress=progress, lock_timeout=lock_timeout) as writer:
        epochs.update_alternates(store.layout)
        done = catch_up(writer, store.layout)
        stats.commits, stats.messages, stats.removed = done.commits, done.messages, done.removed
        stats.keywords_restored = replay_journal(writer)
    stats.seconds = time.monotonic() - started
    return stats
