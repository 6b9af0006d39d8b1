"""A bidirectional model in the page: the diagram draws the selected unit's direction, and its switch draws the
backward one (mirrored: the chain reads right to left, its state arrives from step t+1, its numbers are the
backward unit's); the heatmaps name the two halves of the units; the card says what a live edit costs; typing
recomputes the backward direction, so the first steps' backward values change as text is added."""

from __future__ import annotations

import json

import numpy as np
import pytest
from playwright.sync_api import expect

from .conftest import ARTIFACTS, DIAGRAM_KEYS, _running_server, api_trace, assert_clean, blur_text_box, wait_diagram

pytestmark = pytest.mark.e2e

#: The bidirectional model the module's server holds, its vocabulary and hidden size (per direction).
BIDIR = "bidir-e2e"
VOCAB = ["<unk>", "a", "b", "c", "d", "e", " "]
H = 6
TEXT = "abc dab"


def _write_bidir_model(models) -> None:
    """A random 1-layer bidirectional char LSTM (one-hot input, a next-token head), with a card."""
    import model

    V = len(VOCAB)
    spec = model.Spec("lstm", V, H, vocab=VOCAB, tokenizer="char", output_size=V, direction="bidirectional")
    rng = np.random.default_rng(4)
    params = {n: (0.8 * rng.standard_normal(spec.expected_shape(n))).astype(np.float32) for n in spec.param_names()}
    folder = models / BIDIR
    folder.mkdir(parents=True)
    model.save(model.Network(spec, params), folder / "model.safetensors")
    card = {"description": "A random bidirectional LSTM over a, b, c, d, e.", "examples": [TEXT]}
    (folder / "card.json").write_text(json.dumps(card))


@pytest.fixture(scope="module")
def bidir_server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bidir")
    _write_bidir_model(tmp / "models")
    with _running_server(tmp) as url:
        yield url


def line_reference(trace: dict, t: int, unit: int) -> dict[str, float]:
    """The LSTM lines of a unit at t from the API's gates; a backward unit's previous state is step t+1's (zeros
    after the last step), a forward one's step t−1's (zeros before the first)."""
    g = {k: np.asarray(v, dtype=np.float64)[:, unit] for k, v in trace["layers"][0].items()}
    T, prev = len(trace["tokens"]), (t + 1 if unit >= H else t - 1)
    h_prev, c_prev = (g["h"][prev], g["c"][prev]) if 0 <= prev < T else (0.0, 0.0)
    out = {k: float(v[t]) for k, v in g.items()}
    out |= {
        "h_prev": h_prev,
        "c_prev": c_prev,
        "f_c_prev": g["f"][t] * c_prev,
        "i_c_tilde": g["i"][t] * g["c_tilde"][t],
    }
    return out | {"tanh_c": float(np.tanh(g["c"][t]))}


def state_heads(pg) -> list[str]:
    """Which way each arrowhead on the neighbours' state lines points: 'right' or 'left'."""
    return pg.evaluate(
        """() => [...document.querySelectorAll('[data-testid="diagram"] .dg-nb-head')].map((p) => {
             const [tip, base] = p.getAttribute("points").split(" ").map((xy) => Number(xy.split(",")[0]));
             return tip > base ? "right" : "left";
           })"""
    )


def assert_lines(view: dict, want: dict[str, float]) -> None:
    """The diagram shows every LSTM line, each equal to the reference."""
    got = {k: v for k, v, _ in view["diagram"]}
    assert set(got) == DIAGRAM_KEYS["lstm"]
    for k, v in got.items():
        assert abs(v - want[k]) <= 1e-6 * max(1.0, abs(want[k])), f"{k} = {v}, the API gives {want[k]}"


def test_a_bidirectional_model_draws_both_directions(bidir_server, new_page):
    pg = new_page(1280, 720)
    t, u = 3, 2
    pg.goto(f"{bidir_server}/#model={BIDIR}&layer=0&t={t}&unit={u}&text={TEXT.replace(' ', '%20')}")
    trace = api_trace(bidir_server, BIDIR, TEXT)
    assert trace["directions"] == ["forward", "backward"] and len(trace["layers"][0]["h"][0]) == 2 * H

    # forward: the unit's own numbers, its previous state from t−1, the chain reading left to right
    view = wait_diagram(pg, "lstm", t=t, unit=u)
    switch = pg.get_by_test_id("direction")
    expect(switch).to_be_visible()
    expect(switch.locator("button")).to_have_text(["forward →", "← backward"])
    expect(switch.locator('[data-direction="forward"]')).to_have_attribute("aria-pressed", "true")
    assert pg.locator('[data-testid="diagram"] svg').get_attribute("data-direction") == "forward"
    h = np.asarray(trace["layers"][0]["h"], np.float64)
    assert_lines(view, line_reference(trace, t, u))
    assert abs(view_value(view, "h_prev") - h[t - 1, u]) <= 1e-6
    assert set(state_heads(pg)) == {"right"}
    expect(pg.locator('[data-testid="diagram"] .dg-sub').filter(has_text="t−1").first).to_be_visible()
    for size in [(1280, 720), (1024, 768), (390, 844)]:
        pg.set_viewport_size({"width": size[0], "height": size[1]})
        pg.get_by_test_id("diagram").screenshot(path=str(ARTIFACTS / f"bidir-forward-{size[0]}x{size[1]}.png"))

    # backward: the same unit of the other direction (H + u), mirrored, its previous state from t+1
    pg.set_viewport_size({"width": 1280, "height": 720})
    switch.locator('[data-direction="backward"]').click()
    view = wait_diagram(pg, "lstm", t=t, unit=H + u)
    expect(switch.locator('[data-direction="backward"]')).to_have_attribute("aria-pressed", "true")
    assert pg.locator('[data-testid="diagram"] svg').get_attribute("data-direction") == "backward"
    assert_lines(view, line_reference(trace, t, H + u))
    assert abs(view_value(view, "h_prev") - h[t + 1, H + u]) <= 1e-6
    assert abs(h[t + 1, H + u] - h[t - 1, H + u]) > 1e-3, "t−1 and t+1 too alike to tell the directions apart"
    assert set(state_heads(pg)) == {"left"}  # every state arrow points from t+1 to t
    expect(pg.locator('[data-testid="diagram"] .dg-sub').filter(has_text="t+1").first).to_be_visible()
    assert pg.locator('[data-testid="diagram"] .dg-sub').filter(has_text="t−1").count() == 0
    expect(pg.get_by_test_id("steps-head")).to_contain_text("backward")
    expect(pg.locator("#inspector-title")).to_contain_text(f"Unit {H + u} (backward)")
    for size in [(1280, 720), (1024, 768), (390, 844)]:
        pg.set_viewport_size({"width": size[0], "height": size[1]})
        pg.get_by_test_id("diagram").screenshot(path=str(ARTIFACTS / f"bidir-backward-{size[0]}x{size[1]}.png"))
    pg.set_viewport_size({"width": 1280, "height": 720})

    # the heatmaps name their halves; the card says what an edit costs
    halves = pg.get_by_test_id("heatmap-f").get_by_test_id("heatmap-half")
    expect(halves).to_have_text(["forward →", "← backward"])
    expect(pg.get_by_test_id("description")).to_contain_text("O(T) per edit")
    pg.screenshot(path=str(ARTIFACTS / "bidir-page-1280x720.png"), full_page=True)

    # typing: the backward direction is recomputed over the whole text, step 0's backward values change
    longer = TEXT + " eed"
    pg.get_by_test_id("input").fill(longer)
    pg.wait_for_function("(T) => window.gatescope.state.T === T", arg=len(longer))
    blur_text_box(pg)
    pg.keyboard.press("Home")
    view = wait_diagram(pg, "lstm", t=0, unit=H + u)
    fresh = api_trace(bidir_server, BIDIR, longer)
    assert_lines(view, line_reference(fresh, 0, H + u))
    old = np.asarray(trace["layers"][0]["c"])[0, H + u]
    assert abs(view_value(view, "c") - old) > 1e-3, "step 0's backward cell state did not change with the new text"
    pg.wait_for_function("(u) => location.hash.includes(`unit=${u}`)", arg=H + u)  # the link names the backward unit
    assert_clean(pg, bidir_server)


def view_value(view: dict, key: str) -> float:
    return next(v for k, v, _ in view["diagram"] if k == key)
