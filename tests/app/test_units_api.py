"""GET /api/models/{id}/units/{layer}/{unit} and /docs/{doc} over a small index of dyck strings: the dashboard
equals the model's own trace, and every bad request is a 4xx naming what exists."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from fastapi.testclient import TestClient

import model
from app.main import create_app
from app.settings import Settings
from model.analysis.index import build

#: Dyck strings of a few lengths (one a document); the longest is over the test server's text limit.
TEXTS = ["(()(()))" * 3, "((((()))))()", "()" * 40, "(()" * 5 + "))" * 5, "(" * 30 + ")" * 30]
LIMIT = 60


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("units")
    net = model.load("dyck")
    index = build(net, TEXTS, tmp / "dyck.zarr", name="dyck", scheduler="sync")
    settings = Settings(max_tokens=LIMIT, data_dir=tmp / "data", index_bundled=False)
    with TestClient(create_app(settings)) as c:
        c.app.state.indexes.put("dyck", index)
        yield c


def test_a_dashboard_shows_the_units_values_where_the_model_has_them(client):
    net = model.load("dyck")
    d = client.get("/api/models/dyck/units/0/3?gate=c").json()
    assert (d["layer"], d["unit"], d["gate"], d["text_limit"]) == (0, 3, "c", LIMIT)
    assert d["corpus"]["docs"] == len(TEXTS) and d["corpus"]["steps"] == sum(map(len, TEXTS))
    c = np.concatenate([net.trace(t, probs=False).layers[0]["c"][:, 3] for t in TEXTS])  # every step's C
    assert d["stats"]["max"] == pytest.approx(c.max(), abs=2e-3) and d["stats"]["min"] == pytest.approx(
        c.min(), abs=2e-3
    )
    assert sum(d["histogram"]["counts"]) == len(c)
    assert d["top"][0]["value"] == pytest.approx(c.max(), abs=2e-3)  # float16 in the store
    for ctx in d["top"] + d["bottom"]:
        own = net.trace(TEXTS[ctx["doc"]], probs=False).layers[0]["c"][:, 3]
        assert ctx["value"] == pytest.approx(own[ctx["t"]], abs=2e-3)  # the peak, at its step in its document
        assert "".join(ctx["tokens"]) in TEXTS[ctx["doc"]]
    for a, b in itertools.combinations(d["top"], 2):  # one per document region: snippets 61 steps wide never overlap
        assert a["doc"] != b["doc"] or abs(a["pos"] - b["pos"]) >= d["before"] + d["after"] + 1
    assert len(d["top"]) < 10  # five short documents hold fewer than ten regions
    values = [ctx["value"] for ctx in d["top"]]
    assert values == sorted(values, reverse=True)
    for band in d["bands"]:
        for ctx in band["contexts"]:  # each sample lies in its band
            assert band["lo"] <= ctx["value"] <= band["hi"] and (ctx["value"] < band["hi"] or band["band"] == 9)
    W = net.params["head.W"][3]  # dyck has one layer: its h feeds the head
    assert [p["label"] for p in d["pushes"]["up"]] == [net.vocab[j] for j in np.argsort(-W) if W[j] > 0]


def test_the_default_gate_is_the_cell_state_and_h_has_saturation(client):
    assert client.get("/api/models/dyck/units/0/0").json()["gate"] == "c"
    h = client.get("/api/models/dyck/units/0/0?gate=h&k=2&per_band=0").json()
    assert h["stats"]["saturation"] == {"lo": -0.9, "hi": 0.9} and len(h["top"]) <= 2
    assert all(b["contexts"] == [] for b in h["bands"])


def test_a_document_opens_whole_or_as_a_window(client):
    doc = client.get("/api/models/dyck/docs/1").json()
    assert doc["text"] == TEXTS[1] and doc["steps"] == len(TEXTS[1]) and doc["source"]
    part = client.get("/api/models/dyck/docs/4?start=20&stop=50").json()
    assert part["text"] == TEXTS[4][20:50]
    assert client.get("/api/models/dyck/docs/4").status_code == 200  # 60 steps: the limit itself
    r = client.get("/api/models/dyck/docs/2")  # 80 steps > 60
    assert r.status_code == 413 and "at most 60" in r.json()["detail"]


@pytest.mark.parametrize(
    "url, status, words",
    [
        ("/api/models/nope/units/0/0", 404, "no model 'nope'"),
        ("/api/models/dyck/units/1/0", 404, "layers 0 to 0"),
        ("/api/models/dyck/units/0/8", 404, "units 0 to 7"),
        ("/api/models/dyck/units/0/x", 422, "path.unit"),
        ("/api/models/dyck/units/0/0?gate=z", 422, "its gates are f, i, c_tilde, c, o, h"),
        ("/api/models/dyck/units/0/0?gate=f", 422, "holds the gates c, h, not 'f': index again with --gates c,h,f"),
        ("/api/models/dyck/units/0/0?k=0", 422, "query.k"),
        ("/api/models/dyck/units/0/0?k=101", 422, "query.k"),
        ("/api/models/dyck/units/0/0?per_band=17", 422, "query.per_band"),
        ("/api/models/dyck/docs/5", 404, "documents 0 to 4"),
        ("/api/models/dyck/docs/1?start=5&stop=3", 422, "not a range"),
        ("/api/models/code/units/0/0", 409, "has no index yet"),
    ],
)
def test_bad_requests_say_what_exists(client, url, status, words):
    r = client.get(url)
    assert r.status_code == status, r.text
    assert words in r.json()["detail"]


def test_a_vector_models_dashboard_and_documents_as_csv(client, tmp_path):
    from model.series import read_csv

    net = model.load("co2-lstm")  # one input column, a values head
    rng = np.random.default_rng(0)
    series = [rng.normal(size=(n, net.spec.input_size)).astype(np.float32) for n in (30, 50)]
    client.app.state.indexes.put("co2-lstm", build(net, series, tmp_path / "co2.zarr", scheduler="sync"))
    d = client.get("/api/models/co2-lstm/units/0/2?gate=h").json()
    assert d["pushes"]["title"] == "direct effect on the outputs" and d["top"]
    doc = client.get("/api/models/co2-lstm/docs/1").json()
    x, _ = read_csv(doc["text"])  # the CSV the page's box takes reads back to the series
    assert np.allclose(x, series[1], atol=1e-6) and doc["steps"] == 50
