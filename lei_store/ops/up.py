"""Saved searches: `q -o` saving, `up`, `forget-search` (lei-q(1), lei-up(1), lei-forget-search(1)).

A refresh (`up`) of a Maildir output does three things, in this order, holding the search's
flock (two refreshes of one output never interleave; lei takes the same lock):
1. the reader's changes come in: the output is a synced Maildir (mail_sync records every file
   written), so a file the user renamed gives its message the new flags as keywords, and one
   deleted or trashed (`T`) is forgotten; this is `import` of that Maildir limited to the files
   it knows (no file is read: what the reader saved there is not imported, as with lei);
2. the store's changes go out: files of messages whose keywords changed in the store since the
   last refresh (the change feed, from the modseq kept in the saved search) are renamed to match;
   without a usable modseq every file is compared;
3. new results: the query runs only over messages with a docid above the last refresh's
   (`uid:N..`, lei's maxuid), unless the search was edited; messages written before (by lei or
   by us: the search's over.sqlite3) are never written again, so a deleted one stays deleted.
Step 1 before step 2 is what makes the two directions agree: a flag the reader changed is in
the store before the store's changes are compared with the files.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from pathlib import Path
from typing import Callable

import msgspec

from lei_store.disk import savedsearch
from lei_store.disk.feed import ResyncNeeded, changes
from lei_store.disk.journal import Journal
from lei_store.disk.mailsync import MailSync, maildir_loc
from lei_store.disk.over import encode_ddd
from lei_store.disk.savedsearch import SavedSearch
from lei_store.errors import InputError
from lei_store.locks import locked
from lei_store.mail.message import subject_path
from lei_store.paths import Layout, user_abspath
from lei_store.read import output, query
from lei_store.read.search import Hit, Reader

# lei.q.* options a saved search keeps (lei's names); sort, offset and augment are not kept
KEPT_OPTIONS = ("threads", "dedupe", "limit", "only", "include", "exclude")
LOCK_SECONDS = 10.0


class UpStats(msgspec.Struct):
    """What one saved search's refresh did (`up --json` prints one per search)."""

    output: str
    matches: int = 0  # messages the search found (only new ones on an incremental run)
    written: int = 0  # messages written to the output
    from_reader: int = 0  # messages whose keywords changed because the reader renamed their file
    gone: int = 0  # files the reader deleted or trashed (never written again)
    to_reader: int = 0  # files renamed to show keywords changed in the store
    whole: bool = False  # the whole search ran (first run, edited search, no docid mark)
    seconds: float = 0.0


def output_of(spec: str) -> str:
    """`-o DIR`, `maildir:DIR`, `mboxrd:FILE`... as the saved search records it: FORMAT:/abs/path."""
    fmt, path = output.parse_output(spec)
    text = str(user_abspath(path)).rstrip("/") or "/"
    return f"{fmt}:{text}"


def find(spec: str) -> SavedSearch:
    """The saved search of an output, named as on the command line (DIR, maildir:DIR, FILE...)."""
    d = savedsearch.dir_for(Path(output_of(spec).partition(":")[2]))
    if not (d / savedsearch.CONFIG).exists():
        raise InputError(f"{spec}: no saved search writes there (see `lei-store ls-search`)")
    return savedsearch.load(d)


def new_search(terms: list[str], spec: str, options: dict[str, list[str]]) -> SavedSearch:
    out = output_of(spec)
    d = savedsearch.dir_for(Path(out.partition(":")[2]))
    # what lei writes for a search of the local store and its externals
    kept = {"external": ["1"], "local": ["1"], "remote": ["1"]}
    kept.update({k: v for k, v in options.items() if k in KEPT_OPTIONS and v})
    return SavedSearch(str(d), list(terms), out, kept, {}, {}, {})


# -- q -o: run, write, save -------------------------------------------------------

def run_and_save(layout: Layout, search: SavedSearch, run_search: Callable[[], list[Hit]], read_blob,
                 augment: bool, *, save: bool = True, import_before: bool = True) -> UpStats:
    """`q -o`: the reader's flags in the output come in first (as lei's --import-before), then
    the search runs and its hits are written and, with SAVE, the search recorded for `up`: the
    output replaced (unless AUGMENT: then only messages not in it yet are added), then the
    search's over.sqlite3 and mail_sync say what it holds."""
    stats = UpStats(search.output, whole=True)
    if save:
        _check_nameable(search)
    with _search_lock(search) if save else contextlib.nullcontext():
        if import_before and search.fmt == "maildir" and search.path.is_dir():
            with Refresher(layout) as refresher:
                refresher.from_reader(search, stats)
        hits = run_search()
        stats.matches = len(hits)
        if augment:
            present = _files_present(search)
            hits = [h for h in hits if bytes.fromhex(h.row.blob) not in present]
        if not save:
            stats.written = output.write_mail(hits, search.fmt, search.path, read_blob, augment)
            return stats
        top, modseq = _marks(layout)
        if not augment:
            savedsearch.write(search)  # no marks: a run killed from here on makes the next `up` whole
            _forget_written(layout, search)
        stats.written = _deliver(layout, search, hits, read_blob, augment=augment, first=True)
        _finish(layout, search, top, modseq)
    return stats


def _check_nameable(search: SavedSearch) -> None:
    try:
        search.output.encode("utf-8")
    except UnicodeEncodeError:
        raise InputError(f"{search.path}: a path that is not UTF-8 cannot be named in a saved search "
                         "(lei's files are UTF-8); use --no-save") from None


# -- up ----------------------------------------------------------------------------

class Refresher:
    """Refreshes saved searches of one store; one writer, opened only when a reader changed
    flags, serves every search of an `up --all`."""

    def __init__(self, layout: Layout, lock_timeout: float | None = None):
        self.layout = layout
        self.lock_timeout = lock_timeout
        self._writer_stack: contextlib.ExitStack | None = None
        self._writer = None
        self._reader: Reader | None = None
        self._read_blob = None

    def __enter__(self) -> Refresher:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if self._writer_stack is not None:
            self._writer_stack.__exit__(exc_type, exc, tb)
        if self._reader is not None:
            self._reader.close()

    def reader(self) -> Reader:
        if self._reader is None:
            self._reader = Reader(self.layout.root)
        return self._reader

    def writer(self):
        if self._writer is None:
            from lei_store.write.store import Store

            self._writer_stack = contextlib.ExitStack()
            self._writer = self._writer_stack.enter_context(
                Store.open(self.layout.root).writer(lock_timeout=self.lock_timeout, jobs=1))
        return self._writer

    def read_blob(self, oid):
        if self._read_blob is None:
            from lei_store.disk.blobs import BlobReader

            self._read_blob = BlobReader(self.layout).read
        return self._read_blob(oid)

    def up(self, search: SavedSearch) -> UpStats:
        t0 = time.monotonic()
        stats = UpStats(search.output)
        _check_output(search)
        with _search_lock(search, self.lock_timeout):
            search = savedsearch.load(Path(search.dir))  # as it is now that we hold it
            if search.fmt == "maildir":
                self.from_reader(search, stats)
            top, modseq = _marks(self.layout)
            if search.fmt == "maildir":
                self._to_reader(search, stats)
            self._new_results(search, stats)
            _finish(self.layout, search, top, modseq)
        stats.seconds = round(time.monotonic() - t0, 3)
        return stats

    # 1. the reader's flags and deletions come in
    def from_reader(self, search: SavedSearch, stats: UpStats) -> None:
        """Only for an output mail_sync knows (one this store wrote): any other Maildir's files
        are the user's, not flags of messages we wrote."""
        from lei_store.sources import maildir

        path, loc = search.path, maildir_loc(search.path)
        sync = MailSync(self.layout.mail_sync, self.layout.mail_sync_lock, readonly=True)
        try:
            fid = sync.folder_id(loc, create=False)
            known = sync.names(fid) if fid is not None else {}
        finally:
            sync.db.close()
        if fid is None:
            return
        present = {e.name.encode() for e in maildir.list_entries(path)}
        if present == set(known):
            return  # nothing renamed, deleted or added since the last sync: no writer needed
        from lei_store.ops.imports import Importer, ImportOptions
        from lei_store.sources import Source

        w = self.writer()
        before = w.stats.renamed
        Importer(w, ImportOptions(renames_only=True)).import_source(Source("maildir", path))
        w.flush()
        stats.from_reader += w.stats.renamed - before
        stats.gone += len(set(known) - present - _renamed_from(known, present))

    # 2. the store's keyword changes go out
    def _to_reader(self, search: SavedSearch, stats: UpStats) -> None:
        from lei_store.ops.exportkw import export_maildir_copies

        sync = MailSync(self.layout.mail_sync, self.layout.mail_sync_lock, readonly=True)
        try:  # read-only first: most refreshes have nothing to rename, and take no lock
            fid = sync.folder_id(maildir_loc(search.path), create=False)
            names = sync.names(fid) if fid is not None else {}
        finally:
            sync.db.close()
        changed = self._changed_blobs(search, set(names.values()))
        if fid is None or not changed:
            return
        kw = _keywords_of(self.reader(), changed)
        sync = MailSync(self.layout.mail_sync, self.layout.mail_sync_lock)
        try:
            copies = [c for c in sync.maildir_copies(sorted(changed)) if c.fid == fid]
            sync.begin()
            stats.to_reader += export_maildir_copies(sync, copies, kw.get)
            sync.commit()
        finally:
            sync.close()

    def _changed_blobs(self, search: SavedSearch, blobs: set[bytes]) -> set[bytes]:
        """The output's blobs whose message's keywords may differ from the file: those the feed
        says changed since the last refresh, or all of them without a usable modseq."""
        since = search.modseq.get(str(self.layout.root))
        if since is None or not self.layout.journal.exists():
            return blobs
        journal = Journal(self.layout.journal, readonly=True)
        try:
            keys = {bytes.fromhex(c.blob) for c in changes(journal.db, since) if c.blob and c.kind == "changed"}
        except ResyncNeeded:
            return blobs
        finally:
            journal.close()
        if not keys:
            return set()
        over = self.reader().over
        every = set(keys)
        for key in keys:  # a file may hold another copy of the message than its key blob
            for num in over.docids_of_blob(key):
                every.update(over.blobs_of(num))
        return every & blobs

    # 3. new results
    def _new_results(self, search: SavedSearch, stats: UpStats) -> None:
        root = str(self.layout.root)
        text = _query_text(search, self.layout)
        mark = search.maxuid.get(root)
        stats.whole = mark is None or search.digest.get(root) != search.query_digest()
        if mark is not None and not stats.whole:
            text = f"({text}) AND uid:{mark + 1}.."
        hits = _search(self.reader(), text, search)
        written, present = savedsearch.written_blobs(Path(search.dir)), _files_present(search)
        self._adopt(search, present - written)
        done = written | present
        fresh = [h for h in hits if bytes.fromhex(h.row.blob) not in done]
        fresh = _not_written_before(search, fresh)
        stats.matches = len(hits)
        if fresh:
            stats.written = _deliver(self.layout, search, fresh, self.read_blob, augment=True, first=False)

    def _adopt(self, search: SavedSearch, blobs: set[bytes]) -> None:
        """Record files a killed run wrote but did not record (in the search's over.sqlite3 and
        in mail_sync), so the reader's flags on them count and a message the reader deletes
        later is not written again."""
        hits = [h for oid in sorted(blobs) for h in self.reader().by_blob(oid.hex())[:1]]
        if not hits:
            return
        _record_written(search, hits)
        if search.fmt == "maildir":
            by_blob = {h.row.blob: h for h in hits}
            names = [(by_blob[n[:40]], n) for sub in ("cur", "new") for n in os.listdir(search.path / sub)
                     if n[:40] in by_blob]
            _record_sync(self.layout, search, names)


def _query_text(search: SavedSearch, layout: Layout) -> str:
    """The saved query with relative dates read again now (d:last.week.. moves); a query saved
    from --stdin is one value ending in a newline, read as text rather than as argv words."""
    if len(search.q) == 1 and search.q[0].endswith("\n"):
        return query.rewrite_dates(search.q[0], layout.all_git)
    return query.from_argv(search.q, layout.all_git)


def _search(reader: Reader, text: str, search: SavedSearch) -> list[Hit]:
    try:
        limit = int(search.option("limit") or 10000)
    except ValueError:
        raise InputError(f"{search.dir}: lei.q.limit is not a number") from None
    return list(reader.search(text, limit=limit, threads=search.option("threads") in ("1", "true"),
                              dedupe=search.option("dedupe") or "content"))


def _renamed_from(known: dict[bytes, bytes], present: set[bytes]) -> set[bytes]:
    """Known names whose file is still there under other flags (a rename, not a deletion)."""
    bases = {n.partition(b":")[0] for n in present}
    return {n for n in known if n not in present and n.partition(b":")[0] in bases}


def _keywords_of(reader: Reader, blobs: set[bytes]) -> dict[bytes, list[str]]:
    out = {}
    for oid in blobs:
        found = reader.volatile_of_blob(oid)
        if found is not None:
            out[oid] = found[0]
    return out


def _files_present(search: SavedSearch) -> set[bytes]:
    """Blobs of the files in the output that q -o or up named (<oid>=...): a refresh killed
    after writing them and before recording them does not write them twice."""
    if search.fmt != "maildir":
        return set()
    found = set()
    for sub in ("cur", "new"):
        with contextlib.suppress(OSError):
            for name in os.listdir(search.path / sub):
                head = name[:40]
                if len(name) > 41 and name[40] == "=":
                    with contextlib.suppress(ValueError):
                        found.add(bytes.fromhex(head))
    return found


def _not_written_before(search: SavedSearch, hits: list[Hit]) -> list[Hit]:
    """--dedupe content/mid also against what earlier runs wrote (another copy of the message)."""
    import sqlite3

    mode = search.option("dedupe") or "content"
    over = Path(search.dir) / savedsearch.OVER
    if mode in ("oid", "none") or not hits or not over.exists() or not over.stat().st_size:
        return hits
    from lei_store.disk.over import Over
    from lei_store.read.search import dedupe_key

    try:
        with Over(over) as old:
            keep = []
            for h in hits:
                rows = old.rows(old.nums_of_mid(h.row.mid)) if h.row.mid else {}
                if any(dedupe_key(r, mode) == dedupe_key(h.row, mode) for r in rows.values()):
                    continue
                keep.append(h)
    except sqlite3.DatabaseError as e:
        raise savedsearch.damaged(Path(search.dir), e) from None
    return keep


# -- shared steps ---------------------------------------------------------------------

@contextlib.contextmanager
def _search_lock(search: SavedSearch, timeout: float | None = None):
    d = Path(search.dir)
    d.mkdir(parents=True, exist_ok=True)
    wait = LOCK_SECONDS if timeout is None else timeout
    with locked(d / savedsearch.LOCK, wait, what=f"the saved search of {search.path}"):
        yield


def _check_output(search: SavedSearch) -> None:
    """An output that vanished or became something else: one line, nothing touched."""
    p = search.path
    if search.fmt == "maildir":
        if not p.exists():
            raise InputError(f"{p}: the saved search's output is gone; `lei-store forget-search {p}` "
                             "or recreate it with `lei-store q -o`")
        if p.is_symlink() or not p.is_dir():
            raise InputError(f"{p}: the saved search's output is no longer a Maildir directory")
        for sub in ("cur", "new", "tmp"):
            if (p / sub).is_symlink():
                raise InputError(f"{p}: its {sub}/ is now a symbolic link; not followed (make it a directory again)")
    elif p.exists() and p.is_dir():
        raise InputError(f"{p}: the saved search's {search.fmt} output is now a directory")


def _marks(layout: Layout) -> tuple[int, int | None]:
    """The store's highest docid and feed modseq, read before the search: what lands later is
    seen by the next refresh."""
    from lei_store.disk.feed import highest_modseq
    from lei_store.sqlite import connect_ro

    db = connect_ro(layout.over)
    try:
        top = db.execute("SELECT COALESCE(MAX(num), 0) FROM over").fetchone()[0]
    finally:
        db.close()
    if not layout.journal.exists():
        return top, None
    journal = Journal(layout.journal, readonly=True)
    try:
        return top, highest_modseq(journal.db)
    finally:
        journal.close()


def _forget_written(layout: Layout, search: SavedSearch) -> None:
    """A replaced output: the search's record of what it held starts again."""
    for suffix in ("", "-wal", "-shm"):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(Path(search.dir) / (savedsearch.OVER + suffix))
    if search.fmt == "maildir":
        sync = MailSync(layout.mail_sync, layout.mail_sync_lock)
        try:
            fid = sync.folder_id(maildir_loc(search.path), create=False)
            if fid is not None:
                sync.begin()
                sync.forget(fid)
                sync.commit()
        finally:
            sync.close()


def _deliver(layout: Layout, search: SavedSearch, hits: list[Hit], read_blob, *, augment: bool,
             first: bool) -> int:
    """Write hits to the output, then record them (files first: a refresh killed in between
    finds the files by name and does not write them twice)."""
    names: list[tuple[Hit, str]] = []
    n = output.write_mail(hits, search.fmt, search.path, read_blob, augment,
                          on_write=lambda hit, name: names.append((hit, name)), unseen_to_new=not first)
    _record_written(search, [hit for hit, _name in names])
    if search.fmt == "maildir":
        _record_sync(layout, search, names)
    return n


def _record_sync(layout: Layout, search: SavedSearch, names: list[tuple[Hit, str]]) -> None:
    """The output's files in mail_sync: the reader's renames of them are recognised."""
    if not names:
        return
    sync = MailSync(layout.mail_sync, layout.mail_sync_lock)
    try:
        sync.begin()
        fid = sync.folder_id(maildir_loc(search.path))
        assert fid is not None
        for hit, name in names:
            sync.add_name(bytes.fromhex(hit.row.blob), fid, name)
        sync.commit()
    finally:
        sync.close()


def _record_written(search: SavedSearch, hits: list[Hit]) -> None:
    """Add messages to the search's over.sqlite3 (lei's rows: xref3 holds each blob)."""
    import sqlite3

    from lei_store.write.overidx import OverIdx

    d = Path(search.dir)
    try:
        oidx = OverIdx(d / savedsearch.OVER)
        try:
            oidx.begin()
            for hit in hits:
                r = hit.row
                refs = [x.strip("<>") for x in r.references.split()]
                ddd = encode_ddd(r.subject, r.from_, r.references, r.to, r.cc, r.blob, r.mid, r.bytes, r.lines)
                oidx.add_message(oidx.next_num(), [r.mid] if r.mid else [], refs, subject_path(r.subject),
                                 r.ts, r.ds, ddd, bytes.fromhex(r.blob))
            oidx.commit()
        finally:
            oidx.close()
    except sqlite3.DatabaseError as e:
        raise savedsearch.damaged(d, e) from None


def _finish(layout: Layout, search: SavedSearch, top: int, modseq: int | None) -> None:
    root = str(layout.root)
    search.maxuid[root] = top
    if modseq is not None:
        search.modseq[root] = modseq
    search.digest[root] = search.query_digest()
    savedsearch.write(search)


# -- forget-search ------------------------------------------------------------------

def forget(layout: Layout | None, search: SavedSearch) -> None:
    """Forget a saved search: its directory goes, and the output's mail_sync folder; the output
    itself (the user's mail now) stays."""
    with _search_lock(search):
        if layout is not None and search.fmt == "maildir" and layout.mail_sync.exists():
            _forget_written(layout, search)
        shutil.rmtree(search.dir)
