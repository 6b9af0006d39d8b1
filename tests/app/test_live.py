"""WS /api/live as the page uses it: compact steps, the selected unit's exact values, focus changes, limits."""

from __future__ import annotations

import json

import numpy as np
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.websockets import WebSocketDisconnect

import model
from app.encoding import unpack
from app.main import create_app
from app.registry import Entry
from app.settings import Settings
from model.trace import LINES
from tests.app.bounds import assert_compact_close


@pytest.fixture(scope="module")
def client():
    with TestClient(create_app(Settings(max_tokens=200, max_sessions=2))) as c:
        yield c


def edit(text: str, seq: int, **more):
    return {"seq": seq, "model": "code", "text": text, "encoding": "compact", **more}


def test_compact_edits_carry_new_steps_and_the_units_exact_values(client):
    net = model.load("code")
    with client.websocket_connect("/api/live") as ws:
        ws.send_json(edit("def f(x):", 1, focus={"layer": 0, "unit": 118}))
        first = ws.receive_json()
        assert (first["seq"], first["from"], first["length"]) == (1, 0, 9)
        ws.send_json(edit("def f(x):\n    return", 2, focus={"layer": 0, "unit": 118}))
        second = ws.receive_json()
        assert (second["seq"], second["from"], second["length"]) == (2, 9, 20)
        assert second["tokens"] == list("\n    return")
    full = net.trace("def f(x):\n    return")
    for g in net.gates:  # the compact steps are the full trace's last 11 steps
        got = unpack(second["layers"][0][g])
        assert got.shape == (11, 128)
        assert_compact_close(g, got, full.layers[0][g][9:])
    lines = second["focus"]["lines"]  # exact: the numbers a person reads
    assert second["focus"] == {"layer": 0, "unit": 118, "from": 9, "lines": lines}
    for g in net.gates:
        np.testing.assert_allclose(np.array(lines[g], np.float32), full.layers[0][g][9:, 118], rtol=0, atol=1e-6)
    np.testing.assert_allclose(np.array(lines["c_prev"], np.float32), full.layers[0]["c"][8:19, 118], rtol=0, atol=1e-6)
    probs = second["probs"]
    assert probs["k"] == 5 and len(probs["tokens"]) == 11
    p = unpack(probs["p"])
    idx, best = full.top(5)
    assert probs["tokens"][-1] == [net.vocab[j] for j in idx[-1]]
    assert np.abs(p - best[9:]).max() <= 1e-4


def test_a_focus_message_sends_another_units_values_over_the_whole_text(client):
    tr = model.load("code").trace("x = [1, 2]")
    with client.websocket_connect("/api/live") as ws:
        ws.send_json({"seq": 1, "focus": {"layer": 0, "unit": 3}})
        assert "before asking" in ws.receive_json()["error"]
        ws.send_json(edit("x = [1, 2]", 2))
        assert "focus" not in ws.receive_json()
        ws.send_json({"seq": 3, "focus": {"layer": 0, "unit": 77}})
        reply = ws.receive_json()
        assert reply["seq"] == 3 and reply["focus"]["from"] == 0
        np.testing.assert_array_equal(np.array(reply["focus"]["lines"]["o"], np.float32), tr.layers[0]["o"][:, 77])
        for bad, words in [({"layer": 1, "unit": 0}, "focus.layer"), ({"layer": 0, "unit": 128}, "0 to 127")]:
            ws.send_json({"seq": 4, "focus": bad})
            assert words in ws.receive_json()["error"]
        ws.send_json(edit("x = [1, 2]", 5, focus={"layer": 0, "unit": "7"}))
        assert "focus.unit" in ws.receive_json()["error"]
        ws.send_json(edit("x = [1, 2]", 6))  # the same text again: nothing new, the socket still works
        same = ws.receive_json()
        assert (same["from"], same["length"], same["tokens"]) == (10, 10, [])
        assert same["layers"][0]["f"]["shape"] == [0, 128]


def test_live_mistakes_name_the_problem_and_keep_the_socket(client):
    with client.websocket_connect("/api/live") as ws:
        for msg, words in [
            ({"seq": 1, "model": "code", "text": "x" * 201}, "201 tokens"),
            ({"seq": 2, "model": "code", "text": ""}, "the input is empty"),
            ({"seq": 6, "model": "code", "text": 5}, "'text' must be a string"),
            ({"seq": 3, "model": "code", "text": "x", "encoding": "xml"}, "encoding"),
            ({"seq": 4, "model": "nope", "text": "x"}, "no model 'nope'"),
            ([1, 2], "JSON object"),
            ({"seq": 5, "model": "dyck", "text": "(x)"}, "'x' at 1"),
        ]:
            ws.send_json(msg)
            reply = ws.receive_json()
            assert words in reply["error"], reply
        ws.send_text("{not json")
        assert "not JSON" in ws.receive_json()["error"]
        ws.send_json(edit("ok", 9))
        assert ws.receive_json()["length"] == 2


def test_the_gru_diagram_lines_follow_its_equations(client):
    with client.websocket_connect("/api/live") as ws:
        ws.send_json({"seq": 1, "model": "recall-gru", "text": "b123?", "focus": {"layer": 0, "unit": 2}})
        lines = ws.receive_json()["focus"]["lines"]
    z, h, h_prev = (np.array(lines[k]) for k in ("z", "h", "h_prev"))
    assert set(lines) == set(LINES["gru"])
    assert h_prev[0] == 0 and np.array_equal(h_prev[1:], h[:-1])
    np.testing.assert_allclose(np.array(lines["one_minus_z_h_prev"]) + np.array(lines["z_h_tilde"]), h, atol=1e-6)
    np.testing.assert_allclose(np.array(lines["one_minus_z"]), 1 - z, atol=1e-7)


def test_live_sessions_are_limited(client):
    with client.websocket_connect("/api/live"), client.websocket_connect("/api/live"):
        with client.websocket_connect("/api/live") as third:
            assert "at most 2 live sessions" in third.receive_json()["error"]
            with pytest.raises(WebSocketDisconnect) as closed:
                third.receive_json()
            assert closed.value.code == 1013
    with client.websocket_connect("/api/live") as again:  # closed sessions free their places
        again.send_json(edit("ok", 1))
        assert again.receive_json()["length"] == 2


def test_binary_frames_carry_the_same_steps_without_base64(client):
    from app.encoding import loads_binary

    with client.websocket_connect("/api/live") as ws:
        ws.send_json(edit("def f(x):", 1, focus={"layer": 0, "unit": 3}))
        compact = ws.receive_json()
        ws.send_json(edit("#", 2))  # reset the cache
        ws.receive_json()
        ws.send_json({**edit("def f(x):", 3, focus={"layer": 0, "unit": 3}), "encoding": "binary"})
        raw = ws.receive_bytes()
    assert raw[:4] == b"GSC1"
    binary = loads_binary(raw)
    assert binary["tokens"] == compact["tokens"] and binary["focus"]["lines"] == compact["focus"]["lines"]
    for g, packed in compact["layers"][0].items():
        np.testing.assert_array_equal(unpack(binary["layers"][0][g]), unpack(packed))
        assert len(binary["layers"][0][g]["data"]) == 2 * 9 * 128  # 2 bytes a value
    np.testing.assert_array_equal(unpack(binary["probs"]["p"]), unpack(compact["probs"]["p"]))


def test_a_long_reply_sent_in_parts_reassembles_to_exactly_the_unsplit_reply():
    """/api/live?parts=1: a binary reply over 1 MB comes as 1 MB parts (the browser reads each in a short task)."""
    import struct

    from app.encoding import PART_BYTES, join_parts

    text = "def f(x):\n    return (x + 1) * [y for y in x]\n" * 60  # 2,820 steps: ~4.4 MB of gates
    with TestClient(create_app(Settings(max_tokens=4000))) as c:
        with c.websocket_connect("/api/live") as ws:
            ws.send_json({**edit(text, 1), "encoding": "binary"})
            whole = ws.receive_bytes()
        with c.websocket_connect("/api/live?parts=1") as ws:
            ws.send_json({**edit("ok", 1), "encoding": "binary"})
            short = ws.receive_bytes()  # a short reply is one message, as without parts
            ws.send_json({**edit("#", 2), "encoding": "binary"})
            ws.receive_bytes()
            ws.send_json({**edit(text, 3), "encoding": "binary"})
            parts = [ws.receive_bytes()]
            count = struct.unpack("<II", parts[0][4:12])[1]
            parts += [ws.receive_bytes() for _ in range(count - 1)]
    assert short[:4] == b"GSC1"
    assert count == -(-len(whole) // PART_BYTES) >= 4
    assert [struct.unpack("<II", p[4:12]) for p in parts] == [(k, count) for k in range(count)]  # in order
    assert all(len(p) - 12 <= PART_BYTES for p in parts)
    assert join_parts(parts) == whole.replace(b'"seq": 1', b'"seq": 3', 1)


def test_any_sequence_of_edits_leaves_the_client_holding_the_full_trace():
    """Random inserts, deletions and replacements, applied the way the page applies replies (cut to
    "from", append), always add up to a fresh trace of the current text."""
    from app.api.live import Session

    net = model.load("code")
    entry = Entry(net, {})
    rng = np.random.default_rng(7)
    alphabet = list("abc (){}:=\n\t#'xyz0123")
    session, text = Session(), "def f(x):\n    return x\n"
    held: dict[str, np.ndarray] = {}
    for step in range(100):  # the text grows past the buffer's first capacities (64, then 2 × the length)
        kind, at = rng.choice(3, p=[0.5, 0.25, 0.25]), int(rng.integers(len(text) + 1))
        piece = "".join(rng.choice(alphabet, size=int(rng.integers(1, 9))))
        if kind == 0:
            text = text[:at] + piece + text[at:]
        elif kind == 1 and len(text) > 3:
            text = text[:at] + text[at + int(rng.integers(1, 4)) :]
        else:
            text = text[:at] + piece + text[at + len(piece) :]
        reply = session.update("code", entry, {"text": text, "encoding": "json"}, net.tokenizer.encode(text), 5)
        k = reply["from"]
        for g, rows in reply["layers"][0].items():
            new = np.array(rows, np.float32).reshape(-1, 128)
            held[g] = np.concatenate([held[g][:k], new]) if g in held else new
        full = net.trace(text)
        assert reply["length"] == len(full)
        for g in net.gates:
            np.testing.assert_allclose(held[g], full.layers[0][g], rtol=0, atol=2e-6, err_msg=f"edit {step}, {g}")
    assert len(text) > 150


def test_a_refused_edit_leaves_the_cache_as_it_was():
    from app.api.live import LiveError, Session

    net = model.load("code")
    entry, session = Entry(net, {}), Session()
    session.update("code", entry, {"text": "x = 1\n", "encoding": "json"}, net.tokenizer.encode("x = 1\n"), 5)
    with pytest.raises(LiveError, match="focus.unit"):  # a different text, refused for its focus
        msg = {"text": "y = 2\n", "encoding": "json", "focus": {"layer": 0, "unit": 999}}
        session.update("code", entry, msg, net.tokenizer.encode("y = 2\n"), 5)
    reply = session.update("code", entry, {"text": "x = 1\nz", "encoding": "json"}, net.tokenizer.encode("x = 1\nz"), 5)
    assert reply["from"] == 6  # the cache still holds "x = 1\n"
    full = net.trace("x = 1\nz")
    np.testing.assert_allclose(np.array(reply["layers"][0]["c"], np.float32), full.layers[0]["c"][6:], atol=2e-6)


def test_live_refusals_read_as_the_http_ones(client):
    """One check, one message: the socket and POST /api/trace refuse an input in the same words."""
    for body in [
        {"model": "nope", "text": "x"},
        {"model": "code", "text": "x" * 201},
        {"model": "dyck", "text": "(x"},
        {"model": "code", "text": ""},
    ]:
        http = client.post("/api/trace", json=body).json()["detail"]
        with client.websocket_connect("/api/live") as ws:
            ws.send_json({"seq": 1, **body})
            assert ws.receive_json()["error"] == http


def test_unknown_positions_are_in_the_whole_text_after_an_edit(tmp_path):
    """A model with an <unk> entry: an unknown token keeps its place in the whole text as edits append."""
    vocab = ["<unk>", *"ab "]
    spec = model.Spec(cell="lstm", input_size=4, hidden_size=3, vocab=vocab, tokenizer="char", embedding=False)
    rng = np.random.default_rng(0)
    params = {n: rng.normal(0, 0.5, spec.expected_shape(n)).astype(np.float32) for n in spec.param_names()}
    (tmp_path / "unk").mkdir()
    model.save(model.Network(spec, params), tmp_path / "unk" / "model.safetensors")
    settings = Settings(models_dir=tmp_path / "store", max_tokens=200)
    with TestClient(create_app(settings)) as c:
        c.app.state.registry.add("unk", Entry(model.load(tmp_path / "unk"), {}, "uploaded"))
        with c.websocket_connect("/api/live") as ws:
            ws.send_json({"seq": 1, "model": "unk", "text": "ab?a"})
            first = ws.receive_json()
            ws.send_json({"seq": 2, "model": "unk", "text": "ab?ab b!"})
            second = ws.receive_json()
            ws.send_json({"seq": 3, "model": "unk", "text": "ab?ab b"})  # the end deleted: nothing new
            third = ws.receive_json()
    assert first["unknown"] == [2]
    assert (second["from"], second["unknown"]) == (4, [2, 7])
    assert (third["from"], third["length"], third["unknown"]) == (7, 7, [2])


def test_a_bug_in_the_core_closes_the_socket_as_a_server_error(monkeypatch, caplog):
    """Not the client's mistake: logged, and the socket closes with 1011 instead of blaming the input."""

    def broken(self, x, state=None, probs=True, stop=None):
        raise ValueError("operands could not be broadcast together")  # a NumPy bug, say

    monkeypatch.setattr(model.Network, "trace", broken)
    with TestClient(create_app()) as c, c.websocket_connect("/api/live") as ws:
        ws.send_json(edit("x = 1", 1))
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
    assert closed.value.code == 1011
    assert any("live socket failed" in rec.getMessage() and rec.exc_info for rec in caplog.records)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
#: Messages that look like the protocol's, with any values in its fields.
NEAR = st.fixed_dictionaries(
    {},
    optional={
        "seq": JSON,
        "model": st.sampled_from(["code", "dyck", "nope"]) | JSON,
        "text": st.text(max_size=30) | JSON,
        "encoding": st.sampled_from(["json", "compact", "binary", "xml"]) | JSON,
        "focus": st.fixed_dictionaries({"layer": JSON, "unit": JSON}) | JSON,
    },
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    frames=st.lists(
        st.one_of(JSON.map(json.dumps), NEAR.map(json.dumps), st.text(max_size=30), st.binary(max_size=30)),
        min_size=1,
        max_size=5,
    )
)
def test_the_socket_answers_any_message_and_stays_open(client, frames):
    """After a valid edit, any frames (JSON values, protocol-like objects, non-JSON text, binary) each get a reply,
    and the socket still serves an edit afterwards."""
    with client.websocket_connect("/api/live") as ws:
        ws.send_json({"seq": 0, "model": "dyck", "text": "(()"})
        assert ws.receive_json()["length"] == 3
        for frame in frames:
            ws.send_bytes(frame) if isinstance(frame, bytes) else ws.send_text(frame)
            message = ws.receive()
            assert message["type"] == "websocket.send", message  # an answer, not a close
            if message.get("text") is not None:
                reply = json.loads(message["text"])
                assert "error" in reply or "length" in reply or "focus" in reply, reply
        ws.send_json({"seq": 99, "model": "dyck", "text": "(())"})
        assert ws.receive_json()["seq"] == 99
