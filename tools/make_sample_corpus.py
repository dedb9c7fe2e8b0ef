#!/usr/bin/env python3
"""Write the project's own sample corpus: a Maildir and an mboxrd of synthetic mail.

The messages are made up here (no third-party mail is shipped), deterministic
for a given --seed, and chosen to exercise the store: threads with replies
arriving before their parents, mailing lists, patches with diffs, base64
attachments, RFC 2047 headers, drafts without Message-ID, a message stored
twice with different Received headers, exact duplicates, CRLF line endings,
Maildir flags and mbox Status headers.

    python tools/make_sample_corpus.py OUTDIR [--messages 240] [--seed 1]
"""

from __future__ import annotations

import argparse
import base64
import random
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from pathlib import Path

PEOPLE = [("Alice Example", "alice@example.org"), ("Bob Builder", "bob@example.com"),
          ("Carol Chen", "carol@example.net"), ("Dmitri Ivanov", "dmitri@example.ru"),
          ("Zoë Müller", "zoe@example.de"), ("Erin O'Neil", "erin@example.ie")]
LISTS = ["dev.lists.example.org", "users.lists.example.org"]
TOPICS = ["btree balancing", "scrub speed", "quota groups", "send/receive", "device replace",
          "free space cache", "compression levels", "snapshot deletion", "raid5 recovery", "fsync latency"]
WORDS = ("the a fix crash when mount remount balance extent tree node leaf slot lock "
         "delay commit transaction space cache inode checksum device replace scrub").split()
FUNCS = ["btrfs_commit_transaction", "btrfs_search_slot", "scrub_stripe", "btrfs_balance",
         "find_free_extent", "btrfs_sync_file"]
FLAGS = ["S", "S", "S", "FS", "RS", "PS", ""]


def encode_word(text: str) -> str:
    """An RFC 2047 encoded word when the text is not ASCII."""
    if text.isascii():
        return text
    return "=?utf-8?b?" + base64.b64encode(text.encode()).decode() + "?="


def address(person) -> str:
    name, email = person
    return f"{encode_word(name)} <{email}>" if not name.isascii() else f"{name} <{email}>"


def sentence(rng: random.Random, n: int = 12) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n)).capitalize() + "."


def patch_body(rng: random.Random, n: int) -> str:
    path = rng.choice(["fs/btrfs/ctree.c", "fs/btrfs/scrub.c", "fs/btrfs/volumes.c"])
    pre, post = "%07x" % rng.getrandbits(28), "%07x" % rng.getrandbits(28)
    func = rng.choice(FUNCS)
    return (f"{sentence(rng)}\n\nSigned-off-by: {PEOPLE[n % 3][0]} <{PEOPLE[n % 3][1]}>\n---\n"
            f" {path} | 2 +-\n 1 file changed, 1 insertion(+), 1 deletion(-)\n\n"
            f"diff --git a/{path} b/{path}\nindex {pre}..{post} 100644\n--- a/{path}\n+++ b/{path}\n"
            f"@@ -{10 + n},7 +{10 + n},7 @@ static int {func}(struct btrfs_root *root)\n"
            f" \tint ret;\n \n-\tret = old_call(root, {n});\n+\tret = new_call(root, {n}, 0);\n"
            f" \tif (ret)\n \t\treturn ret;\n \treturn 0;\n-- \n2.39.5\n")


def attachment_body(rng: random.Random, boundary: str, n: int) -> tuple[str, str]:
    data = base64.encodebytes(bytes(rng.getrandbits(8) for _ in range(300))).decode()
    body = (f"--{boundary}\nContent-Type: text/plain; charset=utf-8\n\n{sentence(rng)}\n"
            f"See the attached log.\n--{boundary}\nContent-Type: application/octet-stream; "
            f"name=\"dmesg-{n}.bin\"\nContent-Disposition: attachment; filename=\"dmesg-{n}.bin\"\n"
            f"Content-Transfer-Encoding: base64\n\n{data}--{boundary}--\n")
    return f'multipart/mixed; boundary="{boundary}"', body


def make_messages(count: int, seed: int) -> list[tuple[bytes, str]]:
    """(message bytes, Maildir flags) in arrival order."""
    rng = random.Random(seed)
    start = datetime(2024, 3, 1, 9, 0, tzinfo=timezone.utc)
    out, roots = [], []
    for n in range(count):
        when = start + timedelta(minutes=37 * n + rng.randint(0, 30))
        sender = PEOPLE[rng.randrange(len(PEOPLE))]
        to = PEOPLE[(n + 1) % len(PEOPLE)]
        topic = rng.choice(TOPICS)
        received = format_datetime(when + timedelta(seconds=40))
        headers = [f"Received: from mx.example.org by mail.example.com; {received}",
                   f"From: {address(sender)}", f"To: {address(to)}"]
        kind = n % 10
        if n % 7 == 3:
            headers.append(f"Cc: {address(PEOPLE[(n + 2) % len(PEOPLE)])}")
        mid = f"<{when:%Y%m%d%H%M%S}.{n}@example.org>"
        refs = []
        if roots and kind in (1, 2, 4, 6, 8):
            parent = rng.choice(roots[-8:])
            refs = parent[1] + [parent[0]]
            subject = "Re: " + parent[2]
        elif kind in (3, 9):
            subject = f"[PATCH {n % 4 + 1}/4] btrfs: {topic}: {rng.choice(WORDS)} {rng.choice(WORDS)}"
        else:
            subject = f"{topic.capitalize()} question #{n}"
        if n % 13 == 5:
            subject = "Größenänderung: " + subject
        headers.append(f"Subject: {encode_word(subject)}")
        headers.append(f"Date: {format_datetime(when)}")
        if n % 17 != 11:  # a few drafts have no Message-ID
            headers.append(f"Message-ID: {mid}")
        if n % 19 == 4 and not refs:  # a reply whose parent never arrives: a ghost in the thread
            refs = [f"<lost-{n % 3}@example.org>"]
            subject = "Re: " + subject
        if refs:
            headers.append(f"In-Reply-To: {refs[-1]}")
            headers.append("References: " + " ".join(refs[-5:]))
        if n % 3 == 0:
            headers.append(f"List-Id: {LISTS[n % 2].split('.')[0].capitalize()} list <{LISTS[n % 2]}>")
        ctype, body = "text/plain; charset=utf-8", ""
        if kind in (3, 9):
            body = patch_body(rng, n)
        elif kind == 5:
            ctype, body = attachment_body(rng, f"b{n}x", n)
        else:
            quote = f"> {sentence(rng)}\n> {sentence(rng)}\n\n" if refs else ""
            body = f"Hi {to[0].split()[0]},\n\n{quote}{sentence(rng)}\n{sentence(rng, 20)}\n\n-- \n{sender[0]}\n"
        headers += ["MIME-Version: 1.0", f"Content-Type: {ctype}", "Content-Transfer-Encoding: 8bit"]
        raw = ("\n".join(headers) + "\n\n" + body).encode()
        if n % 29 == 7:
            raw = raw.replace(b"\n", b"\r\n")
        out.append((raw, FLAGS[n % len(FLAGS)] if n % 6 else "-"))
        if n % 17 != 11:
            roots.append((mid, refs, subject.removeprefix("Re: ")))
        if n % 41 == 13:  # the same message again, relayed differently: a new copy, not a new message
            other = raw.replace(b"by mail.example.com;", b"by backup-mx.example.com;", 1)
            out.append((other, "S"))
        if n % 53 == 17:  # a byte-identical duplicate
            out.append((raw, "S"))
    return out


def write_maildir(root: Path, messages) -> None:
    for sub in ("cur", "new", "tmp"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    for i, (raw, flags) in enumerate(messages):
        name = f"{1709283600 + i}.M{i}P0.sample"
        path = root / "new" / name if flags == "-" else root / "cur" / f"{name}:2,{flags}"
        path.write_bytes(raw)


def write_mboxrd(path: Path, messages) -> None:
    import re

    with open(path, "wb") as f:
        for raw, flags in messages:
            body = re.sub(rb"^(>*From )", rb">\1", raw, flags=re.M)
            if flags not in ("-", "") and "P" not in flags and b"\r\n" not in raw:
                # the same keywords as the Maildir flags (mbox has no letter for "forwarded")
                status = b"Status: RO\n" if "S" in flags else b"Status: O\n"
                x = "".join(sorted({"R": "A", "F": "F", "D": "T"}[c] for c in flags if c in "RFD"))
                status += f"X-Status: {x}\n".encode() if x else b""
                end = body.find(b"\n\n")
                body = body[:end + 1] + status + body[end + 1:]
            f.write(b"From mboxrd@z Thu Jan  1 00:00:00 1970\n" + body)
            f.write(b"\n" if body.endswith(b"\n") else b"\n\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("outdir", type=Path)
    ap.add_argument("--messages", type=int, default=240)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    messages = make_messages(args.messages, args.seed)
    write_maildir(args.outdir / "maildir", messages)
    write_mboxrd(args.outdir / "sample.mboxrd", messages)
    print(f"wrote {len(messages)} messages to {args.outdir}/maildir and {args.outdir}/sample.mboxrd")


if __name__ == "__main__":
    main()
