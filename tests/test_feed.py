"""The change feed, quota and metrics: `changes --since`, followers with `watch` while writers run,
resync, quota refusal, the Prometheus exposition."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import run_cli
from storecheck import over_rows


def changes(store: Path, since: int = 0, *extra: str) -> tuple[list[dict], int]:
    out = run_cli("changes", "--store", str(store), "--since", str(since), "--json", *extra).stdout.splitlines()
    rows = [json.loads(x) for x in out]
    return rows[:-1], rows[-1]["highestmodseq"]


@pytest.fixture
def store(sample_corpus, tmp_path) -> Path:
    s = tmp_path / "store"
    run_cli("import", "--store", str(s), "-q", str(shutil.copytree(sample_corpus / "maildir", tmp_path / "md")))
    return s


def state(rows: list[dict]) -> dict[str, tuple]:
    """What a follower knows after applying the changes in order: blob -> (keywords, labels)."""
    known: dict[str, tuple] = {}
    for c in rows:
        if c["kind"] in ("added", "changed"):
            known[c["blob"]] = (tuple(c["kw"]), tuple(c["L"]))
        elif c["kind"] == "removed":
            known.pop(c["blob"], None)
    return known


def truth(store: Path) -> dict[str, tuple]:
    """The store's state as q prints it, keyed by each message's first blob (the feed's key)."""
    out = run_cli("q", "--store", str(store), "-f", "jsonl", "--dedupe=none", "z:1..").stdout.splitlines()
    from storecheck import sql

    first: dict[int, str] = {}
    for docid, oid in sql(store, "SELECT docid, oidbin FROM xref3 ORDER BY rowid"):  # attach order
        first.setdefault(docid, bytes(oid).hex())
    by_blob = {json.loads(r)["blob"]: json.loads(r) for r in out}
    rows = {f[5]: num for num, *_, f in over_rows(store)}
    return {first[rows[b]]: (tuple(r.get("kw", [])), tuple(r.get("L", []))) for b, r in by_blob.items()}


def test_changes_tell_everything_in_order(store):
    rows, highest = changes(store)
    assert [c["modseq"] for c in rows] == sorted({c["modseq"] for c in rows}) and rows[-1]["modseq"] == highest
    assert {c["kind"] for c in rows} <= {"added", "changed", "removed", "mailbox"}
    assert all({"modseq", "kind", "blob", "kw", "L"} <= set(c) for c in rows)
    assert state(rows) == truth(store)
    run_cli("tag", "--store", str(store), "--quiet", "-q", "s:scrub", "+kw:flagged", "+L:hot")
    run_cli("rm", "--store", str(store), "--quiet", "-q", "s:balance")
    newer, top = changes(store, highest)
    assert newer and all(c["modseq"] > highest for c in newer) and top > highest
    assert {c["kind"] for c in newer} == {"changed", "removed"}
    assert state(rows + newer) == truth(store)
    assert changes(store, top) == ([], top)


def test_mailbox_changes_give_uids_and_tombstones(store):
    run_cli("tag", "--store", str(store), "--quiet", "-q", "s:scrub", "+L:hot")
    rows, highest = changes(store, 0, "--mailbox", "hot")
    assert rows and all(c["kind"] == "added" and c["uid"] for c in rows)
    run_cli("tag", "--store", str(store), "--quiet", "-q", "s:scrub", "-L:hot")
    later, _ = changes(store, highest, "--mailbox", "hot")
    assert later and all(c["kind"] == "removed" and c["blob"] is None for c in later)
    assert {c["uid"] for c in later} == {c["uid"] for c in rows}


def test_an_old_modseq_needs_a_resync(store):
    """After the feed is rebuilt (fsck --repair), what followers held no longer holds."""
    import sqlite3

    db = sqlite3.connect(store / "journal.sqlite3")
    db.execute("DELETE FROM members WHERE rowid IN (SELECT rowid FROM members LIMIT 3)")
    db.commit()
    db.close()
    assert run_cli("fsck", "--store", str(store), check=False).returncode == 2
    r = run_cli("fsck", "--store", str(store), "--repair")
    assert b"rebuilt from the index" in r.stderr and run_cli("fsck", "--store", str(store)).returncode == 0
    r = run_cli("changes", "--store", str(store), "--since", "0", check=False)
    assert r.returncode == 3 and b"resync" in r.stderr.lower() and len(r.stderr.strip().splitlines()) == 1


def test_quota_stores_what_fits_and_says_so(store, sample_corpus, tmp_path):
    q = json.loads(run_cli("quota", "--store", str(store), "--json").stdout)
    run_cli("quota", "--store", str(store), "--set-messages", str(q["messages"] + 5))
    big = tmp_path / "more.mbox"
    mbox = (sample_corpus / "sample.mboxrd").read_bytes()
    big.write_bytes(mbox.replace(b"@example.org>", b".new@example.org>"))
    r = run_cli("import", "--store", str(store), f"mboxrd:{big}", check=False)
    err = r.stderr.decode()
    assert r.returncode == 73 and "quota reached" in err and "Traceback" not in err, err
    after = json.loads(run_cli("quota", "--store", str(store), "--json").stdout)
    assert after["messages"] == q["messages"] + 5 == len(over_rows(store))
    assert run_cli("fsck", "--store", str(store)).returncode == 0
    run_cli("quota", "--store", str(store), "--set-messages", "0", "--set-bytes", str(after["bytes"] + 1000))
    r = run_cli("import", "--store", str(store), f"mboxrd:{big}", check=False)
    assert r.returncode == 73
    final = json.loads(run_cli("quota", "--store", str(store), "--json").stdout)
    assert after["bytes"] < final["bytes"] <= after["bytes"] + 1000
    assert run_cli("fsck", "--store", str(store)).returncode == 0


def test_metrics_in_the_prometheus_format(store, tmp_path):
    from prometheus_client.parser import text_string_to_metric_families

    run_cli("q", "--store", str(store), "s:scrub")
    run_cli("q", "--store", str(store), "s:(", check=False)
    text = run_cli("metrics", "--store", str(store)).stdout.decode()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    value = lambda name, **labels: next(s.value for s in families[name].samples  # noqa: E731
                                        if all(s.labels.get(k) == v for k, v in labels.items()))
    from storecheck import commits

    # every blob written to git counts: a message's copies too
    assert value("lei_store_queries") >= 1 and value("lei_store_messages_imported") == commits(store)
    assert value("lei_store_commands", command="q", outcome="ok") == 1
    assert value("lei_store_errors", kind="input") >= 1
    assert value("lei_store_messages") == len(over_rows(store))
    assert value("lei_store_mailbox_exists", mailbox="All") == len(over_rows(store))
    assert "lei_store_command_seconds" in families and value("lei_store_highest_modseq") > 0
    out = tmp_path / "textfile"
    out.mkdir()
    run_cli("metrics", "--store", str(store), "--textfile", str(out))
    assert [p.name for p in out.iterdir()] == ["lei_store.prom"]
    assert "lei_store_messages " in (out / "lei_store.prom").read_text()



def test_metrics_count_commands_where_the_store_path_has_a_hash(sample_corpus, tmp_path):
    """A '#' in the path was read as a URI fragment: every per-command series went missing."""
    store = tmp_path / "mail #1" / "store"
    run_cli("import", "--store", str(store), "-q", str(shutil.copytree(sample_corpus / "maildir", tmp_path / "md")))
    run_cli("q", "--store", str(store), "s:scrub")
    text = run_cli("metrics", "--store", str(store)).stdout.decode()
    assert 'lei_store_commands_total{command="q",outcome="ok"} 1.0' in text


# -- followers while writers run -------------------------------------------------------------

class Watch:
    """A `lei-store watch --json` process; its changes are collected as they come."""

    def __init__(self, store: Path, since: int = 0):
        cmd = [sys.executable, "-m", "lei_store", "watch", "--store", str(store), "--since", str(since), "--json"]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.rows: list[tuple[float, dict]] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.rows.append((time.monotonic(), json.loads(line)))

    def wait_for(self, modseq: int, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while not any(c["modseq"] >= modseq for _, c in self.rows):
            assert time.monotonic() < deadline, f"no change {modseq} within {timeout}s"
            assert self.proc.poll() is None, self.proc.stderr.read().decode()
            time.sleep(0.02)

    def stop(self) -> list[dict]:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self._reader.join(5)
        return [c for _, c in self.rows]


def test_followers_see_every_change_once_while_writers_run(store, sample_corpus, tmp_path):
    _, start = changes(store)
    followers = [Watch(store, start) for _ in range(3)]
    mboxes = []
    for i in range(2):
        box = tmp_path / f"new{i}.mbox"
        box.write_bytes((sample_corpus / "sample.mboxrd").read_bytes().replace(b"@example.org>", b".%d@x>" % i))
        mboxes.append(box)
    env = dict(os.environ, LEI_STORE_LOCK_TIMEOUT="120")
    writers = [subprocess.Popen([sys.executable, "-m", "lei_store", "import", "--store", str(store), "-q",
                                 "--batch-size", "30", f"mboxrd:{box}"], env=env) for box in mboxes]
    victim = followers[0]
    time.sleep(0.5)
    seen_by_victim = victim.stop()  # killed mid-way; restarted from the last modseq it saw
    followers[0] = Watch(store, seen_by_victim[-1]["modseq"] if seen_by_victim else start)
    for i in range(6):  # a tag loop
        run_cli("tag", "--store", str(store), "--quiet", "-q", "s:scrub", f"{'+-'[i % 2]}kw:flagged", env=env)
    assert [w.wait() for w in writers] == [0, 0]
    expected, top = changes(store, start)
    got = []
    for w in followers:
        w.wait_for(top)
        got.append(w.stop())
    got[0] = seen_by_victim + got[0]
    for rows in got:
        assert rows == expected  # every change once, in modseq order, nothing missed across the restart
    assert state(changes(store)[0]) == truth(store)


def test_a_change_reaches_a_follower_within_a_second(store):
    _, start = changes(store)
    w = Watch(store, start)
    try:
        time.sleep(1)  # it is waiting on inotify now
        lags = []
        for i in range(3):
            run_cli("tag", "--store", str(store), "--quiet", "-q", "s:scrub", f"{'+-'[i % 2]}L:now")
            committed = time.monotonic()
            _, top = changes(store)
            w.wait_for(top, timeout=10)
            arrived = next(t for t, c in w.rows if c["modseq"] == top)
            lags.append(arrived - committed)
        assert max(lags) < 1.0, lags
    finally:
        w.stop()


def test_an_idle_watcher_sleeps(store):
    """A watcher's own reads touch the journal's -shm and -wal: woken by them, it spun at 100% CPU.
    Idle for 2 s it now uses next to no CPU."""
    rows, highest = changes(store)
    watch = subprocess.Popen([sys.executable, "-m", "lei_store", "watch", "--store", str(store), "--since",
                              str(highest)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        time.sleep(1.0)  # started up

        def cpu() -> float:
            fields = Path(f"/proc/{watch.pid}/stat").read_text().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

        before = cpu()
        time.sleep(2.0)
        assert cpu() - before < 0.2
    finally:
        watch.kill()
        watch.wait()
