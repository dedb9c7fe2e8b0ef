"""Text in mail and its encodings, as lei (Perl Encode) reads them (spec §4.2, §4.7): charset
names and their codecs, lax and strict decoding, base64 and quoted-printable transfer
encodings, and RFC 2047 encoded words in header values.

`mime_header_decode` follows Perl Encode's lax "MIME-Header" decoder: adjacent words with
the same charset/encoding are joined before decoding, whitespace between encoded words is
dropped, unknown charsets leave the word as written, malformed bytes become U+FFFD.

Message, MIME and address parsing all build on this module; it imports none of them.
"""
from __future__ import annotations

import binascii
import codecs
import re
from functools import lru_cache

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


# --- RFC 2047 -------------------------------------------------------------

_CS = r"[!\"#$%&'+\-0-9A-Z\\^_`a-z{|}~]+"
_LANG = r"(?:\*[A-Za-z]{1,8}(?:-[0-9A-Za-z]{1,8})*)?"
_WS = r"[ \t\n\r\f\v]"
_EW = rf"=\?{_CS}{_LANG}\?[QqBb]\?[^?]*\?="
_EW_CAP = re.compile(rf"=\?({_CS})({_LANG})\?([QqBb])\?([^?]*)\?=({_WS}*)")
_EW_MERGE = re.compile(rf"=\?({_CS})({_LANG})\?([QqBb])\?([^?]*)\?={_WS}*=\?\1\2\?\3\?([^?]*)\?=")
_EW_RUN = re.compile(rf"(?:{_EW}{_WS}*)*{_EW}")
_QHEX = re.compile(r"=([0-9A-Fa-f]{2})")
_B64_PAD_SPLIT = re.compile(r"(?<==)(?=[^=])")


def _decode_word(charset: str, enc: str, text: str) -> str | None:
    codec = mime_header_codec(charset)
    if codec is None:
        return None
    text = text.replace("\r", "").replace("\n", "")
    if enc in "Bb":
        octets = b"".join(b64decode_lax(t.encode("latin-1", "replace")) for t in _B64_PAD_SPLIT.split(text))
    else:
        text = _QHEX.sub(lambda m: chr(int(m.group(1), 16)), text.replace("_", " "))
        octets = text.encode("latin-1", "replace")
    return decode_lax(octets, codec)


def mime_header_decode(value: str) -> str:
    """Decode RFC 2047 encoded words in a (latin-1 str) header value, leniently."""
    if "=?" not in value:
        return value
    # join adjacent same-charset words so multi-byte chars split across words survive
    for _ in range(1000):
        m = _EW_MERGE.search(value)
        if not m:
            break
        cs, lang, enc, t1, t2 = m.groups()
        value = f"{value[:m.start()]}=?{cs}{lang}?{enc}?{t1}{t2}?={value[m.end():]}"
    out: list[str] = []
    pos = 0
    for run in _EW_RUN.finditer(value):
        out.append(value[pos : run.start()].replace("\r", "").replace("\n", ""))
        for w in _EW_CAP.finditer(run.group()):
            dec = _decode_word(w.group(1), w.group(3), w.group(4))
            if dec is None:  # unknown charset: keep the word, whitespace-separated
                prev = out[-1] if out else ""
                if prev and prev[-1] not in " \t":
                    out.append(" ")
                out.append(w.group())
            else:
                out.append(dec)
        pos = run.end()
    out.append(value[pos:].replace("\r", "").replace("\n", ""))
    return "".join(out)


def raw_to_text(s: str) -> str:
    """A raw (latin-1) value as lei writes it out: valid UTF-8 bytes are read as UTF-8."""
    if s.isascii():
        return s
    try:
        return s.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return s
