"""Damaged and hostile inputs: a Maildir holding a FIFO, a directory, a symlink or an unreadable file,
things that are not Maildirs or mboxes, and messages too large or too costly to take.

Each bad entry is skipped and named (one line each), the rest is stored, and the import exits 66;
nothing hangs, nothing outside the Maildir is read.
"""

from __future__ import annotations

import gzip
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import as_unprivileged_user, run_cli
from storecheck import blob_oid, commits, git_blob, has_blob, over_rows

SKIPPED = 66


def message(i: int, extra: bytes = b"") -> bytes:
    return b"From: a@example.org\nSubject: good %d\nMessage-ID: <good%d@x>\n%s\nbody %d\n" % (i, i, extra, i)


def maildir(path: Path, count: int = 3) -> Path:
    for sub in ("cur", "new", "tmp"):
        (path / sub).mkdir(parents=True)
    for i in range(count):
        (path / "cur" / f"17000000{i:02d}.M{i}P0.host:2,S").write_bytes(message(i))
    return path


def skipped_lines(err: str) -> list[str]:
    return [ln for ln in err.splitlines() if ln.startswith("lei-store: skipped ")]


def test_a_fifo_is_skipped_not_waited_on(tmp_path):
    md = maildir(tmp_path / "md")
    os.mkfifo(md / "cur" / "1700000099.M9P0.host:2,S")
    os.mkfifo(md / "new" / "1700000098.M8P0.host")
    r = run_cli("import", "--store", str(tmp_path / "s"), str(md), check=False, timeout=60)
    err = r.stderr.decode()
    assert r.returncode == SKIPPED, err
    assert len(skipped_lines(err)) == 2 and all("FIFO" in ln for ln in skipped_lines(err)), err
    assert "Traceback" not in err
    assert len(over_rows(tmp_path / "s")) == 3


def test_a_symlink_is_not_followed_out_of_the_maildir(tmp_path):
    md = maildir(tmp_path / "md")
    os.symlink("/etc/passwd", md / "cur" / "1700000099.M9P0.host:2,S")
    os.symlink(md / "cur" / "1700000000.M0P0.host:2,S", md / "new" / "1700000097.M7P0.host")
    r = run_cli("import", "--store", str(tmp_path / "s"), str(md), check=False)
    err = r.stderr.decode()
    assert r.returncode == SKIPPED and len(skipped_lines(err)) == 2, err
    assert all("symlink" in ln for ln in skipped_lines(err)), err
    passwd = Path("/etc/passwd").read_bytes()
    assert not has_blob(tmp_path / "s", blob_oid(passwd))
    assert len(over_rows(tmp_path / "s")) == 3 and commits(tmp_path / "s") == 3


def test_a_symlinked_cur_is_not_followed(tmp_path):
    md = maildir(tmp_path / "md", 0)
    elsewhere = maildir(tmp_path / "elsewhere", 2)
    (md / "cur").rmdir()
    (md / "cur").symlink_to(elsewhere / "cur")
    (md / "new" / "1700000050.M5P0.host").write_bytes(message(50))
    r = run_cli("import", "--store", str(tmp_path / "s"), str(md), check=False)
    assert r.returncode == SKIPPED and "symlink" in r.stderr.decode()
    assert len(over_rows(tmp_path / "s")) == 1


def test_unreadable_file_and_directory_entry_skip_only_themselves(tmp_path):
    """Before: exit 74 and nothing stored, on every run. Now the good messages are stored."""
    with as_unprivileged_user(tmp_path) as (prefix, base):
        md = maildir(base / "md", 3)
        (md / "cur" / "1700000077.M7P0.host:2,S").mkdir()  # a directory named like a message
        secret = md / "cur" / "1700000088.M8P0.host:2,S"
        secret.write_bytes(message(88))
        secret.chmod(0)
        if prefix:
            for top, dirs, files in os.walk(base):
                for name in dirs + files:
                    os.chown(os.path.join(top, name), 65534, 65534)
        env = dict(os.environ, HOME=str(base))
        cmd = [*prefix, sys.executable, "-m", "lei_store", "import", "--store", str(base / "s"), str(md)]
        for _attempt in (1, 2):
            r = subprocess.run(cmd, capture_output=True, env=env, cwd=base, timeout=120)
            err = r.stderr.decode()
            assert r.returncode == SKIPPED, err
            lines = skipped_lines(err)
            assert len(lines) == 2, err
            assert any("directory" in ln for ln in lines) and any("ermission denied" in ln for ln in lines), err
            assert "Traceback" not in err
            assert len(over_rows(base / "s")) == 3  # the second run adds nothing and loses nothing
        assert commits(base / "s") == 3


def test_skip_notices_are_bounded(tmp_path):
    md = maildir(tmp_path / "md", 1)
    for i in range(40):
        (md / "cur" / f"17000001{i:02d}.M{i}P0.host:2,S").mkdir()
    r = run_cli("import", "--store", str(tmp_path / "s"), str(md), check=False)
    err = r.stderr.decode().splitlines()
    assert r.returncode == SKIPPED and len(skipped_lines("\n".join(err))) == 20
    assert len(err) <= 24 and "40 input(s) skipped" in err[-1]


@pytest.mark.parametrize("make, spec, says", [
    (lambda p: p.mkdir(), "maildir:{p}", "not a Maildir"),
    (lambda p: p.mkdir(), "{p}", "not a Maildir"),
    (lambda p: p.write_bytes(b""), "mboxrd:{p}", "empty file"),
    (lambda p: p.write_bytes(b""), "{p}", "empty file"),
    (lambda p: p.write_bytes(b"\n\n  \n"), "mboxrd:{p}", "no messages"),
    (lambda p: p.write_bytes(b"Subject: not an mbox\n\nx\n"), "mboxrd:{p}", "not an mbox"),
    (lambda p: p.with_suffix(".gz").write_bytes(message(1)), "{p}.gz", "does not hold gz data"),
    (lambda p: p.with_suffix(".xz").write_bytes(b"plain"), "mboxrd:{p}.xz", "does not hold xz data"),
    (lambda p: os.mkfifo(p), "{p}", "not a regular file"),
])
def test_inputs_that_hold_nothing_are_an_error(tmp_path, make, spec, says):
    target = tmp_path / "input"
    make(target)
    r = run_cli("import", "--store", str(tmp_path / "s"), spec.format(p=target), check=False, timeout=60)
    err = r.stderr.decode()
    assert r.returncode == 1 and len(err.strip().splitlines()) == 1 and says in err, err


def test_empty_stdin_is_an_error(tmp_path):
    r = run_cli("import", "--store", str(tmp_path / "s"), "--stdin", input=b"", check=False)
    assert r.returncode == 1 and b"no message in it" in r.stderr


def _peak_child_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def test_a_compressed_bomb_is_skipped_in_flat_memory(tmp_path):
    """7.8 MB of gzip holding one 3 GiB message used to grow the import past 6 GB; here 1 GiB."""
    bomb = tmp_path / "bomb.mbox.gz"
    with gzip.open(bomb, "wb", compresslevel=1) as f:
        f.write(b"From x@y Thu Jan  1 00:00:00 2023\n" + message(1)[:-1])
        for _ in range(1024):
            f.write(b"A" * (1 << 20))  # one line of 1 GiB: read in pieces, never whole
        f.write(b"\n\nFrom x@y Thu Jan  1 00:00:00 2023\n" + message(2) + b"\n")
    before = _peak_child_rss_mb()
    r = run_cli("import", "--store", str(tmp_path / "s"), f"mboxrd:{bomb}", check=False, timeout=300)
    err = r.stderr.decode()
    assert r.returncode == SKIPPED and "over the 67108864-byte limit" in err, err
    assert [f[0] for *_, f in over_rows(tmp_path / "s")] == ["good 2"]
    assert max(before, _peak_child_rss_mb()) < 400, "peak RSS of the import, MB"


def test_max_size_option_applies_to_every_importer(tmp_path):
    big = message(7, b"X-Pad: " + b"p" * 5000 + b"\n")
    md = maildir(tmp_path / "md", 2)
    (md / "new" / "1700000070.M7P0.host").write_bytes(big)
    (tmp_path / "big.eml").write_bytes(big)
    (tmp_path / "box").write_bytes(b"From x Thu Jan  1 00:00:00 1970\n" + big + b"\n")
    for spec in (str(md), str(tmp_path / "big.eml"), f"mboxcl2:{tmp_path / 'box'}", f"mboxrd:{tmp_path / 'box'}"):
        r = run_cli("import", "--store", str(tmp_path / "s"), "--max-size", "4K", spec, check=False)
        assert r.returncode == SKIPPED and len(skipped_lines(r.stderr.decode())) == 1, (spec, r.stderr)
    assert not has_blob(tmp_path / "s", blob_oid(big))
    ok = run_cli("import", "--store", str(tmp_path / "s"), "--max-size", "1M", str(tmp_path / "big.eml"))
    assert ok.returncode == 0 and git_blob(tmp_path / "s", blob_oid(big)) == big


@pytest.mark.parametrize("bad", ["0", "-3", "lots", "12Q"])
def test_max_size_must_be_a_size(tmp_path, bad):
    r = run_cli("import", "--store", str(tmp_path / "s"), "--max-size", bad, str(tmp_path), check=False)
    assert r.returncode == 1 and b"--max-size" in r.stderr and b"Traceback" not in r.stderr  # usage: exit 1


def test_fifty_thousand_references_take_linear_time(tmp_path):
    """One message with 50,000 References took 130 s (quadratic id de-duplication)."""
    refs = b" ".join(b"<r%d@example.org>" for i in range(50000))
    (tmp_path / "refs.eml").write_bytes(message(1, b"References: " + refs + b"\n"))
    started = time.monotonic()
    run_cli("import", "--store", str(tmp_path / "s"), "-q", str(tmp_path / "refs.eml"))
    assert time.monotonic() - started < 15
    assert len(over_rows(tmp_path / "s")) == 1


def test_a_ten_megabyte_subject_stays_in_bounded_memory(tmp_path):
    (tmp_path / "subj.eml").write_bytes(b"From: a@b\nSubject: " + b"word " * 2_000_000 + b"\nMessage-ID: <s@x>\n\nx\n")
    before = _peak_child_rss_mb()
    run_cli("import", "--store", str(tmp_path / "s"), "-q", str(tmp_path / "subj.eml"), timeout=120)
    assert max(before, _peak_child_rss_mb()) < 450, "peak RSS of the import, MB"


def test_refresh_mail_sync_and_blob_never_wait_on_a_fifo(tmp_path):
    """The same class of mistake outside import: reading every name of a synced Maildir."""
    md = maildir(tmp_path / "md")
    store = tmp_path / "s"
    run_cli("import", "--store", str(store), "-q", str(md))
    oid = blob_oid(message(0))
    name = "1700000000.M0P0.host:2,S"
    (md / "cur" / name).unlink()
    os.mkfifo(md / "cur" / name)  # the synced file is now a FIFO of the same name
    os.mkfifo(md / "new" / "1700000099.M9P0.host")
    r = run_cli("refresh-mail-sync", "--store", str(store), "--all", timeout=60)
    assert r.returncode == 0
    assert run_cli("blob", "--store", str(store), oid, timeout=60).stdout == message(0)  # from git
