"""The corpus index: every stored statistic equals a brute-force pass (NumPy) over ``net.trace`` of each
document, and the reader gives back the documents, their tokens and their activations across parts."""

from __future__ import annotations

import numpy as np
import pytest
import zarr

import model
from model import FormatError, InputError
from model.analysis import index as index_mod
from model.analysis import unitstats
from model.analysis.index import build
from model.analysis.store import Index

DOCS = ["(())$", "()(()())((()))$", "(($", "()$", "((()))()$"]  # shared prefixes: equal values, ties
QUANT = np.linspace(0, 1, 11)


@pytest.fixture(scope="module")
def dyck():
    return model.load("dyck")


@pytest.fixture(scope="module")
def built(dyck, tmp_path_factory):
    """The corpus indexed with a part per document (tiny parts), in this process."""
    out = tmp_path_factory.mktemp("idx") / "dyck.zarr"
    mp = pytest.MonkeyPatch()
    mp.setattr(index_mod, "PART_BYTES", 1)  # every document a part of its own: reads cross parts
    try:
        idx = build(dyck, DOCS, out, name="dyck", scheduler="sync")
    finally:
        mp.undo()
    return idx


def brute(dyck, gate):
    """(S, W) the float16 values of every document's net.trace, concatenated, as float64."""
    return np.concatenate([dyck.trace(d).layers[0][gate] for d in DOCS]).astype(np.float16).astype(np.float64)


def test_layout_and_info(built, dyck):
    info = built.info
    S = sum(map(len, DOCS))
    assert (info["steps"], info["docs"], info["parts"], info["chars"]) == (S, len(DOCS), len(DOCS), S)
    assert info["vocab"] == ["(", ")", "$"] and info["kind"] == "text" and info["model"] == "dyck"
    assert sorted(info["gates"]) == ["c", "h"] and info["width"] == dyck.width
    assert built.doc_starts.tolist() == np.concatenate([[0], np.cumsum([len(d) for d in DOCS])]).tolist()
    assert built.part_starts.tolist() == built.doc_starts.tolist()
    g = zarr.open_group(built.path, mode="r")
    a = g["act/0/h/1"]
    assert a.dtype == np.float16 and a.shape == (len(DOCS[1]), dyck.width) and a.compressors == ()


@pytest.mark.parametrize("gate", ["h", "c"])
def test_activations_equal_single_traces(built, dyck, gate):
    exact = np.concatenate([dyck.trace(d).layers[0][gate] for d in DOCS])
    stored = built.rows(0, gate, 0, built.steps)
    # float16 storage: within half an ulp of each value (2^-11 relative) plus the batch's 1e-6
    assert np.all(np.abs(stored - exact) <= np.abs(exact) * 2.0**-11 + 1e-6)


@pytest.mark.parametrize("gate", ["h", "c"])
def test_stats_equal_brute_force(built, dyck, gate):
    v = built.rows(0, gate, 0, built.steps).astype(np.float64)
    assert np.array_equal(v, brute(dyck, gate))
    st = built.stats(0, gate)
    S, W = v.shape
    assert np.allclose(st.mean, v.mean(0), rtol=0, atol=1e-12)
    assert np.allclose(st.std, v.std(0), rtol=0, atol=1e-12)
    assert np.array_equal(st.min, v.min(0)) and np.array_equal(st.max, v.max(0))
    if gate == "h":
        assert np.array_equal(st.low, (v < -0.9).mean(0)) and np.array_equal(st.high, (v > 0.9).mean(0))
    else:
        assert np.isnan(st.low).all() and np.isnan(st.high).all()
    for u in range(W):
        col = v[:, u]
        edges = np.linspace(-1, 1, 65) if gate == "h" else np.histogram_bin_edges(col, 64)
        assert np.array_equal(st.edges[u], edges)
        assert np.array_equal(st.hist[u], np.histogram(col, bins=64 if gate == "c" else edges)[0])
        assert np.array_equal(st.deciles[u], np.quantile(col, QUANT, method="inverted_cdf"))
        pos = np.arange(S)
        top = np.lexsort((pos, -col))  # highest first, ties: lower position first
        bottom = np.lexsort((pos, col))
        assert st.top_pos[u, :S].tolist() == top.tolist() and (st.top_pos[u, S:] == -1).all()
        assert st.bottom_pos[u, :S].tolist() == bottom.tolist() and (st.bottom_pos[u, S:] == -1).all()
        assert np.array_equal(st.top_val[u, :S], col[top].astype(np.float32))
        d = st.deciles[u]
        for j in range(10):
            inside = (col >= d[j]) & ((col < d[j + 1]) if j < 9 else (col <= d[j + 1]))
            members = pos[inside]
            mixes = (members.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)).tolist()  # wraps mod 2**64
            chosen = sorted(members[np.argsort(mixes, kind="stable")][:16].tolist())
            got = st.band_pos[u, j]
            assert got[got >= 0].tolist() == chosen and (got[len(chosen) :] == -1).all()


def test_ties_are_real(built):
    """The corpus does hold equal values at different steps (a shared prefix), so the tie rule is exercised."""
    v = built.rows(0, "h", 0, built.steps)
    assert len(np.unique(v[:, 0])) < len(v)


def test_pieces_merge_exactly():
    """Any split of the steps merges to the same statistics as brute force: top/bottom-k with heavy ties, deciles,
    histogram, saturation, mean and std, and bands (K = 5)."""
    rng = np.random.default_rng(0)
    rows = rng.integers(-4, 5, size=(300, 3)).astype(np.float16) / 4  # 9 distinct values: ties everywhere
    rows[7, 1] = -0.0
    rows[:, 2] *= 0.99  # -0.99 .. 0.99: saturated steps on both sides
    cuts = ((0, 17), (17, 150), (150, 151), (151, 300))
    merged = None
    for a, b in cuts:
        merged = unitstats.merge(merged, unitstats.partial(rows[a:b], a, K=5), K=5)
    v = rows.astype(np.float64)
    pos = np.arange(len(v))
    for u in range(3):
        assert merged.top_pos[u].tolist() == np.lexsort((pos, -v[:, u]))[:5].tolist()
        assert merged.bottom_pos[u].tolist() == np.lexsort((pos, v[:, u]))[:5].tolist()
    pl = unitstats.plan(merged, "h")
    sec = None
    for a, b in cuts:
        sec = unitstats.merge_second(sec, unitstats.second(rows[a:b], pl))
    s = unitstats.finish(merged, pl, sec)
    assert np.array_equal(s["deciles"], np.quantile(v, QUANT, axis=0, method="inverted_cdf").T)
    assert np.array_equal(s["hist"], np.array([np.histogram(v[:, u], np.linspace(-1, 1, 65))[0] for u in range(3)]))
    assert np.array_equal(s["low"], (v < -0.9).mean(0)) and np.array_equal(s["high"], (v > 0.9).mean(0))
    assert np.allclose(s["mean"], v.mean(0), atol=1e-12) and np.allclose(s["std"], v.std(0), atol=1e-12)
    d = s["deciles"]
    one = unitstats.bands(rows, 0, d)
    split = unitstats.merge_bands(unitstats.bands(rows[:100], 0, d), unitstats.bands(rows[100:], 100, d))
    assert np.array_equal(unitstats.sorted_bands(one), unitstats.sorted_bands(split))


def test_minus_zero_ties_with_zero():
    """-0.0 and 0.0 are one value: ranked by position, counted together."""
    rows = np.array([[0.0], [-0.0], [0.0], [-0.0]], np.float16)
    p = unitstats.partial(rows, 10, K=4)
    assert p.top_pos[0].tolist() == p.bottom_pos[0].tolist() == [10, 11, 12, 13]
    assert np.count_nonzero(p.coarse[0]) == 1 and p.top_key[0].tolist() == [p.top_key[0, 0]] * 4


@pytest.mark.parametrize("n", [1, 2, 3, 7, 10, 11, 19, 100, 101])
def test_quantile_ranks_match_numpy(n):
    x = np.arange(n, dtype=np.float64)
    assert np.array_equal(x[unitstats.quantile_ranks(n)], np.quantile(x, QUANT, method="inverted_cdf"))


def test_reader_rows_unit_blocks(built, dyck):
    S = built.steps
    whole = built.rows(0, "c", 0, S)
    assert np.array_equal(built.rows(0, "c", 3, 24), whole[3:24])  # crosses three parts
    assert built.rows(0, "c", 7, 7).shape == (0, dyck.width)
    assert np.array_equal(built.unit(0, "c", 5), whole[:, 5]) and np.array_equal(
        built.unit(0, "c", 5, 2, 9), whole[2:9, 5]
    )
    got = list(built.blocks(0, "c", rows=4))
    assert np.array_equal(np.concatenate([b for _, b in got]), whole)
    assert [a for a, _ in got] == sorted(a for a, _ in got) and all(len(b) <= 4 for _, b in got)
    assert got[0][1].dtype == np.float32


def test_reader_documents(built):
    assert [built.text(d) for d in range(len(DOCS))] == DOCS
    assert built.tokens(0, 6) == list("(())$(")
    assert built.ids(0, 3).tolist() == [0, 0, 1] and built.ids(0, 3).dtype == np.int32
    assert built.doc_of([0, 4, 5, built.steps - 1]).tolist() == [0, 0, 1, len(DOCS) - 1]
    assert built.source_of(2) == {"source": "<texts>", "line": 2}


def test_context_is_clipped_to_its_document(built):
    start1 = int(built.doc_starts[1])
    c = built.context(start1 + 2, 0, "h", 3, before=40, after=4)
    assert (c["doc"], c["start"], c["stop"], c["peak"], c["pos"]) == (1, start1, start1 + 7, 2, start1 + 2)
    assert "".join(c["tokens"]) == DOCS[1][:7]
    assert c["values"] == built.unit(0, "h", 3, start1, start1 + 7).tolist()
    end1 = int(built.doc_starts[2])
    c = built.context(end1 - 1, 0, "h", 3, before=2, after=20)
    assert (c["start"], c["stop"], c["peak"]) == (end1 - 3, end1, 2)


def test_reader_refusals_name_what_exists(built):
    with pytest.raises(InputError, match="layers 0..0"):
        built.rows(1, "h", 0, 1)
    with pytest.raises(InputError, match="holds c, h"):
        built.stats(0, "f")
    with pytest.raises(InputError, match="units 0..7"):
        built.unit(0, "h", 8)
    with pytest.raises(InputError, match="outside"):
        built.rows(0, "h", 5, built.steps + 1)
    with pytest.raises(InputError, match="documents 0..4"):
        built.text(5)
    with pytest.raises(InputError, match="holds tokens"):
        built.inputs(0, 1)


def test_open_refuses_what_is_not_this_index(built, tmp_path):
    assert Index.open(built.path, model.load("dyck")).steps == built.steps
    with pytest.raises(FormatError, match="other weights"):
        Index.open(built.path, model.load("recall-lstm"))
    zarr.open_group(str(tmp_path / "plain.zarr"), mode="w")
    with pytest.raises(FormatError, match="not a gatescope index"):
        Index.open(tmp_path / "plain.zarr")
    with pytest.raises(FormatError, match="not a gatescope index"):
        Index.open(tmp_path / "nothing")


def test_an_index_of_an_older_layout_is_refused_with_how_to_build_it_again(built, tmp_path):
    import shutil

    from model.analysis.store import ATTR, VERSION

    old = tmp_path / "old.zarr"
    shutil.copytree(built.path, old)
    group = zarr.open_group(str(old), mode="r+")
    group.attrs[ATTR] = {**group.attrs[ATTR], "version": VERSION - 1}
    with pytest.raises(FormatError, match=f"version {VERSION - 1} index.*reads version {VERSION} only: build it again"):
        Index.open(old)


@pytest.mark.parametrize("gate", ["h", "c", "f"])
def test_compiled_passes_equal_the_numpy_passes(gate, monkeypatch):
    """statkernels.py's three passes give unitstats' NumPy passes' results bit for bit (the float64 sums to
    1e-12): ties, -0, a constant unit, saturated and unbounded values, NaN, pieces of one step."""
    rng = np.random.default_rng(1)
    rows = rng.standard_normal((700, 6)) * (3 if gate == "c" else 1)
    rows = np.tanh(rows) if gate == "h" else 1 / (1 + np.exp(-4 * rows)) if gate == "f" else rows
    rows = rows.astype(np.float16)
    rows[:, 0] = np.round(rows[:, 0] * 2) / 2  # a handful of values: ties everywhere
    rows[:, 1] = 0.5  # constant
    rows[::7, 2] = -0.0
    rows[5, 3] = np.nan
    got = {}
    for compiled in (False, True):
        monkeypatch.setattr(unitstats, "COMPILED", compiled)
        merged = None
        for a, b in ((0, 1), (1, 300), (300, 700)):
            merged = unitstats.merge(merged, unitstats.partial(rows[a:b], a, K=40), K=40)
        pl = unitstats.plan(merged, gate)
        sec = unitstats.merge_second(unitstats.second(rows[:250], pl), unitstats.second(rows[250:], pl))
        s = unitstats.finish(merged, pl, sec)
        s["bands"] = unitstats.merge_bands(
            unitstats.bands(rows[:100], 0, s["deciles"]), unitstats.bands(rows[100:], 100, s["deciles"])
        )
        got[compiled] = s
    for stat, ref in got[False].items():
        close = stat in ("mean", "std")
        np.testing.assert_allclose(got[True][stat], ref, rtol=0, atol=1e-12 if close else 0, err_msg=stat)
