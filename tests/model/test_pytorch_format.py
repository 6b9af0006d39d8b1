"""The PyTorch importer refuses what it cannot run, with a FormatError that names the thing to fix.

Bad files are built here with safetensors.numpy (no torch needed); the one case that needs
torch.save to make its file skips without torch.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from safetensors.numpy import save_file

import model
from model import FormatError

GATE_BLOCKS = {"lstm": 4, "gru": 3, "rnn": 1}


def state_dict(cell="lstm", D=3, H=4, L=1, prefix="", bias=True, seed=0) -> dict[str, np.ndarray]:
    """The tensors of a random nn.LSTM/GRU/RNN state_dict, keys as PyTorch names them."""
    rng = np.random.default_rng(seed)
    G, sd = GATE_BLOCKS[cell], {}
    for k in range(L):
        sd[f"{prefix}weight_ih_l{k}"] = rng.normal(0, 0.5, (G * H, D if k == 0 else H)).astype(np.float32)
        sd[f"{prefix}weight_hh_l{k}"] = rng.normal(0, 0.5, (G * H, H)).astype(np.float32)
        if bias:
            sd[f"{prefix}bias_ih_l{k}"] = rng.normal(0, 0.5, G * H).astype(np.float32)
            sd[f"{prefix}bias_hh_l{k}"] = rng.normal(0, 0.5, G * H).astype(np.float32)
    return sd


def refusal(path, tensors=None, **kw) -> str:
    """Write ``tensors`` to ``path`` (when given), load it, and return the FormatError's message."""
    if tensors is not None:
        save_file(tensors, str(path))
    with pytest.raises(FormatError) as e:
        model.load(path, **kw)
    return str(e.value)


def test_a_good_state_dict_loads(tmp_path):
    """The control: the helper's state_dict is a valid one, so the refusals below are about their one change."""
    save_file(state_dict(L=2, prefix="rnn."), str(tmp_path / "ok.safetensors"))
    net = model.load(tmp_path / "ok.safetensors")
    assert (net.cell, net.num_layers, net.hidden_size) == ("lstm", 2, 4)


@pytest.mark.parametrize("prefix", ["", "rnn.", "model.encoder.lstm."])
def test_keys_bare_or_under_one_prefix_load_the_same(prefix, tmp_path):
    bare = state_dict("gru", L=2)
    save_file(bare, str(tmp_path / "bare.safetensors"))
    save_file({prefix + k: v for k, v in bare.items()}, str(tmp_path / "prefixed.safetensors"))
    x = np.random.default_rng(1).normal(size=(6, 3)).astype(np.float32)
    want = model.load(tmp_path / "bare.safetensors").trace(x).layers[1]["h"]
    got = model.load(tmp_path / "prefixed.safetensors").trace(x).layers[1]["h"]
    np.testing.assert_array_equal(got, want)


def test_bidirectional_loads_with_the_backward_weights_under_their_own_names(tmp_path):
    sd = state_dict()
    sd.update({f"{k}_reverse": v for k, v in state_dict(seed=1).items()})
    save_file(sd, str(tmp_path / "bi.safetensors"))
    net = model.load(tmp_path / "bi.safetensors")  # exactness: tests/model/test_bidir_torch.py
    assert net.direction == "bidirectional" and "layers.0.reverse.W_f" in net.params
    assert net.trace(np.ones((3, 3), np.float32)).layers[0]["h"].shape == (3, 8)


def test_proj_size_is_refused(tmp_path):
    sd = state_dict(H=4)
    sd["weight_hh_l0"] = np.zeros((16, 2), np.float32)  # nn.LSTM(3, 4, proj_size=2): W_hh sees the projection
    sd["weight_hr_l0"] = np.zeros((2, 4), np.float32)
    msg = refusal(tmp_path / "proj.safetensors", sd)
    assert "proj_size" in msg and "weight_hr_l0" in msg, msg


def test_two_recurrent_modules_are_refused(tmp_path):
    sd = {**state_dict(prefix="encoder."), **state_dict("gru", D=4, prefix="decoder.")}
    msg = refusal(tmp_path / "seq2seq.safetensors", sd)
    assert "encoder" in msg and "decoder" in msg and "one" in msg, msg


@pytest.mark.parametrize(
    ("drop", "named"),
    [
        (["rnn.weight_hh_l1"], "rnn.weight_hh_l1"),
        (["rnn.weight_ih_l1", "rnn.weight_hh_l1", "rnn.bias_ih_l1", "rnn.bias_hh_l1"], "rnn.weight_ih_l1"),
        (["rnn.weight_ih_l0"], "rnn.weight_ih_l0"),
    ],
    ids=["one-key", "a-whole-middle-layer", "layer-0-input"],
)
def test_a_missing_layer_key_is_named(drop, named, tmp_path):
    sd = state_dict(L=3, prefix="rnn.")
    for k in drop:
        del sd[k]
    msg = refusal(tmp_path / "missing.safetensors", sd)
    assert named in msg and "missing" in msg, msg


@pytest.mark.parametrize(
    ("key", "shape", "named"),
    [
        ("weight_hh_l0", (16, 5), ["weight_hh_l0", "(16, 5)"]),
        ("weight_hh_l0", (8, 4), ["2 gate blocks"]),
        ("weight_ih_l1", (16, 3), ["layer 1", "(16, 3)", "(16, 4)"]),
        ("weight_hh_l1", (16, 5), ["layer 1", "(16, 5)"]),
        ("bias_ih_l0", (15,), ["layer 0", "(15,)", "(16,)"]),
        ("bias_hh_l1", (4, 4), ["layer 1", "(4, 4)"]),
    ],
    ids=["hh-not-GHxH", "two-gate-blocks", "ih-layer-1", "hh-layer-1", "bias-length", "bias-2d"],
)
def test_wrong_shapes_are_named(key, shape, named, tmp_path):
    sd = state_dict(L=2)
    sd[key] = np.zeros(shape, np.float32)
    msg = refusal(tmp_path / "shapes.safetensors", sd)
    assert all(s in msg for s in named), msg


def test_integer_weights_are_refused(tmp_path):
    sd = state_dict()
    sd["weight_ih_l0"] = sd["weight_ih_l0"].astype(np.int32)
    msg = refusal(tmp_path / "int.safetensors", sd)
    assert "weight_ih_l0" in msg and "int32" in msg, msg


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_float16_weights_load_to_their_values(cell, tmp_path):
    """A float16 state_dict runs as its float32 weights rounded to float16: float16 -> float32 is exact, so its
    trace is that of the rounded weights saved as float32, bit for bit; and that of the full-precision weights
    within 5e-3 (weights of about 0.5 rounded to 11 significant bits move these gates by at most 1e-3)."""
    sd = state_dict(cell, L=2)
    save_file({k: v.astype(np.float16) for k, v in sd.items()}, str(tmp_path / "half.safetensors"))
    save_file(
        {k: v.astype(np.float16).astype(np.float32) for k, v in sd.items()}, str(tmp_path / "rounded.safetensors")
    )
    save_file(sd, str(tmp_path / "full.safetensors"))
    x = np.random.default_rng(5).normal(size=(8, 3)).astype(np.float32)
    half, rounded, full = (model.load(tmp_path / f"{n}.safetensors").trace(x) for n in ("half", "rounded", "full"))
    for k in range(2):
        for gate in half.gates:
            np.testing.assert_array_equal(half.layers[k][gate], rounded.layers[k][gate])
            np.testing.assert_allclose(half.layers[k][gate], full.layers[k][gate], atol=5e-3, rtol=0)
            assert half.layers[k][gate].dtype == np.float32


def text_state_dict(V=6, D=5, H=4) -> dict[str, np.ndarray]:
    """nn.Embedding(V, D) → nn.LSTM(D, H) → nn.Linear(H, V), under module prefixes."""
    rng = np.random.default_rng(2)
    return {
        "embed.weight": rng.normal(size=(V, D)).astype(np.float32),
        **state_dict(D=D, H=H, prefix="rnn."),
        "decoder.weight": rng.normal(size=(V, H)).astype(np.float32),
        "decoder.bias": np.zeros(V, np.float32),
    }


NON_FINITE = [
    ("lstm", "weight_ih_l0", np.nan),
    ("lstm", "weight_hh_l1", np.inf),
    ("gru", "bias_hh_l0", -np.inf),
    ("gru", "weight_hh_l0", np.nan),  # the z rows, which the importer negates
    ("rnn", "bias_ih_l1", np.nan),
]


@pytest.mark.parametrize(("cell", "key", "value"), NON_FINITE)
def test_nan_or_inf_in_a_weight_is_refused(cell, key, value, tmp_path):
    sd = state_dict(cell, L=2, prefix="rnn.")
    sd[f"rnn.{key}"].flat[-1] = value
    msg = refusal(tmp_path / "nan.safetensors", sd)
    assert "NaN or infinite" in msg, msg


@pytest.mark.parametrize(("cell", "key", "value"), NON_FINITE)
def test_nan_or_inf_refusal_names_the_weight_as_the_file_does(cell, key, value, tmp_path):
    sd = state_dict(cell, L=2, prefix="rnn.")
    sd[f"rnn.{key}"].flat[-1] = value
    msg = refusal(tmp_path / "nan.safetensors", sd)
    assert f"rnn.{key}" in msg, msg


@pytest.mark.parametrize("key", ["embed.weight", "decoder.weight", "decoder.bias"])
def test_nan_in_embedding_or_decoder_names_it(key, tmp_path):
    sd = text_state_dict()
    sd[key].flat[0] = np.nan
    msg = refusal(tmp_path / "nan.safetensors", sd, vocab=list("abcdef"))
    assert key in msg and "NaN" in msg, msg


def test_a_text_model_loads_with_its_vocabulary(tmp_path):
    """The control for the vocabulary refusals: with six tokens it is a text model."""
    save_file(text_state_dict(), str(tmp_path / "char.safetensors"))
    net = model.load(tmp_path / "char.safetensors", vocab=list("abcdef"))
    tr = net.trace("cab")
    assert tr.probs is not None and tr.probs.shape == (3, 6)


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        ({"norm.weight": np.ones(4, np.float32), "norm.bias": np.zeros(4, np.float32)}, "norm.weight"),
        ({"bn.running_mean": np.zeros(4, np.float32)}, "bn.running_mean"),
        ({"attn.weight": np.ones((7, 9), np.float32)}, "attn"),
    ],
    ids=["layernorm", "batchnorm-buffer", "unplaceable-matrix"],
)
def test_an_unrecognised_tensor_is_named(extra, named, tmp_path):
    msg = refusal(tmp_path / "extra.safetensors", {**state_dict(prefix="rnn."), **extra})
    assert named in msg, msg


def test_an_embedding_without_vocabulary_says_how_to_give_one(tmp_path):
    msg = refusal(tmp_path / "char.safetensors", text_state_dict())
    assert "6 tokens" in msg and "vocab.json" in msg and "vocab=" in msg, msg


def test_a_vocabulary_of_the_wrong_length_is_refused(tmp_path):
    msg = refusal(tmp_path / "char.safetensors", text_state_dict(), vocab=list("abc"))
    assert "3 tokens" in msg and "6 rows" in msg, msg


def test_a_vocabulary_beside_the_file_is_checked_too(tmp_path):
    (tmp_path / "char.vocab.json").write_text(json.dumps(list("abcdefgh")), encoding="utf-8")
    msg = refusal(tmp_path / "char.safetensors", text_state_dict())
    assert "8 tokens" in msg and "6 rows" in msg, msg


def _good_bytes(tmp_path) -> bytes:
    save_file(state_dict(), str(tmp_path / "good.safetensors"))
    return (tmp_path / "good.safetensors").read_bytes()


@pytest.mark.parametrize(
    "make",
    [
        lambda good: np.random.default_rng(3).bytes(700),
        lambda good: b"",
        lambda good: good[:6],  # inside the header's length
        lambda good: good[:40],  # inside the JSON header
        lambda good: good[: len(good) // 2],  # inside the tensor data
        lambda good: good[:-1],  # one byte short
        lambda good: b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all",
    ],
    ids=["random-bytes", "empty", "cut-in-length", "cut-in-header", "cut-in-data", "one-byte-short", "bad-json"],
)
def test_a_broken_safetensors_file_is_a_format_error(make, tmp_path):
    path = tmp_path / "broken.safetensors"
    path.write_bytes(make(_good_bytes(tmp_path)))
    msg = refusal(path)
    assert "broken.safetensors" in msg and "safetensors" in msg.replace("broken.safetensors", ""), msg


def test_a_safetensors_of_unrelated_tensors_lists_them(tmp_path):
    sd = {"encoder.layer.0.attention.weight": np.ones((4, 4), np.float32), "pooler.bias": np.zeros(4, np.float32)}
    msg = refusal(tmp_path / "bert.safetensors", sd)
    assert "nn.LSTM" in msg and "encoder.layer.0.attention.weight" in msg and "pooler.bias" in msg, msg


def test_a_pt_that_is_not_a_zip_is_refused_without_torch(tmp_path):
    path = tmp_path / "old.pt"
    path.write_bytes(b"\x80\x02}q\x00." + bytes(64))  # a bare pickle, as torch saved before 1.6
    msg = refusal(path)
    assert "old.pt" in msg and "zip" in msg, msg


def test_a_pt_holding_a_pickled_module_is_refused(tmp_path):
    torch = pytest.importorskip("torch")
    path = tmp_path / "whole_module.pt"
    torch.save(torch.nn.LSTM(3, 4), path)  # the module object, not its state_dict
    msg = refusal(path)
    assert "pickled" in msg and "state_dict" in msg, msg


def test_a_pt_holding_more_than_a_state_dict_is_refused(tmp_path):
    torch = pytest.importorskip("torch")
    path = tmp_path / "checkpoint.pt"
    torch.save({"model": torch.nn.GRU(3, 4).state_dict(), "epoch": 3}, path)
    msg = refusal(path)
    assert "state_dict" in msg, msg
