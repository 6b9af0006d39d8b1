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
    net: model.Network
    card: dict[str, Any]
    origin: str = "bundled"  # or "uploaded"


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
            except (model.FormatError, ValueError, OSError) as e:
                log.warning("gatescope: skipping uploaded model %r: %s", name, e)
                continue
            self._entries[name] = Entry(net, card, "uploaded")

    def names(self) -> list[str]:
        return sorted(self._entries)

    def get(self, name: str) -> Entry | None:
        return self._entries.get(name)

    def add(self, name: str, entry: Entry) -> None:
        self._entries[name] = entry

    def remove(self, name: str) -> None:
        self._entries.pop(name, None)
