"""Exact per-unit statistics of float16 activations, computed a piece at a time and merged in piece order.

A float16 has 65,536 bit patterns; ``keys`` maps them to uint16 in value order (-0 counted as +0), so exact ranks
need only counting. Three passes over the stored values, each returning a few kB a unit whatever the piece:

    1 (partial)  per unit: counts in 256 coarse bins (a key's high byte), the sum, and the K highest / lowest
                 (value, position), ties -> the lower position first (the K best of a union are among the K best
                 of its pieces, so pieces merge exactly). Then ``plan``: mean, min, max, histogram edges, and for
                 each decile the coarse bin holding its rank.
    2 (second)   per unit: the 256 fine counts inside each decile's coarse bin (-> exact deciles, as
                 np.quantile(values, q, method="inverted_cdf") for q = 0, 0.1, ..., 1), the histogram
                 (np.histogram semantics), the saturated counts, the squared deviations from the mean.
    3 (bands)    per unit and band j (deciles[j] <= v < deciles[j+1], the last one closed), the s positions with
                 the smallest mix(pos) = (pos * 0x9E3779B97F4A7C15) mod 2**64: a fixed pseudo-random sample that
                 pieces also merge exactly; sorted by position at the end.
Sums (mean, std) are float64, added in piece order: the same pieces give the same bits.

Each pass runs compiled (statkernels.py, imported at the first pass) where numba imports, else in NumPy here;
the two agree bit for bit but for the float64 sums' last bits (tests/model/test_index.py checks both).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import ModuleType

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

#: Whether the passes run compiled where numba imports (False: the NumPy passes, as tests and benches compare).
COMPILED = True
_kernels: ModuleType | None = None
_tried = False


def _compiled() -> ModuleType | None:
    """statkernels, or None when it is switched off or numba cannot be imported."""
    global _kernels, _tried
    if not COMPILED:
        return None
    if not _tried:
        _tried = True
        try:
            _kernels = importlib.import_module(".statkernels", __package__)
        except ImportError:  # pragma: no cover
            _kernels = None
    return _kernels


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
    bits = np.array(rows, np.float16).view(np.uint16)  # a copy
    bits[bits == 0x8000] = 0  # -0 is +0
    flip = (bits >> 15) * np.uint16(0x7FFF) | np.uint16(0x8000)  # 0x8000 for a positive pattern, 0xFFFF negative
    bits ^= flip
    return bits


def _bits(rows: np.ndarray) -> np.ndarray:
    """The bit patterns of float16 rows (n, W) as uint16, C-contiguous (a view when they already are)."""
    return np.ascontiguousarray(rows, np.float16).view(np.uint16)


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
    """Pass 1 over a piece of steps: per unit, how many steps fall in each of the 256 coarse bins (a key's high
    byte), the sum of the values, and the K best candidates both ways. A few kB a unit, whatever the piece."""

    coarse: np.ndarray  # (W, 256) int64
    total: np.ndarray  # (W,) float64, summed in piece order
    top_pos: np.ndarray  # (W, k) int64 best first, k <= K (-1 pads)
    top_key: np.ndarray  # (W, k) int64 the keys of top_pos (-1 pads)
    bottom_pos: np.ndarray  # (W, k) int64
    bottom_key: np.ndarray  # (W, k) int64


def partial(rows: np.ndarray, offset: int, K: int = TOP_K) -> Partial:
    """Pass 1 of float16 rows (n, W) standing at global steps offset .. offset+n-1."""
    n, W = rows.shape
    K_ = _compiled()
    if K_ is not None:
        coarse, total, tp, tk, bp, bk = K_.partial_kernel(_bits(rows), K, VALUES)
        return Partial(coarse, total, tp + offset, tk, bp + offset, bk)
    kT = np.ascontiguousarray(keys(rows).T)  # (W, n) uint16: a unit's steps contiguous
    m = min(K, n)
    coarse = np.empty((W, 256), np.int64)
    total = np.empty(W)
    top_pos = np.empty((W, m), np.int64)
    bottom_pos = np.empty((W, m), np.int64)
    for u in range(W):
        col = kT[u]
        coarse[u] = np.bincount(col >> 8, minlength=256)
        total[u] = VALUES[col].sum()
        top_pos[u] = _extreme(col, int(np.partition(col, n - m)[n - m]), m, True)
        bottom_pos[u] = _extreme(col, int(np.partition(col, m - 1)[m - 1]), m, False)
    units = np.arange(W)[:, None]
    top_key = kT[units, top_pos].astype(np.int64)
    bottom_key = kT[units, bottom_pos].astype(np.int64)
    return Partial(coarse, total, top_pos + offset, top_key, bottom_pos + offset, bottom_key)


def _extreme(col: np.ndarray, t: int, m: int, highest: bool) -> np.ndarray:
    """The m positions of the highest (lowest) keys of col, whose m-th key is t; ties -> lower position first."""
    beyond = np.flatnonzero(col > t if highest else col < t)  # fewer than m
    ties = np.flatnonzero(col == t)[: m - len(beyond)]
    pos = np.concatenate([beyond, ties])
    key = col[pos].astype(np.int64)
    return pos[np.lexsort((pos, -key if highest else key))]


def _best(pos: np.ndarray, key: np.ndarray, K: int, highest: bool) -> tuple[np.ndarray, np.ndarray]:
    """Per row, the K best (key, pos) among candidates (-1 pads ignored): highest or lowest key, lower pos first.
    One sort of every row at once, on (key, pos) packed into an int64: the key (reversed for highest) above
    POS_BITS bits of position, pads at the largest value (last)."""
    W = pos.shape[0]
    assert pos.max(initial=0) < 1 << POS_BITS
    k = (0xFFFF - key) if highest else key
    packed = np.where(pos >= 0, (k.astype(np.int64) << POS_BITS) | pos, np.iinfo(np.int64).max)
    packed = np.sort(packed, axis=1)[:, :K]  # (W, <=K)
    out_pos = np.full((W, K), -1, np.int64)
    out_key = np.full((W, K), -1, np.int64)
    ok = packed != np.iinfo(np.int64).max
    m = packed.shape[1]
    out_pos[:, :m] = np.where(ok, packed & ((1 << POS_BITS) - 1), -1)
    kk = packed >> POS_BITS
    out_key[:, :m] = np.where(ok, (0xFFFF - kk) if highest else kk, -1)
    return out_pos, out_key


#: Bits of a position in _best's packed sort key (the key takes the 16 above them): 2^47 steps.
POS_BITS = 47


def merge(a: Partial | None, b: Partial, K: int = TOP_K) -> Partial:
    """Pass 1 of two disjoint pieces together, ``a``'s steps first (``a`` None: ``b`` alone, padded to K)."""
    if a is None:
        top = _best(b.top_pos, b.top_key, K, True)
        bottom = _best(b.bottom_pos, b.bottom_key, K, False)
        return Partial(b.coarse, b.total, top[0], top[1], bottom[0], bottom[1])
    top = _best(np.hstack([a.top_pos, b.top_pos]), np.hstack([a.top_key, b.top_key]), K, True)
    bottom = _best(np.hstack([a.bottom_pos, b.bottom_pos]), np.hstack([a.bottom_key, b.bottom_key]), K, False)
    return Partial(a.coarse + b.coarse, a.total + b.total, top[0], top[1], bottom[0], bottom[1])


@dataclass
class Plan:
    """What pass 2 needs from pass 1: each unit's mean, histogram edges, and for each decile the coarse bin it
    falls in and its rank inside that bin."""

    mean: np.ndarray  # (W,)
    edges: np.ndarray  # (W, bins+1)
    sat: tuple[float, float] | None  # (lo, hi) of the saturated fractions, None for unbounded gates
    bins_q: np.ndarray  # (W, 11) the coarse bin of each decile
    rank_q: np.ndarray  # (W, 11) its rank among the steps of that bin


def plan(p: Partial, gate: str, bounded_h: bool = True, bins: int = BINS) -> Plan:
    """Pass 1's result read: the mean, the edges ([0,1], [-1,1], or [min,max] of an unbounded gate; a constant
    unit's [v-0.5, v+0.5] as np.histogram takes), and where each decile lies."""
    W = p.coarse.shape[0]
    n = p.coarse.sum(1)  # (W,) the same for every unit: the steps
    rng = gate_range(gate, bounded_h)
    edges = np.zeros((W, bins + 1))
    bins_q = np.zeros((W, 11), np.int64)
    rank_q = np.zeros((W, 11), np.int64)
    lo_v, hi_v = VALUES[np.maximum(p.bottom_key[:, 0], 0)], VALUES[np.maximum(p.top_key[:, 0], 0)]  # min, max
    for u in range(W):
        if rng is not None:
            lo, hi = rng
        elif lo_v[u] == hi_v[u]:
            lo, hi = lo_v[u] - 0.5, lo_v[u] + 0.5
        else:
            lo, hi = lo_v[u], hi_v[u]
        edges[u] = np.linspace(lo, hi, bins + 1)
        cum = np.cumsum(p.coarse[u])
        r = quantile_ranks(int(n[u]))
        bins_q[u] = np.searchsorted(cum, r, side="right")  # the first bin whose cumulative count passes r
        rank_q[u] = r - (cum[bins_q[u]] - p.coarse[u, bins_q[u]])
    return Plan(p.total / np.maximum(n, 1), edges, saturation_bounds(gate, bounded_h), bins_q, rank_q)


@dataclass
class Second:
    """Pass 2 over a piece: the fine counts inside each decile's coarse bin, the histogram, the saturated counts
    and the sum of squared deviations from the mean."""

    fine: np.ndarray  # (W, 11, 256) int64
    hist: np.ndarray  # (W, bins) int64
    low: np.ndarray  # (W,) int64
    high: np.ndarray  # (W,) int64
    sq: np.ndarray  # (W,) float64


def second(rows: np.ndarray, pl: Plan) -> Second:
    """Pass 2 of float16 rows (n, W)."""
    n, W = rows.shape
    bins = pl.edges.shape[1] - 1
    K_ = _compiled()
    if K_ is not None:
        fine, hist, low, high, sq = K_.second_kernel(_bits(rows), pl.mean, pl.edges, _key_table(pl), pl.bins_q, VALUES)
        return Second(fine, hist, low, high, sq)
    kT = np.ascontiguousarray(keys(rows).T)
    zeros = np.zeros(W, np.int64)
    out = Second(np.zeros((W, 11, 256), np.int64), np.zeros((W, bins), np.int64), zeros, zeros.copy(), np.zeros(W))
    for u in range(W):
        col = kT[u]
        v = VALUES[col]  # (n,) float64
        wanted, slot_of_q = np.unique(pl.bins_q[u], return_inverse=True)
        slot = np.full(256, -1, np.int64)
        slot[wanted] = np.arange(len(wanted))
        s = slot[col >> 8]
        inside = s >= 0
        fine = np.bincount(s[inside] * 256 + (col[inside] & 0xFF), minlength=len(wanted) * 256).reshape(-1, 256)
        out.fine[u] = fine[slot_of_q]
        if u == 0 or not np.array_equal(pl.edges[u], pl.edges[u - 1]):
            table = _bin_of_key(pl.edges[u])  # shared by every unit of a bounded gate
        b = table[col]
        out.hist[u] = np.bincount(b[b >= 0], minlength=bins)
        if pl.sat is not None:
            out.low[u] = np.count_nonzero(v < pl.sat[0])
            out.high[u] = np.count_nonzero(v > pl.sat[1])
        out.sq[u] = ((v - pl.mean[u]) ** 2).sum()
    return out


def _key_table(pl: Plan) -> np.ndarray:
    """For the compiled pass 2, when every unit has the same edges: each key's bin (0xFFFF outside) | 1 << 16 if
    its value is saturated low | 1 << 17 high, (65536,) int32; else an empty array (the kernel bins each value)."""
    if not (pl.edges == pl.edges[:1]).all():
        return np.zeros(0, np.int32)
    got = _TABLES.get((pl.edges[0].tobytes(), pl.sat))
    if got is None:
        table = _bin_of_key(pl.edges[0]).astype(np.int32) & 0xFFFF
        if pl.sat is not None:
            table |= (VALUES < pl.sat[0]).astype(np.int32) << 16
            table |= (VALUES > pl.sat[1]).astype(np.int32) << 17
        got = _TABLES[(pl.edges[0].tobytes(), pl.sat)] = table
    return got


_TABLES: dict[tuple[bytes, tuple[float, float] | None], np.ndarray] = {}  # _key_table's, by edges and bounds


def _bin_of_key(e: np.ndarray) -> np.ndarray:
    """The histogram bin of every key's value for edges e (np.histogram's: [e_i, e_i+1), the last closed), -1
    outside (NaN patterns included)."""
    bins = len(e) - 1
    b = np.searchsorted(e, VALUES, side="right") - 1
    b[VALUES == e[-1]] = bins - 1
    b[(b < 0) | (b >= bins) | np.isnan(VALUES)] = -1
    return b.astype(np.int16)


def merge_second(a: Second | None, b: Second) -> Second:
    """Pass 2 of two disjoint pieces, ``a``'s first."""
    if a is None:
        return b
    return Second(a.fine + b.fine, a.hist + b.hist, a.low + b.low, a.high + b.high, a.sq + b.sq)


def finish(p: Partial, pl: Plan, sec: Second) -> dict[str, np.ndarray]:
    """Every statistic but the bands: mean, std, min, max, low, high, edges, hist, deciles, top/bottom-k."""
    W = p.coarse.shape[0]
    n = p.coarse.sum(1).astype(np.float64)
    deciles = np.zeros((W, 11))
    for u in range(W):
        for q in range(11):
            fine = np.searchsorted(np.cumsum(sec.fine[u, q]), pl.rank_q[u, q], side="right")
            deciles[u, q] = VALUES[(pl.bins_q[u, q] << 8) | fine]
    nan = np.full(W, np.nan)
    return {
        "mean": pl.mean,
        "std": np.sqrt(sec.sq / n),
        "min": VALUES[p.bottom_key[:, 0]],
        "max": VALUES[p.top_key[:, 0]],
        "low": nan if pl.sat is None else sec.low / n,
        "high": nan.copy() if pl.sat is None else sec.high / n,
        "edges": pl.edges,
        "hist": sec.hist,
        "deciles": deciles,
        "top_pos": p.top_pos,
        "top_val": _vals(p.top_key),
        "bottom_pos": p.bottom_pos,
        "bottom_val": _vals(p.bottom_key),
    }


def summarize(p: Partial, gate: str, rows: np.ndarray, bounded_h: bool = True) -> dict[str, np.ndarray]:
    """Every statistic but the bands of rows held in memory at once (pass 1's ``p`` of them, then pass 2)."""
    pl = plan(p, gate, bounded_h)
    return finish(p, pl, second(rows, pl))


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
    Band j holds deciles[j] <= v < deciles[j+1], the last band closed (deciles are float16 values, so the
    comparisons are made exactly on their keys)."""
    n, W = rows.shape
    pos = np.arange(offset, offset + n, dtype=np.int64)
    order = np.argsort(mix(pos), kind="stable")  # the piece's steps by mix, smallest first
    K_ = _compiled()
    if K_ is not None:
        first = keys(deciles[:, :1].astype(np.float16))[:, 0]
        return K_.bands_kernel(_bits(rows), pos, order, keys(deciles[:, 1:10].astype(np.float16)), first, s)
    kT = np.ascontiguousarray(keys(rows[order]).T)  # (W, n) keys in mix order
    edges = keys(deciles[:, 1:10].astype(np.float16))  # (W, 9)
    out = np.full((W, 10, s), -1, np.int64)
    for u in range(W):
        b = np.zeros(n, np.uint8)  # how many of deciles[1..9] are <= v: the band
        for e in edges[u]:
            b += kT[u] >= e
        by_band = np.argsort(b, kind="stable")  # grouped by band, each group in mix order (a radix sort)
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
