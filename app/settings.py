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


def _env_flag(name: str) -> bool | None:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return None
    if raw.lower() in ("1", "true", "yes", "on"):
        return True
    if raw.lower() in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"{name} must be 1 or 0, got {raw!r}")


def _default_models_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "gatescope" / "models"


#: Host names that only this machine can reach.
LOOPBACK = {"127.0.0.1", "localhost", "::1"}


@dataclass
class Settings:
    default_model: str = field(default_factory=lambda: os.environ.get("GATESCOPE_DEFAULT_MODEL", "code"))
    #: Most tokens one trace may have.
    max_tokens: int = field(default_factory=lambda: _env_int("GATESCOPE_MAX_TOKENS", 20_000))
    #: Most live-typing connections (WS /api/live) open at once.
    max_sessions: int = field(default_factory=lambda: _env_int("GATESCOPE_MAX_SESSIONS", 64))
    #: Predictions per step in a trace's probs.
    top_k: int = 5
    #: Where uploaded models are kept (and found again after a restart).
    models_dir: Path = field(
        default_factory=lambda: (
            Path(os.environ["GATESCOPE_MODELS"]) if os.environ.get("GATESCOPE_MODELS") else _default_models_dir()
        )
    )
    #: The address the server binds to (``gatescope serve`` sets it); None when unknown.
    host: str | None = field(default_factory=lambda: os.environ.get("GATESCOPE_HOST") or None)
    #: Uploads on (True) or off (False); None: on only when the server binds to loopback.
    uploads: bool | None = field(default_factory=lambda: _env_flag("GATESCOPE_UPLOADS"))
    #: Largest upload, in megabytes.
    max_upload_mb: int = field(default_factory=lambda: _env_int("GATESCOPE_MAX_UPLOAD_MB", 200))
    #: Seconds an upload may take to read before it is refused.
    import_timeout: float = 60.0
    templates: Path = ROOT / "templates"
    static: Path = ROOT / "static"


def uploads_allowed(settings: Settings) -> bool:
    """Whether POST/DELETE /api/models are open: as set, else only on a loopback-bound server."""
    if settings.uploads is not None:
        return settings.uploads
    return settings.host in LOOPBACK
