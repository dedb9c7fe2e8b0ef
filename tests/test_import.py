"""lei-store import end to end: formats, both dedup levels, drafts, keywords, epochs, re-import."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from conftest import run_cli
from storecheck import blob_oid, commits, doc_terms, docid_of_blob, git_blob, over_rows, sql, xdb, xref3

MSG = b"""From: Alice Example <alice@example.org>
To: Bob <bob@example.com>
Subject: Hello world quickly
Date: Tue, 03 Jan 2023 09:59:00 +0100
Message-ID: <m1@example.org>

Hello Bob, a test about frobnication.
"""


def imp(store: Path, *args: str, **kw) -> dict:
    r = run_cli("import", "--store", str(store), "--json", "-q", *args, **kw)
    return json.loads(r.stdout)


def files_in(maildir: Path) -> list[Path]:
    return [p for sub in ("cur", "new") for p in (maildir / sub).iterdir()]


@pytest.fixture
def maildir(sample_corpus, tmp_path) -> Path:
    return Path(shutil.copytree(sample_corpus / "maildir", tmp_path / "md"))


def test_maildir_import_stores_every_file(maildir, tmp_path):
    store = tmp_path / "store"
    files = files_in(maildir)
    stats = imp(store, str(maildir))
    assert stats["messages"] == len(files)
    assert stats["added"] + stats["attached"] + stats["duplicates"] == len(files)
    assert stats["attached"] >= 1 and stats["duplicates"] >= 1  # the corpus has both kinds
    assert len(over_rows(store)) == stats["added"] == xdb(store).get_doccount()
    assert commits(store) == stats["added"] + stats["attached"]  # byte duplicates add no commit
    for f in files:  # every file is readable back, byte for byte, through ALL.git
        data = f.read_bytes()
        assert git_blob(store, blob_oid(data)) == data
    assert (store / "ALL.git" / "objects" / "info" / "alternates").read_text() == "../../local/0.git/objects\n"


def test_maildir_flags_become_keywords(maildir, tmp_path):
    store = tmp_path / "store"
    imp(store, str(maildir))
    flagged = next(f for f in files_in(maildir) if f.name.endswith(":2,FS"))
    terms = doc_terms(store, docid_of_blob(store, blob_oid(flagged.read_bytes())))
    assert {"Kflagged", "Kseen"} <= terms
    fresh = next(f for f in (maildir / "new").iterdir())
    assert not {t for t in doc_terms(store, docid_of_blob(store, blob_oid(fresh.read_bytes()))) if t.startswith("K")}


def test_maildir_reimport_reads_nothing_and_picks_up_flag_changes(maildir, tmp_path):
    store = tmp_path / "store"
    first = imp(store, str(maildir))
    again = imp(store, str(maildir))
    assert again["skipped"] == first["messages"] and again["messages"] == 0
    target = next(f for f in (maildir / "cur").iterdir() if f.name.endswith(":2,S"))
    target.rename(target.with_name(target.name[:-1] + "FS"))
    third = imp(store, str(maildir))
    # recognised by its unchanged base name: not read again, only its keywords and row updated
    assert third["messages"] == 0 and third["renamed"] == 1 and third["keywords_updated"] == 1
    new = target.with_name(target.name[:-1] + "FS")
    new.rename(target.parent.parent / "new" / new.name.split(":")[0])  # moved back to new/, flags gone
    fourth = imp(store, str(maildir))
    assert fourth["renamed"] == 1 and fourth["keywords_updated"] == 1 and fourth["messages"] == 0
    (target.parent.parent / "new" / new.name.split(":")[0]).rename(new)
    assert imp(store, str(maildir))["renamed"] == 1
    assert "Kflagged" in doc_terms(store, docid_of_blob(store, blob_oid(target.with_name(target.name[:-1] + "FS").read_bytes())))
    names = [bytes(n).decode() for (n,) in __import__("sqlite3").connect(store / "mail_sync.sqlite3").execute(
        "SELECT name FROM blob2name")]
    assert target.name not in names and target.name[:-1] + "FS" in names


def test_mail_sync_rows_are_blobs_like_lei(maildir, tmp_path):
    import sqlite3

    store = tmp_path / "store"
    imp(store, str(maildir))
    db = sqlite3.connect(store / "mail_sync.sqlite3")
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("SELECT typeof(loc) FROM folders").fetchall() == [("blob",)]
    (loc,) = db.execute("SELECT loc FROM folders").fetchone()
    assert bytes(loc) == f"maildir:{maildir}".encode()
    types = db.execute("SELECT DISTINCT typeof(oidbin), typeof(name) FROM blob2name").fetchall()
    assert types == [("blob", "blob")]
    assert db.execute("SELECT count(*) FROM blob2name").fetchone()[0] == len(files_in(maildir))


def test_no_mail_sync_and_no_kw(maildir, tmp_path):
    import sqlite3

    store = tmp_path / "store"
    imp(store, "--no-mail-sync", "--no-kw", str(maildir))
    assert sqlite3.connect(store / "mail_sync.sqlite3").execute("SELECT count(*) FROM folders").fetchone()[0] == 0
    assert not any(xdb(store).allterms("K"))


def test_mbox_of_the_same_mail_is_all_duplicates(sample_corpus, maildir, tmp_path):
    store = tmp_path / "store"
    imp(store, str(maildir))
    before = commits(store)
    stats = imp(store, f"mboxrd:{sample_corpus / 'sample.mboxrd'}")
    assert stats["added"] == 0 and stats["attached"] == 0
    assert commits(store) == before


@pytest.mark.parametrize("fmt", ["mboxrd", "mboxo", "mboxcl", "mboxcl2"])
def test_mbox_variants_import(tmp_path, fmt):
    import sys

    sys.path.insert(0, str(Path(__file__).parent))
    from test_mbox import M2, mbox

    box = tmp_path / "box"
    box.write_bytes(mbox(MSG, M2, fmt=fmt))
    store = tmp_path / "store"
    stats = imp(store, "-F", fmt, str(box))
    assert stats["added"] == 2
    assert git_blob(store, blob_oid(MSG)) == MSG  # Content-Length and Status are not stored
    terms = doc_terms(store, docid_of_blob(store, blob_oid(M2.replace(b"Status: RO\nX-Status: AF\n", b""))))
    assert {"Kseen", "Kanswered", "Kflagged"} <= terms


def test_eml_stdin_and_modifiers(tmp_path):
    store = tmp_path / "store"
    eml = tmp_path / "a.eml"
    eml.write_bytes(b"From git-format-patch Mon Sep 17 00:00:00 2001\n" + MSG)
    stats = imp(store, "+kw:flagged", "+L:work", str(eml))
    assert stats["added"] == 1
    num = docid_of_blob(store, blob_oid(MSG))  # the From_ line is not part of the message
    assert {"Kflagged", "Lwork", "Qm1@example.org"} <= doc_terms(store, num)
    again = imp(store, "+L:other", "--stdin", input=MSG)
    assert again["duplicates"] == 1
    assert "Lother" not in doc_terms(store, num)  # modifiers apply to newly stored messages only
    other = MSG.replace(b"m1@example.org", b"m2@example.org")
    assert imp(store, "--stdin", input=other)["added"] == 1


def test_content_duplicate_is_a_new_copy_of_the_same_message(tmp_path):
    store = tmp_path / "store"
    a = b"Received: from a by b; Tue, 03 Jan 2023 10:00:05 +0000\n" + MSG
    b = b"Received: from elsewhere by b; Tue, 03 Jan 2023 10:00:09 +0000\n" + MSG
    (tmp_path / "a.eml").write_bytes(a)
    (tmp_path / "b.eml").write_bytes(b)
    imp(store, str(tmp_path / "a.eml"))
    assert imp(store, str(tmp_path / "b.eml"))["attached"] == 1
    assert sorted(xref3(store)) == sorted([(1, blob_oid(a)), (1, blob_oid(b))])
    assert commits(store) == 2 and len(over_rows(store)) == 1
    changed = MSG.replace(b"frobnication", b"something else")
    (tmp_path / "c.eml").write_bytes(changed)
    assert imp(store, str(tmp_path / "c.eml"))["added"] == 1  # same Message-ID, other content


def test_draft_without_message_id(tmp_path):
    store = tmp_path / "store"
    draft = (b"From: Me <me@example.com>\nTo: someone@example.org\nSubject: my unsent draft\n"
             b"Date: Thu, 05 Jan 2023 08:00:00 +0000\n\ndraft text without message id\n")
    (tmp_path / "d.eml").write_bytes(draft)
    imp(store, str(tmp_path / "d.eml"))
    assert sql(store, "SELECT mid FROM msgid") == [("20230105080000.D6U5suOWmJ828clfz5pMb3vwYQGxHdr4b8pfiU_0Z1U@z",)]
    (row,) = over_rows(store)
    assert row[5][6] == ""  # mid0 in ddd stays empty
    terms = doc_terms(store, 1)
    assert "XNQdraft" in terms and not [t for t in terms if t.startswith(("Q", "XM"))]
    assert imp(store, str(tmp_path / "d.eml"))["duplicates"] == 1


def test_epoch_rollover(sample_corpus, tmp_path):
    store = tmp_path / "store"
    stats = imp(store, "--rotate-bytes", "20000", f"mboxrd:{sample_corpus / 'sample.mboxrd'}")
    epochs = sorted(int(p.name.split(".")[0]) for p in (store / "local").glob("*.git"))
    assert len(epochs) >= 3 and epochs == list(range(len(epochs)))
    alternates = (store / "ALL.git" / "objects" / "info" / "alternates").read_text().split()
    assert alternates == [f"../../local/{n}.git/objects" for n in reversed(epochs)]
    for e in epochs:
        assert "path = ../../ALL.git/config" in (store / "local" / f"{e}.git" / "config").read_text()
    assert commits(store) == stats["added"] + stats["attached"]
    for _num, *_rest, fields in over_rows(store):
        assert git_blob(store, fields[5])  # every blob reachable through ALL.git


def test_commit_format_matches_lei(tmp_path):
    import subprocess

    store = tmp_path / "store"
    (tmp_path / "m.eml").write_bytes(b"Received: from mx by mail; Tue, 03 Jan 2023 10:00:05 +0000\n" + MSG)
    imp(store, str(tmp_path / "m.eml"))
    log = subprocess.run(["git", f"--git-dir={store / 'local/0.git'}", "log", "--format=%an|%ae|%ad|%cn|%ce|%cd|%B",
                          "--date=raw"], capture_output=True, text=True).stdout
    assert log == "Alice Example|alice@example.org|1672736340 +0100|lei test|lei@example.test|1672740005 +0000|Hello world quickly\n\n"
    tree = subprocess.run(["git", f"--git-dir={store / 'local/0.git'}", "ls-tree", "HEAD"],
                          capture_output=True, text=True).stdout
    assert tree.endswith("\tm\n") and tree.count("\n") == 1


def test_layout_matches_lei(tmp_path):
    store = tmp_path / "store"
    run_cli("init", str(store))
    for rel in ("ALL.git/HEAD", "ALL.git/config", "ei15/over.sqlite3", "ei15/0", "ei15/misc",
                "mail_sync.sqlite3", "ei.lock", "local"):
        assert (store / rel).exists(), rel
    assert "sharedRepository = 0600" in (store / "ALL.git" / "config").read_text()
    import xapian

    assert xapian.Database(str(store / "ei15" / "0")).get_metadata("has_threadid") == b"1"
    # lei init DIR records the store in lei's config, and so do we
    cfg = Path(os.environ["HOME"]) / ".config" / "lei" / "config"
    assert f"dir = {store}" in cfg.read_text()


def test_shard_count_follows_nproc_and_existing_store(tmp_path, monkeypatch):
    monkeypatch.setenv("NPROC", "4")
    store = tmp_path / "store"
    (tmp_path / "m.eml").write_bytes(MSG)
    imp(store, str(tmp_path / "m.eml"))
    assert sorted(p.name for p in (store / "ei15").iterdir() if p.name.isdigit()) == ["0", "1", "2"]
    monkeypatch.setenv("NPROC", "1")
    (tmp_path / "n.eml").write_bytes(MSG.replace(b"m1@", b"m9@"))
    imp(store, str(tmp_path / "n.eml"))
    assert sorted(p.name for p in (store / "ei15").iterdir() if p.name.isdigit()) == ["0", "1", "2"]
    assert "Qm9@example.org" in doc_terms(store, 2)  # docid 2 lives in shard 2 % 3


def test_undated_draft_copies_share_one_synthetic_id(tmp_path):
    """With no parsable date, the synthetic id uses time 0 (as lei), so later copies still match."""
    store = tmp_path / "store"
    draft = b"From: Me <me@example.com>\nSubject: undated\n\nno date, no id\n"
    (tmp_path / "a.eml").write_bytes(draft)
    (tmp_path / "b.eml").write_bytes(b"X-Mailer: other\n" + draft)
    imp(store, str(tmp_path / "a.eml"))
    assert imp(store, str(tmp_path / "b.eml"))["attached"] == 1
    ((mid,),) = sql(store, "SELECT mid FROM msgid")
    assert mid.startswith("19700101000000.") and mid.endswith("@z")


def test_fast_import_is_replaced_between_batches_and_gc_runs_last(sample_corpus, tmp_path, monkeypatch):
    """A long import hands its epoch to a new git fast-import after RESTART_COMMITS (its object
    table would grow with every message); the history stays one line with every commit, and the
    epoch's `git gc --auto` runs once the writer's other helpers are closed."""
    import subprocess

    from lei_store.sources import maildir
    from lei_store.write import epochs
    from lei_store.write.store import Store

    monkeypatch.setattr(epochs, "RESTART_COMMITS", 7)
    started: list[Path] = []
    real = epochs.FastImport.__init__

    def counting(self, repo, branch):
        started.append(repo)
        real(self, repo, branch)

    monkeypatch.setattr(epochs.FastImport, "__init__", counting)
    md = sample_corpus / "maildir"
    store = Store.create(tmp_path / "store")
    (store.root / "local" / "0.git").mkdir(parents=True)
    epochs.init_bare(store.root / "local" / "0.git", epochs.default_branch(), epoch=True)
    for key, value in (("gc.autoPackLimit", "2"), ("fastimport.unpackLimit", "1")):  # a pack per checkpoint
        subprocess.run(["git", "config", "-f", str(store.root / "local" / "0.git" / "config"), key, value], check=True)
    with store.writer(jobs=1, batch_size=5) as w:
        w.add_messages(maildir.read_items(md, None, maildir.list_entries(md)))
        stored = w.stats.added + w.stats.attached
    assert stored > 20 and len(started) >= stored // 10  # a new fast-import at least every 2 batches
    assert commits(store.root) == stored
    epoch = store.root / "local" / "0.git"
    merges = subprocess.run(["git", f"--git-dir={epoch}", "rev-list", "--merges", "HEAD"], capture_output=True,
                            text=True, check=True).stdout
    assert merges == ""
    assert epochs.damage(epoch) is None
    packs = list((epoch / "objects" / "pack").glob("*.pack"))
    assert len(packs) <= 2  # gc --auto consolidated the one pack per checkpoint


def test_a_batch_ends_at_its_document_bytes(sample_corpus, tmp_path, monkeypatch):
    """Large documents end a batch before its message count does (Xapian holds a batch in memory)."""
    from lei_store.sources import maildir
    from lei_store.write import writer as writer_mod
    from lei_store.write.store import Store

    flushes = []
    real = writer_mod.Writer.flush
    monkeypatch.setattr(writer_mod.Writer, "flush", lambda self: (flushes.append(self._batch_doc_bytes), real(self)))
    monkeypatch.setattr(writer_mod, "BATCH_DOC_BYTES", 20_000)
    md = sample_corpus / "maildir"
    store = Store.create(tmp_path / "store")
    with store.writer(jobs=1) as w:
        w.add_messages(maildir.read_items(md, None, maildir.list_entries(md)))
        added = w.stats.added
    full = [size for size in flushes[:-1] if size]  # not the writer's first (feed set-up) and last flushes
    assert added > 20 and len(full) >= 3
    assert all(20_000 <= size < 20_000 + 100_000 for size in full)  # each ended by its bytes, not by 1,000 messages
    assert commits(store.root) == added + w.stats.attached
