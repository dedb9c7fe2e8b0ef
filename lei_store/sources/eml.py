"""Single messages: .eml / .patch files and standard input."""

from __future__ import annotations

from typing import BinaryIO, Iterator

from lei_store.errors import InputError
from lei_store.sources.compression import TRUNCATION_ERRORS
from lei_store.sources.items import Item, ReadOptions


def strip_from_line(raw: bytes) -> bytes:
    """Drop a leading mbox From_ line (git format-patch output has one)."""
    if raw.startswith(b"From "):
        nl = raw.find(b"\n")
        return raw[nl + 1:] if nl >= 0 else b""
    return raw


def read_eml(f: BinaryIO, origin: str, opts: ReadOptions = ReadOptions()) -> Iterator[Item]:
    """The one message of F; over the size limit it is skipped (and named), never read whole."""
    try:
        raw = f.read(opts.max_size + 1)
    except TRUNCATION_ERRORS as e:
        raise InputError(f"{origin}: cannot be read ({e})") from None
    if len(raw) > opts.max_size:
        opts.on_skip(origin, f"over the {opts.max_size}-byte limit (--max-size)")
        return
    raw = strip_from_line(raw)
    if not raw.strip():
        raise InputError(f"{origin}: no message in it (empty)")
    yield Item(raw, None, origin=origin)
