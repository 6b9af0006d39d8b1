"""Heads in the page: a classifier shows its classes by name (and, when only the last step counts, says so and
marks the answer), a regressor its values as numbers, a head wider than the vocabulary traces without an error;
and the page never resends an edit the server answered with a failure."""

from __future__ import annotations

import json
import re
from urllib.parse import quote

import pytest
from playwright.sync_api import expect

from tests import heads_models as hm

from .conftest import ARTIFACTS, api_trace, api_upload, assert_clean

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def uploaded(server, tmp_path_factory):
    """The wide head, the named classifier and the word regressor, uploaded as a user would; removed after."""
    import urllib.request

    files = hm.write_all(tmp_path_factory.mktemp("heads-e2e"))
    ids = {}
    for name in ("wide", "classifier", "score"):
        status, card = api_upload(server, files[name]["file"], files[name]["vocab"], name=f"heads-{name}")
        assert status == 201, card
        ids[name] = card["id"]
    yield ids
    for model_id in ids.values():
        urllib.request.urlopen(urllib.request.Request(f"{server}/api/models/{model_id}", method="DELETE"))


def open_model(page, server, model_id, text, t=None):
    page.goto(f"{server}/#model={model_id}&text={quote(text)}" + (f"&t={t}" if t is not None else ""))
    expect(page.get_by_test_id("model")).to_have_value(model_id)


def test_a_classifier_shows_named_classes_and_which_step_counts(page, server, uploaded):
    text = "very good film not bad"
    open_model(page, server, uploaded["classifier"], text, t=1)
    box = page.get_by_test_id("predictions")
    expect(box).to_be_visible()
    trace = api_trace(server, uploaded["classifier"], text)
    names = box.locator("li .tok")
    expect(names).to_have_count(3)
    want = [p["token"] for p in trace["probs"][1]]  # every class, best first, named
    expect(names).to_have_text(want)
    expect(box.locator("li .p").first).to_have_text(f"{trace['probs'][1][0]['p'] * 100:.1f}%")
    note = page.get_by_test_id("predictions-note")
    expect(note).to_contain_text("Only the last step's prediction counts (t = 4)")
    expect(box).not_to_have_class(re.compile(r"\bis-answer\b"))
    page.keyboard.press("End")  # to the last step: the answer
    expect(box).to_have_class(re.compile(r"\bis-answer\b"))
    expect(note).to_have_text("Only the last step's prediction counts: this is the model's answer.")
    expect(names).to_have_text([p["token"] for p in trace["probs"][4]])
    assert set(want) == set(hm.CLASSES)
    page.get_by_test_id("predictions").screenshot(path=str(ARTIFACTS / "heads-classifier.png"))
    assert_clean(page, server)


def test_a_regressor_shows_its_values_as_numbers(page, server, uploaded):
    text = "good plot very bad"
    open_model(page, server, uploaded["score"], text, t=2)
    box = page.get_by_test_id("predictions")
    expect(box).to_be_visible()
    trace = api_trace(server, uploaded["score"], text)
    expect(box.locator("li .tok")).to_have_text(["score"])
    value = trace["values"][2][0]
    shown = box.locator("li .v").text_content()
    assert float(shown.replace("−", "-")) == pytest.approx(value, abs=5e-5), (shown, value)
    expect(box.locator("li .bar")).to_have_count(0)  # a value, not a probability bar
    expect(page.get_by_test_id("predictions-note")).to_be_hidden()  # every step counts
    assert_clean(page, server)


def test_a_head_wider_than_the_vocabulary_traces_with_its_classes(page, server, uploaded):
    open_model(page, server, uploaded["wide"], "0110111")
    box = page.get_by_test_id("predictions")
    expect(box.locator("li .tok")).to_have_count(5)
    expect(page.get_by_test_id("alert")).to_be_hidden()  # no error, no "Lost the connection"
    assert sorted(box.locator("li .tok").all_text_contents()) == [f"class {j}" for j in range(5)]
    assert_clean(page, server)


def test_an_edit_the_server_failed_on_is_shown_and_not_resent(page, server):
    """The server closes the socket with 1011 on a bug: the page says so and waits for the next edit (once it
    resent the same edit after every back-off, 73 server tracebacks in 20 s from one tab)."""
    sockets, sent = [], []

    def serve(ws):
        sockets.append(ws)

        def answer(m):
            sent.append(json.loads(m))
            if len(sockets) == 1:  # the first socket: the server fails on the edit
                ws.close(code=1011, reason="internal error: a bug in gatescope")
            else:  # the next edit's socket: an answer the page shows
                ws.send(json.dumps({"seq": sent[-1]["seq"], "error": "the second edit arrived"}))

        ws.on_message(answer)

    page.clock.install()
    page.route_web_socket(re.compile(r".*/api/live(\?.*)?$"), serve)  # the page opens /api/live?parts=1
    open_model(page, server, "code", "def f(x):")
    alert = page.get_by_test_id("alert")
    expect(alert).to_contain_text("the server failed on it")
    expect(alert).to_contain_text("it is not sent again")
    page.clock.run_for(60_000)  # a minute of back-off timers, run at once: none resends the edit
    assert [m["text"] for m in sent] == ["def f(x):"] and len(sockets) == 1, sent
    expect(alert).not_to_contain_text("Lost the connection")
    page.get_by_test_id("input").press("End")
    page.get_by_test_id("input").press_sequentially("y")  # a new edit goes out, on a fresh socket
    page.clock.run_for(1_000)
    expect(alert).to_contain_text("the second edit arrived")
    assert [m["text"] for m in sent] == ["def f(x):", "def f(x):y"] and len(sockets) == 2, sent


def test_the_upload_dialog_names_the_classes_and_the_step_that_counts(page, server, tmp_path):
    files = hm.write_all(tmp_path)
    page.goto(server + "/")
    page.get_by_test_id("upload-open").click()
    page.get_by_test_id("upload-file").set_input_files(str(files["wide"]["file"]))
    page.get_by_test_id("upload-vocab").set_input_files(str(files["wide"]["vocab"]))
    page.get_by_test_id("upload-name").fill("heads-dialog")
    page.get_by_test_id("upload-output").locator("summary").click()
    page.get_by_test_id("upload-head").select_option("classes")
    page.get_by_test_id("upload-head-at").select_option("last")
    page.get_by_test_id("upload-labels").fill("zero\none\ntwo\nthree\nfour")
    page.get_by_test_id("upload-submit").click()
    try:
        expect(page.get_by_test_id("model")).to_have_value("heads-dialog", timeout=60_000)
        page.get_by_test_id("input").fill("0111")
        box = page.get_by_test_id("predictions")
        expect(box.locator("li .tok")).to_have_count(5)
        assert sorted(box.locator("li .tok").all_text_contents()) == sorted(["zero", "one", "two", "three", "four"])
        page.keyboard.press("End")
        expect(page.get_by_test_id("predictions-note")).to_contain_text("Only the last step's prediction counts")
    finally:
        import urllib.request

        urllib.request.urlopen(urllib.request.Request(f"{server}/api/models/heads-dialog", method="DELETE"))
