"""Issue 14's small things a reader trips on, in a real Chromium against the real server: the tour's panel is a band in
the page's flow that covers nothing (1280, 1024, 390 px); leaving a chapter's state by hand says so and offers the way
back; an upload keeps the text typed when the server says the new model reads it (the model switch's rule); a long
text's window round-trips through the URL and a saved page; the known units' select is read whole (390, 1280 px).
Screenshots into /tmp/shots-small14/."""

from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path

import pytest
from playwright.sync_api import expect

from .conftest import ROOT, api_models, assert_clean

pytestmark = pytest.mark.e2e

SHOTS = Path("/tmp/shots-small14")
#: 1,500 characters of Python the code model reads: a text longer than a window (400 steps).
FIXTURES = ROOT / "tests" / "fixtures"
LONG = "".join(p.read_text() for p in sorted((ROOT / "model").rglob("*.py")))[:1500]


def _story(server: str) -> list[dict]:
    with urllib.request.urlopen(server + "/api/story", timeout=30) as r:
        return json.load(r)["chapters"]


#: What the story panel could cover: every step card, heatmap, the diagram, the predictions, the controls, the text.
_COVERED_JS = """() => {
  const story = document.querySelector('[data-testid="story"]').getBoundingClientRect();
  const sel = ['[data-testid="steps"] > *', '[data-testid="heatmaps"] > *', '[data-testid="diagram"]',
    '[data-testid="predictions"]', '.controls', '[data-testid="input"]', '.panel'];
  const hit = [];
  for (const e of document.querySelectorAll(sel.join(","))) {
    if (e.closest('[data-testid="story"]')) continue;
    const r = e.getBoundingClientRect();
    if (!r.width || !r.height) continue;
    const w = Math.min(r.right, story.right) - Math.max(r.left, story.left);
    const h = Math.min(r.bottom, story.bottom) - Math.max(r.top, story.top);
    if (w > 0.5 && h > 0.5) hit.push(`${e.tagName}.${e.className} ${e.dataset.testid || ""}`);
  }
  return { hit, story: [story.top, story.bottom, story.height], position: getComputedStyle(
    document.querySelector('[data-testid="story"]')).position };
}"""


@pytest.mark.parametrize("size", [(1280, 720), (1024, 768), (390, 844)], ids=["1280", "1024", "390"])
def test_the_story_band_covers_nothing(new_page, server, size):
    SHOTS.mkdir(parents=True, exist_ok=True)
    pg = new_page(*size)
    pg.goto(server + "/")
    expect(pg.get_by_test_id("story-start")).to_be_enabled(timeout=15_000)
    pg.get_by_test_id("story-start").click()
    expect(pg.get_by_test_id("story")).to_have_attribute("data-chapter", "unit-and-gate", timeout=15_000)
    for _ in range(3):  # chapter 1, 2, 3 (another model): the views rebuild under the band, never under it
        pg.wait_for_timeout(400)
        got = pg.evaluate(_COVERED_JS)
        assert got["hit"] == [], f"at {size} the story covers {got['hit']}"
        assert got["story"][2] > 40 and got["position"] in ("static", "relative"), got
        top = pg.evaluate("document.querySelector('[data-testid=\"story\"]').getBoundingClientRect().top")
        assert 0 <= top < size[1] / 2, f"the chapter is not brought into view (top {top})"
        pg.screenshot(path=str(SHOTS / f"story-{size[0]}-{_}.png"))
        pg.get_by_test_id("story-next").click()
    assert pg.evaluate("document.documentElement.scrollWidth") <= size[0]  # no sideways scrolling
    assert_clean(pg, server)


def test_leaving_a_chapter_by_hand_says_so_and_back_restores_it(page, server):
    SHOTS.mkdir(parents=True, exist_ok=True)
    chapters = _story(server)
    first, second = chapters[0], chapters[1]
    assert first["free"] == ["t", "unit", "layer", "gate"]  # model/story.py: what a reader may change and stay
    assert {"text", "model"} <= set(chapters[-1]["free"])  # "now type your own": anything
    page.goto(server + "/")
    expect(page.get_by_test_id("story-start")).to_be_enabled(timeout=15_000)
    page.get_by_test_id("story-start").click()
    story, words = page.get_by_test_id("story"), page.get_by_test_id("story-words")
    expect(story).to_have_attribute("data-chapter", first["id"], timeout=15_000)
    expect(words).to_have_text(first["words"])
    expect(page.get_by_test_id("timestep")).to_have_attribute("data-t", str(first["t"]), timeout=15_000)

    # scrubbing and another unit are free: the chapter's words stay
    page.locator("body").click(position={"x": 5, "y": 5})
    page.keyboard.press("ArrowRight")
    expect(page.get_by_test_id("timestep")).to_have_attribute("data-t", str(first["t"] + 1))
    page.get_by_test_id("unit").fill("3")
    page.get_by_test_id("unit").press("Enter")
    expect(page.get_by_test_id("unit")).to_have_attribute("data-unit", "3")
    expect(words).to_have_text(first["words"])
    expect(story).to_have_attribute("data-left", "false")

    # another model by hand: the chapter is left, and the panel says so
    page.get_by_test_id("model").select_option("dyck")
    expect(page.get_by_test_id("input")).not_to_have_value(first["text"])
    expect(words).to_contain_text("You have left this chapter")
    expect(words).to_contain_text("the model")
    expect(story).to_have_attribute("data-left", "true")
    expect(page.get_by_test_id("story-restore")).to_be_visible()
    expect(page.get_by_test_id("story-prev")).to_be_hidden()
    expect(page.get_by_test_id("story-next")).to_be_visible()
    expect(page.get_by_test_id("story-close")).to_be_visible()
    page.screenshot(path=str(SHOTS / "story-left.png"))

    # back: the chapter's state again, and its words
    page.get_by_test_id("story-restore").click()
    expect(page.get_by_test_id("model")).to_have_value(first["model"])
    expect(page.get_by_test_id("input")).to_have_value(first["text"])
    expect(page.get_by_test_id("timestep")).to_have_attribute("data-t", str(first["t"]), timeout=15_000)
    expect(page.get_by_test_id("unit")).to_have_attribute("data-unit", str(first["unit"]))
    expect(words).to_have_text(first["words"])
    expect(story).to_have_attribute("data-left", "false")

    # editing the text leaves it too; Next goes on to the next chapter
    page.get_by_test_id("input").press("End")
    page.get_by_test_id("input").type("a")
    expect(words).to_contain_text("You have left this chapter")
    expect(words).to_contain_text("the text")
    page.get_by_test_id("story-next").click()
    expect(story).to_have_attribute("data-chapter", second["id"], timeout=15_000)
    expect(words).to_have_text(second["words"])
    expect(page.get_by_test_id("input")).to_have_value(second["text"])

    # and the last chapter leaves the text free: typing there is the chapter
    page.goto(server + f"/#chapter={chapters[-1]['id']}")
    page.reload()
    expect(story).to_have_attribute("data-chapter", chapters[-1]["id"], timeout=15_000)
    page.get_by_test_id("input").press("End")
    page.get_by_test_id("input").type(" x = (1)")
    page.wait_for_timeout(300)
    expect(words).to_have_text(chapters[-1]["words"])
    page.get_by_test_id("story-close").click()
    expect(story).to_be_hidden()
    assert_clean(page, server)


def test_an_upload_keeps_the_text_the_new_model_reads(page, server):
    """The upload chooses its model by the switch's rule (POST /api/models/{id}/reads), not by vocabulary size: the
    GRU reads 30 symbols, code another number, yet the text typed stays because the GRU reads it."""
    name = "small14-gru"
    page.goto(server + "/")
    expect(page.get_by_test_id("model")).to_have_value("code")
    own = "hello world, again."
    page.get_by_test_id("input").fill(own)
    with urllib.request.urlopen(
        urllib.request.Request(
            server + "/api/models/code/reads", json.dumps({"text": own}).encode(), {"content-type": "application/json"}
        ),
        timeout=30,
    ) as r:
        assert json.load(r)["reads"]
    page.get_by_test_id("upload-open").click()
    page.get_by_test_id("upload-file").set_input_files(str(FIXTURES / "torch" / "gru_text.safetensors"))
    page.get_by_test_id("upload-vocab").set_input_files(str(FIXTURES / "torch" / "gru_text.vocab.json"))
    page.get_by_test_id("upload-name").fill(name)
    asked = []
    page.on("request", lambda r: r.url.endswith(f"/api/models/{name}/reads") and asked.append(r.url))
    page.get_by_test_id("upload-submit").click()
    expect(page.get_by_test_id("upload")).to_be_hidden(timeout=60_000)
    expect(page.get_by_test_id("model")).to_have_value(name)
    expect(page.get_by_test_id("input")).to_have_value(own)  # kept: the server said the GRU reads it
    assert asked, "the upload did not ask the server whether the new model reads the text"
    page.once("dialog", lambda d: d.accept())
    page.get_by_test_id("upload-remove").click()
    expect(page.get_by_test_id("model")).not_to_have_value(name)
    expect(page.get_by_test_id("input")).to_have_value(own)  # code reads it too
    gone = time.monotonic() + 15  # the page leaves the model first, then asks the server to delete it
    while name in api_models(server) and time.monotonic() < gone:
        time.sleep(0.1)
    assert name not in api_models(server)
    assert_clean(page, server)


_WIN_JS = "() => { const s = gatescope.state; return [s.view.start, s.view.stop, s.windowSize, s.t, s.T]; }"


def test_a_long_texts_window_round_trips_through_the_url_and_a_saved_page(page, new_page, server, tmp_path):
    from urllib.parse import quote

    page.goto(server + f"/#model=code&layer=0&t=1000&unit=5&gate=c&text={quote(LONG)}&win=900.200")
    page.wait_for_function("() => gatescope.state.T > 1000", timeout=30_000)
    page.wait_for_function(f"() => ({_WIN_JS})()[0] === 900", timeout=15_000)
    assert page.evaluate(_WIN_JS)[:4] == [900, 1100, 200, 1000]  # the link's window, not one placed around t
    # the overview's zoom-in: the hash follows the new window
    page.get_by_test_id("zoom-in").click()
    page.wait_for_function("() => gatescope.state.windowSize < 200")
    start, stop, size, _, _ = page.evaluate(_WIN_JS)
    page.wait_for_function("(w) => location.hash.includes(`&win=${w}`)", arg=f"{start}.{size}", timeout=5_000)
    # a reload opens on the same window
    page.reload()
    page.wait_for_function(f"(s) => ({_WIN_JS})()[2] === s && gatescope.state.T > 1000", arg=size, timeout=30_000)
    page.wait_for_function(f"(a) => ({_WIN_JS})()[0] === a", arg=start, timeout=15_000)
    assert page.evaluate(_WIN_JS)[:3] == [start, stop, size]

    # the saved page opens on the window too
    with page.expect_download() as dl:
        page.get_by_test_id("save-page").click()
    path = tmp_path / "saved.html"
    dl.value.save_as(path)
    pg = new_page()
    pg.goto(path.as_uri())
    pg.wait_for_function("() => gatescope.state.T > 1000", timeout=30_000)
    pg.wait_for_function(f"(a) => ({_WIN_JS})()[0] === a", arg=start, timeout=15_000)
    assert pg.evaluate(_WIN_JS)[:3] == [start, stop, size]
    assert_clean(page, server)


#: The known units' select: its widest choice and its chosen one (canvas-measured in its font), the room its box
#: leaves for text, its title; and any two of the controls that overlap.
_KNOWN_JS = """(s) => { const c = document.createElement("canvas").getContext("2d"); const cs = getComputedStyle(s);
  c.font = `${cs.fontWeight} ${cs.fontSize} ${cs.fontFamily}`;
  const widest = Math.max(...[...s.options].map((o) => c.measureText(o.text).width));
  const chosen = c.measureText(s.selectedOptions[0].text).width;
  const room = s.clientWidth - parseFloat(cs.paddingLeft) - parseFloat(cs.paddingRight) - 20; // arrow
  const boxes = [...document.querySelector(".controls").children].map((e) => [e, e.getBoundingClientRect()])
    .filter(([, r]) => r.width && r.height);
  const overlaps = [];
  for (const [i, [a, r]] of boxes.entries()) for (const [b, q] of boxes.slice(i + 1))
    if (Math.min(r.right, q.right) - Math.max(r.left, q.left) > 0.5
      && Math.min(r.bottom, q.bottom) - Math.max(r.top, q.top) > 0.5)
      overlaps.push(`${a.className || a.id} × ${b.className || b.id}`);
  return { widest, chosen, room, title: s.title, chosenText: s.selectedOptions[0].text, overlaps,
    text: [...s.options].map((o) => o.text) }; }"""


@pytest.mark.parametrize("size", [(390, 844), (1280, 720)], ids=["390", "1280"])
def test_the_known_units_select_is_read_whole(new_page, server, size):
    """On a phone every choice fits the select's own row; at 1280 px the chosen one fits (the select is as wide as
    it, the controls wrap rather than overlap) and its title says it whole."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    for model in ("code", "recall-lstm", "dyck"):
        pg = new_page(*size)
        pg.goto(server + f"/#model={model}")
        known = pg.get_by_test_id("known-units")
        expect(known).to_be_enabled(timeout=15_000)
        expect(known.locator("option").first).to_be_attached(timeout=15_000)  # the card's choices are in
        got = known.evaluate(_KNOWN_JS)
        if size[0] == 390:
            assert got["widest"] <= got["room"], f"{model}: the known units' choices are cut at 390 px: {got}"
        for n in range(1, len(got["text"])):  # each known unit chosen in turn ("— pick one —" is 0)
            known.select_option(index=n)
            expect(known).to_have_attribute("title", got["text"][n])
            now = known.evaluate(_KNOWN_JS)
            assert now["chosen"] <= now["room"], f"{model}: '{now['chosenText']}' is cut at {size[0]} px: {now}"
            assert now["overlaps"] == [], f"{model} at {size[0]} px: the controls overlap: {now['overlaps']}"
            if size[0] == 1280:  # one layer: no layer select, so the row keeps Present beside the known units
                tops = pg.evaluate("['known', 'present'].map((id) => document.getElementById(id).offsetTop)")
                assert abs(tops[0] - tops[1]) < 8, f"{model}: '{now['chosenText']}' pushes Present to a row of its own"
        pg.screenshot(path=str(SHOTS / f"known-{size[0]}-{model}.png"))
        assert pg.evaluate("document.documentElement.scrollWidth") <= size[0]
        assert_clean(pg, server)
