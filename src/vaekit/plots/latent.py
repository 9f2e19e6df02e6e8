"""The latent space in 2-D: direct, t-SNE or UMAP coordinates, and their scatter plot."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure

from ..dataset import looks_like_classes
from ..errors import ConfigError, DataError
from ._common import COLORS, MAX_CATEGORIES, finite_2d, plain, style

EMBED_METHODS = ("direct", "tsne", "umap")


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
    Z = finite_2d(Z, "Z")
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
    # Classes as the downstream scores take them (Olivetti's 40 person codes included), and
    # only where every value is finite: a NaN among floats is a quantity with a gap.
    if labels.dtype.kind == "f" and not np.isfinite(labels).all():
        return False
    return looks_like_classes(labels)


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
    Z2 = finite_2d(Z2, "Z2")
    if Z2.shape[1] != 2:
        raise DataError(f"Z2 must have 2 columns; got {Z2.shape[1]}. Use embed_2d first.")
    n = Z2.shape[0]
    size = float(np.clip(6000.0 / n, 3.0, 30.0))  # smaller markers as points get denser
    fig = Figure(figsize=(7.5, 6.0), layout="constrained")
    ax = fig.add_subplot()
    if labels is None:
        ax.scatter(Z2[:, 0], Z2[:, 1], s=size, alpha=0.7, linewidths=0, color=COLORS["train"])
    else:
        labels = np.asarray(labels)
        if labels.dtype.kind == "O":
            labels = labels.astype(str)
        if labels.shape != (n,):
            raise DataError(f"labels must have shape ({n},) to match Z2; got {labels.shape}.")
        if class_names is not None or _is_categorical(labels):
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
                        label=plain(_class_name(value.item(), class_names)),
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
    ax.set_xlabel(plain(axis_labels[0]))
    ax.set_ylabel(plain(axis_labels[1]))
    ax.set_title(plain(title))
    style(ax)
    return fig
