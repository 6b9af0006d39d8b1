"""Uploaded models: checked in a separate process, stored in gatescope's own format, kept across restarts.

An upload is converted by ``python -m model.formats.convert`` in a child process with a time limit
(and memory/CPU limits it sets itself): a hostile or malformed file can only fail that process.
The server then reads the converted file, which is plain safetensors with JSON metadata. Each
model lives in ``<models dir>/<id>/`` (model.safetensors, card.json); a failed upload leaves nothing.

Every change is atomic: an upload is written to a staging folder, fsynced, and renamed into place; a
delete renames the folder away before removing it. A read-only models folder answers 503 and a full
disk 507, for that request only; staging folders a crash left behind are removed at start-up.

The folder is the one truth every worker process shares (``gatescope serve --workers N``). What they
must agree on is held with ``flock(2)`` on files in ``<models>/.locks/`` (released by the kernel when a
process dies, so a crash never leaves a lock behind):

- ``conversion-<k>``: one of the GATESCOPE_MAX_CONVERSIONS converters running at once, held for the
  conversion only (a waiter waits for a holder bounded by the import timeout);
- ``claim``: renaming a converted model into place, after the last check of the number and size limits,
  so two workers' last uploads cannot both pass; the rename itself never replaces a model (rename(2)
  onto a folder that holds files fails), and a lost name moves on to the next free one or is a 409;
- ``staging``: shared while an upload makes and locks its staging folder, exclusive while ``clean``
  sweeps, so ``clean`` removes only staging folders whose upload's lock is gone (its process died).

``stamp()`` (one stat of the folder: its mtime changes with every rename in or out) and ``version(id)``
let each worker's Registry see what the others changed.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import model
from model.formats import native

from .settings import ROOT

#: What a model id may look like: it names a folder and appears in URLs.
ID = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
#: The folder of the lock files the workers share, inside the models folder (not an id: it starts with a dot).
LOCKS = ".locks"
#: What a rename onto a name already taken fails with (a folder that holds files; a file).
TAKEN = (errno.EEXIST, errno.ENOTEMPTY, errno.ENOTDIR, errno.EISDIR)

#: The models folder's stamp: (inode, mtime in ns); (0, 0) while there is no folder.
Stamp = tuple[int, int]
#: A stored model's files as last seen: its model.safetensors' (inode, mtime, ctime, size), its card.json's mtime.
Version = tuple[int, int, int, int, int]


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
    heads: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Run the converter on ``source`` in a child process; its report, or UploadError. A file declaring
    more than ``max_mb`` of weights is refused by its metadata, before the child allocates them; the
    child is killed when ``stop()`` says so (model.Cancelled). ``heads``: head / head_at / labels, what
    the output means (over what the file says)."""
    cmd = [sys.executable, "-m", "model.formats.convert", str(source), str(out)]
    if vocab is not None:
        cmd += ["--vocab", str(vocab)]
    for key, value in (heads or {}).items():
        if value is not None:
            cmd += [
                f"--{key.replace('_', '-')}",
                json.dumps(value, ensure_ascii=False) if key == "labels" else str(value),
            ]
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
    """The folder uploaded models persist in, shared by every worker serving it. At most ``conversions``
    uploads are converted at once over all of them (each converter may take up to 4 GB); the others
    wait their turn. ``max_models`` and ``max_mb`` bound what it keeps (None: no bound)."""

    def __init__(self, root: Path, conversions: int = 1, max_models: int | None = None, max_mb: int | None = None):
        self.root, self.conversions, self.max_models, self.max_mb = root, conversions, max_models, max_mb
        self._turns = threading.BoundedSemaphore(conversions)  # this process's threads queue here, not on the locks

    def _lock_file(self, name: str) -> int:
        """A descriptor of ``<models>/.locks/<name>`` (made if need be), for ``flock``."""
        locks = self.root / LOCKS
        locks.mkdir(parents=True, exist_ok=True)
        return os.open(locks / name, os.O_RDWR | os.O_CREAT, 0o644)

    @contextmanager
    def _flock(self, name: str, how: int = fcntl.LOCK_EX) -> Iterator[None]:
        """``<models>/.locks/<name>`` locked while the block runs (closing the descriptor unlocks it)."""
        fd = self._lock_file(name)
        try:
            fcntl.flock(fd, how)
            yield
        finally:
            os.close(fd)

    @contextmanager
    def _conversion_turn(self) -> Iterator[None]:
        """One of the ``conversions`` slots every worker shares: the first free one, else a wait for one
        (its holder converts for at most the import timeout, and a dead holder's lock is released)."""
        with self._turns:
            fd = -1
            for k in range(self.conversions):
                fd = self._lock_file(f"conversion-{k}")
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    os.close(fd)
                    fd = -1
            try:
                if fd < 0:  # all taken: wait for one of them
                    fd = self._lock_file(f"conversion-{(os.getpid() + threading.get_ident()) % self.conversions}")
                    fcntl.flock(fd, fcntl.LOCK_EX)
                yield
            finally:
                if fd >= 0:
                    os.close(fd)

    def _stage(self) -> tuple[Path, int]:
        """A new staging folder, and the descriptor that holds its lock for as long as the upload is in flight."""
        with self._flock("staging", fcntl.LOCK_SH):  # clean() sweeps holding it exclusively: it never sees one unlocked
            staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=self.root))
            try:
                held = os.open(staging, os.O_RDONLY)
                fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)  # just made: nobody else holds it
            except OSError:
                shutil.rmtree(staging, ignore_errors=True)
                raise
        return staging, held

    def clean(self) -> list[str]:
        """Remove what an interrupted upload or delete left behind (at start-up); the names removed. A
        staging folder another worker's upload still holds is left alone."""
        if not self.root.is_dir():
            return []
        removed = []
        try:
            with self._flock("staging"):
                for p in sorted(self.root.iterdir()):
                    if p.name.startswith(".deleting-") or (p.name.startswith(".staging-") and not _held(p)):
                        shutil.rmtree(p, ignore_errors=True)
                        removed.append(p.name)
        except OSError:  # a read-only folder: nothing can be cleaned, and nothing is staged in it either
            return []
        return removed

    def ids(self) -> list[str]:
        return sorted(self.versions())

    def versions(self) -> dict[str, Version]:
        """Every stored model's id and its files' version, in one pass over the folder (os.scandir and
        two stats a model: a re-listing of 100 models takes about a millisecond)."""
        root, found = os.fspath(self.root), {}
        try:
            listing = os.scandir(root)
        except OSError:
            return {}
        with listing:
            for e in listing:
                if ID.fullmatch(e.name) and (version := _version(os.path.join(root, e.name))) is not None:
                    found[e.name] = version
        return found

    def size(self) -> int:
        """Bytes the stored models take on disk (uploads in flight and deletes under way aside)."""
        if not self.root.is_dir():
            return 0
        kept = [p for p in self.root.iterdir() if not p.name.startswith((".staging-", ".deleting-", LOCKS))]
        return sum(f.stat().st_size for p in kept for f in ([p] if p.is_file() else p.rglob("*")) if f.is_file())

    def check_room(self) -> None:
        """UploadError (507) when the folder holds ``max_models`` models or ``max_mb`` megabytes already."""
        if self.max_models is not None and len(self.ids()) >= self.max_models:
            raise UploadError(f"the server keeps at most {self.max_models} uploaded models; remove one first", 507)
        if self.max_mb is not None and (used := self.size()) >= self.max_mb << 20:
            raise UploadError(
                f"uploaded models take {used / 2**20:.0f} MB; the server keeps at most {self.max_mb} MB", 507
            )

    def stamp(self) -> Stamp:
        """What changes whenever a model is added or removed, by any process: one stat of the folder."""
        try:
            st = os.stat(self.root)
        except OSError:
            return (0, 0)
        return st.st_ino, st.st_mtime_ns

    def version(self, model_id: str) -> Version | None:
        """What changes when a model's files are replaced (a new upload under the same name); None: gone."""
        return _version(os.path.join(self.root, model_id))

    def load(self, model_id: str) -> tuple[model.Network, dict[str, Any]]:
        folder = self.root / model_id
        net = native.load(folder / "model.safetensors")
        card_path = folder / "card.json"
        card = json.loads(card_path.read_text()) if card_path.is_file() else {}
        return net, card if isinstance(card, dict) else {}

    def add(
        self,
        ids: Iterable[str],
        source: Path,
        filename: str,
        vocab: Path | None,
        timeout: float,
        max_mb: int = 1024,
        stop: Callable[[], bool] | None = None,
        room: int | None = None,
        heads: dict[str, Any] | None = None,
    ) -> tuple[str, model.Network, dict[str, Any]]:
        """Convert ``source`` and keep it under the first of ``ids`` still free when it is renamed into
        place (a single id: 409 if it is taken by then); nothing is written when it fails. ``max_mb``: the
        most weights the file may declare; ``stop``: the converter is killed once it says so; ``room``: the
        most bytes its network may take in memory (507 past it)."""
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            if shutil.disk_usage(self.root).free < 2 * source.stat().st_size + (1 << 20):
                raise OSError(errno.ENOSPC, "no space left")
            staging, held = self._stage()
        except OSError as e:
            raise _disk_error(e, f"store {filename}") from None
        try:
            with self._conversion_turn():  # one converter at a time (by default): three at once took 3.9 GB
                convert(source, vocab, staging / "model.safetensors", timeout, max_mb, stop, heads)
            net = native.load(staging / "model.safetensors")
            if room is not None and net.nbytes > room:
                raise UploadError(
                    f"{filename}: its network takes {net.nbytes / 2**20:,.0f} MB in memory; this server has "
                    f"{max(room, 0) / 2**20:,.0f} MB left for models (GATESCOPE_MAX_MEMORY_MB): remove a model first",
                    507,
                )
            way = "" if net.direction == "forward" else f"{net.direction} "
            card = {
                "description": f"Uploaded from {filename}: {net.num_layers} × {net.hidden_size} {way}{net.cell}.",
                "source": filename,
                "uploaded": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "examples": [],
            }
            try:
                (staging / "card.json").write_text(json.dumps(card, indent=1))
                for name in ("model.safetensors", "card.json", "."):
                    _fsync(staging / name)  # on disk before it is renamed into place
                model_id = self._claim(staging, ids)
                _fsync(self.root)
            except OSError as e:
                raise _disk_error(e, f"store {filename}") from None
            return model_id, net, card
        finally:
            shutil.rmtree(staging, ignore_errors=True)  # gone already when it was renamed into place
            os.close(held)

    def _claim(self, staging: Path, ids: Iterable[str]) -> str:
        """Rename ``staging`` to the first id no model holds (atomic: the model appears whole or not at
        all, and never in place of another); 409 when the ids run out."""
        first = None
        with self._flock("claim"):
            self.check_room()  # again, under the lock: uploads converted meanwhile by any worker count
            for model_id in ids:
                first = first or model_id
                try:
                    staging.rename(self.root / model_id)  # replaces at most an empty folder, which holds no model
                    return model_id
                except OSError as e:
                    if e.errno not in TAKEN:
                        raise
        raise UploadError(f"a model named {first!r} exists already; choose another name", 409)

    def remove(self, model_id: str) -> bool:
        """Delete a model for good (False: it was gone already, removed by another worker), or raise
        UploadError and leave it whole (a read-only folder)."""
        away = self.root / f".deleting-{model_id}-{os.getpid()}-{time.monotonic_ns()}"
        try:
            (self.root / model_id).rename(away)  # atomic: gone, or still there
            _fsync(self.root)
        except FileNotFoundError:
            return False
        except OSError as e:
            raise _disk_error(e, f"delete {model_id!r}") from None
        shutil.rmtree(away, ignore_errors=True)  # a leftover is cleaned at the next start
        return True


def _version(folder: str) -> Version | None:
    """A model folder's version: its model.safetensors' (inode, mtime, ctime, size) and its card.json's
    mtime; None when it holds no model file."""
    try:
        st = os.stat(os.path.join(folder, "model.safetensors"))
    except OSError:
        return None
    if not stat.S_ISREG(st.st_mode):
        return None
    try:
        card = os.stat(os.path.join(folder, "card.json")).st_mtime_ns
    except OSError:
        card = 0
    return st.st_ino, st.st_mtime_ns, st.st_ctime_ns, st.st_size, card


def _held(folder: Path) -> bool:
    """Whether a live upload holds this staging folder's lock (in any process)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False
