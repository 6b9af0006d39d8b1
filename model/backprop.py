"""Backpropagation through time for every cell of ``cells.py``, batched, with the
embedding (or one-hot input, or the given vectors) and the output head: linear + softmax
cross-entropy (next token, classes), or linear + mean squared error (values: regression).

The forward pass is the same mathematics as ``cells.py`` (colah 2015; Gers &
Schmidhuber 2000 for peepholes; Cho et al. 2014 for the GRU, both reset conventions),
written for a batch (B rows) and keeping what the backward pass needs. The backward
pass runs ``for t in reversed(range(T))`` with one comment per line saying what it
backpropagates through (min-char-rnn's ``lossFun``).

Weights are a network's own flat dict (``layers.<k>.W_f`` (D, H), ``U_f`` (H, H),
``b_f`` (H,), ...); gradients come back under the same names.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .cells import PARAMS, has_cell_state
from .errors import FormatError, InputError
from .network import Spec

#: Gates whose activation is a sigmoid; the rest (the candidates) are tanh.
SIGMOID = {"f", "i", "o", "z", "r"}


def _gates(spec: Spec) -> tuple[str, ...]:
    """The affine gates of the cell, in PARAMS order: f, i, c, o / f, c, o / z, r, h / h."""
    key = "gru_reset_after" if spec.cell == "gru" and spec.reset_after else spec.cell
    return tuple(n[2:] for n in PARAMS[key] if n.startswith("W_"))


def _sigmoid(a: np.ndarray) -> np.ndarray:
    return 0.5 * np.tanh(0.5 * a) + 0.5


def last_steps(mask: np.ndarray) -> np.ndarray:
    """``mask`` (B, T) kept only at each row's last scored step (a head whose answer is its last step's)."""
    out = np.zeros_like(mask)
    scored = mask > 0
    last = mask.shape[1] - 1 - np.argmax(scored[:, ::-1], axis=1)  # (B,) each row's last scored step
    rows = np.flatnonzero(scored.any(axis=1))
    out[rows, last[rows]] = mask[rows, last[rows]]
    return out


def loss_and_grads(
    spec: Spec,
    params: dict[str, np.ndarray],
    x: np.ndarray,
    y: np.ndarray,
    mask: np.ndarray,
    state: list[tuple[np.ndarray, np.ndarray | None]] | None = None,
) -> tuple[float, dict[str, np.ndarray], list[tuple[np.ndarray, np.ndarray | None]]]:
    """The masked loss of predicting y from x, its gradient, the final state.

    x is (B, T) token ids, or (B, T, D) vectors for a model without a vocabulary. For a next-token or
    classes head, y is (B, T) target ids and the loss the mean cross-entropy (nats) over the masked
    steps; for a values head (``spec.head == "values"``), y is (B, T, K) targets and the loss the mean
    squared error over the masked steps and the K outputs. With ``spec.head_at == "last"`` only each
    row's last masked step counts. ``state`` holds per layer (h (B, H), c (B, H) or None); None starts
    from zeros. An LSTM with proj_size (h = W_hr (o * tanh C)) is traced
    exactly but not trained here: it raises FormatError.
    """
    if spec.proj_size is not None:
        raise FormatError(
            f"backpropagation for an LSTM with proj_size ({spec.proj_size}) is not implemented: gatescope traces "
            "such a model but cannot train it"
        )
    if spec.direction != "forward":
        raise InputError(f"training runs forward networks only; this one is {spec.direction}")
    B, T = x.shape[:2]
    H, L = spec.hidden_size, spec.num_layers
    dtype = params["head.W"].dtype
    values = getattr(spec, "head", None) == "values"
    if getattr(spec, "head_at", "every") == "last":
        mask = last_steps(mask)
    if state is None:
        zeros = np.zeros((B, H), dtype)
        state = [(zeros, zeros if has_cell_state(spec.cell) else None) for _ in range(L)]
    grads = {n: np.zeros_like(a) for n, a in params.items()}

    # Forward ------------------------------------------------------------------------
    if spec.vocab is None:
        inp = x.transpose(1, 0, 2).astype(dtype, copy=False)  # (T, B, D) the given vectors
    elif spec.embedding:
        inp = params["embedding"][x.T]  # (T, B, D)
    else:
        inp = None  # one-hot: layer 0's projection is a row lookup
    caches, final = [], []
    for k in range(L):
        p = {n.split(".", 2)[2]: a for n, a in params.items() if n.startswith(f"layers.{k}.")}
        if inp is None:
            xW = {g: p[f"W_{g}"][x.T] + p[f"b_{g}"] for g in _gates(spec)}  # (T, B, H) each
        else:
            xW = {g: inp @ p[f"W_{g}"] + p[f"b_{g}"] for g in _gates(spec)}  # (T, B, H) each
        cache = _forward(spec, p, xW, state[k])
        caches.append((p, inp, cache))
        final.append((cache["h"][-1].copy(), cache["c"][-1].copy() if "c" in cache else None))
        inp = cache["h"][1:]  # (T, B, H)
    top = cache["h"][1:]  # (T, B, H) the top layer's h, what the head reads
    out = top @ params["head.W"] + params["head.b"]  # (T, B, K)
    m = mask.T.astype(dtype)  # (T, B)
    n = max(float(m.sum()), 1.0)
    if values:
        err = out - y.transpose(1, 0, 2)  # (T, B, K) prediction minus target
        K = out.shape[2]
        loss = float((err * err * m[..., None]).sum() / (n * K))
        dlogits = err * (2 * m / (n * K))[..., None]  # (T, B, K): d(mean squared error)/d(prediction)
    else:
        out -= out.max(axis=2, keepdims=True)
        probs = np.exp(out)
        probs /= probs.sum(axis=2, keepdims=True)
        picked = np.take_along_axis(probs, y.T[..., None], axis=2)[..., 0]  # (T, B)
        loss = float(-(np.log(np.maximum(picked, 1e-30)) * m).sum() / n)
        dlogits = probs  # (T, B, V): softmax cross-entropy: p - onehot(y), weighted by the mask
        np.put_along_axis(dlogits, y.T[..., None], picked[..., None] - 1, axis=2)
        dlogits *= (m / n)[..., None]

    # Backward -----------------------------------------------------------------------
    grads["head.W"] += np.einsum("tbh,tbv->hv", top, dlogits)
    grads["head.b"] += dlogits.sum(axis=(0, 1))
    dh_seq = dlogits @ params["head.W"].T  # (T, B, H) into the top layer's h
    for k in reversed(range(L)):
        p, lower, cache = caches[k]
        dxW = _backward(spec, p, cache, dh_seq, grads, f"layers.{k}.")
        for g, da in dxW.items():
            grads[f"layers.{k}.b_{g}"] += da.sum(axis=(0, 1))
            if lower is None:  # one-hot input: row lookups of W
                np.add.at(grads[f"layers.{k}.W_{g}"], x.T.ravel(), da.reshape(-1, H))
            else:
                grads[f"layers.{k}.W_{g}"] += np.einsum("tbd,tbh->dh", lower, da)
        if k > 0:
            dh_seq = sum(da @ p[f"W_{g}"].T for g, da in dxW.items())  # (T, B, H) into the layer below's h
        elif spec.embedding:
            dinp = sum(da @ p[f"W_{g}"].T for g, da in dxW.items())  # (T, B, D) into the embedding rows
            np.add.at(grads["embedding"], x.T.ravel(), dinp.reshape(-1, dinp.shape[-1]))
    return loss, grads, final


def _forward(spec: Spec, p: dict[str, np.ndarray], xW: dict[str, np.ndarray], state) -> dict[str, Any]:
    """Run one layer over T steps for a batch; keep every activation (index 0 of h and c is the initial state)."""
    T, B, H = next(iter(xW.values())).shape
    h0, c0 = state
    h = np.empty((T + 1, B, H), h0.dtype)
    h[0] = h0
    cache: dict[str, Any] = {"h": h}
    gates = [g for g in _gates(spec)]
    act = {g: np.empty((T, B, H), h0.dtype) for g in gates}
    cache["act"] = act
    if has_cell_state(spec.cell):
        c = np.empty((T + 1, B, H), h0.dtype)
        c[0] = c0
        tc = np.empty((T, B, H), h0.dtype)
        cache.update(c=c, tanh_c=tc)
        for t in range(T):
            a = {g: xW[g][t] + h[t] @ p[f"U_{g}"] for g in gates}  # (B, H) pre-activations
            if spec.cell == "peephole":
                a["f"] += p["p_f"] * c[t]  # f sees c_prev
                a["i"] += p["p_i"] * c[t]  # i sees c_prev
            f = act["f"][t] = _sigmoid(a["f"])
            g_ = act["c"][t] = np.tanh(a["c"])  # c_tilde
            if spec.cell == "coupled":
                i = 1 - f  # the input gate is 1 - f
            else:
                i = act["i"][t] = _sigmoid(a["i"])
            c[t + 1] = f * c[t] + i * g_
            if spec.cell == "peephole":
                a["o"] += p["p_o"] * c[t + 1]  # o sees the new c
            o = act["o"][t] = _sigmoid(a["o"])
            tc[t] = np.tanh(c[t + 1])
            h[t + 1] = o * tc[t]
    elif spec.cell == "gru":
        q = np.empty((T if spec.reset_after else 0, B, H), h0.dtype)  # U_h h + bU_h, reset after only
        cache["q"] = q
        for t in range(T):
            z = act["z"][t] = _sigmoid(xW["z"][t] + h[t] @ p["U_z"])
            r = act["r"][t] = _sigmoid(xW["r"][t] + h[t] @ p["U_r"])
            if spec.reset_after:
                q[t] = h[t] @ p["U_h"] + p["bU_h"]  # (B, H) reset after the product
                ht = act["h"][t] = np.tanh(xW["h"][t] + r * q[t])
            else:
                ht = act["h"][t] = np.tanh(xW["h"][t] + (r * h[t]) @ p["U_h"])
            h[t + 1] = (1 - z) * h[t] + z * ht
    else:  # rnn
        for t in range(T):
            h[t + 1] = act["h"][t] = np.tanh(xW["h"][t] + h[t] @ p["U_h"])
    return cache


def _backward(
    spec: Spec,
    p: dict[str, np.ndarray],
    cache: dict[str, Any],
    dh_seq: np.ndarray,
    grads: dict[str, np.ndarray] | None,
    pre: str,
    keep: dict[str, np.ndarray] | None = None,
) -> dict[str, np.ndarray]:
    """Backpropagate dL/dh (T, B, H) through one layer's first T steps; add dU (and peepholes, bU_h) to grads
    (None: no weight gradients, as an attribution needs none); return dL/d(xW) (T, B, H) per gate.

    ``keep`` (model/attribution.py): a dict that gets the running dL/dh_t (and dL/dc_t) of every step, (T, B, H)
    under "h" (and "c"): each the gradient through everything after it, the later steps and the layers above."""
    h, act = cache["h"], cache["act"]
    T, B, H = dh_seq.shape
    gates = list(act)
    if has_cell_state(spec.cell):  # every gate's dL/d(xW) side by side: one product a step through all their U
        dxW_all = np.empty((T, B, len(gates) * H), h.dtype)
        dxW = {g: dxW_all[..., j * H : (j + 1) * H] for j, g in enumerate(gates)}  # (T, B, H) views
        U_T = np.concatenate([p[f"U_{g}"] for g in gates], axis=1).T  # (G*H, H)
    else:
        dxW = {g: np.empty((T, B, H), h.dtype) for g in gates}
    dh_all = np.empty((T, B, H), h.dtype)  # dL/dh_t, the running total at each step
    dh_next = np.zeros((B, H), h.dtype)  # from step t+1 into h_t
    if has_cell_state(spec.cell):
        c, tc = cache["c"][: T + 1], cache["tanh_c"][:T]
        f, g, o = act["f"][:T], act["c"][:T], act["o"][:T]  # (T, B, H) each
        coupled, peephole = spec.cell == "coupled", spec.cell == "peephole"
        i = 1 - f if coupled else act["i"][:T]
        # Each step's local derivatives, every step at once (none depends on the gradient), in place:
        o_h = 1 - o  # d a_o / d h_t = tanh(c)*o*(1-o): through h = o*tanh(c), then o's sigmoid
        o_h *= o
        o_h *= tc
        c_h = tc * tc  # d c_t / d h_t = o*(1 - tanh(c)^2): through h = o*tanh(c)
        np.subtract(1, c_h, out=c_h)
        c_h *= o
        n = len(gates) - 1  # the gates c_t feeds besides o: f, (i,) c
        from_c = np.empty((n, T, B, H), h.dtype)  # d a_g / d c_t for those gates
        f_c, g_c = from_c[0], from_c[n - 1]
        np.subtract(1, f, out=f_c)  # through f*c_prev (+ (1-f)*c_tilde), then f's sigmoid
        f_c *= f
        f_c *= c[:-1] - g if coupled else c[:-1]
        if not coupled:
            i_c = from_c[1]  # through i*c_tilde, then i's sigmoid
            np.subtract(1, i, out=i_c)
            i_c *= i
            i_c *= g
        np.multiply(g, g, out=g_c)  # into c_tilde, then its tanh: i*(1 - c_tilde^2)
        np.subtract(1, g_c, out=g_c)
        g_c *= i
        i_c = from_c[1] if not coupled else f_c  # (a coupled cell has no input gate: never read)
        dc_all = np.empty((T, B, H), h.dtype)  # dL/dc_t, the running total at each step
        dc_next = np.zeros((B, H), h.dtype)
        da_i = dxW["i"] if not coupled else dxW["f"]
        arrays = (dh_seq, dh_all, dc_all, dxW_all, o_h, c_h, f_c, i_c, g_c, f, dxW["o"], dxW["f"], da_i, dxW["c"])
        steps = zip(*(a[::-1] for a in arrays))  # step t's rows, from the last step back (views: no indexing)
        for dh_t, dh, dc, dxW_t, oh, ch, fc, ic, gc, f_t, da_o, da_f, da_i_t, da_g in steps:
            np.add(dh_t, dh_next, out=dh)  # h_t feeds the loss (or the layer above) and step t+1
            np.multiply(dh, oh, out=da_o)  # through h = o*tanh(c), then o's sigmoid
            np.multiply(dh, ch, out=dc)  # through h = o*tanh(c), into c_t ...
            dc += dc_next  # ... which also feeds c_{t+1}
            if peephole:
                dc += da_o * p["p_o"]  # o saw the new c
            np.multiply(dc, fc, out=da_f)  # through f*c_prev, then f's sigmoid
            if not coupled:
                np.multiply(dc, ic, out=da_i_t)  # through i*c_tilde, then i's sigmoid
            np.multiply(dc, gc, out=da_g)  # into c_tilde, then its tanh
            np.multiply(dc, f_t, out=dc_next)  # through f*c_prev into c_{t-1}
            if peephole:
                dc_next += da_f * p["p_f"] + da_i_t * p["p_i"]  # f and i saw c_prev
            np.dot(dxW_t, U_T, out=dh_next)  # through U into h_{t-1}
        if keep is not None:
            keep.update(c=dc_all, h=dh_all)
        if grads is not None and peephole:
            grads[pre + "p_o"] += (dxW["o"] * c[1:]).sum((0, 1))
            grads[pre + "p_f"] += (dxW["f"] * c[:-1]).sum((0, 1))
            grads[pre + "p_i"] += (dxW["i"] * c[:-1]).sum((0, 1))
    elif spec.cell == "gru":
        q = cache["q"]
        for t in reversed(range(T)):
            z, r, ht = act["z"][t], act["r"][t], act["h"][t]
            dh = np.add(dh_seq[t], dh_next, out=dh_all[t])  # h_t feeds the loss and step t+1
            da_z = dh * (ht - h[t]) * z * (1 - z)  # through h = (1-z)*h_prev + z*h_tilde, then z's sigmoid
            da_h = dh * z * (1 - ht**2)  # into h_tilde, then its tanh
            dh_prev = dh * (1 - z)  # the kept share of h_prev
            if spec.reset_after:
                da_r = da_h * q[t] * r * (1 - r)  # through r*(U_h h + bU_h), then r's sigmoid
                dh_prev += (da_h * r) @ p["U_h"].T  # into U_h h + bU_h, through U_h into h_prev
            else:
                drh = da_h @ p["U_h"].T  # into r*h_prev
                da_r = drh * h[t] * r * (1 - r)  # through r*h_prev, then r's sigmoid
                dh_prev += drh * r  # through r*h_prev into h_prev
            dxW["z"][t], dxW["r"][t], dxW["h"][t] = da_z, da_r, da_h
            dh_next = dh_prev + da_z @ p["U_z"].T + da_r @ p["U_r"].T  # through U_z, U_r into h_prev
    else:  # rnn
        for t in reversed(range(T)):
            dh = np.add(dh_seq[t], dh_next, out=dh_all[t])  # h_t feeds the loss (or the layer above) and step t+1
            da = dxW["h"][t] = dh * (1 - act["h"][t] ** 2)  # through h = tanh(a)
            dh_next = da @ p["U_h"].T  # through U into h_{t-1}
    if keep is not None and "h" not in keep:
        keep["h"] = dh_all
    if grads is not None:  # dU = the sum over steps of h_{t-1}^T da_t: one product for every step
        if has_cell_state(spec.cell):
            dU = np.tensordot(h[:T], dxW_all, axes=([0, 1], [0, 1]))  # (H, G*H)
            for j, g_ in enumerate(gates):
                grads[pre + f"U_{g_}"] += dU[:, j * H : (j + 1) * H]
        else:  # a GRU's U_h sees r*h_prev, or sits inside the reset: below
            for g_ in gates[:2] if spec.cell == "gru" else gates:
                grads[pre + f"U_{g_}"] += np.tensordot(h[:T], dxW[g_], axes=([0, 1], [0, 1]))  # (H, H)
        if spec.cell == "gru":
            r_all = act["r"][:T]  # (T, B, H)
            if spec.reset_after:
                dq = dxW["h"] * r_all  # into U_h h + bU_h
                grads[pre + "U_h"] += np.tensordot(h[:T], dq, axes=([0, 1], [0, 1]))
                grads[pre + "bU_h"] += dq.sum((0, 1))
            else:
                grads[pre + "U_h"] += np.tensordot(r_all * h[:T], dxW["h"], axes=([0, 1], [0, 1]))  # U_h saw r*h_prev
    return dxW
