"""Which unit tracks X? GET /api/models/{id}/features (the built-in features), POST /api/models/{id}/probe
(every unit ranked by its correlation with a feature, a regex or labels, over a text or the model's index;
linear probes) and POST /api/models/{id}/known-units (save a unit into the model's card).

An index probe answers JSON Lines: {"progress": {"stage", "done", "total"}} lines as it reads the index (seconds
on a big one), then the result as the last line ({"error": detail, "status"} instead if it fails midway). A
stream, not a background job: the probe belongs to the one request that asked, keeps nothing once answered,
and stops as soon as its client leaves; a job would need an id, a store of results and polling for the same.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import numpy as np
from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

import model
from model.analysis import features as F
from model.analysis import probes as P

from ..known import KnownUnits
from ..registry import Entry
from ..schemas import errors
from ..uploads import UploadError
from ..work import MB, ClientGone, watch_disconnect
from .deps import RegistryDep, SettingsDep, WorkDep, check_input, find_model

router = APIRouter(prefix="/api/models", tags=["probes"])


class FeatureInfo(BaseModel):
    name: str = Field(description="the name to send as 'feature'")
    description: str = Field(description="what its value is at each token")


class FeaturesResponse(BaseModel):
    """The built-in features of a model, and what a regex or labels take."""

    model: str
    features: list[FeatureInfo] = Field(description="the model's built-in features")
    python: list[str] = Field(description="Python features any text model can be probed with on request")
    regex: str = Field(description="how a regex feature is computed, and its limits")
    labels: str = Field(description="what labels must be")


class ProbeRequest(BaseModel):
    """One feature (exactly one of feature, regex, labels) over a text or the model's index."""

    feature: str | None = Field(default=None, max_length=64, description="a built-in feature's name")
    regex: str | None = Field(default=None, max_length=F.MAX_PATTERN, description="1 on tokens inside a match")
    labels: list[float] | None = Field(default=None, description="a number per token")
    text: str | None = Field(default=None, description="the text to trace and probe over")
    index: bool = Field(default=False, description="probe over the model's corpus index instead of a text")
    gate: str | None = Field(default=None, max_length=16, description="only this gate (default: every gate)")
    linear: bool = Field(
        default=False,
        description="also fit linear probes (ridge or logistic) on some documents, scored on the others: their units "
        "and penalties chosen on the fit documents alone",
    )


class KnownUnitRequest(BaseModel):
    """A unit to list in the model's card."""

    layer: int = Field(ge=0)
    unit: int = Field(ge=0)
    gate: str = Field(max_length=16)
    label: str = Field(min_length=1, max_length=80, description="what it tracks, as the card should say")
    r: float | None = Field(default=None, ge=-1, le=1, description="its correlation with the feature, if measured")


def known_units(request: Request) -> KnownUnits:
    return request.app.state.known


@router.get("/{model_id}/features", response_model=FeaturesResponse, responses=errors(404, 409))
def list_features(model_id: str, registry: RegistryDep) -> dict[str, Any]:
    """The built-in features a model can be probed with, each with a one-line description."""
    entry = find_model(registry, model_id)
    return {
        "model": model_id,
        "features": F.describe(entry.net),
        "python": list(F.PYTHON) if entry.net.tokenizer is not None else [],
        "regex": f"Python re, at most {F.MAX_PATTERN} characters, stopped after {F.REGEX_SECONDS:g} s; 1 on every "
        "token holding a character of a match (matches never cross a document)",
        "labels": "a JSON list of numbers, one per token of the text (or of the index's steps)",
    }


def _index_of(request: Request, model_id: str) -> Any:
    """The model's ready index, or a 409 saying its state and how to make one (the index registry's words)."""
    indexes = request.app.state.indexes
    found = indexes.get(model_id)
    if found is None:
        raise HTTPException(409, indexes.explain(model_id) + "; or probe over a text")
    return found


def _feature(body: ProbeRequest, net: model.Network, tokens: F.Tokens) -> tuple[np.ndarray, dict[str, Any]]:
    """The feature's value at every token, and what it is (model.InputError for a bad one)."""
    if body.feature is not None:
        y = F.values(body.feature, tokens, python=F.task_of(net) == "code")
        about = {"kind": "builtin", "name": body.feature}
    elif body.regex is not None:
        y = F.regex_values(body.regex, tokens)
        about = {"kind": "regex", "pattern": body.regex}
    else:
        y = F.label_values(body.labels, len(tokens))
        about = {"kind": "labels"}
    return y, about | {"steps": len(y), "mean": round(float(y.mean()), 4) if len(y) else None}


def _check(body: ProbeRequest, entry: Entry, name: str) -> None:
    given = [k for k in ("feature", "regex", "labels") if getattr(body, k) is not None]
    if len(given) != 1:
        said = f"got {' and '.join(given)}" if given else "got none"
        raise HTTPException(422, f"give exactly one of 'feature', 'regex' or 'labels' ({said})")
    if body.index == (body.text is not None):
        raise HTTPException(422, "give either 'text' or \"index\": true (what to probe over)")
    if entry.net.tokenizer is None:
        raise HTTPException(422, f"model {name!r} reads vectors: probes need a text model")
    if body.feature is not None:
        names = F.features_for(entry.net)
        if body.feature not in names and body.feature not in F.PYTHON:
            raise HTTPException(
                422,
                f"unknown feature {body.feature!r}: model {name!r} has {', '.join(names)} "
                f"(and {', '.join(F.PYTHON)} on request); GET /api/models/{name}/features describes them",
            )
    if body.regex is not None:
        try:
            F.check_pattern(body.regex)
        except model.InputError as e:
            raise HTTPException(422, str(e)) from None
    if body.gate is not None and body.gate not in entry.net.gates:
        raise HTTPException(422, f"a {entry.net.cell} has no gate {body.gate!r}: it has {', '.join(entry.net.gates)}")


def _probe_text(body: ProbeRequest, checked: Any, stop: Any) -> Response:
    """The probe over a text, encoded here (in the worker's thread) with json.dumps: the best unit's curve holds
    three numbers a step, and FastAPI's jsonable_encoder took ~1 s over 100,000 steps, on the event loop."""
    net = checked.net
    tr = net.trace(checked.x, probs=False, stop=stop)
    tokens = F.Tokens.of_trace(net, tr)
    y, about = _feature(body, net, tokens)
    result = P.probe(tr, y, body.gate, body.linear)
    out = {"model": checked.name, "over": "text", "feature": about, **result}
    return Response(
        json.dumps(out, ensure_ascii=False, allow_nan=False, separators=(",", ":")), media_type="application/json"
    )


@router.post("/{model_id}/probe", response_model=None, responses=errors(400, 403, 404, 409, 411, 413, 422, 429, 503))
async def probe_units(
    model_id: str, body: ProbeRequest, request: Request, registry: RegistryDep, settings: SettingsDep, work: WorkDep
) -> Any:
    """Rank every unit of every layer and gate (or ``gate``'s) by its correlation with a feature (a built-in
    one, a regex or labels) over ``text`` or the model's index (``"index": true``, answered as JSON Lines of
    progress then the result), best |r| first; the best unit's curve beside the feature; with ``linear``, ridge
    or logistic probes from the top-1, top-8 and all units of the gate that correlates best over the fit documents
    and from every gate of its layer together, fit on some documents (units and penalties chosen on them alone),
    scored on others."""
    entry = find_model(registry, model_id)
    _check(body, entry, model_id)
    if body.index:
        return await _probe_index(model_id, body, entry, request, work)
    checked = await run_in_threadpool(check_input, model_id, entry, body.text, None, settings)
    if body.labels is not None and len(body.labels) != len(checked.tokens):  # before the trace: it would be wasted
        raise HTTPException(
            422,
            f"the labels have {len(body.labels)} numbers but the text has {len(checked.tokens)} tokens: "
            "give one per token",
        )
    gone, watcher = watch_disconnect(request.receive)
    try:
        steps = len(checked.tokens)
        job = await work.admit(gone, 3 * checked.net.trace_nbytes(steps) + 64 * steps + MB, f"a probe of {steps} steps")
        try:
            return await job.run(_probe_text, body, checked, job.stopped)
        finally:
            job.close()
    except ClientGone:
        return Response(status_code=499)
    except model.InputError as e:
        raise HTTPException(422, str(e)) from None
    finally:
        watcher.cancel()


async def _probe_index(model_id: str, body: ProbeRequest, entry: Entry, request: Request, work: Any) -> Any:
    index = _index_of(request, model_id)
    net = entry.net
    if body.gate is not None and body.gate not in index.gates:
        raise HTTPException(422, f"the index of {model_id!r} recorded {', '.join(index.gates)}, not {body.gate!r}")
    if body.labels is not None and len(body.labels) != index.steps:
        raise HTTPException(
            422, f"the labels have {len(body.labels)} numbers but the index has {index.steps} steps: give one per step"
        )
    try:  # the feature before the first byte: a bad one is a plain 422
        tokens = await run_in_threadpool(F.Tokens.of_index, net, index)
        y, about = await run_in_threadpool(_feature, body, net, tokens)
    except model.InputError as e:
        raise HTTPException(422, str(e)) from None
    gone, watcher = watch_disconnect(request.receive)
    try:
        job = await work.admit(gone, 48 * index.steps + 64 * MB, f"a probe of an index of {index.steps:,} steps")
    except ClientGone:
        return Response(status_code=499)
    finally:
        watcher.cancel()
    info = {"model": model_id, "over": "index", "feature": about, "index": {"steps": index.steps, "docs": index.docs}}

    def lines() -> Iterator[bytes]:
        try:
            for item in P.iter_probe(index, y, body.gate, body.linear):
                if "result" in item:
                    yield (json.dumps(info | item["result"]) + "\n").encode()
                else:
                    yield (json.dumps(item) + "\n").encode()
        except model.InputError as e:
            yield (json.dumps({"error": str(e), "status": 422}) + "\n").encode()

    return StreamingResponse(job.stream(lines()), media_type="application/x-ndjson")


@router.post(
    "/{model_id}/known-units", status_code=201, responses=errors(400, 403, 404, 409, 411, 413, 422, 429, 503, 507)
)
def save_known_unit(model_id: str, body: KnownUnitRequest, request: Request, registry: RegistryDep) -> dict[str, Any]:
    """Save a unit into the model's known units (listed in its card under telling_units.saved, kept across
    restarts, beside an uploaded model's files); one saved again at the same layer, unit and gate is replaced."""
    entry = find_model(registry, model_id)
    net = entry.net
    if body.layer >= net.num_layers:
        raise HTTPException(422, f"layer {body.layer} does not exist: model {model_id!r} has {net.num_layers}")
    if body.gate not in net.gates:
        raise HTTPException(422, f"a {net.cell} has no gate {body.gate!r}: it has {', '.join(net.gates)}")
    width = net.spec.proj_size if body.gate == "h" and net.spec.proj_size else net.width
    if body.unit >= width:
        raise HTTPException(422, f"unit {body.unit} does not exist: the {body.gate} of a layer has {width} units")
    unit = {"feature": body.label, "layer": body.layer, "unit": body.unit, "gate": body.gate, "r": body.r}
    try:
        saved = known_units(request).add(model_id, entry.origin, unit)
    except UploadError as e:
        raise HTTPException(e.status, str(e)) from None
    return {"model": model_id, "saved": saved}
