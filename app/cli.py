"""The ``gatescope`` command: ``serve`` the page and the API, ``trace`` a text through a model, ``train`` a model,
``index`` a corpus."""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Mapping
from dataclasses import fields
from pathlib import Path
from typing import Any, get_args, get_type_hints


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="gatescope", description="See inside recurrent networks.")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="serve the page and the API")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument(
        "--models",
        type=Path,
        default=None,
        help="folder uploaded models are kept in (default ~/.local/share/gatescope/models)",
    )
    serve.add_argument(
        "--workers",
        type=_workers,
        default=1,
        help="worker processes (default 1): they share the models folder; each holds its own live sessions",
    )
    up = serve.add_mutually_exclusive_group()
    up.add_argument("--uploads", dest="uploads", action="store_true", default=None, help="allow uploads on any address")
    up.add_argument("--no-uploads", dest="uploads", action="store_false", help="refuse uploads")
    tc = sub.add_parser("trace", help="trace a text through a model and write every gate")
    tc.add_argument("model", help="a bundled model's name or a weight file")
    tc.add_argument("text", nargs="?", default=None, help="the text, for a text model")
    tc.add_argument(
        "--vectors",
        type=Path,
        default=None,
        metavar="FILE",
        help="a series for a vector model: FILE.csv (a row a step, a column a feature, header optional) or FILE.npy",
    )
    tc.add_argument("--module", default=None, help="the recurrent module to read, of a PyTorch file holding several")
    tc.add_argument("--out", type=Path, default=None, help="FILE.json, FILE.csv or FILE.npz (default: JSON on stdout)")
    tc.add_argument("--head", choices=("next", "classes", "values"), default=None, help="what the output means")
    tc.add_argument("--head-at", choices=("every", "last"), default=None, help="which steps' predictions count")
    tc.add_argument("--labels", default=None, help='a name per output: a JSON list or comma-separated ("neg,pos")')
    tc.add_argument(
        "--vocab",
        type=Path,
        default=None,
        help="its vocabulary or tokenizer.json (default: <name>.vocab.json, tokenizer.json or vocab.json beside it)",
    )
    tr = sub.add_parser("train", help="train a model on a task and write it in gatescope's format")
    tr.add_argument("task", help="code | dyck | recall")
    _config_flags(tr)
    tr.add_argument("--option", action="append", default=[], metavar="KEY=VALUE", help="a task option, e.g. min_gap=50")
    tr.add_argument("--out", type=Path, default=None, help="output folder (default runs/<task>-<cell>)")
    ix = sub.add_parser(
        "index",
        help="index a corpus: every unit's h and C at every step, with its statistics, in a Zarr store",
        description="Trace every document of a corpus in batches (on a local Dask cluster of processes, or the "
        "cluster at --scheduler) and store h and C of every unit at every step (float16, Zarr) with each unit's "
        "histogram, mean, std, saturation, top/bottom-k steps and decile samples. The state is reset at each "
        "document; --carry carries it across documents inside segments of --segment steps (cut at document "
        "boundaries, reset at each segment's start), for stream-trained models such as code.",
    )
    ix.add_argument("model", help="a bundled model's name or a weight file")
    ix.add_argument(
        "corpus",
        nargs="+",
        help="text files, folders (recursively), globs, .jsonl files (a 'text' field a line); "
        ".csv/.npy series for a vector model",
    )
    ix.add_argument("--out", type=Path, required=True, help="the index's folder (a Zarr store; replaced if it exists)")
    ix.add_argument("--per", choices=("file", "line"), default="file", help="a document per file (default) or per line")
    ix.add_argument(
        "--carry",
        action="store_true",
        help="carry the state across documents within segments of --segment steps (stream-trained models such as code)",
    )
    ix.add_argument("--segment", type=_workers, default=4096, help="steps per carry segment (default 4096)")
    ix.add_argument("--gates", default="h,c", help="gates to record, comma-separated (default h,c; h always)")
    ix.add_argument("--batch", type=_workers, default=64, help="documents traced together (default 64)")
    ix.add_argument("--scheduler", default=None, metavar="ADDR", help="a Dask scheduler (tcp://host:8786)")
    ix.add_argument("--workers", type=_workers, default=None, help="local worker processes (default 2)")
    ix.add_argument("--name", default=None, help="the model's name recorded in the index (default: MODEL)")
    ix.add_argument("--vocab", type=Path, default=None, help="its vocabulary or tokenizer.json, if not beside it")
    ix.add_argument("--module", default=None, help="the recurrent module to read, of a PyTorch file holding several")
    args = parser.parse_args(argv)
    if args.command == "index":
        return _index(args)
    if args.command == "serve":
        import os

        import uvicorn

        from .settings import Settings, SettingsError

        env, url = serve_env(args, os.environ)
        os.environ.update(env)
        try:
            Settings.from_env()  # here, once: each worker would fail on it, and be started again, without end
        except SettingsError as e:
            print(f"gatescope serve: {e}", file=sys.stderr)
            return 2
        print(f"gatescope: serving {url}", file=sys.stderr)
        # No per-message deflate on the live socket: zlib took 70 of the 97 ms of a 1,000-step trace's frame.
        # An import string: each worker imports the app, and reads its settings from the environment set above.
        uvicorn.run("app.main:app", host=args.host, port=args.port, workers=args.workers, ws_per_message_deflate=False)
        return 0
    if args.command == "trace":
        return _trace(args)
    return _train(args, argv if argv is not None else sys.argv[1:])


def serve_env(args: argparse.Namespace, environ: Mapping[str, str]) -> tuple[dict[str, str], str]:
    """The GATESCOPE_* settings ``gatescope serve`` gives the app, and the URL to open. Off loopback a
    token is required (as ``jupyter server`` does): the one in GATESCOPE_TOKEN, else a new one."""
    import secrets

    from .settings import LOOPBACK

    env = {"GATESCOPE_HOST": args.host, "GATESCOPE_WORKERS": str(args.workers)}  # uploads: on only on loopback
    if args.models is not None:
        env["GATESCOPE_MODELS"] = str(args.models.expanduser().resolve())
    if args.uploads is not None:
        env["GATESCOPE_UPLOADS"] = "1" if args.uploads else "0"
    host = f"[{args.host}]" if ":" in args.host else args.host
    url = f"http://{host}:{args.port}/"
    if args.host not in LOOPBACK:
        env["GATESCOPE_TOKEN"] = environ.get("GATESCOPE_TOKEN") or secrets.token_urlsafe(24)
        url += f"?token={env['GATESCOPE_TOKEN']}"
    return env, url


def _workers(value: str) -> int:
    """``--workers``: a whole number from 1 (argparse turns the refusal into a usage message)."""
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number of processes, not {value!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, not {n}")
    return n


def _config_flags(parser: argparse.ArgumentParser) -> None:
    """A flag for every TrainConfig field (``--lr-min`` for ``lr_min``), with its default and words."""
    from model.cells import GATES
    from model.train import TrainConfig

    hints = get_type_hints(TrainConfig)
    for f in fields(TrainConfig):
        flag, default, words = "--" + f.name.replace("_", "-"), f.default, f.metadata.get("help", "")
        kind = next(t for t in get_args(hints[f.name]) or (hints[f.name],) if t is not type(None))  # int | None: int
        if kind is bool:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=default, help=words)
            continue
        shown = words if default is None else f"{words} (default {default})"
        parser.add_argument(
            flag, type=kind, default=default, help=shown, choices=list(GATES) if f.name == "cell" else None
        )


def _trace(args: argparse.Namespace) -> int:
    import json

    import model

    from .encoding import trace_csv, trace_json, trace_npz

    suffix = args.out.suffix.lower() if args.out else ".json"
    if suffix not in (".json", ".csv", ".npz"):
        print(f"gatescope trace: --out must end in .json, .csv or .npz, not {suffix!r}", file=sys.stderr)
        return 2
    if (args.text is None) == (args.vectors is None):
        print("gatescope trace: give a text (text models) or --vectors FILE (vector models), not both", file=sys.stderr)
        return 2
    labels = None
    if args.labels is not None:
        try:
            labels = json.loads(args.labels) if args.labels.lstrip().startswith("[") else args.labels.split(",")
        except ValueError as e:
            print(f"gatescope trace: --labels starts like a JSON list but is not JSON ({e})", file=sys.stderr)
            return 2
    try:
        net = model.load(
            args.model, vocab=args.vocab, head=args.head, labels=labels, head_at=args.head_at, module=args.module
        )
        if args.vectors is not None:
            from model.series import read_series

            if net.input != "vectors":
                raise model.InputError(f"{args.model} takes text, not vectors: give the text instead of --vectors")
            x, _ = read_series(args.vectors)
            tr = net.trace(x)
        else:
            tr = net.trace(args.text)
    except (model.GatescopeError, OSError) as e:  # the input's or a file's fault; anything else is a bug
        print(f"gatescope trace: {e}", file=sys.stderr)
        return 2
    if suffix == ".npz":
        args.out.write_bytes(trace_npz(tr))
    else:
        text = trace_csv(tr) if suffix == ".csv" else json.dumps(trace_json(str(args.model), net, tr, 5))
        if args.out:
            args.out.write_text(text)
        else:
            print(text)
    if args.out:
        print(f"{len(tr)} steps x {len(tr.layers)} layers x {net.width} units -> {args.out}", file=sys.stderr)
    for line in _predictions(tr):
        print(line, file=sys.stderr)
    return 0


def _index(args: argparse.Namespace) -> int:
    """``gatescope index``: a progress bar on stderr while parts finish, a one-line summary at the end."""
    import time

    from tqdm import tqdm

    import model
    from model.analysis.index import build

    bar: Any = None

    def progress(docs: int, total_docs: int, chars: int, total_chars: int) -> None:
        nonlocal bar
        if bar is None:
            bar = tqdm(total=total_chars, unit="char", unit_scale=True, file=sys.stderr, dynamic_ncols=True)
        bar.set_description(f"{docs}/{total_docs} documents", refresh=False)
        bar.update(chars - bar.n)

    t0 = time.perf_counter()
    try:
        net = model.load(args.model, vocab=args.vocab, module=args.module)
        gates = tuple(g.strip() for g in args.gates.split(",") if g.strip())
        idx = build(
            net,
            [Path(c) for c in args.corpus],  # paths, never texts
            args.out,
            name=args.name or str(args.model),
            per=args.per,
            carry=args.carry,
            segment=args.segment,
            gates=gates,
            batch=args.batch,
            scheduler=args.scheduler,
            workers=args.workers,
            progress=progress,
        )
    except (model.GatescopeError, OSError) as e:  # the input's or a file's fault; anything else is a bug
        if bar is not None:
            bar.close()
        print(f"gatescope index: {e}", file=sys.stderr)
        return 2
    if bar is not None:
        bar.close()
    seconds = time.perf_counter() - t0
    size = sum(f.stat().st_size for f in args.out.rglob("*") if f.is_file())
    chars = idx.info["chars"]
    print(
        f"gatescope index: {idx.docs:,} documents, {idx.steps:,} steps in {seconds:.1f} s "
        f"({chars / seconds:,.0f} chars/s), {size / 1e6:,.1f} MB -> {args.out}",
        file=sys.stderr,
    )
    return 0


def _predictions(tr: Any) -> list[str]:
    """What a classes or values head answered, in words: the last step's (the answer, when only it
    counts), and the class or values at each step (up to 40 steps) when every step counts."""
    if tr.head_kind not in ("classes", "values"):
        return []
    labels, T = tr.labels, len(tr)
    which = "the last step's prediction counts" if tr.head_at == "last" else "a prediction at every step"
    if tr.head_kind == "classes":
        idx, p = tr.top(min(5, len(labels)))
        best = ", ".join(f"{labels[j]} {q:.1%}" for j, q in zip(idx[-1].tolist(), p[-1].tolist(), strict=True))
        lines = [f"classes ({which}): at step {T - 1}: {best}"]
        if tr.head_at == "every":
            shown = ", ".join(labels[j] for j in idx[:40, 0].tolist())
            lines.append(f"class at each step: {shown}" + (" ..." if T > 40 else ""))
        return lines
    last = ", ".join(f"{s} = {v:.6g}" for s, v in zip(labels, tr.values[-1].tolist(), strict=True))
    lines = [f"values ({which}): at step {T - 1}: {last}"]
    if tr.head_at == "every":
        for k, s in enumerate(labels[:8]):
            shown = " ".join(f"{v:.4g}" for v in tr.values[:40, k].tolist())
            lines.append(f"{s} at each step: {shown}" + (" ..." if T > 40 else ""))
    return lines


def _train(args: argparse.Namespace, argv: list[str]) -> int:
    import model
    from model.tasks import get_task
    from model.train import TrainConfig, train

    options = {}
    for item in args.option:
        key, sep, value = item.partition("=")
        if not sep:
            print(f"gatescope train: --option {item!r} is not KEY=VALUE", file=sys.stderr)
            return 2
        options[key] = _number(value)
    try:
        task = get_task(args.task, **options)
        cfg = TrainConfig(**{f.name: getattr(args, f.name) for f in fields(TrainConfig)})
        out = args.out or Path("runs") / f"{args.task}-{cfg.cell}"
        print(f"training {cfg.cell} H={cfg.hidden} x{cfg.layers} on {task.name} for {cfg.steps} steps -> {out}")

        def report(step: int, metrics: dict) -> None:
            shown = ", ".join(f"{k} {v:.4g}" for k, v in metrics.items())
            print(f"\nstep {step}: {shown}", file=sys.stderr)

        net, history = train(
            task, cfg, out, progress=True, on_eval=report, command="gatescope " + shlex.join(argv), task_options=options
        )
    except (model.GatescopeError, OSError) as e:  # the input's or a file's fault; anything else is a bug
        print(f"gatescope train: {e}", file=sys.stderr)
        return 2
    from model.card import make_card, write_card

    card = write_card(out, make_card(net, task, out.name))
    print(f"card: {card}")
    final = history["evals"][-1]
    print(", ".join(f"{k} {v:.4g}" for k, v in final.items()), f"({history['wall_seconds']} s)")
    return 0


def _number(value: str) -> int | float | str:
    """A task option's value: an int or a float when it reads as one, else the string."""
    for kind in (int, float):
        try:
            return kind(value)
        except ValueError:
            pass
    return value


if __name__ == "__main__":
    sys.exit(main())
