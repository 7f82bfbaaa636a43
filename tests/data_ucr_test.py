"""Tests for mlts.data.ucr: UCR sets and the TimeGAN generation benchmarks."""

from __future__ import annotations

import pathlib
import shutil

import numpy as np
import pytest

from mlts.data import assets, ucr

REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent
SOURCE = REPO_ROOT.parent / "shared" / "data"
ASSET_DIR = pathlib.Path(str(assets.asset_dir()))
needs_source = pytest.mark.skipif(not (SOURCE / "ecg" / "SHA256SUMS").is_file(),
                                  reason=f"source data not found at {SOURCE}")


@pytest.mark.parametrize("name,split,shape,counts", [
    ("Wafer", "train", (1000, 152), {-1: 97, 1: 903}),
    ("ECG200", "train", (100, 96), {-1: 31, 1: 69}),
    ("ECG200", "test", (100, 96), {-1: 36, 1: 64}),
    ("TwoLeadECG", "train", (23, 82), {1: 12, 2: 11}),
    ("TwoLeadECG", "test", (1139, 82), {1: 569, 2: 570}),
])
def test_ucr_shapes_and_label_counts(name, split, shape, counts):
  x, y = ucr.load_ucr(name, split)
  assert x.shape == shape and x.dtype == np.float64 and x.flags.c_contiguous
  assert y.shape == (shape[0],) and y.dtype == np.int64
  values, n = np.unique(y, return_counts=True)
  assert dict(zip(values.tolist(), n.tolist(), strict=True)) == counts


def test_wafer_test_split_is_not_shipped():
  with pytest.raises(ValueError, match="Wafer.*not shipped"):
    ucr.load_ucr("Wafer", "test")


def test_unknown_ucr_name_and_split():
  with pytest.raises(ValueError, match="GunPoint.*Wafer"):
    ucr.load_ucr("GunPoint", "train")
  with pytest.raises(ValueError, match="valid.*ECG200"):
    ucr.load_ucr("ECG200", "valid")


def test_generation_shapes_columns_and_raw_values():
  stock = ucr.load_generation("stock")
  assert stock.shape == (3685, 6) and stock.dtype == np.float64
  assert ucr.generation_columns("stock") == ("Open", "High", "Low", "Close", "Adj_Close",
                                             "Volume")
  assert stock[0, 0] == 49.676899  # file order (oldest first), no scaling
  assert stock[-1, 3] == pytest.approx(1197.25, abs=0.01)
  np.testing.assert_array_equal(stock[:, 3], stock[:, 4])  # Adj_Close == Close
  energy = ucr.load_generation("energy")
  assert energy.shape == (19735, 28)
  columns = ucr.generation_columns("energy")
  assert len(columns) == 28 and columns[:3] == ("Appliances", "lights", "T1")
  assert columns[-2:] == ("rv1", "rv2")
  np.testing.assert_array_equal(energy[:, -1], energy[:, -2])  # rv2 == rv1
  assert energy[0, 0] == 60.0
  etth = ucr.load_generation("etth")  # ETTh1 without its date column
  assert etth.shape == (17420, 7)
  assert ucr.generation_columns("etth") == ("HUFL", "HULL", "MUFL", "MULL", "LUFL", "LULL", "OT")
  assert etth[0, 0] == 5.827000141143799 and etth[0, -1] == 30.5310001373291


def test_unknown_generation_name():
  with pytest.raises(ValueError, match="sines.*stock"):
    ucr.load_generation("sines")


@needs_source
def test_values_equal_the_source_files():
  for name, split in (("Wafer", "train"), ("ECG200", "test"), ("TwoLeadECG", "test")):
    folder = "wafer" if name == "Wafer" else "ecg"
    table = np.loadtxt(SOURCE / folder / f"{name}_{split.upper()}.txt")
    x, y = ucr.load_ucr(name, split)
    np.testing.assert_array_equal(x, table[:, 1:])
    np.testing.assert_array_equal(y, table[:, 0])
  for name in ("stock", "energy"):
    table = np.loadtxt(SOURCE / "generation" / f"{name}_data.csv", delimiter=",", skiprows=1)
    np.testing.assert_array_equal(ucr.load_generation(name), table)
  table = np.loadtxt(SOURCE / "generation" / "ETTh1.csv", delimiter=",", skiprows=1,
                     usecols=range(1, 8))
  np.testing.assert_array_equal(ucr.load_generation("etth"), table)


def test_parse_ucr_text_validation():
  good = b"1 0.5 0.25\n-1 0.1 0.2\n"
  x, y = ucr.parse_ucr_text(good, source="f.txt", length=2, classes=(-1, 1))
  np.testing.assert_array_equal(y, [1, -1])
  assert x.shape == (2, 2)
  cases = [
      (b"1 nan 0.2\n", "f.txt.*non-finite.*\\(0, 1\\)", {}),
      (b"1 0.5 0.2\n1 0.5\n", "f.txt.*cannot parse", {}),
      (b"1.5 0.5 0.2\n", "f.txt.*label 1.5", {}),
      (b"3 0.5 0.2\n", "f.txt.*label 3.0.*one of", {"classes": (-1, 1)}),
      (b"1 0.5 0.2 0.3\n", "f.txt.*length 2, got 3", {"length": 2}),
      (b"1\n2\n", "f.txt.*label column", {}),
      (b"", "f.txt.*empty", {}),
  ]
  for text, match, kwargs in cases:
    with pytest.raises(ValueError, match=match):
      ucr.parse_ucr_text(text, source="f.txt", **kwargs)


def test_parse_csv_table_validation():
  values, columns = ucr.parse_csv_table(b"a,b\n1,2\n3,4E-17\n", source="g.csv")
  assert columns == ("a", "b") and values.shape == (2, 2) and values[1, 1] == 4e-17
  with pytest.raises(ValueError, match="g.csv.*header has 3 columns but rows have 2"):
    ucr.parse_csv_table(b"a,b,c\n1,2\n", source="g.csv")
  with pytest.raises(ValueError, match="g.csv.*header"):
    ucr.parse_csv_table(b"1,2\n3,4\n", source="g.csv")
  with pytest.raises(ValueError, match="g.csv.*non-finite"):
    ucr.parse_csv_table(b"a,b\n1,inf\n", source="g.csv")


def test_corrupt_and_missing_shipped_files(tmp_path, monkeypatch):
  copy = tmp_path / "assets"
  shutil.copytree(ASSET_DIR, copy)
  path = copy / "ECG200_TEST.txt.gz"
  path.write_bytes(path.read_bytes()[:-10])
  (copy / "energy_data.csv.gz").unlink()
  monkeypatch.setattr(assets, "asset_dir", lambda: copy)
  with pytest.raises(ValueError, match=r"corrupt or modified data file .*ECG200_TEST\.txt\.gz"):
    ucr.load_ucr("ECG200", "test")
  with pytest.raises(FileNotFoundError, match=r"energy_data\.csv\.gz"):
    ucr.load_generation("energy")
  assert ucr.load_ucr("ECG200", "train")[0].shape == (100, 96)
