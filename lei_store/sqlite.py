"""Opening the store's SQLite files: one way to open one read-only, and the checks and copies
that treat a database file as a whole.

A path goes into a `file:` URI percent-quoted: a store under a directory whose name holds
`?` or `#` would otherwise open some other file, or fail.
"""

from __future__ import annotations

import sqlite3
import urllib.parse
from pathlib import Path

BUSY_MS = 30000  # a writer's commit holds the database briefly; readers wait rather than fail


def connect_ro(path: Path, *, check_same_thread: bool = True) -> sqlite3.Connection:
    """A read-only connection (never creates the file)."""
    db = sqlite3.connect(f"file:{urllib.parse.quote(str(path))}?mode=ro", uri=True,
                         check_same_thread=check_same_thread)
    db.execute(f"PRAGMA busy_timeout = {BUSY_MS}")
    return db


def connect_rw(path: Path, ddl_name: str, repair: str) -> sqlite3.Connection:
    """A writer's connection (WAL: readers never block it), its tables created if missing. A file
    that is not a healthy database is DamagedStoreError, saying how REPAIR mends it."""
    from lei_store.errors import DamagedStoreError
    from lei_store.schema import ddl

    db = sqlite3.connect(str(path), isolation_level=None)
    try:
        db.execute(f"PRAGMA busy_timeout = {BUSY_MS}")
        db.execute("PRAGMA journal_mode = WAL")
        db.executescript(ddl(ddl_name))
    except sqlite3.DatabaseError as e:
        db.close()
        if isinstance(e, sqlite3.OperationalError):  # locked, full, unwritable: not damage
            raise
        raise DamagedStoreError(f"{path.name} is damaged ({e}); `lei-store fsck --repair` {repair}") from None
    return db


def damage(path: Path) -> str | None:
    """What SQLite's quick_check finds wrong with a database file, None when nothing."""
    try:
        db = connect_ro(path)
        try:
            result = [r[0] for r in db.execute("PRAGMA quick_check")]
        finally:
            db.close()
    except sqlite3.DatabaseError as e:
        return str(e)
    return None if result == ["ok"] else "; ".join(map(str, result[:3]))


def copy(src: Path, dst: Path) -> None:
    """A consistent copy of a WAL-mode database (a raw copy could miss the -wal), self-contained."""
    s = connect_ro(src)
    d = sqlite3.connect(str(dst))
    try:
        s.backup(d)
        d.execute("PRAGMA journal_mode = DELETE")
    finally:
        d.close()
        s.close()


def count(path: Path, sql: str) -> int:
    """One number from a database, 0 when the table is not there (an older file)."""
    db = connect_ro(path)
    try:
        return db.execute(sql).fetchone()[0]
    except sqlite3.DatabaseError:
        return 0
    finally:
        db.close()
