"""POST /api/compare: two models on one text, one model on two texts, and what a client's mistakes get."""

from __future__ import annotations

import numpy as np
import pytest
from fastapi.testclient import TestClient

import model
from app.main import create_app
from app.settings import Settings

TEXT = "c1415926535897932384626433832795028841971693993751058209?"


@pytest.fixture(scope="module")
def client():
    with TestClient(create_app(Settings(max_tokens=500, max_plain_values=20_000))) as c:
        yield c


def test_lstm_beside_rnn_gives_both_likelihoods_predictions_and_the_rnns_own_h(client):
    r = client.post("/api/compare", json={"model": "recall-lstm", "model_b": "recall-rnn", "text": TEXT})
    assert r.status_code == 200, r.text
    body = r.json()
    a, b = model.load("recall-lstm").trace(TEXT), model.load("recall-rnn").trace(TEXT)
    assert body["steps"] == len(TEXT) and body["same_tokens"] and body["gates"] == ["h"]
    np.testing.assert_allclose(body["b"]["h"], b.layers[0]["h"], atol=1e-5)  # run b's own h, to draw beside a's
    # unit k of the LSTM has nothing to do with unit k of the RNN: no difference until they are paired
    assert body["difference"] is None and body["change"] is None
    t = 3  # read "1", next "5"
    k = a.labels.index(TEXT[t + 1])
    assert body["logp"]["a"][t] == pytest.approx(np.log(a.probs[t, k]), abs=1e-4)
    assert body["logp"]["difference"][t] == pytest.approx(np.log(b.probs[t, k] / a.probs[t, k]), abs=2e-4)
    assert body["matching"] is None
    # after "?", the answer: the first symbol; the LSTM gives it, the RNN's best guess is far less sure
    top_a, top_b = body["top"]["a"][-1], body["top"]["b"][-1]
    assert top_a[0]["token"] == TEXT[0] and top_a[0]["p"] == pytest.approx(float(a.probs[-1].max()), abs=1e-4)
    assert top_b[0]["p"] == pytest.approx(float(b.probs[-1].max()), abs=1e-4) and top_b[0]["p"] < 0.9
    assert len(top_a) == 3 and top_a[0]["p"] >= top_a[1]["p"] >= top_a[2]["p"]


def test_one_model_on_two_texts_and_a_matched_pair_of_models(client):
    body = client.post("/api/compare", json={"model": "dyck", "text": "(()", "text_b": "(())", "gates": ["f", "c"]})
    assert body.status_code == 200, body.text
    out = body.json()
    assert (out["steps"], out["steps_b"], out["same_tokens"]) == (3, 4, False)
    assert np.abs(np.array(out["difference"]["c"])).max() == 0  # the first three steps read the same
    assert out["change"]["f"] == [0.0, 0.0, 0.0]
    m = client.post("/api/compare", json={"model": "recall-lstm", "model_b": "recall-gru", "text": TEXT, "match": True})
    got = m.json()["matching"]
    assert got["gate"] == "h" and sorted(got["order"]) == list(range(16))  # both 16 wide: a pairing of all
    assert got["mean_abs_r"] >= got["identity_abs_r"]
    assert len(m.json()["difference"]["h"]) == len(TEXT)  # paired: b − a, b's units in a's order


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        ({"model": "recall-lstm", "model_b": "nope", "text": TEXT}, 404, "no model 'nope'"),
        ({"model": "recall-lstm", "model_b": "recall-rnn", "text": TEXT, "gates": ["c"]}, 422, "they share h"),
        ({"model": "recall-lstm", "text": TEXT, "layer": 3}, 422, "layer 3 is not a layer of both models"),
        ({"model": "recall-lstm", "text": "x" * 501}, 413, "at most 500"),
        ({"model": "code", "text": "x = 1\n" * 30, "gates": ["c", "h"]}, 413, "compare fewer gates or a shorter text"),
        ({"model": "recall-lstm", "text": TEXT, "text_b": ""}, 422, "empty"),
        ({"model": "recall-lstm"}, 422, "text"),
    ],
)
def test_a_clients_mistakes_get_a_4xx_that_names_them(client, body, status, words):
    r = client.post("/api/compare", json=body)
    assert r.status_code == status, r.text
    assert words in str(r.json()["detail"])


def test_state_says_each_runs_selection_and_b_follows_a_where_the_units_correspond(client):
    # two models of different cells: b keeps its own unit (the one asked, else its most telling one)
    body = {"model": "recall-lstm", "model_b": "recall-rnn", "text": TEXT, "unit": 14}
    st = client.post("/api/compare", json=body).json()["state"]
    assert st["a"] == {"model": "recall-lstm", "text": TEXT, "layer": 0, "unit": 14, "unit_from": "selected", "r": None}
    assert st["b"]["unit_from"] == "own" and st["b"]["model"] == "recall-rnn" and st["b"]["text"] == TEXT
    assert st["b"]["unit"] == 14  # recall-rnn's card names unit 14 its best (if weak) memory
    st = client.post("/api/compare", json={**body, "unit": 3, "unit_b": 5}).json()["state"]
    assert (st["a"]["unit"], st["b"]["unit"], st["b"]["unit_from"]) == (3, 5, "own")
    # one model on two texts: the same unit
    st = client.post("/api/compare", json={"model": "dyck", "text": "(()", "text_b": "(())", "unit": 4}).json()["state"]
    assert st["b"] == {"model": "dyck", "text": "(())", "layer": 0, "unit": 4, "unit_from": "same", "r": None}
    # paired: a's unit's partner, with its r, as the matching lists it
    got = client.post(
        "/api/compare", json={"model": "recall-lstm", "model_b": "recall-gru", "text": TEXT, "match": True, "unit": 2}
    ).json()
    pair = next(p for p in got["matching"]["pairs"] if p["a"] == 2)
    assert got["state"]["b"]["unit"] == pair["b"] and got["state"]["b"]["r"] == pair["r"]
    assert got["state"]["b"]["unit_from"] == "paired"
    bad = client.post("/api/compare", json={**body, "unit_b": 16})
    assert bad.status_code == 422 and "unit 16 is not a unit of recall-rnn" in bad.json()["detail"]
