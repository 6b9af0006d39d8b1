"""Settings: one typed object read from the environment (GATESCOPE_*), overridable in tests."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None:
        return default
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"{name} must be a whole number, got {raw!r}") from None


@dataclass
class Settings:
    default_model: str = field(default_factory=lambda: os.environ.get("GATESCOPE_DEFAULT_MODEL", "code"))
    #: Most tokens one trace may have.
    max_tokens: int = field(default_factory=lambda: _env_int("GATESCOPE_MAX_TOKENS", 20_000))
    #: Most live-typing connections (WS /api/live) open at once.
    max_sessions: int = field(default_factory=lambda: _env_int("GATESCOPE_MAX_SESSIONS", 64))
    #: Predictions per step in a trace's probs.
    top_k: int = 5
    templates: Path = ROOT / "templates"
    static: Path = ROOT / "static"
