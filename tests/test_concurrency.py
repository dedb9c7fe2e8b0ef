"""Concurrency: several importers of overlapping corpora and a loop of readers at once; a writer
killed while holding the lock does not block the next one."""

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

from conftest import run_cli
from storecheck import over_rows, xref3


def partition(store: Path) -> set[frozenset[str]]:
    groups: dict[int, set[str]] = {}
    for docid, oid in xref3(store):
        groups.setdefault(docid, set()).add(oid)
    return {frozenset(g) for g in groups.values()}


def overlapping(sample_corpus: Path, tmp_path: Path) -> list[list[str]]:
    """Four inputs that share messages: two Maildir halves that overlap, the mbox, a whole Maildir."""
    files = sorted(p for sub in ("cur", "new") for p in (sample_corpus / "maildir" / sub).iterdir())
    dirs = []
    for i, part in enumerate((files[:160], files[90:])):
        d = tmp_path / f"part{i}"
        for sub in ("cur", "new", "tmp"):
            (d / sub).mkdir(parents=True)
        for p in part:
            shutil.copy2(p, d / p.parent.name / p.name)
        dirs.append([str(d)])
    whole = shutil.copytree(sample_corpus / "maildir", tmp_path / "whole")
    return dirs + [[f"mboxrd:{sample_corpus / 'sample.mboxrd'}"], [str(whole)]]


def test_four_importers_and_readers_at_once(sample_corpus, tmp_path):
    store = tmp_path / "store"
    reference = tmp_path / "reference"
    run_cli("import", "--store", str(reference), "-q", str(sample_corpus / "maildir"))
    run_cli("init", str(store))
    errors, counts, stop = [], [], threading.Event()

    def reader():
        while not stop.is_set():
            r = subprocess.run([sys.executable, "-m", "lei_store", "q", "--store", str(store), "z:1..",
                                "-f", "jsonl", "--dedupe=none"], capture_output=True)
            if r.returncode != 0:
                errors.append(r.stderr.decode())
            else:
                counts.append(len(r.stdout.splitlines()))

    readers = [threading.Thread(target=reader) for _ in range(2)]
    for t in readers:
        t.start()
    procs = [subprocess.Popen([sys.executable, "-m", "lei_store", "import", "--store", str(store), "-q",
                               "--batch-size", "30", "--lock-timeout", "120", *inputs],
                              stderr=subprocess.PIPE)
             for inputs in overlapping(sample_corpus, tmp_path)]
    try:
        results = [(p.wait(timeout=300), p.stderr.read().decode()) for p in procs]
    finally:
        stop.set()
        for t in readers:
            t.join(timeout=60)
    assert all(code == 0 for code, _ in results), results
    assert not errors, errors[:3]
    assert counts and counts == sorted(counts)  # readers never saw the store shrink
    # every message exactly once, each with all its copies (which copy came first may differ)
    assert len(over_rows(store)) == len(over_rows(reference))
    assert partition(store) == partition(reference)
    assert run_cli("fsck", "--store", str(store)).returncode == 0


def test_killed_lock_holder_does_not_block_the_next_writer(sample_corpus, tmp_path):
    store = tmp_path / "store"
    run_cli("init", str(store))
    big = tmp_path / "big.mboxrd"
    mbox = (sample_corpus / "sample.mboxrd").read_bytes()
    big.write_bytes(b"".join(mbox.replace(b"@example.org>", b".%d@example.org>" % i) for i in range(8)))
    p = subprocess.Popen([sys.executable, "-m", "lei_store", "import", "--store", str(store), "-q",
                          f"mboxrd:{big}"], stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while b"pid=" not in (store / "ei.lock").read_bytes() and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    started = time.monotonic()
    r = run_cli("import", "--store", str(store), "--json", "-q", "--lock-timeout", "10",
                str(shutil.copytree(sample_corpus / "maildir", tmp_path / "md")))
    assert time.monotonic() - started < 30 and json.loads(r.stdout)["messages"] > 0
    assert run_cli("fsck", "--store", str(store)).returncode == 0
