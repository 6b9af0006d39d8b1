"""The unit's dashboard in the page ("What this unit does") over a small dyck index the server finds in its data
folder: it shows the selected unit's histogram and contexts as the API gives them, follows the gate select (in the
URL), opens a top context in the main view at its step with the unit selected, and says so when a model has no
index. Screenshots at 1280×720, 1024×768 and 390×844."""

from __future__ import annotations

import json
import urllib.request

import numpy as np
import pytest
from playwright.sync_api import expect

from .conftest import ARTIFACTS, _running_server, assert_clean, wait_diagram

pytestmark = pytest.mark.e2e

#: The dyck unit the card names as the depth counter is 3 or so; any unit works: the checks read the API.
UNIT = 3


def _dyck(rng: np.random.Generator, n: int) -> str:
    s, d = [], 0
    for _ in range(n):
        if d == 0 or (rng.random() < 0.55 and d < 8):
            s.append("(")
            d += 1
        else:
            s.append(")")
            d -= 1
    return "".join(s)


@pytest.fixture(scope="module")
def indexed(tmp_path_factory):
    """A server whose data folder holds a dyck index of 40 strings (no other model has one, none is built)."""
    import model
    from model.analysis.index import build

    tmp = tmp_path_factory.mktemp("dashboard")
    rng = np.random.default_rng(0)
    texts = [_dyck(rng, int(rng.integers(20, 160))) for _ in range(40)]
    build(model.load("dyck"), texts, tmp / "data" / "indexes" / "dyck" / "dyck.zarr", name="dyck", scheduler="sync")
    with _running_server(tmp, GATESCOPE_DATA_DIR=str(tmp / "data"), GATESCOPE_INDEX_BUNDLED="0") as url:
        yield url


def _get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=30) as r:
        return json.loads(r.read())


def _open(page, server, hash_: str):
    page.goto(f"{server}/#{hash_}")
    board = page.get_by_test_id("dashboard-body")
    expect(board.get_by_test_id("dashboard-context").first).to_be_visible(timeout=40_000)  # a loaded 2-core machine
    return board


def test_the_dashboard_shows_the_selected_unit_as_the_api_gives_it(page, indexed):
    api = _get(f"{indexed}/api/models/dyck/units/0/{UNIT}?gate=c")
    board = _open(page, indexed, f"model=dyck&unit={UNIT}&gate=c&text=(()())")
    expect(board).to_have_attribute("data-unit", str(UNIT))
    expect(page.get_by_test_id("dashboard-corpus")).to_have_text(
        f"Over {api['corpus']['docs']} documents, {api['corpus']['steps']:,} steps of dyck."
    )
    top = board.get_by_test_id("dashboard-top").get_by_test_id("dashboard-context")
    expect(top).to_have_count(len(api["top"]))
    expect(top.first.locator(".db-value")).to_have_text(f"{api['top'][0]['value']:.3f}")
    expect(top.first.locator(".is-peak")).to_have_text(api["top"][0]["tokens"][api["top"][0]["peak"]])
    bars = board.get_by_test_id("dashboard-histogram").locator(".bars .point")
    expect(bars).to_have_count(len(api["histogram"]["counts"]), timeout=30_000)  # plotly (loaded late): a bar a bin
    expect(board.get_by_test_id("dashboard-pushes")).to_contain_text("Direct effect on the logits")
    bands = board.get_by_test_id("dashboard-bands").locator("[data-band]")
    expect(bands).to_have_count(10)
    expect(board.get_by_test_id("dashboard-legend")).to_contain_text(f"±{api['scale']['range'][1]:.3f}")
    assert_clean(page, indexed)


def test_the_gate_select_shows_another_gate_and_goes_into_the_link(page, indexed):
    board = _open(page, indexed, f"model=dyck&unit={UNIT}&text=(()())")
    expect(board).to_have_attribute("data-gate", "c")  # the cell state by default
    page.get_by_test_id("dashboard-gate").select_option("h")
    expect(board).to_have_attribute("data-gate", "h", timeout=30_000)  # a loaded 2-core machine
    api = _get(f"{indexed}/api/models/dyck/units/0/{UNIT}?gate=h")
    top = board.get_by_test_id("dashboard-top").get_by_test_id("dashboard-context")
    expect(top.first.locator(".db-value")).to_have_text(f"{api['top'][0]['value']:.3f}", timeout=30_000)
    page.wait_for_function("() => location.hash.includes('gate=h')")
    assert_clean(page, indexed)


def test_clicking_a_top_context_opens_its_document_at_the_peak_with_the_unit(page, indexed):
    api = _get(f"{indexed}/api/models/dyck/units/0/{UNIT}?gate=c")
    ctx = api["top"][1]
    doc = _get(f"{indexed}/api/models/dyck/docs/{ctx['doc']}")
    board = _open(page, indexed, f"model=dyck&unit={UNIT}&text=(()())&t=1")
    wait_diagram(page, "lstm", t=1, unit=UNIT)
    board.get_by_test_id("dashboard-top").get_by_test_id("dashboard-context").nth(1).click()
    expect(page.get_by_test_id("input")).to_have_value(doc["text"], timeout=30_000)
    expect(page.get_by_test_id("timestep")).to_have_attribute("data-t", str(ctx["t"]), timeout=30_000)
    expect(page.get_by_test_id("scrubber")).to_have_value(str(ctx["t"]))
    expect(page.get_by_test_id("unit")).to_have_value(str(UNIT))
    view = wait_diagram(page, "lstm", t=ctx["t"], unit=UNIT)  # the diagram follows: the new text at the peak
    assert view["t"] == ctx["t"]
    # the coloured text's outlined character is the peak's
    expect(page.locator("[data-testid=coloured-text] span.is-current")).to_have_attribute("data-t", str(ctx["t"]))
    assert_clean(page, indexed)


def test_a_model_without_an_index_says_so(page, indexed):
    page.goto(f"{indexed}/#model=recall-lstm")
    empty = page.get_by_test_id("dashboard-empty")
    expect(empty).to_contain_text("has no index yet", timeout=20_000)
    expect(page.get_by_test_id("dashboard-body").get_by_test_id("dashboard-context")).to_have_count(0)
    assert_clean(page, indexed)


@pytest.mark.parametrize("size", [(1280, 720), (1024, 768), (390, 844)])
def test_screenshots(new_page, indexed, size):
    page = new_page(*size)
    board = _open(page, indexed, f"model=dyck&unit={UNIT}&gate=c&text=((()(())))")
    panel = page.get_by_test_id("dashboard")
    expect(board.get_by_test_id("dashboard-histogram").locator(".bars .point").first).to_be_attached(timeout=30_000)
    panel.evaluate("e => e.scrollIntoView({block: 'start'})")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"dashboard-{size[0]}x{size[1]}.png"))
    width = page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= size[0], f"the page scrolls sideways at {size}: {width}px wide"
    assert_clean(page, indexed)
