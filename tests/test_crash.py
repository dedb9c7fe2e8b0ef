"""Crash and I/O-error safety: an import killed (SIGKILL) or failing with EIO at each durability
boundary, or killed at a random moment, then run again, leaves every message stored exactly once,
every keyword in place and fsck clean. tools/crash_soak.py runs the long version (50+ random kills)."""

from __future__ import annotations

import random
import subprocess
import sys

import pytest

from conftest import ROOT

sys.path.insert(0, str(ROOT / "tools"))
import crash_soak  # noqa: E402

from lei_store.faults import POINTS  # noqa: E402


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    base = tmp_path_factory.mktemp("crash")
    corpus = crash_soak.make_corpus(base / "corpus")
    store = base / "reference" / "store"
    assert crash_soak.run_all(store, corpus) == [0, 0]
    return corpus, crash_soak.state(store)


@pytest.mark.parametrize("point", POINTS)
def test_sigkill_at_each_boundary(reference, tmp_path, point):
    corpus, ref = reference
    ok, what = crash_soak.check_case(tmp_path, corpus, ref, fault=f"{point}:{crash_soak.NTH[point]}")
    assert ok, what
    assert "-9" in what  # the fault really fired


@pytest.mark.parametrize("point", ["blob-written", "git-checkpoint", "journal-commit", "xapian-commit",
                                   "over-commit"])
def test_io_error_at_a_boundary_is_one_line_and_recoverable(reference, tmp_path, point):
    corpus, ref = reference
    store = tmp_path / "store"
    cmd = crash_soak.imports(store, corpus)[0]
    r = subprocess.run(cmd, env=crash_soak._env(f"{point}:{crash_soak.NTH[point]}:eio"), capture_output=True)
    err = r.stderr.decode()
    assert r.returncode == 74 and err.count("\n") == 1 and "injected I/O error" in err, err
    ok, what = crash_soak.check_case(tmp_path, corpus, ref)
    assert ok, what


@pytest.mark.parametrize("seed", range(6))
def test_sigkill_at_a_random_moment(reference, tmp_path, seed):
    corpus, ref = reference
    ok, what = crash_soak.check_case(tmp_path, corpus, ref, kill_after=random.Random(seed).uniform(0.1, 2.0))
    assert ok, what
