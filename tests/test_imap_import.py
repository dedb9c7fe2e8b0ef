"""lei-store import imap://... against a real Dovecot: incremental by UID, flags, expunge,
UIDVALIDITY changes, export-kw, refresh-mail-sync, and failures that lose nothing."""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
from pathlib import Path

import pytest
from conftest import run_cli


def netrc(server, password: str | None = None) -> None:
    home = Path.home()
    (home / ".netrc").write_text(f"machine {server.host} login {server.user} password {password or server.password}\n")
    (home / ".netrc").chmod(0o600)


def corpus_messages(sample_corpus, n: int) -> list[bytes]:
    files = sorted(p for sub in ("cur", "new") for p in (sample_corpus / "maildir" / sub).iterdir())
    return [p.read_bytes() for p in files[:n]]


def append(server, messages, flags=(), mailbox="INBOX") -> None:
    client = server.client()
    try:
        for i, raw in enumerate(messages):
            client.append(mailbox, raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"),
                          flags=flags[i] if i < len(flags) else ())
    finally:
        client.logout()


def imp(store: Path, *args: str, check: bool = True):
    r = run_cli("import", "--store", str(store), "--json", "-q", *args, check=check)
    return json.loads(r.stdout) if r.returncode == 0 else r


def blobs(store: Path, *query: str) -> set[str]:
    out = run_cli("q", "--store", str(store), "-f", "jsonl", "--dedupe=none", *query).stdout
    return {json.loads(line)["blob"] for line in out.splitlines()}


def sync_rows(store: Path) -> tuple[list[str], dict[int, str]]:
    db = sqlite3.connect(store / "mail_sync.sqlite3")
    locs = [bytes(loc).decode() for (loc,) in db.execute("SELECT loc FROM folders ORDER BY fid")]
    uids = {uid: bytes(o).hex() for o, uid in db.execute("SELECT oidbin, uid FROM blob2num")}
    types = {t for (t,) in db.execute("SELECT DISTINCT typeof(oidbin) FROM blob2num")}
    assert types <= {"blob"}
    return locs, uids


def uidvalidity(server, mailbox="INBOX") -> int:
    client = server.client()
    try:
        return int(client.folder_status(mailbox, ["UIDVALIDITY"])[b"UIDVALIDITY"])
    finally:
        client.logout()


def test_imap_import_is_incremental_and_follows_flags(dovecot, sample_corpus, tmp_path):
    netrc(dovecot)
    msgs = corpus_messages(sample_corpus, 6)
    append(dovecot, msgs[:4], flags=[[r"\Seen"], [r"\Flagged", r"\Seen"], [], [r"\Answered"]])
    store = tmp_path / "store"
    url = dovecot.url()
    first = imp(store, url)
    assert first["messages"] == 4 and first["added"] + first["attached"] + first["duplicates"] == 4
    locs, uids = sync_rows(store)
    assert locs == [f"{url};UIDVALIDITY={uidvalidity(dovecot)}"]
    assert sorted(uids) == [1, 2, 3, 4]
    stored = {run_cli("blob", "--store", str(store), oid).stdout for oid in uids.values()}
    assert stored == {m.replace(b"\r\n", b"\n") for m in msgs[:4]}  # LF, like the Maildir copy and lei
    assert {uids[2]} <= blobs(store, "kw:flagged") and uids[1] in blobs(store, "kw:seen")
    assert uids[4] in blobs(store, "kw:answered")

    # flags change on the server, two messages arrive, one is expunged
    client = dovecot.client()
    client.select_folder("INBOX")
    client.remove_flags([2], [r"\Flagged"])
    client.add_flags([3], [r"\Flagged"])
    client.add_flags([4], [r"\Deleted"])
    client.expunge()
    client.logout()
    append(dovecot, msgs[4:6])
    second = imp(store, url)
    assert second["messages"] == 2  # only the new UIDs are fetched
    assert second["keywords_updated"] >= 2
    _, uids = sync_rows(store)
    assert sorted(uids) == [1, 2, 3, 5, 6]  # the expunged UID's row is gone
    assert uids[3] in blobs(store, "kw:flagged") and uids[2] not in blobs(store, "kw:flagged")
    assert imp(store, url)["messages"] == 0  # nothing new


def test_changed_uidvalidity_resyncs_and_loses_nothing(dovecot, sample_corpus, tmp_path):
    netrc(dovecot)
    msgs = corpus_messages(sample_corpus, 5)
    client = dovecot.client()
    client.create_folder("lists")
    client.logout()
    append(dovecot, msgs, mailbox="lists")
    store = tmp_path / "store"
    url = dovecot.url("lists")
    imp(store, url)
    before = blobs(store, "z:1..")
    old = uidvalidity(dovecot, "lists")
    client = dovecot.client()  # recreate the folder: a new UIDVALIDITY, UIDs restart
    client.delete_folder("lists")
    client.create_folder("lists")
    client.logout()
    append(dovecot, msgs[2:], mailbox="lists")
    assert uidvalidity(dovecot, "lists") != old
    again = imp(store, url)
    assert again["messages"] == 3 and again["added"] == 0
    assert blobs(store, "z:1..") == before  # nothing lost
    locs, uids = sync_rows(store)
    assert locs == [f"{url};UIDVALIDITY={uidvalidity(dovecot, 'lists')}"] and sorted(uids) == [1, 2, 3]


def test_export_kw_and_refresh_mail_sync_on_imap(dovecot, sample_corpus, tmp_path):
    netrc(dovecot)
    append(dovecot, corpus_messages(sample_corpus, 3))
    store = tmp_path / "store"
    imp(store, dovecot.url())
    _, uids = sync_rows(store)
    (tmp_path / "one.eml").write_bytes(run_cli("blob", "--store", str(store), uids[1]).stdout)
    run_cli("tag", "--store", str(store), "--quiet", str(tmp_path / "one.eml"), "+kw:flagged", "+kw:answered")
    r = run_cli("export-kw", "--store", str(store), dovecot.url(), "--json")
    assert json.loads(r.stdout)[0]["exported"] == 1
    client = dovecot.client()
    client.select_folder("INBOX")
    flags = {uid: {f.decode() for f in v[b"FLAGS"]} for uid, v in client.fetch([1, 2, 3], ["FLAGS"]).items()}
    assert {r"\Flagged", r"\Answered"} <= flags[1] and r"\Flagged" not in flags[2]
    client.add_flags([2], [r"\Deleted"])
    client.expunge()
    client.logout()
    r = run_cli("refresh-mail-sync", "--store", str(store), dovecot.url(), "--json")
    assert json.loads(r.stdout)[0]["removed"] == 1
    assert sorted(sync_rows(store)[1]) == [1, 3]
    assert run_cli("ls-mail-sync", "--store", str(store), "--remote").stdout.decode().startswith(dovecot.url())


def test_dropped_connection_keeps_what_was_fetched(dovecot, sample_corpus, tmp_path):
    from lei_store.errors import RemoteError
    from lei_store.ops.imports import Importer
    from lei_store.sources import Source
    from lei_store.write.store import Store

    netrc(dovecot)
    append(dovecot, corpus_messages(sample_corpus, 250))
    store = Store.create(tmp_path / "store")
    kicked = []

    def kick_once(_n):
        if len(kicked) == 0 and writer.stats.messages >= 120:
            kicked.append(subprocess.run(["doveadm", "-c", str(dovecot.conf), "kick", dovecot.user],
                                         capture_output=True))

    with pytest.raises(RemoteError, match="FETCH"):
        with store.writer(jobs=1, batch_size=50, progress=kick_once) as writer:
            Importer(writer).import_source(Source("imap", None, dovecot.url()))
    got = writer.stats.messages
    assert kicked and 120 <= got < 250
    _, uids = sync_rows(store.root)
    assert len(uids) == got  # every message read before the failure is stored and recorded
    resumed = imp(store.root, dovecot.url())
    assert resumed["messages"] == 250 - got  # the next run fetches only the rest
    assert len(sync_rows(store.root)[1]) == 250


@pytest.mark.parametrize("case", ["wrong password", "no such folder", "unreachable", "tls"])
def test_imap_failures_are_one_line(dovecot, tmp_path, case):
    from dovecot import free_ports

    netrc(dovecot, password="wrong" if case == "wrong password" else None)
    url = {"wrong password": dovecot.url(), "no such folder": dovecot.url("nope"),
           "unreachable": f"imap://{dovecot.user}@127.0.0.1:{free_ports(1)[0]}/INBOX",
           "tls": dovecot.url(ssl=True)}[case]
    r = imp(tmp_path / "store", url, check=False)
    err = r.stderr.decode()
    assert r.returncode != 0 and err.count("\n") == 1 and "Traceback" not in err, err
    assert dovecot.password not in err
    assert re.search({"wrong password": "login", "no such folder": "select|nope",
                      "unreachable": "connect", "tls": "certif|TLS|SSL"}[case], err, re.I), err


def test_a_message_over_max_size_is_not_even_fetched(dovecot, sample_corpus, tmp_path):
    netrc(dovecot)
    msgs = corpus_messages(sample_corpus, 3)
    big = msgs[0].replace(b"\n\n", b"\nX-Pad: " + b"p" * 20000 + b"\n\n", 1)
    append(dovecot, [msgs[1], big, msgs[2]])
    store = tmp_path / "store"
    r = imp(store, "--max-size", "16K", dovecot.url(), check=False)
    err = r.stderr.decode()
    assert r.returncode == 66 and ";UID=2: " in err and "over the 16384-byte limit" in err, err
    assert len(blobs(store, "z:1..")) == 2
    again = imp(store, dovecot.url())  # without the limit the next run takes it: UID 2 was not recorded
    assert again["messages"] == 1


class CountingRelay:
    """A loopback relay between lei-store and Dovecot that counts the FETCH responses the
    server sends (what a re-sync reads), the bytes passed on unchanged."""

    def __init__(self, port: int):
        import socket
        import threading

        self.fetches = 0
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = self._server.getsockname()[1]
        self._target = port
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        import socket
        import threading

        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self._target))
            threading.Thread(target=self._pipe, args=(client, upstream, False), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, True), daemon=True).start()

    def _pipe(self, src, dst, count: bool) -> None:
        import re

        pending = b""
        with src, dst:  # either side closing ends both directions
            try:
                while data := src.recv(65536):
                    if count:
                        pending += data
                        lines = pending.split(b"\r\n")
                        pending = lines.pop()
                        self.fetches += sum(1 for line in lines if re.match(rb"\* \d+ FETCH ", line))
                    dst.sendall(data)
            except OSError:  # the other direction closed the sockets first
                pass

    def close(self) -> None:
        self._server.close()


def test_a_resync_fetches_only_the_flags_that_changed(dovecot, sample_corpus, tmp_path):
    """CONDSTORE: the second import asks CHANGEDSINCE the HIGHESTMODSEQ the first one saw, so
    only the messages whose flags changed come back; without a modseq kept, all of them."""
    netrc(dovecot)
    append(dovecot, corpus_messages(sample_corpus, 200))
    relay = CountingRelay(dovecot.port)
    url = f"imap://{dovecot.user}@127.0.0.1:{relay.port}/INBOX"
    store = tmp_path / "store"
    try:
        assert imp(store, url)["messages"] == 200
        client = dovecot.client()
        client.select_folder("INBOX")
        client.add_flags(list(range(1, 11)), [r"\Flagged"])
        client.add_flags([11], [r"\Deleted"])
        client.expunge()
        client.logout()
        relay.fetches = 0
        second = imp(store, url)
        assert second["messages"] == 0
        assert relay.fetches == 10  # the ten flagged ones, not the 199 known
        _, uids = sync_rows(store)
        assert len(uids) == 199 and 11 not in uids
        assert blobs(store, "kw:flagged") == {uids[u] for u in range(1, 11)}
        relay.fetches = 0
        assert imp(store, url)["messages"] == 0
        assert relay.fetches == 0  # nothing changed, nothing fetched
        db = sqlite3.connect(store / "mail_sync.sqlite3")  # a store an older lei-store synced
        db.execute("DELETE FROM lei_store_imap_modseq")
        db.commit()
        db.close()
        relay.fetches = 0
        imp(store, url)
        assert relay.fetches == 199  # every known flag read once, and the modseq kept again
        relay.fetches = 0
        imp(store, url)
        assert relay.fetches == 0
    finally:
        relay.close()


def test_flags_an_import_without_keywords_skipped_come_with_the_next(dovecot, sample_corpus, tmp_path):
    """--no-kw keeps no modseq: the next import reads every flag, not only those changed since."""
    netrc(dovecot)
    append(dovecot, corpus_messages(sample_corpus, 3), flags=[[r"\Flagged"]])
    store = tmp_path / "store"
    imp(store, "--no-kw", dovecot.url())
    assert blobs(store, "kw:flagged") == set()
    imp(store, dovecot.url())
    _, uids = sync_rows(store)
    assert blobs(store, "kw:flagged") == {uids[1]}
