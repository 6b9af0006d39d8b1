"""Pearson correlation of units with a feature, and the unit that tracks it best.

Every number returned is a plain Python float or int (or None), ready for a model card.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import InputError
from .sums import moments

#: Digits kept in the correlations and ratios returned.
DIGITS = 4


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
    """Pearson r of each column of X (T, H) with y (T,), NaN for constant columns; y is not constant.
    One pass over a float32 X, summed in float64 (sums.py's ``moments``), no centred copy of X."""
    yc = np.asarray(y, np.float64) - np.mean(y)  # (T,)
    _, xx, xy = moments(X, yc)  # (H,) each; Σ ỹ x = Σ ỹ (x − x̄) as Σ ỹ = 0
    return _r_of(xy, xx, float(yc @ yc), xx == 0)  # constant: exactly where Σ (x − x̄)² is 0 (sums.py)


def _r_of(xy: np.ndarray, xx: np.ndarray, yy: float, constant: np.ndarray) -> np.ndarray:
    """Pearson r from centred sums (H,) Σ x̃ỹ, (H,) Σ x̃², Σ ỹ² (any common scale), NaN where ``constant``
    (H,) is True: the one place r is formed, for whole traces (``_unit_r``) and for an index streamed in blocks."""
    den = np.sqrt(xx * yy)  # (H,)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = xy / den  # (H,)
    r = np.where(constant, np.nan, r)
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
