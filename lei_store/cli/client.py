"""The `lei-store` entry point: read-only commands are answered by the resident reader.

Kept to the standard library's cheapest modules, because everything imported here is
paid on every `lei-store q` before any work starts. For q, lcat, blob, ls-label, mailboxes
and changes it
hands the command to lei_store.cli.daemon over a Unix socket, passing its own stdin, stdout
and stderr (SCM_RIGHTS), working directory, umask and environment, and exits with the
code the daemon sends back. When there is no daemon it starts one for next time and runs
the command itself; so does every other command, and every command when
LEI_STORE_DAEMON=0. A daemon that does not take the request within
LEI_STORE_DAEMON_TIMEOUT seconds (stopped, swamped) is given up on the same way.
"""

from __future__ import annotations

import os
import sys

from lei_store.cli.protocol import (
    DAEMON_COMMANDS,
    command_of,
    encode_request,
    is_our_socket,
    is_private,
    socket_path,
    wait_seconds,
)


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
    """Start `python -m lei_store.cli.daemon PATH`, detached, for the next command."""
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
            os.execv(sys.executable, [sys.executable, "-m", "lei_store.cli.daemon", path])
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
    if command_of(argv) != "serve-imap":
        # msgspec imports typing_extensions whenever it is installed (pymap, for serve-imap, brings
        # it): ~7 ms on every command that uses none of it. Marked absent, msgspec does without.
        sys.modules.setdefault("typing_extensions", None)  # type: ignore[arg-type]
    from lei_store.cli.main import main as run

    return run(argv)
