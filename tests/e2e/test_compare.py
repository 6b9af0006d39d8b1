"""Compare in a real Chromium: a shared link opens recall-lstm beside recall-rnn on one timeline; the step's table,
the likelihood curves and b − a follow the scrubber; choosing another model or pairing the units goes into the URL."""

from __future__ import annotations

import json
import urllib.parse
import urllib.request

import pytest
from playwright.sync_api import expect

from .conftest import ARTIFACTS, api_card, assert_clean, wait_drawn

pytestmark = pytest.mark.e2e

TEXT = "c1415926535897932384626433832795028841971693993751058209?"


def _compare(server: str, body: dict) -> dict:
    req = urllib.request.Request(
        server + "/api/compare", data=json.dumps(body).encode(), headers={"content-type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.load(r)


#: Page coordinates of step 20 on the heatmap beside (plotly's own data-to-pixel map), 30 px below its top.
_POINT_AT_20 = """() => { const gd = document.querySelector('[data-testid="compare-diff"]'); const L = gd._fullLayout;
const r = gd.getBoundingClientRect(); return [r.left + L.margin.l + L.xaxis.l2p(20), r.top + L.margin.t + 30]; }"""


def _pct(p: float) -> str:
    """A probability as the page writes it (format.js fmt(100 p, 1): below 0.1, one significant digit)."""
    x = 100 * p
    return f"{x:.1g}" if 0 < x < 0.1 else f"{x:.1f}"


def _top(cells: list[dict]) -> str:
    return " · ".join(f"{c['token']} {_pct(c['p'])}%" for c in cells)


def test_a_shared_link_opens_lstm_beside_rnn_and_the_scrubber_moves_both(new_page, server):
    pg = new_page(1280, 720)
    pg.goto(f"{server}/#model=recall-lstm&text={urllib.parse.quote(TEXT)}&vs=recall-rnn")
    wait_drawn(pg, api_card(server, "recall-lstm")["gates"], len(TEXT))
    panel = pg.get_by_test_id("compare")
    expect(panel).to_have_attribute("data-ready", "true", timeout=15_000)
    want = _compare(server, {"model": "recall-lstm", "model_b": "recall-rnn", "text": TEXT})
    note = pg.get_by_test_id("compare-note")
    expect(note).to_contain_text(f"recall-rnn beside recall-lstm, layer 0, over {len(TEXT)} common steps")
    # recall scored only the answer: the note says the digits' likelihood means nothing, not its mean
    expect(note).to_contain_text("both were trained to predict only the step after '?' (the first symbol)")
    expect(note).not_to_contain_text("mean log p")
    expect(pg.get_by_test_id("compare-model")).to_have_value("recall-rnn")
    # t follows the text to its last step, after "?": the LSTM answers the first symbol, the RNN does not know it
    last = len(TEXT) - 1
    expect(pg.get_by_test_id("compare-table")).to_contain_text(f"t = {last}, read ?")
    expect(pg.get_by_test_id("compare-top-a")).to_have_text(_top(want["top"]["a"][last]))
    expect(pg.get_by_test_id("compare-top-b")).to_have_text(_top(want["top"]["b"][last]))
    assert want["top"]["a"][last][0]["token"] == "c" and want["top"]["b"][last][0]["p"] < 0.9
    # the scrubber moves both runs' step
    pg.evaluate("() => window.gatescope.state.setT(5)")
    expect(panel).to_have_attribute("data-t", "5")
    expect(pg.get_by_test_id("compare-top-b")).to_have_text(_top(want["top"]["b"][5]))
    # recall scored only the answer: no likelihood curve is drawn
    expect(pg.get_by_test_id("compare-logp")).to_be_hidden()
    # a click on the heatmap beside selects that step for the whole page
    chart = pg.get_by_test_id("compare-diff")
    chart.scroll_into_view_if_needed()
    box = pg.evaluate(_POINT_AT_20)
    pg.mouse.click(*box)
    expect(pg.get_by_test_id("timestep")).to_have_attribute("data-t", "20")
    # two models: the RNN's own h beside (its unit k is not the LSTM's unit k), never a difference of unrelated units
    expect(pg.get_by_test_id("compare-diff")).to_have_attribute("data-shows", "b")
    expect(pg.get_by_test_id("compare-diff").locator(".heatmaplayer")).to_have_count(1)
    for w, h in [(1280, 720), (1024, 768), (390, 844)]:
        pg.set_viewport_size({"width": w, "height": h})
        # the charts' ResizeObserver redraws them at the new width: then nothing is wider than the window
        pg.wait_for_function(f"() => document.documentElement.scrollWidth <= {w}", timeout=3_000)
        panel.screenshot(path=str(ARTIFACTS / f"compare-{w}x{h}.png"))
    assert_clean(pg, server)


def test_choosing_a_model_and_pairing_units_is_kept_in_the_url(page, server):
    page.goto(f"{server}/#model=recall-lstm&text={urllib.parse.quote(TEXT)}")
    wait_drawn(page, api_card(server, "recall-lstm")["gates"], len(TEXT))
    panel = page.get_by_test_id("compare")
    expect(panel).to_have_attribute("data-active", "false")
    page.get_by_test_id("compare-model").select_option("recall-gru")
    page.get_by_test_id("compare-match").check()
    expect(panel).to_have_attribute("data-ready", "true", timeout=15_000)
    want = _compare(server, {"model": "recall-lstm", "model_b": "recall-gru", "text": TEXT, "match": True})
    unit = page.evaluate("() => window.gatescope.state.unit")
    pair = next(p for p in want["matching"]["pairs"] if p["a"] == unit)
    expect(page.get_by_test_id("compare-pair")).to_contain_text(f"Unit {unit} of a acts like unit {pair['b']} of b")
    expect(page.get_by_test_id("compare-note")).to_contain_text(f"mean |r| {want['matching']['mean_abs_r']:.2f}")
    expect(page.get_by_test_id("compare-diff")).to_have_attribute("data-shows", "difference")  # paired: b − a
    page.wait_for_function("() => location.hash.includes('vs=recall-gru') && location.hash.includes('vs_match=1')")
    page.reload()
    expect(panel).to_have_attribute("data-ready", "true", timeout=15_000)
    expect(page.get_by_test_id("compare-match")).to_be_checked()
    expect(page.get_by_test_id("compare-model")).to_have_value("recall-gru")
    # another text on the same model: b is this model on it
    page.get_by_test_id("compare-model").select_option("")
    page.get_by_test_id("compare-text").fill("a14159?")
    page.get_by_test_id("compare-text").press("Enter")
    expect(page.get_by_test_id("compare-note")).to_contain_text("recall-lstm (the other text) beside recall-lstm")
    expect(page.get_by_test_id("compare-note")).to_contain_text("over 7 common steps (57 and 7 steps)")
    # dyck predicts every next bracket: both runs' likelihood curves, and b − a unit by unit (one model)
    page.goto(f"{server}/#model=dyck&text={urllib.parse.quote('(()(')}&vs_text={urllib.parse.quote('(())')}")
    expect(panel).to_have_attribute("data-ready", "true", timeout=15_000)
    expect(page.get_by_test_id("compare-logp").locator(".scatterlayer .trace")).to_have_count(2)
    expect(page.get_by_test_id("compare-diff")).to_have_attribute("data-shows", "difference")
    want = _compare(server, {"model": "dyck", "text": "(()(", "text_b": "(())"})
    expect(page.get_by_test_id("compare-note")).to_contain_text(
        f"b − a = {want['logp']['mean_difference']:+.2f}".replace("-", "−")
    )
    assert_clean(page, server)
