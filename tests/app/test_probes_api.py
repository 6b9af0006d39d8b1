"""GET /api/models/{id}/features, POST /api/models/{id}/probe (text and index), POST .../known-units: what a
person asking "which unit tracks X?" gets back, and every refusal."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

import model
from app.main import create_app
from app.settings import Settings
from model.analysis.index import build
from model.analysis.store import Index
from model.tasks import CodeTask, get_task

GATES = ("f", "i", "c_tilde", "c", "o", "h")  # an LSTM trace's gates
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
DYCK = "(()(()))((((()))))()(((())))$" * 6


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    with TestClient(create_app(Settings(max_tokens=5000, models_dir=tmp_path_factory.mktemp("models")))) as c:
        yield c


def register(app, model_id: str, index: Index) -> None:
    app.state.indexes.put(model_id, index)


def probe(client, model_id: str, **body):
    return client.post(f"/api/models/{model_id}/probe", json=body)


def test_each_model_lists_its_built_in_features(client):
    names = lambda m: [f["name"] for f in client.get(f"/api/models/{m}/features").json()["features"]]  # noqa: E731
    assert "depth" in names("dyck") and "in_string" not in names("dyck")
    assert {"in_string", "in_comment", "indent", "bracket_depth", "position_in_line"} <= set(names("code"))
    assert names("co2-lstm") == []
    described = client.get("/api/models/code/features").json()["features"]
    assert all(f["description"] for f in described)
    assert client.get("/api/models/nope/features").status_code == 404


def test_dyck_depth_over_a_text_finds_the_counter(client):
    r = probe(client, "dyck", feature="depth", text=DYCK)
    assert r.status_code == 200, r.text
    body = r.json()
    best = body["best"]
    assert abs(best["r"]) >= 0.95 and best["gate"] in ("c", "h")
    rs = [abs(e["r"]) for e in body["ranking"]]
    assert rs == sorted(rs, reverse=True) and body["ranking"][0]["unit"] == best["unit"]
    assert {e["gate"] for e in body["ranking"]} == set(model.load("dyck").gates)  # every gate, none asked for
    assert len(best["curve"]["feature"]) == len(best["curve"]["unit"]) == len(DYCK)
    assert best["curve"]["feature"][:3] == [1, 2, 1]  # the depth after "(", "((", "(()"


def test_a_gate_limits_the_ranking(client):
    body = probe(client, "dyck", feature="depth", text=DYCK, gate="o").json()
    assert {e["gate"] for e in body["ranking"]} == {"o"}


@pytest.mark.parametrize("feature", ["bracket_depth", "in_string", "indent"])
def test_code_probes_report_the_best_unit_and_a_held_out_linear_score(client, feature):
    text = CodeTask().heldout_text(4000)
    body = probe(client, "code", feature=feature, text=text, linear=True).json()
    best, lin = body["best"], body["linear"]
    assert 0 <= best["unit"] < 128 and abs(best["r"]) > 0.3, best
    assert lin["metric"] == ("accuracy" if feature == "in_string" else "r2")
    assert lin["units"]["top1"] == [best["unit"]] and len(lin["units"]["top8"]) == 8
    assert lin["test_steps"] > 0 and lin["train_steps"] > lin["test_steps"]
    assert lin["all"] is not None and lin["all"] >= lin["top1"] - 0.05  # all units decode at least as well
    if feature == "in_string":
        assert lin["all"] >= 0.8 and set(lin["balanced_accuracy"]) == {"top1", "top8", "all", "layer_all"}
    # the layer: every gate of the trace side by side (768 columns over ~3,000 steps: it may fit worse held out)
    assert lin["layer_gates"][0] == best["gate"] and set(lin["layer_gates"]) == set(GATES)
    assert lin["units"]["layer_all"] == 6 * 128 and lin["layer_all"] is not None
    assert lin["layer_all"] > (0.5 if feature == "in_string" else 0)


def test_a_regex_and_labels_are_features_too(client):
    text = "ab1 cd22 e3"
    body = probe(client, "code", regex=r"\d+", text=text).json()
    assert body["feature"]["kind"] == "regex"
    assert body["best"]["curve"]["feature"] == [0, 0, 1, 0, 0, 0, 1, 1, 0, 0, 1]
    labels = [float(t % 3) for t in range(len(text))]
    body = probe(client, "code", labels=labels, text=text).json()
    assert body["feature"]["kind"] == "labels" and body["best"]["curve"]["feature"] == labels


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        ({"text": "()"}, 422, "exactly one of 'feature', 'regex' or 'labels' (got none)"),
        ({"feature": "depth", "regex": "a", "text": "()"}, 422, "got feature and regex"),
        ({"feature": "deep", "text": "()"}, 422, "unknown feature 'deep': model 'dyck' has position_in_word"),
        ({"regex": "(a", "text": "()"}, 422, "does not compile"),
        ({"labels": [1, 2, 3], "text": "()"}, 422, "3 numbers but the text has 2 tokens"),
        ({"feature": "depth"}, 422, "either 'text' or"),
        ({"feature": "depth", "text": "()", "index": True}, 422, "either 'text' or"),
        ({"feature": "depth", "text": "()", "gate": "z"}, 422, "no gate 'z'"),
        ({"feature": "depth", "text": "$$$"}, 422, "the feature is constant (0 at every step)"),
        ({"regex": "x", "text": "()()"}, 422, "the feature is constant"),
    ],
)
def test_client_mistakes_get_a_4xx_that_says_what_to_do(client, body, status, words):
    r = probe(client, "dyck", **body)
    assert r.status_code == status, r.text
    assert words in r.json()["detail"]


def test_a_vector_model_cannot_be_probed_with_text_features(client):
    r = probe(client, "co2-lstm", feature="digit", text="1")
    assert r.status_code == 422 and "reads vectors" in r.json()["detail"]


def lines(r) -> list[dict]:
    return [json.loads(line) for line in r.text.splitlines() if line.strip()]


def test_dyck_depth_over_the_index_streams_progress_then_the_result(tmp_path):
    net = model.load("dyck")
    index = build(net, get_task("dyck").heldout()[:60], tmp_path / "dyck.zarr", scheduler="sync")
    with TestClient(create_app(Settings(models_dir=tmp_path / "models"))) as client:
        register(client.app, "dyck", Index.open(tmp_path / "dyck.zarr"))
        r = probe(client, "dyck", feature="depth", index=True, linear=True)
        assert r.status_code == 200 and r.headers["content-type"].startswith("application/x-ndjson")
        got = lines(r)
        progress, result = got[:-1], got[-1]
        assert progress and all("progress" in p for p in progress)
        done = [p["progress"]["done"] for p in progress if p["progress"]["stage"] == "correlating"]
        assert done == sorted(done) and done[-1] == progress[0]["progress"]["total"]
        assert result["over"] == "index" and result["index"]["steps"] == index.steps
        assert abs(result["best"]["r"]) >= 0.95
        lin = result["linear"]
        assert lin["split"] == "documents" and lin["train_docs"] + lin["test_docs"] == 60 and lin["test_docs"] > 0
        assert lin["all"] >= 0.9
        curve = result["best"]["curve"]
        assert len(curve["feature"]) == len(curve["unit"]) == len(curve["tokens"]) > 0
        r = probe(client, "dyck", labels=[1.0, 2.0], index=True)
        assert r.status_code == 422 and f"the index has {index.steps} steps" in r.json()["detail"]


def upload(client, name: str):
    src, voc = FIXTURES / "torch/gru_text.safetensors", FIXTURES / "torch/gru_text.vocab.json"
    files = {"file": (src.name, src.read_bytes()), "vocab": (voc.name, voc.read_bytes())}
    r = client.post("/api/models", files=files, data={"name": name})
    assert r.status_code == 201, r.text
    return r.json()


def saved_units(client, model_id: str) -> list[dict]:
    return client.get(f"/api/models/{model_id}").json()["telling_units"].get("saved", [])


def test_a_saved_unit_is_listed_in_the_card_and_survives_a_restart_for_bundled_and_uploaded_models(tmp_path):
    settings = {"models_dir": tmp_path, "uploads": True}
    with TestClient(create_app(Settings(**settings))) as client:
        up = upload(client, "mine")
        unit = {"layer": 0, "unit": 4, "gate": "c", "label": "depth (probe)", "r": -0.99}
        assert client.post("/api/models/dyck/known-units", json=unit).status_code == 201
        r = client.post("/api/models/mine/known-units", json=unit | {"gate": "h", "unit": 1, "r": None})
        assert r.status_code == 201, r.text
        again = client.post("/api/models/dyck/known-units", json=unit | {"label": "the counter"})
        assert [u["feature"] for u in again.json()["saved"]] == ["the counter"]  # the same unit: replaced
        assert probe(client, "mine", feature="digit", index=True).status_code == 409  # no index for an upload yet
        assert up["telling_units"] == {}
    assert (tmp_path / "mine" / "known_units.json").is_file()  # beside the upload
    with TestClient(create_app(Settings(**settings))) as client:  # a restart
        dyck = saved_units(client, "dyck")
        assert [(u["feature"], u["layer"], u["unit"], u["gate"], u["r"]) for u in dyck] == [
            ("the counter", 0, 4, "c", -0.99)
        ]
        assert [(u["unit"], u["gate"]) for u in saved_units(client, "mine")] == [(1, "h")]
        listed = {c["id"]: c for c in client.get("/api/models").json()}
        assert listed["mine"]["telling_units"]["saved"][0]["feature"] == "depth (probe)"
        assert client.delete("/api/models/mine").status_code == 204  # its saved units go with it
        assert not (tmp_path / "mine").exists()


@pytest.mark.parametrize(
    ("unit", "words"),
    [
        ({"layer": 3, "unit": 0, "gate": "c", "label": "x"}, "layer 3 does not exist"),
        ({"layer": 0, "unit": 8, "gate": "c", "label": "x"}, "unit 8 does not exist"),
        ({"layer": 0, "unit": 0, "gate": "z", "label": "x"}, "no gate 'z'"),
        ({"layer": 0, "unit": 0, "gate": "c", "label": ""}, "label"),
    ],
)
def test_a_unit_that_does_not_exist_is_not_saved(client, unit, words):
    r = client.post("/api/models/dyck/known-units", json=unit)
    assert r.status_code == 422 and words in r.json()["detail"]
    assert all(u["label"] != "x" for u in saved_units(client, "dyck") if "label" in u)
    assert np.all([u["feature"] != "x" for u in saved_units(client, "dyck")])
