"""MIME layer as lei sees it (spec §4.6–4.8): charsets, transfer decoding,
Content-Type parameters, the part walk, part filename and part text.
"""
from __future__ import annotations

import binascii
import codecs
import re
import unicodedata
from functools import lru_cache
from typing import Iterator

from . import addresses as _addr
from . import message as _message

# --- charsets: Perl Encode naming -------------------------------------------

# Perl Encode's canonical names -> Python codec (None: Perl knows it, Python does not)
_PERL2PY = {
    "ascii": "ascii", "utf-8-strict": "utf-8", "utf8": "utf8-lax", "UTF-7": "utf-7",
    "UTF-16": "utf-16", "UTF-16BE": "utf-16-be", "UTF-16LE": "utf-16-le",
    "UTF-32": "utf-32", "UTF-32BE": "utf-32-be", "UTF-32LE": "utf-32-le",
    "UCS-2BE": "utf-16-be", "UCS-2LE": "utf-16-le",
    "koi8-r": "koi8-r", "koi8-u": "koi8-u", "koi8-f": None, "viscii": None,
    "euc-cn": "gb2312", "cp936": "gbk", "hz": "hz", "euc-jp": "euc_jp",
    "shiftjis": "shift_jis", "7bit-jis": "iso2022_jp", "iso-2022-jp": "iso2022_jp",
    "iso-2022-jp-1": "iso2022_jp_1", "iso-2022-kr": "iso2022_kr", "euc-kr": "euc_kr",
    "cp949": "cp949", "johab": "johab", "big5-eten": "big5", "big5-hkscs": "big5hkscs",
    "cp932": "cp932", "cp950": "cp950", "hp-roman8": "hp_roman8", "cp37": "cp037",
    "MacRoman": "mac_roman", "MacCentralEurRoman": "mac_latin2", "MacCyrillic": "mac_cyrillic",
    "MacGreek": "mac_greek", "MacIcelandic": "mac_iceland", "MacTurkish": "mac_turkish",
    "MacArabic": "mac_arabic", "MacCroatian": "mac_croatian", "MacRomanian": "mac_romanian",
    "MacUkrainian": None, "MacRumanian": None, "MacSami": None, "MacThai": None,
    "MacHebrew": None, "MacFarsi": None, "MacJapanese": None, "MacKorean": None,
    "MacChineseSimp": None, "MacChineseTrad": None, "MacDingbats": None, "MacSymbol": None,
    "AdobeStandardEncoding": None, "AdobeSymbol": None, "AdobeZdingbat": None,
    "ascii-ctrl": None, "dingbats": None, "gsm0338": None, "iso-ir-165": None, "nextstep": None,
    "null": None, "posix-bc": None, "symbol": None, "gb12345-raw": None, "gb2312-raw": None,
    "jis0201-raw": None, "jis0208-raw": None, "jis0212-raw": None, "ksc5601-raw": None,
}
_PERL2PY.update({f"iso-8859-{i}": f"iso8859_{i}" for i in (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 14, 15, 16)})
_PERL2PY.update({f"cp{i}": f"cp{i}" for i in (
    424, 437, 500, 737, 775, 850, 852, 855, 856, 857, 858, 860, 861, 862, 863, 864, 865,
    866, 869, 874, 875, 1006, 1026, 1047, 1250, 1251, 1252, 1253, 1254, 1255, 1256, 1257, 1258)})
_PERL2PY["cp1047"] = None
_CANON = {k.lower(): k for k in _PERL2PY}
_LATIN2ISO = (0, 1, 2, 3, 4, 9, 10, 13, 14, 15, 16)
_WINLATIN = {"latin1": 1252, "latin2": 1250, "cyrillic": 1251, "greek": 1253, "turkish": 1254,
             "hebrew": 1255, "arabic": 1256, "baltic": 1257, "vietnamese": 1258}


def _a(rx: str, fn, flags=re.I):
    return re.compile(rx, flags), fn


# Encode::Alias rules, highest precedence first; each yields a name to look up again.
_ALIASES = [
    _a(r"^([^\s_]+)[\s_]+([^\s_]*)$", lambda m: f"{m[1]}-{m[2]}", 0),
    _a(r"\bUTF-8$", lambda m: "utf-8-strict"),
    _a(r"cp65001", lambda m: "utf-8-strict"),
    _a(r"cp65000", lambda m: "UTF-7"),
    _a(r"\bhk(?:scs)?[-_]?big5$", lambda m: "big5-hkscs"),
    _a(r"\bbig5-?hk(?:scs)?$", lambda m: "big5-hkscs"),
    _a(r"\btca[-_]?big5$", lambda m: "big5-eten"),
    _a(r"\bbig5-?et(?:en)?$", lambda m: "big5-eten"),
    _a(r"\bbig-?5$", lambda m: "big5-eten"),
    _a(r"\bks_c_5601-1987$", lambda m: "cp949"),
    _a(r"(?:x-)?windows-949$", lambda m: "cp949"),
    _a(r"(?:x-)?uhc$", lambda m: "cp949"),
    _a(r"\bkr.*euc$", lambda m: "euc-kr"),
    _a(r"\beuc.*kr$", lambda m: "euc-kr"),
    _a(r"\bwindows-31j$", lambda m: "cp932"),
    _a(r"\bsjis$", lambda m: "shiftjis"),
    _a(r"\bshift.*jis$", lambda m: "shiftjis"),
    _a(r"\bujis$", lambda m: "euc-jp"),
    _a(r"\bjp.*euc$", lambda m: "euc-jp"),
    _a(r"\beuc.*jp$", lambda m: "euc-jp"),
    _a(r"\bjis$", lambda m: "7bit-jis"),
    _a(r"\bGB[-_ ]?2312(?!-?raw)", lambda m: "euc-cn"),
    _a(r"^gbk$", lambda m: "cp936"),
    _a(r"\bcn.*euc$", lambda m: "euc-cn"),
    _a(r"\beuc.*cn$", lambda m: "euc-cn"),
    _a(r"\bkoi8[\s\-_]*([ru])$", lambda m: f"koi8-{m[1]}"),
    _a(r"^macce$", lambda m: "MacCentralEurRoman"),
    _a(r"^macintosh$", lambda m: "MacRoman"),
    _a(r"^(?:x[_-])?mac[_-](.*)$", lambda m: f"mac{m[1]}"),
    _a(r"\b(?:cp|ibm|ms|windows)[-_ ]?(\d{2,4})$", lambda m: f"cp{m[1]}"),
    _a(r"\btis-?620\b", lambda m: "iso-8859-11"),
    _a(r"^thai$", lambda m: "iso-8859-11"),
    _a(r"^hebrew$", lambda m: "iso-8859-8"),
    _a(r"^greek$", lambda m: "iso-8859-7"),
    _a(r"^arabic$", lambda m: "iso-8859-6"),
    _a(r"^cyrillic$", lambda m: "iso-8859-5"),
    _a(r"^ascii$", lambda m: "US-ascii"),
    _a(r"\bwin(latin[12]|cyrillic|baltic|greek|turkish|hebrew|arabic|vietnamese)$",
       lambda m: f"cp{_WINLATIN[m[1].lower()]}"),
    _a(r"\b(?:iso[-_]?)?latin[-_]?(\d+)$",
       lambda m: f"iso-8859-{_LATIN2ISO[int(m[1])]}" if int(m[1]) < len(_LATIN2ISO) and int(m[1]) else None),
    _a(r"^(.+)@euro$", lambda m: m[1]),
    _a(r"\bANSI[-_]?X3\.4[-_]?1968$", lambda m: "ascii"),
    _a(r"\b(?:hp-)?(arabic|greek|hebrew|kana|roman|thai|turkish)8$", lambda m: f"{m[1]}8"),
    _a(r"\biso8859(\d+)$", lambda m: f"iso-8859-{m[1]}"),
    _a(r"\biso[-_]?(\d+)[-_](\d+)$", lambda m: f"iso-{m[1]}-{m[2]}"),
    _a(r"\b(?:ISO[-_]?)?646(?:[-_]?US)?$", lambda m: "ascii"),
    _a(r"^C$", lambda m: "ascii", 0),
    _a(r"^(?:US-?)ascii$", lambda m: "ascii"),
    _a(r"^UTF-?(16|32)$", lambda m: f"UTF-{m[1]}"),
    _a(r"^UTF-?(16|32)-?LE$", lambda m: f"UTF-{m[1]}LE"),
    _a(r"^UTF-?(16|32)-?BE$", lambda m: f"UTF-{m[1]}BE"),
    _a(r"^iso-10646-1$", lambda m: "UCS-2BE"),
    _a(r"^UCS-?4-?(BE|LE|)?$", lambda m: f"UTF-32{(m[1] or '').upper()}"),
    _a(r"^UCS-?2-?(BE)?$", lambda m: "UCS-2BE"),
    _a(r"^UCS-?2-?LE$", lambda m: "UCS-2LE"),
    _a(r"^(unicode-1-1-)?UTF-?7$", lambda m: "UTF-7"),
    _a(r"^(.*)$", lambda m: m[1].lower(), 0),
]

# MIME charset names Encode::find_mime_encoding knows (upper-cased) -> Perl name
_MIME_NAMES = {
    "US-ASCII": "ascii", "UTF-8": "utf-8-strict", "UTF-7": "UTF-7", "UTF-16": "UTF-16",
    "UTF-16BE": "UTF-16BE", "UTF-16LE": "UTF-16LE", "UTF-32": "UTF-32", "UTF-32BE": "UTF-32BE",
    "UTF-32LE": "UTF-32LE", "BIG5-HKSCS": "big5-hkscs", "GBK": "cp936", "EUC-CN": "euc-cn",
    "EUC-JP": "euc-jp", "EUC-KR": "euc-kr", "HP-ROMAN8": "hp-roman8", "HZ-GB-2312": "hz",
    "ISO-2022-JP": "iso-2022-jp", "ISO-2022-JP-1": "iso-2022-jp-1", "ISO-2022-KR": "iso-2022-kr",
    "KOI8-R": "koi8-r", "KOI8-U": "koi8-u", "SHIFT_JIS": "shiftjis", "VISCII": "viscii",
    "IBM037": "cp37", "IBM1026": "cp1026", "IBM1047": "cp1047",
}
_MIME_NAMES.update({f"ISO-8859-{i}": f"iso-8859-{i}" for i in (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 13, 14, 15, 16)})
_MIME_NAMES.update({f"WINDOWS-{i}": f"cp{i}" for i in range(1250, 1259)})
_MIME_NAMES.update({f"IBM{i}": f"cp{i}" for i in (424, 437, 500, 775, 850, 852, 855, 857, 860,
                                                    861, 862, 863, 864, 865, 866, 869)})


def _perl_find(name: str, seen: frozenset = frozenset()) -> str | None:
    """Perl-Encode canonical name for `name` (find_encoding), or None if unknown."""
    if name in _PERL2PY:
        return name
    canon = _CANON.get(name.lower())
    if canon:
        return canon
    if name in seen:
        return None
    seen = seen | {name}
    for rx, fn in _ALIASES:
        m = rx.search(name)
        if m:
            new = fn(m)
            if new is None or new == name:
                continue
            found = _perl_find(new, seen)
            if found:
                return found
    return None


_MISSING = object()


@lru_cache(maxsize=512)
def find_codec(charset: str):
    """Python codec for a charset name as Perl's Encode::find_encoding resolves it.

    Returns None when Perl would not know the name; `_MISSING` when Perl knows
    it but Python has no such codec (both count as "cannot decode").
    """
    perl = _perl_find(charset.strip()) if charset.strip() else None
    if perl is None:
        return None
    py = _PERL2PY.get(perl)
    return py if py else _MISSING


@lru_cache(maxsize=512)
def mime_header_codec(charset: str):
    """Codec for an RFC 2047 word: MIME names first, then Perl aliases; None = unknown."""
    perl = _MIME_NAMES.get(charset.upper())
    if perl is None:
        if charset.lower() == "utf8":
            charset = "UTF-8"
        perl = _perl_find(charset)
    if perl is None:
        return None
    py = _PERL2PY.get(perl)
    return py if py else None


def _pycodec(codec: str) -> str:
    return "utf-8" if codec == "utf8-lax" else codec


def decode_lax(octets: bytes, codec: str) -> str:
    """Decode with substitution characters, like Encode's default check."""
    try:
        return octets.decode(_pycodec(codec), "replace")
    except LookupError:
        return octets.decode("latin-1")


def decode_strict(octets: bytes, charset: str) -> str:
    """Decode per Perl Encode naming, croaking (ValueError) on unknown charset or bad bytes."""
    codec = find_codec(charset)
    if codec is None or codec is _MISSING:
        raise ValueError(f"unknown charset {charset!r}")
    if codec == "utf-16" and not octets.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        codec = "utf-16-be"  # Perl reads BOM-less UTF-16/32 as big-endian
    elif codec == "utf-32" and not octets.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):
        codec = "utf-32-be"
    # Perl's lax "utf8" accepts encoded surrogates; UnicodeDecodeError is a ValueError
    if codec == "utf8-lax":
        return octets.decode("utf-8", "surrogatepass")
    return octets.decode(codec)


# --- transfer decoding ------------------------------------------------------

_B64_JUNK = re.compile(rb"[^A-Za-z0-9+/]+")


def b64decode_lax(data: bytes) -> bytes:
    """MIME::Base64-style: ignore junk, stop at the first '=', tolerate short tails."""
    eq = data.find(b"=")
    if eq >= 0:
        data = data[:eq]
    data = _B64_JUNK.sub(b"", data)
    rem = len(data) % 4
    if rem == 1:
        data = data[:-1]
        rem = 0
    if rem:
        data += b"=" * (4 - rem)
    try:
        return binascii.a2b_base64(data)
    except binascii.Error:
        return b""


_QP_TRAIL = re.compile(rb"[ \t]+(?=\n|\Z)")
_QP_SOFT = re.compile(rb"=\n")
_QP_HEX = re.compile(rb"=([0-9A-Fa-f]{2})")


def qp_decode(data: bytes) -> bytes:
    """Quoted-printable as lei decodes it (§4.6).

    Line ends become LF, then every LF (also one produced by =0A) becomes CRLF,
    so an encoded =0D=0A comes out as CR CR LF.  binascii does the =XX work
    (fuzz-checked against the plain regex version) except in the corners where
    it differs: a trailing '=' (lei keeps it), '==' and '=' before CR or LF.
    """
    data = data.replace(b"\r\n", b"\n")
    if b" \n" in data or b"\t\n" in data or data.endswith((b" ", b"\t")):
        data = _QP_TRAIL.sub(b"", data)
    data = data.replace(b"=\n", b"")
    if b"=" in data:
        if b"=\r" in data or b"==" in data or b"=\n" in data:
            data = _QP_HEX.sub(lambda m: bytes((int(m.group(1), 16),)), data)
        elif data.endswith(b"="):
            data = binascii.a2b_qp(data[:-1]) + b"="
        else:
            data = binascii.a2b_qp(data)
    return data.replace(b"\n", b"\r\n")


_CTE_TOKEN = re.compile(r"[^\s;]+")


def transfer_decode(body: bytes, cte: str) -> bytes:
    m = _CTE_TOKEN.search(cte)
    enc = m.group().lower() if m else ""
    if enc == "base64":
        return b64decode_lax(body)
    if enc in ("quoted-printable", "qp", "quotedprint"):
        return qp_decode(body)
    return body


# --- Content-Type -----------------------------------------------------------

_TYPE = re.compile(r"[ \t\r\n]*([^\s/;]+)[ \t\r\n]*/[ \t\r\n]*([^\s;]+)")
_PARAM = re.compile(r"[\s;]*([^\s=;]+)[ \t\r\n]*=[ \t\r\n]*(?:\"((?:[^\"\\]|\\.)*)(?:\"|\Z)|([^;]*))", re.S)
_QUOTED_PAIR = re.compile(r"\\(.)", re.S)
_PCT = re.compile(r"%([0-9A-Fa-f]{2})")
_RFC2231 = re.compile(r"^([^*]+)\*(?:(\d+)\*?|)$")


class ContentType:
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
        t, s, p = DEFAULT_CT
        return ContentType(t, s, dict(p))
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
        self._text = _MISSING

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
            fn = parse_params(cd[0], m.end()).get("filename")
        if not fn:
            fn = self.content_type.params.get("name")
        if fn and "=?" in fn:
            fn = _addr.mime_header_decode(fn)
        return fn or None

    def descriptions(self) -> list[str]:
        return self.eml.header("content-description")

    def text(self) -> str | None:
        """Part text T of §4.8, or None when lei would not treat the part as text."""
        return self.text_info()[0]

    def text_info(self) -> tuple[str | None, bool]:
        """(T, decoded): decoded=False when T is the raw bytes as a latin-1 string."""
        if self._text is _MISSING:
            self._text = self._compute_text()
        return self._text

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
