"""A sequence answer of a network with a backward direction: a head with head_at "last" answers at its last
row from each direction's final h, [h_fwd_{T-1} ; h_bwd_0], as PyTorch's fc(cat(h_n[-2], h_n[-1])) does
(tests/fixtures/make_torch.py heads; Keras's Bidirectional(return_sequences=False) is in test_keras_heads.py).
The earlier rows stay the head applied to [h_fwd_t ; h_bwd_t]; the live buffer and a stoppable run agree."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import model
from model import Network, Spec

from .test_network import CHARS, inputs, make_params

FIX = Path(__file__).parents[1] / "fixtures" / "torch" / "heads"
TOL = 1e-5
H = 4


def softmax(y: np.ndarray) -> np.ndarray:
    e = np.exp(y - y.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def per_row(net: Network, h: np.ndarray) -> np.ndarray:
    """The head applied to every row's h as it is: (T, K) probabilities."""
    return softmax(h.astype(np.float64) @ net.params["head.W"] + net.params["head.b"])


def answer(net: Network, h: np.ndarray) -> np.ndarray:
    """The sequence's answer: each direction's final h (forward at row T-1, backward at row 0) through the head."""
    parts = [h[0 if way == "backward" else -1, j * H : (j + 1) * H] for j, way in enumerate(net.spec.directions)]
    return softmax(np.concatenate(parts).astype(np.float64) @ net.params["head.W"] + net.params["head.b"])


def test_a_pytorch_bidirectional_classifier_answers_what_torch_answers():
    with np.load(FIX / "lstm_bi_classifier.npz", allow_pickle=False) as d:
        r = dict(d)
    net = model.load(FIX / "lstm_bi_classifier.safetensors")  # its vocab.json beside it
    assert (net.direction, net.num_layers) == ("bidirectional", 2)
    assert net.head is not None and (net.head.kind, net.head.at, net.head.size) == ("classes", "last", 3)
    tr = net.trace(str(r["text"]))
    assert np.abs(tr.layers[-1]["h"] - r["output"]).max() <= TOL  # (T, 2H) as nn.LSTM returns it
    assert tr.probs is not None
    err = float(np.abs(tr.probs[-1] - r["probs"]).max())
    assert err <= TOL, f"the last row differs from torch's fc(cat(h_n[-2], h_n[-1])) by {err:.2e}"
    # The earlier rows: the head over [h_fwd_t ; h_bwd_t], not an answer for the prefix.
    np.testing.assert_allclose(tr.probs[:-1], per_row(net, r["output"])[:-1], rtol=0, atol=TOL)


def net_with(direction: str, head_at: str, text: bool = True, cell: str = "lstm", L: int = 2) -> Network:
    vocab = dict(vocab=CHARS, tokenizer="char") if text else {}
    D = len(CHARS) if text else 3
    spec = Spec(cell, D, H, num_layers=L, direction=direction, output_size=3, head="classes", head_at=head_at, **vocab)
    return Network(spec, make_params(spec, seed=7))


@pytest.mark.parametrize("direction", ["bidirectional", "reverse"])
def test_the_last_row_reads_the_backward_directions_final_h_and_only_for_a_last_head(direction):
    x = inputs(3, 9)
    last = net_with(direction, "last", text=False)
    tr = last.trace(x)
    h = tr.layers[-1]["h"]
    np.testing.assert_allclose(tr.probs[-1], answer(last, h), rtol=0, atol=1e-6)
    np.testing.assert_allclose(tr.probs[:-1], per_row(last, h)[:-1], rtol=0, atol=1e-6)
    assert np.abs(tr.probs[-1] - per_row(last, h)[-1]).max() > 1e-3  # the two readings differ here
    every = Network(Spec(**{**last.spec.to_dict(), "head_at": "every"}), last.params).trace(x)
    np.testing.assert_allclose(every.probs, per_row(last, h), rtol=0, atol=1e-6)  # a tagger's rows as they are


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_live_edits_and_a_stoppable_run_give_the_same_answer(cell, monkeypatch):
    net = net_with("bidirectional", "last", cell=cell)
    buf = model.TraceBuffer(net)
    rng = np.random.default_rng(11)
    text = "ab"
    for step in range(25):
        at = int(rng.integers(len(text) + 1))
        piece = "".join(rng.choice(list("abcde :()"), size=int(rng.integers(0, 4))))
        text = (text[:at] + piece + text[at + int(rng.integers(0, 3)) :]) or "a"
        buf.update(list(text))
        got, fresh = buf.trace, net.trace(text)
        assert got is not None and got.probs is not None
        np.testing.assert_array_equal(got.probs, fresh.probs, err_msg=f"edit {step}: {text!r}")
        np.testing.assert_allclose(got.probs[-1], answer(net, got.layers[-1]["h"]), rtol=0, atol=1e-6)
    monkeypatch.setattr(net, "chunk_steps", lambda: 3)
    chunked = net.trace(text * 3, stop=lambda: False)
    np.testing.assert_array_equal(chunked.probs, net.trace(text * 3).probs)
    np.testing.assert_allclose(chunked.probs[-1], answer(net, chunked.layers[-1]["h"]), rtol=0, atol=1e-6)


def test_a_vector_series_edited_live_answers_from_the_whole_series():
    net = net_with("bidirectional", "last", text=False, cell="rnn")
    buf = model.TraceBuffer(net)
    x = inputs(3, 12)
    for T in (4, 8, 12, 7):
        buf.update(x[:T])
        assert buf.trace is not None
        np.testing.assert_array_equal(buf.trace.probs, net.trace(x[:T]).probs)
        np.testing.assert_allclose(buf.trace.probs[-1], answer(net, buf.trace.layers[-1]["h"]), rtol=0, atol=1e-6)


def test_an_onnx_bidirectional_classifier_on_y_h_answers_what_the_file_computes(tmp_path):
    """Y_h (2, 1, H) of a bidirectional LSTM node: the forward direction's h after x_{T-1} and the backward
    one's after x_0; the file's classifier reads them side by side, and so does the trace's last row."""
    pytest.importorskip("onnx")
    from onnx import helper, numpy_helper
    from onnx.reference import ReferenceEvaluator

    from .test_onnx import _recurrent, _save, _vi

    m = _recurrent(dirs=2, direction="bidirectional")  # x (5, 1, 2), H = 3
    W = np.random.default_rng(1).normal(size=(6, 4)).astype(np.float32)
    m.graph.initializer.extend([numpy_helper.from_array(W, "head.W"), numpy_helper.from_array(np.array([1, -1]), "s")])
    m.graph.node.extend(
        [
            helper.make_node("Transpose", ["Y_h"], ["per_batch"], perm=[1, 0, 2]),
            helper.make_node("Reshape", ["per_batch", "s"], ["h_n"]),  # (1, 2H) = [h_fwd ; h_bwd]
            helper.make_node("MatMul", ["h_n", "head.W"], ["logits"]),
            helper.make_node("Softmax", ["logits"], ["probs"], axis=-1),
        ]
    )
    m.graph.output.append(_vi("probs"))
    x = np.random.default_rng(2).normal(size=(5, 2)).astype(np.float32)
    (want,) = ReferenceEvaluator(m).run(["probs"], {"x": x[:, None]})
    net = model.load(_save(m, tmp_path))
    assert net.direction == "bidirectional" and net.head is not None and net.head.at == "last"
    tr = net.trace(x)
    assert tr.probs is not None and np.abs(tr.probs[-1] - want[0]).max() <= TOL
