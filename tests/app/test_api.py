"""The JSON API through the TestClient (so the lifespan runs): cards, traces, and every client mistake."""

from __future__ import annotations

import json

import numpy as np
import pytest
from fastapi.testclient import TestClient

import model
from app.main import create_app
from app.settings import Settings
from tests.app.bounds import assert_compact_close


@pytest.fixture(scope="module")
def client():
    with TestClient(create_app(Settings(max_tokens=500))) as c:
        yield c


def test_list_models_gives_every_bundled_card(client):
    cards = {c["id"]: c for c in client.get("/api/models").json()}
    assert set(cards) == set(model.available())
    code = cards["code"]
    assert code["cell"] == "lstm" and code["input"] == "text" and code["vocab"] == 97
    assert code["gates"] == ["f", "i", "c_tilde", "c", "o", "h"]
    assert code["metrics"]["bits_per_char"] <= 1.8 and code["examples"]
    assert cards["recall-gru"]["gates"] == ["z", "r", "h_tilde", "h"]
    assert client.get("/api/models/dyck").json()["hidden_size"] == 8


def test_a_trace_equals_the_core_exactly_in_plain_json(client):
    text = "def f(x):\n    return x"
    body = client.post("/api/trace", json={"model": "code", "text": text}).json()
    tr = model.load("code").trace(text)
    assert body["tokens"] == list(text) and body["unknown"] == []
    for g in ("f", "i", "c_tilde", "c", "o", "h"):
        assert np.array_equal(np.array(body["layers"][0][g], np.float32), tr.layers[0][g]), g
    top = body["probs"][-1]
    assert len(top) == 5 and top[0]["p"] >= top[1]["p"]
    assert top[0]["p"] == pytest.approx(float(tr.probs[-1].max()))


def test_unknown_characters_map_to_unk_and_are_reported(client):
    body = client.post("/api/trace", json={"model": "code", "text": "a = 'ä'"}).json()
    assert body["unknown"] == [5]


@pytest.mark.parametrize(
    ("payload", "status", "detail"),
    [
        ({"model": "nope", "text": "x"}, 404, "no model 'nope'"),
        ({"model": "code", "text": ""}, 422, "empty"),
        ({"model": "code", "text": "x" * 501}, 413, "at most 500"),
        ({"model": "code"}, 422, "exactly one of"),
        ({"model": "dyck", "text": "(()x"}, 422, "'x' at 3"),
        ({"model": "code", "vectors": [[0.0]]}, 422, "97 values"),
    ],
)
def test_client_mistakes_get_a_4xx_that_names_the_problem(client, payload, status, detail):
    r = client.post("/api/trace", json=payload)
    assert r.status_code == status, r.text
    assert detail in r.json()["detail"]


def test_an_unknown_model_card_is_a_404(client):
    r = client.get("/api/models/nope")
    assert r.status_code == 404 and "GET /api/models" in r.json()["detail"]


def test_the_stream_sends_a_header_then_one_line_per_step_equal_to_the_full_trace(client):
    import json

    text = "for i in range(3):\n    print(i)\n" * 3
    with client.stream("POST", "/api/trace/stream", json={"model": "code", "text": text}) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("application/jsonl")
        lines = [json.loads(line) for line in r.iter_lines() if line]
    output = {"kind": "next", "at": "every", "size": len(model.load("code").vocab), "labels": None}
    assert lines[0] == {"model": "code", "tokens": list(text), "directions": ["forward"], "output": output}
    steps = lines[1:]
    assert [s["t"] for s in steps] == list(range(len(text)))
    tr = model.load("code").trace(text)
    for g in ("f", "c", "h"):
        got = np.array([s["layers"][0][g] for s in steps], np.float32)
        np.testing.assert_allclose(got, tr.layers[0][g], atol=1e-6)  # chunked resumption, same numbers
    assert steps[-1]["probs"][0]["p"] == pytest.approx(float(tr.probs[-1].max()), abs=1e-6)


def test_a_stream_refuses_bad_input_before_its_first_line(client):
    r = client.post("/api/trace/stream", json={"model": "dyck", "text": "(a"})
    assert r.status_code == 422 and "'a' at 1" in r.json()["detail"]


def test_live_typing_sends_only_the_steps_after_the_first_change(client):
    net = model.load("code")
    with client.websocket_connect("/api/live") as ws:
        ws.send_json({"model": "code", "text": "def f(x):"})
        first = ws.receive_json()
        assert first["from"] == 0 and first["tokens"] == list("def f(x):")
        ws.send_json({"model": "code", "text": "def f(x):\n"})  # append one character
        second = ws.receive_json()
        assert second["from"] == 9 and second["tokens"] == ["\n"]
        ws.send_json({"model": "code", "text": "def g(x):\n"})  # an edit in the middle
        third = ws.receive_json()
        assert third["from"] == 4 and "".join(third["tokens"]) == "g(x):\n"
        full = net.trace("def g(x):\n")
        for g in ("f", "i", "c_tilde", "c", "o", "h"):
            np.testing.assert_allclose(np.array(third["layers"][0][g], np.float32), full.layers[0][g][4:], atol=1e-6)
        ws.send_json({"model": "dyck", "text": "(x"})
        assert "'x' at 1" in ws.receive_json()["error"]
        ws.send_json({"model": "nope", "text": "x"})
        assert "no model 'nope'" in ws.receive_json()["error"]


def test_the_compact_encoding_is_small_and_close(client):
    from app.encoding import unpack

    text = "class A:\n    def f(self):\n        return [1, 2]\n" * 4
    compact = client.post("/api/trace?encoding=compact", json={"model": "code", "text": text})
    plain = client.post("/api/trace", json={"model": "code", "text": text})
    tr = model.load("code").trace(text)
    layer = compact.json()["layers"][0]
    values = len(text) * 128 * 6
    packed = sum(len(layer[g]["data"]) for g in layer)
    assert packed / values <= 3  # bytes a value on the wire
    assert len(compact.content) < len(plain.content) / 4
    for g in ("f", "i", "o", "c_tilde", "c", "h"):  # C is unbounded: its precision is relative
        assert_compact_close(g, unpack(layer[g]), tr.layers[0][g])
    p = compact.json()["probs"]["p"]
    idx, best = tr.top(5)
    assert_compact_close("f", unpack(p), best)  # probabilities: steps over [0, 1] too


def test_an_unknown_encoding_is_a_422(client):
    r = client.post("/api/trace?encoding=xml", json={"model": "dyck", "text": "()"})
    assert r.status_code == 422


def test_a_trace_downloads_as_csv_and_npz(client):
    import csv
    import io

    tr = model.load("dyck").trace("(())")
    r = client.post("/api/trace?encoding=csv", json={"model": "dyck", "text": "(())"})
    assert r.status_code == 200 and 'filename="dyck-trace.csv"' in r.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert len(rows) == 4 * 8  # one row per step × unit
    assert float(rows[8 * 2 + 3]["c"]) == float(tr.layers[0]["c"][2, 3])
    r = client.post("/api/trace?encoding=npz", json={"model": "dyck", "text": "(())"})
    with np.load(io.BytesIO(r.content), allow_pickle=False) as z:
        np.testing.assert_array_equal(z["layer0/f"], tr.layers[0]["f"])
        assert z["tokens"].tolist() == ["(", "(", ")", ")"]


def test_compact_predictions_are_token_lists_and_packed_probabilities(client):
    from app.encoding import unpack

    net = model.load("code")
    tr = net.trace("import os\n")
    probs = client.post("/api/trace?encoding=compact", json={"model": "code", "text": "import os\n"}).json()["probs"]
    idx, p = tr.top(5)
    assert probs["tokens"] == [[net.vocab[j] for j in row] for row in idx]
    assert np.abs(unpack(probs["p"]) - p).max() <= 1e-4


def test_the_binary_encoding_is_two_bytes_a_value_and_aligned(client):
    import json
    import struct

    from app.encoding import loads_binary, unpack

    text = "for x in range(10):\n    print(x)\n"
    r = client.post("/api/trace?encoding=binary", json={"model": "code", "text": text})
    assert r.headers["content-type"] == "application/octet-stream"
    raw = r.content
    (n,) = struct.unpack("<I", raw[4:8])
    assert raw[:4] == b"GSC1" and n % 4 == 0
    body = loads_binary(raw)
    tr = model.load("code").trace(text)
    for g, packed in body["layers"][0].items():
        assert packed["dtype"] in ("u16", "f16") and packed["data"] and len(packed["data"]) == 2 * len(text) * 128
        assert_compact_close(g, unpack(packed), tr.layers[0][g])
    header = json.loads(raw[8 : 8 + n])
    assert all(p["data"]["offset"] % 4 == 0 for p in header["layers"][0].values())  # typed arrays read in place
    values = len(text) * 128 * 6
    assert len(raw) - 8 - n <= 2 * values + 2 * len(text) * 5 + 4 * 7  # gates, predictions, padding


def test_a_stream_ranks_predictions_once_per_chunk_not_once_per_step(client, monkeypatch):
    """Ranking the whole chunk's predictions for every line made 2,000 characters take 4.5 s instead of 1.9 s."""
    calls = []
    top = model.Trace.top
    monkeypatch.setattr(model.Trace, "top", lambda self, k: calls.append(len(self)) or top(self, k))
    text = "x = 1\n" * 80  # 480 steps: chunks of 1, 2, 4 ... 128 (255 steps), then 225
    with client.stream("POST", "/api/trace/stream", json={"model": "code", "text": text}) as r:
        lines = [json.loads(line) for line in r.iter_lines() if line]
    assert [line["t"] for line in lines[1:]] == list(range(len(text)))
    assert sum(calls) == len(text)  # every step ranked exactly once
    assert len(calls) == 9


def test_a_bug_in_the_core_is_a_logged_500_not_the_clients_fault(monkeypatch, caplog):
    """A ValueError from inside a trace (a NumPy bug, say) must not come back as a 422 blaming the input."""

    def broken(self, x, state=None, probs=True, stop=None):
        raise ValueError("operands could not be broadcast together")

    monkeypatch.setattr(model.Network, "trace", broken)
    with TestClient(create_app(), raise_server_exceptions=False) as c:
        r = c.post("/api/trace", json={"model": "code", "text": "x = 1"})
    assert r.status_code == 500 and "bug in gatescope" in r.json()["detail"]
    assert any("POST /api/trace failed" in rec.getMessage() and rec.exc_info for rec in caplog.records)


def test_the_cores_refusals_are_422s_with_its_words(monkeypatch):
    def refuses(self, x, state=None, probs=True, stop=None):
        raise model.InputError("layer 0: the state holds NaN or infinite values")

    monkeypatch.setattr(model.Network, "trace", refuses)
    with TestClient(create_app(), raise_server_exceptions=False) as c:
        r = c.post("/api/trace", json={"model": "code", "text": "x = 1"})
    assert r.status_code == 422 and r.json() == {"detail": "layer 0: the state holds NaN or infinite values"}


@pytest.mark.parametrize(
    ("body", "query", "words"),
    [
        ({"text": "x"}, "", "body.model: field required"),
        ({"model": "code", "vectors": [["a"]]}, "", "body.vectors.0.0"),
        ({"model": "code", "text": "x"}, "?encoding=xml", "query.encoding"),
        ("{not json", "", "json"),
    ],
)
def test_a_malformed_request_gets_one_sentence_as_every_refusal_does(client, body, query, words):
    """The schema says a refusal's detail is a string (Detail): FastAPI's own validation errors too."""
    if isinstance(body, str):
        r = client.post("/api/trace" + query, content=body, headers={"content-type": "application/json"})
    else:
        r = client.post("/api/trace" + query, json=body)
    assert r.status_code == 422 and isinstance(r.json()["detail"], str) and words in r.json()["detail"], r.json()


def test_a_body_over_the_limit_is_refused_before_it_is_read(monkeypatch):
    """A 200 MB JSON body used to cost 2 GB of memory before its 413."""
    traced = []
    trace = model.Network.trace
    monkeypatch.setattr(model.Network, "trace", lambda self, x, **kw: traced.append(1) or trace(self, x, **kw))
    with TestClient(create_app(Settings(max_body_mb=1))) as c:
        big = b'{"model": "code", "text": "' + b"x" * (2 << 20) + b'"}'
        r = c.post("/api/trace", content=big, headers={"content-type": "application/json"})
        assert r.status_code == 413 and "at most 1 MB" in r.json()["detail"]
        chunked = c.post("/api/trace", content=iter([b'{"model": "code",', b' "text": "x"}']))
        assert chunked.status_code == 411 and "Content-Length" in chunked.json()["detail"]
        assert c.post("/api/trace", json={"model": "code", "text": "x"}).status_code == 200
    assert traced == [1]  # only the last request was traced


def test_plain_json_and_csv_are_bounded_before_any_work(monkeypatch):
    """Four 20,000-character CSV requests kept the server busy for 116 s and took 4.3 GB."""
    traced = []
    trace = model.Network.trace
    monkeypatch.setattr(model.Network, "trace", lambda self, x, **kw: traced.append(1) or trace(self, x, **kw))
    with TestClient(create_app(Settings(max_plain_values=10 * 128 * 6))) as c:
        for encoding in ("json", "csv"):
            r = c.post(f"/api/trace?encoding={encoding}", json={"model": "code", "text": "x" * 11})
            assert r.status_code == 413 and "encoding=binary or npz" in r.json()["detail"], r.text
        assert traced == []  # refused before the trace was computed
        assert c.post("/api/trace?encoding=binary", json={"model": "code", "text": "x" * 11}).status_code == 200
        csv = c.post("/api/trace?encoding=csv", json={"model": "code", "text": "x" * 10})
        assert csv.status_code == 200 and len(csv.text.splitlines()) == 1 + 10 * 128
