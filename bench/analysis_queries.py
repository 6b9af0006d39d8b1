"""Query timings over a corpus index (the issue's targets on a 10-million-step index): a unit's dashboard
(<= 200 ms) and its top-k contexts (<= 100 ms). bench/analysis.py calls ``dashboard_queries(path)`` on the
index it built; run alone on any index:

    python bench/analysis_queries.py INDEX.zarr [--model code] [--units 8]
    python bench/analysis_queries.py OUT.zarr --synthetic FILES... [--chars 10000000]   # build one, then time it

--synthetic builds an index of the code model over real files (their tokens, documents and layout as
model.index writes them) whose activations are random walks instead of the model's (h = tanh of one): the
queries read the same arrays in the same layout, and the 10-million-step store takes a minute, not an hour.

Each figure is the median over ``units`` units spread over the layer (each unit's first ask: nothing of that
unit is cached; the layer and gate's statistics are read once, on the first ask, and timed apart as "cold").
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

import numpy as np

import model
from model.analysis.dashboard import dashboard, top_contexts
from model.analysis.store import Index

#: The targets the issue sets (seconds).
TARGETS = {"dashboard": 0.200, "top_k": 0.100}


def dashboard_queries(index_path: Any, net: model.Network | None = None, units: int = 8, k: int = 10) -> dict:
    """Time a unit's dashboard and its top-k contexts on the index at ``index_path``; print and return the figures
    (seconds: cold = the first ask of a fresh reader, with the statistics read; then medians over ``units``)."""
    index = Index.open(index_path)
    if net is None:
        try:
            net = model.load(index.info["model"])
        except model.FormatError:
            net = None  # no head known: the pushes are left out, the rest is timed
    layer = index.layers - 1
    gate = "c" if "c" in index.gates else "h"
    W = index.gate_width(layer, gate)
    picks = [int(u) for u in np.linspace(0, W - 1, min(units, W)).round()]
    t0 = time.perf_counter()
    dashboard(index, net, layer, picks[0], gate, k=k)
    cold = time.perf_counter() - t0
    fresh = Index.open(index_path)  # another reader: each unit's first ask, statistics cached once
    fresh.stats(layer, gate)
    full, top = [], []
    for u in picks[1:] or picks:
        t0 = time.perf_counter()
        d = dashboard(fresh, net, layer, u, gate, k=k)
        full.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        top_contexts(fresh, layer, u, gate, k=k)
        top.append(time.perf_counter() - t0)
    n_ctx = len(d["top"]) + len(d["bottom"]) + sum(len(b["contexts"]) for b in d["bands"])
    out = {
        "steps": index.steps,
        "docs": index.docs,
        "width": W,
        "contexts": n_ctx,
        "cold": cold,
        "dashboard": statistics.median(full),
        "top_k": statistics.median(top),
    }
    print(f"index {index_path}: {index.steps:,} steps, {index.docs:,} documents, layer {layer} {gate}, {W} units")
    print(f"  dashboard, first ask (statistics read)   : {cold * 1e3:8.1f} ms")
    for name, label in (("dashboard", f"dashboard ({n_ctx} contexts)"), ("top_k", f"top-{k} contexts")):
        v, target = out[name], TARGETS[name]
        ok = "within" if v <= target else "OVER"
        print(f"  {label:40s} : {v * 1e3:8.1f} ms  median of {len(full)} units  ({ok} {target * 1e3:.0f} ms)")
    return out


def synthetic_index(out: Any, files: list[str], chars: int = 10_000_000, seed: int = 0) -> Index:
    """An index of the code model over ``files`` (whole files, up to ``chars`` characters) whose activations are
    random walks (c) and their tanh (h), written by model.index itself: the real layout, for timing queries."""
    from model.analysis import index as index_mod

    rng = np.random.default_rng(seed)
    picked, total = [], 0
    for f in files:
        n = len(open(f, encoding="utf-8", errors="replace").read())
        if n and total < chars:
            picked.append(f)
            total += n

    def walks(net: model.Network, docs: list[Any]) -> list[list[dict[str, np.ndarray]]]:
        out = []
        for d in docs:
            c = np.cumsum(rng.standard_normal((len(d), net.width), np.float32), axis=0)  # (T, W)
            c *= np.float32(0.05)
            out.append([{"c": c, "h": np.tanh(c)} for _ in range(net.num_layers)])
        return out

    real, part_bytes = index_mod._trace_part, index_mod.PART_BYTES
    index_mod._trace_part = walks  # the one call that traces (index.py): in this process (scheduler "sync")
    # parts of 1 GB (chunks stay CHUNK_ROWS rows): index v0 keeps every part's partial statistics (W x 65536
    # counts, 64 MB a gate at W = 128) until the end, 12 GB at 64 MB parts over 10 M steps
    index_mod.PART_BYTES = 1 << 30
    try:
        t0 = time.perf_counter()
        idx = index_mod.build(model.load("code"), picked, out, name="code", scheduler="sync")
    finally:
        index_mod._trace_part, index_mod.PART_BYTES = real, part_bytes
    print(f"synthetic index: {idx.steps:,} steps of {len(picked)} files in {time.perf_counter() - t0:.0f} s")
    return idx


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("index")
    ap.add_argument("--model", default=None, help="the model (default: the one the index names)")
    ap.add_argument("--units", type=int, default=8)
    ap.add_argument("--synthetic", nargs="+", metavar="FILE", help="build a synthetic index over these files first")
    ap.add_argument("--chars", type=int, default=10_000_000, help="--synthetic: characters to read")
    a = ap.parse_args()
    if a.synthetic:
        synthetic_index(a.index, a.synthetic, a.chars)
    dashboard_queries(a.index, model.load(a.model) if a.model else None, units=a.units)


if __name__ == "__main__":
    main()
