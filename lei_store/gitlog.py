"""Reading the epochs' history: the m/d commits in order, their blobs, and the index marks.

Every stored message is a commit whose tree holds one file, `m`; its removal is a later
commit holding the same blob under `d` (spec §2.2, §2.4). The index remembers, per
epoch, the last commit it has indexed (a MARK in over.sqlite3's eidx_meta), so whatever
git holds past the mark is what the index has not seen yet.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Iterator, NamedTuple

from .errors import StorageError

MARK = "lei-store:indexed:"  # eidx_meta key prefix: last commit indexed, per epoch


def mark_key(epoch: int) -> str:
    return f"{MARK}{epoch}"


class Change(NamedTuple):
    epoch: int
    commit: str
    when: int  # committer time: the "now" the message was imported with
    path: str  # "m" (a message) or "d" (a removal)
    oid: str


def head_commit(repo: Path) -> str | None:
    """The commit HEAD points at, None for an empty epoch."""
    r = subprocess.run(["git", f"--git-dir={repo}", "rev-parse", "-q", "--verify", "HEAD^{commit}"],
                       capture_output=True, text=True)
    return r.stdout.strip() or None


def commits_since(repo: Path, epoch: int, since: str | None) -> Iterator[Change]:
    """The tree changes of every commit after SINCE on the epoch's HEAD, oldest first."""
    rev = head_commit(repo)
    if not rev or rev == since:
        return
    cmd = ["git", f"--git-dir={repo}", "log", "--reverse", "--raw", "--root", "--no-renames",
           "--no-abbrev", "--format=C %H %ct", rev] + ([f"^{since}"] if since else [])
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    commit, when = "", 0
    for line in proc.stdout:
        if line.startswith(b"C "):
            _, commit_b, when_b = line.split()
            commit, when = commit_b.decode(), int(when_b)
        elif line.startswith(b":"):
            meta, _, path = line.rstrip(b"\n").partition(b"\t")
            status, oid = meta.split()[4][:1], meta.split()[3].decode()
            if status in (b"A", b"M") and path in (b"m", b"d"):
                yield Change(epoch, commit, when, path.decode(), oid)
    if proc.wait() != 0:
        raise StorageError(f"git log failed in {repo}: {proc.stderr.read().decode(errors='replace').strip()}")


class BlobStream:
    """One `git cat-file --batch` over ALL.git: blobs by OID, streamed."""

    def __init__(self, all_git: Path):
        self.proc = subprocess.Popen(["git", f"--git-dir={all_git}", "cat-file", "--batch"],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE)

    def read(self, oid: str) -> bytes:
        self.proc.stdin.write(oid.encode() + b"\n")
        self.proc.stdin.flush()
        header = self.proc.stdout.readline().split()
        if len(header) != 3 or header[1] != b"blob":
            raise StorageError(f"blob {oid} is missing from git ({b' '.join(header).decode()})")
        data = self.proc.stdout.read(int(header[2]))
        self.proc.stdout.read(1)
        return data

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait()
