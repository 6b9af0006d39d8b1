"""Heads: what a model's output means (next token, classes, values), inferred or given, checked, and exact."""

from __future__ import annotations

import json

import numpy as np
import pytest

import model
from model import FormatError, Network, Spec, TraceBuffer
from model.heads import Head, resolve
from tests import heads_models as hm
from tests.model.test_network import make_params

VOCAB = ["<unk>", "a", "b", "c"]


def spec(**kw):
    base = {"cell": "lstm", "input_size": 3, "hidden_size": 4}
    return Spec(**(base | kw))


# Inference: never a crash ------------------------------------------------------------------
@pytest.mark.parametrize(
    ("fields", "kind"),
    [
        ({"vocab": VOCAB, "tokenizer": "char", "input_size": 4, "output_size": 4}, "next"),
        ({"vocab": VOCAB, "tokenizer": "char", "input_size": 4, "output_size": 9}, "classes"),  # wider than V
        ({"vocab": VOCAB, "tokenizer": "char", "input_size": 4, "output_size": 2}, "classes"),  # narrower
        ({"vocab": VOCAB, "tokenizer": "char", "input_size": 4, "output_size": 1}, "values"),
        ({"output_size": 1}, "values"),
        ({"output_size": 3}, "values"),  # a vector model predicting a vector of its input's size: a forecaster
        ({"output_size": 5}, "classes"),
    ],
    ids=["V=K next", "K>V classes", "K<V classes", "K=1 text values", "K=1 values", "K=D values", "K!=D classes"],
)
def test_inference_rules(fields, kind):
    head = resolve(spec(**fields))
    assert head is not None and head.kind == kind and head.at == "every"
    assert head.size == fields["output_size"] == len(head.labels)


def test_no_output_layer_means_no_head():
    assert resolve(spec()) is None
    net = Network(spec(), make_params(spec()))
    tr = net.trace(np.ones((2, 3)))
    assert net.head is None and tr.head_kind is None and tr.probs is None and tr.values is None and tr.labels is None


def test_default_labels_per_kind():
    assert resolve(spec(vocab=VOCAB, tokenizer="char", input_size=4, output_size=4)).labels == tuple(VOCAB)
    assert resolve(spec(output_size=5)).labels == ("class 0", "class 1", "class 2", "class 3", "class 4")
    assert resolve(spec(output_size=1)).labels == ("y",)
    assert resolve(spec(output_size=3)).labels == ("y0", "y1", "y2")


def test_given_kind_and_labels_win_over_inference():
    head = resolve(spec(output_size=3, head="classes", labels=["x", "y", "z"], head_at="last"))
    assert head == Head("classes", "last", ("x", "y", "z"), 3)
    assert resolve(spec(output_size=1, head="classes")).kind == "classes"


# Refusals that name the fix ------------------------------------------------------------------
@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"output_size": 2, "head": "softmax"}, ["unknown head 'softmax'", "'classes'", "'values'"]),
        ({"output_size": 2, "head_at": "first"}, ["head_at", "'every' or 'last'"]),
        ({"output_size": 3, "labels": ["a", "b"]}, ["2 labels", "3 outputs", "give exactly 3"]),
        ({"output_size": 2, "labels": "ab"}, ["labels must be a list"]),
        ({"output_size": 2, "labels": [1, 2]}, ["labels must be a list"]),
        ({"output_size": 2, "head": "next"}, ["no vocabulary", "'classes'"]),
        (
            {"vocab": VOCAB, "tokenizer": "char", "input_size": 4, "output_size": 5, "head": "next"},
            ["one output per vocabulary token (4)", "5", "head 'classes' (with 5 labels)"],
        ),
        ({"head": "values"}, ["no output layer", "leave head and labels out"]),
    ],
)
def test_a_spec_that_cannot_describe_its_output_is_refused(fields, words):
    shape = spec(**{k: v for k, v in fields.items() if k in ("output_size", "vocab", "input_size")})
    with pytest.raises(FormatError) as e:
        Network(spec(**fields), make_params(shape))
    for w in words:
        assert w in str(e.value)


# Exactness against an independent reference (PyTorch's layout, step by step in float64) --------------
def test_a_values_head_is_the_plain_linear_map_not_a_softmax(tmp_path):
    sd = hm.lstm_state_dict(3, 5, 1, seed=2)
    net = model.load(hm.save(tmp_path / "reg.safetensors", sd))
    x = np.random.default_rng(0).normal(size=(7, 3)).astype(np.float32)
    tr = net.trace(x)
    _, y = hm.reference(sd, x)
    assert net.head.kind == tr.head_kind == "values" and tr.labels == ["y"] and tr.probs is None
    np.testing.assert_allclose(tr.values, y, atol=1e-5, rtol=0)
    assert np.ptp(tr.values) > 0.1  # a forecast that moves, not p = 1 at every step


def test_a_head_wider_than_the_vocabulary_is_a_classifier_with_exact_probabilities(tmp_path):
    sd = hm.lstm_state_dict(2, 6, 5, seed=1)
    net = model.load(hm.save(tmp_path / "wide.safetensors", sd), vocab=hm.BITS)
    tr = net.trace("0110111")
    _, y = hm.reference(sd, hm.one_hot([0, 1, 1, 0, 1, 1, 1], 2))
    assert tr.head_kind == "classes" and tr.labels == [f"class {j}" for j in range(5)] and tr.values is None
    np.testing.assert_allclose(tr.probs, hm.softmax(y), atol=1e-6, rtol=0)
    idx, p = tr.top(3)
    np.testing.assert_array_equal(idx[:, 0], np.argmax(y, axis=1))
    assert p.shape == (7, 3) and (np.diff(p, axis=1) <= 0).all()


def test_a_values_trace_has_no_top_k_and_says_why():
    s = spec(output_size=1)
    tr = Network(s, make_params(s)).trace(np.ones((2, 3)))
    with pytest.raises(model.InputError, match="predicts values"):
        tr.top(3)


# Where the kind comes from: file metadata, overrides, native round trip -------------------------------
def test_safetensors_metadata_names_the_classes_and_the_step_that_counts(tmp_path):
    sd = hm.lstm_state_dict(4, 5, 3, seed=3, embedding=len(hm.WORDS))
    path = hm.save(tmp_path / "clf.safetensors", sd, {"labels": hm.CLASSES, "head_at": "last"})
    net = model.load(path, vocab=hm.WORDS)
    assert net.head == Head("classes", "last", tuple(hm.CLASSES), 3)
    tr = net.trace("very good film")
    assert tr.labels == hm.CLASSES and tr.head_at == "last"


def test_load_overrides_win_over_the_file(tmp_path):
    sd = hm.lstm_state_dict(4, 5, 3, seed=3, embedding=len(hm.WORDS))
    path = hm.save(tmp_path / "clf.safetensors", sd, {"labels": hm.CLASSES, "head_at": "last"})
    net = model.load(path, vocab=hm.WORDS, head="values", labels=["x", "y", "z"], head_at="every")
    assert net.head == Head("values", "every", ("x", "y", "z"), 3)
    assert net.trace("good").probs is None


@pytest.mark.parametrize(
    ("meta", "words"),
    [
        ({"labels": "neg, neu, pos"}, ["clf.safetensors", "'labels' is not JSON", "JSON list"]),
        ({"labels": '{"a": 1}'}, ["clf.safetensors", "must be a JSON list"]),
        ({"labels": ["a", "b"]}, ["clf.safetensors", "2 labels", "3 outputs"]),
        ({"head": "regression"}, ["clf.safetensors", "unknown head 'regression'"]),
        ({"head": "next"}, ["clf.safetensors", "vocabulary token (7)", "this head has 3"]),
        ({"head_at": "end"}, ["clf.safetensors", "head_at"]),
    ],
)
def test_bad_head_metadata_is_refused_with_a_message(tmp_path, meta, words):
    sd = hm.lstm_state_dict(4, 5, 3, seed=3, embedding=len(hm.WORDS))
    path = hm.save(tmp_path / "clf.safetensors", sd, meta)
    with pytest.raises(FormatError) as e:
        model.load(path, vocab=hm.WORDS)
    for w in words:
        assert w in str(e.value)


def test_a_bad_override_is_refused_with_the_file_named(tmp_path):
    path = hm.save(tmp_path / "reg.safetensors", hm.lstm_state_dict(3, 5, 1))
    with pytest.raises(FormatError, match=r"reg.safetensors: 2 labels given for a head of 1 outputs"):
        model.load(path, labels=["a", "b"])


def test_native_files_keep_the_head(tmp_path):
    sd = hm.lstm_state_dict(4, 5, 3, seed=3, embedding=len(hm.WORDS))
    net = model.load(hm.save(tmp_path / "clf.safetensors", sd), vocab=hm.WORDS, labels=hm.CLASSES, head_at="last")
    back = model.load(model.save(net, tmp_path / "native.safetensors"))
    assert back.head == net.head == Head("classes", "last", tuple(hm.CLASSES), 3)


def test_onnx_metadata_props_name_the_head(tmp_path):
    onnx = pytest.importorskip("onnx")
    from tests.model.test_onnx import FIXTURES

    src = FIXTURES / "stack.onnx"  # a vector model with a head of 4
    m = onnx.load(str(src))
    onnx.helper.set_model_props(m, {"head": "values", "labels": json.dumps(["a", "b", "c", "d"]), "head_at": "last"})
    onnx.save(m, str(tmp_path / "stack.onnx"))
    assert model.load(src).head.kind == "classes"  # inferred without the metadata
    assert model.load(tmp_path / "stack.onnx").head == Head("values", "last", ("a", "b", "c", "d"), 4)
    onnx.helper.set_model_props(m, {"labels": "[1, 2]"})
    onnx.save(m, str(tmp_path / "bad.onnx"))
    with pytest.raises(FormatError, match="bad.onnx: labels must be a list of names"):
        model.load(tmp_path / "bad.onnx")


# Values travel with the trace: head, then, the live buffer ---------------------------------------------
def test_values_are_cut_joined_and_spliced_like_the_gates():
    s = Spec("gru", 2, 4, vocab=hm.BITS, tokenizer="char", output_size=1)  # a text model with a values head
    net = Network(s, make_params(s))
    full = net.trace("0110101")
    assert full.head(3).values.shape == (3, 1)
    joined = full.head(3).then(net.trace("0101", state=full.state_at(3)))
    np.testing.assert_allclose(joined.values, full.values, atol=1e-6, rtol=0)
    buf = TraceBuffer(net)
    buf.update(list("0110"))
    k, new = buf.update(list("0110101"))
    assert k == 4 and new.values.shape == (3, 1)
    np.testing.assert_allclose(buf.trace.values, full.values, atol=1e-6, rtol=0)
    assert buf.trace.head_kind == "values" and buf.trace.labels == ["y"]


def test_a_values_and_a_classes_head_match_torch(tmp_path):
    """Live, when torch is installed: nn.LSTM + nn.Linear against gatescope and the tests' NumPy reference."""
    torch = pytest.importorskip("torch")
    for K, head in ((1, "values"), (4, "classes")):
        sd = hm.lstm_state_dict(3, 5, K, seed=9)
        lstm, fc = torch.nn.LSTM(3, 5, batch_first=True), torch.nn.Linear(5, K)
        lstm.load_state_dict({k[4:]: torch.tensor(v) for k, v in sd.items() if k.startswith("rnn.")})
        fc.load_state_dict({"weight": torch.tensor(sd["fc.weight"]), "bias": torch.tensor(sd["fc.bias"])})
        x = np.random.default_rng(0).normal(size=(6, 3)).astype(np.float32)
        with torch.no_grad():
            y = fc(lstm(torch.tensor(x)[None])[0])[0].double().numpy()  # (T, K)
        np.testing.assert_allclose(hm.reference(sd, x)[1], y, atol=1e-6, rtol=0)
        tr = model.load(hm.save(tmp_path / f"{head}.safetensors", sd)).trace(x)
        assert tr.head_kind == head
        got = tr.values if head == "values" else tr.probs
        np.testing.assert_allclose(got, y if head == "values" else torch.softmax(torch.tensor(y), 1).numpy(), atol=1e-5)
