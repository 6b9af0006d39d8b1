"""Network.trace_batch: several documents traced together (one matrix-matrix product a step, padded and
masked) give each document the trace ``net.trace`` gives it alone, whatever else is in the batch."""

from __future__ import annotations

import numpy as np
import pytest

from model import Cancelled, InputError, Network, Spec

from .test_network import CELL_IDS, CELLS, CHARS, make_params

TOL = {"atol": 1e-6, "rtol": 0}
LENGTHS = [5, 1, 9, 3, 9, 2]  # ragged, incl. length 1 and two of the longest


def net_for(cell, reset_after, L, direction="forward", text=False, proj=None, head_at="every", seed=0):
    kw = dict(vocab=CHARS, tokenizer="char", output_size=len(CHARS)) if text else dict(output_size=3)
    D = len(CHARS) if text else 3
    spec = Spec(
        cell, D, 6, num_layers=L, reset_after=reset_after, direction=direction, proj_size=proj, head_at=head_at, **kw
    )
    return Network(spec, make_params(spec, seed))


def vectors(lengths, seed=1):
    rng = np.random.default_rng(seed)
    return [rng.normal(size=(n, 3)).astype(np.float32) for n in lengths]


def texts(lengths, seed=1):
    rng = np.random.default_rng(seed)
    letters = "abcde :()"
    return ["".join(rng.choice(list(letters), n)) for n in lengths]


def float32_error(net, xs):
    """How far float32 ``trace`` itself is from float64 on these documents: a 3-layer rnn with these weights
    amplifies rounding past 1e-6 (1.1e-6 on its own), so a batch is held to twice that there."""
    n64 = net.astype(np.float64)
    err = 0.0
    for x in xs:
        a, b = net.trace(x), n64.trace(x if isinstance(x, str) else x.astype(np.float64))
        err = max(err, max(float(np.abs(la["h"] - lb["h"]).max()) for la, lb in zip(a.layers, b.layers)))
    return err


def assert_same(batch, alone, atol=1e-6, head_gain=1.0):
    """Every gate to ``atol``; the head's outputs to ``atol`` times ``head_gain`` (|Δy_k| <= Σ_j |W_jk| |Δh_j|:
    a values head is unbounded, y ~ 2 here, where float32's steps are 2.4e-7) and 1e-6 relative."""
    TOL = {"atol": atol, "rtol": 0}
    HEAD_TOL = {"atol": atol * max(head_gain, 1.0), "rtol": 1e-6}
    assert len(batch) == len(alone)
    for n, (a, b) in enumerate(zip(batch, alone)):
        assert a.tokens == b.tokens and a.display == b.display and a.unknown == b.unknown
        assert a.directions == b.directions and a.head_at == b.head_at and a.head_kind == b.head_kind
        assert len(a.layers) == len(b.layers)
        for k, (ga, gb) in enumerate(zip(a.layers, b.layers)):
            assert ga.keys() == gb.keys()
            for g in gb:
                assert ga[g].shape == gb[g].shape, f"document {n} layer {k} gate {g}"
                np.testing.assert_allclose(ga[g], gb[g], **TOL, err_msg=f"document {n} layer {k} gate {g}")
        for x, y in ((a.probs, b.probs), (a.values, b.values)):
            assert (x is None) == (y is None)
            if y is not None:
                np.testing.assert_allclose(x, y, **HEAD_TOL, err_msg=f"document {n} head")
        for (h, c), (h2, c2) in zip(a.initial, b.initial):
            np.testing.assert_array_equal(h, h2)
            assert (c is None) == (c2 is None)


@pytest.mark.parametrize("L", [1, 2, 3])
@pytest.mark.parametrize("cell,reset_after", CELLS, ids=CELL_IDS)
def test_each_document_equals_its_trace_alone(cell, reset_after, L):
    net = net_for(cell, reset_after, L)
    xs = vectors(LENGTHS)
    gain = float(np.abs(net.params["head.W"]).sum(0).max())
    assert_same(net.trace_batch(xs), [net.trace(x) for x in xs], max(1e-6, 2 * float32_error(net, xs)), gain)


@pytest.mark.parametrize("direction", ["forward", "bidirectional"])
@pytest.mark.parametrize("cell,reset_after", CELLS, ids=CELL_IDS)
def test_float64_is_the_same_computation(cell, reset_after, direction):
    net = net_for(cell, reset_after, 3, direction=direction).astype(np.float64)
    xs = [x.astype(np.float64) for x in vectors(LENGTHS)]
    assert_same(net.trace_batch(xs), [net.trace(x) for x in xs], 1e-12)


@pytest.mark.parametrize("L", [1, 2])
def test_projected_lstm(L):
    net = net_for("lstm", False, L, proj=4)
    xs = vectors(LENGTHS)
    batch = net.trace_batch(xs)
    assert batch[0].layers[0]["h"].shape == (5, 4) and batch[0].layers[0]["m"].shape == (5, 6)
    assert_same(batch, [net.trace(x) for x in xs])


@pytest.mark.parametrize("direction", ["reverse", "bidirectional"])
@pytest.mark.parametrize("cell,reset_after", CELLS, ids=CELL_IDS)
def test_backward_directions_start_at_each_documents_own_end(cell, reset_after, direction):
    net = net_for(cell, reset_after, 2, direction=direction)
    xs = vectors(LENGTHS)
    batch = net.trace_batch(xs)
    exact = [net.astype(np.float64).trace(x.astype(np.float64)) for x in xs]
    assert_same(batch, exact, 1e-6)  # within 1e-6 of the exact values, as net.trace is (3.1e-7 here, the batch 8.4e-7)
    assert_same(batch, [net.trace(x) for x in xs], 2e-6)  # so within 2e-6 of net.trace (a c_tilde 1.03e-6 apart)


@pytest.mark.parametrize("direction", ["forward", "bidirectional"])
def test_text_and_head_at_last(direction):
    net = net_for("lstm", False, 2, direction=direction, text=True, head_at="last")
    docs = texts(LENGTHS)
    batch = net.trace_batch(docs)
    assert_same(batch, [net.trace(x) for x in docs])
    assert batch[2].probs.shape == (9, len(CHARS))


def test_without_probs():
    net = net_for("gru", True, 2, text=True)
    docs = texts([4, 7])
    batch = net.trace_batch(docs, probs=False)
    assert all(t.probs is None for t in batch)
    assert_same(batch, [net.trace(x, probs=False) for x in docs])


@pytest.mark.parametrize("cell,reset_after", CELLS, ids=CELL_IDS)
def test_result_does_not_depend_on_batch_composition_or_order(cell, reset_after):
    net = net_for(cell, reset_after, 2, direction="bidirectional")
    xs = vectors(LENGTHS)
    whole = net.trace_batch(xs)
    order = [4, 1, 5, 0, 3, 2]
    shuffled = net.trace_batch([xs[i] for i in order])
    assert_same([shuffled[order.index(n)] for n in range(len(xs))], whole)
    alone = [net.trace_batch([x])[0] for x in xs]  # each in a batch of one, no padding
    assert_same(alone, whole)
    others = net.trace_batch([xs[1]] + vectors([30, 2], seed=9))[0]  # beside a much longer document
    assert_same([others], [whole[1]])


def test_empty_list_and_bad_documents_are_refused_by_index():
    net = net_for("lstm", False, 1)
    with pytest.raises(InputError, match="no documents"):
        net.trace_batch([])
    with pytest.raises(InputError, match="list of documents"):
        net.trace_batch(np.zeros((3, 3), np.float32))
    good = vectors([2])[0]
    with pytest.raises(InputError, match=r"document 2: the input is empty"):
        net.trace_batch([good, good, np.zeros((0, 3))])
    with pytest.raises(InputError, match=r"document 1: each input vector must have 3 values, got 2"):
        net.trace_batch([good, np.zeros((4, 2))])
    with pytest.raises(InputError, match=r"document 1: the input holds NaN"):
        net.trace_batch([good, np.array([[0, np.nan, 0]])])
    with pytest.raises(InputError, match=r"document 0: this model takes vectors, not text"):
        net.trace_batch(["abc"])
    tnet = net_for("gru", False, 1, text=True)
    with pytest.raises(InputError, match=r"document 1: the input is empty"):
        tnet.trace_batch(["ab", ""])


def test_stop_cancels_before_running():
    net = net_for("lstm", False, 2)
    asked = []

    def stop():
        asked.append(1)
        return len(asked) > 1

    with pytest.raises(Cancelled, match="layer 1"):
        net.trace_batch(vectors([4, 4]), stop=stop)  # one span of steps a layer
    assert len(asked) == 2
    assert_same(net.trace_batch(vectors([3, 4]), stop=lambda: False), [net.trace(x) for x in vectors([3, 4])])


@pytest.mark.parametrize("direction", ["forward", "bidirectional"])
@pytest.mark.parametrize("cell,reset_after", CELLS, ids=CELL_IDS)
def test_only_the_gates_asked_for_are_kept(cell, reset_after, direction):
    net = net_for(cell, reset_after, 2, direction=direction, text=True)
    docs = texts(LENGTHS)
    asked = ("h", "c") if cell not in ("gru", "rnn") else ("h",)
    kept = net.trace_batch(docs, probs=False, gates=asked)
    alone = [net.trace(d, probs=False) for d in docs]
    for a, b in zip(kept, alone):
        assert a.gates == tuple(g for g in net.gates if g in asked) and a.probs is None
        for la, lb in zip(a.layers, b.layers):
            assert set(la) == set(asked)  # every layer, the ones below the top too
            for g in asked:
                np.testing.assert_allclose(la[g], lb[g], **TOL, err_msg=g)


def test_a_gate_subset_without_h_still_gets_the_heads_outputs():
    net = net_for("lstm", False, 2, text=True)
    docs = texts([6, 2, 4])
    kept = net.trace_batch(docs, gates=["f"])
    for a, b in zip(kept, [net.trace(d) for d in docs]):
        assert a.gates == ("f",) and [set(la) for la in a.layers] == [{"f"}, {"f"}]
        np.testing.assert_allclose(a.probs, b.probs, atol=1e-6, rtol=1e-6)
        np.testing.assert_allclose(a.layers[1]["f"], b.layers[1]["f"], **TOL)


def test_projected_lstm_keeps_m_or_h():
    net = net_for("lstm", False, 2, proj=4)
    xs = vectors(LENGTHS)
    alone = [net.trace(x) for x in xs]
    for asked in (("m",), ("h", "c")):
        for a, b in zip(net.trace_batch(xs, probs=False, gates=asked), alone):
            for la, lb in zip(a.layers, b.layers):
                assert set(la) == set(asked)
                for g in asked:
                    np.testing.assert_allclose(la[g], lb[g], **TOL)


def test_unknown_or_no_gates_are_refused_naming_the_models_gates():
    net = net_for("gru", False, 1)
    with pytest.raises(InputError, match=r"unknown gate 'c': a gru layer records z, r, h_tilde, h"):
        net.trace_batch(vectors([3]), gates=("h", "c"))
    with pytest.raises(InputError, match=r"no gates to keep: name at least one of z, r, h_tilde, h"):
        net.trace_batch(vectors([3]), gates=())


@pytest.mark.parametrize("threads", [1, 2, 4])
def test_threads_sharing_the_documents_give_each_its_trace(threads):
    net = net_for("lstm", False, 2, direction="bidirectional")
    xs = vectors(LENGTHS)
    shared = net.trace_batch(xs, threads=threads)
    assert_same(shared, net.trace_batch(xs))  # the shares' products have other row counts: other rounding only
    assert_same(shared, [net.trace(x) for x in xs], 2e-6)  # (c of layer 1 here: 1.04e-6 off with 2 threads)
    with pytest.raises(InputError, match="threads must be a positive integer, got 0"):
        net.trace_batch(xs, threads=0)


def test_a_large_batch_gives_each_document_its_trace_alone():
    """64 documents of up to 300 steps, 32 units: every row of the product, every block of the kernels."""
    spec = Spec("lstm", 3, 32, output_size=2)
    net = Network(spec, make_params(spec, 3))
    xs = vectors(np.random.default_rng(5).integers(1, 300, 64).tolist(), seed=4)
    batch = net.trace_batch(xs, probs=False, gates=("h", "c"))
    n64 = net.astype(np.float64)
    for n in (0, 17, 63):
        exact = n64.trace(xs[n].astype(np.float64), probs=False)
        alone = net.trace(xs[n], probs=False)
        for g in ("h", "c"):
            ours = np.abs(batch[n].layers[0][g] - exact.layers[0][g]).max()
            numpy = np.abs(alone.layers[0][g] - exact.layers[0][g]).max()
            assert ours <= max(2 * numpy, 1e-6), (n, g, ours, numpy)  # as close to float64 as net.trace itself


def test_the_layers_above_read_h_even_when_it_is_not_kept():
    net = net_for("coupled", False, 3, direction="bidirectional")
    xs = vectors(LENGTHS)
    for a, b in zip(net.trace_batch(xs, probs=False, gates=("c",)), [net.trace(x, probs=False) for x in xs]):
        assert [set(la) for la in a.layers] == [{"c"}] * 3
        np.testing.assert_allclose(a.layers[2]["c"], b.layers[2]["c"], atol=2e-6, rtol=0)


@pytest.mark.parametrize("compiled", [True, False], ids=["compiled", "numpy"])
@pytest.mark.parametrize("L", [1, 2])
@pytest.mark.parametrize("cell,reset_after", CELLS, ids=CELL_IDS)
def test_states_continue_documents_traced_in_pieces(cell, reset_after, L, compiled, monkeypatch):
    """A document traced in pieces, each piece from the state the one before left (``states``), in batches with
    other documents from zero: each piece equals ``trace(piece, state)``, and the pieces together the whole trace
    (the longest document runs alone for its last steps: the compiled one-row loop)."""
    from model import batched

    monkeypatch.setattr(batched, "COMPILED", compiled)
    net = net_for(cell, reset_after, L)
    (whole,), others = vectors([23]), vectors([4, 9, 2], seed=2)
    ref = net.trace(whole)
    state, pieces = None, []
    for t0, t1 in ((0, 6), (6, 7), (7, 23)):
        got = net.trace_batch([others[0], whole[t0:t1], *others[1:]], states=[None, state, None, None])
        assert_same(got, [net.trace(others[0]), net.trace(whole[t0:t1], state), *map(net.trace, others[1:])])
        pieces.append(got[1])
        state = got[1].state
    for k in range(L):
        for g in net.gates:
            np.testing.assert_allclose(np.concatenate([p.layers[k][g] for p in pieces]), ref.layers[k][g], **TOL)


def test_states_are_refused_for_a_backward_direction_or_the_wrong_count():
    net = net_for("lstm", False, 1, direction="bidirectional")
    with pytest.raises(InputError, match="forward networks only"):
        net.trace_batch(vectors([3, 4]), states=[None, None])
    fwd = net_for("lstm", False, 1)
    with pytest.raises(InputError, match="states holds 1 entries for 2 documents"):
        fwd.trace_batch(vectors([3, 4]), states=[None])
    with pytest.raises(InputError, match="document 1: .*state"):
        fwd.trace_batch(vectors([3, 4]), states=[None, [(np.zeros(2, np.float32), np.zeros(2, np.float32))]])
