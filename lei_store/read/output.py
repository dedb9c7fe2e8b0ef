"""Writing search results: lei's JSON flavours, text, and mail outputs (Maildir, mbox variants)."""

from __future__ import annotations

import contextlib
import json
import os
import re
import stat
import time
from pathlib import Path
from typing import BinaryIO, Callable, Iterable

import msgspec

from lei_store.errors import InputError
from lei_store.mail.keywords import maildir_flags
from lei_store.read.choices import JSON_FORMATS, MAIL_FORMATS, TEXT_FORMATS  # noqa: F401 (the library's names)
from lei_store.read.search import Hit

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
    from lei_store.mail.addresses import split_addresses

    n = 0
    for hit in hits:
        r = hit.row
        sender = next((p for p in split_addresses(r.from_) if p != (None, None)), (None, r.from_))
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


OnWrite = Callable[[Hit, str], None]


def write_mail(hits: Iterable[Hit], fmt: str, dest: Path | None, read_blob, augment: bool,
               stream: BinaryIO | None = None, on_write: OnWrite | None = None,
               unseen_to_new: bool = False) -> int:
    """Write messages to a Maildir or an mbox. ON_WRITE is told each message written and its
    file name (Maildir) or "" (mbox); with UNSEEN_TO_NEW a Maildir gets unseen messages in new/
    (as `lei up` delivers them: new mail to the reader), else everything goes to cur/."""
    told = on_write or (lambda hit, name: None)
    if stream is not None:
        return _write_mbox(hits, fmt, stream, read_blob, told)
    assert dest is not None, "a mail output needs a destination or a stream"
    if fmt == "maildir":
        return _write_maildir(hits, dest, read_blob, augment, told, unseen_to_new)
    return _write_mbox_file(hits, fmt, dest, read_blob, augment, told)


# How q -o names a message in a Maildir, as lei does: <blob oid>=<pct>:2,<flags>. Without
# --augment only such files are removed, so nothing q -o did not write is ever deleted.
_OUTPUT_NAME = re.compile(r"[0-9a-f]{40}=[0-9]+:2,[A-Za-z]*\Z")
_ADVICE = "; use an empty or new directory, or --augment to add to it"


def _maildir_subdirs(dest: Path) -> None:
    """cur/, new/ and tmp/ must be real directories: through a symlink, writes (and, without
    --augment, deletions) would land in a directory the user never named."""
    for sub in ("cur", "new", "tmp"):
        try:
            mode = os.lstat(dest / sub).st_mode
        except FileNotFoundError:
            continue
        if stat.S_ISLNK(mode):
            raise InputError(f"{dest}: {sub} is a symbolic link, not a directory{_ADVICE}")
        if not stat.S_ISDIR(mode):
            raise InputError(f"{dest}: {sub} is not a directory{_ADVICE}")


def _previous_output(dest: Path) -> list[Path]:
    """The files an earlier q -o wrote in DEST, all checked before any is deleted; anything
    else there (a user's file, a sub-directory, a non-Maildir directory) refuses the output."""
    entries = sorted(os.listdir(dest))
    if entries and "cur" not in entries:
        raise InputError(f"{dest}: not empty and not a Maildir (it holds {entries[0]}){_ADVICE}")
    old = []
    for sub in ("cur", "new"):
        d = dest / sub
        for name in sorted(os.listdir(d)) if d.is_dir() else ():
            mode = os.lstat(d / name).st_mode
            if stat.S_ISDIR(mode):
                raise InputError(f"{dest}: {sub}/{name} is a directory, not a message q -o wrote{_ADVICE}")
            if not (_OUTPUT_NAME.match(name) and stat.S_ISREG(mode)):
                raise InputError(f"{dest}: {sub}/{name} was not written by q -o{_ADVICE}")
            old.append(d / name)
    return old


def _write_maildir(hits, dest: Path, read_blob, augment: bool, told: OnWrite, unseen_to_new: bool) -> int:
    if dest.exists():
        if not dest.is_dir():
            raise InputError(f"{dest}: exists and is not a directory")
        _maildir_subdirs(dest)
        for path in () if augment else _previous_output(dest):
            os.unlink(path)
    for sub in ("cur", "new", "tmp"):
        (dest / sub).mkdir(parents=True, exist_ok=True)
    n = 0
    for hit in hits:
        raw = read_blob(hit.row.blob)
        if raw is None:
            continue
        name = f"{hit.row.blob}={hit.pct or 0}:2,{maildir_flags(hit.keywords)}"
        tmp = dest / "tmp" / f"{name}.{os.getpid()}"
        tmp.write_bytes(raw)
        sub = "new" if unseen_to_new and "seen" not in hit.keywords else "cur"
        os.replace(tmp, dest / sub / name)  # tmp -> cur|new: readers never see half a message
        told(hit, name)
        n += 1
    return n


# The first line of every mbox q -o writes (see _write_mbox): only such a file is replaced.
_OUR_MBOX = re.compile(rb"From [0-9a-f]{40}@(?:mboxrd|mboxo|mboxcl2|mboxcl) Thu Jan  1 00:00:00 1970\n")


def _write_mbox_file(hits, fmt: str, dest: Path, read_blob, augment: bool, told: OnWrite) -> int:
    try:
        st = os.stat(dest)  # through symlinks: /dev/stdout is whatever our stdout is
    except FileNotFoundError:
        st = None
    if st is not None and stat.S_ISDIR(st.st_mode):
        raise InputError(f"{dest}: is a directory; {fmt}: needs a file")
    if augment or (st is not None and not stat.S_ISREG(st.st_mode)):
        with open(dest, "ab" if augment else "wb") as f:  # a FIFO, a terminal: just written to
            return _write_mbox(hits, fmt, f, read_blob, told)
    target = Path(os.path.realpath(dest))  # a symlink stays; the file it points to is replaced
    if st is not None and st.st_size and not _is_our_mbox(target):
        raise InputError(f"{dest}: not an mbox q -o wrote; use a new or empty file, or --augment to add to it")
    return _replace_file(target, st, lambda f: _write_mbox(hits, fmt, f, read_blob, told))


def _is_our_mbox(path: Path) -> bool:
    with open(path, "rb") as f:
        return _OUR_MBOX.match(f.read(100)) is not None


def _replace_file(target: Path, old: os.stat_result | None, write: Callable[[BinaryIO], int]) -> int:
    """Write a temporary file beside TARGET, then rename it over TARGET: whatever fails
    (a full disk, an unreadable blob, ^C), TARGET is either the old file or the new one, whole."""
    tmp = target.with_name(f".{target.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # the umask applies, as for open()
    try:
        with os.fdopen(fd, "wb") as f:
            if old is not None:
                os.fchmod(f.fileno(), stat.S_IMODE(old.st_mode))
            n = write(f)
            f.flush()
            os.fsync(f.fileno())  # the data is on disk before the name points at it
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
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


def _write_mbox(hits, fmt: str, out: BinaryIO, read_blob, told: OnWrite) -> int:
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
        told(hit, "")
        n += 1
    return n
