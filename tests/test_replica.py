"""Replication with plain git: clone a store (path or http URL), import more on the source
(rolling over an epoch), fetch, and the replica answers as the source does, indexing only what is new."""

from __future__ import annotations

import functools
import http.server
import json
import shutil
import threading
from pathlib import Path

import pytest
from conftest import run_cli

QUERIES = [["z:1.."], ["kw:seen"], ["L:work"], ["s:btrfs"], ["-t", "f:alice"]]


def answers(store: Path) -> list[list[dict]]:
    out = []
    for query in QUERIES:
        r = run_cli("q", "--store", str(store), "-f", "jsonl", "--dedupe=none", *query)
        rows = [json.loads(line) for line in r.stdout.splitlines()]
        out.append(sorted(rows, key=lambda d: d["blob"]))
    return out


def split_maildir(src: Path, dest: Path, first: bool) -> Path:
    """The first (or second) half of a Maildir's files."""
    for sub in ("cur", "new", "tmp"):
        (dest / sub).mkdir(parents=True)
    files = sorted(p for sub in ("cur", "new") for p in (src / sub).iterdir())
    half = files[: len(files) // 2] if first else files[len(files) // 2:]
    for p in half:
        shutil.copy2(p, dest / p.parent.name / p.name)
    return dest


@pytest.fixture
def source(sample_corpus, tmp_path, monkeypatch):
    monkeypatch.setenv("LEI_STORE_ROTATE_BYTES", "250000")
    store = tmp_path / "source"
    run_cli("import", "--store", str(store), "-q", str(split_maildir(sample_corpus / "maildir", tmp_path / "a", True)))
    run_cli("tag", "--store", str(store), "--quiet", "-q", "s:btrfs", "+L:work")
    return store


def grow(store: Path, sample_corpus, tmp_path) -> None:
    """Import the other half: enough to roll over into a new epoch."""
    before = len(list((store / "local").glob("*.git")))
    run_cli("import", "--store", str(store), "-q", str(split_maildir(sample_corpus / "maildir", tmp_path / "b", False)))
    run_cli("tag", "--store", str(store), "--quiet", "-q", "s:btrfs", "+L:work")
    assert len(list((store / "local").glob("*.git"))) > before


def test_clone_and_fetch_from_a_path(source, sample_corpus, tmp_path):
    replica = tmp_path / "replica"
    r = run_cli("clone", str(source), str(replica), "--json", "-q")
    assert json.loads(r.stdout)["messages"] > 100
    assert answers(replica) == answers(source)
    grow(source, sample_corpus, tmp_path)
    new_commits = sum(1 for _ in __import__("subprocess").run(
        ["git", f"--git-dir={source / 'local' / '1.git'}", "rev-list", "HEAD"], capture_output=True,
        text=True).stdout.split())
    r = run_cli("fetch", "--store", str(replica), "--json", "-q")
    stats = json.loads(r.stdout)
    assert 0 < stats["messages"] and stats["commits"] < 200  # only the new commits were read
    assert new_commits <= stats["commits"]
    assert answers(replica) == answers(source)
    again = json.loads(run_cli("fetch", "--store", str(replica), "--json", "-q").stdout)
    assert again["commits"] == 0 and again["messages"] == 0
    assert run_cli("fsck", "--store", str(replica)).returncode == 0


def test_clone_and_fetch_over_dumb_http(source, sample_corpus, tmp_path):
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    handler.log_message = lambda *a: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/source"
        replica = tmp_path / "replica"
        run_cli("clone", url, str(replica), "-q")
        assert answers(replica) == answers(source)  # labels came with the journal over http
        grow(source, sample_corpus, tmp_path)
        run_cli("fetch", "--store", str(replica), "-q")
        assert answers(replica) == answers(source)
    finally:
        server.shutdown()


def test_clone_refuses_a_bad_source(tmp_path):
    r = run_cli("clone", str(tmp_path / "nothing"), str(tmp_path / "r"), check=False)
    assert r.returncode == 1 and r.stderr.count(b"\n") == 1
    r = run_cli("fetch", "--store", str(tmp_path / "nothing"), check=False)
    assert r.returncode == 1 and r.stderr.count(b"\n") == 1
