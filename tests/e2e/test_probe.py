"""The "Which unit tracks…?" panel in Chromium: dyck's depth probe finds the counter (|r| >= 0.95, as the API
says), clicking the top unit selects it in the page, the best unit's curve is drawn over the feature, the linear
probe's scores are a line of text, "Save as known unit" adds it to the Known units, and an index probe with no
index says how to make one. Its own server: a saved unit must not leak into the other tests' cards."""

from __future__ import annotations

import json
import re
import urllib.request

import pytest
from playwright.sync_api import expect

from .conftest import ARTIFACTS, _running_server

pytestmark = pytest.mark.e2e

DYCK = "(()(()))((((()))))()(((())))$"


@pytest.fixture(scope="module")
def probe_server(tmp_path_factory):
    with _running_server(tmp_path_factory.mktemp("probe")) as url:
        yield url


def api_probe(server: str, model_id: str, body: dict) -> dict:
    req = urllib.request.Request(
        f"{server}/api/models/{model_id}/probe",
        data=json.dumps(body).encode(),
        headers={"content-type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())


def open_dyck(pg, server: str) -> None:
    pg.goto(server + "/")
    pg.get_by_test_id("model").select_option("dyck")
    pg.get_by_test_id("input").fill(DYCK)
    pg.wait_for_function("T => window.gatescope.state.T === T", arg=len(DYCK), timeout=15_000)
    expect(pg.get_by_test_id("probe")).to_be_visible()
    expect(pg.get_by_test_id("probe-feature").locator("option[value='f:depth']")).to_have_count(1)


def test_a_depth_probe_ranks_the_counter_first_and_clicking_it_selects_it(browser, probe_server):
    ctx = browser.new_context(viewport={"width": 1280, "height": 720})
    pg = ctx.new_page()
    errors: list[str] = []
    pg.on("console", lambda m: m.type == "error" and errors.append(m.text))
    pg.on("pageerror", lambda e: errors.append(str(e)))
    try:
        open_dyck(pg, probe_server)
        pg.get_by_test_id("probe-feature").select_option("f:depth")
        pg.get_by_test_id("probe-linear").check()
        pg.get_by_test_id("unit").fill("0")  # away from the card's counter, so the click has something to change
        expect(pg.get_by_test_id("unit")).to_have_attribute("data-unit", "0")
        pg.get_by_test_id("probe-run").click()
        expect(pg.get_by_test_id("probe")).to_have_attribute("data-state", "done", timeout=15_000)
        top = pg.get_by_test_id("probe-rank-0")
        api = api_probe(probe_server, "dyck", {"feature": "depth", "text": DYCK})["ranking"][0]
        assert abs(api["r"]) >= 0.95
        assert (top.get_attribute("data-unit"), top.get_attribute("data-gate")) == (str(api["unit"]), api["gate"])
        assert f"r = {api['r']:.3f}".replace("-", "\u2212") in (top.text_content() or "")  # the server's r, true minus
        expect(pg.get_by_test_id("probe-ranking").locator("li")).to_have_count(10)
        top.click()
        expect(pg.get_by_test_id("unit")).to_have_attribute("data-unit", str(api["unit"]))
        assert pg.evaluate("window.gatescope.state.unit") == api["unit"]
        expect(top).to_have_attribute("aria-pressed", "true")
        expect(pg.get_by_test_id("probe-plot")).to_have_attribute("data-steps", str(len(DYCK)), timeout=10_000)
        pg.wait_for_function(
            "() => document.getElementById('probe-plot').querySelectorAll('.scatterlayer .trace').length === 2",
            timeout=10_000,
        )
        expect(pg.get_by_test_id("probe-linear-text")).to_contain_text("Linear probe (ridge")
        expect(pg.get_by_test_id("probe-linear-text")).to_contain_text("R²")
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        pg.get_by_test_id("probe").scroll_into_view_if_needed()
        pg.screenshot(path=str(ARTIFACTS / "probe-1280x720.png"))

        known = pg.get_by_test_id("known-units")
        before, depth = known.locator("option").count(), known.locator("option", has_text="depth").count()
        pg.get_by_test_id("probe-save").click()
        expect(known.locator("option")).to_have_count(before + 1)
        expect(known.locator("option", has_text="depth")).to_have_count(depth + 1)  # the card's own, and the saved one
        expect(pg.get_by_test_id("probe-status")).to_contain_text("Saved unit")

        # dyck's held-out index is built on the page's first ask: wait until the page says it is ready (a loaded
        # machine takes longer than 15 s), then probe over it. The page opened on `code` and switched to dyck before
        # code's status came back: that late answer must not stop the page following dyck's build
        pg.wait_for_function("() => ['ready', 'failed'].includes(window.gatescope.state.index?.state)", timeout=120_000)
        index = pg.evaluate("window.gatescope.state.index")
        assert (index["model"], index["state"]) == ("dyck", "ready"), index
        pg.get_by_test_id("probe-over").select_option("index")
        pg.get_by_test_id("probe-run").click()
        expect(pg.get_by_test_id("probe")).to_have_attribute("data-state", "done", timeout=60_000)
        status = pg.get_by_test_id("probe-status")
        expect(status).to_contain_text("units ranked over the index")
        said = status.text_content() or ""  # not inner_text: a panel off screen is skipped (content-visibility)
        r = re.search(r"r = ([−-]?\d+(?:\.\d+)?)", said)
        assert r is not None and abs(float(r.group(1).replace("−", "-"))) >= 0.95, said
        assert errors == [], errors

        pg.get_by_test_id("probe-over").select_option("text")  # a regex, at the other sizes
        pg.get_by_test_id("probe-feature").select_option("regex")
        expect(pg.get_by_test_id("probe-regex")).to_be_visible()
        expect(pg.get_by_test_id("probe-labels")).to_be_hidden()
        pg.get_by_test_id("probe-regex").fill(r"\(\(")
        pg.get_by_test_id("probe-run").click()
        expect(pg.get_by_test_id("probe")).to_have_attribute("data-state", "done", timeout=15_000)
        expect(pg.get_by_test_id("probe-status")).to_contain_text("48 units ranked over this text")
        for width, height in [(1024, 768), (390, 844)]:
            pg.set_viewport_size({"width": width, "height": height})
            box = pg.get_by_test_id("probe").bounding_box()
            assert box is not None and box["x"] + box["width"] <= width  # nothing overflows the viewport
            pg.get_by_test_id("probe").scroll_into_view_if_needed()
            pg.screenshot(path=str(ARTIFACTS / f"probe-{width}x{height}.png"))
    finally:
        ctx.close()
