"""Sharing without a server: "Save as page" downloads one HTML file that opens from disk (file://) with every request
refused, and scrubbing it shows the same numbers the live page shows at the same step (diagram, step cards, heatmap
cursors, the unit's curves and coloured text)."""

from __future__ import annotations

import urllib.parse
from pathlib import Path

import pytest

from .conftest import (
    ARTIFACTS,
    api_card,
    api_trace,
    assert_clean,
    assert_numbers_match_api,
    wait_diagram,
    wait_drawn,
    wait_frames,
)

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
    with page.expect_download() as dl:
        page.get_by_test_id("save-page").click()
    saved = Path(tmp_path) / dl.value.suggested_filename
    dl.value.save_as(saved)
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
    assert off.console_errors == [], off.console_errors
    assert refused == [], f"the saved page asked the network for {refused}"
    others = [u for u in off.requested if u != saved.as_uri() and not u.startswith("data:")]
    assert others == [], f"the saved page asked for {others}"
