"""The compiled attribution path (model/backprop_kernels.py, ``attribution.COMPILED``) against the NumPy one
(the cells' ``run`` and backprop.py's ``_backward``): every cell, 1 and 2 layers, every head kind and input kind.

float64 networks: the compiled backward runs in float64 (after the cells' NumPy forward), so both paths agree to
1e-10 relative; finite differences of the same networks are test_attribution.py's (it runs the compiled path,
the default). float32 networks: the compiled float32 forward (model/kernels.py's s2 and tanh, within 2e-7 of the
exact functions) against the NumPy path in float64, to 1e-3 relative (the difference of two float32 runs of 12
steps was at most 2e-5 here)."""

from __future__ import annotations

import numpy as np
import pytest

import model
from model import attribution
from model.attribution import Forward, attribute
from model.network import Network, Spec

CELLS = [("lstm", False), ("peephole", False), ("coupled", False), ("gru", False), ("gru", True), ("rnn", False)]
IDS = ["lstm", "peephole", "coupled", "gru-cho", "gru-reset-after", "rnn"]
VOCAB = list("abcdef")
TEXT = "abcdefabcfed"
#: How the float32 compiled path may differ from float64 NumPy: relative, over the whole vector.
TOL32 = 1e-3


def rel(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(a) + np.linalg.norm(b), 1e-300))


def make(cell: str, reset_after: bool, layers: int, head: str, inp: str, dtype=np.float64, seed: int = 0) -> Network:
    """A small network: H = 5, a head of 4 outputs; ``inp`` one-hot | embedding | vectors."""
    rng = np.random.default_rng(seed)
    text = inp != "vectors"
    spec = Spec(
        cell=cell,
        input_size=3 if inp != "one-hot" else len(VOCAB),
        hidden_size=5,
        num_layers=layers,
        reset_after=reset_after,
        vocab=VOCAB if text else None,
        tokenizer="char" if text else None,
        unk=None,
        embedding=inp == "embedding",
        output_size=len(VOCAB) if head == "next" else 4,
        head=head,
    )
    params = {n: rng.standard_normal(spec.expected_shape(n)) * 0.7 for n in spec.param_names()}
    return Network(spec, params, dtype)


def x_of(net: Network):
    return TEXT if net.tokenizer is not None else np.random.default_rng(1).standard_normal((len(TEXT), 3))


def both(net: Network, x, t: int, layer: int | None = None):
    """The attribution at t by the compiled path and by the NumPy path."""
    try:
        attribution.COMPILED = False
        slow = Forward(net, x).attribute(t, layer=layer)
    finally:
        attribution.COMPILED = True
    fw = Forward(net, x)
    assert fw.kept is not None  # the compiled path ran
    return fw.attribute(t, layer=layer), slow


def same(fast, slow, tol: float) -> None:
    assert fast.target == slow.target and fast.gate == slow.gate
    assert fast.score == pytest.approx(slow.score, rel=tol, abs=tol)
    for name in ("inputs", "cell", "cell_grad", "hidden", "features"):
        a, b = getattr(fast, name), getattr(slow, name)
        assert (a is None) == (b is None), name
        if a is not None:
            assert a.shape == b.shape and rel(a, b) <= tol, (name, rel(a, b))


@pytest.mark.parametrize(("cell", "reset_after"), CELLS, ids=IDS)
@pytest.mark.parametrize("layers", [1, 2])
@pytest.mark.parametrize(("head", "inp"), [("next", "one-hot"), ("classes", "embedding"), ("values", "vectors")])
def test_compiled_gradients_equal_the_numpy_backward(cell, reset_after, layers, head, inp):
    net = make(cell, reset_after, layers, head, inp)
    x = x_of(net)
    for t in (0, 6, len(TEXT) - 1):
        for layer in range(layers):
            fast, slow = both(net, x, t, layer)
            same(fast, slow, 1e-10)


@pytest.mark.parametrize(("cell", "reset_after"), CELLS, ids=IDS)
@pytest.mark.parametrize("layers", [1, 2])
def test_the_float32_compiled_forward_matches_float64(cell, reset_after, layers):
    net64 = make(cell, reset_after, layers, "next", "one-hot")
    net32 = make(cell, reset_after, layers, "next", "one-hot", dtype=np.float32)
    try:
        attribution.COMPILED = False
        want = Forward(net64, TEXT).attribute(len(TEXT) - 1)
    finally:
        attribution.COMPILED = True
    fw = Forward(net32, TEXT)
    np.testing.assert_allclose(fw.top[:, 0], net64.trace(TEXT).layers[-1]["h"], rtol=0, atol=1e-5)
    same(fw.attribute(len(TEXT) - 1), want, TOL32)


def test_on_code_the_compiled_path_gives_the_numpy_paths_answer():
    """The bundled float32 ``code`` model over 400 characters: what the page shows, both ways."""
    net = model.load("code")
    text = (model.__doc__ or "")[:400].encode("ascii", "replace").decode()
    fast, slow = both(net, text, 399)
    same(fast, slow, TOL32)
    assert fast.largest == slow.largest


@pytest.mark.parametrize(("cell", "reset_after"), CELLS, ids=IDS)
def test_integrated_gradients_stay_complete_beside_the_compiled_path(cell, reset_after):
    """Integrated gradients (their batches run the NumPy path) add up to f(x) - f(0) within 1%, and their
    ``cell`` (from the input itself) equals the compiled gradient x input's."""
    net = make(cell, reset_after, 2, "next", "one-hot")
    ig = attribute(net, TEXT, len(TEXT) - 1, method="integrated_gradients", steps=64)
    c = ig.completeness
    assert abs(c["sum"] - c["difference"]) <= 0.01 * abs(c["difference"])
    gx = attribute(net, TEXT, len(TEXT) - 1)
    assert rel(ig.cell, gx.cell) <= 1e-10
