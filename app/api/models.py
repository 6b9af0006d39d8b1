"""GET /api/models and /api/models/{id}: the model cards."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Request

from ..registry import Entry
from ..schemas import ModelCard

router = APIRouter(prefix="/api/models", tags=["models"])


def card_of(name: str, entry: Entry) -> dict[str, Any]:
    net, card = entry.net, entry.card
    return {
        "id": name,
        "cell": net.cell,
        "layers": net.num_layers,
        "hidden_size": net.hidden_size,
        "input": net.input,
        "gates": list(net.gates),
        "vocab": len(net.vocab) if net.vocab else None,
        "description": card.get("description", net.spec.meta.get("description", "")),
        "examples": card.get("examples", []),
        "metrics": card.get("heldout") or {},
        "telling_units": card.get("telling_units", {}),
        "command": card.get("command"),
    }


@router.get("", response_model=list[ModelCard])
def list_models(request: Request) -> list[dict[str, Any]]:
    """Every model the server can trace, with its card."""
    reg = request.app.state.registry
    return [card_of(n, reg.get(n)) for n in reg.names()]


@router.get("/{model_id}", response_model=ModelCard)
def get_model(model_id: str, request: Request) -> dict[str, Any]:
    """One model's card."""
    entry = request.app.state.registry.get(model_id)
    if entry is None:
        raise HTTPException(404, f"no model {model_id!r}; GET /api/models lists them")
    return card_of(model_id, entry)
