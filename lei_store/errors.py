"""The errors lei_store raises: one small hierarchy, so callers can catch broadly or narrowly.

The CLI turns any LeiStoreError into one line on stderr and exits with its
`exit_code`. The codes follow sysexits.h where it has a name for the kind of
failure; README.md lists them:

    1   bad input or usage: a missing path, an unknown format, a query that does not parse
    2   fsck found errors
    3   `changes`/`watch` --since a modseq older than the change feed keeps: resync
    65  EX_DATAERR      the store is damaged (a corrupt git object, SQLite file or Xapian shard)
    66  EX_NOINPUT      some inputs were skipped (unreadable, not a regular file, too large);
                        everything else was stored
    69  EX_UNAVAILABLE  an IMAP server could not be reached or refused us; a program a command
                        runs (public-inbox-httpd for serve-www) is not installed or failed
    70  EX_SOFTWARE     an internal error (a bug), or the reader daemon died mid-answer
    73  EX_CANTCREAT    the store's quota is reached: what fitted was stored, the rest was not
    74  EX_IOERR        the disk is full, or writing failed with an I/O error
    75  EX_TEMPFAIL     another writer holds the store's lock
    77  EX_NOPERM       permission denied on the store
    130 interrupted (^C); 141 the reader of our output went away
"""

from __future__ import annotations

import errno

EX_DATAERR = 65
EX_NOINPUT = 66
EX_UNAVAILABLE = 69
EX_SOFTWARE = 70
EX_CANTCREAT = 73
EX_IOERR = 74
EX_TEMPFAIL = 75
EX_NOPERM = 77


class LeiStoreError(Exception):
    """Base class of every error lei_store reports to its user."""

    exit_code = 1


class NotAStoreError(LeiStoreError):
    """A directory that should hold a store does not."""


class StoreLockedError(LeiStoreError):
    """Another writer holds ei.lock for longer than we are willing to wait."""

    exit_code = EX_TEMPFAIL  # as notmuch uses for a busy database


class InputError(LeiStoreError):
    """A missing, unreadable or unparseable input (path, format, URL)."""


class UnknownFormatError(InputError):
    """An input format we do not know (-F, or a FORMAT: prefix)."""


class TruncatedInputError(InputError):
    """An input ended in the middle of a message; what came before it was imported."""


class SkippedInputsError(LeiStoreError):
    """An import stored what it could but skipped some inputs (each was named as it was skipped)."""

    exit_code = EX_NOINPUT


class QuotaExceededError(LeiStoreError):
    """An import reached the store's quota: what fitted was stored, the rest was not."""

    exit_code = EX_CANTCREAT


class QueryError(LeiStoreError):
    """A search query that does not parse."""


class RemoteError(InputError):
    """An IMAP server could not be reached or refused a request."""

    exit_code = EX_UNAVAILABLE


class PeerUnavailableError(LeiStoreError):
    """A program a command hands the store to (public-inbox-httpd) is missing or failed."""

    exit_code = EX_UNAVAILABLE


class StorageError(LeiStoreError):
    """Writing to the store failed (an I/O error, a git failure)."""

    exit_code = EX_IOERR


class DiskFullError(StorageError):
    """No space left on the store's file system (or the user's disk quota is exhausted)."""


class StorePermissionError(LeiStoreError):
    """The store (or a file in it) may not be read or written by this user."""

    exit_code = EX_NOPERM


class DamagedStoreError(LeiStoreError):
    """A part of the store cannot be read: a corrupt git object, SQLite file or Xapian shard."""

    exit_code = EX_DATAERR


NO_SPACE = (errno.ENOSPC, errno.EDQUOT)
NO_PERMISSION = (errno.EACCES, errno.EPERM, errno.EROFS)


def from_os_error(e: OSError, what: str = "") -> LeiStoreError:
    """The LeiStoreError for an OSError met while reading or writing the store, by its errno."""
    where = f" ({e.filename})" if getattr(e, "filename", None) else ""
    prefix = f"{what}: " if what else ""
    if e.errno in NO_SPACE:
        return DiskFullError(f"{prefix}disk full{where}")
    if e.errno in NO_PERMISSION:
        return StorePermissionError(f"{prefix}permission denied{where}")
    return StorageError(f"{prefix}{e.strerror or e}{where}")


def is_disk_full(strerror: str) -> bool:
    """Xapian and git report an errno only as its strerror() text: compare with the C library's
    (git's write_or_die() has its own words for ENOSPC)."""
    import os

    return any(os.strerror(n) in strerror for n in NO_SPACE) or "Out of diskspace" in strerror
