"""Writing the change feed: each batch's events appended to the journal (their `seq` is the modseq),
and the tables that follow from them kept in the same transaction: every message's state and
size, every mailbox's members under their UIDs, tombstones, the quota usage (disk/journaldb.py).

Mailboxes are labels. A message is a member of the \\All view and of the mailbox of each of its
labels; it gets the next UID of a mailbox when it joins it (a message that leaves and joins
again gets a new one, as IMAP wants), and leaves a tombstone when it leaves. Membership is
decided by the mailbox rows, not by label names, so a renamed mailbox keeps its members and
their UIDs while the label on every message changes.
"""

from __future__ import annotations

import json
import time
from typing import NamedTuple

from lei_store.disk.journal import Event, Journal
from lei_store.disk.mailboxes import ALL, DELIMITER, INBOX, default_special_use, is_mailbox_label, label_of, name_of
from lei_store.errors import InputError


class _Box:
    """A mailbox row, cached for the writer's span (written back at each commit)."""

    __slots__ = ("id", "name", "label", "uidnext", "highestmodseq", "dirty")

    def __init__(self, id: int, name: str, label: str | None, uidnext: int, highestmodseq: int):
        self.id, self.name, self.label = id, name, label
        self.uidnext, self.highestmodseq, self.dirty = uidnext, highestmodseq, False

    def touch(self, modseq: int) -> None:
        self.highestmodseq = max(self.highestmodseq, modseq)
        self.dirty = True


class Usage(NamedTuple):
    """What the store holds, and what it may hold (0: no limit)."""

    bytes: int
    messages: int
    max_bytes: int
    max_messages: int

    def allows(self, size: int, new_message: bool) -> bool:
        return ((not self.max_bytes or self.bytes + size <= self.max_bytes)
                and (not self.max_messages or self.messages + new_message <= self.max_messages))


class FeedIndex:
    """The writer's handle on the feed's tables; it works inside the journal's transaction."""

    def __init__(self, journal: Journal):
        self.journal = journal
        self.db = journal.db
        self._boxes: dict[str | None, _Box] = {}  # by label; None: the \\All view
        self._by_id: dict[int, _Box] = {}
        for mid, name, label, uidnext, modseq in self.db.execute(
                "SELECT id, name, label, uidnext, highestmodseq FROM mailboxes"):
            self._boxes[label] = self._by_id[mid] = _Box(mid, name, label, uidnext, modseq)
        settings = dict(self.db.execute("SELECT key, value FROM settings"))
        self.usage = Usage(settings.get("usage_bytes", 0), settings.get("usage_messages", 0),
                           settings.get("quota_bytes", 0), settings.get("quota_messages", 0))
        self._usage_dirty = False
        self._label_kinds: dict[str, bool] = {}

    # -- the writer's batches ------------------------------------------------------
    def record(self, events: list[Event], sizes: dict[bytes, int]) -> None:
        """Append a batch's events and apply them; SIZES: bytes of each added or attached blob."""
        first = self.journal.record(events)
        for modseq, event in enumerate(events, first):
            self._apply(event, modseq, sizes)

    def _apply(self, e: Event, modseq: int, sizes: dict[bytes, int]) -> None:
        if e.kind == "added":
            self._added(e.oidbin, set(e.kw), set(e.labels), sizes.get(e.oidbin, 0), modseq)
        elif e.kind == "copy":
            blob = bytes.fromhex(e.detail or "")
            self._copied(e.oidbin, blob, sizes.get(blob, 0))
            self._set_state(e.oidbin, set(e.kw), set(e.labels), modseq)
        elif e.op == "rm":
            self._removed(e.oidbin, modseq)
        elif e.oidbin:
            self._set_state(e.oidbin, set(e.kw), set(e.labels), modseq)

    def commit(self) -> None:
        """Write the cached mailbox rows and the usage back (before the journal commits)."""
        for box in self._boxes.values():
            if box.dirty:
                self.db.execute("UPDATE mailboxes SET uidnext = ?, highestmodseq = ? WHERE id = ?",
                                (box.uidnext, box.highestmodseq, box.id))
                box.dirty = False
        if self._usage_dirty:
            self._set("usage_bytes", self.usage.bytes)
            self._set("usage_messages", self.usage.messages)
            self._usage_dirty = False

    def forget_cache(self) -> None:
        """The journal's transaction rolled back: read the rows again."""
        self.__init__(self.journal)  # type: ignore[misc]

    def _set(self, key: str, value: int) -> None:
        self.db.execute("INSERT OR REPLACE INTO settings (key, value) VALUES (?, ?)", (key, value))

    # -- messages -------------------------------------------------------------------
    def state_of(self, oidbin: bytes) -> tuple[list[str], list[str]]:
        """A message's keywords and labels as the feed last recorded them."""
        row = self.db.execute("SELECT kw, labels FROM messages WHERE oidbin = ?", (oidbin,)).fetchone()
        return (row[0].split(), row[1].split()) if row else ([], [])

    @property
    def backfilled(self) -> bool:
        """Whether every message the store held when the feed began was recorded."""
        return self.db.execute("SELECT 1 FROM settings WHERE key = 'backfilled'").fetchone() is not None

    def mark_backfilled(self) -> None:
        self.journal.begin()
        self._set("backfilled", 1)

    def known(self, oidbin: bytes) -> bool:
        return self.db.execute("SELECT 1 FROM messages WHERE oidbin = ?", (oidbin,)).fetchone() is not None

    def _added(self, oidbin: bytes, kw: set[str], labels: set[str], size: int, modseq: int) -> None:
        if self.known(oidbin):  # added again (a replica re-indexing, a backfill): a change
            self._set_state(oidbin, kw, labels, modseq)
            return
        self.db.execute("INSERT INTO messages (oidbin, kw, labels, bytes, copies, modseq) VALUES (?, ?, ?, ?, 1, ?)",
                        (oidbin, " ".join(sorted(kw)), " ".join(sorted(labels)), size, modseq))
        self.db.execute("INSERT OR REPLACE INTO blobs (oidbin, message, bytes) VALUES (?, ?, ?)",
                        (oidbin, oidbin, size))
        self.db.execute("DELETE FROM purged WHERE oidbin = ?", (oidbin,))  # stored again: gc --expunge keeps it
        self._use(size, 1)
        for box in self._wanted(labels, modseq):
            self._join(box, oidbin, "seen" in kw, modseq)

    def _copied(self, oidbin: bytes, blob: bytes, size: int) -> None:
        """A copy attached: counted once, however often it is told (a re-run after a crash tells it again)."""
        if self.db.execute("INSERT OR IGNORE INTO blobs (oidbin, message, bytes) VALUES (?, ?, ?)",
                           (blob, oidbin, size)).rowcount:
            self.db.execute("UPDATE messages SET copies = copies + 1, bytes = bytes + ? WHERE oidbin = ?",
                            (size, oidbin))
            self.db.execute("DELETE FROM purged WHERE oidbin = ?", (blob,))
            self._use(size, 0)

    def _set_state(self, oidbin: bytes, kw: set[str], labels: set[str], modseq: int) -> None:
        done = self.db.execute("UPDATE messages SET kw = ?, labels = ?, modseq = ? WHERE oidbin = ?",
                               (" ".join(sorted(kw)), " ".join(sorted(labels)), modseq, oidbin)).rowcount
        if not done:  # a message the feed has not seen added (lei imported it): it is now
            self._added(oidbin, kw, labels, 0, modseq)
            return
        wanted = {box.id: box for box in self._wanted(labels, modseq)}
        seen = "seen" in kw
        for mid, uid in self.db.execute("SELECT mailbox, uid FROM members WHERE oidbin = ?", (oidbin,)).fetchall():
            box = wanted.pop(mid, None)
            if box is None:
                self._leave(mid, uid, modseq)
            else:
                self.db.execute("UPDATE members SET seen = ?, modseq = ? WHERE mailbox = ? AND uid = ?",
                                (seen, modseq, mid, uid))
                box.touch(modseq)
        for box in wanted.values():
            self._join(box, oidbin, seen, modseq)

    def _removed(self, oidbin: bytes, modseq: int) -> None:
        row = self.db.execute("SELECT bytes FROM messages WHERE oidbin = ?", (oidbin,)).fetchone()
        for mid, uid in self.db.execute("SELECT mailbox, uid FROM members WHERE oidbin = ?", (oidbin,)).fetchall():
            self._leave(mid, uid, modseq)
        if row is not None:
            self.db.execute("DELETE FROM messages WHERE oidbin = ?", (oidbin,))
            self.db.execute("DELETE FROM blobs WHERE message = ?", (oidbin,))
            self._use(-row[0], -1)

    def _use(self, size: int, messages: int) -> None:
        u = self.usage
        self.usage = u._replace(bytes=u.bytes + size, messages=u.messages + messages)
        self._usage_dirty = True

    # -- membership -------------------------------------------------------------------
    def _wanted(self, labels: set[str], modseq: int) -> list[_Box]:
        """The mailboxes a message with these labels is in: \\All, and one per label."""
        return [self._box(None, modseq)] + [self._box(label, modseq) for label in sorted(labels)
                                            if self._mailbox_label(label)]

    def _mailbox_label(self, label: str) -> bool:
        """Whether LABEL holds a mailbox (a label that only looks encoded does not); remembered."""
        known = self._label_kinds.get(label)
        if known is None:
            known = self._label_kinds[label] = label in self._boxes or is_mailbox_label(label)
        return known

    def _join(self, box: _Box, oidbin: bytes, seen: bool, modseq: int) -> None:
        self.db.execute("INSERT INTO members (mailbox, uid, oidbin, seen, modseq, joined) VALUES (?, ?, ?, ?, ?, ?)",
                        (box.id, box.uidnext, oidbin, seen, modseq, modseq))
        box.uidnext += 1
        box.touch(modseq)

    def _leave(self, mid: int, uid: int, modseq: int) -> None:
        self.db.execute("DELETE FROM members WHERE mailbox = ? AND uid = ?", (mid, uid))
        self.db.execute("INSERT OR REPLACE INTO vanished (mailbox, uid, modseq) VALUES (?, ?, ?)", (mid, uid, modseq))
        box = self._by_id.get(mid)
        if box is not None:
            box.touch(modseq)

    # -- mailboxes --------------------------------------------------------------------
    def _box(self, label: str | None, modseq: int) -> _Box:
        """The mailbox of LABEL (None: \\All), made on first use (a label in use is a mailbox)."""
        box = self._boxes.get(label)
        if box is None:
            box = self._new_box(ALL if label is None else name_of(label), label, modseq)
        return box

    def _new_box(self, name: str, label: str | None, modseq: int) -> _Box:
        special = "\\All" if label is None else default_special_use(name)
        uidvalidity = max([int(time.time())] + [v + 1 for (v,) in self.db.execute(
            "SELECT uidvalidity FROM mailboxes")])  # never the same twice: a client's cache must not match
        cur = self.db.execute("INSERT INTO mailboxes (name, label, uidvalidity, uidnext, highestmodseq, subscribed, "
                              "special_use, recent_uid, created) VALUES (?, ?, ?, 1, ?, 1, ?, 1, ?)",
                              (name, label, uidvalidity, modseq, special, int(time.time())))
        box = self._boxes[label] = self._by_id[cur.lastrowid or 0] = _Box(cur.lastrowid or 0, name, label, 1, modseq)
        return box

    def _event(self, action: str, **what) -> int:
        return self.journal.record([Event(b"", "set", kind="mailbox", detail=json.dumps({"action": action, **what}))])

    def create(self, name: str) -> int:
        """Make an empty mailbox (its label's messages join it as they get the label)."""
        label = label_of(name)
        if label in self._boxes:
            raise InputError(f"mailbox {name!r} exists already")
        modseq = self._event("create", name=name)
        self._new_box(name_of(label), label, modseq)
        return modseq

    def rename(self, old: str, new: str) -> tuple[str, str]:
        """Move mailbox OLD to NEW, members and UIDs kept; (old label, new label): the caller
        moves the label on every member."""
        box, label = self._named(old), label_of(new)
        if label in self._boxes:
            raise InputError(f"mailbox {new!r} exists already")
        if box.label in (None, "inbox"):
            raise InputError(f"mailbox {old!r} cannot be renamed")
        modseq = self._event("rename", name=box.name, new=name_of(label))
        self.db.execute("UPDATE mailboxes SET name = ?, label = ?, highestmodseq = ? WHERE id = ?",
                        (name_of(label), label, modseq, box.id))
        old_label = box.label
        del self._boxes[old_label]
        box.name, box.label = name_of(label), label
        box.touch(modseq)
        self._boxes[label] = box
        return old_label or "", label

    def delete(self, name: str) -> str:
        """Drop mailbox NAME and its memberships; its label (returned) is for the caller to take
        off every message, which stays in the archive."""
        box = self._named(name)
        if box.label in (None, "inbox"):
            raise InputError(f"mailbox {name!r} cannot be deleted")
        self._event("delete", name=box.name)
        self.db.execute("DELETE FROM members WHERE mailbox = ?", (box.id,))
        self.db.execute("DELETE FROM vanished WHERE mailbox = ?", (box.id,))
        self.db.execute("DELETE FROM mailboxes WHERE id = ?", (box.id,))
        del self._boxes[box.label]
        del self._by_id[box.id]
        return box.label

    def subscribe(self, name: str, on: bool) -> str | None:
        """Subscribe to mailbox NAME or not; its label (None: \\All)."""
        box = self._named(name)
        modseq = self._event("subscribe" if on else "unsubscribe", name=box.name)
        self.db.execute("UPDATE mailboxes SET subscribed = ?, highestmodseq = ? WHERE id = ?", (on, modseq, box.id))
        box.touch(modseq)
        return box.label

    def names_under(self, name: str) -> list[str]:
        """The mailboxes below NAME in the hierarchy, shallowest first."""
        prefix = name + DELIMITER
        return sorted((b.name for b in self._boxes.values() if b.name.startswith(prefix)), key=lambda n: (n.count(
            DELIMITER), n))

    def exists(self, name: str) -> bool:
        try:
            return name == ALL or label_of(name) in self._boxes
        except InputError:
            return False

    def claim_recent(self, name: str) -> range:
        """A session takes the mailbox's recent messages (IMAP's SELECT, RFC 3501 \\Recent): the
        UIDs that joined since the last claim, which are recent to that session alone. Not a
        change of the mailbox's state, so no modseq."""
        box = self._named(name)
        self.journal.begin()
        (first,) = self.db.execute("SELECT recent_uid FROM mailboxes WHERE id = ?", (box.id,)).fetchone()
        self.db.execute("UPDATE mailboxes SET recent_uid = ? WHERE id = ?", (box.uidnext, box.id))
        return range(first, box.uidnext)

    def _named(self, name: str) -> _Box:
        label = None if name == ALL else label_of(name)
        box = self._boxes.get(label)
        if box is None:
            if label == "inbox" and name.upper() == INBOX:
                return self._new_box(INBOX, "inbox", self._event("create", name=INBOX))
            raise InputError(f"no mailbox {name!r} (see `lei-store mailboxes`)")
        return box

    def mark_purged(self, oidbins: list[bytes]) -> None:
        """Remember blobs `purge` removed, for `gc --expunge` to drop from git."""
        self.journal.begin()
        modseq = self.db.execute("SELECT COALESCE(MAX(seq), 0) FROM volatile").fetchone()[0]
        self.db.executemany("INSERT OR IGNORE INTO purged (oidbin, modseq) VALUES (?, ?)",
                            [(oid, modseq) for oid in oidbins])

    # -- quota ------------------------------------------------------------------------
    def set_quota(self, max_bytes: int | None, max_messages: int | None) -> None:
        if max_bytes is not None:
            self._set("quota_bytes", max_bytes)
            self.usage = self.usage._replace(max_bytes=max_bytes)
        if max_messages is not None:
            self._set("quota_messages", max_messages)
            self.usage = self.usage._replace(max_messages=max_messages)


def adopt(writer, nums: list[int]) -> int:
    """Record as added messages the feed has never seen (a store from before the feed, messages
    lei imported): their keywords and labels as the index holds them, sizes from git. WRITER:
    an open journaling Writer; the events go out with its next batch."""
    from lei_store.disk import shards
    from lei_store.disk.gitlog import blob_sizes

    feed: FeedIndex = writer.feed
    blobs = {num: writer.over.blobs_of(num) for num in nums}
    blobs = {num: oids for num, oids in blobs.items() if oids and not feed.known(oids[0])}
    if not blobs:
        return 0
    sizes = blob_sizes(writer.lay.all_git, [oid for oids in blobs.values() for oid in oids])
    db = shards.open_all(writer.lay)
    try:
        n = writer.shards.count
        states = shards.volatile_for(db, [shards.docid_of(num, n) for num in blobs])
        events = []
        for num, oids in blobs.items():
            kw, labels = states.get(shards.docid_of(num, n), ([], []))
            events.append(Event(oids[0], "set", kw, labels, "added"))
            events += [Event(oids[0], "set", kw, labels, "copy", oid.hex()) for oid in oids[1:]]
    finally:
        db.close()
    feed.record(events, sizes)
    return len(blobs)
