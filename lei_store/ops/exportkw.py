"""Writing keywords back to where messages came from: Maildir flags and IMAP flags (spec §10.3).

Maildir files are only ever renamed (cur|new/NAME -> cur/BASE:2,FLAGS), never
rewritten, never over an existing name, and only when their flags change:
labels, and keywords without a Maildir letter (junk), leave files alone. The blob2name rows follow the
file. IMAP gets STORE FLAGS where the server allows them.
"""

from __future__ import annotations

import errno
import os
from typing import Callable, Iterable

from lei_store.mail.keywords import maildir_keywords, maildir_flags
from lei_store.disk.mailsync import MailSync

GONE = object()  # the file is no longer there under any subdirectory


def _info_letters(name: str) -> str:
    info = name.partition(":")[2]
    return info[2:] if info.startswith("2,") else ""


def maildir_name(name: str, keywords: Iterable[str], *, merge: bool = False) -> str:
    """The basename a file should have for these keywords; merge keeps flags it already has."""
    old = _info_letters(name)
    kws = set(keywords) | (set(maildir_keywords(old)) if merge else set())
    return f"{name.partition(':')[0]}:2,{maildir_flags(kws, keep=old)}"


def _move(src: str, dst: str) -> None:
    """Rename without ever replacing an existing file (link+unlink; rename where links fail)."""
    try:
        os.link(src, dst)
    except OSError as e:
        if e.errno not in (errno.EPERM, errno.EXDEV, errno.EMLINK, errno.ENOTSUP):
            raise
        if os.path.lexists(dst):
            raise FileExistsError(errno.EEXIST, "exists", dst) from None
        os.rename(src, dst)
        return
    os.unlink(src)


def rename_file(maildir: str, name: str, new_name: str):
    """Move the file called NAME (in cur/ or new/) to cur/NEW_NAME.

    Returns the name it has afterwards: NEW_NAME, NAME when another file already
    holds NEW_NAME, or GONE when NAME is in neither subdirectory."""
    for sub in (("cur", "new") if ":2," in name else ("new", "cur")):
        src = os.path.join(maildir, sub, name)
        dst = os.path.join(maildir, "cur", new_name)
        if src == dst:
            return name if os.path.exists(src) else GONE
        try:
            _move(src, dst)
        except FileNotFoundError:
            continue
        except FileExistsError:
            return name
        return new_name
    return GONE


def export_maildir_copies(sync: MailSync, copies, keywords_of: Callable[[bytes], Iterable[str] | None],
                          *, merge: bool = False) -> int:
    """Rename synced Maildir files (fid, dir, name, oidbin) to match their message's keywords.

    Returns how many files were renamed; rows of files that vanished are dropped."""
    renamed = 0
    for fid, maildir, name_b, oid in copies:
        keywords = keywords_of(oid)
        if keywords is None:
            continue
        name = name_b.decode("utf-8", "surrogateescape")
        new = maildir_name(name, keywords, merge=merge)
        if set(_info_letters(new)) == set(_info_letters(name)):
            continue  # same flags: a file in new/ stays there (still "new" to the user's mail reader)
        got = rename_file(maildir, name, new)
        if got is GONE:
            sync.remove_name(fid, name_b)
        elif got == new:
            sync.rename(fid, name_b, new.encode("utf-8", "surrogateescape"))
            renamed += 1
    return renamed


def export_imap(session, uids: dict[int, list[bytes]], keywords_of, *, merge: bool = True) -> int:
    """STORE each UID's keywords as IMAP flags where they differ; returns how many messages changed."""
    from lei_store.mail.keywords import imap_flags, imap_keywords

    changed = 0
    current = session.flags(sorted(uids))
    for uid, oids in sorted(uids.items()):
        if uid not in current:
            continue  # expunged on the server
        keywords = next((k for k in map(keywords_of, oids) if k is not None), None)
        if keywords is None:
            continue
        have = set(imap_keywords(current[uid]))
        want = have | set(keywords) if merge else set(keywords)
        if want != have:
            session.set_flags(uid, imap_flags(keywords), mode="merge" if merge else "set")
            changed += 1
    return changed
