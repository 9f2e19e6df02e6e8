"""The scikit-learn estimators :class:`VAE` and :class:`Autoencoder`, over ``nn`` and ``training``.

The estimator owns everything the torch modules must not know about: input validation, the
choice of architecture and likelihood, feature scaling, numpy <-> tensor conversion, batching,
device placement and seeding (house rule 2).
"""

from __future__ import annotations

import math
import numbers
import os
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_array, check_is_fitted, validate_data

from .augment import RandomAffine
from .checkpoint import CHECKPOINT_FILE, TrainingState, load_checkpoint, save_checkpoint
from .distributed import (
    World,
    broadcast_seed,
    device_for,
    init_process_group,
    is_main_process,
    shard,
    world,
)
from .errors import ConfigError, DataError, PosteriorCollapseWarning
from .losses import (
    decoder_mean,
    gaussian_kl,
    gaussian_log_density,
    iwae_bound,
    reconstruction_nll,
)
from .nn import AutoencoderModule, build_module, reparameterize
from .params import check_params, resolve_device
from .persistence import check_output_file, jsonable_params
from .rows import MappedRows, iter_chunks, memory_map_of, take_rows
from .training import Objective, TrainConfig, train

# Transform, reconstruction and scoring run in batches of this many rows: large enough to keep
# the matrix multiplies efficient, small enough that a conv model's activations fit in memory.
_PREDICT_BATCH = 2048
# ... except a conv model on a CPU: at 2,048 rows each activation (32 x 14 x 14 floats per MNIST
# row, 51 MB) spills out of the cache. Measured on 2 cores: a latent-32 MNIST conv VAE's
# transform ran 9.9k rows/s at 512 rows, 5.5k at 2,048; its IWAE (k=50) 1.5x faster with 512
# row x sample pairs per pass than with 4,096. Session 9, the latent-20 speed-benchmark model,
# transform of 20k MNIST rows interleaved 6 times: 8.9k rows/s at 256 rows, 6.4k at 512 (and
# 9.0k at 128). An MLP is flat from 512 rows up, and a GPU wants large batches.
_PREDICT_BATCH_CONV_CPU = 256
# The importance-weighted likelihood decodes this many (row, sample) pairs per forward pass: the
# memory of one pass is bounded by it whatever k is (about 170 MB for an MNIST conv decoder).
_IWAE_PAIRS = 4096
# What fit measures on held-out rows after training (anomaly threshold, active units) uses at
# most this many, evenly spaced: 100 rows beyond a 5% quantile and a variance good to ~3%, for
# a fraction of an epoch (each row is scored with 8 decoder passes).
_DIAGNOSTIC_ROWS = 2_000
# Fewer held-out rows than this beyond the contamination quantile, and the threshold is little
# better than their minimum (measured with contamination 0.05: 10 rows gave 3-16% of new inliers
# flagged over 4 seeds, 100 rows 4-10%).
_THRESHOLD_MIN_TAIL = 5
# CPU matrix-multiply kernels take other code paths for a handful of rows (gemv, small-M
# kernels), which moves a row's outputs in the 7th digit with the size of its batch. Scores are
# therefore computed with every network call padded to a multiple of this many rows: measured
# bitwise independent of the batching on x86 (MKL / oneDNN, 1 or 2 threads), so a row's score
# does not depend on the rows scored with it, even near the anomaly threshold where
# decision_function is close to 0 (scikit-learn's subset-invariance check).
_ROW_MULTIPLE = 16
DEFAULT_CONTAMINATION = 0.05  # contamination="auto": the least typical 5% of held-out rows
ACTIVE_UNIT_THRESHOLD = 0.01  # Burda et al. 2016: unit u is active if Cov_x(E_q[z_u | x]) > 0.01
COLLAPSE_FRACTION = 0.1  # posterior collapse: fewer than max(1, 10% of k) units active


def _column_moments(X: np.ndarray, chunk_rows: int = 16384) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature mean and standard deviation in float64, two passes over row chunks.

    Chunked so that a memory-mapped X larger than memory is never copied whole (``X.std``
    would allocate an (n, ...) float64 temporary).
    """
    n = X.shape[0]
    total = np.zeros(X.shape[1:], np.float64)
    for chunk in iter_chunks(X, chunk_rows):
        total += chunk.sum(axis=0, dtype=np.float64)
    mean = total / n
    squares = np.zeros(X.shape[1:], np.float64)
    for chunk in iter_chunks(X, chunk_rows):
        squares += np.square(chunk - mean).sum(axis=0)
    return mean, np.sqrt(squares / n)


def _per_channel(
    mean: np.ndarray, std: np.ndarray, image_shape: tuple[int, ...]
) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel moments (*input_shape) -> each channel's moments, repeated over its pixels.

    Every pixel has the same number of rows, so a channel's variance is the mean over its
    pixels of the pixel variance plus the squared distance of the pixel mean to the channel's.
    """
    c = image_shape[0]
    pixel_mean, pixel_var = mean.reshape(c, -1), np.square(std).reshape(c, -1)
    channel_mean = pixel_mean.mean(1, keepdims=True)
    channel_var = (pixel_var + np.square(pixel_mean - channel_mean)).mean(1, keepdims=True)
    repeat = np.ones_like(pixel_mean)
    return (
        (channel_mean * repeat).reshape(mean.shape),
        (np.sqrt(channel_var) * repeat).reshape(mean.shape),
    )


# The fit's seed travels in a checkpoint's parameters under this key (not compared on resume).
_SEED_KEY = "fit_seed"


def _value_range(X: np.ndarray) -> tuple[float, float]:
    """Smallest and largest value of X, block by block (a memory map is never read whole)."""
    lo, hi = np.inf, -np.inf
    for chunk in iter_chunks(X):
        lo, hi = min(lo, float(chunk.min())), max(hi, float(chunk.max()))
    return lo, hi


def _torch_seed(random_state: Any) -> int:
    """An int seed for torch from a scikit-learn ``random_state`` (None, int or RandomState)."""
    return int(check_random_state(random_state).randint(0, 2**31 - 1))


def collapse_message(
    n_active: int, latent_dim: int, where: str, threshold: float = ACTIVE_UNIT_THRESHOLD
) -> str | None:
    """The posterior-collapse warning for ``n_active`` active units out of ``latent_dim``, or None.

    The rule: collapse when fewer than ``max(1, COLLAPSE_FRACTION * latent_dim)`` units are
    active, i.e. no active unit at all up to k = 10, fewer than a tenth of them beyond. It flags
    a code that carries (almost) no information, not a VAE that switches off the units it does
    not need, which is what a VAE with a generous k normally does (measured, β = 1: digits in
    [0, 1] use 4 units of k = 8 or 16 and 6-11 of k = 32; MNIST 14-18 of 32), while β = 8 on
    digits leaves 0 of 8 (see tests/test_generative.py and the README).
    """
    if n_active >= max(1.0, COLLAPSE_FRACTION * latent_dim):
        return None
    return (
        f"Posterior collapse: {n_active} of {latent_dim} latent units are active on {where} "
        f"(variance of μ(x) over the rows > {threshold:g}), so the code says almost "
        "nothing about x; lower beta, use a KL warm-up (kl_warmup_epochs) or free_bits, or "
        "train longer."
    )


class _BaseAutoencoder(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """Shared implementation of :class:`VAE` and :class:`Autoencoder` (not public)."""

    _stochastic: ClassVar[bool]

    # ------------------------------------------------------------------ validation
    def _check_params(self) -> None:
        check_params(self, stochastic=self._stochastic)

    def _as_samples(self, X: np.ndarray) -> np.ndarray:
        """Rows of a fitted model's input, (n, d) -> (n, *input_shape_) (a view).

        An image model takes flattened rows too (their feature count is already checked):
        scaling and the network both need the sample shape.
        """
        return X.reshape(X.shape[0], *self.input_shape_)

    def _validate_X(self, X: Any, *, reset: bool) -> np.ndarray:
        """Check X and return it as a float array of shape (n, *input_shape_).

        Images become float32. A table stays float64 when it is float64 or integer: a column
        such as timestamps (1.7e9 ± 10) has no variation left in float32, whose spacing there
        is 128; standardization (:meth:`_to_model_input`) then happens in float64.
        """
        if sp.issparse(X):
            raise DataError(
                "X is a sparse matrix; vaekit trains on dense arrays: pass X.toarray()."
            )
        if not hasattr(X, "shape"):  # lists and other array-likes: convert once, here
            try:
                X = np.asarray(X)
            except ValueError:  # ragged rows
                raise DataError(
                    "X could not be read as an array (rows of different lengths?); pass a "
                    "2-D array of numbers or an array of images."
                ) from None
        if getattr(getattr(X, "dtype", None), "names", None):
            raise DataError(
                f"X is a structured array with fields {', '.join(X.dtype.names)}; pass a plain "
                "numeric array (numpy.lib.recfunctions.structured_to_unstructured)."
            )
        if isinstance(X, np.memmap) and X.dtype == np.float32 and X.shape[0] > 0:
            # A float32 memory map is checked without being read into memory: shape and feature
            # count on its first row (scikit-learn's checks), then finiteness block by block.
            self._validate_X(np.asarray(X[:1]), reset=reset)
            for chunk in iter_chunks(X):
                if not np.isfinite(chunk).all():
                    raise DataError(
                        "X contains NaN or infinite values; remove or impute them before "
                        "training or encoding."
                    )
            return X if reset else self._as_samples(X)
        if len(X.shape) <= 2:
            # scikit-learn's own checks and messages (NaN, sparse, 1-D, feature-count mismatch).
            try:
                X = validate_data(self, X, reset=reset, dtype=(np.float64, np.float32))
            except ValueError as exc:
                raise _data_error(exc) from None
            return X if reset else self._as_samples(X)
        try:
            X = check_array(X, allow_nd=True, dtype=np.float32)
        except ValueError as exc:
            raise _data_error(exc) from None
        if X.ndim > 4:
            raise DataError(
                f"Expected (n, d), (n, h, w) or (n, c, h, w) data, got an array of shape {X.shape}."
            )
        if math.prod(X.shape[1:]) == 0:
            raise DataError(f"X has samples of shape {tuple(X.shape[1:])}, with no values.")
        if reset:
            if X.ndim == 4 and X.shape[3] in (1, 3, 4) and X.shape[1] > 4:
                # (n, h, w, c) read as (n, c, h, w) would train on image rows as channels.
                raise DataError(
                    f"X has images of shape {tuple(X.shape[1:])}, which looks channels-last "
                    "(n, h, w, c); vaekit takes (n, c, h, w): pass X.transpose(0, 3, 1, 2)."
                )
            self.n_features_in_ = int(math.prod(X.shape[1:]))
        elif tuple(X.shape[1:]) != tuple(self.input_shape_):
            raise DataError(
                f"X has samples of shape {tuple(X.shape[1:])}, but {type(self).__name__} was "
                f"fitted on samples of shape {tuple(self.input_shape_)}; pass data of that shape."
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
        if checkpoint_path is not None and (not resume or os.path.exists(checkpoint_path)):
            # Now, not when the first epoch ends; a missing checkpoint to resume from gets its
            # own message when it is read.
            check_output_file(Path(checkpoint_path), CHECKPOINT_FILE)
        self.__dict__.pop("module_", None)  # a failed refit must not look fitted
        X = self._validate_X(X, reset=True)
        n = X.shape[0]
        if n < 2:
            raise DataError(
                f"{type(self).__name__} needs at least 2 samples to fit, got {n} sample; "
                "pass more rows."
            )
        self.input_shape_ = tuple(int(s) for s in X.shape[1:])
        self.architecture_ = self._resolve_architecture()
        self.likelihood_ = self._resolve_likelihood(X)
        if getattr(self, "dynamic_binarization", False) and self.likelihood_ != "bernoulli":
            raise ConfigError(
                "dynamic_binarization=True needs the Bernoulli likelihood (data in [0, 1]); "
                f"this fit uses likelihood={self.likelihood_!r}."
            )
        if self.augment is not None and len(self.input_shape_) < 2:
            raise ConfigError(
                f"augment={self.augment!r} moves images, but X has samples of shape "
                f"{self.input_shape_}; pass images shaped (n, h, w) or (n, c, h, w), or drop "
                "augment."
            )
        mapping = memory_map_of(X)  # a memory-mapped X is trained on from disk, batch by batch
        self.mean_, self.scale_ = self._fit_scaling(X)
        self.device_ = resolve_device(self.device)
        job = world()  # under torchrun: this process's rank, and the shard it trains on
        if job is not None:
            self.device_ = device_for(job, self.device_)
            init_process_group(self.device_)

        fingerprint = {"n_samples": n, "sample_shape": list(self.input_shape_)}
        resume_from, saved_seed = None, None
        if resume:
            assert checkpoint_path is not None
            resume_from, saved_seed = self._load_checkpoint(Path(checkpoint_path), fingerprint)
        # The one seed of the fit: split, initial weights, batch order, ε, and later the ε of
        # scoring. A resumed fit takes the checkpoint's, so that random_state=None (a fresh draw
        # per call) still resumes on the same split; under torchrun every rank takes rank 0's.
        seed = saved_seed if saved_seed is not None else _torch_seed(self.random_state)
        if job is not None:
            seed = broadcast_seed(seed)
        self.seed_ = seed
        train_idx, val_idx = self._split(n, seed)
        if job is not None:
            if len(train_idx) < job.size:
                raise DataError(
                    f"{len(train_idx)} training row(s) cannot be shared among {job.size} "
                    "torchrun processes; use fewer processes or more data."
                )
            train_idx, val_idx = self._shard(train_idx, seed, job), self._shard(val_idx, seed, job)
        X_train: torch.Tensor | MappedRows
        X_val: torch.Tensor | MappedRows | None = None
        if mapping is not None:
            X_train = MappedRows(X, train_idx, self._to_model_input, self.device_)
            if len(val_idx):
                X_val = MappedRows(X, val_idx, self._to_model_input, self.device_)
        else:
            X_model = self._to_model_input(X)
            X_train = torch.from_numpy(X_model[train_idx]).to(self.device_)
            if len(val_idx):
                X_val = torch.from_numpy(X_model[val_idx]).to(self.device_)

        on_checkpoint = None
        if checkpoint_path is not None:
            checkpoint_path = Path(checkpoint_path)
            params = {**self._checkpoint_params(fingerprint), _SEED_KEY: seed}

            def on_checkpoint(state: TrainingState) -> None:
                if is_main_process():  # one writer for the whole torchrun job
                    save_checkpoint(checkpoint_path, state, params)

        # All randomness of a fit (initial weights, batch order, ε) comes from this one seed, in a
        # forked RNG so that fitting never changes the caller's global torch random state.
        devices = [self.device_] if self.device_.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed)
            self.module_ = self._build_module().to(self.device_)
            if job is not None:  # same initial weights everywhere, different ε and batches
                torch.manual_seed(seed + job.rank)
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
        self._fit_diagnostics(X, seed)
        return self

    def _checkpoint_params(self, fingerprint: dict[str, Any]) -> dict[str, Any]:
        """What a checkpoint must match to be resumed: estimator class, parameters, data shape."""
        return {
            "estimator": type(self).__name__,
            **jsonable_params(self.get_params()),
            "data": fingerprint,
        }

    def _load_checkpoint(
        self, path: Path, fingerprint: dict[str, Any]
    ) -> tuple[TrainingState, int | None]:
        """The checkpoint's training state and fit seed, after checking it belongs to this fit.

        The seed is None for checkpoints written before it was stored.
        """
        state, saved = load_checkpoint(path, self.device_)
        current = self._checkpoint_params(fingerprint)
        # These may change between the interrupted run and its resumption. A checkpoint written
        # before the estimator class was recorded has none: not a mismatch.
        free = {"epochs", "verbose", "device", "contamination"}
        if "estimator" not in saved:
            free.add("estimator")
        differ = sorted(k for k in current.keys() - free if saved.get(k) != current[k])
        if differ:
            shown = ", ".join(f"{k}={saved.get(k)!r} (now {current[k]!r})" for k in differ)
            raise ConfigError(
                f"The checkpoint {path} was written by a different fit: {shown}; resume with "
                "the same data and parameters."
            )
        self._check_epochs_to_resume(state, saved.get("epochs"), path)
        seed = saved.get(_SEED_KEY)
        return state, (int(seed) if isinstance(seed, int) else None)

    def _check_epochs_to_resume(self, state: TrainingState, saved_epochs: Any, path: Path) -> None:
        """Refuse, or warn about, an ``epochs`` the checkpointed run cannot honour."""
        done = len(state.history)
        if done > self.epochs:
            raise ConfigError(
                f"The checkpoint {path} already holds {done} epochs, more than epochs="
                f"{self.epochs}; resume with epochs >= {done}, or fit without resume."
            )
        if state.stopped and self.epochs > done:
            warnings.warn(
                f"The checkpointed run stopped early after {done} epochs (no better "
                f"validation loss for patience={self.patience} epochs), so resuming trains "
                "nothing more; fit without resume, with a larger patience, to train longer.",
                UserWarning,
                stacklevel=4,
            )
        lr_schedule = getattr(self, "lr_schedule", "constant")
        if lr_schedule == "cosine" and saved_epochs != self.epochs and self.epochs > done:
            warnings.warn(
                f"lr_schedule='cosine' decays over all epochs: the run started with epochs="
                f"{saved_epochs}, and epochs={self.epochs} lays the decay out again, so the "
                f"learning rate of epoch {done + 1} differs from the one the run would have "
                "had (a warm restart when epochs grows).",
                UserWarning,
                stacklevel=4,
            )

    def _resolve_architecture(self) -> str:
        images = len(self.input_shape_) >= 2
        if self.architecture == "conv" and not images:
            raise ConfigError(
                "architecture='conv' needs images shaped (n, h, w) or (n, c, h, w); "
                f"got samples of shape {self.input_shape_}; use architecture='mlp' or reshape X."
            )
        if self.architecture == "auto":
            return "conv" if images else "mlp"
        return self.architecture

    def _resolve_likelihood(self, X: np.ndarray) -> str:
        lo, hi = _value_range(X)
        in_unit_interval = bool(lo >= 0.0 and hi <= 1.0)
        if self.likelihood == "auto":
            return "bernoulli" if in_unit_interval else "gaussian"
        if self.likelihood == "bernoulli" and not in_unit_interval:
            raise DataError(
                f"likelihood='bernoulli' needs data in [0, 1], but X ranges over "
                f"[{lo:.9g}, {hi:.9g}]; rescale X or use likelihood='gaussian'."
            )
        return self.likelihood

    def _fit_scaling(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per-feature standardization for Gaussian data; the identity for Bernoulli data.

        Per channel instead when images are augmented: a rotation or shift moves bright pixels
        onto border pixels that barely vary in the data, and divided by those pixels' tiny
        standard deviations they would become targets hundreds of units large.
        """
        shape = self.input_shape_
        if self.likelihood_ != "gaussian":
            return np.zeros(shape, np.float64), np.ones(shape, np.float64)
        mean, std = _column_moments(X)
        if self.augment is not None:
            mean, std = _per_channel(mean, std, self._image_shape())
        # A constant feature has std 0: leave it unscaled (it becomes exactly 0) instead of NaN.
        # Relative to the mean only: a feature measured in units of 1e-9 still varies, and so
        # does a timestamp column (1.7e9 ± 10, std 6e-9 of its mean), while the float64
        # rounding of the moments on a large constant (std ~1e-15 of it) does not.
        std[(std == 0) | (std < 1e-12 * np.abs(mean))] = 1.0
        return mean, std  # float64: a large mean in float32 would be off by its spacing

    def _split(self, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """Shuffled train / validation row indices; no validation split when it would be empty."""
        order = np.random.default_rng(seed).permutation(n)
        n_val = round(n * self.validation_fraction)
        if n_val < 1 or n - n_val < 1:
            return np.sort(order), order[:0]
        return np.sort(order[n_val:]), np.sort(order[:n_val])

    @staticmethod
    def _shard(indices: np.ndarray, seed: int, job: World) -> np.ndarray:
        """This rank's share of ``indices``, dealt from a seeded shuffle (not by position, so
        a file sorted by label still gives every rank every class)."""
        if len(indices) < job.size:
            return indices[:0]
        shuffled = np.random.default_rng([seed, 1]).permutation(indices)
        return np.sort(shuffled[shard(len(indices), job)])

    def _module_input_shape(self) -> tuple[int, ...]:
        if self.architecture_ == "mlp":
            return (int(math.prod(self.input_shape_)),)
        return self._image_shape()

    def _image_shape(self) -> tuple[int, ...]:
        """(c, h, w) of one image sample: a grayscale (h, w) gets its channel axis."""
        return self.input_shape_ if len(self.input_shape_) == 3 else (1, *self.input_shape_)

    def _to_model_input(self, X: np.ndarray) -> np.ndarray:
        """Scale and reshape (n, *input_shape_) data to what the module takes (may share memory)."""
        if self.likelihood_ == "gaussian":  # in X's precision: float64 for float64 tables
            dtype = np.result_type(X.dtype, np.float32)
            scaled = (X - self.mean_.astype(dtype)) / self.scale_.astype(dtype)
        else:
            scaled = X
        return np.ascontiguousarray(
            scaled.reshape(X.shape[0], *self._module_input_shape()), np.float32
        )

    def _from_model_output(self, x: torch.Tensor) -> np.ndarray:
        """Decoder mean in model space (n, ...) -> data space (n, *input_shape_), float32."""
        out = x.detach().cpu().numpy().reshape(x.shape[0], *self.input_shape_)
        if self.likelihood_ == "gaussian":
            out = out * self.scale_.astype(np.float32) + self.mean_.astype(np.float32)
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
            lr_schedule=getattr(self, "lr_schedule", "constant"),
            beta=float(getattr(self, "beta", 0.0)),
            kl_schedule=getattr(self, "kl_schedule", "constant"),
            kl_warmup_epochs=float(getattr(self, "kl_warmup_epochs", 0.0)),
            patience=self.patience,
            max_grad_norm=self.max_grad_norm,
            verbose=bool(self.verbose) and is_main_process(),
            binarize=bool(getattr(self, "dynamic_binarization", False)),
            augment=self._augmentation(),
        )

    def _augmentation(self) -> RandomAffine | None:
        """The training batches' augmentation, in model space (see :mod:`vaekit.augment`)."""
        if self.augment is None:
            return None
        shape = self._image_shape()
        standardized = self.likelihood_ == "gaussian"
        return RandomAffine(
            image_shape=(int(shape[0]), int(shape[1]), int(shape[2])),
            mean=torch.from_numpy(self.mean_).float().to(self.device_) if standardized else None,
            scale=torch.from_numpy(self.scale_).float().to(self.device_) if standardized else None,
        )

    # ------------------------------------------------------------------ inference helpers
    def _predict_rows(self, default: int = _PREDICT_BATCH) -> int:
        """Rows (or row x sample pairs) per inference pass: ``default``, but fewer for a conv
        model on a CPU (see ``_PREDICT_BATCH_CONV_CPU``)."""
        if self.architecture_ == "conv" and self.device_.type == "cpu":
            return min(default, _PREDICT_BATCH_CONV_CPU)
        return default

    def _batches(self, X: np.ndarray) -> Iterator[torch.Tensor]:
        """Model-space tensors of consecutive rows of validated X, one batch at a time."""
        rows = self._predict_rows()
        for start in range(0, X.shape[0], rows):
            chunk = self._to_model_input(X[start : start + rows])
            yield torch.from_numpy(chunk).to(self.device_)

    def _latent_batches(self, Z: Any) -> Iterator[torch.Tensor]:
        try:
            Z = check_array(Z, dtype=np.float32)
        except (ValueError, TypeError) as exc:  # TypeError: a sparse matrix
            raise _data_error(exc) from None
        if Z.shape[1] != self.latent_dim:
            raise DataError(
                f"Z has {Z.shape[1]} columns, but the latent space has {self.latent_dim} "
                "dimensions."
            )
        rows = self._predict_rows()
        for start in range(0, Z.shape[0], rows):
            yield torch.from_numpy(np.ascontiguousarray(Z[start : start + rows])).to(self.device_)

    def _encode(self, X: Any, mean_only: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
        check_is_fitted(self, "module_")
        return self._encode_array(self._validate_X(X, reset=False), mean_only)

    def _encode_array(
        self, X: np.ndarray, mean_only: bool = False
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """(μ, log σ² or None) of validated X, (n, *input_shape_) -> (n, latent_dim) each.

        With ``mean_only`` the variance head is not run and log σ² comes back as None.
        """
        self.module_.eval()
        mus, logvars = [], []
        with torch.inference_mode():
            for batch in self._batches(X):
                if mean_only:
                    mu, logvar = self.module_.encode_mean(batch), None
                else:
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

    def _net_encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``module_.encode`` on rows padded to a multiple of ``_ROW_MULTIPLE`` (see there)."""
        n, extra = x.shape[0], -x.shape[0] % _ROW_MULTIPLE
        if extra:
            x = torch.cat([x, x.new_zeros(extra, *x.shape[1:])])
        mu, logvar = self.module_.encode(x)
        return mu[:n], None if logvar is None else logvar[:n]

    def _net_decode(self, z: torch.Tensor) -> torch.Tensor:
        """``module_.decode`` on rows padded to a multiple of ``_ROW_MULTIPLE`` (see there)."""
        n, extra = z.shape[0], -z.shape[0] % _ROW_MULTIPLE
        if extra:
            z = torch.cat([z, z.new_zeros(extra, z.shape[1])])
        return self.module_.decode(z)[:n]

    def _check_likelihood_support(self, X: np.ndarray) -> None:
        """A Bernoulli model's likelihood is defined for data in [0, 1] only: outside it, the
        cross-entropy is no log-probability and rows far outside would score as typical."""
        if self.likelihood_ != "bernoulli":
            return
        lo, hi = _value_range(X)
        if lo < 0.0 or hi > 1.0:
            outside = sum(
                int(((chunk < 0) | (chunk > 1)).reshape(len(chunk), -1).any(1).sum())
                for chunk in iter_chunks(X)
            )
            # Often X was scaled as the training data was (a MinMaxScaler fitted on it) and
            # these rows lie beyond the training range: the choice of what to do is the user's.
            raise DataError(
                f"This model's Bernoulli likelihood scores data in [0, 1], but X ranges over "
                f"[{lo:.9g}, {hi:.9g}] ({outside} of {len(X)} rows outside); scale X as the "
                "training data was, clip rows beyond the training range with "
                "np.clip(X, 0, 1), or fit with likelihood='gaussian', which scores any value."
            )

    def _reconstruction_nll(self, X: np.ndarray, per_feature: bool = False) -> np.ndarray:
        """-log p(x | z = μ(x)) of validated X, data units: (n,) or (n, *input_shape_)."""
        self._check_likelihood_support(X)
        logvar_out = _double(self.module_.output_logvar())
        self.module_.eval()
        out = []
        with torch.inference_mode():
            for x in self._batches(X):
                loc = self._net_decode(self._net_encode(x)[0]).double()
                x = x.double()
                if per_feature:
                    # Each feature as its own one-feature "sample": reconstruction_nll's sum over
                    # features is then the identity, and the log-density code stays in one place.
                    lv = logvar_out
                    if isinstance(lv, torch.Tensor):
                        lv = lv.expand_as(x).reshape(-1, 1)
                    nll = reconstruction_nll(
                        self.likelihood_, x.reshape(-1, 1), loc.reshape(-1, 1), lv
                    ).view(x.shape[0], *self.input_shape_)
                else:
                    nll = reconstruction_nll(self.likelihood_, x, loc, logvar_out)
                out.append(nll.cpu().numpy())
        nll = np.concatenate(out)
        if self.likelihood_ != "gaussian":
            return nll
        # Density of the original data: -log p(x) = -log p(x_std) + Σ_j log scale_j.
        log_scale = np.log(self.scale_.astype(np.float64))
        return nll + log_scale if per_feature else nll + self._log_scale_jacobian()

    def _fit_diagnostics(self, X: np.ndarray, seed: int) -> tuple[np.ndarray, str]:
        """After training: set ``offset_`` from held-out rows of validated X.

        Returns the rows and what they are ("the validation split" or "the training data").

        The rows are the validation split (the training split when there is none), at most
        ``_DIAGNOSTIC_ROWS`` of them, evenly spaced. Held out, because a model scores the rows
        it was trained on higher than new rows from the same data, which would flag more than
        ``contamination`` of new data.
        """
        train_idx, val_idx = self._split(X.shape[0], seed)
        idx, where = (val_idx, "the validation split") if len(val_idx) else (train_idx, "")
        idx = idx[:: -(-len(idx) // _DIAGNOSTIC_ROWS)]  # every m-th row, m = ceil(n / max)
        rows = take_rows(X, idx)  # from a memory map without mapping the whole file
        fraction = (
            DEFAULT_CONTAMINATION if self.contamination == "auto" else float(self.contamination)
        )
        self.offset_ = float(np.quantile(self._scores(rows), fraction))
        if len(rows) * fraction < _THRESHOLD_MIN_TAIL:
            warnings.warn(
                f"The anomaly threshold (offset_) is the {fraction:.0%} quantile of only "
                f"{len(rows)} held-out scores, so the share of new rows that predict flags may "
                f"be far from {fraction:.0%}; fit on more rows, or threshold score_samples "
                "yourself.",
                UserWarning,
                stacklevel=3,
            )
        return rows, where or "the training data"

    def _scoring_seed(self) -> int:
        """The seed of scoring's ε: the fit's (``seed_``), fixed for the model's lifetime.

        An int ``random_state`` gives the same seed either way; drawing from ``random_state``
        afresh would give ``None`` or a RandomState new ε, and new scores, at every call.
        Models saved before ``seed_`` existed fall back to that draw.
        """
        seed = getattr(self, "seed_", None)
        return int(seed) if seed is not None else _torch_seed(self.random_state)

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
        return self._encode(X, mean_only=True)[0]

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
        ndarray of shape (n_samples, *input_shape_), float32
            Shaped as the training samples: flattened rows given to an image model come back
            as images.
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

    # ------------------------------------------------------------------ anomaly detection
    def decision_function(self, X: Any) -> np.ndarray:
        """``score_samples(X) - offset_``: negative for outliers, as in scikit-learn.

        ``offset_`` is the ``contamination`` quantile of the scores of held-out rows, computed
        at the end of ``fit``, so about that share of new rows like the training data falls
        below 0.

        Parameters
        ----------
        X : array-like of shape (n_samples, ...)

        Returns
        -------
        ndarray of shape (n_samples,), float64
        """
        check_is_fitted(self, "module_")
        if not hasattr(self, "offset_"):
            raise ConfigError(
                f"This {type(self).__name__} has no offset_ (it was saved by an older vaekit); "
                "refit it, or compare score_samples with a threshold of your own."
            )
        return self.score_samples(X) - self.offset_

    def predict(self, X: Any) -> np.ndarray:
        """+1 for inliers and -1 for outliers (``decision_function(X) < 0``).

        Parameters
        ----------
        X : array-like of shape (n_samples, ...)

        Returns
        -------
        ndarray of shape (n_samples,), int64
        """
        decision = self.decision_function(X)
        labels = np.ones(decision.shape, dtype=np.int64)
        labels[decision < 0] = -1
        return labels

    def reconstruction_error(self, X: Any, per_feature: bool = False) -> np.ndarray:
        """Reconstruction error -log p(x | z = μ(x)) in nats, per sample or per feature.

        Binary cross-entropy for data in [0, 1]; for Gaussian data ½[(x - x̂)²/σ² + log 2πσ²]
        with the decoder's σ², as a density of the original (unstandardized) data, so it can be
        negative. Unlike a squared error it discounts features the model knows to be noisy,
        which suits tabular data whose features differ in scale and noise. An
        :class:`Autoencoder`'s ``score_samples`` is minus the per-sample value.

        Parameters
        ----------
        X : array-like of shape (n_samples, ...)
        per_feature : bool, default=False
            Return one value per feature (pixel) instead of their sum.

        Returns
        -------
        ndarray of shape (n_samples,), or (n_samples, *input_shape_) when ``per_feature``;
        float64
        """
        check_is_fitted(self, "module_")
        return self._reconstruction_nll(self._validate_X(X, reset=False), per_feature)

    @property
    def _n_features_out(self) -> int:  # used by get_feature_names_out: vae0, vae1, ...
        check_is_fitted(self, "module_")  # output names exist once there is an output
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


def _check_positive_int(name: str, value: Any) -> None:
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 1:
        raise ConfigError(f"{name} must be a positive integer, got {value!r}.")


def _data_error(exc: Exception) -> DataError:
    """scikit-learn's validation message as one sentence (no array dump), plus what to do."""
    message = str(exc).strip()
    first = message.splitlines()[0].rstrip(":").rstrip() if message else "Invalid input X"
    first = first.rstrip(".")  # one sentence: what to do follows after a semicolon
    if "NaN" in first:
        first += "; drop or impute the missing values first (e.g. sklearn.impute.SimpleImputer)"
    elif "infinity" in first:
        first += "; replace or drop the infinite values first"
    elif "Reshape your data" in message:
        # Capitalized as scikit-learn's own advice, which its estimator checks look for.
        first += (
            " (Reshape your data with X.reshape(-1, 1) if it has a single feature or "
            "X.reshape(1, -1) if it is a single sample)"
        )
    elif "features, but" in first:  # fitted on d features, given another number
        first += "; pass data with the same features (columns) as the training data"
    return DataError(first + ".")


def _double(t: torch.Tensor | None) -> torch.Tensor | None:
    """float64 copy of a network output (or None).

    Scores sum log densities over features and draws in float64: the network's own float32
    rounding is ~1e-7 per output, but a float32 total of tens of nats is only good to a few
    1e-6, enough to make a row's score depend on which rows share its batch.
    """
    return None if t is None else t.double()


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
        smaller side to 4 pixels or less (8x8: 1, 28x28: 3, 64x64: 4).
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
    dynamic_binarization : bool, default=False
        Train on binary pixels drawn afresh for every batch, x ~ Bernoulli(x) (the protocol of
        likelihood benchmarks on MNIST); needs the Bernoulli likelihood (data in [0, 1]).
    augment : {None, "affine"}, default=None
        Images only. ``"affine"``: every training batch is rotated by up to ±10° and shifted by
        up to ±10% of the side, a fresh draw per image and batch, and the model reconstructs
        the moved images (Guo et al. 2018). Codes then vary less within a class: on MNIST it
        raises k-means accuracy on μ(x) (see the README). Validation rows are not augmented.
        With the Gaussian likelihood, images are standardized per channel, not per pixel.
    epochs : int, default=100
        Maximum number of passes over the training split.
    batch_size : int, default=128
    learning_rate : float, default=1e-3
        Adam's step size.
    lr_schedule : {"constant", "cosine"}, default="constant"
        ``cosine`` decays the step size along half a cosine to 0 at the last of ``epochs``
        (Loshchilov & Hutter 2017); small steps at the end settle the weights, at the price of
        fixing the length of training in advance.
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
    contamination : "auto" or float in (0, 0.5], default="auto"
        Expected share of outliers, for :meth:`predict` / :meth:`decision_function`: at the
        end of ``fit``, ``offset_`` is set to this quantile of :meth:`score_samples` on the
        validation split (the training data when there is none). ``"auto"`` means 0.05.
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
    mean_, scale_ : ndarray of shape input_shape_, float64
        Standardization applied before the Gaussian likelihood (zeros and ones otherwise).
    n_epochs_ : int
        Epochs actually run.
    seed_ : int
        The seed the fit drew from ``random_state`` (a resumed fit keeps the checkpoint's): it
        seeded the split, the weights, the batch order and ε, and it seeds the ε of
        :meth:`score_samples` and :meth:`log_likelihood`, so repeated calls give equal scores.
    offset_ : float
        Threshold on :meth:`score_samples` below which :meth:`predict` calls a row an outlier.
    active_units_ : int
        Latent units whose μ varies over the validation rows by more than 0.01 (Burda et al.
        2016); fewer than max(1, latent_dim / 10) emits a ``PosteriorCollapseWarning``.
    kl_per_dim_ : ndarray of shape (latent_dim,)
        Mean KL(q(z_j | x) || N(0, 1)) per dimension over the validation rows, in nats.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from vaekit import VAE
    >>> X = load_digits().data / 16.0
    >>> vae = VAE(latent_dim=8, epochs=20, random_state=0).fit(X)
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
        dynamic_binarization: bool = False,
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
        self.dynamic_binarization = dynamic_binarization
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
        _check_positive_int("n_samples", n_samples)
        generator = torch.Generator().manual_seed(_torch_seed(random_state))
        Z = torch.randn(int(n_samples), self.latent_dim, generator=generator)
        return self.inverse_transform(Z.numpy())

    def score_samples(self, X: Any, n_mc_samples: int = 8) -> np.ndarray:
        """Per-sample evidence lower bound log p(x) ≥ E_q[log p(x|z)] - KL, in nats.

        Higher means more typical. The expectation is a Monte Carlo mean over ``n_mc_samples``
        draws of z; the KL is exact. The draws use common random numbers: the same
        ε_1..ε_S ~ N(0, I), seeded from ``seed_``, for every row (z = μ + σ·ε_s), so a
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
        _check_positive_int("n_mc_samples", n_mc_samples)
        return self._scores(self._validate_X(X, reset=False), int(n_mc_samples))

    def _scores(self, X: np.ndarray, n_mc_samples: int = 8) -> np.ndarray:
        """:meth:`score_samples` of validated X."""
        self._check_likelihood_support(X)
        generator = torch.Generator().manual_seed(self._scoring_seed())
        eps = torch.randn(n_mc_samples, self.latent_dim, generator=generator).to(self.device_)
        logvar_out = _double(self.module_.output_logvar())
        self.module_.eval()
        scores = []
        with torch.inference_mode():
            for x in self._batches(X):
                mu, logvar = self._net_encode(x)
                std = torch.exp(0.5 * logvar)
                recon = torch.zeros(x.shape[0], dtype=torch.float64, device=self.device_)
                for e in eps:
                    loc = self._net_decode(mu + std * e)
                    recon += reconstruction_nll(
                        self.likelihood_, x.double(), loc.double(), logvar_out
                    )
                elbo = -(recon / n_mc_samples) - gaussian_kl(mu.double(), logvar.double()).sum(1)
                scores.append(elbo.cpu().numpy())
        return np.concatenate(scores) - self._log_scale_jacobian()

    def log_likelihood(
        self,
        X: Any,
        k: int = 1000,
        *,
        batch_size: int | None = None,
        k_batch: int | None = None,
        random_state: Any = None,
        bound: str = "iwae",
    ) -> np.ndarray:
        """Importance-weighted estimate of log p(x) per sample, in nats (Burda et al. 2016).

        ``L_k = log (1/k) Σ_i p(x, z_i) / q(z_i | x)`` with z_i ~ q(z | x) (eq. 8 of the paper):
        a lower bound on log p(x) in expectation that rises with k and reaches log p(x) as
        k → ∞ (Theorem 1); k = 1 is a one-sample ELBO. Rows go through in batches and the k
        samples in chunks of ``k_batch``, combined by a running log-sum-exp, so the decoder's
        memory does not grow with k. Row i's ε_1..ε_k (z_i = μ + σ·ε_i) come from a generator
        seeded with (random_state, i): the result does not depend on the batching, and rows get
        independent draws, so the mean over rows averages the Monte Carlo noise away. For
        Gaussian data it is a density of the original data.

        Parameters
        ----------
        X : array-like of shape (n_samples, ...)
        k : int, default=1000
            Importance samples per row.
        batch_size : int, optional
            Rows per pass; default ``4096 // k_batch`` (``256 // k_batch`` for a conv model
            on a CPU), fewer when the rows' ε would exceed 2**24 numbers, at least 1.
        k_batch : int, optional
            Samples per chunk; default ``min(k, 256)``. Only memory and speed depend on it
            and on ``batch_size``, not the result (up to float32 rounding).
        random_state : int, RandomState or None
            Seeds ε; None uses the fit's seed (``seed_``), so that repeated calls agree.
        bound : {"iwae", "elbo"}, default="iwae"
            ``elbo``: the ELBO instead, E_q[log p(x | z)] as the mean over the same k draws,
            minus the closed-form KL. Unlike :meth:`score_samples`, whose draws are shared by
            all rows, its mean over many rows has almost no Monte Carlo error.

        Returns
        -------
        ndarray of shape (n_samples,), float64
        """
        check_is_fitted(self, "module_")
        if bound not in ("iwae", "elbo"):
            raise ConfigError(f"bound must be 'iwae' or 'elbo', got {bound!r}.")
        for name, value in (("k", k), ("batch_size", batch_size), ("k_batch", k_batch)):
            if value is not None:
                _check_positive_int(name, value)
        X = self._validate_X(X, reset=False)
        self._check_likelihood_support(X)
        k = int(k)
        k_batch = min(k, int(k_batch or 256))
        pairs = self._predict_rows(_IWAE_PAIRS)  # (row, sample) pairs per decoder pass
        rows = int(batch_size or max(1, min(pairs // k_batch, 2**24 // (k * self.latent_dim))))
        seed = self._scoring_seed() if random_state is None else _torch_seed(random_state)
        logvar_out = self.module_.output_logvar()
        self.module_.eval()
        out = []
        with torch.inference_mode():
            for start in range(0, X.shape[0], rows):
                x = torch.from_numpy(self._to_model_input(X[start : start + rows]))
                x = x.to(self.device_)  # (b, ...)
                mu, logvar = self._net_encode(x)  # (b, latent_dim) each
                eps = np.stack(
                    [
                        np.random.default_rng([seed, i]).standard_normal(
                            (k, self.latent_dim), dtype=np.float32
                        )
                        for i in range(start, start + x.shape[0])
                    ],
                    axis=1,
                )
                eps = torch.from_numpy(eps).to(self.device_)  # (k, b, latent_dim)
                mu64, logvar64 = mu.double(), logvar.double()
                log_sum = None  # log Σ_i w_i over the chunks so far, (b,), float64
                recon_sum = 0.0  # Σ_i log p(x | z_i) over the chunks so far, for the ELBO
                for s in range(0, k, k_batch):
                    e = eps[s : s + k_batch]
                    z = mu + torch.exp(0.5 * logvar) * e  # (s, b, latent_dim)
                    loc = self._net_decode(z.reshape(-1, self.latent_dim))  # (s·b, ...)
                    x_rep = x.expand(len(e), *x.shape).reshape(-1, *x.shape[1:])
                    # Per-pixel terms in float32 (the network's precision; float64 here cost
                    # a third of the time), summed per row, then float64 for the log-sum-exp.
                    log_px_z = -reconstruction_nll(
                        self.likelihood_, x_rep, loc, logvar_out
                    ).double()
                    if bound == "elbo":
                        recon_sum = recon_sum + log_px_z.view(len(e), -1).sum(0)
                        continue
                    z = z.double()
                    zeros = torch.zeros_like(z)
                    log_w = (  # log p(x | z) + log p(z) - log q(z | x), (s, b), float64
                        log_px_z.view(len(e), -1)
                        + gaussian_log_density(z, zeros, zeros)
                        - gaussian_log_density(z, mu64, logvar64)
                    )
                    # iwae_bound is log mean_i w_i over the chunk; + log(chunk size) -> log Σ.
                    chunk = iwae_bound(log_w) + math.log(len(e))
                    log_sum = chunk if log_sum is None else torch.logaddexp(log_sum, chunk)
                if bound == "elbo":
                    value = recon_sum / k - gaussian_kl(mu64, logvar64).sum(1)
                else:
                    value = log_sum - math.log(k)
                out.append(value.cpu().numpy())
        return np.concatenate(out) - self._log_scale_jacobian()

    def _fit_diagnostics(self, X: np.ndarray, seed: int) -> tuple[np.ndarray, str]:
        """Also record ``active_units_`` and ``kl_per_dim_``; warn on posterior collapse."""
        rows, where = super()._fit_diagnostics(X, seed)
        mu, logvar = self._encode_array(rows)
        self.active_units_ = int((mu.var(axis=0, dtype=np.float64) > ACTIVE_UNIT_THRESHOLD).sum())
        kl = gaussian_kl(torch.from_numpy(mu).double(), torch.from_numpy(logvar).double())
        self.kl_per_dim_ = kl.mean(0).numpy()
        message = collapse_message(self.active_units_, self.latent_dim, where)
        if message is not None:
            warnings.warn(message, PosteriorCollapseWarning, stacklevel=3)
        return rows, where


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
    epochs, batch_size, learning_rate, lr_schedule, validation_fraction, patience,
    max_grad_norm, contamination, random_state, device, verbose
        As for :class:`VAE`; the anomaly score is :meth:`score_samples`, minus the
        reconstruction error.

    Attributes
    ----------
    module_, history_, input_shape_, n_features_in_, architecture_, likelihood_, mean_, scale_,
    n_epochs_, seed_, offset_
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
        return self._scores(self._validate_X(X, reset=False))

    def _scores(self, X: np.ndarray) -> np.ndarray:
        """:meth:`score_samples` of validated X."""
        return -self._reconstruction_nll(X)
