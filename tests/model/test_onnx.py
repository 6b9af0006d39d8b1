"""The ONNX importer, checked against independent references.

Fixtures come from tests/fixtures/make_onnx.py: models built with onnx.helper, whose
reference outputs were computed by onnx.reference.ReferenceEvaluator (ONNX's own
implementation of LSTM, GRU and RNN), and a PyTorch model exported by torch.onnx.export,
whose reference outputs were computed by PyTorch. The models the importer must refuse
are built here, in tmp_path.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import model
from model import FormatError

FIXTURES = Path(__file__).parents[1] / "fixtures" / "onnx"
TOL = 1e-5  # max abs error against the reference, float32 throughout

#: fixture -> (reference file, cell, reset_after, layers)
CASES = {
    "lstm": ("lstm", "lstm", False, 1),
    "peephole": ("peephole", "peephole", False, 1),
    "gru": ("gru", "gru", False, 1),  # linear_before_reset=0
    "gru_text": ("gru_text", "gru", True, 1),  # linear_before_reset=1, embedding, Gemm head
    "rnn": ("rnn", "rnn", False, 1),  # weights in Constant nodes, layout=1
    "stack": ("stack", "gru", False, 2),  # MatMul + Add head
    "torch_lstm": ("torch_lstm", "lstm", False, 2),  # torch.onnx.export(dynamo=False)
    "torch_lstm_dynamo": ("torch_lstm", "lstm", False, 2),  # torch.onnx.export(dynamo=True)
}


def _reference(name: str) -> dict[str, np.ndarray]:
    with np.load(FIXTURES / f"{name}.npz", allow_pickle=False) as f:
        return dict(f)


@pytest.mark.parametrize("name", CASES)
def test_matches_reference(name):
    ref_name, cell, reset_after, layers = CASES[name]
    ref = _reference(ref_name)
    vocab = [str(t) for t in ref["vocab"]] if "vocab" in ref else None
    net = model.load(FIXTURES / f"{name}.onnx", vocab=vocab)
    assert (net.cell, net.spec.reset_after, net.num_layers) == (cell, reset_after, layers)
    tr = net.trace(str(ref["text"]) if vocab else ref["x"])
    checked = []
    for key, want in ref.items():
        what, _, k = key.partition(".")
        if what == "h":  # hidden states of layer k at every step (ONNX's Y)
            got = tr.layers[int(k)]["h"]
        elif what == "h_n":  # final hidden state (ONNX's Y_h)
            got = tr.layers[int(k)]["h"][-1]
        elif what == "c_n":  # final cell state (ONNX's Y_c)
            got = tr.layers[int(k)]["c"][-1]
        elif what == "probs":
            got = tr.probs
        else:
            continue
        assert got is not None and got.shape == want.shape, key
        err = np.abs(got - want).max()
        assert err <= TOL, f"{name}: {key} differs from the reference by {err:.2e}"
        checked.append(key)
    assert f"h.{layers - 1}" in checked and f"h_n.{layers - 1}" in checked
    assert ("probs" in checked) == (net.spec.output_size is not None)


#: The stacks torch.onnx.export wrote (tests/fixtures/make_onnx.py STACKS x EXPORTS): fixture -> (cell, layers).
STACKS = {
    f"torch_{cell}{layers}_{form}": (cell, layers)
    for cell, layers in (("lstm", 1), ("lstm", 2), ("lstm", 3), ("gru", 2), ("rnn", 2), ("bilstm", 2), ("bigru", 1))
    for form in ("ts", "ts_dynamic", "dynamo", "dynamo_dynamic")
    if not (cell == "rnn" and form.startswith("dynamo"))  # the dynamo exporter unrolls nn.RNN: no RNN node
}


@pytest.mark.parametrize("name", STACKS)
def test_pytorch_exports_match_pytorch(name):
    """Every layer's h and the head's probabilities, against PyTorch, whichever exporter wrote the file."""
    cell, layers = STACKS[name]
    ref = _reference(name.split("_")[0] + "_" + name.split("_")[1])
    net = model.load(FIXTURES / f"{name}.onnx", vocab=[str(t) for t in ref["vocab"]])
    direction = "bidirectional" if cell.startswith("bi") else "forward"
    cell = cell.removeprefix("bi")
    assert (net.cell, net.num_layers, net.spec.reset_after, net.direction) == (cell, layers, cell == "gru", direction)
    tr = net.trace(str(ref["text"]))
    assert tr.probs is not None
    errs = {"probs": np.abs(tr.probs - ref["probs"]).max()}
    errs |= {f"h.{k}": np.abs(tr.layers[k]["h"] - ref[f"h.{k}"]).max() for k in range(layers)}
    assert max(errs.values()) <= TOL, f"{name}: {errs}"


@pytest.mark.parametrize("name", [n for n in STACKS if n.endswith("_dynamic")])
def test_dynamic_exports_hold_the_constant_subgraphs(name):
    """The _dynamic files are what the test above is for: weights the exporter left as Slice/Concat over the
    initializers, and a zero state whose shape is read from the input (so only evaluation reads them)."""
    m = onnx.load(FIXTURES / f"{name}.onnx")
    inits = {t.name for t in m.graph.initializer}
    ops = {n.op_type for n in m.graph.node}
    rec = [n for n in m.graph.node if n.op_type in ("LSTM", "GRU", "RNN")]
    assert all(n.input[1] not in inits and n.input[2] not in inits for n in rec)  # W, R computed
    assert all(len(n.input) > 5 and n.input[5] not in inits for n in rec)  # initial_h computed
    assert {"Shape", "Slice", "Concat"} <= ops and ops & {"ConstantOfShape", "Expand"}


def test_text_model_reads_unknown_tokens_as_unk():
    ref = _reference("torch_lstm")
    net = model.load(FIXTURES / "torch_lstm.onnx", vocab=[str(t) for t in ref["vocab"]])
    tr = net.trace(str(ref["text"]))
    assert tr.unknown == [i for i, ch in enumerate(str(ref["text"])) if ch == " "]
    assert tr.probs is not None and tr.probs.shape == (len(str(ref["text"])), len(ref["vocab"]))


def test_gru_z_is_colahs_share_of_the_candidate():
    """gatescope's z is ONNX's 1 - z: at step 0 (h_prev = 0), ONNX's z = σ(W_z x + Wb_z + Rb_z)."""
    m = onnx.load(FIXTURES / "gru.onnx")
    w = {t.name: numpy_helper.to_array(t) for t in m.graph.initializer}
    x = _reference("gru")["x"]
    H = w["R0"].shape[2]
    a = w["W0"][0, :H] @ x[0] + w["B0"][0, :H] + w["B0"][0, 3 * H : 4 * H]  # (H,) ONNX's z pre-activation
    onnx_z = 1 / (1 + np.exp(-a))
    tr = model.load(FIXTURES / "gru.onnx").trace(x)
    assert np.abs(tr.layers[0]["z"][0] - (1 - onnx_z)).max() <= TOL


def test_text_model_needs_its_vocabulary():
    with pytest.raises(FormatError, match="embedding of 11 tokens"):
        model.load(FIXTURES / "torch_lstm.onnx")
    with pytest.raises(FormatError, match="lists 3 tokens, the embedding has 11 rows"):
        model.load(FIXTURES / "torch_lstm.onnx", vocab=list("abc"))


# Refusals ----------------------------------------------------------------------------


def _vi(name, shape=None, dtype=TensorProto.FLOAT):
    return helper.make_tensor_value_info(name, dtype, shape)


def _recurrent(op="LSTM", H=3, D=2, dirs=1, w_input=False, **attrs) -> onnx.ModelProto:
    """x (5, 1, D) -> one ``op`` node with random constant W and R."""
    G = {"LSTM": 4, "GRU": 3, "RNN": 1}[op]
    rng = np.random.default_rng(0)
    W = numpy_helper.from_array(rng.normal(size=(dirs, G * H, D)).astype(np.float32), "W")
    R = numpy_helper.from_array(rng.normal(size=(dirs, G * H, H)).astype(np.float32), "R")
    inputs, inits = [_vi("x", [5, 1, D])], [W, R]
    if w_input:
        inputs.append(_vi("W", [dirs, G * H, D]))
        inits = [R]
    node = helper.make_node(op, ["x", "W", "R"], ["Y", "Y_h"], name="layer0", **{"hidden_size": H, **attrs})
    graph = helper.make_graph([node], "bad", inputs, [_vi("Y"), _vi("Y_h")], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])


def _save(m: onnx.ModelProto, tmp_path: Path, name: str = "bad.onnx") -> Path:
    path = tmp_path / name
    onnx.save_model(m, path)
    return path


def test_minimal_model_loads(tmp_path):
    """The base of the refusal cases is itself fine: each refusal comes from its one change."""
    net = model.load(_save(_recurrent(), tmp_path))
    assert (net.cell, net.hidden_size, net.spec.input_size) == ("lstm", 3, 2)


@pytest.mark.parametrize(
    "op, attrs, message",
    [
        ("LSTM", {"direction": "sideways"}, "direction='sideways'; ONNX defines forward, reverse, bidirectional"),
        ("GRU", {"direction": "bidirectional"}, r"W and R have shapes \(1, 9, 2\) and \(1, 9, 3\), expected \(2, G\*H"),
        ("RNN", {"direction": "bidirectional", "dirs": 2, "activations": ["Tanh"]}, "activations Tanh; "),
        ("LSTM", {"activations": ["Sigmoid", "Tanh", "Relu"]}, "activations Sigmoid, Tanh, Relu"),
        ("GRU", {"activations": ["HardSigmoid", "Tanh"]}, "activations HardSigmoid, Tanh"),
        ("RNN", {"activations": ["Relu"]}, "compute only Tanh"),
        ("LSTM", {"clip": 3.0}, "clips its gate inputs at 3"),
        ("LSTM", {"input_forget": 1}, "input_forget=1"),
        ("GRU", {"hidden_size": 4}, "hidden_size=4, but its R of shape"),
        ("LSTM", {"w_input": True}, r"its W \('W'\) is a graph input, not a constant"),
    ],
)
def test_refuses_what_the_cells_cannot_run(tmp_path, op, attrs, message):
    path = _save(_recurrent(op, **attrs), tmp_path)
    with pytest.raises(FormatError, match=message) as e:
        model.load(path)
    assert "layer0" in str(e.value) and "bad.onnx" in str(e.value)


def test_head_on_the_final_state_runs_at_every_step(tmp_path):
    """A classifier on Y_h: gatescope applies it at every step; the last step is the file's own output."""
    from onnx.reference import ReferenceEvaluator

    m = _recurrent()
    W = np.random.default_rng(1).normal(size=(3, 4)).astype(np.float32)
    m.graph.initializer.extend([numpy_helper.from_array(W, "head.W"), numpy_helper.from_array(np.array([-1, 3]), "s")])
    m.graph.node.extend(
        [
            helper.make_node("Reshape", ["Y_h", "s"], ["h_n"]),
            helper.make_node("MatMul", ["h_n", "head.W"], ["logits"]),
            helper.make_node("Softmax", ["logits"], ["probs"], axis=-1),
        ]
    )
    m.graph.output.append(_vi("probs"))
    x = np.random.default_rng(2).normal(size=(5, 2)).astype(np.float32)
    (want,) = ReferenceEvaluator(m).run(["probs"], {"x": x[:, None]})
    net = model.load(_save(m, tmp_path))
    tr = net.trace(x)
    assert "final hidden state" in net.spec.meta["source"]["head"]
    assert tr.probs is not None and tr.probs.shape == (5, 4)
    assert np.abs(tr.probs[-1] - want[0]).max() <= TOL


def test_all_zero_peepholes_make_a_plain_lstm(tmp_path):
    m = _recurrent()
    m.graph.initializer.append(numpy_helper.from_array(np.zeros((1, 9), np.float32), "P"))
    m.graph.node[0].input.extend(["", "", "", "", "P"])
    assert model.load(_save(m, tmp_path)).cell == "lstm"


def test_refuses_nan_weights_naming_the_tensor(tmp_path):
    m = _recurrent()
    R = numpy_helper.to_array(m.graph.initializer[1]).copy()
    R[0, 2, 1] = np.nan
    m.graph.initializer[1].CopyFrom(numpy_helper.from_array(R, "R"))
    with pytest.raises(FormatError, match=r"bad.onnx: weight R \(R of LSTM node 'layer0'\) holds NaN"):
        model.load(_save(m, tmp_path))


def test_weights_computed_from_constants_are_evaluated(tmp_path):
    """W = W_half + W_half over initializers: evaluated, the same network as one that stores W."""
    m = _recurrent()
    W = numpy_helper.to_array(m.graph.initializer[0])
    m.graph.initializer[0].CopyFrom(numpy_helper.from_array(W / 2, "W_half"))
    m.graph.node.insert(0, helper.make_node("Add", ["W_half", "W_half"], ["W"], name="double"))
    x = np.random.default_rng(3).normal(size=(5, 2)).astype(np.float32)
    got = model.load(_save(m, tmp_path)).trace(x).layers[0]["h"]
    want = model.load(_save(_recurrent(), tmp_path, "plain.onnx")).trace(x).layers[0]["h"]
    assert np.abs(got - want).max() <= 1e-6


def test_refuses_weights_computed_from_the_input(tmp_path):
    """A W that changes with the input: the message names the input and the node, and suggests nothing."""
    m = _recurrent()
    m.graph.initializer[0].name = "W0"
    m.graph.node.insert(0, helper.make_node("ReduceMean", ["x"], ["x_mean"], name="mean", keepdims=1))
    m.graph.node.insert(1, helper.make_node("Mul", ["W0", "x_mean"], ["W"], name="scale"))
    with pytest.raises(FormatError) as e:
        model.load(_save(m, tmp_path))
    msg = str(e.value)
    assert "its W ('W') is not a constant: it depends on the graph input 'x' (via ReduceMean node 'mean')" in msg
    assert "do_constant_folding" not in msg and "export" not in msg


def test_refuses_weights_made_by_an_op_it_does_not_evaluate(tmp_path):
    m = _recurrent()
    m.graph.initializer[0].name = "W0"
    m.graph.node.insert(0, helper.make_node("Sin", ["W0"], ["W"], name="wave"))
    with pytest.raises(
        FormatError,
        match=r"its W \('W'\) is not a constant: it is computed by an op gatescope does "
        r"not evaluate \(Sin node 'wave'\)",
    ):
        model.load(_save(m, tmp_path))


def test_refuses_constants_past_the_size_limit(tmp_path):
    """W = Reshape(Slice(ConstantOfShape([2**30]))): 4 GB from a few bytes, refused before it is allocated."""
    m = _recurrent()
    del m.graph.initializer[0]  # W (1, 12, 2) is now made from a ConstantOfShape
    ints = {"big": [1 << 30], "s0": [0], "s1": [24], "w_shape": [1, 12, 2]}
    m.graph.initializer.extend(numpy_helper.from_array(np.array(v, np.int64), k) for k, v in ints.items())
    one = numpy_helper.from_array(np.ones(1, np.float32))
    m.graph.node.insert(0, helper.make_node("ConstantOfShape", ["big"], ["huge"], name="bomb", value=one))
    m.graph.node.insert(1, helper.make_node("Slice", ["huge", "s0", "s1"], ["flat"]))
    m.graph.node.insert(2, helper.make_node("Reshape", ["flat", "w_shape"], ["W"]))
    with pytest.raises(
        FormatError,
        match=r"ConstantOfShape node 'bomb' makes a constant of shape \(1073741824,\): "
        "the graph's constants would take more than 1024 MB",
    ):
        model.load(_save(m, tmp_path))
    ints["big"] = [24]  # the same graph at a sane size loads
    m.graph.initializer[-4].CopyFrom(numpy_helper.from_array(np.array([24], np.int64), "big"))
    assert model.load(_save(m, tmp_path)).hidden_size == 3


def test_refuses_a_constant_cycle(tmp_path):
    m = _recurrent()
    m.graph.initializer[0].name = "W0"
    m.graph.node.insert(0, helper.make_node("Add", ["W0", "loop"], ["W"], name="a"))
    m.graph.node.insert(1, helper.make_node("Identity", ["W"], ["loop"], name="b"))
    with pytest.raises(FormatError, match="is not a constant: it is part of a cycle in the graph"):
        model.load(_save(m, tmp_path))


def test_refuses_a_graph_without_recurrent_node(tmp_path):
    w = numpy_helper.from_array(np.ones((2, 3), np.float32), "w")
    node = helper.make_node("MatMul", ["x", "w"], ["y"])
    graph = helper.make_graph([node], "mlp", [_vi("x", [5, 2])], [_vi("y")], [w])
    with pytest.raises(FormatError, match="no LSTM, GRU or RNN node"):
        model.load(_save(helper.make_model(graph), tmp_path))


def test_refuses_a_nonzero_initial_state(tmp_path):
    m = _recurrent()
    m.graph.initializer.append(numpy_helper.from_array(np.full((1, 1, 3), 0.5, np.float32), "h0"))
    m.graph.node[0].input.extend(["", "", "h0"])
    with pytest.raises(
        FormatError,
        match=r"its initial_h \('h0'\) is a constant that is not zero \(largest "
        r"\|value\| 0.5\); .* give it to Network.trace\(x, state=...\)",
    ):
        model.load(_save(m, tmp_path))


def test_zero_state_shaped_by_the_input_is_zero(tmp_path):
    """As the exporters write it for a dynamic batch: ConstantOfShape(Concat(1, Shape(x)[1], H)) then Slice."""
    m = _recurrent()
    for dim, param in zip(m.graph.input[0].type.tensor_type.shape.dim, ("T", "B")):
        dim.dim_param = param  # a dynamic sequence and batch axis, as exported with dynamic_axes
    ints = {"one": [1], "b0": [1], "b1": [2], "H": [3], "s0": [0], "s1": [1]}
    m.graph.initializer.extend(numpy_helper.from_array(np.array(v, np.int64), k) for k, v in ints.items())
    m.graph.node.insert(0, helper.make_node("Shape", ["x"], ["xs"]))
    m.graph.node.insert(1, helper.make_node("Slice", ["xs", "b0", "b1"], ["batch"]))
    m.graph.node.insert(2, helper.make_node("Concat", ["one", "batch", "H"], ["hs"], axis=0))
    m.graph.node.insert(3, helper.make_node("ConstantOfShape", ["hs"], ["zeros"]))
    m.graph.node.insert(4, helper.make_node("Slice", ["zeros", "s0", "s1"], ["h0"]))
    m.graph.node[5].input.extend(["", "", "h0", "h0"])
    x = np.random.default_rng(4).normal(size=(5, 2)).astype(np.float32)
    got = model.load(_save(m, tmp_path)).trace(x).layers[0]["h"]
    want = model.load(_save(_recurrent(), tmp_path, "plain.onnx")).trace(x).layers[0]["h"]
    assert np.array_equal(got, want)
    m.graph.node[3].attribute.append(helper.make_attribute("value", numpy_helper.from_array(np.ones(1, np.float32))))
    with pytest.raises(
        FormatError,
        match=r"its initial_h \('h0'\) is not provably zero: it depends on the graph "
        r"input 'x' \(via Shape node #0\)",
    ):
        model.load(_save(m, tmp_path))


def test_refuses_layers_of_mixed_directions(tmp_path):
    m = _recurrent("GRU", H=2, D=2)
    m.graph.node.append(
        helper.make_node("GRU", ["Y", "W", "R"], ["Y2"], name="layer1", hidden_size=2, direction="reverse")
    )
    with pytest.raises(FormatError, match="layer1' .layer 1. runs direction='reverse', layer 0 runs 'forward'"):
        model.load(_save(m, tmp_path))


def test_refuses_layers_that_do_not_chain(tmp_path):
    m = _recurrent()
    m.graph.node.append(helper.make_node("LSTM", ["x", "W", "R"], ["Y2"], name="layer1", hidden_size=3))
    with pytest.raises(FormatError, match="layer1' reads its input from 'x', not from the Y output"):
        model.load(_save(m, tmp_path))


def test_refuses_external_data(tmp_path):
    path = tmp_path / "big.onnx"
    onnx.save_model(_recurrent(), path, save_as_external_data=True, location="big.onnx.data", size_threshold=0)
    assert (tmp_path / "big.onnx.data").is_file()
    with pytest.raises(FormatError, match="external data file.*save_as_external_data=False"):
        model.load(path)


@pytest.mark.parametrize("fraction", [0.05, 0.3, 0.5, 0.8, 0.99])
def test_refuses_a_truncated_file(tmp_path, fraction):
    data = (FIXTURES / "torch_lstm.onnx").read_bytes()
    path = tmp_path / "cut.onnx"
    path.write_bytes(data[: int(len(data) * fraction)])
    with pytest.raises(FormatError, match="cut.onnx (is not a valid ONNX file|.*truncated)"):
        model.load(path, vocab=list("abcdefghij") + ["<unk>"])


@pytest.mark.parametrize("content", [b"", b"not an onnx model\n", np.random.default_rng(7).bytes(3000)])
def test_refuses_what_is_not_onnx(tmp_path, content):
    path = tmp_path / "junk.onnx"
    path.write_bytes(content)
    with pytest.raises(FormatError, match="junk.onnx is not a valid ONNX file"):
        model.load(path)


@pytest.mark.parametrize(
    "fixture, ref",
    [
        ("torch_lstm_dynamo", "torch_lstm"),
        ("torch_lstm2_ts_dynamic", "torch_lstm2"),
        ("torch_bilstm2_dynamo_dynamic", "torch_bilstm2"),
    ],
)
def test_damaged_files_give_a_message_never_a_traceback(tmp_path, fixture, ref):
    """Flipped bytes, including in the constant subgraphs the _dynamic files make gatescope evaluate."""
    data = bytearray((FIXTURES / f"{fixture}.onnx").read_bytes())
    vocab = [str(t) for t in _reference(ref)["vocab"]]
    model.load(FIXTURES / f"{fixture}.onnx", vocab=vocab)  # undamaged, it loads
    rng = np.random.default_rng(11)
    path = tmp_path / "damaged.onnx"
    outcomes = set()
    for pos in rng.integers(0, len(data), 60):
        damaged = data.copy()
        damaged[pos] ^= 0xFF
        path.write_bytes(damaged)
        try:
            model.load(path, vocab=vocab)
            outcomes.add("loaded")
        except FormatError:
            outcomes.add("refused")
    assert "refused" in outcomes


def test_without_the_onnx_package_says_what_to_install(tmp_path, monkeypatch):
    path = _save(_recurrent(), tmp_path)
    monkeypatch.setitem(sys.modules, "onnx", None)  # import onnx now raises ImportError
    with pytest.raises(FormatError, match=r"pip install 'gatescope\[onnx\]'"):
        model.load(path)
