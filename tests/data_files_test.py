"""Tests for mlts.data.files: a user's own csv / npy / npz files, splits and validation."""

from __future__ import annotations

import csv
import re

import numpy as np
import pytest

from experiments import make_example_data
from mlts.data import files

PUMP = files.EXAMPLES_DIR / "pump.csv"


def _write_csv(path, header, rows):
  path.parent.mkdir(parents=True, exist_ok=True)
  lines = [",".join(header)] + [",".join(str(v) for v in row) for row in rows]
  path.write_text("\n".join(lines) + "\n", encoding="utf-8")
  return path


def _table(n=10, *, labels=None, start_minute=0):
  """Rows timestamp, a, b, label with a = row index, b = 10 * row index."""
  labels = [0] * n if labels is None else labels
  return [(f"2024-01-01 {(start_minute + i) // 60:02d}:{(start_minute + i) % 60:02d}", i, 10 * i,
           labels[i]) for i in range(n)]


HEADER = ("timestamp", "a", "b", "label")


# ----------------------------------------------------------------------------- the shipped file


def test_pump_example():
  [s] = files.load(PUMP, train_until=2000, label_column="label")
  assert s.name == "pump.csv"
  assert s.columns == ("pressure", "flow", "temperature")
  assert s.train.shape == (2000, 3) and s.test.shape == (2000, 3)
  assert s.train.dtype == s.test.dtype == np.float64
  assert s.labels.dtype == np.int8 and s.labels.shape == (2000,) and s.has_labels
  with open(PUMP, newline="", encoding="utf-8") as f:
    in_file = sum(int(row["label"]) for row in csv.DictReader(f))
  assert 0 < int(s.labels.sum()) == in_file
  by_time = files.load(PUMP, train_until="2024-01-02 09:20", label_column="label",
                       timestamp_column="timestamp")[0]
  by_fraction = files.load(PUMP, train_until=0.5, label_column="label")[0]
  for other in (by_time, by_fraction):
    np.testing.assert_array_equal(other.train, s.train)
    np.testing.assert_array_equal(other.test, s.test)
    np.testing.assert_array_equal(other.labels, s.labels)
  corr = np.corrcoef(s.train.T)
  assert corr[0, 1] < -0.9 and corr[1, 2] > 0.8  # As the README says.


def test_pump_example_is_reproducible(tmp_path):
  assert PUMP.stat().st_size < 250_000
  assert make_example_data.pump_csv() == PUMP.read_text(encoding="utf-8")


# ----------------------------------------------------------------------------- splits


def test_row_count_fraction_and_timestamp_splits_agree(tmp_path):
  path = _write_csv(tmp_path / "s.csv", HEADER, _table(10, labels=[0] * 7 + [0, 1, 1]))
  common = dict(label_column="label", timestamp_column="timestamp")
  splits = [files.load(path, train_until=until, **common)[0]
            for until in (7, 0.7, "2024-01-01 00:07", "2024-01-01T00:06:30")]
  for s in splits:
    assert s.columns == ("a", "b")
    np.testing.assert_array_equal(s.train, [[i, 10 * i] for i in range(7)])
    np.testing.assert_array_equal(s.test, [[i, 10 * i] for i in range(7, 10)])
    np.testing.assert_array_equal(s.labels, [0, 1, 1])
    assert s.has_labels and s.labels.dtype == np.int8


def test_fraction_rounds_half_up(tmp_path):
  path = _write_csv(tmp_path / "s.csv", ("a",), [(i,) for i in range(10)])
  assert len(files.load(path, train_until=0.25)[0].train) == 3  # 2.5 -> 3
  assert len(files.load(path, train_until=0.24)[0].train) == 2


def test_numeric_timestamps_split(tmp_path):
  path = _write_csv(tmp_path / "s.csv", ("t", "x"), [(100 + 5 * i, i) for i in range(6)])
  [s] = files.load(path, timestamp_column="t", train_until="112")
  assert s.columns == ("x",)
  np.testing.assert_array_equal(s.train[:, 0], [0, 1, 2])


def test_no_label_column_gives_zero_labels(tmp_path):
  path = _write_csv(tmp_path / "s.csv", ("a", "b"), [(i, -i) for i in range(5)])
  [s] = files.load(path, train_until=3)
  assert not s.has_labels and s.labels.dtype == np.int8
  np.testing.assert_array_equal(s.labels, [0, 0])


def test_column_selection(tmp_path):
  path = _write_csv(tmp_path / "s.csv", ("name", "a", "b", "c"),
                    [("pump", i, 2 * i, 3 * i) for i in range(5)])
  assert files.load(path, train_until=3)[0].columns == ("a", "b", "c")  # 'name' is not numeric.
  [s] = files.load(path, train_until=3, columns="c, a")
  assert s.columns == ("c", "a")
  np.testing.assert_array_equal(s.train, [[0, 0], [3, 1], [6, 2]])
  assert files.load(path, train_until=3, columns=["b"])[0].columns == ("b",)


def test_label_spellings(tmp_path):
  path = _write_csv(tmp_path / "s.csv", ("x", "y"),
                    [(i, v) for i, v in enumerate(["0", "0.0", "false", "FALSE", "1", "1.0",
                                                   "true", " True "])])
  [s] = files.load(path, label_column="y", train_until=4)
  np.testing.assert_array_equal(s.labels, [1, 1, 1, 1])


def test_parse_train_until():
  rows = files.parse_train_until("2000")
  assert rows == 2000 and isinstance(rows, int)
  assert files.parse_train_until("0.7") == 0.7
  assert files.parse_train_until(" 2024-01-05 ") == "2024-01-05"
  assert files.parse_train_until("2024-01-02 09:20") == "2024-01-02 09:20"
  assert files.parse_train_until("") is None and files.parse_train_until(None) is None
  assert files.parse_train_until(5) == 5


# ----------------------------------------------------------------------------- folders, test files


def test_folder_gives_one_series_per_file_sorted(tmp_path):
  _write_csv(tmp_path / "b.csv", ("x",), [(i,) for i in range(6)])
  _write_csv(tmp_path / "a.csv", ("x",), [(10 + i,) for i in range(6)])
  np.save(tmp_path / "c.npy", np.arange(12.0).reshape(6, 2))
  (tmp_path / "notes.txt").write_text("skipped")
  series = files.load(tmp_path, train_until=4)
  assert [s.name for s in series] == ["a.csv", "b.csv", "c.npy"]
  assert series[0].train[0, 0] == 10 and series[1].train[0, 0] == 0
  assert series[2].columns == ("c0", "c1") and series[2].test.shape == (2, 2)


def test_separate_test_file(tmp_path):
  train = _write_csv(tmp_path / "train.csv", HEADER, _table(5))
  test = _write_csv(tmp_path / "test.csv", HEADER, _table(4, labels=[0, 1, 1, 0], start_minute=5))
  [s] = files.load(train, test_path=test, label_column="label", timestamp_column="timestamp")
  assert s.name == "train.csv" and s.columns == ("a", "b")
  assert s.train.shape == (5, 2) and s.test.shape == (4, 2)
  np.testing.assert_array_equal(s.labels, [0, 1, 1, 0])
  # The train file need not have the label column.
  bare = _write_csv(tmp_path / "bare.csv", ("a", "b"), [(i, i) for i in range(5)])
  [s] = files.load(bare, test_path=test, label_column="label")
  assert s.has_labels and s.labels.sum() == 2


def test_separate_test_folder(tmp_path):
  for name in ("p1.csv", "p2.csv"):
    _write_csv(tmp_path / "train" / name, HEADER, _table(5))
    _write_csv(tmp_path / "test" / name, HEADER, _table(3, labels=[0, 0, 1]))
  series = files.load(tmp_path / "train", test_path=tmp_path / "test", label_column="label")
  assert [s.name for s in series] == ["p1.csv", "p2.csv"]
  assert all(s.train.shape == (5, 2) and s.labels.tolist() == [0, 0, 1] for s in series)


def test_npy(tmp_path):
  np.save(tmp_path / "x.npy", np.arange(8, dtype=np.int32))
  [s] = files.load(tmp_path / "x.npy", train_until=6)
  assert s.columns == ("c0",) and s.train.shape == (6, 1) and s.test.shape == (2, 1)
  assert s.train.dtype == np.float64 and not s.has_labels
  np.save(tmp_path / "y.npy", np.arange(12.0).reshape(6, 2))
  [s] = files.load(tmp_path / "y.npy", train_until=0.5, columns="c1")
  np.testing.assert_array_equal(s.train[:, 0], [1, 3, 5])


def test_npz_with_train_test_labels(tmp_path):
  path = tmp_path / "d.npz"
  np.savez(path, train=np.ones((6, 2)), test=np.zeros((4, 2)), labels=np.array([0, 1, 1, 0]))
  [s] = files.load(path)
  assert s.name == "d.npz" and s.columns == ("c0", "c1")
  assert s.train.shape == (6, 2) and s.test.shape == (4, 2) and s.has_labels
  np.testing.assert_array_equal(s.labels, [0, 1, 1, 0])
  with pytest.raises(ValueError, match=r"d\.npz.*'test' array, so train_until must be None"):
    files.load(path, train_until=3)


def test_npz_without_test_is_split(tmp_path):
  path = tmp_path / "d.npz"
  np.savez(path, train=np.arange(6.0), labels=np.array([0, 0, 0, 0, 1, 0]))
  [s] = files.load(path, train_until=4)
  assert s.train.shape == (4, 1) and s.labels.tolist() == [1, 0]
  with pytest.raises(ValueError, match=r"d\.npz.*train part has 1 row\(s\) labelled 1"):
    files.load(path, train_until=5)


# ----------------------------------------------------------------------------- errors


def test_nan_and_empty_cells(tmp_path):
  path = _write_csv(tmp_path / "gaps.csv", ("a", "b"), [(1, 2), (3, "nan"), (5, 6)])
  with pytest.raises(ValueError, match=r"gaps\.csv: column 'b' .*data row 2 \(line 3\): 'nan'"):
    files.load(path, train_until=2)
  path = _write_csv(tmp_path / "empty.csv", ("a", "b"), [(1, 2), (3, 4), ("", 6)])
  with pytest.raises(ValueError, match=r"empty\.csv: column 'a' .*data row 3 \(line 4\): ''"):
    files.load(path, train_until=2)
  path = _write_csv(tmp_path / "inf.csv", ("a",), [(1,), ("inf",), (3,)])
  with pytest.raises(ValueError, match=r"inf\.csv: column 'a' .*non-finite.*data row 2"):
    files.load(path, train_until=2)
  np.save(tmp_path / "n.npy", np.array([[1.0, 2.0], [3.0, np.nan], [4.0, 5.0]]))
  with pytest.raises(ValueError, match=r"n\.npy: column 'c1' .*row 2 \(index 1\)"):
    files.load(tmp_path / "n.npy", train_until=2)


def test_non_numeric_selected_column(tmp_path):
  path = _write_csv(tmp_path / "s.csv", ("a", "kind"), [(1, "x"), (2, "y"), (3, "z")])
  with pytest.raises(ValueError, match=r"s\.csv: column 'kind', data row 1 \(line 2\): 'x' is not"):
    files.load(path, train_until=2, columns="a,kind")


def test_unknown_column(tmp_path):
  path = _write_csv(tmp_path / "s.csv", HEADER, _table(5))
  message = re.escape("unknown column 'c'; available columns: ['timestamp', 'a', 'b', 'label']")
  with pytest.raises(ValueError, match=r"s\.csv: " + message):
    files.load(path, train_until=3, columns="a,c")
  with pytest.raises(ValueError, match=r"s\.csv: unknown label_column 'y'; available"):
    files.load(path, train_until=3, label_column="y")
  with pytest.raises(ValueError, match=r"s\.csv: unknown timestamp_column 'time'; available"):
    files.load(path, train_until=3, timestamp_column="time")
  np.save(tmp_path / "x.npy", np.zeros((4, 2)))
  with pytest.raises(ValueError, match=r"x\.npy: unknown column 'c2'; available.*'c0', 'c1'"):
    files.load(tmp_path / "x.npy", train_until=2, columns="c2")


def test_bad_label(tmp_path):
  path = _write_csv(tmp_path / "s.csv", ("a", "y"), [(1, 0), (2, 0), (3, 2)])
  with pytest.raises(ValueError, match=r"s\.csv: label column 'y', data row 3 \(line 4\): '2'"):
    files.load(path, train_until=2, label_column="y")
  np.savez(tmp_path / "d.npz", train=np.ones(4), test=np.ones(2), labels=np.array([0, 3]))
  with pytest.raises(ValueError, match=r"d\.npz\[labels\]: values must be 0 or 1"):
    files.load(tmp_path / "d.npz")


def test_anomalous_train_labels(tmp_path):
  path = _write_csv(tmp_path / "s.csv", HEADER, _table(10, labels=[0, 1, 1, 0, 0, 0, 0, 0, 0, 1]))
  with pytest.raises(ValueError, match=r"s\.csv: the train part has 2 row\(s\) labelled 1 "
                     r"\(first at data row 2 \(line 3\)\); training data must be normal"):
    files.load(path, train_until=5, label_column="label")
  test = _write_csv(tmp_path / "t.csv", HEADER, _table(3))
  with pytest.raises(ValueError, match=r"s\.csv: the train part has 3 row\(s\) labelled 1"):
    files.load(path, test_path=test, label_column="label")


def test_non_monotonic_timestamps(tmp_path):
  rows = _table(5)
  rows[3], rows[2] = rows[2], rows[3]
  path = _write_csv(tmp_path / "s.csv", HEADER, rows)
  with pytest.raises(ValueError, match=r"s\.csv: timestamp column 'timestamp' must be "
                     r"non-decreasing; data row 4 \(line 5\) has '2024-01-01 00:02' after"):
    files.load(path, train_until=2, timestamp_column="timestamp")
  path = _write_csv(tmp_path / "u.csv", ("t", "x"), [("2024-01-01", 1), ("soon", 2), ("x", 3)])
  with pytest.raises(ValueError, match=r"u\.csv: timestamp column 't', data row 2 .*'soon' is "
                     "neither a number nor an ISO-8601 time"):
    files.load(path, train_until=2, timestamp_column="t")


def test_missing_paths(tmp_path):
  with pytest.raises(FileNotFoundError, match=re.escape(str(tmp_path / "nope.csv"))):
    files.load(tmp_path / "nope.csv", train_until=2)
  path = _write_csv(tmp_path / "s.csv", ("a",), [(1,), (2,), (3,)])
  with pytest.raises(FileNotFoundError, match=r"test_path not found: .*gone\.csv"):
    files.load(path, test_path=tmp_path / "gone.csv")


def test_bad_train_until(tmp_path):
  path = _write_csv(tmp_path / "s.csv", HEADER, _table(5))
  for until, numbers in ((1, "1 train and 4 test"), (5, "5 train and 0 test"),
                         (9, "5 train and 0 test"), (0.1, "1 train and 4 test"),
                         (0.95, "5 train and 0 test")):
    with pytest.raises(ValueError, match=rf"s\.csv: train_until={until!r} splits its 5 rows into "
                       rf"{numbers} rows; need at least 2 train rows and 1 test row"):
      files.load(path, train_until=until)
  with pytest.raises(ValueError, match=r"s\.csv: train_until='2023-12-31' splits its 5 rows "
                     "into 0 train"):
    files.load(path, train_until="2023-12-31", timestamp_column="timestamp")
  for until, message in ((0, "must be >= 1"), (-3, "must be >= 1"), (1.0, r"fraction.*\(0, 1\)"),
                         (2000.0, "pass an int for a row count"), ("", "empty string"),
                         ("2024-01-01", "needs timestamp_column")):
    with pytest.raises(ValueError, match=message):
      files.load(path, train_until=until)
  with pytest.raises(TypeError, match="bool"):
    files.load(path, train_until=True)
  with pytest.raises(ValueError, match=r"s\.csv: train_until 'tomorrow' is not an ISO-8601 time"):
    files.load(path, train_until="tomorrow", timestamp_column="timestamp")


def test_no_test_data(tmp_path):
  path = _write_csv(tmp_path / "s.csv", ("a",), [(1,), (2,), (3,)])
  with pytest.raises(ValueError, match=r"s\.csv: no test data: pass train_until .* or test_path"):
    files.load(path)
  with pytest.raises(ValueError, match="either train_until .* or test_path"):
    files.load(path, train_until=2, test_path=path)


def test_mismatched_folder_names(tmp_path):
  for name in ("p1.csv", "p2.csv"):
    _write_csv(tmp_path / "train" / name, ("a",), [(1,), (2,)])
  for name in ("p1.csv", "p3.csv"):
    _write_csv(tmp_path / "test" / name, ("a",), [(1,), (2,)])
  with pytest.raises(ValueError, match=r"same file names; no test file for \['p2\.csv'\], "
                     r"no train file for \['p3\.csv'\]"):
    files.load(tmp_path / "train", test_path=tmp_path / "test")
  with pytest.raises(ValueError, match="both be folders or both be files"):
    files.load(tmp_path / "train", test_path=tmp_path / "test" / "p1.csv")


def test_mismatched_columns(tmp_path):
  train = _write_csv(tmp_path / "train.csv", ("a", "b"), [(1, 2), (3, 4)])
  test = _write_csv(tmp_path / "test.csv", ("a", "c"), [(1, 2)])
  with pytest.raises(ValueError, match=r"train file .*train\.csv has value columns \['a', 'b'\] "
                     r"but test file .*test\.csv has \['a', 'c'\]"):
    files.load(train, test_path=test)
  with pytest.raises(ValueError, match=r"test\.csv: unknown column 'b'"):
    files.load(train, test_path=test, columns="a,b")
  np.savez(tmp_path / "d.npz", train=np.ones((4, 2)), test=np.ones((2, 3)))
  with pytest.raises(ValueError, match=r"d\.npz: 'train' has 2 column\(s\) but 'test' has 3"):
    files.load(tmp_path / "d.npz")


def test_file_and_folder_errors(tmp_path):
  (tmp_path / "x.txt").write_text("a\n1\n")
  with pytest.raises(ValueError, match=r"x\.txt: unsupported file type '\.txt'; supported: "
                     r"\.csv, \.npy, \.npz"):
    files.load(tmp_path / "x.txt", train_until=1)
  (tmp_path / "empty").mkdir()
  with pytest.raises(ValueError, match=r"empty: no supported data files"):
    files.load(tmp_path / "empty", train_until=2)
  no_header = _write_csv(tmp_path / "h.csv", ("1", "2"), [(3, 4)])
  with pytest.raises(ValueError, match=r"h\.csv: the first line .* looks like data; a header"):
    files.load(no_header, train_until=2)
  ragged = tmp_path / "r.csv"
  ragged.write_text("a,b\n1,2\n3\n")
  with pytest.raises(ValueError, match=r"r\.csv: line 3 has 1 fields but the header has 2"):
    files.load(ragged, train_until=1)
  np.savez(tmp_path / "k.npz", train=np.ones(4), train_labels=np.zeros(4))
  with pytest.raises(ValueError, match=r"k\.npz: keys .*unsupported: \['train_labels'\]"):
    files.load(tmp_path / "k.npz", train_until=2)
  np.save(tmp_path / "o.npy", np.array([{"a": 1}], dtype=object))
  with pytest.raises(ValueError, match=r"o\.npy: not a readable \.npy file"):
    files.load(tmp_path / "o.npy", train_until=1)
  with pytest.raises(ValueError, match=r"x\.npy: label_column and timestamp_column name \.csv"):
    np.save(tmp_path / "x.npy", np.ones(4))
    files.load(tmp_path / "x.npy", train_until=2, label_column="label")
