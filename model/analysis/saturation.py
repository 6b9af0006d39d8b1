"""How often each unit's gates sit at their limits: Karpathy, Johnson & Fei-Fei, "Visualizing and
Understanding Recurrent Networks" (2015), fig. 3.

For a gate g of a layer and every unit u, over the T steps looked at:

    left[u]  = #{t : g[t, u] < lo} / T      right[u] = #{t : g[t, u] > hi} / T      left + right <= 1

    sigmoid gates (f, i, o, z, r), values in [0, 1]:       lo = 0.1,  hi = 0.9   (the paper's thresholds)
    tanh-valued (c_tilde, h_tilde, h), values in [-1, 1]:  lo = -0.9, hi = 0.9   (the same 10 % of the range
                                                                                  at each end)
    c (the cell state) is unbounded: it has no "saturated", and is left out.

A point near (0, 1) is a unit whose gate is almost always open (a forget gate near 1: it remembers);
near (1, 0) almost always closed; on the diagonal left + right = 1, a unit that switches between the
two without lingering in between. The same bounds define the corpus index's ``stats/.../low`` and
``high`` (model/analysis/store.py), so a text and the index answer the same question.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import InputError

#: Gates whose values are a sigmoid's, in [0, 1].
SIGMOID = frozenset({"f", "i", "o", "z", "r"})
#: Gates whose values are a tanh's (or o * tanh), in [-1, 1].
TANH = frozenset({"c_tilde", "h_tilde", "h"})


def bounds(gate: str) -> tuple[float, float] | None:
    """(lo, hi): a value below lo is left-saturated, above hi right-saturated; None for c (unbounded)."""
    if gate in SIGMOID:
        return 0.1, 0.9
    if gate in TANH:
        return -0.9, 0.9
    return None


def value_range(gate: str) -> tuple[float, float]:
    """The values a gate can take: [0, 1] sigmoid, [-1, 1] tanh, (-inf, inf) for c."""
    if gate in SIGMOID:
        return 0.0, 1.0
    if gate in TANH:
        return -1.0, 1.0
    return -np.inf, np.inf


def fractions(values: Any, gate: str) -> dict[str, np.ndarray]:
    """{"left", "right"}: each unit's fraction of steps below lo / above hi, from a (T, W) array of one gate."""
    lim = bounds(gate)
    if lim is None:
        raise InputError(f"gate {gate!r} is unbounded: saturation is defined for {', '.join(sorted(SIGMOID | TANH))}")
    X = np.asarray(values)  # (T, W)
    if X.ndim != 2 or X.shape[0] == 0:
        raise InputError(f"saturation needs a (steps, units) array with at least one step, got shape {X.shape}")
    lo, hi = lim
    T = X.shape[0]
    return {"left": (X < lo).sum(axis=0) / T, "right": (X > hi).sum(axis=0) / T}  # (W,) each


def saturation(trace: Any, layer: int = 0) -> dict[str, Any]:
    """Every bounded gate of one layer of a Trace: {"gates": {g: {"left": [W], "right": [W]}}, "steps": T,
    "bounds": {g: [lo, hi]}} (plain floats, c left out)."""
    if not 0 <= layer < len(trace.layers):
        raise InputError(f"layer {layer} does not exist: the trace has {len(trace.layers)} layers")
    gates = {g: v for g, v in trace.layers[layer].items() if bounds(g) is not None}
    return _answer({g: fractions(v, g) for g, v in gates.items()}, len(trace.tokens))


def index_saturation(index: Any, layer: int = 0) -> dict[str, Any]:
    """The same over a corpus index: its stats' low and high (computed once when it was built) for every
    bounded gate it recorded (an index records h and c unless asked for more: h, then)."""
    if not 0 <= layer < index.layers:
        raise InputError(f"layer {layer} does not exist: the index has {index.layers} layers")
    out = {}
    for g in index.gates:
        if bounds(g) is None:
            continue
        st = index.stats(layer, g)
        out[g] = {"left": np.asarray(st.low, np.float64), "right": np.asarray(st.high, np.float64)}
    return _answer(out, int(index.steps))


def _answer(gates: dict[str, dict[str, np.ndarray]], steps: int) -> dict[str, Any]:
    """Plain numbers, rounded to 6 digits (a fraction of up to a million steps)."""
    return {
        "gates": {g: {k: np.round(v, 6).tolist() for k, v in lr.items()} for g, lr in gates.items()},
        "steps": steps,
        "bounds": {g: list(bounds(g) or ()) for g in gates},
    }
