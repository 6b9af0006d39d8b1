"""What one prediction depends on: the gradient of the score at step t with respect to every earlier
input x_s and every earlier cell state C_s (h_s for cells without C), by exact backpropagation through
time (model/backprop.py's ``_backward``, every cell, batched).

    score_t = log p_t(target)          next-token and classes heads (the softmax's log-probability)
            = y_t[target]              a values head (the output's index; 0 by default)

    inputs[s] = sum_d x_s,d * d score_t / d x_s,d                    gradient x input, s = 0 .. t
    one-hot input: the entry of the actual token (d score_t / d onehot_s . onehot_s); an embedding:
    the sum over dims of grad * embedding row; vectors: the sum over features (``features`` holds each).

    cell[s] = || d score_t / d C_s ||  (over the units of ``layer``; h_s for a GRU or a plain RNN)

The gradient wrt C_s is the total one: through h_s = o_s * tanh(C_s) (and a peephole's o_s), every
later step and the layers above, as the running dC of backpropagation through time.

Integrated gradients (Sundararajan, Taly & Yan, "Axiomatic Attribution for Deep Networks", ICML 2017):

    IG_s = (x_s - x'_s) . mean over k of d score_t / d x_s  at  x' + a_k (x - x'),  a_k = (k + 1/2) / m

with the baseline x' = 0 at every step (no token: a zero one-hot or a zero embedding row; zero vectors;
the biases and the initial state stay), the midpoint rule over ``steps`` = m points, run as one batch of
m + 2 rows (the m points, the input itself for ``cell`` and the score, the baseline for f(x')).
Completeness: sum_s IG_s = f(x) - f(x') up to the rule's error (O(1/m^2)); both are returned.

Forward networks only (a backward direction reads the steps after t); an LSTM with proj_size is not
backpropagated here (model/backprop.py). ``net.astype(np.float64)`` for checks.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .backprop import _backward, _gates
from .cells import has_cell_state
from .errors import Cancelled, InputError
from .network import Network
from .threads import step_threads
from .tokenizer import Encoded

#: The methods ``attribute`` runs.
METHODS = ("grad_x_input", "integrated_gradients")

#: Gradient x input (``Forward``, one sequence) runs the compiled forward and backward passes of
#: model/backprop_kernels.py; False runs the NumPy ones (the cells' ``run`` and backprop.py's ``_backward``).
#: Integrated gradients' batches always run the NumPy ones.
COMPILED = True


@dataclass
class Attribution:
    """One prediction's attributions (``attribute``): a number per step s = 0 .. t."""

    t: int  # the step whose prediction is explained
    method: str  # "grad_x_input" | "integrated_gradients"
    inputs: np.ndarray  # (t+1,) each input x_s's contribution to the score
    cell: np.ndarray  # (t+1,) || d score / d C_s || over the units of ``layer`` (h_s without C)
    gate: str  # "c" (the cell state) or "h" (cells without one)
    layer: int  # whose C_s (or h_s): the last layer unless asked
    target: int  # the output index scored: a token id, a class, or a values head's output
    label: str  # its name: the token, the class's label, the output's label
    target_rule: str  # "given", "next token" (x_{t+1}), "predicted" (the argmax at t) or "first output"
    score: float  # log p_t(target), or the value y_t[target]
    score_kind: str  # "log_p" | "value"
    cell_grad: np.ndarray | None = None  # (t+1, H) d score / d C_s itself (d h_s without C)
    hidden: np.ndarray | None = None  # (t+1,) || d score / d h_s || for cells with C (beside ``cell``)
    features: np.ndarray | None = None  # (t+1, D) vector models: each feature's grad x input
    steps: int | None = None  # integrated gradients: the Riemann points
    rule: str | None = None  # integrated gradients: "midpoint"
    baseline: str | None = None  # integrated gradients: what x' is
    completeness: dict[str, float] | None = None  # {"sum": sum of IG, "difference": f(x) - f(x')}
    token: str | None = field(default=None)  # the input token at step t (text models)
    share: np.ndarray | None = None  # (t+1,) |inputs[s]| / sum_s |inputs[s]| (zeros when every input is 0)
    largest: int = 0  # the step whose |inputs[s]| is largest (the earliest of ties)

    def to_dict(self) -> dict[str, Any]:
        """Plain numbers and lists."""
        out: dict[str, Any] = {}
        for k, v in self.__dict__.items():
            out[k] = v.tolist() if isinstance(v, np.ndarray) else v
        return out


def check(net: Network, what: str = "attribution") -> None:
    """An InputError naming why ``net`` cannot be backpropagated here, if it cannot."""
    s = net.spec
    if s.direction != "forward":
        raise InputError(
            f"{what} runs forward networks only: this one is {s.direction} (its h at step t has read the steps "
            "after t, so a prediction at t depends on later inputs)"
        )
    if s.proj_size is not None:
        raise InputError(f"{what} of an LSTM with proj_size ({s.proj_size}) is not implemented (model/backprop.py)")
    if net.head is None:
        raise InputError(f"{what} explains a prediction, and this model has no output head")


#: Bytes an integrated-gradients batch may hold at once (its rows run in batches of at most this).
IG_BATCH_BYTES = 96 << 20


class Forward:
    """One forward pass over ``x`` from the zero state, kept for attributions at any of its steps: a
    scrubber's cache. ``Forward(net, x).attribute(t)`` costs one backward pass over steps 0 .. t.

    ``x``: text, its ``tokenizer.encode``-d form, or a (T, D) array; ``steps``: run only the first ones
    (``attribute`` runs steps 0 .. t); ``compiled``: the compiled kernels or the NumPy ones (None: ``COMPILED``;
    False keeps numba, its compile and its ~130 MB out of a process that attributes a few short texts)."""

    def __init__(
        self, net: Network, x: str | np.ndarray | Encoded, steps: int | None = None, compiled: bool | None = None
    ) -> None:
        check(net)
        self.net = net
        self.enc, ids, u = _inputs(net, x)  # the whole input's tokens (unknown ones refused)
        self.T = len(self.enc.ids) if steps is None else max(1, min(steps, len(self.enc.ids)))
        self.ids = None if ids is None else ids[: self.T]
        self.u = None if u is None else u[: self.T]  # (T, D) embedding rows or the given vectors
        self.fused0 = _fused_share(net, self.ids, self.u)  # (T, G*H) layer 0's x_s @ W, without the bias
        self.kept: list[dict[str, np.ndarray]] | None = None  # the compiled forward's arrays, a layer each
        self.caches: list[dict[str, Any]] = []  # the NumPy forward's backprop caches
        self.share: dict[str, np.ndarray] = {}
        with step_threads():
            if COMPILED if compiled is None else compiled:
                self.kept = _run_compiled(net, self.fused0)
                self.top = self.kept[-1]["Hs"][1:, None, :]  # (T, 1, H)
            else:
                self.share = _input_share(net, self.ids, self.u)  # layer 0's x_s @ W_g, without the bias
                self.caches, self.top = _run(net, self.fused0, np.ones(1, net.dtype))

    @property
    def nbytes(self) -> int:
        """Bytes this cache holds."""
        arrays = [self.fused0, *self.share.values()] + ([] if self.u is None else [self.u])
        if self.kept is not None:
            arrays += [a for kept in self.kept for a in kept.values()]
        else:
            arrays.append(self.top)
        for cache in self.caches:
            arrays += [a for k, a in cache.items() if k != "act"] + list(cache["act"].values())
        return sum(a.nbytes for a in arrays)

    def attribute(self, t: int, target: int | str | None = None, layer: int | None = None) -> Attribution:
        """Gradient x input for the prediction at step ``t``, from this forward pass."""
        t = _step(t, len(self.enc.ids), self.T)
        layer = _layer(self.net, layer)
        k, rule = _target(self.net, self.enc, t, target, self.top[t, 0])
        with step_threads():
            dtop, scores = _score(self.net, self.top[t], k)
            if self.kept is not None:
                dz, keep = _back_compiled(self.net, self.kept, t, dtop[0], layer)
                inputs = np.einsum("tk,tk->t", dz, self.fused0[: t + 1])  # (t+1,) sum_k dz_k (x_s @ W)_k
                feats = None
                if self.net.tokenizer is None and self.u is not None:  # (t+1, 1, D) per feature
                    feats = ((dz @ self.net.cells[0].W.T) * self.u[: t + 1])[:, None]
            else:
                d_share, keep = _back(self.net, self.caches, t, dtop, layer)
                inputs2, feats = _times_input(self.net, self.share, self.u, d_share, t)
                inputs = inputs2[:, 0]
        return _result(self.net, self.enc, t, "grad_x_input", k, rule, float(scores[0]), inputs, feats, keep, layer)


def attribute(
    net: Network,
    x: str | np.ndarray | Encoded,
    t: int,
    *,
    target: int | str | None = None,
    method: str = "grad_x_input",
    steps: int = 32,
    layer: int | None = None,
    stop: Callable[[], bool] | None = None,
    compiled: bool | None = None,
) -> Attribution:
    """How much each input x_s (s <= t) and each cell state C_s contributed to the prediction at step ``t``.

    ``target``: the output to explain: a token (or its id) for a next-token head, a class (label or index)
    for a classes head, an output index for a values head; default the actual next token x_{t+1} (the
    predicted one at the last step), the predicted class, or output 0. ``method``: "grad_x_input" or
    "integrated_gradients" (``steps`` midpoint points from the zero baseline). ``layer``: whose C_s (default
    the last layer). Only steps 0 .. t are run, forward and back. ``stop``: asked between batches of integrated
    gradients' points; True ends the run with ``Cancelled``. ``compiled``: as ``Forward``'s (gradient x input)."""
    if method not in METHODS:
        raise InputError(f"unknown method {method!r}: expected one of {', '.join(METHODS)}")
    check(net)
    if method == "grad_x_input":
        steps_run = int(t) + 1 if isinstance(t, (int, np.integer)) and not isinstance(t, bool) and t >= 0 else None
        return Forward(net, x, steps=steps_run, compiled=compiled).attribute(t, target, layer)
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1:
        raise InputError(f"integrated gradients needs steps >= 1 (points along the path), got {steps!r}")
    enc, ids, u = _inputs(net, x)
    t = _step(t, len(enc.ids), len(enc.ids))
    layer = _layer(net, layer)
    ids, u = (None if ids is None else ids[: t + 1]), (None if u is None else u[: t + 1])
    share, fused0 = _input_share(net, ids, u), _fused_share(net, ids, u)
    alphas = np.concatenate([[1.0, 0.0], (np.arange(steps) + 0.5) / steps]).astype(net.dtype)  # x, x', the path
    per_row = _row_bytes(net, t + 1)
    batch = int(max(2, IG_BATCH_BYTES // max(per_row, 1)))
    k, rule, keep = 0, "", dict[str, np.ndarray]()
    inputs: list[np.ndarray] = []
    scores: list[np.ndarray] = []
    feats: list[np.ndarray] = []
    with step_threads():
        for j in range(0, len(alphas), batch):
            if stop is not None and stop():
                raise Cancelled(f"stopped after {j} of {len(alphas)} points of integrated gradients")
            rows = alphas[j : j + batch]
            caches, top = _run(net, fused0, rows)
            if j == 0:
                k, rule = _target(net, enc, t, target, top[t, 0])
            dtop, sc = _score(net, top[t], k)
            d_share, kept = _back(net, caches, t, dtop, layer)
            keep = keep or kept  # the first batch's first row is the input itself
            gi, gf = _times_input(net, share, u, d_share, t)  # (t+1, B): grad(a x) . x
            inputs.append(gi)
            scores.append(sc)
            if gf is not None:
                feats.append(gf)
            del caches, d_share
    gi_all, sc_all = np.concatenate(inputs, axis=1), np.concatenate(scores)
    ig = gi_all[:, 2:].mean(axis=1)  # (t+1,) the path's mean gradient, times x - 0
    res = _result(net, enc, t, "integrated_gradients", k, rule, float(sc_all[0]), ig, None, keep, layer)
    if feats:
        res.features = np.concatenate(feats, axis=1)[:, 2:].mean(axis=1).astype(np.float64)
    res.steps, res.rule = int(steps), "midpoint"
    res.baseline = "zero input at every step (no token, a zero embedding row or zero vectors); biases and state kept"
    res.completeness = {"sum": float(ig.sum()), "difference": float(sc_all[0] - sc_all[1])}
    return res


# The pieces ----------------------------------------------------------------------------


def _inputs(net: Network, x: Any) -> tuple[Encoded, np.ndarray | None, np.ndarray | None]:
    """The input's tokens, its ids (text models) and its vectors (embedding rows or the given vectors)."""
    enc, _ = net._inputs(x, gather=False)  # refuses empty input, unknown tokens, wrong vectors
    if net.tokenizer is None:
        return enc, None, net.check_vectors(x)
    ids = np.asarray(enc.ids)
    return enc, ids, net.params["embedding"][ids] if net.spec.embedding else None


def _step(t: Any, total: int, run: int) -> int:
    """``t`` checked against the input's ``total`` steps (and a forward pass of ``run`` of them)."""
    if isinstance(t, bool) or not isinstance(t, (int, np.integer)) or not 0 <= t < total:
        raise InputError(f"t must be a step from 0 to {total - 1}: the input has T = {total} steps, got t = {t!r}")
    if t >= run:
        raise InputError(f"t = {t} is past this forward pass's {run} steps")
    return int(t)


def _layer(net: Network, layer: Any) -> int:
    L = net.num_layers
    if layer is None:
        return L - 1
    if isinstance(layer, bool) or not isinstance(layer, (int, np.integer)) or not 0 <= layer < L:
        raise InputError(f"layer must be from 0 to {L - 1} (the model has {L} layers), got {layer!r}")
    return int(layer)


def _target(net: Network, enc: Encoded, t: int, target: Any, h_t: np.ndarray) -> tuple[int, str]:
    """The output index to score at step t, and how it was chosen."""
    head = net.head
    assert head is not None
    if target is None:
        if head.kind == "values":
            return 0, "first output"
        if head.kind == "next" and t + 1 < len(enc.ids):
            return int(enc.ids[t + 1]), "next token"
        y = h_t @ net.params["head.W"] + net.params["head.b"]  # (K,) the prediction at t
        return int(np.argmax(y)), "predicted"
    return target_index(net, target), "given"


def target_index(net: Network, target: int | str) -> int:
    """The output index a given ``target`` names: a token or class label (a string) or an index; an InputError
    saying what fits if it names none."""
    head = net.head
    if head is None:
        raise InputError("this model has no output head: there is no prediction to explain")
    K = head.size
    if isinstance(target, str):
        names = list(head.labels)
        if target in names:
            return names.index(target)
        if head.kind == "next":
            raise InputError(f"the target {target!r} is not a token of this model's vocabulary")
        shown = ", ".join(repr(n) for n in names[:20]) + (", ..." if len(names) > 20 else "")
        raise InputError(f"the target {target!r} is not a label of this model's outputs ({shown})")
    if isinstance(target, bool) or not isinstance(target, (int, np.integer)) or not 0 <= target < K:
        what = {"next": "a token id", "classes": "a class index", "values": "an output index"}[head.kind]
        raise InputError(f"the target must be {what} from 0 to {K - 1} (or its label), got {target!r}")
    return int(target)


def _row_bytes(net: Network, steps: int) -> int:
    """Bytes one row of a batch holds over ``steps`` steps: the forward's gates and states, the backward's
    gradients and local derivatives (each about a layer's G*H + 6H numbers a step, twice)."""
    return steps * sum(c.W.shape[1] + 6 * c.hidden_size for c in net.cells) * net.dtype.itemsize * 2


def nbytes(net: Network, steps: int, method: str = "grad_x_input", points: int = 32) -> int:
    """About the most bytes an attribution over ``steps`` steps holds at once (a cached ``Forward`` and one
    backward pass; integrated gradients: a batch of its ``points`` + 2 rows)."""
    per_row = _row_bytes(net, steps)
    rows = 1 if method == "grad_x_input" else min(points + 2, max(2, IG_BATCH_BYTES // max(per_row, 1)))
    return int(rows * per_row + 2 * steps * net.cells[0].W.shape[1] * net.dtype.itemsize)


def _input_share(net: Network, ids: np.ndarray | None, u: np.ndarray | None) -> dict[str, np.ndarray]:
    """Layer 0's input share of each gate without its bias, x_s @ W_g: (T, H) per gate (one-hot: rows of W_g)."""
    p = net.params
    out = {}
    for g in _gates(net.spec):
        W = p[f"layers.0.W_{g}"]  # (D, H)
        out[g] = W[ids] if u is None else u @ W  # (T, H)
    return out


def _params(net: Network, k: int) -> dict[str, np.ndarray]:
    pre = f"layers.{k}."
    return {n[len(pre) :]: a for n, a in net.params.items() if n.startswith(pre)}


def _fused_share(net: Network, ids: np.ndarray | None, u: np.ndarray | None) -> np.ndarray:
    """Layer 0's input share in its cell's fused layout, x_s @ W (T, G*H), without the bias (cells.py)."""
    W = net.cells[0].W  # (D, G*H)
    return W[ids] if u is None else u @ W


def _run(net: Network, fused0: np.ndarray, alphas: np.ndarray) -> tuple[list[dict[str, Any]], np.ndarray]:
    """Every layer forward over the inputs scaled by ``alphas`` (a row each, B of them), with the network's own
    cells: layer 0 reads a * (x_s @ W) + b. Returns each layer's backprop cache and the top layer's h (T, B, H)."""
    T, B = fused0.shape[0], len(alphas)
    caches: list[dict[str, Any]] = []
    for k, cell in enumerate(net.cells):
        if k == 0:
            xW = fused0[:, None] * alphas[None, :, None] + cell.b  # (T, B, G*H)
        else:
            xW = cell.project(caches[-1]["h"][1:])  # (T, B, G*H) from the layer below
        h0 = np.zeros((B, cell.out_size), net.dtype)
        c0 = np.zeros((B, cell.hidden_size), net.dtype) if cell.has_c else None
        if B == 1:
            gates, _ = cell.run(xW[:, 0], (h0[0], None if c0 is None else c0[0]))
        else:
            gates, _ = cell.run_batch(xW, (h0, c0))
        gates = {g: v.reshape(T, B, -1) for g, v in gates.items()}
        caches.append(_cache(net, _params(net, k), gates, h0, c0))
    return caches, caches[-1]["h"][1:]


def _run_compiled(net: Network, fused0: np.ndarray) -> list[dict[str, np.ndarray]]:
    """Every layer forward over one sequence by model/backprop_kernels.py, keeping what its backward needs."""
    from . import backprop_kernels as bk  # here: numba (and the scipy it loads) only once attribution runs

    kept: list[dict[str, np.ndarray]] = []
    for k, cell in enumerate(net.cells):
        xW = fused0 + cell.b if k == 0 else cell.project(kept[-1]["Hs"][1:])  # (T, G*H)
        kept.append(bk.forward(cell, np.ascontiguousarray(xW, net.dtype)))
    return kept


def _back_compiled(
    net: Network, kept: list[dict[str, np.ndarray]], t: int, dtop: np.ndarray, layer: int
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """``_back`` for one sequence by the compiled kernels: d score / d z of layer 0 (t+1, G*H) in its fused
    layout, and ``layer``'s running dC and dh as (t+1, 1, H)."""
    dh = np.zeros((t + 1, dtop.shape[0]), net.dtype)
    dh[t] = dtop  # the score reads the top layer's h at step t only
    from . import backprop_kernels as bk

    keep: dict[str, np.ndarray] = {}
    for k in reversed(range(net.num_layers)):
        cell = net.cells[k]
        dz, dH, dC = bk.backward(cell, kept[k], dh)
        if k == layer:
            keep = {"h": dH[:, None]} if dC is None else {"h": dH[:, None], "c": dC[:, None]}
        if k > 0:
            dh = dz @ cell.W.T  # (t+1, H) into the layer below's h (W's halved columns meet the doubled dz)
    return dz, keep


def _cache(net: Network, p: dict[str, np.ndarray], gates: dict[str, np.ndarray], h0, c0) -> dict[str, Any]:
    """A trace's gates (T, B, H) as backprop's cache: h and c with the initial state at index 0, the gates'
    activations under backprop's keys (the candidate is "c" for the LSTM family, "h" for the GRU)."""
    spec = net.spec
    h = np.concatenate([h0[None], gates["h"]])  # (T+1, B, H)
    names = {"c": "c_tilde", "h": "h_tilde" if spec.cell == "gru" else "h"}
    cache: dict[str, Any] = {"h": h, "act": {g: gates[names.get(g, g)] for g in _gates(spec)}}
    if has_cell_state(spec.cell):
        cache["c"] = np.concatenate([c0[None], gates["c"]])
        cache["tanh_c"] = np.tanh(gates["c"])
    elif spec.cell == "gru":
        cache["q"] = h[:-1] @ p["U_h"] + p["bU_h"] if spec.reset_after else np.empty((0,) + h.shape[1:], h.dtype)
    return cache


def _score(net: Network, h_t: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """d score / d h_top at step t (B, H) and the scores (B,): log p(k) of a softmax head, y[k] of a values head."""
    W, b = net.params["head.W"], net.params["head.b"]
    y = h_t @ W + b  # (B, K)
    assert net.head is not None
    if not net.head.softmax:
        return np.broadcast_to(W[:, k], h_t.shape).copy(), y[:, k]
    y = y - y.max(axis=1, keepdims=True)
    logp = y - np.log(np.exp(y).sum(axis=1, keepdims=True))  # (B, K)
    dy = -np.exp(logp)  # d log p_k / d y = onehot(k) - p
    dy[:, k] += 1
    return dy @ W.T, logp[:, k]


def _back(
    net: Network, caches: list[dict[str, Any]], t: int, dtop: np.ndarray, layer: int
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Backpropagate d score / d h_top at step t through steps t .. 0 of every layer: d score / d(x W_g) of
    layer 0 (t+1, B, H) per gate, and ``layer``'s running dC and dh (t+1, B, H)."""
    spec = net.spec
    B, H = dtop.shape
    dh_seq = np.zeros((t + 1, B, H), dtop.dtype)
    dh_seq[t] = dtop  # the score reads the top layer's h at step t only
    keep: dict[str, np.ndarray] = {}
    for k in reversed(range(net.num_layers)):
        p = _params(net, k)
        here: dict[str, np.ndarray] | None = {} if k == layer else None  # gets the running dh (and dC)
        dxW = _backward(spec, p, caches[k], dh_seq, None, f"layers.{k}.", here)
        if here is not None:
            keep = here
        if k > 0:
            dh_seq = sum(da @ p[f"W_{g}"].T for g, da in dxW.items())  # (t+1, B, H) into the layer below's h
    return dxW, keep


def _times_input(
    net: Network,
    share: dict[str, np.ndarray],
    u: np.ndarray | None,
    d_share: dict[str, np.ndarray],
    t: int,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Gradient x input per step and row (t+1, B): d score / d x_s . x_s = sum_g d(xW_g)_s . (x_s @ W_g); vector
    models also per feature (t+1, B, D): (sum_g d(xW_g)_s @ W_g^T) * x_s. The gradient is at the row's scaled
    input; it multiplies the unscaled x (integrated gradients' x - 0)."""
    inputs = sum(np.einsum("tbh,th->tb", d, share[g][: t + 1]) for g, d in d_share.items())  # (t+1, B)
    feats = None
    if net.tokenizer is None and u is not None:
        grad = sum(d @ net.params[f"layers.0.W_{g}"].T for g, d in d_share.items())  # (t+1, B, D)
        feats = grad * u[: t + 1, None, :]
    return np.asarray(inputs), feats


def _result(
    net: Network,
    enc: Encoded,
    t: int,
    method: str,
    k: int,
    rule: str,
    score: float,
    inputs: np.ndarray,
    feats: np.ndarray | None,
    keep: dict[str, np.ndarray],
    layer: int,
) -> Attribution:
    """The Attribution of row 0 (the input itself) of a batch."""
    assert net.head is not None
    has_c = "c" in keep

    def norm(a: np.ndarray) -> np.ndarray:
        return np.linalg.norm(a[:, 0].astype(np.float64), axis=-1)  # (t+1,) over the units

    size = np.abs(np.asarray(inputs, np.float64))  # (t+1,)
    total = float(size.sum())

    return Attribution(
        t=t,
        method=method,
        inputs=np.asarray(inputs, np.float64),
        cell=norm(keep["c"] if has_c else keep["h"]),
        cell_grad=(keep["c"] if has_c else keep["h"])[:, 0].astype(np.float64),
        gate="c" if has_c else "h",
        layer=layer,
        target=k,
        label=net.head.labels[k],
        target_rule=rule,
        score=score,
        score_kind="log_p" if net.head.softmax else "value",
        hidden=norm(keep["h"]) if has_c else None,
        features=None if feats is None else feats[:, 0].astype(np.float64),
        token=enc.tokens[t] if net.tokenizer is not None else None,
        share=size / total if total > 0 else np.zeros_like(size),
        largest=int(np.argmax(size)),
    )
