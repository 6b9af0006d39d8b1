"""Rows of the index's sharded Zarr arrays, read straight from their files: one positional read an inner chunk,
in the caller's thread.

index.py writes every large array of an index (store.py) through Zarr as uncompressed shards of inner chunks
(the Zarr v3 sharding codec). Zarr reads an inner chunk through its asyncio loop with a thread hop per file
read: ~1 ms of hand-offs each, and on a loaded 2-core machine every hand-off waits for a core (a dashboard's 50
snippets took 200-470 ms through Zarr at load 11, 15-28 ms here). For an array in a local folder with exactly
that layout, ``Rows`` reads what the sharding spec defines itself (zarr-specs, "sharding_indexed"):

    shard file c/<s>[/0]   the inner chunks' bytes, then the shard index: (n, 2) little-endian uint64
                           (offset, nbytes) per inner chunk in C order, 2**64 - 1 twice for an absent one
                           (all fill value), then its 4-byte CRC32C (index_location "end")
    an inner chunk         (inner rows, *row shape) raw little-endian values, C order, full size at the edge

reading each shard's index once, then each inner chunk with one pread (straight into the result when it is
wholly inside the rows asked for). Any other array (an object store, compression, another layout) is read by
Zarr itself: the same values.
"""

from __future__ import annotations

import mmap
import os
from typing import Any

import numpy as np

EMPTY = np.uint64(2**64 - 1)  # an absent inner chunk's offset and size


class Rows:
    """Rows of one Zarr array (rows are its first axis): ``read(a, b)``, ``take(rows, col)``."""

    def __init__(self, array: Any) -> None:
        self.array = array
        self.shape: tuple[int, ...] = tuple(array.shape)
        self.dtype = np.dtype(array.dtype)
        self._direct = _layout(array)  # (folder, shard rows, inner rows) or None: read by Zarr
        self._index: dict[int, np.ndarray | None] = {}  # shard -> its (n, 2) index, None when its file is absent

    @property
    def direct(self) -> bool:
        """Whether rows are read from the files here (else through Zarr)."""
        return self._direct is not None

    def read(self, a: int, b: int) -> np.ndarray:
        """Rows a..b-1, (b-a, *row shape) in the stored dtype."""
        if self._direct is None:
            return np.asarray(self.array[a:b])
        inner = self._direct[2]
        out = np.empty((b - a, *self.shape[1:]), self.dtype)
        for c in range(a // inner, -(-b // inner)):
            c0, c1 = c * inner, (c + 1) * inner
            lo, hi = max(a, c0), min(b, c1)
            if lo == c0 and hi == c1 and self._into(c, out[lo - a : hi - a]):
                continue
            out[lo - a : hi - a] = self._chunk(c)[lo - c0 : hi - c0]
        return out

    def view(self, a: int, b: int) -> np.ndarray:
        """Rows a..b-1 as ``read`` gives them, but without a copy where they can be: when they lie in one shard
        whose inner chunks sit in order in its file, a read-only array over the file mapped into memory (the page
        cache's own pages: a whole-store pass reads each value once, from there)."""
        if self._direct is None:
            return self.read(a, b)
        _, shard_rows, inner = self._direct
        s = a // shard_rows
        if b <= a or (b - 1) // shard_rows != s:
            return self.read(a, b)
        idx = self._shard_index(s)
        c0, c1 = (a - s * shard_rows) // inner, -(-(b - s * shard_rows) // inner)  # inner chunks, in the shard
        if idx is None:
            return self.read(a, b)
        size = self._size()
        want = idx[c0, 0] + np.arange(c1 - c0, dtype=np.uint64) * np.uint64(size)  # (n,) offsets if in order
        if (idx[c0:c1, 0] != want).any() or (idx[c0:c1, 1] != size).any():
            return self.read(a, b)  # absent (fill) or out of order: read chunk by chunk
        with open(self._path(s), "rb") as f:
            mapped = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        rows = (c1 - c0) * inner
        data = np.frombuffer(mapped, self.dtype, rows * (size // inner // self.dtype.itemsize), int(idx[c0, 0]))
        first = a - s * shard_rows - c0 * inner
        return data.reshape(rows, *self.shape[1:])[first : first + b - a]

    def take(self, rows: np.ndarray, col: int | None = None) -> np.ndarray:
        """The rows at sorted indices ``rows`` ((n, *row shape)), or their column ``col`` ((n,))."""
        rows = np.asarray(rows, np.int64)
        if self._direct is None:
            got = self.array.oindex[rows] if col is None else self.array.oindex[rows, col]
            return np.asarray(got)
        inner = self._direct[2]
        out = np.empty((len(rows), *(self.shape[1:] if col is None else ())), self.dtype)
        chunks = rows // inner  # (n,) sorted
        cuts = np.flatnonzero(np.diff(chunks)) + 1
        for i, j in zip([0, *cuts.tolist()], [*cuts.tolist(), len(rows)]):
            c = int(chunks[i])
            data = self._chunk(c)  # (inner, *row shape)
            at = rows[i:j] - c * inner
            out[i:j] = data[at] if col is None else data[at, col]
        return out

    # ---- the files

    def _path(self, shard: int) -> str:
        key = self.array.metadata.encode_chunk_key((shard, *([0] * (len(self.shape) - 1))))
        return os.path.join(self._direct[0], key)  # type: ignore[index]

    def _shard_index(self, shard: int) -> np.ndarray | None:
        if shard not in self._index:
            assert self._direct is not None
            n = self._direct[1] // self._direct[2]
            try:
                fd = os.open(self._path(shard), os.O_RDONLY)
            except FileNotFoundError:
                self._index[shard] = None  # every inner chunk of the shard is fill
                return None
            try:
                size = os.fstat(fd).st_size
                raw = os.pread(fd, 16 * n, size - 16 * n - 4)
            finally:
                os.close(fd)
            self._index[shard] = np.frombuffer(raw, "<u8").reshape(n, 2)
        return self._index[shard]

    def _where(self, c: int) -> tuple[str, int, int] | None:
        """(file, offset, nbytes) of inner chunk ``c``, None when it is absent (fill)."""
        assert self._direct is not None
        per = self._direct[1] // self._direct[2]
        idx = self._shard_index(c // per)
        if idx is None or idx[c % per, 0] == EMPTY:
            return None
        return self._path(c // per), int(idx[c % per, 0]), int(idx[c % per, 1])

    def _size(self) -> int:
        assert self._direct is not None
        return self._direct[2] * int(np.prod(self.shape[1:], dtype=np.int64)) * self.dtype.itemsize

    def _chunk(self, c: int) -> np.ndarray:
        """Inner chunk ``c`` whole: (inner rows, *row shape)."""
        assert self._direct is not None
        inner = self._direct[2]
        where = self._where(c)
        if where is None:
            return np.zeros((inner, *self.shape[1:]), self.dtype)
        path, off, nbytes = where
        if nbytes != self._size():  # not the layout read here after all: Zarr reads it
            got = np.zeros((inner, *self.shape[1:]), self.dtype)
            part = np.asarray(self.array[c * inner : (c + 1) * inner])
            got[: len(part)] = part
            return got
        fd = os.open(path, os.O_RDONLY)
        try:
            raw = os.pread(fd, nbytes, off)
        finally:
            os.close(fd)
        return np.frombuffer(raw, self.dtype).reshape(inner, *self.shape[1:])

    def _into(self, c: int, out: np.ndarray) -> bool:
        """Inner chunk ``c`` read straight into ``out`` (its rows, C-contiguous); False when it cannot be."""
        where = self._where(c)
        if where is None:
            out[...] = 0
            return True
        path, off, nbytes = where
        if nbytes != self._size() or not out.flags.c_contiguous or not hasattr(os, "preadv"):
            return False
        fd = os.open(path, os.O_RDONLY)
        try:
            got = os.preadv(fd, [memoryview(out).cast("B")], off)  # type: ignore[arg-type]  # an ndarray is a buffer
        finally:
            os.close(fd)
        return got == nbytes


def _layout(array: Any) -> tuple[str, int, int] | None:
    """(the array's folder, shard rows, inner rows) when it is laid out as this module reads, else None."""
    try:
        from zarr.codecs import BytesCodec, Crc32cCodec, ShardingCodec
        from zarr.storage import LocalStore

        store, meta = array.store_path.store, array.metadata
        (sharding,) = meta.codecs
        shard, inner = tuple(meta.chunk_grid.chunk_shape), tuple(sharding.chunk_shape)
    except (ImportError, AttributeError, ValueError, TypeError):
        return None
    little = np.dtype(array.dtype).byteorder in ("<", "=", "|") and np.little_endian
    ok = (
        isinstance(store, LocalStore)
        and isinstance(sharding, ShardingCodec)
        and str(getattr(sharding.index_location, "value", sharding.index_location)) == "end"
        and len(sharding.codecs) == 1
        and isinstance(sharding.codecs[0], BytesCodec)
        and str(getattr(sharding.codecs[0].endian, "value", "")) == "little"
        and len(sharding.index_codecs) == 2
        and isinstance(sharding.index_codecs[0], BytesCodec)
        and str(getattr(sharding.index_codecs[0].endian, "value", "")) == "little"
        and isinstance(sharding.index_codecs[1], Crc32cCodec)
        and shard[1:] == inner[1:] == tuple(array.shape[1:])
        and shard[0] % inner[0] == 0
        and little
        and float(np.asarray(meta.fill_value, np.float64)) == 0.0
    )
    if not ok or not hasattr(os, "pread"):  # pread: POSIX (gatescope's server needs Linux or macOS anyway)
        return None
    return os.path.join(str(store.root), array.path), int(shard[0]), int(inner[0])
