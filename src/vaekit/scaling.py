"""Feature moments and value ranges of training data, read block by block.

The estimators standardize Gaussian data with these moments and choose the likelihood from the
value range. Every function reads its input in row chunks, so a memory-mapped array larger than
memory is never copied whole.
"""

from __future__ import annotations

import numpy as np

from .rows import iter_chunks


def column_moments(X: np.ndarray, chunk_rows: int = 16384) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature mean and standard deviation in float64, two passes over row chunks.

    Chunked so that a memory-mapped X larger than memory is never copied whole (``X.std``
    would allocate an (n, ...) float64 temporary).

    Parameters
    ----------
    X : ndarray of shape (n, ...)
    chunk_rows : int, default=16384

    Returns
    -------
    mean, std : ndarray of shape X.shape[1:], float64 each
    """
    n = X.shape[0]
    total = np.zeros(X.shape[1:], np.float64)
    for chunk in iter_chunks(X, chunk_rows):
        total += chunk.sum(axis=0, dtype=np.float64)
    mean = total / n
    squares = np.zeros(X.shape[1:], np.float64)
    for chunk in iter_chunks(X, chunk_rows):
        squares += np.square(chunk - mean).sum(axis=0)
    return mean, np.sqrt(squares / n)


def per_channel(
    mean: np.ndarray, std: np.ndarray, image_shape: tuple[int, ...]
) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel moments (*input_shape) -> each channel's moments, repeated over its pixels.

    Every pixel has the same number of rows, so a channel's variance is the mean over its
    pixels of the pixel variance plus the squared distance of the pixel mean to the channel's.

    Parameters
    ----------
    mean, std : ndarray, one value per pixel
    image_shape : tuple of int
        (c, h, w) of one image.

    Returns
    -------
    mean, std : ndarray of the shape of ``mean``
    """
    c = image_shape[0]
    pixel_mean, pixel_var = mean.reshape(c, -1), np.square(std).reshape(c, -1)
    channel_mean = pixel_mean.mean(1, keepdims=True)
    channel_var = (pixel_var + np.square(pixel_mean - channel_mean)).mean(1, keepdims=True)
    repeat = np.ones_like(pixel_mean)
    return (
        (channel_mean * repeat).reshape(mean.shape),
        (np.sqrt(channel_var) * repeat).reshape(mean.shape),
    )


def unit_scale_for_constants(mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """``std`` with 1 for the features that do not vary, so they become exactly 0, not NaN.

    Relative to the mean only: a feature measured in units of 1e-9 still varies, and so does a
    timestamp column (1.7e9 ± 10, std 6e-9 of its mean), while the float64 rounding of the
    moments on a large constant (std ~1e-15 of it) does not.
    """
    std = std.copy()
    std[(std == 0) | (std < 1e-12 * np.abs(mean))] = 1.0
    return std


def value_range(X: np.ndarray) -> tuple[float, float]:
    """Smallest and largest value of X, block by block (a memory map is never read whole)."""
    lo, hi = np.inf, -np.inf
    for chunk in iter_chunks(X):
        lo, hi = min(lo, float(chunk.min())), max(hi, float(chunk.max()))
    return lo, hi


# How far outside [0, 1] a value may be and still count as in it: rounding, not data.
# scikit-learn's MinMaxScaler computes X * scale_ + min_, which can give 1.0000000000000002
# on its own training data; in float32 one step above 1 is 1.2e-7.
UNIT_INTERVAL_SLACK = 1e-6


def in_unit_interval(lo: float, hi: float) -> bool:
    """Whether values ranging over [lo, hi] lie in [0, 1], up to ``UNIT_INTERVAL_SLACK``."""
    return lo >= -UNIT_INTERVAL_SLACK and hi <= 1.0 + UNIT_INTERVAL_SLACK


def outside_unit_interval(X: np.ndarray) -> np.ndarray:
    """Boolean mask, of X's shape, of the values outside [0, 1] beyond ``UNIT_INTERVAL_SLACK``."""
    return (X < -UNIT_INTERVAL_SLACK) | (X > 1.0 + UNIT_INTERVAL_SLACK)


def rows_outside_unit_interval(X: np.ndarray) -> np.ndarray:
    """Boolean mask (n,) of the rows of X with a value outside [0, 1], block by block."""
    masks = [
        outside_unit_interval(chunk).reshape(len(chunk), -1).any(1) for chunk in iter_chunks(X)
    ]
    return np.concatenate(masks) if masks else np.zeros(0, dtype=bool)


def every_row_outside_unit_interval(X: np.ndarray) -> bool:
    """Whether every row of X, two or more, has a value outside [0, 1]: data not scaled as a
    Bernoulli model's training data was. Blocks of 1,024 rows, stopping at the first block with
    a row inside [0, 1], so scaled data costs one block (and a memory map stays on disk)."""
    if len(X) < 2:
        return False
    return all(rows_outside_unit_interval(block).all() for block in iter_chunks(X, 1024))


def reaches_8_bit_range(hi: float) -> bool:
    """Whether a maximum of ``hi`` looks like 8-bit pixels (above 127, at most 255): where
    "divide by 255" is the advice; a mask of small integers or a table of values up to 2 is not."""
    return 127 < hi <= 255


def looks_like_8_bit_images(X: np.ndarray, lo: float, hi: float) -> bool:
    """Images (n, h, w) or (n, c, h, w) of whole numbers in [0, 255] reaching above 127 (a
    mask or label map of small integers is not 8-bit pixels). Whole numbers are checked on the
    first block only: enough to tell, and a large memory map is not read twice."""
    if X.ndim < 3 or lo < 0 or not reaches_8_bit_range(hi):
        return False
    first = next(iter_chunks(X))
    return bool(np.array_equal(first, np.round(first)))
