"""The files people have, from real torch (tests/fixtures/make_torch.py --files): nn.LSTMCell / GRUCell /
stacked cells, proj_size, checkpoints (.pt, Lightning .ckpt, .bin), tied embeddings, a LayerNorm before
the head, an encoder-decoder. Every gate matches PyTorch's step-by-step reference to 1e-5, h and the
final state match the modules themselves, and what gatescope leaves out is said.

The .safetensors fixtures need no torch; the .pt/.ckpt/.bin ones (torch.load) skip without it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import model
from model import FormatError

FIXTURES = Path(__file__).parents[1] / "fixtures" / "torch_files"
TOL = 1e-5
TORCH_NAME = {
    "lstm": {"f": "f", "i": "i", "c_tilde": "g", "c": "c", "o": "o", "h": "h"},
    "gru": {"z": "z", "r": "r", "h_tilde": "n", "h": "h"},
    "rnn": {"h": "h"},
}
#: file -> (reference stem, module to choose or None, whether a head is expected)
CASES = {
    "lstmcell.safetensors": ("lstmcell", None, False),
    "grucell.safetensors": ("grucell", None, False),
    "lstmcell_stack2.safetensors": ("lstmcell_stack2", None, False),
    "rnncell_stack3.safetensors": ("rnncell_stack3", None, False),
    "lstm_proj_l1.safetensors": ("lstm_proj_l1", None, False),
    "lstm_proj_l2.safetensors": ("lstm_proj_l2", None, False),
    "checkpoint.pt": ("checkpoint", None, True),
    "lightning.ckpt": ("lightning", None, True),
    "pytorch_model.bin": ("pytorch_model", None, True),
    "tied.safetensors": ("tied", None, True),
    "tied_pt.pt": ("tied_pt", None, True),
    "layernorm_head.safetensors": ("layernorm_head", None, False),
    "seq2seq.safetensors@encoder.lstm": ("seq2seq.encoder", "encoder.lstm", False),
    "seq2seq.safetensors@decoder.lstm": ("seq2seq.decoder", "decoder.lstm", True),
}


def load_ref(stem: str) -> dict[str, np.ndarray]:
    with np.load(FIXTURES / f"{stem}.npz") as z:
        return {k: z[k] for k in z.files}


def load_case(case: str) -> model.Network:
    file, _, module = case.partition("@")
    if not file.endswith(".safetensors"):
        pytest.importorskip("torch")
    return model.load(FIXTURES / file, module=module or None)


def errors(net: model.Network, ref: dict[str, np.ndarray]) -> dict[str, float]:
    """Max abs error of every gate of every layer, of h against the module, and of its final state."""
    cell = str(ref["cell"])
    names = TORCH_NAME[cell] | ({"m": "m"} if net.spec.proj_size else {})
    state = [(ref["h0"][k], ref["c0"][k] if cell == "lstm" else None) for k in range(net.num_layers)]
    tr = net.trace(str(ref["text"]) if "text" in ref else ref["x"], state=state)
    out = {}
    for k, layer in enumerate(tr.layers):
        assert set(layer) == set(names), f"layer {k} records {sorted(layer)}"
        for gate, name in names.items():
            want = 1 - ref[f"l{k}.{name}"] if (cell, gate) == ("gru", "z") else ref[f"l{k}.{name}"]
            assert layer[gate].shape == want.shape, (k, gate, layer[gate].shape, want.shape)
            out[f"l{k}.{gate}"] = float(np.abs(layer[gate] - want).max())
    out["output"] = float(np.abs(tr.layers[-1]["h"] - ref["output"]).max())
    for k, (h, c) in enumerate(tr.state):
        out[f"h_n[{k}]"] = float(np.abs(h - ref["h_n"][k]).max())
        if c is not None:
            out[f"c_n[{k}]"] = float(np.abs(c - ref["c_n"][k]).max())
    if "probs" in ref:
        assert tr.probs is not None, "the head was not read"
        out["probs"] = float(np.abs(tr.probs - ref["probs"]).max())
    return out


@pytest.mark.parametrize("case", list(CASES))
def test_every_gate_matches_pytorch(case):
    stem, _, head = CASES[case]
    net, ref = load_case(case), load_ref(stem)
    assert net.cell == str(ref["cell"]) and (net.spec.output_size is not None) == head, net.spec
    bad = {k: f"{v:.1e}" for k, v in errors(net, ref).items() if not v <= TOL}
    assert not bad, f"{case}: above {TOL:g}: {bad}"


def test_cells_are_named_as_cells_and_stacks_as_layers():
    kinds = {
        f: model.load(FIXTURES / f).spec.meta["source"]["kind"] for f in ("lstmcell.safetensors", "grucell.safetensors")
    }
    assert kinds == {"lstmcell.safetensors": "nn.LSTMCell", "grucell.safetensors": "nn.GRUCell"}
    stack = model.load(FIXTURES / "rnncell_stack3.safetensors")
    assert (stack.num_layers, stack.spec.meta["source"]["module"]) == (3, "cells")


def test_proj_size_records_m_and_a_narrow_h():
    net = model.load(FIXTURES / "lstm_proj_l2.safetensors")
    assert (net.hidden_size, net.spec.proj_size, net.gates) == (10, 4, ("f", "i", "c_tilde", "c", "o", "m", "h"))
    tr = net.trace(np.zeros((3, 5), np.float32))
    assert (
        tr.layers[1]["h"].shape == (3, 4) and tr.layers[1]["m"].shape == (3, 10) and tr.layers[1]["c"].shape == (3, 10)
    )


def test_proj_size_survives_the_native_format(tmp_path):
    """The server stores uploads natively: the projection must come back as it went in."""
    net = model.load(FIXTURES / "lstm_proj_l1.safetensors")
    back = model.load(model.save(net, tmp_path / "p.safetensors"))
    assert back.spec.proj_size == 3
    x = load_ref("lstm_proj_l1")["x"]
    np.testing.assert_array_equal(back.trace(x).layers[0]["h"], net.trace(x).layers[0]["h"])


@pytest.mark.parametrize(
    ("file", "entry", "others"),
    [
        ("checkpoint.pt", "model_state_dict", ["epoch", "optimizer_state_dict", "loss"]),
        ("lightning.ckpt", "state_dict", ["epoch", "global_step", "pytorch-lightning_version"]),
    ],
)
def test_a_checkpoint_says_what_else_it_held(file, entry, others):
    pytest.importorskip("torch")
    net = model.load(FIXTURES / file)
    got = net.spec.meta["checkpoint"]
    assert got["entry"] == entry and set(others) <= set(got["others"]), got


def test_tied_save_model_reads_the_shared_matrix_as_embedding_and_head():
    """save_model writes decoder.weight once and {"embedding.weight": "decoder.weight"} in the metadata."""
    net = model.load(FIXTURES / "tied.safetensors")
    assert net.spec.meta["tied"] == {"embedding.weight": "decoder.weight"}, net.spec.meta
    assert net.input == "text" and net.spec.embedding
    np.testing.assert_array_equal(net.params["embedding"], net.params["head.W"].T)


def test_a_layernorm_before_the_head_is_said_and_the_head_not_shown():
    net = model.load(FIXTURES / "layernorm_head.safetensors")
    assert net.spec.output_size is None and net.input == "text"
    notes = net.spec.meta["left_out"]
    assert any(n.startswith("LayerNorm ln (bias, weight)") for n in notes), notes
    assert any("head not shown" in n and "decoder" in n for n in notes), notes


def test_an_encoder_decoder_lists_its_modules_and_names_the_argument():
    with pytest.raises(model.SeveralModules) as e:
        model.load(FIXTURES / "seq2seq.safetensors")
    assert e.value.modules == ["decoder.lstm", "encoder.lstm"]
    msg = str(e.value)
    assert "module=" in msg and "encoder.lstm (nn.LSTM, 1 × 8)" in msg, msg
    enc = model.load(FIXTURES / "seq2seq.safetensors", module="encoder.lstm")
    notes = " / ".join(enc.spec.meta["left_out"])
    assert "decoder.lstm" in notes and "decoder.fc" in notes, notes


def test_a_pickled_class_in_a_checkpoint_is_refused(tmp_path):
    torch = pytest.importorskip("torch")
    path = tmp_path / "whole.ckpt"
    torch.save({"state_dict": torch.nn.LSTM(3, 4).state_dict(), "model": torch.nn.LSTM(3, 4)}, path)
    with pytest.raises(FormatError) as e:
        model.load(path)
    assert "pickled" in str(e.value), str(e.value)


# Item 6: parameters after load --------------------------------------------------------------------
def test_params_are_read_only_so_an_edit_cannot_be_silently_ignored():
    net = model.load(FIXTURES / "lstmcell.safetensors")
    with pytest.raises(ValueError, match="read-only"):
        net.params["layers.0.b_f"][0] = 5.0
    with pytest.raises(TypeError):
        net.params["layers.0.b_f"] = np.zeros(6, np.float32)  # type: ignore[index]


def test_with_params_changes_what_the_network_computes():
    net = model.load(FIXTURES / "lstmcell.safetensors")
    x = load_ref("lstmcell")["x"]
    shut = net.with_params({"layers.0.b_f": np.full(6, -50.0, np.float32)})  # a closed forget gate
    tr = shut.trace(x)
    assert tr.layers[0]["f"].max() < 1e-6, "the new bias did not reach the fused weights"
    np.testing.assert_allclose(tr.layers[0]["c"], tr.layers[0]["i"] * tr.layers[0]["c_tilde"], atol=1e-6)
    np.testing.assert_array_equal(
        net.trace(x).layers[0]["h"], model.load(FIXTURES / "lstmcell.safetensors").trace(x).layers[0]["h"]
    )
    with pytest.raises(FormatError, match=r"shape \(3,\), expected \(6,\)"):
        net.with_params({"layers.0.b_f": np.zeros(3)})
    with pytest.raises(FormatError, match="no such weights: layers.0.b_x"):
        net.with_params({"layers.0.b_x": np.zeros(6)})


def test_training_a_projected_lstm_is_refused_not_misread():
    from model.backprop import loss_and_grads

    net = model.load(FIXTURES / "lstm_proj_l1.safetensors")
    with pytest.raises(FormatError, match="proj_size"):
        loss_and_grads(net.spec, dict(net.params), np.zeros((1, 2), int), np.zeros((1, 2), int), np.ones((1, 2)))
