"""fsck of the change feed's tables (journal.sqlite3): their schema, by sqlite-utils'
introspection; every message and only those in `messages`, with the keywords and labels the
index holds; every message a member of \\All and of its labels' mailboxes, the seen flags
right; the quota usage equal to what the tables count and to what git holds (the truth)."""

from __future__ import annotations

import functools
import sqlite3

from lei_store.disk import journaldb
from lei_store.disk.gitlog import blob_sizes
from lei_store.disk.mailboxes import is_mailbox_label
from lei_store.paths import Layout
from lei_store.sqlite import connect_ro


def check_feed(layout: Layout, over, xap, live: set[bytes], f) -> None:
    """Append the feed's problems to F (fsck's findings); OVER, XAP: what fsck read of the index."""
    if not layout.journal.is_file():
        return
    try:
        db = connect_ro(layout.journal)
        try:
            _check(db, layout, over, xap, live, f)
        finally:
            db.close()
    except sqlite3.DatabaseError as e:
        f.error("feed unreadable", f"journal.sqlite3: {e}", where="journal.sqlite3")


def _check(db: sqlite3.Connection, layout: Layout, over, xap, live: set[bytes], f) -> None:
    for problem in journaldb.problems(db):
        if journaldb.version(db) < journaldb.VERSION:
            f.warn("no change feed yet", problem, where="journal.sqlite3")
            return
        f.error("journal schema", problem, where="journal.sqlite3")
    settings = dict(db.execute("SELECT key, value FROM settings"))
    if "backfilled" not in settings:
        f.warn("feed not backfilled", "the feed does not hold the messages stored before it began "
               "(the next writer records them)", where="journal.sqlite3")
        return
    feed = {bytes(o): (frozenset(kw.split()), frozenset(labels.split()), size)
            for o, kw, labels, size in db.execute("SELECT oidbin, kw, labels, bytes FROM messages")}
    _check_messages(over, xap, feed, f)
    _check_members(db, over, feed, f)
    _check_usage(db, layout, settings, feed, live, f)


def _check_messages(over, xap, feed: dict, f) -> None:
    keys = {over.key_of_doc[num]: num for num in over.real if num in over.key_of_doc}
    empty: tuple[frozenset[str], frozenset[str]] = (frozenset(), frozenset())
    for key, num in keys.items():
        if key not in feed:
            f.error("message not in feed", f"message {num} is not in the feed's messages", num=num, oid=key.hex(),
                    where="journal.messages")
            continue
        kw, labels, _size = feed[key]
        if num in xap.present and xap.volatile.get(num, empty) != (kw, labels):
            f.error("feed state mismatch", f"message {num}: the feed says kw={sorted(kw)} L={sorted(labels)}, "
                    f"the index {sorted(xap.volatile.get(num, empty)[0])} {sorted(xap.volatile.get(num, empty)[1])}",
                    num=num, oid=key.hex(), where="journal.messages")
    for key in feed.keys() - keys.keys():
        f.error("feed holds a removed message", "the feed's messages hold a message the index does not",
                oid=key.hex(), where="journal.messages")
    f.count("feed_messages", len(feed))


def _check_members(db: sqlite3.Connection, over, feed: dict, f) -> None:
    boxes = {label: (mid, uidnext) for mid, label, uidnext in db.execute("SELECT id, label, uidnext FROM mailboxes")}
    uidnext = {mid: n for mid, n in boxes.values()}
    have: dict[bytes, dict[int, tuple[int, int]]] = {}
    for mid, uid, oid, seen in db.execute("SELECT mailbox, uid, oidbin, seen FROM members"):
        have.setdefault(bytes(oid), {})[mid] = (uid, seen)
        if uid >= uidnext.get(mid, 0):
            f.error("uid beyond uidnext", f"UID {uid} in mailbox {mid} is not below its UIDNEXT", oid=bytes(oid).hex(),
                    where="journal.members")
    mailbox_label = functools.cache(is_mailbox_label)
    for key, (kw, labels, _size) in feed.items():
        labels = frozenset(label for label in labels if mailbox_label(label))  # a plain label is in no mailbox
        want = {boxes[None][0]} | {boxes[label][0] for label in labels if label in boxes}
        if len(want) != len(labels) + 1:
            f.error("label without mailbox", f"labels {sorted(labels)} are not all mailboxes", oid=key.hex(),
                    where="journal.mailboxes")
        got = have.get(key, {})
        if set(got) != want:
            f.error("membership mismatch", f"member of mailboxes {sorted(got)}, its labels say {sorted(want)}",
                    oid=key.hex(), where="journal.members")
        elif any(bool(seen) != ("seen" in kw) for _uid, seen in got.values()):
            f.error("seen flag mismatch", "a member row's seen flag differs from the keywords", oid=key.hex(),
                    where="journal.members")
    for key in have.keys() - feed.keys():
        f.error("member without message", "a mailbox holds a message the feed does not", oid=key.hex(),
                where="journal.members")


def _check_usage(db: sqlite3.Connection, layout: Layout, settings: dict, feed: dict, live: set[bytes], f) -> None:
    counted = (sum(size for _kw, _l, size in feed.values()), len(feed))
    kept = (settings.get("usage_bytes", 0), settings.get("usage_messages", 0))
    if kept != counted:
        f.error("usage out of step", f"the usage kept is {kept[0]} bytes, {kept[1]} messages; the feed's "
                f"messages hold {counted[0]} bytes, {counted[1]} messages", where="journal.settings")
    truth = sum(blob_sizes(layout.all_git, sorted(live)).values())
    if counted[0] != truth:
        f.error("usage differs from git", f"the feed counts {counted[0]} bytes, git holds {truth} in its live blobs",
                where="journal.messages")
