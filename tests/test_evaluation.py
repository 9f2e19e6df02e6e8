"""The evaluation protocol: downstream scores, clustering scores and the comparison table."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
from sklearn.datasets import load_digits, make_blobs
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.svm import LinearSVC
from threadpoolctl import threadpool_limits

import vaekit.evaluation.downstream as downstream
from vaekit.errors import ConfigError, DataError
from vaekit.evaluation import (
    classification_scores,
    cluster_accuracy,
    clustering_scores,
    compare_features,
    fit_feature_extractors,
    format_table,
    is_classification_target,
    regression_scores,
)

FAST_MODELS = ("logreg", "knn")  # the two cheap classifiers, where a test needs no others


@pytest.fixture(autouse=True, scope="module")
def _one_blas_thread():
    # On a busy 2-core machine OpenBLAS's spinning worker threads made these small products
    # 4-40x slower (measured); one thread keeps this file's runtime steady.
    with threadpool_limits(1, user_api="blas"):
        yield


def _blobs(n=300, d=5, centers=3, std=0.5, seed=0):
    X, y = make_blobs(
        n, d, centers=centers, cluster_std=std, center_box=(-10, 10), random_state=seed
    )
    return train_test_split(X, y, test_size=0.5, stratify=y, random_state=seed)


def _without_timings(result: dict) -> dict:
    return {
        name: {k: v for k, v in scores.items() if not k.endswith("seconds")}
        for name, scores in result["models"].items()
    }


# ---------------------------------------------------------------------------- cluster_accuracy
def test_cluster_accuracy_is_one_when_clusters_are_renamed_classes():
    y = np.array([0, 0, 1, 1, 1, 2, 2, 3])
    renamed = np.array([7, 3, 5, 9])[y]
    assert cluster_accuracy(y, renamed) == 1.0
    assert cluster_accuracy(["a", "a", "b"], [1, 1, 0]) == 1.0


def test_cluster_accuracy_is_the_best_one_to_one_matching():
    # Contingency (classes x clusters A, B) = [[4, 3], [3, 0]]. Greedy matching (0->A) gives
    # 4/10, majority vote per cluster (many-to-one) 7/10; the best one-to-one matching is
    # 0->B, 1->A: (3 + 3) / 10.
    y_true = [0] * 7 + [1] * 3
    y_pred = ["A"] * 4 + ["B"] * 3 + ["A"] * 3
    assert cluster_accuracy(y_true, y_pred) == pytest.approx(0.6)


def test_cluster_accuracy_with_more_clusters_than_classes_counts_unmatched_as_errors():
    assert cluster_accuracy([0, 0, 1, 1], [0, 1, 2, 3]) == pytest.approx(0.5)
    assert cluster_accuracy([0, 0, 0, 1, 1, 1], [0, 0, 1, 2, 2, 2]) == pytest.approx(5 / 6)


def test_cluster_accuracy_noise_label_counts_as_error():
    y_true, y_pred = [0, 0, 1, 1], [-1, -1, 0, 0]
    assert cluster_accuracy(y_true, y_pred) == 1.0  # -1 is an ordinary cluster by default
    assert cluster_accuracy(y_true, y_pred, noise_label=-1) == pytest.approx(0.5)
    assert cluster_accuracy(y_true, [-1] * 4, noise_label=-1) == 0.0


# ---------------------------------------------------------------------------- classification
def test_is_classification_target():
    assert is_classification_target(np.array([0, 1, 2, 1]))
    assert is_classification_target(np.array(["cat", "dog"]))
    assert is_classification_target(np.array([0.0, 1.0, 1.0, 2.0]))  # labels read from a CSV
    assert not is_classification_target(np.linspace(0, 1, 10))
    assert not is_classification_target(np.arange(500, dtype=float))  # counts, not classes
    # Whole-number integers: 398 values over 1,200 rows is a quantity (a count, a price); 100
    # codes of 30 rows each are classes (CIFAR-100), and so are named classes however many.
    price = np.random.default_rng(0).integers(0, 400, size=1200)
    assert np.unique(price).size > 350 and not is_classification_target(price)
    assert is_classification_target(np.arange(3000) % 100)
    assert is_classification_target(price, named=True)
    # One rule for whole numbers, stored as integers or as floats (a Parquet double column).
    for y in (price, np.arange(3000) % 100, np.arange(6) % 3):
        assert is_classification_target(y) == is_classification_target(y.astype(float))


def test_classification_on_separated_blobs_is_perfect_and_json_ready():
    F_train, F_test, y_train, y_test = _blobs()
    result = classification_scores(F_train, y_train, F_test, y_test)
    assert set(result["models"]) == {"logreg", "linear_svm", "knn", "random_forest"}
    for name, scores in result["models"].items():
        assert scores["accuracy"] >= 0.98, name
        assert scores["macro_f1"] >= 0.98, name
        grid = downstream.CLASSIFIERS[name][1]
        assert set(scores["params"]) == set(grid)
        assert all(scores["params"][k] in grid[k] for k in grid), "CV picks from the grid"
    assert result["models"]["random_forest"]["cv_accuracy"] is None  # one-point grid: no search
    assert json.loads(json.dumps(result)) == result


def test_linear_svm_uses_the_dual_solver_on_wide_features_only():
    # Measured on MNIST: primal Newton is fast on a 32-d code, dual coordinate descent on pixels.
    wide = downstream.LINEAR_SVM_DUAL_MIN_FEATURES
    assert downstream._linear_svm(0, wide).dual is True
    assert downstream._linear_svm(0, 32).dual is False
    F, y = make_blobs(n_samples=600, n_features=wide, centers=3, random_state=0)
    result = classification_scores(F[:400], y[:400], F[400:], y[400:], models=("linear_svm",))
    assert result["models"]["linear_svm"]["accuracy"] >= 0.98
    assert "dual coordinate descent" in result["protocol"]["solvers"]["linear_svm"]


def test_a_capped_solver_is_reported_not_warned_about(monkeypatch):
    capped = (lambda rs, nj, d: LinearSVC(max_iter=1, random_state=rs), {"C": [0.1, 1.0]})
    monkeypatch.setitem(downstream.CLASSIFIERS, "linear_svm", capped)
    F_train, F_test, y_train, y_test = _blobs(std=3.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)  # one would fail the test
        result = classification_scores(F_train, y_train, F_test, y_test, models=("linear_svm",))
    assert result["models"]["linear_svm"]["converged"] is False


def test_classification_on_noise_is_at_chance():
    rng = np.random.default_rng(0)
    F, y = rng.normal(size=(800, 5)), rng.integers(0, 4, size=800)
    result = classification_scores(F[:400], y[:400], F[400:], y[400:])
    for name, scores in result["models"].items():
        assert abs(scores["accuracy"] - 0.25) < 0.1, (name, scores["accuracy"])


def test_hyper_parameters_are_chosen_on_the_training_split_only(monkeypatch):
    F_train, F_test, y_train, y_test = _blobs(std=3.0)  # overlapping: choices are not trivial
    searched = []
    original_fit = downstream.GridSearchCV.fit

    def spy(self, X, y=None, **params):
        searched.append(np.asarray(X))
        return original_fit(self, X, y, **params)

    monkeypatch.setattr(downstream.GridSearchCV, "fit", spy)
    first = classification_scores(F_train, y_train, F_test, y_test, models=FAST_MODELS)
    # Every searched row is a training row.
    train_rows = {row.tobytes() for row in F_train}
    assert searched and all(row.tobytes() in train_rows for X in searched for row in X)
    # Changing the test split changes test scores at most, never the choices.
    rng = np.random.default_rng(1)
    other = classification_scores(
        F_train, y_train, rng.normal(size=F_test.shape), rng.permutation(y_test), models=FAST_MODELS
    )
    for name in FAST_MODELS:
        assert other["models"][name]["params"] == first["models"][name]["params"]
        assert other["models"][name]["cv_accuracy"] == first["models"][name]["cv_accuracy"]


def test_features_are_standardized_so_column_scales_do_not_matter():
    F_train, F_test, y_train, y_test = _blobs(std=3.0)
    scale = np.array([1e4, 1e-4, 1.0, 30.0, 0.01])
    plain = classification_scores(F_train, y_train, F_test, y_test, models=FAST_MODELS)
    scaled = classification_scores(
        F_train * scale, y_train, F_test * scale, y_test, models=FAST_MODELS
    )
    for name in FAST_MODELS:
        assert scaled["models"][name]["accuracy"] == pytest.approx(
            plain["models"][name]["accuracy"], abs=0.01
        ), name


def test_search_subsample_is_used_and_reported(monkeypatch):
    F_train, F_test, y_train, y_test = _blobs()
    sizes = []
    original_fit = downstream.GridSearchCV.fit
    monkeypatch.setattr(
        downstream.GridSearchCV,
        "fit",
        lambda self, X, y=None, **kw: sizes.append(len(X)) or original_fit(self, X, y, **kw),
    )
    result = classification_scores(
        F_train, y_train, F_test, y_test, models=("knn",), search_max_samples=60
    )
    assert sizes == [60]
    assert "subsample of 60 of 150" in result["protocol"]["search_rows"]
    assert "all 150 training rows" in result["protocol"]["refit"]


def test_classification_is_deterministic():
    F_train, F_test, y_train, y_test = _blobs(std=3.0)
    runs = [
        classification_scores(F_train, y_train, F_test, y_test, models=("linear_svm", "knn"))
        for _ in range(2)
    ]
    assert _without_timings(runs[0]) == _without_timings(runs[1])


def test_regression_on_a_linear_target():
    rng = np.random.default_rng(0)
    F = rng.normal(size=(300, 6))
    y = F @ rng.normal(size=6) + 0.05 * rng.normal(size=300)
    result = regression_scores(F[:200], y[:200], F[200:], y[200:])
    ridge = result["models"]["ridge"]
    assert ridge["r2"] > 0.95
    assert ridge["params"]["alpha"] in downstream.REGRESSORS["ridge"][1]["alpha"]
    assert ridge["mae"] < 0.2 and result["models"]["random_forest"]["r2"] > 0.5
    assert json.loads(json.dumps(result)) == result


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda F, y: classification_scores(F, np.zeros(len(F)), F, y), "single class"),
        (lambda F, y: classification_scores(F, y[:-1], F, y), "must match"),
        (lambda F, y: classification_scores(F, y, F[:, :2], y), "columns"),
        (lambda F, y: classification_scores(np.where(F > 2, np.nan, F), y, F, y), "NaN"),
        (lambda F, y: regression_scores(F, np.ones(len(F)), F, y), "constant"),
        (lambda F, y: regression_scores(F, np.r_[np.nan, y[1:]], F, y), "NaN"),
        (lambda F, y: clustering_scores(np.where(F > 2, np.inf, F), y), "NaN or infinite"),
        (lambda F, y: clustering_scores(F, np.zeros(len(F))), "single class"),
        (lambda F, y: clustering_scores(F[:, 0], y), "2-D"),
    ],
)
def test_user_errors_are_one_sentence_data_errors(call, message):
    F, _, y, _ = _blobs()
    with pytest.raises(DataError, match=message) as info:
        call(F, y)
    text = str(info.value)
    assert text.endswith(".") and "\n" not in text


def test_bad_options_are_config_errors():
    F, _, y, _ = _blobs()
    with pytest.raises(ConfigError, match="models"):
        classification_scores(F, y, F, y, models=("xgboost",))
    with pytest.raises(ConfigError, match="cv"):
        classification_scores(F, y, F, y, cv=1)
    with pytest.raises(ConfigError, match="methods"):
        clustering_scores(F, y, methods=("dbscan",))
    with pytest.raises(ConfigError, match="min_cluster_size must be None or an integer >= 2"):
        clustering_scores(F, y, min_cluster_size=1)


def test_knn_on_a_few_rows_searches_only_the_neighbour_counts_that_fit():
    """With 15 training rows a 3-fold search trains on 10: 11 neighbours cannot be fit."""
    F, _, y, _ = _blobs()
    F, y = F[:15], y[:15]
    result = classification_scores(F, y, F, y, models=("knn",))
    assert result["models"]["knn"]["params"]["n_neighbors"] in (3, 5)


# ---------------------------------------------------------------------------- clustering
def test_clustering_on_separated_blobs():
    F, _, y, _ = _blobs(std=0.3)
    result = clustering_scores(F, y)
    assert set(result["methods"]) == {"kmeans", "agglomerative", "hdbscan"}
    kmeans = result["methods"]["kmeans"]
    assert kmeans["accuracy"] == 1.0 and kmeans["nmi"] > 0.99 and kmeans["ari"] > 0.99
    assert kmeans["n_clusters_found"] == 3 and kmeans["silhouette"] > 0.5
    for scores in result["methods"].values():
        assert set(scores) >= {"accuracy", "nmi", "ari", "silhouette", "n_clusters_found"}
        assert 0.0 <= scores["noise_fraction"] <= 1.0
    assert result["methods"]["agglomerative"]["accuracy"] == 1.0
    assert result["methods"]["hdbscan"]["accuracy"] > 0.9
    assert result["protocol"]["features"] == "as given, not standardized"
    assert "min_cluster_size=5, min_samples=5" in result["protocol"]["hdbscan"]
    assert json.loads(json.dumps(result)) == result


def test_clustering_subsample_is_reported_and_deterministic():
    F, _, y, _ = _blobs(n=600, std=2.0)
    result = clustering_scores(F, y, max_samples=100, random_state=3)
    rows = {name: scores["n_samples"] for name, scores in result["methods"].items()}
    assert rows == {"kmeans": 300, "agglomerative": 100, "hdbscan": 100}
    assert "subsample of 100 of 300" in result["protocol"]["subsample"]
    assert clustering_scores(F, y, max_samples=100, random_state=3) == result


def test_clustering_with_more_clusters_than_classes():
    F, _, y, _ = _blobs(std=0.3)
    result = clustering_scores(F, y, n_clusters=6, methods=("kmeans",))
    kmeans = result["methods"]["kmeans"]
    assert kmeans["n_clusters_found"] == 6
    assert 1 / 3 < kmeans["accuracy"] < 1.0  # three clusters matched, the other three are errors


# ---------------------------------------------------------------------------- comparison
TINY_NET = {"epochs": 5, "hidden_dims": (64,), "batch_size": 64}


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return train_test_split(X / 16.0, y, test_size=0.25, stratify=y, random_state=0)


@pytest.fixture(scope="module")
def extracted(digits):
    X_train, X_test, *_ = digits
    return fit_feature_extractors(X_train, X_test, latent_dim=8, vae_params=TINY_NET)


@pytest.fixture(scope="module")
def comparison(digits, extracted):
    _, _, y_train, y_test = digits
    features, models = extracted
    return compare_features(
        features, y_train, y_test, models=FAST_MODELS, methods=("kmeans",), extractors=models
    )


def test_feature_extractors_fit_on_train_and_share_the_vae_architecture(digits, extracted):
    X_train, X_test, *_ = digits
    features, models = extracted
    assert list(features) == ["raw", "pca", "ae", "vae_mu", "vae_z"]
    for name, (F_train, F_test) in features.items():
        dim = 64 if name == "raw" else 8
        assert F_train.shape == (len(X_train), dim) and F_test.shape == (len(X_test), dim), name
    assert models["pca"].n_samples_ == len(X_train)
    ae, vae = models["ae"].get_params(), models["vae"].get_params()
    for key in ("hidden_dims", "epochs", "batch_size", "learning_rate", "architecture"):
        assert ae[key] == vae[key], key
    assert not np.allclose(features["vae_z"][1], features["vae_mu"][1])


def test_feature_extractors_never_see_the_test_split(digits, extracted):
    X_train, X_test, *_ = digits
    features, _ = extracted
    other_test = np.random.default_rng(0).random(X_test.shape)
    again, _ = fit_feature_extractors(
        X_train, other_test, latent_dim=8, vae_params=TINY_NET, include=("pca", "vae_mu")
    )
    for name in ("pca", "vae_mu"):
        np.testing.assert_array_equal(again[name][0], features[name][0])


def test_feature_extractors_give_arrays_under_a_global_pandas_output(digits):
    """set_config(transform_output="pandas") turns every transform into a DataFrame; the
    feature sets stay arrays, as the vae_z ones always were, for compare_features to stack."""
    pytest.importorskip("pandas")
    from sklearn import config_context

    X_train, X_test, *_ = digits
    with config_context(transform_output="pandas"):
        features, _ = fit_feature_extractors(
            X_train[:200], X_test[:50], latent_dim=2, vae_params={**TINY_NET, "epochs": 1}
        )
    for name, (F_train, F_test) in features.items():
        assert type(F_train) is np.ndarray and type(F_test) is np.ndarray, name


def test_compare_features_gives_one_row_per_feature_set_model_and_task(comparison):
    rows = comparison["rows"]
    assert {r["features"] for r in rows} == {"raw", "pca", "ae", "vae_mu", "vae_z"}
    assert {(r["task"], r["model"]) for r in rows} == {
        ("classification", "logreg"),
        ("classification", "knn"),
        ("clustering", "kmeans"),
    }
    assert len(rows) == 5 * 3
    raw = next(r for r in comparison["summary"] if r["features"] == "raw")
    assert raw["dim"] == 64 and raw["logreg accuracy"] > 0.9  # raw digits are easy
    protocol = comparison["protocol"]
    assert {"splits", "classification", "clustering", "extractors"} <= set(protocol)
    assert "training split only" in protocol["extractors"]["vae"]
    assert json.loads(json.dumps(comparison)) == comparison


def test_compare_features_reports_progress_after_each_set_and_task(digits, extracted):
    _, _, y_train, y_test = digits
    features = {name: extracted[0][name] for name in ("pca", "vae_mu")}
    calls = []
    compare_features(
        features, y_train, y_test, models=("knn",), methods=("kmeans",),
        progress=lambda name, task: calls.append((name, task)),
    )  # fmt: skip
    assert calls == [
        ("pca", "classification"),
        ("pca", "clustering"),
        ("vae_mu", "classification"),
        ("vae_mu", "clustering"),
    ]


def test_compare_features_in_worker_processes_gives_the_same_table(digits, extracted, comparison):
    # Every (feature set, task) pair is seeded on its own, so two workers change the order the
    # pairs finish in and the recorded seconds, nothing else.
    _, _, y_train, y_test = digits
    features, models = extracted
    calls = []
    parallel = compare_features(
        features, y_train, y_test, models=FAST_MODELS, methods=("kmeans",), extractors=models,
        n_jobs=2, progress=lambda name, task: calls.append((name, task)),
    )  # fmt: skip

    def scores(result):
        return [{k: v for k, v in row.items() if not k.endswith("seconds")} for row in result]

    assert scores(parallel["rows"]) == scores(comparison["rows"])
    assert parallel["summary"] == comparison["summary"]
    assert parallel["protocol"] == comparison["protocol"]
    tasks = ("classification", "clustering")
    assert sorted(calls) == sorted((name, task) for name in features for task in tasks)


def test_compare_features_names_the_feature_set_a_worker_failed_on(digits, extracted):
    _, _, y_train, y_test = digits
    pca = extracted[0]["pca"]
    broken = {"pca": pca, "bad": (pca[0], np.full_like(pca[1], np.nan))}
    with pytest.raises(DataError, match="Feature set 'bad': F_test holds NaN"):
        compare_features(broken, y_train, y_test, models=("knn",), n_jobs=2)


@pytest.mark.parametrize("n_jobs", [0, 1.5, True, "2"])
def test_compare_features_rejects_a_bad_n_jobs(digits, extracted, n_jobs):
    _, _, y_train, y_test = digits
    with pytest.raises(ConfigError, match="n_jobs"):
        compare_features({"pca": extracted[0]["pca"]}, y_train, y_test, n_jobs=n_jobs)


def test_format_table_marks_missed_targets(comparison):
    text = format_table(comparison, targets={"vae_mu": {"logreg accuracy": 1.01}})
    header, _, *body = text.splitlines()
    assert "logreg accuracy" in header and "kmeans nmi" in header
    vae_row = next(line for line in body if line.startswith("| vae_mu |"))
    assert "✗ (target 1.010)" in vae_row
    assert "✗" not in next(line for line in body if line.startswith("| raw |"))
    assert "Targets missed: vae_mu logreg accuracy" in text
    assert "Protocol:" in text and "stratified folds of the training split only" in text
    met = format_table(comparison, targets={"logreg accuracy": 0.0})
    assert "Targets missed: none." in met and met.count("✓") == 5
    assert "not measured" not in met
    odd = format_table(comparison, targets={"svm accuracy": 0.9, "ica": {"knn accuracy": 0.9}})
    assert "Targets not measured: svm accuracy; ica knn accuracy." in odd


def test_format_table_lists_refits_that_stopped_at_their_iteration_cap(comparison):
    assert "Not converged" not in format_table(comparison)
    capped = {**comparison, "rows": [dict(row) for row in comparison["rows"]]}
    logreg = next(r for r in capped["rows"] if r["features"] == "raw" and r["model"] == "logreg")
    logreg["converged"] = False
    text = format_table(capped)
    assert "Not converged (solver stopped at its iteration cap): raw logreg." in text


def test_format_table_escapes_names():
    result = {
        "summary": [{"features": "a|b\nc", "dim": 2, "knn accuracy": 0.5}],
        "protocol": {"splits": "x"},
    }
    assert "| a\\|b c | 2 | 0.500 |" in format_table(result)


def test_compare_features_rejects_bad_requests(digits, extracted):
    _, _, y_train, y_test = digits
    features = {"pca": extracted[0]["pca"]}
    with pytest.raises(ConfigError, match="option"):
        compare_features(features, y_train, y_test, no_such_option=1)
    with pytest.raises(ConfigError, match="tasks"):
        compare_features(features, y_train, y_test, tasks=("forecasting",))
    continuous = np.linspace(0, 1, len(y_train))
    with pytest.raises(DataError, match="continuous"):
        compare_features(features, continuous, y_test)
    broken = {"bad": (np.ones((len(y_train), 2)), np.full((3, 2), np.nan)), "pca": features["pca"]}
    with pytest.raises(DataError, match="Feature set 'bad': F_test holds NaN"):
        compare_features(broken, y_train, y_test)


def test_fit_feature_extractors_rejects_bad_requests(digits):
    X_train, X_test, *_ = digits
    with pytest.raises(ConfigError, match="latent_dim"):
        fit_feature_extractors(X_train, X_test, latent_dim=65, include=("pca",))
    with pytest.raises(ConfigError, match="random_state"):
        fit_feature_extractors(X_train, X_test, latent_dim=2, vae_params={"random_state": 1})
    with pytest.raises(ConfigError, match="include"):
        fit_feature_extractors(X_train, X_test, latent_dim=2, include=("ica",))
    with pytest.raises(DataError, match="same shape"):
        fit_feature_extractors(X_train, X_test[:, :10], latent_dim=2, include=("pca",))


def test_raw_and_pca_baselines_see_standardized_columns_when_the_networks_do():
    """A table with columns in different units (wine: proline ~1000, hue ~1): the Gaussian
    networks standardize it, so raw and PCA must too, or PCA is ruled by the largest column."""
    from vaekit.evaluation import fit_feature_extractors

    rng = np.random.default_rng(0)
    signal = rng.normal(size=(200, 1))
    X = np.column_stack(
        [1000 * rng.normal(size=200), signal, signal + 0.1 * rng.normal(size=(200, 1))]
    )
    features, models = fit_feature_extractors(
        X[:150], X[150:], latent_dim=1, include=("raw", "pca")
    )
    np.testing.assert_allclose(features["raw"][0].std(0), 1.0, rtol=1e-6)
    component = models["pca"][-1].components_[0]
    assert abs(component[0]) < 0.2  # the shared signal, not the column with the largest unit
    # Data in [0, 1] (the Bernoulli likelihood) is used as given.
    U = rng.random((100, 4))
    features, models = fit_feature_extractors(U[:80], U[80:], latent_dim=2, include=("raw", "pca"))
    np.testing.assert_allclose(features["raw"][0], U[:80], rtol=1e-6)
    assert type(models["pca"]).__name__ == "PCA"
    # ... and so is data a rounding error past 1, which the networks take as [0, 1] too.
    U = U.astype(np.float32)
    U[0, 0] = np.float32(1) + np.float32(5e-7)
    _, models = fit_feature_extractors(U[:80], U[80:], latent_dim=2, include=("raw", "pca"))
    assert type(models["pca"]).__name__ == "PCA"


def test_clustering_scores_say_what_random_clusters_score():
    """40 classes of 3 rows (Olivetti's test split): random labels reach NMI 0.68, so a
    clustering cell near that is guessing, however good it looks."""
    y = np.repeat(np.arange(40), 3)
    F = np.random.default_rng(0).normal(size=(120, 4))  # features that know nothing of y
    result = clustering_scores(F, y, methods=("kmeans",))
    chance = result["protocol"]["chance"]
    assert chance["draws"] == 20 and abs(chance["ari"]) < 0.02
    assert 0.6 < chance["nmi"] < 0.75 and 0.25 < chance["accuracy"] < 0.4
    scored = result["methods"]["kmeans"]
    assert abs(scored["nmi"] - chance["nmi"]) < 0.05  # what the chance level is for


def test_clustering_says_when_hdbscan_cannot_find_classes_that_small():
    y = np.repeat(np.arange(10), 3)  # 3 rows a class: below HDBSCAN's min_cluster_size of 5
    F = np.random.default_rng(0).normal(size=(30, 2)) + 10 * y[:, None]
    protocol = clustering_scores(F, y, methods=("hdbscan",))["protocol"]
    assert "the smallest class has 3 rows here, fewer than min_cluster_size" in protocol["hdbscan"]
    wide = clustering_scores(np.repeat(F, 4, axis=0), np.repeat(y, 4), methods=("hdbscan",))
    assert "smallest class" not in wide["protocol"]["hdbscan"]
