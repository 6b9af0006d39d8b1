"""The processes of bench/load.py: the server under test and the load generators (bench/load_clients.py).

``Server`` starts the app in a process group of its own on a free 127.0.0.1 port (the README's uvicorn
recipe, or ``gatescope serve --workers N`` when that exists), waits for ``/api/models`` (bounded), watches
its process tree (bench/proc_tree.py), and kills the group on exit. ``Client`` is one load generator: its
spec goes to its stdin, its events come back from its stdout, one JSON object a line.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from proc_tree import Tree

ROOT = Path(__file__).resolve().parent.parent
CLIENTS = ROOT / "bench" / "load_clients.py"
#: Seconds the server may take to answer its first request.
START_TIMEOUT = 60.0
MB = 1 << 20


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(port: int, path: str, timeout: float = 5.0) -> int:
    """The status of GET path on 127.0.0.1:port (a new connection; no proxy)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        r = conn.getresponse()
        r.read()
        return r.status
    finally:
        conn.close()


def serve_mode(choice: str) -> str:
    """'gatescope' when ``gatescope serve`` takes --workers (and auto or gatescope was asked), else 'uvicorn'."""
    if choice == "uvicorn":
        return choice
    out = subprocess.run(
        [sys.executable, "-m", "app.cli", "serve", "--help"], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    has = "--workers" in out.stdout
    if choice == "gatescope" and not has:
        sys.exit("bench/load.py: --serve gatescope, but `gatescope serve --help` lists no --workers")
    return "gatescope" if has else "uvicorn"


def describe(mode: str) -> str:
    """How the server is started, as a person would type it."""
    if mode == "gatescope":
        return "gatescope serve --host 127.0.0.1 --workers N"
    return "GATESCOPE_HOST=127.0.0.1 uvicorn app.main:app --host 127.0.0.1 --workers N --ws-per-message-deflate false"


class Server:
    """The app in a process group of its own on a free port, its tree watched by a Tree."""

    def __init__(self, workers: int, mode: str, tmp: Path, cap_mb: int) -> None:
        self.workers, self.mode, self.cap = workers, mode, cap_mb * MB
        self.dir = Path(tempfile.mkdtemp(prefix="server-", dir=tmp))
        self.port = free_port()
        self.proc: subprocess.Popen | None = None
        self.tree: Tree | None = None

    def command(self) -> list[str]:
        host, port, n = "127.0.0.1", str(self.port), str(self.workers)
        if self.mode == "gatescope":
            cmd = ["-m", "app.cli", "serve", "--host", host, "--port", port, "--models", str(self.dir / "models")]
            return [sys.executable, *cmd, "--workers", n]
        cmd = ["-m", "uvicorn", "app.main:app", "--host", host, "--port", port, "--workers", n]
        return [sys.executable, *cmd, "--ws-per-message-deflate", "false", "--log-level", "warning"]

    def __enter__(self) -> Server:
        env = {**os.environ, "GATESCOPE_HOST": "127.0.0.1", "GATESCOPE_MODELS": str(self.dir / "models")}
        env |= {"GATESCOPE_WORKERS": str(self.workers), "PYTHONPATH": str(ROOT)}
        self.log = open(self.dir / "server.log", "wb")  # a file, not a pipe: a full pipe would stall the server
        self.proc = subprocess.Popen(
            self.command(), cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            self._wait_ready()
        except BaseException:
            self.__exit__()
            raise
        self.tree = Tree(self.proc.pid, cap=self.cap).start()
        return self

    def _wait_ready(self) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            try:
                if get(self.port, "/api/models", 2) == 200:
                    break
            except OSError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the server did not start:\n{self.tail()}")
            time.sleep(0.1)
        if self.workers > 1:  # the first answer came from one worker: give the others their start-up too
            time.sleep(2.0)
            for _ in range(4 * self.workers):
                get(self.port, "/api/models", 10)

    def tail(self) -> str:
        return (self.dir / "server.log").read_text(errors="replace")[-3000:]

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def __exit__(self, *exc: object) -> None:
        if self.tree is not None:
            self.tree.stop()
        if self.proc is not None:
            for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 10)):
                try:
                    os.killpg(self.proc.pid, sig)
                except OSError:
                    break
                try:
                    self.proc.wait(wait)
                    break
                except subprocess.TimeoutExpired:
                    continue
            with contextlib.suppress(OSError):  # whatever of the group outlived its parent (a converter)
                os.killpg(self.proc.pid, signal.SIGKILL)
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)  # an upload attack may have stored 1.6 GB here


class Client:
    """A load generator process (bench/load_clients.py): its spec on stdin, its events from stdout."""

    def __init__(self, spec: dict[str, Any], tmp: Path) -> None:
        self.err = tempfile.TemporaryFile(mode="w+", dir=tmp)
        self.proc = subprocess.Popen(
            [sys.executable, str(CLIENTS)],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.err,
            text=True,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self.say(json.dumps(spec))

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def say(self, line: str) -> None:
        try:
            assert self.proc.stdin is not None
            self.proc.stdin.write(line + "\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            pass

    def expect(self, event: str, timeout: float) -> dict[str, Any]:
        """The next message of this kind (others are skipped), or RuntimeError (gone, or too late)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise RuntimeError(f"a client sent no {event!r} within {timeout:g} s") from None
            if line is None:
                self.err.seek(0)
                raise RuntimeError(f"a client stopped before {event!r}:\n{self.err.read()[-3000:]}")
            msg = json.loads(line)
            if msg.get("event") == event:
                return msg

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)
        self.err.close()


@contextmanager
def clients(specs: list[dict[str, Any]], tmp: Path) -> Iterator[list[Client]]:
    started: list[Client] = []
    try:
        for spec in specs:
            started.append(Client(spec, tmp))
        yield started
    finally:
        for c in started:
            c.close()
