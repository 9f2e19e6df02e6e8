"""The training loop: early stopping, recovery from non-finite losses, batching."""

from __future__ import annotations

import math

import pytest
import torch

from vaekit import training
from vaekit.errors import ConfigError, TrainingError
from vaekit.nn import build_module
from vaekit.training import LossTerms, Objective, TrainConfig, evaluate, train


def _setup(seed: int = 0, n: int = 256):
    torch.manual_seed(seed)
    X = torch.rand(n, 6)
    module = build_module((6,), 2, (16,), (8,), "mlp", stochastic=True, decoder_variance=None)
    return module, Objective("bernoulli", stochastic=True), X


class PoisonedObjective:
    """Returns a NaN objective for the first ``bad_calls`` batches, then the real objective."""

    def __init__(self, objective: Objective, bad_calls: int) -> None:
        self.objective, self.bad_calls, self.calls = objective, bad_calls, 0
        self.stochastic = objective.stochastic

    def __call__(self, module, x, beta) -> LossTerms:
        terms = self.objective(module, x, beta)
        self.calls += 1
        if self.calls <= self.bad_calls:
            return LossTerms(terms.objective * math.nan, terms.recon, terms.kl_per_dim)
        return terms


def test_loss_decreases():
    module, objective, X = _setup()
    history = train(
        module,
        objective,
        X[:200],
        X[200:],
        TrainConfig(epochs=15, batch_size=32, learning_rate=1e-2),
    )
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    assert len(history) == 15


def test_non_finite_loss_restores_weights_halves_lr_and_continues():
    module, objective, X = _setup()
    initial = {k: v.clone() for k, v in module.state_dict().items()}
    poisoned = PoisonedObjective(objective, bad_calls=2)  # both batches of the first epoch go bad
    config = TrainConfig(epochs=3, batch_size=128, learning_rate=1e-2, patience=None)
    history = train(module, poisoned, X, None, config)
    assert len(history) == 3
    assert all(math.isfinite(h["train_loss"]) for h in history)
    assert history[0]["lr"] == pytest.approx(5e-3)
    assert all(torch.isfinite(p).all() for p in module.parameters())
    assert any(not torch.equal(initial[k], v) for k, v in module.state_dict().items())


def spy_on_updates(patch: pytest.MonkeyPatch, on_update) -> None:
    """Call ``on_update(lr, grads)`` before every Adam update of training, whichever way it
    is made: ``Optimizer.step``, or the hand-derived step's direct functional update."""
    optimizer_step, functional = torch.optim.Adam.step, training.functional_adam

    def step(self, *args, **kwargs):
        group = self.param_groups[0]
        on_update(group["lr"], [p.grad for p in group["params"]])
        return optimizer_step(self, *args, **kwargs)

    def update(params, grads, *args, **kwargs):
        on_update(kwargs["lr"], grads)
        return functional(params, grads, *args, **kwargs)

    patch.setattr(torch.optim.Adam, "step", step)
    patch.setattr(training, "functional_adam", update)


def test_the_direct_adam_update_gives_optimizer_steps_weights_bit_for_bit(monkeypatch):
    """The hand-derived step's Adam update skips Optimizer.step's upkeep, not its arithmetic:
    three epochs with a cosine schedule end in the same weights and optimizer state either
    way."""
    X = torch.rand(300, 12)
    config = TrainConfig(epochs=3, batch_size=64, learning_rate=1e-2, lr_schedule="cosine")
    results, direct_updates = [], []
    functional = training.functional_adam

    def counting(*args, **kwargs):
        direct_updates.append(1)
        return functional(*args, **kwargs)

    monkeypatch.setattr(training, "functional_adam", counting)
    for direct in (True, False):
        if not direct:  # every update through Optimizer.step
            monkeypatch.setattr(training._AdamStep, "__init__", _plain_adam_step_init)
        torch.manual_seed(0)
        module = build_module((12,), 3, (16,), (8,), "mlp", True, None)
        states = []
        train(module, Objective("bernoulli", True), X, None, config, on_checkpoint=states.append)
        results.append((module.state_dict(), states[-1].optimizer))
        if direct:
            assert len(direct_updates) == 3 * (5 - 1)  # all but each epoch's first step
            direct_updates.clear()
    assert direct_updates == []
    (weights, optimizer), (plain_weights, plain_optimizer) = results
    for key in weights:
        assert torch.equal(weights[key], plain_weights[key]), key
    for key, state in optimizer["state"].items():
        for name, value in state.items():
            assert torch.equal(value, plain_optimizer["state"][key][name]), (key, name)


def _plain_adam_step_init(self, optimizer):
    self.optimizer, self.lists, self.group, self.applies = optimizer, None, None, False


def test_cosine_schedule_sets_every_steps_learning_rate():
    module, objective, X = _setup()
    seen: list[float] = []
    config = TrainConfig(epochs=4, batch_size=64, learning_rate=1e-2, lr_schedule="cosine")
    with pytest.MonkeyPatch.context() as patch:
        spy_on_updates(patch, lambda lr, grads: seen.append(lr))
        history = train(module, objective, X, None, config)
    steps = 4 * 4  # 256 rows in batches of 64, 4 epochs
    expected = [1e-2 * (1 + math.cos(math.pi * t / steps)) / 2 for t in range(steps)]
    assert seen == pytest.approx(expected)
    assert [h["lr"] for h in history] == pytest.approx(expected[3::4])  # each epoch's last step


def test_non_finite_restart_halves_the_scheduled_learning_rate():
    module, objective, X = _setup()
    poisoned = PoisonedObjective(objective, bad_calls=2)
    config = TrainConfig(
        epochs=2, batch_size=128, learning_rate=1e-2, patience=None, lr_schedule="cosine"
    )
    history = train(module, poisoned, X, None, config)
    # The last step of epoch 1 is at progress 1/4, of epoch 2 at 3/4; both halved once.
    assert history[0]["lr"] == pytest.approx(5e-3 * (1 + math.cos(math.pi / 4)) / 2)
    assert history[1]["lr"] == pytest.approx(5e-3 * (1 + math.cos(3 * math.pi / 4)) / 2)


def test_repeated_non_finite_losses_give_a_clear_error():
    module, objective, X = _setup()
    poisoned = PoisonedObjective(objective, bad_calls=10**9)
    config = TrainConfig(epochs=3, batch_size=128, learning_rate=1e-2, max_nonfinite_restarts=2)
    with pytest.raises(TrainingError, match="non-finite loss or weights 3 times"):
        train(module, poisoned, X, None, config)


def test_early_stopping_restores_the_best_weights():
    module, objective, X = _setup(n=300)
    states: list[dict] = []

    def remember(epoch, record):
        states.append({k: v.clone() for k, v in module.state_dict().items()})

    # A large learning rate makes the validation loss noisy, so it stops improving early.
    config = TrainConfig(epochs=60, batch_size=16, learning_rate=3e-2, patience=3)
    history = train(module, objective, X[:200], X[200:], config, on_epoch_end=remember)
    assert len(history) < 60
    best = min(range(len(history)), key=lambda i: history[i]["val_loss"])
    assert best < len(history) - 1
    for key, value in module.state_dict().items():
        assert torch.equal(value, states[best][key])


def test_evaluate_reports_kl_per_dimension():
    module, objective, X = _setup()
    result = evaluate(module, objective, X, beta=1.0, batch_size=100)
    assert len(result["kl_per_dim"]) == 2
    assert result["kl"] == pytest.approx(sum(result["kl_per_dim"]))
    assert result["loss"] == pytest.approx(result["recon"] + result["kl"])
    # Means over rows, whatever the batching (256 rows: a last batch of 56 must count as 56),
    # and β weighs the KL.
    whole = evaluate(module, Objective("bernoulli", stochastic=False), X, 1.0, 256)
    parts = evaluate(module, Objective("bernoulli", stochastic=False), X, 1.0, 100)
    assert parts["recon"] == pytest.approx(whole["recon"], rel=1e-6)
    half = evaluate(module, objective, X, beta=0.5, batch_size=100)
    assert half["loss"] == pytest.approx(half["recon"] + 0.5 * half["kl"])


def test_patience_waits_for_the_end_of_the_kl_warmup():
    from vaekit.training import _EarlyStopping

    config = TrainConfig(epochs=20, batch_size=8, learning_rate=1e-3, patience=2)
    config.kl_warmup_epochs = 5
    stopper = _EarlyStopping(config)
    rising = [{"epoch": e, "val_loss": 10.0 + e} for e in range(1, 8)]
    decisions = []
    for record in rising:
        stopper.update(record, {"epoch": record["epoch"]})
        decisions.append(stopper.stopped)
    # Epochs 2..5 are worse but inside the warm-up; 6 and 7 exhaust the patience of 2.
    assert decisions == [False] * 6 + [True]
    assert stopper.best_state == {"epoch": 1}


@pytest.mark.filterwarnings("ignore::UserWarning")  # 3 epochs on 400 rows: collapse, offset_
def test_dynamic_binarization_trains_on_fresh_binary_draws(monkeypatch):
    import numpy as np
    from sklearn.datasets import load_digits

    from vaekit import VAE
    from vaekit.mlp_step import MLPVAEStep

    X = load_digits().data[:400].astype(np.float32) / 16.0
    params = dict(latent_dim=4, hidden_dims=(32,), epochs=3, random_state=0)
    # An MLP Bernoulli VAE trains through the hand-derived step, not through Objective: record
    # every batch that step is given.
    seen: list[torch.Tensor] = []
    real_step = MLPVAEStep.__call__

    def spy(self, x, beta):
        seen.append(x.detach().clone())
        return real_step(self, x, beta)

    monkeypatch.setattr(MLPVAEStep, "__call__", spy)
    a = VAE(dynamic_binarization=True, batch_size=128, **params).fit(X)
    monkeypatch.undo()
    steps = math.ceil(360 / 128)  # 400 rows, 10% held out for validation
    assert len(seen) == 3 * steps
    assert all(set(torch.unique(x).tolist()) <= {0.0, 1.0} for x in seen)
    # Each epoch trains on every training row once: the same rows every epoch, so a fixed
    # binarization (a threshold, one draw made up front) gives the same binary rows each time.
    # Fresh draws give different ones, as often 1 as x says (the data's grey levels survive in
    # the mean, where a threshold at 1/2 would move them).
    epochs = [torch.cat(seen[e * steps : (e + 1) * steps]) for e in range(3)]
    rows = [sorted(map(tuple, epoch.tolist())) for epoch in epochs]
    assert rows[0] != rows[1] and rows[1] != rows[2] and rows[0] != rows[2]
    grey = (X > 0) & (X < 1)
    assert grey.mean() > 0.2  # digits have many grey pixels for the draws to differ on
    train_rows = a._split(len(X), a.seed_)[0]
    draws = torch.cat(epochs).mean(0).numpy()  # per pixel, over rows and epochs
    # Measured 0.006 (sampling noise of 1,080 draws per pixel); a threshold at 1/2 is off 0.026.
    assert np.abs(draws - X[train_rows].mean(0)).mean() < 0.015
    b = VAE(dynamic_binarization=True, **params).fit(X)
    np.testing.assert_array_equal(a.transform(X), b.transform(X))  # seeded draws
    plain = VAE(**params).fit(X)
    assert not np.array_equal(plain.transform(X), a.transform(X))
    with pytest.raises(ConfigError, match="Bernoulli"):
        VAE(dynamic_binarization=True, **params).fit(X * 16.0)


@pytest.mark.filterwarnings("ignore::UserWarning")  # 2 epochs on 300 rows: collapse, offset_
@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian"])  # hand-derived step, autograd
def test_max_grad_norm_clips_every_step_and_only_when_set(monkeypatch, likelihood):
    import numpy as np
    from sklearn.datasets import load_digits

    from vaekit import VAE

    X = load_digits().data[:300].astype(np.float32) / 16.0
    params = dict(latent_dim=3, hidden_dims=(32,), epochs=2, likelihood=likelihood, random_state=0)
    norms: list[float] = []

    def on_update(lr, grads):  # the gradient the optimizer is about to apply
        norms.append(float(torch.linalg.vector_norm(torch.stack([g.norm() for g in grads]))))

    limits: list[float] = []
    clip = torch.nn.utils.clip_grad_norm_

    def clip_spy(parameters, max_norm, *args, **kwargs):
        limits.append(max_norm)
        return clip(parameters, max_norm, *args, **kwargs)

    spy_on_updates(monkeypatch, on_update)
    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", clip_spy)
    VAE(**params).fit(X)
    assert limits == []  # no clipping at all without max_grad_norm
    unclipped, norms[:] = list(norms), []
    VAE(max_grad_norm=0.01, **params).fit(X)
    assert len(norms) == len(unclipped) == 2 * math.ceil(270 / 128)
    assert limits == [0.01] * len(norms)
    assert min(unclipped) > 0.01  # so a limit of 0.01 has something to do at every step
    assert max(norms) <= 0.01 * (1 + 1e-4)
    assert min(norms) > 0.01 * (1 - 1e-4)  # scaled down to the limit, not below it
    monkeypatch.undo()
    for bad in (-1, 0, "x", float("nan"), float("inf"), True):
        with pytest.raises(ConfigError, match="max_grad_norm must be a positive number or None"):
            VAE(max_grad_norm=bad, epochs=1).fit(X[:20])


def test_an_epoch_that_ends_in_non_finite_weights_is_rolled_back(monkeypatch):
    """The epoch's loss is finite but its last update left a NaN weight: that state must not
    become the one restarts fall back on (every later restart would fail)."""
    import vaekit.training as training

    module, objective, X = _setup()
    real_run_epoch, calls = training._run_epoch, []

    def poison_the_first_epoch(module, *args, **kwargs):
        record = real_run_epoch(module, *args, **kwargs)
        calls.append(record["epoch"])
        if len(calls) == 1:
            with torch.no_grad():
                next(module.parameters())[0, 0] = math.nan
        return record

    monkeypatch.setattr(training, "_run_epoch", poison_the_first_epoch)
    config = TrainConfig(epochs=3, batch_size=128, learning_rate=1e-2, patience=None)
    history = train(module, objective, X, None, config)
    assert calls == [1, 1, 2, 3]  # the first epoch ran again, from the initial weights
    assert history[0]["lr"] == pytest.approx(5e-3)  # with half the learning rate
    assert all(torch.isfinite(p).all() for p in module.parameters())


def test_verbose_training_logs_one_line_per_epoch_where_stderr_is_no_terminal(capsys):
    """In a log file or CI a rich bar shows nothing until the end: a line per epoch instead."""
    module, objective, X = _setup()
    config = TrainConfig(epochs=3, batch_size=64, learning_rate=1e-2, verbose=True)
    train(module, objective, X[:200], X[200:], config)
    out, err = capsys.readouterr()
    lines = err.splitlines()
    assert out == "" and len(lines) == 3
    for epoch, line in enumerate(lines, 1):
        assert line.startswith(f"training epoch {epoch}/3  loss ") and "  val " in line


def _subnormal_count(tensor: torch.Tensor) -> int:
    tiny = torch.finfo(tensor.dtype).tiny
    return int(((tensor != 0) & (tensor.abs() < tiny)).sum())


@pytest.mark.parametrize("sweep", [True, False])
def test_adam_moments_never_decay_into_subnormal_floats(monkeypatch, sweep):
    # A weight whose gradient is zero for a while (a dead ReLU unit, a pixel blank in most
    # batches) has its Adam first moment decay by 0.9 per step: subnormal ~800 steps later.
    # The epochs here (32 steps) are shorter than the sweep period: it must count across them.
    import vaekit.training as training

    if not sweep:  # the control: without the sweep the same run does end in subnormals
        monkeypatch.setattr(training, "SUBNORMAL_SWEEP_STEPS", 10**9)
    torch.manual_seed(0)
    X = torch.rand(64, 6).round()
    module = build_module((6,), 2, (8,), (8,), "mlp", stochastic=True, decoder_variance=None)
    states = []
    config = TrainConfig(epochs=30, batch_size=2, learning_rate=1e-3, patience=None)  # 960 steps
    train(module, Objective("bernoulli", True), X, None, config, on_checkpoint=states.append)
    moments = [
        s[key] for s in states[-1].optimizer["state"].values() for key in ("exp_avg", "exp_avg_sq")
    ]
    subnormal = sum(_subnormal_count(m) for m in moments)
    assert (subnormal == 0) if sweep else (subnormal > 0)


@pytest.mark.filterwarnings("ignore::vaekit.errors.PosteriorCollapseWarning")
def test_kl_schedules_that_cannot_do_what_they_say_warn():
    import warnings

    import numpy as np
    from sklearn.datasets import load_digits

    from vaekit import VAE

    X = load_digits().data[:200].astype(np.float32) / 16.0
    params = dict(latent_dim=2, hidden_dims=(16,), epochs=1, random_state=0)
    with pytest.warns(UserWarning, match="kl_schedule='cyclical' repeats a warm-up of kl_warmup"):
        VAE(kl_schedule="cyclical", **params).fit(X)
    with pytest.warns(UserWarning, match="kl_warmup_epochs=2 has no effect with kl_schedule="):
        VAE(kl_schedule="constant", kl_warmup_epochs=2, **params).fit(X)
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message="(kl_schedule|kl_warmup_epochs)=")
        VAE(**params).fit(X)  # the default: linear, no warm-up, β from the first step
        VAE(kl_schedule="cyclical", kl_warmup_epochs=1, **params).fit(X)
        VAE(kl_schedule="constant", **params).fit(X)


def test_free_bits_training_loss_is_the_loss_the_validation_split_reports():
    """With free bits the differentiated objective lifts small KL terms to the floor; the
    recorded training loss is recon + β·KL all the same, comparable with ``val_loss``."""
    module, _, X = _setup()
    objective = Objective("bernoulli", stochastic=True, free_bits=2.0)  # above every KL here
    config = TrainConfig(epochs=2, batch_size=256, learning_rate=1e-3, beta=0.5, patience=None)
    (record, *_) = train(module, objective, X, X, config)
    assert record["train_kl"] < 2.0 * 2  # the floor is active in both latent dimensions
    assert record["train_loss"] == pytest.approx(record["train_recon"] + 0.5 * record["train_kl"])
    assert record["train_loss"] == pytest.approx(record["val_loss"], rel=1e-2)
