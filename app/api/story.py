"""GET /api/story: the guided story's chapters (model/story.py measures every number they state), and the
measured descriptions of the bundled models their cards show (model/teach.py). Both are computed once per
loaded network and kept."""

from __future__ import annotations

import threading
from typing import Any

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

from model.story import chapters
from model.teach import lesson

from ..registry import Entry, Registry
from .deps import RegistryDep

router = APIRouter(prefix="/api/story", tags=["story"])

_lock = threading.Lock()
#: Lessons by (model id, id of its network): the network is kept beside it, so the id is never reused.
_lessons: dict[tuple[str, int], tuple[Any, dict[str, Any] | None]] = {}
#: The story by the networks it was measured on.
_story: dict[tuple[tuple[str, int], ...], list[dict[str, Any]]] = {}


def lesson_of(name: str, entry: Entry) -> dict[str, Any] | None:
    """A bundled model's measured description and examples (None: an uploaded model, or a task not taught)."""
    if entry.origin != "bundled" or entry.problem is not None or entry.net is None:
        return None
    key = (name, id(entry.net))
    with _lock:
        if key not in _lessons:
            _lessons[key] = (entry.net, lesson(entry.net, entry.card))
        return _lessons[key][1]


def _bundled(registry: Registry) -> dict[str, tuple[Any, dict[str, Any]]]:
    return {n: (e.net, e.card) for n, e in registry.entries() if e.origin == "bundled" and e.problem is None and e.net}


def _chapters(registry: Registry) -> list[dict[str, Any]]:
    models = _bundled(registry)
    key = tuple(sorted((n, id(net)) for n, (net, _) in models.items()))
    with _lock:
        if key not in _story:
            _story[key] = chapters(models)
        return _story[key]


@router.get("")
async def get_story(registry: RegistryDep) -> dict[str, Any]:
    """The guided story: its chapters, each a page state (model, text, layer, unit, t, highlight) and its words."""
    return {"chapters": await run_in_threadpool(_chapters, registry)}
