"""Trace.unit: the values one unit carries through colah's diagram add up to the cell's own equations."""

from __future__ import annotations

import numpy as np
import pytest

from model.trace import LINES

from .test_network import CELL_IDS, CELLS, inputs, vector_net


@pytest.mark.parametrize(("cell", "reset_after"), CELLS, ids=CELL_IDS)
def test_the_lines_of_a_unit_satisfy_its_cells_equations(cell, reset_after):
    net = vector_net(cell, reset_after, D=3, H=5, L=2, seed=7)
    x = inputs(3, 9)
    start = net.trace(inputs(3, 4, seed=2)).state  # resume from a non-zero state
    tr = net.trace(x, state=start)
    for k in range(2):
        h0, c0 = start[k]
        for u in range(5):
            lines = tr.unit(k, u)
            g = {name: a[:, u] for name, a in tr.layers[k].items()}
            expected = [n for n in LINES[cell] if not (reset_after and n == "r_h_prev")]
            assert list(lines) == expected
            for name in tr.gates:
                np.testing.assert_array_equal(lines[name], g[name])
            assert lines["h_prev"][0] == h0[u]
            np.testing.assert_array_equal(lines["h_prev"][1:], g["h"][:-1])
            if c0 is not None:  # lstm, peephole, coupled: C_t = f*C_{t-1} + i*C̃ and h = o*tanh(C_t)
                assert lines["c_prev"][0] == c0[u]
                np.testing.assert_allclose(lines["f_c_prev"] + lines["i_c_tilde"], g["c"], atol=1e-6)
                np.testing.assert_allclose(g["o"] * lines["tanh_c"], g["h"], atol=1e-6)
                if cell == "coupled":
                    np.testing.assert_allclose(lines["i_c_tilde"], (1 - g["f"]) * g["c_tilde"], atol=1e-6)
            elif cell == "gru":  # h = (1 − z)*h_{t-1} + z*h̃
                np.testing.assert_allclose(lines["one_minus_z_h_prev"] + lines["z_h_tilde"], g["h"], atol=1e-6)
                if not reset_after:
                    np.testing.assert_allclose(lines["r_h_prev"], g["r"] * lines["h_prev"], atol=1e-7)


def test_a_unit_outside_the_layer_is_refused():
    tr = vector_net("lstm", H=4, L=1).trace(inputs(3, 2))
    with pytest.raises(IndexError, match="unit 4 is outside layer 0 of 4 units"):
        tr.unit(0, 4)


@pytest.mark.parametrize("k", [1, 5, 7, 9])
def test_top_k_equals_a_full_sort(k):
    from model.trace import Trace

    rng = np.random.default_rng(k)
    p = rng.dirichlet(np.ones(7), size=50).astype(np.float32)  # (T, V=7)
    tr = Trace(cell="rnn", gates=("h",), tokens=["a"] * 50, layers=[{"h": np.zeros((50, 2), np.float32)}], probs=p)
    idx, best = tr.top(k)
    ref = np.argsort(-p, axis=1, kind="stable")[:, : min(k, 7)]
    np.testing.assert_array_equal(idx, ref)
    np.testing.assert_array_equal(best, np.take_along_axis(p, ref, axis=1))
