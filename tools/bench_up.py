#!/usr/bin/env python3
"""Saved-search refresh benchmark: `up --all` on 20 saved searches after 100 new messages arrive,
lei-store against real lei on the same store and the same searches.

    .venv/bin/python tools/bench_up.py [--corpus ../shared/corpora/btrfs-10k.tar.xz] [--rounds 3]
        [--no-lei]

The corpus's Maildir minus its last 100 x (2 x rounds) messages (by name) is imported; 20 searches
are saved with `lei-store q -o DIR` (Maildir outputs). Each round: 100 held-back messages are
imported and `lei-store up --all` is timed; then 100 more and `lei up --all` (lei pointed at the
same store with `lei init`). Also timed: `up --all` with nothing new. Every round checks that
the new messages matching a search were written to its output once.
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
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_import import DEFAULT_CORPUS, bench_env, unpack  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CLI = str(ROOT / ".venv" / "bin" / "lei-store")
SEARCHES = ["s:scrub", "s:balance", "s:zoned", "s:raid5 OR s:raid6", "f:sterba", "f:josef", "s:qgroup",
            "s:send AND s:receive", "b:ENOSPC", "s:compression", "s:defrag", "s:subvolume", "s:relocation",
            "s:tree-checker", "b:fstrim", "s:PATCH AND s:v2", "s:GIT PULL", "s:regression", "b:syzbot",
            "s:fsync"]


def run(cmd: list[str], env: dict, timeout: float = 3600) -> float:
    t0 = time.monotonic()
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    if r.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[:3])} failed ({r.returncode}): {r.stderr[-600:]}")
    return time.monotonic() - t0


def split_maildir(src: Path, dest: Path, held: int) -> list[Path]:
    """DEST gets all but the last HELD messages (by name); returns the held-back files."""
    names = sorted((f, sub) for sub in ("cur", "new") for f in os.listdir(src / sub))
    for sub in ("cur", "new", "tmp"):
        (dest / sub).mkdir(parents=True)
    for f, sub in names[:-held]:
        os.link(src / sub / f, dest / sub / f)
    return [src / sub / f for f, sub in names[-held:]]


def arrive(files: list[Path], work: Path, n: int, env: dict) -> None:
    batch = work / f"batch{n}"
    for sub in ("cur", "new", "tmp"):
        (batch / sub).mkdir(parents=True)
    for f in files:
        shutil.copy(f, batch / f.parent.name / f.name)
    run([CLI, "import", "-q", str(batch)], env)


def output_count(outputs: list[Path]) -> int:
    return sum(len(os.listdir(o / sub)) for o in outputs for sub in ("cur", "new"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--no-lei", action="store_true", help="time lei-store only")
    args = ap.parse_args()
    with_lei = not args.no_lei and shutil.which("lei") is not None
    with tempfile.TemporaryDirectory(prefix="bench-up-") as d:
        work = Path(d)
        home = work / "home"
        run_dir = work / "run"
        home.mkdir()
        run_dir.mkdir(mode=0o700)
        env = dict(bench_env(), HOME=str(home), XDG_RUNTIME_DIR=str(run_dir), LEI_STORE_DAEMON="0")
        for var in ("XDG_DATA_HOME", "XDG_CONFIG_HOME", "XDG_CACHE_HOME"):
            env.pop(var, None)
        src = unpack(args.corpus, work)
        held = split_maildir(src, work / "maildir", 100 * 2 * args.rounds)
        print(f"importing {sum(len(os.listdir(work / 'maildir' / s)) for s in ('cur', 'new'))} messages ...",
              file=sys.stderr)
        run([CLI, "init", str(work / "store")], env)
        run([CLI, "import", "-q", str(work / "maildir")], env)
        outputs = [work / "out" / f"s{i:02d}" for i in range(len(SEARCHES))]
        for q, out in zip(SEARCHES, outputs, strict=True):
            run([CLI, "q", "-o", str(out), *q.split()], env)
        print(f"{len(SEARCHES)} saved searches holding {output_count(outputs)} messages", file=sys.stderr)
        if with_lei:
            run(["lei", "init", str(work / "store")], env)
        ours, theirs, idle = [], [], []
        try:
            for r in range(args.rounds):
                chunk = held[200 * r: 200 * r + 100], held[200 * r + 100: 200 * r + 200]
                arrive(chunk[0], work, 2 * r, env)
                before = output_count(outputs)
                ours.append(run([CLI, "up", "--all", "-q"], env))
                print(f"round {r + 1}: lei-store up --all {ours[-1]:.2f} s, "
                      f"{output_count(outputs) - before} messages written", file=sys.stderr)
                idle.append(run([CLI, "up", "--all", "-q"], env))
                if with_lei:
                    arrive(chunk[1], work, 2 * r + 1, env)
                    before = output_count(outputs)
                    theirs.append(run(["lei", "up", "--all"], env))
                    print(f"round {r + 1}: lei up --all {theirs[-1]:.2f} s, "
                          f"{output_count(outputs) - before} messages written", file=sys.stderr)
        finally:
            if with_lei:
                subprocess.run(["lei", "daemon-kill"], env=env, capture_output=True, timeout=60)
        print("\n| up --all, 20 saved searches | median of %d | runs |" % args.rounds)
        print("|---|---:|---|")
        print(f"| lei-store, 100 new messages | {statistics.median(ours):.2f} s | "
              f"{', '.join(f'{x:.2f}' for x in ours)} |")
        print(f"| lei-store, nothing new | {statistics.median(idle):.2f} s | {', '.join(f'{x:.2f}' for x in idle)} |")
        if theirs:
            print(f"| lei 1.9, 100 new messages | {statistics.median(theirs):.2f} s | "
                  f"{', '.join(f'{x:.2f}' for x in theirs)} |")
            print(f"\nlei / lei-store: {statistics.median(theirs) / statistics.median(ours):.1f}x")


if __name__ == "__main__":
    main()
