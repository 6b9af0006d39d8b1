"""The bundled models: each loads and meets its target on held-out data this test generates or reads
(a different seed from the one the trainer evaluated with), and together they stay small."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

import model
from model.card import telling_units
from model.tasks import get_task

#: What each bundled model was trained to reach: (metric, comparison, bound).
TARGETS = {
    "code": ("bits_per_char", "<=", 1.8),
    "dyck": ("string_accuracy", ">=", 1.0),
    "recall-lstm": ("accuracy", ">=", 0.99),
    "recall-peephole": ("accuracy", ">=", 0.99),
    "recall-coupled": ("accuracy", ">=", 0.99),
    "recall-gru": ("accuracy", ">=", 0.99),
    "adding-lstm": ("mse", "<=", 0.01),  # the baseline of always answering 1 is 0.167
    "co2-lstm": ("rmse_ppm", "<=", 0.45),  # "the same as last week": 0.48 ppm (test_the_forecaster_beats_...)
}
#: A held-out seed the trainer never used (it evaluates with 1234).
SEED = 4242


#: The bundled plain RNN, whose card says it stays at chance: it names one of four symbols, 25%.
AT_CHANCE = {"recall-rnn": 0.25}
#: Every bundled model, by name; each test below runs over all of them (never over an empty list).
BUNDLED = sorted(TARGETS) + sorted(AT_CHANCE)


def test_every_bundled_model_has_a_target_or_a_chance_level_and_each_is_bundled():
    assert sorted(model.available()) == sorted(BUNDLED)


def binomial_interval(n: int, p: float, level: float = 0.999) -> tuple[float, float]:
    """The central ``level`` interval of the share of hits in n trials with hit probability p (exact binomial)."""
    pmf = [math.comb(n, k) * p**k * (1 - p) ** (n - k) for k in range(n + 1)]
    tail, lo, hi = (1 - level) / 2, 0, n
    while sum(pmf[: lo + 1]) < tail:
        lo += 1
    while sum(pmf[hi:]) < tail:
        hi -= 1
    return lo / n, hi / n


def test_the_chance_band_is_the_binomial_one():
    """1,000 held-out sequences at 25%: a standard deviation of 1.4 points, so 99.9% fall within about ±4.5."""
    lo, hi = binomial_interval(1000, 0.25)
    assert 0.20 < lo < 0.21 and 0.29 < hi < 0.30, (lo, hi)


@pytest.mark.parametrize("name", BUNDLED)
def test_a_bundled_model_meets_its_target_on_fresh_heldout_data(name):
    net = model.load(name)
    training = net.spec.meta["training"]
    task = get_task(training["task"], **training.get("task_options", {}))
    metrics = task.evaluate(net, seed=SEED)
    if name in AT_CHANCE:  # as its card says: what it names after "?" is right a quarter of the time
        lo, hi = binomial_interval(task.eval_sequences, AT_CHANCE[name])
        for key in ("accuracy", "accuracy_long"):
            assert lo <= metrics[key] <= hi, (name, key, metrics[key], (lo, hi))
        return
    key, op, bound = TARGETS[name]
    assert (metrics[key] <= bound) if op == "<=" else (metrics[key] >= bound), (name, metrics)


def test_bundled_weights_stay_under_10_mb():
    total = sum(p.stat().st_size for p in model.PRETRAINED.rglob("*.safetensors"))
    assert total < 10 * 2**20


def _close(a, b):
    """Card numbers against recomputed ones: equal structure, numbers within 1e-3."""
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_close(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_close(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and isinstance(b, float):
        return abs(a - b) <= 1e-3
    return a == b


@pytest.mark.parametrize("name", BUNDLED)
def test_the_cards_claims_are_recomputed_from_the_weights(name):
    card = json.loads((model.PRETRAINED / name / "card.json").read_text())
    net = model.load(name)
    task = get_task(card["task"], **card["task_options"])
    assert card["cell"] == net.cell and card["hidden_size"] == net.hidden_size
    assert card["command"].startswith("gatescope train ") and f"--out model/pretrained/{name}" in card["command"]
    assert _close(card["telling_units"], telling_units(net, task)), (card["telling_units"], telling_units(net, task))


def test_the_lstm_holds_its_memory_with_a_forget_gate_near_one():
    """The seed's argument, measured: the unit that holds the first symbol barely forgets."""
    net = model.load("recall-lstm")
    memory = telling_units(net, get_task("recall"))["memory"]
    assert memory["separation"] > 0.95 and memory["mean_forget"] > 0.95, memory


def test_the_adding_lstm_stores_at_the_markers_and_holds_until_the_end():
    """What adding-lstm's description says to look for, measured: an input gate that opens at the markers
    (r with the marker) and a forget gate near 1 over the unmarked steps."""
    card = json.loads((model.PRETRAINED / "adding-lstm" / "card.json").read_text())
    store = telling_units(model.load("adding-lstm"), get_task("adding", **card["task_options"]))["store"]
    assert store["gate"] == "i" and store["r"] > 0.9 and store["mean_forget"] > 0.95, store


def test_the_co2_lstm_follows_the_level_closely_and_the_season_weakly():
    """co2-lstm's description: most units follow the level, a few the season (weaker)."""
    units = telling_units(model.load("co2-lstm"), get_task("co2"))
    assert abs(units["level"]["r"]) > 0.95 > abs(units["season"]["r"]) > 0.3, units
    net, x = model.load("co2-lstm"), get_task("co2").series[:, None]
    c = net.trace(x).layers[0]["c"][30:-30].astype(float)
    level = np.convolve(x[:, 0], np.ones(52) / 52, mode="same")[30:-30]
    r = np.array([np.corrcoef(c[:, u], level)[0, 1] for u in range(net.hidden_size)])
    assert (np.abs(r) > 0.9).mean() > 0.5, np.round(r, 2)  # "most units follow the level"


def test_one_dyck_unit_counts_the_depth():
    assert "dyck" in model.available()
    depth = telling_units(model.load("dyck"), get_task("dyck"))["depth"]
    assert abs(depth["r"]) >= 0.95, depth


@pytest.mark.parametrize("name", ["adding-lstm", "co2-lstm"])
def test_a_regression_cards_heldout_error_and_baseline_are_recomputed(name):
    """The card's held-out error and the baseline beside it are the task's evaluation of the saved weights."""
    card = json.loads((model.PRETRAINED / name / "card.json").read_text())
    net = model.load(name)
    assert (card["input"], card["head"]) == ("vectors", "values")
    metrics = get_task(card["task"], **card["task_options"]).evaluate(net)  # the trainer's seed: the card's numbers
    assert _close({k: v for k, v in card["heldout"].items() if k != "step"}, metrics), (card["heldout"], metrics)


def test_the_adding_model_beats_always_answering_one():
    metrics = get_task("adding", length=30).evaluate(model.load("adding-lstm"), seed=SEED)
    assert abs(metrics["baseline_mse"] - 1 / 6) < 0.02  # E[(v_a + v_b - 1)^2] = 2/12 for v ~ U(0, 1)
    assert metrics["mse"] < metrics["baseline_mse"] / 10, metrics


def test_the_forecaster_beats_the_same_as_last_week():
    metrics = get_task("co2").evaluate(model.load("co2-lstm"))
    assert metrics["mse"] < metrics["naive_mse"] and metrics["rmse_ppm"] < metrics["naive_rmse_ppm"], metrics
    assert metrics["heldout_weeks"] > 400
