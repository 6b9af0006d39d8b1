"""What holds cost a live edit: one key typed on the live socket's session (app/api/live.py ``Session.update``:
the incremental trace from the first changed step, the binary reply with the selected unit's lines, and with
holds the "intervened" and the effect against the plain run) with 1 and with 4 holds, against the same key with
none, on the bundled ``code`` model at 1,000 characters of Python:

    python bench/causal_live.py [--chars 1000] [--rounds 41] [--at 500]

Each case keeps a session of its own; every round types one key at character --at in each (and takes it out in
the next round: each edit re-traces from there), the cases interleaved, so a neighbour's load falls on each alike.
Medians of wall time and of this thread's CPU time (an edit runs on one thread). "no effect" cases send
``"effect": false``, as the page does (it never reads the socket's effect: its panel asks POST /api/trace), which
spares the plain run beside the held one. Never asserted.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path
from types import SimpleNamespace

import model
from app.api.live import Session
from model import interventions

ROOT = Path(__file__).resolve().parent.parent

ONE = [{"layer": 0, "unit": 118, "gate": "c", "op": "set", "value": 0.0, "from": 12}]
FOUR = [
    *ONE,
    {"layer": 0, "unit": 77, "gate": "c", "op": "set", "value": 0.5, "from": 12},
    {"layer": 0, "unit": 4, "gate": "h", "op": "scale", "value": 0.5, "from": 12},
    {"layer": 0, "unit": 49, "gate": "f", "op": "zero", "from": 12},
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--chars", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=41)
    ap.add_argument("--at", type=int, default=500, help="the character the key is typed at (re-traced from there)")
    a = ap.parse_args()
    net = model.load("code")
    entry = SimpleNamespace(net=net)
    known = set(net.vocab or [])
    text = "".join(ch for ch in (ROOT / "model" / "network.py").read_text() if ch in known)[: a.chars]
    typed = text[: a.at] + "x" + text[a.at : -1]  # one key in, the last character out: the same length
    cases: dict[str, tuple[list, bool]] = {"no holds": ([], True), "1 hold": (ONE, True), "4 holds": (FOUR, True)}
    cases |= {"1 hold, no effect": (ONE, False), "4 holds, no effect": (FOUR, False)}
    held = {name: interventions.check(net, its) or None for name, (its, _) in cases.items()}
    sessions = {name: Session() for name in cases}
    encoded = [net.tokenizer.encode(t) for t in (text, typed)]
    msg = {"encoding": "binary", "focus": {"layer": 0, "unit": 118}}

    def key(name: str, k: int) -> None:
        m = msg if cases[name][1] else {**msg, "effect": False}
        sessions[name].update("code", entry, m, encoded[k % 2], 5, max_steps=20000, held=held[name])

    for name in cases:  # each session holds the text first
        key(name, 0)
    wall: dict[str, list[float]] = {name: [] for name in cases}
    cpu: dict[str, list[float]] = {name: [] for name in cases}
    for r in range(1, a.rounds + 1):
        for name in cases:
            t0, c0 = time.perf_counter(), time.thread_time()
            key(name, r)
            cpu[name].append(time.thread_time() - c0)
            wall[name].append(time.perf_counter() - t0)
    T = len(encoded[0].ids)
    load = os.getloadavg()[0]
    print(f"code, {T} steps, a key at {a.at} ({T - a.at} steps re-traced), {a.rounds} rounds, load {load:.2f}")
    w0, c0 = statistics.median(wall["no holds"]), statistics.median(cpu["no holds"])
    print(f"  {'':22s} {'wall':>10s} {'ratio':>7s} {'CPU':>10s} {'ratio':>7s}   medians (target <= 1.2x)")
    for name in cases:
        w, c = statistics.median(wall[name]), statistics.median(cpu[name])
        ratios = ("", "") if name == "no holds" else (f"{w / w0:.2f}x", f"{c / c0:.2f}x")
        print(f"  {name:22s} {w * 1e3:7.2f} ms {ratios[0]:>7s} {c * 1e3:7.2f} ms {ratios[1]:>7s}")


if __name__ == "__main__":
    main()
