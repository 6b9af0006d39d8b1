"""POST /api/trace: every gate of every layer at every step, as plain JSON."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Request

from ..encoding import trace_json
from ..schemas import TraceRequest, TraceResponse

router = APIRouter(prefix="/api", tags=["trace"])


@router.post("/trace", response_model=TraceResponse)
def trace_text(body: TraceRequest, request: Request) -> dict[str, Any]:
    """Run a model over a text (or vectors) and return every gate at every step."""
    settings = request.app.state.settings
    entry = request.app.state.registry.get(body.model)
    if entry is None:
        raise HTTPException(404, f"no model {body.model!r}; GET /api/models lists them")
    net = entry.net
    if (body.text is None) == (body.vectors is None):
        raise HTTPException(422, "give exactly one of 'text' (text models) or 'vectors' (vector models)")
    if body.text is not None:
        if net.tokenizer is None:
            raise HTTPException(422, f"model {body.model!r} takes vectors, not text")
        n = len(net.tokenizer.split(body.text))
        x: Any = body.text
    else:
        n = len(body.vectors or [])
        x = body.vectors
    if n > settings.max_tokens:
        raise HTTPException(413, f"the input has {n} tokens; this server traces at most {settings.max_tokens}")
    try:
        tr = net.trace(x)
    except (ValueError, TypeError) as e:  # empty input, unknown tokens, wrong shapes, NaN
        raise HTTPException(422, str(e)) from None
    return trace_json(body.model, net, tr, settings.top_k)
