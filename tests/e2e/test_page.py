"""The page in a real Chromium against the real server: typing draws every heatmap to T columns, the keys and a click
on a cell move t and the unit, every number of the diagram and the walkthrough is the API's, a shared link reopens the
same view, and the page fits its window with a label on every control."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from .conftest import (
    ARTIFACTS,
    api_card,
    api_trace,
    assert_clean,
    assert_drawn,
    assert_numbers_match_api,
    blur_text_box,
    click_cell,
    drawn,
    shown,
    wait_diagram,
    wait_drawn,
    wait_frames,
)

pytestmark = pytest.mark.e2e

#: A short line of Python (18 characters: every token gets its own label on a heatmap's time axis at 1280 px).
SHORT = "for i in range(3):"
#: 1,000 characters of plain-ASCII Python.
CODE_1000 = (
    "def add(a, b):\n    return a + b\n\n\nclass Box:\n    def __init__(self, x):\n"
    "        self.x = [x, x * 2]  # twice\n\n    def size(self):\n        return len(self.x)\n\n"
) * 12
CODE_1000 = CODE_1000[:1000]


def open_code(pg, server: str) -> list[str]:
    """Open the page on the default model (code) and wait for its first example to be drawn; return its gates."""
    pg.goto(server + "/")
    expect(pg.get_by_test_id("model")).to_have_value("code")
    gates = api_card(server, "code")["gates"]
    expect(pg.get_by_test_id("input")).not_to_have_value("")  # the example is filled in after load
    example = pg.get_by_test_id("input").input_value()
    wait_drawn(pg, gates, len(api_trace(server, "code", example)["tokens"]))
    return gates


def type_and_wait(pg, server: str, gates: list[str], text: str) -> dict:
    """Fill the text box, wait until every heatmap shows T columns; return the API's trace of the text."""
    pg.get_by_test_id("input").fill(text)
    trace = api_trace(server, "code", text)
    assert_drawn(wait_drawn(pg, gates, len(trace["tokens"])), gates, len(trace["tokens"]))
    return trace


def test_typing_draws_every_heatmap_to_T_columns(page, server):
    gates = open_code(page, server)
    assert gates == ["f", "i", "c_tilde", "c", "o", "h"]
    text = "def f(x):\n    return [x, x * 2]\n"
    trace = type_and_wait(page, server, gates, text)
    T = len(trace["tokens"])
    assert T == len(text)
    expect(page.get_by_test_id("timestep")).to_have_attribute("data-t", str(T - 1))  # t follows the last step
    # 0-based t as in the equations, and in words the step's 1-based count of all T (it read "t = 33 / 33")
    expect(page.get_by_test_id("timestep")).to_contain_text(f"t = {T - 1}, step {T} of {T}")
    wait_frames(page)
    page.screenshot(path=str(ARTIFACTS / "code-1280x720.png"))

    # real keystrokes, one input event each, into an emptied box
    box = page.get_by_test_id("input")
    box.fill("")
    expect(page.get_by_test_id("timestep")).to_have_text(re.compile("t = –"))
    typed = "x = f(2)"
    box.press_sequentially(typed)
    expect(box).to_have_value(typed)
    assert_drawn(wait_drawn(page, gates, len(typed)), gates, len(typed))
    expect(page.get_by_test_id("timestep")).to_have_attribute("data-t", str(len(typed) - 1))
    assert_clean(page, server)


def test_deleting_characters_leaves_no_stale_columns(page, server):
    gates = open_code(page, server)
    text = CODE_1000[:300]
    type_and_wait(page, server, gates, text)
    box = page.get_by_test_id("input")
    for _ in range(5):
        box.press("Backspace")
    expect(box).to_have_value(text[:-5])
    # the time axis keeps some headroom past T: the 5 deleted steps must not stay painted in it
    assert_drawn(wait_drawn(page, gates, 295), gates, 295)
    assert_clean(page, server)


def test_keys_step_through_time_and_every_number_is_the_apis(page, server):
    gates = open_code(page, server)
    trace = type_and_wait(page, server, gates, SHORT)
    T = len(trace["tokens"])
    timestep = page.get_by_test_id("timestep")
    expect(timestep).to_have_attribute("data-t", str(T - 1))

    # in the text box the arrows move the caret, not time
    page.get_by_test_id("input").press("ArrowLeft")
    expect(timestep).to_have_attribute("data-t", str(T - 1))

    blur_text_box(page)
    page.keyboard.press("Home")
    expect(timestep).to_have_attribute("data-t", "0")
    assert_numbers_match_api(wait_diagram(page, "lstm", t=0), trace, "lstm")
    for t in range(1, T // 2 + 1):
        page.keyboard.press("ArrowRight")
        expect(timestep).to_have_attribute("data-t", str(t))
    assert_numbers_match_api(wait_diagram(page, "lstm", t=T // 2), trace, "lstm")
    page.keyboard.press("End")
    expect(timestep).to_have_attribute("data-t", str(T - 1))
    assert_numbers_match_api(wait_diagram(page, "lstm", t=T - 1), trace, "lstm")
    page.keyboard.press("ArrowRight")  # past the end: stays
    expect(timestep).to_have_attribute("data-t", str(T - 1))
    page.keyboard.press("ArrowLeft")
    expect(timestep).to_have_attribute("data-t", str(T - 2))

    # another unit, typed into the unit box: its numbers arrive from the server
    page.get_by_test_id("unit").fill("5")
    expect(page.get_by_test_id("unit")).to_have_attribute("data-unit", "5")
    view = wait_diagram(page, "lstm", t=T - 2, unit=5)
    assert_numbers_match_api(view, trace, "lstm")
    blur_text_box(page)
    page.keyboard.press("Home")
    assert_numbers_match_api(wait_diagram(page, "lstm", t=0, unit=5), trace, "lstm")
    assert_clean(page, server)


def test_clicking_a_heatmap_cell_selects_its_step_and_unit(page, server):
    gates = open_code(page, server)
    trace = type_and_wait(page, server, gates, SHORT)
    T = len(trace["tokens"])
    wait_frames(page)
    panels = {p["gate"]: p for p in drawn(page)}
    f = panels["f"]
    assert f["visible"] == T, "a short text fills the time axis: one column a token"
    assert f["rows"] == 128

    # the time axis labels each token under its own column of cells
    ticks = page.evaluate(
        """() => {
          const fig = document.querySelector('[data-testid="heatmap-f"]');
          const left = fig.querySelector(".hm-area").getBoundingClientRect().left;
          return [...fig.querySelectorAll(".xtick text")].map((e) => {
            const r = e.getBoundingClientRect();
            return [e.textContent, r.left + r.width / 2 - left];
          });
        }"""
    )
    assert [label for label, _ in ticks] == [tok.replace(" ", "␣") for tok in trace["tokens"]]
    for k, (_, x) in enumerate(ticks):
        assert k * f["colW"] <= x <= (k + 1) * f["colW"], f"the label of step {k} is not under its column"

    for gate, t, unit in (("f", 3, 10), ("c", T - 1, 100), ("h", 0, 127)):
        click_cell(page, panels[gate], t, unit)
        expect(page.get_by_test_id("timestep")).to_have_attribute("data-t", str(t))
        expect(page.get_by_test_id("unit")).to_have_attribute("data-unit", str(unit))
        expect(page.get_by_test_id("unit")).to_have_value(str(unit))
        assert_numbers_match_api(wait_diagram(page, "lstm", t=t, unit=unit), trace, "lstm")
    assert_clean(page, server)


def test_a_shared_link_reopens_the_same_view(page, new_page, server):
    page.goto(server + "/")
    page.get_by_test_id("model").select_option("recall-lstm")
    text = "b2718281828459045?"
    page.get_by_test_id("input").fill(text)
    trace = api_trace(server, "recall-lstm", text)
    wait_drawn(page, api_card(server, "recall-lstm")["gates"], len(text))
    blur_text_box(page)
    page.keyboard.press("Home")
    for _ in range(3):
        page.keyboard.press("ArrowRight")
    page.get_by_test_id("unit").fill("5")
    before = wait_diagram(page, "lstm", t=3, unit=5, layer=0)
    assert_numbers_match_api(before, trace, "lstm")
    # the address bar follows the view
    expect(page).to_have_url(re.compile(r"#(?=.*\bmodel=recall-lstm\b)(?=.*\bt=3\b)(?=.*\bunit=5\b)(?=.*\blayer=0\b)"))
    link = page.url

    other = new_page()
    other.goto(link)
    expect(other.get_by_test_id("model")).to_have_value("recall-lstm")
    expect(other.get_by_test_id("input")).to_have_value(text)
    after = wait_diagram(other, "lstm", t=3, unit=5, layer=0)
    assert (after["t"], after["unit"], after["layer"]) == (3, 5, 0)
    assert sorted(after["diagram"]) == sorted(before["diagram"])
    assert_numbers_match_api(after, trace, "lstm")
    assert_clean(page, server)
    assert_clean(other, server)


def test_a_long_text_draws_every_column(page, server):
    page.set_viewport_size({"width": 1600, "height": 1000})
    gates = open_code(page, server)
    page.get_by_test_id("input").fill(CODE_1000)
    page.wait_for_function("() => gatescope.state.T === 1000", timeout=30_000)
    page.get_by_test_id("zoom-all").click()  # longer than a window (test_long.py): the whole text, on request
    assert_drawn(wait_drawn(page, gates, 1000, timeout=30_000), gates, 1000)
    wait_frames(page)
    expect(page.get_by_test_id("timestep")).to_have_attribute("data-t", "999")
    page.screenshot(path=str(ARTIFACTS / "code-1000-chars-1600x1000.png"), full_page=True)
    trace = api_trace(server, "code", CODE_1000)
    assert_numbers_match_api(wait_diagram(page, "lstm", t=999), trace, "lstm")
    assert_clean(page, server)


def assert_fits_and_labelled(pg) -> None:
    """No horizontal scrolling, and every input, select and text box has an accessible name."""
    width = pg.evaluate("[document.scrollingElement.scrollWidth, innerWidth]")
    assert width[0] <= width[1], f"the page scrolls sideways: {width[0]} px wide in a {width[1]} px window"
    controls = pg.locator("input:visible, select:visible, textarea:visible")  # the closed dialog's come below
    assert controls.count() >= 7
    for k in range(controls.count()):
        expect(controls.nth(k)).to_have_accessible_name(re.compile(r"\w"))
    if pg.get_by_test_id("upload-open").is_visible():  # the upload dialog's controls, once it is open
        pg.get_by_test_id("upload-open").click()
        inside = pg.get_by_test_id("upload").locator("input")
        assert inside.count() == 3
        for k in range(inside.count()):
            expect(inside.nth(k)).to_have_accessible_name(re.compile(r"\w"))
        pg.keyboard.press("Escape")
        expect(pg.get_by_test_id("upload")).to_be_hidden()
    for name in ("Model", "Text the model reads", "Step", "Unit", "Layer", "Speed", "Known units", "Colour by"):
        expect(pg.get_by_label(name, exact=True)).to_have_count(1)


def test_the_page_fits_1280_and_every_control_has_a_label(page, server):
    gates = open_code(page, server)
    wait_frames(page)
    assert_fits_and_labelled(page)
    page.get_by_test_id("input").fill(CODE_1000)
    page.wait_for_function("() => gatescope.state.T === 1000", timeout=30_000)
    assert_fits_and_labelled(page)  # a window of the text (test_long.py), then the whole of it
    page.get_by_test_id("zoom-all").click()
    wait_drawn(page, gates, 1000, timeout=30_000)
    wait_frames(page)
    assert_fits_and_labelled(page)
    page.get_by_test_id("model").select_option("recall-rnn")
    page.get_by_test_id("switch-replace").click()  # the RNN cannot read the code typed: the page asks first
    wait_drawn(page, ["h"], len(page.get_by_test_id("input").input_value()))
    wait_frames(page)
    assert_fits_and_labelled(page)
    assert shown(page)["cell"] == "rnn"
    assert_clean(page, server)


def test_the_page_fits_a_phone(new_page, server):
    pg = new_page(390, 844)
    gates = open_code(pg, server)
    type_and_wait(pg, server, gates, SHORT)
    wait_frames(pg)
    width = pg.evaluate("[document.scrollingElement.scrollWidth, innerWidth]")
    assert width[0] <= width[1], f"the page scrolls sideways: {width[0]} px wide in a {width[1]} px window"
    expect(pg.get_by_test_id("model")).to_be_in_viewport()
    expect(pg.get_by_role("button", name="Trace CSV")).to_be_in_viewport()
    pg.screenshot(path=str(ARTIFACTS / "code-390x844.png"), full_page=True)
    assert_clean(pg, server)
