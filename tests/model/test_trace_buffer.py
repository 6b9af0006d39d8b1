"""TraceBuffer: a text edited as a person types is always traced exactly as if traced afresh."""

from __future__ import annotations

import numpy as np
import pytest

import model


def test_random_edits_always_equal_a_fresh_trace_and_only_new_steps_are_computed():
    net = model.load("code")
    buf = model.TraceBuffer(net)
    rng = np.random.default_rng(11)
    alphabet = list("abc (){}:=\n\t#'xyz0123")
    text = "def f(x):\n    return x\n"
    for step in range(60):
        at = int(rng.integers(len(text) + 1))
        piece = "".join(rng.choice(alphabet, size=int(rng.integers(1, 6))))
        text = text[:at] + piece + text[at + int(rng.integers(0, 3)) :]
        before = None if buf.trace is None else list(buf.trace.tokens)
        k, new = buf.update(text)
        assert k == (0 if before is None else model.trace.common_prefix(before, list(text)))
        assert len(new) == len(text) - k  # only the steps after the first change were traced
        full, got = net.trace(text), buf.trace
        assert got is not None and got.tokens == list(text)
        for g in net.gates:
            np.testing.assert_allclose(got.layers[0][g], full.layers[0][g], rtol=0, atol=2e-6, err_msg=f"{step} {g}")
        np.testing.assert_allclose(got.probs, full.probs, rtol=0, atol=2e-6)


def test_common_prefix():
    cp = model.trace.common_prefix
    assert [cp(list(a), list(b)) for a, b in [("", ""), ("ab", "ab"), ("abc", "abd"), ("x", "yx"), ("ab", "abc")]] == [
        0,
        2,
        2,
        0,
        2,
    ]


def test_an_unknown_token_is_named_at_its_place_in_the_whole_text_and_the_buffer_keeps_its_trace():
    net = model.load("dyck")  # no <unk> entry: unknown tokens are refused
    buf = model.TraceBuffer(net)
    buf.update("(()")
    with pytest.raises(model.UnknownTokenError, match="'x' at 4") as e:
        buf.update("(()(x")
    assert e.value.positions == [4]
    assert buf.trace is not None and buf.trace.tokens == list("(()")
    k, new = buf.update("(())")
    assert (k, new.tokens) == (3, [")"])


def test_the_buffer_says_beforehand_what_it_will_hold_and_never_grows_past_max_steps():
    net = model.load("code")
    buf = model.TraceBuffer(net, max_steps=300)
    for n in (5, 70, 200, 250, 300, 40):
        text = ("def f(x):\n    return x\n" * 20)[:n]
        expected = buf.nbytes_for(n)
        buf.update(text)
        assert buf.nbytes == expected, n  # what the server reserves is what it then holds
    assert buf.nbytes == net.trace_nbytes(300)  # 2 × 250 rows would have been 500
    assert model.TraceBuffer(net).nbytes_for(250) == net.trace_nbytes(500)  # unbounded: doubling


FIX = __import__("pathlib").Path(__file__).resolve().parents[1] / "fixtures" / "tokenizers"


def _random_net(vocab: dict, seed: int = 0) -> model.Network:
    spec = model.Spec("lstm", 6, 8, embedding=True, output_size=len(vocab["vocab"]), **vocab)
    rng = np.random.default_rng(seed)
    return model.Network(spec, {n: rng.normal(0, 0.6, spec.expected_shape(n)) for n in spec.param_names()})


def _subword_nets() -> dict:
    from model.formats.vocab import read_vocab

    words = {"vocab": ["<unk>", "the", "cat", "sat", "on", "mat", ".", "<eos>"], "tokenizer": "word"}
    words["tokenizer_options"] = {"lowercase": True, "split_punct": True, "eol": "<eos>"}
    return {
        "char": model.load("code"),
        "word": _random_net(words),
        "bpe": model.load(FIX / "lstm_bpe.safetensors", vocab=FIX / "bpe.json"),
        "wordpiece": _random_net(read_vocab(FIX / "wordpiece.json"), 1),
        "unigram": _random_net(read_vocab(FIX / "unigram.json"), 2),
    }


@pytest.mark.parametrize("kind", ["char", "word", "bpe", "wordpiece", "unigram"])
def test_live_edits_equal_a_fresh_trace_with_every_tokenizer(kind):
    """A subword tokenizer splits an edited word (and what follows) anew: "cat" + "alog" is not "cat", "alog".
    Each edit's trace must be the whole new text's, piece for piece and value for value."""
    net = _subword_nets()[kind]
    buf = model.TraceBuffer(net)
    rng = np.random.default_rng(5)
    alphabet = ["the", " cat", "alog", " sat", ".", "\n", " ", "on", "s", "m", "at", "The "]
    typed = "The catalog sat on the mat.\nA dog saw the cat."
    texts = [typed[:n] for n in range(1, len(typed) + 1)]  # typed a character at a time
    text = typed
    for _ in range(40):  # then edited anywhere
        at = int(rng.integers(len(text) + 1))
        piece = "".join(rng.choice(alphabet, size=int(rng.integers(1, 3))))
        text = text[:at] + piece + text[at + int(rng.integers(0, 3)) :]
        texts.append(text)
    for step, text in enumerate(texts):
        k, new = buf.update(text)
        full, got = net.trace(text), buf.trace
        assert got.tokens == full.tokens and got.display == full.display and got.unknown == full.unknown, step
        assert len(new) == len(full) - k
        for g in net.gates:
            np.testing.assert_allclose(got.layers[0][g], full.layers[0][g], rtol=0, atol=2e-6, err_msg=f"{step} {g}")
        np.testing.assert_allclose(got.probs, full.probs, rtol=0, atol=2e-6)


def _vector_net(D=2, H=5):
    spec = model.Spec(cell="lstm", input_size=D, hidden_size=H, num_layers=2)
    rng = np.random.default_rng(4)
    return model.Network(spec, {n: rng.standard_normal(spec.expected_shape(n)) * 0.5 for n in spec.param_names()})


def test_series_edits_trace_only_the_rows_from_the_first_change():
    """A vector model's series edited row by row (appended, changed, cut) is always its fresh trace, and
    each edit traces exactly the rows from the first one that changed."""
    net = _vector_net()
    buf = model.TraceBuffer(net)
    rng = np.random.default_rng(12)
    x = rng.standard_normal((6, 2))
    for step in range(40):
        kind = step % 4
        before = None if buf.x is None else buf.x.copy()
        if kind == 0:  # append rows
            x = np.concatenate([x, rng.standard_normal((int(rng.integers(1, 4)), 2))])
        elif kind == 1:  # change one value
            x = x.copy()
            x[int(rng.integers(len(x))), int(rng.integers(2))] += 1.0
        elif kind == 2 and len(x) > 3:  # cut the end
            x = x[: len(x) - 1]
        k, new = buf.update(x)
        want_k = 0 if before is None else model.trace.common_rows(before, x.astype(net.dtype))  # as the net reads x
        assert k == want_k and len(new) == len(x) - k, step  # only the new rows were traced
        assert new.tokens == [str(t) for t in range(k, len(x))]
        full, got = net.trace(x), buf.trace
        assert got is not None and got.tokens == [str(t) for t in range(len(x))]
        for g in net.gates:
            np.testing.assert_allclose(got.layers[1][g], full.layers[1][g], rtol=0, atol=2e-6, err_msg=f"{step} {g}")


def test_appending_rows_traces_only_them():
    net = _vector_net()
    buf = model.TraceBuffer(net)
    x = np.arange(20.0).reshape(10, 2) / 10
    assert buf.update(x)[0] == 0
    k, new = buf.update(np.concatenate([x, [[0.5, 0.5], [0.1, 0.2]]]))
    assert (k, len(new)) == (10, 2)


def test_a_bad_series_leaves_the_buffer_as_it_was():
    net = _vector_net()
    buf = model.TraceBuffer(net)
    x = np.ones((4, 2))
    buf.update(x)
    with pytest.raises(model.InputError, match="each input vector must have 2 values"):
        buf.update(np.ones((5, 3)))
    with pytest.raises(model.InputError, match="takes vectors"):
        buf.update(["a"])
    assert len(buf.trace) == 4 and np.array_equal(buf.x, x)


def test_common_rows():
    cr = model.trace.common_rows
    a = np.arange(8.0).reshape(4, 2)
    b = a.copy()
    b[2, 1] = -1
    assert [cr(a, a), cr(a, b), cr(a, a[:2]), cr(a[:0], a), cr(a, np.ones((4, 3)))] == [4, 2, 2, 0, 0]
