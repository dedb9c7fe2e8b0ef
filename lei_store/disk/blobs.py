"""Reading message blobs: through ALL.git (whose alternates reach every epoch), else from a
synced Maildir file whose bytes still hash to the OID (as `lei blob` does)."""

from __future__ import annotations

from lei_store.errors import DamagedStoreError
from lei_store.paths import Layout


def git_oid(blob: bytes) -> bytes:
    """The git blob SHA-1 of some bytes."""
    import hashlib

    return hashlib.sha1(b"blob %d\0" % len(blob) + blob).digest()


class BlobReader:
    """Reads message blobs of one store (pygit2 on ALL.git, opened on first use)."""
    def __init__(self, layout: Layout):
        self.layout = layout
        self._repo = None

    def repo(self):
        import pygit2  # lazy: searching without printing messages never needs it

        if self._repo is None:
            self._repo = pygit2.Repository(str(self.layout.all_git))
        return self._repo

    def has(self, oidbin: bytes) -> bool:
        import pygit2

        return self.repo().odb.exists(pygit2.Oid(raw=oidbin))

    def read(self, oid: str | bytes) -> bytes | None:
        """A blob's bytes by full OID (hex or raw), or None when git does not have it.
        DamagedStoreError when git has it but cannot read it (a corrupt pack)."""
        import pygit2

        o = pygit2.Oid(raw=oid) if isinstance(oid, bytes) else pygit2.Oid(hex=oid)
        try:
            return self.repo().odb.read(o)[1]
        except KeyError:
            return None
        except pygit2.GitError as e:
            raise DamagedStoreError(f"blob {o} is damaged in git ({e}); see `lei-store fsck`") from None

    def find(self, oid: str) -> bytes | None:
        """By full or abbreviated OID, falling back to synced Maildirs for full ones (a copy there
        is only taken when its bytes hash to the OID, so it also stands in for a damaged object)."""
        import pygit2

        damaged = None
        try:
            data = self.read(oid) if len(oid) == 40 else self.repo().revparse_single(oid).read_raw()
        except DamagedStoreError as e:
            data, damaged = None, e
        except (KeyError, ValueError, pygit2.GitError):
            data = None
        if data is None and len(oid) == 40:
            data = self._from_maildirs(bytes.fromhex(oid))
        if data is None and damaged is not None:
            raise damaged
        return data

    def _from_maildirs(self, oidbin: bytes) -> bytes | None:
        import os

        from lei_store.sources import DEFAULT_MAX_SIZE
        from lei_store.sources.maildir import read_file, subdirs_for
        from lei_store.sqlite import connect_ro

        if not self.layout.mail_sync.exists():
            return None
        db = connect_ro(self.layout.mail_sync)
        try:
            rows = db.execute("SELECT f.loc, b.name FROM blob2name b JOIN folders f ON f.fid = b.fid "
                              "WHERE b.oidbin = ?", (oidbin,)).fetchall()
        finally:
            db.close()
        for loc, name in rows:
            loc = bytes(loc).decode("utf-8", "surrogateescape")
            name = bytes(name).decode("utf-8", "surrogateescape")
            if not loc.startswith("maildir:"):
                continue
            for sub in subdirs_for(name):
                try:
                    data = read_file(os.path.join(loc[8:], sub, name), DEFAULT_MAX_SIZE)
                except OSError:
                    continue
                if isinstance(data, bytes) and git_oid(data) == oidbin:
                    return data
        return None
