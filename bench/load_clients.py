"""The load generators of bench/load.py, each in a process of its own so that its CPU is its own.

    python bench/load_clients.py        (a JSON spec on stdin's first line; bench/load.py starts it)

The protocol, one JSON object a line: the spec arrives on stdin; the process connects and warms up, prints
``{"event": "ready"}``, waits for ``go`` on stdin, runs, and prints ``{"event": "result", ...}`` (the raw
samples: the coordinator computes every figure). Roles:

- ``load``: live sessions and trace clients for ``seconds``. A live session types into its own text: every
  ``period`` seconds (on a fixed schedule, late sends are not skipped) it inserts or deletes one character in
  the middle third and sends ``{"model", "text", "seq", "encoding": "binary"}``. The server answers the newest
  waiting edit only, so an edit's latency runs from its sending to the first reply of its seq or a later one:
  when the screen shows it. Each reply is checked: ``length`` is the number of characters that seq sent (the
  char model ``code``: one token a character), ``from`` is at most the first position where that text differs
  from the one the previous reply traced, and the tokens it carries are that text from ``from`` on. An edit
  is lost when the session's last edit is never answered (``drain`` seconds after the end), or when a reply's
  content is wrong. Only the binary frame's JSON header is parsed, never its arrays.
  A trace client posts ``POST /api/trace?encoding=compact`` of ~40 characters, waits ``pause``, and again.
- ``bystander``: one trace client (small texts) until ``stop`` arrives on stdin.
- ``attack``: one of ``ATTACKS``; it prints ``{"event": "left", "t"}`` the moment its clients have left.

HTTP is a few lines of asyncio (HTTP/1.1, kept alive), the live socket is ``websockets``: the clients stay
lean, but on a 2-core machine they still compete with the server (bench/load.py reports their CPU).
Every connection goes to 127.0.0.1 and every wait is bounded. Each client connects from an address of its
own in 127.0.0.0/8 (``local_addr``), as separate people would: the server's per-client limits
(GATESCOPE_MAX_CLIENT_REQUESTS) see 70 clients, not one; an attack comes from one address of its own.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import struct
import sys
import threading
import time
from typing import Any

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, ConnectionClosedOK

#: The most seconds one HTTP request or one socket reply may take before it counts as an error.
REQUEST_TIMEOUT = 60.0
#: The live socket's binary frames start with this (app/encoding.py: dumps_binary).
MAGIC = b"GSC1"


def emit(event: str, **fields: Any) -> None:
    sys.stdout.write(json.dumps({"event": event, **fields}) + "\n")
    sys.stdout.flush()


class Commands:
    """Lines from stdin (``go``, ``stop``) as asyncio events, read by a thread."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.go, self.stop = asyncio.Event(), asyncio.Event()
        self.go_at = 0.0
        threading.Thread(target=self._read, args=(loop,), daemon=True).start()

    def _read(self, loop: asyncio.AbstractEventLoop) -> None:
        for line in sys.stdin:
            word = line.strip()
            if word == "go":
                loop.call_soon_threadsafe(self._go)
            elif word == "stop":
                loop.call_soon_threadsafe(self.stop.set)
        loop.call_soon_threadsafe(self.stop.set)  # the coordinator went away

    def _go(self) -> None:
        self.go_at = time.monotonic()
        self.go.set()


# HTTP/1.1 over asyncio streams: just enough for a kept-alive client.


class Http:
    """One kept-alive HTTP/1.1 connection to the server (reconnects after the server closes it)."""

    def __init__(self, host: str, port: int, local: str) -> None:
        self.host, self.port, self.local = host, port, local
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(
        self, method: str, path: str, body: bytes = b"", ctype: str = "application/json"
    ) -> tuple[int, bytes]:
        """The status and the whole body; raises OSError (or asyncio.IncompleteReadError) on a broken connection."""
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port, local_addr=(self.local, 0))
        assert self.reader is not None
        head = f"{method} {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\nContent-Type: {ctype}\r\n"
        self.writer.write(f"{head}Content-Length: {len(body)}\r\n\r\n".encode() + body)
        try:
            status, headers = await read_head(self.reader)
            if "content-length" in headers:
                data = await self.reader.readexactly(int(headers["content-length"]))
            elif headers.get("transfer-encoding") == "chunked":
                data = await read_chunked(self.reader)
            else:
                data = await self.reader.read()
        except BaseException:
            self.close()
            raise
        if (
            headers.get("connection") == "close"
            or "content-length" not in headers
            and "transfer-encoding" not in headers
        ):
            self.close()
        return status, data

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


async def read_head(reader: asyncio.StreamReader) -> tuple[int, dict[str, str]]:
    """A response's status and headers (names in lower case)."""
    raw = await reader.readuntil(b"\r\n\r\n")
    lines = raw.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    return status, headers


async def read_chunked(reader: asyncio.StreamReader) -> bytes:
    parts = []
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
        parts.append(await reader.readexactly(size + 2))
        if size == 0:
            return b"".join(p[:-2] for p in parts)


def detail_of(status: int, body: bytes) -> str:
    """A refusal's ``detail`` (or the first bytes of what came back)."""
    try:
        detail = json.loads(body).get("detail")
        return str(detail) if detail is not None else body[:120].decode("utf-8", "replace")
    except (ValueError, AttributeError):
        return body[:120].decode("utf-8", "replace")


# The plain load: live sessions and trace clients.


class LiveSession:
    """One live-typing socket: its text, every edit's send time, the replies' checks."""

    def __init__(self, url: str, local: str, text: str, charset: str, period: float, seed: int) -> None:
        self.url, self.local, self.period, self.charset = url, local, period, charset
        self.text, self.base_len = text, len(text)
        self.rng = random.Random(seed)
        self.sent: list[float] = []  # send time of each seq (seq 0 is the warm-up)
        self.texts: list[str] = []  # the text each seq sent
        self.latency: list[float | None] = []
        self.resolved = 0  # every seq below this has been shown by a reply
        self.traced = ""  # the text of the last answered edit: the server's buffer
        self.replies = self.steps = self.wrong = 0
        self.errors: list[str] = []  # error replies, unreadable frames, a socket closed by the server
        self.wrong_example = ""
        self.last_answered = asyncio.Event()
        self.ws: Any = None

    async def open(self) -> None:
        """Connect and trace the whole text once (seq 0, not counted); a failure is an error, not a crash."""
        try:
            self.ws = await socket_to(self.url, self.local)
            self.receiver = asyncio.create_task(self._receive())
            await self._send()
            await asyncio.wait_for(self.last_answered.wait(), REQUEST_TIMEOUT)
        except (OSError, TimeoutError, ConnectionClosed) as e:
            self.errors.append(f"the session did not open: {type(e).__name__} {e}"[:200])
            self.ws = None

    async def run(self, start: float, seconds: float, drain: float) -> None:
        """Edit on schedule until start + seconds, then wait (at most drain seconds) for the last edit's reply."""
        if self.ws is None:
            return
        k = 1
        phase = self.rng.random() * self.period  # sessions do not all send at the same instant
        while (due := start + phase + k * self.period) < start + seconds:
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            if self.receiver.done():
                break
            self._edit()
            await self._send()
            k += 1
        try:
            await asyncio.wait_for(self.last_answered.wait(), drain)
        except TimeoutError:
            pass
        await self.ws.close()
        self.receiver.cancel()

    def _edit(self) -> None:
        """Insert or delete one character in the middle third (the text stays within ±5% of its length)."""
        n = len(self.text)
        at = self.rng.randrange(n // 3, 2 * n // 3)
        insert = n < 0.95 * self.base_len or (n <= 1.05 * self.base_len and self.rng.random() < 0.5)
        if insert:
            self.text = self.text[:at] + self.rng.choice(self.charset) + self.text[at:]
        else:
            self.text = self.text[:at] + self.text[at + 1 :]

    async def _send(self) -> None:
        seq = len(self.sent)
        self.texts.append(self.text)
        self.latency.append(None)
        self.last_answered.clear()
        msg = json.dumps({"model": "code", "text": self.text, "seq": seq, "encoding": "binary"})
        self.sent.append(time.monotonic())
        await self.ws.send(msg)

    async def _receive(self) -> None:
        try:
            async for frame in self.ws:
                now = time.monotonic()
                try:
                    head = _header(frame)
                except ValueError as e:
                    self.errors.append(str(e))
                    continue
                seq = head.get("seq")
                if "error" in head or not isinstance(seq, int) or not 0 <= seq < len(self.sent):
                    self.errors.append(str(head.get("error", f"a reply with seq {seq!r}"))[:200])
                    continue
                self._check(seq, head)
                for s in range(self.resolved, seq + 1):  # the screen now shows these edits
                    self.latency[s] = now - self.sent[s]
                self.resolved = max(self.resolved, seq + 1)
                if seq == len(self.sent) - 1:
                    self.last_answered.set()
        except ConnectionClosedOK:
            pass
        except ConnectionClosed as e:  # the server closed it (1011, 1013) or the connection broke
            said = f"with {e.rcvd.code} {e.rcvd.reason}" if e.rcvd is not None else "without a close frame"
            self.errors.append(f"the socket closed {said}")

    def _check(self, seq: int, head: dict[str, Any]) -> None:
        """Is this reply that seq's text, and does it start no later than the first change?"""
        text = self.texts[seq]
        k, length, tokens = head.get("from"), head.get("length"), head.get("tokens")
        first_change = len(os.path.commonprefix([self.traced, text]))
        if (
            length != len(text)
            or not isinstance(k, int)
            or not 0 <= k <= first_change
            or not isinstance(tokens, list)
            or "".join(tokens) != text[k:]
        ):
            self.wrong += 1
            if self.wrong == 1:
                got = f"from {k}, length {length}, {len(tokens) if isinstance(tokens, list) else '?'} tokens"
                self.wrong_example = (
                    f"seq {seq}: {got}; its text has {len(text)} characters, first change at {first_change}"
                )
        self.traced = text
        self.replies += 1
        self.steps += len(tokens) if isinstance(tokens, list) else 0

    def result(self) -> dict[str, Any]:
        last = len(self.sent) - 1
        edits = [
            (round(t, 4), None if lat is None else round(lat, 5)) for t, lat in zip(self.sent[1:], self.latency[1:])
        ]
        if not self.sent:  # never opened
            return {
                "edits": [],
                "replies": 0,
                "steps": 0,
                "last_unanswered": False,
                "wrong": 0,
                "wrong_example": "",
                "errors": self.errors,
            }
        return {
            "edits": edits,
            "replies": self.replies - 1,
            "steps": self.steps,
            "last_unanswered": last > 0 and self.latency[last] is None,
            "wrong": self.wrong,
            "wrong_example": self.wrong_example,
            "errors": self.errors,
        }


async def socket_to(url: str, local: str) -> Any:
    """A live socket from the address ``local`` (no compression, no size limit, no pings, no proxy)."""
    return await connect(
        url, compression=None, max_size=None, ping_interval=None, proxy=None, open_timeout=REQUEST_TIMEOUT,
        close_timeout=1, local_addr=(local, 0),
    )  # fmt: skip


def _header(frame: str | bytes) -> dict[str, Any]:
    """A reply's JSON: the whole text frame, or a binary frame's header only (not its arrays)."""
    if isinstance(frame, str):
        return json.loads(frame)
    if frame[:4] != MAGIC:
        raise ValueError(f"a binary frame that does not start with {MAGIC!r}")
    (n,) = struct.unpack_from("<I", frame, 4)
    return json.loads(frame[8 : 8 + n])


async def trace_client(
    spec: dict[str, Any], local: str, until: float, stop: asyncio.Event, seed: int
) -> dict[str, Any]:
    """POST /api/trace?encoding=compact of ``trace_chars`` characters from ``local``, again and again (``pause``
    between); each (start, latency, ok)."""
    source, chars, pause = spec["source"], spec["trace_chars"], spec["pause"]
    rng, http = random.Random(seed), Http(spec["host"], spec["port"], local)
    samples: list[tuple[float, float, bool]] = []
    errors: list[str] = []
    while time.monotonic() < until and not stop.is_set():
        at = rng.randrange(0, len(source) - chars)
        text = source[at : at + chars]
        body = json.dumps({"model": "code", "text": text}).encode()
        t0 = time.monotonic()
        try:
            status, data = await asyncio.wait_for(
                http.request("POST", "/api/trace?encoding=compact", body), REQUEST_TIMEOUT
            )
            ok = status == 200 and len(json.loads(data)["tokens"]) == len(text)
            if not ok:
                errors.append(f"{status}: {detail_of(status, data)}"[:200])
        except (OSError, asyncio.IncompleteReadError, TimeoutError, ValueError, KeyError) as e:
            http.close()
            ok = False
            errors.append(f"{type(e).__name__}: {e}"[:200])
        samples.append((round(t0, 4), round(time.monotonic() - t0, 5), ok))
        if pause:
            await asyncio.sleep(pause)
    http.close()
    return {"samples": samples, "errors": errors[:20], "error_count": len(errors)}


async def loop_lag(stop: asyncio.Event, out: list[float]) -> None:
    """How late a 10 ms sleep wakes up: the client's own event loop delay, which inflates what it measures."""
    while not stop.is_set():
        t = time.monotonic()
        await asyncio.sleep(0.01)
        out.append(time.monotonic() - t - 0.01)


async def run_load(spec: dict[str, Any], commands: Commands) -> dict[str, Any]:
    host, port = spec["host"], spec["port"]
    url = f"ws://{host}:{port}/api/live"
    sessions = [
        LiveSession(url, local, text, spec["charset"], spec["period"], seed=spec["seed"] + i)
        for i, (local, text) in enumerate(zip(spec["live_addrs"], spec["live_texts"]))
    ]
    await asyncio.gather(*(s.open() for s in sessions))
    emit("ready")
    await commands.go.wait()
    start, cpu0 = commands.go_at, time.process_time()
    until = start + spec["seconds"]
    done, lag = asyncio.Event(), []
    lagger = asyncio.create_task(loop_lag(done, lag))
    traces = [
        trace_client(spec, local, until, commands.stop, spec["seed"] + 1000 + j)
        for j, local in enumerate(spec["trace_addrs"])
    ]
    results = await asyncio.gather(*(s.run(start, spec["seconds"], spec["drain"]) for s in sessions), *traces)
    cpu = time.process_time() - cpu0
    done.set()
    await lagger
    lag.sort()
    return {
        "live": [s.result() for s in sessions],
        "trace": results[len(sessions) :],
        "cpu_seconds": cpu,
        "wall": time.monotonic() - start,
        "loop_lag_p99": lag[int(0.99 * (len(lag) - 1))] if lag else None,
    }


async def run_bystander(spec: dict[str, Any], commands: Commands) -> dict[str, Any]:
    emit("ready")
    await commands.go.wait()
    return await trace_client(spec, spec["addr"], float("inf"), commands.stop, spec["seed"])


# The attacks: each returns what the server answered; each prints "left" when its clients have gone.


async def attack_abandoned(spec: dict[str, Any]) -> dict[str, Any]:
    """``count`` POST /api/trace?encoding=... of a long text at once, each client gone after ``leave`` seconds."""

    async def one() -> str:
        reader, writer = await asyncio.open_connection(spec["host"], spec["port"], local_addr=(spec["addr"], 0))
        body = json.dumps({"model": "code", "text": spec["text"]}).encode()
        head = f"POST /api/trace?encoding={spec['encoding']} HTTP/1.1\r\nHost: {spec['host']}:{spec['port']}\r\n"
        writer.write(f"{head}Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body)
        try:
            status, headers = await asyncio.wait_for(read_head(reader), spec["leave"])
            if "content-length" in headers and int(headers["content-length"]) < 1 << 16:
                data = await asyncio.wait_for(reader.readexactly(int(headers["content-length"])), spec["leave"])
                return f"{status}: {detail_of(status, data)}"
            return f"{status}: the body started; the client left after {spec['leave']:g} s"
        except TimeoutError:
            return f"no answer within {spec['leave']:g} s; the client left"
        finally:
            writer.transport.abort()  # the client is gone: no more reading

    answers = await asyncio.gather(*(one() for _ in range(spec["count"])))
    emit("left", t=time.monotonic())
    return {"answers": answers}


async def attack_live_abandoned(spec: dict[str, Any]) -> dict[str, Any]:
    """A live edit of a long text, the socket closed as soon as it is sent."""
    url = f"ws://{spec['host']}:{spec['port']}/api/live"
    async with await socket_to(url, spec["addr"]) as ws:
        await ws.send(json.dumps({"model": "code", "text": spec["text"], "seq": 1, "encoding": "binary"}))
    emit("left", t=time.monotonic())
    return {"answers": ["no reply awaited: the socket closed at once"]}


async def attack_big_body(spec: dict[str, Any]) -> dict[str, Any]:
    """A JSON body of ``mb`` megabytes to POST /api/trace, written until the server answers or hangs up."""
    reader, writer = await asyncio.open_connection(spec["host"], spec["port"], local_addr=(spec["addr"], 0))
    chunk = b"a" * (1 << 20)
    opening, closing = b'{"model": "code", "text": "', b'"}'
    size = len(opening) + spec["mb"] * len(chunk) + len(closing)
    head = f"POST /api/trace HTTP/1.1\r\nHost: {spec['host']}:{spec['port']}\r\nContent-Type: application/json\r\n"
    writer.write(f"{head}Content-Length: {size}\r\n\r\n".encode() + opening)
    sent = 0

    async def write() -> None:
        nonlocal sent
        for _ in range(spec["mb"]):
            writer.write(chunk)
            await writer.drain()
            sent += 1
        writer.write(closing)
        await writer.drain()

    writing = asyncio.create_task(write())
    try:
        status, headers = await asyncio.wait_for(read_head(reader), spec["timeout"])
        data = await asyncio.wait_for(reader.read(1 << 16), 5)
        answer = f"{status}: {detail_of(status, data)} (after {sent} of {spec['mb']} MB sent)"
    except (TimeoutError, OSError, asyncio.IncompleteReadError) as e:
        answer = f"no answer ({type(e).__name__}) after {sent} of {spec['mb']} MB sent"
    writing.cancel()
    writer.transport.abort()
    emit("left", t=time.monotonic())
    return {"answers": [answer]}


def multipart(filename: str, data: bytes, name: str) -> tuple[bytes, str]:
    boundary = f"gatescope-load-{random.getrandbits(64):016x}"
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n".encode()
        + data
        + b"\r\n",
        f'--{boundary}\r\nContent-Disposition: form-data; name="name"\r\n\r\n{name}\r\n'.encode(),
    ]
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


async def attack_uploads(spec: dict[str, Any]) -> dict[str, Any]:
    """``count`` uploads of the same file at once (named <names>-1, <names>-2 ...), each waiting for its answer."""
    data = open(spec["file"], "rb").read()

    async def one(i: int) -> str:
        body, ctype = multipart(os.path.basename(spec["file"]), data, f"{spec['names']}-{i}")
        http = Http(spec["host"], spec["port"], spec["addr"])
        try:
            status, reply = await asyncio.wait_for(http.request("POST", "/api/models", body, ctype), spec["timeout"])
        except TimeoutError:
            return f"no answer within {spec['timeout']:g} s"
        finally:
            http.close()
        if status == 201:
            card = json.loads(reply)
            return f"201: accepted as model {card['id']!r} ({card['layers']} × {card['hidden_size']} {card['cell']})"
        return f"{status}: {detail_of(status, reply)}"

    answers = await asyncio.gather(*(one(i + 1) for i in range(spec["count"])))
    emit("left", t=time.monotonic())
    return {"answers": answers}


async def attack_sessions(spec: dict[str, Any]) -> dict[str, Any]:
    """``count`` live sessions each tracing a long text, held until all are answered (at most ``hold`` s), then
    all closed at once."""
    url = f"ws://{spec['host']}:{spec['port']}/api/live"
    deadline = time.monotonic() + spec["hold"]
    sockets: list[Any] = []

    async def one(i: int) -> str:
        try:
            ws = await socket_to(url, spec["addr"])
        except (OSError, TimeoutError) as e:
            return f"not connected ({type(e).__name__})"
        sockets.append(ws)
        try:
            text = spec["text"][i:] + spec["text"][:i]  # each its own text
            await ws.send(json.dumps({"model": "code", "text": text, "seq": 1, "encoding": "binary"}))
            head = _header(await asyncio.wait_for(ws.recv(), max(0.1, deadline - time.monotonic())))
            return f"error: {head['error']}" if "error" in head else f"holds {head.get('length')} steps"
        except TimeoutError:
            return "no reply before the client left"
        except ConnectionClosed as e:
            return f"closed with {e.rcvd.code if e.rcvd else '?'}"

    answers = await asyncio.gather(*(one(i) for i in range(spec["count"])))
    await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)
    emit("left", t=time.monotonic())
    counts: dict[str, int] = {}
    for a in answers:
        counts[a] = counts.get(a, 0) + 1
    return {"answers": [f"{n} × {a}" for a, n in counts.items()]}


ATTACKS = {
    "abandoned": attack_abandoned,
    "live-abandoned": attack_live_abandoned,
    "big-body": attack_big_body,
    "uploads": attack_uploads,
    "sessions": attack_sessions,
}


async def main() -> None:
    spec = json.loads(sys.stdin.readline())
    commands = Commands(asyncio.get_running_loop())
    if spec["role"] == "load":
        result = await run_load(spec, commands)
    elif spec["role"] == "bystander":
        result = await run_bystander(spec, commands)
    else:
        emit("ready")
        await commands.go.wait()
        cpu0 = time.process_time()
        result = await ATTACKS[spec["attack"]](spec)
        result["cpu_seconds"] = time.process_time() - cpu0
    emit("result", **result)


if __name__ == "__main__":
    asyncio.run(main())
