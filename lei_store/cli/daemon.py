"""The resident reader: answers q, lcat, blob, ls-label, mailboxes and changes for lei_store.cli.client,
as lei-daemon does for lei.

A fresh Python process spends far longer importing Xapian, msgspec and the read path than a
Message-ID lookup takes. The daemon pays for the imports once. For each request it forks a
child that takes the client's stdin/stdout/stderr, working directory, umask and environment,
runs the command exactly as the CLI would, and sends back its exit code. A child per request
keeps requests apart: nothing one query opens (SQLite, Xapian, git) outlives it, a crash
loses one answer and not the daemon, and each query sees the store as it is now.

The daemon exits after LEI_STORE_DAEMON_IDLE seconds without a request (default 900), at
`lei-store daemon-kill`, or when its own code changed on disk (the client then runs the
command itself and starts a fresh daemon).
"""

from __future__ import annotations

import fcntl
import gc
import marshal
import os
import select
import signal
import socket
import sys
import threading
import time

from lei_store.cli.protocol import DAEMON_COMMANDS, PROTOCOL, is_private

IDLE_SECONDS = 900.0
GO_SECONDS = 60.0  # see _client_says_go
_PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # lei_store/
_SUBPACKAGES = ("", "mail", "sources", "disk", "read", "write", "ops", "cli")


def code_stamp() -> list[tuple[str, int, int]]:
    """Name, mtime and size of every module of the package: a change means a stale daemon."""
    stamp = []
    for folder in (os.path.join(_PACKAGE, sub) for sub in _SUBPACKAGES):
        with os.scandir(folder) as entries:
            stamp += [(e.path, e.stat().st_mtime_ns, e.stat().st_size) for e in entries if e.name.endswith(".py")]
    return sorted(stamp)


def _preload() -> None:
    """Import the read path and build the read commands' parsers before the first request.

    pygit2 too: the store named in lei's config and blobs are read with it, and importing it
    in a worker costs ~100 ms."""
    from importlib import import_module

    from lei_store.cli import main as cli

    import_module("pygit2")
    for module in ("mail.addresses", "disk.blobs", "read.output", "read.query", "read.search",
                   "disk.mailboxes", "disk.feed"):
        import_module(f"lei_store.{module}")
    for command in DAEMON_COMMANDS:
        cli.parser_for(command)


def _prepare_folder(path: str) -> None:
    """Make the socket's folder, or refuse one the client would refuse too (is_private)."""
    folder = os.path.dirname(path)
    try:
        os.makedirs(folder, mode=0o700)
        os.chmod(folder, 0o700)  # whatever the umask took away
    except OSError:
        pass  # it exists (checked below), or cannot be made (likewise refused below)
    if not is_private(folder):
        raise SystemExit(f"lei-store daemon: {folder} must be private to its owner "
                         "(a directory, not a link, of mode 0700)")


def serve(path: str, idle: float = IDLE_SECONDS) -> None:
    """Answer requests on PATH until idle, killed or stale. Runs in the foreground."""
    _prepare_folder(path)
    lock = open(path + ".lock", "w")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return  # another daemon is starting or running
    # the pid is known from the start, so daemon-kill also stops a daemon still loading
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    with open(path + ".pid", "w") as f:
        f.write(f"{os.getpid()}\n")
    listener, spare = None, None
    try:
        _preload()
        stamp = code_stamp()
        try:
            os.unlink(path)  # a leftover (a dead daemon's socket, anything else): the lock says none runs
        except FileNotFoundError:
            pass
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(path)
        listener.listen(64)
        signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # the kernel reaps the workers
        gc.freeze()  # workers share the preloaded objects' pages instead of copying them at each collection
        warm_store: list[str] = []
        deaths = 0
        while deaths < 10:
            spare, line = _spawn_worker(listener, lock, stamp, warm_store)
            ready, _, _ = select.select([line], [], [], idle)
            news = line.recv(1) if ready else b"idle"
            if news == b"a":  # it took a request: start the next spare at once, warmed on its store
                warm_store, deaths = _store_hint(line) or warm_store, 0
                line.close()
                continue
            if news == b"":  # it died before taking one; ten in a row and the daemon gives up
                deaths += 1
                time.sleep(0.1)
                continue
            return  # idle, or stale ("s"): the finally shuts down, then the worker answers "stale"
    finally:
        _shut(path, listener, lock)
        if spare is not None:
            _stop(spare)


def _stop(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        pass


def _store_hint(line: socket.socket) -> list[str]:
    """The --store arguments of the request a worker just took (sent right after it)."""
    line.settimeout(0.5)
    try:
        return marshal.loads(line.recv(1 << 16))
    except (OSError, ValueError, EOFError):
        return []


def _store_args(argv: list[str], cwd: str) -> list[str]:
    for i, arg in enumerate(argv):
        if arg == "--store" and i + 1 < len(argv):
            return ["--store", os.path.join(cwd, argv[i + 1])]
        if arg.startswith("--store="):
            return ["--store", os.path.join(cwd, arg[len("--store="):])]
    return []


def _warm_up(store_args: list[str]) -> None:
    """A query that matches nothing, so the request's query runs in a warm process: the pages it
    touches are already this worker's own (~5 ms of copy-on-write faults otherwise)."""
    try:
        # _run, not main: a warm-up is not a query the store's metrics should count
        sys.modules["lei_store.cli.main"]._run([*store_args, "q", "-f", "jsonl", "mid:warm-up@lei-store.invalid"])
    except BaseException:  # no such store (yet), or anything else: only speed is at stake
        pass
    from lei_store import tally

    tally.counts.clear()


def _spawn_worker(listener: socket.socket, lock, stamp, warm_store: list[str]) -> tuple[int, socket.socket]:
    """Fork the next worker; it waits in accept() so a request never waits for a fork."""
    line, worker_end = socket.socketpair()
    pid = os.fork()
    if pid == 0:
        lock.close()  # the daemon's flock must end with the daemon, not with a busy worker
        line.close()
        _worker(listener, worker_end, stamp, warm_store)
    worker_end.close()
    return pid, line


def _worker(listener: socket.socket, line: socket.socket, stamp, warm_store: list[str]) -> None:
    """Take one request and become it; never returns."""
    try:
        signal.signal(signal.SIGTERM, lambda *_: os._exit(0))  # only while idle: masked below
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # a worker waits for its own children
        if not select.select([listener], [], [], 0)[0]:  # nobody waiting: warm up first
            _warm_up(warm_store)
        watch = _ClientWatch()
        conn, _ = listener.accept()
        # from here on the daemon's SIGTERM (meant for the spare) must not end a request
        signal.signal(signal.SIGTERM, lambda *_: None)
        stale = code_stamp() != stamp
        line.sendall(b"s" if stale else b"a")
        listener.close()
        request = _receive(conn)  # read it all even when stale: unread data would reset the connection
        if stale:
            line.recv(1)  # the daemon has let go of the socket and lock: a new one can start
            conn.sendall(b"stale\n")
            os._exit(0)
        line.sendall(marshal.dumps(_store_args(request[1], request[2])))
        line.close()
    except BaseException:
        os._exit(1)  # the client got no "+": it runs the command itself
    _child(conn, request, watch)


def _shut(path: str, listener: socket.socket | None, lock) -> None:
    """Stop answering: the socket and pid file go first, so new clients start a new daemon."""
    for leftover in (path, path + ".pid"):
        try:
            os.unlink(leftover)
        except FileNotFoundError:
            pass
    if listener is not None:
        listener.close()
    lock.close()


def _receive(conn: socket.socket) -> tuple:
    """The request tuple (the client's descriptors come later, with its "go")."""
    conn.settimeout(10)  # a client sends everything at once
    data = b""
    while len(data) < 4 or len(data) < 4 + int.from_bytes(data[:4], "big"):
        chunk = conn.recv(1 << 16)
        if not chunk:
            raise ConnectionError("request cut short")
        data += chunk
    request = marshal.loads(data[4:])
    if request[0] != PROTOCOL:
        raise ConnectionError("unknown request")
    return request


def _child(conn: socket.socket, request: tuple, watch: _ClientWatch) -> None:
    """Become the client's command once the client says "go"; never returns."""
    fds = _client_says_go(conn)
    if fds is None:
        os._exit(0)  # it gave up waiting and runs the command itself: not a byte from us
    code = 70
    try:
        _version, argv, cwd, umask, env = request
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
        os.chdir(cwd)
        os.umask(umask)
        os.environ.clear()
        os.environ.update(env)
        time.tzset()
        _reopen_stdio()
        conn.settimeout(None)
        watch.watch(conn)
        code = _run(argv)
    except Exception as e:  # e.g. the client's working directory is gone
        os.write(2, f"lei-store: {' '.join(str(e).split()) or type(e).__name__}\n".encode(errors="replace"))
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        try:
            conn.sendall(b"exit %d\n" % code)
        finally:
            os._exit(0)


def _client_says_go(conn: socket.socket) -> list[int] | None:
    """Offer to run the command ("+"); the client's stdin, stdout and stderr, which come with
    its "go", or None when it gave up waiting (it closed the socket).

    The descriptors travel only now, to a worker known to be running: sent with the request,
    they would wait in the socket's queue of a stopped daemon and keep, say, the client's
    stdout pipe open after the client answered in-process. The client says "go" as soon as it
    reads the "+", so the wait is short; its bound only ends a worker whose client was stopped
    in between."""
    try:
        conn.sendall(b"+")
        conn.settimeout(GO_SECONDS)
        data, ancdata, _flags, _addr = conn.recvmsg(1, socket.CMSG_SPACE(3 * 4))
    except OSError:
        return None
    fds = [fd for level, kind, payload in ancdata if (level, kind) == (socket.SOL_SOCKET, socket.SCM_RIGHTS)
           for fd in memoryview(payload).cast("i")]
    return fds if data == b"g" and len(fds) == 3 else None


def _run(argv: list[str]) -> int:
    from lei_store.cli.main import main

    try:
        return main(argv)
    except SystemExit as e:  # argparse: --help, usage errors
        if e.code is None or isinstance(e.code, int):
            return e.code or 0
        print(e.code, file=sys.stderr)
        return 1


def _reopen_stdio() -> None:
    """Text streams on the client's descriptors (the daemon's own point at /dev/null)."""
    sys.stdin = open(0, "r", encoding="utf-8", errors="surrogateescape", closefd=False)
    sys.stdout = open(1, "w", 1 if os.isatty(1) else -1, encoding="utf-8", errors="surrogateescape", closefd=False)
    sys.stderr = open(2, "w", 1, encoding="utf-8", errors="backslashreplace", closefd=False)


class _ClientWatch(threading.Thread):
    """Ends the process when the client goes away (^C, killed): the client sends nothing after
    its request, so end of file means it is gone. Started before the request arrives, since
    starting a thread costs a millisecond."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self._conn: socket.socket | None = None
        self._given = threading.Lock()
        self._given.acquire()
        self.start()

    def watch(self, conn: socket.socket) -> None:
        self._conn = conn
        self._given.release()

    def run(self) -> None:
        self._given.acquire()
        assert self._conn is not None  # given by watch() before the release
        try:
            self._conn.recv(1)
        except OSError:
            pass
        os._exit(130)


if __name__ == "__main__":
    serve(sys.argv[1], float(os.environ.get("LEI_STORE_DAEMON_IDLE", IDLE_SECONDS)))
