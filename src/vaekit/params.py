"""The hyper-parameter checks of :class:`~vaekit.VAE` and :class:`~vaekit.Autoencoder`.

scikit-learn estimators take their parameters as given in ``__init__`` and check them in
``fit``; every check is here, each failing with one :class:`~vaekit.errors.ConfigError` sentence
that names the parameter, the value and what is allowed.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np
import torch
from sklearn.utils import check_random_state

from .augment import AUGMENTATIONS
from .errors import ConfigError
from .losses import LIKELIHOODS
from .nn import LOGVAR_MAX, LOGVAR_MIN
from .schedules import KL_SCHEDULES, LR_SCHEDULES
from .training import PRECISIONS

ARCHITECTURES = ("auto", "mlp", "conv")


def check_params(est: Any, *, stochastic: bool, device_here: bool = True) -> None:
    """Raise :class:`~vaekit.errors.ConfigError` for the first invalid parameter of ``est``.

    Parameters
    ----------
    est : VAE or Autoencoder
        Read through its attributes (the ``__init__`` parameters).
    stochastic : bool
        True for a VAE: also check ``beta``, ``kl_schedule``, ``kl_warmup_epochs`` and
        ``free_bits``.
    device_here : bool, default=True
        Also check that ``device`` exists on this machine (for a fit; a model saved with
        ``device="cuda"`` is loaded on the CPU where there is no GPU, so ``save`` only checks
        that it names a device).
    """

    def positive_int(name: str) -> None:
        check_positive_int(name, getattr(est, name))

    def choice(name: str, options: tuple[str, ...]) -> None:
        if getattr(est, name) not in options:
            raise ConfigError(
                f"{name} must be one of {', '.join(options)}; got {getattr(est, name)!r}."
            )

    for name in ("latent_dim", "epochs", "batch_size"):
        positive_int(name)
    for name, widths in (
        ("hidden_dims", est.hidden_dims),
        ("conv_channels", est.conv_channels),
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
    # A fixed σ² must lie where the decoder's log σ² clamp would leave it as given.
    lo, hi = math.exp(LOGVAR_MIN), math.exp(LOGVAR_MAX)
    if not (
        est.output_variance == "learned"
        or (_is_real(est.output_variance) and lo <= est.output_variance <= hi)
    ):
        raise ConfigError(
            f"output_variance must be 'learned' or a number in [{lo:.3g}, {hi:.3g}] "
            f"(in standardized units), got {est.output_variance!r}."
        )
    if est.augment is not None and est.augment not in AUGMENTATIONS:
        raise ConfigError(
            f"augment must be None or one of {', '.join(AUGMENTATIONS)}; got {est.augment!r}."
        )
    if not (_is_real(est.learning_rate) and est.learning_rate > 0):
        raise ConfigError(f"learning_rate must be a positive number, got {est.learning_rate!r}.")
    choice("lr_schedule", LR_SCHEDULES)
    if not (_is_real(est.validation_fraction) and 0 <= est.validation_fraction < 1):
        raise ConfigError(
            f"validation_fraction must be in [0, 1), got {est.validation_fraction!r}."
        )
    if est.patience is not None and not (
        isinstance(est.patience, numbers.Integral)
        and not isinstance(est.patience, bool)  # True would silently mean 1
        and est.patience >= 1
    ):
        raise ConfigError(f"patience must be a positive integer or None, got {est.patience!r}.")
    if est.max_grad_norm is not None and not (
        _is_real(est.max_grad_norm) and est.max_grad_norm > 0
    ):
        raise ConfigError(
            f"max_grad_norm must be a positive number or None, got {est.max_grad_norm!r}."
        )
    if stochastic:
        if not (_is_real(est.beta) and est.beta >= 0):
            raise ConfigError(f"beta must be a non-negative number, got {est.beta!r}.")
        choice("kl_schedule", KL_SCHEDULES)
        if not (_is_real(est.kl_warmup_epochs) and est.kl_warmup_epochs >= 0):
            raise ConfigError(f"kl_warmup_epochs must be >= 0, got {est.kl_warmup_epochs!r}.")
        if not (_is_real(est.free_bits) and est.free_bits >= 0):
            raise ConfigError(
                f"free_bits must be >= 0 (nats per dimension), got {est.free_bits!r}."
            )
    if not (
        (isinstance(est.contamination, str) and est.contamination == "auto")
        or (_is_real(est.contamination) and 0 < est.contamination <= 0.5)
    ):
        raise ConfigError(
            f"contamination must be 'auto' or a number in (0, 0.5], got {est.contamination!r}."
        )
    if hasattr(est, "dynamic_binarization"):  # an Autoencoder has none
        check_bool("dynamic_binarization", est.dynamic_binarization)
    # scikit-learn's verbosity levels (verbose=2) are taken; any level above 0 shows the bar.
    if not (isinstance(est.verbose, numbers.Integral | np.bool_) and est.verbose >= 0):
        raise ConfigError(f"verbose must be True, False or a level >= 0, got {est.verbose!r}.")
    check_seed("random_state", est.random_state)
    if device_here:
        resolve_device(est.device)
    else:
        _parse_device(est.device)
    choice("precision", tuple(PRECISIONS))


def schedule_warning(est: Any) -> str | None:
    """What a VAE's KL schedule parameters will not do as their names suggest, or None.

    A cyclical schedule cycles over ``kl_warmup_epochs`` (0: no cycle, β constant), and a
    constant one ignores ``kl_warmup_epochs``; both are accepted, neither is what was meant.
    """
    schedule, warmup = getattr(est, "kl_schedule", None), getattr(est, "kl_warmup_epochs", 0)
    if schedule == "cyclical" and warmup == 0:
        return (
            "kl_schedule='cyclical' repeats a warm-up of kl_warmup_epochs, which is 0: β stays "
            "at beta from the first step; set kl_warmup_epochs to the length of one ramp."
        )
    if schedule == "constant" and warmup > 0:
        return (
            f"kl_warmup_epochs={warmup!r} has no effect with kl_schedule='constant' (β is beta "
            "from the first step); use kl_schedule='linear' for a warm-up."
        )
    epochs = getattr(est, "epochs", None)
    if schedule == "linear" and isinstance(epochs, numbers.Integral) and warmup > epochs:
        return (
            f"kl_warmup_epochs ({warmup:g}) is longer than the {epochs} epochs of training: β "
            "never reaches beta "
            f"(it ends at {getattr(est, 'beta', 1.0) * epochs / warmup:.3g}), and early stopping, "
            "which waits for the warm-up, never stops; shorten kl_warmup_epochs or train longer."
        )
    return None


def check_seed(name: str, value: Any) -> None:
    """``value`` is what scikit-learn's ``check_random_state`` takes: None, an int in
    [0, 2**32 - 1] (numpy's range) or a ``RandomState``; else a ConfigError naming ``name``."""
    if value is None or isinstance(value, np.random.RandomState):
        return
    if isinstance(value, numbers.Integral) and not isinstance(value, bool) and 0 <= value < 2**32:
        return
    raise ConfigError(
        f"{name} must be None, an integer in [0, 2**32 - 1] or a numpy RandomState, got {value!r}."
    )


def check_bool(name: str, value: Any) -> None:
    """A ConfigError naming ``name`` unless ``value`` is True or False (or 1 or 0): a string
    such as "no" or "False" read from a config file would otherwise count as True."""
    if not (
        isinstance(value, bool | np.bool_)
        or (isinstance(value, numbers.Integral) and value in (0, 1))
    ):
        raise ConfigError(f"{name} must be True or False, got {value!r}.")


def check_positive_int(name: str, value: Any) -> None:
    """A ConfigError naming ``name`` unless ``value`` is an integer >= 1 (not a bool)."""
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 1:
        raise ConfigError(f"{name} must be a positive integer, got {value!r}.")


def torch_seed(random_state: Any) -> int:
    """An int seed for torch from a scikit-learn ``random_state`` (None, int or RandomState);
    a ConfigError for anything else, as for the estimators' own ``random_state``."""
    check_seed("random_state", random_state)
    return int(check_random_state(random_state).randint(0, 2**31 - 1))


def _parse_device(device: str | torch.device) -> torch.device | None:
    """``device`` as torch reads it (None for ``"auto"``); a ConfigError if it is none."""
    if str(device) == "auto":
        return None
    try:
        return torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ConfigError(
            f"device={device!r} is not a torch device; use 'auto', 'cpu' or 'cuda'."
        ) from exc


def resolve_device(device: str | torch.device) -> torch.device:
    """``"auto"`` -> CUDA when available, else CPU; anything else as torch understands it."""
    resolved = _parse_device(device)
    if resolved is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if resolved.type == "cpu":
        return resolved
    # torch.cuda, torch.mps, torch.xpu... each say whether this machine has one; a device
    # type without such a module (meta, ...) holds no data to train on.
    backend = getattr(torch, resolved.type, None)
    is_available = getattr(backend, "is_available", None)
    if not (callable(is_available) and is_available()):
        name = "CUDA" if resolved.type == "cuda" else resolved.type
        raise ConfigError(
            f"device={device!r} was requested but {name} is not available; use 'auto' or 'cpu'."
        )
    count = getattr(backend, "device_count", None)
    if resolved.index is not None and callable(count) and resolved.index >= count():
        raise ConfigError(
            f"device={device!r} was requested but this machine has {count()} {resolved.type} "
            f"device(s), numbered from 0; use 'auto' or one of them."
        )
    return resolved


def emulated_bfloat16(device: torch.device) -> str | None:
    """Why bfloat16 arithmetic on ``device`` would be emulated (slow), or None where it is native.

    Native: CPUs with AVX512-BF16 or AMX, CUDA devices with bfloat16 units. Other device types
    are not judged (None). oneDNN's own ``_is_mkldnn_bf16_supported`` is not the test: it says
    yes for any AVX-512 CPU, where a bfloat16 product of the MLP's shapes ran 2.6x slower than
    float32 (oneDNN limited to plain AVX-512, measured).
    """
    if device.type == "cpu":
        checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
        try:  # cpuinfo's flags, as torch reads them
            native = any(getattr(torch.cpu, check)() for check in checks)
        except (AttributeError, RuntimeError):  # a torch without them: do not judge
            return None
        return None if native else "this CPU has no bfloat16 instructions (AVX512-BF16 or AMX)"
    if device.type == "cuda":
        with torch.cuda.device(device):  # the question is about this device, not the current one
            native = torch.cuda.is_bf16_supported(including_emulation=False)
        if not native:
            return f"the GPU {torch.cuda.get_device_name(device)} has no bfloat16 units"
    return None


def _is_real(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
