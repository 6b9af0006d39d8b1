"""Models with every kind of head, as a PyTorch user saves them (``safetensors.torch.save_file(m.state_dict())``),
built with NumPy (no torch needed), and an independent NumPy forward pass in PyTorch's own layout to check them.

    wide        bits -> count of ones mod 5: a text LSTM whose head (5) is wider than its vocabulary (2)
    regression  a vector LSTM with one output (a forecaster)
    classifier  a text LSTM with 3 named classes ("neg", "neu", "pos"), only the last step counting
    score       a text LSTM with one value ("score"): a regressor of words
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

BITS = ["0", "1"]
WORDS = ["<unk>", "good", "bad", "film", "plot", "very", "not"]
CLASSES = ["neg", "neu", "pos"]


def lstm_state_dict(D: int, H: int, K: int, seed: int = 0, embedding: int | None = None) -> dict[str, np.ndarray]:
    """An nn.LSTM (+ an optional nn.Embedding of ``embedding`` tokens) + nn.Linear(H, K) state_dict, float32."""
    rng = np.random.default_rng(seed)
    f = lambda *shape: rng.normal(0.0, 0.5, shape).astype(np.float32)  # noqa: E731
    sd = {
        "rnn.weight_ih_l0": f(4 * H, D),
        "rnn.weight_hh_l0": f(4 * H, H),
        "rnn.bias_ih_l0": f(4 * H),
        "rnn.bias_hh_l0": f(4 * H),
        "fc.weight": f(K, H),
        "fc.bias": f(K),
    }
    if embedding is not None:
        sd["embedding.weight"] = f(embedding, D)
    return sd


def save(path: Path, sd: dict[str, np.ndarray], metadata: dict[str, Any] | None = None) -> Path:
    """A .safetensors file of ``sd`` with string metadata (lists as JSON), as safetensors.torch writes it."""
    from safetensors.numpy import save_file

    meta = {k: v if isinstance(v, str) else json.dumps(v) for k, v in (metadata or {}).items()}
    save_file(sd, str(path), metadata=meta or None)
    return path


def reference(sd: dict[str, np.ndarray], x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """PyTorch's nn.LSTM then nn.Linear, step by step in float64: h (T, H) and the head's y (T, K).

    i, f, g, o = split(W_ih x + b_ih + W_hh h + b_hh); c = f*c + i*g; h = o*tanh(c) (torch.nn.LSTM docs)."""
    sig = lambda a: 1.0 / (1.0 + np.exp(-a))  # noqa: E731
    W, U = sd["rnn.weight_ih_l0"].astype(np.float64), sd["rnn.weight_hh_l0"].astype(np.float64)
    b = sd["rnn.bias_ih_l0"].astype(np.float64) + sd["rnn.bias_hh_l0"].astype(np.float64)
    H = U.shape[1]
    h, c, hs = np.zeros(H), np.zeros(H), []
    for x_t in np.asarray(x, np.float64):
        i, f, g, o = np.split(W @ x_t + U @ h + b, 4)  # (H,) each
        c = sig(f) * c + sig(i) * np.tanh(g)
        h = sig(o) * np.tanh(c)
        hs.append(h)
    hh = np.array(hs)  # (T, H)
    return hh, hh @ sd["fc.weight"].astype(np.float64).T + sd["fc.bias"].astype(np.float64)


def one_hot(ids: list[int], V: int) -> np.ndarray:
    return np.eye(V)[ids]


def softmax(y: np.ndarray) -> np.ndarray:
    e = np.exp(y - y.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def write_all(folder: Path) -> dict[str, dict[str, Any]]:
    """The models as files a user uploads: {name: {"file", "vocab" (or None), "sd"}}."""
    folder.mkdir(parents=True, exist_ok=True)
    wide = lstm_state_dict(len(BITS), 6, 5, seed=1)
    regression = lstm_state_dict(3, 5, 1, seed=2)
    classifier = lstm_state_dict(4, 5, 3, seed=3, embedding=len(WORDS))
    score = lstm_state_dict(4, 5, 1, seed=4, embedding=len(WORDS))
    (folder / "wide.vocab.json").write_text(json.dumps(BITS))
    for stem in ("classifier", "score"):
        (folder / f"{stem}.vocab.json").write_text(json.dumps({"tokens": WORDS, "tokenizer": "word"}))
    return {
        "wide": {"file": save(folder / "wide.safetensors", wide), "vocab": folder / "wide.vocab.json", "sd": wide},
        "regression": {"file": save(folder / "regression.safetensors", regression), "vocab": None, "sd": regression},
        "classifier": {
            "file": save(folder / "classifier.safetensors", classifier, {"labels": CLASSES, "head_at": "last"}),
            "vocab": folder / "classifier.vocab.json",
            "sd": classifier,
        },
        "score": {
            "file": save(folder / "score.safetensors", score, {"labels": ["score"]}),
            "vocab": folder / "score.vocab.json",
            "sd": score,
        },
    }
