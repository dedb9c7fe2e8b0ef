"""Bad input gets one clear line on stderr and a non-zero exit; nothing stored is lost."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import as_unprivileged_user, run_cli
from storecheck import blob_oid, commits, git_blob, over_rows

GOOD = b"From: a@example.org\nSubject: fine\nMessage-ID: <fine@x>\n\nbody\n"


def fails(*args: str, code: int | None = None, **kw) -> str:
    r = run_cli(*args, check=False, **kw)
    err = r.stderr.decode()
    assert r.returncode != 0, err
    if code is not None:
        assert r.returncode == code, err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err
    assert err.startswith("lei-store: ")
    return err


@pytest.fixture
def store(tmp_path) -> Path:
    s = tmp_path / "store"
    (tmp_path / "good.eml").write_bytes(GOOD)
    run_cli("import", "--store", str(s), "-q", str(tmp_path / "good.eml"))
    return s


def unchanged(store: Path) -> None:
    assert len(over_rows(store)) == 1 and commits(store) == 1
    assert git_blob(store, blob_oid(GOOD)) == GOOD


def test_missing_path(store, tmp_path):
    assert "no such file" in fails("import", "--store", str(store), str(tmp_path / "nope"))
    unchanged(store)


def test_unknown_format(store, tmp_path):
    assert "unknown format" in fails("import", "--store", str(store), "-F", "pst", str(tmp_path / "good.eml"))
    unchanged(store)


def test_unreadable_file(tmp_path):
    with as_unprivileged_user(tmp_path) as (prefix, base):
        f = base / "secret.eml"
        f.write_bytes(GOOD)
        f.chmod(0)
        if prefix:
            os.chown(f, 65534, 65534)
        r = subprocess.run([*prefix, sys.executable, "-m", "lei_store", "import", "--store", str(base / "s"), str(f)],
                           capture_output=True, cwd=base, env=dict(os.environ, HOME=str(base)), timeout=60)
        err = r.stderr.decode()
        assert r.returncode == 1 and "permission denied" in err and len(err.strip().splitlines()) == 1, err


def test_directory_that_is_not_a_store(tmp_path):
    d = tmp_path / "notastore"
    d.mkdir()
    (d / "something").write_text("x")
    (tmp_path / "m.eml").write_bytes(GOOD)
    assert "not a lei store" in fails("import", "--store", str(d), str(tmp_path / "m.eml"))
    assert "not a lei store" in fails("blob", "--store", str(d), "0" * 40)


def test_not_a_maildir_and_not_an_mbox(store, tmp_path):
    (tmp_path / "plain").mkdir()
    assert "not a Maildir" in fails("import", "--store", str(store), str(tmp_path / "plain"))
    (tmp_path / "x.txt").write_bytes(b"just text\n")
    assert "not an mbox" in fails("import", "--store", str(store), f"mboxrd:{tmp_path / 'x.txt'}")
    unchanged(store)


def test_truncated_mbox_imports_what_it_holds(store, tmp_path):
    box = b"".join(b"From x Thu Jan  1 00:00:00 1970\n" + GOOD.replace(b"fine@x", b"m%d@x" % i) + b"\n"
                   for i in range(5))
    (tmp_path / "cut.mbox").write_bytes(box[:-20])
    err = fails("import", "--store", str(store), f"mboxrd:{tmp_path / 'cut.mbox'}")
    assert "truncated at byte" in err and "message 5" in err
    assert len(over_rows(store)) == 5  # the good one + 4 complete messages
    assert git_blob(store, blob_oid(GOOD)) == GOOD


def test_malformed_mail_is_stored_byte_for_byte(store, tmp_path):
    ugly = [
        b"\xff\xfe garbage without any header\x00\x01\n\nbody\n",
        b"Subject: =?bogus-charset?q?=FF=FE?=\nFrom: <<<@@@>>>\nDate: yesterday-ish\nContent-Type: multipart/mixed\n\nno boundary\n",
        b"Subject: \xe9t\xe9 latin-1 bytes\nFrom: \xc3\x28 bad utf8 <x@y>\nContent-Transfer-Encoding: base64\n\n!!!notbase64",
        b"Content-Type: multipart/mixed; boundary=\"b\"\n\n--b\nContent-Type: message/rfc822\n\n--b--\n",
        b"",  # empty file
        b"X" * 5000 + b": very long header name\n\n",
    ]
    md = tmp_path / "ugly"
    for sub in ("cur", "new", "tmp"):
        (md / sub).mkdir(parents=True)
    for i, raw in enumerate(ugly):
        (md / "new" / f"{i}.ugly").write_bytes(raw)
    r = run_cli("import", "--store", str(store), "--json", "-q", str(md))
    stats = json.loads(r.stdout)
    assert "Traceback" not in r.stderr.decode()
    for raw in ugly:
        if raw:
            assert git_blob(store, blob_oid(raw)) == raw
    assert stats["added"] == sum(1 for raw in ugly if raw) or stats["added"] >= 4


def test_locked_store(store, tmp_path):
    hold = subprocess.Popen([sys.executable, "-c", (
        "import sys,time\nfrom pathlib import Path\nfrom lei_store.locks import locked\n"
        f"with locked(Path({str(store / 'ei.lock')!r}), 5):\n print('held', flush=True); time.sleep(60)")],
        stdout=subprocess.PIPE)
    try:
        assert hold.stdout.readline().strip() == b"held"
        err = fails("import", "--store", str(store), "--lock-timeout", "0.5", str(tmp_path / "good.eml"), code=75)
        assert f"pid={hold.pid}" in err
    finally:
        hold.kill()
        hold.wait()
    unchanged(store)


def test_nothing_to_import(store):
    assert "nothing to import" in fails("import", "--store", str(store))
