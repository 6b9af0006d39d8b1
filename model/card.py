"""Model cards: what a bundled model is, how it was made, how well it does, and which units tell
its story, computed from its weights (so a test can recompute every claim).

    card = make_card(net, task, name)      # a JSON-ready dict
    write_card(folder, card)               # folder/card.json beside folder/model.safetensors
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .analysis import best_units, code_features, depth_unit, level_and_season, memory_unit, store_unit
from .errors import InputError
from .network import Network
from .tasks import Task, dyck_depth

#: Held-out characters the code card's feature correlations are computed on.
CODE_CHARS = 20_000
#: Held-out strings (dyck) or sequences (recall) the unit claims are computed on.
UNIT_SAMPLES = 200
#: The seed of the held-out data the unit claims use.
SEED = 1234
#: Weeks in a year: the co2 card's level is the series' moving average over a year.
YEAR = 52


def telling_units(net: Network, task: Task) -> dict[str, Any]:
    """The units that carry the task: feature cells for code, the counter for dyck, the memory for recall,
    the store for the adding problem (its input gate against the markers), the level and the season for co2."""
    if task.name == "adding":
        xs, _ = task.heldout(SEED)  # type: ignore[attr-defined]
        return {"store": store_unit(net, xs[:UNIT_SAMPLES])}
    if task.name == "co2":
        return level_and_season(net, task.series[:, None], YEAR)  # type: ignore[attr-defined]
    if task.vocab is None:
        return {}
    if task.name == "code":
        text = task.heldout_text(CODE_CHARS)[:CODE_CHARS]  # type: ignore[attr-defined]
        return {"features": best_units(net.trace(text), code_features(text))}
    if task.name == "dyck":
        strings = task.heldout(SEED)[:UNIT_SAMPLES]  # type: ignore[attr-defined]
        return {"depth": depth_unit(net, strings, dyck_depth)}
    if task.name == "recall":
        usual, _ = task.heldout(SEED)  # type: ignore[attr-defined]
        return {"memory": memory_unit(net, [s[:-1] for s in usual[:UNIT_SAMPLES]])}
    raise InputError(f"no telling units defined for task {task.name!r}")


def make_card(net: Network, task: Task, name: str) -> dict[str, Any]:
    """The card of ``net``, trained on ``task``: everything the page and the README show about it."""
    training = net.spec.meta.get("training", {})
    s = net.spec
    return {
        "id": name,
        "task": task.name,
        "description": task.description,
        "cell": s.cell,
        "layers": s.num_layers,
        "hidden_size": s.hidden_size,
        "vocab_size": len(s.vocab or ()),
        "input": net.input,
        "input_size": s.input_size if net.input == "vectors" else None,
        "head": getattr(s, "head", None),
        "head_at": getattr(s, "head_at", "every"),
        "command": training.get("command"),
        "task_options": training.get("task_options", {}),
        "steps": training.get("steps_done"),
        "wall_seconds": training.get("wall_seconds"),
        "heldout": training.get("heldout"),
        "examples": task.examples,
        "telling_units": telling_units(net, task),
    }


def write_card(folder: Path, card: dict[str, Any]) -> Path:
    path = Path(folder) / "card.json"
    path.write_text(json.dumps(card, indent=2) + "\n")
    return path
