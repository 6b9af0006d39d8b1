"""WS /api/live: live typing. The client sends {"model", "text"} on every edit; the server finds the
first token that changed, resumes from the cached state there, and sends only the steps from that
position on: {"from": k, "length", "tokens", "unknown", "layers", "probs"}. With "focus": {"layer",
"unit"} the reply also carries that unit's exact values (``Trace.unit``) from k on; a message with
only "focus" asks for them over the whole cached trace. A newer edit replaces an older one still
waiting; each connection caches one trace (its current text); errors are {"error": ...} and the
socket stays open. Every reply echoes the message's "seq"."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from starlette.concurrency import run_in_threadpool

import model

from ..encoding import dumps_binary, dumps_compact, focus_json, trace_compact, trace_json

router = APIRouter(tags=["live"])


class LiveError(ValueError):
    """A client's mistake on the socket: sent back as {"error": message}."""


def _common_prefix(a: list[str], b: list[str]) -> int:
    """How many leading tokens a and b share: a binary search over slice comparisons (each one C-speed)."""
    lo, hi = 0, min(len(a), len(b))
    if a[:hi] == b[:hi]:
        return hi
    while lo < hi - 1:  # a[:lo] == b[:lo] and a[:hi] != b[:hi]
        mid = (lo + hi) // 2
        if a[:mid] == b[:mid]:
            lo = mid
        else:
            hi = mid
    return lo


class _Rows:
    """Arrays whose rows (timesteps) grow by doubling: writing the new steps of an edit costs those
    steps, not a copy of the whole cached trace (a 1,000-step trace is 3 MB of gates)."""

    def __init__(self) -> None:
        self._arrays: dict[Any, np.ndarray] = {}

    def put(self, key: Any, at: int, rows: np.ndarray) -> np.ndarray:
        """Write ``rows`` from row ``at`` on (keeping the rows before it); the first ``at + len(rows)`` rows."""
        end = at + len(rows)
        a = self._arrays.get(key)
        if a is None or a.shape[1:] != rows.shape[1:] or a.dtype != rows.dtype or len(a) < end:
            grown = np.empty((max(64, 2 * end), *rows.shape[1:]), rows.dtype)
            if a is not None and a.shape[1:] == rows.shape[1:] and at > 0:
                grown[:at] = a[:at]
            a = self._arrays[key] = grown
        a[at:end] = rows
        return a[:end]


def _focus_of(msg: dict[str, Any], net: model.Network) -> tuple[int, int] | None:
    focus = msg.get("focus")
    if focus is None:
        return None
    layer, unit = (focus.get("layer"), focus.get("unit")) if isinstance(focus, dict) else (None, None)
    if type(layer) is not int or not 0 <= layer < net.num_layers:
        raise LiveError(f"focus.layer must be a layer index from 0 to {net.num_layers - 1}, got {layer!r}")
    H = net.hidden_size
    if type(unit) is not int or not 0 <= unit < H:
        raise LiveError(f"focus.unit must be a unit index from 0 to {H - 1}, got {unit!r}")
    return layer, unit


class Session:
    """One connection's cache: the model and the trace of the text it last sent."""

    def __init__(self) -> None:
        self.name: str | None = None
        self.net: model.Network | None = None
        self.trace: model.Trace | None = None
        self._rows = _Rows()  # where self.trace's arrays live

    def update(self, net: model.Network, name: str, msg: dict[str, Any], top_k: int) -> dict[str, Any] | str | bytes:
        """Trace only what changed; return the reply: a dict (json), JSON text (compact) or bytes (binary)."""
        text, encoding = msg["text"], msg.get("encoding", "json")
        if encoding not in ("json", "compact", "binary"):
            raise LiveError(f"encoding must be 'json', 'compact' or 'binary', got {encoding!r}")
        tokens = net.tokenizer.encode(text).tokens  # type: ignore[union-attr]  # raises on unknown tokens
        focus = _focus_of(msg, net)  # every refusal comes before the cache is touched
        if not tokens:
            raise LiveError("the text has no tokens: nothing to trace")
        if self.name != name or self.trace is None:
            self.name, self.trace, k = name, None, 0
        else:
            k = _common_prefix(self.trace.tokens, tokens)
        kept = self.trace.head(k) if self.trace is not None and k > 0 else None
        sep = " " if net.tokenizer is not None and net.tokenizer.kind == "word" else ""
        if k < len(tokens):
            new = net.trace(sep.join(tokens[k:]), state=kept.state if kept is not None else None)
            put = self._rows.put  # the cached steps stay where they are; the new ones follow them
            layers = [{g: put((j, g), k, a) for g, a in la.items()} for j, la in enumerate(new.layers)]
            probs = put("probs", k, new.probs) if new.probs is not None else None
            unknown = (kept.unknown if kept is not None else []) + [p + k for p in new.unknown]
            initial = kept.initial if kept is not None else new.initial
            whole = model.Trace(new.cell, new.gates, tokens, layers, probs, unknown, initial, new.reset_after)
        else:  # the same tokens: nothing new to send
            assert kept is not None
            whole, new = kept, kept.head(0)
        self.net, self.trace = net, whole
        steps = trace_json(name, net, new, top_k) if encoding == "json" else trace_compact(name, net, new, top_k)
        body: dict[str, Any] = {"seq": msg.get("seq"), **steps, "from": k, "length": len(whole)}
        body["unknown"] = whole.unknown  # positions in the whole text, not only the new steps
        if encoding != "json":
            body["encoding"] = encoding
        if focus is not None:
            body["focus"] = focus_json(whole, *focus, start=k)
        if encoding == "binary":
            return dumps_binary(body)  # sent as a binary frame
        return dumps_compact(body).decode() if encoding == "compact" else body

    def refocus(self, msg: dict[str, Any]) -> dict[str, Any]:
        """The exact values of another unit over the whole cached trace."""
        if self.trace is None:
            raise LiveError("send an edit ({'model', 'text'}) before asking for a unit's values")
        focus = _focus_of(msg, self.net)  # type: ignore[arg-type]  # set with the trace
        assert focus is not None
        return {"seq": msg.get("seq"), "focus": focus_json(self.trace, *focus, start=0)}


@router.websocket("/api/live")
async def live_trace(ws: WebSocket) -> None:
    """Live typing: only the steps after the first change travel."""
    registry, settings, state = ws.app.state.registry, ws.app.state.settings, ws.app.state
    await ws.accept()
    if state.live_sessions >= settings.max_sessions:
        await ws.send_json({"error": f"this server holds at most {settings.max_sessions} live sessions; try later"})
        await ws.close(code=1013)  # try again later
        return
    state.live_sessions += 1
    session = Session()
    pending: dict[str, Any] = {}  # the newest waiting edit and the newest waiting focus request
    arrived = asyncio.Event()

    async def receive() -> None:
        while True:
            msg = await ws.receive_json()
            if isinstance(msg, dict) and "text" not in msg and "model" not in msg and "focus" in msg:
                pending["focus"] = msg
            else:
                pending["edit"] = msg  # a newer edit replaces one still waiting
                pending.pop("focus", None)  # and carries its own focus
            arrived.set()

    async def reply(msg: Any) -> dict[str, Any] | str | bytes:
        if not isinstance(msg, dict):
            raise LiveError("send a JSON object: {'model': id, 'text': ...}")
        if "text" not in msg and "model" not in msg:
            return await run_in_threadpool(session.refocus, msg)
        name, text = msg.get("model"), msg.get("text")
        entry = registry.get(name) if isinstance(name, str) else None
        if entry is None or not isinstance(name, str):
            raise LiveError(f"no model {name!r}; GET /api/models lists them")
        if not isinstance(text, str) or not text:
            raise LiveError("send {'model': id, 'text': a non-empty string}")
        if entry.net.tokenizer is None:
            raise LiveError(f"model {name!r} takes vectors, not text")
        n = len(entry.net.tokenizer.split(text))
        if n > settings.max_tokens:
            raise LiveError(f"the text has {n} tokens; this server traces at most {settings.max_tokens}")
        return await run_in_threadpool(session.update, entry.net, name, msg, settings.top_k)

    reader = asyncio.create_task(receive())
    try:
        while True:
            wait = asyncio.create_task(arrived.wait())
            done, _ = await asyncio.wait({wait, reader}, return_when=asyncio.FIRST_COMPLETED)
            if reader in done:
                wait.cancel()
                reader.result()  # re-raises the disconnect
            arrived.clear()
            for kind in ("edit", "focus"):
                msg = pending.pop(kind, None)
                if msg is None:
                    continue
                try:
                    out = await reply(msg)
                except (LiveError, ValueError) as e:  # ValueError: unknown tokens
                    out = {"seq": msg.get("seq") if isinstance(msg, dict) else None, "error": str(e)}
                if isinstance(out, bytes):
                    await ws.send_bytes(out)
                elif isinstance(out, str):
                    await ws.send_text(out)
                else:
                    await ws.send_json(out)
    except WebSocketDisconnect:
        pass
    finally:
        reader.cancel()
        state.live_sessions -= 1
