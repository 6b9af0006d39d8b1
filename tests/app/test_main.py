"""The app object: built by create_app, the page renders with every asset it links, the schema exists."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from app.main import create_app
from app.settings import Settings


def test_page_renders_and_every_asset_it_links_is_served_here():
    with TestClient(create_app(Settings(default_model="dyck"))) as client:
        r = client.get("/")
        assert r.status_code == 200
        assert 'data-default-model="dyck"' in r.text
        links = re.findall(r'<(?:script|img)[^>]* src="([^"]+)"|<link[^>]* href="([^"]+)"', r.text)
        links = [a or b for a, b in links]  # assets the page loads (a hyperlink to colah's post is no asset)
        assert any(link.endswith("main.js") for link in links) and any(link.endswith("main.css") for link in links)
        for link in links:
            assert link.startswith(("http://testserver/", "/")), f"the page links off the server: {link}"
            assert client.get(link).status_code == 200, link
        js = client.get("/vendor/plotly.min.js")  # from the installed plotly package: no CDN
        assert js.status_code == 200 and len(js.content) > 1_000_000 and "javascript" in js.headers["content-type"]
        assert client.get("/openapi.json").json()["info"]["title"] == "gatescope"


def test_every_module_the_page_imports_exists():
    with TestClient(create_app()) as client:
        seen, todo = set(), ["/static/js/main.js"]
        while todo:
            path = todo.pop()
            r = client.get(path)
            assert r.status_code == 200, path
            seen.add(path)
            for name in re.findall(r'(?:from |import\()"\./([\w-]+\.js)"', r.text):
                target = f"/static/js/{name}"
                if target not in seen:
                    todo.append(target)
        assert {"/static/js/diagram.js", "/static/js/heatmaps.js", "/static/js/api.js"} <= seen


def test_the_docs_page_shows_every_endpoint_and_refusal_without_a_cdn():
    with TestClient(create_app()) as client:
        spec = client.get("/openapi.json").json()
        page = client.get("/docs")
    assert page.status_code == 200
    for path, item in spec["paths"].items():
        for method in item:
            assert f"{method.upper()}</span> <code>{path}</code>" in page.text, (method, path)
    assert "413" in page.text and "the input has more tokens" in page.text
    assert "TraceRequest" in page.text and "multipart/form-data" in page.text
    assets = re.findall(r'<(?:script|img)[^>]* src="([^"]+)"|<link[^>]* href="([^"]+)"', page.text)
    assert all((a or b).startswith(("http://testserver/", "/")) for a, b in assets)  # nothing from a CDN
