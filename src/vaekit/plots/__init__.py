"""Figures: pure functions that take arrays and return a :class:`matplotlib.figure.Figure`.

Nothing here touches ``matplotlib.pyplot``: figures are built with ``Figure(...)`` directly, so
there is no global figure registry to leak into, no display is needed, and a figure is freed as
soon as the caller drops it (no ``plt.close`` required). :func:`figure_to_png` turns one into PNG
bytes for the report.

User-supplied text (titles, class names, feature names) is shown literally: a ``$`` is escaped so
that a name like ``"$price"`` is never parsed as mathtext.
"""

from ._common import MAX_CATEGORIES, PNG_SIGNATURE, figure_to_png
from .images import feature_reconstruction, image_grid, reconstruction_grid
from .latent import EMBED_METHODS, embed_2d, latent_scatter
from .training import kl_per_dimension, loss_curves, sweep_figure

__all__ = [
    "EMBED_METHODS",
    "MAX_CATEGORIES",
    "PNG_SIGNATURE",
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
