"""Parity of lei_store.mail.terms.index_message with the Xapian documents real lei
1.9 writes: termlist (without K/L), wdf, positions and document length.

Two stores are built with real ``lei import``: one from messages written
here (diff-indexing corner cases, quoting, 8-bit bodies, message/rfc822) and
one from a copy of ../shared/corpora/small.tar.xz's Maildir.  Every lei
document is rebuilt from its git blob with index_message and compared; a
document that content-dedup attached further blobs to also gets those
copies' List-Id terms (index_copy_list_ids), as lei adds them (§3.1).
"""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import zlib
from pathlib import Path
from typing import Iterator

import pytest
import xapian
from conftest import Lei, need_lei

from lei_store.mail.message import Message, overview_fields
from lei_store.mail.terms import index_copy_list_ids, index_message, new_termgenerator

Snapshot = tuple[dict[bytes, tuple[int, tuple[int, ...]]], int]


# --- lei in a private environment ----------------------------------------------

def lei_import_maildir(base: Path, maildir: Path) -> Path:
    """Import *maildir* (lei renames files: pass a copy) into a fresh private
    lei store and return the store directory."""
    lei = Lei(base)
    try:
        lei("import", str(maildir))
    finally:
        lei.close()
    return lei.store


# --- reading lei's store ----------------------------------------------------------

def store_docs(store: Path) -> Iterator[tuple[int, str, list[str]]]:
    """(num, over's blob oid, the other blobs attached to num in xref3 order)
    for every over row with bytes > 0."""
    con = sqlite3.connect(f"file:{store}/ei15/over.sqlite3?mode=ro", uri=True)
    try:
        xref: dict[int, list[str]] = {}
        for docid, oidbin in con.execute("SELECT docid, oidbin FROM xref3 ORDER BY rowid"):
            xref.setdefault(docid, []).append(oidbin.hex())
        for num, ddd in con.execute("SELECT num, ddd FROM over WHERE num > 0 ORDER BY num"):
            f = zlib.decompress(ddd).decode("utf-8").split("\n")
            if int(f[7] or 0) > 0:
                yield num, f[5], [o for o in xref.get(num, []) if o != f[5]]
    finally:
        con.close()


class Blobs:
    """git cat-file --batch on the store's ALL.git."""

    def __init__(self, store: Path) -> None:
        self.p = subprocess.Popen(["git", "--git-dir", str(store / "ALL.git"), "cat-file", "--batch"],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE)

    def get(self, oid: str) -> bytes:
        self.p.stdin.write(oid.encode() + b"\n")
        self.p.stdin.flush()
        size = int(self.p.stdout.readline().split()[2])
        data = self.p.stdout.read(size + 1)
        return data[:-1]

    def close(self) -> None:
        self.p.stdin.close()
        self.p.wait()


def snapshot(db: xapian.Database, docid: int) -> Snapshot:
    terms = {}
    for t in db.get_document(docid).termlist():
        if t.term[:1] in (b"K", b"L"):
            continue
        terms[t.term] = (t.wdf, tuple(db.positionlist(docid, t.term)))
    return terms, db.get_doclength(docid)


_TG = new_termgenerator()


def our_snapshot(blob: bytes, copies: tuple[bytes, ...] = ()) -> Snapshot:
    msg = Message(blob)
    doc = xapian.Document()
    index_message(doc, msg, overview_fields(msg), _TG)
    for copy in copies:  # content-duplicates attached later (§3.1)
        index_copy_list_ids(doc, Message(copy), _TG)
    db = xapian.WritableDatabase("", xapian.DB_BACKEND_INMEMORY)
    db.replace_document(1, doc)
    return snapshot(db, 1)


def diff_snapshots(theirs: Snapshot, ours: Snapshot) -> list[str]:
    out = []
    (tt, tl), (ot, ol) = theirs, ours
    for term in sorted(set(tt) | set(ot)):
        a, b = tt.get(term), ot.get(term)
        if a != b:
            out.append(f"{term!r}: lei={a} ours={b}")
    if tl != ol:
        out.append(f"doclength lei={tl} ours={ol}")
    return out


def compare_store(store: Path) -> tuple[int, int, dict[int, list[str]]]:
    """(docs compared, of which with attached content-duplicates, {num: differences})."""
    db = xapian.Database(str(store / "ei15" / "0"))
    blobs = Blobs(store)
    compared = with_copies = 0
    bad: dict[int, list[str]] = {}
    try:
        for num, oid, others in store_docs(store):
            compared += 1
            with_copies += bool(others)
            ours = our_snapshot(blobs.get(oid), [blobs.get(o) for o in others])
            d = diff_snapshots(snapshot(db, num), ours)
            if d:
                bad[num] = [oid] + d
    finally:
        blobs.close()
    return compared, with_copies, bad


def _report(bad: dict[int, list[str]], limit: int = 5) -> str:
    lines = []
    for num in list(bad)[:limit]:
        lines.append(f"doc {num} blob {bad[num][0]}:")
        lines += ["    " + x for x in bad[num][1:12]]
    return "\n".join(lines)


# --- messages written for this test -------------------------------------------------

def _mail(n: int, body: str, headers: str = "", ctype: str = "text/plain; charset=utf-8",
          cte: str = "8bit", subject: str | None = None) -> bytes:
    subject = subject if subject is not None else f"[PATCH {n}] crafted case number {n}"
    hdr = (f"From: Crafted Sender <sender{n}@example.com>\n"
           f"To: list@example.org\nCc: Other Person <other@example.net>\n"
           f"Subject: {subject}\n"
           f"Message-ID: <crafted-{n}.20240101abcdefgh@example.com>\n"
           f"Date: Mon, 1 Jan 2024 00:00:{n % 60:02d} +0000\n{headers}"
           f"MIME-Version: 1.0\nContent-Type: {ctype}\nContent-Transfer-Encoding: {cte}\n\n")
    return hdr.encode() + body.encode("utf-8")


PATCH = """Fix the frobnicator.

Signed-off-by: Crafted Sender <sender@example.com>
---
 fs/foo.c | 2 +-
 1 file changed, 1 insertion(+), 1 deletion(-)

diff --git a/fs/foo.c b/fs/foo.c
index 1234567abc..89abcdef12 100644
--- a/fs/foo.c
+++ b/fs/foo.c
@@ -10,7 +10,7 @@ static int bar_function(struct foo *f)
 	int x = 1;
-	return frobnicate(x);
+	return frobnicate_more(x);
 }
-- 
2.39.5
"""

CRAFTED_BODIES = [
    PATCH,
    # quoted reply with inline patch discussion, starting with a quote
    "> On Mon, someone wrote:\n> diff --git a/x b/x\n> +added\nmy reply here\n> more quoted\n>\ntail text\n",
    # quotes only
    "> only quoted\n> lines here\n",
    # plain diff -u with timestamps, no git header
    "text\ndiff -u a/dir/old.c b/dir/old.c\n--- a/dir/old.c\t2019-01-01 00:00:00.000000000 +0000\n"
    "+++ b/dir/old.c\t2019-01-02 00:00:00.000000000 +0000\n@@ -1,2 +1,2 @@\n ctx line\n-old\n+new\n",
    # diff without u, then plain names without slashes
    "diff -r adir bdir\n--- file.c.orig\n+++ file.c\n@@ -1 +1 @@\n-gone\n+here\n",
    "diff -urN linux.orig/fs/x.c linux/fs/x.c\n--- linux.orig/fs/x.c\n+++ linux/fs/x.c\n@@ -1 +1 @@\n-aa\n+bb\n",
    # new file, deleted file, /dev/null, modes, rename, binary
    "diff --git a/new.txt b/new.txt\nnew file mode 100644\nindex 0000000..e69de29\n--- /dev/null\n"
    "+++ b/new.txt\n@@ -0,0 +1 @@\n+first line\n\\ No newline at end of file\n"
    "diff --git a/old.txt b/old.txt\ndeleted file mode 100644\nindex e69de29..0000000\n--- a/old.txt\n"
    "+++ /dev/null\n@@ -1 +0,0 @@\n-last words\n"
    "diff --git a/s.sh b/s.sh\nold mode 100644\nnew mode 100755\n"
    "diff --git a/x.c b/y.c\nsimilarity index 90%\nrename from x.c\nrename to y.c\n"
    "diff --git a/img.png b/img.png\nindex 1111111..2222222 100644\nGIT binary patch\nliteral 12\n"
    "Tcmd1Ia`|%^%x7nfiR6%4\n\nliteral 0\nHcmV?d00001\n\n"
    "diff --git a/b.bin b/b.bin\nindex 3333333..4444444 100644\nBinary files a/b.bin and b/b.bin differ\n",
    # hunk header variants and a combined diff
    "diff --git a/h.c b/h.c\n--- a/h.c\n+++ b/h.c\n@@ -1 +1 @@   \n-a\n+b\n@@ -5,2 +5,2 @@  two_spaces()\n ctx\n"
    "-c\n+d\n@@ -9 +9 @@x_no_space\n-e\n+f\n@@@ -1,2 -1,2 +1,3 @@@ combined_fn\n- one\n +two\n",
    # paths with spaces and quotes
    'diff --git a/dir one/file two.c b/dir one/file two.c\n--- a/dir one/file two.c\n'
    '+++ b/dir one/file two.c\n@@ -1 +1 @@\n-x\n+y\n'
    'diff --git "a/t\\303\\251st.c" "b/t\\303\\251st.c"\n--- "a/t\\303\\251st.c"\n+++ "b/t\\303\\251st.c"\n'
    "@@ -1 +1 @@\n-q\n+r\n",
    # prose that looks like diff lines, signature inside a diff, index variants
    "diff between the two versions is small\n--- foo\nbar\n+++ baz\n--- \n-- \nsig\n"
    "diff --git a/i.c b/i.c\nindex ABCDEF0..1234567\nindex abc..def\nindex 0123456789abcdef0123456789abcdef01234567..fedcba9\n"
    "--- a/i.c\n+++ b/i.c\n@@ -1 +1 @@\n-- \n+z\n more\n",
    # in_diff persistence across blank lines, +++ NAME2 after a plain --- NAME
    "--- a.c\n+++ b/a.c\n\n-minus after blank\n+plus after blank\n context after blank\nplain text resets\n"
    "-not diff\n+not diff either\n context not diff\n",
    "--- left.c\n+++ right.c\n-x\n--- same.c\n+++ same.c\n@@ -1 +1 @@\n-y\n+w\n",
    # Unicode words, long message-id handled by headers
    "diff --git a/u.c b/u.c\n--- a/u.c\n+++ b/u.c\n@@ -1 +1 @@ caf\u00e9_fn\n-na\u00efve caf\u00e9\n+\u65e5\u672c\u8a9e text\n",
    # no trailing newline
    "diff --git a/n.c b/n.c\n--- a/n.c\n+++ b/n.c\n@@ -1 +1 @@\n-a\n+b",
    # CRLF body
    "diff --git a/r.c b/r.c\r\nindex 1234567..89abcde 100644\r\n--- a/r.c\r\n+++ b/r.c\r\n@@ -1 +1 @@ crlf_fn\r\n-a\r\n+b\r\n",
    # the same file twice in one message (XDFN once), two patches (XDFID)
    PATCH + "\n" + PATCH.replace("frobnicate_more", "frobnicate_less"),
]


def _crafted() -> list[bytes]:
    mails = [_mail(i, b) for i, b in enumerate(CRAFTED_BODIES)]
    n = len(mails)
    # 8-bit bodies without charset: valid UTF-8 and Latin-1
    raw_patch = ("diff --git a/l.c b/l.c\n--- a/l.c\n+++ b/l.c\n@@ -1 +1 @@\n-caf\u00e9 old\n+na\u00efve new\n")
    mails.append(_mail(n, "", ctype="text/plain").replace(b"\n\n", b"\n\n" + raw_patch.encode("utf-8"), 1))
    mails.append(_mail(n + 1, "", ctype="text/plain").replace(b"\n\n", b"\n\n" + raw_patch.encode("latin-1"), 1))
    # raw 8-bit headers, List-Id, X-Alt-Message-ID, long words in the Message-ID
    mails.append(_mail(n + 2, "body\n", subject="R\u00e9sum\u00e9 raw subject",
                       headers="List-Id: Crafted List <Crafted.List.Example.ORG>\n"
                               "List-Id: <second.example.org>\n"
                               "X-Alt-Message-ID: <alt_identifier_longword@x>\n"))
    mails.append("From: =?utf-8?q?J=C3=B6rg?= <j@example.com>\nTo: a@b.c\nSubject: =?utf-8?q?encoded_subj?=\n"
                 "Message-ID: <enc@example.com>\nDate: Mon, 1 Jan 2024 00:00:00 +0000\n\nhello\n".encode())
    # no Message-ID (draft), no Subject, empty To
    mails.append(b"From: a@example.com\nTo: \nDate: Mon, 1 Jan 2024 00:00:00 +0000\n\nno ids here\n")
    # multipart with attachments (filenames), text/x-patch attachment, html alternative
    mails.append(_mail(n + 5, "", ctype='multipart/mixed; boundary="BND"').replace(b"\n\n", b"\n\n" + (
        "preamble\n--BND\nContent-Type: text/plain; charset=utf-8\n\ncover text\n"
        "--BND\nContent-Type: text/x-patch; charset=utf-8; name=\"0001-fix.patch\"\n"
        "Content-Disposition: attachment; filename=\"0001-fix.patch\"\n\n" + PATCH +
        "--BND\nContent-Type: text/html\n\n<p>html ignored</p>\n"
        "--BND\nContent-Type: application/octet-stream; name=\"data.bin\"\n"
        "Content-Transfer-Encoding: base64\n\nAAECAwQF\n--BND--\n").encode(), 1))
    # forwarded message/rfc822 with its own ids, List-Id and headers
    inner = ("From: Inner Author <inner@example.com>\nTo: inner-list@example.org\nCc: cc@example.org\n"
             "Subject: inner subject words\nMessage-ID: <inner-message-identifier@example.com>\n"
             "List-Id: <inner.list.example.org>\nDate: Mon, 1 Jan 2024 00:00:00 +0000\n\n"
             "inner body text\n> inner quote\n")
    mails.append(_mail(n + 6, "", ctype='multipart/mixed; boundary="OUT"').replace(b"\n\n", b"\n\n" + (
        "--OUT\nContent-Type: text/plain\n\nsee forwarded\n"
        "--OUT\nContent-Type: message/rfc822\nContent-Disposition: attachment; filename=\"fwd.eml\"\n\n"
        + inner + "--OUT--\n").encode(), 1))
    # quoted-printable
    mails.append(_mail(n + 7, "soft=\nbreak and caf=C3=A9\n> quoted =3D\n", cte="quoted-printable"))
    # 7bit label on 8-bit UTF-8 without charset (stays raw bytes)
    mails.append(_mail(n + 8, "", ctype="text/plain", cte="7bit").replace(
        b"\n\n", b"\n\n" + "7bit caf\u00e9 body\n".encode(), 1))
    # raw 8-bit headers: valid UTF-8 and Latin-1; 8-bit Message-ID and List-Id
    mails.append(b"From: J\xc3\xb6rg Raw <jr@example.com>\nTo: Z\xe9 Latin <z@example.com>\n"
                 b"Subject: na\xc3\xafve raw utf8 subject\nMessage-ID: <caf\xc3\xa9-unicode_identifier_12345@example.com>\n"
                 b"List-Id: Caf\xc3\xa9 <CAF\xc3\x89.Example.ORG>\nDate: Mon, 1 Jan 2024 00:00:00 +0000\n\nhi\n")
    # filenames: RFC 2231, RFC 2047, raw 8-bit; patches in two parts (XDFN/XDFPRE once vs twice)
    mails.append(_mail(n + 10, "", ctype='multipart/mixed; boundary="F"').replace(b"\n\n", b"\n\n" + (
        "--F\nContent-Type: text/plain; charset=utf-8\nContent-Disposition: attachment; "
        "filename*=utf-8''r%C3%A9sum%C3%A9%20file.txt\n\n" + PATCH +
        "--F\nContent-Type: text/plain; charset=utf-8; name=\"=?utf-8?q?encod=C3=A9d_name.txt?=\"\n\n"
        + PATCH.replace("+\treturn frobnicate_more", "+\treturn frob_other") +
        "--F\nContent-Type: text/x-diff; charset=utf-8\nContent-Transfer-Encoding: base64\n"
        "Content-Disposition: inline; filename=\"b64.diff\"\n\n").encode()
        + __import__("base64").encodebytes(PATCH.encode())
        + "--F\nContent-Type: text/plain\nContent-Disposition: attachment; filename=\"caf\u00e9 raw.txt\"\n\n"
          "raw name\n--F--\n".encode(), 1))
    # quotes interrupting a diff, indented quote marker, empty-ish bodies
    mails.append(_mail(n + 11, "diff --git a/q.c b/q.c\n--- a/q.c\n+++ b/q.c\n@@ -1,3 +1,3 @@\n+one\n"
                                ">quoted inside\n+two\n -ctx\n > indented quote\nend\n"))
    # the same file in two diff runs of one text, split by a quote
    mails.append(_mail(n + 16, "diff --git a/same.c b/same.c\n--- a/same.c\n+++ b/same.c\n@@ -1 +1 @@\n-a\n+b\n"
                                "> a quote\ndiff --git a/same.c b/same.c\n--- a/same.c\n+++ b/same.c\n"
                                "@@ -1 +1 @@\n-c\n+d\n"))
    # a content-duplicate (other Received and List-Id): lei attaches it to the
    # first copy's document and adds its List-Id terms there (§3.1)
    for k, lid in ((1, "First List <first.list.example>"), (2, "Second <Second.List.Example>")):
        mails.append((f"Received: from h{k} by mx; Mon, 1 Jan 2024 00:00:0{k} +0000\n"
                      "From: a@example.com\nTo: b@example.com\nSubject: dup test words\n"
                      f"Message-ID: <dup1@example.com>\nList-Id: {lid}\n"
                      "Date: Mon, 1 Jan 2024 00:00:00 +0000\n\nbody words here\n").encode())
    # RFC 2047 words whose Latin-1 text is mojibake of UTF-8 (decoded text, not bytes)
    mails.append(b"From: =?iso-8859-1?q?J=C3=B6rg_Moji?= <jm@example.com>\n"
                 b"Subject: =?iso-8859-1?q?caf=C3=A9_mojibake?=\nMessage-ID: <moji@example.com>\n"
                 b"Content-Type: text/plain; charset=iso-8859-1\nContent-Disposition: inline; "
                 b"filename==?iso-8859-1?q?caf=C3=A9.txt?=\n"
                 b"Date: Mon, 1 Jan 2024 00:00:00 +0000\n\ncaf\xc3\xa9 body\n")
    mails.append(b"From: x@example.com\nMessage-ID: <moji2231@example.com>\n"
                 b"Content-Type: text/plain; charset=utf-8; name*=iso-8859-1''na%C3%AFve.txt\n"
                 b"Content-Disposition: attachment; filename*=iso-8859-1''caf%C3%A9.txt\n"
                 b"Date: Mon, 1 Jan 2024 00:00:00 +0000\n\nbody\n")
    # bare hunk headers followed by CR (CRLF mail) or TAB, in_diff blank-ish lines
    mails.append(_mail(n + 17, "diff --git a/w.c b/w.c\r\n--- a/w.c\r\n+++ b/w.c\r\n@@ -1 +1 @@\r\n-a\r\n+b\r\n"
                                "text between\r\n@@ -3 +3 @@\t\r\n-c\r\n+d\r\n \r\n-- \r\nsig\r\n"))
    mails.append(_mail(n + 18, "diff --git a/w.c b/w.c\n--- a/w.c\n+++ b/w.c\n@@ -1 +1 @@\t\n-a\n+b\n"
                                "@@ -3 +3 @@ \t \n-c\n+d\n"))
    # CRLF forms of plain diffs, binary patches and blank lines
    mails.append(_mail(n + 19, "diff -u a/x.c b/x.c\r\n--- x.c\r\n+++ x.c\r\n-e\r\n+f\r\n"
                                "diff --git a/i.png b/i.png\r\nindex 1111111..2222222 100644\r\n"
                                "GIT binary patch\r\nliteral 12\r\nTcmd1Ia`|%^%x7nfiR6%4\r\n\r\n"
                                "literal 0\r\nHcmV?d00001\r\n\r\n"
                                "--- a/y.c\r\n+++ b/y.c\r\n@@ -1 +1 @@\r\n-g\r\n\t\r\n  \r\n+h\r\n"))
    mails.append(_mail(n + 20, "--- k.c\n+++ k.c\n-i\n\t\n   \n+j\n"
                                "diff --git a/b.png b/b.png\nindex 3333333..4444444\nGIT binary patch\nliteral 5\nzcmZ\n  \n\t\nliteral 0\nHc\n"))
    mails.append(_mail(n + 12, ""))
    mails.append(_mail(n + 13, "\n"))
    mails.append(_mail(n + 14, "no newline at end"))
    mails.append(_mail(n + 15, ">"))
    return mails


@pytest.fixture(scope="module")
def crafted_store(tmp_path_factory) -> Path:
    need_lei()
    base = tmp_path_factory.mktemp("crafted")
    md = base / "md"
    for sub in ("cur", "new", "tmp"):
        (md / sub).mkdir(parents=True)
    for i, data in enumerate(_crafted()):
        (md / "new" / f"{1700000000 + i}.M{i}P0.crafted").write_bytes(data)
    return lei_import_maildir(base / "lei", md)


def test_crafted_parity(crafted_store: Path) -> None:
    compared, with_copies, bad = compare_store(crafted_store)
    assert compared == len(_crafted()) - 1 and with_copies == 1
    assert not bad, f"{len(bad)}/{compared} documents differ:\n{_report(bad)}"


@pytest.fixture(scope="module")
def small_store(tmp_path_factory, small_corpus: Path) -> Path:
    """lei's store for ../shared/corpora/small.tar.xz (skips when absent)."""
    need_lei()
    base = tmp_path_factory.mktemp("small")
    copy = base / "md"
    shutil.copytree(small_corpus / "maildir", copy)  # lei renames files: never the original
    return lei_import_maildir(base / "lei", copy)


def test_small_corpus_parity(small_store: Path) -> None:
    compared, with_copies, bad = compare_store(small_store)
    assert compared > 300
    assert not bad, f"{len(bad)}/{compared} documents differ:\n{_report(bad)}"
