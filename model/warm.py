"""The compiled attribution kernels of one cell kind, made ready before anyone waits on them.

Gradient x input runs model/backprop_kernels.py, compiled by numba with ``cache=True``: the first run of a kind on
a fresh install compiles its forward and backward kernels (~5-7 s of CPU), and every later process loads them from
numba's disk cache (NUMBA_CACHE_DIR, else ``__pycache__`` beside the module) in well under a second.

    kind = kernel_kind(net)         # "lstm", "gru_reset_after", ... or None (no compiled attribution for this net)
    warm(kind)                      # compile, or load, that kind's kernels in this process
    python -m model.warm gru        # the same in a process of its own (the server's way: numba's ~190 MB and its
                                    # compile stay out of the server, and the disk cache is what it leaves)

A kind's kernels depend on its cell's equations and dtype only, not on the sizes: ``warm`` runs them on a network
of two units and two steps, through the same calls ``attribution.Forward`` makes.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np

from . import attribution
from .cells import PARAMS
from .network import Network, Spec

#: What each kind is called where a person reads it ("Preparing the gradient code for the GRU cell").
NAMES = {
    "lstm": "LSTM",
    "peephole": "peephole LSTM",
    "coupled": "coupled-gate LSTM",
    "gru": "GRU",
    "gru_reset_after": "GRU (reset after)",
    "rnn": "plain RNN",
}
#: The kinds ``warm`` takes (model/cells.py's weight layouts).
KINDS = tuple(PARAMS)


def kernel_kind(net: Network) -> str | None:
    """The compiled kernels gradient x input runs for ``net`` (its cell kind; a GRU's reset convention apart), or
    None when it runs none: float64 networks (the NumPy path), or networks attribution refuses."""
    if not attribution.COMPILED or net.dtype != np.float32:
        return None
    try:
        attribution.check(net)
    except Exception:  # an InputError: nothing to warm, the request is refused with its own words
        return None
    return "gru_reset_after" if net.spec.cell == "gru" and net.spec.reset_after else net.spec.cell


#: The compiled functions of model/backprop_kernels.py each kind runs (their names start so).
KERNELS = {
    "lstm": "lstm_family_",
    "peephole": "lstm_family_",
    "coupled": "lstm_family_",
    "gru": "gru_before_",
    "gru_reset_after": "gru_after_",
    "rnn": "rnn_",
}


def cached(kind: str) -> bool:
    """Whether numba's disk cache holds ``kind``'s kernels already (index files newer than their source, in
    NUMBA_CACHE_DIR or the ``__pycache__`` beside it): then a process loads them in well under a second, and nothing
    needs warming. Read from the file names only: no numba is imported."""
    source = Path(__file__).with_name("backprop_kernels.py")
    since = source.stat().st_mtime
    places = [source.parent / "__pycache__"]
    if os.environ.get("NUMBA_CACHE_DIR"):  # numba then caches there only
        places = [Path(os.environ["NUMBA_CACHE_DIR"])]
    pattern = f"backprop_kernels.{KERNELS[kind]}*.nbi"
    found = {
        p.name.split("-")[0]
        for place in places
        if place.is_dir()
        for p in place.rglob(pattern)
        if p.stat().st_mtime >= since
    }
    return len(found) >= 2  # its forward and its backward


def warm(kind: str) -> None:
    """Compile (or load from numba's disk cache) the kernels of ``kind`` in this process."""
    if kind not in KINDS:
        raise ValueError(f"unknown cell kind {kind!r}: expected one of {', '.join(KINDS)}")
    cell, reset_after = ("gru", True) if kind == "gru_reset_after" else (kind, False)
    spec = Spec(cell=cell, input_size=3, hidden_size=2, reset_after=reset_after, output_size=3, head="values")
    rng = np.random.default_rng(0)
    net = Network(
        spec, {n: rng.uniform(-0.5, 0.5, spec.expected_shape(n)).astype(np.float32) for n in spec.param_names()}
    )
    attribution.Forward(net, rng.standard_normal((2, 3)).astype(np.float32)).attribute(1)


def main(argv: list[str]) -> int:
    """``python -m model.warm KIND``: warm one kind (at the server's priority: one such process at a time uses one
    core, and under a niced child a loaded machine kept a waiting attribution 5x longer)."""
    if len(argv) != 1 or argv[0] not in KINDS:
        print(f"usage: python -m model.warm {{{','.join(KINDS)}}}", file=sys.stderr)
        return 2
    warm(argv[0])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
