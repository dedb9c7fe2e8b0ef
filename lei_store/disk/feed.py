"""Reading the change feed (rusmes ModSeq, IMAP CONDSTORE/QRESYNC, JMAP Email/changes).

Every change to the store has a modseq: the `seq` of its row in journal.sqlite3, given in
commit order by the single writer. `changes(since)` streams what happened after a modseq a
follower stored; with a mailbox, what is in it now and changed after that modseq, and the UIDs
that left it (tombstones), as IMAP QRESYNC wants. A follower that stored a modseq below the
feed's floor (a feed rebuilt by fsck --repair, or from before the store kept a feed), or one
the feed never reached (another store, a journal rebuilt after its loss), is told to resync.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Iterator

import msgspec

from lei_store.disk import mailboxes
from lei_store.errors import LeiStoreError

KINDS = ("added", "changed", "removed", "mailbox", "expunged")


class ResyncNeeded(LeiStoreError):
    """The follower's modseq is older than the history the feed keeps."""

    exit_code = 3


class Change(msgspec.Struct, omit_defaults=True):
    """One change, as `changes --json` and `watch --json` print it."""

    modseq: int
    kind: str  # added, changed (keywords, labels or a new copy), removed, mailbox, expunged
    blob: str | None  # the message's key blob (its first); null for a mailbox event
    kw: list[str]
    L: list[str]
    uid: int | None = None  # with --mailbox: the message's UID there
    copy: str | None = None  # a copy attached: its blob
    mailbox: dict | None = None  # a mailbox event: action, name (and new)
    epochs: list[int] | None = None  # expunged: gc --expunge rewrote these epochs (replicas re-index them)


class Highest(msgspec.Struct):
    """The last line of `changes --json`: where a follower resumes from."""

    highestmodseq: int


def highest_modseq(db: sqlite3.Connection) -> int:
    return db.execute("SELECT COALESCE(MAX(seq), 0) FROM volatile").fetchone()[0]


def floor(db: sqlite3.Connection) -> int:
    """The oldest modseq a follower may resume from (0: the whole history is kept)."""
    if db.execute("SELECT 1 FROM sqlite_master WHERE name = 'settings'").fetchone() is None:
        return highest_modseq(db)  # a journal from before the feed: nothing can be resumed
    row = db.execute("SELECT value FROM settings WHERE key = 'feed_floor'").fetchone()
    return row[0] if row else 0


def _kind(op: str, kind: str | None) -> str:
    if kind in ("added", "removed", "mailbox"):
        return kind
    if kind == "rewrite":
        return "expunged"
    return "removed" if op == "rm" else "changed"


def check_since(db: sqlite3.Connection, since: int, what: str = "the feed") -> None:
    """Refuse a modseq the feed cannot continue from: older than its floor, or beyond its end."""
    low, high = floor(db), highest_modseq(db)
    if since < low:
        raise ResyncNeeded(f"resync needed: modseq {since} is older than {what} keeps (it starts after {low}): "
                           f"read the whole state again (`lei-store q`, `mailboxes`) and follow from {high}, "
                           "the highest modseq now")
    if since > high:
        raise ResyncNeeded(f"resync needed: modseq {since} is beyond this store's feed (the feed was rebuilt, or "
                           f"the modseq is another store's): read the whole state again and follow from {high}, "
                           "the highest modseq now")


def changes(db: sqlite3.Connection, since: int) -> Iterator[Change]:
    """Every change after modseq SINCE, oldest first; streamed (memory stays flat however many)."""
    check_since(db, since)
    q = "SELECT seq, oidbin, op, kw, labels, kind, detail FROM volatile WHERE seq > ? ORDER BY seq"
    for seq, oid, op, kw, labels, kind, detail in db.execute(q, (since,)):
        if kind == "reset":  # the floor itself: a follower past it has nothing to learn from it
            continue
        k = _kind(op, kind)
        if k == "mailbox":
            yield Change(seq, k, None, [], [], mailbox=json.loads(detail or "{}"))
        elif k == "expunged":
            yield Change(seq, k, None, [], [], epochs=json.loads(detail or "{}").get("epochs", []))
        else:
            yield Change(seq, k, bytes(oid).hex(), kw.split(), labels.split(),
                         copy=detail if kind == "copy" else None)


def mailbox_changes(db: sqlite3.Connection, name: str, since: int) -> Iterator[Change]:
    """What changed in mailbox NAME after SINCE: its members changed since (by UID, with their
    state now) and the UIDs that left it; oldest first."""
    found = mailboxes.find(db, name)
    if found is None:
        raise LeiStoreError(f"no mailbox {name!r} (see `lei-store mailboxes`)")
    check_since(db, since, f"the feed of {name!r}")
    mid, _label = found
    q = ("SELECT m.modseq, m.uid, m.oidbin, g.kw, g.labels, m.joined > ? FROM members m "
         "JOIN messages g ON g.oidbin = m.oidbin WHERE m.mailbox = ? AND m.modseq > ? UNION ALL "
         "SELECT modseq, uid, NULL, '', '', 2 FROM vanished WHERE mailbox = ? AND modseq > ? ORDER BY 1, 2")
    for modseq, uid, oid, kw, labels, how in db.execute(q, (since, mid, since, mid, since)):
        if how == 2:
            yield Change(modseq, "removed", None, [], [], uid=uid)
        else:
            yield Change(modseq, "added" if how else "changed", bytes(oid).hex(), kw.split(), labels.split(), uid=uid)
