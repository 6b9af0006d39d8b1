"""The web app. ``create_app()`` builds it; ``app`` is what ``uvicorn app.main:app`` serves.

Until the backend issue lands this serves a placeholder page that says what exists so far.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

import model

from .settings import Settings


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the gatescope app."""
    settings = settings or Settings()
    app = FastAPI(title="gatescope", description="Every gate of a recurrent network at every timestep.")
    templates = Jinja2Templates(directory=str(settings.templates))
    app.mount("/static", StaticFiles(directory=str(settings.static)), name="static")

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def index(request: Request) -> HTMLResponse:
        """The page."""
        return templates.TemplateResponse(request, "index.html", {"models": model.available()})

    return app


app = create_app()
