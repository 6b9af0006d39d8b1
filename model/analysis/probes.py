"""Which unit tracks X? Every unit ranked by its correlation with a feature, and linear probes of a layer.

rank     Pearson r of every unit of every layer and gate with a feature (one number per step), best |r|
         first, over a Trace (the current text) or an Index (model/analysis/store.py: streamed over its
         blocks in one pass a gate, memory bounded by a block; each unit's spread comes from the index's
         stats). r = Σ (x − x̄)(y − ȳ) / sqrt(Σ (x − x̄)² Σ (y − ȳ)²), formed by correlate.py's ``_r_of``
         (a constant unit has no r and is left out; a constant feature is refused).
linear   probes of a layer (linear.py's models): ridge for a continuous feature, scored by
         R² = 1 − Σ (y − ŷ)² / Σ (y − ȳ)² on held-out steps; logistic for a 0/1 one, scored by accuracy and
         balanced accuracy (the mean of the two classes' recalls).

A linear probe is fit on one part of the documents and scored on the others (``split``: a document whose
mix(n) = (n · 0x9E3779B97F4A7C15) mod 2⁶⁴ falls in the lowest fifth is held out; with fewer than five
documents, the text is cut into ten parts and parts 4 and 9 are held out), for the top-1 unit, the top-8
units of its layer and gate, and all of them ("is X decodable from this layer, and from how few units").
At most ``MAX_FIT`` steps are fit and ``MAX_SCORE`` scored: beyond, steps are kept by the smallest mix(pos),
deterministically, and the result says so.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from ..errors import Cancelled, InputError
from ..trace import Trace
from .correlate import DIGITS, _r_of
from .linear import LOGISTIC_L2, logistic, ridge
from .sums import group_moments, shared, weighted_sum

#: Ranking entries returned by ``probe`` (``rank`` returns all).
RANKED = 50
#: Most steps a linear probe is fit on, and scored on (beyond: a deterministic sample).
MAX_FIT, MAX_SCORE = 30_000, 30_000
#: The ridge penalty, per fitted step, on standardized units, when there are too few fit documents to choose one.
RIDGE_ALPHA = 1e-3
#: The penalties the inner cross-validation chooses from, each per fitted step (so that a penalty chosen on the
#: inner folds' fewer steps means the same on all of them), on standardized units: ridge's α and logistic's λ
#: (× steps: λ = 1 on 30,000 steps, the former fixed default, is 3.3e-5), each a log grid.
RIDGE_ALPHAS = (1e-4, 1e-3, 1e-2, 1e-1)
LOGISTIC_L2S = (3e-6, 3e-5, 3e-4, 3e-3)
#: Inner folds over the fit documents (whole documents each) that choose the penalty, and the most fit steps
#: they are cut from (beyond: the steps with the smallest mix(row), so 13 fits cost about 4 of the final one).
INNER, INNER_STEPS = 3, 10_000
#: Units in the middle probe.
TOP = 8
#: Steps of the best unit's curve shown for an index (its top context: this many before its peak, half after).
CURVE_BEFORE = 200
#: Rows an index is read in.
BLOCK = 65536
#: Threads reading an index's gates at once (each reads and sums whole gates).
THREADS = min(4, os.cpu_count() or 1)
GOLDEN = np.uint64(0x9E3779B97F4A7C15)

Progress = Callable[[int, int], None]


def mix(n: np.ndarray) -> np.ndarray:
    """(n · 0x9E3779B97F4A7C15) mod 2⁶⁴, the contract's deterministic shuffle of positions."""
    with np.errstate(over="ignore"):
        return np.asarray(n).astype(np.uint64) * GOLDEN


def _is_index(source: Any) -> bool:
    return not isinstance(source, Trace) and hasattr(source, "blocks")


def _gates_of(source: Any, layer: int, gate: str | None) -> list[str]:
    have = list(source.layers[layer]) if isinstance(source, Trace) else list(source.gates)
    if gate is None:
        return have
    if gate not in have:
        raise InputError(f"gate {gate!r} is not recorded here: there are {', '.join(have)}")
    return [gate]


def _n_layers(source: Any) -> int:
    return len(source.layers) if isinstance(source, Trace) else int(source.layers)


def _check_feature(y: Any, steps: int) -> np.ndarray:
    y = np.asarray(y, np.float64)
    if y.shape != (steps,):
        raise InputError(f"the feature has {y.size} values but there are {steps} steps")
    if not np.isfinite(y).all():
        raise InputError("the feature holds NaN or infinite values")
    if steps < 2 or np.ptp(y) == 0:
        shown = f"{y[0]:g}" if steps else "empty"
        raise InputError(f"the feature is constant ({shown} at every step): no unit can be correlated with it")
    return y


def _steps(source: Any) -> int:
    return len(source) if isinstance(source, Trace) else int(source.steps)


def _index_sums(source: Any, pairs: list[tuple[int, str]], yc: np.ndarray) -> Iterator[int | dict[int, np.ndarray]]:
    """Σ_t ỹ_t x_t (W,) of every (layer, gate) pair of an index, read block by block in ``THREADS`` threads (the
    reads and sums.py's sums over the float16 rows release the GIL: two gates at once on two cores); yields the
    rows read so far as blocks finish, then {pair number: sums}. Leaving early stops the threads after their
    current block."""
    sums: dict[int, np.ndarray] = {}
    rows: queue.Queue[int] = queue.Queue()
    quit = threading.Event()

    blocks = getattr(source, "stored_blocks", source.blocks)  # float16 as stored (sums.py), or float32

    def work(n: int, k: int, g: str) -> None:
        xy = None
        for a, X in blocks(k, g, BLOCK):  # X (n, W)
            if quit.is_set():
                return
            part = weighted_sum(X, yc[a : a + len(X)])  # (W,) Σ ỹ x = Σ ỹ (x − x̄), as Σ ỹ = 0
            xy = part if xy is None else xy + part
            rows.put(len(X))
        sums[n] = xy if xy is not None else np.zeros(source.gate_width(k, g))

    pool = ThreadPoolExecutor(THREADS)
    try:
        futures = [pool.submit(work, n, k, g) for n, (k, g) in enumerate(pairs)]
        done = 0
        while True:
            try:
                done += rows.get(timeout=0.05)
                yield done
            except queue.Empty:
                if all(f.done() for f in futures) and rows.empty():
                    break
        for f in futures:
            f.result()  # a reader's error, raised here
    finally:
        quit.set()
        pool.shutdown(wait=True)
    yield sums


def iter_rank(source: Any, y: Any, gate: str | None = None) -> Iterator[tuple[int, int] | list[dict[str, Any]]]:
    """``rank`` as a generator: (done, total) steps read as it goes, then the ranking (the last item)."""
    S = _steps(source)
    y = _check_feature(y, S)
    yc = y - y.mean()  # (S,)
    yy = float(yc @ yc)
    pairs = [(k, g) for k in range(_n_layers(source)) for g in _gates_of(source, k, gate)]
    total = S * len(pairs)
    columns: list[np.ndarray] = []
    if isinstance(source, Trace):  # the gates in THREADS threads (sums.py's passes release the GIL)
        gates = [source.layers[k][g] for k, g in pairs]
        groups = shared(gates)  # a layer's f, i, c̃, o summed in one pass over the array they are views of
        by_gate: dict[int, np.ndarray] = {}
        with ThreadPoolExecutor(THREADS) as pool:
            for group, got in zip(groups, pool.map(lambda grp: group_moments(gates, grp, yc), groups)):
                for n, (_, xx, xy) in zip(group, got):
                    by_gate[n] = _r_of(xy, xx, yy, xx == 0)  # (W,) a constant unit: Σ (x − x̄)² exactly 0
                yield S * len(by_gate), total
        columns = [by_gate[n] for n in range(len(pairs))]
    else:
        sums: dict[int, np.ndarray] = {}
        for item in _index_sums(source, pairs, yc.astype(np.float32)):
            if isinstance(item, dict):
                sums = item
            else:
                yield item, total
        for n, (k, g) in enumerate(pairs):
            stats = source.stats(k, g)
            xx = np.asarray(stats.std, np.float64) ** 2 * S  # (W,) Σ (x − x̄)²
            columns.append(_r_of(sums[n], xx, yy, np.asarray(stats.min) == np.asarray(stats.max)))
        yield total, total
    out: list[dict[str, Any]] = []
    for (k, g), r in zip(pairs, columns):
        for u in np.flatnonzero(~np.isnan(r)):
            out.append({"layer": k, "unit": int(u), "gate": g, "r": round(float(r[u]), DIGITS)})
    out.sort(key=lambda e: -abs(e["r"]))  # stable: ties keep layer, gate, unit order
    yield out


def rank(
    source: Any,
    y: Any,
    gate: str | None = None,
    progress: Progress | None = None,
    stop: Callable[[], bool] | None = None,
) -> list[dict[str, Any]]:
    """Every unit of every layer and gate (``gate``: only that one; None: every gate recorded) as
    {"layer", "unit", "gate", "r"}, best |r| first (ties: layer, gate, unit order). ``source`` is a Trace
    or an Index; ``y`` one number per step. ``progress(done, total)`` is called as the steps are read;
    ``stop()`` True raises Cancelled."""
    for item in iter_rank(source, y, gate):
        if isinstance(item, list):
            return item
        if stop is not None and stop():
            raise Cancelled("the probe was stopped")
        if progress is not None:
            progress(*item)
    raise AssertionError("iter_rank ended without a ranking")


# ---------------------------------------------------------------------------------------------------
# linear probes
# ---------------------------------------------------------------------------------------------------
def _binary(y: np.ndarray) -> bool:
    return bool(np.isin(y, (0.0, 1.0)).all())


def split(starts: np.ndarray, steps: int) -> tuple[list[tuple[int, int]], list[tuple[int, int]], str]:
    """(train ranges, held-out ranges, how): by document (mix(n) in the lowest fifth held out) with five
    documents or more, else the steps cut into ten parts with parts 4 and 9 held out."""
    starts = np.asarray(starts, np.int64)
    n = len(starts) - 1
    if n >= 5:
        held = mix(np.arange(n)) < np.uint64(2**64 // 5)  # (N,)
        if held.all() or not held.any():
            held = np.arange(n) % 5 == 4
        ranges = [(int(starts[d]), int(starts[d + 1])) for d in range(n)]
        return [r for r, h in zip(ranges, held) if not h], [r for r, h in zip(ranges, held) if h], "documents"
    cuts = np.linspace(0, steps, 11).astype(np.int64)
    parts = [(int(cuts[j]), int(cuts[j + 1])) for j in range(10)]
    return [p for j, p in enumerate(parts) if j % 5 != 4], [p for j, p in enumerate(parts) if j % 5 == 4], "parts"


def _positions(ranges: list[tuple[int, int]], most: int) -> tuple[np.ndarray, bool]:
    """The steps of ``ranges``, or the ``most`` of them with the smallest mix(pos) (sorted), and whether sampled."""
    pos = np.concatenate([np.arange(a, b, dtype=np.int64) for a, b in ranges]) if ranges else np.zeros(0, np.int64)
    if len(pos) <= most:
        return pos, False
    keep = np.argpartition(mix(pos), most - 1)[:most]
    return np.sort(pos[keep]), True


def _rows(source: Any, layer: int, gate: str, pos: np.ndarray) -> np.ndarray:
    """The (len(pos), W) activations at sorted positions ``pos``, read block by block from an index."""
    if isinstance(source, Trace):
        return np.asarray(source.layers[layer][gate], np.float64)[pos]
    out = None
    for a, X in source.blocks(layer, gate, BLOCK):
        i, j = np.searchsorted(pos, [a, a + len(X)])
        if out is None:
            out = np.empty((len(pos), X.shape[1]), np.float32)
        out[i:j] = X[pos[i:j] - a]
    return np.zeros((len(pos), 0)) if out is None else out.astype(np.float64)


def _fit(binary: bool, X: np.ndarray, y: np.ndarray, penalty: float, start: Any = None) -> tuple[np.ndarray, float]:
    return logistic(X, y, penalty * len(X), start=start) if binary else ridge(X, y, penalty * len(X))


def _loss(binary: bool, w: np.ndarray, b: float, X: np.ndarray, y: np.ndarray) -> float:
    """The mean held-out loss the penalty is chosen by: log loss for logistic, squared error for ridge."""
    z = X @ w + b  # (m,)
    return float(np.mean(np.logaddexp(0.0, z) - y * z) if binary else np.mean((y - z) ** 2))


def choose_penalty(binary: bool, X: np.ndarray, y: np.ndarray, groups: np.ndarray) -> tuple[float, str]:
    """The penalty of ``LOGISTIC_L2S`` (or ``RIDGE_ALPHAS``) with the least mean held-out loss over ``INNER``
    folds of whole fit documents (``groups``: each row's document, (n,)), ties to the larger penalty; with
    fewer than two fit documents the default (``LOGISTIC_L2``, ``RIDGE_ALPHA``); at most ``INNER_STEPS`` rows
    are used. Also how it was chosen."""
    grid = LOGISTIC_L2S if binary else RIDGE_ALPHAS
    if len(X) > INNER_STEPS:
        keep = np.sort(np.argpartition(mix(np.arange(len(X))), INNER_STEPS - 1)[:INNER_STEPS])
        X, y, groups = X[keep], y[keep], groups[keep]
    docs = np.unique(groups)
    folds = min(INNER, len(docs))
    if folds < 2:
        return (LOGISTIC_L2 / MAX_FIT if binary else RIDGE_ALPHA), "default: fewer than two fit documents"
    fold_of = dict(zip(docs[np.argsort(mix(docs), kind="stable")].tolist(), np.arange(len(docs)) % folds))
    fold = np.array([fold_of[int(d)] for d in groups])  # (n,) each row's inner fold, by document
    losses = np.zeros(len(grid))
    for f in range(folds):
        fit, val = fold != f, fold == f
        if binary and len(np.unique(y[fit])) < 2:
            continue  # this fold's fit holds one class only: it says nothing about the penalty
        start = None
        for j in reversed(range(len(grid))):  # from the largest penalty down, each fit warm-started
            w, b = _fit(binary, X[fit], y[fit], grid[j], start)
            start = (w, b)
            losses[j] += _loss(binary, w, b, X[val], y[val]) * val.sum()
    j = max(range(len(grid)), key=lambda j: (-losses[j], j))
    return grid[j], f"inner {folds}-fold cross-validation over the fit documents"


def _score(
    binary: bool, X: np.ndarray, y: np.ndarray, Xt: np.ndarray, yt: np.ndarray, groups: np.ndarray
) -> dict[str, Any]:
    penalty, how = choose_penalty(binary, X, y, groups)
    w, b = _fit(binary, X, y, penalty)
    out: dict[str, Any] = {"penalty": penalty, "penalty_how": how}
    if binary:
        pred = (Xt @ w + b > 0).astype(np.float64)  # (m,)
        recalls = [float((pred[yt == c] == c).mean()) for c in (0.0, 1.0) if (yt == c).any()]
        fit_pred = (X @ w + b > 0).astype(np.float64)  # (n,)
        return out | {
            "accuracy": round(float((pred == yt).mean()), DIGITS),
            "balanced": round(float(np.mean(recalls)), DIGITS),
            "fit": round(float((fit_pred == y).mean()), DIGITS),
        }
    res, tot = yt - (Xt @ w + b), yt - yt.mean()
    r2 = None if tot @ tot == 0 else round(float(1 - (res @ res) / (tot @ tot)), DIGITS)
    fres, ftot = y - (X @ w + b), y - y.mean()
    fit_r2 = None if ftot @ ftot == 0 else round(float(1 - (fres @ fres) / (ftot @ ftot)), DIGITS)
    return out | {"r2": r2, "fit": fit_r2}


def _read_both(source: Any, k: int, g: str, tp: np.ndarray, sp: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The rows at the fit positions and at the held-out ones, in one pass over an index's gate."""
    both = np.concatenate([tp, sp])
    order = np.argsort(both, kind="stable")
    rows = _rows(source, k, g, both[order])  # (n + m, W)
    out = np.empty_like(rows)
    out[order] = rows
    return out[: len(tp)], out[len(tp) :]


def fit_ranking(X: dict[tuple[int, str], np.ndarray], y: np.ndarray) -> list[dict[str, Any]]:
    """Every unit of the given (layer, gate) columns ranked by |r| with y over the fit steps only, best first
    (ties: layer, gate, unit order; a unit constant on them left out): the units a probe is built from."""
    yc = y - y.mean()  # (n,)
    out: list[dict[str, Any]] = []
    for (k, g), A in X.items():
        xc = A - A.mean(axis=0)  # (n, W)
        xx = np.einsum("ij,ij->j", xc, xc)  # (W,)
        r = _r_of(xc.T @ yc, xx, float(yc @ yc), xx == 0)  # (W,)
        out += [{"layer": k, "unit": int(u), "gate": g, "r": float(r[u])} for u in np.flatnonzero(~np.isnan(r))]
    out.sort(key=lambda e: -abs(e["r"]))
    return out


def linear(source: Any, y: Any, ranking: list[dict[str, Any]], starts: Any = None) -> dict[str, Any]:
    """Linear probes fit on the training split and scored on the held-out one. Nothing of the held-out
    documents chooses anything: the layer, gate and units come from each unit's r over the fit steps alone
    (``fit_ranking``, over the layers and gates ``ranking`` holds), and each probe's penalty from an inner
    cross-validation over the fit documents (``choose_penalty``). Four probes, of the best unit's layer and
    gate: its top-1 unit, its top-8 units (by fit |r|), all its units, and the whole layer ("layer_all": every
    unit of every gate recorded for that layer, side by side: h and C in an index by default, all six of an
    LSTM's over a trace; None when that is the best gate alone). Logistic for a 0/1 feature (metric "accuracy";
    "balanced_accuracy" beside it), ridge otherwise (metric "r2"); "fit_score" is each probe's score on its own
    fit steps. ``starts``: the documents' first steps (N+1,); None: an Index's own, or one document for a Trace."""
    S = _steps(source)
    y = np.asarray(y, np.float64)
    if not ranking:
        raise InputError("no unit varies here: nothing to fit a probe on")
    if starts is None:
        starts = np.array([0, S]) if isinstance(source, Trace) else np.asarray(source.doc_starts)
    train, test, how = split(np.asarray(starts), S)
    tp, sampled = _positions(train, MAX_FIT)
    sp, sampled_test = _positions(test, MAX_SCORE)
    yf, yt = y[tp], y[sp]
    binary = _binary(y)
    if binary and len(np.unique(yf)) < 2:
        raise InputError("the feature takes one value on every training step: a logistic probe needs both 0 and 1")
    groups = np.searchsorted(np.array([a for a, _ in train]), tp, "right") - 1  # (n,) each fit step's document
    pairs = list(dict.fromkeys((e["layer"], e["gate"]) for e in ranking))
    read = {(k, g): _read_both(source, k, g, tp, sp) for k, g in pairs}
    chosen = fit_ranking({p: X for p, (X, _) in read.items()}, yf)
    if not chosen:
        raise InputError("no unit varies over the fit steps: nothing to fit a probe on")
    k, g = chosen[0]["layer"], chosen[0]["gate"]
    X, Xt = read[(k, g)]
    others = [o for o in _gates_of(source, k, None) if o != g]
    order = [e["unit"] for e in chosen if e["layer"] == k and e["gate"] == g]
    sets = {"top1": order[:1], "top8": order[:TOP], "all": list(range(X.shape[1]))}
    scores = {name: _score(binary, X[:, u], yf, Xt[:, u], yt, groups) for name, u in sets.items()}
    if others:  # the layer: the best gate's columns, then each other recorded gate's
        more = [read[(k, o)] if (k, o) in read else _read_both(source, k, o, tp, sp) for o in others]
        XL = np.hstack([X, *(a for a, _ in more)])  # (n, W * gates)
        XLt = np.hstack([Xt, *(b for _, b in more)])  # (m, W * gates)
        scores["layer_all"] = _score(binary, XL, yf, XLt, yt, groups)
    key = "accuracy" if binary else "r2"
    out: dict[str, Any] = {
        "layer": k,
        "gate": g,
        "metric": key,
        "model": "logistic" if binary else "ridge",
        "layer_all": None,
        **{name: s[key] for name, s in scores.items()},
        "units": {
            "top1": sets["top1"],
            "top8": sets["top8"],
            "all": X.shape[1],
            "layer_all": X.shape[1] * (1 + len(others)),
        },
        "layer_gates": [g, *others],
        "chosen_on": "fit",
        "penalty": {"layer_all": None} | {name: s["penalty"] for name, s in scores.items()},
        "penalty_how": scores["all"]["penalty_how"],
        "fit_score": {"layer_all": None} | {name: s["fit"] for name, s in scores.items()},
        "split": how,
        "train_docs": len(train) if how == "documents" else 0,
        "test_docs": len(test) if how == "documents" else 0,
        "train_steps": len(tp),
        "test_steps": len(sp),
        "sampled": None,
    }
    if binary:
        out["balanced_accuracy"] = {"layer_all": None} | {name: s["balanced"] for name, s in scores.items()}
    if sampled or sampled_test:
        out["sampled"] = (
            f"fit on {len(tp):,} and scored on {len(sp):,} steps chosen deterministically (smallest mix(position)) "
            f"of {sum(b - a for a, b in train):,} and {sum(b - a for a, b in test):,}"
        )
    return out


# ---------------------------------------------------------------------------------------------------
# the whole probe, as the page asks for it
# ---------------------------------------------------------------------------------------------------
def curve(source: Any, y: np.ndarray, best: dict[str, Any]) -> dict[str, Any]:
    """The best unit's values beside the feature's: the whole trace, or for an index the best unit's top
    context (``CURVE_BEFORE`` steps before its peak, half as many after, within its document)."""
    k, u, g = best["layer"], best["unit"], best["gate"]
    if isinstance(source, Trace):
        a, b = 0, len(source)
        unit = np.asarray(source.layers[k][g][:, u], np.float64)
        tokens = source.display if source.display is not None else source.tokens
    else:
        top = int(source.stats(k, g).top_pos[u][0])
        ctx = source.context(max(top, 0), k, g, u, before=CURVE_BEFORE, after=CURVE_BEFORE // 2)
        a, b = ctx["start"], ctx["stop"]
        unit, tokens = np.asarray(ctx["values"], np.float64), ctx["tokens"]
    return {
        "start": a,
        "tokens": list(tokens),
        "feature": np.round(np.asarray(y[a:b], np.float64), DIGITS).tolist(),  # whole arrays: 100,000 steps in ms
        "unit": np.round(unit, DIGITS).tolist(),
    }


def iter_probe(
    source: Any, y: Any, gate: str | None = None, fit: bool = False, starts: Any = None
) -> Iterator[dict[str, Any]]:
    """The probe a page asks for, as a generator: {"progress": {"done", "total", "stage"}} items while it reads,
    then {"result": {"ranking": the best ``RANKED``, "units": how many were ranked, "best": the top unit and
    its ``curve``, "linear": ``linear``'s (with ``fit``) or None}}."""
    y = _check_feature(y, _steps(source))
    ranking: list[dict[str, Any]] = []
    for item in iter_rank(source, y, gate):
        if isinstance(item, list):
            ranking = item
        else:
            yield {"progress": {"stage": "correlating", "done": item[0], "total": item[1]}}
    if not ranking:
        raise InputError("every unit is constant here: no unit can be correlated with the feature")
    best = ranking[0] | {"curve": curve(source, y, ranking[0])}
    lin = None
    if fit:
        yield {"progress": {"stage": "fitting", "done": 0, "total": 1}}
        lin = linear(source, y, ranking, starts)
    yield {"result": {"ranking": ranking[:RANKED], "units": len(ranking), "best": best, "linear": lin}}


def probe(source: Any, y: Any, gate: str | None = None, fit: bool = False, progress: Progress | None = None) -> dict:
    """``iter_probe``'s result (``progress(done, total)`` called as it reads)."""
    for item in iter_probe(source, y, gate, fit):
        if "result" in item:
            return item["result"]
        if progress is not None:
            progress(item["progress"]["done"], item["progress"]["total"])
    raise AssertionError("iter_probe ended without a result")
