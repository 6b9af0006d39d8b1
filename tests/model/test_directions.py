"""Reverse and bidirectional networks: each direction is an independent forward network, one of them run
over the steps reversed; the trace keeps time order, the backward units read their state from step t+1,
and live edits (TraceBuffer) equal a fresh trace exactly."""

from __future__ import annotations

import numpy as np
import pytest

import model
from model import Cancelled, FormatError, Network, Spec
from model.cells import has_cell_state

from .test_network import CELL_IDS, CELLS, CHARS, inputs, make_params

H = 4


def directed_net(cell, reset_after=False, direction="bidirectional", D=3, L=2, out=5, text=False, seed=0):
    vocab = dict(vocab=CHARS, tokenizer="char", output_size=len(CHARS)) if text else dict(output_size=out)
    spec = Spec(cell, len(CHARS) if text else D, H, num_layers=L, reset_after=reset_after, direction=direction, **vocab)
    return Network(spec, make_params(spec, seed))


def one_way(net: Network, k: int, reverse: bool) -> Network:
    """Layer k's forward or backward direction of ``net`` as a plain forward one-layer network."""
    s = net.spec
    pre = f"layers.{k}." + ("reverse." if reverse and s.direction == "bidirectional" else "")
    own = {
        f"layers.0.{n[len(pre) :]}": a for n, a in net.params.items() if n.startswith(pre) and "." not in n[len(pre) :]
    }
    D = s.input_size if k == 0 else s.width
    return Network(Spec(s.cell, D, H, reset_after=s.reset_after), own)


def reference(net: Network, x: np.ndarray, state=None) -> list[dict[str, np.ndarray]]:
    """Every layer of ``net`` from plain forward networks: a backward direction traces x[::-1] and is flipped back."""
    layers, inp = [], x
    for k in range(net.num_layers):
        runs = []
        for j, way in enumerate(net.spec.directions):
            sub = one_way(net, k, way == "backward")
            st = None
            if state is not None:
                h, c = state[k]
                st = [(h[j * H : (j + 1) * H], None if c is None else c[j * H : (j + 1) * H])]
            if way == "backward":
                tr = sub.trace(inp[::-1].copy(), state=st)
                runs.append({g: a[::-1] for g, a in tr.layers[0].items()})
            else:
                runs.append(sub.trace(inp, state=st).layers[0])
        layers.append({g: np.concatenate([r[g] for r in runs], axis=1) for g in runs[0]})
        inp = layers[-1]["h"]
    return layers


def state_for(cell: str, L: int = 2, width: int = 2 * H):
    rng = np.random.default_rng(5)
    return [
        (
            rng.uniform(-0.5, 0.5, width).astype(np.float32),
            rng.uniform(-0.5, 0.5, width).astype(np.float32) if has_cell_state(cell) else None,
        )
        for _ in range(L)
    ]


@pytest.mark.parametrize("direction", ["reverse", "bidirectional"])
@pytest.mark.parametrize(("cell", "reset_after"), CELLS, ids=CELL_IDS)
def test_each_direction_is_a_forward_network_and_the_backward_one_reads_from_the_end(cell, reset_after, direction):
    net = directed_net(cell, reset_after, direction)
    x = inputs(3, 11)
    width = H * (2 if direction == "bidirectional" else 1)
    state = state_for(cell, width=width)
    tr = net.trace(x, state=state)
    want = reference(net, x, state)
    assert tr.directions == (("backward",) if direction == "reverse" else ("forward", "backward"))
    for k in range(2):
        for g in net.gates:
            assert tr.layers[k][g].shape == (11, width)
            np.testing.assert_allclose(tr.layers[k][g], want[k][g], rtol=0, atol=1e-6, err_msg=f"layer {k} {g}")
    logits = want[-1]["h"] @ net.params["head.W"] + net.params["head.b"]
    p = np.exp(logits - logits.max(1, keepdims=True))
    np.testing.assert_allclose(tr.probs, p / p.sum(1, keepdims=True), rtol=0, atol=1e-6)  # read [h_fwd ; h_bwd]


def test_weights_of_the_backward_direction_have_their_own_names_and_shapes():
    s = Spec("lstm", 3, H, num_layers=2, direction="bidirectional", output_size=5)
    names = s.param_names()
    assert "layers.0.reverse.W_f" in names and "layers.1.reverse.U_o" in names and "layers.1.W_f" in names
    assert len(names) == 2 * 2 * 12 + 2
    assert s.expected_shape("layers.0.reverse.W_f") == (3, H)
    assert s.expected_shape("layers.1.W_f") == (2 * H, H)  # layer 1 reads [h_fwd ; h_bwd]
    assert s.expected_shape("layers.1.reverse.U_c") == (H, H)
    assert s.expected_shape("head.W") == (2 * H, 5)
    assert Spec("gru", 3, H, direction="reverse").param_names() == Spec("gru", 3, H).param_names()
    with pytest.raises(FormatError, match="unknown direction 'sideways'"):
        Network(Spec("rnn", 3, H, direction="sideways"), {})


@pytest.mark.parametrize("direction", ["reverse", "bidirectional"])
def test_a_backward_unit_takes_its_previous_state_from_the_next_step(direction):
    net = directed_net("lstm", direction=direction)
    state = state_for("lstm", width=net.width)
    tr = net.trace(inputs(3, 6), state=state)
    u = net.width - 1  # a backward unit
    assert tr.direction_of(u) == "backward"
    assert tr.direction_of(0) == ("backward" if direction == "reverse" else "forward")
    lines = tr.unit(1, u)
    h, c = tr.layers[1]["h"][:, u], tr.layers[1]["c"][:, u]
    np.testing.assert_array_equal(lines["h_prev"], np.append(h[1:], state[1][0][u]))  # h_{t+1}; the initial at T-1
    np.testing.assert_array_equal(lines["c_prev"], np.append(c[1:], state[1][1][u]))
    g = tr.layers[1]
    c_want = g["f"][:, u] * lines["c_prev"] + g["i"][:, u] * g["c_tilde"][:, u]
    np.testing.assert_allclose(lines["c"], c_want, atol=1e-6)
    if direction == "bidirectional":  # a forward unit still reads step t-1
        np.testing.assert_array_equal(tr.unit(1, 0)["h_prev"], np.append(state[1][0][0], tr.layers[1]["h"][:-1, 0]))


def test_sizes_and_chunks_count_both_directions():
    net = directed_net("gru", True, text=True)
    tr = net.trace("abc dab " * 9)
    held = sum(a.nbytes for la in tr.layers for a in la.values()) + tr.probs.nbytes
    assert net.trace_nbytes(len(tr)) == held
    forward = Network(Spec("gru", 3, H, num_layers=2, reset_after=True), make_params(Spec("gru", 3, H, 2, True)))
    assert net.nbytes > forward.nbytes
    assert 2 * net.width == 4 * H and net.zero_state()[0][0].shape == (2 * H,)


@pytest.mark.parametrize("direction", ["reverse", "bidirectional"])
def test_a_stoppable_run_equals_one_run_and_stops_within_a_chunk(direction, monkeypatch):
    net = directed_net("peephole", direction=direction)
    monkeypatch.setattr(net, "chunk_steps", lambda: 7)
    x = inputs(3, 50)
    asked: list[int] = []
    whole, chunked = net.trace(x), net.trace(x, stop=lambda: asked.append(1) and False)
    runs = 2 * len(net.spec.directions)  # layers × directions, each 8 chunks of 7
    assert len(asked) == 8 * runs
    for k in range(2):
        for g in net.gates:
            np.testing.assert_array_equal(chunked.layers[k][g], whole.layers[k][g])
    calls = iter([False] * 3 + [True])
    with pytest.raises(Cancelled, match="stopped in layer 0 .* after 21 of 50 steps"):
        net.trace(x, stop=lambda: next(calls))


@pytest.mark.parametrize("direction", ["reverse", "bidirectional"])
@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_live_edits_rerun_the_backward_direction_and_equal_a_fresh_trace_exactly(cell, direction):
    net = directed_net(cell, cell == "gru", direction, text=True)
    buf = model.TraceBuffer(net)
    rng = np.random.default_rng(3)
    text = "abc (de)"
    for step in range(30):
        at = int(rng.integers(len(text) + 1))
        piece = "".join(rng.choice(list("abcde :()"), size=int(rng.integers(0, 4))))
        text = (text[:at] + piece + text[at + int(rng.integers(0, 3)) :]) or "a"
        k, new = buf.update(list(text))
        full, got = net.trace(text), buf.trace
        assert got is not None and got.tokens == list(text)
        assert k == 0 or len(new) == 0  # every step may change: the reply covers the whole text
        for j in range(2):
            for g in net.gates:
                np.testing.assert_array_equal(got.layers[j][g], full.layers[j][g], err_msg=f"{step} layer {j} {g}")
        np.testing.assert_array_equal(got.probs, full.probs)


def test_a_bidirectional_edit_resumes_only_layer_0_forward(monkeypatch):
    net = directed_net("lstm", text=True, L=1)
    buf = model.TraceBuffer(net)
    buf.update(list("abcabcabc"))
    ran: list[int] = []
    cell = net.cells[0]
    real = cell.run
    monkeypatch.setattr(cell, "run", lambda xW, st: ran.append(len(xW)) or real(xW, st))
    back = net.reverse_cells[0]
    real_back = back.run
    monkeypatch.setattr(back, "run", lambda xW, st: ran.append(-len(xW)) or real_back(xW, st))
    buf.update(list("abcabcabcd"))
    assert ran == [1, -10]  # forward: the one new step; backward: the whole text (O(T) per edit)


def test_state_at_keeps_a_backward_directions_initial_state_and_then_refuses():
    net = directed_net("lstm")
    state = state_for("lstm")
    tr = net.trace(inputs(3, 6), state=state)
    h, c = tr.state_at(4)[0]
    np.testing.assert_array_equal(h[:H], tr.layers[0]["h"][3, :H])
    np.testing.assert_array_equal(h[H:], state[0][0][H:])  # cannot be resumed mid-sequence
    np.testing.assert_array_equal(c[H:], state[0][1][H:])
    with pytest.raises(model.InputError, match="cannot be continued"):
        tr.then(tr)


def test_a_native_round_trip_keeps_the_direction(tmp_path):
    net = directed_net("gru", True, text=True)
    back = model.load(model.save(net, tmp_path / "bi.safetensors"))
    assert back.direction == "bidirectional"
    np.testing.assert_array_equal(back.trace("abc").layers[1]["h"], net.trace("abc").layers[1]["h"])


def test_training_refuses_a_network_with_a_backward_direction_instead_of_computing_wrong_gradients():
    from model.backprop import loss_and_grads

    net = directed_net("lstm", text=True)
    ids = np.zeros((1, 3), np.int64)
    with pytest.raises(model.InputError, match="forward networks only; this one is bidirectional"):
        loss_and_grads(net.spec, net.params, ids, ids, np.ones((1, 3), bool))


def test_a_cancelled_bidirectional_edit_leaves_the_buffer_as_it_was(monkeypatch):
    net = directed_net("gru", True, text=True)
    monkeypatch.setattr(net, "chunk_steps", lambda: 4)
    buf = model.TraceBuffer(net)
    buf.update(list("abc abc"))
    before = {g: a.copy() for g, a in buf.trace.layers[1].items()}
    with pytest.raises(Cancelled):
        buf.update(list("abc abd" + "a" * 40), stop=lambda: True)
    assert buf.trace.tokens == list("abc abc")
    for g, a in before.items():
        np.testing.assert_array_equal(buf.trace.layers[1][g], a)
    k, new = buf.update(list("abc abcd"))
    assert (k, len(new)) == (0, 8)
    np.testing.assert_array_equal(buf.trace.layers[1]["h"], net.trace("abc abcd").layers[1]["h"])
