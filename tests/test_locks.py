"""ei.lock: a second writer waits a bounded time, then names the holder (the real one, not a stale
record); a killed holder frees it."""

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


def test_a_foreign_record_stays_on_one_line(tmp_path):
    """Whatever another program left in the file, the message names the holder on one line."""
    lock = tmp_path / "ei.lock"
    holder = _holder(lock)
    try:
        lock.write_text(f"pid={holder.pid} since=x\ncmd=two\nlines\n")
        with pytest.raises(StoreLockedError) as e:
            with locked(lock, 0.1):
                pass
        assert f"pid={holder.pid} since=x cmd=two lines" in str(e.value) and "\n" not in str(e.value)
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


FLOCK = """
import fcntl, sys, time
f = open(sys.argv[1], "a")  # as lei does: flock, and leave the file as it is
fcntl.flock(f, fcntl.LOCK_EX)
print("held", flush=True)
time.sleep(60)
"""


def test_a_dead_writers_record_is_not_named(tmp_path):
    """A writer killed with -9 leaves "pid=..." in ei.lock; when another program (lei, flock(1))
    holds the lock, the message names that program, not the dead pid."""
    env = dict(os.environ, LEI_STORE_DAEMON="0")
    mail = tmp_path / "m.eml"
    mail.write_bytes(b"From: a@example.org\nSubject: x\nMessage-ID: <x@y>\n\nbody\n")
    store = tmp_path / "store"
    lei_store = [sys.executable, "-m", "lei_store", "import", "--store", str(store), "-q"]
    subprocess.run([*lei_store, str(mail)], env=env, cwd=tmp_path, check=True, capture_output=True, timeout=120)
    lock = store / "ei.lock"
    dead = _holder(lock)
    dead.kill()
    dead.wait()
    assert f"pid={dead.pid} " in lock.read_text()
    holder = subprocess.Popen([sys.executable, "-c", FLOCK, str(lock)], stdout=subprocess.PIPE)
    try:
        assert holder.stdout.readline().strip() == b"held"
        r = subprocess.run([*lei_store, "--lock-timeout", "0.5", str(mail)], env=env, cwd=tmp_path,
                           capture_output=True, text=True, timeout=120)
    finally:
        holder.kill()
        holder.wait()
    assert r.returncode == 75 and len(r.stderr.splitlines()) == 1 and "Traceback" not in r.stderr, r.stderr
    assert f"pid={holder.pid} " in r.stderr and "fcntl" in r.stderr
    assert f"pid={dead.pid}" not in r.stderr
