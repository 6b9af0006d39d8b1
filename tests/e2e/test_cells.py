"""Each cell type draws its own card: colah's diagram for its cell, a heatmap for each of its gates and no other, and
every number the API's."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from .conftest import (
    ARTIFACTS,
    DIAGRAM_KEYS,
    api_card,
    api_trace,
    assert_clean,
    assert_drawn,
    assert_numbers_match_api,
    blur_text_box,
    wait_diagram,
    wait_drawn,
    wait_frames,
)

pytestmark = pytest.mark.e2e

#: What each gate's heatmap is titled (beside its math name).
ROLE = {
    "f": "forget gate",
    "i": "input gate",
    "c_tilde": "candidate",
    "c": "cell state",
    "o": "output gate",
    "h": "hidden state",
    "z": "update gate",
    "r": "reset gate",
    "h_tilde": "candidate",
}


def switch_and_check(pg, server: str, model_id: str) -> None:
    """Pick a model in the picker; its diagram, heatmaps and numbers (at the last and first steps) follow its card."""
    card = api_card(server, model_id)
    cell = card["cell"]
    pg.get_by_test_id("model").select_option(model_id)
    expect(pg.locator(f'[data-testid="diagram"] svg[data-cell="{cell}"]')).to_have_count(1)
    text = pg.get_by_test_id("input").input_value()
    assert text, f"{model_id} opened with an empty text box"
    trace = api_trace(server, model_id, text)
    T = len(trace["tokens"])
    assert_drawn(wait_drawn(pg, card["gates"], T), card["gates"], T)
    wait_frames(pg)
    titles = pg.locator('[data-testid="heatmaps"] figure[data-gate] .gtitle').all_text_contents()
    assert len(titles) == len(card["gates"])
    for gate, title in zip(card["gates"], titles):
        assert ROLE[gate] in title, f"the {gate} heatmap is titled {title!r}"
    for gate in {"f", "i", "c_tilde", "c", "o", "z", "r", "h_tilde"} - set(card["gates"]):
        expect(pg.get_by_test_id(f"heatmap-{gate}")).to_have_count(0)
        expect(pg.locator(f'[data-testid="diagram"] [data-gate="{gate}"]')).to_have_count(0)
    assert_numbers_match_api(wait_diagram(pg, cell, t=T - 1), trace, cell)
    blur_text_box(pg)
    pg.keyboard.press("Home")
    assert_numbers_match_api(wait_diagram(pg, cell, t=0), trace, cell)
    pg.keyboard.press("End")
    expect(pg.get_by_test_id("timestep")).to_have_attribute("data-t", str(T - 1))


def test_a_gru_shows_the_gru_diagram_and_its_four_heatmaps(page, server):
    page.goto(server + "/")
    expect(page.locator('[data-testid="diagram"] svg[data-cell="lstm"]')).to_have_count(1)
    assert api_card(server, "recall-gru")["gates"] == ["z", "r", "h_tilde", "h"]
    switch_and_check(page, server, "recall-gru")
    keys = set(page.locator('[data-testid="diagram"] [data-gate]').evaluate_all("es => es.map(e => e.dataset.gate)"))
    assert keys == DIAGRAM_KEYS["gru"] and {"z", "r", "h_tilde"} <= keys and "f" not in keys
    page.screenshot(path=str(ARTIFACTS / "recall-gru.png"), full_page=True)
    assert_clean(page, server)


@pytest.mark.parametrize("model_id", ["recall-peephole", "recall-coupled", "recall-rnn"])
def test_each_cell_type_draws_its_own_card(page, server, model_id):
    page.goto(server + "/")
    expect(page.locator('[data-testid="diagram"] svg[data-cell="lstm"]')).to_have_count(1)
    switch_and_check(page, server, model_id)
    page.screenshot(path=str(ARTIFACTS / f"{model_id}.png"), full_page=True)
    assert_clean(page, server)
