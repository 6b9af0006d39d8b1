"""A Trace on the wire, in every form the API sends:

- plain JSON (``trace_json``, ``steps_json`` for the JSON Lines stream): numbers as they are, so
  ``curl | jq`` and any client just work;
- compact (``trace_compact`` + ``dumps_compact``): each gate array 2 bytes a value (``pack``), base64;
- binary (``dumps_binary``): the compact body without base64, arrays read in place by the page;
- downloads: ``trace_csv`` (a row per layer × step × unit) and ``trace_npz``;
- ``focus_json``: one unit's exact values on every line of the diagram (the numbers a person reads).
"""

from __future__ import annotations

import base64
import binascii
import csv
import io
import json
import struct
import zipfile
from collections.abc import Iterator
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


def steps_json(net: Network, tr: Trace, start: int, top_k: int) -> Iterator[dict[str, Any]]:
    """The lines of the JSON Lines stream for a chunk trace whose first step is step ``start`` of the
    whole: the chunk's top-k and its arrays' lists are computed once, then cut into a line per step."""
    top = _top(net, tr, top_k)
    layers = [{g: layer[g].tolist() for g in tr.gates} for layer in tr.layers]  # per layer: gate -> T lists
    for k, token in enumerate(tr.tokens):
        yield {
            "t": start + k,
            "token": token,
            "layers": [{g: rows[k] for g, rows in la.items()} for la in layers],
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


def series_values(net: Network, tr: Trace, body: dict[str, Any]) -> dict[str, Any]:
    """A values head's predictions, (T, K) lists under "values", for a body that lacks them (the core's
    Trace.values where it has them, else ``model.regression.predicted``'s); {} for any other head."""
    if "values" in body or getattr(net.spec, "head", None) != "values":
        return {}
    from model.regression import predicted

    return {"values": predicted(net, tr).tolist()}


def trace_json(name: str, net: Network, tr: Trace, top_k: int) -> dict[str, Any]:
    """The response body of POST /api/trace."""
    return _body(name, tr, lambda g, a: a.tolist(), _top(net, tr, top_k))


#: Values a piece of a streamed JSON or CSV body holds, about: each piece is one short C call, so a big
#: body never holds the interpreter for long and stops within a piece when its client leaves.
PIECE_VALUES = 1 << 16


def _rows(a: np.ndarray) -> Iterator[str]:
    """``json.dumps(a.tolist())`` in pieces of whole rows."""
    n = max(1, PIECE_VALUES // max(1, a[0].size if len(a) else 1))
    yield "["
    for t in range(0, len(a), n):
        yield (", " if t else "") + json.dumps(a[t : t + n].tolist())[1:-1]
    yield "]"


def iter_json(name: str, net: Network, tr: Trace, top_k: int) -> Iterator[str]:
    """``json.dumps(trace_json(...))`` in pieces of about PIECE_VALUES numbers (a streamed response)."""
    head = json.dumps({"model": name, "tokens": tr.tokens, "unknown": tr.unknown})
    yield head[:-1] + ', "layers": ['
    for k, layer in enumerate(tr.layers):
        yield ", {" if k else "{"
        for j, g in enumerate(tr.gates):
            yield (", " if j else "") + json.dumps(g) + ": "
            yield from _rows(layer[g])
        yield "}"
    yield '], "probs": '
    top = _top(net, tr, top_k)
    if top is None:
        yield "null"
    else:
        n = max(1, PIECE_VALUES // (4 * top_k))
        yield "["
        for t in range(0, len(top), n):
            yield (", " if t else "") + json.dumps(top[t : t + n])[1:-1]
        yield "]"
    yield "}"


def trace_csv(tr: Trace) -> str:
    """One row per layer × timestep × unit: layer, t, token, unit, then one column per gate."""
    return "".join(iter_csv(tr))


def iter_csv(tr: Trace) -> Iterator[str]:
    """``trace_csv`` a step at a time (a header, then a step's H rows per piece): a response streams it."""
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(["layer", "t", "token", "unit", *tr.gates])
    yield out.getvalue()
    for k, layer in enumerate(tr.layers):
        for t, token in enumerate(tr.tokens):
            out.seek(0)
            out.truncate()
            cols = [layer[g][t].tolist() for g in tr.gates]  # per gate: H values
            for u in range(len(cols[0])):
                w.writerow([k, t, token, u, *(repr(c[u]) for c in cols)])
            yield out.getvalue()


def plain_values(net: Network, steps: int) -> int:
    """How many numbers a trace of ``steps`` steps holds as plain JSON or CSV (gates of every layer)."""
    return steps * net.hidden_size * len(net.gates) * net.num_layers


def trace_npz(tr: Trace) -> bytes:
    """Arrays ``layer<k>/<gate>`` (T, H), ``tokens`` and, with a head, ``probs`` (T, V); no pickles."""
    return b"".join(iter_npz(tr))


class _Sink:
    """A write-only file that keeps what was written until it is taken (a zip written as it streams)."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []

    def write(self, b: bytes) -> int:
        self.parts.append(bytes(b))
        return len(b)

    def flush(self) -> None:
        pass

    def take(self) -> bytes:
        out, self.parts = b"".join(self.parts), []
        return out


def iter_npz(tr: Trace) -> Iterator[bytes]:
    """``trace_npz``'s archive as it is written, an array (compressed, level 1) per piece: ``np.load`` reads it."""
    arrays = {f"layer{k}/{g}": layer[g] for k, layer in enumerate(tr.layers) for g in tr.gates}
    arrays["tokens"] = np.array(tr.tokens, dtype=str)
    if tr.probs is not None:
        arrays["probs"] = tr.probs
    sink = _Sink()
    with zipfile.ZipFile(sink, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:  # type: ignore[call-overload]
        for name, a in arrays.items():
            with zf.open(name + ".npy", "w", force_zip64=a.nbytes > 1 << 30) as f:
                np.lib.format.write_array(f, np.ascontiguousarray(a), allow_pickle=False)
            yield sink.take()
    yield sink.take()  # the zip's directory


#: Gates whose values lie in [0, 1] (sigmoids) and in [-1, 1] (tanh); the rest (c) are unbounded.
UNIT_GATES = {"f", "i", "o", "z", "r"}
SIGNED_GATES = {"c_tilde", "h", "h_tilde"}


def pack_range(a: np.ndarray, lo: float, hi: float) -> dict[str, Any]:
    """Values known to lie in [lo, hi] as uint16 steps over the range: 2 bytes a value, error ≤ (hi − lo) / 131070."""
    buf = np.multiply(a, np.float32(65535 / (hi - lo)), dtype=np.float32)  # (T, H) steps above lo ...
    np.add(buf, np.float32(0.5 - lo * 65535 / (hi - lo)), out=buf)  # ... plus a half: truncation rounds
    q = buf.astype("<u2")  # (T, H)
    return {"dtype": "u16", "lo": lo, "hi": hi, "shape": list(a.shape), "data": q.data}


def pack(name: str, a: np.ndarray) -> dict[str, Any]:
    """One (T, H) array in the compact form: 2 bytes a value (as raw bytes in "data": ``dumps_compact``
    writes them in base64, 2.67 bytes a value, ``dumps_binary`` as they are).

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
    return {"dtype": "f32" if big else "f16", "shape": list(a.shape), "data": arr.data}


def top_compact(net: Network, tr: Trace, top_k: int) -> dict[str, Any] | None:
    """The top-k predictions per step, compact: ``tokens`` (T, k) strings and ``p`` packed in [0, 1]."""
    if tr.probs is None:
        return None
    idx, p = tr.top(top_k)  # (T, k) each
    labels = np.array(net.vocab or [str(j) for j in range(tr.probs.shape[1])], dtype=object)
    return {"k": idx.shape[1], "tokens": labels[idx].tolist(), "p": pack_range(p, 0.0, 1.0)}


def _skeleton(body: dict[str, Any], hold: Any) -> dict[str, Any]:
    """``body`` with every packed array's data replaced by ``hold(data)``."""
    skeleton = {**body, "layers": [{g: {**p, "data": hold(p["data"])} for g, p in la.items()} for la in body["layers"]]}
    if isinstance(body.get("probs"), dict):
        skeleton["probs"] = {**body["probs"], "p": {**body["probs"]["p"], "data": hold(body["probs"]["p"]["data"])}}
    return skeleton


def dumps_compact(body: dict[str, Any]) -> bytes:
    """JSON bytes of a compact body, each array's bytes in base64. The base64 is spliced in whole: it
    needs no escaping, and letting json.dumps scan megabytes of it would take most of the encode time."""
    blobs: list[Any] = []

    def hold(data: Any) -> str:
        blobs.append(data)
        return f"\x00{len(blobs) - 1}\x00"

    parts = json.dumps(_skeleton(body, hold)).encode().split(b"\\u0000")
    out = [parts[0]]
    for k in range(1, len(parts), 2):  # parts alternate: text, blob index, text, ...
        out += [binascii.b2a_base64(blobs[int(parts[k])], newline=False), parts[k + 1]]
    return b"".join(out)


#: The first bytes of a binary compact message.
MAGIC = b"GSC1"


def dumps_binary(body: dict[str, Any]) -> bytes:
    """A compact body with no base64: ``GSC1``, the JSON header's length (uint32, little-endian), the
    JSON header (padded with spaces to a multiple of 4 bytes), then the arrays' bytes. In the header
    each array's "data" is {"offset", "length"} in bytes from the end of the header; every offset is
    a multiple of 4, so a client reads each array in place (``new Uint16Array(buffer, start, n)``)."""
    blobs: list[Any] = []
    offset = 0

    def hold(data: Any) -> dict[str, int]:
        nonlocal offset
        n = memoryview(data).nbytes
        at, offset = offset, offset + n + (-n % 4)
        blobs.extend([data, b"\0" * (-n % 4)])
        return {"offset": at, "length": n}

    header = json.dumps(_skeleton(body, hold)).encode()
    header += b" " * (-len(header) % 4)
    return b"".join([MAGIC, struct.pack("<I", len(header)), header, *blobs])


def loads_binary(raw: bytes) -> dict[str, Any]:
    """The inverse of ``dumps_binary``, with each array's data as bytes (for tests and Python clients)."""
    if raw[:4] != MAGIC:
        raise ValueError("not a gatescope binary message (it does not start with GSC1)")
    (n,) = struct.unpack("<I", raw[4:8])
    body = json.loads(raw[8 : 8 + n])
    base = 8 + n
    grab = lambda p: {**p, "data": raw[base + p["data"]["offset"] : base + p["data"]["offset"] + p["data"]["length"]]}  # noqa: E731
    body["layers"] = [{g: grab(p) for g, p in la.items()} for la in body["layers"]]
    if isinstance(body.get("probs"), dict):
        body["probs"]["p"] = grab(body["probs"]["p"])
    return body


def unpack(packed: dict[str, Any]) -> np.ndarray:
    """The inverse of ``pack`` (what the page does in JavaScript), for tests and clients: "data" is
    base64 text (from ``dumps_compact``) or bytes (from ``loads_binary``)."""
    data = packed["data"]
    raw = base64.b64decode(data) if isinstance(data, str) else bytes(data)
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
