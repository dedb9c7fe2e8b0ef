"""The store: creating and opening one, and the single writer that imports into it.

A write goes through `Store.writer()`, which holds ei.lock for its whole
span. Messages are analysed in worker processes (analysis.py) and written
here, in order, in batches. A batch becomes durable in this order:
git checkpoint -> Xapian commit -> over.sqlite3 commit -> mail_sync commit,
so a crash at any point leaves nothing that a re-run of the same import does
not repair: uncommitted message numbers are handed out again and their
Xapian documents replaced; blobs in git without an xref3 row are re-committed.
"""

from __future__ import annotations

import os
import time
from collections import deque
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Callable, Iterable, Iterator

import msgspec

from . import epochs, overview, searchindex
from .analysis import Analysed, analyse, list_id_terms
from .blobs import BlobReader
from .errors import InputError, LeiStoreError, NotAStoreError
from .importers import Item, Source
from .locks import locked
from .mailsync import MailSync, maildir_loc
from .paths import Layout, default_store_dir, existing_store, new_store_shard_count


class ImportStats(msgspec.Struct):
    """What an import did; printed as JSON by the CLI."""

    messages: int = 0  # messages read from the inputs
    added: int = 0  # new messages (new docids)
    attached: int = 0  # new copies of a message already stored (content hash match)
    duplicates: int = 0  # blobs already stored, byte for byte
    skipped: int = 0  # Maildir files already synced (not read at all)
    keywords_updated: int = 0  # stored messages whose keywords changed
    problems: int = 0  # messages stored despite parts that did not parse
    seconds: float = 0.0


class Store:
    """A lei store directory: local/N.git, ALL.git, ei15/, mail_sync.sqlite3."""

    def __init__(self, root: Path):
        self.layout = Layout(Path(root).absolute())
        self._blobs: BlobReader | None = None

    @property
    def root(self) -> Path:
        return self.layout.root

    # -- opening ----------------------------------------------------------
    @classmethod
    def create(cls, root: Path | None = None, shards: int | None = None) -> "Store":
        """Create (or complete) a store in the layout lei uses; an existing shard count is kept."""
        store = cls(root or default_store_dir())
        lay = store.layout
        if lay.root.exists() and not lay.root.is_dir():
            raise NotAStoreError(f"{lay.root}: exists and is not a directory")
        lay.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        if not os.access(lay.root, os.W_OK):
            raise NotAStoreError(f"{lay.root}: not writable")
        branch = epochs.default_branch()
        epochs.init_bare(lay.all_git, branch, epoch=False)
        lay.local.mkdir(exist_ok=True)
        epochs.update_alternates(lay)
        searchindex.create_shards(lay, lay.shard_count() or shards or new_store_shard_count())
        overview.create(lay.over)
        lay.writer_lock.touch()
        MailSync(lay.mail_sync, lay.mail_sync_lock).close()
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


def _analyse_chunk(raws: list[bytes]) -> bytes:
    return msgspec.msgpack.encode([analyse(r) for r in raws])


_DECODER = msgspec.msgpack.Decoder(list[Analysed])


class Writer:
    """The one process writing a store. Use as a context manager: it holds ei.lock."""

    def __init__(self, store: Store, *, lock_timeout: float | None = None,
                 rotate_bytes: int = epochs.ROTATE_BYTES, jobs: int | None = None,
                 batch_size: int = 1000, mail_sync: bool = True, use_keywords: bool = True,
                 add_keywords: Iterable[str] = (), add_labels: Iterable[str] = (),
                 progress: Callable[[int], None] | None = None):
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
        self.progress = progress
        self.stats = ImportStats()
        self._lock = None
        self._pending: dict[bytes, bytes] = {}  # oidbin -> content hash, written since last checkpoint
        self._in_batch = 0

    # -- lifecycle --------------------------------------------------------
    def __enter__(self) -> "Writer":
        self._lock = locked(self.lay.writer_lock, self.lock_timeout)
        self._lock.__enter__()
        try:
            self.over = overview.Overview(self.lay.over)
            self.shards = searchindex.ShardProcesses(searchindex.shard_paths(self.lay))
            self.mailsync = MailSync(self.lay.mail_sync, self.lay.mail_sync_lock)
            self.git = epochs.EpochWriter(self.lay, epochs.default_branch(), self.rotate_bytes)
            self.ident = epochs.committer_ident()
            self._begin_batch()
        except BaseException:
            self._lock.__exit__(None, None, None)
            raise
        return self

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
            for close in (self.shards.close, self.over.close, self.mailsync.close):
                try:
                    close()
                except Exception:
                    pass
            self._lock.__exit__(None, None, None)

    def _begin_batch(self) -> None:
        self.over.begin()
        self._in_batch = 0

    def flush(self) -> None:
        """Make everything written so far durable, in crash-safe order."""
        self.git.checkpoint()
        self._pending.clear()
        self.store.refresh()
        self.stats.keywords_updated += self.shards.commit()
        self.over.commit()
        self.mailsync.commit()
        self._begin_batch()

    def _abandon(self) -> None:
        """Drop the unfinished batch. Git objects and Xapian documents written for it may stay:
        a retry re-uses the blobs and hands out the same message numbers, replacing the documents."""
        for undo in (self.git.abort, self.over.rollback, self.mailsync.rollback):
            try:
                undo()
            except Exception:  # the original error is the one to report
                pass

    # -- importing ----------------------------------------------------------
    def import_items(self, items: Iterable[Item]) -> ImportStats:
        """Store a stream of messages. Errors raised by the stream surface after what came before it is stored."""
        started = time.monotonic()
        failure = None
        try:
            for item, a in self._analysed(items):
                self._store(item, a)
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
                yield item, analyse(item.raw)
            return
        chunk = 16
        window: deque = deque()
        error = None
        with ProcessPoolExecutor(self.jobs, mp_context=get_context("fork")) as pool:
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
                    window.append((batch, pool.submit(_analyse_chunk, [i.raw for i in batch])))
                    if len(batch) < chunk:
                        break
                if not window:
                    break
                batch, fut = window.popleft()
                yield from zip(batch, _DECODER.decode(fut.result()))
        if error:
            raise error

    def _store(self, item: Item, a: Analysed) -> None:
        self.stats.messages += 1
        self.stats.problems += bool(a.problem)
        source_kw = item.keywords if self.use_keywords else None
        if item.folder and self.sync_enabled:
            self.mailsync.add_name(a.oidbin, self.mailsync.folder_id(item.folder), item.name)
        docids = self.over.docids_of_blob(a.oidbin)
        if docids and (a.oidbin in self._pending or self.store.has_blob(a.oidbin)):
            self.stats.duplicates += 1
            if source_kw is not None:
                for num in docids:
                    self.shards.update_volatile(num, set_kw=source_kw)
        else:
            self._commit_blob(a)
            self._index(a, (source_kw or frozenset()) | self.add_keywords)
        self._in_batch += 1
        if self.progress:
            self.progress(1)
        if self._in_batch >= self.batch_size:
            self.flush()

    def _commit_blob(self, a: Analysed) -> None:
        name, email = a.author
        self.git.add(a.blob, (name, email, a.ds, a.ds_tz), (*self.ident, a.ts, a.ts_tz), a.subject)
        self._pending[a.oidbin] = a.chash

    def _index(self, a: Analysed, keywords: frozenset[str]) -> None:
        matches = self._content_matches(a)
        if matches:
            self.stats.attached += 1
            for num in matches:
                self.over.add_xref(num, a.oidbin)
                self.shards.merge_terms(num, list_id_terms(a.list_ids))
                self.shards.update_volatile(num, add_kw=keywords, add_labels=self.add_labels)
            return
        self.stats.added += 1
        num = self.over.next_num()
        tid = self.over.add_message(num, a.mids, a.refs, a.subject_path, a.ts, a.ds, a.ddd, a.oidbin)
        self.shards.add(num, a.doc, tid, keywords, self.add_labels)

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
        from .contenthash import content_hash
        from .message import Message

        return content_hash(Message(raw))

    # -- sources ------------------------------------------------------------
    def import_source(self, source: Source) -> ImportStats:
        """Import one resolved input (Maildir incrementally, via mail_sync)."""
        from .importers import eml, maildir, mbox
        from .importers.compression import open_input

        if source.fmt == "maildir":
            return self._import_maildir(source.path)
        if source.path is None:
            import sys

            stream = sys.stdin.buffer
            items = eml.read_eml(stream, "<stdin>") if source.fmt == "eml" else \
                mbox.read_mbox(stream, source.fmt, "<stdin>")
            return self.import_items(items)
        if source.fmt == "eml":
            with open_input(source.path) as f:
                return self.import_items(eml.read_eml(f, str(source.path)))
        return self.import_items(mbox.read_mbox_path(source.path, source.fmt))

    def _import_maildir(self, path: Path) -> ImportStats:
        from .importers import maildir

        loc = maildir_loc(path)
        entries = maildir.list_entries(path)
        todo = entries
        fid = self.mailsync.folder_id(loc, create=False) if self.sync_enabled else None
        if fid is not None:
            known = self.mailsync.names(fid)
            alive = self.over.existing_blobs({known[n] for n in (e.name.encode() for e in entries) if n in known})
            todo = [e for e in entries if known.get(e.name.encode()) not in alive]
            self.stats.skipped += len(entries) - len(todo)
            present = {e.name.encode() for e in entries}
            for name in known.keys() - present:  # the file was renamed or removed
                self.mailsync.remove_name(fid, name)
        return self.import_items(maildir.read_items(path, loc if self.sync_enabled else None, todo))
