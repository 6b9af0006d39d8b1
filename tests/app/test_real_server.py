"""The stream and the live socket against a real uvicorn on a free localhost port."""

from __future__ import annotations

import http.client
import json
import os
import socket
import time
import urllib.request
from urllib.parse import urlparse

import numpy as np

import model


def test_the_stream_arrives_line_by_line(server):
    host = urlparse(server)
    conn = http.client.HTTPConnection(host.hostname, host.port, timeout=30)
    text = "import os\n" * 200
    conn.request(
        "POST", "/api/trace/stream", json.dumps({"model": "code", "text": text}), {"Content-Type": "application/json"}
    )
    r = conn.getresponse()
    assert r.status == 200 and r.getheader("content-type").startswith("application/jsonl")
    assert r.getheader("transfer-encoding") == "chunked" and r.getheader("content-length") is None
    header = json.loads(r.readline())
    first = json.loads(r.readline())  # read while the rest is still on its way
    assert header["tokens"][:3] == ["i", "m", "p"] and first["t"] == 0 and first["token"] == "i"
    rest = [json.loads(line) for line in r.read().splitlines() if line]
    assert [s["t"] for s in rest] == list(range(1, len(text)))
    conn.close()


def test_live_typing_over_a_real_socket(server):
    from websockets.sync.client import connect

    net = model.load("code")
    with connect(server.replace("http", "ws") + "/api/live") as ws:
        ws.send(json.dumps({"model": "code", "text": "x = 1"}))
        assert json.loads(ws.recv())["from"] == 0
        ws.send(json.dumps({"model": "code", "text": "x = 12"}))
        second = json.loads(ws.recv())
    assert second["from"] == 5 and second["tokens"] == ["2"]
    full = net.trace("x = 12")
    np.testing.assert_allclose(np.array(second["layers"][0]["h"], np.float32), full.layers[0]["h"][5:], atol=1e-6)


def _cpu_seconds(pid: int) -> float:
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def test_a_client_that_leaves_mid_stream_stops_the_work(server):
    host = urlparse(server)
    text = "def f(x):\n    return x\n" * 800  # 18,400 steps: about 10 s of work streamed as JSON
    conn = http.client.HTTPConnection(host.hostname, host.port, timeout=30)
    conn.request(
        "POST", "/api/trace/stream", json.dumps({"model": "code", "text": text}), {"Content-Type": "application/json"}
    )
    r = conn.getresponse()
    r.readline(), r.readline()  # the header and step 0: the work is under way
    conn.sock.shutdown(socket.SHUT_RDWR)  # the client goes away
    conn.close()
    time.sleep(1.0)  # let the server notice (at most one chunk of 256 steps more)
    before = _cpu_seconds(server.pid)
    time.sleep(2.0)
    busy = _cpu_seconds(server.pid) - before
    assert busy < 0.5, f"the server kept working for {busy:.2f} CPU seconds of 2 after the client left"
    with urllib.request.urlopen(server + "/api/models/code", timeout=5) as ok:  # and it still serves
        assert ok.status == 200
