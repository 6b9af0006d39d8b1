"""A Trace as plain JSON: numbers as they are, so ``curl | jq`` and any client just work."""

from __future__ import annotations

from typing import Any

from model import Network, Trace


def trace_json(name: str, net: Network, tr: Trace, top_k: int) -> dict[str, Any]:
    """The response body of POST /api/trace."""
    probs = None
    if tr.probs is not None:
        idx, p = tr.top(top_k)
        labels = net.vocab or [str(j) for j in range(tr.probs.shape[1])]
        probs = [
            [{"token": labels[j], "p": float(q)} for j, q in zip(row_i, row_p)]
            for row_i, row_p in zip(idx.tolist(), p.tolist())
        ]
    return {
        "model": name,
        "tokens": tr.tokens,
        "unknown": tr.unknown,
        "layers": [{g: layer[g].tolist() for g in tr.gates} for layer in tr.layers],
        "probs": probs,
    }
