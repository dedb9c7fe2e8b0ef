"""The subcommands of the mail-server contract: mailboxes, mailbox, changes, watch, quota, metrics
and purge. Thin: each parses, calls the library, prints (JSON from msgspec with --json)."""

from __future__ import annotations

import argparse
import sys

from lei_store.cli.common import PROG, emit_json, store_dir, store_layout
from lei_store.errors import InputError

COMMANDS = ("mailboxes", "mailbox", "changes", "watch", "quota", "metrics", "purge")


def cmd_mailboxes(args) -> int:
    from lei_store.disk import mailboxes

    boxes = mailboxes.read(store_dir(args), args.names or None)
    if args.json:
        emit_json(boxes)
        return 0
    for b in boxes:
        extras = " ".join(x for x in ("subscribed" if b.subscribed else "", b.special_use or "") if x)
        print(f"{b.name}\texists {b.exists}\tunseen {b.unseen}\trecent {b.recent}\tuidvalidity {b.uidvalidity}"
              f"\tuidnext {b.uidnext}\thighestmodseq {b.highestmodseq}" + (f"\t{extras}" if extras else ""))
    return 0


def cmd_mailbox(args) -> int:
    from lei_store.ops.mailbox import manage

    result = manage(store_dir(args), args.action, args.name, args.new, lock_timeout=args.lock_timeout)
    if args.json:
        emit_json(result)
    if not args.quiet:
        moved = f"; {result.messages} messages relabelled" if args.action in ("rename", "delete") else ""
        print(f"{PROG}: mailbox {args.action} {args.name}{' -> ' + args.new if args.new else ''} "
              f"(label {result.label}){moved}", file=sys.stderr)
    return 0


def _print_changes(changes, args) -> None:
    """Each change on its own line (JSON or text), flushed: a follower reads them as they come."""
    import msgspec

    out = sys.stdout.buffer
    enc = msgspec.json.Encoder()
    for c in changes:
        if args.json:
            out.write(enc.encode(c) + b"\n")
        elif c.kind == "mailbox":
            m = c.mailbox or {}
            out.write(f"{c.modseq} mailbox {m.get('action')} {m.get('name')}"
                      f"{' -> ' + m['new'] if m.get('new') else ''}\n".encode())
        elif c.kind == "expunged":
            out.write(f"{c.modseq} expunged epochs {','.join(map(str, c.epochs or []))}\n".encode())
        else:
            uid = f" uid {c.uid}" if c.uid is not None else ""
            out.write(f"{c.modseq} {c.kind}{uid} {c.blob or '-'} kw={','.join(c.kw)} L={','.join(c.L)}\n".encode())
        out.flush()


def cmd_changes(args) -> int:
    from lei_store.disk import feed
    from lei_store.disk.journal import Journal

    lay = store_layout(args)
    if not lay.journal.exists():  # a store only lei ever wrote (or one that lost its journal): no feed yet
        if args.since > 0:
            raise feed.ResyncNeeded(f"resync needed: modseq {args.since} is beyond this store's feed (it has none "
                                    "yet): read the whole state again")
        print('{"highestmodseq": 0}' if args.json else "highestmodseq 0")
        return 0
    journal = Journal(lay.journal, readonly=True)
    try:
        journal.db.execute("BEGIN")  # one snapshot: the changes and the highest modseq agree
        highest = feed.highest_modseq(journal.db)
        changes = (feed.mailbox_changes(journal.db, args.mailbox, args.since) if args.mailbox is not None
                   else feed.changes(journal.db, args.since))
        _print_changes(changes, args)
    finally:
        journal.db.close()
    if args.json:
        emit_json(feed.Highest(highest))
    else:
        print(f"highestmodseq {highest}")
    return 0


def cmd_watch(args) -> int:
    from lei_store.disk.follow import Follower

    follower = Follower(store_layout(args).root, args.since)
    try:
        _print_changes(follower, args)
    finally:
        follower.close()
    return 0


def cmd_quota(args) -> int:
    if args.set_bytes is None and args.set_messages is None:
        from lei_store.disk.quota import read

        q = read(store_dir(args))
    else:
        from lei_store.ops.quota import quota

        q = quota(store_dir(args), set_bytes=args.set_bytes, set_messages=args.set_messages,
                  lock_timeout=args.lock_timeout)
    if args.json:
        emit_json(q)
    else:
        limit = lambda n: "no limit" if not n else str(n)  # noqa: E731
        print(f"bytes\t{q.bytes}\tof {limit(q.max_bytes)}\nmessages\t{q.messages}\tof {limit(q.max_messages)}")
    return 0


def cmd_metrics(args) -> int:
    from lei_store.ops import metrics

    root = store_layout(args).root
    if args.follow and args.textfile is None:
        raise InputError("--follow keeps a --textfile up to date: give --textfile DIR")
    if args.textfile is not None:
        metrics.keep_textfile(root, args.textfile, follow=args.follow)
    else:
        sys.stdout.buffer.write(metrics.exposition(root))
    return 0


def cmd_purge(args) -> int:
    from lei_store.ops.purge import purge
    from lei_store.read import query

    lay = store_layout(args)
    text = query.from_argv(args.query, lay.all_git)
    result = purge(lay.root, text, older_than=args.older_than, dry_run=args.dry_run, lock_timeout=args.lock_timeout)
    if args.json:
        emit_json(result)
    else:
        for m in result.messages:
            print(f"{m.blob}\t{m.received}\t{m.subject}")
    if not args.quiet:
        verb = "would be removed" if args.dry_run else "removed (gc --expunge drops them from git)"
        print(f"{PROG}: {len(result.messages)} messages {verb}", file=sys.stderr)
    return 0


def _count(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if n < 0 or n >= 1 << 63:
        raise argparse.ArgumentTypeError(f"must be a whole number from 0 to 2**63-1: {text!r}")
    return n


def _limit(size_type):
    """A quota limit: a size as everywhere, or 0 for no limit."""
    import re

    def parse(text: str) -> int:
        return 0 if re.fullmatch(r"\s*0+\s*[kmg]?b?\s*", text, re.IGNORECASE) else size_type(text)
    return parse


def add_parsers(add, common, size_type) -> None:
    """Register these subcommands with the main parser (ADD: its add_parser; COMMON: --store)."""
    s = add("mailboxes", parents=[common], help="list mailboxes (labels) with their counters",
            description="Every mailbox: INBOX, the \\All view and one per label, with exists, unseen, recent, "
            "UIDVALIDITY, UIDNEXT, highest modseq, subscription and special-use attribute.")
    s.add_argument("names", nargs="*", metavar="NAME", help="only these")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_mailboxes)

    s = add("mailbox", parents=[common], help="create, rename, delete, subscribe to or unsubscribe from a mailbox",
            description="Mailboxes are labels. rename keeps every message's membership and UID; delete takes "
            "the label off every message, which stays in the archive. Names may hold any character but "
            "% * \\ \" and controls; '/' separates levels.")
    s.add_argument("action", choices=["create", "rename", "delete", "subscribe", "unsubscribe"])
    s.add_argument("name", metavar="NAME")
    s.add_argument("new", nargs="?", metavar="NEW", help="rename: the new name")
    s.add_argument("--lock-timeout", type=float, metavar="SECONDS")
    s.add_argument("--json", action="store_true")
    s.add_argument("-q", "--quiet", action="store_true")
    s.set_defaults(func=cmd_mailbox)

    s = add("changes", parents=[common], help="what changed after a modseq (the change feed)",
            description="Every change after modseq N: messages added, changed (keywords, labels, copies), "
            "removed; mailbox events. With --mailbox, that mailbox's members changed since N (with their UID) "
            "and the UIDs that left it. The last line is the highest modseq to resume from. Exit 3: N is "
            "older than the feed keeps (read the whole state again).")
    s.add_argument("--since", type=_count, default=0, metavar="N")
    s.add_argument("--mailbox", metavar="NAME")
    s.add_argument("--json", action="store_true", help="one JSON object per line")
    s.set_defaults(func=cmd_changes)

    s = add("watch", parents=[common], help="print changes as they happen",
            description="The changes after --since, then every new one within a second of its commit "
            "(woken by inotify, never polling), until interrupted.")
    s.add_argument("--since", type=_count, default=0, metavar="N")
    s.add_argument("--json", action="store_true", help="one JSON object per line")
    s.set_defaults(func=cmd_watch)

    s = add("quota", parents=[common], help="show or set the store's quota",
            description="What the store holds and may hold, in bytes and messages (0: no limit). An import "
            "over the limit stores what fits and exits 73.")
    s.add_argument("--set-bytes", type=_limit(size_type), metavar="N",
                   help="a limit in bytes (K, M, G suffixes; 0: no limit)")
    s.add_argument("--set-messages", type=_count, metavar="N", help="a limit in messages (0: no limit)")
    s.add_argument("--lock-timeout", type=float, metavar="SECONDS")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_quota)

    s = add("metrics", parents=[common], help="the store's metrics in the Prometheus text format",
            description="Counters and latency histograms of every lei-store command run on this store, and "
            "gauges of the store (messages, bytes, epochs, per-mailbox counters, highest modseq).")
    s.add_argument("--textfile", metavar="DIR", help="write DIR/lei_store.prom atomically (node_exporter)")
    s.add_argument("--follow", action="store_true", help="with --textfile: rewrite it on every change")
    s.set_defaults(func=cmd_metrics)

    s = add("purge", parents=[common], help="remove the messages a query finds (retention)",
            description="Remove matching messages from the index and every mailbox (tombstones in the "
            "change feed); git keeps their blobs until `gc --expunge`.")
    s.add_argument("query", nargs="+", metavar="TERM")
    s.add_argument("--older-than", metavar="AGE",
                   help="only messages received longer ago (lei's rt: time): 30d, 6m, 2y, 12h")
    s.add_argument("--dry-run", action="store_true", help="list what would go, change nothing")
    s.add_argument("--lock-timeout", type=float, metavar="SECONDS")
    s.add_argument("--json", action="store_true")
    s.add_argument("-q", "--quiet", action="store_true")
    s.set_defaults(func=cmd_purge)
