"""Query timings over a corpus index (the issue's targets on a 10-million-step index): a unit's dashboard
(<= 200 ms) and its top-k contexts (<= 100 ms). bench/analysis.py calls ``dashboard_queries(path)`` on the
index it built; run alone on any index:

    python bench/analysis_queries.py INDEX.zarr [--model code] [--units 8]

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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("index")
    ap.add_argument("--model", default=None, help="the model (default: the one the index names)")
    ap.add_argument("--units", type=int, default=8)
    a = ap.parse_args()
    dashboard_queries(a.index, model.load(a.model) if a.model else None, units=a.units)


if __name__ == "__main__":
    main()
