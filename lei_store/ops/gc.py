"""Store maintenance: `gc` repacks the epochs, compacts the Xapian shards and vacuums the databases.

Everything runs under ei.lock, so no writer changes the store meanwhile;
readers keep working (they hold open files, and see the new ones on reopen).
Shards are compacted with DBCOMPACT_NO_RENUMBER: docids are what over.sqlite3
and lei refer to, so they must not change. Each compacted shard is built
beside the live one (`N.compact`) and swapped in by two renames; a run killed
between them leaves `N.old`, which the next run puts back.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import time
from pathlib import Path

import msgspec
import xapian

from lei_store import git
from lei_store.errors import StorageError
from lei_store.locks import locked
from lei_store.paths import Layout, existing_store

SLACK = 1.1  # a rewritten pack or shard can come out a little larger than the old one


class GcStats(msgspec.Struct):
    """What a gc did: sizes in bytes of each part of the store, before and after."""

    epochs: int = 0
    shards: int = 0
    git_before: int = 0
    git_after: int = 0
    xapian_before: int = 0
    xapian_after: int = 0
    sqlite_before: int = 0
    sqlite_after: int = 0
    bytes_before: int = 0
    bytes_after: int = 0
    epochs_rewritten: list[int] = []  # --expunge: the epochs whose history lost purged messages
    blobs_expunged: int = 0  # --expunge: purged blobs no longer in git
    seconds: float = 0.0


def _tree_bytes(path: Path) -> int:
    """Bytes of the files under PATH (or of PATH itself)."""
    if path.is_file():
        return path.stat().st_size
    total = 0
    for top, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(top, name)).st_size
            except FileNotFoundError:
                pass
    return total


def _sqlite_paths(lay: Layout) -> list[Path]:
    return [p for p in (lay.over, lay.mail_sync, lay.journal) if p.exists()]


def _sqlite_bytes(path: Path) -> int:
    return sum(_tree_bytes(Path(f"{path}{s}")) for s in ("", "-wal") if Path(f"{path}{s}").exists())


def _sizes(lay: Layout) -> tuple[int, int, int]:
    """(git, xapian, sqlite) bytes."""
    git = sum(_tree_bytes(lay.epoch(n)) for n in lay.epoch_numbers())
    xap = sum(_tree_bytes(lay.shard(i)) for i in range(lay.shard_count()))
    sql = sum(_sqlite_bytes(p) for p in _sqlite_paths(lay))
    return git, xap, sql


def space_needed(lay: Layout) -> int:
    """Temporary space gc may need at once: parts are rewritten one at a time."""
    shard = max((_tree_bytes(lay.shard(i)) for i in range(lay.shard_count())), default=0)
    pack = max((_tree_bytes(lay.epoch(n) / "objects") for n in lay.epoch_numbers()), default=0)
    db = max((_sqlite_bytes(p) for p in _sqlite_paths(lay)), default=0)
    return int((shard + pack) * SLACK) + db


def check_space(lay: Layout, free: int | None = None) -> int:
    """Refuse (StorageError) when the free space is below space_needed(); the estimate otherwise."""
    need = space_needed(lay)
    free = shutil.disk_usage(lay.root).free if free is None else free
    if free < need:
        raise StorageError(f"gc needs about {need} bytes of free space in {lay.root} but only "
                           f"{free} are free; free some space and run it again")
    return need


def _recover_shards(lay: Layout) -> None:
    """Finish or undo a swap a killed gc left behind."""
    for entry in lay.ei.iterdir():
        stem, _, kind = entry.name.partition(".")
        if not stem.isdigit() or kind not in ("old", "compact"):
            continue
        live = lay.ei / stem
        if kind == "old" and not live.exists():
            entry.rename(live)  # killed between the two renames: the old shard is intact
        else:
            shutil.rmtree(entry, ignore_errors=True)


def _gc_epoch(repo: Path) -> None:
    git.output(repo, "-c", "gc.autoDetach=false", "gc", "--quiet")


def _compact_shard(shard: Path) -> None:
    tmp = shard.with_name(shard.name + ".compact")
    old = shard.with_name(shard.name + ".old")
    shutil.rmtree(tmp, ignore_errors=True)
    db = xapian.Database(str(shard))
    try:
        db.compact(str(tmp), xapian.DBCOMPACT_NO_RENUMBER)
    except xapian.Error as e:
        shutil.rmtree(tmp, ignore_errors=True)
        raise StorageError(f"compacting {shard} failed: {e}") from None
    finally:
        db.close()
    shard.rename(old)
    tmp.rename(shard)
    shutil.rmtree(old)


def _vacuum(path: Path) -> None:
    db = sqlite3.connect(str(path), isolation_level=None)
    try:
        db.execute("PRAGMA busy_timeout = 30000")
        db.execute("VACUUM")
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # else the -wal keeps the old size on disk
    except sqlite3.Error as e:
        raise StorageError(f"VACUUM of {path} failed: {e}") from None
    finally:
        db.close()


def gc(root: Path, *, lock_timeout: float | None = None, expunge: bool = False) -> GcStats:
    """Repack every epoch, compact every shard (docids kept), vacuum the SQLite files; with
    EXPUNGE first drop purged blobs from git by rewriting the epochs that hold them."""
    started = time.monotonic()
    lay = existing_store(Path(root))
    stats = GcStats()
    with locked(lay.writer_lock, lock_timeout):
        _recover_shards(lay)
        check_space(lay)
        stats.git_before, stats.xapian_before, stats.sqlite_before = _sizes(lay)  # what expunge drops counts
        if expunge:
            from lei_store.ops.expunge import expunge as drop_purged

            done = drop_purged(lay)
            stats.epochs_rewritten, stats.blobs_expunged = done.epochs_rewritten, done.blobs_dropped
        nums = lay.epoch_numbers()
        for n in nums:
            _gc_epoch(lay.epoch(n))
        stats.epochs = len(nums)
        stats.shards = lay.shard_count()
        for i in range(stats.shards):
            _compact_shard(lay.shard(i))
        for path in _sqlite_paths(lay):
            if path == lay.mail_sync:  # folder commands write it under their own lock only
                with locked(lay.mail_sync_lock, lock_timeout, what="mail_sync.sqlite3"):
                    _vacuum(path)
            else:
                _vacuum(path)
        stats.git_after, stats.xapian_after, stats.sqlite_after = _sizes(lay)
    stats.bytes_before = stats.git_before + stats.xapian_before + stats.sqlite_before
    stats.bytes_after = stats.git_after + stats.xapian_after + stats.sqlite_after
    stats.seconds = time.monotonic() - started
    return stats
