"""The Keras importer against Keras itself: fixtures saved by Keras 3 with what Keras computed
from them (tests/fixtures/make_keras.py), and every file it must refuse, built here.

Tolerance: 1e-5 max abs error on every h, c, final state and probability (float32 both sides).
"""

from __future__ import annotations

import json
import shutil
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest

import model
from model.formats import FormatError

FIX = Path(__file__).parents[1] / "fixtures" / "keras"
TOL = 1e-5
TEXT = {"lstm_text": "hello world, the tale", "gru_before": "abba cab dace bead", "lstm_mask": "banana bandana"}
VOCAB = {n: json.loads((FIX / f"{n}.vocab.json").read_text()) for n in TEXT}


def ref(name: str) -> dict[str, np.ndarray]:
    with np.load(FIX / f"{name}.npz", allow_pickle=False) as d:
        return dict(d)


def extract_weights(name: str, dst: Path) -> Path:
    """The model.weights.h5 inside <name>.keras, as a .weights.h5 file (what model.save_weights writes)."""
    with zipfile.ZipFile(FIX / f"{name}.keras") as z:
        dst.write_bytes(z.read("model.weights.h5"))
    return dst


def rezip(
    name: str, dst: Path, edit: Callable[[dict[str, Any]], Any] | None = None, weights: bytes | None = None
) -> Path:
    """<name>.keras with its config.json edited in place by ``edit`` and/or its weights replaced."""
    with zipfile.ZipFile(FIX / f"{name}.keras") as z:
        entries = {n: z.read(n) for n in z.namelist()}
    config = json.loads(entries["config.json"])
    if edit is not None:
        edit(config)
    entries["config.json"] = json.dumps(config).encode()
    if weights is not None:
        entries["model.weights.h5"] = weights
    with zipfile.ZipFile(dst, "w") as z:
        for n, data in entries.items():
            z.writestr(n, data)
    return dst


def layer(config: dict[str, Any], name: str) -> dict[str, Any]:
    """The config entry of the layer called ``name``."""
    return next(e for e in config["config"]["layers"] if e["config"]["name"] == name)


def write_tree(path: Path, arrays: dict[str, tuple[int, ...]]) -> Path:
    """A weights-only HDF5 file holding random arrays of the given shapes at the given paths."""
    rng = np.random.default_rng(0)
    with h5py.File(path, "w") as f:
        for where, shape in arrays.items():
            f[where] = rng.normal(size=shape).astype(np.float32)
    return path


def check(net: model.Network, name: str) -> dict[str, float]:
    """Trace the fixture's input and compare everything Keras recorded; return the max abs errors."""
    r = ref(name)
    x = r["x"]
    if name in TEXT and net.input == "text":
        assert net.tokenizer is not None
        ids = x if x.ndim == 1 else x.argmax(axis=1)  # the embedding's rows, or the one-hot columns
        np.testing.assert_array_equal(net.tokenizer.encode(TEXT[name]).ids, ids)
        tr = net.trace(TEXT[name])
    else:
        tr = net.trace(x)
    errs: dict[str, float] = {}
    state = tr.state
    for k, gates in enumerate(tr.layers):
        errs[f"h{k}"] = float(np.abs(gates["h"] - r[f"h{k}"]).max())
        errs[f"hT{k}"] = float(np.abs(state[k][0] - r[f"hT{k}"]).max())
        if f"c{k}" in r:
            errs[f"c{k}"] = float(np.abs(gates["c"] - r[f"c{k}"]).max())
            errs[f"cT{k}"] = float(np.abs(state[k][1] - r[f"cT{k}"]).max())
    assert len(tr.layers) == sum(k.startswith("hT") for k in r)
    if "probs" in r and tr.values is not None:  # a linear head read as values: Keras's outputs themselves
        assert net.head is not None and net.head.kind == "values"
        errs["values"] = float(np.abs(tr.values - r["out"]).max())
    elif "probs" in r:
        assert tr.probs is not None
        errs["probs"] = float(np.abs(tr.probs - r["probs"]).max())
        if r["out"].ndim == 1:  # return_sequences=False: Keras gave the last step only
            errs["out"] = float(np.abs(tr.probs[-1] - r["out"]).max())
    else:
        assert tr.probs is None
    bad = {k: v for k, v in errs.items() if not v <= TOL}
    assert not bad, f"{name}: differs from Keras: {bad}"
    return errs


# Numerics: every fixture, as .keras, as weights only, as legacy .h5 -------------------------

CASES = [
    # (fixture, cell, layers, reset_after, input)
    ("lstm_text", "lstm", 2, False, "text"),
    ("gru_after", "gru", 2, True, "vectors"),
    ("gru_before", "gru", 1, False, "text"),
    ("rnn", "rnn", 2, False, "vectors"),
    ("lstm_vec", "lstm", 1, False, "vectors"),
    ("lstm_mask", "lstm", 1, False, "text"),  # Functional, mask_zero, compiled: optimizer state in the file
]


@pytest.mark.parametrize(("name", "cell", "layers", "reset_after", "kind"), CASES)
def test_keras_archive_matches_keras(name, cell, layers, reset_after, kind):
    net = model.load(FIX / f"{name}.keras")  # text models find <name>.vocab.json beside
    assert (net.cell, net.num_layers, net.spec.reset_after, net.input) == (cell, layers, reset_after, kind)
    assert net.spec.meta["source"]["format"] == "keras"
    check(net, name)


@pytest.mark.parametrize(("name", "cell", "layers", "reset_after", "kind"), CASES)
def test_weights_only_matches_keras(tmp_path, name, cell, layers, reset_after, kind):
    path = extract_weights(name, tmp_path / f"{name}.weights.h5")
    net = model.load(path, vocab=VOCAB.get(name))
    assert (net.cell, net.num_layers, net.spec.reset_after, net.input) == (cell, layers, reset_after, kind)
    check(net, name)


def test_saved_weights_file_matches_keras():
    """gru_before.weights.h5 is what model.save_weights wrote (reset_after=False: bias (3H,))."""
    net = model.load(FIX / "gru_before.weights.h5")
    assert (net.cell, net.spec.reset_after, net.input) == ("gru", False, "text")
    check(net, "gru_before")


def test_legacy_h5_matches_keras():
    net = model.load(FIX / "lstm_vec_legacy.h5")
    assert net.spec.meta["source"]["keras_version"].startswith("3.")
    check(net, "lstm_vec")


def test_one_hot_without_vocab_takes_vectors(tmp_path):
    shutil.copy(FIX / "gru_before.keras", tmp_path / "m.keras")
    net = model.load(tmp_path / "m.keras")
    assert net.input == "vectors" and net.spec.input_size == 7
    check(net, "gru_before")


def test_one_hot_vocab_must_match_input_size():
    with pytest.raises(FormatError, match="one-hot input needs input_size = vocabulary size"):
        model.load(FIX / "gru_before.keras", vocab=["a", "b", "c"])


# The GRU's z: gatescope's is colah's, 1 - Keras's --------------------------------------------


@pytest.mark.parametrize("name", ["gru_after", "gru_before"])
def test_gru_z_is_one_minus_keras_z(name):
    net = model.load(FIX / f"{name}.keras", vocab=VOCAB.get(name))
    r = ref(name)
    tr = net.trace(r["x"])
    for k, g in enumerate(tr.layers):
        z, h, h_tilde = (g[n].astype(np.float64) for n in ("z", "h", "h_tilde"))
        np.testing.assert_allclose(z, 1 - r[f"zk{k}"], rtol=0, atol=TOL)
        h_prev = np.vstack([np.zeros((1, h.shape[1])), h[:-1]])  # (T, H)
        # colah's update: z is the share of the candidate.
        assert np.abs(h - ((1 - z) * h_prev + z * h_tilde)).max() <= 1e-6
        # Keras's own z in that place would not reproduce h: the check above can fail.
        zk = r[f"zk{k}"].astype(np.float64)
        assert np.abs(h - ((1 - zk) * h_prev + zk * h_tilde)).max() > 1e-2


# Refusals: each a FormatError whose message says what to do ----------------------------------


def _rename_class(name: str, cls: str, **cfg: Any) -> Callable[[dict[str, Any]], None]:
    def edit(config: dict[str, Any]) -> None:
        e = layer(config, name)
        e["class_name"] = cls
        e["config"].update(cfg)

    return edit


def _set(name: str, **cfg: Any) -> Callable[[dict[str, Any]], None]:
    return lambda config: layer(config, name)["config"].update(cfg)


REFUSED_CONFIGS = [
    ("gru_after", _set("gru", go_backwards=True), "go_backwards=True"),
    ("gru_after", _set("gru_1", activation="relu"), "activation 'relu'"),
    ("rnn", _set("rnn", activation="relu"), "activation 'relu'"),
    ("lstm_vec", _set("lstm", recurrent_activation="hard_sigmoid"), "recurrent_activation 'hard_sigmoid'"),
    ("lstm_vec", _set("head", activation="relu"), "activation 'relu'.*softmax or linear"),
    ("gru_after", _set("gru", reset_after=False), r"reset_after=False but its bias has shape \(2, 15\)"),
    ("gru_after", _rename_class("gru_1", "Bidirectional"), "Bidirectional"),
    ("lstm_text", _rename_class("dropout", "LayerNormalization"), "is a LayerNormalization"),
    ("lstm_text", _rename_class("embedding", "TextVectorization"), "is a TextVectorization"),
]


@pytest.mark.parametrize(("name", "edit", "message"), REFUSED_CONFIGS, ids=[c[2] for c in REFUSED_CONFIGS])
def test_refuses_config(tmp_path, name, edit, message):
    path = rezip(name, tmp_path / "m.keras", edit)
    with pytest.raises(FormatError, match=message):
        model.load(path, vocab=VOCAB.get(name))


def test_refuses_branches(tmp_path):
    def branch(config):  # the head reads the first GRU, skipping the second
        e = layer(config, "head")
        e["inbound_nodes"][0]["args"][0]["config"]["keras_history"][0] = "gru"

    with pytest.raises(FormatError, match="takes its input from gru; gatescope reads a plain chain"):
        model.load(rezip("gru_after", tmp_path / "m.keras", branch))


def test_refuses_subclassed_models(tmp_path):
    def subclass(config):
        config["class_name"] = "MyModel"

    with pytest.raises(FormatError, match="is a MyModel; gatescope reads Sequential and Functional"):
        model.load(rezip("rnn", tmp_path / "m.keras", subclass))


def test_refuses_dense_before_recurrent(tmp_path):
    def swap(config):
        ls = config["config"]["layers"]
        ls[1], ls[2] = ls[2], ls[1]  # [Input, Dense, LSTM]

    with pytest.raises(FormatError, match="a Dense layer before the recurrent layers"):
        model.load(rezip("lstm_vec", tmp_path / "m.keras", swap))


def test_softmax_activation_after_linear_head(tmp_path):
    """Dense(V) + Activation('softmax') is read as the softmax head it is; a second softmax is refused."""

    def split(config):
        layer(config, "head")["config"]["activation"] = "linear"
        config["config"]["layers"].append(
            {"class_name": "Activation", "config": {"name": "act", "activation": "softmax"}}
        )

    check(model.load(rezip("lstm_vec", tmp_path / "ok.keras", split)), "lstm_vec")

    def twice(config):
        config["config"]["layers"].append(
            {"class_name": "Activation", "config": {"name": "act", "activation": "softmax"}}
        )

    with pytest.raises(FormatError, match="not a softmax after a linear Dense head"):
        model.load(rezip("lstm_vec", tmp_path / "bad.keras", twice))


def test_time_distributed_dense_head(tmp_path):
    """TimeDistributed(Dense) is the same head; Keras keeps its variables under .../layer/vars."""

    def wrap(config):
        e = layer(config, "head")
        e.update(
            class_name="TimeDistributed", config={"name": "td", "layer": {"class_name": "Dense", "config": e["config"]}}
        )

    w = extract_weights("lstm_vec", tmp_path / "w.h5")
    with h5py.File(w, "a") as f:
        f.move("layers/dense", "layers/time_distributed/layer")
    check(model.load(rezip("lstm_vec", tmp_path / "m.keras", wrap, weights=w.read_bytes())), "lstm_vec")


def test_embedding_needs_a_vocabulary(tmp_path):
    shutil.copy(FIX / "lstm_text.keras", tmp_path / "m.keras")
    with pytest.raises(FormatError, match="an Embedding of 10 tokens; give its vocabulary"):
        model.load(tmp_path / "m.keras")
    with pytest.raises(FormatError, match="the vocabulary lists 3 tokens, the Embedding has 10"):
        model.load(tmp_path / "m.keras", vocab=["a", "b", "c"])


@pytest.mark.parametrize(
    ("tree", "message"),
    [
        ({"layers/dense/vars/0": (4, 3), "layers/dense/vars/1": (3,)}, "no LSTM, GRU or SimpleRNN layer"),
        (
            {
                f"layers/bidirectional/{d}_layer/cell/vars/{j}": s
                for d in ("forward", "backward")
                for j, s in enumerate([(3, 8), (2, 8), (8,)])
            },
            "Bidirectional",
        ),
        (
            {
                "layers/lstm/cell/vars/0": (3, 8),
                "layers/lstm/cell/vars/1": (2, 8),
                "layers/gru/cell/vars/0": (2, 6),
                "layers/gru/cell/vars/1": (2, 6),
                "layers/gru/cell/vars/2": (2, 6),
            },
            "mix gru and lstm",
        ),
        (
            {"layers/gru/cell/vars/0": (3, 6), "layers/gru/cell/vars/1": (2, 6)},
            "no bias, so a weights-only file cannot tell reset_after",
        ),
        (
            {"layers/lstm/cell/vars/0": (3, 6), "layers/lstm/cell/vars/1": (2, 6)},
            r"an LSTM needs \(D, 4H\) and \(H, 4H\)",
        ),
        (
            {"layers/lstm/cell/vars/0": (3, 8), "layers/lstm/cell/vars/1": (2, 8), "layers/conv1d/vars/0": (3, 3, 3)},
            "layer 'conv1d' has weights gatescope cannot place",
        ),
        (
            {
                "layers/lstm/cell/vars/0": (3, 8),
                "layers/lstm/cell/vars/1": (2, 8),
                "layers/dense/vars/0": (2, 3),
                "layers/dense_1/vars/0": (3, 3),
            },
            "several dense layers",
        ),
        ({"something/else": (3,)}, "an HDF5 file without Keras layers"),
    ],
    ids=[
        "no-recurrent",
        "bidirectional",
        "mixed",
        "gru-no-bias",
        "bad-shape",
        "unknown-layer",
        "two-heads",
        "not-keras",
    ],
)
def test_refuses_weights_only(tmp_path, tree, message):
    with pytest.raises(FormatError, match=message):
        model.load(write_tree(tmp_path / "m.weights.h5", tree))


def test_weights_only_without_bias_is_zero_bias(tmp_path):
    """rnn's second SimpleRNN has use_bias=False: two variables, read as a zero bias."""
    path = extract_weights("rnn", tmp_path / "rnn.weights.h5")
    with h5py.File(path) as f:
        assert sorted(f["layers/simple_rnn_1/cell/vars"]) == ["0", "1"]
    net = model.load(path)
    assert not net.params["layers.1.b_h"].any()


# Damaged and foreign files --------------------------------------------------------------------


@pytest.mark.parametrize("name", ["lstm_text.keras", "gru_before.weights.h5", "lstm_vec_legacy.h5"])
@pytest.mark.parametrize("keep", [0.5, 0.9])
def test_refuses_truncated_files(tmp_path, name, keep):
    data = (FIX / name).read_bytes()
    path = tmp_path / name
    path.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(FormatError, match="truncated or damaged"):
        model.load(path, vocab=["a"] * 10)


def test_refuses_keras_that_is_not_a_zip(tmp_path):
    (tmp_path / "m.keras").write_text("definitely not a model")
    with pytest.raises(FormatError, match="m.keras is not a Keras file: its contents are not a zip archive"):
        model.load(tmp_path / "m.keras")


def test_refuses_zip_without_config(tmp_path):
    with zipfile.ZipFile(tmp_path / "m.keras", "w") as z:
        z.writestr("model.weights.h5", b"")
    with pytest.raises(FormatError, match="a zip archive without config.json"):
        model.load(tmp_path / "m.keras")


def test_refuses_broken_config_json(tmp_path):
    with zipfile.ZipFile(FIX / "rnn.keras") as src, zipfile.ZipFile(tmp_path / "m.keras", "w") as z:
        for n in src.namelist():
            z.writestr(n, b'{"class_name": "Sequential", "con' if n == "config.json" else src.read(n))
    with pytest.raises(FormatError, match="config.json or metadata.json is not valid JSON"):
        model.load(tmp_path / "m.keras")


def test_refuses_archive_without_weights(tmp_path):
    with zipfile.ZipFile(FIX / "rnn.keras") as src, zipfile.ZipFile(tmp_path / "m.keras", "w") as z:
        z.writestr("config.json", src.read("config.json"))
    with pytest.raises(FormatError, match="no model.weights.h5"):
        model.load(tmp_path / "m.keras")


def test_refuses_archive_with_weights_elsewhere(tmp_path):
    """A config that names layers the weights file lacks (here: an LSTM where a GRU was saved)."""
    with pytest.raises(FormatError, match="no variables at layers/lstm/cell/vars"):
        model.load(rezip("gru_after", tmp_path / "m.keras", _rename_class("gru", "LSTM")))


def test_refuses_keras2_weights_only(tmp_path):
    with h5py.File(tmp_path / "m.h5", "w") as f:
        f.attrs["layer_names"] = ["lstm"]
    with pytest.raises(FormatError, match="a Keras 2 weights-only file"):
        model.load(tmp_path / "m.h5")


def test_needs_h5py(monkeypatch):
    monkeypatch.setitem(sys.modules, "h5py", None)  # import h5py now raises ImportError
    with pytest.raises(FormatError, match=r"pip install 'gatescope\[keras\]'"):
        model.load(FIX / "rnn.keras")


def test_messages_never_leak_tracebacks(tmp_path):
    """Random bytes behind a valid zip or HDF5 signature still give a FormatError, not an h5py/zipfile error."""
    rng = np.random.default_rng(1)
    for suffix, magic in ((".keras", b"PK\x03\x04"), (".h5", b"\x89HDF\r\n\x1a\n")):
        path = tmp_path / f"m{suffix}"
        path.write_bytes(magic + rng.bytes(2000))
        with pytest.raises(FormatError):
            model.load(path)
