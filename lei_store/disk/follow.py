"""Following the change feed as it grows (rusmes StorageEvent, chatmail's EventBus): an iterator
and an async iterator of Changes after a modseq, woken by inotify when journal.sqlite3 changes
(the writer commits the feed there), never by polling in a loop.

A follower that restarts with the modseq it last saw misses nothing: the feed is durable, and
every change is read from it, in modseq order, exactly once.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import AsyncIterator, Iterator

from inotify_simple import INotify, flags

from lei_store.disk.feed import Change, changes
from lei_store.sqlite import connect_ro

# a commit appends to journal.sqlite3-wal; a checkpoint writes the file itself; a replica's
# journal arrives by rename
_MASK = flags.MODIFY | flags.CLOSE_WRITE | flags.MOVED_TO | flags.CREATE
SAFETY_SECONDS = 30.0  # read again now and then even without an event (a missed one costs this much)


class Follower:
    """Changes of the store at ROOT after modseq SINCE, as they happen."""

    def __init__(self, root: Path, since: int = 0):
        self.journal = Path(root) / "journal.sqlite3"
        self.since = since
        self._inotify = INotify()
        self._inotify.add_watch(str(self.journal.parent), _MASK)

    def close(self) -> None:
        self._inotify.close()

    def pending(self) -> list[Change]:
        """The changes committed after what was last read (read in one snapshot)."""
        if not self.journal.exists():
            return []
        db = connect_ro(self.journal)
        try:
            found = list(changes(db, self.since))
        finally:
            db.close()
        if found:
            self.since = found[-1].modseq
        return found

    def wait(self, timeout: float) -> bool:
        """Wait for the journal to change (at most TIMEOUT seconds); whether it may have."""
        events = self._inotify.read(timeout=int(timeout * 1000))
        return any(e.name.startswith("journal.sqlite3") for e in events)

    def __iter__(self) -> Iterator[Change]:
        while True:
            yield from self.pending()
            self.wait(SAFETY_SECONDS)

    async def __aiter__(self) -> AsyncIterator[Change]:
        loop = asyncio.get_running_loop()
        woken = asyncio.Event()
        fd = self._inotify.fileno()

        def readable() -> None:
            self._inotify.read(timeout=0)  # drain: the next change wakes us again
            woken.set()

        loop.add_reader(fd, readable)
        try:
            while True:
                for change in self.pending():
                    yield change
                woken.clear()
                try:
                    await asyncio.wait_for(woken.wait(), SAFETY_SECONDS)
                except asyncio.TimeoutError:
                    pass
        finally:
            loop.remove_reader(fd)

