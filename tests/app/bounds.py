"""The compact encoding's promised precision (README, app/encoding.py ``pack``), as tests check it:
gates in [0, 1] within 1/131070 = 7.7e-6, gates in [-1, 1] within 2/131070 = 1.6e-5 (uint16 steps,
half a step at most); C in float16, relative error ≤ 2⁻¹¹ = 4.9e-4 (absolute 2⁻²⁵ below float16's
normal range), or float32 past float16's range. ``SLACK`` is float32 rounding: packing scales to at most
65535.5 steps (half an ulp there is 2⁻⁹ steps, twice), unpacking multiplies and adds near 1 (2 × 6e-8):
about 3e-7 in all, which keeps both bounds within the README's 7.7e-6 and 1.6e-5."""

from __future__ import annotations

import numpy as np

SLACK = 3e-7
UNIT = 1 / 131070 + SLACK  # f, i, o, z, r
SIGNED = 2 / 131070 + SLACK  # c_tilde, h, h_tilde
C_RELATIVE = 2.0**-11 + SLACK
C_TINY = 2.0**-25  # float16 subnormals: an absolute step


def assert_compact_close(gate: str, got: np.ndarray, exact: np.ndarray) -> None:
    """``got`` (unpacked) is within the promised bound of ``exact`` for this gate."""
    err = np.abs(got.astype(np.float64) - exact.astype(np.float64))
    if gate in ("f", "i", "o", "z", "r"):
        assert err.max() <= UNIT, f"{gate}: error {err.max():.3g} > {UNIT:.3g}"
    elif gate in ("c_tilde", "h", "h_tilde"):
        assert err.max() <= SIGNED, f"{gate}: error {err.max():.3g} > {SIGNED:.3g}"
    else:
        bound = np.maximum(C_RELATIVE * np.abs(exact.astype(np.float64)), C_TINY)
        worst = float((err / bound).max())
        assert worst <= 1, f"{gate}: error {worst:.3g}× the float16 bound"


assert UNIT <= 7.7e-6 + 3e-7 and SIGNED <= 1.6e-5  # what the README promises
