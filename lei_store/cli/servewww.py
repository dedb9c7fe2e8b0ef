"""`lei-store serve-www`: the store on the web, read-only, through public-inbox-httpd
(lei_store/ops/servewww.py). It listens on 127.0.0.1 unless told otherwise; another address is
allowed (nothing can be changed through it) with a warning, since anyone reaching it reads all."""

from __future__ import annotations

import sys

from lei_store.cli.common import PROG, is_loopback, parse_listen, store_layout

COMMANDS = ("serve-www",)
DEFAULT_LISTEN = "127.0.0.1:8080"


def cmd_serve_www(args) -> int:
    from lei_store.ops.servewww import serve

    host, port = parse_listen(args.listen, DEFAULT_LISTEN)
    root = store_layout(args).root  # a missing store is reported before anything listens

    def ready(url: str) -> None:
        if not is_loopback(host):
            print(f"{PROG}: warning: serving on {host}: anyone who can reach it can read every message in the store",
                  file=sys.stderr)
        print(f"{PROG}: serving {root} on the web at {url} (public-inbox-httpd, read-only)",
              file=sys.stderr, flush=True)

    serve(root, host, port, ready)
    return 0


def add_parsers(add, common) -> None:
    s = add("serve-www", parents=[common], help="serve the store on the web, read-only (public-inbox-httpd)",
            description="Serve the store read-only on the web with Debian's public-inbox-httpd: threads, "
            "search (lei's query language), raw messages and Atom feeds at http://HOST:PORT/all/; what an "
            "import adds shows at once. Runs in the foreground until ^C or SIGTERM. Listens on "
            f"{DEFAULT_LISTEN} by default. The page title is the text of STORE/description, if there is one.")
    s.add_argument("--listen", default=DEFAULT_LISTEN, metavar="HOST:PORT",
                   help=f"where to listen (default {DEFAULT_LISTEN}; another host than loopback is warned about)")
    s.set_defaults(func=cmd_serve_www)
