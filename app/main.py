"""The web app. ``create_app()`` builds it; ``app`` is what ``uvicorn app.main:app`` serves.

The page is a placeholder until the page issue; the API serves the bundled models' cards and traces.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import plotly
from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, HTMLResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from . import docs
from .api import live as live_api
from .api import models as models_api
from .api import trace as trace_api
from .registry import Registry
from .settings import Settings, uploads_allowed
from .uploads import Store

#: plotly.js as the plotly Python package ships it (no network at run time).
PLOTLY_JS = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the gatescope app."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        registry = Registry()
        registry.load_bundled()  # in the lifespan, never at import
        app.state.store = Store(settings.models_dir)
        registry.load_store(app.state.store)  # models uploaded before a restart
        app.state.registry = registry
        yield

    app = FastAPI(
        title="gatescope",
        description="Every gate of a recurrent network at every timestep.",
        lifespan=lifespan,
        docs_url=None,  # /docs is drawn by app/docs.py: Swagger UI would load from a CDN
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.live_sessions = 0
    app.include_router(models_api.router)
    app.include_router(trace_api.router)
    app.include_router(live_api.router)
    templates = Jinja2Templates(directory=str(settings.templates))
    app.state.templates = templates
    app.include_router(docs.router)
    app.mount("/static", StaticFiles(directory=str(settings.static)), name="static")

    @app.get("/vendor/plotly.min.js", include_in_schema=False)
    def plotly_js() -> FileResponse:
        """plotly.js from the installed plotly package: the page works offline, no CDN."""
        return FileResponse(PLOTLY_JS, media_type="text/javascript", headers={"Cache-Control": "max-age=86400"})

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def index(request: Request) -> HTMLResponse:
        """The page."""
        context = {"default_model": settings.default_model, "uploads": uploads_allowed(settings)}
        return templates.TemplateResponse(request, "index.html", context)

    return app


app = create_app()
