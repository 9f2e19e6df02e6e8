"""What :class:`~vaekit.VAE` and :class:`~vaekit.Autoencoder` share: fitting and inference.

The estimator owns everything the torch modules must not know about: input validation, the
choice of architecture and likelihood, feature scaling, numpy <-> tensor conversion, batching,
device placement and seeding (house rule 2). The two public classes, in ``vae.py`` and
``autoencoder.py``, add their parameters and their scores.
"""

from __future__ import annotations

import functools
import math
import os
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import numpy as np
import torch
from sklearn.base import (
    BaseEstimator,
    ClassNamePrefixFeaturesOutMixin,
    OutlierMixin,
    TransformerMixin,
)
from sklearn.utils.validation import check_array, check_is_fitted

from .augment import RandomAffine
from .checkpoint import (
    CHECKPOINT_FILE,
    SEED_KEY,
    TrainingState,
    check_resumable,
    data_digest,
    load_checkpoint,
    save_checkpoint,
    saved_seed,
)
from .diagnostics import anomaly_offset, diagnostic_rows, offset_warning
from .distributed import (
    World,
    broadcast_seed,
    device_for,
    init_process_group,
    is_main_process,
    shard,
    world,
)
from .errors import ConfigError, DataError, user_stacklevel
from .losses import decoder_mean, reconstruction_nll
from .nn import AutoencoderModule, build_module
from .params import (
    check_params,
    emulated_bfloat16,
    resolve_device,
    schedule_warning,
    torch_seed,
)
from .persistence import check_output_file, jsonable_params
from .rows import MappedRows, iter_chunks, memory_map_of
from .scaling import (
    column_moments,
    every_row_outside_unit_interval,
    in_unit_interval,
    looks_like_8_bit_images,
    outside_unit_interval,
    per_channel,
    reaches_8_bit_range,
    unit_scale_for_constants,
    value_range,
)
from .training import Objective, TrainConfig, add_nll_offset, train
from .validation import data_error, validate_input

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
# CPU matrix-multiply kernels take other code paths for a handful of rows (gemv, small-M
# kernels), which moves a row's outputs in the 7th digit with the size of its batch. Scores are
# therefore computed with every network call padded to a multiple of this many rows: measured
# bitwise independent of the batching on x86 (MKL / oneDNN, 1 or 2 threads), so a row's score
# does not depend on the rows scored with it, even near the anomaly threshold where
# decision_function is close to 0 (scikit-learn's subset-invariance check).
_ROW_MULTIPLE = 16
# A standardized value beyond this is inf to the network (a 1e300 missing-value sentinel).
_FLOAT32_MAX = float(np.finfo(np.float32).max)


def _too_large(value: float, feature: int, why: str) -> DataError:
    """The error for a value (a missing-value sentinel, most often) beyond what fit or the
    network can compute with: "X holds 1e+300 (feature 20), too large {why}; ..."."""
    return DataError(
        f"X holds {value:.4g} (feature {feature}), too large {why}; remove such rows, or "
        "replace this sentinel with a real value."
    )


def __getattr__(name: str) -> Any:
    """``vaekit.estimator.VAE`` / ``.Autoencoder``, where the classes lived until 2026-11-22:
    models pickled (or joblib-dumped) then name them so, and must still unpickle."""
    if name == "VAE":
        from .vae import VAE

        return VAE
    if name == "Autoencoder":
        from .autoencoder import Autoencoder

        return Autoencoder
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# fit returns self: VAE(...).fit(X) is a VAE to type checkers, not the base class.
_Estimator = TypeVar("_Estimator", bound="_BaseAutoencoder")


class _BaseAutoencoder(
    ClassNamePrefixFeaturesOutMixin, TransformerMixin, OutlierMixin, BaseEstimator
):
    """Shared implementation of :class:`VAE` and :class:`Autoencoder` (not public)."""

    _stochastic: ClassVar[bool]

    # ------------------------------------------------------------------ validation
    def _check_params(self, device_here: bool = True) -> None:
        check_params(self, stochastic=self._stochastic, device_here=device_here)

    def _validate_X(self, X: Any, *, reset: bool) -> np.ndarray:
        """X checked and as a float array of shape (n, *input_shape_): see ``validate_input``."""
        return validate_input(self, X, reset=reset)

    # ------------------------------------------------------------------ fitting
    def fit(
        self: _Estimator,
        X: Any,
        y: Any = None,
        *,
        checkpoint_path: str | os.PathLike | None = None,
        resume: bool = False,
        **unexpected: Any,
    ) -> _Estimator:
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
        **unexpected
            None is taken: a TypeError names the first one given (``sample_weight`` included,
            as every row weighs the same).

        Returns
        -------
        self
        """
        if unexpected:  # Python's own TypeError would name _BaseAutoencoder.fit
            name = next(iter(unexpected))
            why = "; every row weighs the same in its loss" if name == "sample_weight" else ""
            raise TypeError(
                f"{type(self).__name__}.fit() got an unexpected keyword argument {name!r}{why}."
            )
        if resume and checkpoint_path is None:
            raise ConfigError("resume=True needs the checkpoint_path to resume from.")
        if checkpoint_path is not None:
            checkpoint_path = Path(checkpoint_path).expanduser()  # as save and load do
        self._check_params()
        if self._stochastic and (message := schedule_warning(self)):
            warnings.warn(message, UserWarning, stacklevel=user_stacklevel())
        if checkpoint_path is not None and (not resume or os.path.exists(checkpoint_path)):
            # Now, not when the first epoch ends; a missing checkpoint to resume from gets its
            # own message when it is read.
            check_output_file(checkpoint_path, CHECKPOINT_FILE)
        self.__dict__.pop("module_", None)  # a failed refit must not look fitted
        # Before scikit-learn's checks, whose words for no row at all ("a minimum of 1 is
        # required") contradict these for one row.
        if getattr(X, "ndim", 0) >= 2 and X.shape[0] < 2:
            self._refuse_too_few(X.shape[0])
        X = self._validate_X(X, reset=True)
        n = X.shape[0]
        if n < 2:
            self._refuse_too_few(n)
        self.input_shape_ = tuple(int(s) for s in X.shape[1:])
        self.architecture_ = self._resolve_architecture()
        lo, hi = value_range(X)
        self.likelihood_ = self._resolve_likelihood(X, lo, hi)
        # Values past 0 or 1 by rounding alone (see in_unit_interval) are clipped in.
        clip = self.likelihood_ == "bernoulli" and not (lo >= 0.0 and hi <= 1.0)
        if getattr(self, "dynamic_binarization", False) and self.likelihood_ != "bernoulli":
            raise ConfigError(
                "dynamic_binarization=True needs the Bernoulli likelihood (data in [0, 1]); "
                f"this fit uses likelihood={self.likelihood_!r}."
            )
        if self.output_variance != "learned" and self.likelihood_ != "gaussian":
            raise ConfigError(
                f"output_variance={self.output_variance!r} fixes a Gaussian decoder's variance, "
                f"but this fit uses likelihood={self.likelihood_!r}; leave output_variance="
                "'learned' or pass likelihood='gaussian'."
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
        if self.precision != "float32" and (why := emulated_bfloat16(self.device_)):
            warnings.warn(
                f"precision={self.precision!r} will train slower than 'float32' here: {why}, "
                "so torch emulates bfloat16 arithmetic; pass precision='float32'.",
                UserWarning,
                stacklevel=user_stacklevel(),
            )

        # Only for a fit that writes or reads a checkpoint: the digest reads rows of X.
        checkpoint_params = None if checkpoint_path is None else self._checkpoint_params(X)
        resume_from, saved_seed = None, None
        if resume:
            assert checkpoint_path is not None
            resume_from, saved_seed = self._load_checkpoint(checkpoint_path, checkpoint_params)
        # The one seed of the fit: split, initial weights, batch order, ε, and later the ε of
        # scoring. A resumed fit takes the checkpoint's, so that random_state=None (a fresh draw
        # per call) still resumes on the same split; under torchrun every rank takes rank 0's.
        seed = saved_seed if saved_seed is not None else torch_seed(self.random_state)
        if job is not None:
            seed = broadcast_seed(seed)
        self.seed_ = seed
        unsharded = self._split(n, seed)
        train_idx, val_idx = unsharded
        if self.validation_fraction > 0 and not len(val_idx):
            share = f"validation_fraction={self.validation_fraction:g} of {n} row(s)"
            # As _split rounds: no validation row, or no training row left.
            under = round(n * self.validation_fraction) < 1
            why = "is under one row" if under else "leaves none to train on"
            warnings.warn(
                f"{share} {why}, so this fit has no validation split: no early stopping, and "
                "offset_ and the latent diagnostics come from the training rows; pass more "
                "rows, or validation_fraction=0 to say so.",
                UserWarning,
                stacklevel=user_stacklevel(),
            )
        if job is not None and len(train_idx) < job.size:
            raise DataError(
                f"{len(train_idx)} training row(s) cannot be shared among {job.size} "
                "torchrun processes; use fewer processes or more data."
            )
        validated = len(val_idx) > 0  # on every rank alike, whatever its shard holds
        if job is not None:
            train_idx = self._shard(train_idx, seed, job)
            val_idx = self._shard(val_idx, seed, job, every_row=True)
        X_train: torch.Tensor | MappedRows
        X_val: torch.Tensor | MappedRows | None = None
        if mapping is not None:
            to_model_input = functools.partial(self._to_model_input, clip=clip)
            X_train = MappedRows(X, train_idx, to_model_input, self.device_)
            if validated:
                X_val = MappedRows(X, val_idx, to_model_input, self.device_)
        else:
            X_model = self._to_model_input(X, clip=clip)
            X_train = torch.from_numpy(X_model[train_idx]).to(self.device_)
            if validated:
                X_val = torch.from_numpy(X_model[val_idx]).to(self.device_)

        on_checkpoint = None
        if checkpoint_path is not None:
            params = {**checkpoint_params, SEED_KEY: seed}

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
        rows, where = diagnostic_rows(X, *unsharded)
        for message, category in self._fit_diagnostics(rows, where):
            warnings.warn(message, category, stacklevel=user_stacklevel())
        return self

    def _refuse_too_few(self, n: int) -> None:
        raise DataError(
            f"{type(self).__name__} needs at least 2 samples to fit, got {n} "
            f"sample{'' if n == 1 else 's'}; pass more rows."
        )

    def _checkpoint_params(self, X: np.ndarray) -> dict[str, Any]:
        """What a checkpoint must match to be resumed: estimator class, parameters, the shape
        of the data X (n, *input_shape_) and a digest of its values."""
        return {
            "estimator": type(self).__name__,
            **jsonable_params(self.get_params()),
            "data": {"n_samples": len(X), "sample_shape": list(self.input_shape_)},
            "data_digest": data_digest(X),
            # What likelihood="auto" chose from the data's values: other data of the same shape
            # can choose the other one, whose network has another set of weights.
            "likelihood_": self.likelihood_,
        }

    def _load_checkpoint(
        self, path: Path, checkpoint_params: dict[str, Any]
    ) -> tuple[TrainingState, int | None]:
        """The checkpoint's training state and fit seed, after checking it belongs to this fit.

        The seed is None for checkpoints written before it was stored.
        """
        state, saved = load_checkpoint(path, self.device_)
        for message in check_resumable(path, state, saved, checkpoint_params):
            warnings.warn(message, UserWarning, stacklevel=3)  # at the caller of fit
        if not state.losses_in_data_nats:  # written before: its losses in standardized nats
            offset = self._log_scale_jacobian()
            for record in state.history:
                add_nll_offset(record, offset)
            state.best_loss += offset  # inf stays inf
            state.losses_in_data_nats = True
        return state, saved_seed(saved)

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

    def _resolve_likelihood(self, X: np.ndarray, lo: float, hi: float) -> str:
        """The likelihood of this fit, for X ranging over [lo, hi]."""
        unit_interval = in_unit_interval(lo, hi)
        if self.likelihood == "auto":
            if not unit_interval and looks_like_8_bit_images(X, lo, hi):
                warnings.warn(
                    f"X holds images with whole-number values in [{lo:.0f}, {hi:.0f}], "
                    "8-bit pixels by the look of it: likelihood='auto' models them with the "
                    "Gaussian likelihood on standardized pixels. For the Bernoulli likelihood "
                    "of image VAEs (and the excess anomaly scores), fit on X / 255; pass "
                    "likelihood='gaussian' to keep this choice without this warning.",
                    UserWarning,
                    stacklevel=user_stacklevel(),
                )
            return "bernoulli" if unit_interval else "gaussian"
        if self.likelihood == "bernoulli" and not unit_interval:
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
        with np.errstate(over="ignore", invalid="ignore"):  # said below, in words
            mean, std = column_moments(X)
        if not (np.isfinite(mean).all() and np.isfinite(std).all()):
            feature = int(np.argmin(np.isfinite(mean + std).reshape(-1)))
            column = X.reshape(X.shape[0], -1)[:, feature]  # one column, even of a memory map
            value = column[np.argmax(np.abs(column))]
            raise _too_large(value, feature, "to standardize (its variance overflows float64)")
        if self.augment is not None:
            mean, std = per_channel(mean, std, self._image_shape())
        # float64: a large mean in float32 would be off by its spacing
        return mean, unit_scale_for_constants(mean, std)

    def _split(self, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """Shuffled train / validation row indices; no validation split when it would be empty."""
        order = np.random.default_rng(seed).permutation(n)
        n_val = round(n * self.validation_fraction)
        if n_val < 1 or n - n_val < 1:
            return np.sort(order), order[:0]
        return np.sort(order[n_val:]), np.sort(order[:n_val])

    @staticmethod
    def _shard(indices: np.ndarray, seed: int, job: World, every_row: bool = False) -> np.ndarray:
        """This rank's share of ``indices``, dealt from a seeded shuffle (not by position, so
        a file sorted by label still gives every rank every class).

        Training shards are equal (:func:`~vaekit.distributed.shard`: the same step count on
        every rank); with ``every_row`` (validation, summed over ranks) the shares differ by
        at most a row and cover every row, so that a split of fewer rows than processes is
        still measured in full.
        """
        shuffled = np.random.default_rng([seed, 1]).permutation(indices)
        if every_row:
            return np.sort(np.array_split(shuffled, job.size)[job.rank])
        return np.sort(shuffled[shard(len(indices), job)])

    def _module_input_shape(self) -> tuple[int, ...]:
        if self.architecture_ == "mlp":
            return (int(math.prod(self.input_shape_)),)
        return self._image_shape()

    def _image_shape(self) -> tuple[int, ...]:
        """(c, h, w) of one image sample: a grayscale (h, w) gets its channel axis."""
        return self.input_shape_ if len(self.input_shape_) == 3 else (1, *self.input_shape_)

    def _to_model_input(self, X: np.ndarray, clip: bool = False) -> np.ndarray:
        """Scale and reshape (n, *input_shape_) data to what the module takes (may share memory
        with a writable X; a read-only one, such as a memory-mapped .npy, is copied, as torch
        tensors must be writable).

        A value the model cannot take (:meth:`_unsupported`) is a DataError, or with ``clip``
        is clipped in, for scoring code that replaces those rows' results afterwards.
        """
        if self.likelihood_ == "gaussian":  # in X's precision: float64 for float64 tables
            dtype = np.result_type(X.dtype, np.float32)
            with np.errstate(over="ignore"):
                scaled = (X - self.mean_.astype(dtype)) / self.scale_.astype(dtype)
            if clip:
                scaled = np.clip(scaled, -_FLOAT32_MAX, _FLOAT32_MAX)
        else:
            scaled = X
        with np.errstate(over="ignore"):  # said below, in words
            out = np.ascontiguousarray(
                scaled.reshape(X.shape[0], *self._module_input_shape()), np.float32
            )
        if clip and self.likelihood_ == "bernoulli":
            # After the float32 cast, in place where that made a copy: a float64 X is not
            # copied whole a second time, and the caller's array is never changed.
            out = np.clip(out, 0.0, 1.0, out=None if np.shares_memory(out, X) else out)
        if not np.isfinite(out).all():  # X itself was checked finite: float32 overflowed
            row, feature = divmod(int(np.argmin(np.isfinite(out).reshape(-1))), out[0].size)
            value = X.reshape(X.shape[0], -1)[row, feature]
            where = " after standardization" if self.likelihood_ == "gaussian" else ""
            raise _too_large(value, feature, f"for the model's float32 arithmetic{where}")
        return out if out.flags.writeable else out.copy()

    def _from_model_output(self, x: torch.Tensor) -> np.ndarray:
        """Decoder mean in model space (n, ...) -> data space (n, *input_shape_).

        float32, except for a standardized table: float64, so that a large-offset column
        (timestamps, 1.7e9 ± 10) is not rounded to float32's spacing there (128).
        """
        out = x.detach().cpu().numpy().reshape(x.shape[0], *self.input_shape_)
        if self.likelihood_ != "gaussian":
            return out.astype(np.float32, copy=False)
        dtype = np.float64 if len(self.input_shape_) == 1 else np.float32
        return out.astype(dtype) * self.scale_.astype(dtype) + self.mean_.astype(dtype)

    # The parameters the network is built from. Changed with set_params after fit, they no
    # longer describe module_ (which the fitted methods read instead): save refuses then, as
    # load would rebuild another network around the weights.
    _NETWORK_PARAMS = ("latent_dim", "hidden_dims", "conv_channels", "output_variance")

    def _network_params(self) -> dict[str, Any]:
        params = {name: getattr(self, name) for name in self._NETWORK_PARAMS}
        for name in ("hidden_dims", "conv_channels"):
            if isinstance(params[name], list | np.ndarray):
                params[name] = tuple(params[name])
        return params

    def _shaping(self, params: dict[str, Any], name: str) -> Any:
        """What of network parameter ``name``'s value in ``params`` shapes the fitted network."""
        value = params[name]
        if name == "conv_channels" and self.architecture_ == "mlp":
            return None  # an MLP has no convolutions
        if name == "hidden_dims" and self.architecture_ == "conv":
            return tuple(value)[-1:]  # the width of a conv network's one dense layer
        if name == "output_variance" and self.likelihood_ != "gaussian":
            return None  # the decoder has no variance to fix or learn
        return value

    def _check_network_unchanged(self) -> None:
        """A ConfigError if a parameter the fitted network was built from was changed since."""
        built = getattr(self, "_network_built_from", None)
        if built is None:  # pickled by an older vaekit
            return
        now = self._network_params()
        changed = [
            name
            for name in self._NETWORK_PARAMS
            if self._shaping(now, name) != self._shaping(built, name)
        ]
        if changed:
            now_text = ", ".join(f"{name}={now[name]!r}" for name in changed)
            was = ", ".join(f"{name}={built[name]!r}" for name in changed)
            raise ConfigError(
                f"{now_text} {'was' if len(changed) == 1 else 'were'} set after fit, but the "
                f"fitted network was built with {was}: fit again, or set_params({was}) back "
                "before saving."
            )

    def _build_module(self) -> AutoencoderModule:
        self._network_built_from = self._network_params()
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
        return Objective(
            self.likelihood_, self._stochastic, getattr(self, "free_bits", 0.0), self.precision
        )

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
            nll_offset=self._log_scale_jacobian(),
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

    def _batches(self, X: np.ndarray, clip: bool = False) -> Iterator[torch.Tensor]:
        """Model-space tensors of consecutive rows of validated X, one batch at a time; with
        ``clip``, values clipped into [0, 1] (see :meth:`_outside_support`)."""
        rows = self._predict_rows()
        for start in range(0, X.shape[0], rows):
            chunk = X[start : start + rows]
            chunk = self._to_model_input(chunk, clip)
            yield torch.from_numpy(chunk).to(self.device_)

    def _latent_batches(self, Z: Any) -> Iterator[torch.Tensor]:
        try:
            Z = check_array(Z, dtype=np.float32)
        except (ValueError, TypeError) as exc:  # TypeError: a sparse matrix
            raise data_error(exc) from None
        if Z.shape[1] != self.module_.latent_dim:
            raise DataError(
                f"Z has {Z.shape[1]} columns, but the latent space has {self.module_.latent_dim} "
                "dimensions."
            )
        rows = self._predict_rows()
        for start in range(0, Z.shape[0], rows):
            block = np.ascontiguousarray(Z[start : start + rows])
            if not block.flags.writeable:  # a memory map or a pandas copy-on-write view
                block = block.copy()  # torch tensors must be writable
            yield torch.from_numpy(block).to(self.device_)

    def _encode(self, X: Any, mean_only: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
        check_is_fitted(self, "module_")
        X = self._validate_X(X, reset=False)
        self._warn_unscaled(X)
        return self._encode_array(X, mean_only)

    def _warn_unscaled(self, X: np.ndarray) -> None:
        """Warn where every row of validated X is outside a Bernoulli model's [0, 1]: μ(x) of
        inputs unlike any the encoder saw (8-bit pixels for a model fit on pixels / 255, as
        the commands train on 8-bit images). Scoring warns about such rows row by row."""
        if self.likelihood_ != "bernoulli" or not every_row_outside_unit_interval(X):
            return
        lo, hi = value_range(X)
        warnings.warn(
            f"Every row of X has values outside [0, 1] (X ranges over [{lo:.4g}, {hi:.4g}]), "
            "the data of this model's Bernoulli likelihood, so its encoder never saw such "
            "inputs; scale X as the training data was"
            + (" (8-bit pixels: divide by 255)." if reaches_8_bit_range(hi) else "."),
            UserWarning,
            stacklevel=user_stacklevel(),
        )

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
        mu = np.concatenate(mus) if mus else np.empty((0, self.module_.latent_dim), np.float32)
        return mu, (np.concatenate(logvars) if logvars else None)

    def _decode(self, batches: Iterator[torch.Tensor]) -> np.ndarray:
        self.module_.eval()
        outs = []
        with torch.inference_mode():
            for z in batches:
                outs.append(
                    self._from_model_output(decoder_mean(self.likelihood_, self.module_.decode(z)))
                )
        if outs:
            return np.concatenate(outs)
        return self._from_model_output(torch.empty(0, *self._module_input_shape()))

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

    def _unsupported(self, X: np.ndarray) -> np.ndarray:
        """Mask, of X's shape, of the values of validated X (or a block of it) that the model
        cannot score: outside [0, 1] under the Bernoulli likelihood, beyond float32's range
        once standardized under the Gaussian one (a 1e300 missing-value sentinel)."""
        if self.likelihood_ == "bernoulli":
            return outside_unit_interval(X)
        with np.errstate(over="ignore"):
            return ~(np.abs((X - self.mean_) / self.scale_) <= _FLOAT32_MAX)

    def _outside_support(self, X: np.ndarray) -> np.ndarray | None:
        """Mask (n,) of the rows of validated X that the model cannot score (see
        :meth:`_unsupported`), or None when there are none and nothing to clip; warns about
        them. All False when values pass 0 or 1 by rounding alone: clipped in, not refused.

        A Bernoulli model's likelihood is defined on [0, 1]: a row with a value outside it
        has p(x) = 0, so its scores are -inf (+inf for an error), the least typical of all,
        and it is flagged as an anomaly. A Gaussian model's row with a value that overflows
        float32 once standardized gets the same: it is beyond anything the model has seen.
        Scoring code reads such X through ``_batches(X, clip=True)`` (values clipped in
        batch by batch, so a memory map stays on disk) and then replaces those rows' results.
        Never an error: a row's score does not depend on the other rows scored with it.
        """
        lo, hi = value_range(X)
        if self.likelihood_ == "bernoulli" and lo >= 0.0 and hi <= 1.0:
            return None
        if self.likelihood_ == "bernoulli" and in_unit_interval(lo, hi):
            return np.zeros(len(X), dtype=bool)  # rounding past 0 or 1: clipped, nothing lost
        if self.likelihood_ == "gaussian":
            largest = max(abs(lo), abs(hi)) + float(np.abs(self.mean_).max())
            if largest <= _FLOAT32_MAX * float(self.scale_.min()):  # the common case, at once
                return None
        outside = np.concatenate(
            [self._unsupported(chunk).reshape(len(chunk), -1).any(1) for chunk in iter_chunks(X)]
            or [np.zeros(0, bool)]
        )
        n_outside = int(outside.sum())
        if n_outside == 0:
            return None
        span = f"(X ranges over [{lo:.9g}, {hi:.9g}])"
        if self.likelihood_ == "gaussian":
            what = (
                f"hold values too large for the model's float32 arithmetic after "
                f"standardization {span}"
            )
            hint = "if they are missing-value sentinels, replace them with real values"
        else:
            what = f"have values outside [0, 1] {span}, where the model's Bernoulli likelihood is 0"
            hint = (
                "every row is: X was probably not scaled as the training data was"
                + (" (8-bit pixels: divide by 255)" if reaches_8_bit_range(hi) else "")
                if n_outside == len(X)
                else "if they are not outliers, scale X as the training data was (a scaler "
                "fitted on other rows, as in cross-validation, can overshoot [0, 1] a little "
                "on new ones: MinMaxScaler(clip=True) keeps them inside)"
            )
        warnings.warn(
            f"{n_outside} of {len(X)} rows of X {what}: they score as the least typical rows "
            f"(log-likelihood -inf) and are flagged as anomalies; {hint}.",
            UserWarning,
            stacklevel=user_stacklevel(),
        )
        return outside

    def _reconstruction_nll(self, X: np.ndarray, per_feature: bool = False) -> np.ndarray:
        """-log p(x | z = μ(x)) of validated X, data units: (n,) or (n, *input_shape_);
        +inf for a value outside the likelihood's support (see :meth:`_outside_support`)."""
        outside = self._outside_support(X)
        nll = self._finite_reconstruction_nll(X, per_feature, clip=outside is not None)
        if outside is not None and outside.any():
            if per_feature:  # exactly the features the model cannot score
                start = 0
                for chunk in iter_chunks(X):  # block by block: a memory map stays on disk
                    nll[start : start + len(chunk)][self._unsupported(chunk)] = np.inf
                    start += len(chunk)
            else:
                nll[outside] = np.inf
        return nll

    def _finite_reconstruction_nll(
        self, X: np.ndarray, per_feature: bool, clip: bool = False
    ) -> np.ndarray:
        """:meth:`_reconstruction_nll` of X read through ``_batches(X, clip)``."""
        logvar_out = _double(self.module_.output_logvar())
        self.module_.eval()
        out = []
        with torch.inference_mode():
            for x in self._batches(X, clip):
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

    def _fit_diagnostics(self, rows: np.ndarray, where: str) -> list[tuple[str, type[Warning]]]:
        """After training: set ``offset_`` from held-out ``rows`` (validated, ``where`` they
        come from); return the warnings for ``fit`` to emit."""
        self.offset_ = anomaly_offset(self._scores(rows), self.contamination)
        self.offset_rows_ = len(rows)
        return []

    def _scoring_seed(self) -> int:
        """The seed of scoring's ε: the fit's (``seed_``), fixed for the model's lifetime.

        An int ``random_state`` gives the same seed either way; drawing from ``random_state``
        afresh would give ``None`` or a RandomState new ε, and new scores, at every call.
        Models saved before ``seed_`` existed fall back to that draw.
        """
        seed = getattr(self, "seed_", None)
        return int(seed) if seed is not None else torch_seed(self.random_state)

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
        return self._mu(X)

    def _mu(self, X: Any) -> np.ndarray:
        """:meth:`transform` as an ndarray whatever ``set_output`` asks of it: for vaekit's own
        callers (reconstruct, generation, the commands), which index and stack the result."""
        return self._encode(X, mean_only=True)[0]

    def inverse_transform(self, X: Any) -> np.ndarray:
        """Decode latent vectors to the decoder mean E[x | z], in data units.

        Parameters
        ----------
        X : array-like of shape (n_samples, latent_dim)
            Latent vectors (named X for scikit-learn compatibility).

        Returns
        -------
        ndarray of shape (n_samples, *input_shape_)
            float32; float64 for a table with the Gaussian likelihood, whose standardization
            is undone in float64 (a column at 1.7e9 would be rounded to steps of 128).
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
        ndarray of shape (n_samples, *input_shape_)
            Shaped as the training samples: flattened rows given to an image model come back
            as images. The dtype of :meth:`inverse_transform`.
        """
        return self.inverse_transform(self._mu(X))

    def score(self, X: Any, y: Any = None) -> float:
        """Mean of :meth:`score_samples` (higher is better; used by GridSearchCV); -inf when a
        row has probability 0 (a value outside [0, 1] under the Bernoulli likelihood) or is too
        large to score (see :meth:`reconstruction_error`).

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
        return self._decision(X)

    def _decision(self, X: Any) -> np.ndarray:
        """:meth:`decision_function`, for it and :meth:`predict`."""
        check_is_fitted(self, "module_")
        if not hasattr(self, "offset_"):
            raise ConfigError(
                f"This {type(self).__name__} has no offset_ (it was saved by an older vaekit); "
                "refit it, or compare score_samples with a threshold of your own."
            )
        message = self._offset_warning()
        if message is not None:
            warnings.warn(message, UserWarning, stacklevel=user_stacklevel())
        return self.score_samples(X) - self.offset_

    def _offset_warning(self, command: bool = False) -> str | None:
        """Why ``offset_`` is unreliable (too few held-out rows beyond it), or None; None also
        for a model saved before ``offset_rows_`` was recorded. ``command``: in the words of
        ``vaekit detect``."""
        rows = getattr(self, "offset_rows_", None)
        return None if rows is None else offset_warning(rows, self.contamination, command=command)

    def predict(self, X: Any) -> np.ndarray:
        """+1 for inliers and -1 for outliers (``decision_function(X) < 0``).

        Parameters
        ----------
        X : array-like of shape (n_samples, ...)

        Returns
        -------
        ndarray of shape (n_samples,), int64
        """
        decision = self._decision(X)
        labels = np.ones(decision.shape, dtype=np.int64)
        labels[~(decision >= 0)] = -1  # a NaN score is no evidence of an inlier
        return labels

    def reconstruction_error(self, X: Any, per_feature: bool = False) -> np.ndarray:
        """Reconstruction error -log p(x | z = μ(x)) in nats, per sample or per feature.

        Binary cross-entropy for data in [0, 1]; for Gaussian data ½[(x - x̂)²/σ² + log 2πσ²]
        with the decoder's σ², as a density of the original (unstandardized) data, so it can be
        negative. Unlike a squared error it discounts features the model knows to be noisy,
        which suits tabular data whose features differ in scale and noise. An
        :class:`Autoencoder`'s ``score_samples`` is minus the per-sample value. Under the
        Bernoulli likelihood a value outside [0, 1] has probability 0: +inf there (per feature:
        at exactly those features), with a warning; so does a value of a Gaussian model too
        large for float32 once standardized (a 1e300 missing-value sentinel), which
        :meth:`transform` refuses.

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
        return self.module_.latent_dim

    def save(self, path: str | os.PathLike) -> None:
        """Write the fitted model to directory ``path`` (see :func:`vaekit.load`).

        Weights go to ``model.safetensors``; parameters, scaling metadata, library versions and
        a checksum of the weights to ``config.json``; the training history to ``history.json``.
        The parameters saved are those of :meth:`get_params` now, with one exception: a
        ``numpy.random.RandomState`` as ``random_state`` is saved as None (its state is not
        JSON), so a loaded model fitted again is not seeded; its ``seed_`` is kept.

        Parameters
        ----------
        path : str or PathLike
            The model directory, created if needed (parents too). A model already saved there
            is replaced, all three files at once (an interruption leaves the old or the new
            one, never a mix); other files in it are left alone.

        Raises
        ------
        NotFittedError
            The model was not fitted.
        ConfigError
            A network parameter (``latent_dim``, ``hidden_dims``...) was changed with
            ``set_params`` after fit: the saved model could not be rebuilt. Or a parameter
            holds a value that ``fit`` (and so :func:`vaekit.load`) refuses.
        ModelFileError
            ``path`` cannot be created or written (a file in the way, no permission).
        """
        from .persistence import save_model

        save_model(self, path)

    def __sklearn_is_fitted__(self) -> bool:
        # What every method checks: fit removes module_ first, so a failed refit, which has
        # set other fitted attributes, does not look fitted to scikit-learn's check_is_fitted.
        return hasattr(self, "module_")

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        tags.transformer_tags.preserves_dtype = ["float32"]  # outputs are always float32
        tags.non_deterministic = self.random_state is None
        return tags


def _double(t: torch.Tensor | None) -> torch.Tensor | None:
    """float64 copy of a network output (or None).

    Scores sum log densities over features and draws in float64: the network's own float32
    rounding is ~1e-7 per output, but a float32 total of tens of nats is only good to a few
    1e-6, enough to make a row's score depend on which rows share its batch.
    """
    return None if t is None else t.double()
