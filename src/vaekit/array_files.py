"""Array files -> :class:`~vaekit.dataset.Dataset`: .npy (memory-mapped when float32), .npz
and IDX (MNIST's format, raw or gzipped, with labels from a matching ``*labels-idx1*`` file)."""

from __future__ import annotations

import gzip
import math
import os
import struct
import tokenize
import warnings
import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from vaekit.errors import DataError, user_stacklevel

from .dataset import Dataset, array_dataset, encode_labels, first_line

_FEATURE_KEYS = ("X", "x", "data", "images", "arr_0")
_LABEL_KEYS = ("y", "Y", "labels", "label", "target", "targets", "arr_1")


# Third byte of an IDX magic number -> big-endian dtype (http://yann.lecun.com/exdb/mnist/).
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_IDX_MAX_DIMS = 32  # numpy refuses more; no real IDX file comes close


# What numpy raises on damaged .npy headers and data (the header is parsed as a Python literal).
_NPY_ERRORS = (ValueError, OSError, EOFError, SyntaxError, tokenize.TokenError, MemoryError)
# ... plus what zipfile / zlib raise on a damaged archive.
_NPZ_ERRORS = (
    *_NPY_ERRORS, zipfile.BadZipFile, zlib.error, NotImplementedError, RuntimeError
)  # fmt: skip


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
    view = read_idx_view(Path(path))
    return view.astype(view.dtype.newbyteorder("="))  # always a copy: the view is read-only


def read_idx_view(path: Path) -> np.ndarray:
    """Read-only big-endian view of an IDX file's data, after validation."""
    raw = _read_bytes(path)
    if raw[:2] == b"\x1f\x8b":  # gzip magic; the name alone is not trusted
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:
            raise DataError(
                f"{path.name} is not a valid gzip file ({first_line(exc)}); download or "
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


def _unreadable(path: Path, exc: OSError) -> DataError:
    return DataError(f"{path} could not be read ({exc.strerror or exc}); check it.")


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path} does not exist; check the path.") from None
    except OSError as exc:
        raise _unreadable(path, exc) from None


def _has_magic(path: Path, magic: bytes) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(len(magic)) == magic
    except OSError as exc:
        raise _unreadable(path, exc) from None


def load_npy(path: Path) -> Dataset:
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
            f"{path.name} is a corrupt .npy file ({first_line(exc)}); save it again."
        ) from None
    return array_dataset(arr, path.name)


def _npy_header(path: Path) -> tuple[tuple[int, ...], np.dtype, int]:
    """(shape, dtype, offset of the data) from a .npy header, via numpy's public readers."""
    fmt = np.lib.format
    try:
        f = open(path, "rb")  # noqa: SIM115 (closed by the with below)
    except OSError as exc:
        raise _unreadable(path, exc) from None
    try:
        with f:
            version = fmt.read_magic(f)
            read = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
            shape, _, dtype = read(f)
            return shape, dtype, f.tell()
    except _NPY_ERRORS:
        raise DataError(
            f"{path.name} is not a .npy file (bad header); save arrays with numpy.save."
        ) from None


def load_npz(path: Path) -> Dataset:
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
            f"{path.name} is a corrupt .npz file ({first_line(exc)}); save it again."
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
        arr = _npz_array(archive, feature_key, path.name, "a numeric array")
        ignored = [k for k in keys if k not in (feature_key, label_key)]
        if ignored:  # X_test beside X, say: name what was not read rather than drop it unseen
            used = feature_key + ("" if label_key is None else f" and {label_key}")
            warnings.warn(
                f"{path.name}: read {used}; ignored {', '.join(ignored)}. vaekit reads one "
                "features array and one labels array per .npz; save other splits to their own "
                "files.",
                UserWarning,
                stacklevel=user_stacklevel(),
            )
        labels = None
        if label_key is not None:  # text labels as strings: pandas' .values are objects
            labels = _npz_array(archive, label_key, path.name, "numbers or text (y.astype(str))")
    y, classes = (
        (None, None) if labels is None else encode_labels(labels, f"{path.name}[{label_key}]")
    )
    return array_dataset(arr, path.name, y, classes)


def _npz_array(archive: Any, key: str, source: str, instead: str) -> np.ndarray:
    """``archive[key]``, naming an array of Python objects (which would need unpickling)."""
    try:
        return archive[key]
    except _NPZ_ERRORS as exc:
        if isinstance(exc, ValueError) and "allow_pickle" in str(exc):
            raise DataError(
                f"{source}[{key}] holds Python objects (dtype object), which vaekit does not "
                f"unpickle for safety; save {instead} with numpy.savez."
            ) from None
        raise DataError(
            f"{source} is a corrupt .npz file ({first_line(exc)}); save it again."
        ) from None


def _first_key(keys: list[str], preferred: tuple[str, ...]) -> str | None:
    return next((k for k in preferred if k in keys), None)


def load_idx_file(path: Path) -> Dataset:
    arr = read_idx(path)
    if arr.ndim == 1:
        raise DataError(
            f"{path.name} is a 1-D IDX file ({len(arr)} labels), not samples; pass the matching "
            "images file (e.g. train-images-idx3-ubyte.gz)."
        )
    return array_dataset(arr, path.name, _idx_sibling_labels(path, len(arr)))


def _idx_sibling_labels(path: Path, n: int) -> np.ndarray | None:
    """Labels from ``*labels-idx1*`` beside ``*images-idx3*`` (MNIST naming), if present,
    gzipped or not whether or not the images are."""
    name = path.name.replace("images", "labels").replace("idx3", "idx1")
    if name == path.name:
        return None
    stem = name[:-3] if name.lower().endswith(".gz") else name
    sibling = next(
        (p for p in (path.with_name(n) for n in (name, stem, stem + ".gz")) if p.is_file()), None
    )
    if sibling is None:
        return None
    labels = read_idx(sibling)
    if labels.shape != (n,):
        raise DataError(
            f"{sibling.name} holds {labels.shape} labels for the {n} samples of {path.name}; "
            "fix or remove the labels file."
        )
    return encode_labels(labels, sibling.name)[0]
