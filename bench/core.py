"""How fast the core records a full trace, against PyTorch as its users run it: each in its own process.

    python bench/core.py [--rounds 9] [--runs 3]
    TORCH_PYTHON=/tmp/torchenv/bin/python python bench/core.py   # PyTorch from another venv

For each shape (T, D, H), one LSTM layer, batch 1, on the same weights and input, four worker
processes (sides.py) take turns, one running at a time, each at its library's defaults:

- gatescope's ``net.trace`` (every gate recorded: f, i, c̃, c, o, h at every step), on one BLAS
  thread per step, its default (model/threads.py);
- PyTorch's fused ``nn.LSTM``: the fastest way to run the layer, and it **records nothing**
  but h, so it is a floor, not a like-for-like rival;
- a PyTorch step loop that records the same six gates gatescope records: the like-for-like
  baseline;
- gatescope with BLAS's own thread choice per step (``model.threads.STEP_THREADS = None``), to
  show what the single-thread default gives up on a quiet machine.

It prints medians and the ratios gatescope / baseline (lower is faster), and checks that every
side ends on the same h (and the loop on the same gates). PyTorch is not a dependency of
gatescope: it comes from ``$TORCH_PYTHON``, else this interpreter if it imports torch; without
either the PyTorch columns are skipped with a line saying how to enable them.

Targets: at most 0.8× the fused ``nn.LSTM`` at every shape; at most 0.25× the gate-recording
loop at H = 128 and 0.35× at H ≥ 256. They were set when PyTorch was measured in this process
under ``OMP_WAIT_POLICY=PASSIVE``, where its fused kernel ran about twice as slow as it does for
a user, and are kept so that a miss shows.
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

#: The shapes measured: (T, D, H).
SHAPES = [(200, 64, 128), (1000, 64, 256), (1000, 128, 512)]
HERE = Path(__file__).resolve()
#: Largest difference allowed between the sides' last-step gates (float32, 1,000 steps): beyond it they disagree.
TOLERANCE = 1e-4


def write_case(path: Path, T: int, D: int, H: int, seed: int = 0) -> None:
    """Random LSTM weights scaled like PyTorch's default init (per gate: W (D, H), U (H, H), b (H,)) and x (T, D)."""
    rng = np.random.default_rng(seed)
    k = 1 / np.sqrt(H)
    arrays = {}
    for g in ("f", "i", "c", "o"):
        arrays[f"W_{g}"] = rng.uniform(-k, k, (D, H)).astype(np.float32)
        arrays[f"U_{g}"] = rng.uniform(-k, k, (H, H)).astype(np.float32)
        arrays[f"b_{g}"] = rng.uniform(-k, k, H).astype(np.float32)
    arrays["x"] = np.random.default_rng(seed + 1).standard_normal((T, D)).astype(np.float32)
    np.savez(path, **arrays)


def gatescope_case(side: str, case: dict[str, Any]) -> Case:
    """A worker's trace of the case's weights: ``one thread`` (the default) or ``all threads``."""
    sys.path.insert(0, str(ROOT))
    from model import Network, Spec, threads

    npz = np.load(case["data"])
    D, H = npz["W_f"].shape
    spec = Spec(cell="lstm", input_size=D, hidden_size=H)
    net = Network(spec, {f"layers.0.{n}": npz[n] for n in npz.files if n != "x"})
    x = npz["x"]
    threads.STEP_THREADS = 1 if side == "one thread" else None
    for _ in range(3):
        net.trace(x)
    summary = {"numpy": np.__version__, "blas": np.show_config(mode="dicts")["Build Dependencies"]["blas"]["name"]}
    return lambda: net.trace(x), lambda tr: {g: tr.layers[0][g][-1].tolist() for g in tr.gates}, summary


def max_diff(a: dict[str, list[float]], b: dict[str, list[float]]) -> float:
    """The largest absolute difference over the gates two sides both returned."""
    return max(float(np.max(np.abs(np.subtract(a[g], b[g])))) for g in a.keys() & b.keys())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=9, help="turns each side takes")
    ap.add_argument("--runs", type=int, default=3, help="timed runs a turn (after one untimed)")
    ap.add_argument("--side", help=argparse.SUPPRESS)  # run as a worker (sides.py)
    args = ap.parse_args()
    if args.side:
        serve(lambda case: gatescope_case(args.side, case))
        return
    torch_python = baseline_python("torch", "TORCH_PYTHON")
    sides = [Side("one thread", HERE), Side("all threads", HERE)]
    if torch_python is not None:
        sides += [Side("fused", HERE.with_name("torch_side.py"), torch_python)]
        sides += [Side("loop", HERE.with_name("torch_side.py"), torch_python)]
    rows = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for T, D, H in SHAPES:
                path = Path(tmp) / f"lstm-{T}-{D}-{H}.npz"
                write_case(path, T, D, H)
                info = {s.name: s.setup(data=str(path)) for s in sides}
                times, outs = take_turns(sides, args.rounds, args.runs)
                med = {k: statistics.median(v) * 1e3 for k, v in times.items()}
                rows.append((T, D, H, med, outs, info))
    finally:
        for s in sides:
            s.close()
    info = rows[0][5]
    print(f"numpy {info['one thread']['numpy']} ({info['one thread']['blas']}); ", end="")
    if torch_python is None:
        print(skipped("PyTorch baselines", "torch", "TORCH_PYTHON"))
    else:
        print(f"torch {info['fused']['torch']} on {info['fused']['threads']} threads (its default), {torch_python}")
    n = f"{args.rounds} turns x {args.runs} runs"
    print(f"each side in its own process at its defaults, taking turns; medians of {n}; batch 1\n")
    head = f"{'T':>5} {'D':>4} {'H':>4} | {'gatescope':>10}"
    if torch_python is not None:
        head += f" {'nn.LSTM':>10} {'torch loop':>10} | {'/fused':>7} {'/loop':>7}"
    head += f" | {'all BLAS threads':>16}" + (f" {'/fused':>7} {'/loop':>7}" if torch_python else "")
    print(head)
    print("-" * len(head))
    wrong = []
    for T, D, H, med, outs, _ in rows:
        ours, every = med["one thread"], med["all threads"]
        line = f"{T:>5} {D:>4} {H:>4} | {ours:>8.2f}ms"
        if torch_python is not None:
            fused, loop = med["fused"], med["loop"]
            line += f" {fused:>8.2f}ms {loop:>8.2f}ms | {ours / fused:>6.2f}x {ours / loop:>6.2f}x"
            line += f" | {every:>14.2f}ms {every / fused:>6.2f}x {every / loop:>6.2f}x"
            diff = max(max_diff(outs["one thread"], outs[k]) for k in ("fused", "loop", "all threads"))
            line += f"   (last steps differ by {diff:.1e})"
            if diff > TOLERANCE:
                wrong.append(f"(T, D, H) = ({T}, {D}, {H}): the sides' last steps differ by {diff:.1e}")
        else:
            line += f" | {every:>14.2f}ms"
        print(line)
    if torch_python is not None:
        print("\nnn.LSTM records nothing but h; the torch loop and gatescope record f, i, c_tilde, c, o, h each step.")
        print("Targets: /fused <= 0.8x at every shape; /loop <= 0.25x at H = 128, <= 0.35x at H >= 256.")
    if wrong:
        why = "bench/core.py: the sides did not compute the same trace, so their times do not compare:"
        sys.exit("\n".join([why, *wrong]))


if __name__ == "__main__":
    main()
