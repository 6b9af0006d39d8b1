"""The server's budget, lanes and per-client limit (app/work.py, app/limits.py), and the streamed bodies
(app/encoding.py): each in isolation. The real-server figures are test_exhaustion.py's."""

from __future__ import annotations

import asyncio
import io
import json
import threading

import numpy as np
import pytest
from fastapi import HTTPException
from fastapi.testclient import TestClient

import model
from app.encoding import iter_json, iter_npz, trace_json
from app.main import create_app
from app.settings import Settings
from app.work import MB, Budget, ClientGone, Work


def test_a_job_waits_for_memory_and_runs_once_it_is_given_back():
    async def go():
        budget = Budget(lambda: 10 * MB, wait=5)
        gone = asyncio.Event()
        await budget.reserve(8 * MB, "a trace", gone)
        waiting = asyncio.ensure_future(budget.reserve(4 * MB, "another", gone))
        await asyncio.sleep(0.05)
        assert not waiting.done()  # 8 + 4 > 10: it waits its turn
        budget.give_back(8 * MB)
        await asyncio.wait_for(waiting, 1)
        return budget.used

    assert asyncio.run(go()) == 4 * MB


def test_a_job_that_could_never_fit_is_413_and_one_that_waits_too_long_503():
    async def go():
        budget = Budget(lambda: 10 * MB, wait=0.1)
        gone = asyncio.Event()
        with pytest.raises(HTTPException) as never:
            await budget.reserve(11 * MB, "a trace of 9 steps", gone)
        await budget.reserve(6 * MB, "one", gone)
        with pytest.raises(HTTPException) as busy:
            await budget.reserve(6 * MB, "two", gone)
        return never.value, busy.value, budget.used

    never, busy, used = asyncio.run(go())
    assert never.status_code == 413 and "a trace of 9 steps would take about 11 MB" in never.detail
    assert "GATESCOPE_MAX_MEMORY_MB" in never.detail
    assert busy.status_code == 503 and "6 MB of its 10 MB are in use" in busy.detail
    assert used == 6 * MB  # the refused ones reserved nothing


def test_a_job_whose_client_leaves_while_it_waits_never_starts():
    async def go():
        work = Work(Budget(lambda: 100 * MB, wait=5), heavy_jobs=1)
        first = await work.admit(asyncio.Event(), 20 * MB, "a heavy trace")  # holds the one lane
        gone = asyncio.Event()
        second = asyncio.ensure_future(work.admit(gone, 20 * MB, "another heavy trace"))
        await asyncio.sleep(0.05)
        gone.set()
        with pytest.raises(ClientGone):
            await asyncio.wait_for(second, 1)
        first.close()
        first.close()  # twice is once
        return work.budget.used, work.lanes.locked()

    assert asyncio.run(go()) == (0, False)


def test_a_job_run_stops_its_thread_when_the_client_leaves():
    net = model.load("code")
    text = ("def f(x):\n    return x\n" * 900)[:20000]

    async def go():
        work = Work(Budget(lambda: 1 << 40, wait=5), heavy_jobs=1)
        gone = asyncio.Event()
        job = await work.admit(gone, 0, "a trace")
        asyncio.get_running_loop().call_later(0.05, gone.set)
        with pytest.raises(ClientGone):
            await job.run(net.trace, text, stop=job.stopped)
        return job.stopped()

    assert asyncio.run(go())


def test_small_traces_never_wait_for_the_heavy_lane():
    async def go():
        work = Work(Budget(lambda: 100 * MB, wait=5), heavy_jobs=1)
        heavy = await work.admit(asyncio.Event(), 20 * MB, "a heavy trace")
        small = await asyncio.wait_for(work.admit(asyncio.Event(), 1 * MB, "a small one"), 0.5)
        heavy.close(), small.close()

    asyncio.run(go())


def test_a_client_with_too_many_requests_in_progress_gets_429(monkeypatch):
    started, release = threading.Event(), threading.Event()
    trace = model.Network.trace

    def slow(self, x, **kw):
        started.set()
        release.wait(10)
        return trace(self, x, **kw)

    monkeypatch.setattr(model.Network, "trace", slow)
    with TestClient(create_app(Settings(max_client_requests=1))) as c:
        first = threading.Thread(target=lambda: c.post("/api/trace", json={"model": "code", "text": "x"}))
        first.start()
        assert started.wait(10)
        r = c.post("/api/trace", json={"model": "code", "text": "y"})
        page = c.get("/")  # the page and its files are not API requests
        release.set()
        first.join(10)
        after = c.post("/api/trace", json={"model": "code", "text": "y"})
    assert r.status_code == 429 and r.headers["retry-after"] == "1"
    assert "1 requests in progress" in r.json()["detail"] and "GATESCOPE_MAX_CLIENT_REQUESTS" in r.json()["detail"]
    assert page.status_code == 200 and after.status_code == 200


def test_a_trace_past_the_memory_budget_is_413_before_any_work(monkeypatch):
    traced = []
    trace = model.Network.trace
    monkeypatch.setattr(model.Network, "trace", lambda self, x, **kw: traced.append(1) or trace(self, x, **kw))
    with TestClient(create_app(Settings(max_memory_mb=1))) as c:  # less than the process itself: no room
        r = c.post("/api/trace?encoding=binary", json={"model": "code", "text": "x = 1"})
    assert r.status_code == 413 and "of memory; this server's budget is" in r.json()["detail"], r.text
    assert traced == []


def test_the_streamed_json_is_the_same_bytes_as_one_dumps_and_the_npz_reads_back():
    net = model.load("code")
    tr = net.trace("def f(x):\n    return x\n" * 40)  # pieces of 512 rows: several per gate
    assert "".join(iter_json("code", net, tr, 5)) == json.dumps(trace_json("code", net, tr, 5))
    z = np.load(io.BytesIO(b"".join(iter_npz(tr))), allow_pickle=False)
    for g in tr.gates:
        np.testing.assert_array_equal(z[f"layer0/{g}"], tr.layers[0][g])
    np.testing.assert_array_equal(z["probs"], tr.probs)
    assert list(z["tokens"]) == tr.tokens


def test_a_streamed_json_trace_over_http_is_what_the_schema_says():
    with TestClient(create_app()) as c:
        r = c.post("/api/trace", json={"model": "code", "text": "x = 1"})
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    body = r.json()
    assert body["tokens"] == list("x = 1") and len(body["layers"][0]["h"]) == 5 and len(body["probs"][0]) == 5


def test_an_upload_too_big_for_the_memory_left_is_507_and_nothing_is_kept(tmp_path):
    """The budget left after the process and its models (GATESCOPE_MAX_MEMORY_MB): a model may take half of it."""
    from app.work import process_rss

    from .test_uploads import FIXTURES, make_client, stored, upload

    bound = process_rss() >> 20  # what the process holds already: no room left for a model
    with make_client(tmp_path / "models", max_memory_mb=bound) as c:
        r = upload(c, FIXTURES / "onnx/stack.onnx")
        listed = [m["id"] for m in c.get("/api/models").json()]
    assert r.status_code == 507, r.text
    assert "MB in memory" in r.json()["detail"] and "GATESCOPE_MAX_MEMORY_MB" in r.json()["detail"]
    assert [n for n in stored(tmp_path / "models") if not n.startswith(".")] == [] and listed == model.available()


def test_small_jobs_compute_one_at_a_time_and_the_lane_is_free_once_computed():
    async def go():
        work = Work(Budget(lambda: 100 * MB, wait=5), heavy_jobs=1)
        first = await work.admit(asyncio.Event(), MB, "a small trace")
        second = asyncio.ensure_future(work.admit(asyncio.Event(), MB, "another"))
        await asyncio.sleep(0.05)
        waited = not second.done()
        first.computed()  # sending its answer needs no lane
        job = await asyncio.wait_for(second, 1)
        first.close(), job.close()
        return waited, work.budget.used

    assert asyncio.run(go()) == (True, 0)


def test_live_sessions_are_held_to_their_share_whatever_else_is_in_flight():
    budget = Budget(lambda: 100 * MB, wait=1)
    assert budget.take(30 * MB)  # a trace in flight
    assert budget.take_live(50 * MB, 0.6)  # 50 of the sessions' 60
    assert not budget.take_live(15 * MB, 0.6)  # 65 > 60: refused, though 95 of 100 would fit
    assert budget.take_live(10 * MB, 0.6) and budget.live == 60 * MB and budget.used == 90 * MB
    budget.adjust_live(-60 * MB)  # the sessions close ...
    assert budget.live == 0 and budget.used == 30 * MB  # ... and only their part is given back


def test_the_server_runs_every_blas_product_on_one_thread():
    """Run from worker threads, a trace left the BLAS library's other thread spinning (0.27 of the 2 cores under
    ten live sessions); a server sets one thread for good when it starts."""
    from threadpoolctl import threadpool_info, threadpool_limits

    threadpool_limits(limits=2, user_api="blas")  # as a process starts on this 2-core machine (or after a test)
    assert {i["num_threads"] for i in threadpool_info() if i.get("user_api") == "blas"} == {2}
    with TestClient(create_app()) as c:
        assert c.get("/api/models").status_code == 200
        blas = [i["num_threads"] for i in threadpool_info() if i.get("user_api") == "blas"]
    assert blas and set(blas) == {1}
