"""The store: creating and opening one (local/N.git, ALL.git, ei15/, mail_sync.sqlite3,
journal.sqlite3), reading its blobs, and handing out its single writer (writer.py).
"""

from __future__ import annotations

import os
from pathlib import Path

from lei_store.disk.blobs import BlobReader
from lei_store.disk.journal import Journal
from lei_store.disk.mailsync import MailSync
from lei_store.errors import NotAStoreError, StorePermissionError
from lei_store.paths import Layout, default_store_dir, existing_store, new_store_shard_count
from lei_store.write import epochs, overidx, searchidx
from lei_store.write.faults import reached
from lei_store.write.writer import Writer


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

    def writer(self, **options) -> Writer:
        """The store's writer (see writer.Writer for the options); use it as a context manager."""
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
