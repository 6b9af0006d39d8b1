"""A Keras file must never make gatescope read another file on the server's disk: HDF5 external storage,
virtual datasets and external links are refused, in .weights.h5 and inside .keras archives, and the
planted file's bytes never come back as weights."""

from __future__ import annotations

import io
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest

import model

h5py = pytest.importorskip("h5py")

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "keras"
TARGET = "layers/gru/cell/vars/2"  # the GRU's bias, (18,) float32: 72 bytes


def _secret(tmp_path: Path) -> tuple[Path, np.ndarray]:
    """A file on the 'server's disk' whose bytes, read as the bias, would be a valid model."""
    values = np.linspace(-0.9, 0.9, 18, dtype=np.float32)
    planted = tmp_path / "secret.bin"
    planted.write_bytes(values.tobytes())
    return planted, values


def _rewrite(src: Path, dst: Path, how: str, planted: Path) -> None:
    """``src`` with TARGET replaced by an indirection of kind ``how`` to ``planted``."""
    shutil.copy(src, dst)
    with h5py.File(dst, "r+") as f:
        del f[TARGET]
        if how == "external storage":
            f.create_dataset(TARGET, shape=(18,), dtype="<f4", external=[(str(planted), 0, 72)])
        elif how == "virtual dataset":
            source = planted.with_suffix(".h5")
            with h5py.File(source, "w") as g:
                g["data"] = np.frombuffer(planted.read_bytes(), "<f4")
            layout = h5py.VirtualLayout(shape=(18,), dtype="<f4")
            layout[:] = h5py.VirtualSource(str(source), "data", shape=(18,))
            f.create_virtual_dataset(TARGET, layout)
        elif how == "external link":
            source = planted.with_suffix(".link.h5")
            with h5py.File(source, "w") as g:
                g["data"] = np.frombuffer(planted.read_bytes(), "<f4")
            f[TARGET] = h5py.ExternalLink(str(source), "/data")
        elif how == "soft link":
            f.create_dataset("elsewhere", data=np.frombuffer(planted.read_bytes(), "<f4"))
            f[TARGET] = h5py.SoftLink("/elsewhere")


KINDS = ["external storage", "virtual dataset", "external link", "soft link"]


@pytest.mark.parametrize("how", KINDS)
def test_a_weights_h5_that_points_outside_itself_is_refused(tmp_path, how):
    planted, values = _secret(tmp_path)
    bad = tmp_path / "gru_before.weights.h5"
    _rewrite(FIXTURES / "gru_before.weights.h5", bad, how, planted)
    with h5py.File(bad, "r") as f:  # the trap works: h5py itself would read the planted bytes
        assert np.array_equal(f[TARGET][()], values)
    with pytest.raises(model.FormatError, match=how.split()[-1]):
        model.load(bad, FIXTURES / "gru_before.vocab.json")


@pytest.mark.parametrize("how", KINDS[:3])
def test_a_keras_archive_whose_weights_point_outside_is_refused(tmp_path, how):
    planted, values = _secret(tmp_path)
    with zipfile.ZipFile(FIXTURES / "gru_before.keras") as z:
        members = {n: z.read(n) for n in z.namelist()}
    inner = tmp_path / "model.weights.h5"
    inner.write_bytes(members["model.weights.h5"])
    _rewrite(inner, inner.with_name("bad.weights.h5"), how, planted)
    members["model.weights.h5"] = inner.with_name("bad.weights.h5").read_bytes()
    bad = tmp_path / "gru_before.keras"
    with zipfile.ZipFile(bad, "w") as z:
        for n, data in members.items():
            z.writestr(n, data)
    if how == "external storage":  # the trap works from memory too (the other two do not resolve there)
        with h5py.File(io.BytesIO(members["model.weights.h5"]), "r") as f:
            assert np.array_equal(f[TARGET][()], values)
    with pytest.raises(model.FormatError, match="reads only"):
        model.load(bad, FIXTURES / "gru_before.vocab.json")


def test_a_file_declaring_more_than_it_could_hold_is_refused_before_anything_is_read(tmp_path):
    bad = tmp_path / "huge.weights.h5"
    shutil.copy(FIXTURES / "gru_before.weights.h5", bad)
    with h5py.File(bad, "r+") as f:
        f.create_dataset("layers/padding/vars/0", shape=(4096, 65536), dtype="<f4")  # 1 GiB declared, none stored
    assert bad.stat().st_size < 100_000
    with pytest.raises(model.FormatError, match="declare"):
        model.load(bad, FIXTURES / "gru_before.vocab.json")


def test_the_untouched_fixture_still_loads():
    net = model.load(FIXTURES / "gru_before.weights.h5", FIXTURES / "gru_before.vocab.json")
    assert net.cell == "gru"
