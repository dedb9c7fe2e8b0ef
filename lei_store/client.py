"""The `lei-store` entry point: read-only commands are answered by the resident reader.

Kept to the standard library's cheapest modules, because everything imported here is
paid on every `lei-store q` before any work starts. For q, lcat, blob and ls-label it
hands the command to lei_store.daemon over a Unix socket, passing its own stdin, stdout
and stderr (SCM_RIGHTS), working directory, umask and environment, and exits with the
code the daemon sends back. When there is no daemon it starts one for next time and runs
the command itself; so does every other command, and every command when
LEI_STORE_DAEMON=0. A daemon that does not take the request within
LEI_STORE_DAEMON_TIMEOUT seconds (stopped, swamped) is given up on the same way.
"""

from __future__ import annotations

import os
import stat  # free: os imports it
import sys

PROTOCOL = 2  # 2: the descriptors come with the client's "go", after the worker's "+"
DAEMON_COMMANDS = ("q", "lcat", "blob", "ls-label")


def command_of(argv: list[str]) -> str | None:
    """The subcommand named in argv (skipping a leading --store DIR), if any."""
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--store":
            i += 2
            continue
        if arg.startswith("--store="):
            i += 1
            continue
        return None if arg.startswith("-") else arg
    return None


def socket_path() -> str:
    """One daemon per user and per installation (two checkouts must not answer for each other)."""
    from zlib import crc32

    runtime = os.environ.get("XDG_RUNTIME_DIR")
    folder = os.path.join(runtime, "lei-store") if runtime else f"/tmp/lei-store-{os.getuid()}"
    install = os.path.dirname(os.path.abspath(__file__)) + "\0" + sys.executable
    return os.path.join(folder, f"reader-{crc32(install.encode()):08x}.sock")


def _ours(path: str, kind: int) -> os.stat_result | None:
    """PATH's own status (lstat: a link to something of ours is not ours) if it is a KIND
    (stat.S_IFDIR, stat.S_IFSOCK) owned by us."""
    try:
        st = os.lstat(path)
    except OSError:
        return None
    return st if stat.S_IFMT(st.st_mode) == kind and st.st_uid == os.getuid() else None


def is_private(folder: str) -> bool:
    """The socket's folder: a real directory of ours, mode exactly 0700. The one check, for
    the client before it sends anything and for the daemon before it listens."""
    st = _ours(folder, stat.S_IFDIR)
    return st is not None and stat.S_IMODE(st.st_mode) == 0o700


def is_our_socket(path: str) -> bool:
    """In a private folder, only a socket of ours may receive our descriptors and environment."""
    return _ours(path, stat.S_IFSOCK) is not None


def encode_request(argv: list[str]) -> bytes:
    import marshal

    umask = os.umask(0o22)
    os.umask(umask)
    body = marshal.dumps((PROTOCOL, argv, os.getcwd(), umask, dict(os.environ)))
    return len(body).to_bytes(4, "big") + body


def wait_seconds() -> float:
    """How long to wait for a worker to take a request before answering in-process.

    Only a stopped or swamped daemon takes this long (a spare worker answers in milliseconds),
    and giving up costs nothing but speed; a few seconds leave room for a loaded machine."""
    try:
        seconds = float(os.environ.get("LEI_STORE_DAEMON_TIMEOUT", "5"))
    except ValueError:
        return 5.0
    return seconds if 0 < seconds < 1e6 else 5.0  # not NaN, not a wait without end


def _ask_daemon(argv: list[str]) -> int | None:
    """The command's exit code from the daemon; None when the caller must run it itself."""
    import _socket  # not `socket`, nor `array` for the descriptors: each costs milliseconds to import

    path = socket_path()
    if len(path.encode()) > 100:  # sun_path limit
        return None
    folder = os.path.dirname(path)
    if not is_private(folder):  # e.g. someone else's folder (or link) in /tmp: never talk to it
        if not os.path.lexists(folder):
            _start_daemon(path)  # first use: the daemon makes the folder
        return None
    if not is_our_socket(path):
        _start_daemon(path)  # none yet, or a leftover the new daemon replaces
        return None
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        return _handshake(sock, path, argv)
    finally:
        sock.close()


def _handshake(sock, path: str, argv: list[str]) -> int | None:
    """Connect, send, and wait for the worker's "+", all within wait_seconds(); then say "go",
    with our stdin, stdout and stderr.

    The worker runs the command only once it has read "go": a client that gave up waiting
    just closes the socket, and a worker that takes the request late finds no "go" and quits,
    so the command never runs twice. Our descriptors never wait in a stopped daemon's queue."""
    import _socket
    import time

    deadline = time.monotonic() + wait_seconds()

    def within() -> None:  # every wait before "go" shares the one bound
        sock.settimeout(max(deadline - time.monotonic(), 0.001))

    try:
        within()
        sock.connect(path)
    except (FileNotFoundError, ConnectionRefusedError):
        _start_daemon(path)
        return None
    except OSError:  # e.g. a full backlog (EAGAIN): the daemon is stopped or swamped
        return None
    reply = b""
    try:
        within()
        sock.sendall(encode_request(argv))
        while not reply.startswith(b"+") and b"\n" not in reply:  # "+", or "stale\n" perhaps in pieces
            within()
            chunk = sock.recv(64)
            if not chunk:
                break
            reply += chunk
        if reply == b"+":
            fds = b"".join(fd.to_bytes(4, sys.byteorder) for fd in (0, 1, 2))  # three C ints
            sock.sendmsg([b"g"], [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, fds)])
            return _exit_code(sock)
    except OSError:  # timed out, or a closed stdin cannot be passed: nothing has run yet
        return None
    if reply == b"stale\n":  # the daemon's code changed on disk: it has quit
        _start_daemon(path)
    return None  # nothing ran: run the command here


def _exit_code(sock) -> int:
    """Wait, without a bound, for the exit code of the command the worker now runs (a long
    query is legitimate; the worker quits when we go away)."""
    sock.settimeout(None)
    reply = b""
    try:
        while chunk := sock.recv(64):
            reply += chunk
    except OSError:
        pass
    if reply.startswith(b"exit ") and reply[5:].strip().isdigit():
        return int(reply[5:])
    print("lei-store: the reader daemon stopped before answering (output may be incomplete)", file=sys.stderr)
    return 70


def _start_daemon(path: str) -> None:
    """Start `python -m lei_store.daemon PATH`, detached, for the next command."""
    pid = os.fork()
    if pid:
        os.waitpid(pid, 0)
        return
    try:
        os.setsid()
        if os.fork() == 0:
            null = os.open(os.devnull, os.O_RDWR)
            for fd in (0, 1, 2):
                os.dup2(null, fd)
            os.execv(sys.executable, [sys.executable, "-m", "lei_store.daemon", path])
    finally:
        os._exit(0)


def main() -> int:
    argv = sys.argv[1:]
    if command_of(argv) in DAEMON_COMMANDS and os.environ.get("LEI_STORE_DAEMON", "1") != "0":
        try:
            code = _ask_daemon(argv)
        except KeyboardInterrupt:
            return 130
        if code is not None:
            return code
    from .cli import main as run

    return run(argv)
