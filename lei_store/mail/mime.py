"""MIME layer as lei sees it (spec §4.6–4.8): Content-Type parameters, the part walk, part
filename and part text. Charsets and transfer encodings are charsets.py.
"""
from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from typing import Iterator

from lei_store.mail import message as _message
from lei_store.mail.charsets import decode_strict, mime_header_decode, transfer_decode

_UNSET = object()  # a part's text not computed yet (None is a result)

# --- Content-Type -----------------------------------------------------------

_TYPE = re.compile(r"[ \t\r\n]*([^\s/;]+)[ \t\r\n]*/[ \t\r\n]*([^\s;]+)")
_PARAM = re.compile(r"[\s;]*([^\s=;]+)[ \t\r\n]*=[ \t\r\n]*(?:\"((?:[^\"\\]|\\.)*)(?:\"|\Z)|([^;]*))", re.S)
_QUOTED_PAIR = re.compile(r"\\(.)", re.S)
_PCT = re.compile(r"%([0-9A-Fa-f]{2})")
_RFC2231 = re.compile(r"^([^*]+)\*(?:(\d+)\*?|)$")


class ContentType:
    """A parsed Content-Type: type, subtype and lower-cased parameters."""
    __slots__ = ("type", "subtype", "params")

    def __init__(self, type_: str, subtype: str, params: dict[str, str]):
        self.type, self.subtype, self.params = type_, subtype, params

    @property
    def mime_type(self) -> str:
        return f"{self.type}/{self.subtype}"

    def __repr__(self) -> str:
        return f"ContentType({self.mime_type!r}, {self.params!r})"


DEFAULT_CT = ("text", "plain", {"charset": "us-ascii"})


def _pct_bytes(v: str) -> bytes:
    return _PCT.sub(lambda m: chr(int(m.group(1), 16)), v).encode("latin-1", "replace")


def _rfc2231_join(segs: dict[int, tuple[str, bool]]) -> str:
    """Join name*0*, name*1... segments; %XX only in extended ones; charset from the first."""
    first, first_ext = segs.get(0, ("", False))
    cs = ""
    if first_ext and first.count("'") >= 2:
        cs, _, rest = first.split("'", 2)
        segs = {**segs, 0: (rest, True)}
    octets = b"".join(_pct_bytes(v) if e else v.encode("latin-1", "replace") for _, (v, e) in sorted(segs.items()))
    if cs:
        try:
            return decode_strict(octets, cs)
        except ValueError:
            pass  # unknown charset or bad bytes: keep them as they are
    return octets.decode("latin-1")


def parse_params(s: str, pos: int = 0) -> dict[str, str]:
    """`; name=value` parameters with RFC 2231 continuations and charsets."""
    plain: dict[str, str] = {}
    ext: dict[str, dict[int, tuple[str, bool]]] = {}
    for m in _PARAM.finditer(s, pos):
        name = m.group(1).lower()
        quoted = m.group(2) is not None
        # unquoted values run to the next ';' (spaces included), like lei's parser
        val = _QUOTED_PAIR.sub(r"\1", m.group(2)) if quoted else m.group(3).rstrip()
        r = _RFC2231.match(name)
        if r and quoted and name.endswith("*"):
            r, name = None, name.rstrip("*")  # a quoted extended value is taken literally
        if r:
            num = r.group(2)
            ext.setdefault(r.group(1), {})[int(num) if num is not None else 0] = (val, name.endswith("*"))
        elif name not in plain:
            plain[name] = val
    for base, segs in ext.items():
        plain[base] = _rfc2231_join(segs)
    return plain


@lru_cache(maxsize=1024)
def _parse_ct_cached(value: str) -> tuple[str, str, tuple]:
    m = _TYPE.match(value)
    if not m:
        return DEFAULT_CT[0], DEFAULT_CT[1], tuple(DEFAULT_CT[2].items())
    return m.group(1).lower(), m.group(2).lower(), tuple(parse_params(value, m.end()).items())


def parse_content_type(value: str | None) -> ContentType:
    if not value:
        return ContentType(DEFAULT_CT[0], DEFAULT_CT[1], dict(DEFAULT_CT[2]))
    t, s, p = _parse_ct_cached(value)
    return ContentType(t, s, dict(p))


# --- parts ------------------------------------------------------------------

_MSG_SUBTYPES = frozenset({"rfc822", "rfc2822", "news", "global"})
MAX_PARTS = 1000
MAX_DEPTH = 20
_TEXT_HTML = re.compile(r"\btext/x?html\b")
_TEXT_ANY = re.compile(r"\btext/", re.I)
_MP_MIXED = re.compile(r"\bmultipart/mixed\b", re.I)
_OCTET = re.compile(r"\bapplication/octet-stream\b", re.I)
_7BIT = re.compile(r"\b7bit\b", re.I)


class Part:
    """One callback of the MIME walk: a leaf part or a message/rfc822 container or its body."""

    __slots__ = ("depth", "idx", "eml", "is_message", "container", "_ct", "_body", "_text")

    def __init__(self, eml: "_message.Message", depth: int, idx: str,
                 is_message: bool = False, container: bool = False):
        self.eml = eml
        self.depth = depth
        self.idx = idx
        self.is_message = is_message
        self.container = container
        self._ct: ContentType | None = None
        self._body: bytes | None = None
        self._text = _UNSET

    def __repr__(self) -> str:
        return f"<Part {self.depth}:{self.idx} {self.content_type.mime_type}>"

    @property
    def content_type(self) -> ContentType:
        if self._ct is None:
            self._ct = content_type_of(self.eml)
        return self._ct

    def ct_string(self) -> str:
        v = self.eml.header("content-type")
        return v[0] if v else ""

    def decoded_body(self) -> bytes:
        """Transfer-decoded body bytes (§4.6)."""
        if self._body is None:
            cte = self.eml.header_raw("content-transfer-encoding")
            self._body = transfer_decode(self.eml.body, cte[0]) if cte else self.eml.body
        return self._body

    def filename(self) -> str | None:
        """Content-Disposition filename, else Content-Type name; RFC 2047 aware (§4.7)."""
        fn = None
        cd = self.eml.header_raw("content-disposition")
        if cd:
            m = _TYPE.match(cd[0]) or re.match(r"[ \t]*[^\s;]*", cd[0])
            fn = parse_params(cd[0], m.end() if m else 0).get("filename")
        if not fn:
            fn = self.content_type.params.get("name")
        if fn and "=?" in fn:
            fn = mime_header_decode(fn)
        return fn or None

    def descriptions(self) -> list[str]:
        return self.eml.header("content-description")

    def text(self) -> str | None:
        """Part text T of §4.8, or None when lei would not treat the part as text."""
        return self.text_info()[0]

    def text_info(self) -> tuple[str | None, bool]:
        """(T, decoded): decoded=False when T is the raw bytes as a latin-1 string."""
        if self._text is _UNSET:
            self._text = self._compute_text()
        return self._text  # type: ignore[return-value]  # set just above

    def _compute_text(self) -> tuple[str | None, bool]:
        ct_str = self.ct_string() or "text/plain"
        if _TEXT_HTML.search(ct_str):
            return None, False
        ct = self.content_type
        raw = self.decoded_body()
        charset = ct.params.get("charset")
        try:
            if charset is None:
                if ct.type == "text" and ct.subtype in ("plain", "html"):
                    return raw.decode("latin-1"), False
                raise ValueError("no charset")
            return decode_strict(raw, charset), True
        except ValueError:
            pass
        if _TEXT_ANY.search(ct_str) or (not self.is_message and _MP_MIXED.search(ct_str)):
            cte = self.eml.header_raw("content-transfer-encoding")
            if cte and _7BIT.search(cte[0]):
                return raw.decode("latin-1"), False
            try:
                return raw.decode("utf-8"), True
            except UnicodeDecodeError:
                return raw.decode("latin-1"), False
        if _OCTET.search(ct_str):
            try:
                t, dec = raw.decode("utf-8"), True
            except UnicodeDecodeError:
                t, dec = raw.decode("latin-1"), False
            return (t, dec) if _printable(t) else (None, False)
        return None, False


_PERL_SPACE = frozenset("\t\n\x0b\x0c\r \x85\xa0\u1680\u2028\u2029\u202f\u205f\u3000") | frozenset(
    chr(c) for c in range(0x2000, 0x200B)
)
_NONPRINT = frozenset(("Cc", "Cs", "Cn"))


def _printable(t: str) -> bool:
    """Every char is Perl \\p{Print} or whitespace."""
    if t.isascii():
        return all(" " <= c < "\x7f" or c in "\t\n\x0b\x0c\r" for c in t)
    cat = unicodedata.category
    return all(c in _PERL_SPACE or cat(c) not in _NONPRINT for c in t)


def content_type_of(eml: "_message.Message") -> ContentType:
    v = eml.header("content-type")
    return parse_content_type(v[0] if v else None)


def _delim_end(body: bytes, j: int, n: int, eof_ok: bool = False) -> int:
    """End (after the LF) of a delimiter line whose boundary text ends at j, or -1.

    The rest of the line may only hold spaces/TABs and a CR; with `eof_ok` the
    line may also end the body without an LF.
    """
    while j < n and body[j] in b" \t":
        j += 1
    if j < n and body[j] == 13:
        j += 1
    if j < n and body[j] == 10:
        return j + 1
    return n if eof_ok and j >= n else -1


def _split_multipart(body: bytes, boundary: str) -> tuple[list[bytes] | None, bytes]:
    """(sub-part byte strings or None when no delimiter is found, body after the epilogue cut).

    lei trims the body before looking for delimiters; a multipart sub-part that
    turns out to be a leaf keeps the trimmed body, the top-level message does not.
    Delimiters are found with bytes.find: a per-boundary regex costs a compile
    per message and backtracks at every byte.
    """
    bb = b"--" + boundary.encode("latin-1", "replace")
    n, lb = len(body), len(bb)
    # cut at the first closing line "--B--" (with the newline before it)
    close, pos, closed = bb + b"--", 0, False
    while not closed:
        i = body.find(close, pos)
        if i < 0:
            break
        pos = i + 1
        if (i == 0 or body[i - 1] == 10) and _delim_end(body, i + lb + 2, n, True) >= 0:
            if i:
                i -= 2 if i >= 2 and body[i - 2] == 13 else 1
            body, n, closed = body[:i], i, True
    if not closed and (body.endswith(b"\n\n") or body.endswith(b"\n\r\n")):
        body = body[: -2 if body.endswith(b"\n\n") else -3] + b"\n"
        n = len(body)
    # separators: the newline before a run of delimiter lines, plus the run
    seps: list[tuple[int, int]] = []
    pos = 0
    while True:
        i = body.find(bb, pos)
        if i < 0:
            break
        pos = i + 1
        if i and body[i - 1] != 10:
            continue
        e = _delim_end(body, i + lb, n)
        if e < 0:
            continue
        if seps and seps[-1][1] == i:
            seps[-1] = (seps[-1][0], e)
        else:
            st = i - (2 if i >= 2 and body[i - 2] == 13 else 1) if i else 0
            seps.append((st, e))
        pos = e
    if not seps:
        return None, body
    pieces, prev = [], 0
    for st, e in seps:
        pieces.append(body[prev:st])
        prev = e
    pieces.append(body[prev:])
    out = [pieces[0]] if b":" in pieces[0] else []
    out.extend(p for p in pieces[1:] if p.strip(b" \t\r\n"))
    return out, body


def walk(msg: "_message.Message") -> Iterator[Part]:
    """Depth-first pre-order MIME walk of lei's each_part (§4.6).

    Top level: a leaf is 0:1, a message/rfc822 container 0:0 with its body 1:1.
    """
    count = 0
    stack: list[tuple] = [(msg, 0, "", False)]  # (message, depth, idx, is_message_body)
    while stack:
        eml, depth, idx, is_msg = stack.pop()
        ct = content_type_of(eml)
        if ct.type == "multipart" and depth < MAX_DEPTH:
            bnd = ct.params.get("boundary")
            if bnd and len(bnd) < 2048:
                subs, cut = _split_multipart(eml.body, bnd)
                if subs is None:
                    # a leaf; below the top level it keeps the trimmed body (verified)
                    if idx and cut is not eml.body:
                        eml = eml.with_body(cut)
                else:
                    if is_msg:  # lei has moved the body into the sub-parts by now
                        count += 1
                        yield Part(eml.with_body(b""), depth, idx, is_message=True)
                    kids = []
                    for i, piece in enumerate(subs, 1):
                        cidx = f"{idx}.{i}" if idx else str(i)
                        kids.append((_message.Message.mime_piece(piece), cidx.count(".") + 1, cidx, False))
                    stack.extend(reversed(kids))
                    continue
        if ct.type == "message" and ct.subtype in _MSG_SUBTYPES:
            p = Part(eml, depth, idx or "0", is_message=is_msg, container=True)
            count += 1
            yield p
            if depth < MAX_DEPTH:
                cidx = f"{idx}.1" if idx else "1"
                # the raw body, not transfer-decoded (verified with a base64 message/rfc822)
                stack.append((_message.Message(eml.body), cidx.count(".") + 1, cidx, True))
        else:
            count += 1
            yield Part(eml, depth, idx or "1", is_message=is_msg)
        if count >= MAX_PARTS:
            return
