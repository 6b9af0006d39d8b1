"""The cells' recurrences with values held by hand: cells.py's loops, step for step, plus edits.

An edit replaces some units of one value of a step the moment it is computed, before anything reads
it, so everything computed from it in that step and after follows (model/interventions.py says what
the user asks for; this module only runs it). Where each value is edited, in a step of each cell:

    lstm      f, i, o, c_tilde   then  c = f*c_prev + i*c_tilde   then  h = o*tanh(c)
              (proj_size: then m = o*tanh(c), then h = W_hr m, P units)
    peephole  f, i, c_tilde      then  c   then  o = σ(... + p_o*c) (o sees the held c)   then  h
    coupled   f, o, c_tilde      then  c = f*c_prev + (1 - f)*c_tilde   then  h
    gru       z, r   then  h_tilde (from r*h_prev, or r*(U_h h + bU_h) reset_after)   then  h
    rnn       h

(an edit point is one of these groups: ``POINTS`` maps a gate key to its point and its offset there).
The recorded gates are the edited values: a trace shows what the model used. A step with no edit makes
exactly the calls cells.py's loop makes, in the same order, so it gives the same bits.

An edit of a point at a step is ``(idx, a, b)``: units ``idx`` of the point's buffer become
``a * value + b`` (``a`` None: ``b`` outright, the usual "set"; ``idx`` None: ``a`` and ``b`` span the whole
buffer, 1 and 0 where nothing is held: a scale costs one multiplication of the buffer, see ``_apply``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .cells import GRU, LSTM, RNN, Cell, Coupled, Peephole, ProjectedLSTM, State

Edit = tuple[Any, np.ndarray | None, Any] | None  # (idx, a, b) at one step (see _apply), or no edit
#: Per edit point: one entry per step.
Edits = dict[str, Sequence[Edit]]


def points(cell: Cell) -> dict[str, tuple[str, int]]:
    """Where each gate key of ``cell`` is edited: gate -> (point, offset of its H units in the point's buffer)."""
    H = cell.hidden_size
    if isinstance(cell, ProjectedLSTM):
        return {
            **{"f": ("z", 0), "i": ("z", H), "o": ("z", 2 * H), "c_tilde": ("z", 3 * H)},
            **{"c": ("c", 0), "m": ("m", 0), "h": ("h", 0)},
        }
    if isinstance(cell, Peephole):
        return {"f": ("z", 0), "i": ("z", H), "c_tilde": ("z", 2 * H), "o": ("o", 0), "c": ("c", 0), "h": ("h", 0)}
    if isinstance(cell, Coupled):
        return {"f": ("z", 0), "o": ("z", H), "c_tilde": ("z", 2 * H), "c": ("c", 0), "h": ("h", 0)}
    if isinstance(cell, LSTM):
        return {"f": ("z", 0), "i": ("z", H), "o": ("z", 2 * H), "c_tilde": ("z", 3 * H), "c": ("c", 0), "h": ("h", 0)}
    if isinstance(cell, GRU):
        return {"z": ("s", 0), "r": ("s", H), "h_tilde": ("ht", 0), "h": ("h", 0)}
    return {"h": ("h", 0)}


def _none(T: int) -> list[Edit]:
    return [None] * T


def _apply(v: np.ndarray, e: tuple[Any, np.ndarray | None, Any]) -> None:
    """One edit of a point's buffer ``v``, in place: ``(idx, None, b)`` sets units idx (an array, or one int)
    to b; ``(None, a, b)``
    multiplies the whole buffer by a (1 where nothing is held) and adds b (None: nothing to add), two calls
    whatever the units; ``(idx, a, b)`` makes units idx a*v + b."""
    idx, a, b = e
    if a is None:
        v[idx] = b
    elif idx is None:
        np.multiply(v, a, v)
        if b is not None:
            np.add(v, b, v)
    else:
        v[idx] = v[idx] * a + b


def run_held(cell: Cell, xW: np.ndarray, state: State, edits: Edits) -> tuple[dict[str, np.ndarray], State]:
    """``cell.run(xW, state)`` with ``edits`` applied: gates (T, H) as recorded (edited), and the final state."""
    T = xW.shape[0]
    get = lambda p: edits.get(p) or _none(T)  # noqa: E731
    if isinstance(cell, ProjectedLSTM):
        return _projected(cell, xW, state, get("z"), get("c"), get("m"), get("h"))
    if isinstance(cell, Peephole):
        return _peephole(cell, xW, state, get("z"), get("o"), get("c"), get("h"))
    if isinstance(cell, Coupled):
        return _coupled(cell, xW, state, get("z"), get("c"), get("h"))
    if isinstance(cell, LSTM):
        return _lstm(cell, xW, state, get("z"), get("c"), get("h"))
    if isinstance(cell, GRU):
        return _gru(cell, xW, state, get("s"), get("ht"), get("h"))
    assert isinstance(cell, RNN)
    return _rnn(cell, xW, state, get("h"))


def _lstm(cell: LSTM, xW, state, ez, ec, eh):
    T, H = xW.shape[0], cell.hidden_size
    h, c = state
    Z = xW  # (T, 4H): pre-activations in, activations out
    C = np.empty((T, H), cell.dtype)
    Hs = np.empty((T, H), cell.dtype)
    zU = np.empty(4 * H, cell.dtype)
    tmp = np.empty(H, cell.dtype)
    half = np.full(3 * H, 0.5, cell.dtype)
    U, mul, add, tanh, dot = cell.U, np.multiply, np.add, np.tanh, np.dot
    S, F, I, O, G = Z[:, : 3 * H], Z[:, :H], Z[:, H : 2 * H], Z[:, 2 * H : 3 * H], Z[:, 3 * H :]
    for z, s, f, i, o, g, c_t, h_t, e_z, e_c, e_h in zip(Z, S, F, I, O, G, C, Hs, ez, ec, eh):
        dot(h, U, zU)  # (4H,) recurrent share
        add(z, zU, z)  # (4H,) pre-activations
        tanh(z, z)  # (4H,) tanh(a/2) for f, i, o; tanh(a) = c_tilde
        mul(s, half, s)  # (3H,) σ(a) = 0.5*tanh(a/2) + 0.5 ...
        add(s, half, s)  # (3H,) ... f, i, o
        if e_z is not None:  # held f, i, o, c_tilde: [f | i | o | c_tilde]
            _apply(z, e_z)
        mul(f, c, c_t)  # (H,) keep: f*c_prev
        mul(i, g, tmp)  # (H,) write: i*c_tilde
        add(c_t, tmp, c_t)  # (H,) c = f*c_prev + i*c_tilde
        if e_c is not None:  # held c: h and the next step read it
            _apply(c_t, e_c)
        tanh(c_t, tmp)  # (H,)
        mul(o, tmp, h_t)  # (H,) h = o*tanh(c)
        if e_h is not None:  # held h: the layer above, the head and the next step read it
            _apply(h_t, e_h)
        h, c = h_t, c_t
    gates = {"f": F, "i": I, "c_tilde": G, "c": C, "o": O, "h": Hs}
    return gates, (h.copy(), c.copy())


def _projected(cell: ProjectedLSTM, xW, state, ez, ec, em, eh):
    T, H, P = xW.shape[0], cell.hidden_size, cell.out_size
    h, c = state  # (P,), (H,)
    Z = xW  # (T, 4H): pre-activations in, activations out
    C = np.empty((T, H), cell.dtype)
    M = np.empty((T, H), cell.dtype)  # m = o*tanh(c), before the projection
    Hs = np.empty((T, P), cell.dtype)
    zU = np.empty(4 * H, cell.dtype)
    tmp = np.empty(H, cell.dtype)
    half = np.full(3 * H, 0.5, cell.dtype)
    U, W_hr, mul, add, tanh, dot = cell.U, cell.W_hr, np.multiply, np.add, np.tanh, np.dot
    S, F, I, O, G = Z[:, : 3 * H], Z[:, :H], Z[:, H : 2 * H], Z[:, 2 * H : 3 * H], Z[:, 3 * H :]
    for z, s, f, i, o, g, c_t, m_t, h_t, e_z, e_c, e_m, e_h in zip(Z, S, F, I, O, G, C, M, Hs, ez, ec, em, eh):
        dot(h, U, zU)  # (4H,) recurrent share, from the projected h
        add(z, zU, z)  # (4H,) pre-activations
        tanh(z, z)  # (4H,)
        mul(s, half, s)  # (3H,) σ(a) = 0.5*tanh(a/2) + 0.5 ...
        add(s, half, s)  # (3H,) ... f, i, o
        if e_z is not None:
            _apply(z, e_z)
        mul(f, c, c_t)  # (H,)
        mul(i, g, tmp)  # (H,)
        add(c_t, tmp, c_t)  # (H,) c = f*c_prev + i*c_tilde
        if e_c is not None:
            _apply(c_t, e_c)
        tanh(c_t, tmp)  # (H,)
        mul(o, tmp, m_t)  # (H,) m = o*tanh(c)
        if e_m is not None:  # held m: the projection reads it
            _apply(m_t, e_m)
        dot(m_t, W_hr, h_t)  # (P,) h = W_hr m
        if e_h is not None:
            _apply(h_t, e_h)
        h, c = h_t, c_t
    gates = {"f": F, "i": I, "c_tilde": G, "c": C, "o": O, "m": M, "h": Hs}
    return gates, (h.copy(), c.copy())


def _peephole(cell: Peephole, xW, state, ez, eo, ec, eh):
    T, H = xW.shape[0], cell.hidden_size
    h, c = state
    Z = xW  # (T, 4H) [f | i | c_tilde | o]
    C = np.empty((T, H), cell.dtype)
    Hs = np.empty((T, H), cell.dtype)
    zU = np.empty(4 * H, cell.dtype)
    pc = np.empty((2, H), cell.dtype)
    tmp = np.empty(H, cell.dtype)
    half2, half = np.full((2, H), 0.5, cell.dtype), np.full(H, 0.5, cell.dtype)
    U, P_fi, p_o = cell.U, cell.P_fi, cell.p_o
    mul, add, tanh, dot = np.multiply, np.add, np.tanh, np.dot
    Z3 = Z.reshape(T, 4, H)
    FI, FIG, F, I, G, O = Z3[:, :2], Z[:, : 3 * H], Z[:, :H], Z[:, H : 2 * H], Z[:, 2 * H : 3 * H], Z[:, 3 * H :]
    for z, fi, fig, f, i, g, o, c_t, h_t, e_z, e_o, e_c, e_h in zip(Z, FI, FIG, F, I, G, O, C, Hs, ez, eo, ec, eh):
        dot(h, U, zU)  # (4H,)
        add(z, zU, z)  # (4H,) pre-activations without peepholes
        mul(P_fi, c, pc)  # (2, H) peepholes from c_prev into f and i
        add(fi, pc, fi)  # (2, H)
        tanh(fig, fig)  # (3H,)
        mul(fi, half2, fi)  # (2, H) σ(a) = 0.5*tanh(a/2) + 0.5 ...
        add(fi, half2, fi)  # (2, H) ... f, i
        if e_z is not None:  # held f, i, c_tilde: [f | i | c_tilde]
            _apply(fig, e_z)
        mul(f, c, c_t)  # (H,)
        mul(i, g, tmp)  # (H,)
        add(c_t, tmp, c_t)  # (H,) c = f*c_prev + i*c_tilde
        if e_c is not None:  # held c: o's peephole, h and the next step read it
            _apply(c_t, e_c)
        mul(p_o, c_t, tmp)  # (H,) peephole from the new c into o
        add(o, tmp, o)  # (H,)
        tanh(o, o)  # (H,)
        mul(o, half, o)  # (H,) ...
        add(o, half, o)  # (H,) ... o
        if e_o is not None:  # held o
            _apply(o, e_o)
        tanh(c_t, tmp)  # (H,)
        mul(o, tmp, h_t)  # (H,) h = o*tanh(c)
        if e_h is not None:
            _apply(h_t, e_h)
        h, c = h_t, c_t
    gates = {"f": F, "i": I, "c_tilde": G, "c": C, "o": O, "h": Hs}
    return gates, (h.copy(), c.copy())


def _coupled(cell: Coupled, xW, state, ez, ec, eh):
    T, H = xW.shape[0], cell.hidden_size
    h, c = state
    Z = xW  # (T, 3H) [f | o | c_tilde]
    C = np.empty((T, H), cell.dtype)
    Hs = np.empty((T, H), cell.dtype)
    zU = np.empty(3 * H, cell.dtype)
    tmp = np.empty(H, cell.dtype)
    half = np.full(2 * H, 0.5, cell.dtype)
    U, mul, add, sub, tanh, dot = cell.U, np.multiply, np.add, np.subtract, np.tanh, np.dot
    S, F, O, G = Z[:, : 2 * H], Z[:, :H], Z[:, H : 2 * H], Z[:, 2 * H :]
    for z, s, f, o, g, c_t, h_t, e_z, e_c, e_h in zip(Z, S, F, O, G, C, Hs, ez, ec, eh):
        dot(h, U, zU)  # (3H,)
        add(z, zU, z)  # (3H,)
        tanh(z, z)  # (3H,)
        mul(s, half, s)  # (2H,) f, o ...
        add(s, half, s)  # (2H,) ... as sigmoids
        if e_z is not None:  # held f (and so i = 1 - f), o, c_tilde
            _apply(z, e_z)
        sub(c, g, tmp)  # (H,) c_prev - c_tilde
        mul(f, tmp, tmp)  # (H,)
        add(g, tmp, c_t)  # (H,) c = f*c_prev + (1-f)*c_tilde
        if e_c is not None:
            _apply(c_t, e_c)
        tanh(c_t, tmp)  # (H,)
        mul(o, tmp, h_t)  # (H,) h = o*tanh(c)
        if e_h is not None:
            _apply(h_t, e_h)
        h, c = h_t, c_t
    gates = {"f": F, "i": 1 - F, "c_tilde": G, "c": C, "o": O, "h": Hs}
    return gates, (h.copy(), c.copy())


def _gru(cell: GRU, xW, state, es, et, eh):
    T, H = xW.shape[0], cell.hidden_size
    h, _ = state
    Z = xW  # (T, 3H) [z | r | h_tilde]
    Hs = np.empty((T, H), cell.dtype)
    tmp = np.empty(H, cell.dtype)
    half = np.full(2 * H, 0.5, cell.dtype)
    mul, add, sub, tanh, dot = np.multiply, np.add, np.subtract, np.tanh, np.dot
    S, Zg, R, Ht = Z[:, : 2 * H], Z[:, :H], Z[:, H : 2 * H], Z[:, 2 * H :]
    after = cell.reset_after
    U, bU_h, U_zr, U_h = cell.U, cell.bU_h, cell.U_zr, cell.U_h
    hU = np.empty(3 * H if after else 2 * H, cell.dtype)
    hU_zr, hU_h = hU[: 2 * H], hU[2 * H :]
    rh = np.empty(H, cell.dtype)
    for s, z, r, ht, h_t, e_s, e_t, e_h in zip(S, Zg, R, Ht, Hs, es, et, eh):
        if after:
            dot(h, U, hU)  # (3H,) recurrent shares of z, r and the candidate
            add(s, hU_zr, s)  # (2H,)
        else:
            dot(h, U_zr, hU)  # (2H,)
            add(s, hU, s)  # (2H,)
        tanh(s, s)  # (2H,)
        mul(s, half, s)  # (2H,) z, r ...
        add(s, half, s)  # (2H,) ... as sigmoids
        if e_s is not None:  # held z, r: [z | r]
            _apply(s, e_s)
        if after:
            add(hU_h, bU_h, hU_h)  # (H,) U_h h + bU_h
            mul(r, hU_h, hU_h)  # (H,) reset after the product
            add(ht, hU_h, ht)  # (H,)
        else:
            mul(r, h, rh)  # (H,) reset before the product
            dot(rh, U_h, tmp)  # (H,)
            add(ht, tmp, ht)  # (H,)
        tanh(ht, ht)  # (H,) h_tilde
        if e_t is not None:  # held h_tilde
            _apply(ht, e_t)
        sub(ht, h, tmp)  # (H,) h_tilde - h_prev
        mul(z, tmp, tmp)  # (H,)
        add(h, tmp, h_t)  # (H,) h = (1-z)*h_prev + z*h_tilde
        if e_h is not None:
            _apply(h_t, e_h)
        h = h_t
    gates = {"z": Zg, "r": R, "h_tilde": Ht, "h": Hs}
    return gates, (h.copy(), None)


def _rnn(cell: RNN, xW, state, eh):
    h, _ = state
    Z = xW  # (T, H): becomes the hidden states
    zU = np.empty(cell.hidden_size, cell.dtype)
    U, add, tanh, dot = cell.U, np.add, np.tanh, np.dot
    for z, e_h in zip(Z, eh):
        dot(h, U, zU)  # (H,)
        add(z, zU, z)  # (H,)
        tanh(z, z)  # (H,) h = tanh(W x + U h + b)
        if e_h is not None:
            _apply(z, e_h)
        h = z
    return {"h": Z}, (h.copy(), None)
