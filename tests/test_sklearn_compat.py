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
