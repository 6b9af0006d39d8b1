"""Attribution in a real Chromium: the text up to t coloured by each input's contribution and the curve of
‖∂ score/∂C_s‖ follow the scrubber; every number is the server's (POST /api/attribute)."""

from __future__ import annotations

import json
import urllib.parse
import urllib.request

import pytest
from playwright.sync_api import expect

from .conftest import ARTIFACTS, api_card, assert_clean, wait_drawn

pytestmark = pytest.mark.e2e

TEXT = "c1415926535897932384626433832795028841971693993751058209?"


def percent(x: float) -> str:
    """A share as the panel writes it: one decimal from 0.1%, else e-notation."""
    p = 100 * x
    return "0%" if p == 0 else f"{p:.1f}%" if p >= 0.1 else f"{p:.1e}%"


def _attribute(server: str, body: dict) -> dict:
    req = urllib.request.Request(
        server + "/api/attribute", data=json.dumps(body).encode(), headers={"content-type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.load(r)


def test_scrubbing_moves_the_attribution_and_the_state_gradient_with_t(new_page, server):
    pg = new_page(1280, 720)
    pg.goto(f"{server}/#model=recall-lstm&text={urllib.parse.quote(TEXT)}")
    wait_drawn(pg, api_card(server, "recall-lstm")["gates"], len(TEXT))
    panel = pg.get_by_test_id("attribute")
    last = len(TEXT) - 1
    expect(panel).to_have_attribute("data-t", str(last), timeout=15_000)  # t follows the text to its end
    want = _attribute(server, {"model": "recall-lstm", "text": TEXT, "t": last})
    assert want["target"]["label"] == "c"  # after "?": the model's own answer, the first symbol
    spans = pg.get_by_test_id("attribute-text").locator("span")
    expect(spans).to_have_count(last + 1)
    big = max(range(last + 1), key=lambda s: abs(want["inputs"][s]))
    assert want["largest"] == big and abs(sum(want["share"]) - 1) < 1e-9
    status = pg.get_by_test_id("attribute-status")
    expect(status).to_contain_text(f"The input that moves it most: t = {big}")
    expect(status).to_contain_text(f"{percent(want['share'][big])} of all the inputs' |attribution|")
    assert big == 0  # recall-lstm's answer rests on the first symbol most (the long-term dependency)
    # the panel says "red raised it, blue lowered it": the largest push up is red, the largest push down blue
    up = max(range(last + 1), key=lambda s: want["inputs"][s])
    down = min(range(last + 1), key=lambda s: want["inputs"][s])
    rgb = "(s) => getComputedStyle(document.querySelectorAll('[data-testid=attribute-text] span')[s]).backgroundColor"
    r, g, b = (int(v) for v in pg.evaluate(rgb, up)[4:-1].split(","))
    assert want["inputs"][up] > 0 and r > b, (up, r, g, b)
    r, g, b = (int(v) for v in pg.evaluate(rgb, down)[4:-1].split(","))
    assert want["inputs"][down] < 0 and b > r, (down, r, g, b)
    expect(pg.get_by_test_id("attribute-curve").locator("circle")).to_have_count(sum(v > 0 for v in want["cell"]))
    # scrub back: the panel (on screen: off screen it waits, lazy.js) asks for that step and redraws the text up to it
    panel.scroll_into_view_if_needed()
    pg.evaluate("() => window.gatescope.state.setT(10)")
    expect(panel).to_have_attribute("data-t", "10")
    expect(spans).to_have_count(11)
    at10 = _attribute(server, {"model": "recall-lstm", "text": TEXT, "t": 10})
    expect(pg.get_by_test_id("attribute-status")).to_contain_text(f"log p({at10['target']['label']})")
    # the keyboard scrubs too: each step's attribution follows
    asked: list[int] = []  # the steps the page asks the server for, in order

    def note(r) -> None:
        if "/api/attribute" in r.url:
            asked.append(json.loads(r.post_data or "{}")["t"])

    pg.on("request", note)
    for _ in range(3):
        pg.keyboard.press("ArrowRight")
    expect(panel).to_have_attribute("data-t", "13")
    # while scrubbing, the next step's answer is asked for ahead: the next → finds it ready and asks nothing more
    for _ in range(100):
        if 14 in asked:
            break
        pg.wait_for_timeout(50)
    assert 14 in asked, asked
    before = len(asked)
    pg.keyboard.press("ArrowRight")
    expect(panel).to_have_attribute("data-t", "14")
    at14 = _attribute(server, {"model": "recall-lstm", "text": TEXT, "t": 14})
    expect(status).to_contain_text(f"The prediction at t = 14: log p({at14['target']['label']})")
    assert 14 not in asked[before:], asked
    # scrubbing back a step: the answer is still kept (at most 16 steps are), so nothing is asked again
    before = len(asked)
    pg.keyboard.press("ArrowLeft")
    expect(panel).to_have_attribute("data-t", "13")
    assert 13 not in asked[before:], asked
    panel.screenshot(path=str(ARTIFACTS / "attribute-1280x720.png"))
    # the plain RNN on the same text: the first symbol holds next to nothing of its answer, and the panel says so
    pg.goto(f"{server}/#model=recall-rnn&text={urllib.parse.quote(TEXT)}")
    wait_drawn(pg, api_card(server, "recall-rnn")["gates"], len(TEXT))
    expect(panel).to_have_attribute("data-t", str(last), timeout=15_000)
    rnn = _attribute(server, {"model": "recall-rnn", "text": TEXT, "t": last})
    assert rnn["largest"] != 0 and rnn["share"][0] < 1e-3 * want["share"][0], (rnn["share"][0], want["share"][0])
    expect(status).to_contain_text(f"The first input (t = 0, c) holds {percent(rnn['share'][0])}.")
    pg.set_viewport_size({"width": 390, "height": 844})
    pg.wait_for_function("() => document.documentElement.scrollWidth <= 390", timeout=3_000)
    panel.screenshot(path=str(ARTIFACTS / "attribute-390x844.png"))
    assert_clean(pg, server)


def test_a_fresh_install_says_it_prepares_the_gradient_code_while_the_first_attribution_waits(new_page, tmp_path):
    """A server whose numba cache is empty: the first trace starts compiling the LSTM kernels beside it, and the
    panel, asking meanwhile, says why it waits (the server's flag, GET /api/models/{id}/attribution), then shows
    the attribution; the server says "ready" after."""
    from .conftest import _running_server

    cache = {"NUMBA_CACHE_DIR": str(tmp_path / "numba")}  # a fresh install's: nothing compiled yet
    with _running_server(tmp_path, **cache) as fresh:
        pg = new_page(1280, 720)
        pg.goto(f"{fresh}/#model=recall-lstm&text={urllib.parse.quote(TEXT)}")
        wait_drawn(pg, api_card(fresh, "recall-lstm")["gates"], len(TEXT))
        panel = pg.get_by_test_id("attribute")
        panel.scroll_into_view_if_needed()
        status = pg.get_by_test_id("attribute-status")
        expect(status).to_have_text("Preparing the gradient code for the LSTM cell, first use only…", timeout=15_000)
        expect(panel).to_have_attribute("data-compiling", "true")
        expect(status).to_contain_text("The input that moves it most", timeout=240_000)  # a compile: generous
        expect(panel).not_to_have_attribute("data-compiling", "true")
        with urllib.request.urlopen(f"{fresh}/api/models/recall-lstm/attribution", timeout=10) as r:
            assert json.load(r)["kernels"] == "ready"
        panel.screenshot(path=str(ARTIFACTS / "attribute-ready-1280x720.png"))
        assert_clean(pg, fresh)
