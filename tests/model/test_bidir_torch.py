"""PyTorch bidirectional modules (``bidirectional=True``: nn.LSTM, nn.GRU, nn.RNN at 1 and 2 layers) load and
trace within 1e-5 of the framework: every gate of both directions against the step-by-step reference, the
output and the final states against the module itself, the probabilities of a text model.

The reference is tests/fixtures/make_torch.py's ``bidir_fixture`` (committed in tests/fixtures/torch/bidir/);
the live tests build fresh random modules when torch is installed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import model
from model import FormatError

from .test_torch_reference import TORCH_NAME, _make_torch

FIXTURES = Path(__file__).parents[1] / "fixtures" / "torch" / "bidir"
STEMS = sorted(p.stem for p in FIXTURES.glob("*.safetensors"))
TOL = 1e-5  # max abs error, float32


def load_ref(stem: str) -> dict[str, np.ndarray]:
    with np.load(FIXTURES / f"{stem}.npz") as z:
        return {k: z[k] for k in z.files}


def as_state(net: model.Network, ref: dict[str, np.ndarray]) -> list:
    """PyTorch's h0 (2L, H) (layer k's forward at 2k, backward at 2k+1) as gatescope's state: [fwd ; bwd] a layer."""
    h0, c0 = ref["h0"], ref["c0"]
    cat = lambda a, k: np.concatenate([a[2 * k], a[2 * k + 1]])  # noqa: E731
    return [(cat(h0, k), cat(c0, k) if net.cell == "lstm" else None) for k in range(net.num_layers)]


def errors(net: model.Network, ref: dict[str, np.ndarray]) -> dict[str, float]:
    """Max abs error of every gate, the output, the final states and the probabilities."""
    x = str(ref["text"]) if "text" in ref else ref["x"]
    tr = net.trace(x, state=as_state(net, ref))
    cell, H, out = str(ref["cell"]), net.hidden_size, {}
    for k, layer in enumerate(tr.layers):
        for gate, name in TORCH_NAME[cell].items():
            want = 1 - ref[f"l{k}.{name}"] if gate == "z" else ref[f"l{k}.{name}"]  # colah's z is PyTorch's 1 - z
            assert layer[gate].shape == want.shape == (len(tr), 2 * H)
            out[f"l{k}.{gate}"] = float(np.abs(layer[gate] - want).max())
        # the final states: forward after x_{T-1} (the last row), backward after x_0 (the first row)
        out[f"h_n[{2 * k}]"] = float(np.abs(layer["h"][-1, :H] - ref["h_n"][2 * k]).max())
        out[f"h_n[{2 * k + 1}]"] = float(np.abs(layer["h"][0, H:] - ref["h_n"][2 * k + 1]).max())
        if cell == "lstm":
            out[f"c_n[{2 * k + 1}]"] = float(np.abs(layer["c"][0, H:] - ref["c_n"][2 * k + 1]).max())
    out["output"] = float(np.abs(tr.layers[-1]["h"] - ref["output"]).max())
    if "probs" in ref:
        assert tr.probs is not None, "the decoder Linear(2H, V) was not read"
        out["probs"] = float(np.abs(tr.probs - ref["probs"]).max())
    return out


def assert_within(errs: dict[str, float], what: str) -> None:
    bad = {k: f"{v:.2e}" for k, v in errs.items() if not v <= TOL}
    assert not bad, f"{what}: max abs error above {TOL:g}: {bad}"


def test_the_fixtures_cover_every_module_at_one_and_two_layers_and_a_text_model():
    got = {(str(load_ref(s)["cell"]), int(load_ref(s)["h_n"].shape[0]) // 2) for s in STEMS}
    assert got >= {(c, L) for c in TORCH_NAME for L in (1, 2)}
    assert any("probs" in load_ref(s) for s in STEMS)


@pytest.mark.parametrize("stem", STEMS)
def test_a_bidirectional_module_matches_torch(stem):
    net = model.load(FIXTURES / f"{stem}.safetensors")
    assert net.direction == "bidirectional" and net.width == 2 * net.hidden_size
    assert_within(errors(net, load_ref(stem)), stem)


def test_half_a_bidirectional_module_is_refused_by_name(tmp_path):
    from safetensors.numpy import save_file

    tensors, _ = model.formats.common.read_safetensors(FIXTURES / "gru_bi_t9_d4_h5_l2.safetensors")
    del tensors["weight_ih_l1_reverse"], tensors["weight_hh_l1_reverse"]
    save_file(tensors, tmp_path / "half.safetensors")
    with pytest.raises(FormatError, match=r"weight_ih_l1_reverse missing.*every layer"):
        model.load(tmp_path / "half.safetensors")


@pytest.mark.parametrize("cell", list(TORCH_NAME))
@pytest.mark.parametrize("L", [1, 2])
def test_live_random_bidirectional_module(cell, L, tmp_path):
    pytest.importorskip("torch")
    from safetensors.torch import save_file

    mt = _make_torch()
    sd, ref = mt.bidir_fixture(cell, 8, 3, 6, L, seed=17 * L, random_state=True)
    ref["cell"] = np.array(cell)
    save_file({k: v.contiguous() for k, v in sd.items()}, tmp_path / "bi.safetensors")
    assert_within(errors(model.load(tmp_path / "bi.safetensors"), ref), f"live {cell} L={L}")


def test_live_bidirectional_text_model_from_a_pt_file(tmp_path):
    torch = pytest.importorskip("torch")
    mt = _make_torch()
    sd, ref = mt.bidir_fixture("gru", 0, 5, 4, 2, seed=3, random_state=False, V=len(mt.VOCAB))
    ref["cell"] = np.array("gru")
    torch.save(sd, tmp_path / "bi.pt")
    assert_within(errors(model.load(tmp_path / "bi.pt", vocab=mt.VOCAB), ref), "live gru text .pt")
