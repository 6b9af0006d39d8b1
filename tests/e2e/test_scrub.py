"""Scrubbing in a real Chromium, what issue 14's cheap scrub step must keep (bench/browser.py times it): the coloured
text's outline (a layer of its own, moved by transform) sits on the current character after every step, also after
the box reflows; a held arrow key leaves the last step in the URL once it is let go (the hash is written when the
selection stands still); the tooltips (in <body>, since every panel is a composited layer) appear at the pointer."""

from __future__ import annotations

import urllib.parse

import pytest

from .conftest import api_card, api_trace, assert_clean, blur_text_box, click_cell, wait_drawn

pytestmark = pytest.mark.e2e

TEXT = "def add(a, b):\n    return (a + b) * [1, 2][0]\n" * 3

#: The current character's box and its outline's box, in viewport px (the outline drawn 2 px outside it).
_MARK_JS = """() => {
  const cur = document.querySelector('#coloured-text span.is-current');
  const mark = document.querySelector('#coloured-text .in-text-mark');
  const r = (e) => { const b = e.getBoundingClientRect(); return [b.left, b.top, b.width, b.height]; };
  return { t: cur ? Number(cur.dataset.t) : null, cur: cur ? r(cur) : null, mark: r(mark),
           shown: getComputedStyle(mark).display !== 'none', state: gatescope.state.t };
}"""


def open_text(pg, server: str) -> None:
    trace = api_trace(server, "code", TEXT)
    pg.goto(f"{server}/#model=code&layer=0&t=0&unit=0&text={urllib.parse.quote(TEXT)}")
    wait_drawn(pg, api_card(server, "code")["gates"], len(trace["tokens"]))


def mark_on_current(pg, t: int) -> None:
    """Wait until the outline is on step t's character, and check it covers that character exactly."""
    pg.wait_for_function(
        """(t) => { const c = document.querySelector('#coloured-text span.is-current');
        const m = document.querySelector('#coloured-text .in-text-mark');
        if (!c || Number(c.dataset.t) !== t) return false;
        const a = c.getBoundingClientRect(), b = m.getBoundingClientRect();
        return Math.abs(a.left - b.left) < 0.5 && Math.abs(a.top - b.top) < 0.5; }""",
        arg=t,
        timeout=5_000,
    )
    got = pg.evaluate(_MARK_JS)
    assert got["shown"] and got["t"] == t == got["state"]
    for a, b in zip(got["cur"], got["mark"], strict=True):
        assert b == pytest.approx(a, abs=0.5), got


def test_the_outline_follows_the_current_character_step_by_step_and_after_a_reflow(page, server):
    open_text(page, server)
    mark_on_current(page, 0)
    blur_text_box(page)
    for t in range(1, 20):  # into the second line: the outline goes down a line as well as along it
        page.keyboard.press("ArrowRight")
        mark_on_current(page, t)
    page.keyboard.press("End")
    mark_on_current(page, len(TEXT) - 1)
    # a narrower window re-wraps the text: the outline moves with its character
    page.keyboard.press("Home")
    for _ in range(30):
        page.keyboard.press("ArrowRight")
    mark_on_current(page, 30)
    before = page.evaluate(_MARK_JS)["cur"]
    page.set_viewport_size({"width": 390, "height": 844})
    page.wait_for_function(
        "(y) => document.querySelector('#coloured-text span.is-current').getBoundingClientRect().top !== y",
        arg=before[1],
    )
    mark_on_current(page, 30)
    page.screenshot(path="/tmp/shots-scrub14/test-outline-390.png")
    assert_clean(page, server)


def test_a_held_arrow_key_leaves_the_last_step_in_the_url(page, server):
    open_text(page, server)
    blur_text_box(page)
    for _ in range(25):  # a held key: steps far closer together than the hash waits
        page.keyboard.press("ArrowRight")
    page.wait_for_function("() => gatescope.state.t === 25")
    page.wait_for_function("() => location.hash.includes('&t=25&')", timeout=3_000)
    # a reload opens the step the URL names
    page.reload()
    page.wait_for_function("() => window.gatescope && gatescope.state.T > 0 && gatescope.state.t === 25")
    assert page.get_by_test_id("timestep").get_attribute("data-t") == "25"
    assert_clean(page, server)


def test_the_tooltips_appear_at_the_pointer(page, server):
    open_text(page, server)
    panels = wait_drawn(page, api_card(server, "code")["gates"], len(api_trace(server, "code", TEXT)["tokens"]))
    f = next(p for p in panels if p["gate"] == "f")
    click_cell(page, f, 12, 3, hover=True)
    tip = page.locator(".hm-tip:not(.in-tip):visible")  # the main heatmaps' (a second run's grid has its own)
    tip.wait_for(state="visible")
    hit = page.get_by_test_id("heatmap-f").locator(".hm-hit").bounding_box()
    x = hit["x"] + 12.5 * f["colW"]
    y = hit["y"] + 3.5 * f["rowH"]
    box = tip.bounding_box()
    # beside the pointer (placeTip: 12 px right and below it, or flipped to its left/above near an edge)
    assert min(abs(box["x"] - x), abs(box["x"] + box["width"] - x)) < 30, (box, x)
    assert min(abs(box["y"] - y), abs(box["y"] + box["height"] - y)) < 30, (box, y)
    assert "t = 12" in tip.inner_text()
    assert_clean(page, server)
