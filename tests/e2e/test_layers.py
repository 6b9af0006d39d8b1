"""A stacked model, uploaded to the server: picking layer 1 shows layer 1's numbers in the diagram, the walkthrough
and the heatmaps."""

from __future__ import annotations

import re
import urllib.error
from pathlib import Path

import numpy as np
import pytest
from playwright.sync_api import expect

from .conftest import (
    ARTIFACTS,
    api_card,
    api_trace,
    api_upload,
    assert_clean,
    assert_drawn,
    assert_numbers_match_api,
    click_cell,
    drawn,
    wait_diagram,
    wait_drawn,
    wait_frames,
)

pytestmark = pytest.mark.e2e

KERAS = Path(__file__).resolve().parents[1] / "fixtures" / "keras"
#: The id the stacked model is uploaded under.
STACKED = "stacked-e2e"
#: Characters all in the stacked model's vocabulary.
TEXT = "hello water tower"


def upload(server: str, weights: Path, vocab: Path, name: str) -> dict:
    """POST {server}/api/models (multipart: file, vocab, name); the new card."""
    status, body = api_upload(server, weights, vocab, name)
    assert status == 201, f"the upload was refused: {status} {body}"
    return body


@pytest.fixture(scope="module")
def stacked(server) -> dict:
    """A 2-layer text LSTM (the Keras fixture) uploaded to the server: its card."""
    try:
        return api_card(server, STACKED)
    except urllib.error.HTTPError:
        return upload(server, KERAS / "lstm_text.keras", KERAS / "lstm_text.vocab.json", STACKED)


def test_a_stacked_upload_shows_layer_1(page, server, stacked):
    assert (stacked["layers"], stacked["cell"], stacked["origin"]) == (2, "lstm", "uploaded")
    page.goto(server + "/")
    page.get_by_test_id("model").select_option(STACKED)
    expect(page.get_by_test_id("model")).to_have_value(STACKED)
    page.get_by_test_id("input").fill(TEXT)
    trace = api_trace(server, STACKED, TEXT)
    T = len(trace["tokens"])
    assert T == len(TEXT) and trace["unknown"] == []
    gates = stacked["gates"]
    assert_drawn(wait_drawn(page, gates, T), gates, T)

    layer = page.get_by_test_id("layer")
    expect(layer).to_be_enabled()
    expect(layer.locator("option")).to_have_count(2)
    layer.select_option("1")
    expect(layer).to_have_attribute("data-layer", "1")
    view = wait_diagram(page, "lstm", layer=1)
    assert view["layer"] == 1
    assert_numbers_match_api(view, trace, "lstm")
    expect(page.get_by_test_id("steps-head")).to_contain_text("(layer 1)")
    expect(page.get_by_test_id("heatmaps")).to_be_visible()

    # the heatmaps show layer 1 too: hover the f cell where the layers differ most and read its tooltip
    f0, f1 = (np.asarray(trace["layers"][k]["f"], dtype=np.float64) for k in (0, 1))
    t, unit = np.unravel_index(np.argmax(np.abs(f1 - f0)), f1.shape)
    assert abs(f1[t, unit] - f0[t, unit]) > 0.01, "the layers are too alike to tell apart"
    wait_drawn(page, gates, T)
    wait_frames(page)
    panel = next(p for p in drawn(page) if p["gate"] == "f")
    click_cell(page, panel, int(t), int(unit), hover=True)
    tip = page.get_by_role("tooltip")
    expect(tip).to_be_visible()
    expect(tip).to_contain_text(f"unit {unit}")
    value = float(re.search(r"=\s*([−-]?\d+\.\d+)", tip.inner_text()).group(1).replace("−", "-"))
    assert abs(value - f1[t, unit]) <= 0.0005 + 1e-9, f"the f heatmap shows {value} at t = {t}, unit {unit}"
    page.mouse.move(0, 0)
    page.screenshot(path=str(ARTIFACTS / "stacked-layer1.png"), full_page=True)
    assert_clean(page, server)
