"""`lei-store metrics` (rusmes StorageMetrics): the store's metrics in the Prometheus text format,
made with prometheus-client.

Every lei-store command leaves what it did in the store's metrics.sqlite3 when it ends (its
duration in a histogram per command, its outcome, and the counters of lei_store.tally, which
writes them without loading prometheus-client); the
gauges (messages, bytes, epochs, shards, per-mailbox counters, highest modseq) are read from
the store when the metrics are asked for. metrics.sqlite3 is a best-effort tally: a command
that cannot write it (a read-only store, a busy file) leaves its numbers out.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Iterator

from prometheus_client import CollectorRegistry, generate_latest, write_to_textfile
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

from lei_store.errors import InputError
from lei_store.paths import Layout
from lei_store.sqlite import connect_ro
from lei_store.tally import BUCKETS, COUNTERS, metrics_path


class _StoreCollector:
    """The metric families, read from the store each time they are collected."""

    def __init__(self, root: Path):
        self.lay = Layout(Path(root))

    def collect(self) -> Iterator:
        yield from self._operations()
        yield from self._gauges()

    def _operations(self) -> Iterator:
        path = metrics_path(self.lay.root)
        if not path.exists():
            return
        try:
            db = connect_ro(path)  # quoted: a '#' or '?' in the store's path is no URI syntax
        except sqlite3.Error:
            return
        try:
            rows = db.execute("SELECT name, label, value FROM counters").fetchall()
            buckets = db.execute("SELECT command, bucket, count FROM durations ORDER BY command, bucket").fetchall()
        except sqlite3.Error:
            return
        finally:
            db.close()
        by_name: dict[str, list[tuple[str, float]]] = {}
        for name, label, value in rows:
            by_name.setdefault(name, []).append((label, value))
        commands = CounterMetricFamily("lei_store_commands", "lei-store commands run, by command and outcome",
                                       labels=["command", "outcome"])
        errors = CounterMetricFamily("lei_store_errors", "lei-store commands that failed, by kind", labels=["kind"])
        for label, value in by_name.get("commands", []):
            command, _, outcome = label.partition(":")
            commands.add_metric([command, outcome], value)
            if outcome != "ok":
                errors.add_metric([outcome], value)
        yield commands
        yield errors
        for name, doc in COUNTERS.items():
            yield CounterMetricFamily(f"lei_store_{name}", doc, value=sum(v for _, v in by_name.get(name, [])))
        yield self._histogram(buckets, dict(by_name.get("command_seconds", [])))

    @staticmethod
    def _histogram(buckets, sums: dict[str, float]) -> HistogramMetricFamily:
        h = HistogramMetricFamily("lei_store_command_seconds", "how long lei-store commands took", labels=["command"])
        per: dict[str, dict[float, int]] = {}
        for command, bucket, count in buckets:
            per.setdefault(command, {})[bucket] = count
        for command, counts in per.items():
            total, cumulative = 0, []
            for bound in BUCKETS + (float("inf"),):
                total += counts.get(bound, 0)
                cumulative.append(("+Inf" if bound == float("inf") else str(bound), total))
            h.add_metric([command], cumulative, sum_value=sums.get(command, 0.0))
        return h

    def _gauges(self) -> Iterator:
        from lei_store.disk import feed, mailboxes
        from lei_store.sqlite import connect_ro

        yield GaugeMetricFamily("lei_store_epochs", "git epochs (local/N.git)", value=len(self.lay.epoch_numbers()))
        yield GaugeMetricFamily("lei_store_shards", "Xapian shards", value=self.lay.shard_count())
        if not self.lay.journal.exists():
            return
        db = connect_ro(self.lay.journal)
        try:
            db.execute("BEGIN")
            settings = dict(db.execute("SELECT key, value FROM settings")) if mailboxes.has_tables(db) else {}
            yield GaugeMetricFamily("lei_store_messages", "messages stored", value=settings.get("usage_messages", 0))
            yield GaugeMetricFamily("lei_store_bytes", "bytes of the messages stored",
                                    value=settings.get("usage_bytes", 0))
            yield GaugeMetricFamily("lei_store_highest_modseq", "the change feed's highest modseq",
                                    value=feed.highest_modseq(db))
            per = {k: GaugeMetricFamily(f"lei_store_mailbox_{k}", f"{k} messages per mailbox", labels=["mailbox"])
                   for k in ("exists", "unseen", "recent")}
            modseq = GaugeMetricFamily("lei_store_mailbox_highest_modseq", "highest modseq per mailbox",
                                       labels=["mailbox"])
            for box in mailboxes.listing(db):
                for k, g in per.items():
                    g.add_metric([box.name], getattr(box, k))
                modseq.add_metric([box.name], box.highestmodseq)
            yield from per.values()
            yield modseq
        finally:
            db.close()


def registry(root: Path) -> CollectorRegistry:
    reg = CollectorRegistry(auto_describe=False)
    reg.register(_StoreCollector(root))
    return reg


def exposition(root: Path) -> bytes:
    """The metrics in the Prometheus text exposition format."""
    return generate_latest(registry(root))


def keep_textfile(root: Path, directory: str, *, follow: bool = False) -> None:
    """Write DIRECTORY/lei_store.prom atomically (a temporary file renamed over it, as
    node_exporter's textfile collector wants); with FOLLOW, again after every change."""
    if not directory or not Path(directory).is_dir():
        raise InputError(f"{directory!r}: not a directory (--textfile names node_exporter's textfile directory)")
    target = str(Path(directory) / "lei_store.prom")
    write_to_textfile(target, registry(root))
    if not follow:
        return
    from lei_store.disk.feed import ResyncNeeded
    from lei_store.disk.follow import Follower

    follower = Follower(root, _highest(root))
    try:
        while True:
            try:
                changed = bool(follower.pending())
            except ResyncNeeded:  # the feed was rebuilt: the numbers are read afresh anyway
                follower.since, changed = _highest(root), True
            if changed:
                write_to_textfile(target, registry(root))
            follower.sleep(30.0)
    finally:
        follower.close()


def _highest(root: Path) -> int:
    from lei_store.disk import feed
    from lei_store.sqlite import connect_ro

    lay = Layout(Path(root))
    if not lay.journal.exists():
        return 0
    db = connect_ro(lay.journal)
    try:
        return feed.highest_modseq(db)
    finally:
        db.close()
