"""`lei-store tag` and `lei-store rm`: which messages they act on, and what they do to them
(lei's LeiTag and rm).

Messages are chosen by content (files, Maildirs, mboxes, stdin: matched by Message-ID and
content hash, else by blob OID) and/or by a search query. tag's keyword changes are shown on
every synced Maildir copy at once, as lei does: each file is renamed (never rewritten) in the
same mail_sync transaction that records its new name.
"""

from __future__ import annotations

from pathlib import Path

import msgspec

from lei_store import tally
from lei_store.disk import mailboxes
from lei_store.errors import LeiStoreError
from lei_store.mail.keywords import VolatileChange
from lei_store.sources import Source, read_source
from lei_store.write.searchidx import VolatileState
from lei_store.write.store import Store
from lei_store.write.writer import Writer


class TagStats(msgspec.Struct):
    """What tag or rm did."""

    matched: int = 0  # stored messages selected
    changed: int = 0  # messages whose keywords/labels changed (tag) or that were removed (rm)
    unimported: int = 0  # input messages not found in the store
    exported: int = 0  # synced Maildir files renamed to show the new keywords


class Selection(msgspec.Struct, frozen=True):
    """The messages a tag or rm is about."""

    sources: list[Source] = []  # messages given by content
    query: str | None = None  # a search (lei's query language, already joined)


def _select(writer: Writer, selection: Selection) -> tuple[list[int], int]:
    """Docids chosen by input messages and/or the query; and how many inputs are not stored."""
    nums: dict[int, None] = {}
    unimported = 0
    for source in selection.sources:
        if source.fmt == "imap":
            raise LeiStoreError(f"{source.url}: select IMAP messages with a query, not a URL")
        for item in read_source(source):
            found = writer.locate(item.raw)
            unimported += not found
            nums.update(dict.fromkeys(found))
    if selection.query is not None:
        from lei_store.read.search import Reader

        reader = Reader(writer.store.root)
        try:
            hits = reader.search(selection.query, dedupe="none", limit=2**31 - 1)
            nums.update(dict.fromkeys(h.row.num for h in hits))
        finally:
            reader.close()
    return list(nums), unimported


def export_to_maildirs(writer: Writer, changes: list[VolatileState]) -> None:
    """Show changed keywords on every synced Maildir copy of those messages (as lei does); the
    writer calls this between its Xapian and mail_sync commits. A message whose keywords did not
    change is left alone, even where a copy's flags differ from them: labels are not flags."""
    from lei_store.ops.exportkw import export_maildir_copies

    kw_of_blob = {}
    for c in changes:
        if not c.kw_changed:
            continue
        for oid in writer.over.blobs_of(c.num):
            kw_of_blob[oid] = c.kw
    copies = writer.mailsync.maildir_copies(list(kw_of_blob))
    writer.stats.exported += export_maildir_copies(writer.mailsync, copies, kw_of_blob.get)


def _run(root: Path, selection: Selection, act, lock_timeout: float | None) -> TagStats:
    if not selection.sources and selection.query is None:
        raise LeiStoreError("no messages given: name files/Maildirs/mboxes, use --stdin, or -q QUERY")
    stats = TagStats()
    tally.add("tag_operations")
    with Store.open(root).writer(lock_timeout=lock_timeout, jobs=1, on_commit=export_to_maildirs) as writer:
        nums, stats.unimported = _select(writer, selection)
        stats.matched = len(nums)
        stats.changed = act(writer, nums)
        writer.flush()
        stats.exported = writer.stats.exported
    return stats


def tag(root: Path, selection: Selection, change: VolatileChange, *, lock_timeout: float | None = None) -> TagStats:
    """Change the keywords and labels of the selected messages."""
    if not change:
        raise LeiStoreError("nothing to change: give +kw:KEYWORD, -kw:KEYWORD, +L:LABEL or -L:LABEL")
    for label in change.add_labels | (change.set_labels or frozenset()):
        mailboxes.check_new_label(label)

    def act(writer: Writer, nums: list[int]) -> int:
        before = writer.stats.keywords_updated
        writer.change_volatile(nums, change)
        writer.flush()
        return writer.stats.keywords_updated - before

    return _run(root, selection, act, lock_timeout)


def rm(root: Path, selection: Selection, *, lock_timeout: float | None = None) -> TagStats:
    """Unindex the selected messages (git keeps their blobs)."""
    return _run(root, selection, lambda writer, nums: writer.remove(nums), lock_timeout)
