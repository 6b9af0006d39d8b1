"""The guided story in a real Chromium against the real server: "Take the tour" opens the first chapter, each
chapter sets the state it claims (model, text, unit, t in the page's controls and the URL) and the page shows it (its
words, the model's description, the lit gate in the diagram and its heatmap); Next / Back walk the chapters, a link
opens on its chapter, leaving keeps the state. And a model switch keeps the text when the new model reads it, and
asks in the page before replacing it when it does not. Screenshots of every chapter into /tmp/shots-story/."""

from __future__ import annotations

import json
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from playwright.sync_api import expect

from .conftest import api_card, assert_clean

pytestmark = pytest.mark.e2e

SHOTS = Path("/tmp/shots-story")


def _story(server: str) -> list[dict]:
    with urllib.request.urlopen(server + "/api/story", timeout=30) as r:
        return json.load(r)["chapters"]


def _hash(pg) -> dict:
    h = pg.evaluate("location.hash")[1:]
    return {k: urllib.parse.unquote(v) for k, v in (p.split("=", 1) for p in h.split("&") if "=" in p)}


_LIT_JS = """(gate) => {
  const lit = [...document.querySelectorAll('[data-testid="diagram"] .dg-lit')];
  const panel = document.querySelector(`[data-testid="heatmap-${gate}"]`);
  const inner = (e) => [...e.querySelectorAll("[data-gate]")].map((c) => c.dataset.gate);
  const names = (e) => [e.dataset.part, e.dataset.strip, ...inner(e)];
  return {lit: lit.length, gates: [...new Set(lit.flatMap(names).filter(Boolean))],
    panel: !!panel && panel.classList.contains("is-highlit")};
}"""


def _assert_chapter(pg, server: str, ch: dict, k: int, n: int) -> None:
    """The page shows chapter ch: the panel, the state in the controls and the URL, the description, the lit gate."""
    story = pg.get_by_test_id("story")
    expect(story).to_have_attribute("data-chapter", ch["id"], timeout=15_000)  # a loaded 2-core machine
    expect(pg.get_by_test_id("story-words")).to_have_text(ch["words"])
    expect(story).to_contain_text(f"chapter {k + 1} of {n}")
    expect(pg.get_by_test_id("model")).to_have_value(ch["model"])
    expect(pg.get_by_test_id("input")).to_have_value(ch["text"])
    expect(pg.get_by_test_id("timestep")).to_have_attribute("data-t", str(ch["t"]), timeout=15_000)
    expect(pg.get_by_test_id("unit")).to_have_attribute("data-unit", str(ch["unit"]))
    expect(pg.get_by_test_id("description")).to_contain_text(api_card(server, ch["model"])["description"])
    pg.wait_for_function(
        "([id, t, unit]) => location.hash.includes(`chapter=${id}`) && location.hash.includes(`&t=${t}&`)"
        " && location.hash.includes(`&unit=${unit}&`)",
        arg=[ch["id"], ch["t"], ch["unit"]],
    )
    h = _hash(pg)
    assert (h["model"], h["text"], h["t"], h["unit"], h["chapter"]) == (
        ch["model"], ch["text"], str(ch["t"]), str(ch["unit"]), ch["id"],
    )  # fmt: skip
    if ch["highlight"]:
        for _ in range(50):  # the diagram lights the gate once its model's diagram is built
            lit = pg.evaluate(_LIT_JS, ch["highlight"])
            if lit["lit"] and lit["panel"] and ch["highlight"] in lit["gates"]:
                break
            pg.wait_for_timeout(100)
        assert lit["panel"], f"the heatmap of {ch['highlight']} is not lit in {ch['id']}"
        assert ch["highlight"] in lit["gates"], f"{ch['id']}: the diagram lights {lit['gates']}"


def test_the_tour_walks_every_chapter_and_each_sets_the_page(page, server):
    SHOTS.mkdir(parents=True, exist_ok=True)
    chapters = _story(server)
    assert [c["id"] for c in chapters] == [
        "unit-and-gate", "forget-holds", "rnn-fails", "dyck-counter", "code-brackets", "your-own",
    ]  # fmt: skip
    page.goto(server + "/")
    expect(page.get_by_test_id("story")).to_be_hidden()
    expect(page.get_by_test_id("story-start")).to_be_enabled()
    page.screenshot(path=str(SHOTS / "start-1280x720.png"))
    page.get_by_test_id("story-start").click()
    for k, ch in enumerate(chapters):
        _assert_chapter(page, server, ch, k, len(chapters))
        page.wait_for_timeout(150)  # the heatmaps' frame
        page.screenshot(path=str(SHOTS / f"chapter-{k + 1}-{ch['id']}-1280x720.png"))
        if k < len(chapters) - 1:
            page.get_by_test_id("story-next").click()
    expect(page.get_by_test_id("input")).to_be_focused()  # "now type your own": the text box, ready
    page.get_by_test_id("story-prev").click()  # back to the bracket unit
    _assert_chapter(page, server, chapters[-2], len(chapters) - 2, len(chapters))
    page.get_by_test_id("story-prev").click()
    _assert_chapter(page, server, chapters[-3], len(chapters) - 3, len(chapters))
    page.get_by_test_id("story-close").click()  # leave: the page keeps the chapter's state
    expect(page.get_by_test_id("story")).to_be_hidden()
    expect(page.get_by_test_id("model")).to_have_value("dyck")
    page.wait_for_function("() => !location.hash.includes('chapter=')")
    assert _hash(page)["t"] == str(chapters[-3]["t"])
    assert_clean(page, server)


def test_a_link_opens_on_its_chapter(new_page, server):
    chapters = {c["id"]: c for c in _story(server)}
    only = new_page(1024, 768)  # a link naming only the chapter takes the chapter's state (on a projector)
    only.goto(server + "/#chapter=rnn-fails")
    ids = list(chapters)
    _assert_chapter(only, server, chapters["rnn-fails"], ids.index("rnn-fails"), len(ids))
    only.screenshot(path=str(SHOTS / "chapter-rnn-fails-1024x768.png"))
    assert "fails" in only.get_by_test_id("description").inner_text()
    shared = new_page(390, 844)  # the link the page itself wrote, on a phone
    shared.goto(server + "/" + only.evaluate("location.hash"))
    _assert_chapter(shared, server, chapters["rnn-fails"], ids.index("rnn-fails"), len(ids))
    shared.screenshot(path=str(SHOTS / "chapter-rnn-fails-390x844.png"))
    shared.get_by_test_id("story-next").click()
    _assert_chapter(shared, server, chapters["dyck-counter"], ids.index("dyck-counter"), len(ids))
    assert_clean(only, server)
    assert_clean(shared, server)


def test_a_model_switch_keeps_a_text_the_new_model_reads_and_asks_otherwise(page, server):
    page.goto(server + "/#model=recall-lstm")
    box = page.get_by_test_id("input")
    expect(box).to_have_value(api_card(server, "recall-lstm")["examples"][0])
    box.fill("b31415926?")
    page.get_by_test_id("model").select_option("code")  # code's characters include these: kept
    expect(page.get_by_test_id("model")).to_have_value("code")
    page.wait_for_function("() => location.hash.includes('model=code')")
    expect(box).to_have_value("b31415926?")
    expect(page.get_by_test_id("switch-ask")).to_be_hidden()
    page.get_by_test_id("model").select_option("dyck")  # dyck reads only ( ) $: asked first
    ask = page.get_by_test_id("switch-ask")
    expect(ask).to_be_visible()
    expect(ask).to_contain_text("dyck cannot read your text")
    page.screenshot(path=str(SHOTS / "switch-ask-1280x720.png"))
    page.get_by_test_id("switch-stay").click()  # stay: nothing replaced, the picker back on code
    expect(ask).to_be_hidden()
    expect(page.get_by_test_id("model")).to_have_value("code")
    expect(box).to_have_value("b31415926?")
    page.get_by_test_id("model").select_option("dyck")
    page.get_by_test_id("switch-replace").click()
    expect(page.get_by_test_id("model")).to_have_value("dyck")
    expect(box).to_have_value(api_card(server, "dyck")["examples"][0])
    assert_clean(page, server)
