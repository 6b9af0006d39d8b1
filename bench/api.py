"""API latency against the core's own time, in one process.

    python bench/api.py [--repeats 21]

1. ``POST /api/trace`` of 1,000 characters on ``code`` (plain JSON, and compact) through the
   TestClient, against ``net.trace`` of the same text alone. Target (issue 4): ≤ 1.5× for the
   form the page uses.
2. ``WS /api/live``: appending one character to a 1,000-character text, against a full trace of
   that text over the same socket. Target: ≤ 0.05×.
Runs are interleaved; medians are printed.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from fastapi.testclient import TestClient  # noqa: E402

import model  # noqa: E402
from app.main import create_app  # noqa: E402


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=21)
    args = ap.parse_args()
    task_text = Path(model.__file__).with_name("network.py").read_text()
    text = task_text[:1000]
    net = model.load("code")
    with TestClient(create_app()) as client, client.websocket_connect("/api/live") as ws:

        def post(encoding: str) -> None:
            r = client.post(f"/api/trace?encoding={encoding}", json={"model": "code", "text": text})
            r.raise_for_status()
            r.json()

        def live_full() -> None:
            ws.send_json({"model": "code", "text": "#"})  # reset the cache to a one-step text
            ws.receive_json()
            t0 = time.perf_counter()
            ws.send_json({"model": "code", "text": text})
            ws.receive_json()
            times["live full"].append(time.perf_counter() - t0)

        def live_append() -> None:
            ws.send_json({"model": "code", "text": text})
            ws.receive_json()
            t0 = time.perf_counter()
            ws.send_json({"model": "code", "text": text + "x"})
            ws.receive_json()
            times["live append"].append(time.perf_counter() - t0)

        times: dict[str, list[float]] = {k: [] for k in ("core", "json", "compact", "live full", "live append")}
        for _ in range(3):
            net.trace(text), post("json"), post("compact"), live_full(), live_append()
        times = {k: [] for k in times}
        for _ in range(args.repeats):
            times["core"].append(timed(lambda: net.trace(text)))
            times["json"].append(timed(lambda: post("json")))
            times["compact"].append(timed(lambda: post("compact")))
            live_full()
            live_append()
    med = {k: statistics.median(v) * 1e3 for k, v in times.items()}
    print(f"1,000 characters on code; medians of {args.repeats} interleaved runs")
    print(f"  core trace alone          {med['core']:7.2f} ms")
    print(f"  POST /api/trace (json)    {med['json']:7.2f} ms  {med['json'] / med['core']:5.2f}x the core")
    print(
        f"  POST /api/trace (compact) {med['compact']:7.2f} ms  {med['compact'] / med['core']:5.2f}x (target <= 1.5x)"
    )
    print(f"  WS full text              {med['live full']:7.2f} ms")
    ratio = med["live append"] / med["live full"]
    print(f"  WS append one character   {med['live append']:7.2f} ms  {ratio:5.3f}x (target <= 0.05x)")


if __name__ == "__main__":
    main()
