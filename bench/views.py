"""Speed of the views over a corpus (model/analysis/order.py, match.py): the clustering at W = 128 … 1024, the
streamed correlation and the pattern search in steps per second over (65536, W) float32 blocks, and the same over a
real index of the code model (built here from this repository's Python files, in this process). Prints figures;
asserts nothing."""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import model  # noqa: E402
from model.analysis import match, order  # noqa: E402
from model.analysis.index import build  # noqa: E402


def timed(fn, *args, repeat=3):
    best = np.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn(*args)
        best = min(best, time.perf_counter() - t0)
    return best, out


def main() -> None:
    rng = np.random.default_rng(0)
    print("clustering (average linkage, nearest-neighbour chain + leaf order):")
    for W in (128, 512, 1024):
        r, _ = order.correlation([rng.standard_normal((2000, W)).astype(np.float32)])
        s, _ = timed(order.similar_order, r, repeat=1 if W > 512 else 3)
        print(f"  W = {W:5d}: {s * 1e3:8.1f} ms")
    W, n, blocks = 128, 65536, 16
    X = (rng.standard_normal((n, W)) * 0.5).astype(np.float32)
    stream = [(k * n, X) for k in range(blocks)]
    S = n * blocks
    s, _ = timed(order.correlation, [b for _, b in stream])
    print(f"streamed correlation, W = {W}: {S / s / 1e6:.1f} M steps/s ({S:,} steps in {s:.2f} s)")
    units = list(range(0, W, 16))
    s, (runs, found) = timed(match.find_runs, stream, np.array([0, S]), units, 0.0, 4)
    print(f"pattern search, {len(units)} units: {S / s / 1e6:.1f} M steps/s ({found:,} runs)")
    net = model.load("code")
    files = sorted(str(p) for p in (Path(__file__).resolve().parents[1] / "model").rglob("*.py"))
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        idx = build(net, files, Path(tmp) / "code.zarr", scheduler="sync", carry=True)
        print(f"index of {len(files)} files of model/: {idx.steps:,} steps, built in {time.perf_counter() - t0:.1f} s")
        s, out = timed(order.index_order, idx, 0, "c", repeat=1)
        print(f"  order over the index (C, W = {idx.width}): {s:.2f} s ({idx.steps / s / 1e6:.2f} M steps/s)")
        h = idx.rows(0, "h", 0, 200)
        units = match.units_on(h, 20, 24, 0.3)
        t0 = time.perf_counter()
        runs, found = match.find_runs(idx.blocks(0, "h"), idx.doc_starts, units, 0.3, 4)
        s = time.perf_counter() - t0
        rate = idx.steps / s / 1e6
        print(f"  match over the index ({len(units)} units): {s:.2f} s, {found:,} runs ({rate:.2f} M steps/s)")


if __name__ == "__main__":
    main()
