"""Helper processes (shard writers, analysis workers): they must never outlive the writer, and
what a spawned one runs with.

A writer killed with SIGKILL cannot tell its children to stop, and forked
children keep each other's pipe ends open, so they would never see EOF: a
shard writer left behind keeps Xapian's write lock and blocks the next import.
Linux lets a child ask to be killed when its parent dies.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import functools
import gc
import os
import signal
from pathlib import Path
from typing import Iterator

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


@contextlib.contextmanager
def frozen_heap() -> Iterator[None]:
    """For the span of forked children (the writer's): the objects that exist now are moved out of
    the cyclic garbage collector's reach (gc.freeze), so no collection, in a child or in the parent,
    writes to every inherited object and copies the parent's heap page by page into each child
    (btrfs-10k: 180 -> 173 MB of anonymous memory in all). Unfrozen when the children are gone."""
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


@functools.cache
def _jemalloc() -> str | None:
    """jemalloc's library name when the system has it (Debian: libjemalloc2), else None."""
    return ctypes.util.find_library("jemalloc")


def helper_env() -> dict[str, str]:
    """The environment of a helper started as a fresh interpreter: ours, with this lei_store first
    on its path (the one running, whichever way it was found) and jemalloc preloaded when
    installed. Xapian's inverter allocates and frees small strings for every term of every
    document, where glibc's malloc costs ~13% of an import's CPU (btrfs-10k: 56 -> 49 CPU
    seconds); LEI_STORE_MALLOC=system keeps glibc's."""
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    lib = None if env.get("LEI_STORE_MALLOC") == "system" else _jemalloc()
    if lib:
        env["LD_PRELOAD"] = " ".join(p for p in (env.get("LD_PRELOAD"), lib) if p)
    return env
