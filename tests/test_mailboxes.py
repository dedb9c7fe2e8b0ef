"""Mailboxes are labels: names and labels map both ways, mailboxes are listed with exact counters,
per-mailbox UIDs survive renames and rebuilds, and real lei sees every label we write."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import Lei, need_lei, run_cli

from lei_store.disk.mailboxes import check_name, label_of, name_of

NAMES = ["INBOX", "work", "lists/btrfs", "Work", "Work Stuff/2024", "Ärger", "a_b", "__x", "x.", "日本語/メール",
         "Sent", "drafts", "one two/three"]


@pytest.mark.parametrize("name", NAMES)
def test_every_name_has_a_label_lei_accepts_and_back(name):
    from lei_store.mail.keywords import check_label

    label = label_of(name)
    assert check_label(label) == label  # what lei-tag(1) accepts
    assert name_of(label) == (name if name.upper() != "INBOX" else "INBOX")


def test_labels_that_are_names_stay_as_they_are():
    assert [label_of(n) for n in ("work", "lists/btrfs", "a_b", "x.y")] == ["work", "lists/btrfs", "a_b", "x.y"]
    assert label_of("inbox") == label_of("INBOX") == "inbox"


@pytest.mark.parametrize("bad", ["", "/a", "a/", "a//b", "a%b", "b*", 'q"', "tab\there", "x" * 201,
                                 "nel\u0085", "line\u2028sep", "not utf-8 \udcff"])
def test_bad_names_are_refused(bad, tmp_path):
    from lei_store.errors import InputError

    with pytest.raises(InputError):
        check_name(bad)


def mailboxes(store: Path) -> dict[str, dict]:
    return {m["name"]: m for m in json.loads(run_cli("mailboxes", "--store", str(store), "--json").stdout)}


def uids(store: Path, name: str) -> dict[str, int]:
    out = run_cli("changes", "--store", str(store), "--mailbox", name, "--json").stdout.splitlines()
    return {c["blob"]: c["uid"] for c in map(json.loads, out[:-1]) if c["kind"] != "removed"}


@pytest.fixture
def store(sample_corpus, tmp_path) -> Path:
    s = tmp_path / "store"
    run_cli("import", "--store", str(s), "-q", str(shutil.copytree(sample_corpus / "maildir", tmp_path / "md")))
    run_cli("tag", "--store", str(s), "--quiet", "-q", "s:scrub", "+L:scrub")
    return s


def test_mailboxes_json_and_counters(store):
    boxes = mailboxes(store)
    assert set(boxes) >= {"INBOX", "All", "scrub"}
    for m in boxes.values():
        assert set(m) >= {"name", "exists", "unseen", "recent", "uidvalidity", "uidnext", "highestmodseq",
                          "subscribed", "special_use"}
    hits = lambda q: len(run_cli("q", "--store", str(store), "-f", "jsonl", "--dedupe=none", *q.split()).stdout.splitlines())
    assert boxes["All"]["special_use"] == "\\All" and boxes["All"]["exists"] == hits("z:1..")
    assert boxes["scrub"]["exists"] == hits("L:scrub") > 10
    assert boxes["scrub"]["unseen"] == hits("L:scrub AND NOT kw:seen")
    assert boxes["All"]["unseen"] == hits("z:1.. AND NOT kw:seen")
    assert boxes["scrub"]["uidnext"] == boxes["scrub"]["exists"] + 1
    assert boxes["INBOX"]["exists"] == 0


def test_create_rename_delete_subscribe(store):
    run_cli("mailbox", "--store", str(store), "create", "Sent")
    boxes = mailboxes(store)
    assert boxes["Sent"]["special_use"] == "\\Sent" and boxes["Sent"]["exists"] == 0
    run_cli("mailbox", "--store", str(store), "unsubscribe", "Sent")
    assert mailboxes(store)["Sent"]["subscribed"] is False
    before, validity = uids(store, "scrub"), mailboxes(store)["scrub"]["uidvalidity"]
    everything = mailboxes(store)["All"]["exists"]
    run_cli("mailbox", "--store", str(store), "rename", "scrub", "Projects/Scrub Work")
    boxes = mailboxes(store)
    assert "scrub" not in boxes and boxes["Projects/Scrub Work"]["uidvalidity"] == validity
    assert uids(store, "Projects/Scrub Work") == before  # every member keeps its UID
    new_label = label_of("Projects/Scrub Work")
    found = run_cli("q", "--store", str(store), "-f", "jsonl", "--dedupe=none", f"L:{new_label}").stdout
    assert {json.loads(r)["blob"] for r in found.splitlines()} == set(before)
    run_cli("mailbox", "--store", str(store), "delete", "Projects/Scrub Work")
    assert "Projects/Scrub Work" not in mailboxes(store)
    assert run_cli("q", "--store", str(store), "-f", "jsonl", f"L:{new_label}").stdout == b""
    assert mailboxes(store)["All"]["exists"] == everything  # the messages stay in the archive


@pytest.mark.parametrize("args, says", [
    (["create", "a//b"], "empty level"), (["create", "x*y"], "may not hold"), (["rename", "nope", "other"], "no mailbox"),
    (["delete", "INBOX"], "cannot be deleted"), (["delete", "All"], "cannot be deleted"),
    (["rename", "INBOX", "x"], "cannot be renamed"), (["create", "scrub"], "exists already"),
    (["create", "All"], "exists already"), (["create", "inbox"], "exists already"),
    (["rename", "scrub", "scrub/inner"], "into itself"), (["subscribe", "nope"], "no mailbox")])
def test_mailbox_mistakes_are_one_line(store, args, says):
    r = run_cli("mailbox", "--store", str(store), *args, check=False)
    err = r.stderr.decode()
    assert r.returncode == 1 and says in err and len(err.strip().splitlines()) == 1, err


def test_a_renamed_label_survives_reindex_with_its_uids(store):
    run_cli("mailbox", "--store", str(store), "rename", "scrub", "Renamed")
    before = (mailboxes(store)["Renamed"], uids(store, "Renamed"))
    run_cli("reindex", "--store", str(store), "-q")
    assert (mailboxes(store)["Renamed"], uids(store, "Renamed")) == before
    assert run_cli("fsck", "--store", str(store)).returncode == 0


def test_a_label_joined_again_gets_a_new_uid(store):
    first = uids(store, "scrub")
    run_cli("tag", "--store", str(store), "--quiet", "-q", "s:scrub", "-L:scrub")
    run_cli("tag", "--store", str(store), "--quiet", "-q", "s:scrub", "+L:scrub")
    again = uids(store, "scrub")
    assert set(again) == set(first) and min(again.values()) > max(first.values())


def test_real_lei_sees_renamed_mailboxes(store, tmp_path):
    need_lei()
    run_cli("mailbox", "--store", str(store), "rename", "scrub", "Scrub Äpfel")
    reader = Lei(tmp_path / "lei")
    try:
        reader("init", str(store))
        out = reader("q", "-f", "jsonl", "--dedupe=none", f"L:{label_of('Scrub Äpfel')}").stdout
        assert {json.loads(r)["blob"] for r in out.splitlines()} == set(uids(store, "Scrub Äpfel"))
        assert label_of("Scrub Äpfel") in reader("ls-label").stdout.decode().split()
    finally:
        reader.close()


def test_recent_messages_are_claimed_once(store):
    """IMAP's \\Recent: one session (SELECT) claims the messages that joined since the last claim;
    `mailboxes` counts them as recent until then, and a later claim gets only newer ones."""
    from lei_store.ops.mailbox import claim_recent

    run_cli("tag", "--store", str(store), "-q", "s:scrub", "+L:work")
    work = mailboxes(store)["work"]
    assert work["recent"] == work["exists"] > 0
    assert list(claim_recent(store, "work")) == list(range(1, work["uidnext"]))
    assert mailboxes(store)["work"]["recent"] == 0 and list(claim_recent(store, "work")) == []
    run_cli("tag", "--store", str(store), "-q", "kw:flagged AND NOT s:scrub", "+L:work")
    after = mailboxes(store)["work"]
    assert after["recent"] == after["exists"] - work["exists"] > 0
    assert list(claim_recent(store, "work")) == list(range(work["uidnext"], after["uidnext"]))
    assert after["highestmodseq"] == mailboxes(store)["work"]["highestmodseq"]  # claiming changes no modseq


@pytest.mark.parametrize("label", ["__95744jqo", "__85m6o", "__f0nni", "__0000", "__c4h64", "__zz", "x/__18"])
def test_labels_that_only_look_like_encoded_names_are_refused(store, label):
    """INBOX and All by another route, a name with '/' in one level, control characters, no name at
    all: tag refuses each with one line; nothing crashes and no odd mailbox appears."""
    before = set(mailboxes(store))
    r = run_cli("tag", "--store", str(store), "-q", "s:scrub", f"+L:{label}", check=False)
    assert r.returncode == 1 and b"reserved" in r.stderr and b"Traceback" not in r.stderr
    assert set(mailboxes(store)) == before


def test_inbox_levels_and_case(store):
    run_cli("mailbox", "--store", str(store), "create", "inbox/Sub")
    assert "INBOX/Sub" in mailboxes(store) and label_of("INBOX/Sub") == label_of("inbox/Sub")
    assert run_cli("changes", "--store", str(store), "--mailbox", "inbox", "--since", "0").returncode == 0
    r = run_cli("mailboxes", "--store", str(store), "Nope", check=False)
    assert r.returncode == 1 and b"no mailbox" in r.stderr


def test_rename_moves_the_mailboxes_under_it(store):
    run_cli("mailbox", "--store", str(store), "rename", "scrub", "Lists/Scrub")
    run_cli("mailbox", "--store", str(store), "create", "Lists/Scrub/Old")
    kept = uids(store, "Lists/Scrub")
    run_cli("mailbox", "--store", str(store), "create", "Archive/Scrub/Old")
    r = run_cli("mailbox", "--store", str(store), "rename", "Lists", "Archive", check=False)
    assert r.returncode == 1 and "Lists/Scrub" in mailboxes(store)  # Archive/Scrub/Old exists: nothing moves
    run_cli("mailbox", "--store", str(store), "rename", "Lists", "Kept")
    boxes = mailboxes(store)
    assert {"Kept/Scrub", "Kept/Scrub/Old"} <= set(boxes) and not any(n.startswith("Lists") for n in boxes)
    assert uids(store, "Kept/Scrub") == kept
