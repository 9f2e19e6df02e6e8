"""vaekit.datasets: named datasets from the real offline files, file formats, bad inputs."""

from __future__ import annotations

import gzip
import hashlib
import json
import shutil
import struct
import warnings
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image
from sklearn.model_selection import train_test_split

from vaekit.datasets import DATASET_NAMES, Dataset, load_dataset, read_idx, resolve_data_dir
from vaekit.errors import DataError

from _helpers import need

IDX_CODES = {  # numpy dtype -> IDX type code (third magic byte)
    np.dtype(np.uint8): 0x08,
    np.dtype(np.int8): 0x09,
    np.dtype(np.int16): 0x0B,
    np.dtype(np.int32): 0x0C,
    np.dtype(np.float32): 0x0D,
    np.dtype(np.float64): 0x0E,
}


def idx_bytes(arr: np.ndarray) -> bytes:
    """Serialize ``arr`` as an IDX file: magic, big-endian uint32 dims, big-endian data."""
    header = bytes([0, 0, IDX_CODES[arr.dtype], arr.ndim]) + struct.pack(
        f">{arr.ndim}I", *arr.shape
    )
    return header + arr.astype(arr.dtype.newbyteorder(">")).tobytes()


def as_uint8(X: np.ndarray) -> np.ndarray:
    """Undo the /255 scaling (exact: every k/255 in float32 rounds back to k)."""
    return np.rint(X * 255).astype(np.uint8)


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


# --- named datasets ---------------------------------------------------------------------------


def test_digits_full():
    ds = load_dataset("digits")
    assert ds.X.shape == (1797, 64) and ds.X.dtype == np.float32
    assert ds.y.shape == (1797,) and ds.y.dtype == np.int64
    assert ds.X.min() == 0.0 and ds.X.max() == 1.0
    assert ds.image_shape == (8, 8) and ds.name == "digits"
    np.testing.assert_array_equal(
        np.bincount(ds.y), [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]
    )
    assert set(np.unique(ds.X * 16)) <= set(range(17))  # pixel counts / 16


def test_digits_split_sizes_stratified_deterministic():
    full = load_dataset("digits")
    train, test = load_dataset("digits:train"), load_dataset("Digits:TEST")
    assert (len(train.X), len(test.X)) == (1347, 450)
    assert (train.name, test.name) == ("digits:train", "digits:test")
    assert train.image_shape == (8, 8) and train.classes == [str(d) for d in range(10)]
    # The documented split, exactly, in train_test_split's order.
    X_tr, _, _, y_te = train_test_split(
        full.X, full.y, test_size=0.25, stratify=full.y, random_state=0
    )
    np.testing.assert_array_equal(train.X, X_tr)
    np.testing.assert_array_equal(test.y, y_te)
    # Stratified: each class's test share is within one sample of 25%.
    counts = np.bincount(full.y)
    assert np.all(np.abs(np.bincount(test.y, minlength=10) - counts * 0.25) <= 1)
    np.testing.assert_array_equal(np.bincount(train.y) + np.bincount(test.y), counts)
    again = load_dataset("digits:train")
    np.testing.assert_array_equal(again.X, train.X)
    np.testing.assert_array_equal(again.y, train.y)


def test_digits_needs_no_data_dir(monkeypatch):
    monkeypatch.delenv("VAEKIT_DATA", raising=False)
    assert load_dataset("digits:test").X.shape == (450, 64)
    assert load_dataset(Path("digits")).name == "digits"  # no such file: the name is meant


def test_mnist_train_and_test():
    root = need("mnist")
    train = load_dataset("mnist:train", data_dir=root)
    assert train.X.shape == (60000, 28, 28) and train.X.dtype == np.float32
    assert train.y.dtype == np.int64 and train.y[0] == 5
    assert train.X.min() == 0.0 and train.X.max() == 1.0
    assert train.image_shape == (28, 28) and train.name == "mnist:train"
    np.testing.assert_array_equal(
        np.bincount(train.y), [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    )
    test = load_dataset("mnist:test", data_dir=root)
    assert test.X.shape == (10000, 28, 28) and test.y[0] == 7
    assert np.bincount(test.y).sum() == 10000


def test_mnist_full_is_train_then_test_and_cache_is_safe():
    root = need("mnist")
    full = load_dataset("mnist", data_dir=root)
    test = load_dataset("mnist:test", data_dir=root)
    assert full.X.shape == (70000, 28, 28) and full.name == "mnist"
    np.testing.assert_array_equal(full.X[60000:], test.X)
    np.testing.assert_array_equal(full.y[60000:], test.y)
    # Returned arrays are the caller's: mutating them must not reach a cache.
    assert test.X.flags.writeable and test.y.flags.writeable
    test.X[:] = 7.0
    test.y[:] = -1
    fresh = load_dataset("mnist:test", data_dir=root)
    np.testing.assert_array_equal(fresh.X, full.X[60000:])
    assert fresh.y[0] == 7


def test_mnist_from_env(monkeypatch):
    monkeypatch.setenv("VAEKIT_DATA", str(need("mnist")))
    assert load_dataset("mnist:test").X.shape == (10000, 28, 28)


def test_fashion_mnist():
    root = need("fashion-mnist")
    train = load_dataset("fashion-mnist:train", data_dir=root)
    assert train.X.shape == (60000, 28, 28) and train.y[0] == 9
    np.testing.assert_array_equal(np.bincount(train.y), [6000] * 10)
    assert train.classes[9] == "Ankle boot"
    # Raw-pixel md5 from shared/data/README.md: proves the bytes and the order.
    assert md5(as_uint8(train.X).tobytes()) == "f209073e486d5113ebe2cc431d4df862"
    test = load_dataset("fashion-mnist:test", data_dir=root)
    np.testing.assert_array_equal(np.bincount(test.y), [1000] * 10)
    assert md5(as_uint8(test.X).tobytes()) == "b7656a891b218fc13e45205c48a92cae"


def test_olivetti_and_split():
    root = need("olivetti")
    ds = load_dataset("olivetti", data_dir=root)
    assert ds.X.shape == (400, 64, 64) and ds.X.dtype == np.float32
    assert ds.X.max() == np.float32(242) / np.float32(255) and ds.X.min() == 0.0
    np.testing.assert_array_equal(np.bincount(ds.y), [10] * 40)
    assert md5(as_uint8(ds.X).tobytes()) == "fdb1ed558795305585a78fe74924e0aa"
    train = load_dataset("olivetti:train", data_dir=root)
    test = load_dataset("olivetti:test", data_dir=root)
    np.testing.assert_array_equal(np.bincount(test.y), [3] * 40)
    np.testing.assert_array_equal(np.bincount(train.y), [7] * 40)
    # Disjoint and complete: every image lands in exactly one side.
    rows = {x.tobytes() for x in np.concatenate([train.X, test.X])}
    assert rows == {x.tobytes() for x in ds.X} and len(rows) == 400
    np.testing.assert_array_equal(load_dataset("olivetti:test", data_dir=root).X, test.X)


def test_resolve_data_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("VAEKIT_DATA", str(tmp_path / "env"))
    assert resolve_data_dir(tmp_path) == tmp_path
    assert resolve_data_dir() == tmp_path / "env"
    monkeypatch.delenv("VAEKIT_DATA")
    with pytest.raises(DataError, match="VAEKIT_DATA"):
        resolve_data_dir()


# --- file formats -----------------------------------------------------------------------------


def test_npy_tabular_and_images(tmp_path):
    table = np.arange(12, dtype=np.float64).reshape(4, 3) / 7
    np.save(tmp_path / "t.npy", table)
    ds = load_dataset(tmp_path / "t.npy")
    # A float64 table stays float64: the estimator standardizes it so, as fit on it would.
    assert ds.X.dtype == np.float64 and ds.y is None and ds.image_shape is None
    np.testing.assert_array_equal(ds.X, table)
    assert ds.name == "t.npy"

    raw = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4) * 10
    np.save(tmp_path / "gray.npy", raw)
    gray = load_dataset(str(tmp_path / "gray.npy"))
    np.testing.assert_array_equal(gray.X, raw.astype(np.float32) / np.float32(255))
    assert gray.image_shape == (3, 4)

    np.save(tmp_path / "rgb.npy", np.full((2, 3, 5, 5), 255, np.uint8))
    rgb = load_dataset(tmp_path / "rgb.npy")
    assert rgb.X.shape == (2, 3, 5, 5) and rgb.image_shape == (3, 5, 5) and rgb.X.max() == 1.0

    np.save(tmp_path / "u8table.npy", np.full((2, 3), 200, np.uint8))  # 2-D uint8: not images
    assert load_dataset(tmp_path / "u8table.npy").X.max() == 200.0


def test_npz_keys_and_labels(tmp_path):
    X = np.random.default_rng(0).random((5, 2))
    np.savez(tmp_path / "a.npz", X=X, y=np.array([0, 1, 0, 1, 1], np.int32))
    ds = load_dataset(tmp_path / "a.npz")
    np.testing.assert_array_equal(ds.X, X)  # a float64 table stays float64
    assert ds.y.dtype == np.int64 and ds.y.tolist() == [0, 1, 0, 1, 1]

    np.savez(tmp_path / "b.npz", images=np.zeros((3, 4, 4), np.uint8), labels=["b", "a", "b"])
    ds = load_dataset(tmp_path / "b.npz")
    assert ds.X.shape == (3, 4, 4) and ds.classes == ["a", "b"] and ds.y.tolist() == [1, 0, 1]

    np.savez(tmp_path / "c.npz", X, np.array([1.5, 2.5, 0, 0, 1]))  # arr_0, arr_1
    ds = load_dataset(tmp_path / "c.npz")
    assert ds.y.dtype == np.float64 and ds.y[0] == 1.5

    np.savez(tmp_path / "d.npz", whatever=X)  # a single array under any name
    assert load_dataset(tmp_path / "d.npz").y is None

    np.savez(tmp_path / "e.npz", X=X, Y=np.arange(5))  # the capital, as for X
    assert load_dataset(tmp_path / "e.npz").y.tolist() == [0, 1, 2, 3, 4]


def test_npz_arrays_beyond_features_and_labels_are_named_not_dropped_unseen(tmp_path):
    X = np.zeros((4, 2))
    np.savez(tmp_path / "split.npz", X=X, y=np.arange(4), X_test=X[:2], y_test=np.arange(2))
    with pytest.warns(UserWarning, match=r"split\.npz: read X and y; ignored X_test, y_test\."):
        ds = load_dataset(tmp_path / "split.npz")
    assert ds.X.shape == (4, 2) and ds.y.tolist() == [0, 1, 2, 3]


def test_npz_labels_of_python_objects_are_named_with_the_way_out(tmp_path):
    # pandas' text column .values is an object array: numpy pickles it into the archive.
    labels = np.array(["cat", "dog", "cat"], dtype=object)
    np.savez(tmp_path / "p.npz", X=np.zeros((3, 2)), y=labels)
    with pytest.raises(DataError, match=r"p\.npz\[y\] holds Python objects.*astype\(str\)"):
        load_dataset(tmp_path / "p.npz")
    np.savez(tmp_path / "s.npz", X=np.zeros((3, 2)), y=labels.astype(str))
    assert load_dataset(tmp_path / "s.npz").classes == ["cat", "dog"]


def test_an_unreadable_npy_is_not_called_a_bad_header(tmp_path, monkeypatch):
    import vaekit.array_files

    path = tmp_path / "x.npy"
    np.save(path, np.zeros((3, 2), np.float32))

    def refuse(file, mode="r", *args, **kwargs):
        raise PermissionError(13, "Permission denied", str(file))

    monkeypatch.setattr(vaekit.array_files, "open", refuse, raising=False)
    with pytest.raises(DataError, match=r"x\.npy could not be read \(Permission denied\)"):
        load_dataset(path)


def test_csv_with_header_string_labels_and_missing_values(tmp_path):
    path = tmp_path / "data.csv"
    path.write_text("a,species,b\n1.5,cat,2\n,dog,3\n0.25,cat,\n")
    ds = load_dataset(path, label_column="species")
    assert ds.feature_names == ["a", "b"] and ds.name == "data.csv"
    assert ds.classes == ["cat", "dog"] and ds.y.tolist() == [0, 1, 0]
    assert ds.X.dtype == np.float64 and ds.X.shape == (3, 2)
    np.testing.assert_array_equal(ds.X, [[1.5, 2], [np.nan, 3], [0.25, np.nan]])

    no_label = tmp_path / "n.csv"
    no_label.write_text("x,label\n1,3\n2,4\n")
    ds = load_dataset(no_label, label_column="label")
    assert ds.y.dtype == np.int64 and ds.y.tolist() == [3, 4] and ds.classes is None
    assert load_dataset(no_label).X.shape == (2, 2)


def test_csv_without_header_keeps_first_row(tmp_path):
    X = np.array([[0.5, 1.0], [2.0, 3.5], [4.0, 5.0]])
    np.savetxt(tmp_path / "plain.csv", X, delimiter=",")
    ds = load_dataset(tmp_path / "plain.csv")
    np.testing.assert_array_equal(ds.X, X.astype(np.float32))
    assert ds.feature_names == ["f0", "f1"]


def test_csv_gz(tmp_path):
    (tmp_path / "d.csv.gz").write_bytes(gzip.compress(b"a,b\n1,2\n3,4\n"))
    np.testing.assert_array_equal(load_dataset(tmp_path / "d.csv.gz").X, [[1, 2], [3, 4]])


def test_csv_gz_with_an_upper_case_name(tmp_path):
    (tmp_path / "D.CSV.GZ").write_bytes(gzip.compress(b"a,b\n1,2\n3,4\n"))
    np.testing.assert_array_equal(load_dataset(tmp_path / "D.CSV.GZ").X, [[1, 2], [3, 4]])


def test_csv_integers_beyond_float64_precision_are_rounded_not_refused(tmp_path):
    (tmp_path / "t.csv").write_text("ts_ns,x\n1600000000000000001,1\n1600000000000000002,2\n")
    X = load_dataset(tmp_path / "t.csv").X
    np.testing.assert_array_equal(X[:, 0], 1.6e18)  # the nearest float64


def test_a_large_offset_column_keeps_its_variation_through_the_cli(tmp_path):
    """A timestamp-like column (1.7e9 ± 10) is constant in float32: tables are read as float64
    and standardized so, and the command's run gives transform's μ of the float64 table."""
    from typer.testing import CliRunner

    from vaekit import load
    from vaekit.cli import app

    rng = np.random.default_rng(0)
    X = np.column_stack([1.7e9 + rng.normal(0, 10, 300), rng.normal(size=(300, 2))])
    table, run, z = (str(tmp_path / name) for name in ("t.csv", "run", "z.npy"))
    np.savetxt(table, X, fmt="%.17g", delimiter=",", header="ts,a,b", comments="")
    assert load_dataset(table).X[:, 0].std() > 5
    assert CliRunner().invoke(app, ["train", table, "--out", run, "--epochs", "2"]).exit_code == 0
    model = load(run)
    assert model.scale_[0] == pytest.approx(X[:, 0].std(), rel=0.1)
    result = CliRunner().invoke(app, ["embed", run, table, "--out", z])
    assert result.exit_code == 0, result.output
    np.testing.assert_allclose(np.load(z), model.transform(X), rtol=1e-5, atol=1e-6)
    # A run from before tables were float64 (no table_dtype recorded) reads them as it did.
    summary = json.loads((tmp_path / "run" / "run.json").read_text())
    del summary["table_dtype"]
    (tmp_path / "run" / "run.json").write_text(json.dumps(summary))
    assert CliRunner().invoke(app, ["embed", run, table, "--out", z]).exit_code == 0
    as_before = model.transform(X.astype(np.float32))
    np.testing.assert_allclose(np.load(z), as_before, rtol=1e-5, atol=1e-6)
    assert np.abs(as_before - model.transform(X)).max() > 0.01  # which float64 rows are not


def test_parquet(tmp_path):
    table = pa.table(
        {
            "f": pa.array([0.5, None, 2.0], pa.float64()),
            "i": pa.array([1, 2, 3], pa.int16()),
            "flag": [True, False, True],
            "kind": pa.array(["z", "y", "z"]).dictionary_encode(),
        }
    )
    pq.write_table(table, tmp_path / "t.parquet")
    ds = load_dataset(tmp_path / "t.parquet", label_column="kind")
    assert ds.feature_names == ["f", "i", "flag"]
    np.testing.assert_array_equal(ds.X, [[0.5, 1, 1], [np.nan, 2, 0], [2, 3, 1]])
    assert ds.classes == ["y", "z"] and ds.y.tolist() == [1, 0, 1]


@pytest.mark.parametrize(("images_gz", "labels_gz"), [(0, 0), (1, 1), (1, 0), (0, 1)])
def test_idx_images_with_sibling_labels(tmp_path, images_gz, labels_gz):
    images = np.random.default_rng(1).integers(0, 256, (6, 5, 4), dtype=np.uint8)
    labels = np.array([3, 1, 4, 1, 5, 9], np.uint8)
    image_file = tmp_path / ("train-images-idx3-ubyte" + ".gz" * images_gz)
    label_file = tmp_path / ("train-labels-idx1-ubyte" + ".gz" * labels_gz)
    image_file.write_bytes((gzip.compress if images_gz else bytes)(idx_bytes(images)))
    label_file.write_bytes((gzip.compress if labels_gz else bytes)(idx_bytes(labels)))
    ds = load_dataset(image_file)
    np.testing.assert_array_equal(ds.X, images / np.float32(255))
    assert ds.X.dtype == np.float32 and ds.image_shape == (5, 4)
    assert ds.y.dtype == np.int64 and ds.y.tolist() == labels.tolist()
    np.testing.assert_array_equal(read_idx(label_file), labels)


def test_idx_other_dtypes_and_2d(tmp_path):
    arr = np.array([[1.5, -2.0], [3.0, 4.25]], np.float32)
    (tmp_path / "table.idx").write_bytes(idx_bytes(arr))
    out = read_idx(tmp_path / "table.idx")
    assert out.dtype == np.float32 and out.dtype.isnative and out.flags.writeable
    np.testing.assert_array_equal(out, arr)
    ds = load_dataset(tmp_path / "table.idx")
    assert ds.image_shape is None and ds.y is None
    np.testing.assert_array_equal(ds.X, arr)
    shorts = np.array([[[-300, 2]]], np.int16)
    (tmp_path / "s.idx").write_bytes(idx_bytes(shorts))
    np.testing.assert_array_equal(read_idx(tmp_path / "s.idx"), shorts)


def save_png(path: Path, pixels: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)


def test_image_folder_with_classes_grayscale(tmp_path):
    rng = np.random.default_rng(2)
    imgs = {
        f"{c}/{i}.png": rng.integers(0, 256, (6, 5), dtype=np.uint8) for c in "ba" for i in (1, 0)
    }
    for name, pixels in imgs.items():
        save_png(tmp_path / "faces" / name, pixels)
    (tmp_path / "faces" / "a" / "notes.txt").write_text("ignored")
    ds = load_dataset(tmp_path / "faces")
    assert ds.X.shape == (4, 6, 5) and ds.image_shape == (6, 5) and ds.name == "faces"
    assert ds.classes == ["a", "b"] and ds.y.tolist() == [0, 0, 1, 1]
    order = ["a/0.png", "a/1.png", "b/0.png", "b/1.png"]  # sorted classes, sorted files
    np.testing.assert_array_equal(as_uint8(ds.X), np.stack([imgs[k] for k in order]))
    assert ds.files == order


def test_images_below_the_class_subfolders_are_said_to_be_skipped(tmp_path):
    pixels = np.zeros((4, 4), np.uint8)
    for name in ("0/a.png", "0/sub/b.png", "0/sub/c.png", "1/d.png"):
        save_png(tmp_path / "digits" / name, pixels)
    with pytest.warns(UserWarning, match=r"2 image\(s\) in folders below the class subfolders"):
        ds = load_dataset(tmp_path / "digits")
    assert ds.files == ["0/a.png", "1/d.png"]
    with warnings.catch_warnings():  # a folder of class folders alone: nothing to say
        warnings.simplefilter("error")
        shutil.rmtree(tmp_path / "digits" / "0" / "sub")
        load_dataset(tmp_path / "digits")


def test_image_folder_rgb_and_flat(tmp_path):
    gray = np.full((3, 4), 51, np.uint8)
    rgb = np.zeros((3, 4, 3), np.uint8)
    rgb[..., 0], rgb[..., 2] = 255, 102
    save_png(tmp_path / "mix" / "a.png", gray)
    save_png(tmp_path / "mix" / "b.png", rgb)
    Image.fromarray(gray).save(tmp_path / "mix" / "c.gif")  # palette GIF, gray entries
    ds = load_dataset(tmp_path / "mix")
    assert ds.y is None and ds.classes is None and ds.files == ["a.png", "b.png", "c.gif"]
    assert ds.X.shape == (3, 3, 3, 4) and ds.image_shape == (3, 3, 4)
    np.testing.assert_allclose(ds.X[0], 0.2)  # gray converted to RGB: every channel 51
    np.testing.assert_allclose(ds.X[1, :, 0, 0], [1.0, 0.0, 0.4])  # channels first
    gray_only = tmp_path / "gray"
    save_png(gray_only / "x.png", gray)
    Image.fromarray(gray).save(gray_only / "y.gif")
    assert load_dataset(gray_only).X.shape == (2, 3, 4)


def test_image_folder_16_bit_and_float_grayscale_are_scaled_not_clipped(tmp_path):
    deep = np.array([[0, 1000, 30000], [65535, 12345, 500]], np.uint16)
    (tmp_path / "deep").mkdir()
    Image.fromarray(deep).save(tmp_path / "deep" / "a.png")
    Image.fromarray(deep[::-1].copy()).save(tmp_path / "deep" / "b.png")
    X = load_dataset(tmp_path / "deep").X
    np.testing.assert_allclose(X, np.stack([deep, deep[::-1]]) / 65535.0, rtol=1e-6)

    (tmp_path / "float").mkdir()
    values = np.array([[0.0, 0.25], [0.5, 1.0]], np.float32)
    Image.fromarray(values, mode="F").save(tmp_path / "float" / "a.tif")
    np.testing.assert_array_equal(load_dataset(tmp_path / "float").X[0], values)
    Image.fromarray(values * 255, mode="F").save(tmp_path / "float" / "b.tif")
    with pytest.raises(DataError, match=r"b.tif is a 'F' image with values in \[0, 255\]"):
        load_dataset(tmp_path / "float")


# --- bad inputs -------------------------------------------------------------------------------


def write(path: Path, data: bytes | str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


def bad_object_npy(path: Path) -> Path:
    np.save(path, np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    return path


def bad_mixed_sizes(folder: Path) -> Path:
    save_png(folder / "one.png", np.zeros((4, 4), np.uint8))
    save_png(folder / "two.png", np.zeros((5, 4), np.uint8))
    return folder


def bad_truncated_idx(path: Path) -> Path:
    data = idx_bytes(np.zeros((10, 4, 4), np.uint8))
    return write(path, gzip.compress(data[:-5]))


BAD_FILES = {
    "nonexistent path": (lambda d: d / "missing" / "data.csv", "does not exist"),
    "empty file": (lambda d: write(d / "x.npy", b""), "is empty"),
    "zero-row csv": (lambda d: write(d / "z.csv", "a,b\n"), "no data rows"),
    "non-numeric column": (
        lambda d: write(d / "data.csv", "name,x\nann,1\nbob,2\n"),
        "Column 'name' of data.csv is not numeric",
    ),
    "object npy": (lambda d: bad_object_npy(d / "o.npy"), "dtype object"),
    "1-D npy": (lambda d: np.save(d / "v.npy", np.arange(3.0)) or d / "v.npy", "1-D"),
    "gz not idx": (lambda d: write(d / "x.gz", gzip.compress(b"hello world")), "bad magic number"),
    "truncated idx": (lambda d: bad_truncated_idx(d / "t-idx3-ubyte.gz"), "truncated"),
    "idx labels as samples": (
        lambda d: write(d / "l-idx1-ubyte", idx_bytes(np.arange(4, dtype=np.uint8))),
        "1-D IDX",
    ),
    "mixed image sizes": (
        lambda d: bad_mixed_sizes(d / "imgs"),
        "one.png is 4x4 but two.png is 4x5",
    ),
    "no images": (lambda d: write(d / "empty" / "readme.txt", "hi").parent, "holds no images"),
    "unknown extension": (lambda d: write(d / "data.xlsx", "x"), "unsupported file type"),
    "single image": (lambda d: write(d / "a.png", "x"), "folder that holds your images"),
    "not a npy": (lambda d: write(d / "x.npy", "just text"), "not a .npy file"),
    "truncated npy": (lambda d: write(d / "x.npy", np_bytes(np.ones((50, 50)))[:300]), "truncated"),
    "not a npz": (lambda d: write(d / "x.npz", "just text"), "not an .npz"),
    "npz without features": (lambda d: np_savez(d / "k.npz", a=1, b=2), "no features array"),
    "npz wrong label count": (
        lambda d: np_savez(d / "w.npz", X=np.ones((3, 2)), y=[1]),
        "1 labels",
    ),
    "ragged csv": (lambda d: write(d / "r.csv", "a,b\n1,2\n3\n"), "could not be parsed as CSV"),
    "corrupt parquet": (lambda d: write(d / "p.parquet", "PAR1 nope"), "not a readable Parquet"),
    "corrupt png": (lambda d: write(d / "im" / "a.png", "not a png").parent, "could not be read"),
    "images beside classes": (lambda d: bad_loose_and_classes(d / "lc"), "mixes loose images"),
}


def np_bytes(arr: np.ndarray) -> bytes:
    import io

    buf = io.BytesIO()
    np.save(buf, arr)
    return buf.getvalue()


def np_savez(path: Path, **arrays) -> Path:
    np.savez(path, **arrays)
    return path


def bad_loose_and_classes(folder: Path) -> Path:
    save_png(folder / "loose.png", np.zeros((2, 2), np.uint8))
    save_png(folder / "cls" / "a.png", np.zeros((2, 2), np.uint8))
    return folder


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_bad_files_raise_data_error(tmp_path, case):
    make, message = BAD_FILES[case]
    path = make(tmp_path)
    with pytest.raises(DataError, match=message.replace(".", r"\.")):
        load_dataset(path)


def test_label_column_errors(tmp_path):
    path = write(tmp_path / "data.csv", "a,b\n1,2\n")
    with pytest.raises(
        DataError, match=r"Label column 'y' is not in data\.csv; its columns are 'a', 'b'"
    ):
        load_dataset(path, label_column="y")
    with pytest.raises(DataError, match="no feature columns"):
        load_dataset(write(tmp_path / "one.csv", "y\n1\n"), label_column="y")
    with pytest.raises(DataError, match="2 missing values"):
        load_dataset(write(tmp_path / "m.csv", "a,y\n1,\n2,\n3,x\n"), label_column="y")
    np.save(tmp_path / "a.npy", np.ones((2, 2)))
    with pytest.raises(DataError, match="only to CSV and Parquet"):
        load_dataset(tmp_path / "a.npy", label_column="y")
    with pytest.raises(DataError, match="only to CSV and Parquet"):
        load_dataset("digits", label_column="y")


def test_unknown_names_and_splits():
    with pytest.raises(DataError, match=r"Unknown dataset 'cifar10'.*digits, mnist, fashion-mnist"):
        load_dataset("cifar10")
    with pytest.raises(DataError, match="file or image folder also works"):
        load_dataset("mnsit:train")
    with pytest.raises(DataError, match="Unknown split 'val' for digits"):
        load_dataset("digits:val")
    assert DATASET_NAMES == ("digits", "mnist", "fashion-mnist", "olivetti")


def test_missing_data_dir_and_files(monkeypatch, tmp_path):
    monkeypatch.delenv("VAEKIT_DATA", raising=False)
    with pytest.raises(DataError, match=r"pass --data-dir DIR .* VAEKIT_DATA"):
        load_dataset("mnist")
    with pytest.raises(DataError, match="vaekit datasets download fashion-mnist --data-dir"):
        load_dataset("fashion-mnist:test", data_dir=tmp_path)
    with pytest.raises(DataError, match=r"olivetti_faces\.npz; vaekit cannot.*fetch_olivetti"):
        load_dataset("olivetti", data_dir=tmp_path)


def test_named_dataset_with_bad_file(tmp_path):
    folder = tmp_path / "mnist"
    write(
        folder / "t10k-images-idx3-ubyte.gz",
        gzip.compress(idx_bytes(np.zeros((3, 2, 2), np.uint8))),
    )
    write(folder / "t10k-labels-idx1-ubyte.gz", gzip.compress(idx_bytes(np.zeros(2, np.uint8))))
    with pytest.raises(DataError, match="labels for 3 images"):
        load_dataset("mnist:test", data_dir=tmp_path)
    write(folder / "t10k-labels-idx1-ubyte.gz", b"\x1f\x8b broken gzip")
    with pytest.raises(DataError, match="not a valid gzip file"):
        load_dataset("mnist:test", data_dir=tmp_path)


# --- properties -------------------------------------------------------------------------------

FAST = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
finite32 = st.floats(width=32, allow_nan=False, allow_infinity=False)
tables = hnp.arrays(
    np.float32, hnp.array_shapes(min_dims=2, max_dims=2, max_side=6), elements=finite32
)


@pytest.fixture(scope="module")
def scratch(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("props")  # module-scoped: hypothesis reuses it across examples


@FAST
@given(X=tables)
def test_tables_round_trip(scratch, X):
    np.save(scratch / "p.npy", X)
    np.testing.assert_array_equal(load_dataset(scratch / "p.npy").X, X)
    np.savez(scratch / "p.npz", X=X, y=np.arange(len(X)))
    ds = load_dataset(scratch / "p.npz")
    np.testing.assert_array_equal(ds.X, X)
    np.testing.assert_array_equal(ds.y, np.arange(len(X)))
    names = [f"c{j}" for j in range(X.shape[1])]
    pq.write_table(pa.table(dict(zip(names, X.T, strict=True))), scratch / "p.parquet")
    np.testing.assert_array_equal(load_dataset(scratch / "p.parquet").X, X)
    # repr() of the float64 widening is exact, and float64 -> float32 gives the value back.
    rows = "\n".join(",".join(repr(float(v)) for v in row) for row in X)
    (scratch / "p.csv").write_text(",".join(names) + "\n" + rows + "\n")
    ds = load_dataset(scratch / "p.csv")
    np.testing.assert_allclose(ds.X, X, rtol=1e-7, atol=0)
    assert ds.feature_names == names


idx_arrays = st.sampled_from(list(IDX_CODES)).flatmap(
    lambda dt: hnp.arrays(
        dt,
        hnp.array_shapes(min_dims=1, max_dims=4, min_side=0, max_side=5),
        elements=finite32 if dt.kind == "f" else None,
    )
)


@FAST
@given(arr=idx_arrays, gz=st.booleans())
def test_idx_round_trip(scratch, arr, gz):
    data = idx_bytes(arr)
    (scratch / "r.idx").write_bytes(gzip.compress(data) if gz else data)
    out = read_idx(scratch / "r.idx")
    assert out.dtype == arr.dtype and out.shape == arr.shape
    np.testing.assert_array_equal(out, arr)


# Random bytes behind the common magic numbers, and damaged valid files, are properties in
# tests/test_bad_inputs.py; what those never build is kept here: IDX headers with any type code
# and dimension count (raw and gzipped), and a .npy magic with any version bytes.
idx_headers = st.builds(
    lambda code, ndim, rest: bytes([0, 0, code, ndim]) + rest,
    st.one_of(st.sampled_from([0x08, 0x09, 0x0B, 0x0C, 0x0D, 0x0E]), st.integers(0, 255)),
    st.one_of(st.integers(0, 4), st.integers(0, 255)),  # few dimensions, or any number
    st.binary(max_size=160),  # room for the header of up to 40 dimensions
)
IDX_NAMES = st.sampled_from(["g.gz", "g-idx3-ubyte"])
NPY = b"\x93NUMPY"  # then two version bytes, which numpy checks
garbage = st.one_of(
    st.tuples(IDX_NAMES, idx_headers),
    st.tuples(IDX_NAMES, idx_headers.map(gzip.compress)),
    st.tuples(st.sampled_from(["g.npy", "g.npz"]), st.binary(max_size=64).map(lambda b: NPY + b)),
)


@settings(max_examples=60, deadline=None)
@given(file=garbage)
@example(file=("g-idx3-ubyte", b"\x00\x00\x05\x01\x00\x00\x00\x01\x07"))  # no such type
@example(file=("g.gz", gzip.compress(b"\x00\x00\x08\x41" + bytes(4 * 65))))  # 65 dims
@example(file=("g.npy", b"\x93NUMPY\x07\x00"))  # an unknown format version
def test_idx_and_npy_headers_load_or_raise_data_error(scratch, file):
    name, data = file
    path = scratch / name
    path.write_bytes(data)
    try:
        ds = load_dataset(path)
    except DataError:
        return
    assert isinstance(ds, Dataset) and ds.X.dtype == np.float32 and ds.X.size > 0


def test_test_labels_are_recoded_into_the_training_classes():
    """Each file numbers its own text labels by sorted name: a test set without "b" numbers
    "c" as 1, which is "b" in the training codes, until recoded by name."""
    from vaekit.datasets import Dataset, align_test_labels

    train = Dataset(np.zeros((3, 1)), np.array([0, 1, 2]), "train", classes=["a", "b", "c"])
    test = Dataset(np.zeros((3, 1)), np.array([1, 0, 1]), "test", classes=["a", "c"])
    assert align_test_labels(train, test).tolist() == [2, 0, 2]
    odd = Dataset(np.zeros((1, 1)), np.array([0]), "odd", classes=["d"])
    with pytest.raises(DataError, match="odd has class\\(es\\) 'd' that train has not"):
        align_test_labels(train, odd)
    numbers = Dataset(np.zeros((1, 1)), np.array([0]), "numbers")
    with pytest.raises(DataError, match=r"train has named classes .* numbers has numeric"):
        align_test_labels(train, numbers)
    assert align_test_labels(numbers, numbers).tolist() == [0]
    # Names that spell the numbers ("0".."9" of digits and MNIST) match them, either way round.
    spelled = Dataset(np.zeros((3, 1)), np.array([0, 1, 2]), "spelled", classes=["3", "5", "7"])
    odds = Dataset(np.zeros((3, 1)), np.array([7, 3, 5]), "odds")
    assert align_test_labels(spelled, odds).tolist() == [2, 0, 1]
    assert align_test_labels(odds, spelled).tolist() == [3, 5, 7]
    eights = Dataset(np.zeros((1, 1)), np.array([8]), "eights")
    with pytest.raises(DataError, match="spelled has named classes"):
        align_test_labels(spelled, eights)
