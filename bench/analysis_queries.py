"""Query timings on a corpus index (issue 12's targets, on a 10-million-step index): called by bench/analysis.py.

probe_queries(index_path)   a probe of every unit of every layer and gate against a feature, streamed over the
                            index (target <= 10 s, with progress), and over 100,000 characters of current text
                            (target <= 0.5 s: the features and the ranking; the trace itself is timed beside it)
dashboard_queries(index_path)  a unit's dashboard (target <= 200 ms) and its top-k contexts (<= 100 ms): medians
                            over units spread over the layer (each unit's first ask; the layer and gate's
                            statistics read once, on the first ask, timed apart as "cold")

--tile SRC K builds INDEX first from a real index SRC (model.index of the code model, e.g. over its held-out
files: 1.17 M steps) repeated K times: its documents, tokens and statistics as they are (the statistics of K
copies are the copy's; positions point into the first), each part's shard files copied K times (copies, not
links: the page cache must hold every byte, as it would a real index's). Nine copies of the held-out index are
10.5 M steps of the model's real activations in a few minutes, where indexing 10 M characters takes ~40 min
here. --synthetic FILES... builds INDEX as model.index writes it over real files but with random walks for
activations (h = tanh of one): the dashboard's reads are the same; a probe of random walks times nothing
meaningful, so only the dashboard is timed then.

Run alone: ``python -m bench.analysis_queries INDEX [--model ID]`` (the model defaults to the index's own).
Figures are printed, never asserted. The compiled sums (model/analysis/sums.py) are loaded from numba's cache
(or compiled, the first time) before the timings: a server does that once.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

import model
from model.analysis import features as F
from model.analysis import probes as P
from model.analysis import sums
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
    t0 = time.perf_counter()
    sums.weighted_sum(np.zeros((2, 2), np.float16), np.ones(2, np.float32))  # the compiled sums, loaded once
    sums.moments(np.zeros((2, 4), np.float32)[:, :2], np.ones(2))
    sums.moments(np.zeros((2, 2), np.float32), np.ones(2))
    print(f"  compiled sums loaded in {time.perf_counter() - t0:.2f} s", file=sys.stderr)
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
    t1 = time.perf_counter()
    result = P.probe(tr, ty)  # the ranking and the best unit's curve, as POST /api/models/{id}/probe answers
    t2 = time.perf_counter()
    body = json.dumps(result, ensure_ascii=False, allow_nan=False, separators=(",", ":"))  # as the route encodes
    out["text_probe_s"], out["text_probe_cpu_s"] = time.perf_counter() - t0, time.process_time() - c0
    out["text_feature_s"], out["text_rank_s"], out["text_json_s"] = t1 - t0, t2 - t1, time.perf_counter() - t2
    out["text_json_bytes"] = len(body)
    ranked = P.rank(tr, ty)
    out["text_chars"], out["text_gates"], out["text_best"] = len(text), len(net.gates), ranked[0]
    t0 = time.perf_counter()
    P.linear(tr, ty, ranked)
    out["text_linear_s"] = time.perf_counter() - t0

    print(
        f"probe of every unit against {name!r}: index of {index.steps:,} steps × {len(index.gates)} gates: "
        f"{out['index_total_s']:.2f} s (feature {out['index_feature_s']:.2f} s, ranking {out['index_rank_s']:.2f} s, "
        f"{out['index_rank_cpu_s']:.2f} s CPU, {out['index_values_per_s'] / 1e6:.0f} M values/s; "
        "target <= 10 s at 10 M steps); "
        f"text of {len(text):,} characters × {len(net.gates)} gates: {out['text_probe_s']:.3f} s, "
        f"{out['text_probe_cpu_s']:.3f} s CPU (feature {out['text_feature_s']:.3f} s, ranking and curve "
        f"{out['text_rank_s']:.3f} s, JSON of {out['text_json_bytes'] / 1e6:.1f} MB {out['text_json_s']:.3f} s; "
        f"target <= 0.5 s; its trace {out['text_trace_s']:.2f} s, the linear probes {out['text_linear_s']:.2f} s); "
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


def tile_index(src: Any, out: Any, times: int) -> Index:
    """The index at ``src`` repeated ``times`` times into ``out`` (see the module's docstring), in its layout."""
    import zarr

    from model.analysis import index as index_mod
    from model.analysis.store import ATTR

    t0 = time.perf_counter()
    src, out = Path(src), Path(out)
    shutil.rmtree(out, ignore_errors=True)
    g = zarr.open_group(str(src), mode="r")
    info = dict(g.attrs[ATTR])
    S, P_, sources = int(info["steps"]), int(info["parts"]), list(info["sources"])
    docs, parts = np.asarray(g["docs/start"][:]), np.asarray(g["parts/start"][:])
    new = zarr.open_group(str(out), mode="w")
    new.attrs[ATTR] = info | {
        "steps": S * times,
        "docs": int(info["docs"]) * times,
        "parts": P_ * times,
        "chars": int(info["chars"]) * times,
        "sources": sources * times,
    }
    starts = lambda a: np.concatenate([a[:-1] + k * S for k in range(times)] + [[S * times]]).astype(np.int64)  # noqa: E731
    index_mod._array(new, "docs/start", starts(docs))
    index_mod._array(new, "parts/start", starts(parts))
    src_of = np.asarray(g["docs/source"][:], np.int64)
    index_mod._array(
        new, "docs/source", np.concatenate([src_of + k * len(sources) for k in range(times)]).astype(np.int32)
    )
    index_mod._array(new, "docs/line", np.tile(np.asarray(g["docs/line"][:]), times))
    tok = index_mod._sharded(new, "tokens", (S * times,), "int32", index_mod.TOKEN_SHARD, index_mod.TOKEN_INNER)
    tok[:] = np.tile(np.asarray(g["tokens"][:]), times)
    shutil.copytree(src / "stats", out / "stats")
    for k in range(int(info["layers"])):
        for gate in info["gates"]:
            new.require_group(f"act/{k}/{gate}")
            folder_src, folder = src / "act" / str(k) / gate, out / "act" / str(k) / gate
            for p in range(P_):
                for c in range(times):
                    shutil.copytree(folder_src / str(p), folder / str(p + c * P_))
    idx = Index.open(out)
    print(f"tiled index: {idx.steps:,} steps ({times} copies of {src}) in {time.perf_counter() - t0:.0f} s")
    return idx


def run(index_path: Any, net: model.Network | None = None) -> dict[str, Any]:
    """Every query's figures on the index at ``index_path`` (bench/analysis.py calls this)."""
    figures = probe_queries(str(index_path))
    figures["dashboard"] = dashboard_queries(index_path, net)
    return figures


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("index")
    ap.add_argument("--model", default=None)
    ap.add_argument("--units", type=int, default=8, help="units the dashboard is timed on")
    ap.add_argument("--synthetic", nargs="+", metavar="FILE", help="build a synthetic index over these files first")
    ap.add_argument("--chars", type=int, default=10_000_000, help="--synthetic: characters to read")
    ap.add_argument("--tile", nargs=2, metavar=("SRC", "K"), help="build INDEX as K copies of the index SRC first")
    args = ap.parse_args(argv)
    if args.tile:
        tile_index(args.tile[0], args.index, int(args.tile[1]))
    if args.synthetic:
        synthetic_index(args.index, args.synthetic, args.chars)
    else:
        figures = probe_queries(args.index, args.model)
        print({k: (round(v, 4) if isinstance(v, float) else v) for k, v in figures.items()})
    dashboard_queries(args.index, model.load(args.model) if args.model else None, units=args.units)


if __name__ == "__main__":
    main()
