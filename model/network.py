"""A network: input (tokens through an embedding or one-hot, or raw vectors), stacked
recurrent layers of one cell type, and an optional output head (linear + softmax).

    x_0 = E[ids] (embedding), one_hot(ids), or the given vectors   # (T, D)
    x_{k+1} = h of layer k                                          # (T, H)
    probs = softmax(h_top @ W_head + b_head)                        # (T, V)

Weights live in one flat dict of arrays, the form every file format is read into:
``layers.<k>.<name>`` with the names of ``cells.PARAMS``, ``embedding`` (V, D),
``head.W`` (H, V) and ``head.b`` (V,).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from .cells import GATES, PARAMS, Cell, State, make_cell
from .errors import Cancelled, FormatError, InputError
from .threads import step_threads
from .tokenizer import Tokenizer
from .trace import Trace

#: Largest embedding-times-W table (entries) precomputed for layer 0; larger ones project per call.
TABLE_LIMIT = 1 << 22


@dataclass
class Spec:
    """What a network is: its cell, sizes and vocabulary. Owned by ``Network``."""

    cell: str  # "lstm" | "peephole" | "coupled" | "gru" | "rnn"
    input_size: int  # D: the size of x_t entering layer 0
    hidden_size: int  # H
    num_layers: int = 1
    reset_after: bool = False  # gru only: reset after the recurrent product (PyTorch, ONNX, Keras)
    vocab: list[str] | None = None  # tokens, for text models
    tokenizer: str | None = None  # "char" | "word", with a vocab
    unk: str | None = "<unk>"  # the vocabulary's unknown entry
    embedding: bool = False  # tokens enter through an embedding (V, D); else one-hot (D = V)
    output_size: int | None = None  # V of the output head (linear + softmax), or None
    head: str | None = None  # "next" | "classes" | "values" (model/heads.py); None: inferred
    head_at: str = "every"  # "every" step's prediction counts, or only the "last" one's
    meta: dict[str, Any] = field(default_factory=dict)  # description, provenance, source format

    def param_names(self) -> list[str]:
        """Every weight name a network of this spec needs."""
        key = "gru_reset_after" if self.cell == "gru" and self.reset_after else self.cell
        names = [f"layers.{k}.{p}" for k in range(self.num_layers) for p in PARAMS[key]]
        if self.embedding:
            names.append("embedding")
        if self.output_size is not None:
            names += ["head.W", "head.b"]
        return names

    def expected_shape(self, name: str) -> tuple[int, ...]:
        """The shape the weight ``name`` must have."""
        H = self.hidden_size
        if name == "embedding":
            return (len(self.vocab or ()), self.input_size)
        if name == "head.W":
            return (H, self.output_size or 0)
        if name == "head.b":
            return (self.output_size or 0,)
        _, k, p = name.split(".")
        D = self.input_size if k == "0" else H
        return {"W": (D, H), "U": (H, H)}.get(p[0], (H,))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Spec:
        known = set(cls.__dataclass_fields__)
        extra = set(d) - known
        if extra:
            raise FormatError(f"unknown model settings: {', '.join(sorted(extra))}")
        return cls(**d)


def _check_spec(spec: Spec) -> None:
    if not isinstance(spec.cell, str) or spec.cell not in GATES:
        raise FormatError(f"unknown cell type {spec.cell!r}: expected one of {', '.join(GATES)}")
    for name in ("input_size", "hidden_size", "num_layers"):
        v = getattr(spec, name)
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise FormatError(f"{name} must be a positive integer, got {v!r}")
    if spec.output_size is not None and (not isinstance(spec.output_size, int) or spec.output_size < 1):
        raise FormatError(f"output_size must be a positive integer, got {spec.output_size!r}")
    if spec.vocab is not None:
        if not isinstance(spec.vocab, list):
            raise FormatError(f"the vocabulary must be a list of tokens, got {type(spec.vocab).__name__}")
        if spec.unk is not None and not isinstance(spec.unk, str):
            raise FormatError(f"unk must be a token (a string) or None, got {spec.unk!r}")
        if not spec.vocab:
            raise FormatError("the vocabulary is empty")
        if spec.tokenizer is None:
            raise FormatError("a model with a vocabulary needs a tokenizer ('char' or 'word')")
        if not spec.embedding and spec.input_size != len(spec.vocab):
            raise FormatError(
                f"one-hot input needs input_size = vocabulary size: the weights take input size {spec.input_size}, "
                f"the vocabulary has {len(spec.vocab)} tokens"
            )
    elif spec.embedding:
        raise FormatError("an embedding needs a vocabulary")


class Network:
    """A recurrent network that records every gate. Build it with ``model.load`` or from weights."""

    def __init__(self, spec: Spec, params: dict[str, np.ndarray], dtype: type = np.float32):
        _check_spec(spec)
        if spec.num_layers > len(params):
            raise FormatError(f"num_layers is {spec.num_layers}, but only {len(params)} weights were given")
        need = spec.param_names()
        missing = [n for n in need if n not in params]
        if missing:
            raise FormatError(f"missing weights: {', '.join(missing)}")
        extra = sorted(set(params) - set(need))
        if extra:
            raise FormatError(f"unexpected weights: {', '.join(extra)}")
        self.params: dict[str, np.ndarray] = {}
        for n in need:
            a = np.asarray(params[n])
            if a.shape != spec.expected_shape(n):
                raise FormatError(f"weight {n} has shape {a.shape}, expected {spec.expected_shape(n)}")
            if not np.issubdtype(a.dtype, np.floating):
                raise FormatError(f"weight {n} has dtype {a.dtype}, expected floating point")
            if not np.isfinite(a).all():
                raise FormatError(f"weight {n} holds NaN or infinite values")
            self.params[n] = np.array(a, dtype=dtype)  # a copy: later changes to the caller's arrays do not leak in
        self.spec = spec
        self.dtype = np.dtype(dtype)
        self.tokenizer = Tokenizer(spec.vocab, spec.tokenizer or "char", spec.unk) if spec.vocab else None
        self.cells: list[Cell] = []
        for k in range(spec.num_layers):
            pre = f"layers.{k}."
            own = {n[len(pre) :]: a for n, a in self.params.items() if n.startswith(pre)}
            self.cells.append(make_cell(spec.cell, own, dtype, reset_after=spec.reset_after))
        self._table: np.ndarray | None = None  # (V, G*H) layer 0's projection of every token
        if spec.vocab is not None:
            first = self.cells[0]
            V, GH = len(spec.vocab), first.W.shape[1]
            if not spec.embedding:
                self._table = first.W + first.b  # one-hot rows pick rows of W
            elif V * GH <= TABLE_LIMIT:
                self._table = first.project(self.params["embedding"])

    # The user-facing description -------------------------------------------------
    @property
    def cell(self) -> str:
        return self.spec.cell

    @property
    def gates(self) -> tuple[str, ...]:
        return GATES[self.spec.cell]

    @property
    def vocab(self) -> list[str] | None:
        return self.spec.vocab

    @property
    def hidden_size(self) -> int:
        return self.spec.hidden_size

    @property
    def num_layers(self) -> int:
        return self.spec.num_layers

    @property
    def input(self) -> str:
        """``"text"`` for models with a vocabulary, ``"vectors"`` otherwise."""
        return "text" if self.spec.vocab is not None else "vectors"

    def __repr__(self) -> str:
        s = self.spec
        return f"Network(cell={s.cell!r}, layers={s.num_layers}, hidden={s.hidden_size}, input={self.input})"

    def astype(self, dtype: type) -> Network:
        """The same network computing in ``dtype`` (float64 for gradient checks)."""
        return Network(self.spec, self.params, dtype)

    def zero_state(self) -> list[State]:
        return [c.zero_state() for c in self.cells]

    # Running ----------------------------------------------------------------------
    def trace(
        self,
        x: str | np.ndarray,
        state: list[State] | None = None,
        probs: bool = True,
        *,
        stop: Callable[[], bool] | None = None,
    ) -> Trace:
        """Run the network over ``x`` (text, or a (T, D) array) from ``state`` and record every gate.

        With ``stop``, the run goes ``chunk_steps()`` steps at a time (every layer over a chunk, then
        the next) and calls ``stop()`` before each chunk; when it returns True the run raises
        ``Cancelled`` (a server whose client left uses it). Without it, each layer runs over all steps.
        """
        with step_threads():  # the head's product too: BLAS threads it woke would spin on the cores afterwards
            tokens, unknown, xW = self._inputs(x)
            state = self._check_state(state)
            if stop is None:
                layers = self._run(xW, state)
            else:
                layers = self._run_chunks(xW, state, stop)
            p = self._probs(layers[-1]["h"]) if probs and self.spec.output_size is not None else None
        return Trace(
            cell=self.spec.cell,
            gates=self.gates,
            tokens=tokens,
            layers=layers,
            probs=p,
            unknown=unknown,
            initial=state,
            reset_after=bool(self.spec.reset_after),
        )

    def _inputs(self, x: str | np.ndarray) -> tuple[list[str], list[int], np.ndarray]:
        """The tokens, the unknown positions and layer 0's input share of every gate, (T, G*H)."""
        first = self.cells[0]
        if not isinstance(x, str):
            inp = self.check_vectors(x)  # (T, D)
            return [str(t) for t in range(inp.shape[0])], [], first.project(inp)
        if self.tokenizer is None:
            raise InputError("this model takes vectors, not text: pass a (T, D) array")
        enc = self.tokenizer.encode(x)
        if len(enc.tokens) == 0:
            raise InputError("the input is empty: nothing to trace")
        if self._table is not None:
            xW = self._table[enc.ids]  # (T, G*H) layer 0's projection, gathered (a copy)
        else:
            xW = first.project(self.params["embedding"][enc.ids])  # (T, G*H)
        return enc.tokens, enc.unknown, xW

    def _run(self, xW: np.ndarray, state: list[State]) -> list[dict[str, np.ndarray]]:
        """Every layer over every step: layer k's gates (T, H), from layer 0's input share xW."""
        layers: list[dict[str, np.ndarray]] = []
        for k, cell in enumerate(self.cells):
            if k > 0:
                xW = cell.project(layers[-1]["h"])  # (T, G*H) from the layer below
            gates, _ = cell.run(xW, state[k])
            layers.append(gates)
        return layers

    def chunk_steps(self) -> int:
        """Steps per chunk of a stoppable run: about 2^24 multiply-adds of recurrence each (tens of ms)."""
        work = sum(c.U.size for c in self.cells)  # multiply-adds a step
        return int(np.clip((1 << 24) // max(work, 1), 16, 4096))

    def _run_chunks(self, xW: np.ndarray, state: list[State], stop: Callable[[], bool]) -> list[dict[str, np.ndarray]]:
        """``_run`` a chunk of steps at a time, asking ``stop()`` before each one."""
        size, T = self.chunk_steps(), xW.shape[0]
        pieces: list[list[dict[str, np.ndarray]]] = []
        for t in range(0, T, size):
            if stop():
                raise Cancelled(f"stopped after {t} of {T} steps")
            layers = self._run(xW[t : t + size], state)
            state = [(g["h"][-1], g["c"][-1] if "c" in g else None) for g in layers]
            pieces.append(layers)
        if len(pieces) == 1:
            return pieces[0]
        return [{g: np.concatenate([p[k][g] for p in pieces]) for g in la} for k, la in enumerate(pieces[0])]

    @property
    def nbytes(self) -> int:
        """Bytes the network's arrays hold: its weights, each layer's fused copy, layer 0's token table."""
        fused = sum(a.nbytes for c in self.cells for a in (c.W, c.U, c.b))
        table = 0 if self._table is None else self._table.nbytes
        return sum(a.nbytes for a in self.params.values()) + fused + table

    def trace_nbytes(self, steps: int) -> int:
        """Bytes the arrays of a trace of ``steps`` steps take (every gate of every layer, and the probabilities)."""
        per_step = sum(len(self.gates) * c.hidden_size for c in self.cells) + (self.spec.output_size or 0)
        return steps * per_step * self.dtype.itemsize

    def _probs(self, h: np.ndarray) -> np.ndarray:
        logits = h @ self.params["head.W"]  # (T, V)
        logits += self.params["head.b"]
        logits -= logits.max(axis=1, keepdims=True)
        np.exp(logits, out=logits)
        logits /= logits.sum(axis=1, keepdims=True)
        return logits

    def check_vectors(self, x: Any) -> np.ndarray:
        """``x`` as a finite (T, D) array in the network's dtype, or a ValueError naming the problem."""
        try:
            a = np.asarray(x, dtype=self.dtype)
        except (TypeError, ValueError) as e:
            raise InputError(f"the input is not an array of numbers: {e}") from None
        D = self.spec.input_size
        if a.ndim != 2:
            raise InputError(f"the input must be a (T, {D}) array of vectors, got shape {a.shape}")
        if a.shape[0] == 0:
            raise InputError("the input is empty: nothing to trace")
        if a.shape[1] != D:
            raise InputError(f"each input vector must have {D} values, got {a.shape[1]}")
        if not np.isfinite(a).all():
            bad = np.argwhere(~np.isfinite(a))[0]
            raise InputError(f"the input holds NaN or infinite values (first at step {bad[0]}, entry {bad[1]})")
        return a

    def _check_state(self, state: list[State] | None) -> list[State]:
        if state is None:
            return self.zero_state()
        if len(state) != self.spec.num_layers:
            raise InputError(f"the state has {len(state)} layers, the model {self.spec.num_layers}")
        H, out = self.spec.hidden_size, []
        for k, (cell, entry) in enumerate(zip(self.cells, state)):
            if not isinstance(entry, (tuple, list)) or len(entry) != 2:
                raise InputError(
                    f"layer {k}: the state must hold one (h, c) pair per layer (c is None for gru and rnn); "
                    f"got {type(entry).__name__}" + (f" of length {len(entry)}" if hasattr(entry, "__len__") else "")
                )
            h, c = entry
            h = np.asarray(h, self.dtype)
            if h.shape != (H,):
                raise InputError(f"layer {k}: state h has shape {h.shape}, expected ({H},)")
            if not np.isfinite(h).all() or (c is not None and not np.isfinite(np.asarray(c, self.dtype)).all()):
                raise InputError(f"layer {k}: the state holds NaN or infinite values")
            if cell.has_c:
                if c is None:
                    raise InputError(f"layer {k}: an {self.spec.cell} state needs c as well as h")
                c = np.asarray(c, self.dtype)
                if c.shape != (H,):
                    raise InputError(f"layer {k}: state c has shape {c.shape}, expected ({H},)")
            out.append((h.copy(), np.array(c, self.dtype) if cell.has_c else None))
        return out
