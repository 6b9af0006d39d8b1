"""What one unit does over a corpus: its dashboard, read from a corpus index (store.py).

For a layer, unit and gate the dashboard gathers, from the index's per-unit statistics:

    histogram   edges (bins + 1,), counts (bins,) of every stored value (np.histogram semantics)
    stats       mean, std, min, max, the deciles, and the share of steps saturated low / high
    top         the k highest peaks, one per document region (below), each a snippet of the corpus
    bottom      the k lowest, likewise
    bands       for each decile band j (deciles[j] <= v < deciles[j+1]), up to ``per_band`` sampled contexts
    pushes      for the last layer of a model with an output head, the direct effect of this unit's h on
                the outputs: row u of the head's weights, y = h_top @ W_head + b_head (model/heads.py), so a
                rise of 1 in h_u adds W_head[u, j] to output j (a logit for next/classes heads). The 10
                largest positive and negative weights, labelled by token, class or output name.

One context per document region (as Neuronpedia's and LSTMVis's lists): candidates are taken in the order
the index ranked them (top_pos, bottom_pos; a band's samples in the order they were drawn, the smallest
mix(pos) first); a candidate is dropped when an earlier kept one lies in the same document less than the
snippet's width (before + after + 1 steps) away, i.e. when their snippets would overlap.

Each context is the index's snippet (``Index.context``: tokens, the unit's values, the peak's place in it)
plus ``value`` (the value at the peak), ``t`` (the peak's step in its document) and ``doc_steps`` (the
document's length), so a caller can open the document at that step. Everything returned is plain JSON.
"""

from __future__ import annotations

import math
import os
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import InputError
from ..network import Network
from ..series import to_csv

if TYPE_CHECKING:
    from .store import Index

#: The tokens, classes or outputs listed each way in ``pushes``.
PUSHES = 10
#: Steps of a snippet before and after its peak.
BEFORE, AFTER = 40, 20
#: The most contexts asked for at once in each list (top, bottom) and per band.
MAX_K, MAX_PER_BAND = 100, 16
#: What "saturated" means per gate: below lo / above hi (the store's thresholds; C has none).
SATURATION = {"sigmoid": (0.1, 0.9), "tanh": (-0.9, 0.9)}
#: The gates whose values lie in [0, 1].
SIGMOID = ("f", "i", "o", "z", "r")

_MIX = np.uint64(0x9E3779B97F4A7C15)  # the store's sampling order: mix(pos) = pos * this mod 2**64


def dashboard(
    index: Index,
    net: Network | None,
    layer: int,
    unit: int,
    gate: str,
    k: int = 10,
    per_band: int = 3,
    before: int = BEFORE,
    after: int = AFTER,
) -> dict[str, Any]:
    """The dashboard of one unit (layer, unit, gate) over an index; ``net`` gives the head for the pushes
    (None: no pushes). Raises InputError naming what exists for a layer, unit or gate the index lacks."""
    st = _checked_stats(index, layer, unit, gate, k, per_band)
    width = before + after + 1

    def kept(candidates: np.ndarray, n: int) -> list[int]:
        return distinct(candidates, index.doc_of(np.maximum(candidates, 0)), n, width) if n else []

    deciles = np.asarray(st.deciles[unit], np.float64)  # (11,)
    lists = {"top": kept(np.asarray(st.top_pos[unit]), k), "bottom": kept(np.asarray(st.bottom_pos[unit]), k)}
    for j in range(10):
        samples = np.asarray(st.band_pos[unit, j])
        samples = samples[samples >= 0]
        order = np.argsort(samples.astype(np.uint64) * _MIX, kind="stable")  # the order they were drawn
        lists[f"band {j}"] = kept(samples[order], per_band)
    everything = [p for ps in lists.values() for p in ps]
    read = iter(read_contexts(index, everything, layer, gate, unit, before, after))  # one read for all of them
    shown = {name: [next(read) for _ in ps] for name, ps in lists.items()}
    bands = [
        {"band": j, "lo": float(deciles[j]), "hi": float(deciles[j + 1]), "contexts": shown[f"band {j}"]}
        for j in range(10)
    ]
    lo, hi = _thresholds(gate)
    vmin, vmax = float(st.min[unit]), float(st.max[unit])
    return {
        "model": index.info.get("model"),
        "layer": layer,
        "unit": unit,
        "gate": gate,
        "corpus": corpus(index),
        "scale": {"kind": scale_of(gate), "range": colour_range(gate, vmin, vmax)},
        "histogram": {"edges": _floats(st.edges[unit]), "counts": [int(c) for c in st.hist[unit]]},
        "stats": {
            "mean": _float(st.mean[unit]),
            "std": _float(st.std[unit]),
            "min": vmin,
            "max": vmax,
            "low": _float(st.low[unit]),
            "high": _float(st.high[unit]),
            "saturation": None if lo is None else {"lo": lo, "hi": hi},
            "deciles": _floats(deciles),
        },
        "k": k,
        "before": before,
        "after": after,
        "top": shown["top"],
        "bottom": shown["bottom"],
        "bands": bands,
        "pushes": pushes(net, layer, unit, gate) if net is not None else None,
    }


def top_contexts(
    index: Index,
    layer: int,
    unit: int,
    gate: str,
    k: int = 10,
    which: str = "top",
    before: int = BEFORE,
    after: int = AFTER,
) -> list[dict[str, Any]]:
    """The k highest (``which="top"``) or lowest ("bottom") peaks of a unit, one per document region, as contexts:
    the dashboard's lists alone."""
    if which not in ("top", "bottom"):
        raise InputError(f"which must be 'top' or 'bottom', got {which!r}")
    st = _checked_stats(index, layer, unit, gate, k, 0)
    cand = np.asarray((st.top_pos if which == "top" else st.bottom_pos)[unit])
    kept = distinct(cand, index.doc_of(np.maximum(cand, 0)), k, before + after + 1)
    return read_contexts(index, kept, layer, gate, unit, before, after)


def distinct(pos: np.ndarray, doc: np.ndarray, k: int, width: int) -> list[int]:
    """The first k positions of ``pos`` (in its order; -1 pads skipped) that keep one per document region:
    a position is dropped when a kept one lies in the same document (``doc``) less than ``width`` away."""
    kept: list[tuple[int, int]] = []  # (pos, doc)
    for p, d in zip(pos.tolist(), doc.tolist()):
        if p < 0 or any(d == kd and abs(p - kp) < width for kp, kd in kept):
            continue
        kept.append((p, d))
        if len(kept) == k:
            break
    return [p for p, _ in kept]


def pushes(net: Network, layer: int, unit: int, gate: str) -> dict[str, Any] | None:
    """The direct effect of unit's h on the head's outputs (row ``unit`` of head.W, (width, K)), for the last
    layer of a model with a head: the PUSHES largest positive weights (up) and most negative (down), each
    {"label", "weight"}; None when there is no head, the layer is not the last, or the gate's unit is not an
    h unit (a projected LSTM's C has H units, its h P)."""
    head = net.head
    if head is None or layer != net.num_layers - 1:
        return None
    W = net.params["head.W"]  # (width, K)
    if unit >= W.shape[0] or (net.spec.proj_size is not None and gate != "h"):
        return None
    w = np.asarray(W[unit], np.float64)  # (K,) d y_j / d h_unit
    labels = head.labels
    order = np.argsort(-w, kind="stable")  # (K,) largest first, ties by output index
    up = [{"label": labels[j], "weight": float(w[j])} for j in order if w[j] > 0][:PUSHES]
    down = [{"label": labels[j], "weight": float(w[j])} for j in order[::-1] if w[j] < 0][:PUSHES]
    what = {"next": "the next token's logits", "classes": "the class logits", "values": "the predicted values"}
    return {
        "kind": head.kind,
        "title": "direct effect on the logits" if head.softmax else "direct effect on the outputs",
        "note": (
            f"row {unit} of the output weights: a rise of 1 in h[{unit}] adds this much to {what[head.kind]} "
            "(the effect through later steps is not counted)"
        ),
        "of": "h",
        "up": up,
        "down": down,
    }


def corpus(index: Index) -> dict[str, Any]:
    """What the index covers: its name, documents, steps, sources (the first few), per and carry."""
    info = index.info
    sources = list(info.get("sources") or [])
    return {
        "name": os.path.basename(str(index.path).rstrip("/")).removesuffix(".zarr") or str(index.path),
        "docs": int(index.docs),
        "steps": int(index.steps),
        "sources": sources[:5],
        "n_sources": len(sources),
        "kind": info.get("kind"),
        "per": info.get("per"),
        "carry": bool(info.get("carry", False)),
    }


def document(index: Index, net: Network | None, doc: int, start: int | None = None, stop: int | None = None) -> dict:
    """An indexed document as a text box takes it: {"doc", "source", "line", "steps", "start", "stop", "text"}.
    Whole (``Index.text``), or its steps [start, stop) only (a snippet of a long document): a text model's
    tokens joined as its tokenizer splits them (characters and pieces as they are, words with a space), a
    vector model's rows as CSV (model/series.py)."""
    if not 0 <= doc < index.docs:
        raise InputError(f"the index has documents 0 to {index.docs - 1}, not {doc}")
    a, b = (int(x) for x in index.doc_starts[doc : doc + 2])
    n = b - a
    lo = 0 if start is None else start
    hi = n if stop is None else stop
    if not 0 <= lo < hi <= n:
        raise InputError(f"document {doc} has steps 0 to {n - 1}: start {lo}, stop {hi} is not a range of them")
    if index.kind != "text":
        text = to_csv(index.inputs(a + lo, a + hi))
    elif lo == 0 and hi == n:
        text = index.text(doc)
    else:
        words = net is not None and net.tokenizer is not None and net.spec.tokenizer == "word"
        text = (" " if words else "").join(index.tokens(a + lo, a + hi))
    return {"doc": doc, **index.source_of(doc), "steps": n, "start": lo, "stop": hi, "text": text}


def scale_of(gate: str) -> str:
    """The colour scale of a gate: "gate" (sigmoid, [0, 1]), "cell" (C, unbounded) or "signed" ([-1, 1])."""
    if gate in SIGMOID:
        return "gate"
    return "cell" if gate == "c" else "signed"


def colour_range(gate: str, vmin: float, vmax: float) -> list[float]:
    """The values a gate's colour scale spans: [0, 1], [-1, 1], or for C ±its largest |value| in the index."""
    kind = scale_of(gate)
    if kind == "gate":
        return [0.0, 1.0]
    if kind == "signed":
        return [-1.0, 1.0]
    m = max(abs(vmin), abs(vmax)) or 1.0
    return [-m, m]


def _checked_stats(index: Index, layer: int, unit: int, gate: str, k: int, per_band: int) -> Any:
    """The layer and gate's statistics, once layer, gate, unit, k and per_band are known to be good."""
    if not 0 <= layer < index.layers:
        raise InputError(f"layer {layer} is not in the index: it holds layers 0 to {index.layers - 1}")
    if gate not in index.gates:
        raise InputError(f"gate {gate!r} is not in the index: it holds {', '.join(index.gates)}")
    if not 1 <= k <= MAX_K:
        raise InputError(f"k must be 1 to {MAX_K} (contexts listed each way), got {k}")
    if not 0 <= per_band <= MAX_PER_BAND:
        raise InputError(f"per_band must be 0 to {MAX_PER_BAND} (contexts per decile band), got {per_band}")
    st = index.stats(layer, gate)
    units = int(np.asarray(st.mean).shape[0])  # a projected LSTM's h is narrower than its C
    if not 0 <= unit < units:
        raise InputError(f"unit {unit} is not in layer {layer}'s {gate}: it has units 0 to {units - 1}")
    return st


def _thresholds(gate: str) -> tuple[float | None, float | None]:
    kind = scale_of(gate)
    if kind == "cell":
        return None, None
    return SATURATION["sigmoid" if kind == "gate" else "tanh"]


def read_contexts(
    index: Index, positions: list[int], layer: int, gate: str, unit: int, before: int = BEFORE, after: int = AFTER
) -> list[dict[str, Any]]:
    """``Index.context`` of each position (plus "value", "t", "doc_steps"), read together: every step the snippets
    cover gathered once (``Index.unit_at``, ``Index.inputs_at``: each inner chunk of 1,024 steps read once, not
    once per snippet). Another Index-like reader (without those) is asked one context at a time."""
    if not positions:
        return []
    doc_starts = np.asarray(index.doc_starts)
    if not all(hasattr(index, n) for n in ("unit_at", "inputs_at")):
        one = [index.context(p, layer, gate, unit, before=before, after=after) for p in positions]
        return [_described(ctx, doc_starts) for ctx in one]
    pos = np.asarray(positions, np.int64)  # (n,)
    docs = index.doc_of(pos)  # (n,)
    a = np.maximum(doc_starts[docs], pos - before)  # (n,) each snippet clipped to its document
    b = np.minimum(doc_starts[docs + 1], pos + after + 1)  # (n,)
    rows = np.unique(np.concatenate([np.arange(x, y) for x, y in zip(a.tolist(), b.tolist())]))  # (R,) sorted
    values = _unit_at(index, layer, gate, unit, rows)  # (R,) float32
    tokens = _tokens_at(index, rows)  # R display strings
    out = []
    for p, d, x, y in zip(pos.tolist(), docs.tolist(), a.tolist(), b.tolist()):
        i, j = (int(v) for v in np.searchsorted(rows, [x, y]))
        ctx = {"doc": d, **index.source_of(d), "start": x, "stop": y, "pos": p, "tokens": tokens[i:j]}
        ctx.update(values=[float(v) for v in values[i:j].tolist()], peak=p - x)
        out.append(_described(ctx, doc_starts))
    return out


def _unit_at(index: Any, layer: int, gate: str, unit: int, rows: np.ndarray) -> np.ndarray:
    """One unit's values at sorted global steps ``rows`` (each inner chunk they fall in read once)."""
    W = index.gate_width(layer, gate)
    if not 0 <= unit < W:
        raise InputError(f"unit {unit} is not in layer {layer}'s {gate}: it has units 0 to {W - 1}")
    return np.asarray(index.unit_at(layer, gate, unit, rows), np.float32)


def _tokens_at(index: Any, rows: np.ndarray) -> list[str]:
    """The display strings of sorted global steps ``rows`` (each inner chunk of the tokens or inputs read once)."""
    if index.kind == "text":
        vocab = index.vocab or []
        return [vocab[i] for i in index.inputs_at(rows).tolist()]
    from ..network import vector_labels

    x = index.inputs_at(rows)  # (R, D)
    return vector_labels(x) if len(x) else []


def _described(ctx: dict[str, Any], doc_starts: np.ndarray) -> dict[str, Any]:
    """A context with its peak's value, its step in its document (t) and the document's length."""
    doc = int(ctx["doc"])
    ctx["value"] = _float(ctx["values"][ctx["peak"]])
    ctx["t"] = int(ctx["pos"]) - int(doc_starts[doc])
    ctx["doc_steps"] = int(doc_starts[doc + 1] - doc_starts[doc])
    return ctx


def _float(v: Any) -> float | None:
    """A JSON number, None for NaN."""
    f = float(v)
    return None if math.isnan(f) else f


def _floats(a: Any) -> list[float | None]:
    return [_float(v) for v in np.asarray(a, np.float64)]
