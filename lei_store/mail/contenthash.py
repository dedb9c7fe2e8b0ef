"""lei's message content hash (spec §3.2): SHA-256 over headers and part texts.

Used for message-level dedup and synthetic Message-IDs; it is never stored,
so it only has to agree with lei's for the same bytes.
"""
from __future__ import annotations

import hashlib
import re

from lei_store.mail.message import Message
from lei_store.mail.mime import walk

_DQUOTE_WS = re.compile(r"[\r\n\t ]+")
_AT_UPPER = re.compile(r"@(?=[a-z0-9_.()\-]*[A-Z])(\S+)")
_PERL_WS_ASCII = " \t\n\r\f\v"
_PERL_WS_UNI = _PERL_WS_ASCII + "\x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007" \
    "\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"


def _u8(s: str) -> bytes:
    """utf8-encode of a Perl string (§4.1): latin-1 raw chars get double-encoded."""
    return s.encode("utf-8", "surrogatepass")


def _addr_feed(h, name: str, v: str) -> None:
    v = _DQUOTE_WS.sub(" ", v.replace('"', ""))
    if "@" in v:
        v = _AT_UPPER.sub(lambda m: "@" + m.group(1).lower(), v)
    h.update(_u8(f"{name}\0{v}\0"))


def content_hash(msg: Message) -> bytes:
    """32-byte SHA-256 digest identifying a message's content (§3.2)."""
    h = hashlib.sha256()
    mids = set(msg.mids())
    seen: set[str] = set()
    for r in msg.references():
        if r not in mids and r not in seen:
            seen.add(r)
            h.update(b"ref\0" + r.encode("latin-1", "replace") + b"\0")
    if msg.header_raw("from"):
        for v in msg.header("from"):
            _addr_feed(h, "From", v)
    else:
        for v in msg.header("sender"):
            _addr_feed(h, "Sender", v)
    for v in msg.header("subject"):
        h.update(_u8(f"Subject\0{v}\0"))
    for v in msg.header_raw("date"):
        h.update(_u8(f"Date\0{v}\0"))
    for name in ("To", "Cc"):
        for v in msg.header(name):
            _addr_feed(h, name, v)
    for part in walk(msg):
        h.update(f"\0{part.depth}:{part.idx}\0".encode())
        fn = part.filename()
        if fn is not None:
            h.update(b"fn\0" + _u8(fn) + b"\0")
        for d in part.descriptions():
            h.update(b"d\0" + _u8(d) + b"\0")
        h.update(b"b\0")
        text, decoded = part.text_info()
        if text is None:
            h.update(part.decoded_body())
        else:
            if "\r\n" in text:
                text = text.replace("\r\n", "\n")
            h.update(_u8(text.rstrip(_PERL_WS_UNI if decoded else _PERL_WS_ASCII)))
    return h.digest()
