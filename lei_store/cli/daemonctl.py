"""The resident reader seen from outside: is one running (daemon-pid), stop it (daemon-kill)."""

from __future__ import annotations

import os
import signal
import time

from lei_store.cli.protocol import is_private
from lei_store.locks import alive, flock_holders


def pid_of(path: str) -> int | None:
    """The running daemon's pid, from its pid file, if that process is alive and holds the daemon's lock.

    Only a private folder is believed: a pid file in someone else's (or behind a link) could
    name any process of ours for daemon-kill to signal."""
    if not is_private(os.path.dirname(path)):
        return None
    try:
        with open(path + ".pid") as f:
            pid = int(f.read())
    except (OSError, ValueError):
        return None
    if not alive(pid):
        return None
    holders = flock_holders(path + ".lock")  # a daemon killed with -9 leaves its pid file, whose pid may be reused
    return pid if holders is None or pid in holders else None


def kill(path: str, timeout: float = 5.0) -> int | None:
    """Stop the daemon (SIGTERM) and wait for it to end; its pid, or None if none ran."""
    pid = pid_of(path)
    if pid is None:
        return None
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    return pid
