"""A BPE model in the page: uploaded with its tokenizer.json in the dialog's second field, it shows its pieces as
their text everywhere (the coloured text reads as typed, the heatmaps' time axis and the predictions show a space
as ␣ and a newline as ↵, never GPT-2's Ġ and Ċ), and live typing a word a character at a time ends where a fresh
trace of the whole text does."""

from __future__ import annotations

import urllib.request
from pathlib import Path

import pytest
from playwright.sync_api import expect

from .conftest import ARTIFACTS, api_card, api_trace, assert_clean, wait_drawn

pytestmark = pytest.mark.e2e

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "tokenizers"
READ_MS = 60_000
#: The page's visible whitespace (static/js/format.js showToken).
VISIBLE = {" ": "␣", "\n": "↵", "\t": "⇥"}


def _shown(tok: str) -> str:
    return "".join(VISIBLE.get(c, c) for c in tok)


def _delete(server: str, model_id: str) -> None:
    req = urllib.request.Request(f"{server}/api/models/{model_id}", method="DELETE")
    try:
        urllib.request.urlopen(req, timeout=30)
    except OSError:
        pass


def test_a_bpe_model_shows_its_pieces_as_text(page, server):
    try:
        page.goto(server + "/")
        expect(page.get_by_test_id("model")).to_have_value("code")
        page.get_by_test_id("upload-open").click()
        page.get_by_test_id("upload-file").set_input_files(str(FIX / "lstm_bpe.safetensors"))
        page.get_by_test_id("upload-vocab").set_input_files(str(FIX / "bpe.json"))  # a tokenizer.json
        page.get_by_test_id("upload-name").fill("bpe-e2e")
        page.get_by_test_id("upload-submit").click()
        expect(page.get_by_test_id("upload")).to_be_hidden(timeout=READ_MS)
        expect(page.get_by_test_id("model")).to_have_value("bpe-e2e")
        expect(page.get_by_test_id("description")).to_contain_text("It reads BPE (byte-level) pieces")
        card = api_card(server, "bpe-e2e")

        typed = "The cat sat on the mat.\nA dog"
        box = page.get_by_test_id("input")
        box.click()
        box.press_sequentially(typed, delay=15)  # live typing: a subword tokenizer re-splits the last word
        trace = api_trace(server, "bpe-e2e", typed)
        assert "Ġcat" in trace["tokens"] and "Ċ" in trace["tokens"]
        T = len(trace["tokens"])
        wait_drawn(page, card["gates"], T)

        # the coloured text: a span a piece, reading as typed
        spans = page.get_by_test_id("coloured-text").locator("span")
        expect(spans).to_have_count(T)
        want = [d.replace("\n", "↵") for d in trace["display"]]
        assert spans.all_text_contents() == want
        assert page.get_by_test_id("coloured-text").inner_text().replace("↵", "") == typed

        # the heatmaps' time axis and the predictions: spaces and newlines visible, never Ġ or Ċ
        ticks = page.get_by_test_id("heatmaps").locator(".xtick text").first
        expect(ticks).to_be_visible()
        labels = page.get_by_test_id("heatmaps").locator(".xtick text").all_text_contents()
        assert _shown(" cat") in labels and "↵" in labels, labels[:20]
        shown_text = " ".join(labels) + page.get_by_test_id("predictions").inner_text()
        assert "Ġ" not in shown_text and "Ċ" not in shown_text
        preds = page.get_by_test_id("predictions").locator("li .tok").all_text_contents()
        top = trace["probs"][-1][0]["display"]
        assert preds[0] == _shown(top)
        page.mouse.move(0, 0)
        for w, h in ((1280, 720), (1024, 768), (390, 844)):
            page.set_viewport_size({"width": w, "height": h})
            expect(spans).to_have_count(T)
            page.screenshot(path=str(ARTIFACTS / f"bpe-{w}x{h}.png"), full_page=True)
        assert_clean(page, server)
    finally:
        _delete(server, "bpe-e2e")
