"""A damaged store is named as damaged, never mistaken for a healthy or empty one: a flipped byte
in a pack, a garbage journal.sqlite3, a Xapian shard that lost a file. Commands say so in one line
with exit 65 (EX_DATAERR), fsck finds it, backup refuses to write a backup that could not be
restored, and fsck --repair rebuilds what is derived."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from conftest import run_cli
from storecheck import over_rows

DAMAGED = 65


@pytest.fixture(scope="module")
def base(sample_corpus, tmp_path_factory) -> Path:
    """A store imported from the mbox only: no Maildir copy can stand in for a damaged blob."""
    store = tmp_path_factory.mktemp("damage") / "store"
    run_cli("import", "--store", str(store), "-q", f"mboxrd:{sample_corpus / 'sample.mboxrd'}")
    run_cli("tag", "--store", str(store), "--quiet", "-q", "s:scrub", "+L:scrubbing", "+kw:flagged")
    epoch = store / "local" / "0.git"
    subprocess.run(["git", f"--git-dir={epoch}", "gc", "-q"], check=True)  # one pack, no loose objects
    return store


@pytest.fixture
def store(base, tmp_path) -> Path:
    import shutil

    return Path(shutil.copytree(base, tmp_path / "store"))


def one_line(r: subprocess.CompletedProcess, code: int) -> str:
    err = r.stderr.decode()
    assert r.returncode == code and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    return err


def flip_a_blob(store: Path) -> str:
    """Flip one byte inside the packed data of a message blob; its OID."""
    epoch = store / "local" / "0.git"
    [idx] = (epoch / "objects" / "pack").glob("*.idx")
    listing = subprocess.run(["git", "verify-pack", "-v", str(idx)], capture_output=True, text=True).stdout
    blobs = {f[5] for *_, f in over_rows(store)}
    for line in listing.splitlines():
        parts = line.split()
        if len(parts) >= 5 and parts[1] == "blob" and parts[0] in blobs and int(parts[3]) > 100:
            oid, size_in_pack, offset = parts[0], int(parts[3]), int(parts[4])
            break
    pack = idx.with_suffix(".pack")
    pack.chmod(0o644)
    data = bytearray(pack.read_bytes())
    data[offset + size_in_pack // 2] ^= 0xFF
    pack.write_bytes(bytes(data))
    return oid


def test_a_flipped_byte_in_a_pack(store, tmp_path):
    oid = flip_a_blob(store)
    report = run_cli("fsck", "--store", str(store), "--json", check=False)
    assert report.returncode == 2
    assert "git fsck" in {p["kind"] for p in json.loads(report.stdout)["problems"]}
    err = one_line(run_cli("blob", "--store", str(store), oid, check=False), DAMAGED)
    assert "damaged" in err and "not found" not in err
    err = one_line(run_cli("backup", "--store", str(store), str(tmp_path / "b.tar"), check=False), DAMAGED)
    assert "no backup written" in err and not (tmp_path / "b.tar").exists()
    assert not list(tmp_path.glob(".b.tar*")) and not (tmp_path / "b.tar.tmp").exists()
    err = one_line(run_cli("fsck", "--store", str(store), "--repair", check=False), DAMAGED)
    assert "git itself is damaged" in err


def test_quick_fsck_skips_reading_objects(base):
    r = run_cli("fsck", "--store", str(base), "--quick")
    assert r.stdout.decode().splitlines()[-1].startswith("ok: 0 errors")


def volatile(store: Path) -> dict[str, tuple]:
    out = run_cli("q", "--store", str(store), "-f", "jsonl", "--dedupe=none", "z:1..").stdout
    return {r["blob"]: (r.get("kw"), r.get("L")) for r in map(json.loads, out.splitlines())}


@pytest.mark.parametrize("name", ["journal.sqlite3", "mail_sync.sqlite3"])
def test_a_garbage_database_is_repaired_and_nothing_is_lost(store, tmp_path, name):
    before = volatile(store)
    assert any(labels for _kw, labels in before.values())
    for suffix in ("-wal", "-shm"):
        (store / f"{name}{suffix}").unlink(missing_ok=True)
    (store / name).write_bytes(b"this is not a database " * 100)
    (tmp_path / "new.eml").write_bytes(b"From: a@b\nSubject: new one\nMessage-ID: <new@x>\n\nx\n")
    err = one_line(run_cli("import", "--store", str(store), str(tmp_path / "new.eml"), check=False), DAMAGED)
    assert name in err and "fsck --repair" in err
    one_line(run_cli("tag", "--store", str(store), "-q", "z:1..", "+kw:seen", check=False), DAMAGED)
    assert run_cli("fsck", "--store", str(store), check=False).returncode == 2
    r = run_cli("fsck", "--store", str(store), "--repair")
    assert f"{name} was damaged" in r.stderr.decode() and "kept as" in r.stderr.decode()
    assert list(store.glob(f"{name}.damaged-*"))  # the damaged file is kept, not deleted
    assert volatile(store) == before
    run_cli("import", "--store", str(store), "-q", str(tmp_path / "new.eml"))  # writable again
    run_cli("reindex", "--store", str(store), "-q")  # the rebuilt journal restores every keyword
    after = volatile(store)
    assert {b: v for b, v in after.items() if b in before} == before and len(after) == len(before) + 1


@pytest.mark.parametrize("lost", ["postlist.glass", "termlist.glass", "iamglass", "position.glass"])
def test_a_shard_that_lost_a_file_is_an_error_not_an_empty_answer(store, lost):
    """tag used to print "0 messages matched" and exit 0: the writer re-created the shard empty."""
    before = volatile(store)
    (store / "ei15" / "0" / lost).unlink()
    err = one_line(run_cli("tag", "--store", str(store), "-q", "s:scrub", "+L:x", check=False), DAMAGED)
    assert lost in err and "fsck --repair" in err
    one_line(run_cli("q", "--store", str(store), "s:scrub", check=False), DAMAGED)
    one_line(run_cli("import", "--store", str(store), "--stdin", input=b"Subject: x\n\ny\n", check=False),
             DAMAGED)
    assert not (store / "ei15" / "0" / lost).exists() or lost != "postlist.glass"  # nothing re-created
    assert run_cli("fsck", "--store", str(store), check=False).returncode == 2
    run_cli("fsck", "--store", str(store), "--repair")
    assert volatile(store) == before
