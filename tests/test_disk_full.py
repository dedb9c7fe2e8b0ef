"""A full disk: one clear line, nothing stored is lost, and the import resumes once there is room."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from conftest import run_cli, small_tmpfs
from storecheck import git_blob, over_rows, xdb


@pytest.fixture
def small_fs(tmp_path):
    with small_tmpfs(tmp_path / "fs", "4m") as mnt:
        yield mnt


def test_import_into_a_full_disk_then_resume(small_fs, sample_corpus, tmp_path):
    store = small_fs / "store"
    maildir = shutil.copytree(sample_corpus / "maildir", tmp_path / "md")
    big = tmp_path / "big.mbox"  # the sample three times over with new ids: enough to fill 3 MiB
    mbox = (sample_corpus / "sample.mboxrd").read_bytes()
    big.write_bytes(b"".join(mbox.replace(b"@example.org>", b".%d@example.org>" % i) for i in range(6)))
    run_cli("import", "--store", str(store), "-q", "--batch-size", "50", str(maildir))
    before = {f[5] for *_, f in over_rows(store)}
    r = run_cli("import", "--store", str(store), "-q", "--batch-size", "50", f"mboxrd:{big}", check=False)
    err = r.stderr.decode()
    assert r.returncode == 74 and "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert "disk full" in err, err
    # nothing that was stored before is lost or unreadable
    after_fail = {f[5] for *_, f in over_rows(store)}
    assert before <= after_fail
    for oid in after_fail:
        assert git_blob(store, oid)
    subprocess.run(["mount", "-o", "remount,size=200m", str(small_fs)], check=True)
    run_cli("import", "--store", str(store), "-q", f"mboxrd:{big}")
    rows = over_rows(store)
    blobs = [f[5] for *_, f in rows]
    assert len(blobs) == len(set(blobs))
    assert xdb(store).get_doccount() == len(rows)  # every row indexed once, no stray documents
    again = run_cli("import", "--store", str(store), "--json", "-q", f"mboxrd:{big}")
    import json

    assert json.loads(again.stdout)["added"] == 0


def test_backup_onto_a_full_disk_is_74_and_leaves_nothing(sample_corpus, tmp_path):
    store = tmp_path / "store"
    run_cli("import", "--store", str(store), "-q", str(shutil.copytree(sample_corpus / "maildir", tmp_path / "md")))
    with small_tmpfs(tmp_path / "tiny", "64k") as mnt:
        r = run_cli("backup", "--store", str(store), str(mnt / "b.tar"), check=False)
        err = r.stderr.decode()
        assert r.returncode == 74 and "disk full" in err and len(err.strip().splitlines()) == 1, err
        assert list(mnt.iterdir()) == []


def test_a_store_the_user_may_not_write_is_77(sample_corpus, tmp_path):
    import os
    import sys

    from conftest import as_unprivileged_user

    with as_unprivileged_user(tmp_path) as (prefix, base):
        store = base / "store"
        run_cli("import", "--store", str(store), "-q", f"mboxrd:{sample_corpus / 'sample.mboxrd'}")
        if not prefix:
            store.chmod(0o555)
        (base / "m.eml").write_bytes(b"From: a@b\nSubject: x\nMessage-ID: <perm@x>\n\nx\n")
        (base / "m.eml").chmod(0o644)
        r = subprocess.run([*prefix, sys.executable, "-m", "lei_store", "import", "--store", str(store),
                            str(base / "m.eml")], capture_output=True, cwd=base, env=dict(os.environ, HOME=str(base)))
        err = r.stderr.decode()
        assert r.returncode == 77 and "permission denied" in err and len(err.strip().splitlines()) == 1, err
