"""A part's activations held on disk while it is traced, then read back a block at a time.

The index traces a part's runs together, as many at once as the batch holds (model/analysis/index.py): each round
writes a piece of every running run, at that run's own rows of the part. Kept in memory, the part's rows bound how
many runs a part can hold, and so how wide the batches are (a part of 64 MB held ~5 documents of Python source: the
batches were ~2 wide). Here each recorded layer and gate is a temporary file of the part's float16 rows, written
with ``os.pwrite`` at the piece's row (the page cache holds it, not the process: its RSS does not grow with the
part), and read back in order, a block of rows at a time, to be stored and summed up.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from typing import Any

import numpy as np

f16 = np.float16


class Spill:
    """Temporary files of ``rows`` float16 rows each, one per key (e.g. "0/h"), deleted on close."""

    def __init__(self, rows: int, folder: str | None = None) -> None:
        self.rows = rows
        self._folder = folder
        self._files: dict[str, tuple[Any, int]] = {}  # key -> (file, width)

    def __enter__(self) -> Spill:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        for f, _ in self._files.values():
            f.close()
        self._files.clear()

    def keys(self) -> list[str]:
        """The keys written so far, in the order of their first write."""
        return list(self._files)

    def width(self, key: str) -> int:
        return self._files[key][1]

    def write(self, key: str, row: int, values: np.ndarray) -> None:
        """Rows row .. row + len(values) - 1 of ``key`` (values (n, W), rounded to float16)."""
        if key not in self._files:
            f = tempfile.TemporaryFile(prefix="gatescope-part-", dir=self._folder)
            self._files[key] = (f, values.shape[1])
        f, W = self._files[key]
        assert values.shape[1] == W and 0 <= row and row + len(values) <= self.rows
        from ..kernels import to_half  # numba: paid by the process that traces anyway, not at import

        data = values if values.dtype == f16 else to_half(values)  # float32: rounded compiled, as astype would
        data = np.ascontiguousarray(data)
        os.pwrite(f.fileno(), data.data.cast("B"), row * W * 2)  # contiguous: its bytes as they lie

    def blocks(self, key: str, rows: int) -> Iterator[tuple[int, np.ndarray]]:
        """The rows of ``key`` in order, ``rows`` at a time: (first row, (n, W) float16)."""
        f, W = self._files[key]
        for r0 in range(0, self.rows, rows):
            n = min(rows, self.rows - r0)
            got = os.pread(f.fileno(), n * W * 2, r0 * W * 2)
            assert len(got) == n * W * 2, f"{key}: rows {r0}..{r0 + n} were never written"
            yield r0, np.frombuffer(got, f16).reshape(n, W)
