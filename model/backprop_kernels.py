"""Compiled backpropagation through time over one sequence, for attribution (model/attribution.py): a forward pass
that keeps what the backward pass needs, and the backward pass ``for t in reversed(range(T))`` with the recurrent
matrix product done per step in the loop (numba's np.dot: a BLAS matrix-vector product).

The equations are model/backprop.py's (colah 2015; Gers & Schmidhuber 2000 for peepholes; Cho et al. 2014 for the
GRU, both reset conventions), in the cells' fused layouts (model/cells.py) with the cells' own weights: a sigmoid
gate's columns are halved, so its fused pre-activation is z = a/2 and its activation s2(z) = σ(2z) = σ(a). Every
gradient here is taken with respect to the fused z, so

    d gate / d z = 2 gate (1 - gate)  (sigmoid gates)      1 - gate^2  (tanh candidates)

and the products with the halved W, U and peephole weights give the true gradients back: U_fused @ dz = U @ da.
Gradient × input is then sum_k dz_k * (x @ W_fused)_k, the same number as with the unhalved weights.

Arrays of one layer (T steps; G*H the fused width; index 0 of ``C`` and ``Hs`` is the initial state):
    xW  (T, G*H)    the input's share of every gate, with the bias        A   (T, G*H)  the gates' activations
    C   (T+1, H)    cell states (the LSTM family)                         Hs  (T+1, H)  hidden states
    TC  (T, H)      tanh(C_t)                                             Q   (T, H)    a reset-after GRU's U_h h + bU_h
    dh  (T, H)      d score / d h_t from above (the head, or the layer above), one per step
    dZ  (T, G*H)    out: d score / d z_t            dH, dC (T, H)  out: the running d score / d h_t and / d C_t

The forward kernels are float32 (they use model/kernels.py's s2 and tanh); the backward kernels take any float
dtype (``one`` is 1 in that dtype, so no constant widens float32 to float64).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .cells import GRU, Cell, Peephole
from .kernels import OPTS, s2, tanh

f32 = np.float32


# Forward, float32 -----------------------------------------------------------------------------------------------


@njit(**OPTS)
def lstm_family_forward(xW, U, h0, c0, p_f, p_i, p_o, io, oo, go, coupled, peep, A, C, Hs, TC):
    """LSTM, peephole and coupled cells: f, i, o = σ; c_tilde = tanh; c = f*c_prev + i*c_tilde (coupled: i = 1 - f);
    h = o*tanh(c). ``io``, ``oo``, ``go``: where i, o and c_tilde start in the fused layout (f at 0; a coupled cell
    has no i column). p_f, p_i, p_o (H,): halved peephole weights, read when ``peep`` (zeros for the others)."""
    T, H = xW.shape[0], h0.shape[0]
    Hs[0] = h0
    C[0] = c0
    for t in range(T):
        zu = np.dot(Hs[t], U)  # (G*H,) the recurrent share, h_{t-1} @ U
        x, a, cp, cn, hn, tc = xW[t], A[t], C[t], C[t + 1], Hs[t + 1], TC[t]
        if coupled:  # the branch outside the unit loops: each one vectorizes
            for j in range(H):
                f = s2(x[j] + zu[j])  # forget gate
                g = tanh(x[go + j] + zu[go + j])  # c_tilde
                c = g + f * (cp[j] - g)  # c = f*c_prev + (1 - f)*c_tilde: the input gate is 1 - f
                o = s2(x[oo + j] + zu[oo + j])  # output gate
                th = tanh(c)
                a[j] = f
                a[oo + j] = o
                a[go + j] = g
                cn[j] = c
                tc[j] = th
                hn[j] = o * th  # h = o*tanh(c)
        elif not peep:
            for j in range(H):
                f = s2(x[j] + zu[j])  # forget gate
                i = s2(x[io + j] + zu[io + j])  # input gate
                g = tanh(x[go + j] + zu[go + j])  # c_tilde
                c = f * cp[j] + i * g  # the new cell state
                o = s2(x[oo + j] + zu[oo + j])  # output gate
                th = tanh(c)
                a[j] = f
                a[io + j] = i
                a[oo + j] = o
                a[go + j] = g
                cn[j] = c
                tc[j] = th
                hn[j] = o * th  # h = o*tanh(c)
        else:
            for j in range(H):
                f = s2(x[j] + zu[j] + p_f[j] * cp[j])  # forget gate (a peephole's sees c_prev)
                i = s2(x[io + j] + zu[io + j] + p_i[j] * cp[j])  # input gate (likewise)
                g = tanh(x[go + j] + zu[go + j])  # c_tilde
                c = f * cp[j] + i * g  # the new cell state
                o = s2(x[oo + j] + zu[oo + j] + p_o[j] * c)  # output gate (a peephole's sees the new c)
                th = tanh(c)
                a[j] = f
                a[io + j] = i
                a[oo + j] = o
                a[go + j] = g
                cn[j] = c
                tc[j] = th
                hn[j] = o * th  # h = o*tanh(c)


@njit(**OPTS)
def gru_after_forward(xW, U, bU_h, h0, A, Hs, Q):
    """Reset after the product: z, r = σ; h_tilde = tanh(x_h + r*(U_h h + bU_h)); h = h + z*(h_tilde - h).
    Layout [z | r | h_tilde]; U (H, 3H) fused."""
    T, H = xW.shape[0], h0.shape[0]
    Hs[0] = h0
    for t in range(T):
        zu = np.dot(Hs[t], U)  # (3H,) h_{t-1} @ U
        x, a, hp, hn, q = xW[t], A[t], Hs[t], Hs[t + 1], Q[t]
        for j in range(H):
            z = s2(x[j] + zu[j])
            r = s2(x[H + j] + zu[H + j])
            qj = zu[2 * H + j] + bU_h[j]  # U_h h + bU_h
            ht = tanh(x[2 * H + j] + r * qj)
            a[j] = z
            a[H + j] = r
            a[2 * H + j] = ht
            q[j] = qj
            hn[j] = hp[j] + z * (ht - hp[j])


@njit(**OPTS)
def gru_before_forward(xW, U_zr, U_h, h0, A, Hs):
    """Reset before the product (colah): z, r = σ; h_tilde = tanh(x_h + U_h (r*h)); h = h + z*(h_tilde - h)."""
    T, H = xW.shape[0], h0.shape[0]
    Hs[0] = h0
    rh = np.empty(H, f32)  # r*h_prev
    for t in range(T):
        zu = np.dot(Hs[t], U_zr)  # (2H,) h_{t-1} @ U_zr
        x, a, hp, hn = xW[t], A[t], Hs[t], Hs[t + 1]
        for j in range(H):
            a[j] = s2(x[j] + zu[j])
            r = s2(x[H + j] + zu[H + j])
            a[H + j] = r
            rh[j] = r * hp[j]
        hu = np.dot(rh, U_h)  # (H,) (r*h_prev) @ U_h
        for j in range(H):
            ht = tanh(x[2 * H + j] + hu[j])
            a[2 * H + j] = ht
            hn[j] = hp[j] + a[j] * (ht - hp[j])


@njit(**OPTS)
def rnn_forward(xW, U, h0, Hs):
    """h = tanh(x W + h U + b); Hs[1:] is also the record of the one gate."""
    T, H = xW.shape[0], h0.shape[0]
    Hs[0] = h0
    for t in range(T):
        zu = np.dot(Hs[t], U)  # (H,)
        x, hn = xW[t], Hs[t + 1]
        for j in range(H):
            hn[j] = tanh(x[j] + zu[j])


# Backward, any float dtype --------------------------------------------------------------------------------------


@njit(**OPTS)
def lstm_family_backward(dh, A, C, TC, U, p_f, p_i, p_o, io, oo, go, coupled, peep, one, dZ, dH, dC):
    """Backpropagate dh (T, H) through an LSTM-family layer's T steps (layout as ``lstm_family_forward``)."""
    T, H = dh.shape
    two = one + one
    dh_next = np.zeros(H, dh.dtype)  # from step t+1 into h_t
    dc_next = np.zeros(H, dh.dtype)  # from step t+1 into c_t
    for t in range(T - 1, -1, -1):
        a, cp, tc, dz, dht, dct = A[t], C[t], TC[t], dZ[t], dH[t], dC[t]
        if coupled:  # the branch outside the unit loops: each one vectorizes
            for j in range(H):
                d = dh[t, j] + dh_next[j]  # h_t feeds the score (or the layer above) and step t+1
                f, o, g = a[j], a[oo + j], a[go + j]
                do = d * tc[j] * two * o * (one - o)  # through h = o*tanh(c), then o's sigmoid
                dc = d * o * (one - tc[j] * tc[j]) + dc_next[j]  # into c_t, which also feeds c_{t+1}
                dz[j] = dc * (cp[j] - g) * two * f * (one - f)  # through f*(c_prev - c_tilde), then f's sigmoid
                dz[oo + j] = do
                dz[go + j] = dc * (one - f) * (one - g * g)  # through (1-f)*c_tilde, then its tanh
                dc_next[j] = dc * f  # through f*c_prev into c_{t-1}
                dht[j] = d
                dct[j] = dc
        else:
            for j in range(H):
                d = dh[t, j] + dh_next[j]  # h_t feeds the score (or the layer above) and step t+1
                f, i, o, g = a[j], a[io + j], a[oo + j], a[go + j]
                do = d * tc[j] * two * o * (one - o)  # through h = o*tanh(c), then o's sigmoid
                dc = d * o * (one - tc[j] * tc[j]) + dc_next[j] + do * p_o[j]  # into c_t; it feeds c_{t+1}; o saw it
                df = dc * cp[j] * two * f * (one - f)  # through f*c_prev, then f's sigmoid
                di = dc * g * two * i * (one - i)  # through i*c_tilde, then i's sigmoid
                dz[j] = df
                dz[io + j] = di
                dz[oo + j] = do
                dz[go + j] = dc * i * (one - g * g)  # into c_tilde, then its tanh
                dc_next[j] = dc * f + df * p_f[j] + di * p_i[j]  # through f*c_prev into c_{t-1}; f and i saw it
                dht[j] = d
                dct[j] = dc
        dh_next = np.dot(U, dz)  # (H,) through U into h_{t-1}


@njit(**OPTS)
def gru_after_backward(dh, A, Hs, Q, U, one, dZ, dH):
    """Backpropagate through a reset-after GRU layer (``gru_after_forward``)."""
    T, H = dh.shape
    two = one + one
    dh_next = np.zeros(H, dh.dtype)
    keep = np.empty(H, dh.dtype)  # the kept share (1-z) of h_prev
    v = np.empty(3 * H, dh.dtype)  # d score / d (h_{t-1} @ U), the fused recurrent share
    for t in range(T - 1, -1, -1):
        a, hp, q, dz = A[t], Hs[t], Q[t], dZ[t]
        for j in range(H):
            d = dh[t, j] + dh_next[j]  # h_t feeds the score and step t+1
            z, r, ht = a[j], a[H + j], a[2 * H + j]
            dzz = d * (ht - hp[j]) * two * z * (one - z)  # through h = h_prev + z*(h_tilde - h_prev), z's sigmoid
            dzh = d * z * (one - ht * ht)  # into h_tilde, then its tanh
            dzr = dzh * q[j] * two * r * (one - r)  # through r*(U_h h + bU_h), then r's sigmoid
            dz[j] = dzz
            dz[H + j] = dzr
            dz[2 * H + j] = dzh
            v[j] = dzz
            v[H + j] = dzr
            v[2 * H + j] = dzh * r  # into U_h h + bU_h
            keep[j] = d * (one - z)
            dH[t, j] = d
        dh_next = keep + np.dot(U, v)  # (H,) the kept share, and through U into h_{t-1}


@njit(**OPTS)
def gru_before_backward(dh, A, Hs, U_zr, U_h, one, dZ, dH):
    """Backpropagate through a reset-before GRU layer (``gru_before_forward``)."""
    T, H = dh.shape
    two = one + one
    dh_next = np.zeros(H, dh.dtype)
    keep = np.empty(H, dh.dtype)
    dzh = np.empty(H, dh.dtype)  # d score / d h_tilde's pre-activation
    v = np.empty(2 * H, dh.dtype)  # d score / d (h_{t-1} @ U_zr)
    for t in range(T - 1, -1, -1):
        a, hp, dz = A[t], Hs[t], dZ[t]
        for j in range(H):
            d = dh[t, j] + dh_next[j]  # h_t feeds the score and step t+1
            z, ht = a[j], a[2 * H + j]
            v[j] = dz[j] = d * (ht - hp[j]) * two * z * (one - z)  # through h's mix, then z's sigmoid
            dzh[j] = dz[2 * H + j] = d * z * (one - ht * ht)  # into h_tilde, then its tanh
            keep[j] = d * (one - z)
            dH[t, j] = d
        drh = np.dot(U_h, dzh)  # (H,) through U_h into r*h_prev
        for j in range(H):
            r = a[H + j]
            v[H + j] = dz[H + j] = drh[j] * hp[j] * two * r * (one - r)  # through r*h_prev, then r's sigmoid
            keep[j] += drh[j] * r  # through r*h_prev into h_prev
        dh_next = keep + np.dot(U_zr, v)  # (H,) through U_z, U_r into h_{t-1}


@njit(**OPTS)
def rnn_backward(dh, Hs, U, one, dZ, dH):
    """Backpropagate through a plain RNN layer (``rnn_forward``)."""
    T, H = dh.shape
    dh_next = np.zeros(H, dh.dtype)
    for t in range(T - 1, -1, -1):
        hn, dz = Hs[t + 1], dZ[t]
        for j in range(H):
            d = dh[t, j] + dh_next[j]  # h_t feeds the score (or the layer above) and step t+1
            dz[j] = d * (one - hn[j] * hn[j])  # through h = tanh(a)
            dH[t, j] = d
        dh_next = np.dot(U, dz)  # (H,) through U into h_{t-1}


# One layer, from Python ---------------------------------------------------------------------------------------


def _family(cell: Cell) -> tuple[np.ndarray, np.ndarray, np.ndarray, int, int, int, bool, bool]:
    """An LSTM-family cell's halved peephole weights (zeros without) and where i, o, c_tilde start in its layout."""
    H = cell.hidden_size
    zero = np.zeros(H, cell.dtype)
    if isinstance(cell, Peephole):  # [f | i | c_tilde | o]
        return cell.P_fi[0], cell.P_fi[1], cell.p_o, H, 3 * H, 2 * H, False, True
    if cell.kind == "coupled":  # [f | o | c_tilde]
        return zero, zero, zero, 0, H, 2 * H, True, False
    return zero, zero, zero, H, 2 * H, 3 * H, False, False  # [f | i | o | c_tilde]


def forward(cell: Cell, xW: np.ndarray) -> dict[str, np.ndarray]:
    """One layer over xW (T, G*H) from the zero state, keeping what ``backward`` needs: A, Hs, and C, TC (the
    LSTM family) or Q (a reset-after GRU). Compiled for float32; other dtypes run the cell's own NumPy loop."""
    T, H = xW.shape[0], cell.hidden_size
    dt = cell.dtype
    h0 = np.zeros(H, dt)
    out: dict[str, np.ndarray] = {"Hs": np.empty((T + 1, H), dt)}
    if cell.has_c:
        out.update(A=np.empty_like(xW), C=np.empty((T + 1, H), dt), TC=np.empty((T, H), dt))
    elif cell.kind == "gru":
        out["A"] = np.empty_like(xW)
        if cell.reset_after:  # type: ignore[attr-defined]
            out["Q"] = np.empty((T, H), dt)
    if dt != np.float32:
        return _numpy_forward(cell, xW, out)
    if cell.has_c:
        lstm_family_forward(xW, cell.U, h0, h0, *_family(cell), out["A"], out["C"], out["Hs"], out["TC"])
    elif isinstance(cell, GRU) and cell.reset_after:
        gru_after_forward(xW, cell.U, cell.bU_h, h0, out["A"], out["Hs"], out["Q"])
    elif isinstance(cell, GRU):
        gru_before_forward(xW, cell.U_zr, cell.U_h, h0, out["A"], out["Hs"])
    else:
        rnn_forward(xW, cell.U, h0, out["Hs"])
    return out


def _numpy_forward(cell: Cell, xW: np.ndarray, out: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """``forward`` by the cell's NumPy ``run`` (a float64 network: the checks), its gates packed in the fused layout."""
    H = cell.hidden_size
    gates, _ = cell.run(xW.copy(), cell.zero_state())
    out["Hs"][0], out["Hs"][1:] = 0, gates["h"]
    name = {"c": "c_tilde", "h": "h_tilde"}
    if "A" in out:
        for j, g in enumerate(cell.order):
            out["A"][:, j * H : (j + 1) * H] = gates[name.get(g, g)]
    if cell.has_c:
        out["C"][0], out["C"][1:] = 0, gates["c"]
        out["TC"][:] = np.tanh(gates["c"])
    if "Q" in out:
        out["Q"][:] = out["Hs"][:-1] @ cell.U[:, 2 * H :] + cell.bU_h  # type: ignore[attr-defined]
    return out


def backward(
    cell: Cell, kept: dict[str, np.ndarray], dh: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Backpropagate dh (T', H) through the first T' steps of ``forward``'s ``kept``: d score / d z (T', G*H) in
    the fused layout, and the running d score / d h_t and d score / d C_t (T', H) (None without C)."""
    T, H = dh.shape
    dt = kept["Hs"].dtype
    one = dt.type(1)
    dh = np.ascontiguousarray(dh, dt)
    dZ = np.empty((T, cell.U.shape[1]), dt)
    dH = np.empty((T, H), dt)
    if cell.has_c:
        dC = np.empty((T, H), dt)
        A, C, TC = kept["A"][:T], kept["C"][: T + 1], kept["TC"][:T]
        lstm_family_backward(dh, A, C, TC, cell.U, *_family(cell), one, dZ, dH, dC)
        return dZ, dH, dC
    if isinstance(cell, GRU) and cell.reset_after:
        gru_after_backward(dh, kept["A"][:T], kept["Hs"][: T + 1], kept["Q"][:T], cell.U, one, dZ, dH)
    elif isinstance(cell, GRU):
        gru_before_backward(dh, kept["A"][:T], kept["Hs"][: T + 1], cell.U_zr, cell.U_h, one, dZ, dH)
    else:
        rnn_backward(dh, kept["Hs"][: T + 1], cell.U, one, dZ, dH)
    return dZ, dH, None
