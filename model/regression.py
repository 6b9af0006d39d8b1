"""Regression tasks: vector input, a values head trained on mean squared error (model/backprop.py).

adding  The adding problem (Hochreiter & Schmidhuber, "Long Short-Term Memory", Neural Computation 1997,
        experiment 4), the classic test of LSTM memory. x_t = (v_t, m_t): v_t ~ U(0, 1), m_t in {0, 1}, with
        exactly two markers, the first among the first 10 steps, the second among steps 10 .. T/2 - 1 (as the
        paper places them). The target, at the last step only (head_at "last"): the sum of the two marked
        values, v_a + v_b in [0, 2]. Always answering 1 (the mean) scores E[(v_a + v_b - 1)^2] = 2/12 = 0.167,
        the baseline a network must beat; the held-out baseline is computed on the same sequences. A
        sequence is also counted right, as in the paper, when its absolute error is below 0.04.

co2     A one-step forecaster of atmospheric CO2 at Mauna Loa, weekly 1958-2001 (statsmodels' ``co2``
        dataset, public domain; model/pretrained/co2-lstm/co2.csv and DATA.md: its source and how its 59
        missing weeks were filled). The network reads a week's value and predicts the next week's. Held out:
        every fifth calendar year from 1962 on (1962, 1967, ..., 1997: whole years, inside the series' range,
        so a forecast is never asked to extrapolate a level it never saw); training windows of ``window``
        weeks lie inside the other years. Training standardises the series, z = (x - mu) / sigma (mu and
        sigma of the training years); the saved network takes ppm and predicts ppm: ``export`` folds the
        standardisation into layer 0 (W' = W / sigma, b' = b - mu W / sigma) and into the head (W' = sigma W,
        b' = sigma b + mu), exact affine maps. Held out, the whole series is traced from its first week, and
        the one-step errors at the held-out weeks are scored in standardised units (MSE) and in ppm (RMSE),
        beside the naive forecast "the same as last week", computed on the same weeks.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from .errors import InputError
from .network import Network
from .series import read_csv
from .tasks import TASKS, Batch, Task, _heldout_rng
from .trace import Trace

#: The CO2 series: a row a week, one column (ppm), oldest first.
CO2_CSV = Path(__file__).parent / "pretrained" / "co2-lstm" / "co2.csv"
#: The first week of the series (1958-03-29) as a year fraction: week w is year CO2_START + w * 7 / 365.25.
CO2_START = 1958 + (31 + 28 + 28) / 365.25


def predicted(net: Network, tr: Trace) -> np.ndarray:
    """A values head's predictions over a trace, (T, K): the trace's ``values``."""
    if tr.values is None:
        raise InputError("the network has no values head: it predicts no numbers to score")
    return tr.values


class _VectorTask(Task):
    vocab = None
    head = "values"

    def _check_net(self, net: Network) -> None:
        s = net.spec
        if s.vocab is not None or s.input_size != self.input_size or s.output_size != self.output_size:
            raise InputError(
                f"the {self.name!r} task needs a vector model with input_size {self.input_size} and "
                f"{self.output_size} output(s); this one has input_size {s.input_size}, output {s.output_size}"
            )


class AddingTask(_VectorTask):
    name = "adding"
    input_size = 2
    output_size = 1
    head_at = "last"

    def __init__(self, length: int = 50, eval_sequences: int = 1000):
        if length < 22:
            raise InputError(f"length must be at least 22 (markers go in the first 10 and before T/2), got {length}")
        if eval_sequences < 1:
            raise InputError(f"eval_sequences must be at least 1, got {eval_sequences}")
        self.length, self.eval_sequences = length, eval_sequences
        self.description = (
            f"The adding problem (Hochreiter & Schmidhuber 1997): {length} steps of (value, marker); two values "
            "are marked, and at the last step the network must answer their sum. A unit must store each marked "
            "value when its marker comes and hold it to the end: look for an input gate that opens at the "
            "markers and a forget gate held near 1 between them."
        )
        rng = np.random.default_rng(7)
        self.examples = [self._csv(self.sample(rng, 1)[0][0]) for _ in range(2)]

    @staticmethod
    def _csv(x: np.ndarray) -> str:
        return "value,marker\n" + "".join(f"{v:.3f},{int(m)}\n" for v, m in x)

    def sample(self, rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
        """``n`` sequences: x (n, T, 2) and their targets (n,), the sums of the two marked values."""
        T = self.length
        x = np.zeros((n, T, 2))
        x[:, :, 0] = rng.random((n, T))  # (n, T) the values
        a = rng.integers(0, 10, n)  # (n,) the first marker, among the first 10 steps
        b = rng.integers(10, T // 2, n)  # (n,) the second, before T/2
        rows = np.arange(n)
        x[rows, a, 1] = x[rows, b, 1] = 1.0
        return x, x[rows, a, 0] + x[rows, b, 0]

    def batches(self, rng: np.random.Generator, batch: int, bptt: int) -> Iterator[Batch]:
        """Whole sequences, the target at the last step (``bptt`` unused)."""
        while True:
            x, s = self.sample(rng, batch)
            y = np.zeros((batch, self.length, 1))
            y[:, -1, 0] = s
            yield Batch(x, y, np.ones((batch, self.length), np.float32), reset=True)

    def heldout(self, seed: int = 1234) -> tuple[np.ndarray, np.ndarray]:
        return self.sample(_heldout_rng(seed), self.eval_sequences)

    def evaluate(self, net: Network, seed: int = 1234) -> dict[str, float]:
        """Held-out MSE at the last step, the MSE of always answering 1, and the share within 0.04."""
        self._check_net(net)
        x, s = self.heldout(seed)
        answers = np.array([predicted(net, net.trace(seq))[-1, 0] for seq in x])  # (n,)
        err = answers - s
        return {
            "mse": float(np.mean(err**2)),
            "baseline_mse": float(np.mean((1.0 - s) ** 2)),
            "accuracy": float(np.mean(np.abs(err) < 0.04)),
            "length": float(self.length),
        }


class Co2Task(_VectorTask):
    name = "co2"
    input_size = 1
    output_size = 1
    head_at = "every"
    targets = {"columns": [0], "shift": 1}  # output 0 at step t forecasts input column 0 at t + 1

    def __init__(self, window: int = 104, heldout_every: int = 5):
        if window < 2:
            raise InputError(f"window must be at least 2 weeks, got {window}")
        if heldout_every < 2:
            raise InputError(f"heldout_every must be at least 2 (one year in so many held out), got {heldout_every}")
        self.window, self.heldout_every = window, heldout_every
        self.series = read_csv(CO2_CSV.read_text())[0][:, 0]  # (N,) ppm
        year = np.floor(CO2_START + np.arange(len(self.series)) * 7 / 365.25).astype(int)  # (N,)
        self.held = (year >= 1962) & ((year - 1962) % heldout_every == 0)  # (N,) held-out weeks
        train = self.series[~self.held]
        self.mu, self.sigma = float(train.mean()), float(train.std())
        self.description = (
            "Atmospheric CO2 at Mauna Loa, weekly 1958-2001 (statsmodels' co2 dataset, public domain): the "
            "network reads a week's value (ppm) and forecasts the next week's. It has to follow both the rise "
            "and the yearly cycle: most units follow the level (the year's average), a few the season (the "
            "rest); the known units name the unit that follows each best, with its r."
        )
        self.examples = ["co2\n" + "".join(f"{v:.2f}\n" for v in self.series[:156])]
        # the runs of consecutive training weeks, where windows are drawn
        edges = np.flatnonzero(np.diff(np.r_[0, (~self.held).astype(int), 0]))
        self.runs = [(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2]) if b - a > window]

    def export(self, params: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Fold z = (x - mu) / sigma into layer 0 and x = sigma z + mu into the head: ppm in, ppm out."""
        out = dict(params)
        for name in params:
            if name.startswith("layers.0.W_"):
                gate = name[len("layers.0.W_") :]
                W = params[name]  # (1, H)
                out[name] = W / self.sigma
                out[f"layers.0.b_{gate}"] = params[f"layers.0.b_{gate}"] - self.mu * W[0] / self.sigma
        out["head.W"] = params["head.W"] * self.sigma
        out["head.b"] = params["head.b"] * self.sigma + self.mu
        return out

    def batches(self, rng: np.random.Generator, batch: int, bptt: int) -> Iterator[Batch]:
        """Windows of ``window`` + 1 training weeks, standardised: x the first ``window``, y the next week each."""
        z = (self.series - self.mu) / self.sigma  # (N,)
        sizes = np.array([b - a - self.window for a, b in self.runs], float)
        while True:
            run = rng.choice(len(self.runs), size=batch, p=sizes / sizes.sum())
            starts = [
                self.runs[r][0] + int(rng.integers(0, self.runs[r][1] - self.runs[r][0] - self.window)) for r in run
            ]
            w = np.stack([z[s : s + self.window + 1] for s in starts])  # (B, window + 1)
            yield Batch(w[:, :-1, None], w[:, 1:, None], np.ones((batch, self.window), np.float32), reset=True)

    def evaluate(self, net: Network, seed: int = 1234) -> dict[str, float]:
        """One-step errors at the held-out weeks (the series traced whole), beside "the same as last week"."""
        self._check_net(net)
        x = self.series
        forecast = predicted(net, net.trace(x[:-1, None]))[:, 0]  # (N-1,) forecast of week t+1 after week t
        scored = self.held[1:]  # (N-1,) the forecast's week is held out
        err = (forecast - x[1:])[scored]
        naive = (x[:-1] - x[1:])[scored]
        return {
            "mse": float(np.mean((err / self.sigma) ** 2)),
            "naive_mse": float(np.mean((naive / self.sigma) ** 2)),
            "rmse_ppm": float(np.sqrt(np.mean(err**2))),
            "naive_rmse_ppm": float(np.sqrt(np.mean(naive**2))),
            "heldout_weeks": float(scored.sum()),
        }


TASKS.update(adding=AddingTask, co2=Co2Task)
