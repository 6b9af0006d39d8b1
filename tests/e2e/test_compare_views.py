"""Compare with the same views side by side, in a real Chromium: a shared link opens recall-lstm with recall-rnn beside
it, a second diagram carrying run b's own numbers at step t (as POST /api/trace of b gives them) and b's heatmaps
beside a's; the one scrubber moves both; b's unit follows the URL (vs_unit=) or a's unit (one model, two texts); the
page never scrolls sideways at 390, 1024 or 1280 px."""

from __future__ import annotations

import contextlib
import json
import urllib.parse
import urllib.request

import pytest
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import expect

from .conftest import ARTIFACTS, _number, api_card, api_trace, assert_clean, save_page, wait_drawn
from .test_a11y import _report, axe_violations
from .test_share import _offline

pytestmark = pytest.mark.e2e

TEXT = "c1415926535897932384626433832795028841971693993751058209?"

#: The numbers a diagram (by test id) carries: {gate: value}, those shown.
_NUMBERS_JS = """(id) => Object.fromEntries([...document.querySelector(`[data-testid="${id}"]`)
  .querySelectorAll("[data-gate][data-value]")].filter((e) => e.getClientRects().length > 0)
  .map((e) => [e.dataset.gate, Number(e.dataset.value)]))"""

#: Run b's state as side.js holds it.
_B_JS = "() => { const b = window.gatescope.side.b; return {model: b.model, t: b.t, unit: b.unit, T: b.T}; }"


def _compare(server: str, body: dict) -> dict:
    req = urllib.request.Request(
        server + "/api/compare", data=json.dumps(body).encode(), headers={"content-type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.load(r)


def _wait_b(pg, t: int, unit: int, h: float) -> None:
    """Until run b's diagram shows step t of `unit` with h = `h` (its exact line, to 1e-4)."""
    pg.wait_for_function(
        f"""() => {{ const s = window.gatescope.side?.b; if (!s || s.t !== {t} || s.unit !== {unit}) return false;
        const v = ({_NUMBERS_JS})("side-diagram").h; return v !== undefined && Math.abs(v - {h}) < 1e-4; }}""",
        timeout=15_000,
    )


def test_a_shared_link_opens_rnn_beside_lstm_with_its_own_diagram_and_heatmaps(new_page, server):
    pg = new_page(1280, 720)
    pg.goto(f"{server}/#model=recall-lstm&unit=14&text={urllib.parse.quote(TEXT)}&vs=recall-rnn&vs_unit=3")
    wait_drawn(pg, api_card(server, "recall-lstm")["gates"], len(TEXT))
    expect(pg.get_by_test_id("side-diagram-box")).to_be_visible(timeout=15_000)
    rnn = api_trace(server, "recall-rnn", TEXT)["layers"][0]["h"]  # (T, 16)
    lstm = api_trace(server, "recall-lstm", TEXT)["layers"][0]
    last = len(TEXT) - 1
    # b is the RNN: its own unit 3 (the link's vs_unit: unit k of the RNN is not the LSTM's unit k) at a's last step
    _wait_b(pg, last, 3, rnn[last][3])
    b = pg.evaluate(_NUMBERS_JS, "side-diagram")
    assert set(b) == {"h", "h_prev"}, f"the RNN's diagram shows {sorted(b)}"
    assert b["h_prev"] == pytest.approx(rnn[last - 1][3], abs=1e-4)
    a = pg.evaluate(_NUMBERS_JS, "diagram")  # a's diagram still shows a's unit 14, C and all
    assert a["c"] == pytest.approx(lstm["c"][last][14], abs=1e-4) and "f" in a
    expect(pg.get_by_test_id("side-title")).to_contain_text("b: recall-rnn, unit 3 (its own unit")
    # b's heatmaps beside a's: the RNN has one gate, h, drawn over every step
    expect(pg.get_by_test_id("b-heatmap-h")).to_be_visible()
    expect(pg.get_by_test_id("heatmaps").locator("figure[data-gate]")).to_have_count(6)
    a_box = pg.get_by_test_id("diagram").bounding_box()
    b_box = pg.get_by_test_id("side-diagram").bounding_box()
    assert b_box["x"] >= a_box["x"] + a_box["width"] - 1, "at 1280 px b's diagram sits beside a's"
    # one scrubber: a step back moves both diagrams
    pg.get_by_test_id("scrubber").focus()
    pg.keyboard.press("Home")
    for _ in range(20):
        pg.keyboard.press("ArrowRight")
    expect(pg.get_by_test_id("timestep")).to_have_attribute("data-t", "20")
    _wait_b(pg, 20, 3, rnn[20][3])
    pg.wait_for_function(f"() => Math.abs(({_NUMBERS_JS})('diagram').c - {lstm['c'][20][14]}) < 1e-4")
    # a click on b's heatmap at another unit keeps it as b's own unit, in the URL
    pg.evaluate("() => window.gatescope.side.b.select({ unit: 7 })")
    pg.wait_for_function("() => location.hash.includes('vs_unit=7')")
    _wait_b(pg, 20, 7, rnn[20][7])
    assert pg.evaluate("() => window.gatescope.state.unit") == 14
    for w, h in [(1280, 720), (1024, 768), (390, 844)]:
        pg.set_viewport_size({"width": w, "height": h})
        pg.wait_for_function(f"() => document.documentElement.scrollWidth <= {w}", timeout=5_000)
        if w < 1100:  # narrower: b's diagram under a's
            a_box = pg.get_by_test_id("diagram").bounding_box()
            b_box = pg.get_by_test_id("side-diagram").bounding_box()
            assert b_box["y"] >= a_box["y"] + a_box["height"] - 1, f"at {w} px b's diagram sits under a's"
        pg.screenshot(path=str(ARTIFACTS / f"compare-views-{w}x{h}.png"))
    # the link as it stands opens the same pair, b at the same step and unit
    link = pg.evaluate("() => location.href")
    other = new_page(1280, 720)
    other.goto(link)
    _wait_b(other, 20, 7, rnn[20][7])
    assert other.evaluate(_B_JS)["model"] == "recall-rnn"
    assert_clean(pg, server)
    assert_clean(other, server)


def test_one_model_on_two_texts_selects_the_same_unit_in_b_and_b_stops_at_its_last_step(page, server):
    text_b = "a14159?"
    page.goto(
        f"{server}/#model=recall-lstm&unit=2&t=3&text={urllib.parse.quote(TEXT)}&vs_text={urllib.parse.quote(text_b)}"
    )
    b_h = api_trace(server, "recall-lstm", text_b)["layers"][0]["h"]
    _wait_b(page, 3, 2, b_h[3][2])
    expect(page.get_by_test_id("side-title")).to_contain_text("unit 2 (the same unit as a)")
    page.evaluate("() => window.gatescope.state.select({ unit: 5 })")
    _wait_b(page, 3, 5, b_h[3][5])
    # a's t past b's 7 steps: b stays at its last step, a goes on
    page.evaluate("() => window.gatescope.state.setT(30)")
    _wait_b(page, 6, 5, b_h[6][5])
    assert page.evaluate("() => window.gatescope.state.t") == 30
    # leaving the comparison hides b's views
    page.get_by_test_id("compare-text").fill("")
    page.get_by_test_id("compare-text").press("Enter")
    expect(page.get_by_test_id("side-diagram-box")).to_be_hidden()
    expect(page.get_by_test_id("side-heatmaps-box")).to_be_hidden()
    assert_clean(page, server)


def test_two_checkpoints_paired_select_a_units_partner_in_b_and_say_its_r(page, server):
    page.goto(f"{server}/#model=recall-lstm&unit=2&t=10&text={urllib.parse.quote(TEXT)}&vs=recall-gru&vs_match=1")
    want = _compare(server, {"model": "recall-lstm", "model_b": "recall-gru", "text": TEXT, "match": True, "unit": 2})
    pair = next(p for p in want["matching"]["pairs"] if p["a"] == 2)
    gru = api_trace(server, "recall-gru", TEXT)["layers"][0]["h"]
    _wait_b(page, 10, pair["b"], gru[10][pair["b"]])
    r = f"{pair['r']:.3f}".replace("-", "−")
    expect(page.get_by_test_id("side-title")).to_contain_text(f"unit {pair['b']} (a's unit 2's partner, r = {r}")
    assert want["state"]["b"]["unit"] == pair["b"]
    assert_clean(page, server)


#: Each diagram of the pair as drawn: does its box scroll, does its SVG stick out of it, its smallest text on screen
#: (over every text and tspan shown: its font size x its drawn height, getBoundingClientRect, over its height in SVG
#: units, getBBox), and its box.
_FIT_JS = """() => Object.fromEntries(["diagram", "side-diagram"].map((id) => {
  const root = document.querySelector(`[data-testid="${id}"]`);
  const svg = root.querySelector("svg");
  const r = root.getBoundingClientRect(), s = svg.getBoundingClientRect();
  let small = Infinity, which = "";
  for (const t of svg.querySelectorAll("text, tspan")) {
    if (!t.getClientRects().length || !t.textContent.trim()) continue;
    const drawn = t.getBoundingClientRect().height, units = t.getBBox().height;
    if (!units) continue;
    const px = (parseFloat(getComputedStyle(t).fontSize) * drawn) / units;
    if (px < small) { small = px; which = t.textContent; }
  }
  return [id, { scrolls: root.scrollWidth - root.clientWidth, box: [r.left, r.top, r.right, r.bottom],
    svg: [s.left, s.top, s.right, s.bottom], small, which }];
}).concat([["page", document.scrollingElement.scrollWidth - innerWidth]]))"""

#: True when both diagrams fit their boxes at 11 px and more, and the page does not scroll sideways.
_FITS_JS = f"""() => {{ const f = ({_FIT_JS})(); return f.page <= 0 && ["diagram", "side-diagram"].every((id) => {{
  const d = f[id]; return d.scrolls <= 1 && d.small >= 11 - 1e-6 && d.svg[0] >= d.box[0] - 1 && d.svg[2] <= d.box[2] + 1
    && d.svg[1] >= d.box[1] - 1 && d.svg[3] <= d.box[3] + 1; }}); }}"""


@pytest.mark.parametrize(
    ("a", "b", "beside_at_1280"),
    [("recall-lstm", "recall-rnn", True), ("code", "recall-gru", False), ("recall-peephole", "recall-lstm", False)],
)
def test_both_diagrams_fit_their_columns_at_every_wide_width(new_page, server, a, b, beside_at_1280):
    """Neither diagram scrolls in its box or is cut, its text >= 11 px: side by side where both fit (an LSTM and an
    RNN at 1280 px, any pair at 1440), else b's under a's."""
    pg = new_page(1280, 720)
    pg.goto(f"{server}/#model={a}&text={urllib.parse.quote(TEXT)}&vs={b}")
    pg.wait_for_function(
        "() => window.gatescope.side.b.T > 0 && document.querySelector('[data-testid=side-diagram] svg')",
        timeout=15_000,
    )
    for w, h in [(1100, 720), (1280, 720), (1440, 900), (1920, 1080)]:
        pg.set_viewport_size({"width": w, "height": h})
        with contextlib.suppress(PlaywrightError):  # it does not come to fit: the asserts below say how
            pg.wait_for_function(_FITS_JS, timeout=5_000)
        fit = pg.evaluate(_FIT_JS)
        assert fit["page"] <= 0, f"{a} vs {b}: at {w} px the page scrolls sideways by {fit['page']} px"
        for id_ in ("diagram", "side-diagram"):
            d = fit[id_]
            assert d["scrolls"] <= 1, f"{a} vs {b}: at {w} px the {id_} scrolls inside its box ({d['scrolls']} px)"
            inside = all(
                [d["svg"][0] >= d["box"][0] - 1, d["svg"][1] >= d["box"][1] - 1]
                + [d["svg"][2] <= d["box"][2] + 1, d["svg"][3] <= d["box"][3] + 1]
            )
            assert inside, f"{a} vs {b}: at {w} px the {id_}'s drawing {d['svg']} sticks out of its box {d['box']}"
            small = f"draws '{d['which']}' at {d['small']:.2f} px"
            assert d["small"] >= 11 - 1e-6, f"{a} vs {b}: at {w} px the {id_} {small}"
        da, db = fit["diagram"]["box"], fit["side-diagram"]["box"]
        beside, under = db[0] >= da[2] - 1, db[1] >= da[3] - 1
        assert beside or under, f"{a} vs {b}: at {w} px b's diagram {db} overlaps a's {da}"
        if w == 1920 or (w == 1280 and beside_at_1280):
            assert beside, f"{a} vs {b}: at {w} px b's diagram should sit beside a's (both fit at 11 px)"
        if w == 1280 and not beside_at_1280:
            assert under, f"{a} vs {b}: at 1280 px the two do not fit side by side at 11 px: b's goes under a's"
        pg.screenshot(path=str(ARTIFACTS / f"compare-fit-{a}-{b}-{w}x{h}.png"))
    assert_clean(pg, server)


#: Each number run b's diagram prints, by its line: {gate: the printed text of its value}, those shown.
_PRINTED_JS = """() => Object.fromEntries([...document
  .querySelectorAll('[data-testid="side-diagram"] .dg-val[data-gate]')]
  .filter((e) => e.getClientRects().length > 0 && e.textContent.trim())
  .map((e) => [e.dataset.gate, e.textContent]))"""

#: The runs' names over their views, as the page prints them.
_LABELS_JS = """() => Object.fromEntries(["side-title-a", "side-title", "side-heat-title-a", "side-heat-title"]
  .map((id) => [id, document.getElementById(id).textContent]))"""


def _printed_b_matches(pg, rnn_h: list[list[float]], t: int, unit: int, at: int | None = None) -> None:
    """Run b's diagram prints h_t and h_{t−1} of `unit` at b's step t as the API gives them (to its rounding), while
    the page's scrubber says step `at` (default t)."""
    at = t if at is None else at
    pg.wait_for_function(
        f"""() => {{ const p = ({_PRINTED_JS})(); return p.h !== undefined && p.h_prev !== undefined
          && document.querySelector('[data-testid="timestep"]').dataset.t === "{at}"; }}""",
        timeout=15_000,
    )
    want = {"h": rnn_h[t][unit], "h_prev": rnn_h[t - 1][unit] if t > 0 else 0.0}
    for _ in range(50):  # the strip and the numbers follow t in the next frame
        printed = pg.evaluate(_PRINTED_JS)
        got = {k: _number(printed[k]) for k in want}
        if all(abs(got[k][0] - want[k]) <= got[k][1] for k in want):
            return
        pg.wait_for_timeout(100)
    raise AssertionError(f"at t = {t} b's diagram prints {printed}, POST /api/trace of b gives {want}")


def test_a_page_saved_while_comparing_carries_run_b_offline(page, new_page, server, tmp_path):
    """Save as page beside recall-rnn: the file opens from disk with the network refused, shows b's diagram and
    heatmaps beside a's under the live page's labels, and its one scrubber moves b's printed numbers to the API's."""
    unit_b, t0, t1 = 3, 20, 9
    page.goto(f"{server}/#model=recall-lstm&unit=14&t={t0}&text={urllib.parse.quote(TEXT)}&vs=recall-rnn&vs_unit=3")
    rnn = api_trace(server, "recall-rnn", TEXT)["layers"][0]["h"]  # (T, 16)
    _wait_b(page, t0, unit_b, rnn[t0][unit_b])
    live_labels = page.evaluate(_LABELS_JS)
    assert "b: recall-rnn, unit 3" in live_labels["side-title"]
    saved = save_page(page, tmp_path)
    assert saved.name == f"gatescope-recall-lstm-vs-recall-rnn-t{t0}-unit14.html"
    assert_clean(page, server)

    off = new_page(1280, 720)
    refused = _offline(off)
    off.goto(saved.as_uri())
    expect(off.get_by_test_id("side-diagram-box")).to_be_visible(timeout=15_000)
    expect(off.get_by_test_id("model-b")).to_have_text("recall-rnn")
    _printed_b_matches(off, rnn, t0, unit_b)  # as saved: the step and b's unit shown when it was saved
    assert off.evaluate(_LABELS_JS) == live_labels, "the saved page names the runs otherwise than the live page"
    expect(off.get_by_test_id("b-heatmap-h")).to_be_visible()
    expect(off.get_by_test_id("heatmaps").locator("figure[data-gate]")).to_have_count(6)
    a_box = off.get_by_test_id("diagram").bounding_box()
    b_box = off.get_by_test_id("side-diagram").bounding_box()
    assert b_box["x"] >= a_box["x"] + a_box["width"] - 1, "at 1280 px the saved b's diagram sits beside a's"
    # the one scrubber drives both: back to t1 with the keyboard, then to the last step
    off.get_by_test_id("scrubber").focus()
    for _ in range(t0 - t1):
        off.keyboard.press("ArrowLeft")
    _printed_b_matches(off, rnn, t1, unit_b)
    off.keyboard.press("End")
    _printed_b_matches(off, rnn, len(TEXT) - 1, unit_b)
    off.screenshot(path=str(ARTIFACTS / "saved-compare-offline.png"), full_page=True)
    assert not (found := axe_violations(off)), _report("on the saved comparison", found)
    assert off.console_errors == [], off.console_errors
    assert refused == [], f"the saved page asked the network for {refused}"


def test_a_page_saved_on_two_texts_stops_b_at_its_last_step(page, new_page, server, tmp_path):
    """One model on two texts, saved: b's text is in the file, and past b's steps b stays at its last, as live."""
    text_b = "a14159?"
    page.goto(f"{server}/#model=recall-lstm&unit=2&t=3&text={urllib.parse.quote(TEXT)}&vs_text={text_b}")
    b_h = api_trace(server, "recall-lstm", text_b)["layers"][0]["h"]
    _wait_b(page, 3, 2, b_h[3][2])
    saved = save_page(page, tmp_path)
    off = new_page(1280, 720)
    refused = _offline(off)
    off.goto(saved.as_uri())
    expect(off.get_by_test_id("input-b")).to_have_text(text_b)
    _printed_b_matches(off, b_h, 3, 2)
    expect(off.get_by_test_id("side-title")).to_contain_text("unit 2 (the same unit as a), 7 steps")
    off.get_by_test_id("scrubber").focus()
    off.keyboard.press("End")
    _printed_b_matches(off, b_h, len(text_b) - 1, 2, at=len(TEXT) - 1)
    assert off.console_errors == [] and refused == [], (off.console_errors, refused)
