"""gatescope's own format: an exact save/load round trip, and a FormatError naming the problem for every bad file."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest
from safetensors.numpy import load_file as st_load
from safetensors.numpy import save_file as st_save

import model
from model import FormatError, Network, Spec
from model.formats import native

CELLS = [("lstm", False), ("peephole", False), ("coupled", False), ("gru", False), ("gru", True), ("rnn", False)]
CELL_IDS = ["lstm", "peephole", "coupled", "gru", "gru_reset_after", "rnn"]
CHARS = ["<unk>", " ", "a", "b", "c", "d", "(", ")", ":", "é"]
WORDS = ["<unk>", "the", "cat", "sat", "on", "mat"]


def random_params(spec: Spec, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {n: rng.normal(0.0, 0.5, spec.expected_shape(n)).astype(np.float32) for n in spec.param_names()}


def specs_for(cell: str, reset_after: bool) -> dict[str, Spec]:
    """Vector, one-hot character, embedded word models with a head and provenance metadata."""
    meta = {"description": "test model", "source": {"format": "native", "nested": [1, 2.5, None, "ü"]}}
    return {
        "vectors": Spec(cell, 3, 4, num_layers=2, reset_after=reset_after),
        "onehot_chars": Spec(
            cell, len(CHARS), 5, reset_after=reset_after, vocab=CHARS, tokenizer="char", output_size=len(CHARS)
        ),
        "embedded_words": Spec(
            cell,
            6,
            3,
            num_layers=3,
            reset_after=reset_after,
            vocab=WORDS,
            tokenizer="word",
            embedding=True,
            output_size=len(WORDS),
            meta=meta,
            unk="<unk>",
        ),
    }


def sample_input(net: Network):
    if net.input == "text":
        return "the cat sat on the mat" if net.spec.tokenizer == "word" else "ab (cd): é"
    return np.random.default_rng(1).normal(size=(6, net.spec.input_size)).astype(np.float32)


@pytest.mark.parametrize("kind", ["vectors", "onehot_chars", "embedded_words"])
@pytest.mark.parametrize(("cell", "reset_after"), CELLS, ids=CELL_IDS)
def test_round_trip_is_exact(tmp_path, cell, reset_after, kind):
    spec = specs_for(cell, reset_after)[kind]
    net = Network(spec, random_params(spec, seed=len(kind)))
    path = model.save(net, tmp_path / "m.safetensors")
    back = model.load(path)
    assert back.spec == net.spec
    assert back.spec.vocab == net.spec.vocab and back.spec.meta == net.spec.meta
    assert back.dtype == net.dtype == np.float32
    assert sorted(back.params) == sorted(net.params)
    for name, a in net.params.items():
        assert back.params[name].dtype == a.dtype, name
        assert np.array_equal(back.params[name], a), name
    x = sample_input(net)
    t0, t1 = net.trace(x), back.trace(x)
    assert t1.tokens == t0.tokens
    for g0, g1 in zip(t0.layers, t1.layers, strict=True):
        for gate in net.gates:
            assert np.array_equal(g0[gate], g1[gate]), gate
    if spec.output_size is not None:
        assert np.array_equal(t0.probs, t1.probs)


def test_round_trip_float64_network(tmp_path):
    spec = Spec("peephole", 3, 4, num_layers=2, output_size=2)
    rng = np.random.default_rng(2)
    params = {n: rng.normal(size=spec.expected_shape(n)) for n in spec.param_names()}  # float64, not float32-exact
    net = Network(spec, params, np.float64)
    path = model.save(net, tmp_path / "m64.safetensors")
    assert all(a.dtype == np.float64 for a in st_load(str(path)).values())
    back = model.load(path)
    assert back.dtype == np.float64
    for name in spec.param_names():
        assert back.params[name].dtype == np.float64
        assert np.array_equal(back.params[name], params[name]), name
    x = rng.normal(size=(5, 3))
    assert back.trace(x).layers[1]["h"].dtype == np.float64
    assert np.array_equal(back.trace(x).layers[1]["h"], net.trace(x).layers[1]["h"])


def test_save_returns_path_and_file_carries_versioned_metadata(tmp_path):
    spec = Spec("gru", 2, 3)
    net = Network(spec, random_params(spec))
    path = model.save(net, str(tmp_path / "g.safetensors"))
    assert path == tmp_path / "g.safetensors" and path.is_file()
    _, metadata = model.formats.read_safetensors(path)
    meta = json.loads(metadata["gatescope"])
    assert meta["version"] == native.VERSION
    assert meta["spec"]["cell"] == "gru"
    assert native.load(path).spec == spec


def test_native_file_ignores_a_vocab_json_beside_it(tmp_path):
    """A native file is self-contained: an unrelated vocab.json in the same folder
    (a Hugging Face tokenizer's is a {token: id} object) must not stop it loading."""
    spec = Spec("lstm", len(CHARS), 4, vocab=CHARS, tokenizer="char")
    net = Network(spec, random_params(spec))
    model.save(net, tmp_path / "model.safetensors")
    (tmp_path / "vocab.json").write_text(json.dumps({"hello": 0, "world": 1}))
    back = model.load(tmp_path)
    assert back.vocab == CHARS


# --------------------------------------------------------------------------------------------
# Bad files: always a FormatError (a ValueError) whose message names the problem
# --------------------------------------------------------------------------------------------
@pytest.fixture
def saved(tmp_path):
    """A valid native file and the pieces to rewrite it."""
    spec = Spec("lstm", 3, 4, num_layers=2, vocab=None, output_size=None)
    net = Network(spec, random_params(spec))
    path = model.save(net, tmp_path / "m.safetensors")
    tensors = st_load(str(path))
    meta = {"version": native.VERSION, "spec": spec.to_dict()}
    return path, tensors, meta


def rewrite(path, tensors, metadata_text):
    st_save(tensors, str(path), metadata={"gatescope": metadata_text})


def expect_format_error(path, *fragments):
    with pytest.raises(FormatError) as info:
        model.load(path)
    assert isinstance(info.value, ValueError)
    msg = str(info.value)
    for frag in fragments:
        assert frag in msg, f"{frag!r} not in {msg!r}"
    return msg


def test_format_error_is_a_value_error():
    assert issubclass(FormatError, ValueError)


@pytest.mark.parametrize("text", ["{not json", "", "[1, 2", '{"version": 1, "spec": '])
def test_corrupted_json_metadata(saved, text):
    path, tensors, _ = saved
    rewrite(path, tensors, text)
    expect_format_error(path, "m.safetensors", "metadata is malformed")


@pytest.mark.parametrize("text", ["[1, 2, 3]", "42", '"a string"', "null"])
def test_metadata_not_an_object(saved, text):
    path, tensors, _ = saved
    rewrite(path, tensors, text)
    expect_format_error(path, "metadata is malformed")


@pytest.mark.parametrize("version", [2, 0, "1", None])
def test_metadata_of_a_wrong_version(saved, version):
    path, tensors, meta = saved
    rewrite(path, tensors, json.dumps({**meta, "version": version}))
    expect_format_error(path, "version", repr(version))


def test_metadata_without_version(saved):
    path, tensors, meta = saved
    rewrite(path, tensors, json.dumps({"spec": meta["spec"]}))
    expect_format_error(path, "version")


def test_metadata_without_spec(saved):
    path, tensors, meta = saved
    rewrite(path, tensors, json.dumps({"version": meta["version"]}))
    expect_format_error(path, "metadata is malformed", "spec")


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"colour": "blue"}, "colour"),  # an unknown setting
        ({"cell": "lstmx"}, "lstmx"),
        ({"hidden_size": 0}, "hidden_size"),
        ({"hidden_size": "4"}, "hidden_size"),
        ({"num_layers": 2.0}, "num_layers"),
    ],
)
def test_metadata_with_invalid_settings(saved, change, fragment):
    path, tensors, meta = saved
    rewrite(path, tensors, json.dumps({**meta, "spec": {**meta["spec"], **change}}))
    expect_format_error(path, "m.safetensors", fragment)


@pytest.mark.parametrize(
    "change",
    [
        {"cell": ["lstm"]},  # unhashable where a name belongs
        {"cell": {"kind": "lstm"}},
        {"vocab": 5, "tokenizer": "char"},  # a number where the token list belongs
        {"vocab": ["a", "b", "c"], "tokenizer": "char", "unk": ["<unk>"]},
        {"vocab": ["a", "b", "c"], "tokenizer": ["char"]},
    ],
    ids=["cell-list", "cell-dict", "vocab-int", "unk-list", "tokenizer-list"],
)
def test_metadata_with_wrongly_typed_settings_is_a_format_error(saved, change):
    """Well-formed JSON with values of the wrong type: still a FormatError, never a TypeError."""
    path, tensors, meta = saved
    rewrite(path, tensors, json.dumps({**meta, "spec": {**meta["spec"], **change}}))
    expect_format_error(path, "m.safetensors")


def test_missing_weight(saved):
    path, tensors, meta = saved
    del tensors["layers.1.U_o"]
    rewrite(path, tensors, json.dumps(meta))
    expect_format_error(path, "m.safetensors", "missing", "layers.1.U_o")


def test_unexpected_weight(saved):
    path, tensors, meta = saved
    tensors["layers.2.W_f"] = np.zeros((4, 4), np.float32)
    rewrite(path, tensors, json.dumps(meta))
    expect_format_error(path, "unexpected", "layers.2.W_f")


def test_weight_of_the_wrong_shape(saved):
    path, tensors, meta = saved
    tensors["layers.0.W_c"] = np.zeros((4, 3), np.float32)  # transposed: expected (3, 4)
    rewrite(path, tensors, json.dumps(meta))
    expect_format_error(path, "layers.0.W_c", "(4, 3)", "(3, 4)")


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_weights(saved, bad):
    path, tensors, meta = saved
    tensors["layers.1.b_i"] = tensors["layers.1.b_i"].copy()
    tensors["layers.1.b_i"][2] = bad
    rewrite(path, tensors, json.dumps(meta))
    expect_format_error(path, "layers.1.b_i", "NaN")


def test_integer_weights(saved):
    path, tensors, meta = saved
    tensors["layers.0.U_f"] = np.ones((4, 4), np.int32)
    rewrite(path, tensors, json.dumps(meta))
    expect_format_error(path, "layers.0.U_f", "int32")


def test_bfloat16_weights_load_as_their_float32_values(saved):
    """A native file whose weights are bfloat16 (as PyTorch often saves): read exactly, as float32."""
    path, tensors, meta = saved
    header = {"__metadata__": {"gatescope": json.dumps(meta)}}
    offset, blobs, expected = 0, [], {}
    for name, a in tensors.items():
        bits = (a.astype("<f4").view("<u4") >> 16).astype("<u2")  # bf16: the upper half of a float32
        expected[name] = (bits.astype("<u4") << 16).view("<f4")
        header[name] = {"dtype": "BF16", "shape": list(a.shape), "data_offsets": [offset, offset + bits.nbytes]}
        blobs.append(bits.tobytes())
        offset += bits.nbytes
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + b"".join(blobs))
    net = model.load(path)
    assert net.dtype == np.float32
    for name, want in expected.items():
        assert net.params[name].dtype == np.float32
        assert np.array_equal(net.params[name], want), name
        assert not np.array_equal(want, tensors[name]), "bf16 rounding should be visible"


@pytest.mark.parametrize("keep", [0.5, 0.9, 30, 9, 3, 0])
def test_truncated_file(saved, keep):
    path, _, _ = saved
    data = path.read_bytes()
    n = int(len(data) * keep) if isinstance(keep, float) else keep
    path.write_bytes(data[:n])
    expect_format_error(path, "m.safetensors")


@pytest.mark.parametrize("seed", range(8))
def test_random_bytes_named_safetensors(tmp_path, seed):
    rng = np.random.default_rng(seed)
    path = tmp_path / "noise.safetensors"
    path.write_bytes(rng.integers(0, 256, int(rng.integers(1, 5000)), dtype=np.uint8).tobytes())
    expect_format_error(path, "noise.safetensors")


def test_random_bytes_behind_a_plausible_header_length(tmp_path):
    """Random bytes that pass the sniffing (a length that fits, then '{'): safetensors' parser must refuse them."""
    rng = np.random.default_rng(9)
    body = b"{" + rng.integers(0, 256, 400, dtype=np.uint8).tobytes()
    path = tmp_path / "noise.safetensors"
    path.write_bytes(struct.pack("<Q", 200) + body)
    expect_format_error(path, "noise.safetensors", "safetensors")


def test_safetensors_without_gatescope_metadata_through_native_load(saved):
    path, tensors, _ = saved
    st_save(tensors, str(path))
    with pytest.raises(FormatError, match="no gatescope metadata"):
        native.load(path)
    # and through model.load: neither a gatescope model nor a PyTorch state_dict
    expect_format_error(path, "neither a gatescope model nor a PyTorch")


def test_text_file_named_safetensors(tmp_path):
    path = tmp_path / "notes.safetensors"
    path.write_text("these are not weights\n" * 10)
    expect_format_error(path, "notes.safetensors", "not a safetensors file")
