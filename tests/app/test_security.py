"""The local server's security model: no other web page can drive it (Host, Origin), a token off loopback,
and hardening headers on every response."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from starlette.testclient import WebSocketDenialResponse
from starlette.websockets import WebSocketDisconnect

from app.cli import serve_env
from app.main import create_app
from app.settings import Settings

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
EVIL = "http://evil.example"


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    models = tmp_path_factory.mktemp("models")
    with TestClient(create_app(Settings(models_dir=models, uploads=True))) as c:
        yield c


def upload(client, **headers):
    weights = (FIXTURES / "onnx/peephole.onnx").read_bytes()
    return client.post("/api/models", files={"file": ("p.onnx", weights)}, headers=headers)


@pytest.mark.parametrize("host", ["evil.example", "evil.example:8000", "127.0.0.1.nip.io", "192.168.1.5:8000"])
def test_a_rebinding_host_name_is_refused(client, host):
    r = client.get("/api/models", headers={"host": host})
    assert r.status_code == 403 and "host name" in r.json()["detail"]
    assert client.get("/", headers={"host": host}).status_code == 403


@pytest.mark.parametrize("host", ["127.0.0.1:8000", "localhost:8000", "[::1]:8000", "localhost"])
def test_loopback_names_are_served(client, host):
    assert client.get("/api/models", headers={"host": host}).status_code == 200


def test_a_cross_origin_upload_and_delete_are_refused_and_change_nothing(client):
    before = [c["id"] for c in client.get("/api/models").json()]
    r = upload(client, origin=EVIL)
    assert r.status_code == 403 and "evil.example" in r.json()["detail"]
    assert [c["id"] for c in client.get("/api/models").json()] == before
    ok = upload(client, origin="http://testserver")  # the server's own page
    assert ok.status_code == 201, ok.text
    model_id = ok.json()["id"]
    assert client.delete(f"/api/models/{model_id}", headers={"origin": EVIL}).status_code == 403
    assert model_id in [c["id"] for c in client.get("/api/models").json()]
    assert client.delete(f"/api/models/{model_id}", headers={"origin": "http://testserver"}).status_code == 204


def test_a_cross_origin_trace_is_refused(client):
    r = client.post("/api/trace", json={"model": "dyck", "text": "()"}, headers={"origin": EVIL})
    assert r.status_code == 403


def test_a_cross_origin_socket_is_refused_and_the_servers_own_is_served(client):
    with pytest.raises((WebSocketDenialResponse, WebSocketDisconnect)):
        with client.websocket_connect("/api/live", headers={"origin": EVIL}) as ws:
            ws.send_json({"seq": 1, "model": "dyck", "text": "()"})
            ws.receive_json()
    with client.websocket_connect("/api/live", headers={"origin": "http://testserver"}) as ws:
        ws.send_json({"seq": 1, "model": "dyck", "text": "()"})
        assert ws.receive_json()["length"] == 2


@pytest.mark.parametrize("path", ["/", "/api/models", "/static/js/main.js", "/docs", "/openapi.json", "/api/nope"])
def test_every_response_carries_the_hardening_headers(client, path):
    r = client.get(path)
    csp = r.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp and "script-src 'self'" in csp
    assert "unsafe-eval" not in csp and "'unsafe-inline'" not in csp.split("script-src")[1].split(";")[0]
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["x-frame-options"] == "DENY"
    assert r.headers["referrer-policy"] == "no-referrer"
    assert r.headers["cross-origin-opener-policy"] == "same-origin"
    assert r.headers["cross-origin-resource-policy"] == "same-origin"
    refused = client.get(path, headers={"host": "evil.example"})
    assert refused.headers["x-frame-options"] == "DENY" and "content-security-policy" in refused.headers


def test_the_docs_page_allows_only_its_own_inline_script():
    with TestClient(create_app()) as c:
        csp = c.get("/docs").headers["content-security-policy"]
    script_src = csp.split("script-src")[1].split(";")[0].split()
    assert script_src[0] == "'self'" and len(script_src) == 2 and script_src[1].startswith("'sha256-")


def test_with_a_token_every_request_needs_it(tmp_path):
    settings = Settings(models_dir=tmp_path, token="s3cret-token", host="0.0.0.0")
    with TestClient(create_app(settings)) as c:
        assert c.get("/api/models").status_code == 403
        assert "token" in c.get("/").json()["detail"]
        assert c.get("/api/models", headers={"authorization": "token wrong"}).status_code == 403
        assert c.get("/api/models", headers={"authorization": "token s3cret-token"}).status_code == 200
        page = c.get("/?token=s3cret-token")  # the URL `gatescope serve` prints
        assert page.status_code == 200 and "gatescope_token=s3cret-token" in page.headers["set-cookie"]
        assert c.get("/api/models").status_code == 200  # the page's own requests carry the cookie
        with c.websocket_connect("/api/live") as ws:
            ws.send_json({"seq": 1, "model": "dyck", "text": "()"})
            assert ws.receive_json()["length"] == 2
        assert c.get("/api/models", headers={"host": "10.0.0.7:8000"}).status_code == 200  # other machines' name
    with TestClient(create_app(settings)) as fresh, pytest.raises((WebSocketDenialResponse, WebSocketDisconnect)):
        with fresh.websocket_connect("/api/live") as ws:
            ws.receive_json()


def _serve_args(host: str) -> argparse.Namespace:
    return argparse.Namespace(host=host, port=8000, models=None, uploads=None, workers=1)


def test_serve_requires_a_token_off_loopback_and_prints_the_url_that_carries_it():
    env, url = serve_env(_serve_args("127.0.0.1"), {})
    assert "GATESCOPE_TOKEN" not in env and url == "http://127.0.0.1:8000/"
    env, url = serve_env(_serve_args("0.0.0.0"), {})
    token = env["GATESCOPE_TOKEN"]
    assert len(token) >= 24 and url == f"http://0.0.0.0:8000/?token={token}"
    assert serve_env(_serve_args("0.0.0.0"), {})[0]["GATESCOPE_TOKEN"] != token  # a new one each start
    assert serve_env(_serve_args("0.0.0.0"), {"GATESCOPE_TOKEN": "mine"})[0]["GATESCOPE_TOKEN"] == "mine"
