"""The scikit-learn estimators :class:`VAE` and :class:`Autoencoder`, over ``nn`` and ``training``.

The estimator owns everything the torch modules must not know about: input validation, the
choice of architecture and likelihood, feature scaling, numpy <-> tensor conversion, batching,
device placement and seeding (house rule 2).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_array, check_is_fitted, validate_data

from .checkpoint import TrainingState, load_checkpoint, save_checkpoint
from .errors import ConfigError, DataError
from .losses import LIKELIHOODS, decoder_mean, gaussian_kl, reconstruction_nll
from .nn import AutoencoderModule, build_module, reparameterize
from .persistence import jsonable_params
from .schedules import KL_SCHEDULES
from .training import Objective, TrainConfig, train

if TYPE_CHECKING:
    import os

ARCHITECTURES = ("auto", "mlp", "conv")
# Transform, reconstruction and scoring run in batches of this many rows: large enough to keep
# the matrix multiplies efficient, small enough that a conv model's activations fit in memory.
_PREDICT_BATCH = 2048


def resolve_device(device: str | torch.device) -> torch.device:
    """``"auto"`` -> CUDA when available, else CPU; anything else as torch understands it."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ConfigError(
            f"device={device!r} is not a torch device; use 'auto', 'cpu' or 'cuda'."
        ) from exc
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(
            f"device={device!r} was requested but CUDA is not available; use 'auto' or 'cpu'."
        )
    return resolved


def _torch_seed(random_state: Any) -> int:
    """An int seed for torch from a scikit-learn ``random_state`` (None, int or RandomState)."""
    return int(check_random_state(random_state).randint(0, 2**31 - 1))


class _BaseAutoencoder(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """Shared implementation of :class:`VAE` and :class:`Autoencoder` (not public)."""

    _stochastic: ClassVar[bool]

    # ------------------------------------------------------------------ validation
    def _check_params(self) -> None:
        def positive_int(name: str) -> None:
            value = getattr(self, name)
            if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"{name} must be a positive integer, got {value!r}.")

        def choice(name: str, options: tuple[str, ...]) -> None:
            if getattr(self, name) not in options:
                raise ConfigError(
                    f"{name} must be one of {', '.join(options)}; got {getattr(self, name)!r}."
                )

        for name in ("latent_dim", "epochs", "batch_size"):
            positive_int(name)
        for name, widths in (
            ("hidden_dims", self.hidden_dims),
            ("conv_channels", self.conv_channels),
        ):
            try:
                ok = len(widths) >= 1 and all(
                    isinstance(w, numbers.Integral) and not isinstance(w, bool) and w >= 1
                    for w in widths
                )
            except TypeError:
                ok = False
            if not ok:
                raise ConfigError(
                    f"{name} must be a non-empty sequence of positive integers, got {widths!r}."
                )
        choice("architecture", ARCHITECTURES)
        choice("likelihood", ("auto", *LIKELIHOODS))
        if not (
            self.output_variance == "learned"
            or (_is_real(self.output_variance) and self.output_variance > 0)
        ):
            raise ConfigError(
                "output_variance must be 'learned' or a positive number, "
                f"got {self.output_variance!r}."
            )
        if not (_is_real(self.learning_rate) and self.learning_rate > 0):
            raise ConfigError(
                f"learning_rate must be a positive number, got {self.learning_rate!r}."
            )
        if not (_is_real(self.validation_fraction) and 0 <= self.validation_fraction < 1):
            raise ConfigError(
                f"validation_fraction must be in [0, 1), got {self.validation_fraction!r}."
            )
        if self.patience is not None and not (
            isinstance(self.patience, numbers.Integral) and self.patience >= 1
        ):
            raise ConfigError(
                f"patience must be a positive integer or None, got {self.patience!r}."
            )
        if self.max_grad_norm is not None and not (
            _is_real(self.max_grad_norm) and self.max_grad_norm > 0
        ):
            raise ConfigError(
                f"max_grad_norm must be a positive number or None, got {self.max_grad_norm!r}."
            )
        if self._stochastic:
            if not (_is_real(self.beta) and self.beta >= 0):
                raise ConfigError(f"beta must be a non-negative number, got {self.beta!r}.")
            choice("kl_schedule", KL_SCHEDULES)
            if not (_is_real(self.kl_warmup_epochs) and self.kl_warmup_epochs >= 0):
                raise ConfigError(f"kl_warmup_epochs must be >= 0, got {self.kl_warmup_epochs!r}.")
            if not (_is_real(self.free_bits) and self.free_bits >= 0):
                raise ConfigError(
                    f"free_bits must be >= 0 (nats per dimension), got {self.free_bits!r}."
                )
        resolve_device(self.device)

    def _validate_X(self, X: Any, *, reset: bool) -> np.ndarray:
        """Check X and return it as a float32 array of shape (n, *input_shape_)."""
        if not hasattr(X, "shape"):  # lists and other array-likes: convert once, here
            X = np.asarray(X)
        if len(X.shape) <= 2:
            # scikit-learn's own checks and messages (NaN, sparse, 1-D, feature-count mismatch).
            try:
                return validate_data(self, X, reset=reset, dtype=np.float32)
            except ValueError as exc:
                raise _data_error(exc) from None
        try:
            X = check_array(X, allow_nd=True, dtype=np.float32)
        except ValueError as exc:
            raise _data_error(exc) from None
        if X.ndim > 4:
            raise DataError(
                f"Expected (n, d), (n, h, w) or (n, c, h, w) data, got an array of shape {X.shape}."
            )
        if reset:
            self.n_features_in_ = int(math.prod(X.shape[1:]))
        elif tuple(X.shape[1:]) != tuple(self.input_shape_):
            raise DataError(
                f"X has samples of shape {tuple(X.shape[1:])}, but {type(self).__name__} was "
                f"fitted on samples of shape {tuple(self.input_shape_)}."
            )
        return X

    # ------------------------------------------------------------------ fitting
    def fit(
        self,
        X: Any,
        y: Any = None,
        *,
        checkpoint_path: str | os.PathLike | None = None,
        resume: bool = False,
    ) -> _BaseAutoencoder:
        """Train on X.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), (n, h, w) or (n, c, h, w)
            Training data. Images (3-D / 4-D) get the convolutional architecture by default.
        y : ignored
            Present for scikit-learn API consistency (Pipeline, GridSearchCV).
        checkpoint_path : str or PathLike, optional
            File to rewrite atomically after every epoch with everything needed to continue
            (weights, optimizer, early stopping, RNG states, history).
        resume : bool, default=False
            Continue from ``checkpoint_path`` instead of starting over. The result equals an
            uninterrupted fit with the same data and parameters (bit for bit on CPU). ``epochs``
            may be raised to train longer; other parameters must match the checkpoint's.

        Returns
        -------
        self
        """
        if resume and checkpoint_path is None:
            raise ConfigError("resume=True needs the checkpoint_path to resume from.")
        self._check_params()
        self.__dict__.pop("module_", None)  # a failed refit must not look fitted
        X = self._validate_X(X, reset=True)
        n = X.shape[0]
        if n < 2:
            raise DataError(
                f"{type(self).__name__} needs at least 2 samples to fit, got {n} sample."
            )
        self.input_shape_ = tuple(int(s) for s in X.shape[1:])
        self.architecture_ = self._resolve_architecture()
        self.likelihood_ = self._resolve_likelihood(X)
        self.mean_, self.scale_ = self._fit_scaling(X)
        self.device_ = resolve_device(self.device)

        seed = _torch_seed(self.random_state)
        train_idx, val_idx = self._split(n, seed)
        X_model = self._to_model_input(X)
        X_train = torch.from_numpy(X_model[train_idx]).to(self.device_)
        X_val = torch.from_numpy(X_model[val_idx]).to(self.device_) if len(val_idx) else None

        # All randomness of a fit (initial weights, batch order, ε) comes from this one seed, in a
        # forked RNG so that fitting never changes the caller's global torch random state.
        fingerprint = {"n_samples": n, "sample_shape": list(self.input_shape_)}
        resume_from, on_checkpoint = None, None
        if checkpoint_path is not None:
            checkpoint_path = Path(checkpoint_path)
            if resume:
                resume_from = self._load_checkpoint(checkpoint_path, fingerprint)
            params = {**jsonable_params(self.get_params()), "data": fingerprint}

            def on_checkpoint(state: TrainingState) -> None:
                save_checkpoint(checkpoint_path, state, params)

        devices = [self.device_] if self.device_.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed)
            self.module_ = self._build_module().to(self.device_)
            self.history_ = train(
                self.module_,
                self._objective(),
                X_train,
                X_val,
                self._train_config(),
                resume_from=resume_from,
                on_checkpoint=on_checkpoint,
            )
        self.n_epochs_ = len(self.history_)
        return self

    def _load_checkpoint(self, path: Path, fingerprint: dict[str, Any]) -> TrainingState:
        """The checkpoint's training state, after checking it belongs to this fit."""
        state, saved = load_checkpoint(path, self.device_)
        current = {**jsonable_params(self.get_params()), "data": fingerprint}
        # These may change between the interrupted run and its resumption.
        free = {"epochs", "verbose", "device"}
        differ = sorted(k for k in current.keys() - free if saved.get(k) != current[k])
        if differ:
            shown = ", ".join(f"{k}={saved.get(k)!r} (now {current[k]!r})" for k in differ)
            raise ConfigError(
                f"The checkpoint {path} was written by a different fit: {shown}; resume with "
                "the same data and parameters."
            )
        return state

    def _resolve_architecture(self) -> str:
        images = len(self.input_shape_) >= 2
        if self.architecture == "conv" and not images:
            raise ConfigError(
                "architecture='conv' needs images shaped (n, h, w) or (n, c, h, w); "
                f"got samples of shape {self.input_shape_}. Use architecture='mlp' or reshape X."
            )
        if self.architecture == "auto":
            return "conv" if images else "mlp"
        return self.architecture

    def _resolve_likelihood(self, X: np.ndarray) -> str:
        in_unit_interval = bool(X.min() >= 0.0 and X.max() <= 1.0)
        if self.likelihood == "auto":
            return "bernoulli" if in_unit_interval else "gaussian"
        if self.likelihood == "bernoulli" and not in_unit_interval:
            raise DataError(
                f"likelihood='bernoulli' needs data in [0, 1], but X ranges over "
                f"[{X.min():.4g}, {X.max():.4g}]; rescale X or use likelihood='gaussian'."
            )
        return self.likelihood

    def _fit_scaling(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per-feature standardization for Gaussian data; the identity for Bernoulli data."""
        shape = self.input_shape_
        if self.likelihood_ != "gaussian":
            return np.zeros(shape, np.float32), np.ones(shape, np.float32)
        mean = X.mean(axis=0, dtype=np.float64)
        std = X.std(axis=0, dtype=np.float64)
        # A constant feature has std 0: leave it unscaled (it becomes exactly 0) instead of NaN.
        std[std < 1e-8 * np.maximum(1.0, np.abs(mean))] = 1.0
        return mean.astype(np.float32), std.astype(np.float32)

    def _split(self, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """Shuffled train / validation row indices; no validation split when it would be empty."""
        order = np.random.default_rng(seed).permutation(n)
        n_val = round(n * self.validation_fraction)
        if n_val < 1 or n - n_val < 1:
            return np.sort(order), order[:0]
        return np.sort(order[n_val:]), np.sort(order[:n_val])

    def _module_input_shape(self) -> tuple[int, ...]:
        if self.architecture_ == "mlp":
            return (int(math.prod(self.input_shape_)),)
        return self.input_shape_ if len(self.input_shape_) == 3 else (1, *self.input_shape_)

    def _to_model_input(self, X: np.ndarray) -> np.ndarray:
        """Scale and reshape (n, *input_shape_) data to what the module takes (may share memory)."""
        scaled = (X - self.mean_) / self.scale_ if self.likelihood_ == "gaussian" else X
        return np.ascontiguousarray(
            scaled.reshape(X.shape[0], *self._module_input_shape()), np.float32
        )

    def _from_model_output(self, x: torch.Tensor) -> np.ndarray:
        """Decoder mean in model space (n, ...) -> data space (n, *input_shape_), float32."""
        out = x.detach().cpu().numpy().reshape(x.shape[0], *self.input_shape_)
        if self.likelihood_ == "gaussian":
            out = out * self.scale_ + self.mean_
        return out.astype(np.float32, copy=False)

    def _build_module(self) -> AutoencoderModule:
        return build_module(
            self._module_input_shape(),
            latent_dim=self.latent_dim,
            hidden_dims=tuple(self.hidden_dims),
            conv_channels=tuple(self.conv_channels),
            architecture=self.architecture_,
            stochastic=self._stochastic,
            decoder_variance=self.output_variance if self.likelihood_ == "gaussian" else None,
        )

    def _objective(self) -> Objective:
        return Objective(self.likelihood_, self._stochastic, getattr(self, "free_bits", 0.0))

    def _train_config(self) -> TrainConfig:
        return TrainConfig(
            epochs=self.epochs,
            batch_size=self.batch_size,
            learning_rate=float(self.learning_rate),
            beta=float(getattr(self, "beta", 0.0)),
            kl_schedule=getattr(self, "kl_schedule", "constant"),
            kl_warmup_epochs=float(getattr(self, "kl_warmup_epochs", 0.0)),
            patience=self.patience,
            max_grad_norm=self.max_grad_norm,
            verbose=bool(self.verbose),
        )

    # ------------------------------------------------------------------ inference helpers
    def _batches(self, X: np.ndarray) -> Iterator[torch.Tensor]:
        """Model-space tensors of consecutive rows of validated X, one batch at a time."""
        for start in range(0, X.shape[0], _PREDICT_BATCH):
            chunk = self._to_model_input(X[start : start + _PREDICT_BATCH])
            yield torch.from_numpy(chunk).to(self.device_)

    def _latent_batches(self, Z: Any) -> Iterator[torch.Tensor]:
        try:
            Z = check_array(Z, dtype=np.float32)
        except ValueError as exc:
            raise _data_error(exc) from None
        if Z.shape[1] != self.latent_dim:
            raise DataError(
                f"Z has {Z.shape[1]} columns, but the latent space has {self.latent_dim} "
                "dimensions."
            )
        for start in range(0, Z.shape[0], _PREDICT_BATCH):
            yield torch.from_numpy(np.ascontiguousarray(Z[start : start + _PREDICT_BATCH])).to(
                self.device_
            )

    def _encode(self, X: Any) -> tuple[np.ndarray, np.ndarray | None]:
        check_is_fitted(self, "module_")
        X = self._validate_X(X, reset=False)
        self.module_.eval()
        mus, logvars = [], []
        with torch.inference_mode():
            for batch in self._batches(X):
                mu, logvar = self.module_.encode(batch)
                mus.append(mu.cpu().numpy())
                if logvar is not None:
                    logvars.append(logvar.cpu().numpy())
        mu = np.concatenate(mus) if mus else np.empty((0, self.latent_dim), np.float32)
        return mu, (np.concatenate(logvars) if logvars else None)

    def _decode(self, batches: Iterator[torch.Tensor]) -> np.ndarray:
        self.module_.eval()
        outs = []
        with torch.inference_mode():
            for z in batches:
                outs.append(
                    self._from_model_output(decoder_mean(self.likelihood_, self.module_.decode(z)))
                )
        return np.concatenate(outs) if outs else np.empty((0, *self.input_shape_), np.float32)

    def _log_scale_jacobian(self) -> float:
        """Σ log scale_: converts densities of standardized data back to data units."""
        return (
            float(np.log(self.scale_.astype(np.float64)).sum())
            if self.likelihood_ == "gaussian"
            else 0.0
        )

    # ------------------------------------------------------------------ public inference API
    def transform(self, X: Any) -> np.ndarray:
        """μ(x): the encoder mean, a deterministic feature vector.

        Parameters
        ----------
        X : array-like of shape (n_samples, ...)
            Same per-sample shape as in ``fit``.

        Returns
        -------
        ndarray of shape (n_samples, latent_dim), float32
        """
        return self._encode(X)[0]

    def inverse_transform(self, X: Any) -> np.ndarray:
        """Decode latent vectors to the decoder mean E[x | z], in data units.

        Parameters
        ----------
        X : array-like of shape (n_samples, latent_dim)
            Latent vectors (named X for scikit-learn compatibility).

        Returns
        -------
        ndarray of shape (n_samples, *input_shape_), float32
        """
        check_is_fitted(self, "module_")
        return self._decode(self._latent_batches(X))

    def reconstruct(self, X: Any) -> np.ndarray:
        """Decoder mean at z = μ(x): the model's deterministic reconstruction of X.

        Parameters
        ----------
        X : array-like of shape (n_samples, ...)

        Returns
        -------
        ndarray of the same shape as X, float32
        """
        return self.inverse_transform(self.transform(X))

    def score(self, X: Any, y: Any = None) -> float:
        """Mean of :meth:`score_samples` (higher is better; used by GridSearchCV).

        Parameters
        ----------
        X : array-like of shape (n_samples, ...)
        y : ignored

        Returns
        -------
        float
        """
        return float(np.mean(self.score_samples(X)))

    @property
    def _n_features_out(self) -> int:  # used by get_feature_names_out: vae0, vae1, ...
        return self.latent_dim

    def save(self, path: str | os.PathLike) -> None:
        """Write the fitted model to directory ``path`` (see :func:`vaekit.load`).

        Weights go to ``model.safetensors``; parameters, scaling metadata, library versions and
        a checksum of the weights to ``config.json``; the training history to ``history.json``.
        """
        from .persistence import save_model

        save_model(self, path)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        tags.transformer_tags.preserves_dtype = ["float32"]  # outputs are always float32
        tags.non_deterministic = self.random_state is None
        return tags


def _data_error(exc: ValueError) -> DataError:
    """scikit-learn's validation message as one sentence (no array dump), plus what to do."""
    message = str(exc).strip()
    first = message.splitlines()[0].rstrip(":").rstrip() if message else "Invalid input X"
    if not first.endswith("."):
        first += "."
    if "NaN" in first:
        first += " Drop or impute the missing values first (e.g. sklearn.impute.SimpleImputer)."
    elif "infinity" in first:
        first += " Replace or drop the infinite values first."
    elif "Reshape your data" in message:
        first += (
            " Reshape your data with X.reshape(-1, 1) if it has a single feature or "
            "X.reshape(1, -1) if it is a single sample."
        )
    return DataError(first)


def _is_real(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


class VAE(_BaseAutoencoder):
    """Variational autoencoder (β-VAE) with a scikit-learn interface.

    ``transform`` returns μ(x), the encoder mean: a deterministic feature vector. Training
    minimizes the negative ELBO, reconstruction NLL + β·KL(q(z|x) || N(0, I)), per sample.

    Parameters
    ----------
    latent_dim : int, default=16
        Size of the latent space (k).
    hidden_dims : tuple of int, default=(512, 256)
        MLP hidden widths, encoder order; the decoder mirrors them. The conv architecture uses
        the last one as the width of its dense layer.
    architecture : {"auto", "mlp", "conv"}, default="auto"
        ``auto``: conv for images ((n, h, w) or (n, c, h, w)), MLP for (n, d) data.
    conv_channels : tuple of int, default=(32, 64, 128, 256)
        Channels of the stride-2 convolutions; an image uses as many as it takes to bring its
        smaller side to 7 pixels or less (8x8: 1, 28x28: 2, 64x64: 4).
    likelihood : {"auto", "bernoulli", "gaussian"}, default="auto"
        ``auto``: Bernoulli for data in [0, 1] (continuous pixel intensities allowed), otherwise
        Gaussian on per-feature standardized data (the scaling is stored and inverted on decode).
    output_variance : "learned" or float, default="learned"
        Gaussian decoder variance (in standardized units): learned per feature, or fixed.
    beta : float, default=1.0
        Weight of the KL term (β-VAE). β > 1 favours disentangling, β < 1 reconstruction.
    kl_schedule : {"constant", "linear", "cyclical"}, default="linear"
        How β ramps up over ``kl_warmup_epochs`` (linear warm-up, or repeated cyclically).
    kl_warmup_epochs : float, default=0
        Length of the KL warm-up; 0 means β from the first step.
    free_bits : float, default=0.0
        Nats per latent dimension that the KL term does not penalize (Kingma et al. 2016).
    epochs : int, default=100
        Maximum number of passes over the training split.
    batch_size : int, default=128
    learning_rate : float, default=1e-3
        Adam's step size.
    validation_fraction : float, default=0.1
        Share of the rows held out for early stopping; 0 disables the split.
    patience : int or None, default=10
        Epochs without a better validation loss before stopping (None: run all epochs). The
        best weights are restored at the end.
    max_grad_norm : float or None, default=None
        Gradient-norm clipping threshold; None disables clipping. Off by default because it
        costs ~10% of a step on small MLPs and training is already protected: log σ² is
        clamped, and a non-finite loss rolls back to the last good weights with a halved
        learning rate.
    random_state : int, RandomState or None, default=None
        Seeds weights, batch order, the validation split and ε; equal seeds give equal models
        on the CPU.
    device : str, default="auto"
        ``auto`` picks CUDA when available.
    verbose : bool, default=False
        Show a progress bar.

    Attributes
    ----------
    module_ : AutoencoderModule
        The trained torch module.
    history_ : list of dict
        Per epoch: train/val loss, reconstruction, KL (and per dimension), β, lr, seconds.
    input_shape_ : tuple of int
        Shape of one sample.
    n_features_in_ : int
        Number of input features (pixels for images).
    architecture_, likelihood_ : str
        What ``auto`` resolved to.
    mean_, scale_ : ndarray of shape input_shape_
        Standardization applied before the Gaussian likelihood (zeros and ones otherwise).
    n_epochs_ : int
        Epochs actually run.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from vaekit import VAE
    >>> X = load_digits().data / 16.0
    >>> vae = VAE(latent_dim=8, epochs=5, random_state=0).fit(X)
    >>> vae.transform(X[:3]).shape
    (3, 8)
    """

    _stochastic = True

    def __init__(
        self,
        latent_dim: int = 16,
        *,
        hidden_dims: tuple[int, ...] = (512, 256),
        architecture: str = "auto",
        conv_channels: tuple[int, ...] = (32, 64, 128, 256),
        likelihood: str = "auto",
        output_variance: str | float = "learned",
        beta: float = 1.0,
        kl_schedule: str = "linear",
        kl_warmup_epochs: float = 0,
        free_bits: float = 0.0,
        epochs: int = 100,
        batch_size: int = 128,
        learning_rate: float = 1e-3,
        validation_fraction: float = 0.1,
        patience: int | None = 10,
        max_grad_norm: float | None = None,
        random_state: Any = None,
        device: str = "auto",
        verbose: bool = False,
    ) -> None:
        self.latent_dim = latent_dim
        self.hidden_dims = hidden_dims
        self.architecture = architecture
        self.conv_channels = conv_channels
        self.likelihood = likelihood
        self.output_variance = output_variance
        self.beta = beta
        self.kl_schedule = kl_schedule
        self.kl_warmup_epochs = kl_warmup_epochs
        self.free_bits = free_bits
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.max_grad_norm = max_grad_norm
        self.random_state = random_state
        self.device = device
        self.verbose = verbose

    def encode(
        self, X: Any, *, sample: bool = False, random_state: Any = None
    ) -> tuple[np.ndarray, np.ndarray] | np.ndarray:
        """The approximate posterior q(z | x) = N(μ, diag σ²), or a draw from it.

        Parameters
        ----------
        X : array-like of shape (n_samples, ...)
        sample : bool, default=False
            Return z ~ q(z | x) instead of (μ, log σ²).
        random_state : int, RandomState or None
            Seeds the draw when ``sample`` (None: a fresh draw every call).

        Returns
        -------
        (mu, logvar) : two ndarrays of shape (n_samples, latent_dim), or
        z : ndarray of shape (n_samples, latent_dim) when ``sample``
        """
        mu, logvar = self._encode(X)
        if not sample:
            return mu, logvar
        generator = torch.Generator().manual_seed(_torch_seed(random_state))
        z = reparameterize(torch.from_numpy(mu), torch.from_numpy(logvar), generator)
        return z.numpy()

    def sample(self, n_samples: int = 1, *, random_state: Any = None) -> np.ndarray:
        """Decoder means of z ~ N(0, I): new data from the generative model.

        Parameters
        ----------
        n_samples : int, default=1
        random_state : int, RandomState or None
            Seeds z (None: a fresh draw every call).

        Returns
        -------
        ndarray of shape (n_samples, *input_shape_), float32
        """
        check_is_fitted(self, "module_")
        if not isinstance(n_samples, numbers.Integral) or n_samples < 1:
            raise ConfigError(f"n_samples must be a positive integer, got {n_samples!r}.")
        generator = torch.Generator().manual_seed(_torch_seed(random_state))
        Z = torch.randn(int(n_samples), self.latent_dim, generator=generator)
        return self.inverse_transform(Z.numpy())

    def score_samples(self, X: Any, n_mc_samples: int = 8) -> np.ndarray:
        """Per-sample evidence lower bound log p(x) ≥ E_q[log p(x|z)] - KL, in nats.

        Higher means more typical. The expectation is a Monte Carlo mean over ``n_mc_samples``
        draws of z; the KL is exact. The draws use common random numbers: the same
        ε_1..ε_S ~ N(0, I), seeded from ``random_state``, for every row (z = μ + σ·ε_s), so a
        row's score does not depend on which other rows are scored with it or in what order,
        and differences between rows are not blurred by independent noise.
        For Gaussian data the value is a density of the original (unstandardized) data.

        Parameters
        ----------
        X : array-like of shape (n_samples, ...)
        n_mc_samples : int, default=8

        Returns
        -------
        ndarray of shape (n_samples,), float64
        """
        check_is_fitted(self, "module_")
        X = self._validate_X(X, reset=False)
        generator = torch.Generator().manual_seed(_torch_seed(self.random_state))
        eps = torch.randn(n_mc_samples, self.latent_dim, generator=generator).to(self.device_)
        logvar_out = self.module_.output_logvar()
        self.module_.eval()
        scores = []
        with torch.inference_mode():
            for x in self._batches(X):
                mu, logvar = self.module_.encode(x)
                std = torch.exp(0.5 * logvar)
                recon = torch.zeros(x.shape[0], device=self.device_)
                for e in eps:
                    loc = self.module_.decode(mu + std * e)
                    recon += reconstruction_nll(self.likelihood_, x, loc, logvar_out)
                elbo = -(recon / n_mc_samples) - gaussian_kl(mu, logvar).sum(1)
                scores.append(elbo.double().cpu().numpy())
        return np.concatenate(scores) - self._log_scale_jacobian()


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
    epochs, batch_size, learning_rate, validation_fraction, patience, max_grad_norm,
    random_state, device, verbose
        As for :class:`VAE`.

    Attributes
    ----------
    module_, history_, input_shape_, n_features_in_, architecture_, likelihood_, mean_, scale_,
    n_epochs_
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
        epochs: int = 100,
        batch_size: int = 128,
        learning_rate: float = 1e-3,
        validation_fraction: float = 0.1,
        patience: int | None = 10,
        max_grad_norm: float | None = None,
        random_state: Any = None,
        device: str = "auto",
        verbose: bool = False,
    ) -> None:
        self.latent_dim = latent_dim
        self.hidden_dims = hidden_dims
        self.architecture = architecture
        self.conv_channels = conv_channels
        self.likelihood = likelihood
        self.output_variance = output_variance
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.max_grad_norm = max_grad_norm
        self.random_state = random_state
        self.device = device
        self.verbose = verbose

    def score_samples(self, X: Any) -> np.ndarray:
        """Minus the reconstruction error, -(-log p(x | z = μ(x))), per sample.

        Higher means better reconstructed (more typical). Under the Gaussian likelihood with a
        fixed unit variance this is -½ squared error (standardized units) minus a constant.

        Parameters
        ----------
        X : array-like of shape (n_samples, ...)

        Returns
        -------
        ndarray of shape (n_samples,), float64
        """
        check_is_fitted(self, "module_")
        X = self._validate_X(X, reset=False)
        logvar_out = self.module_.output_logvar()
        self.module_.eval()
        scores = []
        with torch.inference_mode():
            for x in self._batches(X):
                mu, _ = self.module_.encode(x)
                nll = reconstruction_nll(self.likelihood_, x, self.module_.decode(mu), logvar_out)
                scores.append((-nll).double().cpu().numpy())
        return np.concatenate(scores) - self._log_scale_jacobian()
