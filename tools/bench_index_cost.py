#!/usr/bin/env python3
"""Where an import's CPU goes, stage by stage, in one process: what lei's format costs at least.

    .venv/bin/python tools/bench_index_cost.py [--corpus ../shared/corpora/btrfs-10k.tar.xz]
        [--maildir DIR] [--limit N] [--batch N]

The import pipeline spreads its work over processes, so its own profile mixes waiting with
working. This tool runs each stage alone, in this process, on the same messages, and prints CPU
milliseconds per message:

- analyse: everything a worker does for one message (parse, hash, terms, serialise);
- of which Xapian's TermGenerator: the same index_text calls replayed on their own;
- of which serialising the document for the shard writer;
- shard write, add and commit: unserialise + replace_document into fresh shards, committed every
  --batch messages as the writer does (Writer.batch_size), split into adding and committing.

TermGenerator, add and commit are Xapian's own work on the terms, positions and values lei's format
asks for; their sum is a floor no change on our side of the library lowers. Then `mu index` on the
same messages, if mu is installed, for its total CPU per message.

Run with LD_PRELOAD=libjemalloc.so.2 to match the helpers (children.helper_env preloads it).
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import xapian  # noqa: E402
from bench_import import DEFAULT_CORPUS, bench_env, bench_mu, subset, unpack  # noqa: E402  (tools/ is on the path)

from lei_store.mail.terms import new_termgenerator  # noqa: E402
from lei_store.write import analysis  # noqa: E402
from lei_store.write.searchidx import ShardWriters, create_shards  # noqa: E402


class RecordingGenerator:
    """Stands in for the worker's TermGenerator and notes every call, so the calls can be
    replayed alone and timed without the Python around them."""

    def __init__(self, tg: xapian.TermGenerator):
        self.tg, self.calls = tg, []

    def set_document(self, doc):
        self.calls.append(None)  # a new document starts
        self.tg.set_document(doc)

    def index_text(self, text, wdf=1, prefix=""):
        self.calls.append((text, wdf, prefix))
        self.tg.index_text(text, wdf, prefix)

    def increase_termpos(self, delta=100):
        self.calls.append(delta)
        self.tg.increase_termpos(delta)


def messages(maildir: Path) -> list[bytes]:
    paths = (p for sub in ("cur", "new") for p in (maildir / sub).iterdir())
    return [p.read_bytes() for p in sorted(paths, key=lambda p: p.name)]


def cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def time_analyse(raws: list[bytes]) -> tuple[float, list[bytes], list]:
    """Analyse every message as a worker does; the documents and the TermGenerator calls."""
    real = analysis._termgenerator()
    t = cpu()
    docs = [analysis.analyse(raw, 0).doc for raw in raws]
    spent = cpu() - t
    recorder = RecordingGenerator(real)
    original, analysis._termgenerator = analysis._termgenerator, lambda: recorder
    try:  # a second pass only to note the calls
        for raw in raws:
            analysis.analyse(raw, 0)
    finally:
        analysis._termgenerator = original
    return spent, docs, recorder.calls


def time_termgenerator(calls: list) -> float:
    tg = new_termgenerator()  # configured as the workers' is
    t = cpu()
    for call in calls:
        if call is None:
            tg.set_document(xapian.Document())
        elif type(call) is tuple:
            tg.index_text(*call)
        else:
            tg.increase_termpos(call)
    return cpu() - t


def time_serialise(docs: list[bytes]) -> float:
    objs = [xapian.Document.unserialise(d) for d in docs]
    t = cpu()
    for doc in objs:
        doc.serialise()
    return cpu() - t


def time_shard_write(docs: list[bytes], shards: int, batch: int, where: Path) -> tuple[float, float]:
    """(add seconds, commit seconds) writing every document into fresh shards."""
    from lei_store.paths import Layout

    layout = Layout(where)
    create_shards(layout, shards)
    writer = ShardWriters([layout.shard(i) for i in range(shards)])
    add = commit = 0.0
    for num, doc in enumerate(docs, 1):
        t = cpu()
        writer.add(num, doc, num)
        add += cpu() - t
        if num % batch == 0 or num == len(docs):
            t = cpu()
            writer.commit()
            commit += cpu() - t
    writer.close()
    return add, commit


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    ap.add_argument("--maildir", type=Path, help="a Maildir to use instead of the corpus archive")
    ap.add_argument("--limit", type=int, default=10_000)
    ap.add_argument("--batch", type=int, default=1000, help="messages per commit (the writer's batch_size)")
    ap.add_argument("--shards", type=int, default=2, help="shards a new store gets on this machine's 2 cores")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-index-cost-") as tmp:
        tmp = Path(tmp)
        maildir = args.maildir
        if maildir is None:
            if not args.corpus.exists():
                sys.exit(f"bench_index_cost: {args.corpus} not found (give --maildir)")
            maildir = unpack(args.corpus, tmp)
        if not (maildir / "cur").is_dir():
            sys.exit(f"bench_index_cost: {maildir}: not a Maildir (no cur/)")
        maildir = subset(maildir, args.limit, tmp / "maildir")  # the same messages for every stage and for mu
        raws = messages(maildir)
        n = len(raws)
        analyse, docs, calls = time_analyse(raws)
        stages = [("analyse (a worker's whole job)", analyse),
                  ("  of which TermGenerator", time_termgenerator(calls)),
                  ("  of which serialise", time_serialise(docs))]
        add, commit = time_shard_write(docs, args.shards, args.batch, tmp / "store")
        stages += [("shard write: unserialise + add", add), (f"shard write: commit every {args.batch}", commit)]
        floor = stages[1][1] + add + commit
        mu = bench_mu(maildir, tmp, bench_env())[3] if shutil.which("mu") else None
    malloc = "jemalloc" if "jemalloc" in os.environ.get("LD_PRELOAD", "") else "glibc malloc"
    print(f"# {n} messages, {args.shards} shards, {malloc}, {time.strftime('%Y-%m-%d %H:%M')}")
    print("| stage | CPU s | ms per message |")
    print("|---|---:|---:|")
    for name, secs in stages:
        print(f"| {name} | {secs:.1f} | {secs / n * 1e3:.2f} |")
    print(f"| Xapian's own work (TermGenerator + add + commit) | {floor:.1f} | {floor / n * 1e3:.2f} |")
    if mu is not None:
        print(f"| mu index, all of it | {mu:.1f} | {mu / n * 1e3:.2f} |")


if __name__ == "__main__":
    main()
