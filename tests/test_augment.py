"""Random affine augmentation: what it does to an image, and how a fit uses it."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from vaekit import VAE, Autoencoder
from vaekit.augment import RandomAffine
from vaekit.errors import ConfigError
from vaekit.evaluation import fit_feature_extractors


def _dots(n: int, side: int = 28, at: tuple[int, int] = (14, 14)) -> torch.Tensor:
    """(n, 1, side, side) black images, each with one white pixel."""
    x = torch.zeros(n, 1, side, side)
    x[:, 0, at[0], at[1]] = 1.0
    return x


def _centre_of_mass(x: torch.Tensor) -> torch.Tensor:
    """(n, 2) row and column of each image's centre of mass."""
    rows = torch.arange(x.shape[-2], dtype=x.dtype).view(1, 1, -1, 1)
    cols = torch.arange(x.shape[-1], dtype=x.dtype).view(1, 1, 1, -1)
    mass = x.sum((1, 2, 3))
    return torch.stack([(x * rows).sum((1, 2, 3)) / mass, (x * cols).sum((1, 2, 3)) / mass], 1)


def test_no_rotation_and_no_shift_is_the_identity():
    x = torch.rand(5, 3, 12, 10)
    torch.testing.assert_close(RandomAffine((3, 12, 10), degrees=0, shift=0)(x), x)


def test_shifts_stay_within_the_range_and_cover_it():
    torch.manual_seed(0)
    x = _dots(400)
    moved = RandomAffine((1, 28, 28), degrees=0, shift=0.1)(x)
    # Bilinear resampling spreads the dot over its neighbours but keeps its mass and its
    # centre where the shift puts it: within 10% of 28 = 2.8 pixels.
    torch.testing.assert_close(moved.sum((1, 2, 3)), torch.ones(400), rtol=0, atol=1e-5)
    offset = _centre_of_mass(moved) - 14
    assert offset.abs().max() <= 2.8 + 1e-4
    assert (offset > 2).any(1).any() and (offset < -2).any(1).any()  # both directions reached
    assert offset.std(0).min() > 1.2  # uniform on ±2.8 has std 1.62; no shift has 0


def test_rotation_keeps_the_distance_from_the_centre():
    torch.manual_seed(0)
    # On an even side the centre lies between pixels 13 and 14; a dot 8 pixels right of it.
    x = _dots(300, at=(14, 22))
    moved = RandomAffine((1, 28, 28), degrees=45, shift=0)(x)
    offset = _centre_of_mass(moved) - 13.5
    radius = offset.norm(dim=1)
    start = torch.tensor([0.5, 8.5]).norm()
    assert (radius - start).abs().max() < 0.6  # bilinear blur pulls the centre in a little
    angles = torch.rad2deg(torch.atan2(offset[:, 0], offset[:, 1]) - math.atan2(0.5, 8.5))
    assert angles.abs().max() <= 45.5 and angles.max() > 35 and angles.min() < -35


def test_rotation_of_a_wide_image_is_a_rotation_not_a_shear():
    torch.manual_seed(0)
    x = torch.zeros(300, 1, 16, 64)
    x[:, 0, 2, 32] = 1.0  # 5.5 rows above the centre (7.5, 31.5), half a column right of it
    moved = RandomAffine((1, 16, 64), degrees=20, shift=0)(x)
    offset = _centre_of_mass(moved) - torch.tensor([7.5, 31.5])
    start = torch.tensor([5.5, 0.5]).norm()
    # A shear in affine_grid's [-1, 1] square would move the dot up to 4x further sideways.
    assert (offset.norm(dim=1) - start).abs().max() < 0.6


def test_flattened_batches_and_standardized_pixels():
    torch.manual_seed(0)
    x = _dots(50, side=8, at=(4, 4))
    mean, scale = torch.full((8, 8), 0.25), torch.full((8, 8), 2.0)
    standardized = ((x - mean) / scale).reshape(50, 64)
    # No rotation: bilinear resampling keeps the mass exactly only for shifts.
    augment = RandomAffine((1, 8, 8), degrees=0, shift=0.1, mean=mean, scale=scale)
    out = augment(standardized)
    assert out.shape == (50, 64)
    # The image moves in data units: black stays black (0 in data units), mass is kept.
    data = out.reshape(50, 1, 8, 8) * scale + mean
    assert data.min() >= -1e-6
    torch.testing.assert_close(data.sum((1, 2, 3)), torch.ones(50), rtol=0, atol=1e-5)


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    from sklearn.datasets import load_digits

    return (load_digits().data[:300] / 16.0).reshape(-1, 8, 8).astype(np.float32)


def test_a_fit_trains_on_moved_images_but_validates_on_the_data(images, monkeypatch):
    from vaekit import training

    params = dict(latent_dim=3, conv_channels=(8,), hidden_dims=(32,), epochs=3, random_state=0)
    plain = VAE(**params).fit(images)
    validated: list[torch.Tensor] = []
    evaluate = training.evaluate

    def spy(module, objective, X, *args, **kwargs):
        validated.append(X.detach().clone())
        return evaluate(module, objective, X, *args, **kwargs)

    monkeypatch.setattr(training, "evaluate", spy)
    moved = VAE(**params, augment="affine").fit(images)
    monkeypatch.undo()
    # Every epoch's validation loss is on the validation rows exactly as the model takes them
    # (here (n, 1, 8, 8) in [0, 1]), never on moved copies.
    val_rows = moved._split(len(images), moved.seed_)[1]
    expected = torch.from_numpy(moved._to_model_input(images[val_rows]))
    assert expected.shape == (30, 1, 8, 8)
    assert len(validated) == 3
    for X_val in validated:
        torch.testing.assert_close(X_val, expected, rtol=0, atol=0)
    # Same seed, same weights at the start, same validation rows: only the training batches
    # differ, so the first epoch's training loss does and the validation split does not.
    assert moved.history_[0]["train_loss"] != plain.history_[0]["train_loss"]
    first = VAE(**params, augment="affine").fit(images)
    assert [h["train_loss"] for h in first.history_] == [h["train_loss"] for h in moved.history_]
    val = np.asarray(plain._split(len(images), plain.seed_)[1])
    np.testing.assert_array_equal(val, moved._split(len(images), moved.seed_)[1])


def test_augmented_gaussian_images_are_standardized_per_channel(images):
    # Raw 0-255 images: the Gaussian likelihood. Per pixel, a border pixel that is always 0
    # has scale 1 and a nearly-black one a tiny scale, so a bright pixel moved onto it would
    # be a target hundreds of units large; per channel it is as large as anywhere else.
    two_channels = np.stack([images * 255, images * 40 + 3], 1)  # (n, 2, 8, 8)
    params = dict(latent_dim=3, conv_channels=(8,), hidden_dims=(32,), epochs=3, random_state=0)
    vae = VAE(**params, augment="affine").fit(two_channels)
    assert vae.likelihood_ == "gaussian"
    for c in range(2):
        np.testing.assert_allclose(vae.mean_[c], two_channels[:, c].mean(), rtol=1e-5)
        np.testing.assert_allclose(vae.scale_[c], two_channels[:, c].std(), rtol=1e-5)
    plain = VAE(**params).fit(two_channels)  # unaugmented: per pixel, as before
    assert plain.scale_[0, 0, 0] == 1.0 and plain.scale_[0, 3, 3] != plain.scale_[0, 4, 4]
    # The training loss (augmented batches) stays of the size of the validation loss.
    last = vae.history_[-1]
    assert last["train_loss"] < 2 * last["val_loss"]


def test_augment_needs_images_and_a_known_name(images):
    with pytest.raises(ConfigError, match="moves images, but X has samples of shape"):
        Autoencoder(augment="affine", epochs=1).fit(images.reshape(len(images), -1))
    with pytest.raises(ConfigError, match="augment must be None or one of affine; got 'flip'"):
        VAE(augment="flip", epochs=1).fit(images)


def test_the_ae_baseline_of_a_comparison_is_augmented_like_the_vae(images):
    _, models = fit_feature_extractors(
        images[:200],
        images[200:],
        latent_dim=2,
        vae_params={"augment": "affine", "epochs": 1, "conv_channels": (4,)},
        include=("ae", "vae_mu"),
    )
    assert models["ae"].augment == models["vae"].augment == "affine"
