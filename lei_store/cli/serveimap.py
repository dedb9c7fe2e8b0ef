"""`lei-store serve-imap`: the store to IMAP clients, through pymap (lei_store/serve/imap.py).

Safe by default: it listens on 127.0.0.1; another address needs TLS (--cert/--key, clients
then log in after STARTTLS); one login, whose password comes from --password-file (refused
unless only its owner can read it) or from `git credential fill`, never from argv.
"""

from __future__ import annotations

import argparse
import os
import sys

from lei_store.cli.common import PROG, is_loopback, parse_listen, store_layout
from lei_store.errors import InputError

COMMANDS = ("serve-imap",)
DEFAULT_LISTEN = "127.0.0.1:1143"


def _git_credential(user: str, host: str, port: int) -> str:
    """The password git's credential helpers keep for imap://USER@HOST:PORT."""
    import subprocess

    query = f"protocol=imap\nhost={host}:{port}\nusername={user}\n\n"
    try:
        r = subprocess.run(["git", "credential", "fill"], input=query, capture_output=True, text=True,
                           timeout=60, env=dict(os.environ, GIT_TERMINAL_PROMPT="0"))
    except (OSError, subprocess.TimeoutExpired) as e:
        raise InputError(f"git credential fill failed ({e}): give --password-file") from None
    found = dict(line.split("=", 1) for line in r.stdout.splitlines() if "=" in line)
    if r.returncode != 0 or not found.get("password"):
        raise InputError(f"no password for imap://{user}@{host}:{port} from git credential: give --password-file, "
                         "or store one (`git credential approve`)")
    return found["password"]


def pymap_args(args, host: str, port: int, password: str) -> argparse.Namespace:
    """The arguments pymap's IMAP service and our backend read, as `pymap leistore` would parse."""
    return argparse.Namespace(
        host=[host], port=str(port), cert=args.cert, key=args.key, tls=bool(args.cert), debug=False,
        passlib_cfg=None, proxy_protocol=None, inherited_sockets=None, skip_services=[],
        store=str(store_layout(args).root), user=args.user, password=password, password_file=None)


def cmd_serve_imap(args) -> int:
    import asyncio
    import getpass
    import logging
    import signal

    args.user = args.user or getpass.getuser()
    host, port = parse_listen(args.listen, DEFAULT_LISTEN)
    if bool(args.cert) != bool(args.key):
        raise InputError("--cert and --key go together")
    if not is_loopback(host) and not args.cert:
        raise InputError(f"refusing to serve IMAP on {host} without TLS: give --cert FILE --key FILE, "
                         "or listen on 127.0.0.1")
    store_layout(args).root  # noqa: B018 (a missing store is reported before anything listens)
    from lei_store.serve.imap import read_password, serve

    password = read_password(args.password_file) if args.password_file else _git_credential(args.user, host, port)
    logging.basicConfig(level=logging.WARNING, format=f"{PROG} serve-imap: %(message)s", stream=sys.stderr)

    async def run() -> None:
        task = asyncio.ensure_future(serve(pymap_args(args, host, port, password), ready=_ready(args, host, port)))
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, task.cancel)
        try:
            await task
        except asyncio.CancelledError:
            pass

    try:
        asyncio.run(run())
    except OSError as e:
        raise InputError(f"cannot listen on {host}:{port}: {e.strerror or e}") from None
    return 0


def _ready(args, host: str, port: int):
    def say() -> None:
        tls = "STARTTLS" if args.cert else "no TLS (loopback)"
        print(f"{PROG}: serving {store_layout(args).root} over IMAP on {host}:{port}, user {args.user}, {tls}",
              file=sys.stderr, flush=True)
    return say


def add_parsers(add, common) -> None:
    s = add("serve-imap", parents=[common], help="serve the store to IMAP clients (pymap)",
            description="Serve the store's mailboxes (INBOX, every label, All) to IMAP clients: keywords are "
            "flags, UIDs are the store's own; STORE, COPY, MOVE, EXPUNGE, APPEND and CREATE/RENAME/DELETE go "
            "through the store's writer; IDLE clients see every change within a second. Listens on "
            f"{DEFAULT_LISTEN} by default; another address needs --cert/--key (STARTTLS).")
    s.add_argument("--listen", default=DEFAULT_LISTEN, metavar="HOST:PORT")
    s.add_argument("--cert", metavar="FILE", help="TLS certificate (PEM); clients log in after STARTTLS")
    s.add_argument("--key", metavar="FILE", help="its private key")
    s.add_argument("--user", help="the login name (default: yours)")
    s.add_argument("--password-file", metavar="FILE",
                   help="the password, in a file only you can read (default: git credential fill)")
    s.set_defaults(func=cmd_serve_imap)
