"""POST /api/page: the current view saved as one self-contained HTML file (app/saved.py), for a slide deck or a
paper's supplement: it opens from disk with no server and no network, and runs the page's own views on the
embedded trace (diagram, heatmaps, scrubbing, step cards, the unit up close; no live typing). While the page compares
(vs=), the file carries run b too: its trace, its lines and the pair's selection (POST /api/compare's state and
matching), and shows b's diagram and heatmaps beside a's, as the live page does."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Query, Request, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from pydantic import BaseModel, Field

from model import Network
from model.analysis.compare import compare

from .. import saved
from ..schemas import TraceRequest
from ..work import MB, ClientGone, watch_disconnect
from .compare import CompareRequest, run_states
from .deps import Checked, CheckedDep, RegistryDep, SettingsDep, WorkDep, check_input, find_model
from .models import card_of
from .trace import BUSY, COST, REFUSALS

router = APIRouter(prefix="/api", tags=["page"])

#: The most a saved page may hold (MB of embedded trace and lines): a bigger one would be slow to open.
MAX_PAGE_MB = 48


class PageRun(BaseModel):
    """Run b of a comparison, as the page's URL names it (vs=, vs_text=, vs_match=, vs_unit=)."""

    model: str | None = Field(default=None, description="run b's model (default: the same model)")
    text: str | None = Field(default=None, description="run b's text (default: the same text)")
    match: bool = Field(default=False, description="b's units paired with a's by the correlation of their activity")
    unit: int | None = Field(
        default=None, ge=0, description="b's own unit, where b's units are not a's (default: b's most telling)"
    )


class PageRequest(TraceRequest):
    """The text to save (as for /api/trace) and, while the page compares, the run shown beside it."""

    vs: PageRun | None = Field(default=None, description="run b, shown beside the text's run (null: none)")


@router.post("/page", response_class=Response, responses={**REFUSALS, **BUSY})
async def save_page(
    request: Request,
    job: CheckedDep,
    body: PageRequest,
    registry: RegistryDep,
    settings: SettingsDep,
    work: WorkDep,
    layer: int = Query(0, description="the layer shown when the page opens"),
    unit: int = Query(0, description="the unit shown when the page opens"),
    t: int = Query(0, description="the step shown when the page opens, from 0 to T - 1"),
    win_start: int | None = Query(None, ge=0, description="a long text's window: its first step shown"),
    win_size: int | None = Query(None, ge=1, description="a long text's window: how many steps it shows"),
) -> Response:
    """The text's trace and the page's views as one HTML file (a download) that opens offline from disk; with
    ``vs``, run b's beside them."""
    net, steps = job.net, len(job.tokens)
    if net.tokenizer is None:
        raise HTTPException(422, f"model {job.name!r} reads vectors: a saved page shows text models only")
    if job.interventions:
        raise HTTPException(422, "a saved page shows the plain trace: send the text without 'interventions'")
    if not 0 <= layer < net.num_layers:
        raise HTTPException(422, f"layer {layer} does not exist: model {job.name!r} has layers 0..{net.num_layers - 1}")
    if not 0 <= unit < net.width:
        raise HTTPException(422, f"unit {unit} does not exist: model {job.name!r} has units 0..{net.width - 1}")
    if not 0 <= t < steps:
        raise HTTPException(422, f"step t = {t} is outside the text's {steps} steps (0..{steps - 1})")
    if (win_start is None) != (win_size is None):
        raise HTTPException(422, "a window needs both win_start and win_size (or neither: the page places it)")
    if win_start is not None and not win_start < steps:
        raise HTTPException(422, f"the window's first step {win_start} is outside the text's {steps} steps")
    side = _side_job(body, job, registry, settings) if body.vs is not None else None
    size = _page_bytes(net, steps) + (_page_bytes(side.net, len(side.tokens)) if side else 0)
    if size > MAX_PAGE_MB * MB:
        raise HTTPException(
            413,
            f"a saved page of {steps} steps would hold about {size / MB:.0f} MB; it holds at most {MAX_PAGE_MB} MB: "
            "save a shorter text",
        )
    entry = find_model(registry, job.name)
    card = card_of(job.name, entry, request.app.state.known.saved(job.name, entry.origin))
    gone, watcher = watch_disconnect(request.receive)
    try:
        run = await work.admit(gone, COST * size + MB, f"a saved page of {steps} steps")
        try:
            tr = await run.run(net.trace, job.x, stop=run.stopped)
            select: dict[str, Any] = {"layer": layer, "unit": unit, "t": t, "text": body.text}
            if win_start is not None and win_size is not None:
                select["win"] = {"start": win_start, "size": win_size}
            data = await run.run(saved.page_data, job.name, net, tr, card, job.top_k, select)
            if side is not None and body.vs is not None:
                tr_b = await run.run(side.net.trace, side.x, stop=run.stopped)
                entry_b = find_model(registry, side.name)
                card_b = card_of(side.name, entry_b, request.app.state.known.saved(side.name, entry_b.origin))
                args = (body, job, side, tr, tr_b, card_b, registry, layer, unit, t)
                data |= await run.run(_side_data, *args)
            html = await run.run(_render, settings, data, card)
        finally:
            run.close()
    except ClientGone:
        return Response(status_code=499)
    finally:
        watcher.cancel()
    vs = f"-vs-{side.name}" if side is not None else ""
    filename = f"gatescope-{job.name}{vs}-t{t}-unit{unit}.html"
    return Response(html, media_type="text/html", headers={"Content-Disposition": f'attachment; filename="{filename}"'})


def _page_bytes(net: Network, steps: int) -> int:
    """About what a run's trace and every unit's lines weigh in a saved page."""
    lines = sum(len(net.gates) + 4 for _ in range(net.num_layers)) * steps * net.width * 4
    return int(net.trace_nbytes(steps)) + lines


def _side_job(body: PageRequest, job: Checked, registry: Any, settings: Any) -> Checked:
    """Run b's model and text, checked before any work, as POST /api/compare checks them."""
    vs = body.vs
    assert vs is not None
    if vs.model is None and vs.text is None:
        raise HTTPException(422, "'vs' names run b: give it another model ('model') or another text ('text')")
    name_b = vs.model or job.name
    entry = find_model(registry, name_b)
    side = check_input(name_b, entry, body.text if vs.text is None else vs.text, None, settings)
    if side.net.tokenizer is None:
        raise HTTPException(422, f"model {name_b!r} reads vectors: a saved page shows text models only")
    if vs.unit is not None and vs.unit >= side.net.width:
        raise HTTPException(422, f"unit {vs.unit} is not a unit of {name_b}: its layers have {side.net.width} units")
    return side


def _side_data(
    body: PageRequest, job: Checked, side: Checked, tr: Any, tr_b: Any, card_b: dict, registry: Any, *at: int
) -> dict[str, Any]:
    """What the saved page embeds of run b: ``b`` (as page_data: card, text, selection, reply, lines), ``compare``
    (the page's state.compare) and ``compared`` (POST /api/compare's state and matching: who b's unit is)."""
    layer, unit, t = at
    vs = body.vs
    assert vs is not None and body.text is not None
    text_b = body.text if vs.text is None else vs.text
    k = min(layer, side.net.num_layers - 1)  # the layer compared (compare.js: the last both have, at most a's)
    out = compare(job.net, tr, side.net, tr_b, layer=k, match=vs.match)
    pair = {"model_b": side.name, "text_b": text_b, "layer": k, "match": vs.match, "unit": unit, "unit_b": vs.unit}
    request = CompareRequest(model=job.name, text=body.text, **pair)
    a_entry, b_entry = find_model(registry, job.name), find_model(registry, side.name)
    states = run_states(request, side.name, text_b, a_entry, b_entry, out)
    select = {"layer": k, "unit": states["b"]["unit"], "t": min(t, len(tr_b) - 1), "text": text_b}
    return {
        "b": saved.page_data(side.name, side.net, tr_b, card_b, side.top_k, select),
        "compare": {"model": vs.model, "text": vs.text, "match": vs.match, "unit": vs.unit},
        "compared": {"state": states, "matching": out["matching"]},
    }


def _render(settings: Any, data: dict[str, Any], card: dict[str, Any]) -> str:
    """The saved page's HTML (templates/saved.html)."""
    from ..main import PLOTLY_JS  # where the installed plotly package keeps plotly.js (main imports this module)

    env = Environment(loader=FileSystemLoader(str(settings.templates)), autoescape=select_autoescape(["html"]))
    b = data.get("b")
    context = {"card": card, "text": data["text"], "b": b and b["card"], "text_b": b and b["text"]}
    return saved.page_html(env.get_template("saved.html"), settings.static, PLOTLY_JS, data, context)
