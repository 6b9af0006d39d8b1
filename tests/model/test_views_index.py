"""Saturation, unit order and pattern match over a corpus index, streamed over its blocks across parts, equal the
same computed over all its stored values read at once."""

from __future__ import annotations

import numpy as np
import pytest

import model
from model.analysis import index as index_mod
from model.analysis import match, order, saturation
from model.analysis.index import build

DOCS = ["def f(x):\n    return x\n", "a = [1, 2]\n", "if a:\n    b = (a + 1)\n", "print('hi')\n"]


@pytest.fixture(scope="module")
def net():
    return model.load("code")


@pytest.fixture(scope="module")
def idx(net, tmp_path_factory):
    """The documents indexed with a part each (reads cross parts), in this process."""
    mp = pytest.MonkeyPatch()
    mp.setattr(index_mod, "PART_BYTES", 1)
    try:
        return build(net, DOCS, tmp_path_factory.mktemp("views") / "code.zarr", name="code", scheduler="sync")
    finally:
        mp.undo()


def stored(idx, gate):
    """(S, W) every stored step of `gate`, read at once (the reference the streamed passes must equal); the index's
    own tests check these against the documents' traces."""
    return idx.rows(0, gate, 0, idx.steps)


def test_index_saturation_is_the_fraction_over_every_stored_step(idx, net):
    out = saturation.index_saturation(idx, 0)
    assert set(out["gates"]) == {"h"} and out["steps"] == sum(map(len, DOCS))  # c is recorded but unbounded
    brute = saturation.fractions(stored(idx, "h"), "h")
    assert out["gates"]["h"]["left"] == pytest.approx(brute["left"].tolist(), abs=1e-6)
    assert out["gates"]["h"]["right"] == pytest.approx(brute["right"].tolist(), abs=1e-6)


def test_index_order_streams_the_correlation_over_blocks(idx, net):
    out = order.index_order(idx, 0, "c", rows=7)  # blocks of 7 rows: many blocks, crossing parts' ends
    r, n = order.correlation([stored(idx, "c")])
    assert out["steps"] == n == idx.steps
    assert out["order"] == order.similar_order(r)
    mom = order.Moments(idx.width)
    for _, X in idx.blocks(0, "c", rows=7):
        mom.add(X)
    assert np.allclose(mom.corr(), r, atol=1e-5)  # float32 products: blocks of 7 rows against one of 71


def test_a_long_index_is_ordered_over_windows_spread_over_it(idx):
    out = order.index_order(idx, 0, "c", max_steps=24, window=8)  # S = 68 steps: windows at 0, 30 and 60
    assert order.windows(idx.steps, 24, 8) == [(0, 8), (30, 38), (60, 68)]
    X = stored(idx, "c")
    assert out["steps"] == 24 and "3 windows spread over its 68" in out["method"]
    assert out["order"] == order.similar_order(order.correlation([X[0:8], X[30:38], X[60:68]])[0])
    assert order.windows(100, 200) == [(0, 100)]


def test_index_match_finds_the_same_runs_as_over_the_whole_array(idx, net):
    X = stored(idx, "h")
    units = match.units_on(X, 4, 8, 0.2)
    assert units
    want = match.find_runs([(0, X)], idx.doc_starts, units, 0.2, 4, top=50)
    got = match.find_runs(idx.blocks(0, "h", rows=5), idx.doc_starts, units, 0.2, 4, top=50)
    assert got == want
    runs, _ = got
    starts = set(idx.doc_starts.tolist())
    for r in runs:  # never across a document boundary
        assert not any(r["start"] < s < r["stop"] for s in starts)
