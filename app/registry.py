"""The models the server knows: the bundled ones and those uploaded (kept in the models folder)."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

import model

from .uploads import Store

log = logging.getLogger("gatescope")


@dataclass
class Entry:
    """A model the server lists: its network and card, or (``problem``) why it cannot be used."""

    net: model.Network
    card: dict[str, Any]
    origin: str = "bundled"  # or "uploaded"
    problem: str | None = None  # set: listed as unavailable, never traced


#: What a card's fields must be, where it has them (a card.json is a file: it can hold anything).
CARD_TYPES: dict[str, type | tuple[type, ...]] = {
    "description": str,
    "examples": list,
    "heldout": dict,
    "telling_units": dict,
    "command": str,
}


def card_problem(card: Any) -> str | None:
    """Why a card cannot be shown, or None."""
    if not isinstance(card, dict):
        return f"its card.json holds {type(card).__name__}, not an object"
    for key, kind in CARD_TYPES.items():
        if key in card and card[key] is not None and not isinstance(card[key], kind):
            return f"its card.json's {key!r} is {type(card[key]).__name__}, not {getattr(kind, '__name__', kind)}"
    if not all(isinstance(x, str) for x in card.get("examples") or []):
        return "its card.json's 'examples' are not all strings"
    return None


class Registry:
    def __init__(self) -> None:
        self._entries: dict[str, Entry] = {}

    def load_bundled(self) -> None:
        """Load every bundled model and its card."""
        for name in model.available():
            net = model.load(name)
            path = model.PRETRAINED / name / "card.json"
            card = json.loads(path.read_text()) if path.is_file() else {}
            self._entries[name] = Entry(net, card)

    def load_store(self, store: Store) -> None:
        """Load the models uploaded earlier; one that no longer reads is skipped with a warning."""
        for name in store.ids():
            if name in self._entries:
                log.warning("gatescope: uploaded model %r is shadowed by a bundled model of that name", name)
                continue
            try:
                net, card = store.load(name)
            except (model.GatescopeError, OSError, UnicodeDecodeError, ValueError) as e:  # json's errors too
                log.warning("gatescope: uploaded model %r is unavailable: %s", name, e)
                self._entries[name] = Entry(None, {}, "uploaded", f"its files do not read: {e}")  # type: ignore[arg-type]
                continue
            problem = card_problem(card)
            if problem is not None:
                log.warning("gatescope: uploaded model %r is unavailable: %s", name, problem)
            self._entries[name] = Entry(net, card, "uploaded", problem)

    def uploaded_nbytes(self) -> int:
        """Bytes the uploaded models' networks hold in memory (the bundled ones are part of the process)."""
        return sum(e.net.nbytes for e in self._entries.values() if e.origin == "uploaded" and e.net is not None)

    def names(self) -> list[str]:
        return sorted(self._entries)

    def get(self, name: str) -> Entry | None:
        return self._entries.get(name)

    def add(self, name: str, entry: Entry) -> None:
        self._entries[name] = entry

    def remove(self, name: str) -> None:
        self._entries.pop(name, None)
