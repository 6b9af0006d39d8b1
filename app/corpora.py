"""What an index job reads: a corpus a person sent (a text file, JSON Lines, a zip of text files; a series
for vector models), unpacked safely into a job's own folder, and each bundled model's held-out data.

An uploaded corpus is refused before any work when it cannot be used (``CorpusError``, with the HTTP
status and a sentence saying what to send instead): empty, of the wrong kind for the model, not UTF-8
text, a zip that would unpack to more than GATESCOPE_MAX_CORPUS_UNZIPPED_MB or hold more than
GATESCOPE_MAX_CORPUS_FILES files (counted from the zip's directory, and the bytes counted again as they
are written: a directory can lie). Zip members are written under the job's folder only, by a name made
from their path's safe parts (never an absolute path, never ``..``, never a link); binary members are
skipped, and the job's note says which.

Held-out corpora of the bundled models (``heldout``), each what the model's card task holds out:
dyck      ``DyckTask.heldout()``: 500 strings, half longer and deeper than training's; a document each
recall    ``RecallTask.heldout()``: the usual gaps and the long ones, 2,000 sequences; a document each
code      the standard library's held-out files (``model.tasks.is_heldout``), whole, in path order, those that
          fit in GATESCOPE_HELDOUT_CHARS characters (300,000: 27 of the 75 files, 299,889 characters on Python
          3.11), the state carried through each file (the model was trained on a stream). Why not all 1.17 M:
          at 128 units h and C in float16 take 512 bytes a step, so 1 M characters took 528 MB on disk and
          546 s to build here (index v0, one process, a load of 15 on 2 cores); 300,000 take about 150 MB and a
          third of the time, and still give every unit 256 top contexts from 27 files
adding    ``AddingTask.heldout()``: 1,000 series of (value, marker), a document each
co2       the whole weekly series, one document: the held-out years lie inside it (every fifth year from
          1962), and the model was scored tracing it whole
"""

from __future__ import annotations

import json
import sysconfig
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

import model
from model import tasks
from model.analysis.corpus import Texts
from model.regression import Co2Task

#: The suffixes read as series (vector models); anything else is text (UTF-8) unless it is a zip.
SERIES = (".csv", ".npy")
#: Bytes of a member read to decide whether it is text: a NUL or invalid UTF-8 in them means binary.
SNIFF = 8192


class CorpusError(ValueError):
    """A corpus refused, with the HTTP status to answer and what the person should send instead."""

    def __init__(self, message: str, status: int = 422) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class Corpus:
    """What to index: ``sources`` (paths, texts or (T, D) arrays, as ``model.analysis.index.build`` takes them),
    how (``per``, ``carry``), what it is called (``name``, a file name; ``title``, for the page: "held-out Python"),
    its size in characters (text) or steps (series), and what was skipped on the way."""

    sources: Any
    name: str
    title: str
    per: str = "file"
    carry: bool = False
    size: int = 0
    notes: list[str] = field(default_factory=list)


def is_binary(head: bytes) -> bool:
    """Whether these first bytes of a file are not UTF-8 text (a NUL, or bytes UTF-8 cannot decode; a
    multi-byte character cut at the end is not counted)."""
    if b"\0" in head:
        return True
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as e:
        return e.start < len(head) - 3  # only a character cut by the sniff's end is forgiven
    return False


def _safe_name(member: str) -> PurePosixPath | None:
    """A zip member's path made relative and harmless: its parts without '', '.', '..' or a drive; None if
    nothing is left (or it names a directory, or macOS's resource forks)."""
    parts = [p for p in member.replace("\\", "/").split("/") if p not in ("", ".", "..") and ":" not in p]
    if not parts or member.endswith("/") or parts[0] == "__MACOSX" or parts[-1].startswith("."):
        return None
    return PurePosixPath(*parts)


def unzip(archive: Path, into: Path, max_bytes: int, max_files: int, suffixes: tuple[str, ...] | None) -> list[str]:
    """Write the text members of ``archive`` under ``into``; the notes on what was skipped. ``suffixes``: only
    members with these (series), else every member that reads as text."""
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError) as e:
        raise CorpusError(f"the corpus is not a readable zip file ({e})", 415) from None
    with zf:
        members = [m for m in zf.infolist() if not m.is_dir()]
        if len(members) > max_files:
            raise CorpusError(f"the zip holds {len(members):,} files; a corpus may hold at most {max_files:,}", 413)
        declared = sum(m.file_size for m in members)
        if declared > max_bytes:
            raise CorpusError(
                f"the zip unpacks to {declared / 2**20:,.0f} MB; a corpus may unpack to at most {max_bytes >> 20} MB",
                413,
            )
        try:
            return _extract(zf, members, into, max_bytes, suffixes)
        except (zipfile.BadZipFile, zlib.error, EOFError) as e:  # a member does not match its record
            raise CorpusError(f"the zip is damaged ({e})", 422) from None


def _extract(
    zf: zipfile.ZipFile, members: list[zipfile.ZipInfo], into: Path, max_bytes: int, suffixes: tuple[str, ...] | None
) -> list[str]:
    """Write the members (see ``unzip``); the notes on what was skipped."""
    written, binary, other = 0, [], []
    root = into.resolve()
    for m in members:
        name = _safe_name(m.filename)
        if name is None:
            continue
        if suffixes is not None and name.suffix.lower() not in suffixes:
            other.append(str(name))
            continue
        target = (root / name).resolve()
        if root not in target.parents:  # cannot happen with the safe name: kept as the last word
            raise CorpusError(f"the zip member {m.filename!r} points outside the corpus", 422)
        target.parent.mkdir(parents=True, exist_ok=True)
        with zf.open(m) as src:
            head = src.read(SNIFF)
            if suffixes is None and is_binary(head):
                binary.append(str(name))
                continue
            with open(target, "wb") as out:
                chunk = head
                while chunk:
                    written += len(chunk)
                    if written > max_bytes:  # the directory understated a member's size
                        raise CorpusError(f"the zip unpacks to more than {max_bytes >> 20} MB", 413)
                    out.write(chunk)
                    chunk = src.read(1 << 20)
    notes = []
    if binary:
        notes.append(f"skipped {len(binary)} binary file{'s' if len(binary) > 1 else ''}: {_some(binary)}")
    if other:
        notes.append(
            f"skipped {len(other)} file{'s' if len(other) > 1 else ''} not {' or '.join(suffixes or ())}: "
            f"{_some(other)}"
        )
    return notes


def _some(names: list[str], n: int = 3) -> str:
    return ", ".join(names[:n]) + (f" and {len(names) - n} more" if len(names) > n else "")


def _size_of(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def read_upload(
    path: Path, filename: str, work: Path, net: model.Network, *, max_bytes: int, max_files: int, per: str, carry: bool
) -> Corpus:
    """The corpus a person sent (``path``, saved from ``filename``), checked for ``net`` and made ready under
    ``work`` (a folder of the job's own). CorpusError when it cannot be indexed."""
    suffix = PurePosixPath(filename.lower()).suffix
    text_model = net.tokenizer is not None
    if path.stat().st_size == 0:
        raise CorpusError(f"{filename} is empty: nothing to index")
    if suffix == ".zip":
        folder = work / "corpus"
        folder.mkdir()
        notes = unzip(path, folder, max_bytes, max_files, None if text_model else SERIES)
        files = sorted(p for p in folder.rglob("*") if p.is_file())
        if not files:
            kind = "text files" if text_model else "series (.csv or .npy)"
            raise CorpusError(f"{filename} holds no {kind}" + (f" ({'; '.join(notes)})" if notes else ""))
        size = _size_of(folder)
        if text_model and size == 0:
            raise CorpusError(f"{filename} holds only empty files: nothing to index")
        _check_text(net, files, filename, per)
        return Corpus([str(folder)], filename, filename, per, carry, size, notes)
    if not text_model:
        if suffix not in SERIES:
            raise CorpusError(
                f"this model reads vectors, not text: send a series (.csv or .npy) or a .zip of them, not {filename}",
                415,
            )
        return Corpus([str(path)], filename, filename, "file", carry, path.stat().st_size)
    if suffix in SERIES and suffix == ".npy":
        raise CorpusError(f"this model reads text: send a .txt, .jsonl or .zip of text files, not {filename}", 415)
    with open(path, "rb") as f:
        if is_binary(f.read(SNIFF)):
            raise CorpusError(
                f"{filename} is not UTF-8 text: send a .txt, .jsonl (a 'text' field a line) or a .zip of text files",
                415,
            )
    if suffix == ".jsonl":
        _check_jsonl(path, filename)
    else:
        _check_text(net, [path], filename, per)
    return Corpus([str(path)], filename, filename, "line" if suffix == ".jsonl" else per, carry, path.stat().st_size)


def _check_jsonl(path: Path, filename: str) -> None:
    """Refuse a JSON Lines corpus whose first line is not an object with a 'text' string."""
    with open(path, encoding="utf-8", errors="replace") as f:
        first = next((line for line in f if line.strip()), "")
    try:
        row = json.loads(first)
    except json.JSONDecodeError as e:
        raise CorpusError(f"{filename}: its first line is not JSON ({e}); .jsonl holds one object a line") from None
    if not isinstance(row, dict) or not isinstance(row.get("text"), str):
        raise CorpusError(f"{filename}: each line must be a JSON object with a 'text' string")


#: Characters of a text corpus run through the tokenizer before a job starts: unknown tokens refused at once.
CHECK_CHARS = 100_000


def _check_text(net: model.Network, files: list[Path], filename: str, per: str) -> None:
    """Refuse a text corpus the model cannot read, from its first CHECK_CHARS characters (the tokenizer's own
    message names the token); with ``per="line"`` each line is a document, its newline not part of it."""
    left = CHECK_CHARS
    for p in files:
        if left <= 0:
            return
        with open(p, encoding="utf-8", errors="replace") as f:
            text = f.read(left)
        left -= len(text)
        docs = text.splitlines() if per == "line" else [text]
        try:
            for doc in docs:
                if doc:
                    net.tokenizer.encode(doc).check()  # type: ignore[union-attr]
        except model.InputError as e:
            raise CorpusError(f"{filename}: {e}") from None


# ---------------------------------------------------------------------------------------------------------------------
# The bundled models' held-out data


def heldout(name: str, card: dict[str, Any], max_chars: int) -> Corpus | None:
    """What bundled model ``name`` (its card naming its task and options) indexes; None when its task has none."""
    task_name = card.get("task")
    options = card.get("task_options") or {}
    if task_name not in tasks.TASKS:
        return None
    task = tasks.TASKS[task_name](**options)
    if isinstance(task, tasks.DyckTask):
        docs = Texts(task.heldout())
        title = f"held-out Dyck strings (up to {2 * task.max_len} symbols)"
        return Corpus(docs, "heldout", title, size=sum(map(len, docs)))
    if isinstance(task, tasks.RecallTask):
        usual, long = task.heldout()
        docs = Texts(usual + long)
        return Corpus(docs, "heldout", "held-out recall sequences (usual and long gaps)", size=sum(map(len, docs)))
    if isinstance(task, tasks.CodeTask):
        return code_heldout(max_chars)
    if isinstance(task, Co2Task):
        series = task.series[:, None].astype(np.float32)  # (N, 1) ppm
        return Corpus([series], "heldout", "the weekly CO2 series (held-out years inside it)", size=len(series))
    heldout_of = getattr(task, "heldout", None)
    if heldout_of is None:
        return None
    x = heldout_of()[0]  # adding: (n, T, D) series and their targets
    rows = [np.asarray(s, np.float32) for s in x]  # (T, D) each
    return Corpus(rows, "heldout", f"held-out {task_name} series", size=sum(len(d) for d in rows))


def code_heldout(max_chars: int) -> Corpus:
    """The standard library's held-out files, whole, in path order, those that fit in ``max_chars`` characters."""
    root = sysconfig.get_paths()["stdlib"]
    paths: list[str] = []
    size = 0
    for rel, text in tasks.stdlib_files(root):
        if not tasks.is_heldout(rel):
            continue
        if size + len(text) > max_chars:
            continue  # a file that would pass the cap is left out; a smaller one after it may fit
        paths.append(str(Path(root, rel)))
        size += len(text)
    title = f"held-out Python ({len(paths)} standard-library files)"
    return Corpus(paths, "heldout", title, per="file", carry=True, size=size)
