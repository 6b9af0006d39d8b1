"""Two runs side by side: two models on one text (``recall-lstm`` beside ``recall-rnn``), one model on two texts, or
two checkpoints of one architecture, whose units are matched by the correlation of their activity.

    a, b = net_a.trace(text), net_b.trace(text)
    compare(net_a, a, net_b, b)                       # per step log p of the actual next token, both sides, and b - a
    match_units(a.layers[0]["h"], b.layers[0]["h"])   # which unit of b acts like each unit of a (an assignment)

Units of two trainings are not in any order: unit 7 of one checkpoint may be unit 93 of the next, and a unit's sign
may flip (tanh is odd). ``match_units`` finds the one-to-one pairing that maximises the summed |r| of the pairs
(the assignment problem, solved exactly by scipy's ``linear_sum_assignment``), and reports each pair's signed r.
Every number returned is a plain Python float or int (or None), ready for JSON; the "difference" arrays are NumPy
(steps, W) float arrays, for the caller to encode.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import InputError
from .correlate import DIGITS

#: Outputs listed per step and side ("top").
TOP_K = 3

if TYPE_CHECKING:
    from ..network import Network
    from ..trace import Trace


def correlations(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """(Ha, Hb) Pearson r of every column of A (T, Ha) with every column of B (T, Hb); 0 where a column is constant
    (it tracks nothing, so it matches nothing)."""
    A, B = np.asarray(A, np.float64), np.asarray(B, np.float64)
    if A.ndim != 2 or B.ndim != 2 or A.shape[0] != B.shape[0]:
        raise InputError(f"cannot correlate units over different steps: {A.shape} and {B.shape}")
    if A.shape[0] < 2:
        raise InputError("matching units needs at least 2 steps of activity")
    Ac, Bc = A - A.mean(axis=0), B - B.mean(axis=0)
    na, nb = np.sqrt((Ac * Ac).sum(axis=0)), np.sqrt((Bc * Bc).sum(axis=0))  # (Ha,), (Hb,)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (Ac.T @ Bc) / np.outer(na, nb)
    r[~np.isfinite(r)] = 0.0
    return np.clip(r, -1.0, 1.0)


def assignment(score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows and columns of the one-to-one pairing (min(rows, cols) pairs) with the largest total score."""
    from scipy.optimize import linear_sum_assignment  # imported here: a server that never compares never loads it

    rows, cols = linear_sum_assignment(np.asarray(score, np.float64), maximize=True)
    return rows, cols


def match_units(A: np.ndarray, B: np.ndarray) -> dict[str, Any]:
    """Pair every unit of A (T, Ha) with a unit of B (T, Hb) acting alike over the same T steps.

    Returns {"pairs": [{"a", "b", "r"}, ...] by a's unit, "mean_abs_r": the pairs' mean |r|, "identity_abs_r": the
    mean |r| of unit k with unit k (what the pairing improves on; None when the widths differ), "order": for each
    unit of A, its partner in B (-1: none, when B is narrower)}."""
    r = correlations(A, B)
    rows, cols = assignment(np.abs(r))
    order = np.full(r.shape[0], -1, np.int64)
    order[rows] = cols
    pairs = [{"a": int(i), "b": int(j), "r": round(float(r[i, j]), DIGITS)} for i, j in zip(rows, cols)]
    same = r.shape[0] == r.shape[1]
    return {
        "pairs": pairs,
        "mean_abs_r": round(float(np.abs(r[rows, cols]).mean()), DIGITS),
        "identity_abs_r": round(float(np.abs(np.diag(r)).mean()), DIGITS) if same else None,
        "order": [int(j) for j in order],
    }


def next_logp(net: Network, trace: Trace) -> list[float | None]:
    """log p(the actual next token) at each step of a next-token model's trace (T numbers; the last step's next token
    is not known: None), or None-s for a token not in the head's labels."""
    T = len(trace)
    if trace.head_kind != "next" or trace.probs is None or trace.labels is None:
        raise InputError(f"{_name(net)} does not predict the next token: there is no likelihood to compare")
    where = {tok: k for k, tok in enumerate(trace.labels)}
    out: list[float | None] = []
    for t in range(T - 1):
        k = where.get(trace.tokens[t + 1])
        p = float(trace.probs[t, k]) if k is not None and (t + 1) not in trace.unknown else None
        out.append(None if p is None else round(float(np.log(max(p, 1e-30))), DIGITS))
    return out + [None] if T else out


def compare(
    net_a: Network,
    a: Trace,
    net_b: Network,
    b: Trace,
    *,
    layer: int | None = None,
    match: bool = False,
) -> dict[str, Any]:
    """What differs between run a and run b over their common steps.

    - "steps": the steps both have (the shorter run's length); "same_tokens": whether the two read the same tokens.
    - "logp": {"a", "b", "difference" (b − a)}: per step log p of the actual next token (next-token models only;
      else None); "scored" {a, b}: the steps training scored when not every step (recall: only the answer after
      "?", so the likelihood of the digits means nothing), else None.
    - "top": {"a", "b"}: each step's 3 likeliest outputs [{"token", "p"}] on each side (None without a softmax head).
    - "gates": the gates both cells have (h always; c for two cells with a cell state; f, i, o for two LSTMs ...).
    - "b": per gate b's own (steps, Wb) values at ``layer`` (a view of run b beside run a's).
    - "matching" (``match`` and the same width at ``layer``, default the last): ``match_units`` over the layer's h
      (C where both have it: the memory is what a checkpoint keeps), and "difference": per gate the (steps, W)
      array b − a, b's units put in a's order. Unit k of one model has nothing to do with unit k of another, so
      two models get a difference only once matched; one model on two texts (``net_a is net_b``) unit by unit.
    """
    k = (min(net_a.num_layers, net_b.num_layers) - 1) if layer is None else layer
    if not (0 <= k < net_a.num_layers and k < net_b.num_layers):
        raise InputError(f"layer {layer} is not a layer of both models ({net_a.num_layers} and {net_b.num_layers})")
    T = min(len(a), len(b))
    gates = [g for g in a.gates if g in b.gates]
    out: dict[str, Any] = {
        "steps": T,
        "steps_a": len(a),
        "steps_b": len(b),
        "same_tokens": a.tokens[:T] == b.tokens[:T] and len(a) == len(b),
        "layer": k,
        "gates": gates,
        "logp": None,
        "matching": None,
        "difference": None,
    }
    if a.head_kind == "next" and b.head_kind == "next":
        la, lb = next_logp(net_a, a)[:T], next_logp(net_b, b)[:T]
        diff = [None if x is None or y is None else round(y - x, DIGITS) for x, y in zip(la, lb)]
        known = [d for d in diff if d is not None]
        out["logp"] = {
            "scored": {"a": _scored(net_a), "b": _scored(net_b)},
            "a": la,
            "b": lb,
            "difference": diff,
            "mean_a": _mean([x for x in la if x is not None]),
            "mean_b": _mean([y for y in lb if y is not None]),
            "mean_difference": _mean(known),
        }
    out["top"] = {"a": _top(a, T), "b": _top(b, T)}
    out["b"] = {g: b.layers[k][g][:T] for g in gates}  # b's own activity, for a view of it beside a's
    wa, wb = a.layers[k]["h"].shape[1], b.layers[k]["h"].shape[1]
    if wa != wb or not (match or net_a is net_b):
        return out  # units of two models are set against each other only once paired
    order = np.arange(wa)
    if match:
        key = "c" if "c" in gates else "h"
        out["matching"] = {"gate": key, **match_units(a.layers[k][key][:T], b.layers[k][key][:T])}
        order = np.asarray(out["matching"]["order"])
    out["difference"] = {g: b.layers[k][g][:T][:, order] - a.layers[k][g][:T] for g in gates}
    return out


def _top(tr: Trace, T: int, k: int = TOP_K) -> list[list[dict[str, Any]]] | None:
    """Each of the first T steps' k likeliest outputs [{"token", "p"}] (a softmax head), else None."""
    if tr.probs is None or tr.labels is None:
        return None
    idx, p = tr.top(k)
    labels = tr.labels
    return [[{"token": labels[j], "p": round(float(q), DIGITS)} for j, q in zip(i, r)] for i, r in zip(idx[:T], p[:T])]


def _scored(net: Network) -> str | None:
    """The steps a bundled task's training scored, when not every step (recall: only the answer), else None."""
    from ..tasks import TASKS
    from .features import task_of

    task = TASKS.get(task_of(net) or "")
    return None if task is None else task.scored


def _mean(xs: list[float]) -> float | None:
    return round(float(np.mean(xs)), DIGITS) if xs else None


def _name(net: Network) -> str:
    return f"this {net.cell} model"
