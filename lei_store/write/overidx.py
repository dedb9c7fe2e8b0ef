"""Writing ei15/over.sqlite3 (spec §5): message numbering, Message-ID maps, threading, xref3.

`OverIdx` is the writer (as public-inbox's OverIdx); readers use over.Over. The DDL is
schemas/over.sql, exactly lei's; we only add WAL so readers never block.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from lei_store.disk.over import OverRow, decode_ddd, row_from_sql
from lei_store.sqlite import connect_rw


def connect(path: Path) -> sqlite3.Connection:
    """The writer's connection, lei's tables created if missing and the local inbox row present."""
    db = connect_rw(path, "over", "rebuilds the index from git")
    db.execute("PRAGMA synchronous = NORMAL")
    db.execute("PRAGMA cache_size = -16000")  # 16 MiB: memory stays flat as the store grows
    db.execute("INSERT OR IGNORE INTO inboxes (eidx_key) VALUES ('.')")
    return db


def create(path: Path) -> None:
    connect(path).close()


class OverIdx:
    """Writer handle on over.sqlite3. Call begin() before writes and commit() at batch ends."""

    def __init__(self, path: Path):
        self.db = connect(path)
        self.ibx_id = self.db.execute("SELECT ibx_id FROM inboxes WHERE eidx_key = '.'").fetchone()[0]
        self._in_tx = False
        self._counters: dict[str, int] = {}  # cached while we hold ei.lock and a transaction

    # -- transactions ---------------------------------------------------
    def begin(self) -> None:
        if not self._in_tx:
            self.db.execute("BEGIN IMMEDIATE")
            self._in_tx = True

    def commit(self) -> None:
        if self._in_tx:
            self.db.executemany("UPDATE counter SET val = ? WHERE key = ?",
                                [(v, k) for k, v in self._counters.items()])
            self.db.execute("COMMIT")
            self._in_tx = False
        self._counters.clear()

    def rollback(self) -> None:
        if self._in_tx and self.db.in_transaction:  # SQLite may have rolled back by itself (disk full)
            self.db.execute("ROLLBACK")
        self._in_tx = False
        self._counters.clear()

    def close(self) -> None:
        self.commit()
        self.db.execute("PRAGMA optimize")
        self.db.close()

    # -- counters -------------------------------------------------------
    def _bump(self, key: str, delta: int) -> int:
        """Increment a counter; written back at commit (only one writer runs at a time)."""
        if key not in self._counters:
            row = self.db.execute("SELECT val FROM counter WHERE key = ?", (key,)).fetchone()
            self._counters[key] = row[0] if row else 0
        self._counters[key] += delta
        return self._counters[key]

    def next_num(self) -> int:
        return self._bump("eidx_docid", 1)

    def _new_tid(self) -> int:
        return self._bump("thread", 1)

    # -- lookups --------------------------------------------------------
    def docids_of_blob(self, oidbin: bytes) -> list[int]:
        """Docids of real (bytes > 0) rows that hold this blob."""
        rows = self.db.execute(
            "SELECT x.docid, o.ddd FROM xref3 x JOIN over o ON o.num = x.docid "
            "WHERE x.oidbin = ? AND o.num > 0", (oidbin,)).fetchall()
        return [d for d, ddd in rows if ddd and int(decode_ddd(ddd)[7] or 0) > 0]

    def rows_for_mid(self, mid: str) -> list[OverRow]:
        """Real messages (num > 0, bytes > 0) linked to a Message-ID."""
        q = ("SELECT o.num, o.tid, o.sid, o.ts, o.ds, o.ddd FROM msgid m "
             "JOIN id2num i ON i.id = m.id JOIN over o ON o.num = i.num "
             "WHERE m.mid = ? AND o.num > 0 ORDER BY o.num")
        rows = [row_from_sql(*r) for r in self.db.execute(q, (mid,))]
        return [r for r in rows if r.bytes > 0]

    def real_nums(self) -> list[int]:
        """Every stored message's number (rows of other inboxes, bytes = 0, left out)."""
        rows = self.db.execute("SELECT num, ddd FROM over WHERE num > 0 ORDER BY num")
        return [num for num, ddd in rows if ddd and int(decode_ddd(ddd)[7] or 0) > 0]

    def existing_blobs(self, oidbins: set[bytes]) -> set[bytes]:
        """The subset of these blobs that some message row still references."""
        found: set[bytes] = set()
        todo = list(oidbins)
        for i in range(0, len(todo), 500):
            part = todo[i:i + 500]
            q = f"SELECT DISTINCT oidbin FROM xref3 WHERE oidbin IN ({','.join('?' * len(part))})"
            found.update(bytes(r[0]) for r in self.db.execute(q, part))
        return found

    # -- ids ------------------------------------------------------------
    def _mid_id(self, mid: str) -> int:
        self.db.execute("INSERT OR IGNORE INTO msgid (mid) VALUES (?)", (mid,))
        return self.db.execute("SELECT id FROM msgid WHERE mid = ?", (mid,)).fetchone()[0]

    def _rows_any(self, mid: str) -> list[tuple[int, int]]:
        """(num, tid) of every row linked to mid, ghosts included, by num."""
        return self.db.execute(
            "SELECT o.num, o.tid FROM msgid m JOIN id2num i ON i.id = m.id "
            "JOIN over o ON o.num = i.num WHERE m.mid = ? ORDER BY o.num", (mid,)).fetchall()

    # -- threading (§5.4) -----------------------------------------------
    def _merge(self, winner: int, loser: int) -> None:
        if winner != loser:
            self.db.execute("UPDATE over SET tid = ? WHERE tid = ?", (winner, loser))

    def _resolve(self, mid: str) -> int:
        tid = None
        for _num, row_tid in self._rows_any(mid):
            if tid is None:
                tid = row_tid
            else:
                self._merge(tid, row_tid)
        if tid is None:  # referenced but unseen: a ghost holds its place in the thread
            mid_id = self._mid_id(mid)
            ghost = self._bump("ghost", -1)
            tid = self._new_tid()
            self.db.execute("INSERT INTO over (num, tid) VALUES (?, ?)", (ghost, tid))
            self.db.execute("INSERT INTO id2num (id, num) VALUES (?, ?)", (mid_id, ghost))
        return tid

    def _link(self, refs: list[str], old: int | None) -> int:
        if not refs:
            return old if old is not None else self._new_tid()
        tid = self._resolve(refs[0])
        if old is not None:
            self._merge(tid, old)
        for ref in refs[1:]:
            self._merge(tid, self._resolve(ref))
        return tid

    def _thread_id(self, mids: list[str], refs: list[str]) -> int:
        old = None
        vivified = False
        for mid in mids:
            for num, row_tid in self._rows_any(mid):
                if old is None:
                    old = row_tid
                if num > 0:
                    self._merge(old, row_tid)
                else:  # the ghost of this message becomes the message
                    old = self._link(refs, old)
                    self.db.execute("DELETE FROM over WHERE num = ?", (num,))
                    self.db.execute("DELETE FROM id2num WHERE num = ?", (num,))
                    vivified = True
        if vivified and old is not None:
            return old
        return self._link(refs, old)

    def _subject_id(self, path: str) -> int | None:
        if not path:
            return None
        self.db.execute("INSERT OR IGNORE INTO subject (path) VALUES (?)", (path,))
        return self.db.execute("SELECT sid FROM subject WHERE path = ?", (path,)).fetchone()[0]

    # -- writes ---------------------------------------------------------
    def add_message(self, num: int, mids: list[str], refs: list[str], subject_path: str,
                    ts: int, ds: int, ddd: bytes, oidbin: bytes) -> int:
        """Insert a new message's rows (§5.3); returns its thread id."""
        tid = self._thread_id(mids, refs)
        sid = self._subject_id(subject_path)
        self.db.execute("INSERT INTO over (num, tid, sid, ts, ds, ddd) VALUES (?, ?, ?, ?, ?, ?)",
                        (num, tid, sid, ts, ds, ddd))
        for mid in mids:
            self.db.execute("INSERT OR IGNORE INTO id2num (id, num) VALUES (?, ?)", (self._mid_id(mid), num))
        self.add_xref(num, oidbin)
        return tid

    def add_xref(self, docid: int, oidbin: bytes) -> None:
        self.db.execute("INSERT OR IGNORE INTO xref3 (docid, ibx_id, xnum, oidbin) VALUES (?, ?, -1, ?)",
                        (docid, self.ibx_id, oidbin))

    def blobs_of(self, docid: int) -> list[bytes]:
        """Every blob of a message, in the order they were attached (the first is the over row's)."""
        return [bytes(o) for (o,) in self.db.execute(
            "SELECT oidbin FROM xref3 WHERE docid = ? ORDER BY rowid", (docid,))]

    def remove_message(self, num: int) -> None:
        """Unindex a message (lei rm, §10.5): over, id2num, xref3 and eidxq rows go; msgid rows stay."""
        for table, col in (("over", "num"), ("id2num", "num"), ("xref3", "docid"), ("eidxq", "docid")):
            self.db.execute(f"DELETE FROM {table} WHERE {col} = ?", (num,))

    def set_meta(self, key: str, value: str) -> None:
        self.db.execute("INSERT OR REPLACE INTO eidx_meta (key, val) VALUES (?, ?)", (key, value))

    def delete_meta(self, key: str) -> None:
        self.db.execute("DELETE FROM eidx_meta WHERE key = ?", (key,))

    def get_meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT val FROM eidx_meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None
