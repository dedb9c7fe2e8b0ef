#!/usr/bin/env python3
"""Measure the two ways to write message commits: `git fast-import` (what lei_store uses) vs pygit2.

    .venv/bin/python tools/bench_git_write.py [--corpus ../shared/corpora/btrfs-10k.tar.xz] [-n 3000]

Both write one commit per message whose tree is {m: blob}, chained on one
branch, into a fresh bare repo, and the script prints seconds and msgs/s.
"""

from __future__ import annotations

import argparse
import os
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def load(corpus: Path, n: int, tmp: Path) -> list[bytes]:
    with tarfile.open(corpus) as tar:
        tar.extractall(tmp, filter="data")
    md = tmp / "maildir"
    files = sorted(md / s / f for s in ("cur", "new") for f in os.listdir(md / s))[:n]
    return [f.read_bytes() for f in files]


def with_fast_import(repo: Path, blobs: list[bytes]) -> float:
    from lei_store.write.epochs import FastImport, init_bare

    init_bare(repo, "master", epoch=False)
    t = time.monotonic()
    fi = FastImport(repo, "master")
    for i, b in enumerate(blobs):
        fi.commit(b, ("A", "a@x", 1000 + i, "+0000"), ("C", "c@x", 1000 + i, "+0000"), f"message {i}")
    fi.close()
    return time.monotonic() - t


def with_pygit2(repo: Path, blobs: list[bytes]) -> float:
    import pygit2

    r = pygit2.init_repository(str(repo), bare=True)
    t = time.monotonic()
    parent = []
    for i, b in enumerate(blobs):
        oid = r.create_blob(b)
        tb = r.TreeBuilder()
        tb.insert("m", oid, pygit2.GIT_FILEMODE_BLOB)
        tree = tb.write()
        author = pygit2.Signature("A", "a@x", 1000 + i, 0)
        committer = pygit2.Signature("C", "c@x", 1000 + i, 0)
        parent = [r.create_commit("refs/heads/master", author, committer, f"message {i}\n", tree, parent)]
    return time.monotonic() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--corpus", type=Path, default=ROOT.parent / "shared" / "corpora" / "btrfs-10k.tar.xz")
    ap.add_argument("-n", type=int, default=3000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        blobs = load(args.corpus, args.n, tmp)
        for name, fn in (("git fast-import", with_fast_import), ("pygit2 (loose objects)", with_pygit2)):
            secs = fn(tmp / name.split()[0], blobs)
            print(f"{name:24} {len(blobs)} commits  {secs:6.2f} s  {len(blobs) / secs:7.0f} msgs/s")


if __name__ == "__main__":
    main()
