"""Per-sample loss terms. Every function returns one value per sample; the caller reduces.

Training, ``score_samples``, anomaly scores and likelihood estimates all reuse these, so what the
model is trained on is exactly what it is scored with (house rule 3; pythae's ``ModelOutput``).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

LIKELIHOODS = ("bernoulli", "gaussian")
_LOG_2PI = math.log(2.0 * math.pi)


def _sum_features(t: torch.Tensor) -> torch.Tensor:
    """Sum every dimension but the first: (n, ...) -> (n,)."""
    return t.flatten(1).sum(1)


def reconstruction_nll(
    likelihood: str,
    x: torch.Tensor,
    loc: torch.Tensor,
    logvar: torch.Tensor | float | None = None,
) -> torch.Tensor:
    """-log p(x | z) per sample, in nats.

    Parameters
    ----------
    likelihood : {"bernoulli", "gaussian"}
    x : Tensor, shape (n, ...)
        Data. Bernoulli accepts continuous values in [0, 1] (the "continuous pixels" convention).
    loc : Tensor, shape (n, ...)
        Decoder output: logits for Bernoulli, mean for Gaussian.
    logvar : Tensor broadcastable to x, float, or None
        Gaussian log σ²; ``None`` means σ² = 1.

    Returns
    -------
    Tensor, shape (n,)
    """
    if likelihood == "bernoulli":
        # BCE with logits is the numerically stable -[x log σ(l) + (1-x) log(1-σ(l))].
        return _sum_features(F.binary_cross_entropy_with_logits(loc, x, reduction="none"))
    if logvar is None:
        logvar = 0.0
    if isinstance(logvar, float):
        sq = (x - loc).pow(2) * math.exp(-logvar)
        return 0.5 * _sum_features(sq + (_LOG_2PI + logvar))
    # -log N(x; μ, σ²) = ½ [log 2π + log σ² + (x-μ)²/σ²]
    return 0.5 * _sum_features((x - loc).pow(2) * torch.exp(-logvar) + (logvar + _LOG_2PI))


def squared_error(x: torch.Tensor, x_hat: torch.Tensor) -> torch.Tensor:
    """Sum of squared errors per sample, (n, ...) -> (n,): the plain AE's reconstruction error."""
    return _sum_features((x - x_hat).pow(2))


def decoder_mean(likelihood: str, loc: torch.Tensor) -> torch.Tensor:
    """E[x | z] from the decoder output: sigmoid of the logits (Bernoulli) or the mean itself."""
    return torch.sigmoid(loc) if likelihood == "bernoulli" else loc


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(μ, σ²) || N(0, I)) per sample and latent dimension.

    Closed form for diagonal Gaussians (Kingma & Welling 2014, App. B):
    ``-½ (1 + log σ² - μ² - σ²)``.

    Returns
    -------
    Tensor, shape (n, k)
        Kept per dimension so free bits and "KL per dimension" diagnostics need no second pass.
    """
    return -0.5 * (1.0 + logvar - mu.pow(2) - logvar.exp())


def free_bits_kl(kl_per_dim: torch.Tensor, free_bits: float) -> torch.Tensor:
    """The KL term used for the gradient when each dimension gets ``free_bits`` nats for free.

    Kingma et al. 2016 (IAF, eq. 15): each latent dimension's batch-mean KL is clamped from below
    at λ, so the optimizer gains nothing from pushing a dimension under λ (which is how posterior
    collapse starts). ``free_bits = 0`` gives the plain KL.

    Parameters
    ----------
    kl_per_dim : Tensor, shape (n, k)
    free_bits : float
        λ in nats per dimension.

    Returns
    -------
    Tensor, shape (n,)
        Per-sample values whose mean is ``Σ_j max(mean_i KL_ij, λ)``.
    """
    if free_bits <= 0:
        return kl_per_dim.sum(1)
    per_dim = kl_per_dim.mean(0)  # (k,)
    # Where a dimension is below λ its term is the constant λ (no gradient); elsewhere the
    # per-sample KL, so the batch mean equals the clamped objective exactly.
    below = (per_dim < free_bits).to(kl_per_dim.dtype)
    clamped = kl_per_dim * (1.0 - below) + free_bits * below
    return clamped.sum(1)


def gaussian_log_density(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """log N(z; μ, diag σ²), summed over the last dimension: (..., k) -> (...)."""
    return -0.5 * ((z - mu).pow(2) * torch.exp(-logvar) + logvar + _LOG_2PI).sum(-1)


def iwae_bound(log_weights: torch.Tensor) -> torch.Tensor:
    """Importance-weighted bound log (1/K Σ_k w_k) (Burda et al. 2016, eq. 8).

    Parameters
    ----------
    log_weights : Tensor, shape (K, n)
        log p(x, z_k) - log q(z_k | x) for K samples z_k ~ q(z | x).

    Returns
    -------
    Tensor, shape (n,)
    """
    return torch.logsumexp(log_weights, dim=0) - math.log(log_weights.shape[0])
