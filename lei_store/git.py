"""Running git: the one place that builds a git command line, runs it, and turns a failure
into the LeiStoreError it is (a full disk, or a plain storage failure).

Everything else in lei_store reaches git through here (pygit2 reads blobs; writing, walking
history and checking go through the git command, which lei uses too).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import IO, Sequence

from lei_store.errors import DiskFullError, LeiStoreError, StorageError, is_disk_full

# Never ask on a terminal (a URL that wants a password fails instead of hanging a cron job).
_ENV = {"GIT_TERMINAL_PROMPT": "0"}


def command(repo: Path | None, args: Sequence[str]) -> list[str]:
    return ["git", *([f"--git-dir={repo}"] if repo is not None else []), *args]


def env(extra: dict[str, str] | None = None) -> dict[str, str]:
    return {**os.environ, **_ENV, **(extra or {})}


def run(repo: Path | None, *args: str, input: bytes | None = None, cwd: Path | None = None,
        extra_env: dict[str, str] | None = None, timeout: float | None = None) -> subprocess.CompletedProcess:
    """Run git; the caller looks at the result (returncode, stdout and stderr as bytes)."""
    return subprocess.run(command(repo, args), input=input, capture_output=True, cwd=cwd,
                          env=env(extra_env), timeout=timeout)


def output(repo: Path | None, *args: str, input: bytes | None = None, what: str = "") -> str:
    """git's stdout (stripped text); a failure raises the error it stands for."""
    r = run(repo, *args, input=input)
    if r.returncode != 0:
        raise failure(repo, args, r.returncode, r.stderr, what)
    return r.stdout.decode("utf-8", "replace").strip()


def ok(repo: Path | None, *args: str) -> bool:
    """Whether git succeeds (for questions: is this an ancestor, does this ref exist)."""
    return run(repo, *args).returncode == 0


def popen(repo: Path | None, *args: str, stdin=None, stderr=subprocess.PIPE) -> subprocess.Popen[bytes]:
    """A git process whose stdout is streamed (log, cat-file --batch, fast-import)."""
    return subprocess.Popen(command(repo, args), stdin=stdin, stdout=subprocess.PIPE, stderr=stderr, env=env())


def pipes(proc: subprocess.Popen[bytes]) -> tuple[IO[bytes], IO[bytes]]:
    """The stdin and stdout of a process started with both as pipes."""
    assert proc.stdin is not None and proc.stdout is not None
    return proc.stdin, proc.stdout


def first_lines(text: bytes | str, n: int = 1) -> str:
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return "; ".join(lines[:n])


def failure(repo: Path | None, args: Sequence[str], code: int, stderr: bytes | str,
            what: str = "") -> LeiStoreError:
    """The error a failed git command stands for."""
    text = stderr.decode("utf-8", "replace") if isinstance(stderr, bytes) else stderr
    where = f" in {repo}" if repo is not None else ""
    doing = what or f"git {args[0] if args else ''}"
    if is_disk_full(text):
        return DiskFullError(f"disk full: {doing} failed{where}")
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    return StorageError(f"{doing} failed{where}: {lines[-1].strip() if lines else f'exit status {code}'}")
