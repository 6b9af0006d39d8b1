"""The app object: built by create_app, the page renders, the schema exists."""

from __future__ import annotations

from fastapi.testclient import TestClient

from app.main import create_app


def test_page_renders_and_names_what_exists():
    with TestClient(create_app()) as client:
        r = client.get("/")
        assert r.status_code == 200
        assert "gatescope" in r.text
        assert 'href="http://testserver/static/css/main.css"' in r.text
        assert client.get("/static/css/main.css").status_code == 200
        assert client.get("/openapi.json").json()["info"]["title"] == "gatescope"
