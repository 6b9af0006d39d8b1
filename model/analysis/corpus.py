"""Reading a corpus, one document at a time (never the whole corpus in memory).

    files, kind = resolve(["src/", "notes/*.txt", "extra.jsonl"])   # the files, sorted, with their names
    for doc in documents(files, per="line"): doc.source, doc.line, doc.text

What a corpus can be:
- a file: a text file (UTF-8), a ``.jsonl`` file (a JSON object with a ``text`` field on each line: a document a
  line), or, for vector models, a ``.csv`` / ``.npy`` series (model/series.py reads them; a document a file);
- a folder: every such file under it, recursively, sorted by path (binary files skipped), named relative to it;
- a glob (``data/**/*.py``): the files it matches, sorted;
- a list of texts (``Texts([...])``, or a list of strings none of which names a file) or of (T, D) arrays.

``per="file"``: a document per file; ``per="line"``: a document per line of a text file (its newline not
included; empty lines skipped, line numbers counting them, from 0). Every refusal is an InputError naming the
file and, where there is one, the line.
"""

from __future__ import annotations

import glob
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError

#: Suffixes read as vector series (vector models), and as JSON Lines.
SERIES = (".csv", ".npy")
JSONL = (".jsonl",)
#: Bytes read to tell a text file from a binary one (a NUL among them: binary).
SNIFF = 8192


class Texts(list):  # type: ignore[type-arg]
    """A list of texts that are documents, never file names."""


@dataclass
class File:
    """A corpus file: where it is, and the name the index records for it."""

    path: Path
    name: str


@dataclass
class Doc:
    """One document: its file (an index into the corpus's sources), its line, and its text or (T, D) array."""

    source: int
    line: int
    text: str | None = None
    array: np.ndarray | None = None

    @property
    def size(self) -> int:
        """Characters (text) or steps (vectors)."""
        return len(self.text) if self.text is not None else len(self.array) if self.array is not None else 0


def _is_binary(path: Path) -> bool:
    with path.open("rb") as f:
        return b"\x00" in f.read(SNIFF)


def _glob_chars(s: str) -> bool:
    return any(c in s for c in "*?[")


def _expand(item: str | Path, vectors: bool) -> list[File]:
    """The files one corpus argument names, sorted; InputError when it names none."""
    path = Path(item)
    if path.is_dir():
        files = []
        for p in sorted(q for q in path.rglob("*") if q.is_file()):
            if vectors and p.suffix.lower() not in SERIES:
                continue
            if not vectors and (p.suffix.lower() in SERIES or _is_binary(p)):
                continue
            files.append(File(p, p.relative_to(path).as_posix()))
        if not files:
            what = "no .csv or .npy series" if vectors else "no text files"
            raise InputError(f"{item}: the folder holds {what}")
        return files
    if path.is_file():
        return [File(path, str(item))]
    if isinstance(item, str) and _glob_chars(item):
        matched = sorted(p for p in glob.glob(item, recursive=True) if Path(p).is_file())
        if not matched:
            raise InputError(f"{item}: no files matched")
        return [File(Path(p), p) for p in matched]
    raise InputError(f"{item}: no such file or folder")


def resolve(corpus: Any, vectors: bool = False) -> tuple[list[File] | None, list[Any] | None]:
    """(files, None) for paths, folders and globs; (None, items) for a list of texts or arrays."""
    if isinstance(corpus, (str, Path)):
        corpus = [corpus]
    if isinstance(corpus, np.ndarray):
        raise InputError("a corpus of vectors is a list of (T, D) arrays, one per document")
    if not isinstance(corpus, Sequence) or isinstance(corpus, bytes):
        raise InputError(
            f"a corpus is paths, folders, globs, or a list of texts or arrays, not {type(corpus).__name__}"
        )
    items = list(corpus)
    if not items:
        raise InputError("the corpus is empty: give at least one file, folder, glob or document")
    if isinstance(corpus, Texts) or all(isinstance(x, np.ndarray) for x in items):
        return None, items
    if all(isinstance(x, str) for x in items) and not any(_names_files(x) for x in items):
        return None, items  # texts: none of them names a file, a folder or a glob that matches
    bad = [x for x in items if not isinstance(x, (str, Path))]
    if bad:
        raise InputError(f"a corpus mixes paths with {type(bad[0]).__name__}: give paths, or a list of documents")
    files: list[File] = []
    for x in items:
        files.extend(_expand(x, vectors))
    return files, None


def _names_files(s: str) -> bool:
    if "\n" in s or len(s) > 4096:
        return False
    try:
        return Path(s).exists() or (_glob_chars(s) and bool(glob.glob(s, recursive=True)))
    except OSError:
        return False


def sources(files: list[File] | None, items: list[Any] | None) -> list[str]:
    """The names the index records, one per file (or one for a list of documents)."""
    if files is not None:
        return [f.name for f in files]
    assert items is not None
    return ["<arrays>" if items and isinstance(items[0], np.ndarray) else "<texts>"]


def documents(files: list[File] | None, items: list[Any] | None, per: str = "file") -> Iterator[Doc]:
    """Every document in order, read as it is reached."""
    if per not in ("file", "line"):
        raise InputError(f"per must be 'file' or 'line', not {per!r}")
    if items is not None:
        for k, x in enumerate(items):
            if isinstance(x, np.ndarray):
                yield Doc(0, k, array=x)
            elif isinstance(x, str):
                if x:
                    yield Doc(0, k, text=x)
            else:
                raise InputError(f"document {k} is a {type(x).__name__}, not a text or an array")
        return
    assert files is not None
    for s, f in enumerate(files):
        suffix = f.path.suffix.lower()
        if suffix in SERIES:
            from ..series import read_series

            try:
                x, _ = read_series(f.path, f.path.name)
            except InputError as e:
                raise InputError(f"{f.name}: {e}") from None
            yield Doc(s, 0, array=x)
        elif suffix in JSONL:
            yield from _jsonl(s, f)
        else:
            yield from _text(s, f, per)


def _text(s: int, f: File, per: str) -> Iterator[Doc]:
    if _is_binary(f.path):
        raise InputError(f"{f.name}: a binary file, not text")
    try:
        if per == "file":
            text = f.path.read_text("utf-8")
            if text:
                yield Doc(s, 0, text=text)
            return
        with f.path.open(encoding="utf-8", newline="") as fh:
            for n, line in enumerate(fh):
                line = line.rstrip("\r\n")
                if line:
                    yield Doc(s, n, text=line)
    except UnicodeDecodeError as e:
        raise InputError(f"{f.name}: not UTF-8 text (byte {e.start}: {e.reason})") from None


def _jsonl(s: int, f: File) -> Iterator[Doc]:
    try:
        with f.path.open(encoding="utf-8") as fh:
            for n, line in enumerate(fh):
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError as e:
                    raise InputError(f"{f.name} line {n + 1}: not JSON ({e.msg})") from None
                if not isinstance(obj, dict) or not isinstance(obj.get("text"), str):
                    raise InputError(f'{f.name} line {n + 1}: each line must be an object with a "text" string')
                if obj["text"]:
                    yield Doc(s, n, text=obj["text"])
    except UnicodeDecodeError as e:
        raise InputError(f"{f.name}: not UTF-8 text (byte {e.start}: {e.reason})") from None


def where(files: list[File] | None, doc: Doc, step: int | None = None) -> str:
    """How a message names a document: "file line n" (lines from 1, as an editor shows them) or "document k"."""
    if files is None:
        return f"document {doc.line}"
    name = files[doc.source].name
    line = doc.line
    if step is not None and doc.text is not None and doc.line == 0:
        line = doc.text.count("\n", 0, step)
    return f"{name} line {line + 1}"
