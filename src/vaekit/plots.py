"""Figures: pure functions that take arrays and return a :class:`matplotlib.figure.Figure`.

Nothing here touches ``matplotlib.pyplot``: figures are built with ``Figure(...)`` directly, so
there is no global figure registry to leak into, no display is needed, and a figure is freed as
soon as the caller drops it (no ``plt.close`` required). :func:`figure_to_png` turns one into PNG
bytes for the report.

User-supplied text (titles, class names, feature names) is shown literally: a ``$`` is escaped so
that a name like ``"$price"`` is never parsed as mathtext.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator

from .errors import ConfigError, DataError

__all__ = [
    "embed_2d",
    "feature_reconstruction",
    "figure_to_png",
    "image_grid",
    "kl_per_dimension",
    "latent_scatter",
    "loss_curves",
    "reconstruction_grid",
    "sweep_figure",
]

EMBED_METHODS = ("direct", "tsne", "umap")
MAX_CATEGORIES = 20  # beyond this, categorical colours stop being distinguishable
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_COLORS = {"train": "#1f77b4", "val": "#ff7f0e", "beta": "#555555", "lr": "#2ca02c"}


def _plain(text: Any) -> str:
    """``text`` as a literal matplotlib string: ``$`` would otherwise start mathtext."""
    return str(text).replace("$", r"\$")


def _style(ax: Axes) -> None:
    ax.grid(alpha=0.3, linewidth=0.6)
    ax.spines[["top", "right"]].set_visible(False)


def _finite_2d(X: Any, name: str) -> np.ndarray:
    arr = np.asarray(X, dtype=float)
    if arr.ndim != 2:
        raise DataError(f"{name} must be a 2-D array (n_samples, n_dims); got shape {arr.shape}.")
    if arr.shape[0] == 0:
        raise DataError(f"{name} is empty; pass at least one sample.")
    if not np.all(np.isfinite(arr)):
        raise DataError(f"{name} contains NaN or infinite values; remove or impute them first.")
    return arr


# --------------------------------------------------------------------------------------------
# 2-D embeddings
# --------------------------------------------------------------------------------------------


def embed_2d(
    Z: Any,
    method: str = "direct",
    *,
    random_state: int = 0,
    max_points: int = 5000,
    n_jobs: int | None = 1,
) -> tuple[np.ndarray, np.ndarray]:
    """Project latent codes to 2-D for a scatter plot.

    Parameters
    ----------
    Z : array-like, shape (n, d)
        Latent codes, typically μ(x).
    method : {"direct", "tsne", "umap"}
        ``"direct"`` plots the two latent coordinates themselves and requires ``d == 2``: picking
        two of many dimensions would present an arbitrary slice as "the" latent space, so for
        ``d != 2`` it raises :class:`~vaekit.errors.ConfigError` and asks for t-SNE or UMAP.
        ``"tsne"`` uses scikit-learn's :class:`~sklearn.manifold.TSNE` (PCA initialisation);
        ``"umap"`` uses umap-learn (imported only when asked: it is slow to import, and numba
        compiles it on first use, which takes tens of seconds).
    random_state : int
        Seeds the subsample and the embedding, so two calls agree.
    max_points : int
        At most this many rows are embedded (a seeded uniform subsample, in original order):
        t-SNE and UMAP scale super-linearly and a scatter of more points is unreadable anyway.
    n_jobs : int or None
        OpenMP threads for t-SNE's gradient (None: all cores). The default, 1, is deliberate: on
        busy shared cores OpenMP's spin-waiting makes more threads far slower (measured on a
        loaded 2-core machine: 2,000 points in 20 s with 1 thread, 41 s with 2; 30 points in
        0.2 s vs 27 s). UMAP always runs on one thread, which a fixed ``random_state`` requires.

    Returns
    -------
    embedding : ndarray, shape (m, 2)
        With ``m = min(n, max_points)``.
    indices : ndarray of int, shape (m,)
        Rows of ``Z`` that were embedded, increasing; use them to select matching labels.
    """
    if method not in EMBED_METHODS:
        raise ConfigError(f"Unknown embedding method {method!r}; use one of {EMBED_METHODS}.")
    if not isinstance(max_points, int | np.integer) or max_points < 3:
        raise ConfigError(f"max_points must be an integer >= 3; got {max_points!r}.")
    if n_jobs is not None and (not isinstance(n_jobs, int | np.integer) or n_jobs < 1):
        raise ConfigError(f"n_jobs must be a positive integer or None; got {n_jobs!r}.")
    Z = _finite_2d(Z, "Z")
    n, d = Z.shape
    if method == "direct" and d != 2:
        raise ConfigError(
            f"method='direct' needs a 2-D latent space but Z has {d} dimensions; use "
            "method='tsne' or method='umap'."
        )
    if n > max_points:
        rng = np.random.default_rng(random_state)
        indices = np.sort(rng.choice(n, size=max_points, replace=False))
    else:
        indices = np.arange(n)
    Zs = Z[indices]
    if method == "direct":
        return Zs.copy(), indices
    m = Zs.shape[0]
    if m < 3:
        raise DataError(f"{method} needs at least 3 samples to embed; got {m}.")
    if method == "tsne":
        return _tsne(Zs, random_state, n_jobs), indices
    return _umap(Zs, random_state), indices


def _tsne(Z: np.ndarray, random_state: int, n_jobs: int | None) -> np.ndarray:
    from sklearn.manifold import TSNE
    from threadpoolctl import threadpool_limits

    # Perplexity must stay well below the number of points (3·perplexity < n − 1).
    perplexity = float(min(30.0, max(1.0, (Z.shape[0] - 1) / 3)))
    # PCA initialisation (the stable default) needs two components with some spread: a 1-D
    # latent has one, and identical codes (a collapsed encoder) none, where sklearn's PCA init
    # divides by zero and the process can crash; random initialisation handles both.
    spread = np.ptp(Z, axis=0).max() if Z.size else 0.0
    tsne = TSNE(
        n_components=2,
        perplexity=perplexity,
        init="pca" if Z.shape[1] >= 2 and spread > 0 else "random",
        learning_rate="auto",
        random_state=random_state,
    )
    with threadpool_limits(limits=n_jobs, user_api="openmp"):
        return tsne.fit_transform(Z).astype(float)


def _umap(Z: np.ndarray, random_state: int) -> np.ndarray:
    import umap  # lazy: importing umap-learn pulls in numba (seconds)

    reducer = umap.UMAP(
        n_components=2,
        n_neighbors=int(min(15, Z.shape[0] - 1)),
        # UMAP's spectral initialisation needs more points than components + 1.
        init="spectral" if Z.shape[0] > 3 else "random",
        random_state=random_state,
        n_jobs=1,  # a fixed random_state forces one thread anyway; saying so avoids a warning
    )
    return np.asarray(reducer.fit_transform(Z), dtype=float)


# --------------------------------------------------------------------------------------------
# Latent scatter
# --------------------------------------------------------------------------------------------


def _class_name(value: Any, class_names: Mapping | Sequence | None) -> str:
    if class_names is None:
        return str(value)
    if isinstance(class_names, Mapping):
        if value in class_names:
            return str(class_names[value])
        return str(class_names.get(str(value), value))
    if isinstance(value, int | np.integer) or (isinstance(value, float) and value.is_integer()):
        i = int(value)
        if 0 <= i < len(class_names):
            return str(class_names[i])
    return str(value)


def _is_categorical(labels: np.ndarray) -> bool:
    if labels.dtype.kind in "bUSO":
        return True
    if labels.dtype.kind in "iu":
        return np.unique(labels).size <= MAX_CATEGORIES
    if labels.dtype.kind == "f":
        finite = labels[np.isfinite(labels)]
        return (
            finite.size == labels.size
            and bool(np.all(finite == np.round(finite)))
            and np.unique(finite).size <= MAX_CATEGORIES
        )
    return False


def latent_scatter(
    Z2: Any,
    labels: Any = None,
    *,
    title: str = "Latent space",
    class_names: Mapping | Sequence | None = None,
    axis_labels: tuple[str, str] = ("dimension 1", "dimension 2"),
) -> Figure:
    """Scatter plot of 2-D codes, coloured by label.

    Parameters
    ----------
    Z2 : array-like, shape (n, 2)
        2-D coordinates, e.g. from :func:`embed_2d`.
    labels : array-like, shape (n,), optional
        Class labels (integers, strings, booleans; or integer-valued floats) get one categorical
        colour each and a legend when there are at most 20 classes. Continuous values, and more
        than 20 classes, get a colour map and a colorbar.
    title : str
        Figure title.
    class_names : sequence or mapping, optional
        Display names: ``class_names[label]`` for integer labels, or a ``{label: name}`` mapping.
    axis_labels : (str, str)
        Axis labels, e.g. ``("t-SNE 1", "t-SNE 2")``.

    Returns
    -------
    Figure
        One axes (plus a colorbar axes for continuous labels); one collection per class.
    """
    Z2 = _finite_2d(Z2, "Z2")
    if Z2.shape[1] != 2:
        raise DataError(f"Z2 must have 2 columns; got {Z2.shape[1]}. Use embed_2d first.")
    n = Z2.shape[0]
    size = float(np.clip(6000.0 / n, 3.0, 30.0))  # smaller markers as points get denser
    fig = Figure(figsize=(7.5, 6.0), layout="constrained")
    ax = fig.add_subplot()
    if labels is None:
        ax.scatter(Z2[:, 0], Z2[:, 1], s=size, alpha=0.7, linewidths=0, color=_COLORS["train"])
    else:
        labels = np.asarray(labels)
        if labels.dtype.kind == "O":
            labels = labels.astype(str)
        if labels.shape != (n,):
            raise DataError(f"labels must have shape ({n},) to match Z2; got {labels.shape}.")
        if _is_categorical(labels):
            classes = np.unique(labels)
            if classes.size <= MAX_CATEGORIES:
                cmap = colormaps["tab10" if classes.size <= 10 else "tab20"]
                for i, value in enumerate(classes):
                    mask = labels == value
                    ax.scatter(
                        Z2[mask, 0],
                        Z2[mask, 1],
                        s=size,
                        alpha=0.75,
                        linewidths=0,
                        color=cmap(i),
                        label=_plain(_class_name(value.item(), class_names)),
                    )
                ax.legend(
                    title="label",
                    loc="center left",
                    bbox_to_anchor=(1.01, 0.5),
                    frameon=False,
                    markerscale=max(1.0, 30.0 / size) ** 0.5,
                )
            else:
                codes = np.searchsorted(classes, labels)
                points = ax.scatter(
                    Z2[:, 0], Z2[:, 1], c=codes, s=size, alpha=0.75, linewidths=0, cmap="turbo"
                )
                fig.colorbar(points, ax=ax, label=f"class index ({classes.size} classes)")
        else:
            values = labels.astype(float)
            points = ax.scatter(
                Z2[:, 0], Z2[:, 1], c=values, s=size, alpha=0.75, linewidths=0, cmap="viridis"
            )
            fig.colorbar(points, ax=ax, label="label")
    ax.set_xlabel(_plain(axis_labels[0]))
    ax.set_ylabel(_plain(axis_labels[1]))
    ax.set_title(_plain(title))
    _style(ax)
    return fig


# --------------------------------------------------------------------------------------------
# Images and reconstructions
# --------------------------------------------------------------------------------------------


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
        axis.set_ticks(centres, [_plain(label) for label in labels])
        axis.set_tick_params(length=0)
    if title is not None:
        ax.set_title(_plain(title))
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
    fig.suptitle(_plain(title), fontsize="large", fontweight="bold")
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
    X = _finite_2d(X, "X")
    X_hat = _finite_2d(X_hat, "X_hat")
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
    ax_bar.barh(y, rmse[shown], color=_COLORS["train"])
    ax_bar.set_yticks(y, [_plain(names[j]) for j in shown])
    ax_bar.invert_yaxis()  # first feature (or worst) on top
    ax_bar.set_xlabel("RMSE (data units)")
    ax_bar.set_ylabel("feature")
    subtitle = "all features" if d <= max_features else f"worst {len(shown)} of {d} features"
    ax_bar.set_title(f"Reconstruction error ({subtitle})")
    _style(ax_bar)

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
            label=_plain(names[j]),
        )
    ax_sc.plot([lo, hi], [lo, hi], color="black", linewidth=0.8, linestyle="--", label="identity")
    ax_sc.set_xlabel("input")
    ax_sc.set_ylabel("reconstruction")
    ax_sc.set_title("Input vs reconstruction (worst features)")
    ax_sc.legend(frameon=False, fontsize="small")
    _style(ax_sc)
    fig.suptitle(_plain(title), fontsize="large", fontweight="bold")
    return fig


# --------------------------------------------------------------------------------------------
# Training curves
# --------------------------------------------------------------------------------------------


def _series(history: Sequence[Mapping[str, Any]], key: str) -> np.ndarray | None:
    """history[i][key] as floats (NaN where missing); None when no epoch has it."""
    if not any(key in rec for rec in history):
        return None
    return np.array([float(rec.get(key, np.nan)) for rec in history], dtype=float)


def loss_curves(history: Sequence[Mapping[str, Any]], *, title: str = "Training") -> Figure:
    """Per-epoch loss, reconstruction and KL (train and validation), with β and learning rate.

    Parameters
    ----------
    history : sequence of dict
        ``model.history_``: one record per epoch with ``train_loss``, ``train_recon`` and, for a
        VAE, ``train_kl`` and ``beta``; ``val_*`` when a validation split was used. Missing keys
        are skipped, so an :class:`~vaekit.Autoencoder` history (no KL) works too.
    title : str
        Figure title.

    Returns
    -------
    Figure
        Panels "loss", "reconstruction" and, when the history has KL, "KL" with β on a secondary
        axis (β is only drawn for models that have a KL term). A learning rate that changed
        during training (``lr_schedule="cosine"``, or halved after a non-finite loss) is drawn
        on a secondary axis of the loss panel.
    """
    history = list(history)
    if not history or not all(isinstance(rec, Mapping) for rec in history):
        raise DataError("history must be a non-empty list of per-epoch dicts (model.history_).")
    epochs = _series(history, "epoch")
    if epochs is None or not np.all(np.isfinite(epochs)):
        epochs = np.arange(1, len(history) + 1, dtype=float)
    panels = [("loss", "loss"), ("recon", "reconstruction (NLL)")]
    has_kl = _series(history, "train_kl") is not None or _series(history, "val_kl") is not None
    if has_kl:
        panels.append(("kl", "KL (nats)"))
    fig = Figure(figsize=(4.2 * len(panels), 3.8), layout="constrained")
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    marker = "o" if len(history) <= 30 else None
    for ax, (key, label) in zip(axes, panels, strict=True):
        for split in ("train", "val"):
            values = _series(history, f"{split}_{key}")
            if values is not None:
                ax.plot(
                    epochs, values, label=split, color=_COLORS[split], marker=marker, markersize=3
                )
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(label)
        ax.set_title(label.split(" (")[0].capitalize() if key != "kl" else "KL")
        _style(ax)
    beta = _series(history, "beta")
    handles, labels = axes[-1].get_legend_handles_labels()
    if has_kl and beta is not None:
        ax_beta = axes[-1].twinx()
        ax_beta.plot(
            epochs, beta, color=_COLORS["beta"], linestyle="--", linewidth=1.0, label=r"$\beta$"
        )
        ax_beta.set_ylabel(r"$\beta$")
        ax_beta.set_ylim(bottom=0.0, top=max(1e-9, float(np.nanmax(beta))) * 1.1)
        more_handles, more_labels = ax_beta.get_legend_handles_labels()
        handles, labels = handles + more_handles, labels + more_labels
    lr = _series(history, "lr")
    loss_handles, loss_labels = axes[0].get_legend_handles_labels()
    if lr is not None and np.nanmax(lr) > np.nanmin(lr):  # a constant rate says nothing
        ax_lr = axes[0].twinx()
        ax_lr.plot(epochs, lr, color=_COLORS["lr"], linestyle=":", linewidth=1.2, label="lr")
        ax_lr.set_ylabel("learning rate")  # at the last step of each epoch
        ax_lr.set_ylim(bottom=0.0, top=float(np.nanmax(lr)) * 1.1)
        more_handles, more_labels = ax_lr.get_legend_handles_labels()
        loss_handles, loss_labels = loss_handles + more_handles, loss_labels + more_labels
    if loss_handles:
        axes[0].legend(loss_handles, loss_labels, frameon=False)
    for ax in axes[1:-1]:
        if ax.get_legend_handles_labels()[0]:
            ax.legend(frameon=False)
    if handles:
        axes[-1].legend(handles, labels, frameon=False)
    fig.suptitle(_plain(title), fontsize="large", fontweight="bold")
    return fig


def kl_per_dimension(
    kl_per_dim: Any,
    *,
    threshold: float = 0.01,
    active: Any = None,
    sort: bool = False,
    title: str = "KL per latent dimension",
) -> Figure:
    """Bar chart of KL(q(z_j|x) || p(z_j)) per latent dimension, active units highlighted.

    Parameters
    ----------
    kl_per_dim : array-like, shape (d,)
        Mean KL per dimension in nats, e.g. ``history_[-1]["val_kl_per_dim"]``.
    threshold : float
        Without ``active``, a unit is marked active when its KL exceeds this (drawn as a line).
    active : array-like of bool, shape (d,), optional
        An explicit mask, e.g. from the covariance criterion of Burda et al. (2016),
        Cov_x(E_q[z_j]) > 0.01; it replaces the KL threshold.
    sort : bool
        Sort bars by decreasing KL (tick labels keep the original dimension indices).
    title : str
        Figure title; the number of active units is appended.

    Returns
    -------
    Figure
        One axes with one bar per dimension.
    """
    kl = np.asarray(kl_per_dim, dtype=float)
    if kl.ndim != 1 or kl.size == 0:
        raise DataError(f"kl_per_dim must be a non-empty 1-D array; got shape {kl.shape}.")
    if not np.all(np.isfinite(kl)):
        raise DataError("kl_per_dim contains NaN or infinite values.")
    if active is None:
        mask = kl > threshold
        criterion = f"KL > {threshold:g}"
    else:
        mask = np.asarray(active)
        if mask.shape != kl.shape or mask.dtype.kind != "b":
            raise DataError(f"active must be a boolean array of shape {kl.shape}.")
        criterion = "given mask"
    order = np.argsort(-kl, kind="stable") if sort else np.arange(kl.size)
    d = kl.size
    fig = Figure(figsize=(min(14.0, max(5.0, 0.28 * d + 2.0)), 4.0), layout="constrained")
    ax = fig.add_subplot()
    x = np.arange(d)
    colors = np.where(mask[order], "#2ca02c", "#b0b0b0")
    ax.bar(x, kl[order], color=colors)
    if active is None:
        ax.axhline(threshold, color="black", linestyle="--", linewidth=0.8)
    step = max(1, math.ceil(d / 40))  # at most ~40 tick labels
    ax.set_xticks(x[::step], [str(j) for j in order[::step]])
    ax.set_xlabel("latent dimension" + (" (sorted by KL)" if sort else ""))
    ax.set_ylabel("KL (nats)")
    ax.set_title(f"{_plain(title)}: {int(mask.sum())} of {d} active ({criterion})")
    handles = [Patch(color="#2ca02c", label="active"), Patch(color="#b0b0b0", label="inactive")]
    ax.legend(handles=handles, frameon=False)
    _style(ax)
    ax.grid(axis="x", visible=False)
    return fig


# --------------------------------------------------------------------------------------------
# Output
# --------------------------------------------------------------------------------------------


def figure_to_png(fig: Figure, dpi: int = 100) -> bytes:
    """Render a figure to PNG bytes (Agg, no display needed).

    Parameters
    ----------
    fig : Figure
    dpi : int
        Resolution; 100 keeps a report with a dozen figures around a megabyte.

    Returns
    -------
    bytes
        A complete PNG file, starting with the PNG signature.
    """
    if not isinstance(fig, Figure):
        raise ConfigError(f"figure_to_png expects a matplotlib Figure; got {type(fig).__name__}.")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight", facecolor="white")
    return buf.getvalue()


# --------------------------------------------------------------------------------------------
# Sweeps
# --------------------------------------------------------------------------------------------

_SWEEP_PANELS = (  # (row key, y label, panel title)
    ("test_recon_nll", "reconstruction NLL (nats)", "Reconstruction (test)"),
    ("test_kl", "KL (nats)", "KL (test)"),
    ("active_units", "active units", "Active units (test)"),
)


def sweep_figure(
    rows: Sequence[Mapping[str, Any]],
    *,
    suggested: tuple[int, float] | None = None,
    metric: str = "accuracy",
    title: str = "Sweep over latent size and β",
) -> Figure:
    """Reconstruction, KL, active units and downstream score per (latent size, β) setting.

    Parameters
    ----------
    rows : sequence of dict
        One per setting, as :func:`vaekit.sweep.sweep` returns them: ``latent_dim``, ``beta``,
        ``test_recon_nll``, ``test_kl``, ``active_units``, and optionally ``collapsed`` (bool)
        and ``downstream_score`` (None when unknown).
    suggested : (latent_dim, beta), optional
        The setting to mark with a star.
    metric : str
        What ``downstream_score`` is, for its panel's label.
    title : str
        Figure title.

    Returns
    -------
    Figure
        One panel per measure (the downstream panel only when some row has a score), β on the
        x-axis (evenly spaced, in increasing order), one line per latent size k; collapsed
        settings are crossed, and the active-units panel shows each k as a dotted line.
    """
    rows = list(rows)
    if not rows or not all(isinstance(row, Mapping) for row in rows):
        raise DataError("rows must be a non-empty list of per-setting dicts (sweep()['rows']).")
    required = ("latent_dim", "beta", *(key for key, _, _ in _SWEEP_PANELS))
    missing = sorted({key for row in rows for key in required if key not in row})
    if missing:
        raise DataError(f"Every row needs {', '.join(required)}; missing {', '.join(missing)}.")
    panels = list(_SWEEP_PANELS)
    if any(row.get("downstream_score") is not None for row in rows):
        panels.append(("downstream_score", _plain(metric), f"Downstream {_plain(metric)} (test)"))
    dims = sorted({int(row["latent_dim"]) for row in rows})
    betas = sorted({float(row["beta"]) for row in rows})
    x_of = {beta: i for i, beta in enumerate(betas)}
    cmap = colormaps["viridis"]
    colors = {k: cmap(0.85 * i / max(1, len(dims) - 1)) for i, k in enumerate(dims)}

    fig = Figure(figsize=(3.9 * len(panels), 3.8), layout="constrained")
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, (key, ylabel, heading) in zip(axes, panels, strict=True):
        for k in dims:
            mine = sorted(
                (x_of[float(r["beta"])], _value_or_nan(r.get(key)), bool(r.get("collapsed")))
                for r in rows
                if int(r["latent_dim"]) == k
            )
            xs, ys = [p[0] for p in mine], [p[1] for p in mine]
            ax.plot(xs, ys, marker="o", markersize=4, color=colors[k], label=f"k={k}")
            crossed = [(x, y) for x, y, collapsed in mine if collapsed]
            if crossed:
                ax.scatter(*zip(*crossed, strict=True), marker="x", s=70, color="crimson", zorder=3)
            if key == "active_units":
                ax.axhline(k, color=colors[k], linestyle=":", linewidth=0.8)
        if suggested is not None:
            for r in rows:
                if (int(r["latent_dim"]), float(r["beta"])) == (suggested[0], float(suggested[1])):
                    ax.scatter(
                        [x_of[float(r["beta"])]],
                        [_value_or_nan(r.get(key))],
                        marker="*",
                        s=260,
                        facecolors="none",
                        edgecolors="black",
                        linewidths=1.2,
                        zorder=4,
                    )
        ax.set_xticks(range(len(betas)), [f"{beta:g}" for beta in betas])
        ax.set_xlabel(r"$\beta$")
        ax.set_ylabel(ylabel)
        ax.set_title(heading)
        if key == "active_units":
            ax.yaxis.set_major_locator(MaxNLocator(integer=True))
            ax.set_ylim(bottom=-0.3)  # 0 active units must not hide in the axis line
        _style(ax)
    handles, labels = axes[0].get_legend_handles_labels()
    if any(row.get("collapsed") for row in rows):
        handles.append(Line2D([], [], color="crimson", marker="x", linestyle="none"))
        labels.append("posterior collapse")
    if suggested is not None:
        handles.append(
            Line2D(
                [],
                [],
                marker="*",
                markersize=12,
                linestyle="none",
                markerfacecolor="none",
                markeredgecolor="black",
            )
        )
        labels.append("suggested")
    axes[0].legend(handles, labels, frameon=False, fontsize="small")
    fig.suptitle(_plain(title), fontsize="large", fontweight="bold")
    return fig


def _value_or_nan(value: Any) -> float:
    return np.nan if value is None else float(value)
