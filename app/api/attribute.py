"""POST /api/attribute: what the prediction at step t depends on (model/attribution.py): each earlier input's
contribution (gradient x input, or integrated gradients) and the gradient flowing back through each cell state.

A scrubber asks for one step after another of the same text: the forward pass over the whole input is kept
(``ForwardCache``, least recently used first out, bounded by GATESCOPE_ATTRIBUTION_CACHE_MB and counted against
the memory budget), so each further step of gradient x input costs one backward pass over steps 0 .. t.

Gradient x input runs compiled kernels (model/backprop_kernels.py): a request whose cell kind is being compiled
beside the server (app/warm.py) waits for that compile rather than doing it again; GET
/api/models/{id}/attribution says whether a first attribution will wait so, for the page to say why."""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections import OrderedDict
from typing import Any

import numpy as np
from fastapi import APIRouter, HTTPException, Request, Response

import model
from model import attribution as A
from model.warm import NAMES, kernel_kind

from ..registry import Entry
from ..schemas import AttributeRequest, AttributeResponse, AttributionKernels, errors
from ..warm import CHILD_TIMEOUT, Warmer
from ..work import MB, ClientGone, watch_disconnect
from .deps import RegistryDep, SettingsDep, WorkDep, check_input_soon, find_model

router = APIRouter(prefix="/api", tags=["attribute"])

#: Points of integrated gradients when the request names none.
DEFAULT_STEPS = 32
#: Seconds between two looks at a compile an attribution waits for (the wait ends when the client leaves).
WAIT_POLL = 0.05


class ForwardCache:
    """Forward passes (``model.Forward``) by (model, its network, the input's hash), least recently used out
    first, at most ``limit`` bytes in all (0: none kept). Touched on the event loop only."""

    def __init__(self, limit: int) -> None:
        self.limit, self.nbytes = limit, 0
        self._items: OrderedDict[tuple[str, int, str], model.Forward] = OrderedDict()

    @staticmethod
    def key(name: str, entry: Entry, x: Any) -> tuple[str, int, str]:
        """The cache key of an input: its ids (text) or its vectors' bytes, hashed; the network's identity (a
        model uploaded again under the same name is another network)."""
        data = np.asarray(x.ids if hasattr(x, "ids") else x)
        digest = hashlib.blake2b(data.tobytes() + str(data.dtype).encode(), digest_size=16).hexdigest()
        return name, id(entry.net), digest

    def get(self, key: tuple[str, int, str]) -> model.Forward | None:
        fw = self._items.get(key)
        if fw is not None:
            self._items.move_to_end(key)
        return fw

    def put(self, key: tuple[str, int, str], fw: model.Forward) -> None:
        """Keep ``fw`` if it fits the limit at all, dropping the least recently used ones to make room."""
        size = fw.nbytes
        if size > self.limit or key in self._items:
            return
        while self._items and self.nbytes + size > self.limit:
            _, old = self._items.popitem(last=False)
            self.nbytes -= old.nbytes
        self._items[key] = fw
        self.nbytes += size


def _refuse(body: AttributeRequest, net: model.Network, T: int, max_steps: int) -> None:
    """422s before any work: a model that cannot be backpropagated, t, steps, layer or target out of bounds."""
    try:
        A.check(net)
        if not 0 <= body.t < T:
            raise model.InputError(f"t must be a step from 0 to {T - 1}: the input has T = {T} steps, got t = {body.t}")
        if body.steps is not None:
            if body.method != "integrated_gradients":
                raise model.InputError("steps are for method 'integrated_gradients'; gradient x input takes none")
            if not 1 <= body.steps <= max_steps:
                raise model.InputError(
                    f"steps must be from 1 to {max_steps} (GATESCOPE_MAX_IG_STEPS), got {body.steps}"
                )
        if body.layer is not None and not 0 <= body.layer < net.num_layers:
            L = net.num_layers
            raise model.InputError(f"layer must be from 0 to {L - 1} (the model has {L} layers), got {body.layer}")
        if body.target is not None:
            A.target_index(net, body.target)
    except model.InputError as e:
        raise HTTPException(422, str(e)) from None


def _response(name: str, net: model.Network, tokens: list[str], a: model.Attribution) -> dict[str, Any]:
    shown = net.tokenizer.vocab_display() if net.tokenizer is not None and a.score_kind == "log_p" else None
    display = shown[a.target] if shown is not None and net.head is not None and net.head.kind == "next" else None
    return {
        "model": name,
        "t": a.t,
        "tokens": tokens[: a.t + 1],
        "inputs": a.inputs.tolist(),
        "share": None if a.share is None else a.share.tolist(),
        "largest": a.largest,
        "features": None if a.features is None else a.features.tolist(),
        "cell": a.cell.tolist(),
        "hidden": None if a.hidden is None else a.hidden.tolist(),
        "gate": a.gate,
        "layer": a.layer,
        "target": {"index": a.target, "label": a.label, "display": display, "rule": a.target_rule},
        "score": a.score,
        "score_kind": a.score_kind,
        "method": a.method,
        "steps": a.steps,
        "baseline": a.baseline,
        "completeness": a.completeness,
    }


@router.get("/models/{model_id}/attribution", response_model=AttributionKernels, responses=errors(404, 409))
def attribution_kernels(model_id: str, request: Request, registry: RegistryDep) -> dict[str, Any]:
    """Whether the model's first gradient x input waits on a compile of its cell's kernels (``kernels``: cold,
    compiling, ready or failed; ready when it runs none). The page asks before its first attribution of a model."""
    net = find_model(registry, model_id).net
    kind = kernel_kind(net)
    warmer: Warmer = request.app.state.warmer
    return {"model": model_id, "kind": kind, "cell": NAMES.get(kind or ""), "kernels": warmer.state(kind)}


async def _compiled(warmer: Warmer, kind: str | None, request: Request) -> None:
    """Wait (at most CHILD_TIMEOUT s, and only while the client stays) for ``kind``'s kernels if they are being
    compiled, starting that compile if nobody has: compiling them here as well would double the work."""
    if warmer.state(kind) not in ("cold", "compiling") or not warmer.enabled:
        return
    warmer.want(kind)
    deadline = time.monotonic() + CHILD_TIMEOUT
    while warmer.state(kind) == "compiling" and time.monotonic() < deadline:
        if await request.is_disconnected():
            raise ClientGone
        await asyncio.sleep(WAIT_POLL)


@router.post(
    "/attribute",
    response_model=None,
    responses={200: {"model": AttributeResponse}, **errors(400, 403, 404, 409, 411, 413, 422, 429, 503)},
)
async def attribute_step(
    body: AttributeRequest, request: Request, registry: RegistryDep, settings: SettingsDep, work: WorkDep
) -> Any:
    """Explain the prediction at step ``t``: each earlier input's contribution (``inputs``: gradient x input, or
    integrated gradients from the zero input with ``steps`` midpoint points and their completeness) and the norm of
    d score / d C_s at every step s <= t (``cell``; d h_s for GRU and RNN cells), exact backpropagation through time.
    Repeated requests over the same input reuse its forward pass: a scrub step costs one backward pass."""
    entry = find_model(registry, body.model)
    checked = await check_input_soon(body.model, entry, body.text, body.vectors, settings, work.reading)
    net, T = checked.net, len(checked.tokens)
    _refuse(body, net, T, settings.max_ig_steps)
    cache: ForwardCache = request.app.state.attributions
    key = cache.key(body.model, entry, checked.x)
    fw = cache.get(key) if body.method == "grad_x_input" else None
    points = body.steps or DEFAULT_STEPS
    if fw is not None:
        need = A.nbytes(net, body.t + 1) - fw.nbytes  # the backward pass only
    else:
        need = A.nbytes(net, T if body.method == "grad_x_input" else body.t + 1, body.method, points)
    warmer: Warmer = request.app.state.warmer
    kind = kernel_kind(net) if body.method == "grad_x_input" and fw is None else None
    try:
        await _compiled(warmer, kind, request)  # before a lane is taken: the wait holds none
    except ClientGone:
        return Response(status_code=499)
    gone, watcher = watch_disconnect(request.receive)
    try:
        job = await work.admit(gone, max(need, 0) + MB, f"an attribution over {body.t + 1} of {T} steps")
        try:
            kept = fw

            def compute() -> tuple[bytes, model.Forward | None]:
                """The attribution and its JSON, in one worker thread (each hop to the event loop waits its turn)."""
                made = None
                if body.method == "integrated_gradients":
                    x, target, layer, stop = checked.x, body.target, body.layer, job.stopped
                    a = A.attribute(
                        net, x, body.t, target=target, method=body.method, steps=points, layer=layer, stop=stop
                    )
                else:
                    made = kept or model.Forward(net, checked.x)  # the whole input: the next steps reuse it
                    a = made.attribute(body.t, body.target, body.layer)
                return json.dumps(_response(body.model, net, checked.tokens, a)).encode(), made

            out, made = await job.run(compute)
            warmer.loaded(kind)  # this process runs them now: no later request waits
            if made is not None and kept is None:
                cache.put(key, made)  # on the event loop, as every other touch of the cache
            return Response(out, media_type="application/json")  # as AttributeResponse documents it, unvalidated
        finally:
            job.close()
    except ClientGone:
        return Response(status_code=499)
    finally:
        watcher.cancel()
