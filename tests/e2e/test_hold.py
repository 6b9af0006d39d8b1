"""Holding a unit from the diagram in a real Chromium: a click (or Enter) on a part opens "Hold unit 4's C at … from
t = …", the page then shows the run the model made with it (its predictions are POST /api/trace's with the same
interventions), the held values are marked in amber in the diagram, on the step cards ("→ held") and on the unit's
curves, and a shared link with hold= reproduces the held run."""

from __future__ import annotations

import functools
import json
import re
import urllib.parse
import urllib.request

import pytest
from playwright.sync_api import expect

from .conftest import ARTIFACTS, api_card, assert_clean, wait_diagram, wait_drawn

pytestmark = pytest.mark.e2e

TEXT = "((()(()))(()(("  # dyck, never back at depth 0
T_AT = 8  # read ")": depth 2 left open
DEPTH0 = 0.076  # the depth unit's C at depth 0 (test_intervene.py)


def _trace(server: str, interventions: list[dict]) -> dict:
    """POST /api/trace with `interventions` (asked once per list: a page's first visit starts the model's index
    build in the server, which slows its answers on a loaded machine)."""
    return json.loads(_asked(server, json.dumps(interventions)))


@functools.cache
def _asked(server: str, interventions: str) -> str:
    body = {"model": "dyck", "text": TEXT, "interventions": json.loads(interventions)}
    req = urllib.request.Request(
        server + "/api/trace", data=json.dumps(body).encode(), headers={"content-type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=120) as r:
        return r.read().decode()


def _open(new_page, server: str, w: int = 1280, h: int = 720, extra: str = ""):
    pg = new_page(w, h)
    pg.goto(f"{server}/#model=dyck&layer=0&unit=4&t={T_AT}&text={urllib.parse.quote(TEXT)}{extra}")
    card = api_card(server, "dyck")
    wait_drawn(pg, card["gates"], len(TEXT))
    wait_diagram(pg, card["cell"], t=T_AT, unit=4)
    return pg


def _preds(pg) -> list[list[str]]:
    """The page's next-token list at t: [token, "55.9%"]."""
    return pg.evaluate(
        "() => [...document.querySelectorAll('#preds li')].map((li) => "
        "[li.querySelector('.tok').innerText, li.querySelector('.p').innerText])"
    )


def _api_preds(trace: dict, t: int) -> list[list[str]]:
    return [[c["token"], f"{100 * c['p']:.1f}%"] for c in trace["probs"][t]]


def _expect_held_run(pg, server: str, held: list[dict], gates: list[str]) -> None:
    """The page shows the held run (its predictions at t are the API's with `held`, not the plain run's), marked."""
    want = _trace(server, held)
    plain = _trace(server, [])
    assert _api_preds(want, T_AT) != _api_preds(plain, T_AT)  # the hold changes what the model expects here
    pg.wait_for_function(
        "n => window.gatescope.state.heldRuns.length === n", arg=len(want["intervened"]), timeout=30_000
    )
    expect(pg.locator("#preds li").first.locator(".tok")).to_have_text(want["probs"][T_AT][0]["token"], timeout=30_000)
    assert _preds(pg) == _api_preds(want, T_AT)
    # the diagram: the held part in amber, its name says so, and the held unit's cell on the C strip
    c_op = pg.locator("#diagram .dg-part[data-part='c']")
    expect(c_op).to_have_class(re.compile(r"\bdg-held\b"))
    expect(c_op).to_have_attribute("aria-label", re.compile(r"held by hand"))
    expect(pg.locator("#diagram .dg-num.dg-held .dg-val[data-gate='c']").first).to_be_visible()
    expect(pg.locator("#diagram .dg-strip[data-strip='c'] [data-testid='diagram-held-cells'] rect")).to_have_count(1)
    # held at t − 1 as well (from t = 0): the C_{t−1} strip step t reads marks the unit too
    prev_cells = pg.locator("#diagram .dg-strip[data-strip='c_prev'] [data-testid='diagram-held-cells'] rect")
    expect(prev_cells).to_have_count(1)
    # the cards: "→ held" beside every C_t and C_{t−1} (held from t = 0: the step before was held too), only there
    expect(pg.locator("[data-testid='held-tag']:not([hidden])").first).to_be_visible()
    beside = pg.evaluate(
        "() => [...document.querySelectorAll('[data-testid=held-tag]:not([hidden])')]"
        ".map((tag) => tag.previousElementSibling.dataset.gate)"
    )
    numbers = pg.evaluate("() => [...document.querySelectorAll('#steps .num')].map((n) => n.dataset.gate)")
    assert sorted(beside) == sorted(k for k in numbers if k in ("c", "c_prev")) and "c_prev" in beside and "c" in beside
    # the curves: a band over the held steps on C's strip; the heatmaps outline the held cells
    band = pg.get_by_test_id("curves-held")
    expect(band).to_have_count(1)
    expect(band).to_have_attribute("aria-label", re.compile(r"unit 4's C .*held by hand from t = 0"))
    expect(pg.get_by_test_id("heatmap-held")).to_have_count(len(gates))


HELD = [{"layer": 0, "unit": 4, "gate": "c", "op": "set", "value": DEPTH0, "from": 0}]
TWO = [*HELD, {"layer": 0, "unit": 4, "gate": "o", "op": "zero", "from": 6}]


@pytest.fixture(autouse=True)
def _references(server):
    """The API's answers, asked before any page opens."""
    for held in ([], HELD, TWO):
        _trace(server, held)


def test_hold_from_the_diagram_by_mouse_changes_the_predictions_and_marks_the_held_values(new_page, server):
    gates = api_card(server, "dyck")["gates"]
    pg = _open(new_page, server)
    plain = _trace(server, [])
    assert _preds(pg) == _api_preds(plain, T_AT)
    expect(pg.get_by_test_id("held-tag")).to_have_count(0)
    pg.locator("#diagram .dg-part[data-part='c']").click()
    menu = pg.get_by_test_id("hold-menu")
    expect(menu).to_be_visible()
    expect(menu).to_have_attribute("role", "dialog")
    here = plain["layers"][0]["c"][T_AT][4]  # the value it has there is the menu's default
    assert abs(float(pg.get_by_test_id("hold-value").input_value()) - here) <= 1e-5 * max(1, abs(here))
    expect(pg.get_by_test_id("hold-title")).to_have_text(re.compile(rf"^Hold unit 4's C at .* from t = {T_AT}$"))
    pg.get_by_test_id("hold-value").fill(str(DEPTH0))
    pg.get_by_test_id("hold-from").fill("0")
    expect(pg.get_by_test_id("hold-title")).to_have_text(f"Hold unit 4's C at {DEPTH0} from t = 0")
    pg.get_by_test_id("hold-apply").click()
    expect(menu).to_be_hidden()
    _expect_held_run(pg, server, HELD, gates)
    expect(pg.get_by_test_id("intervention")).to_have_text(f"hold unit 4's C at {DEPTH0} from t = 0×")
    for scheme in ("light", "dark"):
        pg.emulate_media(color_scheme=scheme)
        pg.locator(".cell-row").screenshot(path=str(ARTIFACTS / f"hold-1280x720-{scheme}.png"))
    assert_clean(pg, server)


def test_hold_from_the_diagram_by_keyboard_and_escape_closes_the_menu(new_page, server):
    gates = api_card(server, "dyck")["gates"]
    pg = _open(new_page, server)
    c_op = pg.locator("#diagram .dg-part[data-part='c']")
    c_op.focus()
    pg.keyboard.press("Enter")
    menu = pg.get_by_test_id("hold-menu")
    expect(menu).to_be_visible()
    expect(pg.get_by_test_id("hold-value")).to_be_focused()
    pg.keyboard.press("Escape")  # dismissed: nothing held, the focus back on the part
    expect(menu).to_be_hidden()
    expect(c_op).to_be_focused()
    assert pg.evaluate("() => window.gatescope.state.interventions.length") == 0
    pg.keyboard.press(" ")  # Space opens it too (and does not play the steps: t stays)
    expect(pg.get_by_test_id("hold-value")).to_be_focused()
    assert pg.evaluate("() => window.gatescope.state.t") == T_AT
    pg.keyboard.type(str(DEPTH0))
    pg.keyboard.press("Tab")  # to "from t ="
    expect(pg.get_by_test_id("hold-from")).to_be_focused()
    pg.keyboard.press("Control+A")
    pg.keyboard.type("0")
    pg.keyboard.press("Enter")  # submits
    expect(menu).to_be_hidden()
    _expect_held_run(pg, server, HELD, gates)
    assert_clean(pg, server)


def test_a_shared_link_reproduces_the_held_run_and_marks_every_held_gate(new_page, server):
    gates = api_card(server, "dyck")["gates"]
    pg = _open(new_page, server)
    pg.locator("#diagram .dg-part[data-part='c']").click()
    pg.get_by_test_id("hold-value").fill(str(DEPTH0))
    pg.get_by_test_id("hold-from").fill("0")
    pg.get_by_test_id("hold-apply").click()
    # a second gate of the same unit, zeroed from t = 6: both are marked in the diagram
    pg.locator("#diagram .dg-part[data-part='o']").click()
    pg.get_by_test_id("hold-op").select_option("zero")
    expect(pg.get_by_test_id("hold-value")).to_be_hidden()
    pg.get_by_test_id("hold-from").fill("6")
    pg.get_by_test_id("hold-apply").click()
    held = TWO
    pg.wait_for_function("() => window.gatescope.state.heldRuns.length === 2", timeout=30_000)
    expect(pg.locator("#diagram .dg-part.dg-held")).to_have_count(2)
    # C (and C_{t−1}, held at t − 1 too) and o
    assert set(pg.locator("#diagram svg.dg").get_attribute("data-held").split()) == {"c", "c_prev", "o"}
    # the hash is written at most every 200 ms: wait for the one that holds both (the hash is percent-encoded)
    pg.wait_for_function("() => decodeURIComponent(location.hash).includes('zero')", timeout=5_000)
    url = pg.evaluate("() => location.href")
    assert json.loads(urllib.parse.unquote(re.search(r"hold=([^&]*)", url).group(1))) == held
    # the link in a fresh page (no shared storage): the same held run, the same marks
    other = new_page(1280, 720)
    other.goto(url)
    wait_drawn(other, gates, len(TEXT))
    other.wait_for_function("() => window.gatescope.state.heldRuns.length === 2", timeout=30_000)
    want = _trace(server, held)
    first = other.locator("#preds li").first.locator(".tok")
    expect(first).to_have_text(want["probs"][T_AT][0]["token"], timeout=30_000)
    assert _preds(other) == _api_preds(want, T_AT)
    expect(other.locator("#diagram .dg-part.dg-held")).to_have_count(2)
    expect(other.get_by_test_id("curves-held")).to_have_count(2)
    expect(other.get_by_test_id("intervention")).to_have_count(2)
    for w, h in [(1024, 768), (390, 844)]:
        other.set_viewport_size({"width": w, "height": h})
        other.wait_for_function(f"() => document.documentElement.scrollWidth <= {w}", timeout=10_000)
        for scheme in ("light", "dark"):
            other.emulate_media(color_scheme=scheme)
            other.locator(".cell-row").screenshot(path=str(ARTIFACTS / f"hold-{w}x{h}-{scheme}.png"))
    # removing them in the panel: a plain run again, no marks
    other.get_by_test_id("intervene-clear").click()
    other.wait_for_function("() => window.gatescope.state.heldRuns.length === 0", timeout=30_000)
    expect(other.locator("#diagram .dg-part.dg-held")).to_have_count(0)
    expect(other.get_by_test_id("curves-held")).to_have_count(0)
    assert _preds(other) == _api_preds(_trace(server, []), T_AT)
    assert_clean(pg, server)
    assert_clean(other, server)


def test_the_unit_panel_button_opens_the_same_menu(new_page, server):
    pg = _open(new_page, server)
    button = pg.get_by_test_id("hold-unit")
    expect(button).to_have_text("Hold unit 4…")
    button.click()
    expect(pg.get_by_test_id("hold-title")).to_have_text(re.compile(rf"^Hold unit 4's C at .* from t = {T_AT}$"))
    pg.get_by_test_id("hold-cancel").click()
    expect(pg.get_by_test_id("hold-menu")).to_be_hidden()
    expect(button).to_be_focused()
    assert_clean(pg, server)


def test_a_link_holding_a_unit_the_model_lacks_says_so_and_shows_the_plain_run(new_page, server):
    bad = urllib.parse.quote(json.dumps([{"layer": 0, "unit": 99, "gate": "c", "op": "zero", "from": 0}]))
    pg = _open(new_page, server, extra=f"&hold={bad}")
    alert = pg.get_by_test_id("alert")
    expect(alert).to_contain_text("Nothing is held: intervention 0: 'unit' 99 is out of range")
    expect(alert).to_contain_text("The views show the plain run.")
    assert _preds(pg) == _api_preds(_trace(server, []), T_AT)
    expect(pg.get_by_test_id("intervention")).to_have_count(0)
    expect(pg.locator("#diagram .dg-part.dg-held")).to_have_count(0)


#: The page's text with step T_AT's ")" made "(": the minimal pair a patch is usually taken from.
SOURCE = TEXT[:T_AT] + "(" + TEXT[T_AT + 1 :]


def _trace_text(server: str, text: str) -> dict:
    body = {"model": "dyck", "text": text}
    req = urllib.request.Request(
        server + "/api/trace", data=json.dumps(body).encode(), headers={"content-type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=120) as r:
        return json.load(r)


def _shown_h(pg) -> str:
    """The selected unit's h as the diagram prints it (its text, not its data-value)."""
    return pg.locator("#diagram .dg-val[data-gate='h']").first.text_content()


def _printed(text: str) -> tuple[float, float]:
    s = text.strip().strip("()").replace("\u2212", "-").replace("\u2007", "")
    return float(s), 0.5 * 10.0 ** -(len(s.split(".")[1]) if "." in s else 0) + 1e-9


def test_patch_from_another_text_in_the_diagrams_menu_shows_the_source_texts_values(new_page, server):
    gates = api_card(server, "dyck")["gates"]
    src, plain = _trace_text(server, SOURCE), _trace(server, [])
    patch = {"layer": 0, "unit": 4, "gate": "h", "op": "patch", "from": T_AT, "source_text": SOURCE}
    want = _trace(server, [patch])
    # the patch moves the unit's h at t by more than the page's rounding: the test can tell the runs apart
    assert abs(src["layers"][0]["h"][T_AT][4] - plain["layers"][0]["h"][T_AT][4]) > 0.01
    pg = _open(new_page, server)
    pg.locator("#diagram .dg-part[data-part='h']").click()
    pg.get_by_test_id("hold-op").select_option("patch")
    source = pg.get_by_test_id("hold-source")
    expect(source).to_be_focused()
    # it starts as the page's own text with step t's character selected: typing replaces it
    assert source.input_value() == TEXT
    assert pg.evaluate("() => { const s = document.activeElement; return [s.selectionStart, s.selectionEnd]; }") == [
        T_AT,
        T_AT + 1,
    ]
    expect(pg.get_by_test_id("hold-value")).to_be_hidden()
    # a character the vocabulary lacks: the server's words in the menu, nothing held, the menu open
    pg.keyboard.type("x")
    expect(pg.get_by_test_id("hold-title")).to_have_text(re.compile(rf"^Patch unit 4's h from “.*” from t = {T_AT}$"))
    pg.get_by_test_id("hold-apply").click()
    error = pg.get_by_test_id("hold-error")
    expect(error).to_have_text(
        f"Not held: intervention 0: 'source_text': not in the model's vocabulary: 'x' at {T_AT}", timeout=30_000
    )
    expect(pg.get_by_test_id("hold-menu")).to_be_visible()
    expect(source).to_be_focused()
    # a source shorter than the steps it must give: said the same way
    source.fill(SOURCE[:10])
    pg.get_by_test_id("hold-apply").click()
    expect(error).to_contain_text("'source_text' has 10 steps, and the patch needs 14", timeout=30_000)
    assert pg.evaluate("() => window.gatescope.state.interventions.length") == 0
    # the browser logs the two 422s it was answered; the menu handled them
    assert [r for r in pg.refused if "/api/trace/check" in r] == [f"422 POST {server}/api/trace/check"] * 2
    pg.console_errors.clear()
    source.fill(SOURCE)
    expect(pg.get_by_test_id("hold-apply")).to_have_text("Patch")
    pg.get_by_test_id("hold-apply").click()
    expect(pg.get_by_test_id("hold-menu")).to_be_hidden()
    pg.wait_for_function("() => window.gatescope.state.heldRuns.length === 1", timeout=30_000)
    expect(pg.locator("#diagram .dg-part[data-part='h']")).to_have_class(re.compile(r"\bdg-held\b"))
    listed = re.compile(rf"^patch unit 4's h from “.*” from t = {T_AT}×$")
    expect(pg.get_by_test_id("intervention")).to_have_text(listed)
    # the page's h at the patched steps is the source text's, read from what the diagram prints
    for t in (T_AT, T_AT + 3):
        pg.evaluate("t => window.gatescope.state.setT(t)", t)
        wait_diagram(pg, "lstm", t=t, unit=4)
        printed, rounding = _printed(_shown_h(pg))
        assert abs(printed - src["layers"][0]["h"][t][4]) <= rounding, (t, printed, src["layers"][0]["h"][t][4])
    pg.evaluate("t => window.gatescope.state.setT(t)", T_AT)
    expect(pg.locator("#preds li").first.locator(".tok")).to_have_text(want["probs"][T_AT][0]["token"], timeout=30_000)
    assert _preds(pg) == _api_preds(want, T_AT)
    # the link holds the patch (its text too): a fresh page shows the same patched run
    # (the hash is written at most every 200 ms: wait for the one of what the page shows, t back at T_AT)
    pg.wait_for_function("() => location.hash === window.gatescope.state.toHash()", timeout=5_000)
    assert "patch" in urllib.parse.unquote(pg.evaluate("() => location.hash"))
    url = pg.evaluate("() => location.href")
    assert json.loads(urllib.parse.unquote(re.search(r"hold=([^&]*)", url).group(1))) == [patch]
    other = new_page(1280, 720)
    other.goto(url)
    wait_drawn(other, gates, len(TEXT))
    other.wait_for_function("() => window.gatescope.state.heldRuns.length === 1", timeout=30_000)
    wait_diagram(other, "lstm", t=T_AT, unit=4)
    printed, rounding = _printed(_shown_h(other))
    assert abs(printed - src["layers"][0]["h"][T_AT][4]) <= rounding
    # the menu opened again remembers the text patched from (the next unit is patched from the same one)
    other.locator("#diagram .dg-part[data-part='h']").click()
    other.get_by_test_id("hold-op").select_option("patch")
    assert other.get_by_test_id("hold-source").input_value() == SOURCE
    for w, h in [(1280, 720), (1024, 768), (390, 844)]:
        other.set_viewport_size({"width": w, "height": h})
        other.locator("#diagram .dg-part[data-part='h']").click()  # placed again for this width
        if not other.get_by_test_id("hold-menu").is_visible():
            other.locator("#diagram .dg-part[data-part='h']").click()
        other.get_by_test_id("hold-op").select_option("patch")
        other.wait_for_function(f"() => document.documentElement.scrollWidth <= {w}", timeout=10_000)
        other.screenshot(path=str(ARTIFACTS / f"hold-patch-{w}x{h}.png"))
    assert_clean(pg, server)
    assert_clean(other, server)


#: Run b beside: the same model on another text (one architecture: b's unit is a's unit 4).
TEXT_B = "(()((()()((()("


def test_run_bs_diagram_holds_run_b_and_a_link_keeps_it(new_page, server):
    gates = api_card(server, "dyck")["gates"]
    pg = _open(new_page, server, extra=f"&vs_text={urllib.parse.quote(TEXT_B)}")
    b_diagram = pg.locator("#side-diagram")
    expect(b_diagram.locator(".dg-part[data-part='c']")).to_be_visible(timeout=30_000)
    pg.wait_for_function("n => window.gatescope.side.b.T === n", arg=len(TEXT_B), timeout=30_000)
    pg.wait_for_function(f"() => window.gatescope.side.b.t === {T_AT} && window.gatescope.side.b.unit === 4")
    b_diagram.locator(".dg-part[data-part='c']").click()
    menu = pg.get_by_test_id("side-hold-menu")  # b's own menu
    expect(menu).to_be_visible()
    expect(pg.get_by_test_id("hold-menu")).to_be_hidden()
    expect(pg.get_by_test_id("side-hold-title")).to_have_text(re.compile(rf"^Hold unit 4's C at .* from t = {T_AT}$"))
    pg.get_by_test_id("side-hold-value").fill(str(DEPTH0))
    pg.get_by_test_id("side-hold-from").fill("0")
    pg.get_by_test_id("side-hold-apply").click()
    expect(menu).to_be_hidden()
    # b's socket ran it: b's run is held (its marks, its C), a's is not
    pg.wait_for_function("() => window.gatescope.side.b.heldRuns.length === 1", timeout=30_000)
    expect(b_diagram.locator(".dg-part[data-part='c']")).to_have_class(re.compile(r"\bdg-held\b"))
    expect(pg.locator("#diagram .dg-part.dg-held")).to_have_count(0)
    assert pg.evaluate("() => window.gatescope.state.interventions.length") == 0
    printed, rounding = _printed(b_diagram.locator(".dg-val[data-gate='c']").first.text_content())
    assert abs(printed - DEPTH0) <= rounding
    want = json.loads(_asked(server, json.dumps(HELD)))  # a's text held: not b's numbers
    assert abs(want["layers"][0]["c"][T_AT][4] - DEPTH0) < 1e-6
    # the link says it (hold_b=) and a fresh page holds run b again
    pg.wait_for_function("() => location.hash === window.gatescope.state.toHash()", timeout=5_000)
    url = pg.evaluate("() => location.href")
    assert json.loads(urllib.parse.unquote(re.search(r"hold_b=([^&]*)", url).group(1))) == HELD
    assert "hold=" not in url.replace("hold_b=", "")
    other = new_page(1280, 720)
    other.goto(url)
    wait_drawn(other, gates, len(TEXT))
    other.wait_for_function("() => window.gatescope.side.b.heldRuns.length === 1", timeout=30_000)
    expect(other.locator("#side-diagram .dg-part[data-part='c']")).to_have_class(re.compile(r"\bdg-held\b"))
    expect(other.locator("#diagram .dg-part.dg-held")).to_have_count(0)
    other.locator(".cell-row").screenshot(path=str(ARTIFACTS / "hold-b-1280x720.png"))
    assert_clean(pg, server)
    assert_clean(other, server)
