"""Training throughput of the NumPy trainer against a PyTorch CPU training loop, in one process.

    python bench/train.py [--steps 20] [--repeats 5]

Same model for both: a character LSTM (one-hot input of V=97 symbols, one layer of H=128,
linear + softmax head), batch 32, BPTT 100, Adam, gradient-norm clipping. Each repeat
times ``--steps`` optimisation steps of each, interleaved; the medians give tokens per
second and the ratio gatescope / PyTorch (higher is better). Target (issue 3): ≥ 0.5×.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch: its idle threads must sleep

import argparse  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from model.backprop import loss_and_grads  # noqa: E402
from model.network import Spec  # noqa: E402
from model.train import Adam, init_params  # noqa: E402

try:
    import torch
except ImportError:
    torch = None

#: The issue's shape: batch, BPTT length, hidden units, vocabulary.
B, T, H, V = 32, 100, 128, 97


def numpy_steps(steps: int, data: np.ndarray) -> None:
    spec = Spec(
        cell="lstm",
        input_size=V,
        hidden_size=H,
        vocab=[chr(32 + k) for k in range(V)],
        tokenizer="char",
        unk=None,
        output_size=V,
    )
    params = init_params(spec, np.random.default_rng(0))
    adam, state = Adam(params), None
    mask = np.ones((B, T), np.float32)
    for s in range(steps):
        x, y = data[s, :, :-1], data[s, :, 1:]
        _, grads, state = loss_and_grads(spec, params, x, y, mask, state)
        norm = np.sqrt(sum(float((g * g).sum()) for g in grads.values()))
        if norm > 1.0:
            for g in grads.values():
                g *= 1.0 / norm
        adam.step(params, grads, 3e-3)


def torch_steps(steps: int, data: np.ndarray) -> None:
    lstm, head = torch.nn.LSTM(V, H, batch_first=True), torch.nn.Linear(H, V)
    opt = torch.optim.Adam(list(lstm.parameters()) + list(head.parameters()), lr=3e-3)
    eye = torch.eye(V)
    state = None
    for s in range(steps):
        d = torch.from_numpy(data[s])
        out, state = lstm(eye[d[:, :-1]], state)
        state = tuple(t.detach() for t in state)
        loss = torch.nn.functional.cross_entropy(head(out).reshape(-1, V), d[:, 1:].reshape(-1))
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(list(lstm.parameters()) + list(head.parameters()), 1.0)
        opt.step()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    data = np.random.default_rng(1).integers(0, V, (args.steps, B, T + 1))
    runs = {"gatescope": numpy_steps}
    if torch is not None:
        runs["pytorch"] = torch_steps
        print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; numpy {np.__version__}")
    else:
        print("torch is not installed: gatescope's throughput only")
    times: dict[str, list[float]] = {k: [] for k in runs}
    for fn in runs.values():
        fn(2, data)  # warm up
    for _ in range(args.repeats):
        for k, fn in runs.items():
            t0 = time.perf_counter()
            fn(args.steps, data)
            times[k].append(time.perf_counter() - t0)
    tokens = args.steps * B * T
    rate = {k: tokens / statistics.median(v) for k, v in times.items()}
    print(f"LSTM H={H}, V={V}, batch {B}, BPTT {T}; medians of {args.repeats} interleaved runs of {args.steps} steps")
    for k, r in rate.items():
        print(f"  {k:>10}: {r:>10,.0f} tokens/s")
    if "pytorch" in rate:
        print(f"  ratio gatescope / pytorch: {rate['gatescope'] / rate['pytorch']:.2f}x (target >= 0.5x)")


if __name__ == "__main__":
    main()
