"""API latency against the core's own time, in one process.

    python bench/api.py [--repeats 21] [--stream-repeats 7] [--stream-only]

1. ``POST /api/trace`` of 1,000 characters on ``code`` (plain JSON, compact, binary) through the
   TestClient and through a real uvicorn on a localhost socket (one kept-alive connection),
   against ``net.trace`` of the same text alone. Target: the forms the page uses (compact,
   binary) at most 1.5× the core: the web layer may cost half the math, no more. Latency runs
   from sending the request to holding the whole response body (parsing the JSON is the
   client's work and is not counted).
2. ``WS /api/live`` (binary frames, as the page uses it): appending one character to a 1,000-character
   text, against a full trace of that text over the same socket. Target: ≤ 0.05×, so a keystroke
   costs its one new step, not the text.
3. ``POST /api/trace/stream`` (JSON Lines, a line per step) of 2,000 characters on ``code``, reading
   every line as it arrives, against a plain-JSON ``POST /api/trace`` of the same text read whole,
   through the same client (the TestClient, and the real uvicorn). Target: the stream at most 1.5×
   the plain-JSON response: a line per step must cost no more than the numbers it carries.
Runs are interleaved; medians are printed. Every side is gatescope's own (no other library is
timed here), so it runs in one process; the real server is a process of its own.
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


def code_text(net: model.Network, n: int) -> str:
    """n characters of Python (gatescope's model/, network.py first), keeping only those ``code`` knows."""
    known = set(net.tokenizer.vocab) if net.tokenizer is not None else set()
    first = ROOT / "model" / "network.py"
    src = "".join(p.read_text() for p in [first, *sorted(set((ROOT / "model").glob("*.py")) - {first})])
    src = "".join(ch for ch in src if ch in known)
    return (src * (n // max(len(src), 1) + 1))[:n]


def stream(client: TestClient, port: int, text: str, repeats: int) -> dict[str, float]:
    """Medians (ms) of the JSON Lines stream, read line by line, and of the plain-JSON trace, read whole.
    A new connection to the real server for each request (these outlast uvicorn's 5 s keep-alive)."""
    body = json.dumps({"model": "code", "text": text})
    headers = {"Content-Type": "application/json"}

    def lines_test() -> None:
        with client.stream("POST", "/api/trace/stream", content=body, headers=headers) as r:
            r.raise_for_status()
            n = sum(1 for _ in r.iter_lines())
        assert n == len(text) + 1, f"the stream sent {n} lines for {len(text)} steps"  # a header, then a line a step

    def json_test() -> None:
        client.post("/api/trace?encoding=json", content=body, headers=headers).raise_for_status()

    def lines_real() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port)
        conn.request("POST", "/api/trace/stream", body, headers)
        r, n = conn.getresponse(), 0
        assert r.status == 200
        while r.readline():
            n += 1
        conn.close()
        assert n == len(text) + 1, f"the stream sent {n} lines for {len(text)} steps"

    def json_real() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port)
        conn.request("POST", "/api/trace?encoding=json", body, headers)
        r = conn.getresponse()
        r.read()
        conn.close()
        assert r.status == 200

    runs = {"stream": lines_test, "json": json_test, "stream, real server": lines_real, "json, real server": json_real}
    for fn in runs.values():
        fn()  # warm up
    times: dict[str, list[float]] = {k: [] for k in runs}
    for _ in range(repeats):
        for k, fn in runs.items():
            times[k].append(timed(fn))
    return {k: statistics.median(v) * 1e3 for k, v in times.items()}


def trace_and_live(client: TestClient, conn: http.client.HTTPConnection, net: model.Network, repeats: int):
    """Parts 1 and 2: medians (ms) of the core, each POST /api/trace form, and the live socket's full and append."""
    text = code_text(net, 1000)
    body = json.dumps({"model": "code", "text": text})
    headers = {"Content-Type": "application/json"}

    def post(encoding: str) -> None:
        client.post(f"/api/trace?encoding={encoding}", content=body, headers=headers).raise_for_status()

    def post_real(encoding: str) -> None:
        conn.request("POST", f"/api/trace?encoding={encoding}", body, headers)
        r = conn.getresponse()
        r.read()
        assert r.status == 200

    with client.websocket_connect("/api/live") as ws:

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
        for _ in range(repeats):
            times["core"].append(timed(lambda: net.trace(text)))
            times["json"].append(timed(lambda: post("json")))
            times["compact"].append(timed(lambda: post("compact")))
            times["binary"].append(timed(lambda: post("binary")))
            times["compact, real server"].append(timed(lambda: post_real("compact")))
            times["binary, real server"].append(timed(lambda: post_real("binary")))
            live_full()
            live_append()
    return {k: statistics.median(v) * 1e3 for k, v in times.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=21, help="runs of parts 1 and 2")
    ap.add_argument("--stream-repeats", type=int, default=7, help="runs of part 3, the 2,000-character stream")
    ap.add_argument("--stream-only", action="store_true", help="only part 3, the stream against the json trace")
    args = ap.parse_args()
    net = model.load("code")
    long = code_text(net, 2000)
    proc, port = real_server()
    conn = http.client.HTTPConnection("127.0.0.1", port)
    try:
        with TestClient(create_app(), base_url="http://127.0.0.1") as client:  # a loopback Host (app/security.py)
            med = None if args.stream_only else trace_and_live(client, conn, net, args.repeats)
            streamed = stream(client, port, long, args.stream_repeats)
    finally:
        conn.close()
        proc.terminate()
        proc.wait()
    if med is not None:
        core = med["core"]
        print(f"1,000 characters on code; medians of {args.repeats} interleaved runs")
        print(f"  core trace alone                        {core:7.2f} ms")
        print(f"  POST /api/trace (json, TestClient)      {med['json']:7.2f} ms  {med['json'] / core:6.2f}x the core")
        for k in ("compact", "binary", "compact, real server", "binary, real server"):
            label = f"POST /api/trace ({k if 'real' in k else k + ', TestClient'})"
            print(f"  {label:<40}{med[k]:7.2f} ms  {med[k] / core:6.2f}x (target <= 1.5x)")
        print(f"  WS full text (binary)                   {med['live full']:7.2f} ms")
        ratio = med["live append"] / med["live full"]
        append = med["live append"]
        print(f"  WS append one character                 {append:7.2f} ms  {ratio:6.3f}x (target <= 0.05x)")
        print()
    print(f"{len(long):,} characters on code; medians of {args.stream_repeats} interleaved runs")
    for where in ("TestClient", "real server"):
        key = "" if where == "TestClient" else ", real server"
        lines, whole = streamed["stream" + key], streamed["json" + key]
        print(f"  POST /api/trace (json, {where})".ljust(42) + f"{whole:8.1f} ms, read whole")
        print(f"  POST /api/trace/stream ({where})".ljust(42) + f"{lines:8.1f} ms, read line by line:", end="")
        print(f" {lines / whole:5.2f}x the json trace (target <= 1.5x)")


if __name__ == "__main__":
    main()
