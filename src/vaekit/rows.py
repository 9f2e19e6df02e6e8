"""Training rows that stay on disk: a .npy file read one batch at a time.

:func:`vaekit.training.train` takes its data as something it can index with a tensor of row
positions (a batch) or a slice (evaluation) and that has ``shape`` and ``device``. A tensor is
the fast case. :class:`MappedRows` is the out-of-core case: the rows live in an ``np.memmap``
(``vaekit.datasets`` opens every .npy that way), and each batch is read, scaled and copied to
the device when it is asked for, so memory holds a batch, never the data set.

Why batches are read with ``pread`` and not through the memory map: gathering rows through a
mapping maps whole page-cache folios around each row (up to 2 MiB on current kernels), so one
batch of 1,024 scattered rows mapped ~350 MB of a 376 MB file here, and the process's resident
memory grew with the file. Positional reads copy exactly the bytes asked for. To keep the reads
few, an epoch visits the rows in random *blocks* of ``BLOCK_ROWS`` consecutive rows
(:meth:`MappedRows.shuffled_order`): a batch of 1,024 is 16 contiguous runs of the file, not
1,024 seeks. Shuffle a file that is sorted (e.g. by label) once before training on it this way.
"""

from __future__ import annotations

import math
import mmap
import os
from collections.abc import Callable, Iterator

import numpy as np
import torch

from .datasets import release_pages
from .errors import DataError

BLOCK_ROWS = 64  # consecutive rows that stay together when an epoch is shuffled


def memory_map_of(X: np.ndarray) -> np.memmap | None:
    """The ``np.memmap`` that ``X`` is or views (validation may have wrapped it), else None.

    Only a map backed by a file counts: numpy keeps the ``np.memmap`` type on an in-memory copy
    (``astype`` of a mapped float64 file), and such a copy is trained on in memory.
    """
    while isinstance(X, np.ndarray):
        if isinstance(X, np.memmap):
            return X if getattr(X, "_mmap", None) is not None else None
        X = X.base
    return None


def iter_chunks(X: np.ndarray, chunk_rows: int = 16384) -> Iterator[np.ndarray]:
    """Consecutive row blocks of ``X``; for a memory map, its pages are released after each.

    Full passes over the data (validation, min / max, moments) go through this, so that they
    never hold more than one block of a file larger than memory.
    """
    mapping = memory_map_of(X)
    for start in range(0, X.shape[0], chunk_rows):
        yield X[start : start + chunk_rows]
        release_pages(mapping)


def first_non_finite(X: np.ndarray) -> tuple[int, int, float] | None:
    """(row, feature, value) of the first NaN or infinite value of X, features counted in a
    flattened row; None when every value is finite.

    Block by block, each first summed (a finite sum has no NaN or infinity in it, and costs
    no temporary array), so a clean X is one cheap pass and a memory map stays on disk.
    """
    start = 0
    for chunk in iter_chunks(X):
        flat = chunk.reshape(len(chunk), -1)
        with np.errstate(over="ignore", invalid="ignore"):
            clean = flat.dtype.kind != "f" or np.isfinite(flat.sum())
        if not clean and not np.isfinite(flat).all():
            row, feature = (int(i) for i in np.argwhere(~np.isfinite(flat))[0])
            return start + row, feature, float(flat[row, feature])
        start += len(chunk)
    return None


def take_rows(X: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """``X[rows]`` for ascending ``rows``; from a memory-mapped X without mapping the file.

    Gathering spread-out rows through a mapping maps most of the file (see the module
    docstring); this reads them with positional reads instead when X is a plain .npy memmap.
    """
    if memory_map_of(X) is None:
        return X[rows]
    reader = _RowReader.open(X)
    if reader is None:
        batch = X[rows]
        release_pages(memory_map_of(X))
        return batch
    with reader:
        return reader.read(rows)


class _RowReader:
    """Positional reads of rows of a plain file-backed, C-contiguous ``np.memmap``."""

    def __init__(self, X: np.memmap) -> None:
        self.X = X
        self.file = open(X.filename, "rb", buffering=0)  # noqa: SIM115 (closed by close())
        self.offset, self.row_bytes = X.offset, X[0].nbytes

    @classmethod
    def open(cls, X: np.ndarray) -> _RowReader | None:
        """A reader for X, or None when X is a view (whose file offset numpy does not keep)."""
        if (
            isinstance(X, np.memmap)
            and isinstance(X.base, mmap.mmap)
            and X.flags.c_contiguous
            and X.filename is not None
            and len(X) > 0
        ):
            return cls(X)
        return None

    def __enter__(self) -> _RowReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.file.close()

    def read(self, rows: np.ndarray) -> np.ndarray:
        """``X[rows]`` (ascending) by one positional read per run of consecutive rows."""
        out = np.empty((len(rows), *self.X.shape[1:]), self.X.dtype)
        buffer = memoryview(out).cast("B")
        starts = np.flatnonzero(np.diff(rows, prepend=-2) != 1)  # first row of each run
        for first, last in zip(starts, [*starts[1:], len(rows)], strict=True):
            got = os.preadv(
                self.file.fileno(),
                [buffer[first * self.row_bytes : last * self.row_bytes]],
                self.offset + int(rows[first]) * self.row_bytes,
            )
            if got != (last - first) * self.row_bytes:
                raise DataError(
                    f"{self.X.filename} ended while reading row {rows[first]}: the file was "
                    "truncated while in use."
                )
        return out


class MappedRows:
    """The rows ``indices`` of an on-disk ``X``, served as model-input tensors per batch.

    Parameters
    ----------
    X : np.memmap of shape (n, ...), or an array viewing one
        The whole data set, on disk.
    indices : ndarray of int, shape (m,)
        The rows that belong here (e.g. the training split), in ascending order.
    to_model_input : callable
        ``(b, ...) rows as stored (float32 or float64) -> (b, *module_input_shape) float32``:
        scaling and reshaping, in float64 for float64 rows.
    device : torch.device
        Where the batches go.
    """

    def __init__(
        self,
        X: np.ndarray,
        indices: np.ndarray,
        to_model_input: Callable[[np.ndarray], np.ndarray],
        device: torch.device,
    ) -> None:
        self.X, self.indices, self.to_model_input, self.device = X, indices, to_model_input, device
        self.mapping = memory_map_of(X)
        sample = to_model_input(np.asarray(X[:1]))
        self.shape = (len(indices), *sample.shape[1:])
        self._reader = _RowReader.open(X)

    def __del__(self) -> None:
        if getattr(self, "_reader", None) is not None:
            self._reader.close()

    def __len__(self) -> int:
        return self.shape[0]

    def shuffled_order(self) -> torch.Tensor:
        """Positions 0..m-1 for one epoch: blocks of ``BLOCK_ROWS`` in random order.

        Drawn from torch's global RNG, like ``torch.randperm`` for in-memory data, so a seeded
        fit (and a resumed one) visits the same order.
        """
        m = len(self)
        blocks = torch.randperm(math.ceil(m / BLOCK_ROWS))
        order = (blocks[:, None] * BLOCK_ROWS + torch.arange(BLOCK_ROWS)).reshape(-1)
        return order[order < m]

    def __getitem__(self, key: slice | torch.Tensor) -> torch.Tensor:
        positions = key.cpu().numpy() if isinstance(key, torch.Tensor) else key
        # Ascending row numbers read the file front to back; the order of the rows inside a
        # batch does not matter to a mini-batch gradient.
        rows = np.sort(self.indices[positions])
        batch = self._reader.read(rows) if self._reader is not None else self._gather(rows)
        return torch.from_numpy(self.to_model_input(batch)).to(self.device)

    def _gather(self, rows: np.ndarray) -> np.ndarray:
        """``X[rows]`` through the mapping, whose pages are released straight after."""
        batch = np.asarray(self.X[rows])  # its own dtype: float64 is standardized in float64
        release_pages(self.mapping)
        return batch
