"""Settings: one typed object read from the environment (GATESCOPE_*)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Settings:
    default_model: str = field(default_factory=lambda: os.environ.get("GATESCOPE_DEFAULT_MODEL", "code"))
    templates: Path = ROOT / "templates"
    static: Path = ROOT / "static"
