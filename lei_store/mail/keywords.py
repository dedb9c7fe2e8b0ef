"""Keywords and labels: the allowed names and the flag <-> keyword maps (spec §6.5, §7.3)."""

from __future__ import annotations

import functools
import re

import msgspec

from lei_store.errors import InputError

KEYWORDS = ("seen", "answered", "flagged", "draft", "forwarded", "phishing", "junk", "notjunk")
_LABEL = re.compile(r"^[a-z0-9_](?:[a-z0-9_\-./@,]*[a-z0-9])?$")

MAILDIR_FLAGS = {"D": "draft", "F": "flagged", "P": "forwarded", "R": "answered", "S": "seen"}
MBOX_STATUS = {"R": "seen", "A": "answered", "F": "flagged", "T": "draft"}


def check_keyword(kw: str) -> str:
    if kw not in KEYWORDS:
        raise InputError(f"unknown keyword {kw!r} (known: {', '.join(KEYWORDS)})")
    return kw


def check_label(label: str) -> str:
    if len(label) >= 244 or not _LABEL.match(label):
        raise InputError(f"invalid label {label!r} (lower-case letters, digits and _-./@, only)")
    return label


@functools.lru_cache(maxsize=256)
def maildir_keywords(flags: str) -> frozenset[str]:
    """Cached: a Maildir of 65,000 files has a handful of distinct flag strings, and one frozenset
    per file cost 14 MB."""
    return frozenset(MAILDIR_FLAGS[c] for c in flags if c in MAILDIR_FLAGS)


def maildir_flags(keywords, keep: str = "") -> str:
    """Info letters for keywords, plus unknown letters already present, sorted."""
    back = {v: k for k, v in MAILDIR_FLAGS.items()}
    letters = {back[k] for k in keywords if k in back} | {c for c in keep if c not in MAILDIR_FLAGS}
    return "".join(sorted(letters))


def mbox_keywords(status_values: list[str]) -> frozenset[str] | None:
    """Keywords from Status/X-Status values; None when the message has neither header."""
    if not status_values:
        return None
    return frozenset(MBOX_STATUS[c] for v in status_values for c in v if c in MBOX_STATUS)


class VolatileChange(msgspec.Struct, frozen=True, omit_defaults=True):
    """A change to a message's keywords and labels: SET_* replace the whole set first (None:
    keep it), then ADD_* and REMOVE_* apply. What `tag` asks for, and what the shard writers get."""

    add_kw: frozenset[str] = frozenset()
    remove_kw: frozenset[str] = frozenset()
    add_labels: frozenset[str] = frozenset()
    remove_labels: frozenset[str] = frozenset()
    set_kw: frozenset[str] | None = None
    set_labels: frozenset[str] | None = None

    def __bool__(self) -> bool:
        return bool(self.add_kw or self.remove_kw or self.add_labels or self.remove_labels
                    or self.set_kw is not None or self.set_labels is not None)

    def apply(self, kws: set[str], labels: set[str]) -> tuple[set[str], set[str]]:
        """The keywords and labels a message has after this change."""
        new_kws = set(kws if self.set_kw is None else self.set_kw)
        new_labels = set(labels if self.set_labels is None else self.set_labels)
        return (new_kws | self.add_kw) - self.remove_kw, (new_labels | self.add_labels) - self.remove_labels


def parse_modifiers(args: list[str]) -> tuple[list[str], VolatileChange]:
    """Split argv into plain arguments and +kw:/-kw:/+L:/-L: modifiers."""
    mods: dict[str, set[str]] = {"add_kw": set(), "remove_kw": set(), "add_labels": set(), "remove_labels": set()}
    rest = []
    for arg in args:
        sign, body = arg[:1], arg[1:]
        if sign in "+-" and body.startswith(("kw:", "L:")):
            kind, _, values = body.partition(":")
            check = check_keyword if kind == "kw" else check_label
            key = f"{'add' if sign == '+' else 'remove'}_{'kw' if kind == 'kw' else 'labels'}"
            for v in filter(None, values.split(",")):
                mods[key].add(check(v))
        else:
            rest.append(arg)
    return rest, VolatileChange(**{k: frozenset(v) for k, v in mods.items()})


IMAP_FLAGS = {"\\Seen": "seen", "\\Answered": "answered", "\\Flagged": "flagged",
              "\\Draft": "draft", "$Forwarded": "forwarded"}
_IMAP_LOWER = {flag.lower(): kw for flag, kw in IMAP_FLAGS.items()}


def imap_keywords(flags) -> frozenset[str]:
    """Keywords for IMAP FLAGS (str or bytes, as imapclient gives them); flag names are case-insensitive."""
    names = (f.decode("utf-8", "replace") if isinstance(f, bytes) else f for f in flags)
    return frozenset(_IMAP_LOWER[n.lower()] for n in names if n.lower() in _IMAP_LOWER)


def imap_flags(keywords) -> list[str]:
    """IMAP flags for keywords, in IMAP_FLAGS order; keywords without a flag are dropped."""
    return [flag for flag, kw in IMAP_FLAGS.items() if kw in keywords]
