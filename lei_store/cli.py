"""The `lei-store` command: a thin layer over the library, with subcommands named like lei's.

Every error the library raises becomes one line on stderr and a non-zero exit.
"""

from __future__ import annotations

import argparse
import errno
import os
import sys
from pathlib import Path

import msgspec

from .errors import LeiStoreError

PROG = "lei-store"


def _store_dir(args) -> Path:
    from .paths import default_store_dir

    return Path(args.store) if args.store else default_store_dir()


def _emit_json(obj) -> None:
    sys.stdout.buffer.write(msgspec.json.encode(obj) + b"\n")


# -- subcommands ------------------------------------------------------------

def cmd_init(args) -> int:
    from .paths import record_store_dir
    from .store import Store

    root = Path(args.dir).absolute() if args.dir else _store_dir(args)
    store = Store.create(root)
    if args.dir:
        record_store_dir(store.root)  # as `lei init DIR` does
    print(f"{PROG}: store ready at {store.root} ({store.layout.shard_count()} shard(s))", file=sys.stderr)
    return 0


def cmd_import(args) -> int:
    from .importers import Source, resolve
    from .progress import Progress
    from .store import Store

    if not args.locations and not args.stdin:
        raise LeiStoreError("nothing to import: give a Maildir, mbox or .eml path, or --stdin")
    sources = [resolve(loc, args.in_format) for loc in args.locations]
    if args.stdin:
        sources.append(Source(args.in_format or "eml", None))
    store = Store.open(_store_dir(args), create=True)
    bar = Progress("importing", enabled=None if not args.quiet else False)
    with store.writer(lock_timeout=args.lock_timeout, jobs=args.jobs, rotate_bytes=args.rotate_bytes,
                      mail_sync=not args.no_mail_sync, use_keywords=not args.no_kw,
                      add_keywords=args.mods["+kw"], add_labels=args.mods["+L"],
                      progress=bar.advance) as writer:
        try:
            for source in sources:
                writer.import_source(source)
        finally:
            bar.close()
    _report(writer.stats, args)
    return 0


def _report(stats, args) -> None:
    if args.json:
        _emit_json(stats)
    if not args.quiet:
        rate = stats.messages / stats.seconds if stats.seconds else 0
        print(f"{PROG}: {stats.messages} messages read: {stats.added} new, {stats.attached} new copies, "
              f"{stats.duplicates} already stored, {stats.skipped} unchanged Maildir files skipped, "
              f"{stats.keywords_updated} keyword updates, {stats.problems} with unparseable parts "
              f"({stats.seconds:.1f}s, {rate:.0f} msgs/s)", file=sys.stderr)


def cmd_blob(args) -> int:
    from .store import Store

    store = Store.open(_store_dir(args))
    for oid in args.oids:
        data = store.read_blob(oid) if len(oid) == 40 else _read_abbrev(store, oid)
        if data is None:
            raise LeiStoreError(f"blob {oid} not found in {store.layout.all_git}")
        sys.stdout.buffer.write(data)
    return 0


def _read_abbrev(store, oid: str) -> bytes | None:
    try:
        return store.repo().revparse_single(oid).read_raw()
    except (KeyError, ValueError):
        return None


# -- argument parsing -------------------------------------------------------

def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--store", metavar="DIR",
                        help="the store directory (default: lei's, from leistore.dir or $XDG_DATA_HOME/lei/store)")
    p = argparse.ArgumentParser(prog=PROG, description="A git-backed mail archive store compatible with lei 1.9.")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)

    s = sub.add_parser("init", parents=[common], help="create a store (and record it in lei's config)")
    s.add_argument("dir", nargs="?", metavar="DIR")
    s.set_defaults(func=cmd_init)

    s = sub.add_parser("import", parents=[common], help="import Maildirs, mboxes and .eml files",
                       description="Import messages. LOCATION is a Maildir, an mbox "
                       "(mboxrd:, mboxo:, mboxcl:, mboxcl2: prefixes or -F; .gz/.bz2/.xz read), or an "
                       ".eml/.patch file. +kw:KEYWORD and +L:LABEL apply to newly stored messages.")
    s.add_argument("locations", nargs="*", metavar="LOCATION")
    s.add_argument("-F", "--in-format", metavar="FORMAT",
                   help="maildir, eml, mboxrd, mboxo, mboxcl or mboxcl2")
    s.add_argument("--stdin", action="store_true", help="read one message (or an mbox with -F) from stdin")
    s.add_argument("--no-kw", action="store_true", help="ignore keywords (flags) from the sources")
    s.add_argument("--no-mail-sync", action="store_true", help="do not record where messages came from")
    s.add_argument("--lock-timeout", type=float, metavar="SECONDS",
                   help="how long to wait for another writer (default 30)")
    s.add_argument("-j", "--jobs", type=int, metavar="N", help="worker processes (default: CPU count)")
    s.add_argument("--rotate-bytes", type=int, default=None, help=argparse.SUPPRESS)
    s.add_argument("--json", action="store_true", help="print what was done as JSON on stdout")
    s.add_argument("-q", "--quiet", action="store_true", help="no progress bar and no summary")
    s.set_defaults(func=cmd_import)

    s = sub.add_parser("blob", parents=[common], help="print a message blob by git OID")
    s.add_argument("oids", nargs="+", metavar="OID")
    s.set_defaults(func=cmd_blob)
    return p


def main(argv: list[str] | None = None) -> int:
    from .keywords import parse_modifiers

    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        argv, mods = parse_modifiers(argv)
        args = _parser().parse_args(argv)
        args.mods = mods
        if getattr(args, "rotate_bytes", None) is None and hasattr(args, "rotate_bytes"):
            from .epochs import ROTATE_BYTES

            args.rotate_bytes = int(os.environ.get("LEI_STORE_ROTATE_BYTES", ROTATE_BYTES))
        return args.func(args)
    except LeiStoreError as e:
        print(f"{PROG}: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted; everything read completely before it is stored", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 141
    except OSError as e:
        what = "disk full" if e.errno == errno.ENOSPC else e.strerror or str(e)
        where = f" ({e.filename})" if getattr(e, "filename", None) else ""
        print(f"{PROG}: {what}{where}", file=sys.stderr)
        return 74  # EX_IOERR


if __name__ == "__main__":
    sys.exit(main())
