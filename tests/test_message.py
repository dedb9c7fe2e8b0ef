"""Message model (spec §4), blob/commit/overview derivations (§2.2, §4.9, §5.5).

Behaviour marked "lei" was observed on stores written by lei 1.9.0.
"""
import hashlib

import pytest

from lei_store.mail.charsets import b64decode_lax, find_codec, qp_decode
from lei_store.mail.message import (
    Message,
    body_lines,
    commit_subject,
    crlf_bytes,
    lei_blob,
    overview_fields,
    split_message,
    strip_volatile_headers,
    subject_path,
    subject_path_of,
)
from lei_store.mail.mime import parse_content_type, walk

H = b"From: Tess Ter <tess@example.com>\nTo: you@example.org\nDate: Mon, 2 Jan 2023 10:00:00 +0000\n"


# --- header/body split and header lookup -------------------------------------


@pytest.mark.parametrize(
    "raw,hdr,body,eol",
    [
        (b"A: 1\nB: 2\n\nbody\n", b"A: 1\nB: 2\n", b"body\n", b"\n"),
        (b"A: 1\r\n\r\nbody\r\n", b"A: 1\r\n", b"body\r\n", b"\r\n"),
        (b"A: 1\r\n\nbody\r\n", b"A: 1\r\n", b"body\r\n", b"\n"),
        (b"\nFrom: x@y\n\nbody\n", b"\nFrom: x@y\n", b"body\n", b"\n"),  # lei: header parsed
        (b"\r\nFrom: x@y\r\n\r\nbody\r\n", b"\r\nFrom: x@y\r\n", b"body\r\n", b"\r\n"),
        (b"A: only headers\n", b"A: only headers\n", b"", b""),
        (b"just a body line\n", b"", b"just a body line\n", b"\n"),
        (b"body\r\nline two\r\n", b"", b"body\r\nline two\r\n", b"\r\n"),
    ],
)
def test_split(raw, hdr, body, eol):
    assert split_message(raw) == (hdr, body, eol)
    m = Message(raw)
    assert (m.header_block, m.body, m.eol, m.raw) == (hdr, body, eol, raw)


def test_header_lookup_and_continuations():
    m = Message(
        b"Subject: folded\n  subject\tline  \nX-Foo: one\nX Bar: still foo\nnocolon\nX-Foo: two\n"
        b"subject: Second\nSubject : not a subject\nTo: a@b\r\n \tc@d\n\nbody\n"
    )
    # "Subject : ..." has a space before its colon: a continuation line
    assert m.header_raw("subject") == ["folded subject\tline", "Second Subject : not a subject"]
    assert m.header_raw("SUBJECT") == m.header_raw("subject")
    assert m.header_raw("x-foo") == ["one X Bar: still foo", "two"]
    assert m.header_raw("to") == ["a@b c@d"]
    assert m.header_raw("nocolon") == [] and m.header_raw("subject ") == []


def test_header_values_are_latin1_strings():
    m = Message(b"Subject: caf\xc3\xa9 \xe9\n\nx\n")
    assert m.header_raw("subject") == ["caf\xc3\xa9 \xe9"]


def test_decoded_header():
    m = Message(
        b"Subject: =?utf-8?q?caf=C3=A9?= au lait\nFrom: =?utf-8?q?Plain_Name?= <a@b>\n"
        b"To: Raw Name <r@b>\nX-Other: =?utf-8?q?kept?=\n\nx\n"
    )
    assert m.header("subject") == ["café au lait"]
    assert m.header("from") == ['"Plain Name" <a@b>']
    assert m.header("to") == ["Raw Name <r@b>"]  # no encoded word: returned raw
    assert m.header("x-other") == ["=?utf-8?q?kept?="]


def test_strip_volatile_headers():
    raw = (b"Status: RO\nSubject: s\nX-Status: A\nContent-Length: 5\nLines: 1\nBytes: 10\n  cont of bytes\n"
           b"X-Keep: yes\n\nStatus: body stays\n")
    assert strip_volatile_headers(raw) == b"Subject: s\nX-Keep: yes\n\nStatus: body stays\n"
    crlf = b"Subject: s\r\nStatus: O\r\n\r\nb\r\n"
    assert strip_volatile_headers(crlf) == b"Subject: s\r\n\r\nb\r\n"
    assert strip_volatile_headers(H + b"\nbody\n") == H + b"\nbody\n"
    # lei stores a header-less message with a leading blank line; we keep it as received
    assert lei_blob(b"just body\n") == b"\njust body\n"
    assert lei_blob(b"a\r\nb\r\n") == b"\r\na\r\nb\r\n"
    assert strip_volatile_headers(b"just body\n") == b"just body\n"
    assert strip_volatile_headers(b"a\r\nb\r\n") == b"a\r\nb\r\n"


# --- ids and references -------------------------------------------------------


def test_message_ids():
    m = Message(b"Message-ID: <one@x> <two@x>\nMessage-ID: <three@x>\nX-Alt-Message-ID: <alt@x> <one@x>\n\nb\n")
    assert m.mids() == ["one@x", "two@x", "three@x"]
    assert m.index_mids() == ["one@x", "two@x", "three@x", "alt@x"]
    assert m.mid0() == "one@x"
    assert Message(b"Message-ID: bare-id@example.com\n\nb\n").mids() == ["bare-id@example.com"]
    assert Message(b"Message-ID: <>\n\nb\n").mids() == ["<>"]  # lei
    assert Message(b"Message-ID: \n\nb\n").mids() == [""]  # lei stores an empty id
    assert Message(b"Message-ID: <ta\tb@x>\n\nb\n").mids() == ["tab@x"]
    assert Message(b"Message-ID: <" + b"L" * 300 + b"@x>\n\nb\n").mids() == ["L" * 244]
    assert Message(b"Subject: none\n\nb\n").mid0() == ""


def test_references_and_thread_refs():
    m = Message(
        b"From: a@example.com\nTo: Bob <bob@example.com>, you@example.org\n"
        b"References: <r1@example.com> <bob@example.com> <y> <n>\n"
        b"In-Reply-To: <r2@example.com> junk <you@example.org>\n\nb\n"
    )
    assert m.references() == ["r1@example.com", "r2@example.com"]
    m = Message(b"Message-ID: <self@x>\nReferences: <p@x> <self@x> <p@x>\nIn-Reply-To: <self@x>\n\nb\n")
    assert m.references() == ["p@x", "self@x"]
    assert m.thread_refs() == ["p@x"]
    m = Message(b"Message-ID: <one@x> <two@x>\nMessage-ID: <three@x>\n\nb\n")
    assert m.thread_refs() == ["two@x", "three@x"]  # extra own ids are appended (lei)
    m = Message(b"In-Reply-To: bare@example.com\nReferences: <a@x>\n\t<b@x>\n\nb\n")
    assert m.references() == ["a@x", "b@x"]
    m = Message(b"References: <" + b"R" * 300 + b"@x>\n\nb\n")
    assert m.thread_refs() == ["R" * 244]


# --- MIME walk ----------------------------------------------------------------


def _walk(raw):
    return [(p.depth, p.idx, p.is_message, p.container) for p in walk(Message(raw))]


def test_walk_single_part():
    assert _walk(H + b"\nbody\n") == [(0, "1", False, False)]


def test_walk_nested_numbering():
    raw = H + (
        b'Content-Type: multipart/mixed; boundary="o"\n\n'
        b"--o\n\ntext\n"
        b'--o\nContent-Type: message/rfc822\n\nSubject: inner\nContent-Type: multipart/mixed; boundary="p"\n\n'
        b"--p\n\ninner text\n--p\nContent-Type: message/rfc822\n\nSubject: deepest\n\nd\n--p--\n"
        b'--o\nContent-Type: multipart/alternative; boundary="a"\n\n--a\n\nalt1\n--a\n\nalt2\n--a--\n'
        b"--o--\n"
    )
    assert _walk(raw) == [
        (1, "1", False, False),
        (1, "2", False, True),  # message/rfc822 container
        (2, "2.1", True, False),  # its message (multipart: called back with an empty body)
        (3, "2.1.1", False, False),
        (3, "2.1.2", False, True),
        (4, "2.1.2.1", True, False),
        (2, "3.1", False, False),  # multipart/alternative itself gets no callback
        (2, "3.2", False, False),
    ]
    parts = list(walk(Message(raw)))
    assert parts[2].eml.header_raw("subject") == ["inner"] and parts[2].eml.body == b""
    assert parts[5].eml.header_raw("subject") == ["deepest"]


def test_walk_top_level_rfc822():
    raw = b"Subject: outer\nContent-Type: message/rfc822\n\nSubject: inner\n\ninner body\n"
    assert _walk(raw) == [(0, "0", False, True), (1, "1", True, False)]


def test_multipart_splitting():
    body = b"Preamble: with colon\n\n--b\n\none\n--b  \nContent-Type: text/plain\n\ntwo\n--b\n--b\n\n\n--b--\nepilogue\n"
    m = Message(H + b'Content-Type: multipart/mixed; boundary="b"\n\n' + body)
    parts = list(walk(m))
    assert [p.idx for p in parts] == ["1", "2", "3"]
    assert parts[0].eml.header_raw("preamble") == ["with colon"]
    assert parts[1].eml.header_block == b"" and parts[1].eml.body == b"one"
    assert parts[2].eml.body == b"two"
    # no closing delimiter: a trailing blank line is dropped
    m = Message(H + b'Content-Type: multipart/mixed; boundary="b"\n\n--b\n\none\n--b\n\ntwo\n\n')
    assert [p.eml.body for p in walk(m)] == [b"one", b"two\n"]
    # a boundary that prefixes another one is not confused with it
    m = Message(H + b'Content-Type: multipart/mixed; boundary="x"\n\n--x\nContent-Type: multipart/mixed; '
                b'boundary="xy"\n\n--xy\n\ninner\n--xy--\n--x\n\nouter\n--x--\n')
    assert [(p.idx, p.eml.body) for p in walk(m)] == [("1.1", b"inner"), ("2", b"outer")]


def test_multipart_without_delimiters_is_a_leaf():
    m = Message(H + b"Content-Type: multipart/mixed; boundary=zz\n\nno delimiter here\n\n")
    (p,) = walk(m)
    assert (p.depth, p.idx) == (0, "1") and p.eml.body == b"no delimiter here\n\n"


# --- part text, filename, decoding ---------------------------------------------


def _part(rest: bytes, body: bytes):
    (p,) = walk(Message(H + rest + b"\n" + body))
    return p


@pytest.mark.parametrize(
    "rest,body,text",
    [
        (b"", b"caf\xc3\xa9\n", ("café\n", True)),  # default us-ascii fails, UTF-8 works
        (b"", b"latin \xe9 byte\n", ("latin \xe9 byte\n", False)),
        (b"Content-Type: text/plain\n", b"caf\xc3\xa9\n", ("caf\xc3\xa9\n", False)),  # no charset: raw
        (b"Content-Type: text/x-patch\n", b"caf\xc3\xa9\n", ("café\n", True)),
        (b"Content-Type: text/plain; charset=iso-8859-1\n", b"caf\xe9\n", ("café\n", True)),
        (b"Content-Type: text/plain; charset=unknown-8bit\n", b"caf\xc3\xa9\n", ("café\n", True)),
        (b"Content-Type: text/plain; charset=us-ascii\nContent-Transfer-Encoding: 7BIT\n", b"caf\xc3\xa9\n",
         ("caf\xc3\xa9\n", False)),
        (b"Content-Type: text/html; charset=utf-8\n", b"<p>x</p>\n", (None, False)),
        (b"Content-Type: TEXT/HTML; charset=us-ascii\n", b"<p>x</p>\n", ("<p>x</p>\n", True)),  # case-sensitive
        (b"Content-Type: application/octet-stream\n", b"plain \xc3\xa9\n", ("plain é\n", True)),
        (b"Content-Type: application/octet-stream\n", b"abc\x01def\n", (None, False)),
        (b"Content-Type: application/pdf\n", b"%PDF\n", (None, False)),
        (b"Content-Type: text/plain; charset=utf-16\n", b"\x00a\x00b", ("ab", True)),
        (b"Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: base64\n", b"Y2Fm6Q==\n",
         ("caf\xe9", False)),
    ],
)
def test_part_text(rest, body, text):
    assert _part(rest, body).text_info() == text


def test_filename_and_descriptions():
    p = _part(b"Content-Type: application/octet-stream; name=\"n.bin\"\n"
              b"Content-Disposition: attachment; filename*0*=utf-8''a%20b; filename*1*=%C3%A9.txt\n"
              b"Content-Description: =?utf-8?q?pl=C3=A4in?= part\n", b"x\n")
    assert p.filename() == "a bé.txt"
    assert p.descriptions() == ["pläin part"]
    assert _part(b'Content-Type: text/plain; name="n.bin"\nContent-Disposition: attachment; filename=""\n',
                 b"x").filename() == "n.bin"
    assert _part(b'Content-Type: text/plain; name="=?utf-8?q?caf=C3=A9?=.txt"\n', b"x").filename() == "café.txt"
    assert _part(b"Content-Disposition: attachment; filename=my file.txt\n", b"x").filename() == "my file.txt"
    assert _part(b"", b"x").filename() is None


def test_content_type_parsing():
    ct = parse_content_type('Text/Plain; CHARSET="ISO-8859-1"; format=flowed')
    assert (ct.type, ct.subtype, ct.params) == ("text", "plain", {"charset": "ISO-8859-1", "format": "flowed"})
    assert parse_content_type("garbage").params == {"charset": "us-ascii"}
    assert parse_content_type(None).mime_type == "text/plain"
    ct = parse_content_type("multipart/mixed; boundary*0=\"ab\"; boundary*1=\"cd\"")
    assert ct.params["boundary"] == "abcd"
    # a quoted RFC 2231 value is not decoded (lei then finds no delimiter)
    assert parse_content_type("multipart/signed; boundary*=\"us-ascii''X\"").params["boundary"] == "us-ascii''X"


def test_transfer_decoding():
    assert qp_decode(b"caf=E9 =20  \nsoft=\nbreak\n") == b"caf\xe9  \r\nsoftbreak\r\n"
    assert qp_decode(b"a=0D=0Ab") == b"a\r\r\nb"
    assert qp_decode(b"x=") == b"x="
    assert b64decode_lax(b"aGVsbG8g!!d29y\nbGQ") == b"hello world"
    assert b64decode_lax(b"aGk=aGk=") == b"hi"


def test_perl_charset_names():
    assert find_codec("utf-8") == "utf-8"
    assert find_codec("UTF8") == "utf8-lax"
    assert find_codec("latin1") == "iso8859_1"
    assert find_codec("ks_c_5601-1987") == "cp949"
    assert find_codec("x-windows-1252") == "cp1252"
    assert find_codec("ANSI_X3.4-1968") == "ascii"
    assert find_codec("gb2312") == "gb2312"
    assert find_codec("x-unknown") is None and find_codec("unknown-8bit") is None


# --- derived values -------------------------------------------------------------


def test_overview_fields():
    m = Message(
        b"From: =?utf-8?q?J=C3=B6rg?= <j@b>\nFrom: J\xc3\xb6rg <j2@b>\nTo: a@b\nTo: c@d\nCc: caf\xe9 <e@f>\n"
        b"Subject: a\tb \x00c\nSubject: has\rcarriage\n\nbody\n"
    )
    ov = overview_fields(m)
    assert ov.subject == "a b  c, hascarriage"
    assert ov.from_ == "Jörg <j@b>, Jörg <j2@b>"
    assert ov.to == "a@b, c@d"
    assert ov.cc == "caf\xe9 <e@f>"  # invalid UTF-8 stays Latin-1 (lei)
    assert overview_fields(Message(b"Subject: Gr\xc3\xbc\xc3\x9fe =?utf-8?q?x?=\n\nb")).subject == "Gr\xc3\xbc\xc3\x9fe x"


@pytest.mark.parametrize(
    "hdr,subject",
    [
        (b"Subject: Hello world quickly", "Hello world quickly"),
        (b"Subject: fold\n\twith tab", "fold with tab"),
        (b"Subject: a\tb \x00c", "a b  c"),
        (b"Subject: ", "(no subject)"),
        (b"X-No-Subject: 1", "(no subject)"),
        (b"Subject: first\nSubject: second", "first"),
        (b"Subject: Gr\xc3\xbc\xc3\x9fe raw", "Grüße raw"),
        (b"Subject: caf\xe9 latin", "caf\xe9 latin"),
        (b"Subject: =?utf-8?q?caf=C3=A9?=", "café"),
    ],
)
def test_commit_subject(hdr, subject):
    assert commit_subject(Message(hdr + b"\n\nbody\n")) == subject


def test_lines_and_bytes():
    m = Message(b"A: 1\n\nl1\nl2\n")
    assert body_lines(m) == 2
    assert crlf_bytes(b"A: 1\n\nl1\r\nl2\n") == 13 + 3  # three LFs lack a CR
    assert body_lines(Message(b"only: header\n")) == 0


@pytest.mark.parametrize(
    "subject,path",
    [
        ("Re: Hello world quickly", "hello_world_quickly"),
        ("Re: RE:  re: spaced  subject...", "re_re_spaced_subject"),  # one "re:" only
        ("Re:nospace", "re_nospace"),
        ("Übergrößen attachment test", "_bergr_en_attachment_test"),
        ("€ euro sign", "_euro_sign"),
        ("b" * 40, "b" * 40),
        ("a" * 41, hashlib.sha1(b"a" * 41).hexdigest()),
        ("x~y/z.w-v", hashlib.sha1(b"x~y/z.w-v").hexdigest()),
        ("caféé€", hashlib.sha1("caféé_".encode()).hexdigest()),
        ("こんにちは", hashlib.sha1("こんにちは".encode()).hexdigest()),
    ],
)
def test_subject_path(subject, path):
    assert subject_path(subject) == path


def test_subject_path_of_raw_utf8_uses_unicode_rules():
    m = Message(b"Subject: Gr\xc3\xbc\xc3\x9fe raw\n\nb\n")
    assert subject_path_of(m) == hashlib.sha1("grüße_raw".encode()).hexdigest()
    m = Message(b"Subject: \xdcbergr\xf6\xdfen raw latin1\n\nb\n")
    assert subject_path_of(m) == "_bergr_en_raw_latin1"
