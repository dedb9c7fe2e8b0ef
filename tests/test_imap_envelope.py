"""FETCH ENVELOPE from `lei-store serve-imap` (serve/envelope.py reads the raw header) against
real Dovecot's for the same messages: the awkward corpus (groups, encoded words, 8-bit headers,
missing fields) and the project's sample."""

from __future__ import annotations

import shutil

import pytest
from conftest import run_cli
from imapserver import ImapServer


def envelopes(client, mailbox: str) -> dict[bytes, tuple]:
    """Each message's envelope by its Message-ID (those without one, and duplicates, left out)."""
    client.select_folder(mailbox, readonly=True)
    got = client.fetch(client.search(["ALL"]), ["ENVELOPE"])
    seen: dict[bytes, list] = {}
    for v in got.values():
        env = v[b"ENVELOPE"]
        if env.message_id:
            seen.setdefault(env.message_id, []).append(env)
    return {mid: _plain(envs[0]) for mid, envs in seen.items() if len(envs) == 1}


def _plain(env) -> tuple:
    def addrs(xs):
        return tuple((a.name, a.route, a.mailbox, a.host) for a in xs) if xs else None
    return (env.date, env.subject, addrs(env.from_), addrs(env.sender), addrs(env.reply_to), addrs(env.to),
            addrs(env.cc), addrs(env.bcc), env.in_reply_to)


@pytest.mark.parametrize("corpus", ["sample", "small"])
def test_envelopes_agree_with_dovecot(corpus, request, dovecot, tmp_path):
    src = request.getfixturevalue("sample_corpus" if corpus == "sample" else "small_corpus") / "maildir"
    store = tmp_path / "store"
    run_cli("import", "--store", str(store), "-q", str(shutil.copytree(src, tmp_path / "md")))
    dc = dovecot.client()
    files = sorted(p for sub in ("cur", "new") for p in (src / sub).iterdir())
    for p in files:
        data = p.read_bytes()
        dc.append("INBOX", data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"))
    want = envelopes(dc, "INBOX")
    dc.logout()
    srv = ImapServer(store, tmp_path).start()
    try:
        c = srv.client()
        got = envelopes(c, "All")
        c.logout()
    finally:
        assert srv.stop() == 0
    common = set(want) & set(got)
    assert len(common) > 0.8 * len(want)
    differ = {mid: (got[mid], want[mid]) for mid in common if got[mid] != want[mid]}
    assert not differ, f"{len(differ)} of {len(common)} differ: " + "\n".join(
        f"{mid!r}:\n ours   {a}\n theirs {b}" for mid, (a, b) in differ.items())
