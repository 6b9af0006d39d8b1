"""Training: truncated backpropagation through time with Adam, in NumPy.

    loss, grads = backprop.loss_and_grads(...)        # one batch, state carried for streams
    grads *= min(1, clip / ||grads||)                  # gradient-norm clipping
    lr_t = lr * warmup(t) * cosine(t)                  # linear warm-up, cosine decay to lr_min
    Adam (Kingma & Ba 2015): m = β1 m + (1-β1) g; v = β2 v + (1-β2) g²; w -= lr_t m̂ / (√v̂ + ε)

Initialisation follows PyTorch (uniform ±1/√H), with the forget bias at +1
(Jozefowicz et al. 2015; for the GRU, colah's z at −1, so h is kept at first),
which lets gradients reach back over long gaps from the first step.
Seeded and deterministic: the same config gives the same weights.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TextIO

import numpy as np
from tqdm import tqdm

from .backprop import loss_and_grads
from .cells import GATES
from .errors import InputError
from .formats.native import save
from .network import Network, Spec, _check_spec
from .tasks import Task


def _opt(default: Any, help: str) -> Any:
    """A config field with the words the ``gatescope train`` flag shows."""
    return field(default=default, metadata={"help": help})


@dataclass
class TrainConfig:
    """How to train: owned by ``train``; ``gatescope train`` makes a flag of every field."""

    cell: str = _opt("lstm", "cell: " + " | ".join(GATES))
    hidden: int = _opt(128, "hidden units H")
    layers: int = _opt(1, "stacked layers")
    embedding: int | None = _opt(None, "embedding size D (default: one-hot input)")
    reset_after: bool = _opt(False, "gru: PyTorch's reset-after convention")
    forget_bias: float = _opt(1.0, "initial forget-gate bias (lstm cells): larger holds memory over longer gaps")
    steps: int = _opt(2000, "training steps (batches)")
    batch: int = _opt(32, "sequences a batch")
    bptt: int = _opt(100, "truncated BPTT length for streams")
    lr: float = _opt(3e-3, "peak learning rate (Adam)")
    lr_min: float = _opt(1e-4, "learning rate at the end of the cosine decay")
    warmup: int = _opt(50, "steps of linear warm-up")
    clip: float = _opt(1.0, "gradient-norm clipping threshold")
    seed: int = _opt(0, "random seed (the same seed gives the same weights)")
    eval_every: int = _opt(0, "evaluate on held-out data every N steps (0: only at the end)")
    init: str | None = _opt(
        None, "start from this model's weights (a bundled model's name, a folder or a weight file), not a fresh init"
    )
    checkpoint_every: int = _opt(0, "write OUT/checkpoint.safetensors every N steps (0: only at the end)")

    def __post_init__(self) -> None:
        for name in ("steps", "batch", "bptt"):  # hidden and layers: the spec checks them
            if getattr(self, name) < 1:
                raise InputError(f"{name} must be at least 1, got {getattr(self, name)}")
        for name in ("lr", "lr_min", "clip"):
            if not getattr(self, name) > 0:
                raise InputError(f"{name} must be positive, got {getattr(self, name)}")
        for name in ("warmup", "eval_every", "checkpoint_every"):
            if getattr(self, name) < 0:
                raise InputError(f"{name} must be 0 or more, got {getattr(self, name)}")


def init_params(spec: Spec, rng: np.random.Generator, forget_bias: float = 1.0) -> dict[str, np.ndarray]:
    """PyTorch's uniform(±1/√H) init, forget-gate bias +``forget_bias`` (GRU: z bias −1)."""
    k = 1 / np.sqrt(spec.hidden_size)
    params = {}
    for name in spec.param_names():
        shape = spec.expected_shape(name)
        if name == "embedding":
            params[name] = rng.standard_normal(shape) * 0.1
        else:
            params[name] = rng.uniform(-k, k, shape)
        if name.endswith(".b_f"):
            params[name] += forget_bias
        if name.endswith(".b_z"):
            params[name] -= 1.0
    return {n: a.astype(np.float32) for n, a in params.items()}


class Adam:
    """Adam over a dict of arrays, updated in place."""

    def __init__(self, params: dict[str, np.ndarray], b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8):
        self.m = {n: np.zeros_like(a) for n, a in params.items()}
        self.v = {n: np.zeros_like(a) for n, a in params.items()}
        self.b1, self.b2, self.eps, self.t = b1, b2, eps, 0

    def step(self, params: dict[str, np.ndarray], grads: dict[str, np.ndarray], lr: float) -> None:
        self.t += 1
        c1, c2 = 1 - self.b1**self.t, 1 - self.b2**self.t
        for n, g in grads.items():
            m, v = self.m[n], self.v[n]
            m *= self.b1
            m += (1 - self.b1) * g  # first moment
            v *= self.b2
            v += (1 - self.b2) * g * g  # second moment
            params[n] -= (lr / c1) * m / (np.sqrt(v / c2) + self.eps)


def schedule(cfg: TrainConfig, step: int) -> float:
    """Learning rate at ``step``: linear warm-up, then cosine decay from lr to lr_min."""
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    frac = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
    return cfg.lr_min + 0.5 * (cfg.lr - cfg.lr_min) * (1 + np.cos(np.pi * min(frac, 1.0)))


class Progress:
    """The training's progress on stderr: steps, loss, tokens/s, time left. On a terminal, tqdm's
    bar (redrawn at most five times a second); into a file or a pipe, a plain line at every tenth
    of the run (tqdm's wording, no carriage returns)."""

    def __init__(self, total: int, enabled: bool = True, file: TextIO | None = None):
        self.total, self.file = total, file or sys.stderr
        self.enabled = enabled
        self.lines = enabled and not self.file.isatty()
        self.bar = tqdm(total=total, unit="step", file=self.file, mininterval=0.2, disable=not enabled or self.lines)
        self.start, self.next_line = time.perf_counter(), 1

    def update(self, step: int, loss: float, tokens: int) -> None:
        """Step ``step`` of ``total`` is done; ``loss`` its smoothed loss, ``tokens`` trained on so far."""
        rate = tokens / max(time.perf_counter() - self.start, 1e-9)
        post = f"loss {loss:.3f}, {rate:,.0f} tok/s"
        if not self.lines:
            self.bar.set_postfix_str(post, refresh=False)
            self.bar.update(step - self.bar.n)
            return
        if step * 10 >= self.next_line * self.total or step == self.total:  # every tenth, and the end
            self.next_line = step * 10 // self.total + 1
            line = tqdm.format_meter(step, self.total, time.perf_counter() - self.start, unit="step", postfix=post)
            self.file.write(line + "\n")
            self.file.flush()

    def close(self) -> None:
        self.bar.close()


def task_spec(task: Task, cfg: TrainConfig) -> Spec:
    """The network ``cfg`` trains for ``task``: a language model over its vocabulary, or, for a vector
    task, its input size and a values head of its output size (scored at every step or the last)."""
    if task.vocab is None:
        if cfg.embedding is not None:
            raise InputError(f"the {task.name} task's input is vectors: an embedding needs tokens")
        assert task.input_size is not None and task.output_size is not None
        return Spec(
            cell=cfg.cell,
            input_size=task.input_size,
            hidden_size=cfg.hidden,
            num_layers=cfg.layers,
            reset_after=cfg.reset_after,
            output_size=task.output_size,
            head=task.head,
            head_at=task.head_at,
        )
    V = len(task.vocab)
    return Spec(
        cell=cfg.cell,
        input_size=cfg.embedding or V,
        hidden_size=cfg.hidden,
        num_layers=cfg.layers,
        reset_after=cfg.reset_after,
        vocab=list(task.vocab),
        tokenizer=task.tokenizer,
        unk=task.unk,
        embedding=cfg.embedding is not None,
        output_size=V,
    )


def train(
    task: Task,
    cfg: TrainConfig,
    out: Path | None = None,
    progress: bool = True,
    on_eval: Callable[[int, dict[str, float]], None] | None = None,
    command: str | None = None,
    task_options: dict[str, Any] | None = None,
) -> tuple[Network, dict[str, Any]]:
    """Train a network on ``task``; return it and its history (losses, evaluations, wall time)."""
    rng = np.random.default_rng(cfg.seed)
    spec = task_spec(task, cfg)
    _check_spec(spec)  # a clear ValueError before any work
    params = init_params(spec, rng, cfg.forget_bias) if cfg.init is None else start_from(spec, cfg.init, task)
    adam = Adam(params)
    batches = task.batches(rng, cfg.batch, cfg.bptt)
    history: dict[str, Any] = {"loss": [], "evals": [], "command": command, "task_options": task_options or {}}
    bar = Progress(cfg.steps, progress)
    state = None
    tokens, t0, smooth = 0, time.perf_counter(), None
    for step in range(cfg.steps):
        b = next(batches)
        if b.reset:
            state = None
        loss, grads, state = loss_and_grads(spec, params, b.x, b.y, b.mask, state)
        norm = float(np.sqrt(sum(float((g * g).sum()) for g in grads.values())))
        if norm > cfg.clip:
            for g in grads.values():
                g *= cfg.clip / norm
        adam.step(params, grads, schedule(cfg, step))
        tokens += int(b.mask.sum())
        smooth = loss if smooth is None else 0.98 * smooth + 0.02 * loss
        history["loss"].append(loss)
        bar.update(step + 1, smooth, tokens)
        last = step + 1 == cfg.steps
        if cfg.eval_every and (step + 1) % cfg.eval_every == 0 and not last:
            metrics = task.evaluate(Network(spec, task.export(params)))
            history["evals"].append({"step": step + 1, **metrics})
            if on_eval:
                on_eval(step + 1, metrics)
        if out is not None and cfg.checkpoint_every and (step + 1) % cfg.checkpoint_every == 0 and not last:
            _write(
                out, Network(spec, task.export(params)), task, cfg, history, time.perf_counter() - t0, checkpoint=True
            )
    bar.close()
    net = Network(spec, task.export(params))
    history["wall_seconds"] = round(time.perf_counter() - t0, 1)
    history["tokens_per_second"] = round(tokens / max(history["wall_seconds"], 1e-9))
    metrics = task.evaluate(net)
    history["evals"].append({"step": cfg.steps, **metrics})
    if out is not None:
        _write(out, net, task, cfg, history, history["wall_seconds"])
    return net, history


def start_from(spec: Spec, path: str, task: Task) -> dict[str, np.ndarray]:
    """The weights of the model ``path`` names (as ``model.load`` reads it), to train on from: it must have ``spec``'s
    shape and vocabulary."""
    from . import load  # here: the package imports this module

    if type(task).export is not Task.export:
        raise InputError(f"--init: the {task.name} task saves its weights transformed; start it from a fresh init")
    net = load(path)
    theirs = {n: a.shape for n, a in net.params.items()}
    ours = {n: spec.expected_shape(n) for n in spec.param_names()}
    if theirs != ours or net.spec.cell != spec.cell:
        raise InputError(
            f"--init: {path} is a {net.spec.cell} of weights {sorted(theirs.items())}; this run trains a {spec.cell}"
            f" of {sorted(ours.items())}"
        )
    if spec.vocab is not None and net.spec.vocab != spec.vocab:
        raise InputError(f"--init: {path}'s vocabulary is not the {task.name} task's")
    return {n: np.array(a, dtype=np.float32) for n, a in net.params.items()}


def _write(out: Path, net: Network, task: Task, cfg: TrainConfig, history: dict, wall: float, checkpoint=False) -> None:
    """The model folder: model.safetensors (the weights, with the spec) and training.json (the provenance)."""
    out.mkdir(parents=True, exist_ok=True)
    net.spec.meta = {
        **({"targets": task.targets} if task.targets else {}),
        "description": task.description,
        "examples": task.examples,
        "training": {
            "task": task.name,
            "task_options": history.get("task_options", {}),
            "command": history.get("command"),
            "config": asdict(cfg),
            "steps_done": len(history["loss"]),
            "wall_seconds": round(wall, 1),
            "heldout": history["evals"][-1] if history["evals"] else None,
        },
    }
    save(net, out / ("checkpoint.safetensors" if checkpoint else "model.safetensors"))
    record = {"command": history.get("command"), "config": asdict(cfg), "evals": history["evals"]}
    record["wall_seconds"] = round(wall, 1)
    record["final_loss"] = float(np.mean(history["loss"][-50:])) if history["loss"] else None
    (out / "training.json").write_text(json.dumps(record, indent=2) + "\n")
