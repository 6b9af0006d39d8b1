"""The page in a real browser. For now the placeholder: it loads offline, says what exists, logs no errors."""

from __future__ import annotations

from urllib.parse import urlparse

from .conftest import ARTIFACTS


def test_placeholder_page_loads_offline_without_errors(page, server):
    page.goto(server + "/")
    assert page.locator("h1").inner_text() == "gatescope"
    assert "placeholder" in page.get_by_test_id("placeholder").inner_text()
    listed = page.get_by_test_id("models").inner_text()
    assert "code" in listed and "dyck" in listed and "recall-lstm" in listed
    page.screenshot(path=str(ARTIFACTS / "placeholder.png"), full_page=True)
    assert page.console_errors == []
    server_host = urlparse(server).netloc
    assert {urlparse(u).netloc for u in page.requested} == {server_host}
    # the stylesheet arrived and applied
    assert page.evaluate("getComputedStyle(document.querySelector('main')).maxWidth") != "none"
