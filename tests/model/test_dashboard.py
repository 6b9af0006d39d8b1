"""A unit's dashboard (model/analysis/dashboard.py) against hand-computed cases: the one-per-region rule on
a hand-made index, the pushes against the head's weight column, and the refusals."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

import model
from model.analysis.dashboard import dashboard, distinct, pushes


class HandIndex:
    """An index held in memory, its statistics written by hand (the reader's interface, nothing else)."""

    def __init__(self, values: np.ndarray, doc_starts: list[int], stats: dict, gates=("h", "c")):
        self.values = values  # (S,) the one unit's values (unit 0 of layer 0, every gate alike)
        self.doc_starts = np.array(doc_starts, np.int64)
        self._stats = stats
        self.path, self.info = "/tmp/hand.zarr", {"model": "hand", "sources": ["a.txt", "b.txt"], "per": "file"}
        self.steps, self.docs, self.layers, self.gates, self.kind = len(values), len(doc_starts) - 1, 1, gates, "text"

    def doc_of(self, pos):
        return np.searchsorted(self.doc_starts, np.asarray(pos), side="right") - 1

    def source_of(self, doc):
        return {"source": "a.txt", "line": 0}

    def stats(self, layer, gate):
        return SimpleNamespace(**self._stats)

    def tokens(self, a, b):
        return [chr(97 + p % 26) for p in range(a, b)]

    def context(self, pos, layer, gate, unit, before=40, after=20):
        doc = int(self.doc_of(pos))
        a, b = max(pos - before, int(self.doc_starts[doc])), min(pos + after + 1, int(self.doc_starts[doc + 1]))
        return {
            "doc": doc, "source": "a.txt", "line": 0, "start": a, "stop": b, "pos": pos,
            "tokens": self.tokens(a, b), "values": self.values[a:b].tolist(), "peak": pos - a,
        }  # fmt: skip


def _stats(top, bottom, band_pos, deciles):
    W = 1
    return {
        "mean": np.zeros(W), "std": np.ones(W), "min": np.array([-2.0]), "max": np.array([3.0]),
        "low": np.array([np.nan]), "high": np.array([np.nan]),
        "edges": np.linspace(-2, 3, 6)[None], "hist": np.array([[1, 2, 3, 4, 5]]),
        "top_pos": np.array([top]), "bottom_pos": np.array([bottom]),
        "top_val": np.zeros((W, len(top))), "bottom_val": np.zeros((W, len(bottom))),
        "deciles": np.array([deciles], np.float64), "band_pos": np.array([band_pos]),
    }  # fmt: skip


#: Three documents: steps 0..99, 100..149, 150..229.
DOCS = [0, 100, 150, 230]


def test_two_peaks_in_one_document_closer_than_a_snippet_count_once():
    # width 61 (40 before, 20 after, the peak): 30 is 20 from 10, 5 is 5 from 10, 99 is 24 from 75, 100 is 20
    # from 120: each dropped; 75 (65 from 10), 120 and 200 (other documents) are kept, in top_pos's order
    top = [10, 30, 75, 120, 5, 200, 99, 100, -1, -1]
    assert distinct(np.array(top), HandIndex(np.zeros(230), DOCS, {}).doc_of(np.maximum(top, 0)), 10, 61) == [
        10,
        75,
        120,
        200,
    ]
    # the rule's edge: 60 apart overlap (dropped), 61 apart do not (kept); another document is always kept
    assert distinct(np.array([0, 60, 61]), np.zeros(3, int), 10, 61) == [0, 61]
    assert distinct(np.array([99, 100]), np.array([0, 1]), 10, 61) == [99, 100]
    assert distinct(np.array([0, 61, 122, 183]), np.zeros(4, int), 2, 61) == [0, 61]  # k caps


def test_the_dashboard_lists_one_context_per_region_with_its_document_step():
    values = np.linspace(-2, 3, 230).astype(np.float32)
    band_pos = [[-1, -1]] * 10
    band_pos[9] = [228, 229]  # 1 apart: one context
    band_pos[0] = [3, 180]
    st = _stats([10, 30, 75, 120, 5, 200], [1, 2, 160, -1, -1, -1], band_pos, np.linspace(-2, 3, 11))
    d = dashboard(HandIndex(values, DOCS, st), None, 0, 0, "c", k=3, per_band=3)
    assert [c["pos"] for c in d["top"]] == [10, 75, 120]
    assert [c["pos"] for c in d["bottom"]] == [1, 160]
    assert [(c["doc"], c["t"], c["doc_steps"]) for c in d["top"]] == [(0, 10, 100), (0, 75, 100), (1, 20, 50)]
    top = d["top"][2]  # 120 in document 1 (100..149): its snippet is clipped to the document
    assert (top["start"], top["stop"], top["peak"]) == (100, 141, 20)
    assert top["value"] == pytest.approx(float(values[120]))
    assert [c["pos"] for c in d["bands"][9]["contexts"]] in ([228], [229])
    assert sorted(c["pos"] for c in d["bands"][0]["contexts"]) == [3, 180]
    assert [b["contexts"] for b in d["bands"][1:9]] == [[]] * 8
    assert d["histogram"] == {"edges": [-2.0, -1.0, 0.0, 1.0, 2.0, 3.0], "counts": [1, 2, 3, 4, 5]}
    assert d["stats"]["low"] is None and d["stats"]["saturation"] is None  # C has no saturation
    assert d["scale"] == {"kind": "cell", "range": [-3.0, 3.0]}  # ± the largest |C| the index saw
    assert d["corpus"]["name"] == "hand" and d["corpus"]["docs"] == 3 and d["pushes"] is None


@pytest.mark.parametrize(
    "args, words",
    [
        ((1, 0, "c"), "layer 1 is not in the index: it holds layers 0 to 0"),
        ((0, 0, "f"), "gate 'f' is not in the index: it holds h, c"),
        ((0, 1, "c"), "unit 1 is not in layer 0's c: it has units 0 to 0"),
    ],
)
def test_what_the_index_lacks_is_refused_by_name(args, words):
    st = _stats([0], [0], [[-1]] * 10, np.linspace(0, 1, 11))
    with pytest.raises(model.InputError, match=words):
        dashboard(HandIndex(np.zeros(230), DOCS, st), None, *args)
    with pytest.raises(model.InputError, match="k must be 1 to 100"):
        dashboard(HandIndex(np.zeros(230), DOCS, st), None, 0, 0, "c", k=0)


def test_pushes_are_the_head_weight_row_sorted():
    net = model.load("code")
    W = net.params["head.W"]  # (H, V)
    u = 7
    p = pushes(net, 0, u, "c")
    w = W[u].astype(np.float64)
    up = np.argsort(-w)[:10]
    down = np.argsort(w)[:10]
    assert [x["label"] for x in p["up"]] == [net.vocab[j] for j in up]
    assert [x["label"] for x in p["down"]] == [net.vocab[j] for j in down]
    assert [x["weight"] for x in p["up"]] == pytest.approx(w[up].tolist())
    assert p["up"][0]["weight"] == pytest.approx(w.max()) and p["down"][0]["weight"] == pytest.approx(w.min())
    assert p["title"] == "direct effect on the logits" and p["kind"] == "next"


def test_pushes_of_a_values_head_are_its_outputs():
    net = model.load("co2-lstm")  # one output, "y"
    w = float(net.params["head.W"][3, 0])
    p = pushes(net, 0, 3, "h")
    assert p["title"] == "direct effect on the outputs" and p["kind"] == "values"
    assert (p["up"], p["down"]) == (
        ([{"label": "y", "weight": w}], []) if w > 0 else ([], [{"label": "y", "weight": w}])
    )


def test_a_classifier_pushes_its_labels_from_the_top_layer_only():
    spec = model.Spec("lstm", 3, 4, num_layers=2, vocab=["a", "b", "c"], tokenizer="char", output_size=3)
    spec.head, spec.labels = "classes", ["neg", "neu", "pos"]
    rng = np.random.default_rng(0)
    net = model.Network(
        spec, {n: rng.normal(size=spec.expected_shape(n)).astype(np.float32) for n in spec.param_names()}
    )
    w = net.params["head.W"][2].astype(np.float64)  # (3,)
    p = pushes(net, 1, 2, "c")
    labels = [spec.labels[j] for j in np.argsort(-w) if w[j] > 0]
    assert [x["label"] for x in p["up"]] == labels and p["title"] == "direct effect on the logits"
    assert len(p["up"]) + len(p["down"]) == int((w != 0).sum())
    assert pushes(net, 0, 2, "c") is None  # layer 0 reaches the head only through layer 1: no direct effect


def test_contexts_read_together_equal_the_index_one_at_a_time(tmp_path, monkeypatch):
    from model.analysis import index as index_mod
    from model.analysis.dashboard import read_contexts

    monkeypatch.setattr(index_mod, "PART_BYTES", 4096)  # many parts: the selections cross them
    texts = ["(()" * k + ")" * (2 * k) for k in range(1, 12)] + ["()" * 40]
    idx = index_mod.build(model.load("dyck"), texts, tmp_path / "d.zarr", scheduler="sync")
    assert len(idx.part_starts) > 4
    rng = np.random.default_rng(1)
    ends = [int(s) for s in idx.doc_starts[1:-1]] + [int(s) - 1 for s in idx.doc_starts[1:]]  # documents' edges
    pos = sorted(set(rng.integers(0, idx.steps, 30).tolist() + ends))
    got = read_contexts(idx, pos, 0, "c", 5)
    for p, ctx in zip(pos, got):
        want = idx.context(p, 0, "c", 5)
        assert {k: ctx[k] for k in want} == want
        assert ctx["value"] == want["values"][want["peak"]]
        assert ctx["t"] == p - idx.doc_starts[want["doc"]]
    assert read_contexts(idx, [], 0, "c", 5) == []
