"""Training checkpoints: everything needed to continue a run exactly where it stopped.

One file, ``checkpoint.safetensors``, rewritten atomically (temporary file + rename) after every
epoch. Tensors (weights, Adam moments, the best weights so far, RNG states) are safetensors
entries; everything else (history, early-stopping counters, the learning rate, the estimator's
parameters) is JSON in the safetensors header's metadata. As for saved models, nothing is ever
unpickled, so a checkpoint from someone else is as safe to resume as a model is to load.

A run killed at any moment (even SIGKILL mid-write) leaves either the previous epoch's checkpoint
or the new one, never a mix, and resuming replays the remaining epochs bit for bit on CPU: the
RNG state saved is the one at the end of the epoch, after batch shuffling, ε draws and the
validation pass have all consumed theirs.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_tensors
from safetensors.torch import save as dump_tensors

from .errors import ConfigError, ModelFileError
from .persistence import atomic_write_bytes

CHECKPOINT_FILE = "checkpoint.safetensors"
# The fit's seed travels in a checkpoint's parameters under this key (not compared on resume).
SEED_KEY = "fit_seed"
# Parameters that may change between the interrupted run and its resumption.
_FREE_ON_RESUME = frozenset({"epochs", "verbose", "device", "contamination"})
# Compared on resume, but missing from checkpoints written by older versions.
_RECORDED_LATER = frozenset({"estimator", "likelihood_", "data_digest"})
# Parameters added later whose value was fixed before: a checkpoint without one had this.
_BEFORE_ADDED = {"precision": "float32"}
CHECKPOINT_FORMAT = 1
# Rows of the training data whose values a checkpoint's data digest covers.
_DIGEST_ROWS = 256
_META_KEY = "vaekit_checkpoint"


@dataclass
class TrainingState:
    """The loop's state at an epoch boundary (what :func:`vaekit.training.train` resumes from).

    Attributes
    ----------
    module, optimizer : dict
        ``state_dict()`` of the module and of the optimizer.
    history : list of dict
        One record per finished epoch.
    best_loss : float
        Best validation loss so far (inf when there is no validation split yet).
    best_module : dict or None
        Weights at ``best_loss``, restored when training ends.
    stale : int
        Epochs since ``best_loss`` improved (early-stopping patience).
    restarts : int
        Non-finite-loss rollbacks so far.
    stopped : bool
        Early stopping already fired: there is nothing left to train.
    rng : list of dict
        Torch RNG states ``{"cpu": ByteTensor, "cuda": [ByteTensor, ...]}``, one per rank in
        rank order (a single entry outside ``torchrun``): every rank draws its own ε and batch
        order, so an exact resume restores each rank's own state.
    """

    module: dict[str, torch.Tensor]
    optimizer: dict[str, Any]
    history: list[dict]
    best_loss: float
    best_module: dict[str, torch.Tensor] | None
    stale: int
    restarts: int
    stopped: bool
    rng: list[dict[str, Any]] = field(default_factory=list)
    # False for a checkpoint written before losses were recorded in nats of the data: its
    # history and best_loss are in standardized nats (see TrainConfig.nll_offset).
    losses_in_data_nats: bool = True


# What to do about a checkpoint that cannot be read: its epochs are lost either way.
_START_OVER = "start the run over with --overwrite instead of --resume (resume=False in Python)"


def capture_rng(device: torch.device) -> dict[str, Any]:
    """The torch RNG states that training draws from (CPU, and CUDA when training there)."""
    state: dict[str, Any] = {"cpu": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["cpu"])
    if state.get("cuda"):
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(path: Path, state: TrainingState, params: dict[str, Any]) -> None:
    """Write ``state`` (and the estimator ``params`` it belongs to) to ``path`` atomically."""
    tensors: dict[str, torch.Tensor] = {}
    for name, value in state.module.items():
        tensors[f"module.{name}"] = value
    if state.best_module is not None:
        for name, value in state.best_module.items():
            tensors[f"best.{name}"] = value
    optimizer_values: dict[str, dict[str, Any]] = {}
    for index, values in state.optimizer["state"].items():
        for key, value in values.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optimizer.{index}.{key}"] = value
            else:
                optimizer_values.setdefault(str(index), {})[key] = value
    for rank, rng in enumerate(state.rng):
        prefix = "rng." if rank == 0 else f"rng.rank{rank}."  # rank 0 as in single runs
        tensors[f"{prefix}cpu"] = rng["cpu"]
        for i, cuda_state in enumerate(rng.get("cuda", [])):
            tensors[f"{prefix}cuda.{i}"] = cuda_state
    meta = {
        "format": CHECKPOINT_FORMAT,
        "params": params,
        "history": state.history,
        "best_loss": state.best_loss,
        "has_best": state.best_module is not None,
        "stale": state.stale,
        "restarts": state.restarts,
        "stopped": state.stopped,
        "optimizer_param_groups": state.optimizer["param_groups"],
        "optimizer_values": optimizer_values,
        "losses": "data nats",  # history and best_loss include TrainConfig.nll_offset
    }
    # safetensors refuses tensors that share memory or are not contiguous: give it copies on CPU.
    tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in tensors.items()}
    # The tensors' bytes do not depend on the header: serialized once to digest them, then
    # with the digest in the header, so that load tells a modified tensor from a good one.
    blob = dump_tensors(tensors, metadata={_META_KEY: json.dumps(meta, allow_nan=True)})
    meta["tensors_sha256"] = _tensors_digest(blob)
    blob = dump_tensors(tensors, metadata={_META_KEY: json.dumps(meta, allow_nan=True)})
    atomic_write_bytes(path, blob)


def _tensors_digest(blob: bytes) -> str:
    """sha256 of a safetensors blob's data section: everything after its header."""
    header_length = int.from_bytes(blob[:8], "little")
    return hashlib.sha256(memoryview(blob)[8 + header_length :]).hexdigest()


def load_checkpoint(path: Path, device: torch.device) -> tuple[TrainingState, dict[str, Any]]:
    """Read a checkpoint written by :func:`save_checkpoint`: ``(state, params)``.

    Raises
    ------
    ModelFileError
        The file is missing, truncated, tampered with or from another format version.
    """
    path = Path(path)
    try:
        blob = path.read_bytes()
    except FileNotFoundError:
        raise ModelFileError(
            f"No checkpoint to resume from: {path} does not exist; drop --resume (resume=False) "
            "to start a new run."
        ) from None
    try:
        tensors = load_tensors(blob)
        meta = json.loads(_read_metadata(blob)[_META_KEY])
    except (SafetensorError, KeyError, ValueError, TypeError) as exc:
        raise ModelFileError(
            f"{path} is not a readable vaekit checkpoint ({exc}); {_START_OVER}."
        ) from None
    if meta.get("format") != CHECKPOINT_FORMAT:
        raise ModelFileError(
            f"{path} has checkpoint format {meta.get('format')!r}; this vaekit reads format "
            f"{CHECKPOINT_FORMAT}."
        )
    expected = meta.get("tensors_sha256")  # absent from checkpoints written before it was
    if expected is not None and expected != _tensors_digest(blob):
        raise ModelFileError(
            f"{path} does not match its own digest: its tensors were modified or damaged "
            f"after it was written; {_START_OVER}."
        )

    def section(prefix: str) -> dict[str, torch.Tensor]:
        return {k[len(prefix) :]: v.to(device) for k, v in tensors.items() if k.startswith(prefix)}

    try:  # a header altered or from another writer: a missing or malformed entry
        optimizer_state: dict[int, dict[str, Any]] = {}
        for key, value in tensors.items():
            if key.startswith("optimizer."):
                _, index, name = key.split(".", 2)
                optimizer_state.setdefault(int(index), {})[name] = value.to(device)
        for index, values in meta["optimizer_values"].items():
            optimizer_state.setdefault(int(index), {}).update(values)
        rngs = [_rng_entries(tensors, "rng.")]
        while f"rng.rank{len(rngs)}.cpu" in tensors:
            rngs.append(_rng_entries(tensors, f"rng.rank{len(rngs)}."))
        state = TrainingState(
            module=section("module."),
            optimizer={"state": optimizer_state, "param_groups": meta["optimizer_param_groups"]},
            history=meta["history"],
            best_loss=float(meta["best_loss"]),
            best_module=section("best.") if meta["has_best"] else None,
            stale=int(meta["stale"]),
            restarts=int(meta["restarts"]),
            stopped=bool(meta["stopped"]),
            rng=rngs,
            losses_in_data_nats=meta.get("losses") == "data nats",
        )
        return state, dict(meta["params"])
    except (KeyError, ValueError, TypeError, AttributeError) as exc:
        what = f"no {exc}" if isinstance(exc, KeyError) else str(exc).splitlines()[0]
        raise ModelFileError(
            f"{path} is not a readable vaekit checkpoint ({what}); {_START_OVER}."
        ) from None


def _rng_entries(tensors: dict[str, torch.Tensor], prefix: str) -> dict[str, Any]:
    """One rank's RNG states from the ``{prefix}cpu`` / ``{prefix}cuda.{i}`` entries."""
    cuda = {
        int(key[len(prefix) + 5 :]): value
        for key, value in tensors.items()
        if key.startswith(f"{prefix}cuda.")
    }
    # By device number: as strings, "cuda.10" would sort before "cuda.2".
    return {"cpu": tensors[f"{prefix}cpu"], "cuda": [cuda[i] for i in sorted(cuda)]}


def _read_metadata(blob: bytes) -> dict[str, str]:
    """The ``__metadata__`` of a safetensors blob (an 8-byte length, then a JSON header)."""
    header_len = int.from_bytes(blob[:8], "little")
    header = json.loads(blob[8 : 8 + header_len])
    return header.get("__metadata__") or {}


def data_digest(X: np.ndarray) -> str:
    """A digest of X's values, to tell a checkpoint's training data from other data of the same
    shape (MNIST from Fashion-MNIST, a regenerated file).

    sha256 of up to 256 rows spread evenly over X, as float32 (so a table read as float64 and
    as float32 agrees): a memory map reads only those rows. A change confined to the rows
    between them goes unseen; this guards against the wrong file, not against tampering.
    """
    n = len(X)
    rows = np.unique(np.linspace(0, n - 1, min(n, _DIGEST_ROWS)).round().astype(np.int64))
    with np.errstate(over="ignore"):  # a float64 value beyond float32 digests as inf
        sample = np.ascontiguousarray(np.asarray(X[rows], dtype=np.float32))
    return hashlib.sha256(sample.tobytes()).hexdigest()[:16]


def check_resumable(
    path: Path, state: TrainingState, saved: dict[str, Any], current: dict[str, Any]
) -> list[str]:
    """Refuse a checkpoint written by another fit; return warnings about this resumption.

    Parameters
    ----------
    path : Path
        The checkpoint, for messages.
    state : TrainingState
        What it holds (read by :func:`load_checkpoint`).
    saved, current : dict
        The parameters it was written with, and those of the fit resuming it: the estimator
        class, its ``get_params()`` and the data's shape.

    Returns
    -------
    list of str
        Why the resumed run will not be what the ``current`` parameters suggest (empty when it
        will): a run that early stopping already ended, or a cosine schedule laid out again.

    Raises
    ------
    ConfigError
        When a parameter other than ``epochs``, ``verbose``, ``device`` and ``contamination``
        differs, or when ``epochs`` is smaller than the epochs already done.
    """
    # A checkpoint written before a key was recorded (the estimator class, the likelihood
    # chosen) has none: not a mismatch.
    free = _FREE_ON_RESUME | {k for k in _RECORDED_LATER if k not in saved}
    saved = {**_BEFORE_ADDED, **saved}
    differ = sorted(k for k in current.keys() - free if saved.get(k) != current[k])
    if "estimator" in differ:  # the other parameters then differ by what the classes have
        raise ConfigError(
            f"The checkpoint {path} was written by a fit of {saved['estimator']}, and this fit "
            f"is of {current['estimator']}; resume it with {saved['estimator']}."
        )
    if differ == ["data_digest"]:
        raise ConfigError(
            f"The checkpoint {path} was trained on other data of the same shape (its values "
            "differ); resume with the data it was trained on, or fit without resume."
        )
    if differ:
        shown = ", ".join(
            f"{k}={saved.get(k)!r} (now {current[k]!r})" for k in differ if k != "data_digest"
        ) + (", other data values" if "data_digest" in differ else "")
        raise ConfigError(
            f"The checkpoint {path} was written by a different fit: {shown}; resume with "
            "the same data and parameters."
        )
    done, epochs = len(state.history), current["epochs"]
    if done > epochs:
        raise ConfigError(
            f"The checkpoint {path} already holds {done} epochs, more than epochs={epochs}; "
            f"resume with epochs >= {done}, or fit without resume."
        )
    messages = []
    if state.stopped and epochs > done:
        messages.append(
            f"The checkpointed run stopped early after {done} epochs (no better validation "
            f"loss for patience={current.get('patience')} epochs), so resuming trains nothing "
            "more; fit without resume, with a larger patience, to train longer."
        )
    if current.get("lr_schedule") == "cosine" and saved.get("epochs") != epochs and epochs > done:
        messages.append(
            f"lr_schedule='cosine' decays over all epochs: the run started with epochs="
            f"{saved.get('epochs')}, and epochs={epochs} lays the decay out again, so the "
            f"learning rate of epoch {done + 1} differs from the one the run would have had (a "
            "warm restart when epochs grows)."
        )
    return messages


def saved_seed(saved: dict[str, Any]) -> int | None:
    """The fit seed a checkpoint's parameters carry; None for checkpoints from before it was."""
    seed = saved.get(SEED_KEY)
    return int(seed) if isinstance(seed, int) else None
