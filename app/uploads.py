"""Uploaded models: checked in a separate process, stored in gatescope's own format, kept across restarts.

An upload is converted by ``python -m model.formats.convert`` in a child process with a time limit
(and memory/CPU limits it sets itself): a hostile or malformed file can only fail that process.
The server then reads the converted file, which is plain safetensors with JSON metadata. Each
model lives in ``<models dir>/<id>/`` (model.safetensors, card.json); a failed upload leaves nothing.

Every change is atomic: an upload is written to a staging folder, fsynced, and renamed into place; a
delete renames the folder away before removing it. A read-only models folder answers 503 and a full
disk 507, for that request only; staging folders a crash left behind are removed at start-up.
"""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import model
from model.formats import native

from .settings import ROOT

#: What a model id may look like: it names a folder and appears in URLs.
ID = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")


class UploadError(ValueError):
    """An upload refused, with the reason for the person who sent it and the HTTP status."""

    def __init__(self, message: str, status: int = 422) -> None:
        super().__init__(message)
        self.status = status


def slug(text: str) -> str:
    """A model id made from a file name or a free-form name."""
    s = re.sub(r"[^a-z0-9._-]+", "-", text.lower()).strip("-._")[:64]
    return s or "model"


def _run_child(cmd: list[str], timeout: float, stop: Callable[[], bool] | None) -> subprocess.CompletedProcess | None:
    """Run ``cmd``; None if it ran past ``timeout`` (killed). Killed, and model.Cancelled, once ``stop()`` says so
    (asked every 0.2 s: the client that sent the upload left)."""
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + timeout
    while True:
        try:
            out, err = proc.communicate(timeout=0.2)
            return subprocess.CompletedProcess(cmd, proc.returncode, out, err)
        except subprocess.TimeoutExpired:
            stopped = stop is not None and stop()
            if stopped or time.monotonic() > deadline:
                proc.kill()
                proc.communicate()
                if stopped:
                    raise model.Cancelled("the upload's client left: its conversion was stopped") from None
                return None


def convert(
    source: Path,
    vocab: Path | None,
    out: Path,
    timeout: float,
    max_mb: int = 1024,
    stop: Callable[[], bool] | None = None,
) -> dict[str, Any]:
    """Run the converter on ``source`` in a child process; its report, or UploadError. A file declaring
    more than ``max_mb`` of weights is refused by its metadata, before the child allocates them; the
    child is killed when ``stop()`` says so (model.Cancelled)."""
    cmd = [sys.executable, "-m", "model.formats.convert", str(source), str(out)]
    if vocab is not None:
        cmd += ["--vocab", str(vocab)]
    cmd += ["--cpu-seconds", str(int(timeout) + 1), "--max-mb", str(max_mb)]
    done = _run_child(cmd, timeout, stop)
    if done is None:
        raise UploadError(f"reading the file took longer than {timeout:g} s; it is not a weight file gatescope reads")
    lines = done.stdout.strip().splitlines()
    try:
        report = json.loads(lines[-1]) if lines else {}
    except json.JSONDecodeError:
        report = {}
    if done.returncode == 0 and report.get("ok"):
        return report
    if "error" in report:
        raise UploadError(report["error"])
    if done.returncode < 0:  # killed by a signal: the file crashed a parser
        raise UploadError(f"{source.name}: it crashed the importer (signal {-done.returncode}): the file is malformed")
    raise UploadError(f"{source.name}: not readable as a weight file (the importer stopped without a reason)")


def _disk_error(e: OSError, doing: str) -> UploadError:
    """An OSError from the models folder as the reason a person can act on."""
    if e.errno in (errno.ENOSPC, errno.EDQUOT):
        return UploadError(f"the disk holding the models folder is full: cannot {doing}", 507)
    if e.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        return UploadError(f"the models folder is read-only for this server: cannot {doing}", 503)
    return UploadError(f"the models folder cannot be written ({e.strerror}): cannot {doing}", 503)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Store:
    """The folder uploaded models persist in. At most ``conversions`` uploads are converted at once
    (each converter may take up to 4 GB); the others wait their turn."""

    def __init__(self, root: Path, conversions: int = 1) -> None:
        self.root = root
        self._turns = threading.BoundedSemaphore(conversions)

    def clean(self) -> list[str]:
        """Remove what an interrupted upload or delete left behind (at start-up); the names removed."""
        if not self.root.is_dir():
            return []
        left = [p for p in self.root.iterdir() if p.name.startswith((".staging-", ".deleting-"))]
        for p in left:
            shutil.rmtree(p, ignore_errors=True)
        return [p.name for p in left]

    def ids(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(
            p.name for p in self.root.iterdir() if ID.fullmatch(p.name) and (p / "model.safetensors").is_file()
        )

    def size(self) -> int:
        """Bytes the stored models take on disk."""
        if not self.root.is_dir():
            return 0
        return sum(f.stat().st_size for f in self.root.rglob("*") if f.is_file())

    def load(self, model_id: str) -> tuple[model.Network, dict[str, Any]]:
        folder = self.root / model_id
        net = native.load(folder / "model.safetensors")
        card_path = folder / "card.json"
        card = json.loads(card_path.read_text()) if card_path.is_file() else {}
        return net, card if isinstance(card, dict) else {}

    def add(
        self,
        model_id: str,
        source: Path,
        filename: str,
        vocab: Path | None,
        timeout: float,
        max_mb: int = 1024,
        stop: Callable[[], bool] | None = None,
    ) -> tuple[model.Network, dict[str, Any]]:
        """Convert ``source`` and keep it under ``model_id``; nothing is written when it fails."""
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            if shutil.disk_usage(self.root).free < 2 * source.stat().st_size + (1 << 20):
                raise OSError(errno.ENOSPC, "no space left")
            staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=self.root))
        except OSError as e:
            raise _disk_error(e, f"store {filename}") from None
        try:
            with self._turns:  # one converter at a time (by default): three at once took 3.9 GB
                convert(source, vocab, staging / "model.safetensors", timeout, max_mb, stop)
            net = native.load(staging / "model.safetensors")
            card = {
                "description": f"Uploaded from {filename}: {net.num_layers} × {net.hidden_size} {net.cell}.",
                "source": filename,
                "uploaded": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "examples": [],
            }
            final = self.root / model_id
            try:
                (staging / "card.json").write_text(json.dumps(card, indent=1))
                for name in ("model.safetensors", "card.json", "."):
                    _fsync(staging / name)  # on disk before it is renamed into place
                if final.exists():
                    raise UploadError(f"a model named {model_id!r} exists already; choose another name", 409)
                staging.rename(final)  # atomic: the model appears whole or not at all
                _fsync(self.root)
            except OSError as e:
                raise _disk_error(e, f"store {filename}") from None
            return net, card
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def remove(self, model_id: str) -> None:
        """Delete a model for good, or raise UploadError and leave it whole (a read-only folder)."""
        away = self.root / f".deleting-{model_id}-{os.getpid()}-{time.monotonic_ns()}"
        try:
            (self.root / model_id).rename(away)  # atomic: gone, or still there
            _fsync(self.root)
        except OSError as e:
            raise _disk_error(e, f"delete {model_id!r}") from None
        shutil.rmtree(away, ignore_errors=True)  # a leftover is cleaned at the next start
