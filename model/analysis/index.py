"""Indexing a corpus: batched traces of every document, stored as float16 in Zarr, with exact per-unit statistics.

    idx = model.index(net, ["src/", "notes.jsonl"], "corpus.zarr")      # = build(...): an Index (store.py)

1. The driver reads the corpus a document at a time (corpus.py), tokenizes it and appends its ids to ``tokens``
   (bounded memory: only the document offsets stay in memory).
2. Runs: each document is traced from the zero state; with ``carry`` the state carries across documents inside
   segments of ``segment`` steps cut at document boundaries (a longer document is a segment of its own), reset at
   each segment start (for stream-trained models such as ``code``). A run is traced as one sequence.
3. Parts: consecutive runs whose activations fit PART_BYTES (a longer run is a part of its own). One task per part
   traces its runs in batches (sorted by length, at most ``batch`` runs and TRACE_BYTES of trace each), writes
   act/<layer>/<gate>/<part> itself, and returns the part's exact partial statistics (unitstats.py), which the
   driver merges; a second task per part samples the decile bands once the deciles are known.
   The parts depend on the corpus alone, so 1 or N workers write the same bytes.
4. Dask: a LocalCluster of ``workers`` processes (default 2) started for the call and closed after, or the cluster
   of ``scheduler`` (an address or a distributed.Client). ``scheduler="sync"`` runs the same tasks in this process.
"""

from __future__ import annotations

import datetime
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import Cancelled, InputError
from ..network import Network, Spec
from ..tokenizer import Encoded
from . import corpus as corpus_mod
from . import unitstats
from .store import ATTR, CHUNK_ROWS, VERSION, Index, fingerprint

#: A part's stored activations (float16, every recorded gate of every layer) stay under this.
PART_BYTES = 64 << 20
#: A batch's trace (every gate of every layer, float32, padded) stays under this.
TRACE_BYTES = 128 << 20
#: Token ids buffered by the driver before they are appended to the store.
FLUSH_STEPS = 1 << 20


@dataclass
class Job:
    """What every task needs to know, sent to each worker once."""

    path: str
    spec: dict[str, Any]
    params: dict[str, np.ndarray]
    fingerprint: str
    gates: tuple[str, ...]
    batch: int
    kind: str


_NETS: dict[str, Network] = {}  # per worker process: the network of each job's fingerprint, built once


def _network(job: Job) -> Network:
    net = _NETS.get(job.fingerprint)
    if net is None:
        net = _NETS[job.fingerprint] = Network(Spec.from_dict(job.spec), job.params)
    return net


def _trace_part(net: Network, docs: list[Any]) -> list[list[dict[str, np.ndarray]]]:
    """The traces of a batch of runs, each a list of layers' {gate: (T, W)}: the one call that traces."""
    return [tr.layers for tr in net.trace_batch(docs, probs=False)]


def _gate_widths(net: Network, gates: tuple[str, ...]) -> dict[str, int]:
    """Units of each recorded gate's rows: h is spec.width (P per direction with a projection), the others width."""
    return {g: net.spec.width if g == "h" else net.width for g in gates}


def _batches(lengths: np.ndarray, batch: int, step_bytes: int) -> list[list[int]]:
    """Runs (indices) grouped for trace_batch: by length, at most ``batch`` each, padded size under TRACE_BYTES."""
    order = np.argsort(lengths, kind="stable")
    out: list[list[int]] = []
    cur: list[int] = []
    for r in order.tolist():
        if cur and (len(cur) >= batch or (len(cur) + 1) * int(lengths[r]) * step_bytes > TRACE_BYTES):
            out.append(cur)
            cur = []
        cur.append(r)
    if cur:
        out.append(cur)
    return out


def part_task(job: Job, part: int, runs: np.ndarray) -> dict[str, unitstats.Partial]:
    """Trace one part (runs: (R+1,) global step offsets of its runs), write its activations, return its partials
    keyed "<layer>/<gate>"."""
    import zarr

    net = _network(job)
    group: Any = zarr.open_group(job.path, mode="r+")
    a, b = int(runs[0]), int(runs[-1])
    if job.kind == "text":
        ids = np.asarray(group["tokens"][a:b], np.int64)
    else:
        x = np.asarray(group["inputs"][a:b], np.float32)
    lengths = np.diff(runs)
    starts = runs[:-1] - a
    bufs: dict[str, np.ndarray] = {}
    step_bytes = 4 * net.num_layers * (len(net.gates) + 4) * net.width
    for batch in _batches(lengths, job.batch, step_bytes):
        if job.kind == "text":
            docs: list[Any] = [
                Encoded(ids[starts[r] : starts[r] + lengths[r]], [""] * int(lengths[r]), []) for r in batch
            ]
        else:
            docs = [x[starts[r] : starts[r] + lengths[r]] for r in batch]
        for r, layers in zip(batch, _trace_part(net, docs)):
            for k, la in enumerate(layers):
                for g in job.gates:
                    rows: np.ndarray = la[g]
                    key = f"{k}/{g}"
                    if key not in bufs:
                        bufs[key] = np.empty((b - a, rows.shape[1]), np.float16)
                    bufs[key][starts[r] : starts[r] + lengths[r]] = rows
    out = {}
    for key, buf in bufs.items():
        arr = group.create_array(
            f"act/{key}/{part}",
            shape=buf.shape,
            dtype="float16",
            chunks=(min(CHUNK_ROWS, len(buf)), buf.shape[1]),
            compressors=None,
            fill_value=0,
            overwrite=True,
        )
        arr[:] = buf
        out[key] = unitstats.partial(buf, a)
    return out


def band_task(job: Job, part: int, a: int, deciles: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """A part's decile-band samples per "<layer>/<gate>", read back from the store."""
    import zarr

    group: Any = zarr.open_group(job.path, mode="r")
    out: dict[str, np.ndarray] = {}
    for key, d in deciles.items():
        arr = group[f"act/{key}/{part}"]
        got = None
        for r0 in range(0, arr.shape[0], CHUNK_ROWS):
            rows = np.asarray(arr[r0 : r0 + CHUNK_ROWS])
            got = unitstats.merge_bands(got, unitstats.bands(rows, a + r0, d))
        assert got is not None
        out[key] = got
    return out


def _segments(doc_starts: np.ndarray, segment: int) -> np.ndarray:
    """Segment starts: whole documents, each segment at most ``segment`` steps unless one document is longer."""
    cuts = [int(doc_starts[0])]
    for d in range(1, len(doc_starts)):
        end = int(doc_starts[d])
        if end - cuts[-1] > segment and int(doc_starts[d - 1]) > cuts[-1]:
            cuts.append(int(doc_starts[d - 1]))  # close the segment before document d-1, which would overflow it
    cuts.append(int(doc_starts[-1]))
    return np.asarray(cuts, np.int64)


def _parts(runs: np.ndarray, max_steps: int) -> list[int]:
    """Indices into ``runs`` where parts start (and the end): whole runs, at most max_steps a part unless one run
    is longer."""
    cuts = [0]
    for r in range(1, len(runs)):
        if runs[r] - runs[cuts[-1]] > max_steps and r - 1 > cuts[-1]:
            cuts.append(r - 1)
    cuts.append(len(runs) - 1)
    return cuts


def build(
    net: Network,
    corpus: Any,
    out: Any,
    *,
    name: str | None = None,
    per: str = "file",
    carry: bool = False,
    segment: int = 4096,
    gates: Iterable[str] = ("h", "c"),
    batch: int = 64,
    scheduler: Any = None,
    workers: int | None = None,
    progress: Callable[[int, int, int, int], None] | None = None,
    stop: Callable[[], bool] | None = None,
) -> Index:
    """Index ``corpus`` (paths, folders, globs, .jsonl, a list of texts or (T, D) arrays) through ``net`` into the
    Zarr group ``out`` and open it. See the module's docstring; ``progress(done_docs, docs, done_chars, chars)``
    is called as parts finish, ``stop()`` returning True cancels (Cancelled)."""
    import zarr

    t0 = time.perf_counter()
    gates = _check_gates(net, gates)
    if batch < 1:
        raise InputError(f"batch must be at least 1, got {batch}")
    if segment < 1:
        raise InputError(f"segment must be at least 1, got {segment}")
    kind = "text" if net.input == "text" else "vector"
    files, items = corpus_mod.resolve(corpus, vectors=kind == "vector")
    group = zarr.open_group(str(out), mode="w")
    doc_starts, doc_src, doc_line, doc_chars = _read(net, kind, files, items, per, group)
    S, N = int(doc_starts[-1]), len(doc_src)
    runs = _segments(doc_starts, segment) if carry else doc_starts
    widths = _gate_widths(net, gates)
    step_bytes = 2 * net.num_layers * sum(widths.values())
    cuts = _parts(runs, max(1, PART_BYTES // step_bytes))
    part_starts = runs[cuts]
    for k in range(net.num_layers):
        for g in gates:
            group.require_group(f"act/{k}/{g}")
    job = Job(str(out), net.spec.to_dict(), dict(net.params), fingerprint(net), gates, batch, kind)
    part_runs = [runs[cuts[p] : cuts[p + 1] + 1] for p in range(len(cuts) - 1)]
    chars_at = np.concatenate([[0], np.cumsum(doc_chars)])
    docs_at = np.searchsorted(doc_starts, part_starts)

    def report(done: list[int]) -> None:
        if progress is not None:
            d = int(sum(docs_at[p + 1] - docs_at[p] for p in done))
            c = int(sum(chars_at[docs_at[p + 1]] - chars_at[docs_at[p]] for p in done))
            progress(d, N, c, int(chars_at[-1]))

    with _Runner(scheduler, workers, job) as run:
        partials = run.map(part_task, [(p, r) for p, r in enumerate(part_runs)], report, stop)
        merged: dict[str, unitstats.Partial] = {}
        for part in partials:  # in part order
            for key, pa in part.items():
                merged[key] = unitstats.merge(merged.get(key), pa)
        bounded = net.spec.proj_size is None
        summary = {key: unitstats.summarize(pa, key.split("/")[1], bounded) for key, pa in merged.items()}
        deciles = {key: s["deciles"] for key, s in summary.items()}
        bands_parts = run.map(band_task, [(p, int(part_starts[p]), deciles) for p in range(len(part_runs))], None, stop)
    for key, s in summary.items():
        got = None
        for bp in bands_parts:
            got = unitstats.merge_bands(got, bp[key])
        assert got is not None
        s["band_pos"] = unitstats.sorted_bands(got)
        for stat, value in s.items():
            group.create_array(f"stats/{key}/{stat}", data=np.ascontiguousarray(value), overwrite=True)
    _array(group, "docs/start", doc_starts)
    _array(group, "docs/source", doc_src.astype(np.int32))
    _array(group, "docs/line", doc_line.astype(np.int64))
    _array(group, "parts/start", part_starts.astype(np.int64))
    tok = net.tokenizer
    vocab = None if tok is None else (tok.vocab_display() or list(tok.vocab))
    group.attrs[ATTR] = {
        "version": VERSION,
        "model": name or "model",
        "fingerprint": job.fingerprint,
        "cell": net.cell,
        "layers": net.num_layers,
        "width": net.spec.width,
        "gates": list(gates),
        "kind": kind,
        "steps": S,
        "docs": N,
        "parts": len(part_runs),
        "chars": int(chars_at[-1]),
        "carry": bool(carry),
        "segment": int(segment) if carry else None,
        "per": per,
        "sources": corpus_mod.sources(files, items),
        "vocab": vocab,
        "tokenizer": None if tok is None else tok.describe()["tokenizer"],
        "bins": unitstats.BINS,
        "top_k": unitstats.TOP_K,
        "band_samples": unitstats.BAND_SAMPLES,
        "seconds": round(time.perf_counter() - t0, 3),
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }
    return Index.open(out)


def _array(group: Any, name: str, data: np.ndarray) -> None:
    group.create_array(name, data=np.ascontiguousarray(data), overwrite=True)


def _check_gates(net: Network, gates: Iterable[str]) -> tuple[str, ...]:
    """The gates to record, in the network's order: always h, and those asked that the cell has (c when
    it has none is dropped silently only when it is the default; any other unknown gate is refused)."""
    asked = [gates] if isinstance(gates, str) else list(gates)
    unknown = [g for g in asked if g not in net.gates and g != "c"]
    if unknown:
        raise InputError(f"no gate {unknown[0]!r} in a {net.cell} network: it has {', '.join(net.gates)}")
    if "c" in asked and "c" not in net.gates and list(asked) != ["h", "c"]:
        raise InputError(f"a {net.cell} network has no c: it has {', '.join(net.gates)}")
    want = set(asked) | {"h"}
    return tuple(g for g in net.gates if g in want)


def _read(
    net: Network, kind: str, files: Any, items: Any, per: str, group: Any
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Stream the corpus into ``tokens`` (or ``inputs``): the documents' step offsets, sources, lines and sizes."""
    D = net.spec.input_size
    if kind == "text":
        arr = group.create_array("tokens", shape=(0,), dtype="int32", chunks=(FLUSH_STEPS,))
    else:
        arr = group.create_array("inputs", shape=(0, D), dtype="float32", chunks=(CHUNK_ROWS, D))
    starts, src, line, size = [0], [], [], []
    pending: list[np.ndarray] = []
    held = 0
    for doc in corpus_mod.documents(files, items, per):
        if kind == "text":
            if doc.text is None:
                raise InputError(f"{corpus_mod.where(files, doc)}: a text model needs text, not a series")
            assert net.tokenizer is not None
            try:
                enc = net.tokenizer.encode(doc.text)
            except InputError as e:
                raise InputError(f"{corpus_mod.where(files, doc)}: {e}") from None
            if not len(enc.ids):
                continue
            x = enc.ids.astype(np.int32)
        else:
            if doc.array is None:
                raise InputError(f"{corpus_mod.where(files, doc)}: a vector model needs a series (.csv, .npy)")
            try:
                x = net.check_vectors(doc.array).astype(np.float32)
            except InputError as e:
                raise InputError(f"{corpus_mod.where(files, doc)}: {e}") from None
        pending.append(x)
        held += len(x)
        starts.append(starts[-1] + len(x))
        src.append(doc.source)
        line.append(doc.line)
        size.append(doc.size)
        if held >= FLUSH_STEPS:
            arr.append(np.concatenate(pending))
            pending, held = [], 0
    if pending:
        arr.append(np.concatenate(pending))
    if len(src) == 0:
        raise InputError("the corpus holds no documents (every file or line is empty)")
    return np.asarray(starts, np.int64), np.asarray(src), np.asarray(line), np.asarray(size, np.int64)


class _Runner:
    """Runs tasks in this process (``scheduler="sync"``) or on Dask, results in submission order."""

    def __init__(self, scheduler: Any, workers: int | None, job: Job) -> None:
        self.scheduler, self.workers, self.job = scheduler, workers, job

    def __enter__(self) -> _Runner:
        return self

    def __exit__(self, *exc: Any) -> None:
        pass

    def map(
        self,
        fn: Callable[..., Any],
        args: list[tuple[Any, ...]],
        report: Callable[[list[int]], None] | None,
        stop: Callable[[], bool] | None,
    ) -> list[Any]:
        out = []
        done: list[int] = []
        for p, a in enumerate(args):
            if stop is not None and stop():
                raise Cancelled(f"stopped after {p} of {len(args)} parts")
            out.append(fn(self.job, *a))
            done.append(p)
            if report is not None:
                report(done)
        return out
