"""Uploaded models: checked in a separate process, stored in gatescope's own format, kept across restarts.

An upload is converted by ``python -m model.formats.convert`` in a child process with a time limit
(and memory/CPU limits it sets itself): a hostile or malformed file can only fail that process.
The server then reads the converted file, which is plain safetensors with JSON metadata. Each
model lives in ``<models dir>/<id>/`` (model.safetensors, card.json); a failed upload leaves nothing.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
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


def convert(source: Path, vocab: Path | None, out: Path, timeout: float) -> dict[str, Any]:
    """Run the converter on ``source`` in a child process; its report, or UploadError."""
    cmd = [sys.executable, "-m", "model.formats.convert", str(source), str(out)]
    if vocab is not None:
        cmd += ["--vocab", str(vocab)]
    cmd += ["--cpu-seconds", str(int(timeout) + 1)]
    try:
        done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise UploadError(
            f"reading the file took longer than {timeout:g} s; it is not a weight file gatescope reads"
        ) from None
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


class Store:
    """The folder uploaded models persist in."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def ids(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(
            p.name for p in self.root.iterdir() if ID.fullmatch(p.name) and (p / "model.safetensors").is_file()
        )

    def load(self, model_id: str) -> tuple[model.Network, dict[str, Any]]:
        folder = self.root / model_id
        net = native.load(folder / "model.safetensors")
        card_path = folder / "card.json"
        card = json.loads(card_path.read_text()) if card_path.is_file() else {}
        return net, card if isinstance(card, dict) else {}

    def add(
        self, model_id: str, source: Path, filename: str, vocab: Path | None, timeout: float
    ) -> tuple[model.Network, dict[str, Any]]:
        """Convert ``source`` and keep it under ``model_id``; nothing is written when it fails."""
        self.root.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=self.root))
        try:
            convert(source, vocab, staging / "model.safetensors", timeout)
            net = native.load(staging / "model.safetensors")
            card = {
                "description": f"Uploaded from {filename}: {net.num_layers} × {net.hidden_size} {net.cell}.",
                "source": filename,
                "uploaded": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "examples": [],
            }
            (staging / "card.json").write_text(json.dumps(card, indent=1))
            final = self.root / model_id
            if final.exists():
                raise UploadError(f"a model named {model_id!r} exists already; choose another name", 409)
            staging.rename(final)  # atomic: the model appears whole or not at all
            return net, card
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def remove(self, model_id: str) -> None:
        shutil.rmtree(self.root / model_id, ignore_errors=True)
