"""What this process did, for `lei-store metrics`: counters bumped where the work happens
(messages and bytes imported, commits, queries, tag operations), written to the store's
metrics.sqlite3 when the command ends (record); ops/metrics.py reads them for `lei-store metrics`.
Counting costs a dict update; recording loads nothing but sqlite3, as every command does it."""

from __future__ import annotations

import sqlite3
from collections import Counter
from pathlib import Path

counts: Counter[str] = Counter()


def add(name: str, n: int = 1) -> None:
    counts[name] += n


BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0)
_DDL = """
CREATE TABLE IF NOT EXISTS counters (name TEXT NOT NULL, label TEXT NOT NULL DEFAULT '', value REAL NOT NULL,
                                     PRIMARY KEY (name, label));
CREATE TABLE IF NOT EXISTS durations (command TEXT NOT NULL, bucket REAL NOT NULL, count INTEGER NOT NULL,
                                      PRIMARY KEY (command, bucket));
"""
COUNTERS = {"messages_imported": "message blobs stored (copies of a message too)",
            "bytes_imported": "bytes of the message blobs stored",
            "commits": "batches committed", "queries": "searches run", "tag_operations": "tag and rm commands run"}


def metrics_path(root: Path) -> Path:
    return Path(root) / "metrics.sqlite3"


def record(root: Path, command: str, seconds: float, outcome: str, counts: dict[str, int]) -> None:
    """Add one command's numbers to the store's tally; never fails the command."""
    try:
        db = sqlite3.connect(str(metrics_path(root)), timeout=0.05, isolation_level=None)
    except sqlite3.Error:
        return
    try:
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("PRAGMA synchronous = OFF")  # a crash may lose a count; the command must not wait
        db.executescript(_DDL)
        db.execute("BEGIN IMMEDIATE")
        rows = [("commands", f"{command}:{outcome}", 1.0), ("command_seconds", command, seconds)]
        rows += [(name, "", float(n)) for name, n in counts.items() if n]
        db.executemany("INSERT INTO counters (name, label, value) VALUES (?, ?, ?) ON CONFLICT (name, label) "
                       "DO UPDATE SET value = value + excluded.value", rows)
        bucket = next((b for b in BUCKETS if seconds <= b), float("inf"))
        db.execute("INSERT INTO durations (command, bucket, count) VALUES (?, ?, 1) ON CONFLICT (command, bucket) "
                   "DO UPDATE SET count = count + 1", (command, bucket))
        db.execute("COMMIT")
    except sqlite3.Error:
        pass
    finally:
        db.close()
