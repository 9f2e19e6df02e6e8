"""Save and load fitted models: safetensors weights + JSON metadata. Nothing is ever unpickled.

A model directory holds:

- ``model.safetensors``: the module's tensors, plus the data scaling (``scaling.mean``,
  ``scaling.scale``) so that it round-trips bit for bit;
- ``config.json``: format version, class, constructor parameters, fitted metadata (input shape,
  architecture, likelihood, anomaly threshold ``offset_``, active units and KL per dimension),
  library versions and the SHA-256 of the weights file, which is how a tampered or truncated
  weights file is detected;
- ``history.json``: the per-epoch training history.

Every file is written to a temporary name and renamed into place, so an interrupted save never
leaves a half-written file under the final name.
"""

from __future__ import annotations

import glob
import hashlib
import importlib.util
import json
import os
import platform
import re
import time
import uuid
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import safetensors
import sklearn
import torch
from safetensors.torch import load as load_tensors
from safetensors.torch import save as dump_tensors

from . import __version__
from .errors import ConfigError, ModelFileError, user_stacklevel
from .interrupts import interrupts_held

FORMAT_VERSION = 1
WEIGHTS_FILE, CONFIG_FILE, HISTORY_FILE = "model.safetensors", "config.json", "history.json"
RESULTS_FILE = "results.json"  # what a report is rebuilt from (evaluate, visualize, sweep, demo)
_SCALING_KEYS = ("scaling.mean", "scaling.scale")
_FITTED_ATTRS = ("input_shape_", "n_features_in_", "architecture_", "likelihood_", "n_epochs_")
# The fit's seed (scoring draws its ε from it) and what fit measures on held-out rows (anomaly
# threshold; a VAE's latent usage) and the input's column names, with their types.
# Optional: an Autoencoder has no latent usage, and models saved before these existed still load.
_OPTIONAL_FITTED = {
    "seed_": int,
    "offset_": float,
    "offset_rows_": int,
    "active_units_": int,
    "kl_per_dim_": lambda v: np.asarray(v, dtype=np.float64),
    # Column names of a table fitted on (a pyarrow Table, a DataFrame): scikit-learn then
    # refuses a table whose columns are in another order.
    "feature_names_in_": lambda v: np.asarray(v, dtype=object),
}


def remove_new_folders(folders: list[Path]) -> None:
    """Remove folders a failed job created (as listed before creating them, deepest first),
    while they are empty: a folder that already holds something stays."""
    for folder in folders:
        try:
            folder.rmdir()
        except OSError:  # not empty (a checkpoint to resume from, a file fetched) or gone
            return


def check_output_file(path: Path, example: str) -> None:
    """One clear sentence unless a file can be written at ``path`` (its folder must exist).

    ``example`` is a file name to suggest when ``path`` names a folder (``encoder.onnx``).
    Checked before long work, whose result would otherwise be lost at the end.
    """
    folder = path.parent
    if path.is_dir():
        raise ConfigError(f"{path} is a directory; give a file name such as {example}.")
    if not folder.is_dir():
        raise ConfigError(
            f"Cannot write {path}: {folder} is not an existing folder; create it first."
        )
    probe = folder / f".{path.name}.{uuid.uuid4().hex}.write-test"
    try:
        with open(probe, "xb"):
            pass
        probe.unlink()
    except OSError as exc:
        raise ConfigError(f"Cannot write {path}: {exc.strerror}.") from None


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and a rename."""
    atomic_write_files({path: data})


def atomic_write_files(files: dict[Path, bytes]) -> None:
    """Write several files so that an interruption leaves all old or all new versions.

    Every file is first written in full to a temporary file beside it; only then are they
    renamed into place, one right after the other, with Ctrl-C and SIGTERM held back, so
    that replacing a saved model never leaves new weights beside the old config. Only a crash
    of the machine between two renames, a matter of microseconds, can still mix them.

    The temporary files are opened with ``open(..., "xb")`` rather than ``mkstemp`` so that
    they get the usual umask permissions (mkstemp's are owner-only, which would make reports
    and models unreadable to anyone else). Temporary files of an earlier write of the same
    file that a killed process never renamed are removed once untouched for ten minutes.
    """
    staged: list[tuple[Path, Path]] = []
    try:
        for path, data in files.items():
            _remove_abandoned_temporaries(path)
            tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
            staged.append((tmp, path))
            with open(tmp, "xb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
        with interrupts_held():
            for tmp, path in staged:
                os.replace(tmp, path)
    finally:
        for tmp, _ in staged:
            tmp.unlink(missing_ok=True)


# A temporary file untouched this long was left by a process killed before its rename
# (SIGKILL, a crash): one being written has its modification time renewed by every write.
_ABANDONED_AFTER_SECONDS = 600
_TEMPORARY_SUFFIX = re.compile(r"\.[0-9a-f]{32}\.tmp")


def _remove_abandoned_temporaries(path: Path) -> None:
    """Remove the temporary files of earlier writes of ``path`` that never got renamed."""
    cutoff = time.time() - _ABANDONED_AFTER_SECONDS
    prefix = f".{path.name}"
    for candidate in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
        if not _TEMPORARY_SUFFIX.fullmatch(candidate.name[len(prefix) :]):
            continue
        try:
            if candidate.stat().st_mtime < cutoff:
                candidate.unlink()
        except OSError:  # gone meanwhile, or not ours to remove: the write goes on
            pass


def _json_bytes(obj: Any) -> bytes:
    return (json.dumps(obj, indent=2, allow_nan=True) + "\n").encode()


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_bytes(path, _json_bytes(obj))


def read_json_object(path: Path, what: str, remedy: str) -> dict[str, Any]:
    """Read a JSON file that must hold an object; one clear ModelFileError otherwise.

    ``what`` names what the object should be ("a vaekit model config"); ``remedy`` says what
    to do when the file is not valid JSON ("re-save the model").
    """
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelFileError(f"{path} is not valid JSON ({exc}); {remedy}.") from None
    if not isinstance(obj, dict):
        raise ModelFileError(f"{path} does not hold {what}; {remedy}.")
    return obj


def library_versions() -> dict[str, str]:
    return {
        "vaekit": __version__,
        "torch": torch.__version__,
        "numpy": np.__version__,
        "scikit-learn": sklearn.__version__,
        "safetensors": safetensors.__version__,
        "python": platform.python_version(),
    }


def jsonable_params(params: dict[str, Any]) -> dict[str, Any]:
    """Estimator parameters as JSON values: tuples become lists, numpy scalars Python numbers
    (what ``param_grid={"latent_dim": np.arange(2, 9)}`` hands an estimator), a RandomState None.
    """
    return {key: _jsonable(value) for key, value in params.items()}


def _jsonable(value: Any) -> Any:
    if isinstance(value, (tuple, list, np.ndarray)):
        return [_jsonable(item) for item in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.random.RandomState):
        return None  # a RandomState object is not JSON; the fitted weights do not need it
    if isinstance(value, torch.device):
        return str(value)
    return value


def _restore_transform_output(model: Any, container: Any, directory: Path) -> None:
    """``set_output(transform=container)`` as saved, unless its library is not installed here:
    then ``transform`` returns arrays, with a warning (every call would fail otherwise)."""
    if container is None:
        return
    if container in ("pandas", "polars") and importlib.util.find_spec(container) is None:
        warnings.warn(
            f"{directory} was saved with set_output(transform={container!r}), but {container} "
            "is not installed here, so transform returns arrays; install it to get "
            f"{container} output.",
            UserWarning,
            stacklevel=user_stacklevel(),
        )
        return
    model.set_output(transform=container)


def save_model(model: Any, path: str | os.PathLike) -> Path:
    """Write a fitted :class:`~vaekit.VAE` or :class:`~vaekit.Autoencoder` to directory ``path``.

    Parameters
    ----------
    model : VAE or Autoencoder
        A fitted estimator.
    path : str or PathLike
        Directory, created if needed; existing model files in it are replaced.

    Returns
    -------
    Path
        The directory.
    """
    from sklearn.utils.validation import check_is_fitted

    check_is_fitted(model, "module_")
    # As load does: a value it would refuse must not be written. Not whether the device is
    # here: load moves a model saved for a GPU to the CPU.
    model._check_params(device_here=False)
    model._check_network_unchanged()  # else load would rebuild another network around the weights
    directory = Path(path).expanduser()
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ModelFileError(
            f"Cannot create the model directory {directory}: {exc.strerror}."
        ) from None
    tensors = {
        key: value.detach().cpu().contiguous() for key, value in model.module_.state_dict().items()
    }
    tensors[_SCALING_KEYS[0]] = torch.from_numpy(np.ascontiguousarray(model.mean_))
    tensors[_SCALING_KEYS[1]] = torch.from_numpy(np.ascontiguousarray(model.scale_))
    weights = dump_tensors(tensors)
    config = {
        "format_version": FORMAT_VERSION,
        "class": type(model).__name__,
        "params": jsonable_params(model.get_params()),
        "fitted": {name: getattr(model, name) for name in _FITTED_ATTRS}
        | {
            name: np.asarray(value).tolist()  # numpy scalars and arrays -> JSON numbers / lists
            for name in _OPTIONAL_FITTED
            if (value := getattr(model, name, None)) is not None
        },
        "weights_sha256": hashlib.sha256(weights).hexdigest(),
        "versions": library_versions(),
    }
    # set_output(transform="pandas"/"polars") is the estimator's state too, as pickle keeps it.
    transform_output = getattr(model, "_sklearn_output_config", {}).get("transform")
    if transform_output is not None:
        config["transform_output"] = transform_output
    # Everything is rendered before anything is written, so a value that cannot be written
    # fails here and leaves a model already in the directory untouched.
    config_text = _json_bytes(config)
    history_text = _json_bytes(model.history_)
    try:
        # config.json last: a directory with a config has the weights it describes, and an
        # existing model is replaced whole or not at all.
        atomic_write_files(
            {
                directory / WEIGHTS_FILE: weights,
                directory / HISTORY_FILE: history_text,
                directory / CONFIG_FILE: config_text,
            }
        )
    except OSError as exc:
        raise ModelFileError(f"Cannot write the model to {directory}: {exc.strerror}.") from None
    return directory


def _check_decoder_layout(module: torch.nn.Module, tensors: dict, directory: Path) -> None:
    """Refuse, with what to do, a conv model saved before the decoder fix of 2026-11-22.

    Its decoder lacked the ReLU after a transposed convolution with as many channels as the
    images (``conv_channels`` holding 1 or 3), so its layers are numbered differently; with the
    ReLU it would compute another function, so its weights cannot be reused.
    """
    expected = {k for k in module.state_dict() if k.startswith("decoder.deconv.")}
    saved = {k for k in tensors if k.startswith("decoder.deconv.")}
    if expected and saved and expected != saved and len(expected) == len(saved):
        raise ModelFileError(
            f"{directory} holds a convolutional model saved by a vaekit whose decoder lacked a "
            "ReLU after a layer with as many channels as the images (conv_channels holding "
            "their channel count); it cannot be loaded as it was trained: train it again."
        )


def _device_available(device: Any) -> bool:
    from .params import resolve_device

    try:
        resolve_device(device)
    except ConfigError:
        return False
    return True


def _read_config(directory: Path) -> dict[str, Any]:
    config_path = directory / CONFIG_FILE
    if not directory.is_dir():
        raise ModelFileError(
            f"{directory} is not a model directory (it does not exist or is a file); pass a run "
            "directory written by vaekit train or VAE.save."
        )
    if not config_path.is_file():
        raise ModelFileError(
            f"{directory} has no {CONFIG_FILE}, so it is not a saved vaekit model; pass a run "
            "directory written by vaekit train or VAE.save."
        )
    config = read_json_object(config_path, "a vaekit model config", "re-save the model")
    version = config.get("format_version")
    if not isinstance(version, int):
        raise ModelFileError(f"{config_path} has no format_version; it was not written by vaekit.")
    if version > FORMAT_VERSION:
        saved_by = config.get("versions", {}).get("vaekit", "a newer vaekit")
        raise ModelFileError(
            f"{directory} was saved by vaekit {saved_by} in model format {version}, but this "
            f"vaekit ({__version__}) reads format {FORMAT_VERSION} at most; upgrade vaekit to load "
            "it."
        )
    for key in ("class", "params", "fitted", "weights_sha256"):
        if key not in config:
            raise ModelFileError(f"{config_path} lacks the '{key}' entry; re-save the model.")
    return config


def load_model(path: str | os.PathLike, device: str | None = None) -> Any:
    """Load a model saved by :meth:`VAE.save` / :func:`save_model`.

    Parameters
    ----------
    path : str or PathLike
        The model directory.
    device : str, optional
        Where to put the weights ("cpu", "cuda", "auto"); default: the saved ``device`` param,
        or the CPU when that device is not on this machine (a model trained on a GPU).

    Returns
    -------
    VAE or Autoencoder
        Fitted, with the saved weights, scaling and history.
    """
    from .autoencoder import Autoencoder
    from .params import resolve_device
    from .vae import VAE

    directory = Path(path).expanduser()
    config = _read_config(directory)
    classes = {"VAE": VAE, "Autoencoder": Autoencoder}
    if config["class"] not in classes:
        raise ModelFileError(f"{directory} holds an unknown model class {config['class']!r}.")
    weights_path = directory / WEIGHTS_FILE
    try:
        weights = weights_path.read_bytes()
    except OSError:
        raise ModelFileError(
            f"{directory} has no readable {WEIGHTS_FILE}, so the model is incomplete; re-save "
            "or re-download it."
        ) from None
    if hashlib.sha256(weights).hexdigest() != config["weights_sha256"]:
        raise ModelFileError(
            f"{weights_path} does not match the checksum in {CONFIG_FILE}: the file is truncated, "
            "corrupted or was modified after saving; re-save or re-download the model."
        )

    try:
        params = dict(config["params"])
        for key in ("hidden_dims", "conv_channels"):
            params[key] = tuple(params[key])
        if device is not None:
            params["device"] = device
        elif not _device_available(params.get("device", "auto")):
            params["device"] = "cpu"  # trained on a GPU, loaded where there is none
        model = classes[config["class"]](**params)
        model._check_params()
        fitted = config["fitted"]
        for name in _FITTED_ATTRS:
            setattr(model, name, fitted[name])
        for name, convert in _OPTIONAL_FITTED.items():
            if name in fitted:
                setattr(model, name, convert(fitted[name]))
        model.input_shape_ = tuple(model.input_shape_)
        _restore_transform_output(model, config.get("transform_output"), directory)
        tensors = load_tensors(weights)
        model.mean_ = tensors.pop(_SCALING_KEYS[0]).numpy()
        model.scale_ = tensors.pop(_SCALING_KEYS[1]).numpy()
        model.device_ = resolve_device(model.device)
        module = model._build_module()
        _check_decoder_layout(module, tensors, directory)
        module.load_state_dict(tensors, strict=True)
    except (ConfigError, ModelFileError):
        raise  # a device this machine lacks (a model saved with device="cuda"), said as such
    except (KeyError, TypeError, ValueError, RuntimeError, safetensors.SafetensorError) as exc:
        # torch's load_state_dict opens with "Error(s) in loading state_dict for ...:"; the
        # first line that does not end in a colon says what did not match.
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        reason = next((line for line in lines if not line.endswith(":")), type(exc).__name__)
        reason = reason.rstrip(".")[:200]
        raise ModelFileError(
            f"{directory} could not be rebuilt from its files ({reason}); it may come from an "
            "incompatible vaekit version."
        ) from None
    model.module_ = module.to(model.device_).eval()
    history_path = directory / HISTORY_FILE
    try:
        history = json.loads(history_path.read_text()) if history_path.is_file() else []
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ModelFileError(f"{history_path} is not valid JSON; re-save the model.") from None
    if not isinstance(history, list) or not all(isinstance(r, dict) for r in history):
        raise ModelFileError(
            f"{history_path} is not a list of per-epoch records; re-save the model."
        )
    model.history_ = history
    return model
