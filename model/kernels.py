"""Compiled step loops for batched traces: one step of every cell's gate math for B sequences in one pass.

The batched recurrence (model/batched.py) makes each step one matrix product in BLAS,
``zu = h @ U  # (B, G*H)``, and one call of the cell's kernel here, which reads each sequence's input
share of the gates (a row of ``X``), adds ``zu``, applies the gates' nonlinearities, updates the state
in place and writes the gates asked for into the trace's arrays, all in one loop over (B, H) that
LLVM vectorizes (numba). NumPy takes a pass over memory per operation and ~10 passes a step; its
float32 ``tanh`` costs 4-5 ns an element here, this one 0.5.

The equations are the cells' (model/cells.py, colah 2015; Gers & Schmidhuber 2000; Cho et al. 2014),
with the same fused layouts and the same halved weights of sigmoid gates: a sigmoid gate's
pre-activation arrives as a/2. Both nonlinearities come from one function,

    s2(z) = 1 / (1 + exp(-2 z))       σ(a) = s2(a/2)      tanh(z) = 2 s2(z) - 1

with exp(-2z) = 2^x, x = -2z·log2(e), split as 2^n · 2^f (n = round(x), |f| <= 1/2, 2^n written into
the float's exponent bits, 2^f a degree-5 minimax polynomial, relative error 2.3e-7 in float32).
Absolute error: σ within 1e-7 of the exact value, tanh within 2e-7 (NumPy's float32 tanh: 6e-8) and
for |z| < 0.625 Cephes' odd polynomial (relative error 1e-7, as small values keep their digits);
tanh saturates at exactly ±1, σ at 1 and 1e-38, and NaN passes through. Rows of the batch never meet: each
row's arithmetic is the same whatever else is in the batch.

Kernel arguments, shared by every cell:
    X      (R, G*H) float32   input shares of the gates: row ``rows[b]`` is sequence b's at this step
    rows   (B,) int64         which row of X each sequence reads
    tpos   (B,) int64         the time position each sequence's gates are written at
    dest   (B,) int64         the document (first axis of the records) each sequence writes into
    zu     (B, G*H) float32   h @ U of this step (the recurrent share), from BLAS
    h, c   (B, H) float32     the state, updated in place (c absent for gru and rnn)
    n                         the first n sequences run; the others have ended
    rec    tuple of (N, T, W) the records, one per gate of the cell in ``cells.GATES`` order;
                              a gate not asked for gets a (N, 1, W) scratch array and ``on`` 0
    on     (G,) int64         1 where a gate is recorded (its time index is tpos), else 0 (index 0)
    col                       the first unit of this direction in the records (0, or H backward)

``to_half`` rounds float32 to float16 as NumPy's astype does, bit for bit, ~8x faster: the index stores its
activations so (model/analysis/spill.py).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

f32 = np.float32

#: numba options: no ZeroDivisionError branch (it stops vectorization), fused multiply-adds, cached on disk.
OPTS: dict[str, Any] = {"error_model": "numpy", "fastmath": {"contract"}, "cache": True, "nogil": True}

#: 2^f on [-1/2, 1/2], degree 5, fitted for relative error (Lawson's iteration over Chebyshev nodes).
P0, P1, P2, P3, P4, P5 = (
    f32(1.0000001192092896),
    f32(0.6931469440460205),
    f32(0.24022120237350464),
    f32(0.05550713092088699),
    f32(0.009675540961325169),
    f32(0.001327647129073739),
)
#: tanh(z) = z + z^3 (T0 + T1 z^2 + ...) for |z| < 0.625 (Cephes tanhf, relative error 1e-7).
T0, T1, T2, T3, T4 = (
    f32(-3.33332819422e-1),
    f32(1.33314422036e-1),
    f32(-5.37397155531e-2),
    f32(2.06390887954e-2),
    f32(-5.70498872745e-3),
)
M2LOG2E = f32(-2.0 * 1.4426950408889634)  # -2·log2(e)


@intrinsic
def _pow2(typingctx, n):
    """2^n for a float32 n holding an integer in [-126, 127]: n + 127 written into the exponent bits."""

    def codegen(context, builder, sig, args):
        i32 = ir.IntType(32)
        k = builder.fptosi(args[0], i32)
        bits = builder.shl(builder.add(k, ir.Constant(i32, 127)), ir.Constant(i32, 23))
        return builder.bitcast(bits, ir.FloatType())

    return types.float32(types.float32), codegen


@njit(inline="always", **OPTS)
def s2(z):
    """1 / (1 + exp(-2z)): a sigmoid gate of halved pre-activation z, and (1 + tanh z) / 2."""
    x = min(max(z * M2LOG2E, f32(-126.0)), f32(126.0))  # exp(-2z) = 2^x
    n = np.floor(x + f32(0.5))
    f = x - n  # (-1/2, 1/2]
    p = ((((P5 * f + P4) * f + P3) * f + P2) * f + P1) * f + P0  # 2^f
    return f32(1.0) / (f32(1.0) + p * _pow2(n))  # type: ignore[call-arg]  # (numba supplies typingctx)


@njit(inline="always", **OPTS)
def tanh(z):
    """2 s2(z) - 1, and for |z| < 0.625 (where that loses relative precision) Cephes' odd polynomial."""
    q = z * z
    small = ((((T4 * q + T3) * q + T2) * q + T1) * q + T0) * q * z + z
    return small if abs(z) < f32(0.625) else f32(2.0) * s2(z) - f32(1.0)


@njit(**OPTS)
def tanh_array(x, out):
    """The kernels' tanh over a 1-d array (for tests and benches)."""
    for k in range(x.shape[0]):
        out[k] = tanh(x[k])


@njit(**OPTS)
def sigmoid_array(a, out):
    """The kernels' σ(a) = s2(a/2) over a 1-d array (for tests and benches)."""
    for k in range(a.shape[0]):
        out[k] = s2(a[k] * f32(0.5))


@njit(**OPTS)
def lstm(X, rows, tpos, dest, zu, h, c, n, rec, on, col):
    """f, i, o = σ; c_tilde = tanh; c = f*c_prev + i*c_tilde; h = o*tanh(c). Layout [f | i | o | c_tilde].
    rec: (f, i, c_tilde, c, o, h); a projected LSTM passes its m buffer as h (and M as the last record)."""
    H = h.shape[1]
    F, I, G, C, O, Hr = rec
    for b in range(n):
        x, u, cb, hb, d, t = X[rows[b]], zu[b], c[b], h[b], dest[b], tpos[b]
        Fb, Ib, Gb, Cb = F[d, t * on[0], col:], I[d, t * on[1], col:], G[d, t * on[2], col:], C[d, t * on[3], col:]
        Ob, Hb = O[d, t * on[4], col:], Hr[d, t * on[5], col:]
        for j in range(H):
            f = s2(x[j] + u[j])
            i = s2(x[H + j] + u[H + j])
            o = s2(x[2 * H + j] + u[2 * H + j])
            g = tanh(x[3 * H + j] + u[3 * H + j])
            cn = f * cb[j] + i * g
            hn = o * tanh(cn)
            cb[j] = cn
            hb[j] = hn
            Fb[j] = f
            Ib[j] = i
            Gb[j] = g
            Cb[j] = cn
            Ob[j] = o
            Hb[j] = hn


@njit(**OPTS)
def lstm_steps(X, rows, tpos, dest, active, s0, s1, U, h, c, zu, rec, on, col):
    """Steps s0 .. s1-1 of ``lstm``, the product h @ U in the loop (numba's np.dot, a BLAS matrix-vector product a
    row): for the steps where a few sequences are left (the long documents), whose step would otherwise cost as
    much in Python, in dispatching the kernel (~6 us) and in BLAS's small matrix-matrix product as in arithmetic
    (batched.NARROW). rows, tpos: (T, B), active: (T,)."""
    for s in range(s0, s1):
        n = active[s]
        for b in range(n):  # a matrix-vector product a row: BLAS's matrix-matrix product is slow on 2..8 rows
            zu[b : b + 1] = np.dot(h[b : b + 1], U)  # (1, G*H)
        lstm(X, rows[s], tpos[s], dest, zu, h, c, n, rec, on, col)


@njit(**OPTS)
def coupled(X, rows, tpos, dest, zu, h, c, n, rec, on, col):
    """f, o = σ; c_tilde = tanh; c = c_tilde + f*(c_prev - c_tilde); i = 1 - f. Layout [f | o | c_tilde]."""
    H = h.shape[1]
    F, I, G, C, O, Hr = rec
    for b in range(n):
        x, u, cb, hb, d, t = X[rows[b]], zu[b], c[b], h[b], dest[b], tpos[b]
        Fb, Ib, Gb, Cb = F[d, t * on[0], col:], I[d, t * on[1], col:], G[d, t * on[2], col:], C[d, t * on[3], col:]
        Ob, Hb = O[d, t * on[4], col:], Hr[d, t * on[5], col:]
        for j in range(H):
            f = s2(x[j] + u[j])
            o = s2(x[H + j] + u[H + j])
            g = tanh(x[2 * H + j] + u[2 * H + j])
            cn = g + f * (cb[j] - g)
            hn = o * tanh(cn)
            cb[j] = cn
            hb[j] = hn
            Fb[j] = f
            Ib[j] = f32(1.0) - f
            Gb[j] = g
            Cb[j] = cn
            Ob[j] = o
            Hb[j] = hn


@njit(**OPTS)
def peephole(X, rows, tpos, dest, zu, h, c, n, rec, on, col, p_f, p_i, p_o):
    """f, i = σ(... + p*c_prev); c = f*c_prev + i*c_tilde; o = σ(... + p_o*c); h = o*tanh(c).
    Layout [f | i | c_tilde | o]; the peephole weights come halved like the sigmoid gates' columns."""
    H = h.shape[1]
    F, I, G, C, O, Hr = rec
    for b in range(n):
        x, u, cb, hb, d, t = X[rows[b]], zu[b], c[b], h[b], dest[b], tpos[b]
        Fb, Ib, Gb, Cb = F[d, t * on[0], col:], I[d, t * on[1], col:], G[d, t * on[2], col:], C[d, t * on[3], col:]
        Ob, Hb = O[d, t * on[4], col:], Hr[d, t * on[5], col:]
        for j in range(H):
            cp = cb[j]
            f = s2(x[j] + u[j] + p_f[j] * cp)
            i = s2(x[H + j] + u[H + j] + p_i[j] * cp)
            g = tanh(x[2 * H + j] + u[2 * H + j])
            cn = f * cp + i * g
            o = s2(x[3 * H + j] + u[3 * H + j] + p_o[j] * cn)
            hn = o * tanh(cn)
            cb[j] = cn
            hb[j] = hn
            Fb[j] = f
            Ib[j] = i
            Gb[j] = g
            Cb[j] = cn
            Ob[j] = o
            Hb[j] = hn


@njit(**OPTS)
def gru_after(X, rows, tpos, dest, zu, h, n, rec, on, col, bU_h):
    """Reset after the product: z, r = σ; h_tilde = tanh(x_h + r*(U_h h + bU_h)); h = h + z*(h_tilde - h).
    zu = h @ U over all three parts [z | r | h_tilde]; rec (z, r, h_tilde, h)."""
    H = h.shape[1]
    Z, R, Ht, Hr = rec
    for b in range(n):
        x, u, hb, d, t = X[rows[b]], zu[b], h[b], dest[b], tpos[b]
        Zb, Rb, Htb, Hb = Z[d, t * on[0], col:], R[d, t * on[1], col:], Ht[d, t * on[2], col:], Hr[d, t * on[3], col:]
        for j in range(H):
            z = s2(x[j] + u[j])
            r = s2(x[H + j] + u[H + j])
            ht = tanh(x[2 * H + j] + r * (u[2 * H + j] + bU_h[j]))
            hn = hb[j] + z * (ht - hb[j])
            hb[j] = hn
            Zb[j] = z
            Rb[j] = r
            Htb[j] = ht
            Hb[j] = hn


@njit(**OPTS)
def gru_gates(X, rows, zu, h, rh, n, zr):
    """Reset before the product, first half: z, r = σ from zu = h @ U_zr (B, 2H) into zr (B, 2H); rh = r*h."""
    H = h.shape[1]
    for b in range(n):
        x, u, hb, g, q = X[rows[b]], zu[b], h[b], zr[b], rh[b]
        for j in range(H):
            g[j] = s2(x[j] + u[j])
            r = s2(x[H + j] + u[H + j])
            g[H + j] = r
            q[j] = r * hb[j]


@njit(**OPTS)
def gru_state(X, rows, tpos, dest, hu, h, n, zr, rec, on, col):
    """Second half: h_tilde = tanh(x_h + U_h (r*h)) from hu = rh @ U_h (B, H); h = h + z*(h_tilde - h)."""
    H = h.shape[1]
    Z, R, Ht, Hr = rec
    for b in range(n):
        x, u, hb, g, d, t = X[rows[b]], hu[b], h[b], zr[b], dest[b], tpos[b]
        Zb, Rb, Htb, Hb = Z[d, t * on[0], col:], R[d, t * on[1], col:], Ht[d, t * on[2], col:], Hr[d, t * on[3], col:]
        for j in range(H):
            z = g[j]
            ht = tanh(x[2 * H + j] + u[j])
            hn = hb[j] + z * (ht - hb[j])
            hb[j] = hn
            Zb[j] = z
            Rb[j] = g[H + j]
            Htb[j] = ht
            Hb[j] = hn


@njit(**OPTS)
def rnn(X, rows, tpos, dest, zu, h, n, rec, on, col):
    """h = tanh(W x + U h + b); rec (h,)."""
    H = h.shape[1]
    Hr = rec[0]
    for b in range(n):
        x, u, hb, d, t = X[rows[b]], zu[b], h[b], dest[b], tpos[b]
        Hb = Hr[d, t * on[0], col:]
        for j in range(H):
            hn = tanh(x[j] + u[j])
            hb[j] = hn
            Hb[j] = hn


@njit(**OPTS)
def record(src, tpos, dest, n, out, col):
    """out[dest[b], tpos[b], col:col+P] = src[b] for the first n rows (a projected LSTM's h)."""
    P = src.shape[1]
    for b in range(n):
        o, s = out[dest[b], tpos[b], col:], src[b]
        for j in range(P):
            o[j] = s[j]


@njit(inline="always", **OPTS)
def _half_bits(v):
    """The float16 bit pattern nearest float32 ``v``, ties to even, as NumPy's npy_floatbits_to_halfbits gives it:
    overflow to ±inf, a NaN keeps the top 10 bits of its payload (0x7c01 when those are 0), underflow through the
    subnormals to ±0 (F. Giesen's float_to_half_fast3_rtne, with NumPy's NaN)."""
    u = np.uint32(_f32_bits(v))  # type: ignore[call-arg]  # (numba supplies typingctx)
    sign = (u >> np.uint32(16)) & np.uint32(0x8000)
    a = u & np.uint32(0x7FFFFFFF)
    # the three cases computed alike and one chosen (no branch: the loop vectorizes)
    odd = (a >> np.uint32(13)) & np.uint32(1)
    normal = (a + np.uint32(0xC8000FFF) + odd) >> np.uint32(13)  # rebias the exponent (-112 << 23), round half even
    # adding 0.5 (2^-1) puts the 10 subnormal bits at the float's bottom, rounded to nearest even by the FPU
    sub = np.uint32(_f32_bits(_bits_f32(a) + f32(0.5))) - np.uint32(0x3F000000)  # type: ignore[call-arg]
    m = np.uint32(0x7C00) + ((a & np.uint32(0x007FFFFF)) >> np.uint32(13))
    nan = m + np.uint32(m == np.uint32(0x7C00))  # NaN: the top of its payload, never inf's pattern
    big = nan if a > np.uint32(0x7F800000) else np.uint32(0x7C00)  # |v| >= 65536 rounds to inf
    o = big if a >= np.uint32(0x47800000) else (sub if a < np.uint32(0x38800000) else normal)
    return np.uint16(o | sign)


@intrinsic
def _f32_bits(typingctx, v):
    """The bits of a float32 as an unsigned 32-bit integer."""

    def codegen(context, builder, sig, args):
        return builder.bitcast(args[0], ir.IntType(32))

    return types.uint32(types.float32), codegen


@intrinsic
def _bits_f32(typingctx, u):
    """The float32 of 32 bits."""

    def codegen(context, builder, sig, args):
        return builder.bitcast(args[0], ir.FloatType())

    return types.float32(types.uint32), codegen


@njit(**OPTS)
def _to_half_2d(x, out):
    n, W = x.shape
    for r in range(n):
        xr, o = x[r], out[r]
        for j in range(W):
            o[j] = _half_bits(xr[j])


def to_half(x: np.ndarray) -> np.ndarray:
    """float32 values (n, W) or (n,) as float16, bit for bit ``x.astype(np.float16)`` (round to nearest even), in
    one compiled pass (NumPy's cast goes a value at a time through npy_floatbits_to_halfbits: ~4 ns a value here)."""
    x = np.asarray(x, np.float32)
    two = x.reshape(1, -1) if x.ndim == 1 else x.reshape(x.shape[0], -1) if x.ndim != 2 else x
    out = np.empty(two.shape, np.uint16)
    if out.size:
        _to_half_2d(two, out)
    return out.view(np.float16).reshape(x.shape)
