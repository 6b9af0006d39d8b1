"""Every gate of every PyTorch cell matches an independent reference to max abs error ≤ 1e-5 (float32).

The reference is tests/fixtures/make_torch.py: gates computed step by step from torch ops in
float64, and h from nn.LSTM / nn.GRU / nn.RNN themselves. Its output is committed in
tests/fixtures/torch/, so these tests need no torch; the ``live`` tests rebuild random modules
with torch when it is installed. Names: gatescope's c_tilde is PyTorch's g, h_tilde is n, and
gatescope's z is colah's (the share of the candidate), so it is PyTorch's 1 - z.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

import model
from model import FormatError

FIXTURES = Path(__file__).parents[1] / "fixtures" / "torch"
MAKE_TORCH = Path(__file__).parents[1] / "fixtures" / "make_torch.py"
TOL = 1e-5  # max abs error, float32
STEMS = sorted(p.stem for p in FIXTURES.glob("*.safetensors"))
TEXT_STEMS = [s for s in STEMS if (FIXTURES / f"{s}.vocab.json").is_file()]
PT_FILES = sorted(p.name for p in FIXTURES.glob("*.pt"))

#: gatescope's gate -> PyTorch's name for it in the reference, per cell.
TORCH_NAME = {
    "lstm": {"f": "f", "i": "i", "c_tilde": "g", "c": "c", "o": "o", "h": "h"},
    "gru": {"z": "z", "r": "r", "h_tilde": "n", "h": "h"},
    "rnn": {"h": "h"},
}


def load_ref(stem: str) -> dict[str, np.ndarray]:
    with np.load(FIXTURES / f"{stem}.npz") as z:
        return {k: z[k] for k in z.files}


def run_like_ref(net: model.Network, ref: dict[str, np.ndarray]) -> model.Trace:
    """Trace the reference's input from the reference's initial state."""
    h0, c0 = ref["h0"], ref["c0"]
    state = [(h0[k], c0[k] if net.cell == "lstm" else None) for k in range(net.num_layers)]
    x = str(ref["text"]) if "text" in ref else ref["x"]
    return net.trace(x, state=state)


def gate_errors(tr: model.Trace, ref: dict[str, np.ndarray]) -> dict[str, float]:
    """Max abs error of every gate of every layer against the step-by-step reference, keyed 'l<k>.<gate>'."""
    cell = str(ref["cell"])
    errors = {}
    for k, layer in enumerate(tr.layers):
        assert set(layer) == set(TORCH_NAME[cell]), f"layer {k} records {sorted(layer)}"
        for gate, name in TORCH_NAME[cell].items():
            want = ref[f"l{k}.{name}"]
            if (cell, gate) == ("gru", "z"):
                want = 1 - want  # PyTorch's z keeps the old state; colah's z admits the candidate
            assert layer[gate].shape == want.shape, f"l{k}.{gate}: shape {layer[gate].shape}, expected {want.shape}"
            errors[f"l{k}.{gate}"] = float(np.abs(layer[gate] - want).max())
    return errors


def module_errors(tr: model.Trace, ref: dict[str, np.ndarray]) -> dict[str, float]:
    """Max abs error against the nn module itself: the top layer's h, the final h and c of every layer."""
    errors = {"output": float(np.abs(tr.layers[-1]["h"] - ref["output"]).max())}
    for k, (h, c) in enumerate(tr.state):
        errors[f"h_n[{k}]"] = float(np.abs(h - ref["h_n"][k]).max())
        if c is not None:
            errors[f"c_n[{k}]"] = float(np.abs(c - ref["c_n"][k]).max())
    return errors


def assert_within(errors: dict[str, float], what: str) -> None:
    bad = {k: f"{v:.2e}" for k, v in errors.items() if not v <= TOL}  # `not <=` also catches NaN
    assert not bad, f"{what}: max abs error above {TOL:g}: {bad}"


def assert_matches(net: model.Network, ref: dict[str, np.ndarray], what: str) -> None:
    assert net.cell == str(ref["cell"])
    tr = run_like_ref(net, ref)
    assert_within(gate_errors(tr, ref), f"{what} gates")
    assert_within(module_errors(tr, ref), f"{what} vs the nn module")
    if "probs" in ref:
        assert tr.probs is not None, f"{what}: the decoder was not read"
        assert_within({"probs": float(np.abs(tr.probs - ref["probs"]).max())}, f"{what} probabilities")


# The committed fixtures: always run -----------------------------------------------------------------
def test_fixtures_cover_every_cell():
    for cell in TORCH_NAME:
        refs = [load_ref(s) for s in STEMS if s.startswith(f"{cell}_")]
        assert len(refs) >= 5, f"{cell}: only {len(refs)} fixtures; run tests/fixtures/make_torch.py"
        assert max(int(r["h_n"].shape[0]) for r in refs) >= 3, f"{cell}: no fixture with 3 layers"
        assert any("probs" in r for r in refs), f"{cell}: no text fixture with probabilities"
    assert TEXT_STEMS and PT_FILES


@pytest.mark.parametrize("stem", STEMS)
def test_every_gate_matches_torch(stem):
    net = model.load(FIXTURES / f"{stem}.safetensors")
    ref = load_ref(stem)
    tr = run_like_ref(net, ref)
    assert (net.num_layers, net.hidden_size) == ref["h_n"].shape
    assert_within(gate_errors(tr, ref), f"{stem} gates")


@pytest.mark.parametrize("stem", STEMS)
def test_h_matches_the_torch_module(stem):
    ref = load_ref(stem)
    tr = run_like_ref(model.load(FIXTURES / f"{stem}.safetensors"), ref)
    assert_within(module_errors(tr, ref), f"{stem} vs nn.{str(ref['cell']).upper()}")


@pytest.mark.parametrize("stem", TEXT_STEMS)
def test_probs_match_torch_softmax(stem):
    ref = load_ref(stem)
    net = model.load(FIXTURES / f"{stem}.safetensors")  # finds <stem>.vocab.json beside it
    assert net.input == "text"
    tr = run_like_ref(net, ref)
    assert tr.tokens == list(str(ref["text"]))
    assert tr.probs is not None and tr.probs.shape == ref["probs"].shape
    assert_within({"probs": float(np.abs(tr.probs - ref["probs"]).max())}, f"{stem} probabilities")
    assert_within(gate_errors(tr, ref), f"{stem} gates")


@pytest.mark.parametrize("cell", list(TORCH_NAME))
def test_fixture_gates_are_not_saturated(cell):
    """A comparison of gates pinned at 0, 1 or ±1 would prove little: most values must sit inside."""
    spread = []  # each value mapped to (-1, 1): 2σ - 1 for sigmoid gates, as is for tanh ones
    for stem in STEMS:
        ref = load_ref(stem)
        if str(ref["cell"]) == cell:
            for key in (k for k in ref if k.startswith("l") and "." in k):
                gate = key.split(".")[1]
                if gate in ("i", "f", "o", "r", "z"):
                    spread.append(2 * ref[key].ravel() - 1)
                elif gate in ("g", "n", "h"):
                    spread.append(ref[key].ravel())
    v = np.abs(np.concatenate(spread))
    assert (v < 0.9).mean() > 0.5, f"{cell}: {(v >= 0.9).mean():.0%} of the reference gates are saturated"


def test_pt_without_torch_asks_for_torch_or_safetensors(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` now raises ImportError
    with pytest.raises(FormatError) as e:
        model.load(FIXTURES / PT_FILES[0])
    msg = str(e.value)
    assert "gatescope[torch]" in msg and "safetensors" in msg, msg


# Live: random modules built here, when torch is installed -------------------------------------------
def _make_torch():
    """The fixture script as a module: the same step-by-step reference, run live."""
    spec = importlib.util.spec_from_file_location("make_torch", MAKE_TORCH)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize("cell", list(TORCH_NAME))
@pytest.mark.parametrize(("T", "D", "H", "L", "random_state"), [(5, 3, 4, 2, True), (11, 6, 9, 1, False)])
def test_live_random_module(cell, T, D, H, L, random_state, tmp_path):
    pytest.importorskip("torch")
    from safetensors.torch import save_file

    mt = _make_torch()
    sd, ref = mt.vector_fixture(cell, T, D, H, L, seed=7 * T + H, random_state=random_state)
    ref["cell"] = np.array(cell)
    path = tmp_path / f"{cell}.safetensors"
    save_file({k: v.contiguous() for k, v in sd.items()}, path)
    assert_matches(model.load(path), ref, f"live {cell} {(T, D, H, L)}")


@pytest.mark.parametrize("cell", list(TORCH_NAME))
def test_live_text_module(cell, tmp_path):
    pytest.importorskip("torch")
    from safetensors.torch import save_file

    mt = _make_torch()
    sd, ref = mt.text_fixture(cell, D=5, H=7, L=2, seed=11)
    ref["cell"] = np.array(cell)
    path = tmp_path / "text.safetensors"
    save_file({k: v.contiguous() for k, v in sd.items()}, path)
    assert_matches(model.load(path, vocab=mt.VOCAB), ref, f"live {cell} text")


@pytest.mark.parametrize("name", PT_FILES)
def test_pt_fixture_loads_with_torch(name):
    pytest.importorskip("torch")
    stem = name.removesuffix(".pt")
    assert_matches(model.load(FIXTURES / name), load_ref(stem), name)


def test_pt_checkpoint_dict_loads_with_torch(tmp_path):
    """A state_dict saved under {"state_dict": ...}, the usual checkpoint, reads the same."""
    torch = pytest.importorskip("torch")
    name = PT_FILES[0]
    sd = torch.load(FIXTURES / name, weights_only=True)
    path = tmp_path / "checkpoint.pt"
    torch.save({"state_dict": sd}, path)
    assert_matches(model.load(path), load_ref(name.removesuffix(".pt")), "checkpoint.pt")
