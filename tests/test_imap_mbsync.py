"""Debian's isync (mbsync) against `lei-store serve-imap`: it pulls a label mailbox into a Maildir
whose files are the store's blobs byte for byte, but for what mbsync itself changes in every
message it copies (from Dovecot as well): the X-TUID line it inserts, and CRLF made LF. Then it
pushes a flag change and a deletion back; the store, its change feed and real lei agree."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import Lei, need, need_lei, run_cli
from imapserver import ImapServer
from storecheck import blob_oid, git_blob

TUID = re.compile(rb"^X-TUID: [^\n]*\n", re.MULTILINE)


@pytest.fixture
def served(sample_corpus, tmp_path):
    need(shutil.which("mbsync") is not None, "isync (mbsync) is not installed (tools/install-peers.sh installs it)")
    store = tmp_path / "store"
    run_cli("import", "--store", str(store), "-q", str(shutil.copytree(sample_corpus / "maildir", tmp_path / "md")))
    run_cli("tag", "--store", str(store), "--quiet", "-q", "s:scrub", "+L:scrub")
    srv = ImapServer(store, tmp_path).start()
    yield store, srv
    assert srv.stop() == 0, srv.log.read_text()


def mbsync(srv: ImapServer, near: Path, work: Path) -> None:
    rc = work / "mbsyncrc"
    rc.write_text(f"""IMAPAccount store
Host 127.0.0.1
Port {srv.port}
User {srv.user}
PassCmd "cat {srv.password_file}"
SSLType None
AuthMechs LOGIN

IMAPStore far
Account store

MaildirStore near
Path {near}/
Inbox {near}/INBOX

Channel scrub
Far :far:scrub
Near :near:scrub
Create Near
Sync All
Expunge Both
SyncState *
""")
    r = subprocess.run(["mbsync", "-c", str(rc), "scrub"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr


def members(store: Path) -> set[str]:
    out = run_cli("changes", "--store", str(store), "--mailbox", "scrub", "--json").stdout.splitlines()[:-1]
    return {c["blob"] for c in map(json.loads, out) if c["kind"] != "removed"}


def files(near: Path) -> list[Path]:
    return sorted(p for sub in ("cur", "new") for p in (near / "scrub" / sub).iterdir())


def test_mbsync_pulls_the_blobs_and_pushes_flags_and_deletions(served, tmp_path):
    store, srv = served
    near = tmp_path / "near"
    near.mkdir()
    mbsync(srv, near, tmp_path)
    pulled = files(near)
    want = {blob_oid(git_blob(store, b).replace(b"\r\n", b"\n")): b for b in members(store)}
    assert {blob_oid(TUID.sub(b"", p.read_bytes(), count=1)) for p in pulled} == set(want)
    # as a mail reader does: flag one (F), delete another
    to_flag = next(p for p in pulled if ",F" not in p.name.split(":2,")[-1] and "F" not in p.name.split(":2,")[-1])
    flagged_blob = want[blob_oid(TUID.sub(b"", to_flag.read_bytes(), count=1))]
    info = to_flag.name.split(":2,")[-1]
    to_flag.rename(to_flag.with_name(to_flag.name.split(":2,")[0] + ":2," + "".join(sorted(info + "F"))))
    victim = next(p for p in files(near) if "F" not in p.name.split(":2,")[-1])
    victim_blob = want[blob_oid(TUID.sub(b"", victim.read_bytes(), count=1))]
    victim.unlink()
    mbsync(srv, near, tmp_path)
    hits = {json.loads(x)["blob"]: json.loads(x) for x in run_cli(
        "q", "--store", str(store), "-f", "jsonl", "--dedupe=none", "z:1..").stdout.splitlines()}
    assert "flagged" in hits[flagged_blob].get("kw", [])
    assert victim_blob in hits and "scrub" not in hits[victim_blob].get("L", [])  # off the label, kept
    assert victim_blob not in members(store) and flagged_blob in members(store)
    assert run_cli("fsck", "--store", str(store)).returncode == 0
    need_lei()
    lei = Lei(tmp_path / "lei")
    try:
        lei("init", str(store))
        assert flagged_blob in lei.blobs("kw:flagged")
    finally:
        lei.close()
