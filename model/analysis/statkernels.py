"""Compiled passes of unitstats.py: the same three passes over float16 activations, a loop over memory each.

unitstats.py's NumPy passes make a dozen passes over a piece's values (keys, a transpose, bincounts, partitions,
a histogram table per unit of an unbounded gate, a sort of every band); these make one to three (numba, as
model/kernels.py), with results equal to the NumPy passes' bit for bit but for the float64 sums (here added in
step order, there pairwise: both within 1e-12 of the exact mean of a piece this size).

    partial_kernel   keys transposed once (a unit's steps contiguous, in cache; the key without a branch, so the
                     transpose vectorizes), then per unit: the 256 coarse counts and the sum; the coarse bins of
                     the m-th highest and lowest keys; one scan for the fine counts inside both -> the exact m-th
                     keys; one scan for the positions beyond them and the first ties at them, in step order;
                     a stable sort by key (ties keep the lower position first, as np.lexsort((pos, -key))).
    second_kernel    per unit, one scan: fine counts in the deciles' coarse bins, the histogram (a bounded gate: one
                     lookup a value in a table of every key's bin and saturation; else a guess from the
                     uniform edges, moved to np.searchsorted(edges, v, "right") - 1; the last edge closed), the
                     saturated counts and the squared deviations.
    bands_kernel     the rows in mix order (no transpose), every unit's band counted from its 9 decile keys, the
                     first s positions of each band kept; it stops once every band that can fill is full.

Imported by unitstats.py at its first pass (numba costs the importing process ~100 MB: a server that never
builds an index need not pay it); unitstats keeps the NumPy passes for an install without numba.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ..kernels import OPTS


@njit(inline="always", **OPTS)
def _key(b):
    """The order-preserving key of a float16 bit pattern (unitstats.keys): -0 is +0, negatives reversed below.
    Without a branch (the transpose's loop vectorizes): a positive pattern flips its sign bit, a negative all."""
    b32 = np.uint32(b)
    k = b32 ^ (((b32 >> np.uint32(15)) * np.uint32(0x7FFF)) | np.uint32(0x8000))
    return np.uint16(np.uint32(0x8000) if b32 == np.uint32(0x8000) else k)


@njit(**OPTS)
def keys_t(bits):
    """(W, n) keys of bits (n, W) uint16, transposed in blocks of rows (a unit's steps contiguous)."""
    n, W = bits.shape
    out = np.empty((W, n), np.uint16)
    for r0 in range(0, n, 64):
        r1 = min(n, r0 + 64)
        for u in range(W):
            o = out[u]
            for r in range(r0, r1):
                o[r] = _key(bits[r, u])
    return out


@njit(inline="always", **OPTS)
def _cut(coarse, fine, cb, beyond, m, highest):
    """The m-th highest (lowest) key t, from the fine counts of its coarse bin cb with ``beyond`` keys past that
    bin; and how many keys equal to t make the m."""
    for step in range(256):
        lo = 255 - step if highest else step
        if beyond + fine[lo] >= m:
            return (cb << 8) | lo, m - beyond
        beyond += fine[lo]
    return (cb << 8) | 255, 0  # pragma: no cover  (m <= n: never)


@njit(inline="always", **OPTS)
def _coarse_cut(coarse, m, highest):
    """The coarse bin holding the m-th highest (lowest) key, and how many keys lie beyond that bin."""
    beyond = 0
    cb = 0
    for step in range(256):
        cb = 255 - step if highest else step
        if beyond + coarse[cb] >= m:
            break
        beyond += coarse[cb]
    return cb, beyond


@njit(**OPTS)
def _extremes(col, coarse, m):
    """The m positions of col's highest keys and of its lowest, ties -> lower position first, best first; and their
    keys: two scans of col for both (the fine counts in the two coarse bins, then the positions)."""
    n = col.shape[0]
    cb_t, beyond_t = _coarse_cut(coarse, m, True)
    cb_b, beyond_b = _coarse_cut(coarse, m, False)
    fine_t = np.zeros(256, np.int64)
    fine_b = np.zeros(256, np.int64)
    for r in range(n):
        k = col[r]
        c = k >> 8
        if c == cb_t:
            fine_t[k & 0xFF] += 1
        if c == cb_b:
            fine_b[k & 0xFF] += 1
    t_t, ties_t = _cut(coarse, fine_t, cb_t, beyond_t, m, True)
    t_b, ties_b = _cut(coarse, fine_b, cb_b, beyond_b, m, False)
    pos_t = np.empty(m, np.int64)
    key_t = np.empty(m, np.int64)
    pos_b = np.empty(m, np.int64)
    key_b = np.empty(m, np.int64)
    got_t = got_b = 0
    for r in range(n):
        k = np.int64(col[r])
        if k > t_t or (k == t_t and ties_t > 0):
            if k == t_t:
                ties_t -= 1
            pos_t[got_t] = r
            key_t[got_t] = k
            got_t += 1
        if k < t_b or (k == t_b and ties_b > 0):
            if k == t_b:
                ties_b -= 1
            pos_b[got_b] = r
            key_b[got_b] = k
            got_b += 1
    order_t = np.argsort(-key_t, kind="mergesort")  # stable: ties keep step order
    order_b = np.argsort(key_b, kind="mergesort")
    return pos_t[order_t], key_t[order_t], pos_b[order_b], key_b[order_b]


@njit(**OPTS)
def partial_kernel(bits, K, values):
    """Pass 1 of bits (n, W) (float16 patterns as uint16): coarse (W, 256), total (W,), top/bottom pos and keys
    (W, m), m = min(K, n), positions relative to the piece."""
    n, W = bits.shape
    m = min(K, n)
    kT = keys_t(bits)
    coarse = np.zeros((W, 256), np.int64)
    total = np.zeros(W)
    top_pos = np.empty((W, m), np.int64)
    top_key = np.empty((W, m), np.int64)
    bottom_pos = np.empty((W, m), np.int64)
    bottom_key = np.empty((W, m), np.int64)
    v32 = values.astype(np.float32)  # float16 values are exact in float32: half the table's cache lines
    for u in range(W):
        col = kT[u]
        cu = coarse[u]
        s = 0.0
        for r in range(n):
            k = col[r]
            cu[k >> 8] += 1
            s += np.float64(v32[k])
        total[u] = s
        top_pos[u], top_key[u], bottom_pos[u], bottom_key[u] = _extremes(col, cu, m)
    return coarse, total, top_pos, top_key, bottom_pos, bottom_key


@njit(inline="always", **OPTS)
def _bin(v, e, bins, scale):
    """np.histogram's bin of v for edges e (np.searchsorted(e, v, "right") - 1, the last edge closed), -1
    outside or NaN."""
    lo, hi = e[0], e[bins]
    if not (v >= lo and v <= hi):
        return -1
    if v == hi:
        return bins - 1
    b = 0
    g = (v - lo) * scale
    if g == g and g < bins:  # finite: start from the uniform guess
        b = max(0, min(bins - 1, int(g)))
    else:  # pragma: no cover  (an infinite edge)
        b = bins - 1
    while b > 0 and v < e[b]:
        b -= 1
    while b < bins - 1 and v >= e[b + 1]:
        b += 1
    return b


@njit(**OPTS)
def _squares(col, v32, mu):
    """sum((v - mu)^2) over a unit's keys, in four interleaved float64 sums (one sum's add latency bound the loop)."""
    n = col.shape[0]
    s0 = s1 = s2 = s3 = 0.0
    r = 0
    while r + 4 <= n:
        d0 = np.float64(v32[col[r]]) - mu
        d1 = np.float64(v32[col[r + 1]]) - mu
        d2 = np.float64(v32[col[r + 2]]) - mu
        d3 = np.float64(v32[col[r + 3]]) - mu
        s0 += d0 * d0
        s1 += d1 * d1
        s2 += d2 * d2
        s3 += d3 * d3
        r += 4
    while r < n:
        d0 = np.float64(v32[col[r]]) - mu
        s0 += d0 * d0
        r += 1
    return (s0 + s1) + (s2 + s3)


@njit(**OPTS)
def second_kernel(bits, mean, edges, table, bins_q, values):
    """Pass 2 of bits (n, W): fine (W, 11, 256), hist (W, bins), low, high (W,), sq (W,). ``table`` (65536,) int32
    when every unit has the same edges (a bounded gate): each key's bin (-1 outside) | 1 << 16 when saturated low
    | 1 << 17 high, so a value costs one lookup; else empty (an unbounded gate, no saturation): bins by _bin."""
    n, W = bits.shape
    bins = edges.shape[1] - 1
    kT = keys_t(bits)
    v32 = values.astype(np.float32)  # float16 values are exact in float32: half the table's cache lines
    shared = table.shape[0] > 0
    fine = np.zeros((W, 11, 256), np.int64)
    hist = np.zeros((W, bins), np.int64)
    low = np.zeros(W, np.int64)
    high = np.zeros(W, np.int64)
    sq = np.zeros(W)
    slot = np.empty(256, np.int64)
    for u in range(W):
        col, e = kT[u], edges[u]
        slot[:] = -1
        for q in range(11):
            if slot[bins_q[u, q]] < 0:
                slot[bins_q[u, q]] = q  # the first decile in that coarse bin counts for all of them
        f, hu = fine[u], hist[u]
        if shared:
            lo_n, hi_n = 0, 0
            for r in range(n):
                k = col[r]
                q = slot[k >> 8]
                if q >= 0:
                    f[q, k & 0xFF] += 1
                t = table[k]
                b = t & 0xFFFF
                if b != 0xFFFF:
                    hu[b] += 1
                lo_n += (t >> 16) & 1
                hi_n += (t >> 17) & 1
            low[u], high[u] = lo_n, hi_n
        else:
            span = e[bins] - e[0]
            scale = bins / span if span > 0 else 0.0
            for r in range(n):
                k = col[r]
                q = slot[k >> 8]
                if q >= 0:
                    f[q, k & 0xFF] += 1
                b = _bin(values[k], e, bins, scale)
                if b >= 0:
                    hu[b] += 1
        for q in range(11):
            first = slot[bins_q[u, q]]
            if first != q:
                f[q] = f[first]
        sq[u] = _squares(col, v32, mean[u])
    return fine, hist, low, high, sq


@njit(**OPTS)
def bands_kernel(bits, pos, order, edges, first, s):
    """Pass 3 of bits (n, W): per unit and band, the first s positions in ``order`` (the steps by mix) whose key
    lies in the band (band = how many of edges (W, 9), the keys of deciles 1..9, are <= the key); (W, 10, s), -1
    pads. ``first`` (W,): the keys of deciles 0 (the minimum): band 0 is empty when edges[:, 0] equals it, band j
    (1..8) when edges[:, j-1] equals edges[:, j]; such bands never fill, every other band stops the scan once full."""
    n, W = bits.shape
    out = np.full((W, 10, s), -1, np.int64)
    cnt = np.zeros((W, 10), np.int64)
    open_ = 0
    for u in range(W):
        for j in range(10):
            empty = (edges[u, 0] == first[u]) if j == 0 else (j < 9 and edges[u, j - 1] == edges[u, j])
            if empty:
                cnt[u, j] = s  # never filled: do not wait for it
            else:
                open_ += 1
    for i in range(n):
        if open_ == 0:
            break
        r = order[i]
        p = pos[r]
        for u in range(W):
            k = _key(bits[r, u])
            eu = edges[u]
            j = 0
            for q in range(9):
                j += k >= eu[q]
            c = cnt[u, j]
            if c < s:
                out[u, j, c] = p
                cnt[u, j] = c + 1
                if c + 1 == s:
                    open_ -= 1
    return out
