"""gatescope trace: a trace exported as JSON, CSV and NPZ, each equal to the core's numbers."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

import model
from app.cli import main

TEXT = "(()())"


@pytest.fixture(scope="module")
def core():
    return model.load("dyck").trace(TEXT)


def test_json_export_equals_the_core(tmp_path, core):
    assert main(["trace", "dyck", TEXT, "--out", str(tmp_path / "t.json")]) == 0
    body = json.loads((tmp_path / "t.json").read_text())
    assert body["tokens"] == list(TEXT)
    assert np.array_equal(np.array(body["layers"][0]["c"], np.float32), core.layers[0]["c"])


def test_csv_export_has_a_row_per_step_and_unit(tmp_path, core):
    assert main(["trace", "dyck", TEXT, "--out", str(tmp_path / "t.csv")]) == 0
    rows = list(csv.DictReader((tmp_path / "t.csv").open()))
    assert len(rows) == len(TEXT) * 8
    row = next(r for r in rows if r["t"] == "3" and r["unit"] == "4")
    assert row["token"] == TEXT[3]
    assert np.float32(float(row["c"])) == core.layers[0]["c"][3, 4]


def test_npz_export_loads_without_pickle(tmp_path, core):
    assert main(["trace", "dyck", TEXT, "--out", str(tmp_path / "t.npz")]) == 0
    with np.load(tmp_path / "t.npz", allow_pickle=False) as z:
        assert list(z["tokens"]) == list(TEXT)
        assert np.array_equal(z["layer0/f"], core.layers[0]["f"])
        assert z["probs"].shape == (len(TEXT), 3)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["trace", "dyck", "(x"], "'x' at 1"),
        (["trace", "nope", "x"], "neither a file nor a bundled model"),
        (["trace", "dyck", "()", "--out", "t.txt"], "must end in .json, .csv or .npz"),
    ],
)
def test_bad_input_is_a_message_not_a_traceback(args, message, capsys):
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_a_weight_file_with_a_tokenizer_json_traces_from_the_command_line(tmp_path):
    from pathlib import Path

    fix = Path(__file__).resolve().parents[1] / "fixtures" / "tokenizers"
    out = tmp_path / "t.json"
    args = ["trace", str(fix / "lstm_bpe.safetensors"), "The cat sat.", "--vocab", str(fix / "bpe.json")]
    assert main([*args, "--out", str(out)]) == 0
    body = json.loads(out.read_text())
    assert body["tokens"] == ["The", "Ġcat", "Ġsat", "."] and body["display"] == ["The", " cat", " sat", "."]


@pytest.fixture(scope="module")
def vector_model(tmp_path_factory):
    """A 2-feature LSTM vector model, saved in gatescope's format."""
    spec = model.Spec(cell="lstm", input_size=2, hidden_size=3)
    rng = np.random.default_rng(0)
    params = {n: rng.standard_normal(spec.expected_shape(n)).astype(np.float32) for n in spec.param_names()}
    path = tmp_path_factory.mktemp("vec") / "vec.safetensors"
    model.save(model.Network(spec, params), path)
    return path


SERIES = np.array([[0.5, -1.0], [1.5, 0.0], [2.0, 3.25]])


@pytest.mark.parametrize("kind", ["csv", "npy"])
def test_vectors_from_a_file_trace_as_the_array(tmp_path, vector_model, kind):
    src = tmp_path / f"s.{kind}"
    if kind == "csv":
        src.write_text("a;b\n" + "\n".join(f"{a};{b}" for a, b in SERIES) + "\n")
    else:
        np.save(src, SERIES)
    assert main(["trace", str(vector_model), "--vectors", str(src), "--out", str(tmp_path / "t.npz")]) == 0
    want = model.load(vector_model).trace(SERIES)
    with np.load(tmp_path / "t.npz", allow_pickle=False) as z:
        assert list(z["tokens"]) == ["0", "1", "2"]
        assert np.array_equal(z["layer0/h"], want.layers[0]["h"])


@pytest.mark.parametrize(
    ("content", "extra", "message"),
    [
        ("a,b\n1,2\n3,oops\n", [], "row 3, column 2: 'oops' is not a number"),
        ("1,2,3\n", [], "each input vector must have 2 values, got 3"),
        ("1,2\n", ["some text"], "not both"),
    ],
)
def test_a_bad_series_is_a_message(tmp_path, vector_model, content, extra, message, capsys):
    (tmp_path / "s.csv").write_text(content)
    assert main(["trace", str(vector_model), *extra, "--vectors", str(tmp_path / "s.csv")]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_vectors_for_a_text_model_are_refused(tmp_path, capsys):
    (tmp_path / "s.csv").write_text("1,2,3\n")
    assert main(["trace", "dyck", "--vectors", str(tmp_path / "s.csv")]) == 2
    assert "takes text, not vectors" in capsys.readouterr().err
