"""Single messages: .eml / .patch files and standard input."""

from __future__ import annotations

from typing import BinaryIO, Iterator

from . import Item


def strip_from_line(raw: bytes) -> bytes:
    """Drop a leading mbox From_ line (git format-patch output has one)."""
    if raw.startswith(b"From "):
        nl = raw.find(b"\n")
        return raw[nl + 1:] if nl >= 0 else b""
    return raw


def read_eml(f: BinaryIO, origin: str) -> Iterator[Item]:
    raw = strip_from_line(f.read())
    if raw.strip():
        yield Item(raw, None, origin=origin)
