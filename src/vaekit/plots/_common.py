"""What every figure shares: literal text, the axis style, input checks, PNG bytes."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from ..errors import ConfigError, DataError

MAX_CATEGORIES = 20  # beyond this, categorical colours stop being distinguishable
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
COLORS = {"train": "#1f77b4", "val": "#ff7f0e", "beta": "#555555", "lr": "#2ca02c"}


def plain(text: Any) -> str:
    """``text`` as a literal matplotlib string: ``$`` would otherwise start mathtext."""
    return str(text).replace("$", r"\$")


def style(ax: Axes) -> None:
    ax.grid(alpha=0.3, linewidth=0.6)
    ax.spines[["top", "right"]].set_visible(False)


def finite_2d(X: Any, name: str) -> np.ndarray:
    arr = np.asarray(X, dtype=float)
    if arr.ndim != 2:
        raise DataError(f"{name} must be a 2-D array (n_samples, n_dims); got shape {arr.shape}.")
    if arr.shape[0] == 0:
        raise DataError(f"{name} is empty; pass at least one sample.")
    if not np.all(np.isfinite(arr)):
        raise DataError(f"{name} contains NaN or infinite values; remove or impute them first.")
    return arr


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
