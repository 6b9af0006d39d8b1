"""The attribution kernels of each cell kind, compiled before a user waits on them: when a model is first traced,
its kind (model/warm.py's ``kernel_kind``) is queued, and one daemon thread warms the queued kinds one at a time,
each in a child process (``python -m model.warm KIND``). The child pays numba's compile (~5-7 s of CPU a kind on a
fresh install) and its ~190 MB, and leaves numba's disk cache behind; the server's own first attribution then
loads the kernels from there. Nothing starts with the server: its start-up memory is what the budget is based on.

A kind is "cold" (never asked, and not in numba's disk cache), "compiling" (queued, or its child running), "ready"
(compiled, or found in the cache: model/warm.py's ``cached`` reads the cache's file names, and no child starts) or
"failed" (the child failed or timed out: the first attribution compiles in the server, as without warming).
``POST /api/attribute`` waits for a kind that is compiling (rather than compiling it a second time beside the
child), and ``GET /api/models/{id}/attribution`` says which, so the page can say why its first attribution waits."""

from __future__ import annotations

import logging
import os
import queue
import subprocess
import sys
import threading
from pathlib import Path

from starlette.datastructures import State

import model
from model.warm import cached, kernel_kind

log = logging.getLogger("gatescope")

#: Seconds one child may take before it is stopped (a fresh compile of one kind takes ~7 s of CPU).
CHILD_TIMEOUT = 300.0


class Warmer:
    """Warms cell kinds' attribution kernels in child processes, one at a time, on a thread started at the first
    ``want``. ``enabled`` False: every kind stays "cold" and nothing is started (GATESCOPE_WARM_ATTRIBUTION=0)."""

    def __init__(self, enabled: bool = True, timeout: float = CHILD_TIMEOUT) -> None:
        self.enabled, self.timeout = enabled, timeout
        self._lock = threading.Lock()
        self._states: dict[str, str] = {}
        self._queue: queue.Queue[str | None] = queue.Queue()  # at most one entry a kind: bounded by the kinds
        self._thread: threading.Thread | None = None
        self._child: subprocess.Popen[bytes] | None = None
        self._closed = False

    def state(self, kind: str | None) -> str:
        """ "cold", "compiling", "ready" or "failed"; None (no compiled kernels for that model): "ready"."""
        if kind is None:
            return "ready"
        with self._lock:
            state = self._states.get(kind)
        return state or ("ready" if cached(kind) else "cold")

    def want(self, kind: str | None) -> None:
        """Queue ``kind`` unless it is queued, running or done (None: nothing to warm)."""
        if kind is None or not self.enabled:
            return
        with self._lock:  # every trace asks: a kind seen before costs a look-up, not a walk of numba's cache
            if self._closed or kind in self._states:
                return
        ready = cached(kind)  # a few file names: numba's cache holds them already, nothing to compile
        with self._lock:
            if self._closed or kind in self._states:
                return
            if ready:
                self._states[kind] = "ready"
                return
            self._states[kind] = "compiling"
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="gatescope-warm", daemon=True)
                self._thread.start()
        self._queue.put(kind)

    def loaded(self, kind: str | None) -> None:
        """``kind``'s kernels ran in this process (compiled or loaded here): ready, whatever the warming did."""
        if kind is None:
            return
        with self._lock:
            if self._states.get(kind) != "compiling":  # a running child still sets its state when it ends
                self._states[kind] = "ready"

    def close(self) -> None:
        """Stop the thread and any child (the server is stopping)."""
        with self._lock:
            self._closed = True
            child = self._child
        self._queue.put(None)
        if child is not None and child.poll() is None:
            child.kill()

    def _run(self) -> None:
        while True:
            kind = self._queue.get()
            if kind is None:
                return
            ok = self._warm(kind)
            with self._lock:
                self._states[kind] = "ready" if ok else "failed"

    def _warm(self, kind: str) -> bool:
        """One child process for ``kind``: whether it finished well."""
        root = str(Path(model.__file__).resolve().parent.parent)  # the model package this server runs
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([root, *filter(None, [os.environ.get("PYTHONPATH")])])}
        with self._lock:
            if self._closed:
                return False
            child = self._child = subprocess.Popen(
                [sys.executable, "-m", "model.warm", kind],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
        try:
            _, err = child.communicate(timeout=self.timeout)
        except subprocess.TimeoutExpired:
            child.kill()
            child.communicate()
            log.warning("gatescope: compiling the %s attribution kernels took over %.0f s; stopped", kind, self.timeout)
            return False
        finally:
            with self._lock:
                self._child = None
        if child.returncode != 0:
            if not self._closed:
                tail = err.decode(errors="replace").strip().splitlines()[-1:] or ["no message"]
                log.warning("gatescope: compiling the %s attribution kernels failed: %s", kind, tail[0])
            return False
        return True


def warm_soon(state: State, net: model.Network) -> None:
    """``net`` is being traced: queue its cell kind's kernels (app.state.warmer), unless they are queued or done."""
    warmer: Warmer | None = getattr(state, "warmer", None)
    if warmer is not None and warmer.enabled:
        warmer.want(kernel_kind(net))
