"""API latency against the core's own time, in one process.

    python bench/api.py [--repeats 21]

1. ``POST /api/trace`` of 1,000 characters on ``code`` (plain JSON, and compact) through the
   TestClient and through a real uvicorn on a localhost socket (one kept-alive connection),
   against ``net.trace`` of the same text alone. Target (issue 4): ≤ 1.5× for the form the page
   uses. Latency runs from sending the request to holding the whole response body (parsing the
   JSON is the client's work and is not counted).
2. ``WS /api/live`` (binary frames, as the page uses it): appending one character to a 1,000-character
   text, against a full trace of that text over the same socket. Target: ≤ 0.05×.
Runs are interleaved; medians are printed.
"""

from __future__ import annotations

import argparse
import http.client
import json
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from fastapi.testclient import TestClient  # noqa: E402

import model  # noqa: E402
from app.main import create_app  # noqa: E402


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def real_server() -> tuple[subprocess.Popen, int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [sys.executable, "-m", "uvicorn", "app.main:app", "--port", str(port), "--log-level", "warning"]
    cmd += ["--ws-per-message-deflate", "false"]  # as `gatescope serve` runs it
    proc = subprocess.Popen(cmd, cwd=ROOT)
    for _ in range(300):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
            return proc, port
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("the server did not start")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=21)
    args = ap.parse_args()
    text = Path(model.__file__).with_name("network.py").read_text()[:1000]
    net = model.load("code")
    body = json.dumps({"model": "code", "text": text})
    proc, port = real_server()
    conn = http.client.HTTPConnection("127.0.0.1", port)
    try:
        with TestClient(create_app()) as client, client.websocket_connect("/api/live") as ws:

            def post(encoding: str) -> None:
                r = client.post(
                    f"/api/trace?encoding={encoding}", content=body, headers={"Content-Type": "application/json"}
                )
                r.raise_for_status()

            def post_real(encoding: str) -> None:
                conn.request("POST", f"/api/trace?encoding={encoding}", body, {"Content-Type": "application/json"})
                r = conn.getresponse()
                r.read()
                assert r.status == 200

            def send(t: str) -> None:
                ws.send_json({"model": "code", "text": t, "encoding": "binary", "focus": {"layer": 0, "unit": 0}})
                ws.receive_bytes()

            def live_full() -> None:
                send("#")  # reset the cache to a one-step text
                times["live full"].append(timed(lambda: send(text)))

            def live_append() -> None:
                send(text)
                times["live append"].append(timed(lambda: send(text + "x")))

            names = ("core", "json", "compact", "binary", "compact, real server", "binary, real server")
            names += ("live full", "live append")
            times: dict[str, list[float]] = {k: [] for k in names}
            for _ in range(3):
                net.trace(text), post("json"), post("compact"), post_real("compact"), live_full(), live_append()
            times = {k: [] for k in times}
            for _ in range(args.repeats):
                times["core"].append(timed(lambda: net.trace(text)))
                times["json"].append(timed(lambda: post("json")))
                times["compact"].append(timed(lambda: post("compact")))
                times["binary"].append(timed(lambda: post("binary")))
                times["compact, real server"].append(timed(lambda: post_real("compact")))
                times["binary, real server"].append(timed(lambda: post_real("binary")))
                live_full()
                live_append()
    finally:
        conn.close()
        proc.terminate()
        proc.wait()
    med = {k: statistics.median(v) * 1e3 for k, v in times.items()}
    core = med["core"]
    print(f"1,000 characters on code; medians of {args.repeats} interleaved runs")
    print(f"  core trace alone                        {core:7.2f} ms")
    print(f"  POST /api/trace (json, TestClient)      {med['json']:7.2f} ms  {med['json'] / core:6.2f}x the core")
    for k in ("compact", "binary", "compact, real server", "binary, real server"):
        label = f"POST /api/trace ({k if 'real' in k else k + ', TestClient'})"
        print(f"  {label:<40}{med[k]:7.2f} ms  {med[k] / core:6.2f}x (target <= 1.5x)")
    print(f"  WS full text (binary)                   {med['live full']:7.2f} ms")
    ratio = med["live append"] / med["live full"]
    print(f"  WS append one character                 {med['live append']:7.2f} ms  {ratio:6.3f}x (target <= 0.05x)")


if __name__ == "__main__":
    main()
