"""The sums a correlation needs, each in one compiled pass over the rows (numba), with a NumPy path beside it.

Pearson r of a unit x with a feature y (correlate.py) takes, per unit, Σ ỹ x (ỹ = y − ȳ, so Σ ỹ x = Σ ỹ (x − x̄))
and Σ (x − x̄)². NumPy forms them in ~6 passes over a (T, W) gate and writes the centred copy X − x̄ to memory;
the index's float16 rows have no NumPy product at all (X.astype(float32) converts at ~260 M values/s and writes 4
bytes a value before BLAS reads them back: most of a 10 M-step probe's time). Here:

weighted_sum(X, y)   Σ_t y_t X[t] (W,) for the stored float16 rows of an index (probes.py, whose Σ (x − x̄)²
                     are the index's stored std): each value read once and widened through a 65,536-entry
                     table (256 kB, it stays in the core's cache), the products summed in float32 over ``ROWS``
                     rows and those sums in float64 (the rounding of float32 BLAS over a block, not over the
                     whole store). ~1.2 G values/s on one core; without numba, ``ROWS`` rows at a time are
                     widened into one cache-sized buffer and summed by BLAS.
moments(X, y)        per column of a float32/float64 trace gate: the mean, M2 = Σ (x − x̄)² and Σ y x in one
                     pass: each block of ``ROWS`` rows is summed, then centred on its own mean while
                     it is still in cache, and the blocks are merged in float64 (Chan, Golub & LeVeque 1979:
                     M2 = M2_a + M2_b + δ² n_a n_b / n, δ = x̄_b − x̄_a), so a unit far from 0 with a tiny
                     spread keeps its digits, and M2 is exactly 0 for a constant column and only for one (a
                     block of 512 equal float32 values has its mean exactly: their float64 sum is exact; a
                     float64 column is tested for it by its min and max),
                     the test for "no r" (a running min and max took twice the sums' time). A gate that is a
                     view of a wider array is read in place.
shared, group_moments  a trace's f, i, c̃ and o are column ranges of one (T, 4H) array: ``moments`` over that
                     array once costs about what one view's pass costs (every fourth stretch of memory, 2-3x
                     slower a value than a contiguous gate), so they are summed together.
"""

from __future__ import annotations

from typing import Any

import numpy as np

#: Rows summed as a block (in float32 for weighted_sum; centred in cache for moments).
ROWS = 512
#: float32 of every float16 bit pattern.
TABLE = np.arange(1 << 16, dtype=np.uint32).astype(np.uint16).view(np.float16).astype(np.float32)

_kernels: dict[str, Any] | None = None  # compiled at the first call (numba is imported then, not with model/)


def _compiled() -> dict[str, Any]:
    global _kernels
    if _kernels is None:
        try:
            from numba import njit
        except ImportError:  # pragma: no cover
            _kernels = {}
            return _kernels
        opts: dict[str, Any] = {"nogil": True, "error_model": "numpy", "cache": True}

        @njit(fastmath={"contract"}, **opts)
        def weighted(bits: np.ndarray, y: np.ndarray, table: np.ndarray, rows: int) -> np.ndarray:  # pragma: no cover
            T, W = bits.shape  # (T, W) uint16: the float16 values' bits
            out = np.zeros(W, np.float64)
            acc = np.zeros(W, np.float32)
            for t0 in range(0, T, rows):
                acc[:] = 0
                for t in range(t0, min(t0 + rows, T)):
                    yt = y[t]
                    for w in range(W):
                        acc[w] += yt * table[bits[t, w]]  # y_t x_tw, x widened through the table
                for w in range(W):
                    out[w] += acc[w]
            return out

        @njit(**opts)
        def moments(  # pragma: no cover
            flat: np.ndarray, stride: int, T: int, W: int, y: np.ndarray, rows: int
        ) -> tuple[np.ndarray, ...]:
            # X[t, w] = flat[t * stride + w]: a gate that is a view of a wider trace array is read in place
            mean, m2, sy = np.zeros(W), np.zeros(W), np.zeros(W)  # (W,) over the blocks merged so far
            bs, bsy, bm2 = np.zeros(W), np.zeros(W), np.zeros(W)  # (W,) the block's
            n = 0
            for t0 in range(0, T, rows):
                t1 = min(t0 + rows, T)
                nb = t1 - t0
                bs[:] = 0
                bsy[:] = 0
                bm2[:] = 0
                for t in range(t0, t1):
                    yt = y[t]
                    at = t * stride
                    for w in range(W):
                        x = np.float64(flat[at + w])
                        bs[w] += x
                        bsy[w] += yt * x
                for w in range(W):
                    bs[w] /= nb  # the block's mean
                for t in range(t0, t1):  # the block again, from cache: its own M2
                    at = t * stride
                    for w in range(W):
                        d = np.float64(flat[at + w]) - bs[w]
                        bm2[w] += d * d
                for w in range(W):  # merged (Chan et al.)
                    delta = bs[w] - mean[w]
                    mean[w] += delta * nb / (n + nb)
                    m2[w] += bm2[w] + delta * delta * n * nb / (n + nb)
                    sy[w] += bsy[w]
                n += nb
            return mean, m2, sy

        _kernels = {"weighted": weighted, "moments": moments}
    return _kernels


def weighted_sum(X: np.ndarray, y: np.ndarray) -> np.ndarray:
    """(W,) float64 Σ_t y[t] X[t, :] for X (T, W) float16, float32 or float64 and y (T,) (taken as float32 for a
    float16 or float32 X)."""
    X = np.asarray(X)
    if X.dtype != np.float16:
        yy = np.asarray(y, X.dtype if X.dtype in (np.float32, np.float64) else np.float64)
        return np.asarray(yy @ X, np.float64)
    y32 = np.ascontiguousarray(y, np.float32)
    kernel = _compiled().get("weighted")
    if kernel is not None:
        return kernel(np.ascontiguousarray(X).view(np.uint16), y32, TABLE, ROWS)  # type: ignore[no-any-return]
    out = np.zeros(X.shape[1], np.float64)
    buf = np.empty((min(ROWS, len(X)), X.shape[1]), np.float32)
    for t0 in range(0, len(X), ROWS):
        n = min(ROWS, len(X) - t0)
        np.copyto(buf[:n], X[t0 : t0 + n])
        out += y32[t0 : t0 + n] @ buf[:n]
    return out


def moments(X: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per column of X (T, W), T >= 1: (mean, Σ (x − x̄)², Σ y x), each (W,) float64; y (T,). Σ (x − x̄)² is 0
    exactly where the column is constant, and only there."""
    X = np.asarray(X)
    X = X if X.dtype in (np.float32, np.float64) else X.astype(np.float64)
    y64 = np.ascontiguousarray(y, np.float64)
    kernel = _compiled().get("moments")
    if kernel is not None and len(X):
        if X.strides[1] != X.itemsize or X.strides[0] % X.itemsize or X.strides[0] < X.shape[1] * X.itemsize:
            X = np.ascontiguousarray(X)
        T, W = X.shape
        stride = X.strides[0] // X.itemsize  # a gate's rows may sit inside a wider (T, 4H) array: read in place
        flat = np.lib.stride_tricks.as_strided(X, shape=((T - 1) * stride + W,), strides=(X.itemsize,))
        mean, m2, sy = kernel(flat, stride, T, W, y64, ROWS)
        if X.dtype == np.float64:  # a sum of equal float64 values may round: their mean is not theirs exactly
            m2[X.max(axis=0) == X.min(axis=0)] = 0.0
        return mean, m2, sy
    mean = X.mean(axis=0, dtype=np.float64)  # (W,)
    Xc = X - mean.astype(X.dtype)  # (T, W)
    m2 = np.einsum("th,th->h", Xc, Xc, dtype=np.float64)
    sy = np.asarray(y64.astype(X.dtype) @ X, np.float64)
    m2[X.max(axis=0) == X.min(axis=0)] = 0.0  # exact, as the compiled pass's
    return mean, m2, sy


Moments = tuple[np.ndarray, np.ndarray, np.ndarray]


def shared(gates: list[np.ndarray]) -> list[list[int]]:
    """The gates to sum together: those that are column ranges of one wider C-contiguous array (a trace's f, i, c̃
    and o are views of its (T, 4H) pre-activations: one pass over that array reads each of their rows once, where
    four passes over the views read every fourth stretch of it at 2-3x the cost a value) grouped, the others
    alone. Groups of gate indices, in order."""
    groups: dict[int, list[int]] = {}
    alone: list[list[int]] = []
    for i, X in enumerate(gates):
        base = _base(X)
        if base is None:
            alone.append([i])
        else:
            groups.setdefault(id(base), []).append(i)
    return sorted(alone + list(groups.values()))


def group_moments(gates: list[np.ndarray], group: list[int], y: np.ndarray) -> list[Moments]:
    """``moments`` of each gate of a ``shared`` group (one pass over their common array when there are several)."""
    if len(group) == 1:
        return [moments(gates[group[0]], y)]
    base = _base(gates[group[0]])
    assert base is not None
    m = moments(base, y)  # (K,) each, over every column of the common array
    out = []
    for i in group:
        X = gates[i]
        a = _offset(X, base)
        out.append(tuple(v[a : a + X.shape[1]] for v in m))
    return out  # type: ignore[return-value]


def _base(X: np.ndarray) -> np.ndarray | None:
    """The C-contiguous 2-D array whose columns ``X`` is a range of (same rows, same dtype), or None."""
    base = X.base
    if (
        X.flags.c_contiguous
        or X.ndim != 2
        or not isinstance(base, np.ndarray)
        or base.ndim != 2
        or not base.flags.c_contiguous
        or base.dtype != X.dtype
        or base.shape[0] != X.shape[0]
        or X.strides != base.strides
    ):
        return None
    a = _offset(X, base)
    return base if 0 <= a and a + X.shape[1] <= base.shape[1] else None


def _offset(X: np.ndarray, base: np.ndarray) -> int:
    """X's first column within ``base`` (same row stride)."""
    diff = X.__array_interface__["data"][0] - base.__array_interface__["data"][0]
    return int(diff // X.itemsize) if diff % X.itemsize == 0 else -1
