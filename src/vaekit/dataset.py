"""The :class:`Dataset` record every loader returns, and the conversions they share: the
scaling rule (uint8 images / 255), label encoding, and one-line messages.

One scaling rule everywhere: uint8 arrays with 3 or more dimensions are images and are divided by
255 into [0, 1]; other images are cast to float32 unchanged, tables ``(n, d)`` to float64 unless
they are float32 already (a column at 1.7e9 ± 10, a timestamp, is constant in float32).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from vaekit.errors import DataError


@dataclass(frozen=True, eq=False)  # eq=False: field-wise == on arrays is ambiguous
class Dataset:
    """Samples plus optional labels.

    Attributes
    ----------
    X : ndarray of float32 or float64
        Tabular ``(n, d)``, float64 unless the source was float32; images ``(n, h, w)``
        grayscale or ``(n, c, h, w)`` colour, float32 (8-bit pixels in [0, 1]).
    y : ndarray of shape (n,) or None
        int64 class codes, float64 continuous targets, or None when unlabelled.
    name : str
        ``"digits"``, ``"mnist:train"``, or the file / folder name.
    feature_names : list of str or None
        Column names of a table, else None.
    named_columns : bool
        Whether ``feature_names`` came from the file (a header row, Parquet's schema), rather
        than being made up for a CSV file without a header (``f0, f1, ...``).
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
    named_columns: bool = False


def array_dataset(
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
        X = scale_uint8(arr)
    else:
        # A float32 memory map stays one (trained on from disk); any other dtype becomes a
        # plain in-memory array, not the np.memmap subclass astype would keep. A table keeps
        # float64, in which the estimator standardizes it, as fit on the array in Python does.
        dtype = np.float64 if arr.ndim == 2 else np.float32
        with np.errstate(over="ignore"):  # values beyond float32 become inf; the estimator says so
            X = arr if arr.dtype == np.float32 else np.array(arr, dtype=dtype)
    image_shape = tuple(int(s) for s in X.shape[1:]) if X.ndim >= 3 else None
    return Dataset(X, y, name, image_shape=image_shape, classes=classes)


def scale_uint8(images: np.ndarray) -> np.ndarray:
    """uint8 pixels -> float32 in [0, 1], divided in float32 so 255 maps to exactly 1.0."""
    return np.divide(images, np.float32(255.0), dtype=np.float32)


def encode_labels(values: np.ndarray, source: str) -> tuple[np.ndarray, list[str] | None]:
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


# Whole-number labels with more distinct values than MAX_CLASSES are still classes when each
# labels this many rows on average (CIFAR-100's codes: 600), which a count, price or age target
# rarely does (398 values over 1,200 rows: 3 each).
MAX_CLASSES = 50
ROWS_PER_CLASS = 20


def looks_like_classes(y: np.ndarray, *, max_classes: int = MAX_CLASSES) -> bool:
    """Whether labels are classes (True) or a quantity (False), from their values alone.

    Booleans and text are classes. Whole numbers, integers or floats alike, are classes when
    there are at most ``max_classes`` distinct values or ``ROWS_PER_CLASS`` rows per value on
    average; a fractional value means a quantity. The commands take ``--task`` where this
    guess is wrong.
    """
    y = np.asarray(y)
    if y.dtype.kind in "bOUS":
        return True
    if y.dtype.kind not in "iuf":
        return False
    if y.dtype.kind == "f":
        y = y[np.isfinite(y)]
        if not np.all(y == np.round(y)):
            return False
    distinct = np.unique(y).size
    return distinct <= max_classes or y.size >= ROWS_PER_CLASS * distinct


def first_line(exc: BaseException) -> str:
    """The first sentence of a library's message, to quote inside one of ours."""
    line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return re.split(r"(?<=[.!?])\s+(?=[A-Z])", line)[0].rstrip(".")


def quote_names(names: list[str], limit: int = 20) -> str:
    """``'a', 'b', ...`` for a message: the first ``limit`` names, then how many more."""
    shown = ", ".join(repr(n) for n in names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")
