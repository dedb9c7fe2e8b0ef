"""The watch subcommands, named as lei's: add-watch, ls-watch, rm-watch; and watch-daemon, the
long-running process that follows them (ops/watch.py). Thin: parse, call the library, print."""

from __future__ import annotations

import sys

from lei_store.cli.common import PROG, store_layout

COMMANDS = ("add-watch", "ls-watch", "rm-watch", "watch-daemon")


def cmd_add_watch(args) -> int:
    from lei_store.ops import watch

    for spec in args.locations:
        loc = watch.add_watch(spec)
        if not args.quiet:
            print(f"{PROG}: watching {loc} (`lei-store watch-daemon` follows it)", file=sys.stderr)
    return 0


def cmd_ls_watch(args) -> int:
    from lei_store.ops import watch

    for loc in watch.watches():
        print(loc)
    return 0


def cmd_rm_watch(args) -> int:
    from lei_store.ops import watch

    for spec in args.locations:
        watch.rm_watch(spec)
    return 0


def cmd_watch_daemon(args) -> int:
    from lei_store.ops import watch

    return watch.run_daemon(store_layout(args))


def add_parsers(add, common) -> None:
    """Register these subcommands with the main parser (ADD: its add_parser; COMMON: --store)."""
    s = add("add-watch", parents=[common], help="watch Maildirs for new mail and flag changes",
            description="Record Maildirs to watch in lei's config (as `lei add-watch`); `lei-store watch-daemon` "
            "imports what arrives there and syncs flag renames as they happen.")
    s.add_argument("locations", nargs="+", metavar="LOCATION", help="DIR or maildir:DIR")
    s.add_argument("-q", "--quiet", action="store_true")
    s.set_defaults(func=cmd_add_watch)

    s = add("ls-watch", parents=[common], help="list watched Maildirs")
    s.set_defaults(func=cmd_ls_watch)

    s = add("rm-watch", parents=[common], help="stop watching Maildirs")
    s.add_argument("locations", nargs="+", metavar="LOCATION")
    s.set_defaults(func=cmd_rm_watch)

    s = add("watch-daemon", parents=[common], help="import watched Maildirs as they change (runs until SIGTERM)",
            description="Follows every watched Maildir (add-watch) with inotify: a delivered file is imported and a "
            "flag rename synced within a second; a start (or a restart) first catches up with whatever changed "
            "meanwhile, and every minute all are looked at again. One per store; stops cleanly on SIGTERM. "
            "Log lines go to stderr.")
    s.set_defaults(func=cmd_watch_daemon)
