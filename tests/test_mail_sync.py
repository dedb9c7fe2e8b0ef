"""mail_sync commands on Maildirs: ls/forget/refresh-mail-sync, export-kw, a Maildir vanishing mid-import."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pytest
from conftest import run_cli
from storecheck import blob_oid


def cli(store: Path, *args: str, **kw):
    return run_cli(*args, "--store", str(store), **kw)


def imp(store: Path, *args: str) -> dict:
    return json.loads(cli(store, "import", "--json", "-q", *args).stdout)


def names(store: Path, fid: int = 1) -> dict[str, str]:
    """name -> blob of one folder's rows (the first folder imported is fid 1)."""
    db = sqlite3.connect(store / "mail_sync.sqlite3")
    return {bytes(n).decode(): bytes(o).hex()
            for o, n in db.execute("SELECT oidbin, name FROM blob2name WHERE fid = ?", (fid,))}


@pytest.fixture
def two_maildirs(sample_corpus, tmp_path):
    a = Path(shutil.copytree(sample_corpus / "maildir", tmp_path / "a"))
    b = Path(shutil.copytree(sample_corpus / "maildir", tmp_path / "b"))
    store = tmp_path / "store"
    imp(store, str(a))
    imp(store, str(b))
    return store, a, b


def test_ls_mail_sync(two_maildirs):
    store, a, b = two_maildirs
    out = cli(store, "ls-mail-sync").stdout.decode()
    assert out == f"maildir:{a}\nmaildir:{b}\n"
    assert cli(store, "ls-mail-sync", "*/b").stdout.decode() == f"maildir:{b}\n"
    assert cli(store, "ls-mail-sync", "--remote").stdout == b""
    assert cli(store, "ls-mail-sync", "--local", "-z").stdout == f"maildir:{a}\0maildir:{b}\0".encode()


def test_forget_mail_sync_keeps_the_store(two_maildirs):
    store, a, b = two_maildirs
    count = len(cli(store, "q", "z:1..", "-f", "jsonl").stdout.splitlines())
    cli(store, "forget-mail-sync", str(a))
    assert cli(store, "ls-mail-sync").stdout.decode() == f"maildir:{b}\n"
    db = sqlite3.connect(store / "mail_sync.sqlite3")
    assert db.execute("SELECT COUNT(*) FROM blob2name WHERE fid = 1").fetchone() == (0,)
    assert len(cli(store, "q", "z:1..", "-f", "jsonl").stdout.splitlines()) == count
    stats = imp(store, str(a))  # no sync state: every file is read again, all already stored
    assert stats["skipped"] == 0 and stats["added"] == 0 and stats["duplicates"] + stats["attached"] == stats["messages"]
    r = cli(store, "forget-mail-sync", "/nowhere", check=False)
    assert r.returncode == 1 and b"not a synced folder" in r.stderr


def test_refresh_mail_sync_prunes_and_completes(two_maildirs):
    store, a, _b = two_maildirs
    gone = next((a / "cur").iterdir())
    gone.unlink()
    stored = next((a / "new").iterdir())
    copy = a / "cur" / ("9999999999.copy.host:2,S")
    copy.write_bytes(stored.read_bytes())  # a file another program put there: the store holds its blob
    stranger = a / "new" / "9999999998.stranger.host"
    stranger.write_bytes(b"Subject: not stored\n\nhi\n")
    r = cli(store, "refresh-mail-sync", str(a), "--json")
    (res,) = json.loads(r.stdout)
    assert res == {"folder": f"maildir:{a}", "removed": 1, "added": 1, "exported": 0}
    rows = names(store)
    assert gone.name not in rows and rows[copy.name] == blob_oid(stored.read_bytes())
    assert stranger.name not in rows


def test_export_kw_renames_to_match_the_store(two_maildirs, sample_corpus, tmp_path):
    store, a, b = two_maildirs
    first = json.loads(cli(store, "export-kw", "--all", "--json").stdout)
    assert first[0]["exported"] > 0  # copies get their message's flags
    unflagged = list((a / "new").iterdir())
    assert unflagged and all(":" not in p.name for p in unflagged)  # left alone: their flags already match
    assert [r["exported"] for r in json.loads(cli(store, "export-kw", "--all", "--json").stdout)] == [0, 0]
    # keywords change without touching the Maildirs: an mbox whose Status says otherwise
    one = next(p for p in (a / "cur").iterdir() if p.name.endswith(":2,S"))
    raw = one.read_bytes()
    end = raw.index(b"\n\n")
    mbox = tmp_path / "flagged.mboxrd"
    mbox.write_bytes(b"From x@y Thu Jan  1 00:00:00 1970\n" + raw[:end + 1] + b"Status: RO\nX-Status: F\n"
                     + raw[end + 1:] + b"\n")
    imp(store, f"mboxrd:{mbox}")
    assert one.exists()  # import never renames
    r = cli(store, "export-kw", str(a), "--json")
    assert json.loads(r.stdout)[0]["exported"] == 1
    assert one.with_name(one.name[:-1] + "FS").exists() and not one.exists()
    assert (b / "cur" / one.name).exists()  # only the named folder
    cli(store, "export-kw", "--all=local")
    assert (b / "cur" / (one.name[:-1] + "FS")).exists()
    # set mode drops letters the store does not have; merge (default) would keep them
    extra = next(p for p in (a / "cur").iterdir() if p.name.endswith(":2,FS") and p.name != one.name[:-1] + "FS")
    kept = extra.with_name(extra.name + "Z")  # an unknown letter survives either way
    extra.rename(kept)
    imp(store, str(a))
    cli(store, "tag", "--quiet", str(kept), "-kw:flagged")
    assert kept.with_name(kept.name.replace(":2,FSZ", ":2,SZ")).exists()
    r = cli(store, "export-kw", check=False)
    assert r.returncode == 1 and b"--all" in r.stderr


def test_maildir_vanishing_mid_import_keeps_what_was_read(sample_corpus, tmp_path):
    from lei_store.errors import InputError
    from lei_store.sources import maildir
    from lei_store.write.store import Store

    md = Path(shutil.copytree(sample_corpus / "maildir", tmp_path / "md"))
    store = Store.create(tmp_path / "store")
    entries = maildir.list_entries(md)

    def vanishing():
        for i, item in enumerate(maildir.read_items(md, f"maildir:{md}", entries)):
            yield item
            if i == 49:
                shutil.rmtree(md)

    with pytest.raises(InputError, match="vanished"):
        with store.writer(jobs=1) as w:
            w.add_messages(vanishing())
    assert w.stats.messages == 50
    out = run_cli("q", "--store", str(store.root), "z:1..", "-f", "jsonl", "--dedupe=none").stdout.splitlines()
    assert len(out) == w.stats.added and w.stats.added > 40
    assert len(names(store.root)) == 50  # sync rows of what was read are kept: the next run resumes
