"""Interventions (model/interventions.py, model/held.py) against a loop written here from the cells' equations.

The reference loop computes each step's values one gate at a time in float64 (σ as 1 / (1 + e^-a)) and
overwrites the held units the moment a value is computed, before anything reads it: the textbook meaning
of holding a unit. It shares no code with gatescope's loops.
"""

from __future__ import annotations

import functools
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import model
from model import InputError, Network, Spec
from model.interventions import effect, mask

D, H, T = 3, 5, 9


def net_of(cell: str, layers: int = 1, reset_after: bool = False, seed: int = 0, proj: int | None = None) -> Network:
    rng = np.random.default_rng(seed)
    spec = Spec(cell, D, H, num_layers=layers, reset_after=reset_after, output_size=4, head="classes", proj_size=proj)
    params = {}
    for name in spec.param_names():
        shape = spec.expected_shape(name)
        leaf = name.rsplit(".", 1)[-1]
        params[name] = rng.uniform(-1.0, 1.0, shape) if leaf.startswith("b") else rng.normal(0.0, 0.6, shape)
    return Network(spec, params, np.float64)


X = np.random.default_rng(7).normal(0.0, 1.0, (T, D))


def sig(a):
    return 1.0 / (1.0 + np.exp(-a))


def hand_trace(net: Network, x: np.ndarray, interventions: list[dict]) -> list[dict[str, np.ndarray]]:
    """Every layer's gates, step by step from the equations, each held value overwritten when computed."""

    def hold(k: int, gate: str, t: int, v: np.ndarray) -> np.ndarray:
        v = v.copy()
        for it in interventions:
            units = it.get("units", [it.get("unit")])
            lo, hi = it.get("from", 0), it.get("to", len(x))
            if it["layer"] != k or it["gate"] != gate or not lo <= t < hi:
                continue
            for u in units:
                if it["op"] == "set":
                    v[u] = it["value"]
                elif it["op"] == "scale":
                    v[u] = v[u] * it["value"]
                elif it["op"] == "zero":
                    v[u] = 0.0
                else:  # patch: the source's own plain run at step t
                    v[u] = it["_source"][k][gate][t, u]
        return v

    out, inp = [], x
    for k in range(net.num_layers):
        P = {n.split(".")[-1]: np.asarray(a, np.float64) for n, a in net.params.items() if n.startswith(f"layers.{k}.")}
        pre = lambda g, x_t, h, P=P: x_t @ P[f"W_{g}"] + h @ P[f"U_{g}"] + P[f"b_{g}"]  # noqa: E731
        h, c = np.zeros(net.spec.out_size), np.zeros(H)
        rec: dict[str, list] = {g: [] for g in net.gates}
        for t, x_t in enumerate(inp):
            g: dict[str, np.ndarray] = {}
            if net.cell in ("lstm", "peephole", "coupled"):
                peep_f = P["p_f"] * c if net.cell == "peephole" else 0.0
                peep_i = P["p_i"] * c if net.cell == "peephole" else 0.0
                g["f"] = hold(k, "f", t, sig(pre("f", x_t, h) + peep_f))
                if net.cell == "coupled":
                    g["i"] = 1.0 - g["f"]
                else:
                    g["i"] = hold(k, "i", t, sig(pre("i", x_t, h) + peep_i))
                g["c_tilde"] = hold(k, "c_tilde", t, np.tanh(pre("c", x_t, h)))
                if net.cell == "lstm":
                    g["o"] = hold(k, "o", t, sig(pre("o", x_t, h)))
                c = hold(k, "c", t, g["f"] * c + g["i"] * g["c_tilde"])
                g["c"] = c
                if net.cell == "peephole":
                    g["o"] = hold(k, "o", t, sig(pre("o", x_t, h) + P["p_o"] * c))  # o sees the held C_t
                elif net.cell == "coupled":
                    g["o"] = hold(k, "o", t, sig(pre("o", x_t, h)))
                if net.spec.proj_size is None:
                    h = hold(k, "h", t, g["o"] * np.tanh(c))
                else:  # LSTMP: m = o*tanh(c), h = W_hr m
                    g["m"] = hold(k, "m", t, g["o"] * np.tanh(c))
                    h = hold(k, "h", t, g["m"] @ P["W_hr"])
            elif net.cell == "gru":
                g["z"] = hold(k, "z", t, sig(pre("z", x_t, h)))
                g["r"] = hold(k, "r", t, sig(pre("r", x_t, h)))
                if net.spec.reset_after:
                    a = x_t @ P["W_h"] + P["b_h"] + g["r"] * (h @ P["U_h"] + P["bU_h"])
                else:
                    a = x_t @ P["W_h"] + (g["r"] * h) @ P["U_h"] + P["b_h"]
                g["h_tilde"] = hold(k, "h_tilde", t, np.tanh(a))
                h = hold(k, "h", t, (1 - g["z"]) * h + g["z"] * g["h_tilde"])
            else:
                h = hold(k, "h", t, np.tanh(pre("h", x_t, h)))
            g["h"] = h
            for name in net.gates:
                rec[name].append(g[name])
        layer = {name: np.array(v) for name, v in rec.items()}
        out.append(layer)
        inp = layer["h"]
    return out


CELLS = [("lstm", False), ("peephole", False), ("coupled", False), ("gru", False), ("gru", True), ("rnn", False)]


def cases(cell: str) -> list[list[dict]]:
    """Interventions worth checking on a cell: every gate it has, every op, windows, two layers, overlaps."""
    gates = [g for g in model.GATES[cell] if not (cell == "coupled" and g == "i")]
    out = []
    for j, gate in enumerate(gates):
        out.append([{"layer": 0, "unit": j % H, "gate": gate, "op": "set", "value": 0.7, "from": 2, "to": 6}])
        out.append([{"layer": 1, "units": [0, 3], "gate": gate, "op": "scale", "value": -1.5, "from": 4}])
        out.append([{"layer": 0, "units": [1, 2], "gate": gate, "op": "zero"}])
    out.append(  # overlapping, in list order: a set then a scale of the same unit, and a window in each layer
        [
            {"layer": 0, "unit": 1, "gate": "h", "op": "set", "value": 0.5, "from": 1, "to": 7},
            {"layer": 0, "units": [1, 4], "gate": "h", "op": "scale", "value": 0.5, "from": 3, "to": 8},
            {"layer": 1, "unit": 2, "gate": gates[0], "op": "set", "value": 0.1, "to": 3},
        ]
    )
    return out


@pytest.mark.parametrize("cell,reset_after", CELLS)
def test_held_trace_equals_the_hand_run_loop(cell, reset_after):
    net = net_of(cell, layers=2, reset_after=reset_after)
    for its in cases(cell):
        tr = net.trace(X, interventions=its)
        want = hand_trace(net, X, its)
        for k in range(2):
            for g in net.gates:
                np.testing.assert_allclose(tr.layers[k][g], want[k][g], rtol=1e-10, atol=1e-12, err_msg=f"{its} {g}")
        plain = net.trace(X)
        first = min(it.get("from", 0) for it in its if it["layer"] == 0) if any(i["layer"] == 0 for i in its) else T
        for g in net.gates:  # the steps before the first held one are the plain run's, bit for bit
            assert np.array_equal(tr.layers[0][g][:first], plain.layers[0][g][:first])
        # the head reads the held top layer: its probabilities are the softmax of the held h
        y = want[1]["h"] @ net.params["head.W"] + net.params["head.b"]
        p = np.exp(y - y.max(1, keepdims=True))
        np.testing.assert_allclose(tr.probs, p / p.sum(1, keepdims=True), rtol=1e-9)


def test_a_projected_lstm_held_equals_the_hand_run_loop():
    net = net_of("lstm", layers=2, proj=3)
    cases = [
        [{"layer": 0, "unit": 4, "gate": "m", "op": "set", "value": 0.3, "from": 2}],
        [{"layer": 1, "units": [0, 2], "gate": "h", "op": "scale", "value": 2.0, "to": 5}],
        [
            {"layer": 0, "unit": 1, "gate": "c", "op": "zero"},
            {"layer": 1, "unit": 4, "gate": "f", "op": "set", "value": 1},
        ],
    ]
    for its in cases:
        tr, want = net.trace(X, interventions=its), hand_trace(net, X, its)
        for k in range(2):
            for g in net.gates:
                np.testing.assert_allclose(tr.layers[k][g], want[k][g], rtol=1e-10, atol=1e-12, err_msg=f"{its} {g}")
    with pytest.raises(InputError, match="'unit' 3 is out of range: layer 0 has h units 0 to 2"):
        net.trace(X, interventions=[{"layer": 0, "unit": 3, "gate": "h", "op": "zero"}])


@pytest.mark.parametrize("cell,reset_after", CELLS)
def test_patching_from_a_second_text(cell, reset_after):
    """Patching unit u from a second input equals that input's own trace for u at those steps (and a hand run)."""
    net = net_of(cell, layers=2, reset_after=reset_after, seed=3)
    text = "abcabcab"
    vocab_net = Network(
        Spec(cell, D, H, num_layers=2, reset_after=reset_after, vocab=list("abcd"), tokenizer="char", embedding=True),
        {**{n: a for n, a in net.params.items() if n.startswith("layers.")}, "embedding": X[:4]},
        np.float64,
    )
    source = "dcbaddcb"
    gate = "c" if cell in ("lstm", "peephole", "coupled") else "h"
    src = vocab_net.trace(source)
    for units in ([1, 3], [2]):  # several units (rows of an array a step), and one (a scalar a step)
        its = [{"layer": 1, "units": units, "gate": gate, "op": "patch", "source_text": source, "from": 2, "to": 6}]
        tr = vocab_net.trace(text, interventions=its)
        assert np.array_equal(tr.layers[1][gate][2:6, units], src.layers[1][gate][2:6, units])
        assert not np.allclose(tr.layers[1][gate][6:, units], vocab_net.trace(text).layers[1][gate][6:, units])
        ids = vocab_net.tokenizer.encode(text).ids
        want = hand_trace(vocab_net, X[:4][ids], [{**its[0], "_source": src.layers}])
        for g in vocab_net.gates:
            np.testing.assert_allclose(tr.layers[1][g], want[1][g], rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("cell,reset_after", CELLS)
def test_holding_nothing_is_the_plain_trace_bit_for_bit(cell, reset_after):
    net = net_of(cell, layers=2, reset_after=reset_after).astype(np.float32)
    plain = net.trace(X)
    for tr in (net.trace(X, interventions=[]), net.trace(X, interventions=None)):
        for k in range(2):
            for g in net.gates:
                assert np.array_equal(tr.layers[k][g], plain.layers[k][g])
        assert np.array_equal(tr.probs, plain.probs) and tr.intervened == []
    # a window held from the last step on leaves every earlier step's bits alone (the loops match step for step)
    tr = net.trace(X, interventions=[{"layer": 0, "unit": 0, "gate": "h", "op": "scale", "value": 1.0, "from": T - 1}])
    for g in net.gates:
        assert np.array_equal(tr.layers[0][g], plain.layers[0][g]), g


def test_intervened_lists_what_was_held_and_its_mask():
    net = net_of("lstm", layers=2)
    tr = net.trace(X, interventions=[{"layer": 1, "units": [0, 2], "gate": "c", "op": "set", "value": 1.0, "from": 3}])
    (it,) = tr.intervened
    assert (it.layer, it.units, it.gate, it.op, it.start, it.stop) == (1, (0, 2), "c", "set", 3, T)
    m = mask(tr, 1, "c")
    assert m.sum() == 2 * (T - 3) and m[3:, 0].all() and not m[:3].any() and not mask(tr, 0, "c").any()
    assert it.to_dict() == {"layer": 1, "units": [0, 2], "gate": "c", "op": "set", "value": 1.0, "from": 3, "to": T}


def test_a_held_trace_cut_and_continued_keeps_its_steps():
    net = net_of("lstm")
    its = [{"layer": 0, "unit": 1, "gate": "c", "op": "set", "value": 1.0, "from": 2, "to": 6}]
    a, b = net.trace(X[:4], interventions=its[:0]), net.trace(X[4:], interventions=[{**its[0], "from": 0, "to": 2}])
    whole = net.trace(X[:4], interventions=[{**its[0], "to": 4}]).then(
        net.trace(
            X[4:],
            state=net.trace(X[:4], interventions=[{**its[0], "to": 4}]).state,
            interventions=[{**its[0], "from": 0, "to": 2}],
        )
    )
    assert [(it.start, it.stop) for it in whole.intervened] == [(2, 4), (4, 6)]
    assert [(it.start, it.stop) for it in whole.head(3).intervened] == [(2, 3)] and not whole.head(2).intervened
    assert np.allclose(whole.layers[0]["c"], net.trace(X, interventions=its).layers[0]["c"])
    assert not a.intervened and len(b.intervened) == 1


def test_a_stoppable_run_in_chunks_equals_a_whole_run():
    net = net_of("gru", layers=2)
    x = np.random.default_rng(1).normal(0.0, 1.0, (100, D))
    its = [{"layer": 0, "unit": 1, "gate": "z", "op": "set", "value": 0.0, "from": 10, "to": 90}]
    net.chunk_steps = lambda: 16  # type: ignore[method-assign]
    a, b = net.trace(x, interventions=its), net.trace(x, interventions=its, stop=lambda: False)
    assert all(np.array_equal(a.layers[k][g], b.layers[k][g]) for k in range(2) for g in net.gates)


BAD = [
    ({"layer": 2, "unit": 0, "gate": "c", "op": "zero"}, "'layer' must be a layer from 0 to 1"),
    ({"layer": 0, "unit": 5, "gate": "c", "op": "zero"}, "'unit' 5 is out of range: layer 0 has units 0 to 4"),
    ({"layer": 0, "units": [], "gate": "c", "op": "zero"}, "'units' must be a non-empty list"),
    ({"layer": 0, "units": [1, 1], "gate": "c", "op": "zero"}, "lists a unit twice"),
    ({"layer": 0, "gate": "c", "op": "zero"}, "exactly one of 'unit'"),
    ({"layer": 0, "unit": 0, "gate": "z", "op": "zero"}, "'gate' must be one of f, i, c_tilde, c, o, h for a lstm"),
    ({"layer": 0, "unit": 0, "gate": "c", "op": "hold"}, "'op' must be one of set, scale, zero, patch"),
    ({"layer": 0, "unit": 0, "gate": "c", "op": "set"}, "'value' must be a finite number"),
    ({"layer": 0, "unit": 0, "gate": "c", "op": "set", "value": float("nan")}, "'value' must be a finite number"),
    ({"layer": 0, "unit": 0, "gate": "c", "op": "scale", "value": 10**400}, "'value' must be a finite number"),
    ({"layer": 0, "unit": 0, "gate": "c", "op": "zero", "value": 1.0}, "op 'zero' takes no 'value'"),
    ({"layer": 0, "unit": 0, "gate": "c", "op": "zero", "from": 5, "to": 5}, "'to' (5) must be after 'from' (5)"),
    ({"layer": 0, "unit": 0, "gate": "c", "op": "zero", "from": -1}, "'from' must be a step >= 0"),
    ({"layer": 0, "unit": 0, "gate": "c", "op": "zero", "to": T + 1}, f"go past the input's end: it has {T} steps"),
    ({"layer": 0, "unit": 0, "gate": "c", "op": "zero", "from": T}, f"'from' {T} is past the input's end"),
    ({"layer": 0, "unit": 0, "gate": "c", "op": "zero", "to": 2.5}, "'to' must be an integer"),
    ({"layer": 0, "unit": 0, "gate": "c", "op": "patch"}, "op 'patch' needs 'source_text'"),
    ({"layer": 0, "unit": 0, "gate": "c", "op": "set", "value": 1, "source_text": "ab"}, "for op 'patch' only"),
    ({"layer": 0, "unit": 0, "gate": "c", "op": "zero", "step": 3}, "unknown field 'step'"),
]


@pytest.mark.parametrize("item,words", BAD)
def test_bad_interventions_are_refused_naming_the_field(item, words):
    net = net_of("lstm", layers=2)
    ok = {"layer": 0, "unit": 0, "gate": "h", "op": "zero"}
    with pytest.raises(InputError) as e:
        net.trace(X, interventions=[ok, item])
    assert "intervention 1: " in str(e.value) and words in str(e.value), str(e.value)


def test_refusals_that_depend_on_the_model():
    with pytest.raises(InputError, match="'gate' must be one of z, r, h_tilde, h for a gru model, got 'c'"):
        net_of("gru").trace(X, interventions=[{"layer": 0, "unit": 0, "gate": "c", "op": "zero"}])
    with pytest.raises(InputError, match="coupled cell's i is 1 - f: hold f"):
        net_of("coupled").trace(X, interventions=[{"layer": 0, "unit": 0, "gate": "i", "op": "zero"}])
    with pytest.raises(InputError, match="this model reads vectors"):
        net_of("lstm").trace(X, interventions=[{"layer": 0, "unit": 0, "gate": "c", "op": "patch", "source_text": "a"}])
    spec = Spec("lstm", D, H, direction="bidirectional")
    rng = np.random.default_rng(0)
    bi = Network(spec, {n: rng.normal(0, 0.5, spec.expected_shape(n)) for n in spec.param_names()})
    with pytest.raises(InputError, match="forward networks only: this one is bidirectional"):
        bi.trace(X, interventions=[{"layer": 0, "unit": 0, "gate": "c", "op": "zero"}])
    net = model.load("dyck")
    with pytest.raises(InputError, match="'source_text' has 3 steps, and the patch needs 6"):
        net.trace("(())()", interventions=[{"layer": 0, "unit": 0, "gate": "c", "op": "patch", "source_text": "()$"}])


def test_an_overflowing_intervention_is_refused():
    net = net_of("lstm")
    with pytest.raises(InputError, match="overflow"):
        net.trace(
            np.ones((200, D)),
            interventions=[{"layer": 0, "units": [0, 1, 2, 3, 4], "gate": "f", "op": "set", "value": 1e6}],
        )


def test_effect_before_and_after():
    net = model.load("dyck")
    text = "((()))$"
    its = [{"layer": 0, "unit": 4, "gate": "c", "op": "set", "value": 0.0, "from": 2}]
    eff = effect(net, text, its, top_k=2)
    before, after = net.trace(text), net.trace(text, interventions=its)
    ids = net.tokenizer.encode(text).ids
    for t in range(len(text) - 1):
        assert eff.p_before[t] == before.probs[t, ids[t + 1]] and eff.p_after[t] == after.probs[t, ids[t + 1]]
    assert np.isnan(eff.p_before[-1])
    np.testing.assert_allclose(eff.dloglik[:-1], np.log(eff.p_after[:-1]) - np.log(eff.p_before[:-1]))
    assert (eff.dloglik[:2] == 0).all()  # before the hold nothing changed
    assert np.array_equal(eff.layers[0]["c"], after.layers[0]["c"] - before.layers[0]["c"])
    assert eff.top_after[0].shape == (len(text), 2)


def test_effect_of_a_classes_head_and_of_a_values_head():
    net = net_of("gru", layers=2)  # a classes head at every step
    its = [{"layer": 1, "unit": 0, "gate": "h", "op": "set", "value": 0.9, "from": 4}]
    eff, before, after = effect(net, X, its), net.trace(X), net.trace(X, interventions=its)
    assert np.array_equal(eff.probs_before, before.probs) and np.array_equal(eff.probs_after, after.probs)
    assert eff.p_before is None and np.array_equal(eff.probs_before[:4], eff.probs_after[:4])
    assert not np.allclose(eff.probs_before[4:], eff.probs_after[4:])
    co2 = model.load("co2-lstm")
    x = np.linspace(0.0, 1.0, 12)[:, None] * np.ones((1, co2.spec.input_size))
    eff = effect(co2, x, [{"layer": 0, "units": [0, 1], "gate": "c", "op": "zero", "from": 6}])
    assert eff.values_before.shape == eff.values_after.shape == (12, co2.spec.output_size)
    assert (
        np.array_equal(eff.values_before[:6], eff.values_after[:6])
        and (eff.values_before[6:] != eff.values_after[6:]).any()
    )


def depth_of(text: str) -> np.ndarray:
    return np.cumsum([1 if ch == "(" else -1 if ch == ")" else 0 for ch in text])  # after each symbol


def test_dyck_holding_the_depth_unit_at_depth_zero_lets_it_end_with_brackets_open():
    """The card's depth unit (layer 0, unit 4: r = -0.997 with depth), its C held at its depth-0 value (the mean
    of its C after balanced prefixes, 0.076), makes the model end where brackets are still open.

    Measured: the plain model gives the end '$' at most 0.004 wherever a bracket is open, and 0.22 to 0.28 at
    true depth 0 (it also allows '(' there). Held, right after each ')' with 1 to 3 brackets still open,
    P('$') is 0.23, 0.26, 0.48, 0.56, 0.27: the depth-0 level, 50 to 140 times the plain one. Right after a
    '(' it stays under 0.01: the symbol just read says "not the end" by itself (no Dyck string ends on '(')."""
    net = model.load("dyck")
    unit = 4  # the card's telling unit for depth
    ref = "()(())()((()))()(()())$"
    c = net.trace(ref).layers[0]["c"][:, unit]
    zero = float(c[depth_of(ref) == 0][:-1].mean())
    assert abs(zero - 0.076) < 0.01
    text = "((()(()))(()(("
    depth, closes = depth_of(text), np.array([ch == ")" for ch in text])
    assert (depth > 0).all()  # every step has a bracket open
    END = net.vocab.index("$")
    p0 = net.trace(text).probs[:, END]
    p1 = net.trace(text, interventions=[{"layer": 0, "unit": unit, "gate": "c", "op": "set", "value": zero}]).probs
    assert p0.max() < 0.01  # the plain model never ends with a bracket open
    assert p1[closes, END].min() > 0.2  # held at depth 0, it ends after each ')' (measured min 0.23, max 0.56)
    assert p1[closes, END].mean() > 30 * p0[closes].max()


def test_a_trace_buffer_with_interventions_equals_whole_traces():
    """Live typing: every update (text edits, interventions added, changed, removed) equals a whole trace."""
    net = model.load("dyck")
    buf = model.TraceBuffer(net)
    hold = {"layer": 0, "unit": 4, "gate": "c", "op": "set", "value": 0.1, "from": 3}
    patch = {"layer": 0, "units": [1, 2], "gate": "h", "op": "patch", "source_text": "(((((((((((((", "from": 1}
    steps = [
        ("(()(", []),
        ("(()(()", [hold]),
        ("(()(()))", [hold]),
        ("(()(()))", [{**hold, "from": 5}]),
        ("(()(()))(", [{**hold, "from": 5}, patch]),
        ("(()((", [patch]),
        ("(()((", [patch, {**hold, "to": 4}]),
        ("(()((())", []),
    ]
    for text, its in steps:
        k, new = buf.update(text, interventions=its)
        whole = net.trace(text, interventions=its)
        assert buf.trace is not None and len(new) == len(text) - k
        for g in net.gates:
            assert np.array_equal(buf.trace.layers[0][g], whole.layers[0][g]), (text, its, g)
        assert np.array_equal(buf.trace.probs, whole.probs)
        assert [it.to_dict() for it in buf.trace.intervened] == [it.to_dict() for it in whole.intervened]
    k, _ = buf.update("(()((())", interventions=[{**hold, "from": 6}])
    assert k == 6  # only the steps the new intervention touches are traced again
    with pytest.raises(InputError, match="intervention 0: 'unit'"):
        buf.update("(()((())", interventions=[{**hold, "unit": 99}])
    assert len(buf.trace) == 8  # a refused update changes nothing


TORCH = Path(__file__).parents[1] / "fixtures" / "torch_interventions"


def torch_cases():
    ref = np.load(TORCH / "lstm2.npz")
    n = len([k for k in ref.files if k.endswith(".interventions")])
    return ref, [json.loads(str(ref[f"case{j}.interventions"])) for j in range(n)]


def test_pytorch_forward_hooks_on_the_imported_weights_agree():
    """tests/fixtures/make_torch_interventions.py: nn.LSTMCell hooks holding h, and c (h recomputed from the cell's
    own o), on a 2-layer nn.LSTM's weights; gatescope reads its state_dict and holds the same units (1e-5)."""
    net = model.load(TORCH / "lstm2.safetensors")
    ref, cases = torch_cases()
    for j, its in enumerate(cases):
        tr = net.trace(ref["x"], interventions=its)
        for k in range(2):
            for g in ("h", "c"):
                np.testing.assert_allclose(tr.layers[k][g], ref[f"case{j}.l{k}.{g}"], atol=1e-5, err_msg=f"{j} {k} {g}")


def test_pytorch_forward_hooks_live():
    """The same hooks run now in torch (when it is installed), against gatescope on the same weights."""
    pytest.importorskip("torch")
    spec = importlib.util.spec_from_file_location("make_ti", TORCH.parent / "make_torch_interventions.py")
    assert spec is not None and spec.loader is not None
    make = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make)
    import torch
    from safetensors.torch import load_file

    lstm = torch.nn.LSTM(make.D, make.H, num_layers=make.L)
    lstm.load_state_dict(load_file(TORCH / "lstm2.safetensors"))
    net = model.load(TORCH / "lstm2.safetensors")
    ref, cases = torch_cases()
    x = torch.from_numpy(ref["x"])
    for its in cases + [[{"layer": 0, "units": [0, 3], "gate": "h", "op": "scale", "value": -0.5, "from": 4}]]:
        want, tr = make.run(lstm, x, its), net.trace(ref["x"], interventions=its)
        for k in range(2):
            for g in ("h", "c"):
                np.testing.assert_allclose(tr.layers[k][g], want[f"l{k}.{g}"], atol=1e-5)


JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers(-(10**20), 10**20) | st.floats() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3),
    max_leaves=5,
)
SANE = {
    "layer": st.integers(-1, 2),
    "unit": st.integers(-1, 9),
    "units": st.lists(st.integers(-1, 9), max_size=3),
    "gate": st.sampled_from(["c", "h", "f", "z", "i", "m"]),
    "op": st.sampled_from(["set", "scale", "zero", "patch"]),
    "value": st.floats(-2, 2) | st.none(),
    "source_text": st.sampled_from(["(()", "((((((((((", "", "x"]) | st.none(),
    "from": st.integers(-1, 12) | st.none(),
    "to": st.integers(-1, 12) | st.none(),
}


DYCK = functools.cache(lambda: model.load("dyck"))


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.fixed_dictionaries({}, optional={k: v | JSONISH for k, v in SANE.items()}), max_size=3))
def test_any_intervention_list_is_run_or_refused_in_words(items):
    """Whatever the fields hold, a trace runs (and records what it held) or an InputError says what is wrong."""
    net = DYCK()
    try:
        tr = net.trace("(()(()()", interventions=items)
    except InputError as e:
        assert str(e)
    else:
        assert len(tr.intervened) == len(items)
