"""Training rows that stay on disk: a memory-mapped array read one batch at a time.

:func:`vaekit.training.train` takes its data as something it can index with a tensor of row
positions (a batch) or a slice (evaluation) and that has ``shape`` and ``device``. A tensor is
the fast case. :class:`MappedRows` is the out-of-core case: the rows live in an ``np.memmap``
(``vaekit.datasets`` opens every .npy that way), and each batch is gathered, scaled and copied
to the device when it is asked for, so memory holds a batch, never the data set.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import torch

from .datasets import release_pages

# Drop the mapped pages from resident memory after this many rows have been gathered (they stay
# in the page cache, so the next epoch does not go back to the disk). Counted in rows, not bytes:
# a page fault maps up to 64 KiB around the row read (Linux fault-around), so randomly gathered
# rows can map ~20x their size. 2048 rows keep that under ~128 MiB whatever the file size; a
# release costs ~0.7 ms and the re-faulting after it a few ms per 1024-row batch.
_RELEASE_ROWS = 2048


def memory_map_of(X: np.ndarray) -> np.memmap | None:
    """The ``np.memmap`` that ``X`` is or views (validation may have wrapped it), else None."""
    while isinstance(X, np.ndarray):
        if isinstance(X, np.memmap):
            return X
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


class MappedRows:
    """The rows ``indices`` of a memory-mapped ``X``, served as model-input tensors per batch.

    Parameters
    ----------
    X : np.memmap of shape (n, ...), or an array viewing one
        The whole data set, on disk.
    indices : ndarray of int, shape (m,)
        The rows that belong here (e.g. the training split), in ascending order.
    to_model_input : callable
        ``(b, ...) float32 rows -> (b, *module_input_shape) float32``: scaling and reshaping.
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
        sample = to_model_input(np.asarray(X[:1], dtype=np.float32))
        self.shape = (len(indices), *sample.shape[1:])
        self._rows_since_release = 0

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, key: slice | torch.Tensor) -> torch.Tensor:
        positions = key.cpu().numpy() if isinstance(key, torch.Tensor) else key
        # Ascending row numbers read the file front to back; the order of the rows inside a
        # batch does not matter to a mini-batch gradient.
        rows = np.sort(self.indices[positions])
        batch = self.to_model_input(np.asarray(self.X[rows], dtype=np.float32))
        self._rows_since_release += len(rows)
        if self._rows_since_release >= _RELEASE_ROWS:
            release_pages(self.mapping)
            self._rows_since_release = 0
        return torch.from_numpy(batch).to(self.device)
