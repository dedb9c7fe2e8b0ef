"""`lei-store serve-www`: Debian's public-inbox-httpd serves a store lei-store wrote, and a real
browser (headless Chromium) renders its pages: the front page (sent to /all/), a thread, a search;
what an import adds while it serves shows at the next request; SIGTERM leaves no process behind;
bad usage is one line and an exit code."""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import need, run_cli
from dovecot import free_ports

TITLE = "lei-store web test"
ROOT_SUBJECT = "Web test thread about zircon"
ROOT_MID = "web-root@example.org"


def thread_mbox() -> bytes:
    """A thread of three messages (a root and two replies) with a subject no sample message has."""
    msgs = []
    for i, (mid, parent) in enumerate([(ROOT_MID, None), ("web-r1@example.org", ROOT_MID),
                                       ("web-r2@example.org", "web-r1@example.org")]):
        refs = f"In-Reply-To: <{parent}>\nReferences: <{ROOT_MID}>\n" if parent else ""
        subject = ROOT_SUBJECT if parent is None else f"Re: {ROOT_SUBJECT}"
        msgs.append(f"From web@example.org Mon Dec  2 12:0{i}:00 2030\nFrom: Web Tester <web@example.org>\n"
                    f"To: list@example.org\nSubject: {subject}\nDate: Mon, 02 Dec 2030 12:0{i}:00 +0000\n"
                    f"Message-ID: <{mid}>\n{refs}\nmessage {i} of the web test\n\n")
    return "".join(msgs).encode()


@pytest.fixture
def store(sample_corpus, tmp_path) -> Path:
    s = tmp_path / "store"
    run_cli("import", "--store", str(s), "-q", str(shutil.copytree(sample_corpus / "maildir", tmp_path / "md")))
    (tmp_path / "thread.mbox").write_bytes(thread_mbox())
    run_cli("import", "--store", str(s), "-q", f"mboxrd:{tmp_path / 'thread.mbox'}")
    (s / "description").write_text(TITLE + "\n")  # public-inbox's page title for the store
    return s


@pytest.fixture
def empty_store(tmp_path) -> Path:
    run_cli("init", str(tmp_path / "empty-store"))
    return tmp_path / "empty-store"


class WebServer:
    """`lei-store serve-www` as users start it (the CLI, from the scratch cwd)."""

    def __init__(self, store: Path, work: Path):
        self.port = free_ports(1)[0]
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = work / "serve-www.log"
        self.proc = subprocess.Popen([sys.executable, "-m", "lei_store", "serve-www", "--store", str(store),
                                      "--listen", f"127.0.0.1:{self.port}"],
                                     stdout=subprocess.DEVNULL, stderr=self.log.open("wb"))

    def wait_port(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"serve-www did not listen: {self.log.read_text()}") from None
                time.sleep(0.05)

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=20)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def server(store, tmp_path):
    need(shutil.which("public-inbox-httpd") is not None,
         "Debian's public-inbox (public-inbox-httpd) is not installed (tools/install-peers.sh installs it)")
    srv = WebServer(store, tmp_path)
    srv.wait_port()
    yield srv
    if srv.proc.poll() is None:
        srv.stop()


@pytest.fixture
def browser(tmp_path):
    """DOM of URL as headless Chromium rendered it (a private profile; bounded)."""
    chromium = shutil.which("chromium")
    need(chromium is not None, "Debian's chromium is not installed (apt install chromium)")
    profile = tmp_path / "chromium-profile"

    def dump(url: str) -> str:
        r = subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                            f"--user-data-dir={profile}", "--dump-dom", url], capture_output=True, timeout=60)
        assert r.returncode == 0, r.stderr.decode()[-2000:]
        return r.stdout.decode()
    return dump


def title(dom: str) -> str:
    found = re.search(r"<title>(.*?)</title>", dom, re.S)
    assert found, dom[:500]
    return html.unescape(found.group(1))


def text(dom: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", dom))


def q_records(store: Path, *query: str) -> list[dict]:
    return [json.loads(x) for x in run_cli("q", "--store", str(store), "-f", "jsonl", *query).stdout.splitlines()]


def q_count(store: Path, *query: str) -> int:
    return len(q_records(store, *query))


def descendants(pid: int) -> set[int]:
    """PID's children, theirs, ... (Linux /proc)."""
    found: set[int] = set()
    todo = [pid]
    while todo:
        p = todo.pop()
        try:
            kids = [int(k) for k in Path(f"/proc/{p}/task/{p}/children").read_text().split()]
        except OSError:
            continue
        found.update(kids)
        todo.extend(kids)
    return found


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"  # a zombie left for a non-reaping init is gone


def test_browser_renders_front_page_thread_and_search(store, server, browser):
    front = browser(server.url + "/")  # sent to /all/
    assert title(front) == TITLE
    assert ROOT_SUBJECT in text(front)
    assert "(3+ messages)" in text(front)  # the topic line of our thread

    thread = browser(f"{server.url}/all/{ROOT_MID}/T/")
    assert title(thread) == ROOT_SUBJECT
    assert re.search(r"\b3\+ messages in thread", text(thread)), text(thread)[:1000]
    assert text(thread).count(f"Re: {ROOT_SUBJECT}") >= 2

    expected = q_count(store, "s:scrub")
    assert expected > 5
    search = browser(f"{server.url}/all/?q=s:scrub")
    assert title(search) == "s:scrub - search results"
    assert f"Results 1-{expected} of {expected}" in text(search)
    # the hits listed: public-inbox counts but leaves out a message without a Message-ID (the
    # sample has some), so the numbering skips them
    numbers = [int(n) for n in re.findall(r"(\d+)\. <b><a href=", search)]
    without_mid = sum("m" not in r for r in q_records(store, "s:scrub"))
    assert numbers == sorted(set(numbers)) and set(numbers) <= set(range(1, expected + 1))
    assert len(numbers) >= expected - without_mid


def test_an_import_while_serving_shows_at_the_next_request(store, server, browser, tmp_path):
    before = browser(f"{server.url}/all/?q=s:zebracorn")
    assert "Results" not in text(before) or "of 0" in text(before)
    eml = tmp_path / "new.eml"
    eml.write_text("From: Live <live@example.org>\nSubject: Freshly imported zebracorn\n"
                   "Date: Tue, 03 Dec 2030 12:00:00 +0000\nMessage-ID: <live-1@example.org>\n\nhello web\n")
    run_cli("import", "--store", str(store), "-q", str(eml))
    # the listing reads over.sqlite3 afresh; the search's Xapian snapshot is reopened once
    # serve-www has seen the write (it looks every second)
    assert "Freshly imported zebracorn" in text(browser(server.url + "/all/"))
    deadline = time.monotonic() + 10
    while "Results 1-1 of 1" not in text(after := browser(f"{server.url}/all/?q=s:zebracorn")):
        assert time.monotonic() < deadline, text(after)[:1000]
    assert browser(f"{server.url}/all/live-1@example.org/raw").count("hello web") == 1


def test_sigterm_stops_the_daemon_and_its_helpers(server, browser):
    browser(f"{server.url}/all/{ROOT_MID}/T/")  # the daemon starts git cat-file helpers for blobs
    started = descendants(server.proc.pid)
    assert any("public-inbox-httpd" in Path(f"/proc/{p}/cmdline").read_text() for p in started if alive(p))
    assert server.stop() == 0, server.log.read_text()
    deadline = time.monotonic() + 5
    while any(alive(p) for p in started) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not [p for p in started if alive(p)]
    log = server.log.read_text()
    assert f"serving {Path(server.proc.args[5])} on the web at {server.url}/all/" in log
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", server.port), timeout=1)


def one_line(r: subprocess.CompletedProcess) -> str:
    lines = r.stderr.decode().splitlines()
    assert len(lines) == 1 and "Traceback" not in lines[0], lines
    return lines[0]


@pytest.mark.parametrize("listen", ["nonsense", "127.0.0.1:0", "127.0.0.1:99999", "127.0.0.1:http"])
def test_a_bad_listen_is_one_line(empty_store, listen):
    r = run_cli("serve-www", "--store", str(empty_store), "--listen", listen, check=False)
    assert r.returncode == 1
    assert "give HOST:PORT" in one_line(r)


def test_a_port_in_use_is_one_line(empty_store):
    need(shutil.which("public-inbox-httpd") is not None, "Debian's public-inbox is not installed")
    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        r = run_cli("serve-www", "--store", str(empty_store), "--listen", f"127.0.0.1:{port}", check=False)
    assert r.returncode == 1
    assert one_line(r) == f"lei-store: cannot listen on 127.0.0.1:{port}: Address already in use"


def test_a_missing_store_is_one_line(tmp_path):
    r = run_cli("serve-www", "--store", str(tmp_path / "nothing"), check=False)
    assert r.returncode == 1
    assert "no store here" in one_line(r)


def test_a_missing_public_inbox_httpd_is_exit_69(empty_store, tmp_path):
    empty = tmp_path / "empty-path"
    empty.mkdir()
    r = run_cli("serve-www", "--store", str(empty_store), check=False, env=dict(os.environ, PATH=str(empty)))
    assert r.returncode == 69
    assert "public-inbox-httpd is not installed" in one_line(r)


