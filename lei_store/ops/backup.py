"""One-file backups of a store, and restoring them into a new store.

A backup is an uncompressed tar (the bundles inside are already packed):

    MANIFEST.json       format name and version, shard count, per-epoch branch,
                        tip commit, commit count and member checksums, counts
    epochs/N.bundle     `git bundle create --all` of local/N.git (absent for an empty epoch)
    journal.sqlite3     keyword/label journal, copied with SQLite's online backup
    mail_sync.sqlite3   sync state, copied the same way

MANIFEST.json comes first so a foreign file is rejected before anything else
is read. The index (ei15/) is not saved: it is derived, and a restore rebuilds
it with reindex(), which also replays the journal. Both directions write to a
temporary name beside the target and rename at the end, so an interrupted or
failed run never leaves a half-written backup or a half-restored store.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tarfile
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import IO

import msgspec

from lei_store import git, sqlite
from lei_store.errors import DamagedStoreError, InputError, StorageError, from_os_error
from lei_store.locks import locked
from lei_store.paths import Layout, existing_store
from lei_store.write import epochs

FORMAT = "lei-store-backup"
VERSION = 1
SQLITE_FILES = ("journal.sqlite3", "mail_sync.sqlite3")


class BackupStats(msgspec.Struct):
    """What a backup or a restore did."""

    file: str  # the backup file
    store: str  # the store backed up, or the one restored
    epochs: int = 0
    commits: int = 0
    journal_entries: int = 0
    sync_folders: int = 0
    messages: int = 0  # messages indexed by the restore's reindex (0 for a backup)
    bytes: int = 0  # size of the backup file
    seconds: float = 0.0


# -- helpers ------------------------------------------------------------------

def _git(repo: Path, *args: str) -> str:
    return git.output(repo, *args)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class EpochEntry(msgspec.Struct):
    """One epoch in MANIFEST.json."""

    n: int
    branch: str
    tip: str | None  # None: an empty epoch (git will not bundle one; restore recreates it empty)
    commits: int = 0
    bundle: str | None = None  # the member holding its bundle
    sha256: str | None = None


class Manifest(msgspec.Struct):
    """MANIFEST.json, the backup's first member."""

    format: str
    version: int
    created: int
    shards: int = 0
    epochs: list[EpochEntry] = []
    files: dict[str, str] = {}  # SQLite member -> sha256
    journal_entries: int = 0
    sync_folders: int = 0

    def members(self) -> dict[str, str]:
        """Member name -> sha256, for every member it promises."""
        want = {e.bundle: e.sha256 for e in self.epochs if e.bundle and e.sha256}
        want.update(self.files)
        return want


# -- backup ------------------------------------------------------------------

def _bundle_epoch(repo: Path, n: int, stage: Path) -> EpochEntry:
    """Bundle one epoch into STAGE; its manifest entry."""
    branch = _git(repo, "symbolic-ref", "--short", "HEAD")
    entry = EpochEntry(n, branch, epochs.read_ref(repo, branch))
    if entry.tip is None:
        return entry
    entry.bundle = f"epochs/{n}.bundle"
    _git(repo, "bundle", "create", "--quiet", str(stage / entry.bundle), "--all")
    entry.commits = int(_git(repo, "rev-list", "--count", "--all"))
    entry.sha256 = _sha256(stage / entry.bundle)
    return entry


def _refuse_damage(lay: Layout) -> None:
    """A backup of a damaged store could not be restored: every git object is read (git fsck)
    and every database checked before anything is written."""
    for n in lay.epoch_numbers():
        found = epochs.damage(lay.epoch(n))
        if found:
            first = found.split("; ")[0]
            raise DamagedStoreError(f"local/{n}.git is damaged, no backup written ({first}); "
                                    "restore it from a replica or an earlier backup (see `lei-store fsck`)")
    for name in SQLITE_FILES:
        path = lay.root / name
        if path.exists():
            problem = sqlite.damage(path)
            if problem:
                raise DamagedStoreError(f"{name} is damaged, no backup written ({problem}); "
                                        "`lei-store fsck --repair` rebuilds it")


def _snapshot(lay: Layout, stage: Path) -> Manifest:
    """Bundles and database copies in STAGE, taken while no writer runs; the manifest."""
    _refuse_damage(lay)
    (stage / "epochs").mkdir()
    manifest = Manifest(FORMAT, VERSION, int(time.time()), lay.shard_count())
    manifest.epochs = [_bundle_epoch(lay.epoch(n), n, stage) for n in lay.epoch_numbers()]
    for name in SQLITE_FILES:
        src = lay.root / name
        if src.exists():
            sqlite.copy(src, stage / name)
            manifest.files[name] = _sha256(stage / name)
    if "journal.sqlite3" in manifest.files:
        manifest.journal_entries = sqlite.count(stage / "journal.sqlite3", "SELECT count(*) FROM volatile")
    if "mail_sync.sqlite3" in manifest.files:
        manifest.sync_folders = sqlite.count(stage / "mail_sync.sqlite3", "SELECT count(*) FROM folders")
    return manifest


def _write_tar(stage: Path, manifest: Manifest, tmp: Path) -> None:
    (stage / "MANIFEST.json").write_bytes(msgspec.json.format(msgspec.json.encode(manifest), indent=1) + b"\n")
    members = ["MANIFEST.json"] + list(manifest.members())
    with open(tmp, "xb") as raw:  # a name of our own: never truncates someone else's file
        with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for name in members:
                tar.add(stage / name, arcname=name, recursive=False)
        raw.flush()
        os.fsync(raw.fileno())


def _check_replaceable(file: Path) -> None:
    """FILE may be new, empty, or an older backup: anything else of the user's is never replaced."""
    if file.is_dir():
        raise InputError(f"{file}: is a directory; give a file name for the backup")
    if not file.exists() and not file.is_symlink():
        return
    if not file.is_file():
        raise InputError(f"{file}: exists and is not a regular file; give a new file name for the backup")
    if file.stat().st_size == 0:
        return
    try:
        with tarfile.open(file, mode="r:") as tar:
            _manifest_of(tar, file)
    except (InputError, tarfile.TarError, EOFError):
        raise InputError(f"{file}: exists and is not a lei-store backup; give a new file name") from None


def backup(root: Path, file: Path, *, lock_timeout: float | None = None) -> BackupStats:
    """Write the store at ROOT to the single file FILE (replaced only when complete)."""
    started = time.monotonic()
    lay = existing_store(Path(root))
    file = Path(file).absolute()
    _check_replaceable(file)
    file.parent.mkdir(parents=True, exist_ok=True)
    tmp = file.with_name(f".{file.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
    with tempfile.TemporaryDirectory(prefix=f".{file.name}.stage-", dir=file.parent) as stage_dir:
        stage = Path(stage_dir)
        try:
            with locked(lay.writer_lock, lock_timeout):
                manifest = _snapshot(lay, stage)
            _write_tar(stage, manifest, tmp)  # the snapshot is taken: no need to block writers
            os.replace(tmp, file)
        except OSError as e:
            tmp.unlink(missing_ok=True)
            raise from_os_error(e, f"cannot write backup {file}") from None
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
    return BackupStats(file=str(file), store=str(lay.root), epochs=len(manifest.epochs),
                       commits=sum(e.commits for e in manifest.epochs),
                       journal_entries=manifest.journal_entries, sync_folders=manifest.sync_folders,
                       bytes=file.stat().st_size, seconds=time.monotonic() - started)


# -- restore -----------------------------------------------------------------

def _member(tar: tarfile.TarFile, member: tarfile.TarInfo) -> IO[bytes]:
    """A regular member's contents (extractfile gives None only for other kinds)."""
    data = tar.extractfile(member)
    assert data is not None
    return data


def _manifest_of(tar: tarfile.TarFile, file: Path) -> dict:
    """The first member's manifest, of any version; InputError when it is not a lei-store backup."""
    first = tar.next()
    if first is None or first.name != "MANIFEST.json" or not first.isfile():
        raise InputError(f"{file}: not a lei-store backup (no MANIFEST.json first)")
    try:
        manifest = json.loads(_member(tar, first).read())
    except ValueError:
        raise InputError(f"{file}: not a lei-store backup (unreadable MANIFEST.json)") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise InputError(f"{file}: not a lei-store backup")
    return manifest


def _read_manifest(tar: tarfile.TarFile, file: Path) -> Manifest:
    """The manifest of a backup this version restores, checked field by field."""
    manifest = _manifest_of(tar, file)
    if manifest.get("version") != VERSION:
        raise InputError(f"{file}: backup format version {manifest.get('version')} is not supported "
                         f"(this lei-store reads version {VERSION})")
    try:
        return msgspec.convert(manifest, Manifest)
    except msgspec.ValidationError as e:
        raise InputError(f"{file}: not a lei-store backup (MANIFEST.json: {e})") from None


def _unpack(file: Path, into: Path) -> Manifest:
    """Check FILE whole (manifest, every member present and intact) and unpack it into INTO."""
    manifest = None
    try:
        with tarfile.open(file, mode="r:") as tar:
            manifest = _read_manifest(tar, file)
            want = manifest.members()
            for member in tar:  # iteration starts over at the first member
                if member.name == "MANIFEST.json":
                    continue
                if member.name not in want or not member.isfile():
                    raise InputError(f"{file}: not a lei-store backup (unexpected member {member.name!r})")
                dest = into / member.name  # names come from our own list: no path traversal
                dest.parent.mkdir(parents=True, exist_ok=True)
                with _member(tar, member) as src, open(dest, "wb") as out:
                    shutil.copyfileobj(src, out, 1 << 20)
    except (tarfile.ReadError, EOFError) as e:
        if manifest is not None:
            raise InputError(f"{file}: backup is truncated or corrupt ({e})") from None
        raise InputError(f"{file}: not a lei-store backup ({e})") from None
    missing = [name for name in want if not (into / name).exists()]
    if missing:
        raise InputError(f"{file}: backup is truncated ({len(missing)} member(s) missing, first {missing[0]})")
    for name, digest in want.items():
        if _sha256(into / name) != digest:
            raise InputError(f"{file}: backup is corrupt ({name} does not match its checksum)")
    return manifest


def _restore_epoch(lay: Layout, entry: EpochEntry, unpacked: Path) -> None:
    repo = lay.epoch(entry.n)
    epochs.init_bare(repo, entry.branch, epoch=True)
    if not entry.bundle:
        return
    bundle = unpacked / entry.bundle
    _git(repo, "bundle", "verify", "--quiet", str(bundle))
    _git(repo, "fetch", "--quiet", "--update-head-ok", str(bundle), "refs/*:refs/*")
    (repo / "FETCH_HEAD").unlink(missing_ok=True)  # not part of the store's layout
    tip = epochs.read_ref(repo, entry.branch)
    if tip != entry.tip:
        raise StorageError(f"epoch {entry.n}: restored tip {tip} is not the backup's {entry.tip}")


def _place_sqlite(lay: Layout, name: str, unpacked: Path) -> None:
    """Replace the empty database Store.create made with the backed-up one."""
    target = lay.root / name
    for suffix in ("", "-wal", "-shm"):
        Path(f"{target}{suffix}").unlink(missing_ok=True)
    shutil.move(unpacked / name, target)


def _check_dest(dest: Path) -> None:
    if dest.exists() and not (dest.is_dir() and not any(dest.iterdir())):
        raise InputError(f"{dest}: exists and is not an empty directory; restore into a new one")


def restore(file: Path, dest: Path, *, jobs: int | None = None) -> BackupStats:
    """Rebuild a store at DEST (absent or empty) from the backup FILE."""
    from lei_store.ops.reindex import reindex
    from lei_store.write.store import Store

    started = time.monotonic()
    file, dest = Path(file).absolute(), Path(dest).absolute()
    if not file.is_file():
        raise InputError(f"{file}: no such backup file")
    _check_dest(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{dest.name}.tmp-", dir=dest.parent))
    with ExitStack() as cleanup:
        cleanup.callback(shutil.rmtree, work, ignore_errors=True)
        unpacked, built = work / "backup", work / "store"
        unpacked.mkdir()
        try:
            manifest = _unpack(file, unpacked)
            lay = Store.create(built, shards=manifest.shards or None).layout
            for entry in manifest.epochs:
                _restore_epoch(lay, entry, unpacked)
            epochs.update_alternates(lay)
            for name in manifest.files:
                _place_sqlite(lay, name, unpacked)
            shutil.rmtree(unpacked)  # free the space before the index is built
            indexed = reindex(built, shards=manifest.shards or None, jobs=jobs)
        except OSError as e:
            raise from_os_error(e, f"cannot restore into {dest}") from None
        _check_dest(dest)  # nobody filled it meanwhile
        os.replace(built, dest)  # replaces an empty directory too
    return BackupStats(file=str(file), store=str(dest), epochs=len(manifest.epochs),
                       commits=sum(e.commits for e in manifest.epochs),
                       journal_entries=manifest.journal_entries,
                       sync_folders=manifest.sync_folders, messages=indexed.messages,
                       bytes=file.stat().st_size, seconds=time.monotonic() - started)

