"""`serve-www`: the store on the web, read-only, through Debian's public-inbox-httpd.

A lei store is an extindex in all but name (lei-store-format(5)), so public-inbox's own web
interface serves it as it is (threads, search, raw messages, Atom feeds) once a public-inbox
config names it `extindex.all.topdir`; it is then at /all/. public-inbox reads over.sqlite3 and
ALL.git afresh, but searches a Xapian snapshot it keeps for a while: we make it reopen the store
after each write (follow_writes), so what an import adds is found within a second or two.

Nothing is written into the store, and the user's ~/.public-inbox/config is never read: the
config and a small PSGI file live in a private temporary directory (PI_CONFIG names it),
removed when the server stops. No `extindex.all.url` is set, so links and feeds name whatever
host the browser asked for.

We bind the socket ourselves and hand it over as systemd does (LISTEN_FDS, public-inbox-daemon(8)):
a port in use or a host we cannot bind is then our one-line error, not the daemon's, and
clients queue on the socket until the daemon takes them.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from lei_store.errors import InputError, PeerUnavailableError

HTTPD = "public-inbox-httpd"
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
START_TIMEOUT = 30.0  # Perl loading PublicInbox::WWW takes ~1 s; a loaded machine more
STOP_GRACE = 10.0  # SIGTERM, then SIGKILL
POLL = 1.0  # how often we look whether a writer committed (see follow_writes)

# public-inbox's front page lists extindexes from their ei15/misc Xapian index, which a lei
# store leaves an empty directory (format §6.8): / answered 500 "Couldn't detect type of
# database". So / sends the browser to /all/; everything else is PublicInbox::WWW, used as its
# manual page (PublicInbox::WWW(3pm)) shows.
PSGI = """\
# Written by lei-store serve-www: public-inbox's web interface for one lei store (extindex
# "all" in PI_CONFIG); / goes to all/, as a lei store has no index for the list of inboxes.
use strict;
use warnings;
use Plack::Builder;
use PublicInbox::WWW;

my $www = PublicInbox::WWW->new;
builder {
\tenable 'Head';
\tsub {
\t\tmy ($env) = @_;
\t\treturn [302, ['Location' => 'all/', 'Content-Type' => 'text/plain'], ["all/\\n"]]
\t\t\tif $env->{PATH_INFO} eq '/';
\t\t$www->call($env);
\t};
};
"""


class _Stop(Exception):
    """SIGINT or SIGTERM arrived: stop the daemon and return."""


def _raise_stop(signum, frame) -> None:
    raise _Stop


def find_httpd() -> str:
    """The public-inbox-httpd on PATH, or the error saying how to get it."""
    found = shutil.which(HTTPD)
    if not found:
        raise PeerUnavailableError(f"{HTTPD} is not installed (Debian: apt install public-inbox; "
                                   "tools/install-peers.sh installs it)")
    return found


def url_of(host: str, port: int) -> str:
    """Where a browser on this machine opens the store (a wildcard address through loopback)."""
    host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)
    return f"http://[{host}]:{port}/all/" if ":" in host else f"http://{host}:{port}/all/"


def listen_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket on HOST:PORT (IPv4 or IPv6, as HOST resolves)."""
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0][0]
        sock = socket.create_server((host, port), family=family, backlog=128)
    except OSError as e:
        why = os.strerror(e.errno) if e.errno else str(e)  # create_server's strerror names the address again
        raise InputError(f"cannot listen on {host}:{port}: {why}") from None
    sock.setblocking(False)  # the daemon wants it so (it warns, and fixes it, otherwise)
    return sock


def write_config(rundir: Path, root: Path) -> Path:
    """The public-inbox config naming ROOT extindex "all" (git-config syntax, value quoted)."""
    if "\n" in str(root):
        raise InputError(f"{root!r}: public-inbox's config cannot name a directory with a newline in it")
    quoted = str(root).replace("\\", "\\\\").replace('"', '\\"')
    config = rundir / "config"
    config.write_text(f'[extindex "all"]\n\ttopdir = "{quoted}"\n')
    return config


def start_httpd(httpd: str, root: Path, rundir: Path, sock: socket.socket) -> subprocess.Popen:
    """public-inbox-httpd in one process (-W0) on SOCK as fd 3, in its own session (a ^C at the
    terminal reaches only us; we stop it), killed by the kernel if we die first."""
    from lei_store.write.children import die_with_parent

    psgi = rundir / "www.psgi"
    psgi.write_text(PSGI)
    env = {k: v for k, v in os.environ.items() if not k.startswith("LISTEN_")}
    env.update(PI_CONFIG=str(write_config(rundir, root)), LISTEN_FDS="1")
    fd = sock.fileno()
    # LISTEN_PID must be the daemon's own pid, known only once it runs: sh sets it, moves the
    # socket to fd 3, and execs the daemon in its own place (same pid)
    script = f'LISTEN_PID=$$ exec "$0" "$@" 3<&{fd}' + (f" {fd}<&-" if fd != 3 else "")
    parent = os.getpid()
    return subprocess.Popen(["sh", "-c", script, httpd, "-W0", str(psgi)], env=env, cwd=root,
                            stdin=subprocess.DEVNULL, pass_fds=(fd,), start_new_session=True,
                            preexec_fn=lambda: die_with_parent(parent))


def wait_ready(proc: subprocess.Popen, url: str) -> None:
    """Until the daemon answers HEAD / (its PSGI app is loaded), or the error if it exits."""
    import http.client
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        if proc.poll() is not None:
            raise PeerUnavailableError(f"{HTTPD} exited with {proc.returncode} before serving (its messages are above)")
        conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=5)
        try:
            conn.request("HEAD", "/")
            if conn.getresponse().status < 500:
                return
        except OSError:
            pass
        finally:
            conn.close()
        if time.monotonic() > deadline:
            raise PeerUnavailableError(f"{HTTPD} did not answer within {START_TIMEOUT:.0f} s")
        time.sleep(0.1)


def _over_stamp(root: Path) -> tuple:
    """What changes when a writer commits over.sqlite3 (the last of its commits: Xapian is done)."""
    stamp: list[tuple[int, int] | None] = []
    for name in ("over.sqlite3", "over.sqlite3-wal"):
        try:
            st = (root / "ei15" / name).stat()
            stamp.append((st.st_mtime_ns, st.st_size))
        except OSError:
            stamp.append(None)
    return tuple(stamp)


def follow_writes(proc: subprocess.Popen, root: Path) -> int:
    """Wait for the daemon to exit; meanwhile, SIGHUP it after each write to the store.

    public-inbox keeps a Xapian snapshot open for ~30 s after a search, so a message imported
    meanwhile was listed (over.sqlite3 is read afresh) but not found by a search; SIGHUP makes
    it reload its config and reopen the store (public-inbox-daemon(8))."""
    last = _over_stamp(root)
    while True:
        try:
            return proc.wait(timeout=POLL)
        except subprocess.TimeoutExpired:
            pass
        now = _over_stamp(root)
        if now != last:
            last = now
            proc.send_signal(signal.SIGHUP)


def stop_httpd(proc: subprocess.Popen) -> None:
    """SIGTERM (the daemon exits at once; its git cat-file helpers see EOF and follow), SIGKILL
    if it is still there after STOP_GRACE seconds. Further ^C meanwhile are ignored."""
    for sig in STOP_SIGNALS:
        signal.signal(sig, signal.SIG_IGN)
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=STOP_GRACE)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def serve(root: Path, host: str, port: int, ready: Callable[[str], None]) -> None:
    """Serve ROOT on HOST:PORT until SIGINT or SIGTERM; READY(url) once the daemon answers.
    Returns when stopped; raises when the daemon cannot start or stops by itself."""
    httpd = find_httpd()
    sock = listen_socket(host, port)
    url = url_of(host, port)
    old = {sig: signal.signal(sig, _raise_stop) for sig in STOP_SIGNALS}
    try:
        with tempfile.TemporaryDirectory(prefix="lei-store-www-") as rundir:
            proc = None
            try:
                with sock:
                    proc = start_httpd(httpd, root, Path(rundir), sock)
                # our copy closed: if the daemon dies, clients are refused instead of left queueing
                wait_ready(proc, url)
                ready(url)
                code = follow_writes(proc, root)
                raise PeerUnavailableError(f"{HTTPD} stopped by itself (exit {code}; its messages are above)")
            except _Stop:
                pass
            finally:
                if proc is not None:
                    stop_httpd(proc)
    except _Stop:  # before the daemon started: nothing to stop
        pass
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)
