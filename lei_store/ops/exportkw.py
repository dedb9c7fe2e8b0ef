"""Writing keywords back to where messages came from: Maildir flags and IMAP flags (spec §10.3).

Maildir files are only ever renamed (cur|new/NAME -> cur/BASE:2,FLAGS), never
rewritten, never over an existing name, and only when their flags change:
labels, and keywords without a Maildir letter (junk), leave files alone. The blob2name rows follow the
file. IMAP gets STORE FLAGS where the server allows them.
"""

from __future__ import annotations

from typing import Callable, Iterable

from lei_store.disk.mailsync import MaildirCopy, MailSync
from lei_store.sources.maildir import GONE, info_letters, name_for, rename


def export_maildir_copies(sync: MailSync, copies: Iterable[MaildirCopy],
                          keywords_of: Callable[[bytes], Iterable[str] | None], *, merge: bool = False) -> int:
    """Rename synced Maildir files to match their message's keywords.

    Returns how many files were renamed; rows of files that vanished are dropped."""
    renamed = 0
    for fid, maildir, name_b, oid in copies:
        keywords = keywords_of(oid)
        if keywords is None:
            continue
        name = name_b.decode("utf-8", "surrogateescape")
        new = name_for(name, keywords, merge=merge)
        if set(info_letters(new) or "") == set(info_letters(name) or ""):
            continue  # same flags: a file in new/ stays there (still "new" to the user's mail reader)
        got = rename(maildir, name, new)
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
