"""Training and model selection: loss curves, KL per latent dimension, the sweep figure."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator

from ..errors import DataError
from ._common import COLORS, plain, style


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
                    epochs, values, label=split, color=COLORS[split], marker=marker, markersize=3
                )
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(label)
        ax.set_title(label.split(" (")[0].capitalize() if key != "kl" else "KL")
        style(ax)
    beta = _series(history, "beta")
    handles, labels = axes[-1].get_legend_handles_labels()
    if has_kl and beta is not None:
        ax_beta = axes[-1].twinx()
        ax_beta.plot(
            epochs, beta, color=COLORS["beta"], linestyle="--", linewidth=1.0, label=r"$\beta$"
        )
        ax_beta.set_ylabel(r"$\beta$")
        ax_beta.set_ylim(bottom=0.0, top=max(1e-9, float(np.nanmax(beta))) * 1.1)
        more_handles, more_labels = ax_beta.get_legend_handles_labels()
        handles, labels = handles + more_handles, labels + more_labels
    lr = _series(history, "lr")
    loss_handles, loss_labels = axes[0].get_legend_handles_labels()
    if lr is not None and np.nanmax(lr) > np.nanmin(lr):  # a constant rate says nothing
        ax_lr = axes[0].twinx()
        ax_lr.plot(epochs, lr, color=COLORS["lr"], linestyle=":", linewidth=1.2, label="lr")
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
    fig.suptitle(plain(title), fontsize="large", fontweight="bold")
    return fig


def kl_per_dimension(
    kl_per_dim: Any,
    *,
    threshold: float = 0.01,
    active: Any = None,
    sort: bool = False,
    title: str = "KL per latent dimension",
    criterion: str | None = None,
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
    criterion : str, optional
        What makes a unit active, for the title: with ``active``, how the mask was made
        (e.g. "Var μ > 0.01"); default "KL > threshold", or "given mask".

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
        criterion = criterion or f"KL > {threshold:g}"
    else:
        mask = np.asarray(active)
        if mask.shape != kl.shape or mask.dtype.kind != "b":
            raise DataError(f"active must be a boolean array of shape {kl.shape}.")
        criterion = criterion or "given mask"
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
    ax.set_title(f"{plain(title)}: {int(mask.sum())} of {d} active ({criterion})")
    handles = [Patch(color="#2ca02c", label="active"), Patch(color="#b0b0b0", label="inactive")]
    # Beside the axes: inside, it hid the bars of the first dimensions (and with them the
    # grey of an inactive one).
    ax.legend(handles=handles, frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    style(ax)
    ax.grid(axis="x", visible=False)
    return fig


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
        panels.append(("downstream_score", plain(metric), f"Downstream {plain(metric)} (test)"))
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
        style(ax)
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
    fig.suptitle(plain(title), fontsize="large", fontweight="bold")
    return fig


def _value_or_nan(value: Any) -> float:
    return np.nan if value is None else float(value)
