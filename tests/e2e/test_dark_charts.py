"""The charts in dark mode (Playwright color_scheme="dark"): the probe's feature and unit curves, the dashboard's
mean line and the inspector's unit curves (a canvas) stand out from their panel (contrast >= 3:1, WCAG's for graphics),
their colours come from the page's CSS (--chart-*, plotting.js chartColours()), and a change of the system's scheme
redraws them in the other scheme's colours. Screenshots into /tmp/shots-small14/."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import expect

from .test_dashboard import UNIT, indexed  # noqa: F401  (the fixture: a server with a small dyck index)
from .test_probe import DYCK

pytestmark = pytest.mark.e2e

SHOTS = Path("/tmp/shots-small14")

#: Every stroke a chart draws that must stand out, with the background of the panel it sits on.
_STROKES_JS = """() => {
  const bg = (e) => { for (let p = e; p; p = p.parentElement) { const c = getComputedStyle(p).backgroundColor;
    if (c && c !== "rgba(0, 0, 0, 0)" && c !== "transparent") return c; } return "rgb(255, 255, 255)"; };
  const strokes = (sel) => [...document.querySelectorAll(sel)]
    .map((e) => ({ stroke: getComputedStyle(e).stroke, bg: bg(e) }));
  return {
    probe: strokes("#probe-plot .scatterlayer .trace path.js-line"),
    mean: strokes('[data-testid="dashboard-histogram"] .shapelayer path'),
  };
}"""


#: The colour the unit's curves are painted in (the canvas's commonest opaque pixel) and --chart-line's, as rgb().
_CURVES_JS = """() => {
  const cv = document.querySelector(".in-lines");
  const d = cv.getContext("2d").getImageData(0, 0, cv.width, cv.height).data;
  const n = new Map();
  for (let i = 0; i < d.length; i += 4) if (d[i + 3] === 255) {
    const k = `rgb(${d[i]}, ${d[i + 1]}, ${d[i + 2]})`; n.set(k, (n.get(k) || 0) + 1); }
  const top = [...n.entries()].sort((a, b) => b[1] - a[1])[0];
  const probe = document.createElement("div");
  probe.style.color = getComputedStyle(document.documentElement).getPropertyValue("--chart-line");
  document.body.append(probe);
  const want = getComputedStyle(probe).color;
  probe.remove();
  let bg = "rgb(255, 255, 255)";
  for (let p = cv; p; p = p.parentElement) { const c = getComputedStyle(p).backgroundColor;
    if (c && c !== "rgba(0, 0, 0, 0)" && c !== "transparent") { bg = c; break; } }
  return { drawn: top ? top[0] : null, pixels: top ? top[1] : 0, want, bg };
}"""


def _rgb(css: str) -> tuple[float, ...]:
    nums = [
        float(x) for x in css[css.index("(") + 1 : css.index(")")].replace("/", ",").replace(" ", ",").split(",") if x
    ]
    return tuple(nums[:3])


def _lum(rgb: tuple[float, ...]) -> float:
    def lin(c: float) -> float:
        c /= 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (lin(c) for c in rgb)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a: str, b: str) -> float:
    """WCAG contrast ratio of two CSS rgb() colours."""
    la, lb = sorted((_lum(_rgb(a)), _lum(_rgb(b))), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def _strokes(pg) -> dict:
    return pg.evaluate(_STROKES_JS)


def test_the_charts_stand_out_in_dark_mode_and_follow_a_scheme_change(browser, indexed):  # noqa: F811
    SHOTS.mkdir(parents=True, exist_ok=True)
    ctx = browser.new_context(viewport={"width": 1280, "height": 720}, color_scheme="dark")
    pg = ctx.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    try:
        pg.goto(f"{indexed}/#model=dyck&unit={UNIT}&gate=c&text={DYCK}")
        board = pg.get_by_test_id("dashboard-body")
        expect(board.get_by_test_id("dashboard-histogram").locator(".bars .point").first).to_be_attached(timeout=40_000)
        pg.get_by_test_id("probe-feature").select_option("f:depth")
        pg.get_by_test_id("probe-run").click()
        expect(pg.get_by_test_id("probe")).to_have_attribute("data-state", "done", timeout=20_000)
        pg.wait_for_function(
            "() => document.querySelectorAll('#probe-plot .scatterlayer .trace path.js-line').length === 2"
            " && document.querySelectorAll('[data-testid=\"dashboard-histogram\"] .shapelayer path').length > 0",
            timeout=20_000,
        )
        dark = _strokes(pg)
        curves = pg.evaluate(_CURVES_JS)
        assert curves["pixels"] > 50 and curves["drawn"] == curves["want"], f"dark mode: the unit's curves {curves}"
        for name, lines in dark.items():
            assert lines, f"no {name} drawn"
            for ln in lines:
                ratio = contrast(ln["stroke"], ln["bg"])
                assert ratio >= 3, f"dark mode: a {name} line {ln['stroke']} on {ln['bg']} has contrast {ratio:.2f}"
        pg.get_by_test_id("probe").scroll_into_view_if_needed()
        pg.screenshot(path=str(SHOTS / "dark-probe.png"))
        board.scroll_into_view_if_needed()
        pg.screenshot(path=str(SHOTS / "dark-dashboard.png"))

        # the system turns light: the charts redraw in the light scheme's colours, which stand out there too
        pg.emulate_media(color_scheme="light")
        pg.wait_for_function(
            "(was) => { const e = document.querySelector('[data-testid=\"dashboard-histogram\"] .shapelayer path');"
            " return e && getComputedStyle(e).stroke !== was; }",
            arg=dark["mean"][0]["stroke"],
            timeout=10_000,
        )
        light = _strokes(pg)
        pg.wait_for_function(f"() => ({_CURVES_JS})().drawn !== {curves['drawn']!r}", timeout=10_000)
        relit = pg.evaluate(_CURVES_JS)
        assert relit["drawn"] == relit["want"] != curves["want"], f"light mode: the unit's curves {relit}"
        assert contrast(relit["drawn"], relit["bg"]) >= 3, relit
        assert light["probe"][1]["stroke"] != dark["probe"][1]["stroke"]  # the unit's curve redrawn too
        for name, lines in light.items():
            for ln in lines:
                ratio = contrast(ln["stroke"], ln["bg"])
                assert ratio >= 3, f"light mode: a {name} line {ln['stroke']} on {ln['bg']} has contrast {ratio:.2f}"
        assert errors == []
    finally:
        ctx.close()
