"""Images and reconstructions: grids of samples, inputs beside their reconstructions, and
per-feature reconstructions of tables."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from ..errors import ConfigError, DataError
from ._common import COLORS, finite_2d, plain, style


def _as_images(images: Any, image_shape: Sequence[int] | None, name: str) -> np.ndarray:
    """Images as (n, h, w) grey or (n, h, w, 3) RGB floats."""
    arr = np.asarray(images, dtype=float)
    if image_shape is not None:
        try:
            arr = arr.reshape((arr.shape[0], *tuple(image_shape)))
        except ValueError:
            raise DataError(
                f"{name} of shape {arr.shape} cannot be reshaped to images of shape "
                f"{tuple(image_shape)}."
            ) from None
    if arr.ndim == 4:
        # (n, c, h, w), vaekit's and torch's layout, whenever the second axis can hold
        # channels, even if the last could too: a (1, 12, 4) image is 12 x 4 grey, not 1 x 12
        # RGBA.
        if arr.shape[1] in (1, 3, 4):
            arr = np.moveaxis(arr, 1, -1)  # -> (n, h, w, c)
        elif arr.shape[-1] not in (1, 3, 4):
            raise DataError(
                f"{name} of shape {arr.shape} is not (n, c, h, w) or (n, h, w, c) with 1, 3 or 4 "
                "channels."
            )
        arr = arr[..., 0] if arr.shape[-1] == 1 else arr[..., :3]  # alpha is dropped
    if arr.ndim not in (3, 4):
        raise DataError(
            f"{name} must be images (n, h, w), (n, c, h, w) or (n, h, w, c); got shape "
            f"{arr.shape}. Pass image_shape for flattened images."
        )
    if arr.shape[0] == 0:
        raise DataError(f"{name} holds no images.")
    return arr


def _display_range(*arrays: np.ndarray) -> tuple[float, float]:
    """One intensity range for all images shown together, so they compare fairly."""
    finite = np.concatenate([a[np.isfinite(a)].ravel() for a in arrays])
    if finite.size == 0:
        return 0.0, 1.0
    lo, hi = float(finite.min()), float(finite.max())
    if lo >= 0.0 and hi <= 1.0:
        return 0.0, 1.0  # already in [0, 1]: do not stretch a faint image to full contrast
    return (lo, hi) if hi > lo else (lo, lo + 1.0)


def _montage(images: np.ndarray, nrows: int, lo: float, hi: float) -> np.ndarray:
    """Tile (n, h, w[, 3]) into one array with 1-pixel gaps (NaN, drawn as background)."""
    n, h, w = images.shape[:3]
    ncols = math.ceil(n / nrows)
    scaled = np.clip((images - lo) / (hi - lo), 0.0, 1.0)
    tile = np.full((nrows * (h + 1) - 1, ncols * (w + 1) - 1, *images.shape[3:]), np.nan)
    for i in range(n):
        r, c = divmod(i, ncols)
        tile[r * (h + 1) : r * (h + 1) + h, c * (w + 1) : c * (w + 1) + w] = scaled[i]
    if tile.ndim == 3:
        tile = np.where(np.isnan(tile), 1.0, tile)  # RGB: white gaps
    return tile


def _show(ax: Axes, tile: np.ndarray) -> None:
    cmap = colormaps["gray"].with_extremes(bad="white")
    ax.imshow(tile, cmap=cmap, vmin=0.0, vmax=1.0, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)


def image_grid(
    images: Any,
    *,
    nrows: int | None = None,
    title: str | None = None,
    image_shape: Sequence[int] | None = None,
    row_labels: Sequence[str] | None = None,
    col_labels: Sequence[str] | None = None,
) -> Figure:
    """A grid of images (samples, inputs, interpolation paths) in one axes.

    Parameters
    ----------
    images : array-like, shape (n, h, w), (n, c, h, w) or (n, h, w, c)
        c in {1, 3, 4} (alpha is dropped); or (n, d) with ``image_shape``. All images share one
        intensity range: [0, 1] when the values lie in it, else their joint min and max.
    nrows : int, optional
        Rows of the grid; default ``ceil(sqrt(n))``, i.e. about square.
    title : str, optional
        Figure title.
    image_shape : sequence of int, optional
        Shape of one image, to reshape flattened rows.
    row_labels : sequence of str, optional
        One label per grid row, drawn left of the row (e.g. ``"linear"``, ``"z3"``).
    col_labels : sequence of str, optional
        One label per grid column, drawn under it (e.g. the traversed latent values).

    Returns
    -------
    Figure
        One axes holding one image (the tiled grid).
    """
    imgs = _as_images(images, image_shape, "images")
    n = imgs.shape[0]
    if nrows is None:
        nrows = math.ceil(math.sqrt(n))
    if not isinstance(nrows, int | np.integer) or nrows < 1:
        raise ConfigError(f"nrows must be a positive integer; got {nrows!r}.")
    nrows = min(int(nrows), n)
    ncols = math.ceil(n / nrows)
    h, w = imgs.shape[1:3]
    lo, hi = _display_range(imgs)
    scale = min(10.0 / (ncols * w), 10.0 / (nrows * h), 1.2 / min(h, w))  # inches per pixel
    fig = Figure(
        figsize=(max(2.5, ncols * w * scale), max(2.0, nrows * h * scale + 0.5)),
        layout="constrained",
    )
    ax = fig.add_subplot()
    _show(ax, _montage(imgs, nrows, lo, hi))
    # Tick labels at the centres of the tiles (each tile is h x w plus a 1-pixel gap).
    for labels, count, size, axis, what in (
        (row_labels, nrows, h, ax.yaxis, "row"),
        (col_labels, ncols, w, ax.xaxis, "column"),
    ):
        if labels is None:
            continue
        if len(labels) != count:
            raise ConfigError(f"{len(labels)} {what} labels given for a grid of {count} {what}s.")
        centres = [i * (size + 1) + (size - 1) / 2 for i in range(count)]
        axis.set_ticks(centres, [plain(label) for label in labels])
        axis.set_tick_params(length=0)
    if title is not None:
        ax.set_title(plain(title))
    return fig


def reconstruction_grid(
    X: Any,
    X_hat: Any,
    image_shape: Sequence[int],
    *,
    n: int = 10,
    per_row: int = 10,
    title: str = "Inputs and reconstructions",
) -> Figure:
    """Inputs (top block) over their reconstructions (bottom block), same intensity range.

    Parameters
    ----------
    X : array-like, shape (N, d) or (N, *image_shape)
        Inputs.
    X_hat : array-like, same shape as ``X``
        Reconstructions, e.g. ``model.inverse_transform(model.transform(X))``.
    image_shape : sequence of int
        Shape of one image: (h, w) or (c, h, w).
    n : int
        The first ``n`` inputs are shown.
    per_row : int
        Images per row in each block.
    title : str
        Figure title.

    Returns
    -------
    Figure
        Two axes, "input" over "reconstruction", each holding one tiled image.
    """
    imgs = _as_images(X, image_shape, "X")
    recs = _as_images(X_hat, image_shape, "X_hat")
    if imgs.shape != recs.shape:
        raise DataError(f"X and X_hat must have the same shape; got {imgs.shape}, {recs.shape}.")
    if n < 1 or per_row < 1:
        raise ConfigError(f"n and per_row must be positive; got n={n}, per_row={per_row}.")
    imgs, recs = imgs[:n], recs[:n]
    k = imgs.shape[0]
    ncols = min(per_row, k)
    nrows = math.ceil(k / ncols)
    h, w = imgs.shape[1:3]
    lo, hi = _display_range(imgs, recs)
    scale = min(11.0 / (ncols * w), 1.3 / min(h, w))
    block = nrows * h * scale
    fig = Figure(figsize=(max(3.0, ncols * w * scale + 0.6), 2 * block + 0.9), layout="constrained")
    axes = fig.subplots(2, 1)
    for ax, block_imgs, label in ((axes[0], imgs, "input"), (axes[1], recs, "reconstruction")):
        _show(ax, _montage(block_imgs, nrows, lo, hi))
        ax.set_ylabel(label)
    fig.suptitle(plain(title), fontsize="large", fontweight="bold")
    return fig


def feature_reconstruction(
    X: Any,
    X_hat: Any,
    feature_names: Sequence[str] | None = None,
    *,
    max_features: int = 30,
    n_scatter: int = 4,
    title: str = "Reconstruction per feature",
) -> Figure:
    """Tabular data: per-feature reconstruction error, and input vs reconstruction scatter.

    Parameters
    ----------
    X : array-like, shape (n, d)
        Inputs.
    X_hat : array-like, shape (n, d)
        Reconstructions.
    feature_names : sequence of str, optional
        Length d; default ``x0 .. x{d-1}``.
    max_features : int
        The bar chart shows all features in column order when ``d <= max_features``, else the
        ``max_features`` worst ones, worst first.
    n_scatter : int
        The right panel scatters input against reconstruction for this many worst features,
        with the identity line for reference.
    title : str
        Figure title.

    Returns
    -------
    Figure
        Two axes: root-mean-square error per feature (in data units), and the scatter.
    """
    X = finite_2d(X, "X")
    X_hat = finite_2d(X_hat, "X_hat")
    if X.shape != X_hat.shape:
        raise DataError(f"X and X_hat must have the same shape; got {X.shape}, {X_hat.shape}.")
    d = X.shape[1]
    names = [f"x{j}" for j in range(d)] if feature_names is None else list(feature_names)
    if len(names) != d:
        raise DataError(f"feature_names has {len(names)} names for {d} features.")
    rmse = np.sqrt(np.mean((X - X_hat) ** 2, axis=0))  # (d,)
    worst = np.argsort(-rmse, kind="stable")
    shown = np.arange(d) if d <= max_features else worst[:max_features]

    fig = Figure(figsize=(12.0, max(4.0, 0.22 * len(shown) + 1.5)), layout="constrained")
    ax_bar, ax_sc = fig.subplots(1, 2, width_ratios=(1.2, 1.0))
    y = np.arange(len(shown))
    ax_bar.barh(y, rmse[shown], color=COLORS["train"])
    ax_bar.set_yticks(y, [plain(names[j]) for j in shown])
    ax_bar.invert_yaxis()  # first feature (or worst) on top
    ax_bar.set_xlabel("RMSE (data units)")
    ax_bar.set_ylabel("feature")
    subtitle = "all features" if d <= max_features else f"worst {len(shown)} of {d} features"
    ax_bar.set_title(f"Reconstruction error ({subtitle})")
    style(ax_bar)

    cmap = colormaps["tab10"]
    chosen = worst[: max(1, min(n_scatter, d))]
    lo = float(min(X[:, chosen].min(), X_hat[:, chosen].min()))
    hi = float(max(X[:, chosen].max(), X_hat[:, chosen].max()))
    for i, j in enumerate(chosen):
        ax_sc.scatter(
            X[:, j],
            X_hat[:, j],
            s=8,
            alpha=0.5,
            linewidths=0,
            color=cmap(i),
            label=plain(names[j]),
        )
    ax_sc.plot([lo, hi], [lo, hi], color="black", linewidth=0.8, linestyle="--", label="identity")
    ax_sc.set_xlabel("input")
    ax_sc.set_ylabel("reconstruction")
    ax_sc.set_title("Input vs reconstruction (worst features)")
    ax_sc.legend(frameon=False, fontsize="small")
    style(ax_sc)
    fig.suptitle(plain(title), fontsize="large", fontweight="bold")
    return fig
