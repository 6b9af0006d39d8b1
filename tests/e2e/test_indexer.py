"""The corpus index through the page: a bundled model's held-out index is built when the page first asks and its
status line says what it holds; "Index a corpus…" sends a file, follows the build and the line becomes ready;
the dialog is keyboard operable. Screenshots at 1280x720, 1024x768 and 390x844."""

from __future__ import annotations

import json
import re
import urllib.request

import pytest
from playwright.sync_api import expect

from model.tasks import DyckTask

from .conftest import ARTIFACTS, UNK_MODEL, assert_clean

pytestmark = pytest.mark.e2e

#: How long a build may take in these tests (dyck's held-out index takes about a second), in ms.
BUILD_MS = 60_000


def api_index(server: str, model_id: str) -> dict:
    with urllib.request.urlopen(f"{server}/api/models/{model_id}/index", timeout=30) as r:
        return json.load(r)


def test_the_page_shows_a_bundled_models_held_out_index_once_built(page, server):
    page.goto(server + "/#model=dyck")
    line = page.get_by_test_id("index-status")
    expect(line).to_have_attribute("role", "status")
    expect(line).to_have_text(
        re.compile(r"^Index: 500 documents, [\d,.]+( M)? steps of held-out Dyck strings"), timeout=BUILD_MS
    )
    st = api_index(server, "dyck")
    assert st["state"] == "ready" and f"{st['info']['steps']:,}" in line.inner_text()
    assert_clean(page, server)


def test_index_a_corpus_from_the_page_and_see_it_become_ready(new_page, server, tmp_path):
    corpus = tmp_path / "strings.txt"
    corpus.write_text("\n".join(s.replace("$", "") for s in DyckTask().heldout(7)[:40]) + "\n")  # any text: <unk>
    for i, (w, h) in enumerate([(1280, 720), (1024, 768), (390, 844)]):
        page = new_page(w, h)
        page.goto(f"{server}/#model={UNK_MODEL}")
        expect(page.get_by_test_id("model")).to_have_value(UNK_MODEL)
        opener = page.get_by_test_id("index-open")
        expect(opener).to_be_visible()
        opener.focus()
        page.keyboard.press("Enter")  # keyboard operable
        dialog = page.get_by_test_id("indexer")
        expect(dialog).to_be_visible()
        expect(dialog).to_contain_text("at most 50 MB")  # the server's limit, shown
        if i == 0:
            page.keyboard.press("Escape")
            expect(dialog).to_be_hidden()
            opener.click()
            expect(dialog).to_be_visible()
        page.get_by_test_id("indexer-file").set_input_files(str(corpus))
        page.get_by_label("A document per line").check()
        page.get_by_test_id("indexer-submit").click()
        status = page.get_by_test_id("indexer-status")
        expect(status).to_have_text(re.compile(r"^Ready: 40 documents, [\d,]+ steps of strings\.txt"), timeout=BUILD_MS)
        expect(page.get_by_test_id("indexer-progress")).to_have_attribute("value", "1")
        line = page.get_by_test_id("index-status")
        expect(line).to_have_text(re.compile(r"^Index: 40 documents, [\d,]+ steps of strings\.txt$"))
        page.screenshot(path=str(ARTIFACTS / f"indexer-dialog-{w}x{h}.png"))
        page.get_by_test_id("indexer-cancel").click()  # now "Close"
        expect(dialog).to_be_hidden()
        page.screenshot(path=str(ARTIFACTS / f"indexer-status-{w}x{h}.png"))
        st = api_index(server, UNK_MODEL)
        assert st["state"] == "ready" and st["info"]["docs"] == 40 and st["info"]["corpus"] == "strings.txt"
        assert_clean(page, server)


def test_a_corpus_the_server_refuses_gets_its_reason_in_the_dialog(page, server, tmp_path):
    bad = tmp_path / "photo.txt"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR")
    page.goto(f"{server}/#model={UNK_MODEL}")
    expect(page.get_by_test_id("model")).to_have_value(UNK_MODEL)
    page.get_by_test_id("index-open").click()
    page.get_by_test_id("indexer-file").set_input_files(str(bad))
    page.get_by_test_id("indexer-submit").click()
    status = page.get_by_test_id("indexer-status")
    expect(status).to_have_text(re.compile("photo.txt is not UTF-8 text"))
    expect(status).to_have_class(re.compile(r"\bis-error\b"))
    expect(page.get_by_test_id("indexer-submit")).to_be_enabled()
    assert page.page_errors == []
