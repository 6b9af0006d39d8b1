"""Your own model through the page: upload a weight file with its vocabulary, see it traced, remove it again;
a file that is not a weight file gets the server's reason in the dialog."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from model.formats import SUFFIXES

from .conftest import (
    ARTIFACTS,
    api_card,
    api_models,
    api_trace,
    api_upload,
    assert_clean,
    assert_numbers_match_api,
    wait_diagram,
    wait_drawn,
)

pytestmark = pytest.mark.e2e

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
#: How long the server may take to read an upload (it converts the file in a process of its own), in ms.
READ_MS = 60_000


def test_upload_a_model_in_the_page_then_remove_it(page, server, tmp_path):
    page.goto(server + "/")
    expect(page.get_by_test_id("model")).to_have_value("code")
    expect(page.get_by_test_id("upload-remove")).to_be_hidden()  # bundled models stay

    # a file that is not a weight file: the dialog stays open with the server's own reason, and nothing is added
    junk = tmp_path / "notes.onnx"
    junk.write_bytes(b"these are my notes, not a network")
    status, refusal = api_upload(server, junk)
    assert status == 422 and "notes.onnx" in refusal["detail"], (status, refusal)
    models = api_models(server)
    picker = page.get_by_test_id("model").locator("option")
    options = picker.all_text_contents()
    page.get_by_test_id("upload-open").click()
    dialog = page.get_by_test_id("upload")
    expect(dialog).to_be_visible()
    expect(page.get_by_test_id("upload-file")).to_have_attribute("accept", ",".join(SUFFIXES))  # what the server reads
    page.get_by_test_id("upload-file").set_input_files(str(junk))
    page.get_by_test_id("upload-submit").click()
    expect(page.get_by_test_id("upload-status")).to_have_text(refusal["detail"], timeout=READ_MS)
    expect(page.get_by_test_id("upload-status")).to_have_class(re.compile(r"\bis-error\b"))
    expect(dialog).to_be_visible()
    expect(page.get_by_test_id("upload-submit")).to_be_enabled()  # fix the form and try again
    expect(page.get_by_test_id("model")).to_have_value("code")
    assert picker.all_text_contents() == options
    assert api_models(server) == models
    assert page.page_errors == []  # the refusal is handled; the browser's own log of the 422 is no page error
    page.console_errors.clear()

    # a real one: a PyTorch GRU state_dict with its vocabulary, named
    page.get_by_test_id("upload-file").set_input_files(str(FIXTURES / "torch" / "gru_text.safetensors"))
    page.get_by_test_id("upload-vocab").set_input_files(str(FIXTURES / "torch" / "gru_text.vocab.json"))
    page.get_by_test_id("upload-name").fill("my-gru")
    page.get_by_test_id("upload-submit").click()
    expect(dialog).to_be_hidden(timeout=READ_MS)
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
    assert "my-gru" not in api_models(server)
    assert_clean(page, server)
