"""vaekit's estimators under scikit-learn's own estimator checks, and the tools built on them."""

from __future__ import annotations

from sklearn.utils.estimator_checks import parametrize_with_checks

from vaekit import VAE, Autoencoder

# Small and quick: the checks fit dozens of times on tiny data.
SMALL = {"latent_dim": 2, "hidden_dims": (16,), "epochs": 3, "random_state": 0}

# Each check we knowingly fail, with the reason (scikit-learn prints it when it skips them).
EXPECTED_FAILURES: dict[str, str] = {}


@parametrize_with_checks(
    [VAE(**SMALL), Autoencoder(**SMALL)],
    expected_failed_checks=lambda est: EXPECTED_FAILURES,
)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


def test_cross_validated_score_of_a_scaled_pipeline():
    """A MinMaxScaler fitted on the training folds overshoots [0, 1] a little on the test fold;
    under the Bernoulli likelihood those rows score -inf, so every fold's score did, and a
    grid search could not tell candidates apart. The warning says how to keep them inside."""
    import warnings

    import numpy as np
    import pytest
    from sklearn.datasets import load_digits
    from sklearn.model_selection import cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import MinMaxScaler

    X = load_digits().data[:600]
    quick = {**SMALL, "epochs": 1}
    with pytest.warns(UserWarning, match=r"MinMaxScaler\(clip=True\) keeps them inside"):
        scores = cross_val_score(make_pipeline(MinMaxScaler(), VAE(**quick)), X, cv=3)
    assert np.isneginf(scores).any()
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=r".*values outside \[0, 1\]")
        pipeline = make_pipeline(MinMaxScaler(clip=True), VAE(**quick))
        assert np.isfinite(cross_val_score(pipeline, X, cv=3)).all()
