"""Downstream evaluation of learned features: pure functions of arrays that return JSON-ready dicts.

- :mod:`.downstream`: classification and regression scores with cross-validated models.
- :mod:`.clustering`: k-means, agglomerative and HDBSCAN scored against labels.
- :mod:`.compare`: raw inputs vs PCA vs AE vs VAE μ(x) / z, side by side, as one table.
- :mod:`.generative`: test ELBO, importance-weighted log-likelihood, active units, KL per
  dimension and the posterior-collapse check of a fitted VAE.
"""

from .clustering import cluster_accuracy, clustering_scores
from .compare import compare_features, fit_feature_extractors, format_table
from .downstream import classification_scores, is_classification_target, regression_scores
from .generative import (
    active_units,
    iwae_log_likelihood,
    kl_per_dimension,
    posterior_collapse_check,
    test_elbo,
)

__all__ = [
    "active_units",
    "classification_scores",
    "cluster_accuracy",
    "clustering_scores",
    "compare_features",
    "fit_feature_extractors",
    "format_table",
    "is_classification_target",
    "iwae_log_likelihood",
    "kl_per_dimension",
    "posterior_collapse_check",
    "regression_scores",
    "test_elbo",
]
