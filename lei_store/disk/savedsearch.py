"""lei's saved searches (lei-q(1) --save, lei-up(1)): where they live and what their files say.

One directory per output, `$XDG_DATA_HOME/lei/saved-searches/<basename>-<sha256 of its path>/`,
as lei 1.9 names it, so `lei up` and `lei-store up` take turns on the same search:
- `lei.saved-search`: git-config text. `lei.q` (one value per query word), `lei.q.output`
  (`maildir:/abs` or `mboxrd:/abs`...), the other `lei.q.*` options (threads, dedupe, limit...),
  and per store `external.<store>.maxuid`, the highest docid the last run saw. We add
  `leistore.<store>.modseq` (the change feed's position then) and `.query` (a digest of the
  query and its options: an edited search runs whole again); lei ignores both.
- `lei.saved-search.flock`: held by whoever refreshes the search (lei does too).
- `over.sqlite3`: lei's overview schema holding what was written to the output (xref3 has each
  blob), so a message is written once, even after the user deleted it from the output.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
from pathlib import Path

import msgspec

from lei_store.errors import DamagedStoreError, InputError
from lei_store.paths import saved_searches_dir
from lei_store.sqlite import connect_ro

CONFIG = "lei.saved-search"
LOCK = "lei.saved-search.flock"
OVER = "over.sqlite3"
# lei.q.* keys that are not options of the search itself
_NOT_OPTIONS = {"output"}


class SavedSearch(msgspec.Struct):
    """One saved search, as its lei.saved-search file says."""

    dir: str
    q: list[str]  # the query words, as given on the command line
    output: str  # FORMAT:/absolute/path
    options: dict[str, list[str]]  # the other lei.q.* keys (threads, dedupe, limit, only ...)
    maxuid: dict[str, int]  # store path -> highest docid seen by the last run
    modseq: dict[str, int]  # store path -> the store's feed position at the last run (ours)
    digest: dict[str, str]  # store path -> digest of the query and options of the last run (ours)

    @property
    def fmt(self) -> str:
        return self.output.partition(":")[0]

    @property
    def path(self) -> Path:
        return Path(self.output.partition(":")[2])

    def option(self, key: str, default: str | None = None) -> str | None:
        values = self.options.get(key)
        return values[-1] if values else default

    def query_digest(self) -> str:
        text = "\0".join(self.q) + "\0\0" + repr(sorted(self.options.items()))
        return hashlib.sha256(text.encode()).hexdigest()[:16]


class Listing(msgspec.Struct, omit_defaults=True, kw_only=True):
    """A saved search as `ls-search -f json` shows it, as lei does: its lei.q.* keys, q as a list,
    in lei's (alphabetical) order."""

    dedupe: str | None = None
    exclude: list[str] | None = None
    external: str | None = None
    include: list[str] | None = None
    limit: str | None = None
    local: str | None = None
    only: list[str] | None = None
    output: str
    q: list[str]
    remote: str | None = None
    threads: str | None = None


def listing(search: SavedSearch) -> Listing:
    lists = ("only", "include", "exclude")
    known: dict = {k: (v if k in lists else v[-1]) for k, v in search.options.items()
                   if k in Listing.__struct_fields__}
    return msgspec.convert(dict(known, output=search.output, q=search.q), Listing)


def dir_for(path: Path, env=os.environ) -> Path:
    """The saved-search directory of an output path (absolute, no trailing slash), as lei names it."""
    text = str(path).rstrip("/") or "/"
    digest = hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()
    return saved_searches_dir(env) / f"{Path(text).name}-{digest}"


def _quote(value: str) -> str:
    """A git-config value: as it is when git reads it back so (lei writes them bare), else
    quoted with backslash, quote, newline and tab escaped."""
    if "\0" in value:
        raise InputError("a saved search cannot hold a NUL character")
    if value and value == value.strip() and not any(c in value for c in '"\\;#\n\t'):
        return value
    esc = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\t", "\\t")
    return f'"{esc}"'


def _subsection(name: str) -> str:
    return name.replace("\\", "\\\\").replace('"', '\\"')


def render(search: SavedSearch) -> str:
    """The lei.saved-search text for a search (what lei writes, comments included)."""
    lines = [f"; to refresh with new results, run: lei up {search.path}",
             "; `maxuid' and `lastresult' lines are maintained by \"lei up\" for optimization",
             "[lei]"]
    lines += [f"\tq = {_quote(word)}" for word in search.q]
    lines.append('[lei "q"]')
    for key, values in search.options.items():
        lines += [f"\t{key} = {_quote(v)}" for v in values]
    lines.append(f"\toutput = {_quote(search.output)}")
    for store, uid in search.maxuid.items():
        lines += [f'[external "{_subsection(store)}"]', f"\tmaxuid = {uid}"]
    for store in sorted(set(search.modseq) | set(search.digest)):
        lines.append(f'[leistore "{_subsection(store)}"]')
        if store in search.modseq:
            lines.append(f"\tmodseq = {search.modseq[store]}")
        if store in search.digest:
            lines.append(f"\tquery = {search.digest[store]}")
    return "\n".join(lines) + "\n"


def write(search: SavedSearch) -> None:
    """Write the file whole: a temporary file renamed over the old one (a reader sees one or the other)."""
    d = Path(search.dir)
    d.mkdir(parents=True, exist_ok=True)
    tmp = d / f".{CONFIG}.{os.getpid()}.tmp"
    tmp.write_text(render(search), encoding="utf-8", errors="surrogateescape")
    os.replace(tmp, d / CONFIG)


def load(d: Path) -> SavedSearch:
    """Read a saved search; a file git cannot parse, or one without a query or output, is an error."""
    import pygit2

    file = d / CONFIG
    try:
        cfg = pygit2.Config(str(file))
        entries = [(e.name, e.value) for e in cfg]
    except (pygit2.GitError, OSError) as e:
        raise InputError(f"{file}: not a saved search git can read ({str(e).splitlines()[0]})") from None
    q: list[str] = []
    options: dict[str, list[str]] = {}
    output = None
    maxuid: dict[str, int] = {}
    modseq: dict[str, int] = {}
    digest: dict[str, str] = {}
    for name, raw in entries:
        value = raw or ""
        section, _, rest = name.partition(".")
        sub, _, key = rest.rpartition(".")
        if name == "lei.q":
            q.append(value)
        elif section == "lei" and sub == "q" and key == "output":
            output = value
        elif section == "lei" and sub == "q":
            options.setdefault(key, []).append(value)
        elif section == "external" and key == "maxuid" and value.isdigit():
            maxuid[sub] = int(value)
        elif section == "leistore" and key == "modseq" and value.isdigit():
            modseq[sub] = int(value)
        elif section == "leistore" and key == "query" and value:
            digest[sub] = value
    if not q or not output or ":" not in output:
        raise InputError(f"{file}: not a saved search (it has no lei.q or no lei.q.output)")
    return SavedSearch(str(d), q, output, options, maxuid, modseq, digest)


def all_searches(env=os.environ, problems: list[str] | None = None) -> list[SavedSearch]:
    """Every saved search, by output; one that cannot be read is left out and, with PROBLEMS,
    said there (one line each)."""
    top = saved_searches_dir(env)
    found = []
    for entry in sorted(os.listdir(top)) if top.is_dir() else ():
        if not (top / entry / CONFIG).exists():
            continue
        try:
            found.append(load(top / entry))
        except InputError as e:
            if problems is not None:
                problems.append(str(e))
    return sorted(found, key=lambda s: s.output)


def damaged(d: Path, e: Exception) -> DamagedStoreError:
    return DamagedStoreError(f"{d / OVER}: the saved search's record of what it wrote is damaged ({e}); "
                             "`lei-store forget-search OUTPUT` and save it again with `q -o`")


def written_blobs(d: Path) -> set[bytes]:
    """Blobs already written to the output (by us or by lei): xref3 of the search's over.sqlite3."""
    if not (d / OVER).exists() or not (d / OVER).stat().st_size:
        return set()
    try:
        db = connect_ro(d / OVER)
        try:
            return {bytes(o) for (o,) in db.execute("SELECT oidbin FROM xref3")}
        finally:
            db.close()
    except sqlite3.DatabaseError as e:
        raise damaged(d, e) from None
