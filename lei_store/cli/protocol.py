"""The resident reader's wire protocol and where it listens: shared by the client (lei_store.cli.client),
the daemon (lei_store.cli.daemon) and the CLI's daemon-pid/daemon-kill (lei_store.cli.daemonctl).

Kept to the standard library's cheapest modules: the client imports it on every run.
A request is a 4-byte length and a marshal'd (PROTOCOL, argv, cwd, umask, environ); the
worker answers "+", the client "go" with its three descriptors (SCM_RIGHTS), and the worker
finally "exit N". A worker that gets no "go" runs nothing.
"""

from __future__ import annotations

import os
import stat  # free: os imports it
import sys

PROTOCOL = 2  # 2: the descriptors come with the client's "go", after the worker's "+"
DAEMON_COMMANDS = ("q", "lcat", "blob", "ls-label", "mailboxes", "changes")


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
