"""A real server on a free localhost port and a real headless Chromium (Debian's, driven by Playwright)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "tests" / "artifacts"
#: Flags for Chromium on a machine with a closed network (no background calls home).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerURL(str):
    """The server's base URL, which also knows the server's process id."""

    pid: int


@pytest.fixture(scope="session")
def server(tmp_path_factory) -> Iterator[str]:
    """The app under uvicorn in its own process (uploads kept in a fresh folder); yields its base URL."""
    port = _free_port()
    tmp = tmp_path_factory.mktemp("server")
    env = {**os.environ, "GATESCOPE_MODELS": str(tmp / "models"), "GATESCOPE_HOST": "127.0.0.1"}
    log = open(tmp / "server.log", "wb")  # a file, not a pipe: a full pipe would stall the server
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "app.main:app", "--host", "127.0.0.1", "--port", str(port)]
        + ["--ws-per-message-deflate", "false"],  # as `gatescope serve` runs it
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = ServerURL(f"http://127.0.0.1:{port}")
    url.pid = proc.pid
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(url + "/", timeout=1)
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError(f"the server did not start:\n{(tmp / 'server.log').read_text()}") from None
            time.sleep(0.1)
    yield url
    proc.terminate()
    proc.wait(timeout=10)
    log.close()


@pytest.fixture(scope="session")
def browser():
    """Headless Debian Chromium through Playwright's executable_path."""
    from playwright.sync_api import sync_playwright

    exe = os.environ.get("GATESCOPE_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        raise RuntimeError("no chromium on PATH: `make test` installs Debian's chromium (apt-get install chromium)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=exe, headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser, server):
    """A fresh page that records console errors and every request's host."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    ctx = browser.new_context(viewport={"width": 1280, "height": 720})
    pg = ctx.new_page()
    pg.console_errors = []
    pg.requested = []
    pg.on("console", lambda m: m.type == "error" and pg.console_errors.append(m.text))
    pg.on("pageerror", lambda e: pg.console_errors.append(str(e)))
    pg.on("request", lambda r: pg.requested.append(r.url))
    yield pg
    ctx.close()
