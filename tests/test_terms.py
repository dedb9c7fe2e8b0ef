"""Unit tests of lei_store.mail.terms / lei_store.mail.diffterms on messages written here.

Expected positions and wdf come from real lei 1.9 documents for the same
messages (see test_terms_lei_parity.py for the automated comparison).
"""

from __future__ import annotations

import shutil
import subprocess

import pytest
import xapian

from lei_store.mail.diffterms import git_unquote, index_diff
from lei_store.mail.message import Message, overview_fields
from lei_store.mail.terms import index_message, new_termgenerator

Terms = dict[str, tuple[int, list[int]]]

HDR = (b"From: Alice <alice@example.com>\nTo: Bob <bob@example.org>\n"
       b"Subject: [PATCH] foo: fix bar\n"
       b"Message-ID: <20190401123456.abcdefghijklmn@example.com>\n"
       b"List-Id: <Linux-Btrfs.vger.kernel.org>\nDate: Mon, 1 Apr 2019 12:34:56 +0000\n\n")

PATCH_BODY = b"""Commit message here.

Signed-off-by: Alice <alice@example.com>
---
 foo.c | 2 +-
 1 file changed

diff --git a/foo.c b/foo.c
index 1234567abc..89abcdef12 100644
--- a/foo.c
+++ b/foo.c
@@ -1,3 +1,3 @@ bar_function(void)
 context line
-removed line
+added line
 more context
-- 
2.20.1
"""


def build(raw: bytes, tg: xapian.TermGenerator | None = None) -> xapian.Document:
    msg = Message(raw)
    doc = xapian.Document()
    index_message(doc, msg, overview_fields(msg), tg)
    return doc


def terms_of(raw: bytes) -> Terms:
    # positions are read back through a database (Document position
    # iterators are not usable from the Python bindings)
    db = xapian.WritableDatabase("", xapian.DB_BACKEND_INMEMORY)
    db.replace_document(1, build(raw))
    return {t.term.decode("utf-8"): (t.wdf, list(db.positionlist(1, t.term))) for t in db.termlist(1)}


def doclength(raw: bytes) -> int:
    db = xapian.WritableDatabase("", xapian.DB_BACKEND_INMEMORY)
    db.replace_document(1, build(raw))
    return db.get_doclength(1)


def positions(terms: Terms, prefix: str) -> list[tuple[int, str]]:
    """(position, word) of every term with exactly this prefix, in order."""
    out = []
    for term, (_, pos) in terms.items():
        if term.startswith(prefix) and not term[len(prefix):][:1].isupper():
            out += [(p, term[len(prefix):]) for p in pos]
    return sorted(out)


def test_patch_mail_matches_lei() -> None:
    t = terms_of(HDR + PATCH_BODY)
    # step 2: one increase_termpos (100) after each header text
    assert t["Aalice"] == (2, [1, 2]) and t["Acom"] == (1, [4])
    assert t["XTObob"] == (2, [105, 106]) and t["Spatch"] == (1, [209])
    assert t["ZAalic"] == (2, []) and t["ZSpatch"] == (1, [])  # STEM_SOME
    # commit message + diffstat + the diff line are one XNQ text, flushed by XDFN
    assert t["XNQcommit"] == (1, [313]) and t["XNQfoo"] == (3, [323, 332, 335])
    assert positions(t, "XDFN") == [(437, "foo"), (438, "c")]  # once per name
    assert positions(t, "XDFHH") == [(539, "bar_function"), (540, "void")]
    assert t["XDFCTXcontext"] == (2, [641, 948])
    assert positions(t, "XDFA") == [(743, "removed"), (744, "line")]
    assert positions(t, "XDFB") == [(845, "added"), (846, "line")]
    # the signature ends the diff; the trailing NQ text is always indexed last
    assert t["XNQ2.20.1"] == (1, [1049])
    # blob id prefixes: plain terms, every length >= 7
    assert [k for k in t if k.startswith("XDFPRE")] == [
        "XDFPRE1234567", "XDFPRE1234567a", "XDFPRE1234567ab", "XDFPRE1234567abc"]
    assert "XDFPOST89abcde" in t and "XDFPOST89abcdef12" in t and t["XDFPOST89abcde"] == (1, [])
    assert t["XDFIDfa332ac2cec7a24dca2d36ce72a8460750f861fe"] == (1, [])
    # Message-ID with a 12+ char word: the id, then its 3+ char words
    assert t["XMcom"] == (2, [1153, 1257]) and t["XM20190401123456"] == (2, [1150, 1254])
    assert t["Q20190401123456.abcdefghijklmn@example.com"] == (0, [])
    # List-Id: lower-cased boolean G, tokenised XL last
    assert t["Glinux-btrfs.vger.kernel.org"] == (0, [])
    assert positions(t, "XL") == [(1358, "linux"), (1359, "btrfs"), (1360, "vger"),
                                  (1361, "kernel"), (1362, "org")]
    assert doclength(HDR + PATCH_BODY) == 128  # lei's get_doclength for this message


def test_patch_id_term_equals_git() -> None:
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    out = subprocess.run(["git", "patch-id", "--stable"], input=PATCH_BODY, capture_output=True).stdout
    assert "XDFID" + out.split()[0].decode() in terms_of(HDR + PATCH_BODY)


def test_no_values_no_keywords() -> None:
    doc = build(HDR + PATCH_BODY)
    assert doc.values_count() == 0
    assert not [t.term for t in doc.termlist() if t.term[:1] in (b"K", b"L")]


def test_reused_termgenerator_is_identical() -> None:
    tg = new_termgenerator()
    first = build(HDR + b"hello world\n", tg)
    again = build(HDR + PATCH_BODY, tg)
    fresh = build(HDR + PATCH_BODY)
    assert first.termlist_count() > 0
    assert again.serialise() == fresh.serialise()


SHORT_HDR = b"From: a@example.com\nSubject: s\nMessage-ID: <short@x.y>\n\n"


def test_quoted_runs() -> None:
    t = terms_of(SHORT_HDR + b"> quoted first\nreply text\n> again\n")
    # A=1..3, S=104; T starts with a quote: the empty XNQ section still bumps
    # the position by 100, so the first quote starts at 305, not 205
    assert positions(t, "XQUOT") == [(305, "quoted"), (306, "first"), (509, "again")]
    assert t["XQUOTquoted"][0] == 0  # wdf increment 0
    assert positions(t, "XNQ") == [(407, "reply"), (408, "text")]
    # short Message-ID (no 12+ word): one XM text only
    assert positions(t, "XM") == [(610, "short"), (611, "x"), (612, "y")]


def test_draft_without_message_id() -> None:
    t = terms_of(b"From: a@example.com\nTo: \nDate: Mon, 1 Jan 2024 00:00:00 +0000\n\nno ids here\n")
    assert not [k for k in t if k.startswith(("Q", "XM"))]
    assert "XTO" not in "".join(t)  # empty To is skipped, no position bump
    assert t["XNQno"] == (1, [104])


def test_raw_8bit_text_goes_to_xapian_as_bytes() -> None:
    body = "caf\u00e9 na\u00efve\n".encode("utf-8")
    t = terms_of(b"From: a@example.com\nContent-Type: text/plain\nContent-Transfer-Encoding: 8bit\n\n" + body)
    assert "XNQcaf\u00e9" in t and "XNQna\u00efve" in t  # not mojibake


def test_rfc822_inner_message_order() -> None:
    inner = (b"From: Inner Author <inner@example.com>\nSubject: inner words\n"
             b"Message-ID: <inner@example.com>\nList-Id: <Inner.List>\n\ninner body\n")
    raw = (b"From: a@example.com\nMessage-ID: <outer@example.com>\n"
           b"Content-Type: multipart/mixed; boundary=B\n\n--B\nContent-Type: text/plain\n\nsee\n"
           b"--B\nContent-Type: message/rfc822\nContent-Disposition: attachment; filename=fwd.eml\n\n"
           + inner + b"--B--\n")
    t = terms_of(raw)
    first = lambda p: min(pos for pos, _ in positions(t, p))  # noqa: E731
    assert first("XNQ") < first("XFN") < first("XM") < first("XL") < first("S")
    assert "Ginner.list" in t and "Qinner@example.com" in t and "Qouter@example.com" in t
    assert t["Ainner"][0] == 2  # From of the inner message


# --- diffterms directly ------------------------------------------------------------

def run_diff(text: str) -> list[tuple[str, str]]:
    """(prefix, text) of every index_text call, ("TERM", t) for add_term;
    checks that every text is followed by exactly one increase_termpos."""
    calls: list[tuple[str, str]] = []
    pending = []

    def index_text(s: str, wdf: int, prefix: str) -> None:
        assert wdf == 1 and not pending
        calls.append((prefix, s))
        pending.append(1)

    index_diff(text, index_text, pending.pop, lambda term: calls.append(("TERM", term)))
    assert not pending
    return calls


def test_diff_plain_names_rule_9_drops_line() -> None:
    calls = run_diff("--- left.c\n+++ right.c\n-x\n--- same.c\n+++ same.c\n@@ -1 +1 @@\n-y\n+w\n")
    assert calls == [("XNQ", "--- left.c\n-x\n--- same.c"), ("XDFN", "same.c"),
                     ("XDFA", "y"), ("XDFB", "w"), ("XNQ", "")]


def test_diff_dev_null_and_deleted_file() -> None:
    calls = run_diff("diff --git a/old.txt b/old.txt\ndeleted file mode 100644\n--- a/old.txt\n"
                     "+++ /dev/null\n@@ -1 +0,0 @@\n-last words\n")
    # "+++ /dev/null" ends the diff (old name != new name): the removed line is plain text
    assert calls == [("XNQ", "diff --git a/old.txt b/old.txt"), ("XDFN", "old.txt"),
                     ("XNQ", "deleted file mode 100644\n-last words")]
    calls = run_diff("--- /dev/null\n+++ b/new.txt\n@@ -0,0 +1 @@ ctx\n+first\n")
    assert calls == [("XNQ", "--- /dev/null"), ("XDFN", "new.txt"), ("XDFHH", " ctx"),
                     ("XDFB", "first"), ("XNQ", "")]


def test_diff_names_once_per_run_and_index_prefixes() -> None:
    calls = run_diff("diff --git a/x b/x\nindex abcdef01..1234567 100644\n--- a/x\n+++ b/x\n"
                     "@@ -1 +1 @@\n-a\n+b\ndiff --git a/x b/x\n")
    assert [c for c in calls if c[0] == "XDFN"] == [("XDFN", "x")]
    assert [c[1] for c in calls if c[0] == "TERM"] == [
        "XDFPREabcdef0", "XDFPREabcdef01", "XDFPOST1234567"]


def test_diff_binary_patch_and_hunk_headers() -> None:
    calls = run_diff("diff --git a/i.png b/i.png\nindex 1111111..2222222\nGIT binary patch\n"
                     "literal 12\nTcmd1Ia`|%^%x7nfiR6%4\n\nliteral 0\nHcmV?d00001\n\n"
                     "@@ -1 +1 @@   \n@@ -1 +1 @@ fn()\n")
    assert ("XNQ", "diff --git a/i.png b/i.png") in calls
    # base85 lines and blanks skipped; the NQ text is flushed by the XDFHH text
    assert calls[-3:] == [("XNQ", "GIT binary patch\nliteral 12\nliteral 0"), ("XDFHH", " fn()"),
                          ("XNQ", "")]


def test_diff_signature_and_prose() -> None:
    calls = run_diff("diff between versions\n--- \n-- \n+not diff\n")
    assert calls == [("XNQ", "diff between versions\n--- \n+not diff")]


def test_git_unquote() -> None:
    assert git_unquote('"a/t\\303\\251st \\"q\\".c"') == 'a/t\xc3\xa9st "q".c'
    assert git_unquote("a/plain") == "a/plain"
