"""Reading the epochs' history: the m/d commits in order, their blobs, and the index marks.

Every stored message is a commit whose tree holds one file, `m`; its removal is a later
commit holding the same blob under `d` (spec §2.2, §2.4). The index remembers, per
epoch, the last commit it has indexed (a MARK in over.sqlite3's eidx_meta), so whatever
git holds past the mark is what the index has not seen yet.
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path
from typing import Iterator, NamedTuple

from lei_store import git
from lei_store.errors import StorageError

MARK = "lei-store:indexed:"  # eidx_meta key prefix: last commit indexed, per epoch


def mark_key(epoch: int) -> str:
    return f"{MARK}{epoch}"


class Change(NamedTuple):
    """A message (m) or removal (d) commit of an epoch, with its blob."""
    epoch: int
    commit: str
    when: int  # committer time: the "now" the message was imported with
    path: str  # "m" (a message) or "d" (a removal)
    oid: str


class RawChange(NamedTuple):
    """One line of `git log --raw`: what a commit did to one path."""

    mode: bytes  # the new mode (000000 when deleted)
    oid: str  # the new blob (0000... when deleted)
    status: bytes  # A, M, D, T ...
    path: bytes


class Commit(NamedTuple):
    """One commit of `git log --raw`, with what it changed."""
    commit: str
    parents: list[str]
    when: int  # committer time
    changes: list[RawChange]


def head_commit(repo: Path) -> str | None:
    """The commit HEAD points at, None for an empty epoch."""
    r = git.run(repo, "rev-parse", "-q", "--verify", "HEAD^{commit}")
    return r.stdout.decode().strip() or None


def log(repo: Path, rev: str, since: str | None = None) -> Iterator[Commit]:
    """Every commit of REV not in SINCE, oldest first, with its raw changes (one git process
    streams the whole epoch). A failure of git raises after the commits it gave."""
    args = ["-c", "log.showSignature=false", "log", "--reverse", "--raw", "--root", "--no-renames",
            "--no-abbrev", "--no-color", "--format=C %H %ct %P", rev] + ([f"^{since}"] if since else []) + ["--"]
    with tempfile.TemporaryFile() as err:
        proc = git.popen(repo, *args, stderr=err)
        assert proc.stdout is not None
        current = None
        for line in proc.stdout:
            line = line.rstrip(b"\n")
            if line.startswith(b"C "):
                if current:
                    yield current
                commit, when, *parents = line[2:].decode().split()
                current = Commit(commit, parents, int(when), [])
            elif line.startswith(b":") and current is not None:
                meta, _, path = line.partition(b"\t")
                _old_mode, mode, _old_oid, oid, status = meta[1:].split()
                current.changes.append(RawChange(mode, oid.decode(), status[:1], path))
        if current:
            yield current
        if proc.wait() != 0:
            err.seek(0)
            raise git.failure(repo, ["log"], proc.returncode, err.read())


def commits_since(repo: Path, epoch: int, since: str | None) -> Iterator[Change]:
    """The message (m) and removal (d) changes of every commit after SINCE on the epoch's HEAD,
    oldest first."""
    rev = head_commit(repo)
    if not rev or rev == since:
        return
    for c in log(repo, rev, since):
        for ch in c.changes:
            if ch.status in (b"A", b"M") and ch.path in (b"m", b"d"):
                yield Change(epoch, c.commit, c.when, ch.path.decode(), ch.oid)


class BlobStream:
    """One `git cat-file --batch` over ALL.git: blobs by OID, streamed."""

    def __init__(self, all_git: Path):
        self.proc = git.popen(all_git, "cat-file", "--batch", stdin=subprocess.PIPE, stderr=None)
        self._in, self._out = git.pipes(self.proc)

    def read(self, oid: str) -> bytes:
        self._in.write(oid.encode() + b"\n")
        self._in.flush()
        header = self._out.readline().split()
        if len(header) != 3 or header[1] != b"blob":
            raise StorageError(f"blob {oid} is missing from git ({b' '.join(header).decode()})")
        data = self._out.read(int(header[2]))
        self._out.read(1)
        return data

    def close(self) -> None:
        self._in.close()
        self.proc.wait()


def blob_sizes(all_git: Path, oids: list[bytes]) -> dict[bytes, int]:
    """Sizes of blobs (raw OIDs) by one `git cat-file --batch-check`; missing ones are left out."""
    proc = git.popen(all_git, "cat-file", "--batch-check", stdin=subprocess.PIPE, stderr=subprocess.DEVNULL)
    out, _ = proc.communicate(b"".join(oid.hex().encode() + b"\n" for oid in oids))
    sizes = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[1] == b"blob":
            sizes[bytes.fromhex(parts[0].decode())] = int(parts[2])
    return sizes
