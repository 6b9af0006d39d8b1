"""Reading a series (model/series.py): CSV with and without a header, each delimiter, .npy 1-D and 2-D,
and refusals that name the row, the column and the problem."""

from __future__ import annotations

import io
import re

import numpy as np
import pytest

import model
from model.errors import InputError
from model.series import read_csv, read_npy, read_series


def npy(a) -> bytes:
    buf = io.BytesIO()
    np.save(buf, a, allow_pickle=True)
    return buf.getvalue()


@pytest.mark.parametrize("sep", [",", ";", "\t"], ids=["comma", "semicolon", "tab"])
def test_a_header_names_the_features_whatever_the_delimiter(sep):
    x, names = read_csv(f"co2{sep}marker\n315.4{sep}0\n\n316.25{sep}1\n")
    assert names == ["co2", "marker"]
    np.testing.assert_array_equal(x, [[315.4, 0], [316.25, 1]])


def test_without_a_header_every_row_is_a_step():
    x, names = read_csv("1\n2.5\n-3e-2\n")
    assert names is None and x.shape == (3, 1)
    np.testing.assert_array_equal(x[:, 0], [1, 2.5, -0.03])


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "the CSV is empty"),
        ("a,b\n", "has a header (a, b) but no rows"),
        ("1,2\n3\n", "row 2 has 1 values, the first row 2"),
        ("a,b\n1,2\n3,x\n", "row 3, column 2: 'x' is not a number"),
        ("1,2\n\n3,nan\n", "row 3, column 2: 'nan' is not a finite number"),
    ],
)
def test_bad_csv_names_the_row_column_and_problem(text, message):
    with pytest.raises(InputError, match=re.escape(message)):
        read_csv(text)


def test_npy_one_and_two_dimensional():
    x, names = read_npy(npy(np.arange(4, dtype=np.float32)))
    assert names is None and x.shape == (4, 1) and x.dtype == np.float64
    x, _ = read_npy(npy(np.ones((5, 2), np.int64)))
    assert x.shape == (5, 2)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (npy(np.array([{"a": 1}], dtype=object)), "does not read as an array of numbers"),
        (npy(np.ones((2, 2, 2))), r"shape \(2, 2, 2\)"),
        (npy(np.zeros((0, 3))), "nothing to trace"),
        (npy(np.array([1.0, np.inf])), "at step 1, feature 0"),
        (npy(np.array(["a", "b"])), "not real numbers"),
        (b"1,2\n", "not a .npy file"),
    ],
    ids=["pickle", "3-d", "empty", "inf", "strings", "not-npy"],
)
def test_bad_npy_is_refused_without_unpickling(data, message):
    with pytest.raises(InputError, match=message):
        read_npy(data)


def test_read_series_goes_by_the_content(tmp_path):
    (tmp_path / "s.csv").write_text("\ufeffv\n1\n2\n")  # a byte-order mark, as Excel writes
    x, names = read_series(tmp_path / "s.csv")
    assert names == ["v"] and x.shape == (2, 1)
    x, _ = read_series(npy(np.ones((3, 2))), "upload.bin")
    assert x.shape == (3, 2)
    with pytest.raises(InputError, match="neither a .npy file nor UTF-8"):
        read_series(b"\xff\xfe\x00", "s.csv")
    with pytest.raises(InputError, match="not a .npy file"):
        read_series(b"1\n2\n", "s.npy")


def test_a_series_steps_show_as_their_values_where_a_texts_tokens_would():
    """The page shows ``display`` where a text's token would be: a step of a series is its values, not its index."""
    from model.network import vector_labels

    spec = model.Spec(cell="gru", input_size=4, hidden_size=2)
    rng = np.random.default_rng(1)
    net = model.Network(spec, {n: rng.standard_normal(spec.expected_shape(n)) for n in spec.param_names()})
    x = np.array([[313.5, 0.123456, 1.0, 7.0], [-2.0, 1e-5, 0.0, 3.0]])
    tr = net.trace(x)
    thin = "\u2009"  # after each comma: the page shows a token's plain spaces as ␣
    assert tr.tokens == ["0", "1"]
    assert tr.display == [f"313.5,{thin}0.1235,{thin}1,{thin}…", f"-2,{thin}1e-05,{thin}0,{thin}…"]
    assert vector_labels(x[:, :1]) == ["313.5", "-2"]
    buf = model.TraceBuffer(net)
    buf.update(x[:1])
    k, new = buf.update(x)
    assert k == 1 and new.display == ["-2,\u20091e-05,\u20090,\u2009…"] and buf.trace.display == tr.display
