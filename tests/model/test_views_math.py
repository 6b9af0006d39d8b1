"""Saturation, unit order (average-linkage clustering) and pattern match, against hand-worked cases."""

from __future__ import annotations

import math

import numpy as np
import pytest

import model
from model.analysis import match, order, saturation

# ---------------------------------------------------------------------------------------------------------------------
# Saturation


def test_saturation_counts_each_unit_below_and_above_its_gates_bounds_by_hand():
    f = np.array([[0.05, 0.5, 0.95], [0.09, 0.91, 0.1], [0.5, 0.95, 0.9], [0.0, 1.0, 0.89]])  # (4 steps, 3 units)
    out = saturation.fractions(f, "f")
    # unit 0: 0.05, 0.09, 0.0 are < 0.1 (3 of 4); unit 1: 0.91, 0.95, 1.0 are > 0.9; unit 2: 0.1 and 0.9 are not
    # saturated (strict bounds), 0.95 is right-saturated
    assert out["left"].tolist() == [0.75, 0.0, 0.0]
    assert out["right"].tolist() == [0.0, 0.75, 0.25]
    h = np.array([[-0.95, 0.95], [-0.5, 0.99], [-0.91, -0.91], [0.2, 0.0]])  # a tanh-valued gate: bounds -0.9 / 0.9
    out = saturation.fractions(h, "h")
    assert out["left"].tolist() == [0.5, 0.25] and out["right"].tolist() == [0.0, 0.5]


def test_saturation_of_a_trace_covers_every_bounded_gate_and_leaves_c_out():
    net = model.load("code")
    text = "def f(x):\n    return x"
    tr = net.trace(text)
    out = saturation.saturation(tr, 0)
    assert set(out["gates"]) == {"f", "i", "c_tilde", "o", "h"}  # c is unbounded
    assert out["steps"] == len(text) and out["bounds"]["f"] == [0.1, 0.9] and out["bounds"]["h"] == [-0.9, 0.9]
    o = tr.layers[0]["o"]
    assert out["gates"]["o"]["right"] == pytest.approx(((o > 0.9).sum(0) / len(text)).tolist(), abs=1e-6)
    for lr in out["gates"].values():
        assert all(a + b <= 1 + 1e-9 for a, b in zip(lr["left"], lr["right"]))
    with pytest.raises(model.InputError, match="unbounded"):
        saturation.fractions(tr.layers[0]["c"], "c")
    with pytest.raises(model.InputError, match="layer 3"):
        saturation.saturation(tr, 3)


# ---------------------------------------------------------------------------------------------------------------------
# Order


def test_linkage_merges_four_points_as_average_linkage_does_by_hand():
    x = np.array([0.0, 1.0, 3.0, 7.0])
    D = np.abs(x[:, None] - x[None, :])
    Z = order.linkage(D)
    # {0,1} at 1; d({0,1}, 3) = (3 + 2) / 2 = 2.5 < d(3, 7) = 4; d({0,1,3}, 7) = (7 + 6 + 4) / 3
    assert Z.tolist() == [[0, 1, 1.0, 2], [2, 4, 2.5, 3], [3, 5, pytest.approx(17 / 3), 4]]
    assert order.leaf_order(Z, D) == [0, 1, 2, 3]


def test_leaf_order_turns_each_half_of_a_merge_so_the_closest_leaves_meet():
    # units at 1, 0 (merged first, as [1, 0]), 5, 7: joining them must turn [1, 0] round so that 1 meets 5
    x = np.array([1.0, 0.0, 5.0, 7.0])
    D = np.abs(x[:, None] - x[None, :])
    assert [x[u] for u in order.leaf_order(order.linkage(D), D)] in ([0, 1, 5, 7], [7, 5, 1, 0])
    # and the right half: 12 meets 10 next to 1, never 0
    x = np.array([12.0, 0.0, 10.0, 1.0, 11.0])
    D = np.abs(x[:, None] - x[None, :])
    assert [x[u] for u in order.leaf_order(order.linkage(D), D)] in ([0, 1, 10, 11, 12], [12, 11, 10, 1, 0])


def test_correlations_stay_exact_for_units_far_from_zero():
    # a cell state can sit at hundreds: sums of squares of raw values would cancel; the shifted sums do not
    s = np.sin(np.arange(500) / 5.0)
    X = np.stack([1e5 + s, 1e5 - 0.5 * s + 0.01 * np.cos(np.arange(500.0)), np.cos(np.arange(500) / 3.0)], axis=1)
    r, _ = order.correlation([X[:100], X[100:]])
    assert np.allclose(r, np.corrcoef(X.T), atol=1e-9)


def test_similar_units_sit_together_and_a_random_one_apart():
    rng = np.random.default_rng(0)
    T = 400
    s = np.sin(np.arange(T) / 9.0)
    noise = rng.standard_normal((T, 3))
    # unit 0: s; unit 1: noise; unit 2: 3 s + 1 (r = 1 with unit 0); unit 3: -s (r = -1); unit 4: noise
    X = np.stack([s, noise[:, 0], 3 * s + 1, -s, noise[:, 1]], axis=1)
    r, n = order.correlation([X[:150], X[150:]])  # streamed in two blocks
    assert n == T and r[0, 2] == pytest.approx(1.0) and r[0, 3] == pytest.approx(-1.0)
    assert np.allclose(r, np.corrcoef(X.T), atol=1e-12)
    got = order.similar_order(r)
    assert sorted(got) == list(range(5))
    where = {u: k for k, u in enumerate(got)}
    assert abs(where[0] - where[2]) == 1  # identical up to scale: neighbours
    trio = [where[0], where[2], where[3]]
    assert max(trio) - min(trio) == 2  # the mirror image joins them (1 - |r|): three neighbours
    assert min(abs(where[1] - where[u]) for u in (0, 2)) >= 2  # the random unit is not next to the pair
    signed = order.similar_order(r, signed=True)
    w = {u: k for k, u in enumerate(signed)}
    assert abs(w[0] - w[2]) == 1 and min(abs(w[3] - w[0]), abs(w[3] - w[2])) >= 2  # 1 - r: the mirror is far


def test_constant_units_get_no_correlation_and_an_order_still_covers_every_unit():
    X = np.stack([np.arange(10.0), np.full(10, 0.3), np.arange(10.0) ** 2, np.full(10, 0.3)], axis=1)
    r, _ = order.correlation([X])
    assert r[1, 0] == 0 and r[1, 3] == 0 and r[1, 1] == 1  # constant: r undefined, taken as 0
    assert sorted(order.similar_order(r)) == [0, 1, 2, 3]
    with pytest.raises(model.InputError, match="2 steps"):
        order.correlation([X[:1]])


def test_the_order_of_a_wide_layer_is_a_permutation():
    r, _ = order.correlation([np.random.default_rng(1).standard_normal((200, 300))])
    assert sorted(order.similar_order(r)) == list(range(300))


# ---------------------------------------------------------------------------------------------------------------------
# Match


def test_the_units_on_during_a_span_are_those_at_or_above_the_threshold_on_every_step():
    h = np.array(
        [
            [0.9, 0.1, 0.6, 0.6],
            [0.8, 0.7, 0.5, 0.7],  # span [1, 3): unit 0 (0.8, 0.6), unit 3 (0.7, 0.5); unit 2 drops to 0.4
            [0.6, 0.7, 0.4, 0.5],
            [0.0, 0.0, 0.0, 0.0],
        ]
    )
    assert match.units_on(h, 1, 3, 0.5) == [0, 1, 3]
    assert match.units_on(h, 1, 3, 0.6) == [0, 1]
    assert match.units_on(h, 1, 3, 0.6, share=0.5) == [0, 1, 3]  # on for 1 of the 2 steps is enough
    assert match.units_on(h, 3, 4, 0.5) == []
    with pytest.raises(model.InputError, match=r"\[3, 9\)"):
        match.units_on(h, 3, 9, 0.5)
    with pytest.raises(model.InputError, match="outside the range of gate 'f'"):
        match.check_threshold("f", 1.5)
    match.check_threshold("c", -12.0)  # c is unbounded: any finite threshold


def _onoff(pattern: str) -> np.ndarray:
    """A (T, 2) array from a string: '1' both units on (0.9), 'a' only unit 0, '0' neither."""
    rows = {"1": [0.9, 0.9], "a": [0.9, 0.1], "0": [0.1, 0.1]}
    return np.array([rows[c] for c in pattern])


def test_runs_are_maximal_inside_a_document_and_rank_by_closeness_to_the_spans_length():
    X = _onoff("0111001100111110" + "11" + "1a1")  # docs: [0, 16), [16, 18), [18, 21)
    starts = [0, 16, 18, 21]
    blocks = [(0, X[:5]), (5, X[5:13]), (13, X[13:])]  # runs cross block boundaries, never documents
    runs, found = match.find_runs(blocks, starts, [0, 1], 0.5, length=3, top=10)
    got = [(r["start"], r["stop"]) for r in runs]
    # runs: [1, 4) len 3, [6, 8) len 2, [10, 15) len 5, [16, 18) len 2 (doc 2: not joined to [10,15)...), [18, 19),
    # [20, 21); ranked by |len - 3|, then by position
    assert got == [(1, 4), (6, 8), (16, 18), (10, 15), (18, 19), (20, 21)]
    assert found == 6 and all(r["off"] == 0 for r in runs)
    # most of the units: 'a' (one of the two on) now matches, at a cost of one unit off
    runs, _ = match.find_runs([(0, X)], starts, [0, 1], 0.5, length=3, min_on=0.5, top=2)
    assert [(r["start"], r["stop"], r["off"]) for r in runs] == [(1, 4, 0), (6, 8, 0)]
    runs, _ = match.find_runs([(0, X)], starts, [0, 1], 0.5, length=3, min_on=0.5, top=10)
    assert (18, 21, 0.3333) in [(r["start"], r["stop"], r["off"]) for r in runs]


def test_runs_equal_a_brute_force_search_on_random_data():
    rng = np.random.default_rng(3)
    for _ in range(100):
        S = int(rng.integers(1, 120))
        X = rng.random((S, 5)) + 0.4 * (rng.random((S, 1)) < 0.5)
        starts = np.unique(np.r_[0, rng.integers(0, S, 4), S])
        units = sorted(rng.choice(5, int(rng.integers(1, 4)), replace=False).tolist())
        bs = int(rng.integers(1, 40))
        blocks = [(a, X[a : a + bs]) for a in range(0, S, bs)]
        got, n = match.find_runs(blocks, starts, units, 0.6, 4, 0.6, 5)
        # brute force: every maximal run of matching steps inside a document
        need = math.ceil(0.6 * len(units) - 1e-9)
        c = (X[:, units] >= 0.6).sum(1)
        ok, runs, t = c >= need, [], 0
        while t < S:
            if ok[t]:
                s, t = t, t + 1
                while t < S and ok[t] and t not in set(starts.tolist()):
                    t += 1
                runs.append((s, t))
            else:
                t += 1
        runs.sort(key=lambda r: ((len(units) - c[r[0] : r[1]]).mean(), abs(r[1] - r[0] - 4), r[0]))
        assert [(r["start"], r["stop"]) for r in got] == runs[:5] and n == len(runs)
