"""Watched Maildirs: add-watch/ls-watch/rm-watch in lei's config, and `watch-daemon` importing
deliveries and syncing a reader's flag renames as they happen, across restarts."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import Lei, run_cli

BOUND = 1.0  # seconds from a change in a watched Maildir to the store showing it


def maildir(path: Path) -> Path:
    for sub in ("cur", "new", "tmp"):
        (path / sub).mkdir(parents=True, exist_ok=True)
    return path


def deliver(md: Path, n: int) -> str:
    """As an MDA does: write in tmp/, rename into new/."""
    name = f"{n}.{os.getpid()}.test"
    (md / "tmp" / name).write_text(f"From: MDA <mda@example.com>\nTo: me@example.com\nSubject: watched {n}\n"
                                   f"Message-ID: <watched-{n}@example.com>\nDate: Wed, 02 Dec 2026 10:00:00 +0000\n\n"
                                   f"body {n}\n")
    os.rename(md / "tmp" / name, md / "new" / name)
    return name


def read_flagged(md: Path, name: str, flags: str) -> None:
    """As mutt does when a message is read (and flagged): new/NAME -> cur/NAME:2,FLAGS."""
    os.rename(md / "new" / name, md / "cur" / f"{name}:2,{flags}")


class Daemon:
    def __init__(self, store: Path, env=None):
        self.proc = subprocess.Popen([sys.executable, "-m", "lei_store", "watch-daemon", "--store", str(store)],
                                     stderr=subprocess.PIPE, env=env)

    def stop(self) -> tuple[int, str]:
        self.proc.send_signal(signal.SIGTERM)
        t0 = time.monotonic()
        code = self.proc.wait(timeout=30)
        assert time.monotonic() - t0 < 5, "SIGTERM did not stop the daemon promptly"
        return code, self.proc.stderr.read().decode() if self.proc.stderr else ""


def state(store: Path) -> dict[str, list[str]]:
    """Subject -> keywords of every watched message in the store; raises on a duplicate."""
    out = run_cli("q", "--store", str(store), "-f", "jsonl", "--dedupe=none", "s:watched").stdout.decode()
    found: dict[str, list[str]] = {}
    for d in map(json.loads, out.splitlines()):
        assert d["s"] not in found, f"imported twice: {d['s']}"
        found[d["s"]] = d.get("kw") or []
    return found


def settled(store: Path, want: dict[str, list[str]], within: float) -> float:
    """How long the store took to show WANT (fails after WITHIN seconds)."""
    t0 = time.monotonic()
    while True:
        got = state(store)
        if got == want:
            return time.monotonic() - t0
        if time.monotonic() - t0 > within:
            missing = {k: v for k, v in want.items() if got.get(k) != v}
            raise AssertionError(f"not synced after {within}s: {len(missing)} differ, e.g. {list(missing.items())[:3]}")
        time.sleep(0.05)


def synced(store: Path, md: Path) -> set[str]:
    """The file names mail_sync records for the Maildir (the import of each, and of each flag
    rename, commits there with its keywords)."""
    db = sqlite3.connect(f"file:{store}/mail_sync.sqlite3?mode=ro", uri=True)
    try:
        return {bytes(n).decode() for (n,) in db.execute(
            "SELECT b.name FROM blob2name b JOIN folders f ON f.fid = b.fid WHERE f.loc = ?",
            (f"maildir:{md}".encode(),))}
    except sqlite3.OperationalError:  # not created yet
        return set()
    finally:
        db.close()


def on_disk(md: Path) -> set[str]:
    return {n for sub in ("cur", "new") for n in os.listdir(md / sub)}


def caught_up(store: Path, md: Path, within: float) -> float:
    """Seconds until mail_sync records exactly the Maildir's files (fails after WITHIN)."""
    t0 = time.monotonic()
    while synced(store, md) != on_disk(md):
        if time.monotonic() - t0 > within:
            raise AssertionError(f"not synced {within}s after the last change")
        time.sleep(0.01)
    return time.monotonic() - t0


def synced_names(store: Path, md: Path) -> int:
    return len(synced(store, md))


@pytest.fixture
def watched(tmp_path):
    store = tmp_path / "store"
    run_cli("init", str(store))
    md = maildir(tmp_path / "inbox")
    run_cli("add-watch", str(md))
    return store, md


def test_add_ls_rm_watch_in_leis_config(tmp_path, lei: Lei):
    env = {**lei.env, "LEI_STORE_DAEMON": "0"}
    a, b = maildir(tmp_path / "a"), maildir(tmp_path / "b")
    run_cli("add-watch", str(a), f"maildir:{b}", env=env)
    assert run_cli("ls-watch", env=env).stdout.decode().split() == [f"maildir:{a}", f"maildir:{b}"]
    assert sorted(lei("ls-watch").stdout.decode().split()) == [f"maildir:{a}", f"maildir:{b}"]
    c = maildir(tmp_path / "c")
    lei("add-watch", str(c))
    run_cli("rm-watch", str(a), env=env)
    assert run_cli("ls-watch", env=env).stdout.decode().split() == [f"maildir:{b}", f"maildir:{c}"]
    for bad in (str(tmp_path / "nothing"), "mboxrd:/tmp/x.mbox"):
        r = run_cli("add-watch", bad, env=env, check=False)
        assert r.returncode == 1 and len(r.stderr.splitlines()) == 1
    r = run_cli("rm-watch", str(a), env=env, check=False)
    assert r.returncode == 1 and b"not watched" in r.stderr


def test_deliveries_and_flag_renames_arrive_once_within_the_bound(watched):
    """200 messages delivered one by one while the reader reads and flags earlier ones."""
    store, md = watched
    daemon = Daemon(store)
    try:
        want: dict[str, list[str]] = {}
        names = {}
        for n in range(200):
            names[n] = deliver(md, n)
            want[f"watched {n}"] = []
            if n % 3 == 2:  # the reader opens an earlier one; every other one it also flags
                k = n - 2
                flags = "FS" if k % 2 else "S"
                read_flagged(md, names[k], flags)
                want[f"watched {k}"] = ["flagged", "seen"] if flags == "FS" else ["seen"]
            time.sleep(0.01)
        lag = caught_up(store, md, within=BOUND)  # from the last change of the stream
        assert state(store) == want  # every message once, every flag as the reader left it
        # one more of each, alone
        deliver(md, 200)
        want["watched 200"] = []
        lags = [lag, caught_up(store, md, within=BOUND)]
        read_flagged(md, names[1], "RS")
        want["watched 1"] = ["answered", "seen"]
        lags.append(caught_up(store, md, within=BOUND))
        assert state(store) == want and synced_names(store, md) == 201
        print(f"watch lag after the stream, a delivery, a flag rename: {', '.join(f'{x:.3f}' for x in lags)} s")
    finally:
        code, log = daemon.stop()
    assert code == 0, log


def test_a_restart_catches_up_without_losing_or_duplicating(watched):
    store, md = watched
    daemon = Daemon(store)
    names = [deliver(md, n) for n in range(5)]
    settled(store, {f"watched {n}": [] for n in range(5)}, within=30)
    code, _log = daemon.stop()
    assert code == 0
    # while it is down: new mail, a read message, a deleted one
    more = [deliver(md, n) for n in range(5, 10)]
    read_flagged(md, names[0], "S")
    os.unlink(md / "new" / names[1])
    daemon = Daemon(store)
    try:
        want = {f"watched {n}": [] for n in range(10)}
        want["watched 0"] = ["seen"]
        settled(store, want, within=30)  # the deleted one stays stored (mail is never dropped)
        assert synced_names(store, md) == 9
        read_flagged(md, more[0], "S")
        want["watched 5"] = ["seen"]
        settled(store, want, within=BOUND + 2)
    finally:
        assert daemon.stop()[0] == 0


def test_one_daemon_per_store_and_a_vanished_maildir_is_one_line(watched, tmp_path):
    store, md = watched
    other = maildir(tmp_path / "other")
    run_cli("add-watch", str(other))  # taken by the running daemon without a restart
    daemon = Daemon(store)
    try:
        time.sleep(1)
        r = subprocess.run([sys.executable, "-m", "lei_store", "watch-daemon", "--store", str(store)],
                           capture_output=True, timeout=60)
        assert r.returncode == 75 and len(r.stderr.splitlines()) == 1 and b"watch daemon" in r.stderr
        for sub in ("cur", "new", "tmp"):
            os.rmdir(other / sub)
        os.rmdir(other)
        deliver(md, 1)
        settled(store, {"watched 1": []}, within=BOUND + 2)
        third = maildir(tmp_path / "third")
        run_cli("add-watch", str(third))
        time.sleep(0.3)
        deliver(third, 2)
        settled(store, {"watched 1": [], "watched 2": []}, within=BOUND + 2)
        maildir(other)  # it comes back: watched again within a second, not at the next full pass
        time.sleep(1.5)
        deliver(other, 3)
        settled(store, {"watched 1": [], "watched 2": [], "watched 3": []}, within=BOUND + 2)
        config = Path(os.environ["HOME"]) / ".config" / "lei" / "config"
        kept = config.read_text()
        config.write_text('[watch "maildir:/x"\n')  # an editor's half-saved file: the last list stays
        time.sleep(0.5)
        deliver(md, 4)
        settled(store, {f"watched {n}": [] for n in (1, 2, 3, 4)}, within=BOUND + 2)
        config.write_text(kept)
    finally:
        code, log = daemon.stop()
    assert code == 0 and "Traceback" not in log and "watched again once it is back" in log
    assert "still watching what it listed before" in log
