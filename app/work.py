"""The server's work for its clients, bounded and stoppable.

- ``Budget``: the memory the server's jobs may hold at once (GATESCOPE_MAX_MEMORY_MB less what the
  process holds when it starts and the models it has loaded). A job reserves its estimate before it
  starts: one that could never fit is refused with 413, one that does not fit now waits its turn
  (then 503). Live sessions may take only ``LIVE_SHARE`` of it, so a small trace always finds room.
- Jobs compute in lanes, one thread each: heavy jobs (more than ``HEAVY_BYTES``) in ``heavy_jobs``
  lanes, small ones in a lane of their own, so a few big requests cannot crowd the small ones out of
  the interpreter, and many small ones do not thrash it.
- ``Job``: one request's work. It knows when its client leaves (``gone``); a model call run through
  it gets ``stop=`` and ends with ``model.Cancelled`` within one chunk, and a job still waiting for
  its turn never starts.

Everything here runs on the event loop (reservations, lanes); only ``Job.run``'s function runs in a
worker thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import os
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, TypeVar

from fastapi import HTTPException
from starlette.concurrency import iterate_in_threadpool, run_in_threadpool
from starlette.types import Receive

import model

T = TypeVar("T")
MB = 1 << 20

#: A trace holding more than this is a heavy job: it waits for a lane.
HEAVY_BYTES = 8 * MB
#: The part of the budget live sessions may hold between them.
LIVE_SHARE = 0.6


class ClientGone(Exception):
    """The client left: its work was stopped, and nothing is sent."""


def _mb(n: int) -> str:
    return f"{n / MB:,.0f} MB" if n >= MB else f"{n / MB:.1f} MB"


class Budget:
    """Bytes the server's jobs may hold at once, reserved before each job starts."""

    def __init__(self, limit: Callable[[], int], wait: float) -> None:
        self._limit, self.wait, self.used = limit, wait, 0
        self.live = 0  # the part of ``used`` live sessions' buffers hold
        self._freed = asyncio.Event()  # set (and replaced) whenever bytes are given back

    @property
    def limit(self) -> int:
        return max(self._limit(), 0)

    def fits(self, nbytes: int) -> bool:
        return self.used + nbytes <= self.limit

    def take(self, nbytes: int) -> bool:
        """Reserve ``nbytes`` now if they fit; False if not (nothing reserved)."""
        if not self.fits(nbytes):
            return False
        self.used += nbytes
        return True

    def take_live(self, nbytes: int, share: float) -> bool:
        """Reserve ``nbytes`` more for a live session's buffer if the sessions stay within ``share`` of
        the budget and the whole within it; False if not (nothing reserved)."""
        if self.live + nbytes > self.limit * share or not self.take(nbytes):
            return False
        self.live += nbytes
        return True

    def adjust_live(self, nbytes: int) -> None:
        """A session's buffer holds ``nbytes`` more (or, negative, less) than it had reserved."""
        self.live += nbytes
        if nbytes < 0:
            self.give_back(-nbytes)
        else:
            self.used += nbytes

    async def reserve(self, nbytes: int, what: str, gone: asyncio.Event) -> None:
        """Reserve ``nbytes`` for ``what``, waiting up to ``wait`` seconds for room; 413 if it could never
        fit, 503 if no room came in time, ClientGone if the client left while it waited."""
        if nbytes > self.limit:
            raise HTTPException(
                413,
                f"{what} would take about {_mb(nbytes)} of memory; this server's budget is {_mb(self.limit)} "
                "(GATESCOPE_MAX_MEMORY_MB): trace fewer tokens",
            )
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.wait
        while not self.take(nbytes):
            if gone.is_set():
                raise ClientGone
            left = deadline - loop.time()
            if left <= 0:
                raise HTTPException(
                    503, f"the server is busy: {_mb(self.used)} of its {_mb(self.limit)} are in use; try again"
                )
            freed, leaving = asyncio.ensure_future(self._freed.wait()), asyncio.ensure_future(gone.wait())
            await asyncio.wait({freed, leaving}, timeout=left, return_when=asyncio.FIRST_COMPLETED)
            freed.cancel()
            leaving.cancel()

    def give_back(self, nbytes: int) -> None:
        self.used -= nbytes
        self._freed.set()  # wakes every waiter; each checks again
        self._freed = asyncio.Event()


class Work:
    """The server's budget and its compute lanes (one per process: app.state.work). Every job computes
    in a lane: a heavy one in one of ``heavy_jobs``, a small one in the small lane. A lane is one
    thread at a time: under the GIL more threads add no throughput, only switching (50 live sessions
    tracing at once answered 28 edits a second where one at a time answers about 100), and the small
    lane keeps a short trace from waiting behind a long one."""

    def __init__(self, budget: Budget, heavy_jobs: int, small_jobs: int = 1) -> None:
        self.budget = budget
        self.lanes = asyncio.Semaphore(heavy_jobs)
        self.small = asyncio.Semaphore(small_jobs)
        self.reading = asyncio.Semaphore(1)  # long inputs are tokenized one at a time, beside the lanes

    async def admit(self, gone: asyncio.Event, nbytes: int, what: str, computes: bool = True) -> Job:
        """A job of about ``nbytes``, once they are reserved and (if it ``computes`` here, not in a child
        process) its lane is free; close the job to give both back (``computed`` gives the lane back
        early). 413/503 (``Budget.reserve``), or ClientGone."""
        await self.budget.reserve(nbytes, what, gone)
        job = Job(self, gone, nbytes)
        if not computes:
            return job
        try:
            await job.take_lane(self.lanes if nbytes > HEAVY_BYTES else self.small)
        except BaseException:
            job.close()
            raise
        return job


class Job:
    """One client's admitted work: functions run in a worker thread and can be stopped (``stopped``
    is what a model call gets as ``stop=``) when ``gone`` is set."""

    def __init__(self, work: Work, gone: asyncio.Event, nbytes: int) -> None:
        self.work, self.gone, self.nbytes = work, gone, nbytes
        self._stop = threading.Event()  # what the worker thread reads
        self._lane: asyncio.Semaphore | None = None
        self._closed = False

    def stopped(self) -> bool:
        return self._stop.is_set()

    async def take_lane(self, lane: asyncio.Semaphore) -> None:
        taking = asyncio.ensure_future(lane.acquire())
        left = asyncio.ensure_future(self.gone.wait())
        await asyncio.wait({taking, left}, return_when=asyncio.FIRST_COMPLETED)
        left.cancel()
        if taking.done() and not taking.cancelled():
            self._lane = lane
        else:
            taking.cancel()
        if self.gone.is_set() or self._lane is None:
            raise ClientGone

    def computed(self) -> None:
        """The computing is done: give the lane to the next job (sending the result needs none)."""
        if self._lane is not None:
            self._lane.release()
            self._lane = None

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``fn(*args, **kwargs)`` in a worker thread; ClientGone if the client left meanwhile (then the
        thread was told to stop, and this returns only once it has)."""
        task = asyncio.ensure_future(run_in_threadpool(fn, *args, **kwargs))
        left = asyncio.ensure_future(self.gone.wait())
        try:
            await asyncio.wait({task, left}, return_when=asyncio.FIRST_COMPLETED)
            if not task.done():
                self._stop.set()  # a model call ends within a chunk ...
                with contextlib.suppress(model.Cancelled):
                    await task  # ... and only then is its memory given back
                raise ClientGone
            return task.result()
        finally:
            left.cancel()

    async def stream(self, pieces: Iterator[Any]) -> AsyncIterator[Any]:
        """``pieces``, each made in a worker thread, for a streamed response; the job closes when the
        stream ends or stops (a client that leaves stops it between pieces)."""
        try:
            async for piece in iterate_in_threadpool(pieces):
                yield piece
        finally:
            self.close()

    def close(self) -> None:
        """Give back the lane and the bytes (once)."""
        if self._closed:
            return
        self._closed = True
        self.computed()
        self.work.budget.give_back(self.nbytes)


def watch_disconnect(receive: Receive) -> tuple[asyncio.Event, asyncio.Task[None]]:
    """An event set when the HTTP client disconnects (the request body must be read already), and
    the task that watches for it (cancel it when the response is done)."""
    gone = asyncio.Event()

    async def watch() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
        gone.set()

    return gone, asyncio.ensure_future(watch())


def process_rss() -> int:
    """This process's resident memory in bytes (Linux /proc; 0 where unknown)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


_libc: Any = None
#: glibc's mallopt parameter: allocations from this size on get pages of their own (M_MMAP_THRESHOLD).
M_MMAP_THRESHOLD = -3


def _c() -> Any:
    global _libc
    if _libc is None:
        name = ctypes.util.find_library("c")
        _libc = ctypes.CDLL(name) if name else False
    return _libc


def one_blas_thread() -> None:
    """Every BLAS product of this process on one thread, for good. A trace limits BLAS to one thread while
    it runs (model/threads.py), but run from a worker thread, as the server runs it, the library's other
    thread still spun beside it: 0.27 of the 2 cores under ten live sessions, 1.0 core in a loop of
    edits. A server's products are all small; its cores are for its requests (and its other workers).
    Call it from the main thread: this OpenBLAS ignores the setting made from another thread."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1, user_api="blas")


def own_pages_for_big_arrays() -> None:
    """Give every allocation of 1 MB or more (a trace's arrays) pages of its own, returned to the system
    when freed. glibc otherwise raises that threshold as big blocks are freed, up to 32 MB, and then keeps
    freed trace rows in its heaps. (malloc_trim would hand them back too, but took 240 ms on a fragmented
    heap, with the interpreter held.)"""
    libc = _c()
    if libc and hasattr(libc, "mallopt"):
        libc.mallopt(M_MMAP_THRESHOLD, 1 << 20)
