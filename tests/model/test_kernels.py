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
    net = net_for(cell, reset_after, 1)
    xs = vectors([6, 6, 6] + [2] * (batched.NARROW - 1))
    net.trace_batch(xs)  # compiled before the patch: lstm_steps, compiled after it, would call the Python lambda
    for name in names[cell]:
        real = getattr(kernels, name)
        monkeypatch.setattr(kernels, name, lambda *a, _real=real, _n=name: (calls.append(_n), _real(*a))[1])
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


def _as_f32(bits: np.ndarray) -> np.ndarray:
    return np.asarray(bits, np.uint32).view(np.float32)


def _same_halves(x: np.ndarray) -> None:
    """to_half(x) has exactly the bits of NumPy's astype(float16) (which warns of overflow to inf: expected)."""
    with np.errstate(over="ignore"):
        want = x.astype(np.float16).view(np.uint16)
    got = kernels.to_half(x).view(np.uint16)
    bad = np.flatnonzero(got != want)
    first = [(hex(int(x.view(np.uint32).flat[i])), hex(int(got.flat[i])), hex(int(want.flat[i]))) for i in bad[:5]]
    assert not len(bad), first  # (float32 bits, ours, NumPy's)


def test_to_half_rounds_every_float32_edge_case_as_numpy_does():
    # every sign, exponent and 10 kept mantissa bits (2^19 patterns), each with the dropped 13 bits at the
    # rounding edges: exact, just above, just below half, half (a tie: to even), just above half, all ones
    top = np.arange(1 << 19, dtype=np.uint32) << np.uint32(13)
    for low in (0, 1, 0x0FFF, 0x1000, 0x1001, 0x1FFF):
        _same_halves(_as_f32(top | np.uint32(low)))
    # the float32s that become float16 subnormals or underflow (2^-25 .. 2^-14), both signs, every 7th pattern;
    # and float16's largest finite (65504), the tie that rounds it to inf (65520), and past it
    sub = np.arange(0x33000000 - 64, 0x38800000 + 64, 7, dtype=np.uint32)
    _same_halves(_as_f32(np.concatenate([sub, sub | np.uint32(0x80000000)])))
    named = [0, 0x80000000, 0x00000001, 0x007FFFFF, 0x477FE000, 0x477FEFFF, 0x477FF000, 0x47800000]
    inf_nan = [0x7F800000, 0xFF800000, 0x7F800001, 0x7F801FFF, 0x7F802000, 0x7FC00000, 0xFFC00001, 0x7FFFFFFF]
    _same_halves(_as_f32(named + inf_nan))
    # and 4 M random bit patterns, in a 2-d array with a stride (a trace's rows are views)
    rng = np.random.default_rng(12)
    x = _as_f32(rng.integers(0, 2**32, (2048, 4096), dtype=np.uint64).astype(np.uint32))
    _same_halves(x[:, ::2])
    _same_halves(rng.standard_normal((300, 7)).astype(np.float32) * 8)
