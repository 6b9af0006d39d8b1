"""Training throughput of the NumPy trainer against a PyTorch CPU training loop, each in its own process.

    python bench/train.py [--steps 20] [--rounds 5]
    TORCH_PYTHON=/tmp/torchenv/bin/python python bench/train.py   # PyTorch from another venv

Same model for both: a character LSTM (one-hot input of V=97 symbols, one layer of H=128,
linear + softmax head), batch 32, BPTT 100, Adam, gradient-norm clipping at 1, on the same
batches. Two worker processes (sides.py) take turns, one running at a time, each at its
library's defaults; a turn times ``--steps`` optimisation steps (model built afresh each
time). The medians give tokens per second and the ratio gatescope / PyTorch (higher is better).
PyTorch comes from ``$TORCH_PYTHON``, else this interpreter if it imports torch; without either
gatescope's throughput is printed alone, with a line saying how to enable the baseline.

Target: at least half PyTorch's throughput (≥ 0.5×).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from sides import ROOT, Case, Side, baseline_python, serve, skipped, take_turns

#: The shape measured: batch, BPTT length, hidden units, vocabulary.
B, T, H, V = 32, 100, 128, 97
HERE = Path(__file__).resolve()


def gatescope_case(case: dict[str, Any]) -> Case:
    """``steps`` optimisation steps of the NumPy trainer's pieces, from a fresh model."""
    sys.path.insert(0, str(ROOT))
    from model.backprop import loss_and_grads
    from model.network import Spec
    from model.train import Adam, init_params

    data, steps = np.load(case["data"])["data"], case["steps"]
    vocab = [chr(32 + k) for k in range(V)]
    spec = Spec(cell="lstm", input_size=V, hidden_size=H, vocab=vocab, tokenizer="char", unk=None, output_size=V)
    mask = np.ones((B, T), np.float32)

    def run() -> float:
        params = init_params(spec, np.random.default_rng(0))
        adam, state, loss = Adam(params), None, 0.0
        for s in range(steps):
            x, y = data[s, :, :-1], data[s, :, 1:]
            loss, grads, state = loss_and_grads(spec, params, x, y, mask, state)
            norm = np.sqrt(sum(float((g * g).sum()) for g in grads.values()))
            if norm > 1.0:
                for g in grads.values():
                    g *= 1.0 / norm
            adam.step(params, grads, 3e-3)
        return float(loss)

    run()  # warm up
    return run, lambda loss: {"loss": loss}, {"numpy": np.__version__}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=20, help="optimisation steps a run")
    ap.add_argument("--rounds", type=int, default=5, help="turns each side takes (one timed run a turn)")
    ap.add_argument("--side", help=argparse.SUPPRESS)  # run as a worker (sides.py)
    args = ap.parse_args()
    if args.side:
        serve(gatescope_case)
        return
    torch_python = baseline_python("torch", "TORCH_PYTHON")
    sides = [Side("gatescope", HERE)]
    if torch_python is not None:
        sides.append(Side("train", HERE.with_name("torch_side.py"), torch_python))
    try:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "batches.npz"
            np.savez(path, data=np.random.default_rng(1).integers(0, V, (args.steps, B, T + 1)), V=V, H=H)
            info = {s.name: s.setup(data=str(path), steps=args.steps, warmup=1) for s in sides}
            times, outs = take_turns(sides, args.rounds, runs=1)
    finally:
        for s in sides:
            s.close()
    if torch_python is None:
        print(skipped("PyTorch baseline", "torch", "TORCH_PYTHON"))
    else:
        t = info["train"]
        print(f"torch {t['torch']} on {t['threads']} threads (its default), {torch_python}; numpy {t['numpy']}")
    tokens = args.steps * B * T
    rate = {k: tokens / statistics.median(v) for k, v in times.items()}
    print(f"LSTM H={H}, V={V}, batch {B}, BPTT {T}; each side in its own process, taking turns;")
    print(f"medians of {args.rounds} runs of {args.steps} steps")
    for k, r in rate.items():
        label = "pytorch" if k == "train" else k
        print(f"  {label:>10}: {r:>10,.0f} tokens/s   (loss after {args.steps} steps {outs[k]['loss']:.3f})")
    if "train" in rate:
        print(f"  ratio gatescope / pytorch: {rate['gatescope'] / rate['train']:.2f}x (target >= 0.5x)")


if __name__ == "__main__":
    main()
