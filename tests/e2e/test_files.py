"""The files people have, through the page: an encoder-decoder upload offers its recurrent modules in the dialog
and loads the one chosen; a projected LSTM (proj_size) draws its W_hr box between m = o·tanh(C) and h, with
the API's numbers on it. Screenshots at 1280x720, 1024x768 and 390x844."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from playwright.sync_api import expect

from tests.app.test_upload_files import proj_text_model

from .conftest import (
    ARTIFACTS,
    api_card,
    api_trace,
    api_upload,
    assert_clean,
    assert_numbers_match_api,
    shown,
    wait_diagram,
    wait_drawn,
)

pytestmark = pytest.mark.e2e

FILES = Path(__file__).resolve().parents[1] / "fixtures" / "torch_files"
READ_MS = 60_000
SIZES = [(1280, 720), (1024, 768), (390, 844)]


@pytest.mark.parametrize(("width", "height"), SIZES, ids=[f"{w}x{h}" for w, h in SIZES])
def test_the_upload_dialog_offers_the_modules_of_an_encoder_decoder(new_page, server, width, height):
    page = new_page(width, height)
    page.goto(server + "/")
    page.get_by_test_id("upload-open").click()
    expect(page.get_by_test_id("upload-module-row")).to_be_hidden()  # only when a file needs it
    page.get_by_test_id("upload-file").set_input_files(str(FILES / "seq2seq.safetensors"))
    page.get_by_test_id("upload-vocab").set_input_files(str(FILES / "seq2seq.vocab.json"))
    page.get_by_test_id("upload-name").fill(f"s2s-{width}")
    page.get_by_test_id("upload-submit").click()
    choice = page.get_by_test_id("upload-module")
    expect(choice).to_be_visible(timeout=READ_MS)
    assert choice.locator("option").all_text_contents() == ["decoder.lstm", "encoder.lstm"]
    expect(page.get_by_test_id("upload-status")).to_contain_text("several recurrent modules")
    page.screenshot(path=str(ARTIFACTS / f"files-module-choice-{width}x{height}.png"))
    page.console_errors.clear()  # the browser logs the 422 it was answered; the page handled it
    choice.select_option("encoder.lstm")
    page.get_by_test_id("upload-submit").click()
    expect(page.get_by_test_id("upload")).to_be_hidden(timeout=READ_MS)
    expect(page.get_by_test_id("model")).to_have_value(f"s2s-{width}")
    card = api_card(server, f"s2s-{width}")
    assert "encoder.lstm" in card["description"] and not card["head"], card  # the encoder has no head
    expect(page.get_by_test_id("description")).to_contain_text("encoder.lstm")
    assert page.page_errors == []
    assert_clean(page, server)


@pytest.mark.parametrize(("width", "height"), SIZES, ids=[f"{w}x{h}" for w, h in SIZES])
def test_a_projected_lstm_draws_its_projection(new_page, server, tmp_path, width, height):
    name = f"proj-{width}"
    status, card = api_upload(server, proj_text_model(tmp_path / "proj.safetensors"), name=name)
    assert status == 201 and card["proj_size"] == 4, card
    page = new_page(width, height)
    page.goto(server + "/")
    page.get_by_test_id("model").select_option(name)
    page.get_by_test_id("input").fill("abc bad")
    box = page.locator('svg[data-cell="lstm"] .dg-box[data-part="h"]')
    expect(box).to_have_count(1)
    expect(box.locator("text")).to_have_text("W_hr")
    trace = api_trace(server, name, "abc bad")
    wait_drawn(page, card["gates"], 7)  # h's heatmap too: 4 rows, every step painted
    rows = page.evaluate(
        "() => [...document.querySelectorAll('[data-testid=heatmaps] figure[data-gate=h] canvas')].map((c) => c.height)"
    )
    assert 4 in rows and 10 not in rows, rows  # the raster has a row per unit of h: P = 4, not H = 10
    held = page.evaluate("() => Array.from(window.gatescope.state.trace.layers[1].h.row(6))")
    assert np.allclose(held, trace["layers"][1]["h"][6], atol=1e-3), (held, trace["layers"][1]["h"][6])  # float16 wire
    view = wait_diagram(page, "lstm_proj")
    assert view["unit"] < 4, view  # a unit with an h (P = 4 of H = 10)
    assert_numbers_match_api(view, trace, "lstm_proj")
    expect(page.get_by_test_id("steps")).to_contain_text("W")
    page.mouse.move(0, 0)
    page.screenshot(path=str(ARTIFACTS / f"files-proj-diagram-{width}x{height}.png"), full_page=True)
    page.get_by_test_id("unit").fill("7")  # a unit of C and m beyond P: it has no h
    page.wait_for_function("() => document.querySelector('[data-testid=unit]').dataset.unit === '7'")
    page.wait_for_function(
        "() => [...document.querySelectorAll('[data-testid=diagram] [data-gate=m][data-value]')]"
        ".some((e) => e.getClientRects().length > 0)"
    )
    keys = {k for k, _, _ in shown(page)["diagram"]}
    assert "m" in keys and "h" not in keys and "h_prev" not in keys, keys
    assert page.page_errors == []
    assert_clean(page, server)
