"""Long texts in a real Chromium (issue 14, part 6): a 20,000-character paste shows a window of steps around t on the
heatmaps, the curves and the coloured text (cells as wide as a short text's, not squeezed), the window follows t, the
overview strip moves it (a click, a drag) and zooms it; the unit curves answer hover with a readout of the API's
values and select t on a click; heatmap axes carry token labels when they fit."""

from __future__ import annotations

import urllib.parse
from pathlib import Path

import numpy as np
import pytest

from .conftest import _DRAWN_JS, ROOT, api_card, api_trace, assert_clean, drawn, wait_drawn

pytestmark = pytest.mark.e2e

#: 20,000 characters of Python the code model reads (the project's own model/ sources).
LONG = "".join(p.read_text() for p in sorted((ROOT / "model").rglob("*.py")))[:20000]
#: How the page writes a space, a newline and a tab as a token (static/js/format.js showToken).
VISIBLE = {" ": "␣", "\n": "↵", "\t": "⇥"}
#: Steps a window shows at first (static/js/state.js WINDOW_STEPS).
WINDOW = 400
#: The page shows the trace of text s, drawn (bench/browser.py's PASTED).
PASTED = """(s) => gatescope.state.tracedText === s && gatescope.state.trace.T > 0
  && gatescope.lastDrawn().version === gatescope.state.trace.version"""

#: The window the page shows, the overview's box, the plotly x range of the f heatmap and the curves.
_VIEW_JS = """() => {
  const s = gatescope.state, ov = document.querySelector('[data-testid="overview"]');
  const hm = document.querySelector('[data-testid="heatmap-f"] .hm-plot');
  const cv = document.querySelector('#curves .in-plot');
  return { t: s.t, T: s.T, start: s.view.start, stop: s.view.stop, size: s.windowSize,
    ovStart: Number(ov.dataset.start), ovStop: Number(ov.dataset.stop),
    label: ov.querySelector('[data-testid="overview-label"]').textContent,
    hmRange: hm._fullLayout ? hm._fullLayout.xaxis.range : null,
    cvRange: cv._fullLayout ? cv._fullLayout.xaxis.range : null,
    spans: document.querySelectorAll('#coloured-text span[data-t]').length,
    firstSpan: Number(document.querySelector('#coloured-text span[data-t]')?.dataset.t) };
}"""


def view(pg) -> dict:
    """The window as the state, the overview, the heatmaps and the curves show it."""
    return pg.evaluate(_VIEW_JS)


def wait_window(pg, start: int, stop: int) -> dict:
    """Wait until the heatmaps and curves have drawn the window [start, stop); return view(pg)."""
    pg.wait_for_function(
        f"""([a, b]) => {{ const v = ({_VIEW_JS})();
          return v.start === a && v.stop === b && v.hmRange && v.cvRange
            && Math.abs(v.hmRange[0] - (a - 0.5)) < 1e-6 && Math.abs(v.cvRange[0] - (a - 0.5)) < 1e-6; }}""",
        arg=[start, stop],
        timeout=15_000,
    )
    return view(pg)


def wait_painted(pg, gates: list[str], n: int) -> list[dict]:
    """Wait until every heatmap shows exactly n painted columns, 0 to n−1 (the window's steps); return drawn(pg)."""
    pg.wait_for_function(
        f"""([gates, n]) => {{ const d = ({_DRAWN_JS})();
          const full = (p) => p.painted.length === n && p.painted[n - 1] === n - 1;
          return d.length === gates.length && d.every(full); }}""",
        arg=[gates, n],
        timeout=15_000,
    )
    return drawn(pg)


def paste(pg, text: str) -> None:
    """Replace the text box's text by `text` as one insertion (a paste)."""
    box = pg.get_by_test_id("input")
    box.focus()
    pg.keyboard.press("Control+A")
    pg.keyboard.insert_text(text)


def test_a_20k_paste_shows_a_window_that_follows_t_and_the_overview_moves_and_zooms_it(page, server):
    gates = api_card(server, "code")["gates"]
    page.goto(f"{server}/#model=code")
    page.wait_for_function("() => window.gatescope && gatescope.lastDrawn().at > 0")
    paste(page, LONG)
    page.wait_for_function(
        f"() => gatescope.state.T === {len(LONG)} && gatescope.lastDrawn().version === gatescope.state.trace.version",
        timeout=60_000,
    )
    T = len(LONG)
    # t follows the last step: the window ends a quarter window past it (room for typing), all 20,000 steps held
    v = wait_window(page, T - 1 - (WINDOW - 1 - WINDOW // 4), T - 1 - (WINDOW - 1 - WINDOW // 4) + WINDOW)
    assert v["t"] == T - 1 and v["stop"] - v["start"] == WINDOW
    assert (v["ovStart"], v["ovStop"]) == (v["start"], T)
    assert v["label"] == f"steps {v['start'] + 1:,}–{T:,} of {T:,} shown"
    panels = drawn(page)
    assert [p["gate"] for p in panels] == gates
    for p in panels:  # the window's steps are painted, each as wide as a 400-step text's (not 20,000 in 270 px)
        assert p["painted"] == list(range(T - v["start"])), p["gate"]
        assert p["colW"] * WINDOW > 200, f"{p['gate']}: cells {p['colW']:.3f} px wide"
    assert v["spans"] == T - v["start"] and v["firstSpan"] == v["start"]  # the coloured text: the window's steps

    # t moves far back: the window follows it, the cursor is inside it
    page.evaluate("() => gatescope.state.setT(5000)")
    v = wait_window(page, 5000 - (WINDOW - 1 - WINDOW // 4), 5000 - (WINDOW - 1 - WINDOW // 4) + WINDOW)
    assert v["start"] <= 5000 < v["stop"] and v["spans"] == WINDOW and v["firstSpan"] == v["start"]
    wait_painted(page, gates, WINDOW)  # the window's 400 columns, all painted

    # a click at three quarters of the overview centres the window there; t stays
    strip = page.get_by_test_id("overview-strip")
    strip.scroll_into_view_if_needed()
    box = strip.bounding_box()
    page.mouse.click(box["x"] + 0.75 * box["width"], box["y"] + box["height"] / 2)
    at = 0.75 * T
    v = view(page)
    assert abs((v["start"] + v["stop"]) / 2 - at) <= T / box["width"] + 1, v
    assert v["t"] == 5000
    v = wait_window(page, v["start"], v["stop"])
    assert v["spans"] == WINDOW and v["firstSpan"] == v["start"]

    # dragging the box by 100 px moves the window by 100 px of the text
    win = page.get_by_test_id("overview-window").bounding_box()
    x, y = win["x"] + win["width"] / 2, win["y"] + win["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x - 60, y, steps=3)
    page.mouse.move(x - 100, y, steps=3)
    page.mouse.up()
    moved = view(page)
    assert abs((moved["start"] - v["start"]) + 100 * T / box["width"]) <= T / box["width"] + 1, (v, moved)
    wait_window(page, moved["start"], moved["stop"])

    # zoom in: half the steps, each twice as wide; a key step brings the window back around t
    page.get_by_test_id("zoom-in").click()
    v = view(page)
    assert v["size"] == WINDOW // 2 and v["stop"] - v["start"] == WINDOW // 2
    page.get_by_role("heading", name="The cell at step t").click()
    page.keyboard.press("ArrowRight")
    v = view(page)
    assert v["t"] == 5001 and v["start"] <= 5001 < v["stop"]
    wait_window(page, v["start"], v["stop"])
    assert all(p["colW"] * WINDOW // 2 > 200 for p in wait_painted(page, gates, WINDOW // 2))
    assert_clean(page, server)


def _curve_point(pg, t: int) -> tuple[float, float]:
    """Page coordinates of step t in the middle of the curves' plot area."""
    area = pg.get_by_test_id("curves-area")
    area.scroll_into_view_if_needed()
    box = area.bounding_box()
    v = view(pg)
    n = v["stop"] - v["start"] if v["T"] > v["size"] else (v["cvRange"][1] - v["cvRange"][0])
    return box["x"] + (t - v["start"] + 0.5) * box["width"] / n, box["y"] + box["height"] / 2


def test_the_curves_read_out_the_step_under_the_pointer_and_a_click_selects_it(page, server):
    text = Path(ROOT / "model" / "cells.py").read_text()[:150]
    trace = api_trace(server, "code", text)
    gates = api_card(server, "code")["gates"]
    unit = 118
    page.goto(f"{server}/#model=code&unit={unit}&t=0&text={urllib.parse.quote(text)}")
    wait_drawn(page, gates, len(trace["tokens"]))
    page.wait_for_function("() => document.querySelector('#curves .in-plot')._fullLayout !== undefined", timeout=15_000)
    t = 97
    page.mouse.move(*_curve_point(page, t))
    tip = page.get_by_test_id("curves-readout")
    tip.wait_for(state="visible")
    assert tip.get_attribute("data-t") == str(t)
    said = tip.inner_text()
    assert said.startswith(f"t = {t} ") and f"unit {unit}" in said
    layer = trace["layers"][0]
    values = dict(line.split(" = ") for line in said.splitlines()[1:])
    assert len(values) == len(gates)
    for g, (name, shown) in zip(gates, values.items(), strict=True):  # each gate's value at t, as the API has it
        want = layer[g][t][unit]
        assert float(shown.replace("−", "-")) == pytest.approx(want, abs=6e-4), (g, name, shown, want)
    page.mouse.click(*_curve_point(page, t))
    page.wait_for_function(f"() => gatescope.state.t === {t}")
    assert page.get_by_test_id("timestep").get_attribute("data-t") == str(t)
    assert_clean(page, server)


def test_heatmap_axes_label_tokens_only_when_they_fit(page, server):
    text = Path(ROOT / "model" / "network.py").read_text()[:200]
    gates = api_card(server, "code")["gates"]
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(f"{server}/#model=code&t=60&text={urllib.parse.quote(text)}")
    wait_drawn(page, gates, len(text))
    ticks = "() => [...document.querySelectorAll('[data-testid=\"heatmap-f\"] .xtick text')].map((n) => n.textContent)"
    page.wait_for_function(f"() => ({ticks})().length > 0", timeout=15_000)
    assert all(x.replace(",", "").isdigit() for x in page.evaluate(ticks))  # 200 tokens do not fit: step numbers
    page.get_by_test_id("overview").scroll_into_view_if_needed()
    for _ in range(3):  # 100, 50, 25 steps
        page.get_by_test_id("zoom-in").click()
    v = view(page)
    assert v["stop"] - v["start"] == 25 and v["start"] <= 60 < v["stop"]
    page.wait_for_function(f"() => ({ticks})().length === 25", timeout=15_000)
    got = page.evaluate(ticks)
    assert got == [VISIBLE.get(c, c) for c in text[v["start"] : v["stop"]]]  # every token of the window, in order
    assert_clean(page, server)


#: Per gate, the values the page's store holds at steps ts (what the heatmaps, curves and cards draw).
_STORE_JS = """(ts) => { const s = gatescope.state, out = {};
  for (const [g, series] of Object.entries(s.trace.layers[0])) out[g] = ts.map((t) => Array.from(series.row(t)));
  const tokens = ts.map((t) => s.trace.tokens[t]), next = ts.map((t) => s.trace.probs.tokens[t]);
  return { T: s.T, values: out, tokens, next }; }"""


def assert_store_is_the_apis(pg, server, text: str, ts: list[int]) -> None:
    """The page holds the API's trace of `text` at steps ts, every gate (within the wire's 16-bit rounding)."""
    trace = api_trace(server, "code", text)
    got = pg.evaluate(_STORE_JS, ts)
    assert got["T"] == len(trace["tokens"])
    assert got["tokens"] == [trace["tokens"][t] for t in ts]
    assert got["next"] == [[p["token"] for p in trace["probs"][t]] for t in ts]  # the top-5 next tokens, in order
    for g, rows in got["values"].items():
        want = np.asarray(trace["layers"][0][g], dtype=np.float64)[ts]  # (len(ts), H)
        np.testing.assert_allclose(np.asarray(rows), want, rtol=2e-3, atol=2e-3, err_msg=f"gate {g}")


def test_a_paste_over_part_of_a_long_text_and_the_keys_after_it_show_the_apis_values(page, server):
    # a paste keeping the first 500 steps: its reply (from step 500) is decoded off the main thread into buffers
    # with room for the kept steps (frames.js), which the store keeps without copying the new ones; a key after it
    # writes into their headroom. Every step, kept, pasted or typed, must still read as the API's.
    first = LONG[:2500]
    page.goto(f"{server}/#model=code")
    page.wait_for_function("() => window.gatescope && gatescope.lastDrawn().at > 0")
    paste(page, first)
    page.wait_for_function(PASTED, arg=first, timeout=60_000)
    second = first[:500] + LONG[5000:7000]
    box = page.get_by_test_id("input")
    box.evaluate("(b) => b.setSelectionRange(500, b.value.length)")
    page.keyboard.insert_text(second[500:])
    page.wait_for_function(PASTED, arg=second, timeout=60_000)
    assert page.evaluate("gatescope.state.trace.from") == 500  # only the steps after the kept ones came
    assert_store_is_the_apis(page, server, second, [0, 250, 499, 500, 501, 1700, len(second) - 1])
    page.keyboard.type("ab")  # the caret is after the paste: at the end
    page.wait_for_function(PASTED, arg=second + "ab", timeout=30_000)
    assert_store_is_the_apis(page, server, second + "ab", [0, 499, 500, len(second) - 1, len(second), len(second) + 1])
    assert_clean(page, server)
