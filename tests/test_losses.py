"""The per-sample loss terms against torch.distributions, and the β and learning-rate schedules."""

from __future__ import annotations

import math

import pytest
import torch
from torch.distributions import Bernoulli, Normal, kl_divergence

from vaekit.losses import (
    decoder_mean,
    free_bits_kl,
    gaussian_kl,
    gaussian_log_density,
    iwae_bound,
    reconstruction_nll,
)
from vaekit.schedules import kl_weight, lr_factor


def test_bernoulli_nll_matches_torch_distribution():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(5, 3, 4, generator=g)
    x = (torch.rand(5, 3, 4, generator=g) > 0.5).float()
    expected = -Bernoulli(logits=logits).log_prob(x).flatten(1).sum(1)
    torch.testing.assert_close(reconstruction_nll("bernoulli", x, logits), expected)


def test_bernoulli_accepts_continuous_targets_and_is_minimal_at_the_target():
    x = torch.tensor([[0.2, 0.7]])
    best = torch.logit(x)
    assert reconstruction_nll("bernoulli", x, best) < reconstruction_nll("bernoulli", x, best + 0.3)


@pytest.mark.parametrize("logvar", [None, 0.7, "tensor"])
def test_gaussian_nll_matches_torch_distribution(logvar):
    g = torch.Generator().manual_seed(1)
    x, mean = torch.randn(6, 5, generator=g), torch.randn(6, 5, generator=g)
    lv = {None: torch.zeros(5), 0.7: torch.full((5,), 0.7)}.get(logvar)
    if logvar == "tensor":
        lv = torch.randn(5, generator=g)
        arg = lv
    else:
        arg = logvar
    expected = -Normal(mean, torch.exp(0.5 * lv)).log_prob(x).sum(1)
    torch.testing.assert_close(reconstruction_nll("gaussian", x, mean, arg), expected)


def test_gaussian_kl_matches_torch_distribution_per_dimension():
    g = torch.Generator().manual_seed(2)
    mu, logvar = torch.randn(7, 3, generator=g), torch.randn(7, 3, generator=g)
    expected = kl_divergence(Normal(mu, torch.exp(0.5 * logvar)), Normal(0.0, 1.0))
    torch.testing.assert_close(gaussian_kl(mu, logvar), expected)
    assert torch.all(gaussian_kl(torch.zeros(2, 3), torch.zeros(2, 3)) == 0)


def test_free_bits_stops_the_gradient_of_dimensions_below_the_threshold():
    mu = torch.tensor([[0.1, 3.0], [0.1, 3.0]], requires_grad=True)
    logvar = torch.zeros(2, 2)
    kl = gaussian_kl(mu, logvar)  # dim 0: 0.005 nats, dim 1: 4.5 nats
    out = free_bits_kl(kl, free_bits=0.5)
    # The mean equals Σ_j max(mean_i KL_ij, λ).
    assert out.mean().item() == pytest.approx(0.5 + 4.5)
    out.mean().backward()
    assert torch.all(mu.grad[:, 0] == 0)  # below λ: no pressure towards the prior
    assert torch.all(mu.grad[:, 1] > 0)
    torch.testing.assert_close(free_bits_kl(kl.detach(), 0.0), kl.detach().sum(1))


def test_decoder_mean():
    loc = torch.tensor([[0.0, 2.0]])
    torch.testing.assert_close(decoder_mean("bernoulli", loc), torch.sigmoid(loc))
    assert decoder_mean("gaussian", loc) is loc


def test_iwae_bound_of_equal_weights_is_that_weight_and_grows_with_spread():
    lw = torch.full((10, 3), -5.0)
    torch.testing.assert_close(iwae_bound(lw), torch.full((3,), -5.0))
    spread = torch.tensor([[-5.0], [-1.0]])
    assert iwae_bound(spread).item() == pytest.approx(math.log((math.exp(-5) + math.exp(-1)) / 2))


def test_gaussian_log_density_matches_torch():
    z, mu, lv = torch.randn(4, 3), torch.randn(4, 3), torch.randn(4, 3)
    expected = Normal(mu, torch.exp(0.5 * lv)).log_prob(z).sum(-1)
    torch.testing.assert_close(gaussian_log_density(z, mu, lv), expected)


def test_kl_schedules():
    assert kl_weight("constant", 2.0, 0.0, 10) == 2.0
    assert kl_weight("linear", 2.0, 0.0, 0) == 2.0  # no warm-up: constant
    assert kl_weight("linear", 2.0, 0.0, 10) == 0.0
    assert kl_weight("linear", 2.0, 5.0, 10) == pytest.approx(1.0)
    assert kl_weight("linear", 2.0, 25.0, 10) == 2.0
    # Cyclical: ramp over 10 epochs, hold for 10, ramp again.
    assert kl_weight("cyclical", 1.0, 5.0, 10) == pytest.approx(0.5)
    assert kl_weight("cyclical", 1.0, 15.0, 10) == 1.0
    assert kl_weight("cyclical", 1.0, 25.0, 10) == pytest.approx(0.5)


def test_lr_schedules():
    assert lr_factor("constant", 0.0) == lr_factor("constant", 0.99) == 1.0
    assert lr_factor("cosine", 0.0) == 1.0
    assert lr_factor("cosine", 0.5) == pytest.approx(0.5)
    assert lr_factor("cosine", 0.25) == pytest.approx((1 + 2**-0.5) / 2)
    assert lr_factor("cosine", 1.0) == pytest.approx(0.0)
    assert lr_factor("cosine", 3.0) == pytest.approx(0.0)  # epochs extended on resume: stays low
