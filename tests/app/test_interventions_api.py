"""Interventions over the wire: POST /api/trace's "interventions" (json, compact, binary) and the live socket's."""

from __future__ import annotations

import numpy as np
import pytest
from fastapi.testclient import TestClient

import model
from app.encoding import loads_binary, unpack
from app.main import create_app
from app.settings import Settings

TEXT = "((()(()"
HOLD = {"layer": 0, "unit": 4, "gate": "c", "op": "set", "value": 0.076, "from": 2}


@pytest.fixture(scope="module")
def client():
    with TestClient(create_app(Settings(max_tokens=50, max_interventions=3))) as c:
        yield c


def trace(client, text=TEXT, interventions=None, encoding="json", **more):
    body = {"model": "dyck", "text": text, **more}
    if interventions is not None:
        body["interventions"] = interventions
    return client.post(f"/api/trace?encoding={encoding}", json=body)


def test_a_held_trace_carries_the_held_values_what_was_held_and_the_effect(client):
    net = model.load("dyck")
    r = trace(client, interventions=[HOLD])
    assert r.status_code == 200, r.text
    body = r.json()
    after, before = net.trace(TEXT, interventions=[HOLD]), net.trace(TEXT)
    np.testing.assert_allclose(body["layers"][0]["c"], after.layers[0]["c"], rtol=1e-6)
    assert [row[4] for row in body["layers"][0]["c"][2:]] == pytest.approx([0.076] * 5)
    assert body["intervened"] == [
        {"layer": 0, "units": [4], "gate": "c", "op": "set", "value": 0.076, "from": 2, "to": len(TEXT)}
    ]
    eff = body["effect"]
    ids = net.tokenizer.encode(TEXT).ids
    want_after = [float(after.probs[t, ids[t + 1]]) for t in range(len(TEXT) - 1)] + [None]
    assert eff["p_after"][:-1] == pytest.approx(want_after[:-1]) and eff["p_after"][-1] is None
    assert eff["p_before"][:2] == eff["p_after"][:2] and eff["dloglik"][:2] == [0.0, 0.0]
    top = {d["token"]: d["p"] for d in eff["top_after"][3]}
    assert top["$"] == pytest.approx(float(after.probs[3, 2])) and top["$"] > 0.2  # it may end here, held
    delta = np.array(eff["layers"][0]["c"])
    np.testing.assert_allclose(delta, after.layers[0]["c"] - before.layers[0]["c"], atol=1e-6)
    assert eff["probs_before"] is None and eff["values_after"] is None  # a next-token head: p and the top-k


@pytest.mark.parametrize("encoding", ["compact", "binary"])
def test_compact_and_binary_pack_the_effect(client, encoding):
    net = model.load("dyck")
    r = trace(client, interventions=[HOLD], encoding=encoding)
    assert r.status_code == 200, r.text
    body = r.json() if encoding == "compact" else loads_binary(r.content)
    after, before = net.trace(TEXT, interventions=[HOLD]), net.trace(TEXT)
    eff = body["effect"]
    p_after = unpack(eff["p_after"])
    ids = net.tokenizer.encode(TEXT).ids
    assert np.isnan(p_after[-1]) and p_after[3] == pytest.approx(after.probs[3, ids[4]], rel=1e-6)
    for g in net.gates:
        want = after.layers[0][g] - before.layers[0][g]
        np.testing.assert_allclose(unpack(eff["layers"][0][g]), want, atol=4e-3 if g == "c" else 1e-4, err_msg=g)
    idx, p = after.top(5)
    assert eff["top_after"]["tokens"][3] == [net.vocab[j] for j in idx[3]]
    np.testing.assert_allclose(unpack(eff["top_after"]["p"]), p, atol=1e-4)
    assert body["intervened"][0]["to"] == len(TEXT)


def test_an_empty_list_is_the_plain_trace_byte_for_byte(client):
    for encoding in ("json", "compact", "binary"):
        plain, empty = trace(client, encoding=encoding), trace(client, interventions=[], encoding=encoding)
        assert plain.status_code == empty.status_code == 200
        assert plain.content == empty.content


BAD = [
    ({**HOLD, "unit": 8}, "intervention 0: 'unit' 8 is out of range: layer 0 has units 0 to 7"),
    ({**HOLD, "layer": 1}, "intervention 0: 'layer' must be a layer from 0 to 0, got 1"),
    ({**HOLD, "layer": "0"}, "body.interventions.0.layer: input should be a valid integer"),
    ({**HOLD, "gate": "z"}, "intervention 0: 'gate' must be one of f, i, c_tilde, c, o, h for a lstm model, got 'z'"),
    ({**HOLD, "op": "hold"}, "body.interventions.0.op: input should be 'set', 'scale', 'zero' or 'patch'"),
    ({**HOLD, "value": None}, "intervention 0: 'value' must be a finite number"),
    ({**HOLD, "value": 1e300}, "intervention 0: 'value' must be a finite number from -1e+06 to 1e+06"),
    ({**HOLD, "from": 5, "to": 3}, "intervention 0: 'to' (3) must be after 'from' (5)"),
    ({**HOLD, "to": 20}, "intervention 0: steps 'from' 2 'to' 20 go past the input's end: it has 7 steps"),
    ({**HOLD, "op": "patch", "value": None}, "intervention 0: op 'patch' needs 'source_text'"),
    ({**HOLD, "op": "patch", "value": None, "source_text": "(("}, "'source_text' has 2 steps, and the patch needs 7"),
    ({**HOLD, "op": "patch", "value": None, "source_text": "((x((((("}, "'source_text': not in the model's vocabulary"),
    ({**HOLD, "step": 1}, "body.interventions.0.step: extra inputs are not permitted"),
    ({**HOLD, "units": [1, 2]}, "intervention 0: give exactly one of 'unit'"),
]


@pytest.mark.parametrize("item,words", BAD)
def test_bad_interventions_get_a_422_naming_the_intervention_and_the_field(client, item, words):
    r = trace(client, interventions=[item])
    assert r.status_code == 422, r.text
    assert words in r.json()["detail"]


@pytest.mark.parametrize("item,words", BAD)
def test_the_check_refuses_what_the_trace_refuses_in_the_same_words(client, item, words):
    """POST /api/trace/check (the hold menu asks it before holding) answers as POST /api/trace would."""
    r = client.post("/api/trace/check", json={"model": "dyck", "text": TEXT, "interventions": [item]})
    assert r.status_code == 422, r.text
    assert words in r.json()["detail"]
    assert r.json()["detail"] == trace(client, interventions=[item]).json()["detail"]


def test_the_check_passes_what_the_trace_runs_and_refuses_long_sources_with_413(client):
    patch = {**HOLD, "op": "patch", "value": None, "source_text": "(()(()(", "to": 7}
    r = client.post("/api/trace/check", json={"model": "dyck", "text": TEXT, "interventions": [HOLD, patch]})
    assert r.status_code == 200, r.text
    assert r.json() == {"steps": len(TEXT), "interventions": 2}
    long = {**patch, "source_text": "(" * 51}
    r = client.post("/api/trace/check", json={"model": "dyck", "text": TEXT, "interventions": [long]})
    assert r.status_code == 413 and "patch source texts have 51 tokens together" in r.json()["detail"]


def test_limits_on_interventions(client):
    r = trace(client, interventions=[HOLD] * 4)
    assert r.status_code == 422 and "4 interventions; this server runs at most 3" in r.json()["detail"]
    long = "(" * 51
    r = trace(client, interventions=[{**HOLD, "op": "patch", "value": None, "source_text": long}])
    assert r.status_code == 413 and "patch source texts have 51 tokens together" in r.json()["detail"]
    r = client.post("/api/trace", json={"model": "dyck", "text": TEXT, "interventions": {"layer": 0}})
    assert r.status_code == 422


def test_patching_over_the_api_takes_the_source_texts_values(client):
    net = model.load("dyck")
    source = "()()()()"
    its = [{"layer": 0, "units": [2, 4], "gate": "h", "op": "patch", "source_text": source, "from": 1, "to": 6}]
    body = trace(client, interventions=its).json()
    src = net.trace(source)
    np.testing.assert_allclose(np.array(body["layers"][0]["h"])[1:6, [2, 4]], src.layers[0]["h"][1:6, [2, 4]])


def test_the_live_socket_takes_interventions_and_sends_the_new_steps_effect(client):
    net = model.load("dyck")
    with client.websocket_connect("/api/live") as ws:
        ws.send_json({"seq": 1, "model": "dyck", "text": TEXT[:4]})
        first = ws.receive_json()
        assert "effect" not in first and "intervened" not in first
        ws.send_json({"seq": 2, "model": "dyck", "text": TEXT, "interventions": [HOLD]})
        held = ws.receive_json()
        assert held["from"] == 2  # the hold starts at step 2: the steps before it are kept
        whole = net.trace(TEXT, interventions=[HOLD])
        np.testing.assert_allclose(held["layers"][0]["c"], whole.layers[0]["c"][2:], rtol=1e-6)
        assert held["intervened"][0]["from"] == 2 and held["intervened"][0]["to"] == len(TEXT)
        delta = np.array(held["effect"]["layers"][0]["c"])
        np.testing.assert_allclose(delta, (whole.layers[0]["c"] - net.trace(TEXT).layers[0]["c"])[2:], atol=1e-6)
        assert len(held["effect"]["p_after"]) == len(TEXT) - 2
        ws.send_json({"seq": 3, "model": "dyck", "text": TEXT + ")", "interventions": [HOLD], "encoding": "compact"})
        more = ws.receive_json()
        assert more["from"] == len(TEXT) and unpack(more["effect"]["layers"][0]["c"]).shape == (1, 8)
        ws.send_json({"seq": 4, "model": "dyck", "text": TEXT, "interventions": [{**HOLD, "unit": 9}]})
        words = "intervention 0: 'unit' 9 is out of range: layer 0 has units 0 to 7"
        assert ws.receive_json() == {"seq": 4, "error": words}
        ws.send_json({"seq": 5, "model": "dyck", "text": TEXT, "interventions": [{**HOLD, "layer": "x"}]})
        assert ws.receive_json()["error"] == "interventions.0.layer: input should be a valid integer"
        ws.send_json({"seq": 6, "model": "dyck", "text": TEXT, "interventions": []})
        plain = ws.receive_json()  # back to plain from the first held step
        assert plain["from"] == 2 and "effect" not in plain
        np.testing.assert_allclose(plain["layers"][0]["c"], net.trace(TEXT).layers[0]["c"][2:], rtol=1e-6)


def test_the_live_socket_without_the_effect_sends_the_held_run_and_what_it_held_only(client):
    """ "effect": false (the page's: its panel asks POST /api/trace for the effect): the same held values and
    marks, no effect, and no plain run kept beside the held one."""
    net = model.load("dyck")
    with client.websocket_connect("/api/live") as ws:
        ws.send_json({"seq": 1, "model": "dyck", "text": TEXT, "interventions": [HOLD], "effect": False})
        held = ws.receive_json()
        whole = net.trace(TEXT, interventions=[HOLD])
        np.testing.assert_allclose(held["layers"][0]["c"], whole.layers[0]["c"], rtol=1e-6)
        assert held["intervened"][0]["from"] == 2 and held["intervened"][0]["to"] == len(TEXT)
        assert "effect" not in held
        ws.send_json({"seq": 2, "model": "dyck", "text": TEXT + ")", "interventions": [HOLD], "effect": False})
        more = ws.receive_json()
        assert more["from"] == len(TEXT) and more["intervened"][0]["to"] == len(TEXT) + 1 and "effect" not in more
        np.testing.assert_allclose(
            more["layers"][0]["c"], net.trace(TEXT + ")", interventions=[HOLD]).layers[0]["c"][-1:], rtol=1e-6
        )


MALFORMED = [
    "x", 5, {"layer": 0}, [None], [[1]], [{**HOLD, "unit": True}], [{**HOLD, "units": [10**30]}],
    [{**HOLD, "value": 10**400}], [{**HOLD, "from": 10**30}], [{**HOLD, "to": -(10**30)}],
    [{**HOLD, "gate": ["c"]}], [{**HOLD, "op": "patch", "value": None, "source_text": ""}],
    [{**HOLD, "op": "patch", "value": None, "source_text": 5}], [{**HOLD, "gate": "f", "value": 1e6}] * 3,
]  # fmt: skip


def test_no_malformed_intervention_is_a_server_error(client):
    """(The client raises a server bug as an exception: a 500 would fail here too.)"""
    for bad in MALFORMED:
        r = client.post("/api/trace", json={"model": "dyck", "text": "(" * 30, "interventions": bad})
        assert r.status_code == 422 and r.json()["detail"], (bad, r.text)
    with client.websocket_connect("/api/live") as ws:
        for n, bad in enumerate(MALFORMED):
            ws.send_json({"seq": n, "model": "dyck", "text": "(" * 30, "interventions": bad})
            reply = ws.receive_json()
            assert reply["seq"] == n and reply["error"], (bad, reply)


def test_an_impossible_next_token_is_null_in_json_not_infinity(client):
    """Held h of 1e6 drives the next token's probability to 0: log 0 is -inf, which JSON cannot carry."""
    its = [{"layer": 0, "units": list(range(8)), "gate": "h", "op": "set", "value": 1e6}]
    r = trace(client, text="(())", interventions=its)
    assert r.status_code == 200 and "Infinity" not in r.text and "NaN" not in r.text
    dloglik = r.json()["effect"]["dloglik"]
    assert dloglik[-1] is None and any(v is None for v in dloglik[:-1]), dloglik
