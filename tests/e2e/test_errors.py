"""Bad input gets a message in the page (role="alert") that names the problem, and the message goes when it is fixed."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from .conftest import ARTIFACTS, SMALL_MAX_TOKENS, api_card, assert_clean, wait_drawn

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
