"""Known units a person saved (from a probe, or by hand): listed in the model's card under telling_units["saved"].

Where they are kept, in the models folder (GATESCOPE_MODELS), so they survive a restart as uploads do:
- an uploaded model's beside it, ``<models>/<id>/known_units.json`` (deleted with the model);
- a bundled model's in ``<models>/.known-units/<id>.json`` (the bundled files are never written).

Each file is a JSON list of {"feature" (the label), "layer", "unit", "gate", "r", "saved"}; it is read on every
card request (a small file: every worker sees another's save at once) and replaced atomically under a lock.
"""

from __future__ import annotations

import fcntl
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from .uploads import LOCKS, UploadError, _disk_error

#: Most units saved for one model (the oldest beyond it are dropped).
MAX_SAVED = 100
#: The folder of bundled models' saved units, inside the models folder (not an id: it starts with a dot).
BUNDLED = ".known-units"


class KnownUnits:
    """The saved units of every model, under the models folder ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, model_id: str, origin: str) -> Path:
        if origin == "uploaded":
            return self.root / model_id / "known_units.json"
        return self.root / BUNDLED / f"{model_id}.json"

    def saved(self, model_id: str, origin: str) -> list[dict[str, Any]]:
        """The units saved for a model, oldest first ([] when none, or when the file does not read)."""
        try:
            saved = json.loads(self.path(model_id, origin).read_text())
        except (OSError, ValueError):
            return []
        return [u for u in saved if isinstance(u, dict)] if isinstance(saved, list) else []

    def add(self, model_id: str, origin: str, unit: dict[str, Any]) -> list[dict[str, Any]]:
        """Save ``unit`` (replacing one saved before at the same layer, unit and gate); the units now saved.
        UploadError (503/507) when the folder cannot be written."""
        path = self.path(model_id, origin)
        entry = {**unit, "saved": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        try:
            if origin != "uploaded":
                path.parent.mkdir(parents=True, exist_ok=True)
            elif not path.parent.is_dir():
                raise UploadError(f"model {model_id!r} is no longer stored", 404)
            (self.root / LOCKS).mkdir(parents=True, exist_ok=True)
            fd = os.open(self.root / LOCKS / "known-units", os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)  # one read-change-write at a time, over every worker
                same = (unit["layer"], unit["unit"], unit["gate"])
                kept = [
                    u for u in self.saved(model_id, origin) if (u.get("layer"), u.get("unit"), u.get("gate")) != same
                ]
                saved = [*kept, entry][-MAX_SAVED:]
                tmp = tempfile.NamedTemporaryFile("w", dir=path.parent, prefix=".known-", delete=False)
                with tmp:
                    json.dump(saved, tmp, indent=1)
                os.replace(tmp.name, path)
            finally:
                os.close(fd)
        except OSError as e:
            raise _disk_error(e, f"save a known unit of {model_id!r}") from None
        return saved
