"""Interventions in a real Chromium: hold dyck's depth unit at its depth-0 value from the page and see the
predictions change (the end symbol '$' becomes likely where brackets are still open), with the held cells marked on
the heatmaps and on the change chart; every number is the server's (POST /api/trace with interventions)."""

from __future__ import annotations

import json
import urllib.parse
import urllib.request

import pytest
from playwright.sync_api import expect

from .conftest import ARTIFACTS, api_card, assert_clean, wait_drawn

pytestmark = pytest.mark.e2e

TEXT = "((()(()))(()(("  # never back at depth 0
HOLD = {"layer": 0, "unit": 4, "gate": "c", "op": "set", "value": 0.076, "from": 0}  # the depth unit at depth 0


def _held(server: str) -> dict:
    body = {"model": "dyck", "text": TEXT, "interventions": [HOLD]}
    req = urllib.request.Request(
        server + "/api/trace", data=json.dumps(body).encode(), headers={"content-type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.load(r)


def _pct(p: float) -> str:
    x = 100 * p
    return f"{x:.1g}" if 0 < x < 0.1 else f"{x:.1f}"


def test_holding_the_depth_unit_from_the_page_makes_the_end_likely_and_marks_the_held_cells(new_page, server):
    pg = new_page(1280, 720)
    pg.goto(f"{server}/#model=dyck&layer=0&unit=4&t=8&text={urllib.parse.quote(TEXT)}")
    wait_drawn(pg, api_card(server, "dyck")["gates"], len(TEXT))
    panel = pg.get_by_test_id("intervene")
    pg.get_by_test_id("intervene-op").select_option("set")
    pg.get_by_test_id("intervene-gate").select_option("c")
    pg.get_by_test_id("intervene-value").fill("0.076")
    expect(pg.get_by_test_id("intervene-add")).to_have_text("Hold unit 4")
    pg.get_by_test_id("intervene-add").click()
    expect(pg.get_by_test_id("intervention")).to_have_text("hold unit 4's C at 0.076 from t = 0×")
    expect(panel).to_have_attribute("data-ready", "true", timeout=15_000)
    want = _held(server)
    eff = want["effect"]
    t = 8  # read ")": depth 2 left open
    assert eff["top_before"][t][0]["token"] == "(" and eff["top_after"][t][0]["token"] == "$"
    table = pg.get_by_test_id("intervene-table")
    expect(table).to_contain_text(f"t = {t}, read )")
    top_after = " · ".join(f"{c['token']} {_pct(c['p'])}%" for c in eff["top_after"][t])
    expect(table).to_contain_text(f"likeliest after{top_after}")
    p_before, p_after = eff["p_before"][t], eff["p_after"][t]
    expect(table).to_contain_text(f"{p_before:.3f} → {p_after:.3f}")
    # the held cells are outlined on every gate's heatmap (unit 4, all 14 steps), and on the change chart
    expect(pg.get_by_test_id("heatmap-held")).to_have_count(len(api_card(server, "dyck")["gates"]))
    expect(pg.get_by_test_id("intervene-change")).to_have_attribute("data-held", "1")
    # the scrubber moves the table
    pg.evaluate("() => window.gatescope.state.setT(3)")
    expect(table).to_contain_text("t = 3, read )")
    panel.screenshot(path=str(ARTIFACTS / "intervene-1280x720.png"))
    for w, h in [(1024, 768), (390, 844)]:
        pg.set_viewport_size({"width": w, "height": h})
        pg.wait_for_function(f"() => document.documentElement.scrollWidth <= {w}", timeout=3_000)
        panel.screenshot(path=str(ARTIFACTS / f"intervene-{w}x{h}.png"))
    # removing it clears the marks and the panel
    pg.get_by_test_id("intervention").get_by_role("button").click()
    expect(pg.get_by_test_id("heatmap-held")).to_have_count(0)
    expect(panel).to_have_attribute("data-ready", "false")
    assert_clean(pg, server)
