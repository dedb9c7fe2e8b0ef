"""mbox input in its four variants (mboxrd, mboxo, mboxcl, mboxcl2), streaming.

Messages are separated by From_ lines. mboxrd un-escapes `>+From ` by one
`>`, mboxo only `>From `; mboxcl and mboxcl2 find the body by Content-Length
(mboxcl also un-escapes `>From `). The blank line that ends each message is
part of the separator, not of the message.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import BinaryIO, Iterator

from ..errors import InputError, TruncatedInputError
from ..keywords import mbox_keywords
from . import Item
from .compression import TRUNCATION_ERRORS

FROM_LINE = re.compile(rb"^From \S+ +(?:\S+ +)?\S+ +\S+ +\d+ +\d+:\d+")
_RD_ESCAPED = re.compile(rb"^>(>*From )", re.M)
_O_ESCAPED = re.compile(rb"^>(From )", re.M)
_STATUS = re.compile(rb"^(?:X-)?Status:[ \t]*([^\r\n]*)", re.I | re.M)
_CONTENT_LENGTH = re.compile(rb"^Content-Length:[ \t]*(\d+)", re.I | re.M)


def _unescape(fmt: str, data: bytes) -> bytes:
    if fmt == "mboxrd":
        return _RD_ESCAPED.sub(rb"\1", data)
    if fmt in ("mboxo", "mboxcl"):
        return _O_ESCAPED.sub(rb"\1", data)
    return data


def _header_block(raw: bytes) -> bytes:
    for sep in (b"\n\n", b"\r\n\r\n"):
        end = raw.find(sep)
        if end >= 0:
            return raw[:end + 1]
    return raw


def _keywords(raw: bytes) -> frozenset[str] | None:
    return mbox_keywords([m.decode("latin-1") for m in _STATUS.findall(_header_block(raw))])


def _strip_separator_blank(lines: list[bytes]) -> None:
    if lines and lines[-1] in (b"\n", b"\r\n"):
        lines.pop()


class _Reader:
    """Line reader that remembers its byte offset, for error messages."""

    def __init__(self, f: BinaryIO):
        self.f = f
        self.offset = 0

    def readline(self) -> bytes:
        line = self.f.readline()
        self.offset += len(line)
        return line

    def read(self, n: int) -> bytes:
        data = self.f.read(n)
        self.offset += len(data)
        return data


def read_mbox(f: BinaryIO, fmt: str, origin: str) -> Iterator[Item]:
    """Yield every complete message; raise TruncatedInputError after them if the input is cut short."""
    r = _Reader(f)
    count = 0
    try:
        line = r.readline()
        while line and not line.strip():
            line = r.readline()
        if line and not FROM_LINE.match(line):
            raise InputError(f"{origin}: not an mbox (it does not start with a From_ line)")
        while line:
            start = r.offset - len(line)
            raw, line, complete = _read_one(r, fmt)
            if not complete:
                raise TruncatedInputError(
                    f"{origin}: truncated at byte {r.offset}; message {count + 1} (from byte {start}) "
                    f"is incomplete and was not imported; {count} before it were")
            if raw.strip():
                count += 1
                yield Item(raw, _keywords(raw), origin=f"{origin}#{count}")
    except TRUNCATION_ERRORS as e:
        if isinstance(e, InputError):
            raise
        raise TruncatedInputError(
            f"{origin}: compressed data ends early near byte {r.offset} ({e}); "
            f"the {count} messages before it were imported") from None


def _read_one(r: _Reader, fmt: str) -> tuple[bytes, bytes, bool]:
    """Read one message after its From_ line: (raw, next From_ line or b'', complete)."""
    lines: list[bytes] = []
    if fmt in ("mboxcl", "mboxcl2"):
        header = []
        while True:
            line = r.readline()
            if not line:
                return b"".join(header), b"", False
            header.append(line)
            if line in (b"\n", b"\r\n"):
                break
        m = _CONTENT_LENGTH.search(b"".join(header))
        if m:
            want = int(m.group(1))
            body = r.read(want)
            if len(body) < want:
                return b"".join(header) + body, b"", False
            line = r.readline()
            while line and not FROM_LINE.match(line):  # the blank separator, or stray text
                line = r.readline()
            return _unescape(fmt, b"".join(header) + body), line, True
        lines = header  # no Content-Length: fall back to From_ splitting
    line = r.readline()
    while line and not FROM_LINE.match(line):
        lines.append(line)
        line = r.readline()
    complete = not lines or lines[-1].endswith(b"\n")
    _strip_separator_blank(lines)
    return _unescape(fmt, b"".join(lines)), line, complete


def read_mbox_path(path: Path, fmt: str) -> Iterator[Item]:
    from .compression import open_input

    with open_input(path) as f:
        yield from read_mbox(f, fmt, str(path))
