"""WS /api/live: live typing. The client sends {"model", "text"} on every edit; the connection's
``model.TraceBuffer`` finds the first token that changed and traces only the steps from there, and
the reply carries only those: {"from": k, "length", "tokens", "unknown", "layers", "probs"}
(``unknown``: positions in the whole text). A vector model's edit is {"model", "csv"}: the series as
CSV text (model/series.py reads it: a row a step, a column a feature, header optional); only the rows
from the first one that changed are traced, and the reply also carries "inputs": {"names", "rows"}
(the series as the server read it, the rows from k on), a values head's "values" and, for a
forecaster whose meta names them, its "targets" (the input s steps on; null where not yet known),
from step "targets_from" = k - s on (appending a row makes the last step's target known). With
"focus": {"layer", "unit"} the reply also carries that unit's exact values (``Trace.unit``) from k
on; a message with only "focus" asks for them over the whole text. With "interventions" (POST /api/trace's
list, the same checks and words) the buffer traces the held run, and the reply adds "intervened" and the
"effect" of its steps (from k) against the plain text's, kept in a second buffer while they last (with
"effect": false, neither: the held run alone, at about the cost of a plain edit); a change of the list
re-traces from the first step it touches. A newer edit replaces an older
one still waiting. Opened as /api/live?parts=1, a binary reply over 1 MB comes as several binary messages,
its parts in order (``encoding.split_parts``: "GSP1", index, count, then the bytes; joined they are the reply).
Every reply echoes the message's "seq". The client's mistakes (the same checks and
words as POST /api/trace, from deps.py) come back as {"seq", "error"} and the socket stays open;
anything else is a bug: logged, and the socket closes with 1011."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import traceback
from collections.abc import MutableMapping
from typing import Any

import numpy as np
from fastapi import APIRouter, HTTPException, WebSocket, WebSocketDisconnect
from pydantic import TypeAdapter, ValidationError
from starlette.concurrency import run_in_threadpool

import model
from model.heads import targets as series_targets
from model.interventions import Intervention, effect
from model.series import read_csv

from ..encoding import (
    PART_BYTES,
    dumps_binary,
    dumps_compact,
    effect_compact,
    effect_json,
    focus_json,
    intervened_json,
    plain_values,
    split_parts,
    trace_compact,
    trace_json,
)
from ..registry import Entry
from ..schemas import InterventionBody, describe
from ..settings import Settings
from ..warm import warm_soon
from ..work import LIVE_SHARE, MB, ClientGone, Work
from .deps import LiveSlotsDep, SettingsDep, WorkDep, check_input_soon, check_interventions, find_model, get_registry
from .trace import COST

router = APIRouter(tags=["live"])
log = logging.getLogger("gatescope")

#: Close code for a server bug (RFC 6455: an unexpected condition prevented the server from answering).
INTERNAL_ERROR = 1011
ENCODINGS = ("json", "compact", "binary")


class LiveError(Exception):
    """A client's mistake on the socket: sent back as {"seq", "error": message}."""


def _focus_of(msg: dict[str, Any], net: model.Network) -> tuple[int, int] | None:
    focus = msg.get("focus")
    if focus is None:
        return None
    layer, unit = (focus.get("layer"), focus.get("unit")) if isinstance(focus, dict) else (None, None)
    if type(layer) is not int or not 0 <= layer < net.num_layers:
        raise LiveError(f"focus.layer must be a layer index from 0 to {net.num_layers - 1}, got {layer!r}")
    H = net.width  # both directions' units of a bidirectional layer
    if type(unit) is not int or not 0 <= unit < H:
        raise LiveError(f"focus.unit must be a unit index from 0 to {H - 1}, got {unit!r}")
    return layer, unit


#: An edit's "interventions", read as POST /api/trace reads them (the same words for the same mistakes).
INTERVENTIONS = TypeAdapter(list[InterventionBody])


def _interventions_of(msg: dict[str, Any]) -> list[dict[str, Any]] | None:
    """An edit's interventions as dicts (None: the message has none), or a LiveError in pydantic's words."""
    raw = msg.get("interventions")
    if raw is None:
        return None
    try:
        return [it.as_dict() for it in INTERVENTIONS.validate_python(raw)]
    except ValidationError as e:
        raise LiveError(describe([{**err, "loc": ("interventions", *err["loc"])} for err in e.errors()])) from None


def with_effect(msg: dict) -> bool:
    """Whether a held edit's reply carries its effect (the plain run beside it); "effect": false, the held run alone
    (what the page asks: its effect panel asks POST /api/trace)."""
    return msg.get("effect", True) is not False


class Session:
    """One connection's cache: the model it last traced and a TraceBuffer of its current text (with the
    edit's interventions, and beside it a plain one: the "before" of their effect)."""

    def __init__(self) -> None:
        self.name: str | None = None
        self.buffer: model.TraceBuffer | None = None
        self.plain: model.TraceBuffer | None = None  # the text without interventions, while an edit has some

    def buffer_for(self, name: str, net: model.Network, max_steps: int | None) -> model.TraceBuffer:
        """The buffer to update for a text of model ``name`` (a new one when the model changed)."""
        if self.name != name or self.buffer is None or self.buffer.net is not net:
            self.name, self.buffer, self.plain = name, model.TraceBuffer(net, max_steps), None
        return self.buffer

    @property
    def nbytes(self) -> int:
        """Bytes the session's buffers hold."""
        return sum(b.nbytes for b in (self.buffer, self.plain) if b is not None)

    def update(
        self,
        name: str,
        entry: Entry,
        msg: dict[str, Any],
        encoded: Any,
        top_k: int,
        stop: Any = None,
        max_steps: int | None = None,
        names: list[str] | None = None,
        held: list[Intervention] | None = None,
    ) -> Any:
        """Trace only what changed; return the reply: a dict (json), JSON text (compact) or bytes (binary).
        ``encoded``: a text's ``tokenizer.encode`` (whole), or a vector model's (T, D) series (``names``: its
        header's). ``held``: the edit's interventions, checked; the reply then carries "intervened" and the
        "effect" of the new steps (from k on) against the plain text's."""
        encoding = msg.get("encoding", "json")
        net = entry.net
        focus = _focus_of(msg, net)  # every refusal comes before the buffer is touched
        self.buffer = self.buffer_for(name, net, max_steps)
        k, new = self.buffer.update(encoded, stop=stop, interventions=held or [])
        whole = self.buffer.trace
        assert whole is not None
        eff = None
        if held and with_effect(msg):
            if self.plain is None:
                self.plain = model.TraceBuffer(net, max_steps)
            self.plain.update(encoded, stop=stop)
            before = self.plain.trace
            assert before is not None
            ids = getattr(encoded, "ids", None)
            eff = effect(net, encoded, before=before, after=whole, ids=ids, start=k, top_k=top_k)
        else:
            self.plain = None  # no interventions: nothing to compare with
        # a forecaster's targets (its meta: which input column, s steps on): step t's is row t + s, so an
        # edit from row k changes them from step k - s on; they travel from there ("targets_from")
        want, since = None, k
        if isinstance(encoded, np.ndarray):
            known = series_targets(net.spec, encoded)
            if known is not None:
                since = max(0, k - int(net.spec.meta["targets"].get("shift", 1)))
                want = known[since:]
        encode = trace_json if encoding == "json" else trace_compact
        steps = encode(name, net, new, top_k, want)
        body: dict[str, Any] = {"seq": msg.get("seq"), **steps, "from": k, "length": len(whole)}
        if isinstance(encoded, np.ndarray):
            body["inputs"] = {"names": names, "rows": encoded[k:].tolist()}
            if want is not None:
                body["targets_from"] = since
        body["unknown"] = whole.unknown  # positions in the whole text, not only the new steps
        if encoding != "json":
            body["encoding"] = encoding
        if focus is not None:
            body["focus"] = focus_json(whole, *focus, start=k)
        if held:
            body["intervened"] = intervened_json(whole)
        if eff is not None:
            body["effect"] = (effect_json if encoding == "json" else effect_compact)(net, new, eff, top_k)
        if encoding == "binary":
            return dumps_binary(body)  # sent as a binary frame
        return dumps_compact(body).decode() if encoding == "compact" else body

    def refocus(self, msg: dict[str, Any]) -> dict[str, Any]:
        """The exact values of another unit over the whole cached trace."""
        if self.buffer is None or self.buffer.trace is None:
            raise LiveError("send an edit ({'model', 'text'}) before asking for a unit's values")
        focus = _focus_of(msg, self.buffer.net)
        if focus is None:
            raise LiveError("send focus as {'layer': index, 'unit': index}")
        return {"seq": msg.get("seq"), "focus": focus_json(self.buffer.trace, *focus, start=0)}


def _parse(message: MutableMapping[str, Any]) -> Any:
    """A received frame's JSON, or a LiveError to answer with (the frame was not JSON text)."""
    if message["type"] == "websocket.disconnect":
        raise WebSocketDisconnect(message.get("code", 1000))
    if message.get("text") is None:
        return LiveError("send JSON text frames, not binary ones")
    try:
        return json.loads(message["text"])
    except ValueError as e:
        return LiveError(f"that message is not JSON ({e})")


class Connection:
    """One socket's message pump: a reader keeps only the newest waiting edit (and the newest waiting
    focus request); the writer answers them in turn, each in a worker thread. An edit is a job of the
    server's ``Work`` (memory reserved first, stopped if the client leaves), and the session's buffer
    holds its bytes against the live sessions' share of the budget until the socket closes."""

    def __init__(self, ws: WebSocket, settings: Settings, work: Work) -> None:
        self.ws, self.settings, self.work = ws, settings, work
        self.parts = ws.query_params.get("parts") == "1"  # long binary replies go in PART_BYTES parts
        self.session = Session()
        self.held = 0  # bytes of the budget the session's buffer holds
        self.pending: dict[str, Any] = {}  # "edit", "focus": the newest message of each kind
        self.arrived = asyncio.Event()
        self.gone = asyncio.Event()  # the client left

    async def run(self) -> None:
        """Answer messages until the client leaves (WebSocketDisconnect); a bug propagates."""
        reader = asyncio.create_task(self._receive())
        try:
            while True:
                wait = asyncio.create_task(self.arrived.wait())
                done, _ = await asyncio.wait({wait, reader}, return_when=asyncio.FIRST_COMPLETED)
                if reader in done:
                    wait.cancel()
                    reader.result()  # re-raises the disconnect
                self.arrived.clear()
                for kind in ("edit", "focus"):
                    if kind in self.pending:
                        try:  # no reply is kept in a local: a disconnect's traceback would hold it
                            await self._send(await self._answer(self.pending.pop(kind)))
                        except ClientGone:
                            raise WebSocketDisconnect(1001) from None
        finally:
            reader.cancel()
            self.close()

    def close(self) -> None:
        """Give the session's memory back (to the budget, and the heap to the system)."""
        self.pending.clear()
        self.session.buffer = self.session.plain = None  # their rows have pages of their own: freed at once
        self.work.budget.adjust_live(-self.held)
        self.held = 0

    async def _receive(self) -> None:
        try:
            while True:
                msg = _parse(await self.ws.receive())
                if isinstance(msg, dict) and "text" not in msg and "model" not in msg and "focus" in msg:
                    self.pending["focus"] = msg
                else:
                    self.pending["edit"] = msg  # a newer edit replaces one still waiting
                    self.pending.pop("focus", None)  # and carries its own focus
                self.arrived.set()
        finally:
            self.gone.set()  # the disconnect (or a bug): whatever is computing stops

    async def _answer(self, msg: Any) -> dict[str, Any] | str | bytes:
        """The reply to one message; the client's mistakes, and only those, become {"seq", "error"}."""
        seq = msg.get("seq") if isinstance(msg, dict) else None
        try:
            return await self._reply(msg)
        except (LiveError, model.InputError) as e:
            return {"seq": seq, "error": str(e)}
        except HTTPException as e:  # a refusal from deps.py or the budget: the same words as over HTTP
            return {"seq": seq, "error": e.detail}

    async def _reply(self, msg: Any) -> dict[str, Any] | str | bytes:
        if isinstance(msg, LiveError):
            raise msg
        if not isinstance(msg, dict):
            raise LiveError("send a JSON object: {'model': id, 'text': ...}")
        if "text" not in msg and "model" not in msg:
            if "focus" not in msg:
                raise LiveError("send an edit {'model': id, 'text': ...} or another unit {'focus': {'layer', 'unit'}}")
            return await run_in_threadpool(self.session.refocus, msg)
        name, text = msg.get("model"), msg.get("text")
        registry = await get_registry(self.ws)  # every edit: a model another worker removed is gone by now
        entry = find_model(registry, name)  # 404's words when name is not a model (or not a string)
        assert isinstance(name, str)
        warm_soon(self.ws.app.state, entry.net)  # its attribution kernels, compiled beside the server meanwhile
        reading = self.work.reading  # POST /api/trace's checks and words:
        names, vectors = None, None
        if "csv" in msg:
            if text is not None:
                raise LiveError("send 'text' (text models) or 'csv' (vector models), not both")
            if entry.net.input != "vectors":
                raise LiveError(f"model {name!r} takes text, not a series: send 'text'")
            csv = msg["csv"]
            if not isinstance(csv, str):
                raise LiveError(f"'csv' must be the series as CSV text, got {type(csv).__name__}")
            vectors, names = await run_in_threadpool(read_csv, csv)  # InputError: the row, column and problem
        checked = await check_input_soon(name, entry, text, vectors, self.settings, reading, self.gone)
        items = _interventions_of(msg)
        if items is not None:  # POST /api/trace's checks and words (the count, each field, the sources' size)
            checked = await run_in_threadpool(check_interventions, checked, items, self.settings)
        held = checked.interventions
        encoding = msg.get("encoding", "json")
        if encoding not in ENCODINGS:
            raise LiveError(f"encoding must be 'json', 'compact' or 'binary', got {encoding!r}")
        net, T = entry.net, len(checked.tokens)
        buffer = self.session.buffer_for(name, net, self.settings.max_tokens)
        new = T - buffer.changed_from(checked.x if vectors is not None else checked.tokens)
        both = bool(held) and with_effect(msg)  # the held run and the plain one beside it
        values = plain_values(net, new) * (2 if both else 1)  # with the effect, its changes too
        if encoding == "json" and values > self.settings.max_plain_values:
            raise LiveError(
                f"this edit's {new} new steps are {values:,} numbers as plain JSON; this server sends at most "
                f"{self.settings.max_plain_values:,} that way: ask for encoding 'binary' or 'compact'"
            )
        self._hold(buffer.nbytes_for(T) * (2 if both else 1), T)  # the rows the buffers will hold
        cost = COST * (net.trace_nbytes(new) * (3 if both else 1) + net.trace_nbytes(checked.source_tokens)) + MB
        job = await self.work.admit(self.gone, cost, f"an edit of {new} new steps")
        try:
            top_k, most = self.settings.top_k, self.settings.max_tokens
            update = self.session.update
            x = checked.x  # a text's Encoded, or a series' checked (T, D) array
            return await job.run(
                update, name, entry, msg, x, top_k, stop=job.stopped, max_steps=most, names=names, held=held
            )
        finally:
            job.close()
            self._settle()

    def _hold(self, rows: int, steps: int) -> None:
        """Reserve what the buffer will hold, against the live sessions' share, or refuse the edit."""
        more, budget = rows - self.held, self.work.budget
        if more > 0 and not budget.take_live(more, LIVE_SHARE):
            if budget.live + more <= LIVE_SHARE * budget.limit:  # the sessions' share has room: the whole has not
                raise LiveError(
                    f"the server is busy: {budget.used / MB:,.0f} of its {budget.limit / MB:,.0f} MB are in use "
                    f"and a live text of {steps} steps needs about {more / MB:,.0f} MB more; try again"
                )
            raise LiveError(
                f"a live text of {steps} steps needs about {more / MB:,.0f} MB more; the live sessions hold "
                f"{budget.live / MB:,.0f} MB of the {LIVE_SHARE * budget.limit / MB:,.0f} MB they may use "
                "(GATESCOPE_MAX_MEMORY_MB): shorten the text, or close other sessions"
            )
        self.held += max(more, 0)

    def _settle(self) -> None:
        """Hold exactly what the buffer holds now."""
        now = self.session.nbytes
        self.work.budget.adjust_live(now - self.held)  # less: given back; more: rows it had already
        self.held = now

    async def _send(self, out: dict[str, Any] | str | bytes) -> None:
        if isinstance(out, bytes) and self.parts and len(out) > PART_BYTES:
            for part in split_parts(out):  # each a message the browser reads in a short task
                await self.ws.send_bytes(part)
        elif isinstance(out, bytes):
            await self.ws.send_bytes(out)
        elif isinstance(out, str):
            await self.ws.send_text(out)
        else:
            await self.ws.send_json(out)


@router.websocket("/api/live")
async def live_trace(ws: WebSocket, settings: SettingsDep, slots: LiveSlotsDep, work: WorkDep) -> None:
    """Live typing: only the steps after the first change travel."""
    await ws.accept()
    if not slots.take():
        where = "this server" if settings.workers == 1 else "each of this server's workers"
        await ws.send_json({"error": f"{where} holds at most {settings.max_sessions} live sessions; try later"})
        await ws.close(code=1013)  # try again later
        return
    try:
        await Connection(ws, settings, work).run()
    except WebSocketDisconnect as e:  # the client left: the frames its traceback holds let go of their replies
        traceback.clear_frames(e.__traceback__)
    except Exception:  # a bug in gatescope, not the client's mistake: logged, and the socket says so
        log.exception("gatescope: the live socket failed")
        with contextlib.suppress(Exception):  # the socket may be gone already
            await ws.close(code=INTERNAL_ERROR, reason="internal error: a bug in gatescope (see the server's log)")
    finally:
        slots.give_back()
