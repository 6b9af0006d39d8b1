"""GET /api/models and /api/models/{id}: the model cards; POST /api/models uploads a model,
DELETE /api/models/{id} removes an uploaded one."""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from model.formats import SUFFIXES
from model.heads import AT, KINDS

from ..encoding import output_of
from ..indexes import IndexRefused
from ..registry import Entry, Registry
from ..schemas import ERRORS, ModelCard, ModuleChoice, errors
from ..settings import Settings
from ..uploads import ID, Store, UploadError, slug
from ..work import ClientGone, watch_disconnect
from .deps import (
    EntryDep,
    IndexesDep,
    RegistryDep,
    SettingsDep,
    StoreDep,
    WorkDep,
    check_input,
    no_model,
    require_uploads,
)
from .index import prepare
from .story import lesson_of

log = logging.getLogger("gatescope")
router = APIRouter(prefix="/api/models", tags=["models"])


def card_of(name: str, entry: Entry, saved: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """A model's card; ``saved``: the units saved for it (app/known.py), listed under telling_units["saved"]."""
    if entry.problem is not None and entry.net is None:
        return {"id": name, "origin": entry.origin, "available": False, "problem": entry.problem}
    net, card = entry.net, entry.card if entry.problem is None else {}
    taught = lesson_of(name, entry) or {}  # a bundled model's description and examples, measured on it
    return {
        "available": entry.problem is None,
        "problem": entry.problem,
        "id": name,
        "cell": net.cell,
        "layers": net.num_layers,
        "hidden_size": net.hidden_size,
        "direction": net.direction,
        "directions": list(net.spec.directions),
        "units": net.width,  # the gates' width (a projected h has proj_size)
        "proj_size": net.spec.proj_size,
        "input": net.input,
        "gates": list(net.gates),
        "vocab": len(net.vocab) if net.vocab else None,
        **(net.tokenizer.describe() if net.tokenizer is not None else {}),
        "input_size": None if net.vocab else net.spec.input_size,
        "head": net.head is not None,
        "output": output_of(net.head),
        "origin": entry.origin,
        "description": taught.get("description") or card.get("description", net.spec.meta.get("description", "")),
        "examples": taught.get("examples") or card.get("examples", []),
        "metrics": card.get("heldout") or {},
        "telling_units": card.get("telling_units", {}) | ({"saved": saved} if saved else {}),
        "command": card.get("command"),
    }


@router.get("", response_model=list[ModelCard])
def list_models(registry: RegistryDep, request: Request) -> list[dict[str, Any]]:
    """Every model the server can trace, with its card."""
    known = request.app.state.known
    return [card_of(n, entry, known.saved(n, entry.origin)) for n, entry in registry.entries()]


@router.get("/{model_id}", response_model=ModelCard, responses=errors(404))
def get_model(model_id: str, entry: EntryDep, request: Request) -> dict[str, Any]:
    """One model's card."""
    return card_of(model_id, entry, request.app.state.known.saved(model_id, entry.origin))


class ReadsRequest(BaseModel):
    """A text to try on a model's tokenizer."""

    text: str = Field(description="the text the page holds")


@router.post("/{model_id}/reads", responses=errors(400, 403, 404, 411, 413, 422))
def check_text(model_id: str, body: ReadsRequest, entry: EntryDep, settings: SettingsDep) -> dict[str, Any]:
    """Whether the model can read a text (every token in its vocabulary, within the server's limit): the page keeps
    the text on a model switch when it can, and asks first when not ("why" says what it cannot read)."""
    if entry.problem is not None:
        return {"reads": False, "why": f"model {model_id!r} is unavailable: {entry.problem}"}
    try:
        check_input(model_id, entry, body.text, None, settings)
    except HTTPException as e:
        if e.status_code not in (413, 422):
            raise
        return {"reads": False, "why": e.detail}
    return {"reads": True, "why": None}


def _suffix(filename: str) -> str:
    low = filename.lower()
    return ".weights.h5" if low.endswith(".weights.h5") else Path(low).suffix


#: The most characters the form field 'labels' may hold (it travels to the converter on its command line).
MAX_LABELS_CHARS = 8192  # as ASCII JSON at most 12 bytes each: under Linux's 128 KB for one argument

UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "additionalProperties": False,  # the server reads at most these fields
                    "properties": {
                        "file": {
                            "type": "string",
                            "format": "binary",
                            "description": "a weight file: " + ", ".join(SUFFIXES),
                        },
                        "vocab": {
                            "type": "string",
                            "format": "binary",
                            "description": "optional vocabulary: a JSON token list, {token: id}, {tokens, "
                            "tokenizer, unk, lowercase, split_punct, strip_punct, eol}, or a Hugging Face "
                            "tokenizer.json: makes it a text model",
                        },
                        "name": {"type": "string", "description": "optional model id (default: from the file name)"},
                        "head": {
                            "type": "string",
                            "enum": list(KINDS),
                            "description": "what the output means, over what the file says and what gatescope "
                            "infers: next (the next token), classes, values (regression)",
                        },
                        "head_at": {
                            "type": "string",
                            "enum": list(AT),
                            "description": "which steps' predictions count: every (default), or only the last",
                        },
                        "labels": {
                            "type": "string",
                            "maxLength": MAX_LABELS_CHARS,
                            "description": "a name per output: a JSON list, or one label a line",
                        },
                        "module": {
                            "type": "string",
                            "description": "which recurrent module to read, of a PyTorch file that holds several "
                            "(e.g. 'encoder.lstm'); without it such a file answers 422 listing 'modules'",
                        },
                        "corpus": {
                            "type": "string",
                            "format": "binary",
                            "description": "optional corpus to index once the model is accepted (as POST "
                            "/api/models/{id}/index takes it; follow GET /api/models/{id}/index)",
                        },
                    },
                }
            }
        },
    }
}


@dataclass
class Upload:
    """A checked upload form: the weight file, its vocabulary, and the ids it may have (the name asked
    for alone, or the file's name and then -2, -3 ...: the first still free when it is stored)."""

    file: UploadFile
    vocab: UploadFile | None
    ids: Iterable[str]
    heads: dict[str, Any] | None = None  # head / head_at / labels from the form
    module: str | None = None


@router.post(
    "",
    response_model=ModelCard,
    status_code=201,
    openapi_extra=UPLOAD_BODY,
    responses=errors(400, 403, 409, 411, 413, 415, 503, 507)
    | {422: {"model": ModuleChoice, "description": ERRORS[422]}},
    dependencies=[Depends(require_uploads)],
)
async def upload_model(
    request: Request, settings: SettingsDep, registry: RegistryDep, store: StoreDep, work: WorkDep, indexes: IndexesDep
) -> dict[str, Any]:
    """Add a model from a weight file (PyTorch, Keras, ONNX or gatescope's own); it is kept across restarts. With a
    corpus, its index is built once the model is accepted."""
    _check_size(request, settings)
    _check_room(settings, store)
    try:
        form = await request.form(max_files=3, max_fields=9)  # on the event loop: starlette spools it to disk
    except Exception as e:  # starlette raises its own errors for a malformed form
        raise HTTPException(400, f"the upload is not a valid multipart form ({e})") from None
    upload = _read_form(form, registry, store)
    # Copying up to GATESCOPE_MAX_UPLOAD_MB and converting it: in a thread, so other clients are served meanwhile,
    # and stopped (the converter killed, nothing stored) if the client leaves before it is done
    gone, watcher = watch_disconnect(request.receive)
    try:
        job = await work.admit(gone, 0, "an upload", computes=False)  # the converter is a process: no lane
        try:
            room = work.budget.limit // 2  # a model may take at most half of what is left: traces need the rest
            model_id, entry = await job.run(_import, upload, settings, store, registry, stop=job.stopped, room=room)
        finally:
            job.close()
    except ChooseModule as e:  # the file holds several recurrent modules: the page offers them
        return JSONResponse({"detail": str(e), "modules": e.modules}, status_code=422)  # type: ignore[return-value]
    except ClientGone:
        return Response(status_code=499)  # type: ignore[return-value]  # nobody reads it: the client has gone
    finally:
        watcher.cancel()
    corpus = form.get("corpus")
    if corpus is not None:
        await _index_on_upload(model_id, entry, corpus, settings, indexes)
    return card_of(model_id, entry)


async def _index_on_upload(model_id: str, entry: Entry, corpus: Any, settings: Settings, indexes: Any) -> None:
    """Start indexing the corpus sent with a model: the model is kept whatever the corpus, and a corpus that
    cannot be indexed is the index's failure (GET /api/models/{id}/index says why)."""
    name = corpus.filename if isinstance(corpus, UploadFile) and corpus.filename else "corpus"
    try:
        prepared, cleanup = await run_in_threadpool(prepare, corpus, entry, settings, "file", False)
    except HTTPException as e:
        indexes.refuse(model_id, name, str(e.detail))
        return
    try:
        indexes.start(model_id, prepared, cleanup=cleanup)
    except IndexRefused as e:
        cleanup()
        indexes.refuse(model_id, name, str(e))


def _check_size(request: Request, settings: Settings) -> None:
    """411 without a Content-Length, 413 over the limit: before a byte of the form is read."""
    size = request.headers.get("content-length")
    if size is None or not size.isdigit():
        raise HTTPException(411, "send the upload with a Content-Length header")
    if int(size) > (settings.max_upload_mb << 20) + (1 << 20):  # the form's own bytes aside (a corpus sent along too)
        raise HTTPException(
            413, f"the upload is {int(size) / 2**20:.0f} MB; this server takes at most {settings.max_upload_mb} MB"
        )


def _check_room(settings: Settings, store: Store) -> None:
    """507 when the models folder holds GATESCOPE_MAX_MODELS models or GATESCOPE_MAX_MODELS_MB already:
    before the form is read (the store checks again as it keeps the model, for uploads in flight)."""
    try:
        store.check_room()
    except UploadError as e:
        raise HTTPException(e.status, str(e)) from None


def _read_form(form: Any, registry: Registry, store: Store) -> Upload:
    """The form's fields, checked (422/415/409), and the new model's id."""
    file, vocab, name, module = form.get("file"), form.get("vocab"), form.get("name"), form.get("module")
    if not isinstance(file, UploadFile) or not file.filename:
        raise HTTPException(422, "send the weight file in the form field 'file'")
    if Path(file.filename.lower()).suffix not in SUFFIXES:
        suffix = Path(file.filename).suffix
        raise HTTPException(
            415,
            f"{file.filename}: gatescope reads {', '.join(SUFFIXES)} files, not {suffix or 'files without a suffix'}",
        )
    if vocab is not None and not isinstance(vocab, UploadFile):
        raise HTTPException(422, "send the vocabulary (JSON, or a tokenizer.json) as a file in the form field 'vocab'")
    if name is not None and not isinstance(name, str):
        raise HTTPException(422, "the form field 'name' must be text")
    if module is not None and (not isinstance(module, str) or len(module) > 200):
        raise HTTPException(422, "the form field 'module' must be a module name (text, at most 200 characters)")
    heads = _read_heads(form)
    return Upload(file, vocab, _model_ids(name, file.filename, registry, store), heads, module or None)


def _read_heads(form: Any) -> dict[str, Any]:
    """The form's head, head_at and labels, each checked (422 naming the field and what it takes)."""
    out: dict[str, Any] = {}
    for key, allowed in (("head", KINDS), ("head_at", AT)):
        value = form.get(key)
        if value is None or value == "":
            continue
        if not isinstance(value, str) or value not in allowed:
            shown = repr(value) if isinstance(value, str) else "a file"
            raise HTTPException(422, f"the form field {key!r} takes {' or '.join(allowed)}, not {shown}")
        out[key] = value
    raw = form.get("labels")
    if raw is not None and raw != "":
        if not isinstance(raw, str):
            raise HTTPException(422, "send the form field 'labels' as text: a JSON list, or one label a line")
        if len(raw) > MAX_LABELS_CHARS:
            raise HTTPException(422, f"the form field 'labels' holds more than {MAX_LABELS_CHARS} characters")
        out["labels"] = _parse_labels(raw)
    return out


def _parse_labels(raw: str) -> list[str]:
    """A JSON list of names, or one name a line (blank lines skipped)."""
    if raw.lstrip().startswith("["):
        try:
            labels = json.loads(raw)
        except json.JSONDecodeError as e:
            raise HTTPException(422, f"the form field 'labels' starts like a JSON list but is not JSON ({e})") from None
        if not isinstance(labels, list) or not all(isinstance(s, str) for s in labels):
            raise HTTPException(422, "the form field 'labels' must be a JSON list of names (strings)")
        return labels
    return [line.strip() for line in raw.splitlines() if line.strip()]


def _model_ids(name: str | None, filename: str, registry: Registry, store: Store) -> Iterable[str]:
    """The name asked for (422 if unusable, 409 if taken), or the ids made from the file name that are
    free, in turn: another worker may store one of them first."""
    if name:
        if not ID.fullmatch(name):
            raise HTTPException(
                422,
                f"name {name!r} is not usable: use 1–64 of a–z, 0–9, '.', '_', '-', starting with a letter or digit",
            )
        if registry.get(name) is not None:
            raise HTTPException(409, f"a model named {name!r} exists already; choose another name")
        return [name]
    suffix = _suffix(filename)
    return _free_ids(slug(filename[: -len(suffix)])[:56], registry, store)  # room for "-2", "-3" ...: within 64


def _free_ids(base: str, registry: Registry, store: Store) -> Iterator[str]:
    """``base``, ``base-2``, ``base-3`` ..., skipping the names a model (or anything else) holds."""
    model_id, n = base, 2
    while True:
        if registry.get(model_id) is None and not (store.root / model_id).exists():
            yield model_id
        model_id, n = f"{base}-{n}", n + 1


def _import(
    upload: Upload, settings: Settings, store: Store, registry: Registry, stop: Any = None, room: int | None = None
) -> tuple[str, Entry]:
    """Copy the upload to a staging folder, convert it (in a child process, ``Store.add``) and list it."""
    file, suffix = upload.file, _suffix(upload.file.filename or "")
    with tempfile.TemporaryDirectory(prefix="gatescope-upload-") as tmp:
        src = Path(tmp) / (slug((file.filename or "")[: -len(suffix)]) + suffix)  # named as sent
        with open(src, "wb") as out:
            shutil.copyfileobj(file.file, out)
        if src.stat().st_size > settings.max_upload_mb << 20:
            raise HTTPException(413, f"the file is over {settings.max_upload_mb} MB")
        voc = None
        if upload.vocab is not None:
            voc = Path(tmp) / "vocab.json"
            with open(voc, "wb") as out:
                shutil.copyfileobj(upload.vocab.file, out)
        try:
            most, timeout = settings.max_model_mb, settings.import_timeout
            model_id, net, card = store.add(
                upload.ids, src, file.filename or "", voc, timeout, most, stop, room, upload.heads, upload.module
            )
        except UploadError as e:
            if e.modules:
                raise ChooseModule(str(e), e.modules) from None
            raise HTTPException(e.status, str(e)) from None
    entry = Entry(net, card, "uploaded")
    registry.add(model_id, entry)
    return model_id, entry


class ChooseModule(Exception):
    """The upload holds several recurrent modules and named none: a 422 that lists them."""

    def __init__(self, message: str, modules: list[str]):
        super().__init__(message)
        self.modules = modules


@router.delete("/{model_id}", status_code=204, responses=errors(403, 404, 503), dependencies=[Depends(require_uploads)])
def delete_model(
    model_id: str, entry: EntryDep, registry: RegistryDep, store: StoreDep, indexes: IndexesDep
) -> Response:
    """Remove an uploaded model and its index (bundled models stay)."""
    if entry.origin != "uploaded":
        raise HTTPException(403, f"{model_id!r} is a bundled model: only uploaded models can be deleted")
    try:
        removed = store.remove(model_id)  # first: a model that cannot be removed from disk stays listed
    except UploadError as e:
        raise HTTPException(e.status, str(e)) from None
    registry.remove(model_id)
    try:
        indexes.remove(model_id)  # its build stopped, its index removed
    except IndexRefused as e:  # the model is gone; its build stops on its own and its files stay until asked
        log.warning("gatescope: %s", e)
    if not removed:  # another worker deleted it a moment ago
        raise no_model(model_id)
    return Response(status_code=204)
