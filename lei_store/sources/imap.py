"""IMAP folders for import and keyword export (spec §7.2, §7.3, §10.1, §10.3), on imapclient.

Three pieces: ImapURL parses imap[s]:// URLs and spells the canonical folder
location lei records in mail_sync; credentials() finds a password (~/.netrc,
then `git credential`, asked as lei asks it); Session is one logged-in
connection with a selected mailbox. Every network, TLS, login or protocol
failure leaves this module as a one-line RemoteError that names the folder,
never the password.

Behaviour checked against lei 1.9 and Dovecot 2.3: see tests/test_imap_client.py.
"""

from __future__ import annotations

import ipaddress
import netrc
import re
import socket
import ssl
import subprocess
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Iterable, Iterator
from urllib.parse import quote, unquote

from imapclient import IMAPClient, imap_utf7
from imapclient.exceptions import IMAPClientError

from lei_store import git
from lei_store.errors import InputError, RemoteError
from lei_store.mail.keywords import IMAP_FLAGS
from lei_store.paths import lei_config_path

DEFAULT_PORTS = {"imap": 143, "imaps": 993}
_URL = re.compile(r"^(imaps?)://([^/?#]*)(?:/([^?#]*))?$", re.IGNORECASE)
_HOSTPORT = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[^:\[\]]+)(?::(\d*))?$")
_USER_SAFE = "!$&'()*+,=-._~"  # RFC 3986 sub-delims minus ";" (it starts ;AUTH=)
FLAGS_BATCH = 1000


@dataclass(frozen=True)
class ImapURL:
    """An IMAP mailbox URL (RFC 5092 subset); user and mailbox are percent-decoded.

    A URL without a user means AUTH=ANONYMOUS, as in lei. The *_spelling
    fields keep what canonical() must reproduce as written: lei keeps the
    ;AUTH= parameter and the mailbox exactly as the URL spelt them (";auth=plain",
    "Sent%20Items" and "Sent Items" are three different folders to it), while it
    re-encodes the user ("b%6fb" -> "bob").
    """

    scheme: str
    user: str | None
    auth: str | None
    host: str
    port: int | None
    mailbox: str = "INBOX"
    uidvalidity: int | None = None
    auth_spelling: str | None = field(default=None, repr=False)
    mailbox_spelling: str | None = field(default=None, repr=False)

    @property
    def ssl(self) -> bool:
        return self.scheme == "imaps"

    @property
    def effective_port(self) -> int:
        return self.port or DEFAULT_PORTS[self.scheme]

    @property
    def mechanism(self) -> str:
        """The SASL mechanism to log in with: ANONYMOUS, PLAIN, or LOGIN (the LOGIN command)."""
        if not self.user:
            return "ANONYMOUS"
        return self.auth if self.auth not in (None, "*") else "LOGIN"

    def _authority(self) -> str:
        if self.user:
            auth = self.auth_spelling or (f";AUTH={self.auth}" if self.auth else "")
            userinfo = quote(self.user, safe=_USER_SAFE) + auth
        else:
            userinfo = ";AUTH=ANONYMOUS"  # lei spells every user-less URL so
        host = f"[{self.host}]" if ":" in self.host else self.host
        port = f":{self.port}" if self.port not in (None, DEFAULT_PORTS[self.scheme]) else ""
        return f"{userinfo}@{host}{port}"

    def folder_url(self) -> str:
        """The canonical location without ;UIDVALIDITY: finds older entries of this folder."""
        mailbox = self.mailbox_spelling or quote(self.mailbox, safe=_USER_SAFE + ":@/")
        return f"{self.scheme}://{self._authority()}/{mailbox}"

    def canonical(self, uidvalidity: int) -> str:
        """The mail_sync folder location, spelt as lei 1.9 spells it (§7.2)."""
        return f"{self.folder_url()};UIDVALIDITY={int(uidvalidity)}"

    def __str__(self) -> str:
        return self.folder_url()


def parse_url(url: str) -> ImapURL:
    """Parse imap[s]://[USER][;AUTH=MECH]@HOST[:PORT][/MAILBOX[;UIDVALIDITY=N]]."""
    m = _URL.match(url.strip())
    if not m:
        raise InputError(f"{url}: not an imap:// or imaps:// mailbox URL")
    scheme, authority, path = m.group(1).lower(), m.group(2), m.group(3) or ""
    userinfo, _, hostport = authority.rpartition("@")
    user, auth, auth_spelling = _parse_userinfo(url, userinfo)
    host, port = _parse_hostport(url, hostport)
    spelling, uidvalidity = _parse_mailbox(url, path)
    return ImapURL(scheme, user, auth, host, port, unquote(spelling), uidvalidity,
                   auth_spelling, spelling)


def _parse_userinfo(url: str, userinfo: str) -> tuple[str | None, str | None, str | None]:
    user, sep, param = userinfo.partition(";")
    if ":" in user:
        raise InputError(f"{url}: no passwords in URLs, please (use ~/.netrc or git credential)")
    auth = None
    if sep:
        name, eq, auth = param.partition("=")
        if name.upper() != "AUTH" or not eq or not auth:
            raise InputError(f"{url}: expected ;AUTH=MECHANISM after the user name")
        auth = unquote(auth).upper()
    if not user:
        if auth not in (None, "*", "ANONYMOUS"):
            raise InputError(f"{url}: AUTH={auth} needs a user name")
        return None, "ANONYMOUS", None
    return unquote(user), auth, (sep + param if sep else None)


def _parse_hostport(url: str, hostport: str) -> tuple[str, int | None]:
    m = _HOSTPORT.match(hostport)
    if not m:
        raise InputError(f"{url}: missing or malformed host")
    host, port = m.group(1).strip("[]").lower(), m.group(2)
    if port and not 0 < int(port) < 65536:
        raise InputError(f"{url}: port {port} is out of range")
    return host, int(port) if port else None


def _parse_mailbox(url: str, path: str) -> tuple[str, int | None]:
    """The mailbox as spelt (INBOX when absent) and the ;UIDVALIDITY=N value."""
    spelling, *params = path.split(";")
    uidvalidity = None
    for param in params:
        name, _, value = param.partition("=")
        if name.upper() != "UIDVALIDITY" or not value.isdigit():
            raise InputError(f"{url}: only ;UIDVALIDITY=N may follow the mailbox name")
        uidvalidity = int(value)
    return spelling or "INBOX", uidvalidity


# --- credentials: ~/.netrc, then git's credential helpers ---

def credentials(url: ImapURL, *, use_netrc: bool = True) -> tuple[str, str] | None:
    """(user, password) for URL, or None (ANONYMOUS needs none, or nothing was found).

    lei itself reads ~/.netrc only under `--netrc`; use_netrc=False is its default.
    """
    if url.mechanism == "ANONYMOUS":
        return None
    return (_from_netrc(url) if use_netrc else None) or _from_git(url)


def _from_netrc(url: ImapURL) -> tuple[str, str] | None:
    try:
        entry = netrc.netrc().authenticators(url.host)
    except FileNotFoundError:
        return None
    except netrc.NetrcParseError as e:
        raise InputError(f"~/.netrc: {e.msg.removeprefix('~/.netrc ')}"
                         + (f" (line {e.lineno})" if e.lineno else "")) from None
    except OSError as e:
        raise InputError(f"~/.netrc: {e.strerror or e}") from None
    if not entry or not entry[2] or entry[0] not in ("", url.user):
        return None
    user = url.user or entry[0]  # a URL without a user takes the login .netrc names
    return (user, entry[2]) if user else None


def _credential_input(url: ImapURL, user: str | None, password: str | None = None) -> str:
    # host without the port, as lei sends it: so both find the same stored entry
    lines = [f"protocol={url.scheme}", f"host={url.host}"]
    lines += [f"username={user}"] if user else []
    lines += [f"password={password}"] if password is not None else []
    return "\n".join(lines) + "\n\n"


def _git_credential(action: str, text: str) -> str | None:
    # with no helper configured git would prompt: on the terminal, or through an
    # askpass program; these make it fail instead (an empty GIT_ASKPASS wins over SSH_ASKPASS)
    try:
        done = git.run(None, "credential", action, input=text.encode(), extra_env={"GIT_ASKPASS": ""}, timeout=120)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.decode("utf-8", "replace") if done.returncode == 0 else None


def _from_git(url: ImapURL) -> tuple[str, str] | None:
    out = _git_credential("fill", _credential_input(url, url.user))
    fields = dict(line.partition("=")[::2] for line in (out or "").splitlines())
    user, password = fields.get("username") or url.user, fields.get("password")
    return (user, password) if user and password else None


def approve(url: ImapURL, user: str, password: str) -> None:
    """Tell git's credential helpers that these worked (best effort)."""
    _git_credential("approve", _credential_input(url, user, password))


def reject(url: ImapURL, user: str, password: str) -> None:
    """Tell git's credential helpers to forget these (best effort)."""
    _git_credential("reject", _credential_input(url, user, password))


# --- the connection ---

def ssl_context(url: ImapURL | None = None) -> ssl.SSLContext:
    """The default context (it honours SSL_CERT_FILE); imap.sslVerify=false turns checks off."""
    ctx = ssl.create_default_context()
    if url is not None and config_bool("imap.sslverify", url) is False:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


def config_bool(key: str, url: ImapURL) -> bool | None:
    """KEY from lei's config file, else from git's; [imap "imaps://host"] sections apply too."""
    lei = lei_config_path()
    for where in ([["-f", str(lei)]] if lei.is_file() else []) + [[]]:
        try:
            done = git.run(None, "config", *where, "--bool", "--get-urlmatch", key, str(url), timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            return None
        value = {"true": True, "false": False}.get(done.stdout.decode().strip())
        if value is not None:
            return value
    return None


def _wants_starttls(url: ImapURL) -> bool:
    """lei's default: STARTTLS on imap:// when offered, except to loopback and .onion hosts."""
    if url.ssl:
        return False
    setting = config_bool("imap.starttls", url)
    if setting is not None:
        return setting
    try:
        loopback = ipaddress.ip_address(url.host).is_loopback
    except ValueError:
        loopback = False  # a name, even "localhost": lei upgrades those too
    return not loopback and not url.host.endswith(".onion")


def _text(value) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _reason(e: BaseException) -> str:
    """One line from an exception; imaplib likes to wrap server text in b'...' reprs."""
    if isinstance(e, ssl.SSLCertVerificationError):
        return f"TLS certificate verification failed: {e.verify_message}"
    if isinstance(e, ssl.SSLError):
        hint = " (is that a plain-text port?)" if e.reason == "WRONG_VERSION_NUMBER" else ""
        return f"TLS failed: {e.reason or e}{hint}"
    if isinstance(e, TimeoutError):
        return "timed out"
    if isinstance(e, socket.gaierror):
        return f"cannot resolve host: {e.strerror}"
    if isinstance(e, OSError) and e.strerror:
        return e.strerror
    text = re.sub(r"(?<!\w)\[?b(['\"])(.*?)\1\]?", r"\2", str(e) or type(e).__name__)
    text = re.sub(r"^\w+ failed: |\s*\([\d.+ ]+ secs\)", "", text)  # imapclient's prefix, Dovecot's timings
    return " ".join(text.split())


def to_lf(raw: bytes) -> bytes:
    """A fetched message as lei stores IMAP mail: CRLF made LF (servers send CRLF; checked with lei 1.9)."""
    return raw.replace(b"\r\n", b"\n")


def _wire_mailbox(name: str) -> str:
    """ASCII names go as written (lei passes them through, so users spell modified
    UTF-7 themselves); names with other characters are encoded for them."""
    return name if name.isascii() else imap_utf7.encode(name).decode("ascii")


def _flags(data: dict) -> tuple[str, ...]:
    """FLAGS of a FETCH item as str, without \\Recent: it belongs to a session, not the message."""
    return tuple(t for t in map(_text, data.get(b"FLAGS", ())) if t.lower() != "\\recent")


def _batches(uids: Iterable[int], size: int) -> Iterator[list[int]]:
    ordered = sorted(set(uids))
    for i in range(0, len(ordered), size):
        yield ordered[i:i + size]


class Session:
    """One logged-in IMAP connection to url.mailbox; use as a context manager.

    login= overrides credentials(url); without it, a password that came from
    git credential is approved after a good login and rejected after a refusal.
    """

    def __init__(self, url: ImapURL, *, timeout: float = 60,
                 login: tuple[str, str] | None = None, use_netrc: bool = True):
        self.url = url
        self._password: str | None = None
        self._selected: dict | None = None
        self._readonly = True
        self._condstore = False  # CONDSTORE enabled: SELECT tells HIGHESTMODSEQ (RFC 7162)
        if url.mechanism not in ("LOGIN", "PLAIN", "ANONYMOUS"):
            raise RemoteError(f"{url}: AUTH={url.mechanism} is not supported (LOGIN, PLAIN, ANONYMOUS are)")
        with self._errors("connect"):
            self.client = IMAPClient(url.host, url.effective_port, ssl=url.ssl,
                                     ssl_context=ssl_context(url) if url.ssl else None,
                                     timeout=timeout)
        self.client.folder_encode = False  # see _wire_mailbox
        try:
            self._starttls()
            self._login(login, use_netrc)
        except BaseException:
            self.close()
            raise

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Log out; a connection that is already gone is simply dropped."""
        try:
            self.client.logout()
        except Exception:
            try:
                self.client.shutdown()
            except Exception:
                pass

    @contextmanager
    def _errors(self, doing: str):
        """Turn whatever the network, TLS or imapclient throws into one RemoteError line."""
        try:
            yield
        except RemoteError:
            raise
        except (OSError, IMAPClientError) as e:
            msg = f"{self.url}: {doing} failed ({_reason(e)})"
            if self._password:
                msg = msg.replace(self._password, "***")
            raise RemoteError(msg) from None

    def _starttls(self) -> None:
        if not _wants_starttls(self.url):
            return
        with self._errors("STARTTLS"):
            if self.client.has_capability("STARTTLS"):
                self.client.starttls(ssl_context(self.url))

    def _login(self, given: tuple[str, str] | None, use_netrc: bool) -> None:
        if self.url.mechanism == "ANONYMOUS":
            with self._errors("login"):
                self.client.sasl_login("ANONYMOUS", lambda _: self.url.user or "lei-store")
            return
        creds, from_git = given or (_from_netrc(self.url) if use_netrc else None), False
        if creds is None:
            creds = _from_git(self.url)
            from_git = creds is not None
        if creds is None:
            raise RemoteError(f"{self.url}: no password found (put it in ~/.netrc "
                              f"or a git credential helper)")
        user, self._password = creds
        try:
            with self._errors("login"):
                if self.url.mechanism == "PLAIN":
                    self.client.plain_login(user, self._password)
                else:
                    self.client.login(user, self._password)
        except RemoteError:
            if from_git:
                reject(self.url, user, self._password)
            raise
        if from_git:
            approve(self.url, user, self._password)

    def select(self, readonly: bool = True) -> Session:
        """SELECT (or EXAMINE when readonly) the URL's mailbox."""
        if self._selected is None and self.client.has_capability("CONDSTORE") and self.client.has_capability("ENABLE"):
            with self._errors("ENABLE CONDSTORE"):  # only before the first SELECT (RFC 5161)
                self._condstore = b"CONDSTORE" in {bytes(c).upper() for c in self.client.enable("CONDSTORE")}
        with self._errors(f"select {self.url.mailbox!r}"):
            self._selected = self.client.select_folder(_wire_mailbox(self.url.mailbox), readonly=readonly)
        self._readonly = readonly
        got, want = self._selected.get(b"UIDVALIDITY"), self.url.uidvalidity
        if want is not None and got != want:
            raise RemoteError(f"{self.url}: UIDVALIDITY mismatch (the URL says {want}, the server {got})")
        return self

    def _info(self, writable: bool = False) -> dict:
        if self._selected is None or (writable and self._readonly):
            self.select(readonly=not writable)
        assert self._selected is not None  # select() sets it
        return self._selected

    @property
    def uidvalidity(self) -> int:
        return int(self._info()[b"UIDVALIDITY"])

    @property
    def location(self) -> str:
        """The canonical mail_sync folder location of this mailbox."""
        return self.url.canonical(self.uidvalidity)

    @property
    def permanent_flags(self) -> tuple[str, ...]:
        """Flags STORE may set; EXAMINE reports none, so this selects read-write."""
        return tuple(_text(f) for f in self._info(writable=True).get(b"PERMANENTFLAGS", ()))

    def uids(self, after: int = 0) -> list[int]:
        """All UIDs greater than AFTER, ascending."""
        self._info()
        with self._errors("UID SEARCH"):
            found = self.client.search(["UID", f"{after + 1}:*"] if after > 0 else ["ALL"])
        # N:* always matches the last message, even when its UID is below N
        return sorted(uid for uid in found if uid > after)

    @property
    def highest_modseq(self) -> int | None:
        """The mailbox's HIGHESTMODSEQ, None when the server keeps none (no CONDSTORE, NOMODSEQ)."""
        value = self._info().get(b"HIGHESTMODSEQ") if self._condstore else None
        return int(value) if value else None

    def flags(self, uids: Iterable[int], changed_since: int | None = None) -> dict[int, tuple[str, ...]]:
        """FLAGS of the UIDs that still exist; with CHANGED_SINCE (a modseq, CONDSTORE), only of
        those whose flags changed after it."""
        self._info()
        out: dict[int, tuple[str, ...]] = {}
        modifiers = [f"CHANGEDSINCE {changed_since}"] if changed_since is not None else None
        for batch in _batches(uids, FLAGS_BATCH):
            with self._errors("FETCH FLAGS"):
                got = self.client.fetch(batch, ["FLAGS"], modifiers=modifiers)
            out.update((uid, _flags(data)) for uid, data in got.items() if b"FLAGS" in data)
        return out

    def fetch(self, uids: Iterable[int], batch: int = 100, *, max_size: int | None = None,
              on_skip=None) -> Iterator[tuple[int, tuple[str, ...], bytes]]:
        """(uid, flags, raw message as the server sends it), ascending, BATCH at a time.

        Messages flagged \\Deleted are skipped (§7.3); vanished UIDs are too. With MAX_SIZE,
        larger messages are not fetched at all (their RFC822.SIZE is asked first) and named
        to ON_SKIP(where, why).
        """
        self._info()
        for chunk in _batches(uids, batch):
            if max_size is not None:
                chunk = self._small_enough(chunk, max_size, on_skip)
            with self._errors("FETCH"):
                got = self.client.fetch(chunk, ["BODY.PEEK[]", "FLAGS"]) if chunk else {}
            for uid in chunk:
                data = got.get(uid, {})
                flags = _flags(data)
                if b"BODY[]" in data and "\\deleted" not in {f.lower() for f in flags}:
                    yield uid, flags, data[b"BODY[]"]

    def _small_enough(self, uids: list[int], max_size: int, on_skip) -> list[int]:
        """The UIDs worth fetching whole: not \\Deleted, not over MAX_SIZE (those are named)."""
        with self._errors("FETCH RFC822.SIZE"):
            sizes = self.client.fetch(uids, ["RFC822.SIZE", "FLAGS"])
        keep = []
        for uid in uids:
            data = sizes.get(uid, {})
            size = data.get(b"RFC822.SIZE", 0)
            if uid not in sizes or "\\deleted" in {f.lower() for f in _flags(data)}:
                continue
            if size > max_size:
                if on_skip:
                    on_skip(f"{self.url};UID={uid}", f"{size} bytes, over the {max_size}-byte limit (--max-size)")
            else:
                keep.append(uid)
        return keep

    def set_flags(self, uid: int, flags: Iterable[str], mode: str = "merge") -> tuple[str, ...]:
        """Export keyword flags to UID; returns the message's flags afterwards.

        Only flags PERMANENTFLAGS allows are stored. merge adds them; set makes
        the keyword flags (IMAP_FLAGS) exactly FLAGS and leaves other flags
        (\\Deleted, $Junk, ...) alone.
        """
        if mode not in ("merge", "set"):
            raise ValueError(f"mode must be merge or set, not {mode!r}")
        wanted = self._permitted(flags)
        with self._errors("STORE"):
            if mode == "merge":
                got = self.client.add_flags([uid], wanted) if wanted else {}
            else:
                got = self.client.set_flags([uid], self._set_mode_flags(uid, wanted))
        if uid in got:
            return _flags({b"FLAGS": got[uid]})
        return self.flags([uid]).get(uid, ())

    def _permitted(self, flags: Iterable[str]) -> list[str]:
        allowed = {f.lower() for f in self.permanent_flags}
        anykw = "\\*" in allowed  # the server accepts new $keywords
        return [f for f in flags
                if f.lower() in allowed or (anykw and not f.startswith("\\"))]

    def _set_mode_flags(self, uid: int, wanted: list[str]) -> list[str]:
        ours = {f.lower() for f in IMAP_FLAGS}
        current = self.flags([uid]).get(uid, ())
        keep = [f for f in current if f.lower() not in ours]
        return keep + wanted
