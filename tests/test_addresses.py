"""RFC 2047 decoding, address lists and the git author ident (spec §4.2, §2.2, §9.5).

Expected values come from the spec, from lei 1.9.0 stores, and from Perl's
Encode / Email::Address::XS (the libraries lei uses) run on the same input.
"""
import random

import pytest

from lei_store.mail.addresses import (
    _split_plain,
    author_ident,
    json_addresses,
    parse_addresses,
    parse_groups,
    reformat_addresses,
    split_addresses,
)
from lei_store.mail.charsets import mime_header_decode, raw_to_text
from lei_store.mail.message import Message


@pytest.mark.parametrize(
    "raw,decoded",
    [
        ("=?utf-8?q?caf=C3=A9?=", "café"),
        ("=?utf-8?q?a?=  =?utf-8?q?b?= c =?UTF-8?q?d?= =?utf-8?q?e?=", "ab c de"),
        # words of one charset are joined before decoding: split multi-byte chars survive
        ("=?utf-8?b?w6k=?= =?utf-8?b?w6k=?= =?utf-8?q?=C3?= =?utf-8?q?=A9?=", "ééé"),
        ("=?x-unknown?q?abc?= def =?utf-8?q?ok?=", "=?x-unknown?q?abc?= def ok"),
        ("=?utf-8*en?q?lang?= =?utf-8*en?q?_two?=", "lang two"),
        ("foo=?utf-8?q?x?=bar", "fooxbar"),
        ("=?utf-8?b?YQ==?= =?utf-8?b?Yg==?= x", "ab x"),
        ("=?utf-8?q?bad=FF=FEbytes?=", "bad\ufffd\ufffdbytes"),
        ("=?latin1?q?caf=e9?= =?utf8?q?=C3=A9?= =?cp1252?q?=80?=", "caféé€"),
        ("=?iso-2022-jp?b?GyRCJDMkcyRLJEEkTxsoQg==?=", "こんにちは"),
        ("Gr\xc3\xbc\xc3\x9fe =?utf-8?q?caf=C3=A9?=", "Gr\xc3\xbc\xc3\x9fe café"),  # raw bytes stay latin-1
        ("no words here", "no words here"),
    ],
)
def test_mime_header_decode(raw, decoded):
    assert mime_header_decode(raw) == decoded


@pytest.mark.parametrize(
    "raw,expected",
    [
        # spec §4.2 examples
        ("=?utf-8?q?Plain_Name?= <a@b>", '"Plain Name" <a@b>'),
        ("=?utf-8?q?J=C3=B6rg?= <j@b>", "Jörg <j@b>"),
        ("=?utf-8?q?O=27Brien?= <a@b>", "O'Brien <a@b>"),
        ("=?utf-8?q?A?= (c) <a@b>", "A <a@b>"),
        # verified against lei
        ("=?utf-8?q?R=C3=A9my?= <r@X.Org> (work)", "Rémy <r@X.Org> (work)"),
        ("=?utf-8?q?A_=22B=22_C=5C?= <a@example.com>", '"A \\"B\\" C\\\\" <a@example.com>'),
        ("=?utf-8?q?C=2C_D?= <cd@example.com> (=?utf-8?q?com_ment?=)", '"C, D" <cd@example.com> (com ment)'),
        ("=?utf-8?q?Gr=C3=BCppe?=: a@example.com, =?utf-8?q?B?= <b@example.com>;",
         "Grüppe: a@example.com, B <b@example.com>;"),
        ("=?utf-8?q?Team_A=2C_B?=: x@example.com;, =?utf-8?q?Doe=2C_J?= <j@example.com>, empty:;",
         '"Team A, B": x@example.com;, "Doe, J" <j@example.com>, empty:;'),
        ("=?utf-8?q?A?= <a@example.com>, Doe, John <j@example.com>", "A <a@example.com>, John <j@example.com>"),
        ("=?utf-8?q?R?= <@relay.example:r@example.com>", "R <r@example.com>"),
        ('"=?utf-8?q?Last=2C_First?=" <lf@example.com>', '"Last, First" <lf@example.com>'),
        ("a@example.com (=?utf-8?q?J=C3=B6rg?=)", "a@example.com (Jörg)"),
    ],
)
def test_reformat_addresses(raw, expected):
    assert reformat_addresses(raw) == expected


def test_parse_groups_shapes():
    assert parse_groups("Group: a@b, C <c@d>;") == [
        ("Group", [(None, "a", "b", None), ("C", "c", "d", None)])
    ]
    (name, [a]), = parse_groups('Foo (x) Bar <a (y) @ b> (c1) (c2)')
    assert name is None and a.phrase == "Foo Bar" and a.comment == "c2" and a.address == "a@b"
    assert parse_groups('"quoted local"@x')[0][1][0].address == '"quoted local"@x'


@pytest.mark.parametrize(
    "value,pairs",
    [
        ("Alice Example <alice@example.org>", [("Alice Example", "alice@example.org")]),
        ("x@y (Comment Here), z@w", [("Comment Here", "x@y"), (None, "z@w")]),
        ('"Doe, John" <j@d>', [("Doe, John", "j@d")]),
        # unparsable elements are kept with no address, as lei's JSON shows them
        ("foo", [("foo", None)]),
        ("MAILER DAEMON <>", [("MAILER DAEMON", None)]),
        ("Foo Bar", [(None, None)]),
        ("a@b, , c@d", [(None, "a@b"), (None, None), (None, "c@d")]),
        # groups, empty ones and junk: what lei 1.9's JSON showed for these To/Cc/From values
        ("undisclosed-recipients:;", []),
        ("(just a comment)", []),
        ("Group: (c) ;", []),
        ("g:", []),
        ("g1:;, g2:;", []),
        ("group:;, x@y.z", [(None, "x@y.z")]),  # a closed group is an element: no empty one after it
        ("g1: a@b.example;, g2:;, c@d.example", [(None, "a@b.example"), (None, "c@d.example")]),
        ("team: a@b.example, C <c@d.example>;", [(None, "a@b.example"), ("C", "c@d.example")]),
        ("g: , a@b.example;", [(None, None), (None, "a@b.example")]),
        ("<>", [(None, None)]),  # junk that parses to nothing is still an element
        ("@, a@b.example, <>", [(None, None), (None, "a@b.example"), (None, None)]),
        ("a@b.example, ;", [(None, "a@b.example"), (None, None)]),
        (">", [(None, None)]),
        ('"Foo Bar"', [("Foo Bar", None)]),
        ('"" (cmt)', [("", None)]),  # an empty phrase is a name...
        ('"" <q@example.com>', [(None, "q@example.com")]),  # ... unless an address follows
        ('x@y.example, "unterminated', [(None, "x@y.example"), (None, None)]),
        ("(unterminated", []),
    ],
)
def test_split_addresses(value, pairs):
    assert split_addresses(value) == pairs


@pytest.mark.parametrize("value,printed", [
    ("", None), ("0", None),  # left out of lei's JSON ("0" is false to Perl)
    ("00", [("00", None)]), ("undisclosed-recipients:;", []), ("a@b", [(None, "a@b")]),
])
def test_json_addresses(value, printed):
    assert json_addresses(value) == printed


def _full_split(value: str):
    return [(a.phrase if a.phrase is not None else a.comment or None, a.address) for a in parse_addresses(value)]


def test_plain_fast_path_agrees_with_the_full_parser():
    """split_addresses takes a regex path for plain lists; on generated lists mixing plain and
    awkward elements, whatever that path accepts must equal the full parser's answer."""
    words = ["Jo", "Mary-Ann", "O'Neil", "J.", "é", "中文", "a=b", "", " ", ",", '"', "\\"]
    addrs = ["a@b", "a.b@c.d", "a..b@c", ".a@b", "a@b.", "A+B@C", "a@[1.2.3.4]", "a@b@c", '"a b"@c', "ab"]
    rng = random.Random(3)

    def element() -> str:
        a, pick = rng.choice(addrs), rng.random()
        if pick < 0.25:
            return rng.choice(["", " ", "\t"]) + a + rng.choice(["", "  "])
        if pick < 0.5:
            return rng.choice(["", " "]) + f"<{a}>"
        phrase = " ".join(rng.choice(words) for _ in range(rng.randint(0, 3)))
        phrase = f'"{phrase}"' if pick < 0.75 else phrase
        return phrase + rng.choice(["", " ", "  ", "\t"]) + f"<{a}>"

    accepted = 0
    for _ in range(20000):
        value = rng.choice([",", ", ", " ,"]).join(element() for _ in range(rng.randint(1, 4)))
        value += rng.choice(["", " ", ","])
        fast = _split_plain(value)
        if fast is not None:
            accepted += 1
            assert fast == _full_split(value), value
    assert accepted > 500  # the fast path is exercised, not just skipped
    assert _split_plain('Some Name <a@b>, "Last, First" <c@d>, e@f') == [
        ("Some Name", "a@b"), ("Last, First", "c@d"), (None, "e@f")]


def _from(hdr: bytes) -> tuple[str, str]:
    return author_ident(Message(hdr + b"\nbody\n"))


@pytest.mark.parametrize(
    "hdr,ident",
    [
        (b"From: Alice Example <alice@example.org>", ("Alice Example", "alice@example.org")),
        (b"From: bare@example.org", ("bare", "bare@example.org")),
        (b"From: x@y (Comment Here)", ("Comment Here", "x@y")),
        (b'From: "<Weird>" <w@example.com>', ("Weird", "w@example.com")),
        (b'From: "misono.tomohiro@fujitsu.com" <misono.tomohiro@fujitsu.com>',
         ("misono.tomohiro", "misono.tomohiro@fujitsu.com")),  # phrase == address -> local part
        (b'From: "A@Example.com" <a@example.com>', ("A@Example.com", "a@example.com")),
        (b"From: MAILER DAEMON <>", ("MAILER DAEMON", "")),
        (b"From: foo", ("foo", "")),
        (b"From: Foo Bar\nSender: Sen Der <s@example.com>", ("Foo", "s@example.com")),
        (b"From: MAILER-DAEMON\nSender: s@example.com", ("MAILER-DAEMON", "s@example.com")),
        (b"From: (Only Comment)\nSender: s@example.com", ("s", "s@example.com")),
        (b"From: \nSender: Sen Der <s@example.com>", ("Sen Der", "s@example.com")),
        (b"Sender: Send Er <sender@example.com>", ("Send Er", "sender@example.com")),
        (b"From: First <f@example.com>\nFrom: Second <s@example.com>", ("First", "f@example.com")),
        (b"From: =?utf-8?q?Gr=C3=BCppe?=: a@example.com, =?utf-8?q?B?= <b@example.com>;", ("a", "a@example.com")),
        (b"From: J\xf6rg <j@example.com>", ("J\xf6rg", "j@example.com")),  # latin-1 byte -> U+00F6
        (b"From: J\xc3\xb6rg <j@example.com>", ("J\xf6rg", "j@example.com")),  # raw UTF-8 read as UTF-8
        (b"Subject: nobody", ("", "")),
        # the first element names the author, the first address of any element is the email
        (b"From: <>\nSender: Send <s@example.com>", ("", "s@example.com")),  # "" is a name: not Send
        (b"From: @, x@y.example", ("", "x@y.example")),
        (b'From: "Quoted Name", x@y.example', ("Quoted Name", "x@y.example")),
        (b"From: g:;, x@y.example", ("x", "x@y.example")),
        (b'From: "" (cmt)\nSender: s@example.com', ("cmt", "s@example.com")),
        (b"From: (nobody)\nSender: Send <s@example.com>", ("Send", "s@example.com")),
        (b"From: 0\nSender: Send <s@example.com>", ("0", "s@example.com")),
        (b"From: (unterminated\nSender: Send <s@example.com>", ("Send", "s@example.com")),
        (b'From: "unterminated\nSender: Send <s@example.com>', ("", "s@example.com")),
    ],
)
def test_author_ident(hdr, ident):
    assert _from(hdr) == ident


def test_raw_to_text():
    assert raw_to_text("caf\xc3\xa9") == "café"
    assert raw_to_text("caf\xe9") == "caf\xe9"
    assert raw_to_text("plain") == "plain"
