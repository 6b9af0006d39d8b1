"""What every importer shares: the error type (model/errors.py), file sniffing, safetensors reading,
the cut of fused gate blocks into gatescope's per-gate weights (and the GRU's z flip), vocabularies."""

from __future__ import annotations

import json
import struct
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import FormatError as FormatError  # every importer raises it from here
from ..network import Network, Spec

#: Leading bytes of the container formats we read.
MAGIC = {"zip": b"PK\x03\x04", "hdf5": b"\x89HDF\r\n\x1a\n"}


class Limits:
    """What a weight file may declare before anything is allocated for it. ``max_bytes``: the most bytes
    of weights (HDF5 datasets, a .keras archive's members) one file may declare; a converter run for a
    server sets it from the server's settings (``python -m model.formats.convert --max-mb``)."""

    max_bytes: int = 1 << 30  # 256 M float32 weights


LIMITS = Limits()


def sniff(path: Path) -> str:
    """The container a file really is: 'safetensors', 'zip', 'hdf5' or 'unknown'."""
    with open(path, "rb") as f:
        head = f.read(16)
    for kind, magic in MAGIC.items():
        if head.startswith(magic):
            return kind
    if len(head) >= 9:
        (n,) = struct.unpack("<Q", head[:8])
        if 2 <= n <= path.stat().st_size - 8 and head[8:9] == b"{":
            return "safetensors"
    return "unknown"


def read_safetensors(path: str | Path) -> tuple[dict[str, np.ndarray], dict[str, str] | None]:
    """All tensors and the metadata of a safetensors file, or a FormatError naming the problem."""
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    if sniff(path) != "safetensors":
        raise FormatError(f"{path.name} is not a safetensors file (its header is not a safetensors header)")
    try:
        with safe_open(str(path), framework="np") as f:
            metadata = f.metadata()
            tensors = {k: _bf16(path, k) if f.get_slice(k).get_dtype() == "BF16" else f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError, ValueError, TypeError, KeyError) as e:
        raise FormatError(f"{path.name} is not a readable safetensors file ({e})") from None
    return tensors, metadata


def _bf16(path: Path, key: str) -> np.ndarray:
    """A bfloat16 tensor as float32 (exact): NumPy has no bfloat16, whose bits are a float32's upper half."""
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        info = json.loads(f.read(n))[key]
        start, end = info["data_offsets"]
        f.seek(8 + n + start)
        raw = np.frombuffer(f.read(end - start), "<u2")
    return (raw.astype("<u4") << 16).view("<f4").reshape(info["shape"])


def as_float(name: str, a: Any, where: str = "") -> np.ndarray:
    """A weight as a finite float32 array, or a FormatError naming it (and ``where``, the file)."""
    lead = f"{where}: " if where else ""
    a = np.asarray(a)
    if not np.issubdtype(a.dtype, np.floating):
        raise FormatError(f"{lead}weight {name} has dtype {a.dtype}, expected floating point")
    a = a.astype(np.float32)
    if not np.isfinite(a).all():
        raise FormatError(f"{lead}weight {name} holds NaN or infinite values")
    return a


# Fused gate blocks to gatescope's per-gate weights --------------------------------------


def gate_blocks(a: np.ndarray, order: Sequence[str], axis: int = -1) -> dict[str, np.ndarray]:
    """A fused array cut along ``axis`` into ``len(order)`` equal gate blocks, named in the file's order.

    A kernel (D, G*H) in the x @ W layout is cut along its last axis into blocks (D, H); a fused
    bias (G*H,) into blocks (H,). The caller has checked that G*H divides evenly.
    """
    return dict(zip(order, np.split(a, len(order), axis=axis), strict=True))


def gate_weights(
    order: Sequence[str],
    W: np.ndarray,
    U: np.ndarray,
    b: np.ndarray,
    bU: np.ndarray,
    reset_after: bool = False,
) -> dict[str, np.ndarray]:
    """One layer's per-gate weights (cells.PARAMS) from fused ones in the x @ W layout.

    W (D, G*H), U (H, G*H), the input bias b (G*H,) and the recurrent bias bU (G*H,) (zeros for a
    file that has one bias), gate blocks in ``order``, named as gatescope names them ('c' for the
    LSTM candidate, 'h' for the GRU and RNN candidate). The two biases add, ``b_g = b_g + bU_g``,
    except in a reset_after GRU, whose candidate keeps its recurrent bias inside the reset:
    h_tilde = tanh(W_h x + b_h + r*(U_h h + bU_h)).
    """
    Wg, Ug, bg, bUg = (gate_blocks(a, order) for a in (W, U, b, bU))
    own: dict[str, np.ndarray] = {}
    for g in order:
        own[f"W_{g}"], own[f"U_{g}"], own[f"b_{g}"] = Wg[g], Ug[g], bg[g] + bUg[g]  # (D, H), (H, H), (H,)
    if reset_after:
        own["b_h"], own["bU_h"] = bg["h"], bUg["h"]  # (H,) each: bU_h sits inside the reset
    return own


def flip_z(own: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """A GRU's weights with its update gate turned into gatescope's z.

    PyTorch, Keras and ONNX all write h = z*h_prev + (1 - z)*h_tilde: their z is the share of
    h_prev kept. gatescope's z is colah's, the share of h_tilde that enters: h = (1 - z)*h_prev +
    z*h_tilde, i.e. their 1 - z. As σ(-a) = 1 - σ(a), negating the z gate's pre-activation turns
    one into the other exactly: W_z, U_z and b_z change sign, nothing else does.
    """
    return own | {n: -own[n] for n in ("W_z", "U_z", "b_z")}


def stack(layers: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Per-layer weights under network.Network's names ``layers.<k>.<name>``, C-contiguous."""
    return {f"layers.{k}.{n}": np.ascontiguousarray(a) for k, own in enumerate(layers) for n, a in own.items()}


# Vocabularies -------------------------------------------------------------------------


def read_vocab(path: str | Path) -> dict[str, Any]:
    """A vocabulary file: a JSON list of tokens, or {"tokens": [...], "tokenizer": "char"|"word", "unk": ...}.

    A bare list is a character vocabulary when every entry is one character (or a
    ``<special>``), else a word vocabulary.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise FormatError(f"vocabulary {path.name} is not a JSON file ({e})") from None
    return parse_vocab(data, path.name)


def parse_vocab(data: Any, name: str = "vocabulary") -> dict[str, Any]:
    """Spec fields (vocab, tokenizer, unk) from a token list or a vocabulary object."""
    if isinstance(data, list):
        data = {"tokens": data}
    if not isinstance(data, dict) or not isinstance(data.get("tokens"), list):
        raise FormatError(f"{name} must be a JSON list of tokens or an object with 'tokens'")
    tokens = data["tokens"]
    if not tokens or not all(isinstance(t, str) for t in tokens):
        raise FormatError(f"{name} must list at least one token, all strings")
    plain = [t for t in tokens if not (t.startswith("<") and t.endswith(">") and len(t) > 2)]
    kind = data.get("tokenizer") or ("char" if all(len(t) == 1 for t in plain) else "word")
    if kind not in ("char", "word"):
        raise FormatError(f"{name}: unknown tokenizer {kind!r}, expected 'char' or 'word'")
    return {"vocab": tokens, "tokenizer": kind, "unk": data.get("unk", "<unk>")}


def find_vocab(path: Path) -> Path | None:
    """A vocabulary beside a weight file: ``<stem>.vocab.json`` or ``vocab.json``."""
    stem = path.name.split(".")[0]
    for cand in (path.with_name(f"{stem}.vocab.json"), path.with_name("vocab.json")):
        if cand.is_file():
            return cand
    return None


# What the output means, from a file's metadata ----------------------------------------

#: Metadata keys (safetensors ``__metadata__``, ONNX ``metadata_props``) that say what a model's head means.
HEAD_KEYS = ("head", "head_at", "labels")


def head_fields(metadata: dict[str, str] | None, name: str) -> dict[str, Any]:
    """Spec fields head / head_at / labels from a file's string metadata (labels: a JSON list of names);
    the values themselves are checked with the rest of the spec (model/heads.py)."""
    out: dict[str, Any] = {}
    for key in HEAD_KEYS:
        raw = (metadata or {}).get(key)
        if raw is None:
            continue
        if key == "labels":
            try:
                out[key] = json.loads(raw)
            except json.JSONDecodeError:
                raise FormatError(
                    f"{name}: its metadata 'labels' is not JSON; write the class names as a JSON list, "
                    f'e.g. ["negative", "positive"]'
                ) from None
            if not isinstance(out[key], list):
                raise FormatError(f"{name}: its metadata 'labels' must be a JSON list of names, got {raw[:60]!r}")
        else:
            out[key] = raw
    return out


def with_head(net: Network, name: str, **fields: Any) -> Network:
    """``net`` with its spec's head, head_at and labels set to the given fields (the ones not None), or a
    FormatError naming the file and the fix."""
    given = {k: v for k, v in fields.items() if v is not None}
    if not given:
        return net
    try:
        return Network(replace(net.spec, **given), net.params, net.dtype.type)
    except ValueError as e:
        raise FormatError(f"{name}: {e}") from None


def assemble(
    name: str,
    spec: dict[str, Any],
    params: dict[str, np.ndarray],
    source: dict[str, Any],
    vocab: dict[str, Any] | None = None,
    embedding: np.ndarray | None = None,
    head: tuple[np.ndarray, np.ndarray] | None = None,
    embedding_kind: str = "embedding",
    heads: dict[str, Any] | None = None,
) -> Network:
    """The Network an importer found: layer weights, then the optional embedding, vocabulary and head."""
    if embedding is not None:
        V = embedding.shape[0]
        if vocab is None:
            raise FormatError(
                f"{name}: it has an {embedding_kind} of {V} tokens; give its vocabulary "
                f"(a JSON list of {V} tokens) as <name>.vocab.json beside it or as vocab="
            )
        if len(vocab["vocab"]) != V:
            n = len(vocab["vocab"])
            raise FormatError(f"{name}: the vocabulary lists {n} tokens, the {embedding_kind} has {V} rows")
        params["embedding"], spec["embedding"] = embedding, True
    if vocab is not None:
        spec.update(vocab)
    if head is not None:
        params["head.W"], params["head.b"] = head
        spec["output_size"] = head[1].shape[0]
    spec["meta"] = {"source": source}
    spec.update(heads or {})
    try:
        return Network(Spec(**spec), params)
    except ValueError as e:
        raise FormatError(f"{name}: {e}") from None
