"""The `lei-store` command: a thin layer over the library, with subcommands named like lei's.

Every error the library raises becomes one line on stderr and a non-zero exit.
"""

from __future__ import annotations

import argparse
import os
import sys
from functools import lru_cache
from pathlib import Path

from lei_store.cli.common import PROG, done, emit_json, store_dir, store_layout, with_progress
from lei_store.cli.protocol import command_of
from lei_store.errors import (
    EX_SOFTWARE,
    DamagedStoreError,
    DiskFullError,
    LeiStoreError,
    QuotaExceededError,
    SkippedInputsError,
    StorePermissionError,
    from_os_error,
    is_disk_full,
)

COMMANDS = ("init", "import", "q", "lcat", "tag", "rm", "ls-mail-sync", "forget-mail-sync", "refresh-mail-sync",
            "export-kw", "reindex", "clone", "fetch", "fsck", "backup", "restore", "gc", "ls-label", "blob",
            "daemon-pid", "daemon-kill", "mailboxes", "mailbox", "changes", "watch", "quota", "metrics", "purge",
            "serve-imap", "serve-www", "up", "ls-search", "edit-search", "forget-search",
            "add-watch", "ls-watch", "rm-watch", "watch-daemon")


# -- subcommands ------------------------------------------------------------

def cmd_init(args) -> int:
    from lei_store.paths import record_store_dir
    from lei_store.write.store import Store

    root = Path(args.dir).absolute() if args.dir else store_dir(args)
    store = Store.create(root)
    if args.dir:
        record_store_dir(store.root)  # as `lei init DIR` does
    print(f"{PROG}: store ready at {store.root} ({store.layout.shard_count()} shard(s))", file=sys.stderr)
    return 0


def _sources(args):
    """The inputs named on the command line (and --stdin), each resolved and checked."""
    from lei_store.sources import Source, resolve

    named = args.locations if hasattr(args, "locations") else args.inputs
    sources = [resolve(loc, args.in_format) for loc in named]
    if args.stdin:
        sources.append(Source(args.in_format or "eml", None))
    return sources


def cmd_import(args) -> int:
    from lei_store.cli.progress import Progress
    from lei_store.ops.imports import Importer, ImportOptions
    from lei_store.sources import DEFAULT_MAX_SIZE
    from lei_store.write.store import Store
    from lei_store.write.writer import AddOptions

    if not args.locations and not args.stdin:
        raise LeiStoreError("nothing to import: give a Maildir, mbox or .eml path, or --stdin")
    sources = _sources(args)
    store = Store.open(store_dir(args), create=True)
    bar = Progress("importing", enabled=None if not args.quiet else False)
    add = AddOptions(use_keywords=not args.no_kw, keywords=args.mods.add_kw, labels=args.mods.add_labels,
                     record_sync=not args.no_mail_sync)
    opts = ImportOptions(add, max_size=args.max_size or DEFAULT_MAX_SIZE, on_skip=_skip_notices(),
                         progress_total=bar.expect)
    with store.writer(lock_timeout=args.lock_timeout, jobs=args.jobs, rotate_bytes=args.rotate_bytes,
                      batch_size=args.batch_size, progress=bar.advance) as writer:
        importer = Importer(writer, opts)
        try:
            for source in sources:
                importer.import_source(source)
        finally:
            bar.close()
    _report(writer.stats, args)
    if writer.stats.over_quota:
        q = writer.feed.usage if writer.feed else None
        limits = f" (limits: {q.max_bytes or 'no'} bytes, {q.max_messages or 'no'} messages)" if q else ""
        raise QuotaExceededError(f"quota reached: {writer.stats.over_quota} message(s) not stored{limits}; "
                                 "everything before the limit was stored")
    if writer.stats.rejected:
        raise SkippedInputsError(f"{writer.stats.rejected} input(s) skipped (named above); "
                                 "everything else was stored")
    return 0


SKIP_NOTICES = 20  # a Maildir full of junk must not bury the summary


def _skip_notices():
    """One line per skipped input on stderr, up to SKIP_NOTICES of them."""
    shown = 0

    def notice(where: str, why: str) -> None:
        nonlocal shown
        shown += 1
        if shown <= SKIP_NOTICES:
            print(f"{PROG}: skipped {where}: {why}", file=sys.stderr)
        elif shown == SKIP_NOTICES + 1:
            print(f"{PROG}: (further skipped inputs are counted, not listed)", file=sys.stderr)
    return notice


def _size(text: str) -> int:
    """A byte count with an optional K, M or G suffix (powers of 1024)."""
    units = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30}
    t = text.strip().lower().removesuffix("b")
    try:
        n = int(float(t[:-1]) * units[t[-1]]) if t and t[-1] in units else int(t)
    except (ValueError, OverflowError):
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (e.g. 64M)") from None
    if n <= 0 or n >= 1 << 63:
        raise argparse.ArgumentTypeError(f"the size must be positive and below 8 EiB, not {text!r}")
    return n


def _report(stats, args) -> None:
    if args.json:
        emit_json(stats)
    if not args.quiet:
        rate = stats.messages / stats.seconds if stats.seconds else 0
        print(f"{PROG}: {stats.messages} messages read: {stats.added} new, {stats.attached} new copies, "
              f"{stats.duplicates} already stored, {stats.skipped} unchanged Maildir files skipped, "
              f"{stats.renamed} renamed, {stats.keywords_updated} keyword updates, "
              f"{stats.problems} with unparseable parts, "
              f"{stats.rejected} skipped "
              f"({stats.seconds:.1f}s, {rate:.0f} msgs/s)", file=sys.stderr)


def cmd_blob(args) -> int:
    from lei_store.disk.blobs import BlobReader

    layout = store_layout(args)
    blobs = BlobReader(layout)
    for oid in args.oids:
        data = blobs.find(oid)
        if data is None:
            raise LeiStoreError(f"blob {oid} not found in {layout.all_git} nor in synced Maildirs")
        sys.stdout.buffer.write(data)
    return 0


def cmd_lcat(args) -> int:
    """Messages by Message-ID (<id>, mid:id) or blob:OID, with their keywords and labels."""
    from lei_store.disk.blobs import BlobReader
    from lei_store.read import output
    from lei_store.read.search import Reader

    layout = store_layout(args)
    blobs = BlobReader(layout)
    reader = Reader(layout.root)
    hits = []
    for arg in args.ids:
        if arg.startswith("blob:"):
            hits += reader.by_blob(arg[5:], blobs)
            continue
        mid = arg[4:] if arg.startswith("mid:") else arg
        hits += reader.by_mid(mid.strip().strip("<>"))
    if not hits:
        raise LeiStoreError(f"no message found for {' '.join(args.ids)}")
    if args.format == "text":
        output.write_text(hits, sys.stdout.buffer, blobs.read)
    else:
        output.write_json(hits, args.format, sys.stdout.buffer, pretty=args.pretty)
    return 0


def cmd_q(args) -> int:
    from lei_store.disk.blobs import BlobReader
    from lei_store.read import output, query
    from lei_store.read.search import Reader

    layout = store_layout(args)
    git_dir = layout.all_git
    raw = sys.stdin.read() if args.stdin else None
    text = query.rewrite_dates(raw, git_dir) if raw is not None else query.from_argv(args.query, git_dir)
    if not text.strip():
        raise LeiStoreError("no query given (use z:1.. to match everything)")
    read_blob = BlobReader(layout).read
    reader = Reader(layout.root)

    def run_search():
        reader.db.reopen()  # q -o may have taken the reader's flags in since it was opened
        return reader.search(text, sort=args.sort, reverse=args.reverse, offset=args.offset,
                             limit=args.limit, threads=args.threads, dedupe=args.dedupe)

    fmt = args.format
    out = sys.stdout.buffer
    if args.output and args.output != "-":
        _q_to_mail(args, layout, raw, lambda: list(run_search()), read_blob)
        return 0
    hits = run_search()
    if fmt in output.MAIL_FORMATS:
        if fmt == "maildir":
            raise LeiStoreError("-f maildir needs -o DIR")
        output.write_mail(hits, fmt, None, read_blob, False, stream=out)
    elif fmt == "text":
        output.write_text(hits, out, read_blob)
    elif fmt == "summary":
        output.write_summary(hits, out)
    else:
        output.write_json(hits, fmt, out, pretty=args.pretty)
    out.flush()
    return 0


def _q_to_mail(args, layout, raw_stdin: str | None, run_search, read_blob) -> None:
    """q -o: the messages written, and the search saved for `up` (as lei does unless --no-save)."""
    from lei_store.ops import up
    from lei_store.read import output

    spec = args.output
    if args.format in output.MAIL_FORMATS and spec.partition(":")[0] not in output.MAIL_FORMATS:
        spec = f"{args.format}:{spec}"
    # a --stdin query is kept as text, its dates unresolved, ending in a newline (see ops/up.py)
    terms = [raw_stdin if raw_stdin.endswith("\n") else raw_stdin + "\n"] if raw_stdin is not None else args.query
    options = {"threads": ["1"] if args.threads else [], "limit": [str(args.limit)] if args.limit != 10000 else [],
               "dedupe": [args.dedupe] if args.dedupe != "content" else []}
    search = up.new_search(terms, spec, options)
    save = args.save and _saveable(search.path)
    up.run_and_save(layout, search, run_search, read_blob, args.augment, save=save,
                    import_before=args.import_before)


def _saveable(path: Path) -> bool:
    """A FIFO, a terminal or /dev/stdout is written to, but there is nothing to refresh."""
    import stat

    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return True
    return stat.S_ISDIR(mode) or stat.S_ISREG(mode)


def cmd_ls_label(args) -> int:
    from lei_store.read.search import Reader

    for label in Reader(store_layout(args).root).all_labels():
        print(label)
    return 0


def cmd_daemon_pid(args) -> int:
    from lei_store.cli.daemonctl import pid_of
    from lei_store.cli.protocol import socket_path

    pid = pid_of(socket_path())
    if pid is None:
        return 1
    print(pid)
    return 0


def cmd_daemon_kill(args) -> int:
    from lei_store.cli.daemonctl import kill
    from lei_store.cli.protocol import socket_path

    kill(socket_path())
    return 0


def _tag_like(args, action: str) -> int:
    from lei_store.ops import tagging

    layout = store_layout(args)
    text = None
    if args.query:
        from lei_store.read import query

        text = query.rewrite_dates(args.query, layout.all_git)  # one query text, as q --stdin reads it
    selection = tagging.Selection(_sources(args), text)
    stats = (tagging.tag(layout.root, selection, args.mods, lock_timeout=args.lock_timeout) if action == "tag"
             else tagging.rm(layout.root, selection, lock_timeout=args.lock_timeout))
    if args.json:
        emit_json(stats)
    if not args.quiet:
        verb = "changed" if action == "tag" else "removed"
        print(f"{PROG}: {stats.matched} messages matched, {stats.changed} {verb}, "
              f"{stats.unimported} not in the store, {stats.exported} Maildir files renamed", file=sys.stderr)
    if stats.unimported and not stats.matched:
        print(f"{PROG}: none of the {stats.unimported} given messages is in the store", file=sys.stderr)
        return 1
    return 0


def cmd_tag(args) -> int:
    return _tag_like(args, "tag")


def cmd_rm(args) -> int:
    if args.mods:
        raise LeiStoreError("rm takes no +kw:/+L: modifiers")
    return _tag_like(args, "rm")


def _mail_sync(args, readonly: bool = False):
    from lei_store.disk.mailsync import MailSync

    layout = store_layout(args)
    return layout, MailSync(layout.mail_sync, layout.mail_sync_lock, readonly=readonly)


def cmd_ls_mail_sync(args) -> int:
    from lei_store.ops import folders

    _layout_, sync = _mail_sync(args, readonly=True)
    where = "local" if args.local else "remote" if args.remote else None
    end = "\0" if args.z else "\n"
    for loc in folders.ls(sync, args.pattern, where):
        sys.stdout.write(loc + end)
    return 0


def cmd_forget_mail_sync(args) -> int:
    from lei_store.ops import folders

    _layout_, sync = _mail_sync(args)
    try:
        for loc in folders.forget(sync, args.folders):
            print(f"{PROG}: forgot {loc}", file=sys.stderr)
    finally:
        sync.close()
    return 0


def _folder_report(results, args, verb) -> None:
    if args.json:
        emit_json(results)
    for r in results:
        print(f"{PROG}: {r.folder}: {verb(r)}", file=sys.stderr)


def cmd_refresh_mail_sync(args) -> int:
    from lei_store.ops import folders

    if not args.folders and not args.all:
        raise LeiStoreError("name the folders to refresh, or --all")
    results = folders.refresh(store_layout(args), args.folders or None)
    _folder_report(results, args, lambda r: f"{r.removed} stale entries removed, {r.added} added")
    return 0


def cmd_export_kw(args) -> int:
    from lei_store.ops import folders

    if not args.folders and args.all is None:
        raise LeiStoreError("name the folders to export to, or --all[=local|remote]")
    where = None if args.all in (None, "all") else args.all
    results = folders.export_kw(store_layout(args), args.folders or None, where=where, mode=args.mode)
    _folder_report(results, args, lambda r: f"{r.exported} messages updated")
    return 0


def _indexed(what: str):
    def line(s) -> str:
        rewritten = (f"; the source rewrote epoch(s) {', '.join(map(str, s.epochs_rewritten))} (gc --expunge): "
                     "re-indexed from git" if s.epochs_rewritten else "")
        return (f"{what}: indexed {s.messages} messages from {s.commits} new commits ({s.removed} removed) "
                f"in {s.seconds:.1f}s{rewritten}")

    return line


def cmd_reindex(args) -> int:
    from lei_store.ops.reindex import reindex

    stats = with_progress(args, "reindexing", lambda progress: reindex(
        store_dir(args), shards=args.shards, jobs=args.jobs, progress=progress, lock_timeout=args.lock_timeout))
    return done(stats, args, lambda s: (
        f"reindexed {s.messages} messages from {s.commits} commits ({s.removed} removed, "
        f"{s.keywords_restored} keyword/label states restored{', resumed' if s.resumed else ''}) "
        f"in {s.seconds:.1f}s" + (f"; first, {s.journal_rebuilt}" if s.journal_rebuilt else "")))


def cmd_clone(args) -> int:
    from lei_store.ops.replica import clone

    stats = with_progress(args, "indexing", lambda progress: clone(
        args.src, Path(args.dest), jobs=args.jobs, progress=progress))
    return done(stats, args, _indexed(f"cloned {args.src} into {args.dest}"))


def cmd_fetch(args) -> int:
    from lei_store.ops.replica import fetch

    stats = with_progress(args, "indexing", lambda progress: fetch(store_dir(args), jobs=args.jobs,
                                                                    progress=progress))
    return done(stats, args, _indexed("fetched"))


def cmd_fsck(args) -> int:
    from lei_store.ops.fsck import check, format_report

    if args.repair:
        from lei_store.ops.repair import repair

        before, report, notes = repair(store_dir(args), jobs=args.jobs)
        if notes:
            print(f"{PROG}: found {before.counts.get('errors', 0)} errors", file=sys.stderr)
        for note in notes:
            print(f"{PROG}: {note}", file=sys.stderr)
    else:
        report = check(store_dir(args), quick=args.quick)
    if args.json:
        emit_json(report)
    else:
        sys.stdout.write(format_report(report, verbose=args.verbose) + "\n")
    return 0 if report.ok else 2


def cmd_backup(args) -> int:
    from lei_store.ops.backup import backup

    stats = backup(store_dir(args), Path(args.file), lock_timeout=args.lock_timeout)
    return done(stats, args, lambda s: (
        f"backed up {s.epochs} epoch(s), {s.commits} commits, {s.journal_entries} journal entries and "
        f"{s.sync_folders} synced folders to {s.file} ({s.bytes} bytes, {s.seconds:.1f}s)"))


def cmd_restore(args) -> int:
    from lei_store.ops.backup import restore

    stats = restore(Path(args.file), Path(args.dir), jobs=args.jobs)
    return done(stats, args, lambda s: (
        f"restored {s.epochs} epoch(s), {s.commits} commits into {s.store} and "
        f"indexed {s.messages} messages ({s.seconds:.1f}s)"))


def cmd_gc(args) -> int:
    from lei_store.ops.gc import gc

    stats = gc(store_dir(args), lock_timeout=args.lock_timeout, expunge=args.expunge)
    return done(stats, args, lambda s: (
        f"gc: {s.bytes_before} -> {s.bytes_after} bytes (git {s.git_before} -> {s.git_after}, "
        f"xapian {s.xapian_before} -> {s.xapian_after}, sqlite {s.sqlite_before} -> {s.sqlite_after}) "
        + (f"{s.blobs_expunged} purged blobs expunged from epochs {s.epochs_rewritten} " if args.expunge else "")
        + f"in {s.seconds:.1f}s"))


# -- argument parsing -------------------------------------------------------

class _Unused:
    """Stands in for the parsers of subcommands not being run: building them all costs start-up time."""

    def add_argument(self, *a, **kw) -> None:
        pass

    def set_defaults(self, **kw) -> None:
        pass


@lru_cache(maxsize=None)
def parser_for(command: str | None) -> argparse.ArgumentParser:
    """The parser for argv naming COMMAND; cached, so the daemon builds its read commands' once."""
    return _parser(command if command in COMMANDS else None)


class _Parser(argparse.ArgumentParser):
    """argparse, with a usage mistake exiting 1 as the README's table says (argparse's own 2 is
    fsck's "errors found")."""

    def error(self, message: str):
        self.print_usage(sys.stderr)
        self.exit(1, f"{self.prog}: error: {message}\n")


def _parser(only: str | None = None) -> argparse.ArgumentParser:
    """The argument parser; with ONLY, just that subcommand is built (q start-up time counts)."""
    from lei_store.read import choices
    common = _Parser(add_help=False)
    common.add_argument("--store", metavar="DIR",
                        help="the store directory (default: lei's, from leistore.dir or $XDG_DATA_HOME/lei/store)")
    p = _Parser(prog=PROG, description="A git-backed mail archive store compatible with lei 1.9.")
    p.add_argument("--store", metavar="DIR", dest="global_store",
                   help="the store directory, for any command (also accepted after the command)")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def add(name: str, **kw):
        return sub.add_parser(name, **kw) if only in (None, name) else _Unused()

    s = add("init", parents=[common], help="create a store (and record it in lei's config)")
    s.add_argument("dir", nargs="?", metavar="DIR")
    s.set_defaults(func=cmd_init)

    s = add("import", parents=[common], help="import Maildirs, mboxes and .eml files",
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
    s.add_argument("--batch-size", type=int, default=1000, help=argparse.SUPPRESS)
    s.add_argument("--max-size", type=_size, metavar="SIZE",
                   help="skip (and name) messages larger than SIZE bytes; K, M, G suffixes (default 64M)")
    s.add_argument("--json", action="store_true", help="print what was done as JSON on stdout")
    s.add_argument("-q", "--quiet", action="store_true", help="no progress bar and no summary")
    s.set_defaults(func=cmd_import)

    s = add("q", parents=[common], help="search the store (lei q's query language)",
                       description="Search with lei's query language: s: f: t: c: tc: a: b: bs: nq: q: n: m: "
                       "l: mid: lid: dfn: dfa: dfb: dfhh: dfctx: dfpre: dfpost: dfblob: patchid: kw: L:, ranges "
                       "d: dt: rt: z:, AND OR NOT + - \"phrases\" and trailing* wildcards.")
    s.add_argument("query", nargs="*", metavar="TERM")
    s.add_argument("-f", "--format", default="json",
                   choices=choices.Q_FORMATS)
    s.add_argument("-o", "--output", metavar="DEST", help="write messages to a Maildir (DIR, maildir:DIR) "
                   "or mbox (mboxrd:FILE, mboxcl2:FILE, ...)")
    s.add_argument("-a", "--augment", action="store_true",
                   help="add to DEST instead of replacing what an earlier q -o wrote there")
    s.add_argument("--pretty", action="store_true", help="indented JSON")
    s.add_argument("-t", "--threads", action="store_true", help="whole threads of the matches")
    s.add_argument("-d", "--dedupe", default="content", choices=choices.DEDUPES)
    s.add_argument("-s", "--sort", default="received", choices=choices.SORTS)
    s.add_argument("-r", "--reverse", action="store_true")
    s.add_argument("-n", "--limit", type=int, default=10000)
    s.add_argument("--offset", type=int, default=0)
    s.add_argument("--stdin", action="store_true", help="read the query from standard input")
    s.add_argument("--save", dest="save", action="store_true", default=True,
                   help="with -o, save the search for `up` (the default, as lei)")
    s.add_argument("--no-save", dest="save", action="store_false", help="with -o, do not save the search")
    s.add_argument("--no-import-before", dest="import_before", action="store_false",
                   help="with -o to a Maildir written before, do not take the reader's flag changes there first")
    s.set_defaults(func=cmd_q)

    s = add("lcat", parents=[common], help="show messages by Message-ID or blob:OID",
                       description="Print messages given as <Message-ID>, mid:ID or blob:OID, with comment "
                       "lines for their blob, keywords and labels (or as JSON).")
    s.add_argument("ids", nargs="+", metavar="ID")
    s.add_argument("-f", "--format", default="text", choices=("text",) + choices.JSON_FORMATS)
    s.add_argument("--pretty", action="store_true")
    s.set_defaults(func=cmd_lcat)

    for name, helptext in (("tag", "add or remove keywords and labels (+kw: -kw: +L: -L:)"),
                           ("rm", "unindex messages (git keeps their blobs)")):
        s = add(name, parents=[common], help=helptext,
                           description=f"{helptext[0].upper()}{helptext[1:]}. Messages are chosen by "
                           "content (files, Maildirs, mboxes, --stdin: matched by Message-ID and content hash, "
                           "else by blob OID) and/or by a search query (-q). Keyword changes are shown on "
                           "synced Maildir copies at once, as lei does.")
        s.add_argument("inputs", nargs="*", metavar="INPUT")
        s.add_argument("-q", "--query", metavar="QUERY", help="select the messages a search finds (quote it)")
        s.add_argument("-F", "--in-format", metavar="FORMAT", help="format of INPUT/--stdin (eml, mboxrd, ...)")
        s.add_argument("--stdin", action="store_true", help="read message(s) from standard input")
        s.add_argument("--lock-timeout", type=float, metavar="SECONDS")
        s.add_argument("--json", action="store_true", help="print what was done as JSON on stdout")
        s.add_argument("--quiet", action="store_true")
        s.set_defaults(func=cmd_tag if name == "tag" else cmd_rm)

    s = add("ls-mail-sync", parents=[common], help="list synced folders (Maildirs, IMAP mailboxes)")
    s.add_argument("pattern", nargs="?", metavar="GLOB")
    s.add_argument("--local", action="store_true", help="only Maildirs")
    s.add_argument("--remote", action="store_true", help="only IMAP")
    s.add_argument("-z", action="store_true", help="NUL-terminated output")
    s.set_defaults(func=cmd_ls_mail_sync)

    s = add("forget-mail-sync", parents=[common], help="drop a folder's sync information")
    s.add_argument("folders", nargs="+", metavar="FOLDER")
    s.set_defaults(func=cmd_forget_mail_sync)

    s = add("refresh-mail-sync", parents=[common], help="prune (and complete) a folder's sync information")
    s.add_argument("folders", nargs="*", metavar="FOLDER")
    s.add_argument("--all", action="store_true")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_refresh_mail_sync)

    s = add("export-kw", parents=[common], help="write keywords back as Maildir/IMAP flags",
                       description="Show the store's keywords on synced folders: Maildir files are renamed "
                       "(never rewritten), IMAP flags are stored where the server permits.")
    s.add_argument("folders", nargs="*", metavar="FOLDER")
    s.add_argument("--all", nargs="?", const="all", choices=["all", "local", "remote"])
    s.add_argument("--mode", default="merge", choices=["merge", "set"],
                   help="merge: add to the flags already there (default); set: replace them")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_export_kw)

    s = add("reindex", parents=[common], help="rebuild the index from the git epochs alone",
                       description="Rebuild over.sqlite3 and the Xapian shards from local/N.git, then restore "
                       "keywords and labels from the journal. Searches keep using the old index until the "
                       "new one is complete; an interrupted reindex resumes where it stopped.")
    s.add_argument("--shards", type=int, metavar="N", help="number of Xapian shards to build (default: keep)")
    s.add_argument("-j", "--jobs", type=int, metavar="N", help="worker processes (default: CPU count)")
    s.add_argument("--lock-timeout", type=float, metavar="SECONDS")
    s.add_argument("--json", action="store_true")
    s.add_argument("-q", "--quiet", action="store_true")
    s.set_defaults(func=cmd_reindex)

    s = add("clone", help="make a replica: git clone --mirror of every epoch, then index it",
                       description="Mirror every local/N.git of SRC (a store path, or a URL git can fetch: "
                       "git://, http(s)://, ssh) into a new store DEST, copy the keyword/label journal (from a "
                       "path, or SRC/journal.sqlite3 over http), and index everything. `fetch` keeps it current.")
    s.add_argument("src", metavar="SRC")
    s.add_argument("dest", metavar="DEST")
    s.add_argument("-j", "--jobs", type=int, metavar="N")
    s.add_argument("--json", action="store_true")
    s.add_argument("-q", "--quiet", action="store_true")
    s.set_defaults(func=cmd_clone)

    s = add("fetch", parents=[common], help="update a replica: git fetch every epoch, index new commits")
    s.add_argument("-j", "--jobs", type=int, metavar="N")
    s.add_argument("--json", action="store_true")
    s.add_argument("-q", "--quiet", action="store_true")
    s.set_defaults(func=cmd_fetch)

    s = add("fsck", parents=[common], help="cross-check git, over, Xapian, mail_sync and the journal",
                       description="Check that every layer of the store agrees with git and with each other. "
                       "Exit 0 when there is no error (warnings allowed), 2 otherwise.")
    s.add_argument("--json", action="store_true", help="the full report as JSON")
    s.add_argument("-v", "--verbose", action="store_true", help="list every warning, not only counts per kind")
    s.add_argument("--quick", action="store_true",
                   help="do not read every git object (only check that they exist): much faster on a large store")
    s.add_argument("--repair", action="store_true",
                   help="on errors, rebuild what is derived (alternates, the whole index) from git; "
                   "the epochs are never touched")
    s.add_argument("-j", "--jobs", type=int, metavar="N", help=argparse.SUPPRESS)
    s.set_defaults(func=cmd_fsck)

    s = add("backup", parents=[common], help="write the store to one backup file",
                       description="Write every epoch (as git bundles), the keyword/label journal and "
                       "mail_sync.sqlite3 to FILE, a tar, while holding the writer lock. The index is not "
                       "saved: restore rebuilds it.")
    s.add_argument("file", metavar="FILE")
    s.add_argument("--lock-timeout", type=float, metavar="SECONDS")
    s.add_argument("--json", action="store_true")
    s.add_argument("-q", "--quiet", action="store_true")
    s.set_defaults(func=cmd_backup)

    s = add("restore", parents=[common], help="create a store from a backup file",
                       description="Restore the backup FILE into DIR (absent or empty) and rebuild its "
                       "index; nothing is left in DIR when it fails.")
    s.add_argument("file", metavar="FILE")
    s.add_argument("dir", metavar="DIR")
    s.add_argument("-j", "--jobs", type=int, metavar="N", help="worker processes for the reindex")
    s.add_argument("--json", action="store_true")
    s.add_argument("-q", "--quiet", action="store_true")
    s.set_defaults(func=cmd_restore)

    s = add("gc", parents=[common], help="repack git, compact Xapian, vacuum SQLite",
                       description="Repack every epoch, compact every Xapian shard (docids kept) and "
                       "VACUUM the SQLite files, under the writer lock. Refuses when the free space "
                       "is below what the rewrite may need.")
    s.add_argument("--expunge", action="store_true",
                   help="first drop purged messages' blobs from git (rewrites only the epochs holding them)")
    s.add_argument("--lock-timeout", type=float, metavar="SECONDS")
    s.add_argument("--json", action="store_true")
    s.add_argument("-q", "--quiet", action="store_true")
    s.set_defaults(func=cmd_gc)

    from lei_store.cli import mailcmds

    mailcmds.add_parsers(add, common, _size)
    from lei_store.cli import serveimap

    serveimap.add_parsers(add, common)
    from lei_store.cli import savedcmds

    savedcmds.add_parsers(add, common)
    from lei_store.cli import watchcmds

    watchcmds.add_parsers(add, common)
    from lei_store.cli import servewww

    servewww.add_parsers(add, common)

    s = add("ls-label", parents=[common], help="list every label in use")
    s.set_defaults(func=cmd_ls_label)

    s = add("blob", parents=[common], help="print a message blob by git OID")
    s.add_argument("oids", nargs="+", metavar="OID")
    s.set_defaults(func=cmd_blob)

    s = add("daemon-pid", help="print the pid of the resident reader, if one runs",
            description="q, lcat, blob, ls-label, mailboxes and changes are answered by a resident reader process that "
            "keeps the read path loaded (started on first use, gone after 15 idle minutes; "
            "LEI_STORE_DAEMON=0 disables it). Exit 1 when none runs.")
    s.set_defaults(func=cmd_daemon_pid)

    s = add("daemon-kill", help="stop the resident reader")
    s.set_defaults(func=cmd_daemon_kill)
    return p


def main(argv: list[str] | None = None) -> int:
    """Run one command; its numbers go to the store's metrics (ops/metrics.py), its errors to one line."""
    import time

    argv = list(sys.argv[1:] if argv is None else argv)
    started = time.monotonic()
    code = 70
    try:
        code = _run(argv)
        return code
    finally:
        _tally(argv, time.monotonic() - started, code)


def _tally(argv: list[str], seconds: float, code: int) -> None:
    """Leave the command's numbers in its store's metrics.sqlite3 (never fails the command)."""
    from lei_store import tally
    from lei_store.paths import Layout, default_store_dir

    command = command_of(argv)
    if command not in COMMANDS or command in ("daemon-pid", "daemon-kill", "metrics"):
        return
    try:
        i = argv.index("--store") if "--store" in argv else -1
        root = Path(argv[i + 1]) if i >= 0 else next(
            (Path(a.split("=", 1)[1]) for a in argv if a.startswith("--store=")), None) or default_store_dir()
        if not Layout(root.absolute()).is_store():
            return
        tally.record(root, command, seconds, _OUTCOMES.get(code, "error"), dict(tally.counts))
    except (OSError, IndexError, ValueError):
        pass


_OUTCOMES = {0: "ok", 1: "input", 2: "fsck_errors", 3: "resync", 65: "damaged", 66: "skipped", 69: "unavailable",
             70: "internal", 73: "quota", 74: "io", 75: "locked", 77: "permission", 130: "interrupted", 141: "pipe"}


def _run(argv: list[str]) -> int:
    from lei_store.mail.keywords import parse_modifiers

    try:
        argv, mods = parse_modifiers(argv)
        args = parser_for(command_of(argv)).parse_args(argv)
        args.mods = mods
        if getattr(args, "rotate_bytes", None) is None and hasattr(args, "rotate_bytes"):
            from lei_store.write.epochs import ROTATE_BYTES

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
        err = from_os_error(e)
        print(f"{PROG}: {err}", file=sys.stderr)
        return err.exit_code
    except Exception as e:  # SQLite, Xapian or a bug: still one line; LEI_STORE_DEBUG=1 shows the traceback
        if os.environ.get("LEI_STORE_DEBUG"):
            raise
        err = _classify(e)
        print(f"{PROG}: {err}", file=sys.stderr)
        return err.exit_code


def _classify(e: Exception) -> LeiStoreError:
    """An error that escaped the library's own checks, as the kind of failure it reports:
    SQLite says which by its result code, Xapian by its exception class and errno text."""
    import sqlite3

    text = " ".join(str(e).split()) or type(e).__name__
    module = type(e).__module__.split(".")[0]
    code = (getattr(e, "sqlite_errorcode", None) or 0) & 0xFF
    if code == sqlite3.SQLITE_FULL or module == "xapian" and is_disk_full(text):
        return DiskFullError(f"disk full: {module} error: {text}")
    if code in (sqlite3.SQLITE_READONLY, sqlite3.SQLITE_PERM):
        return StorePermissionError(f"permission denied: a database of the store cannot be written ({text}): "
                                    "check the owner and mode of the store's *.sqlite3 files")
    if code in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB):
        return DamagedStoreError(f"a database of the store is damaged ({text}); see `lei-store fsck`")
    if module == "xapian" and type(e).__name__ in _XAPIAN_DAMAGE:
        return DamagedStoreError(f"a Xapian shard of the store is damaged ({text}); see `lei-store fsck`")
    err = LeiStoreError(f"{module} error: {text}")
    err.exit_code = EX_SOFTWARE
    return err


_XAPIAN_DAMAGE = ("DatabaseCorruptError", "DatabaseOpeningError", "DatabaseNotFoundError", "DatabaseFormatError")


if __name__ == "__main__":
    sys.exit(main())
