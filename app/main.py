"""The web app. ``create_app()`` builds it; ``app`` is what ``uvicorn app.main:app`` serves: the page
(templates/index.html and static/), the API (app/api/), and its documentation at /docs (Swagger UI)
and /redoc (ReDoc), both from local files.

Errors: model/'s ``InputError`` (the request's fault) answers 422, ``FormatError`` (a file's) 422,
each with the model's message as ``detail``; anything else is a bug in gatescope: logged, and a 500.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import fastapi_offline
import plotly
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

import model
from model.formats import SUFFIXES

from .api import attribute as attribute_api
from .api import compare as compare_api
from .api import index as index_api
from .api import live as live_api
from .api import models as models_api
from .api import page as page_api
from .api import probes as probes_api
from .api import series as series_api
from .api import story as story_api
from .api import trace as trace_api
from .api import units as units_api
from .api import views as views_api
from .api.deps import LiveSlots
from .indexes import Indexes
from .known import KnownUnits
from .limits import BodyLimit, ClientLimit
from .registry import Registry
from .schemas import describe
from .security import Guard, allow_inline_scripts
from .settings import Settings, uploads_allowed
from .uploads import Store
from .warm import Warmer
from .work import MB, Budget, Work, one_blas_thread, own_pages_for_big_arrays, process_rss

log = logging.getLogger("gatescope")

#: plotly.js as the plotly Python package ships it (no network at run time).
PLOTLY_JS = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
#: Swagger UI's and ReDoc's scripts and styles as the fastapi-offline package ships them (FastAPI's
#: own /docs would load them from a CDN).
DOCS_ASSETS = Path(fastapi_offline.__file__).parent / "static"
#: The image ReDoc's menu shows beside "API docs by Redocly", from a CDN unless replaced.
REDOC_LOGO = b"https://cdn.redoc.ly/redoc/logo-mini.svg"


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the gatescope app."""
    settings = settings or Settings.from_env()
    one_blas_thread()  # here, in the thread that builds the app: OpenBLAS ignored it from the lifespan's thread

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        own_pages_for_big_arrays()  # freed traces go back to the system
        store = Store(settings.models_dir, settings.max_conversions, settings.max_models, settings.max_models_mb)
        registry = Registry(store)
        registry.load_bundled()  # in the lifespan, never at import
        base = process_rss()  # the interpreter, the libraries and the bundled models
        bound = settings.max_memory_mb * MB // settings.workers  # this worker's share
        kept = app.state.attributions = attribute_api.ForwardCache(settings.attribution_cache_mb * MB)
        budget = Budget(lambda: bound - base - registry.uploaded_nbytes() - kept.nbytes, settings.busy_wait)
        app.state.work = Work(budget, settings.heavy_jobs)
        for name in store.clean():  # what a crash during an upload or delete left behind (not another worker's)
            log.warning("gatescope: removed %s from the models folder (left by an interrupted upload)", name)
        registry.sync()  # models uploaded before a restart (and by the other workers, from now on)
        app.state.store, app.state.registry = store, registry
        app.state.known = KnownUnits(settings.models_dir)  # units saved from probes, beside the uploads
        app.state.indexes = Indexes(settings, registry)  # jobs and their Dask cluster start at the first ask
        # compiled when a model is first traced, in a child process (never here: start-up memory is the budget's base)
        app.state.warmer = Warmer(settings.warm_attribution)
        try:
            yield
        finally:
            app.state.warmer.close()
            await run_in_threadpool(app.state.indexes.close)

    app = FastAPI(
        title="gatescope",
        description="Every gate of a recurrent network at every timestep. The page is at [/](/).",
        lifespan=lifespan,
        docs_url=None,  # served below from local files
        redoc_url=None,
    )
    app.state.settings = settings
    # Each worker's: the kernel does not spread connections evenly (64 shared out as 32 a worker refused 24 of 50
    # sessions on 2 workers); the memory budget, divided among the workers, bounds what the sessions hold.
    app.state.live_slots = LiveSlots(settings.max_sessions)
    app.include_router(models_api.router)
    app.include_router(trace_api.router)
    app.include_router(live_api.router)
    app.include_router(series_api.router)
    app.include_router(index_api.router)
    app.include_router(units_api.router)
    app.include_router(probes_api.router)
    app.include_router(views_api.router)
    app.include_router(compare_api.router)
    app.include_router(attribute_api.router)
    app.include_router(page_api.router)
    app.include_router(story_api.router)
    templates = Jinja2Templates(directory=str(settings.templates))
    app.mount("/static", StaticFiles(directory=str(settings.static)), name="static")
    app.add_middleware(BodyLimit, settings=settings)  # a body's size, before it is read
    app.add_middleware(ClientLimit, settings=settings)  # requests in progress per client
    app.add_middleware(Guard, settings=settings)  # Host, Origin, token, headers: before anything else
    _errors(app)
    _docs(app)  # before the assets' mount: its ReDoc route takes precedence
    app.mount("/vendor/docs", StaticFiles(directory=str(DOCS_ASSETS)), name="docs-assets")

    @app.get("/vendor/plotly.min.js", include_in_schema=False)
    def plotly_js() -> FileResponse:
        """plotly.js from the installed plotly package: the page works offline, no CDN."""
        return FileResponse(PLOTLY_JS, media_type="text/javascript", headers={"Cache-Control": "max-age=86400"})

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def index(request: Request) -> HTMLResponse:
        """The page."""
        context = {
            "default_model": settings.default_model,
            "uploads": uploads_allowed(settings),
            "upload_suffixes": list(SUFFIXES),
            "max_corpus_mb": settings.max_corpus_mb,
        }
        return templates.TemplateResponse(request, "index.html", context)

    return app


def _errors(app: FastAPI) -> None:
    """Every refusal as ``{"detail": a sentence}``: HTTP errors as raised (405 with a full Allow), FastAPI's
    validation errors and model/'s refusals as 422s; anything else is a bug: logged, a 500."""

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        """Starlette's refusals as they are, but a 405 lists every method of its path in Allow (it listed
        only the first route's)."""
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            headers["Allow"] = ", ".join(sorted(_methods_of(app, request.scope)))
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        """FastAPI's own 422 as the schema documents every refusal: one sentence in ``detail``."""
        return JSONResponse({"detail": describe(exc.errors())}, status_code=422)

    @app.exception_handler(model.GatescopeError)
    async def refused(request: Request, exc: model.GatescopeError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=422)

    @app.exception_handler(Exception)
    async def failed(request: Request, exc: Exception) -> JSONResponse:
        log.error("gatescope: %s %s failed", request.method, request.url.path, exc_info=exc)
        detail = "internal error: a bug in gatescope, not a mistake in the request (the server's log has the details)"
        return JSONResponse({"detail": detail}, status_code=500)


def _methods_of(app: FastAPI, scope: Any) -> set[str]:
    """Every method the schema documents at this request's path."""
    path = scope.get("path", "")
    methods: set[str] = set()
    for template, item in app.openapi()["paths"].items():
        if re.fullmatch(re.sub(r"\{[^}/]+\}", "[^/]+", template), path):
            methods |= {m.upper() for m in item}
    return methods


@functools.cache
def _redoc_js() -> bytes:
    """ReDoc's script with its CDN logo replaced by a local image (read once)."""
    return (DOCS_ASSETS / "redoc.standalone.js").read_bytes().replace(REDOC_LOGO, b"/vendor/docs/favicon.png")


def _docs(app: FastAPI) -> None:
    """/docs (Swagger UI, "Try it out" against this server) and /redoc, from local files."""

    @app.get("/docs", include_in_schema=False)
    def swagger_ui() -> HTMLResponse:
        page = get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title="gatescope API",
            swagger_js_url="/vendor/docs/swagger-ui-bundle.js",
            swagger_css_url="/vendor/docs/swagger-ui.css",
            swagger_favicon_url="/vendor/docs/favicon.png",
            swagger_ui_parameters={"validatorUrl": None, "defaultModelsExpandDepth": 1},  # no badge from a validator
        )
        return allow_inline_scripts(page)  # its one inline script starts Swagger UI

    @app.get("/vendor/docs/redoc.standalone.js", include_in_schema=False)
    def redoc_script() -> Response:
        """ReDoc, with its menu's logo (the one thing it fetches from a CDN) pointed at a local image."""
        return Response(_redoc_js(), media_type="text/javascript", headers={"Cache-Control": "max-age=86400"})

    @app.get("/redoc", include_in_schema=False)
    def redoc() -> HTMLResponse:
        return get_redoc_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title="gatescope API",
            redoc_js_url="/vendor/docs/redoc.standalone.js",
            redoc_favicon_url="/vendor/docs/favicon.png",
            with_google_fonts=False,
        )


app = create_app()
