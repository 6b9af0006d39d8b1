"""POST /api/trace: every gate of every layer at every step (plain JSON, compact, binary, CSV, NPZ);
POST /api/trace/stream: the same as JSON Lines, a line per step, sent as computed."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, Literal

import numpy as np
from fastapi import APIRouter, HTTPException, Response
from fastapi.responses import StreamingResponse

from ..encoding import (
    dumps_binary,
    dumps_compact,
    iter_csv,
    plain_values,
    steps_json,
    trace_compact,
    trace_json,
    trace_npz,
)
from ..schemas import TraceResponse, errors
from .deps import CheckedDep, SettingsDep

router = APIRouter(prefix="/api", tags=["trace"])

#: Steps per chunk of a stream: the first line leaves after one step, later chunks double up to this.
MAX_CHUNK = 256


#: What a trace request can be refused with.
REFUSALS = errors(400, 403, 404, 409, 411, 413, 422)


@router.post("/trace", response_model=None, responses={200: {"model": TraceResponse}, **REFUSALS})
def trace_text(
    job: CheckedDep, settings: SettingsDep, encoding: Literal["json", "compact", "binary", "csv", "npz"] = "json"
) -> Any:
    """Run a model over a text (or vectors) and return every gate at every step.

    ``encoding=json`` (default): plain numbers. ``encoding=compact``: each gate array packed in
    2 bytes a value, base64 (2.67 bytes a value; see app/encoding.py: ``pack``). ``encoding=binary``:
    the compact body without base64 (2 bytes a value; ``dumps_binary`` describes the layout).
    ``encoding=csv``: a download, one row per layer × step × unit. ``encoding=npz``: a NumPy archive
    (``layer<k>/<gate>`` arrays, ``tokens``, ``probs``), loadable with ``allow_pickle=False``.
    """
    values = plain_values(job.net, len(job.tokens))
    if encoding in ("json", "csv") and values > settings.max_plain_values:  # a cost bound before any work
        raise HTTPException(
            413,
            f"{len(job.tokens)} steps are {values:,} numbers as plain {encoding.upper()}; this server writes at most "
            f"{settings.max_plain_values:,} that way: ask for encoding=binary or npz, or trace fewer tokens",
        )
    tr = job.net.trace(job.x)  # the input was checked: an error here is a bug, and shows as a 500
    if encoding in ("csv", "npz"):
        headers = {"Content-Disposition": f'attachment; filename="{job.name}-trace.{encoding}"'}
        if encoding == "csv":  # streamed a step at a time: it stops when the client leaves
            return StreamingResponse(iter_csv(tr), media_type="text/csv", headers=headers)
        return Response(trace_npz(tr), media_type="application/octet-stream", headers=headers)
    if encoding == "compact":
        body = dumps_compact(trace_compact(job.name, job.net, tr, job.top_k))
        return Response(body, media_type="application/json")
    if encoding == "binary":
        body = dumps_binary(trace_compact(job.name, job.net, tr, job.top_k))
        return Response(body, media_type="application/octet-stream")
    # The TraceResponse shape, serialised directly: FastAPI's jsonable_encoder walks every float (1.4 s for 1,000 steps)
    return Response(json.dumps(trace_json(job.name, job.net, tr, job.top_k)), media_type="application/json")


@router.post("/trace/stream", responses=REFUSALS)
def stream_trace(job: CheckedDep) -> Iterator[dict[str, Any]]:
    """The trace as JSON Lines: a header (model, tokens), then one line per step as soon as it is computed."""
    yield {"model": job.name, "tokens": job.tokens}
    net, state, t, size = job.net, None, 0, 1
    while t < len(job.tokens):
        end = min(t + size, len(job.tokens))
        piece = net.tokenizer.join(job.tokens[t:end]) if net.tokenizer is not None else np.asarray(job.x)[t:end]
        tr = net.trace(piece, state=state)  # resumes where the last chunk stopped
        state = tr.state
        yield from steps_json(net, tr, t, job.top_k)
        t, size = end, min(2 * size, MAX_CHUNK)
