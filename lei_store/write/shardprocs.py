"""Each Xapian shard written by its own process (as lei does), so Xapian's C++ indexing runs beside
the main writer instead of inside it: the requests and replies between the two, the child's loop,
and ShardProcesses, the ShardWriters interface the writer uses.

The children are fresh interpreters (children.spawn). Xapian's inverter is a tree of small strings
allocated and freed per term of every document; glibc's malloc spends a fifth of a shard writer's
time on it, so jemalloc is preloaded where it is installed (children.helper_env).
The parent sends typed requests; only Commit, TakeChanges and Close are answered (the others are
streamed, and an error is reported at the next answer).
"""

from __future__ import annotations

import os
import subprocess
import sys
from multiprocessing.connection import Connection, Pipe
from pathlib import Path

import msgspec

from lei_store.errors import StorageError
from lei_store.mail.keywords import VolatileChange
from lei_store.write.children import die_with_parent, reap, spawn
from lei_store.write.searchidx import ShardWriters, VolatileState


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


def _serve(path: Path, sync: bool, conn: Connection, parent: int) -> None:
    """Child process: apply the parent's requests to one shard until told to close."""
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
        try:
            req = _requests.decode(conn.recv_bytes())
        except EOFError:  # the writer closed its end without a word (it is failing): commit nothing
            os._exit(0)
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


def _spawn(path: Path, sync: bool) -> tuple[Connection, subprocess.Popen]:
    """A shard writer for PATH (children.spawn) on one end of a socket pair."""
    ours, theirs = Pipe()
    try:
        proc = spawn(__name__, [str(path), "1" if sync else "0", str(os.getpid()), str(theirs.fileno())],
                     theirs.fileno())
    finally:
        theirs.close()
    return ours, proc


class ShardProcesses:
    """The ShardWriters interface, with each shard written by its own process (as lei does):
    Xapian's C++ indexing then runs beside the main writer instead of inside it."""

    def __init__(self, paths: list[Path], *, sync: bool = True):
        self.count = len(paths)
        self._conns: list[Connection] = []
        self._procs: list[subprocess.Popen] = []
        try:
            for path in paths:
                conn, proc = _spawn(path, sync)
                self._conns.append(conn)
                self._procs.append(proc)
        except OSError as e:  # no interpreter to start (a full process table, no memory)
            self.abort()
            raise StorageError(f"cannot start a Xapian shard writer: {e}") from None
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
        if all(p.poll() is not None for p in self._procs):
            return  # aborted (or died): nothing to close
        try:
            self._send(None, Close())
            self._gather()
        finally:
            self._join()

    def _join(self) -> None:
        reap(self._procs)


def main(argv: list[str]) -> None:
    """The child's entry: PATH SYNC PARENT FD (see _spawn)."""
    path, sync, parent, fd = argv
    _serve(Path(path), sync == "1", Connection(int(fd)), int(parent))


if __name__ == "__main__":
    main(sys.argv[1:])
