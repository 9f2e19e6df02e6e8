"""The plain autoencoder estimator: the VAE's networks without the stochastic layer."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.utils.validation import check_is_fitted

from .estimator import _BaseAutoencoder


class Autoencoder(_BaseAutoencoder):
    """Plain (deterministic) autoencoder with the same networks as :class:`VAE`.

    The encoder outputs a code directly (no stochastic layer, no KL); ``transform`` returns it.
    It is the fair baseline for the VAE's μ(x): same architecture, same budget.

    Parameters
    ----------
    latent_dim : int, default=16
    hidden_dims : tuple of int, default=(512, 256)
    architecture : {"auto", "mlp", "conv"}, default="auto"
    conv_channels : tuple of int, default=(32, 64, 128, 256)
    likelihood : {"auto", "bernoulli", "gaussian"}, default="auto"
        The reconstruction loss: binary cross-entropy for data in [0, 1], Gaussian NLL on
        standardized data otherwise.
    output_variance : "learned" or float, default="learned"
    augment : {None, "affine"}, default=None
        Random rotations and shifts of the training images, as for :class:`VAE`.
    epochs, batch_size, learning_rate, lr_schedule, validation_fraction, patience
        As for :class:`VAE`.
    max_grad_norm, contamination, random_state, device, precision, verbose
        As for :class:`VAE`; the anomaly score is :meth:`score_samples`, minus the
        reconstruction error.

    Attributes
    ----------
    module_, history_, input_shape_, n_features_in_, architecture_, likelihood_
        As for :class:`VAE`.
    mean_, scale_, n_epochs_, seed_, offset_, offset_rows_, device_, feature_names_in_
        As for :class:`VAE`.
    """

    _stochastic = False

    def __init__(
        self,
        latent_dim: int = 16,
        *,
        hidden_dims: tuple[int, ...] = (512, 256),
        architecture: str = "auto",
        conv_channels: tuple[int, ...] = (32, 64, 128, 256),
        likelihood: str = "auto",
        output_variance: str | float = "learned",
        augment: str | None = None,
        epochs: int = 100,
        batch_size: int = 128,
        learning_rate: float = 1e-3,
        lr_schedule: str = "constant",
        validation_fraction: float = 0.1,
        patience: int | None = 10,
        max_grad_norm: float | None = None,
        contamination: float | str = "auto",
        random_state: Any = None,
        device: str = "auto",
        precision: str = "float32",
        verbose: bool = False,
    ) -> None:
        self.latent_dim = latent_dim
        self.hidden_dims = hidden_dims
        self.architecture = architecture
        self.conv_channels = conv_channels
        self.likelihood = likelihood
        self.output_variance = output_variance
        self.augment = augment
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.lr_schedule = lr_schedule
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.max_grad_norm = max_grad_norm
        self.contamination = contamination
        self.random_state = random_state
        self.device = device
        self.precision = precision
        self.verbose = verbose

    def score_samples(self, X: Any) -> np.ndarray:
        """Minus the reconstruction error, -(-log p(x | z = μ(x))), per sample.

        Higher means better reconstructed (more typical). Under the Gaussian likelihood with a
        fixed unit variance this is -½ squared error (standardized units) minus a constant.
        -inf, with a warning, for a row outside [0, 1] under the Bernoulli likelihood, and for
        a row too large for float32 once standardized under the Gaussian one.

        Parameters
        ----------
        X : array-like of shape (n_samples, ...)

        Returns
        -------
        ndarray of shape (n_samples,), float64
        """
        check_is_fitted(self, "module_")
        return self._scores(self._validate_X(X, reset=False))

    def _scores(self, X: np.ndarray) -> np.ndarray:
        """:meth:`score_samples` of validated X."""
        return -self._reconstruction_nll(X)
