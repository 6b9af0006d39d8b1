"""POST /api/models/{id}/saturation, GET and POST /api/models/{id}/order, POST /api/models/{id}/match: what they
answer over a text, and every client mistake as a 4xx that says what to do."""

from __future__ import annotations

import numpy as np
import pytest
from fastapi.testclient import TestClient

import model
from app.main import create_app
from app.settings import Settings
from model.analysis import match, order

TEXT = "def f(x):\n    return (x + 1) * [x, 2]\n"


@pytest.fixture(scope="module")
def client():
    with TestClient(create_app(Settings(max_tokens=500))) as c:
        yield c


@pytest.fixture(scope="module")
def trace():
    return model.load("code").trace(TEXT)


def test_saturation_over_a_text_gives_every_bounded_gates_fractions_per_unit(client, trace):
    body = client.post("/api/models/code/saturation", json={"text": TEXT}).json()
    assert body["source"] == "text" and body["steps"] == len(TEXT) and body["layer"] == 0
    assert set(body["gates"]) == {"f", "i", "c_tilde", "o", "h"}
    f = trace.layers[0]["f"]
    assert body["gates"]["f"]["left"] == pytest.approx(((f < 0.1).mean(0)).tolist(), abs=1e-6)
    assert body["gates"]["f"]["right"] == pytest.approx(((f > 0.9).mean(0)).tolist(), abs=1e-6)
    assert len(body["gates"]["h"]["left"]) == 128


def test_saturation_refuses_both_or_neither_source_a_bad_layer_and_an_index_it_lacks(client):
    for bad in ({}, {"text": TEXT, "index": True}):
        r = client.post("/api/models/code/saturation", json=bad)
        assert r.status_code == 422 and "exactly one of 'text'" in r.json()["detail"]
    r = client.post("/api/models/code/saturation", json={"text": TEXT, "layer": 2})
    assert r.status_code == 422 and "layer 2 does not exist" in r.json()["detail"]
    r = client.post("/api/models/code/saturation", json={"index": True})
    assert r.status_code == 409 and "POST a corpus" in r.json()["detail"]
    assert client.post("/api/models/nope/saturation", json={"text": TEXT}).status_code == 404


def test_order_over_a_text_is_the_clustering_of_its_trace(client, trace):
    body = client.post("/api/models/code/order", json={"text": TEXT}).json()
    assert body["gate"] == "c" and body["source"] == "text" and body["steps"] == len(TEXT)
    r, _ = order.correlation([trace.layers[0]["c"]])
    assert body["order"] == order.similar_order(r) and sorted(body["order"]) == list(range(128))
    assert "1 − |r|" in body["method"]
    signed = client.post("/api/models/code/order", json={"text": TEXT, "gate": "h", "signed": True}).json()
    assert signed["gate"] == "h" and "1 − r" in signed["method"]
    gru = client.post("/api/models/recall-gru/order", json={"text": "ab"}).json()
    assert gru["gate"] == "h"  # a GRU has no c: its state is h


def test_order_refuses_a_gate_the_model_lacks_and_the_index_path_without_an_index(client):
    r = client.post("/api/models/code/order", json={"text": TEXT, "gate": "z"})
    assert r.status_code == 422 and "'z' is not in this trace" in r.json()["detail"]
    r = client.get("/api/models/code/order?layer=0&gate=c")
    assert r.status_code == 409 and "no index yet" in r.json()["detail"]


def test_match_over_the_text_selects_the_units_on_and_finds_their_runs(client, trace):
    span = (10, 14)  # "    " the indentation
    body = {"text": TEXT, "start": span[0], "stop": span[1], "threshold": 0.3, "search": "text"}
    out = client.post("/api/models/code/match", json=body).json()
    h = trace.layers[0]["h"]
    assert out["units"] == match.units_on(h, *span, 0.3) and out["units"]
    assert all((h[span[0] : span[1], u] >= 0.3).all() for u in out["units"])
    # the span itself is one of the runs found (the units are on there by construction), ranked by length
    runs = [(m["pos"], m["pos"] + m["length"]) for m in out["matches"]]
    assert any(a <= span[0] and span[1] <= b for a, b in runs)
    for m in out["matches"]:
        a, b = m["match"]
        assert m["tokens"] == list(TEXT[m["start"] : m["stop"]]) and m["source"] == "this text"
        assert all(s == 1.0 for s in m["on"][a:b])  # every unit on throughout the run
        assert len(m["values"]) == len(m["tokens"]) == len(m["on"])
    lengths = [abs(m["length"] - 4) for m in out["matches"]]
    assert lengths == sorted(lengths)


def test_match_with_units_given_searches_those(client, trace):
    body = {"text": TEXT, "start": 0, "stop": 3, "threshold": 0.0, "units": [5, 3, 5], "search": "text"}
    out = client.post("/api/models/code/match", json=body).json()
    assert out["units"] == [3, 5]


def test_match_with_no_unit_on_answers_why_not_an_error(client):
    body = {"text": TEXT, "start": 0, "stop": len(TEXT), "threshold": 0.99, "search": "text"}
    r = client.post("/api/models/code/match", json=body)
    assert r.status_code == 200
    out = r.json()
    assert out["units"] == [] and out["matches"] == []
    assert "no unit of layer 0's h is >= 0.99 on every step" in out["note"] and "lower the threshold" in out["note"]


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"start": 5, "stop": 5}, "[5, 5) is not inside the text's"),
        ({"start": 30, "stop": 99}, "give 0 <= start < stop <= 38"),
        ({"start": -1, "stop": 2}, "[-1, 2)"),
        ({"threshold": 1.5}, "outside the range of gate 'h': give a value in [-1, 1]"),
        ({"gate": "f", "threshold": -0.2}, "in [0, 1]"),
        ({"gate": "nope"}, "'nope' is not one of this model's"),
        ({"layer": 1}, "layer 1 does not exist"),
        ({"units": [0, 128]}, "no unit 128"),
        ({"share": 0}, "share"),
        ({"top": 0}, "top"),
        ({"text": ""}, "the input is empty"),
    ],
)
def test_match_refuses_client_mistakes_with_a_sentence(client, change, words):
    body = {"text": TEXT, "start": 2, "stop": 6, "threshold": 0.5, "search": "text", **change}
    r = client.post("/api/models/code/match", json=body)
    assert r.status_code == 422, r.text
    assert words in r.json()["detail"]


def test_match_over_the_index_without_one_is_a_409_saying_how_to_make_one(client):
    r = client.post("/api/models/code/match", json={"text": TEXT, "start": 2, "stop": 6, "threshold": 0.5})
    assert r.status_code == 409 and "POST a corpus" in r.json()["detail"]


def test_c_takes_any_finite_threshold(client):
    body = {"text": TEXT, "start": 2, "stop": 6, "threshold": -40.0, "gate": "c", "search": "text"}
    out = client.post("/api/models/code/match", json=body).json()
    assert out["units"] == list(range(128))  # every C is above -40
    assert np.isfinite(out["found"])


# ---------------------------------------------------------------------------------------------------------------------
# Over a corpus index


DOCS = ["def f(x):\n    return x\n", "a = [1, 2]\n", "if a:\n    b = (a + 1)\n", "print('hi')\n"]


@pytest.fixture(scope="module")
def indexed(tmp_path_factory):
    """A client whose app holds an index of DOCS for the code model."""
    from model.analysis.index import build

    idx = build(model.load("code"), DOCS, tmp_path_factory.mktemp("views-api") / "code.zarr", scheduler="sync")
    with TestClient(create_app(Settings(max_tokens=500))) as c:
        c.app.state.indexes.put("code", idx)
        yield c, idx


def test_saturation_over_the_index_is_its_stats_low_and_high(indexed):
    c, idx = indexed
    body = c.post("/api/models/code/saturation", json={"index": True}).json()
    assert body["source"] == "index" and body["steps"] == idx.steps and set(body["gates"]) == {"h"}
    st = idx.stats(0, "h")
    assert body["gates"]["h"]["left"] == pytest.approx(st.low.tolist(), abs=1e-6)
    assert body["gates"]["h"]["right"] == pytest.approx(st.high.tolist(), abs=1e-6)
    auto = c.post("/api/models/code/saturation", json={"text": TEXT, "index": "auto"}).json()
    assert auto["source"] == "index"


def test_order_over_the_index_is_the_clustering_of_its_activity(indexed):
    c, idx = indexed
    body = c.get("/api/models/code/order?layer=0&gate=c").json()
    assert body["source"] == "index" and body["steps"] == idx.steps
    assert body["order"] == order.index_order(idx, 0, "c")["order"]
    assert c.get("/api/models/code/order?layer=0&gate=c").json() == body  # again: the same (kept) answer
    auto = c.post("/api/models/code/order", json={"text": TEXT, "index": "auto"}).json()
    assert auto == body
    r = c.get("/api/models/code/order?gate=f")
    assert r.status_code == 422 and "did not record gate 'f': it has" in r.json()["detail"]
    r = c.get("/api/models/code/order?layer=4")
    assert r.status_code == 422 and "layer 4" in r.json()["detail"]


def test_match_over_the_index_lists_runs_as_contexts_with_the_run_marked(indexed):
    c, idx = indexed
    body = {"text": TEXT, "start": 10, "stop": 14, "threshold": 0.2}
    out = c.post("/api/models/code/match", json=body).json()
    assert out["source"] == "index" and out["steps"] == idx.steps and out["units"]
    assert out["matches"] and out["found"] >= len(out["matches"])
    h = idx.rows(0, "h", 0, idx.steps)[:, out["units"]]  # (S, k) what the index stores
    for m in out["matches"]:
        a, b = m["match"]
        assert m["tokens"] == idx.tokens(m["start"], m["stop"]) and m["source"] in idx.info["sources"]
        assert (h[m["pos"] : m["pos"] + m["length"]] >= 0.2).all()  # every unit on over the run
        assert b - a == min(m["length"], m["stop"] - m["pos"]) and a == m["pos"] - m["start"]
        assert all(s == 1.0 for s in m["on"][a:b]) and len(m["on"]) == len(m["tokens"])
    r = c.post("/api/models/code/match", json={**body, "gate": "o"})
    assert r.status_code == 422 and "did not record gate 'o'" in r.json()["detail"]
    text = c.post("/api/models/code/match", json={**body, "search": "text"}).json()
    assert text["source"] == "text" and text["units"] == out["units"]
