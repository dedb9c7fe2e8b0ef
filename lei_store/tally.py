"""What this process did, for `lei-store metrics`: counters bumped where the work happens
(messages and bytes imported, commits, queries, tag operations), written to the store's
metrics.sqlite3 when the command ends (ops/metrics.py). Costs a dict update."""

from __future__ import annotations

from collections import Counter

counts: Counter[str] = Counter()


def add(name: str, n: int = 1) -> None:
    counts[name] += n
