"""The one training loop, and the objective it minimizes.

Read top to bottom: :class:`Objective` turns a batch into per-sample loss terms; :func:`train`
slices shuffled batches out of in-memory tensors, steps Adam, evaluates on the validation split,
stops early, and recovers from non-finite losses. Tensors in, a per-epoch history out.
"""

from __future__ import annotations

import copy
import math
import re
import time
import warnings
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass

import torch
from torch.optim.adam import adam as functional_adam

from .checkpoint import TrainingState, capture_rng, restore_rng
from .distributed import all_reduce_sum, gather_objects, world
from .errors import ModelFileError, TrainingError, user_stacklevel
from .losses import free_bits_kl, gaussian_kl, reconstruction_nll
from .mlp_step import MLPVAEStep
from .nn import AutoencoderModule, reparameterize
from .schedules import kl_weight, lr_factor


@dataclass
class LossTerms:
    """Per-sample terms of one batch; ``objective`` is the scalar that is differentiated."""

    objective: torch.Tensor  # () mean over the batch of recon + β·KL (free bits applied)
    recon: torch.Tensor  # (n,) -log p(x|z)
    kl_per_dim: torch.Tensor | None  # (n, k) KL(q(z|x) || p(z)) per dimension; None for an AE

    @property
    def kl(self) -> torch.Tensor | None:
        return None if self.kl_per_dim is None else self.kl_per_dim.sum(1)


# Training precisions: the dtype of the networks' matrix-multiply and convolution operands.
# "bfloat16" is mixed precision: weights, gradients, Adam and the loss terms stay float32.
PRECISIONS = {"float32": torch.float32, "bfloat16": torch.bfloat16}


@dataclass(frozen=True)
class Objective:
    """Negative ELBO = reconstruction NLL + β·KL per sample (β-VAE: Higgins et al. 2017).

    For a plain autoencoder (``stochastic=False``) the KL term is absent and the decoder sees μ.
    With ``precision="bfloat16"`` the encoder and decoder run under ``torch.autocast`` (their
    matrix multiplies and convolutions in bfloat16) and their outputs are taken back to float32
    before any loss term: the terms are computed and summed in float32, from network outputs
    rounded to bfloat16.
    """

    likelihood: str
    stochastic: bool
    free_bits: float = 0.0
    precision: str = "float32"

    def __call__(self, module: AutoencoderModule, x: torch.Tensor, beta: float) -> LossTerms:
        compute_dtype = PRECISIONS[self.precision]
        mixed = compute_dtype != torch.float32
        # float32 needs no autocast at all (nor its support check for every device type).
        with torch.autocast(x.device.type, dtype=compute_dtype) if mixed else nullcontext():
            mu, logvar = module.encode(x)
            mu = mu.float()
            logvar = None if logvar is None else logvar.float()
            loc = module.decode(reparameterize(mu, logvar) if self.stochastic else mu).float()
        recon = reconstruction_nll(self.likelihood, x, loc, module.output_logvar())
        if not self.stochastic:
            return LossTerms(recon.mean(), recon, None)
        kl_per_dim = gaussian_kl(mu, logvar)  # (n, k)
        objective = (recon + beta * free_bits_kl(kl_per_dim, self.free_bits)).mean()
        return LossTerms(objective, recon, kl_per_dim)


@dataclass
class TrainConfig:
    """Everything :func:`train` needs besides the data; the estimator fills it from its params."""

    epochs: int
    batch_size: int
    learning_rate: float
    lr_schedule: str = "constant"
    beta: float = 1.0
    kl_schedule: str = "linear"
    kl_warmup_epochs: float = 0.0
    patience: int | None = 10  # epochs without validation improvement before stopping
    max_grad_norm: float | None = None
    max_nonfinite_restarts: int = 5
    binarize: bool = (
        False  # dynamic binarization: train on x ~ Bernoulli(x), a fresh draw per batch
    )
    eval_batch_size: int = 4096
    verbose: bool = False
    # Applied to every training batch (x -> x'), which is then also the reconstruction target.
    augment: Callable[[torch.Tensor], torch.Tensor] | None = None
    # Added to the recorded reconstruction and loss: Σ log scale_ for data the estimator
    # standardized, so that the history is in nats of the data, as score_samples (the gradient
    # is the same: a constant).
    nll_offset: float = 0.0


def add_nll_offset(record: dict, offset: float) -> None:
    """Add ``offset`` to an epoch record's losses and reconstructions (not its KL terms), in
    place: standardized nats -> nats of the data (see ``TrainConfig.nll_offset``)."""
    for key in ("train_loss", "train_recon", "val_loss", "val_recon"):
        if key in record:
            record[key] += offset


def _fast_step(module: AutoencoderModule, objective: Objective) -> MLPVAEStep | None:
    """The hand-derived loss-and-gradient pass where it applies (MLP, Bernoulli VAE), else None.

    Only for this module's own :class:`Objective`: a caller's objective (a wrapper, a subclass)
    defines its own loss, which autograd differentiates as written.
    """
    if type(objective) is not Objective:
        return None
    return MLPVAEStep.build(
        module,
        objective.likelihood,
        objective.stochastic,
        objective.free_bits,
        PRECISIONS[objective.precision],
    )


class _AdamStep:
    """``optimizer.step()`` for the hand-derived step's fused Adam, minus the per-step upkeep.

    ``Optimizer.step`` spends ~0.2 ms of every step on work that gives the same answer each
    time (the profiler's record_function, step hooks, collecting every parameter's state and
    gradient into lists), about as long as the fused update itself on the 784-400-20 MLP and
    ~6% of a bfloat16 step on 2 CPU cores. This calls the same functional update,
    ``torch.optim.adam.adam`` with ``fused=True``, on lists collected once per epoch (a restart
    after a non-finite epoch reloads the optimizer's state between epochs): the same kernel
    on the same tensors, so the weights agree bit for bit (tests/test_training.py). Optimizer
    step hooks do not run for these updates; vaekit registers none. ``optimizer.step()`` itself
    runs where this does not apply, and for the first step of an epoch, which creates the
    state on the first step of training.
    """

    def __init__(self, optimizer: torch.optim.Optimizer) -> None:
        self.optimizer = optimizer
        self.lists: tuple[list[torch.Tensor], ...] | None = None
        (group,) = optimizer.param_groups if len(optimizer.param_groups) == 1 else (None,)
        self.group = group
        self.applies = (
            group is not None
            and group.get("fused")
            and not any(
                group.get(k) for k in ("amsgrad", "maximize", "differentiable", "capturable")
            )
            and group["weight_decay"] == 0
        )

    def __call__(self) -> None:
        if not self.applies or self.lists is None:
            self.optimizer.step()
            if self.applies:
                self.lists = self._collect()
            return
        group = self.group
        params, grads, exp_avgs, exp_avg_sqs, steps = self.lists
        beta1, beta2 = group["betas"]
        functional_adam(
            params,
            grads,
            exp_avgs,
            exp_avg_sqs,
            [],
            steps,
            fused=True,
            amsgrad=False,
            beta1=beta1,
            beta2=beta2,
            lr=group["lr"],
            weight_decay=0.0,
            eps=group["eps"],
            maximize=False,
        )

    def _collect(self) -> tuple[list[torch.Tensor], ...] | None:
        """Each parameter's tensors for the update, or None (the plain step) if any is missing."""
        params = self.group["params"]
        states = [self.optimizer.state.get(p, {}) for p in params]
        if any(
            p.grad is None or "step" not in state for p, state in zip(params, states, strict=True)
        ):
            return None
        return (
            list(params),
            [p.grad for p in params],
            [state["exp_avg"] for state in states],
            [state["exp_avg_sq"] for state in states],
            [state["step"] for state in states],
        )


def _make_optimizer(module: torch.nn.Module, lr: float) -> torch.optim.Optimizer:
    # The fused Adam step is one kernel over all parameters: measured 1.9x faster per step than
    # the default foreach implementation for the 784-400-20 MLP on 2 CPU cores (batch 128).
    params = [p for p in module.parameters() if p.requires_grad]
    try:
        return torch.optim.Adam(params, lr=lr, fused=True)
    except (RuntimeError, TypeError):  # devices/dtypes without a fused kernel
        return torch.optim.Adam(params, lr=lr, foreach=True)


@torch.no_grad()
def evaluate(
    module: AutoencoderModule,
    objective: Objective,
    X: torch.Tensor,
    beta: float,
    batch_size: int,
    binarize: bool = False,
) -> dict[str, float | list[float]]:
    """Mean loss terms over ``X`` (n, ...) in eval mode, batched; KL per dimension for a VAE.

    With ``binarize``, X is binarized with a generator of fixed seed: the same binary
    validation set every epoch. The ε of a VAE's terms come from the global RNG, which the
    checkpoint captures after this pass, so an exact resume replays them.
    """
    module.eval()
    generator = torch.Generator(X.device).manual_seed(0) if binarize else None
    # [n, Σ recon, Σ KL per dim...] on the device; under torchrun, summed over every rank's shard
    # so that all ranks see the same validation loss and stop at the same epoch. A rank whose
    # shard is empty (fewer validation rows than processes) adds zeros.
    width = 2 + (module.latent_dim if objective.stochastic else 0)
    sums = torch.zeros(width, device=next(module.parameters()).device)
    for start in range(0, X.shape[0], batch_size):
        x = X[start : start + batch_size]
        if generator is not None:
            x = torch.bernoulli(x, generator=generator)
        terms = objective(module, x, beta)
        kl = terms.kl_per_dim.sum(0) if terms.kl_per_dim is not None else terms.recon[:0]
        batch = torch.cat(
            [terms.recon.new_tensor([terms.recon.shape[0]]), terms.recon.sum(0, True), kl]
        )
        sums = sums + batch
    module.train()
    n, recon_sum, *kl_sums = all_reduce_sum(sums).tolist()
    if n == 0:
        raise ValueError("evaluate() needs at least one row over all processes")
    recon, kl_per_dim = recon_sum / n, [v / n for v in kl_sums]
    if not objective.stochastic:
        return {"loss": recon, "recon": recon}
    kl = sum(kl_per_dim)
    return {"loss": recon + beta * kl, "recon": recon, "kl": kl, "kl_per_dim": kl_per_dim}


def train(
    module: AutoencoderModule,
    objective: Objective,
    X_train: torch.Tensor,
    X_val: torch.Tensor | None,
    config: TrainConfig,
    on_epoch_end: Callable[[int, dict], None] | None = None,
    resume_from: TrainingState | None = None,
    on_checkpoint: Callable[[TrainingState], None] | None = None,
) -> list[dict]:
    """Fit ``module`` in place with Adam on mini-batches; return the per-epoch history.

    Parameters
    ----------
    module : AutoencoderModule
        Trained in place; on return it holds the best weights seen on the validation split (or
        the last weights when there is none).
    objective : Objective
    X_train : Tensor, shape (n, ...), or MappedRows
        Whole training set, already on the module's device: batches are index slices of it, so
        there is no per-sample Python work (no Dataset / DataLoader). For data that does not
        fit in memory, a :class:`~vaekit.rows.MappedRows` serves the same indexing from disk.
    X_val : Tensor, shape (m, ...) or None
        Validation split for early stopping; its loss uses the final β so epochs compare fairly.
    config : TrainConfig
    on_epoch_end : callable, optional
        ``on_epoch_end(epoch, record)`` after each epoch (logging).
    resume_from : TrainingState, optional
        State saved at the end of an earlier epoch (weights, Adam moments, history, early
        stopping, RNG): training continues from it exactly as if it had never stopped.
    on_checkpoint : callable, optional
        ``on_checkpoint(state)`` with the full :class:`~vaekit.checkpoint.TrainingState` at the
        end of each epoch, after all of the epoch's random draws (so a resume replays exactly).

    Returns
    -------
    list of dict
        One record per epoch: train/val loss, reconstruction, KL, β, learning rate, seconds.
    """
    optimizer = _make_optimizer(module, config.learning_rate)
    ddp = _LossModule.for_ddp(module, objective)
    # Under DDP the gradients must flow through autograd (its hooks all-reduce them).
    fast_step = None if ddp is not None else _fast_step(module, objective)
    stopper = _EarlyStopping(config)
    history: list[dict] = []
    restarts = 0
    if resume_from is not None:
        try:  # tensors missing or of other shapes: altered, or written for another model
            module.load_state_dict(resume_from.module)
            optimizer.load_state_dict(resume_from.optimizer)
            stopper.restore(resume_from)
            _check_same_layout(module.state_dict(), resume_from.best_module)
        except (RuntimeError, ValueError, KeyError) as exc:
            why = " ".join(str(exc).split())
            why = re.sub(r"^Error\(s\) in loading state_dict for \w+: ", "", why)
            raise ModelFileError(
                f"The checkpoint's weights do not fit this model ({why[:300]}); it was altered "
                "or written by another vaekit: fit without resume."
            ) from None
        history = list(resume_from.history)
        restarts = resume_from.restarts
        # Each rank its own state. A checkpoint from a run with fewer ranks has none for the
        # extra ones: they start from rank 0's (the run goes on, but not exactly as it would have).
        job = world()
        rank, size = (0, 1) if job is None else (job.rank, job.size)
        restore_rng(resume_from.rng[rank if rank < len(resume_from.rng) else 0])
        if len(resume_from.rng) not in (0, size) and rank == 0:
            warnings.warn(
                f"The checkpoint was written by {len(resume_from.rng)} training process(es) "
                f"and this run has {size}: training goes on from its weights, but each process "
                "now takes another shard of the rows and another random stream, so the result "
                "will not equal an uninterrupted run; resume with the same number of processes "
                "for that.",
                UserWarning,
                stacklevel=user_stacklevel(),
            )
    # The state to fall back on after a non-finite loss. Copying the weights (a few MB) once
    # per epoch costs nothing next to the epoch itself.
    last_good = _snapshot(module, optimizer)
    with _ProgressBar(config.verbose, config.epochs, len(history)) as bar:
        while len(history) < config.epochs and not stopper.stopped:
            epoch = len(history)
            tic = time.perf_counter()
            lr_scale = 0.5**restarts
            record = _run_epoch(
                module, optimizer, objective, X_train, config, epoch, lr_scale, ddp, fast_step
            )
            # A finite epoch loss can still end in non-finite weights (the last step's update):
            # keeping them as the state to fall back on would make every later restart fail.
            if not (math.isfinite(record["train_loss"]) and _weights_finite(module)):
                restarts += 1
                if restarts > config.max_nonfinite_restarts:
                    raise TrainingError(
                        f"Training produced a non-finite loss or weights {restarts} times even "
                        "after halving the learning rate each time; check the data for extreme "
                        "values or lower learning_rate."
                    )
                # Roll back to the end of the last good epoch and retry it more gently: every
                # restart halves the learning rate (see _run_epoch's lr_scale).
                _restore(module, optimizer, last_good)
                continue
            if X_val is not None:  # on every rank, even one with an empty shard
                val = evaluate(
                    module, objective, X_val, config.beta, config.eval_batch_size, config.binarize
                )
                record.update({f"val_{key}": value for key, value in val.items()})
            add_nll_offset(record, config.nll_offset)
            record["seconds"] = time.perf_counter() - tic
            history.append(record)
            last_good = _snapshot(module, optimizer)
            stopper.update(record, last_good["module"])
            bar.advance(record)
            if on_checkpoint is not None:
                on_checkpoint(
                    TrainingState(
                        module=last_good["module"],
                        optimizer=last_good["optimizer"],
                        history=history,
                        best_loss=stopper.best_loss,
                        best_module=stopper.best_state,
                        stale=stopper.stale,
                        restarts=restarts,
                        stopped=stopper.stopped,
                        rng=gather_objects(capture_rng(X_train.device)),
                    )
                )
            if on_epoch_end is not None:
                on_epoch_end(epoch + 1, record)
    if stopper.best_state is not None:
        module.load_state_dict(stopper.best_state)
    module.eval()
    return history


def _run_epoch(
    module: AutoencoderModule,
    optimizer: torch.optim.Optimizer,
    objective: Objective,
    X: torch.Tensor,
    config: TrainConfig,
    epoch: int,
    lr_scale: float = 1.0,
    ddp: torch.nn.Module | None = None,
    fast_step: MLPVAEStep | None = None,
) -> dict:
    """One shuffled pass over X (n, ...); returns the epoch's mean training terms.

    The learning rate of each step is ``config.learning_rate * lr_scale`` times the schedule's
    factor at that step (``lr_scale`` < 1 after non-finite restarts).

    With ``ddp`` (a ``DistributedDataParallel`` :class:`_LossModule`), the loss goes through it
    so that ``backward`` averages the gradients over all ranks. With ``fast_step``, the loss
    and its gradients come from that hand-derived pass instead of autograd.
    """
    module.train()
    n, bs = X.shape[0], config.batch_size
    steps = math.ceil(n / bs)
    base_lr = config.learning_rate * lr_scale
    # Out-of-core rows (vaekit.rows.MappedRows) shuffle in blocks, to read the file in runs.
    shuffled_order = getattr(X, "shuffled_order", None)
    perm = shuffled_order() if shuffled_order is not None else torch.randperm(n, device=X.device)
    flush_subnormals = X.device.type == "cpu"
    # With the hand-derived step every parameter has its gradient buffer for good, so the
    # update can skip Optimizer.step's upkeep; autograd's buffers are new at every step.
    optimizer_step = _AdamStep(optimizer) if fast_step is not None else optimizer.step
    # Sums stay on the device: one host sync per epoch, not one per step.
    sums = torch.zeros(4, device=X.device)  # loss, reconstruction, KL, rows
    for step in range(steps):
        x = _rows(X, perm[step * bs : (step + 1) * bs])
        if config.augment is not None:
            x = config.augment(x)
        if config.binarize:
            x = torch.bernoulli(x)
        beta = kl_weight(
            config.kl_schedule, config.beta, epoch + step / steps, config.kl_warmup_epochs
        )
        lr = base_lr * lr_factor(config.lr_schedule, (epoch + step / steps) / config.epochs)
        for group in optimizer.param_groups:
            group["lr"] = lr
        if fast_step is not None:
            terms = LossTerms(*fast_step(x, beta))  # also writes every parameter's .grad
        else:
            terms = objective(module, x, beta) if ddp is None else LossTerms(*ddp(x, beta))
            optimizer.zero_grad(set_to_none=True)
            terms.objective.backward()
        if config.max_grad_norm is not None:
            torch.nn.utils.clip_grad_norm_(module.parameters(), config.max_grad_norm, foreach=True)
        optimizer_step()
        # Counted from the start of training, so epochs shorter than the sweep period sweep too.
        if flush_subnormals and (epoch * steps + step + 1) % SUBNORMAL_SWEEP_STEPS == 0:
            _zero_subnormal_moments(optimizer)
        with torch.no_grad():
            batch_recon = terms.recon.detach().sum()
            sums[1] += batch_recon
            if terms.kl is None:
                sums[0] += batch_recon
            else:
                # The loss as the validation split measures it, recon + β·KL: with free bits
                # the differentiated objective adds a floor per dimension, which would put the
                # training loss above the validation loss for no reason in the data.
                batch_kl = terms.kl.detach().sum()
                sums[0] += batch_recon + beta * batch_kl
                sums[2] += batch_kl
    sums[3] = n
    loss_sum, recon_sum, kl_sum, rows = all_reduce_sum(sums).tolist()  # over all ranks
    loss, recon, kl = loss_sum / rows, recon_sum / rows, kl_sum / rows
    record = {
        "epoch": epoch + 1,
        "train_loss": loss,
        "train_recon": recon,
        "beta": beta,
        "lr": optimizer.param_groups[0]["lr"],
    }
    if objective.stochastic:
        record["train_kl"] = kl
    return record


def _rows(X: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """The rows ``index`` of X, (b, ...): ``index_select`` for a tensor, which gathers a 128 x 784
    float32 batch 3-4x faster than ``X[index]`` (19 vs 74 µs, 2 CPU threads; advanced indexing
    takes a general path), and a :class:`~vaekit.rows.MappedRows`' own indexing."""
    return X.index_select(0, index) if isinstance(X, torch.Tensor) else X[index]


class _LossModule(torch.nn.Module):
    """The module and the objective as one ``forward(x, β)``, which is what DDP can wrap.

    DistributedDataParallel averages gradients only for what runs through its ``forward``; the
    objective calls ``module.encode`` / ``module.decode``, so the pair is wrapped together.
    """

    def __init__(self, module: AutoencoderModule, objective: Objective) -> None:
        super().__init__()
        self.module = module
        self.objective = objective

    def forward(self, x: torch.Tensor, beta: float) -> tuple:
        terms = self.objective(self.module, x, beta)
        return terms.objective, terms.recon, terms.kl_per_dim

    @classmethod
    def for_ddp(cls, module: AutoencoderModule, objective: Objective) -> torch.nn.Module | None:
        """A DDP-wrapped loss inside a ``torchrun`` process group; None in a single process."""
        if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
            return None
        from torch.nn.parallel import DistributedDataParallel

        device = next(module.parameters()).device
        # DDP broadcasts rank 0's weights at construction, so every rank starts identical.
        return DistributedDataParallel(
            cls(module, objective), device_ids=[device] if device.type == "cuda" else None
        )


def _check_same_layout(weights: dict, best: dict | None) -> None:
    """A ValueError unless ``best`` (the checkpoint's best weights, if any) has the model's
    entries and shapes: restored at the end of training, a mismatch would fail there."""
    if best is None:
        return
    shapes = {k: tuple(v.shape) for k, v in weights.items()}
    given = {k: tuple(v.shape) for k, v in best.items()}
    if shapes != given:
        wrong = sorted(shapes.keys() ^ given.keys()) or [k for k in shapes if shapes[k] != given[k]]
        raise ValueError(f"best weights differ in {', '.join(wrong[:3])}")


class _EarlyStopping:
    """Tracks the best validation loss and its weights; says when patience has run out."""

    def __init__(self, config: TrainConfig) -> None:
        self.patience = config.patience
        # Patience counts only once a linear KL warm-up is over: a validation loss (at the
        # final β) that rises while β ramps up is no reason to stop. A cyclical schedule never
        # ends, so there it counts from the start.
        self.warmup_end = config.kl_warmup_epochs if config.kl_schedule == "linear" else 0.0
        self.best_loss, self.best_state, self.stale = math.inf, None, 0
        self.stopped = False

    def restore(self, state: TrainingState) -> None:
        self.best_loss, self.best_state = state.best_loss, state.best_module
        self.stale, self.stopped = state.stale, state.stopped

    def update(self, record: dict, weights: dict) -> None:
        """Take one epoch's record (and its weights); sets ``stopped`` when patience runs out."""
        loss = record.get("val_loss")
        if loss is None or not math.isfinite(loss):
            return
        if loss < self.best_loss:
            self.best_loss, self.best_state, self.stale = loss, weights, 0
        elif record["epoch"] > self.warmup_end:
            self.stale += 1
        self.stopped = self.patience is not None and self.stale >= self.patience


class _ProgressBar:
    """A rich progress bar over epochs on a terminal; one line per epoch elsewhere (a log file,
    CI, nohup), where a bar would show nothing until the end; nothing when not verbose."""

    def __init__(self, verbose: bool, epochs: int, done: int = 0) -> None:
        self.bar = None
        self.console = None
        self.epochs = epochs
        if not verbose:
            return
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        console = Console(stderr=True, emoji=False)  # stdout is for results (`vaekit train --json`)
        if not (console.is_terminal or console.is_jupyter):  # a notebook draws the bar
            self.console = console
            return
        self.bar = Progress(
            TextColumn("[bold]training"),
            BarColumn(),
            TextColumn("epoch {task.completed}/{task.total}"),
            TextColumn("{task.fields[stats]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=console,
        )
        self.task = self.bar.add_task("train", total=epochs, completed=done, stats="")

    def __enter__(self) -> _ProgressBar:
        if self.bar is not None:
            self.bar.start()
        return self

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.stop()

    def advance(self, record: dict) -> None:
        shown = f"loss {record['train_loss']:.4g}"
        if "val_loss" in record:
            shown += f"  val {record['val_loss']:.4g}"
        if self.bar is not None:
            self.bar.update(self.task, completed=record["epoch"], stats=shown)
        elif self.console is not None:
            self.console.print(
                f"training epoch {record['epoch']}/{self.epochs}  {shown}  "
                f"{record['seconds']:.1f} s",
                highlight=False,
                markup=False,
                soft_wrap=True,
            )


# Adam's moments of a parameter whose gradient is zero (a weight on an always-blank pixel, a
# dead ReLU unit) decay geometrically until they are subnormal floats, and x86 CPUs compute on
# subnormals through a microcode assist roughly a hundred times slower than normal arithmetic.
# Training the 784-400-20 model on MNIST, 80-90k of its 1.3M moments are subnormal from epoch 2
# on; they made the fused Adam step 2.0 ms instead of 0.74 ms (batch 128, 2 cores), and a whole
# epoch 1.17x slower with the same final loss (benchmarks/adam_subnormals.py).
# torch.set_flush_denormal would avoid it, but it sets only the calling thread's flag (not
# OpenMP's workers) and is process-wide, so instead the moments too small to matter are zeroed
# every SUBNORMAL_SWEEP_STEPS steps, before any of them can decay into the subnormal range:
# - |m| < 1e-30 moves a weight by < lr·1e-21 (m̂/(√v̂+ε) with ε = 1e-8), far below float32
#   resolution; after a sweep, m ≥ 1e-30 needs > 100 steps of ×β1 = 0.9 to fall below 1.2e-38.
# - v < 1e-36 shifts √v̂ + ε by < 3.2e-17 even at the first step's bias correction (×1000),
#   below half a unit in the last place of ε; v decays by β2 = 0.999 per step, far slower.
SUBNORMAL_SWEEP_STEPS = 100
_NEGLIGIBLE_MOMENT = {"exp_avg": 1e-30, "exp_avg_sq": 1e-36}


@torch.no_grad()
def _zero_subnormal_moments(optimizer: torch.optim.Optimizer) -> None:
    """Set Adam moments too small to change any update to exactly zero (see above)."""
    for state in optimizer.state.values():
        for key, negligible in _NEGLIGIBLE_MOMENT.items():
            moment = state.get(key)
            if moment is not None:
                moment.masked_fill_(moment.abs() < negligible, 0.0)


def _weights_finite(module: torch.nn.Module) -> bool:
    """No NaN or infinity in any parameter or buffer (one host sync)."""
    tensors = [t for t in module.state_dict().values() if t.is_floating_point()]
    return bool(torch.stack([torch.isfinite(t).all() for t in tensors]).all())


def _snapshot(module: torch.nn.Module, optimizer: torch.optim.Optimizer) -> dict:
    return {
        "module": {k: v.detach().clone() for k, v in module.state_dict().items()},
        "optimizer": copy.deepcopy(optimizer.state_dict()),
    }


def _restore(module: torch.nn.Module, optimizer: torch.optim.Optimizer, state: dict) -> None:
    # The learning rate needs no care: _run_epoch sets it at every step.
    module.load_state_dict(state["module"])
    optimizer.load_state_dict(state["optimizer"])
