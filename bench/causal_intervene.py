"""What an intervention costs: ``net.trace(x, interventions=[...])`` against a plain ``net.trace(x)``, on the
bundled ``code`` model over 1,000 characters of Python, in the same run (issue 13's target: <= 1.2x).

    python bench/causal_intervene.py [--chars 1000] [--rounds 31]

Cases: one unit's C held over every step; 8 units' C held over 100 steps (the page's "hold from t = 12");
one unit's f zeroed and one h scaled over every step; a patch of 8 units' h from a second text over 100
steps (the source's trace is part of its cost). The runs interleave (plain, then each case, then plain
again, ...), so a neighbour's load falls on every side alike. Each figure is a median: of wall time, and of
this thread's CPU time (a trace runs on one thread), which a busy machine disturbs far less (its wall-time
medians move by 10-20% from one run to the next when other processes hold the cores).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import model

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--chars", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=31)
    a = ap.parse_args()
    net = model.load("code")
    known = set(net.vocab or [])
    source = "".join(ch for ch in (ROOT / "model" / "network.py").read_text() if ch in known)
    text, other = source[: a.chars], source[a.chars : 2 * a.chars]
    T = len(net.tokenizer.encode(text)) if net.tokenizer else 0
    cases = {
        "plain": None,
        "1 unit's C, every step": [{"layer": 0, "unit": 118, "gate": "c", "op": "set", "value": 0.0}],
        "8 units' C, 100 steps": [
            {"layer": 0, "units": list(range(8)), "gate": "c", "op": "set", "value": 0.0, "from": 12, "to": 112}
        ],
        "f zeroed + h scaled, every step": [
            {"layer": 0, "unit": 3, "gate": "f", "op": "zero"},
            {"layer": 0, "unit": 9, "gate": "h", "op": "scale", "value": 0.5},
        ],
        "patch 8 units' h, 100 steps": [
            {"layer": 0, "units": list(range(8)), "gate": "h", "op": "patch", "source_text": other, "to": 100}
        ],
    }
    wall: dict[str, list[float]] = {name: [] for name in cases}
    cpu: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(3):  # warm up
        for its in cases.values():
            net.trace(text, interventions=its)
    for _ in range(a.rounds):
        for name, its in cases.items():
            t0, c0 = time.perf_counter(), time.thread_time()
            net.trace(text, interventions=its)
            cpu[name].append(time.thread_time() - c0)
            wall[name].append(time.perf_counter() - t0)
    load = os.getloadavg()[0]
    print(f"code ({net.cell}, H = {net.hidden_size}), {T} steps, {a.rounds} interleaved rounds, load {load:.2f}")
    print(f"  {'':34s} {'wall':>10s} {'ratio':>7s} {'CPU':>10s} {'ratio':>7s}   medians (target <= 1.2x)")
    for name in cases:
        w, c = statistics.median(wall[name]), statistics.median(cpu[name])
        w0, c0 = statistics.median(wall["plain"]), statistics.median(cpu["plain"])
        ratios = ("", "") if name == "plain" else (f"{w / w0:.2f}x", f"{c / c0:.2f}x")
        print(f"  {name:34s} {w * 1e3:7.2f} ms {ratios[0]:>7s} {c * 1e3:7.2f} ms {ratios[1]:>7s}")


if __name__ == "__main__":
    main()
