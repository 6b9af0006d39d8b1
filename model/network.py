"""A network: input (tokens through an embedding or one-hot, or raw vectors), stacked
recurrent layers of one cell type, and an optional output head (model/heads.py says what it means).

    x_0 = E[ids] (embedding), one_hot(ids), or the given vectors   # (T, D)
    x_{k+1} = h of layer k                                          # (T, H), or (T, 2H) bidirectional
    y = h_top @ W_head + b_head                                     # (T, K)
                  (a "last" head with a backward direction: its last row reads [h_fwd_{T-1} ; h_bwd_0], heads.py)
    probs = softmax(y)  (next token, classes)  or  values = y  (regression)

Directions (``Spec.direction``, every layer alike, as PyTorch's ``bidirectional``, Keras's
``Bidirectional``/``go_backwards`` and ONNX's ``direction``): "forward" reads x_0 .. x_{T-1};
"reverse" reads x_{T-1} .. x_0 (its state at step t comes from step t+1); "bidirectional" runs
both with weights of their own and concatenates them: h_t = [h_fwd_t ; h_bwd_t]  # (2H,)
(PyTorch's output layout). Every array of a trace is in time order whatever the direction: row t
is the step that read x_t.

Weights live in one flat dict of arrays, the form every file format is read into:
``layers.<k>.<name>`` with the names of ``cells.PARAMS`` (a reverse network's one direction too),
``layers.<k>.reverse.<name>`` for a bidirectional layer's backward direction, ``embedding`` (V, D),
``head.W`` (H, K) ((2H, K) bidirectional) and ``head.b`` (K,).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from types import MappingProxyType
from typing import Any

import numpy as np

from . import batched
from . import interventions as intervene
from . import threads as _threads
from .cells import GATES, PARAMS, Cell, State, make_cell
from .errors import Cancelled, FormatError, InputError
from .heads import Head, resolve
from .heads import check as check_head
from .held import Edits, run_held
from .interventions import Intervention
from .threads import blas_threads, step_threads
from .tokenizer import Encoded, Tokenizer, make_tokenizer
from .trace import Trace

#: The directions a layer runs, per ``Spec.direction``: each holds H consecutive units of the layer.
DIRECTIONS: dict[str, tuple[str, ...]] = {
    "forward": ("forward",),
    "reverse": ("backward",),
    "bidirectional": ("forward", "backward"),
}

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
    tokenizer: str | None = None  # "char" | "word" | "hf", with a vocab
    unk: str | None = "<unk>"  # the vocabulary's unknown entry
    tokenizer_options: dict[str, Any] | None = None  # word: lowercase, split_punct, strip_punct, eol (tokenizer.py)
    tokenizer_json: str | None = None  # "hf": the Hugging Face tokenizer.json's text (its pieces are ``vocab``)
    embedding: bool = False  # tokens enter through an embedding (V, D); else one-hot (D = V)
    output_size: int | None = None  # K of the output head (a linear map), or None
    head: str | None = None  # "next" | "classes" | "values" (model/heads.py); None: inferred
    head_at: str = "every"  # "every" step's prediction counts, or only the "last" one's
    labels: list[str] | None = None  # a name per output; None: the vocabulary, "class j" or "y"
    direction: str = "forward"  # "forward" | "reverse" | "bidirectional", every layer alike
    proj_size: int | None = None  # lstm only: P < H, h = W_hr (o * tanh C) (PyTorch proj_size), or None
    meta: dict[str, Any] = field(default_factory=dict)  # description, provenance, source format

    def param_names(self) -> list[str]:
        """Every weight name a network of this spec needs."""
        key = "gru_reset_after" if self.cell == "gru" and self.reset_after else self.cell
        own = PARAMS[key] + (("W_hr",) if self.proj_size is not None else ())
        dirs = [""] + (["reverse."] if self.direction == "bidirectional" else [])
        names = [f"layers.{k}.{d}{p}" for k in range(self.num_layers) for d in dirs for p in own]
        if self.embedding:
            names.append("embedding")
        if self.output_size is not None:
            names += ["head.W", "head.b"]
        return names

    @property
    def directions(self) -> tuple[str, ...]:
        """The directions each layer runs ("forward", "backward"), in the order of their units."""
        return DIRECTIONS[self.direction]

    @property
    def width(self) -> int:
        """Units of a layer's output h: H (P with proj_size), twice that for a bidirectional layer (forward first)."""
        return self.out_size * len(DIRECTIONS.get(self.direction, ("forward",)))

    def expected_shape(self, name: str) -> tuple[int, ...]:
        """The shape the weight ``name`` must have."""
        H, R = self.hidden_size, self.out_size
        if name == "embedding":
            return (len(self.vocab or ()), self.input_size)
        if name == "head.W":
            return (self.width, self.output_size or 0)
        if name == "head.b":
            return (self.output_size or 0,)
        k, p = name.split(".")[1], name.split(".")[-1]
        D = self.input_size if k == "0" else self.width  # a layer above a bidirectional one reads [h_fwd ; h_bwd]
        if p == "W_hr":
            return (H, R)
        return {"W": (D, H), "U": (R, H)}.get(p[0], (H,))

    @property
    def out_size(self) -> int:
        """The width of one direction's h: P with a projection, else H."""
        return self.proj_size if self.proj_size is not None else self.hidden_size

    def gate_names(self) -> tuple[str, ...]:
        """The gate keys of a trace, in the diagram's order (a projected LSTM records m = o*tanh(C) before h)."""
        gates = GATES[self.cell]
        return gates[:-1] + ("m", "h") if self.proj_size is not None else gates

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
    if not isinstance(spec.direction, str) or spec.direction not in DIRECTIONS:
        raise FormatError(f"unknown direction {spec.direction!r}: expected one of {', '.join(DIRECTIONS)}")
    for name in ("input_size", "hidden_size", "num_layers"):
        v = getattr(spec, name)
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise FormatError(f"{name} must be a positive integer, got {v!r}")
    if spec.proj_size is not None:
        P = spec.proj_size
        if spec.cell != "lstm":
            raise FormatError(f"proj_size is for lstm cells only, not {spec.cell!r}")
        if spec.direction != "forward":
            raise FormatError(f"proj_size runs forward only here, not {spec.direction!r}")
        if not isinstance(P, int) or isinstance(P, bool) or not 0 < P < spec.hidden_size:
            raise FormatError(
                f"proj_size must be an integer from 1 to hidden_size - 1 = {spec.hidden_size - 1}, got {P!r}"
            )
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
            raise FormatError("a model with a vocabulary needs a tokenizer ('char', 'word' or 'hf')")
        if not spec.embedding and spec.input_size != len(spec.vocab):
            raise FormatError(
                f"one-hot input needs input_size = vocabulary size: the weights take input size {spec.input_size}, "
                f"the vocabulary has {len(spec.vocab)} tokens"
            )
    elif spec.embedding:
        raise FormatError("an embedding needs a vocabulary")
    check_head(spec)


class Network:
    """A recurrent network that records every gate. Build it with ``model.load`` or from weights."""

    def __init__(self, spec: Spec, params: Mapping[str, np.ndarray], dtype: type = np.float32):
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
        params_: dict[str, np.ndarray] = {}
        for n in need:
            a = np.asarray(params[n])
            if a.shape != spec.expected_shape(n):
                raise FormatError(f"weight {n} has shape {a.shape}, expected {spec.expected_shape(n)}")
            if not np.issubdtype(a.dtype, np.floating):
                raise FormatError(f"weight {n} has dtype {a.dtype}, expected floating point")
            if not np.isfinite(a).all():
                raise FormatError(f"weight {n} holds NaN or infinite values")
            params_[n] = np.array(a, dtype=dtype)  # a copy: later changes to the caller's arrays do not leak in
            params_[n].flags.writeable = False  # the fused copies below are what runs: an edit must not pass unseen
        #: The weights, read-only (a mapping of read-only arrays): ``with_params`` makes a network with others.
        self.params: Mapping[str, np.ndarray] = MappingProxyType(params_)
        self.spec = spec
        self.dtype = np.dtype(dtype)
        self.head: Head | None = resolve(spec)  # what the output means, or None without one
        self.tokenizer: Tokenizer | None = None
        if spec.vocab:
            s, voc = spec, spec.vocab
            self.tokenizer = make_tokenizer(voc, s.tokenizer, s.unk, s.tokenizer_options, s.tokenizer_json)
        self.cells: list[Cell] = []  # per layer: its forward cell (a reverse network's backward one)
        self.reverse_cells: list[Cell] = []  # per layer of a bidirectional network: its backward cell
        for k in range(spec.num_layers):
            for pre, into in ((f"layers.{k}.", self.cells), (f"layers.{k}.reverse.", self.reverse_cells)):
                own = {
                    n[len(pre) :]: a for n, a in self.params.items() if n.startswith(pre) and "." not in n[len(pre) :]
                }
                if own:
                    into.append(make_cell(spec.cell, own, dtype, reset_after=spec.reset_after))
        self._table: np.ndarray | None = None  # (V, n*G*H) layer 0's projection of every token, each direction's
        if spec.vocab is not None:
            first = self._layer_cells(0)
            V, GH = len(spec.vocab), sum(c.W.shape[1] for c in first)
            if not spec.embedding:
                self._table = _side_by_side([c.W + c.b for c in first])  # one-hot rows pick rows of W
            elif V * GH <= TABLE_LIMIT:
                self._table = self._project(0, self.params["embedding"])

    # The user-facing description -------------------------------------------------
    @property
    def cell(self) -> str:
        return self.spec.cell

    @property
    def gates(self) -> tuple[str, ...]:
        return self.spec.gate_names()

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
    def direction(self) -> str:
        """ "forward", "reverse" or "bidirectional" (every layer alike)."""
        return self.spec.direction

    @property
    def width(self) -> int:
        """Units of each layer's trace arrays: H, or 2H bidirectional (forward units 0..H-1, backward H..2H-1)."""
        return self.spec.hidden_size * len(self.spec.directions)  # a projected h is narrower: spec.width

    @property
    def input(self) -> str:
        """``"text"`` for models with a vocabulary, ``"vectors"`` otherwise."""
        return "text" if self.spec.vocab is not None else "vectors"

    def __repr__(self) -> str:
        s = self.spec
        return f"Network(cell={s.cell!r}, layers={s.num_layers}, hidden={s.hidden_size}, input={self.input})"

    def with_params(self, changes: Mapping[str, Any]) -> Network:
        """A new network with the weights named in ``changes`` replaced (same names and shapes, checked),
        everything else shared with this one: ``net.with_params({"layers.0.b_f": net.params["layers.0.b_f"] + 1})``.

        ``net.params`` itself is read-only: the cells run on fused copies made when the network is built,
        so an edit in place would change nothing; this builds the fused copies again.
        """
        unknown = sorted(set(changes) - set(self.params))
        if unknown:
            raise FormatError(f"no such weights: {', '.join(unknown)} (net.params lists the names)")
        for n, a in changes.items():
            if np.shape(a) != self.params[n].shape:
                raise FormatError(f"weight {n} has shape {np.shape(a)}, expected {self.params[n].shape}")
        return Network(replace(self.spec, meta=dict(self.spec.meta)), {**self.params, **changes}, self.dtype.type)

    def astype(self, dtype: type) -> Network:
        """The same network computing in ``dtype`` (float64 for gradient checks)."""
        return Network(self.spec, dict(self.params), dtype)

    def zero_state(self) -> list[State]:
        """Zeros for every layer: h (and c) of ``width`` units, each direction's side by side."""
        W, C, has_c = self.spec.width, self.width, self.cells[0].has_c
        return [(np.zeros(W, self.dtype), np.zeros(C, self.dtype) if has_c else None) for _ in self.cells]

    def _layer_cells(self, k: int) -> list[Cell]:
        """Layer k's cells in the order of ``spec.directions``."""
        return [self.cells[k]] + ([self.reverse_cells[k]] if self.reverse_cells else [])

    def _project(self, k: int, x: np.ndarray) -> np.ndarray:
        """Layer k's input share of every gate, each direction's side by side: (T, n*G*H)."""
        return _side_by_side([c.project(x) for c in self._layer_cells(k)])

    # Running ----------------------------------------------------------------------
    def trace(
        self,
        x: str | np.ndarray | Encoded,
        state: list[State] | None = None,
        probs: bool = True,
        *,
        stop: Callable[[], bool] | None = None,
        reuse: Trace | None = None,
        interventions: Sequence[Mapping[str, Any] | Intervention] | None = None,
    ) -> Trace:
        """Run the network over ``x`` (text, its ``tokenizer.encode``-d form, or a (T, D) array) from
        ``state`` and record every gate.

        ``interventions``: units held, scaled, zeroed or patched over ranges of steps (model/interventions.py
        says how and what they mean); the trace records the values used and lists them in ``intervened``.
        None or an empty list is a plain trace, bit for bit.

        ``state`` holds per layer (h, c) of ``width`` units: a forward direction starts from its half
        before x_0, a backward direction from its half after x_{T-1} (there is no other place a
        backward run can start from: it cannot be resumed mid-sequence, so a text that grows must be
        traced again whole; ``reuse`` spares the forward direction that).

        With ``stop``, the run goes ``chunk_steps()`` steps at a time (every layer over a chunk, then
        the next; a reverse or bidirectional network runs a layer's directions one after the other,
        a chunk at a time) and calls ``stop()`` before each chunk; when it returns True the run raises
        ``Cancelled`` (a server whose client left uses it). Without it, each layer runs over all steps.

        ``reuse``: a trace of this network over the first steps of the same input from the same state
        (a bidirectional network's only): layer 0's forward direction is taken from it and run only
        over the steps after it; every other direction and layer depends on the steps after it, so
        they run over the whole input. The result equals a trace without ``reuse`` exactly.
        """
        if interventions is not None and len(interventions):
            return self._trace_held(x, state, probs, stop, interventions)
        with step_threads():  # the head's product too: BLAS threads it woke would spin on the cores afterwards
            enc, xW = self._inputs(x)
            state = self._check_state(state)
            if self.spec.direction != "forward":
                layers = self._run_directions(xW, state, stop, reuse)
            elif stop is None:
                layers = self._run(xW, state)
            else:
                layers = self._run_chunks(xW, state, stop)
            return self._trace_of(enc, layers, state, probs)

    def _trace_held(
        self,
        x: str | np.ndarray | Encoded,
        state: list[State] | None,
        probs: bool,
        stop: Callable[[], bool] | None,
        interventions: Sequence[Mapping[str, Any] | Intervention],
    ) -> Trace:
        """``trace`` with interventions: layers with edits run model/held.py's loops, the others cells.py's."""
        checked = intervene.check(self, interventions)  # refused before any work
        with step_threads(), np.errstate(over="ignore", invalid="ignore"):  # an overflow is refused below
            enc, xW = self._inputs(x)
            state = self._check_state(state)
            T = xW.shape[0]
            held = intervene.resolve(self, checked, T)
            edits = intervene.plan(self, held, T)
            size, now = (self.chunk_steps() if stop is not None else T), state
            pieces: list[list[dict[str, np.ndarray]]] = []
            for t in range(0, T, size):  # a chunk at a time with ``stop``, as _run_chunks
                if stop is not None and stop():
                    raise Cancelled(f"stopped after {t} of {T} steps")
                layers = self._run(xW[t : t + size], now, intervene.window(edits, t, t + size))
                now = [(g["h"][-1], g["c"][-1] if "c" in g else None) for g in layers]
                pieces.append(layers)
            if len(pieces) > 1:
                layers = [{g: np.concatenate([p[k][g] for p in pieces]) for g in la} for k, la in enumerate(pieces[0])]
            tr = self._trace_of(enc, layers, state, probs)
        # only a held layer can leave the finite numbers (a held |value| <= 1e6 compounds through C); those above
        # it and the head read a bounded h from it
        sums = {k: [tr.layers[k][g] for g in ("c", "h") if g in tr.gates] for k in sorted({it.layer for it in held})}
        bad = [k for k, arrays in sums.items() if not all(np.isfinite(a).all() for a in arrays)]
        if bad:
            raise InputError(
                f"the interventions made layer {bad[0]} overflow (infinite or NaN values): "
                "hold smaller values or scale by less"
            )
        tr.intervened = held
        return tr

    def _trace_of(
        self,
        enc: Encoded,
        layers: list[dict[str, np.ndarray]],
        state: list[State],
        probs: bool,
        gates: tuple[str, ...] | None = None,
    ) -> Trace:
        """The Trace of one run: its tokens, its layers' gates (only ``gates``, when given), and the head's
        outputs (when ``probs``)."""
        head, p, values = self.head, None, None
        if probs and head is not None:
            y = self._outputs(layers[-1]["h"])  # (T, K)
            if head.at == "last":
                self._answer(layers[-1]["h"], y)
            p, values = (self._softmax(y), None) if head.softmax else (None, y)
        if gates is not None and gates != self.gates:
            layers = [{g: la[g] for g in gates} for la in layers]
        return Trace(
            cell=self.spec.cell,
            gates=self.gates if gates is None else gates,
            tokens=enc.tokens,
            layers=layers,
            probs=p,
            unknown=enc.unknown,
            display=enc.display,
            initial=state,
            reset_after=bool(self.spec.reset_after),
            head_kind=None if head is None else head.kind,
            values=values,
            labels=None if head is None else list(head.labels),
            head_at="every" if head is None else head.at,
            directions=self.spec.directions,
        )

    def trace_batch(
        self,
        xs: Sequence[str | np.ndarray | Encoded],
        probs: bool = True,
        *,
        stop: Callable[[], bool] | None = None,
        gates: Sequence[str] | None = None,
        threads: int | None = None,
        states: Sequence[list[State] | None] | None = None,
    ) -> list[Trace]:
        """``trace`` of several documents at once, each from the zero state (or its ``states`` entry): one Trace
        per document, equal to ``self.trace(x, state)`` of that document alone (to float rounding: a step's
        product is matrix-matrix here,
        and a float32 network's gates come from compiled loops, model/kernels.py, within 2e-7 of NumPy's).

        The documents run together, longest first: each step is one product h (n, P) @ U (P, G*H) for the
        n documents still running, then one compiled pass over their gates (model/batched.py; a float64
        network runs ``Cell.run_batch``'s NumPy loop). A backward direction runs each document reversed on
        its own, from the document's own last step. Every cell and direction is supported. With ``stop``, it
        is asked before each chunk of ``chunk_steps()`` steps of each layer and direction; True raises
        ``Cancelled``.

        ``gates``: the gates kept, e.g. ``("h", "c")`` (default: every gate of ``self.gates``); the Traces hold
        only those (``Trace.gates`` names them), the others are never stored. ``probs=False`` skips the head.
        ``threads``: how many threads share the documents (default ``threads.BATCH_THREADS``, one): each runs
        its share's recurrence on one BLAS thread, so they never wait on each other (the NumPy path gives BLAS
        that many threads instead). ``states``: each document's starting state as ``trace`` takes it (None: zeros),
        a forward network's only; a document traced in pieces continues from the piece before's ``Trace.state``
        (which needs h and, for a cell with a c, c kept).

        Refused with an InputError: no documents, a gate the model does not have, or a document ``trace``
        would refuse (its index named)."""
        if isinstance(xs, (str, np.ndarray, Encoded)):
            raise InputError("trace_batch takes a list of documents (texts or (T, D) arrays), not one document")
        docs = list(xs)
        if not docs:
            raise InputError("no documents to trace: pass a list of at least one text or (T, D) array")
        kept = self._kept_gates(gates)
        starts = self._batch_states(states, len(docs))
        compiled = batched.available(self.dtype)
        threads = _threads.BATCH_THREADS if threads is None else threads
        if not isinstance(threads, int) or isinstance(threads, bool) or threads < 1:
            raise InputError(f"threads must be a positive integer, got {threads!r}")
        with blas_threads(1 if compiled else threads):  # compiled: each thread its own share, on one BLAS thread
            encs, firsts = [], []
            for n, x in enumerate(docs):
                try:
                    enc, xW = self._inputs(x, gather=not compiled)
                except InputError as e:
                    raise InputError(f"document {n}: {e}") from None
                encs.append(enc)
                firsts.append(xW)
            lengths = np.array([len(e.tokens) for e in encs])
            top = self.head is not None and probs  # the head reads the top layer's h
            keep = [set(kept) | ({"h"} if k < self.num_layers - 1 or top else set()) for k in range(self.num_layers)]
            init = None if states is None else [_stacked(starts, k) for k in range(self.num_layers)]
            if compiled:
                layers = self._run_compiled(encs, firsts, lengths, keep, stop, threads, init)
            else:
                layers = self._run_batch_numpy(firsts, lengths, stop, init)
            traces = []
            for m, enc in enumerate(encs):
                n = int(lengths[m])
                own = [{g: a[m, :n] for g, a in la.items()} for la in layers]  # contiguous views of the batch's
                traces.append(self._trace_of(enc, own, starts[m], probs, kept))  # arrays
        return traces

    def _batch_states(self, states: Sequence[list[State] | None] | None, n: int) -> list[list[State]]:
        """Each document's checked starting state (zeros where None); InputError for a network with a backward
        direction or a count that is not the documents'."""
        if states is None:
            return [self.zero_state() for _ in range(n)]
        if self.spec.direction != "forward":
            raise InputError("states= continues forward networks only: a backward direction starts at the end")
        if len(states) != n:
            raise InputError(f"states holds {len(states)} entries for {n} documents: one each (None for zeros)")
        out = []
        for m, st in enumerate(states):
            try:
                out.append(self._check_state(st))
            except InputError as e:
                raise InputError(f"document {m}: {e}") from None
        return out

    def _kept_gates(self, gates: Sequence[str] | None) -> tuple[str, ...]:
        """The gates a batched trace keeps, in the diagram's order; InputError names the model's gates."""
        if gates is None:
            return self.gates
        if isinstance(gates, str):
            gates = [gates]
        unknown = [g for g in gates if g not in self.gates]
        if unknown:
            raise InputError(f"unknown gate {unknown[0]!r}: a {self.spec.cell} layer records {', '.join(self.gates)}")
        if not gates:
            raise InputError(f"no gates to keep: name at least one of {', '.join(self.gates)}")
        return tuple(g for g in self.gates if g in gates)

    def _run_compiled(
        self,
        encs: list[Encoded],
        firsts: Sequence[np.ndarray | None],
        lengths: np.ndarray,
        keep: list[set[str]],
        stop: Callable[[], bool] | None,
        threads: int,
        init: list[tuple[np.ndarray, np.ndarray | None]] | None = None,
    ) -> list[dict[str, np.ndarray]]:
        """The batched recurrence of model/batched.py: per layer, gate -> (N, T, width), zeros past the ends."""
        N, T = len(encs), int(lengths.max())
        first: tuple[np.ndarray, np.ndarray] | np.ndarray
        if firsts[0] is None:  # a text model with a token table: layer 0 reads it by token id
            assert self._table is not None
            ids = np.zeros((N, T), np.int64)
            for m, enc in enumerate(encs):
                ids[m, : lengths[m]] = enc.ids
            first = (self._table, ids)
        else:
            first = np.zeros((N, T, firsts[0].shape[1]), self.dtype)  # (N, T, n*G*H) zeros after the end
            for m, xW in enumerate(firsts):
                first[m, : lengths[m]] = xW
        cells = [self._layer_cells(k) for k in range(self.num_layers)]
        chunk = self.chunk_steps() if stop is not None else T
        return batched.run(cells, self.spec.directions, self._project, lengths, first, keep, chunk, stop, threads, init)

    def _run_batch_numpy(
        self,
        firsts: list[np.ndarray],
        lengths: np.ndarray,
        stop: Callable[[], bool] | None,
        init: list[tuple[np.ndarray, np.ndarray | None]] | None = None,
    ) -> list[dict[str, np.ndarray]]:
        """``Cell.run_batch`` over the documents padded to the longest, time-major: per layer, gate ->
        (N, T, width) batch-major in the documents' order, zeros past each one's end. A forward run is
        left-aligned (a document's padding comes after its end, so nothing it computes reaches the document's
        own steps); a backward direction runs each document reversed on its own (x_{T_b-1} first, padding
        after x_0)."""
        order = sorted(range(len(firsts)), key=lambda n: -len(firsts[n]))  # longest first: the active rows shrink
        L = lengths[order]
        B, T = len(firsts), int(L[0])
        xW = np.zeros((T, B, firsts[0].shape[1]), self.dtype)  # (T, B, n*G*H) left-aligned, zeros after the end
        for b, n in enumerate(order):
            xW[: L[b], b] = firsts[n]
        t = np.arange(T)[:, None]
        flip = np.where(t < L, L - 1 - t, t)  # (T, B) row of x_t in a document reversed on its own
        cols = np.arange(B)
        # Spans of steps over which the same documents are running (the first `active` of them, longest first),
        # cut every chunk_steps() steps with ``stop``: an ended document's rows are not computed any more.
        cuts = set(L.tolist()) | set(range(0, T, self.chunk_steps() if stop is not None else T))
        edges = sorted(cuts | {T})
        spans = [(a, b, int((L > a).sum())) for a, b in zip(edges, edges[1:])]
        layers: list[dict[str, np.ndarray]] = []  # per layer: gate -> (B, T, width), time order, zeros past ends
        for k in range(self.num_layers):
            if k > 0:
                below = layers[-1]["h"]
                xW = np.ascontiguousarray(self._project(k, below.reshape(B * T, -1)).reshape(B, T, -1).swapaxes(0, 1))
            runs = []
            for j, (cell, way) in enumerate(zip(self._layer_cells(k), self.spec.directions)):
                GH = cell.W.shape[1]
                part = xW[..., j * GH : (j + 1) * GH]
                if way == "backward":
                    part = part[flip, cols]  # each document reversed on its own: its x_{T_b-1} at row 0
                h0 = np.zeros((B, cell.out_size), self.dtype)
                st: State = (h0, np.zeros((B, cell.hidden_size), self.dtype) if cell.has_c else None)
                if init is not None:  # a forward network: one direction, the documents' own states in batch order
                    c0 = init[k][1]
                    st = (init[k][0][order].astype(self.dtype), None if c0 is None else c0[order].astype(self.dtype))
                run: dict[str, np.ndarray] = {}
                for t0, t1, active in spans:
                    if stop is not None and stop():
                        raise Cancelled(f"stopped in layer {k} ({way}) after {t0} of {T} steps")
                    h, c = st[0][:active], None if st[1] is None else st[1][:active]
                    gates, st = cell.run_batch(part[t0:t1, :active], (h, c))  # a view of our own copy, consumed
                    for g, a in gates.items():
                        if g not in run:
                            run[g] = np.zeros((B, T, a.shape[2]), self.dtype)  # batch-major: a document's rows
                        run[g][:active, t0:t1] = a.swapaxes(0, 1)  # are one block
                if way == "backward":
                    run = {g: a[cols[:, None], flip.T] for g, a in run.items()}  # back in time order (an involution)
                runs.append(run)
            layers.append(runs[0] if len(runs) == 1 else {g: np.concatenate([r[g] for r in runs], 2) for g in runs[0]})
        inverse = np.argsort(order)
        return [{g: a[inverse] for g, a in la.items()} for la in layers]  # rows back in the documents' order

    def _inputs(self, x: str | np.ndarray | Encoded, gather: bool = True) -> tuple[Encoded, np.ndarray]:
        """The tokens (ids, unknown positions, display) and layer 0's input share of every gate, (T, G*H)
        (None instead with ``gather=False`` when the token table holds it: the caller reads the table)."""
        if not isinstance(x, (str, Encoded)):
            inp = self.check_vectors(x)  # (T, D)
            steps = np.arange(inp.shape[0])
            tokens = [str(t) for t in steps.tolist()]  # a step's name is its index; it shows as its values
            return Encoded(steps, tokens, [], display=vector_labels(inp)), self._project(0, inp)
        if self.tokenizer is None:
            raise InputError("this model takes vectors, not text: pass a (T, D) array")
        enc = self.tokenizer.encode(x) if isinstance(x, str) else x.check()
        if len(enc.tokens) == 0:
            raise InputError("the input is empty: nothing to trace")
        if self._table is not None:
            if not gather:
                return enc, None  # type: ignore[return-value]
            xW = self._table[enc.ids]  # (T, G*H) layer 0's projection, gathered (a copy)
        else:
            xW = self._project(0, self.params["embedding"][enc.ids])  # (T, n*G*H)
        return enc, xW

    def _run(self, xW: np.ndarray, state: list[State], edits: list[Edits] | None = None) -> list[dict[str, np.ndarray]]:
        """Every layer over every step: layer k's gates (T, H), from layer 0's input share xW; a layer with
        ``edits`` (model/held.py) runs the loop that applies them."""
        layers: list[dict[str, np.ndarray]] = []
        for k, cell in enumerate(self.cells):
            if k > 0:
                xW = cell.project(layers[-1]["h"])  # (T, G*H) from the layer below
            if edits is not None and edits[k]:
                gates, _ = run_held(cell, xW, state[k], edits[k])
            else:
                gates, _ = cell.run(xW, state[k])
            layers.append(gates)
        return layers

    def _run_directions(
        self, xW: np.ndarray, state: list[State], stop: Callable[[], bool] | None, reuse: Trace | None
    ) -> list[dict[str, np.ndarray]]:
        """A reverse or bidirectional network's layers: each direction over every step (a chunk at a time
        with ``stop``), the backward one from x_{T-1} to x_0; layer k's gates (T, width) in time order."""
        size = self.chunk_steps() if stop is not None else None
        H, T = self.hidden_size, xW.shape[0]
        layers: list[dict[str, np.ndarray]] = []
        for k in range(self.num_layers):
            if k > 0:
                xW = self._project(k, layers[-1]["h"])  # (T, n*G*H) from the layer below: [h_fwd ; h_bwd]
            h0, c0 = state[k]
            runs = []
            for j, (cell, way) in enumerate(zip(self._layer_cells(k), self.spec.directions)):
                GH, units = cell.W.shape[1], slice(j * H, (j + 1) * H)
                st: State = (h0[units], None if c0 is None else c0[units])
                kept = reuse.layers[0] if reuse is not None and k == 0 and way == "forward" and len(reuse) else None
                where = f"layer {k} ({way})"
                run = self._direction(cell, xW[:, j * GH : (j + 1) * GH], st, way, stop, size, where, kept, units)
                runs.append(run)
            if len(runs) == 1:
                layers.append({g: np.ascontiguousarray(a) for g, a in runs[0].items()})
            else:
                layers.append({g: np.concatenate([r[g] for r in runs], axis=1) for g in runs[0]})  # (T, 2H)
        assert all(la["h"].shape[0] == T for la in layers)
        return layers

    def _direction(
        self,
        cell: Cell,
        xW: np.ndarray,
        state: State,
        way: str,
        stop: Callable[[], bool] | None,
        size: int | None,
        where: str,
        kept: dict[str, np.ndarray] | None,
        units: slice,
    ) -> dict[str, np.ndarray]:
        """One direction of a layer over xW (T, G*H): gates (T, H) in time order. A backward run reads
        the steps from the last; ``kept`` (a forward run's) holds the first steps' gates already run."""
        T, start = xW.shape[0], 0
        if way == "backward":
            xW = xW[::-1]  # x_{T-1} first: the backward run is a forward run over the reversed steps
        elif kept is not None and len(kept["h"]) <= T:
            start = len(kept["h"])
            c = kept["c"][-1, units] if "c" in kept else None
            state = (kept["h"][-1, units].copy(), None if c is None else c.copy())
        if start == T and kept is not None:  # every step kept (the text lost its end)
            return {g: a[:, units] for g, a in kept.items()}
        xW = np.ascontiguousarray(xW[start:])  # (T', G*H) a copy the cell consumes in place
        step = size or max(len(xW), 1)
        pieces = []
        for t in range(0, len(xW), step):
            if stop is not None and stop():
                raise Cancelled(f"stopped in {where} after {start + t} of {T} steps")
            gates, (h, c) = cell.run(xW[t : t + step], state)
            state = (h, c)
            pieces.append(gates)
        run = {g: np.concatenate([p[g] for p in pieces]) if len(pieces) > 1 else pieces[0][g] for g in pieces[0]}
        if way == "backward":
            return {g: a[::-1] for g, a in run.items()}  # (T, H) back in time order: row t read x_t
        if start:
            assert kept is not None
            return {g: np.concatenate([kept[g][:, units], a]) for g, a in run.items()}
        return run

    def chunk_steps(self) -> int:
        """Steps per chunk of a stoppable run: about 2^24 multiply-adds of recurrence each (tens of ms)."""
        work = sum(c.U.size for c in self.cells + self.reverse_cells)  # multiply-adds a step
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
        fused = sum(a.nbytes for c in self.cells + self.reverse_cells for a in (c.W, c.U, c.b))
        table = 0 if self._table is None else self._table.nbytes
        return sum(a.nbytes for a in self.params.values()) + fused + table

    def trace_nbytes(self, steps: int) -> int:
        """Bytes the arrays of a trace of ``steps`` steps take (every gate of every layer, and the probabilities)."""
        per_step = sum(len(self.gates) * self.spec.hidden_size * len(self.spec.directions) for _ in self.cells)
        per_step += self.spec.output_size or 0  # every gate is at most H wide (a projected h is P < H)
        return steps * per_step * self.dtype.itemsize

    def _outputs(self, h: np.ndarray) -> np.ndarray:
        """The head's linear map of the top layer's h: y = h @ W + b, row t from [h_fwd_t ; h_bwd_t]."""
        y = h @ self.params["head.W"]  # (T, K)
        y += self.params["head.b"]
        return y

    def _answer(self, h: np.ndarray, y: np.ndarray) -> None:
        """A head whose answer is the last step's, on a network with a backward direction: y's last row made
        the sequence's answer, as PyTorch's ``fc(cat(h_n[-2], h_n[-1]))`` and Keras's
        Bidirectional(return_sequences=False) compute it: from each direction's final h, the forward one's at
        row T-1 and the backward one's at row 0 (after it read x_{T-1} .. x_0). A forward network's is as it is."""
        if not len(h) or "backward" not in self.spec.directions:
            return
        R = self.spec.out_size  # units of one direction's h
        final = [h[0 if way == "backward" else -1, j * R : (j + 1) * R] for j, way in enumerate(self.spec.directions)]
        y[-1] = np.concatenate(final) @ self.params["head.W"] + self.params["head.b"]  # (K,)

    @staticmethod
    def _softmax(logits: np.ndarray) -> np.ndarray:
        """Each row's softmax, in place."""
        logits -= logits.max(axis=1, keepdims=True)  # (T, K)
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
        H, out = self.spec.width, []  # each direction's units side by side (h: P each with proj_size)
        C = self.width
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
                if c.shape != (C,):
                    raise InputError(f"layer {k}: state c has shape {c.shape}, expected ({C},)")
            out.append((h.copy(), np.array(c, self.dtype) if cell.has_c else None))
        return out


def _side_by_side(arrays: list[np.ndarray]) -> np.ndarray:
    """Each direction's columns side by side (the one array itself for one direction)."""
    return arrays[0] if len(arrays) == 1 else np.concatenate(arrays, axis=1)


def vector_labels(x: np.ndarray, shown: int = 3) -> list[str]:
    """How each step of a (T, D) series is shown where a text's token would be: its first ``shown``
    values to 4 significant digits ("313.5"; "0.5312, 1"; "0.1, 0.2, 0.3, …"), a thin space after each
    comma (the page marks a token's plain spaces as visible ␣)."""
    more = ",\u2009…" if x.shape[1] > shown else ""
    return [",\u2009".join(f"{v:.4g}" for v in row) + more for row in x[:, :shown].tolist()]


def _stacked(states: list[list[State]], k: int) -> tuple[np.ndarray, np.ndarray | None]:
    """Layer k's starting states of N documents side by side: (h (N, width), c (N, C) or None)."""
    cs = [st[k][1] for st in states]
    return np.stack([st[k][0] for st in states]), None if cs[0] is None else np.stack(cs)  # type: ignore[arg-type]
