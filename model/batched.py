"""The batched recurrence: B documents traced together, each step one BLAS product and one compiled pass.

    for each layer k, each direction:
        for s in range(T):                          # T = the longest document; n(s) of them still run
            zu[:n] = h[:n] @ U                      # (n, G*H) BLAS, matrix-matrix
            kernel(X, rows[s], ..., zu, h, c, n)    # model/kernels.py: gates, state, records, one pass

Documents are sorted longest first, so the documents still running at step s are the first n(s)
rows: an ended document costs nothing. A row reads its input share of the gates from ``X`` at
``rows[s, b]`` and writes its gates at time ``tpos[s, b]`` of document ``dest[b]``: a forward
direction reads x_s, a backward one reads x_{T_b-1-s} of its own document (so it starts at that
document's last step, as ``net.trace`` of that document alone does), and both write in time order,
straight into the trace's batch-major arrays (N, T, width): a document's rows are one block.

Layer 0 of a text model whose token table exists (``Network._table``: one row of x @ W + b per
token) reads the table itself, a row per token id: no (T, B, G*H) projection is made. Otherwise
(vectors, an embedding too large for a table, layers above) the input shares are one product over
all steps of the batch, as in ``net.trace``.

Only the gates asked for are kept (h of the layers below the top is always computed, not always
kept); the others are written into a small scratch row. The kernels exist for float32 networks;
``Network.trace_batch`` uses the NumPy recurrence of ``cells.Cell.run_batch`` for others.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from types import ModuleType

import numpy as np

from .cells import GATES, GRU, LSTM, RNN, Cell, Coupled, Peephole, ProjectedLSTM
from .errors import Cancelled

_kernels: ModuleType | None = None  # model/kernels.py, imported at the first compiled batch: numba costs a
_tried = False  # second and ~100 MB, which a server that never batches (or a notebook's import) need not pay


def _load() -> ModuleType | None:
    """model.kernels, or None when numba cannot be imported (a broken install: the NumPy path still traces)."""
    global _kernels, _tried
    if not _tried:
        _tried = True
        try:
            _kernels = importlib.import_module(".kernels", __package__)
        except ImportError:  # pragma: no cover
            _kernels = None
    return _kernels


f32 = np.float32

#: At most this many sequences left: a plain LSTM's remaining steps run in one compiled loop (kernels.lstm_steps),
#: a matrix-vector product a row. CPU time a document-step on code (H 128): BLAS's (n, 128) @ (128, 512) and the
#: kernel called from Python take 3.7 us at n = 1, 10.6 at 2, 5.1 at 4, 3.8 at 8, 3.0 at 16; the compiled loop
#: 3.6-3.9 us at every n up to 8, 3.8 at 16.
NARROW = 8

#: Whether ``trace_batch`` uses the compiled path where it can (False: the NumPy recurrence, as benches compare).
COMPILED = True


def available(dtype: np.dtype) -> bool:
    """Whether the compiled path runs networks of this dtype (float32, with numba importable)."""
    return COMPILED and dtype == np.float32 and _load() is not None


def run(
    net_cells: list[list[Cell]],
    directions: Sequence[str],
    project: Callable[[int, np.ndarray], np.ndarray],
    lengths: np.ndarray,
    first: tuple[np.ndarray, np.ndarray] | np.ndarray,
    keep: list[set[str]],
    chunk: int,
    stop: Callable[[], bool] | None,
    threads: int = 1,
    init: Sequence[tuple[np.ndarray, np.ndarray | None]] | None = None,
) -> list[dict[str, np.ndarray]]:
    """Every layer over N documents: per layer, gate -> (N, T, width) float32, zeros past each document's end.

    net_cells[k]: layer k's cells in the order of ``directions``; project(k, x (R, D)) -> (R, n*G*H);
    lengths (N,); first: layer 0's input, either (table (V, n*G*H), ids (N, T)) or xW (N, T, n*G*H);
    keep[k]: the gates kept of layer k; chunk: steps between two calls of ``stop``; threads: how many threads
    share the documents (each runs its share's recurrence, rows t, t + threads, ... of the sorted batch);
    init[k]: layer k's starting state of each document, (h (N, width), c (N, H) or None), forward networks only
    (None: zeros; a document traced in pieces carries its state from piece to piece: model/analysis/index.py)."""
    N, T = len(lengths), int(lengths.max())
    assert init is None or all(way == "forward" for way in directions)
    order = np.argsort(-lengths, kind="stable")  # row b of the batch is document order[b]
    dest = order.astype(np.int64)
    L = lengths[order]
    steps = np.arange(T)
    tpos = {
        "forward": np.broadcast_to(steps[:, None], (T, N)).astype(np.int64),
        "backward": np.where(steps[:, None] < L, L - 1 - steps[:, None], 0).astype(np.int64),
    }
    layers: list[dict[str, np.ndarray]] = []
    for k, cells in enumerate(net_cells):
        if k == 0 and isinstance(first, tuple):
            table, ids = first
            X_all, read = table, ids[order]  # (V, n*G*H); (N, T) ids, batch order
        else:
            if k == 0:
                assert isinstance(first, np.ndarray)
                xW = first
            else:
                below = layers[-1]["h"]  # (N, T, width below)
                xW = project(k, below.reshape(N * T, -1)).reshape(N, T, -1)
            X_all, read = xW.reshape(N * T, -1), None
        width = sum(c.out_size for c in cells)
        rec = {g: np.zeros((N, T, width if g == "h" else len(cells) * cells[0].hidden_size), f32) for g in keep[k]}
        col = 0
        for j, (cell, way) in enumerate(zip(cells, directions)):
            GH = cell.W.shape[1]
            X = np.ascontiguousarray(X_all[:, j * GH : (j + 1) * GH])  # one direction's columns
            tp = tpos[way]
            if read is not None:
                rows = read[np.arange(N)[None, :], tp]  # (T, N) the token id each row reads
            else:
                rows = dest[None, :] * T + tp  # (T, N) its own row of xW
            where = f"layer {k} ({way})"
            shares = [np.arange(t, N, threads) for t in range(min(threads, N))]  # each longest first still
            start = [None if init is None else (init[k][0][dest[q]], _c0(init[k][1], dest[q])) for q in shares]
            work = [
                (cell, X, rows[:, q], tp[:, q], dest[q], (L[q][None, :] > steps[:, None]).sum(1), rec, col, chunk, stop)
                for q in shares
            ]
            if len(work) == 1:
                _direction(*work[0], where, start[0])
            else:  # the kernels and BLAS release the GIL: the shares run side by side, never waiting on each other
                with ThreadPoolExecutor(len(work)) as pool:
                    for done in [pool.submit(_direction, *w, where, s0) for w, s0 in zip(work, start)]:
                        done.result()
            col += cell.hidden_size  # a projected LSTM runs forward only: its h and m start at 0 too
        layers.append(rec)
    return layers


def _c0(c: np.ndarray | None, dest: np.ndarray) -> np.ndarray | None:
    return None if c is None else c[dest]


def _direction(
    cell: Cell,
    X: np.ndarray,
    rows: np.ndarray,
    tpos: np.ndarray,
    dest: np.ndarray,
    active: np.ndarray,  # (T,) how many of the rows still run at each step
    rec: dict[str, np.ndarray],
    col: int,
    chunk: int,
    stop: Callable[[], bool] | None,
    where: str,
    start: tuple[np.ndarray, np.ndarray | None] | None = None,
) -> None:
    """One direction of one layer over every step, writing its gates into ``rec`` at units col, col + 1, ...;
    from ``start`` = (h (N, P), c (N, H) or None), this share's rows' starting state (None: zeros)."""
    N, T, H, P = len(dest), rows.shape[0], cell.hidden_size, cell.out_size
    docs = int(dest.max()) + 1  # the records' first axis (this share's rows are some of the documents)
    K = _load()
    assert K is not None  # available() said so
    h = np.zeros((N, P), f32) if start is None else np.array(start[0], f32)  # copies: updated in place
    c = np.zeros((N, H), f32) if start is None or start[1] is None else np.array(start[1], f32)
    zu = np.empty((N, cell.U.shape[1]), f32)
    U, dot = cell.U, np.dot
    own = GATES[cell.kind] if not isinstance(cell, ProjectedLSTM) else ("f", "i", "c_tilde", "c", "o", "m")

    def records(gates: Sequence[str]) -> tuple[tuple[np.ndarray, ...], np.ndarray]:
        outs, on = [], []
        for g in gates:
            if g in rec:
                outs.append(rec[g])
                on.append(1)
            else:  # a scratch row of its own (shared ones would alias: LLVM's vector loop checks that), indexed
                outs.append(np.empty((docs, 1, rec_width(g)), f32))  # by document like the records
                on.append(0)
        return tuple(outs), np.array(on, np.int64)

    def rec_width(g: str) -> int:
        return col + (P if g == "h" else H)

    outs, on = records(own)
    if isinstance(cell, ProjectedLSTM):
        m = np.zeros((N, H), f32)
        h_rec = rec["h"] if "h" in rec else np.empty((docs, 1, P), f32)
        h_on = 1 if "h" in rec else 0
    if isinstance(cell, GRU) and not cell.reset_after:
        zr = np.empty((N, 2 * H), f32)
        rh = np.empty((N, H), f32)
        hu = np.empty((N, H), f32)
        zu = np.empty((N, 2 * H), f32)
    alone = T  # from this step on at most NARROW sequences are left: a plain LSTM runs them in one compiled loop
    if type(cell) is LSTM:
        alone = int(np.searchsorted(-active, -NARROW))  # active never grows
    for s in range(alone):
        if stop is not None and s % chunk == 0 and stop():
            raise Cancelled(f"stopped in {where} after {s} of {T} steps")
        n = int(active[s])
        r, t = rows[s], tpos[s]
        if isinstance(cell, ProjectedLSTM):
            dot(h[:n], U, zu[:n])
            K.lstm(X, r, t, dest, zu, m, c, n, outs, on, col)
            dot(m[:n], cell.W_hr, h[:n])  # (n, P) h = W_hr m
            K.record(h, t * h_on, dest, n, h_rec, 0)
        elif isinstance(cell, (LSTM, Coupled, Peephole)):
            dot(h[:n], U, zu[:n])
            if isinstance(cell, Peephole):
                K.peephole(X, r, t, dest, zu, h, c, n, outs, on, col, cell.P_fi[0], cell.P_fi[1], cell.p_o)
            elif isinstance(cell, Coupled):
                K.coupled(X, r, t, dest, zu, h, c, n, outs, on, col)
            else:
                K.lstm(X, r, t, dest, zu, h, c, n, outs, on, col)
        elif isinstance(cell, GRU):
            if cell.reset_after:
                dot(h[:n], U, zu[:n])
                K.gru_after(X, r, t, dest, zu, h, n, outs, on, col, cell.bU_h)
            else:
                dot(h[:n], cell.U_zr, zu[:n])
                K.gru_gates(X, r, zu, h, rh, n, zr)
                dot(rh[:n], cell.U_h, hu[:n])
                K.gru_state(X, r, t, dest, hu, h, n, zr, outs, on, col)
        elif isinstance(cell, RNN):
            dot(h[:n], U, zu[:n])
            K.rnn(X, r, t, dest, zu, h, n, outs, on, col)
        else:  # pragma: no cover
            raise TypeError(f"no batched kernel for {type(cell).__name__}")
    s = alone
    while s < T:
        if stop is not None and stop():
            raise Cancelled(f"stopped in {where} after {s} of {T} steps")
        s1 = min(T, (s // chunk + 1) * chunk)  # the same chunks as above: stop() before each
        K.lstm_steps(X, rows, tpos, dest, active, s, s1, U, h, c, zu, outs, on, col)
        s = s1
