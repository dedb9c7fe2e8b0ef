"""Where a store lives and what its files are called (lei-store-format(5) §1).

Discovery follows lei: `leistore.dir` in the lei config file, else
`$XDG_DATA_HOME/lei/store`, else `~/.local/share/lei/store`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

SCHEMA_VERSION = 15  # the "15" in ei15/


def lei_config_path(env: os._Environ | dict = os.environ) -> Path:
    """lei's config file: $XDG_CONFIG_HOME/lei/config or ~/.config/lei/config."""
    base = env.get("XDG_CONFIG_HOME") or os.path.join(env.get("HOME", "~"), ".config")
    return Path(os.path.expanduser(base)) / "lei" / "config"


def _configured_store_dir(env) -> Path | None:
    cfg = lei_config_path(env)
    if not cfg.exists():
        return None
    import pygit2  # lazy: most commands never need it here

    try:
        value = pygit2.Config(str(cfg))["leistore.dir"]
    except (KeyError, pygit2.GitError):
        return None
    return Path(os.path.expanduser(value)) if value else None


def user_abspath(path: str | Path) -> Path:
    """An absolute path as the user's shell sees it: a relative one is joined to $PWD when that
    is the working directory (a path through a symlink stays so, as lei names it), else to it."""
    path = os.path.expanduser(str(path))
    if not os.path.isabs(path):
        pwd = os.environ.get("PWD", "")
        try:
            if pwd and os.path.isabs(pwd) and os.path.samefile(pwd, "."):
                return Path(os.path.normpath(os.path.join(pwd, path)))
        except OSError:
            pass
    return Path(os.path.abspath(path))


def lei_data_dir(env: os._Environ | dict = os.environ) -> Path:
    """lei's data directory: $XDG_DATA_HOME/lei or ~/.local/share/lei."""
    base = env.get("XDG_DATA_HOME") or os.path.join(env.get("HOME", "~"), ".local", "share")
    return Path(os.path.expanduser(base)) / "lei"


def default_store_dir(env: os._Environ | dict = os.environ) -> Path:
    """The store lei itself would use in this environment."""
    configured = _configured_store_dir(env)
    if configured is not None:
        return configured
    return lei_data_dir(env) / "store"


def saved_searches_dir(env: os._Environ | dict = os.environ) -> Path:
    """Where lei keeps saved searches (lei-up(1)), whichever store they search."""
    return lei_data_dir(env) / "saved-searches"


def record_store_dir(store_dir: Path, env: os._Environ | dict = os.environ) -> None:
    """Write leistore.dir into lei's config, as `lei init DIR` does."""
    import pygit2

    cfg = lei_config_path(env)
    cfg.parent.mkdir(parents=True, exist_ok=True)
    cfg.touch(exist_ok=True)
    pygit2.Config(str(cfg))["leistore.dir"] = str(store_dir)


def new_store_shard_count(env: os._Environ | dict = os.environ) -> int:
    """max(2, n - 1) shards, n = $NPROC or online CPUs capped at 4: lei's max(1, n - 1) but never
    one shard. Each shard has its own writer process, and with one shard that process is the whole
    import's critical path (31 of 34 s on btrfs-10k with 2 CPUs; 2 shards: 30 s instead of 37 s).
    lei reads a store with any number of shards."""
    try:
        n = int(env.get("NPROC") or 0)
    except ValueError:
        n = 0
    if n <= 0:
        n = min(os.cpu_count() or 2, 4)
    return max(2, n - 1)


class Layout(NamedTuple):
    """The paths inside one store directory."""

    root: Path
    ei_name: str = f"ei{SCHEMA_VERSION}"  # reindex builds a replacement beside it

    @property
    def local(self) -> Path:
        return self.root / "local"

    def epoch(self, n: int) -> Path:
        return self.local / f"{n}.git"

    @property
    def all_git(self) -> Path:
        return self.root / "ALL.git"

    @property
    def ei(self) -> Path:
        return self.root / self.ei_name

    @property
    def over(self) -> Path:
        return self.ei / "over.sqlite3"

    def shard(self, i: int) -> Path:
        return self.ei / str(i)

    @property
    def misc(self) -> Path:
        return self.ei / "misc"

    @property
    def mail_sync(self) -> Path:
        return self.root / "mail_sync.sqlite3"

    @property
    def mail_sync_lock(self) -> Path:
        return self.root / "mail_sync.sqlite3.flock"

    @property
    def journal(self) -> Path:
        """lei_store's keyword/label journal (journal.py); lei ignores it."""
        return self.root / "journal.sqlite3"

    @property
    def writer_lock(self) -> Path:
        return self.root / "ei.lock"

    def alternates(self) -> str:
        """What ALL.git/objects/info/alternates must say: every epoch, newest first (§2.6)."""
        return "".join(f"../../local/{n}.git/objects\n" for n in reversed(self.epoch_numbers()))

    def epoch_numbers(self) -> list[int]:
        """Existing epochs, ascending."""
        if not self.local.is_dir():
            return []
        nums = []
        for entry in os.listdir(self.local):
            stem, dot, ext = entry.partition(".")
            if ext == "git" and stem.isdigit():
                nums.append(int(stem))
        return sorted(nums)

    def shard_count(self) -> int:
        """Shards of an existing store: 0..m for the largest all-digit entry m in ei15/."""
        if not self.ei.is_dir():
            return 0
        digits = [int(e) for e in os.listdir(self.ei) if e.isdigit()]
        return max(digits) + 1 if digits else 0

    def is_store(self) -> bool:
        return self.ei.is_dir() and self.all_git.is_dir()


def existing_store(root: Path) -> Layout:
    """The layout of a store that must already exist (for readers, which never create one)."""
    from lei_store.errors import NotAStoreError

    layout = Layout(Path(root).absolute())
    if layout.is_store():
        return layout
    if not layout.root.exists():
        raise NotAStoreError(f"{layout.root}: no store here (run `lei-store init {layout.root}`)")
    raise NotAStoreError(f"{layout.root}: not a lei store (no ALL.git/ and ei15/)")
