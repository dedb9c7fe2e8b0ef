"""The saved-search subcommands, named as lei's: up, ls-search, edit-search, forget-search
(`q -o` saves a search; see ops/up.py). Thin: parse, call the library, print."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from lei_store.cli.common import PROG, emit_json, store_dir
from lei_store.errors import InputError, LeiStoreError

COMMANDS = ("up", "ls-search", "edit-search", "forget-search")


def _searches_for(args) -> list:
    from lei_store.disk import savedsearch
    from lei_store.ops import up

    if args.all is not None:
        if args.output:
            raise InputError("give OUTPUT or --all, not both")
        problems: list[str] = []
        every = savedsearch.all_searches(problems=problems)
        for line in problems:
            print(f"{PROG}: {line}", file=sys.stderr)
        args.problems = bool(problems)
        return [s for s in every if args.all in ("", "local") and not s.output.startswith("imap")]
    if not args.output:
        raise InputError("name a saved search's OUTPUT, or --all (see `lei-store ls-search`)")
    return [up.find(args.output)]


def _store_of(args, search):
    """--store, else the store the search was last refreshed on (its maxuid), else lei's."""
    from lei_store.paths import Layout, default_store_dir, existing_store

    if args.store or getattr(args, "global_store", None):
        return existing_store(store_dir(args))
    recorded = [Layout(Path(p)) for p in list(search.modseq) + list(search.maxuid)]
    found = next((lay for lay in recorded if lay.is_store()), None)
    return found or existing_store(default_store_dir())


def cmd_up(args) -> int:
    import contextlib

    from lei_store.ops import up

    searches = _searches_for(args)
    failed = 1 if getattr(args, "problems", False) else 0
    results = []
    with contextlib.ExitStack() as stack:
        refreshers: dict = {}
        for search in searches:
            try:
                layout = _store_of(args, search)
                if layout.root not in refreshers:
                    refreshers[layout.root] = stack.enter_context(up.Refresher(layout, lock_timeout=args.lock_timeout))
                stats = refreshers[layout.root].up(search)
            except LeiStoreError as e:
                if len(searches) == 1:
                    raise
                failed = failed or e.exit_code
                said = str(e)
                print(f"{PROG}: {said if str(search.path) in said else f'{search.path}: {said}'}", file=sys.stderr)
                continue
            results.append(stats)
            if not args.quiet:
                print(f"{PROG}: {stats.output}: {stats.written} written ({stats.matches} "
                      f"{'matches' if stats.whole else 'new matches'}), {stats.from_reader} keyword changes "
                      f"from the reader, {stats.to_reader} files renamed, {stats.gone} deleted by the reader",
                      file=sys.stderr)
    if args.json:
        emit_json(results)
    return failed


def cmd_ls_search(args) -> int:
    from lei_store.disk import savedsearch

    problems: list[str] = []
    every = savedsearch.all_searches(problems=problems)
    for line in problems:
        print(f"{PROG}: {line}", file=sys.stderr)
    found = [s for s in every if s.output.partition(":")[2].startswith(args.prefix or "")
             or s.output.startswith(args.prefix or "")]
    if args.format:
        recs = [savedsearch.listing(s) for s in found]
        if args.format == "json":
            emit_json(recs)
        else:
            for r in recs:
                emit_json(r)
        return 0
    end = "\0" if args.z else "\n"
    for s in found:
        sys.stdout.write(str(s.path) + end)
    return 0


def cmd_edit_search(args) -> int:
    """`git config --edit` on the search's file, as lei does; the result must still be a search."""
    from lei_store.disk import savedsearch
    from lei_store.git import command
    from lei_store.ops import up

    search = up.find(args.output)
    file = os.path.join(search.dir, savedsearch.CONFIG)
    code = subprocess.call(command(None, ["config", "--file", file, "--edit"]))
    if code:
        raise LeiStoreError(f"the editor failed (exit {code}); {file} is as the editor left it")
    savedsearch.load(Path(search.dir))
    return 0


def cmd_forget_search(args) -> int:
    from lei_store.ops import up
    from lei_store.paths import Layout

    layout = Layout(store_dir(args).absolute())
    search = up.find(args.output)
    up.forget(layout if layout.is_store() else None, search)
    if not args.quiet:
        print(f"{PROG}: forgot the saved search of {search.path} (its messages stay there)", file=sys.stderr)
    return 0


def add_parsers(add, common) -> None:
    """Register these subcommands with the main parser (ADD: its add_parser; COMMON: --store)."""
    s = add("up", parents=[common], help="refresh a saved search (or --all) with what arrived since",
            description="Refresh the Maildir or mbox a `q -o` search wrote: flags the mail reader changed there "
            "become keywords, keywords changed in the store are shown on its files, and messages that arrived "
            "since are written (never one written before, even if the reader deleted it). On-disk compatible "
            "with `lei up`.")
    s.add_argument("output", nargs="?", metavar="OUTPUT")
    s.add_argument("--all", nargs="?", const="", choices=["", "local", "remote"],
                   help="every saved search (remote ones are lei's IMAP outputs: not refreshed here)")
    s.add_argument("--lock-timeout", type=float, metavar="SECONDS",
                   help="how long to wait for another writer (default 30)")
    s.add_argument("--json", action="store_true", help="print what each refresh did as JSON")
    s.add_argument("-q", "--quiet", action="store_true")
    s.set_defaults(func=cmd_up)

    s = add("ls-search", parents=[common], help="list saved searches",
            description="Every saved search (lei's and ours), by output; PREFIX keeps those starting with it.")
    s.add_argument("prefix", nargs="?", metavar="PREFIX")
    s.add_argument("-f", "--format", choices=["json", "jsonl", "concatjson"])
    s.add_argument("-l", dest="format", action="store_const", const="json", help="long listing (--format=json)")
    s.add_argument("-z", "-0", dest="z", action="store_true", help="NUL-terminated lines")
    s.set_defaults(func=cmd_ls_search)

    s = add("edit-search", parents=[common], help="edit a saved search ($EDITOR on its file)",
            description="Runs `git config --edit` on the saved search's file, as lei does; the next `up` "
            "runs an edited query whole.")
    s.add_argument("output", metavar="OUTPUT")
    s.set_defaults(func=cmd_edit_search)

    s = add("forget-search", parents=[common], help="forget a saved search (its output stays)",
            description="Forget the saved search writing to OUTPUT; the messages already there stay.")
    s.add_argument("output", metavar="OUTPUT")
    s.add_argument("-q", "--quiet", action="store_true")
    s.set_defaults(func=cmd_forget_search)
