"""The units a bundled model's card names: the counter, the memory, the store, the level and the season.

Counting: LSTMs learn Dyck languages by keeping the bracket depth in a cell state that goes up on "("
and down on ")" (Suzgun et al. 2019, "LSTM Networks Can Perform Dynamic Counting"; Weiss et al. 2018,
"On the Practical Computational Power of Finite Precision RNNs for Language Recognition"). ``depth_unit``
finds that unit.

Memory: ``memory_unit`` finds the unit whose state, after a run of distractors, best tells apart the
symbol seen first, and reports how much of that unit its forget gate keeps.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..errors import InputError
from ..network import Network
from .correlate import DIGITS, _search


def _state_gate(net: Network) -> str:
    """The gate that holds a cell's memory: c for the LSTM family, h for gru and rnn."""
    return "c" if "c" in net.gates else "h"


def depth_unit(net: Network, texts: Sequence[str], depth_fn: Callable[[str], Any]) -> dict[str, Any]:
    """The unit whose state (c, or h for gru/rnn) correlates best with bracket depth.

    Each text is traced from the zero state; ``depth_fn(text)`` gives the depth after each of its
    characters. Steps of all texts are pooled. Returns {"layer", "unit", "r"}, r signed, 4 digits.
    """
    if not texts:
        raise InputError("no texts to trace")
    gate = _state_gate(net)
    traces = [net.trace(text, probs=False) for text in texts]
    depth = []
    for text, tr in zip(texts, traces):
        d = np.asarray(depth_fn(text), np.float64)
        if d.shape != (len(tr),):
            raise InputError(f"depth_fn gave shape {d.shape} for a text of {len(tr)} steps: {text[:40]!r}")
        depth.append(d)
    y = np.concatenate(depth)  # (sum T,)
    if np.ptp(y) == 0:
        raise InputError("the depth is constant over these texts: nothing to correlate with")
    columns = [(k, np.concatenate([tr.layers[k][gate] for tr in traces])) for k in range(net.num_layers)]
    return _search(columns, y)


def memory_unit(net: Network, texts: Sequence[str]) -> dict[str, Any]:
    """The unit that holds the first symbol across the distractors, and how much its forget gate keeps.

    Each text is a memory symbol, distractors, then a query: its first token names the class, the
    tokens between are the distractor span. For every unit, v is its state (c, or h for gru/rnn)
    after the last distractor, one value per text; its separation is the share of v's variance
    that lies between the classes (the correlation ratio η² = Σ_k n_k (mean_k − mean)² / Σ (v − mean)²,
    1 when v is constant within each class and differs between them). Returns {"layer", "unit",
    "separation", "mean_forget"} for the best unit: mean_forget is its forget gate f averaged over the
    distractor steps of every text (lstm, peephole, coupled), for a gru the share of h kept, 1 − z
    (gatescope's z is colah's: h = (1 − z)*h_prev + z*h_tilde), and None for an rnn, which has no gate.
    """
    if not texts:
        raise InputError("no texts to trace")
    gate = _state_gate(net)
    traces = [net.trace(text, probs=False) for text in texts]
    for text, tr in zip(texts, traces):
        if len(tr) < 3:
            raise InputError(f"{text!r} is too short: a memory symbol, distractors and a query are needed")
    labels = np.array([tr.tokens[0] for tr in traces])
    classes = sorted(set(labels.tolist()))
    if len(classes) < 2:
        raise InputError(f"every text starts with {classes[0]!r}: at least two memory symbols are needed")
    scores = []  # per layer: (H,) separation of each unit
    for k in range(net.num_layers):
        v = np.stack([tr.layers[k][gate][-2] for tr in traces]).astype(np.float64)  # (N, H) after distractors
        vc = v - v.mean(axis=0)  # (N, H)
        total = (vc * vc).sum(axis=0)  # (H,)
        between = sum((labels == c).sum() * vc[labels == c].mean(axis=0) ** 2 for c in classes)  # (H,)
        constant = v.max(axis=0) == v.min(axis=0)  # (H,)
        with np.errstate(invalid="ignore", divide="ignore"):
            scores.append(np.where(constant, 0.0, np.minimum(between / total, 1.0)))  # (H,)
    k, j = (int(n) for n in np.unravel_index(np.argmax(np.stack(scores)), (net.num_layers, net.hidden_size)))
    if "f" in net.gates:
        kept = np.concatenate([tr.layers[k]["f"][1:-1, j] for tr in traces])  # forget gate over distractors
    elif "z" in net.gates:
        kept = 1.0 - np.concatenate([tr.layers[k]["z"][1:-1, j] for tr in traces])  # share of h kept
    else:
        kept = None
    return {
        "layer": k,
        "unit": j,
        "separation": round(float(scores[k][j]), DIGITS),
        "mean_forget": None if kept is None else round(float(kept.astype(np.float64).mean()), DIGITS),
    }


def gate_unit(net: Network, xs: Sequence[np.ndarray], feature: Sequence[np.ndarray], gate: str) -> dict[str, Any]:
    """The unit whose ``gate`` correlates best (by |r|) with ``feature`` over every step of the series ``xs``.

    Each (T, D) series is traced from the zero state; ``feature[n]`` gives a number per step of ``xs[n]``;
    steps are pooled. Returns {"layer", "unit", "r", "gate"}, r Pearson's, signed, 4 digits.
    """
    if not xs:
        raise InputError("no series to trace")
    if gate not in net.gates:
        raise InputError(f"a {net.cell} has no gate {gate!r}: it has {', '.join(net.gates)}")
    traces = [net.trace(x, probs=False) for x in xs]
    y = np.concatenate([np.asarray(f, np.float64) for f in feature])  # (sum T,)
    if y.shape != (sum(len(tr) for tr in traces),):
        raise InputError("the feature needs one number per step of every series")
    columns = [(k, np.concatenate([tr.layers[k][gate] for tr in traces])) for k in range(net.num_layers)]
    return _search(columns, y) | {"gate": gate}


def store_unit(net: Network, xs: np.ndarray) -> dict[str, Any]:
    """The adding problem's store: the unit whose input gate i opens at the marked steps (``xs`` (N, T, 2):
    value, marker), as the r of i with the marker, and its forget gate f averaged over the unmarked steps
    (``mean_forget``: near 1 when it holds what it stored)."""
    found = gate_unit(net, list(xs), [x[:, 1] for x in xs], "i")
    k, j = found["layer"], found["unit"]
    f = np.concatenate([net.trace(x, probs=False).layers[k]["f"][x[:, 1] == 0, j] for x in xs])
    return found | {"mean_forget": round(float(f.mean()), DIGITS)}


def level_and_season(net: Network, x: np.ndarray, period: int) -> dict[str, Any]:
    """For a seasonal series ``x`` (T, 1): the unit whose cell state follows its level (a centred moving
    average over ``period`` steps) and the one that follows its season (the series less that level), each
    as {"layer", "unit", "r", "gate"}; the half period at each end, where the average is cut short, is left out."""
    v = x[:, 0].astype(np.float64)
    if len(v) < 3 * period:
        raise InputError(f"the series has {len(v)} steps: at least {3 * period} are needed for a period of {period}")
    level = np.convolve(v, np.ones(period) / period, mode="same")  # (T,)
    half = period // 2 + 1
    gate = _state_gate(net)
    tr = net.trace(x, probs=False)
    keep = slice(half, len(v) - half)
    columns = [(k, tr.layers[k][gate][keep]) for k in range(net.num_layers)]
    return {
        "level": _search(columns, level[keep]) | {"gate": gate},
        "season": _search(columns, (v - level)[keep]) | {"gate": gate},
    }
