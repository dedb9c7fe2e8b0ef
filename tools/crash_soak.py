#!/usr/bin/env python3
"""Crash soak: SIGKILL an import at every durability boundary and at random moments, re-run it,
and check the store holds every message exactly once, with every keyword, the same number of git
commits as a clean import (a crash must not grow history: replicas fetch it), and fsck is clean.

    .venv/bin/python tools/crash_soak.py [--random 50] [--seed 1]

Each case imports the sample corpus (tools/make_sample_corpus.py) as a Maildir
and then as an mboxrd (whose Status headers set keywords on duplicates), with
small batches; the fault (lei_store/faults.py) kills the first import process
that reaches it. Then both imports run again, undisturbed, and the store is
compared with one built without faults. tests/test_crash.py runs a quick version.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

from storecheck import commits, over_rows, volatile_by_blob  # noqa: E402

from lei_store.write.faults import POINTS  # noqa: E402

# which passage of each point to stop at: per-message points mid-corpus, per-batch points mid-run
NTH = {"store-building": 1, "blob-written": 90, "over-row": 120, "xapian-doc": 60, "sync-row": 150, "keywords-set": 30,
       "git-checkpoint": 3, "journal-record": 2, "journal-commit": 4, "xapian-commit": 3,
       "over-commit": 5, "sync-commit": 2}


def _env(fault: str | None = None) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "LEI_STORE_FAULT"}
    if fault:
        env["LEI_STORE_FAULT"] = fault
    return env


def imports(store: Path, corpus: Path) -> list[list[str]]:
    base = [sys.executable, "-m", "lei_store", "import", "--store", str(store), "-q", "--batch-size", "40"]
    return [base + [str(corpus / "maildir")], base + [f"mboxrd:{corpus / 'sample.mboxrd'}"]]


def run_all(store: Path, corpus: Path, fault: str | None = None, kill_after: float | None = None) -> list[int]:
    """Run the imports in order; the first one that dies stops the sequence. Returns exit codes."""
    codes = []
    deadline = None if kill_after is None else time.monotonic() + kill_after
    for cmd in imports(store, corpus):
        p = subprocess.Popen(cmd, env=_env(fault), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            timeout = None if deadline is None else max(deadline - time.monotonic(), 0)
            p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            p.send_signal(signal.SIGKILL)
            p.wait()
        codes.append(p.returncode)
        if p.returncode != 0:
            break
    return codes


def state(store: Path) -> tuple:
    """What must be identical to a store built without faults."""
    import sqlite3

    blobs = sorted(f[5] for *_, f in over_rows(store))
    db = sqlite3.connect(store / "mail_sync.sqlite3")
    sync = sorted((bytes(o).hex(), bytes(n).decode()) for o, n in db.execute("SELECT oidbin, name FROM blob2name"))
    db.close()
    return blobs, volatile_by_blob(store), sync, commits(store)


def fsck_ok(store: Path) -> tuple[bool, str]:
    r = subprocess.run([sys.executable, "-m", "lei_store", "fsck", "--store", str(store)],
                       capture_output=True, text=True, env=_env())
    return r.returncode == 0, r.stdout + r.stderr


def check_case(work: Path, corpus: Path, reference: tuple, fault: str | None = None,
               kill_after: float | None = None) -> tuple[bool, str]:
    """Crash once, recover by re-running, compare. Returns (passed, what happened)."""
    store = work / "store"
    codes = run_all(store, corpus, fault, kill_after)
    again = run_all(store, corpus)
    if again != [0, 0]:
        return False, f"recovery imports exited {again}"
    ok, report = fsck_ok(store)
    if not ok:
        return False, f"fsck failed after crash codes {codes}:\n{report}"
    got = state(store)
    for name, a, b in zip(("over blobs", "keywords/labels", "sync rows", "git commits"), got, reference, strict=True):
        if a != b:
            shown = f": {a} instead of {b}" if name == "git commits" else ""
            return False, f"{name} differ after crash codes {codes}{shown}"
    return True, f"crash codes {codes}"


def make_corpus(dest: Path) -> Path:
    subprocess.run([sys.executable, str(ROOT / "tools" / "make_sample_corpus.py"), str(dest)],
                   check=True, capture_output=True)
    return dest


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--random", type=int, default=50, help="random-moment kills")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory(prefix="crash-soak-") as tmp:
        tmp = Path(tmp)
        corpus = make_corpus(tmp / "corpus")
        ref_store = tmp / "reference" / "store"
        t0 = time.monotonic()
        assert run_all(ref_store, corpus) == [0, 0]
        full = time.monotonic() - t0
        reference = state(ref_store)
        cases = [(f"{p}:{NTH[p]}", None) for p in POINTS] + \
                [(None, rng.uniform(0.05, full)) for _ in range(args.random)]
        failures = 0
        for i, (fault, after) in enumerate(cases):
            ok, what = check_case(tmp / f"case{i}", corpus, reference, fault, after)
            failures += not ok
            label = fault or f"SIGKILL after {after:.2f}s"
            print(f"{'ok  ' if ok else 'FAIL'} {label}: {what}", flush=True)
        print(f"{len(cases) - failures}/{len(cases)} cases passed "
              f"({len(POINTS)} boundaries, {args.random} random moments; full import {full:.1f}s)")
        sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
