"""Writing search results: lei's JSON flavours, text, and mail outputs (Maildir, mbox variants)."""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path
from typing import BinaryIO, Callable, Iterable

import msgspec

from .errors import InputError
from .keywords import maildir_flags
from .search import Hit

JSON_FORMATS = ("json", "jsonl", "ldjson", "ndjson", "concatjson")
MAIL_FORMATS = ("maildir", "mboxrd", "mboxo", "mboxcl", "mboxcl2")
TEXT_FORMATS = ("text", "summary")

_enc = msgspec.json.Encoder()


def _pretty(rec) -> bytes:
    """lei's --pretty: one key per line, values compact with ', ' separators."""
    d = msgspec.to_builtins(rec)
    lines = [f'  {json.dumps(k)}: {json.dumps(v, ensure_ascii=False, separators=(", ", ": "))}'
             for k, v in d.items()]
    return ("{\n" + ",\n".join(lines) + "\n}").encode()


def write_json(hits: Iterable[Hit], fmt: str, out: BinaryIO, pretty: bool = False) -> int:
    n = 0
    enc = _pretty if pretty else _enc.encode
    if fmt == "json":
        out.write(b"[")
        for hit in hits:
            out.write(enc(hit.record()) + (b"," if pretty else b",\n"))
            n += 1
        out.write(b"null]\n")
        return n
    sep = b"\n"
    for hit in hits:
        out.write(enc(hit.record()) + sep)
        n += 1
    return n


def write_summary(hits: Iterable[Hit], out: BinaryIO) -> int:
    """lei_store's own one-line-per-message listing: date, sender, subject, keywords."""
    from .addresses import split_addresses

    n = 0
    for hit in hits:
        r = hit.row
        sender = (split_addresses(r.from_) or [(None, r.from_)])[0]
        who = (sender[0] or sender[1] or "")[:22]
        kw = f" [{','.join(hit.keywords + ['L:' + x for x in hit.labels])}]" if hit.keywords or hit.labels else ""
        line = f"{time.strftime('%Y-%m-%d', time.gmtime(r.ds))}  {who:<22}  {r.subject}{kw}\n"
        out.write(line.encode("utf-8", "replace"))
        n += 1
    return n


def write_text(hits: Iterable[Hit], out: BinaryIO, read_blob: Callable[[str], bytes | None]) -> int:
    """Like lei's -f text: comment lines with blob, pct and keywords, then the message."""
    n = 0
    for hit in hits:
        pct = f" pct:{hit.pct}" if hit.pct is not None else ""
        out.write(f"# blob:{hit.row.blob}{pct}\n".encode())
        if hit.keywords:
            out.write(f"# kw:{','.join(hit.keywords)}\n".encode())
        if hit.labels:
            out.write(f"# L:{','.join(hit.labels)}\n".encode())
        raw = read_blob(hit.row.blob) or b""
        out.write(raw.replace(b"\r\n", b"\n").rstrip(b"\n") + b"\n\n")
        n += 1
    return n


def parse_output(spec: str) -> tuple[str, Path]:
    """`-o DIR`, `-o maildir:DIR`, `-o mboxrd:FILE` ... -> (format, path)."""
    fmt, sep, rest = spec.partition(":")
    if sep and fmt in MAIL_FORMATS:
        return fmt, Path(rest)
    if sep and re.fullmatch(r"[a-z0-9]+", fmt):
        raise InputError(f"unknown output format {fmt}: (known: {', '.join(MAIL_FORMATS)})")
    return "maildir", Path(spec)


def write_mail(hits: Iterable[Hit], fmt: str, dest: Path | None, read_blob, augment: bool,
               stream: BinaryIO | None = None) -> int:
    if fmt == "maildir":
        return _write_maildir(hits, dest, read_blob, augment)
    if stream is not None:
        return _write_mbox(hits, fmt, stream, read_blob)
    mode = "ab" if augment else "wb"
    with open(dest, mode) as f:
        return _write_mbox(hits, fmt, f, read_blob)


def _write_maildir(hits, dest: Path, read_blob, augment: bool) -> int:
    for sub in ("cur", "new", "tmp"):
        d = dest / sub
        if d.is_dir() and not augment and sub != "tmp":
            for name in os.listdir(d):
                os.unlink(d / name)
        d.mkdir(parents=True, exist_ok=True)
    n = 0
    for hit in hits:
        raw = read_blob(hit.row.blob)
        if raw is None:
            continue
        name = f"{hit.row.blob}={hit.pct or 0}:2,{maildir_flags(hit.keywords)}"
        tmp = dest / "tmp" / f"{name}.{os.getpid()}"
        tmp.write_bytes(raw)
        os.replace(tmp, dest / "cur" / name)  # tmp -> cur: readers never see half a message
        n += 1
    return n


_FROM_RD = re.compile(rb"^(>*From )", re.M)
_FROM_O = re.compile(rb"^(From )", re.M)


def _status_headers(keywords: list[str]) -> bytes:
    out = b""
    if "seen" in keywords:
        out += b"Status: RO\n"
    else:
        out += b"Status: O\n"
    x = "".join(sorted(c for k, c in (("answered", "A"), ("flagged", "F"), ("draft", "T")) if k in keywords))
    if x:
        out += f"X-Status: {x}\n".encode()
    return out


def _write_mbox(hits, fmt: str, out: BinaryIO, read_blob) -> int:
    n = 0
    for hit in hits:
        raw = read_blob(hit.row.blob)
        if raw is None:
            continue
        raw = raw.replace(b"\r\n", b"\n")
        head, sep, body = raw.partition(b"\n\n")
        if not sep:
            head, body = raw.rstrip(b"\n"), b""
        head = head + b"\n" + _status_headers(hit.keywords)
        if fmt in ("mboxcl", "mboxcl2"):
            if fmt == "mboxcl":
                body = _FROM_O.sub(rb">\1", body)
            head += b"Content-Length: %d\n" % len(body)
        elif fmt == "mboxrd":
            body = _FROM_RD.sub(rb">\1", body)
        else:
            body = _FROM_O.sub(rb">\1", body)
        out.write(b"From %s@%s Thu Jan  1 00:00:00 1970\n" % (hit.row.blob.encode(), fmt.encode())
                  + head + b"\n" + body + (b"" if body.endswith(b"\n") or not body else b"\n") + b"\n")
        n += 1
    return n
