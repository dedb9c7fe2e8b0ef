"""mail_sync.sqlite3: where each blob came from (Maildir names, IMAP UIDs), spec §7.

Locations, names and oids are always bound as BLOBs: lei looks them up with
BLOB parameters, and in SQLite a TEXT value never equals a BLOB.
"""

from __future__ import annotations

import sqlite3
from contextlib import ExitStack
from pathlib import Path

from .locks import locked
from .schema import ddl


def _b(s: str | bytes) -> bytes:
    return s if isinstance(s, bytes) else s.encode("utf-8", "surrogateescape")


def maildir_loc(path: Path) -> str:
    """The folder location lei records for a Maildir: maildir:/abs/path (no trailing slash)."""
    return "maildir:" + str(Path(path).absolute()).rstrip("/")


class MailSync:
    """Handle on mail_sync.sqlite3; writes happen between begin() and commit()."""

    def __init__(self, path: Path, lock_path: Path, *, readonly: bool = False):
        self.lock_path = lock_path
        if readonly:
            self.db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        else:
            self.db = sqlite3.connect(str(path), isolation_level=None)
            self.db.execute("PRAGMA busy_timeout = 30000")
            with locked(lock_path, what="mail_sync.sqlite3"):
                self.db.execute("PRAGMA journal_mode = WAL")
                self.db.executescript(ddl("mail_sync"))
        self.db.execute("PRAGMA case_sensitive_like = ON")
        self._stack: ExitStack | None = None

    def begin(self) -> None:
        if self._stack is None:
            self._stack = ExitStack()
            self._stack.enter_context(locked(self.lock_path, what="mail_sync.sqlite3"))
            self.db.execute("BEGIN IMMEDIATE")

    def commit(self) -> None:
        if self._stack is not None:
            self.db.execute("COMMIT")
            self._stack.close()
            self._stack = None

    def rollback(self) -> None:
        if self._stack is not None:
            if self.db.in_transaction:
                self.db.execute("ROLLBACK")
            self._stack.close()
            self._stack = None

    def close(self) -> None:
        self.commit()
        self.db.close()

    # -- folders --------------------------------------------------------
    def folder_id(self, loc: str, *, create: bool = True) -> int | None:
        row = self.db.execute("SELECT fid FROM folders WHERE loc = ?", (_b(loc),)).fetchone()
        if row or not create:
            return row[0] if row else None
        self.begin()
        fid = self.db.execute("SELECT COALESCE(MAX(fid), 0) + 1 FROM folders").fetchone()[0]
        self.db.execute("INSERT INTO folders (fid, loc) VALUES (?, ?)", (fid, _b(loc)))
        return fid

    # -- Maildir names --------------------------------------------------
    def names(self, fid: int) -> dict[bytes, bytes]:
        """name -> oidbin for every file recorded in a Maildir folder."""
        return {bytes(n): bytes(o) for o, n in
                self.db.execute("SELECT oidbin, name FROM blob2name WHERE fid = ?", (fid,))}

    def add_name(self, oidbin: bytes, fid: int, name: str | bytes) -> None:
        self.begin()
        self.db.execute("INSERT OR IGNORE INTO blob2name (oidbin, fid, name) VALUES (?, ?, ?)",
                        (oidbin, fid, _b(name)))

    def remove_name(self, fid: int, name: str | bytes) -> None:
        self.begin()
        self.db.execute("DELETE FROM blob2name WHERE fid = ? AND name = ?", (fid, _b(name)))
