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


def test_a_dataset_declaring_data_it_never_stores_is_refused(tmp_path):
    """The issue's 6 KB file: 4096 × 16384 float32 (256 MB) declared, nothing written. Reading it would
    allocate 256 MB of fill values; it is under the size limit, so only the storage check catches it."""
    bad = tmp_path / "lying.weights.h5"
    shutil.copy(FIXTURES / "gru_before.weights.h5", bad)
    with h5py.File(bad, "r+") as f:
        del f[TARGET]
        f.create_dataset(TARGET, shape=(4096, 16384), dtype="<f4")
    assert bad.stat().st_size < 100_000
    with pytest.raises(model.FormatError, match=r"declares 256.0 MB of data but stores 0 bytes"):
        model.load(bad, FIXTURES / "gru_before.vocab.json")


def test_compressed_weights_still_load(tmp_path):
    """Storage below the declared size is fine when a filter inflates it (a gzip-compressed dataset)."""
    packed = tmp_path / "packed.weights.h5"
    shutil.copy(FIXTURES / "gru_before.weights.h5", packed)
    with h5py.File(packed, "r+") as f:
        values = f[TARGET][...]
        del f[TARGET]
        f.create_dataset(TARGET, data=values, compression="gzip", chunks=True)
    net = model.load(packed, FIXTURES / "gru_before.vocab.json")
    ref = model.load(FIXTURES / "gru_before.weights.h5", FIXTURES / "gru_before.vocab.json")
    np.testing.assert_array_equal(net.trace("abc").layers[0]["h"], ref.trace("abc").layers[0]["h"])


def test_the_converter_takes_the_servers_size_limit(tmp_path):
    """`convert --max-mb` (what the server passes from GATESCOPE_MAX_MODEL_MB): a file declaring more is refused
    by the size of its metadata, and a .keras archive by the unpacked size its zip declares."""
    import json
    import subprocess
    import sys

    big = tmp_path / "big.weights.h5"
    shutil.copy(FIXTURES / "gru_before.weights.h5", big)
    with h5py.File(big, "r+") as f:
        f.create_dataset("layers/padding/vars/0", data=np.zeros((600, 600), np.float32))  # 1.4 MB, stored
    keras = next(FIXTURES.glob("*.keras"))
    root = Path(__file__).resolve().parents[2]
    for source, words in ((big, "datasets declare 1 MB or more"), (keras, "model.weights.h5 declares")):
        cmd = [sys.executable, "-m", "model.formats.convert", str(source), str(tmp_path / "out.safetensors")]
        vocab = source.with_name(source.name.split(".")[0] + ".vocab.json")
        cmd += ["--vocab", str(vocab)] if vocab.exists() else []
        limit = "1" if source is big else "0"
        done = subprocess.run([*cmd, "--max-mb", limit], cwd=root, capture_output=True, text=True, timeout=60)
        assert done.returncode == 2 and words in json.loads(done.stdout.splitlines()[-1])["error"], done.stdout
        assert not (tmp_path / "out.safetensors").exists()
