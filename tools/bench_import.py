#!/usr/bin/env python3
"""Import benchmark: lei-store import vs lei import vs notmuch new vs mu index, one corpus, one run.

    .venv/bin/python tools/bench_import.py [--corpus ../shared/corpora/btrfs-10k.tar.xz]
        [--tools lei-store,lei,notmuch,mu] [--sizes 2500,5000,10000]
        [--compare NAME=OTHER_CHECKOUT/.venv/bin/lei-store] [--repeat 3]

Each tool gets a fresh copy of the corpus Maildir. Wall time, CPU seconds (user + system), messages
per second and peak memory (PSS, so pages shared by forked workers count once) of the tool's whole
process tree (for lei, its daemon's; memory sampled from /proc every 50 ms) and the size of what it
wrote are printed as a table with ratios against lei-store. --sizes re-runs lei-store on the first N
messages of the corpus to show whether memory stays flat. --compare times another checkout's lei-
store on the same corpus (before/after a change); --repeat runs every lei-store variant that many
times, interleaved so drift hits them alike, and reports the median.

    .venv/bin/python tools/bench_import.py --scale /work/scale/corpus [--tools lei-store,mu,notmuch,lei]

--scale runs each tool once on a large Maildir (build-scale.py's ~65,500 real messages), sampling
the anonymous memory of each tool's processes every second, and for lei-store its rate over the
first and the last 10% of the messages (from over.sqlite3) and its peak memory in each quarter.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CORPUS = ROOT.parent / "shared" / "corpora" / "btrfs-10k.tar.xz"


def _kib_field(path: str, key: str) -> int:
    """A "Key:   N kB" line of a /proc file, in bytes (0 when the process is gone)."""
    try:
        with open(path) as f:
            for line in f:
                if line.startswith(key):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _pss(pid: int) -> int:
    """Proportional set size: shared pages (forked workers) are not counted twice."""
    return _kib_field(f"/proc/{pid}/smaps_rollup", "Pss:")


def tree_pids(root_pid: int) -> list[int]:
    """A process and all its descendants."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(entry))
    out, todo = [], [root_pid]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo += children.get(pid, [])
    return out


def _comm(pid: int) -> str:
    """What a process is: its name (lei-store's shard writers and workers share python's, so
    the first words of the command line tell them apart)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            argv = f.read().split(b"\0")
    except OSError:
        return "?"
    words = [a.decode(errors="replace") for a in argv if a]
    if not words:
        return "?"
    kind, rest = [os.path.basename(words[0])], iter(words[1:])
    for word in rest:  # options skipped: `python -P -m lei_store.write.shardprocs`, `git --git-dir=D fast-import`
        if word == "-m":
            return " ".join(kind + [next(rest, "")])[:50]
        if not word.startswith("-"):
            kind.append(os.path.basename(word))
            if len(kind) == 3:
                break
    return " ".join(kind)[:50]


def _cpu_ticks(pid: int, children: bool = False) -> int:
    """Clock ticks of CPU (user + system) a process used; with CHILDREN, also its reaped children's."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    return sum(int(x) for x in fields[11:15 if children else 13])  # utime stime [cutime cstime]


def anon(pid: int) -> int:
    """Anonymous resident memory of one process (heap, not file pages or shared libraries)."""
    return _kib_field(f"/proc/{pid}/status", "RssAnon:")


def pss_anon(pid: int) -> int:
    """Its proportional share of anonymous memory: a page a forked child still shares with its
    parent (copy-on-write) is counted half in each, so a tree's sum counts every page once."""
    return _kib_field(f"/proc/{pid}/smaps_rollup", "Pss_Anon:")


class PeakRss:
    """Samples the memory of one or more process trees in a thread: PSS (peak) and anonymous
    memory over time (SERIES: seconds, anonymous bytes of all (RssAnon summed: shared pages counted
    in every process), progress from PROBE if given, anonymous bytes counted once (Pss_Anon))."""

    def __init__(self, pids, interval: float = 0.05, probe=None):
        self.pids, self.peak, self._stop = list(pids), 0, threading.Event()
        self.interval, self.probe = interval, probe
        self.series: list[tuple[float, int, int | None, int]] = []
        self.peak_anon = 0
        self.peak_pss_anon = 0
        self.peak_by_kind: dict[str, int] = {}  # process kind (its comm) -> its peak anonymous bytes
        self.cpu_by_pid: dict[int, tuple[str, int]] = {}  # pid -> (kind, CPU ticks at its last sample)
        self._t = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        t0 = time.monotonic()
        while not self._stop.is_set():
            pids = [q for p in self.pids for q in tree_pids(p)]
            self.peak = max(self.peak, sum(_pss(p) for p in pids))
            by_pid = {p: anon(p) for p in pids}
            total_anon = sum(by_pid.values())
            for p, a in by_pid.items():
                comm = _comm(p)  # read anew: a child is its parent until exec
                if comm == "?" and p in self.cpu_by_pid:  # exiting: no command line any more
                    kind = self.cpu_by_pid[p][0]
                else:
                    kind = ("main: " if p in self.pids else "") + comm
                self.peak_by_kind[kind] = max(self.peak_by_kind.get(kind, 0), a)
                self.cpu_by_pid[p] = (kind, _cpu_ticks(p))
            self.peak_anon = max(self.peak_anon, total_anon)
            once = sum(pss_anon(p) for p in pids)
            self.peak_pss_anon = max(self.peak_pss_anon, once)
            self.series.append((time.monotonic() - t0, total_anon, self.probe() if self.probe else None, once))
            self._stop.wait(self.interval)

    def cpu_by_kind(self) -> dict[str, float]:
        """CPU seconds of each kind of process, as last sampled (a process's last interval is missed)."""
        out: dict[str, float] = {}
        for kind, ticks in self.cpu_by_pid.values():
            out[kind] = out.get(kind, 0.0) + ticks / os.sysconf("SC_CLK_TCK")
        return out

    def __enter__(self):
        self._t.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join()


def du(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink())


LAST: dict[str, PeakRss] = {}  # the sampler of the last run of each tool (for --scale's report)


def cpu_seconds(pids=()) -> float:
    """User + system CPU of this process's reaped children, plus of `pids` and every live descendant
    of theirs (lei's daemon is not our child, and its store workers outlive an import). CPU seconds
    tell what wall time hides on a host that lends its cores to others (steal) or leaves one idle."""
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    total = ru.ru_utime + ru.ru_stime
    tree = {q for p in pids for q in tree_pids(p)}
    return total + sum(_cpu_ticks(p, children=True) for p in tree) / os.sysconf("SC_CLK_TCK")


def run_measured(cmd, env, extra_pids=(), probe=None, interval: float = 0.05) -> tuple[float, int, float]:
    """Run cmd to its end: (wall seconds, peak PSS of its tree, CPU seconds of its tree)."""
    cpu0 = cpu_seconds(extra_pids)
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    with PeakRss([p.pid, *extra_pids], interval, probe) as peak:
        _, err = p.communicate()
    if p.returncode != 0:
        raise SystemExit(f"{cmd[0]} failed: {err.decode()[-500:]}")
    LAST[os.path.basename(cmd[0])] = peak
    return time.monotonic() - t0, peak.peak, cpu_seconds(extra_pids) - cpu0


def cpu_split(sampler: PeakRss) -> str:
    """CPU seconds by kind of process, largest first: where a run's CPU went."""
    kinds = sorted(sampler.cpu_by_kind().items(), key=lambda kv: -kv[1])
    return ", ".join(f"{kind} {secs:.1f}" for kind, secs in kinds if secs >= 0.1)


def over_progress(store: Path):
    """How many messages an import has committed so far (its over.sqlite3), for the rate over time."""
    import sqlite3

    def probe() -> int | None:
        try:
            db = sqlite3.connect(f"file:{store}/ei15/over.sqlite3?mode=ro", uri=True, timeout=0.1)
            try:
                return db.execute("SELECT COALESCE(MAX(num), 0) FROM over").fetchone()[0]
            finally:
                db.close()
        except sqlite3.Error:
            return None
    return probe


def bench_lei_store(maildir: Path, work: Path, env, cli: str = str(ROOT / ".venv" / "bin" / "lei-store"),
                    interval: float = 0.05) -> tuple[float, int, int, float]:
    store = work / "lei-store"
    secs, rss, cpu = run_measured([cli, "import", "--store", str(store), "-q", str(maildir)], env,
                                  probe=over_progress(store), interval=interval)
    return secs, rss, du(store), cpu


def bench_lei(maildir: Path, work: Path, env) -> tuple[float, int, int, float]:
    run = work / "lei-run"
    run.mkdir(mode=0o700)
    env = dict(env, HOME=str(work / "lei-home"), XDG_RUNTIME_DIR=str(run))
    subprocess.run(["lei", "init"], env=env, check=True, capture_output=True)  # starts the daemon
    daemon = int(subprocess.run(["lei", "daemon-pid"], env=env, capture_output=True, text=True).stdout)
    try:
        secs, rss, cpu = run_measured(["lei", "import", str(maildir)], env, [daemon])
        return secs, rss, du(Path(env["HOME"]) / ".local" / "share" / "lei" / "store"), cpu
    finally:
        subprocess.run(["lei", "daemon-kill"], env=env, capture_output=True)


def bench_notmuch(maildir: Path, work: Path, env) -> tuple[float, int, int, float]:
    cfg = work / "notmuch-config"
    cfg.write_text(f"[database]\npath={maildir}\n[new]\ntags=unread;inbox;\n[maildir]\nsynchronize_flags=true\n")
    env = dict(env, NOTMUCH_CONFIG=str(cfg))
    secs, rss, cpu = run_measured(["notmuch", "new", "--quiet"], env)
    return secs, rss, du(maildir / ".notmuch"), cpu


def bench_mu(maildir: Path, work: Path, env) -> tuple[float, int, int, float]:
    home = work / "mu-home"
    subprocess.run(["mu", "init", f"--muhome={home}", f"--maildir={maildir}"], env=env, check=True,
                   capture_output=True)
    secs, rss, cpu = run_measured(["mu", "index", f"--muhome={home}", "--quiet"], env)
    return secs, rss, du(home), cpu


def median(results: list[tuple[float, int, int, float]]) -> tuple[float, int, int, float]:
    """The run with the median time (its memory and size come with it)."""
    return sorted(results)[len(results) // 2]


BENCHES = {"lei-store": bench_lei_store, "lei": bench_lei, "notmuch": bench_notmuch, "mu": bench_mu}


def bench_env() -> dict:
    """The environment every benchmarked tool runs in."""
    return dict(os.environ, GIT_COMMITTER_NAME="bench", GIT_COMMITTER_EMAIL="bench@example.test",
                NPROC=str(os.cpu_count()))


def unpack(corpus: Path, tmp: Path) -> Path:
    """Unpack a corpus archive under tmp; returns its Maildir (copy it before handing it to a tool)."""
    with tarfile.open(corpus) as tar:
        tar.extractall(tmp / "corpus", filter="data")
    return tmp / "corpus" / "maildir"


def subset(maildir: Path, n: int, dest: Path) -> Path:
    """A Maildir with the first n messages (by name) of another."""
    for sub in ("cur", "new", "tmp"):
        (dest / sub).mkdir(parents=True)
    names = sorted((sub, f) for sub in ("cur", "new") for f in os.listdir(maildir / sub))
    for sub, f in sorted(names, key=lambda x: x[1])[:n]:
        shutil.copy2(maildir / sub / f, dest / sub / f)
    return dest


def link_copy(src: Path, dest: Path) -> Path:
    """A Maildir copy made of hard links (instant at 65k; tools rename files, never rewrite them)."""
    for sub in ("cur", "new", "tmp"):
        (dest / sub).mkdir(parents=True)
        for f in os.listdir(src / sub) if (src / sub).is_dir() else ():
            os.link(src / sub / f, dest / sub / f)
    return dest


def rates(series, total: int) -> tuple[float, float]:
    """Messages/s over the first and the last 10% of the messages (from the progress samples, which
    move a batch at a time: each rate is taken between the samples around it). TOTAL is lowered to
    what over.sqlite3 ends with when copies made it hold fewer than the files."""
    points = [(t, n) for t, _a, n, _o in series if n is not None]
    total = min(total, max(n for _t, n in points))
    t1, n1 = next((t, n) for t, n in points if n >= total * 0.1)
    t9, n9 = [(t, n) for t, n in points if n <= total * 0.9][-1]
    tend = next(t for t, n in points if n >= total)
    return n1 / t1, (total - n9) / max(tend - t9, 1e-9)


def all_committed_at(series) -> float | None:
    """Seconds from the start until over.sqlite3 held its last message (what follows is closing work)."""
    final = max((n for _t, _a, n, _o in series if n is not None), default=None)
    return next((t for t, _a, n, _o in series if n is not None and n == final), None)


def anon_quarters(series, total: int, once: bool = False) -> list[float]:
    """Peak anonymous MB of lei-store's processes in each quarter of the messages (RssAnon summed,
    or with ONCE each page counted once: Pss_Anon summed)."""
    out = []
    for q in range(4):
        lo, hi = total * q / 4, total * (q + 1) / 4
        vals = [o if once else a for _t, a, n, o in series if n is not None and lo <= n <= hi]
        out.append(max(vals) / 2**20 if vals else 0.0)
    return out


def scale(args, env) -> None:
    """--scale DIR: each tool once on DIR's Maildir (build-scale.py's output), anonymous memory
    sampled every second; lei-store's rate over the first and last 10% and its memory by quarter."""
    source = args.scale / "maildir"
    if not source.is_dir():
        sys.exit(f"bench_import: {source}: not a Maildir (build one with ../shared/corpora/build-scale.py)")
    count = sum(len(os.listdir(source / s)) for s in ("cur", "new"))
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-scale-", dir=args.scale) as tmp:
        for tool in args.tools.split(","):
            if tool != "lei-store" and not shutil.which(tool):
                print(f"# {tool}: not installed, skipped", file=sys.stderr)
                continue
            work = Path(tmp) / tool
            work.mkdir()
            maildir = link_copy(source, work / "maildir")
            if tool == "lei-store":
                secs, rss, size, cpu = bench_lei_store(maildir, work, env, interval=1.0)
                sampler = LAST["lei-store"]
                first, last = rates(sampler.series, count)
                quarters = ", ".join(f"{x:.0f}" for x in anon_quarters(sampler.series, count))
                once = ", ".join(f"{x:.0f}" for x in anon_quarters(sampler.series, count, once=True))
                print(f"# lei-store: {secs:.0f}s; {first:.0f} msgs/s over the first 10%, {last:.0f} over the last; "
                      f"peak anonymous MB by quarter: {quarters} (each page counted once: {once})", file=sys.stderr)
                done = all_committed_at(sampler.series)
                if done is not None:
                    print(f"#   every message committed at {done:.0f}s; closing (git gc --auto) took the "
                          f"other {secs - done:.0f}s", file=sys.stderr)
                print(f"#   CPU seconds: {cpu:.1f} ({cpu_split(sampler)})", file=sys.stderr)
                for kind, peak in sorted(sampler.peak_by_kind.items(), key=lambda kv: -kv[1])[:6]:
                    print(f"#   peak anonymous MB of a '{kind}' process: {peak / 2**20:.0f}", file=sys.stderr)
            else:
                secs, rss, size, cpu = BENCHES[tool](maildir, work, env)
            peak_anon = (LAST[tool].peak_anon, LAST[tool].peak_pss_anon) if tool in LAST else (0, 0)
            rows.append((tool, count, secs, cpu, rss, peak_anon, size))
            print(f"# {tool}: {secs:.1f}s, {cpu:.1f} CPU s", file=sys.stderr)
            shutil.rmtree(work)
    base = rows[0] if rows and rows[0][0] == "lei-store" else None
    print("| tool | messages | seconds | CPU seconds | msgs/s | peak PSS MB | peak anon MB, RssAnon summed | "
          "peak anon MB, each page once | store MB | lei-store faster by |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for tool, n, secs, cpu, rss, (peak_anon, peak_once), size in rows:
        speed = f"{secs / base[2]:.2f}x" if base else ""
        print(f"| {tool} | {n} | {secs:.1f} | {cpu:.1f} | {n / secs:.0f} | {rss / 2**20:.0f} | {peak_anon / 2**20:.0f} "
              f"| {peak_once / 2**20:.0f} | {size / 2**20:.0f} | {speed} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--scale", type=Path, metavar="DIR",
                    help="run once on DIR/maildir (../shared/corpora/build-scale.py's output), sampling anonymous "
                    "memory and lei-store's rate over time")
    ap.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    ap.add_argument("--tools", default="lei-store,lei,notmuch,mu")
    ap.add_argument("--compare", action="append", default=[], metavar="NAME=CLI",
                    help="also time another checkout's lei-store, e.g. before=../old/.venv/bin/lei-store")
    ap.add_argument("--repeat", type=int, default=1, help="runs of each lei-store variant (median shown)")
    ap.add_argument("--sizes", default="", help="also run lei-store on the first N messages, e.g. 2500,5000")
    args = ap.parse_args()
    if args.scale:
        return scale(args, bench_env())
    if not args.corpus.exists():
        sys.exit(f"bench_import: {args.corpus} not found")
    env = bench_env()
    with tempfile.TemporaryDirectory(prefix="bench-import-") as tmp:
        tmp = Path(tmp)
        source = unpack(args.corpus, tmp)
        count = sum(len(os.listdir(source / s)) for s in ("cur", "new"))
        variants = {"lei-store": str(ROOT / ".venv" / "bin" / "lei-store")}
        variants.update(dict(c.split("=", 1) for c in args.compare))
        runs: dict[str, list[tuple[float, int, int, float]]] = {name: [] for name in variants}
        others = [t for t in args.tools.split(",") if t != "lei-store"]
        for i in range(args.repeat):  # interleaved: a slow minute of the machine hits every variant
            for name, cli in variants.items():
                if name == "lei-store" and "lei-store" not in args.tools.split(","):
                    continue
                work = tmp / f"run-{name}-{i}"
                work.mkdir()
                shutil.copytree(source, work / "maildir")
                runs[name].append(bench_lei_store(work / "maildir", work, env, cli))
                print(f"# {name} run {i + 1}: {runs[name][-1][0]:.1f}s, {runs[name][-1][3]:.1f} CPU s "
                      f"({cpu_split(LAST['lei-store'])})", file=sys.stderr)
                shutil.rmtree(work)
        rows = [(name if name == "lei-store" else f"lei-store ({name})", count, *median(r))
                for name, r in runs.items() if r]
        for tool in others:
            if not shutil.which(tool):
                print(f"# {tool}: not installed, skipped", file=sys.stderr)
                continue
            work = tmp / f"run-{tool}"
            work.mkdir()
            maildir = work / "maildir"
            shutil.copytree(source, maildir)
            secs, rss, size, cpu = BENCHES[tool](maildir, work, env)
            rows.append((tool, count, secs, rss, size, cpu))
            print(f"# {tool}: {secs:.1f}s, {cpu:.1f} CPU s", file=sys.stderr)
        for n in filter(None, args.sizes.split(",")):
            work = tmp / f"size-{n}"
            work.mkdir()
            secs, rss, size, cpu = bench_lei_store(subset(source, int(n), work / "maildir"), work, env)
            rows.append((f"lei-store ({n})", int(n), secs, rss, size, cpu))
        base = rows[0] if rows and rows[0][0] == "lei-store" else None
        print("| tool | messages | seconds | CPU seconds | msgs/s | peak PSS MB | store MB | lei-store faster by "
              "| CPU / lei-store's | memory / lei-store's |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for tool, n, secs, rss, size, cpu in rows:
            speed = f"{(base[1] / base[2]) / (n / secs):.2f}x" if base else ""
            cpu_ratio = f"{(cpu / n) / (base[5] / base[1]):.2f}x" if base else ""
            mem = f"{rss / base[3]:.2f}x" if base else ""
            print(f"| {tool} | {n} | {secs:.1f} | {cpu:.1f} | {n / secs:.0f} | {rss / 2**20:.0f} | {size / 2**20:.0f} "
                  f"| {speed} | {cpu_ratio} | {mem} |")


if __name__ == "__main__":
    main()
