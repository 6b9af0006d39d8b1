"""GET /api/story (the guided story, measured on the bundled models), the cards' measured descriptions, and
POST /api/models/{id}/reads (whether a model can read the page's text), through the TestClient."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

import model
from app.main import create_app
from app.settings import Settings
from model.story import chapters
from model.teach import lesson


@pytest.fixture(scope="module")
def client():
    with TestClient(create_app(Settings(max_tokens=500))) as c:
        yield c


def _card(name):
    return json.loads((model.PRETRAINED / name / "card.json").read_text())


def test_the_story_is_served_as_the_core_tells_it_and_kept(client):
    got = client.get("/api/story").json()["chapters"]
    names = ["recall-lstm", "recall-rnn", "dyck", "code"]
    want = chapters({n: (model.load(n), _card(n)) for n in names})
    assert [c["id"] for c in got] == [c["id"] for c in want]
    for a, b in zip(got, want):
        assert {k: a[k] for k in ("model", "text", "unit", "t", "highlight", "words")} == {
            k: b[k] for k in ("model", "text", "unit", "t", "highlight", "words")
        }
    assert client.get("/api/story").json()["chapters"] == got  # the same, from the cache


def test_each_recall_card_says_what_is_true_of_its_cell(client):
    cards = {c["id"]: c for c in client.get("/api/models").json()}
    for name in ("recall-lstm", "recall-peephole", "recall-coupled", "recall-gru", "recall-rnn", "dyck", "code"):
        taught = lesson(model.load(name), _card(name))
        assert cards[name]["description"] == taught["description"] and cards[name]["examples"] == taught["examples"]
    assert "fails" in cards["recall-rnn"]["description"]
    assert "look for a forget gate held near 1" not in cards["recall-gru"]["description"]
    assert cards["dyck"]["examples"][0] != "()$"
    assert cards["adding-lstm"]["description"] == _card("adding-lstm")["description"]  # not taught: its own words


def test_reads_says_whether_a_model_can_read_a_text(client):
    assert client.post("/api/models/recall-gru/reads", json={"text": "a123?"}).json() == {"reads": True, "why": None}
    no = client.post("/api/models/dyck/reads", json={"text": "(a)"}).json()
    assert no["reads"] is False and "'a'" in no["why"]
    long = client.post("/api/models/dyck/reads", json={"text": "(" * 501}).json()
    assert long["reads"] is False and "500" in long["why"]
    assert client.post("/api/models/nope/reads", json={"text": "x"}).status_code == 404
    assert client.post("/api/models/dyck/reads", json={}).status_code == 422
