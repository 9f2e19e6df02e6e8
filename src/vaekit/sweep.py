"""``vaekit sweep``: one VAE per (latent size, β) setting, measured side by side, and a suggestion.

Every setting of the ``latent_dims × betas`` grid gets a :class:`~vaekit.VAE` fit on the
training split with the same ``random_state`` (so settings differ by their setting, not by
their luck), measured on the test split:

- reconstruction E_q[-log p(x | z)] and KL(q(z | x) || N(0, I)), nats per sample, and their
  sum, the test -ELBO at β = 1: a bound on -log p(x) that compares models of any k and β
  (:func:`vaekit.evaluation.test_elbo`);
- active units, Var_x(μ_u(x)) > 0.01 on the test rows (Burda et al. 2016,
  :func:`vaekit.evaluation.active_units`), and posterior collapse by the rule of
  :meth:`VAE.fit`, with its count on the VAE's validation split: fewer than max(1, k / 10)
  units active;
- downstream accuracy of a logistic regression on μ(x), fit on the training split and scored
  on the test split (:func:`vaekit.evaluation.classification_scores`); ridge R² for a
  continuous target; skipped, with a note, without labels.

:func:`suggest` then picks a setting by :data:`SUGGESTION_RULE` and says why. The choice uses
the training split only (the downstream score's cross-validation on it, and the -ELBO and
active units on the rows each VAE holds out for early stopping), so the test columns are an
unbiased report of every setting, the suggested one included.
:func:`sweep` is the library function (arrays in, dict out); :func:`sweep_run` is the command:
it loads and splits the data, checks everything a user can get wrong before any training, and
writes ``results.json``, ``results.md``, ``results.csv``, ``figures/sweep.png`` and
``report.html``, each atomically.
"""

from __future__ import annotations

import csv
import io
import json
import math
import numbers
import os
import time
import warnings
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from .datasets import (
    Dataset,
    align_test_labels,
    check_disjoint,
    label_columns,
    load_dataset,
    refuse_non_finite,
)
from .diagnostics import collapse_message
from .errors import ConfigError, DataError, PosteriorCollapseWarning
from .persistence import atomic_write_bytes, jsonable_params
from .progress import StepProgress
from .vae import VAE
from .validation import conform_samples

__all__ = ["SUGGESTION_RULE", "parse_grid", "suggest", "sweep", "sweep_run"]

DEFAULT_LATENT_DIMS = (2, 8, 16, 32)
DEFAULT_BETAS = (0.5, 1.0, 4.0)
TEST_SIZE = 0.25  # without --test: a 75/25 split of DATA, stratified by class when labelled
TABLE_MD, TABLE_CSV = "results.md", "results.csv"
# Downstream scores closer than this count as tied: on a test split of a few hundred rows, a
# difference of half a point of accuracy is a couple of rows, well inside the noise.
TIE_TOLERANCE = 0.005
_CV = 3  # folds of the downstream grid search (classification_scores' default)
# task -> (model name in vaekit.evaluation.downstream, metric, what to call it)
_DOWNSTREAM = {
    "classification": ("logreg", "accuracy", "logistic regression"),
    "regression": ("ridge", "r2", "ridge regression"),
}
SUGGESTION_RULE = (
    "Among the settings without posterior collapse (at least max(1, k/10) latent units active "
    "on the VAE's validation split), the best downstream score by cross-validation on the "
    f"training split (accuracy; R² for a continuous target); settings within {TIE_TOLERANCE} "
    "of the best count as tied, and the lowest validation -ELBO among them wins (then the "
    "smaller k). Without labels: the lowest validation -ELBO among the settings without "
    "collapse. If every setting collapsed, the same rule over all of them. No test number "
    "enters the choice, so the test columns report the suggested setting without the "
    "optimism of picking the best of several test scores. "
    "Why: μ(x) is used as features, so the downstream score is the goal; a collapsed code "
    "carries almost nothing about x whatever it scores; and among equals the better "
    "generative model (tighter bound on -log p(x)) is the safer choice."
)
# Row fields, in table order; kl_per_dim is kept out of the rows (see sweep()'s "kl_per_dim").
ROW_FIELDS = (
    "setting",
    "latent_dim",
    "beta",
    "test_recon_nll",
    "test_kl",
    "test_neg_elbo",
    "active_units",
    "collapsed",
    "downstream_score",
    "cv_score",
    "val_neg_elbo",
    "epochs_run",
    "fit_seconds",
)


# ------------------------------------------------------------------------------- validation
def parse_grid(
    values: str | Iterable[Any], name: str, kind: type
) -> tuple[int, ...] | tuple[float, ...]:
    """A grid axis from ``"2,8,16"`` or a sequence, checked; ConfigError otherwise.

    Parameters
    ----------
    values : str or iterable
        Comma-separated text (the CLI's form) or numbers.
    name : str
        The axis as the user knows it (``"latent_dims"``, ``"--betas"``), for messages.
    kind : {int, float}
        ``int``: positive integers (latent sizes); ``float``: finite numbers >= 0 (β).

    Returns
    -------
    tuple of int or of float
        In the given order, without duplicates (a duplicate is an error).
    """
    what = "positive integers" if kind is int else "numbers >= 0"
    example = "2,8,16" if kind is int else "0.5,1,4"
    if isinstance(values, str):
        items: list[Any] = [v.strip() for v in values.split(",")]
        if items == [""]:
            items = []
    else:
        try:
            items = list(values)
        except TypeError:
            raise ConfigError(f"{name} must be a list of {what}, got {values!r}.") from None
    if not items:
        raise ConfigError(f"{name} is empty; give at least one value, e.g. {example}.")
    parsed: list[int | float] = []
    for item in items:
        value = _number(item, kind)
        if value is None:
            raise ConfigError(
                f"{name} must be comma-separated {what}, e.g. {example}; got {item!r}."
            )
        if (kind is int and value < 1) or (kind is float and value < 0):
            raise ConfigError(f"{name} must hold {what}; got {item!r}.")
        if value in parsed:
            raise ConfigError(f"{name} lists {value:g} twice; give each value once.")
        parsed.append(value)
    return tuple(parsed)  # type: ignore[return-value]


def _number(item: Any, kind: type) -> int | float | None:
    """``item`` as an int / finite float, or None when it is not one."""
    if isinstance(item, bool):
        return None
    if isinstance(item, str):
        try:
            item = int(item) if kind is int else float(item)
        except ValueError:
            return None
    if kind is int:
        return int(item) if isinstance(item, numbers.Integral) else None
    if isinstance(item, numbers.Real) and math.isfinite(item):
        return float(item)
    return None


def _estimators(
    latent_dims: Sequence[int], betas: Sequence[float], random_state: Any, params: dict[str, Any]
) -> list[VAE]:
    """One unfitted, parameter-checked VAE per setting (k outer, β inner)."""
    for reserved in ("latent_dim", "beta"):
        if reserved in params:
            raise ConfigError(
                f"{reserved} is set by the sweep grid; pass it in "
                f"{'latent_dims' if reserved == 'latent_dim' else 'betas'} instead."
            )
    models = []
    for k in latent_dims:
        for beta in betas:
            try:
                model = VAE(latent_dim=k, beta=beta, random_state=random_state, **params)
            except TypeError as exc:
                raise ConfigError(f"Unknown VAE parameter: {exc}.") from None
            model._check_params()  # a bad parameter is reported before anything is trained
            models.append(model)
    return models


def _check_arrays(X_train: Any, X_test: Any) -> tuple[np.ndarray, np.ndarray]:
    X_train = X_train if hasattr(X_train, "shape") else np.asarray(X_train)
    X_test = X_test if hasattr(X_test, "shape") else np.asarray(X_test)
    for X, name in ((X_train, "X_train"), (X_test, "X_test")):
        if len(X.shape) < 2 or X.shape[0] < 2:
            raise DataError(
                f"{name} must hold at least 2 samples of shape (n, d) or images, got an array "
                f"of shape {tuple(X.shape)}."
            )
    if tuple(X_train.shape[1:]) != tuple(X_test.shape[1:]):
        raise DataError(
            f"The test samples have shape {tuple(X_test.shape[1:])} but the training samples "
            f"{tuple(X_train.shape[1:])}; both must have the same features."
        )
    return X_train, X_test


def _downstream_task(
    y_train: Any, y_test: Any, n_train: int, n_test: int, asked: str = "auto"
) -> tuple[str | None, np.ndarray | None, np.ndarray | None, str | None]:
    """(task, y_train, y_test, note): the downstream task the labels allow (or ``asked``
    for), checked now."""
    from .evaluation.downstream import check_target, is_classification_target
    from .showcase import check_task

    check_task(asked)
    if y_train is None:
        return None, None, None, "No labels, so no downstream score; settings are ranked by -ELBO."
    if y_test is None:
        return (
            None,
            None,
            None,
            "The test data has no labels, so no downstream score; settings are ranked by -ELBO.",
        )
    y_train = check_target(y_train, n_train, "y_train", "X_train")
    y_test = check_target(y_test, n_test, "y_test", "X_test")
    classification = (
        is_classification_target(y_train) if asked == "auto" else (asked == "classification")
    )
    if classification:
        classes, counts = np.unique(y_train, return_counts=True)
        if classes.size < 2:
            raise DataError(
                "The training labels hold a single class; the downstream score needs two or "
                "more (or pass unlabelled data to rank settings by -ELBO)."
            )
        if counts.max() < _CV:
            raise DataError(
                f"Every class has fewer than {_CV} training rows, too few for the downstream "
                "model's cross-validation; use more data."
            )
        return "classification", y_train, y_test, None
    try:
        y_train, y_test = y_train.astype(np.float64), y_test.astype(np.float64)
    except ValueError:
        raise DataError("The labels are neither classes nor numbers.") from None
    if not (np.isfinite(y_train).all() and np.isfinite(y_test).all()) or np.ptp(y_train) == 0:
        raise DataError(
            "The continuous target is constant or holds NaN / infinite values; fix the labels."
        )
    return "regression", y_train, y_test, None


# ----------------------------------------------------------------------------------- sweep
def sweep(
    X_train: Any,
    X_test: Any,
    y_train: Any = None,
    y_test: Any = None,
    *,
    latent_dims: str | Iterable[int] = DEFAULT_LATENT_DIMS,
    betas: str | Iterable[float] = DEFAULT_BETAS,
    random_state: int | None = 0,
    verbose: bool = False,
    task: str = "auto",
    **vae_params: Any,
) -> dict[str, Any]:
    """Fit one VAE per (latent size, β) setting and measure each on the test split.

    Parameters
    ----------
    X_train : array-like of shape (n_train, ...)
        Training data, as for :meth:`VAE.fit`.
    X_test : array-like of shape (n_test, ...)
        Held-out data with the same per-sample shape; every measurement is taken on it.
    y_train, y_test : array-like of shape (n,), optional
        Labels for the downstream score: class labels give the accuracy of a logistic
        regression on μ(x), a continuous target the R² of a ridge regression (both with C /
        alpha chosen by 3-fold CV on the training split only). Without them the score is
        skipped and the note says so.
    latent_dims : iterable of int or str, default=(2, 8, 16, 32)
        Latent sizes k (``"2,8,16"`` is accepted).
    betas : iterable of float or str, default=(0.5, 1.0, 4.0)
        KL weights β >= 0.
    random_state : int or None, default=0
        The same seed for every VAE (weights, batches, ε) and for the downstream models.
    verbose : bool, default=False
        A rich progress bar over the settings on stderr (the VAEs themselves stay quiet).
    task : {"auto", "classification", "regression"}, default="auto"
        What the labels are; ``auto`` decides from ``y_train``
        (:func:`~vaekit.evaluation.is_classification_target`).
    **vae_params
        Any other :class:`VAE` parameter (``epochs``, ``hidden_dims``, ``device``...), the
        same for every setting.

    Returns
    -------
    dict
        ``rows`` (one dict per setting, k outer and β inner, with :data:`ROW_FIELDS`: test
        reconstruction NLL, KL and -ELBO in nats per sample, active units, collapsed,
        downstream score or None, epochs run, fit seconds), ``kl_per_dim`` (setting -> KL per
        latent dimension on the test split), ``suggestion`` (see :func:`suggest`),
        ``downstream`` (task, metric, model, note), ``protocol``, ``n_train``, ``n_test``;
        JSON-serializable.

    Raises
    ------
    ConfigError
        For an empty or invalid grid or a bad VAE parameter, before anything is trained.
    DataError
        For mismatched shapes or unusable labels, before anything is trained.
    """
    latent_dims = parse_grid(latent_dims, "latent_dims", int)
    betas = parse_grid(betas, "betas", float)
    vae_params.pop("verbose", None)  # one progress bar: the sweep's
    models = _estimators(latent_dims, betas, random_state, vae_params)
    X_train, X_test = _check_arrays(X_train, X_test)
    task, y_train, y_test, note = _downstream_task(y_train, y_test, len(X_train), len(X_test), task)

    rows: list[dict[str, Any]] = []
    kl_dims: dict[str, list[float]] = {}
    with StepProgress("sweep", len(models), verbose) as progress:
        while models:  # popped, so that a fitted model is freed once measured
            model = models.pop(0)
            progress.status(f"training {setting_label(model.latent_dim, model.beta)}")
            row, kl = _fit_and_measure(model, X_train, X_test)
            if task is not None:
                score, cv_score = _downstream(
                    model, X_train, X_test, y_train, y_test, task, random_state
                )
                row["downstream_score"] = round(score, 4)
                row["cv_score"] = None if cv_score is None else round(cv_score, 4)
            rows.append(row)
            kl_dims[row["setting"]] = kl
            progress.print(_row_line(row))
            progress.advance(f"done {row['setting']}")

    metric = None if task is None else _DOWNSTREAM[task][1]
    downstream = {
        "task": task,
        "metric": metric,
        "model": None if task is None else _DOWNSTREAM[task][2],
        "note": note,
    }
    return {
        "rows": rows,
        "kl_per_dim": kl_dims,
        "suggestion": suggest(rows, metric),
        "downstream": downstream,
        "protocol": _protocol(len(X_train), len(X_test), task, note, random_state, vae_params),
        "n_train": len(X_train),
        "n_test": len(X_test),
    }


def setting_label(latent_dim: int, beta: float) -> str:
    """How a setting is named in tables and messages: ``"k=8, β=1"``."""
    # 15 significant digits: two βs the grid keeps apart (1 and 1.0000001) keep their own rows;
    # the short forms (0.5, 1, 4) read as before.
    return f"k={latent_dim}, β={beta:.15g}"


def _fit_and_measure(model: VAE, X_train: Any, X_test: Any) -> tuple[dict[str, Any], list[float]]:
    """Fit ``model``; its table row (no downstream score yet) and test KL per dimension."""
    from .evaluation import active_units, kl_per_dimension, test_elbo

    tic = time.perf_counter()
    with warnings.catch_warnings():
        # Collapse is a column of the table here, measured on the test split.
        warnings.simplefilter("ignore", PosteriorCollapseWarning)
        model.fit(X_train)
    fit_seconds = time.perf_counter() - tic
    elbo = test_elbo(model, X_test)  # E_q[-log p(x|z)] + KL = -ELBO, nats per sample
    n_active = active_units(model, X_test)["active_units"]
    # What the suggestion reads: the rows the VAE held out for early stopping (all of its
    # training rows when it held out none), and the active units fit counted on them.
    val_idx = model._split(len(X_train), model.seed_)[1]
    val_elbo = test_elbo(model, X_train[val_idx] if len(val_idx) else X_train)
    row = {
        "setting": setting_label(model.latent_dim, model.beta),
        "latent_dim": model.latent_dim,
        "beta": model.beta,
        "test_recon_nll": round(elbo["reconstruction"], 4),
        "test_kl": round(elbo["kl"], 4),
        "test_neg_elbo": round(-elbo["elbo"], 4),
        "active_units": n_active,
        # The rule of VAE.fit's warning (one place for it); the message itself is not needed.
        "collapsed": collapse_message(
            model.active_units_, model.latent_dim, "", n_rows=model.offset_rows_
        )
        is not None,
        "downstream_score": None,
        "cv_score": None,
        "val_neg_elbo": round(-val_elbo["elbo"], 4),
        "epochs_run": model.n_epochs_,
        "fit_seconds": round(fit_seconds, 2),
    }
    return row, [round(float(v), 4) for v in kl_per_dimension(model, X_test)]


def _downstream(
    model: VAE,
    X_train: Any,
    X_test: Any,
    y_train: np.ndarray,
    y_test: np.ndarray,
    task: str,
    random_state: int | None,
) -> tuple[float, float | None]:
    """The task's linear model on μ(x): its test score, and its cross-validated score on the
    training split (the one the suggestion reads; None where there was nothing to tune)."""
    from threadpoolctl import threadpool_limits

    from .evaluation import classification_scores, regression_scores

    name, metric, _ = _DOWNSTREAM[task]
    score = classification_scores if task == "classification" else regression_scores
    F_train, F_test = model._mu(X_train), model._mu(X_test)
    # One BLAS thread: on busy shared cores OpenBLAS's spinning threads can make the lbfgs fit
    # 100x slower (see vaekit.evaluation.downstream).
    with threadpool_limits(1, user_api="blas"):
        result = score(
            F_train, y_train, F_test, y_test, models=(name,), cv=_CV, random_state=random_state
        )
    scores = result["models"][name]
    cv_score = scores[f"cv_{metric}"]
    return float(scores[metric]), None if cv_score is None else float(cv_score)


def _protocol(
    n_train: int,
    n_test: int,
    task: str | None,
    note: str | None,
    random_state: int | None,
    params: dict[str, Any],
) -> dict[str, Any]:
    shown = ", ".join(f"{k}={v!r}" for k, v in jsonable_params(params).items()) or "defaults"
    if task is None:
        downstream = note
    else:
        name, metric, model_name = _DOWNSTREAM[task]
        knob = "C" if name == "logreg" else "alpha"
        downstream = (
            f"{model_name} on standardized μ(x), {knob} by {_CV}-fold CV on the {n_train} "
            f"training rows, refit on all of them; test {metric} on the {n_test} test rows; "
            f"CV {metric}: the best mean score of that search"
        )
    return {
        "training": (
            f"one VAE per setting on the {n_train} training rows, random_state={random_state} "
            f"for every setting; other parameters: {shown}"
        ),
        "reconstruction": "test E_q[-log p(x|z)], 8 draws per row, nats per sample",
        "kl": "test KL(q(z|x) || N(0, I)), closed form, summed over dimensions, nats per sample",
        "neg_elbo": "reconstruction + KL (β = 1): a bound on -log p(x), comparable across k, β",
        "active_units": (
            "units with Var_x(μ_u(x)) > 0.01 over the test rows (Burda et al. 2016); collapsed: "
            "fewer than max(1, k/10) active on the VAE's validation split, as VAE.fit counts"
        ),
        "val_neg_elbo": (
            "-ELBO on the training rows each VAE held out for early stopping (all its training "
            "rows when it held out none)"
        ),
        "downstream": downstream,
        "suggestion": SUGGESTION_RULE,
    }


# ------------------------------------------------------------------------------ suggestion
def suggest(rows: Sequence[Mapping[str, Any]], metric: str | None = "accuracy") -> dict[str, Any]:
    """The suggested setting by :data:`SUGGESTION_RULE`, and why.

    Parameters
    ----------
    rows : sequence of dict
        :func:`sweep`'s rows: ``setting``, ``latent_dim``, ``beta``, ``val_neg_elbo``,
        ``collapsed``, ``cv_score`` (None when there are no labels) and, for the reason's
        wording, ``downstream_score``, the test score.
    metric : str or None
        What ``downstream_score`` is (``"accuracy"``, ``"r2"``), for the reason's wording.

    Returns
    -------
    dict
        ``setting``, ``latent_dim``, ``beta``, ``reason`` (one paragraph with the numbers),
        ``rule``.
    """
    if not rows:
        raise DataError("There are no settings to choose from.")
    healthy = [r for r in rows if not r["collapsed"]]
    pool = healthy or list(rows)
    scored = [r for r in pool if _finite(r.get("cv_score"))]
    if scored:
        best = max(r["cv_score"] for r in scored)
        # The tolerance in the difference, not in best - TIE_TOLERANCE, whose rounding left
        # some pairs exactly 0.005 apart untied; the 1e-12 absorbs the difference's own.
        tied = [r for r in scored if best - r["cv_score"] <= TIE_TOLERANCE + 1e-12]
    else:
        tied = pool
    pick = min(tied, key=lambda r: (_or_inf(r["val_neg_elbo"]), r["latent_dim"], r["beta"]))

    among = (
        f"the {len(healthy)} of {len(rows)} settings without posterior collapse"
        if healthy
        else (f"all {len(rows)} settings" if len(rows) > 1 else "the only setting")
    )
    neg_elbo = pick["val_neg_elbo"]
    elbo = f"validation -ELBO {neg_elbo:.2f} nats" if _finite(neg_elbo) else "no finite -ELBO"
    name = metric or "score"
    if scored:
        score = f"cross-validated {name} {pick['cv_score']:.3f}"
        if len(tied) == 1:
            reason = f"{pick['setting']}: the best {score} of {among} ({elbo})."
        else:
            others = ", ".join(
                f"{r['setting']} ({r['cv_score']:.3f})" for r in tied if r is not pick
            )
            reason = (
                f"{pick['setting']}: {score}, within {TIE_TOLERANCE} of the best ({best:.3f}) "
                f"of {among}, tied with {others}; it has the lowest {elbo} among them."
            )
    else:
        reason = f"{pick['setting']}: the lowest {elbo} of {among} (no downstream score)."
    # What the choice is worth, measured on rows it never looked at.
    test = (
        [f"test -ELBO {pick['test_neg_elbo']:.2f} nats"]
        if _finite(pick.get("test_neg_elbo"))
        else []
    )
    if _finite(pick.get("downstream_score")):
        test.insert(0, f"test {name} {pick['downstream_score']:.3f}")
    if test:
        reason += f" On the test split: {', '.join(test)}."
    collapsed = [r["setting"] for r in rows if r["collapsed"]]
    if not healthy:
        reason += (
            " Every setting collapsed (fewer than max(1, k/10) units active), so none was left "
            "out: lower β, use a KL warm-up or free bits, or train longer."
        )
    elif collapsed:
        reason += f" Left out for posterior collapse: {'; '.join(collapsed)}."
    return {
        "setting": pick["setting"],
        "latent_dim": pick["latent_dim"],
        "beta": pick["beta"],
        "reason": reason,
        "rule": SUGGESTION_RULE,
    }


def _finite(value: Any) -> bool:
    return isinstance(value, numbers.Real) and math.isfinite(value)


def _or_inf(value: Any) -> float:
    return float(value) if _finite(value) else math.inf


# ------------------------------------------------------------------------------------- job
def sweep_run(
    data: str | os.PathLike,
    out: str | os.PathLike = "vaekit-sweep",
    latent_dims: str | Iterable[int] = DEFAULT_LATENT_DIMS,
    betas: str | Iterable[float] = DEFAULT_BETAS,
    *,
    test: str | os.PathLike | None = None,
    data_dir: str | os.PathLike | None = None,
    label_column: str | None = None,
    random_state: int = 0,
    verbose: bool = False,
    task: str = "auto",
    **vae_params: Any,
) -> dict[str, Any]:
    """Sweep latent size × β on ``data`` and write the table, figure and report to ``out``.

    Everything a user can get wrong (the grid, VAE parameters, the data, the labels, an
    unwritable ``out``) is checked before the first VAE is trained.

    Parameters
    ----------
    data : str or PathLike
        Training data: dataset name or file (see :func:`~vaekit.datasets.load_dataset`).
    out : str or PathLike, default="vaekit-sweep"
        Output folder: ``results.json`` (everything measured), ``results.md`` and
        ``results.csv`` (the table, the suggestion and its reason), ``figures/sweep.png`` and
        ``report.html`` (rebuilt by ``vaekit report``).
    latent_dims, betas
        The grid, as for :func:`sweep` (``"2,8,16,32"`` and ``"0.5,1,4"`` are accepted).
    test : str or PathLike, optional
        Test data. Without it, 25% of ``data`` is held out with ``random_state``
        (``train_test_split``, stratified by class for class labels).
    data_dir, label_column
        As for :func:`~vaekit.datasets.load_dataset` (both ``data`` and ``test``).
    random_state : int, default=0
        Seeds the split, every VAE and the downstream models.
    verbose : bool, default=False
        A progress bar over the settings on stderr.
    task : {"auto", "classification", "regression"}, default="auto"
        What the labels are: ``auto`` decides once, from all of ``data``'s labels, for the
        split (stratified by class) and the downstream score alike.
    **vae_params
        Other :class:`VAE` parameters (``epochs``, ``hidden_dims``, ``device``...).

    Returns
    -------
    dict
        ``results.json``'s content (``summary``: the suggestion with its reason and rule;
        ``comparison``: ``rows`` and ``protocol``; ``downstream``, ``kl_per_dim``, the split,
        timings, figures) plus ``report``, ``table_md`` and ``table_csv``, the written paths.
    """
    from .plots import sweep_figure
    from .report import RESULTS_FILE, write_report
    from .showcase import check_task, labels_are_classes, output_folder

    tic = time.perf_counter()
    latent_dims = parse_grid(latent_dims, "--latent-dims", int)
    betas = parse_grid(betas, "--betas", float)
    vae_params.pop("verbose", None)
    _estimators(latent_dims, betas, random_state, vae_params)
    if test is not None:
        check_disjoint(data, test)
    data_labels, test_labels = label_columns(data, test, label_column)
    check_task(task)
    train_ds = load_dataset(data, data_dir=data_dir, label_column=data_labels)
    refuse_non_finite(train_ds)
    classes = train_ds.y is not None and labels_are_classes(task, train_ds)
    X_train, X_test, y_train, y_test, split = _split(
        train_ds, test, data_dir, test_labels, random_state, classes
    )
    _check_arrays(X_train, X_test)
    task = "auto" if train_ds.y is None else ("classification" if classes else "regression")
    _downstream_task(y_train, y_test, len(X_train), len(X_test), task)

    with output_folder(out) as out_dir:
        result = sweep(
            X_train,
            X_test,
            y_train,
            y_test,
            latent_dims=latent_dims,
            betas=betas,
            random_state=random_state,
            verbose=verbose,
            task=task,
            **vae_params,
        )
        suggestion, metric = result["suggestion"], result["downstream"]["metric"]
        figure = sweep_figure(
            result["rows"],
            suggested=(suggestion["latent_dim"], suggestion["beta"]),
            metric=metric or "accuracy",
            title=f"Sweep on {train_ds.name}",
        )
        results = {
            "title": f"vaekit sweep: {train_ds.name}, latent size × β",
            "summary": {  # shown first in the report
                "suggested": suggestion["setting"],
                **{k: v for k, v in suggestion.items() if k != "setting"},
            },
            "comparison": {"rows": result["rows"], "protocol": result["protocol"]},
            "data": str(data),
            "test": None if test is None else str(test),
            "split": split,
            "n_train": result["n_train"],
            "n_test": result["n_test"],
            "downstream": result["downstream"],
            "kl_per_dim": result["kl_per_dim"],
            "params": {**jsonable_params(vae_params), "random_state": random_state},
            "timings": {"total_seconds": round(time.perf_counter() - tic, 2)},
            "tables": {"markdown": TABLE_MD, "csv": TABLE_CSV},
            "figures": {
                "sweep": {
                    "caption": (
                        "Test reconstruction NLL, KL, active units"
                        + ("" if metric is None else f" and downstream {metric}")
                        + " per setting: one line per latent size k over β; x: posterior "
                        "collapse, star: the suggested setting"
                    ),
                    "section": "training",
                }
            },
        }
        atomic_write_bytes(out_dir / TABLE_CSV, _csv(result["rows"]).encode("utf-8"))
        atomic_write_bytes(out_dir / TABLE_MD, _markdown(results).encode("utf-8"))
        report = write_report(out_dir, results, {"sweep": figure})  # results.json, report.html
    saved = json.loads((out_dir / RESULTS_FILE).read_text(encoding="utf-8"))
    return {
        **saved,  # exactly what results.json holds, plus where everything went
        "report": str(report),
        "table_md": str(out_dir / TABLE_MD),
        "table_csv": str(out_dir / TABLE_CSV),
    }


def _split(
    train_ds: Dataset,
    test: str | os.PathLike | None,
    data_dir: str | os.PathLike | None,
    test_label_column: str | None,
    random_state: int,
    classes: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None, str]:
    """X_train, X_test, y_train, y_test and how they were split (stratified by class where
    the labels are ``classes``)."""
    from sklearn.model_selection import train_test_split

    from .showcase import check_stratifiable

    X, y = train_ds.X, train_ds.y
    if test is not None:
        test_ds = load_dataset(test, data_dir=data_dir, label_column=test_label_column)
        refuse_non_finite(test_ds)
        # Flattened vs image files are the same samples.
        reference = f"{train_ds.name} has"
        X_test = conform_samples(test_ds.X, tuple(X.shape[1:]), test_ds.name, reference)
        y_test = align_test_labels(train_ds, test_ds)
        return X, X_test, y, y_test, f"train: {train_ds.name}, test: {test_ds.name}"
    stratified = y is not None and classes
    if stratified:
        check_stratifiable(train_ds)
    try:
        parts = train_test_split(
            *((X,) if y is None else (X, y)),
            test_size=TEST_SIZE,
            stratify=y if stratified else None,
            random_state=random_state,
        )
    except ValueError:
        raise DataError(
            f"{train_ds.name} has too few rows ({len(X)}) for a 75/25 split; pass more data, "
            "or a separate test set with --test."
        ) from None
    X_train, X_test = parts[0], parts[1]
    y_train, y_test = (None, None) if y is None else (parts[2], parts[3])
    how = f"{train_ds.name}: 75/25 train_test_split, random_state={random_state}" + (
        ", stratified by class" if stratified else ""
    )
    return X_train, X_test, y_train, y_test, how


# ---------------------------------------------------------------------------------- tables
_COLUMNS = (  # (row field, markdown header)
    ("setting", "setting"),
    ("latent_dim", "k"),
    ("beta", "β"),
    ("test_recon_nll", "recon NLL"),
    ("test_kl", "KL"),
    ("test_neg_elbo", "-ELBO"),
    ("active_units", "active units"),
    ("collapsed", "collapsed (val)"),
    ("downstream_score", "downstream"),
    ("cv_score", "CV downstream"),
    ("val_neg_elbo", "val -ELBO"),
    ("epochs_run", "epochs"),
    ("fit_seconds", "fit s"),
)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if abs(value) < 1e-3 or value.is_integer():
            return f"{value:g}"
        # Four decimals, not four digits: two -ELBOs 0.06 nats apart (27.63, 27.57) must not
        # both read 27.6 where the difference decides a tie.
        return f"{value:.4f}".rstrip("0").rstrip(".")
    return str(value)


def _markdown(results: Mapping[str, Any]) -> str:
    """The table, the suggestion, its reason and the rule as a markdown page."""
    summary, downstream = results["summary"], results["downstream"]
    metric = downstream["metric"]
    named = {"downstream_score": f"test {metric}", "cv_score": f"CV {metric}"}
    # Without labels there are no downstream scores: no columns for them.
    columns = [(key, header) for key, header in _COLUMNS if metric or key not in named]
    headers = [named.get(key, header) for key, header in columns]
    lines = [
        f"# {results['title']}",
        "",
        f"Data: {results['split']} ({results['n_train']} training rows, {results['n_test']} "
        "test rows). Test reconstruction NLL, KL and -ELBO in nats per sample. The suggestion "
        "reads only the training split: the CV score, and the -ELBO and collapse on each "
        "VAE's validation split.",
        "",
        "| " + " | ".join(headers) + " |",
        "|" + "|".join(":---" if i == 0 else "---:" for i in range(len(headers))) + "|",
    ]
    for row in results["comparison"]["rows"]:
        cells = [_cell(row.get(key)) for key, _ in columns]
        if row["setting"] == summary["suggested"]:
            cells[0] = f"**{cells[0]}** (suggested)"
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", f"**Suggested: {summary['suggested']}.** {summary['reason']}", ""]
    if downstream.get("note"):
        lines += [f"Note: {downstream['note']}", ""]
    lines += [f"Rule: {summary['rule']}", ""]
    return "\n".join(lines)


def _csv(rows: Sequence[Mapping[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(
        buffer, fieldnames=ROW_FIELDS, extrasaction="ignore", lineterminator="\n"
    )
    writer.writeheader()
    for row in rows:
        writer.writerow({k: "" if row.get(k) is None else row.get(k) for k in ROW_FIELDS})
    return buffer.getvalue()


# -------------------------------------------------------------------------------- progress
def _row_line(row: Mapping[str, Any]) -> str:
    """One finished setting, as printed above the progress bar."""
    score = row["downstream_score"]
    return (
        f"{row['setting']}: -ELBO {row['test_neg_elbo']:.2f}, KL {row['test_kl']:.2f}, "
        f"{row['active_units']}/{row['latent_dim']} active"
        + ("" if score is None else f", downstream {score:.3f}")
    )
