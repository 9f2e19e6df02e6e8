"""Multi-process training with PyTorch DDP, as launched by ``torchrun``.

``torchrun --nproc_per_node=N -m vaekit train ...`` starts N copies of the command with
``RANK``/``WORLD_SIZE``/``LOCAL_RANK``/``MASTER_ADDR`` in their environment. Each process:

- joins the process group (NCCL when training on CUDA, gloo on CPU) on first use;
- trains on its own shard of the training rows (equal sizes, so every rank takes the same number
  of steps and no collective waits forever), wrapped in ``DistributedDataParallel``, which
  averages the gradients across ranks during ``backward``;
- sums its epoch and validation statistics with the others', so that every rank sees the same
  losses and takes the same early-stopping and NaN-recovery decisions;
- leaves all file outputs (checkpoints, the saved model, run.json) to rank 0.

Nothing here runs in a plain single-process session: :func:`world` is ``None`` there.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from .errors import ConfigError


@dataclass(frozen=True)
class World:
    """This process's place in a ``torchrun`` job."""

    rank: int
    size: int
    local_rank: int

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def world() -> World | None:
    """The ``torchrun`` job this process belongs to, or None when it runs alone."""
    size = _env_int("WORLD_SIZE", 1)
    if size <= 1:
        return None
    rank = _env_int("RANK")
    local_rank = _env_int("LOCAL_RANK", rank)
    if not 0 <= rank < size:
        raise ConfigError(
            f"RANK={rank} is outside 0..{size - 1} (WORLD_SIZE={size}); launch with torchrun, "
            "or unset WORLD_SIZE to train in one process."
        )
    return World(rank=rank, size=size, local_rank=local_rank)


def _env_int(name: str, default: int | None = None) -> int:
    """The integer environment variable ``name`` (``default`` when unset); a ConfigError when
    it is not an integer, or unset without a default."""
    text = os.environ.get(name)
    if text is None:
        if default is not None:
            return default
        given = "is not set"
    else:
        try:
            return int(text)
        except ValueError:
            given = f"is {text!r}, not an integer"
    raise ConfigError(
        f"{name} {given}, so this process cannot join a torchrun job (WORLD_SIZE="
        f"{os.environ.get('WORLD_SIZE')!r}); launch with torchrun, or unset WORLD_SIZE to "
        "train in one process."
    )


def is_main_process() -> bool:
    """True unless this is a ``torchrun`` worker other than rank 0 (who alone writes files)."""
    job = world()
    return job is None or job.is_main


def device_for(job: World, requested: torch.device) -> torch.device:
    """One GPU per process (``cuda:LOCAL_RANK``) when training on CUDA; the CPU otherwise."""
    if requested.type == "cuda":
        return torch.device("cuda", job.local_rank)
    return requested


def init_process_group(device: torch.device) -> None:
    """Join the ``torchrun`` process group once: NCCL for CUDA, gloo for CPU tensors."""
    if dist.is_initialized():
        return
    # torch's env:// rendezvous reads these; without them it raises a bare ValueError.
    missing = [name for name in ("MASTER_ADDR", "MASTER_PORT") if not os.environ.get(name)]
    if missing:
        raise ConfigError(
            f"{' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} not set, so this "
            f"process cannot join a torchrun job (WORLD_SIZE={os.environ.get('WORLD_SIZE')!r}); "
            "launch with torchrun, or unset WORLD_SIZE to train in one process."
        )
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")


def shard(n: int, job: World) -> slice:
    """Rows of an already shuffled index array that belong to ``job.rank``.

    Every rank gets ``n // size`` rows: equal shards mean equal step counts per epoch. The
    up to ``size - 1`` rows left over are not trained on (the next seed shuffles differently).
    """
    per_rank = n // job.size
    return slice(job.rank * per_rank, (job.rank + 1) * per_rank)


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    """Sum ``tensor`` over all ranks in place (a no-op outside a process group)."""
    if dist.is_available() and dist.is_initialized():
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def broadcast_seed(seed: int) -> int:
    """Rank 0's ``seed`` on every rank (a no-op outside a process group).

    With ``random_state=None`` each process draws its own seed; the split and the shards must
    come from one seed, or ranks would train on overlapping rows and validate on others.
    """
    if dist.is_available() and dist.is_initialized():
        box = [seed]
        dist.broadcast_object_list(box, src=0)
        return int(box[0])
    return seed


def gather_objects(obj: object) -> list:
    """``obj`` from every rank, in rank order, on every rank (``[obj]`` outside a job)."""
    if dist.is_available() and dist.is_initialized():
        out: list = [None] * dist.get_world_size()
        dist.all_gather_object(out, obj)
        return out
    return [obj]
