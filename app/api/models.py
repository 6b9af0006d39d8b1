"""GET /api/models and /api/models/{id}: the model cards; POST /api/models uploads a model,
DELETE /api/models/{id} removes an uploaded one."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from fastapi import APIRouter, HTTPException, Request, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from model.formats import SUFFIXES

from ..registry import Entry
from ..schemas import ModelCard, errors
from ..settings import uploads_allowed
from ..uploads import ID, UploadError, slug

router = APIRouter(prefix="/api/models", tags=["models"])


def card_of(name: str, entry: Entry) -> dict[str, Any]:
    net, card = entry.net, entry.card
    return {
        "id": name,
        "cell": net.cell,
        "layers": net.num_layers,
        "hidden_size": net.hidden_size,
        "input": net.input,
        "gates": list(net.gates),
        "vocab": len(net.vocab) if net.vocab else None,
        "input_size": None if net.vocab else net.spec.input_size,
        "head": net.spec.output_size is not None,
        "origin": entry.origin,
        "description": card.get("description", net.spec.meta.get("description", "")),
        "examples": card.get("examples", []),
        "metrics": card.get("heldout") or {},
        "telling_units": card.get("telling_units", {}),
        "command": card.get("command"),
    }


@router.get("", response_model=list[ModelCard])
def list_models(request: Request) -> list[dict[str, Any]]:
    """Every model the server can trace, with its card."""
    reg = request.app.state.registry
    return [card_of(n, reg.get(n)) for n in reg.names()]


@router.get("/{model_id}", response_model=ModelCard, responses=errors(404))
def get_model(model_id: str, request: Request) -> dict[str, Any]:
    """One model's card."""
    entry = request.app.state.registry.get(model_id)
    if entry is None:
        raise HTTPException(404, f"no model {model_id!r}; GET /api/models lists them")
    return card_of(model_id, entry)


def _check_uploads(request: Request) -> None:
    if not uploads_allowed(request.app.state.settings):
        raise HTTPException(
            403, "uploads are switched off on this server (GATESCOPE_UPLOADS=1, or serving on 127.0.0.1, turns them on)"
        )


def _suffix(filename: str) -> str:
    low = filename.lower()
    return ".weights.h5" if low.endswith(".weights.h5") else Path(low).suffix


UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {
                            "type": "string",
                            "format": "binary",
                            "description": "a weight file: " + ", ".join(SUFFIXES),
                        },
                        "vocab": {
                            "type": "string",
                            "format": "binary",
                            "description": "optional JSON vocabulary (a token list, or {tokens, tokenizer, unk}): "
                            "makes it a text model",
                        },
                        "name": {"type": "string", "description": "optional model id (default: from the file name)"},
                    },
                }
            }
        },
    }
}


@router.post(
    "",
    response_model=ModelCard,
    status_code=201,
    openapi_extra=UPLOAD_BODY,
    responses=errors(400, 403, 409, 411, 413, 415, 422),
)
async def upload_model(request: Request) -> dict[str, Any]:
    """Add a model from a weight file (PyTorch, Keras, ONNX or gatescope's own); it is kept across restarts."""
    _check_uploads(request)
    settings, registry, store = request.app.state.settings, request.app.state.registry, request.app.state.store
    limit = settings.max_upload_mb << 20
    size = request.headers.get("content-length")
    if size is None or not size.isdigit():
        raise HTTPException(411, "send the upload with a Content-Length header")
    if int(size) > limit + (1 << 20):  # the form's own bytes aside
        raise HTTPException(
            413,
            f"the upload is {int(size) / 2**20:.0f} MB; this server takes at most {settings.max_upload_mb} MB",
        )
    try:
        form = await request.form(max_files=2, max_fields=4)
    except Exception as e:  # starlette raises its own errors for a malformed form
        raise HTTPException(400, f"the upload is not a valid multipart form ({e})") from None
    file, vocab, name = form.get("file"), form.get("vocab"), form.get("name")
    if not isinstance(file, UploadFile) or not file.filename:
        raise HTTPException(422, "send the weight file in the form field 'file'")
    suffix = _suffix(file.filename)
    if suffix not in SUFFIXES and suffix != ".weights.h5":
        raise HTTPException(
            415,
            f"{file.filename}: gatescope reads {', '.join(SUFFIXES)} files, not {suffix or 'files without a suffix'}",
        )
    if vocab is not None and not isinstance(vocab, UploadFile):
        raise HTTPException(422, "send the vocabulary as a JSON file in the form field 'vocab'")
    if name is not None and not isinstance(name, str):
        raise HTTPException(422, "the form field 'name' must be text")
    if name:
        model_id = name if ID.fullmatch(name) else ""
        if not model_id:
            raise HTTPException(
                422,
                f"name {name!r} is not usable: use 1–64 of a–z, 0–9, '.', '_', '-', starting with a letter or digit",
            )
        if registry.get(model_id) is not None:
            raise HTTPException(409, f"a model named {model_id!r} exists already; choose another name")
    else:
        base = slug(file.filename[: -len(suffix)] if suffix else file.filename)
        model_id, n = base, 2
        while registry.get(model_id) is not None or (store.root / model_id).exists():
            model_id, n = f"{base}-{n}", n + 1
    with tempfile.TemporaryDirectory(prefix="gatescope-upload-") as tmp:
        src = Path(tmp) / (slug(file.filename[: len(file.filename) - len(suffix)]) + suffix)  # named as sent
        with open(src, "wb") as out:
            shutil.copyfileobj(file.file, out)
        if src.stat().st_size > limit:
            raise HTTPException(413, f"the file is over {settings.max_upload_mb} MB")
        voc = None
        if isinstance(vocab, UploadFile):
            voc = Path(tmp) / "vocab.json"
            with open(voc, "wb") as out:
                shutil.copyfileobj(vocab.file, out)
        try:
            net, card = await run_in_threadpool(store.add, model_id, src, file.filename, voc, settings.import_timeout)
        except UploadError as e:
            raise HTTPException(e.status, str(e)) from None
    entry = Entry(net, card, "uploaded")
    registry.add(model_id, entry)
    return card_of(model_id, entry)


@router.delete("/{model_id}", status_code=204, responses=errors(403, 404))
def delete_model(model_id: str, request: Request) -> Response:
    """Remove an uploaded model (bundled models stay)."""
    _check_uploads(request)
    registry = request.app.state.registry
    entry = registry.get(model_id)
    if entry is None:
        raise HTTPException(404, f"no model {model_id!r}; GET /api/models lists them")
    if entry.origin != "uploaded":
        raise HTTPException(403, f"{model_id!r} is a bundled model: only uploaded models can be deleted")
    registry.remove(model_id)
    request.app.state.store.remove(model_id)
    return Response(status_code=204)
