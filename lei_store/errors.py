"""The errors lei_store raises: one small hierarchy, so callers can catch broadly or narrowly.

The CLI turns any LeiStoreError into one line on stderr and a non-zero exit.
"""


class LeiStoreError(Exception):
    """Base class of every error lei_store reports to its user."""

    exit_code = 1


class NotAStoreError(LeiStoreError):
    """A directory that should hold a store does not."""


class StoreLockedError(LeiStoreError):
    """Another writer holds ei.lock for longer than we are willing to wait."""

    exit_code = 75  # EX_TEMPFAIL, as notmuch uses for a busy database


class InputError(LeiStoreError):
    """A missing, unreadable or unparseable input (path, format, URL)."""


class UnknownFormatError(InputError):
    """An input format we do not know (-F, or a FORMAT: prefix)."""


class TruncatedInputError(InputError):
    """An input ended in the middle of a message; what came before it was imported."""


class StorageError(LeiStoreError):
    """Writing to the store failed (disk full, I/O error, git failure)."""


class QueryError(LeiStoreError):
    """A search query that does not parse."""


class RemoteError(InputError):
    """An IMAP server could not be reached or refused a request."""
