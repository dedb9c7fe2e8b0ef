"""`lei-store import`: what importing a source means (lei's LeiImport).

A Maildir is imported incrementally through mail_sync: a file already synced is not read at
all, a file renamed with new flags only moves its message's keywords (a Maildir message's
bytes never change, only its name). An IMAP folder is incremental by UID: the flags of known
UIDs are read again, expunged ones dropped, and only UIDs not yet recorded are fetched; a
changed UIDVALIDITY makes it a new folder. mboxes and single messages are read whole.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import msgspec

from lei_store.disk import mailboxes
from lei_store.disk.mailsync import maildir_loc
from lei_store.mail.keywords import VolatileChange, imap_keywords
from lei_store.sources import DEFAULT_MAX_SIZE, Item, ReadOptions, Source, maildir, read_source
from lei_store.write.writer import AddOptions, ImportStats, Writer


class ImportOptions(msgspec.Struct, frozen=True):
    """What `import` is asked to do with its sources."""

    add: AddOptions = AddOptions()
    max_size: int = DEFAULT_MAX_SIZE  # larger messages are skipped and named
    on_skip: Callable[[str, str], None] | None = None  # told (where, why) of each skipped input
    progress_total: Callable[[int], None] | None = None  # told the amount of work when a source knows it
    # a Maildir's known files only: renames become keywords, deletions are forgotten, no file is
    # read (a saved search's output: what the reader added there is not mail to import)
    renames_only: bool = False


class Importer:
    """Imports sources through one open writer."""

    def __init__(self, writer: Writer, opts: ImportOptions = ImportOptions()):
        self.writer = writer
        self.opts = opts
        self.read = ReadOptions(opts.max_size, self._skipped)
        for label in opts.add.labels:
            mailboxes.check_new_label(label)

    @property
    def stats(self) -> ImportStats:
        return self.writer.stats

    def _skipped(self, where: str, why: str) -> None:
        self.stats.rejected += 1
        if self.opts.on_skip:
            self.opts.on_skip(where, why)

    def import_source(self, source: Source) -> ImportStats:
        """Import one resolved input."""
        if source.fmt == "maildir" and source.path is not None:
            return self._maildir(source.path)
        if source.fmt == "imap" and source.url is not None:
            return self._imap(source.url)
        return self.writer.add_messages(read_source(source, self.read), self.opts.add)

    # -- Maildir ------------------------------------------------------------
    def _maildir(self, path: Path) -> ImportStats:
        sync = self.opts.add.record_sync
        loc = maildir_loc(path)
        entries = maildir.list_entries(path, self.read)
        fid = self.writer.mailsync.folder_id(loc, create=False) if sync else None
        todo = self._maildir_changes(fid, entries) if fid is not None else entries
        if self.opts.renames_only:
            todo = []
        return self.writer.add_messages(maildir.read_items(path, loc if sync else None, todo, self.read),
                                        self.opts.add)

    def _maildir_changes(self, fid: int, entries: list[maildir.Entry]) -> list[maildir.Entry]:
        """The entries that must be read; known files are skipped and renamed ones (new flags)
        updated without reading them."""
        w = self.writer
        known = w.mailsync.names(fid)
        by_base = {name.partition(b":")[0]: name for name in known}
        gone = known.keys() - {e.name.encode() for e in entries}
        alive = w.over.existing_blobs(set(known.values()))
        todo = []
        for e in entries:
            name = e.name.encode()
            if known.get(name) in alive:
                self.stats.skipped += 1
                continue
            old = by_base.get(name.partition(b":")[0])
            if name not in known and old in gone and known[old] in alive:
                gone.discard(old)
                w.mailsync.rename(fid, old, name)
                self._set_keywords(w.over.docids_of_blob(known[old]), e.keywords)
                self.stats.renamed += 1
                continue
            todo.append(e)
        for name in gone:  # removed from the Maildir
            w.mailsync.remove_name(fid, name)
        return todo

    def _set_keywords(self, nums: list[int], keywords: frozenset[str]) -> None:
        if self.opts.add.use_keywords:
            self.writer.change_volatile(nums, VolatileChange(set_kw=keywords))
        else:
            self.writer.tick()

    # -- IMAP -----------------------------------------------------------------
    def _imap(self, url_text: str) -> ImportStats:
        """A changed UIDVALIDITY makes it a new folder: the old one's UIDs are forgotten (the
        messages stay stored) and everything is fetched again, deduplicating by content."""
        from lei_store.sources.imap import Session, parse_url

        w, sync = self.writer, self.opts.add.record_sync
        url = parse_url(url_text)
        with Session(url) as session:
            session.select(readonly=True)
            loc = session.location
            fid = w.mailsync.folder_id(loc, create=False) if sync else None
            if fid is None and sync:
                for old_fid, old_loc in w.mailsync.folders():
                    if old_loc.startswith(url.folder_url() + ";UIDVALIDITY="):
                        w.mailsync.forget(old_fid)
            known = w.mailsync.uids(fid) if fid is not None else {}
            top = session.highest_modseq  # read before any flag: a later change is seen next time
            present = session.uids()
            if fid is not None and known:
                self._resync_imap_flags(session, fid, known, set(present))
            # every UID not yet recorded, not only those above the last one: a message skipped
            # as too large (or \Deleted) last time is taken once it can be
            uids = [uid for uid in present if uid not in known]
            if self.opts.progress_total:
                self.opts.progress_total(len(uids))
            # IMAP sends CRLF line ends; stored with LF like the Maildir copy (and like lei)
            items = (Item(raw.replace(b"\r\n", b"\n"), imap_keywords(flags), folder=loc, uid=uid,
                          origin=f"{url};UID={uid}")
                     for uid, flags, raw in session.fetch(uids, max_size=self.read.max_size, on_skip=self._skipped))
            stats = w.add_messages(items, self.opts.add)
            if sync:  # committed with the import's last batch, after every flag it stands for
                fid = w.mailsync.folder_id(loc, create=False)
                if fid is not None:  # --no-kw took no flag: the next import must read them all
                    w.mailsync.set_modseq(fid, top if self.opts.add.use_keywords else None)
            return stats

    def _resync_imap_flags(self, session, fid: int, known: dict[int, list[bytes]], present: set[int]) -> None:
        """Keywords of already-imported UIDs follow the server; expunged UIDs are dropped. With
        CONDSTORE and the HIGHESTMODSEQ of the last import, only the flags that changed since are
        fetched (CHANGEDSINCE); the UIDs present tell what was expunged."""
        w = self.writer
        since, top = w.mailsync.modseq(fid), session.highest_modseq
        if since is not None and top is not None and since <= top:
            current = session.flags(sorted(uid for uid in known if uid in present), changed_since=since)
        else:  # no modseq kept, or the server's went back (a restored mailbox): read them all
            current = session.flags(sorted(known))
            present = set(current)
        for uid, oids in known.items():
            if uid not in present or "\\deleted" in {f.lower() for f in current.get(uid, ())}:
                w.mailsync.remove_uid(fid, uid)
                continue
            if uid in current:
                nums = sorted({n for oid in oids for n in w.over.docids_of_blob(oid)})
                self._set_keywords(nums, imap_keywords(current[uid]))
