"""Two runs side by side (model/analysis/compare.py): the pairing of two checkpoints' units, the likelihoods."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import model
from model.analysis.compare import assignment, compare, correlations, match_units, next_logp

TEXT = "c1415926535897932384626433832795028841971693993751058209?"


def permuted(net: model.Network, perm: np.ndarray, flip: np.ndarray | None = None) -> model.Network:
    """The same network with its hidden units renumbered (new unit j is old unit perm[j]) and, with flip, the sign of
    the candidate (hence of C and h) of some units turned over: what a second training could give. It computes the
    same function, so its units match the original's exactly."""
    p = {k: np.array(v) for k, v in net.params.items()}
    s = np.ones(len(perm)) if flip is None else np.where(flip, -1.0, 1.0)  # per new unit
    for g in "fioc":
        W, U, b = p[f"layers.0.W_{g}"], p[f"layers.0.U_{g}"], p[f"layers.0.b_{g}"]
        out = s if g == "c" else np.ones_like(s)  # only the candidate's sign turns over with C
        p[f"layers.0.W_{g}"] = W[:, perm] * out
        p[f"layers.0.U_{g}"] = U[np.ix_(perm, perm)] * s[:, None] * out  # reads the new h (sign s)
        p[f"layers.0.b_{g}"] = b[perm] * out
    p["head.W"] = p["head.W"][perm] * s[:, None]
    return net.with_params(p)


def test_two_checkpoints_that_renumber_and_flip_units_are_matched_exactly():
    net = model.load("recall-lstm")
    perm = np.random.default_rng(1).permutation(net.hidden_size)
    flip = np.arange(net.hidden_size) % 3 == 0
    other = permuted(net, perm, flip)
    a, b = net.trace(TEXT), other.trace(TEXT)
    np.testing.assert_allclose(a.probs, b.probs, atol=1e-5)  # the same function
    out = compare(net, a, other, b, match=True)
    m = out["matching"]
    assert m["gate"] == "c"
    inverse = np.argsort(perm)  # old unit i is new unit inverse[i]
    assert m["order"] == inverse.tolist()
    assert [p["r"] for p in m["pairs"]] == pytest.approx(np.where(flip[inverse], -1.0, 1.0), abs=1e-4)
    assert m["mean_abs_r"] == pytest.approx(1.0, abs=1e-4)
    assert m["identity_abs_r"] < 0.9  # unit k with unit k: what the pairing fixes
    assert np.abs(np.abs(out["difference"]["f"])).max() < 1e-5  # gates with no sign: b − a vanishes once matched
    assert out["logp"]["mean_difference"] == pytest.approx(0.0, abs=1e-4)


def test_the_assignment_is_the_best_of_every_permutation():
    rng = np.random.default_rng(0)
    for _ in range(20):
        score = rng.normal(size=(5, 5))
        rows, cols = assignment(score)
        best = max(sum(score[i, p[i]] for i in range(5)) for p in itertools.permutations(range(5)))
        assert score[rows, cols].sum() == pytest.approx(best)


def test_correlations_equal_numpy_corrcoef_and_a_constant_unit_matches_nothing():
    rng = np.random.default_rng(2)
    A, B = rng.normal(size=(50, 4)), rng.normal(size=(50, 3))
    B[:, 2] = 1.5
    r = correlations(A, B)
    full = np.corrcoef(A.T, B[:, :2].T)[:4, 4:]
    np.testing.assert_allclose(r[:, :2], full, atol=1e-12)
    assert (r[:, 2] == 0).all()
    m = match_units(A, B)
    assert len(m["pairs"]) == 3 and m["identity_abs_r"] is None  # a narrower b: 3 pairs
    assert sorted(m["order"]).count(-1) == 1


def test_next_logp_reads_the_probability_of_the_token_that_came_next():
    net = model.load("dyck")
    tr = net.trace("(()")
    got = next_logp(net, tr)
    assert got[0] == pytest.approx(np.log(tr.probs[0, tr.labels.index("(")]), abs=1e-4)  # read "(", next "("
    assert got[1] == pytest.approx(np.log(tr.probs[1, tr.labels.index(")")]), abs=1e-4)  # read "(", next ")"
    assert got[2] is None  # the last step's next token is not known


def test_two_texts_on_one_model_compare_over_their_common_steps():
    net = model.load("dyck")
    a, b = net.trace("(()"), net.trace("(())")
    out = compare(net, a, net, b)
    assert (out["steps"], out["steps_a"], out["steps_b"], out["same_tokens"]) == (3, 3, 4, False)
    assert np.abs(out["difference"]["c"]).max() == 0  # the same first three steps
    with pytest.raises(model.InputError, match="layer 2"):
        compare(net, a, net, b, layer=2)


def test_lstm_beside_rnn_on_recall_the_rnn_forgets_the_first_symbol():
    lstm, rnn = model.load("recall-lstm"), model.load("recall-rnn")
    a, b = lstm.trace(TEXT), rnn.trace(TEXT)
    out = compare(lstm, a, rnn, b)
    assert out["gates"] == ["h"] and out["matching"] is None and out["difference"] is None  # not paired
    np.testing.assert_array_equal(out["b"]["h"], b.layers[0]["h"])
    answer = a.labels.index(TEXT[0])  # the task: after "?", the first symbol
    assert a.probs[-1, answer] > 0.9 and b.probs[-1, answer] < 0.5  # the aha the comparison shows
