"""Keras classifiers and regressors against Keras's own model.predict (tests/fixtures/make_keras.py heads):
what the file's layers say the head is (softmax: classes; linear: values; return_sequences=False: only the
last step counts), and the answer Keras gives. Tolerance 1e-5 max abs error (float32 both sides)."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

import model

pytest.importorskip("h5py")

FIX = Path(__file__).parents[1] / "fixtures" / "keras"
TOL = 1e-5
TEXT = "bad cafe faced a bee"


def ref(name: str) -> dict[str, np.ndarray]:
    with np.load(FIX / "heads" / f"{name}.npz", allow_pickle=False) as d:
        return dict(d)


def trace(net: model.Network, name: str) -> model.Trace:
    r = ref(name)
    if net.input == "text":
        assert net.tokenizer is not None
        np.testing.assert_array_equal(net.tokenizer.encode(TEXT).ids, r["x"])
        return net.trace(TEXT)
    return net.trace(r["x"])


def test_a_per_step_tagger_gives_keras_class_probabilities_at_every_step():
    net = model.load(FIX / "heads" / "tagger.keras")
    assert net.head is not None and (net.head.kind, net.head.at, net.head.size) == ("classes", "every", 3)
    tr = trace(net, "tagger")
    want = ref("tagger")["out"]  # (T, 3)
    assert tr.probs is not None and tr.probs.shape == want.shape == (len(TEXT), 3)
    assert np.abs(tr.probs - want).max() <= TOL


CASES = [
    # (fixture, kind): return_sequences=False on the top layer, so only the last step's output is the answer
    ("classifier", "classes"),  # Embedding → LSTM → Dense(2, softmax)
    ("regressor", "values"),  # vectors → GRU → Dense(1) (linear, compiled with mse)
    ("bi_classifier", "classes"),  # Bidirectional(LSTM) → Dense(2, softmax): [h_fwd after x_{T-1} ; h_bwd after x_0]
    ("back_classifier", "classes"),  # GRU(go_backwards=True) → Dense(2, softmax): its h after x_0
]


@pytest.mark.parametrize(("name", "kind"), CASES)
def test_a_sequence_model_answers_at_its_last_step_what_keras_predicts(name, kind):
    net = model.load(FIX / "heads" / f"{name}.keras")
    assert net.head is not None and (net.head.kind, net.head.at) == (kind, "last")
    tr = trace(net, name)
    assert tr.head_at == "last" and tr.head_kind == kind
    out = tr.probs if kind == "classes" else tr.values
    assert out is not None and (tr.values is None if kind == "classes" else tr.probs is None)
    want = ref(name)["out"]  # (K,): Keras answers once per sequence
    assert out.shape == (len(tr), want.shape[0])
    err = float(np.abs(out[-1] - want).max())
    assert err <= TOL, f"{name}: the last step's answer differs from Keras by {err:.2e}"


def test_the_user_overrides_what_the_keras_file_says():
    net = model.load(FIX / "heads" / "regressor.keras", head_at="every", labels=["ppm"])
    assert (net.head.kind, net.head.at, net.head.labels) == ("values", "every", ("ppm",))
    net = model.load(FIX / "heads" / "classifier.keras", head="values")
    assert (net.head.kind, net.head.at) == ("values", "last")


def with_loss(src: Path, dst: Path, loss: object) -> Path:
    """``src`` (a .keras archive) as if compiled with ``loss``."""
    with zipfile.ZipFile(src) as z:
        entries = {n: z.read(n) for n in z.namelist()}
    config = json.loads(entries["config.json"])
    config["compile_config"] = {"optimizer": "adam", "loss": loss}
    entries["config.json"] = json.dumps(config).encode()
    with zipfile.ZipFile(dst, "w") as z:
        for n, data in entries.items():
            z.writestr(n, data)
    return dst


def test_a_linear_head_is_values_unless_the_model_was_trained_on_its_logits(tmp_path):
    """gru_after: vectors (D = 4) → GRU → Dense(3), linear. Its outputs are what model.predict returns (values),
    unless the file's compiled loss is a crossentropy from_logits=True: then they are logits of 3 classes."""
    src = FIX / "gru_after.keras"
    assert model.load(src).head.kind == "values"
    logits = {"class_name": "SparseCategoricalCrossentropy", "config": {"from_logits": True}}
    assert model.load(with_loss(src, tmp_path / "a.keras", logits)).head.kind == "classes"
    probs = {"class_name": "SparseCategoricalCrossentropy", "config": {"from_logits": False}}
    assert model.load(with_loss(src, tmp_path / "b.keras", probs)).head.kind == "values"
    assert model.load(with_loss(src, tmp_path / "c.keras", "mse")).head.kind == "values"
    # A text model's linear head of the vocabulary's size, trained from logits, predicts the next token.
    assert model.load(FIX / "lstm_mask.keras").head.kind == "next"


def test_a_legacy_h5_says_return_sequences_and_a_weights_only_file_cannot(tmp_path):
    """lstm_vec: LSTM(return_sequences=False) → Dense(4, softmax), as legacy .h5 (its config inside) and as
    weights only (no config: the head's kind is inferred and every step counts)."""
    legacy = model.load(FIX / "lstm_vec_legacy.h5")
    assert (legacy.head.kind, legacy.head.at) == ("classes", "last")
    with zipfile.ZipFile(FIX / "lstm_vec.keras") as z:
        (tmp_path / "w.weights.h5").write_bytes(z.read("model.weights.h5"))
    bare = model.load(tmp_path / "w.weights.h5")
    assert (bare.head.kind, bare.head.at) == ("classes", "every")
    with np.load(FIX / "lstm_vec.npz", allow_pickle=False) as r:
        assert np.abs(legacy.trace(r["x"]).probs[-1] - r["out"]).max() <= TOL
