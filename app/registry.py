"""The models the server knows: loaded once in the lifespan, with their cards."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import model


@dataclass
class Entry:
    net: model.Network
    card: dict[str, Any]


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

    def names(self) -> list[str]:
        return sorted(self._entries)

    def get(self, name: str) -> Entry | None:
        return self._entries.get(name)
