"""Named datasets and data files -> :class:`Dataset` (float32 arrays plus optional labels).

One scaling rule everywhere: uint8 arrays with 3 or more dimensions are images and are divided by
255 into [0, 1] (images in a folder likewise; 16-bit grayscale ones by 65535, float ones must be
in [0, 1]); every other numeric array is cast to float32 unchanged. Tables (CSV, Parquet) are
2-D float32 with missing cells as NaN, which the estimator rejects with its own message.

Every problem a user can cause (a missing or corrupt file, a text column, an unknown name) raises
:class:`~vaekit.errors.DataError` with one sentence; no numpy, pyarrow or Pillow traceback escapes.
"""

from __future__ import annotations

import gzip
import math
import mmap
import os
import re
import struct
import tokenize
import warnings
import zipfile
import zlib
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from vaekit.errors import DataError

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["DATASET_NAMES", "Dataset", "load_dataset", "read_idx", "resolve_data_dir"]

DATASET_NAMES: tuple[str, ...] = ("digits", "mnist", "fashion-mnist", "olivetti")
SPLITS: tuple[str, ...] = ("train", "test")

# The four official IDX files of MNIST and Fashion-MNIST, per split: (images, labels).
IDX_FILES: dict[str, tuple[str, str]] = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
OLIVETTI_FILE = "olivetti_faces.npz"
FASHION_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)  # fmt: skip
DIGIT_CLASSES = tuple(str(d) for d in range(10))

_FEATURE_KEYS = ("X", "x", "data", "images", "arr_0")
_LABEL_KEYS = ("y", "labels", "label", "target", "targets", "arr_1")
_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff")
_GRAY_MODES = frozenset({"1", "L", "LA", "La", "I", "I;16", "I;16L", "I;16B", "I;16N", "F"})
_DEEP_GRAY_MODES = frozenset({"I", "I;16", "I;16L", "I;16B", "I;16N", "F"})  # beyond 8 bits
# EXIF orientation -> the PIL.Image.Transpose that shows the image as viewers do (the table of
# PIL.ImageOps.exif_transpose, which is not called: it decodes the image even to read the tag).
_TRANSPOSES = {
    2: "FLIP_LEFT_RIGHT", 3: "ROTATE_180", 4: "FLIP_TOP_BOTTOM", 5: "TRANSPOSE",
    6: "ROTATE_270", 7: "TRANSVERSE", 8: "ROTATE_90",
}  # fmt: skip
# Third byte of an IDX magic number -> big-endian dtype (http://yann.lecun.com/exdb/mnist/).
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_IDX_MAX_DIMS = 32  # numpy refuses more; no real IDX file comes close
# What numpy raises on damaged .npy headers and data (the header is parsed as a Python literal).
_NPY_ERRORS = (ValueError, OSError, EOFError, SyntaxError, tokenize.TokenError, MemoryError)
# ... plus what zipfile / zlib raise on a damaged archive.
_NPZ_ERRORS = (
    *_NPY_ERRORS, zipfile.BadZipFile, zlib.error, NotImplementedError, RuntimeError
)  # fmt: skip


@dataclass(frozen=True, eq=False)  # eq=False: field-wise == on arrays is ambiguous
class Dataset:
    """Samples as float32 plus optional labels.

    Attributes
    ----------
    X : ndarray of float32
        Tabular ``(n, d)``; images ``(n, h, w)`` grayscale or ``(n, c, h, w)`` colour in [0, 1].
    y : ndarray of shape (n,) or None
        int64 class codes, float64 continuous targets, or None when unlabelled.
    name : str
        ``"digits"``, ``"mnist:train"``, or the file / folder name.
    feature_names : list of str or None
        Column names of a table, else None.
    image_shape : tuple of int or None
        Per-sample image shape when samples are images, e.g. ``(8, 8)`` for digits even though
        ``X`` is ``(n, 64)``; None for tables.
    classes : list of str or None
        Class names indexed by the codes in ``y`` (text labels, class folders, named datasets).
    files : list of str or None
        For an image folder, each sample's file relative to the folder (``cat/001.png``), in
        the order of ``X``; else None.
    """

    X: np.ndarray
    y: np.ndarray | None
    name: str
    feature_names: list[str] | None = None
    image_shape: tuple[int, ...] | None = None
    classes: list[str] | None = None
    files: list[str] | None = None


def resolve_data_dir(data_dir: str | os.PathLike | None = None) -> Path:
    """Return the data directory: ``data_dir`` if given, else ``$VAEKIT_DATA``.

    Raises
    ------
    DataError
        When neither is set. The folder itself is not checked here; loaders name what is missing.
    """
    if data_dir is None or str(data_dir) == "":
        data_dir = os.environ.get("VAEKIT_DATA", "").strip()
        if not data_dir:
            raise DataError(
                "No data directory is set; pass --data-dir DIR (data_dir=...) "
                "or set the VAEKIT_DATA environment variable."
            )
    return Path(data_dir).expanduser()


def load_dataset(
    spec: str | os.PathLike,
    *,
    data_dir: str | os.PathLike | None = None,
    label_column: str | None = None,
    label_optional: bool = False,
) -> Dataset:
    """Load a named dataset or a data file / image folder.

    Parameters
    ----------
    spec : str or path-like
        A name from :data:`DATASET_NAMES` with optional ``:train`` / ``:test`` (case does not
        matter; a ``str`` name means the dataset even beside a file of that name: write
        ``./digits`` for the file), or a path to a .npy, .npz, .csv, .csv.gz, .parquet or IDX
        file (``.gz`` or a name containing ``idx``), or a folder of images.

        - ``digits``: scikit-learn's embedded 8x8 digits, X ``(1797, 64)`` = pixel / 16.
          ``digits:train`` / ``digits:test`` are ``train_test_split(X, y, test_size=0.25,
          stratify=y, random_state=0)`` (1347 / 450 samples, in that function's order).
        - ``mnist``, ``fashion-mnist``: the official IDX files in ``<data_dir>/<name>/``,
          X ``(n, 28, 28)``; ``:train`` is the official 60,000, ``:test`` the official 10,000,
          no suffix both (train first).
        - ``olivetti``: ``<data_dir>/olivetti/olivetti_faces.npz``, X ``(400, 64, 64)``, y the
          subject id 0..39; ``:train`` / ``:test`` are ``train_test_split(X, y, test_size=120,
          stratify=y, random_state=0)``: 7 / 3 images of every subject.
        - An IDX images file picks up its labels from the matching ``*labels-idx1*`` file
          beside it (MNIST naming), when there is one.
        - A CSV whose header row is all numbers is read as having no header (``numpy.savetxt``
          output), with columns named ``f0, f1, ...``; missing cells (empty, ``NA``, ``null``)
          count as numbers there. An unnamed first column of distinct integers is the row
          index that pandas' ``to_csv`` writes by default: it is dropped with a warning.
        - A Parquet file's pandas index columns (``__index_level_0__``, from ``to_parquet``)
          are not features.
        - Images are turned as their EXIF orientation says, as photo viewers show them.
        - An image folder with subfolders gives one class per subfolder (sorted names).
    data_dir : path-like, optional
        Root holding ``mnist/``, ``fashion-mnist/``, ``olivetti/``; defaults to ``$VAEKIT_DATA``.
    label_column : str, optional
        For CSV / Parquet: the column holding labels (text labels become int64 codes in sorted
        order, with the names in ``Dataset.classes``).
    label_optional : bool, default=False
        A table without ``label_column``, or whose ``label_column`` is empty in every row, is
        then read without labels instead of refused (the CLI's commands on a run use the run's
        label column so, for labelled and new tables alike).

    Returns
    -------
    Dataset
        ``X`` float32, never shared with a cache, and writable except from a float32 .npy
        file: that is a read-only memory map of the file (``numpy.memmap``, so a file larger
        than memory can be trained on), to copy with ``np.array(X)`` before changing it in
        place. ``y`` of shape ``(n,)`` or None.

    Raises
    ------
    DataError
        For an unknown name, a missing or unreadable file, or contents that are not numeric samples.
    """
    named = _parse_name(spec)
    if named is not None:
        if label_column is not None:
            raise DataError(
                "label_column applies only to CSV and Parquet files, not named datasets."
            )
        name, split = named
        if name == "digits":
            return _load_digits(split)
        root = resolve_data_dir(data_dir)
        if name == "olivetti":
            return _load_olivetti(root, split)
        return _load_idx_dataset(name, root, split)
    path = Path(spec).expanduser()
    if not path.exists():
        _raise_missing(str(spec))  # as written: Path("./digits") drops the "./" that says "file"
    return _load_path(path, label_column, label_optional)


def takes_label_column(spec: str | os.PathLike) -> bool:
    """Whether ``load_dataset(spec, label_column=...)`` reads a label column: a table file."""
    return not is_dataset_name(spec) and _file_kind(Path(spec)) in ("csv", "parquet")


def label_columns(
    data: str | os.PathLike, test: str | os.PathLike | None, label_column: str | None
) -> tuple[str | None, str | None]:
    """One ``--label-column`` for DATA and ``--test``: given to the table among them only.

    Where exactly one of the two is a CSV / Parquet file (``digits:train`` with a labelled
    ``test.csv``), the other has its labels already and must not be given the column; in any
    other case both get it, and a side that cannot take it says so.
    """
    if label_column is None or test is None:
        return label_column, label_column
    data_table, test_table = takes_label_column(data), takes_label_column(test)
    if data_table != test_table:
        return (label_column if data_table else None), (label_column if test_table else None)
    return label_column, label_column


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (gzipped or raw), validating magic number, type code, dims and length.

    Parameters
    ----------
    path : path-like
        The file; gzip is detected from its first bytes, not its name.

    Returns
    -------
    ndarray
        Shape as stored (e.g. ``(60000, 28, 28)`` images, ``(60000,)`` labels), with the stored
        dtype (uint8, int8, int16, int32, float32 or float64) in native byte order; writable.
    """
    view = _read_idx_view(Path(path))
    return view.astype(view.dtype.newbyteorder("="))  # always a copy: the view is read-only


# --- named datasets ---------------------------------------------------------------------------


def _parse_name(spec: str | os.PathLike) -> tuple[str, str | None] | None:
    """``"mnist:train"`` -> ``("mnist", "train")``; None when ``spec`` is not a dataset name."""
    if not isinstance(spec, str):  # a path object names a dataset only if no such file exists
        spec = os.fspath(spec)
        if not isinstance(spec, str) or Path(spec).exists():
            return None
    base, sep, split = spec.strip().lower().partition(":")
    if base not in DATASET_NAMES:
        return None
    if sep and split not in SPLITS:
        raise DataError(
            f"Unknown split '{split}' for {base}; use {base}, {base}:train or {base}:test."
        )
    return base, (split if sep else None)


def is_dataset_name(spec: str | os.PathLike) -> bool:
    """Whether :func:`load_dataset` reads ``spec`` as a named dataset rather than a path."""
    try:
        return _parse_name(spec) is not None
    except DataError:
        return False


def may_share_rows(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """Whether two data specs of :func:`load_dataset` can hold the same rows.

    True for one named dataset with overlapping splits (``mnist`` holds ``mnist:test``; case
    and spaces do not matter) and for one file or folder however its path is written
    (``./x.npy`` and ``x.npy``, relative to the current folder). Different files are taken to
    hold different rows: their contents are not compared.
    """
    try:
        first, second = _parse_name(a), _parse_name(b)
    except DataError:  # an unknown split names no rows that load_dataset would give
        return False
    if first is not None or second is not None:
        return (
            first is not None
            and second is not None
            and first[0] == second[0]
            and (first[1] is None or second[1] is None or first[1] == second[1])
        )
    return Path(a).expanduser().resolve() == Path(b).expanduser().resolve()


def check_disjoint(data: str | os.PathLike, test: str | os.PathLike) -> None:
    """Refuse a ``--test`` that can hold rows of DATA (see :func:`may_share_rows`).

    Every model of a comparison (downstream classifiers, PCA, the baseline AE) is fit on DATA:
    scored on rows they were fit on, they would look better than they are.
    """
    if may_share_rows(data, test):
        raise DataError(
            f"--test {test} holds rows of DATA {data}, and the models are fit on DATA, so "
            "they would be scored on rows they were trained on; pass data that does not "
            "overlap, such as NAME:train as DATA and NAME:test as --test."
        )


def _load_digits(split: str | None) -> Dataset:
    from sklearn.datasets import load_digits  # lazy: scikit-learn is slow to import

    bunch = load_digits()
    X = (bunch.data / 16.0).astype(np.float32)  # pixel counts 0..16 -> [0, 1]
    full = Dataset(
        X, bunch.target.astype(np.int64), "digits", image_shape=(8, 8), classes=list(DIGIT_CLASSES)
    )
    return full if split is None else _stratified_split(full, 0.25, split)


def _load_olivetti(root: Path, split: str | None) -> Dataset:
    path = root / "olivetti" / OLIVETTI_FILE
    if not path.is_file():
        raise DataError(
            f"Olivetti faces are not at {path}; vaekit cannot download them, so place "
            f"{OLIVETTI_FILE} there by hand (see shared/data/README.md) or pass another --data-dir."
        )
    ds = _load_npz(path)
    if ds.X.shape[1:] != (64, 64) or ds.y is None:
        raise DataError(f"{path} does not hold 64x64 'images' with a 'target'; replace the file.")
    full = replace(ds, name="olivetti")
    if split is None:
        return full
    n_subjects = len(np.unique(full.y))
    return _stratified_split(full, 3 * n_subjects, split)  # 3 test images per subject


def _stratified_split(ds: Dataset, test_size: float | int, split: str) -> Dataset:
    """The deterministic stratified split documented in :func:`load_dataset`."""
    from sklearn.model_selection import train_test_split

    train, test = train_test_split(
        np.arange(len(ds.X)), test_size=test_size, stratify=ds.y, random_state=0
    )
    idx = train if split == "train" else test
    return replace(ds, X=ds.X[idx], y=ds.y[idx], name=f"{ds.name}:{split}")


def _load_idx_dataset(name: str, root: Path, split: str | None) -> Dataset:
    """MNIST-format dataset from ``root/name``: X ``(n, 28, 28)`` in [0, 1], y int64."""
    folder = root / name
    splits = SPLITS if split is None else (split,)
    missing = [f for s in splits for f in IDX_FILES[s] if not (folder / f).is_file()]
    if missing:
        raise DataError(
            f"{name} files are missing from {folder} ({', '.join(missing)}); run "
            f"`vaekit datasets download {name} --data-dir {root}` or copy the official files there."
        )
    parts = [_idx_pair(folder, s) for s in splits]
    X = _scale_uint8(np.concatenate([images for images, _ in parts]))
    y = np.concatenate([labels for _, labels in parts]).astype(np.int64)
    classes = FASHION_CLASSES if name == "fashion-mnist" else DIGIT_CLASSES
    label = name if split is None else f"{name}:{split}"
    return Dataset(X, y, label, image_shape=X.shape[1:], classes=list(classes))


def _idx_pair(folder: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """Cached read-only (images uint8 (n, h, w), labels (n,)) of one split; callers copy."""
    image_file, label_file = IDX_FILES[split]
    images, labels = _cached_idx(folder / image_file), _cached_idx(folder / label_file)
    if images.ndim != 3 or images.dtype != np.uint8:
        raise DataError(f"{folder / image_file} does not hold uint8 images; download it again.")
    if labels.shape != images.shape[:1]:
        raise DataError(
            f"{folder / label_file} holds {labels.shape} labels for {len(images)} images in "
            f"{image_file}; download both files again."
        )
    return images, labels


def _cached_idx(path: Path) -> np.ndarray:
    st = path.stat()
    return _cached_idx_view(str(path.resolve()), st.st_mtime_ns, st.st_size)


@lru_cache(maxsize=8)
def _cached_idx_view(path: str, mtime_ns: int, size: int) -> np.ndarray:
    # mtime and size are in the key so a replaced file is read again. The array is a read-only
    # view over the gunzipped bytes; loaders build new float32 arrays from it, never hand it out.
    return _read_idx_view(Path(path))


# --- IDX --------------------------------------------------------------------------------------


def _read_idx_view(path: Path) -> np.ndarray:
    """Read-only big-endian view of an IDX file's data, after validation."""
    raw = _read_bytes(path)
    if raw[:2] == b"\x1f\x8b":  # gzip magic; the name alone is not trusted
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:
            raise DataError(
                f"{path.name} is not a valid gzip file ({_first_line(exc)}); download or "
                "compress it again."
            ) from None
    return _parse_idx(raw, path.name)


def _parse_idx(raw: bytes, source: str) -> np.ndarray:
    # Magic: two zero bytes, a type code, the number of dimensions; then one big-endian uint32
    # per dimension; then the data, exactly prod(dims) items.
    if len(raw) < 4 or raw[:2] != b"\x00\x00" or raw[2] not in _IDX_DTYPES or raw[3] == 0:
        raise DataError(
            f"{source} is not an IDX file (bad magic number); pass an IDX file such as "
            "train-images-idx3-ubyte.gz."
        )
    ndim = raw[3]
    if ndim > _IDX_MAX_DIMS:
        raise DataError(f"{source} declares {ndim} dimensions, more than an IDX file can use.")
    start = 4 + 4 * ndim
    if len(raw) < start:
        raise DataError(f"{source} is truncated inside its IDX header; download it again.")
    dims = struct.unpack(f">{ndim}I", raw[4:start])
    dtype = np.dtype(_IDX_DTYPES[raw[2]])
    count = math.prod(dims)  # Python int: no overflow, checked before anything is allocated
    expected, actual = count * dtype.itemsize, len(raw) - start
    if actual != expected:
        what = "truncated" if actual < expected else "longer than its header says"
        raise DataError(
            f"{source} is {what}: its header declares shape {dims} ({expected} data bytes) "
            f"but it holds {actual}; download it again."
        )
    return np.frombuffer(raw, dtype=dtype, count=count, offset=start).reshape(dims)


# --- files ------------------------------------------------------------------------------------


def _load_path(path: Path, label_column: str | None, label_optional: bool = False) -> Dataset:
    """A file or folder that exists -> Dataset."""
    if path.is_dir():
        _refuse_label_column(label_column, path)
        return _load_image_folder(path)
    kind = _file_kind(path)
    if kind is None:
        hint = " (pass the folder that holds your images)" if _is_image_name(path) else ""
        raise DataError(
            f"{path.name} has an unsupported file type{hint}; use .npy, .npz, .csv, .parquet, "
            "an IDX file (.gz or a name containing idx) or a folder of images."
        )
    if path.stat().st_size == 0:
        raise DataError(f"{path.name} is empty; pass a file that holds data.")
    if kind in ("csv", "parquet"):
        table = _read_csv(path) if kind == "csv" else _read_parquet(path, label_column)
        if label_optional and label_column not in table.column_names:
            label_column = None
        elif label_optional and table.column(label_column).null_count == table.num_rows:
            # New rows exported with the label column left blank: no labels, and not a feature.
            table, label_column = table.drop_columns([label_column]), None
        return _table_dataset(table, path.name, label_column)
    _refuse_label_column(label_column, path)
    if kind == "npy":
        return _load_npy(path)
    if kind == "npz":
        return _load_npz(path)
    return _load_idx_file(path)


def _raise_missing(text: str) -> None:
    """One sentence for a DATA that does not exist; ``text`` as the user wrote it."""
    if "/" not in text and os.sep not in text and not Path(text).suffix:  # like a dataset name
        raise DataError(
            f"Unknown dataset '{text}'; known names are {', '.join(DATASET_NAMES)} (each with "
            "optional :train or :test), and a path to a data file or image folder also works."
        )
    raise DataError(
        f"{text} does not exist; check the path (or use a dataset name such as digits)."
    )


def _refuse_label_column(label_column: str | None, path: Path) -> None:
    if label_column is not None:
        raise DataError(
            f"label_column applies only to CSV and Parquet files, not {path.name}; leave it unset."
        )


def _file_kind(path: Path) -> str | None:
    name = path.name.lower()
    if name.endswith((".csv", ".csv.gz")):
        return "csv"
    if name.endswith((".parquet", ".pq")):
        return "parquet"
    if name.endswith(".npy"):
        return "npy"
    if name.endswith(".npz"):
        return "npz"
    if name.endswith(".gz") or "idx" in name:
        return "idx"
    return None


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path} does not exist; check the path.") from None
    except OSError as exc:
        raise DataError(f"{path} could not be read ({exc.strerror or exc}); check it.") from None


def _has_magic(path: Path, magic: bytes) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(len(magic)) == magic
    except OSError as exc:
        raise DataError(f"{path} could not be read ({exc.strerror or exc}); check it.") from None


def _array_dataset(
    arr: np.ndarray, name: str, y: np.ndarray | None = None, classes: list[str] | None = None
) -> Dataset:
    """Validate a numeric array of samples and apply the scaling rule (uint8 images / 255)."""
    if arr.dtype.kind not in "biuf":
        raise DataError(f"{name} holds {arr.dtype} values, not numbers; save a numeric array.")
    if arr.ndim < 2 or arr.ndim > 4:
        raise DataError(
            f"{name} holds a {arr.ndim}-D array of shape {arr.shape}, but samples must be "
            "(n, d), (n, h, w) or (n, c, h, w); reshape it (a 1-D array of n values is (n, 1))."
        )
    if arr.size == 0:
        raise DataError(f"{name} holds no data (shape {arr.shape}); pass a non-empty array.")
    if y is not None and len(y) != len(arr):
        raise DataError(f"{name} has {len(y)} labels for {len(arr)} samples; pass one per sample.")
    if arr.ndim >= 3 and arr.dtype == np.uint8:
        X = _scale_uint8(arr)
    else:
        with np.errstate(over="ignore"):  # values beyond float32 become inf; the estimator says so
            X = arr.astype(np.float32, copy=False)
    image_shape = tuple(int(s) for s in X.shape[1:]) if X.ndim >= 3 else None
    return Dataset(X, y, name, image_shape=image_shape, classes=classes)


def align_test_labels(train: Dataset, test: Dataset) -> np.ndarray | None:
    """``test.y`` in the class codes of ``train``.

    Text labels and class folders are numbered per file, by sorted name: a test file without
    one of the training classes numbers the others differently, and its codes would be compared
    with the training codes as if they meant the same classes. Recoding by name fixes that.

    Raises
    ------
    DataError
        The test set has a class the training set lacks, or its labels are of another kind
        (names against numbers).
    """
    if test.y is None or train.y is None:
        return test.y
    if (train.classes is None) != (test.classes is None):
        recoded = _numbers_as_names(train, test)
        if recoded is not None:
            return recoded
        named, numbered = (train, test) if train.classes is not None else (test, train)
        raise DataError(
            f"{named.name} has named classes ({', '.join(named.classes[:5])}) but "
            f"{numbered.name} has numeric labels; label both sets the same way."
        )
    if train.classes is None or test.classes is None:
        return test.y
    code = {name: i for i, name in enumerate(train.classes)}
    unknown = [name for name in test.classes if name not in code]
    if unknown:
        raise DataError(
            f"{test.name} has class(es) {', '.join(map(repr, unknown[:5]))} that "
            f"{train.name} has not; a classifier cannot predict a class it never saw."
        )
    recode = np.array([code[name] for name in test.classes], dtype=np.int64)
    return recode[test.y]


def _numbers_as_names(train: Dataset, test: Dataset) -> np.ndarray | None:
    """``test.y`` in ``train``'s codes where one side has integer labels and the other names
    that spell them (digits and MNIST name their classes "0".."9"); None where they do not."""
    numbered = test if train.classes is not None else train
    if not np.issubdtype(numbered.y.dtype, np.integer):
        return None
    if train.classes is not None:  # names in training, numbers in the test set
        code = {name: i for i, name in enumerate(train.classes)}
        values = np.unique(test.y)
        if any(str(v) not in code for v in values):
            return None
        lookup = np.zeros(int(values.max()) - int(values.min()) + 1, np.int64)
        lookup[values - values.min()] = [code[str(v)] for v in values]
        return lookup[test.y - values.min()]
    number = {str(v): int(v) for v in np.unique(train.y)}  # numbers in training, names in test
    if any(name not in number for name in test.classes):
        return None
    return np.array([number[name] for name in test.classes], np.int64)[test.y]


def release_pages(X: np.ndarray | None) -> None:
    """Drop the pages of a memory-mapped ``X`` from this process's resident memory.

    Pages read through a file mapping count in the process's RSS until the kernel needs the
    memory back; streaming over a file larger than memory would otherwise grow RSS to the size
    of the file. After ``MADV_DONTNEED`` the data is still in the page cache (a later read
    costs no disk access) but no longer mapped here. A no-op for ordinary arrays.
    """
    mapping = getattr(X, "_mmap", None)  # set on np.memmap (np.load(..., mmap_mode="r"))
    if isinstance(mapping, mmap.mmap) and hasattr(mmap, "MADV_DONTNEED"):
        mapping.madvise(mmap.MADV_DONTNEED)


def _scale_uint8(images: np.ndarray) -> np.ndarray:
    """uint8 pixels -> float32 in [0, 1], divided in float32 so 255 maps to exactly 1.0."""
    return np.divide(images, np.float32(255.0), dtype=np.float32)


def _labels(values: np.ndarray, source: str) -> tuple[np.ndarray, list[str] | None]:
    """Labels -> (y, classes): ints int64, floats float64, text int64 codes in sorted order."""
    if values.ndim == 2 and values.shape[1] == 1:
        values = values[:, 0]
    if values.ndim != 1:
        raise DataError(f"Labels in {source} have shape {values.shape}; pass one label per sample.")
    kind = values.dtype.kind
    if kind in "biu":
        return values.astype(np.int64), None
    if kind == "f":
        if np.isnan(values).any():
            raise DataError(
                f"Labels in {source} have missing (NaN) values; fill or drop those rows."
            )
        return values.astype(np.float64), None
    if kind in "US":
        names, codes = np.unique(values, return_inverse=True)
        classes = [n.decode(errors="replace") if isinstance(n, bytes) else str(n) for n in names]
        return codes.reshape(-1).astype(np.int64), classes
    raise DataError(f"Labels in {source} are {values.dtype}, not numbers or text; convert them.")


def _load_npy(path: Path) -> Dataset:
    # The header is checked first: np.load reports object arrays only as 'allow_pickle', and
    # would try to allocate whatever shape a damaged header declares.
    shape, dtype, data_start = _npy_header(path)
    if dtype.hasobject:
        raise DataError(
            f"{path.name} holds Python objects (dtype object), which vaekit does not unpickle "
            "for safety; save a numeric array instead."
        )
    if path.stat().st_size - data_start < math.prod(shape) * dtype.itemsize:
        raise DataError(f"{path.name} is truncated (shorter than its header says); save it again.")
    try:
        # Memory-mapped, not read: a float32 file larger than memory is then embedded (and
        # trained on) batch by batch; other dtypes are converted to float32 in memory.
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
    except _NPY_ERRORS as exc:
        raise DataError(
            f"{path.name} is a corrupt .npy file ({_first_line(exc)}); save it again."
        ) from None
    return _array_dataset(arr, path.name)


def _npy_header(path: Path) -> tuple[tuple[int, ...], np.dtype, int]:
    """(shape, dtype, offset of the data) from a .npy header, via numpy's public readers."""
    fmt = np.lib.format
    try:
        with open(path, "rb") as f:
            version = fmt.read_magic(f)
            read = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
            shape, _, dtype = read(f)
            return shape, dtype, f.tell()
    except _NPY_ERRORS:
        raise DataError(
            f"{path.name} is not a .npy file (bad header); save arrays with numpy.save."
        ) from None


def _load_npz(path: Path) -> Dataset:
    if not _has_magic(path, b"PK"):
        raise DataError(f"{path.name} is not an .npz (zip) file; save arrays with numpy.savez.")
    if not zipfile.is_zipfile(path):  # else numpy takes it for a pickle and says so
        raise DataError(
            f"{path.name} is a truncated or corrupt .npz file (no zip directory); save it again."
        )
    try:
        archive = np.load(path, allow_pickle=False)
    except _NPZ_ERRORS as exc:
        raise DataError(
            f"{path.name} is a corrupt .npz file ({_first_line(exc)}); save it again."
        ) from None
    with archive:
        keys = list(archive.files)
        feature_key = _first_key(keys, _FEATURE_KEYS) or (keys[0] if len(keys) == 1 else None)
        if feature_key is None:
            raise DataError(
                f"{path.name} has no features array; name it one of {', '.join(_FEATURE_KEYS)} "
                f"(it holds {', '.join(keys) or 'no arrays'})."
            )
        label_key = _first_key([k for k in keys if k != feature_key], _LABEL_KEYS)
        try:
            arr = archive[feature_key]
            labels = None if label_key is None else archive[label_key]
        except _NPZ_ERRORS as exc:
            raise DataError(
                f"{path.name} could not be read as numeric arrays ({_first_line(exc)}); save "
                "numeric arrays with numpy.savez."
            ) from None
    y, classes = (None, None) if labels is None else _labels(labels, f"{path.name}[{label_key}]")
    return _array_dataset(arr, path.name, y, classes)


def _first_key(keys: list[str], preferred: tuple[str, ...]) -> str | None:
    return next((k for k in preferred if k in keys), None)


def _load_idx_file(path: Path) -> Dataset:
    arr = read_idx(path)
    if arr.ndim == 1:
        raise DataError(
            f"{path.name} is a 1-D IDX file ({len(arr)} labels), not samples; pass the matching "
            "images file (e.g. train-images-idx3-ubyte.gz)."
        )
    return _array_dataset(arr, path.name, _idx_sibling_labels(path, len(arr)))


def _idx_sibling_labels(path: Path, n: int) -> np.ndarray | None:
    """Labels from ``*labels-idx1*`` beside ``*images-idx3*`` (MNIST naming), if present."""
    sibling = path.with_name(path.name.replace("images", "labels").replace("idx3", "idx1"))
    if sibling == path or not sibling.is_file():
        return None
    labels = read_idx(sibling)
    if labels.shape != (n,):
        raise DataError(
            f"{sibling.name} holds {labels.shape} labels for the {n} samples of {path.name}; "
            "fix or remove the labels file."
        )
    return _labels(labels, sibling.name)[0]


# --- tables -----------------------------------------------------------------------------------


def _first_line(exc: BaseException) -> str:
    """The first sentence of a library's message, to quote inside one of ours."""
    line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return re.split(r"(?<=[.!?])\s+(?=[A-Z])", line)[0].rstrip(".")


def _read_csv(path: Path) -> pa.Table:
    import pyarrow as pa
    import pyarrow.csv as pcsv

    convert = pcsv.ConvertOptions(strings_can_be_null=True)  # an empty label cell is missing
    # Named explicitly: pyarrow's own detection only knows the lower-case ".gz".
    compression = "gzip" if path.name.lower().endswith(".gz") else None
    try:
        with pa.input_stream(str(path), compression=compression) as stream:
            table = pcsv.read_csv(stream, convert_options=convert)
        index = _is_unnamed_index(table, convert.null_values)
        if not index and _is_data_row(table.column_names, convert.null_values):
            # No header row (numpy.savetxt writes none): the first row became the column names.
            options = pcsv.ReadOptions(autogenerate_column_names=True)
            with pa.input_stream(str(path), compression=compression) as stream:
                table = pcsv.read_csv(stream, read_options=options, convert_options=convert)
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise DataError(
            f"{path.name} could not be parsed as CSV ({_first_line(exc)}); check that it is "
            "comma-separated with one header row."
        ) from None
    if index:
        warnings.warn(
            f"Dropped the unnamed first column of {path.name} as a row index (pandas' to_csv "
            "writes one unless index=False); name that column in the header if it is a feature.",
            UserWarning,
            stacklevel=4,  # at the caller of load_dataset
        )
        table = table.remove_column(0)
    return table


def _is_data_row(cells: list[str], missing: list[str]) -> bool:
    """Whether a first row read as column names holds values: every cell a number or a
    missing value as the data rows spell it ("", NA, null...: pandas writes "" for NaN, R NA)."""
    missing = set(missing)
    return bool(cells) and all(c in missing or _is_number(c) for c in cells)


def _is_unnamed_index(table: pa.Table, missing: list[str]) -> bool:
    """Whether the first column is a row index as pandas' ``to_csv`` (and R's ``write.csv``)
    write one by default: no name in the header, distinct integers below it.

    Where the other column names are numbers (or missing) too, they must be pandas' default
    names ``0, 1, ...`` (``DataFrame(X).to_csv()``); other numbers are a headerless file whose
    first row has a missing first cell.
    """
    import pyarrow as pa

    names = table.column_names
    if not names or names[0] != "" or table.num_rows == 0:
        return False
    column = table.column(0)
    if not pa.types.is_integer(column.type) or column.null_count:
        return False
    values = column.to_numpy()
    if len(np.unique(values)) != len(values):
        return False
    rest = names[1:]
    return not _is_data_row(rest, missing) or rest == [str(j) for j in range(len(rest))]


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _read_parquet(path: Path, label_column: str | None) -> pa.Table:
    """The table without the index columns pandas' ``to_parquet`` stores beside the data
    (``__index_level_0__`` for an unnamed index), unless one is ``label_column``."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
        names = table.column_names  # decodes the names now, so bad UTF-8 is caught here
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise DataError(
            f"{path.name} is not a readable Parquet file ({_first_line(exc)}); write it again."
        ) from None
    try:
        index = (table.schema.pandas_metadata or {}).get("index_columns")
    except (ValueError, AttributeError):  # metadata that is not pandas' JSON object
        return table
    if not isinstance(index, list):
        return table
    drop = {c for c in index if isinstance(c, str)} - {label_column}  # a RangeIndex is a dict
    keep = [j for j, n in enumerate(names) if n not in drop]
    return table if len(keep) == len(names) else table.select(keep)


def _table_dataset(table: pa.Table, name: str, label_column: str | None) -> Dataset:
    """Numeric columns -> X (n, d) float32 (nulls as NaN); ``label_column`` -> y."""
    names = list(table.column_names)
    label_index = None
    if label_column is not None:
        if label_column not in names:
            raise DataError(
                f"Label column {label_column!r} is not in {name}; its columns are "
                f"{quote_names(names)}."
            )
        label_index = names.index(label_column)
    if table.num_rows == 0:
        raise DataError(f"{name} has no data rows; pass a table with at least one row.")
    keep = [j for j in range(len(names)) if j != label_index]
    if not keep:
        besides = f" besides the label column {label_column!r}" if label_column else ""
        raise DataError(f"{name} has no feature columns{besides}; add numeric columns.")
    X = np.empty((table.num_rows, len(keep)), dtype=np.float32)
    with np.errstate(over="ignore"):  # beyond float32 becomes inf, as in _array_dataset
        for out, j in enumerate(keep):  # by index: column names may repeat
            X[:, out] = _numeric_column(table.column(j), names[j], name)
    y = classes = None
    if label_index is not None:
        y, classes = _table_labels(table.column(label_index), label_column, name)
    return Dataset(X, y, name, feature_names=[names[j] for j in keep], classes=classes)


def _numeric_column(column: pa.ChunkedArray, column_name: str, source: str) -> np.ndarray:
    import pyarrow as pa

    kind = column.type
    if pa.types.is_dictionary(kind):
        kind = kind.value_type
    numeric = (
        pa.types.is_integer(kind)
        or pa.types.is_floating(kind)
        or pa.types.is_boolean(kind)
        or pa.types.is_decimal(kind)
        or pa.types.is_null(kind)  # an all-empty column: NaN everywhere
    )
    if not numeric:
        raise DataError(
            f"Column {column_name!r} of {source} is not numeric ({kind}); drop it or pass it "
            "as the label column (--label-column)."
        )
    try:
        # Unsafe, so that integers beyond 2**53 (nanosecond timestamps, 64-bit ids) round to
        # the nearest float64 as numpy's astype does, instead of being refused.
        return column.cast(pa.float64(), safe=False).to_numpy(zero_copy_only=False)  # NaN
    except (pa.ArrowException, ValueError) as exc:
        raise DataError(
            f"Column {column_name!r} of {source} cannot be read as numbers ({_first_line(exc)})."
        ) from None


def _table_labels(
    column: pa.ChunkedArray, column_name: str, source: str
) -> tuple[np.ndarray, list[str] | None]:
    import pyarrow as pa

    where = f"column {column_name!r} of {source}"
    if column.null_count:
        raise DataError(
            f"Label {where} has {column.null_count} missing values; fill or drop those rows."
        )
    kind = column.type
    if pa.types.is_dictionary(kind):
        column, kind = column.cast(kind.value_type), kind.value_type
    if pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_boolean(kind):
        return _labels(column.to_numpy(zero_copy_only=False), where)
    try:  # anything else (text, dates) is a class name
        text = column.cast(pa.string()).to_numpy(zero_copy_only=False).astype(str)
    except (pa.ArrowException, ValueError) as exc:
        raise DataError(f"Label {where} cannot be used as labels ({_first_line(exc)}).") from None
    return _labels(text, where)


def quote_names(names: list[str], limit: int = 20) -> str:
    """``'a', 'b', ...`` for a message: the first ``limit`` names, then how many more."""
    shown = ", ".join(repr(n) for n in names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


# --- image folders ----------------------------------------------------------------------------


def _is_image_name(path: Path) -> bool:
    return path.suffix.lower() in _IMAGE_SUFFIXES and not path.name.startswith(".")


def _image_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if _is_image_name(p) and p.is_file())


def _load_image_folder(folder: Path) -> Dataset:
    """Images, optionally one class per subfolder -> X (n, h, w) or (n, 3, h, w) in [0, 1]."""
    try:
        subfolders = sorted(p for p in folder.iterdir() if p.is_dir() and p.name[:1] != ".")
        loose = _image_files(folder)
        classes = [(d, files) for d in subfolders if (files := _image_files(d))]
    except OSError as exc:
        raise DataError(f"{folder} could not be listed ({exc.strerror or exc}).") from None
    if classes and loose:
        raise DataError(
            f"{folder} mixes loose images ({loose[0].name}) with class subfolders "
            f"({classes[0][0].name}/); move the loose images into a subfolder."
        )
    if classes:
        files = [f for _, fs in classes for f in fs]
        y = np.repeat(np.arange(len(classes), dtype=np.int64), [len(fs) for _, fs in classes])
        names = [_text_name(d.name) for d, _ in classes]
    else:
        files, y, names = loose, None, None
    if not files:
        raise DataError(
            f"{folder} holds no images ({', '.join(_IMAGE_SUFFIXES)}), directly or in class "
            "subfolders; pass a folder of images."
        )
    X = _read_images(files, folder)
    relative = [_text_name(f.relative_to(folder).as_posix()) for f in files]
    return Dataset(X, y, folder.name, image_shape=X.shape[1:], classes=names, files=relative)


def _text_name(name: str) -> str:
    """A file name as text that UTF-8 can hold: bytes that are not UTF-8 (a Latin-1 name on
    Linux, which Python keeps as lone surrogates) are shown as ``\\xe9`` escapes, so the
    name can be written to a CSV or Parquet file."""
    return os.fsencode(name).decode("utf-8", "backslashreplace")


def _read_images(files: list[Path], folder: Path) -> np.ndarray:
    """float32 in [0, 1]: (n, h, w) when every image is grayscale, else (n, 3, h, w) RGB."""
    probes = [_probe_image(f, folder) for f in files]  # headers only: sizes and modes
    size = probes[0][0]
    for f, (other, _) in zip(files, probes, strict=True):
        if other != size:
            raise DataError(
                f"Images differ in size: {files[0].relative_to(folder)} is {size[0]}x{size[1]} "
                f"but {f.relative_to(folder)} is {other[0]}x{other[1]}; resize them to one size."
            )
    colour = not all(gray for _, gray in probes)
    width, height = size
    shape = (len(files), 3, height, width) if colour else (len(files), height, width)
    out = np.empty(shape, dtype=np.float32)
    for i, f in enumerate(files):
        pixels = _decode_image(f, folder, colour)
        if pixels.shape[-2:] != (height, width):  # else numpy's broadcasting error escapes
            h, w = pixels.shape[-2:]
            reason = ValueError(
                f"Pillow decodes it as {w}x{h}, not {width}x{height} as its header says"
            )
            raise _bad_image(f, folder, reason)
        out[i] = pixels
    return out


def _probe_image(path: Path, folder: Path) -> tuple[tuple[int, int], bool]:
    from PIL import Image

    try:
        with Image.open(path) as img:
            width, height = img.size
            if _orientation(img) in (5, 6, 7, 8):  # displayed turned by 90 degrees
                width, height = height, width
            return (width, height), _is_gray(img)
    except Exception as exc:  # decoders raise many types on bad files; report any as bad data
        raise _bad_image(path, folder, exc) from None


def _decode_image(path: Path, folder: Path, colour: bool) -> np.ndarray:
    """One image as float32 in [0, 1]: (h, w), or (3, h, w) channels first (as torch wants)."""
    from PIL import Image

    try:
        # From a file object, not the path: Pillow (13) memory-maps an uncompressed TIFF opened
        # by path with its turned size but its stored pixel layout, scrambling the image.
        with open(path, "rb") as f, Image.open(f) as opened:
            method = _TRANSPOSES.get(_orientation(opened))
            img = opened if method is None else opened.transpose(Image.Transpose[method])
            if img.mode in _DEEP_GRAY_MODES:
                pixels = _deep_gray(np.asarray(img), img.mode, path, folder)
                return np.broadcast_to(pixels, (3, *pixels.shape)) if colour else pixels
            pixels = np.asarray(img.convert("RGB" if colour else "L"))
    except DataError:
        raise
    except Exception as exc:  # as in _probe_image
        raise _bad_image(path, folder, exc) from None
    return _scale_uint8(pixels.transpose(2, 0, 1) if colour else pixels)


def _deep_gray(pixels: np.ndarray, mode: str, path: Path, folder: Path) -> np.ndarray:
    """A 16-bit, 32-bit integer or float grayscale image -> float32 in [0, 1].

    Pillow's ``convert("L")`` clips these to 0..255 instead of rescaling them (a 16-bit PNG
    would come out nearly all white), so they are scaled here: integers by the 16-bit range,
    floats taken as they are, which must then already lie in [0, 1].
    """
    values = pixels.astype(np.float32)
    lo, hi = float(values.min()), float(values.max())
    if mode == "F":
        if np.isfinite(values).all() and lo >= 0.0 and hi <= 1.0:
            return values
        bound = "[0, 1]"
    elif lo >= 0 and hi <= 65535:
        return values / np.float32(65535.0)
    else:
        bound = "0..65535"
    raise DataError(
        f"{path.relative_to(folder)} is a {mode!r} image with values in [{lo:.6g}, {hi:.6g}]; "
        f"vaekit reads such images with values in {bound}; rescale it or save it as 8-bit."
    )


def _orientation(img) -> int:
    """An image's EXIF orientation (1..8, 1 when absent), read from its header.

    Phone cameras store a portrait photo as a landscape one plus this tag. Read before any
    pixel is decoded, so the probe and the decoder agree: a PNG's ``getexif()`` would decode
    the image to look for an eXIf chunk after the pixels, which the PNG spec puts before them.
    Damaged EXIF data leaves the image as stored (Pillow warns about it when it decodes). 1 for
    TIFF: Pillow turns those itself (and reports the turned size before decoding).
    """
    if img.format == "TIFF" or (img.format == "PNG" and "exif" not in img.info):
        return 1
    try:
        orientation = img.getexif().get(0x0112, 1)
    except Exception:  # Pillow raises many types on damaged metadata
        return 1
    return orientation if orientation in _TRANSPOSES else 1


def _is_gray(img) -> bool:
    if img.mode in _GRAY_MODES:
        return True
    if img.mode == "P":  # palette images (GIF) are gray when every entry has r == g == b
        palette = np.asarray(img.getpalette() or [], dtype=np.uint8).reshape(-1, 3)
        return bool((palette == palette[:, :1]).all())
    return False


def _bad_image(path: Path, folder: Path, exc: Exception) -> DataError:
    return DataError(
        f"{path.relative_to(folder)} in {folder} could not be read as an image "
        f"({_first_line(exc)}); remove or replace it."
    )
