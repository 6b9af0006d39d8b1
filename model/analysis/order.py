"""An order of a layer's units in which units that act together sit together: hierarchical clustering
of the units' correlations over a text or a corpus index, read off as the dendrogram's leaf order.

    r[u, v]  Pearson correlation of units u and v over every step (one gate)        (W, W)
    D[u, v]  = 1 - |r[u, v]|   (or 1 - r[u, v] with signed=True)                      (W, W), in [0, 1] / [0, 2]

1 - |r| by default: the sign of a hidden unit is a symmetry of the network (negate a unit's c_tilde
weights, hence its c and h, and the weights that read its h, and the network computes the same function),
so a unit and its mirror image carry the same information and belong together. ``signed=True`` keeps
them apart (for gates, where 0 and 1 mean different things).

Clustering: average linkage (UPGMA), the distance of two clusters the mean distance of their members,
updated after a merge by Lance-Williams, d(k, i+j) = (n_i d(k, i) + n_j d(k, j)) / (n_i + n_j); merges
found with the nearest-neighbour chain (O(W^2) time and memory, exact for average linkage). Each merge
puts its two leaf sequences side by side in whichever of the four orientations makes the two leaves that
meet the closest pair (a greedy step toward an optimal leaf order, O(1) a merge). Ties break toward the
lower unit id, and the order reads from whichever end has the lower id, so it is deterministic.

Constant units (no correlation defined) are at distance 1 from every unit; they end up at one end.

The correlation streams: ``Moments`` takes (n, W) blocks one after another (the index's ``blocks``),
holding only W sums and a (W, W) sum of products, so memory is bounded whatever the corpus size; a float32
block's products are float32 (float64 input stays float64), summed across blocks in float64.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from ..errors import InputError


class Moments:
    """Running sums for a correlation matrix of W columns, fed block by block (shifted by the first
    block's mean, so that the sums do not cancel in floating point)."""

    def __init__(self, width: int) -> None:
        self.W = width
        self.n = 0
        self.shift: np.ndarray | None = None  # (W,)
        self.s = np.zeros(width)  # (W,) sum of (x - shift)
        self.ss = np.zeros((width, width))  # (W, W) sum of (x - shift)(x - shift)^T
        self.lo = np.full(width, np.inf)  # (W,) for the exact constant test
        self.hi = np.full(width, -np.inf)

    def add(self, X: Any) -> None:
        """Take a block of rows (n, W)."""
        X = np.asarray(X)  # (n, W)
        if X.dtype != np.float32:
            X = X.astype(np.float64)
        if X.ndim != 2 or X.shape[1] != self.W:
            raise InputError(f"a block of shape {X.shape} for {self.W} units")
        if X.shape[0] == 0:
            return
        if self.shift is None:
            self.shift = X.mean(axis=0, dtype=np.float64)
        # a float32 block (the index's) stays float32 for its product: 10x faster than float64 here, and exact to
        # ~1e-6 relative within a block of 65,536 rows; the blocks' sums add up in float64
        Y = X - self.shift.astype(X.dtype)  # (n, W)
        self.n += X.shape[0]
        self.s += Y.sum(axis=0, dtype=np.float64)
        self.ss += (Y.T @ Y).astype(np.float64)
        self.lo = np.minimum(self.lo, X.min(axis=0))
        self.hi = np.maximum(self.hi, X.max(axis=0))

    def corr(self) -> np.ndarray:
        """(W, W) Pearson r; a constant unit's row and column are 0 (1 on the diagonal)."""
        if self.n < 2:
            raise InputError(f"a correlation needs at least 2 steps, got {self.n}")
        m = self.s / self.n  # (W,)
        cov = self.ss / self.n - np.outer(m, m)  # (W, W)
        d = np.sqrt(np.clip(np.diag(cov), 0.0, None))  # (W,)
        constant = self.hi == self.lo  # exact: the variance of a constant can round above 0
        d[constant] = np.inf
        with np.errstate(invalid="ignore", divide="ignore"):
            r = cov / np.outer(d, d)  # (W, W)
        r = np.nan_to_num(np.clip(r, -1.0, 1.0), nan=0.0)
        np.fill_diagonal(r, 1.0)
        return r


def correlation(blocks: Iterable[Any]) -> tuple[np.ndarray, int]:
    """(W, W) Pearson r of the columns of a stream of (n, W) blocks, and the steps read."""
    mom: Moments | None = None
    for X in blocks:
        mom = mom or Moments(np.shape(X)[1])
        mom.add(X)
    if mom is None:
        raise InputError("a correlation needs at least 2 steps, got none")
    return mom.corr(), mom.n


def distances(r: np.ndarray, signed: bool = False) -> np.ndarray:
    """1 - |r| (or 1 - r), a zero diagonal."""
    D = 1.0 - (r if signed else np.abs(r))  # (W, W)
    np.fill_diagonal(D, 0.0)
    return np.clip(D, 0.0, None)


def linkage(D: Any) -> np.ndarray:
    """Average-linkage merges of a (W, W) distance matrix, as SciPy's ``linkage``: a (W - 1, 4) array of
    rows (a, b, height, size), a < b, clusters W, W + 1, ... being the merges in order of height (leaves
    are 0..W-1); found with the nearest-neighbour chain."""
    D0 = np.array(D, np.float64)  # (W, W)
    W = D0.shape[0]
    if D0.shape != (W, W):
        raise InputError(f"a distance matrix must be square, got shape {D0.shape}")
    Dm = D0.copy()
    np.fill_diagonal(Dm, np.inf)
    size = np.ones(W, np.int64)  # (W,) members of the cluster in each slot
    made = np.zeros(W)  # (W,) the height at which the cluster in each slot was formed
    alive = np.ones(W, bool)  # (W,)
    merges: list[tuple[float, int, int]] = []  # (height, slot i, slot j), in the order found
    chain: list[int] = []
    for _ in range(W - 1):
        if not chain:
            chain.append(int(np.flatnonzero(alive)[0]))
        while True:
            a = chain[-1]
            row = np.where(alive, Dm[a], np.inf)  # (W,)
            b = int(np.argmin(row))  # the lowest slot among equals
            if len(chain) > 1 and row[chain[-2]] <= row[b]:
                b = chain[-2]  # a tie with the one we came from: they are mutual nearest neighbours
            if len(chain) > 1 and b == chain[-2]:
                break
            chain.append(b)
        a, b = chain.pop(), chain.pop()
        i, j = min(a, b), max(a, b)
        merges.append((max(float(Dm[i, j]), made[i], made[j]), i, j))  # never below a child (rounding)
        made[i] = merges[-1][0]
        ni, nj = size[i], size[j]
        Dm[i] = (ni * Dm[i] + nj * Dm[j]) / (ni + nj)  # Lance-Williams for average linkage
        Dm[:, i] = Dm[i]
        Dm[i, i] = np.inf
        alive[j] = False
        Dm[j, :] = Dm[:, j] = np.inf
        size[i] = ni + nj
    # number the clusters in order of height (stable: the order found breaks ties), as SciPy does
    order = sorted(range(len(merges)), key=lambda k: merges[k][0])
    Z = np.zeros((max(W - 1, 0), 4))
    label = np.arange(W)
    size = np.ones(W, np.int64)
    for n, k in enumerate(order):
        height, i, j = merges[k]
        a, b = sorted((int(label[i]), int(label[j])))
        Z[n] = (a, b, height, size[i] + size[j])
        label[i], size[i] = W + n, size[i] + size[j]
    return Z


def leaf_order(Z: np.ndarray, D: Any) -> list[int]:
    """The leaves of the dendrogram Z left to right, each merge oriented so that the leaves where its two
    halves meet are the closest of the four choices (D: the leaves' distances)."""
    D = np.asarray(D, np.float64)
    W = len(Z) + 1
    seqs: dict[int, list[int]] = {u: [u] for u in range(W)}
    for n, (a, b, _, _) in enumerate(Z):
        A, B = seqs.pop(int(a)), seqs.pop(int(b))
        best = None
        for left in (A, A[::-1]):
            for right in (B, B[::-1]):
                gap = D[left[-1], right[0]]
                if best is None or gap < best[0]:
                    best = (gap, left, right)
        assert best is not None
        seqs[W + n] = best[1] + best[2]
    leaves = seqs[2 * W - 2] if W > 1 else [0]
    return leaves[::-1] if leaves[0] > leaves[-1] else leaves  # of the two directions, the one from the lower id


def similar_order(r: Any, signed: bool = False) -> list[int]:
    """The units 0..W-1 in the leaf order of an average-linkage clustering of their correlations r (W, W)."""
    r = np.asarray(r, np.float64)
    if r.ndim != 2 or r.shape[0] != r.shape[1] or r.shape[0] == 0:
        raise InputError(f"a correlation matrix must be square and non-empty, got shape {r.shape}")
    D = distances(r, signed)
    return leaf_order(linkage(D), D)


def method(signed: bool, steps: int, source: str) -> str:
    """The words the API answers with, saying what the order is."""
    d = "1 − r" if signed else "1 − |r|"
    return f"average-linkage clustering on {d} of the units' correlations over {steps:,} steps of {source}"


def trace_order(trace: Any, layer: int, gate: str, signed: bool = False) -> dict[str, Any]:
    """{"order": [W unit ids], "method", "steps"} over one text's trace."""
    if not 0 <= layer < len(trace.layers):
        raise InputError(f"layer {layer} does not exist: the trace has {len(trace.layers)} layers")
    if gate not in trace.layers[layer]:
        raise InputError(f"gate {gate!r} is not in this trace (it has {', '.join(trace.layers[layer])})")
    X = trace.layers[layer][gate]  # (T, W)
    r, n = correlation([X])
    return {"order": similar_order(r, signed), "method": method(signed, n, "this text"), "steps": n}


#: Steps of an index the correlations are computed over at most, in WINDOW-step windows spread evenly over the
#: corpus: the cost is bounded whatever its size (W = 1024: 2^18 steps are 5.5e11 multiply-adds, and 32 windows read
#: at most 32 chunks), and each r is within ~1 / sqrt(2^18) = 0.002 of the whole corpus's, far below what moves a
#: clustering.
ORDER_STEPS = 1 << 18
#: Steps in each window.
WINDOW = 1 << 13


def windows(steps: int, max_steps: int = ORDER_STEPS, window: int = WINDOW) -> list[tuple[int, int]]:
    """[a, b) ranges covering every step when there are at most ``max_steps``, else ``max_steps // window`` windows
    of ``window`` steps from the first step to the last, evenly spaced."""
    if steps <= max_steps:
        return [(0, steps)]
    count = max(1, max_steps // window)
    if count == 1:
        return [(0, window)]
    starts = [j * (steps - window) // (count - 1) for j in range(count)]
    return [(a, a + window) for a in starts]


def index_order(
    index: Any,
    layer: int,
    gate: str,
    signed: bool = False,
    rows: int = 65536,
    max_steps: int = ORDER_STEPS,
    window: int = WINDOW,
) -> dict[str, Any]:
    """The same over a corpus index, streamed over its blocks (memory: a (W, W) matrix and one block); past
    ``max_steps`` steps, over evenly spread windows of them (``windows``)."""
    S = int(index.steps)
    spans = windows(S, max_steps, window)
    if spans == [(0, S)]:
        r, n = correlation(X for _, X in index.blocks(layer, gate, rows=rows))
        source = "the index"
    else:
        r, n = correlation(index.rows(layer, gate, a, b) for a, b in spans)
        source = f"the index ({len(spans)} windows spread over its {S:,})"
    return {"order": similar_order(r, signed), "method": method(signed, n, source), "steps": n}
