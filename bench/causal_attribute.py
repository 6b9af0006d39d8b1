"""Attribution's cost against a full trace, and a scrub step's latency through the server.

    python bench/causal_attribute.py [--repeats 15] [--scrubs 60]

On ``code``, a 1,000-character text (gatescope's own model/ sources):
1. The core, medians of interleaved runs: ``net.trace`` of the whole text; ``model.attribute`` at t = 999 and
   t = 500 (gradient x input: a forward pass over steps 0 .. t, one backward pass from t; integrated gradients,
   32 points: one batch of 34 rows); and one step from a kept forward pass (``model.Forward``: what a
   scrubber's next step costs), by the compiled passes (model/backprop_kernels.py) and by the NumPy ones
   (``attribution.COMPILED = False``). Target: attribution at one step <= 2x the full trace.
2. ``POST /api/attribute`` through a real uvicorn on 127.0.0.1 (one kept-alive connection), a scrub: the
   same text at ``--scrubs`` random steps after a first request that fills the server's forward cache;
   p50 and p95 from sending the request to holding the whole body. Target: p95 well inside the page's 100 ms.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
from api import code_text, real_server, timed  # noqa: E402

import model  # noqa: E402
from model import attribution  # noqa: E402
from model.threads import step_threads  # noqa: E402


def numpy_path(fn):
    """``fn()`` with attribution's NumPy forward and backward passes (``attribution.COMPILED = False``)."""
    attribution.COMPILED = False
    try:
        return fn()
    finally:
        attribution.COMPILED = True


def core(net: model.Network, text: str, repeats: int) -> tuple[dict[str, float], dict[str, float]]:
    """Medians (ms) of each case's wall time and CPU time (every case runs on one thread), run in turn
    ``repeats`` times."""
    fw = model.Forward(net, text)
    fw_np = numpy_path(lambda: model.Forward(net, text))
    cases = {
        "trace": lambda: net.trace(text),
        "grad_x_input t=999": lambda: model.attribute(net, text, 999),
        "grad_x_input t=500": lambda: model.attribute(net, text, 500),
        "integrated_gradients t=999": lambda: model.attribute(net, text, 999, method="integrated_gradients"),
        "integrated_gradients t=500": lambda: model.attribute(net, text, 500, method="integrated_gradients"),
        "kept forward, step t=999": lambda: fw.attribute(999),
        "kept forward, step t=500": lambda: fw.attribute(500),
        "forward pass kept (once a text)": lambda: model.Forward(net, text),
        "grad_x_input t=999, NumPy path": lambda: numpy_path(lambda: model.attribute(net, text, 999)),
        "kept forward t=999, NumPy path": lambda: numpy_path(lambda: fw_np.attribute(999)),
    }
    for fn in cases.values():
        fn()  # warm
    times: dict[str, list[float]] = {k: [] for k in cases}
    cpu: dict[str, list[float]] = {k: [] for k in cases}
    for _ in range(repeats):
        for k, fn in cases.items():
            c0 = time.process_time()
            times[k].append(timed(fn) * 1e3)
            cpu[k].append((time.process_time() - c0) * 1e3)
    return {k: statistics.median(v) for k, v in times.items()}, {k: statistics.median(v) for k, v in cpu.items()}


def scrub(port: int, text: str, n: int) -> tuple[float, list[float]]:
    """The first request's time (it fills the cache) and the latencies (ms) of ``n`` random further steps."""
    conn = http.client.HTTPConnection("127.0.0.1", port)

    def ask(t: int) -> float:
        body = json.dumps({"model": "code", "text": text, "t": t})
        t0 = time.perf_counter()
        conn.request("POST", "/api/attribute", body, {"Content-Type": "application/json"})
        r = conn.getresponse()
        data = r.read()
        took = (time.perf_counter() - t0) * 1e3
        assert r.status == 200, data[:300]
        return took

    try:
        first = ask(0)
        rng = random.Random(0)
        return first, [ask(rng.randrange(len(text))) for _ in range(n)]
    finally:
        conn.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=15, help="interleaved runs of each core case")
    ap.add_argument("--scrubs", type=int, default=60, help="scrub steps asked of the server")
    args = ap.parse_args()
    net = model.load("code")
    text = code_text(net, 1000)
    with step_threads():
        med, cpu = core(net, text, args.repeats)
    proc, port = real_server()
    try:
        first, lat = scrub(port, text, args.scrubs)
    finally:
        proc.terminate()
        proc.wait()
    load = os.getloadavg()[0]
    base, base_cpu = med["trace"], cpu["trace"]
    print(f"1,000 characters on code; medians of {args.repeats} interleaved runs (load average {load:.2f})")
    print(f"  {'':<34}{'wall':>8}     {'ratio':>6}  {'CPU':>8}     {'ratio':>6}")
    for k, v in med.items():
        target = "  (target <= 2x)" if k.startswith("grad_x_input") and "NumPy" not in k else ""
        c = cpu[k]
        print(f"  {k:<34}{v:8.1f} ms  {v / base:6.2f}x {c:8.1f} ms  {c / base_cpu:6.2f}x the trace{target}")
    lat.sort()
    p50, p95 = statistics.median(lat), lat[min(len(lat) - 1, int(0.95 * len(lat)))]
    print(f"POST /api/attribute, real server, {args.scrubs} random steps of the same text after a first one")
    print(f"  first request (forward pass kept)  {first:8.1f} ms")
    print(f"  scrub step p50 {p50:6.1f} ms, p95 {p95:6.1f} ms, max {lat[-1]:6.1f} ms  (target: p95 < 100 ms)")


if __name__ == "__main__":
    main()
