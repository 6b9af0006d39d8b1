"""model/kernels.py: the compiled nonlinearities against float64 NumPy, and trace_batch actually running them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from model import batched, kernels

from .test_trace_batch import assert_same, net_for, vectors

ROOT = Path(__file__).resolve().parents[2]
GRID = np.linspace(-30, 30, 600_001, dtype=np.float32)


def test_tanh_within_2e7_of_exact_and_keeps_small_values_digits():
    out = np.empty_like(GRID)
    kernels.tanh_array(GRID, out)
    exact = np.tanh(GRID.astype(np.float64))
    assert np.abs(out - exact).max() <= 2.5e-7
    small = np.abs(GRID) < 0.7
    rel = np.abs(out[small] - exact[small]) / np.maximum(np.abs(exact[small]), 1e-30)
    assert rel.max() <= 4e-7  # 1e-3 comes out as 1e-3, not 1e-3 ± 1e-7
    assert out[GRID >= 10].min() == 1.0 and out[GRID <= -10].max() == -1.0
    tiny = np.array([0.0, 1e-30, -1e-20], np.float32)
    kernels.tanh_array(tiny, out[:3])
    np.testing.assert_array_equal(out[:3], tiny)


def test_sigmoid_within_1e7_of_exact():
    out = np.empty_like(GRID)
    kernels.sigmoid_array(GRID, out)
    exact = 1 / (1 + np.exp(-GRID.astype(np.float64)))
    assert np.abs(out - exact).max() <= 1.5e-7
    assert out.min() >= 0.0 and out.max() == 1.0


def test_nan_and_infinities():
    x = np.array([np.nan, np.inf, -np.inf, 1e30, -1e30], np.float32)
    t, s = np.empty_like(x), np.empty_like(x)
    kernels.tanh_array(x, t)
    kernels.sigmoid_array(x, s)
    assert np.isnan(t[0]) and np.isnan(s[0])
    np.testing.assert_array_equal(t[1:], [1, -1, 1, -1])
    np.testing.assert_allclose(s[1:], [1, 0, 1, 0], rtol=0, atol=1e-37)


@pytest.mark.parametrize("cell,reset_after", [("lstm", False), ("gru", False), ("gru", True), ("rnn", False)])
def test_float32_batches_run_the_kernels(cell, reset_after, monkeypatch):
    """The equality tests of test_trace_batch.py would pass on the NumPy path too: this one sees the kernels run
    (a plain LSTM's steps with at most batched.NARROW documents left run in one call of lstm_steps: steps 2..5
    here, 3 documents of 10 left)."""
    calls = []
    names = {
        "lstm": ["lstm", "lstm_steps"],
        "gru": ["gru_gates", "gru_state"] if not reset_after else ["gru_after"],
        "rnn": ["rnn"],
    }
    for name in names[cell]:
        real = getattr(kernels, name)
        monkeypatch.setattr(kernels, name, lambda *a, _real=real, _n=name: (calls.append(_n), _real(*a))[1])
    net = net_for(cell, reset_after, 1)
    xs = vectors([6, 6, 6] + [2] * (batched.NARROW - 1))
    assert_same(net.trace_batch(xs), [net.trace(x) for x in xs])
    if cell == "lstm":
        assert calls == ["lstm", "lstm", "lstm_steps"]
    else:
        assert sorted(set(calls)) == sorted(names[cell]) and len(calls) == 6 * len(names[cell])  # one call a step


def test_numpy_path_when_compiled_is_off(monkeypatch):
    monkeypatch.setattr(batched, "COMPILED", False)
    monkeypatch.setattr(kernels, "lstm", None)  # would fail if called
    net = net_for("lstm", False, 2, direction="bidirectional")
    xs = vectors([5, 1, 3])
    assert_same(net.trace_batch(xs), [net.trace(x) for x in xs])


CHECKED = """
import numpy as np
from model import Network, Spec
from tests.model.test_network import make_params
spec = Spec("lstm", 3, 8, num_layers=2, direction="bidirectional")
net = Network(spec, make_params(spec))
xs = [np.full((n, 3), 0.1 * n, np.float32) for n in (7, 1, 5, 3, 6)]
alone = [net.trace(x, probs=False) for x in xs]
for threads in (1, 2, 3):
    for gates in (("c",), ("h", "f")):
        for a, b in zip(net.trace_batch(xs, probs=False, gates=gates, threads=threads), alone):
            for la, lb in zip(a.layers, b.layers):
                for g in gates:
                    assert np.abs(la[g] - lb[g]).max() < 2e-6, (threads, gates, g)
print("in bounds")
"""


def test_every_kernel_write_is_in_bounds(tmp_path):
    """numba does not check indices: compiled again with NUMBA_BOUNDSCHECK=1 (its own cache), a write past a
    record or a scratch row raises IndexError instead of corrupting the heap (as a share of the documents
    once wrote document 4's scratch row into an array of 3)."""
    env = {**os.environ, "NUMBA_BOUNDSCHECK": "1", "NUMBA_CACHE_DIR": str(tmp_path), "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", CHECKED], env=env, cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0 and "in bounds" in done.stdout, done.stderr[-2000:]
