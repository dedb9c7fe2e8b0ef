"""ei.lock: a second writer waits a bounded time, then names the holder; a killed holder frees it."""

import os
import signal
import subprocess
import sys
import time

import pytest

from lei_store.errors import StoreLockedError
from lei_store.locks import locked

HOLD = """
import sys, time
from pathlib import Path
from lei_store.locks import locked
with locked(Path(sys.argv[1]), 5):
    print("held", flush=True)
    time.sleep(60)
"""


def _holder(path):
    p = subprocess.Popen([sys.executable, "-c", HOLD, str(path), "import", "x"], stdout=subprocess.PIPE)
    assert p.stdout.readline().strip() == b"held"
    return p


def test_second_writer_times_out_naming_the_holder(tmp_path):
    lock = tmp_path / "ei.lock"
    holder = _holder(lock)
    try:
        t0 = time.monotonic()
        with pytest.raises(StoreLockedError) as e:
            with locked(lock, 0.5):
                pass
        assert 0.4 < time.monotonic() - t0 < 5
        assert f"pid={holder.pid}" in str(e.value) and "since=" in str(e.value)
    finally:
        holder.kill()
        holder.wait()


def test_killed_holder_does_not_block_the_next_writer(tmp_path):
    lock = tmp_path / "ei.lock"
    holder = _holder(lock)
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
    with locked(lock, 2):
        assert f"pid={os.getpid()}" in lock.read_text()
    assert lock.exists() and lock.read_text() == ""  # kept for lei, emptied on release


def test_flock_excludes_lei_style_lockers(tmp_path):
    """lei flock()s the same file: our holder must exclude a plain flock on it."""
    import fcntl

    lock = tmp_path / "ei.lock"
    with locked(lock, 1):
        fd = os.open(lock, os.O_RDWR)
        with pytest.raises(BlockingIOError):
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.close(fd)
