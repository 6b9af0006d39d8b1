"""GET /api/models/{id}/units/{layer}/{unit}: a unit's dashboard over the model's corpus index
(model/analysis/dashboard.py); GET /api/models/{id}/docs/{doc}: one indexed document's text, to open a
context in the page.

Both read the model's ready index (deps.ModelIndex): 409 with what to do when it has none yet.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query
from pydantic import BaseModel, ConfigDict, Field

import model
from model.analysis.dashboard import MAX_K, MAX_PER_BAND, dashboard, document

from ..schemas import errors
from .deps import EntryDep, ModelIndex, SettingsDep

router = APIRouter(prefix="/api/models", tags=["units"])


IndexDep = ModelIndex  # the ready index of the path's model, or 409 saying its state and what to do


class Context(BaseModel):
    """A snippet of the corpus around a peak, with the unit's values on it."""

    model_config = ConfigDict(extra="allow")

    doc: int = Field(description="the document (0-based, in the index's order)")
    source: str = Field(description="the file it came from")
    line: int = Field(description="its line in that file (per='line'), else 0")
    start: int = Field(description="the snippet's first step (global, over the index)")
    stop: int = Field(description="one past its last step")
    pos: int = Field(description="the peak's step (global)")
    peak: int = Field(description="the peak's place in the snippet: tokens[peak]")
    tokens: list[str] = Field(description="the snippet's tokens as the model's tokenizer shows them")
    values: list[float] = Field(description="the unit's value at each of them")
    value: float | None = Field(description="the value at the peak")
    t: int = Field(description="the peak's step in its document (open the document at this step)")
    doc_steps: int = Field(description="the document's length in steps")


class Histogram(BaseModel):
    """Every value the index stored for this unit, binned (np.histogram semantics)."""

    edges: list[float] = Field(description="bins + 1 edges: [0, 1] sigmoid gates, [-1, 1] tanh-valued, [min, max] C")
    counts: list[int] = Field(description="steps in each bin")


class Band(BaseModel):
    """Contexts sampled from one decile band: lo <= value < hi (the last band closed)."""

    band: int
    lo: float
    hi: float
    contexts: list[Context]


class Push(BaseModel):
    label: str = Field(description="the token, class or output")
    weight: float = Field(description="d output / d h_unit: the head's weight from this unit to it")


class Pushes(BaseModel):
    """The direct effect of the unit's h on the output head (the last layer only)."""

    kind: str = Field(description='the head: "next" (tokens), "classes" (labels) or "values" (outputs)')
    title: str
    note: str
    of: str = Field(description="the gate whose unit the weights read: h")
    up: list[Push] = Field(description="the largest positive weights, largest first")
    down: list[Push] = Field(description="the most negative weights, most negative first")


class UnitDashboard(BaseModel):
    """What one unit does over the model's corpus index."""

    model_config = ConfigDict(extra="allow")

    model: str | None
    layer: int
    unit: int
    gate: str
    corpus: dict[str, Any] = Field(description="the index: name, docs, steps, sources (first 5), n_sources, per, carry")
    scale: dict[str, Any] = Field(description='the colour scale: kind ("gate" | "signed" | "cell") and its range')
    histogram: Histogram
    stats: dict[str, Any] = Field(description="mean, std, min, max, deciles, low and high (shares saturated; C: null)")
    k: int
    before: int
    after: int
    top: list[Context] = Field(description="the k highest peaks, one per document region")
    bottom: list[Context] = Field(description="the k lowest, one per document region")
    bands: list[Band] = Field(description="contexts sampled from each decile band")
    pushes: Pushes | None = Field(description="the direct effect on the outputs (last layer with a head), or null")
    text_limit: int = Field(description="the most tokens the page may trace: a longer document opens as its snippet")


class Document(BaseModel):
    """An indexed document, as the page's text box takes it."""

    doc: int
    source: str
    line: int
    steps: int = Field(description="the document's length in steps")
    start: int = Field(description="the first step given")
    stop: int = Field(description="one past the last step given")
    text: str = Field(description="its text (a vector model's: the series as CSV)")


def _state_gate(net: model.Network) -> str:
    return "c" if "c" in net.gates else "h"


@router.get(
    "/{model_id}/units/{layer}/{unit}",
    response_model=UnitDashboard,
    responses=errors(404, 409, 422),
)
def unit_dashboard(
    model_id: str,
    layer: int,
    unit: int,
    entry: EntryDep,
    index: IndexDep,
    settings: SettingsDep,
    gate: Annotated[str | None, Query(description="the gate (default: c, or h for gru/rnn)", max_length=16)] = None,
    k: Annotated[int, Query(ge=1, le=MAX_K, description="contexts listed each way")] = 10,
    per_band: Annotated[int, Query(ge=0, le=MAX_PER_BAND, description="contexts per decile band")] = 3,
) -> dict[str, Any]:
    """A unit's dashboard over the model's index: histogram, statistics, top, bottom and band contexts, pushes."""
    net = entry.net
    gate = gate or _state_gate(net)
    if gate not in net.gates:
        raise HTTPException(422, f"model {model_id!r} has no gate {gate!r}: its gates are {', '.join(net.gates)}")
    if gate not in index.gates:
        raise HTTPException(
            422,
            f"the index of model {model_id!r} holds the gates {', '.join(index.gates)}, not {gate!r}: "
            f"index again with --gates {','.join([*index.gates, gate])}",
        )
    if not 0 <= layer < net.num_layers:
        raise HTTPException(404, f"model {model_id!r} has layers 0 to {net.num_layers - 1}, not {layer}")
    width = net.spec.width if gate == "h" else net.width
    if not 0 <= unit < width:
        raise HTTPException(404, f"layer {layer}'s {gate} has units 0 to {width - 1}, not {unit}")
    out = dashboard(index, net, layer, unit, gate, k=k, per_band=per_band)
    out["text_limit"] = settings.max_tokens
    return out


@router.get("/{model_id}/docs/{doc}", response_model=Document, responses=errors(404, 409, 413, 422))
def index_document(
    model_id: str,
    doc: int,
    entry: EntryDep,
    index: IndexDep,
    settings: SettingsDep,
    start: Annotated[int | None, Query(ge=0, description="the first step to give (in the document)")] = None,
    stop: Annotated[int | None, Query(ge=1, description="one past the last step to give")] = None,
) -> dict[str, Any]:
    """One document of the model's index, whole or its steps [start, stop): the text (a vector model's series
    as CSV) the page's text box takes, and where it came from."""
    if not 0 <= doc < index.docs:
        raise HTTPException(404, f"the index of model {model_id!r} has documents 0 to {index.docs - 1}, not {doc}")
    steps = int(index.doc_starts[doc + 1] - index.doc_starts[doc])
    n = (steps if stop is None else min(stop, steps)) - (start or 0)
    if n > settings.max_tokens:
        raise HTTPException(
            413, f"that is {n} steps; this server traces at most {settings.max_tokens}: ask for fewer (start, stop)"
        )
    return document(index, entry.net, doc, start, stop)
