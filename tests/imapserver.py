"""A real `lei-store serve-imap` on 127.0.0.1 for the tests: started as users start it (the CLI,
from a scratch directory), waited for until it says it listens, stopped with SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import imapclient
from dovecot import free_ports

PASSWORD = "s3cret pass"


class ImapServer:
    def __init__(self, store: Path, work: Path, *extra: str, user: str = "reader"):
        self.store, self.user, self.port = store, user, free_ports(1)[0]
        self.password_file = work / "imap-password"
        self.password_file.write_text(PASSWORD + "\n")
        self.password_file.chmod(0o600)
        self.log = work / "serve-imap.log"
        self.args = ["serve-imap", "--store", str(store), "--listen", f"127.0.0.1:{self.port}",
                     "--user", user, "--password-file", str(self.password_file), *extra]
        self.proc: subprocess.Popen | None = None

    def start(self) -> ImapServer:
        env = dict(os.environ, LEI_STORE_DAEMON="0")
        start = self.log.stat().st_size if self.log.exists() else 0
        self.proc = subprocess.Popen([sys.executable, "-m", "lei_store", *self.args], stdout=subprocess.DEVNULL,
                                     stderr=self.log.open("ab"), env=env)
        deadline = time.monotonic() + 30
        while b"serving" not in self.log.read_bytes()[start:]:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"serve-imap did not start: {self.log.read_text()}")
            time.sleep(0.05)
        return self

    def stop(self) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=20)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()

    def client(self, login: bool = True, timeout: float = 30) -> imapclient.IMAPClient:
        c = imapclient.IMAPClient("127.0.0.1", port=self.port, ssl=False, timeout=timeout)
        if login:
            c.login(self.user, PASSWORD)
        return c
