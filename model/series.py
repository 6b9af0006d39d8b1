"""Reading a series: a CSV text or a .npy file into the (T, D) float array a vector model takes.

    x, names = read_csv("co2\\n315.4\\n316.2\\n")     # x (2, 1), names ["co2"]
    x, names = read_npy(Path("walk.npy").read_bytes())  # (T, D) or (T,) -> (T, 1); names None
    x, names = read_series(path_or_bytes, "walk.csv")   # either, by the name's suffix

CSV: a row a step, a column a feature; the delimiter is a comma, a semicolon or a tab (whichever splits
the first row into the most fields, as ``csv.Sniffer`` would guess among those three); a first row with
any field that is not a number is a header and names the features. Blank lines (and a trailing newline)
are skipped; every other row must have as many fields as the first, each a finite number. Row numbers in
messages count the file's lines from 1, as an editor shows them; columns count from 1.

.npy: NumPy's format (``np.load`` with ``allow_pickle=False``: an object array is refused, never
unpickled), a 2-D (T, D) or 1-D (T,) array of real numbers.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from .errors import InputError

#: The delimiters a CSV may use, in the order ties are broken.
DELIMITERS = (",", ";", "\t")

#: The .npy magic string: the first six bytes of every NumPy array file.
NPY_MAGIC = b"\x93NUMPY"


def _number(field: str) -> float | None:
    """``field`` as a float, or None when it does not read as a number."""
    try:
        return float(field)
    except ValueError:
        return None


def _delimiter(line: str) -> str:
    """The delimiter that splits ``line`` into the most fields (a comma when none does)."""
    return max(DELIMITERS, key=lambda d: line.count(d))


def read_csv(text: str) -> tuple[np.ndarray, list[str] | None]:
    """A CSV text as a (T, D) float64 array and its header's names (None without a header)."""
    lines = [(n, line.strip()) for n, line in enumerate(text.splitlines(), start=1)]
    lines = [(n, line) for n, line in lines if line]
    if not lines:
        raise InputError("the CSV is empty: give a row of numbers a step, a column a feature")
    sep = _delimiter(lines[0][1])
    names = None
    first = [f.strip() for f in lines[0][1].split(sep)]
    if any(_number(f) is None for f in first):
        names = [f.strip('"') for f in first]
        lines = lines[1:]
        if not lines:
            raise InputError(f"the CSV has a header ({', '.join(names)}) but no rows of numbers")
    D = len(names) if names is not None else len(first)
    rows = np.empty((len(lines), D), np.float64)  # (T, D)
    for k, (n, line) in enumerate(lines):
        fields = line.split(sep)
        if len(fields) != D:
            raise InputError(f"row {n} has {len(fields)} values, the first row {D} (delimiter {sep!r})")
        for j, f in enumerate(fields):
            v = _number(f.strip())
            if v is None:
                raise InputError(f"row {n}, column {j + 1}: {f.strip()!r} is not a number")
            if not np.isfinite(v):
                raise InputError(f"row {n}, column {j + 1}: {f.strip()!r} is not a finite number")
            rows[k, j] = v
    return rows, names


def read_npy(data: bytes) -> tuple[np.ndarray, None]:
    """A .npy file's bytes as a (T, D) float64 array (a 1-D array is one feature)."""
    if not data.startswith(NPY_MAGIC):
        raise InputError("not a .npy file: it does not start with NumPy's magic string (save it with np.save)")
    try:
        a = np.load(io.BytesIO(data), allow_pickle=False)
    except ValueError as e:  # object arrays (pickles), a malformed header, a truncated file
        raise InputError(f"the .npy file does not read as an array of numbers: {e}") from None
    if not isinstance(a, np.ndarray) or not (np.issubdtype(a.dtype, np.floating) or np.issubdtype(a.dtype, np.integer)):
        raise InputError(f"the .npy file holds {a.dtype} values, not real numbers")
    if a.ndim == 1:
        a = a[:, None]  # (T, 1)
    if a.ndim != 2:
        raise InputError(f"the .npy array has shape {a.shape}: give a (T, D) array (a row a step) or a (T,) one")
    if a.shape[0] == 0 or a.shape[1] == 0:
        raise InputError(f"the .npy array has shape {a.shape}: nothing to trace")
    x = a.astype(np.float64)
    if not np.isfinite(x).all():
        t, d = np.argwhere(~np.isfinite(x))[0]
        raise InputError(f"the .npy array holds {x[t, d]} at step {t}, feature {d}: only finite numbers trace")
    return x, None


def read_series(source: str | Path | bytes, name: str | None = None) -> tuple[np.ndarray, list[str] | None]:
    """A series from a path, or from a file's bytes and its ``name``: .npy by its magic, else CSV text."""
    if isinstance(source, (str, Path)):
        path = Path(source)
        name, data = path.name, path.read_bytes()
    else:
        data = source
    if data.startswith(NPY_MAGIC):
        return read_npy(data)
    if name is not None and name.lower().endswith(".npy"):
        return read_npy(data)  # refuses it, saying why
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise InputError(f"{name or 'the series'} is neither a .npy file nor UTF-8 CSV text ({e.reason})") from None
    return read_csv(text)


def to_csv(x: np.ndarray, names: list[str] | None = None) -> str:
    """A (T, D) series as CSV text that ``read_csv`` reads back exactly (each value's shortest repr)."""
    head = ",".join(names) + "\n" if names else ""
    return head + "".join(",".join(repr(float(v)) for v in row) + "\n" for row in np.asarray(x, np.float64))
