"""WS /api/live for a vector model: the series sent as CSV text, traced live; an edit traces only the rows
from the first one that changed, and the reply carries the series as read and the predicted values."""

from __future__ import annotations

import numpy as np
import pytest
from fastapi.testclient import TestClient

import model
from app.main import create_app
from app.registry import Entry
from app.settings import Settings


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    spec = model.Spec(cell="lstm", input_size=2, hidden_size=3, output_size=1)
    spec.head = "values"
    rng = np.random.default_rng(0)
    params = {n: rng.normal(0, 0.5, spec.expected_shape(n)).astype(np.float32) for n in spec.param_names()}
    net = model.Network(spec, params)
    with TestClient(create_app(Settings(models_dir=tmp_path_factory.mktemp("vec") / "store", max_tokens=50))) as c:
        c.app.state.registry.add("vec", Entry(net, {}, "uploaded"))
        yield c, net


def csv(rows, header="a,b"):
    return header + "\n" + "".join(f"{a},{b}\n" for a, b in rows)


ROWS = [[0.5, 1.0], [1.5, -2.0], [0.25, 0.0], [3.0, 1.0]]


def test_appended_rows_are_the_only_steps_traced(client):
    c, net = client
    with c.websocket_connect("/api/live") as ws:
        ws.send_json({"seq": 1, "model": "vec", "csv": csv(ROWS[:3])})
        first = ws.receive_json()
        ws.send_json({"seq": 2, "model": "vec", "csv": csv(ROWS)})  # a row appended
        second = ws.receive_json()
        changed = [ROWS[0], [9.0, 9.0], *ROWS[2:]]
        ws.send_json({"seq": 3, "model": "vec", "csv": csv(changed)})  # row 2 (step 1) edited
        third = ws.receive_json()
    assert "error" not in first, first
    assert (first["from"], first["length"], first["tokens"]) == (0, 3, ["0", "1", "2"])
    assert (second["from"], second["length"], second["tokens"]) == (3, 4, ["3"])
    assert (third["from"], third["length"]) == (1, 4)
    assert second["inputs"] == {"names": ["a", "b"], "rows": [ROWS[3]]}
    assert third["inputs"]["rows"] == changed[1:]
    full = net.trace(np.array(changed))
    np.testing.assert_allclose(np.array(third["layers"][0]["h"], np.float32), full.layers[0]["h"][1:], atol=1e-6)
    want = full.layers[0]["h"] @ net.params["head.W"] + net.params["head.b"]  # (T, 1) the values head
    np.testing.assert_allclose(np.array(third["values"]), want[1:], atol=1e-6)


@pytest.mark.parametrize(
    ("msg", "message"),
    [
        ({"csv": "a,b\n1,2\n3,x\n"}, "row 3, column 2: 'x' is not a number"),
        ({"csv": "1,2,3\n"}, "each input vector must have 2 values, got 3"),
        ({"csv": ""}, "the CSV is empty"),
        ({"csv": 5}, "'csv' must be the series as CSV text"),
        ({"csv": "1,2\n", "text": "ab"}, "not both"),
        ({"csv": "1,2\n" * 51}, "traces at most 50"),
        ({"model": "dyck", "csv": "1,2\n"}, "takes text, not a series"),
    ],
)
def test_a_bad_series_is_an_error_reply_and_the_socket_stays(client, msg, message):
    c, _ = client
    with c.websocket_connect("/api/live") as ws:
        ws.send_json({"seq": 1, "model": "vec", **msg})
        reply = ws.receive_json()
        assert reply["seq"] == 1 and message in reply["error"]
        ws.send_json({"seq": 2, "model": "vec", "csv": csv(ROWS)})  # the socket still answers
        assert ws.receive_json()["length"] == 4


def test_a_series_file_comes_back_as_the_csv_the_page_edits(client, tmp_path):
    """POST /api/series: an .npy file (1-D: one feature) becomes CSV text that reads back to the same values."""
    import io

    from model.series import read_csv

    c, _ = client
    buf = io.BytesIO()
    x = np.array([[0.1, 2.0], [1e-9, -3.5], [np.pi, 4.0]])
    np.save(buf, x)
    got = c.post("/api/series?name=walk.npy", content=buf.getvalue()).json()
    assert (got["steps"], got["features"], got["names"]) == (3, 2, None)
    assert np.array_equal(read_csv(got["csv"])[0], x)  # exact: every float64 round-trips
    got = c.post("/api/series?name=s.csv", content=b"v;w\n1;2\n").json()
    assert got["csv"] == "v,w\n1.0,2.0\n" and got["names"] == ["v", "w"]


@pytest.mark.parametrize(
    ("name", "body", "message"),
    [
        ("s.csv", b"a,b\n1,2\n3\n", "row 3 has 1 values, the first row 2"),
        ("s.npy", b"\x93NUMPY garbage", "the .npy file does not read"),
        ("s.csv", b"", "the body is empty"),
    ],
)
def test_a_bad_series_file_is_a_422_naming_it(client, name, body, message):
    c, _ = client
    r = c.post(f"/api/series?name={name}", content=body)
    assert r.status_code == 422 and message in r.json()["detail"]


def test_a_forecasters_targets_follow_appended_rows(tmp_path):
    """A forecaster (meta: output 0 predicts input column 1 one step on): appending a row makes the previous
    step's target known, so the reply's targets start one step before the new rows."""
    spec = model.Spec(cell="gru", input_size=2, hidden_size=3, output_size=1)
    spec.head, spec.meta = "values", {"targets": {"columns": [1], "shift": 1}}
    rng = np.random.default_rng(1)
    params = {n: rng.normal(0, 0.5, spec.expected_shape(n)).astype(np.float32) for n in spec.param_names()}
    with TestClient(create_app(Settings(models_dir=tmp_path / "store"))) as c:
        c.app.state.registry.add("fc", Entry(model.Network(spec, params), {}, "uploaded"))
        with c.websocket_connect("/api/live") as ws:
            ws.send_json({"seq": 1, "model": "fc", "csv": csv(ROWS[:3])})
            first = ws.receive_json()
            ws.send_json({"seq": 2, "model": "fc", "csv": csv(ROWS)})
            second = ws.receive_json()
    assert (first["targets_from"], first["targets"]) == (0, [[-2.0], [0.0], [None]])  # column b, one row on
    assert (second["from"], second["targets_from"], second["targets"]) == (3, 2, [[1.0], [None]])
