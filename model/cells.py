"""Recurrent cells: the equations, one class per cell, each recording every gate.

Notation (colah, "Understanding LSTM Networks", 2015; ``*`` is element-wise,
``σ`` the logistic sigmoid). Every gate is an affine map of the input and the
previous hidden state, written ``W_g x + U_g h + b_g`` instead of colah's
``W_g·[h, x] + b_g`` (the same thing, with W_g split in two).

    lstm      f = σ(W_f x + U_f h + b_f)          i = σ(W_i x + U_i h + b_i)
              c_tilde = tanh(W_c x + U_c h + b_c)  c = f*c_prev + i*c_tilde
              o = σ(W_o x + U_o h + b_o)          h = o*tanh(c)
    peephole  (Gers & Schmidhuber 2000) f and i also see c_prev, o sees the new c,
              through diagonal weights: f = σ(... + p_f*c_prev), i = σ(... + p_i*c_prev),
              o = σ(... + p_o*c)
    coupled   one gate decides both: c = f*c_prev + (1 - f)*c_tilde; the trace reports i = 1 - f
    gru       (Cho et al. 2014, as colah draws it) z = σ(W_z x + U_z h + b_z),
              r = σ(W_r x + U_r h + b_r), h_tilde = tanh(W_h x + U_h (r*h) + b_h),
              h = (1 - z)*h_prev + z*h_tilde
              reset_after=True is the PyTorch / cuDNN / ONNX linear_before_reset /
              Keras reset_after form: h_tilde = tanh(W_h x + b_h + r*(U_h h + bU_h)).
              z is always colah's: the share of the new candidate that enters h.
              PyTorch, Keras and ONNX call 1 - z "z"; their importers flip it.
    rnn       h = tanh(W x + U h + b)

Implementation. A cell gets the input projection ``xW = x @ W + b`` for all T
steps at once (one matrix product, done by ``project``) and runs the recurrence
in ``run``. Each step makes the fewest NumPy calls it can, all into preallocated
buffers: the gate pre-activations are written into the projection's own buffer
and turned into activations in place, so that buffer *is* the record of the
gates. Sigmoid gates use σ(a) = 0.5*tanh(a/2) + 0.5, with the halving folded
into their weights once (exact: a multiplication by a power of two), so one
``tanh`` call serves every gate of a step. The loops pass ``out`` positionally
(``add(a, b, out)``): keyword parsing costs ~0.1 µs a call, 7% of a step at H = 128.

Weights come as a dict of per-gate arrays (see ``PARAMS``): ``W_<g>`` (D, H),
``U_<g>`` (H, H), ``b_<g>`` (H,) for every gate g, plus ``p_f``, ``p_i``, ``p_o`` (H,)
for peepholes and ``bU_h`` (H,) for a reset_after GRU. Importers produce this
form; a cell packs it into its fused layout.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from .errors import FormatError

State = tuple[np.ndarray, np.ndarray | None]  # (h (H,), c (H,) or None for gru/rnn)

#: Gate keys of each cell, in the order the diagram draws them.
GATES: dict[str, tuple[str, ...]] = {
    "lstm": ("f", "i", "c_tilde", "c", "o", "h"),
    "peephole": ("f", "i", "c_tilde", "c", "o", "h"),
    "coupled": ("f", "i", "c_tilde", "c", "o", "h"),
    "gru": ("z", "r", "h_tilde", "h"),
    "rnn": ("h",),
}


def _affine(names: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(f"{k}_{g}" for g in names for k in ("W", "U", "b"))


#: The weight names each cell needs (the importers' target structure).
PARAMS: dict[str, tuple[str, ...]] = {
    "lstm": _affine(("f", "i", "c", "o")),
    "peephole": _affine(("f", "i", "c", "o")) + ("p_f", "p_i", "p_o"),
    "coupled": _affine(("f", "c", "o")),
    "gru": _affine(("z", "r", "h")),
    "gru_reset_after": _affine(("z", "r", "h")) + ("bU_h",),
    "rnn": _affine(("h",)),
}


class Cell:
    """A recurrent cell: fused weights, the input projection and the recurrence."""

    kind: ClassVar[str]
    #: Gates in fused-buffer order, and how many of them (from the front) are sigmoids.
    order: ClassVar[tuple[str, ...]]
    n_sigmoid: ClassVar[int]
    has_c: ClassVar[bool] = True

    def __init__(self, params: dict[str, np.ndarray], dtype: type = np.float32):
        self.params = params
        H = params[f"W_{self.order[0]}"].shape[1]
        self.input_size = params[f"W_{self.order[0]}"].shape[0]  # D
        self.hidden_size = H
        half = [0.5] * self.n_sigmoid + [1.0] * (len(self.order) - self.n_sigmoid)
        scale: np.ndarray = np.repeat(np.asarray(half, dtype), H)  # (G*H,)
        self.W = (np.concatenate([params[f"W_{g}"] for g in self.order], 1) * scale).astype(dtype)  # (D, G*H)
        self.U = (np.concatenate([params[f"U_{g}"] for g in self.order], 1) * scale).astype(dtype)  # (H, G*H)
        self.b = (np.concatenate([params[f"b_{g}"] for g in self.order]) * scale).astype(dtype)  # (G*H,)
        self.dtype = np.dtype(dtype)

    def project(self, x: np.ndarray) -> np.ndarray:
        """The input's share of every gate for all steps: x @ W + b, (T, G*H)."""
        xW = x @ self.W  # (T, G*H)
        xW += self.b
        return xW

    @property
    def out_size(self) -> int:
        """The width of h: H, or P for a projected LSTM."""
        return self.U.shape[0]

    def zero_state(self) -> State:
        H = self.hidden_size
        return np.zeros(self.out_size, self.dtype), (np.zeros(H, self.dtype) if self.has_c else None)

    def run(self, xW: np.ndarray, state: State) -> tuple[dict[str, np.ndarray], State]:
        """Run the recurrence over xW (T, G*H), consumed in place; return gates (T, H) and final state."""
        raise NotImplementedError

    def run_batch(self, xW: np.ndarray, state: State) -> tuple[dict[str, np.ndarray], State]:
        """``run`` over B sequences at once: xW (T, B, G*H) time-major, consumed in place, state h (B, P) and
        c (B, H); each step is one matrix-matrix product h (B, P) @ U (P, G*H). Returns gates (T, B, H) and
        the final state (B, ·). Row b never reads another row: a sequence shorter than T reads padding after
        its end, which only its own rows past its end see (the caller keeps rows t < T_b)."""
        raise NotImplementedError


class LSTM(Cell):
    kind = "lstm"
    order = ("f", "i", "o", "c")  # fused layout [f | i | o | c_tilde]
    n_sigmoid = 3

    def run(self, xW, state):
        T, H = xW.shape[0], self.hidden_size
        h, c = state
        Z = xW  # (T, 4H): pre-activations in, activations out
        C = np.empty((T, H), self.dtype)  # cell states
        Hs = np.empty((T, H), self.dtype)  # hidden states
        zU = np.empty(4 * H, self.dtype)  # h @ U
        tmp = np.empty(H, self.dtype)
        half = np.full(3 * H, 0.5, self.dtype)  # an array, not a scalar: ufuncs take it faster
        U, mul, add, tanh, dot = self.U, np.multiply, np.add, np.tanh, np.dot
        S, F, I, O, G = Z[:, : 3 * H], Z[:, :H], Z[:, H : 2 * H], Z[:, 2 * H : 3 * H], Z[:, 3 * H :]
        for z, s, f, i, o, g, c_t, h_t in zip(Z, S, F, I, O, G, C, Hs):
            dot(h, U, zU)  # (4H,) recurrent share
            add(z, zU, z)  # (4H,) pre-activations
            tanh(z, z)  # (4H,) tanh(a/2) for f, i, o; tanh(a) = c_tilde
            mul(s, half, s)  # (3H,) σ(a) = 0.5*tanh(a/2) + 0.5 ...
            add(s, half, s)  # (3H,) ... f, i, o
            mul(f, c, c_t)  # (H,) keep: f*c_prev
            mul(i, g, tmp)  # (H,) write: i*c_tilde
            add(c_t, tmp, c_t)  # (H,) c = f*c_prev + i*c_tilde
            tanh(c_t, tmp)  # (H,)
            mul(o, tmp, h_t)  # (H,) h = o*tanh(c)
            h, c = h_t, c_t
        gates = {"f": F, "i": I, "c_tilde": G, "c": C, "o": O, "h": Hs}
        return gates, (h.copy(), c.copy())

    def run_batch(self, xW, state):
        T, B, H = xW.shape[0], xW.shape[1], self.hidden_size
        h, c = state  # (B, H), (B, H)
        Z = xW  # (T, B, 4H)
        C = np.empty((T, B, H), self.dtype)
        Hs = np.empty((T, B, H), self.dtype)
        zU = np.empty((B, 4 * H), self.dtype)
        tmp = np.empty((B, H), self.dtype)
        U, mul, add, tanh, dot = self.U, np.multiply, np.add, np.tanh, np.dot
        S, F, I, O, G = Z[..., : 3 * H], Z[..., :H], Z[..., H : 2 * H], Z[..., 2 * H : 3 * H], Z[..., 3 * H :]
        for z, s, f, i, o, g, c_t, h_t in zip(Z, S, F, I, O, G, C, Hs):
            dot(h, U, zU)  # (B, 4H) recurrent share of every sequence
            add(z, zU, z)
            tanh(z, z)  # tanh(a/2) for f, i, o; tanh(a) = c_tilde
            mul(s, 0.5, s)  # σ(a) = 0.5*tanh(a/2) + 0.5: f, i, o
            add(s, 0.5, s)
            mul(f, c, c_t)  # f*c_prev
            mul(i, g, tmp)  # i*c_tilde
            add(c_t, tmp, c_t)  # c
            tanh(c_t, tmp)
            mul(o, tmp, h_t)  # h = o*tanh(c)
            h, c = h_t, c_t
        gates = {"f": F, "i": I, "c_tilde": G, "c": C, "o": O, "h": Hs}
        return gates, (h.copy(), c.copy())


class ProjectedLSTM(LSTM):
    """An LSTM whose h is a projection of o*tanh(C) (Sak et al. 2014, "LSTMP"; PyTorch's proj_size):

        m_t = o * tanh(C_t)          # (H,) what a plain LSTM calls h
        h_t = W_hr m_t               # (P,) P < H; here m_t @ W_hr with W_hr (H, P)

    and the gates read h_{t-1} of size P: U is (P, 4H). The trace records m beside h.
    """

    def __init__(self, params, dtype=np.float32):
        super().__init__(params, dtype)
        self.W_hr = np.ascontiguousarray(params["W_hr"], dtype)  # (H, P)

    def run(self, xW, state):
        T, H, P = xW.shape[0], self.hidden_size, self.out_size
        h, c = state  # (P,), (H,)
        Z = xW  # (T, 4H): pre-activations in, activations out
        C = np.empty((T, H), self.dtype)  # cell states
        M = np.empty((T, H), self.dtype)  # m = o*tanh(c), before the projection
        Hs = np.empty((T, P), self.dtype)  # hidden states
        zU = np.empty(4 * H, self.dtype)  # h @ U
        tmp = np.empty(H, self.dtype)
        half = np.full(3 * H, 0.5, self.dtype)
        U, W_hr, mul, add, tanh, dot = self.U, self.W_hr, np.multiply, np.add, np.tanh, np.dot
        S, F, I, O, G = Z[:, : 3 * H], Z[:, :H], Z[:, H : 2 * H], Z[:, 2 * H : 3 * H], Z[:, 3 * H :]
        for z, s, f, i, o, g, c_t, m_t, h_t in zip(Z, S, F, I, O, G, C, M, Hs):
            dot(h, U, zU)  # (4H,) recurrent share, from the projected h
            add(z, zU, z)  # (4H,) pre-activations
            tanh(z, z)  # (4H,) tanh(a/2) for f, i, o; tanh(a) = c_tilde
            mul(s, half, s)  # (3H,) σ(a) = 0.5*tanh(a/2) + 0.5 ...
            add(s, half, s)  # (3H,) ... f, i, o
            mul(f, c, c_t)  # (H,) keep: f*c_prev
            mul(i, g, tmp)  # (H,) write: i*c_tilde
            add(c_t, tmp, c_t)  # (H,) c = f*c_prev + i*c_tilde
            tanh(c_t, tmp)  # (H,)
            mul(o, tmp, m_t)  # (H,) m = o*tanh(c)
            dot(m_t, W_hr, h_t)  # (P,) h = W_hr m
            h, c = h_t, c_t
        gates = {"f": F, "i": I, "c_tilde": G, "c": C, "o": O, "m": M, "h": Hs}
        return gates, (h.copy(), c.copy())

    def run_batch(self, xW, state):
        T, B, H, P = xW.shape[0], xW.shape[1], self.hidden_size, self.out_size
        h, c = state  # (B, P), (B, H)
        Z = xW  # (T, B, 4H)
        C = np.empty((T, B, H), self.dtype)
        M = np.empty((T, B, H), self.dtype)
        Hs = np.empty((T, B, P), self.dtype)
        zU = np.empty((B, 4 * H), self.dtype)
        tmp = np.empty((B, H), self.dtype)
        U, W_hr, mul, add, tanh, dot = self.U, self.W_hr, np.multiply, np.add, np.tanh, np.dot
        S, F, I, O, G = Z[..., : 3 * H], Z[..., :H], Z[..., H : 2 * H], Z[..., 2 * H : 3 * H], Z[..., 3 * H :]
        for z, s, f, i, o, g, c_t, m_t, h_t in zip(Z, S, F, I, O, G, C, M, Hs):
            dot(h, U, zU)  # (B, 4H) from the projected h
            add(z, zU, z)
            tanh(z, z)
            mul(s, 0.5, s)  # f, i, o as sigmoids
            add(s, 0.5, s)
            mul(f, c, c_t)
            mul(i, g, tmp)
            add(c_t, tmp, c_t)  # c = f*c_prev + i*c_tilde
            tanh(c_t, tmp)
            mul(o, tmp, m_t)  # m = o*tanh(c)
            dot(m_t, W_hr, h_t)  # (B, P) h = W_hr m
            h, c = h_t, c_t
        gates = {"f": F, "i": I, "c_tilde": G, "c": C, "o": O, "m": M, "h": Hs}
        return gates, (h.copy(), c.copy())


class Peephole(Cell):
    kind = "peephole"
    order = ("f", "i", "c", "o")  # fused layout [f | i | c_tilde | o]: o waits for the new c
    n_sigmoid = 2  # f, i through the shared tanh; o gets its own

    def __init__(self, params, dtype=np.float32):
        super().__init__(params, dtype)
        H = self.hidden_size
        # o is a sigmoid too: halve its columns (the base class left them whole).
        self.W[:, 3 * H :] *= 0.5
        self.U[:, 3 * H :] *= 0.5
        self.b[3 * H :] *= 0.5
        self.P_fi = (np.stack([params["p_f"], params["p_i"]]) * 0.5).astype(dtype)  # (2, H)
        self.p_o = (params["p_o"] * 0.5).astype(dtype)  # (H,)

    def run(self, xW, state):
        T, H = xW.shape[0], self.hidden_size
        h, c = state
        Z = xW  # (T, 4H)
        C = np.empty((T, H), self.dtype)
        Hs = np.empty((T, H), self.dtype)
        zU = np.empty(4 * H, self.dtype)
        pc = np.empty((2, H), self.dtype)
        tmp = np.empty(H, self.dtype)
        half2, half = np.full((2, H), 0.5, self.dtype), np.full(H, 0.5, self.dtype)
        U, P_fi, p_o = self.U, self.P_fi, self.p_o
        mul, add, tanh, dot = np.multiply, np.add, np.tanh, np.dot
        Z3 = Z.reshape(T, 4, H)
        FI, FIG, F, I, G, O = Z3[:, :2], Z[:, : 3 * H], Z[:, :H], Z[:, H : 2 * H], Z[:, 2 * H : 3 * H], Z[:, 3 * H :]
        for z, fi, fig, f, i, g, o, c_t, h_t in zip(Z, FI, FIG, F, I, G, O, C, Hs):
            dot(h, U, zU)  # (4H,)
            add(z, zU, z)  # (4H,) pre-activations without peepholes
            mul(P_fi, c, pc)  # (2, H) peepholes from c_prev into f and i
            add(fi, pc, fi)  # (2, H)
            tanh(fig, fig)  # (3H,)
            mul(fi, half2, fi)  # (2, H) σ(a) = 0.5*tanh(a/2) + 0.5 ...
            add(fi, half2, fi)  # (2, H) ... f, i
            mul(f, c, c_t)  # (H,)
            mul(i, g, tmp)  # (H,)
            add(c_t, tmp, c_t)  # (H,) c = f*c_prev + i*c_tilde
            mul(p_o, c_t, tmp)  # (H,) peephole from the new c into o
            add(o, tmp, o)  # (H,)
            tanh(o, o)  # (H,)
            mul(o, half, o)  # (H,) ...
            add(o, half, o)  # (H,) ... o
            tanh(c_t, tmp)  # (H,)
            mul(o, tmp, h_t)  # (H,) h = o*tanh(c)
            h, c = h_t, c_t
        gates = {"f": F, "i": I, "c_tilde": G, "c": C, "o": O, "h": Hs}
        return gates, (h.copy(), c.copy())

    def run_batch(self, xW, state):
        T, B, H = xW.shape[0], xW.shape[1], self.hidden_size
        h, c = state
        Z = xW  # (T, B, 4H)
        C = np.empty((T, B, H), self.dtype)
        Hs = np.empty((T, B, H), self.dtype)
        zU = np.empty((B, 4 * H), self.dtype)
        tmp = np.empty((B, H), self.dtype)
        U, p_f, p_i, p_o = self.U, self.P_fi[0], self.P_fi[1], self.p_o
        mul, add, tanh, dot = np.multiply, np.add, np.tanh, np.dot
        FI, FIG, F, I = Z[..., : 2 * H], Z[..., : 3 * H], Z[..., :H], Z[..., H : 2 * H]  # views: Z may be strided
        G, O = Z[..., 2 * H : 3 * H], Z[..., 3 * H :]
        for z, fi, fig, f, i, g, o, c_t, h_t in zip(Z, FI, FIG, F, I, G, O, C, Hs):
            dot(h, U, zU)  # (B, 4H)
            add(z, zU, z)  # pre-activations without peepholes
            mul(p_f, c, tmp)  # peepholes from c_prev into f and i
            add(f, tmp, f)
            mul(p_i, c, tmp)
            add(i, tmp, i)
            tanh(fig, fig)
            mul(fi, 0.5, fi)  # f, i as sigmoids
            add(fi, 0.5, fi)
            mul(f, c, c_t)
            mul(i, g, tmp)
            add(c_t, tmp, c_t)  # c = f*c_prev + i*c_tilde
            mul(p_o, c_t, tmp)  # peephole from the new c into o
            add(o, tmp, o)
            tanh(o, o)
            mul(o, 0.5, o)  # o as a sigmoid
            add(o, 0.5, o)
            tanh(c_t, tmp)
            mul(o, tmp, h_t)  # h = o*tanh(c)
            h, c = h_t, c_t
        gates = {"f": F, "i": I, "c_tilde": G, "c": C, "o": O, "h": Hs}
        return gates, (h.copy(), c.copy())


class Coupled(Cell):
    kind = "coupled"
    order = ("f", "o", "c")  # fused layout [f | o | c_tilde]
    n_sigmoid = 2

    def run(self, xW, state):
        T, H = xW.shape[0], self.hidden_size
        h, c = state
        Z = xW  # (T, 3H)
        C = np.empty((T, H), self.dtype)
        Hs = np.empty((T, H), self.dtype)
        zU = np.empty(3 * H, self.dtype)
        tmp = np.empty(H, self.dtype)
        half = np.full(2 * H, 0.5, self.dtype)
        U, mul, add, sub, tanh, dot = self.U, np.multiply, np.add, np.subtract, np.tanh, np.dot
        S, F, O, G = Z[:, : 2 * H], Z[:, :H], Z[:, H : 2 * H], Z[:, 2 * H :]
        for z, s, f, o, g, c_t, h_t in zip(Z, S, F, O, G, C, Hs):
            dot(h, U, zU)  # (3H,)
            add(z, zU, z)  # (3H,)
            tanh(z, z)  # (3H,)
            mul(s, half, s)  # (2H,) f, o ...
            add(s, half, s)  # (2H,) ... as sigmoids
            sub(c, g, tmp)  # (H,) c_prev - c_tilde
            mul(f, tmp, tmp)  # (H,)
            add(g, tmp, c_t)  # (H,) c = c_tilde + f*(c_prev - c_tilde) = f*c_prev + (1-f)*c_tilde
            tanh(c_t, tmp)  # (H,)
            mul(o, tmp, h_t)  # (H,) h = o*tanh(c)
            h, c = h_t, c_t
        gates = {"f": F, "i": 1 - F, "c_tilde": G, "c": C, "o": O, "h": Hs}
        return gates, (h.copy(), c.copy())

    def run_batch(self, xW, state):
        T, B, H = xW.shape[0], xW.shape[1], self.hidden_size
        h, c = state
        Z = xW  # (T, B, 3H)
        C = np.empty((T, B, H), self.dtype)
        Hs = np.empty((T, B, H), self.dtype)
        zU = np.empty((B, 3 * H), self.dtype)
        tmp = np.empty((B, H), self.dtype)
        U, mul, add, sub, tanh, dot = self.U, np.multiply, np.add, np.subtract, np.tanh, np.dot
        S, F, O, G = Z[..., : 2 * H], Z[..., :H], Z[..., H : 2 * H], Z[..., 2 * H :]
        for z, s, f, o, g, c_t, h_t in zip(Z, S, F, O, G, C, Hs):
            dot(h, U, zU)  # (B, 3H)
            add(z, zU, z)
            tanh(z, z)
            mul(s, 0.5, s)  # f, o as sigmoids
            add(s, 0.5, s)
            sub(c, g, tmp)  # c_prev - c_tilde
            mul(f, tmp, tmp)
            add(g, tmp, c_t)  # c = f*c_prev + (1-f)*c_tilde
            tanh(c_t, tmp)
            mul(o, tmp, h_t)  # h = o*tanh(c)
            h, c = h_t, c_t
        gates = {"f": F, "i": 1 - F, "c_tilde": G, "c": C, "o": O, "h": Hs}
        return gates, (h.copy(), c.copy())


class GRU(Cell):
    kind = "gru"
    order = ("z", "r", "h")  # fused layout [z | r | h_tilde]
    n_sigmoid = 2
    has_c = False

    def __init__(self, params, dtype=np.float32, reset_after: bool = False):
        super().__init__(params, dtype)
        self.reset_after = reset_after
        H = self.hidden_size
        self.U_zr = np.ascontiguousarray(self.U[:, : 2 * H])  # (H, 2H)
        self.U_h = np.ascontiguousarray(self.U[:, 2 * H :])  # (H, H)
        self.bU_h = params["bU_h"].astype(dtype) if reset_after else np.zeros(0, dtype)  # (H,)

    def run(self, xW, state):
        T, H = xW.shape[0], self.hidden_size
        h, _ = state
        Z = xW  # (T, 3H)
        Hs = np.empty((T, H), self.dtype)
        tmp = np.empty(H, self.dtype)
        half = np.full(2 * H, 0.5, self.dtype)
        mul, add, sub, tanh, dot = np.multiply, np.add, np.subtract, np.tanh, np.dot
        S, Zg, R, Ht = Z[:, : 2 * H], Z[:, :H], Z[:, H : 2 * H], Z[:, 2 * H :]
        if self.reset_after:
            U, bU_h = self.U, self.bU_h
            hU = np.empty(3 * H, self.dtype)
            hU_zr, hU_h = hU[: 2 * H], hU[2 * H :]
            for s, z, r, ht, h_t in zip(S, Zg, R, Ht, Hs):
                dot(h, U, hU)  # (3H,) recurrent shares of z, r and the candidate
                add(s, hU_zr, s)  # (2H,)
                tanh(s, s)  # (2H,)
                mul(s, half, s)  # (2H,) z, r ...
                add(s, half, s)  # (2H,) ... as sigmoids
                add(hU_h, bU_h, hU_h)  # (H,) U_h h + bU_h
                mul(r, hU_h, hU_h)  # (H,) reset after the product
                add(ht, hU_h, ht)  # (H,)
                tanh(ht, ht)  # (H,) h_tilde
                sub(ht, h, tmp)  # (H,) h_tilde - h_prev
                mul(z, tmp, tmp)  # (H,)
                add(h, tmp, h_t)  # (H,) h = (1-z)*h_prev + z*h_tilde
                h = h_t
        else:
            U_zr, U_h = self.U_zr, self.U_h
            hU = np.empty(2 * H, self.dtype)
            rh = np.empty(H, self.dtype)
            for s, z, r, ht, h_t in zip(S, Zg, R, Ht, Hs):
                dot(h, U_zr, hU)  # (2H,)
                add(s, hU, s)  # (2H,)
                tanh(s, s)  # (2H,)
                mul(s, half, s)  # (2H,) z, r ...
                add(s, half, s)  # (2H,) ... as sigmoids
                mul(r, h, rh)  # (H,) reset before the product
                dot(rh, U_h, tmp)  # (H,)
                add(ht, tmp, ht)  # (H,)
                tanh(ht, ht)  # (H,) h_tilde
                sub(ht, h, tmp)  # (H,)
                mul(z, tmp, tmp)  # (H,)
                add(h, tmp, h_t)  # (H,) h = (1-z)*h_prev + z*h_tilde
                h = h_t
        gates = {"z": Zg, "r": R, "h_tilde": Ht, "h": Hs}
        return gates, (h.copy(), None)

    def run_batch(self, xW, state):
        T, B, H = xW.shape[0], xW.shape[1], self.hidden_size
        h, _ = state  # (B, H)
        Z = xW  # (T, B, 3H)
        Hs = np.empty((T, B, H), self.dtype)
        tmp = np.empty((B, H), self.dtype)
        mul, add, sub, tanh, dot = np.multiply, np.add, np.subtract, np.tanh, np.dot
        S, Zg, R, Ht = Z[..., : 2 * H], Z[..., :H], Z[..., H : 2 * H], Z[..., 2 * H :]
        if self.reset_after:
            U, bU_h = self.U, self.bU_h
            hU = np.empty((B, 3 * H), self.dtype)
            hU_zr, hU_h = hU[:, : 2 * H], hU[:, 2 * H :]
            for s, z, r, ht, h_t in zip(S, Zg, R, Ht, Hs):
                dot(h, U, hU)  # (B, 3H) recurrent shares of z, r and the candidate
                add(s, hU_zr, s)
                tanh(s, s)
                mul(s, 0.5, s)  # z, r as sigmoids
                add(s, 0.5, s)
                add(hU_h, bU_h, hU_h)  # U_h h + bU_h
                mul(r, hU_h, hU_h)  # reset after the product
                add(ht, hU_h, ht)
                tanh(ht, ht)  # h_tilde
                sub(ht, h, tmp)
                mul(z, tmp, tmp)
                add(h, tmp, h_t)  # h = (1-z)*h_prev + z*h_tilde
                h = h_t
        else:
            U_zr, U_h = self.U_zr, self.U_h
            hU = np.empty((B, 2 * H), self.dtype)
            rh = np.empty((B, H), self.dtype)
            for s, z, r, ht, h_t in zip(S, Zg, R, Ht, Hs):
                dot(h, U_zr, hU)  # (B, 2H)
                add(s, hU, s)
                tanh(s, s)
                mul(s, 0.5, s)  # z, r as sigmoids
                add(s, 0.5, s)
                mul(r, h, rh)  # reset before the product
                dot(rh, U_h, tmp)  # (B, H)
                add(ht, tmp, ht)
                tanh(ht, ht)  # h_tilde
                sub(ht, h, tmp)
                mul(z, tmp, tmp)
                add(h, tmp, h_t)  # h = (1-z)*h_prev + z*h_tilde
                h = h_t
        gates = {"z": Zg, "r": R, "h_tilde": Ht, "h": Hs}
        return gates, (h.copy(), None)


class RNN(Cell):
    kind = "rnn"
    order = ("h",)
    n_sigmoid = 0
    has_c = False

    def run(self, xW, state):
        h, _ = state
        Z = xW  # (T, H): becomes the hidden states
        zU = np.empty(self.hidden_size, self.dtype)
        U, add, tanh, dot = self.U, np.add, np.tanh, np.dot
        for z in Z:
            dot(h, U, zU)  # (H,)
            add(z, zU, z)  # (H,)
            tanh(z, z)  # (H,) h = tanh(W x + U h + b)
            h = z
        return {"h": Z}, (h.copy(), None)

    def run_batch(self, xW, state):
        h, _ = state  # (B, H)
        Z = xW  # (T, B, H): becomes the hidden states
        zU = np.empty((xW.shape[1], self.hidden_size), self.dtype)
        U, add, tanh, dot = self.U, np.add, np.tanh, np.dot
        for z in Z:
            dot(h, U, zU)  # (B, H)
            add(z, zU, z)
            tanh(z, z)  # h = tanh(W x + U h + b)
            h = z
        return {"h": Z}, (h.copy(), None)


CELLS: dict[str, type[Cell]] = {c.kind: c for c in (LSTM, Peephole, Coupled, GRU, RNN)}


def has_cell_state(kind: str) -> bool:
    """Whether cells of this kind carry a cell state C beside h (the LSTM family; not gru or rnn)."""
    return CELLS[kind].has_c


def make_cell(kind: str, params: dict[str, np.ndarray], dtype: type = np.float32, reset_after: bool = False) -> Cell:
    """Build the cell named ``kind`` from per-gate weights."""
    if kind not in CELLS:
        raise FormatError(f"unknown cell type {kind!r}: expected one of {', '.join(CELLS)}")
    if kind == "gru":
        return GRU(params, dtype, reset_after=reset_after)
    if kind == "lstm" and "W_hr" in params:
        return ProjectedLSTM(params, dtype)
    return CELLS[kind](params, dtype)
