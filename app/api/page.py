"""POST /api/page: the current view saved as one self-contained HTML file (app/saved.py), for a slide deck or a
paper's supplement: it opens from disk with no server and no network, and runs the page's own views on the
embedded trace (diagram, heatmaps, scrubbing, step cards, the unit up close; no live typing)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Query, Request, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape

from .. import saved
from ..schemas import TraceRequest
from ..work import MB, ClientGone, watch_disconnect
from .deps import CheckedDep, RegistryDep, SettingsDep, WorkDep, find_model
from .models import card_of
from .trace import BUSY, COST, REFUSALS

router = APIRouter(prefix="/api", tags=["page"])

#: The most a saved page may hold (MB of embedded trace and lines): a bigger one would be slow to open.
MAX_PAGE_MB = 48


@router.post("/page", response_class=Response, responses={**REFUSALS, **BUSY})
async def save_page(
    request: Request,
    job: CheckedDep,
    body: TraceRequest,
    registry: RegistryDep,
    settings: SettingsDep,
    work: WorkDep,
    layer: int = Query(0, description="the layer shown when the page opens"),
    unit: int = Query(0, description="the unit shown when the page opens"),
    t: int = Query(0, description="the step shown when the page opens, from 0 to T - 1"),
    win_start: int | None = Query(None, ge=0, description="a long text's window: its first step shown"),
    win_size: int | None = Query(None, ge=1, description="a long text's window: how many steps it shows"),
) -> Response:
    """The text's trace and the page's views as one HTML file (a download) that opens offline from disk."""
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
    lines = sum(len(net.gates) + 4 for _ in range(net.num_layers)) * steps * net.width * 4  # about: the lines' bytes
    size = net.trace_nbytes(steps) + lines
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
            html = await run.run(_render, settings, data, card)
        finally:
            run.close()
    except ClientGone:
        return Response(status_code=499)
    finally:
        watcher.cancel()
    filename = f"gatescope-{job.name}-t{t}-unit{unit}.html"
    return Response(html, media_type="text/html", headers={"Content-Disposition": f'attachment; filename="{filename}"'})


def _render(settings: Any, data: dict[str, Any], card: dict[str, Any]) -> str:
    """The saved page's HTML (templates/saved.html)."""
    from ..main import PLOTLY_JS  # where the installed plotly package keeps plotly.js (main imports this module)

    env = Environment(loader=FileSystemLoader(str(settings.templates)), autoescape=select_autoescape(["html"]))
    context = {"card": card, "text": data["text"]}
    return saved.page_html(env.get_template("saved.html"), settings.static, PLOTLY_JS, data, context)
