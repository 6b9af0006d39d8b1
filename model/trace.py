"""A trace: every gate of every layer at every timestep of one run of a network.

tr.tokens            list[str], one per step (for vector input: "0", "1", ...)
tr.layers[k][gate]   (T, H) array for layer k; gate keys from ``cells.GATES``; (T, 2H) for a
                     bidirectional layer: forward units 0..H-1, backward units H..2H-1
tr.directions        the direction of each block of H units: ("forward",), ("backward",) (a reverse
                     network) or ("forward", "backward"); rows are in time order whatever the direction
tr.probs             (T, K) probabilities of a softmax head (next token, or K classes), else None
tr.values            (T, K) a regression head's outputs, else None
tr.head_kind         "next" | "classes" | "values", or None without a head (model/heads.py; with head_at
                     "last" and a backward direction the last row is the answer from [h_fwd_{T-1} ; h_bwd_0])
tr.labels, head_at   a name per output; "every" step's prediction counts, or only the "last" one's
tr.unknown           positions whose token was not in the vocabulary
tr.display           the tokens as text where they are subword pieces ("Ġthe" -> " the"), else None
tr.state_at(t)       the state after the first t steps, to resume from (forward directions only)
tr.unit(k, u)        every value one unit carries through the diagram, over time (see ``LINES``)

TraceBuffer is a trace that is edited as a person types: ``buf.update(text)`` tokenizes the whole
text (or takes a vector model's whole series), recomputes only the steps from the first token (or row)
that changed, and writes them into rows that grow by doubling, so an edit costs its new steps, not a copy
of the whole trace (a 1,000-step trace is 3 MB of gates).
A backward direction depends on every later step, so for a reverse or bidirectional network each
edit reruns it over the whole text (O(T) per edit); only a bidirectional network's layer 0 forward
direction is resumed from the first change (the layers above read its backward half, so they rerun).
For a vector model, ``buf.update(x)`` takes the (T, D) series: the steps from the first row that
changed (a network with a backward direction reruns the whole series).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from . import interventions as _interventions
from .cells import State
from .errors import InputError
from .tokenizer import Encoded

if TYPE_CHECKING:
    from .interventions import Intervention
    from .network import Network


@dataclass
class Trace:
    """Every gate of every layer at every step of one run, and the state the run started from.

    ``layers[k][gate]`` is a (T, H) float array (gate keys from ``cells.GATES[cell]``, in the
    diagram's order); ``probs`` the (T, K) probabilities of a next-token or classes head, ``values``
    the (T, K) outputs of a regression head (``head_kind`` says which; ``labels`` names the K outputs).
    ``head(t)`` is the first t steps (the head of the trace), not the output head.
    A trace knows the state it started from (``initial``), so ``state_at(t)`` can resume a run at
    any step and ``unit`` can show each step's previous state.

    ``directions`` names each block of H units of a layer (see the module docstring). A backward
    unit's previous state is the one from step t+1 (``initial`` at step T-1), and its ``initial``
    half is the state it started from after the last step.
    """

    cell: str
    gates: tuple[str, ...]
    tokens: list[str]
    layers: list[dict[str, np.ndarray]]  # per layer: gate -> (T, H)
    probs: np.ndarray | None = None  # (T, K) softmax of a "next" or "classes" head
    unknown: list[int] = field(default_factory=list)
    initial: list[State] = field(default_factory=list)  # the state the run started from
    reset_after: bool = False  # a GRU whose reset gate acts after U_h (PyTorch's convention)
    head_kind: str | None = None  # "next" | "classes" | "values", None without an output head
    values: np.ndarray | None = None  # (T, K) a "values" head's outputs (regression)
    labels: list[str] | None = None  # K names of the outputs
    head_at: str = "every"  # "every": each step's prediction counts; "last": only the last step's
    directions: tuple[str, ...] = ("forward",)  # per block of H units: "forward" | "backward"
    display: list[str] | None = None  # per step, the text a subword piece stands for (None: tokens are text)
    intervened: list[Intervention] = field(default_factory=list)  # what was held (model/interventions.py)

    def __len__(self) -> int:
        return len(self.tokens)

    @property
    def state(self) -> list[State]:
        """The state after the last step: pass it as ``state=`` to continue."""
        return self.state_at(len(self))

    def direction_of(self, u: int) -> str:
        """The direction unit ``u`` of a layer belongs to: "forward" or "backward"."""
        H = self.layers[0]["h"].shape[1] // len(self.directions)
        return self.directions[min(u // max(H, 1), len(self.directions) - 1)]

    def head(self, t: int) -> Trace:
        """The first ``t`` steps of this trace (views, no copies). A backward direction's rows are the
        full input's, not those a trace of the first t steps would have (they saw the later steps)."""
        layers = [{g: a[:t] for g, a in layer.items()} for layer in self.layers]
        probs = None if self.probs is None else self.probs[:t]
        values = None if self.values is None else self.values[:t]
        unknown = [p for p in self.unknown if p < t]
        display = None if self.display is None else self.display[:t]
        tokens = self.tokens[:t]
        held = [replace(it, stop=min(it.stop or t, t)) for it in self.intervened if it.start < t]
        return replace(
            self,
            tokens=tokens,
            layers=layers,
            probs=probs,
            values=values,
            unknown=unknown,
            display=display,
            intervened=held,
        )

    def then(self, more: Trace) -> Trace:
        """This trace followed by ``more`` (which must have started from this trace's final state); a
        forward network's only: a backward direction cannot be continued (trace the whole input again)."""
        if "backward" in self.directions:
            raise InputError("a trace with a backward direction cannot be continued: trace the whole input again")
        layers = [{g: np.concatenate([a, b[g]]) for g, a in la.items()} for la, b in zip(self.layers, more.layers)]
        probs = None if self.probs is None or more.probs is None else np.concatenate([self.probs, more.probs])
        values = None if self.values is None or more.values is None else np.concatenate([self.values, more.values])
        unknown = self.unknown + [p + len(self) for p in more.unknown]
        display = None if self.display is None or more.display is None else self.display + more.display
        tokens = self.tokens + more.tokens
        n = len(self)
        held = self.intervened + [replace(it, start=it.start + n, stop=(it.stop or 0) + n) for it in more.intervened]
        return replace(
            self,
            tokens=tokens,
            layers=layers,
            probs=probs,
            values=values,
            unknown=unknown,
            display=display,
            intervened=held,
        )

    def top(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The k likeliest outputs (next tokens, or classes) at every step: indices (T, k) into ``labels``
        and probabilities (T, k), best first."""
        if self.probs is None:
            if self.values is not None:
                raise InputError("this trace has no probabilities: the model's head predicts values (see .values)")
            raise InputError("this trace has no probabilities: the model has no output head")
        k = min(k, self.probs.shape[1])
        if k < self.probs.shape[1]:  # the k best of each row (unordered), then only those k sorted: 4x a full sort
            idx = np.argpartition(-self.probs, k - 1, axis=1)[:, :k]  # (T, k)
        else:
            idx = np.broadcast_to(np.arange(k), self.probs.shape).copy()  # (T, k)
        p = np.take_along_axis(self.probs, idx, axis=1)  # (T, k)
        order = np.argsort(-p, axis=1, kind="stable")  # (T, k) best first
        return np.take_along_axis(idx, order, axis=1), np.take_along_axis(p, order, axis=1)

    def unit(self, k: int, u: int) -> dict[str, np.ndarray]:
        """Every value unit ``u`` of layer ``k`` carries through the cell's diagram, over time: its
        gates, the previous state and the pointwise products (keys in ``LINES``), each (T,)."""
        layer = self.layers[k]
        width = max(a.shape[1] for a in layer.values())  # H (a projected LSTM's h has only P < H units)
        if not 0 <= u < width:
            raise IndexError(f"unit {u} is outside layer {k} of {width} units")
        g = {name: a[:, u] for name, a in layer.items() if u < a.shape[1]}  # (T,) each
        h0, c0 = self.initial[k]
        backward = self.direction_of(u) == "backward"  # its previous state is the next step's

        def prev(first: np.ndarray, a: np.ndarray) -> np.ndarray:
            return np.concatenate([a[1:], first[u : u + 1]]) if backward else np.concatenate([first[u : u + 1], a[:-1]])

        out = dict(g)
        if "h" in g:  # unit u of a projected h exists for u < P only
            out["h_prev"] = prev(h0, g["h"])  # (T,) h_{t-1} (h_{t+1} backward)
        h_prev = out.get("h_prev")
        if c0 is not None:
            c_prev = prev(c0, g["c"])  # (T,) C_{t-1} (C_{t+1} backward)
            out |= {"c_prev": c_prev, "f_c_prev": g["f"] * c_prev, "i_c_tilde": g["i"] * g["c_tilde"]}
            out["tanh_c"] = np.tanh(g["c"])  # (T,) what o gates into h
        elif self.cell == "gru":
            out |= {"one_minus_z": 1 - g["z"], "z_h_tilde": g["z"] * g["h_tilde"]}
            out["one_minus_z_h_prev"] = (1 - g["z"]) * h_prev  # type: ignore[operator]
            if not self.reset_after:  # a reset_after GRU gates U_h h, not h: no such line
                out["r_h_prev"] = g["r"] * h_prev  # type: ignore[operator]
        names = PROJ_LINES if "m" in out else LINES[self.cell]
        return {name: out[name] for name in names if name in out}

    def state_at(self, t: int) -> list[State]:
        """The state (h, c) of every layer after the first ``t`` steps.

        A backward direction cannot be resumed mid-sequence (its state at t depends on every later
        step): its units hold the state it started from (``initial``), so a run resumed from this
        equals a fresh one only in a forward network. ``TraceBuffer`` reruns backward directions."""
        if not 0 <= t <= len(self):
            raise IndexError(f"step {t} is outside this trace of {len(self)} steps")
        if t == 0:
            return [(h.copy(), None if c is None else c.copy()) for h, c in self.initial]
        out = [(g["h"][t - 1].copy(), g["c"][t - 1].copy() if "c" in g else None) for g in self.layers]
        H = len(out[0][0]) // len(self.directions)
        for j, way in enumerate(self.directions):
            if way == "backward":
                for (h, c), (h0, c0) in zip(out, self.initial):
                    h[j * H : (j + 1) * H] = h0[j * H : (j + 1) * H]
                    if c is not None and c0 is not None:
                        c[j * H : (j + 1) * H] = c0[j * H : (j + 1) * H]
        return out


#: What ``Trace.unit`` returns for each cell, in the diagram's order: the gates, then the lines between them.
LINES: dict[str, tuple[str, ...]] = {
    "lstm": ("f", "i", "c_tilde", "c", "o", "h", "h_prev", "c_prev", "f_c_prev", "i_c_tilde", "tanh_c"),
    "gru": ("z", "r", "h_tilde", "h", "h_prev", "r_h_prev", "one_minus_z", "one_minus_z_h_prev", "z_h_tilde"),
    "rnn": ("h", "h_prev"),
}
LINES["peephole"] = LINES["coupled"] = LINES["lstm"]
#: An LSTM with proj_size: m = o*tanh(C) before h = W_hr m (a unit u >= P has no h, so no h nor h_prev line).
PROJ_LINES = ("f", "i", "c_tilde", "c", "o", "m", "h", "h_prev", "c_prev", "f_c_prev", "i_c_tilde", "tanh_c")


def common_rows(a: np.ndarray, b: np.ndarray) -> int:
    """How many leading rows the (T, D) arrays a and b share, exactly (the first row that differs)."""
    n = min(len(a), len(b))
    if a.shape[1:] != b.shape[1:]:
        return 0
    same = (a[:n] == b[:n]).all(axis=1)  # (n,)
    return n if same.all() else int(np.argmin(same))


def common_prefix(a: list[str], b: list[str]) -> int:
    """How many leading tokens a and b share: a binary search over slice comparisons (each one C-speed)."""
    lo, hi = 0, min(len(a), len(b))
    if a[:hi] == b[:hi]:
        return hi
    while lo < hi - 1:  # a[:lo] == b[:lo] and a[:hi] != b[:hi]
        mid = (lo + hi) // 2
        if a[:mid] == b[:mid]:
            lo = mid
        else:
            hi = mid
    return lo


class TraceBuffer:
    """The trace of a text being edited: each ``update`` recomputes only the steps from the first
    token that changed, resuming from the state the kept steps ended in.

        buf = TraceBuffer(net)
        k, new = buf.update("def f(x):")     # k = 0: every step is new
        k, new = buf.update("def f(x): y")   # k = 9: only " y" was traced
        buf.trace                                   # the whole text's trace; ``new`` is its steps from k on

    The steps live in arrays whose rows grow by doubling (never past ``max_steps``, when given):
    writing an edit's steps costs those steps, and ``buf.trace``'s arrays are views into them (valid
    until the next update).
    """

    def __init__(self, net: Network, max_steps: int | None = None) -> None:
        self.net, self.max_steps = net, max_steps
        self.trace: Trace | None = None
        self.x: np.ndarray | None = None  # a vector model's (T, D) series the trace is of
        self._rows: dict[Any, np.ndarray] = {}
        self._capacity = 0  # rows each array has
        self.interventions: list[Intervention] = []  # the trace's, as checked (``to`` None: the end)
        self._sources: dict[str, Trace] = {}  # patch sources' plain traces, by text

    def rows_for(self, steps: int) -> int:
        """How many rows each array holds once the text has ``steps`` steps."""
        if self._capacity >= steps:
            return self._capacity
        grown = max(64, 2 * steps)
        return grown if self.max_steps is None else max(steps, min(grown, self.max_steps))

    def nbytes_for(self, steps: int) -> int:
        """Bytes the buffer holds once the text has ``steps`` steps (what to reserve before an update)."""
        return self.net.trace_nbytes(self.rows_for(steps))

    @property
    def nbytes(self) -> int:
        """Bytes the buffer's rows hold (room to grow included)."""
        return sum(a.nbytes for a in self._rows.values())

    def changed_from(self, tokens: list[str] | np.ndarray) -> int:
        """The first position where ``tokens`` (or a vector model's rows) differ from the buffer's:
        where ``update`` will start."""
        if self.trace is None:
            return 0
        if isinstance(tokens, np.ndarray):
            return 0 if self.x is None else common_rows(self.x, tokens)
        return common_prefix(self.trace.tokens, tokens)

    def _held_from(self, items: Sequence[Any] | None, T: int) -> tuple[int, list[Intervention], list[Intervention]]:
        """The interventions of an update, checked and resolved for T steps, and the first step a change of
        them touches (T when they did not change): a changed entry (or every entry after it, since they apply
        in list order) is re-run from its first step, in the old list and the new."""
        checked = _interventions.check(self.net, list(items or []))
        old = self.interventions
        n = next((j for j, (a, b) in enumerate(zip(old, checked)) if a != b), min(len(old), len(checked)))
        firsts = [it.start for it in old[n:] + checked[n:]]
        sources = {it.source_text for it in checked if it.source_text is not None}
        self._sources = {s: tr for s, tr in self._sources.items() if s in sources}
        resolved = _interventions.resolve(self.net, checked, T, self._sources)
        return min(firsts, default=T), checked, resolved

    def update(
        self,
        text: str | Encoded | list[str] | np.ndarray,
        stop: Callable[[], bool] | None = None,
        interventions: Sequence[Any] | None = None,
    ) -> tuple[int, Trace]:
        """Trace a text (or its ``net.tokenizer.encode``-d form, or its tokens as ``split`` gives them) after
        the last one: the first changed position k and the trace of the steps from k on (empty when only
        the end was deleted). A vector model takes its whole (T, D) series, and the rows from the first
        one that changed are traced.

        The whole new text is tokenized, and its pieces from the first one that differs are traced
        from the kept steps' state: a subword tokenizer may split an edited word (or the text after
        it) differently, so the new steps are exactly those of a fresh trace of the whole text.
        Bad input, and a run ``stop`` cancels (``Network.trace``), raise before anything changes.

        ``interventions`` (model/interventions.py; None or [] for none): the trace is that of
        ``net.trace(text, interventions=...)``; when they change from the last update's, the steps from the
        first one a changed intervention touches are traced again (or from the first changed token, if earlier)."""
        if isinstance(text, np.ndarray):
            return self._update_rows(text, stop, interventions)
        tokenizer = self.net.tokenizer
        if tokenizer is None:
            raise InputError("this model takes vectors, not text: pass a (T, D) array")
        if isinstance(text, list):
            enc = tokenizer.lookup(text)
        else:
            enc = tokenizer.encode(text) if isinstance(text, str) else text.check()
        if not len(enc):
            raise InputError("the text has no tokens: nothing to trace")
        changed, checked, held = self._held_from(interventions, len(enc))
        k = min(self.changed_from(enc.tokens), changed)
        kept = None if self.trace is None else self.trace.head(k)
        if "backward" in self.net.spec.directions:
            return self._rerun(enc, k, kept, stop)
        if k == len(enc):  # a deletion at the end (or no change): nothing new to trace
            assert kept is not None
            self.trace, self.interventions = replace(kept, intervened=held), checked
            return k, kept.head(0)
        tail = [s for s in (it.shifted(k) for it in held) if s is not None]
        state = None if kept is None or k == 0 else kept.state
        new = self.net.trace(enc.tail(k), state=state, stop=stop, interventions=tail)
        self._capacity = self.rows_for(len(enc))
        self.trace, self.interventions = replace(self._splice(k, kept, new), intervened=held), checked
        return k, new

    def _update_rows(
        self, x: np.ndarray, stop: Callable[[], bool] | None, interventions: Sequence[Any] | None
    ) -> tuple[int, Trace]:
        """``update`` for a vector model: the rows from the first one that changed are traced."""
        if self.net.tokenizer is not None:
            raise InputError("this model takes text, not vectors: pass the text")
        x = self.net.check_vectors(x)  # (T, D), refused before anything changes
        changed, checked, held = self._held_from(interventions, len(x))
        k = min(self.changed_from(x), changed)
        kept = None if self.trace is None else self.trace.head(k)
        if "backward" in self.net.spec.directions:  # every step may change: the whole series again
            if kept is not None and self.trace is not None and k == len(x) == len(self.trace):
                return k, kept.head(0)
            reuse = kept if kept is not None and k > 0 else None
            new = self.net.trace(x, stop=stop, reuse=reuse)
            self._capacity = self.rows_for(len(x))
            self.trace, self.x = self._splice(0, None, new), x.copy()
            return 0, self.trace
        if k == len(x):  # rows deleted at the end (or no change)
            assert kept is not None
            self.trace, self.x, self.interventions = replace(kept, intervened=held), x.copy(), checked
            return k, kept.head(0)
        tail = [s for s in (it.shifted(k) for it in held) if s is not None]
        state = None if kept is None or k == 0 else kept.state
        new = self.net.trace(x[k:], state=state, stop=stop, interventions=tail)
        new = replace(new, tokens=[str(t) for t in range(k, len(x))])  # steps numbered in the whole series
        self._capacity = self.rows_for(len(x))
        self.trace, self.x = replace(self._splice(k, kept, new), intervened=held), x.copy()
        self.interventions = checked
        return k, new

    def _rerun(self, enc: Encoded, k: int, kept: Trace | None, stop: Callable[[], bool] | None) -> tuple[int, Trace]:
        """A network with a backward direction: every step may change with any edit, so the whole text
        is traced again (a bidirectional layer 0's forward direction resumes after the kept k steps)
        and ``(0, whole)`` comes back; no change at all traces nothing."""
        if kept is not None and self.trace is not None and k == len(enc) == len(self.trace):
            return k, kept.head(0)
        reuse = kept if kept is not None and k > 0 else None
        new = self.net.trace(enc, stop=stop, reuse=reuse)
        self._capacity = self.rows_for(len(enc))
        self.trace = self._splice(0, None, new)
        return 0, self.trace

    def _splice(self, k: int, kept: Trace | None, new: Trace) -> Trace:
        """The kept first k steps followed by ``new``, written into the growing rows."""
        layers = [{g: self._put((j, g), k, a) for g, a in la.items()} for j, la in enumerate(new.layers)]
        probs = None if new.probs is None else self._put("probs", k, new.probs)
        values = None if new.values is None else self._put("values", k, new.values)
        if kept is None or k == 0:
            return replace(new, layers=layers, probs=probs, values=values)
        unknown = kept.unknown + [p + k for p in new.unknown]  # positions in the whole text
        display = None if kept.display is None or new.display is None else kept.display + new.display
        tokens = kept.tokens + new.tokens
        return replace(kept, tokens=tokens, layers=layers, probs=probs, values=values, unknown=unknown, display=display)

    def _put(self, key: Any, at: int, rows: np.ndarray) -> np.ndarray:
        """Write ``rows`` from row ``at`` on (keeping the rows before it); the first ``at + len(rows)`` rows."""
        end = at + len(rows)
        a = self._rows.get(key)
        if a is None or a.shape[1:] != rows.shape[1:] or a.dtype != rows.dtype or len(a) < end:
            grown = np.empty((self._capacity, *rows.shape[1:]), rows.dtype)  # (2 end, H): room to grow
            if a is not None and a.shape[1:] == rows.shape[1:] and at > 0:
                grown[:at] = a[:at]
            a = self._rows[key] = grown
        a[at:end] = rows
        return a[:end]
