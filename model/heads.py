"""What a network's output means: its head.

    y_t = h_top,t @ W_head + b_head                            # (K,) a linear map of the top layer's h
    next     p_t = softmax(y_t) over the vocabulary (K = V)    # a language model: the next token
    classes  p_t = softmax(y_t) over K named classes           # a classifier (at every step, or the last)
    values   y_t itself, K real numbers                        # regression: a forecaster

``head_at`` says which steps count: "every" (a prediction at each step: a language model, a tagger, a
forecaster) or "last" (a sequence classifier or regressor: only the last step's output is the answer;
in a forward network the earlier ones are what it would answer if the input stopped there).

A network with a backward direction (bidirectional or reverse) reads, at the last row of a "last" head,
each direction's final h, as PyTorch's ``fc(cat(h_n[-2], h_n[-1]))`` and Keras's
Bidirectional(return_sequences=False) do:

    y_{T-1} = [h_fwd_{T-1} ; h_bwd_0] @ W_head + b_head       # forward after x_{T-1}, backward after x_0

Its earlier rows stay y_t = [h_fwd_t ; h_bwd_t] @ W_head + b_head: the head applied to each step's h, not
the answer for the prefix x_0..x_t (the backward half has read the steps after t; that answer would
need a backward run over each prefix).

The kind comes from the model's spec (a file's metadata, an upload field, ``model.load(head=...)``);
without it, ``resolve`` infers one and never fails: a head of the vocabulary's size predicts the next
token, one output is a value, a vector model whose output has its input's size forecasts its own input,
and anything else (a head wider or narrower than the vocabulary included) is a classifier.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from .errors import FormatError

if TYPE_CHECKING:
    from .network import Spec

#: The kinds of head, and which steps count.
KINDS = ("next", "classes", "values")
AT = ("every", "last")


@dataclass(frozen=True)
class Head:
    """A network's output: its ``kind``, the steps that count (``at``), a label per output, its size K."""

    kind: str  # "next" | "classes" | "values"
    at: str  # "every" | "last"
    labels: tuple[str, ...]  # K names: the vocabulary, "class 0" .., or "y" / "y0" ..
    size: int  # K

    @property
    def softmax(self) -> bool:
        """Whether the outputs are probabilities (next, classes) rather than values."""
        return self.kind != "values"


def default_labels(kind: str, size: int, vocab: list[str] | None) -> list[str]:
    """The vocabulary for a next-token head; "class 0".."class K-1"; "y" (K = 1) or "y0".."y{K-1}"."""
    if kind == "next":
        return list(vocab or ())
    if kind == "classes":
        return [f"class {j}" for j in range(size)]
    return ["y"] if size == 1 else [f"y{j}" for j in range(size)]


def infer(spec: Spec) -> str:
    """The kind of a head the spec does not name (spec.output_size is set): never fails."""
    K, V = spec.output_size, len(spec.vocab) if spec.vocab is not None else None
    if V is not None and K == V:
        return "next"
    if K == 1:
        return "values"
    if V is None and K == spec.input_size:
        return "values"  # a forecaster of its own input vector
    return "classes"


def check(spec: Spec) -> None:
    """A FormatError naming the fix when the spec's head, head_at or labels cannot describe its output."""
    head, at, labels, K = spec.head, spec.head_at, spec.labels, spec.output_size
    if at not in AT:
        raise FormatError(f"head_at must be 'every' or 'last' (which steps' predictions count), got {at!r}")
    if head is not None and head not in KINDS:
        raise FormatError(f"unknown head {head!r}: expected 'next' (next token), 'classes' or 'values' (regression)")
    if labels is not None:
        if not isinstance(labels, list) or not all(isinstance(s, str) for s in labels):
            raise FormatError(f"labels must be a list of names (strings), got {_shown(labels)}")
    if K is None:
        if head is not None or labels is not None:
            given = f"head {head!r}" if head is not None else f"{len(labels or [])} labels"
            raise FormatError(f"{given} given, but the model has no output layer: leave head and labels out")
        return
    if labels is not None and len(labels) != K:
        raise FormatError(f"{len(labels)} labels given for a head of {K} outputs: give exactly {K}, one per output")
    if head == "next":
        V = len(spec.vocab) if spec.vocab is not None else None
        if V is None:
            raise FormatError(
                f"head 'next' predicts the next token, but the model has no vocabulary: use head 'classes' "
                f"or 'values' for its {K} outputs"
            )
        if V != K:
            raise FormatError(
                f"head 'next' needs one output per vocabulary token ({V}), this head has {K}: "
                f"use head 'classes' (with {K} labels) or 'values'"
            )


def resolve(spec: Spec) -> Head | None:
    """The head a (checked) spec describes: None without an output layer; else its kind (given or
    ``infer``red), the steps that count, and its labels (given, or ``default_labels``)."""
    if spec.output_size is None:
        return None
    kind = spec.head or infer(spec)
    labels = spec.labels if spec.labels is not None else default_labels(kind, spec.output_size, spec.vocab)
    return Head(kind, spec.head_at, tuple(labels), spec.output_size)


def _shown(v: object) -> str:
    s = repr(v)
    return s if len(s) <= 60 else s[:57] + "..."


def targets(spec: Spec, x: np.ndarray) -> np.ndarray | None:
    """What a forecaster of its own input should have output at each step, where the input says so:
    ``spec.meta["targets"] = {"columns": [j, ...], "shift": s}`` means output k at step t predicts input
    column ``columns[k]`` at step t + s (s = 1: the next step's value). (T, K), NaN where the input
    has not reached t + s yet; None when the meta says nothing usable (or the model reads text)."""
    meta = spec.meta.get("targets") if isinstance(spec.meta, dict) else None
    if not isinstance(meta, dict) or spec.vocab is not None or spec.output_size is None:
        return None
    cols, shift = meta.get("columns"), meta.get("shift", 1)
    D, K = spec.input_size, spec.output_size
    if not isinstance(cols, list) or len(cols) != K or not all(type(j) is int and 0 <= j < D for j in cols):
        return None
    if type(shift) is not int or shift < 0:
        return None
    x = np.asarray(x)  # (T, D)
    out = np.full((len(x), K), np.nan, x.dtype)  # (T, K)
    if shift < len(x):
        out[: len(x) - shift] = x[shift:, cols]
    return out
