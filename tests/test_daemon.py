"""The resident reader (lei_store.cli.daemon) answers q, lcat, blob, ls-label, mailboxes and changes
exactly as the command run in-process does, starts on first use, restarts when its code changes, and goes
away when told to or when idle."""

from __future__ import annotations

import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ROOT, run_cli

from lei_store.cli.protocol import encode_request

SCRIPT = [sys.executable, str(ROOT / "lei_store" / "bin" / "lei-store")]


@pytest.fixture(scope="module")
def store(sample_corpus, tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("daemon")
    maildir = shutil.copytree(sample_corpus / "maildir", base / "maildir")  # tag renames synced files
    s = base / "store"
    run_cli("import", "--store", str(s), "-q", "+L:sample", str(maildir))
    run_cli("tag", "--store", str(s), "-q", "s:scrub", "+kw:flagged", "+L:later")
    return s


@pytest.fixture
def env(tmp_path):
    """LEI_STORE_DAEMON on, a private runtime dir; the daemon is killed at teardown."""
    run = tmp_path / "run"
    run.mkdir(mode=0o700)
    e = dict(os.environ, LEI_STORE_DAEMON="1", XDG_RUNTIME_DIR=str(run), LEI_STORE_DAEMON_IDLE="120")
    yield e
    subprocess.run([*SCRIPT, "daemon-kill"], env=e, capture_output=True, timeout=30)
    assert daemon_pid(e) is None


def lei_store(*args, env, cwd=None, stdin=None, umask=-1) -> subprocess.CompletedProcess:
    return subprocess.run([*SCRIPT, *args], env=env, cwd=cwd, stdin=stdin, umask=umask, capture_output=True,
                          timeout=60)


def daemon_pid(env) -> int | None:
    r = subprocess.run([*SCRIPT, "daemon-pid"], env=env, capture_output=True, timeout=30)
    return int(r.stdout) if r.returncode == 0 else None


def children(pid: int) -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.add(int(entry.name))
    return found


def gone(pid: int) -> bool:
    """The process has ended (an orphan may linger as a zombie until it is reaped)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def wait_for(predicate, seconds: float = 20.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {predicate}")


def started(env, store) -> int:
    """Start the daemon the way a user does (the first read command) and wait for its spare worker."""
    lei_store("ls-label", "--store", str(store), env=env)
    pid = wait_for(lambda: daemon_pid(env))
    wait_for(lambda: children(pid))
    return pid


def served(env, store, *args, **kw) -> subprocess.CompletedProcess:
    """Run a command and check that the daemon's spare worker took it (a new spare replaces it)."""
    pid = daemon_pid(env)
    before = children(pid)
    r = lei_store(*args, env=env, **kw)
    wait_for(lambda: children(pid) and children(pid) != before)
    assert daemon_pid(env) == pid
    return r


QUERIES = [
    ("-f", "json", "s:scrub"),
    ("-f", "jsonl", "z:1.."),
    ("-f", "concatjson", "kw:flagged", "OR", "L:later"),
    ("-f", "json", "--pretty", "-t", "s:scrub"),
    ("-f", "jsonl", "--dedupe=mid", "--sort=relevance", "-n", "5", "b:the"),
    ("-f", "text", "s:scrub"),
    ("-f", "summary", "z:1.."),
    ("-f", "mboxrd", "s:scrub"),
    ("-f", "jsonl", "d:2019-01-01.."),
    ("-f", "jsonl", "s:("),  # a bad query: the same one line and exit code
    ("-f", "jsonl", "nope:x"),
    ("--help",),
]


def test_answers_equal_the_in_process_ones(store, env):
    started(env, store)
    cold = dict(env, LEI_STORE_DAEMON="0")
    for args in QUERIES:
        want = lei_store("q", "--store", str(store), *args, env=cold)
        got = served(env, store, "q", "--store", str(store), *args)
        assert (got.returncode, got.stdout, got.stderr) == (want.returncode, want.stdout, want.stderr), args
    oid = json.loads(lei_store("q", "--store", str(store), "-f", "jsonl", "-n", "1", "z:1..", env=cold)
                     .stdout)["blob"]
    for args in (("blob", oid), ("blob", oid[:12]), ("lcat", f"blob:{oid}"), ("ls-label",), ("blob", "0" * 40),
                 ("mailboxes", "--json"), ("changes", "--since", "3", "--json"), ("changes", "--since", "-1")):
        want = lei_store(*args, "--store", str(store), env=cold)
        got = served(env, store, *args, "--store", str(store))
        assert (got.returncode, got.stdout, got.stderr) == (want.returncode, want.stdout, want.stderr), args


def test_stdin_cwd_and_umask_are_the_clients(store, env, tmp_path):
    started(env, store)
    r = served(env, store, "q", "--store", str(store), "--stdin", "-f", "jsonl", stdin=open(os.devnull, "rb"))
    assert r.returncode != 0 and b"no query" in r.stderr
    query = tmp_path / "query"
    query.write_text('s:scrub AND d:2000-01-01..\n')
    r = served(env, store, "q", "--store", str(store), "--stdin", "-f", "jsonl", stdin=query.open("rb"))
    assert r.returncode == 0 and len(r.stdout.splitlines()) > 0
    modes = {}
    for name, how in (("cold", dict(env, LEI_STORE_DAEMON="0")), ("served", None)):
        work = tmp_path / name
        work.mkdir()
        args = ("q", "--store", str(store), "-o", "maildir:out", "s:scrub")
        r = served(env, store, *args, cwd=work, umask=0o027) if how is None else \
            lei_store(*args, env=how, cwd=work, umask=0o027)
        assert r.returncode == 0, r.stderr
        modes[name] = sorted((p.relative_to(work).parts[:2], p.stat().st_mode) for p in work.rglob("*"))
    assert modes["served"] == modes["cold"] and modes["cold"]
    assert all(mode & 0o027 == 0 for _, mode in modes["served"])


def test_a_closed_stdin_runs_in_process(store, env):
    started(env, store)
    r = subprocess.run(f"exec 0<&-; {' '.join(SCRIPT)} q --store {store} -f jsonl s:scrub", shell=True,
                       env=env, capture_output=True, timeout=60)
    assert r.returncode == 0 and r.stdout.count(b"\n") > 0


def test_first_use_starts_it_and_kill_stops_it(store, env):
    assert daemon_pid(env) is None
    first = lei_store("q", "--store", str(store), "-f", "jsonl", "s:scrub", env=env)  # answered in-process
    pid = wait_for(lambda: daemon_pid(env))
    worker = wait_for(lambda: children(pid))
    again = served(env, store, "q", "--store", str(store), "-f", "jsonl", "s:scrub")
    assert again.stdout == first.stdout
    assert lei_store("daemon-kill", env=env).returncode == 0
    assert daemon_pid(env) is None
    wait_for(lambda: not any(Path(f"/proc/{p}").exists() for p in worker))
    assert not list(Path(env["XDG_RUNTIME_DIR"], "lei-store").glob("*.sock"))


def test_idle_daemon_exits(store, env):
    env["LEI_STORE_DAEMON_IDLE"] = "1"
    pid = started(env, store)
    wait_for(lambda: gone(pid))
    assert daemon_pid(env) is None
    r = lei_store("q", "--store", str(store), "-f", "jsonl", "s:scrub", env=env)
    assert r.returncode == 0 and r.stdout
    fresh = wait_for(lambda: daemon_pid(env))  # that command started a new one, which idles out too
    wait_for(lambda: gone(fresh))


def test_changed_code_means_a_fresh_daemon(store, env):
    """A daemon whose modules changed on disk answers "stale": the client runs the command itself
    and starts a new daemon."""
    old = started(env, store)
    want = lei_store("q", "--store", str(store), "-f", "jsonl", "s:scrub", env=dict(env, LEI_STORE_DAEMON="0"))
    module = ROOT / "lei_store" / "paths.py"
    st = module.stat()
    os.utime(module, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    try:
        r = lei_store("q", "--store", str(store), "-f", "jsonl", "s:scrub", env=env)
        assert (r.returncode, r.stdout) == (0, want.stdout)
        new = wait_for(lambda: (daemon_pid(env) or old) != old and daemon_pid(env))
    finally:
        os.utime(module, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert gone(old)
    lei_store("daemon-kill", env=env)
    assert new != old


def test_concurrent_clients_all_get_their_answer(store, env):
    started(env, store)
    queries = ["s:scrub", "z:1..", "kw:flagged", "L:later", "b:the"] * 2
    cold = dict(env, LEI_STORE_DAEMON="0")
    want = {q: lei_store("q", "--store", str(store), "-f", "jsonl", q, env=cold).stdout for q in set(queries)}
    procs = [(q, subprocess.Popen([*SCRIPT, "q", "--store", str(store), "-f", "jsonl", q], env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)) for q in queries]
    for q, p in procs:
        out, err = p.communicate(timeout=60)
        assert (p.returncode, out, err) == (0, want[q], b""), q


def test_a_stopped_daemon_is_not_waited_for(store, env, tmp_path):
    """Daemon and spare stopped (SIGSTOP): the client stops waiting for the worker's "+" after
    LEI_STORE_DAEMON_TIMEOUT and answers in-process, and its descriptors are not held by the
    stopped daemon (stderr is a pipe: held, it would never end); resumed, the worker takes the
    abandoned request but writes nothing to the client's output (it never got the "go")."""
    pid = started(env, store)
    spare = children(pid)
    args = ("q", "--store", str(store), "-f", "jsonl", "s:scrub")
    want = lei_store(*args, env=dict(env, LEI_STORE_DAEMON="0"), cwd=tmp_path)
    out = tmp_path / "out"
    for p in (pid, *spare):
        os.kill(p, signal.SIGSTOP)
    try:
        with out.open("wb") as o:
            r = subprocess.run([*SCRIPT, *args], env=dict(env, LEI_STORE_DAEMON_TIMEOUT="1"), cwd=tmp_path,
                               stdout=o, stderr=subprocess.PIPE, timeout=30)
    finally:
        for p in (pid, *spare):
            os.kill(p, signal.SIGCONT)
    assert (r.returncode, out.read_bytes(), r.stderr) == (0, want.stdout, b"")
    wait_for(lambda: all(gone(p) for p in spare))  # it accepted the abandoned request and quit
    assert out.read_bytes() == want.stdout
    again = served(env, store, *args, cwd=tmp_path)  # and the daemon goes on answering
    assert (again.returncode, again.stdout) == (0, want.stdout)


def socket_of(env) -> str:
    code = "from lei_store.cli.protocol import socket_path; print(socket_path())"
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          check=True, timeout=30).stdout.strip()


def offered(env, store) -> socket.socket:
    """A connection whose request the spare took: it has sent its "+"."""
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(30)
    s.connect(socket_of(env))
    s.sendall(encode_request(["q", "--store", str(store), "-f", "jsonl", "s:scrub"]))
    assert s.recv(1) == b"+"
    return s


def test_no_go_no_command(store, env, tmp_path):
    """The race the "go" closes: a client whose wait ran out just as the worker's "+" arrived
    closes without "go", and the worker quits; a worker runs nothing before the "go", and runs
    the command on the descriptors that come with it."""
    pid = started(env, store)
    spare = children(pid)
    offered(env, store).close()
    wait_for(lambda: all(gone(p) for p in spare))
    spare = wait_for(lambda: children(pid))
    out = tmp_path / "out"
    with offered(env, store) as s, out.open("wb") as o, open(os.devnull, "rb") as i:
        s.settimeout(2)  # a worker that ran at "+" would answer "exit ..." well within this
        with pytest.raises(socket.timeout):
            s.recv(64)
        fds = b"".join(fd.to_bytes(4, sys.byteorder) for fd in (i.fileno(), o.fileno(), o.fileno()))
        s.sendmsg([b"g"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, fds)])
        s.settimeout(30)
        assert s.recv(64) == b"exit 0\n"
    want = lei_store("q", "--store", str(store), "-f", "jsonl", "s:scrub", env=dict(env, LEI_STORE_DAEMON="0"),
                     cwd=tmp_path)
    assert out.read_bytes() == want.stdout
    wait_for(lambda: all(gone(p) for p in spare))


def listening(path: Path) -> socket.socket:
    s = socket.socket(socket.AF_UNIX)
    s.bind(str(path))
    s.listen(8)
    return s


def answered_in_process(store, env, cwd: Path, listener: socket.socket | None = None) -> None:
    """The command answers as in-process, and nobody connected to LISTENER (nothing was sent)."""
    args = ("q", "--store", str(store), "-f", "jsonl", "s:scrub")
    want = lei_store(*args, env=dict(env, LEI_STORE_DAEMON="0"), cwd=cwd)
    got = lei_store(*args, env=dict(env, LEI_STORE_DAEMON_TIMEOUT="1"), cwd=cwd)
    assert (got.returncode, got.stdout, got.stderr) == (0, want.stdout, b"")
    if listener is not None:
        listener.setblocking(False)
        with pytest.raises(BlockingIOError):
            listener.accept()


def refused_by_the_daemon(path: Path, env, cwd: Path) -> None:
    r = subprocess.run([sys.executable, "-m", "lei_store.cli.daemon", str(path)], cwd=cwd, capture_output=True,
                       env=dict(env, LEI_STORE_DAEMON_IDLE="1"), timeout=60)
    assert r.returncode == 1 and b"must be private" in r.stderr and r.stderr.count(b"\n") == 1


def to_nobody(path: Path) -> None:
    """Hand PATH itself (not what a link points to) to another user; only root can."""
    if os.geteuid() == 0:
        nobody = pwd.getpwnam("nobody")
        os.lchown(path, nobody.pw_uid, nobody.pw_gid)


def test_a_symlinked_socket_folder_is_refused(store, env, tmp_path):
    """A link (someone else's, where we are root) to a private folder: client and daemon refuse it."""
    path = Path(socket_of(env))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o700)
    path.parent.symlink_to(elsewhere)
    to_nobody(path.parent)
    with listening(elsewhere / path.name) as listener:
        answered_in_process(store, env, tmp_path, listener)
    refused_by_the_daemon(path, env, tmp_path)
    victim = subprocess.Popen(["sleep", "60"])  # a pid file there names no daemon to signal
    try:
        (elsewhere / f"{path.name}.pid").write_text(f"{victim.pid}\n")
        assert daemon_pid(env) is None
        lei_store("daemon-kill", env=env)
        assert victim.poll() is None
    finally:
        victim.kill()
        victim.wait()


@pytest.mark.parametrize("mode", [0o755, 0o500])
def test_a_socket_folder_not_exactly_0700_is_refused(store, env, tmp_path, mode):
    path = Path(socket_of(env))
    path.parent.mkdir(mode=0o700)
    try:
        with listening(path) as listener:
            path.parent.chmod(mode)
            answered_in_process(store, env, tmp_path, listener)
        refused_by_the_daemon(path, env, tmp_path)
    finally:
        path.parent.chmod(0o700)


@pytest.mark.parametrize("kind", ["file", "link", "nobody's"])
def test_a_socket_that_is_not_ours_is_not_used(store, env, tmp_path, kind):
    """A regular file, a link to a socket, or a socket of another user where ours should be: the
    client sends nothing to it; the daemon it starts replaces it, and serves the next command."""
    if kind == "nobody's" and os.geteuid() != 0:
        pytest.skip("only root can give a socket to another user")
    path = Path(socket_of(env))
    path.parent.mkdir(mode=0o700)
    other = path if kind == "nobody's" else tmp_path / "other.sock"
    with listening(other) as listener:
        if kind == "file":
            path.write_text("not a socket\n")
        elif kind == "link":
            path.symlink_to(other)
        to_nobody(other)
        answered_in_process(store, env, tmp_path, listener)
    wait_for(lambda: daemon_pid(env))
    r = served(env, store, "q", "--store", str(store), "-f", "jsonl", "s:scrub", cwd=tmp_path)
    assert r.returncode == 0 and r.stdout


def test_a_stale_pid_file_names_no_daemon(env, tmp_path):
    """A daemon killed with -9 leaves its pid file; should its pid be reused, daemon-pid must not
    name that process nor daemon-kill signal it: the daemon is the process holding its lock."""
    path = Path(socket_of(env))
    path.parent.mkdir(mode=0o700)
    stranger = subprocess.Popen(["sleep", "60"])
    try:
        Path(f"{path}.pid").write_text(f"{stranger.pid}\n")
        assert daemon_pid(env) is None
        lei_store("daemon-kill", env=env, cwd=tmp_path)
        assert stranger.poll() is None
    finally:
        stranger.kill()
        stranger.wait()


def test_the_client_imports_almost_nothing():
    """Start-up is the cost of a small query: the client must not pull in the read path."""
    code = "import sys, lei_store.cli.client; print(' '.join(sorted(sys.modules)))"
    loaded = set(subprocess.run([sys.executable, "-c", code], capture_output=True, check=True,
                                text=True).stdout.split())
    heavy = {"re", "argparse", "msgspec", "xapian", "sqlite3", "pygit2", "socket", "array", "pathlib",
             "lei_store.cli.main", "lei_store.read.search"}
    assert not loaded & heavy
