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

from lei_store.errors import InputError, TruncatedInputError
from lei_store.mail.keywords import mbox_keywords
from lei_store.sources.compression import TRUNCATION_ERRORS
from lei_store.sources.items import Item, ReadOptions

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


LINE_LIMIT = 1 << 16  # a longer line is read in pieces: one huge line must not be read whole


class _Reader:
    """Line reader that remembers its byte offset (for error messages) and whether the next
    piece starts a line (only a line's start can be a From_ line)."""

    def __init__(self, f: BinaryIO):
        self.f = f
        self.offset = 0
        self.at_start = True

    def readline(self) -> bytes:
        line = self.f.readline(LINE_LIMIT)
        self.offset += len(line)
        self.at_start = line.endswith(b"\n")
        return line

    def separator(self, line: bytes, started_line: bool) -> bool:
        return started_line and FROM_LINE.match(line) is not None

    def read(self, n: int) -> bytes:
        data = self.f.read(n)
        self.offset += len(data)
        return data

    def skip(self, n: int) -> int:
        """Read and drop N bytes in bounded pieces; how many there were."""
        done = 0
        while done < n and (piece := self.read(min(n - done, 1 << 20))):
            done += len(piece)
        return done


class _Message:
    """One message's lines as they are read, dropped (only counted) once over the size limit."""

    def __init__(self, max_size: int):
        self.max_size = max_size
        self.lines: list[bytes] = []
        self.size = 0

    @property
    def too_big(self) -> bool:
        return self.size > self.max_size

    def add(self, line: bytes) -> None:
        self.size += len(line)
        if self.too_big:
            self.lines.clear()
        else:
            self.lines.append(line)


def read_mbox(f: BinaryIO, fmt: str, origin: str, opts: ReadOptions = ReadOptions()) -> Iterator[Item]:
    """Yield every complete message; raise TruncatedInputError after them if the input is cut short.
    A message over the size limit is skipped (and named) without being held in memory."""
    r = _Reader(f)
    count = seen = 0
    try:
        line = r.readline()
        while line and not line.strip():
            line = r.readline()
        if line and not FROM_LINE.match(line):
            raise InputError(f"{origin}: not an mbox (it does not start with a From_ line)")
        while line:
            start = r.offset - len(line)
            msg, line, complete = _read_one(r, fmt, opts.max_size)
            if not complete:
                raise TruncatedInputError(
                    f"{origin}: truncated at byte {r.offset}; message {seen + 1} (from byte {start}) "
                    f"is incomplete and was not imported; {count} before it were")
            seen += 1
            if msg.too_big:
                opts.on_skip(f"{origin}#{seen} (byte {start})",
                             f"{msg.size} bytes, over the {opts.max_size}-byte limit (--max-size)")
                continue
            raw = _unescape(fmt, b"".join(msg.lines))
            if raw.strip():
                count += 1
                yield Item(raw, _keywords(raw), origin=f"{origin}#{count}")
    except TRUNCATION_ERRORS as e:
        if isinstance(e, InputError):
            raise
        raise TruncatedInputError(
            f"{origin}: compressed data ends early or is corrupt near byte {r.offset} ({e}); "
            f"the {count} messages before it were imported") from None
    if seen == 0:
        raise InputError(f"{origin}: no messages in it")


def _read_header(r: _Reader, msg: _Message) -> bool:
    """mboxcl/mboxcl2: the header lines up to the blank line; False at end of input."""
    while True:
        started = r.at_start
        line = r.readline()
        if not line:
            return False
        msg.add(line)
        if started and line in (b"\n", b"\r\n"):
            return True


def _read_one(r: _Reader, fmt: str, max_size: int) -> tuple[_Message, bytes, bool]:
    """Read one message after its From_ line: (message, next From_ line or b'', complete)."""
    msg = _Message(max_size)
    if fmt in ("mboxcl", "mboxcl2"):
        if not _read_header(r, msg):
            return msg, b"", False
        m = None if msg.too_big else _CONTENT_LENGTH.search(b"".join(msg.lines))
        if m:
            want = int(m.group(1))
            if msg.size + want > max_size:
                msg.size += r.skip(want)
                msg.lines.clear()
                complete = msg.size >= want
            else:
                body = r.read(want)
                msg.add(body)
                complete = len(body) == want
            if not complete:
                return msg, b"", False
            return msg, _next_from(r), True
    started = r.at_start
    line = r.readline()
    while line and not r.separator(line, started):
        msg.add(line)
        started = r.at_start
        line = r.readline()
    complete = started or not msg.size  # the last piece read ended its line (a From_ line always does)
    if not msg.too_big:
        _strip_separator_blank(msg.lines)
    return msg, line, complete


def _next_from(r: _Reader) -> bytes:
    """Past the blank separator (or stray text) to the next From_ line, b'' at the end."""
    started = r.at_start
    line = r.readline()
    while line and not r.separator(line, started):
        started = r.at_start
        line = r.readline()
    return line


def read_mbox_path(path: Path, fmt: str, opts: ReadOptions = ReadOptions()) -> Iterator[Item]:
    from lei_store.sources.compression import open_input

    with open_input(path) as f:
        yield from read_mbox(f, fmt, str(path), opts)
