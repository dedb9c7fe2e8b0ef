"""mbox reading: the four variants, compression, truncation, and what is not an mbox."""

import bz2
import gzip
import io
import lzma

import pytest

from lei_store.errors import InputError, TruncatedInputError
from lei_store.sources import resolve
from lei_store.sources.mbox import read_mbox, read_mbox_path

M1 = b"From: a@example.org\nSubject: one\n\nFrom the start\n>From escaped\n>>From twice\n"
M2 = b"From: b@example.org\nSubject: two\nStatus: RO\nX-Status: AF\n\nbody two\n"


def mbox(*msgs: bytes, fmt: str = "mboxrd") -> bytes:
    """Write messages the way each variant's writer does."""
    import re

    out = b""
    for m in msgs:
        if fmt == "mboxrd":
            body = re.sub(rb"^(>*From )", rb">\1", m, flags=re.M)
        elif fmt in ("mboxo", "mboxcl"):
            body = re.sub(rb"^(From )", rb">\1", m, flags=re.M)
        else:
            body = m
        if fmt in ("mboxcl", "mboxcl2"):
            head, _, rest = body.partition(b"\n\n")
            body = head + b"\nContent-Length: %d\n\n" % len(rest) + rest
        out += b"From sender@example.org Thu Jan  1 00:00:00 1970\n" + body + b"\n"
    return out


def items(data: bytes, fmt: str):
    return list(read_mbox(io.BytesIO(data), fmt, "test"))


M1O = b"From: a@example.org\nSubject: one\n\nFrom the start\n> quoted\n"


@pytest.mark.parametrize("fmt,first", [("mboxrd", M1), ("mboxo", M1O), ("mboxcl", M1O), ("mboxcl2", M1)])
def test_variants_round_trip(fmt, first):
    """Each variant gives back what its writer was given (mboxo/mboxcl lose '>From' lines: known)."""
    import re

    got = items(mbox(first, M2, fmt=fmt), fmt)
    assert len(got) == 2
    body1 = re.sub(rb"Content-Length: \d+\n", b"", got[0].raw)  # the store drops it, not the reader
    assert body1 == first
    assert got[1].keywords == {"seen", "answered", "flagged"}
    assert got[0].keywords is None  # no Status header: the mbox says nothing about flags


def test_mboxrd_unescapes_one_level_only():
    (item,) = items(b"From x Thu Jan  1 00:00:00 1970\nSubject: s\n\n>>>From deep\n\n", "mboxrd")
    assert item.raw == b"Subject: s\n\n>>From deep\n"


def test_mboxo_keeps_deeper_quotes():
    (item,) = items(b"From x Thu Jan  1 00:00:00 1970\nSubject: s\n\n>From a\n>>From b\n\n", "mboxo")
    assert item.raw == b"Subject: s\n\nFrom a\n>>From b\n"


def test_mboxcl2_body_with_from_lines_needs_no_escaping():
    body = b"From inside the body\nFrom x Thu Jan  1 00:00:00 1970\n"
    (item,) = items(b"From x Thu Jan  1 00:00:00 1970\nSubject: s\nContent-Length: %d\n\n" % len(body)
                    + body + b"\n", "mboxcl2")
    assert item.raw.endswith(body)


def test_crlf_mbox():
    data = b"From x Thu Jan  1 00:00:00 1970\r\nSubject: a\r\n\r\nbody\r\n\r\nFrom y Thu Jan  1 00:00:00 1970\r\nSubject: b\r\n\r\nb2\r\n\r\n"
    got = items(data, "mboxrd")
    assert [i.raw for i in got] == [b"Subject: a\r\n\r\nbody\r\n", b"Subject: b\r\n\r\nb2\r\n"]


def test_truncated_mboxrd_reports_where_it_stopped():
    data = mbox(M1, M2)
    cut = data[: len(data) - 9]
    reader = read_mbox(io.BytesIO(cut), "mboxrd", "cut.mbox")
    assert next(reader).raw == M1
    with pytest.raises(TruncatedInputError, match=r"cut.mbox: truncated at byte \d+; message 2"):
        next(reader)


def test_truncated_mboxcl2_by_content_length():
    data = mbox(M1, M2, fmt="mboxcl2")[:-12]
    reader = read_mbox(io.BytesIO(data), "mboxcl2", "cl2")
    assert next(reader)
    with pytest.raises(TruncatedInputError):
        list(reader)


@pytest.mark.parametrize("compress,suffix", [(gzip.compress, ".gz"), (bz2.compress, ".bz2"), (lzma.compress, ".xz")])
def test_compressed_inputs(tmp_path, compress, suffix):
    path = tmp_path / f"box.mbox{suffix}"
    path.write_bytes(compress(mbox(M1, M2)))
    assert [i.raw for i in read_mbox_path(path, "mboxrd")][0] == M1
    assert resolve(str(path)).fmt == "mboxrd"


def test_truncated_compressed_input(tmp_path):
    path = tmp_path / "box.mbox.gz"
    data = gzip.compress(mbox(*[M1] * 50))
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(TruncatedInputError, match="compressed data ends early"):
        list(read_mbox_path(path, "mboxrd"))


def test_not_an_mbox():
    with pytest.raises(InputError, match="not an mbox"):
        items(b"Subject: plain message\n\nbody\n", "mboxrd")


def test_resolve_prefixes_and_errors(tmp_path):
    f = tmp_path / "x.mbox"
    f.write_bytes(mbox(M1))
    assert resolve(f"mboxcl2:{f}").fmt == "mboxcl2"
    assert resolve(str(f), "mboxo").fmt == "mboxo"
    with pytest.raises(InputError, match="no such file"):
        resolve(str(tmp_path / "missing"))
    with pytest.raises(InputError, match="unknown format"):
        resolve(str(f), "mbox-xyz")
    (tmp_path / "dir").mkdir()
    with pytest.raises(InputError, match="not a Maildir"):
        resolve(str(tmp_path / "dir"))
