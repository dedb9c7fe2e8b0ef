"""The CPU-heavy per-message stage, run in worker processes during import.

Turns raw bytes into everything the single writer needs: the blob to commit
and its OID, the content hash, ids and references, overview record (ddd),
git author/subject and a serialised Xapian document (text terms + values
0-3). Nothing here touches the store, so it parallelises freely.
"""

from __future__ import annotations

import functools
import hashlib
import os
import queue
import subprocess
import sys
import threading
import time
from collections import deque
from multiprocessing.connection import Connection, Pipe
from typing import Iterable, Iterator

import msgspec
import xapian

from lei_store.disk.blobs import git_oid
from lei_store.disk.over import encode_ddd
from lei_store.errors import InputError, StorageError
from lei_store.sources.items import Item
from lei_store.write import searchidx
from lei_store.write.children import die_with_parent, reap, spawn


class Analysed(msgspec.Struct, frozen=True):
    """One message, ready for the writer."""

    oidbin: bytes
    blob: bytes
    chash: bytes
    mids: list[str]  # index ids, or the synthetic id of a draft
    refs: list[str]  # threading references
    list_ids: list[str]  # raw List-Id values: their terms are merged in if this copy is attached
    ts: int
    ts_tz: str
    ds: int
    ds_tz: str
    author: tuple[str, str]
    subject: str  # commit message subject
    subject_path: str
    ddd: bytes
    doc: bytes  # xapian.Document.serialise()
    problem: str = ""  # what could not be parsed, if anything


@functools.cache
def _termgenerator() -> xapian.TermGenerator:
    """One per process: building a TermGenerator per message costs more than using it."""
    from lei_store.mail.terms import new_termgenerator

    return new_termgenerator()


def list_id_terms(list_ids: list[str]) -> bytes:
    """The serialised G/XL terms lei adds to a message when another copy with these List-Ids
    is attached to it (rare, so built only then)."""
    from lei_store.mail.message import Message
    from lei_store.mail.terms import index_copy_list_ids

    if not list_ids:
        return b""
    doc = xapian.Document()
    index_copy_list_ids(doc, Message(b"".join(b"List-Id: %s\n" % v.encode("latin-1") for v in list_ids) + b"\n"))
    return doc.serialise() if doc.termlist_count() else b""


def analyse(raw: bytes, now: int | None = None) -> Analysed:
    """Analyse one message. Never raises for bad mail: it degrades to what parses."""
    from lei_store.mail.addresses import author_ident
    from lei_store.mail.contenthash import content_hash
    from lei_store.mail.dates import datestamp, timestamp
    from lei_store.mail.message import (
        Message,
        body_lines,
        commit_subject,
        crlf_bytes,
        overview_fields,
        strip_volatile_headers,
        subject_path,
        synthetic_mid,
    )
    from lei_store.mail.terms import index_message

    problems = []
    now = int(time.time()) if now is None else now
    try:
        blob = strip_volatile_headers(raw)
    except Exception as e:  # a header block we cannot even split: keep the bytes
        blob, problems = raw, [f"headers: {e}"]
    oidbin = git_oid(blob)
    msg = Message(raw)  # fields come from the input, as lei computes them

    def attempt(what, fn, default):
        try:
            return fn()
        except Exception as e:  # bad mail must still be stored; note what failed
            problems.append(f"{what}: {type(e).__name__}: {e}")
            return default

    parsed_ds = attempt("date", lambda: datestamp(msg), None)
    ds, ds_tz = parsed_ds or (now, "+0000")
    ts, ts_tz = attempt("received", lambda: timestamp(msg), None) or (now, "+0000")
    chash = attempt("content hash", lambda: content_hash(msg), hashlib.sha256(blob).digest())
    mids = attempt("message-id", msg.index_mids, [])
    mid0 = attempt("message-id", msg.mid0, "")
    refs = attempt("references", msg.thread_refs, [])
    fields = attempt("headers", lambda: overview_fields(msg), None)
    subject, from_, to, cc = fields if fields else ("", "", "", "")
    has_mid = bool(mids)
    if not has_mid:
        mids = [synthetic_mid(parsed_ds[0] if parsed_ds else 0, chash)]  # lei: time 0, not now
    doc = xapian.Document()
    searchidx.content_values(doc, ts, ds, crlf_bytes(blob))
    if fields is not None:
        attempt("terms", lambda: index_message(doc, msg, fields, _termgenerator()), None)
    ddd = encode_ddd(subject, from_, " ".join(f"<{r}>" for r in refs), to, cc,
                     oidbin.hex(), mid0, crlf_bytes(blob), attempt("lines", lambda: body_lines(msg), 0))
    return Analysed(
        oidbin=oidbin, blob=blob, chash=chash, mids=mids, refs=refs,
        list_ids=attempt("list-id", lambda: msg.header_raw("List-Id"), []),
        ts=ts, ts_tz=ts_tz, ds=ds, ds_tz=ds_tz,
        author=attempt("author", lambda: author_ident(msg), ("", "")),
        subject=attempt("subject", lambda: commit_subject(msg), "(no subject)"),
        subject_path=attempt("subject", lambda: subject_path(subject), ""),
        ddd=ddd, doc=doc.serialise(), problem="; ".join(problems),
    )


def _analyse_chunk(raws: list[tuple[bytes, int | None]]) -> bytes:
    return msgspec.msgpack.encode([analyse(r, now) for r, now in raws])


_DECODER = msgspec.msgpack.Decoder(list[Analysed])
_CHUNK = msgspec.msgpack.Decoder(list[tuple[bytes, int | None]])
CHUNK = 16  # messages a worker is given at once
# chunks in flight per worker: memory stays flat (~15 MB of answers at most), and the workers
# have work for the second or so the writer waits on each Xapian commit (65k: up to 0.8 s)
WINDOW = 16


def analysed(items: Iterable[Item], jobs: int) -> Iterator[tuple[Item, Analysed]]:
    """Each item with its analysis, in order, computed by JOBS worker processes with a bounded
    window in flight (memory stays flat). An InputError from the stream surfaces after the
    items read before it."""
    it = iter(items)
    if jobs <= 1:
        for item in it:
            yield item, analyse(item.raw, item.now)
        return
    window: deque[tuple[list[Item], int]] = deque()
    error = None
    sent = 0
    with Workers(jobs) as pool:
        while True:
            while error is None and len(window) < jobs * WINDOW:
                batch = []
                try:
                    for item in it:
                        batch.append(item)
                        if len(batch) >= CHUNK:
                            break
                except InputError as e:
                    error = e
                if not batch:
                    break
                pool.send(sent % jobs, msgspec.msgpack.encode([(i.raw, i.now) for i in batch]))
                window.append((batch, sent % jobs))
                sent += 1
                if len(batch) < CHUNK:
                    break
            if not window:
                break
            batch, worker = window.popleft()
            yield from zip(batch, _DECODER.decode(pool.receive(worker)), strict=True)
    if error:
        raise error


class Workers:
    """JOBS analysis workers, each a fresh interpreter (children.spawn) on a socket pair.
    Chunks go out in order from one feeder thread, so the writer never blocks on a worker whose
    answers it is not reading yet; each worker answers its chunks in the order it got them, and a
    reader thread per worker takes the answers in as they come, so a worker keeps going while the
    writer waits on Xapian (an answer is bigger than a socket's buffer: unread, it stops the worker)."""

    def __init__(self, jobs: int):
        self._conns: list[Connection] = []
        self._procs: list[subprocess.Popen] = []
        self._outbox: queue.SimpleQueue = queue.SimpleQueue()
        self._inboxes: list[queue.SimpleQueue] = []
        self._threads: list[threading.Thread] = []
        try:
            for _ in range(jobs):
                ours, theirs = Pipe()
                try:
                    self._procs.append(spawn(__name__, [str(os.getpid()), str(theirs.fileno())], theirs.fileno()))
                finally:
                    theirs.close()
                self._conns.append(ours)
        except OSError as e:  # no interpreter to start (a full process table, no memory)
            self.close(failed=True)
            raise StorageError(f"cannot start an analysis worker: {e}") from None
        self._feeder = threading.Thread(target=self._feed, name="analysis-feeder", daemon=True)
        self._threads.append(self._feeder)
        for conn in self._conns:
            inbox: queue.SimpleQueue = queue.SimpleQueue()
            self._inboxes.append(inbox)
            self._threads.append(threading.Thread(target=self._read, args=(conn, inbox), daemon=True))
        for thread in self._threads:
            thread.start()

    @staticmethod
    def _read(conn: Connection, inbox: queue.SimpleQueue) -> None:
        while True:
            try:
                inbox.put(conn.recv_bytes())
            except (EOFError, OSError):  # the worker exited (told to, or died): None says so
                inbox.put(None)
                return

    def _feed(self) -> None:
        while (job := self._outbox.get()) is not None:
            worker, data = job
            try:
                self._conns[worker].send_bytes(data)
            except OSError:  # the worker died: its receive() says so
                pass

    def send(self, worker: int, data: bytes) -> None:
        self._outbox.put((worker, data))

    def receive(self, worker: int) -> bytes:
        data = self._inboxes[worker].get()
        if data is None:
            raise StorageError("an analysis worker died (out of memory?)")
        return data

    def close(self, failed: bool = False) -> None:
        """Stop the workers (an empty chunk tells each to exit), then the threads, whose sockets
        are then closed. FAILED: the writer stopped mid-way, so the feeder may be stuck sending a
        chunk to a worker that has no room for its next answer: the workers are killed instead,
        which unblocks both."""
        if failed:
            for proc in self._procs:
                proc.kill()
        else:
            for worker in range(len(self._conns)):
                self._outbox.put((worker, b""))
        self._outbox.put(None)
        for thread in self._threads:
            thread.join()
        for conn in self._conns:
            conn.close()
        reap(self._procs)

    def __enter__(self) -> Workers:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close(failed=exc_type is not None)


def _work(parent: int, conn: Connection) -> None:
    """A worker's loop: analyse each chunk the writer sends, until an empty one or the socket's end."""
    die_with_parent(parent)
    while True:
        try:
            data = conn.recv_bytes()
        except (EOFError, OSError):
            os._exit(0)
        if not data:  # the writer is done
            os._exit(0)
        try:
            conn.send_bytes(_analyse_chunk(_CHUNK.decode(data)))
        except OSError:  # the writer is gone
            os._exit(0)
        except Exception as e:  # one line, not a traceback; the writer reports the worker's death
            print(f"lei-store: analysis worker: {type(e).__name__}: {e}", file=sys.stderr)
            os._exit(1)


if __name__ == "__main__":
    _work(int(sys.argv[1]), Connection(int(sys.argv[2])))
