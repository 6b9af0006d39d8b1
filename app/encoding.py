"""A Trace on the wire, in every form the API sends:

- plain JSON (``trace_json``, ``steps_json`` for the JSON Lines stream): numbers as they are, so
  ``curl | jq`` and any client just work;
- compact (``trace_compact`` + ``dumps_compact``): each gate array 2 bytes a value (``pack``), base64;
- binary (``dumps_binary``): the compact body without base64, arrays read in place by the page;
- downloads: ``trace_csv`` (a row per layer × step × unit) and ``trace_npz``;
- ``focus_json``: one unit's exact values on every line of the diagram (the numbers a person reads).

Every form says what the model's output is (``output``: its kind, the steps that count, the labels of
a classes or values head) and carries it: ``probs`` the top-k next tokens or the labelled class
probabilities (every class, up to ``MAX_CLASSES``), ``values`` a regression head's outputs, ``targets``
what it should have output where known (a request's, or the input column the model's meta names).
"""

from __future__ import annotations

import base64
import binascii
import csv
import io
import json
import math
import struct
import zipfile
from collections.abc import Iterator
from typing import Any

import numpy as np

from model import Head, Network, Trace
from model.interventions import Effect

#: A classes head sends every class's probability at every step up to this many classes (else the top k).
MAX_CLASSES = 64


def _k(tr: Trace, top_k: int) -> int:
    """How many outputs a step's ``probs`` lists: the top k next tokens, or every class (up to MAX_CLASSES)."""
    K = 0 if tr.probs is None else tr.probs.shape[1]
    return min(K, MAX_CLASSES) if tr.head_kind == "classes" and K <= MAX_CLASSES else top_k


def output_of(head: Head | None) -> dict[str, Any] | None:
    """A network's head as the card and the stream's header give it (as ``output_json``)."""
    if head is None:
        return None
    labels = None if head.kind == "next" else list(head.labels)
    return {"kind": head.kind, "at": head.at, "size": head.size, "labels": labels}


def output_json(tr: Trace) -> dict[str, Any] | None:
    """What the trace's output is: {"kind", "at", "size", "labels"} (labels: classes and values only: a
    next-token head's are the vocabulary), or None for a model without an output head."""
    if tr.head_kind is None or tr.labels is None:
        return None
    labels = None if tr.head_kind == "next" else tr.labels
    return {"kind": tr.head_kind, "at": tr.head_at, "size": len(tr.labels), "labels": labels}


def _rows_or_none(a: np.ndarray | None) -> list[list[float | None]] | None:
    """A (T, K) array as lists, NaN (not known) as null."""
    if a is None:
        return None
    if np.isnan(a).any():
        return [[None if v != v else v for v in row] for row in a.tolist()]
    return a.tolist()


def _shown_vocab(net: Network, tr: Trace) -> list[str] | None:
    """The vocabulary as text, for a next-token head over subword pieces ("Ġthe" -> " the"), else None."""
    if net.tokenizer is None or tr.head_kind != "next":
        return None
    return net.tokenizer.vocab_display()


def display_of(x: Any) -> dict[str, Any]:
    """``{"display": [...]}`` for a trace or an encoded text whose tokens are subword pieces, else ``{}``:
    the text each piece stands for, which the page shows (the tokens stay the pieces, exactly)."""
    display = getattr(x, "display", None)
    return {} if display is None else {"display": display}


def _top(net: Network, tr: Trace, top_k: int) -> list[list[dict[str, Any]]] | None:
    if tr.probs is None:
        return None
    idx, p = tr.top(_k(tr, top_k))
    labels = tr.labels or [str(j) for j in range(tr.probs.shape[1])]  # the vocabulary, or the class names
    shown = _shown_vocab(net, tr)
    if shown is not None:
        return [
            [{"token": labels[j], "display": shown[j], "p": float(q)} for j, q in zip(row_i, row_p, strict=True)]
            for row_i, row_p in zip(idx.tolist(), p.tolist(), strict=True)
        ]
    return [
        [{"token": labels[j], "p": float(q)} for j, q in zip(row_i, row_p, strict=True)]
        for row_i, row_p in zip(idx.tolist(), p.tolist(), strict=True)
    ]


def steps_json(
    net: Network, tr: Trace, start: int, top_k: int, targets: np.ndarray | None = None
) -> Iterator[dict[str, Any]]:
    """The lines of the JSON Lines stream for a chunk trace whose first step is step ``start`` of the
    whole: the chunk's top-k and its arrays' lists are computed once, then cut into a line per step.
    ``targets``: the chunk's rows of what a values head should output (NaN: not known)."""
    top = _top(net, tr, top_k)
    layers = [{g: layer[g].tolist() for g in tr.gates} for layer in tr.layers]  # per layer: gate -> T lists
    values, want = _rows_or_none(tr.values), _rows_or_none(targets)
    for k, token in enumerate(tr.tokens):
        line = {
            "t": start + k,
            "token": token,
            "layers": [{g: rows[k] for g, rows in la.items()} for la in layers],
            "probs": top[k] if top is not None else None,
            "values": values[k] if values is not None else None,
        }
        if tr.display is not None:
            line["display"] = tr.display[k]
        if want is not None:
            line["targets"] = want[k]
        yield line


def _body(name: str, tr: Trace, encode: Any, probs: Any, values: Any, targets: Any) -> dict[str, Any]:
    """A trace response with every gate array passed through ``encode(gate, array)``."""
    return {
        "model": name,
        "tokens": tr.tokens,
        **display_of(tr),
        "unknown": tr.unknown,
        "directions": list(tr.directions),
        "layers": [{g: encode(g, layer[g]) for g in tr.gates} for layer in tr.layers],
        "probs": probs,
        "output": output_json(tr),
        "values": values,
        "targets": targets,
    }


def trace_json(name: str, net: Network, tr: Trace, top_k: int, targets: np.ndarray | None = None) -> dict[str, Any]:
    """The response body of POST /api/trace."""
    values, want = _rows_or_none(tr.values), _rows_or_none(targets)
    return _body(name, tr, lambda g, a: a.tolist(), _top(net, tr, top_k), values, want)


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


def iter_json(
    name: str,
    net: Network,
    tr: Trace,
    top_k: int,
    targets: np.ndarray | None = None,
    effect: Effect | None = None,
) -> Iterator[str]:
    """``json.dumps(trace_json(...))`` in pieces of about PIECE_VALUES numbers (a streamed response); with
    ``effect``, the trace's ``intervened`` and the effect follow (``effect_json``, its layers in pieces)."""
    fields = {"model": name, "tokens": tr.tokens, **display_of(tr), "unknown": tr.unknown}
    head = json.dumps({**fields, "directions": list(tr.directions)})
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
        n = max(1, PIECE_VALUES // (4 * _k(tr, top_k)))
        yield "["
        for t in range(0, len(top), n):
            yield (", " if t else "") + json.dumps(top[t : t + n])[1:-1]
        yield "]"
    yield ', "output": ' + json.dumps(output_json(tr))
    for key, a in (("values", tr.values), ("targets", targets)):
        yield f', "{key}": '
        if a is None:
            yield "null"
        else:  # small (K values a step): whole
            yield json.dumps(_rows_or_none(a))
    if effect is not None:
        yield ', "intervened": ' + json.dumps(intervened_json(tr))
        small = effect_json(net, tr, effect, top_k, layers=False)
        yield ', "effect": ' + json.dumps(small)[:-1] + ', "layers": ['
        for k, layer in enumerate(effect.layers):
            yield ", {" if k else "{"
            for j, g in enumerate(tr.gates):
                yield (", " if j else "") + json.dumps(g) + ": "
                yield from _rows(layer[g])
            yield "}"
        yield "]}"
    yield "}"


def trace_csv(tr: Trace, targets: np.ndarray | None = None) -> str:
    """One row per layer × timestep × unit: layer, t, token, unit, its direction, then one column per gate;
    then, for a classes head, ``p(<label>)`` per class, for a values head ``pred(<label>)`` (and
    ``target(<label>)`` where targets are known) per output: the step's outputs, on each of its rows."""
    return "".join(iter_csv(tr, targets))


def _output_columns(tr: Trace, targets: np.ndarray | None) -> tuple[list[str], np.ndarray | None]:
    """The CSV's head columns and their (T, n) values: classes and values heads (a next-token head's
    vocabulary-wide distribution is in the JSON and NPZ forms, not a column per token)."""
    labels = tr.labels or []
    if tr.head_kind == "classes" and tr.probs is not None:
        return [f"p({s})" for s in labels], tr.probs
    if tr.head_kind == "values" and tr.values is not None:
        if targets is None:
            return [f"pred({s})" for s in labels], tr.values
        both = np.concatenate([tr.values, np.asarray(targets, tr.values.dtype)], axis=1)  # (T, 2K)
        return [f"pred({s})" for s in labels] + [f"target({s})" for s in labels], both
    return [], None


def iter_csv(tr: Trace, targets: np.ndarray | None = None) -> Iterator[str]:
    """``trace_csv`` a step at a time (a header, then a step's H rows per piece): a response streams it."""
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    names, head = _output_columns(tr, targets)
    w.writerow(["layer", "t", "token", "unit", "direction", *tr.gates, *names])
    yield out.getvalue()
    ways = [tr.direction_of(u) for u in range(tr.layers[0]["h"].shape[1])] if tr.layers else []
    for k, layer in enumerate(tr.layers):
        for t, token in enumerate(tr.tokens):
            out.seek(0)
            out.truncate()
            cols = [layer[g][t].tolist() for g in tr.gates]  # per gate: H values
            extra = [] if head is None else ["" if v != v else repr(v) for v in head[t].tolist()]  # NaN: empty
            for u in range(len(cols[0])):
                w.writerow([k, t, token, u, ways[u], *(repr(c[u]) for c in cols), *extra])
            yield out.getvalue()


def plain_values(net: Network, steps: int) -> int:
    """How many numbers a trace of ``steps`` steps holds as plain JSON or CSV (gates of every layer, and
    a classes or values head's outputs, repeated on each unit's CSV row)."""
    head = net.head
    K = head.size * (2 if head.kind == "values" else 1) if head is not None and head.kind != "next" else 0
    return steps * net.width * (len(net.gates) + K) * net.num_layers


def trace_npz(tr: Trace, targets: np.ndarray | None = None) -> bytes:
    """Arrays ``layer<k>/<gate>`` (T, H) ((T, 2H) bidirectional), ``tokens`` (``display`` for subword pieces),
    ``directions`` (each block of H units' direction); with a head ``head`` (its kind), ``head_at``, ``labels``
    (K,) and ``probs`` (T, K: next tokens or classes) or ``values`` (T, K: regression), and ``targets`` (T, K,
    NaN where not known) when known; no pickles."""
    return b"".join(iter_npz(tr, targets))


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


def iter_npz(tr: Trace, targets: np.ndarray | None = None) -> Iterator[bytes]:
    """``trace_npz``'s archive as it is written, an array (compressed, level 1) per piece: ``np.load`` reads it."""
    arrays = {f"layer{k}/{g}": layer[g] for k, layer in enumerate(tr.layers) for g in tr.gates}
    arrays["tokens"] = np.array(tr.tokens, dtype=str)
    if tr.display is not None:
        arrays["display"] = np.array(tr.display, dtype=str)
    arrays["directions"] = np.array(tr.directions, dtype=str)
    if tr.head_kind is not None:
        arrays["head"], arrays["head_at"] = np.array(tr.head_kind, dtype=str), np.array(tr.head_at, dtype=str)
        arrays["labels"] = np.array(tr.labels or [], dtype=str)
    if tr.probs is not None:
        arrays["probs"] = tr.probs
    if tr.values is not None:
        arrays["values"] = tr.values
    if targets is not None:
        arrays["targets"] = np.asarray(targets)
    sink = _Sink()
    with zipfile.ZipFile(sink, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:  # type: ignore[call-overload]
        for name, a in arrays.items():
            with zf.open(name + ".npy", "w", force_zip64=a.nbytes > 1 << 30) as f:
                np.lib.format.write_array(f, a if a.flags.c_contiguous else np.ascontiguousarray(a), allow_pickle=False)
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
    """The top-k predictions per step (every class of a classes head, up to MAX_CLASSES), compact:
    ``tokens`` (T, k) strings (next tokens or class names) and ``p`` packed in [0, 1]."""
    if tr.probs is None:
        return None
    idx, p = tr.top(_k(tr, top_k))  # (T, k) each
    labels = np.array(tr.labels or [str(j) for j in range(tr.probs.shape[1])], dtype=object)
    out = {"k": idx.shape[1], "tokens": labels[idx].tolist(), "p": pack_range(p, 0.0, 1.0)}
    shown = _shown_vocab(net, tr)
    if shown is not None:
        out["display"] = np.array(shown, dtype=object)[idx].tolist()  # (T, k) the pieces as text
    return out


def _skeleton(body: dict[str, Any], hold: Any) -> dict[str, Any]:
    """``body`` with every packed array's data replaced by ``hold(data)``."""
    skeleton = {**body, "layers": [{g: {**p, "data": hold(p["data"])} for g, p in la.items()} for la in body["layers"]]}
    if isinstance(body.get("probs"), dict):
        skeleton["probs"] = {**body["probs"], "p": {**body["probs"]["p"], "data": hold(body["probs"]["p"]["data"])}}
    for key in PACKED_OUTPUTS:
        if isinstance(body.get(key), dict):
            skeleton[key] = {**body[key], "data": hold(body[key]["data"])}
    if isinstance(body.get("effect"), dict):
        skeleton["effect"] = _held_arrays(body["effect"], lambda p: {**p, "data": hold(p["data"])})
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


#: The first bytes of one part of a binary message sent in parts (WS /api/live?parts=1).
PART_MAGIC = b"GSP1"
#: Largest part of a binary message sent in parts: the browser reads each message in one main-thread task
#: (~20 ms a MB), so a 15 MB reply in one message is a ~300 ms task and in 1 MB parts none over ~20 ms.
PART_BYTES = 1 << 20


def split_parts(raw: bytes, size: int = PART_BYTES) -> list[bytes]:
    """A binary message as parts of at most ``size`` bytes of it each: ``GSP1``, the part's index and the
    number of parts (uint32 each, little-endian), then the bytes. Joined in order they are ``raw`` again."""
    count = max(1, -(-len(raw) // size))
    view = memoryview(raw)
    return [PART_MAGIC + struct.pack("<II", k, count) + view[k * size : (k + 1) * size] for k in range(count)]


def join_parts(parts: list[bytes]) -> bytes:
    """The inverse of ``split_parts`` (for tests and Python clients): the parts' bytes in index order."""
    heads = [struct.unpack("<II", p[4:12]) for p in parts]
    if any(p[:4] != PART_MAGIC for p in parts) or sorted(k for k, _ in heads) != list(range(len(parts))):
        raise ValueError("not a complete set of gatescope message parts (GSP1, indices 0 to count - 1)")
    if any(n != len(parts) for _, n in heads):
        raise ValueError("the parts disagree on how many there are")
    return b"".join(p[12:] for _, p in sorted(zip(heads, parts, strict=True), key=lambda h: h[0][0]))


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
    for key in PACKED_OUTPUTS:
        if isinstance(body.get(key), dict):
            body[key] = grab(body[key])
    if isinstance(body.get("effect"), dict):
        body["effect"] = _held_arrays(body["effect"], grab)
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


#: A compact body's head arrays, packed as float32 (exact: a forecast is read as a number), NaN where not known.
PACKED_OUTPUTS = ("values", "targets")


def pack_f32(a: np.ndarray | None) -> dict[str, Any] | None:
    """A (T, K) array as float32 in the compact form (NaN kept: a target not known yet)."""
    if a is None:
        return None
    arr = np.ascontiguousarray(a, "<f4")
    return {"dtype": "f32", "shape": list(arr.shape), "data": arr.data}


def trace_compact(name: str, net: Network, tr: Trace, top_k: int, targets: np.ndarray | None = None) -> dict[str, Any]:
    """POST /api/trace?encoding=compact: as ``trace_json`` with every gate array and the predictions packed."""
    body = _body(name, tr, pack, top_compact(net, tr, top_k), pack_f32(tr.values), pack_f32(targets))
    return {**body, "encoding": "compact"}


def focus_json(tr: Trace, layer: int, unit: int, start: int) -> dict[str, Any]:
    """The exact values one unit carries through the diagram, from step ``start`` on (the page's numbers)."""
    lines = tr.unit(layer, unit)
    return {"layer": layer, "unit": unit, "from": start, "lines": {k: v[start:].tolist() for k, v in lines.items()}}


def intervened_json(tr: Trace) -> list[dict[str, Any]]:
    """What a trace's interventions held, as run (``from``/``to`` resolved, ``to`` exclusive)."""
    return [it.to_dict() for it in tr.intervened]


def _nulls(a: np.ndarray | None) -> list[float | None] | None:
    """A (T,) array as a list, NaN (not defined: the last step's next token) and ±inf (the log of a probability
    that underflowed to 0) as null: JSON has no such numbers (compact and binary keep them, as float32)."""
    return None if a is None else [v if math.isfinite(v) else None for v in a.tolist()]


def _predictions(net: Network, tr: Trace, top: tuple[np.ndarray, np.ndarray] | None) -> Any:
    """Top-k (indices, probabilities) as the trace's ``probs`` lists them: [{"token", "p"}] per step."""
    if top is None:
        return None
    labels = tr.labels or []
    shown = _shown_vocab(net, tr)
    shows = (lambda j: {"display": shown[j]}) if shown is not None else (lambda j: {})
    return [
        [{"token": labels[j], "p": float(q), **shows(j)} for j, q in zip(i, p)]
        for i, p in zip(top[0].tolist(), top[1].tolist())
    ]


def effect_json(net: Network, tr: Trace, eff: Effect, top_k: int, layers: bool = True) -> dict[str, Any]:
    """An intervention's effect (model.interventions.Effect) as plain JSON: a next-token head's ``p_before``,
    ``p_after`` (the actual next token's probability; null at the last step), ``dloglik`` and the top-k before
    and after; a classes head's ``probs_before``/``probs_after``; a values head's ``values_before``/``values_after``;
    ``layers``: per layer, gate -> (T, H) after - before."""
    out: dict[str, Any] = {
        "p_before": _nulls(eff.p_before),
        "p_after": _nulls(eff.p_after),
        "dloglik": _nulls(eff.dloglik),
        "top_before": _predictions(net, tr, eff.top_before) if tr.head_kind == "next" else None,
        "top_after": _predictions(net, tr, eff.top_after) if tr.head_kind == "next" else None,
        "probs_before": None if eff.probs_before is None else eff.probs_before.tolist(),
        "probs_after": None if eff.probs_after is None else eff.probs_after.tolist(),
        "values_before": None if eff.values_before is None else eff.values_before.tolist(),
        "values_after": None if eff.values_after is None else eff.values_after.tolist(),
    }
    if layers:
        out["layers"] = [{g: la[g].tolist() for g in tr.gates} for la in eff.layers]
    return out


def _pack_delta(g: str, a: np.ndarray) -> dict[str, Any]:
    """A change after - before, 2 bytes a value: a gate in [0, 1] changes within [-1, 1], a tanh value within
    [-2, 2] (uint16 steps: error <= 1.6e-5, 3.1e-5); C (unbounded) as float16, as ``pack`` sends it."""
    if g in UNIT_GATES:
        return pack_range(a, -1.0, 1.0)
    if g in SIGNED_GATES:
        return pack_range(a, -2.0, 2.0)
    return pack(g, a)


def _top_packed(net: Network, tr: Trace, top: tuple[np.ndarray, np.ndarray] | None) -> dict[str, Any] | None:
    """Top-k (indices, probabilities) as ``top_compact`` sends the trace's."""
    if top is None or tr.head_kind != "next":
        return None
    idx, p = top
    labels = np.array(tr.labels or [], dtype=object)
    out = {"k": idx.shape[1], "tokens": labels[idx].tolist(), "p": pack_range(p, 0.0, 1.0)}
    shown = _shown_vocab(net, tr)
    if shown is not None:
        out["display"] = np.array(shown, dtype=object)[idx].tolist()
    return out


def effect_compact(net: Network, tr: Trace, eff: Effect, top_k: int) -> dict[str, Any]:
    """``effect_json`` packed as the compact trace's arrays: the (T,) curves and head arrays float32 (NaN kept),
    the top-k as ``top_compact``, the layers' changes 2 bytes a value (``_pack_delta``)."""
    return {
        **{key: pack_f32(getattr(eff, key)) for key in ("p_before", "p_after", "dloglik")},
        "top_before": _top_packed(net, tr, eff.top_before),
        "top_after": _top_packed(net, tr, eff.top_after),
        **{key: pack_f32(getattr(eff, key)) for key in EFFECT_HEAD},
        "layers": [{g: _pack_delta(g, la[g]) for g in tr.gates} for la in eff.layers],
    }


#: An effect's head arrays (a classes head's probabilities, a values head's outputs, before and after).
EFFECT_HEAD = ("probs_before", "probs_after", "values_before", "values_after")


def _held_arrays(effect: Any, hold: Any) -> Any:
    """A compact effect with every packed array's data replaced by ``hold(packed)``'s result for it."""
    if isinstance(effect, dict):
        if "data" in effect and "dtype" in effect:
            return hold(effect)
        return {k: _held_arrays(v, hold) for k, v in effect.items()}
    if isinstance(effect, list):
        return [_held_arrays(v, hold) for v in effect]
    return effect
