"""The app object: built by create_app, the page renders with every asset it links, the schema exists."""

from __future__ import annotations

import re

import pytest
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


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_the_api_docs_load_every_asset_from_this_server(page):
    """Swagger UI and ReDoc come from the installed fastapi-offline package: nothing from a CDN."""
    with TestClient(create_app()) as client:
        r = client.get(page)
        assert r.status_code == 200 and "/openapi.json" in r.text
        assets = re.findall(r'<(?:script|img)[^>]* src="([^"]+)"|<link[^>]* href="([^"]+)"', r.text)
        assets = [a or b for a, b in assets] + re.findall(r"(?:url|href): '([^']+)'", r.text)
        assert any(a.endswith(".js") for a in assets)
        for asset in assets:
            assert asset.startswith("/"), f"{page} loads {asset} from another host"
            assert client.get(asset).status_code == 200, asset
        assert "validator.swagger.io" not in r.text and "fonts.googleapis" not in r.text


def _types(schema: dict, where: str) -> list[str]:
    """Every place under ``schema`` where a value has no type: what Swagger UI would show as "any"."""
    if "$ref" in schema or "type" in schema or "const" in schema or "enum" in schema:
        missing = []
        for name, prop in schema.get("properties", {}).items():
            missing += _types(prop, f"{where}.{name}")
        if isinstance(schema.get("items"), dict):
            missing += _types(schema["items"], f"{where}[]")
        if isinstance(schema.get("additionalProperties"), dict):
            missing += _types(schema["additionalProperties"], f"{where}{{}}")
        return missing
    for key in ("anyOf", "oneOf", "allOf"):
        if key in schema:
            return [m for s in schema[key] for m in _types(s, where)]
    return [where]


def test_the_schema_gives_every_field_a_type_and_a_description():
    """What /docs shows: every request and response field typed (none "any") and explained."""
    with TestClient(create_app()) as client:
        spec = client.get("/openapi.json").json()
    schemas = spec["components"]["schemas"]
    for name in ("ModelCard", "TraceRequest", "TraceResponse", "Prediction", "Detail"):
        assert schemas[name].get("description"), f"{name} has no description"
        for field, prop in schemas[name]["properties"].items():
            assert prop.get("description"), f"{name}.{field} has no description"
    untyped = [
        m
        for name, s in schemas.items()
        if not name.startswith(("HTTPValidationError", "ValidationError"))
        for m in _types(s, name)
    ]
    assert untyped == []
    for path, item in spec["paths"].items():
        for method, op in item.items():
            assert op.get("summary") and op.get("description"), (method, path)
            if path.startswith("/api/trace") or method != "get":
                assert "422" in op["responses"], (method, path)
    assert "the input has more tokens" in spec["paths"]["/api/trace"]["post"]["responses"]["413"]["description"]
