#!/usr/bin/env python3
"""IMAP benchmark: `lei-store serve-imap` beside Dovecot serving the same messages as a Maildir.

    .venv/bin/python tools/bench_imap.py [--corpus ../shared/corpora/btrfs-10k.tar.xz | --maildir DIR]
        [--store STORE] [--runs 3]

--maildir is a Maildir of the messages (or --corpus, unpacked); --store a lei-store store of
them (imported afresh from a copy when not given). Dovecot gets its own copy as INBOX; lei-store
serves `All`. For each server, same run, one after the other:
- SELECT of the mailbox: the first after the server starts (cold: lei-store loads the members,
  Dovecot builds its index) and again (warm); FETCH 1:1000 (ENVELOPE); SEARCH FROM <the busiest
  sender's name>; each median of --runs on one connection;
- a full `mbsync` pull of the mailbox into an empty Maildir (FSync off: see mbsync_pull): the
  first (cold) and the median of --runs more (fresh Maildir and sync state each time), and the
  ratio lei-store / Dovecot; the server's CPU seconds per pull;
- the server's memory at the end (peak PSS of its process tree while pulling).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from bench_import import DEFAULT_CORPUS, PeakRss, bench_env, unpack  # noqa: E402
from dovecot import Dovecot, free_ports, start_dovecot  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CLI = str(ROOT / ".venv" / "bin" / "lei-store")
PASSWORD = "bench-imap-pass"


class Served:
    """One IMAP server under test: where it listens, how to log in, the mailbox, its processes."""

    def __init__(self, name: str, port: int, user: str, password_file: Path, mailbox: str, pid: int):
        self.name, self.port, self.user, self.mailbox, self.pid = name, port, user, mailbox, pid
        self.password_file = password_file

    def client(self):
        import imapclient

        c = imapclient.IMAPClient("127.0.0.1", port=self.port, ssl=False, timeout=600)
        c.login(self.user, self.password_file.read_text().strip())
        return c


def serve_lei_store(store: Path, work: Path, env: dict) -> tuple[Served, subprocess.Popen]:
    pw = work / "lei-store-pw"
    pw.write_text(PASSWORD + "\n")
    pw.chmod(0o600)
    port = free_ports(1)[0]
    log = work / "serve-imap.log"
    proc = subprocess.Popen([CLI, "serve-imap", "--store", str(store), "--listen", f"127.0.0.1:{port}",
                             "--user", "bench", "--password-file", str(pw)], cwd=work, env=env,
                            stdout=subprocess.DEVNULL, stderr=log.open("wb"))
    deadline = time.monotonic() + 60
    while b"serving" not in log.read_bytes():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"serve-imap did not start: {log.read_text()}")
        time.sleep(0.05)
    return Served("lei-store", port, "bench", pw, "All", proc.pid), proc


def serve_dovecot(maildir: Path, work: Path) -> tuple[Served, Dovecot]:
    dove = start_dovecot(work / "dovecot")
    inbox = dove.mail_dir / dove.user
    for sub in ("cur", "new", "tmp"):
        shutil.copytree(maildir / sub, inbox / sub) if (maildir / sub).is_dir() else (inbox / sub).mkdir(parents=True)
    if os.getuid() == 0:  # Dovecot reads the mail as nobody (tests/dovecot.py)
        owner = dove.mail_dir.stat()
        for p in [inbox, *inbox.rglob("*")]:
            os.chown(p, owner.st_uid, owner.st_gid)
    pw = work / "dovecot-pw"
    pw.write_text(dove.password + "\n")
    pw.chmod(0o600)
    return Served("dovecot", dove.port, dove.user, pw, "INBOX", dove.proc.pid), dove


def median_of(runs: int, fn: Callable[[], object]) -> float:
    times = []
    for _ in range(runs):
        t0 = time.monotonic()
        fn()
        times.append(time.monotonic() - t0)
    return statistics.median(times)


def commands(s: Served, sender: str, runs: int) -> dict[str, float]:
    """SELECT cold and warm, FETCH 1000 ENVELOPEs, SEARCH FROM, on one connection."""
    c = s.client()
    try:
        t0 = time.monotonic()
        exists = c.select_folder(s.mailbox, readonly=True)[b"EXISTS"]
        cold = time.monotonic() - t0
        warm = median_of(runs, lambda: c.select_folder(s.mailbox, readonly=True))
        upto = min(1000, exists)
        c.use_uid = False  # by sequence number: the first 1,000
        fetch = median_of(runs, lambda: c.fetch(list(range(1, upto + 1)), ["ENVELOPE"]))
        c.use_uid = True
        hits: list = []
        search = median_of(runs, lambda: hits.__setitem__(slice(None), c.search(["FROM", sender])))
        return {"exists": exists, "select_cold": cold, "select": warm, "fetch_1000_envelope": fetch,
                "search_from": search, "search_hits": len(hits)}
    finally:
        c.logout()


def mbsync_pull(s: Served, work: Path) -> float:
    near = work / f"near-{s.name}"
    shutil.rmtree(near, ignore_errors=True)
    near.mkdir()
    rc = work / f"mbsyncrc-{s.name}"
    # FSync no: mbsync fsyncs each message it stores by default, and that measured the disk
    # (the same pull took 14 to 34 s from either server), not the servers
    rc.write_text(f"""FSync no

IMAPAccount far
Host 127.0.0.1
Port {s.port}
User {s.user}
PassCmd "cat {s.password_file}"
SSLType None
AuthMechs LOGIN

IMAPStore far
Account far

MaildirStore near
Path {near}/
Inbox {near}/INBOX

Channel pull
Far :far:{s.mailbox}
Near :near:pulled
Create Near
Sync Pull
SyncState *
""")
    t0 = time.monotonic()
    r = subprocess.run(["mbsync", "-q", "-c", str(rc), "pull"], capture_output=True, text=True, timeout=3600)
    took = time.monotonic() - t0
    if r.returncode != 0:
        raise SystemExit(f"mbsync from {s.name} failed: {r.stderr[-500:]}")
    got = sum(1 for sub in ("cur", "new") for _ in (near / "pulled" / sub).iterdir())
    print(f"  {s.name}: mbsync pulled {got} messages in {took:.2f} s", file=sys.stderr)
    return took


def cpu_seconds(pid: int) -> float:
    """CPU time of PID and its descendants, the finished ones its children reaped included."""
    import re as _re

    ticks = os.sysconf("SC_CLK_TCK")
    stats = {}
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                text = (proc / "stat").read_text()
            except OSError:
                continue
            fields = _re.sub(r"^.*\) ", "", text).split()
            stats[int(proc.name)] = (int(fields[1]), sum(int(x) for x in fields[11:15]))
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        total += stats.get(p, (0, 0))[1]
        todo += [c for c, (ppid, _) in stats.items() if ppid == p]
    return total / ticks


def pulls(s: Served, work: Path, runs: int) -> dict[str, float]:
    cpu0 = cpu_seconds(s.pid)
    with PeakRss([s.pid]) as rss:
        cold = mbsync_pull(s, work)
        warm = statistics.median(mbsync_pull(s, work) for _ in range(runs))
    cpu = (cpu_seconds(s.pid) - cpu0) / (runs + 1)
    return {"mbsync_cold": cold, "mbsync": warm, "server_cpu_per_pull": cpu, "server_peak_pss_mb": rss.peak / 2**20}


def busiest_sender(maildir: Path) -> str:
    """The display name most messages come from (a word that SEARCH FROM finds often)."""
    import email.parser
    import email.utils

    seen: Counter[str] = Counter()
    parser = email.parser.BytesHeaderParser()
    for path in sorted((maildir / "cur").iterdir())[:3000]:
        with path.open("rb") as f:
            name, _ = email.utils.parseaddr(str(parser.parse(f).get("From", "")))
        if name.split():
            seen[name.split()[-1]] += 1
    return seen.most_common(1)[0][0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    ap.add_argument("--maildir", type=Path, help="the messages as a Maildir (instead of --corpus)")
    ap.add_argument("--store", type=Path, help="a lei-store store of the same messages (default: import them)")
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    env = bench_env()
    with tempfile.TemporaryDirectory(prefix="bench-imap-") as d:
        work = Path(d)
        maildir = args.maildir or unpack(args.corpus, work)
        store = args.store
        if store is None:
            store = work / "store"
            t0 = time.monotonic()
            subprocess.run([CLI, "import", "--store", str(store), "-q", str(shutil.copytree(maildir, work / "imp"))],
                           env=env, check=True, cwd=work)
            print(f"imported in {time.monotonic() - t0:.1f} s", file=sys.stderr)
        sender = busiest_sender(maildir)
        results = {}
        served, proc = serve_lei_store(store, work, env)
        try:
            results["lei-store"] = {**commands(served, sender, args.runs), **pulls(served, work, args.runs)}
        finally:
            proc.terminate()
            proc.wait(30)
        served, dove = serve_dovecot(maildir, work)
        try:
            results["dovecot"] = {**commands(served, sender, args.runs), **pulls(served, work, args.runs)}
        finally:
            dove.stop()
    report(results, sender)


def report(results: dict[str, dict[str, float]], sender: str) -> None:
    keys = ["exists", "select_cold", "select", "fetch_1000_envelope", "search_from", "search_hits",
            "mbsync_cold", "mbsync", "server_cpu_per_pull", "server_peak_pss_mb"]
    print(f"| measure (SEARCH FROM {sender}) | lei-store | Dovecot | lei-store / Dovecot |")
    print("|---|---:|---:|---:|")
    a, b = results["lei-store"], results["dovecot"]
    for k in keys:
        ratio = f"{a[k] / b[k]:.2f}" if b[k] else "-"
        fmt = "{:.0f}" if k in ("exists", "search_hits", "server_peak_pss_mb") else "{:.3f} s"
        print(f"| {k} | {fmt.format(a[k])} | {fmt.format(b[k])} | {ratio} |")


if __name__ == "__main__":
    main()
