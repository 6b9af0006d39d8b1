"""Uploads of the files people have: an encoder-decoder answers 422 listing its modules and loads the one
sent back as the form field 'module'; a projected LSTM and a file with a LayerNorm before the head load,
their cards say what they are and what was left out, and they trace over HTTP and the socket (no 5xx)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

import model

from .test_uploads import make_client

FILES = Path(__file__).parents[1] / "fixtures" / "torch_files"


def send(client, path: Path, vocab: Path | None = None, **data):
    files = {"file": (path.name, path.read_bytes())}
    if vocab is not None:
        files["vocab"] = (vocab.name, vocab.read_bytes())
    return client.post("/api/models", files=files, data=data or None)


def test_an_encoder_decoder_upload_lists_its_modules_and_takes_the_one_chosen(tmp_path):
    src, vocab = FILES / "seq2seq.safetensors", FILES / "seq2seq.vocab.json"
    with make_client(tmp_path) as client:
        r = send(client, src, vocab)
        assert r.status_code == 422, r.text
        assert r.json()["modules"] == ["decoder.lstm", "encoder.lstm"], r.json()
        assert "module" in r.json()["detail"], r.json()
        assert not [p for p in tmp_path.iterdir() if p.name != ".locks"]  # nothing kept
        r = send(client, src, vocab, module="nowhere")
        assert r.status_code == 422 and "no recurrent module 'nowhere'" in r.json()["detail"], r.text
        assert "modules" not in r.json()
        r = send(client, src, vocab, module="decoder.lstm")
        assert r.status_code == 201, r.text
        card = r.json()
        assert card["head"] and "decoder.lstm" in card["description"] and "Left out" in card["description"], card
        got = client.post("/api/trace", json={"model": card["id"], "text": "hello"}).json()
        want = model.load(src, vocab=vocab, module="decoder.lstm").trace("hello")
        np.testing.assert_allclose(np.array(got["layers"][0]["h"]), want.layers[0]["h"], atol=1e-6)


def proj_text_model(path: Path, H: int = 10, P: int = 4, L: int = 2) -> Path:
    """A character model with a projected LSTM (embedding, proj_size, head) in gatescope's own format."""
    vocab = list("abcdefgh ")
    spec = model.Spec(
        cell="lstm",
        input_size=6,
        hidden_size=H,
        num_layers=L,
        proj_size=P,
        vocab=vocab,
        tokenizer="char",
        unk=None,
        embedding=True,
        output_size=len(vocab),
    )
    rng = np.random.default_rng(5)
    params = {n: rng.normal(0, 0.5, spec.expected_shape(n)).astype(np.float32) for n in spec.param_names()}
    return model.save(model.Network(spec, params), path)


def test_a_projected_lstm_traces_over_http_and_the_socket(tmp_path):
    with make_client(tmp_path / "models") as client:
        card = send(client, FILES / "lstm_proj_l2.safetensors").json()
        assert (card["hidden_size"], card["proj_size"]) == (10, 4), card
        assert card["gates"] == ["f", "i", "c_tilde", "c", "o", "m", "h"]
        x = np.random.default_rng(0).normal(size=(6, 5)).round(3).tolist()
        r = client.post("/api/trace", json={"model": card["id"], "vectors": x})
        assert r.status_code == 200, r.text
        assert np.shape(r.json()["layers"][1]["h"]) == (6, 4) and np.shape(r.json()["layers"][1]["m"]) == (6, 10)
        text = send(client, proj_text_model(tmp_path / "proj_text.safetensors")).json()
        assert text["input"] == "text" and text["proj_size"] == 4, text
        want = model.load(tmp_path / "proj_text.safetensors").trace("abc ha")
        with client.websocket_connect("/api/live") as ws:
            for seq, unit in enumerate((1, 7), start=1):  # unit 7 < H has gates and m, but no h (P = 4)
                edit = {"model": text["id"], "text": "abc ha"} if seq == 1 else {}  # then the unit alone: from step 0
                ws.send_json({"seq": seq, **edit, "focus": {"layer": 1, "unit": unit}})
                lines = ws.receive_json()["focus"]["lines"]
                np.testing.assert_allclose(lines["m"], want.layers[1]["m"][:, unit], atol=1e-6)
                assert ("h" in lines) == (unit < 4) and ("h_prev" in lines) == (unit < 4), sorted(lines)


def test_a_checkpoint_and_a_layernorm_say_so_on_the_card(tmp_path):
    with make_client(tmp_path) as client:
        card = send(client, FILES / "layernorm_head.safetensors", FILES / "layernorm_head.vocab.json").json()
        assert not card["head"] and "LayerNorm ln (bias, weight)" in card["description"], card
        assert "head not shown" in card["description"], card
        r = client.post("/api/trace", json={"model": card["id"], "text": "abc"})
        assert r.status_code == 200 and r.json().get("probs") is None, r.text
