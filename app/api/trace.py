"""POST /api/trace: every gate of every layer at every step (plain JSON, compact, binary, CSV, NPZ);
POST /api/trace/stream: the same as JSON Lines, a line per step, sent as computed."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Literal

import numpy as np
from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.responses import StreamingResponse

from model import Trace
from model.interventions import Effect, effect

from ..encoding import (
    display_of,
    dumps_binary,
    dumps_compact,
    effect_compact,
    intervened_json,
    iter_csv,
    iter_json,
    iter_npz,
    output_of,
    plain_values,
    steps_json,
    trace_compact,
)
from ..schemas import TraceResponse, errors
from ..warm import warm_soon
from ..work import MB, ClientGone, watch_disconnect
from .deps import Checked, CheckedDep, SettingsDep, WorkDep

router = APIRouter(prefix="/api", tags=["trace"])

#: Steps per chunk of a stream: the first line leaves after one step, later chunks double up to this.
MAX_CHUNK = 256


#: What a trace request can be refused with.
REFUSALS = errors(400, 403, 404, 409, 411, 413, 422)
#: ... and what a busy server answers (429: this client has too much in progress; 503: no memory free in time).
BUSY = errors(429, 503)


#: What a trace request reserves: its trace's bytes this many times (the run's input shares and chunks,
#: the trace, its encoding), and a megabyte for the rest.
COST = 3


@router.post("/trace", response_model=None, responses={200: {"model": TraceResponse}, **REFUSALS, **BUSY})
async def trace_text(
    request: Request,
    job: CheckedDep,
    settings: SettingsDep,
    work: WorkDep,
    encoding: Literal["json", "compact", "binary", "csv", "npz"] = "json",
) -> Any:
    """Run a model over a text (or vectors) and return every gate at every step.

    ``encoding=json`` (default): plain numbers. ``encoding=compact``: each gate array packed in
    2 bytes a value, base64 (2.67 bytes a value; see app/encoding.py: ``pack``). ``encoding=binary``:
    the compact body without base64 (2 bytes a value; ``dumps_binary`` describes the layout).
    ``encoding=csv``: a download, one row per layer × step × unit (with a classes head's ``p(<label>)``
    or a values head's ``pred(<label>)``/``target(<label>)`` columns). ``encoding=npz``: a NumPy archive
    (``layer<k>/<gate>`` arrays, ``tokens``, ``head``, ``labels``, ``probs`` or ``values``, ``targets``),
    loadable with ``allow_pickle=False``. Every form says what the output is (``output``: next token,
    classes or values, and which steps count).

    The request's memory is reserved before it starts (413 if it could never fit, 503 if the server
    stays busy); its work stops when the client leaves. JSON, CSV and NPZ bodies are streamed.
    """
    warm_soon(request.app.state, job.net)  # its attribution kernels, compiled beside the server meanwhile
    steps, held = len(job.tokens), job.interventions
    values = plain_values(job.net, steps) * (2 if held else 1)  # with interventions, the effect's changes too
    if encoding in ("json", "csv") and values > settings.max_plain_values:  # a cost bound before any work
        raise HTTPException(
            413,
            f"{steps} steps are {values:,} numbers as plain {encoding.upper()}; this server writes at most "
            f"{settings.max_plain_values:,} that way: ask for encoding=binary or npz, or trace fewer tokens",
        )
    gone, watcher = watch_disconnect(request.receive)
    streamed = False
    try:
        runs = 1 if not held else 2  # with interventions: the plain run and the held one (and the patch sources)
        cost = COST * (runs * job.net.trace_nbytes(steps) + job.net.trace_nbytes(job.source_tokens)) + MB
        run = await work.admit(gone, cost, f"a trace of {steps} steps")
        try:
            eff = None
            if held:
                tr, eff = await run.run(traced_effect, job, run.stopped)
            else:
                tr = await run.run(job.net.trace, job.x, stop=run.stopped)  # the input was checked: errors are bugs
            if encoding in ("json", "csv", "npz"):
                run.computed()  # a slow reader must not hold a lane: the pieces need none
                watcher.cancel()  # the streamed response watches for the client itself
                pieces = {
                    "json": lambda: iter_json(job.name, job.net, tr, job.top_k, job.targets, eff),
                    "csv": lambda: iter_csv(tr, job.targets),
                }
                body = run.stream(pieces.get(encoding, lambda: iter_npz(tr, job.targets))())
                streamed = True
                if encoding == "json":
                    return StreamingResponse(body, media_type="application/json")
                headers = {"Content-Disposition": f'attachment; filename="{job.name}-trace.{encoding}"'}
                media = "text/csv" if encoding == "csv" else "application/octet-stream"
                return StreamingResponse(body, media_type=media, headers=headers)
            dumps = dumps_compact if encoding == "compact" else dumps_binary

            def packed() -> dict[str, Any]:
                out = trace_compact(job.name, job.net, tr, job.top_k, job.targets)
                if eff is None:
                    return out
                return out | {"intervened": intervened_json(tr), "effect": effect_compact(job.net, tr, eff, job.top_k)}

            out = await run.run(lambda: dumps(packed()))
            return Response(out, media_type="application/json" if encoding == "compact" else "application/octet-stream")
        finally:
            if not streamed:
                run.close()
    except ClientGone:
        return Response(status_code=499)  # nobody reads it: the client has gone
    finally:
        watcher.cancel()


def traced_effect(job: Checked, stop: Any) -> tuple[Trace, Effect]:
    """The held trace of a checked input with interventions, and their effect against the plain one."""
    ids = getattr(job.x, "ids", None)
    before = job.net.trace(job.x, stop=stop)
    after = job.net.trace(job.x, stop=stop, interventions=job.interventions)
    return after, effect(job.net, job.x, before=before, after=after, ids=ids, top_k=job.top_k)


@router.post("/trace/check", responses=REFUSALS)
def check_trace(job: CheckedDep) -> dict[str, Any]:
    """Whether a trace request would run, without running it: every check POST /api/trace makes (the input, each
    intervention's fields, its steps, a patch's source text read by the vocabulary and long enough, the sources'
    size), with the same 4xx and words. The page's hold menu asks before it holds, and says the refusal there."""
    return {"steps": len(job.tokens), "interventions": len(job.interventions or [])}


@router.post("/trace/stream", responses=REFUSALS)
def stream_trace(job: CheckedDep) -> Iterator[dict[str, Any]]:
    """The trace as JSON Lines: a header (model, tokens, directions, output), then one line per step as soon as it
    is computed (a model with a backward direction computes every step before the first line: it reads from the end)."""
    net, state, t, size = job.net, None, 0, 1
    yield {
        "model": job.name,
        "tokens": job.tokens,
        **display_of(job.x),
        "directions": list(net.spec.directions),
        "output": output_of(net.head),
    }
    if "backward" in net.spec.directions or job.interventions:  # held values: the whole run (no effect here)
        yield from steps_json(net, net.trace(job.x, interventions=job.interventions), 0, job.top_k, job.targets)
        return
    while t < len(job.tokens):
        end = min(t + size, len(job.tokens))
        piece = job.x.tail(t, end) if net.tokenizer is not None else np.asarray(job.x)[t:end]
        tr = net.trace(piece, state=state)  # resumes where the last chunk stopped: the whole text's pieces
        state = tr.state
        yield from steps_json(net, tr, t, job.top_k, None if job.targets is None else job.targets[t:end])
        t, size = end, min(2 * size, MAX_CHUNK)
