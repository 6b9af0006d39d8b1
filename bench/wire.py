"""Bytes per value and encode time of the compact encoding against plain JSON, in one process.

    python bench/wire.py [--repeats 9]

Six gate arrays of 1,000 steps × 256 units (sigmoid gates in (0, 1), tanh ones in (-1, 1), an
unbounded cell state), encoded by ``app.encoding.pack`` and, as baselines, by
``json.dumps(array.tolist())`` and orjson (when installed). Targets (issue 4): ≤ 3 bytes a value
and ≤ 10 ms.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from app.encoding import dumps_binary, dumps_compact, pack  # noqa: E402

try:
    import orjson
except ImportError:
    orjson = None

#: The issue's payload: six gates of T steps × H units.
T, H = 1000, 256


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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=9)
    args = ap.parse_args()
    g = gates()
    n = sum(a.size for a in g.values())
    runs = {
        "compact": lambda: dumps_compact({"layers": [{k: pack(k, a) for k, a in g.items()}]}),
        "binary": lambda: dumps_binary({"layers": [{k: pack(k, a) for k, a in g.items()}]}),
        "json.dumps(tolist)": lambda: json.dumps({k: a.tolist() for k, a in g.items()}).encode(),
    }
    if orjson is not None:
        runs["orjson"] = lambda: orjson.dumps({k: a for k, a in g.items()}, option=orjson.OPT_SERIALIZE_NUMPY)
    times: dict[str, list[float]] = {k: [] for k in runs}
    size = {}
    for _ in range(args.repeats):
        for k, fn in runs.items():
            t0 = time.perf_counter()
            out = fn()
            times[k].append(time.perf_counter() - t0)
            size[k] = len(out)
    print(f"{n:,} values (6 gates x {T} steps x {H} units); medians of {args.repeats} interleaved runs")
    base = statistics.median(times["compact"])
    for k in runs:
        med = statistics.median(times[k])
        print(f"  {k:>20}: {size[k] / n:6.2f} bytes/value {med * 1e3:8.1f} ms  (compact is {base / med:.3f}x its time)")


if __name__ == "__main__":
    main()
