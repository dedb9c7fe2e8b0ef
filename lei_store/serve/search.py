"""IMAP SEARCH answered by the store instead of by reading every message.

FROM, TO, CC, SUBJECT, BODY and TEXT go to the store's Xapian index, as lei's f:, t:, c:, s:,
b: (and all of them for TEXT) do. They match words, and several words as a phrase, not
any substring (RFC 3501 asks for substrings; Dovecot with a full-text index, Gmail and lei
match words too): `SUBJECT btrfs` finds "[PATCH] btrfs: fix" and a single word also finds
its stemmed forms (patch, patches), but `SUBJECT trfs` finds nothing. A string with no word
the index knows (only punctuation) is matched as a substring on the content, as are the keys
the index does not answer: HEADER, BCC, SENTBEFORE/SENTON/SENTSINCE, LARGER, SMALLER. Flags and
INTERNALDATE keys (SINCE, BEFORE, ON) are answered from what the server holds in memory.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

from pymap.interfaces.message import LoadedMessageInterface, MessageInterface
from pymap.parsing.specials import FetchRequirement, SearchKey
from pymap.search import SearchCriteria, SearchParams

# IMAP search key -> lei query-language fields (read/query.py PROBABILISTIC)
FIELDS = {b"FROM": ("f",), b"TO": ("t",), b"CC": ("c",), b"SUBJECT": ("s",), b"BODY": ("b",),
          b"TEXT": ("s", "a", "b", "n", "m")}
_WORD = re.compile(r"[^\W_]+(?:[.@'_+-][^\W_]+)*")  # what the query parser reads as one term

Matcher = Callable[[str], "set[int] | None"]  # lei query -> matching UIDs of the mailbox


def lei_query(key: bytes, text: str) -> str | None:
    """The lei query for an IMAP text key, None when TEXT holds no word. A lone word is left
    unquoted, so lei's parser also matches its stemmed forms; several make a phrase."""
    words = [w.lower() for w in _WORD.findall(text)]
    if not words:
        return None
    value = words[0] if len(words) == 1 else '"' + " ".join(words) + '"'
    return " OR ".join(f"{field}:{value}" for field in FIELDS[key])


class _InSet(SearchCriteria):
    def __init__(self, uids: set[int], params: SearchParams) -> None:
        super().__init__(params)
        self.uids = uids

    def matches(self, msg_seq: int, msg: MessageInterface, loaded_msg: LoadedMessageInterface) -> bool:
        return msg.uid in self.uids


class _Substring(SearchCriteria):
    """RFC 3501's rule, for a string with no word in it: a substring of the decoded field (of
    the headers and text parts for BODY and TEXT), any case."""

    def __init__(self, key: bytes, value: str, params: SearchParams) -> None:
        super().__init__(params)
        self.key, self.value = key, value

    def matches(self, msg_seq: int, msg: MessageInterface, loaded_msg: LoadedMessageInterface) -> bool:
        if self.key in (b"BODY", b"TEXT"):
            return loaded_msg.contains(self.value.encode())
        return any(self._in(self.value, str(h)) for h in loaded_msg.get_header(self.key.lower()))  # From, To...


class _Not(SearchCriteria):
    def __init__(self, inner: SearchCriteria, params: SearchParams) -> None:
        super().__init__(params)
        self.inner = inner

    def matches(self, msg_seq: int, msg: MessageInterface, loaded_msg: LoadedMessageInterface) -> bool:
        return not self.inner.matches(msg_seq, msg, loaded_msg)


class _All(SearchCriteria):
    def __init__(self, parts: list[SearchCriteria], params: SearchParams) -> None:
        super().__init__(params)
        self.parts = parts

    def matches(self, msg_seq: int, msg: MessageInterface, loaded_msg: LoadedMessageInterface) -> bool:
        return all(p.matches(msg_seq, msg, loaded_msg) for p in self.parts)


class _Any(SearchCriteria):
    def __init__(self, parts: list[SearchCriteria], params: SearchParams) -> None:
        super().__init__(params)
        self.parts = parts

    def matches(self, msg_seq: int, msg: MessageInterface, loaded_msg: LoadedMessageInterface) -> bool:
        return any(p.matches(msg_seq, msg, loaded_msg) for p in self.parts)


class Plan:
    """The criteria for a SEARCH's keys, with the index's answers folded in, and what of each
    message's content the rest still needs (NONE when the index and memory answer it all)."""

    def __init__(self, keys: Iterable[SearchKey], params: SearchParams, match: Matcher) -> None:
        self.params = params
        self._match = match
        self.requirement = FetchRequirement.NONE
        self.criteria = _All([self._of(k) for k in keys], params)

    def _of(self, key: SearchKey) -> SearchCriteria:
        name = key.value
        if key.inverse:
            return _Not(self._of(key.not_inverse), self.params)
        if name == b"KEYSET":
            return _All([self._of(k) for k in key.filter_key_set], self.params)
        if name == b"OR":
            return _Any([self._of(k) for k in key.filter_key_or], self.params)
        if (name in FIELDS or name == b"BCC") and name not in self.params.disabled:
            query = lei_query(name, key.filter_str) if name in FIELDS else None  # no Bcc terms
            uids = self._match(query) if query else None
            if uids is not None:
                return _InSet(uids, self.params)
            self.requirement |= key.requirement
            return _Substring(name, key.filter_str, self.params)
        self.requirement |= key.requirement
        return SearchCriteria.of(key, self.params)

    def matches(self, msg_seq: int, msg: MessageInterface, loaded_msg: LoadedMessageInterface) -> bool:
        return self.criteria.matches(msg_seq, msg, loaded_msg)
