"""A model whose files no longer read is listed greyed out with the server's reason; the page opens the
default model as ever and never picks the broken one."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from .conftest import ARTIFACTS, _running_server, api_card, assert_clean, wait_drawn

pytestmark = pytest.mark.e2e


def test_an_unavailable_model_is_greyed_out_with_its_reason(new_page, tmp_path):
    broken = tmp_path / "models" / "aaa-broken"  # first in the list: the page must not fall back to it
    broken.mkdir(parents=True)
    (broken / "model.safetensors").write_bytes(b"not a safetensors file")
    with _running_server(tmp_path) as server:
        page = new_page()
        page.goto(server + "/#model=aaa-broken")
        option = page.locator("[data-testid=model] option[value=aaa-broken]")
        expect(option).to_be_disabled()
        expect(option).to_contain_text("unavailable")
        expect(option).to_contain_text("do not read")
        gates = api_card(server, "code")["gates"]
        wait_drawn(page, gates, len(page.get_by_test_id("input").input_value()))
        assert page.get_by_test_id("model").input_value() == "code"
        alert = page.get_by_role("alert")  # the link's model: named, and why it is not shown (not "missing")
        expect(alert).to_contain_text("'aaa-broken', which is unavailable here")
        expect(alert).to_contain_text("do not read")
        page.screenshot(path=str(ARTIFACTS / "unavailable-model.png"))
        assert_clean(page, server)
