"""Settings: one typed object read from the environment (``GATESCOPE_*``), overridable in tests.

GATESCOPE_DEFAULT_MODEL   the model the page opens with (code)
GATESCOPE_MAX_TOKENS      most tokens one trace may have (20000)
GATESCOPE_MAX_INTERVENTIONS  most interventions one trace or live edit may carry (64)
GATESCOPE_MAX_SESSIONS    most live-typing sockets open at once, over all workers (64)
GATESCOPE_MODELS          where uploaded models are kept (~/.local/share/gatescope/models)
GATESCOPE_HOST            the address the server binds to (``gatescope serve`` sets it)
GATESCOPE_UPLOADS         1 or 0: uploads on or off (unset: on only when bound to loopback)
GATESCOPE_MAX_UPLOAD_MB   largest upload (200)
GATESCOPE_MAX_MODEL_MB    most weights an uploaded file may declare, refused from its metadata (512)
GATESCOPE_IMPORT_TIMEOUT  seconds an upload may take to read (60)
GATESCOPE_MAX_MEMORY_MB   the memory the server may hold: models, traces in flight, live sessions (2048)
GATESCOPE_HEAVY_JOBS      big traces computed at once (1); small ones never wait for them
GATESCOPE_MAX_CLIENT_REQUESTS  API requests one client address may have in progress at once (16)
GATESCOPE_BUSY_WAIT       seconds a job waits for memory before it is refused with 503 (10)
GATESCOPE_WORKERS         worker processes serving together (1; ``gatescope serve --workers`` sets it):
                          a per-process budget is the server's divided by it
GATESCOPE_DATA_DIR        where corpus indexes are kept, under indexes/<model>/ (~/.cache/gatescope)
GATESCOPE_MAX_CORPUS_MB   largest corpus upload, as sent (50)
GATESCOPE_MAX_CORPUS_UNZIPPED_MB  most text a zipped corpus may unpack to (200)
GATESCOPE_MAX_CORPUS_FILES  most files a zipped corpus may hold (10000)
GATESCOPE_INDEX_JOBS      index builds running at once (1); more wait their turn, up to 8 in all
GATESCOPE_INDEX_MB        the disk all indexes may take together (4096)
GATESCOPE_INDEX_WORKERS   Dask worker processes of the server's local cluster (1)
GATESCOPE_DASK_SCHEDULER  an existing Dask scheduler's address (tcp://...) instead of the local cluster
GATESCOPE_INDEX_BUNDLED   1 or 0: build a bundled model's held-out index on first ask (1)
GATESCOPE_HELDOUT_CHARS   the characters of held-out Python the code model's index reads (300000)
GATESCOPE_MAX_IG_STEPS    most points integrated gradients may take in POST /api/attribute (256)
GATESCOPE_ATTRIBUTION_CACHE_MB  forward passes kept for POST /api/attribute's scrubbing, in MB (64)
GATESCOPE_WARM_ATTRIBUTION  1 or 0: compile a model's attribution kernels, in a process of their own, when it is
                          first traced (1)
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

from pydantic import AliasChoices, Field, PositiveFloat, PositiveInt, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

ROOT = Path(__file__).resolve().parent.parent
PREFIX = "GATESCOPE_"


def _default_data_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "gatescope"


def _default_models_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "gatescope" / "models"


#: Host names that only this machine can reach.
LOOPBACK = {"127.0.0.1", "localhost", "::1"}


class SettingsError(ValueError):
    """An environment variable holds a value gatescope cannot use; the message names the variable."""


class Settings(BaseSettings):
    """The server's settings, each from ``GATESCOPE_<NAME>`` when set."""

    model_config = SettingsConfigDict(env_prefix=PREFIX, env_ignore_empty=True, extra="ignore")

    default_model: str = Field("code", description="the model the page opens with")
    max_tokens: PositiveInt = Field(20_000, description="most tokens one trace may have")
    max_plain_values: PositiveInt = Field(
        4_000_000, description="most numbers one trace may send as plain JSON or CSV (binary and npz: no limit)"
    )
    max_sessions: PositiveInt = Field(
        64, description="most live-typing connections (WS /api/live) open at once in each worker"
    )
    top_k: PositiveInt = Field(5, description="predictions per step in a trace's probs")
    max_interventions: PositiveInt = Field(
        64, description="most interventions one trace (or live edit) may carry; their patch sources count as text"
    )
    models_dir: Path = Field(
        default_factory=_default_models_dir,
        validation_alias=AliasChoices("models_dir", f"{PREFIX}MODELS"),
        description="where uploaded models are kept (and found again after a restart)",
    )
    host: str | None = Field(None, description="the address the server binds to; None when unknown")
    uploads: bool | None = Field(None, description="uploads on or off; None: on only when bound to loopback")
    max_upload_mb: PositiveInt = Field(200, description="largest upload, in megabytes")
    max_model_mb: PositiveInt = Field(
        512, description="most megabytes of weights one uploaded file may declare (refused before they are read)"
    )
    max_models: PositiveInt = Field(100, description="most uploaded models kept")
    max_models_mb: PositiveInt = Field(4096, description="most megabytes the uploaded models may take on disk")
    max_conversions: PositiveInt = Field(1, description="uploads converted at once (each converter may take 4 GB)")
    max_body_mb: PositiveInt = Field(16, description="largest body of any other request, in megabytes")
    max_memory_mb: PositiveInt = Field(
        2048, description="the memory the server may hold (models, traces in flight, live sessions), in megabytes"
    )
    heavy_jobs: PositiveInt = Field(1, description="traces of more than 8 MB computed at once; small ones never wait")
    max_client_requests: PositiveInt = Field(16, description="API requests one client address may have in progress")
    busy_wait: PositiveFloat = Field(10.0, description="seconds a job waits for memory before a 503")
    import_timeout: PositiveFloat = Field(60.0, description="seconds an upload may take to read before it is refused")
    allowed_hosts: Annotated[list[str], NoDecode] = Field(
        default=[], description="host names beside loopback and the bound address (DNS rebinding)"
    )
    token: str | None = Field(None, description="a token every request must carry; None: none needed")
    workers: PositiveInt = Field(1, description="worker processes serving together; per-process budgets divide by it")
    data_dir: Path = Field(
        default_factory=_default_data_dir, description="where corpus indexes are kept (indexes/<model id>/)"
    )
    max_corpus_mb: PositiveInt = Field(50, description="largest corpus upload (a .txt, .jsonl or .zip), in megabytes")
    max_corpus_unzipped_mb: PositiveInt = Field(200, description="most megabytes a zipped corpus may unpack to")
    max_corpus_files: PositiveInt = Field(10_000, description="most files a zipped corpus may hold")
    index_jobs: PositiveInt = Field(1, description="index builds running at once; more wait their turn")
    index_mb: PositiveInt = Field(4096, description="most megabytes all corpus indexes may take on disk together")
    index_workers: PositiveInt = Field(
        1, description="Dask worker processes of the local cluster that builds indexes (one core beside the server's)"
    )
    dask_scheduler: str | None = Field(
        None, description="an existing Dask scheduler's address (tcp://host:8786); None: a local cluster"
    )
    index_bundled: bool = Field(True, description="build a bundled model's held-out index when it is first asked for")
    heldout_chars: PositiveInt = Field(
        300_000, description="characters of held-out Python the code model's index reads (whole files)"
    )
    max_ig_steps: PositiveInt = Field(
        256, description="most points integrated gradients may take (POST /api/attribute)"
    )
    attribution_cache_mb: int = Field(
        64, ge=0, description="megabytes of forward passes kept so a scrubbed attribution costs one backward pass"
    )
    warm_attribution: bool = Field(
        True,
        description="when a model is first traced, compile its cell kind's attribution kernels in a child process "
        "(numba's disk cache), so its first attribution need not",
    )
    templates: Path = ROOT / "templates"

    @field_validator("allowed_hosts", mode="before")
    @classmethod
    def _comma_separated(cls, v: object) -> object:
        return [h.strip() for h in v.split(",") if h.strip()] if isinstance(v, str) else v

    static: Path = ROOT / "static"

    @classmethod
    def from_env(cls, **overrides: object) -> Settings:
        """The settings, or a SettingsError naming the variable whose value is unusable."""
        try:
            return cls(**overrides)  # type: ignore[arg-type]
        except ValidationError as e:
            problems = []
            for err in e.errors():
                name = str(err["loc"][0]) if err["loc"] else "?"
                var = name if name.startswith(PREFIX) else f"{PREFIX}{name.upper()}"
                if var == f"{PREFIX}MODELS_DIR":
                    var = f"{PREFIX}MODELS"
                problems.append(f"{var}={err.get('input')!r}: {err['msg'].lower()}")
            raise SettingsError("; ".join(problems)) from None


def uploads_allowed(settings: Settings) -> bool:
    """Whether POST/DELETE /api/models are open: as set, else only on a loopback-bound server."""
    if settings.uploads is not None:
        return settings.uploads
    return settings.host in LOOPBACK
