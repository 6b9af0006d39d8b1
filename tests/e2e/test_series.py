"""A series in the page: the bundled CO2 forecaster's CSV pasted into the input draws every heatmap, the series and
the predicted curve (the model's own numbers); appending rows traces only the new steps and adds their columns; a
.npy file chosen is read by the server into the box; the diagram's x_t carries the step's vector."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from playwright.sync_api import expect

import model
from model.regression import CO2_CSV, predicted
from model.series import read_csv

from .conftest import ARTIFACTS, api_card, assert_clean, wait_drawn

pytestmark = pytest.mark.e2e

FORECASTER = "co2-lstm"
#: Rows of the CO2 series pasted first, then appended.
FIRST, MORE = 80, 6


def rows(n: int, start: int = 0) -> str:
    """Rows start .. start+n of the committed CO2 CSV, with its header when start is 0."""
    lines = CO2_CSV.read_text().splitlines()
    return "\n".join(([lines[0]] if start == 0 else []) + lines[1 + start : 1 + start + n]) + "\n"


def series_drawn(pg, T: int) -> dict:
    """Wait until the series panel shows T steps; its curves' names and the plotted y values."""
    pg.wait_for_function(
        "T => document.querySelector('[data-testid=series]').dataset.steps === String(T)", arg=T, timeout=15_000
    )
    return pg.evaluate(
        """() => {
          const root = document.querySelector('[data-testid=series]');
          const plot = document.getElementById('series-plot');
          return {
            curves: root.dataset.curves.split(','),
            data: plot.data.map((d) => ({name: d.name, y: Array.from(d.y, (v) => (v === null ? NaN : v))})),
            paths: plot.querySelectorAll('.scatterlayer .trace path.js-line').length,
            from: window.gatescope.state.trace.from,
          };
        }"""
    )


def test_a_pasted_series_draws_heatmaps_and_the_forecast_and_appending_adds_columns(page, server):
    card = api_card(server, FORECASTER)
    assert (card["input"], card["input_size"]) == ("vectors", 1)
    page.goto(server + "/")
    page.get_by_test_id("model").select_option(FORECASTER)
    expect(page.get_by_test_id("model")).to_have_value(FORECASTER)
    page.get_by_test_id("input").fill(rows(FIRST))
    wait_drawn(page, card["gates"], FIRST)
    shown = series_drawn(page, FIRST)
    assert shown["curves"] == ["co2", "predicted", "target"] and shown["paths"] == 3
    net = model.load(FORECASTER)
    x = read_csv(rows(FIRST + MORE))[0]
    want = predicted(net, net.trace(x))[:, 0]  # (T,) the model's forecasts, computed here
    got = {d["name"]: np.array(d["y"], float) for d in shown["data"]}
    x32 = x.astype(net.dtype)  # the series as the network reads it (float32)
    np.testing.assert_array_equal(got["co2"], x32[:FIRST, 0])
    np.testing.assert_allclose(got["predicted"], want[:FIRST], rtol=0, atol=1e-3)  # ppm, float32 on the wire
    target = got["target"]  # next week's value where the pasted rows have it; no point at the last step
    assert target[-1] is None or np.isnan(target[-1])
    np.testing.assert_array_equal(target[:-1].astype(float), x32[1:FIRST, 0])
    page.screenshot(path=str(ARTIFACTS / "series-1280x720.png"), full_page=True)

    page.get_by_test_id("input").fill(rows(FIRST) + rows(MORE, FIRST))  # rows appended
    wait_drawn(page, card["gates"], FIRST + MORE)
    more = series_drawn(page, FIRST + MORE)
    assert more["from"] == FIRST  # only the appended rows were traced and sent
    np.testing.assert_allclose(np.array(more["data"][1]["y"]), want, rtol=0, atol=1e-3)
    strip = page.get_by_test_id("x-strip").locator("rect[data-value]")
    expect(strip).to_have_count(1)
    assert float(strip.get_attribute("data-value")) == x32[FIRST + MORE - 1, 0]  # x_t at the last step

    with page.expect_download() as dl:  # "Trace JSON" downloads the trace of the series the page shows
        page.locator("#download-json").click()
    body = json.loads(Path(dl.value.path()).read_text())
    assert body["tokens"] == [str(t) for t in range(FIRST + MORE)]
    whole = net.trace(x)
    np.testing.assert_array_equal(np.array(body["layers"][0]["c"], np.float32), whole.layers[0]["c"])
    np.testing.assert_array_equal(np.array(body["values"], np.float32), whole.values)
    assert_clean(page, server)


def test_a_npy_file_chosen_is_read_by_the_server_into_the_box(page, server):
    card = api_card(server, FORECASTER)
    page.goto(server + "/")
    page.get_by_test_id("model").select_option(FORECASTER)
    buf = io.BytesIO()
    walk = 340 + np.cumsum(np.full(30, 0.05))
    np.save(buf, walk)
    page.get_by_test_id("series-file").set_input_files(
        files=[{"name": "walk.npy", "mimeType": "application/octet-stream", "buffer": buf.getvalue()}]
    )
    wait_drawn(page, card["gates"], 30)
    assert read_csv(page.get_by_test_id("input").input_value())[0][:, 0].tolist() == walk.tolist()
    page.get_by_test_id("series-file").set_input_files(
        files=[{"name": "bad.npy", "mimeType": "application/octet-stream", "buffer": b"\x93NUMPY broken"}]
    )
    expect(page.get_by_test_id("alert")).to_contain_text("Cannot read bad.npy")
    assert page.page_errors == []


@pytest.mark.parametrize(("width", "height"), [(1024, 768), (390, 844)])
def test_the_series_view_fits_smaller_windows(new_page, server, width, height):
    pg = new_page(width, height)
    card = api_card(server, FORECASTER)
    pg.goto(server + "/")
    pg.get_by_test_id("model").select_option(FORECASTER)
    pg.get_by_test_id("input").fill(rows(FIRST))
    wait_drawn(pg, card["gates"], FIRST)
    series_drawn(pg, FIRST)
    overflow = pg.evaluate("() => document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0, f"the page is {overflow} px wider than its {width} px window"
    pg.screenshot(path=str(ARTIFACTS / f"series-{width}x{height}.png"), full_page=True)
