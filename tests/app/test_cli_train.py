"""``gatescope train``: a flag for every TrainConfig field, progress a person can read, refusals in words."""

from __future__ import annotations

import io
import json
from dataclasses import fields

import pytest

from app.cli import main
from model.train import Progress, TrainConfig


def test_every_config_field_is_a_flag_and_reaches_the_training(tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["train", "dyck", "--hidden", "4", "--steps", "20", "--lr-min", "2e-5", "--warmup", "3", "--clip", "0.5"]
    assert main([*argv, "--option", "max_len=40", "--out", str(out)]) == 0
    config = json.loads((out / "training.json").read_text())["config"]
    assert (config["lr_min"], config["warmup"], config["clip"], config["hidden"]) == (2e-5, 3, 0.5, 4)
    assert set(config) == {f.name for f in fields(TrainConfig)}
    err = capsys.readouterr().err  # not a terminal: a line at every tenth, no carriage returns
    assert "\r" not in err
    lines = [line for line in err.splitlines() if "step/s" in line or "s/step" in line]
    assert len(lines) == 10 and "20/20" in lines[-1] and "loss" in lines[-1] and "tok/s" in lines[-1]


def test_the_flags_defaults_are_the_configs():
    import argparse

    from app.cli import _config_flags

    parser = argparse.ArgumentParser()
    _config_flags(parser)
    assert TrainConfig(**vars(parser.parse_args([]))) == TrainConfig()


def test_a_terminal_gets_a_redrawn_bar():
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    screen = Terminal()
    bar = Progress(50, True, screen)
    for step in range(1, 51):
        bar.update(step, 1.25, step * 100)
    bar.close()
    assert "\r" in screen.getvalue() and "50/50" in screen.getvalue() and "loss 1.250" in screen.getvalue()


def test_an_init_of_another_shape_or_task_gets_one_line_and_exit_2(capsys, tmp_path):
    assert main(["train", "dyck", "--hidden", "4", "--steps", "2", "--out", str(tmp_path / "four")]) == 0
    capsys.readouterr()
    for argv, words in [
        (["dyck", "--hidden", "5"], "this run trains a lstm of"),
        (["dyck", "--hidden", "4", "--cell", "gru"], "this run trains a gru"),
        (["recall", "--hidden", "4"], "is a lstm of weights"),
    ]:
        init = ["--init", str(tmp_path / "four")]
        assert main(["train", *argv, "--steps", "2", *init, "--out", str(tmp_path / "x")]) == 2
        err = capsys.readouterr().err
        assert "--init:" in err and words in err and "Traceback" not in err, err
    assert main(["train", "dyck", "--steps", "2", "--init", str(tmp_path / "none"), "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert "none" in err and "Traceback" not in err, err


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["--steps", "0"], "steps must be at least 1, got 0"),
        (["--lr", "-1"], "lr must be positive"),
        (["--option", "foo=1"], "the dyck task has no option foo"),
        (["--option", "foo"], "is not KEY=VALUE"),
    ],
)
def test_bad_settings_get_one_line_and_exit_2(argv, words, capsys, tmp_path):
    assert main(["train", "dyck", "--hidden", "4", *argv, "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert words in err and "Traceback" not in err
