"""The single writer: the lock, batches and their crash-safe commit order, and the verbs every
write is made of (add messages, change keywords/labels, remove messages).

A write goes through `Store.writer()`, which holds ei.lock for its whole span. Messages are
analysed in worker processes (analysis.py) and written here, in order, in batches. A batch
becomes durable in this order:
git checkpoint -> journal commit (keyword/label changes) -> Xapian commit
-> over.sqlite3 commit -> mail_sync commit,
so a crash at any point leaves nothing that a re-run does not repair: uncommitted message
numbers are handed out again and their Xapian documents replaced; commits git holds past the
index marks are indexed by the next writer (catchup.py), never written twice.

What to write is each command's business (ops/imports.py, ops/tagging.py, ops/reindex.py):
they open a writer in the mode they need (constructor arguments) and call its verbs.
"""

from __future__ import annotations

import os
import time
from contextlib import nullcontext
from typing import TYPE_CHECKING, Callable, Iterable, Mapping

import msgspec

from lei_store import tally
from lei_store.disk.gitlog import mark_key
from lei_store.disk.journal import Entry, Event, Journal
from lei_store.disk.mailsync import MailSync
from lei_store.errors import InputError
from lei_store.locks import locked
from lei_store.mail.keywords import VolatileChange
from lei_store.sources.items import Item
from lei_store.write import epochs, overidx, searchidx, shardprocs
from lei_store.write.analysis import Analysed, analyse, analysed, list_id_terms
from lei_store.write.faults import reached
from lei_store.write.feedidx import FeedIndex
from lei_store.write.searchidx import VolatileState

if TYPE_CHECKING:
    from lei_store.write.catchup import CaughtUp
    from lei_store.write.store import Store


class ImportStats(msgspec.Struct):
    """What an import did; printed as JSON by the CLI."""

    messages: int = 0  # messages read from the inputs
    added: int = 0  # new messages (new docids)
    attached: int = 0  # new copies of a message already stored (content hash match)
    duplicates: int = 0  # blobs already stored, byte for byte
    skipped: int = 0  # Maildir files already synced (not read at all)
    keywords_updated: int = 0  # stored messages whose keywords changed
    renamed: int = 0  # Maildir files whose flags changed, recognised by name without reading them
    exported: int = 0  # synced Maildir files renamed to show changed keywords
    problems: int = 0  # messages stored despite parts that did not parse
    rejected: int = 0  # inputs not stored: unreadable, not a regular file, over the size limit
    over_quota: int = 0  # messages not stored because the store's quota is reached
    seconds: float = 0.0


class AddOptions(msgspec.Struct, frozen=True):
    """How add_messages treats what it is given."""

    use_keywords: bool = True  # a source's flags become the message's keywords (import --no-kw: False)
    keywords: frozenset[str] = frozenset()  # given to newly stored messages (import +kw:)
    labels: frozenset[str] = frozenset()  # likewise (import +L:)
    record_sync: bool = True  # remember where each came from in mail_sync (import --no-mail-sync: False)
    from_git: bool = False  # the messages are commits already in the epochs: only the index is written


FROM_GIT = AddOptions(record_sync=False, from_git=True)

# A batch also ends once its documents reach this many serialised bytes: Xapian holds a batch's
# postings in memory until the commit (a shard writer peaks at ~61 MB with 8 MiB, 44 with 4), so a
# batch of large patches must end sooner. Each commit rewrites a block of the postlist and
# position tables per term, and there are more distinct blocks as a shard grows: at 65k a 4 MiB
# batch's commit took 0.2 s at first and 0.8 s at the end (39% of the time), so the bound is as
# large as the memory goal (300 MB in all) allows.
BATCH_DOC_BYTES = 8 * 2**20


class Writer:
    """The one process writing a store. Use as a context manager: it holds ei.lock.

    Modes are chosen when it is made: journaling=False for a writer that rebuilds from the
    journal (reindex, a replica's fetch), write_git=False for one that indexes commits git
    already holds (reindex), take_lock=False when the caller holds ei.lock, JOURNALED gives
    rebuilt documents their journaled keywords and labels as they are added, and ON_COMMIT
    is told each batch's keyword/label changes once Xapian committed them (tag shows them on
    synced Maildir files there, inside the mail_sync transaction).
    """

    def __init__(self, store: Store, *, lock_timeout: float | None = None,
                 rotate_bytes: int = epochs.ROTATE_BYTES, jobs: int | None = None, batch_size: int = 1000,
                 journaling: bool = True, write_git: bool = True, take_lock: bool = True,
                 journaled: Mapping[bytes, Entry] | None = None,
                 on_commit: Callable[[Writer, list[VolatileState]], None] | None = None,
                 progress: Callable[[int], None] | None = None):
        self.store = store
        self.lay = store.layout
        self.lock_timeout = lock_timeout
        self.rotate_bytes = rotate_bytes
        self.jobs = jobs if jobs is not None else (os.cpu_count() or 1)
        self.batch_size = batch_size
        self.journaling = journaling
        self.write_git = write_git
        self.take_lock = take_lock
        self.journaled = journaled or {}
        self.on_commit = on_commit
        self.progress = progress
        self.stats = ImportStats()
        self.recovered: CaughtUp | None = None  # what catch-up indexed when this writer opened
        self._meta: dict[str, str] = {}  # eidx_meta entries written with the next over commit
        self._removing = False  # this batch unindexes messages: commit over before Xapian
        self._pending: dict[bytes, bytes] = {}  # oidbin -> content hash, written since last checkpoint
        self._in_batch = 0
        self._batch_doc_bytes = 0  # serialised Xapian documents this batch sent to the shard writers
        self.feed: FeedIndex | None = None  # the change feed, kept by every journaling writer
        self._added: dict[int, bytes] = {}  # this batch's new messages: num -> key blob
        self._attached: list[tuple[int, bytes]] = []  # this batch's new copies: (num, blob)
        self._removed: list[bytes] = []  # this batch's removed messages' key blobs
        self._sizes: dict[bytes, int] = {}  # bytes of this batch's new blobs
        self._batch_use = (0, 0)  # bytes and messages this batch adds (the quota counts them now)

    # -- lifecycle --------------------------------------------------------
    def __enter__(self) -> Writer:
        self._lock = locked(self.lay.writer_lock, self.lock_timeout) if self.take_lock else nullcontext()
        self._lock.__enter__()
        try:
            self.over = overidx.OverIdx(self.lay.over)
            self.shards = shardprocs.ShardProcesses(searchidx.shard_paths(self.lay))
            self.mailsync = MailSync(self.lay.mail_sync, self.lay.mail_sync_lock)
            self.journal = Journal(self.lay.journal)
            self.feed = FeedIndex(self.journal) if self.journaling else None
            self.git = epochs.EpochWriter(self.lay, epochs.default_branch(), self.rotate_bytes)
            self.ident = epochs.committer_ident()
            self._begin_batch()
        except BaseException:
            self._lock.__exit__(None, None, None)
            raise
        if self.write_git:
            self._catch_up()
        if self.feed is not None and not self.feed.backfilled:
            self._backfill()
        return self

    def _backfill(self) -> None:
        """A store from before the change feed (or lei's): record every message it holds as added,
        once, so a follower starting from modseq 0 gets the whole store."""
        from lei_store.write.feedidx import adopt

        try:
            nums = self.over.real_nums()
            for i in range(0, len(nums), 5000):
                adopt(self, nums[i:i + 5000])
                self.flush()
                reached("feed-backfill")
            assert self.feed is not None
            self.feed.mark_backfilled()
            self.flush()
        except BaseException as e:
            self.__exit__(type(e), e, e.__traceback__)
            raise

    def _catch_up(self) -> None:
        """Index commits an earlier writer left in git unindexed (killed between its git checkpoint
        and its index commit) rather than committing them again: git history must not grow."""
        from lei_store.write.catchup import catch_up

        try:
            saved, self.stats = self.stats, ImportStats()  # not part of what this writer is asked to do
            self.recovered = catch_up(self, self.lay)
            self.stats = saved
        except BaseException as e:
            self.__exit__(type(e), e, e.__traceback__)
            raise

    def __exit__(self, exc_type, exc, tb) -> None:
        finished = False
        try:
            if exc_type is None or issubclass(exc_type, (InputError, KeyboardInterrupt)):
                self.flush()  # what was read completely is kept
                self.git.close()
                finished = True
        finally:
            if not finished:
                self._abandon()
            for close in (self.shards.close, self.over.close, self.mailsync.close, self.journal.close):
                try:
                    close()
                except Exception:
                    pass
            try:
                if finished:
                    self.git.maintain()  # under ei.lock, with the shard writers gone
            finally:
                self._lock.__exit__(None, None, None)

    def _begin_batch(self) -> None:
        self.over.begin()
        self._in_batch = 0
        self._batch_doc_bytes = 0

    def flush(self) -> None:
        """Make everything written so far durable, in crash-safe order: git, then the journal
        (so no keyword change is visible before it is recorded), Xapian, over, mail_sync."""
        self.git.checkpoint()
        reached("git-checkpoint")
        tally.add("commits")
        self._mark_indexed()
        self._pending.clear()
        self.store.refresh()
        changes = self.shards.take_changes()
        events = self._events(changes)  # the batch's bookkeeping ends here whether the feed is kept or not
        if self.feed is not None:
            self.feed.record(events, self._sizes)
            self.feed.commit()
            reached("journal-record")
        self._sizes = {}
        self.journal.commit()
        reached("journal-commit")
        for key, value in self._meta.items():
            self.over.set_meta(key, value)
        self._meta.clear()
        if self._removing:  # rows go before documents: a crash between leaves invisible orphans, not
            self.over.commit()  # rows whose documents are gone (unsearchable, so no rm could reach them)
            reached("over-commit")
        self.stats.keywords_updated += self.shards.commit()
        reached("xapian-commit")
        if not self._removing:
            self.over.commit()
            reached("over-commit")
        if self.on_commit and changes:
            self.on_commit(self, changes)
        self.mailsync.commit()
        reached("sync-commit")
        self._removing = False
        self._begin_batch()

    def _events(self, changes: list[VolatileState]) -> list[Event]:
        """The batch as the feed tells it: messages added, copies attached, states changed, messages
        removed (each added or changed one with its whole keyword/label state)."""
        added, attached, removed = self._added, self._attached, self._removed
        self._added, self._attached, self._removed, self._batch_use = {}, [], [], (0, 0)
        if self.feed is None:
            return []
        state = {c.num: (c.kw, c.labels) for c in changes}
        events = []
        for num, oid in added.items():
            kw, labels = state.pop(num, ([], []))
            events.append(Event(oid, "set", kw, labels, "added"))
        new_state = {num: (list(e.kw), list(e.labels)) for num, e in zip(added, events, strict=True)}
        for num, blob in attached:
            key = self.over.blobs_of(num)[:1]
            if key:
                known = state.pop(num) if num in state else new_state.get(num)
                kw, labels = known if known is not None else self.feed.state_of(key[0])
                events.append(Event(key[0], "set", kw, labels, "copy", blob.hex()))
        for num, (kw, labels) in state.items():
            for first in self.over.blobs_of(num)[:1]:
                events.append(Event(first, "set", kw, labels, "changed"))
        return events + [Event(oid, "rm", kind="removed") for oid in removed]

    def _mark_indexed(self) -> None:
        """Record each written epoch's tip: everything up to it is indexed once this batch commits
        (what git holds past it is indexed by catchup.py, after a crash or a replica's fetch)."""
        for epoch in self.git.touched:
            tip = epochs.read_ref(self.lay.epoch(epoch), self.git.branch)
            if tip:
                self._meta[mark_key(epoch)] = tip
        self.git.touched.clear()

    def _abandon(self) -> None:
        """Drop the unfinished batch. Git objects and Xapian documents written for it may stay:
        a retry re-uses the blobs and hands out the same message numbers, replacing the documents."""
        for undo in (self.shards.abort, self.git.abort, self.over.rollback, self.mailsync.rollback,
                     self.journal.rollback):
            try:
                undo()
            except Exception:  # the original error is the one to report
                pass
        if self.feed is not None:
            try:
                self.feed.forget_cache()
            except Exception:
                pass

    def set_meta(self, key: str, value: str) -> None:
        """An eidx_meta entry, written with the next over.sqlite3 commit."""
        self._meta[key] = value

    def index_mark(self, epoch: int) -> str | None:
        """The last commit of EPOCH the index holds (catchup.py, reindex)."""
        return self._meta.get(mark_key(epoch)) or self.over.get_meta(mark_key(epoch))

    def tick(self) -> None:
        """Count one unit of work; commit in batches so memory stays bounded."""
        self._in_batch += 1
        if self.progress:
            self.progress(1)
        if self._in_batch >= self.batch_size or self._batch_doc_bytes >= BATCH_DOC_BYTES:
            self.flush()

    # -- adding messages -----------------------------------------------------
    def add_messages(self, items: Iterable[Item], opts: AddOptions = AddOptions(),
                     after_each: Callable[[Item], None] | None = None) -> ImportStats:
        """Store a stream of messages. Errors raised by the stream surface after what came before it is stored."""
        started = time.monotonic()
        failure = None
        try:
            for item, a in analysed(items, self.jobs):
                self._store(item, a, opts)
                if after_each:
                    after_each(item)
        except InputError as e:
            failure = e
        self.stats.seconds += time.monotonic() - started
        if failure:
            raise failure
        return self.stats

    def add_from_git(self, items: Iterable[Item], after_each: Callable[[Item], None] | None = None) -> ImportStats:
        """Index messages that are commits already in the epochs (reindex, catch-up): as committed,
        without sync rows, without anything added."""
        return self.add_messages(items, FROM_GIT, after_each)

    def _store(self, item: Item, a: Analysed, opts: AddOptions) -> None:
        self.stats.messages += 1
        self.stats.problems += bool(a.problem)
        source_kw = item.keywords if opts.use_keywords else None
        if item.folder and opts.record_sync:
            self._record_sync(item, a.oidbin)
        docids = self.over.docids_of_blob(a.oidbin)
        if docids and (a.oidbin in self._pending or self.store.has_blob(a.oidbin)):
            self.stats.duplicates += 1
            if source_kw is not None:
                for num in docids:
                    self.shards.update_volatile(num, VolatileChange(set_kw=source_kw))
                reached("keywords-set")
            self.tick()
            return
        matches = self._content_matches(a)
        if opts.from_git:  # indexed as they are: +kw/+L are for new input
            self._pending[a.oidbin] = a.chash
            self._index(a, matches, source_kw or frozenset(), frozenset())
        elif self._within_quota(len(a.blob), not matches):
            self._commit_blob(a)
            self._index(a, matches, (source_kw or frozenset()) | opts.keywords, opts.labels)
        self.tick()

    def _within_quota(self, size: int, new_message: bool) -> bool:
        """Whether the store's quota leaves room for one more blob (counting this batch's)."""
        if self.feed is None:
            return True
        used_bytes, used_messages = self._batch_use
        usage = self.feed.usage
        if not usage._replace(bytes=usage.bytes + used_bytes, messages=usage.messages + used_messages).allows(
                size, new_message):
            self.stats.over_quota += 1
            return False
        self._batch_use = (used_bytes + size, used_messages + new_message)
        return True

    def _record_sync(self, item: Item, oidbin: bytes) -> None:
        assert item.folder is not None
        fid = self.mailsync.folder_id(item.folder)
        assert fid is not None  # created when missing
        if item.uid is not None:
            self.mailsync.add_uid(oidbin, fid, item.uid)
        elif item.name is not None:
            self.mailsync.add_name(oidbin, fid, item.name)
        reached("sync-row")

    def _commit_blob(self, a: Analysed) -> None:
        self._pending[a.oidbin] = a.chash
        if not self.write_git:
            return
        tally.add("messages_imported")
        tally.add("bytes_imported", len(a.blob))
        name, email = a.author
        self.git.add(a.blob, (name, email, a.ds, a.ds_tz), (*self.ident, a.ts, a.ts_tz), a.subject)
        reached("blob-written")

    def _index(self, a: Analysed, matches: list[int], keywords: frozenset[str], labels: frozenset[str]) -> None:
        known = self.journaled.get(a.oidbin)
        self._sizes[a.oidbin] = len(a.blob)
        if matches:
            self.stats.attached += 1
            change = (VolatileChange(set_kw=frozenset(known.kw), set_labels=frozenset(known.labels)) if known
                      else VolatileChange(add_kw=keywords, add_labels=labels))
            for num in matches:
                self.over.add_xref(num, a.oidbin)
                self.shards.merge_terms(num, list_id_terms(a.list_ids))
                self.shards.update_volatile(num, change)
                self._attached.append((num, a.oidbin))
            return
        if known:  # rebuilding: the journal's state goes in with the document, not as a later change
            keywords, labels = frozenset(known.kw), frozenset(known.labels)
        self.stats.added += 1
        num = self.over.next_num()
        tid = self.over.add_message(num, a.mids, a.refs, a.subject_path, a.ts, a.ds, a.ddd, a.oidbin)
        reached("over-row")
        self.shards.add(num, a.doc, tid, keywords, labels)
        self._batch_doc_bytes += len(a.doc)
        self._added[num] = a.oidbin
        reached("xapian-doc")

    def _content_matches(self, a: Analysed) -> list[int]:
        """Docids of stored messages sharing a Message-ID and the content hash (§3.1)."""
        found: list[int] = []
        for mid in a.mids:
            for row in self.over.rows_for_mid(mid):
                if row.num not in found and self._chash_of(bytes.fromhex(row.blob)) == a.chash:
                    found.append(row.num)
        return found

    def _chash_of(self, oidbin: bytes) -> bytes | None:
        if oidbin in self._pending:
            return self._pending[oidbin]
        raw = self.store.read_blob(oidbin)
        if raw is None:
            return None
        from lei_store.mail.contenthash import content_hash
        from lei_store.mail.message import Message

        return content_hash(Message(raw))

    # -- stored messages ----------------------------------------------------
    def locate(self, raw: bytes) -> list[int]:
        """Docids of the stored message this one is (Message-ID + content hash, else its blob OID)."""
        from lei_store.disk.blobs import git_oid

        found = self._content_matches(analyse(raw))
        return found or self.over.docids_of_blob(git_oid(raw))

    def change_volatile(self, nums: Iterable[int], change: VolatileChange) -> None:
        """Change messages' keywords and labels; stats.keywords_updated counts, at commit, those
        that did change."""
        for num in nums:
            self.shards.update_volatile(num, change)
            self.tick()

    def remove(self, nums: Iterable[int], *, from_git: bool = False) -> int:
        """Unindex messages (lei rm): a `d` commit per blob, rows and documents deleted; git keeps the blobs.
        Batches holding removals commit over.sqlite3 before Xapian (see flush). FROM_GIT: the `d`
        commits are already in git. Committed with the batch (call flush to commit now)."""
        removed = 0
        self._removing = True
        for num in nums:
            blobs = self.over.blobs_of(num)
            if not blobs:
                continue
            for oid in blobs if self.write_git and not from_git else ():
                raw = self.store.read_blob(oid)
                if raw is not None:
                    self.git.remove(raw, self.ident)
            if self.journaling:
                self._removed.append(blobs[0])
            self._added.pop(num, None)
            self.over.remove_message(num)
            self.shards.delete(num)
            removed += 1
            self.tick()
        return removed
