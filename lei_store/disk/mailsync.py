"""mail_sync.sqlite3: where each blob came from (Maildir names, IMAP UIDs), spec §7.

Locations, names and oids are always bound as BLOBs: lei looks them up with
BLOB parameters, and in SQLite a TEXT value never equals a BLOB.
"""

from __future__ import annotations

import sqlite3
from contextlib import ExitStack
from pathlib import Path
from typing import NamedTuple

from lei_store.locks import locked
from lei_store.sqlite import connect_ro, connect_rw


def _b(s: str | bytes) -> bytes:
    return s if isinstance(s, bytes) else s.encode("utf-8", "surrogateescape")


def maildir_loc(path: Path) -> str:
    """The folder location lei records for a Maildir: maildir:/abs/path (no trailing slash)."""
    return "maildir:" + str(Path(path).absolute()).rstrip("/")


class MaildirCopy(NamedTuple):
    """A synced Maildir file: the folder's id, its path, the file's basename, the blob it holds."""

    fid: int
    maildir: str
    name: bytes
    oidbin: bytes


class MailSync:
    """Handle on mail_sync.sqlite3; writes happen between begin() and commit()."""

    def __init__(self, path: Path, lock_path: Path, *, readonly: bool = False):
        self.lock_path = lock_path
        if readonly:
            self.db = connect_ro(path)
        else:
            with locked(lock_path, what="mail_sync.sqlite3"):  # lei creates its tables under this lock
                self.db = connect_rw(path, "mail_sync", "starts it afresh")
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

    def rename(self, fid: int, old: str | bytes, new: str | bytes) -> None:
        """A Maildir file got a new name (flags changed): its rows follow it."""
        self.begin()
        self.db.execute("UPDATE OR REPLACE blob2name SET name = ? WHERE fid = ? AND name = ?",
                        (_b(new), fid, _b(old)))

    def maildir_copies(self, oidbins: list[bytes]) -> list[MaildirCopy]:
        """Every synced Maildir file holding one of these blobs."""
        out = []
        for i in range(0, len(oidbins), 500):
            part = oidbins[i:i + 500]
            q = ("SELECT b.fid, f.loc, b.name, b.oidbin FROM blob2name b JOIN folders f ON f.fid = b.fid "
                 f"WHERE b.oidbin IN ({','.join('?' * len(part))})")
            for fid, loc, name, oid in self.db.execute(q, part):
                loc = bytes(loc).decode("utf-8", "surrogateescape")
                if loc.startswith("maildir:"):
                    out.append(MaildirCopy(fid, loc[8:], bytes(name), bytes(oid)))
        return out

    # -- IMAP UIDs ------------------------------------------------------
    def uids(self, fid: int) -> dict[int, list[bytes]]:
        """uid -> oidbins recorded for an IMAP folder."""
        out: dict[int, list[bytes]] = {}
        for uid, oid in self.db.execute("SELECT uid, oidbin FROM blob2num WHERE fid = ?", (fid,)):
            out.setdefault(uid, []).append(bytes(oid))
        return out

    def max_uid(self, fid: int) -> int:
        return self.db.execute("SELECT COALESCE(MAX(uid), 0) FROM blob2num WHERE fid = ?", (fid,)).fetchone()[0]

    def add_uid(self, oidbin: bytes, fid: int, uid: int) -> None:
        self.begin()
        self.db.execute("INSERT OR IGNORE INTO blob2num (oidbin, fid, uid) VALUES (?, ?, ?)", (oidbin, fid, uid))

    def remove_uid(self, fid: int, uid: int) -> None:
        self.begin()
        self.db.execute("DELETE FROM blob2num WHERE fid = ? AND uid = ?", (fid, uid))

    def modseq(self, fid: int) -> int | None:
        """The IMAP folder's HIGHESTMODSEQ when its flags were last read whole or since."""
        try:
            row = self.db.execute("SELECT modseq FROM lei_store_imap_modseq WHERE fid = ?", (fid,)).fetchone()
        except sqlite3.OperationalError:  # a mail_sync lei wrote, read-only: no such table
            return None
        return row[0] if row else None

    def set_modseq(self, fid: int, modseq: int | None) -> None:
        self.begin()
        if modseq is None:
            self.db.execute("DELETE FROM lei_store_imap_modseq WHERE fid = ?", (fid,))
        else:
            self.db.execute("INSERT OR REPLACE INTO lei_store_imap_modseq (fid, modseq) VALUES (?, ?)", (fid, modseq))

    # -- whole folders --------------------------------------------------
    def folders(self) -> list[tuple[int, str]]:
        return [(fid, bytes(loc).decode("utf-8", "surrogateescape"))
                for fid, loc in self.db.execute("SELECT fid, loc FROM folders ORDER BY fid")]

    def forget(self, fid: int) -> None:
        """Drop everything known about a folder (lei forget-mail-sync); the store is untouched."""
        self.begin()
        for table in ("blob2name", "blob2num", "folders", "lei_store_imap_modseq"):
            self.db.execute(f"DELETE FROM {table} WHERE fid = ?", (fid,))
