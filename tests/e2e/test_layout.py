"""The page fits the screen (issue 14, part 4): no sideways scrolling from 360 to 2560 px, the diagram's text never
under 11 px, the header readable on a projector, nothing printed over anything on a phone; at 1280 x 720 the diagram,
the hovered gate's heatmap and the predictions on screen together; presentation mode for a lecture hall; dark mode."""

from __future__ import annotations

from playwright.sync_api import expect

from .conftest import ARTIFACTS, assert_clean, wait_frames
from .test_page import open_code

#: The widths the page must fit without scrolling sideways (a small phone to a 1440p monitor), with a height each.
SIZES = [(360, 740), (390, 844), (1024, 768), (1280, 720), (1920, 1080), (2560, 1440)]

#: The smallest text in the diagram as drawn: font size x the SVG's screen scale, over every text and tspan shown.
DIAGRAM_MIN_TEXT_JS = """() => {
  const svg = document.querySelector('[data-testid="diagram"] svg');
  let min = Infinity, which = '';
  for (const t of svg.querySelectorAll('text, tspan')) {
    if (!t.getClientRects().length || !t.textContent.trim()) continue;
    // the drawing's scale on screen (a capped height shrinks it as much as a narrow width does)
    const px = parseFloat(getComputedStyle(t).fontSize) * t.getScreenCTM().a;
    if (px < min) { min = px; which = t.textContent; }
  }
  return [min, which];
}"""

#: Boxes that overlap, among `selector`'s visible elements (each pair once), as "a / b" names.
OVERLAPS_JS = """(selector) => {
  const els = [...document.querySelectorAll(selector)].filter((e) => e.getClientRects().length);
  const out = [];
  for (let i = 0; i < els.length; i++) for (let j = i + 1; j < els.length; j++) {
    const a = els[i].getBoundingClientRect(), b = els[j].getBoundingClientRect();
    const x = Math.min(a.right, b.right) - Math.max(a.left, b.left);
    const y = Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top);
    if (x > 1 && y > 1) out.push(`${els[i].className || els[i].tagName} / ${els[j].className || els[j].tagName}`);
  }
  return out;
}"""

#: Each heatmap's title box against its export buttons' box: the pairs that overlap (their gates).
TITLES_OVER_BUTTONS_JS = """() => [...document.querySelectorAll('[data-testid="heatmaps"] figure[data-gate]')]
.filter((f) => {
  const t = f.querySelector('.gtitle'), tools = f.querySelector('.hm-tools');
  if (!t || !tools) return false;
  const a = t.getBoundingClientRect(), b = tools.getBoundingClientRect();
  return Math.min(a.right, b.right) > Math.max(a.left, b.left) && Math.min(a.bottom, b.bottom) > Math.max(a.top, b.top);
}).map((f) => f.dataset.gate)"""


#: The header's controls one by one (a group's box can stay in its grid cell while its buttons spill over the next).
HEADER_CONTROLS = "header.top :is(h1, button, select, label, .desc)"


#: Widths for the header: each side of its breakpoints (480, 700, 1200 px), the common screens, and between them.
HEADER_WIDTHS = [360, 420, 480, 481, 560, 700, 701, 820, 960, 1024, 1100, 1199, 1200, 1280, 1366, 1600, 1920, 2560]

#: The right edge of the rightmost of `selector`'s visible elements.
RIGHTMOST_JS = """(selector) => Math.max(...[...document.querySelectorAll(selector)]
.filter((e) => e.getClientRects().length).map((e) => e.getBoundingClientRect().right))"""


def box(pg, selector: str) -> dict:
    """The first match's bounding box in the viewport."""
    return pg.locator(selector).first.bounding_box()


def on_screen(b: dict, width: int, height: int, whole: bool = False) -> bool:
    """Whether a box intersects the viewport (whole: lies inside it)."""
    if whole:
        return b["x"] >= -1 and b["y"] >= -1 and b["x"] + b["width"] <= width + 1 and b["y"] + b["height"] <= height + 1
    return b["x"] < width and b["y"] < height and b["x"] + b["width"] > 0 and b["y"] + b["height"] > 0


def test_the_page_fits_every_width_and_the_diagram_reads_at_11_px(page, server):
    open_code(page, server)
    for w, h in SIZES:
        page.set_viewport_size({"width": w, "height": h})
        page.evaluate("() => new Promise((r) => requestAnimationFrame(() => setTimeout(r, 250)))")
        wait_frames(page)
        page.screenshot(path=str(ARTIFACTS / f"layout-{w}x{h}.png"))
        sw = page.evaluate("[document.scrollingElement.scrollWidth, innerWidth]")
        assert sw[0] <= sw[1], f"at {w} px the page scrolls sideways: {sw[0]} px wide"
        px, which = page.evaluate(DIAGRAM_MIN_TEXT_JS)
        assert px >= 11 - 1e-6, f"at {w} px the diagram draws '{which}' at {px:.1f} px"
        assert page.evaluate(OVERLAPS_JS, "header.top > *") == [], f"the header's parts overlap at {w} px"
        assert page.evaluate(OVERLAPS_JS, HEADER_CONTROLS) == [], f"the header's controls overlap at {w} px"
        assert page.evaluate(OVERLAPS_JS, ".controls > *") == [], f"the controls overlap at {w} px"
        assert page.evaluate(TITLES_OVER_BUTTONS_JS) == [], f"heatmap titles under their buttons at {w} px"
        known, label = box(page, "#known"), box(page, "label[for=known]")
        assert known["x"] + known["width"] <= w and label["width"] > 40, f"the known units' select is cut at {w} px"
        if w == 1024:  # a projector: the description is readable, and "more" keeps the header short
            assert box(page, '[data-testid="description"]')["width"] >= 600
            more = page.locator("#description-more")
            more.click()
            expect(more).to_have_text("less")
            assert box(page, "header.top")["height"] <= 320
            more.click()
    assert_clean(page, server)


def test_the_header_wraps_without_overlap_at_every_width(new_page, server):
    pg = new_page(2560, 900)
    pg.goto(server + "/#model=code")
    expect(pg.get_by_test_id("upload-open")).to_be_visible()  # the test server takes uploads: the widest picker
    expect(pg.get_by_test_id("story-start")).to_be_enabled()
    for w in HEADER_WIDTHS:
        pg.set_viewport_size({"width": w, "height": 900})
        pg.evaluate("() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)))")
        assert pg.evaluate(OVERLAPS_JS, HEADER_CONTROLS) == [], f"the header's controls overlap at {w} px"
        right = pg.evaluate(RIGHTMOST_JS, HEADER_CONTROLS)
        assert right <= w, f"the header's controls reach {right:.0f} px at {w} px"
    assert_clean(pg, server)


def test_at_1280x720_the_diagram_the_hovered_gate_and_the_predictions_are_on_screen(page, server):
    open_code(page, server)  # 1280 x 720
    wait_frames(page)
    diagram, preds = '[data-testid="diagram"] svg', '[data-testid="predictions"]'
    for sel in (diagram, preds, '[data-testid="heatmaps"] figure[data-gate]'):
        assert on_screen(box(page, sel), 1280, 720), f"{sel} is off screen on opening"
    # scrolled to the diagram: it, the predictions and the heatmap of the gate hovered in the diagram, all whole
    page.evaluate("(y) => scrollTo(0, y)", box(page, ".diagram-panel")["y"] - 8)  # opened at scroll 0
    for gate in ("f", "o", "h"):
        part = f'svg[data-cell="lstm"] :is(.dg-box, .dg-op)[data-part="{gate}"]'
        page.locator(part).first.hover()
        lit = f'[data-testid="heatmap-{gate}"]'
        expect(page.locator(lit)).to_have_class("hm is-highlit")
        page.wait_for_function(
            "(s) => { const b = document.querySelector(s).getBoundingClientRect();"
            " return b.top >= 0 && b.bottom <= innerHeight; }",
            arg=lit,
            timeout=3_000,
        )
        for sel in (diagram, preds, lit):
            assert on_screen(box(page, sel), 1280, 720, whole=True), f"{sel} is not whole with {gate} hovered"
    page.screenshot(path=str(ARTIFACTS / "layout-1280x720-hover-h.png"))
    assert_clean(page, server)


def test_presentation_mode_fits_a_projector_and_a_clicker_steps(new_page, server):
    pg = new_page(1024, 768)
    pg.goto(server + "/#model=code&present=1")
    wait_frames(pg)
    expect(pg.get_by_test_id("present")).to_have_attribute("aria-pressed", "true")
    assert pg.evaluate("parseFloat(getComputedStyle(document.body).fontSize)") >= 18
    for hidden in ("steps", "curves", "dashboard", "input"):
        expect(pg.get_by_test_id(hidden)).to_be_hidden()
    shown = pg.locator('[data-testid="heatmaps"] figure[data-gate]:visible')
    expect(shown).to_have_count(1)
    assert shown.get_attribute("data-gate") == pg.evaluate("gatescope.state.gate") == "c"
    whole = ('[data-testid="diagram"] svg', '[data-testid="predictions"]', '[data-testid="scrubber"]')
    for sel in (*whole, '[data-testid="heatmap-c"] .hm-area'):
        assert on_screen(box(pg, sel), 1024, 768, whole=True), f"{sel} is not whole on the projector's screen"
    px, which = pg.evaluate(DIAGRAM_MIN_TEXT_JS)
    assert px >= 11, f"presenting, the diagram draws '{which}' at {px:.1f} px"
    pg.screenshot(path=str(ARTIFACTS / "layout-present-1024x768.png"))
    t = pg.evaluate("gatescope.state.t")
    pg.keyboard.press("PageUp")
    pg.keyboard.press("PageUp")
    pg.keyboard.press("PageDown")
    expect(pg.get_by_test_id("timestep")).to_have_attribute("data-t", str(t - 1))
    pg.get_by_test_id("present").click()
    expect(pg.get_by_test_id("steps")).to_be_visible()
    expect(pg.locator('[data-testid="heatmaps"] figure[data-gate]:visible')).to_have_count(6)
    pg.wait_for_function("() => !location.hash.includes('present=1')", timeout=3_000)
    assert_clean(pg, server)


#: Text whose contrast against what is behind it is under `need`: [what, its text, ratio] for each, over the page's
#: text (labels, headings, buttons, the predictions, plotly's tick labels, the diagram's numbers on its module).
CONTRAST_JS = """(need) => {
  const rgb = (c) => { const m = c.match(/[\\d.]+/g); return m ? m.map(Number) : [0, 0, 0, 0]; };
  const lin = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
  const lum = ([r, g, b]) => 0.2126 * lin(r) + 0.7152 * lin(g) + 0.0722 * lin(b);
  const ratio = (a, b) => { const [x, y] = [lum(a), lum(b)].sort((p, q) => q - p); return (x + 0.05) / (y + 0.05); };
  const behind = (el) => {
    for (let n = el; n; n = n.parentElement) {
      const c = rgb(getComputedStyle(n).backgroundColor);
      if (c.length < 4 || c[3] > 0.5) return c;
    }
    return [255, 255, 255];
  };
  const bad = [];
  const html = document.querySelectorAll(
    'h1, h2, h3, label, button, .sub, .desc, .timestep, .preds .p, .preds .tok, .step .prose, .eq, select, textarea, ' +
    '.lg-box, .lg-op, .side-title');
  for (const el of html) {
    if (!el.getClientRects().length || !el.textContent.trim()) continue;
    const r = ratio(rgb(getComputedStyle(el).color), behind(el));
    if (r < need) bad.push([el.tagName + '.' + el.className, el.textContent.trim().slice(0, 30), +r.toFixed(2)]);
  }
  const panel = behind(document.querySelector('.heatmaps-panel'));
  for (const t of document.querySelectorAll('.heatmaps-panel :is(.xtick text, .ytick text, .gtitle)')) {
    const r = ratio(rgb(getComputedStyle(t).fill), panel);
    if (r < need) bad.push(['plotly', t.textContent.slice(0, 30), +r.toFixed(2)]);
  }
  const module = rgb(getComputedStyle(document.querySelector('.dg-module')).fill);
  for (const t of document.querySelectorAll('.dg-num')) {
    const r = ratio(rgb(getComputedStyle(t).fill), module);
    if (r < need) bad.push(['diagram', t.textContent.slice(0, 30), +r.toFixed(2)]);
  }
  return bad;
}"""


def test_dark_mode_follows_the_system_and_every_text_reads(browser, server):
    for w, h in ((1280, 720), (390, 844)):
        ctx = browser.new_context(viewport={"width": w, "height": h}, color_scheme="dark")
        pg = ctx.new_page()
        errors: list[str] = []
        pg.on("pageerror", lambda e, errors=errors: errors.append(str(e)))
        pg.goto(server + "/")
        wait_frames(pg)
        bg = pg.evaluate("getComputedStyle(document.body).backgroundColor")
        rgb = [int(v) for v in bg[bg.index("(") + 1 : bg.index(")")].split(",")[:3]]
        assert sum(rgb) < 120, f"the page is not dark: {bg}"
        module = pg.evaluate("getComputedStyle(document.querySelector('.dg-module')).fill")
        assert module != "rgb(230, 242, 220)", "the diagram's module kept its light fill"
        assert pg.evaluate(CONTRAST_JS, 4.5) == []
        pg.screenshot(path=str(ARTIFACTS / f"layout-dark-{w}x{h}.png"))
        assert errors == []
        ctx.close()


def test_presentation_mode_keeps_diagram_text_legible_on_a_720p_projector(new_page, server):
    """Presenting caps the diagram's height; at 1280x720 that cap had shrunk its text to 9.5 px (tanh)."""
    pg = new_page(1280, 720)
    pg.goto(server + "/#model=code&present=1")
    wait_frames(pg)
    expect(pg.get_by_test_id("present")).to_have_attribute("aria-pressed", "true")
    px, which = pg.evaluate(DIAGRAM_MIN_TEXT_JS)
    assert px >= 11, f"presenting at 1280x720, the diagram draws '{which}' at {px:.1f} px"
    assert pg.evaluate("document.documentElement.scrollWidth") <= 1280
