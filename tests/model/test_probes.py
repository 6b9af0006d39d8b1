"""Features and probes: hand-worked features, correlations, ridge and logistic against independent references,
the streamed (index) ranking against the whole-trace one, and the bundled models' probes."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import pytest

import model
from model import InputError, Network, Spec
from model.analysis import features as F
from model.analysis import probes as P
from model.trace import Trace
from model.train import init_params


def tokens_of(text: str) -> F.Tokens:
    return F.Tokens.of(CHAR_NET, list(text))


CHAR_NET = Network(
    Spec("lstm", 8, 3, vocab=list("ab c\n(d)"), tokenizer="char"),
    init_params(Spec("lstm", 8, 3, vocab=list("ab c\n(d)"), tokenizer="char"), np.random.default_rng(0)),
)


# --------------------------------------------------------------------------------------------
# features
# --------------------------------------------------------------------------------------------
def test_generic_features_of_a_character_text_by_hand():
    text = "ab c\n(d))"
    tk = tokens_of(text)
    assert F.values("position_in_word", tk).tolist() == [0, 1, 0, 0, 0, 0, 1, 2, 3]
    assert F.values("position_in_line", tk).tolist() == [0, 1, 2, 3, 4, 0, 1, 2, 3]
    assert F.values("after_newline", tk).tolist() == [0, 0, 0, 0, 0, 1, 0, 0, 0]
    assert F.values("whitespace", tk).tolist() == [0, 0, 1, 0, 1, 0, 0, 0, 0]
    assert F.values("punctuation", tk).tolist() == [0, 0, 0, 0, 0, 1, 0, 1, 1]
    assert F.values("bracket_depth", tk).tolist() == [0, 0, 0, 0, 0, 1, 1, 0, 0]  # the extra ")" stays at 0


def test_counters_restart_at_every_document():
    tk = F.Tokens(np.array([0, 1, 0, 0, 1]), ["(", "a"], np.array([0, 2, 5]))
    assert F.values("bracket_depth", tk).tolist() == [1, 1, 1, 2, 2]
    assert F.values("position_in_line", tk).tolist() == [0, 1, 0, 1, 2]


def test_word_tokens_take_their_texts_predicates_and_eol_is_a_newline():
    spec = Spec(
        "lstm",
        6,
        2,
        vocab=["<unk>", "The", "cat", "42", ".", "<eos>"],
        tokenizer="word",
        tokenizer_options={"split_punct": True, "eol": "<eos>"},
    )
    net = Network(spec, init_params(spec, np.random.default_rng(0)))
    tr = net.trace("The cat 42.\ncat")
    tk = F.Tokens.of_trace(net, tr)
    assert tr.tokens == ["The", "cat", "42", ".", "<eos>", "cat", "<eos>"]
    assert F.values("uppercase", tk).tolist() == [1, 0, 0, 0, 0, 0, 0]
    assert F.values("digit", tk).tolist() == [0, 0, 1, 0, 0, 0, 0]
    assert F.values("punctuation", tk).tolist() == [0, 0, 0, 1, 0, 0, 0]
    assert F.values("after_newline", tk).tolist() == [0, 0, 0, 0, 0, 1, 0]
    assert F.values("position_in_line", tk).tolist() == [0, 1, 2, 3, 4, 0, 1]
    assert F.values("position_in_word", tk).tolist() == [0] * 7  # every word token starts a word
    assert F.regex_values(r"ca", tk).tolist() == [0, 1, 0, 0, 0, 1, 0]  # over "The cat 42 . \n cat \n"


def test_python_features_come_from_code_py_and_bracket_depth_skips_strings_on_request():
    text = 'f("(", x)  # (\n'
    tk = tokens_of(text)
    from model.analysis import code_features

    assert F.values("in_string", tk).tolist() == code_features(text)["in_string"].tolist()
    assert F.values("bracket_depth", tk, python=True).tolist() == code_features(text)["bracket_depth"].tolist()
    assert F.values("bracket_depth", tk).tolist()[-1] == 2  # plain counting sees the quoted and the commented ones
    assert F.values("bracket_depth", tk, python=True).tolist()[-1] == 0


def test_features_for_each_kind_of_model():
    assert "depth" in F.features_for(model.load("dyck")) and "in_string" not in F.features_for(model.load("dyck"))
    assert {"in_string", "in_comment", "indent", "bracket_depth"} <= set(F.features_for(model.load("code")))
    assert F.features_for(model.load("recall-lstm")) == list(F.GENERIC)
    assert F.features_for(model.load("co2-lstm")) == []
    described = {d["name"]: d["description"] for d in F.describe(model.load("code"))}
    assert "outside strings" in described["bracket_depth"]


def test_regex_marks_tokens_inside_a_match_within_each_document():
    tk = F.Tokens(np.array([0, 0, 1, 0, 0]), ["a", "b"], np.array([0, 2, 5]))
    assert F.regex_values("aa", tk).tolist() == [1, 1, 0, 1, 1]
    assert F.regex_values("aab", tk).tolist() == [0, 0, 0, 0, 0]  # "a" "a" | "b" "a" "a": no match across the cut


def test_a_bad_regex_is_refused_naming_the_error():
    with pytest.raises(InputError, match="does not compile: missing \\)"):
        F.regex_values("(a", tokens_of("ab"))


def test_a_catastrophic_regex_is_stopped_at_its_time_limit():
    t0 = time.monotonic()
    with pytest.raises(InputError, match="was stopped"):
        F.regex_values("(a+)+b", tokens_of("a" * 40), seconds=0.5)
    assert time.monotonic() - t0 < 5


def test_labels_of_the_wrong_length_name_both_lengths():
    with pytest.raises(InputError, match="3 numbers but the text has 4 tokens"):
        F.label_values([1, 2, 3], 4)
    with pytest.raises(InputError, match=r"labels\[1\]"):
        F.label_values([1, "x", 3], 3)
    assert F.label_values([1, 2.5], 2).tolist() == [1, 2.5]


# --------------------------------------------------------------------------------------------
# ranking
# --------------------------------------------------------------------------------------------
def hand_trace() -> Trace:
    """Units: 0 is x = 1, 2, 3, 4 (r = 0.8 with y = 1, 3, 2, 4 by hand), 1 is -y (r = -1), 2 is constant."""
    h = np.array([[1, -1, 7], [2, -3, 7], [3, -2, 7], [4, -4, 7]], np.float32)
    return Trace("rnn", ("h",), list("abcd"), [{"h": h}])


def test_ranking_by_hand_best_abs_r_first_and_constant_units_left_out():
    ranking = P.rank(hand_trace(), [1, 3, 2, 4])
    # x̄ = ȳ = 2.5; Σ x̃ỹ = 2.25 - 0.25 - 0.25 + 2.25 = 4; Σ x̃² = Σ ỹ² = 5: r = 4 / 5
    assert ranking == [{"layer": 0, "unit": 1, "gate": "h", "r": -1.0}, {"layer": 0, "unit": 0, "gate": "h", "r": 0.8}]


def test_a_constant_feature_is_refused():
    with pytest.raises(InputError, match="constant"):
        P.rank(hand_trace(), [2, 2, 2, 2])
    with pytest.raises(InputError, match="3 values but there are 4 steps"):
        P.rank(hand_trace(), [1, 2, 3])


@dataclass
class Stats:
    mean: np.ndarray
    std: np.ndarray
    min: np.ndarray
    max: np.ndarray
    top_pos: np.ndarray


class MemoryIndex:
    """The reader's interface (index_contract.md) over traces held in memory, as float16 like the store."""

    def __init__(self, traces: list[Trace]):
        self.layers, self.gates = len(traces[0].layers), list(traces[0].layers[0])
        self._acts = [
            {g: np.concatenate([t.layers[k][g] for t in traces]).astype(np.float16) for g in self.gates}
            for k in range(self.layers)
        ]
        self.steps = sum(len(t) for t in traces)
        self.doc_starts = np.concatenate([[0], np.cumsum([len(t) for t in traces])])
        self.width = self._acts[0]["h"].shape[1]

    def blocks(self, layer, gate, rows=65536):
        a = self._acts[layer][gate]
        for s in range(0, len(a), 7):  # small blocks: the sums must add up across them
            yield s, a[s : s + 7].astype(np.float32)

    def stats(self, layer, gate):
        a = self._acts[layer][gate].astype(np.float64)
        return Stats(a.mean(0), a.std(0), a.min(0), a.max(0), np.argsort(-a, axis=0, kind="stable")[:4].T)

    def context(self, pos, layer, gate, unit, before=40, after=20):
        d = int(np.searchsorted(self.doc_starts, pos, "right") - 1)
        a, b = max(self.doc_starts[d], pos - before), min(self.doc_starts[d + 1], pos + after + 1)
        v = self._acts[layer][gate][a:b, unit].astype(np.float32)
        return {"start": int(a), "stop": int(b), "tokens": ["x"] * (b - a), "values": v.tolist(), "peak": pos - a}


def test_the_streamed_index_ranking_equals_the_whole_trace_one():
    net = model.load("dyck")
    texts = ["(()(()))$", "((((()))))$", "()()(())$", "(((())))()$", "(()())$", "((()))(())$"]
    traces = [net.trace(t, probs=False) for t in texts]
    index = MemoryIndex(traces)
    whole = Trace(net.cell, net.gates, [], [{g: index._acts[0][g].astype(np.float64) for g in index.gates}])
    whole.tokens = ["x"] * index.steps
    y = np.concatenate([F.values("depth", F.Tokens.of_trace(net, t)) for t in traces])
    seen = []
    streamed = P.rank(index, y, progress=lambda d, t: seen.append((d, t)))
    direct = P.rank(whole, y)
    assert [(e["layer"], e["unit"], e["gate"]) for e in streamed[:10]] == [
        (e["layer"], e["unit"], e["gate"]) for e in direct[:10]
    ]
    np.testing.assert_allclose([e["r"] for e in streamed], [e["r"] for e in direct], atol=2e-4)
    assert seen[-1][0] == seen[-1][1] == index.steps * len(index.gates)
    assert abs(streamed[0]["r"]) >= 0.95


# --------------------------------------------------------------------------------------------
# linear probes
# --------------------------------------------------------------------------------------------
def test_ridge_without_penalty_is_least_squares():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(40, 3)) * [1, 10, 0.1]
    y = X @ [0.5, -0.2, 3.0] + 1.5 + rng.normal(size=40) * 0.1
    w, b = P.ridge(X, y, 0.0)
    ref = np.linalg.lstsq(np.hstack([X, np.ones((40, 1))]), y, rcond=None)[0]
    np.testing.assert_allclose(np.append(w, b), ref, rtol=1e-9, atol=1e-9)


def test_ridge_with_a_penalty_shrinks_as_the_normal_equations_say():
    rng = np.random.default_rng(4)
    X, y = rng.normal(size=(30, 2)), rng.normal(size=30)
    w, b = P.ridge(X, y, 5.0)
    Z = (X - X.mean(0)) / X.std(0)
    ws = np.linalg.inv(Z.T @ Z + 5.0 * np.eye(2)) @ Z.T @ (y - y.mean())  # by the formula, independently
    np.testing.assert_allclose(w, ws / X.std(0), rtol=1e-10)
    assert np.linalg.norm(ws) < np.linalg.norm(np.linalg.lstsq(Z, y - y.mean(), rcond=None)[0])


def test_logistic_on_a_non_separable_case_reaches_the_closed_form_maximum():
    # one binary input: the MLE is the empirical log-odds, b = logit(1/4) at x = 0, b + w = logit(3/4) at x = 1
    x = np.array([0, 0, 0, 0, 1, 1, 1, 1], float)[:, None]
    y = np.array([1, 0, 0, 0, 1, 1, 1, 0], float)
    w, b = P.logistic(x, y, l2=1e-12)
    assert b == pytest.approx(-np.log(3), abs=1e-6)
    assert w[0] == pytest.approx(2 * np.log(3), abs=1e-6)


def test_logistic_on_a_separable_case_is_exact_and_finite():
    x = np.array([-2, -1, -0.5, 0.5, 1, 2], float)[:, None]
    y = np.array([0, 0, 0, 1, 1, 1], float)
    w, b = P.logistic(x, y)
    assert np.isfinite(w).all() and w[0] > 0
    assert ((x[:, 0] * w[0] + b > 0) == (y == 1)).all()


def test_logistic_says_when_irls_has_not_converged_and_a_warm_start_reaches_the_same_optimum():
    from model.analysis.linear import NotConverged

    rng = np.random.default_rng(6)
    X = rng.standard_normal((500, 4))
    y = (X @ [1.0, -2.0, 0.5, 0.0] + rng.standard_normal(500) > 0).astype(float)
    with pytest.raises(NotConverged, match="did not converge in 2 steps"):
        P.logistic(X, y, iters=2)
    cold = P.logistic(X, y, l2=1.0)
    warm = P.logistic(X, y, l2=1.0, start=P.logistic(X, y, l2=100.0))
    np.testing.assert_allclose(np.append(*warm), np.append(*cold), atol=1e-8)


def test_the_split_is_by_document_and_deterministic():
    starts = np.arange(0, 101, 10)
    train, test, how = P.split(starts, 100)
    assert how == "documents" and train and test
    assert sorted(train + test) == [(a, a + 10) for a in range(0, 100, 10)]
    assert P.split(starts, 100) == (train, test, how)
    train, test, how = P.split(np.array([0, 100]), 100)
    assert how == "parts" and test == [(40, 50), (90, 100)]


def dyck_index() -> tuple[MemoryIndex, np.ndarray]:
    """Twelve dyck strings as an index, and a 0/1 feature (depth at least 2) the units carry only in part."""
    net = model.load("dyck")
    rng = np.random.default_rng(5)
    texts = ["".join(rng.choice(list("(())((()))"), 40)) for _ in range(12)]
    traces = [net.trace(t, probs=False) for t in texts]
    y = np.concatenate([F.values("depth", F.Tokens.of_trace(net, t)) for t in traces]) >= 2
    return MemoryIndex(traces), y.astype(np.float64)


def test_the_held_out_split_is_by_whole_documents():
    index, _ = dyck_index()
    train, test, how = P.split(index.doc_starts, index.steps)
    docs = [(int(a), int(b)) for a, b in zip(index.doc_starts[:-1], index.doc_starts[1:])]
    assert how == "documents" and 1 <= len(test) < len(docs)
    assert sorted(train + test) == docs  # every range is one whole document, each on one side only


def test_no_held_out_step_chooses_or_fits_anything():
    """Flip the feature on the held-out documents: if none of their steps entered the unit choice, the penalty's
    cross-validation or the fit, every probe is the same and scores exactly 1 − its accuracy. Scramble their
    activations: the choice, the penalties and the fit stay the same."""
    index, y = dyck_index()
    held = np.zeros(index.steps, bool)
    for a, b in P.split(index.doc_starts, index.steps)[1]:
        held[a:b] = True
    ranking = P.rank(index, y)
    base = P.linear(index, y, ranking)
    flipped = P.linear(index, np.where(held, 1 - y, y), ranking)
    same = ("layer", "gate", "units", "penalty", "fit_score", "train_steps", "test_steps")
    assert {k: flipped[k] for k in same} == {k: base[k] for k in same}
    for name in ("top1", "top8", "all", "layer_all"):
        assert flipped[name] == pytest.approx(1 - base[name], abs=2e-4), name
    rng = np.random.default_rng(0)
    for k in range(index.layers):
        for g in index.gates:
            a = index._acts[k][g]
            a[held] = rng.standard_normal(a[held].shape).astype(np.float16) * 5
    scrambled = P.linear(index, y, P.rank(index, y))
    assert {k: scrambled[k] for k in same} == {k: base[k] for k in same}
    assert base["chosen_on"] == "fit" and base["all"] > scrambled["all"]


def test_the_penalty_is_chosen_by_cross_validation_over_fit_documents():
    rng = np.random.default_rng(2)
    groups = np.repeat(np.arange(6), 200)  # (1200,) six documents
    X = rng.standard_normal((1200, 40))
    noise = rng.standard_normal(1200)  # no relation to X: the largest penalty predicts best
    assert P.choose_penalty(False, X, noise, groups)[0] == max(P.RIDGE_ALPHAS)
    y = X @ rng.standard_normal(40) + 0.01 * noise  # nearly exact: the smallest penalty
    assert P.choose_penalty(False, X, y, groups)[0] == min(P.RIDGE_ALPHAS)
    # each document its own level, which only a one-hot of the document carries: steps of the same document would
    # reward learning it (the smallest penalty); unseen documents cannot be predicted by it (the largest)
    levels = np.eye(6)[groups] * 1.0  # (1200, 6)
    by_doc = rng.standard_normal(6)[groups] * 3 + 0.1 * noise
    assert P.choose_penalty(False, levels, by_doc, groups)[0] == max(P.RIDGE_ALPHAS)
    labels = (X[:, 0] + 0.1 * noise > 0).astype(float)
    l2, how = P.choose_penalty(True, X, labels, groups)
    assert l2 in P.LOGISTIC_L2S and "3-fold" in how
    assert P.choose_penalty(True, X, labels, np.zeros(1200, int))[1].startswith("default")


def test_dyck_depth_probe_top_unit_and_linear_probe():
    net = model.load("dyck")
    text = "(()(()))((((()))))()(((())))$" * 10
    tr = net.trace(text, probs=False)
    result = P.probe(tr, F.values("depth", F.Tokens.of_trace(net, tr)), fit=True)
    assert abs(result["best"]["r"]) >= 0.95
    assert len(result["best"]["curve"]["feature"]) == len(result["best"]["curve"]["unit"]) == len(text)
    lin = result["linear"]
    assert lin["metric"] == "r2" and lin["all"] >= lin["top1"] >= 0.9


def test_code_in_string_logistic_probe_over_all_units_on_held_out_files(tmp_path):
    """The in-string probe over all units of the code model's c, fit on held-out stdlib files and scored on
    other held-out files (split by file). Measured here: accuracy 0.877 (the majority class 0.808), balanced 0.81;
    over 300,000 characters of 19 files 0.87 (h and c together 0.87, the fit's own training accuracy 0.88: the
    units are not linearly separable to the issue's 0.9). Over all 75 held-out files (1,167,905 steps; 59 fit,
    16 scored), units and penalties chosen on the fit files: c 0.875, the layer's h and c together ("layer_all")
    0.875 (0.902 on its fit steps), the majority class 0.778 (README, Probes)."""
    from model.analysis.index import build
    from model.tasks import CodeTask

    net, task = model.load("code"), CodeTask()
    files = [task._text[p][:2500] for p in task.heldout_files[:8]]
    index = build(net, files, tmp_path / "code.zarr", scheduler="sync")  # a small code index of held-out files
    y = F.values("in_string", F.Tokens.of_index(net, index), python=True)
    assert y.shape == (index.steps,) and index.docs == 8
    result = P.probe(index, y, gate="c", fit=True)
    lin = result["linear"]
    assert lin["metric"] == "accuracy" and lin["split"] == "documents" and lin["test_docs"] >= 1
    held = np.concatenate([y[a:b] for a, b in P.split(index.doc_starts, index.steps)[1]])
    majority = max(held.mean(), 1 - held.mean())
    assert lin["all"] >= 0.8 and lin["all"] > majority, (lin, majority)
    assert lin["all"] >= lin["top1"] and lin["balanced_accuracy"]["all"] >= 0.7
    assert lin["layer_gates"] == ["c", "h"] and lin["units"]["layer_all"] == 256  # the index records h and C
    assert lin["layer_all"] >= lin["all"] - 0.02, lin


# --------------------------------------------------------------------------------------------
# the compiled sums the rankings are formed from (model/analysis/sums.py)
# --------------------------------------------------------------------------------------------
def test_the_float16_sums_equal_float64_ones():
    from model.analysis.sums import weighted_sum

    rng = np.random.default_rng(0)
    X = (rng.standard_normal((3000, 7)) * 40).astype(np.float16)  # (T, W) as an index stores them
    X[:50, 0] = np.float16(3e-6)  # subnormal
    X[50:90, 1] = -0.0
    X[:, 2] = 60000  # near float16's largest
    y = rng.standard_normal(3000).astype(np.float32)
    exact = y.astype(np.float64) @ X.astype(np.float64)  # (W,)
    scale = np.abs(y).astype(np.float64) @ np.abs(X).astype(np.float64)  # (W,) what float32 sums round against
    assert (np.abs(weighted_sum(X, y) - exact) <= 1e-6 * scale).all()


def test_the_one_pass_moments_equal_numpy_in_float64_also_for_a_view_of_a_wider_array():
    from model.analysis.sums import group_moments, moments, shared

    rng = np.random.default_rng(1)
    wide = rng.standard_normal((1500, 12)).astype(np.float32)  # (T, 4H) as a trace's pre-activations
    wide[:, 5] = 1000.0 + 1e-3 * rng.standard_normal(1500).astype(np.float32)  # far from 0, a tiny spread
    wide[:, 7] = 0.3  # constant: no r
    wide[:1024, 10], wide[1024:, 10] = 0.2, 0.7  # two constant stretches, whole blocks each: not constant
    gates = [wide[:, 0:3], wide[:, 3:6], np.ascontiguousarray(wide[:, 6:9]), wide[:, 9:12]]
    y = rng.standard_normal(1500)
    assert shared(gates) == [[0, 1, 3], [2]]
    got = [m for group in shared(gates) for m in group_moments(gates, group, y)]
    for X, (mean, m2, sy) in zip([gates[0], gates[1], gates[3], gates[2]], got):
        x = X.astype(np.float64)
        np.testing.assert_allclose(mean, x.mean(0), rtol=1e-12)
        np.testing.assert_allclose(m2, ((x - x.mean(0)) ** 2).sum(0), rtol=1e-9)
        np.testing.assert_allclose(sy, y @ x, rtol=1e-9, atol=1e-9)
        np.testing.assert_array_equal(m2 == 0, x.max(0) == x.min(0))  # the test for a constant unit
    np.testing.assert_allclose(moments(gates[1], y)[1], got[1][1], rtol=1e-12)
