"""vaekit's estimators under scikit-learn's own estimator checks, and the tools built on them."""

from __future__ import annotations

import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

from vaekit import VAE, Autoencoder

# Small and quick: the checks fit dozens of times on tiny data.
SMALL = {"latent_dim": 2, "hidden_dims": (16,), "epochs": 3, "random_state": 0}

# Each check we knowingly fail, with the reason (scikit-learn prints it when it skips them).
_HELD_OUT_OFFSET = (
    "offset_ is the contamination quantile of the validation split's scores, not of the "
    "training rows', so fit_predict flags about that share of new data like the training "
    "data, and not exactly that share of the rows fitted on (README, Anomalies)"
)
EXPECTED_FAILURES: dict[str, str] = {
    "check_outliers_train": _HELD_OUT_OFFSET,
    "check_outliers_fit_predict": _HELD_OUT_OFFSET,
}


@parametrize_with_checks(
    [VAE(**SMALL), Autoencoder(**SMALL)],
    expected_failed_checks=lambda est: EXPECTED_FAILURES,
)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


def test_the_outlier_checks_pass_where_the_offset_is_of_the_training_rows():
    """With no validation split offset_ is the training rows' quantile, and the two checks
    expected to fail above pass: the failures are the held-out threshold, nothing else."""
    from sklearn.utils.estimator_checks import check_outliers_fit_predict, check_outliers_train

    for estimator in (VAE, Autoencoder):
        model = estimator(**SMALL, validation_fraction=0)
        check_outliers_train(estimator.__name__, model)
        check_outliers_fit_predict(estimator.__name__, model)


def test_cross_validated_score_of_a_scaled_pipeline():
    """A MinMaxScaler fitted on the training folds overshoots [0, 1] a little on the test fold;
    under the Bernoulli likelihood those rows score -inf, so every fold's score did, and a
    grid search could not tell candidates apart. The warning says how to keep them inside."""
    import warnings

    import numpy as np
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


def test_values_past_1_by_rounding_are_in_the_unit_interval():
    """MinMaxScaler gives 1.0000000000000002 on its own training data (breast cancer): that
    rounding must neither switch likelihood='auto' to Gaussian, nor make 'bernoulli' refuse X,
    nor score the row -inf. The model is the one fitted on the clipped data."""
    import warnings

    import numpy as np
    from sklearn.datasets import load_breast_cancer
    from sklearn.preprocessing import MinMaxScaler

    X = MinMaxScaler().fit_transform(load_breast_cancer().data)
    assert X.max() > 1.0  # the rounding this test is about
    quick = {**SMALL, "epochs": 1}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # posterior collapse of a 1-epoch model
        model = VAE(**quick).fit(X)
        clipped = VAE(**quick).fit(np.clip(X, 0.0, 1.0))
        VAE(**quick, likelihood="bernoulli", dynamic_binarization=True).fit(X)
    assert model.likelihood_ == "bernoulli"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        scores = model.score_samples(X)
        errors = model.reconstruction_error(X, per_feature=True)
    np.testing.assert_array_equal(scores, clipped.score_samples(X))
    assert np.isfinite(errors).all()
    # In float32 the rounding survives the model's cast: torch.bernoulli refuses p > 1, so
    # dynamic binarization needs the clip in fit.
    X32 = np.clip(X, 0.0, 1.0).astype(np.float32)
    X32[0, 0] = np.float32(1) + np.float32(5e-7)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        VAE(**quick, dynamic_binarization=True).fit(X32)
    beyond = X.copy()
    beyond[0, 0] = 1.001  # past rounding: probability 0, as before
    with pytest.warns(UserWarning, match=r"1 of 569 rows of X have values outside \[0, 1\]"):
        assert np.isneginf(model.score_samples(beyond)).sum() == 1


def test_fit_names_the_public_class_for_a_keyword_it_does_not_take():
    """Python's own message would name the private base class; a Pipeline passes
    vae__sample_weight through to fit."""
    import numpy as np
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import MinMaxScaler

    X = np.random.default_rng(0).random((20, 3))
    message = r"VAE\.fit\(\) got an unexpected keyword argument 'sample_weight'; every row weighs"
    with pytest.raises(TypeError, match=message):
        make_pipeline(MinMaxScaler(), VAE(**SMALL)).fit(X, vae__sample_weight=np.ones(20))
    with pytest.raises(TypeError, match=r"^Autoencoder\.fit\(\) got an unexpected keyword argu"):
        Autoencoder(**SMALL).fit(X, epochs=3)


def test_a_failed_refit_does_not_look_fitted_to_scikit_learn():
    import numpy as np
    from sklearn.exceptions import NotFittedError
    from sklearn.utils.validation import check_is_fitted

    X = np.random.default_rng(0).random((20, 3))
    model = VAE(**SMALL).fit(X)
    check_is_fitted(model)
    with pytest.raises(ValueError, match="at least 2 samples"):
        model.fit(X[:1])
    with pytest.raises(NotFittedError):
        check_is_fitted(model)


def test_the_fit_warnings_point_at_the_users_line_through_a_pipeline():
    """Not into scikit-learn: Python shows a warning once per line, so one inside Pipeline.fit
    would be shown once for all the candidates of a grid search."""
    import numpy as np
    from sklearn.pipeline import make_pipeline

    from vaekit.errors import PosteriorCollapseWarning

    X = np.random.default_rng(0).random((40, 3))
    with pytest.warns(PosteriorCollapseWarning) as caught:
        make_pipeline(VAE(**{**SMALL, "beta": 1000.0})).fit(X)
    assert {w.filename for w in caught} == {__file__}
