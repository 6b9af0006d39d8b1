"""POST /api/series: a series file (.csv or .npy) read by the server into the CSV text the page edits
(the page never parses a file itself; model/series.py does)."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

import model
from model.series import read_series, to_csv

from ..schemas import errors

router = APIRouter(prefix="/api", tags=["series"])


class SeriesResponse(BaseModel):
    """A series as the server read it."""

    csv: str = Field(description="the series as CSV text: a row a step, a column a feature (header: the names)")
    steps: int = Field(description="rows T")
    features: int = Field(description="columns D")
    names: list[str] | None = Field(description="the CSV header's feature names, or null without one")


def _read(data: bytes, name: str) -> SeriesResponse:
    x, names = read_series(data, name)
    return SeriesResponse(csv=to_csv(x, names), steps=x.shape[0], features=x.shape[1], names=names)


@router.post("/series", response_model=SeriesResponse, responses=errors(403, 411, 413, 422))
async def read_series_file(request: Request, name: str = "series.csv") -> SeriesResponse:
    """Read a series file sent as the body (.csv: a row a step, a column a feature, header optional; .npy: a
    (T, D) or (T,) array, never unpickled) into CSV text, or say which row, column or value is wrong."""
    data = await request.body()
    if not data:
        raise HTTPException(422, "the body is empty: send a .csv or .npy file's bytes")
    try:
        return await run_in_threadpool(_read, data, name)
    except model.InputError as e:
        raise HTTPException(422, str(e)) from None
