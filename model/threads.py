"""BLAS threads for a trace: one, whatever the machine.

Each step of a recurrence makes one small mat-vec (h @ U). Split across BLAS threads,
every step waits for every thread; on a machine whose other cores are busy (a browser
drawing the page, another request, another program) one descheduled thread stalls the
step for a scheduler tick, and a 1,000-step trace took 8 s instead of 70 ms in
bench/core.py. Worse, BLAS threads woken by one large product (the input projection)
spin for a while afterwards and take the core the recurrence needs. So the whole trace
runs on one BLAS thread: the mat-vec runs from cache at memory speed and never waits.

The limit is process-wide while any recurrence runs (threadpoolctl sets the BLAS
library's thread count); a counter keeps overlapping traces from restoring it early.
This OpenBLAS ignores a limit set from a thread other than the main one: a caller that
traces from worker threads (the web app does) sets one thread for the whole process
from its main thread instead (app/work.py: ``one_blas_thread``).
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

#: BLAS threads for the per-step mat-vec; None leaves the library's own choice.
STEP_THREADS: int | None = 1

_lock = threading.Lock()
_active = 0
_controller: Any = None
_modules = 0  # len(sys.modules) when the controller listed the loaded BLAS libraries
_saved: Any = None


@contextmanager
def step_threads() -> Iterator[None]:
    """Run the enclosed recurrence with ``STEP_THREADS`` BLAS threads."""
    global _active, _controller, _modules, _saved
    if STEP_THREADS is None:
        yield
        return
    with _lock:
        if _active == 0:
            # a controller knows the BLAS libraries loaded when it was made: one loaded since (SciPy brings its
            # own OpenBLAS) would keep its threads. An import is what loads one, so list them again after any
            # (making a controller takes about 1 ms; len(sys.modules) is free)
            if _controller is None or len(sys.modules) != _modules:
                from threadpoolctl import ThreadpoolController

                _controller = ThreadpoolController()
                _modules = len(sys.modules)
            _saved = _controller.limit(limits=STEP_THREADS, user_api="blas")
        _active += 1
    try:
        yield
    finally:
        with _lock:
            _active -= 1
            if _active == 0:
                _saved.restore_original_limits()
                _saved = None


#: Threads that share a batched trace's documents (``trace_batch(threads=None)``), each on one BLAS thread.
#: One, as a process of a Dask cluster runs beside others on the same cores; a lone process on an idle
#: machine can ask for one a core. (Two BLAS threads on one product of h (64, 128) @ U (128, 512) wait for
#: each other twice a step: 1.3 µs a document against 2.2 on one thread when the machine is idle, ten
#: times slower than one thread when another program keeps a core busy.)
BATCH_THREADS: int = 1


@contextmanager
def blas_threads(n: int | None) -> Iterator[None]:
    """Run the enclosed work with ``n`` BLAS threads (``STEP_THREADS`` through its counter; None: as it is)."""
    if n is None:
        yield
        return
    if n == STEP_THREADS:
        with step_threads():
            yield
        return
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=n, user_api="blas"):
        yield
