"""The corpus index's speed (issue 12), printed beside each target; `make bench` runs it, never `make test`.

Indexing, on the bundled `code` model over Python source (the standard library's own .py files: for 1 and 2 every
k-th of them in sorted order, about 2 M characters (BENCH_SAMPLE_CHARS); for 3 the files in sorted order, repeated
when the corpus must be longer than they are, which is said):
  1. characters/s of `build` in one process (batched traces, every part through the same task the cluster runs)
     against one `net.trace` at a time over the same documents: target >= 10x;
  2. 2 Dask workers against 1 (LocalCluster of processes; the cluster's start is not timed): target >= 1.7x;
  3. a 10-million-character corpus (BENCH_INDEX_CHARS to change it) in a process of its own: wall time and the
     peak RSS of the driver and of the largest worker (getrusage): target < 1 GB.
Medians of BENCH_REPEATS runs (default 3) for 1 and 2. Then the query timings other helpers add in
bench/analysis_queries.py (a function per query, called with the 10M-step index), if the file exists.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import model  # noqa: E402
from model.analysis.index import QUIET, build  # noqa: E402

REPEATS = int(os.environ.get("BENCH_REPEATS", "3"))
BIG_CHARS = int(os.environ.get("BENCH_INDEX_CHARS", str(10_000_000)))
SAMPLE_CHARS = int(os.environ.get("BENCH_SAMPLE_CHARS", str(2_000_000)))
STDLIB = Path(sysconfig.get_paths()["stdlib"])


def spread(chars: int) -> tuple[list[Path], int]:
    """Every k-th of the sorted stdlib .py files, k chosen for about ``chars`` characters: a sample across the
    library (the first files alone are one file in its 70%: _pydecimal.py, 229,202 of 328,169 characters, which
    no batch can share); and their total."""
    files, total = corpus(10**12)
    picked = files[:: max(1, total // chars)]
    return picked, sum(len(p.read_text("utf-8", errors="replace")) for p in picked)


def corpus(chars: int) -> tuple[list[Path], int]:
    """Sorted stdlib .py files (no tests, no site-packages) summing to at least ``chars`` characters or all of
    them; and their total."""
    files, total = [], 0
    for p in sorted(STDLIB.rglob("*.py")):
        if "site-packages" in p.parts or "test" in p.parts or "tests" in p.parts:
            continue
        files.append(p)
        total += len(p.read_text("utf-8", errors="replace"))
        if total >= chars:
            break
    return files, total


def median_time(fn, cpu: list[float] | None = None) -> float:
    """The median wall time of REPEATS calls; their median CPU time of this process appended to ``cpu``."""
    times, cpus = [], []
    for _ in range(REPEATS):
        t, c = time.perf_counter(), time.process_time()
        fn()
        times.append(time.perf_counter() - t)
        cpus.append(time.process_time() - c)
    if cpu is not None:
        cpu.append(statistics.median(cpus))
    return statistics.median(times)


def batched_vs_single(net, files: list[Path], chars: int, tmp: Path) -> None:
    texts = [p.read_text("utf-8") for p in files]

    def single() -> None:
        for t in texts:
            net.trace(t, probs=False)

    cpu: list[float] = []
    t_single = median_time(single, cpu)
    t_batch = median_time(lambda: build(net, files, tmp / "b.zarr", scheduler="sync", carry=True), cpu)
    print(
        f"indexing, one process: batched build {chars / t_batch:,.0f} chars/s (incl. writing and every statistic), "
        f"one net.trace at a time {chars / t_single:,.0f} chars/s: {t_single / t_batch:.2f}x (target >= 10x); "
        f"CPU s: single {cpu[0]:.1f}, build {cpu[1]:.1f} ({cpu[0] / cpu[1]:.2f}x)"
    )


def workers(net, files: list[Path], chars: int, tmp: Path) -> None:
    import dask
    from distributed import Client, LocalCluster

    got = {}
    for n in (1, 2):
        kw = dict(n_workers=n, threads_per_worker=1, processes=True, dashboard_address="127.0.0.1:0", host="127.0.0.1")
        with dask.config.set(QUIET), LocalCluster(**kw) as cluster, Client(cluster) as client:
            build(net, files[:2], tmp / f"warm{n}.zarr", scheduler=client, carry=True)  # each worker's kernels loaded
            out = tmp / f"w{n}.zarr"
            got[n] = median_time(lambda out=out, client=client: build(net, files, out, scheduler=client, carry=True))
    print(
        f"indexing on Dask: 1 worker {chars / got[1]:,.0f} chars/s, 2 workers {chars / got[2]:,.0f} chars/s: "
        f"{got[1] / got[2]:.2f}x (target >= 1.7x)"
    )


BIG = textwrap.dedent(
    """
    import json, resource, sys, time
    from pathlib import Path

    def main():
        import model
        from model.analysis.index import build
        files = [Path(p) for p in json.loads(Path(sys.argv[1]).read_text())]
        t = time.perf_counter()
        idx = build(model.load("code"), files, sys.argv[2], name="code", carry=True, workers=2)
        peak = lambda who: resource.getrusage(who).ru_maxrss / 1024
        # the driver's own peak since exec (its ru_maxrss starts at the RSS of the bench process it was forked from)
        hwm = lambda: int(next(l for l in open("/proc/self/status") if l.startswith("VmHWM")).split()[1]) / 1024
        print(json.dumps({"seconds": time.perf_counter() - t, "steps": idx.steps, "chars": idx.info["chars"],
                          "driver": hwm(), "workers": peak(resource.RUSAGE_CHILDREN)}))

    if __name__ == "__main__":
        main()
    """
)


def big(tmp: Path) -> Path:
    files, total = corpus(BIG_CHARS)
    repeat = 1
    while total * repeat < BIG_CHARS:
        repeat += 1
    listed = [str(p) for p in files] * repeat
    if repeat > 1:
        print(f"  (the stdlib's .py files hold {total:,} characters: repeated {repeat} times)")
    (tmp / "files.json").write_text(json.dumps(listed))
    (tmp / "big.py").write_text(BIG)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    out = tmp / "big.zarr"
    done = subprocess.run(
        [sys.executable, str(tmp / "big.py"), str(tmp / "files.json"), str(out)],
        capture_output=True,
        text=True,
        env=env,
        timeout=7200,
    )
    if done.returncode:
        print(done.stderr[-2000:])
        raise SystemExit(1)
    got = json.loads(done.stdout.strip().splitlines()[-1])
    size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    print(
        f"indexing {got['chars']:,} characters ({got['steps']:,} steps, carry, 2 workers): {got['seconds']:.0f} s "
        f"({got['chars'] / got['seconds']:,.0f} chars/s), store {size / 1e9:.2f} GB; peak RSS driver "
        f"{got['driver']:.0f} MB, largest worker {got['workers']:.0f} MB (target < 1 GB)"
    )
    return out


def main() -> None:
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", choices=["sync", "workers", "big"], help="run only 1 (sync), 2 (workers) or 3 (big)")
    only = ap.parse_args().only
    net = model.load("code")
    files, chars = spread(SAMPLE_CHARS)
    print(f"held-out Python: {len(files)} stdlib files, {chars:,} characters (every k-th file, sorted)")
    print(f"load average at the start: {os.getloadavg()[0]:.1f}")
    with tempfile.TemporaryDirectory(prefix="gatescope-bench-index-") as d:
        tmp = Path(d)
        if only in (None, "sync"):
            batched_vs_single(net, files, chars, tmp)
        if only in (None, "workers"):
            workers(net, files, chars, tmp)
        if only not in (None, "big"):
            print(f"load average at the end: {os.getloadavg()[0]:.1f}")
            return
        out = big(tmp)
        try:
            sys.path.insert(0, str(ROOT / "bench"))
            import analysis_queries  # type: ignore[import-not-found]
        except ImportError:
            print("query timings: bench/analysis_queries.py is not there yet")
        else:
            analysis_queries.run(out, net)


if __name__ == "__main__":
    main()
