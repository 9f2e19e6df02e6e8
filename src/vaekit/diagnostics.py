"""What ``fit`` measures on held-out rows once training is over.

The anomaly threshold (``offset_``), the active latent units (``active_units_``) and the
posterior-collapse warning. Pure functions of arrays; the estimators call them at the end of
``fit`` and turn the messages they return into warnings.
"""

from __future__ import annotations

import numpy as np

from .rows import take_rows

DEFAULT_CONTAMINATION = 0.05  # contamination="auto": the least typical 5% of held-out rows
ACTIVE_UNIT_THRESHOLD = 0.01  # Burda et al. 2016: unit u is active if Cov_x(E_q[z_u | x]) > 0.01
COLLAPSE_FRACTION = 0.1  # posterior collapse: fewer than max(1, 10% of k) units active
# The diagnostics use at most this many held-out rows, evenly spaced: 100 rows beyond a 5%
# quantile and a variance good to ~3%, for a fraction of an epoch (each row is scored with 8
# decoder passes).
DIAGNOSTIC_ROWS = 2_000
# Fewer held-out rows than this beyond the contamination quantile, and the threshold is little
# better than their minimum (measured with contamination 0.05: 10 rows gave 3-16% of new inliers
# flagged over 4 seeds, 100 rows 4-10%).
THRESHOLD_MIN_TAIL = 5


def diagnostic_rows(
    X: np.ndarray, train_idx: np.ndarray, val_idx: np.ndarray
) -> tuple[np.ndarray, str]:
    """The rows the diagnostics are measured on, and what they are.

    The validation split (the training split when there is none), at most
    ``DIAGNOSTIC_ROWS`` of it, evenly spaced. Held out, because a model scores the rows it was
    trained on higher than new rows from the same data, which would flag more than
    ``contamination`` of new data.

    Parameters
    ----------
    X : ndarray of shape (n, ...)
        The validated training data (a memory map is read only at the chosen rows).
    train_idx, val_idx : ndarray of int
        The fit's split.

    Returns
    -------
    rows : ndarray of shape (m, ...), m <= DIAGNOSTIC_ROWS
    where : str
        "the validation split" or "the training data", for messages.
    """
    idx, where = (val_idx, "the validation split") if len(val_idx) else (train_idx, "")
    idx = idx[:: -(-len(idx) // DIAGNOSTIC_ROWS)]  # every m-th row, m = ceil(n / max)
    return take_rows(X, idx), where or "the training data"


def anomaly_offset(scores: np.ndarray, contamination: float | str) -> float:
    """The threshold on held-out scores below which a row is an outlier.

    Parameters
    ----------
    scores : ndarray of shape (m,)
        ``score_samples`` of the held-out rows (higher is more typical).
    contamination : "auto" or float
        The share of rows to fall below the threshold ("auto": ``DEFAULT_CONTAMINATION``).

    Returns
    -------
    float
        The ``contamination`` quantile of ``scores``.
    """
    return float(np.quantile(scores, _fraction(contamination)))


def offset_warning(n_rows: int, contamination: float | str, *, command: bool = False) -> str | None:
    """Why a threshold from ``n_rows`` held-out scores is unreliable, or None when it is not:
    too few of them lie beyond the ``contamination`` quantile. Said when the threshold is used
    (``predict``, ``decision_function``, ``vaekit detect`` when ``command``), not at every fit
    of a model that may never be."""
    fraction = _fraction(contamination)
    if n_rows * fraction >= THRESHOLD_MIN_TAIL:
        return None
    who, remedy = (
        ("vaekit detect", "train on more rows, or pass --contamination to flag that share of "
         "DATA's own scores")
        if command
        else ("predict", "fit on more rows, or threshold score_samples yourself")
    )  # fmt: skip
    return (
        f"The anomaly threshold (offset_) is the {percent(fraction)} quantile of only {n_rows} "
        f"held-out score{'' if n_rows == 1 else 's'}, so the share of new rows that {who} "
        f"flags may be far from {percent(fraction)}; {remedy}."
    )


def percent(fraction: float) -> str:
    """0.025 -> "2.5%", 0.05 -> "5%" (``:.0%`` would print 2.5% as "2%")."""
    return f"{100 * fraction:.3g}%"


def _fraction(contamination: float | str) -> float:
    return DEFAULT_CONTAMINATION if contamination == "auto" else float(contamination)


def active_mask(mu: np.ndarray, threshold: float = ACTIVE_UNIT_THRESHOLD) -> np.ndarray:
    """Which latent units are active: their encoder mean varies over the rows by more than
    ``threshold`` (Burda et al. 2016, sec. 5.2).

    Parameters
    ----------
    mu : ndarray of shape (m, latent_dim)
        μ(x) of held-out rows.

    Returns
    -------
    ndarray of shape (latent_dim,), bool
    """
    return mu.var(axis=0, dtype=np.float64) > threshold


def collapse_message(
    n_active: int,
    latent_dim: int,
    where: str,
    threshold: float = ACTIVE_UNIT_THRESHOLD,
    n_rows: int | None = None,
) -> str | None:
    """The posterior-collapse warning for ``n_active`` active units out of ``latent_dim``, or None.

    The rule: collapse when fewer than ``max(1, COLLAPSE_FRACTION * latent_dim)`` units are
    active, i.e. no active unit at all up to k = 10, fewer than a tenth of them beyond. It flags
    a code that carries (almost) no information, not a VAE that switches off the units it does
    not need, which is what a VAE with a generous k normally does (measured, β = 1: digits in
    [0, 1] use 4 units of k = 8 or 16 and 6-13 of k = 32; MNIST 14-18 of 32), while β = 8 on
    digits leaves 0 of 8 (see tests/test_generative.py and the README). Never from
    ``n_rows`` < 2 rows: the variance of μ over one row is 0 whatever the model learned.
    """
    if n_rows is not None and n_rows < 2:
        return None
    if n_active >= max(1.0, COLLAPSE_FRACTION * latent_dim):
        return None
    return (
        f"Posterior collapse: {n_active} of {latent_dim} latent units are active on {where} "
        f"(variance of μ(x) over the rows > {threshold:g}), so the code says almost "
        "nothing about x; lower beta, use a KL warm-up (kl_warmup_epochs) or free_bits, or "
        "train longer."
    )
