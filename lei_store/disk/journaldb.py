"""journal.sqlite3's tables, created and migrated with sqlite-utils, and checked by fsck.

journal.sqlite3 is ours (lei ignores it). Its `volatile` table is the journal of every
change, in commit order: its `seq` is the store's modseq, so it is also the change feed.
Beside it, kept in the same transactions by write/feedidx.py:

    messages   every stored message (keyed by its first blob): keywords, labels, size, modseq
    blobs      every blob of every message (its copies too), with its size: what the quota counts
    mailboxes  every mailbox (a label, INBOX, the \\All view): UIDVALIDITY, UIDNEXT, modseq
    members    which message is in which mailbox under which UID, seen or not, its modseq
    vanished   tombstones: a UID that left a mailbox, and when (for followers, IMAP QRESYNC)
    settings   quota limits, the usage kept up to date, the feed's floor
    purged     blobs `purge` removed, for `gc --expunge` to drop from git

PRAGMA user_version says which version of these tables a file has; the writer brings an older
file up to date (importing sqlite-utils only then: it costs ~70 ms to import).
"""

from __future__ import annotations

import sqlite3

VERSION = 2  # 1: the volatile table alone (before the change feed)

# column -> type; "pk", "not_null", "defaults", "indexes" as sqlite-utils takes them
TABLES: dict[str, dict] = {
    "messages": {"columns": {"oidbin": bytes, "kw": str, "labels": str, "bytes": int, "copies": int,
                             "modseq": int},
                 "pk": "oidbin", "not_null": {"kw", "labels", "bytes", "copies", "modseq"},
                 "defaults": {"kw": "", "labels": "", "bytes": 0, "copies": 1, "modseq": 0},
                 "indexes": [["modseq"]]},
    "blobs": {"columns": {"oidbin": bytes, "message": bytes, "bytes": int}, "pk": "oidbin",
              "not_null": {"message", "bytes"}, "indexes": [["message"]]},
    "mailboxes": {"columns": {"id": int, "name": str, "label": str, "uidvalidity": int, "uidnext": int,
                              "highestmodseq": int, "subscribed": int, "special_use": str, "recent_uid": int,
                              "created": int},
                  "pk": "id", "not_null": {"name", "uidvalidity", "uidnext", "highestmodseq", "subscribed",
                                           "recent_uid", "created"},
                  "defaults": {"uidnext": 1, "highestmodseq": 0, "subscribed": 1, "recent_uid": 1},
                  "indexes": [["name"], ["label"]], "unique": {("name",), ("label",)}},
    "members": {"columns": {"mailbox": int, "uid": int, "oidbin": bytes, "seen": int, "modseq": int,
                            "joined": int},
                "pk": ("mailbox", "uid"), "not_null": {"oidbin", "seen", "modseq", "joined"},
                "defaults": {"seen": 0, "modseq": 0, "joined": 0},
                "indexes": [["mailbox", "oidbin"], ["mailbox", "modseq"], ["mailbox", "seen"], ["oidbin"]],
                "unique": {("mailbox", "oidbin")}},
    "vanished": {"columns": {"mailbox": int, "uid": int, "modseq": int},
                 "pk": ("mailbox", "uid"), "not_null": {"modseq"}, "indexes": [["mailbox", "modseq"]]},
    "settings": {"columns": {"key": str, "value": int}, "pk": "key", "not_null": {"value"}},
    "purged": {"columns": {"oidbin": bytes, "modseq": int}, "pk": "oidbin", "not_null": {"modseq"}},
}
# columns the change feed added to lei_store's first journal table
VOLATILE_COLUMNS = {"kind": str, "detail": str}


def version(db: sqlite3.Connection) -> int:
    return db.execute("PRAGMA user_version").fetchone()[0]


def ensure(db: sqlite3.Connection) -> bool:
    """Bring the tables up to VERSION (in a transaction of its own); True when anything changed."""
    if version(db) >= VERSION:
        return False
    import sqlite_utils

    sdb = sqlite_utils.Database(db)
    db.execute("BEGIN IMMEDIATE")
    try:
        volatile = sdb.table("volatile")
        for column, kind in VOLATILE_COLUMNS.items():
            if column not in volatile.columns_dict:
                volatile.add_column(column, kind)
        for name, spec in TABLES.items():
            _create(sdb, name, spec)
        _first_mailboxes(db)
        # rows from before the feed tell changes but no additions: a follower starts after them
        db.execute("INSERT OR IGNORE INTO settings (key, value) SELECT 'feed_floor', COALESCE(MAX(seq), 0) "
                   "FROM volatile")
        db.execute(f"PRAGMA user_version = {VERSION}")
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    return True


def _first_mailboxes(db: sqlite3.Connection) -> None:
    """INBOX and the \\All view exist from the start (IMAP clients expect INBOX)."""
    import time

    now = int(time.time())
    for i, (name, label, special) in enumerate((("All", None, "\\All"), ("INBOX", "inbox", None))):
        if db.execute("SELECT 1 FROM mailboxes WHERE name = ?", (name,)).fetchone() is None:
            db.execute("INSERT INTO mailboxes (name, label, uidvalidity, uidnext, highestmodseq, subscribed, "
                       "special_use, recent_uid, created) VALUES (?, ?, ?, 1, 0, 1, ?, 1, ?)",
                       (name, label, now + i, special, now))


def reset_feed(db: sqlite3.Connection, *, renumber: bool = False) -> int:
    """Forget what the feed derived (messages, blobs, members, tombstones, usage, the backfill mark),
    give every mailbox a new UIDVALIDITY and start its UIDs again: the next writer records every
    message anew. The journal's rows (the history, and the keywords a reindex replays) stay.

    A `reset` row takes the next modseq and becomes the feed's floor, so every follower that
    stored an older one is told to resync (and one that reads the state now follows from it).
    RENUMBER (a journal rebuilt after its loss, whose numbering started again) first moves the
    modseqs past any the lost journal can have handed out: milliseconds since 1970, which only grow."""
    import time

    db.execute("BEGIN IMMEDIATE")
    for table in ("messages", "blobs", "members", "vanished"):
        db.execute(f"DELETE FROM {table}")
    db.execute("DELETE FROM settings WHERE key IN ('usage_bytes', 'usage_messages', 'backfilled')")
    if renumber:
        base = max(int(time.time() * 1000), db.execute("SELECT COALESCE(MAX(seq), 0) FROM volatile").fetchone()[0])
        db.execute("DELETE FROM sqlite_sequence WHERE name = 'volatile'")
        db.execute("INSERT INTO sqlite_sequence (name, seq) VALUES ('volatile', ?)", (base,))
    db.execute("INSERT INTO volatile (oidbin, op, kw, labels, at, kind) VALUES (x'', 'set', '', '', ?, 'reset')",
               (int(time.time()),))
    floor = db.execute("SELECT last_insert_rowid()").fetchone()[0]
    db.execute("INSERT OR REPLACE INTO settings (key, value) VALUES ('feed_floor', ?)", (floor,))
    top = db.execute("SELECT COALESCE(MAX(uidvalidity), 0) FROM mailboxes").fetchone()[0]
    start = max(int(time.time()), top + 1)
    for i, (mid,) in enumerate(db.execute("SELECT id FROM mailboxes ORDER BY id").fetchall()):
        db.execute("UPDATE mailboxes SET uidvalidity = ?, uidnext = 1, recent_uid = 1, highestmodseq = ? "
                   "WHERE id = ?", (start + i, floor, mid))
    db.execute("COMMIT")
    return floor


def _create(sdb, name: str, spec: dict) -> None:
    table = sdb[name]
    table.create(spec["columns"], pk=spec["pk"], not_null=spec.get("not_null"), defaults=spec.get("defaults"),
                 if_not_exists=True)
    unique = spec.get("unique", set())
    for columns in spec.get("indexes", []):
        table.create_index(columns, unique=tuple(columns) in unique, if_not_exists=True)


def problems(db: sqlite3.Connection) -> list[str]:
    """How the file's tables differ from what this version writes (fsck), by sqlite-utils'
    introspection: a missing table or column, a column of another type, a missing index."""
    import sqlite_utils

    sdb = sqlite_utils.Database(db)
    found = []
    if version(db) < VERSION:
        found.append(f"tables are version {version(db)}, not {VERSION} (the next writer brings them up to date)")
        return found
    want = {"volatile": {"columns": {"seq": int, "oidbin": bytes, "op": str, "kw": str, "labels": str, "at": int,
                                     **VOLATILE_COLUMNS}, "indexes": []}, **TABLES}
    names = set(sdb.table_names())
    for name, spec in want.items():
        if name not in names:
            found.append(f"table {name} is missing")
            continue
        have = sdb.table(name).columns_dict
        for column, kind in spec["columns"].items():
            if column not in have:
                found.append(f"{name}.{column} is missing")
            elif have[column] is not kind:
                found.append(f"{name}.{column} is {have[column].__name__}, not {kind.__name__}")
        indexed = {tuple(i.columns) for i in sdb.table(name).indexes}
        for columns in spec.get("indexes", []):
            if tuple(columns) not in indexed:
                found.append(f"{name} has no index on ({', '.join(columns)})")
    return found
