"""Tests for mlts.data.nasa: pinned benchmark statistics, layouts and validation."""

from __future__ import annotations

import csv
import pathlib
import shutil
import time

import numpy as np
import pytest

from mlts.data import assets, nasa

REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent
SOURCE = REPO_ROOT.parent / "shared" / "data"
ASSET_DIR = pathlib.Path(str(assets.asset_dir()))
needs_source = pytest.mark.skipif(not (SOURCE / "nasa" / "SHA256SUMS").is_file(),
                                  reason=f"source data not found at {SOURCE}")


@pytest.fixture(scope="module")
def smap():
  return nasa.load_spacecraft("SMAP", features="all")


@pytest.fixture(scope="module")
def msl():
  return nasa.load_spacecraft("MSL", features="all")


def _totals(channels):
  return (len(channels), sum(len(c.train) for c in channels), sum(len(c.test) for c in channels),
          sum(int(c.labels.sum()) for c in channels))


def test_smap_statistics_without_p2(smap):
  assert _totals(smap) == (53, 135_183, 427_617, 54_696)
  assert "P-2" not in [c.name for c in smap]
  assert {c.train.shape[1] for c in smap} == {c.test.shape[1] for c in smap} == {25}
  assert {c.spacecraft for c in smap} == {"SMAP"}


def test_smap_statistics_with_p2():
  channels = nasa.load_spacecraft("smap", include_p2=True)
  assert _totals(channels) == (54, 138_004, 435_826, 55_972)
  assert {c.train.shape[1] for c in channels} == {1}


def test_msl_statistics(msl):
  assert _totals(msl) == (27, 58_317, 73_729, 7_766)
  assert {c.train.shape[1] for c in msl} == {c.test.shape[1] for c in msl} == {55}
  assert {c.spacecraft for c in msl} == {"MSL"}
  assert nasa.list_channels("MSL", include_p2=True) == nasa.list_channels("msl")


def test_channel_dtypes_and_labels(smap, msl):
  for c in smap + msl:
    assert c.train.dtype == c.test.dtype == np.float64
    assert c.labels.dtype == np.int8 and c.labels.shape == (len(c.test),)
    assert set(np.unique(c.labels)) <= {0, 1}
    expected = np.zeros(len(c.test), np.int8)
    for start, end in c.anomaly_sequences:
      expected[start:end + 1] = 1  # inclusive end
    np.testing.assert_array_equal(c.labels, expected)


def test_telemetry_is_column_zero(msl):
  one = nasa.load_channel("M-6")
  full = next(c for c in msl if c.name == "M-6")
  assert one.train.shape == (len(full.train), 1) and one.test.shape == (len(full.test), 1)
  np.testing.assert_array_equal(one.test[:, 0], full.test[:, 0])
  np.testing.assert_array_equal(one.labels, full.labels)
  assert one.test.max() == pytest.approx(258.1, abs=0.05)  # the documented real spike


def test_inclusive_end_and_csv_order_of_sequences():
  c = nasa.load_channel("F-5")
  assert c.anomaly_sequences == ((3550, 3700),)
  assert c.labels[3549] == 0 and c.labels[3550] == 1 and c.labels[3700] == 1
  assert c.labels[3701] == 0 and c.labels.sum() == 151
  assert nasa.load_channel("P-1").anomaly_sequences == ((2149, 2349), (4536, 4844), (3539, 3779))


def test_p2_merges_both_rows():
  c = nasa.load_channel("P-2", features="all")
  assert c.spacecraft == "SMAP"
  assert c.train.shape == (2821, 25) and c.test.shape == (8209, 25)
  assert c.anomaly_sequences == ((5350, 6575), (5300, 6420))
  expected = np.zeros(8209, np.int8)
  expected[5300:6576] = 1
  np.testing.assert_array_equal(c.labels, expected)
  assert "P-2" not in nasa.list_channels("SMAP")
  assert nasa.list_channels("SMAP", include_p2=True).count("P-2") == 1


def test_channel_order_is_csv_first_occurrence():
  text = (ASSET_DIR / "labeled_anomalies.csv").read_text()
  order = {"SMAP": [], "MSL": []}
  for row in csv.DictReader(text.splitlines()):
    if row["chan_id"] not in order[row["spacecraft"]]:
      order[row["spacecraft"]].append(row["chan_id"])
  assert nasa.list_channels("SMAP", include_p2=True) == order["SMAP"]
  assert nasa.list_channels("MSL") == order["MSL"]
  assert nasa.list_channels("SMAP") == [c for c in order["SMAP"] if c != "P-2"]


def test_t10_is_never_listed_or_loaded():
  for craft in ("SMAP", "MSL"):
    assert "T-10" not in nasa.list_channels(craft, include_p2=True)
  with pytest.raises(ValueError, match="T-10.*unlabelled"):
    nasa.load_channel("T-10")
  assert "train/T-10" in assets.load_npz("nasa_msl.npz").files


def test_identical_test_arrays_p10_p14():
  p10, p14 = nasa.load_channel("P-10", features="all"), nasa.load_channel("P-14", features="all")
  np.testing.assert_array_equal(p10.test, p14.test)
  assert p10.train.shape != p14.train.shape or not np.array_equal(p10.train, p14.train)


def test_loading_all_smap_channels_is_fast():
  start = time.perf_counter()
  nasa.load_spacecraft("SMAP", features="all")
  assert time.perf_counter() - start < 5.0


@needs_source
def test_shipped_arrays_equal_the_source_npy_files():
  names = [p.stem for p in (SOURCE / "nasa" / "test").glob("*.npy")]
  assert len(names) == 82
  for name in names:
    craft = "msl" if name == "T-10" or name in nasa.list_channels("MSL") else "smap"
    archive = assets.load_npz(f"nasa_{craft}.npz")
    for split in ("train", "test"):
      want = np.load(SOURCE / "nasa" / split / f"{name}.npy")
      got = archive[f"{split}/{name}"]
      assert got.dtype == want.dtype == np.float64, name
      assert np.array_equal(got, want), f"{split}/{name}"
    if name != "T-10":
      np.testing.assert_array_equal(nasa.load_channel(name, features="all").test,
                                    np.load(SOURCE / "nasa" / "test" / f"{name}.npy"))


# --- user copies in telemanom layout (root=...) and validation ---

COPIED = ("A-1", "P-2", "M-6", "T-10")


@pytest.fixture
def root(tmp_path):
  """A telemanom-layout copy of a few channels, written from the shipped data."""
  shutil.copy(ASSET_DIR / "labeled_anomalies.csv", tmp_path / "labeled_anomalies.csv")
  for split in ("train", "test"):
    (tmp_path / split).mkdir()
    for name in COPIED:
      craft = "msl" if name in ("M-6", "T-10") else "smap"
      np.save(tmp_path / split / f"{name}.npy",
              assets.load_npz(f"nasa_{craft}.npz")[f"{split}/{name}"])
  return tmp_path


def _rewrite_csv_row(root_dir, chan, **fields):
  """Sets `fields` on the first csv row of `chan`."""
  path = root_dir / "labeled_anomalies.csv"
  rows = list(csv.reader(path.read_text().splitlines()))
  header = rows[0]
  row = next(r for r in rows[1:] if r[0] == chan)
  for key, value in fields.items():
    row[header.index(key)] = value
  with path.open("w", newline="") as f:
    csv.writer(f, lineterminator="\n").writerows(rows)


@pytest.mark.parametrize("features", ["telemetry", "all"])
def test_root_copy_gives_identical_channels(root, features):
  for name in COPIED[:3]:
    got = nasa.load_channel(name, features=features, root=root)
    want = nasa.load_channel(name, features=features)
    assert (got.name, got.spacecraft, got.anomaly_sequences) == (
        want.name, want.spacecraft, want.anomaly_sequences)
    for field in ("train", "test", "labels"):
      a, b = getattr(got, field), getattr(want, field)
      assert a.dtype == b.dtype and np.array_equal(a, b), (name, field)
  assert nasa.list_channels("SMAP", root=str(root)) == nasa.list_channels("SMAP")


def test_root_float32_copy_is_widened(root):
  path = root / "train" / "A-1.npy"
  np.save(path, np.load(path).astype(np.float32))
  assert nasa.load_channel("A-1", root=root).train.dtype == np.float64


def test_unknown_channel_lists_valid_names():
  with pytest.raises(ValueError, match=r"X-99.*P-1, S-1"):
    nasa.load_channel("X-99")


def test_unknown_spacecraft():
  for call in (lambda: nasa.list_channels("Voyager"),
               lambda: nasa.load_spacecraft("Voyager")):
    with pytest.raises(ValueError, match="Voyager.*SMAP"):
      call()


def test_bad_arguments_fail_before_touching_files(tmp_path):
  missing = tmp_path / "nowhere"
  with pytest.raises(ValueError, match="bogus"):
    nasa.load_spacecraft("SMAP", features="bogus", root=missing)
  with pytest.raises(ValueError, match="bogus"):
    nasa.load_channel("A-1", features="bogus", root=missing)
  with pytest.raises(ValueError, match="Voyager"):
    nasa.load_spacecraft("Voyager", root=missing)


def test_missing_files_name_the_path(root, tmp_path):
  (root / "test" / "A-1.npy").unlink()
  with pytest.raises(FileNotFoundError, match=r"A-1.*test.A-1\.npy"):
    nasa.load_channel("A-1", root=root)
  with pytest.raises(FileNotFoundError, match=r"S-1.*train.S-1\.npy"):
    nasa.load_channel("S-1", root=root)  # in the csv but not copied
  with pytest.raises(FileNotFoundError, match="labeled_anomalies.csv"):
    nasa.list_channels("SMAP", root=tmp_path / "train")
  with pytest.raises(FileNotFoundError, match="nowhere"):
    nasa.list_channels("SMAP", root=tmp_path / "nowhere")


def test_nan_names_file_channel_and_index(root):
  path = root / "test" / "M-6.npy"
  arr = np.load(path)
  arr[17, 3] = np.nan
  np.save(path, arr)
  with pytest.raises(ValueError, match=r"M-6\.npy.*channel M-6.*non-finite.*\(17, 3\)"):
    nasa.load_channel("M-6", root=root)


def test_wrong_rank_and_empty_series(root):
  np.save(root / "train" / "A-1.npy", np.zeros(10))
  with pytest.raises(ValueError, match=r"train.A-1\.npy.*rank 2"):
    nasa.load_channel("A-1", root=root)
  np.save(root / "train" / "A-1.npy", np.zeros((0, 25)))
  with pytest.raises(ValueError, match=r"train.A-1\.npy.*empty"):
    nasa.load_channel("A-1", root=root)


def test_feature_count_mismatch(root):
  np.save(root / "train" / "A-1.npy", np.zeros((10, 3)))
  with pytest.raises(ValueError, match="A-1.*3 features.*25"):
    nasa.load_channel("A-1", root=root)


def test_unreadable_npy(root):
  (root / "test" / "A-1.npy").write_bytes(b"not an npy file")
  with pytest.raises(ValueError, match=r"test.A-1\.npy.*not a NumPy \.npy file"):
    nasa.load_channel("A-1", root=root)


def test_num_values_mismatch(root):
  _rewrite_csv_row(root, "A-1", num_values="1234")
  with pytest.raises(ValueError, match=r"A-1.*num_values 1234.*length 8640"):
    nasa.load_channel("A-1", root=root)


def test_anomaly_index_outside_test_series(root):
  _rewrite_csv_row(root, "M-6", anomaly_sequences="[[1000, 5000]]")
  with pytest.raises(ValueError, match=r"M-6.*\[1000, 5000\].*outside"):
    nasa.load_channel("M-6", root=root)


@pytest.mark.parametrize("seq,match", [
    ("[[5, 3]]", "start <= end"),
    ("[[-1, 3]]", "start <= end"),
    ("[[1, 2, 3]]", "integer"),
    ("[[1.5, 2]]", "integer"),
    ("oops(", "literal"),
])
def test_bad_anomaly_sequences(root, seq, match):
  _rewrite_csv_row(root, "A-1", anomaly_sequences=seq)
  with pytest.raises(ValueError, match=rf"labeled_anomalies.csv.*A-1.*{match}"):
    nasa.list_channels("SMAP", root=root)


def test_bad_csv_structure(root):
  path = root / "labeled_anomalies.csv"
  text = path.read_text()
  path.write_text(text.replace("chan_id,", "chan,", 1))
  with pytest.raises(ValueError, match="labeled_anomalies.csv.*header"):
    nasa.list_channels("SMAP", root=root)
  path.write_text(text)
  _rewrite_csv_row(root, "A-1", spacecraft="Voyager")
  with pytest.raises(ValueError, match="A-1.*Voyager"):
    nasa.list_channels("SMAP", root=root)
  path.write_text(text)
  _rewrite_csv_row(root, "P-2", num_values="99")
  with pytest.raises(ValueError, match="P-2.*disagrees"):
    nasa.list_channels("SMAP", root=root)


def test_corrupt_shipped_asset_is_rejected(tmp_path, monkeypatch):
  copy = tmp_path / "assets"
  shutil.copytree(ASSET_DIR, copy)
  data = bytearray((copy / "nasa_smap.npz").read_bytes())
  data[len(data) // 2] ^= 0x01
  (copy / "nasa_smap.npz").write_bytes(bytes(data))
  monkeypatch.setattr(assets, "asset_dir", lambda: copy)
  with pytest.raises(ValueError, match=r"corrupt or modified data file .*nasa_smap\.npz"):
    nasa.load_channel("A-1")
  # The csv is intact, so listings still work from the copy.
  assert len(nasa.list_channels("SMAP")) == 53
  (copy / "nasa_msl.npz").unlink()
  with pytest.raises(FileNotFoundError, match=r"nasa_msl\.npz"):
    nasa.load_channel("M-1")
