"""A fresh install's first attribution: the page asks for the model list, traces the model, and opens the
attribution panel ~3 s later. On an empty numba cache (NUMBA_CACHE_DIR a new folder each run), for a baseline
checkout (--base, e.g. main) and this one, runs interleaved:

    python bench/causal_warm.py --base /work/main [--rounds 2] [--after 3]

Printed per checkout (medians): GET /api/models's wall time, the first POST /api/attribute's wall time (asked
--after s after the list arrived), the server's CPU seconds and its children's (a warm compiles in a child), and the
server's resident memory at the end. Never asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TEXT = ("def f(x):\n    return [x + 1 for x in range(10)]\n" * 40)[:1000]


def _post(url: str, body: dict) -> float:
    t = time.perf_counter()
    req = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=600) as r:
        r.read()
    return time.perf_counter() - t


def _cpu(pid: int) -> tuple[float, float]:
    """(own, children's) CPU seconds of a process."""
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return (int(f[11]) + int(f[12])) / tick, (int(f[13]) + int(f[14])) / tick


def _rss_mb(pid: int) -> float:
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS"):
            return int(line.split()[1]) / 1024
    return 0.0


def once(root: Path, after: float) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp, socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        env = {
            **os.environ,
            "PYTHONPATH": str(root),
            "NUMBA_CACHE_DIR": str(Path(tmp) / "numba"),
            "GATESCOPE_MODELS": str(Path(tmp) / "models"),
            "GATESCOPE_DATA_DIR": str(Path(tmp) / "data"),
            "GATESCOPE_INDEX_BUNDLED": "0",
            "GATESCOPE_WARM_ATTRIBUTION": "1",
        }
        cmd = [sys.executable, "-m", "uvicorn", "app.main:app", "--port", str(port), "--log-level", "warning"]
        proc = subprocess.Popen(cmd, cwd=root, env=env)
        url = f"http://127.0.0.1:{port}"
        try:
            for _ in range(600):
                try:
                    urllib.request.urlopen(url + "/static/favicon.svg", timeout=1).read()  # up (asks no lesson)
                    break
                except OSError:
                    time.sleep(0.1)
            t = time.perf_counter()
            with urllib.request.urlopen(url + "/api/models", timeout=600) as r:
                r.read()
            listed = time.perf_counter() - t
            _post(url + "/api/trace?encoding=binary", {"model": "code", "text": TEXT})  # the page opens the model
            time.sleep(max(0.0, after - (time.perf_counter() - t - listed)))
            first = _post(url + "/api/attribute", {"model": "code", "text": TEXT, "t": len(TEXT) - 1})
            time.sleep(0.5)
            own, kids = _cpu(proc.pid)
            return {
                "models_s": listed,
                "first_attr_s": first,
                "cpu_s": own,
                "child_cpu_s": kids,
                "rss_mb": _rss_mb(proc.pid),
            }
        finally:
            proc.terminate()
            proc.wait(30)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--base", type=Path, required=True, help="the baseline checkout (e.g. /work/main)")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--after", type=float, default=3.0, help="seconds between the trace and the attribution")
    args = ap.parse_args()
    runs: dict[str, list[dict[str, float]]] = {"base": [], "this": []}
    for _ in range(args.rounds):
        for side, root in (("base", args.base), ("this", ROOT)):
            runs[side].append(once(root, args.after))
            print(side, {k: round(v, 2) for k, v in runs[side][-1].items()}, flush=True)
    print(f"load average {os.getloadavg()[0]:.1f}; medians of {args.rounds}:")
    for side, rs in runs.items():
        print(f"  {side:4}", {k: round(statistics.median(r[k] for r in rs), 2) for k in rs[0]})


if __name__ == "__main__":
    main()
