"""A stoppable run (``stop=``): the same numbers as one run, and it stops when asked, leaving nothing half-done."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import model
from model import Cancelled
from model.cells import has_cell_state

from .test_network import CELL_IDS, CELLS, assert_traces_close, inputs, text_net, vector_net


@pytest.mark.parametrize(("cell", "reset_after"), CELLS, ids=CELL_IDS)
def test_a_run_in_chunks_equals_one_run_for_every_cell(cell, reset_after, monkeypatch):
    net = vector_net(cell, reset_after, L=3, out=5)
    monkeypatch.setattr(net, "chunk_steps", lambda: 7)  # 100 steps: 15 chunks, the last one short
    x = inputs(3, 100)
    state = [(np.full(4, 0.3, np.float32), np.full(4, -0.2, np.float32) if has_cell_state(cell) else None)] * 3
    asked = []
    whole, chunked = net.trace(x, state=state), net.trace(x, state=state, stop=lambda: asked.append(1) and False)
    assert len(asked) == 15  # asked before each chunk
    assert_traces_close(whole, chunked)
    assert chunked.tokens == whole.tokens
    for k in range(3):  # it still knows where it started: unit() and state_at(0) read the initial state
        np.testing.assert_array_equal(chunked.state_at(0)[k][0], state[k][0])


def test_it_stops_when_asked_and_says_how_far_it_got(monkeypatch):
    net = text_net("lstm")
    monkeypatch.setattr(net, "chunk_steps", lambda: 4)
    calls = iter([False, False, True])
    with pytest.raises(Cancelled, match="stopped after 8 of 30 steps"):
        net.trace("abcde " * 5, stop=lambda: next(calls))


def test_a_cancelled_edit_leaves_the_buffer_as_it_was(monkeypatch):
    net = text_net("gru")
    monkeypatch.setattr(net, "chunk_steps", lambda: 4)
    buf = model.TraceBuffer(net)
    buf.update("abc abc")
    before = {g: a.copy() for g, a in buf.trace.layers[0].items()}
    with pytest.raises(Cancelled):
        buf.update("abc abd" + "a" * 40, stop=lambda: True)
    assert buf.trace.tokens == list("abc abc")
    for g, a in before.items():
        np.testing.assert_array_equal(buf.trace.layers[0][g], a)
    k, _ = buf.update("abc abcd")  # and the next edit resumes from it
    assert k == 7


def test_cancelled_is_a_gatescope_error_but_not_the_callers_input():
    assert issubclass(Cancelled, model.GatescopeError) and not issubclass(Cancelled, model.InputError)


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_trace_nbytes_is_what_a_trace_holds(cell):
    net = text_net(cell, L=2)
    tr = net.trace("abc dab " * 9)
    held = sum(a.nbytes for la in tr.layers for a in la.values()) + tr.probs.nbytes
    assert net.trace_nbytes(len(tr)) == held


def test_chunks_are_tens_of_milliseconds_of_work_whatever_the_size():
    assert vector_net("lstm", H=4).chunk_steps() == 4096  # tiny: the most steps a chunk
    assert 16 <= vector_net("lstm", H=1024, L=2).chunk_steps() <= 64


def test_every_product_of_a_trace_runs_on_one_blas_thread(monkeypatch):
    """The head's product too: BLAS threads it woke spin afterwards, and ten 500-step edits a second then
    took 1.07 cores instead of 0.11 (bench/load.py found it)."""
    from threadpoolctl import threadpool_info

    net = model.load("code")
    seen = []
    outputs = type(net)._outputs
    monkeypatch.setattr(
        type(net), "_outputs", lambda self, h: seen.append(_blas_threads(threadpool_info())) or outputs(self, h)
    )
    for stop in (None, lambda: False):
        net.trace("def f(x):\n    return x\n" * 20, stop=stop)
    assert seen == [1, 1]


def _blas_threads(info: list[dict]) -> int:
    return max((i["num_threads"] for i in info if i.get("user_api") == "blas"), default=1)


def test_a_blas_library_loaded_after_the_first_trace_is_held_to_one_thread_too():
    """SciPy brings its own OpenBLAS; loaded after the first trace (the compare view imports it on first use), it
    kept two threads during traces, and a process that had run a comparison traced and indexed on two (in a fresh
    interpreter, so that SciPy is not loaded before the first trace)."""
    script = textwrap.dedent(
        """
        import sys, model
        from threadpoolctl import threadpool_info
        net = model.load("dyck")
        net.trace("(())$")
        assert "scipy" not in sys.modules
        import scipy.optimize  # noqa: F401  its OpenBLAS loads now
        seen = []
        outputs = type(net)._outputs
        def counted(self, h):
            seen.append([i["num_threads"] for i in threadpool_info()])
            return outputs(self, h)
        type(net)._outputs = counted
        net.trace("(()())$")
        print(seen[0])
        """
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True)
    threads = json.loads(out.stdout)
    assert len(threads) >= 2 and set(threads) == {1}, threads  # NumPy's OpenBLAS and SciPy's, one thread each
