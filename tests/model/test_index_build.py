"""Building an index: the same store whatever the batch (to float16 rounding), the carry rule, long documents
traced in pieces, vector models, corpora read from files, folders, globs and JSON Lines, and the refusals."""

from __future__ import annotations

import json

import numpy as np
import pytest

import model
from model import InputError
from model.analysis import index as index_mod
from model.analysis.corpus import Texts
from model.analysis.index import build


@pytest.fixture(scope="module")
def dyck():
    return model.load("dyck")


def dyck_docs(n, seed=0, lo=3, hi=60):
    rng = np.random.default_rng(seed)
    return ["".join(rng.choice(["(", ")"], int(rng.integers(lo, hi)))) + "$" for _ in range(n)]


def ulp16(x):
    """The spacing of float16 at |x|."""
    return np.spacing(np.abs(x).astype(np.float16)).astype(np.float32)


def test_batch_sizes_agree_to_float16_rounding(dyck, tmp_path):
    """batch 1, 7, 64: the same documents, tokens and parts; every stored value within one float16 ulp (or 1e-6
    near 0); the statistics that a last-ulp change cannot move (counts of steps, document layout) identical, the
    rest close."""
    docs = dyck_docs(80)
    idx = {b: build(dyck, docs, tmp_path / f"{b}.zarr", batch=b, scheduler="sync") for b in (1, 7, 64)}
    ref = idx[1]
    for b in (7, 64):
        other = idx[b]
        assert np.array_equal(other.doc_starts, ref.doc_starts) and np.array_equal(other.part_starts, ref.part_starts)
        assert np.array_equal(other.ids(0, other.steps), ref.ids(0, ref.steps))
        for g in ("h", "c"):
            a, x = ref.rows(0, g, 0, ref.steps), other.rows(0, g, 0, other.steps)
            # one float16 ulp, or the 1e-6 between batched and single float32 traces: near 0 a cell state
            # is a cancellation of O(1) terms, and float32's absolute error there is more than float16's spacing
            # (c = -1.3161e-4 against -1.3185e-4 at one step: 2 ulps of float16, 2.4e-7 apart)
            assert np.all(np.abs(a - x) <= np.maximum(np.maximum(ulp16(a), ulp16(x)), 1e-6))
            sa, sx = ref.stats(0, g), other.stats(0, g)
            assert np.array_equal(sa.hist.sum(1), sx.hist.sum(1))
            moved = (a != x).sum(0)  # values that changed, per unit: each moves at most one step between bins
            assert np.all(np.abs(sa.hist - sx.hist).sum(1) <= 2 * moved)
            assert np.allclose(sa.mean, sx.mean, atol=1e-3) and np.allclose(sa.std, sx.std, atol=1e-3)
            assert np.all(np.abs(sa.deciles - sx.deciles) <= np.maximum(ulp16(sa.deciles), ulp16(sx.deciles)))
            assert np.allclose(sa.top_val, sx.top_val, atol=0, rtol=2.0**-10, equal_nan=True)


def test_carry_runs_segments_of_whole_documents(dyck, tmp_path):
    """With carry, a document continues the state of the documents before it in its segment (segments of at most
    `segment` steps, cut at document boundaries; a longer document is a segment of its own); without, each starts
    from zero. The bytes do not depend on the batch."""
    docs = ["(()$", "()(($", "((()))()()$", "(" * 30 + "$", "()$", "(($"]  # 4, 5, 11, 31, 3, 3 steps
    segment = 12
    carried = build(dyck, docs, tmp_path / "carry.zarr", carry=True, segment=segment, scheduler="sync")
    fresh = build(dyck, docs, tmp_path / "fresh.zarr", scheduler="sync")
    assert carried.info["carry"] is True and carried.info["segment"] == segment and fresh.info["segment"] is None
    segments = [[0, 1], [2], [3], [4, 5]]  # 4+5 = 9 <= 12; +11 > 12; 31 alone; 3+3
    starts = carried.doc_starts
    for seg in segments:
        whole = dyck.trace("".join(docs[d] for d in seg)).layers[0]["c"]
        got = carried.rows(0, "c", int(starts[seg[0]]), int(starts[seg[-1] + 1]))
        assert np.allclose(got, whole, atol=2e-3, rtol=2.0**-10)
    second = fresh.rows(0, "c", int(starts[1]), int(starts[2]))
    assert np.allclose(second, dyck.trace(docs[1]).layers[0]["c"], atol=2e-3, rtol=2.0**-10)
    assert not np.allclose(carried.rows(0, "c", int(starts[1]), int(starts[2])), second, atol=0.05)  # it differs
    for b in (1, 5):
        again = build(dyck, docs, tmp_path / f"carry{b}.zarr", carry=True, segment=segment, batch=b, scheduler="sync")
        assert np.array_equal(again.part_starts, carried.part_starts)
        a, x = again.rows(0, "h", 0, again.steps), carried.rows(0, "h", 0, carried.steps)
        assert np.all(np.abs(a - x) <= np.maximum(ulp16(a), ulp16(x)))


def test_parts_are_bounded_and_a_long_document_is_traced_in_pieces(dyck, tmp_path, monkeypatch):
    """Parts hold whole documents under PART_BYTES; a document too long to trace at once is traced a piece at a
    time from the state the last piece left, equal to one trace of it."""
    monkeypatch.setattr(index_mod, "PART_BYTES", 32 * 40)  # 40 steps of h and c (8 units, float16) a part
    monkeypatch.setattr(index_mod, "TRACE_BYTES", 4 * 10 * 8 * 50)  # 50 steps of a trace at once
    long = "(" * 100 + ")" * 100 + "$"
    docs = ["(())$", "()$", long, "(()$"]
    idx = build(dyck, docs, tmp_path / "long.zarr", scheduler="sync")
    assert idx.part_starts.tolist() == [0, 8, 8 + len(long), 8 + len(long) + 4]  # the long one alone
    got = idx.rows(0, "c", 8, 8 + len(long))
    whole = dyck.trace(long).layers[0]["c"]
    assert np.all(np.abs(got - whole) <= ulp16(whole) + 1e-5)
    st = idx.stats(0, "c")
    v = idx.rows(0, "c", 0, idx.steps).astype(np.float64)
    assert np.array_equal(st.max, v.max(0)) and np.array_equal(st.top_pos[:, 0], np.argmax(v, 0))


def test_vector_models_index_series_files(tmp_path):
    net = model.load("adding-lstm")
    rng = np.random.default_rng(0)
    a = rng.random((30, net.spec.input_size)).astype(np.float32)
    b = rng.random((12, net.spec.input_size)).astype(np.float32)
    np.save(tmp_path / "a.npy", a)
    (tmp_path / "b.csv").write_text("\n".join(",".join(f"{v:.6f}" for v in row) for row in b))
    idx = build(net, tmp_path, tmp_path / "out.zarr", scheduler="sync")  # the output folder is not .csv/.npy
    assert idx.kind == "vector" and idx.info["sources"] == ["a.npy", "b.csv"] and idx.docs == 2
    assert np.array_equal(idx.inputs(0, 30), a) and np.allclose(idx.inputs(30, 42), b, atol=1e-6)
    assert np.allclose(idx.rows(0, "h", 0, 30), net.trace(a).layers[0]["h"], atol=1e-3)
    assert len(idx.tokens(0, 3)) == 3 and idx.vocab is None
    with pytest.raises(InputError, match="holds vectors"):
        idx.ids(0, 1)


def test_corpus_files_folders_globs_and_jsonl(dyck, tmp_path):
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "b.txt").write_text("(())$")
    (src / "sub" / "a.txt").write_text("()$\n(($\n\n)$\n")
    (src / "blob.bin").write_bytes(b"\x00\x01\x02(")  # a binary file in a folder: skipped
    (tmp_path / "c.jsonl").write_text(json.dumps({"text": "()()$"}) + "\n\n" + json.dumps({"text": "(((", "id": 3}))
    idx = build(dyck, [src, str(tmp_path / "*.jsonl")], tmp_path / "o.zarr", per="line", scheduler="sync")
    assert idx.info["sources"] == ["b.txt", "sub/a.txt", str(tmp_path / "c.jsonl")]
    assert [idx.text(d) for d in range(idx.docs)] == ["(())$", "()$", "(($", ")$", "()()$", "((("]
    assert [idx.source_of(d)["line"] for d in range(idx.docs)] == [0, 0, 1, 3, 0, 2]
    (src / "sub" / "a.txt").write_text("()(($")
    per_file = build(dyck, src, tmp_path / "f.zarr", scheduler="sync")
    assert [per_file.text(d) for d in range(per_file.docs)] == ["(())$", "()(($"]
    assert [per_file.source_of(d)["source"] for d in range(2)] == ["b.txt", "sub/a.txt"]


def test_texts_are_documents_not_names(dyck, tmp_path):
    idx = build(dyck, Texts(["()$", "(($"]), tmp_path / "t.zarr", scheduler="sync")
    assert idx.docs == 2 and idx.info["sources"] == ["<texts>"]


@pytest.mark.parametrize(
    "make, corpus, message",
    [
        (None, ["{tmp}/nothing/*.txt"], "no files matched"),
        (None, "{tmp}/missing.txt", "no such file or folder"),
        ("bin", "{tmp}/x.txt", "x.txt: a binary file"),
        ("jsonl", "{tmp}/x.jsonl", 'x.jsonl line 2: each line must be an object with a "text"'),
        ("badjson", "{tmp}/x.jsonl", "x.jsonl line 1: not JSON"),
        ("empty", "{tmp}/x.txt", "holds no documents"),
        ("unknown", "{tmp}/x.txt", r"x.txt line 2: .*'x' at 1"),
        ("unknown_file", "{tmp}/x.txt", r"x.txt line 1: .*'x' at 6"),
        ("latin1", "{tmp}/x.txt", "x.txt: not UTF-8"),
    ],
)
def test_bad_corpora_name_the_file_and_line(dyck, tmp_path, make, corpus, message):
    f = tmp_path / ("x.jsonl" if make in ("jsonl", "badjson") else "x.txt")
    content = {
        "bin": b"(()\x00",
        "jsonl": b'{"text": "()"}\n{"body": "()"}\n',
        "badjson": b"{text\n",
        "empty": b"",
        "unknown": b"(())\n(x)\n",
        "unknown_file": b"(())((x",
        "latin1": "(é)".encode("latin-1"),
    }.get(make)
    if content is not None:
        f.write_bytes(content)
    corpus = [c.format(tmp=tmp_path) for c in corpus] if isinstance(corpus, list) else corpus.format(tmp=tmp_path)
    with pytest.raises(InputError, match=message):
        build(dyck, corpus, tmp_path / "o.zarr", per="file" if make == "unknown_file" else "line", scheduler="sync")


def test_bad_settings_are_refused(dyck, tmp_path):
    with pytest.raises(InputError, match="no gate 'q'"):
        build(dyck, Texts(["()"]), tmp_path / "o.zarr", gates=("h", "q"), scheduler="sync")
    with pytest.raises(InputError, match="batch must be at least 1"):
        build(dyck, Texts(["()"]), tmp_path / "o.zarr", batch=0, scheduler="sync")
    with pytest.raises(InputError, match="corpus is empty"):
        build(dyck, [], tmp_path / "o.zarr", scheduler="sync")


def test_gru_records_h_and_the_gates_asked(tmp_path):
    net = model.load("recall-gru")
    text = "".join(v for v in net.vocab if len(v) == 1)[:6]
    idx = build(net, Texts([text, text[::-1]]), tmp_path / "g.zarr", gates=("h", "c", "z"), scheduler="sync")
    assert idx.gates == ["z", "h"]
    z = idx.stats(0, "z")
    assert np.array_equal(z.edges[0], np.linspace(0, 1, 65)) and not np.isnan(z.low).any()


def test_progress_and_stop(dyck, tmp_path, monkeypatch):
    monkeypatch.setattr(index_mod, "PART_BYTES", 32 * 10)
    docs = dyck_docs(12, lo=5, hi=9)
    seen = []
    idx = build(dyck, docs, tmp_path / "p.zarr", scheduler="sync", progress=lambda *a: seen.append(a))
    assert len(seen) == idx.info["parts"] > 2
    assert seen[-1] == (12, 12, idx.info["chars"], idx.info["chars"])
    assert all(a[0] <= b[0] and a[2] < b[2] for a, b in zip(seen, seen[1:]))
    calls = []

    def stop():
        calls.append(1)
        return len(calls) > 2

    with pytest.raises(model.Cancelled, match="stopped after 2"):
        build(dyck, docs, tmp_path / "s.zarr", scheduler="sync", stop=stop)
    with pytest.raises(model.FormatError, match="unfinished"):
        model.Index.open(tmp_path / "s.zarr")


def test_the_code_point_table_encodes_as_the_tokenizer():
    net = model.load("code")
    tok = net.tokenizer
    table = index_mod._char_table(tok)
    assert table is not None
    text = 'def f(x):\n    return x  # ok\t"é"' + "".join(tok.vocab)
    assert np.array_equal(index_mod._encode(tok, text, table).ids, tok.encode(text).ids)


def test_rounds_keep_the_batch_wide_and_cover_every_run_in_order():
    """Runs traced in pieces: each round at most ``batch`` runs and under the budget, as wide as the runs left
    allow, each run's pieces back to back from step 0 to its end (a long run does not narrow the batch)."""
    lengths = np.array([1000, 3, 40, 7, 250, 1, 90, 12])
    rounds = index_mod._rounds(lengths, 3, 8, 8 * 3 * 50)  # 50 steps a piece at width 3
    assert rounds[0][0][0] == 0  # the longest first
    seen = {r: 0 for r in range(len(lengths))}
    for n, rnd in enumerate(rounds):
        assert len({r for r, _, _ in rnd}) == len(rnd) <= 3
        assert max(t1 - t0 for _, t0, t1 in rnd) * len(rnd) * 8 <= 8 * 3 * 50
        left = sum(1 for r in seen if seen[r] < lengths[r])
        assert len(rnd) == min(3, left), f"round {n} narrower than the runs left"
        for r, t0, t1 in rnd:
            assert t0 == seen[r] < t1
            seen[r] = t1
    assert all(seen[r] == lengths[r] for r in seen)


def test_long_and_short_documents_in_one_part_equal_their_traces(dyck, tmp_path, monkeypatch):
    """A part of long and short documents traced in rounds of 7-step pieces, states carried: every stored value
    within a float16 step of the document's own trace, and the same bytes at batch 2 and 64."""
    monkeypatch.setattr(index_mod, "TRACE_BYTES", 4 * 10 * 8 * 7 * 2)  # 7 steps a piece at width 2
    docs = dyck_docs(9, seed=3, lo=2, hi=80)
    stores = {b: build(dyck, docs, tmp_path / f"r{b}.zarr", batch=b, scheduler="sync") for b in (2, 64)}
    idx = stores[2]
    assert idx.info["parts"] == 1
    for d, doc in enumerate(docs):
        a, b = int(idx.doc_starts[d]), int(idx.doc_starts[d + 1])
        for g in ("h", "c"):
            whole = dyck.trace(doc).layers[0][g]
            assert np.all(np.abs(idx.rows(0, g, a, b) - whole) <= ulp16(whole) + 1e-5), f"document {d} gate {g}"
    x, y = stores[2].rows(0, "c", 0, idx.steps), stores[64].rows(0, "c", 0, idx.steps)
    assert np.all(np.abs(x - y) <= np.maximum(ulp16(x), ulp16(y)))
