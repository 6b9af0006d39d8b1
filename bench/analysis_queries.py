"""Query timings on a corpus index (issue 12's targets, on a 10-million-step index): called by bench/analysis.py.

probe_queries(index_path)   a probe of every unit of every layer and gate against a feature, streamed over the
                            index (target <= 10 s, with progress), and over 100,000 characters of current text
                            (target <= 0.5 s: the features and the ranking; the trace itself is timed beside it)

Run alone: ``python -m bench.analysis_queries INDEX [--model ID]`` (the model defaults to the index's own).
Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any

import model
from model.analysis import features as F
from model.analysis import probes as P
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


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("index")
    ap.add_argument("--model", default=None)
    args = ap.parse_args(argv)
    figures = probe_queries(args.index, args.model)
    print({k: (round(v, 4) if isinstance(v, float) else v) for k, v in figures.items()})


if __name__ == "__main__":
    main()
