"""Watched Maildirs (lei-add-watch(1)): the list, kept in lei's config as lei keeps it
(`[watch "maildir:/abs"] state = import-rw`, so `lei ls-watch` shows ours and we follow lei's),
and the watch daemon that imports new files and syncs flag renames as they happen.

The daemon is woken by inotify (new/ and cur/ of each Maildir: a delivery's rename out of tmp/,
a reader's flag rename, a deletion; and lei's config file, so a new watch is taken at once).
Each wake-up imports the Maildirs that changed, incrementally: mail_sync says which files are
known, so nothing is read twice and a restart loses nothing. The first pass after a start, and a
pass every SAFETY_SECONDS, look at every watched Maildir whether or not an event came (inotify
queues can overflow; a change may land while the daemon is down). SIGTERM ends it between passes.
"""

from __future__ import annotations

import os
import select
import signal
import sys
import time
from pathlib import Path
from typing import Callable

from inotify_simple import INotify, flags

from lei_store.errors import InputError, LeiStoreError, StoreLockedError
from lei_store.locks import locked
from lei_store.paths import Layout, lei_config_path, user_abspath
from lei_store.sources.maildir import check_maildir

STATE = "import-rw"  # what lei writes: import new mail and sync flags both ways
SAFETY_SECONDS = 60.0
RETRY_SECONDS = 1.0  # how often a watched Maildir that went away is looked for again
SETTLE_SECONDS = 0.05  # events keep coming for a moment after the first (a batch of deliveries)
MAX_SETTLE_SECONDS = 0.3  # ... but the first message of a stream waits no longer than this
# a delivery (MOVED_TO new/), a flag rename (MOVED_FROM/MOVED_TO), a deletion, a file written in
# place and closed; not CREATE, which would read a file still being written
_MAILDIR_MASK = flags.MOVED_TO | flags.MOVED_FROM | flags.DELETE | flags.CLOSE_WRITE
_CONFIG_MASK = flags.MOVED_TO | flags.CLOSE_WRITE | flags.CREATE
_GONE = flags.DELETE_SELF | flags.MOVE_SELF | flags.IGNORED


# -- the list ---------------------------------------------------------------------------

def _config():
    import pygit2

    path = lei_config_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(exist_ok=True)
    try:
        return pygit2.Config(str(path))
    except pygit2.GitError as e:
        raise InputError(f"{path}: lei's config cannot be read ({str(e).splitlines()[0]})") from None


def location(spec: str) -> str:
    """maildir:/abs/path for DIR or maildir:DIR; only Maildirs can be watched (as lei)."""
    kind, sep, rest = spec.partition(":")
    if sep and kind != "maildir":
        raise InputError(f"{spec}: only Maildirs can be watched (maildir:DIR)")
    loc = "maildir:" + (str(user_abspath(rest if sep else spec)).rstrip("/") or "/")
    try:
        loc.encode("utf-8")
    except UnicodeEncodeError:
        raise InputError(f"{spec}: a path that is not UTF-8 cannot be named in lei's config") from None
    return loc


def watches() -> list[str]:
    """Every watched location, as lei's config lists them."""
    found = []
    for entry in _config():
        section, _, rest = entry.name.partition(".")
        loc, _, key = rest.rpartition(".")
        if section == "watch" and key == "state" and loc.startswith("maildir:"):
            found.append(loc)
    return sorted(set(found))


def add_watch(spec: str) -> str:
    loc = location(spec)
    check_maildir(Path(loc[8:]), spec)
    _config()[f"watch.{loc}.state"] = STATE
    return loc


def rm_watch(spec: str) -> str:
    loc = location(spec)
    cfg = _config()
    key = f"watch.{loc}.state"
    if key not in cfg:
        raise InputError(f"{spec}: not watched (see `lei-store ls-watch`)")
    del cfg[key]
    return loc


# -- the daemon ---------------------------------------------------------------------------

class WatchDaemon:
    """Imports the watched Maildirs of the store at LAYOUT as they change, until stopped."""

    def __init__(self, layout: Layout, log: Callable[[str], None] = lambda line: print(line, file=sys.stderr)):
        self.layout = layout
        self.log = log
        self.inotify = INotify()
        self._wd_dir: dict[int, str] = {}  # inotify watch -> the Maildir it is in
        self._watched: dict[str, list[int]] = {}  # Maildir -> its watches
        self._config_wd = -1
        self._missing: set[str] = set()  # watched Maildirs whose new/ or cur/ is not there (retried)
        self._stop_r, self._stop_w = os.pipe()
        os.set_blocking(self._stop_w, False)
        self.stopping = False
        self.passes = 0  # import passes done (for tests and the log)

    def stop(self, *_args) -> None:
        self.stopping = True
        try:
            os.write(self._stop_w, b"x")
        except OSError:
            pass

    # -- what is watched
    def _follow_config(self) -> None:
        cfg = lei_config_path()
        cfg.parent.mkdir(parents=True, exist_ok=True)
        self._config_wd = self.inotify.add_watch(str(cfg.parent), _CONFIG_MASK)

    def _sync_watch_list(self) -> set[str]:
        """Add inotify watches for newly listed Maildirs (and those whose folders came back),
        drop removed ones; the new ones. A config that does not parse (an editor's half-saved
        file) keeps the last list."""
        try:
            wanted = set(watches())
        except InputError as e:
            self.log(f"watch: {e}; still watching what it listed before")
            return set()
        for gone in set(self._watched) - wanted:
            self._unwatch(gone)
        added = set()
        for loc in wanted - {loc for loc, wds in self._watched.items() if len(wds) == 2}:
            self._unwatch(loc)  # a half-watched Maildir (a folder was missing) starts again
            wds = []
            for sub in ("new", "cur"):
                try:
                    wd = self.inotify.add_watch(os.path.join(loc[8:], sub), _MAILDIR_MASK | _GONE)
                except OSError as e:
                    if loc not in self._missing:
                        self.log(f"watch: {loc[8:]}/{sub}: {e.strerror or e} (watched again once it is back)")
                    self._missing.add(loc)
                    continue
                self._wd_dir[wd] = loc
                wds.append(wd)
            self._watched[loc] = wds
            if len(wds) == 2:
                self._missing.discard(loc)
                added.add(loc)
        return added

    def _unwatch(self, loc: str) -> None:
        for wd in self._watched.pop(loc, []):
            self._wd_dir.pop(wd, None)
            try:
                self.inotify.rm_watch(wd)
            except OSError:
                pass

    # -- the loop
    def run(self) -> int:
        """Until SIGTERM/SIGINT (or stop()); the store's watch.lock keeps it to one daemon per store."""
        with locked(self.layout.root / "watch.lock", 0, what="the watch daemon"):
            self._follow_config()
            dirty = self._sync_watch_list()
            next_full = time.monotonic()
            while not self.stopping:
                if time.monotonic() >= next_full:
                    dirty |= set(self._watched)
                    next_full = time.monotonic() + SAFETY_SECONDS
                if dirty:
                    dirty = self._import(dirty)
                    continue
                wake = min(next_full, time.monotonic() + RETRY_SECONDS) if self._missing else next_full
                dirty = self._wait(wake - time.monotonic())
                if self._missing:
                    dirty |= self._sync_watch_list()
        self.inotify.close()
        return 0

    def _wait(self, timeout: float) -> set[str]:
        """The Maildirs that changed (empty on timeout or stop), after the burst settles."""
        ready, _, _ = select.select([self.inotify.fileno(), self._stop_r], [], [], max(0.0, timeout))
        if self._stop_r in ready or not ready:
            return set()
        dirty: set[str] = set()
        deadline = time.monotonic() + MAX_SETTLE_SECONDS
        events = self.inotify.read(timeout=0)
        while True:
            dirty |= self._dirty_from(events)
            left = min(SETTLE_SECONDS, deadline - time.monotonic())
            if left <= 0 or self.stopping:
                return dirty
            events = self.inotify.read(timeout=int(left * 1000))
            if not events:
                return dirty

    def _dirty_from(self, events) -> set[str]:
        dirty = set()
        for e in events:
            if e.mask & flags.Q_OVERFLOW:
                return set(self._watched)  # events were lost: look at everything
            if e.wd == self._config_wd:
                if e.name == "config":
                    dirty |= self._sync_watch_list()
                continue
            loc = self._wd_dir.get(e.wd)
            if loc is None:
                continue
            if e.mask & _GONE:
                self._wd_dir.pop(e.wd, None)
                if e.wd in self._watched.get(loc, []):
                    self._watched[loc].remove(e.wd)
                if loc not in self._missing:
                    self.log(f"watch: {loc[8:]}: a folder of the Maildir went away (watched again once it is back)")
                self._missing.add(loc)
                continue
            if not e.name.startswith("."):
                dirty.add(loc)
        return dirty

    def _import(self, dirty: set[str]) -> set[str]:
        """Import the changed Maildirs through one writer; those to try again (store busy)."""
        from lei_store.ops.imports import Importer
        from lei_store.sources import Source
        from lei_store.write.store import Store

        self.passes += 1
        try:
            with Store.open(self.layout.root).writer(jobs=1, lock_timeout=5) as w:
                for loc in sorted(dirty):
                    before = (w.stats.added + w.stats.attached + w.stats.duplicates, w.stats.renamed)
                    try:
                        Importer(w).import_source(Source("maildir", Path(loc[8:])))
                    except InputError as e:  # the Maildir went away: the others go on
                        self.log(f"watch: {e}")
                        continue
                    w.flush()
                    new = w.stats.added + w.stats.attached + w.stats.duplicates - before[0]
                    renamed = w.stats.renamed - before[1]
                    if new or renamed:
                        self.log(f"watch: {loc[8:]}: {new} new, {renamed} flag changes")
        except StoreLockedError as e:
            self.log(f"watch: {e}; trying again")
            self._pause(1.0)
            return dirty
        except LeiStoreError as e:
            self.log(f"watch: {e}")
            self._pause(5.0)
        return set()

    def _pause(self, seconds: float) -> None:
        select.select([self._stop_r], [], [], seconds)


def run_daemon(layout: Layout) -> int:
    daemon = WatchDaemon(layout)
    signal.signal(signal.SIGTERM, daemon.stop)
    signal.signal(signal.SIGINT, daemon.stop)
    return daemon.run()
