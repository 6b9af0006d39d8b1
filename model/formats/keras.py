"""Keras: LSTM, GRU and SimpleRNN layers (stacked, one kind), with an optional Embedding
before them and an optional Dense head (softmax or linear) after them.

Files (Keras 3 docs, "Saving, serialization and exporting"):
    .keras            a zip of config.json (the architecture), model.weights.h5, metadata.json
    .weights.h5       model.save_weights: the same HDF5 tree without the config; the layers
                      are guessed from it (see ``_from_tree``)
    .h5               the legacy HDF5 model (model.save("m.h5"), Keras 2 and 3): the config in
                      the attribute ``model_config``, weights under model_weights/<layer name>
In a Keras 3 weights file a layer's variables sit at layers/<class in snake case>[_<n>]/vars/<j>
(a recurrent layer's under .../cell/vars), numbered per class in model order: lstm, lstm_1, ...

Layouts (Keras docs, keras.layers.LSTM / GRU / SimpleRNN; x @ W, gate blocks side by side):
    LSTM       kernel (D, 4H), recurrent_kernel (H, 4H), bias (4H,), blocks i, f, c, o;
               the same equations as gatescope's (colah 2015)
    GRU        kernel (D, 3H), recurrent_kernel (H, 3H), blocks z, r, h, and
               reset_after=True (the default): bias (2, 3H) = [input bias; recurrent bias],
                   h_tilde = tanh(W_h x + b_h + r*(U_h h + bU_h))
               reset_after=False (Cho et al. 2014): bias (3H,), h_tilde = tanh(W_h x + U_h (r*h) + b_h)
               and h = z*h_prev + (1 - z)*h_tilde: Keras's z is gatescope's 1 - z (colah's z is
               the share of the candidate), so the z blocks are negated: σ(-a) = 1 - σ(a)
    SimpleRNN  kernel (D, H), recurrent_kernel (H, H), bias (H,)
    Embedding  (V, D);  Dense  kernel (H, V), bias (V,)
use_bias=False leaves the bias out: it is zero.

Directions (Keras docs, keras.layers.Bidirectional and the RNN layers' ``go_backwards``):
    Bidirectional(layer, merge_mode="concat")   the layer forwards and a copy (``backward_layer``,
               go_backwards=True) with variables of its own, under .../forward_layer/cell/vars and
               .../backward_layer/cell/vars; Keras flips the backward sequence back into time order
               and concatenates: [h_fwd ; h_bwd] (T, 2H), what gatescope's bidirectional layer is
    go_backwards=True on the model's only recurrent layer   gatescope's "reverse"; Keras returns its
               sequence in reading order (its output j is the step that read x_{T-1-j}), gatescope's
               trace in time order (row t read x_t)
Other merge modes (sum, mul, ave, None) are refused, and so is go_backwards on stacked layers
(Keras feeds the next layer the reversed sequence, so its layers alternate directions).

Refused, with a message: activations other than tanh (and
sigmoid for the gates), mixed or differently sized recurrent layers, branches, and any
layer but InputLayer, dropouts and noise (identities at inference) and an Activation
("softmax"/"linear") after the head. A Dense head is run as linear + softmax, so its
activation must be softmax or linear (logits or values). What the head means is what the file says
(``model.load(head=..., head_at=...)`` overrides it):
    Dense(softmax)    probabilities: a next-token head when its size is the vocabulary's, else classes
    Dense(linear)     what model.predict returns, values (regression), unless the model was compiled with a
                      crossentropy loss ``from_logits=True`` (the config's compile_config, a legacy file's
                      training_config): then logits, next-token or classes as for softmax; a linear head of
                      the vocabulary's size (K > 1) on a text model predicts the next token
    return_sequences=False on the top recurrent layer   the head reads the last step only: head_at "last"
                      (a sequence classifier or regressor; the earlier steps show what it would answer there)
A weights-only file cannot tell activations, return_sequences or go_backwards: it is read as the
defaults, and its head's kind is inferred (model/heads.py). Embedding(mask_zero=True) is read, but its
padding token 0 is run like any other token, where Keras would skip it.
"""

from __future__ import annotations

import functools
import io
import json
import re
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..network import Network
from .common import LIMITS, FormatError, as_float, assemble, flip_z, gate_weights, sniff, stack
from .hdf5 import check_self_contained

#: Keras class → gatescope cell, and the gate blocks of each in Keras's order, named as gatescope names them.
RECURRENT = {"LSTM": "lstm", "GRU": "gru", "SimpleRNN": "rnn"}
ORDER = {"lstm": ("i", "f", "c", "o"), "gru": ("z", "r", "h"), "rnn": ("h",)}
ARTICLE = {"lstm": "an LSTM", "gru": "a GRU", "rnn": "a SimpleRNN"}
#: Layers that are identities at inference.
SKIPPED = {"InputLayer", "Dropout", "SpatialDropout1D", "GaussianDropout", "GaussianNoise", "AlphaDropout"}
#: Keras 3 weights-file group names (class names in snake case) → what they hold.
TREE_KINDS = {"lstm": "lstm", "gru": "gru", "simple_rnn": "rnn", "embedding": "embedding", "dense": "dense"}
TREE_KINDS["time_distributed"] = "dense"  # TimeDistributed(Dense): the Dense under .../layer
INSTALL = "pip install 'gatescope[keras]'"
#: What zipfile raises for damaged, truncated, encrypted or oddly compressed archives.
ARCHIVE_ERRORS = (
    zipfile.BadZipFile,
    zlib.error,
    EOFError,
    OSError,
    UnicodeDecodeError,
    NotImplementedError,
    RuntimeError,
)


@dataclass
class Layer:
    """A layer that matters, in model order: an embedding, a recurrent layer, the head or its activation."""

    kind: str  # "embedding" | "lstm" | "gru" | "rnn" | "dense" | "activation"
    name: str
    weights: list[np.ndarray] = field(default_factory=list)
    reset_after: bool | None = None  # gru: what the config says; None when there is no config
    direction: str = "forward"  # "forward" | "reverse" (go_backwards) | "bidirectional"
    backward: list[np.ndarray] = field(default_factory=list)  # a Bidirectional's backward_layer variables
    activation: str | None = None  # dense, activation
    sequences: bool | None = None  # recurrent: return_sequences (None: a weights-only file cannot tell)


def load(path: Path, vocab: dict[str, Any] | None) -> Network:
    """A Network from a .keras archive, a Keras 3 .weights.h5 file or a legacy Keras .h5 model."""
    try:
        import h5py
    except ImportError:
        raise FormatError(f"{path.name}: reading Keras files needs h5py ({INSTALL})") from None
    name, kind = path.name, sniff(path)
    loss: Any = None  # the compiled loss, where the file keeps it
    try:
        if kind == "zip":
            config, weights, version = _read_archive(path)
            loss = (config.get("compile_config") or {}).get("loss") if isinstance(config, dict) else None
            with h5py.File(io.BytesIO(weights), "r") as f:
                check_self_contained(f, name)  # no external storage, virtual datasets or links
                layers = _from_config(config, _v3_fetch(f, config, name), name)
        elif kind == "hdf5":
            with h5py.File(path, "r") as f:
                check_self_contained(f, name)  # no external storage, virtual datasets or links
                version = _text(f.attrs.get("keras_version"))
                if "model_config" in f.attrs:
                    config = json.loads(_text(f.attrs["model_config"]) or "null")
                    layers = _from_config(config, _legacy_fetch(f, name), name)
                    training = json.loads(_text(f.attrs.get("training_config")) or "null")
                    loss = training.get("loss") if isinstance(training, dict) else None
                elif "layers" in f:
                    layers = _from_tree(f["layers"], name)
                elif "layer_names" in f.attrs:
                    raise FormatError(
                        f"{name}: a Keras 2 weights-only file; gatescope needs the architecture too: "
                        "save the whole model (model.save('m.keras') or model.save('m.h5'))"
                    )
                else:
                    raise FormatError(f"{name}: an HDF5 file without Keras layers (no 'layers' group, no model_config)")
        else:
            what = "a zip archive" if path.suffix.lower() == ".keras" else "an HDF5 file"
            raise FormatError(f"{name} is not a Keras file: its contents are not {what}")
    except FormatError:
        raise
    except (OSError, RuntimeError, KeyError, ValueError, TypeError, AttributeError, IndexError) as e:
        # h5py reports damaged files as OSError/RuntimeError/KeyError; json as ValueError; odd configs as the rest.
        raise FormatError(f"{name} is not a readable Keras file (truncated or damaged?): {e}") from None
    meta = {"format": "keras", "file": name} | ({"keras_version": version} if version else {})
    return _build(layers, name, vocab, meta, loss)


def _text(v: Any) -> str | None:
    return v.decode("utf-8") if isinstance(v, bytes) else (None if v is None else str(v))


def _read_archive(path: Path) -> tuple[Any, bytes, str | None]:
    """config.json, model.weights.h5 and the Keras version of a .keras zip."""
    try:
        with zipfile.ZipFile(path) as z:
            entries = set(z.namelist())
            if "config.json" not in entries:
                shown = ", ".join(sorted(entries)[:6]) or "nothing"
                raise FormatError(
                    f"{path.name}: a zip archive without config.json, so not a .keras model (it holds {shown})"
                )
            if "model.weights.h5" not in entries:
                raise FormatError(
                    f"{path.name}: the archive holds no model.weights.h5 (sharded or missing weights); "
                    "save the model again with model.save('m.keras')"
                )
            sizes = {"config.json": 16 << 20, "metadata.json": 16 << 20, "model.weights.h5": LIMITS.max_bytes}
            for member, most in sizes.items():  # what the zip says each unpacks to, before any byte is read
                size = z.getinfo(member).file_size if member in entries else 0
                if size > most:
                    raise FormatError(
                        f"{path.name}: its {member} declares {size / 2**20:,.1f} MB unpacked; gatescope reads "
                        f"at most {most / 2**20:,.0f} MB of it"
                    )
            config = json.loads(z.read("config.json").decode("utf-8"))
            weights = z.read("model.weights.h5")
            meta = json.loads(z.read("metadata.json").decode("utf-8")) if "metadata.json" in entries else {}
    except ARCHIVE_ERRORS as e:
        raise FormatError(f"{path.name} is not a readable .keras archive (truncated or damaged?): {e}") from None
    except json.JSONDecodeError as e:
        raise FormatError(f"{path.name}: config.json or metadata.json is not valid JSON ({e})") from None
    return config, weights, meta.get("keras_version") if isinstance(meta, dict) else None


# The model's layers from its config ---------------------------------------------------

Fetch = Callable[[int, dict[str, Any], str], list[np.ndarray]]  # (position, layer entry, sub-path) -> variables


def _entries(config: Any, name: str) -> list[tuple[int, dict[str, Any]]]:
    """(position, entry) of the layers of a Sequential model, or of a Functional one that is a plain chain."""
    if not isinstance(config, dict):
        raise FormatError(f"{name}: the model config is not a Keras model description")
    cls, body = config.get("class_name"), config.get("config")
    if cls not in ("Sequential", "Functional", "Model"):
        raise FormatError(
            f"{name}: the model is a {cls}; gatescope reads Sequential and Functional models "
            "(rebuild a subclassed model as keras.Sequential([...]) and save that)"
        )
    entries = body if isinstance(body, list) else (body or {}).get("layers")  # Keras < 2.2: a bare list
    if not isinstance(entries, list) or not entries or not all(isinstance(e, dict) for e in entries):
        raise FormatError(f"{name}: the model config lists no layers")
    if cls == "Sequential":
        return list(enumerate(entries))
    return _chain(entries, body if isinstance(body, dict) else {}, name)


def _layer_name(e: dict[str, Any]) -> str:
    return str(e.get("name") or (e.get("config") or {}).get("name") or e.get("class_name"))


def _sources(node: Any, masks: bool = False, in_mask: bool = False) -> set[tuple[str, int]]:
    """(layer, output index) of the tensors a Keras 3 or Keras 2 inbound-node record takes as data
    (or, with ``masks``, as its ``mask=`` argument)."""
    if isinstance(node, dict):
        h = node.get("keras_history")
        if isinstance(h, list) and len(h) >= 3:
            return {(str(h[0]), int(h[2]))} if in_mask == masks else set()
        return set().union(*(_sources(v, masks, in_mask or k == "mask") for k, v in node.items()))
    if isinstance(node, list):
        if len(node) >= 3 and isinstance(node[0], str) and isinstance(node[1], int) and isinstance(node[2], int):
            return {(node[0], node[2])} if in_mask == masks else set()  # Keras 2: [layer, node, tensor, kwargs]
        return set().union(*(_sources(v, masks, in_mask) for v in node))
    return set()


def _chain(entries: list[dict[str, Any]], body: dict[str, Any], name: str) -> list[tuple[int, dict[str, Any]]]:
    """The Functional model's layers if each takes the previous one's output and nothing else.

    Operations that only compute a mask (Keras 3 records Embedding(mask_zero=True)'s ``not_equal``)
    are left out: the mask only matters for token 0, the padding."""
    data = [_sources(e.get("inbound_nodes", [])) for e in entries]
    masks = {s for e in entries for s, _ in _sources(e.get("inbound_nodes", []), masks=True)}
    used = {s for srcs in data for s, _ in srcs}
    kept = [(pos, e) for pos, e in enumerate(entries) if _layer_name(e) not in masks - used]
    names = [_layer_name(e) for _, e in kept]
    for prev, (pos, _), this in zip(names, kept[1:], names[1:]):
        if data[pos] != {(prev, 0)}:
            shown = ", ".join(sorted(s for s, _ in data[pos])) or "nothing"
            raise FormatError(
                f"{name}: layer {this!r} takes its input from {shown}; gatescope reads a plain chain "
                "of layers, each taking the previous one's output (no branches, one input and one output)"
            )
    ins, outs = _sources(body.get("input_layers", [])), _sources(body.get("output_layers", []))
    if ins - {(names[0], 0)} or outs != {(names[-1], 0)}:
        raise FormatError(f"{name}: the model has several inputs or outputs; gatescope reads a plain chain of layers")
    return kept


def _activation(v: Any) -> str:
    if isinstance(v, dict):  # a serialized function: {"class_name": "function", "config": "softmax", ...}
        v = v.get("config") if isinstance(v.get("config"), str) else v.get("class_name")
    return str(v)


def _from_config(config: Any, fetch: Fetch, name: str) -> list[Layer]:
    """The layers that matter, in order, with their variables; a FormatError for anything gatescope cannot run."""
    layers = (_config_layer(e, functools.partial(fetch, pos, e), name) for pos, e in _entries(config, name))
    return [L for L in layers if L is not None]


def _config_layer(e: dict[str, Any], fetch: Callable[[str], list[np.ndarray]], name: str) -> Layer | None:
    """One config entry as a Layer, its variables read by ``fetch(sub-path)``; None for an identity."""
    cls, cfg, lname = e.get("class_name"), e.get("config") or {}, _layer_name(e)
    if cls in SKIPPED:
        return None
    if cls in RECURRENT:
        _check_recurrent(cls, cfg, lname, name)
        reset_after = bool(cfg.get("reset_after", False)) if cls == "GRU" else None
        way = "reverse" if cfg.get("go_backwards") else "forward"
        seq = bool(cfg.get("return_sequences", False))
        return Layer(RECURRENT[cls], lname, fetch("cell"), reset_after=reset_after, direction=way, sequences=seq)
    if cls == "Bidirectional":
        return _bidirectional(cfg, lname, fetch, name)
    if cls == "Embedding":
        return Layer("embedding", lname, fetch(""))
    if cls == "Dense" or (cls == "TimeDistributed" and (cfg.get("layer") or {}).get("class_name") == "Dense"):
        inner = cfg if cls == "Dense" else cfg["layer"].get("config") or {}
        act = _activation(inner.get("activation", "linear"))
        return Layer("dense", lname, fetch("" if cls == "Dense" else "layer"), activation=act)
    if cls in ("Activation", "Softmax"):
        return Layer("activation", lname, activation=_activation(cfg.get("activation", "softmax")))
    raise FormatError(
        f"{name}: layer {lname!r} is a {cls}; gatescope reads an optional Embedding, stacked LSTM, GRU "
        "or SimpleRNN layers and an optional Dense head (Dropout and InputLayer are skipped)"
    )


def _bidirectional(cfg: dict[str, Any], lname: str, fetch: Callable[[str], list[np.ndarray]], name: str) -> Layer:
    """A Bidirectional wrapper as one bidirectional layer: merge_mode concat, a forward LSTM/GRU/SimpleRNN
    inside and its go_backwards twin of the same class and size."""
    what = f"Bidirectional layer {lname!r}"
    mode = cfg.get("merge_mode", "concat")
    if mode != "concat":
        raise FormatError(
            f"{name}: {what} has merge_mode={mode!r}; gatescope reads merge_mode='concat' (the two directions' "
            "units side by side), not 'sum', 'mul', 'ave' or None"
        )
    inner, back = cfg.get("layer") or {}, cfg.get("backward_layer") or None
    cls, icfg = inner.get("class_name"), inner.get("config") or {}
    if cls not in RECURRENT:
        raise FormatError(f"{name}: {what} wraps a {cls}; gatescope reads a wrapped LSTM, GRU or SimpleRNN")
    _check_recurrent(cls, icfg, lname, name, backwards=False)
    if back is not None:
        bcfg = back.get("config") or {}
        if back.get("class_name") != cls or bcfg.get("units") != icfg.get("units"):
            raise FormatError(
                f"{name}: {what} has a backward_layer {back.get('class_name')}({bcfg.get('units')}) unlike its "
                f"forward {cls}({icfg.get('units')}); gatescope runs both directions as one cell of one size"
            )
        _check_recurrent(cls, bcfg, lname, name, backwards=True)
        if bool(bcfg.get("reset_after", False)) != bool(icfg.get("reset_after", False)):
            raise FormatError(f"{name}: {what}: its two directions differ in reset_after; gatescope runs one form")
    reset_after = bool(icfg.get("reset_after", False)) if cls == "GRU" else None
    fw, bw = fetch("forward_layer/cell"), fetch("backward_layer/cell")
    seq = bool(icfg.get("return_sequences", False))
    return Layer(
        RECURRENT[cls], lname, fw, reset_after=reset_after, direction="bidirectional", backward=bw, sequences=seq
    )


def _check_recurrent(cls: str, cfg: dict[str, Any], lname: str, name: str, backwards: bool | None = None) -> None:
    """A recurrent layer's config runs as gatescope's cell: tanh, sigmoid gates (and, inside a
    Bidirectional, ``backwards`` says which way each of its layers must read)."""
    what = f"{cls} layer {lname!r}"
    if backwards is not None and bool(cfg.get("go_backwards")) != backwards:
        which = "backward_layer" if backwards else "forward layer"
        raise FormatError(
            f"{name}: the {which} of Bidirectional {lname!r} has go_backwards={bool(cfg.get('go_backwards'))}; "
            "gatescope reads the usual wrapper (a forward layer and its go_backwards twin)"
        )
    if _activation(cfg.get("activation", "tanh")) != "tanh":
        act = _activation(cfg.get("activation"))
        raise FormatError(f"{name}: {what} has activation {act!r}; gatescope's cells use tanh")
    rec = _activation(cfg.get("recurrent_activation", "sigmoid"))
    if cls != "SimpleRNN" and rec != "sigmoid":
        raise FormatError(f"{name}: {what} has recurrent_activation {rec!r}; gatescope's gates use sigmoid")


def _snake(cls: str) -> str:
    """Keras's naming.to_snake_case: 'SimpleRNN' → 'simple_rnn'."""
    s = re.sub(r"\W+", "", cls)
    s = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", s)
    return re.sub("([a-z])([A-Z])", r"\1_\2", s).lower()


def _vars(group: Any, where: str, name: str) -> list[np.ndarray]:
    """The variables of a Keras 3 ``vars`` group, in order 0, 1, ..."""
    if group is None or "vars" not in group:
        raise FormatError(f"{name}: the weights file has no variables at {where}/vars")
    v = group["vars"]
    return [np.asarray(v[k][()]) for k in sorted(v, key=int)]


def _v3_fetch(f: Any, config: Any, name: str) -> Fetch:
    """Variables of a layer of a .keras archive: at layers/<class in snake case>[_<n>], n counting per class."""

    def fetch(pos: int, e: dict[str, Any], sub: str) -> list[np.ndarray]:
        entries = config["config"]["layers"]  # all of them: the numbering counts every layer
        base = _snake(str(e.get("class_name")))
        n = sum(_snake(str(o.get("class_name"))) == base for o in entries[:pos])
        where = f"layers/{base}" + (f"_{n}" if n else "") + (f"/{sub}" if sub else "")
        return _vars(f.get(where), where, name)

    return fetch


def _legacy_fetch(f: Any, name: str) -> Fetch:
    """Variables of a layer of a legacy .h5 model: model_weights/<layer name>, in the order of its weight_names."""

    def fetch(pos: int, e: dict[str, Any], sub: str) -> list[np.ndarray]:
        lname = _layer_name(e)
        g = f["model_weights"].get(lname)
        if g is None:
            raise FormatError(f"{name}: the weights of layer {lname!r} are missing (no model_weights/{lname})")
        names = [_text(w) or "" for w in g.attrs.get("weight_names", [])]
        way = sub.split("_layer")[0] + "_" if sub.endswith("_layer/cell") else None  # a Bidirectional's half
        if way is not None:  # .../forward_lstm/lstm_cell/kernel, .../backward_lstm/...
            names = [w for w in names if any(part.startswith(way) for part in w.split("/"))]
        return [np.asarray(g[w][()]) for w in names]

    return fetch


# The model's layers from a weights-only file -------------------------------------------


def _from_tree(top: Any, name: str) -> list[Layer]:
    """Layers from a Keras 3 weights file's groups: the class is in each group's name, the
    order is Embedding, the recurrent layers by their number (lstm, lstm_1, ...), then the head."""
    found = [t for t in (_tree_layer(top[gname], gname, name) for gname in top) if t is not None]
    for kind in ("embedding", "dense"):
        same = [L.name for _, _, L in found if L.kind == kind]
        if len(same) > 1:
            raise FormatError(
                f"{name}: several {kind} layers ({', '.join(sorted(same))}); without the model's config their "
                "order is unknown: give the whole model as .keras"
            )
    if not any(rank == 1 for rank, _, _ in found):
        raise FormatError(f"{name}: no LSTM, GRU or SimpleRNN layer in this weights file")
    return [L for _, _, L in sorted(found, key=lambda t: t[:2])]


def _tree_layer(g: Any, gname: str, name: str) -> tuple[int, int, Layer] | None:
    """(rank: 0 embedding, 1 recurrent, 2 head; the number in its name; the layer) of one group of a
    weights file, None for a group without variables (InputLayer, Dropout, ...)."""
    m = re.fullmatch(r"(.+?)(?:_(\d+))?", gname)  # class in snake case, and its number
    cls, n = (m[1], int(m[2] or 0)) if m else (gname, 0)
    if "forward_layer" in g or cls == "bidirectional":
        raise FormatError(
            f"{name}: layer {gname!r} is Bidirectional, and a weights-only file cannot tell its merge_mode: "
            "give the whole model as .keras (model.save('m.keras'))"
        )
    kind = TREE_KINDS.get(cls)
    if kind is None:
        if _holds_data(g):
            raise FormatError(
                f"{name}: layer {gname!r} has weights gatescope cannot place; it reads an optional Embedding, "
                "stacked LSTM, GRU or SimpleRNN layers and an optional Dense head"
            )
        return None
    sub = "cell" if kind in ORDER else ("layer" if cls == "time_distributed" else "")
    group = g[sub] if sub and sub in g else (None if sub else g)
    weights = _vars(group, f"layers/{gname}/{sub}".rstrip("/"), name)
    return {"embedding": 0, "dense": 2}.get(kind, 1), n, Layer(kind, gname, weights)


def _holds_data(g: Any) -> bool:
    seen: list[str] = []
    g.visititems(lambda n, o: seen.append(n) if hasattr(o, "shape") else None)
    return bool(seen)


# From layers to a Network ------------------------------------------------------------


def _build(
    layers: list[Layer], name: str, vocab: dict[str, Any] | None, source: dict[str, str], loss: Any = None
) -> Network:
    """Check the layers' order and sizes and make the Network (its head as the module docstring says)."""
    embedding, rec, head = _arrange(layers, name)
    spec, params = _stack(rec, name)
    E = _embedding_table(embedding, spec["input_size"], name) if embedding is not None else None
    width = spec["hidden_size"] * (2 if spec["direction"] == "bidirectional" else 1)
    dense = _dense(head, width, name) if head is not None else None
    heads: dict[str, Any] = {}
    if head is not None and dense is not None:
        K, V = dense[1].shape[0], len(vocab["vocab"]) if vocab is not None else None
        if head.activation == "softmax" or (head.activation == "linear" and _from_logits(loss)):
            heads["head"] = "next" if V == K else "classes"  # probabilities (or logits trained as such)
        elif head.activation == "linear" and (V != K or K == 1):
            heads["head"] = "values"  # what model.predict returns: the numbers themselves
        if rec[-1].sequences is False:
            heads["head_at"] = "last"  # return_sequences=False: Keras answers with the last step's output only
    return assemble(name, spec, params, source, vocab, E, dense, "Embedding", heads=heads)


def _from_logits(loss: Any) -> bool:
    """Whether a compiled loss (a name, a serialized loss object, or one per output) is a crossentropy over
    logits: ``from_logits=True``, so a linear head's outputs are logits, not values."""
    if isinstance(loss, list):
        return len(loss) == 1 and _from_logits(loss[0])
    if isinstance(loss, dict) and "class_name" not in loss and len(loss) == 1:
        return _from_logits(next(iter(loss.values())))  # {output name: loss}
    if not isinstance(loss, dict):
        return False
    cfg = loss.get("config")
    return (
        "crossentropy" in str(loss.get("class_name", "")).lower()
        and isinstance(cfg, dict)
        and cfg.get("from_logits") is True
    )


def _arrange(layers: list[Layer], name: str) -> tuple[Layer | None, list[Layer], Layer | None]:
    """(the Embedding, the recurrent layers, the Dense head), checked to come in that order, one kind of cell."""
    embedding: Layer | None = None
    rec: list[Layer] = []
    head: Layer | None = None
    for L in layers:
        if L.kind == "embedding":
            if rec or embedding is not None:
                raise FormatError(f"{name}: Embedding {L.name!r} is not the first layer; gatescope reads one, first")
            embedding = L
        elif L.kind in ORDER:
            if head is not None:
                raise FormatError(f"{name}: recurrent layer {L.name!r} comes after the Dense head {head.name!r}")
            rec.append(L)
        elif L.kind == "dense":
            head = _check_head(L, rec, head, name)
        else:
            _fold_activation(L, head, name)
    if not rec:
        raise FormatError(f"{name}: no LSTM, GRU or SimpleRNN layer in this model")
    ways = sorted({L.direction for L in rec})
    if len(ways) > 1:
        said = {"forward": "forward", "reverse": "go_backwards=True", "bidirectional": "Bidirectional"}
        shown = ", ".join(f"{L.name}: {said[L.direction]}" for L in rec)
        raise FormatError(f"{name}: the recurrent layers mix directions ({shown}); gatescope runs every layer one way")
    if ways == ["reverse"] and len(rec) > 1:
        raise FormatError(
            f"{name}: {len(rec)} stacked layers with go_backwards=True: Keras feeds each the one below's reversed "
            "sequence, so they alternate directions; gatescope reads go_backwards on a model's only recurrent layer "
            "(or use Bidirectional)"
        )
    kinds = sorted({L.kind for L in rec})
    if len(kinds) > 1:
        raise FormatError(
            f"{name}: the recurrent layers mix {' and '.join(kinds)}; gatescope stacks layers of one kind"
        )
    return embedding, rec, head


def _check_head(L: Layer, rec: list[Layer], head: Layer | None, name: str) -> Layer:
    """A Dense layer that can be the head: the only one, after the recurrent layers, softmax or linear."""
    if not rec or head is not None:
        where = "a second Dense layer" if head is not None else "a Dense layer before the recurrent layers"
        raise FormatError(f"{name}: {L.name!r} is {where}; gatescope reads one Dense head, after the recurrent layers")
    if L.activation not in (None, "softmax", "linear"):
        raise FormatError(
            f"{name}: the Dense head {L.name!r} has activation {L.activation!r}; gatescope runs the head as "
            "linear + softmax, so it reads softmax or linear (logits) heads"
        )
    return L


def _fold_activation(L: Layer, head: Layer | None, name: str) -> None:
    """An Activation layer: a linear one is an identity, a softmax after a linear head makes it a softmax head."""
    if L.activation == "linear":
        return
    if head is None or head.activation != "linear" or L.activation != "softmax":
        raise FormatError(
            f"{name}: Activation {L.name!r} ({L.activation}) is not a softmax after a linear Dense head; "
            "gatescope cannot run it"
        )
    head.activation = "softmax"


def _stack(rec: list[Layer], name: str) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The spec fields and the weights of the recurrent layers, checked to be of one size and one GRU form."""
    layers: list[dict[str, np.ndarray]] = []
    flags: set[bool] = set()
    for L in rec:
        own, reset_after = _recurrent(L, name)
        if L.direction == "bidirectional":
            back, back_reset = _recurrent(Layer(L.kind, f"{L.name} backward", L.backward, L.reset_after), name)
            own |= {f"reverse.{p}": a for p, a in back.items()}
            flags.add(back_reset)
        layers.append(own)
        flags.add(reset_after)
    D, H = rec[0].weights[0].shape[0], rec[0].weights[1].shape[0]
    for L in rec[1:]:
        if L.weights[1].shape[0] != H:
            units = L.weights[1].shape[0]
            raise FormatError(f"{name}: layer {L.name!r} has {units} units, layer 0 has {H}; they must be equal")
    if len(flags) > 1:
        raise FormatError(f"{name}: the GRU layers mix reset_after=True and False; gatescope runs one form")
    spec: dict[str, Any] = dict(cell=rec[0].kind, input_size=D, hidden_size=H, num_layers=len(rec))
    spec["reset_after"], spec["direction"] = flags.pop(), rec[0].direction
    return spec, stack(layers)


def _recurrent(L: Layer, name: str) -> tuple[dict[str, np.ndarray], bool]:
    """gatescope's per-gate weights of one recurrent layer, and whether it is a reset_after GRU."""
    W, U, b = _kernels(L, name)
    G, H = len(ORDER[L.kind]), U.shape[0]
    reset_after = _reset_after(L, b, G * H, name) if L.kind == "gru" else False
    bias_shape = (2, G * H) if reset_after else (G * H,)
    if b is not None and b.shape != bias_shape:
        raise FormatError(f"{name}: layer {L.name!r} has bias {b.shape}, expected {bias_shape}")
    zeros = np.zeros(G * H, np.float32)
    bi, bh = (b[0], b[1]) if b is not None and reset_after else (zeros if b is None else b, zeros)  # (G*H,) each
    own = gate_weights(ORDER[L.kind], W, U, bi, bh, reset_after)
    return (flip_z(own) if L.kind == "gru" else own), reset_after


def _kernels(L: Layer, name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """A recurrent layer's kernel (D, G*H), recurrent_kernel (H, G*H) and bias (None with use_bias=False)."""
    G, what = len(ORDER[L.kind]), f"layer {L.name!r}"
    if len(L.weights) not in (2, 3):
        raise FormatError(f"{name}: {what} has {len(L.weights)} variables, expected kernel, recurrent_kernel, bias")
    W, U = as_float(f"{L.name} kernel", L.weights[0]), as_float(f"{L.name} recurrent_kernel", L.weights[1])
    H = U.shape[0] if U.ndim == 2 else 0
    if W.ndim != 2 or U.shape != (H, G * H) or W.shape[1] != G * H or H == 0:
        raise FormatError(
            f"{name}: {what} has kernel {W.shape} and recurrent_kernel {U.shape}; "
            f"{ARTICLE[L.kind]} needs (D, {G}H) and (H, {G}H)"
        )
    b = as_float(f"{L.name} bias", L.weights[2]) if len(L.weights) == 3 else None
    return W, U, b


def _reset_after(L: Layer, b: np.ndarray | None, GH: int, name: str) -> bool:
    """A GRU's form: its bias (2, 3H) says reset_after=True, (3H,) False; the config must agree."""
    what = f"layer {L.name!r}"
    if b is None:
        if L.reset_after is None:
            raise FormatError(
                f"{name}: GRU {what} has no bias, so a weights-only file cannot tell reset_after; "
                "give the whole model as .keras"
            )
        return bool(L.reset_after)
    reset_after = b.shape == (2, GH)
    if L.reset_after is not None and reset_after != L.reset_after:
        raise FormatError(f"{name}: {what} says reset_after={L.reset_after} but its bias has shape {b.shape}")
    return reset_after


def _embedding_table(embedding: Layer, D: int, name: str) -> np.ndarray:
    """The Embedding's one variable, (V, D)."""
    shapes = [w.shape for w in embedding.weights]
    if len(shapes) != 1 or len(shapes[0]) != 2 or shapes[0][1] != D:
        raise FormatError(f"{name}: Embedding {embedding.name!r} has variables {shapes}, expected one (V, {D})")
    return as_float(f"{embedding.name} embeddings", embedding.weights[0])


def _dense(head: Layer, H: int, name: str) -> tuple[np.ndarray, np.ndarray]:
    """The Dense head's kernel (H, V) and bias (V,) (zeros with use_bias=False)."""
    shapes = [w.shape for w in head.weights]
    V = shapes[0][-1] if shapes and shapes[0] else 0
    if shapes not in ([(H, V)], [(H, V), (V,)]) or V == 0:
        raise FormatError(
            f"{name}: Dense {head.name!r} has variables {shapes}, expected a kernel ({H}, V) and a bias (V,)"
        )
    Wd = as_float(f"{head.name} kernel", head.weights[0])
    bd = as_float(f"{head.name} bias", head.weights[1]) if len(shapes) == 2 else np.zeros(V, np.float32)
    return Wd, bd
