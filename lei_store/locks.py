"""Writer serialisation on flock'd lock files, compatible with lei (ei.lock).

Only writers lock; readers never do. The holder writes who it is into the
lock file so that a writer that gives up can say whom it waited for. lei
itself leaves the file empty (or with the record of a writer killed before it
could empty it), so the record is believed only when its writer holds the
lock; /proc/locks names the real holder.
"""

from __future__ import annotations

import os
import sys
import time
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout

from lei_store.errors import StoreLockedError

DEFAULT_TIMEOUT = float(os.environ.get("LEI_STORE_LOCK_TIMEOUT", "30"))


def _holder_line() -> bytes:
    since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    cmd = " ".join(os.path.basename(a) if i == 0 else a for i, a in enumerate(sys.argv))
    return f"pid={os.getpid()} since={since} cmd={cmd[:200]}\n".encode("utf-8", "backslashreplace")


UNKNOWN_HOLDER = "another process (no holder info: perhaps lei itself)"


def describe_holder(path: Path) -> str:
    """Who holds the lock: the record in the file when its writer really holds it, else the
    process /proc/locks names; without /proc/locks, the record if its process is alive.

    A writer killed with -9 leaves its record behind, and lei (or flock(1)) holding the lock
    next writes none, so a record alone may name a dead process, or a stranger with its pid."""
    try:
        record = " ".join(path.read_bytes()[:400].decode("utf-8", "replace").split())  # one line, whatever is there
    except OSError:
        record = ""
    recorded = _recorded_pid(record)
    holders = flock_holders(path)
    if holders is None:  # no /proc/locks: the record, if its process still lives
        return record if recorded is not None and alive(recorded) else UNKNOWN_HOLDER
    live = sorted(pid for pid in holders if alive(pid))
    if recorded in live:
        return record
    return ", ".join(_describe_process(pid) for pid in live) or UNKNOWN_HOLDER


def _recorded_pid(record: str) -> int | None:
    field = record.split(" ", 1)[0]
    return int(field[4:]) if field.startswith("pid=") and field[4:].isdigit() else None


def _describe_process(pid: int) -> str:
    """"pid=N cmd=..." from /proc/PID/cmdline (on one line, as our own records are)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            argv = f.read().decode("utf-8", "replace").split("\0")
    except OSError:
        return f"pid={pid}"
    cmd = " ".join(" ".join(a.split()) for a in [os.path.basename(argv[0]), *argv[1:]] if a)
    return f"pid={pid} cmd={cmd[:200]}"


def flock_holders(path: Path | str) -> set[int] | None:
    """The pids holding a flock on PATH, from Linux's /proc/locks; None where it cannot be read.

    /proc/locks names the file by its superblock's device and inode number. That device is
    not always stat()'s (btrfs subvolumes), so a holder on another device is believed only
    when it has PATH itself open."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return set()
    except OSError:
        return None
    try:
        with open("/proc/locks") as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    device = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}"
    holders = set()
    for fields in map(str.split, lines):
        # "1: FLOCK  ADVISORY  WRITE 1234 fe:00:5678 0 EOF"; a waiter has "->" after the "1:"
        if len(fields) < 6 or fields[1] != "FLOCK" or not fields[4].isdigit():
            continue
        dev, _, inode = fields[5].rpartition(":")
        if inode == str(st.st_ino) and (dev == device or _has_open(int(fields[4]), st)):
            holders.add(int(fields[4]))
    return holders


def _has_open(pid: int, st: os.stat_result) -> bool:
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return False
    for fd in fds:
        try:
            other = os.stat(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if (other.st_dev, other.st_ino) == (st.st_dev, st.st_ino):
            return True
    return False


def alive(pid: int) -> bool:
    """True while the process exists and is not a zombie (an orphan may wait to be reaped)."""
    if pid <= 0:  # /proc/locks shows 0 for a holder outside our pid namespace; kill(0) means our group
        return False
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        try:
            os.kill(pid, 0)
            return True
        except ProcessLookupError:
            return False
        except PermissionError:  # someone else's process: it exists
            return True


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
