"""Reading ei15/over.sqlite3 (spec §5): overview rows, threads, blobs and the index's marks.

`Over` is the read-only view every reader goes through (search, folders, reindex, fsck,
repair), as public-inbox's Over; the writer is overidx.OverIdx. A row's fields beyond its
numbers are lei's zlib'd nine-field `ddd` record, decoded here.
"""

from __future__ import annotations

import zlib
from pathlib import Path
from typing import Iterator, NamedTuple

from lei_store.sqlite import connect_ro

DDD_FIELDS = ("subject", "from_", "references", "to", "cc", "blob", "mid", "bytes", "lines")


class OverRow(NamedTuple):
    """One decoded `over` row of a real message."""

    num: int
    tid: int
    sid: int | None
    ts: int
    ds: int
    subject: str
    from_: str
    references: str
    to: str
    cc: str
    blob: str
    mid: str
    bytes: int
    lines: int


def encode_ddd(subject: str, from_: str, references: str, to: str, cc: str,
               blob: str, mid: str, nbytes: int, lines: int) -> bytes:
    """The zlib'd nine-field record lei keeps in over.ddd."""
    text = "\n".join((subject, from_, references, to, cc, blob, mid, str(nbytes), str(lines)))
    return zlib.compress(text.encode("utf-8", "surrogatepass"))


def decode_ddd(ddd: bytes) -> list[str]:
    fields = zlib.decompress(ddd).decode("utf-8", "replace").split("\n")
    return fields + [""] * (9 - len(fields))


def row_from_sql(num, tid, sid, ts, ds, ddd) -> OverRow:
    f = decode_ddd(ddd)
    return OverRow(num, tid, sid, ts, ds, f[0], f[1], f[2], f[3], f[4], f[5], f[6],
                   int(f[7] or 0), int(f[8] or 0))


class Over:
    """Read-only handle on over.sqlite3: takes no lock, sees each writer commit as it lands."""

    def __init__(self, path: Path):
        self.path = path
        self.db = connect_ro(path, check_same_thread=False)

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> "Over":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- messages -----------------------------------------------------------
    def rows(self, nums: list[int]) -> dict[int, OverRow]:
        """Rows of real messages (bytes > 0) among NUMS."""
        found = {}
        for i in range(0, len(nums), 500):
            part = nums[i:i + 500]
            q = f"SELECT num, tid, sid, ts, ds, ddd FROM over WHERE num IN ({','.join('?' * len(part))})"
            for r in self.db.execute(q, part):
                if r[5] is not None:
                    row = row_from_sql(*r)
                    if row.bytes > 0:
                        found[row.num] = row
        return found

    def thread_of(self, num: int) -> list[int]:
        """The message numbers of NUM's thread, ascending; [] when NUM has no row."""
        tid = self.db.execute("SELECT tid FROM over WHERE num = ?", (num,)).fetchone()
        if tid is None:
            return []
        return [n for (n,) in self.db.execute("SELECT num FROM over WHERE tid = ? AND num > 0 ORDER BY num", tid)]

    def nums_of_mid(self, mid: str) -> list[int]:
        """Message numbers of the real messages linked to a Message-ID, ascending."""
        q = ("SELECT o.num FROM msgid m JOIN id2num i ON i.id = m.id JOIN over o ON o.num = i.num "
             "WHERE m.mid = ? AND o.num > 0 ORDER BY o.num")
        return [n for (n,) in self.db.execute(q, (mid,))]

    # -- blobs (xref3) ------------------------------------------------------
    def docids_of_blob(self, oidbin: bytes) -> list[int]:
        """Message numbers of the rows that hold a blob (any kind of row)."""
        return [d for (d,) in self.db.execute("SELECT docid FROM xref3 WHERE oidbin = ? ORDER BY docid", (oidbin,))]

    def blobs_of(self, num: int) -> list[bytes]:
        """Every blob of a message (its copies), in the order they were attached."""
        return [bytes(o) for (o,) in self.db.execute("SELECT oidbin FROM xref3 WHERE docid = ? ORDER BY rowid", (num,))]

    def holds_blob(self, oidbin: bytes) -> bool:
        return self.db.execute("SELECT 1 FROM xref3 WHERE oidbin = ? LIMIT 1", (oidbin,)).fetchone() is not None

    def first_blobs(self) -> dict[int, bytes]:
        """Each message's first attached blob (the one the journal keys it by)."""
        return {num: bytes(oid) for num, oid in self.db.execute(
            "SELECT docid, oidbin FROM xref3 ORDER BY rowid DESC")}  # the first attached is written last

    # -- the whole table, for fsck ---------------------------------------------
    def raw_rows(self) -> Iterator[tuple[int, int, int, bytes | None]]:
        """(num, tid, ts, ddd) of every row, ghosts and external ones included."""
        return self.db.execute("SELECT num, tid, ts, ddd FROM over")

    def raw_xref3(self) -> Iterator[tuple[int, object, str]]:
        """(docid, oidbin, SQLite type of oidbin) of every xref3 row."""
        return self.db.execute("SELECT docid, oidbin, typeof(oidbin) FROM xref3 ORDER BY rowid")

    def counters(self) -> dict[str, int]:
        return dict(self.db.execute("SELECT key, val FROM counter"))

    def quick_check(self) -> list[str]:
        return [r[0] for r in self.db.execute("PRAGMA quick_check")]

    def meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT val FROM eidx_meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None
