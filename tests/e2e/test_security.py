"""In a real Chromium, another web page (served from another port of 127.0.0.1: another origin, but one
that Chromium's own local-network rules let reach the server, so only gatescope's checks stop it) cannot
upload a model with a cross-site form post, open the live socket, or frame the page; the server's own
page still can do all of it."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from .conftest import api_models

pytestmark = pytest.mark.e2e

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "onnx" / "peephole.onnx"

#: What a hostile page would run: a multipart upload as a no-cors fetch (a "simple" request: no preflight),
#: and the live socket. It reports what it saw in window.result.
ATTACK = """<!doctype html><title>elsewhere</title><script>
window.result = {};
const bytes = Uint8Array.from(atob("%(weights)s"), (c) => c.charCodeAt(0));
const form = new FormData();
form.append("file", new Blob([bytes]), "planted.onnx");
fetch("%(server)s/api/models", {method: "POST", mode: "no-cors", body: form})
  .then(() => { window.result.upload = "sent"; }, (e) => { window.result.upload = "blocked " + e; });
const ws = new WebSocket("%(ws)s/api/live");
ws.onopen = () => { window.result.socket = "open"; ws.send(JSON.stringify({seq: 1, model: "dyck", text: "()"})); };
ws.onmessage = (m) => { window.result.reply = m.data; };
ws.onerror = () => { window.result.socket = "refused"; };
</script><iframe id="frame" src="%(server)s/"></iframe>"""


@contextmanager
def _elsewhere(html: str) -> Iterator[str]:
    """A page served from another port of 127.0.0.1 (another origin); stops with the block."""

    class Page(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = html.encode()
            self.send_response(200)
            self.send_header("content-type", "text/html")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Page)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_another_page_cannot_upload_open_the_socket_or_frame_the_page(new_page, server):
    before = api_models(server)
    attack = ATTACK % {
        "weights": base64.b64encode(FIXTURE.read_bytes()).decode(),
        "server": server,
        "ws": server.replace("http://", "ws://"),
    }
    page = new_page()
    with _elsewhere(attack) as url:
        page.goto(url)
        page.wait_for_function("window.result.upload && window.result.socket", timeout=15_000)
        result = page.evaluate("window.result")
        assert result["socket"] == "refused" and "reply" not in result, result
        deadline = time.monotonic() + 5  # an upload that got through is converted within a few seconds
        while time.monotonic() < deadline and api_models(server) == before:
            time.sleep(0.25)
        assert api_models(server) == before  # nothing was uploaded
        frame = page.frame_locator("#frame")
        assert frame.locator("[data-testid=input]").count() == 0  # frame-ancestors 'none': the page is not drawn


def test_the_servers_own_page_still_uploads_and_opens_the_socket(new_page, server):
    page = new_page()
    page.goto(server + "/")
    weights = list(FIXTURE.read_bytes())
    status = page.evaluate(
        """async (weights) => {
            const form = new FormData();
            form.append("file", new Blob([new Uint8Array(weights)]), "own-page.onnx");
            form.append("name", "own-page");
            const r = await fetch("/api/models", {method: "POST", body: form});
            const d = await fetch("/api/models/own-page", {method: "DELETE"});
            return [r.status, d.status];
        }""",
        weights,
    )
    assert status == [201, 204]
    reply = page.evaluate(
        """() => new Promise((ok) => {
            const ws = new WebSocket(location.origin.replace("http", "ws") + "/api/live");
            ws.onopen = () => ws.send(JSON.stringify({seq: 1, model: "dyck", text: "(())"}));
            ws.onmessage = (m) => ok(m.data);
        })"""
    )
    assert json.loads(reply)["length"] == 4
