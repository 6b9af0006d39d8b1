"""Network: resuming from a state, stacking, vector and text input, refusing bad input, Spec checks, load() lookup."""

from __future__ import annotations

import numpy as np
import pytest

import model
import model.network
from model import FormatError, Network, Spec

CELLS = [("lstm", False), ("peephole", False), ("coupled", False), ("gru", False), ("gru", True), ("rnn", False)]
CELL_IDS = ["lstm", "peephole", "coupled", "gru", "gru_reset_after", "rnn"]
CHARS = ["<unk>", " ", "a", "b", "c", "d", "e", ":", "(", ")"]
WORDS = ["<unk>", "the", "cat", "sat", "on", "mat", "a", "dog"]
TOL = {"atol": 1e-6, "rtol": 0}


def make_params(spec: Spec, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    params = {}
    for n in spec.param_names():
        shape = spec.expected_shape(n)
        params[n] = rng.uniform(-1.0, 1.0, shape) if n.split(".")[-1].startswith("b") else rng.normal(0, 0.6, shape)
    return params


def vector_net(cell, reset_after=False, D=3, H=4, L=2, out=None, seed=0, dtype=np.float32):
    spec = Spec(cell, D, H, num_layers=L, reset_after=reset_after, output_size=out)
    return Network(spec, make_params(spec, seed), dtype)


def text_net(cell, reset_after=False, kind="char", embedding=False, H=4, L=2, seed=0):
    vocab = CHARS if kind == "char" else WORDS
    D = 5 if embedding else len(vocab)
    spec = Spec(
        cell,
        D,
        H,
        num_layers=L,
        reset_after=reset_after,
        vocab=vocab,
        tokenizer=kind,
        embedding=embedding,
        output_size=len(vocab),
    )
    return Network(spec, make_params(spec, seed))


def inputs(D, T, seed=1):
    return np.random.default_rng(seed).normal(size=(T, D)).astype(np.float32)


def assert_traces_close(a, b, tol=TOL, gates=None):
    assert len(a.layers) == len(b.layers)
    for k, (ga, gb) in enumerate(zip(a.layers, b.layers, strict=True)):
        for gate in gates or ga:
            np.testing.assert_allclose(ga[gate], gb[gate], **tol, err_msg=f"layer {k} gate {gate}")
    if a.probs is not None or b.probs is not None:
        np.testing.assert_allclose(a.probs, b.probs, **tol)


def concat(*traces):
    """Layers of several traces joined along time, as a stand-in trace for comparison."""
    from model import Trace

    first = traces[0]
    layers = [
        {g: np.concatenate([t.layers[k][g] for t in traces]) for g in first.layers[k]} for k in range(len(first.layers))
    ]
    probs = None if first.probs is None else np.concatenate([t.probs for t in traces])
    return Trace(
        cell=first.cell, gates=first.gates, tokens=sum((t.tokens for t in traces), []), layers=layers, probs=probs
    )


# --------------------------------------------------------------------------------------------
# Resuming
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("cell", "reset_after"), CELLS, ids=CELL_IDS)
def test_resuming_from_a_prefix_state_equals_one_run(cell, reset_after):
    net = vector_net(cell, reset_after, D=3, H=5, L=3, out=4, seed=3)
    x = inputs(3, 12)
    whole = net.trace(x)
    for k in (1, 2, 6, 11):
        head = net.trace(x[:k])
        tail = net.trace(x[k:], state=head.state)
        assert len(head) + len(tail) == len(whole)
        assert_traces_close(whole, concat(head, tail))


@pytest.mark.parametrize(("cell", "reset_after"), CELLS, ids=CELL_IDS)
def test_resuming_in_three_pieces(cell, reset_after):
    net = vector_net(cell, reset_after, seed=4)
    x = inputs(3, 10, seed=4)
    a = net.trace(x[:3])
    b = net.trace(x[3:7], state=a.state)
    c = net.trace(x[7:], state=b.state)
    assert_traces_close(net.trace(x), concat(a, b, c))


@pytest.mark.parametrize(("cell", "reset_after"), CELLS, ids=CELL_IDS)
@pytest.mark.parametrize(
    ("kind", "embedding", "prefix", "suffix"),
    [
        ("char", False, "ab:c", "(de) a"),
        ("char", True, "a", "bcde"),
        ("word", False, "the cat", " sat on the mat"),
        ("word", True, "the cat sat on", "a dog"),
        ("char", False, "abzz", "zcd"),  # unknown characters on both sides
    ],
    ids=["chars-onehot", "chars-embedded", "words-onehot", "words-embedded", "chars-unknown"],
)
def test_resuming_text_from_a_prefix_state(cell, reset_after, kind, embedding, prefix, suffix):
    net = text_net(cell, reset_after, kind, embedding, seed=5)
    sep = " " if kind == "word" and not suffix.startswith(" ") else ""
    whole = net.trace(prefix + sep + suffix)
    head = net.trace(prefix)
    tail = net.trace(suffix, state=head.state)
    assert whole.tokens == head.tokens + tail.tokens
    assert_traces_close(whole, concat(head, tail))
    if "z" in prefix + suffix:
        assert tail.unknown == [i for i, t in enumerate(tail.tokens) if t == "z"]  # positions within the suffix


@pytest.mark.parametrize(("cell", "reset_after"), CELLS, ids=CELL_IDS)
def test_state_at_resumes_from_any_step(cell, reset_after):
    net = vector_net(cell, reset_after, H=3, L=2, seed=6)
    x = inputs(3, 8, seed=6)
    tr = net.trace(x)
    for t in range(1, 8):
        rest = net.trace(x[t:], state=tr.state_at(t))
        for k in range(2):
            for gate in net.gates:
                np.testing.assert_allclose(rest.layers[k][gate], tr.layers[k][gate][t:], **TOL)


@pytest.mark.parametrize(("cell", "reset_after"), CELLS, ids=CELL_IDS)
def test_state_at_reads_h_and_c_of_every_layer(cell, reset_after):
    net = vector_net(cell, reset_after, H=3, L=2, seed=7)
    x = inputs(3, 5, seed=7)
    tr = net.trace(x)
    has_c = cell in ("lstm", "peephole", "coupled")
    for t in range(1, 6):
        state = tr.state_at(t)
        assert len(state) == 2
        for k, (h, c) in enumerate(state):
            assert np.array_equal(h, tr.layers[k]["h"][t - 1])
            if has_c:
                assert np.array_equal(c, tr.layers[k]["c"][t - 1])
            else:
                assert c is None
    # the end, and the start: the state the run began from
    for (h, c), (h_end, c_end) in zip(tr.state, tr.state_at(5), strict=True):
        assert np.array_equal(h, h_end)
        assert (c is None and c_end is None) or np.array_equal(c, c_end)
    for h, c in tr.state_at(0):
        assert np.array_equal(h, np.zeros(3))
        assert (c is None) != has_c and (c is None or np.array_equal(c, np.zeros(3)))


def test_state_at_zero_is_the_given_initial_state():
    net = vector_net("lstm", seed=8)
    rng = np.random.default_rng(8)
    init = [(rng.uniform(-0.5, 0.5, 4), rng.normal(size=4)) for _ in range(2)]
    tr = net.trace(inputs(3, 4), state=init)
    for (h, c), (h0, c0) in zip(tr.state_at(0), init, strict=True):
        np.testing.assert_allclose(h, h0, atol=1e-7)
        np.testing.assert_allclose(c, c0, atol=1e-6)


def test_state_at_zero_is_kept_even_if_the_caller_changes_its_state_arrays():
    net = vector_net("peephole", seed=8)
    h, c = np.full(4, 0.25, np.float32), np.full(4, -0.5, np.float32)
    other = (np.zeros(4, np.float32), np.zeros(4, np.float32))
    tr = net.trace(inputs(3, 4), state=[(h, c), other])
    h[:] = 7.0
    c[:] = 7.0
    (h0, c0), _ = tr.state_at(0)
    assert np.array_equal(h0, np.full(4, 0.25)) and np.array_equal(c0, np.full(4, -0.5))


def test_probabilities_stay_finite_for_large_logits():
    """A confident head (logits in the hundreds) must not overflow exp: probabilities still sum to 1."""
    spec = Spec("lstm", 3, 4, output_size=5)
    params = make_params(spec, 22)
    params["head.W"] = params["head.W"] * 400.0
    tr = Network(spec, params).trace(inputs(3, 6) * 3)
    assert np.isfinite(tr.probs).all()
    np.testing.assert_allclose(tr.probs.sum(axis=1), 1.0, atol=1e-5)
    logits = tr.layers[0]["h"].astype(np.float64) @ params["head.W"] + params["head.b"]
    assert np.abs(logits).max() > 100  # exp would overflow float32 without the max shift
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    np.testing.assert_allclose(tr.probs, p / p.sum(axis=1, keepdims=True), atol=1e-5)


@pytest.mark.parametrize("t", [-1, 6, 100])
def test_state_at_outside_the_trace(t):
    tr = vector_net("gru").trace(inputs(3, 5))
    with pytest.raises(IndexError, match=str(t)):
        tr.state_at(t)


def test_state_at_returns_copies():
    net = vector_net("lstm", seed=9)
    x = inputs(3, 6, seed=9)
    tr = net.trace(x)
    before = {g: a.copy() for g, a in tr.layers[1].items()}
    for h, c in tr.state_at(3) + tr.state:
        h[:] = 99.0
        c[:] = 99.0
    for g, a in tr.layers[1].items():
        assert np.array_equal(a, before[g]), g


@pytest.mark.parametrize(("cell", "reset_after"), CELLS, ids=CELL_IDS)
def test_a_state_can_be_reused_for_several_continuations(cell, reset_after):
    """Resuming does not consume or alter the state passed in (live typing resumes from one cached state)."""
    net = vector_net(cell, reset_after, seed=10)
    head = net.trace(inputs(3, 4, seed=10))
    state = head.state
    saved = [(h.copy(), None if c is None else c.copy()) for h, c in state]
    x = inputs(3, 5, seed=11)
    first = net.trace(x, state=state)
    for (h, c), (h0, c0) in zip(state, saved, strict=True):
        assert np.array_equal(h, h0)
        assert c is None or np.array_equal(c, c0)
    second = net.trace(x, state=state)
    assert_traces_close(first, second, tol={"atol": 0, "rtol": 0})


@pytest.mark.parametrize(("cell", "reset_after"), CELLS, ids=CELL_IDS)
def test_a_trace_is_not_changed_by_later_traces(cell, reset_after):
    for net, x, y in [
        (vector_net(cell, reset_after, seed=12), inputs(3, 5, seed=1), inputs(3, 5, seed=2)),
        (text_net(cell, reset_after, seed=12), "abcab", "dedede"),
        (text_net(cell, reset_after, embedding=True, seed=12), "abcab", "dedede"),
    ]:
        tr = net.trace(x)
        kept = [{g: a.copy() for g, a in layer.items()} for layer in tr.layers]
        net.trace(y)
        net.trace(x, state=tr.state)
        for layer, old in zip(tr.layers, kept, strict=True):
            for g in old:
                assert np.array_equal(layer[g], old[g]), g


def test_trace_does_not_modify_its_input():
    net = vector_net("rnn", seed=13)
    x = inputs(3, 5)
    x0 = x.copy()
    net.trace(x)
    assert np.array_equal(x, x0)


# --------------------------------------------------------------------------------------------
# Stacking, text and vector input
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("cell", "reset_after"), CELLS, ids=CELL_IDS)
def test_stacked_network_equals_its_layers_run_one_by_one(cell, reset_after):
    """Layer k+1 of a stack sees layer k's h: a 3-layer net equals three 1-layer nets chained by hand."""
    D, H = 3, 4
    net = vector_net(cell, reset_after, D=D, H=H, L=3, out=5, seed=14)
    x = inputs(D, 7, seed=14)
    tr = net.trace(x)
    inp = x
    for k in range(3):
        spec = Spec(cell, D if k == 0 else H, H, reset_after=reset_after)
        own = {n.replace(f"layers.{k}.", "layers.0."): a for n, a in net.params.items() if n.startswith(f"layers.{k}.")}
        single = Network(spec, own).trace(inp)
        for gate in net.gates:
            np.testing.assert_allclose(tr.layers[k][gate], single.layers[0][gate], **TOL, err_msg=f"layer {k} {gate}")
        inp = single.layers[0]["h"]
    logits = inp.astype(np.float64) @ net.params["head.W"] + net.params["head.b"]
    p = np.exp(logits - logits.max(1, keepdims=True))
    np.testing.assert_allclose(tr.probs, p / p.sum(1, keepdims=True), atol=1e-6)


@pytest.mark.parametrize(("cell", "reset_after"), CELLS, ids=CELL_IDS)
@pytest.mark.parametrize("kind", ["char", "word"])
def test_one_hot_text_model_equals_feeding_one_hot_vectors(cell, reset_after, kind):
    net = text_net(cell, reset_after, kind, embedding=False, seed=15)
    text = "ab c:(dd)e" if kind == "char" else "the cat sat on a mat"
    ids = net.tokenizer.encode(text).ids
    onehot = np.eye(len(net.vocab), dtype=np.float32)[ids]  # (T, V)
    by_text, by_vectors = net.trace(text), net.trace(onehot)
    assert_traces_close(by_text, by_vectors)
    assert by_text.tokens == net.tokenizer.split(text)
    assert by_vectors.tokens == [str(t) for t in range(len(ids))]


@pytest.mark.parametrize("table", [True, False], ids=["table", "no-table"])
@pytest.mark.parametrize(("cell", "reset_after"), CELLS, ids=CELL_IDS)
def test_embedding_model_equals_a_vector_model_fed_embedding_rows(cell, reset_after, table, monkeypatch):
    if not table:  # force the path big vocabularies take: embed, then project per call
        monkeypatch.setattr(model.network, "TABLE_LIMIT", 0)
    net = text_net(cell, reset_after, "word", embedding=True, L=2, seed=16)
    assert (net._table is not None) == table
    E = net.params["embedding"]
    vec_spec = Spec(cell, E.shape[1], net.hidden_size, num_layers=2, reset_after=reset_after, output_size=len(WORDS))
    vec = Network(vec_spec, {n: a for n, a in net.params.items() if n != "embedding"})
    text = "the dog sat on the cat mat"
    ids = net.tokenizer.encode(text).ids
    assert_traces_close(net.trace(text), vec.trace(E[ids]))


@pytest.mark.parametrize(("cell", "reset_after"), CELLS, ids=CELL_IDS)
def test_every_gate_is_float32_of_shape_T_by_H(cell, reset_after):
    for net, x, T in [
        (vector_net(cell, reset_after, D=3, H=5, L=2, out=6, seed=17), inputs(3, 9), 9),
        (text_net(cell, reset_after, "char", H=5, seed=17), "abc de", 6),
        (text_net(cell, reset_after, "word", embedding=True, H=5, seed=17), "the cat sat", 3),
    ]:
        tr = net.trace(x)
        assert len(tr) == T and len(tr.layers) == net.num_layers
        assert tr.gates == net.gates == model.GATES[cell]
        for k, layer in enumerate(tr.layers):
            assert tuple(layer) == net.gates, (k, tuple(layer))  # the keys in the cell's gate order
            for gate in net.gates:
                assert layer[gate].dtype == np.float32, f"layer {k} {gate}: {layer[gate].dtype}"
                assert layer[gate].shape == (T, 5), f"layer {k} {gate}: {layer[gate].shape}"
        V = net.spec.output_size
        assert tr.probs.dtype == np.float32 and tr.probs.shape == (T, V)
        np.testing.assert_allclose(tr.probs.sum(axis=1), 1.0, atol=1e-5)
        assert (tr.probs > 0).all()


def test_no_head_means_no_probs_and_probs_false_skips_them():
    assert vector_net("lstm").trace(inputs(3, 2)).probs is None
    assert vector_net("lstm", out=3).trace(inputs(3, 2), probs=False).probs is None


def test_vector_tokens_are_step_numbers():
    assert vector_net("rnn").trace(inputs(3, 4)).tokens == ["0", "1", "2", "3"]


@pytest.mark.parametrize(("cell", "reset_after"), CELLS, ids=CELL_IDS)
def test_float64_network_traces_in_float64_and_agrees_with_float32(cell, reset_after):
    net = vector_net(cell, reset_after, D=3, H=6, L=2, out=4, seed=18)
    net64 = net.astype(np.float64)
    assert net64.dtype == np.float64 and net.dtype == np.float32
    x = inputs(3, 15, seed=18)
    t32, t64 = net.trace(x), net64.trace(x)
    for layer in t64.layers:
        for gate in net.gates:
            assert layer[gate].dtype == np.float64
    assert t64.probs.dtype == np.float64
    assert_traces_close(t32, t64, tol={"atol": 1e-5, "rtol": 0})
    assert net.trace(x).layers[0]["h"].dtype == np.float32  # the original is untouched


def test_float64_text_model_agrees_with_float32():
    net = text_net("peephole", kind="word", embedding=True, seed=19)
    t32, t64 = net.trace("the cat sat on the mat"), net.astype(np.float64).trace("the cat sat on the mat")
    assert t64.layers[1]["c"].dtype == np.float64
    assert_traces_close(t32, t64, tol={"atol": 1e-5, "rtol": 0})


# --------------------------------------------------------------------------------------------
# Bad input
# --------------------------------------------------------------------------------------------
def test_wrong_input_size():
    net = vector_net("lstm", D=3)
    with pytest.raises(ValueError, match="3 values, got 4"):
        net.trace(np.zeros((5, 4)))


@pytest.mark.parametrize("shape", [(3,), (), (2, 5, 3), (1, 1, 1, 3)])
def test_input_that_is_not_two_dimensional(shape):
    net = vector_net("gru", D=3)
    with pytest.raises(ValueError, match=r"\(T, 3\)") as info:
        net.trace(np.zeros(shape))
    assert str(shape) in str(info.value)


@pytest.mark.parametrize("shape", [(0, 3), (0, 5)])
def test_empty_input(shape):
    with pytest.raises(ValueError, match="empty"):
        vector_net("lstm").trace(np.zeros(shape))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize(("step", "entry"), [(0, 0), (3, 2), (6, 1)])
def test_non_finite_input_names_step_and_entry(bad, step, entry):
    x = inputs(3, 7)
    x[step, entry] = bad
    if step < 6:
        x[6, 0] = np.nan  # a later one too: the message names the first
    with pytest.raises(ValueError, match=rf"step {step}, entry {entry}"):
        vector_net("coupled").trace(x)


def test_input_that_is_not_numbers():
    with pytest.raises(ValueError, match="not an array of numbers"):
        vector_net("lstm").trace([["a", "b", "c"]])


def test_text_to_a_vector_model_is_an_input_error():
    with pytest.raises(model.InputError, match="vectors"):
        vector_net("lstm").trace("hello")


def test_text_model_still_takes_vectors_of_its_input_size():
    net = text_net("gru", embedding=True)
    assert net.trace(inputs(5, 3)).layers[0]["h"].shape == (3, 4)
    with pytest.raises(ValueError, match="5 values"):
        net.trace(inputs(len(CHARS), 3))


@pytest.mark.parametrize(("cell", "reset_after"), CELLS, ids=CELL_IDS)
def test_state_with_the_wrong_number_of_layers(cell, reset_after):
    net = vector_net(cell, reset_after, L=2)
    state = net.trace(inputs(3, 2)).state
    with pytest.raises(ValueError, match="1 layers, the model 2"):
        net.trace(inputs(3, 2), state=state[:1])
    with pytest.raises(ValueError, match="3 layers, the model 2"):
        net.trace(inputs(3, 2), state=state + state[:1])


@pytest.mark.parametrize(("cell", "reset_after"), CELLS, ids=CELL_IDS)
def test_state_h_of_the_wrong_shape(cell, reset_after):
    net = vector_net(cell, reset_after, H=4, L=2)
    state = net.trace(inputs(3, 2)).state
    for bad in (np.zeros(5), np.zeros(3), np.zeros((1, 4)), np.zeros(())):
        broken = [state[0], (bad, state[1][1])]
        with pytest.raises(ValueError, match="layer 1: state h has shape"):
            net.trace(inputs(3, 2), state=broken)


@pytest.mark.parametrize("cell", ["lstm", "peephole", "coupled"])
def test_state_c_of_the_wrong_shape_or_missing(cell):
    net = vector_net(cell, H=4, L=2)
    (h0, c0), (h1, c1) = net.trace(inputs(3, 2)).state
    with pytest.raises(ValueError, match="layer 0: state c has shape"):
        net.trace(inputs(3, 2), state=[(h0, np.zeros(5)), (h1, c1)])
    with pytest.raises(ValueError, match="layer 1: .*needs c"):
        net.trace(inputs(3, 2), state=[(h0, c0), (h1, None)])


@pytest.mark.parametrize(("cell", "reset_after"), [("gru", False), ("rnn", False), ("lstm", False)])
def test_state_entries_that_are_not_pairs_are_refused_with_a_message_about_the_state(cell, reset_after):
    """Passing bare h arrays, or one layer's (h, c) where a list of layers belongs, names the state."""
    net = vector_net(cell, reset_after, H=4, L=1)
    (h, c) = net.trace(inputs(3, 2)).state[0]
    for bad in ([h], [(h,)], [(h, c, h)]):
        with pytest.raises(ValueError, match="state"):
            net.trace(inputs(3, 2), state=bad)


# --------------------------------------------------------------------------------------------
# Spec and weight validation
# --------------------------------------------------------------------------------------------
def build(spec: Spec):
    return Network(spec, make_params(spec))


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        (Spec("transformer", 3, 4), "unknown cell type 'transformer'"),
        (Spec("lstm", 3, 0), "hidden_size must be a positive integer"),
        (Spec("lstm", 0, 4), "input_size must be a positive integer"),
        (Spec("lstm", 3, 4, num_layers=0), "num_layers"),
        (Spec("lstm", 3, 4.0), "hidden_size"),  # type: ignore[arg-type]
        (Spec("lstm", 3, True), "hidden_size"),  # type: ignore[arg-type]
        (Spec("lstm", 3, 4, output_size=0), "output_size"),
        (Spec("lstm", 3, 4, vocab=["a", "b", "c", "d"], tokenizer="char"), "input_size = vocabulary size"),
        (Spec("lstm", 3, 4, vocab=["a", "b", "c"]), "tokenizer"),
        (Spec("lstm", 3, 4, vocab=[], tokenizer="char"), "empty"),
        (Spec("lstm", 3, 4, embedding=True), "embedding needs a vocabulary"),
    ],
)
def test_spec_validation(spec, fragment):
    with pytest.raises(ValueError) as info:
        Network(spec, {})
    assert fragment in str(info.value)


def test_one_hot_size_error_names_both_sizes():
    with pytest.raises(ValueError, match=r"input size 3, the vocabulary has 4 tokens"):
        Network(Spec("gru", 3, 2, vocab=["a", "b", "c", "d"], tokenizer="char"), {})


def test_param_names_and_expected_shapes():
    spec = Spec("peephole", 3, 4, num_layers=2, vocab=["a", "b"], tokenizer="char", embedding=True, output_size=2)
    names = spec.param_names()
    assert "layers.0.W_f" in names and "layers.1.p_o" in names and "embedding" in names and "head.W" in names
    assert spec.expected_shape("layers.0.W_f") == (3, 4)
    assert spec.expected_shape("layers.1.W_f") == (4, 4)
    assert spec.expected_shape("layers.1.U_c") == (4, 4)
    assert spec.expected_shape("layers.1.p_i") == (4,)
    assert spec.expected_shape("embedding") == (2, 3)
    assert spec.expected_shape("head.W") == (4, 2)
    assert spec.expected_shape("head.b") == (2,)
    gru = Spec("gru", 2, 3, reset_after=True)
    assert "layers.0.bU_h" in gru.param_names()
    assert "layers.0.bU_h" not in Spec("gru", 2, 3).param_names()


def test_missing_unexpected_misshapen_and_non_finite_weights_are_named():
    spec = Spec("lstm", 3, 4)
    good = make_params(spec)
    with pytest.raises(ValueError, match="missing weights: layers.0.U_o"):
        Network(spec, {n: a for n, a in good.items() if n != "layers.0.U_o"})
    with pytest.raises(ValueError, match="unexpected weights: layers.0.p_f"):
        Network(spec, {**good, "layers.0.p_f": np.zeros(4)})
    with pytest.raises(ValueError, match=r"layers.0.W_i has shape \(4, 3\), expected \(3, 4\)"):
        Network(spec, {**good, "layers.0.W_i": np.zeros((4, 3))})
    with pytest.raises(ValueError, match="layers.0.b_c .*NaN"):
        Network(spec, {**good, "layers.0.b_c": np.array([0, np.nan, 0, 0])})
    with pytest.raises(ValueError, match="layers.0.b_c has dtype int64"):
        Network(spec, {**good, "layers.0.b_c": np.zeros(4, np.int64)})


def test_network_is_unaffected_by_later_changes_to_the_arrays_it_was_built_from():
    """Weights are copied in: updating the caller's arrays in place (a training loop) changes neither
    the trace, nor the probabilities, nor what astype/save see."""
    spec = Spec("lstm", 3, 4, output_size=3)
    params = {n: a.astype(np.float32) for n, a in make_params(spec, 23).items()}
    net = Network(spec, params)
    x = inputs(3, 5)
    before = net.trace(x)
    for a in params.values():
        a += 1.0
    after = net.trace(x)
    assert_traces_close(before, after, tol={"atol": 0, "rtol": 0})
    assert_traces_close(before, net.astype(np.float64).trace(x), tol={"atol": 1e-5, "rtol": 0})


def test_network_describes_itself():
    net = text_net("gru", reset_after=True, kind="word", L=2)
    assert net.cell == "gru" and net.gates == ("z", "r", "h_tilde", "h")
    assert net.vocab == WORDS and net.hidden_size == 4 and net.num_layers == 2 and net.input == "text"
    assert "gru" in repr(net) and "text" in repr(net)
    assert vector_net("rnn").input == "vectors"


# --------------------------------------------------------------------------------------------
# load(): files, folders, bundled names
# --------------------------------------------------------------------------------------------
def test_load_of_an_unknown_name():
    with pytest.raises(FormatError) as info:
        model.load("no-such-model")
    msg = str(info.value)
    assert "no-such-model" in msg and "neither a file nor a bundled model" in msg


def test_load_of_a_missing_path():
    with pytest.raises(FormatError, match="neither a file nor a bundled model"):
        model.load("/nonexistent/dir/m.safetensors")


def test_load_of_a_folder_holding_model_safetensors(tmp_path):
    net = text_net("coupled", kind="word", embedding=True, seed=20)
    model.save(net, tmp_path / "model.safetensors")
    for source in (tmp_path, str(tmp_path)):
        back = model.load(source)
        assert back.spec == net.spec
        assert np.array_equal(back.trace("the cat").layers[1]["h"], net.trace("the cat").layers[1]["h"])


def test_load_of_a_folder_without_a_model_says_what_is_missing(tmp_path):
    with pytest.raises(FormatError) as info:
        model.load(tmp_path)
    msg = str(info.value)
    assert tmp_path.name in msg
    assert "model.safetensors" in msg  # the folder exists: say what it lacks, not that it is "neither a file"


def test_load_of_a_bundled_model_by_name(tmp_path, monkeypatch):
    net = vector_net("rnn", seed=21)
    (tmp_path / "tiny").mkdir()
    model.save(net, tmp_path / "tiny" / "model.safetensors")
    (tmp_path / "not-a-model").mkdir()  # a folder without model.safetensors is not listed
    monkeypatch.setattr(model, "PRETRAINED", tmp_path)
    assert model.available() == ["tiny"]
    back = model.load("tiny")
    x = inputs(3, 4)
    assert np.array_equal(back.trace(x).layers[0]["h"], net.trace(x).layers[0]["h"])
    with pytest.raises(FormatError, match="bundled models: tiny"):
        model.load("huge")


@pytest.mark.parametrize("part", ["h", "c"])
def test_a_state_holding_nan_is_refused(part):
    net = vector_net("lstm", L=2)
    state = net.zero_state()
    h, c = state[1]
    (h if part == "h" else c)[2] = np.nan
    with pytest.raises(ValueError, match="layer 1: the state holds NaN"):
        net.trace(inputs(3, 4), state=state)


def test_a_spec_claiming_more_layers_than_weights_is_refused_at_once():
    spec = Spec(cell="rnn", input_size=2, hidden_size=2, num_layers=10**9)
    with pytest.raises(ValueError, match="num_layers is 1000000000"):
        Network(spec, {"layers.0.W_h": np.zeros((2, 2), np.float32)})


@pytest.mark.parametrize(("cell", "reset_after"), CELLS, ids=CELL_IDS)
def test_head_then_rebuilds_a_trace_from_a_cached_prefix(cell, reset_after):
    net = text_net(cell, reset_after)
    text = "abcabba"
    full = net.trace(text)
    kept = full.head(3)
    joined = kept.then(net.trace(text[3:], state=kept.state))
    assert joined.tokens == full.tokens and len(joined) == len(full)
    assert_traces_close(joined, full)
