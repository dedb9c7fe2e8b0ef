"""Relative and partial date queries (git's approxidate) answer like real lei's, from anywhere.

The messages are dated relative to now, half a day away from every boundary the
queries draw (approxidate keeps the current time of day), so lei's and our run a few
seconds apart must find exactly the same messages. Both run from a directory outside
any git checkout: `git rev-parse --since` needs a repository, and ours used to need
to be run inside one.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from email.utils import formatdate

import pytest
from conftest import Lei, need_lei, run_cli

DAY = 86400
NOW = int(time.time())
# days ago: each half a day away from the whole-day boundaries of relative dates
RELATIVE = [0.5, 1.5, 3.5, 6.5, 7.5, 13.5, 14.5, 40.5, 400.5, 1000.5, 1100.5, 1400.5]
# absolute dates around the partial ones queried below (nov.2023 is read as 2023-11-<today's day>)
ABSOLUTE = ["2023-10-20", "2023-11-15", "2023-11-28", "2023-12-05", "2023-12-20", "2024-01-15"]
QUERIES = ["d:last.week..", "d:3.years.ago..", "d:2023-11..", "d:nov.2023..dec.2023", "rt:2.weeks.ago..",
           "dt:yesterday..", "d:last.month..", "d:2.days.ago..", "rt:..last.week", "d:..1.year.ago",
           "dt:3.days.ago..yesterday", "d:yesterday", "rt:2023-11-15", "d:2023-11-28"]


def _message(i: int, when: int, received: int) -> bytes:
    return (f"From: sender{i} <s{i}@example.org>\nTo: list@example.org\nSubject: dated message {i}\n"
            f"Date: {formatdate(when)}\nMessage-ID: <dated{i}@example.org>\n"
            f"Received: from mx.example.org by mail.example.org; {formatdate(received)}\n\nbody {i}\n").encode()


def _epochs() -> list[int]:
    absolute = [int(time.mktime(time.strptime(f"{d} 12:00", "%Y-%m-%d %H:%M"))) for d in ABSOLUTE]
    return [int(NOW - days * DAY) for days in RELATIVE] + absolute


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    need_lei()
    base = tmp_path_factory.mktemp("dates")
    maildir = base / "md"
    for sub in ("cur", "new", "tmp"):
        (maildir / sub).mkdir(parents=True)
    for i, when in enumerate(_epochs()):
        # Received lags the Date by an hour: rt: and d:/dt: read different headers
        (maildir / "cur" / f"{1700000000 + i}.M{i}P0.host:2,S").write_bytes(_message(i, when, when + 3600))
    store = base / "store"
    env = dict(os.environ, TZ="UTC")
    run_cli("import", "--store", str(store), "-q", str(maildir), env=env)
    reader = Lei(base / "lei")
    reader("init", str(store))
    yield store, reader, env
    reader.close()


def _blobs(out: bytes) -> set[str]:
    return {json.loads(line)["blob"] for line in out.decode().splitlines() if line.strip()}


@pytest.mark.parametrize("query", QUERIES)
def test_date_query_equals_leis_outside_a_repository(world, query, scratch_cwd):
    store, reader, env = world
    assert subprocess.run(["git", "rev-parse"], cwd=scratch_cwd, capture_output=True).returncode != 0
    ours = run_cli("q", "--store", str(store), "-f", "jsonl", "--dedupe=none", query, env=env)
    theirs = reader("q", "-f", "jsonl", "--dedupe=none", query)
    assert _blobs(ours.stdout) == _blobs(theirs.stdout), query


def test_some_queries_match_and_some_do_not(world):
    """The suite means something: most queries match a proper subset of the messages."""
    store, _reader, env = world
    total = len(_epochs())
    sizes = [len(_blobs(run_cli("q", "--store", str(store), "-f", "jsonl", q, env=env).stdout)) for q in QUERIES]
    assert sum(0 < n < total for n in sizes) >= len(QUERIES) - 3, sizes


def test_readme_example(world):
    """The README's own `q s:scrub AND d:last.month..` shape (last month: 28 to 31 days ago)."""
    store, _reader, env = world
    r = run_cli("q", "--store", str(store), "-f", "jsonl", "s:dated", "AND", "d:last.month..", env=env)
    assert len(_blobs(r.stdout)) == sum(1 for d in RELATIVE if d < 28)
