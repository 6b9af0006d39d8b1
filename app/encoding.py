"""A Trace as plain JSON: numbers as they are, so ``curl | jq`` and any client just work."""

from __future__ import annotations

import csv
import io
from typing import Any

import numpy as np

from model import Network, Trace


def _top(net: Network, tr: Trace, top_k: int) -> list[list[dict[str, Any]]] | None:
    if tr.probs is None:
        return None
    idx, p = tr.top(top_k)
    labels = net.vocab or [str(j) for j in range(tr.probs.shape[1])]
    return [
        [{"token": labels[j], "p": float(q)} for j, q in zip(row_i, row_p, strict=True)]
        for row_i, row_p in zip(idx.tolist(), p.tolist(), strict=True)
    ]


def step_json(net: Network, tr: Trace, k: int, t: int, top_k: int) -> dict[str, Any]:
    """Step k of a (chunk) trace, labelled as step t of the whole: one line of the JSON Lines stream."""
    top = _top(net, tr, top_k)
    return {
        "t": t,
        "token": tr.tokens[k],
        "layers": [{g: layer[g][k].tolist() for g in tr.gates} for layer in tr.layers],
        "probs": top[k] if top is not None else None,
    }


def trace_json(name: str, net: Network, tr: Trace, top_k: int) -> dict[str, Any]:
    """The response body of POST /api/trace."""
    probs = _top(net, tr, top_k)
    return {
        "model": name,
        "tokens": tr.tokens,
        "unknown": tr.unknown,
        "layers": [{g: layer[g].tolist() for g in tr.gates} for layer in tr.layers],
        "probs": probs,
    }


def trace_csv(tr: Trace) -> str:
    """One row per layer × timestep × unit: layer, t, token, unit, then one column per gate."""
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(["layer", "t", "token", "unit", *tr.gates])
    for k, layer in enumerate(tr.layers):
        cols = [layer[g].tolist() for g in tr.gates]  # per gate: T lists of H
        for t, token in enumerate(tr.tokens):
            for u in range(len(cols[0][t])):
                w.writerow([k, t, token, u, *(repr(c[t][u]) for c in cols)])
    return out.getvalue()


def trace_npz(tr: Trace) -> bytes:
    """Arrays ``layer<k>/<gate>`` (T, H), ``tokens`` and, with a head, ``probs`` (T, V); no pickles."""
    arrays = {f"layer{k}/{g}": layer[g] for k, layer in enumerate(tr.layers) for g in tr.gates}
    arrays["tokens"] = np.array(tr.tokens, dtype=str)
    if tr.probs is not None:
        arrays["probs"] = tr.probs
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)  # type: ignore[arg-type]
    return buf.getvalue()
