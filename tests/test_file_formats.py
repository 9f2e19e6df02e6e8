"""vaekit.datasets: files as other tools write them (pandas, R, phone cameras)."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from vaekit.datasets import load_dataset
from vaekit.errors import DataError

# --- CSV: a headerless file whose first row has a missing cell ---------------------------------


@pytest.mark.parametrize("missing", ["", "NA", "nan", "NaN", "null"])
def test_headerless_csv_keeps_a_first_row_with_a_missing_cell(tmp_path, missing):
    # pandas' to_csv(header=False) writes "" for NaN, R's write.table writes NA.
    path = tmp_path / "plain.csv"
    path.write_text(f"1.0,{missing},3.0\n4.0,5.0,6.0\n7.0,8.0,9.0\n")
    ds = load_dataset(path)
    assert ds.X.shape == (3, 3)
    assert ds.feature_names == ["f0", "f1", "f2"]
    np.testing.assert_array_equal(ds.X, [[1, np.nan, 3], [4, 5, 6], [7, 8, 9]])


def test_headerless_csv_with_a_missing_first_row_reaches_the_nan_check(tmp_path):
    from vaekit import Autoencoder

    path = tmp_path / "plain.csv"
    path.write_text("1.0,,3.0\n" + "4.0,5.0,6.0\n" * 4)
    with pytest.raises(DataError, match="NaN"):
        Autoencoder(epochs=1).fit(load_dataset(path).X)


@pytest.mark.parametrize(
    "header",
    [
        "a,,c",  # a missing name
        "0,1,2",  # pandas' default names: pd.DataFrame(X).to_csv(path, index=False)
    ],
)
def test_header_rows_that_are_headers(tmp_path, header):
    path = tmp_path / "named.csv"
    path.write_text(f"{header}\n1,2,3\n4,5,6\n")
    ds = load_dataset(path)
    assert ds.feature_names == header.split(",")
    np.testing.assert_array_equal(ds.X, [[1, 2, 3], [4, 5, 6]])


@pytest.mark.parametrize("first", ["0,1", "1,2,3", "0,2,1"])
def test_other_all_number_first_rows_are_data(tmp_path, first):
    path = tmp_path / "plain.csv"
    path.write_text(f"{first}\n" + ",".join(["7"] * (first.count(",") + 1)) + "\n")
    assert load_dataset(path).X.shape[0] == 2


@pytest.mark.parametrize("header", ["a,b,\n", ""])
def test_a_comma_at_the_end_of_every_line_adds_no_column(tmp_path, header):
    path = tmp_path / "sheet.csv"
    path.write_text(header + "1,2,\n3,4,\n")
    ds = load_dataset(path)
    np.testing.assert_array_equal(ds.X, [[1, 2], [3, 4]])
    assert ds.named_columns == bool(header)


def test_a_named_empty_column_is_still_missing_values(tmp_path):
    path = tmp_path / "sheet.csv"
    path.write_text("a,b,c\n1,2,\n3,4,\n")
    assert np.isnan(load_dataset(path).X[:, 2]).all()


@pytest.mark.parametrize(("sep", "called"), [(";", "semicolons"), ("\t", "tabs")])
def test_a_csv_separated_by_something_else_says_so(tmp_path, sep, called):
    path = tmp_path / "excel.csv"
    path.write_text(sep.join(["a", "b", "species"]) + "\n" + sep.join(["1", "2", "x"]) + "\n")
    with pytest.raises(DataError, match=f"separated by {called}, not commas"):
        load_dataset(path)


def test_a_label_name_that_is_also_a_label_value_warns(tmp_path):
    # No header row: the first sample "0,0,dog" became the column names.
    path = tmp_path / "pets.csv"
    path.write_text("0,0,dog\n1,2,cat\n3,4,dog\n")
    with pytest.warns(UserWarning, match="'dog' is also one of its values.*no header row"):
        ds = load_dataset(path, label_column="dog")
    assert ds.X.shape == (2, 2)


# --- CSV: the row index pandas' to_csv writes by default -------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        ",a,b\n0,0.5,1.5\n1,2.5,3.5\n2,4.5,5.5\n",  # df.to_csv(path)
        ",0,1\n0,0.5,1.5\n1,2.5,3.5\n2,4.5,5.5\n",  # pd.DataFrame(X).to_csv(path)
        ",a,b\n17,0.5,1.5\n3,2.5,3.5\n8,4.5,5.5\n",  # after df.sample() / a split
        '"","a","b"\n"1",0.5,1.5\n"2",2.5,3.5\n"3",4.5,5.5\n',  # R's write.csv
    ],
)
def test_unnamed_integer_index_column_is_dropped_with_a_warning(tmp_path, text):
    path = tmp_path / "frame.csv"
    path.write_text(text)
    with pytest.warns(UserWarning, match=r"unnamed first column of frame\.csv.*index=False"):
        ds = load_dataset(path)
    assert len(ds.feature_names) == 2 and "" not in ds.feature_names
    np.testing.assert_array_equal(ds.X, [[0.5, 1.5], [2.5, 3.5], [4.5, 5.5]])


def test_unnamed_index_is_dropped_before_the_label_column_is_taken(tmp_path):
    path = tmp_path / "frame.csv"
    path.write_text(",a,y\n0,0.5,cat\n1,2.5,dog\n")
    with pytest.warns(UserWarning, match="row index"):
        ds = load_dataset(path, label_column="y")
    assert ds.feature_names == ["a"] and ds.classes == ["cat", "dog"]


@pytest.mark.parametrize(
    "text",
    [
        ",a\n1.5,2\n2.5,3\n",  # an unnamed float column is data
        ",a\n1,2\n1,3\n",  # repeated integers are not a row index
        "id,a\n0,2\n1,3\n",  # a named column is the user's to drop
        ",2,3\n4,5,6\n7,8,9\n",  # headerless, first cell missing: data, not pandas' 0, 1 names
    ],
)
def test_other_first_columns_are_kept_without_a_warning(tmp_path, text):
    path = tmp_path / "t.csv"
    path.write_text(text)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ds = load_dataset(path)
    assert ds.X.shape[1] == text.split("\n")[0].count(",") + 1


# --- Parquet: the index pandas stores as a column ----------------------------------------------


def _pandas_metadata(index_columns: list, columns: list[tuple[str | None, str]]) -> bytes:
    """The b"pandas" schema metadata pandas' to_parquet writes (hand-written: no pandas here)."""
    return json.dumps(
        {
            "index_columns": index_columns,
            "column_indexes": [],
            "columns": [
                {"name": name, "field_name": field, "pandas_type": "float64", "metadata": None}
                for name, field in columns
            ],
            "creator": {"library": "pyarrow", "version": pa.__version__},
            "pandas_version": "2.2.0",
        }
    ).encode()


def test_parquet_pandas_index_column_is_not_a_feature(tmp_path):
    table = pa.table({"a": [0.5, 1.5, 2.5], "b": [1.0, 2.0, 3.0], "__index_level_0__": [7, 3, 9]})
    meta = _pandas_metadata(
        ["__index_level_0__"], [("a", "a"), ("b", "b"), (None, "__index_level_0__")]
    )
    pq.write_table(table.replace_schema_metadata({b"pandas": meta}), tmp_path / "df.parquet")
    ds = load_dataset(tmp_path / "df.parquet")
    assert ds.feature_names == ["a", "b"]
    np.testing.assert_array_equal(ds.X, [[0.5, 1], [1.5, 2], [2.5, 3]])


def test_parquet_named_index_and_range_index(tmp_path):
    # df.set_index("id"): the index is stored under its own name; a RangeIndex is a dict.
    table = pa.table({"a": [0.5, 1.5], "id": [10, 11]})
    meta = _pandas_metadata(["id"], [("a", "a"), ("id", "id")])
    pq.write_table(table.replace_schema_metadata({b"pandas": meta}), tmp_path / "named.parquet")
    assert load_dataset(tmp_path / "named.parquet").feature_names == ["a"]
    # ... unless the user asks for it as the label column.
    ds = load_dataset(tmp_path / "named.parquet", label_column="id")
    assert ds.feature_names == ["a"] and ds.y.tolist() == [10, 11]

    rng = {"kind": "range", "name": None, "start": 0, "stop": 2, "step": 1}
    meta = _pandas_metadata([rng], [("a", "a"), ("id", "id")])
    pq.write_table(table.replace_schema_metadata({b"pandas": meta}), tmp_path / "range.parquet")
    assert load_dataset(tmp_path / "range.parquet").feature_names == ["a", "id"]


def test_parquet_with_unreadable_pandas_metadata_keeps_every_column(tmp_path):
    table = pa.table({"a": [0.5, 1.5], "__index_level_0__": [0, 1]})
    path = tmp_path / "odd.parquet"
    pq.write_table(table.replace_schema_metadata({b"pandas": b"{not json"}), path)
    assert load_dataset(path).feature_names == ["a", "__index_level_0__"]


# --- images: EXIF orientation ------------------------------------------------------------------


def _jpeg_with_orientation(path, pixels: np.ndarray, orientation: int) -> None:
    img = Image.fromarray(pixels)
    exif = img.getexif()
    exif[0x0112] = orientation
    img.save(path, quality=100, subsampling=0, exif=exif)


def test_jpeg_exif_orientation_is_applied(tmp_path):
    # Stored 6 wide x 4 high, left half dark: orientation 6 displays it rotated 90 degrees
    # clockwise, 4 wide x 6 high with the dark half on top.
    stored = np.full((4, 6), 255, np.uint8)
    stored[:, :3] = 0
    folder = tmp_path / "phone"
    folder.mkdir()
    _jpeg_with_orientation(folder / "a.jpg", stored, 6)
    ds = load_dataset(folder)
    assert ds.X.shape == (1, 6, 4) and ds.image_shape == (6, 4)
    shown = np.rot90(stored, k=-1) / 255.0
    np.testing.assert_allclose(ds.X[0], shown, atol=0.1)


def test_rotated_and_upright_photos_of_one_displayed_size_load_together(tmp_path):
    rgb = np.zeros((4, 6, 3), np.uint8)
    rgb[..., 0] = 200
    folder = tmp_path / "mixed"
    folder.mkdir()
    _jpeg_with_orientation(folder / "a.jpg", rgb, 6)  # displayed 4 wide x 6 high
    _jpeg_with_orientation(folder / "b.jpg", rgb.transpose(1, 0, 2).copy(), 1)  # stored so
    _jpeg_with_orientation(folder / "c.jpg", rgb.transpose(1, 0, 2).copy(), 3)  # upside down
    ds = load_dataset(folder)
    assert ds.X.shape == (3, 3, 6, 4)


def test_damaged_exif_leaves_the_image_as_stored(tmp_path):
    folder = tmp_path / "odd"
    folder.mkdir()
    Image.fromarray(np.zeros((4, 6), np.uint8)).save(
        folder / "a.jpg", exif=b"Exif\x00\x00II*\x00\xff\xff\xff\x00"
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Pillow's own "Corrupt EXIF data" when it decodes
        assert load_dataset(folder).X.shape == (1, 4, 6)


# The picture a viewer shows for each EXIF orientation of a stored array (TIFF 6.0, tag 274).
SHOWN = {
    1: lambda a: a,
    2: np.fliplr,
    3: lambda a: np.rot90(a, 2),
    4: np.flipud,
    5: lambda a: a.T,
    6: lambda a: np.rot90(a, -1),
    7: lambda a: np.rot90(a, 2).T,
    8: lambda a: np.rot90(a, 1),
}


def _save_with_orientation(path, pixels: np.ndarray, orientation: int, **options) -> None:
    img = Image.fromarray(pixels)
    exif = img.getexif()
    exif[0x0112] = orientation
    img.save(path, exif=exif, **options)


@pytest.mark.parametrize(
    "suffix, options",
    [(".png", {}), (".tif", {}), (".tif", {"compression": "tiff_lzw"})],  # lossless formats
)
@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_exif_orientation_is_shown_as_viewers_show_it(tmp_path, orientation, suffix, options):
    # PNG writes its eXIf chunk before the image data. Pillow turns TIFF images itself: they
    # must not be turned twice, and Pillow 13 scrambles uncompressed ones it memory-maps.
    from PIL import ImageOps

    pixels = np.arange(4 * 6, dtype=np.uint8).reshape(4, 6) * 10
    folder = tmp_path / "all"
    folder.mkdir()
    _save_with_orientation(folder / f"a{suffix}", pixels, orientation, **options)
    shown = SHOWN[orientation](pixels)
    if suffix == ".png":  # the table above is also Pillow's
        with Image.open(folder / "a.png") as opened:
            np.testing.assert_array_equal(np.asarray(ImageOps.exif_transpose(opened)), shown)
    np.testing.assert_array_equal(load_dataset(folder).X[0], shown / np.float32(255))


def test_sixteen_bit_images_are_turned_too(tmp_path):
    pixels = np.arange(4 * 6, dtype=np.uint16).reshape(4, 6) * 1000
    folder = tmp_path / "deep"
    folder.mkdir()
    _save_with_orientation(folder / "a.png", pixels, 6)
    X = load_dataset(folder).X
    np.testing.assert_allclose(X[0], np.rot90(pixels, -1) / np.float32(65535), rtol=1e-6)


# --- the documented X of load_dataset ----------------------------------------------------------


def test_float32_npy_is_a_read_only_memory_map_and_other_files_are_writable(tmp_path):
    X = np.arange(6, dtype=np.float32).reshape(3, 2)
    np.save(tmp_path / "f32.npy", X)
    np.save(tmp_path / "f64.npy", X.astype(np.float64))
    mapped = load_dataset(tmp_path / "f32.npy").X
    assert isinstance(mapped, np.memmap) and not mapped.flags.writeable
    assert load_dataset(tmp_path / "f64.npy").X.flags.writeable
    assert "read-only" in load_dataset.__doc__
