"""A model's attribution kernels are compiled beside the server when it is first traced (app/warm.py), never at
start-up, and GET /api/models/{id}/attribution says whether a first attribution would wait on that compile."""

from __future__ import annotations

import time

from fastapi.testclient import TestClient

from app.main import create_app
from app.settings import Settings

TEXT = "(()(()))"
#: Generous: a fresh compile of one kind is ~7 s of CPU, and the machine is shared.
WAIT_S = 240


def _kernels(client, name="dyck") -> dict:
    r = client.get(f"/api/models/{name}/attribution")
    assert r.status_code == 200, r.text
    return r.json()


def test_the_first_trace_compiles_the_kernels_in_a_child_and_an_attribution_waits_for_them(tmp_path, monkeypatch):
    cache = tmp_path / "numba"
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(cache))  # a fresh install's: nothing compiled yet
    with TestClient(create_app(Settings(warm_attribution=True))) as client:
        assert _kernels(client) == {"model": "dyck", "kind": "lstm", "cell": "LSTM", "kernels": "cold"}
        time.sleep(0.5)
        assert not cache.exists(), "nothing compiles at start-up"  # the start-up memory is the budget's base
        assert client.post("/api/trace", json={"model": "dyck", "text": TEXT}).status_code == 200
        assert _kernels(client)["kernels"] == "compiling"  # ~7 s of CPU: not done by the next request
        assert _kernels(client, "recall-gru")["kernels"] == "cold"  # another kind: only when it is traced
        # an attribution asked meanwhile waits for the child's compile, then loads what it left on disk
        r = client.post("/api/attribute", json={"model": "dyck", "text": TEXT, "t": 5})
        assert r.status_code == 200, r.text
        assert _kernels(client)["kernels"] == "ready"
        assert list(cache.rglob("backprop_kernels.*.nbi")), "the child left numba's cache behind"
        r = client.post("/api/attribute", json={"model": "dyck", "text": "((", "t": 1})
        assert r.status_code == 200 and len(r.json()["inputs"]) == 2
    # the next server on this install finds them in the cache: ready before any trace, and no child to start
    with TestClient(create_app(Settings(warm_attribution=True))) as client:
        assert _kernels(client)["kernels"] == "ready"
        assert client.post("/api/trace", json={"model": "dyck", "text": TEXT}).status_code == 200
        assert _kernels(client)["kernels"] == "ready"
        assert client.app.state.warmer._thread is None  # nothing was started


def test_the_warm_finishes_on_its_own_for_the_kind_traced_only(tmp_path, monkeypatch):
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path / "numba"))
    with TestClient(create_app(Settings(warm_attribution=True))) as client:
        assert client.post("/api/trace", json={"model": "recall-gru", "text": "a14159?"}).status_code == 200
        deadline = time.monotonic() + WAIT_S
        while _kernels(client, "recall-gru")["kernels"] == "compiling" and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _kernels(client, "recall-gru")["kernels"] == "ready"
        assert _kernels(client, "recall-gru")["cell"] == "GRU"
        assert _kernels(client, "dyck")["kernels"] == "cold"
        r = client.get("/api/models/nope/attribution")
        assert r.status_code == 404 and "nope" in r.json()["detail"]


def test_without_warming_the_first_attribution_compiles_here_and_then_says_ready(tmp_path, monkeypatch):
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path / "numba"))  # (this process may hold the kernels already)
    with TestClient(create_app(Settings(warm_attribution=False))) as client:
        assert client.post("/api/trace", json={"model": "dyck", "text": TEXT}).status_code == 200
        assert _kernels(client)["kernels"] == "cold"  # nothing warms it
        r = client.post("/api/attribute", json={"model": "dyck", "text": TEXT, "t": 3})
        assert r.status_code == 200, r.text
        assert _kernels(client)["kernels"] == "ready"


def test_the_child_refuses_an_unknown_kind():
    from model.warm import main

    assert main(["nope"]) == 2
