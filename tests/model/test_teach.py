"""The page's teaching text and the story's numbers (model/teach.py, model/story.py), each checked against a direct
computation: colah's LSTM and the plain RNN written out here in float64 from the weights (one-hot inputs: row x of
W), the RNN's gradient by its explicit backward, the correlations by their formula."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

import model
from model.story import chapters
from model.tasks import dyck_depth
from model.teach import bracket_depth, clean_hold, hold, lesson

#: float32 weights traced by gatescope against the float64 reference here.
TOL = 2e-3


def _card(name):
    return json.loads((model.PRETRAINED / name / "card.json").read_text())


def _ids(net, text):
    return [net.vocab.index(ch) for ch in text]


def _sigmoid(a):
    return 1 / (1 + np.exp(-a))


def _lstm(net, text):
    """colah's LSTM over text, float64: f, i, c_tilde, c, o, h (T, H) each, and p (T, V)."""
    P = {k: v.astype(np.float64) for k, v in net.params.items()}
    H = net.hidden_size
    h, c = np.zeros(H), np.zeros(H)
    out = {g: [] for g in ("f", "i", "c_tilde", "c", "o", "h", "p")}
    for x in _ids(net, text):
        a = {g: P[f"layers.0.W_{g}"][x] + h @ P[f"layers.0.U_{g}"] + P[f"layers.0.b_{g}"] for g in "fico"}
        f, i, ct, o = _sigmoid(a["f"]), _sigmoid(a["i"]), np.tanh(a["c"]), _sigmoid(a["o"])
        c = f * c + i * ct
        h = o * np.tanh(c)
        y = h @ P["head.W"] + P["head.b"]
        p = np.exp(y - y.max())
        for g, v in zip(out, (f, i, ct, c, o, h, p / p.sum())):
            out[g].append(v)
    return {g: np.array(v) for g, v in out.items()}


def _rnn(net, text):
    """The plain RNN h_t = tanh(W[x_t] + h_{t-1} U + b), float64: h (T, H), p (T, V)."""
    P = {k: v.astype(np.float64) for k, v in net.params.items()}
    h = np.zeros(net.hidden_size)
    hs, ps = [], []
    for x in _ids(net, text):
        h = np.tanh(P["layers.0.W_h"][x] + h @ P["layers.0.U_h"] + P["layers.0.b_h"])
        y = h @ P["head.W"] + P["head.b"]
        p = np.exp(y - y.max())
        hs.append(h)
        ps.append(p / p.sum())
    return np.array(hs), np.array(ps)


def _rnn_grad_ratio(net, text):
    """|d log p_T(first symbol) / d h_1| over |d ... / d h_T|, by the explicit backward through tanh and U."""
    P = {k: v.astype(np.float64) for k, v in net.params.items()}
    hs, ps = _rnn(net, text)
    target = np.zeros(len(net.vocab))
    target[net.vocab.index(text[0])] = 1
    g = P["head.W"] @ (target - ps[-1])  # d log p / d h_T  (H,)
    last = np.linalg.norm(g)
    for t in range(len(text) - 1, 1, -1):
        g = P["layers.0.U_h"] @ (g * (1 - hs[t] ** 2))  # through h_t = tanh(...h_{t-1} U...) to h_{t-1}
    return np.linalg.norm(g) / last


def _written(x):
    """x as the page writes it: one digit times a power of ten, "9 × 10⁻²¹"."""
    e = int(np.floor(np.log10(x)))
    m = round(x / 10.0**e)
    if m == 10:
        m, e = 1, e + 1
    sup = str(e).translate(str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹"))
    return f"{m}\u00a0×\u00a010{sup}"


def test_the_recall_lstm_hold_is_what_the_equations_give():
    net, card = model.load("recall-lstm"), _card("recall-lstm")
    j = card["telling_units"]["memory"]["unit"]
    for text in card["examples"]:
        ref = _lstm(net, text)
        m = hold(net, text, 0, j)
        f = ref["f"][1:-1, j]
        assert m["f_min"] == pytest.approx(f.min(), abs=TOL) and m["f_max"] == pytest.approx(f.max(), abs=TOL)
        assert m["f_mean"] == pytest.approx(f.mean(), abs=TOL)
        assert m["i_first"] == pytest.approx(ref["i"][0, j], abs=TOL)
        assert m["i_mean"] == pytest.approx(ref["i"][1:-1, j].mean(), abs=TOL)
        assert m["start"] == pytest.approx(ref["c"][0, j], abs=TOL) and m["end"] == pytest.approx(
            ref["c"][-2, j], abs=TOL
        )
        assert m["drift"] == pytest.approx(np.abs(ref["c"][1:-1, j] - ref["c"][0, j]).max(), abs=TOL)
        for s, p in m["answer"].items():
            assert p == pytest.approx(ref["p"][-1, net.vocab.index(s)], abs=TOL)


def test_the_clean_hold_is_the_example_whose_memory_moves_least_and_opens_the_page():
    net, card = model.load("recall-lstm"), _card("recall-lstm")
    j = card["telling_units"]["memory"]["unit"]
    drift = [np.abs(_lstm(net, x)["c"][1:-1, j] - _lstm(net, x)["c"][0, j]).max() for x in card["examples"]]
    best = int(np.argmin(drift))
    assert clean_hold(net, card["examples"], 0, j) == best
    assert lesson(net, card)["examples"][0] == card["examples"][best]  # the page's default example
    assert drift[best] < 0.5 * max(drift)  # a clean hold beside a drifting one (0.11 against 3.5 and 10.5)


def test_the_rnn_says_it_fails_with_its_chance_answer_and_its_vanishing_gradient():
    net, card = model.load("recall-rnn"), _card("recall-rnn")
    taught = lesson(net, card)
    text = taught["examples"][0]
    _, ps = _rnn(net, text)
    desc = taught["description"]
    assert "fails" in desc and "forget gate held near 1" not in desc
    said = dict(re.findall(r"\b([abcd]) (\d+\.\d)%", desc))
    assert sorted(said) == ["a", "b", "c", "d"]
    for s, pct in said.items():
        assert float(pct) == pytest.approx(100 * ps[-1, net.vocab.index(s)], abs=0.051)
        assert abs(float(pct) - 25) < 2  # chance, as it says
    ratio = _rnn_grad_ratio(net, text)
    assert taught["measured"]["grad_ratio"] == pytest.approx(ratio, rel=0.05)
    assert _written(ratio) in desc and ratio < 1e-10


@pytest.mark.parametrize("name", ["recall-gru", "recall-coupled"])
def test_the_gru_and_the_coupled_cell_are_not_told_to_look_for_a_held_forget_gate(name):
    net, card = model.load(name), _card(name)
    taught = lesson(net, card)
    desc, m = taught["description"], taught["measured"]
    assert "forget gate held near 1" not in desc and "holds the symbol" in desc
    if name == "recall-gru":
        assert "no forget gate" in desc and f"{m['keep_mean']:.2f}" in desc
    else:
        j = card["telling_units"]["memory"]["unit"]
        f = _lstm_coupled_f(net, taught["examples"][0], j)
        assert m["f_mean"] == pytest.approx(f, abs=TOL) and f"f averages {f:.2f}" in desc and f < 0.9


def _lstm_coupled_f(net, text, j):
    """The coupled cell's forget gate of unit j over the digits: C = f*C + (1 - f)*C~, float64."""
    P = {k: v.astype(np.float64) for k, v in net.params.items()}
    h, c, fs = np.zeros(net.hidden_size), np.zeros(net.hidden_size), []
    for x in _ids(net, text):
        f = _sigmoid(P["layers.0.W_f"][x] + h @ P["layers.0.U_f"] + P["layers.0.b_f"])
        ct = np.tanh(P["layers.0.W_c"][x] + h @ P["layers.0.U_c"] + P["layers.0.b_c"])
        o = _sigmoid(P["layers.0.W_o"][x] + h @ P["layers.0.U_o"] + P["layers.0.b_o"])
        c = f * c + (1 - f) * ct
        h = o * np.tanh(c)
        fs.append(f[j])
    return float(np.mean(fs[1:-1]))


@pytest.mark.parametrize(("name", "depth"), [("dyck", dyck_depth), ("code", bracket_depth)])
def test_the_deepest_example_opens_and_its_depth_r_is_pearsons(name, depth):
    net, card = model.load(name), _card(name)
    taught = lesson(net, card)
    deepest = max(card["examples"], key=lambda x: max(depth(x)))
    assert taught["examples"][0] == deepest and max(depth(deepest)) >= 4  # not '()$', nor depth 1
    unit = card["telling_units"]["depth"]["unit"] if name == "dyck" else 118
    v, d = _lstm(net, deepest)["c"][:, unit], np.asarray(depth(deepest), np.float64)
    r = ((v - v.mean()) * (d - d.mean())).sum() / np.sqrt(((v - v.mean()) ** 2).sum() * ((d - d.mean()) ** 2).sum())
    assert taught["measured"]["r"] == pytest.approx(r, abs=TOL)
    assert taught["measured"]["at_deepest"] == pytest.approx(v[int(np.argmax(d))], abs=TOL)


def test_the_story_chapters_state_what_their_model_computes():
    names = ["recall-lstm", "recall-rnn", "dyck", "code"]
    story = chapters({n: (model.load(n), _card(n)) for n in names})
    assert [c["id"] for c in story] == [
        "unit-and-gate",
        "forget-holds",
        "rnn-fails",
        "dyck-counter",
        "code-brackets",
        "your-own",
    ]
    for ch in story:
        net = model.load(ch["model"])
        assert 0 <= ch["t"] < len(ch["text"]) and 0 <= ch["unit"] < net.hidden_size
        assert ch["highlight"] is None or ch["highlight"] in net.gates
        assert ch["words"].count(". ") + ch["words"].count(": ") >= 1  # a few sentences, not a label
    by = {c["id"]: c for c in story}
    gate = by["unit-and-gate"]
    ref = _lstm(model.load("recall-lstm"), gate["text"])
    assert f"input gate is {ref['i'][0, gate['unit']]:.2f}" in gate["words"]
    held = by["forget-holds"]
    f = ref["f"][1:-1, held["unit"]]
    assert f"between {f.min():.2f} and {f.max():.2f}" in held["words"] and held["highlight"] == "f"
    rnn = by["rnn-fails"]
    assert rnn["text"] == held["text"]  # the same task, the same text
    assert _written(_rnn_grad_ratio(model.load("recall-rnn"), rnn["text"])) in rnn["words"]
    dy = by["dyck-counter"]
    assert dy["t"] == int(np.argmax(dyck_depth(dy["text"]))) and f"{max(dyck_depth(dy['text']))} open" in dy["words"]


def test_a_chapter_whose_model_is_missing_is_left_out():
    story = chapters({"dyck": (model.load("dyck"), _card("dyck"))})
    assert [c["id"] for c in story] == ["dyck-counter"]
