"""Batched traces for a corpus index: characters (steps) per second of ``net.trace_batch`` as the index runs it,
against one ``net.trace`` at a time, against ``trace_batch`` before the compiled kernels, and against PyTorch.

    python bench/analysis_kernel.py [--rounds 5] [--cases code,200x128,1000x256,1000x512]
    TORCH_PYTHON=/tmp/fx/bin/python python bench/analysis_kernel.py     # PyTorch from another venv

Every contender runs in its own worker process at its own defaults, taking turns (bench/sides.py), on
the same weights and documents; each side's time is the median over the rounds. The sides:

- ``trace``: one ``net.trace(x, probs=False)`` at a time (every gate recorded, one BLAS thread), over
  the first documents of the batch (all of them for the small cases: the rate is per step);
- ``numpy batch``: ``trace_batch(docs, probs=False)`` on the NumPy recurrence of ``Cell.run_batch``
  (``model.batched.COMPILED = False``): what trace_batch was before model/kernels.py;
- ``compiled``: ``trace_batch(docs, probs=False, gates=("h", "c"), threads=1)``, what the index runs
  in each Dask worker; ``compiled 2 thr``: the same with ``threads=2`` (one process on both cores);
- ``torch``: PyTorch's fused ``nn.LSTM`` over the batch (batch_first; ragged documents through
  ``pack_padded_sequence``), at its default threads; it records h only.

Cases: ``code``, the bundled model (LSTM, H = 128, one-hot over 97 tokens) on 64 documents of 100..400
characters (bench/batch.py's); ``TxH``, 64 documents of T steps of random vectors through a random
LSTM layer of H units (D = 64, 64, 128 for H = 128, 256, 512, as bench/core.py's shapes).
Targets (issue 12): compiled >= 10x ``trace``; compiled >= 0.5x ``torch`` at batch 64.

``main(argv)`` prints the table and returns its rows (bench/analysis.py calls it).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from sides import ROOT, Case, Side, baseline_python, serve, skipped, take_turns

HERE = Path(__file__).resolve()
#: The random cases: name -> (T, D, H).
SHAPES = {"200x128": (200, 64, 128), "1000x256": (1000, 64, 256), "1000x512": (1000, 128, 512)}
DOCS = 64
#: How many documents the one-at-a-time side traces per run (its rate is per step; the big cases take long).
ALONE = {"code": DOCS, "200x128": DOCS, "1000x256": 8, "1000x512": 4}
OURS = ("trace", "numpy batch", "compiled", "compiled 2 thr")
#: Largest difference allowed between the sides' last h (float32, up to 1,000 steps).
TOLERANCE = 1e-4


def code_documents() -> tuple[Any, list[str]]:
    """The bundled code model and bench/batch.py's 64 ragged documents."""
    sys.path.insert(0, str(ROOT))
    sys.path.insert(0, str(HERE.parent))
    from batch import documents

    import model

    net = model.load("code")
    return net, documents(net, DOCS, 400)


def write_case(path: Path, name: str, seed: int = 0) -> None:
    """The case's LSTM layer (per gate W (D, H), U (H, H), b (H,)) and its documents x (B, T, D), lengths (B,)."""
    if name == "code":
        net, docs = code_documents()
        arrays = {n.split(".")[-1]: np.asarray(a) for n, a in net.params.items() if n.startswith("layers.0.")}
        lengths = np.array([len(d) for d in docs])
        ids = np.zeros((DOCS, lengths.max()), np.int64)
        for b, d in enumerate(docs):
            ids[b, : len(d)] = net.tokenizer.encode(d).ids
        arrays["x"] = np.eye(arrays["W_f"].shape[0], dtype=np.float32)[ids]  # (B, T, V) one-hot
        arrays["lengths"] = lengths
    else:
        T, D, H = SHAPES[name]
        rng = np.random.default_rng(seed)
        k = 1 / np.sqrt(H)
        arrays = {}
        for g in ("f", "i", "c", "o"):
            arrays[f"W_{g}"] = rng.uniform(-k, k, (D, H)).astype(np.float32)
            arrays[f"U_{g}"] = rng.uniform(-k, k, (H, H)).astype(np.float32)
            arrays[f"b_{g}"] = rng.uniform(-k, k, H).astype(np.float32)
        arrays["x"] = np.random.default_rng(seed + 1).standard_normal((DOCS, T, D)).astype(np.float32)
        arrays["lengths"] = np.full(DOCS, T)
    np.savez(path, **arrays)


def gatescope_case(side: str, case: dict[str, Any]) -> Case:
    """A worker's run of the case: one of ``OURS``."""
    sys.path.insert(0, str(ROOT))
    from model import Network, Spec, batched

    npz = np.load(case["data"])
    if case["name"] == "code":
        net, docs = code_documents()
    else:
        D, H = npz["W_f"].shape
        net = Network(Spec("lstm", D, H), {f"layers.0.{n}": npz[n] for n in npz.files if n[:2] in ("W_", "U_", "b_")})
        docs = [x[:n] for x, n in zip(npz["x"], npz["lengths"])]
    steps = [len(d) for d in docs]
    if side == "trace":
        docs = docs[: case["alone"]]

        def run() -> Any:
            return [net.trace(d, probs=False) for d in docs]
    else:
        batched.COMPILED = side != "numpy batch"
        kw: dict[str, Any] = {} if side == "numpy batch" else {"gates": ("h", "c"), "threads": 2 if "2" in side else 1}

        def run() -> Any:
            return net.trace_batch(docs, probs=False, **kw)

    run()  # compiles (numba caches on disk) and warms up
    info = {"steps": sum(steps[: len(docs)]), "numba": _numba_version()}
    return run, lambda traces: {"h": traces[0].layers[0]["h"][-1].tolist()}, info


def _numba_version() -> str:
    import numba

    return str(numba.__version__)


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=5, help="turns each side takes (interleaved)")
    ap.add_argument("--runs", type=int, default=1, help="timed runs a turn (after one untimed)")
    ap.add_argument("--cases", default="code," + ",".join(SHAPES), help="comma-separated: code, 200x128, ...")
    ap.add_argument("--side", help=argparse.SUPPRESS)  # run as a worker (sides.py)
    args = ap.parse_args(argv)
    if args.side:
        serve(lambda case: gatescope_case(args.side, case))
        return []
    torch_python = baseline_python("torch", "TORCH_PYTHON")
    names = [c for c in args.cases.split(",") if c]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            sides = [Side(s, HERE) for s in OURS]
            if torch_python is not None:
                sides.append(Side("batch", HERE.with_name("torch_side.py"), torch_python))
            try:
                path = Path(tmp) / f"{name}.npz"
                write_case(path, name)
                chars = int(np.load(path)["lengths"].sum())
                info = {}
                for s in sides:
                    case = {"data": str(path), "name": name, "alone": ALONE[name]}
                    info[s.name] = s.setup(**case)
                times, outs = take_turns(sides, args.rounds, args.runs)
            finally:
                for s in sides:
                    s.close()
            rate = {k: info[k].get("steps", chars) / statistics.median(v) for k, v in times.items()}
            if "batch" in rate:
                rate["torch"] = rate.pop("batch")
            diff = max(float(np.abs(np.subtract(outs["trace"]["h"], o["h"])).max()) for o in outs.values())
            rows.append({"case": name, "chars": chars, "rate": rate, "diff": diff, "info": info})
            _print_row(rows[-1], torch_python is not None, first=len(rows) == 1)
    if torch_python is None:
        print(skipped("PyTorch column", "torch", "TORCH_PYTHON"))
    print(
        f"\nmedians of {args.rounds} interleaved rounds, each side in its own process; load average "
        f"{os.getloadavg()[0]:.1f} at the end (a 2-core machine shared with others: ratios from one run)"
    )
    print("targets: compiled / trace >= 10x (issue 12, one process); compiled / torch >= 0.5x at batch 64")
    wrong = [r for r in rows if r["diff"] > TOLERANCE]
    if wrong:
        sys.exit(
            "bench/analysis_kernel.py: the sides' last h differ: "
            + ", ".join(f"{r['case']} {r['diff']:.1e}" for r in wrong)
        )
    return rows


def _print_row(row: dict[str, Any], torch: bool, first: bool) -> None:
    r = row["rate"]
    cols = list(OURS) + (["torch"] if torch else [])
    if first:
        head = f"{'case':<9} | " + " ".join(f"{c:>14}" for c in cols)
        head += " | comp/trace  2thr/trace  comp/numpy" + ("  comp/torch  2thr/torch" if torch else "")
        print("characters (steps) per second\n" + head + "\n" + "-" * len(head))
    line = f"{row['case']:<9} | " + " ".join(f"{r[c]:>14,.0f}" for c in cols)
    line += f" | {r['compiled'] / r['trace']:>9.1f}x {r['compiled 2 thr'] / r['trace']:>10.1f}x"
    line += f" {r['compiled'] / r['numpy batch']:>10.1f}x"
    if torch:
        line += f" {r['compiled'] / r['torch']:>10.2f}x {r['compiled 2 thr'] / r['torch']:>10.2f}x"
    print(line + f"   (last h agree to {row['diff']:.0e})", flush=True)


if __name__ == "__main__":
    main()
