"""Saturation, unit order and pattern match: three views of a model's units over the current text or
the model's corpus index (model/analysis/saturation.py, order.py, match.py hold the math).

POST /api/models/{id}/saturation   {"text"} or {"index": true}, "layer"  -> each unit's left/right fractions
GET  /api/models/{id}/order        ?layer&gate&signed                    -> units by similarity over the index
POST /api/models/{id}/order        {"text", "layer", "gate", "signed"}   -> the same over a text
POST /api/models/{id}/match        {"text", "start", "stop", "threshold", "gate", "layer", "units"?}
                                   -> the units on during the span, and the index's spans where they are on
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any, Literal

import numpy as np
from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel, Field

import model
from model.analysis import match as matching
from model.analysis import order as ordering
from model.analysis import saturation as sat

from ..schemas import errors
from ..work import MB, ClientGone, watch_disconnect
from .deps import EntryDep, SettingsDep, WorkDep, check_input

router = APIRouter(prefix="/api/models", tags=["units"])

#: Refusals of these routes: no model (404), no index yet or an unavailable model (409), a text too long (413),
#: a bad layer, gate, span or threshold (422), a busy server (429, 503).
REFUSALS: dict[int | str, dict[str, Any]] = {
    **errors(400, 403, 404, 411, 413, 422, 429, 503),
    409: {"description": "the model has no corpus index yet (the detail says how to make one), or is unavailable"},
}


# ---------------------------------------------------------------------------------------------------------------------
# Requests and answers


#: Where a view looks: true the model's corpus index (409 without one), false the text, "auto" the index when the
#: model has one ready, else the text (the page asks so: it need not know whether an index exists).
IndexChoice = bool | Literal["auto"]


class SaturationRequest(BaseModel):
    """Over a text, or over the model's corpus index."""

    text: str | None = Field(default=None, description="the text to trace; or leave it out and send index: true")
    index: IndexChoice = Field(
        default=False,
        description="true: over the model's corpus index (its stats' low and high); \"auto\": the index when there is "
        "one, else the text",
    )
    layer: int = Field(default=0, ge=0, description="the layer")


class Fractions(BaseModel):
    left: list[float] = Field(description="per unit: the fraction of steps below the gate's lower bound")
    right: list[float] = Field(description="per unit: the fraction of steps above the gate's upper bound")


class SaturationResponse(BaseModel):
    """Karpathy, Johnson & Fei-Fei (2015), fig. 3: every unit's fraction of steps left- and right-saturated."""

    gates: dict[str, Fractions] = Field(description="per bounded gate (c, unbounded, is left out)")
    steps: int = Field(description="the steps counted")
    bounds: dict[str, list[float]] = Field(
        description="per gate [lo, hi]: [0.1, 0.9] for sigmoid gates, [-0.9, 0.9] for tanh-valued ones (h, c_tilde)"
    )
    layer: int
    source: Literal["text", "index"]


class OrderRequest(BaseModel):
    """Cluster a layer's units by their correlations over this text (or, with index, over the model's index)."""

    text: str | None = Field(default=None, description="the text to trace")
    index: IndexChoice = Field(default=False, description='true: over the index (as GET); "auto": the index if ready')
    layer: int = Field(default=0, ge=0)
    gate: str | None = Field(default=None, description="the gate whose activity is compared (default c, else h)")
    signed: bool = Field(default=False, description="distance 1 − r instead of 1 − |r| (a unit's mirror apart)")


class OrderResponse(BaseModel):
    """A permutation of the layer's units: units that act together sit together."""

    order: list[int] = Field(description="every unit id of the layer, once, in the leaf order of the clustering")
    method: str = Field(description="what the order is, in words")
    steps: int = Field(description="the steps the correlations were computed over")
    layer: int
    gate: str
    source: Literal["text", "index"]


class MatchRequest(BaseModel):
    """A span of a text and a threshold: the units on during it, then where else they are on."""

    text: str = Field(description="the text the span is of")
    start: int = Field(description="the span's first step")
    stop: int = Field(description="one past its last step")
    threshold: float = Field(description="a unit is on at a step when its value is >= this")
    gate: str = Field(default="h", description="the gate compared (h by default, as LSTMVis)")
    layer: int = Field(default=0, ge=0)
    units: list[int] | None = Field(default=None, max_length=4096, description="these units instead of those on")
    share: float = Field(
        default=1.0, gt=0, le=1, description="a unit is selected when on for at least this share of the span's steps"
    )
    min_on: float = Field(
        default=1.0, gt=0, le=1, description="a corpus step matches when at least this share of the units is on"
    )
    top: int = Field(default=20, ge=1, le=100, description="matches returned, best first")
    search: Literal["index", "text", "auto"] = Field(
        default="index", description='search the model\'s index, or this text; "auto": the index when there is one'
    )


class MatchResponse(BaseModel):
    units: list[int] = Field(description="the units selected (on during the span), or those given")
    matches: list[dict[str, Any]] = Field(
        description="the best runs, each a context as the dashboard's ({doc, source, line, start, stop, pos, tokens, "
        "values, peak}) plus match: [a, b) the run inside the snippet, length, off: the mean number of units off, "
        "on: per snippet step the share of the units on"
    )
    found: int = Field(description="runs found in all")
    steps: int = Field(description="the steps searched")
    note: str | None = Field(default=None, description="why there is nothing to show, when there is not")
    source: Literal["text", "index"] = Field(description="where the matches were searched")


# ---------------------------------------------------------------------------------------------------------------------
# What the routes share


def ready_index(request: Request, model_id: str) -> Any:
    """The model's ready corpus index, or None."""
    indexes = getattr(request.app.state, "indexes", None)
    return indexes.get(model_id) if indexes is not None else None


def model_index(request: Request, model_id: str) -> Any:
    """The model's ready corpus index, or a 409 saying its state and how to make one (the index registry's words)."""
    index = ready_index(request, model_id)
    if index is None:
        raise HTTPException(409, request.app.state.indexes.explain(model_id))
    return index


async def traced(
    request: Request, model_id: str, entry: Any, text: Any, settings: Any, work: Any, job: Any = None
) -> Any:
    """The trace of a text, checked as /api/trace checks it (unless ``job``, its check, is given), its memory
    reserved."""
    job = job or check_input(model_id, entry, text, None, settings)
    gone, watcher = watch_disconnect(request.receive)
    try:
        run = await work.admit(gone, 2 * job.net.trace_nbytes(len(job.tokens)) + MB, f"a trace of {len(job.tokens)}")
        try:
            return await run.run(job.net.trace, job.x, stop=run.stopped)
        finally:
            run.close()
    except ClientGone:
        raise HTTPException(499, "the client left") from None
    finally:
        watcher.cancel()


def state_gate(net: Any) -> str:
    """The gate a model's state lives in: c when it has one, else h."""
    return "c" if "c" in net.gates else "h"


class Cache:
    """The last few orders computed over an index (a pure function of the index and the question)."""

    def __init__(self, size: int = 32) -> None:
        self.size, self._items, self._lock = size, OrderedDict[Any, Any](), threading.Lock()

    def get(self, key: Any) -> Any:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
            return self._items.get(key)

    def put(self, key: Any, value: Any) -> None:
        with self._lock:
            self._items[key] = value
            while len(self._items) > self.size:
                self._items.popitem(last=False)


ORDERS = Cache()


# ---------------------------------------------------------------------------------------------------------------------
# Routes


@router.post("/{model_id}/saturation", response_model=SaturationResponse, responses=REFUSALS)
async def get_saturation(
    model_id: str, body: SaturationRequest, request: Request, entry: EntryDep, settings: SettingsDep, work: WorkDep
) -> dict[str, Any]:
    """Each unit's fraction of steps left- and right-saturated, for every bounded gate of a layer, over a text
    or over the model's index."""
    index = _source(request, model_id, body.index, body.text)
    if index is not None:
        out = await work_run(work, request, sat.index_saturation, index, body.layer)
        return {**out, "layer": body.layer, "source": "index"}
    tr = await traced(request, model_id, entry, body.text, settings, work)
    return {**sat.saturation(tr, body.layer), "layer": body.layer, "source": "text"}


@router.get("/{model_id}/order", response_model=OrderResponse, responses=REFUSALS)
async def order_units(
    model_id: str,
    request: Request,
    entry: EntryDep,
    work: WorkDep,
    layer: int = 0,
    gate: str | None = None,
    signed: bool = False,
) -> dict[str, Any]:
    """The layer's units ordered by similarity of activity over the model's index: average-linkage clustering of
    their correlations (1 − |r|, or 1 − r with signed), streamed over the index (bounded memory), kept once computed."""
    index = model_index(request, model_id)
    g = gate or state_gate(entry.net)
    if g not in index.gates:
        raise HTTPException(422, f"the index did not record gate {g!r}: it has {', '.join(index.gates)}")
    if not 0 <= layer < index.layers:
        raise HTTPException(422, f"layer {layer} does not exist: the index has {index.layers} layers")
    key = (index.path, index.info.get("created"), layer, g, signed)
    out = ORDERS.get(key)
    if out is None:
        out = await work_run(work, request, ordering.index_order, index, layer, g, signed)
        ORDERS.put(key, out)
    return {**out, "layer": layer, "gate": g, "source": "index"}


@router.post("/{model_id}/order", response_model=OrderResponse, responses=REFUSALS)
async def order_units_of_text(
    model_id: str, body: OrderRequest, request: Request, entry: EntryDep, settings: SettingsDep, work: WorkDep
) -> dict[str, Any]:
    """The same order computed over one text's trace (or over the index: index true, or "auto" when it is ready)."""
    if _source(request, model_id, body.index, body.text) is not None:
        return await order_units(model_id, request, entry, work, body.layer, body.gate, body.signed)
    tr = await traced(request, model_id, entry, body.text, settings, work)
    g = body.gate or state_gate(entry.net)
    out = await work_run(work, request, ordering.trace_order, tr, body.layer, g, body.signed)
    return {**out, "layer": body.layer, "gate": g, "source": "text"}


@router.post("/{model_id}/match", response_model=MatchResponse, responses=REFUSALS)
async def match_pattern(
    model_id: str, body: MatchRequest, request: Request, entry: EntryDep, settings: SettingsDep, work: WorkDep
) -> dict[str, Any]:
    """The units on (>= threshold) during [start, stop) of the text, then the runs of the index (or of the text)
    where the same units are on, best first, as contexts."""
    matching.check_threshold(body.gate, body.threshold)
    index = {"index": model_index, "auto": ready_index}.get(body.search, lambda *_: None)(request, model_id)
    if index is not None and body.gate not in index.gates:
        raise HTTPException(422, f"the index did not record gate {body.gate!r}: it has {', '.join(index.gates)}")
    tr = await traced(request, model_id, entry, body.text, settings, work)
    if not 0 <= body.layer < len(tr.layers):
        raise HTTPException(422, f"layer {body.layer} does not exist: the model has {len(tr.layers)} layers")
    if body.gate not in tr.layers[body.layer]:
        raise HTTPException(422, f"gate {body.gate!r} is not one of this model's: {', '.join(tr.layers[body.layer])}")
    X = tr.layers[body.layer][body.gate]  # (T, W)
    T, W = X.shape
    matching.check_span(body.start, body.stop, T)
    if body.units is not None:
        bad = [u for u in body.units if not 0 <= u < W]
        if bad:
            raise HTTPException(422, f"no unit {bad[0]}: layer {body.layer}'s {body.gate} has units 0..{W - 1}")
        units = sorted(set(body.units))
    else:
        units = matching.units_on(X, body.start, body.stop, body.threshold, body.share)
    steps = int(index.steps) if index is not None else T
    where = "text" if index is None else "index"
    if not units:
        span = f"[{body.start}, {body.stop})"
        every = "every step" if body.share == 1 else f"{body.share:.0%} of the steps"
        note: str | None = (
            f"no unit of layer {body.layer}'s {body.gate} is >= {body.threshold:g} on {every} of {span}: "
            "lower the threshold or select a shorter span"
        )
        return {"units": [], "matches": [], "found": 0, "steps": steps, "note": note, "source": where}
    args = (units, body.threshold, body.stop - body.start, body.min_on, body.top)
    if index is None:
        runs, found = await work_run(work, request, matching.find_runs, [(0, X)], [0, T], *args)
        on = np.round((X[:, units] >= body.threshold).mean(axis=1), 4)  # (T,) the share of the units on
        matches = []
        for r in runs:  # contexts from the trace (the index's from index.context)
            ctx = _marked(matching.trace_context(tr.tokens, X[:, units[0]], r), r)
            matches.append({**ctx, "on": on[ctx["start"] : ctx["stop"]].tolist()})
    else:
        runs, found = await work_run(
            work, request, matching.find_runs, index.blocks(body.layer, body.gate), index.doc_starts, *args
        )
        of = (body.layer, body.gate, units, body.threshold)
        matches = await work_run(work, request, _index_contexts, index, runs, *of)
    note = None if runs else f"the {len(units)} units are never on together in the {where}: try min_on below 1"
    return {"units": units, "matches": matches, "found": found, "steps": steps, "note": note, "source": where}


def _source(request: Request, model_id: str, choice: Any, text: str | None) -> Any:
    """The index a request asks for (None: its text), checking that it names exactly one source."""
    if (choice is True) == (text is not None):
        raise HTTPException(422, "give exactly one of 'text' (a text to trace) or 'index': true (the model's index)")
    if choice is True:
        return model_index(request, model_id)
    return ready_index(request, model_id) if choice == "auto" else None


def _marked(ctx: dict[str, Any], run: dict[str, Any]) -> dict[str, Any]:
    """A context with the run marked: match [a, b) inside the snippet, its length and mean units off."""
    a = run["start"] - ctx["start"]
    b = min(run["stop"], ctx["stop"]) - ctx["start"]
    return {**ctx, "match": [a, b], "length": run["length"], "off": run["off"]}


def _index_contexts(
    index: Any, runs: list[dict[str, Any]], layer: int, gate: str, units: list[int], threshold: float
) -> list[dict[str, Any]]:
    """Each run as the index's context of its first step (the first unit's values), with the share of the units
    on at each snippet step."""
    out = []
    for r in runs:
        ctx = index.context(r["start"], layer, gate, units[0], before=20, after=min(r["length"], 200) + 10)
        X = index.rows(layer, gate, ctx["start"], ctx["stop"])[:, units]  # (n, k)
        ctx = _marked(ctx, r)
        ctx["on"] = np.round((X >= threshold).mean(axis=1), 4).tolist()
        out.append(ctx)
    return out


async def work_run(work: Any, request: Request, fn: Any, *args: Any) -> Any:
    """``fn(*args)`` in a worker lane (index reads are heavy: a block of rows at a time)."""
    gone, watcher = watch_disconnect(request.receive)
    try:
        run = await work.admit(gone, 64 * MB, "a pass over the index")
        try:
            return await run.run(fn, *args)
        finally:
            run.close()
    except ClientGone:
        raise HTTPException(499, "the client left") from None
    except model.InputError as e:
        raise HTTPException(422, str(e)) from None
    finally:
        watcher.cancel()
