"""Saved searches: `q -o` saves, `up` refreshes (new mail out, the reader's flags in, the store's
flags out), ls-search, edit-search, forget-search; with real lei taking turns on the same search."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import msgspec
import pytest
from conftest import Lei, run_cli

from lei_store.disk import savedsearch
from lei_store.mail.keywords import VolatileChange
from lei_store.ops.up import UpStats
from lei_store.write.store import Store

NEW = ("From: Ann <ann@example.com>\nTo: list@example.com\nSubject: Scrub speed news {n}\n"
       "Message-ID: <scrub-news-{n}@example.com>\nDate: Wed, 02 Dec 2026 10:{n:02d}:00 +0000\n\nfresh {n}\n")


def files(out: Path) -> dict[str, str]:
    """blob -> subdir/name of every message file in a Maildir output."""
    found = {}
    for sub in ("cur", "new"):
        for name in os.listdir(out / sub):
            found[name[:40]] = f"{sub}/{name}"
    return found


def keywords(store: Path, env=None) -> dict[str, list[str]]:
    out = run_cli("q", "--store", str(store), "-f", "jsonl", "--dedupe=none", "z:1..", env=env).stdout.decode()
    return {d["blob"]: d.get("kw") or [] for d in map(json.loads, out.splitlines())}


def deliver(tmp_path: Path, store: Path, n: int, env=None) -> None:
    eml = tmp_path / f"new{n}.eml"
    eml.write_text(NEW.format(n=n))
    run_cli("import", "--store", str(store), "-q", str(eml), env=env)


def up(*args: str, env=None, check: bool = True):
    r = run_cli("up", "--json", *args, env=env, check=check)
    if r.returncode:
        return r
    msgspec.json.decode(r.stdout, type=list[UpStats])  # what schemas/up-stats.schema.json says
    return json.loads(r.stdout)


@pytest.fixture
def saved(sample_corpus, tmp_path):
    """A store of the sample corpus and a search saved by `q -o` into a Maildir."""
    store = tmp_path / "store"
    run_cli("import", "--store", str(store), "-q", str(shutil.copytree(sample_corpus / "maildir", tmp_path / "md")))
    out = tmp_path / "out"
    run_cli("q", "--store", str(store), "-o", str(out), "s:scrub")
    return store, out


def test_q_o_saves_the_search_as_lei_names_it(saved):
    store, out = saved
    d = savedsearch.dir_for(out)
    assert d.name.startswith("out-") and (d / "lei.saved-search").is_file()
    s = savedsearch.load(d)
    assert s.q == ["s:scrub"] and s.output == f"maildir:{out}"
    assert s.maxuid[str(store)] > 0 and str(store) in s.modseq
    assert savedsearch.written_blobs(d) == {bytes.fromhex(b) for b in files(out)}
    assert run_cli("ls-search").stdout.decode() == f"{out}\n"
    rec = json.loads(run_cli("ls-search", "-f", "json").stdout)
    assert rec == [{"external": "1", "local": "1", "output": f"maildir:{out}", "q": ["s:scrub"], "remote": "1"}]
    run_cli("q", "--store", str(store), "--no-save", "-o", str(out.parent / "unsaved"), "s:scrub")
    assert len(savedsearch.all_searches()) == 1


def test_up_writes_only_what_arrived_since(saved, tmp_path):
    store, out = saved
    before = files(out)
    assert up(str(out))[0]["written"] == 0
    deliver(tmp_path, store, 1)
    deliver(tmp_path, store, 2)
    (res,) = up(str(out))
    assert res["written"] == 2 and res["matches"] == 2 and not res["whole"]
    now = files(out)
    fresh = set(now) - set(before)
    assert len(fresh) == 2 and all(now[b].startswith("new/") for b in fresh)  # unseen: new mail for the reader
    assert up(str(out))[0]["written"] == 0


def test_the_readers_flags_come_in_and_deleted_mail_stays_deleted(saved, tmp_path):
    """The reader's side as mutt does it: renames in cur/ (S, RS, T) and an unlink; then `up`."""
    store, out = saved
    names = sorted(files(out).items())
    (seen, _), (replied, _), (trashed, _), (deleted, _) = names[:4]

    def rename(blob: str, flags: str) -> None:
        old = out / files(out)[blob]
        os.rename(old, out / "cur" / (old.name.split(":2,")[0] + ":2," + flags))

    run_cli("tag", "--store", str(store), "-q", "s:scrub", "-kw:seen", "--quiet")
    rename(seen, "S")
    rename(replied, "RS")
    rename(trashed, "ST")
    os.unlink(out / files(out)[deleted])
    (res,) = up(str(out))
    # a trashed (T) file is as good as deleted, as lei takes it: forgotten, its flags not taken
    assert res["from_reader"] == 2 and res["gone"] == 2 and res["written"] == 0
    kw = keywords(store)
    assert kw[seen] == ["seen"] and kw[replied] == ["answered", "seen"] and kw[trashed] == []
    deliver(tmp_path, store, 3)  # a refresh with new mail does not bring the deleted one back
    run_cli("tag", "--store", str(store), "-q", "s:scrub", "+L:again", "--quiet")
    assert up(str(out))[0]["written"] == 1
    assert deleted not in files(out) and files(out)[trashed].endswith(":2,ST")
    edited = savedsearch.load(savedsearch.dir_for(out))
    edited.q = ["s:scrub", "OR", "s:nothing-like-this"]  # an edited search runs whole: still not back
    savedsearch.write(edited)
    (res,) = up(str(out))
    assert res["whole"] and res["written"] == 0 and deleted not in files(out)


def test_keywords_changed_in_the_store_are_shown_on_the_output(saved):
    """A change made by another client (not `tag`, which renames synced files itself) goes out
    on `up`, found through the change feed."""
    store, out = saved
    blob = sorted(files(out))[0]
    with Store.open(store).writer() as w:
        nums = w.over.docids_of_blob(bytes.fromhex(blob))
        w.change_volatile(nums, VolatileChange(add_kw=frozenset({"flagged"})))
    assert "F" not in files(out)[blob].split(":2,")[1]
    (res,) = up(str(out))
    assert res["to_reader"] == 1
    assert "F" in files(out)[blob].split(":2,")[1]
    assert up(str(out))[0]["to_reader"] == 0


def test_up_all_and_mbox_outputs(saved, tmp_path):
    store, out = saved
    mbox = tmp_path / "scrub.mbox"
    run_cli("q", "--store", str(store), "-o", f"mboxrd:{mbox}", "s:scrub")
    first = mbox.read_bytes().count(b"\nFrom ")
    deliver(tmp_path, store, 4)
    res = up("--store", str(store), "--all")
    assert sorted(r["written"] for r in res) == [1, 1]
    assert mbox.read_bytes().count(b"\nFrom ") == first + 1


def test_forget_search_keeps_the_output(saved):
    store, out = saved
    kept = files(out)
    run_cli("forget-search", "--store", str(store), str(out))
    assert files(out) == kept and not savedsearch.dir_for(out).exists()
    assert f"maildir:{out}" not in run_cli("ls-mail-sync", "--store", str(store)).stdout.decode()
    r = up(str(out), check=False)
    assert r.returncode == 1 and b"no saved search" in r.stderr


def test_edit_search_runs_git_config_edit(saved, tmp_path):
    store, out = saved
    editor = tmp_path / "editor.sh"
    editor.write_text("#!/bin/sh\nsed -i 's/q = s:scrub/q = s:quota/' \"$1\"\n")
    editor.chmod(0o755)
    run_cli("edit-search", str(out), env={**os.environ, "GIT_EDITOR": str(editor)})
    assert savedsearch.load(savedsearch.dir_for(out)).q == ["s:quota"]
    (res,) = up(str(out))
    assert res["whole"] and res["written"] > 0


@pytest.mark.parametrize("damage", ["vanished", "file", "query", "garbage"])
def test_a_broken_saved_search_is_one_line_and_touches_nothing(saved, damage):
    store, out = saved
    d = savedsearch.dir_for(out)
    if damage == "vanished":
        shutil.rmtree(out)
    elif damage == "file":
        shutil.rmtree(out)
        out.write_text("not a Maildir\n")
    elif damage == "query":
        s = savedsearch.load(d)
        s.q = ["s:scrub", "AND", "("]
        savedsearch.write(s)
    else:
        (d / "lei.saved-search").write_bytes(b"[lei\n\x00\xff garbage")
    config = (d / "lei.saved-search").read_bytes()
    kept = out.read_bytes() if out.is_file() else files(out) if out.exists() else None
    r = up(str(out), check=False)
    assert r.returncode == 1, r.stderr
    assert len(r.stderr.decode().strip().splitlines()) == 1 and b"Traceback" not in r.stderr
    assert (d / "lei.saved-search").read_bytes() == config
    assert kept == (out.read_bytes() if out.is_file() else files(out) if out.exists() else None)


def test_a_second_up_on_the_same_output_waits_then_fails_clearly(saved, tmp_path):
    store, out = saved
    deliver(tmp_path, store, 5)
    with open(savedsearch.dir_for(out) / "lei.saved-search.flock", "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        r = up(str(out), "--lock-timeout", "1", check=False)
    assert r.returncode == 75 and b"saved search" in r.stderr
    assert len(files(out)) == len(files(out))  # nothing half-written: the next up does it whole
    assert up(str(out))[0]["written"] == 1


def test_lei_and_lei_store_take_turns_on_one_saved_search(sample_corpus, tmp_path, lei: Lei):
    """lei saves a search on our store, we refresh it, lei refreshes after us (nothing twice), and
    lei lists the search we saved."""
    store = tmp_path / "store"
    env = {**lei.env, "LEI_STORE_DAEMON": "0"}
    run_cli("import", "--store", str(store), "-q", str(shutil.copytree(sample_corpus / "maildir", tmp_path / "md")),
            env=env)
    lei("init", str(store))
    theirs, ours = tmp_path / "theirs", tmp_path / "ours"
    lei("q", "-o", str(theirs), "s:scrub")
    first = files(theirs)
    deliver(tmp_path, store, 6, env=env)
    (res,) = up(str(theirs), env=env)
    assert res["written"] == 1 and res["whole"]  # a search we never ran runs whole once
    lei("up", str(theirs))
    assert len(files(theirs)) == len(first) + 1  # lei sees what we wrote in the search's over.sqlite3
    deliver(tmp_path, store, 7, env=env)
    lei("up", str(theirs))
    (res,) = up(str(theirs), env=env)
    assert res["written"] == 0 and not res["whole"]  # we see what lei wrote; lei's maxuid is our mark
    assert len(files(theirs)) == len(first) + 2
    run_cli("q", "-o", str(ours), "s:scrub", env=env)
    assert lei("ls-search").stdout.decode().split() == sorted([str(theirs), str(ours)])
    deliver(tmp_path, store, 8, env=env)
    lei("up", str(ours))
    assert len(files(ours)) == len(first) + 3
    assert up(str(ours), env=env)[0]["written"] == 0


def test_flags_from_the_reader_are_seen_by_real_lei(saved, tmp_path, lei: Lei):
    """mutt's side (renames in cur/, a trashed file, an unlink), then `up`: the keywords as
    lei-store q and as real lei q see them; then lei's `rm` of the output's messages."""
    store, out = saved
    lei("init", str(store))
    run_cli("tag", "--store", str(store), "-q", "s:scrub", "-kw:seen", "--quiet")
    (a, _), (b, _), (c, _), (d, _) = sorted(files(out).items())[:4]
    d_before = keywords(store)[d]
    for blob, flags in ((a, "S"), (b, "RS"), (c, "FRS"), (d, "T")):
        old = out / files(out)[blob]
        os.rename(old, out / "cur" / (old.name.split(":2,")[0] + ":2," + flags))
    up(str(out))
    want = {a: ["seen"], b: ["answered", "seen"], c: ["answered", "flagged", "seen"], d: d_before}  # T: trashed
    assert {x: keywords(store)[x] for x in want} == want
    assert lei.blobs("kw:seen", "AND", "s:scrub") == {a, b, c}
    assert lei.blobs("kw:answered") & {a, b, c} == {b, c} and lei.blobs("kw:flagged") & {a, b, c} == {c}
    run_cli("rm", "--store", str(store), str(out))  # lei rm LOCATION: unindex what the output holds
    assert not lei.blobs("s:scrub") & (set(files(out)) - {d})  # a trashed file is not the output's
    assert up(str(out))[0]["written"] == 0
    assert not lei.blobs("s:scrub") & (set(files(out)) - {d})  # up takes flags only: nothing comes back


def test_q_o_again_takes_the_readers_flags_first(saved):
    """As lei's --import-before: flags set in the output survive a re-run that replaces it."""
    store, out = saved
    blob = sorted(files(out))[0]
    old = out / files(out)[blob]
    os.rename(old, out / "cur" / (old.name.split(":2,")[0] + ":2,FS"))
    run_cli("q", "--store", str(store), "-o", str(out), "s:scrub")
    assert keywords(store)[blob] == ["flagged", "seen"] and files(out)[blob].endswith(":2,FS")
    old = out / files(out)[blob]
    os.rename(old, out / "cur" / (old.name.split(":2,")[0] + ":2,RS"))
    before = len(files(out))
    run_cli("q", "--store", str(store), "-o", str(out), "--augment", "s:scrub")
    assert len(os.listdir(out / "cur")) + len(os.listdir(out / "new")) == before  # no second copy
    assert keywords(store)[blob] == ["answered", "seen"]


def test_a_stdin_query_keeps_its_relative_dates(saved, tmp_path):
    store, _out = saved
    out = tmp_path / "recent"
    run_cli("q", "--store", str(store), "--stdin", "-o", str(out), input=b"s:scrub AND rt:2.days.ago..\n")
    (q,) = savedsearch.load(savedsearch.dir_for(out)).q
    assert q == "s:scrub AND rt:2.days.ago..\n"  # read again on every up, as lei does
    deliver(tmp_path, store, 9)  # dated 2026-12-02: received now, so within the window
    assert up(str(out))[0]["written"] == 1


def test_paths_lei_cannot_name_and_symlinked_working_directories(saved, tmp_path):
    store, _out = saved
    bad = os.fsdecode(bytes(tmp_path) + b"/bad\xffname")
    r = run_cli("q", "--store", str(store), "-o", bad, "s:scrub", check=False)
    assert r.returncode == 1 and len(r.stderr.splitlines()) == 1 and b"--no-save" in r.stderr
    assert not os.path.exists(bad) and len(savedsearch.all_searches()) == 1
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "link").symlink_to(real)
    env = {**os.environ, "PWD": str(tmp_path / "link")}  # a shell cd'd through the link
    r = subprocess.run([sys.executable, "-m", "lei_store", "q", "--store", str(store), "-o", "viasym", "s:scrub"],
                       cwd=tmp_path / "link", env=env, capture_output=True)
    assert r.returncode == 0, r.stderr
    assert (savedsearch.dir_for(tmp_path / "link" / "viasym") / "lei.saved-search").exists()  # as lei names it
    r = subprocess.run([sys.executable, "-m", "lei_store", "up", "viasym"], cwd=tmp_path / "link", env=env,
                       capture_output=True)
    assert r.returncode == 0, r.stderr


def test_up_all_reports_a_broken_search_and_refreshes_the_others(saved, tmp_path):
    store, out = saved
    other = tmp_path / "other"
    run_cli("q", "--store", str(store), "-o", str(other), "s:balance")
    (savedsearch.dir_for(other) / "lei.saved-search").write_text("[lei\n")
    deliver(tmp_path, store, 10)
    r = run_cli("up", "--all", "--json", check=False)
    assert r.returncode == 1 and b"not a saved search git can read" in r.stderr
    assert [x["written"] for x in json.loads(r.stdout)] == [1]


@pytest.mark.parametrize("damage", ["garbage", "symlinked cur"])
def test_damage_to_an_output_or_its_record(saved, damage):
    store, out = saved
    if damage == "garbage":
        (savedsearch.dir_for(out) / "over.sqlite3").write_bytes(b"garbage" * 1000)
    else:
        os.rename(out / "cur", out / "cur.real")
        (out / "cur").symlink_to(out / "cur.real")
    r = up(str(out), check=False)
    assert r.returncode == (65 if damage == "garbage" else 1) and len(r.stderr.splitlines()) == 1, r.stderr
    assert (b"over.sqlite3" if damage == "garbage" else b"symbolic link") in r.stderr
    assert f"maildir:{out}" in run_cli("ls-mail-sync", "--store", str(store)).stdout.decode()
