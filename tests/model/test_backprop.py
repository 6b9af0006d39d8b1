"""Gradients of the trainer's loss against central finite differences, in float64, for every cell
(both GRU conventions), with one-hot input and with an embedding, two stacked layers, a head, a
masked loss and a non-zero initial state. And the trainer's forward pass against Network.trace."""

from __future__ import annotations

import numpy as np
import pytest

from model.backprop import loss_and_grads
from model.network import Network, Spec

CELLS = [("lstm", False), ("peephole", False), ("coupled", False), ("gru", False), ("gru", True), ("rnn", False)]
IDS = ["lstm", "peephole", "coupled", "gru-cho", "gru-reset-after", "rnn"]
VOCAB = list("abcde")
#: Central differences in float64: truncation ~eps², round-off ~1e-16/eps.
EPS = 1e-5
#: Largest relative error allowed, per weight tensor: ||num - ana|| / (||num|| + ||ana||).
TOL = 1e-5


def setup(cell, reset_after, embedding, seed=0):
    rng = np.random.default_rng(seed)
    spec = Spec(
        cell=cell,
        input_size=3 if embedding else len(VOCAB),
        hidden_size=4,
        num_layers=2,
        reset_after=reset_after,
        vocab=VOCAB,
        tokenizer="char",
        unk=None,
        embedding=embedding,
        output_size=len(VOCAB),
    )
    params = {n: rng.standard_normal(spec.expected_shape(n)) * 0.5 for n in spec.param_names()}
    x, y = rng.integers(0, 5, (3, 7)), rng.integers(0, 5, (3, 7))
    mask = (rng.random((3, 7)) > 0.3).astype(np.float64)
    has_c = cell in ("lstm", "peephole", "coupled")
    state = [
        (rng.standard_normal((3, 4)) * 0.3, rng.standard_normal((3, 4)) * 0.3 if has_c else None) for _ in range(2)
    ]
    return spec, params, x, y, mask, state


@pytest.mark.parametrize("embedding", [False, True], ids=["one-hot", "embedding"])
@pytest.mark.parametrize(("cell", "reset_after"), CELLS, ids=IDS)
def test_gradients_match_finite_differences(cell, reset_after, embedding):
    spec, params, x, y, mask, state = setup(cell, reset_after, embedding)
    _, grads, _ = loss_and_grads(spec, params, x, y, mask, state)
    assert set(grads) == set(params)
    for name, a in params.items():
        num = np.zeros_like(a)
        for idx in np.ndindex(a.shape):
            old = a[idx]
            a[idx] = old + EPS
            up = loss_and_grads(spec, params, x, y, mask, state)[0]
            a[idx] = old - EPS
            down = loss_and_grads(spec, params, x, y, mask, state)[0]
            a[idx] = old
            num[idx] = (up - down) / (2 * EPS)
        ana = grads[name]
        assert np.abs(num).max() > 0 or name.startswith("embedding"), f"{name}: no gradient at all"
        rel = np.linalg.norm(num - ana) / max(np.linalg.norm(num) + np.linalg.norm(ana), 1e-12)
        assert rel <= TOL, f"{name}: relative error {rel:.2e}"


@pytest.mark.parametrize(("cell", "reset_after"), CELLS, ids=IDS)
def test_the_training_forward_is_the_trace(cell, reset_after):
    spec, params, _, _, _, _ = setup(cell, reset_after, embedding=True, seed=3)
    text = "abcdeedcbaab"
    ids = np.array([[VOCAB.index(ch) for ch in text]])
    loss, _, final = loss_and_grads(spec, params, ids[:, :-1], ids[:, 1:], np.ones((1, len(text) - 1)))
    tr = Network(spec, params, np.float64).trace(text[:-1])
    want = -np.mean(np.log(tr.probs[np.arange(len(text) - 1), ids[0, 1:]]))
    assert abs(loss - want) < 1e-12
    for (h, c), (h_ref, c_ref) in zip(final, tr.state, strict=True):
        np.testing.assert_allclose(h[0], h_ref, atol=1e-12)
        if c is not None:
            np.testing.assert_allclose(c[0], c_ref, atol=1e-12)


def test_masked_positions_carry_no_gradient():
    spec, params, x, y, mask, state = setup("lstm", False, True)
    mask[:] = 0
    mask[0, -1] = 1
    base = loss_and_grads(spec, params, x, y, mask, state)
    y2 = y.copy()
    y2[1:] = (y2[1:] + 1) % 5  # change only targets the mask ignores
    other = loss_and_grads(spec, params, x, y2, mask, state)
    assert base[0] == other[0]
    for n in params:
        np.testing.assert_array_equal(base[1][n], other[1][n])


@pytest.mark.parametrize("head_at", ["every", "last"])
@pytest.mark.parametrize(("cell", "reset_after"), CELLS, ids=IDS)
def test_regression_gradients_match_finite_differences(cell, reset_after, head_at):
    """A values head (mean squared error) on vector input, scored at every step or at each row's last."""
    rng = np.random.default_rng(5)
    spec = Spec(cell=cell, input_size=2, hidden_size=3, num_layers=2, reset_after=reset_after, output_size=2)
    spec.head, spec.head_at = "values", head_at
    params = {n: rng.standard_normal(spec.expected_shape(n)) * 0.5 for n in spec.param_names()}
    x, y = rng.standard_normal((3, 6, 2)), rng.standard_normal((3, 6, 2))
    mask = np.ones((3, 6))
    mask[1, 4:] = 0  # a shorter row: its last scored step is 3
    _, grads, _ = loss_and_grads(spec, params, x, y, mask)
    assert set(grads) == set(params)
    for name, a in params.items():
        num = np.zeros_like(a)
        for idx in np.ndindex(a.shape):
            old = a[idx]
            a[idx] = old + EPS
            up = loss_and_grads(spec, params, x, y, mask)[0]
            a[idx] = old - EPS
            down = loss_and_grads(spec, params, x, y, mask)[0]
            a[idx] = old
            num[idx] = (up - down) / (2 * EPS)
        rel = np.linalg.norm(num - grads[name]) / max(np.linalg.norm(num) + np.linalg.norm(grads[name]), 1e-12)
        assert np.abs(num).max() > 0, f"{name}: no gradient at all"
        assert rel <= TOL, f"{name}: relative error {rel:.2e}"


@pytest.mark.parametrize("head_at", ["every", "last"])
def test_the_regression_loss_is_the_mean_squared_error_of_the_trace(head_at):
    """The trainer's loss is the mean over the scored steps of (h_top W + b - y)², from Network.trace."""
    rng = np.random.default_rng(7)
    spec = Spec(cell="lstm", input_size=2, hidden_size=4, output_size=1)
    spec.head, spec.head_at = "values", head_at
    params = {n: rng.standard_normal(spec.expected_shape(n)) * 0.5 for n in spec.param_names()}
    x, y = rng.standard_normal((1, 9, 2)), rng.standard_normal((1, 9, 1))
    loss, _, _ = loss_and_grads(spec, params, x, y, np.ones((1, 9)))
    tr = Network(spec, params, np.float64).trace(x[0])
    pred = tr.layers[-1]["h"] @ params["head.W"] + params["head.b"]  # (T, 1)
    err = (pred - y[0]) ** 2
    assert abs(loss - (err[-1, 0] if head_at == "last" else err.mean())) < 1e-12


def test_head_at_last_scores_each_rows_last_real_step():
    """Padded rows of a batch: with head_at "last", each row counts at its own last step, not the batch's."""
    rng = np.random.default_rng(8)
    spec = Spec(cell="gru", input_size=2, hidden_size=3, output_size=1)
    spec.head, spec.head_at = "values", "last"
    params = {n: rng.standard_normal(spec.expected_shape(n)) * 0.5 for n in spec.param_names()}
    x, y = rng.standard_normal((2, 6, 2)), rng.standard_normal((2, 6, 1))
    mask = np.ones((2, 6))
    mask[1, 3:] = 0  # row 1 is 3 steps long
    loss, _, _ = loss_and_grads(spec, params, x, y, mask)
    net = Network(spec, params, np.float64)
    errs = []
    for row, steps in ((0, 6), (1, 3)):
        h = net.trace(x[row, :steps]).layers[-1]["h"][-1]  # (H,) the row's last step
        errs.append(float(((h @ params["head.W"] + params["head.b"] - y[row, steps - 1]) ** 2)[0]))
    assert abs(loss - np.mean(errs)) < 1e-12
