"""Address lists as lei sees them (spec §4.2, §2.2, §9.5).

The address parser follows the observable behaviour of Email::Address::XS:
comments between a phrase and `<addr>` are lost, the last comment after the
address is kept, parsing stops at the first element it cannot make sense of.
"""
from __future__ import annotations

import re
from functools import lru_cache
from typing import NamedTuple

# --- address parsing ------------------------------------------------------


class Address(NamedTuple):
    """One element of an address list, as Email::Address::XS splits it."""
    phrase: str | None
    user: str | None
    host: str | None
    comment: str | None

    @property
    def address(self) -> str | None:
        if self.user is None or self.host is None:
            return None
        return f"{_quote_local(self.user)}@{self.host}"


_ATEXT = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*+-/=?^_`{|}~")
_WORDCH = _ATEXT | {"."}


def _is_atext(c: str) -> bool:
    return c in _ATEXT or c >= "\x80"


class _Parser:
    """Hand-written RFC 5322 address-list parser; positions index into `s`."""

    def __init__(self, s: str):
        self.s = s
        self.n = len(s)
        self.comment: str | None = None

    def cfws(self, i: int, keep: bool = False) -> int:
        s, n = self.s, self.n
        while i < n:
            c = s[i]
            if c in " \t\r\n":
                i += 1
            elif c == "(":
                depth, j, buf = 1, i + 1, []
                while j < n and depth:
                    c = s[j]
                    if c == "\\" and j + 1 < n:
                        buf.append(s[j + 1])
                        j += 2
                        continue
                    if c == "(":
                        depth += 1
                    elif c == ")":
                        depth -= 1
                        if not depth:
                            break
                    buf.append(c)
                    j += 1
                if depth:
                    raise ValueError("unterminated comment")
                if keep:
                    self.comment = "".join(buf)
                i = j + 1
            else:
                break
        return i

    def quoted(self, i: int) -> tuple[str, int]:
        s, n, buf = self.s, self.n, []
        j = i + 1
        while j < n:
            c = s[j]
            if c == "\\" and j + 1 < n:
                buf.append(s[j + 1])
                j += 2
            elif c == '"':
                return "".join(buf), j + 1
            else:
                buf.append(c)
                j += 1
        raise ValueError("unterminated quoted string")

    def word_run(self, i: int, chars) -> tuple[str, int]:
        s, n, j = self.s, self.n, i
        while j < n and (s[j] in chars or s[j] >= "\x80"):
            j += 1
        return s[i:j], j

    def phrase(self, i: int) -> tuple[list[str], int]:
        words: list[str] = []
        while True:
            i = self.cfws(i, True)
            if i < self.n and self.s[i] == '"':
                w, i = self.quoted(i)
            elif i < self.n and (self.s[i] in _WORDCH or self.s[i] >= "\x80"):
                w, i = self.word_run(i, _WORDCH)
            else:
                return words, i
            words.append(w)

    def addr_spec(self, i: int) -> tuple[str | None, str | None, int]:
        """local-part ['@' domain], remembering the last comment seen after its tokens."""
        s, n = self.s, self.n
        if i < n and s[i] == ".":
            raise ValueError("local part starts with a dot")
        parts: list[str] = []
        while i < n:
            if s[i] == '"':
                w, i = self.quoted(i)
            else:
                w, i = self.word_run(i, _ATEXT)
                if not w and not (i < n and s[i] == "."):
                    break
            parts.append(w)
            i = self.cfws(i, True)
            if i < n and s[i] == ".":
                parts.append(".")
                i = self.cfws(i + 1, True)
            else:
                break
        user = "".join(parts) if parts else None
        host = None
        if i < n and s[i] == "@":
            i = self.cfws(i + 1, True)
            if i < n and s[i] == "[":
                j = s.find("]", i)
                if j < 0:
                    raise ValueError("unterminated domain literal")
                host, i = s[i : j + 1], j + 1
                i = self.cfws(i, True)
            else:
                hp = []
                while i < n:
                    w, i = self.word_run(i, _ATEXT)
                    hp.append(w)
                    i = self.cfws(i, True)
                    if i < n and s[i] == ".":
                        hp.append(".")
                        i = self.cfws(i + 1, True)
                    else:
                        break
                host = "".join(hp) or None
        return user, host, i

    def mailbox(self, i: int, at_group: bool) -> tuple[object, int]:
        """Returns (Address | ('group', name), next index)."""
        s, n = self.s, self.n
        self.comment = None
        words, j = self.phrase(i)
        phrase_comment, self.comment = self.comment, None  # only a lone phrase keeps its comment
        if j < n and s[j] == ":" and words and not at_group:
            return ("group", " ".join(words)), j + 1
        if j < n and s[j] == "<":
            k = self.cfws(j + 1, True)
            if k < n and s[k] == "@":  # obsolete source route
                c = s.find(":", k)
                k = self.cfws(c + 1, True) if c >= 0 else k
            user, host, k = self.addr_spec(k)
            if k < n and s[k] == ">":
                k = self.cfws(k + 1, True)
            phrase = " ".join(words) or None
            return Address(phrase, user, host, self.comment), k
        if len(words) == 1 and j >= n and "@" not in s[i:]:
            return Address(words[0], None, None, phrase_comment), j
        self.comment = None
        k = self.cfws(i)
        user, host, k = self.addr_spec(k)
        return Address(None, user, host, self.comment), k

    def parse(self) -> list[tuple[str | None, list[Address]]]:
        s, n = self.s, self.n
        groups: list[tuple[str | None, list[Address]]] = []
        cur: list[Address] = []
        gname: str | None = None
        in_group = False
        expect = True  # at the start of an element
        in_element = False  # parsing one (not the comments before it)
        i = 0
        try:
            while i < n:
                i = self.cfws(i)
                if i >= n:
                    break
                c = s[i]
                if c == ",":
                    if expect:  # Email::Address::XS reports an empty element here
                        cur.append(Address(None, None, None, None))
                    expect = True
                    i += 1
                    continue
                if c == ";" and in_group:
                    groups.append((gname, cur))
                    cur, gname, in_group = [], None, False
                    expect = False  # the group was the element: no empty one before the next comma
                    i = self.cfws(i + 1)
                    if i < n and s[i] != ",":
                        break  # only a comma may follow a group
                    continue
                in_element = True
                item, j = self.mailbox(i, in_group)
                in_element = False
                if type(item) is tuple:  # ("group", name)
                    if cur:
                        groups.append((None, cur))
                    cur, gname, in_group = [], item[1], True
                    expect = True
                    i = j
                    continue
                assert isinstance(item, Address)
                cur.append(item)  # even empty (`<>`, `@`, a stray `;`): Email::Address::XS reports it
                expect = False
                i = j
                if i < n and s[i] not in ",;":
                    break  # junk: Email::Address::XS gives up here
                if i < n and s[i] == ";" and not in_group:
                    break
        except ValueError:  # Email::Address::XS reports a broken element as an empty one, and
            if in_element and expect:  # nothing for a broken comment between elements
                cur.append(Address(None, None, None, None))
        if cur or in_group:
            groups.append((gname if in_group else None, cur))
        return groups


def parse_groups(value: str) -> list[tuple[str | None, list[Address]]]:
    """Parse an address-list header value into [(group name or None, [Address...])...]."""
    return _Parser(value).parse()


def parse_addresses(value: str) -> list[Address]:
    return [a for _, al in parse_groups(value) for a in al]


# --- formatting -------------------------------------------------------------

_PHRASE_ESC = re.compile(r'(["\\\t\r\n])')


def _quote_phrase(p: str) -> str:
    if p and all(_is_atext(c) for c in p):
        return p
    return '"' + _PHRASE_ESC.sub(r"\\\1", p) + '"'


def _quote_local(u: str) -> str:
    if u and all(c == "." or _is_atext(c) for c in u):
        return u
    return '"' + _PHRASE_ESC.sub(r"\\\1", u) + '"'


def _balanced(c: str) -> bool:
    depth = 0
    for ch in c:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth < 0:
                return False
    return depth == 0


def format_address(a: Address) -> str | None:
    addr = a.address
    if not a.user or not a.host:
        return None
    out = f"{_quote_phrase(a.phrase)} <{addr}>" if a.phrase else f"{addr}"
    if a.comment is not None and _balanced(a.comment):
        out += f" ({a.comment})"
    return out


def format_groups(groups: list[tuple[str | None, list[Address]]]) -> str:
    out = []
    for name, al in groups:
        items = [f for f in map(format_address, al) if f]
        if name is None:
            out.extend(items)
        else:
            out.append(f"{_quote_phrase(name)}:{' ' if items else ''}{', '.join(items)};")
    return ", ".join(out)


def reformat_addresses(value: str) -> str:
    """Decoded form of an address header containing encoded words (§4.2)."""
    from lei_store.mail.charsets import mime_header_decode as dec  # lazy: q prints addresses, rarely decodes

    groups = []
    for name, al in parse_groups(value):
        al = [
            Address(
                dec(a.phrase) if a.phrase is not None else None,
                a.user,
                a.host,
                dec(a.comment) if a.comment is not None else None,
            )
            for a in al
        ]
        groups.append((dec(name) if name is not None else None, al))
    return format_groups(groups)


def raw_emails(value: str) -> list[str]:
    """Bare addresses (user@host) found in a raw header value."""
    return [a.address for a in parse_addresses(value) if a.address]


_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_PLAIN_ADDR = rf"{_ATOM}(?:\.{_ATOM})*@{_ATOM}(?:\.{_ATOM})*"
_PHRASE_WORD = r"[^\x00-\x20\x7f\"(),.:;<>@\[\\\]]+"  # atext and non-ASCII (a negated class compiles fast)
# one element in its commonest spellings: a@b, <a@b>, Some Name <a@b>, "Some, Name" <a@b>
_PLAIN_ELEMENT = re.compile(
    rf'[ \t]*(?:({_PLAIN_ADDR})|(?:({_PHRASE_WORD}(?: {_PHRASE_WORD})*)|"([^"\\\r\n]*)")?'
    rf'[ \t]*<({_PLAIN_ADDR})>)[ \t]*')


def _split_plain(value: str) -> list[tuple[str | None, str | None]] | None:
    """split_addresses for lists made only of plain elements; None for anything else."""
    out, pos, n = [], 0, len(value)
    while True:
        m = _PLAIN_ELEMENT.match(value, pos)
        if not m:
            return None
        bare, word_phrase, quoted_phrase, addr = m.groups()
        out.append((None, bare) if bare else (word_phrase or quoted_phrase or None, addr))
        pos = m.end()
        if pos == n:
            return out
        if value[pos] != ",":
            return None
        pos += 1


@lru_cache(maxsize=1 << 16)  # search output repeats the same lists' addresses thousands of times
def split_addresses(value: str) -> list[tuple[str | None, str | None]]:
    """[(name, address)] for JSON f/t/c: name = phrase, else comment, else None (§9.5).

    Like lei, unparsable elements are kept with a None address ("foo" -> ("foo", None)).
    Plain lists (most of them) take a regex path that gives what the full parser gives.
    """
    plain = _split_plain(value)
    if plain is not None:
        return plain
    return [(a.phrase if a.phrase is not None else a.comment or None, a.address) for a in parse_addresses(value)]


def json_addresses(value: str) -> list[tuple[str | None, str | None]] | None:
    """JSON f/t/c of a header's over value, as lei prints them: a header with a value gives a
    list, empty when it names nobody (`undisclosed-recipients:;`); an empty one gives None
    (the key is left out), and so does "0", which lei's Perl takes for false."""
    if not value or value == "0":
        return None
    return split_addresses(value)


def _ident_part(msg, hdr: str) -> tuple[str | None, str | None]:
    vals = msg.header(hdr)
    if not vals:
        return None, None
    from lei_store.mail.charsets import raw_to_text

    v = vals[0] if "=?" in msg.header_raw(hdr)[0] else raw_to_text(vals[0])
    found = parse_addresses(v)
    if not found:
        return None, None
    # like lei: the name of the first element ("" for one that parsed to nothing, which then
    # takes no name from Sender), the first address of any element
    first = found[0]
    name: str | None = first.phrase or first.comment or first.user or ""
    if name == first.address:  # "a@b" <a@b> -> a
        name = first.user
    return name, next((a.address for a in found if a.address), None)


def author_ident(msg) -> tuple[str, str]:
    """(NAME, EMAIL) of the git author (§2.2), with '<' and '>' removed."""
    name, email = _ident_part(msg, "from")
    if name is None or not email:
        sname, semail = _ident_part(msg, "sender")
        name = sname if name is None else name  # From's "" (`<>`) is a name: Sender's is not taken
        email = email or semail
    strip = str.maketrans("", "", "<>")
    return (name or "").translate(strip), (email or "").translate(strip)
