"""Reading a user's own (x, y) pair: every format round-trips, every bad input is a ValueError that
names the argument and the fact (keys, row and column, counts)."""

import csv
import json
import math
import os
import re

import numpy as np
import pytest
import torch

from selfconsistency.userdata import LoadedPair, check_not_constant, check_pair_data, load_pair

RNG = np.random.default_rng(0)
X = RNG.normal(size=(20, 3))
Y = RNG.normal(size=(20, 2))


def same(pair: LoadedPair, x=X, y=Y):
    assert pair.x.dtype == torch.float32 and pair.y.dtype == torch.float32
    np.testing.assert_allclose(pair.x.numpy(), np.asarray(x, dtype=np.float32).reshape(len(x), -1))
    np.testing.assert_allclose(pair.y.numpy(), np.asarray(y, dtype=np.float32).reshape(len(y), -1))


def write_csv(path, rows, delimiter=","):
    with open(path, "w", newline="") as f:
        csv.writer(f, delimiter=delimiter).writerows(rows)
    return path


def table(header=True):
    rows = [[repr(float(v)) for v in (*a, *b)] for a, b in zip(X, Y, strict=True)]
    return ([["a", "b", "c", "d", "e"]] if header else []) + rows


# --- round trips -------------------------------------------------------------------------------------


def test_npz_keys_default_and_named(tmp_path):
    np.savez(tmp_path / "d.npz", x=X, y=Y, z=np.zeros(3))
    pair = load_pair(tmp_path / "d.npz")
    same(pair)
    assert (pair.x_from, pair.y_from, pair.rows_read, pair.dropped) == ("key 'x'", "key 'y'", 20, ())
    same(load_pair(str(tmp_path / "d.npz"), x="y", y="x"), Y, X)
    json.dumps(pair.to_dict())  # the CLI writes it
    assert "20 of 20 rows used" in pair.summary()


def test_npz_with_two_unnamed_arrays_is_the_pair(tmp_path):
    np.savez(tmp_path / "d.npz", X, Y[:, 0])  # arr_0, arr_1
    pair = load_pair(tmp_path / "d.npz")
    same(pair, X, Y[:, 0])
    assert pair.y.shape == (20, 1) and pair.x_from == "key 'arr_0'"


def test_ints_and_booleans_become_float32(tmp_path):
    np.savez(tmp_path / "d.npz", x=np.arange(6).reshape(3, 2), y=np.array([True, False, True]))
    pair = load_pair(tmp_path / "d.npz")
    assert pair.x.dtype == torch.float32 and pair.y.tolist() == [[1.0], [0.0], [1.0]]


def test_npy_pair_beside_data_and_absolute(tmp_path, monkeypatch):
    np.save(tmp_path / "x.npy", X)
    np.save(tmp_path / "y.npy", Y)
    monkeypatch.chdir(tmp_path.parent)  # "y.npy" is not in the working directory: found beside DATA
    same(load_pair(tmp_path / "x.npy", y="y.npy"))
    same(load_pair(tmp_path / "x.npy", y=str(tmp_path / "y.npy")))


def test_npy_directory_is_an_unpacked_npz(tmp_path):
    np.save(tmp_path / "feat.npy", X)
    np.save(tmp_path / "label.npy", Y)
    same(load_pair(tmp_path, x="feat", y="label.npy"))
    same(load_pair(tmp_path), X, Y)  # the only two arrays, in name order
    np.save(tmp_path / "x.npy", Y)
    np.save(tmp_path / "y.npy", X)
    same(load_pair(tmp_path), Y, X)  # "x" and "y" first


def test_one_array_split_by_columns(tmp_path):
    both = np.concatenate([X, Y], axis=1)
    np.save(tmp_path / "d.npy", both)
    pair = load_pair(tmp_path / "d.npy", x="0:3", y="3:")
    same(pair)
    assert pair.x_columns == ("column 0", "column 1", "column 2")
    same(load_pair(tmp_path / "d.npy", x=":3", y="-2,-1"))
    torch.save(torch.from_numpy(both), tmp_path / "d.pt")
    same(load_pair(tmp_path / "d.pt", x="0,1,2", y="3:5"))


def test_csv_with_header_by_names_and_ranges(tmp_path):
    path = write_csv(tmp_path / "d.csv", table())
    pair = load_pair(path, x="a,b,c", y="d:e")  # a range of names includes both ends
    same(pair)
    same(load_pair(path, x=":c", y="d:"))
    same(load_pair(path, x="a", y="b"), X[:, 0], X[:, 1])
    assert pair.x_columns[0] == "column 1 (A, 'a')" and "header" in pair.notes[0]
    same(load_pair(path, x="0:2,c", y="e"), X, Y[:, 1])
    same(load_pair(path, x=":3", y="-2:"))  # the header is not a data row


def test_csv_without_header(tmp_path):
    path = write_csv(tmp_path / "d.csv", table(header=False))
    pair = load_pair(path, x="0:3", y="3:5")
    same(pair)
    assert pair.rows_read == 20 and pair.notes == ("no header row",)
    same(load_pair(path, x="0:3", y="3:5", header=False))
    forced = load_pair(path, x="0:3", y="3:5", header=True)  # the first row read as names
    assert forced.rows_read == 19


@pytest.mark.parametrize("suffix,delimiter", [(".tsv", "\t"), (".csv", ";"), (".CSV", "\t")])
def test_csv_delimiters(tmp_path, suffix, delimiter):
    same(load_pair(write_csv(tmp_path / f"d{suffix}", table(), delimiter), x="a,b,c", y="3:5"))


def test_pandas_and_savetxt_headers(tmp_path):
    # pandas' default integer column names with its index column: ",0,1,2,3,4"
    rows = [["", *map(str, range(5))]] + [[str(i), *r] for i, r in enumerate(table(header=False))]
    pair = load_pair(write_csv(tmp_path / "p.csv", rows), x="1:4", y="4:6")
    same(pair)
    assert pair.rows_read == 20
    np.savetxt(tmp_path / "s.csv", np.concatenate([X, Y], 1), delimiter=",", header="a,b,c,d,e")
    same(load_pair(tmp_path / "s.csv", x="a,b,c", y="d,e"))


def test_csv_blank_lines_comments_and_missing_cells(tmp_path):
    rows = table()
    rows[3][1] = ""  # row 4 of the file, column B
    rows[7][4] = "NA"  # row 8, column E
    rows.insert(5, [])
    rows.insert(2, ["# a comment"])
    path = write_csv(tmp_path / "d.csv", rows)
    with pytest.raises(ValueError, match=r"^x holds 1 non-finite value.*row 5 of d\.csv, column 2 \(B, 'b'\)") as e:
        load_pair(path, x="a,b,c", y="d,e")
    assert "y holds 1" in str(e.value) and "drop_nonfinite=True" in str(e.value) and "2 of 20 rows" in str(e.value)
    pair = load_pair(path, x="a,b,c", y="d,e", drop_nonfinite=True)
    keep = [i for i in range(20) if i not in (2, 6)]
    same(pair, X[keep], Y[keep])
    assert pair.dropped == (2, 6) and pair.n_dropped == 2 and pair.rows_read == 20
    assert "dropped 2 of 20 rows" in pair.notes[-1] and "row 5 of d.csv" in pair.notes[-1]


def test_pt_dict_tuple_and_list(tmp_path):
    tx, ty = torch.from_numpy(X), torch.from_numpy(Y)
    torch.save({"x": tx, "y": ty, "meta": torch.zeros(1)}, tmp_path / "d.pt")
    same(load_pair(tmp_path / "d.pt"))
    torch.save({"a": tx, "b": ty}, tmp_path / "ab.pth")
    same(load_pair(tmp_path / "ab.pth"))
    same(load_pair(tmp_path / "ab.pth", x="b", y="a"), Y, X)
    torch.save((tx, ty), tmp_path / "t.pt")
    same(load_pair(tmp_path / "t.pt"))
    torch.save([ty, torch.zeros(3), tx], tmp_path / "l.pt")
    same(load_pair(tmp_path / "l.pt", x=2, y="0"))


def test_image_shaped_arrays_keep_their_shape(tmp_path):
    images = RNG.normal(size=(6, 1, 4, 4))
    np.savez(tmp_path / "d.npz", x=images, y=np.arange(6))
    pair = load_pair(tmp_path / "d.npz")
    assert pair.x.shape == (6, 1, 4, 4) and pair.y.shape == (6, 1)


# --- bad files ---------------------------------------------------------------------------------------


def test_missing_file_lists_the_folder(tmp_path):
    np.savez(tmp_path / "data.npz", x=X, y=Y)
    (tmp_path / "other.csv").write_text("1,2\n")
    with pytest.raises(ValueError, match=r"^path: .*dta\.npz does not exist.*data\.npz.*other\.csv.*did you mean data"):
        load_pair(tmp_path / "dta.npz")
    with pytest.raises(ValueError, match=r"^path: .* does not exist, nor does its folder"):
        load_pair(tmp_path / "nowhere" / "d.npz")


def test_unknown_extension_lists_supported(tmp_path):
    (tmp_path / "d.xlsx").write_bytes(b"PK")
    with pytest.raises(ValueError, match=r"^path: d\.xlsx has an unknown extension '\.xlsx'; supported: \.npz, \.npy"):
        load_pair(tmp_path / "d.xlsx", x="0", y="1")


def test_missing_key_lists_the_keys(tmp_path):
    np.savez(tmp_path / "d.npz", feats=X, labels=Y, extra=X)
    with pytest.raises(ValueError, match=r"^y: no array 'label' in d\.npz \(did you mean 'labels'\?\); it holds "):
        load_pair(tmp_path / "d.npz", x="feats", y="label")
    with pytest.raises(ValueError, match=r"^x: name the arrays .* it holds 'feats', 'labels', 'extra'"):
        load_pair(tmp_path / "d.npz")
    with pytest.raises(ValueError, match=r"^y: name the array of y"):
        load_pair(tmp_path / "d.npz", x="feats")
    torch.save({"a": torch.zeros(3), "b": torch.zeros(3)}, tmp_path / "d.pt")
    with pytest.raises(ValueError, match=r"^x: no array 'c' in d\.pt; it holds 'a', 'b'"):
        load_pair(tmp_path / "d.pt", x="c", y="a")
    np.save(tmp_path / "a.npy", X)
    with pytest.raises(ValueError, match=r"^y: no array 'b' in .*; it holds 'a'"):
        load_pair(tmp_path, x="a", y="b")


def test_npy_pair_errors(tmp_path):
    np.save(tmp_path / "x.npy", X)
    np.save(tmp_path / "y.npy", Y)
    with pytest.raises(ValueError, match=r"^y: .*yy\.npy does not exist \(nor does yy\.npy.*\); .* holds: .*y\.npy"):
        load_pair(tmp_path / "x.npy", y="yy.npy")
    with pytest.raises(ValueError, match=r"^x: DATA x\.npy is the x array itself .* leave x unset"):
        load_pair(tmp_path / "x.npy", x="x", y="y.npy")
    with pytest.raises(
        ValueError, match=r"^x: x\.npy holds one array of shape \[20, 3\]; give x and y as col.*second \.npy"
    ):
        load_pair(tmp_path / "x.npy")
    np.save(tmp_path / "v.npy", np.zeros(5))
    with pytest.raises(ValueError, match=r"^path: v\.npy holds one array of shape \[5\]; x and y as its columns"):
        load_pair(tmp_path / "v.npy", x="0", y="1")
    np.save(tmp_path / "o.npy", np.array([1, "a", None], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match=r"^path: .*o\.npy holds Python objects"):
        load_pair(tmp_path / "o.npy", y="y.npy")
    (tmp_path / "bad.npy").write_bytes(b"not numpy")
    with pytest.raises(ValueError, match=r"^path: .*bad\.npy is not a \.npy file NumPy can read"):
        load_pair(tmp_path / "bad.npy", y="y.npy")


def test_bad_npz_files(tmp_path):
    np.savez(tmp_path / "o.npz", x=np.array([1, "a"], dtype=object), y=Y)
    with pytest.raises(ValueError, match=r"^path: array 'x' in .*o\.npz holds Python objects"):
        load_pair(tmp_path / "o.npz")
    (tmp_path / "bad.npz").write_bytes(b"garbage, not a zip")
    with pytest.raises(ValueError, match=r"^path: .*bad\.npz is not a \.npz file NumPy can read"):
        load_pair(tmp_path / "bad.npz")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match=r"^path: the directory .*empty holds no \.npy files"):
        load_pair(tmp_path / "empty")


def test_column_spec_errors(tmp_path):
    path = write_csv(tmp_path / "d.csv", table())
    cases = {
        ("a:c", "f"): r"^y: no column named 'f' in d\.csv \(5 columns\); its columns are 'a', 'b', 'c', 'd', 'e'",
        ("0:10", "d"): r"^x: column range '0:10' does not fit: d\.csv \(5 columns\) has 5 columns, positions 0 to 4",
        ("a", "7"): r"^y: column 7 does not exist: .* positions 0 to 4",
        ("a,a", "d"): r"^x: column list 'a,a' selects column position\(s\) \[0\] more than once",
        ("a,,b", "d"): r"^x: column list 'a,,b' has an empty item",
        ("1:x", "d"): r"^x: '1:x' is not a column range like '0:10'",
        ("3:1", "d"): r"^x: column range '3:1' does not fit",
        ("c:a", "d"): r"^x: column range 'c:a' runs backwards \(positions 2 to 0\)",
        ("a:f", "d"): r"^x: no column named 'f' in d\.csv \(5 columns\) \(in 'a:f'\); its columns are 'a'",
        ("a:3", "d"): r"^x: 'a:3' is not a column range like '0:10'",
    }
    for (x, y), message in cases.items():
        with pytest.raises(ValueError, match=message):
            load_pair(path, x=x, y=y)
    with pytest.raises(ValueError, match=r"^x: name the columns of x in d\.csv .* its names are 'a', 'b'"):
        load_pair(path, y="d")
    headerless = write_csv(tmp_path / "n.csv", table(header=False))
    with pytest.raises(ValueError, match=r"^x: 'age' is not a column position or range, and n\.csv .* has no names"):
        load_pair(headerless, x="age", y="0")


def test_ambiguous_and_duplicate_names(tmp_path):
    rows = [["1", "0", "a", "a", "7"]] + [["1.0", "2.0", "3.0", "4.0", "5.0"]] * 3
    path = write_csv(tmp_path / "d.csv", rows)
    with pytest.raises(ValueError, match=r"^x: '0' is ambiguous .* column at position 1 .* write 0:1 for the position"):
        load_pair(path, x="0", y="2")
    with pytest.raises(ValueError, match=r"^y: d\.csv \(5 columns\) has 2 columns named 'a' \(positions \[2, 3\]\)"):
        load_pair(path, x="0:1", y="a")
    same(load_pair(path, x="0:1", y="7"), [[1.0]] * 3, [[5.0]] * 3)  # no position 7: only the name


def test_non_numeric_csv_cell_names_row_and_column(tmp_path):
    rows = table()
    rows[4][3] = "12,5 kg"  # row 5 of the file, column D
    rows[9][0] = "ignored"  # in a column nobody selected
    path = write_csv(tmp_path / "d.csv", rows)
    with pytest.raises(ValueError, match=r"^path: row 5, column 4 \(D, 'd'\) of d\.csv is not a number: '12,5 kg' "):
        load_pair(path, x="b,c", y="3:5")
    same(load_pair(path, x="b,c", y="e"), X[:, 1:], Y[:, 1])


def test_ragged_and_empty_csv(tmp_path):
    rows = table()
    rows[6] = rows[6][:4]
    with pytest.raises(ValueError, match=r"^path: row 7 of d\.csv has 4 fields where the header has 5"):
        load_pair(write_csv(tmp_path / "d.csv", rows), x="a", y="b")
    with pytest.raises(ValueError, match=r"^path: .*e\.csv holds no data rows"):
        load_pair(write_csv(tmp_path / "e.csv", [["# only a comment"]]), x="0", y="1")
    with pytest.raises(ValueError, match=r"^path: .*h\.csv holds a header row and no data rows"):
        load_pair(write_csv(tmp_path / "h.csv", [["a", "b"]]), x="a", y="b")
    (tmp_path / "folder.csv").mkdir()
    with pytest.raises(ValueError, match=r"^path: the directory .*folder\.csv holds no \.npy files"):
        load_pair(tmp_path / "folder.csv", x="0", y="1")
    (tmp_path / "b.csv").write_bytes(b"\xff\xfe\x00a,b\n")
    with pytest.raises(ValueError, match=r"^path: .*b\.csv is not UTF-8 text"):
        load_pair(tmp_path / "b.csv", x="0", y="1")


class Exploit:  # unpickling it would write a file: weights_only must refuse to
    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return (open, (self.target, "w"))


def test_pt_is_loaded_with_weights_only(tmp_path):
    target = tmp_path / "pwned"
    torch.save({"x": Exploit(str(target)), "y": torch.zeros(3)}, tmp_path / "evil.pt")
    with pytest.raises(
        ValueError, match=r"^path: .*evil\.pt holds a .*open object, which torch\.load\(weights_only=True"
    ):
        load_pair(tmp_path / "evil.pt")
    assert not target.exists()
    torch.save({"x": np.zeros(3), "y": torch.zeros(3)}, tmp_path / "np.pt")
    with pytest.raises(ValueError, match=r"^path: .*np\.pt holds a numpy.* refuses to unpickle"):
        load_pair(tmp_path / "np.pt")


def test_pt_that_is_not_tensors(tmp_path):
    torch.save({"x": [1.0, 2.0], "y": torch.zeros(2)}, tmp_path / "l.pt")
    with pytest.raises(ValueError, match=r"^x: key 'x' of l\.pt holds a list, not a tensor"):
        load_pair(tmp_path / "l.pt")
    torch.save(3, tmp_path / "i.pt")
    with pytest.raises(ValueError, match=r"^path: .*i\.pt holds a int; expected a tensor, a dict of tensors"):
        load_pair(tmp_path / "i.pt")
    torch.save((torch.zeros(3), torch.zeros(3), torch.zeros(3)), tmp_path / "t.pt")
    with pytest.raises(ValueError, match=r"^x: t\.pt holds a tuple of 3; give a position 0 to 2"):
        load_pair(tmp_path / "t.pt")
    with pytest.raises(ValueError, match=r"^y: t\.pt holds a tuple of 3; give a position 0 to 2"):
        load_pair(tmp_path / "t.pt", x="0", y="3")
    (tmp_path / "bad.pt").write_text("hello")
    with pytest.raises(ValueError, match=r"^path: .*bad\.pt is not a file torch\.save wrote"):
        load_pair(tmp_path / "bad.pt")


def test_bad_arguments(tmp_path):
    np.savez(tmp_path / "d.npz", x=X, y=Y)
    with pytest.raises(ValueError, match=r"^path must be a file or directory name, got int"):
        load_pair(3)
    with pytest.raises(ValueError, match=r"^x must be a key, a column spec or a file name \(a str\), got list"):
        load_pair(tmp_path / "d.npz", x=["x"], y="y")
    with pytest.raises(ValueError, match=r"^drop_nonfinite must be True or False, got 'yes'"):
        load_pair(tmp_path / "d.npz", drop_nonfinite="yes")
    with pytest.raises(ValueError, match=r"^header applies to \.csv and \.tsv files only, not to d\.npz"):
        load_pair(tmp_path / "d.npz", header=True)
    with pytest.raises(ValueError, match=r"^header must be True, False or None"):
        load_pair(tmp_path / "d.npz", header="no")


def test_file_rows_differ(tmp_path):
    np.savez(tmp_path / "d.npz", x=X, y=Y[:-1])
    with pytest.raises(ValueError, match=r"^x and y must have the same number of rows, got x: 20 and y: 19"):
        load_pair(tmp_path / "d.npz")


# --- check_pair_data and check_not_constant -----------------------------------------------------------


def test_check_pair_data_converts():
    x, y, dropped = check_pair_data(np.arange(4), torch.tensor([[True], [False], [True], [True]]))
    assert x.dtype == y.dtype == torch.float32 and x.shape == y.shape == (4, 1) and dropped == ()
    x, _, _ = check_pair_data([[1, 2], [3, 4]], np.zeros((2, 3), dtype=np.float16))
    assert x.tolist() == [[1.0, 2.0], [3.0, 4.0]]


def test_rows_must_match():
    with pytest.raises(ValueError, match=r"^x and y must have the same number of rows, got x: 5 and y: 4"):
        check_pair_data(np.zeros((5, 2)), np.zeros((4, 2)))


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_values_are_counted_and_located(bad):
    x, y = X.copy(), Y.copy()
    x[7, 2] = x[7, 0] = x[11, 1] = bad
    with pytest.raises(ValueError) as e:
        check_pair_data(x, y)
    message = str(e.value)
    assert re.match(
        r"^x holds 3 non-finite value\(s\) .* in 2 row\(s\), the first at row 7 \(0-based\), column 0", message
    )
    assert "drop_nonfinite=True to drop those 2 of 20 rows" in message and "y holds" not in message
    y[3, 1] = bad
    with pytest.raises(ValueError, match=r"; y holds 1 non-finite value\(s\) .* row 3 \(0-based\), column 1.* 3 of 20"):
        check_pair_data(torch.from_numpy(x), y)


def test_drop_nonfinite_drops_the_right_rows():
    x, y = X.copy(), Y.copy()
    x[[2, 5], 0] = np.nan
    y[[5, 13], 1] = np.inf
    cx, cy, dropped = check_pair_data(x, y, drop_nonfinite=True)
    keep = [i for i in range(20) if i not in (2, 5, 13)]
    assert dropped == (2, 5, 13)
    np.testing.assert_allclose(cx.numpy(), X[keep].astype(np.float32))
    np.testing.assert_allclose(cy.numpy(), Y[keep].astype(np.float32))
    with pytest.raises(ValueError, match=r"^drop_nonfinite: every one of the 2 rows holds a non-finite value"):
        check_pair_data([math.nan, 1.0], [2.0, math.nan], drop_nonfinite=True)
    with pytest.raises(ValueError, match=r"^drop_nonfinite must be True or False, got 1"):
        check_pair_data(X, Y, drop_nonfinite=1)


@pytest.mark.parametrize(
    "bad,message",
    [
        (np.array([["a", "b"], ["c", "d"]]), r"^x must hold numbers, got an array of text \(dtype <U1\)"),
        (np.array([1.0, "2"], dtype=object), r"^x must hold numbers, got an array of Python objects"),
        (np.zeros(2, dtype=complex), r"^x must hold numbers, got an array of complex numbers"),
        (torch.zeros(2, dtype=torch.complex64), r"^x must hold real numbers, got complex dtype torch\.complex64"),
        (np.zeros((0, 3)), r"^x is empty: shape \[0, 3\]"),
        (np.zeros((2, 0)), r"^x is empty: shape \[2, 0\]"),
        (np.float64(3.0), r"^x must have a leading row dimension \[n, \.\.\.\], got a single number"),
        ([[1.0, 2.0], [3.0]], r"^x must be an array or tensor of numbers, got list"),
        (np.array(["2020-01-01", "2020-01-02"], dtype="datetime64[D]"), r"^x must hold numbers, got an array of dates"),
    ],
)
def test_non_numeric_or_empty_is_refused(bad, message):
    with pytest.raises(ValueError, match=message):
        check_pair_data(bad, np.zeros(2))
    with pytest.raises(ValueError, match=message.replace("^x", "^y")):
        check_pair_data(np.zeros(2), bad)


def test_values_float32_cannot_hold():
    x = np.ones((4, 2))
    x[2, 1] = 1e300
    with pytest.raises(
        ValueError, match=r"^x holds values beyond float32's range .* row 2 \(0-based\), column 1: 1e\+300"
    ):
        check_pair_data(x, np.zeros(4))


def test_constant_columns_are_named(tmp_path):
    x = X.copy()
    x[:, 1] = 4.0
    y = Y.copy()
    y[:, 0] = 0.0
    with pytest.raises(ValueError) as e:
        check_not_constant(x, y)
    assert re.match(r"^x has 1 constant column\(s\) over 20 rows: column 1 = 4; y has 1 .*: column 0 = 0", str(e.value))
    assert "divide by zero" in str(e.value)
    check_not_constant(X, Y)  # nothing constant: no error
    images = RNG.normal(size=(3, 2, 2))
    images[:, 0, 1] = 0.5
    with pytest.raises(ValueError, match=r"^y has 1 constant column\(s\) over 3 rows: position \(0, 1\) = 0\.5:"):
        check_not_constant(np.arange(3), images)
    rows = table()
    for r in rows[1:]:
        r[2] = "7"
    pair = load_pair(write_csv(tmp_path / "d.csv", rows), x="a,b,c", y="d,e")
    with pytest.raises(ValueError, match=r"^x has 1 constant column\(s\) over 20 rows: column 3 \(C, 'c'\) = 7:"):
        check_not_constant(pair.x, pair.y, x_columns=pair.x_columns, y_columns=pair.y_columns)


def test_errors_never_leak_from_numpy_or_torch(tmp_path):
    """Every failure above is our ValueError; a stray numpy/torch one would not start with an argument name."""
    names = ("path", "x", "y", "drop_nonfinite", "header")
    bad_inputs = [
        lambda: load_pair(tmp_path / "nope.npz"),
        lambda: check_pair_data(object(), [1.0]),
        lambda: check_pair_data({"a": 1}, [1.0]),
        lambda: check_pair_data("text", [1.0]),
    ]
    for call in bad_inputs:
        with pytest.raises(ValueError) as e:
            call()
        assert str(e.value).startswith(names), str(e.value)
    assert os.listdir(tmp_path) == []
