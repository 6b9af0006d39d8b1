"""A Trace as plain JSON: numbers as they are, so ``curl | jq`` and any client just work."""

from __future__ import annotations

from typing import Any

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
