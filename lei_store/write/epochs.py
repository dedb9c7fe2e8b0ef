"""Time-epoched bare git repositories (local/N.git) and ALL.git's alternates.

Each stored message is one v2-style commit whose tree holds a single file `m`
(lei-store-format(5) §2). Commits are streamed through one long-lived
`git fast-import` per epoch: it is the fastest way to write many small blobs
(tools/bench_git_write.py measures it against pygit2).
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from pathlib import Path

from lei_store import git
from lei_store.errors import LeiStoreError
from lei_store.paths import Layout

PACKING_FACTOR = 0.4
ROTATE_BYTES = int(1024**3 / PACKING_FACTOR)  # raw message bytes per epoch, as lei
RESTART_COMMITS = 5_000  # commits one fast-import process writes before a checkpoint replaces it

_REPO_CONFIG = ("[core]\n\trepositoryFormatVersion = 0\n\tfilemode = true\n\tbare = true\n"
                "[repack]\n\twriteBitmaps = true\n")


def default_branch() -> str:
    """init.defaultBranch from the user's git config, else master (as lei)."""
    return git.run(None, "config", "--global", "init.defaultBranch").stdout.decode().strip() or "master"


def init_bare(path: Path, branch: str, *, epoch: bool) -> None:
    """Create a bare repo by hand, the way lei lays it out (§2.1)."""
    (path / "objects" / "info").mkdir(parents=True, exist_ok=True)
    (path / "objects" / "pack").mkdir(exist_ok=True)
    (path / "refs" / "heads").mkdir(parents=True, exist_ok=True)
    head = path / "HEAD"
    if not head.exists():
        head.write_text(f"ref: refs/heads/{branch}\n")
    config = path / "config"
    if config.exists():
        return
    text = _REPO_CONFIG
    if epoch:
        text += "[include]\n\tpath = ../../ALL.git/config\n"
    else:
        text = text.replace("\tbare = true\n", "\tbare = true\n\tsharedRepository = 0600\n")
    config.write_text(text)


def update_alternates(layout: Layout) -> None:
    """List every epoch in ALL.git's alternates, newest first; rewrite atomically on change."""
    info = layout.all_git / "objects" / "info"
    want = layout.alternates()
    target = info / "alternates"
    if target.exists() and target.read_text() == want:
        return
    fd, tmp = tempfile.mkstemp(dir=info, prefix="alternates.")
    with os.fdopen(fd, "w") as f:
        f.write(want)
    os.chmod(tmp, 0o644)
    os.replace(tmp, target)


def packed_bytes(repo: Path) -> int:
    """Total size of an epoch's pack files (loose objects do not count, as in lei)."""
    pack_dir = repo / "objects" / "pack"
    if not pack_dir.is_dir():
        return 0
    return sum(e.stat().st_size for e in os.scandir(pack_dir) if e.name.endswith(".pack"))


def read_ref(repo: Path, branch: str) -> str | None:
    """The commit a branch points at, or None for an empty epoch."""
    r = git.run(repo, "rev-parse", "-q", "--verify", f"refs/heads/{branch}^{{commit}}")
    return r.stdout.decode().strip() or None


def _clean(s: str) -> str:
    return s.replace("<", "").replace(">", "").replace("\n", " ").replace("\0", "")


def _ident(name: str, email: str, when: int, tz: str) -> bytes:
    return f"{_clean(name)} <{_clean(email)}> {max(when, 0)} {tz}".encode("utf-8", "surrogateescape")


class FastImport:
    """One `git fast-import` process appending message commits to one epoch's branch."""

    def __init__(self, repo: Path, branch: str):
        self.repo = repo
        self.branch = branch
        self._parent = read_ref(repo, branch)
        self._sync = 0
        self.commits = 0  # written by this process
        self._err = tempfile.TemporaryFile()
        self._proc = git.popen(repo, "fast-import", "--quiet", "--done", "--date-format=raw",
                               stdin=subprocess.PIPE, stderr=self._err)
        self._in, self._out = git.pipes(self._proc)

    def _write(self, data: bytes) -> None:
        try:
            self._in.write(data)
        except (BrokenPipeError, OSError):
            raise self._failure() from None

    def _failure(self) -> LeiStoreError:
        self._proc.wait()
        self._err.seek(0)
        return git.failure(self.repo, ["fast-import"], self._proc.returncode, self._err.read())

    def commit(self, blob: bytes, author: tuple[str, str, int, str],
               committer: tuple[str, str, int, str], subject: str, path: bytes = b"m") -> None:
        """Append one commit whose tree is exactly {path: blob} (m: a message, d: a removal)."""
        msg = (subject + "\n").encode("utf-8", "surrogateescape")
        parts = [b"commit refs/heads/", self.branch.encode(), b"\nauthor ", _ident(*author),
                 b"\ncommitter ", _ident(*committer), b"\ndata %d\n" % len(msg), msg]
        if self._parent:
            parts.append(b"from " + self._parent.encode() + b"\n")
            self._parent = None  # later commits chain onto fast-import's own branch tip
        parts += [b"deleteall\nM 100644 inline %s\ndata %d\n" % (path, len(blob)), blob, b"\n"]
        self._write(b"".join(parts))
        self.commits += 1

    def checkpoint(self) -> None:
        """Make every commit so far durable and visible (packs written, ref updated)."""
        self._sync += 1
        self._write(b"checkpoint\nprogress sync %d\n" % self._sync)
        try:
            self._in.flush()
        except (BrokenPipeError, OSError):
            raise self._failure() from None
        line = self._out.readline()
        if line.strip() != b"progress sync %d" % self._sync:
            raise self._failure()

    def close(self) -> None:
        """Finish the stream; refs are final once this returns."""
        self._write(b"done\n")
        try:
            self._in.close()
        except (BrokenPipeError, OSError):
            raise self._failure() from None
        if self._proc.wait() != 0:
            raise self._failure()
        git.run(self.repo, "update-server-info")  # for "dumb" http replicas; best effort

    def abort(self) -> None:
        """Stop without finishing; whatever was checkpointed stays."""
        if self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()


class EpochWriter:
    """Appends message commits to the newest epoch, rolling over by size (§2.5)."""

    def __init__(self, layout: Layout, branch: str, rotate_bytes: int = ROTATE_BYTES):
        self.layout = layout
        self.branch = branch
        self.rotate_bytes = rotate_bytes
        self._fi: FastImport | None = None
        self._epoch = -1
        self._written = -1  # the epoch a closed stream wrote to (for maintain)
        self._bytes = 0
        self.touched: set[int] = set()  # epochs written since the caller last cleared this

    def _start(self) -> None:
        nums = self.layout.epoch_numbers()
        epoch = nums[-1] if nums else 0
        while True:
            packed = packed_bytes(self.layout.epoch(epoch))
            if packed / PACKING_FACTOR < self.rotate_bytes:
                break
            epoch += 1
        self._open(epoch)
        self._bytes = int(packed / PACKING_FACTOR)

    def _open(self, epoch: int) -> None:
        repo = self.layout.epoch(epoch)
        init_bare(repo, self.branch, epoch=True)
        update_alternates(self.layout)
        self._epoch = epoch
        self._fi = FastImport(repo, self.branch)

    def _current(self) -> FastImport:
        if self._fi is None:
            self._start()
        assert self._fi is not None
        return self._fi

    def add(self, blob: bytes, author, committer, subject: str) -> None:
        if self._fi is not None and self._bytes >= self.rotate_bytes:
            self._fi.close()
            self._open(self._epoch + 1)
            self._bytes = 0
        self._current().commit(blob, author, committer, subject)
        self.touched.add(self._epoch)
        self._bytes += len(blob)

    def remove(self, blob: bytes, ident: tuple[str, str]) -> None:
        """Record a removal (lei rm, §2.4): a commit of the same blob under `d` in the newest epoch."""
        now = int(time.time())
        self._current().commit(blob, (*ident, now, "+0000"), (*ident, now, "+0000"), "rm", path=b"d")
        self.touched.add(self._epoch)

    def checkpoint(self) -> None:
        if self._fi is not None:
            self._fi.checkpoint()
            if self._fi.commits >= RESTART_COMMITS:
                # fast-import keeps every object it wrote in memory (55 MB after 65,000 messages);
                # a new one starts empty and continues the branch from its ref
                self._fi.close()
                self._fi = FastImport(self.layout.epoch(self._epoch), self.branch)

    def close(self) -> None:
        """Finish the stream. The epoch's `git gc --auto` is left to maintain(), which the writer
        calls once its other helpers are gone (a repack beside them would add to the peak memory)."""
        if self._fi is not None:
            self._fi.close()
            self._fi = None
            self._written = self._epoch

    def maintain(self) -> None:
        """`git gc --auto` in the epoch last written, if any. Not detached: a gc left running after
        we return repacks under the next command's feet (an fsck right after an import saw its
        packs vanish). Best effort."""
        if self._written >= 0:
            git.run(self.layout.epoch(self._written), "-c", "gc.autoDetach=false", "gc", "--auto", "--quiet")
            self._written = -1

    def abort(self) -> None:
        if self._fi is not None:
            self._fi.abort()
            self._fi = None


def damage(repo: Path, *, quick: bool = False) -> str | None:
    """What `git fsck` finds wrong with an epoch, None when nothing. Every object is read and
    hashed (a flipped byte in a pack is found); QUICK only checks that reachable objects exist."""
    r = git.run(repo, "fsck", "--no-dangling", "--no-progress", *(["--connectivity-only"] if quick else []))
    if r.returncode == 0:
        return None
    return git.first_lines(r.stderr + r.stdout, 3) or f"git fsck exit status {r.returncode}"


def committer_ident(repo_hint: Path | None = None) -> tuple[str, str]:
    """The user's git committer name and email, with lei's fallback when git has none (§2.3)."""
    import pwd
    import re
    import socket

    r = git.run(None, "var", "GIT_COMMITTER_IDENT", cwd=repo_hint if repo_hint and repo_hint.is_dir() else None)
    m = re.match(r"^(.*?) <(.*)> \d+ [+-]\d{4}$", r.stdout.decode("utf-8", "replace").strip())
    if r.returncode == 0 and m:
        return m.group(1), m.group(2)
    try:
        gecos = pwd.getpwuid(os.getuid()).pw_gecos.split(",")[0]
        user = pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        gecos, user = "", os.environ.get("USER", "")
    name = re.sub(r"[^\w\-.+ \t]", "", gecos) or "lei user"
    user = re.sub(r"[^\w\-.+]", "", user) or "lei-user"
    host = re.sub(r"[^\w\-.]", "", socket.gethostname()) or "localhost"
    return name, f"{user}@{host}"
