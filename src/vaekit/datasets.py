"""Named datasets and data files -> :class:`Dataset` (arrays plus optional labels).

This module names the datasets (digits, MNIST, Fashion-MNIST, Olivetti and their splits) and
hands a path to its loader by format: :mod:`vaekit.array_files` (.npy, .npz, IDX),
:mod:`vaekit.tables` (CSV, Parquet), :mod:`vaekit.image_folder`; :mod:`vaekit.dataset` holds
the record they return and the conversions they share.

One scaling rule everywhere: uint8 arrays with 3 or more dimensions are images and are divided by
255 into [0, 1] (images in a folder likewise; 16-bit grayscale ones by 65535, float ones must be
in [0, 1]); other images are cast to float32 unchanged. Tables (CSV, Parquet, 2-D arrays) are
float64 unless stored as float32 (a timestamp column keeps its variation), with missing cells
as NaN, which the estimator rejects with its own message.

Every problem a user can cause (a missing or corrupt file, a text column, an unknown name) raises
:class:`~vaekit.errors.DataError` with one sentence; no numpy, pyarrow or Pillow traceback escapes.
"""

from __future__ import annotations

import hashlib
import mmap
import os
import warnings
from collections.abc import Iterator
from dataclasses import replace
from functools import lru_cache
from pathlib import Path

import numpy as np

from vaekit.errors import DataError, user_stacklevel

from .array_files import load_idx_file, load_npy, load_npz, read_idx, read_idx_view
from .dataset import Dataset, quote_names, scale_uint8
from .image_folder import is_image_name, load_image_folder
from .tables import read_csv, read_parquet, table_dataset

# The loaders live by format in array_files, tables and image_folder; this module names the
# datasets, dispatches a path to its loader, and re-exports what callers import from here.
__all__ = [
    "DATASET_NAMES",
    "Dataset",
    "load_dataset",
    "quote_names",
    "read_idx",
    "resolve_data_dir",
]

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
          count as numbers there. The exception is pandas' default names ``0, 1, ..., d-1``
          (``pd.DataFrame(X).to_csv(path, index=False)``, three columns or more): a header.
          An unnamed first column of distinct integers is the row index that pandas'
          ``to_csv`` writes by default: it is dropped with a warning. A nameless, all-empty
          last column (a comma ending every line) is dropped. Only commas separate columns.
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
        A table without ``label_column``, or whose ``label_column`` is empty in some or every
        row (a warning says so for some), is then read without labels instead of refused (the
        CLI's commands on a run use the run's label column so, for labelled and new tables
        alike).

    Returns
    -------
    Dataset
        ``X``: images float32, tables float64 unless stored as float32 (see
        :class:`~vaekit.dataset.Dataset`). Never shared with a cache, and writable except
        from a float32 .npy file: that is a read-only memory map of the file
        (``numpy.memmap``, so a file larger than memory can be trained on), to copy with
        ``np.array(X)`` before changing it in place. ``y`` of shape ``(n,)`` or None.

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


def refuse_non_finite(dataset: Dataset) -> None:
    """A DataError naming the file, row and column of the first NaN or infinite value, where
    scikit-learn's check would say only "Input X contains NaN": for the commands, which read
    a file to train on or score (:func:`load_dataset` itself keeps missing values as NaN, as
    pandas does). A memory-mapped file is left to the estimator's own check, which names the
    row too and reads the file once, block by block, while it trains."""
    from .rows import first_non_finite

    X = dataset.X
    if isinstance(X, np.memmap) or X.dtype.kind != "f":
        return
    found = first_non_finite(X)
    if found is not None:
        raise DataError(non_finite_message(dataset.name, *found, dataset.feature_names))


def non_finite_message(
    name: str, row: int, feature: int, value: float, feature_names: list[str] | None = None
) -> str:
    """One sentence on the first NaN or infinite value of data ``name``, with what to do."""
    what = "a missing (NaN) value" if np.isnan(value) else f"an infinite value ({value})"
    names = feature_names or []
    where = f"column {names[feature]!r}" if feature < len(names) else f"feature {feature}"
    remedy = (
        "drop or impute the missing values first (e.g. sklearn.impute.SimpleImputer)"
        if np.isnan(value)
        else "replace or drop the infinite values first"
    )
    return f"{name} has {what} in row {row} (counting from 0), {where}; {remedy}."


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


def same_data(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """Whether two data specs of :func:`load_dataset` name the same rows: one named dataset
    and split (case and spaces aside), or one file or folder however its path is written."""
    try:
        first, second = _parse_name(a), _parse_name(b)
    except DataError:
        return False
    if first is not None or second is not None:
        return first == second
    return Path(a).expanduser().resolve() == Path(b).expanduser().resolve()


def count_shared_rows(X: np.ndarray, seen: np.ndarray) -> int:
    """How many rows of ``X`` (n, ...) are among the rows of ``seen`` (m, ...), by value.

    Rows are compared as float32 bytes, so the same sample read as float32 or float64 (or as
    (n, 64) and (n, 8, 8)) is one. Only X's rows are kept (as 16-byte keys); ``seen`` is read
    block by block (a memory map stays on disk).
    """
    from .rows import iter_chunks

    def keys(block: np.ndarray) -> Iterator[bytes]:
        flat = np.ascontiguousarray(block, dtype=np.float32).reshape(len(block), -1)
        return (hashlib.blake2b(row.tobytes(), digest_size=16).digest() for row in flat)

    counts: dict[bytes, int] = {}
    for key in keys(X):
        counts[key] = counts.get(key, 0) + 1
    found = {key for chunk in iter_chunks(seen) for key in keys(chunk) if key in counts}
    return sum(counts[key] for key in found)


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
            f"Olivetti faces are not at {path}; vaekit cannot download them, so save them "
            "there from scikit-learn (faces = sklearn.datasets.fetch_olivetti_faces(); "
            "numpy.savez(path, images=faces.images, target=faces.target)) or pass another "
            "--data-dir."
        )
    ds = load_npz(path)
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
    X = scale_uint8(np.concatenate([images for images, _ in parts]))
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
    return read_idx_view(Path(path))


# --- files ------------------------------------------------------------------------------------


def _load_path(path: Path, label_column: str | None, label_optional: bool = False) -> Dataset:
    """A file or folder that exists -> Dataset."""
    if path.is_dir():
        _refuse_label_column(label_column, path)
        return load_image_folder(path)
    kind = _file_kind(path)
    if kind is None:
        hint = " (pass the folder that holds your images)" if is_image_name(path) else ""
        raise DataError(
            f"{path.name} has an unsupported file type{hint}; use .npy, .npz, .csv, .parquet, "
            "an IDX file (.gz or a name containing idx) or a folder of images."
        )
    if path.stat().st_size == 0:
        raise DataError(f"{path.name} is empty; pass a file that holds data.")
    if kind in ("csv", "parquet"):
        table = read_csv(path) if kind == "csv" else read_parquet(path, label_column)
        if label_optional and label_column not in table.column_names:
            label_column = None
        elif label_optional and (blank := table.column(label_column).null_count):
            # New rows exported with the label column left blank: no labels, and not a feature.
            # Blank in some rows only, the labels there are not enough for anything.
            if blank < table.num_rows:
                warnings.warn(
                    f"Label column {label_column!r} of {path.name} is blank in {blank} of "
                    f"{table.num_rows} rows, so the rows are read without labels; fill those "
                    "rows where labels are needed.",
                    UserWarning,
                    stacklevel=user_stacklevel(),
                )
            table, label_column = table.drop_columns([label_column]), None
        return table_dataset(table, path.name, label_column)
    _refuse_label_column(label_column, path)
    if kind == "npy":
        return load_npy(path)
    if kind == "npz":
        return load_npz(path)
    return load_idx_file(path)


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
