"""Replicas made with plain git: `clone` mirrors every epoch and indexes it; `fetch` brings new
commits (and new epochs) and indexes only those.

SRC is a store directory or a URL whose `local/N.git` git can fetch (git://,
http(s):// including "dumb" static serving, ssh). The keyword/label journal
is not in git: it is copied from a path, or fetched as SRC/journal.sqlite3 over
http(s); over git:// or ssh the replica keeps the journal it has.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from lei_store import git, sqlite
from lei_store.errors import DiskFullError, InputError, LeiStoreError, RemoteError
from lei_store.ops.reindex import ReindexStats, index_new_commits
from lei_store.paths import Layout, existing_store
from lei_store.write import epochs


def _is_url(src: str) -> bool:
    return "://" in src or (":" in src.split("/")[0] and not os.path.exists(src))




def _remote_failure(r, what: str, kind: type[LeiStoreError]) -> LeiStoreError:
    """A failed clone or fetch: a full disk is ours, anything else the source's (KIND)."""
    failed = git.failure(None, [], r.returncode, r.stderr, what=what)
    return failed if isinstance(failed, DiskFullError) else kind(str(failed))


def _epoch_url(src: str, n: int) -> str:
    return f"{src.rstrip('/')}/local/{n}.git"


def _remote_epochs(src: str, start: int = 0) -> list[int]:
    """Epoch numbers at SRC from START on: listed for a path, probed with ls-remote for a URL."""
    if not _is_url(src):
        return [n for n in Layout(Path(src).absolute()).epoch_numbers() if n >= start]
    found, n = [], start
    while git.ok(None, "ls-remote", "--heads", _epoch_url(src, n)):
        found.append(n)
        n += 1
    return found


def _mirror(src: str, n: int, dest: Path) -> None:
    tmp = dest.with_name(dest.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    r = git.run(None, "clone", "--quiet", "--mirror", _epoch_url(src, n), str(tmp))
    if r.returncode != 0:
        shutil.rmtree(tmp, ignore_errors=True)
        raise _remote_failure(r, f"git clone of {_epoch_url(src, n)}", InputError)
    tmp.rename(dest)


def _copy_journal(src: str, lay: Layout) -> bool:
    """The source's journal replaces ours (a replica mirrors its source's keywords)."""
    fd, tmp = tempfile.mkstemp(dir=lay.root, prefix="journal.fetch.")
    os.close(fd)
    try:
        if _is_url(src):
            if not src.startswith(("http://", "https://")):
                return False
            try:
                with urllib.request.urlopen(f"{src.rstrip('/')}/journal.sqlite3", timeout=60) as r, \
                        open(tmp, "wb") as out:
                    shutil.copyfileobj(r, out)
            except (urllib.error.URLError, OSError):
                return False
        else:
            source = Path(src) / "journal.sqlite3"
            if not source.exists():
                return False
            sqlite.copy(source, Path(tmp))  # consistent even while the source writes (WAL)
        if not _is_journal(Path(tmp)):
            return False  # e.g. an HTML error page served with status 200
        from lei_store.locks import locked

        with locked(lay.writer_lock, what="store"):  # no writer has the journal open meanwhile
            os.replace(tmp, lay.journal)
            for suffix in ("-wal", "-shm"):
                Path(f"{lay.journal}{suffix}").unlink(missing_ok=True)
        return True
    finally:
        Path(tmp).unlink(missing_ok=True)


def _is_journal(path: Path) -> bool:
    try:
        with sqlite.connect_ro(path) as db:
            ok = db.execute("PRAGMA quick_check").fetchone()[0] == "ok"
            return ok and db.execute("SELECT 1 FROM sqlite_master WHERE name = 'volatile'").fetchone() is not None
    except sqlite3.DatabaseError:
        return False


def clone(src: str, dest: Path, *, jobs: int | None = None, progress=None) -> ReindexStats:
    """Mirror every epoch of SRC into a new store at DEST, copy the journal, and index it all."""
    from lei_store.write.store import Store

    dest = Path(dest).absolute()
    if dest.exists() and any(dest.iterdir()):
        raise InputError(f"{dest}: exists and is not empty")
    if not _is_url(src):
        src = str(existing_store(Path(src)).root)
    numbers = _remote_epochs(src)
    if not numbers:
        raise InputError(f"{src}: no epochs found (expected {_epoch_url(src, 0)})")
    store = Store.create(dest)
    for n in numbers:
        _mirror(src, n, store.layout.epoch(n))
    epochs.update_alternates(store.layout)
    _copy_journal(src, store.layout)
    return index_new_commits(dest, jobs=jobs, progress=progress)


def source_of(lay: Layout) -> str:
    """Where a replica's epochs come from: epoch 0's origin, minus /local/0.git."""
    numbers = lay.epoch_numbers()
    if not numbers:
        raise InputError(f"{lay.root}: not a replica (no epochs in local/)")
    url = git.run(lay.epoch(numbers[0]), "config", "remote.origin.url").stdout.decode().strip()
    if not url.endswith(f"/local/{numbers[0]}.git"):
        raise InputError(f"{lay.root}: not a replica (no origin remote on {lay.epoch(numbers[0])})")
    return url[: -len(f"/local/{numbers[0]}.git")]


def fetch(root: Path, *, jobs: int | None = None, progress=None) -> ReindexStats:
    """git fetch every epoch (and clone new ones), refresh the journal, index only the new commits.
    When the source rewrote an epoch (`gc --expunge`), its old tip is no longer in the fetched
    history: the index is rebuilt from git instead, and the dropped blobs pruned here too."""
    from lei_store.disk.gitlog import head_commit
    from lei_store.ops.reindex import reindex

    lay = existing_store(Path(root))
    src = source_of(lay)
    have = lay.epoch_numbers()
    rewritten = []
    for n in have:
        old = head_commit(lay.epoch(n))
        r = git.run(lay.epoch(n), "fetch", "--quiet", "--prune", "origin")  # a mirror's refspec forces
        if r.returncode != 0:
            raise _remote_failure(r, f"git fetch into {lay.epoch(n)}", RemoteError)
        new = head_commit(lay.epoch(n))
        if old and new and old != new and not git.ok(lay.epoch(n), "merge-base", "--is-ancestor", old, new):
            rewritten.append(n)
    for n in _remote_epochs(src, start=max(have) + 1):
        _mirror(src, n, lay.epoch(n))
    epochs.update_alternates(lay)
    _copy_journal(src, lay)
    if not rewritten:
        return index_new_commits(lay.root, jobs=jobs, progress=progress)
    for n in rewritten:  # what the source expunged goes here too
        git.output(lay.epoch(n), "reflog", "expire", "--expire=now", "--all")
        git.output(lay.epoch(n), "-c", "gc.autoDetach=false", "gc", "--prune=now", "--quiet")
    stats = reindex(lay.root, jobs=jobs, progress=progress)
    stats.epochs_rewritten = rewritten
    return stats
