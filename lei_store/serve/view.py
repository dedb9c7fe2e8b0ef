"""The store as an IMAP server sees it, without IMAP: mailboxes, their members by UID with
keywords and internal dates, the changes after a modseq, message bytes; and the writes IMAP
commands make, one batch through the store's single writer per command (so each is journaled,
in the change feed, and seen by real lei at once).

Reads take no lock (an import running elsewhere never blocks them). Writes wait for ei.lock
up to WRITE_WAIT seconds: an IMAP command issued during an import waits for it rather than fail.
Labels are mailboxes (disk/mailboxes.py); \\All is every message. Keywords map to IMAP flags as
RFC 8621 does; \\Deleted is no keyword of lei's and is kept by the server (serve/imap.py).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import NamedTuple

from lei_store.disk import feed, mailboxes
from lei_store.disk.blobs import BlobReader, git_oid
from lei_store.disk.journal import Journal
from lei_store.disk.mailboxes import ALL, Mailbox
from lei_store.errors import InputError, QueryError, StoreLockedError
from lei_store.mail.keywords import VolatileChange
from lei_store.paths import Layout, existing_store
from lei_store.sources.imap import to_lf
from lei_store.sources.items import Item
from lei_store.sqlite import connect_ro
from lei_store.write.store import Store
from lei_store.write.writer import AddOptions, Writer

WRITE_WAIT = 300.0  # seconds an IMAP write waits for another writer (an import) to finish

# RFC 8621 section 4.1.1: IMAP flags <-> JMAP keywords (lei's keyword names)
FLAG_OF = {"seen": "\\Seen", "answered": "\\Answered", "flagged": "\\Flagged", "draft": "\\Draft",
           "forwarded": "$Forwarded", "junk": "$Junk", "notjunk": "$NotJunk", "phishing": "$Phishing"}
KEYWORD_OF = {flag.lower(): kw for kw, flag in FLAG_OF.items()}


class Member(NamedTuple):
    """A message in a mailbox: its UID there, its key blob, keywords, the modseq of its last change."""

    uid: int
    oidbin: bytes
    kw: tuple[str, ...]
    modseq: int


class MessageFacts(NamedTuple):
    """What over.sqlite3 says of a message: when it was received (IMAP's INTERNALDATE), its thread."""

    ts: int
    tid: int


def _matching_nums(xdb, query, nshards: int) -> set[int]:
    """The message numbers Xapian finds for QUERY, all of them, in docid order (no ranking)."""
    import xapian

    from lei_store.disk.shards import num_of

    for _attempt in range(10):  # a writer may commit under us: reopen and retry, as readers do
        try:
            enq = xapian.Enquire(xdb)
            enq.set_query(query)
            enq.set_weighting_scheme(xapian.BoolWeight())
            enq.set_docid_order(xapian.Enquire.ASCENDING)
            mset = enq.get_mset(0, max(xdb.get_doccount(), 1))
            return {num_of(m.docid, nshards) for m in mset}
        except xapian.DatabaseModifiedError:
            xdb.reopen()
    raise QueryError("the index kept changing while searching; try again")


def keywords_of(flags) -> frozenset[str]:
    """lei keywords for IMAP flags (names as str, any case); flags without a keyword are left out."""
    return frozenset(KEYWORD_OF[str(f).lower()] for f in flags if str(f).lower() in KEYWORD_OF)


class StoreView:
    """One store, for a server: reads as they come, writes one batch per call."""

    def __init__(self, root: Path):
        self.lay: Layout = existing_store(Path(root))
        self._blobs = BlobReader(self.lay)

    # -- reading ------------------------------------------------------------------------
    def mailboxes(self) -> list[Mailbox]:
        return mailboxes.read(self.lay.root)

    def _journal(self) -> sqlite3.Connection:
        return Journal(self.lay.journal, readonly=True).db

    def mailbox(self, name: str) -> Mailbox | None:
        found = [b for b in self.mailboxes() if b.name == mailboxes.canonical(name)]
        return found[0] if found else None

    def members(self, name: str) -> tuple[list[Member], int]:
        """Every member of mailbox NAME by UID, and the highest modseq they are as of."""
        db = self._journal()
        try:
            db.execute("BEGIN")  # one snapshot
            found = mailboxes.find(db, name)
            if found is None:
                raise KeyError(name)
            rows = db.execute("SELECT m.uid, m.oidbin, g.kw, m.modseq FROM members m JOIN messages g "
                              "ON g.oidbin = m.oidbin WHERE m.mailbox = ? ORDER BY m.uid", (found[0],))
            members = [Member(uid, bytes(oid), tuple(kw.split()), modseq) for uid, oid, kw, modseq in rows]
            return members, feed.highest_modseq(db)
        finally:
            db.close()

    def changes(self, name: str, since: int) -> tuple[list[Member], list[int], int]:
        """What changed in mailbox NAME after SINCE: members (new or changed), UIDs gone, highest
        modseq. feed.ResyncNeeded when SINCE is out of the feed's range (it was rebuilt)."""
        db = self._journal()
        try:
            db.execute("BEGIN")
            changed, gone = [], []
            for c in feed.mailbox_changes(db, name, since):
                if c.kind == "removed":
                    gone.append(c.uid or 0)
                else:
                    changed.append(Member(c.uid or 0, bytes.fromhex(c.blob or ""), tuple(c.kw), c.modseq))
            return changed, gone, feed.highest_modseq(db)
        finally:
            db.close()

    def highest_modseq(self) -> int:
        db = self._journal()
        try:
            return feed.highest_modseq(db)
        finally:
            db.close()

    def facts(self, oidbins: list[bytes]) -> dict[bytes, MessageFacts]:
        """Received time and thread of each message (by any of its blobs)."""
        db = connect_ro(self.lay.over)
        try:
            q = "SELECT x.oidbin, o.ts, o.tid FROM xref3 x JOIN over o ON o.num = x.docid"
            if len(oidbins) > 2000:  # most of the store: one pass beats thousands of lookups
                want = set(oidbins)
                return {bytes(o): MessageFacts(ts, tid) for o, ts, tid in db.execute(q) if bytes(o) in want}
            found = {}
            for i in range(0, len(oidbins), 500):
                part = oidbins[i:i + 500]
                rows = db.execute(f"{q} WHERE x.oidbin IN ({','.join('?' * len(part))})", part)
                found.update({bytes(o): MessageFacts(ts, tid) for o, ts, tid in rows})
            return found
        finally:
            db.close()

    def search(self, query: str) -> set[bytes]:
        """The blobs of every message matching QUERY (lei's language), by the Xapian index."""
        from lei_store.disk import shards
        from lei_store.read.query import parse

        xdb = shards.open_all(self.lay)
        try:
            nums = _matching_nums(xdb, parse(xdb, query), self.lay.shard_count())
        finally:
            xdb.close()
        if not nums:
            return set()
        db = connect_ro(self.lay.over)
        try:
            if len(nums) > 2000:  # most of the store: one pass beats thousands of lookups
                return {bytes(o) for num, o in db.execute("SELECT docid, oidbin FROM xref3") if num in nums}
            found: set[bytes] = set()
            ordered = sorted(nums)
            for i in range(0, len(ordered), 500):
                part = ordered[i:i + 500]
                rows = db.execute(f"SELECT oidbin FROM xref3 WHERE docid IN ({','.join('?' * len(part))})", part)
                found.update(bytes(o) for (o,) in rows)
            return found
        finally:
            db.close()

    def blob(self, oidbin: bytes) -> bytes:
        data = self._blobs.read(oidbin)
        if data is None:
            raise KeyError(oidbin.hex())
        return data

    # -- writing: each call is one writer batch ----------------------------------------
    def _writer(self, wait: float = WRITE_WAIT) -> Writer:
        return Store.open(self.lay.root).writer(lock_timeout=wait, jobs=1)

    def change_keywords(self, oidbins: list[bytes], change: VolatileChange) -> None:
        """STORE: the same keyword change on every message given."""
        with self._writer() as w:
            w.change_volatile(self._nums(w, oidbins), change)
            w.flush()

    def label(self, oidbins: list[bytes], add: str | None, remove: str | None) -> None:
        """COPY (ADD), MOVE (ADD and REMOVE), EXPUNGE in a label mailbox (REMOVE): labels moved."""
        change = VolatileChange(add_labels=frozenset({add} if add else ()),
                                remove_labels=frozenset({remove} if remove else ()))
        with self._writer() as w:
            w.change_volatile(self._nums(w, oidbins), change)
            w.flush()

    def remove(self, oidbins: list[bytes]) -> None:
        """EXPUNGE in \\All: the messages leave the store as `rm` removes them (git keeps them)."""
        with self._writer() as w:
            w.remove(self._nums(w, oidbins))
            w.flush()

    def append(self, raw: bytes, kw: frozenset[str], mailbox: str) -> int:
        """APPEND: store RAW (a duplicate is recognised) with keywords KW in MAILBOX; its UID there.
        The literal's CRLFs become LF, as an IMAP import stores what it fetches (and lei does)."""
        label = None if mailboxes.canonical(mailbox) == ALL else mailboxes.label_of(mailbox)
        raw = to_lf(raw)
        blob = git_oid(raw)
        with self._writer() as w:
            w.add_messages([Item(raw, kw, origin="IMAP APPEND")], AddOptions(record_sync=False))
            w.flush()
            change = VolatileChange(add_kw=kw, add_labels=frozenset({label} if label else ()))
            w.change_volatile(w.over.docids_of_blob(blob), change)  # a message stored before gets them too
            w.flush()
        return self._uid_of(blob, mailbox)

    def _uid_of(self, blob: bytes, mailbox: str) -> int:
        db = self._journal()
        try:
            found = mailboxes.find(db, mailbox)
            row = db.execute("SELECT m.uid FROM blobs b JOIN members m ON m.oidbin = b.message "
                             "WHERE b.oidbin = ? AND m.mailbox = ?", (blob, found[0] if found else -1)).fetchone()
            if row is None:
                raise InputError(f"the appended message is not in {mailbox!r} (it was not stored: see the "
                                 "server's log)")
            return row[0]
        finally:
            db.close()

    @staticmethod
    def _nums(w: Writer, oidbins: list[bytes]) -> list[int]:
        return sorted({n for oid in oidbins for n in w.over.docids_of_blob(oid)})

    def manage(self, action: str, name: str, new: str | None = None) -> None:
        from lei_store.ops.mailbox import manage

        manage(self.lay.root, action, name, new, lock_timeout=WRITE_WAIT)

    def claim_recent(self, name: str) -> range:
        """The UIDs recent to the session that selects NAME now; none when a writer (an import)
        holds the store: a SELECT never waits for one."""
        from lei_store.ops.mailbox import claim_recent

        try:
            return claim_recent(self.lay.root, name, lock_timeout=0)
        except StoreLockedError:
            return range(0)
