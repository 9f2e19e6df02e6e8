"""Supervised downstream evaluation of feature vectors: classification and regression.

One protocol for every feature set, so that rows of a comparison are comparable:

1. Features are standardized by a ``StandardScaler`` inside a ``Pipeline``, so the scaler is fit
   on training rows only (on each fold's training part during cross-validation).
2. Hyper-parameters are chosen by ``GridSearchCV`` on shuffled ``cv`` folds (stratified for
   classification) of the **training split only**, on a seeded uniform subsample of at most
   ``search_max_samples`` training rows; the best setting is then refit on the whole training
   split. A model whose grid has a single point is not searched, only fit.
3. The test split is scored once, after all choices are made.

Cost, measured on MNIST's PCA-32 features (60,000 training and 10,000 test rows, 10 classes) on
2 shared CPU cores, ``n_jobs=2``: logistic regression (lbfgs, ``max_iter=1000``) 12 s, linear
SVM 6 s, kNN 5 s, random forest (100 trees) 53 s. On a busy machine OpenBLAS's own threads can
make the lbfgs refit 100x slower (1 s -> 127 s measured); ``threadpoolctl.threadpool_limits(1)``
avoids it.

The linear SVM picks liblinear's solver by width (:func:`_linear_svm`): on 784 standardized MNIST
pixels the primal Newton solver (what ``dual="auto"`` picks when rows outnumber features) took
1,224 s for the 60,000-row refit and 4,118 s for the search, while dual coordinate descent, capped
at 1,000 passes, took 307 s for the refit at the same test accuracy (0.9158).
"""

from __future__ import annotations

import contextlib
import numbers
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, clone
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import accuracy_score, f1_score, mean_absolute_error, r2_score
from sklearn.model_selection import GridSearchCV, KFold, StratifiedKFold
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC

from vaekit.dataset import looks_like_classes
from vaekit.errors import ConfigError, DataError

__all__ = ["classification_scores", "is_classification_target", "regression_scores"]

# Features at least this wide get liblinear's dual solver (see _linear_svm).
LINEAR_SVM_DUAL_MIN_FEATURES = 512


def _linear_svm(random_state: int | None, n_features: int) -> LinearSVC:
    """A linear SVM whose liblinear solver suits the width of the features.

    Codes and projections (MNIST PCA-32 to PCA-256): the primal Newton solver converges in
    7-45 iterations (3.6 s on 60,000 PCA-32 rows at every C of the grid) where dual coordinate
    descent needs up to 13x longer and stops unconverged at C = 1. Standardized raw pixels: the
    primal solver crawls (nearly-constant border pixels become huge, rare values after scaling;
    20 min for one 60,000 x 784 refit) while the dual one, capped at 1,000 passes, is done in
    5 min with the same test accuracy. Width stands in for "raw pixels" (images are at least
    28 x 28 = 784 wide, codes and most tables far narrower); the cap bounds the cost either way,
    and ``converged`` in the results says when it was reached.
    """
    dual = n_features >= LINEAR_SVM_DUAL_MIN_FEATURES
    return LinearSVC(dual=dual, max_iter=1000 if dual else 2000, random_state=random_state)


# name -> (factory(random_state, n_jobs, n_features) -> estimator, grid). Grids are small on
# purpose: the comparison is about the features, and every feature set gets the same budget.
_Factory = Callable[[int | None, int | None, int], BaseEstimator]
CLASSIFIERS: dict[str, tuple[_Factory, dict[str, list[Any]]]] = {
    "logreg": (lambda rs, nj, d: LogisticRegression(max_iter=1000), {"C": [0.1, 1.0, 10.0]}),
    "linear_svm": (lambda rs, nj, d: _linear_svm(rs, d), {"C": [0.01, 0.1, 1.0]}),
    "knn": (lambda rs, nj, d: KNeighborsClassifier(n_jobs=nj), {"n_neighbors": [3, 5, 11]}),
    "random_forest": (
        lambda rs, nj, d: RandomForestClassifier(n_estimators=100, random_state=rs, n_jobs=nj),
        {"max_features": ["sqrt"]},
    ),
}
REGRESSORS: dict[str, tuple[_Factory, dict[str, list[Any]]]] = {
    "ridge": (lambda rs, nj, d: Ridge(), {"alpha": [0.1, 1.0, 10.0, 100.0]}),
    "random_forest": (
        lambda rs, nj, d: RandomForestRegressor(n_estimators=100, random_state=rs, n_jobs=nj),
        {"max_features": [1.0]},
    ),
}
REGISTRIES = {"classification": CLASSIFIERS, "regression": REGRESSORS}
# Per task: the score GridSearchCV maximizes, and the test metrics reported.
SCORING: dict[str, tuple[str, dict[str, Callable[[Any, Any], float]]]] = {
    "classification": (
        "accuracy",
        {
            "accuracy": accuracy_score,
            "macro_f1": lambda y, pred: f1_score(y, pred, average="macro", zero_division=0),
        },
    ),
    "regression": ("r2", {"r2": r2_score, "mae": mean_absolute_error}),
}


def is_classification_target(y: Any, *, max_classes: int = 50, named: bool = False) -> bool:
    """Whether a target is class labels (True) or a continuous quantity (False).

    Booleans and strings are labels, and so are codes of named classes (``named``). Whole
    numbers (integers, or floats without a fraction) are labels when there are at most
    ``max_classes`` distinct values, or 20 rows per value on average (CIFAR-100's 100 codes);
    a whole-number target such as a count or a price, with many rarely repeated values, is a
    quantity, and so is any fractional value.

    Parameters
    ----------
    y : array-like of shape (n_samples,)
    max_classes : int, default=50
    named : bool, default=False
        ``y`` holds the codes of classes that have names (text labels, image subfolders):
        classes however many there are.

    Returns
    -------
    bool
    """
    return named or looks_like_classes(np.asarray(y), max_classes=max_classes)


def classification_scores(
    F_train: Any,
    y_train: Any,
    F_test: Any,
    y_test: Any,
    *,
    models: Sequence[str] = ("logreg", "linear_svm", "knn", "random_forest"),
    cv: int = 3,
    random_state: int | None = 0,
    n_jobs: int | None = None,
    search_max_samples: int | None = 10_000,
) -> dict[str, Any]:
    """Test accuracy and macro-F1 of standard classifiers trained on the features.

    See the module docstring for the protocol (scaling, grids, subsampled search, refit).

    Parameters
    ----------
    F_train : array-like of shape (n_train, d)
    y_train : array-like of shape (n_train,)
        Class labels (ints or strings).
    F_test : array-like of shape (n_test, d)
    y_test : array-like of shape (n_test,)
    models : sequence of str, default=("logreg", "linear_svm", "knn", "random_forest")
        Names from :data:`CLASSIFIERS`.
    cv : int, default=3
        Number of stratified, shuffled folds of the training split used for the grid search.
    random_state : int or None, default=0
        Seeds the folds, the search subsample, the linear SVM and the random forest.
    n_jobs : int or None, default=None
        Parallel jobs for the grid search, kNN and the random forest.
    search_max_samples : int or None, default=10000
        The grid search sees at most this many training rows (None: all of them).

    Returns
    -------
    dict
        ``{"task": "classification", "protocol": {...}, "n_train", "n_test", "n_classes",
        "models": {name: {"accuracy", "macro_f1", "params", "cv_accuracy", "search_seconds",
        "fit_seconds", "converged"}}}``; JSON-serializable. ``cv_accuracy`` is None for
        models that were not searched, ``converged`` None for models without an iteration cap.

    Raises
    ------
    DataError
        For mismatched lengths or widths, non-finite features, or fewer than two classes.
    ConfigError
        For an unknown model name or an invalid ``cv`` / ``search_max_samples``.
    """
    F_train, y_train, F_test, y_test = _check_split(F_train, y_train, F_test, y_test)
    classes, counts = np.unique(y_train, return_counts=True)
    if classes.size < 2:
        raise DataError(
            f"y_train holds a single class ({_builtin(classes[0])!r}); "
            "classification needs at least two."
        )
    models = _check_options(models, CLASSIFIERS, cv, search_max_samples)
    if counts.max() < cv:
        raise DataError(
            f"Every class in y_train has fewer than cv={cv} rows; use more data or a smaller cv."
        )
    folds = StratifiedKFold(cv, shuffle=True, random_state=random_state)
    split = (F_train, y_train, F_test, y_test)
    result = _evaluate(
        "classification", models, folds, split, random_state, n_jobs, search_max_samples
    )
    return {**result, "n_classes": int(classes.size)}


def regression_scores(
    F_train: Any,
    y_train: Any,
    F_test: Any,
    y_test: Any,
    *,
    models: Sequence[str] = ("ridge", "random_forest"),
    cv: int = 3,
    random_state: int | None = 0,
    n_jobs: int | None = None,
    search_max_samples: int | None = 10_000,
) -> dict[str, Any]:
    """Test R² and mean absolute error of ridge regression and a random forest on the features.

    Same protocol as :func:`classification_scores`, with plain shuffled k-fold and R² as the
    selection score; ridge's ``alpha`` is chosen from {0.1, 1, 10, 100}.

    Parameters
    ----------
    F_train : array-like of shape (n_train, d)
    y_train : array-like of shape (n_train,)
        Continuous target.
    F_test : array-like of shape (n_test, d)
    y_test : array-like of shape (n_test,)
    models : sequence of str, default=("ridge", "random_forest")
        Names from :data:`REGRESSORS`.
    cv, random_state, n_jobs, search_max_samples
        As for :func:`classification_scores`.

    Returns
    -------
    dict
        ``{"task": "regression", "protocol": {...}, "n_train", "n_test", "models": {name:
        {"r2", "mae", "params", "cv_r2", "search_seconds", "fit_seconds", "converged"}}}``.

    Raises
    ------
    DataError
        For mismatched lengths or widths, non-finite values, or a constant ``y_train``.
    ConfigError
        For an unknown model name or an invalid ``cv`` / ``search_max_samples``.
    """
    F_train, y_train, F_test, y_test = _check_split(F_train, y_train, F_test, y_test)
    try:
        y_train, y_test = y_train.astype(np.float64), y_test.astype(np.float64)
    except ValueError:
        raise DataError("Regression needs a numeric target; y holds text labels.") from None
    if not (np.isfinite(y_train).all() and np.isfinite(y_test).all()):
        raise DataError("The regression target holds NaN or infinite values; drop those rows.")
    if np.ptp(y_train) == 0:
        raise DataError("y_train is constant; a regression target must vary across rows.")
    models = _check_options(models, REGRESSORS, cv, search_max_samples)
    folds = KFold(cv, shuffle=True, random_state=random_state)
    split = (F_train, y_train, F_test, y_test)
    return _evaluate("regression", models, folds, split, random_state, n_jobs, search_max_samples)


# ---------------------------------------------------------------------------- validation
def check_features(F: Any, name: str) -> np.ndarray:
    """``F`` as a finite 2-D float array, or a :class:`DataError` naming ``name``."""
    try:
        F = np.asarray(F, dtype=np.float64)
    except (TypeError, ValueError):
        raise DataError(f"{name} must be a numeric array of shape (n_samples, d).") from None
    if F.ndim != 2 or F.shape[0] == 0 or F.shape[1] == 0:
        raise DataError(f"{name} must be a non-empty 2-D array (n_samples, d), got {F.shape}.")
    if not np.isfinite(F).all():
        raise DataError(f"{name} holds NaN or infinite values; drop or impute those rows first.")
    return F


def check_target(y: Any, n: int, name: str, features: str) -> np.ndarray:
    """``y`` as a 1-D array of length ``n`` (a column vector is accepted), else DataError."""
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise DataError(f"{name} must be 1-D (n_samples,), got shape {y.shape}.")
    if len(y) != n:
        raise DataError(f"{name} has {len(y)} values but {features} has {n} rows; they must match.")
    return y


def _check_split(F_train: Any, y_train: Any, F_test: Any, y_test: Any) -> tuple[np.ndarray, ...]:
    F_train, F_test = check_features(F_train, "F_train"), check_features(F_test, "F_test")
    if F_train.shape[1] != F_test.shape[1]:
        raise DataError(
            f"F_train has {F_train.shape[1]} columns but F_test has {F_test.shape[1]}; "
            "both must come from the same feature extractor."
        )
    y_train = check_target(y_train, len(F_train), "y_train", "F_train")
    y_test = check_target(y_test, len(F_test), "y_test", "F_test")
    return F_train, y_train, F_test, y_test


def _check_options(
    models: Sequence[str], registry: dict[str, Any], cv: Any, search_max_samples: Any
) -> tuple[str, ...]:
    """Validate the options shared by both tasks; return ``models`` as a tuple of names."""
    models = (models,) if isinstance(models, str) else tuple(models)
    unknown = [m for m in models if m not in registry]
    if unknown or not models:
        raise ConfigError(f"models must be names from {', '.join(registry)}; got {models!r}.")
    if not (isinstance(cv, numbers.Integral) and cv >= 2):
        raise ConfigError(f"cv must be an integer >= 2, got {cv!r}.")
    if search_max_samples is not None and not (
        isinstance(search_max_samples, numbers.Integral) and search_max_samples >= 2 * cv
    ):
        raise ConfigError(
            f"search_max_samples must be None or an integer >= 2 * cv, got {search_max_samples!r}."
        )
    return models


# ---------------------------------------------------------------------------- protocol steps
def _search_rows(n: int, max_samples: int | None, random_state: int | None) -> np.ndarray | None:
    """Sorted row indices for the grid search, or None for all rows.

    A uniform (not stratified) draw: stratified subsampling fails on classes with one row, and
    with thousands of rows the class proportions come out nearly exact anyway.
    """
    if max_samples is None or n <= max_samples:
        return None
    return np.sort(np.random.default_rng(random_state).choice(n, max_samples, replace=False))


def _evaluate(
    task: str,
    models: tuple[str, ...],
    folds: KFold | StratifiedKFold,
    split: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    random_state: int | None,
    n_jobs: int | None,
    search_max_samples: int | None,
) -> dict[str, Any]:
    """Select, refit and score every model of ``models``; the shared body of both tasks."""
    F_train, y_train, F_test, y_test = split
    registry, (scoring, metrics) = REGISTRIES[task], SCORING[task]
    rows = _search_rows(len(y_train), search_max_samples, random_state)
    results = {}
    for name in models:
        factory, grid = registry[name]
        estimator = factory(random_state, n_jobs, F_train.shape[1])
        model, info = _select_and_fit(
            estimator, grid, F_train, y_train, folds, rows, scoring, n_jobs
        )
        pred = model.predict(F_test)
        results[name] = {metric: float(fn(y_test, pred)) for metric, fn in metrics.items()} | info
    return {
        "task": task,
        "protocol": _protocol(
            models, registry, folds, rows, len(y_train), len(y_test), scoring, random_state
        ),
        "n_train": len(y_train),
        "n_test": len(y_test),
        "models": results,
    }


def _feasible(grid: dict[str, list[Any]], fold_rows: int) -> dict[str, list[Any]]:
    """The grid without the settings a fold's ``fold_rows`` training rows cannot fit.

    kNN needs at least ``n_neighbors`` training rows: with a few dozen rows, 11 neighbours do
    not fit in a fold. The largest feasible count stands in when none of the grid's does.
    """
    if "n_neighbors" not in grid:
        return grid
    fits = [k for k in grid["n_neighbors"] if k <= fold_rows]
    return {**grid, "n_neighbors": fits or [max(1, fold_rows)]}


def _select_and_fit(
    estimator: BaseEstimator,
    grid: dict[str, list[Any]],
    F: np.ndarray,
    y: np.ndarray,
    folds: KFold | StratifiedKFold,
    rows: np.ndarray | None,
    scoring: str,
    n_jobs: int | None,
) -> tuple[Pipeline, dict[str, Any]]:
    """Grid-search ``scaler -> estimator`` on training ``rows``, then refit on all of F, y."""
    pipe = Pipeline([("scale", StandardScaler()), ("model", estimator)])
    n_search = len(F) if rows is None else len(rows)
    grid = _feasible(grid, n_search - -(-n_search // folds.get_n_splits()))
    params = {key: values[0] for key, values in grid.items()}
    cv_score, search_seconds = None, 0.0
    if any(len(values) > 1 for values in grid.values()):
        F_search, y_search = (F, y) if rows is None else (F[rows], y[rows])
        search = GridSearchCV(
            pipe,
            {f"model__{key}": values for key, values in grid.items()},
            scoring=scoring,
            cv=folds,
            refit=False,  # we refit on the full training split below
            n_jobs=n_jobs,
            error_score="raise",
        )
        start = time.perf_counter()
        with _quiet_convergence():
            search.fit(F_search, y_search)
        search_seconds = time.perf_counter() - start
        params = {key.removeprefix("model__"): value for key, value in search.best_params_.items()}
        cv_score = float(search.best_score_)
    final = clone(pipe).set_params(**{f"model__{key}": value for key, value in params.items()})
    start = time.perf_counter()
    with _quiet_convergence():
        final.fit(F, y)
    fit_seconds = time.perf_counter() - start
    return final, {
        "params": {key: _builtin(value) for key, value in params.items()},
        f"cv_{scoring}": cv_score,
        "search_seconds": round(search_seconds, 3),
        "fit_seconds": round(fit_seconds, 3),
        "converged": _converged(final.named_steps["model"]),
    }


@contextlib.contextmanager
def _quiet_convergence() -> Iterator[None]:
    """Silence solvers' ConvergenceWarnings (scikit-learn passes the filter on to its workers).

    A capped solver is expected here (the linear SVM on raw pixels reaches its cap on purpose),
    and a warning per fold and grid point buries the output; the refit's status is reported
    instead, as ``converged`` in the results and a line under the comparison table.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        yield


def _converged(model: BaseEstimator) -> bool | None:
    """False when an iterative solver stopped at its ``max_iter`` cap; None if not iterative."""
    # Ridge has both attributes but, with its default direct solvers, both are None.
    if getattr(model, "max_iter", None) is None or getattr(model, "n_iter_", None) is None:
        return None
    return bool(np.max(model.n_iter_) < model.max_iter)


def _builtin(value: Any) -> Any:
    """numpy scalars -> Python scalars, so results survive ``json.dumps``."""
    return value.item() if isinstance(value, np.generic) else value


def _protocol(
    models: Sequence[str],
    registry: dict[str, tuple[_Factory, dict[str, list[Any]]]],
    folds: KFold | StratifiedKFold,
    rows: np.ndarray | None,
    n_train: int,
    n_test: int,
    scoring: str,
    random_state: int | None,
) -> dict[str, Any]:
    n_search = n_train if rows is None else len(rows)
    cv = folds.get_n_splits()
    kind = "stratified " if isinstance(folds, StratifiedKFold) else ""
    return {
        "preprocessing": "StandardScaler fit on training rows only (inside the pipeline)",
        "selection": (
            f"GridSearchCV, {cv} shuffled {kind}folds of the training split only, "
            f"scored by {scoring}; models with a one-point grid are fit without search"
        ),
        "search_rows": (
            f"all {n_train} training rows"
            if rows is None
            else f"uniform random subsample of {n_search} of {n_train} training rows (seeded)"
        ),
        "refit": f"best setting refit on all {n_train} training rows",
        "test": f"{n_test} test rows, scored once, never used for selection",
        "grids": {name: registry[name][1] for name in models},
        "solvers": {
            "linear_svm": (
                f"liblinear dual coordinate descent (max 1000 passes) for features at least "
                f"{LINEAR_SVM_DUAL_MIN_FEATURES} wide, primal Newton (max 2000 iterations) below"
            )
        }
        if "linear_svm" in models
        else {},
        "random_state": random_state,
    }
