"""Mailboxes are labels (RFC 8621 semantics, as lei-store-format says): what a mailbox is called,
which label holds it, and reading them with their counters.

A mailbox name is what an IMAP client shows: any Unicode, `/` between levels of the hierarchy.
A label is what lei stores: lower-case ASCII letters, digits and `_-./@,`, starting with a
letter, digit or `_` and ending with a letter or digit (lei-tag(1)). The mapping between them
is reversible and keeps every name that is already a label as it is ("work", "lists/btrfs"):

- `INBOX` (in any case, also as the first level: `inbox/x` is `INBOX/x`) is the label `inbox`;
- each `/`-separated level that is not a valid label by itself (capitals, spaces, other
  characters) becomes `__` followed by the lower-case base32hex of its UTF-8 bytes, so
  "Work Stuff/2024" is the label `__ase7ik35e9ima6j6/2024`, which real lei lists and searches
  as it is; `L:` queries take the label.

Labels beginning with `__` are therefore reserved for encoded names: `tag` refuses one that
encodes no mailbox name, and such a label (lei may hold one) is a plain label, not a mailbox.
`All` is the view of every message and holds no label.
"""

from __future__ import annotations

import base64
import re
import sqlite3
import unicodedata
from pathlib import Path
from typing import Iterator

import msgspec

from lei_store.disk.journal import Journal
from lei_store.errors import InputError
from lei_store.paths import existing_store

INBOX = "INBOX"
ALL = "All"  # the \All view: every message
DELIMITER = "/"
_LABEL = re.compile(r"^[a-z0-9_](?:[a-z0-9_\-./@,]*[a-z0-9])?$")
_SEGMENT = re.compile(r"^[a-z0-9_](?:[a-z0-9_\-.@,]*[a-z0-9])?$")
_ESCAPED = "__"
SPECIAL_USE = ("\\All", "\\Archive", "\\Drafts", "\\Flagged", "\\Junk", "\\Sent", "\\Trash")
# the attribute a mailbox gets from its name, unless set otherwise (RFC 6154's usual names)
DEFAULT_SPECIAL_USE = {"archive": "\\Archive", "drafts": "\\Drafts", "junk": "\\Junk", "spam": "\\Junk",
                       "sent": "\\Sent", "trash": "\\Trash"}


class Mailbox(msgspec.Struct):
    """A mailbox with its counters, as `mailboxes --json` prints it (IMAP STATUS, rusmes MailboxCounters)."""

    name: str
    label: str | None  # None for the \All view
    exists: int
    unseen: int
    recent: int  # joined since a client last selected it (its recent mark)
    uidvalidity: int
    uidnext: int
    highestmodseq: int
    subscribed: bool
    special_use: str | None = None


def check_name(name: str) -> str:
    """A mailbox name IMAP can carry, or InputError saying why not."""
    if not name or len(name) > 200:
        raise InputError(f"bad mailbox name {name!r}: empty or longer than 200 characters")
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:  # bytes that were not UTF-8 (surrogate escapes from argv)
        raise InputError(f"bad mailbox name {name!r}: not UTF-8") from None
    if name.startswith(DELIMITER) or name.endswith(DELIMITER) or DELIMITER * 2 in name:
        raise InputError(f"bad mailbox name {name!r}: an empty level between '/'")
    bad = sorted({c for c in name if c in "%*\\\"" or unicodedata.category(c) in ("Cc", "Zl", "Zp")})
    if bad:
        raise InputError(f"bad mailbox name {name!r}: it may not hold {' '.join(map(repr, bad))}")
    return name


def canonical(name: str) -> str:
    """NAME as the store keeps it: INBOX (and the levels under it) whatever its case, as IMAP says."""
    first, sep, rest = name.partition(DELIMITER)
    return INBOX + sep + rest if first.upper() == INBOX else name


def _b32(data: bytes) -> str:
    return base64.b32hexencode(data).decode().rstrip("=").lower()


def _unb32(text: str) -> bytes:
    return base64.b32hexdecode(text.upper() + "=" * (-len(text) % 8))


def label_of(name: str) -> str:
    """The label holding the mailbox NAME (All, every message, has none: InputError)."""
    name = canonical(check_name(name))
    if name == ALL:
        raise InputError("mailbox 'All' exists already: it is every message, and holds no label")
    parts = []
    for i, segment in enumerate(name.split(DELIMITER)):
        plain = (i == 0 and segment == INBOX) or (_SEGMENT.match(segment) and not segment.startswith(_ESCAPED))
        parts.append("inbox" if i == 0 and segment == INBOX else
                     segment if plain else _ESCAPED + _b32(segment.encode("utf-8")))
    label = DELIMITER.join(parts)
    if len(label) >= 244 or not _LABEL.match(label):
        raise InputError(f"mailbox name {name!r} is too long to be held by a label")
    return label


def name_of(label: str) -> str:
    """The mailbox a label holds (the inverse of label_of); see is_mailbox_label."""
    parts = []
    for i, segment in enumerate(label.split(DELIMITER)):
        if i == 0 and segment == "inbox":
            segment = INBOX
        elif segment.startswith(_ESCAPED):
            try:
                segment = _unb32(segment[len(_ESCAPED):]).decode("utf-8")
            except (ValueError, UnicodeDecodeError):
                pass  # a label that only looks encoded: not a mailbox (is_mailbox_label)
        parts.append(segment)
    return DELIMITER.join(parts)


def check_new_label(label: str) -> str:
    """A label to give messages (tag, import): one whose levels begin with `__` must encode a
    mailbox name, as label_of writes it (`__` is reserved for those), else InputError."""
    if any(seg.startswith(_ESCAPED) for seg in label.split(DELIMITER)) and not is_mailbox_label(label):
        raise InputError(f"label {label!r}: labels with a level beginning with '__' are reserved for encoded "
                         "mailbox names, and this one encodes none (`lei-store mailbox create NAME` prints a "
                         "name's label)")
    return label


def is_mailbox_label(label: str) -> bool:
    """Whether LABEL holds a mailbox: label_of(name_of(label)) gives it back. A label that only
    looks encoded (`__` and no valid name, a name with a '/' or a control character in one level,
    a name spelled another way, INBOX or All by another route) is a plain label, not a mailbox."""
    try:
        return label_of(name_of(label)) == label
    except InputError:
        return False


def default_special_use(name: str) -> str | None:
    return DEFAULT_SPECIAL_USE.get(name.rpartition(DELIMITER)[2].lower())


_COLUMNS = "id, name, label, uidvalidity, uidnext, highestmodseq, subscribed, special_use, recent_uid"


def has_tables(db: sqlite3.Connection) -> bool:
    return db.execute("SELECT 1 FROM sqlite_master WHERE name = 'mailboxes'").fetchone() is not None


def listing(db: sqlite3.Connection, names: list[str] | None = None) -> Iterator[Mailbox]:
    """Every mailbox (or those NAMES) with exact counters, from the journal's tables."""
    if not has_tables(db):
        return
    for row in db.execute(f"SELECT {_COLUMNS} FROM mailboxes ORDER BY name = ? DESC, name = ? DESC, name",
                          (INBOX, ALL)):
        mid, name, label, uidvalidity, uidnext, modseq, subscribed, special, recent_uid = row
        if names is not None and name not in {canonical(n) for n in names}:
            continue
        exists, unseen, recent = db.execute(
            "SELECT COUNT(*), COUNT(*) - COALESCE(SUM(seen), 0), COALESCE(SUM(uid >= ?), 0) FROM members "
            "WHERE mailbox = ?", (recent_uid, mid)).fetchone()
        yield Mailbox(name, label, exists, unseen, recent, uidvalidity, uidnext, modseq, bool(subscribed), special)


def read(root: Path, names: list[str] | None = None) -> list[Mailbox]:
    """Every mailbox of the store at ROOT with its counters (read-only, no lock)."""
    lay = existing_store(Path(root))
    if not lay.journal.exists():  # a store only lei ever wrote: no mailboxes yet
        return []
    journal = Journal(lay.journal, readonly=True)
    try:
        found = list(listing(journal.db, names))
    finally:
        journal.db.close()
    missing = sorted({canonical(n) for n in names or ()} - {b.name for b in found})
    if missing:
        raise InputError(f"no mailbox {', '.join(map(repr, missing))} (see `lei-store mailboxes`)")
    return found


def find(db: sqlite3.Connection, name: str) -> tuple[int, str | None] | None:
    """(id, label) of the mailbox called NAME, None when there is none."""
    if not has_tables(db):
        return None
    row = db.execute("SELECT id, label FROM mailboxes WHERE name = ?", (canonical(name),)).fetchone()
    return (row[0], row[1]) if row else None
