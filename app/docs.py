"""GET /docs: the API's OpenAPI schema as a plain page, drawn here (FastAPI's Swagger UI would load
its scripts from a CDN, and gatescope works offline). The schema itself is at /openapi.json."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

router = APIRouter(include_in_schema=False)

METHODS = ("get", "post", "put", "delete", "patch")


def type_of(schema: dict[str, Any] | None) -> str:
    """A schema as a short type: `ModelCard`, `list[ModelCard]`, `string | null`, `"json" | "compact"`."""
    if not schema:
        return "any"
    if "$ref" in schema:
        return schema["$ref"].rsplit("/", 1)[-1]
    if "enum" in schema:
        return " | ".join(f'"{v}"' for v in schema["enum"])
    if "const" in schema:
        return f'"{schema["const"]}"'
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return " | ".join(type_of(s) for s in schema[key])
    kind = schema.get("type", "object")
    if kind == "array":
        return f"list[{type_of(schema.get('items'))}]"
    if kind == "object" and "additionalProperties" in schema:
        extra = schema["additionalProperties"]
        return f"dict[string, {type_of(extra) if isinstance(extra, dict) else 'any'}]"
    if schema.get("format") == "binary":
        return "file"
    return str(kind)


@router.get("/docs", response_class=HTMLResponse)
def show_docs(request: Request) -> HTMLResponse:
    """Every endpoint with its parameters, bodies and responses; every schema with its fields."""
    spec = request.app.openapi()
    ops = [
        {"method": m.upper(), "path": path, **op}
        for path, item in spec.get("paths", {}).items()
        for m, op in item.items()
        if m in METHODS
    ]
    templates = request.app.state.templates
    context = {"spec": spec, "ops": ops, "schemas": spec.get("components", {}).get("schemas", {}), "type_of": type_of}
    return templates.TemplateResponse(request, "docs.html", context)
