"""What the page says about a bundled model, measured on that model: its description and its examples in the
order that shows the behaviour first. Every number in a sentence here is computed from the weights.

    lesson(net, card)   -> {"description", "examples", "measured"}   (card: the model's card.json)
    hold(net, text, layer, unit)        the recall task's memory unit over the digits of one text
    depth_run(net, text, unit, depth)   a counter unit against a depth, over one text

Recall (the first symbol named after 50-60 digits): an LSTM holds it with a forget gate near 1 and a closed input
gate; a coupled cell (input gate 1 - f) and a GRU (h = (1 - z)*h_prev + z*h_tilde) hold it as a fixed point
their candidate writes again at every digit; a plain RNN (h = tanh(W.[h_prev, x] + b)) does not hold it at all:
the gradient of the answer reaching the first step is the product of a tanh' and a W per digit, and vanishes
(Bengio, Simard & Frasconi 1994; Hochreiter & Schmidhuber 1997).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .analysis import code_features
from .attribution import attribute
from .card import CODE_CHARS, UNIT_SAMPLES
from .network import Network
from .tasks import dyck_depth

#: The most a memory unit may drift over the digits (max |state - start|) for the text to say it "only" moves.
CLEAN = 0.25


def _state_gate(net: Network) -> str:
    return "c" if "c" in net.gates else "h"


def hold(net: Network, text: str, layer: int, unit: int) -> dict[str, Any]:
    """The memory unit over the digits of a recall text (its first symbol, the digits, the query '?').

    Returns {"symbol", "digits" (how many), "gate" (c or h), "start" (the state after the symbol), "end" (after
    the last digit), "drift" (max |state - start| over the digits), "answer" ({symbol: p} at '?', the four
    memory symbols), "grad_ratio" (|d log p(symbol) / d state at step 1| over the same at '?': how much of the
    training signal reaches the step that stores), and per cell: f_min, f_max, f_mean, i_first, i_mean
    (lstm family), keep_mean (gru: 1 - z), same_sign (coupled, gru: the share of digits where the candidate
    has the state's sign)}."""
    tr = net.trace(text)
    g = tr.layers[layer]
    gate = _state_gate(net)
    v = g[gate][:, unit].astype(np.float64)  # (T,)
    digits = slice(1, len(tr) - 1)
    symbols = sorted(s for s in net.vocab or () if s.isalpha() and len(s) == 1)
    assert tr.probs is not None  # a next-token head: traced with probs
    p = tr.probs[-1]  # (V,)
    out: dict[str, Any] = {
        "symbol": text[0],
        "digits": len(tr) - 2,
        "gate": gate,
        "start": float(v[0]),
        "end": float(v[-2]),
        "drift": float(np.max(np.abs(v[digits] - v[0]))),
        "answer": {s: float(p[net.vocab.index(s)]) for s in symbols},  # type: ignore[union-attr]
    }
    if "f" in g:
        f = g["f"][digits, unit].astype(np.float64)  # (T-2,)
        out |= {"f_min": float(f.min()), "f_max": float(f.max()), "f_mean": float(f.mean())}
        out |= {"i_first": float(g["i"][0, unit]), "i_mean": float(g["i"][digits, unit].mean())}
    if "z" in g:
        out["keep_mean"] = float((1.0 - g["z"][digits, unit].astype(np.float64)).mean())
    cand = "h_tilde" if "h_tilde" in g else "c_tilde" if net.cell == "coupled" else None
    if cand:
        out["same_sign"] = float(np.mean(np.sign(g[cand][digits, unit]) == np.sign(v[digits])))
    # NumPy's backward (as exact: 1e-4 relative to the compiled one here): the model list (GET /api/models) asks
    # for this, and compiled kernels would load numba into the server there (~130 MB; ~7 s of compile a cell
    # kind on a fresh install) before anyone attributes anything (app/warm.py compiles them beside it instead)
    a = attribute(net, text, len(tr) - 1, target=text[0], layer=layer, compiled=False)
    out["grad_ratio"] = float(a.cell[1] / a.cell[-1])
    return out


def clean_hold(net: Network, examples: Sequence[str], layer: int, unit: int) -> int:
    """The example whose memory unit moves least over the digits (the smallest drift): the textbook hold."""
    return int(np.argmin([hold(net, x, layer, unit)["drift"] for x in examples]))


def depth_run(net: Network, text: str, unit: int, depth: Any, gate: str | None = None) -> dict[str, Any]:
    """A counter unit against a depth (one number a step) over ``text``: {"r" (Pearson's), "max_depth", "t_deepest"
    (the first step at the greatest depth), "at_deepest" (the unit there), "at_zero" (its mean where depth is 0)}."""
    tr = net.trace(text, probs=False)
    v = tr.layers[0][gate or _state_gate(net)][:, unit].astype(np.float64)  # (T,)
    d = np.asarray(depth, np.float64)  # (T,)
    t = int(np.argmax(d))
    zero = v[d == 0]
    return {
        "r": float(np.corrcoef(v, d)[0, 1]),
        "max_depth": int(d.max()),
        "t_deepest": t,
        "at_deepest": float(v[t]),
        "at_zero": float(zero.mean()) if len(zero) else None,
    }


def _deepest_first(examples: list[str], depth: Any) -> list[str]:
    """The examples, the one with the greatest depth first (the first of those on a tie)."""
    k = int(np.argmax([max(depth(x)) for x in examples]))
    return [examples[k], *examples[:k], *examples[k + 1 :]]


_SUPER = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


def sci(x: float) -> str:
    """A tiny or huge number as a person writes it, one digit: 9e-21 as "9 × 10⁻²¹" (no line break inside it)."""
    mantissa, exponent = f"{x:.0e}".split("e")
    return f"{mantissa}\u00a0×\u00a010{str(int(exponent)).translate(_SUPER)}"


def _pct(p: float) -> str:
    return f"{100 * p:.1f}%"


def _recall(net: Network, card: dict[str, Any]) -> dict[str, Any]:
    mem = card["telling_units"]["memory"]
    k, j, examples = mem["layer"], mem["unit"], list(card["examples"])
    first = clean_hold(net, examples, k, j)
    examples = [examples[first], *examples[:first], *examples[first + 1 :]]
    m = hold(net, examples[0], k, j)
    task = card["description"].split(" A unit has to")[0]  # the task, not the generic advice that follows
    s, n, p = m["symbol"], m["digits"], m["answer"][m["symbol"]]
    acc = (card.get("heldout") or {}).get("accuracy")
    right = f" It names the right symbol on {_pct(acc)} of held-out sequences." if acc is not None else ""
    over = f"on {UNIT_SAMPLES} held-out sequences"
    if net.cell in ("lstm", "peephole"):
        only = " only" if m["drift"] <= CLEAN else ""
        text = (
            f"Unit {j} holds the symbol. On '{examples[0][:12]}…' its forget gate stays between {m['f_min']:.2f} "
            f"and {m['f_max']:.2f} over the {n} digits while its input gate averages {m['i_mean']:.3f}, so its C "
            f"goes{only} from {m['start']:.2f} to {m['end']:.2f}; at '?' the model names '{s}' at {_pct(p)}. Its "
            f"forget gate averages {mem['mean_forget']:.3f} over the digits {over}.{right}"
        )
    elif net.cell == "coupled":
        text = (
            f"A coupled cell has no input gate of its own: it writes (1 − f) of C̃. Unit {j} holds the symbol, but "
            f"not with a forget gate near 1: f averages {m['f_mean']:.2f} over the {n} digits here "
            f"({mem['mean_forget']:.2f} {over}). C̃ has C's sign on {_pct(m['same_sign'])} of the digits, so each "
            f"step writes the same value back: C goes from {m['start']:.2f} to {m['end']:.2f} and at '?' the model "
            f"names '{s}' at {_pct(p)}.{right}"
        )
    elif net.cell == "gru":
        text = (
            f"A GRU has no forget gate and no C: h = (1 − z)·hₜ₋₁ + z·h̃. Unit {j} holds the symbol in h, "
            f"keeping on average {m['keep_mean']:.2f} of it a digit (1 − z; {mem['mean_forget']:.2f} {over}), far "
            f"from a held gate: h̃ has h's sign on {_pct(m['same_sign'])} of the {n} digits, so h goes from "
            f"{m['start']:.2f} to {m['end']:.2f} and at '?' the model names '{s}' at {_pct(p)}.{right}"
        )
    else:
        chance = 1 / len(m["answer"])
        said = ", ".join(f"{c} {_pct(q)}" for c, q in m["answer"].items())
        text = (
            f"This model fails the task. A plain RNN has no gates (hₜ = tanh(W·[hₜ₋₁, xₜ] + b)): at '?' it "
            f"says {said}, chance ({_pct(chance)} each).{right} Its best memory unit, {j}, keeps only "
            f"{mem['separation']:.2f} of its variance between the four symbols after the digits. Why: "
            f"the gradient that should teach it to store the symbol passes through a tanh and W at each of the "
            f"{n} digits and vanishes: at step 1 it is {sci(m['grad_ratio'])} of its size at '?'."
        )
    return {"description": f"{task} {text}", "examples": examples, "measured": m}


def _dyck(net: Network, card: dict[str, Any]) -> dict[str, Any]:
    u = card["telling_units"]["depth"]
    examples = _deepest_first(list(card["examples"]), dyck_depth)
    m = depth_run(net, examples[0], u["unit"], dyck_depth(examples[0]))
    way = "down" if u["r"] < 0 else "up"
    text = (
        f"Unit {u['unit']} is that counter: its C follows the depth with r = {u['r']:.3f} over {UNIT_SAMPLES} held-out "
        f"strings (it goes {way} with each '('). On the example {m['max_depth']} deep it reaches "
        f"{m['at_deepest']:.1f} at the deepest point (t = {m['t_deepest']}), from {m['at_zero']:.2f} at depth 0."
    )
    return {"description": f"{card['description']} {text}", "examples": examples, "measured": m}


def bracket_depth(text: str) -> np.ndarray:
    """How many brackets are open after each character of Python source (code_features' bracket_depth)."""
    return code_features(text)["bracket_depth"]


def _code(net: Network, card: dict[str, Any]) -> dict[str, Any]:
    feats = {f["feature"]: f for f in card["telling_units"]["features"]}
    examples = _deepest_first(list(card["examples"]), bracket_depth)
    b = feats["bracket_depth"]
    m = depth_run(net, examples[0], b["unit"], bracket_depth(examples[0]), "c")
    s = feats.get("in_string")
    string = f", unit {s['unit']} whether it is inside a string (r = {s['r']:.2f})" if s else ""
    text = (
        f"The known units, measured over {CODE_CHARS:,} held-out characters: unit {b['unit']}'s C follows how deep the "
        f"brackets go (r = {b['r']:.2f}){string}. On the first example, {m['max_depth']} brackets deep, unit "
        f"{b['unit']} follows the depth with r = {m['r']:.2f}."
    )
    return {"description": f"{card['description']} {text}", "examples": examples, "measured": m}


def lesson(net: Network, card: dict[str, Any]) -> dict[str, Any] | None:
    """The page's description and examples of a bundled model (``card``: its card.json), measured on ``net``;
    None for a task this module does not teach (the card's own description stands)."""
    units = card.get("telling_units") or {}
    if card.get("task") == "recall" and "memory" in units:
        return _recall(net, card)
    if card.get("task") == "dyck" and "depth" in units:
        return _dyck(net, card)
    if card.get("task") == "code" and any(f.get("feature") == "bracket_depth" for f in units.get("features", [])):
        return _code(net, card)
    return None
