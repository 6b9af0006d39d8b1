"""A trace: every gate of every layer at every timestep of one run of a network.

tr.tokens            list[str], one per step (for vector input: "0", "1", ...)
tr.layers[k][gate]   (T, H) array for layer k; gate keys from ``cells.GATES``
tr.probs             (T, V) next-token probabilities, or None without an output head
tr.unknown           positions whose token was not in the vocabulary
tr.state_at(t)       the state after the first t steps, to resume from
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .cells import State


@dataclass
class Trace:
    cell: str
    gates: tuple[str, ...]
    tokens: list[str]
    layers: list[dict[str, np.ndarray]]  # per layer: gate -> (T, H)
    probs: np.ndarray | None = None  # (T, V)
    unknown: list[int] = field(default_factory=list)
    initial: list[State] = field(default_factory=list)  # the state the run started from

    def __len__(self) -> int:
        return len(self.tokens)

    @property
    def state(self) -> list[State]:
        """The state after the last step: pass it as ``state=`` to continue."""
        return self.state_at(len(self))

    def head(self, t: int) -> Trace:
        """The first ``t`` steps of this trace (views, no copies)."""
        layers = [{g: a[:t] for g, a in layer.items()} for layer in self.layers]
        probs = None if self.probs is None else self.probs[:t]
        unknown = [p for p in self.unknown if p < t]
        return Trace(self.cell, self.gates, self.tokens[:t], layers, probs, unknown, self.initial)

    def then(self, more: Trace) -> Trace:
        """This trace followed by ``more`` (which must have started from this trace's final state)."""
        layers = [{g: np.concatenate([a, b[g]]) for g, a in la.items()} for la, b in zip(self.layers, more.layers)]
        probs = None if self.probs is None or more.probs is None else np.concatenate([self.probs, more.probs])
        unknown = self.unknown + [p + len(self) for p in more.unknown]
        return Trace(self.cell, self.gates, self.tokens + more.tokens, layers, probs, unknown, self.initial)

    def top(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The k likeliest next tokens at every step: indices (T, k) and probabilities (T, k), best first."""
        if self.probs is None:
            raise ValueError("this trace has no probabilities: the model has no output head")
        k = min(k, self.probs.shape[1])
        idx = np.argsort(-self.probs, axis=1, kind="stable")[:, :k]  # (T, k)
        return idx, np.take_along_axis(self.probs, idx, axis=1)

    def state_at(self, t: int) -> list[State]:
        """The state (h, c) of every layer after the first ``t`` steps."""
        if not 0 <= t <= len(self):
            raise IndexError(f"step {t} is outside this trace of {len(self)} steps")
        if t == 0:
            return [(h.copy(), None if c is None else c.copy()) for h, c in self.initial]
        return [(g["h"][t - 1].copy(), g["c"][t - 1].copy() if "c" in g else None) for g in self.layers]
