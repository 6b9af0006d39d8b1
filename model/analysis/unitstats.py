"""Exact per-unit statistics of float16 activations, computed in pieces and merged in any grouping.

A float16 has 65,536 bit patterns, so a unit's values are summed up exactly by how often each pattern occurs:
its histogram, mean, standard deviation, extremes, saturated fractions and exact deciles all follow from those
counts, and counts from separate pieces (a part of a corpus, a chunk of a part) add up to the whole's, in any
order. Positions are kept only where order matters:

    key(v)       the pattern mapped to an order-preserving uint16 (-0 counted as +0): v < w  <=>  key(v) < key(w)
    counts       (W, 65536) int64, counts[u, key] = steps where unit u took that value
    top, bottom  the K highest / lowest (value, position) of each unit, ties -> the lower position first; the
                 K best of a union are among the K best of its pieces, so pieces merge exactly
    deciles      np.quantile(values, q, method="inverted_cdf") for q = 0, 0.1, ..., 1, read off the counts
    bands        per unit and band j (deciles[j] <= v < deciles[j+1], the last one closed), the s positions with
                 the smallest mix(pos) = (pos * 0x9E3779B97F4A7C15) mod 2**64: a fixed pseudo-random sample
                 that a union's pieces also merge exactly; sorted by position at the end
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Histogram bins, top/bottom-k size, and positions sampled per decile band.
BINS, TOP_K, BAND_SAMPLES = 64, 256, 16
#: The 0, 10, ..., 100th percentiles.
QUANTILES = np.linspace(0.0, 1.0, 11)
#: Gates whose values lie in [0, 1], and those in [-1, 1]; any other gate (c, a projected h) is unbounded.
SIGMOID_GATES = ("f", "i", "o", "z", "r")
TANH_GATES = ("h", "c_tilde", "h_tilde", "m")
#: Fibonacci hashing's multiplier: mix(pos) orders positions pseudo-randomly but reproducibly.
MIX = np.uint64(0x9E3779B97F4A7C15)


def gate_range(gate: str, bounded_h: bool = True) -> tuple[float, float] | None:
    """The range of a gate's values: (0, 1) sigmoid, (-1, 1) tanh-valued, None when unbounded (c, projected h)."""
    if gate in SIGMOID_GATES:
        return (0.0, 1.0)
    if gate in TANH_GATES and (bounded_h or gate != "h"):
        return (-1.0, 1.0)
    return None


def saturation_bounds(gate: str, bounded_h: bool = True) -> tuple[float, float] | None:
    """(lo, hi) of the saturated fractions: 0.1/0.9 for sigmoid gates, -0.9/0.9 for tanh-valued, None for c."""
    r = gate_range(gate, bounded_h)
    if r is None:
        return None
    return (0.1, 0.9) if r[0] == 0.0 else (-0.9, 0.9)


def keys(rows: np.ndarray) -> np.ndarray:
    """Order-preserving uint16 keys of float16 values (n, W): negative patterns reversed below the positive ones."""
    bits = np.ascontiguousarray(rows, np.float16).view(np.uint16)
    bits = np.where(bits == 0x8000, np.uint16(0), bits)  # -0 is +0
    neg = (bits & 0x8000) != 0
    return np.where(neg, ~bits, bits | 0x8000).astype(np.uint16)


def _values_of_keys() -> np.ndarray:
    """The float64 value of every key 0..65535 (the inverse of ``keys``)."""
    k = np.arange(65536, dtype=np.uint32)
    bits = np.where(k & 0x8000, k & 0x7FFF, ~k & 0xFFFF).astype(np.uint16)
    return bits.view(np.float16).astype(np.float64)


VALUES = _values_of_keys()  # (65536,) value of each key, ascending (NaN patterns at the two ends)


def mix(pos: np.ndarray) -> np.ndarray:
    """(pos * 0x9E3779B97F4A7C15) mod 2**64 of int64 positions."""
    return pos.astype(np.uint64) * MIX


@dataclass
class Partial:
    """What a piece of steps contributes: counts of every key and each unit's K best candidates both ways."""

    counts: np.ndarray  # (W, 65536) int64
    top_pos: np.ndarray  # (W, k) int64 best first, k <= K (-1 pads)
    top_key: np.ndarray  # (W, k) int64 the keys of top_pos (-1 pads)
    bottom_pos: np.ndarray  # (W, k) int64
    bottom_key: np.ndarray  # (W, k) int64


def partial(rows: np.ndarray, offset: int, K: int = TOP_K) -> Partial:
    """The Partial of float16 rows (n, W) standing at global steps offset .. offset+n-1."""
    n, W = rows.shape
    k = keys(rows)  # (n, W) uint16
    flat = k.astype(np.int64) + (np.arange(W, dtype=np.int64) << 16)  # (n, W) unit-major bins
    counts = np.bincount(flat.ravel(), minlength=W << 16).reshape(W, 65536)
    m = min(K, n)
    top_pos = np.empty((W, m), np.int64)
    bottom_pos = np.empty((W, m), np.int64)
    for u in range(W):
        col = k[:, u]
        bottom_pos[u] = np.argsort(col, kind="stable")[:m]  # radix sort: ties keep the lower position first
        top_pos[u] = np.argsort(np.uint16(0xFFFF) - col, kind="stable")[:m]
    units = np.arange(W)[:, None]
    top_key = k[top_pos, units].astype(np.int64)
    bottom_key = k[bottom_pos, units].astype(np.int64)
    return Partial(counts, top_pos + offset, top_key, bottom_pos + offset, bottom_key)


def _best(pos: np.ndarray, key: np.ndarray, K: int, highest: bool) -> tuple[np.ndarray, np.ndarray]:
    """Per row, the K best (key, pos) among candidates (-1 pads ignored): highest or lowest key, lower pos first."""
    W = pos.shape[0]
    out_pos = np.full((W, K), -1, np.int64)
    out_key = np.full((W, K), -1, np.int64)
    for u in range(W):
        ok = pos[u] >= 0
        p, kk = pos[u][ok], key[u][ok]
        order = np.lexsort((p, -kk if highest else kk))[:K]
        out_pos[u, : len(order)] = p[order]
        out_key[u, : len(order)] = kk[order]
    return out_pos, out_key


def merge(a: Partial | None, b: Partial, K: int = TOP_K) -> Partial:
    """The Partial of two disjoint pieces together (``a`` None: ``b`` alone, padded to K)."""
    if a is None:
        top = _best(b.top_pos, b.top_key, K, True)
        bottom = _best(b.bottom_pos, b.bottom_key, K, False)
        return Partial(b.counts.copy(), top[0], top[1], bottom[0], bottom[1])
    a.counts += b.counts
    top = _best(np.hstack([a.top_pos, b.top_pos]), np.hstack([a.top_key, b.top_key]), K, True)
    bottom = _best(np.hstack([a.bottom_pos, b.bottom_pos]), np.hstack([a.bottom_key, b.bottom_key]), K, False)
    return Partial(a.counts, top[0], top[1], bottom[0], bottom[1])


def summarize(p: Partial, gate: str, bounded_h: bool = True, bins: int = BINS) -> dict[str, np.ndarray]:
    """Every statistic but the bands from merged counts: mean, std, min, max, low, high, edges, hist, deciles,
    top/bottom positions and values. float64 sums over the distinct values (exact counts, one fixed order)."""
    W = p.counts.shape[0]
    rng = gate_range(gate, bounded_h)
    sat = saturation_bounds(gate, bounded_h)
    out = {name: np.full(W, np.nan) for name in ("mean", "std", "min", "max", "low", "high")} | {
        "edges": np.zeros((W, bins + 1)),
        "hist": np.zeros((W, bins), np.int64),
        "deciles": np.zeros((W, 11)),
    }
    for u in range(W):
        nz = np.flatnonzero(p.counts[u])
        c, v = p.counts[u, nz], VALUES[nz]  # distinct values ascending, and their counts
        n = int(c.sum())
        if n == 0:
            continue
        mean = float((c * v).sum() / n)
        out["mean"][u], out["min"][u], out["max"][u] = mean, v[0], v[-1]
        out["std"][u] = np.sqrt(float((c * (v - mean) ** 2).sum() / n))
        if sat is not None:
            out["low"][u] = c[v < sat[0]].sum() / n
            out["high"][u] = c[v > sat[1]].sum() / n
        if rng is not None:
            lo, hi = rng
        elif v[0] == v[-1]:
            lo, hi = v[0] - 0.5, v[0] + 0.5  # as np.histogram does for a constant
        else:
            lo, hi = v[0], v[-1]
        edges = np.linspace(lo, hi, bins + 1)
        out["edges"][u] = edges
        out["hist"][u] = np.rint(np.histogram(v, bins=edges, weights=c)[0]).astype(np.int64)
        out["deciles"][u] = v[np.searchsorted(np.cumsum(c), quantile_ranks(n), side="right")]
    out["top_pos"], out["top_val"] = p.top_pos, _vals(p.top_key)
    out["bottom_pos"], out["bottom_val"] = p.bottom_pos, _vals(p.bottom_key)
    return out


def quantile_ranks(n: int) -> np.ndarray:
    """The 0-based sorted index np.quantile(method="inverted_cdf") takes for each of QUANTILES over n values."""
    virtual = n * QUANTILES - 1  # numpy's virtual index for the inverted CDF
    below = np.floor(virtual)
    return np.clip(below + (virtual - below > 0), 0, n - 1).astype(np.int64)


def _vals(k: np.ndarray) -> np.ndarray:
    """float32 values of keys, NaN where -1 pads."""
    out = VALUES[np.maximum(k, 0)].astype(np.float32)
    out[k < 0] = np.nan
    return out


def bands(rows: np.ndarray, offset: int, deciles: np.ndarray, s: int = BAND_SAMPLES) -> np.ndarray:
    """Per unit and band, the s positions of rows (n, W) with the smallest mix, in mix order: (W, 10, s), -1 pads.
    Band j holds deciles[j] <= v < deciles[j+1], the last band closed."""
    n, W = rows.shape
    pos = np.arange(offset, offset + n, dtype=np.int64)
    order = np.argsort(mix(pos), kind="stable")  # the piece's steps by mix, smallest first
    out = np.full((W, 10, s), -1, np.int64)
    for u in range(W):
        v = rows[order, u].astype(np.float64)  # (n,) in mix order
        b = np.searchsorted(deciles[u, 1:10], v, side="right")  # band: how many of deciles[1..9] are <= v
        by_band = np.argsort(b, kind="stable")  # grouped by band, each group in mix order
        starts = np.searchsorted(b[by_band], np.arange(11))
        for j in range(10):
            take = by_band[starts[j] : min(starts[j + 1], starts[j] + s)]
            out[u, j, : len(take)] = pos[order[take]]
    return out


def _mixes(pos: np.ndarray) -> np.ndarray:
    """mix of each position, the largest uint64 for -1 pads (so they sort last)."""
    m = mix(np.maximum(pos, 0))
    m[pos < 0] = np.iinfo(np.uint64).max
    return m


def merge_bands(a: np.ndarray | None, b: np.ndarray, s: int = BAND_SAMPLES) -> np.ndarray:
    """Two pieces' band samples (W, 10, s) together: the s smallest mixes of the union, in mix order."""
    if a is None:
        return b
    both = np.concatenate([a, b], axis=2)  # (W, 10, 2s)
    m = _mixes(both)
    order = np.argsort(m, axis=2, kind="stable")[:, :, :s]
    return np.take_along_axis(both, order, axis=2)


def sorted_bands(pos: np.ndarray) -> np.ndarray:
    """Each band's sample sorted by position, -1 pads last."""
    big = np.where(pos < 0, np.iinfo(np.int64).max, pos)
    out = np.sort(big, axis=2)
    out[out == np.iinfo(np.int64).max] = -1
    return out
