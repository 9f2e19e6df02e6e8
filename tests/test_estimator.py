"""Behaviour of the VAE and Autoencoder estimators: what they learn and what they promise."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from vaekit import VAE, Autoencoder, load
from vaekit.errors import ConfigError, DataError

QUICK = {"hidden_dims": (64,), "epochs": 4, "random_state": 0}


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return train_test_split(X, y, test_size=0.25, stratify=y, random_state=0)


def _logreg_accuracy(Z_train, y_train, Z_test, y_test) -> float:
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000))
    return clf.fit(Z_train, y_train).score(Z_test, y_test)


def test_default_vae_features_match_or_beat_pca_on_digits(digits):
    """Acceptance: digits, 75/25 stratified split, seed 0, latent 8, default settings."""
    X_train, X_test, y_train, y_test = digits
    pca = PCA(8, random_state=0).fit(X_train)
    pca_acc = _logreg_accuracy(pca.transform(X_train), y_train, pca.transform(X_test), y_test)
    vae = VAE(latent_dim=8, random_state=0).fit(X_train)
    vae_acc = _logreg_accuracy(vae.transform(X_train), y_train, vae.transform(X_test), y_test)
    assert pca_acc == pytest.approx(0.9, abs=0.01)
    assert vae_acc >= pca_acc, f"VAE μ(x) {vae_acc:.3f} < PCA(8) {pca_acc:.3f}"


def test_transform_is_deterministic_and_bitwise_repeatable(digits):
    X_train, X_test, *_ = digits
    vae = VAE(latent_dim=4, **QUICK).fit(X_train)
    first, second = vae.transform(X_test), vae.transform(X_test)
    assert first.dtype == np.float32 and first.shape == (len(X_test), 4)
    assert np.array_equal(first, second)
    mu, logvar = vae.encode(X_test)
    assert np.array_equal(mu, first) and logvar.shape == mu.shape


def test_same_seed_same_model_and_global_rng_untouched(digits):
    X_train, X_test, *_ = digits
    torch.manual_seed(123)
    before = torch.get_rng_state()
    a = VAE(latent_dim=3, **QUICK).fit(X_train).transform(X_test)
    assert torch.equal(torch.get_rng_state(), before)
    b = VAE(latent_dim=3, **QUICK).fit(X_train).transform(X_test)
    c = VAE(latent_dim=3, **{**QUICK, "random_state": 1}).fit(X_train).transform(X_test)
    assert np.array_equal(a, b)
    assert not np.allclose(a, c)


def test_auto_likelihood_and_standardization():
    rng = np.random.default_rng(0)
    X = rng.normal(50.0, 10.0, size=(200, 5))
    X[:, 2] = 7.0  # a constant column must not produce NaN
    vae = VAE(latent_dim=2, **QUICK).fit(X)
    assert vae.likelihood_ == "gaussian"
    np.testing.assert_allclose(vae.mean_, X.mean(0), rtol=1e-5)
    assert vae.scale_[2] == 1.0
    recon = vae.reconstruct(X)
    assert np.isfinite(recon).all() and np.isfinite(vae.score_samples(X)).all()
    # The decoder works in standardized units; outputs come back in data units: exactly the
    # decoder mean of μ(x) on standardized x, times scale_, plus mean_.
    with torch.no_grad():
        x_std = torch.from_numpy(((X - vae.mean_) / vae.scale_).astype(np.float32))
        loc = vae.module_.decode(vae.module_.encode_mean(x_std)).numpy()
    np.testing.assert_allclose(recon, loc * vae.scale_ + vae.mean_, rtol=1e-5, atol=1e-4)
    assert np.abs(recon[:, 2] - 7.0).max() < 1.0

    unit = VAE(latent_dim=2, **QUICK).fit(rng.uniform(size=(100, 4)))
    assert unit.likelihood_ == "bernoulli"
    assert np.all(unit.reconstruct(rng.uniform(size=(3, 4))) >= 0) and unit.scale_.max() == 1.0


def test_bernoulli_requires_unit_interval():
    with pytest.raises(DataError, match=r"\[0, 1\]"):
        VAE(likelihood="bernoulli", **QUICK).fit(np.arange(20.0).reshape(10, 2))


def test_fixed_output_variance_is_used_and_stored():
    X = np.random.default_rng(0).normal(size=(100, 3))
    vae = VAE(latent_dim=2, output_variance=0.5, **QUICK).fit(X)
    assert not any(p is vae.module_.decoder_logvar for p in vae.module_.parameters())
    assert vae.module_.output_logvar().item() == pytest.approx(np.log(0.5))
    # Used in training too: σ² weighs the squared error against the KL, so another σ² trains
    # another model from the same seed.
    other = VAE(latent_dim=2, output_variance=2.0, **QUICK).fit(X)
    assert not np.allclose(vae.transform(X), other.transform(X))


def test_8_bit_images_get_a_hint_to_scale_them_for_the_bernoulli_likelihood():
    images = np.random.default_rng(0).integers(0, 256, size=(20, 8, 8)).astype(np.uint8)
    small = dict(latent_dim=2, hidden_dims=(8,), conv_channels=(4,), epochs=1, random_state=0)
    with pytest.warns(UserWarning, match=r"8-bit pixels by the look of it.*fit on X / 255") as w:
        vae = VAE(**small).fit(images)
    assert vae.likelihood_ == "gaussian" and w[0].filename == __file__
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*8-bit pixels")
        assert VAE(**small).fit(images / 255).likelihood_ == "bernoulli"
        VAE(**small, likelihood="gaussian").fit(images)  # the choice made explicitly
        VAE(**small).fit(images.reshape(20, 64))  # a table of counts is no image
        VAE(**small).fit(images % 6)  # nor is a label map of small whole numbers 8-bit pixels


def test_unscaled_pixels_for_a_model_fit_on_scaled_ones_get_a_warning_in_transform():
    """`vaekit train` divides 8-bit images by 255: np.load(file) handed to transform is not."""
    images = np.random.default_rng(0).integers(0, 256, size=(20, 8, 8)).astype(np.uint8)
    small = dict(latent_dim=2, hidden_dims=(8,), conv_channels=(4,), epochs=1, random_state=0)
    vae = VAE(**small).fit(images / 255)
    for method in (vae.transform, vae.encode, vae.reconstruct):
        with pytest.warns(UserWarning, match=r"Every row of X.*\(8-bit pixels: divide by 255\)"):
            method(images)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        vae.transform(images / 255)
        vae.transform(np.concatenate([images[:1], images[1:] / 255]))  # one odd row: scoring's


def test_a_fixed_output_variance_on_a_bernoulli_fit_is_refused_not_ignored():
    X = np.random.default_rng(0).uniform(size=(40, 3))  # in [0, 1]: auto picks Bernoulli
    with pytest.raises(ConfigError, match="fit uses likelihood='bernoulli'"):
        VAE(latent_dim=2, output_variance=0.5, **QUICK).fit(X)
    VAE(latent_dim=2, output_variance=0.5, likelihood="gaussian", **QUICK).fit(X)


@pytest.mark.parametrize("shape", [(8, 8), (28, 28), (64, 64), (3, 16, 16), (1, 25, 19)])
def test_conv_architecture_is_chosen_for_images_of_any_size(shape):
    X = np.random.default_rng(0).uniform(size=(16, *shape)).astype(np.float32)
    vae = VAE(latent_dim=3, epochs=1, hidden_dims=(32,), conv_channels=(8, 16, 16, 16)).fit(X)
    assert vae.architecture_ == "conv"
    assert vae.transform(X).shape == (16, 3)
    assert vae.reconstruct(X).shape == X.shape
    assert vae.sample(5, random_state=0).shape == (5, *shape)


@pytest.mark.parametrize(("image", "channels"), [((3, 32, 32), (3, 16, 32)), ((1, 16, 16), (1, 4))])
def test_every_inner_transposed_convolution_is_followed_by_a_relu(image, channels):
    """Also when a hidden channel count equals the image's (the output layer is the last one,
    not the one with the image's channel count)."""
    from vaekit.nn import build_module

    module = build_module(image, 4, (32,), channels, "conv", True, None)
    kinds = [type(layer).__name__ for layer in module.decoder.deconv]
    assert kinds == ["ConvTranspose2d", "ReLU"] * (len(channels) - 1) + ["ConvTranspose2d"]
    assert module.decoder.deconv[-1].out_channels == image[0]


def test_architecture_can_be_forced():
    images = np.random.default_rng(0).uniform(size=(20, 8, 8))
    assert VAE(architecture="mlp", **QUICK).fit(images).architecture_ == "mlp"
    with pytest.raises(ConfigError, match="needs images"):
        VAE(architecture="conv", **QUICK).fit(images.reshape(20, 64))


def test_autoencoder_has_no_stochastic_layer_and_scores_by_reconstruction(digits):
    X_train, X_test, *_ = digits
    ae = Autoencoder(latent_dim=4, **QUICK).fit(X_train)
    assert ae.module_.encoder.head.logvar is None
    assert "train_kl" not in ae.history_[0]
    noise = np.random.default_rng(0).uniform(0, 16, size=X_test.shape)
    assert ae.score_samples(X_test).mean() > ae.score_samples(noise).mean()


def test_vae_scores_real_digits_above_noise_and_repeats_its_scores(digits):
    X_train, X_test, *_ = digits
    vae = VAE(latent_dim=4, **QUICK).fit(X_train)
    noise = np.random.default_rng(0).uniform(0, 16, size=X_test.shape)
    scores = vae.score_samples(X_test)
    assert scores.shape == (len(X_test),)
    assert scores.mean() > vae.score_samples(noise).mean()
    np.testing.assert_array_equal(scores, vae.score_samples(X_test))
    # The same bound with draws per row (VAE.score): equal up to Monte Carlo error.
    assert vae.score(X_test) == pytest.approx(scores.mean(), abs=0.5)
    assert vae.score(X_test) == np.mean(vae.log_likelihood(X_test, k=8, bound="elbo"))


@pytest.mark.parametrize("random_state", [None, np.random.RandomState(0)])
def test_scores_repeat_without_an_int_seed(digits, random_state):
    """score_samples draws its ε from the fit's seed: a row's score, and the outlier calls of
    predict, do not change between calls or with the rows scored alongside it."""
    X_train, X_test, *_ = digits
    params = {**QUICK, "random_state": random_state}
    vae = VAE(latent_dim=4, **params).fit(X_train)
    np.testing.assert_array_equal(vae.score_samples(X_test), vae.score_samples(X_test))
    np.testing.assert_array_equal(vae.score_samples(X_test[:7]), vae.score_samples(X_test)[:7])
    np.testing.assert_array_equal(vae.predict(X_test[:50]), vae.predict(X_test)[:50])
    ll = vae.log_likelihood(X_test[:5], k=4)
    np.testing.assert_array_equal(ll, vae.log_likelihood(X_test[:5], k=4))


@pytest.mark.parametrize("n", [0, -1, 2.5, True])
def test_score_samples_checks_its_sample_count(digits, n):
    vae = VAE(latent_dim=2, **QUICK).fit(digits[0])
    with pytest.raises(ConfigError, match="n_mc_samples must be a positive integer"):
        vae.score_samples(digits[1][:3], n_mc_samples=n)


def test_sampling_and_encoding_are_seeded(digits):
    X_train, X_test, *_ = digits
    vae = VAE(latent_dim=4, **QUICK).fit(X_train)
    a, b = vae.sample(6, random_state=3), vae.sample(6, random_state=3)
    assert a.shape == (6, 64) and np.array_equal(a, b)
    assert not np.array_equal(a, vae.sample(6, random_state=4))
    z1 = vae.encode(X_test[:5], sample=True, random_state=0)
    z2 = vae.encode(X_test[:5], sample=True, random_state=0)
    assert z1.shape == (5, 4) and np.array_equal(z1, z2)
    assert not np.array_equal(z1, vae.transform(X_test[:5]))


def test_inverse_transform_checks_latent_width(digits):
    vae = VAE(latent_dim=4, **QUICK).fit(digits[0])
    assert vae.inverse_transform(np.zeros((2, 4))).shape == (2, 64)
    with pytest.raises(DataError, match="latent space has 4"):
        vae.inverse_transform(np.zeros((2, 3)))
    # A read-only Z (a memory map, a pandas copy-on-write view) is copied for torch, which
    # warned of "undefined behavior" on a non-writable array.
    Z = vae.transform(digits[1][:5])
    Z.setflags(write=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_array_equal(vae.inverse_transform(Z), vae.reconstruct(digits[1][:5]))


def test_history_records_every_epoch(digits):
    vae = VAE(latent_dim=3, kl_warmup_epochs=2, patience=None, **QUICK).fit(digits[0])
    assert vae.n_epochs_ == len(vae.history_) == 4
    first = vae.history_[0]
    for key in ("train_loss", "train_recon", "train_kl", "beta", "val_loss", "val_kl_per_dim"):
        assert key in first
    assert len(first["val_kl_per_dim"]) == 3
    betas = [h["beta"] for h in vae.history_]
    assert betas[0] < betas[1] <= 1.0 and betas[-1] == 1.0


def test_wrong_shape_at_transform_time_is_a_clear_error(digits):
    vae = VAE(latent_dim=2, **QUICK).fit(digits[0])
    with pytest.raises(DataError, match="features"):
        vae.transform(np.zeros((3, 10)))
    conv = VAE(latent_dim=2, epochs=1).fit(np.random.default_rng(0).uniform(size=(8, 8, 8)))
    with pytest.raises(DataError, match="shape"):
        conv.transform(np.zeros((2, 9, 9)))


def test_an_image_model_takes_flattened_rows_too():
    """Rows of h·w features are the same images, for the standardized Gaussian model as well
    (its per-pixel scaling has the image's shape)."""
    images = np.random.default_rng(0).integers(0, 17, size=(60, 8, 8)).astype(np.float32)
    for X in (images, images / 16.0):  # Gaussian, then Bernoulli
        model = Autoencoder(latent_dim=2, conv_channels=(4,), epochs=1, random_state=0).fit(X)
        flat = X.reshape(len(X), -1)
        np.testing.assert_array_equal(model.transform(flat), model.transform(X))
        np.testing.assert_array_equal(model.score_samples(flat), model.score_samples(X))


def test_an_image_model_takes_its_images_with_or_without_the_channel_axis_only():
    """(n, 1, h, w) for an (h, w) model is the same images; as many values laid out in another
    shape (8x32 for 16x16, channels-last RGB) are refused, not reshaped into scrambled pixels."""
    rng = np.random.default_rng(0)
    gray = rng.uniform(size=(40, 16, 16)).astype(np.float32)
    model = VAE(latent_dim=2, conv_channels=(4,), hidden_dims=(8,), epochs=1, random_state=0)
    model.fit(gray)
    np.testing.assert_array_equal(model.transform(gray[:, None]), model.transform(gray))
    with pytest.raises(DataError, match=r"shape \(8, 32\).*pass data of that shape"):
        model.transform(gray.reshape(40, 8, 32))
    rgb = rng.uniform(size=(40, 3, 8, 8)).astype(np.float32)
    model = VAE(latent_dim=2, conv_channels=(4,), hidden_dims=(8,), epochs=1, random_state=0)
    model.fit(rgb)
    with pytest.raises(DataError, match=r"channels-last.*X.transpose\(0, 3, 1, 2\)"):
        model.transform(rgb.transpose(0, 2, 3, 1))


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"latent_dim": 0}, "latent_dim must be a positive integer"),
        ({"epochs": -1}, "epochs must be a positive integer"),
        ({"batch_size": 0}, "batch_size must be a positive integer"),
        ({"beta": -1.0}, "beta must be a non-negative"),
        ({"hidden_dims": ()}, "hidden_dims must be a non-empty"),
        ({"architecture": "rnn"}, "architecture must be one of"),
        ({"likelihood": "poisson"}, "likelihood must be one of"),
        ({"learning_rate": 0}, "learning_rate must be a positive"),
        ({"validation_fraction": 1.0}, r"validation_fraction must be in \[0, 1\)"),
        ({"kl_schedule": "cosine"}, "kl_schedule must be one of"),
        ({"lr_schedule": "linear"}, "lr_schedule must be one of"),
        ({"free_bits": -0.1}, "free_bits must be >= 0"),
        ({"device": "quantum"}, "not a torch device"),
        ({"device": "meta"}, "device='meta' was requested but meta is not available"),
        ({"random_state": -1}, "random_state must be None, an integer in"),
        ({"random_state": 1.5}, "random_state must be None, an integer in"),
        ({"output_variance": 1e-6}, r"output_variance must be 'learned' or a number in \["),
        ({"patience": True}, "patience must be a positive integer or None"),
        # Strings from a config file: "no" and "False" would be truthy.
        ({"dynamic_binarization": "no"}, "dynamic_binarization must be True or False, got 'no'"),
        ({"verbose": "False"}, "verbose must be True, False or a level >= 0, got 'False'"),
    ],
)
def test_invalid_parameters_raise_one_clear_sentence(params, message):
    with pytest.raises(ConfigError, match=message):
        VAE(**params).fit(np.zeros((10, 3)))


def test_the_arguments_of_methods_are_checked_like_parameters():
    model = VAE(latent_dim=2, **QUICK).fit(np.random.default_rng(0).random((30, 4)))
    for call in (
        lambda: model.sample(2, random_state=-1),
        lambda: model.encode(np.zeros((2, 4)), sample=True, random_state=-1),
        lambda: model.log_likelihood(np.zeros((2, 4)), k=2, random_state=-1),
    ):
        with pytest.raises(ConfigError, match=r"random_state must be None, an integer in"):
            call()
    with pytest.raises(ConfigError, match="sample must be True or False, got 'no'"):
        model.encode(np.zeros((2, 4)), sample="no")
    assert len(model.encode(np.zeros((2, 4)), sample=np.bool_(False))) == 2  # (μ, log σ²)


def test_the_warm_up_warning_holds_for_numpy_epochs_as_a_grid_passes_them():
    X = np.random.default_rng(0).random((30, 4))
    with pytest.warns(UserWarning, match=r"kl_warmup_epochs \(5\) is longer than the 2 epochs"):
        VAE(latent_dim=2, epochs=np.int64(2), kl_warmup_epochs=5, random_state=0).fit(X)


def test_output_feature_names_need_a_fitted_model():
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        VAE(latent_dim=3).get_feature_names_out()
    X = np.random.default_rng(0).random((30, 4))
    names = VAE(latent_dim=3, **QUICK).fit(X).get_feature_names_out()
    assert list(names) == ["vae0", "vae1", "vae2"]


@pytest.mark.parametrize(
    ("X", "message"),
    [
        (np.array([[1.0, 1.0], [0.0, np.nan]]), r"NaN\) value in row 1 \(counting from 0\), f"),
        (np.array([[1.0, np.inf], [0.0, 1.0]]), r"an infinite value \(inf\) in row 0 .*, f"),
        (np.zeros((1, 3)), "at least 2 samples"),
        (np.zeros((0, 3)), "needs at least 2 samples to fit, got 0 samples"),
        (np.zeros(5), "2D array"),
        (sp.csr_matrix(np.eye(4)), "sparse matrix"),
        (np.zeros(4, dtype=[("a", "f8"), ("b", "f8")]), "structured array with fields a, b"),
        ([[0.1, 0.2], [0.3]] * 4, "rows of different lengths"),
        (np.zeros((5, 0, 4)), "with no values"),
        (np.random.default_rng(0).random((6, 9, 9, 3)), "looks channels-last"),
    ],
    ids=[
        "nan",
        "inf",
        "one row",
        "no rows",
        "1-D",
        "sparse",
        "structured",
        "ragged",
        "empty",
        "channels-last",
    ],
)
def test_bad_training_data_raises_data_error(X, message):
    with pytest.raises(DataError, match=message):
        VAE(**QUICK).fit(X)


def test_rows_outside_a_bernoulli_models_support_are_the_least_typical(tmp_path):
    """p(x) = 0 for a value outside [0, 1]: such a row scores -inf and is flagged, with a
    warning that points at the user's call, and every other row scores as it does alone."""
    X = np.random.default_rng(0).uniform(0.1, 0.9, size=(100, 6))
    vae = VAE(latent_dim=2, **QUICK).fit(X)
    batch = X[:5].copy()
    batch[1, 2], batch[3, 0] = 1.2, -0.01  # two rows just beyond the training range
    inside = [0, 2, 4]
    with pytest.warns(UserWarning, match=r"2 of 5 rows of X have values outside \[0, 1\]") as w:
        scores = vae.score_samples(batch)
    assert w[0].filename == __file__
    assert np.isneginf(scores[[1, 3]]).all()
    np.testing.assert_array_equal(scores[inside], vae.score_samples(X[inside]))
    with pytest.warns(UserWarning, match="1 of 1 rows"):  # alone, the same: not an error
        assert np.isneginf(vae.score_samples(batch[1:2])).all()
    with pytest.warns(UserWarning, match="outside"):
        assert vae.predict(batch)[[1, 3]].tolist() == [-1, -1]
    with pytest.warns(UserWarning, match="outside"):
        assert np.isneginf(vae.log_likelihood(batch, k=4)[[1, 3]]).all()
    with pytest.warns(UserWarning, match="outside"):
        errors = vae.reconstruction_error(batch, per_feature=True)
    assert np.isposinf(errors[1, 2]) and np.isposinf(errors[3, 0])
    assert np.isfinite(np.delete(errors[1], 2)).all() and np.isfinite(errors[inside]).all()
    # Every row outside: the warning says X was probably not scaled (pixels in 0..255).
    with pytest.warns(UserWarning, match="every row is: X was probably not scaled"):
        assert np.isneginf(vae.score_samples(X[:3] * 255)).all()
    assert vae.transform(X[:2] - 5).shape == (2, 2)  # μ(x) is still defined
    # A memory-mapped file is scored block by block, as when every row is inside.
    np.save(tmp_path / "rows.npy", batch.astype(np.float32))
    mapped = np.load(tmp_path / "rows.npy", mmap_mode="r")
    with pytest.warns(UserWarning, match="2 of 5 rows"):
        errors = vae.reconstruction_error(mapped, per_feature=True)
    assert (
        np.isposinf(errors[1, 2])
        and np.isposinf(errors[3, 0])
        and np.isfinite(errors[inside]).all()
    )


def test_predicts_threshold_warning_points_at_the_users_call():
    X = np.random.default_rng(0).uniform(0.1, 0.9, size=(60, 4))
    vae = VAE(latent_dim=2, **QUICK).fit(X)  # a few held-out rows: offset_ is unreliable
    for call in (vae.predict, vae.decision_function):
        with pytest.warns(UserWarning, match="quantile of only") as w:
            call(X[:3])
        assert w[0].filename == __file__


@pytest.mark.parametrize("dtype", [np.float64, np.int64])
def test_a_column_with_a_large_offset_keeps_its_variation(dtype):
    # Timestamps: 1.7e9 ± 10 is one value in float32 (spacing 128 there), so the scaling must
    # be computed, and applied, before the cast to float32.
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 3))
    X[:, 0] = np.round(1.7e9 + 10 * X[:, 0])
    X = X.astype(dtype)
    vae = VAE(latent_dim=2, hidden_dims=(16,), epochs=20, random_state=0).fit(X)
    assert vae.scale_[0] == pytest.approx(X[:, 0].std(), rel=1e-6)
    shifted = X[:20].copy()
    shifted[:, 0] += 60  # six standard deviations, invisible after a float32 cast
    assert (vae.score_samples(shifted) < vae.score_samples(X[:20]) - 5).all()
    # ... and comes back from the decoder with it: float64, not rounded to steps of 128.
    reconstructed = vae.reconstruct(X[:20])
    assert reconstructed.dtype == np.float64
    assert np.abs(reconstructed[:, 0] - X[:20, 0]).max() < 40  # within 4 standard deviations
    assert (np.mod(reconstructed[:, 0], 128) != 0).any()  # float32 there: multiples of 128


def test_features_measured_in_tiny_units_are_standardized_not_taken_for_constant():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3)) * 1e-9
    X[:, 2] = 7.0  # truly constant
    vae = VAE(latent_dim=2, **QUICK).fit(X)
    np.testing.assert_allclose(vae.scale_[:2], X[:, :2].std(0), rtol=1e-3)
    assert vae.scale_[2] == 1.0


def test_a_threshold_from_few_held_out_rows_is_flagged_where_it_is_used(tmp_path):
    """Said by predict and decision_function (and after save/load), not by fit: a model that
    is never asked for outliers should not warn about its threshold."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(100, 4))
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        small = Autoencoder(latent_dim=2, **QUICK).fit(X)
    assert small.offset_rows_ == 10
    small.save(tmp_path / "m")
    for model in (small, load(tmp_path / "m")):
        for call in (model.predict, model.decision_function):
            with pytest.warns(UserWarning, match="5% quantile of only 10 held-out scores"):
                call(X[:5])
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # 100 held-out rows: 5 beyond the quantile
        Autoencoder(latent_dim=2, **QUICK).fit(rng.normal(size=(1000, 4))).predict(X[:5])


def test_a_refit_on_images_forgets_the_column_names_of_a_table_fit():
    """scikit-learn's reset only happens for 2-D input; the image model then refused tables
    for lacking the earlier fit's columns, and save wrote those names."""
    pd = pytest.importorskip("pandas")
    X = load_digits().data[:100] / 16.0
    model = VAE(latent_dim=2, hidden_dims=(8,), conv_channels=(4,), epochs=1, random_state=0)
    model.fit(pd.DataFrame(X, columns=[f"p{i}" for i in range(64)]))
    model.fit(X.reshape(-1, 8, 8))
    assert not hasattr(model, "feature_names_in_")
    assert model.transform(pd.DataFrame(X[:2], columns=[f"q{i}" for i in range(64)])).shape == (
        2,
        2,
    )


@pytest.mark.parametrize(
    ("columns", "message"),
    [
        (["a", "a", "b"], r"X has repeated column names \('a' 2 times\); rename them\."),
        (["a", 1, "b"], r"X's column names are of several types \(\['int', 'str'\]\); make"),
    ],
)
def test_bad_column_names_are_a_data_error_that_names_them(columns, message):
    pd = pytest.importorskip("pandas")
    X = pd.DataFrame(np.random.default_rng(0).random((20, 3)), columns=columns)
    with pytest.raises(DataError, match=message):
        VAE(epochs=1).fit(X)


def test_a_table_with_a_column_more_or_less_is_told_which():
    pd = pytest.importorskip("pandas")
    X = pd.DataFrame(np.random.default_rng(0).random((20, 3)), columns=["a", "b", "c"])
    model = VAE(latent_dim=2, hidden_dims=(8,), epochs=1, random_state=0).fit(X)
    for table, difference in (
        (X.assign(d=0.0), r"\(not in the training data: 'd'\)"),
        (X.drop(columns="c"), r"\(missing 'c'\)"),
    ):
        with pytest.raises(DataError, match=difference + r"; pass a table with the columns 'a'"):
            model.transform(table)


def test_columns_of_dates_text_or_categories_are_named():
    pd = pytest.importorskip("pandas")
    X = pd.DataFrame(
        {
            "x": np.arange(6.0),
            "when": pd.date_range("2026-01-01", periods=6),
            "kind": pd.Categorical(["a", "b"] * 3),
        }
    )
    message = r"X has columns that are not numbers: 'when' \(datetime64.*\), 'kind' \(category\); "
    with pytest.raises(DataError, match=message):
        VAE(epochs=1).fit(X)
    with pytest.raises(DataError, match=r"could not convert string to float: .*must hold numbers"):
        VAE(epochs=1).fit(np.array([["a", "b"], ["c", "d"]]))


@pytest.mark.parametrize(
    ("n", "fraction", "why"), [(10, 0.04, "is under one row"), (20, 0.99, "leaves none to tr")]
)
def test_a_validation_split_that_rounds_away_is_said(n, fraction, why):
    X = load_digits().data[:n] / 16.0
    model = VAE(latent_dim=2, hidden_dims=(8,), epochs=1, validation_fraction=fraction)
    with pytest.warns(UserWarning, match=f"validation_fraction={fraction} of {n} row\\(s\\) {why}"):
        model.fit(X)
    assert model.offset_rows_ == n and "val_loss" not in model.history_[-1]
    with warnings.catch_warnings():  # 0 says so
        warnings.filterwarnings("error", message="validation_fraction")
        VAE(latent_dim=2, hidden_dims=(8,), epochs=1, validation_fraction=0).fit(X)


def test_a_gaussian_history_is_in_nats_of_the_data_as_the_scores_are():
    """Standardized data's densities differ from the data's by Σ log scale_: the history adds
    it back, so val_loss is the -ELBO that test_elbo and score_samples give the same rows."""
    from vaekit.evaluation import test_elbo

    rng = np.random.default_rng(0)
    X = rng.normal(size=(600, 5)) @ rng.normal(size=(5, 12)) * 40 + 1000  # scale_ ~ 100
    vae = VAE(latent_dim=3, hidden_dims=(32,), epochs=8, patience=None, random_state=0).fit(X)
    assert vae.likelihood_ == "gaussian" and np.log(vae.scale_).sum() > 40
    _, val_rows = vae._split(len(X), vae.seed_)
    elbo = test_elbo(vae, X[val_rows], n_mc_samples=64, random_state=0)
    last = vae.history_[-1]  # no early stopping: the kept weights are the last epoch's
    assert last["val_kl"] == pytest.approx(elbo["kl"], rel=1e-4)
    # One ε draw per row in the history, 64 in test_elbo: close, not equal.
    assert last["val_recon"] == pytest.approx(elbo["reconstruction"], rel=0.02)
    assert last["val_loss"] == pytest.approx(-elbo["elbo"], rel=0.02)
