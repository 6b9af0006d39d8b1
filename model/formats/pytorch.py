"""PyTorch: a state_dict of nn.LSTM, nn.GRU or nn.RNN (tanh), or of nn.LSTMCell / nn.GRUCell /
nn.RNNCell (one, or several stacked in an nn.ModuleList), with an optional nn.Embedding before it and
an optional nn.Linear decoder after it. The files it comes in are read by torch_files.py.

Layout (PyTorch docs, torch.nn.LSTM / GRU / RNN): for layer k,
``weight_ih_l<k>`` (G*H, D_k), ``weight_hh_l<k>`` (G*H, H), ``bias_ih_l<k>`` and
``bias_hh_l<k>`` (G*H,), gate blocks in the order i, f, g, o (LSTM), r, z, n (GRU).
The cells (torch.nn.LSTMCell / GRUCell / RNNCell) hold the same four tensors without ``_l<k>``
and compute the same step; ``cells.<k>.weight_ih`` is read as layer k when the cells chain
(same cell and H, cell k's input is cell k-1's h).
A bidirectional module (``bidirectional=True``) has the backward direction's own tensors under
the same names with ``_reverse`` (``weight_ih_l<k>_reverse``, ...); its output is
[h_forward ; h_backward] (T, 2H), what layer k+1 reads (``weight_ih_l<k+1>`` is (G*H, 2H)) and
the decoder too. Both biases add, except GRU's b_hn, which sits inside the reset:
n = tanh(W_in x + b_in + r*(W_hn h + b_hn)), h = (1 - z)*n + z*h_prev. gatescope's z
is colah's (the share of the candidate), so it is PyTorch's 1 - z: σ(-a) = 1 - σ(a),
so the z rows are negated.

An LSTM with ``proj_size`` P adds ``weight_hr_l<k>`` (P, H): h_t = W_hr (o * tanh(c_t)), so
``weight_hh_l<k>`` is (4H, P) and layers above the first read P inputs.

A file may hold several recurrent modules (an encoder and a decoder): ``modules()`` lists them and
``from_state_dict(..., module="encoder.lstm")`` reads one. Tensors gatescope does not model (a
LayerNorm, an extra Linear, another module) are left out and named in ``spec.meta["left_out"]``; a
state_dict does not say where they sit, so the head is dropped whenever one of them may sit between
the recurrent layers and it (the embedding likewise): never a silent misread.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import SeveralModules
from ..network import Network
from .common import FormatError, as_float, assemble, flip_z, gate_weights, stack
from .torch_files import Checkpoint

RNN_KEY = re.compile(
    r"^(?P<prefix>(?:.*\.)?)(?P<kind>weight|bias)_(?P<mat>ih|hh|hr)_l(?P<layer>\d+)(?P<rev>_reverse)?$"
)
CELL_KEY = re.compile(r"^(?P<prefix>(?:.*\.)?)(?P<kind>weight|bias)_(?P<mat>ih|hh)$")
LAYER = re.compile(r"_l(\d+)(?:_reverse)?$")
CELL_BY_GATES = {4: "lstm", 3: "gru", 1: "rnn"}
MODULE_NAMES = {"lstm": "LSTM", "gru": "GRU", "rnn": "RNN"}
#: PyTorch's gate blocks, named as gatescope names them (PyTorch's g, the LSTM candidate, is gatescope's c).
ORDER = {"lstm": ("i", "f", "c", "o"), "gru": ("r", "z", "h"), "rnn": ("h",)}
EMBEDDING_HINTS = ("emb", "enc", "wte", "lookup")
HEAD_HINTS = ("dec", "head", "fc", "out", "linear", "proj", "classifier", "lm")


@dataclass
class Recurrent:
    """One recurrent module of a state_dict: its name ('' at the top level), whether it is a cell
    (or a stack of cells), and its tensors under nn.LSTM's bare names (weight_ih_l0, ...)."""

    name: str
    is_cell: bool
    tensors: dict[str, np.ndarray]
    files: dict[str, str]  # bare name -> its key in the file

    def file(self, bare: str) -> str:
        """A tensor's name as the file has it (``rnn.weight_ih_l0``, ``cells.1.weight_ih``)."""
        if bare in self.files:
            return self.files[bare]
        base, k = bare.removesuffix("_reverse").rsplit("_l", 1)
        prefix = self.name + "." if self.name else ""
        if not self.is_cell:
            return prefix + bare
        return f"{prefix}{k}.{base}" if any(f"{k}." in v for v in self.files.values()) else prefix + base

    @property
    def label(self) -> str:
        return self.name or "(top level)"

    def kind(self) -> str:
        """'nn.LSTM', 'nn.GRUCell', ... from its gate blocks."""
        hh, hr = self.tensors.get("weight_hh_l0"), self.tensors.get("weight_hr_l0")
        H = hr.shape[1] if hr is not None and hr.ndim == 2 else (hh.shape[1] if hh is not None and hh.ndim == 2 else 0)
        G = hh.shape[0] // H if hh is not None and H and hh.ndim == 2 else 0
        base = MODULE_NAMES.get(CELL_BY_GATES.get(G, ""), "RNNBase")
        return f"nn.{base}Cell" if self.is_cell else f"nn.{base}"

    def layers(self) -> int:
        return 1 + max(int(m[1]) for m in (LAYER.search(k) for k in self.tensors) if m)

    def describe(self) -> str:
        hh, hr = self.tensors.get("weight_hh_l0"), self.tensors.get("weight_hr_l0")
        H = hr.shape[-1] if hr is not None else (hh.shape[-1] if hh is not None else "?")
        return f"{self.label} ({self.kind()}, {self.layers()} × {H})"


def is_torch_state_dict(tensors: dict[str, Any]) -> bool:
    return any(RNN_KEY.match(k) or CELL_KEY.match(k) for k in tensors)


def modules(tensors: dict[str, np.ndarray]) -> list[Recurrent]:
    """Every recurrent module in a state_dict, in the order of their names."""
    found: dict[str, Recurrent] = {}
    for key in tensors:
        m = RNN_KEY.match(key)
        if m:
            name = m["prefix"].rstrip(".")
            mod = found.setdefault("L:" + name, Recurrent(name, False, {}, {}))
            mod.tensors[key[len(m["prefix"]) :]] = tensors[key]
            mod.files[key[len(m["prefix"]) :]] = key
    cells: dict[str, Recurrent] = {}
    for key in tensors:
        m = CELL_KEY.match(key)
        if m:
            name = m["prefix"].rstrip(".")
            mod = cells.setdefault(name, Recurrent(name, True, {}, {}))
            mod.tensors[f"{m['kind']}_{m['mat']}_l0"] = tensors[key]
            mod.files[f"{m['kind']}_{m['mat']}_l0"] = key
    for name, mod in _stack_cells(cells).items():
        found["C:" + name] = mod
    return sorted(found.values(), key=lambda r: r.name)


def _stack_cells(cells: dict[str, Recurrent]) -> dict[str, Recurrent]:
    """Cells named ``<parent>.0``, ``<parent>.1``, ... that chain (same gates and H, each reading the
    one before) as one stacked module ``<parent>``; every other cell as a module of its own."""
    out = dict(cells)
    parents: dict[str, dict[int, Recurrent]] = {}
    for name, mod in cells.items():
        parent, _, last = name.rpartition(".")
        if last.isdigit() and "." in name:
            parents.setdefault(parent, {})[int(last)] = mod
    for parent, members in parents.items():
        if sorted(members) != list(range(len(members))) or len(members) < 2 or parent in cells:
            continue
        mats = [(m.tensors.get("weight_hh_l0"), m.tensors.get("weight_ih_l0")) for _, m in sorted(members.items())]
        shapes = [(hh.shape, ih.shape) for hh, ih in mats if hh is not None and ih is not None]
        if len(shapes) < len(mats) or any(len(hh) != 2 or len(ih) != 2 for hh, ih in shapes):
            continue
        hh0 = shapes[0][0]
        chains = all(hh == hh0 for hh, _ in shapes) and all(ih[1] == hh0[1] for _, ih in shapes[1:])
        if not chains:
            continue
        stacked = Recurrent(parent, True, {}, {})
        for k, mod in sorted(members.items()):
            stacked.tensors.update({n.replace("_l0", f"_l{k}"): a for n, a in mod.tensors.items()})
            stacked.files.update({n.replace("_l0", f"_l{k}"): f for n, f in mod.files.items()})
            del out[mod.name]
        out[parent] = stacked
    return out


def from_state_dict(
    tensors: dict[str, np.ndarray],
    name: str,
    vocab: dict[str, Any] | None = None,
    module: str | None = None,
    checkpoint: Checkpoint | None = None,
    heads: dict[str, Any] | None = None,
) -> Network:
    """A Network from a PyTorch state_dict's tensors: its one recurrent module, or ``module``; ``heads``: Spec
    fields head / head_at / labels (from the file's metadata: common.head_fields)."""
    try:
        found = modules(tensors)
    except FormatError as e:
        raise FormatError(f"{name}: {e}") from None
    rec = _choose(found, module, name)
    cell, L, D, H, P = _architecture(rec, name)
    both = _bidirectional(rec, L, name)
    n = 2 if both else 1
    if both and P:
        raise FormatError(f"{name}: a bidirectional LSTM with proj_size is not supported (either one alone is)")
    layers = []
    for k in range(L):
        own = _layer(rec, k, cell, D if k == 0 else n * (P or H), H, P, name)
        if both:
            back = _layer(rec, k, cell, D if k == 0 else n * H, H, P, name, "_reverse")
            own |= {f"reverse.{p}": a for p, a in back.items()}
        layers.append(own)
    others = [r for r in found if r is not rec]
    taken = {f for r in found for f in r.files.values()}
    rest = {k: v for k, v in tensors.items() if k not in taken}
    left_out = [f"{r.kind()} {r.label} ({r.layers()} layers): another recurrent module, not shown" for r in others]
    embedding, head, more, dropped = _embedding_and_head(rest, rec, others, D, n * (P or H), name)
    left_out += more
    if dropped:
        vocab = None  # its embedding is left out: the recurrent layers read vectors
    spec: dict[str, Any] = dict(cell=cell, input_size=D, hidden_size=H, num_layers=L, reset_after=cell == "gru")
    spec["direction"] = "bidirectional" if both else "forward"
    if P:
        spec["proj_size"] = P
    source: dict[str, Any] = {"format": "pytorch", "file": name, "module": rec.name, "kind": rec.kind()}
    net = assemble(name, spec, stack(layers), source, vocab, embedding, head, "nn.Embedding", heads)
    if checkpoint is not None:
        net.spec.meta.update(checkpoint.notes())
    if left_out:
        net.spec.meta["left_out"] = left_out
    return net


def _choose(found: list[Recurrent], module: str | None, name: str) -> Recurrent:
    """The recurrent module to read: the only one, or the one named ``module``."""
    if not found:
        raise FormatError(f"{name}: no nn.LSTM/nn.GRU/nn.RNN weights (weight_ih_l0, ...) nor cell weights found")
    listing = ", ".join(r.describe() for r in found)
    if module is not None:
        for r in found:
            if module in (r.name, r.label):
                return r
        raise FormatError(f"{name}: no recurrent module {module!r}; it holds {listing}")
    if len(found) > 1:
        names = [r.label for r in found]
        raise SeveralModules(
            f"{name} holds {len(found)} recurrent modules: {listing}. gatescope shows one at a time: "
            f"choose it with module= (model.load(path, module={names[0]!r}), or the upload form's field 'module')",
            names,
        )
    return found[0]


def _architecture(rec: Recurrent, name: str) -> tuple[str, int, int, int, int | None]:
    """(cell, layers L, input size D, hidden size H, projection P or None), from the names and the
    shapes of weight_hh_l0 and weight_hr_l0."""
    rnn, key, L = rec.tensors, rec.file, rec.layers()

    for k in range(L):
        for mat in ("weight_ih", "weight_hh"):
            if f"{mat}_l{k}" not in rnn:
                raise FormatError(f"{name}: {key(f'{mat}_l{k}')} is missing (layers must run 0..{L - 1})")
    hh, hr = rnn["weight_hh_l0"], rnn.get("weight_hr_l0")
    P = None
    if hr is not None:
        if hr.ndim != 2 or hh.ndim != 2 or hr.shape[0] != hh.shape[1] or not 0 < hr.shape[0] < hr.shape[1]:
            raise FormatError(
                f"{name}: {key('weight_hr_l0')} has shape {hr.shape}, expected (P, H) with P < H "
                f"and P the width of {key('weight_hh_l0')} {hh.shape}"
            )
        P, H = hr.shape
        if hh.shape[0] != 4 * H:
            raise FormatError(
                f"{name}: proj_size is an LSTM's: {key('weight_hh_l0')} has shape {hh.shape}, expected ({4 * H}, {P})"
            )
        return "lstm", L, _width(rnn["weight_ih_l0"]), H, P
    if hh.ndim != 2 or hh.shape[1] == 0 or hh.shape[0] % hh.shape[1]:
        raise FormatError(f"{name}: {key('weight_hh_l0')} has shape {hh.shape}, expected (G*H, H)")
    H = hh.shape[1]
    G = hh.shape[0] // H
    if G not in CELL_BY_GATES:
        raise FormatError(f"{name}: {key('weight_hh_l0')} has {G} gate blocks; an LSTM has 4, a GRU 3, an RNN 1")
    return CELL_BY_GATES[G], L, _width(rnn["weight_ih_l0"]), H, None


def _bidirectional(rec: Recurrent, L: int, name: str) -> bool:
    """Whether the module is bidirectional: every layer has its ``_reverse`` weights, or none does."""
    rnn = rec.tensors
    have = [f"weight_ih_l{k}_reverse" in rnn and f"weight_hh_l{k}_reverse" in rnn for k in range(L)]
    if any(have) and not all(have):
        missing = ", ".join(rec.file(f"weight_ih_l{k}_reverse") for k, h in enumerate(have) if not h)
        raise FormatError(
            f"{name}: some layers have backward (_reverse) weights and some not ({missing} missing); "
            "a bidirectional module has them in every layer"
        )
    return all(have)


def _width(w: np.ndarray) -> int:
    return w.shape[1] if w.ndim == 2 else -1


def _layer(
    rec: Recurrent, k: int, cell: str, D: int, H: int, P: int | None, name: str, rev: str = ""
) -> dict[str, np.ndarray]:
    """Layer k's per-gate weights (``rev="_reverse"``: its backward direction's), its shapes checked:
    weight_ih (G*H, D) and weight_hh (G*H, H or P), transposed to the x @ W layout, the two biases (G*H,)
    (zeros when the module has bias=False), W_hr (H, P) with proj_size."""
    rnn, key = rec.tensors, rec.file
    G, R = len(ORDER[cell]), P or H
    Wi = as_float(key(f"weight_ih_l{k}{rev}"), rnn[f"weight_ih_l{k}{rev}"], name)
    Wh = as_float(key(f"weight_hh_l{k}{rev}"), rnn[f"weight_hh_l{k}{rev}"], name)
    what = f"layer {k}" + (" (backward)" if rev else "")
    if Wi.shape != (G * H, D) or Wh.shape != (G * H, R):
        want = f"{(G * H, D)} and {(G * H, R)}"
        raise FormatError(f"{name}: {what} weights have shapes {Wi.shape} and {Wh.shape}, expected {want}")
    zeros = np.zeros(G * H, np.float32)
    bi = as_float(key(f"bias_ih_l{k}{rev}"), rnn.get(f"bias_ih_l{k}{rev}", zeros), name)
    bh = as_float(key(f"bias_hh_l{k}{rev}"), rnn.get(f"bias_hh_l{k}{rev}", zeros), name)
    if bi.shape != (G * H,) or bh.shape != (G * H,):
        raise FormatError(f"{name}: {what} biases have shapes {bi.shape} and {bh.shape}, expected ({G * H},)")
    own = gate_weights(ORDER[cell], Wi.T, Wh.T, bi, bh, reset_after=cell == "gru")  # b_hn inside the reset
    if P:
        if f"weight_hr_l{k}" not in rnn:
            raise FormatError(f"{name}: {key(f'weight_hr_l{k}')} is missing (proj_size: every layer has one)")
        Wr = as_float(key(f"weight_hr_l{k}"), rnn[f"weight_hr_l{k}"], name)
        if Wr.shape != (P, H):
            raise FormatError(f"{name}: {key(f'weight_hr_l{k}')} has shape {Wr.shape}, expected {(P, H)}")
        own["W_hr"] = np.ascontiguousarray(Wr.T)  # (H, P): h = m @ W_hr
    return flip_z(own) if cell == "gru" else own


def _embedding_and_head(
    rest: dict[str, np.ndarray], rec: Recurrent, others: list[Recurrent], D: int, H: int, name: str
) -> tuple[np.ndarray | None, tuple[np.ndarray, np.ndarray] | None, list[str], bool]:
    """The nn.Embedding and nn.Linear decoder among the non-recurrent tensors, what is left out, and
    whether an embedding was found but left out (the layers then read vectors).

    With several recurrent modules, only modules beside the chosen one (the same parent, no other
    recurrent module there) can be its embedding or head. ``H`` is the width of the layers' h
    (P with proj_size)."""
    groups: dict[str, dict[str, np.ndarray]] = {}
    for k, v in rest.items():
        mod, _, leaf = k.rpartition(".")
        groups.setdefault(mod, {})[leaf] = v
    parent = rec.name.rpartition(".")[0]
    shared = any(r.name.rpartition(".")[0] == parent for r in others)
    embedding: np.ndarray | None = None
    head: tuple[np.ndarray, np.ndarray] | None = None
    emb_mod = head_mod = ""
    extras: list[tuple[str, dict[str, np.ndarray]]] = []
    elsewhere: list[tuple[str, dict[str, np.ndarray]]] = []
    for mod, leaves in groups.items():
        beside = not others or (mod.rpartition(".")[0] == parent and not shared)
        if not beside:
            elsewhere.append((mod, leaves))
            continue
        w, b = leaves.get("weight"), leaves.get("bias")
        if set(leaves) - {"weight", "bias"} or w is None or w.ndim != 2:
            extras.append((mod, leaves))
            continue
        is_emb, is_head = _looks_like(mod, w, b, D, H)
        if is_emb and embedding is None:
            embedding, emb_mod = as_float(f"{mod}.weight", w, name), mod
        elif is_head and head is None:
            head, head_mod = _decoder(mod, w, b, name), mod
        else:
            extras.append((mod, leaves))
    left: list[str] = []
    # A state_dict does not say where an extra module sits: one of the embedding's width may sit before the
    # recurrent layers, one of any other shape may sit before the head.
    before = [m for m, lv in extras if _touches(lv, D)]
    after = [m for m, lv in extras if not (_touches(lv, D) and not _touches(lv, H))]
    for mod, leaves in extras:
        where = []
        if embedding is not None and mod in before:
            where.append(f"it may sit after the embedding {emb_mod}")
        if head is not None and mod in after:
            where.append(f"it may sit before the head {head_mod}")
        left.append(f"{_what(mod, leaves)}: not modelled" + (f" ({'; '.join(where)})" if where else ""))
    for mod, leaves in elsewhere:
        left.append(f"{_what(mod, leaves)}: beside another recurrent module, not shown")
    dropped = embedding is not None and bool(before)
    if embedding is not None and before:
        left.append(
            f"nn.Embedding {emb_mod} ({embedding.shape[0]} × {embedding.shape[1]}): not used, "
            f"as {', '.join(before)} may sit between it and the recurrent layers: the model reads vectors"
        )
        embedding = None
    if head is not None and after:
        left.append(
            f"head {head_mod} ({head[0].shape[1]} outputs): head not shown, "
            f"as {', '.join(after)} may sit between the recurrent layers and it"
        )
        head = None
    return embedding, head, left, dropped


def _touches(leaves: dict[str, np.ndarray], n: int) -> bool:
    return any(n in np.shape(a) for a in leaves.values())


def _what(mod: str, leaves: dict[str, np.ndarray]) -> str:
    """A module the importer leaves out, as a person would name it: 'LayerNorm ln (weight, bias)'."""
    names = sorted(leaves)
    shapes = {k: np.shape(a) for k, a in leaves.items()}
    if "running_mean" in leaves:
        kind = "BatchNorm"
    elif set(names) <= {"weight", "bias"} and all(len(s) == 1 for s in shapes.values()):
        kind = "LayerNorm"
    elif set(names) <= {"weight", "bias"} and len(shapes.get("weight", ())) == 2:
        kind = f"Linear {shapes['weight'][1]}→{shapes['weight'][0]}"
    else:
        kind = "tensors"
    return f"{kind} {mod or '(top level)'} ({', '.join(names)})"


def _looks_like(mod: str, w: Any, b: np.ndarray | None, D: int, H: int) -> tuple[bool, bool]:
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
