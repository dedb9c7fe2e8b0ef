"""Synced folders (the Maildirs and IMAP mailboxes in mail_sync): list, forget, refresh, export keywords.

These are lei's ls-mail-sync, forget-mail-sync, refresh-mail-sync and
export-kw. None of them changes the store itself; only mail_sync.sqlite3 and
the folders' own flags.
"""

from __future__ import annotations

import fnmatch
import os
from pathlib import Path

import msgspec

from lei_store.disk.mailsync import MaildirCopy, MailSync, maildir_loc
from lei_store.errors import InputError
from lei_store.paths import Layout
from lei_store.sources import maildir


class FolderStats(msgspec.Struct):
    """What refresh-mail-sync or export-kw did to one folder."""

    folder: str
    removed: int = 0  # rows of files/UIDs that no longer exist
    added: int = 0  # rows for files whose blob the store already holds
    exported: int = 0  # files renamed / messages whose IMAP flags were stored


def is_remote(loc: str) -> bool:
    return loc.startswith(("imap://", "imaps://"))


def ls(sync: MailSync, pattern: str | None = None, where: str | None = None) -> list[str]:
    """Folder locations, optionally filtered by a glob and by local/remote."""
    out = []
    for _fid, loc in sync.folders():
        if where == "local" and is_remote(loc) or where == "remote" and not is_remote(loc):
            continue
        if pattern is None or fnmatch.fnmatchcase(loc, pattern):
            out.append(loc)
    return out


def find(sync: MailSync, spec: str) -> list[tuple[int, str]]:
    """The folder(s) a command-line location names: a Maildir path (maildir: optional) or an IMAP
    URL, which matches the folder under any UIDVALIDITY."""
    folders = sync.folders()
    if is_remote(spec.lower()):
        from lei_store.sources.imap import parse_url

        want = parse_url(spec).folder_url()
        found = [(fid, loc) for fid, loc in folders
                 if is_remote(loc) and parse_url(loc).folder_url() == want]
    else:
        want = maildir_loc(Path(spec.removeprefix("maildir:")))
        found = [(fid, loc) for fid, loc in folders if loc == want]
    if not found:
        raise InputError(f"{spec}: not a synced folder (see `lei-store ls-mail-sync`)")
    return found


def forget(sync: MailSync, specs: list[str]) -> list[str]:
    """Drop all sync rows of these folders; returns the locations forgotten."""
    gone = []
    for spec in specs:
        for fid, loc in find(sync, spec):
            sync.forget(fid)
            gone.append(loc)
    sync.commit()
    return gone


def refresh_maildir(sync: MailSync, fid: int, loc: str, held) -> FolderStats:
    """Rows for vanished files go; files the store holds (by blob OID) but that have no row get one."""
    from lei_store.disk.blobs import git_oid
    from lei_store.sources import DEFAULT_MAX_SIZE

    stats = FolderStats(loc)
    path = loc[len("maildir:"):]
    if not os.path.isdir(path):
        raise InputError(f"{path}: the Maildir no longer exists (forget it with forget-mail-sync)")
    on_disk = maildir.names(path)
    known = sync.names(fid)
    for name in known:
        if name.decode("utf-8", "surrogateescape") not in on_disk:
            sync.remove_name(fid, name)
            stats.removed += 1
    for file, sub in on_disk.items():
        if file.encode("utf-8", "surrogateescape") in known:
            continue
        try:
            data = maildir.read_file(os.path.join(path, sub, file), DEFAULT_MAX_SIZE)
        except OSError:
            continue
        if isinstance(data, str):  # not a message file (a FIFO, a symlink, unreadable, too large)
            continue
        oid = git_oid(data)
        if held(oid):
            sync.add_name(oid, fid, file)
            stats.added += 1
    return stats


def refresh_imap(sync: MailSync, fid: int, loc: str) -> FolderStats:
    """Rows of UIDs the server no longer has go (a changed UIDVALIDITY drops them all)."""
    from lei_store.sources.imap import Session, parse_url

    stats = FolderStats(loc)
    url = parse_url(loc)
    with Session(url) as session:
        session.select(readonly=True)
        known = sync.uids(fid)
        alive = session.flags(sorted(known)) if session.uidvalidity == url.uidvalidity else {}
    for uid in known:
        if uid not in alive:
            sync.remove_uid(fid, uid)
            stats.removed += 1
    return stats


def refresh(layout: Layout, specs: list[str] | None) -> list[FolderStats]:
    """refresh-mail-sync for the named folders, or all of them."""
    from lei_store.disk.over import Over

    over = Over(layout.over)
    held = over.holds_blob
    sync = MailSync(layout.mail_sync, layout.mail_sync_lock)
    try:
        targets = [f for s in specs for f in find(sync, s)] if specs else sync.folders()
        out = []
        for fid, loc in targets:
            out.append(refresh_imap(sync, fid, loc) if is_remote(loc) else refresh_maildir(sync, fid, loc, held))
            sync.commit()
        return out
    finally:
        sync.close()
        over.close()


def export_kw(layout: Layout, specs: list[str] | None, *, where: str | None = None,
              mode: str = "merge") -> list[FolderStats]:
    """Write the store's keywords back to synced folders: Maildir flags (renames) and IMAP flags."""
    from lei_store.ops.exportkw import export_imap, export_maildir_copies
    from lei_store.read.search import Reader

    if mode not in ("merge", "set"):
        raise InputError(f"--mode must be merge or set, not {mode!r}")
    reader = Reader(layout.root)
    kw_of = lambda oid: (lambda v: None if v is None else v[0])(reader.volatile_of_blob(oid))
    sync = MailSync(layout.mail_sync, layout.mail_sync_lock)
    try:
        if specs:
            targets = [f for s in specs for f in find(sync, s)]
        else:
            targets = [f for f in sync.folders() if (where != "local" or not is_remote(f[1]))
                       and (where != "remote" or is_remote(f[1]))]
        out = []
        for fid, loc in targets:
            stats = FolderStats(loc)
            if is_remote(loc):
                from lei_store.sources.imap import Session, parse_url

                url = parse_url(loc)
                with Session(url) as session:
                    session.select(readonly=False)
                    if session.uidvalidity != url.uidvalidity:
                        raise InputError(f"{loc}: UIDVALIDITY changed on the server; re-import it first")
                    stats.exported = export_imap(session, sync.uids(fid), kw_of, merge=mode == "merge")
            else:
                path = loc[len("maildir:"):]
                copies = [MaildirCopy(fid, path, name, oid) for name, oid in sync.names(fid).items()]
                stats.exported = export_maildir_copies(sync, copies, kw_of, merge=mode == "merge")
            sync.commit()
            out.append(stats)
        return out
    finally:
        sync.close()
        reader.close()
