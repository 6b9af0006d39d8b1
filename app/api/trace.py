"""POST /api/trace: every gate of every layer at every step, as plain JSON;
POST /api/trace/stream: the same as JSON Lines, a line per step, sent as computed."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import numpy as np
from fastapi import APIRouter, Depends, HTTPException, Request, Response

import model

from ..encoding import dumps_binary, dumps_compact, steps_json, trace_compact, trace_csv, trace_json, trace_npz
from ..schemas import TraceRequest, TraceResponse, errors

router = APIRouter(prefix="/api", tags=["trace"])

#: Steps per chunk of a stream: the first line leaves after one step, later chunks double up to this.
MAX_CHUNK = 256


@dataclass
class Job:
    name: str
    net: model.Network
    x: Any  # the text or the (T, D) vectors
    tokens: list[str]
    top_k: int


async def prepare(body: TraceRequest, request: Request) -> Job:
    """Check a trace request before any work (and before a stream's first byte); async: on the event loop,
    saving a thread hop (it only tokenizes)."""
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
    if n == 0:
        raise HTTPException(422, "the input is empty: nothing to trace")
    try:
        if isinstance(x, str):
            tokens = net.tokenizer.encode(x).tokens  # type: ignore[union-attr]  # raises on unknown tokens
        else:
            x = net.check_vectors(x)
            tokens = [str(t) for t in range(len(x))]
    except (ValueError, TypeError) as e:  # unknown tokens, wrong shapes, NaN
        raise HTTPException(422, str(e)) from None
    return Job(body.model, net, x, tokens, settings.top_k)


@router.post("/trace", response_model=None, responses={200: {"model": TraceResponse}, **errors(404, 413, 422)})
def trace_text(
    job: Annotated[Job, Depends(prepare)], encoding: Literal["json", "compact", "binary", "csv", "npz"] = "json"
) -> Any:
    """Run a model over a text (or vectors) and return every gate at every step.

    ``encoding=json`` (default): plain numbers. ``encoding=compact``: each gate array packed in
    2 bytes a value, base64 (2.67 bytes a value; see app/encoding.py: ``pack``). ``encoding=binary``:
    the compact body without base64 (2 bytes a value; ``dumps_binary`` describes the layout).
    ``encoding=csv``: a download, one row per layer × step × unit. ``encoding=npz``: a NumPy archive
    (``layer<k>/<gate>`` arrays, ``tokens``, ``probs``), loadable with ``allow_pickle=False``.
    """
    try:
        tr = job.net.trace(job.x)
    except (ValueError, TypeError) as e:
        raise HTTPException(422, str(e)) from None
    if encoding in ("csv", "npz"):
        media = "text/csv" if encoding == "csv" else "application/octet-stream"
        data = trace_csv(tr) if encoding == "csv" else trace_npz(tr)
        headers = {"Content-Disposition": f'attachment; filename="{job.name}-trace.{encoding}"'}
        return Response(data, media_type=media, headers=headers)
    if encoding == "compact":
        body = dumps_compact(trace_compact(job.name, job.net, tr, job.top_k))
        return Response(body, media_type="application/json")
    if encoding == "binary":
        body = dumps_binary(trace_compact(job.name, job.net, tr, job.top_k))
        return Response(body, media_type="application/octet-stream")
    # The TraceResponse shape, serialised directly: FastAPI's jsonable_encoder walks every float (1.4 s for 1,000 steps)
    return Response(json.dumps(trace_json(job.name, job.net, tr, job.top_k)), media_type="application/json")


@router.post("/trace/stream", responses=errors(404, 413, 422))
def stream_trace(job: Annotated[Job, Depends(prepare)]) -> Iterator[dict[str, Any]]:
    """The trace as JSON Lines: a header (model, tokens), then one line per step as soon as it is computed."""
    yield {"model": job.name, "tokens": job.tokens}
    net, state, t, size = job.net, None, 0, 1
    sep = " " if net.tokenizer is not None and net.tokenizer.kind == "word" else ""
    while t < len(job.tokens):
        end = min(t + size, len(job.tokens))
        piece = sep.join(job.tokens[t:end]) if isinstance(job.x, str) else np.asarray(job.x)[t:end]
        tr = net.trace(piece, state=state)  # resumes where the last chunk stopped
        state = tr.state
        yield from steps_json(net, tr, t, job.top_k)
        t, size = end, min(2 * size, MAX_CHUNK)
