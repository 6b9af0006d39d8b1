"""ONNX's own test cases for its LSTM, GRU and RNN operators, through gatescope's importer.

The cases are ONNX's: ``onnx.backend.test.case.node.lstm`` / ``gru`` / ``rnn`` (the code the
test_lstm_* / test_gru_* / test_rnn_seq_length / test_simple_rnn_* data of ONNX's backend tests
is written from; the wheel ships that code, not the data). Each case is one node whose inputs
(X, W, R, B, sequence_lens, initial_h, initial_c, P) are graph inputs, with the expected outputs
(Y and/or Y_h, Y_c) computed by ONNX's NumPy reference. gatescope reads weights stored in a file,
so the test stores every input but X as an initializer, then traces each batch row of X (gatescope
runs one sequence at a time) and compares the final state, and every step where the case has Y.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

import model

TOL = 1e-5  # max abs error against ONNX's expected outputs
OPS = ("LSTM", "GRU", "RNN")


def _cases() -> dict[str, object]:
    """ONNX's test cases for LSTM, GRU and RNN by name (importing a case module runs its exports)."""
    import onnx.backend.test.case.node as node

    for op in OPS:
        importlib.import_module(f"onnx.backend.test.case.node.{op.lower()}")
    return {c.name: c for c in node._NodeTestCases if c.model.graph.node[0].op_type in OPS}


CASES = _cases()


def test_every_case_is_here():
    """18 cases: 6 an op (forward, with bias, peepholes or seq_length, batchwise, reverse, bidirectional)."""
    assert len(CASES) == 18, sorted(CASES)
    directions = {
        n: onnx.helper.get_attribute_value(a).decode()
        for n, c in CASES.items()
        for a in c.model.graph.node[0].attribute
        if a.name == "direction"
    }
    assert sorted(directions.values()) == ["bidirectional"] * 3 + ["reverse"] * 3


def _as_file(case, tmp_path: Path) -> tuple[Path, np.ndarray, dict[str, np.ndarray], int]:
    """The case's model with every input but X stored as an initializer; X, the expected outputs, layout."""
    m = onnx.ModelProto()
    m.CopyFrom(case.model)
    inputs, outputs = case.data_sets[0]
    names = [i.name for i in m.graph.input]
    values = dict(zip(names, inputs, strict=True))
    keep = [vi for vi in m.graph.input if vi.name == "X"]
    del m.graph.input[:]
    m.graph.input.extend(keep)
    m.graph.initializer.extend(numpy_helper.from_array(np.asarray(v), n) for n, v in values.items() if n != "X")
    path = tmp_path / f"{case.name}.onnx"
    onnx.save_model(m, path)
    want = dict(zip([o.name for o in m.graph.output], outputs, strict=True))
    layout = next((a.i for a in m.graph.node[0].attribute if a.name == "layout"), 0)
    return path, values["X"], want, layout


@pytest.mark.parametrize("name", sorted(CASES))
def test_case_matches_onnx(name, tmp_path):
    path, X, want, layout = _as_file(CASES[name], tmp_path)
    net = model.load(path)
    H = net.hidden_size
    rows = X if layout else X.transpose(1, 0, 2)  # (B, T, D): one sequence a batch row
    # ONNX's outputs, batch-major: Y (B, T, n, H), Y_h and Y_c (B, n, H)
    Y = want.get("Y")
    Y = None if Y is None else (Y if layout else Y.transpose(2, 0, 1, 3))
    finals = {k: (want[k] if layout else want[k].transpose(1, 0, 2)) for k in ("Y_h", "Y_c") if k in want}
    errs = []
    for b, x in enumerate(rows):
        tr = net.trace(x)
        h = tr.layers[0]["h"]  # (T, n*H): forward units, then backward ones
        c = tr.layers[0].get("c")
        for d, way in enumerate(net.spec.directions):
            last = -1 if way == "forward" else 0  # a backward direction ends at step 0
            units = slice(d * H, (d + 1) * H)
            if "Y_h" in finals:
                errs.append(np.abs(h[last, units] - finals["Y_h"][b, d]).max())
            if "Y_c" in finals:
                assert c is not None
                errs.append(np.abs(c[last, units] - finals["Y_c"][b, d]).max())
            if Y is not None:
                errs.append(np.abs(h[:, units] - Y[b, :, d]).max())
    assert errs and max(errs) <= TOL, f"{name}: max error {max(errs):.2e}"
