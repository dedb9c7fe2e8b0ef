"""Writing the sharded Xapian index ei15/<shard> (spec §6): values, keywords and labels.

Text terms come from terms.py (built in worker processes); this module owns
writing the shards: creating them, placing a message in shard `num % nshards` under
docid `num`, and changing the volatile metadata (K<keyword>, L<label> boolean terms).
What readers need of the shards (slots, opening, K/L terms) is shards.py.
"""

from __future__ import annotations

import time
from pathlib import Path

import msgspec
import xapian

from lei_store.disk.shards import BYTES, DT, THREADID, TS, UID, YYYYMMDD, open_checked, volatile_of
from lei_store.errors import StorageError
from lei_store.mail.keywords import VolatileChange
from lei_store.paths import Layout


def content_values(doc: xapian.Document, ts: int, ds: int, nbytes: int) -> None:
    """Value slots 0-3, which depend only on the message (§6.2)."""
    ser = xapian.sortable_serialise
    tm = time.gmtime(ds)
    doc.add_value(TS, ser(ts))
    doc.add_value(YYYYMMDD, ser(int(time.strftime("%Y%m%d", tm))))
    doc.add_value(DT, ser(int(time.strftime("%Y%m%d%H%M%S", tm))))
    doc.add_value(BYTES, ser(nbytes))


def create_shards(layout: Layout, count: int) -> None:
    """Create ei15/0..count-1 (shard 0 carries has_threadid=1) and ei15/misc."""
    layout.ei.mkdir(parents=True, exist_ok=True)
    layout.misc.mkdir(exist_ok=True)
    for i in range(count):
        db = xapian.WritableDatabase(str(layout.shard(i)), xapian.DB_CREATE_OR_OPEN)
        if i == 0 and not db.get_metadata("has_threadid"):
            db.set_metadata("has_threadid", "1")
        db.commit()
        db.close()


def shard_paths(layout: Layout) -> list[Path]:
    return [layout.shard(i) for i in range(layout.shard_count())]


class VolatileState(msgspec.Struct, array_like=True):
    """A message's keywords and labels after a change (for the journal)."""

    num: int
    kw: list[str]
    labels: list[str]
    kw_changed: bool = True  # False when only labels changed: Maildir copies are left alone


class ShardWriters:
    """Writable handles on shards, in this process. Message `num` lives in shard num % len(paths)."""

    def __init__(self, paths: list[Path], *, sync: bool = True):
        self.count = len(paths)
        flags = 0 if sync else xapian.DB_NO_SYNC
        self.dbs = [open_checked(p, writable=True, flags=flags) for p in paths]  # created only by create_shards
        self.changed = 0  # documents whose keywords/labels changed since the last commit
        self.changes: dict[int, VolatileState] = {}  # num -> its new state, for the journal

    def shard_of(self, num: int) -> xapian.WritableDatabase:
        return self.dbs[num % self.count]

    def add(self, num: int, doc: xapian.Document | bytes, tid: int,
            keywords=frozenset(), labels=frozenset()) -> None:
        if isinstance(doc, bytes):
            doc = xapian.Document.unserialise(doc)
        doc.add_value(UID, xapian.sortable_serialise(num))
        doc.add_value(THREADID, xapian.sortable_serialise(tid))
        for kw in keywords:
            doc.add_boolean_term("K" + kw)
        for label in labels:
            doc.add_boolean_term("L" + label)
        self.shard_of(num).replace_document(num, doc)
        if keywords or labels:
            self.changes[num] = VolatileState(num, sorted(keywords), sorted(labels))

    def get(self, num: int) -> xapian.Document | None:
        try:
            return self.shard_of(num).get_document(num)
        except xapian.DocNotFoundError:
            return None

    def update_volatile(self, num: int, change: VolatileChange) -> bool:
        """Change a document's keywords/labels; True when anything changed."""
        doc = self.get(num)
        if doc is None:
            return False
        kws, labels = volatile_of(doc)
        new_kws, new_labels = change.apply(kws, labels)
        if new_kws == kws and new_labels == labels:
            return False
        for prefix, old, new in (("K", kws, new_kws), ("L", labels, new_labels)):
            for word in old - new:
                doc.remove_term(prefix + word)
            for word in new - old:
                doc.add_boolean_term(prefix + word)
        self.shard_of(num).replace_document(num, doc)
        self.changed += 1
        earlier = self.changes.get(num)
        kw_changed = new_kws != kws or (earlier is not None and earlier.kw_changed)
        self.changes[num] = VolatileState(num, sorted(new_kws), sorted(new_labels), kw_changed)
        return True

    def delete(self, num: int) -> None:
        try:
            self.shard_of(num).delete_document(num)
        except xapian.DocNotFoundError:
            pass
        self.changes.pop(num, None)

    def take_changes(self) -> list[VolatileState]:
        """Keyword/label states set since the last call."""
        out = list(self.changes.values())
        self.changes = {}
        return out

    def merge_terms(self, num: int, extra: bytes) -> None:
        """Add another copy's terms (its List-Ids, as lei does when it attaches a copy)."""
        doc = self.get(num)
        if doc is None or not extra:
            return
        copy = xapian.Document.unserialise(extra)  # keep a reference: its termlist points into it
        for term, wdf, positions in [(t.term, t.wdf, list(t.positer)) for t in copy.termlist()]:
            for pos in positions:
                doc.add_posting(term, pos, 1)
            if not positions:
                doc.add_term(term, wdf)
        self.shard_of(num).replace_document(num, doc)

    def commit(self) -> int:
        """Commit every shard; returns how many documents' keywords/labels changed."""
        for db in self.dbs:
            db.commit()
        changed, self.changed = self.changed, 0
        return changed

    def close(self) -> None:
        for db in self.dbs:
            db.close()
        self.dbs = []


# -- one writer process per shard ----------------------------------------------
# The parent sends typed requests; only Commit, TakeChanges and Close are answered (the others
# are streamed, and an error is reported at the next answer).

class Add(msgspec.Struct, tag=True):
    """Index a new message's document under its number."""
    num: int
    doc: bytes
    tid: int
    keywords: frozenset[str]
    labels: frozenset[str]


class Change(msgspec.Struct, tag=True):
    """Change a document's keywords and labels."""
    num: int
    change: VolatileChange


class Delete(msgspec.Struct, tag=True):
    """Drop a message's document."""
    num: int


class MergeTerms(msgspec.Struct, tag=True):
    """Add an attached copy's extra terms to a document."""
    num: int
    extra: bytes


class Commit(msgspec.Struct, tag=True):
    """Commit the shard; answered with how many documents' keywords/labels changed."""
    pass


class TakeChanges(msgspec.Struct, tag=True):
    """Hand over the keyword/label states set since the last call (for the journal)."""
    pass


class Close(msgspec.Struct, tag=True):
    """Commit nothing more and close the shard; answered."""
    pass


class Abort(msgspec.Struct, tag=True):
    """Exit at once, dropping everything uncommitted (a failed batch)."""
    pass


Request = Add | Change | Delete | MergeTerms | Commit | TakeChanges | Close | Abort


class Reply(msgspec.Struct):
    """A shard writer's answer to Commit, TakeChanges or Close, or the error it met."""
    ok: bool
    kind: str = ""  # when not ok: "damaged", "full" or "io" (which LeiStoreError to raise)
    message: str = ""
    changed: int = 0  # Commit: documents whose keywords/labels changed
    changes: list[VolatileState] = []  # TakeChanges


_requests = msgspec.msgpack.Decoder(Request)
_replies = msgspec.msgpack.Decoder(Reply)
_encode = msgspec.msgpack.encode


def _kind(e: Exception) -> str:
    """What a shard writer's error means, for the parent to raise the right LeiStoreError."""
    from lei_store.errors import DamagedStoreError, is_disk_full

    if isinstance(e, DamagedStoreError) or type(e).__name__ in ("DatabaseCorruptError", "DatabaseOpeningError",
                                                                 "DatabaseNotFoundError", "DatabaseFormatError"):
        return "damaged"
    return "full" if is_disk_full(str(e)) else "io"


def _error(reply: Reply) -> Exception:
    from lei_store.errors import DamagedStoreError, DiskFullError

    if reply.kind == "full":
        return DiskFullError(f"disk full: {reply.message}")
    return (DamagedStoreError if reply.kind == "damaged" else StorageError)(reply.message)


def _apply(writer: ShardWriters, req: Request) -> Reply | None:
    """Carry out one request; the reply the parent waits for, if it waits."""
    match req:
        case Add(num, doc, tid, keywords, labels):
            writer.add(num, doc, tid, keywords, labels)
        case Change(num, change):
            writer.update_volatile(num, change)
        case Delete(num):
            writer.delete(num)
        case MergeTerms(num, extra):
            writer.merge_terms(num, extra)
        case Commit():
            return Reply(True, changed=writer.commit())
        case TakeChanges():
            return Reply(True, changes=writer.take_changes())
        case Close():
            writer.close()
            return Reply(True)
    return None


def _serve(path: Path, sync: bool, conn, parent: int) -> None:
    """Child process: apply the parent's requests to one shard until told to close."""
    import os

    from lei_store.write.children import die_with_parent

    die_with_parent(parent)
    try:
        writer = ShardWriters([path], sync=sync)
    except Exception as e:  # reported to the parent at its next exchange, never as a traceback here
        kind = _kind(e)
        message = str(e) if kind == "damaged" else f"{path}: {type(e).__name__}: {e}"
        conn.send_bytes(_encode(Reply(False, kind, message)))
        os._exit(1)
    conn.send_bytes(_encode(Reply(True)))  # opened: the parent writes nothing before every shard says so
    # Every way out but Close is os._exit: letting `writer` be destroyed would commit the
    # uncommitted (unjournaled) changes, and on a full disk that commit throws from a C++
    # destructor, which aborts the process with a second line on stderr.
    while True:
        while not conn.poll(5):
            if os.getppid() != parent:  # the writer is gone: release the shard's lock
                os._exit(0)
        req = _requests.decode(conn.recv_bytes())
        if isinstance(req, Abort):
            os._exit(0)
        try:
            reply = _apply(writer, req)
        except Exception as e:  # reported at the next answer: the parent decides
            conn.send_bytes(_encode(Reply(False, _kind(e), f"{path}: {type(e).__name__}: {e}")))
            os._exit(1)
        if reply is not None:
            conn.send_bytes(_encode(reply))
            if isinstance(req, Close):
                return


class ShardProcesses:
    """The ShardWriters interface, with each shard written by its own process (as lei does):
    Xapian's C++ indexing then runs beside the main writer instead of inside it."""

    def __init__(self, paths: list[Path], *, sync: bool = True):
        import os
        from multiprocessing import get_context

        ctx = get_context("fork")
        self.count = len(paths)
        self._conns, self._procs = [], []
        for path in paths:
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=_serve, args=(path, sync, child, os.getpid()), name=f"shard[{path.name}]",
                               daemon=True)
            proc.start()
            child.close()
            self._conns.append(parent)
            self._procs.append(proc)
        try:
            self._gather()  # each shard opened, or the store is damaged before anything is written
        except BaseException:
            self.abort()
            raise

    def _send(self, num: int | None, req: Request) -> None:
        data = _encode(req)
        for conn in self._conns if num is None else [self._conns[num % self.count]]:
            try:
                conn.send_bytes(data)
            except (BrokenPipeError, OSError):
                raise _error(self._reply(conn)) from None

    def _reply(self, conn) -> Reply:
        try:
            return _replies.decode(conn.recv_bytes())
        except (EOFError, OSError):
            return Reply(False, "io", "a Xapian shard writer died")

    def _gather(self) -> list[Reply]:
        replies = [self._reply(conn) for conn in self._conns]
        for reply in replies:
            if not reply.ok:
                raise _error(reply)
        return replies

    def add(self, num: int, doc: bytes, tid: int, keywords=frozenset(), labels=frozenset()) -> None:
        self._send(num, Add(num, doc, tid, frozenset(keywords), frozenset(labels)))

    def update_volatile(self, num: int, change: VolatileChange) -> None:
        self._send(num, Change(num, change))

    def delete(self, num: int) -> None:
        self._send(num, Delete(num))

    def take_changes(self) -> list[VolatileState]:
        self._send(None, TakeChanges())
        return [c for reply in self._gather() for c in reply.changes]

    def merge_terms(self, num: int, extra: bytes) -> None:
        if extra:
            self._send(num, MergeTerms(num, extra))

    def commit(self) -> int:
        self._send(None, Commit())
        return sum(reply.changed for reply in self._gather())

    def abort(self) -> None:
        """Drop every uncommitted change: the writers exit without committing (the batch failed)."""
        for conn in self._conns:
            try:
                conn.send_bytes(_encode(Abort()))
            except OSError:
                pass
        self._join()

    def close(self) -> None:
        if not any(p.is_alive() for p in self._procs):
            return  # aborted (or died): nothing to close
        try:
            self._send(None, Close())
            self._gather()
        finally:
            self._join()

    def _join(self) -> None:
        for proc in self._procs:
            proc.join(timeout=60)
            if proc.is_alive():
                proc.kill()
