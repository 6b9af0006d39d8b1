"""How fast the core records a full trace, against PyTorch run side by side in this process.

    python bench/core.py [--repeats 15]

For each shape (T, D, H), one LSTM layer, batch 1, it interleaves three runs on the
same weights and input: gatescope's ``net.trace`` (every gate recorded), PyTorch's
fused ``nn.LSTM`` (records nothing but h), and a PyTorch step loop that records the
same six gates. It prints medians and the ratios gatescope / baseline (lower is
faster). Without torch it prints gatescope's own times only.

A last column runs gatescope with BLAS's own thread choice per step
(``model.threads.STEP_THREADS = None``) instead of the default single thread, to show
what the default gives up on a quiet machine and saves on a busy one.

Targets (issue 2): ≤ 0.8× fused nn.LSTM at every shape; ≤ 0.25× the PyTorch loop at
H = 128 and ≤ 0.35× at H ≥ 256.
"""

from __future__ import annotations

import os

# Before torch is imported: idle OpenMP threads must sleep, or they spin against NumPy's BLAS threads.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from model import Network, Spec, threads  # noqa: E402

try:
    import torch
except ImportError:
    torch = None

#: The shapes the issue names: (T, D, H).
SHAPES = [(200, 64, 128), (1000, 64, 256), (1000, 128, 512)]


def random_lstm(D: int, H: int, seed: int = 0) -> Network:
    """A one-layer LSTM with random weights scaled like PyTorch's default init."""
    rng = np.random.default_rng(seed)
    spec = Spec(cell="lstm", input_size=D, hidden_size=H)
    k = 1 / np.sqrt(H)
    params = {n: rng.uniform(-k, k, spec.expected_shape(n)).astype(np.float32) for n in spec.param_names()}
    return Network(spec, params)


def torch_modules(net: Network):
    """nn.LSTM with the network's weights, and the same weights for a step loop."""
    p = {n.split(".")[-1]: torch.from_numpy(a) for n, a in net.params.items()}
    order = ("i", "f", "c", "o")  # PyTorch's gate order
    Wih = torch.cat([p[f"W_{g}"].T for g in order])  # (4H, D)
    Whh = torch.cat([p[f"U_{g}"].T for g in order])  # (4H, H)
    b = torch.cat([p[f"b_{g}"] for g in order])  # (4H,)
    lstm = torch.nn.LSTM(Wih.shape[1], Whh.shape[1])
    with torch.no_grad():
        lstm.weight_ih_l0.copy_(Wih)
        lstm.weight_hh_l0.copy_(Whh)
        lstm.bias_ih_l0.copy_(b)
        lstm.bias_hh_l0.zero_()
    return lstm, (Wih.contiguous(), Whh.contiguous(), b)


def torch_gate_loop(x, Wih, Whh, b):
    """A PyTorch step loop that records f, i, c_tilde, c, o, h at every step."""
    T, H = x.shape[0], Whh.shape[1]
    xW = torch.addmm(b, x, Wih.T)  # (T, 4H)
    rec = {g: torch.empty(T, H) for g in ("f", "i", "c_tilde", "c", "o", "h")}
    h, c = torch.zeros(H), torch.zeros(H)
    for t in range(T):
        z = torch.addmv(xW[t], Whh, h)  # (4H,)
        i, f, g, o = z.chunk(4)
        i, f, g, o = torch.sigmoid(i), torch.sigmoid(f), torch.tanh(g), torch.sigmoid(o)
        c = f * c + i * g
        h = o * torch.tanh(c)
        rec["f"][t], rec["i"][t], rec["c_tilde"][t], rec["c"][t], rec["o"][t], rec["h"][t] = f, i, g, c, o, h
    return rec


def all_threads(net: Network, x: np.ndarray) -> None:
    """A trace with BLAS's own thread count per step (model.threads.STEP_THREADS = None)."""
    threads.STEP_THREADS = None
    try:
        net.trace(x)
    finally:
        threads.STEP_THREADS = 1


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=15)
    args = ap.parse_args()
    if torch is not None:
        torch.set_grad_enabled(False)
        print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; numpy {np.__version__}")
    else:
        print("torch is not installed: gatescope's times only (pip install torch for the ratios)")
    print(f"medians of {args.repeats} interleaved runs, one LSTM layer, batch 1\n")
    head = f"{'T':>5} {'D':>4} {'H':>4} | {'gatescope':>10} {'nn.LSTM':>10} {'torch loop':>10}"
    head += f" | {'/fused':>7} {'/loop':>7} | {'all BLAS threads':>16} {'/fused':>7}"
    print(head)
    print("-" * len(head))
    for T, D, H in SHAPES:
        net = random_lstm(D, H)
        x = np.random.default_rng(1).standard_normal((T, D)).astype(np.float32)
        runs = {"gatescope": lambda net=net, x=x: net.trace(x), "all threads": lambda net=net, x=x: all_threads(net, x)}
        if torch is not None:
            lstm, (Wih, Whh, b) = torch_modules(net)
            xt = torch.from_numpy(x)
            runs["fused"] = lambda lstm=lstm, xt=xt: lstm(xt)
            runs["loop"] = lambda xt=xt, w=(Wih, Whh, b): torch_gate_loop(xt, *w)
        for fn in runs.values():  # warm up
            fn()
        times: dict[str, list[float]] = {k: [] for k in runs}
        for _ in range(args.repeats):
            for k, fn in runs.items():
                times[k].append(timed(fn))
        med = {k: statistics.median(v) * 1e3 for k, v in times.items()}
        if torch is None:
            print(f"{T:>5} {D:>4} {H:>4} | {med['gatescope']:>8.2f}ms | all BLAS threads {med['all threads']:>8.2f}ms")
            continue
        print(
            f"{T:>5} {D:>4} {H:>4} | {med['gatescope']:>8.2f}ms {med['fused']:>8.2f}ms {med['loop']:>8.2f}ms"
            f" | {med['gatescope'] / med['fused']:>6.2f}x {med['gatescope'] / med['loop']:>6.2f}x"
            f" | {med['all threads']:>14.2f}ms {med['all threads'] / med['fused']:>6.2f}x"
        )


if __name__ == "__main__":
    main()
