"""What importers yield (Items) and how they read (ReadOptions): the types every importer shares."""

from __future__ import annotations

from typing import Callable, NamedTuple

MBOX_FORMATS = ("mboxrd", "mboxo", "mboxcl", "mboxcl2")  # read/choices.py offers the same for output
# Larger messages are skipped (and named): one message must not take the machine's memory.
# Mail servers refuse far smaller ones (Postfix 10 MB, Gmail 25 MB, Exchange 35 MB by default).
DEFAULT_MAX_SIZE = 64 << 20


class Item(NamedTuple):
    """One message to import, with what its source says about it."""

    raw: bytes
    keywords: frozenset[str] | None  # None: the source carries no flags for it
    folder: str | None = None  # mail_sync location (Maildir, or IMAP URL with UIDVALIDITY)
    name: str | None = None  # Maildir basename, recorded in blob2name
    uid: int | None = None  # IMAP UID, recorded in blob2num
    now: int | None = None  # the time to assume when the message has no date (reindex: its commit's)
    origin: str = ""  # where it came from, for messages to the user


def _ignore(origin: str, reason: str) -> None:
    pass


class ReadOptions(NamedTuple):
    """How importers read: the largest message accepted, and whom to tell about a skipped input."""

    max_size: int = DEFAULT_MAX_SIZE
    on_skip: Callable[[str, str], None] = _ignore  # (where, why): the input was not read at all
