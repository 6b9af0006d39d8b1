"""Every trace satisfies its own cell equations, and agrees with a slow textbook reference.

Two independent checks of the numeric core (model/cells.py, model/network.py):

1. Identities: the recorded gates of a trace, read back in float64, satisfy the
   cell's equations step by step (c_t = f*c_{t-1} + i*c_tilde, h_t = o*tanh(c_t),
   GRU and RNN updates, every gate recomputed from the weights and the recorded
   previous state), gates lie in their ranges, and layer k+1 is fed layer k's h.
2. Reference: a straightforward float64 implementation written here from the
   equations (colah 2015; Gers & Schmidhuber 2000; Cho et al. 2014), with
   σ(a) = 1/(1 + exp(-a)), run over the same weights; every gate must agree.
"""

from __future__ import annotations

import zlib

import numpy as np
import pytest

from model import Network, Spec

#: (cell, reset_after): every cell type and both GRU conventions.
CELLS = [("lstm", False), ("peephole", False), ("coupled", False), ("gru", False), ("gru", True), ("rnn", False)]
CELL_IDS = ["lstm", "peephole", "coupled", "gru", "gru_reset_after", "rnn"]

#: (D, H, layers, T, output_size)
SHAPES = [(1, 1, 1, 1, None), (3, 4, 2, 7, 5), (5, 8, 3, 12, None), (2, 3, 1, 20, 3), (4, 2, 3, 5, 2)]
SHAPE_IDS = ["D1H1L1T1", "D3H4L2T7", "D5H8L3T12", "D2H3L1T20", "D4H2L3T5"]

SIGMOID_GATES = {"f", "i", "o", "z", "r"}
TANH_GATES = {"c_tilde", "h_tilde"}  # and h for every cell: o*tanh(c), a GRU blend of tanh values, or tanh


def random_network(cell, reset_after, D, H, L, out, seed, dtype=np.float32):
    """A network with random weights of moderate size and biases well away from zero."""
    rng = np.random.default_rng(seed)
    head = "classes" if out else None  # a softmax head, even where out = D would read as a forecaster
    spec = Spec(cell, D, H, num_layers=L, reset_after=reset_after, output_size=out, head=head)
    params = {}
    for name in spec.param_names():
        shape = spec.expected_shape(name)
        leaf = name.rsplit(".", 1)[-1]
        if leaf.startswith("b"):  # b_<g>, bU_h, head.b: non-trivial biases
            params[name] = rng.uniform(-1.5, 1.5, shape)
        else:
            params[name] = rng.normal(0.0, 0.6, shape)
    return Network(spec, params, dtype)


def random_state(net, rng):
    H = net.hidden_size
    has_c = net.cell in ("lstm", "peephole", "coupled")
    return [(rng.uniform(-0.9, 0.9, H), rng.normal(0.0, 1.5, H) if has_c else None) for _ in range(net.num_layers)]


def layer_params(net, k):
    """Layer k's weights as float64, keyed by their short names (W_f, U_f, b_f, ...)."""
    pre = f"layers.{k}."
    return {n[len(pre) :]: np.asarray(a, np.float64) for n, a in net.params.items() if n.startswith(pre)}


def sigma(a):
    return 1.0 / (1.0 + np.exp(-a))


# ---------------------------------------------------------------------------------------------
# The textbook reference: one step of each cell, straight from the equations, in float64.
# ---------------------------------------------------------------------------------------------
def reference_step(cell, reset_after, P, x, h, c):
    """One step of ``cell`` from input x (D,), previous h (H,), c (H,) or None: (gates, h, c)."""

    def affine(g, h_in=h):
        return x @ P[f"W_{g}"] + h_in @ P[f"U_{g}"] + P[f"b_{g}"]

    if cell == "lstm":
        f = sigma(affine("f"))
        i = sigma(affine("i"))
        c_tilde = np.tanh(affine("c"))
        c_new = f * c + i * c_tilde
        o = sigma(affine("o"))
        h_new = o * np.tanh(c_new)
        return {"f": f, "i": i, "c_tilde": c_tilde, "c": c_new, "o": o, "h": h_new}, h_new, c_new
    if cell == "peephole":
        f = sigma(affine("f") + P["p_f"] * c)
        i = sigma(affine("i") + P["p_i"] * c)
        c_tilde = np.tanh(affine("c"))
        c_new = f * c + i * c_tilde
        o = sigma(affine("o") + P["p_o"] * c_new)
        h_new = o * np.tanh(c_new)
        return {"f": f, "i": i, "c_tilde": c_tilde, "c": c_new, "o": o, "h": h_new}, h_new, c_new
    if cell == "coupled":
        f = sigma(affine("f"))
        i = 1.0 - f
        c_tilde = np.tanh(affine("c"))
        c_new = f * c + i * c_tilde
        o = sigma(affine("o"))
        h_new = o * np.tanh(c_new)
        return {"f": f, "i": i, "c_tilde": c_tilde, "c": c_new, "o": o, "h": h_new}, h_new, c_new
    if cell == "gru":
        z = sigma(affine("z"))
        r = sigma(affine("r"))
        if reset_after:
            h_tilde = np.tanh(x @ P["W_h"] + P["b_h"] + r * (h @ P["U_h"] + P["bU_h"]))
        else:
            h_tilde = np.tanh(affine("h", h_in=r * h))
        h_new = (1.0 - z) * h + z * h_tilde
        return {"z": z, "r": r, "h_tilde": h_tilde, "h": h_new}, h_new, None
    if cell == "rnn":
        h_new = np.tanh(affine("h"))
        return {"h": h_new}, h_new, None
    raise AssertionError(cell)


def reference_trace(net, x, state=None):
    """Every gate (T, H) of every layer, and the head's probabilities, computed step by step in float64."""
    spec = net.spec
    T, H = x.shape[0], spec.hidden_size
    inp = np.asarray(x, np.float64)
    layers = []
    for k in range(spec.num_layers):
        P = layer_params(net, k)
        if state is None:
            h = np.zeros(H)
            c = np.zeros(H) if spec.cell in ("lstm", "peephole", "coupled") else None
        else:
            h = np.asarray(state[k][0], np.float64)
            c = None if state[k][1] is None else np.asarray(state[k][1], np.float64)
        rec = {g: np.zeros((T, H)) for g in net.gates}
        for t in range(T):
            gates, h, c = reference_step(spec.cell, spec.reset_after, P, inp[t], h, c)
            for g, v in gates.items():
                rec[g][t] = v
        layers.append(rec)
        inp = rec["h"]
    probs = None
    if spec.output_size is not None:
        logits = inp @ np.asarray(net.params["head.W"], np.float64) + np.asarray(net.params["head.b"], np.float64)
        e = np.exp(logits - logits.max(axis=1, keepdims=True))
        probs = e / e.sum(axis=1, keepdims=True)
    return layers, probs


def random_input(D, T, seed):
    return np.random.default_rng(seed + 1000).normal(0.0, 1.0, (T, D)).astype(np.float32)


# ---------------------------------------------------------------------------------------------
# 1. Identities of the recorded trace
# ---------------------------------------------------------------------------------------------
def check_identities(net, x, tr, initial):
    """Assert every cell equation on the recorded gates of ``tr`` (float64 arithmetic, tolerance 1e-6)."""
    tol = {"atol": 1e-6, "rtol": 1e-6}
    cell = net.cell
    inp = np.asarray(x, np.float64)
    for k, rec in enumerate(tr.layers):
        g = {name: np.asarray(v, np.float64) for name, v in rec.items()}
        P = layer_params(net, k)
        T = inp.shape[0]
        h0 = np.asarray(initial[k][0], np.float64)
        h_prev = np.vstack([h0[None], g["h"][:-1]])  # (T, H) the h each step started from
        assert set(rec) == set(net.gates), f"layer {k} records {sorted(rec)}, expected {sorted(net.gates)}"

        def affine(name, h_in=h_prev, P=P, inp=inp):
            return inp @ P[f"W_{name}"] + h_in @ P[f"U_{name}"] + P[f"b_{name}"]  # (T, H)

        if cell in ("lstm", "peephole", "coupled"):
            c0 = np.asarray(initial[k][1], np.float64)
            c_prev = np.vstack([c0[None], g["c"][:-1]])  # (T, H)
            f, i, c_tilde, c, o, h = g["f"], g["i"], g["c_tilde"], g["c"], g["o"], g["h"]
            np.testing.assert_allclose(c, f * c_prev + i * c_tilde, **tol, err_msg=f"layer {k}: c != f*c_prev + i*c~")
            np.testing.assert_allclose(h, o * np.tanh(c), **tol, err_msg=f"layer {k}: h != o*tanh(c)")
            # Every gate recomputed from the weights and the recorded previous state.
            peep_f = P["p_f"] * c_prev if cell == "peephole" else 0.0
            peep_i = P["p_i"] * c_prev if cell == "peephole" else 0.0
            peep_o = P["p_o"] * c if cell == "peephole" else 0.0
            np.testing.assert_allclose(f, sigma(affine("f") + peep_f), **tol, err_msg=f"layer {k}: f")
            np.testing.assert_allclose(c_tilde, np.tanh(affine("c")), **tol, err_msg=f"layer {k}: c_tilde")
            np.testing.assert_allclose(o, sigma(affine("o") + peep_o), **tol, err_msg=f"layer {k}: o")
            if cell == "coupled":
                # the reported input gate is exactly 1 - f, in the trace's own dtype
                assert np.array_equal(rec["i"], (1 - rec["f"]).astype(rec["i"].dtype)), f"layer {k}: i != 1 - f"
            else:
                np.testing.assert_allclose(i, sigma(affine("i") + peep_i), **tol, err_msg=f"layer {k}: i")
        elif cell == "gru":
            z, r, h_tilde, h = g["z"], g["r"], g["h_tilde"], g["h"]
            np.testing.assert_allclose(
                h, (1 - z) * h_prev + z * h_tilde, **tol, err_msg=f"layer {k}: h != (1-z)*h_prev + z*h~"
            )
            np.testing.assert_allclose(z, sigma(affine("z")), **tol, err_msg=f"layer {k}: z")
            np.testing.assert_allclose(r, sigma(affine("r")), **tol, err_msg=f"layer {k}: r")
            if net.spec.reset_after:
                expect = np.tanh(inp @ P["W_h"] + P["b_h"] + r * (h_prev @ P["U_h"] + P["bU_h"]))
            else:
                expect = np.tanh(affine("h", h_in=r * h_prev))
            np.testing.assert_allclose(h_tilde, expect, **tol, err_msg=f"layer {k}: h_tilde")
        elif cell == "rnn":
            np.testing.assert_allclose(g["h"], np.tanh(affine("h")), **tol, err_msg=f"layer {k}: h != tanh(Wx+Uh+b)")
        assert g["h"].shape == (T, net.hidden_size)
        inp = g["h"]  # layer k+1 is fed layer k's h


@pytest.mark.parametrize("shape", SHAPES, ids=SHAPE_IDS)
@pytest.mark.parametrize(("cell", "reset_after"), CELLS, ids=CELL_IDS)
def test_trace_satisfies_cell_equations_from_zero_state(cell, reset_after, shape):
    D, H, L, T, out = shape
    net = random_network(cell, reset_after, D, H, L, out, seed=zlib.crc32(repr((cell, reset_after, shape)).encode()))
    x = random_input(D, T, seed=7)
    tr = net.trace(x)
    check_identities(net, x, tr, net.zero_state())


@pytest.mark.parametrize("shape", SHAPES[1:3], ids=SHAPE_IDS[1:3])
@pytest.mark.parametrize(("cell", "reset_after"), CELLS, ids=CELL_IDS)
def test_trace_satisfies_cell_equations_from_given_state(cell, reset_after, shape):
    D, H, L, T, out = shape
    net = random_network(cell, reset_after, D, H, L, out, seed=11)
    rng = np.random.default_rng(3)
    state = random_state(net, rng)
    x = random_input(D, T, seed=9)
    tr = net.trace(x, state=state)
    check_identities(net, x, tr, state)


@pytest.mark.parametrize("shape", SHAPES, ids=SHAPE_IDS)
@pytest.mark.parametrize(("cell", "reset_after"), CELLS, ids=CELL_IDS)
def test_gates_lie_in_their_ranges(cell, reset_after, shape):
    D, H, L, T, out = shape
    net = random_network(cell, reset_after, D, H, L, out, seed=5)
    tr = net.trace(random_input(D, T, seed=5) * 2.0)
    for k, rec in enumerate(tr.layers):
        for gate, v in rec.items():
            assert np.isfinite(v).all(), f"layer {k} gate {gate} is not finite"
            if gate in SIGMOID_GATES:
                assert (v > 0).all() and (v < 1).all(), f"layer {k}: sigmoid gate {gate} leaves (0, 1): {v}"
            elif gate in TANH_GATES or gate == "h":
                assert (v > -1).all() and (v < 1).all(), f"layer {k}: gate {gate} leaves (-1, 1): {v}"


@pytest.mark.parametrize(("cell", "reset_after"), CELLS, ids=CELL_IDS)
def test_next_layer_is_fed_previous_layers_h(cell, reset_after):
    """Layer k+1's whole trace is layer k+1's cell run alone, by the textbook reference, on layer k's recorded h."""
    D, H, L, T = 3, 5, 3, 6
    net = random_network(cell, reset_after, D, H, L, None, seed=21)
    tr = net.trace(random_input(D, T, seed=21))
    has_c = cell in ("lstm", "peephole", "coupled")
    for k in range(L - 1):
        P = layer_params(net, k + 1)
        h, c = np.zeros(H), np.zeros(H) if has_c else None
        for t in range(T):
            x_t = np.asarray(tr.layers[k]["h"][t], np.float64)  # (H,) layer k's output at step t
            gates, h, c = reference_step(cell, reset_after, P, x_t, h, c)
            for gate, want in gates.items():
                got = tr.layers[k + 1][gate][t]
                np.testing.assert_allclose(got, want, atol=1e-5, rtol=0, err_msg=f"layer {k + 1} {gate} at t={t}")


# ---------------------------------------------------------------------------------------------
# 2. Agreement with the textbook reference
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("shape", SHAPES, ids=SHAPE_IDS)
@pytest.mark.parametrize(("cell", "reset_after"), CELLS, ids=CELL_IDS)
def test_float32_trace_matches_textbook_reference(cell, reset_after, shape):
    D, H, L, T, out = shape
    net = random_network(cell, reset_after, D, H, L, out, seed=31)
    x = random_input(D, T, seed=31)
    tr = net.trace(x)
    ref_layers, ref_probs = reference_trace(net, x)
    for k, (got, want) in enumerate(zip(tr.layers, ref_layers, strict=True)):
        for gate in net.gates:
            assert got[gate].dtype == np.float32
            np.testing.assert_allclose(got[gate], want[gate], atol=1e-5, rtol=0, err_msg=f"layer {k} gate {gate}")
    if out is None:
        assert tr.probs is None
    else:
        np.testing.assert_allclose(tr.probs, ref_probs, atol=1e-5, rtol=0)


@pytest.mark.parametrize(("cell", "reset_after"), CELLS, ids=CELL_IDS)
def test_float32_trace_from_state_matches_reference(cell, reset_after):
    D, H, L, T, out = 3, 4, 2, 9, 3
    net = random_network(cell, reset_after, D, H, L, out, seed=41)
    state = random_state(net, np.random.default_rng(41))
    x = random_input(D, T, seed=41)
    tr = net.trace(x, state=state)
    ref_layers, ref_probs = reference_trace(net, x, state)
    for k, (got, want) in enumerate(zip(tr.layers, ref_layers, strict=True)):
        for gate in net.gates:
            np.testing.assert_allclose(got[gate], want[gate], atol=1e-5, rtol=0, err_msg=f"layer {k} gate {gate}")
    np.testing.assert_allclose(tr.probs, ref_probs, atol=1e-5, rtol=0)


@pytest.mark.parametrize(("cell", "reset_after"), CELLS, ids=CELL_IDS)
def test_float64_trace_matches_textbook_reference_closely(cell, reset_after):
    """In float64 the fused, in-place implementation and the textbook agree to round-off."""
    D, H, L, T, out = 4, 6, 2, 15, 4
    net = random_network(cell, reset_after, D, H, L, out, seed=51, dtype=np.float64)
    x = random_input(D, T, seed=51).astype(np.float64)
    tr = net.trace(x)
    ref_layers, ref_probs = reference_trace(net, x)
    for k, (got, want) in enumerate(zip(tr.layers, ref_layers, strict=True)):
        for gate in net.gates:
            assert got[gate].dtype == np.float64
            np.testing.assert_allclose(got[gate], want[gate], atol=1e-12, rtol=0, err_msg=f"layer {k} gate {gate}")
    np.testing.assert_allclose(tr.probs, ref_probs, atol=1e-12, rtol=0)


def test_reference_is_not_trivially_satisfied():
    """The reference distinguishes the cells: the same weights give different h for lstm and peephole."""
    net = random_network("peephole", False, 2, 3, 1, None, seed=61)
    x = random_input(2, 5, seed=61)
    P = layer_params(net, 0)
    h, c = np.zeros(3), np.zeros(3)
    h_lstm, c_lstm = np.zeros(3), np.zeros(3)
    for t in range(5):
        _, h, c = reference_step("peephole", False, P, x[t].astype(np.float64), h, c)
        _, h_lstm, c_lstm = reference_step("lstm", False, P, x[t].astype(np.float64), h_lstm, c_lstm)
    assert np.abs(h - h_lstm).max() > 1e-3
    np.testing.assert_allclose(net.trace(x).layers[0]["h"][-1], h, atol=1e-5)
