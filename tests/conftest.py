"""Shared fixtures: hermetic environments, the sample corpus, the shared corpora, real lei."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
from contextlib import contextmanager
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
CORPORA = SHARED / "corpora"


def need(condition: bool, reason: str) -> None:
    """Skip when a peer or data set is missing; in CI (LEI_STORE_REQUIRE_PEERS=1) fail instead."""
    if condition:
        return
    if os.environ.get("LEI_STORE_REQUIRE_PEERS") == "1":
        pytest.fail(f"required in CI: {reason}")
    pytest.skip(reason)


def need_corpus(name: str) -> Path:
    path = CORPORA / name
    if not path.exists():
        pytest.skip(f"{path} is absent (the shared corpora live beside the project checkout)")
    return path


def need_lei() -> str:
    lei = shutil.which("lei")
    need(lei is not None, "Debian's lei is not installed (tools/install-peers.sh installs it)")
    return lei


@pytest.fixture(scope="session")
def scratch_cwd(tmp_path_factory) -> Path:
    """A working directory outside any git checkout: users run lei-store from their home or /tmp,
    and a bug that only shows there (git needing a repository) hid from tests run in ours."""
    cwd = tmp_path_factory.mktemp("cwd")
    inside = subprocess.run(["git", "rev-parse", "--is-inside-work-tree"], cwd=cwd, capture_output=True)
    assert inside.returncode != 0, f"{cwd} is inside a git work tree; tests must run outside one"
    return cwd


@pytest.fixture(autouse=True)
def hermetic_env(tmp_path_factory, monkeypatch, scratch_cwd):
    """Every test gets its own HOME and XDG dirs, so no real store or config is touched, and runs
    from a directory outside any git checkout (tests that need another cwd pass it)."""
    monkeypatch.chdir(scratch_cwd)
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    for var in ("XDG_DATA_HOME", "XDG_CONFIG_HOME", "XDG_CACHE_HOME"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("GIT_COMMITTER_NAME", "lei test")
    monkeypatch.setenv("GIT_COMMITTER_EMAIL", "lei@example.test")
    monkeypatch.setenv("NPROC", "2")
    # no resident reader per test (test_daemon.py runs it on purpose); commands run in-process
    monkeypatch.setenv("LEI_STORE_DAEMON", "0")
    yield home


@pytest.fixture(scope="session")
def sample_corpus(tmp_path_factory) -> Path:
    """The project's own synthetic corpus (tools/make_sample_corpus.py)."""
    out = tmp_path_factory.mktemp("sample")
    subprocess.run([sys.executable, str(ROOT / "tools" / "make_sample_corpus.py"), str(out)],
                   check=True, capture_output=True)
    return out


def copy_maildir(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


@pytest.fixture(scope="session")
def small_corpus(tmp_path_factory) -> Path:
    """../shared/corpora/small.tar.xz unpacked once per session (copy before handing it to lei)."""
    archive = need_corpus("small.tar.xz")
    out = tmp_path_factory.mktemp("small")
    with tarfile.open(archive) as tar:
        tar.extractall(out, filter="data")
    return out


def run_cli(*args: str, input: bytes | None = None, env: dict | None = None,
            check: bool = True, timeout: float = 900) -> subprocess.CompletedProcess:
    """Run the real console entry point in a subprocess (from the test's cwd: outside any checkout)."""
    r = subprocess.run([sys.executable, "-m", "lei_store", *args], input=input, timeout=timeout,
                       capture_output=True, env=env or os.environ.copy())
    if check and r.returncode != 0:
        raise AssertionError(f"lei-store {' '.join(args)} exited {r.returncode}: {r.stderr.decode()}")
    return r


class Lei:
    """Real Debian lei in a private HOME and runtime dir; its daemon is killed at teardown."""

    def __init__(self, base: Path):
        self.home = base / "home"
        run = base / "run"
        self.home.mkdir(parents=True)
        run.mkdir(mode=0o700)
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("XDG_")}
        self.env.update(HOME=str(self.home), XDG_RUNTIME_DIR=str(run), NPROC="2",
                        GIT_COMMITTER_NAME="lei test", GIT_COMMITTER_EMAIL="lei@example.test", TZ="UTC")

    @property
    def store(self) -> Path:
        return self.home / ".local" / "share" / "lei" / "store"

    def __call__(self, *args: str, input: bytes | None = None, check: bool = True) -> subprocess.CompletedProcess:
        r = subprocess.run(["lei", *args], input=input, capture_output=True, env=self.env, timeout=600)
        if check and r.returncode != 0:
            raise AssertionError(f"lei {' '.join(args)} exited {r.returncode}: {r.stderr.decode()}")
        return r

    def blobs(self, *query: str) -> set[str]:
        """The blobs real `lei q` finds for QUERY."""
        out = self("q", "-f", "jsonl", "--dedupe=none", *query).stdout.decode()
        return {json.loads(line)["blob"] for line in out.splitlines() if line.strip() and line != "null"}

    def close(self) -> None:
        subprocess.run(["lei", "daemon-kill"], env=self.env, capture_output=True, timeout=60)


@pytest.fixture
def lei(tmp_path):
    need_lei()
    handle = Lei(tmp_path / "lei")
    yield handle
    handle.close()


@pytest.fixture
def dovecot(tmp_path):
    """A real Dovecot IMAP server on 127.0.0.1 (tests/dovecot.py), torn down after the test."""
    from dovecot import DovecotUnavailable, start_dovecot

    need(shutil.which("dovecot") is not None, "dovecot-imapd is not installed (tools/install-peers.sh installs it)")
    try:
        server = start_dovecot(tmp_path / "dovecot")
    except DovecotUnavailable as e:
        need(False, str(e))
    yield server
    server.stop()


@contextmanager
def small_tmpfs(mnt: Path, size: str):
    """A tmpfs of SIZE mounted at MNT (root only; skipped elsewhere): a disk that fills up for real."""
    need(os.geteuid() == 0, "mounting a small tmpfs needs root")
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mnt)], capture_output=True)
    need(r.returncode == 0, f"cannot mount a tmpfs here: {r.stderr.decode().strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


@contextmanager
def as_unprivileged_user(tmp_root: Path):
    """(command prefix, a directory that user owns): a real unprivileged user, so that file modes
    mean something. As root (CI) that is `nobody` through setpriv; otherwise the caller itself."""
    import tempfile

    if os.geteuid() != 0:
        yield [], tmp_root
        return
    need(shutil.which("setpriv") is not None, "setpriv (util-linux) is needed to drop root")
    base = Path(tempfile.mkdtemp(prefix="lei-store-nobody-", dir="/tmp"))  # tmp_path's parents are 0700
    try:
        base.chmod(0o755)
        os.chown(base, 65534, 65534)
        yield ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"], base
    finally:
        shutil.rmtree(base, ignore_errors=True)
