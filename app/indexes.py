"""Every model's corpus index, and the background jobs that build them (``app.state.indexes``).

An index is a Zarr store (model/analysis/store.py) kept at ``<GATESCOPE_DATA_DIR>/indexes/<model>/<name>.zarr``,
with ``<name>.json`` beside it (what the corpus was, for the page). A model has at most one: the newest
built replaces the one before. After a restart a model's folder is opened again with its network, and an
index whose fingerprint is not that network's (its weights changed) is removed, never served.

- ``get(model)``: the ready Index, or None. ``status(model)``: ``{"state": "none" | "building" | "ready" |
  "failed", "progress", "info", "error"}``. For a bundled model the first ``get`` or ``status`` starts
  building its held-out index (app/corpora.py) when none is kept.
- ``start(model, corpus)``: a job in a thread of its own, one per model at a time (else IndexRefused, a 409
  saying how far the running one is; the lock is the model's folder, flock(2), so it holds over every worker
  process), at most ``JOBS_IN_FLIGHT`` waiting or running, ``index_jobs`` of them running at
  once. The job calls ``model.analysis.index.build`` with ``progress=`` and ``stop=``; ``cancel(model)`` and
  ``remove(model)`` (its model was deleted) stop it within a part. It builds into a hidden folder renamed into
  place when done: a failed or stopped build leaves nothing behind, and says why in ``status``.
- Dask: one cluster for the app's life (app/cluster.py), started at the first job (``index_workers`` processes,
  1 by default: the server and the browser keep the other core of a 2-core machine), or GATESCOPE_DASK_SCHEDULER's;
  ``close()`` (the lifespan's end) stops the jobs and closes it.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import shutil
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import model

from .cluster import Cluster
from .corpora import Corpus, heldout
from .registry import Registry
from .settings import Settings
from .uploads import slug

log = logging.getLogger("gatescope")

#: Jobs waiting or running at once, over all models; more are refused (503).
JOBS_IN_FLIGHT = 8
#: The name a bundled model's held-out index is kept under.
HELDOUT = "heldout"


class IndexRefused(Exception):
    """An index job refused, with the HTTP status and a sentence a person can act on."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class Job:
    """One build: its corpus, its progress (updated by the build's thread), and how it ended."""

    model_id: str
    corpus: Corpus
    state: str = "building"  # then "ready" | "failed" | "cancelled"
    docs: int = 0
    total_docs: int = 0
    chars: int = 0
    total_chars: int = 0
    started: float = field(default_factory=time.monotonic)
    ended: float | None = None
    waiting: bool = True  # for a free slot (GATESCOPE_INDEX_JOBS)
    error: str | None = None
    version: int = 0  # moves with every change: a progress stream sends a line when it has
    stop: threading.Event = field(default_factory=threading.Event)
    done: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None
    cleanup: Callable[[], None] | None = None  # removes the job's uploaded files when it ends

    def progress(self) -> dict[str, Any]:
        seconds = (self.ended or time.monotonic()) - self.started
        total = self.total_chars or self.corpus.size
        eta = seconds * (total - self.chars) / self.chars if self.chars and total >= self.chars else None
        return {
            "docs": self.docs,
            "total_docs": self.total_docs,
            "chars": self.chars,
            "total_chars": total,
            "seconds": round(seconds, 2),
            "eta": None if eta is None else round(eta, 1),
            "percent": round(100 * self.chars / total, 1) if total else 0.0,
        }


def build_index(net: model.Network, corpus: Any, out: str, **kw: Any) -> Any:
    """model.analysis.index.build (imported at the first job: Dask and Zarr load only when an index is built)."""
    from model.analysis.index import build

    return build(net, corpus, out, **kw)


def open_index(path: str, net: model.Network | None) -> Any:
    """model.analysis.store.Index.open: a kept index, checked against ``net``'s fingerprint (FormatError)."""
    from model.analysis.store import Index

    return Index.open(path, net)


class Indexes:
    """The registry of indexes and index jobs (one per app, on ``app.state.indexes``)."""

    def __init__(
        self,
        settings: Settings,
        registry: Registry,
        *,
        builder: Callable[..., Any] | None = None,
        opener: Callable[[str, Any], Any] | None = None,
        scheduler: Any = None,
    ) -> None:
        self.settings, self.registry = settings, registry
        self.root = Path(settings.data_dir) / "indexes"
        self._builder, self._opener = builder, opener  # None: build_index and open_index (tests may patch them)
        self.cluster = Cluster(scheduler or settings.dask_scheduler, settings.index_workers)
        self._ready: dict[str, tuple[model.Network, Any]] = {}  # model id -> (the network it is of, its open Index)
        self._looked: set[str] = set()  # models whose folder was looked at since the start
        self._jobs: dict[str, Job] = {}  # the last job of each model (running, or how it ended)
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(settings.index_jobs)
        self._closed = False
        self._listeners: list[Callable[[], None]] = []
        self._stale: dict[str, str] = {}  # model id -> why its kept index was removed (another layout version)

    # ---- what a request reads

    def get(self, model_id: str) -> Any | None:
        """The ready index of ``model_id``, or None (a bundled model's held-out build starts if none is kept). An
        index is served only for the very network it was opened with: a model replaced since (another worker
        deleted it and a new one took its name) is looked for again."""
        entry = self.registry.get(model_id)
        net = entry.net if entry is not None else None
        with self._lock:
            held = self._ready.get(model_id)
            if held is not None and held[0] is not net:
                del self._ready[model_id]
                self._looked.discard(model_id)
                if model_id in self._jobs and self._jobs[model_id].state != "building":
                    del self._jobs[model_id]  # how the old model's last build ended: not this one's
                held = None
        if held is not None:
            return held[1]
        if net is None:
            return None
        self._find(model_id)
        with self._lock:
            held = self._ready.get(model_id)
        return held[1] if held is not None else None

    def looked(self, model_id: str) -> bool:
        """Whether ``get`` answers from memory (no folder to open): a request can call it on the event loop."""
        return model_id in self._looked

    def status(self, model_id: str) -> dict[str, Any]:
        """Where the model's index is: none, building (with progress), ready (with what it holds), failed (why)."""
        index = self.get(model_id)
        with self._lock:
            job = self._jobs.get(model_id)
        out: dict[str, Any] = {"model": model_id, "state": "none", "progress": None, "info": None, "error": None}
        if job is not None and job.state == "building":
            out.update(state="building", progress=job.progress(), waiting=job.waiting, corpus=job.corpus.title)
        elif index is not None:
            out.update(state="ready", info=self.info(model_id, index))
        elif job is not None and job.state in ("failed", "cancelled"):
            out.update(state="failed", error=job.error, progress=job.progress(), corpus=job.corpus.title)
        if job is not None and job.corpus.notes:
            out["notes"] = job.corpus.notes
        out["version"] = job.version if job is not None else 0
        return out

    def info(self, model_id: str, index: Any) -> dict[str, Any]:
        """What a ready index holds, for the page's status line."""
        attrs = dict(getattr(index, "info", {}) or {})
        side = _read_json(Path(str(index.path)).with_suffix(".json"))
        return {
            "corpus": side.get("title", attrs.get("model", "")),
            "name": side.get("name"),
            "docs": attrs.get("docs"),
            "steps": attrs.get("steps"),
            "chars": attrs.get("chars"),
            "gates": attrs.get("gates"),
            "layers": attrs.get("layers"),
            "width": attrs.get("width"),
            "kind": attrs.get("kind"),
            "seconds": attrs.get("seconds"),
            "created": attrs.get("created"),
            "notes": side.get("notes", []),
        }

    def explain(self, model_id: str) -> str:
        """Why ``model_id`` has no index to serve, and what to do: the 409 every index route answers."""
        st = self.status(model_id)
        if st["state"] == "building":
            p = st["progress"]
            return (
                f"model {model_id!r} has no index yet: it is being built ({p['percent']:.0f}%, {st['corpus']}); "
                f"follow it at GET /api/models/{model_id}/index/progress"
            )
        if st["state"] == "failed":
            return (
                f"model {model_id!r} has no index: its last build failed ({st['error']}); "
                f"POST a corpus to /api/models/{model_id}/index"
            )
        how = f"POST a corpus (a .txt, .jsonl or .zip) to /api/models/{model_id}/index"
        return f"model {model_id!r} has no index yet: {how}"

    def put(self, model_id: str, index: Any) -> None:
        """Serve ``index`` for ``model_id`` (tests, and a build that has just finished)."""
        entry = self.registry.get(model_id)
        if entry is None or entry.net is None:
            raise KeyError(f"no model {model_id!r} to serve an index for")
        with self._lock:
            self._ready[model_id] = (entry.net, index)
            self._looked.add(model_id)

    def subscribe(self, fn: Callable[[], None]) -> None:
        """Call ``fn()`` (from any thread) whenever a job's progress or state changes."""
        self._listeners.append(fn)

    def unsubscribe(self, fn: Callable[[], None]) -> None:
        self._listeners.remove(fn)

    # ---- jobs

    def start(self, model_id: str, corpus: Corpus, cleanup: Callable[[], None] | None = None) -> Job:
        """Build ``model_id``'s index of ``corpus`` in the background; IndexRefused (409 one is running for it,
        503 too many jobs, 507 no room on disk)."""
        entry = self.registry.get(model_id)
        if entry is None or entry.net is None:
            raise IndexRefused(f"no model {model_id!r}; GET /api/models lists them", 404)
        with self._lock:
            if self._closed:
                raise IndexRefused("the server is shutting down", 503)
            running = self._jobs.get(model_id)
            if running is not None and running.state == "building":
                p = running.progress()
                raise IndexRefused(
                    f"model {model_id!r} has an index being built already ({p['percent']:.0f}%, "
                    f"{running.corpus.title}): DELETE /api/models/{model_id}/index cancels it",
                    409,
                )
            busy = sum(j.state == "building" for j in self._jobs.values())
            if busy >= JOBS_IN_FLIGHT:
                raise IndexRefused(f"the server has {busy} index jobs under way; try again when one is done", 503)
            self._check_room(entry.net, corpus)
            job = Job(model_id, corpus, cleanup=cleanup)
            self._jobs[model_id] = job
        job.thread = threading.Thread(target=self._run, args=(job, entry.net), name=f"index-{model_id}", daemon=True)
        job.thread.start()
        return job

    def refuse(self, model_id: str, name: str, message: str) -> None:
        """Record a corpus refused before its job could start (sent with an upload): the index's state is failed."""
        job = Job(model_id, Corpus([], name, name), state="failed", error=message, waiting=False)
        job.ended = job.started
        job.done.set()
        with self._lock:
            self._jobs[model_id] = job
        self._changed(job)

    def _check_room(self, net: model.Network, corpus: Corpus) -> None:
        """507 when the corpus's index (about steps x units x layers x 2 gates x 2 bytes, at most a step a
        character) would not fit in GATESCOPE_INDEX_MB beside the indexes kept."""
        gates = 2 if "c" in net.gates else 1
        need = corpus.size * net.width * net.num_layers * gates * 2
        used = _du(self.root)
        budget = self.settings.index_mb << 20
        if used + need > budget:
            raise IndexRefused(
                f"this corpus's index would take up to {need / 2**20:,.0f} MB; the indexes may take "
                f"{self.settings.index_mb:,} MB (GATESCOPE_INDEX_MB) and hold {used / 2**20:,.0f} MB: "
                "send a smaller corpus or remove an index (DELETE /api/models/<id>/index)",
                507,
            )

    def cancel(self, model_id: str) -> bool:
        """Stop ``model_id``'s running job (True if there was one); it ends within a part."""
        with self._lock:
            job = self._jobs.get(model_id)
        if job is None or job.state != "building":
            return False
        job.stop.set()
        return True

    def remove(self, model_id: str, wait: float = 30.0) -> None:
        """Stop ``model_id``'s job and remove its indexes (its model is gone, or a person asked); IndexRefused (503)
        if the job did not stop within ``wait`` seconds."""
        with self._lock:
            job = self._jobs.pop(model_id, None)
            self._ready.pop(model_id, None)
            self._looked.add(model_id)  # nothing kept to find any more (a bundled model's next ask builds again)
        if job is not None and job.state == "building":
            job.stop.set()
            if not job.done.wait(wait):  # it stops within a part: a part longer than this is a surprise
                raise IndexRefused(f"the index build of {model_id!r} did not stop within {wait:g} s; try again", 503)
        shutil.rmtree(self.root / model_id, ignore_errors=True)
        self._changed(job)

    def wait(self, model_id: str, timeout: float) -> bool:
        """Wait for ``model_id``'s job to end (tests, the CLI); True if it ended."""
        with self._lock:
            job = self._jobs.get(model_id)
        return job is None or job.done.wait(timeout)

    def _changed(self, job: Job | None) -> None:
        if job is not None:
            job.version += 1
        for fn in self._listeners:
            fn()

    def _run(self, job: Job, net: model.Network) -> None:
        """The job's thread: wait for a slot and the model's folder, build into a hidden folder, rename it into
        place. A held-out build finds the store another worker process built meanwhile instead."""
        folder = self.root / job.model_id
        tmp = folder / f".building-{uuid.uuid4().hex[:8]}.zarr"
        try:
            _wait(lambda: self._slots.acquire(timeout=0.2), job, "the index job was cancelled before it started")
            try:
                folder.mkdir(parents=True, exist_ok=True)
                held = os.open(folder, os.O_RDONLY)  # flock(2) on the folder: one build a model over all workers
                try:
                    _wait(lambda: _try_flock(held), job, "the index job was cancelled before it started")
                    job.waiting, job.started = False, time.monotonic()
                    self._changed(job)
                    index = self._kept(job.model_id, net) if job.corpus.name == HELDOUT else None
                    if index is None:
                        self._build_into(job, net, tmp)
                        final = self._keep(job, tmp)
                        index = self._open(str(final), net)
                finally:
                    os.close(held)
            finally:
                self._slots.release()
        except model.Cancelled as e:
            self._end(job, "cancelled", str(e) or "cancelled", tmp)
        except (model.GatescopeError, OSError, ValueError) as e:  # the corpus's fault, or the disk's
            log.warning("gatescope: indexing %s for %r failed: %s", job.corpus.title, job.model_id, e)
            self._end(job, "failed", _sentence(e), tmp)
        except Exception as e:  # a bug in gatescope: logged whole, and the job still ends
            log.error("gatescope: indexing %s for %r failed", job.corpus.title, job.model_id, exc_info=e)
            self._end(job, "failed", f"internal error ({type(e).__name__}: {e})", tmp)
        else:
            job.docs, job.chars = job.total_docs or index.docs, job.total_chars or job.chars
            with self._lock:
                if self._jobs.get(job.model_id) is job:  # not removed meanwhile
                    self._ready[job.model_id] = (net, index)
            self._end(job, "ready", None, None)

    def _build_into(self, job: Job, net: model.Network, tmp: Path) -> None:
        (self._builder or build_index)(
            net,
            job.corpus.sources,
            str(tmp),
            name=job.model_id,
            per=job.corpus.per,
            carry=job.corpus.carry,
            scheduler=self.cluster.scheduler(),
            progress=lambda *p: self._progress(job, *p),
            stop=job.stop.is_set,
        )
        if job.stop.is_set():
            raise model.Cancelled("the index job was cancelled")

    def _progress(self, job: Job, docs: int, total_docs: int, chars: int, total_chars: int) -> None:
        job.docs, job.total_docs, job.chars, job.total_chars = docs, total_docs, chars, total_chars
        self._changed(job)

    def _keep(self, job: Job, tmp: Path) -> Path:
        """Rename the built store into place, replacing the model's older index, and write its note."""
        folder = tmp.parent
        final = folder / f"{slug(Path(job.corpus.name).stem)}.zarr"
        with self._lock:
            self._ready.pop(job.model_id, None)
        for old in folder.glob("*.zarr"):
            if not old.name.startswith("."):
                shutil.rmtree(old, ignore_errors=True)
        for old in folder.glob("*.json"):
            old.unlink(missing_ok=True)
        tmp.rename(final)
        note = {
            "name": job.corpus.name,
            "title": job.corpus.title,
            "notes": job.corpus.notes,
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        final.with_suffix(".json").write_text(json.dumps(note))
        return final

    def _end(self, job: Job, state: str, error: str | None, tmp: Path | None) -> None:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
        if job.cleanup is not None:
            job.cleanup()
        job.state, job.error, job.ended = state, error, time.monotonic()
        job.done.set()
        self._changed(job)

    def _open(self, path: str, net: model.Network) -> Any:
        return (self._opener or open_index)(path, net)

    # ---- finding kept indexes

    def _find(self, model_id: str) -> None:
        """Open the model's kept index (once per process and model); a bundled model without one starts its
        held-out build."""
        with self._lock:
            if model_id in self._looked or model_id in self._jobs:
                return
            self._looked.add(model_id)
        entry = self.registry.get(model_id)
        if entry is None or entry.net is None:
            return
        self._clean(self.root / model_id)  # what a build the process died in left
        index = self._kept(model_id, entry.net)
        stale = self._stale.pop(model_id, None)
        if index is not None:
            with self._lock:
                self._ready[model_id] = (entry.net, index)
            return
        if entry.origin == "bundled" and self.settings.index_bundled:
            corpus = heldout(model_id, entry.card, self.settings.heldout_chars)
            if corpus is not None:
                try:
                    self.start(model_id, corpus)
                    return  # built again: the page follows the build
                except IndexRefused as e:
                    log.warning("gatescope: the held-out index of %r was not started: %s", model_id, e)
        if stale is not None:  # an older gatescope's index, removed: the status says so and how to build one
            self.refuse(model_id, "index", stale)

    @staticmethod
    def _clean(folder: Path) -> None:
        """Remove the half-built stores a crash left in ``folder``, unless a build (in any worker) holds it."""
        if not folder.is_dir():
            return
        fd = os.open(folder, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return
        try:
            for stale in folder.glob(".building-*"):
                shutil.rmtree(stale, ignore_errors=True)
        finally:
            os.close(fd)

    def _kept(self, model_id: str, net: model.Network) -> Any | None:
        """The model's kept store, opened and checked against ``net``; a store of other weights (or another format
        version) is removed."""
        for path in sorted((self.root / model_id).glob("[!.]*.zarr")):
            try:
                return self._open(str(path), net)
            except model.FormatError as e:  # another network's (its weights changed), or another version's
                log.warning("gatescope: removed the index %s: %s", path, e)
                shutil.rmtree(path, ignore_errors=True)
                path.with_suffix(".json").unlink(missing_ok=True)
                from model.analysis.store import VERSION, VersionError

                if isinstance(e, VersionError):
                    self._stale[model_id] = (
                        f"the index kept for it ({path.name}) was written by another gatescope in format version "
                        f"{e.found} (this one reads version {VERSION}) and was removed: index the corpus again"
                    )
        return None

    def close(self, wait: float = 5.0) -> None:
        """Stop every job and close the local cluster (the lifespan's end). A job still in a part after ``wait``
        seconds is left to die with the process (its thread is a daemon): its half-built store is swept at the
        next start."""
        with self._lock:
            self._closed = True
            jobs = list(self._jobs.values())
        for job in jobs:
            job.stop.set()
        deadline = time.monotonic() + wait
        for job in jobs:
            job.done.wait(max(0.0, deadline - time.monotonic()))
        self.cluster.close()


def _try_flock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        time.sleep(0.2)  # another worker process builds this model's index: ask again, and see the stop meanwhile
        return False
    return True


def _wait(take: Callable[[], bool], job: Job, why: str) -> None:
    """Call ``take()`` until it says True; model.Cancelled once the job is stopped."""
    while not take():
        if job.stop.is_set():
            raise model.Cancelled(why)


def _sentence(e: BaseException) -> str:
    return str(e) or type(e).__name__


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _du(folder: Path) -> int:
    """Bytes the files under ``folder`` take."""
    if not folder.is_dir():
        return 0
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
