"""Transparent, streaming decompression of .gz, .bz2 and .xz inputs."""

from __future__ import annotations

import bz2
import gzip
import lzma
from pathlib import Path
from typing import BinaryIO, cast

from lei_store.errors import InputError

_MAGIC = ((b"\x1f\x8b", gzip.open), (b"BZh", bz2.open), (b"\xfd7zXZ\x00", lzma.open))
_SUFFIX_MAGIC = {".gz": b"\x1f\x8b", ".bz2": b"BZh", ".xz": b"\xfd7zXZ\x00"}


def _head(path: Path) -> bytes:
    with open(path, "rb") as f:
        return f.read(6)


def check_compression(path: Path, spec: str) -> None:
    """A file named .gz/.bz2/.xz must hold that kind of data: read as plain text it would be
    stored as a message of garbage, or found to hold none."""
    magic = _SUFFIX_MAGIC.get(path.suffix)
    if magic is not None and not _head(path).startswith(magic):
        raise InputError(f"{spec}: named {path.suffix} but does not hold {path.suffix[1:]} data")


def open_input(path: Path) -> BinaryIO:
    """Open a file for binary reading, decompressing by content (not by name)."""
    head = _head(path)
    for magic, opener in _MAGIC:
        if head.startswith(magic):
            return cast(BinaryIO, opener(path, "rb"))  # a readable binary stream, like open()
    return open(path, "rb", buffering=1 << 20)


# What a truncated or corrupt compressed stream raises while reading (gzip.BadGzipFile is an OSError).
TRUNCATION_ERRORS = (EOFError, lzma.LZMAError, OSError)
