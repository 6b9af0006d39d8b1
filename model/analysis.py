"""Finding the units that track something: correlate each unit's activation with a feature of the input.

Karpathy, Johnson & Fei-Fei (2015, "Visualizing and Understanding Recurrent Networks")
found cells of character-level LSTMs that track whether the text is inside a quote,
how deep it is inside brackets, and how far along its line it is. ``code_features``
computes such features for Python source, one value per character; ``best_units``
finds, for each feature, the unit whose activation correlates with it best (Pearson r).

Counting: LSTMs learn Dyck languages by keeping the bracket depth in a cell state that
goes up on "(" and down on ")" (Suzgun et al. 2019, "LSTM Networks Can Perform Dynamic
Counting"; Weiss et al. 2018, "On the Practical Computational Power of Finite Precision
RNNs for Language Recognition"). ``depth_unit`` finds that unit.

Memory: ``memory_unit`` finds the unit whose state, after a run of distractors, best tells
apart the symbol seen first, and reports how much of that unit its forget gate keeps.

Every number returned is a plain Python float or int (or None), ready for a model card.
"""

from __future__ import annotations

import io
import tokenize
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .errors import InputError
from .network import Network

#: Digits kept in the correlations and ratios returned.
DIGITS = 4

OPEN, CLOSE = "([{", ")]}"
QUOTES = "'\""
PREFIX = "rRbBuUfF"  # string prefix letters: r"", b"", f"", rb"", ...


# Features of Python source ------------------------------------------------------
def code_features(text: str) -> dict[str, np.ndarray]:
    """Per-character features of Python source, each (T,) float64 with T = len(text).

    in_string      1 on every character of a string literal: its prefix (r, b, f, ...), its quotes and
                   everything between, newlines of triple-quoted strings (docstrings) included; an
                   f-string counts whole, its {fields} too. An unterminated "..." or '...' ends at
                   its line's end, an unterminated triple-quoted string at the end of the text.
    in_comment     1 from a "#" outside strings to the end of its line (the newline excluded).
    bracket_depth  how many of ( [ { are open after this character, counting only brackets outside
                   strings and comments; a closer with no opener (a chunk cut mid-expression) leaves it at 0.
    indent         the width of the leading spaces and tabs of the character's line (a tab moves to the
                   next multiple of 8, as Python's tokenizer counts), the same for every character of
                   the line, its newline included.
    line_position  the character's column in its line, from 0; a newline sits at the column after the
                   line's last character, and the character after it is at 0.

    Strings and comments come from the ``tokenize`` module; where it gives up (code cut mid-file,
    an unterminated string, an inconsistent dedent) a small character scanner takes over from the
    last token it understood. Text that starts inside a string cannot be known as such: its start
    is read as code.
    """
    T = len(text)
    in_string, in_comment = np.zeros(T), np.zeros(T)
    resume = _tokenize_spans(text, in_string, in_comment)
    if resume is not None:
        in_string[resume:], in_comment[resume:] = 0, 0
        _scan_spans(text, resume, in_string, in_comment)
    code = (in_string == 0) & (in_comment == 0)
    bracket_depth, indent, line_position = np.zeros(T), np.zeros(T), np.zeros(T)
    depth, line_start, width = 0, 0, _indent_width(text, 0)
    for t, ch in enumerate(text):
        if code[t] and ch in OPEN:
            depth += 1
        elif code[t] and ch in CLOSE:
            depth = max(depth - 1, 0)
        bracket_depth[t], indent[t], line_position[t] = depth, width, t - line_start
        if ch == "\n":
            line_start = t + 1
            width = _indent_width(text, line_start)
    return {
        "in_string": in_string,
        "in_comment": in_comment,
        "bracket_depth": bracket_depth,
        "indent": indent,
        "line_position": line_position,
    }


def _indent_width(text: str, start: int) -> int:
    """Width of the spaces and tabs that open the line starting at ``start``."""
    width = 0
    for ch in text[start:]:
        if ch == " ":
            width += 1
        elif ch == "\t":
            width = (width // 8 + 1) * 8
        else:
            break
    return width


def _tokenize_spans(text: str, in_string: np.ndarray, in_comment: np.ndarray) -> int | None:
    """Mark strings and comments as ``tokenize`` reads them; the offset where it gave up, or None."""
    starts = [0] + [t + 1 for t, ch in enumerate(text) if ch == "\n"]  # offset of each line

    def offset(pos: tuple[int, int]) -> int:
        row, col = pos
        return min(starts[row - 1] + col, len(text)) if row - 1 < len(starts) else len(text)

    fstring_start = getattr(tokenize, "FSTRING_START", -1)  # Python >= 3.12 splits f-strings up
    fstring_end = getattr(tokenize, "FSTRING_END", -1)
    open_fstrings: list[int] = []  # offsets where the f-strings still open began
    understood = 0  # offset up to which the tokens were all well-formed
    try:
        for tok in tokenize.generate_tokens(io.StringIO(text).readline):
            a, b = offset(tok.start), offset(tok.end)
            if tok.type == tokenize.ERRORTOKEN and tok.string[:1] in QUOTES and tok.string:
                return open_fstrings[0] if open_fstrings else a  # an unterminated string (Python 3.11)
            if tok.type == fstring_start:
                open_fstrings.append(a)
            elif tok.type == fstring_end:
                first = open_fstrings.pop()
                if not open_fstrings:
                    in_string[first:b] = 1
            elif tok.type == tokenize.STRING and not open_fstrings:
                in_string[a:b] = 1
            elif tok.type == tokenize.COMMENT and not open_fstrings:
                in_comment[a:b] = 1
            understood = open_fstrings[0] if open_fstrings else max(understood, b)
    except (tokenize.TokenError, SyntaxError):  # SyntaxError covers IndentationError
        return understood
    return None


def _scan_spans(text: str, start: int, in_string: np.ndarray, in_comment: np.ndarray) -> None:
    """Mark strings and comments from ``start`` on with a character scanner (the fallback)."""
    t, T = start, len(text)
    while t < T:
        ch = text[t]
        if ch == "#":
            end = text.find("\n", t)
            end = T if end < 0 else end
            in_comment[t:end] = 1
            t = end
        elif ch in QUOTES:
            quote = text[t : t + 3] if text[t : t + 3] == ch * 3 else ch
            first = t
            while first > 0 and t - first < 2 and text[first - 1] in PREFIX:
                first -= 1
            if first > 0 and (text[first - 1].isalnum() or text[first - 1] == "_"):
                first = t  # the letters end a name: not a prefix
            u = t + len(quote)
            while u < T:
                if text[u] == "\\":
                    u += 2  # an escaped character (a backslash-newline continues the line)
                elif text.startswith(quote, u):
                    u += len(quote)
                    break
                elif text[u] == "\n" and len(quote) == 1:
                    break  # unterminated: the string ends with its line
                else:
                    u += 1
            u = min(u, T)
            in_string[first:u] = 1
            t = u
        else:
            t += 1


# Correlations ---------------------------------------------------------------------
def correlate(a: Any, b: Any) -> float | None:
    """Pearson r of two equally long sequences; None when either is constant or holds NaN/inf."""
    x, y = np.asarray(a, np.float64).ravel(), np.asarray(b, np.float64).ravel()
    if x.shape != y.shape:
        raise InputError(f"cannot correlate sequences of lengths {x.size} and {y.size}")
    if x.size < 2 or not (np.isfinite(x).all() and np.isfinite(y).all()) or np.ptp(y) == 0:
        return None
    r = _unit_r(x[:, None], y)[0]
    return None if np.isnan(r) else float(r)


def _unit_r(X: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Pearson r of each column of X (T, H) with y (T,), NaN for constant columns; y is not constant."""
    X = np.asarray(X, np.float64)  # (T, H)
    Xc = X - X.mean(axis=0)  # (T, H)
    yc = y - y.mean()  # (T,)
    den = np.sqrt((Xc * Xc).sum(axis=0) * (yc @ yc))  # (H,)
    constant = X.max(axis=0) == X.min(axis=0)  # (H,) exact test: a mean can miss a constant by rounding
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (yc @ Xc) / den  # (H,)
    r[constant] = np.nan
    return np.clip(r, -1.0, 1.0)


def _search(layers: list[tuple[int, np.ndarray]], y: np.ndarray) -> dict[str, Any]:
    """The (layer, unit) whose column correlates best (by |r|) with y, among (layer, (T, H)) pairs."""
    best: dict[str, Any] = {"layer": None, "unit": None, "r": None}
    if np.ptp(y) == 0:
        return best  # a constant feature: no correlation is defined
    top = -1.0
    for k, X in layers:
        r = _unit_r(X, y)  # (H,)
        if np.isnan(r).all():
            continue
        j = int(np.nanargmax(np.abs(r)))
        if abs(r[j]) > top:
            top, best = abs(r[j]), {"layer": k, "unit": j, "r": round(float(r[j]), DIGITS)}
    return best


def best_units(trace: Any, features: dict[str, np.ndarray], layer: int | None = None, gate: str = "c") -> list[dict]:
    """For each feature, the unit whose ``gate`` activation correlates best with it over all timesteps.

    Returns one {"feature", "layer", "unit", "r"} per feature, in order: r is Pearson's, signed,
    rounded to 4 digits, and chosen by |r|. A constant feature gets layer, unit and r None (no
    correlation is defined); constant units are passed over. ``layer`` None searches every layer.
    """
    ks = range(len(trace.layers)) if layer is None else [layer]
    columns = []
    for k in ks:
        if not 0 <= k < len(trace.layers):
            raise InputError(f"layer {k} does not exist: the trace has {len(trace.layers)} layers")
        if gate not in trace.layers[k]:
            raise InputError(f"gate {gate!r} is not in this trace (it has {', '.join(trace.layers[k])})")
        columns.append((k, trace.layers[k][gate]))
    T = columns[0][1].shape[0]
    out = []
    for name, values in features.items():
        y = np.asarray(values, np.float64)
        if y.shape != (T,):
            raise InputError(f"feature {name!r} has shape {y.shape}, the trace {T} steps")
        out.append({"feature": name, **_search(columns, y)})
    return out


# Counting and memory ---------------------------------------------------------------
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
