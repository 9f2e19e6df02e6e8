"""Anomaly detection with a trained model: what ``vaekit detect`` does, as library functions.

:func:`anomaly_scores` turns a fitted VAE or autoencoder into one anomaly score per row (higher
means more anomalous); :func:`detect_run` scores a dataset with a saved model, thresholds the
scores, writes them to a CSV and, when the data has labels, says how well the scores separate
the rows of the given anomaly label(s) from the rest (AUROC, average precision).
"""

from __future__ import annotations

import csv
import io
import math
import numbers
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from scipy.special import xlogy
from sklearn.utils.validation import check_is_fitted

from .datasets import Dataset
from .diagnostics import percent
from .errors import ConfigError, DataError, user_stacklevel
from .jobs import (
    data_named,
    default_output,
    load_run_data,
    model_rows,
    refuse_overwriting_data,
    writable_dir,
)
from .persistence import atomic_write_bytes, load_model, remove_new_folders
from .vae import VAE

SCORES = ("auto", "elbo", "recon", "nll", "excess", "excess_per_ink")
# Scores defined only for a Bernoulli VAE of inputs in [0, 1].
_BERNOULLI_ONLY = ("excess", "excess_per_ink")
SCORE_MEANINGS = {
    "elbo": "negative ELBO, nats",
    "excess": "negative ELBO minus the input's own entropy sum_j H(x_j), nats",
    "excess_per_ink": "excess per unit of ink (sum of the input), nats",
    "recon": "reconstruction error -log p(x | z = μ(x)), nats",
    "nll": "negative importance-weighted log-likelihood, nats",
}


def resolve_score(model: Any, score: str, *, flag: bool = False) -> str:
    """``auto`` -> ``elbo`` for a VAE, ``recon`` for an autoencoder; check the model has it.

    Errors name the choice as a Python argument (``score='elbo'``), or with ``flag`` as the
    command-line option (``--score elbo``).
    """

    def named(value: str) -> str:
        return f"--score {value}" if flag else f"score={value!r}"

    if score not in SCORES:
        what = "--score" if flag else "score"
        raise ConfigError(f"{what} must be one of {', '.join(SCORES)}; got {score!r}.")
    is_vae = isinstance(model, VAE)
    if score == "auto":
        return "elbo" if is_vae else "recon"
    if score in ("elbo", "nll", *_BERNOULLI_ONLY) and not is_vae:
        raise ConfigError(
            f"{named(score)} needs a VAE; this model is a plain autoencoder: use {named('recon')}."
        )
    # An unfitted model has no likelihood_ yet: anomaly_scores then says it is not fitted.
    if score in _BERNOULLI_ONLY and getattr(model, "likelihood_", "bernoulli") != "bernoulli":
        raise ConfigError(
            f"{named(score)} is for inputs in [0, 1] (a Bernoulli VAE); this model's "
            f"likelihood is {model.likelihood_}: use {named('elbo')}."
        )
    return score


def anomaly_scores(
    model: Any, X: Any, score: str = "auto", *, k: int = 100, random_state: Any = None
) -> np.ndarray:
    """One anomaly score per row of X; higher means more anomalous.

    Parameters
    ----------
    model : VAE or Autoencoder
        Fitted.
    X : array-like of shape (n_samples, ...)
    score : {"auto", "elbo", "recon", "nll", "excess", "excess_per_ink"}, default="auto"
        ``elbo``: -ELBO (``-model.score_samples``; VAE). ``recon``: the reconstruction error
        -log p(x | z = μ(x)) (``model.reconstruction_error``). ``nll``: -log p(x) estimated
        with ``k`` importance samples (``-model.log_likelihood``; VAE). ``auto``: ``elbo`` for
        a VAE, ``recon`` for an autoencoder.

        For a Bernoulli VAE of inputs in [0, 1] (grey-level images): ``excess`` is -ELBO minus
        the input's own entropy ``Σ_j H(x_j)``, ``H(p) = -p log p - (1-p) log(1-p)``. The
        Bernoulli cross-entropy of a grey pixel is at least its entropy, whatever the model,
        so -ELBO charges every image a model-free floor that grows with its anti-aliased
        edges; ``excess`` is what the model pays above that floor (0 for a perfect
        reconstruction with no KL), the reconstruction term in KL form. ``excess_per_ink``
        divides it by the row's ink ``max(Σ_j x_j, 1)``, so that a small, simple digit does
        not look typical under any model just for having few pixels to explain (the
        complexity bias of likelihoods, Nalisnick et al. 2019; Serrà et al. 2020). For
        binary inputs ``excess`` equals ``elbo``. All in nats (per unit of ink).
    k : int, default=100
        Importance samples per row for ``nll``.
    random_state : int, RandomState or None
        Seeds ``nll``'s draws; None uses the fit's seed (``seed_``), so repeated calls agree.

    Returns
    -------
    ndarray of shape (n_samples,), float64
    """
    score = resolve_score(model, score)
    if score == "elbo":
        return -model.score_samples(X)
    if score in _BERNOULLI_ONLY:
        check_is_fitted(model, "module_")
        X = model._validate_X(X, reset=False)  # once: _scores is score_samples without it
        # A row outside [0, 1] scores -inf (probability 0), so its excess is +inf.
        excess = -model._scores(X) - _entropy_floor(X)
        if score == "excess":
            return excess
        ink = X.reshape(len(X), -1).sum(axis=1, dtype=np.float64)
        return excess / np.maximum(ink, 1.0)
    if score == "recon":
        return model.reconstruction_error(X)
    return -model.log_likelihood(X, k, random_state=random_state)


def detect_run(
    run: str | os.PathLike,
    data: str | os.PathLike,
    out: str | os.PathLike | None = None,
    *,
    score: str = "auto",
    contamination: float | None = None,
    anomaly_label: str | None = None,
    k: int | None = None,
    data_dir: str | os.PathLike | None = None,
    label_column: str | None = None,
    random_state: Any = None,
) -> dict[str, Any]:
    """Score ``data`` with the model in ``run``, flag anomalies and write the scores to ``out``.

    Parameters
    ----------
    run : str or PathLike
        A model directory written by ``vaekit train`` / :meth:`VAE.save`.
    data : str or PathLike
        Dataset name or file, as for training.
    out : str or PathLike, optional
        ``.csv`` file with the columns ``index`` (row of ``data``), ``score`` (higher = more
        anomalous), ``is_anomaly`` (1 / 0), ``label`` when ``data`` has labels and ``file``
        for a folder of images. Written to a temporary file and renamed, so it is never left
        half-written. Default ``anomaly_scores.csv`` in ``run``.
    score : {"auto", "elbo", "recon", "nll", "excess", "excess_per_ink"}
        See :func:`anomaly_scores`.
    contamination : float in (0, 0.5], optional
        Flag this share of ``data``'s rows, by rank: the top ``contamination · n`` scores to
        the nearest row (rows tied across that count: all or none, the nearer). Without it,
        the threshold is the one stored at fit, ``-offset_`` (the 5% least typical validation
        rows by default); it exists for the model's own ``score_samples`` only: ``elbo`` for a VAE,
        ``recon`` for an autoencoder.
    anomaly_label : str, optional
        Label (class name or code; several separated by commas) of the rows that are truly
        anomalous; then AUROC and average precision of the scores are reported.
    k : int, optional
        Importance samples per row for ``score="nll"`` (default 100); refused for the other
        scores, which would ignore it.
    data_dir, label_column
        Passed to :func:`~vaekit.datasets.load_dataset`; ``label_column`` defaults to the
        column the run was trained with, where the table has it (:func:`load_run_data`).
    random_state : int, RandomState or None
        Seeds ``nll``'s draws; None uses the fit's seed (``seed_``), so repeated calls agree.

    Returns
    -------
    dict
        ``path``, ``rows``, ``score``, ``threshold``, ``threshold_source``, ``anomalies``
        (rows flagged), ``anomaly_fraction``; with ``anomaly_label`` also ``auroc``,
        ``average_precision`` and ``true_anomalies``. A row outside a Bernoulli model's
        [0, 1] scores +inf and is always flagged.

    Raises
    ------
    DataError
        Among others, when every row of ``data`` (of more than one) lies outside a Bernoulli
        model's [0, 1]: it was not scaled as the training data was.
    """
    if contamination is not None and not (
        isinstance(contamination, numbers.Real)
        and not isinstance(contamination, bool)
        and 0 < contamination <= 0.5
    ):
        raise ConfigError(f"--contamination must be in (0, 0.5], got {contamination!r}.")
    if k is not None and (not isinstance(k, numbers.Integral) or isinstance(k, bool) or k < 1):
        raise ConfigError(f"--k must be a positive integer, got {k!r}.")
    out = default_output(run, "detect") if out is None else Path(out).expanduser()
    if out.suffix.lower() != ".csv":
        raise ConfigError(f"--out must end in .csv; got {out.name!r}.")
    refuse_overwriting_data(out, data)
    model = load_model(run)
    score = resolve_score(model, score, flag=True)
    if k is not None and score != "nll":
        raise ConfigError(
            f"--k sets the importance samples of --score nll; --score {score} "
            "does not use it: drop --k or pass --score nll."
        )
    k = 100 if k is None else k
    own = "elbo" if isinstance(model, VAE) else "recon"
    if contamination is None:
        if score != own:
            raise ConfigError(
                f"The threshold stored at fit is for --score {own}; pass --contamination to "
                f"threshold --score {score}."
            )
        if not hasattr(model, "offset_"):
            raise ConfigError(
                f"{run} was saved without an anomaly threshold (an older vaekit); pass "
                "--contamination or retrain it."
            )
    dataset = load_run_data(run, data, data_dir=data_dir, label_column=label_column)
    if dataset.X.shape[0] == 0:
        raise DataError(f"{dataset.name} has no rows to score.")
    X = model_rows(model, dataset, run)  # flattened images reshaped; columns, scale checked
    truth = None if anomaly_label is None else _true_anomalies(dataset, anomaly_label)
    created = writable_dir(out.parent if str(out.parent) else Path("."), "output folder")
    try:
        with data_named(dataset.name):
            scores = anomaly_scores(model, X, score, k=k, random_state=random_state)
        if np.isnan(scores).any():
            bad = np.flatnonzero(np.isnan(scores))
            raise DataError(
                f"{bad.size} row(s) of {dataset.name} could not be scored (NaN), first row "
                f"{bad[0]}; check them for extreme values."
            )
    except BaseException:
        remove_new_folders(created)  # no empty output folder left behind
        raise
    if contamination is None:
        message = model._offset_warning(command=True)
        if message is not None:
            warnings.warn(message, UserWarning, stacklevel=user_stacklevel())
        threshold = -float(model.offset_)
        share = "5%" if model.contamination == "auto" else percent(model.contamination)
        validated = bool(model.history_) and "val_loss" in model.history_[-1]
        rows = getattr(model, "offset_rows_", None)
        counted = "" if rows is None else f"{rows:,} rows of "
        split = "the validation split" if validated else "the training data (no validation split)"
        source = f"stored at fit (offset_): the least typical {share} of {counted}{split}"
    else:
        threshold, source = _top_share_threshold(scores, contamination, dataset.name)
    flagged = (scores > threshold) | np.isposinf(scores)  # +inf: probability 0, always flagged

    atomic_write_bytes(out, _scores_csv(scores, flagged, dataset).encode())

    result: dict[str, Any] = {
        "path": str(out),
        "model": type(model).__name__,
        "data": dataset.name,
        "rows": len(scores),
        "score": score,
        "score_meaning": SCORE_MEANINGS[score] + "; higher = more anomalous",
        "threshold": threshold,
        "threshold_source": source,
        "anomalies": int(flagged.sum()),
        "anomaly_fraction": float(flagged.mean()),
    }
    if score == "nll":
        result["k"] = k
    if truth is not None:
        from sklearn.metrics import average_precision_score, roc_auc_score

        # Both metrics depend only on the ranking; a row so extreme that its score overflowed
        # to inf (a value of 1e21 in a table, say) ranks first either way, and sklearn
        # refuses infinite scores.
        ranked = np.nan_to_num(scores, posinf=np.finfo(np.float64).max)
        result.update(
            anomaly_label=anomaly_label,
            true_anomalies=int(truth.sum()),
            auroc=float(roc_auc_score(truth, ranked)),
            average_precision=float(average_precision_score(truth, ranked)),
        )
        if result["auroc"] < 0.5:
            result["note"] = (
                f"AUROC below 0.5: the rows labelled {anomaly_label} score as more typical than "
                "the others, not less; if they are the normal class, pass the other label(s) "
                "as --anomaly-label."
            )
    return result


def _top_share_threshold(scores: np.ndarray, contamination: float, name: str) -> tuple[float, str]:
    """The threshold that flags (``score > threshold``) the top ``contamination`` share of
    ``scores`` by rank, and where it comes from, in words.

    ``count``, the share of the rows to the nearest one, is flagged unless rows tie across its
    boundary: identical rows (blank images, a stuck sensor, duplicates) score alike, and a
    threshold cannot take some of them and leave the others. Then the whole tie group is
    flagged or none of it, whichever comes nearer to ``count`` (flagged on a draw: twenty
    copies of a stuck record at 10 rows asked), never more than twice ``count``, with a
    warning. A share under half a row flags no row for its score. Rows scoring +inf (outside a
    Bernoulli model's support) are flagged whatever the threshold, which is then at most the
    highest finite score.
    """
    n = len(scores)
    count = math.floor(contamination * n + 0.5)  # the share of the rows, to the nearest one
    finite = scores[np.isfinite(scores)]
    highest_finite = float(finite.max()) if finite.size else np.finfo(np.float64).max
    source = f"the top {percent(contamination)} of DATA's scores (--contamination): {count} of {n}"
    if count == 0:
        warnings.warn(
            f"--contamination {contamination:g} of the {n} rows of {name} is under half a row, "
            "so no row is flagged for its score; pass a larger --contamination.",
            UserWarning,
            stacklevel=user_stacklevel(),
        )
        return highest_finite, source + " rows"
    if int(np.isposinf(scores).sum()) >= count:  # rows the model cannot score fill the share
        return highest_finite, source + " rows, all outside the model's support"
    capped = np.nan_to_num(scores, posinf=np.finfo(np.float64).max)
    last_asked = float(np.partition(capped, n - count)[n - count])  # the count-th highest
    above, tied = int((capped > last_asked).sum()), int((capped == last_asked).sum())
    if above + tied == count:  # no tie across the boundary: exactly the rows asked for
        return min(float(np.nextafter(last_asked, -np.inf)), highest_finite), source + " rows"
    with_ties = count - above >= above + tied - count  # the nearer side; with them on a draw
    flagged = above + tied if with_ties else above
    warnings.warn(
        f"{tied} rows of {name} tie at the score of the last of the {count} rows that "
        f"--contamination {contamination:g} asks for (duplicate rows?); a threshold takes all "
        f"of them or none, so {flagged} rows are flagged ({'with' if with_ties else 'without'} "
        "them, the nearer count).",
        UserWarning,
        stacklevel=user_stacklevel(),
    )
    threshold = float(np.nextafter(last_asked, -np.inf)) if with_ties else last_asked
    return min(threshold, highest_finite), source + f" rows asked, {flagged} flagged (ties)"


def _entropy_floor(X: np.ndarray, chunk: int = 4096) -> np.ndarray:
    """``Σ_j H(x_j)`` per row of X in [0, 1], float64: the least -log p(x | z) any Bernoulli
    decoder can reach. Chunked, so a large X is never copied whole in float64."""
    flat = X.reshape(len(X), -1)
    out = np.empty(len(flat), dtype=np.float64)
    for start in range(0, len(flat), chunk):
        # Clipped: a row outside [0, 1] has no entropy floor (its score is +inf anyway).
        p = np.clip(flat[start : start + chunk].astype(np.float64), 0.0, 1.0)
        out[start : start + chunk] = -(xlogy(p, p) + xlogy(1 - p, 1 - p)).sum(axis=1)
    return out


def _scores_csv(scores: np.ndarray, flagged: np.ndarray, dataset: Dataset) -> str:
    """``index,score,is_anomaly[,label][,file]``: labels by class name where the data has names
    (as ``vaekit embed`` writes them, and as ``--anomaly-label`` takes them), and an image
    folder's files, to find the flagged images by; quoted as needed."""
    header = ["index", "score", "is_anomaly"]
    extra: list[list[Any]] = []
    if dataset.y is not None:
        header.append("label")
        if dataset.classes is not None:
            extra.append([dataset.classes[code] for code in dataset.y])
        else:
            extra.append([_label_text(v) for v in dataset.y])
    if dataset.files is not None:
        header.append("file")
        extra.append(dataset.files)
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(header)
    for i, (score, is_anomaly, *cells) in enumerate(zip(scores, flagged, *extra, strict=True)):
        writer.writerow([i, f"{score:.10g}", int(is_anomaly), *cells])
    return text.getvalue()


def _label_text(value: Any) -> str:
    """A numeric label as the CSV shows it and ``--anomaly-label`` takes it: 1.0 -> "1"."""
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    number = float(value)
    return str(int(number)) if number.is_integer() else repr(number)


def _true_anomalies(dataset: Any, anomaly_label: str) -> np.ndarray:
    """Boolean mask of the rows whose label is one of the comma-separated ``anomaly_label``."""
    if dataset.y is None:
        raise ConfigError(
            f"{dataset.name} has no labels, so --anomaly-label cannot be used (for a table, name "
            "the label column with --label-column)."
        )
    present = np.unique(dataset.y)
    # Labels with names (image folders, text labels) are given by name, others by value. Not
    # both: with folders named "3" and "7", "1" would otherwise silently mean code 1, "7".
    if dataset.classes:
        names = {dataset.classes[int(v)]: v for v in present if 0 <= v < len(dataset.classes)}
    else:
        names = {_label_text(v): v for v in present}

    def label_of(text: str) -> Any:
        """The label ``text`` names: by name, or for numeric labels by value ("1" is 1.0)."""
        if text in names or dataset.classes:
            return names.get(text)
        try:
            value = float(text)
        except ValueError:
            return None
        return next((v for v in present if float(v) == value), None)

    # A whole name first: a class folder may be called "odd,one".
    whole = str(anomaly_label).strip()
    if whole in names:
        wanted = [whole]
    else:
        wanted = [part.strip() for part in str(anomaly_label).split(",") if part.strip()]
    chosen = [label_of(w) for w in wanted]
    if not wanted or any(v is None for v in chosen):
        shown = ", ".join(repr(name) if "," in name else name for name in list(names)[:20])
        if not wanted:
            raise ConfigError(
                f"--anomaly-label {anomaly_label!r} names no label; give one or more of "
                f"{dataset.name}'s labels ({shown})."
            )
        unknown = [repr(w) for w, v in zip(wanted, chosen, strict=True) if v is None]
        raise ConfigError(
            f"{', '.join(unknown)} (in --anomaly-label) {'is' if len(unknown) == 1 else 'are'} "
            f"not among {dataset.name}'s labels ({shown})."
        )
    truth = np.isin(dataset.y, chosen)
    if truth.all():
        raise ConfigError(
            f"Every row of {dataset.name} has the label {anomaly_label!r}; AUROC needs normal "
            "rows too."
        )
    return truth
