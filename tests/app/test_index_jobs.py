"""Index jobs in the server (app/indexes.py, app/api/index.py): a bundled model's held-out index built on first ask
and found again after a restart, a corpus sent from the page built in the background with streamed progress, one
job a model, cancel, failures that say why and leave nothing behind, bad uploads refused, an uploaded model's index
removed with it, and the ModelIndex dependency every index route uses. The builds are real
(model.analysis.index.build), in the server's process (GATESCOPE_DASK_SCHEDULER=sync) but for one test that runs
the app's own local Dask cluster."""

from __future__ import annotations

import io
import json
import threading
import zipfile
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

import app.indexes
import model
from app.api.deps import ModelIndex
from app.main import create_app
from app.settings import Settings
from model.analysis import index as index_mod

#: Seconds any one build in these tests may take before a test gives up (they take well under one).
BUILD_TIMEOUT = 60


def make_app(tmp_path: Path, **settings):
    settings = {
        "models_dir": tmp_path / "models",
        "data_dir": tmp_path / "data",
        "uploads": True,
        "dask_scheduler": "sync",
        "index_bundled": True,
        **settings,
    }
    a = create_app(Settings(**settings))

    @a.get("/test/index/{model_id}")
    def read_index(model_id: str, index: ModelIndex) -> dict:
        """What a route that reads an index gets: the ready Index."""
        return {"docs": index.docs, "steps": index.steps, "path": index.path}

    return a


def follow(client: TestClient, model_id: str) -> list[dict]:
    """Every line of the model's progress stream, until it ends (ready, failed or none)."""
    with client.stream("GET", f"/api/models/{model_id}/index/progress", timeout=BUILD_TIMEOUT) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("application/jsonl")
        return [json.loads(line) for line in r.iter_lines() if line.strip()]


def dyck_strings(n: int, seed: int = 0) -> list[str]:
    return model.tasks.DyckTask().heldout(seed)[:n]


def send(client: TestClient, model_id: str, name: str, data: bytes, **form):
    return client.post(f"/api/models/{model_id}/index", files={"corpus": (name, data)}, data=form or None)


def tiny_model(models: Path, name: str = "tiny", seed: int = 0) -> None:
    """A small random char LSTM over 'ab ' kept where the server finds uploaded models."""
    vocab = ["a", "b", " "]
    spec = model.Spec("lstm", len(vocab), 4, vocab=vocab, tokenizer="char", output_size=len(vocab))
    rng = np.random.default_rng(seed)
    params = {n: (0.5 * rng.standard_normal(spec.expected_shape(n))).astype(np.float32) for n in spec.param_names()}
    (models / name).mkdir(parents=True, exist_ok=True)
    model.save(model.Network(spec, params), models / name / "model.safetensors")


def stores(data: Path) -> list[str]:
    """Every store (and half-built one) under the data folder, relative to it."""
    return sorted(p.relative_to(data).as_posix() for p in data.glob("indexes/*/*.zarr"))


def test_a_bundled_model_builds_its_held_out_index_on_first_ask_and_a_restart_finds_it(tmp_path):
    with TestClient(make_app(tmp_path)) as client:
        first = client.get("/api/models/dyck/index").json()
        assert first["state"] in ("building", "ready") and "held-out Dyck" in (
            first["corpus"] or first["info"]["corpus"]
        )
        last = follow(client, "dyck")[-1]
        assert last["state"] == "ready", last
        info = last["info"]
        assert info["docs"] == 500 and info["corpus"] == "held-out Dyck strings (up to 100 symbols)"
        assert info["steps"] == sum(map(len, model.tasks.DyckTask().heldout())) and set(info["gates"]) == {"h", "c"}
        got = client.get("/test/index/dyck").json()
        assert got["docs"] == 500
    assert stores(tmp_path / "data") == ["indexes/dyck/heldout.zarr"]
    dead = tmp_path / "data" / "indexes" / "dyck" / ".building-dead.zarr"
    (dead / "act").mkdir(parents=True)  # what a build the server died in leaves
    with TestClient(make_app(tmp_path)) as client:  # a restart: the same store, no build
        again = client.get("/api/models/dyck/index").json()
        assert not dead.exists()
        assert again["state"] == "ready" and again["info"]["created"] == info["created"]
        assert client.get("/test/index/dyck").json()["path"] == got["path"]


def test_a_model_whose_weights_changed_never_gets_its_old_index(tmp_path):
    tiny_model(tmp_path / "models")
    with TestClient(make_app(tmp_path)) as client:
        assert send(client, "tiny", "c.txt", b"ab ab ba " * 50).status_code == 202
        assert follow(client, "tiny")[-1]["state"] == "ready"
    tiny_model(tmp_path / "models", seed=1)  # other weights under the same name
    with TestClient(make_app(tmp_path)) as client:
        st = client.get("/api/models/tiny/index").json()
        assert st["state"] == "none"
        r = client.get("/test/index/tiny")
        assert r.status_code == 409 and "no index yet" in r.json()["detail"] and "POST a corpus" in r.json()["detail"]
    assert stores(tmp_path / "data") == []  # the stale index was removed, not served


def test_an_index_an_older_gatescope_wrote_is_removed_and_the_page_told_to_index_again(tmp_path):
    import zarr

    from model.analysis.store import ATTR, VERSION

    tiny_model(tmp_path / "models")
    with TestClient(make_app(tmp_path)) as client:
        assert send(client, "tiny", "c.txt", b"ab ab ba " * 50).status_code == 202
        assert follow(client, "tiny")[-1]["state"] == "ready"
    (kept,) = stores(tmp_path / "data")
    group = zarr.open_group(str(tmp_path / "data" / kept), mode="r+")
    group.attrs[ATTR] = {**group.attrs[ATTR], "version": VERSION - 1}  # what the gatescope before this one wrote
    with TestClient(make_app(tmp_path)) as client:
        st = client.get("/api/models/tiny/index").json()
        assert st["state"] == "failed" and f"format version {VERSION - 1}" in st["error"]
        assert "index the corpus again" in st["error"]
        r = client.get("/test/index/tiny")
        assert r.status_code == 409 and "index the corpus again" in r.json()["detail"]
        assert client.get("/api/models/tiny/units/0/0?gate=c").status_code == 409
    assert stores(tmp_path / "data") == []


def test_a_model_replaced_while_the_server_runs_never_gets_the_old_index(tmp_path):
    """Another worker deleted the model and a new upload took its name: this worker's registry follows the folder,
    and its index of the old network is not served for the new one."""
    from app.registry import Entry

    tiny_model(tmp_path / "models")
    a = make_app(tmp_path)
    with TestClient(a) as client:
        assert send(client, "tiny", "c.txt", b"ab ab ba " * 50).status_code == 202
        assert follow(client, "tiny")[-1]["state"] == "ready"
        assert client.get("/test/index/tiny").status_code == 200
        tiny_model(tmp_path / "other", seed=2)
        a.state.registry.add("tiny", Entry(model.load(tmp_path / "other" / "tiny"), {}, "uploaded"))
        r = client.get("/test/index/tiny")
        assert r.status_code == 409 and "no index yet" in r.json()["detail"]
        assert client.get("/api/models/tiny/index").json()["state"] == "none"
    assert stores(tmp_path / "data") == []  # the old network's store is gone


def test_a_build_streams_its_progress_line_by_line_until_ready(tmp_path, monkeypatch):
    monkeypatch.setattr(index_mod, "PART_BYTES", 32 * 400)  # dyck keeps 32 bytes a step: a part per 400 steps
    text = "\n".join(dyck_strings(200)).encode()
    with TestClient(make_app(tmp_path, index_bundled=False)) as client:
        r = send(client, "dyck", "strings.txt", text, per="line")
        assert r.status_code == 202 and r.json()["state"] == "building"
        lines = follow(client, "dyck")
    building = [x for x in lines if x["state"] == "building"]
    assert len(building) >= 2 and lines[-1]["state"] == "ready"
    chars = [x["progress"]["chars"] for x in building]
    assert chars == sorted(chars) and chars[-1] > chars[0]  # moving forward
    assert all(x["progress"]["total_chars"] > 0 for x in building)
    assert lines[-1]["info"]["docs"] == 200 and lines[-1]["info"]["corpus"] == "strings.txt"


class Gate:
    """A builder that waits for the test's word (or its job's stop) before it builds: a job held "building"."""

    def __init__(self) -> None:
        self.open, self.entered = threading.Event(), threading.Event()

    def __call__(self, net, corpus, out, **kw):
        self.entered.set()
        while not self.open.wait(0.01):
            if kw["stop"]():
                raise model.Cancelled("stopped while it waited")
        return index_mod.build(net, corpus, out, **kw)


def test_one_job_a_model_a_second_start_is_told_how_far_the_first_is_and_cancel_stops_it(tmp_path, monkeypatch):
    gate = Gate()
    monkeypatch.setattr(app.indexes, "build_index", gate)
    with TestClient(make_app(tmp_path, index_bundled=False)) as client:
        assert send(client, "dyck", "a.txt", b"()$\n" * 10, per="line").status_code == 202
        assert gate.entered.wait(BUILD_TIMEOUT)
        again = send(client, "dyck", "b.txt", b"(())$\n", per="line")
        assert again.status_code == 409 and "being built already (0%, a.txt)" in again.json()["detail"]
        r = client.get("/test/index/dyck")
        assert r.status_code == 409 and "being built" in r.json()["detail"]
        assert "GET /api/models/dyck/index/progress" in r.json()["detail"]
        assert client.delete("/api/models/dyck/index").status_code == 204  # cancels: returns once it has stopped
        assert client.get("/api/models/dyck/index").json()["state"] == "none"
        assert not list((tmp_path / "data").rglob("*.zarr"))  # the half-built store is gone
        gate.open.set()
        assert send(client, "dyck", "b.txt", b"(())$\n", per="line").status_code == 202  # free again
        assert follow(client, "dyck")[-1]["state"] == "ready"


def test_a_failed_build_says_why_and_leaves_nothing_behind(tmp_path):
    rows = [json.dumps({"text": s}) for s in ["()$", "(())$", "(x)$"]]  # the third has a token dyck lacks
    with TestClient(make_app(tmp_path, index_bundled=False)) as client:
        assert send(client, "dyck", "rows.jsonl", "\n".join(rows).encode()).status_code == 202
        last = follow(client, "dyck")[-1]
        assert last["state"] == "failed" and "line 3" in last["error"] and "'x'" in last["error"], last
        st = client.get("/api/models/dyck/index").json()
        assert st["state"] == "failed" and st["error"] == last["error"]
        r = client.get("/test/index/dyck")
        assert r.status_code == 409 and "its last build failed" in r.json()["detail"]
    assert not list((tmp_path / "data").rglob("*.zarr"))


def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


@pytest.mark.parametrize(
    ("model_id", "name", "data", "status", "words"),
    [
        ("dyck", "empty.txt", b"", 422, "empty"),
        ("dyck", "pic.png", b"\x89PNG\r\n\x1a\n\0\0\0\0", 415, "not UTF-8 text"),
        ("dyck", "bomb.zip", _zip({"a.txt": b"(" * (3 << 20)}), 413, "unpacks to 3 MB"),
        ("dyck", "bin.zip", _zip({"a.bin": b"\0\1"}), 422, "holds no text files"),
        ("dyck", "words.txt", b"hello", 422, "words.txt"),
        ("adding-lstm", "a.txt", b"some text", 415, "reads vectors"),
        ("nope", "a.txt", b"()$", 404, "no model 'nope'"),
    ],
)
def test_a_corpus_that_cannot_be_indexed_gets_a_4xx_saying_why(tmp_path, model_id, name, data, status, words):
    with TestClient(make_app(tmp_path, index_bundled=False, max_corpus_unzipped_mb=1)) as client:
        r = send(client, model_id, name, data)
        assert r.status_code == status and words in r.json()["detail"], r.json()
        assert model_id == "nope" or client.get(f"/api/models/{model_id}/index").json()["state"] == "none"
    assert not list((tmp_path / "data").rglob("*.zarr"))


def test_the_corpus_form_itself_is_checked(tmp_path):
    tiny_model(tmp_path / "models")
    with TestClient(make_app(tmp_path, index_bundled=False, max_corpus_mb=1)) as client:
        r = client.post("/api/models/tiny/index", data={"per": "file"})
        assert r.status_code == 422 and "form field 'corpus'" in r.json()["detail"]
        r = send(client, "tiny", "a.txt", b"ab", lines="1")
        assert r.status_code == 422 and "the form takes corpus, per, carry; not 'lines'" in r.json()["detail"]
        r = send(client, "tiny", "a.txt", b"ab", per="word")
        assert r.status_code == 422 and "'per' takes file or line" in r.json()["detail"]
        r = send(client, "tiny", "big.txt", b"a" * (3 << 20))
        assert r.status_code == 413 and "at most 1 MB" in r.json()["detail"]
    with TestClient(make_app(tmp_path, uploads=False)) as client:
        r = send(client, "dyck", "a.txt", b"()$")
        assert r.status_code == 403 and "uploads are switched off" in r.json()["detail"]
        assert client.delete("/api/models/dyck/index").status_code == 403


def test_a_model_uploaded_with_a_corpus_is_indexed_and_its_index_goes_with_it(tmp_path):
    tiny_model(tmp_path / "src")
    weights = (tmp_path / "src" / "tiny" / "model.safetensors").read_bytes()
    with TestClient(make_app(tmp_path, index_bundled=False)) as client:
        files = {"file": ("mine.safetensors", weights), "corpus": ("c.txt", b"ab ba ab " * 30)}
        r = client.post("/api/models", files=files, data={"name": "mine"})
        assert r.status_code == 201, r.text
        last = follow(client, "mine")[-1]
        assert last["state"] == "ready" and last["info"]["corpus"] == "c.txt" and last["info"]["docs"] == 1
        assert stores(tmp_path / "data") == ["indexes/mine/c.zarr"]
        assert client.delete("/api/models/mine").status_code == 204
        assert not (tmp_path / "data" / "indexes" / "mine").exists()
        assert client.get("/api/models/mine/index").status_code == 404
        # a corpus the new model cannot read: the model is kept, its index says why
        files = {"file": ("mine.safetensors", weights), "corpus": ("c.txt", b"xyz")}
        assert client.post("/api/models", files=files, data={"name": "mine2"}).status_code == 201
        st = client.get("/api/models/mine2/index").json()
        assert st["state"] == "failed" and "c.txt" in st["error"] and "'x'" in st["error"], st


def test_the_apps_own_dask_cluster_builds_and_closes_with_the_app(tmp_path):
    a = make_app(tmp_path, index_bundled=False, dask_scheduler=None, index_workers=1)
    with TestClient(a) as client:
        assert send(client, "dyck", "s.txt", "\n".join(dyck_strings(50)).encode(), per="line").status_code == 202
        assert follow(client, "dyck")[-1]["state"] == "ready"
        dask = a.state.indexes.cluster.client
        workers = dask.scheduler_info()["workers"]
        assert len(workers) == 1 and all(w.startswith("tcp://127.0.0.1:") for w in workers)
        assert client.get("/test/index/dyck").json()["docs"] == 50
    assert dask.status == "closed" and a.state.indexes.cluster.client is None


def test_two_worker_processes_build_a_bundled_index_once(tmp_path, monkeypatch):
    """Each worker of `gatescope serve --workers 2` has its own Indexes over one data folder: the first to ask
    builds the held-out index, holding the model's folder (flock); the other waits for it and opens that store."""
    from app.indexes import Indexes
    from app.registry import Registry

    builds, gate = [], Gate()
    monkeypatch.setattr(app.indexes, "build_index", lambda *a, **kw: (builds.append(a[2]), gate(*a, **kw))[1])
    registry = Registry()
    registry.load_bundled()
    settings = Settings(
        models_dir=tmp_path / "models", data_dir=tmp_path / "data", dask_scheduler="sync", index_bundled=True
    )
    one, two = Indexes(settings, registry), Indexes(settings, registry)
    try:
        assert one.status("dyck")["state"] == "building"
        assert gate.entered.wait(BUILD_TIMEOUT)  # the first holds the folder
        assert two.status("dyck")["state"] == "building"  # the second's job waits for it
        gate.open.set()
        assert one.wait("dyck", BUILD_TIMEOUT) and two.wait("dyck", BUILD_TIMEOUT)
        assert one.status("dyck")["state"] == two.status("dyck")["state"] == "ready"
        assert len(builds) == 1 and one.get("dyck").path == two.get("dyck").path
    finally:
        one.close()
        two.close()
