"""Several workers on one models folder (``gatescope serve --workers N``): what one worker uploads or
deletes, every other one lists, traces or 404s on its next request; two uploads at once lose nothing;
the conversion limit and the start-up clean-up hold across processes; live sessions are shared out."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

import model
from app.main import create_app
from app.registry import MTIME_GRANULARITY
from app.settings import Settings
from app.uploads import Store
from tests.app.test_uploads import FIXTURES, make_client, stored, upload

ROOT = Path(__file__).resolve().parents[2]
ONNX = FIXTURES / "onnx/peephole.onnx"  # a vector model: 1 × 4 peephole LSTM
TEXT, VOCAB = FIXTURES / "torch/gru_text.safetensors", FIXTURES / "torch/gru_text.vocab.json"


def ids(client: TestClient) -> list[str]:
    return [c["id"] for c in client.get("/api/models").json()]


def trace(client: TestClient, name: str):
    return client.post("/api/trace", json={"model": name, "vectors": [[0.5, -0.25, 1.0, 0.0]] * 3})


def test_what_one_worker_uploads_or_deletes_the_other_lists_traces_or_404s(tmp_path):
    models = tmp_path / "models"
    with make_client(models) as a, make_client(models) as b:
        assert "shared" not in ids(b)
        assert upload(a, ONNX, name="shared").status_code == 201
        assert "shared" in ids(b)
        assert b.get("/api/models/shared").json()["cell"] == "peephole"
        got, want = trace(b, "shared"), trace(a, "shared")
        assert got.status_code == 200 and got.json() == want.json()

        assert a.delete("/api/models/shared").status_code == 204
        assert b.get("/api/models/shared").status_code == 404
        assert "shared" not in ids(b)
        r = trace(b, "shared")
        assert r.status_code == 404 and "no model 'shared'" in r.json()["detail"]
        assert b.delete("/api/models/shared").status_code == 404

        r = upload(a, TEXT, name="shared", vocab=VOCAB)  # the same name, another model
        assert r.status_code == 201, r.text
        card = b.get("/api/models/shared").json()
        assert (card["cell"], card["input"]) == ("gru", "text")
        r = b.post("/api/trace", json={"model": "shared", "text": "abc"})
        assert r.status_code == 200 and r.json()["tokens"] == ["a", "b", "c"]


def test_a_live_session_keeps_its_model_until_another_worker_deletes_it(tmp_path):
    """An upload elsewhere does not reload the session's model (the next edit still sends only the new
    steps); a delete elsewhere makes the next edit a 404, in the words of POST /api/trace."""
    models = tmp_path / "models"
    with make_client(models) as a, make_client(models) as b:
        assert upload(a, TEXT, name="typed", vocab=VOCAB).status_code == 201
        with b.websocket_connect("/api/live") as ws:
            ws.send_json({"seq": 1, "model": "typed", "text": "ab"})
            assert ws.receive_json()["length"] == 2
            assert upload(a, ONNX, name="other").status_code == 201
            ws.send_json({"seq": 2, "model": "typed", "text": "abc"})
            reply = ws.receive_json()
            assert (reply["from"], reply["length"]) == (2, 3)  # the buffer was kept: only the new step
            assert "other" in ids(b)
            assert a.delete("/api/models/typed").status_code == 204
            ws.send_json({"seq": 3, "model": "typed", "text": "abcd"})
            assert ws.receive_json() == {"seq": 3, "error": "no model 'typed'; GET /api/models lists them"}


def test_two_changes_within_the_timestamp_granularity_are_both_seen(tmp_path):
    """A change that leaves the folder's mtime as it was (a coarse clock): still seen by the next request,
    because a listing made that soon after a change is not trusted."""
    models = tmp_path / "models"
    with make_client(models) as a, make_client(models) as b:
        assert upload(a, ONNX, name="first").status_code == 201
        assert "first" in ids(b)
        before = models.stat().st_mtime_ns
        assert upload(a, ONNX, name="second").status_code == 201
        os.utime(models, ns=(before, before))  # as if both renames fell in one tick of the clock
        assert "second" in ids(b)


def test_a_quiet_folder_costs_one_stat_a_request_not_a_listing(tmp_path, monkeypatch):
    models = tmp_path / "models"
    with make_client(models) as a:
        assert upload(a, ONNX, name="old").status_code == 201
    past = time.time_ns() - int(3 * MTIME_GRANULARITY * 1e9)
    os.utime(models, ns=(past, past))  # last changed long ago
    with make_client(models) as b:
        assert "old" in ids(b)
        listings = []
        real = Store.versions
        monkeypatch.setattr(Store, "versions", lambda self: listings.append(1) or real(self))
        for _ in range(10):
            assert trace(b, "old").status_code == 200
        assert listings == []
        with make_client(models) as a:
            assert upload(a, ONNX, name="new").status_code == 201
        assert "new" in ids(b) and listings


def test_a_delete_another_worker_made_a_moment_before_is_a_404(tmp_path):
    """B's listing is a moment old (the folder's mtime put back as it was: B has no reason to look again):
    its delete finds the folder gone and says so, instead of a 503."""
    models = tmp_path / "models"
    with make_client(models) as a:
        assert upload(a, ONNX, name="both").status_code == 201
    past = time.time_ns() - int(3 * MTIME_GRANULARITY * 1e9)
    os.utime(models, ns=(past, past))
    with make_client(models) as a, make_client(models) as b:
        assert "both" in ids(b)
        assert a.delete("/api/models/both").status_code == 204
        os.utime(models, ns=(past, past))
        r = b.delete("/api/models/both")
        assert r.status_code == 404 and "no model 'both'" in r.json()["detail"], r.text
        assert "both" not in ids(b)


def _tiny_model(out: Path) -> None:
    spec = model.Spec("lstm", 2, 3)
    rng = np.random.default_rng(0)
    params = {n: rng.normal(0, 0.5, spec.expected_shape(n)).astype(np.float32) for n in spec.param_names()}
    model.save(model.Network(spec, params), out)


def _at_once(calls):
    """Run the calls in threads, together; their results in order."""
    results: list = [None] * len(calls)
    threads = [threading.Thread(target=lambda k=k: results.__setitem__(k, calls[k]())) for k in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results


@pytest.fixture
def converters_meet(monkeypatch):
    """Both uploads' converters run before either model is kept (they wait for each other): the two
    uploads chose their ids from the same, empty, folder."""
    import app.uploads as uploads

    barrier, real = threading.Barrier(2, timeout=30), uploads.convert

    def together(*args):
        barrier.wait()
        return real(*args)

    monkeypatch.setattr(uploads, "convert", together)


def test_two_workers_uploading_one_file_at_once_keep_two_models(tmp_path, converters_meet):
    models = tmp_path / "models"
    with make_client(models, max_conversions=2) as a, make_client(models, max_conversions=2) as b:
        r1, r2 = _at_once([lambda: upload(a, ONNX), lambda: upload(b, ONNX)])
        assert (r1.status_code, r2.status_code) == (201, 201), (r1.text, r2.text)
        made = {r1.json()["id"], r2.json()["id"]}
        assert made == {"peephole", "peephole-2"}
        assert made <= set(ids(a)) and made <= set(ids(b))
    assert stored(models) == ["peephole", "peephole-2"]


def test_two_workers_uploading_one_name_at_once_keep_one_and_say_so_to_the_other(tmp_path, converters_meet):
    models = tmp_path / "models"
    with make_client(models, max_conversions=2) as a, make_client(models, max_conversions=2) as b:
        r1, r2 = _at_once([lambda: upload(a, ONNX, name="mine"), lambda: upload(b, TEXT, name="mine", vocab=VOCAB)])
        codes = sorted([r1.status_code, r2.status_code])
        assert codes == [201, 409], (r1.text, r2.text)
        lost = r1 if r1.status_code == 409 else r2
        assert "'mine' exists already" in lost.json()["detail"]
        kept = (r1 if r1.status_code == 201 else r2).json()
        assert a.get("/api/models/mine").json()["cell"] == b.get("/api/models/mine").json()["cell"] == kept["cell"]
    assert stored(models) == ["mine"]


def test_the_model_limit_holds_for_uploads_converted_at_once(tmp_path, converters_meet):
    """Both passed the first check (one model kept, at most two); the second to be kept is refused."""
    models = tmp_path / "models"
    (models / "one").mkdir(parents=True)
    _tiny_model(models / "one" / "model.safetensors")
    limits = {"max_conversions": 2, "max_models": 2}
    with make_client(models, **limits) as a, make_client(models, **limits) as b:
        r1, r2 = _at_once([lambda: upload(a, ONNX, name="two"), lambda: upload(b, ONNX, name="three")])
        assert sorted([r1.status_code, r2.status_code]) == [201, 507], (r1.text, r2.text)
        refused = r1 if r1.status_code == 507 else r2
        assert "at most 2 uploaded models" in refused.json()["detail"]
    assert len(stored(models)) == 2 and "one" in stored(models)


def test_two_stores_on_one_folder_never_run_two_converters_at_once(tmp_path, monkeypatch):
    """Two workers (two Stores, each with its own threads), GATESCOPE_MAX_CONVERSIONS=1: one at a time."""
    import app.uploads as uploads

    running, most, lock = [0], [0], threading.Lock()

    def counted(source, vocab, out, timeout, *rest):
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        time.sleep(0.2)  # a conversion that takes a while, for the others to overlap it if they can
        _tiny_model(out)
        with lock:
            running[0] -= 1
        return {"ok": True}

    monkeypatch.setattr(uploads, "convert", counted)
    models = tmp_path / "models"
    a, b = Store(models, conversions=1), Store(models, conversions=1)
    stores = [a, b, a, b]
    results = _at_once([lambda k=k: stores[k].add([f"m{k}"], ONNX, "m.onnx", None, 10)[0] for k in range(4)])
    assert results == ["m0", "m1", "m2", "m3"] and most[0] == 1


def _child(script: str, *args: str) -> subprocess.Popen:
    """A Python child running ``script`` with this checkout importable; its stdout is a pipe."""
    return subprocess.Popen(
        [sys.executable, "-c", script, *args],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


def _line(proc: subprocess.Popen, timeout: float = 30) -> str:
    """The child's next line of output, within ``timeout`` seconds."""
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    assert ready, "the child said nothing in time"
    return proc.stdout.readline().strip()


HOLD_LOCK = """
import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)
fcntl.flock(fd, fcntl.LOCK_EX)
print("held", flush=True)
sys.stdin.read()
"""


def test_a_conversion_waits_while_another_process_holds_the_only_slot(tmp_path, monkeypatch):
    import app.uploads as uploads

    converting = threading.Event()

    def fake(source, vocab, out, timeout, *rest):
        converting.set()
        _tiny_model(out)
        return {"ok": True}

    monkeypatch.setattr(uploads, "convert", fake)
    models = tmp_path / "models"
    (models / ".locks").mkdir(parents=True)
    other = _child(HOLD_LOCK, str(models / ".locks" / "conversion-0"))
    try:
        assert _line(other) == "held"
        done: list = []
        t = threading.Thread(target=lambda: done.append(Store(models).add(["m"], ONNX, "m.onnx", None, 10)))
        t.start()
        assert not converting.wait(0.5)  # the other process converts: this one waits
        other.stdin.close()  # type: ignore[union-attr]  # the other process is done (and exits)
        assert converting.wait(20)
        t.join(20)
        assert done and done[0][0] == "m"
    finally:
        other.kill()
        other.wait(10)


UPLOAD_THAT_HANGS = """
import sys
from pathlib import Path
import app.uploads as uploads

def hang(source, vocab, out, timeout, *rest):
    print("converting", flush=True)
    sys.stdin.read()  # until the test kills this process

uploads.convert = hang
uploads.Store(Path(sys.argv[1])).add(["m"], Path(sys.argv[2]), "m.onnx", None, 60)
"""


def test_clean_leaves_a_live_upload_in_another_process_alone_and_removes_a_dead_ones(tmp_path):
    models = tmp_path / "models"
    (models / ".staging-old").mkdir(parents=True)  # from before: nobody holds it
    (models / ".staging-old" / "model.safetensors").write_bytes(b"half written")
    other = _child(UPLOAD_THAT_HANGS, str(models), str(ONNX))
    try:
        assert _line(other) == "converting"
        live = [p.name for p in models.iterdir() if p.name.startswith(".staging-") and p.name != ".staging-old"]
        assert len(live) == 1
        assert Store(models).clean() == [".staging-old"]  # a worker starting meanwhile
        assert (models / live[0]).is_dir()
        other.send_signal(signal.SIGKILL)  # the upload's process dies mid-conversion
        other.wait(10)
        assert Store(models).clean() == live  # the next start removes what it left
    finally:
        other.kill()
        other.wait(10)
    assert stored(models) == []


def test_each_worker_holds_max_sessions_and_says_so_when_full(tmp_path):
    """Not a share of it: the kernel spreads connections unevenly (50 sessions on 2 workers sharing 64 out as
    32 each saw 24 refused); the memory budget, divided by the workers, bounds what they hold."""
    settings = Settings(models_dir=tmp_path / "models", max_sessions=2, workers=2)
    with TestClient(create_app(settings)) as c:
        with c.websocket_connect("/api/live") as first, c.websocket_connect("/api/live"):
            with c.websocket_connect("/api/live") as third:
                third.send_json({"seq": 1, "model": "code", "text": "x"})  # an answer either way: no wait without end
                answer = third.receive_json()
            first.send_json({"seq": 1, "model": "code", "text": "x"})
            assert first.receive_json()["length"] == 1
    assert answer == {"error": "each of this server's workers holds at most 2 live sessions; try later"}


# A real `gatescope serve --workers 2`: which worker answered a connection is read from /proc (the worker
# process that holds the server's end of it), so the test knows both workers answered.

PROC = Path("/proc/net/tcp")


def _workers_of(pid: int) -> list[int]:
    """The uvicorn worker processes under the server's process ``pid``."""
    found = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
                cmd = (d / "cmdline").read_bytes()
            except (OSError, IndexError, ValueError):
                continue
            if ppid == pid and b"spawn_main" in cmd:
                found.append(int(d.name))
    return sorted(found)


def _served_by(sock_name: tuple[str, int], port: int, workers: list[int]) -> int | None:
    """The worker holding the server's end of the connection from ``sock_name`` to 127.0.0.1:``port``."""
    here, there = f"0100007F:{port:04X}", f"0100007F:{sock_name[1]:04X}"
    inode = next(
        (f[9] for f in (line.split() for line in PROC.read_text().splitlines()[1:]) if (f[1], f[2]) == (here, there)),
        None,
    )
    for w in workers:
        for fd in Path(f"/proc/{w}/fd").iterdir():
            try:
                if os.readlink(fd) == f"socket:[{inode}]":
                    return w
            except OSError:
                continue
    return None


def _fresh(port: int, workers: list[int], method: str, path: str, body: bytes | None = None, headers=None):
    """One request on a new connection: (status, JSON body, the worker that answered)."""
    import http.client
    import json

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    try:
        conn.request(method, path, body, headers or {})
        r = conn.getresponse()
        data = r.read()
        return r.status, json.loads(data) if data else None, _served_by(conn.sock.getsockname(), port, workers)
    finally:
        conn.close()


def _form(path: Path, name: str) -> tuple[bytes, dict[str, str]]:
    """A multipart upload form: the file and its name."""
    b = "gatescope-test-boundary"
    head = f'--{b}\r\nContent-Disposition: form-data; name="file"; filename="{path.name}"\r\n'
    head += "Content-Type: application/octet-stream\r\n\r\n"
    tail = f'\r\n--{b}\r\nContent-Disposition: form-data; name="name"\r\n\r\n{name}\r\n--{b}--\r\n'
    return head.encode() + path.read_bytes() + tail.encode(), {"Content-Type": f"multipart/form-data; boundary={b}"}


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.skipif(not PROC.exists(), reason="needs Linux's /proc to tell the workers apart")
def test_gatescope_serve_with_two_workers_shows_every_change_on_every_connection(tmp_path):
    port, log_path = _free_port(), tmp_path / "server.log"
    cmd = [sys.executable, "-m", "app.cli", "serve", "--port", str(port), "--models", str(tmp_path / "models")]
    with open(log_path, "wb") as log:
        server = subprocess.Popen(
            [*cmd, "--workers", "2"],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its workers too are killed at the end, as one process group
        )
    try:
        deadline = time.monotonic() + 60
        while log_path.read_text().count("Application startup complete") < 2:  # both workers are serving
            assert server.poll() is None and time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.1)
        workers = _workers_of(server.pid)
        assert len(workers) == 2, workers

        def everyone(method: str, path: str) -> list[tuple[int, object]]:
            """At least 20 fresh connections, until both workers answered (at most 200): the answers."""
            seen, answers = set(), []
            while len(answers) < 20 or (len(seen) < 2 and len(answers) < 200):
                status, body, worker = _fresh(port, workers, method, path)
                seen.add(worker)
                answers.append((status, body))
            assert seen == set(workers), f"only {seen} of {workers} answered {len(answers)} connections"
            return answers

        status, card, uploader = _fresh(port, workers, "POST", "/api/models", *_form(ONNX, "shared"))
        assert status == 201 and card["id"] == "shared", card
        assert uploader in workers
        listed = everyone("GET", "/api/models")
        assert all(s == 200 and "shared" in [c["id"] for c in body] for s, body in listed)

        status, _, _ = _fresh(port, workers, "DELETE", "/api/models/shared")
        assert status == 204
        gone = everyone("GET", "/api/models/shared")
        assert all(s == 404 and "no model 'shared'" in body["detail"] for s, body in gone)
        listed = everyone("GET", "/api/models")
        assert all(s == 200 and "shared" not in [c["id"] for c in body] for s, body in listed)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(10)
    assert "Traceback" not in log_path.read_text()


def _serve(*flags: str, **env: str) -> tuple[int, str]:
    """``gatescope serve`` with these flags and settings, expected to stop by itself: (exit code, stderr)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "serve", "--port", str(_free_port()), *flags],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), **env},
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        start_new_session=True,  # a server that does not stop is killed with its workers
    )
    try:
        _, err = proc.communicate(timeout=60)
        return proc.returncode, err
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


def test_serve_refuses_fewer_than_one_worker_with_a_usage_message():
    for value, words in [("0", "must be 1 or more, not 0"), ("two", "must be a whole number of processes")]:
        code, err = _serve("--workers", value)
        assert code == 2 and f"argument --workers: {words}" in err, err
        assert "Traceback" not in err


def test_serve_with_workers_stops_once_on_a_bad_setting_instead_of_restarting_them():
    """Each worker read the bad value, failed with a traceback and was started again, without end."""
    code, err = _serve("--workers", "2", GATESCOPE_MAX_TOKENS="abc")
    assert code == 2, err[-2000:]
    assert "gatescope serve: GATESCOPE_MAX_TOKENS='abc'" in err and "Traceback" not in err
