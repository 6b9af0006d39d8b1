"""POST /api/page: the saved page is one file that needs nothing from a server (no src or href into it), carries the
model's trace as the live socket's reply and every unit's exact lines, and refuses a bad selection with a sentence."""

from __future__ import annotations

import base64
import json
import re
from html.parser import HTMLParser

import numpy as np
import pytest
from fastapi.testclient import TestClient

import model
from app.encoding import loads_binary, unpack
from app.main import create_app
from app.saved import module_graph
from app.settings import Settings

TEXT = "(()(()))$"


@pytest.fixture(scope="module")
def client():
    with TestClient(create_app(Settings(max_tokens=500))) as c:
        yield c


def _embedded(html: str) -> dict:
    raw = re.search(r'<script type="application/json" id="gatescope-saved">(.*?)</script>', html, re.S)
    assert raw, "no embedded trace"
    return json.loads(raw.group(1))


def test_a_saved_page_is_one_file_with_the_trace_and_every_units_lines(client):
    r = client.post("/api/page?layer=0&unit=2&t=4", json={"model": "dyck", "text": TEXT})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/html")
    assert 'filename="gatescope-dyck-t4-unit2.html"' in r.headers["content-disposition"]
    html = r.text
    # nothing is fetched: every src / href is a data: URL or an anchor, every module in the import map
    links = re.findall(r'\b(?:src|href)="([^"]*)"', html)
    assert all(u.startswith(("data:", "#")) for u in links), [u for u in links if not u.startswith("data:")]
    imports = json.loads(re.search(r'<script type="importmap">(.*?)</script>', html, re.S).group(1))["imports"]
    assert set(imports) == {f"gatescope/{m}" for m in module_graph(client.app.state.settings.static / "js")}
    assert {"gatescope/saved.js", "gatescope/api.js", "gatescope/diagram.js", "gatescope/heatmaps.js"} <= set(imports)
    saved_js = base64.b64decode(imports["gatescope/saved.js"].split(",", 1)[1]).decode()
    assert 'from "./' not in saved_js and 'from "gatescope/api.js"' in saved_js
    data = _embedded(html)
    assert data["card"]["id"] == "dyck" and data["text"] == TEXT
    assert data["select"] == {"layer": 0, "unit": 2, "t": 4}
    # the reply is the model's trace (packed as the socket packs it), the lines each unit's exact values
    tr = model.load("dyck").trace(TEXT)
    reply = loads_binary(base64.b64decode(data["reply"]))
    assert reply["from"] == 0 and reply["length"] == len(tr)
    for g, packed in reply["layers"][0].items():
        np.testing.assert_allclose(unpack(packed), tr.layers[0][g], atol=2e-3, rtol=1e-3)
    T, H = tr.layers[0]["c"].shape
    for name, col in data["lines"][0].items():
        a = np.frombuffer(base64.b64decode(col["data"]), "<f4").reshape(T, col["units"])
        for u in (0, H - 1):
            np.testing.assert_array_equal(a[:, u], tr.unit(0, u)[name].astype(np.float32))


@pytest.mark.parametrize(
    ("query", "body", "status", "words"),
    [
        ("t=9", {"model": "dyck", "text": TEXT}, 422, "t = 9 is outside the text's 9 steps"),
        ("unit=99", {"model": "dyck", "text": TEXT}, 422, "unit 99 does not exist"),
        ("layer=1", {"model": "dyck", "text": TEXT}, 422, "layer 1 does not exist"),
        ("", {"model": "nope", "text": TEXT}, 404, "nope"),
        ("", {"model": "dyck", "text": "abc"}, 422, ""),
        ("t=x", {"model": "dyck", "text": TEXT}, 422, "t"),
        ("win_start=2", {"model": "dyck", "text": TEXT}, 422, "needs both win_start and win_size"),
        ("win_start=9&win_size=4", {"model": "dyck", "text": TEXT}, 422, "first step 9 is outside the text's 9 steps"),
    ],
)
def test_a_saved_page_refuses_a_bad_selection_with_a_sentence(client, query, body, status, words):
    r = client.post(f"/api/page?{query}", json=body)
    assert r.status_code == status, r.text
    assert words in r.json()["detail"]


def test_a_saved_page_keeps_the_window_it_was_saved_with(client):
    r = client.post("/api/page?t=4&win_start=3&win_size=5", json={"model": "dyck", "text": TEXT})
    assert r.status_code == 200, r.text
    assert _embedded(r.text)["select"] == {"layer": 0, "unit": 0, "t": 4, "win": {"start": 3, "size": 5}}
    plain = client.post("/api/page?t=4", json={"model": "dyck", "text": TEXT})
    assert "win" not in _embedded(plain.text)["select"]  # none asked: the page places the window around t


def test_a_saved_page_of_a_vector_model_is_refused(client):
    cards = {c["id"]: c for c in client.get("/api/models").json()}
    vector = next(k for k, c in cards.items() if c.get("input") == "vectors")
    r = client.post("/api/page", json={"model": vector, "vectors": [[0.0] * cards[vector]["input_size"]] * 3})
    assert r.status_code == 422 and "text models only" in r.json()["detail"], r.text


def test_a_saved_page_too_big_to_open_well_is_refused_with_its_size(client, monkeypatch):
    from app.api import page

    monkeypatch.setattr(page, "MAX_PAGE_MB", 0.001)
    r = client.post("/api/page", json={"model": "dyck", "text": TEXT})
    assert r.status_code == 413, r.text
    assert "save a shorter text" in r.json()["detail"]


class _Ids(HTMLParser):
    """Every element with an id: id -> (tag, class, the classes of its ancestors, outermost first)."""

    VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.found: dict[str, tuple[str, str, tuple[str, ...]]] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if a.get("id"):
            self.found[a["id"] or ""] = (tag, a.get("class") or "", tuple(c for c in self.stack if c))
        if tag not in self.VOID:
            self.stack.append(f"{tag}.{a.get('class') or ''}")

    def handle_endtag(self, tag: str) -> None:
        if tag not in self.VOID and self.stack:
            self.stack.pop()


def _ids(html: str) -> dict[str, tuple[str, str, tuple[str, ...]]]:
    p = _Ids()
    p.feed(html)
    return p.found


def test_a_saved_pages_views_sit_where_the_live_pages_do(client):
    live = _ids(client.get("/").text)
    saved = _ids(client.post("/api/page", json={"model": "dyck", "text": TEXT}).text)
    # the saved page's header and the text it read are its own; every view below them is the live page's markup
    own = {"gatescope-saved", "model", "description", "saved-note", "input", "input-label"}
    shared = set(saved) - own
    assert shared <= set(live), f"the saved page has views the live page lacks: {sorted(shared - set(live))}"
    # the same tag and class, in the same three nearest containers (the panel, the row it sits in)
    moved = {i: (saved[i], live[i]) for i in shared if saved[i][:2] + saved[i][2][-3:] != live[i][:2] + live[i][2][-3:]}
    assert not moved, f"elements laid out differently on the saved page (saved, live): {moved}"
    # the views that work offline are there: the overview strip, the legends, presentation mode, the predictions
    assert {"overview", "unit-legend", "diagram-legend", "heatmaps-legend", "present", "preds-box"} <= shared


RECALL = "c14159265358979?"


def test_a_page_saved_while_comparing_carries_run_bs_trace_and_who_its_unit_is(client):
    r = client.post(
        "/api/page?unit=2&t=4", json={"model": "recall-lstm", "text": RECALL, "vs": {"model": "recall-rnn"}}
    )
    assert r.status_code == 200, r.text
    assert 'filename="gatescope-recall-lstm-vs-recall-rnn-t4-unit2.html"' in r.headers["content-disposition"]
    assert 'data-testid="side-diagram-box"' in r.text and 'data-testid="model-b">recall-rnn<' in r.text
    data = _embedded(r.text)
    b = data["b"]
    assert b["card"]["id"] == "recall-rnn" and b["text"] == RECALL
    # b's unit: its own (unit k of the RNN is not the LSTM's unit k), the one POST /api/compare chooses
    want = client.post(
        "/api/compare", json={"model": "recall-lstm", "text": RECALL, "model_b": "recall-rnn", "unit": 2}
    )
    assert data["compared"]["state"] == want.json()["state"]
    assert b["select"] == {"layer": 0, "unit": want.json()["state"]["b"]["unit"], "t": 4}
    assert data["compare"] == {"model": "recall-rnn", "text": None, "match": False, "unit": None}
    tr = model.load("recall-rnn").trace(RECALL)
    reply = loads_binary(base64.b64decode(b["reply"]))
    np.testing.assert_allclose(unpack(reply["layers"][0]["h"]), tr.layers[0]["h"], atol=2e-3, rtol=1e-3)
    col = b["lines"][0]["h"]
    lines = np.frombuffer(base64.b64decode(col["data"]), "<f4").reshape(len(tr), col["units"])
    np.testing.assert_array_equal(lines[:, 5], tr.unit(0, 5)["h"].astype(np.float32))
    # paired checkpoints: b's unit is a's unit's partner, and the file has the matching
    paired = client.post(
        "/api/page?unit=2", json={"model": "recall-lstm", "text": RECALL, "vs": {"model": "recall-gru", "match": True}}
    )
    pair = next(p for p in _embedded(paired.text)["compared"]["matching"]["pairs"] if p["a"] == 2)
    assert _embedded(paired.text)["b"]["select"]["unit"] == pair["b"]
    # without vs the page is a's alone
    plain = client.post("/api/page", json={"model": "recall-lstm", "text": RECALL})
    assert "b" not in _embedded(plain.text) and 'id="side-diagram-box"' not in plain.text


@pytest.mark.parametrize(
    ("vs", "status", "words"),
    [
        ({}, 422, "give it another model ('model') or another text ('text')"),
        ({"model": "nope"}, 404, "nope"),
        ({"model": "recall-rnn", "unit": 99}, 422, "unit 99 is not a unit of recall-rnn"),
        ({"text": "xyz!"}, 422, "not in the model's vocabulary"),
    ],
)
def test_a_saved_comparison_refuses_a_bad_run_b_with_a_sentence(client, vs, status, words):
    r = client.post("/api/page", json={"model": "recall-lstm", "text": RECALL, "vs": vs})
    assert r.status_code == status, r.text
    assert words in r.json()["detail"]
