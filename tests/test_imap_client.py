"""lei_store.sources.imap against a real Dovecot: URLs, credentials, reading, flag export, failures."""

from __future__ import annotations

import os
import re
import ssl
import subprocess

import pytest
from dovecot import free_ports

from lei_store.errors import InputError, RemoteError
from lei_store.mail.keywords import imap_flags, imap_keywords
from lei_store.sources.imap import Session, approve, credentials, parse_url, reject, to_lf

LF_MSG = b"From: a@example.org\nTo: b@example.org\nSubject: one\nMessage-ID: <1@x>\n\nbody one\n"
CRLF_MSG = b"From: a@example.org\r\nSubject: two\r\nMessage-ID: <2@x>\r\n\r\nbody two\r\n"
MIXED_MSG = b"From: a@example.org\nSubject: three\nMessage-ID: <3@x>\n\nbody\r\nthree\n"


def as_crlf(raw: bytes) -> bytes:
    return raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def fill(server, messages=((LF_MSG, [r"\Seen"]), (CRLF_MSG, [r"\Flagged", "$Forwarded"]), (MIXED_MSG, [])),
         mailbox="INBOX") -> int:
    """APPEND messages with flags; returns the mailbox UIDVALIDITY from APPENDUID."""
    client = server.client()
    try:
        if mailbox != "INBOX":
            client.create_folder(mailbox)
        for raw, flags in messages:
            reply = client.append(mailbox, raw, flags=flags)
        return int(re.search(rb"APPENDUID (\d+)", reply).group(1))
    finally:
        client.logout()


def session(server, url=None, **kw) -> Session:
    return Session(parse_url(url or server.url()), login=(server.user, server.password), **kw)


def git(*args: str) -> None:
    subprocess.run(["git", *args], check=True, capture_output=True)


def tls(s: Session) -> bool:
    return isinstance(s.client.socket(), ssl.SSLSocket)


def one_line(e: pytest.ExceptionInfo) -> str:
    text = str(e.value)
    assert "\n" not in text
    return text


# --- URLs ---

def test_lei_observed_location():
    url = parse_url("imap://;AUTH=ANONYMOUS@127.0.0.1:21143/inbox.test.0")
    assert (url.scheme, url.user, url.auth, url.host, url.port, url.mailbox) == \
        ("imap", None, "ANONYMOUS", "127.0.0.1", 21143, "inbox.test.0")
    assert url.canonical(1795349128) == "imap://;AUTH=ANONYMOUS@127.0.0.1:21143/inbox.test.0;UIDVALIDITY=1795349128"


# Spellings as lei 1.9 recorded them in mail_sync (test_lei_records_the_same_locations
# re-checks several against the real lei): host lower-cased, default port dropped,
# user decoded and re-encoded, ;AUTH= and the mailbox kept as written, no user = ANONYMOUS.
@pytest.mark.parametrize("given, canonical", [
    ("imaps://Bob@Mail.Example.COM:993/INBOX", "imaps://Bob@mail.example.com/INBOX"),
    ("imap://bob@host:143/inbox", "imap://bob@host/inbox"),
    ("imaps://bob@host:143/INBOX", "imaps://bob@host:143/INBOX"),
    ("imap://bob@host", "imap://bob@host/INBOX"),  # lei refuses a URL without a mailbox
    ("imap://user;auth=plain@host/lists/lkml", "imap://user;auth=plain@host/lists/lkml"),
    ("imap://b%6fb%40example.org;AUTH=Plain@host/IN%42OX", "imap://bob%40example.org;AUTH=Plain@host/IN%42OX"),
    ("imap://bob@host/Sent%20Items", "imap://bob@host/Sent%20Items"),
    ("imap://bob@host/Sent Items", "imap://bob@host/Sent Items"),
    ("imap://alice;AUTH=*@host/INBOX", "imap://alice;AUTH=*@host/INBOX"),
    ("imap://host/x;uidvalidity=3", "imap://;AUTH=ANONYMOUS@host/x"),
    ("imap://;AUTH=*@host/INBOX", "imap://;AUTH=ANONYMOUS@host/INBOX"),
    ("imap://;auth=anonymous@host/INBOX", "imap://;AUTH=ANONYMOUS@host/INBOX"),
    ("imap://[::1]:1143/x", "imap://;AUTH=ANONYMOUS@[::1]:1143/x"),
])
def test_canonical(given, canonical):
    url = parse_url(given)
    assert url.folder_url() == canonical
    assert url.canonical(7) == f"{canonical};UIDVALIDITY=7"
    assert parse_url(url.canonical(7)).canonical(7) == url.canonical(7)  # stable


def test_parse_decodes_and_keeps_uidvalidity():
    url = parse_url("imap://bob%40example.org;AUTH=*@HOST:1143/Sent%20Items;UIDVALIDITY=42")
    assert (url.user, url.auth, url.host, url.port, url.mailbox, url.uidvalidity) == \
        ("bob@example.org", "*", "host", 1143, "Sent Items", 42)
    assert url.mechanism == "LOGIN"
    assert parse_url("imaps://h/INBOX").uidvalidity is None
    assert parse_url("imaps://h/INBOX").mechanism == "ANONYMOUS"
    assert parse_url("imap://a;auth=plain@h/INBOX").mechanism == "PLAIN"


@pytest.mark.parametrize("bad", [
    "http://host/INBOX", "imap://", "imap:///INBOX", "imap://host:99999/", "imap://bob:pw@host/",
    "imap://host/INBOX;UID=3", "imap://host/INBOX;UIDVALIDITY=x", "imap://u;FOO=1@host/",
    "imap://host/INBOX?SUBJECT%20x", "imap://;AUTH=PLAIN@host/INBOX",
])
def test_bad_urls(bad):
    with pytest.raises(InputError) as e:
        parse_url(bad)
    assert one_line(e).startswith(bad)


def test_keyword_maps():
    assert imap_keywords((b"\\Seen", b"$forwarded", b"\\Deleted", "\\FLAGGED", b"\\Recent")) == \
        {"seen", "forwarded", "flagged"}
    assert imap_flags({"seen", "junk", "forwarded", "draft"}) == ["\\Seen", "\\Draft", "$Forwarded"]


# --- credentials ---

def test_credentials_from_netrc(hermetic_env):
    netrc = hermetic_env / ".netrc"
    netrc.write_text("machine 127.0.0.1 login alice password s3cret\nmachine h2 password any-login\n")
    netrc.chmod(0o600)
    url = parse_url("imap://alice@127.0.0.1:1143/INBOX")
    assert credentials(url) == ("alice", "s3cret")
    assert credentials(url, use_netrc=False) is None  # lei's default: ~/.netrc only with --netrc
    assert credentials(parse_url("imaps://bob@h2/INBOX")) == ("bob", "any-login")
    assert credentials(parse_url("imap://bob@127.0.0.1/INBOX")) is None  # login differs, no helper
    assert credentials(parse_url("imap://127.0.0.1/INBOX")) is None  # no user: ANONYMOUS


def test_credentials_from_git_helper():
    git("config", "--global", "credential.helper", "!f() { echo username=alice; echo password=fromgit; }; f")
    assert credentials(parse_url("imap://alice@127.0.0.1:1143/INBOX")) == ("alice", "fromgit")


def test_approve_and_reject_reach_the_helper(hermetic_env):
    store = hermetic_env / "git-credentials"
    git("config", "--global", "credential.helper", f"store --file={store}")
    url = parse_url("imaps://alice@mail.example.org:1993/INBOX")
    assert credentials(url) is None
    approve(url, "alice", "pw1")
    assert store.read_text().strip() == "imaps://alice:pw1@mail.example.org"  # no port: as lei asks
    assert credentials(url) == ("alice", "pw1")
    reject(url, "alice", "pw1")
    assert credentials(url) is None


# --- reading a mailbox ---

def test_session_reads_uids_flags_and_bytes(dovecot):
    uidvalidity = fill(dovecot)
    with session(dovecot) as s:
        assert s.uidvalidity == uidvalidity
        assert s.location == f"imap://alice@127.0.0.1:{dovecot.port}/INBOX;UIDVALIDITY={uidvalidity}"
        assert s.uids() == [1, 2, 3]
        assert s.uids(after=1) == [2, 3]
        assert s.uids(after=3) == []  # 4:* would match UID 3 on the wire
        assert s.uids(after=100) == []
        # \Recent (Dovecot sets it on appended mail) is a session's, not the message's
        assert s.flags([1, 2, 3, 99]) == {1: ("\\Seen",), 2: ("\\Flagged", "$Forwarded"), 3: ()}
        got = list(s.fetch([3, 1, 2], batch=2))
    assert [(uid, flags) for uid, flags, _ in got] == \
        [(1, ("\\Seen",)), (2, ("\\Flagged", "$Forwarded")), (3, ())]
    # Dovecot stores LF and serves CRLF, whatever line ends were appended
    assert [raw for _, _, raw in got] == [as_crlf(LF_MSG), CRLF_MSG, as_crlf(MIXED_MSG)]
    # another mailbox of the same account has its own UIDs and UIDVALIDITY
    lists = fill(dovecot, [(LF_MSG, [])], mailbox="lists.test")
    with session(dovecot, dovecot.url("lists.test")) as s:
        assert s.uids() == [1]
        assert s.uidvalidity == lists != uidvalidity
        assert s.location.endswith(f"/lists.test;UIDVALIDITY={lists}")
    # non-ASCII names: modified UTF-7 as written, or UTF-8 percent-encoded (encoded for the user)
    fill(dovecot, [(LF_MSG, []), (CRLF_MSG, [])], mailbox="Entwürfe")
    for spelling in ("Entw&APw-rfe", "Entw%C3%BCrfe"):
        with session(dovecot, dovecot.url(spelling)) as s:
            assert s.uids() == [1, 2]
            assert s.location.endswith(f"/{spelling};UIDVALIDITY={s.uidvalidity}")


def test_fetch_skips_deleted_and_expunged(dovecot):
    fill(dovecot)
    client = dovecot.client()
    client.select_folder("INBOX")
    client.add_flags([2], [r"\Deleted"])
    with session(dovecot) as s:
        assert "\\Deleted" in s.flags([2])[2]
        uids = s.uids()
        client.expunge()  # UID 2 vanishes after the search, before the fetch
        client.logout()
        assert uids == [1, 2, 3]
        assert [uid for uid, _, _ in s.fetch(uids)] == [1, 3]


def test_set_flags_merge_and_set(dovecot):
    fill(dovecot)
    client = dovecot.client()
    client.select_folder("INBOX")
    client.add_flags([2], [r"\Deleted", "$Junk"])
    client.logout()
    with session(dovecot) as s:
        assert s.uids() == [1, 2, 3]  # read-only EXAMINE first: flag export must reselect
        assert {"\\Seen", "\\Flagged", "\\*"} <= set(s.permanent_flags)
        assert set(s.set_flags(1, imap_flags({"flagged", "forwarded"}))) == {"\\Seen", "\\Flagged", "$Forwarded"}
        assert set(s.set_flags(1, ["\\Answered"], mode="set")) == {"\\Answered"}
        # set mode replaces keyword flags only: \Deleted and $Junk stay
        assert set(s.set_flags(2, ["\\Seen"], mode="set")) == {"\\Seen", "\\Deleted", "$Junk"}
        assert set(s.set_flags(3, ["\\Recent", "\\Draft"])) == {"\\Draft"}  # \Recent is not permanent
    with session(dovecot) as s:
        assert s.flags([1, 2, 3]) == {1: ("\\Answered",), 2: ("\\Deleted", "\\Seen", "$Junk"), 3: ("\\Draft",)}


# --- logging in ---

def test_anonymous_plain_and_netrc(dovecot, hermetic_env):
    uidvalidity = fill(dovecot)
    anon = f"imap://;AUTH=ANONYMOUS@127.0.0.1:{dovecot.port}/INBOX"
    for url in (anon, f"imap://127.0.0.1:{dovecot.port}/INBOX"):
        with Session(parse_url(url)) as s:  # Dovecot maps ANONYMOUS to alice (auth_anonymous_username)
            assert s.location == f"{anon};UIDVALIDITY={uidvalidity}"
            assert s.uids() == [1, 2, 3]
    plain = parse_url(f"imap://alice;AUTH=PLAIN@127.0.0.1:{dovecot.port}/INBOX")
    with pytest.raises(RemoteError, match="no password found"):
        Session(plain)
    netrc = hermetic_env / ".netrc"
    netrc.write_text(f"machine 127.0.0.1 login alice password {dovecot.password}\n")
    netrc.chmod(0o600)
    with Session(plain) as s:
        assert s.uids(after=2) == [3]


def test_git_credentials_approved_then_rejected(dovecot, hermetic_env):
    store = hermetic_env / "git-credentials"
    git("config", "--global", "credential.helper", f"store --file={store}")
    url = parse_url(dovecot.url())
    approve(url, dovecot.user, dovecot.password)
    with Session(url) as s:
        s.select()
    assert dovecot.password in store.read_text()
    approve(url, dovecot.user, "stale")
    with pytest.raises(RemoteError) as e:
        Session(url)
    assert "login failed" in one_line(e) and "stale" not in one_line(e)
    assert store.read_text() == ""  # the refused password was rejected


def test_refusals(dovecot):
    with pytest.raises(RemoteError) as e:
        Session(parse_url(dovecot.url()), login=("alice", "not-the-password"))
    msg = one_line(e)
    assert msg.startswith(f"{dovecot.url()}: login failed (")
    assert "AUTHENTICATIONFAILED" in msg and "not-the-password" not in msg

    with session(dovecot, dovecot.url("no.such.box")) as s:
        with pytest.raises(RemoteError) as e:
            s.uids()
    assert one_line(e).startswith(f"{dovecot.url('no.such.box')}: select 'no.such.box' failed (")
    assert "exist" in one_line(e)

    uidvalidity = fill(dovecot)
    with session(dovecot, f"{dovecot.url()};UIDVALIDITY={uidvalidity}") as s:
        assert s.uids() == [1, 2, 3]
    with session(dovecot, f"{dovecot.url()};UIDVALIDITY=5") as s:
        with pytest.raises(RemoteError) as e:
            s.uids()
    assert one_line(e) == f"{dovecot.url()}: UIDVALIDITY mismatch (the URL says 5, the server {uidvalidity})"


# --- TLS ---

def test_imaps(dovecot, monkeypatch):
    uidvalidity = fill(dovecot)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    monkeypatch.setenv("SSL_CERT_FILE", str(dovecot.cert))
    with session(dovecot, dovecot.url(ssl=True)) as s:
        assert s.uidvalidity == uidvalidity
        assert s.location.startswith(f"imaps://alice@127.0.0.1:{dovecot.ssl_port}/INBOX;")
        assert [uid for uid, _, _ in s.fetch(s.uids())] == [1, 2, 3]

    plain_port = f"imaps://alice@127.0.0.1:{dovecot.port}/INBOX"
    with pytest.raises(RemoteError) as e:
        session(dovecot, plain_port, timeout=5)
    assert one_line(e).startswith(f"{plain_port}: connect failed (TLS")

    monkeypatch.delenv("SSL_CERT_FILE")
    with pytest.raises(RemoteError) as e:
        session(dovecot, dovecot.url(ssl=True))
    assert "certificate verification failed" in one_line(e)
    git("config", "--global", "imap.sslVerify", "false")  # lei honours it too
    with session(dovecot, dovecot.url(ssl=True)) as s:
        assert s.uids() == [1, 2, 3]


def test_starttls_to_named_hosts(dovecot, monkeypatch):
    """Like lei: imap:// to a host name upgrades with STARTTLS; to a loopback address it does not."""
    fill(dovecot)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    named = f"imap://alice@localhost:{dovecot.port}/INBOX"
    with pytest.raises(RemoteError) as e:
        session(dovecot, named)
    assert one_line(e).startswith(f"{named}: STARTTLS failed (TLS certificate verification failed")
    monkeypatch.setenv("SSL_CERT_FILE", str(dovecot.cert))
    with session(dovecot, named) as s:
        assert tls(s) and s.uids() == [1, 2, 3]
    with session(dovecot) as s:  # 127.0.0.1
        assert not tls(s)
    git("config", "--global", "imap.starttls", "false")
    with session(dovecot, named) as s:
        assert not tls(s)


# --- failures without a server ---

def test_unreachable_port():
    (port,) = free_ports(1)
    url = f"imap://alice@127.0.0.1:{port}/INBOX"
    with pytest.raises(RemoteError) as e:
        Session(parse_url(url), login=("alice", "x"), timeout=5)
    assert one_line(e) == f"{url}: connect failed (Connection refused)"


def test_unknown_host():
    with pytest.raises(RemoteError) as e:
        Session(parse_url("imap://alice@no-such-host.invalid/INBOX"), login=("alice", "x"), timeout=5)
    assert "cannot resolve host" in one_line(e)


def test_unsupported_mechanism():
    with pytest.raises(RemoteError, match="AUTH=CRAM-MD5 is not supported"):
        Session(parse_url("imap://a;AUTH=CRAM-MD5@127.0.0.1:1/INBOX"), login=("a", "x"))


def test_connection_drops_mid_fetch(dovecot):
    fill(dovecot)
    with session(dovecot) as s:
        stream = s.fetch(s.uids(), batch=1)
        assert next(stream)[0] == 1
        dovecot.stop()
        with pytest.raises(RemoteError) as e:
            list(stream)
    assert one_line(e).startswith(f"{dovecot.url()}: FETCH failed (")


# --- the real lei against the same server ---

def test_lei_records_the_same_locations(dovecot, lei, tmp_path):
    """lei import of the fixture's folders: same mail_sync locations, same credential
    request, and the blobs are what we fetch with CRLF made LF."""
    fill(dovecot)
    fill(dovecot, [(LF_MSG, [])], mailbox="Sent Items")
    logs = {}
    for who, env in (("lei", lei.env), ("us", os.environ)):
        logs[who] = tmp_path / f"credential-{who}"
        helper = f"!f() {{ cat >> {logs[who]}; echo password={dovecot.password}; }}; f"
        subprocess.run(["git", "config", "--global", "credential.helper", helper], env=env, check=True)
    port = dovecot.port
    urls = [f"imap://alice@127.0.0.1:{port}/INBOX", f"imap://127.0.0.1:{port}/INBOX",
            f"imap://al%69ce;auth=plain@127.0.0.1:{port}/INBOX", f"imap://alice@127.0.0.1:{port}/Sent%20Items"]
    ours, fetched = set(), set()
    for url in urls:
        lei("import", url)
        with Session(parse_url(url)) as s:
            ours.add(s.location)
            fetched |= {to_lf(raw) for _, _, raw in s.fetch(s.uids())}
    assert set(lei("ls-mail-sync").stdout.decode().split("\n")) - {""} == ours
    assert logs["us"].read_text() == logs["lei"].read_text()  # get requests (approve/store too)
    blobs = subprocess.run(["git", "--git-dir", str(lei.store / "ALL.git"), "cat-file", "--batch-all-objects",
                            "--batch-check=%(objectname) %(objecttype)"], capture_output=True, text=True).stdout
    lei_blobs = {subprocess.run(["git", "--git-dir", str(lei.store / "ALL.git"), "cat-file", "blob", oid],
                                capture_output=True).stdout
                 for oid, kind in (line.split() for line in blobs.splitlines()) if kind == "blob"}
    assert lei_blobs == fetched
