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
