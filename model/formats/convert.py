"""Convert any weight file gatescope reads into its own format, in a process of its own.

    python -m model.formats.convert SOURCE OUT.safetensors [--vocab VOCAB.json]
        [--head next|classes|values] [--head-at every|last] [--labels '["neg", "pos"]']

Prints one JSON line: {"ok": true, "cell", "layers", "hidden_size", "input"} or {"error": message},
and exits 0 or 2. The server runs this on uploaded files: parsing a hostile file (HDF5 in
particular: libhdf5 has crashed and hung on fuzzed files) can then only kill this process, which
also caps its own memory and CPU time before it reads a byte.
"""

from __future__ import annotations

import argparse
import json
import sys


def _limit(memory_mb: int, cpu_seconds: int) -> None:
    try:
        import resource
    except ImportError:  # not on POSIX: no limits
        return
    resource.setrlimit(resource.RLIMIT_AS, (memory_mb << 20, memory_mb << 20))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m model.formats.convert")
    p.add_argument("source")
    p.add_argument("out")
    p.add_argument("--vocab", default=None)
    p.add_argument("--head", default=None, help="what the output means: next | classes | values")
    p.add_argument("--head-at", default=None, help="which steps' predictions count: every | last")
    p.add_argument("--labels", default=None, help="a JSON list of a name per output")
    p.add_argument("--memory-mb", type=int, default=4096)
    p.add_argument("--cpu-seconds", type=int, default=120)
    p.add_argument("--max-mb", type=int, default=None, help="the most MB of weights the file may declare")
    args = p.parse_args(argv)
    _limit(args.memory_mb, args.cpu_seconds)
    if args.max_mb is not None:
        from .common import LIMITS

        LIMITS.max_bytes = args.max_mb << 20
    from pathlib import Path

    from . import FormatError, load_file
    from .native import save

    name = Path(args.source).name

    try:
        labels = None if args.labels is None else json.loads(args.labels)  # the server sends a JSON list
        net = load_file(args.source, args.vocab, head=args.head, labels=labels, head_at=args.head_at)
        save(net, args.out)
    except FormatError as e:
        print(json.dumps({"error": str(e)}))
        return 2
    except MemoryError:
        print(json.dumps({"error": f"{name}: reading it needed more than {args.memory_mb} MB of memory"}))
        return 2
    except Exception as e:  # a malformed file can break a parser anywhere: report it, never a traceback
        print(json.dumps({"error": f"{name}: the file is malformed ({type(e).__name__}: {str(e)[:200]})"}))
        return 2
    info = {"cell": net.cell, "layers": net.num_layers, "hidden_size": net.hidden_size, "input": net.input}
    info["head"] = None if net.head is None else net.head.kind
    print(json.dumps({"ok": True, **info}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
