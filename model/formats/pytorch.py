"""PyTorch: a state_dict of nn.LSTM, nn.GRU or nn.RNN (tanh), with an optional
nn.Embedding before it and an optional nn.Linear decoder after it.

Layout (PyTorch docs, torch.nn.LSTM / GRU / RNN): for layer k,
``weight_ih_l<k>`` (G*H, D_k), ``weight_hh_l<k>`` (G*H, H), ``bias_ih_l<k>`` and
``bias_hh_l<k>`` (G*H,), gate blocks in the order i, f, g, o (LSTM), r, z, n (GRU).
A bidirectional module (``bidirectional=True``) has the backward direction's own tensors under
the same names with ``_reverse`` (``weight_ih_l<k>_reverse``, ...); its output is
[h_forward ; h_backward] (T, 2H), what layer k+1 reads (``weight_ih_l<k+1>`` is (G*H, 2H)) and
the decoder too. Both biases add, except GRU's b_hn, which sits inside the reset:
n = tanh(W_in x + b_in + r*(W_hn h + b_hn)), h = (1 - z)*n + z*h_prev. gatescope's z
is colah's (the share of the candidate), so it is PyTorch's 1 - z: σ(-a) = 1 - σ(a),
so the z rows are negated.

Keys may be bare (``weight_ih_l0``) or under one module prefix (``rnn.weight_ih_l0``).
Read from .safetensors always, from .pt/.pth only when torch is installed, and then
through ``torch.load(weights_only=True)``: no pickled code ever runs.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from ..network import Network
from .common import FormatError, as_float, assemble, flip_z, gate_weights, stack

RNN_KEY = re.compile(
    r"^(?P<prefix>(?:.*\.)?)(?P<kind>weight|bias)_(?P<mat>ih|hh|hr)_l(?P<layer>\d+)(?P<rev>_reverse)?$"
)
CELL_BY_GATES = {4: "lstm", 3: "gru", 1: "rnn"}
#: PyTorch's gate blocks, named as gatescope names them (PyTorch's g, the LSTM candidate, is gatescope's c).
ORDER = {"lstm": ("i", "f", "c", "o"), "gru": ("r", "z", "h"), "rnn": ("h",)}
EMBEDDING_HINTS = ("emb", "enc", "wte", "lookup")
HEAD_HINTS = ("dec", "head", "fc", "out", "linear", "proj", "classifier", "lm")


def read_pt(path: Path) -> dict[str, np.ndarray]:
    """Tensors of a .pt/.pth state_dict through torch.load(weights_only=True)."""
    try:
        import torch
    except ImportError:
        raise FormatError(
            f"{path.name}: reading .pt/.pth files needs PyTorch (pip install 'gatescope[torch]'); "
            "or save the state_dict as .safetensors (safetensors.torch.save_file(m.state_dict(), 'm.safetensors'))"
        ) from None
    try:
        obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types here (UnpicklingError, RuntimeError, ...)
        msg = str(e).splitlines()[0][:300] if str(e) else type(e).__name__
        if "weights_only" in str(e) or "Unsupported global" in str(e):
            msg = "it holds pickled Python objects, not only tensors; save model.state_dict() instead"
        raise FormatError(f"{path.name} is not a readable PyTorch state_dict: {msg}") from None
    if isinstance(obj, dict) and len(obj) == 1 and next(iter(obj)) in ("state_dict", "model", "model_state_dict"):
        obj = next(iter(obj.values()))
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        held = ", ".join(map(str, list(obj)[:8])) if isinstance(obj, dict) else type(obj).__name__
        raise FormatError(
            f"{path.name} does not hold a state_dict (a dict of tensors); it holds {held}. "
            "Save model.state_dict() on its own"
        )
    return {k: v.detach().float().numpy() for k, v in obj.items()}


def is_torch_state_dict(tensors: dict[str, Any]) -> bool:
    return any(RNN_KEY.match(k) for k in tensors)


def from_state_dict(
    tensors: dict[str, np.ndarray],
    name: str,
    vocab: dict[str, Any] | None = None,
    heads: dict[str, Any] | None = None,
) -> Network:
    """A Network from a PyTorch state_dict's tensors; ``heads``: Spec fields head / head_at / labels
    (from the file's metadata: common.head_fields)."""
    rnn, prefix = _recurrent_tensors(tensors, name)
    cell, L, D, H = _architecture(rnn, prefix, name)
    both = _bidirectional(rnn, prefix, L, name)
    n = 2 if both else 1
    layers = []
    for k in range(L):
        own = _layer(rnn, prefix, k, cell, D if k == 0 else n * H, H, name)
        if both:
            back = _layer(rnn, prefix, k, cell, D if k == 0 else n * H, H, name, "_reverse")
            own |= {f"reverse.{p}": a for p, a in back.items()}
        layers.append(own)
    rest = {k: v for k, v in tensors.items() if not RNN_KEY.match(k)}
    embedding, head = _embedding_and_head(rest, D, n * H, name)
    spec: dict[str, Any] = dict(cell=cell, input_size=D, hidden_size=H, num_layers=L, reset_after=cell == "gru")
    spec["direction"] = "bidirectional" if both else "forward"
    source = {"format": "pytorch", "file": name}
    return assemble(name, spec, stack(layers), source, vocab, embedding, head, "nn.Embedding", heads)


def _recurrent_tensors(tensors: dict[str, np.ndarray], name: str) -> tuple[dict[str, np.ndarray], str]:
    """The recurrent module's tensors under their bare names (weight_ih_l0, ...), and its module prefix."""
    rnn: dict[str, np.ndarray] = {}
    prefixes = set()
    for key in tensors:
        m = RNN_KEY.match(key)
        if not m:
            continue
        if m["mat"] == "hr":
            raise FormatError(f"{name}: LSTM with proj_size ({key}) is not supported")
        prefixes.add(m["prefix"])
        rnn[key[len(m["prefix"]) :]] = tensors[key]
    if not rnn:
        raise FormatError(f"{name}: no nn.LSTM/nn.GRU/nn.RNN weights (weight_ih_l0, ...) found")
    if len(prefixes) > 1:
        shown = ", ".join(sorted(p.rstrip(".") or "(top level)" for p in prefixes))
        raise FormatError(f"{name}: several recurrent modules ({shown}); gatescope reads one")
    return rnn, prefixes.pop()


def _architecture(rnn: dict[str, np.ndarray], prefix: str, name: str) -> tuple[str, int, int, int]:
    """(cell, layers L, input size D, hidden size H), read from the names and the shape of weight_hh_l0."""
    L = 1 + max(int(m["layer"]) for m in map(RNN_KEY.match, rnn) if m)
    for k in range(L):
        for mat in ("weight_ih", "weight_hh"):
            if f"{mat}_l{k}" not in rnn:
                raise FormatError(f"{name}: {prefix}{mat}_l{k} is missing (layers must run 0..{L - 1})")
    hh = rnn["weight_hh_l0"]
    if hh.ndim != 2 or hh.shape[1] == 0 or hh.shape[0] % hh.shape[1]:
        raise FormatError(f"{name}: {prefix}weight_hh_l0 has shape {hh.shape}, expected (G*H, H)")
    H = hh.shape[1]
    G = hh.shape[0] // H
    if G not in CELL_BY_GATES:
        raise FormatError(f"{name}: {prefix}weight_hh_l0 has {G} gate blocks; an LSTM has 4, a GRU 3, an RNN 1")
    D = rnn["weight_ih_l0"].shape[1] if rnn["weight_ih_l0"].ndim == 2 else -1
    return CELL_BY_GATES[G], L, D, H


def _bidirectional(rnn: dict[str, np.ndarray], prefix: str, L: int, name: str) -> bool:
    """Whether the module is bidirectional: every layer has its ``_reverse`` weights, or none does."""
    have = [f"weight_ih_l{k}_reverse" in rnn and f"weight_hh_l{k}_reverse" in rnn for k in range(L)]
    if any(have) and not all(have):
        missing = ", ".join(f"{prefix}weight_ih_l{k}_reverse" for k, h in enumerate(have) if not h)
        raise FormatError(
            f"{name}: some layers have backward (_reverse) weights and some not ({missing} missing); "
            "a bidirectional module has them in every layer"
        )
    return all(have)


def _layer(
    rnn: dict[str, np.ndarray], prefix: str, k: int, cell: str, D: int, H: int, name: str, rev: str = ""
) -> dict[str, np.ndarray]:
    """Layer k's per-gate weights (``rev="_reverse"``: its backward direction's), its shapes checked:
    weight_ih (G*H, D) and weight_hh (G*H, H), transposed to the x @ W layout, the two biases (G*H,)
    (zeros when the module has bias=False)."""
    G = len(ORDER[cell])
    Wi = as_float(f"{prefix}weight_ih_l{k}{rev}", rnn[f"weight_ih_l{k}{rev}"], name)
    Wh = as_float(f"{prefix}weight_hh_l{k}{rev}", rnn[f"weight_hh_l{k}{rev}"], name)
    what = f"layer {k}" + (" (backward)" if rev else "")
    if Wi.shape != (G * H, D) or Wh.shape != (G * H, H):
        want = f"{(G * H, D)} and {(G * H, H)}"
        raise FormatError(f"{name}: {what} weights have shapes {Wi.shape} and {Wh.shape}, expected {want}")
    zeros = np.zeros(G * H, np.float32)
    bi = as_float(f"{prefix}bias_ih_l{k}{rev}", rnn.get(f"bias_ih_l{k}{rev}", zeros), name)
    bh = as_float(f"{prefix}bias_hh_l{k}{rev}", rnn.get(f"bias_hh_l{k}{rev}", zeros), name)
    if bi.shape != (G * H,) or bh.shape != (G * H,):
        raise FormatError(f"{name}: {what} biases have shapes {bi.shape} and {bh.shape}, expected ({G * H},)")
    own = gate_weights(ORDER[cell], Wi.T, Wh.T, bi, bh, reset_after=cell == "gru")  # b_hn inside the reset
    return flip_z(own) if cell == "gru" else own


def _embedding_and_head(
    rest: dict[str, np.ndarray], D: int, H: int, name: str
) -> tuple[np.ndarray | None, tuple[np.ndarray, np.ndarray] | None]:
    """Find the nn.Embedding and nn.Linear decoder among the non-recurrent tensors."""
    modules: dict[str, dict[str, np.ndarray]] = {}
    for k, v in rest.items():
        mod, _, leaf = k.rpartition(".")
        modules.setdefault(mod, {})[leaf] = v
    embedding: np.ndarray | None = None
    head: tuple[np.ndarray, np.ndarray] | None = None
    for mod, leaves in modules.items():
        w, b = _weight_and_bias(mod, leaves, name)
        is_emb, is_head = _looks_like(mod, w, b, D, H)
        if is_emb and embedding is None:
            embedding = as_float(f"{mod}.weight", w, name)
        elif is_head and head is None:
            head = _decoder(mod, w, b, name)
        else:
            raise FormatError(
                f"{name}: cannot place module {mod or '(top level)'} of shape {w.shape}: it is neither an "
                f"embedding (V, {D}) before the recurrent layers nor a decoder (V, {H}) after them"
            )
    return embedding, head


def _weight_and_bias(mod: str, leaves: dict[str, np.ndarray], name: str) -> tuple[np.ndarray, np.ndarray | None]:
    """A module's 2-D weight and optional bias, or a FormatError when it holds anything else."""
    w, b = leaves.get("weight"), leaves.get("bias")
    if set(leaves) - {"weight", "bias"} or w is None or w.ndim != 2:
        shown = ", ".join(f"{mod}.{k}" if mod else k for k in sorted(leaves))
        raise FormatError(
            f"{name}: unrecognised tensors ({shown}); gatescope reads an nn.LSTM/GRU/RNN with an optional "
            "nn.Embedding before it and an optional nn.Linear after it"
        )
    return w, b


def _looks_like(mod: str, w: np.ndarray, b: np.ndarray | None, D: int, H: int) -> tuple[bool, bool]:
    """(an embedding?, a decoder?): an embedding is (V, D) without bias, a decoder (V, H) with a bias or
    a decoder's name; when both fit (D = H, no bias), the module's name decides."""
    low = mod.lower()
    named_head, named_emb = any(h in low for h in HEAD_HINTS), any(h in low for h in EMBEDDING_HINTS)
    is_head = w.shape[1] == H and (b is not None or named_head)
    is_emb = w.shape[1] == D and b is None and not (is_head and not named_emb)
    return is_emb, is_head


def _decoder(mod: str, w: np.ndarray, b: np.ndarray | None, name: str) -> tuple[np.ndarray, np.ndarray]:
    """An nn.Linear decoder as gatescope's head: W (H, V) in the x @ W layout, b (V,) (zeros with bias=False)."""
    bias = as_float(f"{mod}.bias", b, name) if b is not None else np.zeros(w.shape[0], np.float32)
    if bias.shape != (w.shape[0],):
        raise FormatError(f"{name}: {mod}.bias has shape {bias.shape}, expected ({w.shape[0]},)")
    return np.ascontiguousarray(as_float(f"{mod}.weight", w, name).T), bias
