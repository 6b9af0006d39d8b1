"""Interventions: hold, scale, zero or patch a unit's value over a range of steps, and what it changes.

    tr = net.trace(text, interventions=[{"layer": 0, "unit": 4, "gate": "c", "op": "set", "value": 0.0, "from": 12}])
    tr.intervened            # what was held, as parsed (steps resolved): [Intervention(...)]
    eff = effect(net, text, [...])   # before and after: predictions, log-likelihood, every unit's change

An intervention is ``{"layer", "unit" or "units", "gate", "op", "value", "source_text", "from", "to"}``:

- ``gate``: "c" (the cell state), "h", or any gate key of the cell (``net.gates``: f, i, o, c_tilde for the
  LSTM family, z, r, h_tilde for a GRU). A coupled cell's i is 1 - f: hold f instead.
- ``op``: "set" (the value becomes ``value``), "scale" (multiplied by ``value``), "zero" (ablation: 0),
  "patch" (the value it had at the same step of a plain trace of ``source_text``, same model: activation
  patching; the source must be at least ``to`` steps long).
- ``from`` (default 0) and ``to`` (default: the end) are steps, ``to`` exclusive like a Python slice:
  {"from": 12, "to": 20} holds steps 12 to 19; "hold unit 118's C at 0.0 from t = 12" is {"from": 12}.

Semantics (the textbook ones; model/held.py runs them): an intervention on step t replaces that unit's
value the moment it is computed, and everything computed from it follows.

- A gate activation (f, i, o, c_tilde; z, r, h_tilde): C_t = f*C_{t-1} + i*C̃ (or the GRU's h_t) is
  computed with the held value, h_t from it, and the layer above and the head read the new h_t.
- C_t: C_t := value, then h_t = o_t * tanh(C_t) (a peephole's o_t sees the held C_t), and C_{t+1} reads it.
- h_t: the value the layer above, the head and step t+1 read.

Several interventions on one value at one step apply in list order (a "set" then a "scale" scales
the set value). The trace records the values the model used (held ones included) and lists what was
held in ``trace.intervened``. Forward networks only: a backward direction's step t depends on every
later step, so "from t on" does not mean what it says there; reverse and bidirectional networks are refused
with an InputError that says so. A projected LSTM (proj_size) also takes "m" (o * tanh C, before h = W_hr m);
its h has P units.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from itertools import repeat
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import InputError
from .held import Edit, Edits, points

if TYPE_CHECKING:
    from .network import Network
    from .trace import Trace

OPS = ("set", "scale", "zero", "patch")
#: The largest |value| a set or scale takes (a value past float32's range would make the trace infinite).
MAX_VALUE = 1e6
FIELDS = ("layer", "unit", "units", "gate", "op", "value", "source_text", "from", "to")


@dataclass(frozen=True)
class Intervention:
    """One intervention, checked: ``units`` of ``gate`` in ``layer`` over steps ``start`` .. ``stop - 1``.

    ``stop`` None means "to the end" (resolved to the text's length by ``resolve``). A patch carries the
    source's values over its steps once resolved: ``values`` (stop - start, len(units))."""

    layer: int
    units: tuple[int, ...]
    gate: str
    op: str  # "set" | "scale" | "zero" | "patch"
    value: float | None = None  # set, scale
    source_text: str | None = None  # patch
    start: int = 0
    stop: int | None = None  # exclusive; None: the end
    values: np.ndarray | None = field(default=None, compare=False, repr=False)  # patch: (stop - start, n)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (as a request writes it; ``from``/``to`` resolved)."""
        out: dict[str, Any] = {"layer": self.layer, "units": list(self.units), "gate": self.gate, "op": self.op}
        if self.value is not None:
            out["value"] = self.value
        if self.source_text is not None:
            out["source_text"] = self.source_text
        return out | {"from": self.start, "to": self.stop}

    def shifted(self, k: int) -> Intervention | None:
        """This intervention for a run that starts at step k (TraceBuffer's tail), or None if it ends before k."""
        assert self.stop is not None
        if self.stop <= k:
            return None
        start = max(self.start, k)
        values = None if self.values is None else self.values[start - self.start :]
        return replace(self, start=start - k, stop=self.stop - k, values=values)


def _int(n: int, item: Mapping[str, Any], key: str, default: Any = None) -> Any:
    v = item.get(key)
    if v is None:
        return default
    if type(v) is not int:
        raise InputError(f"intervention {n}: '{key}' must be an integer, got {v!r}")
    return v


def check(net: Network, items: Sequence[Mapping[str, Any] | Intervention]) -> list[Intervention]:
    """Every intervention of ``items`` checked against ``net`` (not yet against a text's length: ``resolve``),
    or an InputError naming the intervention (its index) and the field, and what is allowed."""
    if isinstance(items, (str, bytes, Mapping)) or not isinstance(items, Sequence):
        raise InputError("interventions must be a list of {'layer', 'unit', 'gate', 'op', ...} objects")
    if items and net.spec.direction != "forward":
        raise InputError(
            f"interventions run on forward networks only: this one is {net.spec.direction} (a backward direction's "
            "step t depends on every later step, so holding a unit 'from t on' is not defined)"
        )
    return [_check_one(net, n, it) for n, it in enumerate(items)]


def _check_one(net: Network, n: int, item: Any) -> Intervention:
    if isinstance(item, Intervention):  # checked like a dict; a resolved patch keeps its values
        it = _check_one(net, n, {k: v for k, v in item.to_dict().items() if v is not None})
        if item.values is not None:
            if item.stop is None or item.values.shape != (item.stop - item.start, len(item.units)):
                raise InputError(f"intervention {n}: its values do not fit its steps and units")
            it = replace(it, values=item.values)
        return it
    if not isinstance(item, Mapping):
        raise InputError(f"intervention {n}: must be an object {{'layer', 'unit', 'gate', 'op', ...}}, got {item!r}")
    extra = sorted(set(item) - set(FIELDS), key=str)
    if extra:
        raise InputError(f"intervention {n}: unknown field {extra[0]!r}: the fields are {', '.join(FIELDS)}")
    layer = _int(n, item, "layer")
    if layer is None or not 0 <= layer < net.num_layers:
        raise InputError(f"intervention {n}: 'layer' must be a layer from 0 to {net.num_layers - 1}, got {layer!r}")
    gate = item.get("gate")
    allowed = [g for g in net.gates if not (g == "i" and net.cell == "coupled")]
    if gate not in allowed:
        why = " (a coupled cell's i is 1 - f: hold f)" if gate == "i" and net.cell == "coupled" else ""
        raise InputError(
            f"intervention {n}: 'gate' must be one of {', '.join(allowed)} for a {net.cell} model, got {gate!r}{why}"
        )
    if ("unit" in item) == ("units" in item):
        raise InputError(f"intervention {n}: give exactly one of 'unit' (an index) or 'units' (a list of indices)")
    raw = [item["unit"]] if "unit" in item else item["units"]
    key = "unit" if "unit" in item else "units"
    if not isinstance(raw, list) or not raw:
        raise InputError(f"intervention {n}: 'units' must be a non-empty list of unit indices, got {raw!r}")
    H = net.spec.out_size if gate == "h" else net.hidden_size  # a projected LSTM's h has P units
    for u in raw:
        if type(u) is not int or not 0 <= u < H:
            what = "h units" if H != net.hidden_size else "units"
            raise InputError(f"intervention {n}: '{key}' {u!r} is out of range: layer {layer} has {what} 0 to {H - 1}")
    if len(set(raw)) != len(raw):
        raise InputError(f"intervention {n}: 'units' lists a unit twice: {raw!r}")
    op = item.get("op")
    if op not in OPS:
        raise InputError(f"intervention {n}: 'op' must be one of {', '.join(OPS)}, got {op!r}")
    value: Any = item.get("value")
    source = item.get("source_text")
    if op in ("set", "scale"):
        if type(value) not in (int, float) or abs(value) > MAX_VALUE or not math.isfinite(value):
            raise InputError(
                f"intervention {n}: 'value' must be a finite number from -{MAX_VALUE:g} to {MAX_VALUE:g} "
                f"for op {op!r}, got {value!r}"
            )
        value = float(value)
    elif value is not None:
        raise InputError(f"intervention {n}: op {op!r} takes no 'value'")
    if op == "patch":
        if not isinstance(source, str) or not source:
            raise InputError(f"intervention {n}: op 'patch' needs 'source_text', the text to take the values from")
        if net.tokenizer is None:
            raise InputError(f"intervention {n}: op 'patch' takes a source text, and this model reads vectors")
    elif source is not None:
        raise InputError(f"intervention {n}: 'source_text' is for op 'patch' only, not {op!r}")
    start, stop = _int(n, item, "from", 0), _int(n, item, "to")
    if start < 0:
        raise InputError(f"intervention {n}: 'from' must be a step >= 0, got {start}")
    if stop is not None and stop <= start:
        raise InputError(f"intervention {n}: 'to' ({stop}) must be after 'from' ({start}): 'to' is exclusive")
    return Intervention(layer, tuple(raw), gate, op, value, source, start, stop)


def resolve(
    net: Network, items: Sequence[Intervention], T: int, sources: dict[str, Trace] | None = None
) -> list[Intervention]:
    """The interventions for a text of T steps: ``to`` filled in, each within the text, a patch's values
    read from its source's plain trace (InputError: a window past the end, a source too short).
    ``sources``: source traces by text, reused and filled in (a TraceBuffer's, across edits)."""
    sources = {} if sources is None else sources
    check_steps(net, items, T)
    need: dict[str, int] = {}  # each source's steps the patches read: only those are traced
    for it in items:
        if it.op == "patch" and it.source_text is not None and (it.values is None or it.stop is None):
            need[it.source_text] = max(need.get(it.source_text, 0), T if it.stop is None else it.stop)
    for text, n in need.items():
        src = sources.get(text)
        if src is None or len(src) < n:  # a forward run: the first n steps are those of the whole text's trace
            assert net.tokenizer is not None
            enc = net.tokenizer.encode(text)
            if src is None:
                sources[text] = net.trace(enc.tail(0, n), probs=False)
            else:  # grown (a live text whose patch runs to its end): only the new steps
                sources[text] = src.then(net.trace(enc.tail(len(src), n), state=src.state, probs=False))
    out = []
    for it in items:
        stop = T if it.stop is None else it.stop
        values = it.values
        if it.op == "patch" and (values is None or it.stop != stop):
            assert it.source_text is not None
            src = sources[it.source_text]
            values = np.ascontiguousarray(src.layers[it.layer][it.gate][it.start : stop, list(it.units)])
        out.append(replace(it, stop=stop, values=values))
    return out


def check_steps(net: Network, items: Sequence[Intervention], T: int) -> dict[str, int]:
    """The checks that need the input's length T, without running anything: each window within the input, each
    patch's source readable and long enough. Returns each source text's number of tokens."""
    lengths: dict[str, int] = {}
    for n, it in enumerate(items):
        stop = T if it.stop is None else it.stop
        if it.start >= T:
            raise InputError(
                f"intervention {n}: 'from' {it.start} is past the input's end: it has {T} steps (0 to {T - 1})"
            )
        if stop > T:
            raise InputError(
                f"intervention {n}: steps 'from' {it.start} 'to' {stop} go past the input's end: it has {T} steps "
                f"(0 to {T - 1}; 'to' is exclusive)"
            )
        if it.source_text is not None:
            if it.source_text not in lengths:
                assert net.tokenizer is not None
                try:
                    lengths[it.source_text] = len(net.tokenizer.encode(it.source_text).check())
                except InputError as e:
                    raise InputError(f"intervention {n}: 'source_text': {e}") from None
            if lengths[it.source_text] < stop:
                raise InputError(
                    f"intervention {n}: 'source_text' has {lengths[it.source_text]} steps, and the patch needs "
                    f"{stop} ('to' is exclusive; without 'to', the input's length)"
                )
    return lengths


def plan(net: Network, items: Sequence[Intervention], T: int) -> list[Edits]:
    """Per layer, the edits model/held.py applies: point -> one entry per step (None: no edit). The
    interventions on one point compose in list order into v -> a*v + b per unit and step; a span where
    every a is 0 sets ``b`` outright. Between two window edges the same units are held: a span without a
    patch shares one entry over its steps (no per-step arrays), a patch's steps are rows of one array."""
    out: list[Edits] = [{} for _ in range(net.num_layers)]
    by_point: dict[tuple[int, str], list[Intervention]] = {}
    for it in items:
        by_point.setdefault((it.layer, points(net.cells[it.layer])[it.gate][0]), []).append(it)
    for (k, point), its in by_point.items():
        where = points(net.cells[k])
        cols = [np.asarray(it.units) + where[it.gate][1] for it in its]  # each one's units in the point's buffer
        sizes = [
            off + (net.spec.out_size if g == "h" else net.hidden_size) for g, (p, off) in where.items() if p == point
        ]
        width = max(sizes)  # the point's buffer
        cuts = sorted({0, T} | {it.start for it in its} | {it.stop or T for it in its})
        steps: list[Edit] = [None] * T
        for t0, t1 in zip(cuts, cuts[1:]):
            on = [j for j, it in enumerate(its) if it.start <= t0 and t1 <= (it.stop or T)]  # list order
            if not on:
                continue
            idx = np.unique(np.concatenate([cols[j] for j in on]))  # (n,) the units held through the span
            varying = any(its[j].op == "patch" for j in on)
            shape = (t1 - t0, len(idx)) if varying else (len(idx),)
            A, B = np.ones(shape, net.dtype), np.zeros(shape, net.dtype)  # v -> A*v + B
            for j in on:
                it, pos = its[j], np.searchsorted(idx, cols[j])
                a = 0.0 if it.op in ("set", "zero", "patch") else float(it.value or 0.0)
                if it.op == "patch":
                    assert it.values is not None
                    b: Any = it.values[t0 - it.start : t1 - it.start]  # (span, n) the source's own steps
                else:
                    b = it.value if it.op == "set" else 0.0
                A[..., pos] *= a
                B[..., pos] = B[..., pos] * a + b
            outright = not A.any()
            one: Any = int(idx[0]) if len(idx) == 1 and outright else None  # one unit set: a scalar store, 3x faster
            if varying:
                rows = B[:, 0] if one is not None else B  # (span,) scalars, or (span, n) rows
                steps[t0:t1] = list(zip(repeat(idx if one is None else one), repeat(None) if outright else A, rows))
            elif outright:
                steps[t0:t1] = [(idx, None, B) if one is None else (one, None, B[0])] * (t1 - t0)
            else:  # a scale: the whole buffer times a (1 where nothing is held), plus b where a set is mixed in
                a_all, b_all = np.ones(width, net.dtype), np.zeros(width, net.dtype)
                a_all[idx], b_all[idx] = A, B
                steps[t0:t1] = [(None, a_all, b_all if B.any() else None)] * (t1 - t0)
        out[k][point] = steps
    return out


def window(edits: list[Edits], t0: int, t1: int) -> list[Edits]:
    """The edits of steps t0 .. t1 - 1 (a chunk of a stoppable run)."""
    return [{p: e[t0:t1] for p, e in la.items()} for la in edits]


def mask(tr: Trace, layer: int, gate: str) -> np.ndarray:
    """(T, H) True where ``trace.intervened`` held layer ``layer``'s ``gate`` (the values drawn as set by hand)."""
    T, H = len(tr), tr.layers[layer][gate].shape[1]
    out = np.zeros((T, H), bool)
    for it in tr.intervened:
        if it.layer == layer and it.gate == gate:
            out[it.start : it.stop, list(it.units)] = True
    return out


@dataclass
class Effect:
    """What an intervention changed, step by step (the page draws it; it computes nothing).

    ``p_before``/``p_after`` (T,): the probability of the actual next token (a "next" head; NaN at the last
    step, which has none), or None; ``dloglik`` (T,) = log p_after - log p_before; ``top_before``/``top_after``:
    (indices (T, k), probabilities (T, k)); ``probs_before``/``probs_after`` (T, K): a classes head's class
    probabilities; ``values_before``/``values_after`` (T, K): a values head's outputs; ``layers[k][gate]``
    (T, H): after - before of every unit."""

    layers: list[dict[str, np.ndarray]]
    p_before: np.ndarray | None = None
    p_after: np.ndarray | None = None
    dloglik: np.ndarray | None = None
    top_before: tuple[np.ndarray, np.ndarray] | None = None
    top_after: tuple[np.ndarray, np.ndarray] | None = None
    probs_before: np.ndarray | None = None
    probs_after: np.ndarray | None = None
    values_before: np.ndarray | None = None
    values_after: np.ndarray | None = None


def effect(
    net: Network,
    x: Any,
    interventions: Sequence[Mapping[str, Any] | Intervention] | None = None,
    top_k: int = 5,
    *,
    before: Trace | None = None,
    after: Trace | None = None,
    ids: np.ndarray | None = None,
    start: int = 0,
) -> Effect:
    """The plain and the intervened run of ``x`` compared (each traced unless given as ``before``/``after``),
    from step ``start`` on (a live edit's new steps). ``ids``: the input's token ids (default: the tokenizer's),
    whose next one is "the actual next token"."""
    if before is None:
        before = net.trace(x)
    if after is None:
        after = net.trace(x, interventions=interventions)
    if len(before) != len(after):
        raise InputError(f"before has {len(before)} steps and after {len(after)}: not runs of one input")
    if ids is None and net.tokenizer is not None and isinstance(x, str):
        ids = net.tokenizer.encode(x).ids
    if start:
        before, after = _tail(before, start), _tail(after, start)
        ids = None if ids is None else np.asarray(ids)[start:]
    layers = [{g: la_a[g] - la_b[g] for g in la_b} for la_b, la_a in zip(before.layers, after.layers)]
    out = Effect(layers)
    if before.probs is not None and after.probs is not None:
        out.top_before, out.top_after = before.top(top_k), after.top(top_k)
        if before.head_kind == "next":
            if ids is not None:
                T = len(before)
                nxt = np.asarray(ids)[1:T]  # (T-1,) the token each step should predict
                p_b = np.full(T, np.nan, before.probs.dtype)
                p_a = np.full(T, np.nan, before.probs.dtype)
                p_b[:-1] = before.probs[np.arange(T - 1), nxt]
                p_a[:-1] = after.probs[np.arange(T - 1), nxt]
                with np.errstate(divide="ignore"):
                    out.p_before, out.p_after, out.dloglik = p_b, p_a, np.log(p_a) - np.log(p_b)
        else:
            out.probs_before, out.probs_after = before.probs, after.probs
    if before.values is not None and after.values is not None:
        out.values_before, out.values_after = before.values, after.values
    return out


def _tail(tr: Trace, k: int) -> Trace:
    """The steps of ``tr`` from k on (views; only what ``effect`` reads)."""
    layers = [{g: a[k:] for g, a in la.items()} for la in tr.layers]
    probs = None if tr.probs is None else tr.probs[k:]
    values = None if tr.values is None else tr.values[k:]
    return replace(tr, tokens=tr.tokens[k:], layers=layers, probs=probs, values=values)
