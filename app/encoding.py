"""A Trace as plain JSON: numbers as they are, so ``curl | jq`` and any client just work."""

from __future__ import annotations

import base64
import csv
import io
import json
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


def _body(name: str, tr: Trace, encode: Any, probs: Any) -> dict[str, Any]:
    """A trace response with every gate array passed through ``encode(gate, array)``."""
    return {
        "model": name,
        "tokens": tr.tokens,
        "unknown": tr.unknown,
        "layers": [{g: encode(g, layer[g]) for g in tr.gates} for layer in tr.layers],
        "probs": probs,
    }


def trace_json(name: str, net: Network, tr: Trace, top_k: int) -> dict[str, Any]:
    """The response body of POST /api/trace."""
    return _body(name, tr, lambda g, a: a.tolist(), _top(net, tr, top_k))


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


#: Gates whose values lie in [0, 1] (sigmoids) and in [-1, 1] (tanh); the rest (c) are unbounded.
UNIT_GATES = {"f", "i", "o", "z", "r"}
SIGNED_GATES = {"c_tilde", "h", "h_tilde"}


def pack_range(a: np.ndarray, lo: float, hi: float) -> dict[str, Any]:
    """Values known to lie in [lo, hi] as uint16 steps over the range: 2 bytes a value, error ≤ (hi − lo) / 131070."""
    q = np.rint((a - lo) * (65535 / (hi - lo))).astype("<u2")
    return {"dtype": "u16", "lo": lo, "hi": hi, "shape": list(a.shape), "data": base64.b64encode(q.tobytes())}


def pack(name: str, a: np.ndarray) -> dict[str, Any]:
    """One (T, H) array in the compact form: 2 bytes a value, base64 (2.67 bytes a value on the wire).

    Bounded gates are uint16 steps over their range (error ≤ 7.7e-6 in [0, 1], 1.6e-5 in [-1, 1]);
    the unbounded cell state is float16 (relative error ≤ 4.9e-4), or float32 past float16's range:
    it is never clipped.
    """
    if name in UNIT_GATES:
        return pack_range(a, 0.0, 1.0)
    if name in SIGNED_GATES:
        return pack_range(a, -1.0, 1.0)
    big = a.size and float(np.abs(a).max()) >= 65000
    arr = a.astype("<f4" if big else "<f2")
    return {"dtype": "f32" if big else "f16", "shape": list(a.shape), "data": base64.b64encode(arr.tobytes())}


def top_compact(net: Network, tr: Trace, top_k: int) -> dict[str, Any] | None:
    """The top-k predictions per step, compact: ``tokens`` (T, k) strings and ``p`` packed in [0, 1]."""
    if tr.probs is None:
        return None
    idx, p = tr.top(top_k)  # (T, k) each
    labels = np.array(net.vocab or [str(j) for j in range(tr.probs.shape[1])], dtype=object)
    return {"k": idx.shape[1], "tokens": labels[idx].tolist(), "p": pack_range(p, 0.0, 1.0)}


def dumps_compact(body: dict[str, Any]) -> bytes:
    """JSON bytes of a compact body. The base64 blobs (bytes) are spliced in whole: base64 needs no
    escaping, and letting json.dumps scan megabytes of it would take most of the encode time."""
    blobs: list[bytes] = []

    def hold(packed: dict[str, Any]) -> dict[str, Any]:
        blobs.append(packed["data"])
        return {**packed, "data": f"\x00{len(blobs) - 1}\x00"}

    skeleton = {**body, "layers": [{g: hold(p) for g, p in layer.items()} for layer in body["layers"]]}
    if isinstance(body.get("probs"), dict):
        skeleton["probs"] = {**body["probs"], "p": hold(body["probs"]["p"])}
    parts = json.dumps(skeleton).encode().split(b"\\u0000")
    out = [parts[0]]
    for k in range(1, len(parts), 2):  # parts alternate: text, blob index, text, ...
        out += [blobs[int(parts[k])], parts[k + 1]]
    return b"".join(out)


def unpack(packed: dict[str, Any]) -> np.ndarray:
    """The inverse of ``pack`` (what the page does in JavaScript), for tests and clients."""
    raw = base64.b64decode(packed["data"])
    if packed["dtype"] == "u16":
        q = np.frombuffer(raw, "<u2").astype(np.float32)
        a = packed["lo"] + q * ((packed["hi"] - packed["lo"]) / 65535)
    else:
        a = np.frombuffer(raw, "<f2" if packed["dtype"] == "f16" else "<f4").astype(np.float32)
    return a.reshape(packed["shape"])


def trace_compact(name: str, net: Network, tr: Trace, top_k: int) -> dict[str, Any]:
    """POST /api/trace?encoding=compact: as ``trace_json`` with every gate array and the predictions packed."""
    return {**_body(name, tr, pack, top_compact(net, tr, top_k)), "encoding": "compact"}


def focus_json(tr: Trace, layer: int, unit: int, start: int) -> dict[str, Any]:
    """The exact values one unit carries through the diagram, from step ``start`` on (the page's numbers)."""
    lines = tr.unit(layer, unit)
    return {"layer": layer, "unit": unit, "from": start, "lines": {k: v[start:].tolist() for k, v in lines.items()}}
