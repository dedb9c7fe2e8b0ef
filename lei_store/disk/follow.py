"""Following the change feed as it grows (rusmes StorageEvent, chatmail's EventBus): an iterator
and an async iterator of Changes after a modseq, woken by inotify when journal.sqlite3 changes
(the writer commits the feed there), never by polling in a loop.

A follower that restarts with the modseq it last saw misses nothing: the feed is durable, and
every change is read from it, in modseq order, exactly once.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path
from typing import AsyncIterator, Iterator

from inotify_simple import INotify, flags

from lei_store.disk.feed import Change, changes
from lei_store.disk.journal import Journal
from lei_store.errors import NotAStoreError

# a commit appends to journal.sqlite3-wal; a checkpoint writes the file itself; a replica's
# journal arrives by rename; the store's folder itself deleted or moved ends the following.
# Not -shm, nor CLOSE_WRITE: a reader (this one too) touches both, and would wake itself forever.
_MASK = flags.MODIFY | flags.MOVED_TO | flags.CREATE | flags.DELETE | flags.MOVED_FROM
_GONE = flags.DELETE_SELF | flags.MOVE_SELF | flags.IGNORED
_FILES = ("journal.sqlite3", "journal.sqlite3-wal")


def _relevant(events) -> bool:
    return any(e.name in _FILES for e in events)
SAFETY_SECONDS = 30.0  # read again now and then even without an event (a missed one costs this much)


class Follower:
    """Changes of the store at ROOT after modseq SINCE, as they happen."""

    def __init__(self, root: Path, since: int = 0):
        self.journal = Path(root) / "journal.sqlite3"
        self.since = since
        self._had_journal = False  # a journal that goes away is an error; one not there yet is awaited
        self._inotify = INotify()
        self._inotify.add_watch(str(self.journal.parent), _MASK | _GONE)

    def close(self) -> None:
        self._inotify.close()

    def pending(self) -> list[Change]:
        """The changes committed after what was last read (read in one snapshot)."""
        if not self.journal.exists():
            self._check_there()
            return []
        self._had_journal = True
        try:
            journal = Journal(self.journal, readonly=True)
        except sqlite3.OperationalError:  # deleted between the check and the open
            self._check_there()
            raise
        try:
            found = list(changes(journal.db, self.since))
        finally:
            journal.db.close()
        if found:
            self.since = found[-1].modseq
        return found

    def _check_there(self) -> None:
        if not self.journal.parent.is_dir():
            raise self._store_gone()
        if self._had_journal:
            raise NotAStoreError(f"{self.journal}: the store's journal is gone (deleted or moved): "
                                 "`lei-store fsck --repair` rebuilds it; then resync")

    def wait(self, timeout: float) -> bool:
        """Wait for the journal to change (at most TIMEOUT seconds); whether it may have."""
        events = self._inotify.read(timeout=max(0, int(timeout * 1000)))
        self._gone(events)
        return _relevant(events)

    def _gone(self, events) -> None:
        if any(e.mask & _GONE for e in events):
            raise self._store_gone()

    def _store_gone(self) -> NotAStoreError:
        return NotAStoreError(f"{self.journal.parent}: the store is gone (deleted or moved)")

    def __iter__(self) -> Iterator[Change]:
        while True:
            yield from self.pending()
            self.sleep(SAFETY_SECONDS)

    def sleep(self, timeout: float) -> None:
        """Until the journal changes, or TIMEOUT seconds passed."""
        deadline = time.monotonic() + timeout
        while not self.wait(deadline - time.monotonic()) and time.monotonic() < deadline:
            pass  # events of no interest (readers touching the WAL's files): keep sleeping

    async def __aiter__(self) -> AsyncIterator[Change]:
        loop = asyncio.get_running_loop()
        woken = asyncio.Event()
        fd = self._inotify.fileno()

        gone: list = []

        def readable() -> None:
            events = self._inotify.read(timeout=0)  # drain: the next change wakes us again
            if any(e.mask & _GONE for e in events):
                gone.append(True)
            if gone or _relevant(events):
                woken.set()

        loop.add_reader(fd, readable)
        try:
            while True:
                if gone:
                    raise self._store_gone()
                for change in self.pending():
                    yield change
                woken.clear()
                try:
                    await asyncio.wait_for(woken.wait(), SAFETY_SECONDS)
                except asyncio.TimeoutError:
                    pass
        finally:
            loop.remove_reader(fd)

