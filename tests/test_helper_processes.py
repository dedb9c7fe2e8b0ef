"""The writer's helpers (Xapian shard writers, analysis workers) are fresh interpreters, not forks of
the writer: jemalloc preloaded where installed (LEI_STORE_MALLOC=system keeps glibc's), nothing
imported from the user's directory, a dead worker reported in one line, none left behind."""

from __future__ import annotations

import ctypes.util
import signal
import time
from pathlib import Path

import pytest
import xapian
from conftest import need

from lei_store.errors import StorageError
from lei_store.sources import maildir
from lei_store.sources.items import Item
from lei_store.write import analysis
from lei_store.write.store import Store


def _shard_maps(w) -> list[str]:
    """What each running shard writer has mapped, after checking it is shardprocs' own interpreter."""
    out = []
    for proc in w.shards._procs:
        argv = Path(f"/proc/{proc.pid}/cmdline").read_bytes().split(b"\0")
        assert b"lei_store.write.shardprocs" in argv and b"-P" in argv
        out.append(Path(f"/proc/{proc.pid}/maps").read_text())
    return out


def _import(store: Store, md: Path) -> int:
    """Import MD; every message is in a shard; how many shard writers had jemalloc mapped."""
    with store.writer(jobs=2) as w:
        maps = _shard_maps(w)
        w.add_messages(maildir.read_items(md, None, maildir.list_entries(md)))
        added = w.stats.added
    shards = sorted((store.root / "ei15").glob("[0-9]*"))
    assert added > 20 and len(shards) == len(maps) == 2
    assert sum(xapian.Database(str(s)).get_doccount() for s in shards) == added
    return sum("libjemalloc" in m for m in maps)


def test_shard_writers_run_with_jemalloc_where_installed(sample_corpus, tmp_path):
    need(ctypes.util.find_library("jemalloc") is not None,
         "libjemalloc2 is not installed (tools/install-peers.sh installs it)")
    assert _import(Store.create(tmp_path / "store"), sample_corpus / "maildir") == 2


def test_lei_store_malloc_system_keeps_glibc(sample_corpus, tmp_path, monkeypatch):
    monkeypatch.setenv("LEI_STORE_MALLOC", "system")
    assert _import(Store.create(tmp_path / "store"), sample_corpus / "maildir") == 0


def test_nothing_is_imported_from_the_current_directory(sample_corpus, tmp_path, monkeypatch):
    """A user's directory holding a lei_store/ or xapian.py of its own (a checkout, a backup) must not
    stand in for ours in the shard writers (python -P)."""
    decoy = tmp_path / "cwd"
    (decoy / "lei_store" / "write").mkdir(parents=True)
    for init in (decoy / "lei_store" / "__init__.py", decoy / "lei_store" / "write" / "__init__.py",
                 decoy / "xapian.py", decoy / "msgspec.py"):
        init.write_text("raise SystemExit('imported from the current directory')\n")
    monkeypatch.chdir(decoy)
    monkeypatch.delenv("PYTHONPATH", raising=False)
    _import(Store.create(tmp_path / "store"), sample_corpus / "maildir")


def _items(md: Path) -> list[Item]:
    return list(maildir.read_items(md, None, maildir.list_entries(md)))


def test_analysis_workers_answer_in_order_as_the_writer_would_alone(sample_corpus):
    items = _items(sample_corpus / "maildir")
    alone = [a for _, a in analysis.analysed(items, 1)]
    assert len(items) > 2 * analysis.CHUNK
    assert [a for _, a in analysis.analysed(items, 2)] == alone


def test_a_dead_analysis_worker_is_one_clear_error(sample_corpus):
    items = _items(sample_corpus / "maildir")
    with analysis.Workers(2) as pool:
        pool._procs[1].send_signal(signal.SIGKILL)
        pool._procs[1].wait()
        pool.send(1, analysis.msgspec.msgpack.encode([(i.raw, i.now) for i in items[:3]]))
        with pytest.raises(StorageError, match="an analysis worker died"):
            pool.receive(1)
    assert all(p.poll() is not None for p in pool._procs)


def test_workers_stopped_mid_stream_exit_at_once(sample_corpus):
    """The writer stops reading (an error of its own): workers stuck on answers nobody reads are
    killed, not waited for."""
    items = _items(sample_corpus / "maildir") * 20
    stream = analysis.analysed(items, 2)
    next(stream)
    started = time.monotonic()
    stream.close()
    assert time.monotonic() - started < 10
