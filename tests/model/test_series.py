"""Reading a series (model/series.py): CSV with and without a header, each delimiter, .npy 1-D and 2-D,
and refusals that name the row, the column and the problem."""

from __future__ import annotations

import io
import re

import numpy as np
import pytest

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
