"""Pure-Python ``git patch-id --stable`` (behaviour of git 2.39).

lei adds ``XDFID<id>`` for every part text that looks like a patch; spawning
git once per message would dominate import time, so the algorithm is
re-implemented here and kept honest by a differential test against git.

How git computes it (what this module reproduces):

* Input is read line by line.  Everything before the first ``diff `` line is
  commit message and ignored.  A line that starts with a full 40-hex object
  id (optionally after ``commit `` or ``From ``) ends the current patch.
  ``\\ No newline at end of file`` style lines (``\\ `` + more than 10 chars)
  are skipped everywhere.
* Every other line of a file's diff is hashed with SHA-1 after deleting the
  whitespace bytes space, TAB, CR and LF (git's own ``isspace``), except
  ``index`` lines (whose ids only matter for binary diffs) and hunk headers
  (line numbers must not matter).  Hunk bodies are consumed by counting the
  ``-``/``+``/`` `` lines announced by the hunk header; the first line after a
  complete hunk that is neither ``@@ -`` nor ``diff `` ends the patch.
* With ``--stable`` each file's digest is added to the result as a 160-bit
  little-endian integer (byte-wise sum with carry), so file order does not
  matter.  Binary diffs contribute SHA-1(pre-image id + post-image id) taken
  from the preceding ``index`` line.
* git prints one ``<patch-id> <commit-id>`` line per patch that hashed at
  least one byte; lei uses the first field of the first line.

Inputs whose C-string semantics we do not model (NUL bytes, a binary diff
without an ``index`` line, absurd hunk counts) are handed to the real
``git patch-id --stable``.
"""

from __future__ import annotations

import hashlib
import re

__all__ = ["patch_id", "git_patch_id"]

_MASK160 = (1 << 160) - 1
_HEX40 = re.compile(rb"[0-9a-fA-F]{40}")
_DIGITS = re.compile(rb"[0-9]*")
# C atoi(): leading isspace, optional sign, digits.
_ATOI = re.compile(rb"[ \t\n\v\f\r]*([+-]?[0-9]*)")
_WS = b" \t\r\n"  # git's sane_ctype isspace(): no \v, no \f
_HEX_CHARS = frozenset(bytes([x]) for x in b"0123456789abcdefABCDEF")
_HUNK_CHARS = frozenset((b" ", b"+", b"-"))
_ALPHA = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
# Well-formed hunk header; anything else goes through the C-like scanner.
_HUNK_OK = re.compile(rb"@@ -[0-9]+(?:,([0-9]{1,9}))? \+[0-9]+(?:,([0-9]{1,9}))?(?![0-9,])")


class _Unsupported(Exception):
    """Input relies on C undefined behaviour or overflow; ask git instead."""


def _digits_end(line: bytes, pos: int) -> int:
    m = _DIGITS.match(line, pos)
    return m.end() if m else pos


def _atoi(buf: bytes, pos: int) -> int:
    m = _ATOI.match(buf, pos)
    assert m is not None  # the pattern matches the empty string too
    s = m.group(1)
    if len(s) > 9:
        raise _Unsupported("hunk count overflow")
    try:
        return int(s)
    except ValueError:  # "", "+", "-"
        return 0


def _scan_hunk_header(line: bytes, before: int, after: int) -> tuple[int, int]:
    """Counts of an ``@@ -a,b +c,d @@`` line; a missing count means 1.

    Like git, values already parsed stay assigned when a later piece of the
    header is malformed.
    """
    m = _HUNK_OK.match(line)
    if m is not None:
        b, a = m.groups()
        return (int(b) if b is not None else 1), (int(a) if a is not None else 1)
    q = 4
    n = _digits_end(line, q) - q
    if line[q + n : q + n + 1] == b",":
        q += n + 1
        before = _atoi(line, q)
        n = _digits_end(line, q) - q
    else:
        before = 1
    if n == 0 or line[q + n : q + n + 2] != b" +":
        return before, after
    r = q + n + 2
    n = _digits_end(line, r) - r
    if line[r + n : r + n + 1] == b",":
        r += n + 1
        after = _atoi(line, r)
    else:
        after = 1
    return before, after


def _digest(parts: list[bytes], extra: bytes = b"") -> int:
    """SHA-1 of one file's hashed lines (whitespace removed) as a
    little-endian integer: git adds these byte-wise with carry."""
    h = hashlib.sha1(b"".join(parts).translate(None, _WS) + extra)
    return int.from_bytes(h.digest(), "little")


def _hunk_end(lines: list[bytes], j: int, before: int, after: int) -> int:
    """End (exclusive line index) of a regular hunk body starting at line *j*,
    or -1 when the body is not a plain run of ``' '``/``-``/``+`` lines that
    brings both counters exactly to zero (then the caller goes line by line).

    Every such line lowers at least one counter by one, so at least
    max(before, after) more lines are needed: jump that far, count the line
    starts in C, repeat.
    """
    n = len(lines)
    k = j
    while before or after:
        step = before if before > after else after
        if k + step > n:
            return -1
        seg = b"\n" + b"\n".join(lines[k : k + step])
        ctx = seg.count(b"\n ")
        minus = seg.count(b"\n-")
        plus = seg.count(b"\n+")
        if ctx + minus + plus != step:
            return -1
        before -= ctx + minus
        after -= ctx + plus
        if before < 0 or after < 0:
            return -1
        k += step
    return k


def _one_patch(lines: list[bytes], i: int, last_nl: int) -> tuple[int, bool, int]:
    """One round of git's reader: returns (result, hashed anything, next index).

    Lines come without their newline; *last_nl* is 1 when the last line had
    one (git's strlen counts it, which matters for ``\\ `` and index lines).
    The hunk state is exactly git's two counters: ``before == -1`` means
    "parsing a file header", ``0, 0`` means "expecting @@ or the next diff",
    anything else means "inside a hunk" (counters can even go negative on
    malformed input, and git then never leaves the hunk).
    """
    n = len(lines)
    # Before the first "diff " line git hashes nothing; a 40-hex line there
    # would only end an empty round, which is the same as skipping on.
    while i < n and not lines[i].startswith(b"diff "):
        i += 1
    parts: list[bytes] = []  # hashed lines of the current file
    append = parts.append  # (parts is only ever mutated in place)
    result = 0
    started = False  # git's "patchlen != 0"; the first hashed line is "diff ..."
    before = after = -1
    is_binary = False
    pre_oid: bytes | None = None
    post_oid: bytes | None = None
    hunk_chars = _HUNK_CHARS
    bulk = True
    while i < n:
        line = lines[i]
        i += 1
        c = line[:1]
        # Fast path: an ordinary hunk line (cannot be a hex, "\ " or header line).
        if c in hunk_chars and before != -1 and (before or after) and not is_binary:
            if bulk and before >= 0 and after >= 0:
                end = _hunk_end(lines, i - 1, before, after)
                if end > 0:
                    parts += lines[i - 1 : end]
                    i = end
                    before = after = 0
                    continue
                bulk = False  # irregular hunk: go line by line until the next @@
            if c == b" ":
                before -= 1
                after -= 1
            elif c == b"-":
                before -= 1
            else:
                after -= 1
            append(line)
            continue

        if c == b"c" and line.startswith(b"commit "):
            p = 7
        elif c == b"F" and line.startswith(b"From "):
            p = 5
        else:
            p = 0
            if c == b"\\" and line.startswith(b"\\ ") and len(line) + (i < n or last_nl) > 12:
                continue
        if line[p : p + 1] in _HEX_CHARS and _HEX40.match(line, p):
            break  # next commit header

        if not started and not line.startswith(b"diff "):
            continue  # commit message / cover text

        if before == -1:
            if line.startswith(b"GIT binary patch") or line.startswith(b"Binary files"):
                if pre_oid is None or post_oid is None:
                    # git would hash uninitialised stack memory
                    raise _Unsupported("binary diff without index line")
                is_binary = True
                before = 0
                result += _digest(parts, pre_oid + post_oid)
                parts.clear()
                continue
            if line.startswith(b"index "):
                dots = line.find(b"..")
                if dots >= 0:
                    sp = line.find(b" ", dots)
                    if sp < 0:
                        # git cuts the last character of the line: normally the
                        # newline (so a CR stays in the id), else an id character.
                        full = line + b"\n" if (i < n or last_nl) else line
                        sp = len(full) - 1
                    else:
                        full = line
                    # strlcpy into GIT_MAX_HEXSZ + 1; hashed verbatim (with any CR)
                    pre_oid = full[6:dots][:64]
                    post_oid = full[dots + 2 : sp][:64]
                continue
            if line.startswith(b"--- "):
                before = after = 1
            elif not line or line[0] not in _ALPHA:
                break

        if is_binary:
            if line.startswith(b"diff "):
                is_binary = False
                before = -1
            continue

        if before == 0 and after == 0:
            if line.startswith(b"@@ -"):
                before, after = _scan_hunk_header(line, before, after)
                bulk = True
                continue
            if not line.startswith(b"diff "):
                break  # end of patch
            result += _digest(parts)  # --stable: one digest per file
            parts.clear()
            before = after = -1

        if c == b"-" or c == b" ":
            before -= 1
        if c == b"+" or c == b" ":
            after -= 1
        append(line)
        started = True

    result += _digest(parts)
    return result & _MASK160, started, i


def _first_diff(data: bytes) -> int:
    """Offset of the first line starting with ``diff ``, or -1."""
    if data.startswith(b"diff "):
        return 0
    pos = data.find(b"\ndiff ")
    return pos + 1 if pos >= 0 else -1


def _patch_id_bytes(data: bytes) -> str | None:
    pos = _first_diff(data)
    if pos < 0:
        return None  # git hashes nothing before a "diff " line
    data = data[pos:]
    if b"\0" in data:
        raise _Unsupported("NUL byte")  # git would stop each line at the NUL
    lines = data.split(b"\n")
    last_nl = 0
    if lines[-1] == b"":
        lines.pop()
        last_nl = 1
    i = 0
    n = len(lines)
    while i < n:
        result, started, i = _one_patch(lines, i, last_nl)
        if started:
            return result.to_bytes(20, "little").hex()
    return None


def git_patch_id(data: bytes) -> str | None:
    """Ask the real ``git patch-id --stable`` (used for unsupported inputs)."""
    from lei_store import git

    try:
        out = git.run(None, "patch-id", "--stable", input=data).stdout
    except OSError:  # no git: the term is left out rather than failing the import
        return None
    if not out:
        return None
    return out.split(None, 1)[0].decode("ascii")


def patch_id(text: str | bytes) -> str | None:
    """First field of ``git patch-id --stable`` for *text* (str is UTF-8
    encoded), or None when git would print nothing."""
    data = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text
    try:
        return _patch_id_bytes(data)
    except _Unsupported:
        return git_patch_id(data)
