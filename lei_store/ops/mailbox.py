"""`lei-store mailboxes` and `lei-store mailbox create|rename|delete|subscribe|unsubscribe`.

Mailboxes are labels: a mailbox is listed with its counters from the feed's tables; renaming one
moves its label on every member (UIDs and UIDVALIDITY kept: the members stay the mailbox's),
deleting one takes its label off every message, which stays in the archive. Every change is
journaled, so a reindex keeps it and real `lei q L:NEW` sees it.
"""

from __future__ import annotations

from pathlib import Path

import msgspec

from lei_store.disk import mailboxes, shards
from lei_store.errors import InputError
from lei_store.mail.keywords import VolatileChange
from lei_store.paths import Layout
from lei_store.write.store import Store
from lei_store.write.writer import Writer

ACTIONS = ("create", "rename", "delete", "subscribe", "unsubscribe")


class MailboxResult(msgspec.Struct):
    """What `mailbox ACTION` did."""

    action: str
    name: str
    new: str | None = None
    label: str | None = None  # the mailbox's label afterwards (its old one, after delete)
    messages: int = 0  # messages whose label moved (rename) or was taken off (delete)
    modseq: int = 0  # the store's highest modseq afterwards


def _nums_labelled(lay: Layout, label: str) -> list[int]:
    """Message numbers of every document with the label, as committed (the writer holds the lock)."""
    db = shards.open_all(lay)
    try:
        n = lay.shard_count()
        return [shards.num_of(p.docid, n) for p in db.postlist(b"L" + label.encode())]
    finally:
        db.close()


def _relabel(writer: Writer, old: str, new: str | None) -> int:
    nums = _nums_labelled(writer.lay, old)
    change = VolatileChange(remove_labels=frozenset({old}), add_labels=frozenset({new}) if new else frozenset())
    writer.change_volatile(nums, change)
    return len(nums)


def _renames(feed, name: str, new: str) -> list[tuple[str, str]]:
    """NAME -> NEW and each mailbox under NAME to the same place under NEW (IMAP RENAME moves the
    inferiors too), checked before any moves: none of the new names may exist."""
    old, new = mailboxes.canonical(name), mailboxes.canonical(new)
    if new.startswith(old + mailboxes.DELIMITER):
        raise InputError(f"cannot rename {name!r} into itself ({new!r})")
    moves = [(old, new)] if feed.exists(old) else []  # a level with only mailboxes under it moves them
    moves += [(child, new + child[len(old):]) for child in feed.names_under(old)]
    if not moves:
        raise InputError(f"no mailbox {name!r} (see `lei-store mailboxes`)")
    for _, after in moves:
        if feed.exists(after):
            raise InputError(f"mailbox {after!r} exists already")
    return moves


def manage(root: Path, action: str, name: str, new: str | None = None, *,
           lock_timeout: float | None = None) -> MailboxResult:
    """Create, rename, delete, subscribe to or unsubscribe from a mailbox."""
    if action not in ACTIONS:
        raise InputError(f"unknown mailbox action {action!r} (known: {', '.join(ACTIONS)})")
    if (action == "rename") != (new is not None):
        raise InputError("rename takes the mailbox's name and its new name" if action == "rename"
                         else f"{action} takes one mailbox name")
    mailboxes.check_name(name)
    result = MailboxResult(action, name, new)
    with Store.open(root).writer(lock_timeout=lock_timeout, jobs=1) as w:
        feed = w.feed
        assert feed is not None  # a writer that journals keeps the feed
        if action == "create":
            feed.create(name)
            result.label = mailboxes.label_of(name)
        elif action == "rename":
            assert new is not None
            for before, after in _renames(feed, name, mailboxes.check_name(new)):
                old_label, label = feed.rename(before, after)
                result.label = result.label or label
                result.messages += _relabel(w, old_label, label)
        elif action == "delete":
            result.label = feed.delete(name)
            result.messages = _relabel(w, result.label, None)
        else:
            result.label = feed.subscribe(name, action == "subscribe")
        w.flush()
        result.modseq = w.journal.db.execute("SELECT COALESCE(MAX(seq), 0) FROM volatile").fetchone()[0]
    return result


def claim_recent(root: Path, name: str, *, lock_timeout: float | None = None) -> range:
    """Take mailbox NAME's recent messages for one session (what an IMAP server does at SELECT):
    the UIDs that joined since the last claim. `mailboxes` counts them as recent until then."""
    mailboxes.check_name(name)
    with Store.open(root).writer(lock_timeout=lock_timeout, jobs=1) as w:
        assert w.feed is not None
        uids = w.feed.claim_recent(name)
        w.flush()
    return uids
