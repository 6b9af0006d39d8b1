"""The corpus index on disk, and its reader: a Zarr v3 group (a folder, or any URL zarr.open_group accepts).

    idx = Index.open("code.zarr", net)        # FormatError if it is not an index, or of another network
    idx.rows(0, "c", 1000, 2000)              # (1000, W) float32: layer 0's c over global steps 1000..1999
    idx.stats(0, "h").top_pos[17]             # unit 17's 256 highest steps
    idx.context(pos, 0, "h", 17)              # the snippet around a step, coloured by the unit

Layout (``attrs["gatescope_index"]`` describes it: version, model, fingerprint, cell, layers, width, gates, kind,
steps S, docs N, parts P, chars, carry, segment, per, sources, vocab, bins, top_k, band_samples, seconds, created):

    docs/start (N+1,) int64   global step of each document's first step; start[N] == S
    docs/source (N,) int32    its file, an index into attrs sources;  docs/line (N,) int64  its line (per="line")
    parts/start (P+1,) int64  global step of each part's first step (a part: whole consecutive documents)
    tokens (S,) int32         token ids (text models)  |  inputs (S, D) float32 (vector models); shards of
                              2**20 steps (inputs: 65536) of inner chunks of 4096 (inputs: 1024)
    act/<layer>/<gate>/<part> (S_p, W) float16, uncompressed: shards of up to 65536 rows (a file each), each
        holding inner chunks of up to 1024 rows (the sharding codec): a snippet reads a 256 kB chunk (W = 128),
        not the whole 16 MB shard; a whole-store pass (a probe, the build's passes 2 and 3) reads shards
    stats/<layer>/<gate>/<name>  per unit, from the stored float16 values (model/analysis/unitstats.py):
        mean std min max low high (W,) · edges (W, bins+1) · hist (W, bins) · top_pos bottom_pos (W, K) int64
        top_val bottom_val (W, K) float32 · deciles (W, 11) · band_pos (W, 10, band_samples) int64
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import FormatError, InputError
from .shards import Rows

if TYPE_CHECKING:
    from ..network import Network

#: The layout's version; a reader refuses any other (2: activations and tokens sharded into small inner chunks).
VERSION = 2
#: The attribute that marks a Zarr group as a gatescope index.
ATTR = "gatescope_index"
#: Rows of an activation shard (a file; what a whole-store pass reads at once).
CHUNK_ROWS = 65536
#: Rows of an activation's inner chunk (what a snippet reads: the dashboard's ~40 contexts read ~40 of them).
INNER_ROWS = 1024
#: Steps of a token shard, and of its inner chunk.
TOKEN_SHARD, TOKEN_INNER = 1 << 20, 4096


class VersionError(FormatError):
    """An index written in another layout version (``found``; an older gatescope's): it must be built again."""

    def __init__(self, message: str, found: Any) -> None:
        super().__init__(message)
        self.found = found


def fingerprint(net: Network) -> str:
    """sha256 over the spec (JSON, keys sorted) and every weight's name and bytes (names sorted): 16 hex digits."""
    h = hashlib.sha256(json.dumps(net.spec.to_dict(), sort_keys=True, default=str).encode())
    for name in sorted(net.params):
        h.update(name.encode())
        h.update(np.ascontiguousarray(net.params[name], np.float32).tobytes())
    return h.hexdigest()[:16]


@dataclass
class Stats:
    """A layer and gate's per-unit statistics (W units), as stored under stats/<layer>/<gate>/."""

    mean: np.ndarray  # (W,) float64
    std: np.ndarray  # (W,)
    min: np.ndarray  # (W,)
    max: np.ndarray  # (W,)
    low: np.ndarray  # (W,) fraction below lo (NaN for unbounded gates)
    high: np.ndarray  # (W,) fraction above hi
    edges: np.ndarray  # (W, bins+1)
    hist: np.ndarray  # (W, bins) int64
    top_pos: np.ndarray  # (W, K) int64, -1 pads
    top_val: np.ndarray  # (W, K) float32
    bottom_pos: np.ndarray  # (W, K) int64
    bottom_val: np.ndarray  # (W, K) float32
    deciles: np.ndarray  # (W, 11)
    band_pos: np.ndarray  # (W, 10, s) int64, -1 pads


STAT_NAMES = tuple(f.name for f in fields(Stats))


class Index:
    """A corpus index, read lazily: arrays come off the store as they are asked for."""

    def __init__(self, group: Any, path: str) -> None:
        self._group = group
        self.path = path
        self.info: dict[str, Any] = dict(group.attrs[ATTR])
        self.doc_starts: np.ndarray = np.asarray(group["docs/start"][:], np.int64)
        self._sources: np.ndarray = np.asarray(group["docs/source"][:], np.int64)
        self._lines: np.ndarray = np.asarray(group["docs/line"][:], np.int64)
        self.part_starts: np.ndarray = np.asarray(group["parts/start"][:], np.int64)
        self._arrays: dict[tuple[int, str, int], Rows] = {}
        self._inputs: Rows | None = None
        self._stats: dict[tuple[int, str], Stats] = {}

    @classmethod
    def open(cls, path: Any, net: Network | None = None) -> Index:
        """The index at ``path``; FormatError when it is not one (or another version), or, with ``net``, when it
        was built from other weights."""
        import zarr

        try:
            group = zarr.open_group(str(path), mode="r")
        except (FileNotFoundError, ValueError, KeyError, TypeError) as e:
            raise FormatError(f"{path!s} is not a gatescope index (no Zarr group there: {e})") from None
        info = group.attrs.get(ATTR)
        if not isinstance(info, dict):
            raise FormatError(f"{path!s} is a Zarr group but not a gatescope index (no {ATTR} attribute)")
        if info.get("version") != VERSION:
            raise VersionError(
                f"{path!s} is a version {info.get('version')} index; this gatescope reads version {VERSION} "
                "only: build it again (gatescope index MODEL CORPUS... --out DIR, or model.index(net, corpus, out))",
                info.get("version"),
            )
        if info.get("state") == "building" or "docs/start" not in group or "parts/start" not in group:
            raise FormatError(f"{path!s} is an unfinished index (its build did not complete: build it again)")
        if net is not None and info.get("fingerprint") != fingerprint(net):
            raise FormatError(
                f"{path!s} indexes other weights (fingerprint {info.get('fingerprint')}, this network's "
                f"{fingerprint(net)}): index the corpus again with this model"
            )
        return cls(group, str(path))

    # What it holds ---------------------------------------------------------------------
    @property
    def steps(self) -> int:
        return int(self.info["steps"])

    @property
    def docs(self) -> int:
        return int(self.info["docs"])

    @property
    def layers(self) -> int:
        return int(self.info["layers"])

    @property
    def width(self) -> int:
        return int(self.info["width"])

    @property
    def gates(self) -> list[str]:
        return list(self.info["gates"])

    @property
    def kind(self) -> str:
        return str(self.info["kind"])

    @property
    def vocab(self) -> list[str] | None:
        v = self.info.get("vocab")
        return None if v is None else list(v)

    def __repr__(self) -> str:
        i = self.info
        return f"Index({self.path!r}, model={i['model']!r}, docs={self.docs}, steps={self.steps}, gates={self.gates})"

    # Checks ------------------------------------------------------------------------------
    def _check(self, layer: int, gate: str) -> None:
        if not isinstance(layer, (int, np.integer)) or not 0 <= layer < self.layers:
            raise InputError(f"no layer {layer!r}: the index has layers 0..{self.layers - 1}")
        if gate not in self.gates:
            raise InputError(f"no gate {gate!r} in the index: it holds {', '.join(self.gates)}")

    def _range(self, a: int, b: int | None) -> tuple[int, int]:
        b = self.steps if b is None else b
        if not (0 <= a <= b <= self.steps):
            raise InputError(f"steps {a}..{b} are outside the index's 0..{self.steps}")
        return int(a), int(b)

    def _check_doc(self, doc: int) -> int:
        if not isinstance(doc, (int, np.integer)) or not 0 <= doc < self.docs:
            raise InputError(f"no document {doc!r}: the index holds documents 0..{self.docs - 1}")
        return int(doc)

    # Documents -----------------------------------------------------------------------------
    def doc_of(self, pos: Any) -> np.ndarray:
        """The document of each global step (an array like ``pos``)."""
        p = np.asarray(pos, np.int64)
        if p.size and (p.min() < 0 or p.max() >= self.steps):
            raise InputError(f"steps outside the index's 0..{self.steps - 1}")
        return np.searchsorted(self.doc_starts, p, side="right") - 1

    def source_of(self, doc: int) -> dict[str, Any]:
        """{"source": the file's name, "line": the document's line in it (0 for a document per file)}."""
        d = self._check_doc(doc)
        return {"source": self.info["sources"][int(self._sources[d])], "line": int(self._lines[d])}

    # Activations -------------------------------------------------------------------------------
    def _act(self, layer: int, gate: str, part: int) -> Rows:
        """act/<layer>/<gate>/<part>'s rows (shards.py: read from the files of a local store)."""
        key = (layer, gate, part)
        if key not in self._arrays:
            self._arrays[key] = Rows(self._group[f"act/{layer}/{gate}/{part}"])
        return self._arrays[key]

    def _input_rows(self) -> Rows:
        """The rows of ``tokens`` (text models) or ``inputs`` (vector models)."""
        if self._inputs is None:
            self._inputs = Rows(self._group["tokens" if self.kind == "text" else "inputs"])
        return self._inputs

    def gate_width(self, layer: int, gate: str) -> int:
        """Units of a gate's rows (``width``; a projected LSTM's c and m are wider than its h)."""
        self._check(layer, gate)
        return int(self._group[f"stats/{layer}/{gate}/mean"].shape[0])

    def rows(self, layer: int, gate: str, a: int, b: int) -> np.ndarray:
        """(b-a, W) float32: a gate's values over global steps a..b-1, across parts."""
        self._check(layer, gate)
        a, b = self._range(a, b)
        out = np.empty((b - a, self.gate_width(layer, gate)), np.float32)
        p = int(np.searchsorted(self.part_starts, a, side="right")) - 1
        at = a
        while at < b:
            s0, s1 = int(self.part_starts[p]), int(self.part_starts[p + 1])
            stop = min(b, s1)
            out[at - a : stop - a] = self._act(layer, gate, p).read(at - s0, stop - s0)
            at, p = stop, p + 1
        return out

    def unit(self, layer: int, gate: str, unit: int, a: int = 0, b: int | None = None) -> np.ndarray:
        """(b-a,) float32: one unit's values over global steps a..b-1 (default: all of them)."""
        W = self.gate_width(layer, gate)
        if not isinstance(unit, (int, np.integer)) or not 0 <= unit < W:
            raise InputError(f"no unit {unit!r}: layer {layer}'s {gate} has units 0..{W - 1}")
        a, b = self._range(a, b)
        out = np.empty(b - a, np.float32)
        p = int(np.searchsorted(self.part_starts, a, side="right")) - 1
        at = a
        while at < b:
            s0, s1 = int(self.part_starts[p]), int(self.part_starts[p + 1])
            stop = min(b, s1)
            out[at - a : stop - a] = self._act(layer, gate, p).read(at - s0, stop - s0)[:, unit]
            at, p = stop, p + 1
        return out

    def unit_at(self, layer: int, gate: str, unit: int, steps: Any) -> np.ndarray:
        """(n,) float32: one unit's values at sorted global steps ``steps`` (the inner chunks they fall in, each
        read once)."""
        W = self.gate_width(layer, gate)
        if not isinstance(unit, (int, np.integer)) or not 0 <= unit < W:
            raise InputError(f"no unit {unit!r}: layer {layer}'s {gate} has units 0..{W - 1}")
        pos = np.asarray(steps, np.int64)
        if pos.size and (pos.min() < 0 or pos.max() >= self.steps):
            raise InputError(f"steps outside the index's 0..{self.steps - 1}")
        parts = np.searchsorted(self.part_starts, pos, side="right") - 1  # (n,)
        out = np.empty(len(pos), np.float32)
        for p in np.unique(parts).tolist():
            m = parts == p
            out[m] = self._act(layer, gate, p).take(pos[m] - self.part_starts[p], int(unit))
        return out

    def blocks(self, layer: int, gate: str, rows: int = CHUNK_ROWS) -> Iterator[tuple[int, np.ndarray]]:
        """(a, (n, W) float32) over every step in order, n <= rows, never crossing a part."""
        for a, X in self.stored_blocks(layer, gate, rows):
            yield a, X.astype(np.float32)

    def stored_blocks(self, layer: int, gate: str, rows: int = CHUNK_ROWS) -> Iterator[tuple[int, np.ndarray]]:
        """``blocks`` as stored: (a, (n, W) float16), no float32 copy (model/analysis/sums.py sums over them)."""
        self._check(layer, gate)
        if rows < 1:
            raise InputError(f"rows must be at least 1, got {rows}")
        for p in range(len(self.part_starts) - 1):
            s0, s1 = int(self.part_starts[p]), int(self.part_starts[p + 1])
            arr = self._act(layer, gate, p)
            for a in range(s0, s1, rows):
                b = min(a + rows, s1)
                yield a, arr.view(a - s0, b - s0)  # read-only, straight from the mapped file where it can be

    # Inputs --------------------------------------------------------------------------------------
    def ids(self, a: int, b: int) -> np.ndarray:
        """(b-a,) int32 token ids of steps a..b-1 (text models)."""
        if self.kind != "text":
            raise InputError("this index holds vectors, not tokens: use inputs(a, b)")
        a, b = self._range(a, b)
        return np.asarray(self._input_rows().read(a, b), np.int32)

    def inputs(self, a: int, b: int) -> np.ndarray:
        """(b-a, D) float32 input vectors of steps a..b-1 (vector models)."""
        if self.kind != "vector":
            raise InputError("this index holds tokens, not vectors: use ids(a, b) or tokens(a, b)")
        a, b = self._range(a, b)
        return np.asarray(self._input_rows().read(a, b), np.float32)

    def inputs_at(self, steps: Any) -> np.ndarray:
        """The token ids ((n,) int32) or input vectors ((n, D) float32) at sorted global steps ``steps``."""
        pos = np.asarray(steps, np.int64)
        if pos.size and (pos.min() < 0 or pos.max() >= self.steps):
            raise InputError(f"steps outside the index's 0..{self.steps - 1}")
        return np.asarray(self._input_rows().take(pos), np.int32 if self.kind == "text" else np.float32)

    def tokens(self, a: int, b: int) -> list[str]:
        """The display strings of steps a..b-1: each token's text, or a vector's first values."""
        if self.kind == "vector":
            from ..network import vector_labels

            x = self.inputs(a, b)
            return vector_labels(x) if len(x) else []
        vocab = self.vocab or []
        return [vocab[i] for i in self.ids(a, b).tolist()]

    def text(self, doc: int) -> str:
        """A document's text: its tokens joined as the tokenizer shows them (characters exactly; words with a
        space between them; a vector document's steps one per line)."""
        d = self._check_doc(doc)
        toks = self.tokens(int(self.doc_starts[d]), int(self.doc_starts[d + 1]))
        sep = " " if self.info.get("tokenizer") == "word" or self.kind == "vector" else ""
        return ("\n" if self.kind == "vector" else sep).join(toks)

    # Statistics ------------------------------------------------------------------------------------
    def stats(self, layer: int, gate: str) -> Stats:
        """Every per-unit statistic of a layer's gate (read once, then kept)."""
        self._check(layer, gate)
        key = (layer, gate)
        if key not in self._stats:
            g = self._group[f"stats/{layer}/{gate}"]
            self._stats[key] = Stats(**{name: np.asarray(g[name][:]) for name in STAT_NAMES})
        return self._stats[key]

    def context(self, pos: int, layer: int, gate: str, unit: int, before: int = 40, after: int = 20) -> dict[str, Any]:
        """The snippet around step ``pos`` (clipped to its document) with one unit's values:
        {"doc", "source", "line", "start", "stop", "pos", "tokens", "values", "peak": pos - start}."""
        if before < 0 or after < 0:
            raise InputError(f"before and after must be >= 0, got {before} and {after}")
        d = int(self.doc_of(int(pos)))
        lo, hi = int(self.doc_starts[d]), int(self.doc_starts[d + 1])
        start, stop = max(lo, int(pos) - before), min(hi, int(pos) + after + 1)
        values = self.unit(layer, gate, unit, start, stop)
        return {
            "doc": d,
            **self.source_of(d),
            "start": start,
            "stop": stop,
            "pos": int(pos),
            "tokens": self.tokens(start, stop),
            "values": [float(v) for v in values.tolist()],
            "peak": int(pos) - start,
        }
