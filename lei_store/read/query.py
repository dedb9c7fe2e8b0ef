"""lei's query language: argv joining, date-range rewriting and the Xapian QueryParser setup (spec §9).

The same QueryParser configuration as lei means the same words match the same
documents. Unlike lei, a query that does not parse is an error, not silence.
"""

from __future__ import annotations

import calendar
import re
import time
from functools import cache
from pathlib import Path

import xapian

from lei_store.disk.shards import BYTES, DT, TS, UID, YYYYMMDD
from lei_store.errors import QueryError

_BODY = ["XNQ", "XDFN", "XDFA", "XDFB", "XDFHH", "XDFCTX", "XDFPRE", "XDFPOST", "XDFID"]
PROBABILISTIC: dict[str, list[str]] = {
    "s": ["S"], "f": ["A"], "t": ["XTO"], "c": ["XCC"], "tc": ["XTO", "XCC"],
    "tcf": ["XTO", "XCC", "A"], "a": ["XTO", "XCC", "A"],
    "b": _BODY + ["XQUOT"], "bs": _BODY + ["XQUOT", "S"], "nq": _BODY, "q": ["XQUOT"],
    "n": ["XFN"], "m": ["XM"], "l": ["XL"], "dfn": ["XDFN"], "dfa": ["XDFA"], "dfb": ["XDFB"],
    "dfhh": ["XDFHH"], "dfctx": ["XDFCTX"],
    "": ["XM", "S", "A", "XQUOT", "XFN"] + _BODY,
}
BOOLEAN: dict[str, list[str]] = {
    "mid": ["Q"], "lid": ["G"], "dfpre": ["XDFPRE"], "dfpost": ["XDFPOST"],
    "dfblob": ["XDFPRE", "XDFPOST"], "patchid": ["XDFID"], "kw": ["K"], "L": ["L"],
}
RANGES = {"d": YYYYMMDD, "dt": DT, "rt": TS, "z": BYTES, "uid": UID}
FLAGS = (xapian.QueryParser.FLAG_PHRASE | xapian.QueryParser.FLAG_BOOLEAN |
         xapian.QueryParser.FLAG_LOVEHATE | xapian.QueryParser.FLAG_WILDCARD |
         xapian.QueryParser.FLAG_PURE_NOT)
KNOWN_PREFIXES = set(PROBABILISTIC) | set(BOOLEAN) | set(RANGES)

_DATE_ARG = re.compile(r"\b(d|rt|dt):(\S+)$")
_PREFIXED = re.compile(r"\b([a-zA-Z]+):")
_DAY = 86400


def query_parser(db: xapian.Database) -> xapian.QueryParser:
    """A QueryParser configured as lei configures it. The range processors must outlive it."""
    qp = xapian.QueryParser()
    qp.set_database(db)
    qp.set_default_op(xapian.Query.OP_AND)
    qp.set_stemmer(xapian.Stem("english"))
    qp.set_stemming_strategy(xapian.QueryParser.STEM_SOME)
    qp.set_max_expansion(100, xapian.Query.WILDCARD_LIMIT_ERROR)
    for name, prefixes in PROBABILISTIC.items():
        for p in prefixes:
            qp.add_prefix(name, p)
    for name, prefixes in BOOLEAN.items():
        for p in prefixes:
            qp.add_boolean_prefix(name, p)
    qp._keep = [xapian.NumberRangeProcessor(slot, f"{name}:") for name, slot in RANGES.items()]
    for rp in qp._keep:
        qp.add_rangeprocessor(rp)
    return qp


def parse(db: xapian.Database, text: str) -> xapian.Query:
    _check_prefixes(text)
    try:
        return query_parser(db).parse_query(text, FLAGS)
    except xapian.QueryParserError as e:
        raise QueryError(f"cannot parse query {text!r}: {e}") from None
    except xapian.WildcardError as e:
        raise QueryError(f"wildcard matches too many terms in {text!r}: {e}") from None


def _check_prefixes(text: str) -> None:
    """Xapian reads an unknown `foo:bar` as plain words; lei users mean a field, so say so."""
    outside_quotes = re.sub(r'"[^"]*"', " ", text)
    for m in _PREFIXED.finditer(outside_quotes):
        if m.group(1) not in KNOWN_PREFIXES:
            raise QueryError(f"unknown search prefix {m.group(1)}: (known: "
                             f"{' '.join(sorted(p + ':' for p in KNOWN_PREFIXES if p))})")
    depth = 0
    for c in outside_quotes:
        depth += (c == "(") - (c == ")")
        if depth < 0:
            break
    if depth:
        raise QueryError(f"unbalanced parenthesis in query {text!r}")
    if outside_quotes.count('"') % 2 or text.count('"') % 2:
        raise QueryError(f"unbalanced double quote in query {text!r}")


# -- argv -> query string (§9.1) -------------------------------------------------

def from_argv(argv: list[str], git_dir: Path) -> str:
    """Join argv the way lei q does. Dates are read by git in the store's GIT_DIR (ALL.git)."""
    out = []
    for arg in argv:
        m = _DATE_ARG.search(arg)
        if m:
            out.append(arg[:m.start()] + rewrite_range(m.group(1), m.group(2), git_dir))
        elif re.search(r"\s", arg):
            p = _PREFIXED.search(arg)
            out.append(arg[:p.end()] + f'"{arg[p.end():]}"' if p else f'"{arg}"')
        else:
            out.append(arg)
    return " ".join(out)


def rewrite_dates(text: str, git_dir: Path) -> str:
    """Date-range rewriting for --stdin queries, outside quoted phrases."""
    parts = re.split(r'("[^"]*")', text)
    for i in range(0, len(parts), 2):
        parts[i] = re.sub(r"\b(d|rt|dt):(\S+)", lambda m: rewrite_range(m.group(1), m.group(2), git_dir),
                          parts[i])
    return "".join(parts)


# -- date ranges (§9.3) -----------------------------------------------------------

@cache
def approxidate(expr: str, git_dir: Path) -> int:
    """git's approxidate, by asking git itself as lei does, in the local time zone.

    `git rev-parse` needs a repository: like lei, we name the store's ALL.git, so the answer
    does not depend on the directory we run in (outside any repository it would fail).
    git reads any garbage as "now"; its careful parser (expiry dates) tells us it was garbage."""
    from lei_store import git

    if not git.ok(None, "-c", f"lei-store.date={expr}", "config", "--type=expiry-date", "lei-store.date"):
        raise QueryError(f"cannot understand the date {expr!r}")
    r = git.run(git_dir, "rev-parse", f"--since={expr}")
    m = re.match(r"--max-age=(\d+)", r.stdout.decode().strip())
    if r.returncode != 0 or not m:
        raise QueryError(f"cannot understand the date {expr!r}")
    return int(m.group(1))


def _ymd(expr: str) -> str | None:
    if re.fullmatch(r"\d{8}", expr):
        return expr
    m = re.fullmatch(r"(\d{4})-(\d{2})-(\d{2})", expr)
    return "".join(m.groups()) if m else None


def _fmt(epoch: int, pattern: str) -> str:
    return time.strftime(pattern, time.gmtime(epoch))


def _dt_epoch(expr: str, git_dir: Path) -> int:
    if re.fullmatch(r"\d{14}", expr):
        expr = f"{expr[:4]}-{expr[4:6]}-{expr[6:8]} {expr[8:10]}:{expr[10:12]}:{expr[12:]}"
    return approxidate(expr, git_dir)


def rewrite_range(prefix: str, spec: str, git_dir: Path) -> str:
    lo, sep, hi = spec.partition("..")
    ends = [lo, hi] if sep else [lo]
    if prefix == "d" and all(e == "" or _ymd(e) for e in ends):
        vals = [_ymd(e) or "" for e in ends]
        if not sep:
            vals = [vals[0], _fmt(calendar.timegm(time.strptime(vals[0], "%Y%m%d")) + _DAY, "%Y%m%d")]
        return f"d:{vals[0]}..{vals[1]}"
    if prefix == "rt":
        conv = lambda e: "" if e == "" else (e if re.fullmatch(r"\d{5,}", e) else str(approxidate(e, git_dir)))
        vals = [conv(e) for e in ends]
        if not sep:
            vals = [vals[0], str(int(vals[0]) + _DAY)]
        return f"rt:{vals[0]}..{vals[1]}"
    # dt:, and any d: expression that is not a plain date
    epochs: list[int | None] = [None if e == "" else _dt_epoch(e, git_dir) for e in ends]
    if not sep and epochs[0] is not None:
        epochs = [epochs[0], epochs[0] + _DAY]
    vals = ["" if e is None else _fmt(e, "%Y%m%d%H%M%S") for e in epochs]
    return f"dt:{vals[0]}..{vals[1]}"
