"""Match a pattern (LSTMVis, Strobelt et al. 2017): the units that are on during a span of one text,
then the spans of a corpus where the same units are on.

1. Selection. Over the span [start, stop) of a text (L = stop - start steps), with a threshold theta on
   one gate (h by default, as LSTMVis):

       on(u)  =  #{t in [start, stop) : g[t, u] >= theta}  >=  ceil(share * L)       (share = 1: every step)

2. Search. For the k units selected, at every step t of the corpus

       off[t]  =  #{u selected : g[t, u] < theta}          (the Hamming distance between the step's on/off
                                                           pattern of those units and "all on")

   a step matches when off[t] <= k - need (need = ceil(min_on * k); min_on = 1: every selected unit on).
   A match is a maximal run of matching steps inside one document (a run never crosses a document
   boundary). Matches rank by their mean off[t] (fewer selected units off first), then by how close their
   length is to L, then by position: with min_on = 1 every match has off = 0 and the length decides.

The search streams over (a, (n, W)) blocks in order (the index's ``blocks``), keeping the best ``top``
runs found so far and one open run across a block boundary: memory is one block and ``top`` runs.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np

from ..errors import InputError
from .saturation import value_range


def check_threshold(gate: str, threshold: float) -> None:
    """An InputError unless theta lies in the gate's range ([0, 1] sigmoid, [-1, 1] tanh, finite for c)."""
    lo, hi = value_range(gate)
    if not math.isfinite(threshold) or not lo <= threshold <= hi:
        where = "a finite number" if math.isinf(lo) else f"in [{lo:g}, {hi:g}]"
        raise InputError(f"threshold {threshold!r} is outside the range of gate {gate!r}: give a value {where}")


def check_span(start: int, stop: int, T: int) -> None:
    """An InputError unless [start, stop) is a non-empty span of the T steps."""
    if not (isinstance(start, int) and isinstance(stop, int)) or not 0 <= start < stop <= T:
        raise InputError(
            f"the span [{start}, {stop}) is not inside the text's {T} steps: give 0 <= start < stop <= {T}"
        )


def units_on(values: Any, start: int, stop: int, threshold: float, share: float = 1.0) -> list[int]:
    """The units whose value is >= threshold on at least ceil(share * L) steps of [start, stop) of a (T, W)
    array (share 1: every step), in id order."""
    X = np.asarray(values)  # (T, W)
    check_span(start, stop, X.shape[0])
    if not 0 < share <= 1:
        raise InputError(f"share {share!r} must be in (0, 1]: the fraction of the span's steps a unit is on")
    L = stop - start
    count = (X[start:stop] >= threshold).sum(axis=0)  # (W,)
    return np.flatnonzero(count >= math.ceil(share * L - 1e-9)).tolist()


def _best(keys: np.ndarray, top: int) -> np.ndarray:
    """The indices of the `top` smallest rows of keys (n, 3): (mean off, |length - L|, start)."""
    idx = np.lexsort((keys[:, 2], keys[:, 1], keys[:, 0]))
    return idx[:top]


def find_runs(
    blocks: Iterable[tuple[int, Any]],
    doc_starts: Any,
    units: list[int],
    threshold: float,
    length: int,
    min_on: float = 1.0,
    top: int = 20,
    min_length: int = 1,
) -> tuple[list[dict[str, Any]], int]:
    """The best ``top`` runs where the selected ``units`` are on (see the module docstring), and how many
    runs there are in all. ``blocks``: (a, (n, W)) in order, covering the steps from 0; ``doc_starts``: the
    global step where each document starts (and the end). Each run: {"start", "stop", "length", "off"},
    global steps, ``off`` the mean number of selected units off over the run."""
    k = len(units)
    if k == 0:
        return [], 0
    if not 0 < min_on <= 1:
        raise InputError(f"min_on {min_on!r} must be in (0, 1]: the share of the selected units that must be on")
    need = math.ceil(min_on * k - 1e-9)
    u = np.asarray(units, np.int64)
    starts = np.asarray(doc_starts, np.int64)
    best = np.zeros((0, 4))  # rows (mean off, |len - L|, start, stop)
    found = 0
    open_at: int | None = None  # the start of a run still open at the last block's end
    open_sum = 0.0  # the sum of off over its steps so far
    end = 0

    def keep(b: np.ndarray, e: np.ndarray, sums: np.ndarray) -> None:
        nonlocal best, found
        n_ = e - b  # (r,)
        ok = n_ >= min_length
        b, e, sums, n_ = b[ok], e[ok], sums[ok], n_[ok]
        found += len(b)
        if not len(b):
            return
        rows = np.stack([sums / n_, np.abs(n_ - length), b, e], axis=1).astype(np.float64)  # (r, 4)
        rows = np.concatenate([best, rows])
        best = rows[_best(rows, top)]

    for a, X in blocks:
        if a != end:
            raise InputError(f"blocks must follow each other: one starts at {a}, the last ended at {end}")
        c = (np.asarray(X)[:, u] >= threshold).sum(axis=1)  # (n,) selected units on
        n = len(c)
        end = a + n
        if n == 0:
            continue
        m = c >= need  # (n,) matching steps
        off = (k - c).astype(np.float64)  # (n,)
        new_doc = np.zeros(n, bool)
        inside = starts[(starts >= a) & (starts < end)] - a
        new_doc[inside] = True
        cs = np.concatenate([[0.0], np.cumsum(off)])  # (n + 1,)
        cont = open_at is not None and bool(m[0]) and not new_doc[0]
        if open_at is not None and not cont:  # the open run ended at the block boundary
            keep(np.array([open_at]), np.array([a]), np.array([open_sum]))
            open_at = None
        before_off = np.concatenate([[not cont], ~m[:-1]])  # (n,) the step before is not part of a run
        begins = np.flatnonzero(m & (before_off | new_doc))  # (r,) block positions where runs begin
        ends = np.flatnonzero(m[:-1] & (~m[1:] | new_doc[1:])) + 1  # (r',) block positions where runs end
        b = begins
        if cont:
            b = np.concatenate([[0], begins])  # the open run goes on from position 0
        closed = len(ends)
        sums = cs[ends] - cs[b[:closed]]
        if cont and closed:
            sums[0] += open_sum
        if closed:
            bg = b[:closed] + a
            if cont and open_at is not None:
                bg[0] = open_at
            keep(bg, ends + a, sums)
        if m[-1]:  # a run is open at the block's end
            last = b[closed]
            if cont and closed == 0:
                open_sum += cs[n] - cs[0]
            else:
                open_at, open_sum = int(last + a), float(cs[n] - cs[last])
        else:
            open_at = None
    if open_at is not None:
        keep(np.array([open_at]), np.array([end]), np.array([open_sum]))
    runs = [{"start": int(s), "stop": int(e), "length": int(e - s), "off": round(float(o), 4)} for o, _, s, e in best]
    return runs, found


def trace_context(
    tokens: list[str], values: np.ndarray, run: dict[str, Any], before: int = 20, after: int = 20
) -> dict[str, Any]:
    """A run found in one text as the index's ``context`` shapes it (doc 0, source "this text"): the
    snippet's tokens and ``values`` (one number per step: what the snippet is coloured by)."""
    a = max(0, run["start"] - before)
    b = min(len(tokens), run["stop"] + after)
    return {
        "doc": 0,
        "source": "this text",
        "line": 0,
        "start": a,
        "stop": b,
        "pos": run["start"],
        "tokens": tokens[a:b],
        "values": np.round(np.asarray(values[a:b], np.float64), 4).tolist(),
        "peak": run["start"] - a,
    }
