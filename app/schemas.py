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
