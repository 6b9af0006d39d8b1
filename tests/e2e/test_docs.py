"""/docs is the Swagger UI a FastAPI user expects, from this server's own files: every endpoint listed,
every schema typed, and "Try it out" answers from the running server. /redoc renders the same schema."""

from __future__ import annotations

import json
import urllib.request

import pytest
from playwright.sync_api import expect

from .conftest import ARTIFACTS, assert_clean

pytestmark = pytest.mark.e2e


def test_swagger_ui_lists_every_endpoint_and_tries_one_against_the_server(page, server):
    spec = json.load(urllib.request.urlopen(server + "/openapi.json"))
    page.goto(server + "/docs")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("gatescope")
    blocks = page.locator(".opblock")
    expect(blocks.first).to_be_visible()
    shown = {
        (b.locator(".opblock-summary-method").inner_text().lower(), b.locator(".opblock-summary-path").inner_text())
        for b in blocks.all()
    }
    wanted = {(m, p) for p, item in spec["paths"].items() for m in item}
    assert {(m, p.replace("\u200b", "")) for m, p in shown} == wanted

    models = page.locator("#operations-models-list_models_api_models_get")
    models.locator(".opblock-summary").click()
    models.get_by_role("button", name="Try it out").click()
    models.get_by_role("button", name="Execute").click()
    body = models.locator(".live-responses-table .response-col_description pre").first
    expect(body).to_contain_text('"id": "code"')
    expect(models.locator(".live-responses-table tr.response td.response-col_status").first).to_have_text("200")
    page.screenshot(path=str(ARTIFACTS / "docs-try-it-out.png"), full_page=False)
    assert_clean(page, server)


def _schema(page, name: str):
    """The Schemas section's entry for ``name`` (Swagger UI's JSON Schema 2020-12 view), expanded."""
    title = page.locator(".json-schema-2020-12__title", has_text=name)
    art = page.locator('article[data-json-schema-level="0"]', has=title)
    art.locator(".json-schema-2020-12-expand-deep-button").first.click()
    return art


def _fields(art) -> dict[str, str]:
    """Each top-level property's name -> the type and description Swagger UI shows for it."""
    rows = art.locator('article[data-json-schema-level="1"]')
    expect(rows.first).to_be_visible()
    out = {}
    for row in rows.all():
        name = row.locator(".json-schema-2020-12__title").first.inner_text().strip()
        out[name] = row.inner_text()
    return out


def test_swagger_ui_shows_each_schemas_field_types(page, server):
    page.goto(server + "/docs")
    expect(page.locator(".opblock").first).to_be_visible()
    request = _fields(_schema(page, "TraceRequest"))
    assert set(request) == {"model", "text", "vectors", "targets", "interventions"}, request
    assert "array<object> | null" in request["interventions"] and "units to hold" in request["interventions"]
    assert "string" in request["model"] and "a model id from /api/models" in request["model"]
    assert "string | null" in request["text"]
    assert "array<array<number>>" in request["vectors"]  # list[list[float]]: typed, never "any"
    assert "array<array<(number | null)>>" in request["targets"]  # a forecaster's known values, null where unknown
    card = _fields(_schema(page, "ModelCard"))
    assert "integer" in card["hidden_size"] and "units H in each layer" in card["hidden_size"]
    assert "any" not in " ".join(card.values()).split()
    page.screenshot(path=str(ARTIFACTS / "docs-schemas.png"))
    assert_clean(page, server)


def test_redoc_renders_the_schema_offline(page, server):
    page.goto(server + "/redoc")
    expect(page.get_by_text("Run a model over a text").first).to_be_visible(timeout=15_000)
    expect(page.get_by_text("/api/trace/stream").first).to_be_attached()
    expect(page.get_by_text("a model id from /api/models").first).to_be_attached()
    assert_clean(page, server)
