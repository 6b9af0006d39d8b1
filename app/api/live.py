"""WS /api/live: live typing. The client sends {"model", "text"} on every edit; the server finds the
first token that changed, resumes from the cached state there, and sends only the steps from that
position on: {"from": k, "tokens", "unknown", "layers", "probs"}. A newer edit replaces an older one
still waiting; each connection caches one trace (its current text)."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from starlette.concurrency import run_in_threadpool

import model

from ..encoding import trace_json

router = APIRouter(tags=["live"])


def _common_prefix(a: list[str], b: list[str]) -> int:
    k = 0
    for x, y in zip(a, b):
        if x != y:
            break
        k += 1
    return k


class Session:
    """One connection's cache: the model and the trace of the text it last sent."""

    def __init__(self) -> None:
        self.name: str | None = None
        self.trace: model.Trace | None = None

    def update(self, net: model.Network, name: str, text: str, top_k: int) -> dict[str, Any]:
        """Trace only what changed; return the message for the client."""
        tokens = net.tokenizer.encode(text).tokens  # type: ignore[union-attr]  # raises on unknown tokens
        if self.name != name or self.trace is None:
            self.name, self.trace, k = name, None, 0
        else:
            k = _common_prefix(self.trace.tokens, tokens)
        kept = self.trace.head(k) if self.trace is not None else None
        sep = " " if net.tokenizer is not None and net.tokenizer.kind == "word" else ""
        rest = sep.join(tokens[k:])
        if rest:
            more = net.trace(rest, state=kept.state if kept is not None and k > 0 else None)
            self.trace = kept.then(more) if kept is not None and k > 0 else more
        else:
            more, self.trace = None, kept
        body: dict[str, Any] = (
            trace_json(name, net, more, top_k) if more is not None else {"model": name, "tokens": [], "layers": []}
        )
        body["from"] = k
        return body


@router.websocket("/api/live")
async def live_trace(ws: WebSocket) -> None:
    """Live typing: only the steps after the first change travel."""
    await ws.accept()
    registry, settings = ws.app.state.registry, ws.app.state.settings
    session = Session()
    latest: asyncio.Queue[Any] = asyncio.Queue(maxsize=1)

    async def receive() -> None:
        while True:
            msg = await ws.receive_json()
            if latest.full():
                latest.get_nowait()  # a newer edit replaces one still waiting
            latest.put_nowait(msg)

    reader = asyncio.create_task(receive())
    try:
        while True:
            get = asyncio.create_task(latest.get())
            done, _ = await asyncio.wait({get, reader}, return_when=asyncio.FIRST_COMPLETED)
            if reader in done:
                get.cancel()
                reader.result()  # re-raises the disconnect
            msg = get.result()
            name, text = (msg.get("model"), msg.get("text")) if isinstance(msg, dict) else (None, None)
            entry = registry.get(name) if isinstance(name, str) else None
            if entry is None or not isinstance(name, str):
                await ws.send_json({"error": f"no model {name!r}; GET /api/models lists them"})
                continue
            if not isinstance(text, str) or not text:
                await ws.send_json({"error": "send {'model': id, 'text': a non-empty string}"})
                continue
            if entry.net.tokenizer is None:
                await ws.send_json({"error": f"model {name!r} takes vectors, not text"})
                continue
            if len(entry.net.tokenizer.split(text)) > settings.max_tokens:
                await ws.send_json({"error": f"the text is over {settings.max_tokens} tokens"})
                continue
            try:
                body = await run_in_threadpool(session.update, entry.net, name, text, settings.top_k)
            except ValueError as e:  # unknown tokens
                await ws.send_json({"error": str(e)})
                continue
            await ws.send_json(body)
    except WebSocketDisconnect:
        pass
    finally:
        reader.cancel()
