"""Faster answers to two questions pymap asks for every value it writes.

pymap's BytesFormat asks `isinstance(x, SupportsIndex)` and `isinstance(x, SupportsBytes)`:
typing's runtime protocols, whose isinstance walks the protocol's members on every call on
Python 3.11. A full mbsync pull of 10,000 messages spent a quarter of the server's CPU there.
The same questions asked of ABCs whose __subclasshook__ looks for the one method are cached
per type by the abc machinery. Same answers (a type has __index__ / __bytes__ or not),
installed into pymap.bytes's globals, where BytesFormat looks them up.
"""

from __future__ import annotations

from abc import ABC


class HasIndex(ABC):  # noqa: B024 (an ABC only for its isinstance cache)
    """Types with __index__ (typing.SupportsIndex's question)."""

    @classmethod
    def __subclasshook__(cls, sub: type) -> bool:
        return hasattr(sub, "__index__")


class HasBytes(ABC):  # noqa: B024
    """Types with __bytes__ (typing.SupportsBytes's question)."""

    @classmethod
    def __subclasshook__(cls, sub: type) -> bool:
        return hasattr(sub, "__bytes__")


def install() -> None:
    import pymap.bytes

    pymap.bytes.SupportsIndex = HasIndex  # type: ignore[assignment,misc]
    pymap.bytes.SupportsBytes = HasBytes  # type: ignore[assignment,misc]
