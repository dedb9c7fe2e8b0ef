"""IMAP for mail clients, through pymap: a pymap backend (its `pymap.backend` entry point
`leistore`) whose mailboxes are the store's (INBOX, every label, All), whose flags are its
keywords, and whose UIDs and UIDVALIDITY are the store's own (stable across restarts and
reindexes). Writes go through the store's single writer, one batch per IMAP command.

Live: one follower of the change feed (disk/follow.py, inotify) wakes every selected mailbox,
so IDLE clients see EXISTS/EXPUNGE/FETCH FLAGS for changes made by anyone. Each mailbox keeps
its members in memory and reads only the changes after the modseq it has seen.

\\Deleted is no keyword of lei's: the server keeps it, per mailbox, until EXPUNGE (or until it
restarts). EXPUNGE in a label mailbox takes the label off (the message stays in the archive and
in All); in All it removes the message as `lei-store rm` does. MOVE to All takes the source's
label off (Gmail's archive); MOVE from All adds the label (the message stays in All).
"""

from __future__ import annotations

import asyncio
import functools
import hmac
import logging
import os
import time
from argparse import ArgumentParser, Namespace
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager, suppress
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from pymap.backend.mailbox import MailboxDataInterface, MailboxSetInterface
from pymap.backend.session import BaseSession
from pymap.bytes import Writeable
from pymap.concurrent import Event
from pymap.config import BackendCapability, IMAPConfig
from pymap.context import subsystem
from pymap.exceptions import (
    AppendFailure,
    InvalidAuth,
    MailboxConflict,
    MailboxNotFound,
    NotAllowedError,
    NotSupportedError,
    TemporaryFailure,
)
from pymap.flags import FlagOp, PermanentFlags
from pymap.health import HealthStatus
from pymap.interfaces.backend import BackendInterface
from pymap.interfaces.login import IdentityInterface, LoginInterface
from pymap.interfaces.message import CachedMessage
from pymap.listtree import ListTree
from pymap.mailbox import MailboxSnapshot
from pymap.message import BaseLoadedMessage, BaseMessage
from pymap.mime import MessageContent
from pymap.parsing.message import AppendMessage
from pymap.parsing.response.code import AppendUid, CopyUid
from pymap.parsing.response.fetch import BodyStructure, EnvelopeStructure
from pymap.parsing.specials import FetchRequirement, ObjectId, SearchKey, SequenceSet
from pymap.parsing.specials.flag import Deleted, Flag, Seen
from pymap.search import SearchParams
from pymap.selected import SelectedMailbox, SelectedSet
from pymap.token import AllTokens
from pymap.user import UserMetadata
from pysasl.creds.server import ServerCredentials
from pysasl.identity import ClearIdentity

from lei_store.disk import mailboxes as names
from lei_store.disk.feed import ResyncNeeded
from lei_store.disk.mailboxes import Mailbox
from lei_store.errors import InputError, LeiStoreError, StoreLockedError
from lei_store.mail.keywords import VolatileChange
from lei_store.serve.envelope import envelope
from lei_store.serve.search import FIELDS, Plan, lei_query
from lei_store.serve.selected import CountedFlags, Selected
from lei_store.serve.view import FLAG_OF, Member, MessageFacts, StoreView

_log = logging.getLogger(__name__)
RECHECK = 5.0  # seconds: a mailbox reads the journal at least this often while used, should a wake be lost
MAX_APPEND = 64 << 20  # as import's default --max-size: a larger literal is refused before it is read
PERMANENT = frozenset(Flag(f.encode()) for f in FLAG_OF.values()) | {Deleted}
_WORD_OF = {Flag(f.encode()): kw for kw, f in FLAG_OF.items()}


def _words(flags: Iterable[Flag]) -> frozenset[str]:
    return frozenset(_WORD_OF[f] for f in flags if f in _WORD_OF)


@functools.lru_cache(maxsize=4096)
def _flags_of(kw: tuple[str, ...]) -> frozenset[Flag]:
    """The IMAP flags of a set of keywords (a few hundred distinct sets in a big store)."""
    return frozenset(Flag(FLAG_OF[k].encode()) for k in kw if k in FLAG_OF)


def _refused(e: LeiStoreError) -> Exception:
    """A store error as the IMAP answer it deserves (NO, with a code), never a dropped connection."""
    if isinstance(e, StoreLockedError):
        return TemporaryFailure(f"the store is busy: {e}")
    return NotAllowedError(str(e))


class _RawEnvelope(EnvelopeStructure):
    """An envelope already written (serve/envelope.py)."""

    def __init__(self, data: bytes) -> None:
        super().__init__(None, None, None, None, None, None, None, None, None, None)
        self._data = data

    def write(self, writer) -> None:
        writer.write(self._data)

    def __bytes__(self) -> bytes:
        return self._data


class LoadedMessage(BaseLoadedMessage):
    """A message's content for FETCH and SEARCH. The blob is MIME-parsed (pymap's parser) only
    when a part, the structure or a header is asked for: BODY[], RFC822.SIZE and ENVELOPE come
    from the bytes as they are. Robust to real mail: Python's header registry raises on some
    malformed headers (a group where an address belongs), which killed the connection; a
    structure that will not render is the plain one RFC 2180 suggests, a header that will not
    parse is not there."""

    __slots__ = ("_raw",)

    def __init__(self, message: Message, requirement: FetchRequirement, raw: bytes | None) -> None:
        super().__init__(message, requirement, None)
        self._raw = raw

    @property
    def content(self) -> MessageContent:
        if self._content is None and self._raw is not None:
            self._content = MessageContent.parse(self._raw)
        return super().content

    def __bytes__(self) -> bytes:
        return self._raw if self._raw is not None else b""

    def get_size(self, section: Sequence[int] | None = None) -> int:
        if not section and self._raw is not None:
            return len(self._raw)
        return super().get_size(section)

    def get_body(self, section: Sequence[int] | None = None, binary: bool = False) -> Writeable:
        if not section and not binary and self._raw is not None:
            return Writeable.wrap(self._raw)
        return super().get_body(section, binary)

    def get_envelope_structure(self) -> EnvelopeStructure:
        if self._raw is None:
            return EnvelopeStructure.empty()
        return _RawEnvelope(envelope(self._raw))

    def get_body_structure(self) -> BodyStructure:
        try:
            structure = super().get_body_structure()
            structure.tobytes()
            return structure
        except Exception:  # noqa: BLE001
            return BodyStructure.empty()

    def get_header(self, name: bytes) -> Sequence[str]:
        try:
            return super().get_header(name)
        except Exception:  # noqa: BLE001
            return []


class Message(BaseMessage):
    """A member of a mailbox: its UID there, flags from its keywords, the store's blob. Its
    email and thread ids are made when asked for: a SELECT of 65,000 messages makes every
    Message at once, and pymap's constructor cost a third of it."""

    __slots__ = ("oidbin", "modseq", "_server", "_tid")

    def __init__(self, uid: int, internal_date: datetime, flags: frozenset[Flag], *, oidbin: bytes, modseq: int,
                 server: Server, tid: int = 0, expunged: bool = False) -> None:
        # BaseMessage.__init__'s fields, set directly (its ObjectIds are made lazily, below)
        self.uid = uid  # type: ignore[misc]
        self.internal_date = internal_date  # type: ignore[misc]
        self.expunged = expunged  # type: ignore[misc]
        self._permanent_flags = flags
        self._flags_key = (uid, flags)
        self.oidbin = oidbin
        self.modseq = modseq
        self._server = server
        self._tid = tid

    @property
    def email_id(self) -> ObjectId:
        return ObjectId(b"M" + self.oidbin.hex().encode())

    @property
    def thread_id(self) -> ObjectId:
        return ObjectId(b"T" + str(self._tid).encode()) if self._tid else ObjectId(None)

    def gone(self) -> Message:
        return Message(self.uid, self.internal_date, self.permanent_flags, oidbin=self.oidbin, modseq=self.modseq,
                       server=self._server, tid=self._tid, expunged=True)

    async def load_content(self, requirement: FetchRequirement) -> LoadedMessage:
        raw = None
        if not requirement.has_none(FetchRequirement.CONTENT):
            try:
                raw = self._server.view.blob(self.oidbin)
            except KeyError:  # purged since: the client gets an empty message, not an error
                raw = None
        return LoadedMessage(self, requirement, raw)


class MailboxData(MailboxDataInterface[Message]):
    """One mailbox of the store, as pymap sees it: its members in memory, kept up to date from
    the change feed (only what changed after the modseq it has)."""

    def __init__(self, server: Server, box: Mailbox) -> None:
        self.server = server
        self.name = box.name
        self.label = box.label  # None: All
        self._uid_validity = box.uidvalidity
        self._id = ObjectId(b"F" + str(box.uidvalidity).encode())
        self._selected_set = SelectedSet()
        self._updated = subsystem.get().new_event()
        self._lock = asyncio.Lock()
        self._msgs: dict[int, Message] = {}
        self._uid_of: dict[bytes, int] = {}
        self._gone: list[tuple[int, int]] = []  # (modseq, uid) of members that left since loaded
        self._modseq: int | None = None
        self._claimed = 0  # recent messages the SELECT in progress took
        self._stale = True  # what we hold may be behind the store (wake)
        self._read_at = 0.0  # when we last read the journal

    # -- pymap's properties ---------------------------------------------------------------
    @property
    def mailbox_id(self) -> ObjectId:
        return self._id

    @property
    def readonly(self) -> bool:
        return False

    @property
    def uid_validity(self) -> int:
        return self._uid_validity

    @property
    def permanent_flags(self) -> frozenset[Flag]:
        return PERMANENT

    @property
    def selected_set(self) -> SelectedSet:
        return self._selected_set

    def wake(self) -> None:
        """The store changed (the feed's follower, or a write of ours): the next command reads
        what changed, and IDLE sessions look now."""
        self._stale = True
        self._updated.set()

    # -- keeping up with the store ----------------------------------------------------------
    async def refresh(self) -> None:
        """Read what changed since the modseq we have, if anything may have: every command
        refreshes, and reading the journal each time made a pull of 10,000 messages one UID
        FETCH at a time (mbsync) spend most of its time in SQLite."""
        if not self._stale and time.monotonic() - self._read_at < RECHECK:
            return
        async with self._lock:
            self._stale = False  # a change committed from here on wakes us again
            self._read_at = time.monotonic()
            view = self.server.view
            try:
                if self._modseq is None:
                    members, top = await asyncio.to_thread(view.members, self.name)
                    self._apply(members, [], top, first=True)
                else:
                    changed, gone, top = await asyncio.to_thread(view.changes, self.name, self._modseq)
                    self._apply(changed, gone, top)
            except (KeyError, LeiStoreError) as e:
                self._stale = True
                if isinstance(e, ResyncNeeded):  # the feed was rebuilt: this mailbox is another now
                    self.server.forget(self.name)
                raise MailboxNotFound(self.name) from None

    def _apply(self, members: list[Member], gone: list[int], top: int, first: bool = False) -> None:
        new = [m.oidbin for m in members if m.uid not in self._msgs]
        facts = self.server.view.facts(new) if new else {}
        deleted = self.server.deleted.get(self.name, set())
        for m in members:
            old = self._msgs.get(m.uid)
            fact = facts.get(m.oidbin) or (MessageFacts(int(old.internal_date.timestamp()), old._tid) if old else None)
            self._msgs[m.uid] = self._message(m, fact, deleted)
            self._uid_of[m.oidbin] = m.uid
        for uid in gone:
            msg = self._msgs.pop(uid, None)
            if msg is not None:
                self._uid_of.pop(msg.oidbin, None)
                deleted.discard(uid)
            if not first:
                self._gone.append((top, uid))
        self._modseq = top

    def _message(self, m: Member, fact: MessageFacts | None, deleted: set[int]) -> Message:
        flags = _flags_of(m.kw)
        if m.uid in deleted:
            flags = flags | {Deleted}
        when = datetime.fromtimestamp(fact.ts if fact else 0, timezone.utc)
        return Message(m.uid, when, flags, oidbin=m.oidbin, modseq=m.modseq, server=self.server,
                       tid=fact.tid if fact else 0)

    def set_deleted(self, uids: Iterable[int], on: bool) -> None:
        """\\Deleted is the server's: kept per mailbox until EXPUNGE."""
        deleted = self.server.deleted.setdefault(self.name, set())
        for uid in uids:
            msg = self._msgs.get(uid)
            if msg is None:
                continue
            (deleted.add if on else deleted.discard)(uid)
            flags = msg.permanent_flags | {Deleted} if on else msg.permanent_flags - {Deleted}
            msg.permanent_flags = frozenset(flags)

    async def update_selected(self, selected: SelectedMailbox, *, wait_on: Event | None = None) -> SelectedMailbox:
        if wait_on is not None:
            await wait_on.or_event(self._updated).wait()
        await self.refresh()
        since = selected.mod_sequence
        selected.mod_sequence = self._modseq
        if since is None:
            selected.add_updates(list(self._msgs.values()), [])
        elif since >= (self._modseq or 0):  # nothing new: most commands of a busy client
            selected.add_updates([], [])
        else:
            updated = [m for m in self._msgs.values() if m.modseq > since]
            selected.add_updates(updated, [uid for ms, uid in self._gone if ms > since])
        return selected

    async def snapshot(self) -> MailboxSnapshot:
        await self.refresh()
        claimed, self._claimed = self._claimed, 0
        box = await asyncio.to_thread(self.server.view.mailbox, self.name)
        if box is None:
            raise MailboxNotFound(self.name)
        unseen, first_unseen = 0, None
        for seq, uid in enumerate(sorted(self._msgs), 1):
            if Seen not in self._msgs[uid].permanent_flags:
                unseen += 1
                first_unseen = first_unseen or seq
        return MailboxSnapshot(self.mailbox_id, self.readonly, self.uid_validity, self.permanent_flags,
                               self.session_flags, len(self._msgs), box.recent + claimed, unseen, first_unseen,
                               box.uidnext)

    async def claim_recent(self, selected: SelectedMailbox) -> None:
        """At SELECT: this session takes the mailbox's recent messages. pymap asks for the
        snapshot next, whose RECENT must count them although the store no longer does."""
        self._claimed = 0
        await self.refresh()
        for uid in await asyncio.to_thread(self.server.view.claim_recent, self.name):
            if uid in self._msgs:
                selected.session_flags.add_recent(uid)
                self._claimed += 1

    async def cleanup(self) -> None:
        pass

    # -- single messages (pymap's defaults; the session batches whole commands) ---------------
    async def get(self, uid: int, cached_msg: CachedMessage) -> Message:
        return self.current(cached_msg)

    def current(self, cached_msg: CachedMessage) -> Message:
        """The message as it is now; expunged when it has left the mailbox since the session
        last looked."""
        msg = self._msgs.get(cached_msg.uid)
        if msg is not None:
            return msg
        if isinstance(cached_msg, Message):
            return cached_msg.gone()
        raise IndexError(cached_msg.uid)

    async def match(self, query: str) -> set[int]:
        """The UIDs of this mailbox's members that lei QUERY finds."""
        try:
            blobs = await asyncio.to_thread(self.server.view.search, query)
        except LeiStoreError as e:
            raise _refused(e) from None
        return {uid for oid in blobs if (uid := self._uid_of.get(oid)) is not None}

    def oids(self, uids: Iterable[int]) -> list[bytes]:
        return [self._msgs[u].oidbin for u in uids if u in self._msgs]

    def uid_of(self, oidbin: bytes) -> int | None:
        return self._uid_of.get(oidbin)

    async def append(self, append_msg: AppendMessage, *, recent: bool = False) -> Message:
        kw = _words(append_msg.flag_set)
        try:
            uid = await self.server.write(self.server.view.append, bytes(append_msg.literal), kw, self.name)
        except LeiStoreError as e:
            raise AppendFailure(self.name, str(e).encode()) from None
        await self.refresh()
        if Deleted in append_msg.flag_set:
            self.set_deleted([uid], True)
        return self._msgs[uid]

    async def copy(self, uid: int, destination: MailboxData, *, recent: bool = False) -> int | None:
        moved = await self.copy_many([uid], destination)
        return moved[0][1] if moved else None

    async def copy_many(self, uids: Sequence[int], destination: MailboxData, *,
                        move: bool = False) -> list[tuple[int, int]]:
        """COPY (MOVE) messages to DESTINATION in one batch: labels given (and taken); UID pairs."""
        chosen = [(u, self._msgs[u].oidbin) for u in uids if u in self._msgs]
        oids = [oid for _, oid in chosen]
        if not oids:
            return []
        add = destination.label
        remove = self.label if move else None
        if move and destination.label is None:  # into All: archive, i.e. take the label off
            add = None
        if add or remove:
            await self.server.write(self.server.view.label, oids, add, remove)
        await destination.refresh()
        await self.refresh()
        return [(uid, dest) for uid, oid in chosen if (dest := destination.uid_of(oid)) is not None]

    async def move(self, uid: int, destination: MailboxData, *, recent: bool = False) -> int | None:
        moved = await self.copy_many([uid], destination, move=True)
        return moved[0][1] if moved else None

    async def update(self, uid: int, cached_msg: CachedMessage, flag_set: frozenset[Flag], mode: FlagOp) -> Message:
        await self.update_many([uid], flag_set, mode)
        return await self.get(uid, cached_msg)

    async def update_many(self, uids: Sequence[int], flag_set: frozenset[Flag], mode: FlagOp) -> None:
        """STORE on many messages: one keyword change through the writer, \\Deleted kept here."""
        words = _words(flag_set)
        if mode == FlagOp.REPLACE:
            change = VolatileChange(set_kw=words)
        elif mode == FlagOp.ADD:
            change = VolatileChange(add_kw=words)
        else:
            change = VolatileChange(remove_kw=words)
        oids = self.oids(uids)
        if change and oids and self._changes_anything(uids, words, mode):
            await self.server.write(self.server.view.change_keywords, oids, change)
            await self.refresh()
        if Deleted in flag_set or mode == FlagOp.REPLACE:
            self.set_deleted(uids, mode != FlagOp.DELETE and Deleted in flag_set)

    def _changes_anything(self, uids: Sequence[int], words: frozenset[str], mode: FlagOp) -> bool:
        for uid in uids:
            msg = self._msgs.get(uid)
            if msg is None:
                continue
            have = _words(msg.permanent_flags)
            if (mode == FlagOp.REPLACE and have != words or mode == FlagOp.ADD and not words <= have
                    or mode == FlagOp.DELETE and have & words):
                return True
        return False

    async def delete(self, uids: Iterable[int]) -> None:
        """EXPUNGE: the label off (a label mailbox), or the messages out of the store (All)."""
        oids = self.oids(uids)
        if oids:
            if self.label is None:
                await self.server.write(self.server.view.remove, oids)
            else:
                await self.server.write(self.server.view.label, oids, None, self.label)
        self.server.deleted.get(self.name, set()).difference_update(uids)
        await self.refresh()


class MailboxSet(MailboxSetInterface[MailboxData]):
    """The store's mailboxes (one set for the one user)."""

    def __init__(self, server: Server) -> None:
        self.server = server

    @property
    def delimiter(self) -> str:
        return names.DELIMITER

    async def _boxes(self) -> list[Mailbox]:
        return await asyncio.to_thread(self.server.view.mailboxes)

    async def set_subscribed(self, name: str, subscribed: bool) -> None:
        await self._manage("subscribe" if subscribed else "unsubscribe", name)

    async def list_subscribed(self) -> ListTree:
        return ListTree(self.delimiter).update("INBOX", *[b.name for b in await self._boxes() if b.subscribed])

    async def list_mailboxes(self) -> ListTree:
        return ListTree(self.delimiter).update("INBOX", *[b.name for b in await self._boxes()])

    async def get_mailbox(self, name: str) -> MailboxData:
        return await self.server.mailbox(name)

    async def add_mailbox(self, name: str) -> ObjectId:
        await self._manage("create", name)
        return (await self.server.mailbox(name)).mailbox_id

    async def delete_mailbox(self, name: str) -> None:
        await self._manage("delete", name)
        self.server.forget(name)

    async def rename_mailbox(self, before: str, after: str) -> None:
        await self._manage("rename", before, after)
        self.server.forget(before)

    async def _manage(self, action: str, name: str, new: str | None = None) -> None:
        try:
            await self.server.write(self.server.view.manage, action, name, new)
        except InputError as e:
            text = str(e)
            if "exists already" in text:
                raise MailboxConflict(new or name) from None
            if "no mailbox" in text:
                raise KeyError(name) from None
            raise NotAllowedError(text) from None


class Session(BaseSession[Message]):
    """One logged-in client. pymap's per-message loops become one writer batch per command."""

    def __init__(self, owner: str, config: Config, server: Server) -> None:
        super().__init__(owner)
        self._config = config
        self._set = MailboxSet(server)

    @property
    def config(self) -> Config:
        return self._config

    @property
    def mailbox_set(self) -> MailboxSet:
        return self._set

    async def select_mailbox(self, name: str, readonly: bool = False):
        """pymap's SELECT/EXAMINE, with a selected mailbox that skips its per-command comparison
        when nothing changed (serve/selected.py)."""
        mbx = await self._set.get_mailbox(name)
        selected = Selected(mbx.mailbox_id, readonly or mbx.readonly, PermanentFlags(mbx.permanent_flags),
                            CountedFlags(mbx.session_flags), selected_set=mbx.selected_set, lookup=name)
        if not selected.readonly:
            await mbx.claim_recent(selected)
        snapshot = await mbx.snapshot()
        return snapshot, await mbx.update_selected(selected)

    async def _selected_box(self, selected: SelectedMailbox) -> MailboxData:
        return await self._set.get_mailbox(selected.lookup)

    async def list_mailboxes(self, ref_name: str, filter_: str, subscribed: bool = False,
                             selected: SelectedMailbox | None = None):
        found, selected = await super().list_mailboxes(ref_name, filter_, subscribed, selected)
        special = {b.name: b.special_use for b in await self._set._boxes() if b.special_use}
        return [(name, delim, [*attrs, *([special[name][1:].encode()] if name in special else [])])
                for name, delim, attrs in found], selected

    async def update_flags(self, selected: SelectedMailbox, sequence_set: SequenceSet, flag_set: frozenset[Flag],
                           mode: FlagOp = FlagOp.REPLACE):
        if selected.readonly:
            return await super().update_flags(selected, sequence_set, flag_set, mode)
        mbx = await self._selected_box(selected)
        chosen = _picked(selected, sequence_set)
        await mbx.update_many([msg.uid for _, msg in chosen], selected.permanent_flags & flag_set, mode)
        messages = []
        for seq, cached in chosen:
            msg = await mbx.get(cached.uid, cached)
            if not msg.expunged:
                selected.session_flags.update(msg.uid, flag_set, mode)
            messages.append((seq, msg))
        return messages, await mbx.update_selected(selected)

    async def fetch_messages(self, selected: SelectedMailbox, sequence_set: SequenceSet, set_seen: bool):
        mbx = await self._selected_box(selected)
        chosen = _picked(selected, sequence_set)
        if set_seen and not selected.readonly:  # BODY[] without PEEK: \Seen on all of them at once
            await mbx.update_many([msg.uid for _, msg in chosen], frozenset({Seen}), FlagOp.ADD)
        return [(seq, await mbx.get(msg.uid, msg)) for seq, msg in chosen], await mbx.update_selected(selected)

    async def copy_messages(self, selected: SelectedMailbox, sequence_set: SequenceSet, mailbox: str):
        return await self._copy(selected, sequence_set, mailbox, move=False)

    async def move_messages(self, selected: SelectedMailbox, sequence_set: SequenceSet, mailbox: str):
        return await self._copy(selected, sequence_set, mailbox, move=True)

    async def _copy(self, selected: SelectedMailbox, sequence_set: SequenceSet, mailbox: str, *, move: bool):
        mbx = await self._selected_box(selected)
        try:
            dest = await self._set.get_mailbox(mailbox)
        except MailboxNotFound:
            raise MailboxNotFound(mailbox, try_create=True) from None
        uids = [msg.uid for _, msg in _picked(selected, sequence_set)]
        pairs = await mbx.copy_many(uids, dest, move=move)
        copy_uid = CopyUid(dest.uid_validity, pairs) if pairs else None
        return copy_uid, await mbx.update_selected(selected)

    async def append_messages(self, name: str, messages: Sequence[AppendMessage],
                              selected: SelectedMailbox | None = None):
        try:
            mbx = await self._set.get_mailbox(name)
        except MailboxNotFound:
            raise MailboxNotFound(name, try_create=True) from None
        uids = [(await mbx.append(m)).uid for m in messages]
        return AppendUid(mbx.uid_validity, uids), await self._load_updates(selected, mbx)

    async def search_mailbox(self, selected: SelectedMailbox, keys: frozenset[SearchKey]):
        """SEARCH with the text keys answered by the store's index (serve/search.py); content is
        read only for the keys it cannot answer."""
        mbx = await self._selected_box(selected)
        params = SearchParams(selected, disabled=self.config.disable_search_keys)
        found: dict[str, set[int]] = {}
        for key in _text_keys(keys):
            query = lei_query(key.value, key.filter_str)
            if query and query not in found:
                found[query] = await mbx.match(query)
        plan = Plan(keys, params, found.get)
        matched = []
        nothing = None if plan.requirement else LoadedMessage(None, plan.requirement, None)  # type: ignore[arg-type]
        for seq, cached in selected.messages.get_all(SequenceSet.all()):
            msg = mbx.current(cached)
            content = nothing or await msg.load_content(plan.requirement)
            if plan.matches(seq, msg, content):
                matched.append((seq, msg))
        return matched, await mbx.update_selected(selected)


def _picked(selected: SelectedMailbox, sequence_set: SequenceSet) -> list[tuple[int, CachedMessage]]:
    """The session's messages in SEQUENCE_SET with their sequence numbers, as pymap's
    get_all() gives them, without its walk over the whole mailbox: mbsync fetches a 10,000
    message mailbox one UID per command, and that walk made the pull quadratic."""
    messages = selected.messages
    cache, srt = messages._cache, messages._sorted
    if sequence_set.uid:
        seq_of = messages._seqs_cache
        uids = sequence_set.flatten(messages.max_uid) & messages._uids
        return sorted((seq_of[uid], cache[uid]) for uid in uids)
    seqs = sequence_set.flatten(len(srt))
    return [(seq, cache[srt[seq - 1]]) for seq in sorted(seqs) if 0 < seq <= len(srt)]


def _text_keys(keys: Iterable[SearchKey]) -> Iterable[SearchKey]:
    """The keys the index answers, however deep in OR, NOT and parentheses."""
    for key in keys:
        if key.value == b"KEYSET":
            yield from _text_keys(key.filter_key_set)
        elif key.value == b"OR":
            yield from _text_keys(key.filter_key_or)
        elif key.value in FIELDS:
            yield key


class Server:
    """What every session shares: the store, its mailboxes in memory, the server's \\Deleted
    marks, one lane for writes, and the feed follower that wakes selected mailboxes."""

    def __init__(self, root: Path) -> None:
        self.view = StoreView(root)
        self.deleted: dict[str, set[int]] = {}
        self._boxes: dict[str, MailboxData] = {}
        self._write_lane = asyncio.Lock()

    async def mailbox(self, name: str) -> MailboxData:
        key = names.canonical(name)
        box = self._boxes.get(key)
        if box is None:
            found = await asyncio.to_thread(self.view.mailbox, key)
            if found is None:
                raise MailboxNotFound(name)
            box = self._boxes[key] = MailboxData(self, found)
        return box

    async def preload(self) -> None:
        """Read All and INBOX before clients come: the first SELECT of All on 65,000 messages
        then answers in well under a second instead of loading them (3 s)."""
        for name in ("All", "INBOX"):
            with suppress(MailboxNotFound):
                await (await self.mailbox(name)).refresh()

    def forget(self, name: str) -> None:
        self._boxes.pop(names.canonical(name), None)

    async def write(self, fn, *args):
        """Run a store write in a thread, one at a time (the store has one writer anyway)."""
        async with self._write_lane:
            try:
                return await asyncio.to_thread(fn, *args)
            except StoreLockedError as e:
                raise _refused(e) from None
            finally:
                self.wake()  # every mailbox reads what the write changed before it answers again

    def wake(self) -> None:
        for box in list(self._boxes.values()):
            box.wake()

    async def follow(self) -> None:
        """Wake every mailbox on each change of the feed (inotify), for IDLE."""
        from lei_store.disk.follow import Follower

        while True:
            follower = Follower(self.view.lay.root, await asyncio.to_thread(self.view.highest_modseq))
            try:
                async for _change in follower:
                    self.wake()
            except ResyncNeeded:
                self.wake()
            finally:
                follower.close()


class Config(IMAPConfig):
    """pymap's settings, and ours: the store, the one user and the password."""

    def __init__(self, args: Namespace, *, store: str, user: str, password: str, **extra: Any) -> None:
        super().__init__(args, admin_key=os.urandom(32), **extra)
        self.store = Path(store)
        self.user = user
        self.password = password

    @property
    def backend_capability(self) -> BackendCapability:
        return BackendCapability(idle=True, object_id=True, multi_append=True)

    @property
    def greeting(self) -> bytes:
        return b"lei-store IMAP ready"  # pymap's own asks DNS for the host name

    @classmethod
    def parse_args(cls, args: Namespace) -> dict[str, Any]:
        return {**super().parse_args(args), "store": args.store, "user": args.user,
                "password": read_password(args.password_file) if args.password_file else args.password}


class Login(LoginInterface):
    """One user: the name and password the server was started with. A failed login is delayed
    (pymap's invalid_user_sleep) and logged."""

    def __init__(self, config: Config, server: Server) -> None:
        self.config = config
        self.server = server
        self._tokens = AllTokens(config)

    @property
    def tokens(self) -> AllTokens:
        return self._tokens

    async def authenticate(self, credentials: ServerCredentials) -> Identity:
        want = ClearIdentity(self.config.user, self.config.password)
        if not (hmac.compare_digest(credentials.authcid.encode(), self.config.user.encode())
                and credentials.verify(want)):
            _log.warning("lei-store imap: failed login for %r", credentials.authcid)
            await asyncio.sleep(max(self.config.invalid_user_sleep, 1.0))
            raise InvalidAuth()
        return Identity(self.config.user, self)

    async def authorize(self, authenticated: IdentityInterface, authzid: str) -> Identity:
        if authzid != authenticated.name:
            raise InvalidAuth()
        return Identity(authzid, self)


class Identity(IdentityInterface):
    """The logged-in user."""

    def __init__(self, name: str, login: Login) -> None:
        self._name = name
        self.login = login

    @property
    def name(self) -> str:
        return self._name

    @property
    def roles(self) -> frozenset[str]:
        return frozenset()

    @asynccontextmanager
    async def new_session(self) -> AsyncIterator[Session]:
        yield Session(self._name, self.login.config, self.login.server)

    async def new_token(self, *, expiration: datetime | None = None) -> str | None:
        return None

    async def get(self) -> UserMetadata:
        return UserMetadata(self.login.config, self._name)

    async def set(self, metadata: UserMetadata) -> int | None:
        raise NotSupportedError("users are not kept in the store")

    async def delete(self) -> None:
        raise NotSupportedError("users are not kept in the store")


class LeiStoreBackend(BackendInterface):
    """The pymap backend `leistore`: `pymap leistore --store DIR --user NAME --password-file F`
    serves a store as `lei-store serve-imap` does."""

    def __init__(self, config: Config) -> None:
        self._config = config
        self.server = Server(config.store)
        self._login = Login(config, self.server)
        self._status = HealthStatus()

    @property
    def login(self) -> Login:
        return self._login

    @property
    def config(self) -> Config:
        return self._config

    @property
    def status(self) -> HealthStatus:
        return self._status

    @classmethod
    def add_subparser(cls, name: str, subparsers: Any) -> ArgumentParser:
        parser: ArgumentParser = subparsers.add_parser(name, help="a lei-store store")
        parser.add_argument("--store", required=True, help="the store directory")
        parser.add_argument("--user", default=os.environ.get("USER") or "lei", help="the login name")
        parser.add_argument("--password-file", help="a file only its owner can read, holding the password")
        parser.set_defaults(password=None)
        return parser

    @classmethod
    async def init(cls, args: Namespace, **overrides: Any) -> tuple[LeiStoreBackend, Config]:
        from lei_store.serve import speedups

        speedups.install()
        config = Config.from_args(args, **overrides)
        return cls(config), config

    async def start(self, stack: AsyncExitStack) -> None:
        task = asyncio.create_task(self.server.follow())

        def stop() -> None:
            task.cancel()

        stack.callback(stop)


def read_password(path: str) -> str:
    """The password in PATH (its first line), refused unless only its owner may read it."""
    import stat

    try:
        st = os.stat(path)
        if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise InputError(f"{path}: others may read it (mode {stat.S_IMODE(st.st_mode):o}): "
                             "`chmod 600` it first")
        with open(path, encoding="utf-8") as f:
            password = f.readline().rstrip("\r\n")
    except OSError as e:
        raise InputError(f"{path}: cannot read the password file ({e.strerror})") from None
    if not password:
        raise InputError(f"{path}: the password file is empty")
    return password


class _Collected:
    """A response's pieces, gathered to be sent at once."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.parts.append(bytes(data))


def _whole_responses():
    """pymap's connection, sending each response in one write: pymap writes a response piece by
    piece as it computes it, and a client reading lines without blocking (imapclient's
    idle_check) took half a line for a broken connection."""
    from pymap.imap import IMAPConnection

    class WholeResponses(IMAPConnection):
        __slots__ = ()

        async def write_response(self, resp) -> None:
            collected = _Collected()
            try:
                await resp.async_write(collected)
                self.writer.write(b"".join(collected.parts))
                await self.writer.drain()
            except ConnectionError:
                pass

    return WholeResponses


class _SafeCommands:
    """pymap's command parser, with a command it cannot decode answered BAD: its search-key
    parser raised UnicodeDecodeError on a literal that is not UTF-8 (SEARCH CHARSET UTF-8),
    which dropped the connection."""

    def __init__(self, inner) -> None:
        self._inner = inner

    def parse(self, buf, params):
        from pymap.parsing.commands import InvalidCommand
        from pymap.parsing.exceptions import NotParseable
        from pymap.parsing.specials import Tag

        try:
            return self._inner.parse(buf, params)
        except UnicodeError:
            with suppress(NotParseable):
                params = params.copy(tag=Tag.parse(buf, params)[0].value)
            return InvalidCommand(params, NotParseable(buf)), buf[0:0]

    def __getattr__(self, name: str):
        return getattr(self._inner, name)


async def _listen(backend: LeiStoreBackend, config: Config, stack: AsyncExitStack) -> None:
    """pymap's IMAP service on config.host/port, with whole responses."""
    from contextlib import closing

    from proxyprotocol.reader import ProxyProtocolReader
    from pymap.context import connection_exit
    from pymap.imap.state import ConnectionState

    connection = _whole_responses()
    commands = _SafeCommands(config.commands)

    async def accept(reader, writer, sock_info) -> None:
        conn = connection(commands, config, reader, writer, sock_info)
        state = ConnectionState(backend.login, config)
        async with AsyncExitStack() as per_connection:
            connection_exit.set(per_connection)
            per_connection.enter_context(closing(conn))
            await conn.run(state)

    server = await asyncio.start_server(ProxyProtocolReader(config.proxy_protocol).get_callback(accept),
                                        host=config.host, port=config.port)
    await stack.enter_async_context(server)
    task = asyncio.create_task(server.serve_forever())
    stack.callback(task.cancel)


async def serve(args: Namespace, ready=None) -> None:
    """Run the IMAP server described by ARGS (pymap's own arguments plus ours) until cancelled;
    READY is called once it listens."""
    backend, config = await LeiStoreBackend.init(args, reject_dnsbl=False, max_append_len=MAX_APPEND)
    config.apply_context()
    async with AsyncExitStack() as stack:
        await backend.start(stack)
        await backend.server.preload()
        await _listen(backend, config, stack)
        if ready:
            ready()
        with suppress(asyncio.CancelledError):
            await asyncio.Event().wait()
