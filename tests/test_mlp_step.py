"""The hand-derived MLP VAE step gives autograd's loss terms and gradients."""

from __future__ import annotations

import pytest
import torch

from vaekit import training
from vaekit.mlp_step import MLPVAEStep
from vaekit.nn import LOGVAR_MAX, build_module
from vaekit.training import Objective, TrainConfig, train


def _mlp(hidden: tuple[int, ...], d: int = 12, k: int = 3, seed: int = 0):
    torch.manual_seed(seed)
    return build_module((d,), k, hidden, (8,), "mlp", stochastic=True, decoder_variance=None)


def _autograd_terms_and_grads(module, x, beta, seed):
    for p in module.parameters():
        p.grad = None
    torch.manual_seed(seed)
    terms = Objective("bernoulli", stochastic=True)(module, x, beta)
    terms.objective.backward()
    grads = [p.grad.clone() for p in module.parameters()]
    return terms.objective.detach(), terms.recon.detach(), terms.kl_per_dim.detach(), grads


@pytest.mark.parametrize("hidden", [(), (16,), (16, 8)])
@pytest.mark.parametrize("beta", [1.0, 0.3])
def test_terms_and_gradients_equal_autograds(hidden, beta):
    module = _mlp(hidden)
    x = torch.rand(40, 12)
    x[:5] = torch.bernoulli(x[:5])  # binary rows too, as after dynamic binarization
    with torch.no_grad():  # push some log σ² above the clamp: no gradient may pass there
        module.encoder.head.logvar.bias[0] = LOGVAR_MAX + 5.0
    expected = _autograd_terms_and_grads(module, x, beta, seed=7)

    step = MLPVAEStep.build(module, "bernoulli", stochastic=True, free_bits=0.0)
    assert step is not None
    for p in module.parameters():
        p.grad = torch.full_like(p, float("nan"))  # stale buffers must be overwritten
    torch.manual_seed(7)  # the same ε: the step draws it as reparameterize does
    objective, recon, kl_per_dim = step(x, beta)

    torch.testing.assert_close(objective, expected[0])
    torch.testing.assert_close(recon, expected[1])
    torch.testing.assert_close(kl_per_dim, expected[2])
    for (name, p), grad in zip(module.named_parameters(), expected[3], strict=True):
        torch.testing.assert_close(p.grad, grad, msg=lambda m, name=name: f"{name}: {m}")
    assert module.encoder.head.logvar.bias.grad[0] == 0  # clamped: zero, as autograd gives


def test_other_configurations_use_autograd():
    mlp = _mlp((16,))
    assert MLPVAEStep.build(mlp, "gaussian", True, 0.0) is None
    assert MLPVAEStep.build(mlp, "bernoulli", True, 0.5) is None  # free bits
    ae = build_module((12,), 3, (16,), (8,), "mlp", stochastic=False, decoder_variance=None)
    assert MLPVAEStep.build(ae, "bernoulli", False, 0.0) is None
    conv = build_module((1, 8, 8), 3, (16,), (4,), "conv", stochastic=True, decoder_variance=None)
    assert MLPVAEStep.build(conv, "bernoulli", True, 0.0) is None
    mlp.decoder.out.bias.requires_grad_(False)  # frozen parameters: autograd's business
    assert MLPVAEStep.build(mlp, "bernoulli", True, 0.0) is None


def test_training_with_the_step_matches_autograd_training(monkeypatch):
    """Two epochs through `train`: the same weights, up to float rounding, either way."""
    X = torch.rand(300, 12)
    config = TrainConfig(epochs=2, batch_size=64, learning_rate=1e-2, beta=0.5, patience=None)
    weights, calls = {}, []
    real_fast_step = training._fast_step

    def counting_fast_step(module, objective):
        step = real_fast_step(module, objective)
        assert step is not None
        return lambda x, beta: (calls.append(len(x)), step(x, beta))[1]

    for path in ("hand-derived", "autograd"):
        fast_step = counting_fast_step if path == "hand-derived" else lambda m, o: None
        monkeypatch.setattr(training, "_fast_step", fast_step)
        module = _mlp((16, 8))
        torch.manual_seed(3)
        history = train(module, Objective("bernoulli", stochastic=True), X, None, config)
        weights[path] = (module.state_dict(), history[-1]["train_loss"])
    assert sum(calls) == 2 * len(X)  # every row of both epochs went through the step
    for name, value in weights["autograd"][0].items():
        torch.testing.assert_close(weights["hand-derived"][0][name], value, rtol=1e-4, atol=1e-5)
    assert weights["hand-derived"][1] == pytest.approx(weights["autograd"][1], rel=1e-5)
