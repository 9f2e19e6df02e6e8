"""The showcase: load -> fit / transform -> evaluation -> plots -> report, one function per command.

- :func:`evaluate_run`: μ(x) of a saved VAE next to raw inputs, PCA and a plain autoencoder of
  the same size and budget, on classification (or regression) and clustering.
- :func:`visualize_run`: latent scatters, reconstructions, loss curves, KL per latent dimension.
- :func:`report_run`: rebuild ``report.html`` from the saved ``results.json`` and figures.
- :func:`demo`: the whole story on scikit-learn's digits, in well under a minute on 2 CPU cores.

Each writes ``results.json``, ``figures/*.png`` and ``report.html`` into its output folder
(:func:`vaekit.report.write_report`) and returns the results as a JSON-able dict, with the
report's path under ``"report"``. Nothing here models or plots by itself: scikit-learn work
lives in :mod:`vaekit.evaluation`, figures in :mod:`vaekit.plots`.
"""

from __future__ import annotations

import json
import math
import os
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from .autoencoder import Autoencoder
from .dataset import quote_names
from .datasets import (
    Dataset,
    align_test_labels,
    check_disjoint,
    count_shared_rows,
    label_columns,
    load_dataset,
    may_share_rows,
    same_data,
)
from .diagnostics import ACTIVE_UNIT_THRESHOLD, active_mask
from .errors import ConfigError, DataError, ModelFileError
from .evaluation import test_elbo
from .jobs import (
    default_output,
    drawn_shape,
    load_run_data,
    model_rows,
    run_summary,
    writable_dir,
)
from .params import check_seed
from .persistence import load_model, remove_new_folders
from .progress import StepProgress, draws_bars
from .report import RESULTS_FILE, rebuild_report, write_report
from .vae import VAE

__all__ = ["demo", "evaluate_run", "report_run", "visualize_run"]

VISUALIZE_METHODS = ("auto", "direct", "tsne", "umap", "all")
TEST_SIZE = 0.25  # evaluate without --test, and the demo: a 75/25 split of DATA
DEMO_LATENT_DIM = 8
# The demo's estimator settings beyond latent size and seed: none, the defaults. A test may
# shorten training through this mapping to exercise the command's output cheaply.
DEMO_PARAMS: dict[str, Any] = {}
# Torch threads while the demo trains its two small MLPs (None: torch's default, one per core).
# Measured, whole demo on the 2-core machine: quiet, 28 s with 1 thread vs 23 s with 2; while
# another job kept both cores busy, 41 s with 1 thread vs 385 s with 2 (the VAE alone: 13 s vs
# 213 s), because torch's OpenMP workers spin-wait for a core. One thread is the safe choice.
DEMO_TORCH_THREADS: int | None = 1
_N_RECONSTRUCTIONS = 20  # inputs shown over their reconstructions
_N_SAMPLES = 64  # draws from the prior shown as an image grid
_SCATTER_POINTS = 2000  # evaluate's latent scatter: t-SNE cost grows super-linearly
_TABLE_ROWS = 2000  # rows for a tabular per-feature reconstruction figure


# ---------------------------------------------------------------------------------- evaluate
def evaluate_run(
    run: str | os.PathLike,
    data: str | os.PathLike,
    *,
    test: str | os.PathLike | None = None,
    out: str | os.PathLike | None = None,
    data_dir: str | os.PathLike | None = None,
    label_column: str | None = None,
    random_state: int = 0,
    n_jobs: int | None = None,
    verbose: bool = False,
    task: str = "auto",
) -> dict[str, Any]:
    """Compare μ(x) of the model in ``run`` with raw inputs, PCA(k) and a plain AE(k).

    The model in ``run`` is loaded, not retrained. PCA(k) and an :class:`~vaekit.Autoencoder`
    with the saved model's architecture, likelihood and training budget (every parameter of
    ``model.get_params()`` that an autoencoder has, seeded with ``random_state``) are fit on the
    training split only. Feature sets: ``raw``, ``pca``, ``ae``, ``vae_mu`` (μ(x)) and
    ``vae_z`` (one draw z ~ q(z | x) per row). A run holding an autoencoder is itself the
    ``ae`` row (no VAE rows). Labels decide the tasks: class labels give classification and
    clustering, a continuous target regression
    (:func:`~vaekit.evaluation.is_classification_target`).

    Parameters
    ----------
    run : path-like
        Model directory written by ``vaekit train`` / :meth:`VAE.save`.
    data : str or path-like
        Training data with labels (dataset name or file; see :func:`~vaekit.datasets.load_dataset`).
    test : str or path-like, optional
        Test data with labels. Without it, ``data`` is split 75/25 with ``random_state``
        (``train_test_split``, stratified by class for a classification target).
    out : path-like, optional
        Output folder: ``results.json``, ``figures/``, ``report.html``; default ``evaluate/``
        in ``run`` (``vaekit report RUN`` rebuilds it there).
    data_dir, label_column
        As for :func:`~vaekit.datasets.load_dataset` (both ``data`` and ``test``);
        ``label_column`` defaults to the column the run was trained with, where a table has
        it (:func:`vaekit.jobs.load_run_data`).
    random_state : int, default=0
        Seeds the split, PCA, the autoencoder, the draw of z and every downstream model.
    n_jobs : int or None, default=None
        (feature set, task) pairs scored at once in worker processes; -1: one per core (see
        :func:`~vaekit.evaluation.compare_features`). The scores do not depend on it.
    verbose : bool, default=False
        Progress on stderr: the baseline autoencoder's epochs, then one step per feature set
        and task.
    task : {"auto", "classification", "regression"}, default="auto"
        What the labels are: classes (classification and clustering scores, a split
        stratified by class) or a quantity (regression). ``auto`` decides from all of DATA's
        labels (:func:`~vaekit.evaluation.is_classification_target`).

    Returns
    -------
    dict
        ``results.json``'s content (``summary``, ``comparison`` with rows and protocol, ...)
        plus ``"report"``, the path of ``report.html``.
    """
    from .evaluation.compare import check_n_jobs

    tic = time.perf_counter()
    check_n_jobs(n_jobs)
    check_seed("random_state", random_state)
    check_task(task)
    model = load_model(run)
    # Everything a user can get wrong is checked before the output folder is created.
    train_ds, arrays, split, classes = _evaluation_data(
        model, run, data, test, data_dir, label_column, random_state, task
    )
    X_train, X_test, y_train, y_test = arrays
    tasks = ("classification", "clustering") if classes else ("regression",)
    with output_folder(default_output(run, "evaluate") if out is None else out) as out_dir:
        timings: dict[str, float] = {}
        with _one_blas_thread():
            with _timed(timings, "extractors_fit_seconds"):
                features, extractors = _feature_sets(model, X_train, X_test, random_state, verbose)
            steps = len(features) * len(tasks)
            with (
                _timed(timings, "comparison_seconds"),
                StepProgress("evaluate", steps, verbose) as progress,
            ):
                comparison = _compare(
                    features, y_train, y_test, tasks, extractors, random_state,
                    lambda name, task: progress.advance(f"{name}: {task}"), n_jobs,
                )  # fmt: skip
        run_data = _run_data(run)
        protocol = comparison["protocol"]
        protocol["split"] = split
        protocol.setdefault("extractors", {})[_model_key(model)] = (
            # scikit-learn's repr: the parameters that differ from the defaults, all of them.
            f"{' '.join(repr(model).split())} loaded from {run}, not "
            f"retrained (trained on {run_data[0] or 'data not recorded'}, "
            f"{len(model.history_)} epochs)"
        )
        scored = test if test is not None else data
        count = _training_rows_counter(model, run, run_data, scored, X_test, data_dir)
        leak = _leak_note(run, run_data, scored, count)
        notes = [leak, _other_data_note(run, run_data, data, len(X_train))]
        if any(notes):
            protocol["note"] = " ".join(note for note in notes if note)

        figures: dict[str, Any] = {}
        captions: dict[str, dict[str, str]] = {}
        what = f"{_model_label(model)} of the test split"
        Z_test = features["ae" if isinstance(model, Autoencoder) else "vae_mu"][1]
        _add_scatter(
            figures, captions, Z_test, y_test, train_ds.classes, random_state, _SCATTER_POINTS,
            "auto", what,
        )  # fmt: skip
        if model.history_:
            _add(figures, captions, f"loss_{_model_key(model)}", _loss(model, f"model in {run}"))
        if "ae" in extractors:
            _add(figures, captions, "loss_ae_baseline", _loss(extractors["ae"], "baseline AE"))
        results = {
            "title": f"vaekit evaluate: {Path(run).name} on {train_ds.name}",
            "summary": comparison["summary"],
            "comparison": {"rows": comparison["rows"], "protocol": protocol},
            "run": str(run),
            "data": str(data),
            "test": None if test is None else str(test),
            "tasks": list(tasks),
            "n_train": len(y_train),
            "n_test": len(y_test),
            "latent_dim": model.latent_dim,
            "parameters": {
                _model_key(model): _parameters(model),
                **({"ae_baseline": _parameters(extractors["ae"])} if "ae" in extractors else {}),
            },
            "timings": {**timings, "total_seconds": round(time.perf_counter() - tic, 2)},
            "figures": captions,
        }
        return _write(out_dir, results, figures)


def _evaluation_data(
    model: VAE | Autoencoder,
    run: str | os.PathLike,
    data: str | os.PathLike,
    test: str | os.PathLike | None,
    data_dir: str | os.PathLike | None,
    label_column: str | None,
    random_state: int,
    task: str,
) -> tuple[Dataset, tuple[np.ndarray, ...], str, bool]:
    """The labelled training data, the four split arrays, how they were split, and whether
    the labels are classes (decided once, on all of DATA's labels)."""
    if test is not None:
        check_disjoint(data, test)
    data_labels, test_labels = label_columns(data, test, label_column)
    train_ds = _labelled(
        load_run_data(run, data, data_dir=data_dir, label_column=data_labels), "DATA"
    )
    X = model_rows(model, train_ds, run)
    classes = labels_are_classes(task, train_ds)
    if test is not None:
        test_ds = _labelled(
            load_run_data(run, test, data_dir=data_dir, label_column=test_labels), "--test"
        )
        y_test = align_test_labels(train_ds, test_ds)
        arrays = (X, model_rows(model, test_ds, run), train_ds.y, y_test)
        return train_ds, arrays, f"train: {train_ds.name}, test: {test_ds.name}", classes
    from sklearn.model_selection import train_test_split

    stratified = classes
    if stratified:
        check_stratifiable(train_ds)
    try:
        arrays = train_test_split(
            X,
            train_ds.y,
            test_size=TEST_SIZE,
            stratify=train_ds.y if stratified else None,
            random_state=random_state,
        )
    except ValueError:  # too few rows for a split at all
        raise DataError(
            f"{train_ds.name} has too few rows ({len(X)}) for a 75/25 split; pass a larger "
            "dataset, or a separate test set with --test."
        ) from None
    split = f"{train_ds.name}: 75/25 train_test_split, random_state={random_state}" + (
        ", stratified by class" if stratified else ""
    )
    return train_ds, tuple(arrays), split, classes


def _compare(
    features: dict[str, tuple[np.ndarray, np.ndarray]],
    y_train: np.ndarray,
    y_test: np.ndarray,
    tasks: tuple[str, ...],
    extractors: dict[str, Any],
    random_state: int,
    progress: Callable[[str, str], None] | None = None,
    n_jobs: int | None = None,
) -> dict[str, Any]:
    """:func:`~vaekit.evaluation.compare_features` with the evaluation defaults."""
    from .evaluation import compare_features

    return compare_features(
        features,
        y_train,
        y_test,
        tasks=tasks,
        random_state=random_state,
        extractors=extractors,
        progress=progress,
        n_jobs=n_jobs,
    )


def _feature_sets(
    model: VAE | Autoencoder,
    X_train: np.ndarray,
    X_test: np.ndarray,
    random_state: int,
    verbose: bool = False,
) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], dict[str, Any]]:
    """raw, PCA(k) and a fresh AE(k) shaped like ``model``; μ(x) and z from ``model`` as is."""
    from .evaluation import fit_feature_extractors

    n, d = len(X_train), math.prod(X_train.shape[1:])
    if model.latent_dim > min(n, d):
        raise ConfigError(
            f"The model has a latent size of {model.latent_dim}, but PCA of {n} training rows "
            f"of {d} features has at most {min(n, d)} components, so the comparison at the same "
            f"size cannot be made; train the model with --latent-dim {min(n, d)} or less."
        )
    include = ("raw", "pca") if isinstance(model, Autoencoder) else ("raw", "pca", "ae")
    # Everything the saved model was built and trained with, except what every extractor must
    # share (latent size, seed: passed separately) and the progress bar.
    params = {
        k: v
        for k, v in model.get_params().items()
        if k not in ("latent_dim", "random_state", "verbose")
    }
    # The AE's epochs as a bar, not as a line each where stderr is a log: the job's steps are.
    params["verbose"] = verbose and draws_bars()
    if model.likelihood_ != "gaussian":  # ignored by fits before it was refused: drop it
        params["output_variance"] = "learned"
    features, extractors = fit_feature_extractors(
        X_train,
        X_test,
        latent_dim=model.latent_dim,
        vae_params=params,
        random_state=random_state,
        include=include,
        standardize=model.likelihood_ == "gaussian",  # the inputs as the model saw them
    )
    if isinstance(model, Autoencoder):
        features["ae"] = (model._mu(X_train), model._mu(X_test))
    else:
        features["vae_mu"] = (model._mu(X_train), model._mu(X_test))
        # Two seeds drawn from random_state, so row i of train and of test get different ε
        # (as fit_feature_extractors does for a VAE it fits itself).
        seeds = np.random.RandomState(random_state).randint(0, 2**31 - 1, size=2)
        features["vae_z"] = (
            model.encode(X_train, sample=True, random_state=int(seeds[0])),
            model.encode(X_test, sample=True, random_state=int(seeds[1])),
        )
    return features, extractors


# --------------------------------------------------------------------------------- visualize
def visualize_run(
    run: str | os.PathLike,
    data: str | os.PathLike,
    *,
    out: str | os.PathLike | None = None,
    method: str = "auto",
    data_dir: str | os.PathLike | None = None,
    label_column: str | None = None,
    max_points: int = 5000,
    random_state: int = 0,
) -> dict[str, Any]:
    """Figures of the model in ``run`` on ``data``: latent space, reconstructions, training.

    - Latent scatter of μ(x), coloured by label when ``data`` has labels. ``method``:
      ``"auto"`` plots the latent coordinates directly when the latent space is 2-D, else t-SNE;
      ``"direct"`` needs a 2-D latent space; ``"tsne"``, ``"umap"``; ``"all"`` gives the direct
      plot (2-D latents only), t-SNE and UMAP.
    - Inputs over reconstructions for images (``Dataset.image_shape`` or the model's image
      input shape), per-feature reconstruction error for tables; samples from the prior for an
      image VAE.
    - Loss curves from ``model.history_``; for a VAE, the KL per latent dimension (the last
      epoch's validation ``val_kl_per_dim`` when recorded, else the mean KL over ``data``) with
      the active units (Burda et al. 2016: Cov_x(μ_u(x)) > 0.01) marked.

    At most ``max_points`` rows of ``data`` (a seeded uniform subsample) are used. The
    figures, ``results.json`` and ``report.html`` go to ``out``, by default ``visualize/`` in
    ``run`` (``vaekit report RUN`` rebuilds it there).

    Returns
    -------
    dict
        ``results.json``'s content plus ``"report"``.
    """
    if method not in VISUALIZE_METHODS:
        raise ConfigError(f"method must be one of {', '.join(VISUALIZE_METHODS)}; got {method!r}.")
    if not isinstance(max_points, int) or max_points < 3:
        raise ConfigError(f"max_points must be an integer >= 3; got {max_points!r}.")
    check_seed("random_state", random_state)
    model = load_model(run)
    methods = _embed_methods(method, model.latent_dim, run)
    ds = load_run_data(run, data, data_dir=data_dir, label_column=label_column)
    X_all = model_rows(model, ds, run)
    rows = _subsample(len(X_all), max_points, random_state)
    X = X_all[rows]
    y = None if ds.y is None else ds.y[rows]
    with output_folder(default_output(run, "visualize") if out is None else out) as out_dir:
        Z = model._mu(X)
        figures: dict[str, Any] = {}
        captions: dict[str, dict[str, str]] = {}
        what = f"{_model_label(model)} of {ds.name}"
        for m in methods:
            _add_scatter(figures, captions, Z, y, ds.classes, random_state, max_points, m, what)
        image_shape = drawn_shape(model, run, ds)
        _add_reconstructions(figures, captions, model, X, image_shape, ds.feature_names)
        if isinstance(model, VAE) and image_shape is not None:
            _add_samples(figures, captions, model, image_shape, random_state)
        if model.history_:
            _add(figures, captions, "loss_curves", _loss(model, f"model in {Path(run).name}"))
        summary: dict[str, Any] = {
            "model": type(model).__name__,
            "latent_dim": model.latent_dim,
            "data": ds.name,
            "rows_used": len(X),
            "rows_in_data": len(X_all),
            "scatter": ", ".join(methods),
            "labels": "none" if y is None else "yes",
            "epochs_run": len(model.history_),
        }
        if isinstance(model, VAE):
            summary.update(_add_kl(figures, captions, model, Z, X, f"{len(X)} rows of {ds.name}"))
        results = {
            "title": f"vaekit visualize: {Path(run).name} on {ds.name}",
            "summary": summary,
            "run": str(run),
            "data": str(data),
            "random_state": random_state,
            "parameters": _parameters(model),
            "figures": captions,
        }
        return _write(out_dir, results, figures)


def _embed_methods(method: str, latent_dim: int, run: str | os.PathLike) -> list[str]:
    if method == "direct" and latent_dim != 2:
        raise ConfigError(
            f"method='direct' plots the latent coordinates themselves, so it needs a 2-D latent "
            f"space, but the model in {run} has {latent_dim} dimensions; use method='tsne' or "
            "method='umap'."
        )
    if method == "auto":
        return ["direct" if latent_dim == 2 else "tsne"]
    if method == "all":
        return (["direct"] if latent_dim == 2 else []) + ["tsne", "umap"]
    return [method]


# ------------------------------------------------------------------------------------ report
# How far `vaekit report DIR` looks for output folders: DIR/runs/RUN/evaluate is 3 levels down.
# Bounded so that a report run on a home folder does not walk the whole disk.
REPORT_SEARCH_DEPTH = 3


def _output_folders(directory: Path, depth: int) -> list[Path]:
    """``directory`` if it holds results.json, else the folders below it that do (in sorted
    order, not looking inside one that does, at most ``depth`` levels down)."""
    if (directory / RESULTS_FILE).is_file():
        return [directory]
    if depth == 0:
        return []
    try:
        children = sorted(p for p in directory.iterdir() if p.is_dir() and p.name[:1] != ".")
    except OSError:  # an unreadable folder below DIR holds nothing we can rebuild
        return []
    return [found for child in children for found in _output_folders(child, depth - 1)]


def report_run(path: str | os.PathLike) -> dict[str, Any]:
    """Rebuild ``report.html`` from saved ``results.json`` and ``figures/``; nothing is rerun.

    Parameters
    ----------
    path : path-like
        An output folder of ``evaluate`` / ``visualize`` / ``sweep`` / ``demo``, or a folder
        holding such folders up to :data:`REPORT_SEARCH_DEPTH` levels down (a run directory
        with ``RUN/evaluate/``, a folder of runs, a project with ``runs/RUN/evaluate/``): each
        one found is rebuilt. Hidden folders are skipped.

    Returns
    -------
    dict
        ``{"path", "reports": [paths], "report": the first, "failed": {folder: error}}``.
        Under a folder of several outputs, one that cannot be rebuilt (a damaged
        ``results.json``, a missing figure) does not stop the others: it is listed in
        ``failed``.

    Raises
    ------
    ModelFileError
        When no report could be rebuilt (for a single output folder: its error).
    """
    directory = Path(path).expanduser()
    if not directory.is_dir():
        raise ConfigError(
            f"{directory} is not a folder; pass a folder written by vaekit evaluate, visualize, "
            "sweep or demo (--out)."
        )
    targets = _output_folders(directory, REPORT_SEARCH_DEPTH)
    if not targets:
        raise ModelFileError(
            f"{directory} has no {RESULTS_FILE}, and no folder in it (down to "
            f"{REPORT_SEARCH_DEPTH} levels) has one, so there is no report to rebuild; write "
            "one with vaekit evaluate, visualize, sweep or demo --out DIR first."
        )
    if len(targets) == 1:
        report = str(rebuild_report(targets[0]))
        return {"path": str(directory), "reports": [report], "report": report, "failed": {}}
    reports, failed = [], {}
    for target in targets:
        try:
            reports.append(str(rebuild_report(target)))
        except ModelFileError as exc:
            failed[str(target)] = str(exc)
    if not reports:
        raise ModelFileError(
            f"None of the {len(targets)} reports under {directory} could be rebuilt; the "
            f"first: {next(iter(failed.values()))}"
        )
    return {"path": str(directory), "reports": reports, "report": reports[0], "failed": failed}


# -------------------------------------------------------------------------------------- demo
def demo(
    out: str | os.PathLike = "vaekit-demo", *, seed: int = 0, verbose: bool = False
) -> dict[str, Any]:
    """The showcase on scikit-learn's digits: AE and VAE of latent size 8 next to raw and PCA(8).

    Digits (1797 8x8 images, 64 features in [0, 1]) are split 75/25, stratified, with ``seed``.
    A :class:`~vaekit.VAE` and an :class:`~vaekit.Autoencoder` with default settings (same
    networks, same budget) are fit on the training split; raw pixels, PCA(8), AE codes, VAE μ(x)
    and VAE z ~ q(z | x) are compared on classification (logistic regression, linear SVM, kNN,
    random forest, hyper-parameters by CV on the training split) and clustering of the 450 test
    rows (k-means, Ward, HDBSCAN). Figures: t-SNE of the test μ(x) by digit, test digits over
    their reconstructions, samples from the prior, loss curves, KL per latent dimension.

    Parameters
    ----------
    out : path-like, default="vaekit-demo"
        Output folder: ``results.json``, ``figures/``, ``report.html``.
    seed : int, default=0
        Seeds the split, both networks, PCA, z and every downstream model.
    verbose : bool, default=False
        Progress bars while training.

    Returns
    -------
    dict
        ``results.json``'s content (``summary`` first, then ``comparison``) plus ``"report"``.
    """
    from sklearn.model_selection import train_test_split

    tic = time.perf_counter()
    timings: dict[str, float] = {}
    with output_folder(out) as out_dir:
        ds = load_dataset("digits")
        X_train, X_test, y_train, y_test = train_test_split(
            ds.X, ds.y, test_size=TEST_SIZE, stratify=ds.y, random_state=seed
        )
        k = DEMO_LATENT_DIM
        # On a terminal the two trainings draw their bars; in a log, a line per step instead
        # of one per epoch (two hundred of them).
        bars = verbose and draws_bars()
        steps = StepProgress("demo", 4, verbose and not bars)
        with _torch_threads(DEMO_TORCH_THREADS), _one_blas_thread():
            with _timed(timings, "vae_fit_seconds"):
                vae = VAE(k, **DEMO_PARAMS, random_state=seed, verbose=bars).fit(X_train)
            steps.advance(f"VAE trained, {vae.n_epochs_} epochs")
            with _timed(timings, "ae_and_pca_fit_seconds"):
                features, extractors = _feature_sets(vae, X_train, X_test, seed, verbose)
            steps.advance("AE and PCA fitted")
            with _timed(timings, "comparison_seconds"):
                comparison = _compare(
                    features, y_train, y_test, ("classification", "clustering"), extractors, seed
                )
            steps.advance("feature sets compared")
        ae = extractors["ae"]
        protocol = comparison["protocol"]
        protocol["split"] = (
            f"digits: 75/25 train_test_split stratified by digit, random_state={seed} "
            f"({len(y_train)} training rows, {len(y_test)} test rows)"
        )
        protocol["extractors"]["vae"] = f"{vae!r}, fit on the training split only"
        with _timed(timings, "figures_seconds"):
            figures, captions, kl = _demo_figures(vae, ae, features, X_test, y_test, ds, seed)
        steps.advance("figures drawn")
        timings["total_seconds"] = round(time.perf_counter() - tic, 2)
        results = {
            "title": f"vaekit demo: digits, latent size {k}",
            "summary": comparison["summary"],
            "comparison": {"rows": comparison["rows"], "protocol": protocol},
            "dataset": "digits",
            "split": protocol["split"],
            "n_train": len(y_train),
            "n_test": len(y_test),
            "latent_dim": k,
            "models": {
                "vae": {
                    "epochs_run": vae.n_epochs_,
                    "fit_seconds": timings["vae_fit_seconds"],
                    # Independent draws per row, as VAE.score: shared draws bias a mean.
                    "test_neg_elbo": round(-test_elbo(vae, X_test)["elbo"], 3),
                    **kl,
                },
                "ae": {
                    "epochs_run": ae.n_epochs_,
                    # Its epochs alone: the timed block also fits PCA and encodes the splits.
                    "fit_seconds": round(sum(h["seconds"] for h in ae.history_), 2),
                    "test_recon_nll": round(-float(np.mean(ae.score_samples(X_test))), 3),
                },
            },
            "parameters": {"vae": _parameters(vae), "ae": _parameters(ae)},
            "timings": timings,
            "figures": captions,
        }
        return _write(out_dir, results, figures)


def _demo_figures(
    vae: VAE,
    ae: Autoencoder,
    features: dict[str, tuple[np.ndarray, np.ndarray]],
    X_test: np.ndarray,
    y_test: np.ndarray,
    ds: Dataset,
    seed: int,
) -> tuple[dict[str, bytes], dict[str, dict[str, str]], dict[str, Any]]:
    figures: dict[str, bytes] = {}
    captions: dict[str, dict[str, str]] = {}
    Z_test = features["vae_mu"][1]
    _add_scatter(
        figures, captions, Z_test, y_test, ds.classes, seed, len(Z_test), "tsne",
        "VAE μ(x) of the test digits",
    )  # fmt: skip
    _add_reconstructions(figures, captions, vae, X_test, ds.image_shape, None)
    _add_samples(figures, captions, vae, ds.image_shape, seed)
    _add(figures, captions, "loss_vae", _loss(vae, "VAE"))
    _add(figures, captions, "loss_ae", _loss(ae, "AE"))
    kl = _add_kl(figures, captions, vae, Z_test, X_test, "the test split")
    return figures, captions, kl


# ---------------------------------------------------------------------------------- figures
def _add(figures: dict, captions: dict, name: str, item: tuple[Any, str, str]) -> None:
    """Render ``item``'s figure to PNG now (so timings include it) and record its caption."""
    from .plots import figure_to_png

    figure, caption, section = item
    figures[name] = figure_to_png(figure)
    captions[name] = {"caption": caption, "section": section}


def _loss(model: VAE | Autoencoder, who: str) -> tuple[Any, str, str]:
    from .plots import loss_curves

    name = type(model).__name__
    caption = f"Training curves of the {who} ({name}, {len(model.history_)} epochs)"
    return loss_curves(model.history_, title=f"{who}: training"), caption, "training"


def _add_scatter(
    figures: dict,
    captions: dict,
    Z: np.ndarray,
    y: np.ndarray | None,
    classes: list[str] | None,
    random_state: int,
    max_points: int,
    method: str,
    what: str,
) -> None:
    from .plots import embed_2d, latent_scatter

    if method == "auto":
        method = "direct" if Z.shape[1] == 2 else "tsne"
    Z2, idx = embed_2d(Z, method, random_state=random_state, max_points=max_points)
    label = {"direct": "latent dimension", "tsne": "t-SNE", "umap": "UMAP"}[method]
    how = {"direct": "latent coordinates", "tsne": "t-SNE", "umap": "UMAP"}[method]
    figure = latent_scatter(
        Z2,
        None if y is None else y[idx],
        title=f"{what} ({how})",
        class_names=classes,
        axis_labels=(f"{label} 1", f"{label} 2"),
    )
    coloured = "" if y is None else ", coloured by label"
    caption = f"{what}: {how} of {len(idx)} points{coloured}"
    _add(figures, captions, f"latent_{method}", (figure, caption, "latent"))


def _add_reconstructions(
    figures: dict,
    captions: dict,
    model: VAE | Autoencoder,
    X: np.ndarray,
    image_shape: tuple[int, ...] | None,
    feature_names: list[str] | None,
) -> None:
    from .plots import feature_reconstruction, reconstruction_grid

    at = "z = μ(x)" if isinstance(model, VAE) else "the encoder's code"
    if image_shape is not None:
        # Rows spread over X, not its first ones: a file sorted by class (Olivetti's faces,
        # ten per person) would show two people.
        spread = np.unique(np.linspace(0, len(X) - 1, min(len(X), _N_RECONSTRUCTIONS)).round())
        shown = X[spread.astype(int)]
        figure = reconstruction_grid(
            shown, model.reconstruct(shown), image_shape, n=len(shown), per_row=10
        )
        caption = (
            f"{len(shown)} inputs spread over the data (top) and their reconstructions at {at} "
            "(bottom)"
        )
    else:
        shown = X[:_TABLE_ROWS].reshape(min(len(X), _TABLE_ROWS), -1)
        X_hat = model.reconstruct(X[:_TABLE_ROWS]).reshape(len(shown), -1)
        names = feature_names if feature_names and len(feature_names) == shown.shape[1] else None
        figure = feature_reconstruction(shown, X_hat, names)
        caption = f"Reconstruction error per feature on {len(shown)} rows, at {at}"
    _add(figures, captions, "reconstructions", (figure, caption, "samples"))


def _add_samples(
    figures: dict, captions: dict, vae: VAE, image_shape: tuple[int, ...], random_state: int
) -> None:
    from .plots import image_grid

    samples = vae.sample(_N_SAMPLES, random_state=random_state)
    figure = image_grid(samples, image_shape=image_shape, title="Samples from the prior")
    caption = f"Decoder means of {_N_SAMPLES} draws z ~ N(0, I)"
    _add(figures, captions, "samples_prior", (figure, caption, "samples"))


def _add_kl(
    figures: dict, captions: dict, vae: VAE, Z: np.ndarray, X: np.ndarray, rows: str
) -> dict[str, Any]:
    """KL per latent dimension with active units marked; returns what it found.

    The KL is fit's (its validation split) where the model has it; the active units are
    measured on Z, μ(x) of the rows this report shows, which ``rows`` names.
    """
    from .plots import kl_per_dimension

    if getattr(vae, "kl_per_dim_", None) is not None:
        # Measured by fit with the weights it kept: after early stopping those of the best
        # epoch, not the last one that the history's final record describes.
        kl = np.asarray(vae.kl_per_dim_, dtype=float)
        held_out = vae.history_ and vae.history_[-1].get("val_kl_per_dim")
        source = f"{'validation split' if held_out else 'training rows'}, the kept weights"
    else:  # a model saved before fit measured it
        mu, logvar = vae.encode(X)
        # KL(N(μ, σ²) || N(0, 1)) per dimension, Kingma & Welling 2014, App. B; mean over rows.
        kl = (0.5 * (mu**2 + np.exp(logvar) - 1.0 - logvar)).mean(axis=0, dtype=np.float64)
        source = f"mean over {len(X)} rows"
    active = active_mask(Z)
    figure = kl_per_dimension(kl, active=active, criterion=f"Var μ > {ACTIVE_UNIT_THRESHOLD:g}")
    caption = (
        f"KL(q(z_u|x) || p(z_u)) per dimension ({source}); green: active units on {rows}, "
        f"Cov_x(μ_u(x)) > {ACTIVE_UNIT_THRESHOLD} (Burda et al. 2016)"
    )
    _add(figures, captions, "kl_per_dimension", (figure, caption, "training"))
    return {
        "active_units": int(active.sum()),
        "active_units_source": rows,
        "kl_per_dim": [round(float(v), 4) for v in kl],
        "kl_source": source,
    }


# ---------------------------------------------------------------------------------- helpers
def _write(out: Path, results: dict[str, Any], figures: dict[str, Any]) -> dict[str, Any]:
    """write_report, then return exactly what results.json holds, plus the report's path."""
    report = write_report(out, results, figures)
    saved = json.loads((out / RESULTS_FILE).read_text(encoding="utf-8"))
    saved["report"] = str(report)
    return saved


@contextmanager
def output_folder(path: str | os.PathLike) -> Iterator[Path]:
    """Create (and prove writable) the output folder; remove it again if the work fails early.

    Only a folder this call created, and only while still empty: nothing a user had is touched.
    """
    path = Path(path).expanduser()
    created = writable_dir(path, "output folder")  # the folders it made, deepest first
    try:
        yield path
    except BaseException:
        remove_new_folders(created)
        raise


@contextmanager
def _timed(timings: dict[str, float], key: str) -> Iterator[None]:
    tic = time.perf_counter()
    yield
    timings[key] = round(time.perf_counter() - tic, 2)


@contextmanager
def _torch_threads(n: int | None) -> Iterator[None]:
    """Torch's intra-op thread count set to ``n`` for the block (None: unchanged)."""
    import torch

    before = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@contextmanager
def _one_blas_thread() -> Iterator[None]:
    """One BLAS thread for the scikit-learn work (see vaekit.evaluation.downstream).

    Measured on the demo's comparison (5 feature sets, 2 cores busy with another job): 6 s with
    one BLAS thread, 18 s without the limit.
    """
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1, user_api="blas"):
        yield


def _labelled(ds: Dataset, what: str) -> Dataset:
    if ds.y is None:
        raise DataError(
            f"{what} ({ds.name}) has no labels, and evaluate scores features against labels; "
            "use a labelled dataset, a CSV / Parquet file with --label-column, or an .npz with "
            "the labels under y."
        )
    # Before any extractor is trained.
    present = np.unique(ds.y)
    if len(present) == 1 and _is_classification(ds.y, ds.classes):
        code = present[0].item()
        name = ds.classes[code] if ds.classes and isinstance(code, int) else code
        raise DataError(
            f"{what} ({ds.name}) holds a single class ({name!r}), and classification and "
            "clustering scores need at least two; pass data with two or more classes."
        )
    return ds


TASKS = ("auto", "classification", "regression")


def check_task(task: Any) -> None:
    """A ConfigError unless ``task`` is one of :data:`TASKS`."""
    if task not in TASKS:
        raise ConfigError(f"task must be one of {', '.join(TASKS)}; got {task!r}.")


def labels_are_classes(task: str, ds: Dataset) -> bool:
    """Whether ``ds``'s labels are classes under ``task``: as asked, or for ``auto`` as all of
    them look (one decision for the split and the scores of a job)."""
    if task == "classification":
        return True
    if task == "regression":
        if ds.classes is not None:
            raise DataError(
                f"--task regression needs numeric labels, but {ds.name}'s are class names "
                f"({quote_names(ds.classes, 5)})."
            )
        return False
    return _is_classification(ds.y, ds.classes)


def _is_classification(y: np.ndarray, class_names: list[str] | None) -> bool:
    from .evaluation import is_classification_target

    return is_classification_target(y, named=class_names is not None)


def check_stratifiable(ds: Dataset) -> None:
    """A stratified 75/25 split needs 2 rows per class and a test part with every class."""
    values, counts = np.unique(ds.y, return_counts=True)
    if counts.min() < 2:
        code = values[np.argmin(counts)].item()
        name = ds.classes[code] if ds.classes and isinstance(code, int) else code
        raise DataError(
            f"Cannot split {ds.name} 75/25 stratified by class, because class {name!r} has a "
            "single row; pass a separate test set with --test."
        )
    if math.ceil(len(ds.y) * TEST_SIZE) < len(values):
        raise DataError(
            f"Cannot split {ds.name} 75/25 stratified by class: {len(ds.y)} rows are too few "
            f"for a test part holding each of its {len(values)} classes; pass a separate test "
            "set with --test."
        )


def _subsample(n: int, max_points: int, random_state: int) -> np.ndarray:
    if n <= max_points:
        return np.arange(n)
    return np.sort(np.random.default_rng(random_state).choice(n, max_points, replace=False))


def _parameters(model: VAE | Autoencoder) -> dict[str, Any]:
    """The estimator's constructor parameters, so a report says how its model was trained.

    ``verbose`` is left out (it changes nothing learned); a value JSON cannot hold (a
    ``RandomState`` passed as ``random_state``) is recorded as its repr.
    """
    plain = (str, int, float, bool, tuple, list, type(None))
    return {
        name: value if isinstance(value, plain) else repr(value)
        for name, value in model.get_params().items()
        if name != "verbose"
    }


def _model_key(model: VAE | Autoencoder) -> str:
    return "vae" if isinstance(model, VAE) else "ae"


def _model_label(model: VAE | Autoencoder) -> str:
    return "VAE μ(x)" if isinstance(model, VAE) else "AE codes"


def _run_data(run: str | os.PathLike) -> tuple[str | None, str | None]:
    """What ``vaekit train`` recorded as the run's data, and that file's absolute path (None
    for a named dataset, or a run recorded before paths were)."""
    summary = run_summary(run)
    data, path = summary.get("data"), summary.get("data_path")
    return (None if data is None else str(data)), (None if path is None else str(path))


def _other_data_note(
    run: str | os.PathLike,
    run_data: tuple[str | None, str | None],
    data: str | os.PathLike,
    n_train: int,
) -> str | None:
    """A note when the model in ``run`` learnt from other rows than those PCA and the AE are
    fit on here (DATA's training split): the comparison then mixes data with method."""
    name, path = run_data
    # Splits of one dataset (digits:train and digits) are the leak note's to tell apart.
    if name is None or may_share_rows(path or name, data):
        return None
    rows = run_summary(run).get("n_samples")
    counted = f"{rows:,} rows of " if isinstance(rows, int) else ""
    return (
        f"The model in {run} learnt from {counted}{name}, and PCA and the AE here from the "
        f"{n_train:,} training rows of {data}: a gap between μ(x) and them may come from the "
        "data as much as from the method; pass the run's training data as DATA to compare "
        "like with like."
    )


def _leak_note(
    run: str | os.PathLike,
    run_data: tuple[str | None, str | None],
    scored: str | os.PathLike,
    count_shared: Callable[[], int | None] | None = None,
) -> str | None:
    """A warning when the model in ``run`` was trained on rows scored here as test.

    Where the names say it may have been (:func:`~vaekit.datasets.may_share_rows`),
    ``count_shared`` is asked how many test rows the run's training data holds (None: it
    cannot tell): the 75/25 split of ``digits`` with seed 0 is ``digits:train`` /
    ``digits:test``, which share no row though the names overlap.
    """
    data, path = run_data
    if data is None or not may_share_rows(path or data, scored):
        return None
    shared = None if count_shared is None else count_shared()
    if shared == 0:
        return None
    rows = "the test rows" if shared is None else f"{shared} of the test rows"
    return (
        f"The model in {run} was trained on {data}, which holds {rows} scored here, so its "
        "rows may be optimistic; pass --test with data it has not seen."
    )


def _training_rows_counter(
    model: VAE | Autoencoder,
    run: str | os.PathLike,
    run_data: tuple[str | None, str | None],
    scored: str | os.PathLike,
    X_test: np.ndarray,
    data_dir: str | os.PathLike | None,
) -> Callable[[], int | None]:
    """How many rows of X_test are in the run's training data, read again (None where it
    cannot be: moved, changed or never recorded)."""

    def count() -> int | None:
        data, path = run_data
        if data is None:
            return None
        if same_data(path or data, scored):  # DATA itself: every row of it was trained on
            return len(X_test)
        try:
            with warnings.catch_warnings():  # said when DATA was read; this is a second look
                warnings.simplefilter("ignore")
                seen = model_rows(model, load_run_data(run, path or data, data_dir=data_dir), run)
        except (DataError, ConfigError, OSError):
            return None
        return count_shared_rows(X_test, seen)

    return count
