"""Helper processes (shard writers, analysis workers): how they are started, and that they never
outlive the writer.

They are fresh interpreters (`python -P -m MODULE`), not forks of the writer: a fork inherits the
writer's heap and copies it page by page as either side touches it (~37 MB in each, btrfs-10k),
and a fresh process can run with another allocator (helper_env).

A writer killed with SIGKILL cannot tell its helpers to stop, and a shard writer left behind
keeps Xapian's write lock and blocks the next import. Linux lets a child ask to be killed when its
parent dies.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
import signal
import subprocess
import sys
from pathlib import Path

PR_SET_PDEATHSIG = 1


def die_with_parent(parent: int) -> None:
    """Call first thing in a forked child (PARENT: the forking pid): SIGKILL it when the parent exits."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):  # not Linux: the shard writer's poll loop still notices
        pass
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)


@functools.cache
def _jemalloc() -> str | None:
    """jemalloc's library name when the system has it (Debian: libjemalloc2), else None."""
    return ctypes.util.find_library("jemalloc")


def helper_env() -> dict[str, str]:
    """The environment of a helper started as a fresh interpreter: ours, with this lei_store first
    on its path (the one running, whichever way it was found) and jemalloc preloaded when
    installed. Xapian's inverter allocates and frees small strings for every term of every
    document: glibc's malloc took 12% of a btrfs-10k import's CPU samples, jemalloc takes half
    that (README, Benchmarks). LEI_STORE_MALLOC=system keeps glibc's."""
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    lib = None if env.get("LEI_STORE_MALLOC") == "system" else _jemalloc()
    if lib:
        env["LD_PRELOAD"] = " ".join(p for p in (env.get("LD_PRELOAD"), lib) if p)
    return env


def spawn(module: str, args: list[str], fd: int) -> subprocess.Popen:
    """Start `python -P -m MODULE ARGS` with FD (its end of a socket pair) open. -P: no lei_store or
    xapian.py of the current directory stands in for ours. The interpreter is this process's own
    (/proc/self/exe: its path may not be reachable again, as for a run that dropped privileges),
    named as sys.executable so a virtualenv is still found."""
    exe = "/proc/self/exe" if os.path.exists("/proc/self/exe") else sys.executable
    return subprocess.Popen([sys.executable, "-P", "-m", module, *args], executable=exe, pass_fds=[fd],
                            stdin=subprocess.DEVNULL, env=helper_env())


def reap(procs: list[subprocess.Popen], timeout: float = 60) -> None:
    """Wait for helpers told to exit; one still running after TIMEOUT seconds is killed."""
    for proc in procs:
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
