"""Query timings on a corpus index (issue 12's targets, on a 10-million-step index): called by bench/analysis.py.

probe_queries(index_path)   a probe of every unit of every layer and gate against a feature, streamed over the
                            index (target <= 10 s, with progress), and over 100,000 characters of current text
                            (target <= 0.5 s: the features and the ranking; the trace itself is timed beside it)
dashboard_queries(index_path)  a unit's dashboard (target <= 200 ms) and its top-k contexts (<= 100 ms): medians
                            over units spread over the layer (each unit's first ask; the layer and gate's
                            statistics read once, on the first ask, timed apart as "cold")

--synthetic FILES... builds OUT (the index argument) first: an index of the code model over real files (their
tokens, documents and layout as model.index writes them) whose activations are random walks instead of the
model's (h = tanh of one): the queries read the same arrays in the same layout, and a 10-million-step store takes
half an hour on this machine, not hours (then only the dashboard's figures are taken: a probe of random walks
would time nothing meaningful).

Run alone: ``python -m bench.analysis_queries INDEX [--model ID]`` (the model defaults to the index's own).
Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from typing import Any

import numpy as np

import model
from model.analysis import features as F
from model.analysis import probes as P
from model.analysis.dashboard import dashboard, top_contexts
from model.analysis.store import Index

#: Characters of the "current text" probe.
TEXT_CHARS = 100_000


def _text(index: Index, chars: int) -> str:
    """About ``chars`` characters of the index's own documents, joined (a text the model reads)."""
    out, n, doc = [], 0, 0
    while n < chars and doc < index.docs:
        out.append(index.text(doc))
        n, doc = n + len(out[-1]), doc + 1
    text = "".join(out)
    return (text * (chars // max(len(text), 1) + 1))[:chars]


def _feature_name(net: model.Network) -> str:
    names = F.features_for(net)
    return "depth" if "depth" in names else "position_in_line"  # generic: vectorized over the whole index


def probe_queries(index_path: str, model_id: str | None = None, progress: bool = True) -> dict[str, Any]:
    """Time a probe of every unit against a built-in feature over the index at ``index_path`` and over
    ``TEXT_CHARS`` characters of text; returns the figures (seconds, steps per second) and prints them."""
    index = Index.open(index_path)
    net = model.load(model_id or index.info["model"])
    name = _feature_name(net)
    out: dict[str, Any] = {"steps": index.steps, "docs": index.docs, "gates": list(index.gates), "feature": name}

    t0 = time.perf_counter()
    tokens = F.Tokens.of_index(net, index)
    y = F.values(name, tokens, python=F.task_of(net) == "code")
    out["index_feature_s"] = time.perf_counter() - t0
    last = [0.0]

    def show(done: int, total: int) -> None:
        now = time.perf_counter()
        if progress and (now - last[0] > 1 or done == total):
            last[0] = now
            print(f"  probe: {done / total:6.1%} of {total:,} unit-gate steps read", file=sys.stderr)

    t0, c0 = time.perf_counter(), time.process_time()
    ranking = P.rank(index, y, progress=show)
    out["index_rank_s"], out["index_rank_cpu_s"] = time.perf_counter() - t0, time.process_time() - c0
    out["index_total_s"] = out["index_feature_s"] + out["index_rank_s"]
    values = sum(index.steps * index.gate_width(k, g) for k in range(index.layers) for g in index.gates)
    out["index_values_per_s"] = values / out["index_rank_s"]  # one unit at one step of one gate: a value
    out["index_best"] = ranking[0]

    text = _text(index, TEXT_CHARS)
    t0 = time.perf_counter()
    tr = net.trace(text, probs=False)
    out["text_trace_s"] = time.perf_counter() - t0
    t0, c0 = time.perf_counter(), time.process_time()
    ty = F.values(name, F.Tokens.of_trace(net, tr), python=F.task_of(net) == "code")
    ranked = P.rank(tr, ty)
    out["text_probe_s"], out["text_probe_cpu_s"] = time.perf_counter() - t0, time.process_time() - c0
    out["text_chars"], out["text_gates"], out["text_best"] = len(text), len(net.gates), ranked[0]
    t0 = time.perf_counter()
    P.linear(tr, ty, ranked)
    out["text_linear_s"] = time.perf_counter() - t0

    print(
        f"probe of every unit against {name!r}: index of {index.steps:,} steps × {len(index.gates)} gates: "
        f"{out['index_total_s']:.2f} s (feature {out['index_feature_s']:.2f} s, ranking {out['index_rank_s']:.2f} s, "
        f"{out['index_rank_cpu_s']:.2f} s CPU, {out['index_values_per_s'] / 1e6:.0f} M values/s; "
        "target <= 10 s at 10 M steps); "
        f"text of {len(text):,} characters × {len(net.gates)} gates: {out['text_probe_s']:.3f} s "
        f"(target <= 0.5 s; its trace {out['text_trace_s']:.2f} s, the linear probes {out['text_linear_s']:.2f} s); "
        f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
    )
    return out


#: The dashboard targets the issue sets (seconds).
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

    def walks(net: model.Network, docs: list[Any], *_: Any) -> list[list[dict[str, np.ndarray]]]:
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


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("index")
    ap.add_argument("--model", default=None)
    ap.add_argument("--units", type=int, default=8, help="units the dashboard is timed on")
    ap.add_argument("--synthetic", nargs="+", metavar="FILE", help="build a synthetic index over these files first")
    ap.add_argument("--chars", type=int, default=10_000_000, help="--synthetic: characters to read")
    args = ap.parse_args(argv)
    if args.synthetic:
        synthetic_index(args.index, args.synthetic, args.chars)
    else:
        figures = probe_queries(args.index, args.model)
        print({k: (round(v, 4) if isinstance(v, float) else v) for k, v in figures.items()})
    dashboard_queries(args.index, model.load(args.model) if args.model else None, units=args.units)


if __name__ == "__main__":
    main()
