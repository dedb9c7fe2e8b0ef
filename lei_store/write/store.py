"""The store: creating and opening one, and the single writer that imports into it.

A write goes through `Store.writer()`, which holds ei.lock for its whole
span. Messages are analysed in worker processes (analysis.py) and written
here, in order, in batches. A batch becomes durable in this order:
git checkpoint -> journal commit (keyword/label changes) -> Xapian commit
-> over.sqlite3 commit -> mail_sync commit,
so a crash at any point leaves nothing that a re-run of the same import does
not repair: uncommitted message numbers are handed out again and their
Xapian documents replaced; blobs in git without an xref3 row are re-committed.
"""

from __future__ import annotations

import os
import time
from collections import deque
from contextlib import nullcontext
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Callable, Iterable, Iterator

import msgspec

from lei_store.write import epochs, overidx, searchidx
from lei_store.write.analysis import Analysed, analyse, list_id_terms
from lei_store.disk.blobs import BlobReader
from lei_store.errors import InputError, NotAStoreError, StorePermissionError
from lei_store.write.faults import reached
from lei_store.disk.gitlog import mark_key
from lei_store.sources import DEFAULT_MAX_SIZE, Item, ReadOptions, Source
from lei_store.disk.journal import Journal
from lei_store.locks import locked
from lei_store.disk.mailsync import MailSync, maildir_loc
from lei_store.paths import Layout, default_store_dir, existing_store, new_store_shard_count


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
    seconds: float = 0.0


class Store:
    """A lei store directory: local/N.git, ALL.git, ei15/, mail_sync.sqlite3."""

    def __init__(self, root: Path, ei_name: str | None = None):
        root = Path(root).absolute()
        self.layout = Layout(root, ei_name) if ei_name else Layout(root)
        self._blobs: BlobReader | None = None

    @property
    def root(self) -> Path:
        return self.layout.root

    # -- opening ----------------------------------------------------------
    @classmethod
    def create(cls, root: Path | None = None, shards: int | None = None) -> "Store":
        """Create (or complete) a store in the layout lei uses; an existing shard count is kept.

        A new store is built beside its place and renamed into it (an absent or empty directory),
        so a create killed half-way leaves no half-made store for the next command to trip on."""
        store = cls(root or default_store_dir())
        lay = store.layout
        if lay.root.exists() and not lay.root.is_dir():
            raise NotAStoreError(f"{lay.root}: exists and is not a directory")
        if not lay.root.exists() or not any(lay.root.iterdir()):
            _build_beside(lay, shards)
        lay.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        if not os.access(lay.root, os.W_OK):
            raise StorePermissionError(f"{lay.root}: not writable")
        _build(lay, shards)  # completes what is missing; a no-op on a whole store
        return store

    @classmethod
    def open(cls, root: Path | None = None, *, create: bool = False) -> "Store":
        """Open an existing store; with create=True make it when the directory is absent or empty."""
        store = cls(root or default_store_dir())
        lay = store.layout
        if not lay.is_store() and create and (
                not lay.root.exists() or (lay.root.is_dir() and not any(lay.root.iterdir()))):
            return cls.create(lay.root)
        existing_store(lay.root)
        return store

    # -- reading ----------------------------------------------------------
    @property
    def blobs(self) -> BlobReader:
        if self._blobs is None:
            self._blobs = BlobReader(self.layout)
        return self._blobs

    def refresh(self) -> None:
        self._blobs = None

    def repo(self):
        return self.blobs.repo()

    def has_blob(self, oidbin: bytes) -> bool:
        return self.blobs.has(oidbin)

    def read_blob(self, oid: str | bytes) -> bytes | None:
        return self.blobs.read(oid)

    def find_blob(self, oid: str) -> bytes | None:
        return self.blobs.find(oid)

    def writer(self, **options) -> "Writer":
        return Writer(self, **options)


def _build(lay: Layout, shards: int | None) -> None:
    """Every part of a store that is missing; each step leaves an existing part as it is."""
    epochs.init_bare(lay.all_git, epochs.default_branch(), epoch=False)
    lay.local.mkdir(exist_ok=True)
    epochs.update_alternates(lay)
    searchidx.create_shards(lay, lay.shard_count() or shards or new_store_shard_count())
    reached("store-building")
    overidx.create(lay.over)
    lay.writer_lock.touch()
    MailSync(lay.mail_sync, lay.mail_sync_lock).close()
    Journal(lay.journal).close()


def _build_beside(lay: Layout, shards: int | None) -> None:
    """Build a new store in a temporary directory next to ROOT and rename it into place (rename
    replaces an empty directory). Where that cannot be done (ROOT is a mount point, say), the
    caller builds in place."""
    import shutil

    parent = lay.root.parent
    parent.mkdir(parents=True, exist_ok=True)
    for stale in parent.glob(f".{lay.root.name}.creating-*"):  # left by a create that was killed
        pid = stale.name.rsplit("-", 1)[-1]
        if pid.isdigit() and not os.path.exists(f"/proc/{pid}"):
            shutil.rmtree(stale, ignore_errors=True)
    tmp = parent / f".{lay.root.name}.creating-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        tmp.mkdir(mode=0o700)
        _build(Layout(tmp, lay.ei_name), shards)
        os.rename(tmp, lay.root)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)


def _analyse_chunk(raws: list[tuple[bytes, int | None]]) -> bytes:
    return msgspec.msgpack.encode([analyse(r, now) for r, now in raws])


_DECODER = msgspec.msgpack.Decoder(list[Analysed])


class Writer:
    """The one process writing a store. Use as a context manager: it holds ei.lock."""

    def __init__(self, store: Store, *, lock_timeout: float | None = None,
                 rotate_bytes: int = epochs.ROTATE_BYTES, jobs: int | None = None,
                 batch_size: int = 1000, mail_sync: bool = True, use_keywords: bool = True,
                 add_keywords: Iterable[str] = (), add_labels: Iterable[str] = (),
                 export_kw: bool = False, progress: Callable[[int], None] | None = None,
                 progress_total: Callable[[int], None] | None = None, write_git: bool = True,
                 take_lock: bool = True, max_size: int = DEFAULT_MAX_SIZE,
                 on_skip: Callable[[str, str], None] | None = None):
        self.store = store
        self.lay = store.layout
        self.lock_timeout = lock_timeout
        self.rotate_bytes = rotate_bytes
        self.jobs = jobs if jobs is not None else (os.cpu_count() or 1)
        self.batch_size = batch_size
        self.sync_enabled = mail_sync
        self.use_keywords = use_keywords
        self.add_keywords = frozenset(add_keywords)
        self.add_labels = frozenset(add_labels)
        self.export_kw = export_kw
        self.progress = progress
        self.progress_total = progress_total  # told the amount of work when a source knows it
        self.stats = ImportStats()
        self.on_skip = on_skip  # told (where, why) of each input that is skipped
        self.read_options = ReadOptions(max_size, self._skipped)
        self.journaling = True  # off while replaying the journal itself
        self.write_git = write_git  # off for reindex: the blobs are already in git
        self.take_lock = take_lock  # off when the caller already holds ei.lock
        self.meta: dict[str, str] = {}  # eidx_meta entries written with the next over commit
        self.journaled: dict | None = None  # blob -> journal.Entry, when indexing from git (reindex)
        self._removing = False  # this batch unindexes messages: commit over before Xapian
        self._lock = None
        self.recovered = None  # what catch-up indexed when this writer opened (catchup.CaughtUp)
        self._pending: dict[bytes, bytes] = {}  # oidbin -> content hash, written since last checkpoint
        self._in_batch = 0

    # -- lifecycle --------------------------------------------------------
    def __enter__(self) -> "Writer":
        self._lock = locked(self.lay.writer_lock, self.lock_timeout) if self.take_lock else nullcontext()
        self._lock.__enter__()
        try:
            self.over = overidx.OverIdx(self.lay.over)
            self.shards = searchidx.ShardProcesses(searchidx.shard_paths(self.lay))
            self.mailsync = MailSync(self.lay.mail_sync, self.lay.mail_sync_lock)
            self.journal = Journal(self.lay.journal)
            self.git = epochs.EpochWriter(self.lay, epochs.default_branch(), self.rotate_bytes)
            self.ident = epochs.committer_ident()
            self._begin_batch()
        except BaseException:
            self._lock.__exit__(None, None, None)
            raise
        if self.write_git:
            self._catch_up()
        return self

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
            self._lock.__exit__(None, None, None)

    def _begin_batch(self) -> None:
        self.over.begin()
        self._in_batch = 0

    def flush(self) -> None:
        """Make everything written so far durable, in crash-safe order: git, then the journal
        (so no keyword change is visible before it is recorded), Xapian, over, mail_sync."""
        self.git.checkpoint()
        reached("git-checkpoint")
        self._mark_indexed()
        self._pending.clear()
        self.store.refresh()
        changes = self.shards.take_changes()
        if self.journaling:
            self.journal.record((oid, "set", kw, labels) for num, kw, labels in changes
                                for oid in self.over.blobs_of(num)[:1])
            reached("journal-record")
        self.journal.commit()
        reached("journal-commit")
        for key, value in self.meta.items():
            self.over.set_meta(key, value)
        if self._removing:  # rows go before documents: a crash between leaves invisible orphans, not
            self.over.commit()  # rows whose documents are gone (unsearchable, so no rm could reach them)
            reached("over-commit")
        self.stats.keywords_updated += self.shards.commit()
        reached("xapian-commit")
        if not self._removing:
            self.over.commit()
            reached("over-commit")
        if self.export_kw and changes:
            self._export_keywords(changes)
        self.mailsync.commit()
        reached("sync-commit")
        self._removing = False
        self._begin_batch()

    def _mark_indexed(self) -> None:
        """Record each written epoch's tip: everything up to it is indexed once this batch commits
        (what git holds past it is indexed by catchup.py, after a crash or a replica's fetch)."""
        for epoch in self.git.touched:
            tip = epochs.read_ref(self.lay.epoch(epoch), self.git.branch)
            if tip:
                self.meta[mark_key(epoch)] = tip
        self.git.touched.clear()

    def _export_keywords(self, changes) -> None:
        """Show changed keywords on every synced Maildir copy of those messages (as lei does)."""
        from lei_store.ops.exportkw import export_maildir_copies

        kw_of_blob = {}
        for num, kw, _labels in changes:
            for oid in self.over.blobs_of(num):
                kw_of_blob[oid] = kw
        copies = self.mailsync.maildir_copies(list(kw_of_blob))
        self.stats.exported += export_maildir_copies(self.mailsync, copies, kw_of_blob.get)

    def _abandon(self) -> None:
        """Drop the unfinished batch. Git objects and Xapian documents written for it may stay:
        a retry re-uses the blobs and hands out the same message numbers, replacing the documents."""
        for undo in (self.shards.abort, self.git.abort, self.over.rollback, self.mailsync.rollback,
                     self.journal.rollback):
            try:
                undo()
            except Exception:  # the original error is the one to report
                pass

    # -- importing ----------------------------------------------------------
    def import_items(self, items: Iterable[Item], after_each: Callable[[Item], None] | None = None, *,
                     from_git: bool = False) -> ImportStats:
        """Store a stream of messages. Errors raised by the stream surface after what came before it is stored.
        FROM_GIT: the messages are commits already in the epochs (only the index is written)."""
        started = time.monotonic()
        failure = None
        try:
            for item, a in self._analysed(items):
                self._store(item, a, from_git)
                if after_each:
                    after_each(item)
        except InputError as e:
            failure = e
        self.stats.seconds += time.monotonic() - started
        if failure:
            raise failure
        return self.stats

    def _analysed(self, items: Iterable[Item]) -> Iterator[tuple[Item, Analysed]]:
        """Analyse in worker processes, keeping a bounded window in flight (memory stays flat)."""
        it = iter(items)
        if self.jobs <= 1:
            for item in it:
                yield item, analyse(item.raw, item.now)
            return
        chunk = 16
        window: deque = deque()
        error = None
        from lei_store.write.children import die_with_parent

        with ProcessPoolExecutor(self.jobs, mp_context=get_context("fork"), initializer=die_with_parent,
                                 initargs=(os.getpid(),)) as pool:
            while True:
                while error is None and len(window) < self.jobs * 4:
                    batch = []
                    try:
                        for item in it:
                            batch.append(item)
                            if len(batch) >= chunk:
                                break
                    except InputError as e:  # surface after the messages read before it
                        error = e
                    if not batch:
                        break
                    window.append((batch, pool.submit(_analyse_chunk, [(i.raw, i.now) for i in batch])))
                    if len(batch) < chunk:
                        break
                if not window:
                    break
                batch, fut = window.popleft()
                yield from zip(batch, _DECODER.decode(fut.result()))
        if error:
            raise error

    def _store(self, item: Item, a: Analysed, from_git: bool = False) -> None:
        self.stats.messages += 1
        self.stats.problems += bool(a.problem)
        source_kw = item.keywords if self.use_keywords else None
        if item.folder and self.sync_enabled:
            fid = self.mailsync.folder_id(item.folder)
            if item.uid is not None:
                self.mailsync.add_uid(a.oidbin, fid, item.uid)
            else:
                self.mailsync.add_name(a.oidbin, fid, item.name)
            reached("sync-row")
        docids = self.over.docids_of_blob(a.oidbin)
        if docids and (a.oidbin in self._pending or self.store.has_blob(a.oidbin)):
            self.stats.duplicates += 1
            if source_kw is not None:
                for num in docids:
                    self.shards.update_volatile(num, set_kw=source_kw)
                reached("keywords-set")
        elif from_git:  # indexed as they are: +kw/+L given to this writer are for its own input
            self._pending[a.oidbin] = a.chash
            self._index(a, source_kw or frozenset(), frozenset())
        else:
            self._commit_blob(a)
            self._index(a, (source_kw or frozenset()) | self.add_keywords, self.add_labels)
        self._tick()

    def _commit_blob(self, a: Analysed) -> None:
        if not self.write_git:
            self._pending[a.oidbin] = a.chash
            return
        name, email = a.author
        self.git.add(a.blob, (name, email, a.ds, a.ds_tz), (*self.ident, a.ts, a.ts_tz), a.subject)
        self._pending[a.oidbin] = a.chash
        reached("blob-written")

    def _index(self, a: Analysed, keywords: frozenset[str], labels: frozenset[str]) -> None:
        known = self.journaled.get(a.oidbin) if self.journaled else None
        matches = self._content_matches(a)
        if matches:
            self.stats.attached += 1
            for num in matches:
                self.over.add_xref(num, a.oidbin)
                self.shards.merge_terms(num, list_id_terms(a.list_ids))
                if known:
                    self.shards.update_volatile(num, set_kw=known.kw, set_labels=known.labels)
                else:
                    self.shards.update_volatile(num, add_kw=keywords, add_labels=labels)
            return
        if known:  # rebuilding: the journal's state goes in with the document, not as a later change
            keywords, labels = frozenset(known.kw), frozenset(known.labels)
        self.stats.added += 1
        num = self.over.next_num()
        tid = self.over.add_message(num, a.mids, a.refs, a.subject_path, a.ts, a.ds, a.ddd, a.oidbin)
        reached("over-row")
        self.shards.add(num, a.doc, tid, keywords, labels)
        reached("xapian-doc")

    def _content_matches(self, a: Analysed) -> list[int]:
        """Docids of stored messages sharing a Message-ID and the content hash (§3.1)."""
        found = []
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

    # -- finding, tagging and removing stored messages --------------------
    def locate(self, raw: bytes) -> list[int]:
        """Docids of the stored message this one is (Message-ID + content hash, else its blob OID)."""
        from lei_store.disk.blobs import git_oid

        found = self._content_matches(analyse(raw))
        return found or self.over.docids_of_blob(git_oid(raw))

    def tag(self, nums: Iterable[int], mods: dict[str, set[str]]) -> int:
        """Apply +kw/-kw/+L/-L modifiers to messages; returns how many changed."""
        before = self.stats.keywords_updated
        for num in nums:
            self.shards.update_volatile(num, add_kw=mods.get("+kw", ()), remove_kw=mods.get("-kw", ()),
                                        add_labels=mods.get("+L", ()), remove_labels=mods.get("-L", ()))
            self._tick()
        self.flush()
        return self.stats.keywords_updated - before

    def remove(self, nums: Iterable[int], *, flush: bool = True, from_git: bool = False) -> int:
        """Unindex messages (lei rm): a `d` commit per blob, rows and documents deleted; git keeps the blobs.
        Batches holding removals commit over.sqlite3 before Xapian (see flush). FROM_GIT: the `d`
        commits are already in git."""
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
                self.journal.record([(blobs[0], "rm", (), ())])
            self.over.remove_message(num)
            self.shards.delete(num)
            removed += 1
            self._tick()
        if flush:
            self.flush()
        return removed

    def use_journal_states(self) -> None:
        """Give re-indexed documents their journaled keywords/labels as they are added (much cheaper
        than changing each document afterwards); replay_journal() still runs as the final word."""
        self.journaled = {e.oidbin: e for e in self.journal.latest() if e.op == "set"}

    def replay_journal(self) -> int:
        """Set every message's keywords and labels to their last journaled state (after a rebuild)."""
        self.journaling = False
        applied = 0
        try:
            for entry in self.journal.latest():
                if entry.op != "set":
                    continue
                for num in self.over.docids_of_blob(entry.oidbin):
                    self.shards.update_volatile(num, set_kw=entry.kw, set_labels=entry.labels)
                    applied += 1
                self._tick()
            self.flush()
        finally:
            self.journaling = True
        return applied

    def _tick(self) -> None:
        """Count one unit of work; commit in batches so memory stays bounded."""
        self._in_batch += 1
        if self.progress:
            self.progress(1)
        if self._in_batch >= self.batch_size:
            self.flush()

    # -- sources ------------------------------------------------------------
    def _skipped(self, where: str, why: str) -> None:
        self.stats.rejected += 1
        if self.on_skip:
            self.on_skip(where, why)

    def import_source(self, source: Source) -> ImportStats:
        """Import one resolved input (Maildir incrementally, via mail_sync)."""
        from lei_store.sources import read_source

        if source.fmt == "maildir":
            return self._import_maildir(source.path)
        if source.fmt == "imap":
            return self._import_imap(source.url)
        return self.import_items(read_source(source, self.read_options))

    def _import_imap(self, url_text: str) -> ImportStats:
        """Incremental by UID: re-sync the flags of known UIDs, then fetch the new ones (§10.1).
        A changed UIDVALIDITY makes it a new folder: the old one's UIDs are forgotten (the
        messages stay stored) and everything is fetched again, deduplicating by content."""
        from lei_store.sources.imap import Session, parse_url
        from lei_store.mail.keywords import imap_keywords

        url = parse_url(url_text)
        with Session(url) as session:
            session.select(readonly=True)
            loc = session.location
            fid = self.mailsync.folder_id(loc, create=False) if self.sync_enabled else None
            if fid is None and self.sync_enabled:
                for old_fid, old_loc in self.mailsync.folders():
                    if old_loc.startswith(url.folder_url() + ";UIDVALIDITY="):
                        self.mailsync.forget(old_fid)
            known = self.mailsync.uids(fid) if fid is not None else {}
            if known:
                self._resync_imap_flags(session, fid)
            # every UID not yet recorded, not only those above the last one: a message skipped
            # as too large (or \Deleted) last time is taken once it can be
            uids = [uid for uid in session.uids() if uid not in known]
            if self.progress_total:
                self.progress_total(len(uids))
            # IMAP sends CRLF line ends; stored with LF like the Maildir copy (and like lei)
            items = (Item(raw.replace(b"\r\n", b"\n"), imap_keywords(flags), folder=loc, uid=uid,
                          origin=f"{url};UID={uid}")
                     for uid, flags, raw in session.fetch(uids, max_size=self.read_options.max_size,
                                                          on_skip=self._skipped))
            return self.import_items(items)

    def _resync_imap_flags(self, session, fid: int) -> None:
        """Keywords of already-imported UIDs follow the server; expunged UIDs are dropped."""
        from lei_store.mail.keywords import imap_keywords

        known = self.mailsync.uids(fid)
        current = session.flags(sorted(known))
        for uid, oids in known.items():
            if uid not in current or "\\deleted" in {f.lower() for f in current[uid]}:
                self.mailsync.remove_uid(fid, uid)
                continue
            if self.use_keywords:
                kws = imap_keywords(current[uid])
                for num in {n for oid in oids for n in self.over.docids_of_blob(oid)}:
                    self.shards.update_volatile(num, set_kw=kws)
            self._tick()

    def _import_maildir(self, path: Path) -> ImportStats:
        from lei_store.sources import maildir

        loc = maildir_loc(path)
        entries = maildir.list_entries(path, self.read_options)
        todo = entries
        fid = self.mailsync.folder_id(loc, create=False) if self.sync_enabled else None
        if fid is not None:
            todo = self._maildir_changes(fid, entries)
        return self.import_items(maildir.read_items(path, loc if self.sync_enabled else None, todo,
                                                    self.read_options))

    def _maildir_changes(self, fid: int, entries: list) -> list:
        """The entries that must be read; known files are skipped and renamed ones (new flags)
        updated without reading them: a Maildir message's bytes never change, only its name."""
        known = self.mailsync.names(fid)
        by_base = {name.partition(b":")[0]: name for name in known}
        gone = known.keys() - {e.name.encode() for e in entries}
        alive = self.over.existing_blobs(set(known.values()))
        todo = []
        for e in entries:
            name = e.name.encode()
            if known.get(name) in alive:
                self.stats.skipped += 1
                continue
            old = by_base.get(name.partition(b":")[0])
            if name not in known and old in gone and known[old] in alive:
                gone.discard(old)
                self.mailsync.rename(fid, old, name)
                if self.use_keywords:
                    for num in self.over.docids_of_blob(known[old]):
                        self.shards.update_volatile(num, set_kw=e.keywords)
                self.stats.renamed += 1
                self._tick()
                continue
            todo.append(e)
        for name in gone:  # removed from the Maildir
            self.mailsync.remove_name(fid, name)
        return todo
