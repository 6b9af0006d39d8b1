"""POST /api/models and DELETE /api/models/{id}: uploads in every format, kept across restarts,
refused with a reason (and nothing written) when they are bad or when uploads are off."""

from __future__ import annotations

import errno
import json
import os
import pickle
import stat
import zipfile
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

import model
from app.main import create_app
from app.settings import Settings

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def make_client(models: Path, **settings) -> TestClient:
    settings.setdefault("uploads", True)
    return TestClient(create_app(Settings(models_dir=models, **settings)))


def upload(client, path: Path, name: str | None = None, vocab: Path | None = None, filename: str | None = None):
    files = {"file": (filename or path.name, path.read_bytes())}
    if vocab is not None:
        files["vocab"] = (vocab.name, vocab.read_bytes())
    return client.post("/api/models", files=files, data={"name": name} if name else None)


def stored(models: Path) -> list[str]:
    """What the models folder holds, beside the lock files the workers share (``.locks``)."""
    return sorted(p.name for p in models.iterdir() if p.name != ".locks") if models.exists() else []


@pytest.mark.parametrize(
    ("path", "vocab", "cell"),
    [
        ("torch/gru_text.safetensors", "torch/gru_text.vocab.json", "gru"),
        ("keras/lstm_text.keras", "keras/lstm_text.vocab.json", "lstm"),
        ("onnx/peephole.onnx", None, "peephole"),
        ("onnx/torch_bilstm2_dynamo_dynamic.onnx", "onnx/torch_bilstm2.vocab.json", "lstm"),  # constant subgraphs
        ("keras/gru_before.weights.h5", "keras/gru_before.vocab.json", "gru"),
    ],
)
def test_an_upload_becomes_a_model_that_traces_like_the_core(tmp_path, path, vocab, cell):
    pytest.importorskip("h5py") if path.endswith((".keras", ".h5")) else None
    pytest.importorskip("onnx") if path.endswith(".onnx") else None
    src, voc = FIXTURES / path, (FIXTURES / vocab if vocab else None)
    with make_client(tmp_path) as client:
        r = upload(client, src, vocab=voc)
        assert r.status_code == 201, r.text
        card = r.json()
        assert (card["cell"], card["origin"]) == (cell, "uploaded")
        assert card["input"] == ("text" if voc else "vectors")
        assert card["id"] in [c["id"] for c in client.get("/api/models").json()]
        net = model.load(src, voc)
        if voc:
            text = "".join(net.vocab[j] for j in (1, 2, 1, 3) if len(net.vocab[j]) == 1) or net.vocab[0]
            body = {"model": card["id"], "text": text}
            tr = net.trace(text)
        else:
            x = np.random.default_rng(0).normal(size=(5, net.spec.input_size)).astype(np.float32)
            body = {"model": card["id"], "vectors": x.tolist()}
            tr = net.trace(x)
        got = client.post("/api/trace", json=body).json()
        for g in net.gates:
            np.testing.assert_array_equal(np.array(got["layers"][-1][g], np.float32), tr.layers[-1][g])


def test_uploads_survive_a_restart_and_deleting_removes_them(tmp_path):
    src = FIXTURES / "torch" / "lstm_t7_d3_h5_l1.safetensors"
    with make_client(tmp_path) as client:
        assert upload(client, src, name="mine").status_code == 201
        assert upload(client, src, name="mine").status_code == 409  # the name is taken
        second = upload(client, src).json()["id"]
        third = upload(client, src).json()["id"]
        assert (second, third) == ("lstm_t7_d3_h5_l1", "lstm_t7_d3_h5_l1-2")
    assert stored(tmp_path) == ["lstm_t7_d3_h5_l1", "lstm_t7_d3_h5_l1-2", "mine"]
    with make_client(tmp_path) as client:  # a restart
        card = client.get("/api/models/mine").json()
        assert (card["origin"], card["hidden_size"]) == ("uploaded", 5)
        assert client.delete("/api/models/mine").status_code == 204
        assert client.get("/api/models/mine").status_code == 404
        assert client.delete("/api/models/mine").status_code == 404
        r = client.delete("/api/models/code")
        assert r.status_code == 403 and "bundled" in r.json()["detail"]
    with make_client(tmp_path) as client:
        assert client.get("/api/models/mine").status_code == 404
    assert "mine" not in stored(tmp_path)


def test_uploads_are_off_unless_switched_on_or_served_on_loopback(tmp_path):
    src = FIXTURES / "torch" / "lstm_t7_d3_h5_l1.safetensors"
    for settings, allowed in [
        ({"uploads": False, "host": "127.0.0.1"}, False),
        ({"uploads": None, "host": "0.0.0.0"}, False),
        ({"uploads": None, "host": None}, False),  # uvicorn app.main:app: the address is unknown
        ({"uploads": None, "host": "127.0.0.1"}, True),
        ({"uploads": True, "host": "0.0.0.0"}, True),
    ]:
        with make_client(tmp_path / str(len(stored(tmp_path))), **settings) as client:
            r = upload(client, src)
            assert (r.status_code == 201) == allowed, (settings, r.text)
            if not allowed:
                assert r.status_code == 403 and "switched off" in r.json()["detail"]
                assert client.delete("/api/models/code").status_code == 403


def _pickle_bomb(path: Path, marker: Path) -> Path:
    class Boom:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    with zipfile.ZipFile(path, "w") as z:  # the layout torch.save writes
        z.writestr("archive/data.pkl", pickle.dumps({"weight_ih_l0": Boom()}, protocol=2))
        z.writestr("archive/version", "3\n")
    return path


def test_bad_uploads_get_a_reason_and_leave_nothing_behind(tmp_path):
    models, scratch = tmp_path / "models", tmp_path / "scratch"
    scratch.mkdir()
    marker = scratch / "pwned"
    junk = scratch / "junk.safetensors"
    junk.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all}")
    noise = scratch / "noise.onnx"
    noise.write_bytes(os.urandom(4096))
    truncated = scratch / "cut.keras"
    truncated.write_bytes((FIXTURES / "keras" / "lstm_text.keras").read_bytes()[:3000])
    stranger = scratch / "stranger.safetensors"
    from safetensors.numpy import save_file

    save_file({"conv.weight": np.zeros((3, 3), np.float32)}, str(stranger))
    bomb = _pickle_bomb(scratch / "bomb.pt", marker)
    notes = scratch / "notes.txt"
    notes.write_text("hello")
    with make_client(models, max_upload_mb=1) as client:
        before = [c["id"] for c in client.get("/api/models").json()]
        for path, status, words in [
            (junk, 422, "junk.safetensors"),
            (noise, 422, "noise.onnx"),
            (truncated, 422, "cut.keras"),
            (stranger, 422, "neither a gatescope model nor a PyTorch"),
            (bomb, 422, "bomb.pt"),
            (notes, 415, "gatescope reads"),
        ]:
            r = upload(client, path)
            assert r.status_code == status, (path.name, r.text)
            assert words in r.json()["detail"], r.json()
        big = scratch / "big.safetensors"
        big.write_bytes(b"\0" * (3 << 20))
        r = upload(client, big)
        assert r.status_code == 413 and "at most 1 MB" in r.json()["detail"]
        r = upload(client, stranger, name="../../etc")
        assert r.status_code == 422 and "not usable" in r.json()["detail"]
        r = client.post("/api/models", data={"name": "x"})
        assert r.status_code == 422 and "'file'" in r.json()["detail"]
        assert [c["id"] for c in client.get("/api/models").json()] == before
    assert not marker.exists()  # the pickle never ran
    assert stored(models) == []  # no model, no staging folder


def test_an_importer_that_crashes_or_hangs_is_a_4xx_not_a_dead_server(tmp_path, monkeypatch):
    import app.uploads

    src = FIXTURES / "torch" / "lstm_t7_d3_h5_l1.safetensors"
    for script, words in [("kill -SEGV $$", "crashed the importer"), ("sleep 30", "longer than")]:
        fake = tmp_path / "fake-python"
        fake.write_text(f"#!/bin/sh\n{script}\n")
        fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
        monkeypatch.setattr(app.uploads.sys, "executable", str(fake))
        with make_client(tmp_path / "models") as client:
            client.app.state.settings.import_timeout = 1.0
            r = upload(client, src)
            assert r.status_code == 422 and words in r.json()["detail"], r.text
            monkeypatch.undo()
            assert client.get("/api/models/code").status_code == 200  # still serving
    assert stored(tmp_path / "models") == []


def test_the_upload_form_is_in_the_openapi_schema(tmp_path):
    with make_client(tmp_path) as client:
        schema = client.get("/openapi.json").json()
    form = schema["paths"]["/api/models"]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert set(form["properties"]) == {"file", "vocab", "name", "head", "head_at", "labels", "module", "corpus"}
    assert "delete" in schema["paths"]["/api/models/{model_id}"]


def test_a_vocabulary_that_does_not_fit_the_weights_is_refused(tmp_path):
    vocab = tmp_path / "v.json"
    vocab.write_text('{"tokens": ["<unk>", "the", "cat", "sat"], "tokenizer": "word"}')
    src = FIXTURES / "torch" / "lstm_t7_d3_h5_l1.safetensors"  # input size 3: no 4-token one-hot
    with make_client(tmp_path / "m") as client:
        r = upload(client, src, vocab=vocab)
        assert r.status_code == 422 and "4 tokens" in r.json()["detail"] and "input size 3" in r.json()["detail"]


def test_other_clients_are_served_while_an_upload_is_copied_and_converted(tmp_path, monkeypatch):
    """The copy (up to GATESCOPE_MAX_UPLOAD_MB) and the conversion run in a thread, not on the event loop."""
    import threading

    import app.api.models as models_api

    started, release = threading.Event(), threading.Event()
    real = models_api._import

    def slow_import(*args, **kwargs):
        started.set()
        assert release.wait(20), "the test never released the upload"
        return real(*args, **kwargs)

    monkeypatch.setattr(models_api, "_import", slow_import)
    with make_client(tmp_path / "models") as client:
        result: dict = {}
        worker = threading.Thread(target=lambda: result.update(r=upload(client, FIXTURES / "onnx/peephole.onnx")))
        worker.start()
        assert started.wait(20)
        cards = client.get("/api/models")  # would wait for the upload if it held the event loop
        traced = client.post("/api/trace", json={"model": "code", "text": "x"})  # ... or a compute lane
        assert cards.status_code == 200 and traced.status_code == 200 and not release.is_set()
        release.set()
        worker.join(30)
    assert result["r"].status_code == 201, result["r"].text


def test_an_upload_that_would_read_a_file_on_the_servers_disk_is_refused(tmp_path):
    """HDF5 external storage naming a server-side file: 422, nothing stored, and the bytes never served."""
    h5py = pytest.importorskip("h5py")
    import shutil

    secret = np.linspace(-0.9, 0.9, 18, dtype=np.float32)
    planted = tmp_path / "secret.bin"
    planted.write_bytes(secret.tobytes())
    bad = tmp_path / "gru_before.weights.h5"
    shutil.copy(FIXTURES / "keras/gru_before.weights.h5", bad)
    with h5py.File(bad, "r+") as f:
        del f["layers/gru/cell/vars/2"]
        f.create_dataset("layers/gru/cell/vars/2", shape=(18,), dtype="<f4", external=[(str(planted), 0, 72)])
    with make_client(tmp_path / "models") as client:
        r = upload(client, bad, vocab=FIXTURES / "keras/gru_before.vocab.json")
        assert r.status_code == 422 and "external storage" in r.json()["detail"], r.text
        assert [c["id"] for c in client.get("/api/models").json() if c["origin"] == "uploaded"] == []
    assert stored(tmp_path / "models") == []


def test_a_broken_model_or_card_is_listed_as_unavailable_and_breaks_nothing_else(tmp_path):
    """A card.json field of the wrong type made GET /api/models a 500 for everyone."""
    models = tmp_path / "models"
    with make_client(models) as client:
        for name in ("bad-card", "bad-file", "fine"):
            assert upload(client, FIXTURES / "onnx/peephole.onnx", name=name).status_code == 201
    card = models / "bad-card" / "card.json"
    card.write_text(json.dumps({**json.loads(card.read_text()), "examples": 5}))
    (models / "bad-file" / "model.safetensors").write_bytes(b"not a safetensors file")
    with make_client(models) as client:  # a restart
        listed = {c["id"]: c for c in client.get("/api/models").json()}
        assert listed["fine"]["available"] is True and listed["code"]["available"] is True
        assert listed["bad-card"]["available"] is False and "'examples' is int" in listed["bad-card"]["problem"]
        assert listed["bad-file"]["available"] is False and "do not read" in listed["bad-file"]["problem"]
        r = client.post("/api/trace", json={"model": "bad-card", "vectors": [[0.0] * 4]})
        assert r.status_code == 409 and "unavailable" in r.json()["detail"]
        assert client.get("/api/models/bad-file").json()["available"] is False
        assert client.delete("/api/models/bad-file").status_code == 204  # it can still be removed
        assert "bad-file" not in [c["id"] for c in client.get("/api/models").json()]
    assert sorted(stored(models)) == ["bad-card", "fine"]


def test_staging_left_by_a_crash_is_removed_at_start_up(tmp_path):
    models = tmp_path / "models"
    (models / ".staging-x1y2").mkdir(parents=True)
    (models / ".staging-x1y2" / "model.safetensors").write_bytes(b"half written")
    (models / ".deleting-old-1-2").mkdir()
    with make_client(models) as client:
        assert client.get("/api/models").status_code == 200
    assert stored(models) == []


def test_a_long_file_name_uploaded_twice_keeps_both_models_across_a_restart(tmp_path):
    """A 64-character name uploaded twice got a 66-character id: accepted, then lost at the restart."""
    src = tmp_path / ("m" * 64 + ".onnx")
    src.write_bytes((FIXTURES / "onnx/peephole.onnx").read_bytes())
    models = tmp_path / "models"
    with make_client(models) as client:
        ids = [upload(client, src).json()["id"] for _ in range(2)]
    assert len(set(ids)) == 2 and all(len(i) <= 64 for i in ids)
    with make_client(models) as client:
        listed = [c["id"] for c in client.get("/api/models").json()]
        assert set(ids) <= set(listed)
        assert all(client.delete(f"/api/models/{i}").status_code == 204 for i in ids)


def test_a_delete_the_disk_refuses_fails_and_the_model_stays(tmp_path, monkeypatch):
    models = tmp_path / "models"
    with make_client(models) as client:
        assert upload(client, FIXTURES / "onnx/peephole.onnx", name="kept").status_code == 201
        rename = Path.rename

        def read_only(self, target):
            if ".deleting-" in str(target):
                raise OSError(errno.EROFS, "Read-only file system")
            return rename(self, target)

        monkeypatch.setattr(Path, "rename", read_only)
        r = client.delete("/api/models/kept")
        assert r.status_code == 503 and "read-only" in r.json()["detail"]
        assert "kept" in [c["id"] for c in client.get("/api/models").json()]
    monkeypatch.undo()
    with make_client(models) as client:  # after a restart: still there, and still works
        assert client.post("/api/trace", json={"model": "kept", "vectors": [[0.0] * 4]}).status_code == 200


@pytest.mark.parametrize(
    ("fault", "status", "words"),
    [("read-only", 503, "read-only"), ("full", 507, "disk holding the models folder is full")],
)
def test_an_upload_the_disk_refuses_says_why_and_leaves_nothing(tmp_path, monkeypatch, fault, status, words):
    import shutil as sh
    import tempfile as tf

    models = tmp_path / "models"
    models.mkdir()
    if fault == "full":
        monkeypatch.setattr(sh, "disk_usage", lambda p: sh._ntuple_diskusage(100, 100, 0))
    else:
        real = tf.mkdtemp

        def refuse(suffix=None, prefix=None, dir=None):  # only the models folder is read-only
            if dir is not None and Path(dir) == models:
                raise OSError(errno.EROFS, "Read-only file system")
            return real(suffix, prefix, dir)

        monkeypatch.setattr(tf, "mkdtemp", refuse)
    with make_client(models) as client:
        r = upload(client, FIXTURES / "onnx/peephole.onnx")
        assert r.status_code == status and words in r.json()["detail"], r.text
        assert client.get("/api/models").status_code == 200
    assert stored(models) == []


def test_uploads_are_converted_one_at_a_time(tmp_path, monkeypatch):
    """Three uploads at once ran three converters together (3.9 GB of child memory)."""
    import threading
    import time

    import app.uploads as uploads

    running, most, lock = [0], [0], threading.Lock()
    real = uploads.convert

    def counted(*args):
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        time.sleep(0.3)
        try:
            return real(*args)
        finally:
            with lock:
                running[0] -= 1

    monkeypatch.setattr(uploads, "convert", counted)
    with make_client(tmp_path / "models") as client:
        codes: list[int] = []
        workers = [
            threading.Thread(
                target=lambda n=n: codes.append(
                    upload(client, FIXTURES / "onnx/peephole.onnx", name=f"m{n}").status_code
                )
            )
            for n in range(3)
        ]
        for w in workers:
            w.start()
        for w in workers:
            w.join(60)
    assert codes == [201, 201, 201] and most[0] == 1


def test_the_number_and_size_of_uploaded_models_are_bounded(tmp_path):
    models = tmp_path / "models"
    with make_client(models, max_models=2) as client:
        assert [upload(client, FIXTURES / "onnx/peephole.onnx").status_code for _ in range(2)] == [201, 201]
        r = upload(client, FIXTURES / "onnx/peephole.onnx")
        assert r.status_code == 507 and "at most 2 uploaded models" in r.json()["detail"]
    assert len(stored(models)) == 2
    (models / "filler").mkdir()
    (models / "filler" / "blob").write_bytes(b"\0" * (1 << 20))  # 1 MB of what the folder already holds
    with make_client(models, max_models_mb=1) as client:
        r = upload(client, FIXTURES / "onnx/peephole.onnx")
        assert r.status_code == 507 and "at most 1 MB" in r.json()["detail"]
