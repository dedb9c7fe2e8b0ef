"""Diff indexing of one non-quoted body run (spec §6.3.1).

A run that contains a line starting with ``diff ``, ``--- `` or ``+++ `` is
indexed line by line: diff metadata becomes XDFN/XDFHH/XDFCTX/XDFA/XDFB text
and XDFPRE/XDFPOST plain terms, everything else is gathered into a pending
non-quoted buffer (NQ) that is indexed as XNQ text just before the next diff
text (so positions interleave exactly like lei's).
"""

from __future__ import annotations

import re
from typing import Callable

__all__ = ["has_diff", "index_diff", "git_unquote"]

IndexFn = Callable[[str, int, str], None]  # TermGenerator.index_text(text, wdf_inc, prefix)
BumpFn = Callable[[], None]  # TermGenerator.increase_termpos()
TermFn = Callable[[str], None]  # Document.add_term: wdf 1, no position

_DIFF_GIT = re.compile(r'diff --git ("?[^/]+/.+) ("?[^/]+/.+)\Z', re.S)
_DIFF_OPTS = re.compile(r"diff -(\S+) (\S+) (\S+)\Z")
_MINUS_PATH = re.compile(r'--- ("?[^/]+/.+)', re.S)
_PLUS_PATH = re.compile(r'\+\+\+ ("?[^/]+/.+)', re.S)
_MINUS_NAME = re.compile(r"--- (\S+)")
_PLUS_NAME = re.compile(r"\+\+\+ (\S+)")
_INDEX = re.compile(r"index ([a-f0-9]+)\.\.([a-f0-9]+)")
_HUNK = re.compile(r"@@ \S+ \S+ @@(.*)\Z", re.S)
_BINARY_DIFFER = re.compile(r"Binary files .* differ")
_BASE85 = re.compile(r"[0-9A-Za-z!#$%&()*+\-;<=>?@^_`{|}~]+\Z")
# Lines kept as non-quoted text without leaving the diff (rule 15).
_META_PREFIXES = (
    "similarity index", "dissimilarity index", "old mode", "new mode", "deleted file mode",
    "new file mode", "copy from ", "copy to ", "rename from ", "rename to ",
    "\\ No newline at end of file",
)
_PERL_SPACE = " \t\n\r\f\v"  # \s on a byte string
_UNQUOTE = re.compile(r'\\([0-7]{1,3}|.)', re.S)
_C_ESCAPES = {"a": "\a", "b": "\b", "t": "\t", "n": "\n", "v": "\v", "f": "\f", "r": "\r"}


def has_diff(text: str) -> bool:
    """True if some line starts with ``diff ``, ``--- `` or ``+++ ``."""
    # substring scans are far cheaper than a multi-line regex tried at every offset
    return (
        "\ndiff " in text
        or "\n--- " in text
        or "\n+++ " in text
        or text.startswith(("diff ", "--- ", "+++ "))
    )


def git_unquote(path: str) -> str:
    """Undo git's C-style quoting of a path (``"a/t\\303\\251st"``)."""
    if len(path) < 2 or path[0] != '"' or path[-1] != '"':
        return path
    inner = path[1:-1]

    def rep(m: re.Match[str]) -> str:
        e = m.group(1)
        if e[0] in "01234567":
            return chr(int(e, 8) & 0xFF)
        return _C_ESCAPES.get(e, e)

    return _UNQUOTE.sub(rep, inner)


def _strip_component(path: str) -> str:
    return path.split("/", 1)[1] if "/" in path else path


def index_diff(run: str, index_text: IndexFn, bump: BumpFn, add_term: TermFn) -> None:
    """Index one non-quoted run that contains diff lines (§6.3.1).

    *index_text*/*bump* are the TermGenerator's index_text and
    increase_termpos (or wrappers of them); the hot per-line paths call them
    directly because this loop runs for every line of every patch.
    """
    seen: set[str] = set()  # XDFN names are emitted once per run (verified with lei)
    nq: list[str] = []  # pending non-quoted lines
    nq_append = nq.append
    # False, True, or the old name of a "--- NAME" line that rule 6 did not take
    in_diff: bool | str = False

    def flush() -> None:
        index_text("\n".join(nq), 1, "XNQ")
        bump()
        nq.clear()

    def emit_name(name: str) -> None:
        if name not in seen:
            seen.add(name)
            if nq:
                flush()
            index_text(name, 1, "XDFN")
            bump()

    def plain_diff(old: str, new: str) -> bool:
        # drop leading components in step until the paths agree (rule 5)
        while old != new:
            if "/" not in old or "/" not in new:
                return False
            old = old.split("/", 1)[1]
            new = new.split("/", 1)[1]
        emit_name(old)
        return True

    lines = run.split("\n")
    while lines and not lines[-1]:
        lines.pop()  # Perl's split drops trailing empty fields
    n = len(lines)
    i = 0
    while i < n:
        line = lines[i]
        i += 1
        c = line[:1]
        if c == " ":
            if in_diff:  # rule 2
                if nq:
                    flush()
                index_text(line[1:], 1, "XDFCTX")
                bump()
            else:
                nq_append(line)  # rule 17
            continue
        if c == "+":
            if line.startswith("+++ "):
                m = _PLUS_PATH.match(line)
                if m:  # rule 7
                    emit_name(_strip_component(git_unquote(m.group(1))))
                    in_diff = True
                    continue
                if in_diff:
                    m = _PLUS_NAME.match(line)
                    if m:  # rule 9: like rule 5 but the line is dropped
                        old = in_diff if isinstance(in_diff, str) else "1"
                        in_diff = plain_diff(old, m.group(1))
                        continue
            if in_diff:  # rule 10
                if nq:
                    flush()
                index_text(line[1:], 1, "XDFB")
                bump()
            else:
                nq_append(line)
            continue
        if c == "-":
            if line == "-- ":
                in_diff = False  # rule 3: signature
                continue
            if line.startswith("--- "):
                m = _MINUS_PATH.match(line)
                if m:  # rule 6
                    emit_name(_strip_component(git_unquote(m.group(1))))
                    in_diff = True
                    continue
                m = _MINUS_NAME.match(line)
                if m:  # rule 8 (also "--- /dev/null")
                    in_diff = m.group(1)
                    nq_append(line)
                    continue
            if in_diff:  # rule 11
                if nq:
                    flush()
                index_text(line[1:], 1, "XDFA")
                bump()
            else:
                nq_append(line)
            continue
        if not line:
            continue  # rule 16
        if c == "G" and in_diff and line.startswith("GIT binary patch"):  # rule 1
            nq_append(line)
            while i < n and (lines[i].startswith("literal ") or lines[i].startswith("delta ")):
                nq_append(lines[i])
                i += 1
                # skip the data: base85 lines and blank (even whitespace-only) lines
                while i < n and (_BASE85.match(lines[i]) or not lines[i].strip(_PERL_SPACE)):
                    i += 1
            continue
        if c == "d" and line.startswith("diff "):
            m = _DIFF_GIT.match(line)
            if m:  # rule 4
                nq_append(line)
                in_diff = True
                emit_name(_strip_component(git_unquote(m.group(1))))
                emit_name(_strip_component(git_unquote(m.group(2))))
                continue
            m = _DIFF_OPTS.match(line)
            if m:  # rule 5
                nq_append(line)
                if "u" in m.group(1) or "U" in m.group(1):
                    in_diff = plain_diff(m.group(2), m.group(3))
                continue
        elif c == "i":
            m = _INDEX.match(line)
            if m:  # rule 12
                for prefix, oid in (("XDFPRE", m.group(1)), ("XDFPOST", m.group(2))):
                    for k in range(7, len(oid) + 1):
                        add_term(prefix + oid[:k])
                in_diff = True
                continue
        elif c == "@":
            m = _HUNK.match(line)
            if m:
                ctx = m.group(1)
                if ctx.strip(_PERL_SPACE):  # rule 14 (13: only whitespace follows)
                    if nq:
                        flush()
                    index_text(ctx, 1, "XDFHH")
                    bump()
                continue  # rule 13
        if line.startswith(_META_PREFIXES) or _BINARY_DIFFER.match(line):
            nq_append(line)  # rule 15
            continue
        nq_append(line)  # rule 17
        in_diff = False
    index_text("\n".join(nq), 1, "XNQ")  # always, even when empty
    bump()
