"""Raw-bytes message model mirroring lei's parser (spec §4.1–4.4, §4.9, §2.2, §3.4, §5.5).

Raw header values are "Perl byte strings": ``str`` whose code points are the
byte values (``bytes.decode('latin-1')``).  Decoded values are real Unicode.
Everything is computed lazily and cached, since the importer asks for most of
it once per message.
"""
from __future__ import annotations

import base64
import hashlib
import re
import time
from typing import Iterator, NamedTuple

from lei_store.mail import addresses as _addr
from lei_store.mail import dates as _dates
from lei_store.mail.charsets import mime_header_decode, raw_to_text

_BLANK = re.compile(rb"\r?\n(\r?\n)")
_HDR_LINE = re.compile(rb"^[A-Za-z0-9-]+[ \t]*:", re.M)
_ANGLE = re.compile(r"<([^>]+)>")
_IDJUNK = re.compile(r"[\r\n\t]")
_ASCII_WS = " \t\n\r\f\v"  # Perl's \s on byte strings
MAX_MID = 244

# Fields whose decoded form is RFC 2047-decoded text / re-serialised addresses (§4.2).
_TEXT_HDRS = frozenset({"subject", "content-description", "content-type"})
_ADDR_HDRS = frozenset(
    {"from", "to", "cc", "sender", "reply-to", "bcc"}
    | {"resent-" + h for h in ("from", "to", "cc", "sender", "reply-to", "bcc")}
)
_VOLATILE = frozenset({b"bytes", b"lines", b"content-length", b"status", b"x-status"})


def split_message(raw: bytes) -> tuple[bytes, bytes, bytes]:
    """(header, body, eol) per §4.2.

    header + eol + body is what lei stores: the input itself, except that a
    message with no header at all gets a leading blank line (eol "\n", or
    "\r\n" when the message has CRLF line ends).
    """
    if b"\r\n" not in raw:
        pos = raw.find(b"\n\n")
        if pos >= 0:
            return raw[: pos + 1], raw[pos + 2 :], b"\n"
    m = _BLANK.search(raw)
    if m:
        return raw[: m.start(1)], raw[m.end() :], m.group(1)
    if raw.endswith(b"\n") and _HDR_LINE.search(raw):
        return raw, b"", b""
    return b"", raw, b"\r\n" if b"\r\n" in raw else b"\n"


# A field: "name:" at a line start (name without spaces/TABs), then continuation
# lines, i.e. lines with a space/TAB before their first colon (or with no colon).
_FIELD = re.compile(rb"^([^:\n \t]*):[^\n]*(?:\n|\Z)(?:[^:\n \t]*[ \t][^\n]*(?:\n|\Z))*", re.M)
_FIELD_VALUE = re.compile(rb"^([^:\n \t]*):([^\n]*(?:\n|\Z)(?:[^:\n \t]*[ \t][^\n]*(?:\n|\Z))*)", re.M)


def _field_spans(hdr: bytes) -> Iterator[tuple[bytes, int, int, int]]:
    """Yield (lower-case name, start, value_start, end) of every header field."""
    for m in _FIELD.finditer(hdr):
        yield m.group(1).lower(), m.start(), m.end(1) + 1, m.end()


def _clean_value(v: bytes) -> str:
    s = v.decode("latin-1").strip(_ASCII_WS)
    if "\n" not in s:
        return s
    # unfold: each CR?LF plus the spaces/TABs after it becomes one space
    lines = s.replace("\r\n", "\n").split("\n")
    return " ".join([lines[0]] + [ln.lstrip(" \t") for ln in lines[1:]])


def strip_volatile_headers(raw: bytes) -> bytes:
    """The blob we store for `raw` (§2.2): Bytes/Lines/Content-Length/Status/X-Status
    fields deleted with their continuation lines, everything else byte-identical.
    Unlike lei, a message with no header at all is kept exactly as received."""
    hdr, body, eol = split_message(raw)
    return raw if not hdr else lei_blob(raw)


def lei_blob(raw: bytes) -> bytes:
    """The blob lei 1.9 writes for `raw`: as strip_volatile_headers, but a header-less
    message gains a leading blank line."""
    hdr, body, eol = split_message(raw)
    cut = [(s, e) for name, s, _, e in _field_spans(hdr) if name in _VOLATILE]
    if not cut:
        return hdr + eol + body if not hdr else raw
    out, prev = [], 0
    for s, e in cut:
        out.append(hdr[prev:s])
        prev = e
    out.append(hdr[prev:])
    return b"".join(out) + eol + body


def _ids(values: list[str], angle_only: bool) -> list[str]:
    out: dict[str, None] = {}  # ordered and de-duplicated in linear time (50,000 References happen)
    for v in values:
        found = _ANGLE.findall(v)
        if not found and not angle_only:
            found = [v]
        for x in found:
            out.setdefault(_IDJUNK.sub("", x)[:MAX_MID])
    return list(out)


def _may_name_an_address(refs: list[str], vals: list[str]) -> bool:
    """Whether some reference could be an address of To/From/Cc (then lei drops it): parsing
    the addresses is slow, so it is only done when needed, unless checking would cost more."""
    if len(refs) * sum(map(len, vals)) > 1 << 20:  # a cheap test per ref would be quadratic here
        return True
    for r in refs:
        local, at, dom = r.partition("@")
        if at and any(local in v and dom in v for v in vals):
            return True
    return False


class Message:
    """A message as lei sees it: header block + body, split once, fields parsed lazily."""

    __slots__ = ("raw", "header_block", "body", "eol", "_fields", "_cache")

    def __init__(self, raw: bytes):
        self.raw = raw
        self.header_block, self.body, self.eol = split_message(raw)
        self._fields: dict[str, list[str]] | None = None
        self._cache: dict = {}

    @classmethod
    def mime_piece(cls, piece: bytes) -> "Message":
        """A multipart sub-part: one starting with a newline has an empty header (§4.6)."""
        if piece[:1] == b"\n" or piece[:2] == b"\r\n":
            nl = 1 if piece[:1] == b"\n" else 2
            m = cls.__new__(cls)
            m.raw, m.header_block, m.body, m.eol = piece, b"", piece[nl:], piece[:nl]
            m._fields, m._cache = None, {}
            return m
        return cls(piece)

    def with_body(self, body: bytes) -> "Message":
        """Same header, different body (lei trims multipart bodies in place)."""
        m = Message.__new__(Message)
        m.raw = self.header_block + self.eol + body
        m.header_block, m.body, m.eol = self.header_block, body, self.eol
        m._fields, m._cache = self._fields, {}
        return m

    def _all_fields(self) -> dict[str, list]:
        """name -> raw value slices; cleaned into str on first lookup of that name."""
        f = self._fields
        if f is None:
            f = {}
            for name, value in _FIELD_VALUE.findall(self.header_block):
                key = name.lower().decode("latin-1")
                if key in f:
                    f[key].append(value)
                else:
                    f[key] = [value]
            self._fields = f
        return f

    def header_raw(self, name: str) -> list[str]:
        """Raw values of every field called `name` (case-insensitive), latin-1 str."""
        f = self._all_fields()
        vals = f.get(name) or f.get(name.lower())
        if not vals:
            return []
        if type(vals[0]) is bytes:
            vals[:] = [_clean_value(v) for v in vals]
        return vals

    def header(self, name: str) -> list[str]:
        """Decoded values (§4.2): RFC 2047 for text fields, re-serialised address fields."""
        key = name.lower()
        raw = self.header_raw(key)
        if not raw:
            return raw
        if key in _TEXT_HDRS:
            return [mime_header_decode(v) if "=?" in v else v for v in raw]
        if key in _ADDR_HDRS:
            return [_addr.reformat_addresses(v) if "=?" in v else v for v in raw]
        return raw

    def _memo(self, key, fn):
        c = self._cache
        if key not in c:
            c[key] = fn()
        return c[key]

    def mids(self) -> list[str]:
        """Message-IDs from Message-ID fields only (§4.3)."""
        return self._memo("mids", lambda: _ids(self.header_raw("message-id"), False))

    def index_mids(self) -> list[str]:
        """Message-ID then X-Alt-Message-ID ids, as used for indexing (§4.3)."""
        return self._memo(
            "imids",
            lambda: _ids(self.header_raw("message-id") + self.header_raw("x-alt-message-id"), False),
        )

    def mid0(self) -> str:
        m = self.mids()
        return m[0] if m else ""

    def references(self) -> list[str]:
        """References + In-Reply-To ids minus junk (§4.4 first paragraph)."""
        return self._memo("refs", self._references)

    def _references(self) -> list[str]:
        refs = _ids(self.header_raw("references") + self.header_raw("in-reply-to"), True)
        if not refs:
            return refs
        bad = {"y", "n"}
        vals = self.header_raw("to") + self.header_raw("from") + self.header_raw("cc")
        if _may_name_an_address(refs, vals):
            for v in vals:
                bad.update(_addr.raw_emails(v))
        return [r for r in refs if r not in bad]

    def thread_refs(self) -> list[str]:
        """parse_references variant for over/threading (§4.4 second paragraph)."""
        refs = list(self.references())
        imids = self.index_mids()
        if len(imids) > 1:
            refs += imids
        mid0 = self.mid0()
        return list(dict.fromkeys(r for r in refs if r != mid0 and len(r) <= MAX_MID))

    def datestamp(self) -> tuple[int, str] | None:
        """ds and its zone (§4.5); None means lei would use the import time."""
        return self._memo("ds", lambda: _dates.datestamp(self))

    def timestamp(self) -> tuple[int, str] | None:
        """ts and its zone (§4.5); None means lei would use the import time."""
        return self._memo("ts", lambda: _dates.timestamp(self))


# --- derived values --------------------------------------------------------


def _oneline(s: str) -> str:
    """§4.9 cleanup: CR deleted, NUL/TAB/LF become spaces."""
    if "\r" in s:
        s = s.replace("\r", "")
    return s.translate(_ONELINE)


_ONELINE = {0: " ", 9: " ", 10: " "}


class OverviewFields(NamedTuple):
    """The header fields over.sqlite3 keeps, as lei writes them (§5.2)."""
    subject: str
    from_: str
    to: str
    cc: str


def overview_fields(msg: Message) -> OverviewFields:
    """subject/from/to/cc as stored in over's ddd and the A/XTO/XCC/S terms (§4.9)."""

    def field(name: str) -> str:
        vals = [v if "=?" in r else raw_to_text(v) for r, v in zip(msg.header_raw(name), msg.header(name), strict=True)]
        return _oneline(", ".join(vals))

    return OverviewFields(field("subject"), field("from"), field("to"), field("cc"))


def commit_subject(msg: Message) -> str:
    """Commit message line (§2.2): first decoded Subject, one line, or '(no subject)'."""
    raw = msg.header_raw("subject")
    if not raw:
        return "(no subject)"
    s = msg.header("subject")[0] if "=?" in raw[0] else raw_to_text(raw[0])
    s = s.replace("\r", "").translate(_ONELINE)
    return s if s else "(no subject)"


def synthetic_mid(ds: int, chash: bytes) -> str:
    """Message-ID lei invents for a message without one (§3.4)."""
    stamp = time.strftime("%Y%m%d%H%M%S", time.gmtime(ds))
    b64 = base64.b64encode(chash).decode().replace("+", "-").replace("/", "_").rstrip("=")
    return f"{stamp}.{b64}@z"


def body_lines(msg: Message) -> int:
    """Number of LF in the body (§4.9 *lines*)."""
    return msg.body.count(b"\n")


def crlf_bytes(blob: bytes) -> int:
    """Size the blob would have with CRLF line endings (§4.9 *bytes*)."""
    return len(blob) + blob.count(b"\n") - blob.count(b"\r\n")


_RE_PREFIX = re.compile(r"\Are:\s+", re.I)
_NON_PATH_ASCII = re.compile(r"[^\w.~/\-]+", re.A)
_NON_PATH_UNI = re.compile(r"[^\w.~/\-]+")
_WS_ASCII = re.compile(r"\s+", re.A)
_WS_UNI = re.compile(r"\s+")
_PATH_OK = re.compile(r"[A-Za-z0-9_\-]*")


def subject_path(subject: str, unicode_rules: bool | None = None) -> str:
    """Normalised subject 'path' for the subject table (§5.5).

    Perl quirk: a string of code points <= U+00FF is a byte string, matched
    and lower-cased with ASCII rules ("Übergrößen x" -> "_bergr_en_x"); with
    any wider character Unicode rules apply (then a non-ASCII letter left over
    makes the path a SHA-1).  A subject taken from raw UTF-8 header bytes also
    gets Unicode rules: subject_path_of() knows where a subject came from.
    """
    if unicode_rules is None:
        unicode_rules = any(c > "\xff" for c in subject)
    ws = _WS_UNI if unicode_rules else _WS_ASCII
    s = ws.sub(" ", subject.strip(None if unicode_rules else _ASCII_WS)).rstrip(".")
    s = _RE_PREFIX.sub("", s, count=1)  # one leading "re:" only
    s = (_NON_PATH_UNI if unicode_rules else _NON_PATH_ASCII).sub("_", s)
    # ASCII rules lower only A-Z: bytes.lower() does exactly that (every char is <= U+00FF here)
    s = s.lower() if unicode_rules else s.encode("latin-1").lower().decode("latin-1")
    if len(s) > 40 or not _PATH_OK.fullmatch(s):
        s = hashlib.sha1(s.encode("utf-8")).hexdigest()
    return s


def subject_path_of(msg: Message) -> str:
    """subject_path() of a message's overview subject, with the rules lei applies."""
    subject = overview_fields(msg).subject
    raw = msg.header_raw("subject")
    from_utf8 = bool(raw) and not any("=?" in v for v in raw) and any(
        not v.isascii() and raw_to_text(v) != v for v in raw
    )
    return subject_path(subject, True if from_utf8 else None)
