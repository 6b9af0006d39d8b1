"""One-unit cells (H = 1, D = 1) worked by hand for two steps, x = [1.0, -2.0], from h0 = c0 = 0.

Each step's arithmetic is written out as scalar expressions; math.exp / math.tanh only
evaluate them. The numbers in the comments were checked on a calculator, and each
expression is also compared with its commented value, so a slip in either shows.
σ(a) = 1 / (1 + e^(-a)).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from model import Network, Spec

X = np.array([[1.0], [-2.0]], np.float32)  # (T=2, D=1)
TOL = 1e-6


def sig(a: float) -> float:
    return 1.0 / (1.0 + math.exp(-a))


def one_unit(cell: str, weights: dict[str, float], reset_after: bool = False) -> Network:
    """A one-layer, one-unit network from scalar weights (W_g (1, 1), U_g (1, 1), b_g (1,), p_g (1,))."""
    spec = Spec(cell, 1, 1, reset_after=reset_after)
    params = {}
    for name in spec.param_names():
        short = name.split(".")[-1]
        shape = spec.expected_shape(name)
        params[name] = np.full(shape, weights[short], np.float32)
    return Network(spec, params)


def check(tr, expected: dict[str, list[float]]) -> None:
    rec = tr.layers[0]
    assert set(rec) == set(expected)
    for gate, values in expected.items():
        got = rec[gate][:, 0]
        assert rec[gate].shape == (2, 1)
        np.testing.assert_allclose(got, values, atol=TOL, rtol=0, err_msg=f"gate {gate}")


def near(value: float, hand: float) -> float:
    """``value`` after checking it against the hand-computed number in the comment."""
    assert value == pytest.approx(hand, abs=1e-9)
    return value


# Shared LSTM-family weights: f, i, c (the candidate), o.
LSTM_W = {
    "W_f": 0.5, "U_f": 0.25, "b_f": 0.1,
    "W_i": -0.3, "U_i": 0.8, "b_i": 0.2,
    "W_c": 1.0, "U_c": -0.5, "b_c": 0.0,
    "W_o": 0.7, "U_o": 0.3, "b_o": -0.1,
}  # fmt: skip


def test_lstm_one_unit_by_hand():
    net = one_unit("lstm", LSTM_W)
    # step 1: x = 1, h0 = 0, c0 = 0
    f1 = near(sig(0.5 * 1.0 + 0.25 * 0.0 + 0.1), 0.6456563062)  # σ(0.6)
    i1 = near(sig(-0.3 * 1.0 + 0.8 * 0.0 + 0.2), 0.4750208125)  # σ(-0.1)
    g1 = near(math.tanh(1.0 * 1.0 - 0.5 * 0.0 + 0.0), 0.7615941560)  # tanh(1)
    c1 = near(f1 * 0.0 + i1 * g1, 0.3617730748)  # 0.64566*0 + 0.47502*0.76159
    o1 = near(sig(0.7 * 1.0 + 0.3 * 0.0 - 0.1), 0.6456563062)  # σ(0.6)
    h1 = near(o1 * math.tanh(c1), 0.2238973686)  # 0.64566 * tanh(0.36177) = 0.64566 * 0.34677
    # step 2: x = -2, h1 = 0.22390, c1 = 0.36177
    f2 = near(sig(0.5 * -2.0 + 0.25 * h1 + 0.1), 0.3006876119)  # σ(-1 + 0.05597 + 0.1) = σ(-0.84403)
    i2 = near(sig(-0.3 * -2.0 + 0.8 * h1 + 0.2), 0.7269331523)  # σ(0.6 + 0.17912 + 0.2) = σ(0.97912)
    g2 = near(math.tanh(1.0 * -2.0 - 0.5 * h1 + 0.0), -0.9711396185)  # tanh(-2 - 0.11195) = tanh(-2.11195)
    c2 = near(f2 * c1 + i2 * g2, -0.5971729023)  # 0.30069*0.36177 + 0.72693*(-0.97114) = 0.10878 - 0.70595
    o2 = near(sig(0.7 * -2.0 + 0.3 * h1 - 0.1), 0.1926579976)  # σ(-1.4 + 0.06717 - 0.1) = σ(-1.43283)
    h2 = near(o2 * math.tanh(c2), -0.1030787358)  # 0.19266 * tanh(-0.59717) = 0.19266 * (-0.53503)
    check(
        net.trace(X),
        {"f": [f1, f2], "i": [i1, i2], "c_tilde": [g1, g2], "c": [c1, c2], "o": [o1, o2], "h": [h1, h2]},
    )


def test_peephole_one_unit_by_hand():
    # The LSTM weights plus peepholes: p_f, p_i see c_prev; p_o sees the new c.
    net = one_unit("peephole", {**LSTM_W, "p_f": 0.5, "p_i": -1.0, "p_o": 2.0})
    # step 1: c0 = 0, so f, i, c_tilde and c are the LSTM's; o sees c1
    f1 = near(sig(0.5 * 1.0 + 0.25 * 0.0 + 0.1 + 0.5 * 0.0), 0.6456563062)  # σ(0.6)
    i1 = near(sig(-0.3 * 1.0 + 0.8 * 0.0 + 0.2 - 1.0 * 0.0), 0.4750208125)  # σ(-0.1)
    g1 = near(math.tanh(1.0 * 1.0 - 0.5 * 0.0 + 0.0), 0.7615941560)  # tanh(1)
    c1 = near(f1 * 0.0 + i1 * g1, 0.3617730748)
    o1 = near(sig(0.7 * 1.0 + 0.3 * 0.0 - 0.1 + 2.0 * c1), 0.7897710884)  # σ(0.6 + 0.72355) = σ(1.32355)
    h1 = near(o1 * math.tanh(c1), 0.2738727505)  # 0.78977 * 0.34677
    # step 2: x = -2, h1 = 0.27387, c1 = 0.36177
    f2 = near(sig(0.5 * -2.0 + 0.25 * h1 + 0.1 + 0.5 * c1), 0.3428441408)  # σ(-1 + 0.06847 + 0.1 + 0.18089)
    i2 = near(sig(-0.3 * -2.0 + 0.8 * h1 + 0.2 - 1.0 * c1), 0.6586592593)  # σ(0.6 + 0.21910 + 0.2 - 0.36177)
    g2 = near(math.tanh(1.0 * -2.0 - 0.5 * h1 + 0.0), -0.9725271548)  # tanh(-2.13694)
    c2 = near(f2 * c1 + i2 * g2, -0.5165322365)  # 0.34284*0.36177 + 0.65866*(-0.97253) = 0.12403 - 0.64056
    o2 = near(sig(0.7 * -2.0 + 0.3 * h1 - 0.1 + 2.0 * c2), 0.0793725654)  # σ(-1.4 + 0.08216 - 0.1 - 1.03306)
    h2 = near(o2 * math.tanh(c2), -0.0377034887)  # 0.07937 * tanh(-0.51653) = 0.07937 * (-0.47502)
    check(
        net.trace(X),
        {"f": [f1, f2], "i": [i1, i2], "c_tilde": [g1, g2], "c": [c1, c2], "o": [o1, o2], "h": [h1, h2]},
    )


def test_coupled_one_unit_by_hand():
    # No input gate of its own: c = f*c_prev + (1 - f)*c_tilde, and the trace reports i = 1 - f.
    net = one_unit("coupled", {k: v for k, v in LSTM_W.items() if not k.endswith("_i")})
    # step 1
    f1 = near(sig(0.5 * 1.0 + 0.25 * 0.0 + 0.1), 0.6456563062)  # σ(0.6)
    i1 = near(1.0 - f1, 0.3543436938)
    g1 = near(math.tanh(1.0 * 1.0 - 0.5 * 0.0 + 0.0), 0.7615941560)  # tanh(1)
    c1 = near(f1 * 0.0 + (1.0 - f1) * g1, 0.2698660864)  # 0.35434 * 0.76159
    o1 = near(sig(0.7 * 1.0 + 0.3 * 0.0 - 0.1), 0.6456563062)  # σ(0.6)
    h1 = near(o1 * math.tanh(c1), 0.1701305814)  # 0.64566 * tanh(0.26987) = 0.64566 * 0.26350
    # step 2: x = -2, h1 = 0.17013, c1 = 0.26987
    f2 = near(sig(0.5 * -2.0 + 0.25 * h1 + 0.1), 0.2978687593)  # σ(-1 + 0.04253 + 0.1) = σ(-0.85747)
    i2 = near(1.0 - f2, 0.7021312407)
    g2 = near(math.tanh(1.0 * -2.0 - 0.5 * h1 + 0.0), -0.9695696710)  # tanh(-2.08507)
    c2 = near(f2 * c1 + (1.0 - f2) * g2, -0.6003804797)  # 0.29787*0.26987 + 0.70213*(-0.96957) = 0.08039 - 0.68077
    o2 = near(sig(0.7 * -2.0 + 0.3 * h1 - 0.1), 0.1901615475)  # σ(-1.4 + 0.05104 - 0.1) = σ(-1.44896)
    h2 = near(o2 * math.tanh(c2), -0.1021776507)  # 0.19016 * tanh(-0.60038) = 0.19016 * (-0.53732)
    check(
        net.trace(X),
        {"f": [f1, f2], "i": [i1, i2], "c_tilde": [g1, g2], "c": [c1, c2], "o": [o1, o2], "h": [h1, h2]},
    )


GRU_W = {
    "W_z": 0.6, "U_z": -0.4, "b_z": 0.2,
    "W_r": -0.5, "U_r": 1.2, "b_r": 0.3,
    "W_h": 0.9, "U_h": 0.7, "b_h": -0.2,
    "bU_h": 0.4,
}  # fmt: skip


def test_gru_one_unit_by_hand_reset_before():
    # colah / Cho: h_tilde = tanh(W_h x + U_h (r*h) + b_h), h = (1 - z)*h_prev + z*h_tilde
    net = one_unit("gru", {k: v for k, v in GRU_W.items() if k != "bU_h"})
    z1 = near(sig(0.6 * 1.0 - 0.4 * 0.0 + 0.2), 0.6899744811)  # σ(0.8)
    r1 = near(sig(-0.5 * 1.0 + 1.2 * 0.0 + 0.3), 0.4501660027)  # σ(-0.2)
    ht1 = near(math.tanh(0.9 * 1.0 + 0.7 * (r1 * 0.0) - 0.2), 0.6043677771)  # tanh(0.7)
    h1 = near((1.0 - z1) * 0.0 + z1 * ht1, 0.4169983434)  # 0.68997 * 0.60437
    # step 2: x = -2, h1 = 0.41700
    z2 = near(sig(0.6 * -2.0 - 0.4 * h1 + 0.2), 0.2374340063)  # σ(-1.2 - 0.16680 + 0.2) = σ(-1.16680)
    r2 = near(sig(-0.5 * -2.0 + 1.2 * h1 + 0.3), 0.8581973779)  # σ(1 + 0.50040 + 0.3) = σ(1.80040)
    ht2 = near(math.tanh(0.9 * -2.0 + 0.7 * (r2 * h1) - 0.2), -0.9413178288)  # tanh(-1.8 + 0.25051 - 0.2)
    h2 = near((1.0 - z2) * h1 + z2 * ht2, 0.0944878929)  # 0.76257*0.41700 + 0.23743*(-0.94132) = 0.31799 - 0.22350
    check(net.trace(X), {"z": [z1, z2], "r": [r1, r2], "h_tilde": [ht1, ht2], "h": [h1, h2]})


def test_gru_one_unit_by_hand_reset_after():
    # PyTorch / ONNX form: h_tilde = tanh(W_h x + b_h + r*(U_h h + bU_h)); z is still colah's
    net = one_unit("gru", GRU_W, reset_after=True)
    z1 = near(sig(0.6 * 1.0 - 0.4 * 0.0 + 0.2), 0.6899744811)  # σ(0.8)
    r1 = near(sig(-0.5 * 1.0 + 1.2 * 0.0 + 0.3), 0.4501660027)  # σ(-0.2)
    ht1 = near(math.tanh(0.9 * 1.0 - 0.2 + r1 * (0.7 * 0.0 + 0.4)), 0.7064525839)  # tanh(0.7 + 0.18007)
    h1 = near((1.0 - z1) * 0.0 + z1 * ht1, 0.4874342550)  # 0.68997 * 0.70645
    # step 2: x = -2, h1 = 0.48743
    z2 = near(sig(0.6 * -2.0 - 0.4 * h1 + 0.2), 0.2323705735)  # σ(-1.2 - 0.19497 + 0.2) = σ(-1.19497)
    r2 = near(sig(-0.5 * -2.0 + 1.2 * h1 + 0.3), 0.8681753530)  # σ(1 + 0.58492 + 0.3) = σ(1.88492)
    ht2 = near(math.tanh(0.9 * -2.0 - 0.2 + r2 * (0.7 * h1 + 0.4)), -0.8755799608)  # tanh(-2 + 0.86818*0.74120)
    h2 = near((1.0 - z2) * h1 + z2 * ht2, 0.1707098600)  # 0.76763*0.48743 + 0.23237*(-0.87558) = 0.37417 - 0.20346
    check(net.trace(X), {"z": [z1, z2], "r": [r1, r2], "h_tilde": [ht1, ht2], "h": [h1, h2]})


def test_rnn_one_unit_by_hand():
    net = one_unit("rnn", {"W_h": 0.8, "U_h": -1.5, "b_h": 0.1})
    h1 = near(math.tanh(0.8 * 1.0 - 1.5 * 0.0 + 0.1), 0.7162978702)  # tanh(0.9)
    h2 = near(math.tanh(0.8 * -2.0 - 1.5 * h1 + 0.1), -0.9884553767)  # tanh(-1.6 - 1.07445 + 0.1) = tanh(-2.57445)
    check(net.trace(X), {"h": [h1, h2]})
