"""Request and response shapes of the API."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class ModelCard(BaseModel):
    id: str
    cell: str
    layers: int
    hidden_size: int
    input: str = Field(description='"text" or "vectors"')
    gates: list[str] = Field(description="gate keys in diagram order")
    vocab: int | None = Field(description="vocabulary size, for text models")
    input_size: int | None = Field(default=None, description="size of each input vector, for vector models")
    head: bool = Field(default=False, description="whether the model predicts the next token (probs in traces)")
    origin: str = Field(default="bundled", description='"bundled" or "uploaded" (only uploaded models can be deleted)')
    description: str = ""
    examples: list[str] = []
    metrics: dict[str, Any] = {}
    telling_units: dict[str, Any] = {}
    command: str | None = None


class TraceRequest(BaseModel):
    model: str = Field(description="a model id from /api/models")
    text: str | None = Field(default=None, description="input text, for text models")
    vectors: list[list[float]] | None = Field(default=None, description="(T, D) input vectors, for vector models")


class Prediction(BaseModel):
    token: str
    p: float


class TraceResponse(BaseModel):
    model: str
    tokens: list[str]
    unknown: list[int] = Field(description="positions whose token was not in the vocabulary")
    layers: list[dict[str, list[list[float]]]] = Field(description="per layer: gate -> T lists of H values")
    probs: list[list[Prediction]] | None = Field(description="top predictions of the next token, per step")


class Detail(BaseModel):
    """A refusal: what was wrong, in words a person can act on."""

    detail: str


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the refusals an endpoint gives (each with a Detail body)."""
    return {code: {"model": Detail, "description": ERRORS[code]} for code in codes}


ERRORS = {
    400: "the upload is not a valid multipart form",
    403: "uploads are switched off on this server, or the model is bundled and cannot be deleted",
    404: "no such model (GET /api/models lists them)",
    409: "a model with that name exists already",
    411: "the upload came without a Content-Length",
    413: "the input has more tokens than GATESCOPE_MAX_TOKENS, or the upload is over GATESCOPE_MAX_UPLOAD_MB",
    415: "the file type is not one gatescope reads",
    422: "empty input, unknown characters (named, with positions), wrong vector shapes or NaN, both or neither of "
    "text and vectors; for an upload: not a weight file, malformed, or a vocabulary that does not fit",
}
