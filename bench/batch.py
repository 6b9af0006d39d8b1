"""Characters per second of ``net.trace_batch`` (B documents at once) against one ``net.trace`` at a time,
on the bundled ``code`` model, in the same run: median of 5 rounds each, and the ratio.

    python bench/batch.py [--docs 64] [--chars 400] [--rounds 5]

The documents are slices of the model's own card text and sample (ragged: lengths from a quarter of
--chars to --chars), the same for both sides; the batch's h is checked against the one-at-a-time h.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

import model


def documents(net: model.Network, n: int, chars: int) -> list[str]:
    vocab = [t for t in (net.vocab or []) if len(t) == 1]
    rng = np.random.default_rng(0)
    base = "".join(rng.choice(vocab, 4 * chars * n))  # characters the model knows, in no order
    starts = rng.integers(0, len(base) - chars, n)
    lengths = rng.integers(chars // 4, chars + 1, n)
    return [base[s : s + k] for s, k in zip(starts, lengths)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--docs", type=int, default=64)
    ap.add_argument("--chars", type=int, default=400)
    ap.add_argument("--rounds", type=int, default=5)
    a = ap.parse_args()
    net = model.load("code")
    docs = documents(net, a.docs, a.chars)
    total = sum(len(d) for d in docs)
    one, many = [], []
    for _ in range(a.rounds):
        t0 = time.perf_counter()
        alone = [net.trace(d) for d in docs]
        one.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        batch = net.trace_batch(docs)
        many.append(time.perf_counter() - t0)
    err = max(float(np.abs(x.layers[-1]["h"] - y.layers[-1]["h"]).max()) for x, y in zip(batch, alone))
    s = net.spec
    print(f"model code: {s.cell}, {s.num_layers} layer(s), H = {s.hidden_size}, {s.direction}")
    print(f"{a.docs} documents, {total} characters ({min(map(len, docs))}..{max(map(len, docs))} each)")
    m1, mb = statistics.median(one), statistics.median(many)
    print(f"one net.trace at a time : {total / m1:10.0f} chars/s  (median {m1 * 1e3:.1f} ms of {a.rounds})")
    print(f"trace_batch (B = {a.docs:3d})   : {total / mb:10.0f} chars/s  (median {mb * 1e3:.1f} ms of {a.rounds})")
    print(f"batched / one at a time : {m1 / mb:.2f}x the characters per second; max |h| difference {err:.1e}")


if __name__ == "__main__":
    main()
