"""Maildir input: new/ then cur/, info flags as keywords (spec §7.3, §10.1).

Only regular files are messages. Anything else in cur/ or new/ (a directory, a FIFO, a
device, a symlink: it could point anywhere, /etc/passwd included, and would then travel
with every clone and backup of the store) is skipped and named, as is a file that cannot
be read or is larger than the size limit; the rest of the Maildir is still imported.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path
from typing import Iterable, Iterator, NamedTuple

from lei_store.errors import InputError
from lei_store.mail.keywords import maildir_flags, maildir_keywords
from lei_store.sources.items import Item, ReadOptions

SUBDIRS = ("new", "cur")
# open() never follows a symlink nor waits on a FIFO's writer; fstat() then says what it is
_OPEN_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)


class Entry(NamedTuple):
    """A message file found in a Maildir, with the keywords its name's flags give."""
    subdir: str  # "new" or "cur"
    name: str  # basename, including any :2,FLAGS suffix
    keywords: frozenset[str]


def check_maildir(path: Path, spec: str) -> None:
    """A Maildir has cur/ or new/ as real directories; anything else is not one (one clear error)."""
    if not any(os.path.isdir(path / sub) and not os.path.islink(path / sub) for sub in SUBDIRS):
        raise InputError(f"{spec}: not a Maildir (no cur/ or new/ directory in it)")


# -- names: BASE[:2,FLAGS] (https://cr.yp.to/proto/maildir.html) --------------------------

def info_letters(name: str) -> str | None:
    """The info letters of a basename, '' when it has none, None when the suffix is foreign."""
    if ":" not in name:
        return ""
    info = name.split(":", 1)[1]
    return info[2:] if info.startswith("2,") and info[2:].isalpha() or info == "2," else None


def base_name(name: str) -> str:
    """The part of a basename that never changes (flags come and go after the colon)."""
    return name.partition(":")[0]


def name_for(name: str, keywords: Iterable[str], *, merge: bool = False) -> str:
    """The basename a file should have for these keywords; merge keeps flags it already has."""
    old = info_letters(name) or ""
    kws = set(keywords) | (set(maildir_keywords(old)) if merge else set())
    return f"{base_name(name)}:2,{maildir_flags(kws, keep=old)}"


def subdirs_for(name: str) -> tuple[str, str]:
    """Where to look for a file first: a name with flags was last seen in cur/, one without in new/."""
    return ("cur", "new") if ":2," in name else ("new", "cur")


def names(path: str) -> dict[str, str]:
    """basename -> subdirectory for every file of a Maildir (dotfiles left out)."""
    found = {}
    for sub in SUBDIRS:
        try:
            for name in os.listdir(os.path.join(path, sub)):
                if not name.startswith("."):
                    found[name] = sub
        except FileNotFoundError:
            pass
    return found


# -- renames: the only change ever made to a user's Maildir ---------------------------------

GONE = object()  # the file is no longer there under any subdirectory


def _move(src: str, dst: str) -> None:
    """Rename without ever replacing an existing file (link+unlink; rename where links fail)."""
    try:
        os.link(src, dst)
    except OSError as e:
        if e.errno not in (errno.EPERM, errno.EXDEV, errno.EMLINK, errno.ENOTSUP):
            raise
        if os.path.lexists(dst):
            raise FileExistsError(errno.EEXIST, "exists", dst) from None
        os.rename(src, dst)
        return
    os.unlink(src)


def rename(maildir: str, name: str, new_name: str):
    """Move the file called NAME (in cur/ or new/) to cur/NEW_NAME.

    Returns the name it has afterwards: NEW_NAME, NAME when another file already
    holds NEW_NAME, or GONE when NAME is in neither subdirectory."""
    for sub in subdirs_for(name):
        src = os.path.join(maildir, sub, name)
        dst = os.path.join(maildir, "cur", new_name)
        if src == dst:
            return name if os.path.exists(src) else GONE
        try:
            _move(src, dst)
        except FileNotFoundError:
            continue
        except FileExistsError:
            return name
        return new_name
    return GONE


# -- reading -----------------------------------------------------------------------------


def _kind(mode: int) -> str:
    for test, what in ((stat.S_ISDIR, "a directory"), (stat.S_ISLNK, "a symlink"), (stat.S_ISFIFO, "a FIFO"),
                       (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a device"), (stat.S_ISBLK, "a device")):
        if test(mode):
            return what
    return "not a regular file"


def list_entries(path: Path, opts: ReadOptions = ReadOptions()) -> list[Entry]:
    """Every importable file: dotfiles, trashed (T) files and foreign suffixes are left out;
    entries that are not regular files are skipped and named."""
    entries: list[Entry] = []
    for subdir in SUBDIRS:
        folder = path / subdir
        if os.path.islink(folder):
            opts.on_skip(str(folder), "a symlink, not a Maildir subdirectory (not followed)")
            continue
        try:
            scan = os.scandir(folder)  # iterated, not listed: 65,000 DirEntry objects held at once cost ~10 MB
        except FileNotFoundError:
            continue
        except OSError as err:
            opts.on_skip(str(folder), err.strerror or str(err))
            continue
        with scan:
            _add_entries(scan, folder, opts, entries)
    return entries


def _add_entries(scan: Iterator[os.DirEntry], folder: Path, opts: ReadOptions, entries: list[Entry]) -> None:
    """The importable files of one scandir() of FOLDER (new/ or cur/), appended to ENTRIES."""
    subdir = folder.name
    try:
        for e in scan:
            name = e.name
            if name.startswith(".") or name.count(":") > 1:
                continue
            flags = info_letters(name)
            if flags is None or "T" in flags:
                continue
            try:
                if not e.is_file(follow_symlinks=False):
                    opts.on_skip(e.path, f"{_kind(e.stat(follow_symlinks=False).st_mode)}, not a message file")
                    continue
            except FileNotFoundError:  # gone since the listing
                continue
            except OSError as err:
                opts.on_skip(e.path, err.strerror or str(err))
                continue
            entries.append(Entry(subdir, name, maildir_keywords(flags)))
    except OSError as err:  # reading the folder itself failed: what was listed is kept
        opts.on_skip(str(folder), err.strerror or str(err))


def read_file(file: str, max_size: int) -> bytes | str:
    """A message file's bytes, or why it cannot be taken (not a regular file: a symlink is not
    followed, a FIFO not waited on; unreadable; too large); FileNotFoundError when it vanished."""
    try:
        fd = os.open(file, _OPEN_FLAGS)
    except OSError as e:
        if e.errno == errno.ENOENT:
            raise
        return "a symlink, not followed" if e.errno == errno.ELOOP else (e.strerror or str(e))
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):  # replaced since the listing
            return f"{_kind(st.st_mode)}, not a message file"
        if st.st_size > max_size:
            return f"{st.st_size} bytes, over the {max_size}-byte limit (--max-size)"
        try:
            data = f.read(max_size + 1)
        except OSError as e:
            return e.strerror or str(e)
    if len(data) > max_size:  # it grew while we read
        return f"over the {max_size}-byte limit (--max-size)"
    return data


def read_items(path: Path, folder: str | None, entries: Iterable[Entry],
               opts: ReadOptions = ReadOptions()) -> Iterator[Item]:
    """Read the files; one that vanished since listing is passed over (it was moved or deleted),
    one that cannot be taken is skipped and named."""
    base = str(path)
    for e in entries:
        file = os.path.join(base, e.subdir, e.name)
        try:
            raw = read_file(file, opts.max_size)
        except FileNotFoundError:
            if not os.path.isdir(os.path.join(base, e.subdir)):  # the whole Maildir went away
                raise InputError(f"{base}: the Maildir vanished during the import "
                                 "(what was read before is stored)") from None
            continue
        if isinstance(raw, str):
            opts.on_skip(file, raw)
            continue
        yield Item(raw, e.keywords, folder=folder, name=e.name, origin=file)
