"""`lei-store serve-imap` with real clients (imapclient) on loopback: mailboxes are labels, flags
are keywords, UIDs are the store's; every write goes through the store's writer (lei-store q, the
change feed and fsck agree); IDLE sees changes made elsewhere; bad input is refused."""

from __future__ import annotations

import json
import shutil
import socket
import time
from pathlib import Path

import pytest
from conftest import Lei, need_lei, run_cli
from imapserver import PASSWORD, ImapServer


@pytest.fixture
def store(sample_corpus, tmp_path) -> Path:
    s = tmp_path / "store"
    run_cli("import", "--store", str(s), "-q", str(shutil.copytree(sample_corpus / "maildir", tmp_path / "md")))
    run_cli("tag", "--store", str(s), "--quiet", "-q", "s:scrub", "+L:scrub")
    return s


@pytest.fixture
def server(store, tmp_path):
    srv = ImapServer(store, tmp_path).start()
    yield srv
    assert srv.stop() == 0, srv.log.read_text()


def q(store: Path, *query: str) -> list[dict]:
    out = run_cli("q", "--store", str(store), "-f", "jsonl", "--dedupe=none", *query).stdout.splitlines()
    return [json.loads(x) for x in out]


def blobs(store: Path, *query: str) -> set[str]:
    return {r["blob"] for r in q(store, *query)}


def mailbox(store: Path, name: str) -> dict:
    return json.loads(run_cli("mailboxes", "--store", str(store), "--json", name).stdout)[0]


def uids_by_blob(store: Path, name: str) -> dict[str, int]:
    out = run_cli("changes", "--store", str(store), "--mailbox", name, "--json").stdout.splitlines()[:-1]
    return {c["blob"]: c["uid"] for c in map(json.loads, out) if c["kind"] != "removed"}


def blob_of(store: Path, client, uid: int) -> str:
    """The store blob behind a UID of the selected mailbox (by its BODY[])."""
    from storecheck import blob_oid

    return blob_oid(client.fetch([uid], ["BODY.PEEK[]"])[uid][b"BODY[]"])


def fsck_clean(store: Path) -> None:
    r = run_cli("fsck", "--store", str(store), check=False)
    assert r.returncode == 0, r.stdout.decode() + r.stderr.decode()


def test_mailboxes_uids_and_bytes_are_the_stores(server, store):
    c = server.client()
    try:
        names = {name for _flags, _d, name in c.list_folders()}
        assert {"INBOX", "All", "scrub"} <= names
        flags_of = {name: flags for flags, _d, name in c.list_folders()}
        assert b"\\All" in flags_of["All"]
        for name in ("All", "scrub"):
            sel = c.select_folder(name, readonly=True)
            box = mailbox(store, name)
            assert (sel[b"EXISTS"], sel[b"UIDVALIDITY"], sel[b"UIDNEXT"]) == \
                (box["exists"], box["uidvalidity"], box["uidnext"])
            want = uids_by_blob(store, name)
            got = c.fetch(c.search(["ALL"]), ["BODY.PEEK[]", "RFC822.SIZE", "FLAGS"])
            from storecheck import blob_oid

            assert {blob_oid(v[b"BODY[]"]): uid for uid, v in got.items()} == want  # bytes exactly as stored
            assert all(v[b"RFC822.SIZE"] == len(v[b"BODY[]"]) for v in got.values())
        c.select_folder("scrub", readonly=True)
        seen = set(c.search(["SEEN"]))
        assert len(seen) == mailbox(store, "scrub")["exists"] - mailbox(store, "scrub")["unseen"]
        env = c.fetch([min(seen)], ["ENVELOPE", "INTERNALDATE"])[min(seen)]
        assert b"scrub" in env[b"ENVELOPE"].subject.lower()
    finally:
        c.logout()


def test_store_copy_move_expunge_go_through_the_writer(server, store):
    c = server.client()
    try:
        c.select_folder("scrub")
        uids = c.search(["ALL"])
        first, second, third = uids[:3]
        c.add_flags([first], [b"\\Flagged", b"$Forwarded"])
        c.remove_flags([second], [b"\\Seen"])
        b1, b2, b3 = (blob_of(store, c, u) for u in (first, second, third))
        assert b1 in blobs(store, "kw:flagged", "AND", "kw:forwarded") and b2 not in blobs(store, "kw:seen")
        c.create_folder("Work/Now")
        copied = c.copy([first], "Work/Now")
        assert b"COPYUID" in copied if isinstance(copied, bytes) else True
        from lei_store.disk.mailboxes import label_of

        work = label_of("Work/Now")
        assert blobs(store, f"L:{work}") == {b1}
        c.move([second], "Work/Now")
        assert b2 in blobs(store, f"L:{work}") and b2 not in blobs(store, "L:scrub")
        c.move([third], "All")  # archive: the label goes, the message stays
        assert b3 not in blobs(store, "L:scrub") and b3 in blobs(store, "z:1..")
        c.select_folder("Work/Now")
        c.delete_messages(c.search(["ALL"])[:1])
        c.expunge()
        assert blobs(store, f"L:{work}") == {b2} and b1 in blobs(store, "z:1..")  # off the label, still stored
        c.select_folder("All")
        gone = c.search(["ALL"])[-1]
        victim = blob_of(store, c, gone)
        c.delete_messages([gone])
        c.expunge()
        assert victim not in blobs(store, "z:1..")  # expunged from All: removed from the store
        c.rename_folder("Work/Now", "Done")
        assert b2 in blobs(store, f"L:{label_of('Done')}")
        c.delete_folder("Done")
        assert not blobs(store, f"L:{label_of('Done')}") and b2 in blobs(store, "z:1..")
    finally:
        c.logout()
    fsck_clean(store)


def test_append_imports_with_flags_and_answers_appenduid(server, store):
    draft = b"From: me@example.org\nTo: you@example.org\nSubject: unsent thoughts\n\nno Message-ID yet\n"
    c = server.client()
    try:
        reply = c.append("scrub", draft, flags=[b"\\Draft", b"\\Seen"])
        uid = int(reply.split(b"APPENDUID ")[1].split()[1].rstrip(b"]"))
        from storecheck import blob_oid

        assert uids_by_blob(store, "scrub")[blob_oid(draft)] == uid
        hit = [r for r in q(store, "s:unsent") if r["blob"] == blob_oid(draft)]
        assert hit and set(hit[0]["kw"]) == {"draft", "seen"} and "scrub" in hit[0]["L"]
        c.select_folder("scrub", readonly=True)
        assert c.fetch([uid], ["BODY.PEEK[]"])[uid][b"BODY[]"] == draft
        c.append("INBOX", draft)  # the same message again: no copy, it joins INBOX too
        assert "inbox" in [r for r in q(store, "s:unsent")][0]["L"]
    finally:
        c.logout()
    fsck_clean(store)


def test_uids_survive_a_restart_and_a_reindex(server, store):
    c = server.client()
    before = c.select_folder("scrub", readonly=True)
    fetched = c.fetch(c.search(["ALL"]), ["BODY.PEEK[]"])
    c.logout()
    server.stop()
    run_cli("reindex", "--store", str(store), "-q")
    server.start()
    c = server.client()
    try:
        after = c.select_folder("scrub", readonly=True)
        assert (after[b"UIDVALIDITY"], after[b"UIDNEXT"]) == (before[b"UIDVALIDITY"], before[b"UIDNEXT"])
        assert c.fetch(c.search(["ALL"]), ["BODY.PEEK[]"]) == fetched
    finally:
        c.logout()


def test_idle_sees_an_import_from_the_cli_within_a_second(server, store, tmp_path):
    c = server.client()
    try:
        c.select_folder("All")
        c.idle()
        new = tmp_path / "new.eml"
        new.write_bytes(b"From: x@example.org\nMessage-ID: <idle@example.org>\nSubject: live\n\nhello\n")
        run_cli("import", "--store", str(store), "-q", str(new))
        done = time.monotonic()
        seen = []
        while time.monotonic() - done < 5 and not any(b"EXISTS" in r for r in map(repr_bytes, seen)):
            seen += c.idle_check(timeout=0.2)
        assert any(b"EXISTS" in r for r in map(repr_bytes, seen)), seen
        assert time.monotonic() - done < 1.5
        c.idle_done()
        c.idle()
        run_cli("tag", "--store", str(store), "--quiet", "-q", "mid:idle@example.org", "+kw:flagged")
        flagged = []
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not any(b"Flagged" in r for r in map(repr_bytes, flagged)):
            flagged += c.idle_check(timeout=0.2)
        c.idle_done()
        assert any(b"Flagged" in r for r in map(repr_bytes, flagged)), flagged
    finally:
        c.logout()


def repr_bytes(response) -> bytes:
    return repr(response).encode()


def test_real_lei_sees_imap_flag_changes(server, store, tmp_path):
    need_lei()
    c = server.client()
    try:
        c.select_folder("scrub")
        uid = c.search(["NOT", "FLAGGED"])[0]
        blob = blob_of(store, c, uid)
        c.add_flags([uid], [b"\\Flagged"])
    finally:
        c.logout()
    lei = Lei(tmp_path / "lei")
    try:
        lei("init", str(store))
        assert blob in lei.blobs("kw:flagged")
    finally:
        lei.close()


def test_a_wrong_password_is_delayed_and_refused(server):
    c = server.client(login=False)
    started = time.monotonic()
    from imapclient.exceptions import LoginError

    with pytest.raises(LoginError):
        c.login(server.user, "wrong")
    assert time.monotonic() - started >= 0.9
    assert b"failed login" in server.log.read_bytes()
    c.login(server.user, PASSWORD)
    c.logout()


def test_garbage_and_huge_literals_get_errors_not_a_crash(server):
    s = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    try:
        s.recv(1024)
        for line in (b"\x00\xff garbage\r\n", b"a1 FROB\r\n", b"a2 LOGIN\r\n"):
            s.sendall(line)
            assert s.recv(1024)
        s.sendall(b"a3 LOGIN " + server.user.encode() + b" {" + str(len(PASSWORD)).encode() + b"}\r\n")
        s.recv(1024)
        s.sendall(PASSWORD.encode() + b"\r\n")
        assert b"a3 OK" in s.recv(1024)
        s.sendall(b"a4 APPEND INBOX {1073741824}\r\n")  # 1 GiB announced: refused before it is read
        reply = s.recv(1024)
        assert reply and b"+" not in reply[:2], reply
    finally:
        s.close()
    c = server.client()  # the server still answers
    c.select_folder("All")
    c.logout()


@pytest.mark.parametrize("args, says", [
    (["--listen", "0.0.0.0:1"], "without TLS"), (["--listen", "nonsense"], "HOST:PORT"),
    (["--cert", "x.pem"], "go together")])
def test_unsafe_or_bad_options_are_refused(store, tmp_path, args, says):
    pw = tmp_path / "pw"
    pw.write_text("x\n")
    pw.chmod(0o600)
    r = run_cli("serve-imap", "--store", str(store), "--password-file", str(pw), *args, check=False)
    assert r.returncode == 1 and says.encode() in r.stderr and b"Traceback" not in r.stderr, r.stderr


def test_a_password_file_others_can_read_is_refused(store, tmp_path):
    pw = tmp_path / "pw"
    pw.write_text("x\n")
    pw.chmod(0o644)
    r = run_cli("serve-imap", "--store", str(store), "--password-file", str(pw), "--listen", "127.0.0.1:1",
                check=False)
    assert r.returncode == 1 and b"chmod 600" in r.stderr


def test_four_clients_while_an_import_of_2000_runs(server, store, tmp_path):
    """2 IDLE clients and 2 flag-changing ones while the CLI imports 2,000 messages: no client
    error, each flag change journaled exactly once, the counters exact, fsck clean."""
    import subprocess
    import sys
    import threading

    md = tmp_path / "incoming"
    for sub in ("cur", "new", "tmp"):
        (md / sub).mkdir(parents=True)
    for i in range(2000):
        (md / "new" / f"1700000000.M{i}P1.host").write_bytes(
            b"From: load@example.org\nMessage-ID: <load%d@example.org>\nSubject: load %d\n\nbody %d\n" % (i, i, i))
    errors: list[BaseException] = []
    stop = threading.Event()
    toggled: dict[int, list[str]] = {0: [], 1: []}

    def idler() -> None:
        try:
            c = server.client()
            c.select_folder("All")
            while not stop.is_set():
                c.idle()
                c.idle_check(timeout=0.5)
                c.idle_done()
            c.logout()
        except BaseException as e:  # noqa: BLE001 (any failure of a client fails the test)
            errors.append(e)

    def flagger(n: int) -> None:
        try:
            c = server.client()
            c.select_folder("scrub")
            mine = c.search(["ALL"])[n::2][:5]
            for round_ in range(4):
                for uid in mine:
                    (c.add_flags if round_ % 2 == 0 else c.remove_flags)([uid], [b"$Junk"])
                    toggled[n].append(f"{uid}:{round_ % 2}")
            c.logout()
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    _, before = changes_since(store, 0)
    threads = [threading.Thread(target=idler) for _ in range(2)] + \
              [threading.Thread(target=flagger, args=(n,)) for n in range(2)]
    imp = subprocess.Popen([sys.executable, "-m", "lei_store", "import", "--store", str(store), "-q", str(md)])
    for t in threads:
        t.start()
    assert imp.wait(timeout=600) == 0
    for t in threads[2:]:
        t.join(timeout=600)
    stop.set()
    for t in threads[:2]:
        t.join(timeout=60)
    assert not errors, errors
    rows, _ = changes_since(store, before)
    junk_changes = [r for r in rows if r["kind"] == "changed"]
    assert len(junk_changes) == len(toggled[0]) + len(toggled[1]) == 40  # each STORE once, no more
    assert len([r for r in rows if r["kind"] == "added"]) == 2000
    assert not blobs(store, "kw:junk")  # every toggle undone
    for name, query in (("All", "z:1.."), ("scrub", "L:scrub")):
        box = mailbox(store, name)
        assert box["exists"] == len(blobs(store, query))
        assert box["unseen"] == len(blobs(store, query, "AND", "NOT", "kw:seen"))
    fsck_clean(store)


def changes_since(store: Path, since: int) -> tuple[list[dict], int]:
    out = [json.loads(x) for x in run_cli("changes", "--store", str(store), "--since", str(since),
                                          "--json").stdout.splitlines()]
    return out[:-1], out[-1]["highestmodseq"]


def test_a_header_pythons_parser_chokes_on_gets_an_envelope_not_a_dropped_connection(server, store):
    """`To: Group: ; a@b` makes email.headerregistry raise; real archives hold such mail. FETCH
    ENVELOPE/BODYSTRUCTURE answer (the field NIL), SEARCH answers, the connection stays."""
    raw = b"From: a@example.org\nTo: Group: ; b@example.org\nMessage-ID: <group@x>\nSubject: odd to\n\nbody\n"
    c = server.client()
    try:
        c.append("All", raw)
        c.select_folder("All", readonly=True)
        uid = max(c.search(["ALL"]))
        got = c.fetch([uid], ["ENVELOPE", "BODYSTRUCTURE", "BODY.PEEK[]"])[uid]
        assert got[b"ENVELOPE"].subject == b"odd to" and got[b"BODY[]"] == raw
        assert isinstance(c.search(["TO", "b@example.org"]), list)  # an answer, not a dropped connection
        c.noop()
    finally:
        c.logout()


def test_search_is_answered_by_the_index_as_lei_q_answers(server, store):
    """FROM/TO/CC/SUBJECT/BODY/TEXT match what lei's f:/t:/c:/s:/b: match (words, phrases,
    stemmed single words), combined with flags, dates, NOT, OR and UIDs as IMAP combines them."""
    c = server.client()
    try:
        c.select_folder("All", readonly=True)
        uid = uids_by_blob(store, "All")

        def by_q(*query: str) -> set[int]:
            return {uid[b] for b in blobs(store, *query)}

        every = set(c.search(["ALL"]))
        cases = [
            (["FROM", "dmitri"], by_q("f:dmitri")),
            (["FROM", "bob@example.com"], by_q("f:bob@example.com")),
            (["TO", "Zoë"], by_q("t:zoë")),
            (["CC", "alice"], by_q("c:alice")),
            (["SUBJECT", "scrub speed"], by_q("s:scrub speed")),  # one argv word, as a shell passes s:"scrub speed"
            (["SUBJECT", "questions"], by_q("s:questions")),  # stemmed: "question" too
            (["BODY", "checksum"], by_q("b:checksum")),
            (["TEXT", "dmitri"], by_q(*"s:dmitri OR a:dmitri OR b:dmitri OR n:dmitri OR m:dmitri".split())),
            (["NOT", "FROM", "dmitri"], every - by_q("f:dmitri")),
            (["OR", "FROM", "bob", "FROM", "carol"], by_q("f:bob", "OR", "f:carol")),
            (["FLAGGED", "SUBJECT", "scrub"], by_q("s:scrub", "kw:flagged")),
            (["UNSEEN", "NOT", "SUBJECT", "patch"], by_q(*"NOT kw:seen AND NOT s:patch".split())),
            (["SINCE", "5-Mar-2024", "FROM", "carol"],  # INTERNALDATE: the received time, by UTC day
             {uid[r["blob"]] for r in q(store, "f:carol") if r["rt"] >= "2024-03-05"}),
        ]
        for criteria, want in cases:
            assert want, criteria  # each case finds something in the sample
            assert set(c.search(criteria, charset="UTF-8")) == want, criteria
        assert c.search(["SUBJECT", "trfs"]) == []  # words, not substrings (documented)
        some = sorted(every)[:20]
        assert set(c.search(["UID", f"{some[0]}:{some[-1]}", "SUBJECT", "scrub"])) == \
            by_q("s:scrub") & set(some)
        # what the index cannot answer is answered from the content, substring rules
        hdr = set(c.search(["HEADER", "Message-ID", "example.org"]))
        assert hdr and hdr <= every
        from email.header import decode_header, make_header

        def subject(v) -> str:  # the envelope's is as in the message: RFC 2047 words encoded
            return str(make_header(decode_header((v[b"ENVELOPE"].subject or b"").decode())))

        assert set(c.search(["SUBJECT", "#"])) == {u for u, v in c.fetch(every, ["ENVELOPE"]).items()
                                                  if "#" in subject(v)}
    finally:
        c.logout()


def test_select_reports_the_recent_messages_it_takes(server, store):
    """RECENT at SELECT counts what this session took (RFC 3501 \\Recent): all of a mailbox
    never selected, then none, then what joined it since."""
    c = server.client()
    try:
        first = c.select_folder("scrub")
        assert first[b"RECENT"] == first[b"EXISTS"] > 0
        assert set(c.search(["RECENT"])) == set(c.search(["ALL"]))
        assert c.select_folder("scrub")[b"RECENT"] == 0
        run_cli("tag", "--store", str(store), "--quiet", "-q", "s:compression AND NOT L:scrub", "+L:scrub")
        joined = mailbox(store, "scrub")["exists"] - first[b"EXISTS"]
        assert joined > 0
        assert c.select_folder("scrub", readonly=True)[b"RECENT"] == joined  # EXAMINE looks, takes nothing
        assert c.select_folder("scrub")[b"RECENT"] == joined
        assert c.select_folder("scrub")[b"RECENT"] == 0
    finally:
        c.logout()


def test_a_second_session_hears_of_every_change_at_its_next_command(server, store):
    """Another session's STORE, APPEND and EXPUNGE reach this one as FETCH, EXISTS and EXPUNGE
    at its next command (a command that changed nothing sends nothing: serve/selected.py)."""
    a, b = server.client(), server.client()
    try:
        a.select_folder("scrub")
        b.select_folder("scrub")
        uids = sorted(b.search(["ALL"]))
        plain = sorted(b.search(["UNFLAGGED"]))[:2]
        seqs = {uids.index(u) + 1 for u in plain}
        assert b.noop()[1] == []  # nothing changed: nothing said
        a.add_flags(plain, [b"\\Flagged"])
        said = b.noop()[1]
        assert {u for u, what, *_ in said if what == b"FETCH"} == seqs, said
        assert b.noop()[1] == []
        a.append("scrub", b"From: x@example.org\nMessage-ID: <second@example.org>\nSubject: scrub again\n\nhi\n")
        assert (len(uids) + 1, b"EXISTS") in b.noop()[1]
        a.delete_messages(uids[:1])
        a.expunge()
        assert (1, b"EXPUNGE") in b.noop()[1]
        assert all(b"\\Flagged" in v[b"FLAGS"] for v in b.fetch(plain, ["FLAGS"]).values())
    finally:
        a.logout()
        b.logout()


def test_a_search_string_that_is_not_utf8_gets_bad_and_the_connection_stays(server):
    """pymap's parser raised UnicodeDecodeError on it, and the client lost its connection."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as s, s.makefile("rwb") as f:

        def answer(tag: bytes) -> bytes:
            while line := f.readline():  # b"" when the server hangs up
                if line.startswith(tag + b" "):
                    return line
            return b"<connection closed>"

        f.readline()
        f.write(f'l LOGIN {server.user} "{PASSWORD}"\r\n'.encode())
        f.flush()
        assert answer(b"l").startswith(b"l OK")
        f.write(b"s SELECT All\r\n")
        f.flush()
        assert answer(b"s").startswith(b"s OK")
        f.write(b"a SEARCH CHARSET UTF-8 SUBJECT {2+}\r\n\xff\xfe\r\n")
        f.flush()
        assert answer(b"a").startswith(b"a BAD")
        f.write(b"b NOOP\r\n")
        f.flush()
        assert answer(b"b").startswith(b"b OK")
