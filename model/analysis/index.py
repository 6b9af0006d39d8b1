"""Indexing a corpus: batched traces of every document, stored as float16 in Zarr, with exact per-unit statistics.

    idx = model.index(net, ["src/", "notes.jsonl"], "corpus.zarr")      # = build(...): an Index (store.py)

1. The driver reads the corpus a document at a time (corpus.py), tokenizes it and appends its ids to ``tokens``
   (bounded memory: only the document offsets stay in memory).
2. Runs: each document is traced from the zero state; with ``carry`` the state carries across documents inside
   segments of ``segment`` steps cut at document boundaries (a longer document is a segment of its own), reset at
   each segment start (for stream-trained models such as ``code``). A run is traced as one sequence.
3. Parts: consecutive runs whose activations fit PART_BYTES (a longer run is a part of its own). One task per part
   traces its runs together in rounds (``_rounds``: at most ``batch`` runs at once, a piece of each, TRACE_BYTES of
   trace a round, the states carried), spills the rows to disk as they come (spill.py), then writes
   act/<layer>/<gate>/<part> a shard at a time, and returns pass 1 of the part's exact statistics (unitstats.py: a
   few kB a unit), which the driver merges in part order; passes 2 and 3 (fine decile counts, histogram, deviations;
   decile-band samples) are a task per part each, reading the part back from the store.
   The parts depend on the corpus alone, so 1 or N workers write the same bytes.
4. Dask: a LocalCluster of ``workers`` processes (default 2) started for the call and closed after, or the cluster
   of ``scheduler`` (an address or a distributed.Client). ``scheduler="sync"`` runs the same tasks in this process.
"""

from __future__ import annotations

import datetime
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import Cancelled, InputError, UnknownTokenError
from ..network import Network, Spec
from ..tokenizer import Encoded, Tokenizer
from . import corpus as corpus_mod
from . import unitstats
from .shards import Rows
from .spill import Spill
from .store import ATTR, CHUNK_ROWS, INNER_ROWS, TOKEN_INNER, TOKEN_SHARD, VERSION, Index, fingerprint

#: A part's stored activations (float16, every recorded gate of every layer) stay under this. They wait on disk
#: (spill.py), not in memory, so a part can be large: it must hold many runs for its batches to be wide (the
#: standard library's .py files average 15,800 characters: a part of code's h and c holds ~17 of them), and few
#: enough for progress to move and N workers to share the work evenly. CPU seconds to index 2.1 M characters of
#: 134 stdlib files on code: parts of 64 MB 24.8 s (18 parts), 128 MB 22.6 (11), 256 MB 22.0 (5), 512 MB 21.5 (3).
PART_BYTES = 128 << 20
#: A batch's trace (the kept gates and the inputs of every layer, float32, padded) stays under this.
TRACE_BYTES = 128 << 20
#: Token ids buffered by the driver before they are appended to the store (whole token shards, bar the last).
FLUSH_STEPS = TOKEN_SHARD


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
    trace_bytes: int = 0  # TRACE_BYTES as the driver had it (the workers' own module may differ)


_NETS: dict[str, Network] = {}  # per worker process: the network of each job's fingerprint, built once


def _network(job: Job) -> Network:
    net = _NETS.get(job.fingerprint)
    if net is None:
        net = _NETS[job.fingerprint] = Network(Spec.from_dict(job.spec), job.params)
    return net


def _trace_part(
    net: Network, docs: list[Any], gates: tuple[str, ...], states: list[Any] | None = None
) -> list[list[dict[str, np.ndarray]]]:
    """The traces of a batch of runs, each a list of layers' {gate: (T, W)}, only ``gates`` kept, each run from
    its ``states`` entry (None: zeros): the one call that traces (compiled, float32, on one thread: a Dask worker
    is one process a core)."""
    return [tr.layers for tr in net.trace_batch(docs, probs=False, gates=gates, states=states)]


def _end_state(layers: list[dict[str, np.ndarray]]) -> list[tuple[np.ndarray, np.ndarray | None]]:
    """The state after a piece's last step (a forward network's, h and c kept): where its run's next piece starts."""
    return [(la["h"][-1], la["c"][-1] if "c" in la else None) for la in layers]


def _rounds(lengths: np.ndarray, batch: int, step_bytes: int, budget: int) -> list[list[tuple[int, int, int]]]:
    """Runs traced in pieces (a forward network), a round of pieces a trace_batch: (run, t0, t1) each. A round
    holds at most ``batch`` runs, each run's next piece of at most S steps (S: the padded round stays under
    ``budget``); a run keeps its row from round to round, its state carried, and a run that ends frees its row for
    the next (longest first). So a batch stays ``batch`` wide however long the runs: a run of 10,000 steps is not a
    batch of its own, and the order depends on the part alone (1 or N workers trace the same rounds)."""
    width = max(1, min(batch, len(lengths)))
    S = max(1, budget // (width * step_bytes))
    queue = np.argsort(-lengths, kind="stable").tolist()[::-1]  # popped from the end: longest first
    slots: list[tuple[int, int]] = []  # (run, its next step)
    rounds = []
    while queue or slots:
        while len(slots) < width and queue:
            slots.append((queue.pop(), 0))
        piece = [(r, t, min(t + S, int(lengths[r]))) for r, t in slots]
        rounds.append(piece)
        slots = [(r, t1) for r, _, t1 in piece if t1 < lengths[r]]
    return rounds


def _gate_widths(net: Network, gates: tuple[str, ...]) -> dict[str, int]:
    """Units of each recorded gate's rows: h is spec.width (P per direction with a projection), the others width."""
    return {g: net.spec.width if g == "h" else net.width for g in gates}


def _batches(lengths: np.ndarray, batch: int, step_bytes: int, budget: int) -> list[list[int]]:
    """Runs (indices) grouped for trace_batch: by length, at most ``batch`` each, padded size under TRACE_BYTES."""
    order = np.argsort(lengths, kind="stable")
    out: list[list[int]] = []
    cur: list[int] = []
    for r in order.tolist():
        if cur and (len(cur) >= batch or (len(cur) + 1) * int(lengths[r]) * step_bytes > budget):
            out.append(cur)
            cur = []
        cur.append(r)
    if cur:
        out.append(cur)
    return out


def _step_bytes(net: Network, gates: tuple[str, ...]) -> int:
    """Bytes a step of trace_batch holds while it runs: the kept gates of every layer in float32 and each layer's
    inputs (G*H wide)."""
    return 4 * net.num_layers * (len(gates) + 4) * net.width


def _docs(job: Job, inp: np.ndarray, at: list[tuple[int, int]]) -> list[Any]:
    """The runs at (start, length) within ``inp`` (ids or vectors) as documents trace_batch takes."""
    if job.kind == "text":
        return [Encoded(inp[s : s + n], [""] * n, []) for s, n in at]
    return [inp[s : s + n] for s, n in at]


def part_task(job: Job, part: int, runs: np.ndarray) -> dict[str, unitstats.Partial]:
    """Trace one part (runs: (R+1,) global step offsets of its runs), write act/<layer>/<gate>/<part> and return
    the part's partial statistics keyed "<layer>/<gate>"."""
    import zarr

    net = _network(job)
    group: Any = zarr.open_group(job.path, mode="r+")
    a, b = int(runs[0]), int(runs[-1])
    inp = np.asarray(group["tokens" if job.kind == "text" else "inputs"][a:b])
    if job.kind == "text":
        inp = inp.astype(np.int64)
    lengths, starts = np.diff(runs), runs[:-1] - a
    step = _step_bytes(net, tuple(job.gates))
    if net.direction == "forward":  # runs in pieces, their states carried: batches stay job.batch wide
        rounds = _rounds(lengths, job.batch, step, job.trace_bytes)
    else:  # a backward direction starts at a run's end: whole runs
        rounds = [[(r, 0, int(lengths[r])) for r in bt] for bt in _batches(lengths, job.batch, step, job.trace_bytes)]
    states: dict[int, Any] = {}
    with Spill(b - a) as spill:  # the part's rows on disk until every run is traced (spill.py)
        for rnd in rounds:
            docs = _docs(job, inp, [(int(starts[r]) + t0, t1 - t0) for r, t0, t1 in rnd])
            given = [states.pop(r, None) for r, _, _ in rnd] if states else None
            pieces = _trace_part(net, docs, tuple(job.gates), given)
            for (r, t0, t1), layers in zip(rnd, pieces):
                if t1 < lengths[r]:
                    states[r] = _end_state(layers)
                for k, la in enumerate(layers):
                    for g in job.gates:
                        spill.write(f"{k}/{g}", int(starts[r]) + t0, la[g])  # (t1 - t0, W)
        out: dict[str, unitstats.Partial] = {}
        for key in spill.keys():
            arr = _act_array(group, key, part, (b - a, spill.width(key)), min(CHUNK_ROWS, b - a))
            for r0, rows in spill.blocks(key, CHUNK_ROWS):  # a shard a write
                arr[r0 : r0 + len(rows)] = rows
                out[key] = unitstats.merge(out.get(key), unitstats.partial(rows, a + r0))
    return out


def _act_array(group: Any, key: str, part: int, shape: tuple[int, int], rows: int) -> Any:
    """act/<key>/<part>: shards of ``rows`` rows (what a task writes at once), inner chunks of INNER_ROWS."""
    return _sharded(group, f"act/{key}/{part}", shape, "float16", rows, INNER_ROWS)


def _sharded(group: Any, name: str, shape: tuple[int, ...], dtype: str, rows: int, inner: int) -> Any:
    """An uncompressed array of shards of ``rows`` rows made of inner chunks of ``inner`` rows (fewer when a shard
    is smaller; a shard is a whole number of inner chunks)."""
    inner = max(1, min(inner, rows))
    rows = -(-rows // inner) * inner
    return group.create_array(
        name,
        shape=shape,
        dtype=dtype,
        chunks=(inner, *shape[1:]),
        shards=(rows, *shape[1:]),
        compressors=None,
        fill_value=0,
    )


def _stored(job: Job, part: int, key: str) -> Iterator[tuple[int, np.ndarray]]:
    """A part's stored rows of one layer and gate, a chunk at a time: (row offset in the part, (n, W) float16)."""
    import zarr

    rows = Rows(zarr.open_group(job.path, mode="r")[f"act/{key}/{part}"])
    for r0 in range(0, rows.shape[0], CHUNK_ROWS):
        yield r0, rows.view(r0, min(r0 + CHUNK_ROWS, rows.shape[0]))  # the files mapped, no copy (shards.py)


def second_task(job: Job, part: int, plans: dict[str, unitstats.Plan]) -> dict[str, unitstats.Second]:
    """Pass 2 of a part per "<layer>/<gate>", read back from the store."""
    out: dict[str, unitstats.Second] = {}
    for key, pl in plans.items():
        got = None
        for _, rows in _stored(job, part, key):
            got = unitstats.merge_second(got, unitstats.second(rows, pl))
        assert got is not None
        out[key] = got
    return out


def band_task(job: Job, part: int, a: int, deciles: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Pass 3 of a part: its decile-band samples per "<layer>/<gate>", read back from the store."""
    out: dict[str, np.ndarray] = {}
    for key, d in deciles.items():
        got = None
        for r0, rows in _stored(job, part, key):
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
    group.attrs[ATTR] = {"version": VERSION, "state": "building"}  # replaced by the whole description at the end
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
    job = Job(str(out), net.spec.to_dict(), dict(net.params), fingerprint(net), gates, batch, kind, TRACE_BYTES)
    part_runs = [runs[cuts[p] : cuts[p + 1] + 1] for p in range(len(cuts) - 1)]
    chars_at = np.concatenate([[0], np.cumsum(doc_chars)])
    docs_at = np.searchsorted(doc_starts, part_starts)

    def report(done: list[int]) -> None:
        if progress is not None:
            d = int(sum(docs_at[p + 1] - docs_at[p] for p in done))
            c = int(sum(chars_at[docs_at[p + 1]] - chars_at[docs_at[p]] for p in done))
            progress(d, N, c, int(chars_at[-1]))

    bounded = net.spec.proj_size is None
    P = len(part_runs)
    with _Runner(scheduler, workers, job) as run:
        merged: dict[str, unitstats.Partial] = {}
        seconds: dict[str, unitstats.Second] = {}
        bands: dict[str, np.ndarray] = {}

        def fold1(part: dict[str, unitstats.Partial]) -> None:
            for key, pa in part.items():
                merged[key] = unitstats.merge(merged.get(key), pa)

        def fold2(part: dict[str, unitstats.Second]) -> None:
            for key, sec in part.items():
                seconds[key] = unitstats.merge_second(seconds.get(key), sec)

        def fold3(part: dict[str, np.ndarray]) -> None:
            for key, got in part.items():
                bands[key] = unitstats.merge_bands(bands.get(key), got)

        run.map(part_task, [(p, r) for p, r in enumerate(part_runs)], fold1, report, stop)
        plans = {key: unitstats.plan(pa, key.split("/")[1], bounded) for key, pa in merged.items()}
        run.map(second_task, [(p, plans) for p in range(P)], fold2, None, stop)
        summary = {key: unitstats.finish(merged[key], plans[key], seconds[key]) for key in merged}
        deciles = {key: s["deciles"] for key, s in summary.items()}
        run.map(band_task, [(p, int(part_starts[p]), deciles) for p in range(P)], fold3, None, stop)
    for key, s in summary.items():
        s["band_pos"] = unitstats.sorted_bands(bands[key])
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
    """The gates to record, in the network's order: always h, c when the cell has one (a GRU's or an RNN's
    "c" is dropped: the default ("h", "c") fits every cell), and the others asked; an unknown gate is refused."""
    asked = [gates] if isinstance(gates, str) else list(gates)
    unknown = [g for g in asked if g not in net.gates and g != "c"]
    if unknown:
        raise InputError(f"no gate {unknown[0]!r} in a {net.cell} network: it has {', '.join(net.gates)}")
    want = set(asked) | {"h"}
    return tuple(g for g in net.gates if g in want)


def _read(
    net: Network, kind: str, files: Any, items: Any, per: str, group: Any
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Stream the corpus into ``tokens`` (or ``inputs``): the documents' step offsets, sources, lines and sizes."""
    D = net.spec.input_size
    if kind == "text":
        arr = _sharded(group, "tokens", (0,), "int32", TOKEN_SHARD, TOKEN_INNER)
    else:
        arr = _sharded(group, "inputs", (0, D), "float32", CHUNK_ROWS, INNER_ROWS)
    table = _char_table(net.tokenizer) if net.tokenizer is not None else None
    starts, src, line, size = [0], [], [], []
    pending: list[np.ndarray] = []
    held = 0
    for doc in corpus_mod.documents(files, items, per):
        if kind == "text":
            if doc.text is None:
                raise InputError(f"{corpus_mod.where(files, doc)}: a text model needs text, not a series")
            assert net.tokenizer is not None
            try:
                enc = _encode(net.tokenizer, doc.text, table)
            except UnknownTokenError as e:
                raise InputError(f"{corpus_mod.where(files, doc, e.positions[0])}: {e}") from None
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
            buf = np.concatenate(pending)
            n = len(buf) // FLUSH_STEPS * FLUSH_STEPS  # whole shards: none is read back and written again
            arr.append(buf[:n])
            pending, held = [buf[n:]], len(buf) - n
    if pending:
        arr.append(np.concatenate(pending))
    if len(src) == 0:
        raise InputError("the corpus holds no documents (every file or line is empty)")
    return np.asarray(starts, np.int64), np.asarray(src), np.asarray(line), np.asarray(size, np.int64)


def _char_table(tok: Any) -> np.ndarray | None:
    """For a plain character tokenizer: each code point's token id (-1: unknown), to encode with one gather."""
    if type(tok) is not Tokenizer or tok.kind != "char" or not any(len(v) == 1 for v in tok.vocab):
        return None
    table = np.full(max(ord(v) for v in tok.vocab if len(v) == 1) + 1, -1, np.int64)
    for k in reversed(range(len(tok.vocab))):  # the first entry of a repeated token wins, as the tokenizer's
        if len(tok.vocab[k]) == 1:  # a longer entry (the unknown one) is never a character
            table[ord(tok.vocab[k])] = k
    return table


def _encode(tok: Any, text: str, table: np.ndarray | None) -> Encoded:
    """tok.encode(text), through the code-point table where there is one (the same ids and the same refusals)."""
    if table is None:
        return tok.encode(text)  # type: ignore[no-any-return]
    codes = np.frombuffer(text.encode("utf-32-le"), np.uint32)
    ids = table[np.minimum(codes, len(table) - 1)]
    ids[codes >= len(table)] = -1
    if (ids < 0).any():
        return tok.encode(text)  # type: ignore[no-any-return]  # unknown characters: the tokenizer's own handling
    return Encoded(ids, [], [])


#: Dask settings of the LocalClusters gatescope starts (with dashboard_address="127.0.0.1:0"): no statistical
#: profiler in the workers (it samples every thread's stack every 10 ms; a task here is one long compiled call), no
#: event-loop health checks, and no HTTP routes (Dask's scheduler listens for HTTP even without its dashboard, on
#: 127.0.0.1:8787 by default, a port a user's own Dask dashboard wants; here on a free port, serving nothing).
QUIET: dict[str, Any] = {
    "distributed.scheduler.http.routes": [],
    "distributed.worker.http.routes": [],
    "distributed.worker.profile.enabled": False,
    "distributed.admin.system-monitor.gil.enabled": False,
    "distributed.admin.tick.limit": "1h",
}

_WARM: set[str] = set()  # per process: the fingerprints whose kernels warm_task has loaded


def warm_task(job: Job) -> None:
    """Load (or compile) this process's kernels once, before a worker's first part: a fresh Dask worker otherwise
    pays numba's loading of every kernel in its first part's time (1.6-3x one process's, over 600 k characters)."""
    if job.fingerprint in _WARM:
        return
    net = _network(job)
    if job.kind == "text":
        docs: list[Any] = [Encoded(np.zeros(3, np.int64), [""] * 3, []), Encoded(np.zeros(2, np.int64), [""] * 2, [])]
    else:
        docs = [np.zeros((3, net.spec.input_size), np.float32), np.zeros((2, net.spec.input_size), np.float32)]
    traced = _trace_part(net, docs, tuple(job.gates))
    rows = np.asarray(traced[0][0]["h"], np.float16)
    for gate in ("h", "c"):
        pa = unitstats.partial(rows, 0)
        pl = unitstats.plan(pa, gate)
        unitstats.bands(rows, 0, unitstats.finish(pa, pl, unitstats.second(rows, pl))["deciles"])
    _WARM.add(job.fingerprint)


class _Runner:
    """Runs tasks in this process (``scheduler="sync"``) or on a Dask cluster: a LocalCluster of processes
    started here and closed after (``scheduler=None``), or the cluster at an address or behind a Client. The job
    (the network's spec and weights) goes to each worker once."""

    def __init__(self, scheduler: Any, workers: int | None, job: Job) -> None:
        self.job = job
        self._cluster: Any = None
        self._client: Any = None
        self._own_client = False
        self._job: Any = job
        if scheduler == "sync":
            return
        from distributed import Client, LocalCluster

        if workers is not None and workers < 1:
            raise InputError(f"workers must be at least 1, got {workers}")
        if scheduler is None:
            import dask

            with dask.config.set(QUIET):
                self._cluster = LocalCluster(
                    n_workers=workers or 2,
                    threads_per_worker=1,
                    processes=True,
                    dashboard_address="127.0.0.1:0",
                    host="127.0.0.1",
                )
            self._client, self._own_client = Client(self._cluster), True
        elif isinstance(scheduler, Client):
            self._client = scheduler
        elif isinstance(scheduler, str):
            try:
                self._client, self._own_client = Client(scheduler, timeout=10), True
            except (OSError, TimeoutError) as e:
                raise InputError(f"no Dask scheduler answers at {scheduler}: {e}") from None
        else:
            raise InputError(f"scheduler must be a Dask address, a distributed.Client or 'sync', not {scheduler!r}")

    def __enter__(self) -> _Runner:
        if self._client is not None:
            self._job = self._client.scatter(self.job, broadcast=True, hash=False)
            workers = list(self._client.scheduler_info().get("workers", {}))
            warm = [self._client.submit(warm_task, self._job, workers=[w], pure=False) for w in workers]
            self._client.gather(warm)  # each worker's kernels loaded before the first part (not in its timing)
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._own_client:
            self._client.close()
        if self._cluster is not None:
            self._cluster.close()

    def map(
        self,
        fn: Callable[..., Any],
        args: list[tuple[Any, ...]],
        fold: Callable[[Any], None],
        report: Callable[[list[int]], None] | None,
        stop: Callable[[], bool] | None,
    ) -> None:
        """fold(fn(job, *a)) for each a, in the order of ``args`` (a result waits only for those before it, and is
        let go once folded); ``report(done parts)`` as each finishes."""
        done: list[int] = []
        if self._client is None:
            for p, a in enumerate(args):
                if stop is not None and stop():
                    raise Cancelled(f"stopped after {p} of {len(args)} parts")
                fold(fn(self.job, *a))
                done.append(p)
                if report is not None:
                    report(done)
            return
        from distributed import as_completed

        futures = [self._client.submit(fn, self._job, *a, pure=False) for a in args]
        where = {f.key: p for p, f in enumerate(futures)}
        waiting: dict[int, Any] = {}
        nxt = 0
        try:
            for f in as_completed(futures):
                if stop is not None and stop():
                    raise Cancelled(f"stopped after {len(done)} of {len(args)} parts")
                p = where[f.key]
                waiting[p] = f.result()  # raises the task's own error
                f.release()  # the worker lets go of the result
                done.append(p)
                if report is not None:
                    report(done)
                while nxt in waiting:
                    fold(waiting.pop(nxt))
                    nxt += 1
        finally:
            self._client.cancel([f for f in futures if f.status != "finished"])
