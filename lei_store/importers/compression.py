"""Transparent, streaming decompression of .gz, .bz2 and .xz inputs."""

from __future__ import annotations

import bz2
import gzip
import lzma
from pathlib import Path
from typing import BinaryIO

_MAGIC = ((b"\x1f\x8b", gzip.open), (b"BZh", bz2.open), (b"\xfd7zXZ\x00", lzma.open))


def open_input(path: Path) -> BinaryIO:
    """Open a file for binary reading, decompressing by content (not by name)."""
    with open(path, "rb") as f:
        head = f.read(6)
    for magic, opener in _MAGIC:
        if head.startswith(magic):
            return opener(path, "rb")
    return open(path, "rb", buffering=1 << 20)


# What a truncated compressed stream raises while reading.
TRUNCATION_ERRORS = (EOFError, lzma.LZMAError, OSError)
