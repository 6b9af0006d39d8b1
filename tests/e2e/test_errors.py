"""Bad input gets a message in the page (role="alert") that names the problem, and the message goes when it is fixed;
characters a model reads as its unknown token are marked where they are, however the text grew."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from .conftest import (
    ARTIFACTS,
    SMALL_MAX_TOKENS,
    UNK_MODEL,
    _free_port,
    _recorded,
    _running_server,
    api_card,
    api_trace,
    assert_clean,
    wait_drawn,
)

pytestmark = pytest.mark.e2e


def test_an_unknown_character_is_named_in_an_alert(page, server):
    page.goto(server + "/")
    page.get_by_test_id("model").select_option("dyck")
    box = page.get_by_test_id("input")
    gates = api_card(server, "dyck")["gates"]
    wait_drawn(page, gates, len(box.input_value()))
    alert = page.get_by_role("alert")
    expect(alert).to_be_hidden()
    box.fill("(x")
    expect(alert).to_be_visible()
    expect(alert).to_contain_text(re.compile(r"'x'.*\bat 1\b|\bat 1\b.*'x'"))
    expect(alert).to_contain_text("vocabulary")
    expect(box).to_have_attribute("aria-invalid", "true")
    page.screenshot(path=str(ARTIFACTS / "error-unknown-character.png"))
    box.fill("(())")
    expect(alert).to_be_hidden()
    expect(box).not_to_have_attribute("aria-invalid", "true")
    wait_drawn(page, gates, 4)
    assert_clean(page, server)


def test_a_text_over_the_limit_is_named_in_an_alert(page, small_server):
    page.goto(small_server + "/#model=code&text=abc")
    gates = api_card(small_server, "code")["gates"]
    wait_drawn(page, gates, 3)
    alert = page.get_by_role("alert")
    expect(alert).to_be_hidden()
    n = SMALL_MAX_TOKENS + 10
    page.get_by_test_id("input").fill("x = 1\n" * (n // 6))
    expect(alert).to_be_visible()
    expect(alert).to_contain_text(f"{n} tokens")
    expect(alert).to_contain_text(f"at most {SMALL_MAX_TOKENS}")
    page.screenshot(path=str(ARTIFACTS / "error-too-long.png"))
    page.get_by_test_id("input").fill("x = 1\n")
    expect(alert).to_be_hidden()
    wait_drawn(page, gates, 6)
    assert_clean(page, small_server)


def marked_unknown(pg) -> list[int]:
    """The steps the coloured text marks as unknown tokens (underlined, with a tooltip that says so)."""
    marked = pg.get_by_test_id("coloured-text").locator("span.unk")
    return [int(t) for t in marked.evaluate_all("es => es.map((e) => e.dataset.t)")]


def test_unknown_characters_are_marked_where_they_are_as_the_text_grows(page, server):
    page.goto(server + "/")
    page.get_by_test_id("model").select_option(UNK_MODEL)
    gates = api_card(server, UNK_MODEL)["gates"]
    box = page.get_by_test_id("input")
    alert = page.get_by_role("alert")
    box.fill("ab?")
    wait_drawn(page, gates, 3)
    assert api_trace(server, UNK_MODEL, "ab?")["unknown"] == [2]
    expect(alert).to_contain_text(f"'?' is not in {UNK_MODEL}'s vocabulary (first at t = 2)")
    assert marked_unknown(page) == [2]
    expect(box).not_to_have_attribute("aria-invalid", "true")  # read, not refused

    # typed on, key by key: each edit sends only the new steps, whose unknown positions count from the text's start
    box.press("End")
    box.press_sequentially(" c?a")
    text = "ab? c?a"
    wait_drawn(page, gates, len(text))
    unknown = api_trace(server, UNK_MODEL, text)["unknown"]
    assert unknown == [2, 5]
    assert marked_unknown(page) == unknown
    expect(alert).to_contain_text(f"'?' is not in {UNK_MODEL}'s vocabulary (first at t = 2)")
    spans = page.get_by_test_id("coloured-text").locator("span")
    expect(spans.nth(5)).to_have_text("?")
    expect(spans.nth(5)).to_have_attribute("title", re.compile("vocabulary"))

    # an edit in the middle: the unknown character before it stays marked; the one after it moves with the text
    box.fill("a?b? c?a")
    wait_drawn(page, gates, 8)
    assert api_trace(server, UNK_MODEL, "a?b? c?a")["unknown"] == [1, 3, 6]
    assert marked_unknown(page) == [1, 3, 6]
    expect(alert).to_contain_text("(first at t = 1)")
    page.screenshot(path=str(ARTIFACTS / "unknown-characters.png"))

    box.fill("abc")  # every character known: the warning goes
    wait_drawn(page, gates, 3)
    expect(alert).to_be_hidden()
    assert marked_unknown(page) == []
    assert_clean(page, server)


def test_the_reconnect_banner_counts_down_and_says_when_the_server_is_back(browser, tmp_path):
    """The server goes away under an open page: the banner counts the seconds to the next try (it used to stay at
    "8 s"), says when the connection is back and then goes; typing traces again."""
    port = _free_port()
    ctx = browser.new_context(viewport={"width": 1280, "height": 720})
    try:
        pg = _recorded(ctx.new_page())
        for d in ("before", "after"):
            (tmp_path / d).mkdir()
        with _running_server(tmp_path / "before", port=port) as url:
            pg.goto(url + "/")
            pg.wait_for_function("() => window.gatescope.state.T > 0", timeout=15_000)
        alert = pg.get_by_test_id("alert")
        expect(alert).to_contain_text(re.compile(r"Reconnecting in [2-9] s…"), timeout=20_000)
        first = int(re.search(r"Reconnecting in (\d+) s", alert.inner_text()).group(1))
        expect(alert).to_contain_text(f"Reconnecting in {first - 1} s…", timeout=3_000)  # a second later, one less
        with _running_server(tmp_path / "after", port=port):
            expect(alert).to_contain_text("Connected to the server again.", timeout=15_000)
            expect(alert).not_to_contain_text("Connected to the server again.", timeout=10_000)  # said, then gone
            pg.get_by_test_id("input").fill("x = (1)")
            pg.wait_for_function("() => window.gatescope.state.tracedText === 'x = (1)'", timeout=15_000)
        assert pg.page_errors == []  # the failed connects are the browser's own log lines, not the page's errors
    finally:
        ctx.close()
