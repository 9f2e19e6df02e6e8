"""The side-by-side comparison: the same tasks on raw inputs, PCA, a plain AE, VAE μ(x) and z.

:func:`fit_feature_extractors` fits the extractors on a training split; :func:`compare_features`
runs the downstream tasks on every feature set and returns one flat, JSON-serializable table;
:func:`format_table` renders it as markdown with its protocol underneath.
"""

from __future__ import annotations

import inspect
import numbers
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np
from joblib import Parallel, delayed, effective_n_jobs
from sklearn.decomposition import PCA
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils import check_random_state

from vaekit.autoencoder import Autoencoder
from vaekit.errors import ConfigError, DataError
from vaekit.scaling import in_unit_interval
from vaekit.vae import VAE

from .clustering import clustering_scores
from .downstream import classification_scores, is_classification_target, regression_scores

__all__ = ["compare_features", "fit_feature_extractors", "format_table"]

FEATURE_SETS = ("raw", "pca", "ae", "vae_mu", "vae_z")
TASKS = {
    "classification": classification_scores,
    "regression": regression_scores,
    "clustering": clustering_scores,
}
# The one number per (task, model) that goes into the summary table.
HEADLINE = {
    "classification": ("accuracy",),
    "regression": ("r2",),
    "clustering": ("accuracy", "nmi"),
}


def fit_feature_extractors(
    X_train: Any,
    X_test: Any,
    *,
    latent_dim: int,
    vae_params: Mapping[str, Any] | None = None,
    ae_params: Mapping[str, Any] | None = None,
    random_state: int | None = 0,
    include: Sequence[str] = FEATURE_SETS,
    standardize: bool | None = None,
) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], dict[str, Any]]:
    """Fit PCA(k), an Autoencoder(k) and a VAE(k) on ``X_train``; featurize both splits.

    The autoencoder receives every parameter of ``vae_params`` that it has (architecture,
    hidden widths, epochs, batch size, learning rate, likelihood, ...) and the same seed, so
    it is the fair baseline: it differs from the VAE only by having no stochastic layer and no
    KL term. ``ae_params`` overrides single values on purpose, if ever needed.

    Parameters
    ----------
    X_train : array-like of shape (n_train, d), (n_train, h, w) or (n_train, c, h, w)
    X_test : array-like of shape (n_test, ...)
        Same per-sample shape as ``X_train``; only transformed, never fit on.
    latent_dim : int
        k, the size of every learned representation.
    vae_params, ae_params : dict, optional
        Extra keyword arguments of :class:`~vaekit.VAE` / :class:`~vaekit.Autoencoder`.
    random_state : int or None, default=0
        Seeds PCA, both networks and the draw of z.
    include : sequence of str, default=("raw", "pca", "ae", "vae_mu", "vae_z")
    standardize : bool or None, default=None
        Standardize the inputs of ``raw`` and ``pca`` (a ``StandardScaler`` fit on
        ``X_train``), as the networks standardize theirs under the Gaussian likelihood: PCA
        of unscaled columns is ruled by the ones with the largest units (a baseline no one
        would use). None: when the networks' likelihood is Gaussian (``likelihood`` in
        ``vae_params``, or ``"auto"`` with values outside [0, 1]).

    Returns
    -------
    features : dict of str -> (ndarray of shape (n_train, d_f), ndarray of shape (n_test, d_f))
        In the order of ``include``; ``raw`` is the inputs flattened (and standardized, see
        ``standardize``), ``vae_z`` one draw z ~ q(z | x) per row.
    models : dict of str -> fitted estimator
        ``"pca"`` (a Pipeline with the scaler when standardized), ``"raw"`` (the scaler, when
        standardized), ``"ae"``, ``"vae"`` for those fitted.
    """
    include = (include,) if isinstance(include, str) else tuple(include)
    unknown = [name for name in include if name not in FEATURE_SETS]
    if unknown or not include:
        raise ConfigError(f"include must name feature sets from {', '.join(FEATURE_SETS)}.")
    X_train, X_test = np.asarray(X_train), np.asarray(X_test)
    flat_train, flat_test = _flatten(X_train, "X_train"), _flatten(X_test, "X_test")
    if flat_train.shape[1] != flat_test.shape[1]:
        raise DataError(
            f"X_train has {flat_train.shape[1]} features per sample but X_test has "
            f"{flat_test.shape[1]}; both splits must have the same shape."
        )
    vae_params = dict(vae_params or {})
    _check_latent_dim(latent_dim, flat_train.shape, {**vae_params, **(ae_params or {})})
    shared = set(Autoencoder().get_params()) - {"latent_dim", "random_state"}
    ae_params = {**{k: v for k, v in vae_params.items() if k in shared}, **(ae_params or {})}
    if standardize is None:
        likelihood = vae_params.get("likelihood", "auto")
        # As the networks decide (in_unit_interval: rounding past 1 is not "outside").
        outside = bool(flat_train.size) and not in_unit_interval(
            float(flat_train.min()), float(flat_train.max())
        )
        standardize = likelihood == "gaussian" or (likelihood == "auto" and outside)
    features: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    models: dict[str, Any] = {}
    for name in include:
        if name == "raw" and standardize:
            scaler = models["raw"] = StandardScaler().fit(flat_train)
            features[name] = (
                _array(scaler.transform(flat_train)),
                _array(scaler.transform(flat_test)),
            )
        elif name == "raw":
            features[name] = (flat_train, flat_test)
        elif name == "pca":
            pca = PCA(latent_dim, random_state=random_state)
            models["pca"] = make_pipeline(StandardScaler(), pca) if standardize else pca
            models["pca"].fit(flat_train)
            features[name] = (
                _array(models["pca"].transform(flat_train)),
                _array(models["pca"].transform(flat_test)),
            )
        elif name == "ae":
            ae = Autoencoder(latent_dim, **ae_params, random_state=random_state)
            ae.fit(X_train)
            models["ae"] = ae
            features[name] = (ae._mu(X_train), ae._mu(X_test))
        else:  # vae_mu, vae_z: one VAE serves both
            if "vae" not in models:
                models["vae"] = VAE(latent_dim, **vae_params, random_state=random_state)
                models["vae"].fit(X_train)
            features[name] = _vae_features(models["vae"], X_train, X_test, name, random_state)
    return features, models


def compare_features(
    features: Mapping[str, tuple[Any, Any]],
    y_train: Any,
    y_test: Any,
    *,
    tasks: Sequence[str] = ("classification", "clustering"),
    random_state: int | None = 0,
    extractors: Mapping[str, Any] | None = None,
    progress: Callable[[str, str], None] | None = None,
    n_jobs: int | None = None,
    **kwargs: Any,
) -> dict[str, Any]:
    """Run the downstream tasks on every named feature set; return one flat table.

    Supervised tasks train on the training features and score the test features; clustering
    runs on the test features (scored against ``y_test``). Each (feature set, task) pair is
    computed on its own, seeded with ``random_state``, so the scores do not depend on
    ``n_jobs``: only the recorded seconds do.

    Parameters
    ----------
    features : dict of str -> (ndarray of shape (n_train, d), ndarray of shape (n_test, d))
        E.g. the first result of :func:`fit_feature_extractors`. Widths may differ across sets.
    y_train : array-like of shape (n_train,)
    y_test : array-like of shape (n_test,)
    tasks : sequence of str, default=("classification", "clustering")
        Among "classification", "regression" and "clustering"; regression runs only when
        asked for (a continuous target).
    random_state : int or None, default=0
        Passed to every task.
    extractors : dict, optional
        The fitted models from :func:`fit_feature_extractors`; their settings go into the
        protocol (``"extractors"``), so that the table says what produced each feature set.
    progress : callable, optional
        Called as ``progress(name, task)`` after each feature set × task is scored (e.g. to
        advance a progress bar: on MNIST one pair can take minutes). With ``n_jobs`` > 1 the
        calls come in the order the pairs finish.
    n_jobs : int or None, default=None
        How many (feature set, task) pairs are scored at once, each in its own worker process
        (joblib's loky backend, which gives each worker ``cpu_count // n_jobs`` BLAS and OpenMP
        threads). None or 1: one after the other in this process; -1: one per CPU core. On
        MNIST most of the work is single-threaded (liblinear, lbfgs under one BLAS thread,
        Ward, HDBSCAN), so this is what puts a second core to use.
    **kwargs
        Options of the task functions, each given to every selected task that accepts it
        (``cv``, ``search_max_samples`` -> supervised; ``methods``, ``max_samples``,
        ``n_clusters`` -> clustering; ``models`` -> classification or regression).

    Returns
    -------
    dict
        ``{"protocol": {...}, "rows": [{"features", "dim", "task", "model", <metric>: value,
        ...}], "summary": [{"features", "dim", "<model> <metric>": value, ...}]}``;
        ``summary`` has one row per feature set with the headline metrics (classification
        accuracy, regression R², clustering accuracy and NMI). JSON-serializable.
    """
    tasks = (tasks,) if isinstance(tasks, str) else tuple(tasks)
    options = _route_options(tasks, kwargs)
    if not features:
        raise ConfigError("features is empty; pass at least one named (F_train, F_test) pair.")
    # Whole-number codes are the caller's to call classes when it asks for these tasks: only
    # fractional values cannot be.
    if (
        any(t in tasks for t in ("classification", "clustering"))
        and np.asarray(y_train).dtype.kind == "f"
        and not is_classification_target(y_train)
    ):
        raise DataError(
            "y_train looks continuous; use tasks=('regression',) or pass integer class labels."
        )
    protocol: dict[str, Any] = {
        "splits": f"{len(y_train)} training rows, {len(y_test)} test rows",
        "feature_sets": {},
        "random_state": random_state,
    }
    if extractors:
        protocol["extractors"] = _describe_extractors(extractors)
    pairs = [(name, task) for name in features for task in tasks]
    results: dict[tuple[str, str], dict[str, Any]] = {}
    for name, task, result in _score_pairs(
        pairs, features, y_train, y_test, random_state, options, n_jobs
    ):
        results[name, task] = result
        if progress is not None:
            progress(name, task)
    rows: list[dict[str, Any]] = []
    for name, task in pairs:  # the table's order, whatever order the pairs finished in
        result = results[name, task]
        protocol.setdefault(task, result["protocol"])
        dim = protocol["feature_sets"][name] = int(np.shape(features[name][1])[1])
        per_model = result["models" if "models" in result else "methods"]
        for model, scores in per_model.items():
            rows.append({"features": name, "dim": dim, "task": task, "model": model, **scores})
    return {"protocol": protocol, "rows": rows, "summary": _summary(rows)}


def _score_pairs(
    pairs: list[tuple[str, str]],
    features: Mapping[str, tuple[Any, Any]],
    y_train: Any,
    y_test: Any,
    random_state: int | None,
    options: dict[str, dict[str, Any]],
    n_jobs: int | None,
) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """``(name, task, result)`` for every pair, as each finishes; in parallel if asked."""
    check_n_jobs(n_jobs)

    def arguments(name: str, task: str) -> tuple[Any, ...]:
        F_train, F_test = features[name]
        return name, task, F_train, F_test, y_train, y_test, random_state, options[task]

    workers = 1 if n_jobs is None else min(effective_n_jobs(n_jobs), len(pairs))
    if workers <= 1:  # no pool to start: score here, in order
        for name, task in pairs:
            yield _score_pair(*arguments(name, task))
        return
    # Pairs are handed out in the caller's order: in a comparison the heaviest (raw inputs) first.
    yield from Parallel(n_jobs=workers, return_as="generator_unordered")(
        delayed(_score_pair)(*arguments(name, task)) for name, task in pairs
    )


def check_n_jobs(n_jobs: Any) -> None:
    """Raise ConfigError unless ``n_jobs`` is None or a non-zero integer (joblib's convention)."""
    if n_jobs is not None and (
        not isinstance(n_jobs, numbers.Integral) or isinstance(n_jobs, bool) or n_jobs == 0
    ):
        raise ConfigError(
            f"n_jobs must be a positive number of worker processes, -1 for one per CPU core, or "
            f"None; got {n_jobs!r}."
        )


def _score_pair(
    name: str,
    task: str,
    F_train: Any,
    F_test: Any,
    y_train: Any,
    y_test: Any,
    random_state: int | None,
    options: dict[str, Any],
) -> tuple[str, str, dict[str, Any]]:
    args = (F_test, y_test) if task == "clustering" else (F_train, y_train, F_test, y_test)
    try:
        return name, task, TASKS[task](*args, random_state=random_state, **options)
    except DataError as exc:  # say which feature set it was
        raise DataError(f"Feature set {name!r}: {exc}") from None


def format_table(
    result: Mapping[str, Any],
    *,
    targets: Mapping[str, Any] | None = None,
    digits: int = 3,
) -> str:
    """Markdown table of a :func:`compare_features` result, with its protocol underneath.

    Parameters
    ----------
    result : dict
        What :func:`compare_features` returned (or the same loaded back from JSON).
    targets : dict, optional
        Minimum values for summary columns, e.g. ``{"logreg accuracy": 0.97}`` (applies to
        every row), or per feature set, ``{"vae_mu": {"logreg accuracy": 0.97}}``. Cells that
        meet a target get ✓; cells that miss it get ✗ and the target, and a line under the
        table lists every miss.
    digits : int, default=3

    Returns
    -------
    str
        Markdown.
    """
    summary = result["summary"]
    columns = list(dict.fromkeys(k for row in summary for k in row if k not in ("features", "dim")))
    lines = [
        "| " + " | ".join(["features", "dim", *columns]) + " |",
        "|" + "---|" * (len(columns) + 2),
    ]
    misses = []
    for row in summary:
        wanted = _targets_for(row["features"], targets or {})
        cells = [_escape(row["features"]), str(row["dim"])]
        for col in columns:
            value = row.get(col)
            cell = "–" if value is None else f"{value:.{digits}f}"
            if col in wanted and value is not None:
                ok = value >= wanted[col]
                cell += " ✓" if ok else f" ✗ (target {wanted[col]:.{digits}f})"
                if not ok:
                    misses.append(f"{row['features']} {col} {value:.{digits}f} < {wanted[col]}")
            cells.append(_escape(cell))
        lines.append("| " + " | ".join(cells) + " |")
    if targets:
        lines += ["", "Targets missed: " + ("; ".join(misses) if misses else "none") + "."]
        unmeasured = _unmeasured(targets, summary, columns)
        if unmeasured:  # a target nobody measured is not a target met
            lines.append("Targets not measured: " + "; ".join(unmeasured) + ".")
    capped = [
        f"{row['features']} {row['model']}"
        for row in result.get("rows", [])
        if row.get("converged") is False
    ]
    if capped:  # their scores stand, but the solver stopped at its iteration cap
        lines += [
            "",
            "Not converged (solver stopped at its iteration cap): " + ", ".join(capped) + ".",
        ]
    lines += ["", "Protocol:", *_protocol_lines(result.get("protocol", {}))]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------- helpers
def _flatten(X: np.ndarray, name: str) -> np.ndarray:
    if X.ndim < 2 or X.shape[0] == 0:
        raise DataError(f"{name} must hold samples along its first axis, got shape {X.shape}.")
    return X.reshape(len(X), -1).astype(np.float32, copy=False)


def _check_latent_dim(k: Any, shape: tuple[int, int], params: Mapping[str, Any]) -> None:
    if not (isinstance(k, numbers.Integral) and 1 <= k <= min(shape)):
        raise ConfigError(
            f"latent_dim must be an integer in [1, {min(shape)}] (PCA needs k <= min(n, d)), "
            f"got {k!r}."
        )
    clash = sorted({"latent_dim", "random_state"} & set(params))
    if clash:
        raise ConfigError(
            f"Pass {' and '.join(clash)} as arguments of fit_feature_extractors, not in "
            "vae_params / ae_params, so that every extractor gets the same value."
        )


def _array(features: Any) -> np.ndarray:
    """scikit-learn's transform as an ndarray, even under a global
    ``set_config(transform_output="pandas")``: the features here are indexed and stacked."""
    return np.asarray(features)


def _vae_features(
    vae: VAE, X_train: np.ndarray, X_test: np.ndarray, name: str, random_state: int | None
) -> tuple[np.ndarray, np.ndarray]:
    if name == "vae_mu":
        return vae._mu(X_train), vae._mu(X_test)
    # Two seeds drawn from random_state, so row i of train and of test get different ε.
    seed_train, seed_test = check_random_state(random_state).randint(0, 2**31 - 1, size=2)
    return (
        vae.encode(X_train, sample=True, random_state=int(seed_train)),
        vae.encode(X_test, sample=True, random_state=int(seed_test)),
    )


def _describe_extractors(models: Mapping[str, Any]) -> dict[str, str]:
    """``repr`` (scikit-learn prints the non-default parameters) plus what fitting saw."""
    described = {}
    for name, model in models.items():
        text = f"{model!r}, fit on the training split only"
        if hasattr(model, "n_epochs_"):
            text += f" ({model.n_epochs_} epoch{'' if model.n_epochs_ == 1 else 's'} run)"
        described[name] = " ".join(text.split())  # long reprs wrap over several lines
    return described


def _route_options(tasks: tuple[str, ...], kwargs: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Give each keyword option to every selected task whose function accepts it."""
    unknown_tasks = [t for t in tasks if t not in TASKS]
    if unknown_tasks or not tasks:
        raise ConfigError(f"tasks must be names from {', '.join(TASKS)}; got {tasks!r}.")
    accepted = {t: set(inspect.signature(TASKS[t]).parameters) for t in tasks}
    options: dict[str, dict[str, Any]] = {t: {} for t in tasks}
    for key, value in kwargs.items():
        takers = [t for t in tasks if key in accepted[t]]
        if not takers:
            raise ConfigError(f"No selected task ({', '.join(tasks)}) takes the option {key!r}.")
        for task in takers:
            options[task][key] = value
    return options


def _summary(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per feature set: ``"<model> <metric>"`` -> value for the headline metrics."""
    summary: dict[str, dict[str, Any]] = {}
    for row in rows:
        entry = summary.setdefault(
            row["features"], {"features": row["features"], "dim": row["dim"]}
        )
        for metric in HEADLINE[row["task"]]:
            entry[f"{row['model']} {metric}"] = row[metric]
    return list(summary.values())


def _targets_for(name: str, targets: Mapping[str, Any]) -> dict[str, float]:
    flat = {k: float(v) for k, v in targets.items() if not isinstance(v, Mapping)}
    return {**flat, **{k: float(v) for k, v in targets.get(name, {}).items()}}


def _unmeasured(
    targets: Mapping[str, Any], summary: list[dict[str, Any]], columns: list[str]
) -> list[str]:
    """Targets that name a column or a feature set that the table does not have."""
    names = {row["features"] for row in summary}
    missing = [k for k, v in targets.items() if not isinstance(v, Mapping) and k not in columns]
    for name, wanted in targets.items():
        if isinstance(wanted, Mapping):
            missing += [f"{name} {k}" for k in wanted if name not in names or k not in columns]
    return missing


def _escape(text: str) -> str:
    # A "|" or a line break in a user-chosen feature-set name would otherwise break the table.
    return " ".join(str(text).split()).replace("|", "\\|")


def _protocol_lines(protocol: Mapping[str, Any], prefix: str = "") -> list[str]:
    lines = []
    for key, value in protocol.items():
        if isinstance(value, Mapping) and key != "grids" and key != "feature_sets":
            lines += _protocol_lines(value, f"{prefix}{key} ")
        elif value is not None:
            lines.append(f"- {prefix}{key}: {value}")
    return lines
