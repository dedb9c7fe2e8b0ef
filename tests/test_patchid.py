"""Differential tests: lei_store.mail.patchid.patch_id vs the real
``git patch-id --stable`` on synthetic patches (well-formed ones written by
git itself, hand-written edge cases and a seeded random fuzzer)."""

from __future__ import annotations

import os
import random
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from lei_store.mail import patchid
from lei_store.mail.patchid import git_patch_id, patch_id

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")


def _pure(data: bytes) -> str | None:
    """The pure-Python path only (no subprocess fallback)."""
    return patchid._patch_id_bytes(data)


def _check_all(cases: list[bytes], max_unsupported: float = 0.1) -> None:
    """Every case the pure code accepts must equal git; the rest (delegated
    to git by patch_id) must stay rare."""
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as ex:
        want = list(ex.map(git_patch_id, cases))
    bad = []
    unsupported = 0
    for data, w in zip(cases, want, strict=True):
        try:
            got = _pure(data)
        except patchid._Unsupported:
            unsupported += 1
            continue
        if got != w:
            bad.append((data, got, w))
    assert not bad, "%d/%d mismatches, first:\n%r\n got %s want %s" % (
        len(bad), len(cases), bad[0][0][:2000], bad[0][1], bad[0][2])
    assert unsupported <= max_unsupported * len(cases)


# --- hand-written edge cases -------------------------------------------------

BASE = b"""From 0123456789abcdef0123456789abcdef01234567 Mon Sep 17 00:00:00 2001
From: A U Thor <a@example.com>
Subject: [PATCH] foo: change things

Commit message with a diff mention
--- not a diff yet
---
 foo | 2 +-
 1 file changed, 1 insertion(+), 1 deletion(-)

diff --git a/foo b/foo
index 1234567..89abcde 100644
--- a/foo
+++ b/foo
@@ -1,3 +1,3 @@ bar_function(void)
 context
-old line
+new line
 more context
@@ -10,2 +10,3 @@
 x
+added
 y
diff --git a/dir/c b/dir/c
new file mode 100644
index 0000000..1111111
--- /dev/null
+++ b/dir/c
@@ -0,0 +1 @@
+hello
\\ No newline at end of file
-- 
2.39.5

"""

EDGE = {
    "base": BASE,
    "crlf": BASE.replace(b"\n", b"\r\n"),
    "no-final-newline": BASE.rstrip(b"\n"),
    "whitespace-only-change": BASE.replace(b"+new line", b"+new\tline  ").replace(b" context\n", b"  context \n"),
    "vt-ff-are-not-space": BASE.replace(b"+new line", b"+new\vline\f"),
    "trailing-text": BASE.replace(b"-- \n2.39.5\n", b"\nthanks\n> quoted\n"),
    "reply-text-after": BASE + b"On Mon, someone wrote:\n> diff --git a/x b/x\n",
    "two-commits": BASE + BASE.replace(b"old line", b"other"),
    "commit-line": b"commit 0123456789abcdef0123456789abcdef01234567\n" + BASE.split(b"\n\n", 1)[1],
    "hex-line-in-message": b"fix\n0123456789abcdef0123456789ABCDEF01234567 is bad\n" + BASE,
    "hex-line-ends-patch": BASE.replace(b" more context\n", b" more context\n0123456789abcdef0123456789abcdef01234567\n"),
    "index-no-mode": BASE.replace(b"index 1234567..89abcde 100644", b"index 1234567..89abcde"),
    "index-no-dots": BASE.replace(b"index 1234567..89abcde 100644", b"index 1234567"),
    "hunk-header-one-line": b"diff --git a/f b/f\n--- a/f\n+++ b/f\n@@ -7 +7 @@\n-a\n+b\ntail\n",
    "hunk-count-mismatch": b"diff --git a/f b/f\n--- a/f\n+++ b/f\n@@ -1,2 +1,2 @@\n-a\n+b\n\nsig\n-- \nfoo\n",
    "stripped-context": b"diff --git a/f b/f\n--- a/f\n+++ b/f\n@@ -1,3 +1,3 @@\n a\n-b\n+c\n\nafter\n",
    "bad-hunk-header": b"diff --git a/f b/f\n--- a/f\n+++ b/f\n@@ -x +1 @@\n-a\n+b\n",
    "hunk-header-spaces": b"diff --git a/f b/f\n--- a/f\n+++ b/f\n@@ -1, 2 +1,2 @@\n-a\n-b\n+c\n+d\n",
    "hunk-header-comma-junk": b"diff --git a/f b/f\n--- a/f\n+++ b/f\n@@ -1,2 +1,x @@\n-a\n-b\n+c\n",
    "hunk-header-no-first-digits": b"diff --git a/f b/f\n--- a/f\n+++ b/f\n@@ -,2 +1,1 @@\n-a\n-b\n+c\n",
    "hunk-header-huge": b"diff --git a/f b/f\n--- a/f\n+++ b/f\n@@ -1,0000000002 +1,1 @@\n-a\n-b\n+c\n",
    "hunk-header-negative": b"diff --git a/f b/f\n--- a/f\n+++ b/f\n@@ -1,-2 +1,2 @@\n-a\n+b\n",
    "plain-diff-u": b"diff -u a/f.c b/f.c\n--- a/f.c\t2019-01-01\n+++ b/f.c\t2019-01-02\n@@ -1 +1 @@\n-a\n+b\n",
    "no-diff-line": b"--- a/f\n+++ b/f\n@@ -1 +1 @@\n-a\n+b\n",
    "diff-only": b"diff --git a/f b/f\n",
    "mode-change-only": b"diff --git a/s b/s\nold mode 100644\nnew mode 100755\ndiff --git a/t b/t\nold mode 100755\nnew mode 100644\n",
    "rename": b"diff --git a/x b/y\nsimilarity index 100%\nrename from x\nrename to y\n",
    "rename-then-hunk": b"diff --git a/x b/y\nsimilarity index 90%\nrename from x\nrename to y\nindex 1111111..2222222 100644\n--- a/x\n+++ b/y\n@@ -1 +1 @@\n-a\n+b\n",
    "binary-literal": b"diff --git a/b.bin b/b.bin\nindex 1234567..89abcde 100644\nGIT binary patch\nliteral 10\nRcmb=e\n\nliteral 0\nHcmV?d00001\n\n",
    "binary-files-differ": b"diff --git a/b.bin b/b.bin\nindex 1234567..89abcde 100644\nBinary files a/b.bin and b/b.bin differ\ndiff --git a/f b/f\n--- a/f\n+++ b/f\n@@ -1 +1 @@\n-a\n+b\n",
    "binary-crlf": b"diff --git a/b b/b\r\nindex 1234567..89abcde\r\nBinary files a/b and b/b differ\r\n",
    "binary-index-eof": b"diff --git a/b b/b\nindex 1234567..89abcdef\nGIT binary patch",
    "long-ids": b"diff --git a/b b/b\nindex " + b"a" * 70 + b".." + b"b" * 45 + b"\nBinary files differ\n",
    "no-newline-marker-short": b"diff --git a/f b/f\n--- a/f\n+++ b/f\n@@ -1 +1 @@\n-a\n\\ short\n+b\n",
    "non-ascii": "diff --git a/f b/f\n--- a/f\n+++ b/f\n@@ -1 +1 @@\n-caf\u00e9\n+\u65e5\u672c\n".encode(),
    "non-ascii-header": "diff --git a/f b/f\n\u00e9t\u00e9\n--- a/f\n".encode(),
    "empty-line-in-header": b"diff --git a/f b/f\n\n--- a/f\n+++ b/f\n@@ -1 +1 @@\n-a\n+b\n",
    "nul-byte": b"diff --git a/f b/f\n--- a/f\n+++ b/f\n@@ -1 +1 @@\n-a\0z\n+b\n",
    "from-not-hex": b"From someone@example.com Mon\ndiff --git a/f b/f\n--- a/f\n+++ b/f\n@@ -1 +1 @@\n-a\n+b\n",
    "empty": b"",
    "nothing": b"hello\nworld\n",
}


@pytest.mark.parametrize("name", sorted(EDGE))
def test_edge_case(name: str) -> None:
    data = EDGE[name]
    assert patch_id(data) == git_patch_id(data)


def test_binary_without_index_goes_to_git() -> None:
    # git hashes uninitialised stack bytes here (its output even differs
    # between environments), so there is nothing to reproduce: delegate.
    data = b"diff --git a/b b/b\nBinary files a/b and b/b differ\n"
    with pytest.raises(patchid._Unsupported):
        patchid._patch_id_bytes(data)
    assert len(patch_id(data) or "") == 40


def test_str_input_is_utf8() -> None:
    text = EDGE["non-ascii"].decode()
    assert patch_id(text) == git_patch_id(text.encode())


def test_known_value() -> None:
    # stable: independent of file order
    a = b"diff --git a/f b/f\n--- a/f\n+++ b/f\n@@ -1 +1 @@\n-a\n+b\n"
    b = b"diff --git a/g b/g\n--- a/g\n+++ b/g\n@@ -1 +1 @@\n-c\n+d\n"
    assert patch_id(a + b) == patch_id(b + a) == git_patch_id(a + b)


# --- patches written by git itself --------------------------------------------

def _git(repo: Path, *args: str, input: bytes | None = None) -> bytes:
    env = dict(os.environ, GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@e", GIT_COMMITTER_NAME="t",
               GIT_COMMITTER_EMAIL="t@e", GIT_AUTHOR_DATE="1600000000 +0000",
               GIT_COMMITTER_DATE="1600000000 +0000", HOME=str(repo))
    return subprocess.run(["git", "-C", str(repo), *args], input=input, env=env, check=True,
                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL).stdout


def test_git_format_patch_series(tmp_path: Path) -> None:
    rng = random.Random(42)
    repo = tmp_path / "r"
    repo.mkdir()
    _git(repo, "init", "-q")
    words = ["alpha", "beta", "gamma", "int x;", "\treturn 0;", "}", "{", "", "  ", "caf\u00e9"]
    files: dict[str, list[str]] = {}
    for c in range(40):
        for _ in range(rng.randint(1, 4)):
            op = rng.random()
            if not files or op < 0.25:
                name = "d%d/f%d.%s" % (rng.randint(0, 3), rng.randint(0, 99), rng.choice("ch"))
                files[name] = [rng.choice(words) for _ in range(rng.randint(0, 30))]
            elif op < 0.35:
                old = rng.choice(sorted(files))
                name = "moved/%s" % old.replace("/", "_")
                if name in files:
                    continue
                files[name] = files.pop(old)
                (repo / old).unlink(missing_ok=True)
            elif op < 0.42:
                name = rng.choice(sorted(files))
                p = repo / name
                if p.exists():
                    p.chmod(p.stat().st_mode ^ 0o111)
            elif op < 0.47:
                name = "bin%d.dat" % rng.randint(0, 5)
                (repo / name).write_bytes(bytes(rng.randrange(256) for _ in range(rng.randint(1, 300))))
                continue
            elif op < 0.52:
                name = rng.choice(sorted(files))
                del files[name]
                if (repo / name).exists():
                    (repo / name).unlink()
                continue
            else:
                name = rng.choice(sorted(files))
                lines = files[name]
                for _ in range(rng.randint(1, 5)):
                    k = rng.randint(0, len(lines))
                    if lines and rng.random() < 0.4:
                        del lines[min(k, len(lines) - 1)]
                    else:
                        lines.insert(k, rng.choice(words) + ("\r" if rng.random() < 0.1 else ""))
            p = repo / name
            p.parent.mkdir(parents=True, exist_ok=True)
            body = "\n".join(files[name])
            if rng.random() < 0.8:
                body += "\n"
            p.write_bytes(body.encode())
        _git(repo, "add", "-A")
        _git(repo, "commit", "-q", "--allow-empty", "-m", "commit %d\n\nbody --- text" % c)
    series = _git(repo, "format-patch", "--stdout", "--binary", "--root", "HEAD")
    one = series.split(b"\nFrom ")
    cases = [series] + [b"From " + p if i else p for i, p in enumerate(one)]
    cases += [_git(repo, "log", "-p", "--binary"), _git(repo, "log", "-p", "-M", "--stat")]
    cases += [_git(repo, "diff", "HEAD~%d" % k, "HEAD") for k in range(1, 30, 3)]
    cases += [c.replace(b"\n", b"\r\n") for c in cases[:10]]
    _check_all(cases)


# --- seeded fuzzer -------------------------------------------------------------

def _hex(rng: random.Random, n: int) -> str:
    return "".join(rng.choice("0123456789abcdef") for _ in range(n))


def _fuzz_line(rng: random.Random) -> str:
    r = rng.random()
    path = rng.choice(["a/f", "b/f", "a/dir/x.c", "f", "/dev/null", '"a/sp ace"'])
    choices = [
        lambda: "diff --git a/f b/f",
        lambda: "diff -u %s %s" % (path, path),
        lambda: "index %s..%s%s" % (_hex(rng, rng.choice([7, 12, 40, 64, 70])), _hex(rng, rng.choice([0, 7, 40, 66])),
                                    rng.choice(["", " 100644", " 100755"])),
        lambda: "--- %s" % path,
        lambda: "+++ %s" % path,
        lambda: "@@ -%s +%s @@%s" % (rng.choice(["1", "1,0", "3,2", "0,0", "2,3", "x", "1,", "12", ",1", "1,+1", "1, 2"]),
                                     rng.choice(["1", "1,0", "3,2", "2,3", "", "1,x", "2,1,", "1 ", "1,-1", "00000000001,1"]),
                                     rng.choice(["", " func()", "  "])),
        lambda: rng.choice("+- ") + rng.choice(["a", "b c", "", "\tx ", "caf\u00e9", "-- "]),
        lambda: "",
        lambda: "-- ",
        lambda: "\\ No newline at end of file",
        lambda: "\\ x",
        lambda: rng.choice(["new file mode 100644", "deleted file mode 100644", "old mode 100644",
                            "new mode 100755", "similarity index 90%", "rename from x", "rename to y",
                            "copy from x", "copy to y"]),
        lambda: "GIT binary patch",
        lambda: "literal %d" % rng.randint(0, 99),
        lambda: "Binary files a/x and b/x differ",
        lambda: rng.choice(["From ", "commit ", ""]) + _hex(rng, 40) + rng.choice(["", " Mon Sep 17"]),
        lambda: rng.choice(["text line", "Signed-off-by: x", "> quoted", "1 file changed", "\u00e9t\u00e9"]),
    ]
    del r
    return rng.choice(choices)()


def _fuzz_case(rng: random.Random) -> bytes:
    lines = []
    if rng.random() < 0.7:  # mostly start like a patch
        lines += ["diff --git a/f b/f", "--- a/f", "+++ b/f", "@@ -1,2 +1,2 @@"]
    lines += [_fuzz_line(rng) for _ in range(rng.randint(1, 25))]
    eol = "\r\n" if rng.random() < 0.15 else "\n"
    text = eol.join(lines)
    if rng.random() < 0.8:
        text += eol
    return text.encode()


def test_fuzz() -> None:
    rng = random.Random(1234)
    _check_all([_fuzz_case(rng) for _ in range(3000)])
