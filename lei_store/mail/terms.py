"""Xapian text/boolean terms of one message, exactly as lei 1.9 generates them
(spec §6.3 steps 2-5, §6.3.1 via diffterms, §6.4 prefixes).

Only terms: value slots 0-5 and the volatile K/L terms belong to the writer.

Strings reach Xapian the way Perl's Search::Xapian hands them over: a decoded
(character) string as UTF-8, a raw byte string as its bytes.  Xapian reads
invalid UTF-8 bytes as Latin-1 characters, so raw text that happens to be
UTF-8 yields the real words; we reproduce that by passing ``bytes``.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Callable

import xapian

from lei_store.mail.diffterms import has_diff, index_diff
from lei_store.mail.message import overview_fields
from lei_store.mail.mime import walk
from lei_store.mail.patchid import patch_id

if TYPE_CHECKING:
    from lei_store.mail.message import Message, OverviewFields
    from lei_store.mail.mime import Part

__all__ = ["index_message", "index_copy_list_ids", "new_termgenerator"]

_STEMMER = xapian.Stem("english")
# A run of quoted lines, searched in "\n" + T: the leading literal lets the
# regex engine skip ahead instead of trying a match at every offset.
_QUOTED_RUN = re.compile(r"\n((?:>[^\n]*\n)+)")
# Perl \w on byte strings is ASCII only; Message-IDs are raw header bytes.
_LONG_WORD = re.compile(r"\w{12,}", re.A)
_WORD3 = re.compile(r"\w{3,}", re.A)
_LIST_ID = re.compile(r"<([^>]+)>")
# A filename that went through RFC 2047 or charset-tagged RFC 2231 decoding.
_DECODED_PARAM = re.compile(r"=\?|\*\s*=\s*\"?[\w.:-]*'")
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def new_termgenerator() -> xapian.TermGenerator:
    """A TermGenerator configured like lei's (english stemmer, STEM_SOME,
    positions); reuse it across documents to save its construction."""
    tg = xapian.TermGenerator()
    tg.set_stemmer(_STEMMER)
    tg.set_stemming_strategy(xapian.TermGenerator.STEM_SOME)
    return tg


def _perl_bytes(s: str) -> str | bytes:
    """Header values, ids and raw filenames as Xapian gets them from lei.

    Code points <= 0xFF are passed as Latin-1 bytes, i.e. as a Perl byte
    string: Xapian then reads valid UTF-8 sequences as UTF-8 and other bytes
    as Latin-1.  lei does this even for RFC 2047-decoded From/To/Cc/Subject
    (a decoded "cafÃ©" is indexed as "café"; verified with lei).
    """
    if s.isascii():
        return s
    try:
        return s.encode("latin-1")
    except UnicodeEncodeError:
        return s


def _split_quoted(t: str) -> list[str]:
    """[non-quoted, quoted, non-quoted, ...] like Perl's capturing split on
    maximal runs of ``>`` lines: a leading empty non-quoted section is kept,
    a trailing empty one is not.  *t* ends with a newline."""
    runs = []
    start = 0  # offset in t of the current non-quoted section
    for m in _QUOTED_RUN.finditer("\n" + t):
        qs, qe = m.start(1) - 1, m.end(1) - 1  # back to offsets in t
        runs.append(t[start:qs])
        runs.append(t[qs:qe])
        start = qe
    if start < len(t):
        runs.append(t[start:])
    return runs


def _filename_value(part: "Part", fn: str) -> str | bytes:
    """Filenames decoded from RFC 2047/2231 reach Xapian as characters (a
    Latin-1 mojibake name keeps its mojibake, verified with lei), raw ones as
    their bytes."""
    eml = part.eml
    raws = eml.header_raw("content-disposition") + eml.header_raw("content-type")
    if any(_DECODED_PARAM.search(v) for v in raws):
        return fn
    return _perl_bytes(fn)


class _Indexer:
    """The text() helper of §6.3 (index_text, then increase_termpos) and the
    steps built on it, for one document."""

    __slots__ = ("tg", "doc", "_index_text", "_bump")

    def __init__(self, tg: xapian.TermGenerator, doc: xapian.Document) -> None:
        self.tg = tg
        self.doc = doc
        self._index_text = tg.index_text
        self._bump = tg.increase_termpos

    def text(self, s: str | bytes, prefix: str, wdf: int = 1) -> None:
        self._index_text(s, wdf, prefix)
        self._bump()

    def headers(self, fields: "OverviewFields") -> None:
        """Step 2: From, To, Cc, Subject (each only if non-empty)."""
        subject, from_, to, cc = fields
        for value, prefix in ((from_, "A"), (to, "XTO"), (cc, "XCC"), (subject, "S")):
            if value:
                self.text(_perl_bytes(value), prefix)

    def mids(self, mids: list[str]) -> None:
        """Step 4: XM text per Message-ID (+ its 3+ char words when it has a
        12+ char word), then the boolean Q terms."""
        text = self.text
        for mid in mids:
            text(_perl_bytes(mid), "XM")
            if _LONG_WORD.search(mid):
                text(_perl_bytes(" ".join(_WORD3.findall(mid))), "XM")
        for mid in mids:
            self.doc.add_boolean_term(_perl_bytes("Q" + mid))

    def list_ids(self, msg: "Message") -> None:
        """Step 5: G<lid> boolean and XL text for every List-Id <...>."""
        for value in msg.header_raw("List-Id"):
            m = _LIST_ID.search(value)
            if m is None:
                continue
            lid = m.group(1).translate(_ASCII_LOWER)  # Perl lc on a byte string
            self.doc.add_boolean_term(_perl_bytes("G" + lid))
            self.text(_perl_bytes(lid), "XL")

    def body(self, t: str, decoded: bool) -> None:
        """Step 3 for one part text T: XDFID, then quoted/non-quoted runs."""
        if not t.endswith("\n"):
            t += "\n"
        index_text: Callable[[str, int, str], None] = self._index_text
        if not decoded:
            # raw bytes: Xapian gets the bytes themselves
            def index_text(s: str, wdf: int, prefix: str, _it: Callable = self._index_text) -> None:
                _it(s.encode("latin-1"), wdf, prefix)

        bump = self._bump
        diff = has_diff(t)
        if diff:
            # lei utf8-encodes T for git in every case: raw 8-bit text is
            # thus double-encoded (verified against lei with Latin-1 and UTF-8)
            pid = patch_id(t)
            if pid is not None:
                self.doc.add_term("XDFID" + pid)
        if "\n>" not in t and t[0] != ">":
            runs = [t]
        else:
            runs = _split_quoted(t)
        single = len(runs) == 1
        for k, run in enumerate(runs):
            if k & 1:
                index_text(run, 0, "XQUOT")  # quoted: positions but no wdf
            elif diff and (single or has_diff(run)):
                index_diff(run, index_text, bump, self.doc.add_term)
                continue  # index_diff bumps after each of its texts
            else:
                index_text(run, 1, "XNQ")
            bump()


def index_message(
    doc: xapian.Document,
    msg: "Message",
    fields: "OverviewFields",
    tg: xapian.TermGenerator | None = None,
) -> None:
    """Add every text and boolean term lei 1.9 derives from *msg* to *doc*
    (§6.3 steps 2-5); *fields* are the §4.9 strings of *msg*.  No values and
    no K/L terms.  *tg* may be a reused generator from new_termgenerator()."""
    if tg is None:
        tg = new_termgenerator()
    tg.set_document(doc)  # also restarts term positions at 0
    ix = _Indexer(tg, doc)
    ix.headers(fields)
    for part in walk(msg):
        fn = part.filename()
        if fn:
            ix.text(_filename_value(part, fn), "XFN")
        if part.is_message:
            # the complete message inside a message/rfc822 part: ids and
            # List-Ids first, then its From/To/Cc/Subject (lei's order)
            inner = part.eml
            ix.mids(inner.index_mids())
            ix.list_ids(inner)
            ix.headers(overview_fields(inner))
        t, decoded = part.text_info()  # decoded=False: T is raw bytes as Latin-1
        if t is not None:
            ix.body(t, decoded)
    ix.mids(msg.index_mids())
    ix.list_ids(msg)


def index_copy_list_ids(
    doc: xapian.Document, copy: "Message", tg: xapian.TermGenerator | None = None
) -> None:
    """What lei adds to an existing document when a content-duplicate *copy*
    is attached to it (§3.1): the copy's List-Id terms, G<lid> plus XL text,
    from a fresh term position (verified with lei: XL positions restart at 1).
    """
    if tg is None:
        tg = new_termgenerator()
    tg.set_document(doc)
    _Indexer(tg, doc).list_ids(copy)
