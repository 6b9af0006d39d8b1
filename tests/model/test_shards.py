"""The index's sharded arrays read straight from their files (model/analysis/shards.py) give back exactly what
Zarr reads: across inner chunks and shards, at a partial last shard, over an inner chunk never written (all zero),
and through Zarr itself for a layout it does not read; an index stores its activations that way."""

from __future__ import annotations

import numpy as np
import pytest
import zarr

import model
from model.analysis import index as index_mod
from model.analysis.index import build
from model.analysis.shards import Rows


@pytest.fixture(scope="module")
def sharded(tmp_path_factory):
    """(5000, 3) float16 in shards of 2048 rows of inner chunks of 256, rows 512..767 left zero (never written)."""
    group = zarr.open_group(str(tmp_path_factory.mktemp("sh") / "a.zarr"), mode="w")
    arr = index_mod._sharded(group, "a", (5000, 3), "float16", 2048, 256)
    values = np.random.default_rng(0).standard_normal((5000, 3)).astype(np.float16)
    values[512:768] = 0
    arr[:] = values
    return arr, values


def test_rows_read_from_the_files_equal_zarrs(sharded):
    arr, values = sharded
    rows = Rows(arr)
    assert rows.direct
    for a, b in [(0, 5000), (0, 1), (255, 257), (500, 800), (2040, 4100), (4095, 5000), (4999, 5000)]:
        np.testing.assert_array_equal(rows.read(a, b), values[a:b])
        np.testing.assert_array_equal(rows.view(a, b), values[a:b])  # mapped where it can be (not across shards)
    at = np.sort(np.random.default_rng(1).choice(5000, 300, replace=False))
    np.testing.assert_array_equal(rows.take(at), values[at])
    np.testing.assert_array_equal(rows.take(at, 2), values[at, 2])
    np.testing.assert_array_equal(rows.take(np.arange(600, 610), 1), np.zeros(10, np.float16))


def test_another_layout_is_read_by_zarr(tmp_path):
    group = zarr.open_group(str(tmp_path / "b.zarr"), mode="w")
    arr = group.create_array("b", shape=(700, 2), dtype="float16", chunks=(100, 2))  # compressed, not sharded
    values = np.arange(1400, dtype=np.float16).reshape(700, 2)
    arr[:] = values
    rows = Rows(arr)
    assert not rows.direct
    np.testing.assert_array_equal(rows.read(50, 650), values[50:650])
    np.testing.assert_array_equal(rows.take(np.array([3, 99, 100, 699]), 1), values[[3, 99, 100, 699], 1])


def test_an_index_stores_activations_in_inner_chunks_of_1024_steps(tmp_path):
    net = model.load("dyck")
    doc = "(" * 1500 + ")" * 1500 + "$"
    idx = build(net, [doc, "(())$"], tmp_path / "d.zarr", scheduler="sync")
    a = zarr.open_group(idx.path, mode="r")["act/0/c/0"]
    assert a.chunks == (1024, net.width) and a.shards[0] >= len(doc)
    assert idx._act(0, "c", 0).direct and idx._input_rows().direct
    stored = np.asarray(a[: len(doc)])  # (T, W) as Zarr reads it (the part holds both documents)
    np.testing.assert_allclose(stored, net.trace(doc).layers[0]["c"], atol=0.05, rtol=2e-3)  # float16 of the trace
    np.testing.assert_array_equal(idx.rows(0, "c", 0, len(doc)), stored.astype(np.float32))
    np.testing.assert_array_equal(
        idx.unit_at(0, "c", 5, np.array([0, 1023, 1024, 2999])), stored[[0, 1023, 1024, 2999], 5]
    )
