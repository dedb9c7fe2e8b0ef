"""lei-store q on the sample corpus: output formats, options, bad queries, reading during an import."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import run_cli
from storecheck import blob_oid, over_rows

from lei_store.mail.keywords import maildir_flags
from lei_store.sources.mbox import read_mbox_path


@pytest.fixture(scope="module")
def store(sample_corpus, tmp_path_factory) -> Path:
    s = tmp_path_factory.mktemp("q") / "store"
    run_cli("import", "--store", str(s), "-q", "+L:sample", str(sample_corpus / "maildir"))
    return s


def q(store: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    return run_cli("q", "--store", str(store), *args, check=check)


def jsonl(store: Path, *args: str) -> list[dict]:
    return [json.loads(x) for x in q(store, "-f", "jsonl", *args).stdout.decode().splitlines()]


def test_json_flavours_agree(store):
    lines = jsonl(store, "s:scrub")
    assert lines and all(r["s"] and r["blob"] and r["L"] == ["sample"] for r in lines)
    arr = json.loads(q(store, "-f", "json", "s:scrub").stdout)
    assert arr[-1] is None and arr[:-1] == lines
    pretty = q(store, "-f", "json", "--pretty", "s:scrub").stdout.decode()
    assert pretty.startswith("[{\n  \"L\": [\"sample\"],\n  \"blob\": ") and json.loads(pretty)[:-1] == lines
    concat = q(store, "-f", "concatjson", "s:scrub").stdout.decode()
    assert [json.loads(x) for x in concat.splitlines()] == lines
    assert json.loads(q(store, "-f", "json", "s:nosuchwordanywhere").stdout) == [None]


def test_sorting_limits_and_offsets(store):
    all_ = jsonl(store, "z:1..")
    assert [r["rt"] for r in all_] == sorted((r["rt"] for r in all_), reverse=True)
    rev = jsonl(store, "-r", "z:1..")
    assert [r["rt"] for r in rev] == sorted(r["rt"] for r in rev)
    assert jsonl(store, "-n", "5", "--offset", "3", "z:1..") == all_[3:8]
    assert len(jsonl(store, "--sort=relevance", "s:scrub")) == len(jsonl(store, "s:scrub"))
    assert len(jsonl(store, "--sort=docid", "z:1..")) == len(all_)


def test_threads_bring_whole_threads(store):
    hits = jsonl(store, "--dedupe=none", "s:scrub")
    threads = jsonl(store, "--dedupe=none", "-t", "s:scrub")
    assert {r["blob"] for r in hits} < {r["blob"] for r in threads}
    assert any("pct" not in r for r in threads)  # thread members that did not match themselves


def test_dedupe_modes(store):
    counts = {m: len(jsonl(store, f"--dedupe={m}", "z:1..")) for m in ("none", "oid", "mid", "content")}
    assert counts["none"] == len(over_rows(store))
    assert counts["mid"] <= counts["content"] <= counts["none"]


def test_text_and_summary(store):
    text = q(store, "-f", "text", "-n", "2", "s:scrub").stdout.decode()
    assert re.match(r"# blob:[0-9a-f]{40} pct:\d+\n", text) and "\nSubject: " in text
    summary = q(store, "-f", "summary", "-n", "3", "s:scrub").stdout.decode().splitlines()
    assert len(summary) == 3 and re.match(r"\d{4}-\d\d-\d\d  ", summary[0])


def test_mail_outputs(store, tmp_path):
    want = {r["blob"] for r in jsonl(store, "--dedupe=none", "kw:flagged")}
    q(store, "--dedupe=none", "-o", str(tmp_path / "md"), "kw:flagged")
    files = list((tmp_path / "md" / "cur").iterdir())
    assert len(files) == len(want) and all(f.name.endswith(":2,FS") or ":2,F" in f.name for f in files)
    assert {blob_oid(f.read_bytes()) for f in files} == want  # bytes exactly as stored
    q(store, "-o", str(tmp_path / "md"), "--augment", "s:scrub")
    assert len(list((tmp_path / "md" / "cur").iterdir())) > len(files)
    q(store, "-o", str(tmp_path / "md"), "kw:flagged")  # without --augment the Maildir is replaced
    assert len(list((tmp_path / "md" / "cur").iterdir())) <= len(files)
    for fmt in ("mboxrd", "mboxo", "mboxcl", "mboxcl2"):
        box = tmp_path / f"out.{fmt}"
        q(store, "--dedupe=none", "-o", f"{fmt}:{box}", "kw:flagged")
        items = list(read_mbox_path(box, fmt))
        assert len(items) == len(want)
        assert all(i.keywords and {"flagged", "seen"} <= i.keywords for i in items)
    out = q(store, "-f", "mboxrd", "-n", "1", "s:scrub").stdout
    assert out.startswith(b"From ") and b"\nSubject: " in out


@pytest.mark.parametrize("query,message", [
    ("s:(scrub", "unbalanced parenthesis"),
    ("zz:scrub", "unknown search prefix zz:"),
    ("d:not-a-date..", "cannot understand the date"),
    ('s:"open phrase', "unbalanced double quote"),
])
def test_bad_queries(store, query, message):
    r = q(store, query, check=False)
    err = r.stderr.decode()
    assert r.returncode != 0 and r.stdout == b""
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_stdin_query_with_quotes_and_dates(store):
    r = run_cli("q", "--store", str(store), "-f", "jsonl", "--stdin", input=b's:"speed question" AND d:2024-03-01..2024-03-31')
    assert r.stdout and all("peed question" in json.loads(x)["s"] for x in r.stdout.decode().splitlines())


def test_readers_work_while_an_import_runs(sample_corpus, tmp_path):
    """q takes no lock and opens everything read-only: it answers during a long import."""
    s = tmp_path / "store"
    run_cli("import", "--store", str(s), "-q", str(sample_corpus / "maildir"))
    box = tmp_path / "big.mbox"
    data = (sample_corpus / "sample.mboxrd").read_bytes()
    box.write_bytes(b"".join(data.replace(b"@example.org>", b".%d@example.org>" % i) for i in range(8)))
    writer = subprocess.Popen([sys.executable, "-m", "lei_store", "import", "--store", str(s), "-q",
                               "--batch-size", "100", "-j", "1", f"mboxrd:{box}"], stderr=subprocess.PIPE)
    counts, deadline = [], time.monotonic() + 120
    while writer.poll() is None and time.monotonic() < deadline:
        r = run_cli("q", "--store", str(s), "-f", "jsonl", "--dedupe=none", "z:1..", check=False)
        assert r.returncode == 0, r.stderr.decode()
        counts.append(len(r.stdout.splitlines()))
    assert writer.wait(timeout=120) == 0, writer.stderr.read().decode()
    assert len(counts) >= 2 and counts == sorted(counts)  # never fewer results than before


# --- -o: only ever replace what q -o wrote --------------------------------------------------------


def refused(r: subprocess.CompletedProcess, *words: str) -> str:
    err = r.stderr.decode()
    assert r.returncode == 1 and r.stdout == b"", err
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert all(w in err for w in words), err
    return err


def listing(d: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in d.iterdir()}


def test_maildir_output_refuses_files_it_did_not_write(store, tmp_path):
    out = tmp_path / "md"
    (out / "cur").mkdir(parents=True)
    (out / "cur" / "todo.txt").write_text("buy milk\n")
    refused(q(store, "-o", str(out), "kw:flagged", check=False), str(out), "cur/todo.txt", "--augment", "empty")
    assert listing(out / "cur") == {"todo.txt": b"buy milk\n"} and sorted(os.listdir(out)) == ["cur"]
    docs = tmp_path / "docs"  # not a Maildir at all
    docs.mkdir()
    (docs / "notes.txt").write_text("x")
    refused(q(store, "-o", str(docs), "kw:flagged", check=False), "notes.txt")
    assert os.listdir(docs) == ["notes.txt"]
    stray = tmp_path / "stray"  # a foreign file in new/ counts as much as one in cur/
    q(store, "-o", str(stray), "kw:flagged")
    (stray / "new" / "1700000000.M1P2.host").write_bytes(b"Subject: mine\n\n")
    before = listing(stray / "cur")
    refused(q(store, "-o", str(stray), "s:scrub", check=False), "new/1700000000.M1P2.host")
    assert listing(stray / "cur") == before
    flagged = len(jsonl(store, "kw:flagged"))
    q(store, "-o", str(out), "--augment", "kw:flagged")  # --augment adds beside it, deleting nothing
    assert (out / "cur" / "todo.txt").read_text() == "buy milk\n" and len(os.listdir(out / "cur")) == 1 + flagged


def test_maildir_output_never_follows_a_symlinked_cur(store, tmp_path):
    out = tmp_path / "md"
    q(store, "-o", str(out), "kw:flagged")
    ours = sorted(os.listdir(out / "cur"))[0]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "precious").write_text("keep")
    (elsewhere / ours).write_text("named like ours, but not in the output")
    shutil.rmtree(out / "cur")
    (out / "cur").symlink_to(elsewhere)
    before = listing(elsewhere)
    for augment in ((), ("--augment",)):
        refused(q(store, "-o", str(out), *augment, "kw:flagged", check=False), "cur", "symbolic link")
        assert listing(elsewhere) == before


def test_maildir_output_checks_everything_before_deleting(store, tmp_path):
    out = tmp_path / "md"
    q(store, "--dedupe=none", "-o", str(out), "z:1..")
    before = listing(out / "cur")
    (out / "cur" / "sub").mkdir()  # the old code stopped here after deleting whatever listed before it
    refused(q(store, "-o", str(out), "kw:flagged", check=False), "cur/sub", "directory")
    assert {p.name: p.read_bytes() for p in (out / "cur").iterdir() if p.is_file()} == before


def test_maildir_output_replaces_its_previous_output(store, tmp_path):
    out = tmp_path / "md"
    q(store, "--dedupe=none", "-o", str(out), "s:scrub")
    old = sorted(os.listdir(out / "cur"))
    # a mail reader marked one as read and one as trashed, and lei wrote one (same naming)
    (out / "cur" / old[0]).rename(out / "cur" / (old[0].partition(":")[0] + ":2,RS"))
    (out / "cur" / old[1]).rename(out / "cur" / (old[1] + "T"))
    (out / "cur" / ("ab" * 20 + "=99:2,S")).write_bytes(b"Subject: from lei\n\n")
    q(store, "--dedupe=none", "-o", str(out), "kw:flagged")
    want = jsonl(store, "--dedupe=none", "kw:flagged")
    got = sorted(os.listdir(out / "cur"))
    assert got == sorted(f"{r['blob']}={r['pct']}:2,{maildir_flags(r['kw'])}" for r in want)
    assert os.listdir(out / "new") == []
    assert {blob_oid((out / "cur" / n).read_bytes()) for n in got} == {r["blob"] for r in want}
    q(store, "-o", f"maildir:{out}", "--augment", "s:scrub")
    assert set(got) < set(os.listdir(out / "cur"))


def test_mbox_output_never_clobbers_a_foreign_file(store, tmp_path):
    box = tmp_path / "mine.mbox"
    mine = b"From me@example.org Mon Jan  1 00:00:00 2024\nSubject: mine\n\nkeep me\n\n"
    box.write_bytes(mine)
    refused(q(store, "-o", f"mboxrd:{box}", "kw:flagged", check=False), str(box), "--augment")
    assert box.read_bytes() == mine
    q(store, "-o", f"mboxrd:{box}", "--augment", "kw:flagged")  # --augment appends to it
    appended = box.read_bytes()
    assert appended.startswith(mine) and len(appended) > len(mine)
    d = tmp_path / "a-dir"
    d.mkdir()
    refused(q(store, "-o", f"mboxrd:{d}", "kw:flagged", check=False), str(d), "directory")


def test_mbox_output_replaces_its_own_output_whole(store, tmp_path):
    box = tmp_path / "out.mbox"
    box.write_bytes(b"")  # an empty file is fair game
    q(store, "-o", f"mboxrd:{box}", "s:scrub")
    assert box.read_bytes() == q(store, "-f", "mboxrd", "s:scrub").stdout
    link = tmp_path / "link.mbox"
    link.symlink_to(box)
    q(store, "-o", f"mboxcl2:{link}", "kw:flagged")  # our own earlier output, through a symlink
    assert link.is_symlink() and box.read_bytes() == q(store, "-f", "mboxcl2", "kw:flagged").stdout
    assert sorted(os.listdir(tmp_path)) == ["link.mbox", "out.mbox"]  # no temporary file left
    fifo = tmp_path / "fifo"  # not a regular file: just written to
    os.mkfifo(fifo)
    reader = subprocess.Popen(["cat", str(fifo)], stdout=subprocess.PIPE)
    q(store, "-o", f"mboxrd:{fifo}", "kw:flagged")
    assert reader.communicate(timeout=60)[0] == q(store, "-f", "mboxrd", "kw:flagged").stdout
    q(store, "-o", "mboxrd:/dev/null", "kw:flagged")
    assert Path("/dev/null").is_char_device()


def test_mbox_output_failing_half_way_keeps_the_old_one(store, tmp_path):
    from conftest import small_tmpfs

    with small_tmpfs(tmp_path / "fs", "128k") as fs:
        box = fs / "out.mbox"
        q(store, "-o", f"mboxrd:{box}", "s:scrub")
        before = box.read_bytes()
        r = q(store, "--dedupe=none", "-o", f"mboxrd:{box}", "z:1..", check=False)
        assert r.returncode == 74 and len(r.stderr.decode().splitlines()) == 1, r.stderr
        assert box.read_bytes() == before and os.listdir(fs) == ["out.mbox"]
