"""Writer serialisation on flock'd lock files, compatible with lei (ei.lock).

Only writers lock; readers never do. The holder writes who it is into the
lock file so that a writer that gives up can say whom it waited for. lei
itself leaves the file empty, so an empty file while locked means "lei".
"""

from __future__ import annotations

import os
import sys
import time
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout

from .errors import StoreLockedError

DEFAULT_TIMEOUT = float(os.environ.get("LEI_STORE_LOCK_TIMEOUT", "30"))


def _holder_line() -> bytes:
    since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    cmd = " ".join(os.path.basename(a) if i == 0 else a for i, a in enumerate(sys.argv))
    return f"pid={os.getpid()} since={since} cmd={cmd[:200]}\n".encode()


def describe_holder(path: Path) -> str:
    """Who holds the lock, as far as the file says."""
    try:
        text = path.read_bytes().decode("utf-8", "replace").strip()
    except OSError:
        text = ""
    return text or "another process (no holder info: perhaps lei itself)"


@contextmanager
def locked(path: Path, timeout: float | None = None, what: str = "store"):
    """Hold an exclusive flock on PATH, waiting at most TIMEOUT seconds."""
    timeout = DEFAULT_TIMEOUT if timeout is None else timeout

    def on_acquired(fd: int) -> None:
        os.ftruncate(fd, 0)
        os.pwrite(fd, _holder_line(), 0)

    lock = FileLock(str(path), timeout=timeout, preserve_lock_file=True,
                    on_acquired=on_acquired, thread_local=False)
    try:
        lock.acquire()
    except Timeout:
        raise StoreLockedError(
            f"{what} is locked ({path}) by {describe_holder(path)}; gave up after {timeout:g}s"
        ) from None
    try:
        yield
    finally:
        try:
            os.truncate(path, 0)  # still ours: the flock is released below
        except OSError:
            pass
        lock.release()
