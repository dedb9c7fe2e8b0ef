"""The read side: search a store with lei's query language and get typed results (spec §9).

Readers open everything read-only and take no lock, so they never wait for a
writer and a writer never waits for them.
"""

from __future__ import annotations

import time
from functools import lru_cache
from pathlib import Path
from typing import Iterator, NamedTuple

import msgspec
import xapian

from lei_store import tally
from lei_store.disk import shards
from lei_store.disk.over import Over, OverRow
from lei_store.errors import QueryError
from lei_store.paths import Layout
from lei_store.read.choices import DEDUPES, SORTS  # noqa: F401 (the library's names)


class Result(msgspec.Struct, omit_defaults=True, kw_only=True):
    """One search result as lei q prints it (keys in lei's sorted order; "s" even when empty;
    f/t/c are [] for a header naming nobody, left out when the header is absent or empty)."""

    L: list[str] | None = None
    blob: str
    c: list[tuple[str | None, str | None]] | None = None
    dt: str
    f: list[tuple[str | None, str | None]] | None = None
    kw: list[str] | None = None
    m: str | None = None
    pct: int | None = None
    refs: list[str] | None = None
    rt: str
    s: str
    t: list[tuple[str | None, str | None]] | None = None


class Hit(NamedTuple):
    """A matching message: its overview row, keywords, labels and match percentage."""

    row: OverRow
    keywords: list[str]
    labels: list[str]
    pct: int | None  # None for messages added by --threads that did not match themselves

    def record(self) -> Result:
        from lei_store.mail.addresses import json_addresses as addrs

        r = self.row
        refs = [x.strip("<>") for x in r.references.split()] or None
        return Result(L=self.labels or None, blob=r.blob, c=addrs(r.cc), dt=_iso(r.ds), f=addrs(r.from_),
                      kw=self.keywords or None, m=r.mid or None, pct=self.pct, refs=refs,
                      rt=_iso(r.ts), s=r.subject, t=addrs(r.to))


@lru_cache(maxsize=4096)
def _iso_day(day: int) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(day * 86400))


def _iso(t: int | None) -> str:
    """UTC ISO 8601 like lei's JSON; the date part is cached (hits cluster on few days)."""
    day, sec = divmod(t or 0, 86400)
    return "%sT%02d:%02d:%02dZ" % (_iso_day(day), sec // 3600, sec // 60 % 60, sec % 60)


def _docids(mset: xapian.MSet) -> Iterator[tuple[int, int]]:
    """(docid, percent) of each match, by the raw SWIG iterator (the wrapper builds an object per item)."""
    it, end = mset._begin(), mset._end()
    while not it.equals(end):
        yield it.get_docid(), it.get_percent()
        next(it)


class Reader:
    """Read-only view of a store for searching (public-inbox's Search): Xapian for matching,
    Over for the rows, neither locked."""

    def __init__(self, root: Path):
        self.layout = Layout(Path(root))
        self.nshards = self.layout.shard_count()
        self.db = shards.open_all(self.layout)
        self.over = Over(self.layout.over)

    def close(self) -> None:
        self.db.close()
        self.over.close()

    def num_of(self, docid: int) -> int:
        return shards.num_of(docid, self.nshards)

    def docid_of(self, num: int) -> int:
        return shards.docid_of(num, self.nshards)

    def rows(self, nums: list[int]) -> dict[int, OverRow]:
        return self.over.rows(nums)

    def _mset(self, query: xapian.Query, sort: str, reverse: bool, offset: int, limit: int,
              threads: bool) -> xapian.MSet:
        enq = xapian.Enquire(self.db)
        enq.set_query(query)
        if threads or sort == "docid":
            enq.set_docid_order(xapian.Enquire.ASCENDING if reverse and not threads
                                else xapian.Enquire.DESCENDING)
        elif sort == "relevance":
            enq.set_sort_by_relevance_then_value(0, not reverse)
        else:
            enq.set_sort_by_value_then_relevance(0, not reverse)
        return enq.get_mset(offset, limit, 0)

    def search(self, query: str, *, sort: str = "received", reverse: bool = False, offset: int = 0,
               limit: int = 10000, threads: bool = False, dedupe: str = "content") -> Iterator[Hit]:
        """Run a query now (errors raise here) and return its hits as an iterator."""
        from lei_store.read.query import parse

        parsed = parse(self.db, query)
        tally.add("queries")
        for _attempt in range(10):  # a writer may commit under us: reopen and retry, as lei does
            try:
                mset = self._mset(parsed, sort, reverse, offset, limit, threads)
                matches = [(self.num_of(docid), min(pct, 99), docid) for docid, pct in _docids(mset)]
                picked = self._threads(matches) if threads else self._matched(matches)
                volatile = shards.volatile_for(self.db, [docid for _, docid, _ in picked])
                hits = [Hit(row, *volatile.get(docid, ([], [])), pct) for row, docid, pct in picked]
                return self._deduped(hits, dedupe)
            except xapian.DatabaseModifiedError:
                self.db.reopen()
        raise QueryError("the index kept changing while searching; try again")

    def _deduped(self, hits: list[Hit], dedupe: str) -> Iterator[Hit]:
        seen: set = set()
        for hit in hits:
            key = dedupe_key(hit.row, dedupe)
            if key is not None:
                if key in seen:
                    continue
                seen.add(key)
            yield hit

    def _matched(self, matches) -> list[tuple[OverRow, int, int | None]]:
        rows = self.rows([n for n, _, _ in matches])
        return [(rows[num], docid, pct) for num, pct, docid in matches if num in rows]

    def _threads(self, matches) -> list[tuple[OverRow, int, int | None]]:
        """Every message of each matching thread, threads in match order."""
        pct_of = {num: pct for num, pct, _ in matches}
        done: set[int] = set()
        picked = []
        for num, _pct, _doc in matches:
            if num in done:
                continue
            nums = self.over.thread_of(num)
            rows = self.rows(nums)
            for n in nums:
                if n not in done and n in rows:
                    done.add(n)
                    picked.append((rows[n], self.docid_of(n), pct_of.get(n)))
        return picked

    def by_blob(self, oid: str, blobs=None) -> list[Hit]:
        """The message holding a blob (full or abbreviated OID), as a hit with pct 100."""
        if len(oid) < 40 and blobs is not None:
            try:
                oid = str(blobs.repo().revparse_single(oid).id)
            except (KeyError, ValueError):
                return []
        return self._whole(self.over.docids_of_blob(bytes.fromhex(oid)), 100)

    def by_mid(self, mid: str) -> list[Hit]:
        """The messages with a Message-ID (without <>), as lcat shows them (pct as a match of mid:)."""
        hits = self._whole(self.over.nums_of_mid(mid), 99)
        return sorted(hits, key=lambda h: -h.row.ts)  # newest first, as a search sorts them

    def _whole(self, nums: list[int], pct: int) -> list[Hit]:
        rows = self.rows(nums)
        found = shards.volatile_for(self.db, [self.docid_of(n) for n in rows])
        return [Hit(rows[n], *found.get(self.docid_of(n), ([], [])), pct) for n in nums if n in rows]

    def volatile(self, num: int) -> tuple[list[str], list[str]]:
        docid = self.docid_of(num)
        return shards.volatile_for(self.db, [docid]).get(docid, ([], []))

    def volatile_of_blob(self, oidbin: bytes) -> tuple[list[str], list[str]] | None:
        """Keywords and labels of the message holding a blob; None when no message holds it."""
        hits = self._whole(self.over.docids_of_blob(oidbin), 100)
        return (hits[0].keywords, hits[0].labels) if hits else None

    def all_labels(self) -> list[str]:
        return shards.labels(self.db)


def dedupe_key(row: OverRow, mode: str):
    if mode == "none":
        return None
    if mode == "oid":
        return row.blob
    if mode == "mid" and row.mid:
        return ("mid", row.mid)
    return (row.from_, row.to, row.cc, row.ds, row.subject, row.references, row.mid)
