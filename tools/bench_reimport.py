#!/usr/bin/env python3
"""Re-import benchmark: an unchanged Maildir, then one with 10% of its flags changed.

    .venv/bin/python tools/bench_reimport.py [--corpus ../shared/corpora/btrfs-10k.tar.xz]
        [--tools lei-store,lei,notmuch] [--runs 3]

Each tool imports a fresh copy of the corpus Maildir once (untimed here: see
bench_import.py), then re-imports it unchanged (median of --runs), then every
tenth file of cur/ gets its F flag toggled by a rename (as a mail client
would) and the tool re-imports once more. lei runs with its daemon already
started, as its users run it. Prints a table of wall times.
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
from bench_import import DEFAULT_CORPUS, ROOT, bench_env, unpack  # noqa: E402


def timed(cmd, env) -> float:
    t0 = time.monotonic()
    r = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    if r.returncode != 0:
        raise SystemExit(f"{cmd[0]} failed: {r.stderr.decode()[-500:]}")
    return time.monotonic() - t0


def toggle_flagged(maildir: Path, every: int = 10) -> int:
    """Rename every Nth file of cur/ with its F flag toggled; returns how many."""
    names = sorted(os.listdir(maildir / "cur"))[::every]
    for name in names:
        base, _, flags = name.partition(":2,")
        new = "".join(sorted(set(flags) ^ {"F"}))
        os.rename(maildir / "cur" / name, maildir / "cur" / f"{base}:2,{new}")
    return len(names)


class LeiStore:
    def __init__(self, work: Path, env):
        self.cmd = [str(ROOT / ".venv" / "bin" / "lei-store"), "import", "--store", str(work / "store"), "-q"]
        self.env = env

    def run(self, maildir: Path) -> float:
        return timed(self.cmd + [str(maildir)], self.env)

    def close(self) -> None:
        pass


class Lei:
    def __init__(self, work: Path, env):
        run = work / "lei-run"
        run.mkdir(mode=0o700)
        self.env = dict(env, HOME=str(work / "lei-home"), XDG_RUNTIME_DIR=str(run))
        subprocess.run(["lei", "init"], env=self.env, check=True, capture_output=True)

    def run(self, maildir: Path) -> float:
        return timed(["lei", "import", str(maildir)], self.env)

    def close(self) -> None:
        subprocess.run(["lei", "daemon-kill"], env=self.env, capture_output=True)


class Notmuch:
    def __init__(self, work: Path, env):
        self.work, self.env = work, env

    def run(self, maildir: Path) -> float:
        cfg = self.work / "notmuch-config"
        if not cfg.exists():
            cfg.write_text(f"[database]\npath={maildir}\n[new]\ntags=unread;inbox;\n"
                           "[maildir]\nsynchronize_flags=true\n")
        return timed(["notmuch", "new", "--quiet"], dict(self.env, NOTMUCH_CONFIG=str(cfg)))

    def close(self) -> None:
        pass


TOOLS = {"lei-store": LeiStore, "lei": Lei, "notmuch": Notmuch}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    ap.add_argument("--tools", default="lei-store,lei,notmuch")
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    if not args.corpus.exists():
        sys.exit(f"bench_reimport: {args.corpus} not found")
    env = bench_env()
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-reimport-") as tmp:
        tmp = Path(tmp)
        source = unpack(args.corpus, tmp)
        for name in args.tools.split(","):
            if name != "lei-store" and not shutil.which(name):
                print(f"# {name}: not installed, skipped", file=sys.stderr)
                continue
            work = tmp / f"run-{name}"
            work.mkdir()
            maildir = Path(shutil.copytree(source, work / "maildir"))
            tool = TOOLS[name](work, env)
            try:
                first = tool.run(maildir)
                unchanged = statistics.median(tool.run(maildir) for _ in range(args.runs))
                toggled = toggle_flagged(maildir)
                changed = tool.run(maildir)
            finally:
                tool.close()
            rows.append((name, first, unchanged, toggled, changed))
            print(f"# {name}: first {first:.1f}s, unchanged {unchanged:.3f}s, "
                  f"{toggled} flags changed {changed:.3f}s", file=sys.stderr)
    print("| tool | first import s | unchanged re-import s | 10% flags changed s |")
    print("|---|---:|---:|---:|")
    for name, first, unchanged, toggled, changed in rows:
        print(f"| {name} | {first:.1f} | {unchanged:.3f} | {changed:.3f} ({toggled} files) |")


if __name__ == "__main__":
    main()
