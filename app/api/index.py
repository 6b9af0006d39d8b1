"""A model's corpus index: GET its status, POST a corpus to build one in the background, follow the build's
progress (JSON Lines), DELETE it (cancelling a build under way). app/indexes.py keeps them and runs the jobs."""

from __future__ import annotations

import asyncio
import json
import shutil
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from ..corpora import Corpus, CorpusError, heldout, read_upload
from ..indexes import Indexes, IndexRefused
from ..registry import Entry
from ..schemas import Detail
from ..settings import Settings
from .deps import EntryDep, SettingsDep, find_model, get_registry, require_uploads

router = APIRouter(prefix="/api/models", tags=["index"])


class Progress(BaseModel):
    """How far a build is."""

    docs: int = Field(description="documents done")
    total_docs: int = Field(description="documents in the corpus (0 until the build has read it)")
    chars: int = Field(description="characters (text) or steps (series) done")
    total_chars: int = Field(description="characters or steps in the corpus")
    seconds: float = Field(description="seconds since the build started")
    eta: float | None = Field(description="seconds left, estimated from the pace so far; null until known")
    percent: float = Field(description="chars / total_chars, in percent")


class IndexInfo(BaseModel):
    """What a ready index holds."""

    corpus: str = Field(description="what was indexed, e.g. 'held-out Python (75 standard-library files)'")
    name: str | None = Field(default=None, description="the corpus file's name, or 'heldout'")
    docs: int | None = None
    steps: int | None = None
    chars: int | None = None
    gates: list[str] | None = None
    layers: int | None = None
    width: int | None = Field(default=None, description="units per layer")
    kind: str | None = Field(default=None, description='"text" or "vector"')
    seconds: float | None = Field(default=None, description="how long the build took")
    created: str | None = Field(default=None, description="when it was built (ISO time)")
    notes: list[str] = Field(default=[], description="what the build skipped (binary files in a zip, ...)")


class IndexStatus(BaseModel):
    """Where a model's index is."""

    model: str
    state: str = Field(description='"none" | "building" | "ready" | "failed"')
    progress: Progress | None = Field(default=None, description="while building (and how far a failed build got)")
    info: IndexInfo | None = Field(default=None, description="when ready")
    error: str | None = Field(default=None, description="why the last build failed (or that it was cancelled)")
    corpus: str | None = Field(default=None, description="what is being indexed")
    waiting: bool | None = Field(default=None, description="building: true while it waits for another build to end")
    notes: list[str] | None = None
    version: int = Field(default=0, description="moves with every change of the build's progress or state")


#: What each refusal of these routes means (the OpenAPI schema's descriptions).
REFUSALS = {
    400: "the upload is not a valid multipart form",
    403: "uploads are switched off on this server (GATESCOPE_UPLOADS), or the request came from another web page",
    404: "no such model (GET /api/models lists them)",
    409: "the model has an index being built already (DELETE cancels it), or it is listed as unavailable",
    411: "the corpus came without a Content-Length",
    413: "the corpus is over GATESCOPE_MAX_CORPUS_MB, or a zip over GATESCOPE_MAX_CORPUS_UNZIPPED_MB or "
    "GATESCOPE_MAX_CORPUS_FILES",
    415: "the corpus is not of a kind the model reads (not UTF-8 text, not a zip, text for a vector model ...)",
    422: "an empty corpus, one the model's tokenizer cannot read, a form field that takes other values, or none sent",
    503: "too many index jobs under way, or a build that did not stop in time: try again",
    507: "the corpus's index would not fit in GATESCOPE_INDEX_MB",
}


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {code: {"model": Detail, "description": REFUSALS[code]} for code in codes}


def get_indexes(request: Request) -> Indexes:
    return request.app.state.indexes


INDEX_BODY = {
    "requestBody": {
        "required": False,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "corpus": {
                            "type": "string",
                            "format": "binary",
                            "description": "text models: a UTF-8 text file, a .jsonl ('text' field a line) or a .zip "
                            "of text files; vector models: a .csv or .npy series or a .zip of them. Without it, a "
                            "bundled model indexes its held-out data",
                        },
                        "per": {
                            "type": "string",
                            "enum": ["file", "line"],
                            "description": "a document per file (default) or per line",
                        },
                        "carry": {
                            "type": "string",
                            "enum": ["0", "1"],
                            "description": "1: the state carries across documents (stream-trained models)",
                        },
                    },
                }
            }
        },
    }
}


@router.get("/{model_id}/index", response_model=IndexStatus, responses=errors(404, 409, 422))
def get_index(model_id: str, entry: EntryDep, request: Request) -> dict[str, Any]:
    """The model's index: none, building (with progress), ready (what it holds) or failed (why). A bundled
    model's first ask starts building its held-out index."""
    find_model(request.app.state.registry, model_id)  # 409 for an unavailable model
    return get_indexes(request).status(model_id)


def check_corpus_size(request: Request, settings: Settings, extra_mb: int = 0) -> None:
    """411 without a Content-Length, 413 over GATESCOPE_MAX_CORPUS_MB (and ``extra_mb``): before reading."""
    size = request.headers.get("content-length")
    if size is None or not size.isdigit():
        raise HTTPException(411, "send the corpus with a Content-Length header")
    most = settings.max_corpus_mb + extra_mb
    if int(size) > (most << 20) + (1 << 20):
        raise HTTPException(413, f"the upload is {int(size) / 2**20:,.0f} MB; a corpus may be at most {most} MB")


@router.post(
    "/{model_id}/index",
    response_model=IndexStatus,
    status_code=202,
    openapi_extra=INDEX_BODY,
    responses=errors(400, 403, 404, 409, 411, 413, 415, 422, 503, 507),
    dependencies=[Depends(require_uploads)],
)
async def index_corpus(model_id: str, request: Request, settings: SettingsDep) -> Any:
    """Index a corpus for the model in the background (202: follow GET .../index/progress); it then serves every
    view that reads an index. Without a corpus, a bundled model indexes its held-out data."""
    registry = await get_registry(request)
    entry = find_model(registry, model_id)
    check_corpus_size(request, settings)
    try:
        form = await request.form(max_files=1, max_fields=4)
    except Exception as e:  # starlette's own errors for a malformed form
        raise HTTPException(400, f"the upload is not a valid multipart form ({e})") from None
    try:
        per, carry = _options(form)
        upload = form.get("corpus")
        if upload is None and entry.origin == "bundled":
            held = await run_in_threadpool(heldout, model_id, entry.card, settings.heldout_chars)
            if held is None:
                raise HTTPException(422, f"model {model_id!r} has no held-out data: send a corpus as 'corpus'")
            return _started(request, model_id, held, None)
        corpus, cleanup = await run_in_threadpool(prepare, upload, entry, settings, per, carry)
    finally:
        await form.close()
    return _started(request, model_id, corpus, cleanup)


def _started(request: Request, model_id: str, corpus: Corpus, cleanup: Any) -> JSONResponse:
    indexes = get_indexes(request)
    try:
        indexes.start(model_id, corpus, cleanup=cleanup)
    except IndexRefused as e:
        if cleanup is not None:
            cleanup()
        raise HTTPException(e.status, str(e)) from None
    return JSONResponse(indexes.status(model_id), status_code=202)


#: The form fields POST .../index reads.
FIELDS = ("corpus", "per", "carry")


def _options(form: Any) -> tuple[str, bool]:
    unknown = sorted(set(form.keys()) - set(FIELDS))
    if unknown:
        raise HTTPException(422, f"the form takes {', '.join(FIELDS)}; not {', '.join(map(repr, unknown))}")
    per, carry = form.get("per") or "file", form.get("carry") or "0"
    if per not in ("file", "line"):
        shown = repr(per) if isinstance(per, str) else "a file"
        raise HTTPException(422, f"the form field 'per' takes file or line, not {shown}")
    if carry not in ("0", "1", "true", "false"):
        raise HTTPException(422, "the form field 'carry' takes 1 (the state carries across documents) or 0")
    return per, carry in ("1", "true")


def prepare(upload: Any, entry: Entry, settings: Settings, per: str, carry: bool) -> tuple[Corpus, Any]:
    """The uploaded corpus saved into a folder of its job's own and checked; and what removes that folder."""
    if not isinstance(upload, UploadFile) or not upload.filename:
        raise HTTPException(422, "send the corpus as a file in the form field 'corpus' (a .txt, .jsonl or .zip)")
    work = Path(tempfile.mkdtemp(prefix="gatescope-corpus-"))

    def cleanup() -> None:
        shutil.rmtree(work, ignore_errors=True)

    try:
        name = Path(upload.filename.replace("\\", "/")).name or "corpus.txt"
        path = work / ("upload" + Path(name).suffix.lower()[:16])
        with open(path, "wb") as out:
            shutil.copyfileobj(upload.file, out)
        if path.stat().st_size > settings.max_corpus_mb << 20:
            raise CorpusError(f"{name} is over {settings.max_corpus_mb} MB (GATESCOPE_MAX_CORPUS_MB)", 413)
        corpus = read_upload(
            path,
            name,
            work,
            entry.net,
            max_bytes=settings.max_corpus_unzipped_mb << 20,
            max_files=settings.max_corpus_files,
            per=per,
            carry=carry,
        )
    except CorpusError as e:
        cleanup()
        raise HTTPException(e.status, str(e)) from None
    except BaseException:
        cleanup()
        raise
    return corpus, cleanup


#: Seconds between two progress lines at most (a line also goes out whenever the build moves, at most
#: PACE apart): a proxy or a browser sees the stream alive.
HEARTBEAT = 10.0
#: Seconds between two progress lines at least.
PACE = 0.2


@router.get(
    "/{model_id}/index/progress",
    responses={**errors(404, 422), 200: {"content": {"application/jsonl": {}}, "description": "a status a line"}},
)
async def index_progress(model_id: str, entry: EntryDep, request: Request) -> StreamingResponse:
    """The index's status as JSON Lines, a line whenever the build moves (at most five a second), until it is
    ready, failed or none."""
    indexes = get_indexes(request)
    loop = asyncio.get_running_loop()
    moved = asyncio.Event()

    def wake() -> None:
        loop.call_soon_threadsafe(moved.set)

    async def lines() -> AsyncIterator[bytes]:
        indexes.subscribe(wake)
        try:
            sent = None
            while True:
                moved.clear()
                st = await run_in_threadpool(indexes.status, model_id)
                key = (st["state"], st["version"])
                if key != sent:
                    yield (json.dumps(st) + "\n").encode()
                    sent = key
                if st["state"] != "building":
                    return
                try:
                    await asyncio.wait_for(moved.wait(), HEARTBEAT)
                except TimeoutError:
                    sent = None  # a heartbeat: the same line again
                await asyncio.sleep(PACE)
        finally:
            indexes.unsubscribe(wake)

    return StreamingResponse(lines(), media_type="application/jsonl", headers={"Cache-Control": "no-store"})


@router.delete(
    "/{model_id}/index", status_code=204, responses=errors(403, 404, 422, 503), dependencies=[Depends(require_uploads)]
)
async def delete_index(model_id: str, entry: EntryDep, request: Request) -> Response:
    """Cancel the model's build under way and remove its index (a bundled model's is built again only when asked:
    POST .../index without a corpus)."""
    try:
        await run_in_threadpool(get_indexes(request).remove, model_id)
    except IndexRefused as e:
        raise HTTPException(e.status, str(e)) from None
    return Response(status_code=204)
