"""Walks through the latent space of a fitted model: interpolation paths and traversals.

Pure functions of a fitted :class:`~vaekit.VAE` or :class:`~vaekit.Autoencoder` and arrays;
nothing here reads or writes files (``generation_jobs`` does that for the CLI). Every decoded
output is the decoder mean in the user's data space, as :meth:`~vaekit.VAE.inverse_transform`
returns it: shape ``(..., *model.input_shape_)``, in its dtype. Prior samples are
:meth:`VAE.sample <vaekit.VAE.sample>` and reconstructions :meth:`VAE.reconstruct
<vaekit.VAE.reconstruct>`; they need no function here.
"""

from __future__ import annotations

import math
import numbers
import warnings
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
from sklearn.utils.validation import check_is_fitted

from .errors import ConfigError, DataError
from .vae import VAE
from .validation import column_difference

__all__ = [
    "INTERPOLATION_METHODS",
    "interpolate",
    "latent_path",
    "traversal_latents",
    "traversal_values",
    "traverse",
]

INTERPOLATION_METHODS = ("linear", "spherical")
# Below this angle (radians) between z0 and z1 spherical interpolation is numerically 0 / 0;
# there slerp and lerp differ by O(Ω²) relative, far below float32 resolution.
_MIN_ANGLE = 1e-6


def _check_int(value: Any, name: str, minimum: int) -> int:
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < minimum:
        raise ConfigError(f"{name} must be an integer >= {minimum}, got {value!r}.")
    return int(value)


def _latent_vector(z: Any, name: str) -> np.ndarray:
    arr = np.asarray(z, dtype=np.float64)
    if arr.ndim != 1 or arr.size == 0:
        raise DataError(f"{name} must be one latent vector of shape (k,), got shape {arr.shape}.")
    if not np.all(np.isfinite(arr)):
        raise DataError(f"{name} contains NaN or infinite values.")
    return arr


def latent_path(z0: Any, z1: Any, steps: int = 10, method: str = "linear") -> np.ndarray:
    """Points from ``z0`` to ``z1`` in latent space, both endpoints included.

    Parameters
    ----------
    z0, z1 : array-like of shape (k,)
        Start and end latent vectors, e.g. μ(x_from) and μ(x_to).
    steps : int, default=10
        Number of points, at least 2; ``t`` runs over ``linspace(0, 1, steps)``.
    method : {"linear", "spherical"}, default="linear"
        ``linear``: (1 - t)·z0 + t·z1. ``spherical`` (slerp; Shoemake 1985, White 2016): the
        direction follows the great circle, sin((1 - t)Ω)/sin Ω·u0 + sin(tΩ)/sin Ω·u1 for
        the unit vectors u0, u1 at angle Ω, and the norm goes linearly from |z0| to |z1|. For
        ``|z0| == |z1|`` that is slerp of z0 and z1 itself, every point of that norm, whereas a
        linear path cuts through the low-norm interior where, in high dimensions, a N(0, I)
        prior has almost no mass. (Slerp of z0 and z1 of unequal norms would run as far out as
        1/sin Ω for nearly opposite codes.) When z0 and z1 are (anti)parallel or one is zero
        the great circle is undefined and the path falls back to linear.

    Returns
    -------
    ndarray of shape (steps, k), float32
        ``path[0] == z0`` and ``path[-1] == z1``.
    """
    if method not in INTERPOLATION_METHODS:
        raise ConfigError(
            f"method must be one of {', '.join(INTERPOLATION_METHODS)}; got {method!r}."
        )
    steps = _check_int(steps, "steps", 2)
    a, b = _latent_vector(z0, "z0"), _latent_vector(z1, "z1")
    if a.shape != b.shape:
        raise DataError(f"z0 and z1 must have the same shape; got {a.shape} and {b.shape}.")
    t = np.linspace(0.0, 1.0, steps)[:, None]  # (steps, 1)
    path = (1.0 - t) * a + t * b  # (steps, k)
    if method == "spherical":
        norm_a, norm_b = np.linalg.norm(a), np.linalg.norm(b)
        if norm_a > 0 and norm_b > 0:
            ua, ub = a / norm_a, b / norm_b
            # Ω = 2·atan2(|ua - ub|, |ua + ub|): accurate at every angle, unlike arccos(ua·ub)
            # near 0 and π (Kahan, "How futile are mindless assessments of roundoff", 2006).
            omega = 2.0 * np.arctan2(np.linalg.norm(ua - ub), np.linalg.norm(ua + ub))
            if _MIN_ANGLE < omega < np.pi - _MIN_ANGLE:
                direction = np.sin((1.0 - t) * omega) * ua + np.sin(t * omega) * ub
                # A unit vector analytically; normalized again against the cancellation of
                # ua and ub's large coefficients when they are nearly opposite.
                direction /= np.linalg.norm(direction, axis=1, keepdims=True)
                path = ((1.0 - t) * norm_a + t * norm_b) * direction
    path[0], path[-1] = a, b  # exact endpoints, whatever the rounding of the formula
    return path.astype(np.float32)


def _one_sample(model: Any, x: Any, name: str) -> np.ndarray:
    """``x`` as a batch of one, shape (1, *input_shape_): a sample, a batch of one, or for an
    image model a flattened image (as ``transform`` takes them); a DataFrame row or Series
    gives its values, once its names are checked against the training columns."""
    trained = getattr(model, "feature_names_in_", None)
    # A table's column names (a DataFrame, a pyarrow Table), or a Series' index (one row of a
    # DataFrame, df.iloc[i]).
    names = getattr(x, "column_names", None)  # first: a pyarrow Table's .columns are its data
    if names is None:
        names = getattr(x, "columns", None)  # any names, not only strings: 0, 1, ... differ too
    if names is None and getattr(x, "ndim", None) == 1 and not isinstance(x, np.ndarray):
        names = getattr(x, "index", None)
    if trained is not None and names is not None:
        difference = column_difference([str(n) for n in names], [str(n) for n in trained], name)
        if difference:
            raise DataError(difference)
    arr = np.asarray(x)
    shape = tuple(model.input_shape_)
    forms = [shape, (1, *shape), (arr.size,), (1, arr.size)]
    if len(shape) == 3 and shape[0] == 1:  # a single-channel image without its channel axis
        forms += [shape[1:], (1, *shape[1:])]
    if arr.size == math.prod(shape) and arr.shape in forms:
        return arr.reshape(1, *shape)
    raise DataError(
        f"{name} must be one sample of shape {shape} (or {(1, *shape)}), got shape {arr.shape}."
    )


def _codes(model: Any, rows: np.ndarray) -> np.ndarray:
    """μ of rows taken by :func:`_one_sample`. A model fitted on a DataFrame would warn that
    they have no column names: they are the user's rows, whose values we took on purpose."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="X does not have valid feature names")
        return model._mu(rows)


def interpolate(
    model: Any, x_from: Any, x_to: Any, steps: int = 10, method: str = "linear"
) -> np.ndarray:
    """Decode the latent path between μ(x_from) and μ(x_to).

    Parameters
    ----------
    model : VAE or Autoencoder
        A fitted model (for an autoencoder, μ is its code).
    x_from, x_to : array-like of shape input_shape_ (or (1, *input_shape_))
        The two samples, in the same form as the model's training rows.
    steps : int, default=10
        Points on the path, endpoints included (at least 2).
    method : {"linear", "spherical"}, default="linear"
        See :func:`latent_path`.

    Returns
    -------
    ndarray of shape (steps, *input_shape_)
        Decoder means (the dtype of ``inverse_transform``); the first and last are the
        reconstructions of ``x_from`` and ``x_to``.
    """
    check_is_fitted(model, "module_")
    pair = np.concatenate([_one_sample(model, x_from, "x_from"), _one_sample(model, x_to, "x_to")])
    mu = _codes(model, pair)  # (2, k)
    return model.inverse_transform(latent_path(mu[0], mu[1], steps, method))


def traversal_values(limit: float = 3.0, steps: int = 9) -> np.ndarray:
    """``linspace(-limit, limit, steps)``: latent values for :func:`traverse`, validated.

    Parameters
    ----------
    limit : float, default=3.0
        Positive; the values run from -limit to limit (3 prior standard deviations).
    steps : int, default=9
        Number of values, at least 2.

    Returns
    -------
    ndarray of shape (steps,), float64
    """
    if not (
        isinstance(limit, numbers.Real)
        and not isinstance(limit, bool)
        and np.isfinite(limit)
        and limit > 0
    ):
        raise ConfigError(f"limit must be a positive number, got {limit!r}.")
    return np.linspace(-float(limit), float(limit), _check_int(steps, "steps", 2))


def _resolve_dims(dims: int | Sequence[int] | None, k: int) -> list[int]:
    if dims is None:
        return list(range(k))
    if isinstance(dims, str) or not isinstance(dims, numbers.Integral | Iterable):
        raise ConfigError(f"dim must be an integer, a list of integers or None; got {dims!r}.")
    listed = [dims] if isinstance(dims, numbers.Integral) else list(dims)
    if not listed:
        raise ConfigError("Pass at least one latent dimension to traverse.")
    for d in listed:
        if not isinstance(d, numbers.Integral) or isinstance(d, bool):
            raise ConfigError(f"Latent dimensions are integers; got {d!r}.")
        if not 0 <= d < k:
            raise ConfigError(
                f"Latent dimension {d!r} is out of range: the latent space has {k} dimensions, "
                f"numbered 0 to {k - 1}."
            )
    return [int(d) for d in listed]


def traversal_latents(base: Any, dims: Sequence[int], values: Any) -> np.ndarray:
    """The latent grid of a traversal: ``base`` with one coordinate replaced at a time.

    Parameters
    ----------
    base : array-like of shape (k,)
        Where the other coordinates stay, e.g. μ(x) or zeros.
    dims : sequence of int
        The dimensions to vary, one grid row each.
    values : array-like of shape (m,)
        The values each varied coordinate takes, one grid column each.

    Returns
    -------
    ndarray of shape (len(dims), m, k), float32
        ``grid[i, j] == base`` except ``grid[i, j, dims[i]] == values[j]``.
    """
    z = _latent_vector(base, "base")
    dims = _resolve_dims(dims, z.size)
    vals = np.asarray(values, dtype=np.float64)
    if vals.ndim != 1 or vals.size == 0:
        raise ConfigError(
            f"values must be a non-empty 1-D array of finite numbers, got shape {vals.shape}."
        )
    if not np.all(np.isfinite(vals)):
        bad = vals[~np.isfinite(vals)][0]
        raise ConfigError(f"values must be finite numbers; got {bad}.")
    grid = np.broadcast_to(z, (len(dims), vals.size, z.size)).copy()
    for row, d in enumerate(dims):
        grid[row, :, d] = vals
    return grid.astype(np.float32)


def traverse(
    model: Any,
    x: Any = None,
    dim: int | Sequence[int] | None = None,
    values: Any = None,
) -> np.ndarray:
    """Decode latent traversals: vary one dimension at a time, the others held fixed.

    Parameters
    ----------
    model : VAE or Autoencoder
        A fitted model.
    x : array-like of shape input_shape_ (or (1, *input_shape_)), optional
        The other coordinates stay at μ(x). Without ``x`` they stay at 0, the prior mean; an
        autoencoder has no prior (0 is an arbitrary code), so it needs ``x``.
    dim : int, sequence of int or None, default=None
        The dimension to vary, several, or None for all ``latent_dim`` of them.
    values : array-like of shape (m,), optional
        Values the varied coordinate takes (absolute, not offsets from μ(x)); default
        ``np.linspace(-3, 3, 9)``, ±3 prior standard deviations for a VAE.

    Returns
    -------
    ndarray, the dtype of ``inverse_transform``
        Shape ``(m, *input_shape_)`` for an int ``dim``, else ``(len(dims), m, *input_shape_)``
        (``len(dims) == latent_dim`` for None): row i varies dimension ``dims[i]``.
    """
    check_is_fitted(model, "module_")
    k = model.module_.latent_dim
    if isinstance(dim, np.ndarray) and dim.ndim == 0:  # np.array(2): one dimension, as 2
        dim = dim.item()
    dims = _resolve_dims(dim, k)
    if x is None:
        if not isinstance(model, VAE):
            raise ConfigError(
                "A plain autoencoder has no prior, so z = 0 is an arbitrary centre; pass x "
                "to traverse around its code."
            )
        base = np.zeros(k, np.float32)
    else:
        base = _codes(model, _one_sample(model, x, "x"))[0]
    grid = traversal_latents(base, dims, traversal_values() if values is None else values)
    decoded = model.inverse_transform(grid.reshape(-1, k))
    decoded = decoded.reshape(*grid.shape[:2], *model.input_shape_)
    return decoded[0] if isinstance(dim, numbers.Integral) else decoded
