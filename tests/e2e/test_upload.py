"""Your own model through the page: upload a weight file with its vocabulary, see it traced, remove it again;
a file that is not a weight file gets the server's reason in the dialog."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import pytest
from playwright.sync_api import expect

from .conftest import ARTIFACTS, api_card, api_trace, assert_clean, assert_numbers_match_api, wait_diagram, wait_drawn

pytestmark = pytest.mark.e2e

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def model_ids(server: str) -> list[str]:
    with urllib.request.urlopen(server + "/api/models", timeout=10) as r:
        return [c["id"] for c in json.load(r)]


def test_upload_a_model_in_the_page_then_remove_it(page, server, tmp_path):
    page.goto(server + "/")
    expect(page.get_by_test_id("model")).to_have_value("code")
    expect(page.get_by_test_id("upload-remove")).to_be_hidden()  # bundled models stay

    # a file that is not a weight file: the server's reason, in the dialog; nothing added
    junk = tmp_path / "notes.onnx"
    junk.write_bytes(b"these are my notes, not a network")
    page.get_by_test_id("upload-open").click()
    dialog = page.get_by_test_id("upload")
    expect(dialog).to_be_visible()
    page.get_by_test_id("upload-file").set_input_files(str(junk))
    page.get_by_test_id("upload-submit").click()
    expect(page.get_by_test_id("upload-status")).to_contain_text("notes.onnx")
    assert "notes" not in " ".join(model_ids(server))
    # Chromium itself logs every 4xx response; that one was the expected refusal, and the only error so far
    assert page.console_errors == [
        "Failed to load resource: the server responded with a status of 422 (Unprocessable Entity)"
    ]
    page.console_errors.clear()

    # a real one: a PyTorch GRU state_dict with its vocabulary, named
    page.get_by_test_id("upload-file").set_input_files(str(FIXTURES / "torch" / "gru_text.safetensors"))
    page.get_by_test_id("upload-vocab").set_input_files(str(FIXTURES / "torch" / "gru_text.vocab.json"))
    page.get_by_test_id("upload-name").fill("my-gru")
    page.get_by_test_id("upload-submit").click()
    expect(dialog).to_be_hidden()
    expect(page.get_by_test_id("model")).to_have_value("my-gru")  # chosen at once
    card = api_card(server, "my-gru")
    assert (card["cell"], card["origin"]) == ("gru", "uploaded")
    vocab = json.loads((FIXTURES / "torch" / "gru_text.vocab.json").read_text())
    tokens = vocab["tokens"] if isinstance(vocab, dict) else vocab
    text = "".join(t for t in tokens if len(t) == 1)[:6]
    page.get_by_test_id("input").fill(text)
    trace = api_trace(server, "my-gru", text)
    wait_drawn(page, card["gates"], len(trace["tokens"]))
    expect(page.locator('svg[data-cell="gru"]')).to_be_visible()
    assert_numbers_match_api(wait_diagram(page, "gru_reset_after"), trace, "gru_reset_after")  # PyTorch's GRU
    steps = page.get_by_test_id("steps").inner_text()  # what is shown (hidden rows are not)
    assert "·(U·h" in steps and "tanh(W·[r" not in steps  # the candidate as PyTorch computes it
    page.mouse.move(0, 0)
    page.screenshot(path=str(ARTIFACTS / "uploaded-gru.png"))

    # remove it: gone from the server and from the picker
    page.once("dialog", lambda d: d.accept())  # the confirmation
    page.get_by_test_id("upload-remove").click()
    expect(page.get_by_test_id("model")).not_to_have_value("my-gru")
    expect(page.get_by_test_id("model").locator('option[value="my-gru"]')).to_have_count(0)
    assert "my-gru" not in model_ids(server)
    assert_clean(page, server)
