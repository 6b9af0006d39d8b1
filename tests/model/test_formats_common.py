"""The importers' shared cut of fused gate blocks (model/formats/common.py), on small hand-made arrays."""

from __future__ import annotations

import numpy as np

from model.formats.common import flip_z, gate_blocks, gate_weights, stack

D, H = 2, 3


def fused(G: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """W (D, G*H), U (H, G*H), b and bU (G*H,), every entry distinct (a block taken from the wrong place shows)."""
    rng = np.random.default_rng(seed)

    def distinct(*shape: int) -> np.ndarray:
        return rng.permutation(int(np.prod(shape))).reshape(shape).astype(np.float32)

    return distinct(D, G * H), distinct(H, G * H), distinct(G * H), distinct(G * H)


def test_gate_blocks_are_the_columns_of_each_gate_in_the_files_order():
    W = np.arange(D * 4 * H).reshape(D, 4 * H)
    blocks = gate_blocks(W, ("i", "f", "c", "o"))
    assert list(blocks) == ["i", "f", "c", "o"]
    np.testing.assert_array_equal(blocks["c"], W[:, 2 * H : 3 * H])
    np.testing.assert_array_equal(gate_blocks(np.arange(4 * H), ("i", "f", "c", "o"))["o"], np.arange(3 * H, 4 * H))


def test_gate_weights_add_the_two_biases_but_a_reset_after_candidate_keeps_its_own():
    W, U, b, bU = fused(3)
    plain, after = gate_weights(("z", "r", "h"), W, U, b, bU), gate_weights(("z", "r", "h"), W, U, b, bU, True)
    np.testing.assert_array_equal(plain["U_r"], U[:, H : 2 * H])
    np.testing.assert_array_equal(plain["b_h"], b[2 * H :] + bU[2 * H :])
    np.testing.assert_array_equal(after["b_h"], b[2 * H :])
    np.testing.assert_array_equal(after["bU_h"], bU[2 * H :])
    np.testing.assert_array_equal(after["b_z"], b[:H] + bU[:H])
    assert "bU_h" not in plain


def test_flip_z_makes_the_update_gate_its_complement_and_leaves_the_rest():
    W, U, b, bU = fused(3, seed=1)
    own = gate_weights(("z", "r", "h"), W / 10, U / 10, b / 10, bU / 10)
    flipped = flip_z(own)
    x, h = np.linspace(-1, 1, D), np.linspace(0.5, -0.5, H)

    def z(p):
        return 1 / (1 + np.exp(-(x @ p["W_z"] + h @ p["U_z"] + p["b_z"])))

    np.testing.assert_allclose(z(flipped), 1 - z(own), atol=1e-7)  # σ(-a) = 1 - σ(a)
    assert all(np.array_equal(flipped[n], own[n]) for n in own if not n.endswith("_z"))


def test_stack_names_each_layers_weights_as_the_network_does():
    params = stack([{"W_h": np.ones((D, H)).T}, {"W_h": np.zeros((H, H))}])
    assert sorted(params) == ["layers.0.W_h", "layers.1.W_h"]
    assert params["layers.0.W_h"].flags.c_contiguous
