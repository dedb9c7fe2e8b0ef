"""What every subcommand shares: its program name, the store it names, JSON and summary lines."""

from __future__ import annotations

import sys
from pathlib import Path

import msgspec

PROG = "lei-store"


def store_dir(args) -> Path:
    """The store a command is about: --store (before or after the command), else lei's."""
    from lei_store.paths import default_store_dir

    chosen = args.store or getattr(args, "global_store", None)
    return Path(chosen) if chosen else default_store_dir()


def emit_json(obj) -> None:
    sys.stdout.buffer.write(msgspec.json.encode(obj) + b"\n")


def store_layout(args):
    """The store to read: readers never create one and never import the writer."""
    from lei_store.paths import existing_store

    return existing_store(store_dir(args))


def parse_listen(text: str, default: str) -> tuple[str, int]:
    """--listen HOST:PORT (an IPv6 host in brackets) as (host, port); no host is 127.0.0.1."""
    from lei_store.errors import InputError

    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise InputError(f"--listen {text!r}: give HOST:PORT, e.g. {default}")
    return host.strip("[]") or "127.0.0.1", int(port)


def is_loopback(host: str) -> bool:
    """Whether HOST is only reachable from this machine (the servers' safe default)."""
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def done(stats, args, line) -> int:
    """The end of a long command: the stats as JSON with --json, a summary line unless --quiet."""
    if args.json:
        emit_json(stats)
    if not args.quiet:
        print(f"{PROG}: {line(stats)}", file=sys.stderr)
    return 0


def with_progress(args, what: str, run):
    """Run RUN(progress_callback) under a progress bar (shown on a terminal, never with --quiet)."""
    from lei_store.cli.progress import Progress

    bar = Progress(what, enabled=None if not args.quiet else False)
    try:
        return run(bar.advance)
    finally:
        bar.close()
