"""No 5xx for any model a user can upload: a head wider than the vocabulary, a regression head and a named
classifier, uploaded as PyTorch-layout safetensors and traced over every form of the API and the socket,
each answer saying what the output is and carrying it exactly (against a NumPy reference in PyTorch's layout)."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest
from fastapi.testclient import TestClient

from app.encoding import loads_binary, unpack
from app.main import create_app
from app.settings import Settings
from tests import heads_models as hm

ENCODINGS = ("json", "compact", "binary", "csv", "npz")


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A server with the three models uploaded through the form (the classifier's labels from its file)."""
    root = tmp_path_factory.mktemp("heads")
    files = hm.write_all(root / "files")
    with TestClient(create_app(Settings(models_dir=root / "models", uploads=True))) as client:
        cards = {}
        for name, f in files.items():
            parts = {"file": (f["file"].name, f["file"].read_bytes())}
            if f["vocab"] is not None:
                parts["vocab"] = (f["vocab"].name, f["vocab"].read_bytes())
            r = client.post("/api/models", files=parts, data={"name": name})
            assert r.status_code == 201, r.text
            cards[name] = r.json()
        yield client, files, cards


def inputs(name):
    """The request body's input and the same input one-hot / as vectors for the reference."""
    if name == "wide":
        text = "0110111"
        return {"text": text}, hm.one_hot([int(c) for c in text], 2)
    if name == "regression":
        x = np.random.default_rng(5).normal(size=(6, 3)).astype(np.float32)
        return {"vectors": x.tolist()}, x
    return {"text": "very good film not bad"}, None


def reference(files, name, x):
    sd = files[name]["sd"]
    if name == "classifier":  # embedding rows for the word ids
        ids = [hm.WORDS.index(w) for w in "very good film not bad".split()]
        x = sd["embedding.weight"][ids]
    return hm.reference(sd, x)[1]  # (T, K) the head's y


def test_the_cards_say_what_each_head_predicts(served):
    _, _, cards = served
    assert cards["wide"]["output"] == {
        "kind": "classes",
        "at": "every",
        "size": 5,
        "labels": [f"class {j}" for j in range(5)],
    }
    assert cards["regression"]["output"] == {"kind": "values", "at": "every", "size": 1, "labels": ["y"]}
    assert cards["classifier"]["output"] == {"kind": "classes", "at": "last", "size": 3, "labels": hm.CLASSES}
    assert all(c["head"] is True for c in cards.values())


@pytest.mark.parametrize("name", ["wide", "regression", "classifier"])
@pytest.mark.parametrize("encoding", ENCODINGS)
def test_every_encoding_traces_every_head_and_carries_its_outputs(served, name, encoding):
    client, files, cards = served
    body, x = inputs(name)
    r = client.post(f"/api/trace?encoding={encoding}", json={"model": name, **body})
    assert r.status_code == 200, r.text
    y = reference(files, name, x)  # (T, K)
    kind, labels = cards[name]["output"]["kind"], cards[name]["output"]["labels"]
    want = y if kind == "values" else hm.softmax(y)
    if encoding == "json":
        got = r.json()
        assert got["output"] == cards[name]["output"]
        if kind == "values":
            assert got["probs"] is None
            np.testing.assert_allclose(np.array(got["values"]), want, atol=1e-5, rtol=0)
        else:
            assert got["values"] is None
            for t, row in enumerate(got["probs"]):  # every class, named, best first
                assert sorted(p["token"] for p in row) == sorted(labels)
                np.testing.assert_allclose(
                    [p["p"] for p in row], [want[t, labels.index(p["token"])] for p in row], atol=1e-6
                )
    elif encoding in ("compact", "binary"):
        got = json.loads(r.content) if encoding == "compact" else loads_binary(r.content)
        assert got["output"] == cards[name]["output"]
        if kind == "values":
            np.testing.assert_allclose(unpack(got["values"]), want, atol=1e-5, rtol=0)
        else:
            tokens = np.array(got["probs"]["tokens"])  # (T, K) class names
            p = unpack(got["probs"]["p"])
            for t in range(len(tokens)):
                np.testing.assert_allclose(p[t], [want[t, labels.index(s)] for s in tokens[t]], atol=2e-5)
    elif encoding == "csv":
        rows = list(csv.DictReader(io.StringIO(r.text)))
        cols = [f"pred({s})" for s in labels] if kind == "values" else [f"p({s})" for s in labels]
        assert set(cols) <= set(rows[0])
        first = {int(row["t"]): [float(row[c]) for c in cols] for row in rows if row["unit"] == "0"}
        np.testing.assert_allclose([first[t] for t in sorted(first)], want, atol=1e-5, rtol=0)
    else:
        z = np.load(io.BytesIO(r.content), allow_pickle=False)
        assert str(z["head"]) == kind and list(z["labels"]) == labels
        np.testing.assert_allclose(z["values" if kind == "values" else "probs"], want, atol=1e-5, rtol=0)


@pytest.mark.parametrize("name", ["wide", "regression", "classifier"])
def test_the_stream_says_what_the_output_is_and_carries_it_per_step(served, name):
    client, files, cards = served
    body, x = inputs(name)
    r = client.post("/api/trace/stream", json={"model": name, **body})
    assert r.status_code == 200, r.text
    lines = [json.loads(s) for s in r.text.splitlines()]
    assert lines[0]["output"] == cards[name]["output"]
    y = reference(files, name, x)
    if cards[name]["output"]["kind"] == "values":
        np.testing.assert_allclose([ln["values"] for ln in lines[1:]], y, atol=1e-5, rtol=0)
    else:
        labels = cards[name]["output"]["labels"]
        best = [labels[j] for j in np.argmax(y, axis=1)]
        assert [ln["probs"][0]["token"] for ln in lines[1:]] == best


@pytest.mark.parametrize("name", ["wide", "classifier"])
@pytest.mark.parametrize("encoding", ["json", "compact", "binary"])
def test_the_live_socket_answers_with_named_classes(served, name, encoding):
    client, files, cards = served
    text = inputs(name)[0]["text"]
    with client.websocket_connect("/api/live") as ws:
        ws.send_json({"model": name, "text": text, "seq": 1, "encoding": encoding})
        msg = ws.receive_bytes() if encoding == "binary" else ws.receive_text()
    got = loads_binary(msg) if encoding == "binary" else json.loads(msg)
    assert "error" not in got, got
    assert got["output"] == cards[name]["output"]
    labels = cards[name]["output"]["labels"]
    y = reference(files, name, None if name == "classifier" else inputs(name)[1])
    first = got["probs"][0] if encoding == "json" else None
    if first is not None:
        assert {p["token"] for p in first} == set(labels)
    else:
        assert set(got["probs"]["tokens"][0]) == set(labels)
        assert got["probs"]["tokens"][-1][0] == labels[int(np.argmax(y[-1]))]


@pytest.mark.parametrize("encoding", ["json", "compact", "binary"])
def test_the_live_socket_carries_a_word_regressors_values_as_the_text_grows(served, encoding):
    client, files, _ = served
    sd = files["score"]["sd"]
    with client.websocket_connect("/api/live") as ws:
        replies = []
        for seq, text in enumerate(["good plot", "good plot very bad"], 1):
            ws.send_json({"model": "score", "text": text, "seq": seq, "encoding": encoding})
            msg = ws.receive_bytes() if encoding == "binary" else ws.receive_text()
            replies.append(loads_binary(msg) if encoding == "binary" else json.loads(msg))
    last = replies[-1]
    assert last["from"] == 2 and last["output"]["kind"] == "values" and last["probs"] is None
    got = np.array(last["values"]) if encoding == "json" else unpack(last["values"])
    y = hm.reference(sd, sd["embedding.weight"][[1, 4, 5, 2]])[1]  # good plot very bad
    np.testing.assert_allclose(got, y[2:], atol=1e-5, rtol=0)  # only the new steps travel


def test_targets_travel_beside_the_values_and_a_bad_one_is_a_422(served):
    client, _, _ = served
    body, x = inputs("regression")
    T = len(x)
    targets = [[float(v)] for v in range(T - 1)] + [[None]]
    got = client.post("/api/trace", json={"model": "regression", **body, "targets": targets}).json()
    assert got["targets"] == targets
    z = np.load(
        io.BytesIO(
            client.post("/api/trace?encoding=npz", json={"model": "regression", **body, "targets": targets}).content
        )
    )
    assert np.isnan(z["targets"][-1, 0]) and z["targets"][1, 0] == 1.0
    r = client.post("/api/trace", json={"model": "regression", **body, "targets": [[1.0]] * (T + 1)})
    assert r.status_code == 422 and f"targets must be {T} rows of 1 numbers" in r.json()["detail"]
    r = client.post("/api/trace", json={"model": "wide", "text": "01", "targets": [[1.0], [2.0]]})
    assert r.status_code == 422 and "a classes head" in r.json()["detail"]


@pytest.mark.parametrize(
    ("data", "status", "words"),
    [
        ({"head": "softmax"}, 422, ["'head' takes next or classes or values", "'softmax'"]),
        ({"head_at": "first"}, 422, ["'head_at' takes every or last"]),
        ({"labels": "[neg, pos"}, 422, ["'labels' starts like a JSON list but is not JSON"]),
        ({"labels": "a\nb"}, 422, ["2 labels given for a head of 1 outputs"]),
        ({"head": "next"}, 422, ["head 'next'", "no vocabulary"]),
    ],
)
def test_bad_head_fields_in_an_upload_are_named(served, data, status, words):
    client, files, _ = served
    f = files["regression"]["file"]
    r = client.post("/api/models", files={"file": (f.name, f.read_bytes())}, data=data)
    assert r.status_code == status, r.text
    for w in words:
        assert w in r.json()["detail"]


def test_upload_fields_name_the_classes_and_the_step_that_counts(served):
    client, files, _ = served
    f = files["wide"]
    parts = {"file": (f["file"].name, f["file"].read_bytes()), "vocab": (f["vocab"].name, f["vocab"].read_bytes())}
    r = client.post("/api/models", files=parts, data={"labels": "zero\none\ntwo\nthree\nfour", "head_at": "last"})
    assert r.status_code == 201, r.text
    assert r.json()["output"] == {
        "kind": "classes",
        "at": "last",
        "size": 5,
        "labels": ["zero", "one", "two", "three", "four"],
    }
    got = client.post("/api/trace", json={"model": r.json()["id"], "text": "0111"}).json()
    assert {p["token"] for p in got["probs"][-1]} == {"zero", "one", "two", "three", "four"}
    assert client.delete(f"/api/models/{r.json()['id']}").status_code == 204


def test_gatescope_trace_prints_the_classes_by_name_not_an_index_error(tmp_path, capsys):
    from app.cli import main

    files = hm.write_all(tmp_path)
    assert main(["trace", str(files["wide"]["file"]), "0110111", "--out", str(tmp_path / "t.json")]) == 0
    err = capsys.readouterr().err
    y = hm.reference(files["wide"]["sd"], hm.one_hot([0, 1, 1, 0, 1, 1, 1], 2))[1]
    best = f"class {int(np.argmax(y[-1]))}"
    assert f"classes (a prediction at every step): at step 6: {best} " in err
    assert main(["trace", str(files["classifier"]["file"]), "very good film"]) == 0
    out = capsys.readouterr()
    assert json.loads(out.out)["output"]["labels"] == hm.CLASSES  # stdout stays the JSON
    assert "classes (the last step's prediction counts): at step 2: " in out.err
    assert all(c in out.err for c in hm.CLASSES)
    assert main(["trace", str(files["score"]["file"]), "good bad", "--out", str(tmp_path / "s.json")]) == 0
    value = hm.reference(files["score"]["sd"], files["score"]["sd"]["embedding.weight"][[1, 2]])[1][-1, 0]
    assert f"score = {value:.6g}" in capsys.readouterr().err
    assert main(["trace", str(files["wide"]["file"]), "01", "--labels", "a,b"]) == 2
    assert "2 labels given for a head of 5 outputs" in capsys.readouterr().err


def test_a_forecasters_meta_names_its_targets(tmp_path):
    import model

    sd = hm.lstm_state_dict(2, 4, 1, seed=7)
    net = model.load(hm.save(tmp_path / "f.safetensors", sd))
    net.spec.meta["targets"] = {"columns": [1], "shift": 1}  # output 0 at t predicts x[t + 1, 1]
    net = model.Network(net.spec, net.params)
    model.save(net, tmp_path / "forecaster.safetensors")
    with TestClient(create_app(Settings(models_dir=tmp_path / "models", uploads=True))) as client:
        r = client.post(
            "/api/models",
            files={"file": ("forecaster.safetensors", (tmp_path / "forecaster.safetensors").read_bytes())},
        )
        assert r.status_code == 201, r.text
        x = [[0.0, 1.0], [0.5, 2.0], [1.0, 3.0]]
        got = client.post("/api/trace", json={"model": r.json()["id"], "vectors": x}).json()
    assert got["targets"] == [[2.0], [3.0], [None]]  # the next step's column 1; unknown at the end
    np.testing.assert_allclose(got["values"], hm.reference(sd, np.array(x))[1], atol=1e-5, rtol=0)
