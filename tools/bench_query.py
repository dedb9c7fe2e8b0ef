#!/usr/bin/env python3
"""Query benchmark: one suite of queries with lei-store q, lei q and notmuch search, p50/p95 and ratios.

    .venv/bin/python tools/bench_query.py [--corpus ../shared/corpora/btrfs-10k.tar.xz] [--runs 5]
        [--tools lei-store,lei,notmuch] [--cli OTHER_CHECKOUT/.venv/bin/lei-store]

The corpus is imported once with lei-store; real `lei q` is pointed at that same
store (lei init), and notmuch indexes a copy of the same Maildir. Every query
runs as a fresh process (start-up counts) with JSON output to /dev/null;
lei-store q and lei q both answer through their daemons (started before timing),
and lei-store q is also timed with LEI_STORE_DAEMON=0.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
import subprocess
import sys
import tarfile
import tempfile
import time
from collections import Counter
from pathlib import Path

import xapian

ROOT = Path(__file__).resolve().parents[1]
CLI = str(ROOT / ".venv" / "bin" / "lei-store")


def pick_terms(store: Path) -> dict[str, str]:
    """Concrete values from the data: a rare and a common subject word, a busy sender, a Message-ID."""
    db = xapian.Database(str(store / "ei15" / "0"))
    subj = [(db.get_termfreq(t.term), t.term[1:].decode()) for t in db.allterms("S")
            if t.term[1:].isalpha() and t.term[1:].islower() and len(t.term) > 5]
    rare = next(w for n, w in sorted(subj) if n == 3)
    common = max(subj)[1]
    over = sqlite3.connect(store / "ei15" / "over.sqlite3")
    senders = Counter()
    mid = None
    import zlib

    for (ddd,) in over.execute("SELECT ddd FROM over WHERE num > 0"):
        f = zlib.decompress(ddd).decode().split("\n")
        senders[f[1].rsplit("<", 1)[-1].rstrip(">")] += 1
        mid = mid or (f[6] if "@" in f[6] else None)
    return {"rare": rare, "common": common, "from": senders.most_common(1)[0][0], "mid": mid}


def suite(v: dict[str, str]) -> list[tuple[str, list[str], str]]:
    """(name, lei query argv, notmuch query)."""
    return [
        ("rare subject word", [f"s:{v['rare']}"], f"subject:{v['rare']}"),
        ("common subject word", [f"s:{v['common']}"], f"subject:{v['common']}"),
        ("from:", [f"f:{v['from']}"], f"from:{v['from']}"),
        ("a month", ["d:20190601..20190630"], "date:2019-06-01..2019-06-30"),
        ("Message-ID", [f"mid:{v['mid']}"], f"id:{v['mid']}"),
        ("body phrase", ["b:free space cache"], 'body:"free space cache"'),
        ("kw:seen", ["kw:seen"], "not tag:unread"),
        ("kw:flagged", ["kw:flagged"], "tag:flagged"),
        ("AND NOT", [f"s:{v['common']}", "AND", "NOT", "kw:seen"], f"subject:{v['common']} and tag:unread"),
        ("OR", ["s:scrub", "OR", "s:balance"], "subject:scrub or subject:balance"),
    ]


def timed(cmd: list[str], env: dict, runs: int) -> tuple[list[float], int]:
    times, lines = [], 0
    for _ in range(runs):
        t = time.monotonic()
        r = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        times.append(time.monotonic() - t)
        lines = r.stdout.count(b"\n")
    return times, lines


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p * (len(values) - 1))))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--corpus", type=Path, default=ROOT.parent / "shared" / "corpora" / "btrfs-10k.tar.xz")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--tools", default="lei-store,lei,notmuch", help="which to time (lei-store always runs)")
    ap.add_argument("--cli", default=CLI, help="the lei-store to time, e.g. another checkout's, for before/after")
    args = ap.parse_args()
    tools = set(args.tools.split(","))
    cli = args.cli
    with tempfile.TemporaryDirectory(prefix="bench-query-") as tmp:
        tmp = Path(tmp)
        with tarfile.open(args.corpus) as tar:
            tar.extractall(tmp / "corpus", filter="data")
        env = dict(os.environ, HOME=str(tmp / "home"), XDG_RUNTIME_DIR=str(tmp / "run"))
        (tmp / "run").mkdir(mode=0o700)
        store = tmp / "store"
        subprocess.run([cli, "import", "--store", str(store), "-q", str(tmp / "corpus" / "maildir")],
                       env=env, check=True)
        have_lei = "lei" in tools and shutil.which("lei") is not None
        if have_lei:
            subprocess.run(["lei", "init", str(store)], env=env, check=True, capture_output=True)
        have_nm = "notmuch" in tools and shutil.which("notmuch") is not None
        if have_nm:
            md = shutil.copytree(tmp / "corpus" / "maildir", tmp / "nm-maildir")
            cfg = tmp / "notmuch-config"
            cfg.write_text(f"[database]\npath={md}\n[new]\ntags=unread;inbox;\n[maildir]\nsynchronize_flags=true\n")
            env["NOTMUCH_CONFIG"] = str(cfg)
            subprocess.run(["notmuch", "new", "--quiet"], env=env, check=True)
        rows = []
        cold_env = dict(env, LEI_STORE_DAEMON="0")
        ours_q = [cli, "q", "--store", str(store), "-f", "jsonl"]
        for warm in ([cli, "ls-label", "--store", str(store)], ["lei", "q", "-f", "jsonl", "z:1..1"]):
            subprocess.run(warm, env=env, capture_output=True)  # both start their daemons (untimed)
        time.sleep(1)
        for name, lq, nq in suite(pick_terms(store)):
            ours, n_ours = timed([*ours_q, *lq], env, args.runs)
            cold, _ = timed([*ours_q, *lq], cold_env, args.runs)
            lei = timed(["lei", "q", "-f", "jsonl", *lq], env, max(1, args.runs // 2 + 1)) if have_lei else None
            nm = timed(["notmuch", "search", "--format=json", nq], env, args.runs) if have_nm else None
            rows.append((name, " ".join(lq), n_ours, ours, cold, lei, nm))
            print(f"# {name}: done", file=sys.stderr)
        floor = timed([sys.executable, "-S", "-c", "pass"], env, 20)[0]
        if have_lei:
            subprocess.run(["lei", "daemon-kill"], env=env, capture_output=True)
        subprocess.run([cli, "daemon-kill"], env=env, capture_output=True)
    ms = lambda t: f"{pct(t, 0.5) * 1000:.0f} / {pct(t, 0.95) * 1000:.0f}"
    print("| query | lei query | hits | lei-store q p50/p95 ms | without its daemon | lei q | notmuch search "
          "| lei q / lei-store q | notmuch / lei-store q |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, lq, hits, ours, cold, lei, nm in rows:
        r_lei = f"{pct(lei[0], .5) / pct(ours, .5):.1f}x" if lei else "-"
        r_nm = f"{pct(nm[0], .5) / pct(ours, .5):.2f}x" if nm else "-"
        print(f"| {name} | `{lq}` | {hits} | {ms(ours)} | {ms(cold)} | {ms(lei[0]) if lei else '-'} | "
              f"{ms(nm[0]) if nm else '-'} | {r_lei} | {r_nm} |")
    print(f"\n`python -S -c pass` (the interpreter alone, no imports): {ms(floor)} ms")


if __name__ == "__main__":
    main()
