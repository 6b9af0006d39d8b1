"""POST /api/compare: two runs side by side (model/analysis/compare.py holds the math).

Two models on one text ({"model": "recall-lstm", "model_b": "recall-rnn", "text": ...}), one model on two texts
({"model", "text", "text_b"}), or two checkpoints of one architecture ({"model", "model_b", "text", "match": true}:
b's units paired with a's by the correlation of their activity). The page draws each run from its own trace (the
live socket, POST /api/trace); this route answers what only the pair has: the per-step likelihoods and their
difference, the matching, and b − a for the gates asked.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel, Field

from model.analysis.compare import compare

from ..schemas import Prediction, errors
from .deps import RegistryDep, SettingsDep, WorkDep, check_input, find_model
from .views import traced, work_run

router = APIRouter(prefix="/api", tags=["units"])

#: Refusals: no such model (404), an unavailable one (409), a text too long (413), a bad layer or gate (422), busy.
REFUSALS = errors(400, 403, 404, 409, 411, 413, 422, 429, 503)


class CompareRequest(BaseModel):
    """Run a (model, text) and b (model_b or the same model, text_b or the same text), and set them side by side."""

    model: str = Field(description="run a's model")
    text: str = Field(description="run a's text (and b's, without text_b)")
    model_b: str | None = Field(default=None, description="run b's model (default: the same model)")
    text_b: str | None = Field(default=None, description="run b's text (default: the same text)")
    layer: int | None = Field(default=None, ge=0, description="the layer compared (default: the last both have)")
    match: bool = Field(
        default=False, description="pair b's units with a's by the correlation of their activity (two checkpoints)"
    )
    gates: list[str] | None = Field(
        default=None, max_length=16, description="the gates whose b − a is sent (default: the state, c or else h)"
    )
    unit: int = Field(
        default=0, ge=0, description="run a's selected unit (state.a.unit; b's follows it when they correspond)"
    )
    unit_b: int | None = Field(
        default=None, ge=0, description="run b's own selected unit, used when b's units do not correspond to a's"
    )


class Pair(BaseModel):
    a: int = Field(description="a unit of run a")
    b: int = Field(description="its partner in run b")
    r: float = Field(description="their Pearson r over the common steps (the pairing maximises the sum of |r|)")


class Matching(BaseModel):
    gate: str = Field(description="the gate whose activity was correlated (c, or h without a cell state)")
    pairs: list[Pair]
    mean_abs_r: float = Field(description="the pairs' mean |r|")
    identity_abs_r: float | None = Field(description="the mean |r| of unit k with unit k: what the pairing improves on")
    order: list[int] = Field(description="per unit of a, its partner in b (-1: none)")


class Likelihoods(BaseModel):
    scored: dict[str, str | None] = Field(
        description="{a, b}: the steps each model's training scored, in words, when not every step (recall: only the "
        "answer after '?': the digits' likelihood means nothing); null: every step"
    )
    a: list[float | None] = Field(description="per step, log p of the actual next token under run a (None: unknown)")
    b: list[float | None]
    difference: list[float | None] = Field(description="b − a per step")
    mean_a: float | None
    mean_b: float | None
    mean_difference: float | None


class RunState(BaseModel):
    model: str
    text: str
    layer: int = Field(description="the layer compared")
    unit: int = Field(description="the unit the page selects in this run")
    unit_from: str = Field(
        description="run b: 'paired' (a's unit's partner, r given), 'same' (one architecture: a's unit), "
        "'own' (unit_b, else b's most telling unit: unit k of another model is not a's unit k); run a: 'selected'"
    )
    r: float | None = Field(default=None, description="with 'paired': the pair's r")


class CompareResponse(BaseModel):
    state: dict[str, RunState] = Field(description="{a, b}: what the page shows of each run (model, text, layer, unit)")
    steps: int = Field(description="the steps both runs have (the shorter run's length)")
    steps_a: int
    steps_b: int
    same_tokens: bool = Field(description="whether both runs read the same tokens")
    layer: int
    gates: list[str] = Field(description="the gates both cells have")
    logp: Likelihoods | None = Field(description="next-token models only")
    matching: Matching | None = Field(description="with match, when the layers are equally wide")
    b: dict[str, list[list[float]]] = Field(description="per gate asked, (steps, units of b) run b's own values")
    difference: dict[str, list[list[float]]] | None = Field(
        description="per gate asked, (steps, units) b − a: one model on two texts unit by unit, two models once their "
        "units are paired (match); else null (unit k of one model has nothing to do with unit k of another)"
    )
    top: dict[str, list[list[Prediction]] | None] = Field(
        description="{a, b}: per step the 3 likeliest next tokens or classes of each run (null without a softmax head)"
    )
    change: dict[str, list[float]] | None = Field(description="per gate asked, per step the mean |b − a| over units")


@router.post("/compare", response_model=CompareResponse, responses=REFUSALS)
async def compare_runs(
    body: CompareRequest, request: Request, registry: RegistryDep, settings: SettingsDep, work: WorkDep
) -> dict[str, Any]:
    """Two runs over their common steps: per-step likelihoods, the units paired by activity, and b − a."""
    name_b = body.model_b or body.model
    a_entry, b_entry = find_model(registry, body.model), find_model(registry, name_b)
    text_b = body.text if body.text_b is None else body.text_b
    # every refusal before any work: the inputs (as /api/trace checks them), the gates, the size of the answer
    job_a = check_input(body.model, a_entry, body.text, None, settings)
    job_b = check_input(name_b, b_entry, text_b, None, settings)
    shared = [g for g in a_entry.net.gates if g in b_entry.net.gates]
    asked = body.gates or ["c" if "c" in shared else "h"]
    missing = [g for g in asked if g not in shared]
    if missing:
        raise HTTPException(422, f"gate {missing[0]!r} is not a gate of both models: they share {', '.join(shared)}")
    steps = min(len(job_a.tokens), len(job_b.tokens))
    values = 2 * steps * max(a_entry.net.width, b_entry.net.width) * len(asked)  # b, and b − a
    for who, entry, unit in (("a", a_entry, body.unit), ("b", b_entry, body.unit_b)):
        if unit is not None and unit >= entry.net.width:
            name = body.model if who == "a" else name_b
            raise HTTPException(422, f"unit {unit} is not a unit of {name}: its layers have {entry.net.width} units")
    if values > settings.max_plain_values:
        raise HTTPException(
            413,
            f"the difference of {len(asked)} gate(s) over {steps} steps is {values:,} numbers; this "
            f"server sends at most {settings.max_plain_values:,}: compare fewer gates or a shorter text",
        )
    a = await traced(request, body.model, a_entry, body.text, settings, work, job_a)
    b = await traced(request, name_b, b_entry, text_b, settings, work, job_b)
    out = await work_run(work, request, _compare, a_entry.net, a, b_entry.net, b, body.layer, body.match)
    out["state"] = run_states(body, name_b, text_b, a_entry, b_entry, out)
    diff, own = out.pop("difference"), out.pop("b")
    out["b"] = {g: np.round(own[g], 5).tolist() for g in asked}
    if diff is None:
        out["difference"] = out["change"] = None
    else:
        out["difference"] = {g: np.round(diff[g], 5).tolist() for g in asked}
        out["change"] = {g: np.round(np.abs(diff[g]).mean(axis=1), 5).tolist() for g in asked}
    return out


def _compare(net_a: Any, a: Any, net_b: Any, b: Any, layer: int | None, match: bool) -> dict[str, Any]:
    return compare(net_a, a, net_b, b, layer=layer, match=match)


def run_states(body: CompareRequest, name_b: str, text_b: str, a_entry: Any, b_entry: Any, out: dict[str, Any]) -> dict:
    """Each run's selection: b's unit is a's partner (paired), a's own unit (one architecture), or b's own.
    ``out``: what ``compare`` answered (its layer and matching); a saved page (api/page.py) asks it too."""
    k, net_a, net_b = out["layer"], a_entry.net, b_entry.net
    a = {"model": body.model, "text": body.text, "layer": k, "unit": body.unit, "unit_from": "selected", "r": None}
    b = {"model": name_b, "text": text_b, "layer": k, "r": None}
    same = net_a is net_b or (net_a.cell == net_b.cell and net_a.width == net_b.width and net_a.gates == net_b.gates)
    if out["matching"] is not None:
        pair = next((p for p in out["matching"]["pairs"] if p["a"] == body.unit), None)
        if pair is not None:
            b.update(unit=pair["b"], unit_from="paired", r=pair["r"])
    if "unit" not in b and same and not body.match:
        b.update(unit=body.unit, unit_from="same")
    if "unit" not in b:
        b.update(unit=body.unit_b if body.unit_b is not None else _telling(b_entry, k), unit_from="own")
    return {"a": a, "b": b}


def _telling(entry: Any, layer: int) -> int:
    """The card's most telling unit of `layer` (the largest |r| or separation of its telling_units), else 0."""
    found: list[tuple[float, int]] = []

    def visit(v: Any) -> None:
        if isinstance(v, list):
            for x in v:
                visit(x)
        elif isinstance(v, dict) and isinstance(v.get("unit"), int):
            if v.get("layer", 0) == layer and v["unit"] < entry.net.width:
                found.append((abs(v.get("r") or v.get("separation") or 0.0), v["unit"]))
        elif isinstance(v, dict):
            for x in v.values():
                visit(x)

    visit(entry.card.get("telling_units"))
    return max(found)[1] if found else 0
