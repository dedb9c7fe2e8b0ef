"""fsck --repair: rebuild what is derived or can be recovered, never the epochs.

Git is the source of truth, so damage in git itself is only reported. A damaged
journal.sqlite3 is rebuilt from the keywords and labels the index still holds, a damaged
mail_sync.sqlite3 is started afresh (it only remembers where messages came from: the next
import of each folder reads it again and recognises what is stored), and anything else
wrong with the index (over.sqlite3, Xapian) is rebuilt from git by reindex. Damaged files
are kept beside the store under a `.damaged-TIME` name, never deleted.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from lei_store import sqlite
from lei_store.disk import journaldb, shards
from lei_store.disk.journal import Journal
from lei_store.errors import DamagedStoreError
from lei_store.locks import locked
from lei_store.ops.fsck import FsckReport, check
from lei_store.paths import Layout, existing_store
from lei_store.write import epochs

GIT_KINDS = {"bad epoch", "bad ref", "git fsck", "git error", "bad tree", "bad commit", "missing blob"}


def _set_aside(path: Path) -> Path:
    """Move a damaged SQLite file (and its -wal/-shm) out of the way; where it went."""
    kept = path.with_name(f"{path.name}.damaged-{int(time.time())}")
    for suffix in ("", "-wal", "-shm"):
        src = Path(f"{path}{suffix}")
        if src.exists():
            os.replace(src, f"{kept}{suffix}")
    return kept


def _volatile_states(layout: Layout) -> list[tuple[bytes, list[str], list[str]]] | None:
    """(first blob, keywords, labels) of every message the index gives any; None when the index
    itself cannot be read."""
    from lei_store.read.search import Reader

    try:
        reader = Reader(layout.root)
    except Exception:  # a damaged index: nothing to rebuild the journal from
        return None
    try:
        blobs = reader.over.first_blobs()
        docids = {reader.docid_of(num): num for num in blobs}
        states = shards.volatile_for(reader.db, list(docids))
        return [(blobs[docids[d]], kw, labels) for d, (kw, labels) in sorted(states.items())]
    except Exception:
        return None
    finally:
        reader.close()


def _rebuild_journal(layout: Layout) -> str:
    kept = _set_aside(layout.journal)
    states = _volatile_states(layout)
    tmp = layout.root / "journal.sqlite3.rebuild"
    tmp.unlink(missing_ok=True)
    journal = Journal(tmp)
    journal.record((oid, "set", kw, labels) for oid, kw, labels in states or ())
    journal.close()
    os.replace(tmp, layout.journal)
    if states is None:
        return (f"journal.sqlite3 was damaged and the index could not be read either: started an empty "
                f"journal (the damaged one is kept as {kept.name})")
    return (f"journal.sqlite3 was damaged: rebuilt from the keywords and labels of {len(states)} messages "
            f"in the index (the damaged one is kept as {kept.name})")


def _restart_mail_sync(layout: Layout, lock_timeout: float | None) -> str:
    from lei_store.disk.mailsync import MailSync

    with locked(layout.mail_sync_lock, lock_timeout, what="mail_sync.sqlite3"):
        kept = _set_aside(layout.mail_sync)
    MailSync(layout.mail_sync, layout.mail_sync_lock).close()  # takes that lock itself
    return (f"mail_sync.sqlite3 was damaged: started afresh (the next import of each folder reads it again; "
            f"stored messages are recognised); the damaged one is kept as {kept.name}")


def _repair_databases(layout: Layout, lock_timeout: float | None) -> list[str]:
    notes = []
    with locked(layout.writer_lock, lock_timeout):
        if layout.journal.exists() and sqlite.damage(layout.journal):
            notes.append(_rebuild_journal(layout))
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
    from lei_store.write.store import Store

    with locked(layout.writer_lock, lock_timeout):
        journal = Journal(layout.journal)
        try:
            journaldb.reset_feed(journal.db)
        finally:
            journal.close()
    with Store.open(layout.root).writer(lock_timeout=lock_timeout, jobs=1):
        pass  # a journaling writer records every message the feed lacks as it opens
    return "the change feed's tables were out of step: rebuilt from the index (every mailbox has a new UIDVALIDITY)"
