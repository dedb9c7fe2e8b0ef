"""The command line: help on every subcommand, progress only on a terminal, store discovery."""

import io
import os
import pty
import sys

import pytest
from conftest import run_cli

from lei_store.cli.main import COMMANDS
from lei_store.cli.progress import Progress

NO_STORE = {"clone", "daemon-pid", "daemon-kill"}  # they make a store, or are about the daemon


@pytest.mark.parametrize("cmd", COMMANDS)
def test_every_subcommand_has_help(cmd):
    out = run_cli(cmd, "--help", timeout=60).stdout.decode()
    assert out.startswith(f"usage: lei-store {cmd}")
    assert ("--store" in out) == (cmd not in NO_STORE)


def test_progress_draws_only_when_enabled():
    s = io.StringIO()
    p = Progress("importing", 10, enabled=True, stream=s)
    p._last = 0  # draw on the next advance
    p.advance(5)
    p.close()
    assert "\rimporting: [" in s.getvalue() and "5/10" in s.getvalue()
    quiet = io.StringIO()
    Progress("importing", 10, enabled=False, stream=quiet).advance(10)
    assert quiet.getvalue() == ""


def test_no_progress_bar_when_stderr_is_not_a_terminal(sample_corpus, tmp_path):
    r = run_cli("import", "--store", str(tmp_path / "s"), f"mboxrd:{sample_corpus / 'sample.mboxrd'}")
    assert b"\r" not in r.stderr and b"messages read" in r.stderr


def test_progress_bar_on_a_terminal(sample_corpus, tmp_path):
    """Under a pseudo-terminal the import draws a progress line on stderr."""
    pid, fd = pty.fork()
    if pid == 0:
        os.execv(sys.executable, [sys.executable, "-m", "lei_store", "import", "--store", str(tmp_path / "s"),
                                  f"mboxrd:{sample_corpus / 'sample.mboxrd'}"])
    out = b""
    while True:
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    os.waitpid(pid, 0)
    assert b"\rimporting: " in out and b"messages read" in out


def test_store_found_like_lei(tmp_path, monkeypatch):
    """Without --store: leistore.dir from lei's config, else $XDG_DATA_HOME/lei/store."""
    msg = tmp_path / "m.eml"
    msg.write_bytes(b"From: a@b\nSubject: x\nMessage-ID: <x@y>\n\nbody\n")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    run_cli("import", "-q", str(msg))
    assert (tmp_path / "data" / "lei" / "store" / "ei15" / "over.sqlite3").exists()
    run_cli("init", str(tmp_path / "chosen"))  # records leistore.dir, as `lei init DIR`
    run_cli("import", "-q", str(msg))
    assert (tmp_path / "chosen" / "local" / "0.git").exists()


def test_store_option_before_or_after_the_command(tmp_path):
    msg = tmp_path / "m.eml"
    msg.write_bytes(b"From: a@b\nSubject: x\nMessage-ID: <x@y>\n\nbody\n")
    run_cli("--store", str(tmp_path / "s"), "import", "-q", str(msg))
    out = run_cli("--store", str(tmp_path / "s"), "q", "-f", "jsonl", "mid:x@y").stdout
    assert b'"m":"x@y"' in out
    assert run_cli("q", "--store", str(tmp_path / "s"), "-f", "jsonl", "mid:x@y").stdout == out


def test_every_command_is_listed_for_the_fast_parser():
    """cli builds only the named subcommand's parser (start-up time); COMMANDS must name them all."""
    import argparse

    from lei_store.cli.main import _parser

    (sub,) = [a for a in _parser()._actions if isinstance(a, argparse._SubParsersAction)]
    assert sorted(sub.choices) == sorted(COMMANDS)
    for name in COMMANDS:
        only = _parser(name)
        (part,) = [a for a in only._actions if isinstance(a, argparse._SubParsersAction)]
        assert list(part.choices) == [name]
