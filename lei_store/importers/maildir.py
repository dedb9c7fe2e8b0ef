"""Maildir input: new/ then cur/, info flags as keywords (spec §7.3, §10.1)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Iterator, NamedTuple

from ..errors import InputError
from ..keywords import maildir_keywords
from . import Item


class Entry(NamedTuple):
    subdir: str  # "new" or "cur"
    name: str  # basename, including any :2,FLAGS suffix
    keywords: frozenset[str]


def _flags(name: str) -> str | None:
    """The info letters of a basename, '' when it has none, None when the suffix is foreign."""
    if ":" not in name:
        return ""
    info = name.split(":", 1)[1]
    return info[2:] if info.startswith("2,") and info[2:].isalpha() or info == "2," else None


def list_entries(path: Path) -> list[Entry]:
    """Every importable file: dotfiles, trashed (T) files and foreign suffixes are left out."""
    entries = []
    for subdir in ("new", "cur"):
        try:
            names = os.listdir(path / subdir)
        except FileNotFoundError:
            continue
        for name in names:
            if name.startswith(".") or name.count(":") > 1:
                continue
            flags = _flags(name)
            if flags is None or "T" in flags:
                continue
            entries.append(Entry(subdir, name, maildir_keywords(flags)))
    return entries


def read_items(path: Path, folder: str, entries: Iterable[Entry]) -> Iterator[Item]:
    """Read the files; a file that vanished since listing is skipped (it was moved or deleted)."""
    base = str(path)
    for e in entries:
        file = os.path.join(base, e.subdir, e.name)
        try:
            with open(file, "rb") as f:
                raw = f.read()
        except FileNotFoundError:
            if not os.path.isdir(os.path.join(base, e.subdir)):  # the whole Maildir went away
                raise InputError(f"{base}: the Maildir vanished during the import "
                                 "(what was read before is stored)") from None
            continue
        yield Item(raw, e.keywords, folder=folder, name=e.name, origin=file)
