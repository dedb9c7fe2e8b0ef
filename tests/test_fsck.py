"""fsck: a store written by lei-store or by real lei is clean; each kind of damage is named.

One store is built per module (import, tag, rm through the real CLI, 3 shards)
and copied for every damage test, which breaks one layer with plain sqlite3,
xapian or git and checks which problem kinds fsck reports.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import zlib
from pathlib import Path

import msgspec
import pytest
import xapian
from conftest import run_cli

from lei_store.disk.journal import Journal
from lei_store.ops.fsck import FsckReport, check, format_report

# What a healthy store may still show: lei's own leftovers, not damage.
BENIGN = {"stale thread id", "sync row for unindexed blob"}


def errors(report: FsckReport) -> set[str]:
    return {p.kind for p in report.problems if p.severity == "error"}


def warnings(report: FsckReport) -> set[str]:
    return {p.kind for p in report.problems if p.severity == "warning"}


def over_sql(store: Path, query: str, args=()) -> list[tuple]:
    db = sqlite3.connect(store / "ei15" / "over.sqlite3", isolation_level=None)
    try:
        return db.execute(query, args).fetchall()
    finally:
        db.close()


def git(store: Path, *args: str, input: bytes | None = None) -> str:
    env = dict(os.environ, GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@example.test",
               GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@example.test")
    r = subprocess.run(["git", f"--git-dir={store / 'local' / '0.git'}", *args], input=input,
                       capture_output=True, check=True, env=env)
    return r.stdout.decode().strip()


def commit_tree_entry(store: Path, name: str, blob: str) -> None:
    """Append a commit whose tree is {name: blob} to epoch 0's branch."""
    tree = git(store, "mktree", input=f"100644 blob {blob}\t{name}\n".encode())
    branch = git(store, "symbolic-ref", "HEAD")
    commit = git(store, "commit-tree", tree, "-p", branch, "-m", "test")
    git(store, "update-ref", branch, commit)


def shard(store: Path, num: int, nshards: int = 3) -> xapian.WritableDatabase:
    return xapian.WritableDatabase(str(store / "ei15" / str(num % nshards)), xapian.DB_OPEN)


def real_nums(store: Path) -> list[int]:
    return [n for (n,) in over_sql(store, "SELECT num FROM over WHERE num > 0 ORDER BY num")]


def single_blob_num(store: Path) -> tuple[int, bytes]:
    return over_sql(store, "SELECT docid, oidbin FROM xref3 GROUP BY docid HAVING COUNT(*) = 1 "
                           "ORDER BY docid LIMIT 1")[0]


@pytest.fixture(scope="module")
def base(sample_corpus, tmp_path_factory) -> Path:
    """A store after import, tag and rm (of a message stored twice), written by the CLI with 3 shards."""
    tmp = tmp_path_factory.mktemp("fsck")
    maildir = shutil.copytree(sample_corpus / "maildir", tmp / "md")
    (tmp / "home").mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("XDG_")}
    env.update(HOME=str(tmp / "home"), NPROC="4", GIT_COMMITTER_NAME="lei test",
               GIT_COMMITTER_EMAIL="lei@example.test")
    store = tmp / "store"
    run_cli("import", "--store", str(store), "-q", str(maildir), env=env)
    run_cli("tag", "--store", str(store), "--quiet", "-q", "s:btrfs", "+L:work", "+kw:flagged", env=env)
    [(ddd,)] = over_sql(store, "SELECT ddd FROM over WHERE num = (SELECT docid FROM xref3 GROUP BY docid "
                               "HAVING COUNT(*) > 1 ORDER BY docid LIMIT 1)")
    mid = zlib.decompress(ddd).decode().split("\n")[6]
    run_cli("rm", "--store", str(store), "--quiet", "-q", f"mid:{mid}", env=env)
    return store


@pytest.fixture
def store(base, tmp_path) -> Path:
    return Path(shutil.copytree(base, tmp_path / "store"))


def test_fresh_store_is_clean(base):
    report = check(base)
    text = format_report(report)
    assert report.ok and not errors(report), text
    assert warnings(report) <= BENIGN, text
    assert "sync row for unindexed blob" in warnings(report)  # rm keeps mail_sync rows, as lei does
    assert report.counts["shards"] == 3 and report.counts["messages"] > 200
    assert report.counts["live_blobs"] == report.counts["xref3_rows"]
    assert report.counts["commits"] == report.counts["live_blobs"] + 4  # the removed message's 2 m and 2 d commits
    assert text.splitlines()[-1].startswith("ok: 0 errors")
    assert msgspec.json.decode(msgspec.json.encode(report), type=FsckReport) == report


def damage_over_row(store):
    num, _ = single_blob_num(store)
    over_sql(store, "DELETE FROM over WHERE num = ?", (num,))


def damage_xapian_doc(store):
    num = real_nums(store)[5]
    db = shard(store, num)
    db.delete_document(num)
    db.commit()


def damage_orphan_doc(store):
    num = real_nums(store)[-1] + 3
    db = shard(store, num)
    doc = xapian.Document()
    doc.add_boolean_term("Qorphan@example.test")
    db.replace_document(num, doc)
    db.commit()


def damage_misplaced_doc(store):
    num = real_nums(store)[7]
    doc = shard(store, num).get_document(num)
    db = shard(store, num + 1)
    db.replace_document(num, doc)
    db.commit()


def damage_thread_value(store):
    [(other,)] = over_sql(store, "SELECT tid FROM over WHERE num = ?", (real_nums(store)[0],))
    [(num,)] = over_sql(store, "SELECT num FROM over WHERE num > 0 AND tid != ? LIMIT 1", (other,))
    w = shard(store, num)
    doc = w.get_document(num)
    doc.add_value(5, xapian.sortable_serialise(other))
    w.replace_document(num, doc)
    w.commit()


def damage_xref3_row(store):
    num, oid = single_blob_num(store)
    over_sql(store, "DELETE FROM xref3 WHERE docid = ? AND oidbin = ?", (num, oid))


def damage_counter(store):
    over_sql(store, "UPDATE counter SET val = 1 WHERE key = 'eidx_docid'")


def damage_over_pages(store):
    with open(store / "ei15" / "over.sqlite3", "r+b") as fh:
        fh.seek(4096 * 2)
        fh.write(b"\xff" * 4096 * 4)


def damage_alternates(store):
    (store / "ALL.git" / "objects" / "info" / "alternates").write_text("../../local/9.git/objects\n")


def damage_journal_keyword(store):
    """Drop a K term the journal says the message has (a replay would put it back)."""
    j = Journal(store / "journal.sqlite3", readonly=True)
    entries = [e for e in j.latest() if e.op == "set" and "flagged" in e.kw]
    j.db.close()
    num = next(rows[0][0] for e in entries
               if (rows := over_sql(store, "SELECT docid FROM xref3 WHERE oidbin = ?", (e.oidbin,))))
    w = shard(store, num)
    doc = w.get_document(num)
    doc.remove_term("Kflagged")
    w.replace_document(num, doc)
    w.commit()


def damage_tree_entry(store):
    blob = git(store, "hash-object", "-w", "--stdin", input=b"not a message\n")
    commit_tree_entry(store, "x", blob)


def damage_removal_of_indexed(store):
    _num, oid = single_blob_num(store)
    commit_tree_entry(store, "d", oid.hex())


def damage_ref(store):
    ref = git(store, "symbolic-ref", "HEAD")
    (store / "local" / "0.git" / ref).write_text("1234567890" * 4 + "\n")


def damage_epoch_objects(store):
    shutil.rmtree(store / "local" / "0.git" / "objects")


def damage_sync_text(store):
    db = sqlite3.connect(store / "mail_sync.sqlite3", isolation_level=None)
    db.execute("UPDATE blob2name SET name = CAST(name AS TEXT) WHERE rowid = (SELECT MIN(rowid) FROM blob2name)")
    db.close()


@pytest.mark.parametrize("damage, kinds", [
    (damage_over_row, {"orphan document", "dangling xref3", "unindexed blob"}),
    (damage_xapian_doc, {"missing document"}),
    (damage_orphan_doc, {"orphan document"}),
    (damage_misplaced_doc, {"misplaced document"}),
    (damage_thread_value, {"thread id mismatch"}),
    (damage_xref3_row, {"over blob not in xref3", "unindexed blob"}),
    (damage_counter, {"counter behind"}),
    (damage_over_pages, {"sqlite corrupt"}),
    (damage_alternates, {"bad alternates"}),
    (damage_journal_keyword, {"journal mismatch"}),
    (damage_tree_entry, {"bad tree"}),
    (damage_removal_of_indexed, {"removed blob still indexed"}),
    (damage_ref, {"bad ref", "git fsck"}),
    (damage_epoch_objects, {"bad epoch"}),
    (damage_sync_text, {"sync value not blob"}),
], ids=lambda v: v.__name__[len("damage_"):] if callable(v) else "")
def test_damage_is_named(store, damage, kinds):
    damage(store)
    report = check(store)
    assert not report.ok
    assert errors(report) == kinds, format_report(report)


def test_vanished_maildir_file_is_a_warning(store, tmp_path):
    db = sqlite3.connect(store / "mail_sync.sqlite3", isolation_level=None)
    (loc,) = db.execute("SELECT loc FROM folders").fetchone()
    moved = Path(shutil.copytree(bytes(loc).decode()[len("maildir:"):], tmp_path / "moved"))
    db.execute("UPDATE folders SET loc = ?", (b"maildir:" + str(moved).encode(),))
    db.close()
    next((moved / "cur").iterdir()).unlink()
    report = check(store)
    assert report.ok, format_report(report)
    assert "sync file missing" in warnings(report)


def test_lei_written_store_is_clean(lei, sample_corpus, tmp_path):
    maildir = Path(shutil.copytree(sample_corpus / "maildir", tmp_path / "md"))
    lei("import", str(maildir))
    files = sorted((maildir / "cur").iterdir())
    lei("tag", str(files[10]), "+L:work", "+kw:flagged")
    lei("rm", str(files[20]))
    report = check(lei.store)
    assert report.ok and not errors(report), format_report(report)
    # lei does not write our journal, so its Maildir flags and tags are "not journaled"
    assert warnings(report) <= BENIGN | {"keywords not journaled"}, format_report(report)
    assert "keywords not journaled" in warnings(report)
