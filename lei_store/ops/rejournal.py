"""Rebuilding journal.sqlite3 from the index when it is lost or damaged (fsck --repair, reindex).

The journal is the only durable record of keywords and labels (lei keeps them in Xapian alone),
so a store lei-store has written without one would lose them all at the next reindex. While
the index can still be read it holds them: the journal is written anew from it. Its change
feed then starts again at a modseq beyond any the lost one handed out (a `reset` row at its
floor), so every follower is told to resync instead of silently reading a new numbering.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from lei_store.disk import journaldb, shards
from lei_store.disk.gitlog import MARK
from lei_store.disk.journal import Journal
from lei_store.locks import locked
from lei_store.paths import Layout
from lei_store.sqlite import connect_ro


def set_aside(path: Path) -> Path:
    """Move a damaged SQLite file (and its -wal/-shm) out of the way; where it went."""
    kept = path.with_name(f"{path.name}.damaged-{int(time.time())}")
    for suffix in ("", "-wal", "-shm"):
        src = Path(f"{path}{suffix}")
        if src.exists():
            os.replace(src, f"{kept}{suffix}")
    return kept


def journal_lost(layout: Layout) -> bool:
    """Whether lei-store has indexed this store (its marks are in over.sqlite3) but its journal is
    gone: missing, or a file without the journal's table (emptied). A store only lei wrote has
    no journal, and needs none."""
    if layout.journal.is_file() and layout.journal.stat().st_size > 0:
        return False
    if not layout.over.is_file():
        return False
    try:
        db = connect_ro(layout.over)
        try:
            return db.execute("SELECT 1 FROM eidx_meta WHERE key LIKE ? LIMIT 1", (MARK + "%",)).fetchone() is not None
        finally:
            db.close()
    except Exception:  # an unreadable index: fsck reports that on its own
        return False


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


def rebuild_journal(layout: Layout, why: str) -> str:
    """Write journal.sqlite3 anew from the index (the caller holds ei.lock); one line saying so.
    WHY: what was wrong with it ("was missing", "was damaged")."""
    kept = set_aside(layout.journal) if layout.journal.exists() else None
    states = _volatile_states(layout)
    tmp = layout.root / "journal.sqlite3.rebuild"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{tmp}{suffix}").unlink(missing_ok=True)
    journal = Journal(tmp)
    journal.record((oid, "set", kw, labels) for oid, kw, labels in states or ())
    journal.commit()
    journaldb.reset_feed(journal.db, renumber=True)
    journal.close()
    os.replace(tmp, layout.journal)
    aside = f" (the old one is kept as {kept.name})" if kept else ""
    if states is None:
        return f"journal.sqlite3 {why} and the index could not be read either: started an empty journal{aside}"
    return (f"journal.sqlite3 {why}: rebuilt from the keywords and labels of {len(states)} messages in the "
            f"index{aside}; followers of the change feed are told to resync")


def record_feed(layout: Layout, lock_timeout: float | None) -> None:
    """Record every message in the (new) feed now: mailboxes and counters right away."""
    from lei_store.write.store import Store

    with Store.open(layout.root).writer(lock_timeout=lock_timeout, jobs=1):
        pass  # a journaling writer records every message the feed lacks as it opens


def ensure_journal(layout: Layout, lock_timeout: float | None) -> str | None:
    """Before a rebuild of the index (reindex): a lost journal is first written from the index,
    which still holds the keywords and labels the rebuild would otherwise drop."""
    if not journal_lost(layout):
        return None
    with locked(layout.writer_lock, lock_timeout):
        if not journal_lost(layout):
            return None
        return rebuild_journal(layout, "was missing")
