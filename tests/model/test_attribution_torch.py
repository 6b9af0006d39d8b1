"""Attribution against PyTorch autograd on the same weights (nn.LSTM / nn.GRU, 2 layers, a Linear head): the
gradient of log p_t(k) wrt every input x_s and every c_s (h_s for the GRU) of each layer, to 1e-5 relative.
The committed references come from tests/fixtures/make_attribution.py; the live test runs it with a new seed."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

import model
from model.attribution import attribute

FIXTURES = Path(__file__).parent.parent / "fixtures"
DIR = FIXTURES / "torch" / "attribution"
TOL = 1e-5


def rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(a) + np.linalg.norm(b), 1e-300))


def check(net: model.Network, ref: dict[str, np.ndarray]) -> None:
    x, t, k = ref["x"], int(ref["t"]), int(ref["k"])
    net = net.astype(np.float64)
    for layer in range(net.num_layers):
        a = attribute(net, x, t, target=k, layer=layer)
        assert a.score == pytest.approx(float(ref["score"]), rel=1e-7)  # the two biases add in float32 on import
        want = ref["grad_x"][: t + 1] * x[: t + 1]  # gradient x input, per feature
        assert rel(a.features, want) <= TOL, f"inputs: {rel(a.features, want):.2e}"
        grad = ref[f"grad_state{layer}"][: t + 1]
        assert np.abs(grad).max() > 1e-3
        assert rel(a.cell_grad, grad) <= TOL, f"layer {layer}: {rel(a.cell_grad, grad):.2e}"
        assert not ref[f"grad_state{layer}"][t + 1 :].any()  # nothing after t matters


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_committed_autograd_reference(cell):
    net = model.load(DIR / f"{cell}.safetensors")
    assert net.head is not None and net.head.kind == "classes"
    check(net, dict(np.load(DIR / f"{cell}.npz")))


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_live_autograd(cell, tmp_path):
    pytest.importorskip("torch")
    from safetensors.torch import save_file

    spec = importlib.util.spec_from_file_location("make_attribution", FIXTURES / "make_attribution.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    sd, ref = mod.reference(cell, seed=7)
    save_file(sd, tmp_path / "m.safetensors")
    check(model.load(tmp_path / "m.safetensors"), ref)
