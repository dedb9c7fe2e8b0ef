"""pymap's per-session view of a selected mailbox, without its work over the whole mailbox
after every command when nothing changed.

After each command pymap copies the session's UIDs, sequence numbers and flags (a _Frozen) and
compares them with the copy made after the command before, to send EXISTS/EXPUNGE/FETCH for
what changed. On a mailbox of 10,000 messages that is milliseconds per command, and mbsync
pulls a mailbox one UID FETCH at a time: a full pull spent most of its time there. A command
after which no message was added, changed or expunged for this session and no session flag
moved (the usual case) reuses the last copy and sends nothing.
"""

from __future__ import annotations

from collections.abc import Iterable

from pymap.flags import FlagOp, SessionFlags
from pymap.interfaces.message import CachedMessage
from pymap.parsing.command import Command
from pymap.parsing.response import UntaggedResponse
from pymap.parsing.specials.flag import Flag
from pymap.selected import SelectedMailbox


class CountedFlags(SessionFlags):
    """Session flags (\\Recent and the like) that count their changes."""

    __slots__ = ("version",)

    def __init__(self, defined: Iterable[Flag]) -> None:
        super().__init__(defined)
        self.version = 0

    def remove(self, uids: Iterable[int]) -> None:
        uids = list(uids)
        if uids:
            self.version += 1
        super().remove(uids)

    def update(self, uid: int, flag_set: Iterable[Flag], op: FlagOp = FlagOp.REPLACE) -> frozenset[Flag]:
        self.version += 1
        return super().update(uid, flag_set, op)

    def add_recent(self, uid: int) -> None:
        self.version += 1
        super().add_recent(uid)


class Selected(SelectedMailbox):
    """A selected mailbox that knows whether the command it served changed anything."""

    __slots__ = ("_changed", "_flags_version")

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._changed = False
        self._flags_version = -1

    def add_updates(self, messages: Iterable[CachedMessage], expunged: Iterable[int]) -> None:
        messages, expunged = list(messages), list(expunged)
        if messages or expunged or self._messages._pending_remove:  # held-back EXPUNGEs go out now
            self._changed = True
        super().add_updates(messages, expunged)

    def set_messages(self, messages) -> None:
        self._changed = True
        super().set_messages(messages)

    def fork(self, command: Command) -> tuple[SelectedMailbox, Iterable[UntaggedResponse]]:
        flags = self._session_flags
        version = flags.version if isinstance(flags, CountedFlags) else -2
        if (self._prev is not None and not self._changed and not self._is_deleted
                and version == self._flags_version):
            same = type(self)(self._mailbox_id, self._readonly, self._permanent_flags, flags, self._selected_set,
                              self._lookup, _mod_sequence=self._mod_sequence, _prev=self._prev,
                              _messages=self._messages)
            same._flags_version = version
            return same, ()
        forked, untagged = super().fork(command)
        if isinstance(forked, Selected):
            forked._flags_version = version
        return forked, untagged
