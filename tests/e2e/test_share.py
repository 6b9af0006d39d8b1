"""Sharing without a server: "Save as page" downloads one HTML file that opens from disk (file://) with every request
refused, and scrubbing it shows the same numbers the live page shows at the same step (diagram, step cards, heatmap
cursors, the unit's curves and coloured text)."""

from __future__ import annotations

import json
import urllib.parse
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from .conftest import (
    ARTIFACTS,
    api_card,
    api_trace,
    assert_clean,
    assert_numbers_match_api,
    save_page,
    wait_diagram,
    wait_drawn,
    wait_frames,
)
from .test_a11y import _report, axe_violations

pytestmark = pytest.mark.e2e

MODEL = "dyck"
#: A deep string: the counter climbs to 4 and back.
TEXT = "(()((())))(()())$"
UNIT, T0, T1 = 3, 12, 5

#: Where each heatmap's step cursor sits (its centre, px from its plot area's left) and the current token of the
#: coloured text: what scrubbing moves outside the diagram and the cards.
_MARKS_JS = """() => ({
  cursors: [...document.querySelectorAll('[data-testid="heatmaps"] figure[data-gate]')].map((f) => {
    const c = f.querySelector(".hm-cursor-t").getBoundingClientRect();
    const a = f.querySelector(".hm-area").getBoundingClientRect();
    return [f.dataset.gate, Math.round((c.left + c.width / 2 - a.left) * 10) / 10];
  }),
  current: document.querySelector('[data-testid="coloured-text"] .is-current')?.dataset.t ?? null,
})"""


def _scrub_to(pg, t: int) -> None:
    """Move t with the keyboard, as a reader does (← from where it is)."""
    pg.get_by_test_id("scrubber").focus()
    now = int(pg.get_by_test_id("timestep").get_attribute("data-t"))
    for _ in range(now - t):
        pg.keyboard.press("ArrowLeft")


def _offline(pg) -> list[str]:
    """Refuse every request but the file itself (and the data: URLs it carries); return the list of those refused."""
    refused: list[str] = []

    def route(r):
        if r.request.url.startswith(("file:", "data:")):
            return r.continue_()
        refused.append(r.request.url)
        return r.abort()

    pg.route("**/*", route)
    return refused


def test_a_saved_page_opens_from_disk_offline_and_scrubs_to_the_live_pages_numbers(page, new_page, server, tmp_path):
    cell = api_card(server, MODEL)["cell"]
    gates = api_card(server, MODEL)["gates"]
    steps = len(api_trace(server, MODEL, TEXT)["tokens"])
    page.goto(f"{server}/#model={MODEL}&layer=0&t={T0}&unit={UNIT}&text={urllib.parse.quote(TEXT)}")
    wait_drawn(page, gates, steps)
    wait_diagram(page, cell, t=T0, unit=UNIT)
    saved = save_page(page, tmp_path)
    assert saved.name == f"gatescope-{MODEL}-t{T0}-unit{UNIT}.html"
    # the live page at the step the saved one will be scrubbed to: the reference
    _scrub_to(page, T1)
    live = wait_diagram(page, cell, t=T1, unit=UNIT)
    live_marks = page.evaluate(_MARKS_JS)
    assert_clean(page, server)

    off = new_page(1280, 720)
    refused = _offline(off)
    off.goto(saved.as_uri())
    wait_drawn(off, gates, steps)
    wait_frames(off)  # plotly's axes and titles: plotly.js came with the file
    opened = wait_diagram(off, cell, t=T0, unit=UNIT)  # as saved: the step and the unit shown when it was saved
    assert opened["t"] == T0 and opened["unit"] == UNIT
    _scrub_to(off, T1)
    there = wait_diagram(off, cell, t=T1, unit=UNIT)
    off.screenshot(path=str(ARTIFACTS / "saved-page-offline.png"), full_page=True)
    assert there["diagram"] == live["diagram"], "the saved page's diagram differs from the live page's at the same t"
    assert there["steps"] == live["steps"], "the saved page's step cards differ from the live page's at the same t"
    marks = off.evaluate(_MARKS_JS)
    assert marks == live_marks, f"heatmap cursors / coloured text at t = {T1}: saved {marks}, live {live_marks}"
    assert marks["current"] == str(T1)
    assert_numbers_match_api(there, api_trace(server, MODEL, TEXT), cell)
    # another unit: its exact lines come from the file too
    off.get_by_test_id("unit").fill(str(UNIT + 2))
    off.get_by_test_id("unit").press("Enter")
    assert_numbers_match_api(wait_diagram(off, cell, t=T1, unit=UNIT + 2), api_trace(server, MODEL, TEXT), cell)
    assert not (found := axe_violations(off)), _report("on the saved page", found)
    assert off.console_errors == [], off.console_errors
    assert refused == [], f"the saved page asked the network for {refused}"
    others = [u for u in off.requested if u != saved.as_uri() and not u.startswith("data:")]
    assert others == [], f"the saved page asked for {others}"


def _captions(svg: str) -> list[str]:
    """Every <text> of an SVG as one line: its lines (tspans) joined with " · ", as a caption wraps."""
    ns = "{http://www.w3.org/2000/svg}"
    out = []
    for node in ET.fromstring(svg).iter(f"{ns}text"):
        spans = [s.text or "" for s in node.iter(f"{ns}tspan")]
        out.append(" · ".join(spans) if spans else node.text or "")
    return out


def _download(pg, locator) -> Path:
    with pg.expect_download() as dl:
        locator.click()
    return Path(dl.value.path())


def test_exports_are_captioned_with_the_model_the_text_t_and_the_unit(page, server):
    text = "(()((())))(()())(((())))" * 2 + "$"  # longer than the caption quotes: shortened with "…"
    gates = api_card(server, MODEL)["gates"]
    steps = len(api_trace(server, MODEL, text)["tokens"])
    page.goto(f"{server}/#model={MODEL}&layer=0&t={T1}&unit={UNIT}&text={urllib.parse.quote(text)}")
    wait_drawn(page, gates, steps)
    wait_frames(page)
    wait_diagram(page, api_card(server, MODEL)["cell"], t=T1, unit=UNIT)
    token = api_trace(server, MODEL, text)["tokens"][T1]
    at = f"t = {T1} (step {T1 + 1} of {steps}, '{token}')"
    caption = f"model {MODEL} · layer 0 · unit {UNIT} · {at} · text “{text[:40]}…”"
    diagram = _download(page, page.locator("#diagram-svg")).read_text()
    assert caption in _captions(diagram), "the diagram's SVG has no caption"
    heatmap = page.get_by_test_id("heatmap-c").get_by_role("button", name="SVG")
    assert caption in _captions(_download(page, heatmap).read_text()), "the C heatmap's SVG has no caption"
    assert caption in _captions(_download(page, page.locator("#curves-svg")).read_text()), "the curves' SVG: no caption"
    body = json.loads(_download(page, page.locator("#download-json")).read_text())
    assert body["view"] == {"caption": caption, "model": MODEL, "text": text, "layer": 0, "t": T1, "unit": UNIT}
    assert len(body["tokens"]) == steps  # the trace itself is whole
    csv = _download(page, page.locator("#download-csv")).read_text().splitlines()
    assert csv[0] == f"# gatescope: {caption}"
    assert_clean(page, server)
