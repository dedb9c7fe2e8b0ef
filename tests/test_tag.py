"""tag, rm and the keyword/label journal: changes visible at once, shown on Maildir copies, durable."""

from __future__ import annotations

import json
import random
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, run_cli
from storecheck import blob_oid, commits, git_blob, volatile_by_blob, wipe_volatile


def imp(store: Path, *args: str) -> dict:
    return json.loads(run_cli("import", "--store", str(store), "--json", "-q", *args).stdout)


def q(store: Path, *query: str) -> list[dict]:
    return [json.loads(line) for line in
            run_cli("q", "--store", str(store), "-f", "jsonl", "--dedupe=none", *query).stdout.splitlines()]


def tag(store: Path, *args: str, check: bool = True) -> dict:
    r = run_cli("tag", "--store", str(store), "--json", "--quiet", *args, check=check)
    return json.loads(r.stdout) if r.returncode == 0 else {"exit": r.returncode, "err": r.stderr.decode()}


@pytest.fixture
def imported(sample_corpus, tmp_path):
    maildir = Path(shutil.copytree(sample_corpus / "maildir", tmp_path / "md"))
    store = tmp_path / "store"
    imp(store, str(maildir))
    return store, maildir


def test_tag_by_query_is_visible_at_once(imported):
    store, _ = imported
    before = {r["blob"] for r in q(store, "s:btrfs")}
    assert before
    stats = tag(store, "-q", "s:btrfs", "+L:work", "+kw:flagged", "+kw:junk")
    assert stats["matched"] == len(before) and stats["unimported"] == 0
    assert {r["blob"] for r in q(store, "L:work")} == before
    assert {r["blob"] for r in q(store, "L:work", "kw:junk")} == before
    assert run_cli("ls-label", "--store", str(store)).stdout.decode().split() == ["work"]
    again = tag(store, "-q", "s:btrfs", "+L:work")
    assert again["changed"] == 0  # nothing new to set
    removed = tag(store, "-q", "L:work", "-L:work", "-kw:junk")
    assert removed["changed"] == len(before)
    assert q(store, "L:work") == [] and q(store, "kw:junk") == []


def test_tag_by_file_exports_keywords_to_maildir_copies(imported):
    store, maildir = imported
    unflagged = next(p for p in (maildir / "cur").iterdir() if p.name.endswith(":2,S"))
    oid = blob_oid(unflagged.read_bytes())
    stats = tag(store, str(unflagged), "+kw:flagged", "+L:x")
    assert stats == {"matched": 1, "changed": 1, "unimported": 0, "exported": 1}
    renamed = unflagged.with_name(unflagged.name[:-1] + "FS")
    assert renamed.exists() and not unflagged.exists()  # renamed, same bytes
    assert blob_oid(renamed.read_bytes()) == oid
    names = [bytes(n).decode() for (n,) in sqlite3.connect(store / "mail_sync.sqlite3").execute(
        "SELECT name FROM blob2name WHERE oidbin = ?", (bytes.fromhex(oid),))]
    assert renamed.name in names and unflagged.name not in names
    (hit,) = [r for r in q(store, "L:x")]
    assert hit["kw"] == ["flagged", "seen"]
    tag(store, str(renamed), "-kw:seen")
    assert renamed.with_name(renamed.name[:-2] + "F").exists()  # the S flag went away
    # a re-import sees nothing changed: the rows followed the renames
    assert imp(store, str(maildir))["messages"] == 0


def test_tag_counts_unimported_messages(imported, tmp_path):
    store, _ = imported
    stranger = tmp_path / "new.eml"
    stranger.write_bytes(b"From: x@example.org\nSubject: never imported\nMessage-ID: <zz@x>\n\nhi\n")
    r = tag(store, str(stranger), "+kw:seen", check=False)
    assert r["exit"] == 1 and r["err"] == "lei-store: none of the 1 given messages is in the store\n"
    r = tag(store, str(stranger), check=False)
    assert r["exit"] != 0 and "nothing to change" in r["err"]
    r = tag(store, "+kw:bogus", "-q", "z:1..", check=False)
    assert r["exit"] != 0 and "unknown keyword" in r["err"] and len(r["err"].splitlines()) == 1


def test_tag_from_stdin_mbox(imported, sample_corpus):
    store, _ = imported
    mbox = (sample_corpus / "sample.mboxrd").read_bytes()
    first = mbox[:mbox.index(b"\nFrom mboxrd@z", 10) + 1]
    r = run_cli("tag", "--store", str(store), "--json", "--stdin", "-F", "mboxrd", "+L:from-stdin", input=first)
    assert json.loads(r.stdout)["changed"] == 1
    assert len(q(store, "L:from-stdin")) == 1


def test_rm_unindexes_but_git_keeps_the_blob(imported):
    store, maildir = imported
    (victim,) = q(store, "-n", "1", "s:scrub")[:1]
    n_commits = commits(store)
    r = run_cli("rm", "--store", str(store), "--json", "--quiet", "-q", f"mid:{victim['m']}")
    assert json.loads(r.stdout)["changed"] >= 1
    assert q(store, f"mid:{victim['m']}") == []
    assert commits(store) > n_commits  # the `d` commits
    git = ["git", f"--git-dir={store / 'local' / '0.git'}"]
    assert subprocess.run(git + ["log", "-1", "--format=%s"], capture_output=True, text=True).stdout == "rm\n"
    tree = subprocess.run(git + ["ls-tree", "HEAD"], capture_output=True, text=True).stdout.split()
    assert tree[3:] == ["d"] and tree[2] == victim["blob"]  # §2.4: the same blob, under d only
    assert git_blob(store, victim["blob"])  # still in git
    rows = sqlite3.connect(store / "mail_sync.sqlite3").execute(
        "SELECT COUNT(*) FROM blob2name WHERE oidbin = ?", (bytes.fromhex(victim["blob"]),)).fetchone()[0]
    assert rows >= 1  # lei rm leaves mail_sync alone
    (entry,) = sqlite3.connect(store / "journal.sqlite3").execute(
        "SELECT op FROM volatile WHERE oidbin = ? ORDER BY seq DESC LIMIT 1", (bytes.fromhex(victim["blob"]),))
    assert entry == ("rm",)


def test_journal_replay_restores_thousands_of_keywords_and_labels(tmp_path):
    corpus = tmp_path / "corpus"
    subprocess.run([sys.executable, str(ROOT / "tools" / "make_sample_corpus.py"), str(corpus),
                    "--messages", "3000", "--seed", "7"], check=True, capture_output=True)
    store = tmp_path / "store"
    imp(store, str(corpus / "maildir"))  # keywords from Maildir flags
    rng = random.Random(3)
    for label, query in (("work", "s:btrfs"), ("later", "rt:2024-03-20.."), ("x.y@z", "f:carol")):
        tag(store, "-q", query, f"+L:{label}", rng.choice(["+kw:junk", "-kw:seen", "+kw:forwarded"]))
    tag(store, "-q", "L:later AND f:alice", "-L:later")
    want = volatile_by_blob(store)
    tagged = [v for v in want.values() if v[0] or v[1]]
    assert len(want) > 2900 and len(tagged) > 2000 and sum(bool(v[1]) for v in tagged) > 1000
    assert wipe_volatile(store) == len(tagged)
    assert all(not kw and not labels for kw, labels in volatile_by_blob(store).values())

    from lei_store.ops.reindex import replay_journal
    from lei_store.write.store import Store

    with Store.open(store).writer(journaling=False) as writer:
        replay_journal(writer)
    assert volatile_by_blob(store) == want
    assert run_cli("ls-label", "--store", str(store)).stdout.decode().split() == ["later", "work", "x.y@z"]


def test_labels_never_touch_maildir_files(imported):
    """Labels and keywords without a Maildir letter (junk) change no flag: files stay where they are,
    new/ included (moving one to cur/ would hide it as "new" from the user's mail reader)."""
    store, maildir = imported
    news = lambda: sorted(p.name for p in (maildir / "new").iterdir())
    before = news()
    assert before and all(":" not in n for n in before)
    run_cli("export-kw", "--store", str(store), str(maildir))
    moved = set(before) - set(news())  # only files whose flags change leave new/ (copies of flagged mail)
    assert len(moved) < len(before) and all(list((maildir / "cur").glob(f"{n}:2,?*")) for n in moved)
    fresh = [maildir / "new" / n for n in news()[:3]]
    before = news()
    stats = tag(store, *map(str, fresh), "+L:x", "+kw:junk")
    assert stats["changed"] == len(fresh) and stats["exported"] == 0
    assert news() == before
    assert {r["blob"] for r in q(store, "L:x", "kw:junk")} == {blob_oid(p.read_bytes()) for p in fresh}
    stats = tag(store, *map(str, fresh), "+kw:flagged")
    assert stats["exported"] == len(fresh)  # a flag changes: new/X -> cur/X:2,F, as before
    assert all((maildir / "cur" / f"{p.name}:2,F").exists() and not p.exists() for p in fresh)


def test_a_label_leaves_copies_whose_flags_differ_from_the_keywords_alone(tmp_path):
    """Two copies of one message with other flags (R and S, S): the store keeps one keyword set,
    and a label-only tag must not rewrite the other copy's flags to it (R would be lost)."""
    maildir = tmp_path / "md"
    for sub in ("cur", "new", "tmp"):
        (maildir / sub).mkdir(parents=True)
    mail = b"From: a@example.org\nMessage-ID: <twice@example.org>\nSubject: twice\nDate: Mon, 4 Mar 2024 13:07:00 +0000\n\nbody\n"
    (maildir / "cur" / "1.a.host:2,RS").write_bytes(mail)
    (maildir / "cur" / "2.b.host:2,S").write_bytes(mail)
    store = tmp_path / "store"
    imp(store, str(maildir))
    before = sorted(p.name for p in (maildir / "cur").iterdir())
    assert tag(store, "-q", "mid:twice@example.org", "+L:x")["exported"] == 0
    assert sorted(p.name for p in (maildir / "cur").iterdir()) == before
    assert tag(store, "-q", "mid:twice@example.org", "+kw:flagged")["exported"] == 2  # a keyword: every copy


def test_a_query_given_with_q_is_read_as_one_query_text(imported):
    """`tag -q 'A AND NOT B'` selects what `q A AND NOT B` finds (it was quoted whole, as lei q
    quotes one argument with spaces in it, and matched nothing); its dates are read by git too."""
    store, _ = imported
    for text in ("s:scrub AND NOT kw:seen", "kw:seen NOT s:scrub", "s:scrub AND d:2024-03-01.."):
        want = {r["blob"] for r in q(store, *text.split())}
        assert want and tag(store, "-q", text, "+L:picked")["matched"] == len(want), text
        assert {r["blob"] for r in q(store, "L:picked")} == want, text
        tag(store, "-q", "L:picked", "-L:picked")
