"""Each contender of a bench in its own process, taking turns: the rule every comparison here follows.

A library measured inside another's process is not measured as its users run it: PyTorch's
OpenMP threads spin against NumPy's BLAS threads, an environment variable set for one (such
as ``OMP_WAIT_POLICY=PASSIVE``) slows the other, and whichever was imported first sets the
thread pools. So a bench starts one long-lived worker process per side, each at its own
defaults (no thread count, no OpenMP policy forced on it), and tells them in turn to run:
ours, theirs, ours, theirs ... The coordinator waits for each reply before the next order,
so two sides never run at the same time, and a short pause between turns lets a finished
side's spinning threads go to sleep before the other starts. A turn is one untimed run (the
side's threads and caches wake up after the other side's turn) and then a few timed ones back
to back, as a user's repeated calls run; each side times its own runs with
``time.perf_counter`` around the call alone (no pipe, no start-up). The bench quotes medians
over all turns.

The protocol is one JSON object a line: ``{"setup": {...}}`` (answered ``{"ok": info}``) builds
the case and warms it up, ``{"run": n}`` (answered ``{"seconds": [s, ...], "out": ...}``) is a turn
of n timed runs; ``out`` is a small summary of the result (the last step's gates, a loss), made after the clock
stops, so the coordinator can check that the sides computed the same thing. A worker is a
script that calls ``serve(make)`` when started with ``--side NAME``.

Where a baseline comes from: PyTorch (and any other library compared against) is never a
dependency of gatescope. ``baseline_python("torch", "TORCH_PYTHON")`` takes the interpreter
from the environment variable, else this interpreter if it can import the module, else None,
and the bench prints that the baseline is skipped and how to enable it::

    python3 -m venv /tmp/torchenv && /tmp/torchenv/bin/pip install torch==2.13.0 numpy
    TORCH_PYTHON=/tmp/torchenv/bin/python make bench
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

#: Seconds between one side's run and the other's: long enough for OpenMP/BLAS threads that spin after a
#: parallel region (libgomp's default spin count, OpenBLAS's yield loop) to go to sleep, short against a run.
PAUSE = 0.02


def baseline_python(module: str, env_var: str) -> str | None:
    """The interpreter that runs a baseline: ``$env_var``, else this one if it imports ``module``, else None."""
    if os.environ.get(env_var):
        python = os.environ[env_var]
        try:
            subprocess.run([python, "-c", f"import {module}"], check=True, capture_output=True)
        except (OSError, subprocess.CalledProcessError) as e:
            sys.exit(f"${env_var}={python} cannot import {module} ({e}); unset it to skip that baseline")
        return python
    return sys.executable if importlib.util.find_spec(module) is not None else None


def skipped(what: str, module: str, env_var: str) -> str:
    """The line a bench prints when a baseline's library is not found."""
    return (
        f"{what}: skipped ({module} is not importable here and ${env_var} is not set; for example "
        f"python3 -m venv /tmp/{module}env && /tmp/{module}env/bin/pip install {module} numpy, "
        f"then {env_var}=/tmp/{module}env/bin/python)"
    )


class Side:
    """One contender in its own process: ``python script --side name``, driven over its stdin and stdout."""

    def __init__(self, name: str, script: Path, python: str = sys.executable) -> None:
        self.name = name
        self._proc = subprocess.Popen(
            [python, str(script), "--side", name],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            cwd=ROOT,
            text=True,
            bufsize=1,
        )

    def _ask(self, msg: dict[str, Any]) -> dict[str, Any]:
        assert self._proc.stdin is not None and self._proc.stdout is not None
        self._proc.stdin.write(json.dumps(msg) + "\n")
        self._proc.stdin.flush()
        line = self._proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the {self.name} worker exited (code {self._proc.wait()}); its error is above")
        reply = json.loads(line)
        if "error" in reply:
            raise RuntimeError(f"the {self.name} worker failed: {reply['error']}")
        return reply

    def setup(self, **case: Any) -> Any:
        """Build the case in the worker (weights, inputs) and warm it up; returns what the worker reports."""
        return self._ask({"setup": case})["ok"]

    def run(self, n: int = 1) -> tuple[list[float], Any]:
        """A turn: one untimed run, then n timed; their wall times in seconds, as the worker measured them,
        and the summary of the last result."""
        reply = self._ask({"run": n})
        return reply["seconds"], reply.get("out")

    def close(self) -> None:
        if self._proc.poll() is None:
            assert self._proc.stdin is not None
            self._proc.stdin.close()
            try:
                self._proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()


def take_turns(sides: list[Side], rounds: int, runs: int = 3) -> tuple[dict[str, list[float]], dict[str, Any]]:
    """``rounds`` rounds in which every side, in turn, has a turn of ``runs`` timed runs; each side's
    times and the summary of its last result."""
    times: dict[str, list[float]] = {s.name: [] for s in sides}
    outs: dict[str, Any] = {}
    for _ in range(rounds):
        for s in sides:
            time.sleep(PAUSE)
            seconds, outs[s.name] = s.run(runs)
            times[s.name] += seconds
    return times, outs


#: What a worker's ``make(case)`` returns: the run (timed), a summary of its result (not timed), setup info.
Case = tuple[Callable[[], Any], Callable[[Any], Any], Any]


def serve(make: Callable[[dict[str, Any]], Case]) -> None:
    """A worker's loop: builds each case with ``make`` and answers every run with its time and summary.

    The protocol owns stdout; anything the libraries print goes to stderr.
    """
    wire = sys.stdout
    sys.stdout = sys.stderr
    case: Case | None = None
    for line in sys.stdin:
        msg = json.loads(line)
        try:
            if "setup" in msg:
                case = make(msg["setup"])
                reply: dict[str, Any] = {"ok": case[2]}
            else:
                assert case is not None, "run before setup"
                run, summary, _ = case
                result, seconds = run(), []
                for _ in range(int(msg["run"])):
                    t0 = time.perf_counter()
                    result = run()
                    seconds.append(time.perf_counter() - t0)
                reply = {"seconds": seconds, "out": summary(result)}
        except Exception as e:  # reported to the coordinator, which stops the bench with it
            reply = {"error": f"{type(e).__name__}: {e}"}
        wire.write(json.dumps(reply) + "\n")
        wire.flush()
