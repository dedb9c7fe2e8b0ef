"""A throw-away Dovecot IMAP server for tests: plain and TLS ports on 127.0.0.1, user alice.

start_dovecot(tmp) writes a private config (base_dir, state_dir, logs, cert,
password file all under tmp), runs `dovecot -F` and waits for a greeting.

Root vs not: a non-root Dovecot runs every process as the current user, so
everything, mail included, lives under tmp. As root, Dovecot refuses uid 0
for mail access and for login processes, so mail belongs to `nobody` and the
login processes run as dovenull (or nobody); since pytest's tmp tree is 0700
root, nobody cannot reach it and the mail dir is a separate mkdtemp()
directory, removed by stop(). The internal user stays root so that auth can
read the password file under tmp.
"""

from __future__ import annotations

import functools
import grp
import os
import pwd
import re
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from imapclient import IMAPClient

HOST = "127.0.0.1"
START_TIMEOUT = 15.0
STOP_TIMEOUT = 3.0


class DovecotUnavailable(Exception):
    """Dovecot is missing or would not start here; the reason says why (turn it into a skip)."""


@dataclass
class Dovecot:
    conf: Path
    log: Path
    port: int
    ssl_port: int
    cert: Path
    mail_dir: Path
    proc: subprocess.Popen
    host: str = HOST
    user: str = "alice"
    password: str = "wonderland-7"
    _own_mail_dir: bool = field(default=False, repr=False)

    def url(self, mailbox: str = "INBOX", ssl: bool = False) -> str:
        scheme, port = ("imaps", self.ssl_port) if ssl else ("imap", self.port)
        return f"{scheme}://{self.user}@{self.host}:{port}/{mailbox}"

    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.cert))

    def client(self, ssl: bool = False) -> IMAPClient:
        """A logged-in imapclient connection (no folder selected)."""
        port = self.ssl_port if ssl else self.port
        client = IMAPClient(self.host, port, ssl=ssl, timeout=10,
                            ssl_context=self.ssl_context() if ssl else None)
        client.login(self.user, self.password)
        return client

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        """SIGTERM (the master needs ~1 s), then SIGKILL to the process group; bounded."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                pass
        _killpg(self.proc.pid)  # a hung master, or children outliving it (the log process does)
        self.proc.wait(5)
        if self._own_mail_dir:
            shutil.rmtree(self.mail_dir, ignore_errors=True)


def _killpg(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except OSError:
        pass


def dovecot_version() -> tuple[int, int]:
    if shutil.which("dovecot") is None:
        raise DovecotUnavailable("dovecot is not installed (tools/install-peers.sh installs dovecot-imapd)")
    out = subprocess.run(["dovecot", "--version"], capture_output=True, text=True).stdout
    m = re.match(r"(\d+)\.(\d+)", out)
    if not m:
        raise DovecotUnavailable(f"cannot tell the dovecot version from {out.strip()!r}")
    return int(m.group(1)), int(m.group(2))


def free_ports(n: int) -> list[int]:
    """N distinct ports that were free a moment ago (all bound at once, so distinct)."""
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind((HOST, 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


@functools.cache
def _cert_and_key() -> tuple[bytes, bytes]:
    """One self-signed cert for 127.0.0.1 per test process: RSA keygen is the slow part."""
    with tempfile.TemporaryDirectory() as d:
        cert, key = Path(d, "cert.pem"), Path(d, "key.pem")
        done = subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
             "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
             "-keyout", str(key), "-out", str(cert)], capture_output=True, text=True)
        if done.returncode != 0:
            raise DovecotUnavailable(f"openssl could not make a certificate: {done.stderr.strip()}")
        return cert.read_bytes(), key.read_bytes()


def _accounts(tmp: Path) -> tuple[dict, Path, bool]:
    """Process users, the mail owner and the mail dir, for root or not (see module docstring)."""
    me = pwd.getpwuid(os.getuid())
    if os.getuid() != 0:
        users = {"internal": me.pw_name, "login": me.pw_name, "group": _group_name(me.pw_gid)}
        return {**users, "uid": me.pw_uid, "gid": me.pw_gid}, tmp / "mail", False
    try:
        nobody = pwd.getpwnam("nobody")
    except KeyError:
        raise DovecotUnavailable("running as root, but there is no 'nobody' user to own the mail") from None
    login = "dovenull" if _user_exists("dovenull") else "nobody"
    mail = Path(tempfile.mkdtemp(prefix="lei-dovecot-mail-"))
    os.chmod(mail, 0o755)
    os.chown(mail, nobody.pw_uid, nobody.pw_gid)
    users = {"internal": "root", "login": login, "group": "root"}
    return {**users, "uid": nobody.pw_uid, "gid": nobody.pw_gid}, mail, True


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


def _group_name(gid: int) -> str:
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)


def _config(version: tuple[int, int], tmp: Path, mail: Path, acct: dict,
            ports: list[int], passwd: Path) -> str:
    """dovecot.conf for 2.3 (Debian 12); 2.4 renamed most of these settings."""
    common = f"""\
base_dir = {tmp}/run
state_dir = {tmp}/state
log_path = {tmp}/dovecot.log
instance_name = lei-test-{ports[0]}
listen = {HOST}
protocols = imap
ssl = yes
auth_mechanisms = plain login anonymous
auth_anonymous_username = alice
default_internal_user = {acct['internal']}
default_internal_group = {acct['group']}
default_login_user = {acct['login']}
first_valid_uid = 1
first_valid_gid = 1
auth_failure_delay = 0
"""
    # only root may chroot; as root the chroot is also what lets dovenull reach its sockets
    chroot = "" if os.getuid() == 0 else "  chroot =\n"
    # no auth penalty: tests log in badly on purpose and must not be slowed down
    listeners = f"""\
service anvil {{
{chroot}  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
service ipc {{
{chroot}}}
service imap-login {{
{chroot}  inet_listener imap {{
    port = {ports[0]}
  }}
  inet_listener imaps {{
    port = {ports[1]}
    ssl = yes
  }}
}}
"""
    if version < (2, 4):
        return common + listeners + f"""\
ssl_cert = <{tmp}/cert.pem
ssl_key = <{tmp}/key.pem
disable_plaintext_auth = no
mail_location = maildir:{mail}/%u
passdb {{
  driver = passwd-file
  args = scheme=PLAIN {passwd}
}}
userdb {{
  driver = static
  args = uid={acct['uid']} gid={acct['gid']} home={mail}/%u
}}
"""
    # untested best effort for Dovecot 2.4 (Debian 13)
    return f"dovecot_config_version = {version[0]}.{version[1]}.0\n" \
           f"dovecot_storage_version = {version[0]}.{version[1]}.0\n" + common + listeners + f"""\
ssl_server_cert_file = {tmp}/cert.pem
ssl_server_key_file = {tmp}/key.pem
auth_allow_cleartext = yes
mail_driver = maildir
mail_path = {mail}/%{{user}}
mail_home = {mail}/%{{user}}
passdb passwd-file {{
  passwd_file_path = {passwd}
}}
userdb static {{
  fields {{
    uid = {acct['uid']}
    gid = {acct['gid']}
  }}
}}
"""


def _greets(port: int, tls: bool = False) -> bool:
    """True once an IMAP login process greets on PORT and the probe has logged out.

    Logging out (not just closing) matters: a login process still busy with a
    half-gone probe made the master take >5 s to stop.
    """
    try:
        with socket.create_connection((HOST, port), timeout=2) as raw:
            if tls:
                ctx = ssl.create_default_context()
                ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
                raw = ctx.wrap_socket(raw)
            with raw.makefile("rwb") as f:
                if not f.readline().startswith(b"* OK"):
                    return False
                f.write(b"p LOGOUT\r\n")
                f.flush()
                while f.readline():  # until the server closes
                    pass
        return True
    except OSError:
        return False


def start_dovecot(tmp: Path) -> Dovecot:
    """Configure and start a private Dovecot under TMP; raises DovecotUnavailable if it cannot run."""
    version = dovecot_version()
    tmp = Path(tmp).absolute()
    tmp.mkdir(parents=True, exist_ok=True)
    cert_pem, key_pem = _cert_and_key()
    (tmp / "cert.pem").write_bytes(cert_pem)
    (tmp / "key.pem").write_bytes(key_pem)
    os.chmod(tmp / "key.pem", 0o600)
    acct, mail, own_mail = _accounts(tmp)
    server = Dovecot(conf=tmp / "dovecot.conf", log=tmp / "dovecot.log", port=0, ssl_port=0,
                     cert=tmp / "cert.pem", mail_dir=mail, proc=None, _own_mail_dir=own_mail)
    passwd = tmp / "passwd"
    passwd.write_text(f"{server.user}:{{PLAIN}}{server.password}\n")
    server.port, server.ssl_port = ports = free_ports(2)
    server.conf.write_text(_config(version, tmp, mail, acct, ports, passwd))
    try:
        with open(tmp / "dovecot.stderr", "wb") as err:
            # a session of its own: stop() can then SIGKILL the whole process group
            server.proc = subprocess.Popen(["dovecot", "-F", "-c", str(server.conf)],
                                           stdin=subprocess.DEVNULL, stdout=err, stderr=err,
                                           start_new_session=True)
    except OSError as e:
        if own_mail:
            shutil.rmtree(mail, ignore_errors=True)
        raise DovecotUnavailable(f"cannot run dovecot: {e}") from None
    _wait_ready(server, tmp)
    return server


def _wait_ready(server: Dovecot, tmp: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if server.proc.poll() is not None or " Fatal: " in server.log_tail():
            break  # the master may keep running, throttling a service that cannot start
        if _greets(server.port) and _greets(server.ssl_port, tls=True):
            return
        time.sleep(0.05)
    why = "exited" if server.proc.poll() is not None else "did not get ready"
    server.stop()
    stderr = (tmp / "dovecot.stderr").read_text(errors="replace").strip()
    raise DovecotUnavailable(f"dovecot {why} (uid {os.getuid()}): "
                             + " | ".join(filter(None, [stderr[-500:], server.log_tail(5)])))
