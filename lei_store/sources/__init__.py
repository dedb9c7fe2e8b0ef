"""The user's mail as a stream of Items: Maildirs, mboxes (four variants, compressed or not),
single messages and IMAP folders, read, never changed (but for flag renames of Maildir files).

Each format lives in its own module; `resolve()` maps a command-line input
(`maildir:DIR`, `mboxrd:FILE`, a path, `-F FORMAT`) to a Source.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from lei_store.errors import InputError, UnknownFormatError
from lei_store.sources.items import DEFAULT_MAX_SIZE, MBOX_FORMATS, Item, ReadOptions

__all__ = ["DEFAULT_MAX_SIZE", "FORMATS", "Item", "MBOX_FORMATS", "ReadOptions", "Source", "read_source",
           "resolve"]

FORMATS = ("maildir", "eml") + MBOX_FORMATS
@dataclass(frozen=True)
class Source:
    """One input to read: a format and a path (None: stdin), or an IMAP URL."""
    fmt: str  # one of FORMATS, or "imap"
    path: Path | None  # None for standard input and IMAP
    url: str | None = None  # imap:// or imaps:// mailbox URL


def _sniff(path: Path) -> str:
    if path.is_dir():
        return "maildir"  # resolve() checks that it is one
    name = path.name
    for ext in (".gz", ".bz2", ".xz"):
        name = name.removesuffix(ext)
    if name.endswith((".eml", ".patch")):
        return "eml"
    from lei_store.sources.compression import open_input

    with open_input(path) as f:
        head = f.read(5)
    return "mboxrd" if head == b"From " else "eml"


def _check_file(path: Path, spec: str) -> None:
    """A file input must be something that ends (not a FIFO or a device) and hold data."""
    import stat

    mode = path.stat().st_mode
    if not stat.S_ISREG(mode):
        raise InputError(f"{spec}: not a regular file (give a Maildir, an mbox or a message file; "
                         "use --stdin for a pipe)")
    if path.stat().st_size == 0:
        raise InputError(f"{spec}: empty file, no message in it")
    from lei_store.sources.compression import check_compression

    check_compression(path, spec)


def resolve(spec: str, in_format: str | None = None) -> Source:
    """Map an input argument to a Source, checking that it exists and is readable."""
    fmt, sep, rest = spec.partition(":")
    if sep and fmt in FORMATS and not os.path.exists(spec):
        spec, in_format = rest, fmt
    if in_format is not None and in_format not in FORMATS:
        raise UnknownFormatError(f"unknown format {in_format!r} (known: {', '.join(FORMATS)})")
    if spec.lower().startswith(("imap://", "imaps://")):
        from lei_store.sources.imap import parse_url

        parse_url(spec)  # a malformed URL fails here, before anything is opened
        return Source("imap", None, spec)
    if "://" in spec:
        raise InputError(f"{spec}: only imap:// and imaps:// URLs are supported")
    path = Path(spec)
    if not path.exists():
        raise InputError(f"{spec}: no such file or directory")
    if not os.access(path, os.R_OK):
        raise InputError(f"{spec}: permission denied")
    if not path.is_dir():
        _check_file(path, spec)
    fmt = in_format or _sniff(path)
    if fmt == "maildir" and not path.is_dir():
        raise InputError(f"{spec}: not a Maildir directory")
    if fmt == "maildir":
        from lei_store.sources.maildir import check_maildir

        check_maildir(path, spec)
    if fmt != "maildir" and path.is_dir():
        raise InputError(f"{spec}: is a directory, not a {fmt} file")
    return Source(fmt, path)


def read_source(source: Source, opts: ReadOptions = ReadOptions()) -> Iterator[Item]:
    """Every message of a source, with its flags (no mail_sync: for matching, not importing)."""
    import sys

    from lei_store.sources import eml, maildir, mbox
    from lei_store.sources.compression import open_input

    if source.fmt == "maildir":
        assert source.path is not None
        yield from maildir.read_items(source.path, None, maildir.list_entries(source.path, opts), opts)
    elif source.path is None:
        stream = sys.stdin.buffer
        yield from (eml.read_eml(stream, "<stdin>", opts) if source.fmt == "eml"
                    else mbox.read_mbox(stream, source.fmt, "<stdin>", opts))
    elif source.fmt == "eml":
        with open_input(source.path) as f:
            yield from eml.read_eml(f, str(source.path), opts)
    else:
        yield from mbox.read_mbox_path(source.path, source.fmt, opts)
