"""The models the server knows: the bundled ones and those uploaded (kept in the models folder).

The models folder is the truth every worker process shares: a worker's Registry follows it. Before a
request reads the registry, ``changed()`` stats the folder (its mtime moves with every upload and
delete, whichever worker made it); when it moved, ``sync()`` lists the folder again, loads the new
models, drops the removed ones and reloads only those whose files were replaced: a live session keeps
the very Network it was using while its model's files stay the same.

Two changes within the file system's timestamp granularity can leave the folder's mtime as it was, so
a listing made within ``MTIME_GRANULARITY`` of the last change is not trusted: the next read lists the
folder again, until a listing is old enough (git's "racily clean" index entries, the same problem).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

import model

from .uploads import Stamp, Store, Version

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


#: Seconds within which two changes to a folder may leave it the same mtime: a clock tick on Linux's
#: local file systems, a second on ext3 and HFS+, two on FAT.
MTIME_GRANULARITY = 2.0


class Registry:
    """The bundled models and the store's. Its table is replaced whole, never changed in place: a
    request that read it sees one consistent listing, whatever a sync does meanwhile."""

    def __init__(self, store: Store | None = None) -> None:
        self._store = store
        self._bundled: dict[str, Entry] = {}
        self._entries: dict[str, Entry] = {}
        self._versions: dict[str, Version] = {}  # an uploaded model's files, as its Entry was loaded from them
        self._stamp: Stamp | None = None  # the folder's, at the last trusted listing; None: list it again
        self._shadowed: set[str] = set()  # warned about once
        self._listed = -1.0  # time.monotonic() when the last listing began
        self._lock = threading.Lock()  # one sync (or add, or remove) at a time; readers never wait

    def load_bundled(self) -> None:
        """Load every bundled model and its card."""
        for name in model.available():
            net = model.load(name)
            path = model.PRETRAINED / name / "card.json"
            card = json.loads(path.read_text()) if path.is_file() else {}
            self._bundled[name] = Entry(net, card)
        self._entries = {**self._entries, **self._bundled}

    def changed(self) -> bool:
        """Whether the models folder may have changed since the last sync: one stat."""
        return self._store is not None and (self._stamp is None or self._store.stamp() != self._stamp)

    def sync(self) -> None:
        """Follow the models folder: load the models new there, drop the removed ones, reload those whose
        files changed, keep the others as they are. One that does not read is listed as unavailable."""
        store = self._store
        if store is None:
            return
        asked = time.monotonic()
        with self._lock:
            if self._listed >= asked or not self.changed():  # another thread listed it since: as fresh as needed
                return
            self._listed, now = time.monotonic(), time.time()
            stamp = store.stamp()  # before the listing: a change made during it moves the stamp again
            entries, versions = dict(self._bundled), {}
            for name, version in sorted(store.versions().items()):
                if name in self._bundled:
                    if name not in self._shadowed:
                        self._shadowed.add(name)
                        log.warning("gatescope: uploaded model %r is shadowed by a bundled model of that name", name)
                    continue
                kept = self._entries.get(name)
                entry = kept if kept is not None and self._versions.get(name) == version else _load(store, name)
                if entry is not None:
                    entries[name], versions[name] = entry, version
            self._entries, self._versions = entries, versions
            self._stamp = stamp if now - stamp[1] / 1e9 > MTIME_GRANULARITY else None

    def uploaded_nbytes(self) -> int:
        """Bytes the uploaded models' networks hold in memory (the bundled ones are part of the process)."""
        return sum(e.net.nbytes for e in self._entries.values() if e.origin == "uploaded" and e.net is not None)

    def names(self) -> list[str]:
        return sorted(self._entries)

    def entries(self) -> list[tuple[str, Entry]]:
        """Every model and its entry, from one listing."""
        return sorted(self._entries.items())

    def get(self, name: str) -> Entry | None:
        return self._entries.get(name)

    def add(self, name: str, entry: Entry) -> None:
        """A model this worker has just stored (or, in tests, one of their own)."""
        with self._lock:
            version = self._store.version(name) if self._store is not None else None
            if version is not None:
                self._versions = {**self._versions, name: version}  # a sync keeps it, without reloading it
            self._entries = {**self._entries, name: entry}

    def remove(self, name: str) -> None:
        with self._lock:
            self._entries = {k: v for k, v in self._entries.items() if k != name}


def _load(store: Store, name: str) -> Entry | None:
    """A stored model's entry; unavailable (with the reason) when its files do not read; None when gone."""
    try:
        net, card = store.load(name)
    except FileNotFoundError:  # removed since it was listed
        return None
    except (model.GatescopeError, OSError, UnicodeDecodeError, ValueError) as e:  # json's errors too
        log.warning("gatescope: uploaded model %r is unavailable: %s", name, e)
        return Entry(None, {}, "uploaded", f"its files do not read: {e}")  # type: ignore[arg-type]
    problem = card_problem(card)
    if problem is not None:
        log.warning("gatescope: uploaded model %r is unavailable: %s", name, problem)
    return Entry(net, card, "uploaded", problem)
