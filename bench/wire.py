"""Bytes per value and encode time of the compact encoding against plain JSON, each encoder in its own process.

    python bench/wire.py [--rounds 9]
    ORJSON_PYTHON=/tmp/torchenv/bin/python python bench/wire.py   # orjson from another venv

Six gate arrays of 1,000 steps × 256 units (sigmoid gates in (0, 1), tanh ones in (-1, 1), an
unbounded cell state), encoded by ``app.encoding``'s compact and binary forms (the page's) and,
as baselines, by ``json.dumps(array.tolist())`` (the plain-JSON body) and orjson with its NumPy
option. Each encoder runs in a worker process of its own (sides.py), taking turns with the
others, one at a time; medians are printed. orjson is not a dependency of gatescope: it comes
from ``$ORJSON_PYTHON``, else this interpreter if it imports orjson, else it is skipped with a
line saying how to enable it.

Targets: the compact form at most 3 bytes a value, encoded in at most 10 ms.
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

#: The payload measured: six gates of T steps × H units.
T, H = 1000, 256
HERE = Path(__file__).resolve()


def gates() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    a = rng.standard_normal((T, H)).astype(np.float32)
    s = 1 / (1 + np.exp(-a))
    return {
        "f": s,
        "i": s[::-1].copy(),
        "o": s.T.copy().reshape(T, H),
        "c_tilde": np.tanh(a),
        "c": a * 3,
        "h": np.tanh(a) * s,
    }


def encoder(side: str, g: dict[str, np.ndarray]) -> Any:
    """The encoding a side times: the whole payload to bytes."""
    if side == "orjson":
        import orjson

        return lambda: orjson.dumps(g, option=orjson.OPT_SERIALIZE_NUMPY)
    if side == "json.dumps(tolist)":
        import json

        return lambda: json.dumps({k: a.tolist() for k, a in g.items()}).encode()
    sys.path.insert(0, str(ROOT))
    from app.encoding import dumps_binary, dumps_compact, pack

    dumps = dumps_compact if side == "compact" else dumps_binary
    return lambda: dumps({"layers": [{k: pack(k, a) for k, a in g.items()}]})


def make(side: str, case: dict[str, Any]) -> Case:
    with np.load(case["data"]) as npz:
        g = {k: npz[k] for k in npz.files}
    fn = encoder(side, g)
    fn()  # warm up
    return fn, len, {}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=9, help="turns each encoder takes (one timed run a turn)")
    ap.add_argument("--side", help=argparse.SUPPRESS)  # run as a worker (sides.py)
    args = ap.parse_args()
    if args.side:
        serve(lambda case: make(args.side, case))
        return
    sides = [Side(name, HERE) for name in ("compact", "binary", "json.dumps(tolist)")]
    orjson_python = baseline_python("orjson", "ORJSON_PYTHON")
    if orjson_python is not None:
        sides.append(Side("orjson", HERE, orjson_python))
    g = gates()
    n = sum(a.size for a in g.values())
    try:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "gates.npz"
            np.savez(path, **g)
            for s in sides:
                s.setup(data=str(path))
            times, size = take_turns(sides, args.rounds, runs=1)
    finally:
        for s in sides:
            s.close()
    print(f"{n:,} values (6 gates x {T} steps x {H} units); each encoder in its own process, taking turns;")
    print(f"medians of {args.rounds} runs (targets: compact <= 3 bytes a value, <= 10 ms)")
    base = statistics.median(times["compact"])
    for k in times:
        med = statistics.median(times[k])
        print(f"  {k:>20}: {size[k] / n:6.2f} bytes/value {med * 1e3:8.1f} ms  (compact is {base / med:.3f}x its time)")
    if orjson_python is None:
        print(skipped("  orjson", "orjson", "ORJSON_PYTHON"))


if __name__ == "__main__":
    main()
