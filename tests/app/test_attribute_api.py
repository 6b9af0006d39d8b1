"""POST /api/attribute: the core's attribution of one prediction, as a scrubber asks for it (a step after
another over the same text: the forward pass is kept), and every refusal with a detail a person can act on."""

from __future__ import annotations

import numpy as np
import pytest
from fastapi.testclient import TestClient

import model
from app.main import create_app
from app.settings import Settings

TEXT = "def f(x):\n    return [x + 1 for x in range(10)]\n"


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    settings = Settings(max_tokens=5000, max_ig_steps=64, models_dir=tmp_path_factory.mktemp("models"))
    with TestClient(create_app(settings)) as c:
        yield c


def attribute(client, **body):
    return client.post("/api/attribute", json={"model": "code", "text": TEXT, **body})


def test_a_step_is_explained_with_the_cores_numbers(client):
    r = attribute(client, t=20)
    assert r.status_code == 200, r.text
    got = r.json()
    want = model.attribute(model.load("code"), TEXT, 20)
    assert len(got["inputs"]) == len(got["cell"]) == len(got["tokens"]) == 21
    np.testing.assert_allclose(got["inputs"], want.inputs, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(got["cell"], want.cell, rtol=1e-6, atol=1e-9)
    assert got["target"] == {"index": want.target, "label": TEXT[21], "display": None, "rule": "next token"}
    assert (got["gate"], got["layer"], got["score_kind"], got["method"]) == ("c", 0, "log_p", "grad_x_input")
    assert got["score"] == pytest.approx(want.score, abs=1e-6)
    assert got["completeness"] is None and got["steps"] is None
    assert got["tokens"] == list(TEXT[:21])


def test_scrubbing_reuses_one_forward_pass_and_answers_as_a_fresh_one(client):
    kept = client.app.state.attributions
    before = len(kept._items)
    text = TEXT * 3
    answers = [client.post("/api/attribute", json={"model": "code", "text": text, "t": t}).json() for t in (5, 80, 143)]
    assert len(kept._items) == before + 1 and kept.nbytes > 0  # one forward pass kept, for the whole text
    net = model.load("code")
    for a in answers:
        np.testing.assert_allclose(a["inputs"], model.attribute(net, text, a["t"]).inputs, rtol=1e-6, atol=1e-9)
    last = answers[-1]
    assert last["t"] == 143 and last["target"]["rule"] == "predicted"  # the last step has no next token


def test_integrated_gradients_say_their_steps_and_add_up(client):
    r = attribute(client, t=30, method="integrated_gradients", steps=16, target="x")
    assert r.status_code == 200, r.text
    got = r.json()
    assert got["steps"] == 16 and got["target"]["label"] == "x" and got["target"]["rule"] == "given"
    c = got["completeness"]
    assert abs(c["sum"] - c["difference"]) <= 0.01 * abs(c["difference"])
    assert sum(got["inputs"]) == pytest.approx(c["sum"], rel=1e-6)
    assert "zero" in got["baseline"]
    assert attribute(client, t=3, method="integrated_gradients").json()["steps"] == 32  # the default


def test_a_values_model_over_vectors(client):
    net = model.load("co2-lstm")
    x = np.linspace(-1, 1, 12 * net.spec.input_size).reshape(12, -1).tolist()
    r = client.post("/api/attribute", json={"model": "co2-lstm", "vectors": x, "t": 11})
    assert r.status_code == 200, r.text
    got = r.json()
    assert got["score_kind"] == "value" and got["target"]["rule"] == "first output"
    assert len(got["features"]) == 12 and len(got["features"][0]) == net.spec.input_size
    np.testing.assert_allclose(np.sum(got["features"], axis=1), got["inputs"], rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize(
    ("body", "code", "words"),
    [
        ({"t": 48}, 422, "T = 48"),
        ({"t": -1}, 422, "T = 48"),
        ({"t": 3, "method": "saliency"}, 422, "method"),
        ({"t": 3, "target": "\u00e9"}, 422, "not a token"),
        ({"t": 3, "target": 97}, 422, "from 0 to 96"),
        ({"t": 3, "method": "integrated_gradients", "steps": 0}, 422, "from 1 to 64"),
        ({"t": 3, "method": "integrated_gradients", "steps": 65}, 422, "GATESCOPE_MAX_IG_STEPS"),
        ({"t": 3, "steps": 8}, 422, "integrated_gradients"),
        ({"t": 3, "layer": 1}, 422, "1 layers"),
        ({"t": 3, "text": ""}, 422, "empty"),
        ({"t": 3, "vectors": [[1.0]]}, 422, "exactly one"),
        ({"t": 3, "model": "nope"}, 404, "GET /api/models"),
        ({"t": 3, "text": "x" * 5001}, 413, "5000"),
    ],
)
def test_refusals_name_what_to_change(client, body, code, words):
    r = attribute(client, **body)
    assert r.status_code == code, r.text
    assert words in r.json()["detail"]


def test_no_forward_pass_is_kept_without_room(tmp_path):
    with TestClient(create_app(Settings(attribution_cache_mb=0, models_dir=tmp_path))) as c:
        assert attribute(c, t=4).status_code == 200
        assert c.app.state.attributions.nbytes == 0 and not c.app.state.attributions._items
