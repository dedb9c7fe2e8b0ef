"""backup/restore round trips a real store (labels and keywords included); gc keeps every answer and docid."""

from __future__ import annotations

import json
import shutil
import tarfile

import pytest
import xapian
from conftest import run_cli, small_tmpfs
from storecheck import over_rows

from lei_store.errors import StorageError
from lei_store.ops.gc import check_space, space_needed
from lei_store.paths import existing_store

QUERIES = ("z:1..", "L:work", "kw:flagged", "kw:seen", "s:btrfs")


def _build(store, sample_corpus, tmp_path):
    maildir = shutil.copytree(sample_corpus / "maildir", tmp_path / f"md-{store.name}")
    run_cli("import", "--store", str(store), "-q", str(maildir))
    run_cli("tag", "--store", str(store), "--quiet", "-q", "s:btrfs", "+L:work", "+kw:flagged")
    return store


@pytest.fixture
def store(sample_corpus, tmp_path, monkeypatch):
    monkeypatch.setenv("LEI_STORE_ROTATE_BYTES", "200000")  # several epochs
    monkeypatch.setenv("NPROC", "3")  # two shards
    s = _build(tmp_path / "store", sample_corpus, tmp_path)
    assert len(existing_store(s).epoch_numbers()) >= 2
    return s


def answers(store) -> dict[str, list[dict]]:
    out = {}
    for q in QUERIES:
        r = run_cli("q", "--store", str(store), "-f", "jsonl", "--dedupe=none", q)
        out[q] = sorted((json.loads(line) for line in r.stdout.splitlines() if line.strip()),
                        key=lambda h: h["blob"])
    assert out["L:work"] and out["kw:flagged"] and out["kw:seen"]
    return out


def shard_docids(store) -> list[list[int]]:
    lay = existing_store(store)
    result = []
    for i in range(lay.shard_count()):
        db = xapian.Database(str(lay.shard(i)))
        result.append(sorted(p.docid for p in db.postlist("")))
        assert db.get_doccount() == len(result[-1])
    return result


def one_line_failure(r) -> str:
    err = r.stderr.decode()
    assert r.returncode != 0 and "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    return err


def test_backup_then_restore_answers_the_same(store, tmp_path):
    before = answers(store)
    file = tmp_path / "store.backup"
    r = run_cli("backup", "--store", str(store), "--json", "-q", str(file))
    stats = json.loads(r.stdout)
    assert stats["epochs"] >= 2 and stats["commits"] > 0 and stats["journal_entries"] > 0
    assert not (tmp_path / "store.backup.tmp").exists()
    with tarfile.open(file) as tar:
        names = tar.getnames()
        manifest = json.load(tar.extractfile("MANIFEST.json"))
    assert names[0] == "MANIFEST.json"
    assert {"journal.sqlite3", "mail_sync.sqlite3"} <= set(names)
    assert not any(n.startswith("ei15") for n in names)  # the index is derived: not saved
    assert manifest["shards"] == 2 and len(manifest["epochs"]) == stats["epochs"]

    dest = tmp_path / "restored"
    dest.mkdir()  # an empty directory is accepted too
    r = run_cli("restore", "--json", "-q", str(file), str(dest))
    assert json.loads(r.stdout)["messages"] == stats["commits"]
    assert answers(dest) == before
    assert existing_store(dest).shard_count() == 2
    assert run_cli("fsck", "--store", str(dest), check=False).returncode == 0
    leftovers = [p.name for p in tmp_path.iterdir() if ".tmp" in p.name or ".stage" in p.name]
    assert leftovers == []

    again = run_cli("restore", "-q", str(file), str(dest), check=False)
    assert "not an empty directory" in one_line_failure(again)


def test_truncated_or_foreign_backup_is_refused(store, tmp_path):
    file = tmp_path / "store.backup"
    run_cli("backup", "--store", str(store), "-q", str(file))
    data = file.read_bytes()
    half = tmp_path / "half.backup"
    half.write_bytes(data[: len(data) // 2])
    dest = tmp_path / "restored"
    err = one_line_failure(run_cli("restore", "-q", str(half), str(dest), check=False))
    assert "truncated" in err, err
    foreign = tmp_path / "notes.tar"
    with tarfile.open(foreign, "w") as tar:
        tar.add(__file__, arcname="notes.txt")
    err = one_line_failure(run_cli("restore", "-q", str(foreign), str(dest), check=False))
    assert "not a lei-store backup" in err, err
    assert not dest.exists()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_gc_keeps_answers_and_docids(store):
    before, docids, rows = answers(store), shard_docids(store), over_rows(store)
    assert len(docids) == 2
    r = run_cli("gc", "--store", str(store), "--json", "-q")
    stats = json.loads(r.stdout)
    assert stats["epochs"] >= 2 and stats["shards"] == 2
    assert stats["xapian_after"] < stats["xapian_before"]
    assert answers(store) == before
    assert shard_docids(store) == docids
    assert over_rows(store) == rows
    assert not [p for p in (store / "ei15").iterdir() if p.name.endswith((".old", ".compact"))]
    assert run_cli("fsck", "--store", str(store), check=False).returncode == 0


def test_gc_refuses_when_the_estimate_does_not_fit(store):
    lay = existing_store(store)
    need_bytes = space_needed(lay)
    assert need_bytes > 0
    with pytest.raises(StorageError) as e:
        check_space(lay, free=need_bytes - 1)
    assert str(need_bytes) in str(e.value) and str(need_bytes - 1) in str(e.value)
    assert check_space(lay, free=need_bytes) == need_bytes


@pytest.fixture
def small_fs(tmp_path):
    with small_tmpfs(tmp_path / "fs", "8m") as mnt:
        yield mnt


def test_gc_on_a_nearly_full_disk_refuses_then_runs(small_fs, sample_corpus, tmp_path, monkeypatch):
    monkeypatch.setenv("LEI_STORE_ROTATE_BYTES", "200000")
    store = _build(small_fs / "store", sample_corpus, tmp_path)
    filler = small_fs / "filler"
    free = shutil.disk_usage(small_fs).free
    with open(filler, "wb") as f:  # leave less room than gc's estimate
        f.truncate(0)
        f.write(b"\0" * (free - space_needed(existing_store(store)) // 2))
    before = answers(store)
    err = one_line_failure(run_cli("gc", "--store", str(store), check=False))
    assert "free space" in err, err
    assert answers(store) == before
    filler.unlink()
    run_cli("gc", "--store", str(store), "-q")
    assert answers(store) == before


def test_backup_overwrites_only_an_older_backup(store, tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("not a backup\n")
    assert "not a lei-store backup" in one_line_failure(run_cli("backup", "--store", str(store), "-q", str(notes),
                                                                check=False))
    assert notes.read_text() == "not a backup\n"
    file = tmp_path / "store.backup"
    mine = tmp_path / "store.backup.tmp"  # a name the backup once used for its temporary file
    mine.write_text("mine\n")
    run_cli("backup", "--store", str(store), "-q", str(file))
    run_cli("backup", "--store", str(store), "-q", str(file))  # an older backup is replaced
    assert mine.read_text() == "mine\n"
    with tarfile.open(file) as tar:
        assert tar.getnames()[0] == "MANIFEST.json"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []
