"""The guided story: a few chapters, each a page state (model, text, layer, unit, t, the gate to highlight) and
two sentences on what to look at, every number in them measured on the bundled model (model/teach.py).

    chapters(models)   models: {id: (net, card)} of the bundled models; a chapter whose model is missing is left out

Each chapter: {"id", "title", "model", "text", "layer", "unit", "t", "highlight" (a gate name, or None),
"words" (the two sentences), "numbers" (what the words quote, unrounded: for tests), "free" (the parts of the page's
state the reader may change and still be in the chapter: scrubbing t, another unit; changing anything else, the model
or the text, leaves it, and the page says so)}.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .card import CODE_CHARS
from .network import Network
from .tasks import dyck_depth
from .teach import bracket_depth, depth_run, hold, lesson, sci

Models = Mapping[str, tuple[Network, dict[str, Any]]]

#: What a chapter lets the reader change without leaving it: the step, the unit, the layer, the dashboard's gate.
LOOK = ("t", "unit", "layer", "gate")
#: "Now type your own": anything.
ANY = (*LOOK, "text", "model")


def _chapter(id: str, title: str, model: str, text: str, unit: int, t: int, highlight: str | None, words: str,
             numbers: dict[str, Any], layer: int = 0, free: tuple[str, ...] = LOOK) -> dict[str, Any]:  # fmt: skip
    return {"id": id, "title": title, "model": model, "text": text, "layer": layer, "unit": unit, "t": t,
            "highlight": highlight, "words": words, "numbers": numbers, "free": list(free)}  # fmt: skip


def _recall(models: Models) -> list[dict[str, Any]]:
    if "recall-lstm" not in models:
        return []
    net, card = models["recall-lstm"]
    mem = card["telling_units"]["memory"]
    k, j = mem["layer"], mem["unit"]
    text = lesson(net, card)["examples"][0]  # type: ignore[index]  # the clean hold
    m = hold(net, text, k, j)
    s, n = m["symbol"], m["digits"]
    out = [
        _chapter(
            "unit-and-gate",
            "A unit and a gate",
            "recall-lstm",
            text,
            j,
            0,
            "i",
            f"A unit is one number of the cell's state: this LSTM has {net.hidden_size}, and unit {j} is selected (its "
            f"C runs along the diagram's top line; the Unit box picks another). A gate is a yellow σ box "
            f"giving every unit a number from 0 to 1: at t = 0 unit {j}'s input gate is {m['i_first']:.2f}, letting "
            f"the first symbol '{s}' into C ({m['start']:.2f}).",
            m,
            k,
        ),
        _chapter(
            "forget-holds",
            "The forget gate holds a memory",
            "recall-lstm",
            text,
            j,
            1 + n // 2,
            "f",
            f"Over the {n} digits unit {j}'s forget gate stays between {m['f_min']:.2f} and {m['f_max']:.2f} while its "
            f"input gate averages {m['i_mean']:.3f}: C keeps what it stored, going from {m['start']:.2f} to "
            f"{m['end']:.2f}. At '?' (press End) the model names '{s}' at {100 * m['answer'][s]:.1f}%.",
            m,
            k,
        ),
    ]
    if "recall-rnn" in models:
        rnet, rcard = models["recall-rnn"]
        rmem = rcard["telling_units"]["memory"]
        r = hold(rnet, text, rmem["layer"], rmem["unit"])
        said = ", ".join(f"{c} {100 * q:.1f}%" for c, q in r["answer"].items())
        out.append(
            _chapter(
                "rnn-fails",
                "The plain RNN forgets",
                "recall-rnn",
                text,
                rmem["unit"],
                len(text) - 1,
                "h",
                f"The plain RNN has no gates: hₜ = tanh(W·[hₜ₋₁, xₜ] + b) is rewritten at every digit, and at "
                f"'?' it says {said}: chance. The gradient of its answer reaching step 1 is {sci(r['grad_ratio'])} of "
                f"its size at '?' (the LSTM's: {m['grad_ratio']:.2f}), so training never taught it to store the "
                "symbol.",
                r | {"lstm_grad_ratio": m["grad_ratio"]},
                rmem["layer"],
            )
        )
    return out


def _dyck(models: Models) -> list[dict[str, Any]]:
    if "dyck" not in models:
        return []
    net, card = models["dyck"]
    u = card["telling_units"]["depth"]
    text = lesson(net, card)["examples"][0]  # type: ignore[index]  # the deepest
    m = depth_run(net, text, u["unit"], dyck_depth(text))
    way, back = ("down", "up") if m["r"] < 0 else ("up", "down")
    words = (
        f"Unit {u['unit']}'s C steps {way} with every '(' and {back} with every ')': on this string it follows the "
        f"depth with r = {m['r']:.3f}, reaching {m['at_deepest']:.1f} at the deepest point, {m['max_depth']} open "
        f"(t = {m['t_deepest']}). The model needs that count to allow ')' exactly while a bracket is open "
        f"and '$' only when none is."
    )
    return [_chapter("dyck-counter", "A counter", "dyck", text, u["unit"], m["t_deepest"], "c", words, m, u["layer"])]


def _code(models: Models) -> list[dict[str, Any]]:
    if "code" not in models:
        return []
    net, card = models["code"]
    b = next(f for f in card["telling_units"]["features"] if f["feature"] == "bracket_depth")
    text = lesson(net, card)["examples"][0]  # type: ignore[index]  # the most nested
    m = depth_run(net, text, b["unit"], bracket_depth(text), "c")
    words = (
        f"Among {net.hidden_size} units, unit {b['unit']}'s C follows how many brackets are open: r = {m['r']:.2f} "
        f"with the depth over this line ({b['r']:.2f} over {CODE_CHARS:,} held-out characters of the standard "
        f"library). "
        f"At t = {m['t_deepest']}, {m['max_depth']} brackets deep, it is {m['at_deepest']:.2f}; outside them it "
        f"averages {m['at_zero']:.2f}."
    )
    ch = _chapter(
        "code-brackets", "A unit that counts brackets", "code", text, b["unit"], m["t_deepest"], "c", words, m
    )
    own = _chapter(
        "your-own",
        "Now type your own",
        "code",
        text,
        b["unit"],
        m["t_deepest"],
        None,
        "Edit the text: every keystroke reruns the model, and unit "
        f"{b['unit']} follows your brackets. Pick another model or a unit (click a heatmap), or leave the tour: "
        "the page stays as it is.",
        {},
        free=ANY,
    )
    return [ch, own]


def chapters(models: Models) -> list[dict[str, Any]]:
    """The story's chapters over the bundled ``models`` ({id: (net, card)}), in reading order."""
    return [*_recall(models), *_dyck(models), *_code(models)]
