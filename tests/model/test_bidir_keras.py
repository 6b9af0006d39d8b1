"""Keras Bidirectional(LSTM/GRU/SimpleRNN, merge_mode="concat") and go_backwards=True load and trace within
1e-5 of Keras (fixtures from tests/fixtures/make_keras.py, in tests/fixtures/keras/bidir/); other merge modes,
stacked go_backwards and mixed directions are refused by name."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import model
from model.formats import FormatError

FIX = Path(__file__).parents[1] / "fixtures" / "keras" / "bidir"
TOL = 1e-5
TEXT = {"bi_lstm_text": "hello world, the tale"}
CASES = [
    # (fixture, file, cell, layers, direction)
    ("bi_lstm_text", "bi_lstm_text.keras", "lstm", 2, "bidirectional"),
    ("bi_lstm_text", "bi_lstm_text_legacy.h5", "lstm", 2, "bidirectional"),
    ("bi_gru_vec", "bi_gru_vec.keras", "gru", 1, "bidirectional"),
    ("bi_rnn_vec", "bi_rnn_vec.keras", "rnn", 2, "bidirectional"),
    ("back_gru", "back_gru.keras", "gru", 1, "reverse"),
    ("back_lstm", "back_lstm.keras", "lstm", 1, "reverse"),
]


def ref(name: str) -> dict[str, np.ndarray]:
    with np.load(FIX / f"{name}.npz", allow_pickle=False) as d:
        return dict(d)


def softmax(a: np.ndarray) -> np.ndarray:
    e = np.exp(a - a.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


@pytest.mark.parametrize(("name", "file", "cell", "layers", "direction"), CASES, ids=[c[1] for c in CASES])
def test_keras_directions_match_keras(name, file, cell, layers, direction):
    net = model.load(FIX / file, vocab=str(FIX / f"{name}.vocab.json") if name in TEXT else None)
    assert (net.cell, net.num_layers, net.direction) == (cell, layers, direction)
    r = ref(name)
    tr = net.trace(TEXT[name] if name in TEXT else r["x"])
    # go_backwards: Keras returns the steps in reading order (its row j read x_{T-1-j}); the trace is in time order
    flip = (lambda a: a[::-1]) if direction == "reverse" else (lambda a: a)
    errs = {f"h{k}": float(np.abs(tr.layers[k]["h"] - flip(r[f"h{k}"])).max()) for k in range(layers)}
    assert tr.layers[-1]["h"].shape[1] == net.hidden_size * (2 if direction == "bidirectional" else 1)
    if tr.probs is not None:
        out = flip(r["out"])
        errs["out"] = float(np.abs(tr.probs - (out if np.allclose(out.sum(-1), 1) else softmax(out))).max())
    elif tr.values is not None:  # a linear head: values, what Keras returns
        errs["out"] = float(np.abs(tr.values - flip(r["out"])).max())
    else:
        assert np.allclose(r["out"], r[f"h{layers - 1}"])  # no head: the output is the top layer's h
    bad = {k: f"{v:.2e}" for k, v in errs.items() if not v <= TOL}
    assert not bad, f"{file}: differs from Keras: {bad}"


def rezip(name: str, dst: Path, edit) -> Path:
    with zipfile.ZipFile(FIX / f"{name}.keras") as z:
        entries = {n: z.read(n) for n in z.namelist()}
    config = json.loads(entries["config.json"])
    edit(config)
    entries["config.json"] = json.dumps(config).encode()
    with zipfile.ZipFile(dst, "w") as z:
        for n, data in entries.items():
            z.writestr(n, data)
    return dst


def cfg(config: dict[str, Any], name: str) -> dict[str, Any]:
    return next(e for e in config["config"]["layers"] if e["config"]["name"] == name)["config"]


REFUSED = [
    ("bi_gru_vec", lambda c: cfg(c, "bi").update(merge_mode="sum"), r"merge_mode='sum'; gatescope reads .*'concat'"),
    ("bi_gru_vec", lambda c: cfg(c, "bi").update(merge_mode=None), r"merge_mode=None"),
    ("bi_gru_vec", lambda c: cfg(c, "bi")["backward_layer"]["config"].update(units=3), r"backward_layer GRU\(3\)"),
    ("bi_gru_vec", lambda c: cfg(c, "bi")["layer"]["config"].update(go_backwards=True), "forward layer of Bid"),
]


@pytest.mark.parametrize(("name", "edit", "message"), REFUSED, ids=[m for _, _, m in REFUSED])
def test_refuses_what_it_cannot_run_by_name(tmp_path, name, edit, message):
    with pytest.raises(FormatError, match=message):
        model.load(rezip(name, tmp_path / "m.keras", edit))


def test_stacked_go_backwards_and_mixed_directions_are_refused_with_the_reason():
    """Keras feeds a second go_backwards layer the first one's reversed output: the directions alternate."""
    from model.formats.keras import Layer, _arrange

    w = [np.zeros((3, 4), np.float32)]
    with pytest.raises(FormatError, match="2 stacked layers with go_backwards=True.*alternate directions"):
        _arrange([Layer("gru", "gru", w, direction="reverse"), Layer("gru", "gru_1", w, direction="reverse")], "m")
    mixed = [Layer("lstm", "bi", w, direction="bidirectional"), Layer("lstm", "lstm", w)]
    with pytest.raises(FormatError, match=r"mix directions \(bi: Bidirectional, lstm: forward\)"):
        _arrange(mixed, "m")


def test_a_weights_only_bidirectional_file_asks_for_the_whole_model(tmp_path):
    with zipfile.ZipFile(FIX / "bi_gru_vec.keras") as z:
        (tmp_path / "m.weights.h5").write_bytes(z.read("model.weights.h5"))
    with pytest.raises(FormatError, match=r"cannot tell its merge_mode: give the whole model as \.keras"):
        model.load(tmp_path / "m.weights.h5")
