"""A read-only, cross-layer consistency check of a store (lei-store-format(5) §2, §5, §6, §7).

Each layer is checked on its own (git trees, SQLite integrity, counters) and
against the others: the blobs git says are live (committed under `m` and not
later under `d`) must be exactly the blobs xref3 indexes; every real over row
needs its Xapian document, in the right shard, with the same thread id; and
every keyword/label state in journal.sqlite3 must be what Xapian holds, since
that is what a replay after a rebuild would restore.

Nothing is written and no lock is taken (readers never lock), so a writer
running at the same time can cause passing findings: check an idle store.
A layer that cannot be read completely is reported once and the cross-checks
that depend on it are skipped, rather than drowning the report in echoes.
"""

from __future__ import annotations

import sqlite3
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import msgspec
import xapian

from lei_store import git
from lei_store.disk import gitlog
from lei_store.disk.journal import Journal
from lei_store.disk.over import Over, decode_ddd
from lei_store.disk.shards import BYTES, SLOT_NAMES, THREADID, TS, UID, open_checked, volatile_all
from lei_store.errors import DamagedStoreError, LeiStoreError
from lei_store.ops.rejournal import journal_lost
from lei_store.paths import Layout, existing_store
from lei_store.sqlite import connect_ro
from lei_store.write import epochs


class Problem(msgspec.Struct, omit_defaults=True):
    """One finding. `kind` is a stable machine name; `oid` is the blob (or commit) concerned."""

    kind: str
    detail: str
    severity: str = "error"  # "error" or "warning"; only errors make a report not ok
    num: int | None = None
    oid: str | None = None
    where: str | None = None


class FsckReport(msgspec.Struct):
    """What fsck found: ok (no error), the problems (at most `limit` of each kind) and counts."""
    ok: bool
    problems: list[Problem]
    counts: dict[str, int]


# -- collecting findings -------------------------------------------------------


class _Findings:
    """Problems and counts; beyond `limit` problems of one kind only the count is kept."""

    def __init__(self, limit: int):
        self.limit = limit
        self.problems: list[Problem] = []
        self.counts: dict[str, int] = {"errors": 0, "warnings": 0, "omitted": 0}
        self._per_kind: dict[str, int] = {}

    def add(self, severity: str, kind: str, detail: str, **about) -> None:
        self.counts[severity + "s"] += 1
        seen = self._per_kind[kind] = self._per_kind.get(kind, 0) + 1
        if seen > self.limit:
            self.counts["omitted"] += 1
            return
        self.problems.append(Problem(kind, " ".join(detail.split()), severity, **about))

    def error(self, kind: str, detail: str, **about) -> None:
        self.add("error", kind, detail, **about)

    def warn(self, kind: str, detail: str, **about) -> None:
        self.add("warning", kind, detail, **about)

    def count(self, name: str, n: int = 1) -> None:
        self.counts[name] = self.counts.get(name, 0) + n


@dataclass
class _Git:
    """What the epochs say: live blobs and blobs whose last commit was a removal."""

    live: set[bytes] = field(default_factory=set)
    removed: set[bytes] = field(default_factory=set)
    complete: bool = True  # False when an epoch could not be walked


@dataclass
class _Over:
    """What over.sqlite3 says, reduced to what the other layers are checked against."""

    real: dict[int, tuple[int, int, int, str]] = field(default_factory=dict)  # num -> (tid, ts, bytes, blob)
    external: set[int] = field(default_factory=set)  # num > 0 with bytes = 0 (§10.8)
    tids: set[int] = field(default_factory=set)  # every thread id in use, ghosts' included
    docs_of_blob: dict[bytes, list[int]] = field(default_factory=dict)  # xref3
    blobs_of_doc: dict[int, set[bytes]] = field(default_factory=dict)
    key_of_doc: dict[int, bytes] = field(default_factory=dict)  # a message's first blob: the journal's key
    complete: bool = True


@dataclass
class _Xapian:
    present: set[int] = field(default_factory=set)
    volatile: dict[int, tuple[frozenset, frozenset]] = field(default_factory=dict)  # num -> (K, L)
    complete: bool = True


# -- git (§2) -------------------------------------------------------------------


def _git(repo: Path, *args: str):
    return git.run(repo, *args)


def _check_alternates(layout: Layout, f: _Findings) -> None:
    """ALL.git must list every epoch, newest first (§2.6): readers find blobs only through it."""
    path = layout.all_git / "objects" / "info" / "alternates"
    want = layout.alternates()
    try:
        have = path.read_text()
    except (OSError, UnicodeDecodeError):
        have = None
    if have != want:
        shown = "missing" if have is None else repr(have)
        f.error("bad alternates", f"ALL.git alternates is {shown}, expected {want!r}",
                where="ALL.git/objects/info/alternates")


def _branches(repo: Path, where: str, f: _Findings) -> list[str] | None:
    """The branches to walk, HEAD's first; None when the epoch is not a usable repository."""
    r = _git(repo, "rev-parse", "--git-dir")
    if r.returncode != 0 or not (repo / "objects").is_dir():
        f.error("bad epoch", f"not a git repository: {git.first_lines(r.stderr) or 'objects/ missing'}", where=where)
        return None
    head = _git(repo, "symbolic-ref", "-q", "HEAD").stdout.decode().strip()
    names = _git(repo, "for-each-ref", "--format=%(refname)", "refs/heads").stdout.decode().split()
    if not names:
        f.warn("empty epoch", f"no branch (HEAD names {head or 'nothing'})", where=where)
        return []
    if head and head not in names:
        f.warn("head branch missing", f"HEAD names {head} but the epoch has only {', '.join(names)}", where=where)
    if head not in names:
        head = f"refs/heads/{epochs.default_branch()}"
    if len(names) > 1:
        f.warn("several branches", f"branches {', '.join(names)}; lei writes only one", where=where)
    return sorted(names, key=lambda n: n != head)


def _valid_ref(repo: Path, ref: str, where: str, f: _Findings) -> bool:
    r = _git(repo, "rev-parse", "-q", "--verify", f"{ref}^{{commit}}")
    if r.returncode == 0:
        return True
    target = _git(repo, "rev-parse", "-q", "--verify", ref).stdout.decode().strip()
    f.error("bad ref", f"{ref} points at {target or 'nothing'}, which is not a commit here",
            oid=target or None, where=where)
    return False


def _commits(repo: Path, ref: str) -> Iterator[tuple[str, list[str], dict[bytes, tuple[bytes, str]]]]:
    """(commit, parents, tree) oldest first; tree = {path: (mode, oid)}, rebuilt from the raw
    changes (exact for the linear history lei writes)."""
    tree: dict[bytes, tuple[bytes, str]] = {}
    for c in gitlog.log(repo, ref):
        for ch in c.changes:
            if ch.status == b"D":
                tree.pop(ch.path, None)
            else:
                tree[ch.path] = (ch.mode, ch.oid)
        yield c.commit, c.parents, tree


def _walk(repo: Path, ref: str, where: str, state: _Git, f: _Findings) -> None:
    """Apply one branch's m/d commits to the live set, in commit order (§2.2, §2.4)."""
    try:
        for commit, parents, tree in _commits(repo, ref):
            f.count("commits")
            if len(parents) > 1:
                f.error("bad commit", f"merge commit {commit}: lei history is linear", oid=commit, where=where)
            entries = list(tree.items())
            if len(entries) != 1 or entries[0][0] not in (b"m", b"d") or entries[0][1][0] != b"100644":
                shown = " ".join(f"{m.decode()}:{p.decode('utf-8', 'replace')}" for p, (m, _) in entries)
                f.error("bad tree", f"commit {commit} has tree [{shown}], not one 100644 entry m or d",
                        oid=commit, where=where)
                continue
            path, (_mode, oid) = entries[0]
            oidbin = bytes.fromhex(oid)
            if path == b"m":
                state.live.add(oidbin)
                state.removed.discard(oidbin)
            else:
                state.live.discard(oidbin)
                state.removed.add(oidbin)
    except LeiStoreError as e:
        f.error("git error", f"git log {ref}: {e}", where=where)
        state.complete = False


def _fsck(repo: Path, where: str, f: _Findings, quick: bool) -> None:
    """git's own check: every object read and hashed, or with QUICK only that reachable ones exist."""
    found = epochs.damage(repo, quick=quick)
    if found:
        f.error("git fsck", found, where=where)


def _check_git(layout: Layout, f: _Findings, quick: bool) -> _Git:
    state = _Git()
    nums = layout.epoch_numbers()
    f.count("epochs", len(nums))
    _check_alternates(layout, f)
    for n in nums:  # epoch order, then commit order: a later d undoes an earlier m
        repo, where = layout.epoch(n), f"local/{n}.git"
        branches = _branches(repo, where, f)
        if branches is None:
            state.complete = False
            continue
        for ref in branches:
            if _valid_ref(repo, ref, where, f):
                _walk(repo, ref, where, state, f)
            else:
                state.complete = False
        _fsck(repo, where, f, quick)
    f.count("live_blobs", len(state.live))
    return state


# -- SQLite helpers ---------------------------------------------------------------


def _connect_ro(path: Path, f: _Findings) -> sqlite3.Connection | None:
    """A read-only connection, or None (reported) when the file cannot be opened."""
    try:
        db = connect_ro(path)
        db.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchall()
    except sqlite3.Error as e:
        f.error("unreadable database", f"{path.name}: {e}", where=path.name)
        return None
    return db


def _intact(db: sqlite3.Connection, where: str, f: _Findings) -> bool:
    try:
        result = [r[0] for r in db.execute("PRAGMA quick_check")]
    except sqlite3.DatabaseError as e:
        result = [str(e)]
    if result == ["ok"]:
        return True
    f.error("sqlite corrupt", f"quick_check: {'; '.join(map(str, result[:3]))}", where=where)
    return False


# -- over.sqlite3 (§5) ----------------------------------------------------------------


def _read_over_rows(over: Over, state: _Over, f: _Findings) -> tuple[int, int, int]:
    """Load real and external rows; returns (max num, min ghost num, max tid)."""
    max_num = min_ghost = max_tid = 0
    for num, tid, ts, ddd in over.raw_rows():
        max_tid = max(max_tid, tid or 0)
        state.tids.add(tid)
        if num < 0:
            f.count("ghosts")
            min_ghost = min(min_ghost, num)
            continue
        max_num = max(max_num, num)
        try:
            if ddd is None:
                raise ValueError("no ddd")
            fields = decode_ddd(ddd)
            nbytes, blob = int(fields[7] or 0), fields[5]
            if nbytes > 0:
                bytes.fromhex(blob)  # a real row must name its blob
        except (zlib.error, TypeError, ValueError) as e:
            f.error("bad over row", f"over row {num}: unreadable ddd ({e})", num=num, where="over")
            continue
        if nbytes > 0:
            state.real[num] = (tid, ts, nbytes, blob)
        else:
            state.external.add(num)
    return max_num, min_ghost, max_tid


def _check_counters(over: Over, max_num: int, min_ghost: int, max_tid: int, f: _Findings) -> None:
    """Counters hand out numbers; one behind the rows would hand out a number twice."""
    have = over.counters()
    for key, ok, need in (("eidx_docid", lambda v: v >= max_num, f">= {max_num}"),
                          ("thread", lambda v: v >= max_tid, f">= {max_tid}"),
                          ("ghost", lambda v: v <= min_ghost, f"<= {min_ghost}")):
        val = have.get(key)
        if val is None or not ok(val):
            f.error("counter behind", f"counter {key} is {val}, must be {need}", where="over.counter")


def _read_xref3(over: Over, state: _Over, f: _Findings) -> None:
    for docid, oid, kind in over.raw_xref3():
        f.count("xref3_rows")
        if kind != "blob" or not isinstance(oid, bytes) or len(oid) != 20:
            f.error("bad xref3 oid", f"xref3 row of docid {docid} has a {kind} oidbin, not 20 raw bytes",
                    num=docid, where="xref3")
            continue
        oid = bytes(oid)
        if docid not in state.real and docid not in state.external:
            f.error("dangling xref3", f"xref3 names docid {docid}, which has no over row",
                    num=docid, oid=oid.hex(), where="xref3")
            continue
        state.docs_of_blob.setdefault(oid, []).append(docid)
        state.blobs_of_doc.setdefault(docid, set()).add(oid)
        state.key_of_doc.setdefault(docid, oid)


def _check_over(layout: Layout, f: _Findings) -> _Over:
    state = _Over()
    if not layout.over.is_file():
        f.error("sqlite corrupt", "over.sqlite3 is missing", where="over.sqlite3")
        state.complete = False
        return state
    db = _connect_ro(layout.over, f)
    if db is None:
        state.complete = False
        return state
    db.close()  # it opens: read it through the reader class
    over = Over(layout.over)
    try:
        state.complete = _intact(over.db, "over.sqlite3", f)
        max_num, min_ghost, max_tid = _read_over_rows(over, state, f)
        _check_counters(over, max_num, min_ghost, max_tid, f)
        _read_xref3(over, state, f)
    except sqlite3.DatabaseError as e:
        f.error("sqlite corrupt", f"over.sqlite3: {e}", where="over.sqlite3")
        state.complete = False
    finally:
        over.close()
    for num, (_tid, _ts, _bytes, blob) in state.real.items():
        if bytes.fromhex(blob) not in state.blobs_of_doc.get(num, ()):
            f.error("over blob not in xref3", f"over row {num} names blob {blob}, which xref3 does not give it",
                    num=num, oid=blob, where="xref3")
    f.count("messages", len(state.real))
    f.count("external_rows", len(state.external))
    return state


def _check_git_vs_xref3(git: _Git, over: _Over, synced: set[bytes], f: _Findings) -> None:
    """Live git blobs and indexed blobs must be the same set (§3.1, §10.5)."""
    if over.complete:
        for oid in git.live - over.docs_of_blob.keys():
            f.error("unindexed blob", "blob committed under m in git has no xref3 row (re-import indexes it)",
                    oid=oid.hex(), where="git")
    if not git.complete:
        return
    for oid, docids in over.docs_of_blob.items():
        real = [d for d in docids if d in over.real]
        if not real or oid in git.live:
            continue  # external-only rows name blobs of other inboxes
        if oid in git.removed:
            f.error("removed blob still indexed", "git has a d (removal) commit for this indexed blob",
                    num=real[0], oid=oid.hex(), where="xref3")
        elif oid in synced:
            f.warn("blob not in git", "indexed blob is only in a synced folder (lei index)",
                   num=real[0], oid=oid.hex(), where="xref3")
        else:
            f.error("missing blob", "indexed blob was never committed to git", num=real[0], oid=oid.hex(),
                    where="xref3")


# -- Xapian (§6) --------------------------------------------------------------------


def _check_values(db: xapian.Database, nums: list[int], over: _Over, where: str, f: _Findings) -> None:
    """Values lei sorts, ranges and collapses on must match the over row (§6.2)."""
    for slot in (TS, BYTES, UID, THREADID):
        values = {v.docid: xapian.sortable_unserialise(v.value) for v in db.valuestream(slot)}
        for num in nums:
            tid, ts, nbytes, blob = over.real[num]
            want = {TS: ts, BYTES: nbytes, UID: num, THREADID: tid}[slot]
            have = values.get(num)
            if have == want:
                continue
            shown = "no value" if have is None else f"{have:g}"
            detail = f"document {num} has {SLOT_NAMES[slot]} (slot {slot}) {shown}, over says {want}"
            if slot == THREADID and have is not None and int(have) not in over.tids:
                # lei merges threads in over.sqlite3 only, leaving the merged-away id on older documents
                f.warn("stale thread id", detail + " (a merged thread; lei leaves these too)",
                       num=num, oid=blob, where=where)
            else:
                f.error("thread id mismatch" if slot == THREADID else "value mismatch", detail,
                        num=num, oid=blob, where=where)


def _check_shard(i: int, n: int, layout: Layout, over: _Over, state: _Xapian, f: _Findings) -> None:
    where = f"ei15/{i}"
    db = open_checked(layout.shard(i))
    if i == 0 and db.get_metadata("has_threadid") != b"1":
        f.error("missing has_threadid", "shard 0 lacks metadata has_threadid=1 (lei then ignores thread ids)",
                where=where)
    here = []
    for p in db.postlist(""):
        num = p.docid
        f.count("documents")
        if num % n != i:
            f.error("misplaced document", f"document {num} is in shard {i}, belongs in {num % n}",
                    num=num, where=where)
        elif over.complete and num not in over.real and num not in over.external:
            f.error("orphan document", f"document {num} has no over row", num=num, where=where)
        else:
            state.present.add(num)
            if num in over.real:
                here.append(num)
    _check_values(db, here, over, where, f)
    state.volatile.update(volatile_all(db))  # a single shard: its docids are message numbers
    db.close()


def _check_xapian(layout: Layout, over: _Over, f: _Findings) -> _Xapian:
    state = _Xapian()
    n = layout.shard_count()
    f.count("shards", n)
    if n == 0:
        f.error("bad shard", "no Xapian shards in ei15/", where="ei15")
        state.complete = False
        return state
    for i in range(n):
        try:
            _check_shard(i, n, layout, over, state, f)
        except (xapian.Error, DamagedStoreError) as e:
            f.error("bad shard", f"shard {i}: {e.get_msg() if isinstance(e, xapian.Error) else e}",
                    where=f"ei15/{i}")
            state.complete = False
    if state.complete:
        for num in sorted(over.real.keys() - state.present):
            f.error("missing document", f"message {num} has no document in shard {num % n}",
                    num=num, oid=over.real[num][3], where=f"ei15/{num % n}")
    return state


# -- mail_sync.sqlite3 (§7) -----------------------------------------------------------------


_BLOB_COLUMNS = (("folders", "loc"), ("blob2name", "name"), ("blob2name", "oidbin"), ("blob2num", "oidbin"))


def _check_sync_types(db: sqlite3.Connection, f: _Findings) -> None:
    """lei binds these as BLOBs; a TEXT value is invisible to it (§7.1)."""
    for table, col in _BLOB_COLUMNS:
        bad = db.execute(f"SELECT COUNT(*) FROM {table} WHERE typeof({col}) != 'blob'").fetchone()[0]
        if bad:
            f.error("sync value not blob", f"{bad} {table}.{col} values are not BLOBs (lei cannot see them)",
                    where=f"mail_sync.{table}")


def _maildir_dir(loc: str) -> Path | None:
    return Path(loc[len("maildir:"):]) if loc.startswith("maildir:") else None


def _check_sync_rows(db: sqlite3.Connection, over: _Over, synced: set[bytes], f: _Findings) -> None:
    folders = {fid: bytes(loc).decode("utf-8", "surrogateescape") if isinstance(loc, bytes) else str(loc)
               for fid, loc in db.execute("SELECT fid, loc FROM folders")}
    f.count("sync_folders", len(folders))
    missing_dirs = set()
    rows = db.execute("SELECT oidbin, fid, name, 1 FROM blob2name UNION ALL SELECT oidbin, fid, uid, 0 FROM blob2num")
    for oid, fid, name, is_file in rows:
        f.count("sync_rows")
        oid = bytes(oid) if isinstance(oid, bytes) else str(oid).encode()
        loc = folders.get(fid)
        shown = name.decode("utf-8", "surrogateescape") if isinstance(name, bytes) else str(name)
        where = f"{loc or f'fid {fid}'} {shown}"
        if loc is None:
            f.warn("sync row without folder", f"mail_sync row for folder id {fid}, which is not in folders",
                   oid=oid.hex(), where=where)
            continue
        if is_file:
            synced.add(oid)
        if over.complete and oid not in over.docs_of_blob:
            f.warn("sync row for unindexed blob", "mail_sync names a blob no message holds (e.g. after rm)",
                   oid=oid.hex(), where=where)
        folder = _maildir_dir(loc) if is_file else None
        if folder is None:
            continue
        if not folder.is_dir():
            if folder not in missing_dirs:
                missing_dirs.add(folder)
                f.warn("sync folder missing", f"synced Maildir {folder} does not exist", where=loc)
        elif not ((folder / "cur" / shown).exists() or (folder / "new" / shown).exists()):
            f.warn("sync file missing", "synced Maildir file is in neither cur/ nor new/", oid=oid.hex(), where=where)


def _check_mail_sync(layout: Layout, over: _Over, f: _Findings) -> set[bytes]:
    """Returns the blobs mail_sync knows a Maildir file for."""
    synced: set[bytes] = set()
    if not layout.mail_sync.is_file():
        return synced
    db = _connect_ro(layout.mail_sync, f)
    if db is None:
        return synced
    try:
        if _intact(db, "mail_sync.sqlite3", f):
            _check_sync_types(db, f)
            _check_sync_rows(db, over, synced, f)
    except sqlite3.DatabaseError as e:
        f.error("sqlite corrupt", f"mail_sync.sqlite3: {e}", where="mail_sync.sqlite3")
    finally:
        db.close()
    return synced


# -- journal.sqlite3 --------------------------------------------------------------------


def _journaled_state(layout: Layout, over: _Over, f: _Findings) -> dict[int, tuple[int, str, frozenset, frozenset]]:
    """num -> (seq, oid, kw, labels) that a replay would set, emulating Writer.replay_journal."""
    want: dict[int, tuple[int, str, frozenset, frozenset]] = {}
    if journal_lost(layout):
        f.error("journal missing", "journal.sqlite3 is missing or empty, though lei-store has written this store: "
                "its keywords and labels are journaled nowhere and a reindex would lose them "
                "(`lei-store fsck --repair` rebuilds it from the index)", where="journal")
        return want
    if not layout.journal.is_file():
        return want
    try:
        journal = Journal(layout.journal, readonly=True)
    except sqlite3.Error as e:
        f.error("unreadable database", f"journal.sqlite3: {e}", where="journal.sqlite3")
        return want
    try:
        if not _intact(journal.db, "journal.sqlite3", f):
            return want
        for entry in journal.latest():
            f.count("journal_entries")
            if entry.op != "set":
                continue
            for num in over.docs_of_blob.get(entry.oidbin, ()):
                if num in over.real and (num not in want or want[num][0] < entry.seq):
                    want[num] = (entry.seq, entry.oidbin.hex(), frozenset(entry.kw), frozenset(entry.labels))
    except sqlite3.DatabaseError as e:
        f.error("sqlite corrupt", f"journal.sqlite3: {e}", where="journal.sqlite3")
    finally:
        journal.db.close()
    return want


def _fmt(kw: frozenset, labels: frozenset) -> str:
    return f"kw=[{','.join(sorted(kw))}] L=[{','.join(sorted(labels))}]"


def _check_journal(layout: Layout, over: _Over, xap: _Xapian, f: _Findings) -> None:
    """Xapian's keywords and labels must be what a journal replay would restore."""
    if not over.complete:
        return
    want = _journaled_state(layout, over, f)
    empty: tuple[frozenset[str], frozenset[str]] = (frozenset(), frozenset())
    for num, (_seq, oid, kw, labels) in sorted(want.items()):
        if num not in xap.present:
            continue  # reported as a missing document
        have = xap.volatile.get(num, empty)
        if have != (kw, labels):
            f.error("journal mismatch", f"document {num} has {_fmt(*have)}, the journal says {_fmt(kw, labels)}",
                    num=num, oid=oid, where="journal")
    for num in sorted(xap.volatile.keys() - want.keys()):
        if num in over.real or num in over.external:
            f.warn("keywords not journaled", f"document {num} has {_fmt(*xap.volatile[num])} "
                   "that no journal entry records (a rebuild would lose them)", num=num, where="journal")


# -- entry points ----------------------------------------------------------------------


def check(root: Path, *, limit: int = 1000, quick: bool = False) -> FsckReport:
    """Check a store without changing it. At most `limit` problems of one kind are listed
    (the rest are counted in counts["omitted"]); `ok` is False when there is any error.
    QUICK skips reading every git object (git fsck --connectivity-only)."""
    layout = existing_store(Path(root))
    f = _Findings(limit)
    git = _check_git(layout, f, quick)
    over = _check_over(layout, f)
    synced = _check_mail_sync(layout, over, f)
    _check_git_vs_xref3(git, over, synced, f)
    xap = _check_xapian(layout, over, f)
    _check_journal(layout, over, xap, f)
    if f.counts["errors"] == 0:  # the feed is checked against a sound index (else only echoes)
        from lei_store.ops.fsckfeed import check_feed

        check_feed(layout, over, xap, git.live, f)
    return FsckReport(ok=f.counts["errors"] == 0, problems=f.problems, counts=f.counts)


def format_report(report: FsckReport, *, verbose: bool = False) -> str:
    """One line per error (and per warning when verbose, else one per warning kind), then a summary."""
    lines = []
    quiet_kinds: dict[str, int] = {}
    for p in report.problems:
        if p.severity == "warning" and not verbose:
            quiet_kinds[p.kind] = quiet_kinds.get(p.kind, 0) + 1
            continue
        about = " ".join(f"{k}={v}" for k, v in (("num", p.num), ("oid", p.oid), ("where", p.where)) if v is not None)
        lines.append(f"{p.severity}: {p.kind}: {p.detail}" + (f" [{about}]" if about else ""))
    lines += [f"warning: {kind}: {n} (-v lists them)" for kind, n in sorted(quiet_kinds.items())]
    c = report.counts
    omitted = f", {c['omitted']} not listed" if c.get("omitted") else ""
    lines.append(f"{'ok' if report.ok else 'FAILED'}: {c.get('errors', 0)} errors, {c.get('warnings', 0)} warnings"
                 f"{omitted} ({c.get('messages', 0)} messages, {c.get('live_blobs', 0)} live blobs, "
                 f"{c.get('commits', 0)} commits in {c.get('epochs', 0)} epochs, "
                 f"{c.get('documents', 0)} documents in {c.get('shards', 0)} shards)")
    return "\n".join(lines)
