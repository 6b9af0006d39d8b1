"""Short training runs (seconds): on every task the loss falls, and training is deterministic."""

from __future__ import annotations

import json

import numpy as np
import pytest

import model
from model.tasks import get_task
from model.train import TrainConfig, schedule, train


@pytest.mark.parametrize(
    ("task", "cell", "options"),
    [
        ("dyck", "lstm", {}),
        ("recall", "gru", {"min_gap": 3, "max_gap": 5}),
        ("code", "lstm", {"max_chars": 200_000, "eval_chars": 2_000}),
    ],
)
def test_a_short_run_lowers_the_loss(task, cell, options):
    cfg = TrainConfig(cell=cell, hidden=16, steps=150, batch=8, bptt=20, lr=1e-2, warmup=5)
    _, history = train(get_task(task, **options), cfg, progress=False)
    loss = history["loss"]
    assert np.mean(loss[-10:]) < 0.9 * np.mean(loss[:10]), (loss[:10], loss[-10:])


def test_training_is_deterministic_and_writes_a_loadable_model(tmp_path):
    task = get_task("dyck")
    cfg = TrainConfig(hidden=4, steps=20, batch=8, lr=1e-2, warmup=2)
    a, _ = train(task, cfg, tmp_path / "a", progress=False, command="gatescope train dyck")
    b, _ = train(task, cfg, tmp_path / "b", progress=False)
    for n in a.params:
        np.testing.assert_array_equal(a.params[n], b.params[n])
    loaded = model.load(tmp_path / "a")
    assert loaded.vocab == task.vocab and loaded.cell == "lstm"
    np.testing.assert_array_equal(loaded.trace("(()$").probs, a.trace("(()$").probs)
    card = loaded.spec.meta["training"]
    assert card["command"] == "gatescope train dyck" and card["steps_done"] == 20
    assert json.loads((tmp_path / "a" / "training.json").read_text())["evals"][-1]["step"] == 20


def test_init_trains_on_from_a_saved_models_weights(tmp_path):
    task = get_task("dyck")
    cfg = TrainConfig(hidden=4, steps=40, batch=8, lr=1e-2, warmup=2)
    a, first = train(task, cfg, tmp_path / "a", progress=False)
    # a learning rate too small to move anything: the run starts where a ended, not from a fresh init
    on = TrainConfig(hidden=4, steps=1, batch=8, lr=1e-12, lr_min=1e-12, warmup=0, init=str(tmp_path / "a"))
    b, later = train(task, on, progress=False)
    for n in a.params:
        np.testing.assert_allclose(b.params[n], a.params[n], rtol=0, atol=1e-9)
    assert later["loss"][0] < 0.9 * first["loss"][0], (later["loss"][0], first["loss"][0])


def test_the_schedule_warms_up_then_decays_to_lr_min():
    cfg = TrainConfig(steps=100, warmup=10, lr=1e-2, lr_min=1e-4)
    lrs = [schedule(cfg, s) for s in range(100)]
    assert lrs[0] == pytest.approx(1e-3) and lrs[9] == pytest.approx(1e-2)
    assert all(x >= y for x, y in zip(lrs[10:], lrs[11:], strict=False))
    assert lrs[-1] == pytest.approx(1e-4, rel=0.05)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["train", "nope"], "unknown task 'nope'"),
        (["train", "dyck", "--hidden", "0"], "hidden_size must be a positive integer"),
        (["train", "recall", "--option", "min_gap=9", "--option", "max_gap=3"], "min_gap <= max_gap"),
        (["train", "dyck", "--option", "oops"], "is not KEY=VALUE"),
    ],
)
def test_the_train_command_refuses_bad_input_with_a_message(args, message, tmp_path, capsys):
    from app.cli import main

    assert main([*args, "--steps", "2", "--out", str(tmp_path / "m")]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
