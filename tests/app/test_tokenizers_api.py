"""A model with a Hugging Face tokenizer.json or a word vocabulary over the API: uploaded with its tokenizer in the
form's 'vocab' field (through the converter process), its card says how it reads text, every trace body carries
the pieces (exact) and their text (``display``), and a tokenizer that does not fit is a 422 naming both sizes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from app.encoding import loads_binary
from app.main import create_app
from app.settings import Settings

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "tokenizers"
TEXT = "The cat sat on the mat.\nA dog."


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    models = tmp_path_factory.mktemp("models")
    with TestClient(create_app(Settings(models_dir=models, uploads=True))) as c:
        files = {"file": ("lstm_bpe.safetensors", (FIX / "lstm_bpe.safetensors").read_bytes())}
        files["vocab"] = ("tokenizer.json", (FIX / "bpe.json").read_bytes())
        r = c.post("/api/models", files=files, data={"name": "bpe"})
        assert r.status_code == 201, r.text
        yield c


def test_an_uploaded_tokenizer_json_makes_a_text_model_whose_card_says_how_it_reads(client):
    card = client.get("/api/models/bpe").json()
    assert card["input"] == "text" and card["vocab"] == 300
    assert card["tokenizer"] == "hf"
    assert card["tokenizer_options"] == {"model": "BPE (byte-level)", "unk": None}
    code = client.get("/api/models/code").json()
    assert (code["tokenizer"], code["tokenizer_options"]) == ("char", None)


def test_a_trace_carries_the_pieces_and_their_text_and_equals_torch(client):
    ref = np.load(FIX / "lstm_bpe.npz")
    body = client.post("/api/trace", json={"model": "bpe", "text": TEXT}).json()
    assert body["tokens"][:3] == ["The", "Ġcat", "Ġsat"]  # the pieces, exactly
    assert body["display"][:3] == ["The", " cat", " sat"] and "".join(body["display"]) == TEXT
    np.testing.assert_allclose(np.array(body["layers"][0]["h"]), ref["output"], rtol=0, atol=1e-5)
    first = body["probs"][0][0]
    assert set(first) == {"token", "display", "p"}
    assert first["display"] == first["token"].replace("Ġ", " ").replace("Ċ", "\n")
    compact = client.post("/api/trace?encoding=compact", json={"model": "bpe", "text": TEXT}).json()
    assert compact["display"] == body["display"]
    assert len(compact["probs"]["display"]) == len(body["tokens"])
    with client.stream("POST", "/api/trace/stream", json={"model": "bpe", "text": TEXT}) as r:
        lines = [json.loads(line) for line in r.iter_lines() if line]
    assert lines[0]["display"] == body["display"]
    assert [line["display"] for line in lines[1:]] == body["display"]
    assert [line["token"] for line in lines[1:]] == body["tokens"]  # the stream's chunks are the whole text's pieces


def test_a_char_model_trace_has_no_display_its_tokens_are_its_text(client):
    body = client.post("/api/trace", json={"model": "code", "text": "x = 1"}).json()
    assert "display" not in body and "display" not in body["probs"][0][0]


def test_live_typing_a_word_piece_by_piece_sends_the_whole_texts_pieces(client):
    typed = "The catalog sat"
    with client.websocket_connect("/api/live") as ws:
        tokens: list[str] = []
        display: list[str] = []
        for n in range(1, len(typed) + 1):
            ws.send_json({"seq": n, "model": "bpe", "text": typed[:n], "encoding": "binary"})
            reply = loads_binary(ws.receive_bytes())
            k = reply["from"]
            tokens[k:], display[k:] = reply["tokens"], reply["display"]
            whole = client.post("/api/trace", json={"model": "bpe", "text": typed[:n]}).json()
            assert (tokens, display) == (whole["tokens"], whole["display"]), typed[:n]


@pytest.mark.parametrize(
    ("vocab", "name", "message"),
    [
        (FIX / "wordpiece.json", "tokenizer.json", "the tokenizer.json has 84 tokens, the nn.Embedding has 300 rows"),
        (None, "vocab.json", "ids [300] are outside it and [0] are missing"),
    ],
)
def test_a_tokenizer_that_does_not_fit_the_weights_is_refused_with_both_sizes(client, vocab, name, message):
    data = vocab.read_bytes() if vocab else json.dumps({f"t{i}": i + 1 for i in range(300)}).encode()
    files = {"file": ("m.safetensors", (FIX / "lstm_bpe.safetensors").read_bytes()), "vocab": (name, data)}
    r = client.post("/api/models", files=files)
    assert r.status_code == 422 and message in r.json()["detail"], r.text
