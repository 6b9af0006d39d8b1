"""A bidirectional model over the wire: every form of a trace carries the (T, 2H) arrays and says which units
are which direction; a live edit re-sends every step (the backward half changed), equal to a fresh trace."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest
from fastapi.testclient import TestClient

import model
from app.encoding import unpack
from app.main import create_app
from app.settings import Settings

VOCAB = ["<unk>", *"abc ()"]
H = 3


def bidir_net() -> model.Network:
    spec = model.Spec(
        "lstm",
        len(VOCAB),
        H,
        num_layers=2,
        vocab=VOCAB,
        tokenizer="char",
        output_size=len(VOCAB),
        direction="bidirectional",
    )
    rng = np.random.default_rng(0)
    return model.Network(spec, {n: rng.normal(0, 0.6, spec.expected_shape(n)) for n in spec.param_names()})


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    models = tmp_path_factory.mktemp("bidir") / "models"
    (models / "bi").mkdir(parents=True)
    model.save(bidir_net(), models / "bi" / "model.safetensors")  # an uploaded model, as the server keeps it
    with TestClient(create_app(Settings(models_dir=models, max_tokens=200))) as c:
        yield c


def test_the_card_says_the_direction_and_the_units(client):
    card = client.get("/api/models/bi").json()
    assert (card["direction"], card["directions"], card["hidden_size"], card["units"]) == (
        "bidirectional",
        ["forward", "backward"],
        H,
        2 * H,
    )
    code = client.get("/api/models/code").json()
    assert (code["direction"], code["directions"], code["units"]) == ("forward", ["forward"], code["hidden_size"])


def test_json_compact_csv_npz_and_the_stream_carry_both_directions(client):
    text = "ab (c)"
    tr = bidir_net().trace(text)
    body = client.post("/api/trace", json={"model": "bi", "text": text}).json()
    assert body["directions"] == ["forward", "backward"]
    for k in range(2):
        np.testing.assert_allclose(np.array(body["layers"][k]["h"]), tr.layers[k]["h"], rtol=0, atol=1e-6)
    compact = client.post("/api/trace?encoding=compact", json={"model": "bi", "text": text}).json()
    assert compact["directions"] == ["forward", "backward"] and unpack(compact["layers"][1]["c"]).shape == (6, 2 * H)

    rows = list(
        csv.DictReader(io.StringIO(client.post("/api/trace?encoding=csv", json={"model": "bi", "text": text}).text))
    )
    assert len(rows) == 2 * 6 * 2 * H
    assert [r["direction"] for r in rows[: 2 * H]] == ["forward"] * H + ["backward"] * H
    assert float(rows[2 * H - 1]["h"]) == pytest.approx(float(tr.layers[0]["h"][0, 2 * H - 1]), abs=1e-7)

    npz = np.load(io.BytesIO(client.post("/api/trace?encoding=npz", json={"model": "bi", "text": text}).content))
    assert list(npz["directions"]) == ["forward", "backward"] and npz["layer1/h"].shape == (6, 2 * H)

    with client.stream("POST", "/api/trace/stream", json={"model": "bi", "text": text}) as r:
        lines = [json.loads(line) for line in r.iter_lines() if line]
    assert lines[0]["directions"] == ["forward", "backward"]
    got = np.array([s["layers"][1]["h"] for s in lines[1:]], np.float32)  # not resumed chunk by chunk: exact
    np.testing.assert_allclose(got, tr.layers[1]["h"], rtol=0, atol=1e-6)


def test_a_live_edit_resends_every_step_and_a_backward_unit_reads_the_next_step(client):
    net = bidir_net()
    with client.websocket_connect("/api/live") as ws:
        ws.send_json({"seq": 1, "model": "bi", "text": "abc", "focus": {"layer": 1, "unit": 2 * H - 1}})
        first = ws.receive_json()
        ws.send_json({"seq": 2, "model": "bi", "text": "abc ab", "focus": {"layer": 1, "unit": 2 * H - 1}})
        second = ws.receive_json()
        ws.send_json({"seq": 3, "model": "bi", "text": "abc ab", "focus": {"layer": 0, "unit": 2 * H}})
        refused = ws.receive_json()
    assert (first["from"], first["length"], second["from"], second["length"]) == (0, 3, 0, 6)
    assert second["directions"] == ["forward", "backward"] and second["tokens"] == list("abc ab")
    full = net.trace("abc ab")
    for g in net.gates:  # the backward half of the first steps changed too: all of it is sent, exact
        np.testing.assert_allclose(np.array(second["layers"][1][g]), full.layers[1][g], rtol=0, atol=1e-6)
    h = full.layers[1]["h"][:, 2 * H - 1]
    np.testing.assert_allclose(second["focus"]["lines"]["h_prev"], np.append(h[1:], 0.0), rtol=0, atol=1e-6)
    assert "focus.unit must be a unit index from 0 to 5" in refused["error"]
