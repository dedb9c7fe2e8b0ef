#!/usr/bin/env python3
"""Feed benchmark: mailboxes --json, changes --since, quota and watch latency on a store, beside notmuch.

    .venv/bin/python tools/bench_feed.py [--store STORE | --corpus ../shared/corpora/btrfs-10k.tar.xz]
        [--runs 5] [--maildir MAILDIR_OF_THE_STORE] [--tools lei-store,notmuch]

The store (a copy of --store, or --corpus imported afresh) is given one mailbox per year of mail
(`tag -q d:YEAR +L:yYEAR`), and every message of the busiest sender is flagged, so the feed holds
added and changed events over many mailboxes. Each command then runs --runs times as a fresh
process (mailboxes and changes answered by the resident reader, as users get them), then again
in-process (LEI_STORE_DAEMON=0) for its memory: the peak PSS of that process tree. `watch`
latency is the time from the start of a `tag` of one message to the watcher printing its
change. notmuch, given the same Maildir (--maildir, or the corpus), answers the nearest
equivalents: per-tag counts (`count --batch`) and `search lastmod:N..` (its change tracking).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_import import PeakRss, bench_env, unpack  # noqa: E402
from bench_query import pick_terms  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CLI = str(ROOT / ".venv" / "bin" / "lei-store")


def measured(cmd: list[str], env: dict, runs: int) -> tuple[float, float, int, bytes]:
    """Median and slowest seconds, peak PSS and the last run's output of `runs` fresh runs."""
    times, peak, out = [], 0, b""
    for _ in range(runs):
        t0 = time.monotonic()
        p = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        with PeakRss([p.pid]) as rss:
            out, err = p.communicate()
        times.append(time.monotonic() - t0)
        if p.returncode != 0:
            raise SystemExit(f"{' '.join(cmd[:3])} failed: {err.decode()[-400:]}")
        peak = max(peak, rss.peak)
    return statistics.median(times), max(times), peak, out


def years(store: Path) -> list[int]:
    over = sqlite3.connect(f"file:{store / 'ei15' / 'over.sqlite3'}?mode=ro", uri=True)
    rows = over.execute("SELECT DISTINCT CAST(strftime('%Y', ds, 'unixepoch') AS INTEGER) FROM over "
                        "WHERE num > 0").fetchall()
    return sorted(y for (y,) in rows if y and 1990 < y < 2100)


def label_store(store: Path, env: dict, sender: str) -> tuple[list[int], int]:
    """One mailbox per year, then the sender's mail flagged; returns the years and the highest
    modseq before the flagging."""
    for year in years(store):
        subprocess.run([CLI, "tag", "--store", str(store), "-q", f"d:{year}0101..{year + 1}0101",
                        f"+L:y{year}"], env=env, check=True, capture_output=True)
    before = highest(store, env)
    subprocess.run([CLI, "tag", "--store", str(store), "-q", f"f:{sender}", "+kw:flagged"],
                   env=env, check=True, capture_output=True)
    return years(store), before


def highest(store: Path, env: dict) -> int:
    out = subprocess.run([CLI, "changes", "--store", str(store), "--since", "0", "--json"], env=env,
                         capture_output=True, check=True).stdout.splitlines()
    return json.loads(out[-1])["highestmodseq"]


def watch_latency(store: Path, env: dict, since: int, mid: str, runs: int) -> list[tuple[float, float]]:
    """(seconds from a tag command's start to the watcher's line about it, the tag's own seconds),
    tagging one message each time: the line comes when the tag commits its journal, before the
    command has finished with the derived indexes and exited."""
    cmd = [CLI, "watch", "--store", str(store), "--since", str(since), "--json"]
    watcher = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    seen: dict[str, float] = {}
    arrived = threading.Condition()

    def read() -> None:
        for line in watcher.stdout:
            for label in (f"lat{i}" for i in range(runs)):
                if f'"{label}"'.encode() in line:
                    with arrived:
                        seen.setdefault(label, time.monotonic())
                        arrived.notify_all()

    threading.Thread(target=read, daemon=True).start()
    delays = []
    try:
        for i in range(runs):
            label, start = f"lat{i}", time.monotonic()
            subprocess.run([CLI, "tag", "--store", str(store), "-q", f"mid:{mid}", f"+L:{label}"],
                           env=env, check=True, capture_output=True)
            took = time.monotonic() - start
            with arrived:
                if not arrived.wait_for(lambda: label in seen, timeout=10):  # noqa: B023 (waited on here)
                    raise SystemExit(f"watch did not show {label} within 10 s")
            delays.append((seen[label] - start, took))
    finally:
        watcher.kill()
        watcher.wait()
    return delays


def notmuch_setup(maildir: Path, work: Path, env: dict, years_: list[int], sender: str) -> dict:
    """Index the same Maildir with notmuch and give it the same tags; returns its environment."""
    cfg = work / "notmuch-config"
    cfg.write_text(f"[database]\npath={maildir}\n[new]\ntags=unread;inbox;\n")
    env = dict(env, NOTMUCH_CONFIG=str(cfg))
    subprocess.run(["notmuch", "new", "--quiet"], env=env, check=True, capture_output=True)
    batch = "".join(f"+y{y} -- date:{y}-01-01..{y}-12-31\n" for y in years_)
    subprocess.run(["notmuch", "tag", "--batch"], input=batch.encode(), env=env, check=True)
    return env


def notmuch_revision(env: dict) -> int:
    out = subprocess.run(["notmuch", "count", "--lastmod", "*"], env=env, capture_output=True,
                         text=True, check=True).stdout.split()
    return int(out[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--store", type=Path, help="a store to copy and measure")
    ap.add_argument("--corpus", type=Path, default=ROOT.parent / "shared" / "corpora" / "btrfs-10k.tar.xz")
    ap.add_argument("--maildir", type=Path, help="the Maildir --store was imported from (for notmuch)")
    ap.add_argument("--tools", default="lei-store,notmuch")
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    env = bench_env()
    with tempfile.TemporaryDirectory(prefix="bench-feed-") as tmp:
        tmp = Path(tmp)
        store, maildir = tmp / "store", args.maildir
        if args.store:
            subprocess.run(["cp", "-a", "--reflink=auto", str(args.store), str(store)], check=True)
        else:
            maildir = unpack(args.corpus, tmp)
            # lei-store imports a copy: its tags rename the files it synced (F for flagged), and
            # notmuch must start from the corpus as it was
            shutil.copytree(maildir, tmp / "imported")
            subprocess.run([CLI, "import", "--store", str(store), "-q", str(tmp / "imported")], env=env,
                           check=True)
        print("# labelling", file=sys.stderr)
        terms = pick_terms(store)
        sender = terms["from"]
        years_, flagged_after = label_store(store, env, sender)
        top = highest(store, env)
        rows = measure_lei_store(store, env, args.runs, top, flagged_after, years_)
        if "notmuch" in args.tools and shutil.which("notmuch") and maildir:
            rows = add_notmuch(rows, maildir, tmp, env, args.runs, years_, sender)
        out = subprocess.run([CLI, "mailboxes", "--store", str(store), "--json", "All"], env=env,
                             capture_output=True, check=True).stdout
        messages = json.loads(out)[0]["exists"]
        print(f"store: {messages} messages, {len(years_)} year mailboxes, highest modseq {top}")
        print("| operation | lei-store median s | slowest s | in-process median s | in-process peak PSS MB "
              "| notmuch equivalent | notmuch median s | lei-store faster by |")
        print("|---|---:|---:|---:|---:|---|---:|---:|")
        for name, med, slow, cold, pss, peer, peer_med in rows:
            ratio = f"{peer_med / med:.2f}x" if peer_med else ""
            peer_s = f"{peer_med:.3f}" if peer_med else ""
            print(f"| {name} | {med:.3f} | {slow:.3f} | {cold:.3f} | {pss / 2**20:.0f} | {peer} | {peer_s} "
                  f"| {ratio} |")
        delays = watch_latency(store, env, top, terms["mid"], args.runs)
        seen = [d for d, _ in delays]
        print("watch: tagging one message, from the tag's start to the watcher's line: median "
              f"{statistics.median(seen) * 1000:.0f} ms, slowest {max(seen) * 1000:.0f} ms; the tag command "
              f"itself median {statistics.median(t for _, t in delays) * 1000:.0f} ms ({len(delays)} tags)")


def measure_lei_store(store: Path, env: dict, runs: int, top: int, flagged_after: int, years_: list[int]) -> list:
    s = ["--store", str(store)]
    mailbox = f"y{years_[len(years_) // 2]}"
    cases = [
        ("mailboxes --json", ["mailboxes", *s, "--json"]),
        ("changes --since 0 (the whole feed)", ["changes", *s, "--since", "0", "--json"]),
        (f"changes --since {top - 100} (100 behind)", ["changes", *s, "--since", str(top - 100), "--json"]),
        (f"changes --since {flagged_after} --mailbox {mailbox} (its flagged mail)",
         ["changes", *s, "--since", str(flagged_after), "--mailbox", mailbox, "--json"]),
        ("quota --json", ["quota", *s, "--json"]),
        ("metrics", ["metrics", *s]),
    ]
    rows = []
    for name, argv in cases:
        med, slow, _, out = measured([CLI, *argv], env, runs)
        # memory in-process: a command the resident reader answers runs in its worker, not the client
        cold, _, pss, _ = measured([CLI, *argv], dict(env, LEI_STORE_DAEMON="0"), runs)
        rows.append([name, med, slow, cold, pss, "", 0.0])
        print(f"# {name}: {med:.3f}s, {len(out.splitlines())} lines", file=sys.stderr)
    return rows


def add_notmuch(rows: list, maildir: Path, tmp: Path, env: dict, runs: int, years_: list[int],
                sender: str) -> list:
    """Fill the notmuch columns of the mailboxes and changes rows."""
    (tmp / "nm").mkdir()
    nm_copy = tmp / "nm" / "maildir"
    shutil.copytree(maildir, nm_copy)
    print("# notmuch new", file=sys.stderr)
    nenv = notmuch_setup(nm_copy, tmp / "nm", env, years_, sender)
    before = notmuch_revision(nenv)
    subprocess.run(["notmuch", "tag", "+flagged", "--", f"from:{sender}"], env=nenv, check=True)
    counts = "".join(f"tag:y{y}\ntag:y{y} and tag:unread\n" for y in years_).encode()
    peers = {
        0: ("count --batch: each tag, and its unread", ["notmuch", "count", "--batch"], counts),
        1: ("search --output=messages lastmod:0..", ["notmuch", "search", "--output=messages", "lastmod:0.."], None),
        3: (f"search --output=messages lastmod:{before + 1}.. tag:y{years_[len(years_) // 2]}",
            ["notmuch", "search", "--output=messages", f"lastmod:{before + 1}..", f"tag:y{years_[len(years_) // 2]}"],
            None),
    }
    for i, (label, cmd, stdin) in peers.items():
        med = measured_stdin(cmd, nenv, runs, stdin)
        rows[i][5:] = [label, med]
    return rows


def measured_stdin(cmd: list[str], env: dict, runs: int, stdin: bytes | None) -> float:
    times, out = [], b""
    for _ in range(runs):
        t0 = time.monotonic()
        out = subprocess.run(cmd, env=env, input=stdin or b"", capture_output=True, check=True).stdout
        times.append(time.monotonic() - t0)
    print(f"# notmuch {' '.join(cmd[1:3])}: {statistics.median(times):.3f}s, {len(out.splitlines())} lines",
          file=sys.stderr)
    return statistics.median(times)


if __name__ == "__main__":
    main()
