"""What several handlers need, each check and each message written once (the FastAPI full-stack
template's ``SessionDep`` pattern): the settings, the registry, a model by id, and a checked input.
HTTP handlers take them as ``Annotated[..., Depends(...)]`` aliases; the live socket calls the same
functions (``find_model``, ``check_input``), so a refusal reads the same on both.

A refusal is an ``HTTPException`` with a ``detail`` a person can act on; the socket sends that
detail back as ``{"seq", "error"}``.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Annotated, Any

import numpy as np
from fastapi import Depends, HTTPException
from starlette.concurrency import run_in_threadpool
from starlette.requests import HTTPConnection

import model
from model import heads, interventions
from model.analysis.store import Index
from model.interventions import Intervention

from ..indexes import Indexes
from ..registry import Entry, Registry
from ..schemas import TraceRequest
from ..settings import Settings, uploads_allowed
from ..uploads import Store
from ..work import ClientGone, Work


def get_settings(conn: HTTPConnection) -> Settings:
    return conn.app.state.settings


async def get_registry(conn: HTTPConnection) -> Registry:
    """The registry, in step with the models folder every worker writes: one stat on the event loop when
    nothing changed; the re-listing (and loading a new model) in a thread when something did. Every
    request that reads the registry comes here, and so does every message on a live socket."""
    registry: Registry = conn.app.state.registry
    if registry.changed():
        await run_in_threadpool(registry.sync)
    return registry


def get_store(conn: HTTPConnection) -> Store:
    return conn.app.state.store


class LiveSlots:
    """How many live-typing sockets are open, against GATESCOPE_MAX_SESSIONS."""

    def __init__(self, limit: int) -> None:
        self.limit, self.open = limit, 0  # limit: this worker's share of the server's

    def take(self) -> bool:
        """One more socket, if there is room (the event loop is single-threaded: no lock needed)."""
        if self.open >= self.limit:
            return False
        self.open += 1
        return True

    def give_back(self) -> None:
        self.open -= 1


def get_live_slots(conn: HTTPConnection) -> LiveSlots:
    return conn.app.state.live_slots


def get_work(conn: HTTPConnection) -> Work:
    return conn.app.state.work


SettingsDep = Annotated[Settings, Depends(get_settings)]
WorkDep = Annotated[Work, Depends(get_work)]
LiveSlotsDep = Annotated[LiveSlots, Depends(get_live_slots)]
RegistryDep = Annotated[Registry, Depends(get_registry)]
StoreDep = Annotated[Store, Depends(get_store)]


def get_indexes(conn: HTTPConnection) -> Indexes:
    return conn.app.state.indexes


IndexesDep = Annotated[Indexes, Depends(get_indexes)]


def find_model(registry: Registry, name: Any, usable: bool = True) -> Entry:
    """The model called ``name``, or a 404 that says where the list is; a 409 if it is listed as
    unavailable (unless ``usable`` is False: it can still be shown and deleted)."""
    entry = registry.get(name) if isinstance(name, str) else None
    if entry is None:
        raise no_model(name)
    if usable and entry.problem is not None:
        raise HTTPException(409, f"model {name!r} is unavailable: {entry.problem}")
    return entry


def no_model(name: Any) -> HTTPException:
    """The 404 for a name that is not a model."""
    return HTTPException(404, f"no model {name!r}; GET /api/models lists them")


def get_entry(model_id: str, registry: RegistryDep) -> Entry:
    return find_model(registry, model_id, usable=False)


#: The model named by the path's ``{model_id}``.
EntryDep = Annotated[Entry, Depends(get_entry)]


def require_uploads(settings: SettingsDep) -> None:
    """403 unless this server takes uploads."""
    if not uploads_allowed(settings):
        raise HTTPException(
            403, "uploads are switched off on this server (GATESCOPE_UPLOADS=1, or serving on 127.0.0.1, turns them on)"
        )


@dataclass
class Checked:
    """An input that passed every check: what to trace, and its tokens."""

    name: str
    net: model.Network
    x: Any  # the text's tokenizer.encode (model.tokenizer.Encoded), or a (T, D) float array
    tokens: list[str]
    top_k: int
    targets: Any = None  # (T, K) what a values head should output (NaN: not known), or None
    interventions: list[Intervention] | None = None  # checked (model/interventions.py); None: a plain trace
    source_tokens: int = 0  # tokens of the patch sources, traced beside the input


def check_input(name: str, entry: Entry, text: Any, vectors: Any, settings: Settings, targets: Any = None) -> Checked:
    """Refuse an input before any work: both or neither of text and vectors, the wrong kind for the
    model (422), over ``max_tokens`` (413), empty, unknown tokens, wrong shapes or NaN, targets that do
    not fit a values head (422)."""
    checked = _check_x(name, entry, text, vectors, settings)
    checked.targets = _targets(name, checked, targets)
    return checked


def _targets(name: str, checked: Checked, targets: Any) -> np.ndarray | None:
    """A request's targets as a (T, K) float array (null: NaN), checked; else what the model's meta says."""
    net, T = checked.net, len(checked.tokens)
    if targets is None:
        return None if isinstance(checked.x, str) else heads.targets(net.spec, checked.x)
    head = net.head
    if head is None or head.kind != "values":
        has = "no output head" if head is None else f"a {head.kind} head"
        raise HTTPException(422, f"targets are for a model whose head predicts values; model {name!r} has {has}")
    try:
        a = np.array(targets, dtype=np.float64)
    except (TypeError, ValueError):
        raise HTTPException(422, f"targets must be {T} rows of {head.size} numbers (or null)") from None
    if a.shape != (T, head.size):
        raise HTTPException(422, f"targets must be {T} rows of {head.size} numbers (one row per step), got {a.shape}")
    if np.isinf(a).any():
        raise HTTPException(422, "targets hold infinite values: give numbers, or null where not known")
    return a


def _check_x(name: str, entry: Entry, text: Any, vectors: Any, settings: Settings) -> Checked:
    """The input, checked (``check_input`` without the targets)."""
    net = entry.net
    if (text is None) == (vectors is None):
        raise HTTPException(422, "give exactly one of 'text' (text models) or 'vectors' (vector models)")
    enc = None
    if text is not None:
        if not isinstance(text, str):
            raise HTTPException(422, f"'text' must be a string, got {type(text).__name__}")
        if net.tokenizer is None:
            raise HTTPException(422, f"model {name!r} takes vectors, not text")
        try:
            enc = net.tokenizer.encode(text, check=False)  # once: the trace reads these very ids
        except model.InputError as e:
            raise HTTPException(422, str(e)) from None
        n = len(enc)
    else:
        n = n_rows(vectors)
    if n > settings.max_tokens:
        raise HTTPException(413, f"the input has {n} tokens; this server traces at most {settings.max_tokens}")
    if n == 0:
        raise HTTPException(422, "the input is empty: nothing to trace")
    try:
        if enc is not None:
            return Checked(name, net, enc.check(), enc.tokens, settings.top_k)  # raises on unknown tokens
        x = net.check_vectors(vectors)
    except model.InputError as e:
        raise HTTPException(422, str(e)) from None
    return Checked(name, net, x, [str(t) for t in range(len(x))], settings.top_k)


def n_rows(vectors: Any) -> int:
    """The steps of a vectors input: a list's length, or an array's rows (0 for anything else)."""
    return len(vectors) if isinstance(vectors, list) or getattr(vectors, "ndim", 0) >= 1 else 0


#: Inputs longer than this are checked (tokenized, or made an array) in a worker thread: 64 texts of
#: 20,000 characters sent at once held the event loop, and every other client, for 160 ms.
LONG_INPUT = 2000


async def check_input_soon(
    name: str,
    entry: Entry,
    text: Any,
    vectors: Any,
    settings: Settings,
    reading: asyncio.Semaphore,
    gone: asyncio.Event | None = None,
) -> Checked:
    """``check_input``, on the event loop for a short input (saving a thread hop), in a thread for a long
    one, one long input at a time (``Work.reading``: 64 at once in 64 threads crowded a small trace out)."""
    size = len(text) if isinstance(text, str) else n_rows(vectors) * 8
    if size <= LONG_INPUT:
        return check_input(name, entry, text, vectors, settings)
    async with reading:
        if gone is not None and gone.is_set():  # the client left while it waited: read nothing
            raise ClientGone
        return await run_in_threadpool(check_input, name, entry, text, vectors, settings)


def check_interventions(checked: Checked, items: Any, settings: Settings) -> Checked:
    """``checked`` with its interventions checked against the model and the input (each refusal names the
    intervention's index and the field, 422): at most ``max_interventions`` (422), their patch sources read as
    text and together at most ``max_tokens`` tokens (413). ``items``: a list of dicts (None: none)."""
    if items is None:
        return checked
    if not isinstance(items, list):
        raise HTTPException(422, "'interventions' must be a list of {'layer', 'unit', 'gate', 'op', ...} objects")
    if len(items) > settings.max_interventions:
        raise HTTPException(
            422, f"{len(items)} interventions; this server runs at most {settings.max_interventions} in one trace"
        )
    try:
        its = interventions.check(checked.net, items)
        lengths = interventions.check_steps(checked.net, its, len(checked.tokens))
    except model.InputError as e:
        raise HTTPException(422, str(e)) from None
    n = sum(lengths.values())
    if n > settings.max_tokens:
        raise HTTPException(
            413, f"the patch source texts have {n} tokens together; this server traces at most {settings.max_tokens}"
        )
    checked.interventions, checked.source_tokens = (its or None), n
    return checked


async def checked_trace(body: TraceRequest, registry: RegistryDep, settings: SettingsDep, work: WorkDep) -> Checked:
    """A trace request's model and input, checked before any work (and before a stream's first byte)."""
    entry = find_model(registry, body.model)
    checked = await check_input_soon(body.model, entry, body.text, body.vectors, settings, work.reading)
    checked.targets = _targets(body.model, checked, body.targets)
    if body.interventions is not None:
        items = [it.as_dict() for it in body.interventions]
        if sum(len(it.get("source_text", "")) for it in items) <= LONG_INPUT:
            return check_interventions(checked, items, settings)
        async with work.reading:
            return await run_in_threadpool(check_interventions, checked, items, settings)
    return checked


#: A trace request that passed every check.
CheckedDep = Annotated[Checked, Depends(checked_trace)]


async def model_index(model_id: str, registry: RegistryDep, indexes: IndexesDep) -> Index:
    """The ready index of the path's model; 404 no such model, 409 no index yet, saying its state and what to do
    (for a bundled model the first ask starts building its held-out index)."""
    find_model(registry, model_id)
    index = indexes.get(model_id) if indexes.looked(model_id) else await run_in_threadpool(indexes.get, model_id)
    if index is None:
        raise HTTPException(409, await run_in_threadpool(indexes.explain, model_id))
    return index


#: The ready corpus index of the model named by the path's ``{model_id}``.
ModelIndex = Annotated[Index, Depends(model_index)]
