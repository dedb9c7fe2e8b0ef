#!/usr/bin/env python3
"""IMAP re-sync benchmark: `lei-store import imap://...` of a folder it imported before, after
1% of the flags changed on the server, with CONDSTORE (only what changed since the
HIGHESTMODSEQ kept in mail_sync is fetched) and without (every known UID's flags, as before
and as lei does).

    .venv/bin/python tools/bench_imap_resync.py [--corpus ../shared/corpora/btrfs-10k.tar.xz |
        --maildir DIR] [--changed 100] [--runs 3]

Dovecot serves the Maildir (a copy) as INBOX; the first import fetches every message. Then,
--runs times: --changed messages get \\Flagged toggled on the server, and the re-sync is timed
twice: without a modseq kept (the row removed from mail_sync: the full flag read) and with it.
Each run checks that the store's kw:flagged equals the server's \\Flagged.
"""

from __future__ import annotations

import argparse
import json
import random
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_imap import serve_dovecot  # noqa: E402
from bench_import import DEFAULT_CORPUS, bench_env, unpack  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CLI = str(ROOT / ".venv" / "bin" / "lei-store")


def imported(store: Path, url: str, env: dict) -> float:
    t0 = time.monotonic()
    r = subprocess.run([CLI, "import", "--store", str(store), "-q", "--json", url], env=env,
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"import failed: {r.stderr[-400:]}")
    return time.monotonic() - t0


def flagged_in_store(store: Path, env: dict) -> int:
    r = subprocess.run([CLI, "q", "--store", str(store), "-f", "jsonl", "--dedupe=none", "kw:flagged"], env=env,
                       capture_output=True, text=True, check=True)
    return len(r.stdout.splitlines())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    ap.add_argument("--maildir", type=Path)
    ap.add_argument("--changed", type=int, default=100)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-resync-") as d:
        work = Path(d)
        env = dict(bench_env(), HOME=str(work))  # the login goes in a .netrc of its own, not the user's
        maildir = args.maildir or unpack(args.corpus, work)
        served, dove = serve_dovecot(maildir, work)
        try:
            netrc = work / ".netrc"
            password = served.password_file.read_text().strip()
            netrc.write_text(f"machine 127.0.0.1 login {served.user} password {password}\n")
            netrc.chmod(0o600)
            url = f"imap://{served.user}@127.0.0.1:{served.port}/INBOX"
            store = work / "store"
            first = imported(store, url, env)
            client = served.client()
            client.select_folder("INBOX")
            uids = client.search(["ALL"])
            full, fast = [], []
            for _ in range(args.runs):
                chosen = random.sample(uids, args.changed)
                flagged = set(client.search(["FLAGGED"]))
                client.add_flags([u for u in chosen if u not in flagged], [rb"\Flagged"])
                client.remove_flags([u for u in chosen if u in flagged], [rb"\Flagged"])
                client.noop()
                db = sqlite3.connect(store / "mail_sync.sqlite3")
                db.execute("DELETE FROM lei_store_imap_modseq")
                db.commit()
                db.close()
                full.append(imported(store, url, env))
                client.add_flags(chosen, [rb"\Seen"])  # another 1% change for the CONDSTORE run
                fast.append(imported(store, url, env))
                want = len(client.search(["FLAGGED"]))
                if flagged_in_store(store, env) != want:
                    raise SystemExit(f"kw:flagged differs from the server's {want} \\Flagged")
            client.logout()
        finally:
            dove.stop()
    print(json.dumps({"messages": len(uids), "changed": args.changed, "first_import_s": round(first, 2),
                      "resync_full_s": round(statistics.median(full), 3),
                      "resync_condstore_s": round(statistics.median(fast), 3)}))
    print(f"| {len(uids)} messages, {args.changed} flags changed | full flag read | CONDSTORE |\n|---|---:|---:|\n"
          f"| re-sync (median of {args.runs}) | {statistics.median(full):.2f} s | {statistics.median(fast):.2f} s |")


if __name__ == "__main__":
    main()
