"""A trace: every gate of every layer at every timestep of one run of a network.

tr.tokens            list[str], one per step (for vector input: "0", "1", ...)
tr.layers[k][gate]   (T, H) array for layer k; gate keys from ``cells.GATES``
tr.probs             (T, V) next-token probabilities, or None without an output head
tr.unknown           positions whose token was not in the vocabulary
tr.state_at(t)       the state after the first t steps, to resume from
tr.unit(k, u)        every value one unit carries through the diagram, over time (see ``LINES``)
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .cells import State
from .errors import InputError


@dataclass
class Trace:
    cell: str
    gates: tuple[str, ...]
    tokens: list[str]
    layers: list[dict[str, np.ndarray]]  # per layer: gate -> (T, H)
    probs: np.ndarray | None = None  # (T, V)
    unknown: list[int] = field(default_factory=list)
    initial: list[State] = field(default_factory=list)  # the state the run started from
    reset_after: bool = False  # a GRU whose reset gate acts after U_h (PyTorch's convention)

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
        return Trace(self.cell, self.gates, self.tokens[:t], layers, probs, unknown, self.initial, self.reset_after)

    def then(self, more: Trace) -> Trace:
        """This trace followed by ``more`` (which must have started from this trace's final state)."""
        layers = [{g: np.concatenate([a, b[g]]) for g, a in la.items()} for la, b in zip(self.layers, more.layers)]
        probs = None if self.probs is None or more.probs is None else np.concatenate([self.probs, more.probs])
        unknown = self.unknown + [p + len(self) for p in more.unknown]
        return Trace(
            self.cell, self.gates, self.tokens + more.tokens, layers, probs, unknown, self.initial, self.reset_after
        )

    def top(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The k likeliest next tokens at every step: indices (T, k) and probabilities (T, k), best first."""
        if self.probs is None:
            raise InputError("this trace has no probabilities: the model has no output head")
        k = min(k, self.probs.shape[1])
        if k < self.probs.shape[1]:  # the k best of each row (unordered), then only those k sorted: 4x a full sort
            idx = np.argpartition(-self.probs, k - 1, axis=1)[:, :k]  # (T, k)
        else:
            idx = np.broadcast_to(np.arange(k), self.probs.shape).copy()  # (T, k)
        p = np.take_along_axis(self.probs, idx, axis=1)  # (T, k)
        order = np.argsort(-p, axis=1, kind="stable")  # (T, k) best first
        return np.take_along_axis(idx, order, axis=1), np.take_along_axis(p, order, axis=1)

    def unit(self, k: int, u: int) -> dict[str, np.ndarray]:
        """Every value unit ``u`` of layer ``k`` carries through the cell's diagram, over time: its
        gates, the previous state and the pointwise products (keys in ``LINES``), each (T,)."""
        layer = self.layers[k]
        if not 0 <= u < layer["h"].shape[1]:
            raise IndexError(f"unit {u} is outside layer {k} of {layer['h'].shape[1]} units")
        g = {name: a[:, u] for name, a in layer.items()}  # (T,) each
        h0, c0 = self.initial[k]
        h_prev = np.concatenate([h0[u : u + 1], g["h"][:-1]])  # (T,) h_{t-1}
        out = {**g, "h_prev": h_prev}
        if c0 is not None:
            c_prev = np.concatenate([c0[u : u + 1], g["c"][:-1]])  # (T,) C_{t-1}
            out |= {"c_prev": c_prev, "f_c_prev": g["f"] * c_prev, "i_c_tilde": g["i"] * g["c_tilde"]}
            out["tanh_c"] = np.tanh(g["c"])  # (T,) what o gates into h
        elif self.cell == "gru":
            out |= {"one_minus_z": 1 - g["z"], "z_h_tilde": g["z"] * g["h_tilde"]}
            out["one_minus_z_h_prev"] = (1 - g["z"]) * h_prev
            if not self.reset_after:  # a reset_after GRU gates U_h h, not h: no such line
                out["r_h_prev"] = g["r"] * h_prev
        return {name: out[name] for name in LINES[self.cell] if name in out}

    def state_at(self, t: int) -> list[State]:
        """The state (h, c) of every layer after the first ``t`` steps."""
        if not 0 <= t <= len(self):
            raise IndexError(f"step {t} is outside this trace of {len(self)} steps")
        if t == 0:
            return [(h.copy(), None if c is None else c.copy()) for h, c in self.initial]
        return [(g["h"][t - 1].copy(), g["c"][t - 1].copy() if "c" in g else None) for g in self.layers]


#: What ``Trace.unit`` returns for each cell, in the diagram's order: the gates, then the lines between them.
LINES: dict[str, tuple[str, ...]] = {
    "lstm": ("f", "i", "c_tilde", "c", "o", "h", "h_prev", "c_prev", "f_c_prev", "i_c_tilde", "tanh_c"),
    "gru": ("z", "r", "h_tilde", "h", "h_prev", "r_h_prev", "one_minus_z", "one_minus_z_h_prev", "z_h_tilde"),
    "rnn": ("h", "h_prev"),
}
LINES["peephole"] = LINES["coupled"] = LINES["lstm"]
