"""fsck --repair: rebuild what is derived or can be recovered, never the epochs.

Git is the source of truth, so damage in git itself is only reported. A damaged
(or missing) journal.sqlite3 is rebuilt from the keywords and labels the index still holds (ops/rejournal.py), a damaged
mail_sync.sqlite3 is started afresh (it only remembers where messages came from: the next
import of each folder reads it again and recognises what is stored), and anything else
wrong with the index (over.sqlite3, Xapian) is rebuilt from git by reindex. Damaged files
are kept beside the store under a `.damaged-TIME` name, never deleted.
"""

from __future__ import annotations

from pathlib import Path

from lei_store import sqlite
from lei_store.disk import journaldb
from lei_store.disk.journal import Journal
from lei_store.errors import DamagedStoreError
from lei_store.locks import locked
from lei_store.ops import rejournal
from lei_store.ops.fsck import FsckReport, check
from lei_store.paths import Layout, existing_store
from lei_store.write import epochs

GIT_KINDS = {"bad epoch", "bad ref", "git fsck", "git error", "bad tree", "bad commit", "missing blob"}


def _restart_mail_sync(layout: Layout, lock_timeout: float | None) -> str:
    from lei_store.disk.mailsync import MailSync

    with locked(layout.mail_sync_lock, lock_timeout, what="mail_sync.sqlite3"):
        kept = rejournal.set_aside(layout.mail_sync)
    MailSync(layout.mail_sync, layout.mail_sync_lock).close()  # takes that lock itself
    return (f"mail_sync.sqlite3 was damaged: started afresh (the next import of each folder reads it again; "
            f"stored messages are recognised); the damaged one is kept as {kept.name}")


def _repair_databases(layout: Layout, lock_timeout: float | None) -> list[str]:
    notes = []
    with locked(layout.writer_lock, lock_timeout):
        if rejournal.journal_lost(layout):
            notes.append(rejournal.rebuild_journal(layout, "was missing"))
        elif layout.journal.exists() and sqlite.damage(layout.journal):
            notes.append(rejournal.rebuild_journal(layout, "was damaged"))
        if layout.mail_sync.exists() and sqlite.damage(layout.mail_sync):
            notes.append(_restart_mail_sync(layout, lock_timeout))
    return notes


def repair(root: Path, *, jobs: int | None = None, progress=None,
           lock_timeout: float | None = None) -> tuple[FsckReport, FsckReport, list[str]]:
    """Check; on errors rebuild what can be rebuilt. Returns (report before, report after, what was done)."""
    from lei_store.ops.reindex import reindex

    layout = existing_store(Path(root))
    before = check(root)
    if before.ok:
        return before, before, []
    broken = sorted({p.kind for p in before.problems if p.severity == "error" and p.kind in GIT_KINDS})
    if broken:
        raise DamagedStoreError(f"git itself is damaged ({', '.join(broken)}): restore the epochs from a "
                                "backup or a replica; nothing was changed")
    notes = _repair_databases(layout, lock_timeout)
    if any(n.startswith("journal.sqlite3") for n in notes):
        rejournal.record_feed(layout, lock_timeout)  # the mailboxes and counters now, not at the next write
    epochs.update_alternates(layout)
    after = check(root) if notes else before
    if not after.ok and not _only_feed(after):
        reindex(root, jobs=jobs, progress=progress, lock_timeout=lock_timeout)
        notes.append("rebuilt the index from git")
        after = check(root)
    if not after.ok and _only_feed(after):
        notes.append(_rebuild_feed(layout, lock_timeout))
        after = check(root)
    return before, after, notes


def _only_feed(report: FsckReport) -> bool:
    """Whether every error is about the change feed's tables (derived from the index)."""
    return all(p.where and p.where.startswith("journal.") for p in report.problems if p.severity == "error")


def _rebuild_feed(layout: Layout, lock_timeout: float | None) -> str:
    """Record the store's messages in the feed again, from the index, under new UIDVALIDITYs: the
    old UIDs cannot be kept, and a UID must never be handed out twice."""
    with locked(layout.writer_lock, lock_timeout):
        journal = Journal(layout.journal)
        try:
            journaldb.reset_feed(journal.db)
        finally:
            journal.close()
    rejournal.record_feed(layout, lock_timeout)
    return ("the change feed's tables were out of step: rebuilt from the index (every mailbox has a new "
            "UIDVALIDITY; followers are told to resync)")
