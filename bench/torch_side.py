"""The PyTorch baselines, each run as a worker process of its own (see sides.py) by core.py and train.py.

    $TORCH_PYTHON bench/torch_side.py --side fused|loop|train|batch

It imports only NumPy, PyTorch and sides.py (never gatescope), and sets nothing on torch: its
thread count, OpenMP policy and allocator are whatever a user gets from ``import torch``.

- ``fused``: ``torch.nn.LSTM`` on the bench's weights, batch 1, under ``torch.no_grad()``. It
  returns h only: it records none of the gates gatescope shows.
- ``loop``: a step loop of torch ops that records what gatescope records, f, i, c̃, c, o and h at
  every step (T × H each).
- ``batch``: ``torch.nn.LSTM`` over B sequences at once (batch_first, x (B, T, D)), under
  ``torch.no_grad()``; ragged lengths go through ``pack_padded_sequence``, as a user batches
  documents of different lengths. h only, as ``fused`` (bench/analysis_kernel.py).
- ``train``: a CPU training loop of the model bench/train.py describes (nn.LSTM + nn.Linear,
  cross-entropy, Adam, gradient-norm clipping at 1).
"""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np
import torch
from sides import Case, serve

#: PyTorch's gate order in weight_ih / weight_hh.
ORDER = ("i", "f", "c", "o")


def lstm_weights(npz: Any) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """gatescope's per-gate W (D, H), U (H, H), b (H,) stacked in PyTorch's layout: (4H, D), (4H, H), (4H,)."""
    Wih = torch.cat([torch.from_numpy(npz[f"W_{g}"]).T for g in ORDER]).contiguous()
    Whh = torch.cat([torch.from_numpy(npz[f"U_{g}"]).T for g in ORDER]).contiguous()
    b = torch.cat([torch.from_numpy(npz[f"b_{g}"]) for g in ORDER])
    return Wih, Whh, b


def gate_loop(x: torch.Tensor, Wih: torch.Tensor, Whh: torch.Tensor, b: torch.Tensor) -> dict[str, torch.Tensor]:
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


def fused_case(npz: Any) -> Case:
    Wih, Whh, b = lstm_weights(npz)
    x = torch.from_numpy(npz["x"])  # (T, D): unbatched, i.e. batch 1
    lstm = torch.nn.LSTM(Wih.shape[1], Whh.shape[1])
    with torch.no_grad():
        lstm.weight_ih_l0.copy_(Wih)
        lstm.weight_hh_l0.copy_(Whh)
        lstm.bias_ih_l0.copy_(b)
        lstm.bias_hh_l0.zero_()

    def run() -> torch.Tensor:
        with torch.no_grad():
            return lstm(x)[0]  # (T, H): h at every step, nothing else

    return run, lambda out: {"h": out[-1].tolist()}, {}


def batch_case(npz: Any) -> Case:
    Wih, Whh, b = lstm_weights(npz)
    x = torch.from_numpy(npz["x"])  # (B, T, D)
    lengths = torch.from_numpy(npz["lengths"]).long()  # (B,)
    lstm = torch.nn.LSTM(Wih.shape[1], Whh.shape[1], batch_first=True)
    with torch.no_grad():
        lstm.weight_ih_l0.copy_(Wih)
        lstm.weight_hh_l0.copy_(Whh)
        lstm.bias_ih_l0.copy_(b)
        lstm.bias_hh_l0.zero_()
    ragged = bool((lengths != x.shape[1]).any())
    pack, unpack = torch.nn.utils.rnn.pack_padded_sequence, torch.nn.utils.rnn.pad_packed_sequence

    def run() -> torch.Tensor:
        with torch.no_grad():
            if not ragged:
                return lstm(x)[0]  # (B, T, H): h at every step of every sequence
            out, _ = lstm(pack(x, lengths, batch_first=True, enforce_sorted=False))
            return unpack(out, batch_first=True)[0]

    return run, lambda out: {"h": out[0, int(lengths[0]) - 1].tolist()}, {}


def loop_case(npz: Any) -> Case:
    Wih, Whh, b = lstm_weights(npz)
    x = torch.from_numpy(npz["x"])

    def run() -> dict[str, torch.Tensor]:
        with torch.no_grad():
            return gate_loop(x, Wih, Whh, b)

    return run, lambda rec: {g: a[-1].tolist() for g, a in rec.items()}, {}


def train_case(npz: Any, steps: int) -> Case:
    data = torch.from_numpy(npz["data"])  # (steps, B, T + 1) symbol ids
    V, H = int(npz["V"]), int(npz["H"])

    def run() -> float:
        torch.manual_seed(0)
        lstm, head = torch.nn.LSTM(V, H, batch_first=True), torch.nn.Linear(H, V)
        params = list(lstm.parameters()) + list(head.parameters())
        opt = torch.optim.Adam(params, lr=3e-3)
        eye, state, loss = torch.eye(V), None, torch.zeros(())
        for s in range(steps):
            d = data[s]
            out, state = lstm(eye[d[:, :-1]], state)
            state = tuple(t.detach() for t in state)
            loss = torch.nn.functional.cross_entropy(head(out).reshape(-1, V), d[:, 1:].reshape(-1))
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
        return float(loss.detach())

    return run, lambda loss: {"loss": loss}, {}


def make(side: str, case: dict[str, Any]) -> Case:
    npz = np.load(case["data"])
    if side == "fused":
        built = fused_case(npz)
    elif side == "loop":
        built = loop_case(npz)
    elif side == "train":
        built = train_case(npz, case["steps"])
    elif side == "batch":
        built = batch_case(npz)
    else:
        raise ValueError(f"unknown side {side!r}: fused, loop, train or batch")
    for _ in range(case.get("warmup", 3)):
        built[0]()
    info = {"torch": torch.__version__, "threads": torch.get_num_threads(), "numpy": np.__version__}
    return built[0], built[1], info


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--side", required=True, choices=("fused", "loop", "train", "batch"))
    side = ap.parse_args().side
    serve(lambda case: make(side, case))


if __name__ == "__main__":
    main()
