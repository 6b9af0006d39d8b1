"""Accessibility in a real Chromium: axe-core (node_modules/axe-core, from npm) finds no serious or critical violation
on the page as it opens, with a dialog open and after scrubbing; the heatmaps, the curves and the coloured text say
the selected unit's values at t in words, and follow t."""

from __future__ import annotations

import json
import re
import urllib.parse

import pytest

from .conftest import ROOT, api_card, api_trace, wait_diagram, wait_drawn

pytestmark = pytest.mark.e2e

#: axe-core as npm installs it (package.json pins the version).
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
MODEL = "dyck"
TEXT = "(()((())))(()())$"
UNIT, T0 = 3, 9

_AXE_RUN_JS = """async () => {
  const r = await axe.run(document, { resultTypes: ["violations"] });
  return r.violations.filter((v) => v.impact === "serious" || v.impact === "critical").map((v) => ({
    id: v.id, impact: v.impact, help: v.help,
    nodes: v.nodes.slice(0, 5).map((n) => `${n.target.join(" ")}: ${n.failureSummary.replace(/\\s+/g, " ")}`),
  }));
}"""


def axe_violations(pg) -> list[dict]:
    """axe-core's serious and critical violations on the page as it is now."""
    if not pg.evaluate("() => typeof window.axe === 'object'"):
        pg.add_script_tag(path=str(AXE))
    return pg.evaluate(_AXE_RUN_JS)


def _report(state: str, found: list[dict]) -> str:
    lines = [f"axe-core: {len(found)} serious/critical violations {state}:"]
    for v in found:
        lines += [f"  [{v['impact']}] {v['id']}: {v['help']}", *(f"      {n}" for n in v["nodes"])]
    return "\n".join(lines)


@pytest.fixture
def axe_page(browser, server):
    """A page whose CSP lets the test inject axe-core (the app's own policy allows only its own scripts)."""
    ctx = browser.new_context(viewport={"width": 1280, "height": 720}, bypass_csp=True)
    pg = ctx.new_page()
    yield pg
    ctx.close()


def _open(pg, server: str) -> None:
    gates = api_card(server, MODEL)["gates"]
    pg.goto(f"{server}/#model={MODEL}&layer=0&t={T0}&unit={UNIT}&text={urllib.parse.quote(TEXT)}")
    wait_drawn(pg, gates, len(api_trace(server, MODEL, TEXT)["tokens"]))
    wait_diagram(pg, api_card(server, MODEL)["cell"], t=T0, unit=UNIT)


def test_axe_finds_no_serious_violation_opened_with_a_dialog_and_after_scrubbing(axe_page, server):
    pg = axe_page
    pg.goto(server + "/")  # the default model and example, as a visitor first sees them
    card = api_card(server, pg.evaluate("() => document.body.dataset.defaultModel"))
    wait_drawn(pg, card["gates"], len(api_trace(server, card["id"], card["examples"][0])["tokens"]))
    cell = card["cell"]
    wait_diagram(pg, cell)
    assert not (found := axe_violations(pg)), _report("as the page opens", found)
    pg.get_by_test_id("upload-open").click()
    pg.get_by_test_id("upload").wait_for(state="visible")
    assert not (found := axe_violations(pg)), _report("with the upload dialog open", found)
    pg.keyboard.press("Escape")
    pg.get_by_test_id("scrubber").focus()
    t = int(pg.get_by_test_id("timestep").get_attribute("data-t"))
    for _ in range(4):
        pg.keyboard.press("ArrowLeft")
    wait_diagram(pg, cell, t=t - 4)
    assert not (found := axe_violations(pg)), _report("after scrubbing", found)


def _said_number(text: str, after: str) -> float:
    """The number printed right after `after` in a sentence ("−1.324" read as -1.324)."""
    m = re.search(re.escape(after) + r"\s*(−?\d+(?:\.\d+)?)", text)
    assert m, f"no number after {after!r} in {text!r}"
    return float(m.group(1).replace("\u2212", "-"))


def test_heatmaps_curves_and_coloured_text_say_the_units_values_at_t_in_words(page, server):
    _open(page, server)
    layer = api_trace(server, MODEL, TEXT)["layers"][0]
    tokens = api_trace(server, MODEL, TEXT)["tokens"]
    for t in (T0, T0 - 3):
        if t != T0:
            page.get_by_test_id("scrubber").focus()
            for _ in range(T0 - t):
                page.keyboard.press("ArrowLeft")
            wait_diagram(page, "lstm", t=t, unit=UNIT)
        at = f"At t = {t} ('{tokens[t]}')"
        for gate, values in layer.items():
            label = page.get_by_test_id(f"heatmap-{gate}").locator(".hm-hit").get_attribute("aria-label")
            assert at in label, f"the {gate} heatmap's text alternative does not follow t: {label!r}"
            assert _said_number(label, f"unit {UNIT}:") == pytest.approx(values[t][UNIT], abs=5e-4), label
        curves = page.get_by_test_id("curves").get_attribute("aria-label")
        assert page.get_by_test_id("curves").get_attribute("role") == "img"
        assert at in curves, curves
        assert _said_number(curves, "C (cell state)") == pytest.approx(layer["c"][t][UNIT], abs=5e-4), curves
        assert _said_number(curves, "f (forget gate)") == pytest.approx(layer["f"][t][UNIT], abs=5e-4), curves
        said = page.get_by_test_id("coloured-text-said")
        assert said.get_attribute("aria-live") == "polite"
        text = said.text_content()
        assert f"At t = {t}, token '{tokens[t]}': unit {UNIT}'s C (cell state) is" in text, text
        assert _said_number(text, "C (cell state) is") == pytest.approx(layer["c"][t][UNIT], abs=5e-4), text


#: One unit held from t = 3 on (dyck's depth unit at 0): the page's hold marks, its list and the diagram's menu.
HOLD = [{"layer": 0, "unit": 4, "gate": "c", "op": "set", "value": 0.0, "from": 3}]


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_axe_finds_no_serious_violation_comparing_and_holding(browser, server, scheme):
    """Two runs side by side (recall-lstm beside recall-rnn), a held unit and the diagram's hold menu, in both
    colour schemes (the held list's light amber once carried light text in dark mode: 1.2:1)."""
    ctx = browser.new_context(viewport={"width": 1280, "height": 720}, bypass_csp=True, color_scheme=scheme)
    pg = ctx.new_page()
    pg.goto(f"{server}/#model=recall-lstm&unit=14&t=20&vs=recall-rnn")
    pg.get_by_test_id("side-diagram-box").wait_for(state="visible", timeout=30_000)
    assert not (found := axe_violations(pg)), _report(f"comparing two runs ({scheme})", found)
    hold = urllib.parse.quote(json.dumps(HOLD))
    pg.goto(f"{server}/#model=dyck&text={urllib.parse.quote(TEXT)}&t={T0}&unit=4&hold={hold}")
    pg.reload()  # a new page on the hash (goto to a hash alone does not reload it)
    pg.wait_for_function("() => window.gatescope.state.heldRuns.length === 1", timeout=30_000)
    pg.get_by_test_id("intervention").first.wait_for(state="visible")
    assert not (found := axe_violations(pg)), _report(f"with a unit held ({scheme})", found)
    pg.locator("#diagram .dg-part[data-part='c']").click()
    pg.get_by_test_id("hold-menu").wait_for(state="visible")
    assert not (found := axe_violations(pg)), _report(f"with the hold menu open ({scheme})", found)
    ctx.close()
