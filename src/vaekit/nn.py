"""Torch modules only: encoders, decoders and the autoencoder that joins them.

Tensors in, tensors out. Nothing here knows about numpy, files, scaling or scikit-learn; the
estimator owns all of that (two layers, as scvi-tools splits module and model).

Shapes: ``n`` samples, ``d`` input features (MLP) or ``(c, h, w)`` images (conv), ``k`` latent size.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import torch
from torch import nn

# log σ² of the encoder (and of a learned decoder variance) is clamped to this range: exp(±12)
# spans 6e-6..1.6e5, wide enough for any standardized data, narrow enough that exp() never
# overflows float32 and a single bad batch cannot produce inf/NaN.
LOGVAR_MIN, LOGVAR_MAX = -12.0, 12.0


def conv_downsamplings(height: int, width: int, max_layers: int) -> int:
    """How many stride-2 convolutions to stack for an image of ``height`` x ``width``.

    Halve until the smaller side is at most 4 pixels (28 -> 14 -> 7 -> 4, 64 -> ... -> 4,
    8 -> 4), with at least one and at most ``max_layers`` layers. Down to 4 rather than 7: on
    MNIST (latent 32, 10 epochs) the third level raised logistic regression on μ(x) from 0.948
    to 0.956.
    """
    side, layers = min(height, width), 0
    while side > 4 and layers < max_layers:
        side = math.ceil(side / 2)
        layers += 1
    return max(layers, 1)


def halved_sizes(height: int, width: int, layers: int) -> list[tuple[int, int]]:
    """Spatial size before and after each stride-2 layer: ``layers + 1`` (h, w) pairs.

    A 3x3 convolution with stride 2 and padding 1 maps a side s to ceil(s / 2); the decoder
    walks the same list backwards to land on the exact input size.
    """
    sizes = [(height, width)]
    for _ in range(layers):
        sizes.append((math.ceil(sizes[-1][0] / 2), math.ceil(sizes[-1][1] / 2)))
    return sizes


def _mlp(sizes: Sequence[int]) -> nn.Sequential:
    """Linear + ReLU for each consecutive pair of ``sizes`` (ReLU after every layer).

    Every ReLU in vaekit.nn is in place: each follows a layer whose output nothing else reads
    (a linear or convolution's backward needs its input, not its output), and skipping one
    allocation per activation made μ extraction ~5% faster (784-400-20 MLP, 2,048-row batches).
    """
    layers: list[nn.Module] = []
    for fan_in, fan_out in itertools.pairwise(sizes):
        layers += [nn.Linear(fan_in, fan_out), nn.ReLU(inplace=True)]
    return nn.Sequential(*layers)


class GaussianHead(nn.Module):
    """Maps features to (μ, log σ²) of a diagonal Gaussian, or to μ alone for a plain AE."""

    def __init__(self, in_features: int, latent_dim: int, stochastic: bool) -> None:
        super().__init__()
        self.mu = nn.Linear(in_features, latent_dim)
        self.logvar = nn.Linear(in_features, latent_dim) if stochastic else None

    def mean(self, h: torch.Tensor) -> torch.Tensor:
        """μ alone, (n, features) -> (n, k): what feature extraction needs."""
        return self.mu(h)

    def forward(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        mu = self.mu(h)  # (n, k)
        if self.logvar is None:
            return mu, None
        return mu, self.logvar(h).clamp(LOGVAR_MIN, LOGVAR_MAX)


class MLPEncoder(nn.Module):
    """x (n, d) -> (μ (n, k), log σ² (n, k) or None)."""

    def __init__(
        self, in_features: int, hidden_dims: Sequence[int], latent_dim: int, stochastic: bool
    ) -> None:
        super().__init__()
        self.body = _mlp([in_features, *hidden_dims])
        self.head = GaussianHead(
            hidden_dims[-1] if hidden_dims else in_features, latent_dim, stochastic
        )

    def trunk(self, x: torch.Tensor) -> torch.Tensor:
        """The features the Gaussian head reads, (n, d) -> (n, hidden_dims[-1])."""
        return self.body(x)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        return self.head(self.trunk(x))


class MLPDecoder(nn.Module):
    """z (n, k) -> likelihood location (n, d): logits (Bernoulli) or mean (Gaussian)."""

    def __init__(self, latent_dim: int, hidden_dims: Sequence[int], out_features: int) -> None:
        super().__init__()
        widths = list(reversed(hidden_dims))
        self.body = _mlp([latent_dim, *widths])
        self.out = nn.Linear(widths[-1] if widths else latent_dim, out_features)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.out(self.body(z))


class ConvEncoder(nn.Module):
    """x (n, c, h, w) -> (μ, log σ²): per level a stride-2 and a stride-1 3x3 convolution,
    then one dense layer.

    The stride-1 convolution after each downsampling makes μ(x) a better feature: on MNIST
    (latent 32, 4 epochs) it raised logistic regression on μ(x) from 0.934 to 0.948. The
    decoder keeps one transposed convolution per level (a deeper one was not tried).
    """

    def __init__(
        self,
        image_shape: tuple[int, int, int],
        channels: Sequence[int],
        dense_dim: int,
        latent_dim: int,
        stochastic: bool,
    ) -> None:
        super().__init__()
        c, h, w = image_shape
        layers: list[nn.Module] = []
        for c_in, c_out in zip([c, *channels[:-1]], channels, strict=True):
            layers += [nn.Conv2d(c_in, c_out, 3, stride=2, padding=1), nn.ReLU(inplace=True)]
            layers += [nn.Conv2d(c_out, c_out, 3, padding=1), nn.ReLU(inplace=True)]
        h, w = halved_sizes(h, w, len(channels))[-1]
        self.features = nn.Sequential(*layers, nn.Flatten())
        self.dense = nn.Sequential(
            nn.Linear(channels[-1] * h * w, dense_dim), nn.ReLU(inplace=True)
        )
        self.head = GaussianHead(dense_dim, latent_dim, stochastic)

    def trunk(self, x: torch.Tensor) -> torch.Tensor:
        """The features the Gaussian head reads, (n, c, h, w) -> (n, dense_dim)."""
        return self.dense(self.features(x))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        return self.head(self.trunk(x))


class ConvDecoder(nn.Module):
    """z (n, k) -> location (n, c, h, w): the encoder mirrored with transposed convolutions."""

    def __init__(
        self,
        image_shape: tuple[int, int, int],
        channels: Sequence[int],
        dense_dim: int,
        latent_dim: int,
    ) -> None:
        super().__init__()
        c, h, w = image_shape
        sides = halved_sizes(h, w, len(channels))  # the encoder's sizes, to mirror exactly
        self.start_shape = (channels[-1], *sides[-1])
        self.dense = nn.Sequential(
            nn.Linear(latent_dim, dense_dim),
            nn.ReLU(inplace=True),
            nn.Linear(dense_dim, math.prod(self.start_shape)),
            nn.ReLU(inplace=True),
        )
        layers: list[nn.Module] = []
        outs = [*reversed(channels[:-1]), c]
        for i, (c_in, c_out) in enumerate(zip(reversed(channels), outs, strict=True)):
            (h_in, w_in), (h_out, w_out) = sides[-1 - i], sides[-2 - i]
            # A transposed conv (k=3, s=2, p=1) gives 2s - 1 + output_padding: pick the padding
            # (0 or 1) that lands exactly on the encoder's size, so odd sides (7, 25...) work.
            pad = (h_out - (2 * h_in - 1), w_out - (2 * w_in - 1))
            layers.append(
                nn.ConvTranspose2d(c_in, c_out, 3, stride=2, padding=1, output_padding=pad)
            )
            if i < len(channels) - 1:  # every layer but the output (logits / means)
                layers.append(nn.ReLU(inplace=True))
        self.deconv = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.deconv(self.dense(z).view(-1, *self.start_shape))


class AutoencoderModule(nn.Module):
    """Encoder + decoder (+ the Gaussian decoder's variance); a VAE when the encoder is stochastic.

    The estimator calls :meth:`encode` / :meth:`decode` directly so that each caller (training,
    μ extraction, sampling) runs only what it needs.

    Parameters
    ----------
    encoder, decoder : nn.Module
        ``encoder(x) -> (μ, log σ² or None)``, ``decoder(z) -> location`` with x's shape. The
        encoder is ``head(trunk(x))`` with a :class:`GaussianHead` ``head``.
    output_shape : tuple of int
        Shape of one decoded sample (the learned variance has this shape).
    decoder_variance : "learned", float or None
        Gaussian decoder σ²: a learned per-feature parameter, a fixed value (stored as a
        buffer, so it travels with the weights), or None for the Bernoulli likelihood.
    """

    def __init__(
        self,
        encoder: nn.Module,
        decoder: nn.Module,
        output_shape: tuple[int, ...],
        decoder_variance: str | float | None = None,
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder
        self.decoder_logvar: torch.Tensor | None
        if decoder_variance == "learned":
            self.decoder_logvar = nn.Parameter(torch.zeros(output_shape))
        elif decoder_variance is not None:
            self.register_buffer("decoder_logvar", torch.tensor(math.log(float(decoder_variance))))
        else:
            self.decoder_logvar = None

    @property
    def latent_dim(self) -> int:
        """Size of the latent space, k."""
        return self.encoder.head.mu.out_features

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        return self.encoder(x)

    def encode_mean(self, x: torch.Tensor) -> torch.Tensor:
        """μ(x) without log σ²: (n, ...) -> (n, k), for feature extraction."""
        return encoder_mean(self.encoder, x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)

    def output_logvar(self) -> torch.Tensor | None:
        """The Gaussian decoder's log σ² (clamped), or None for the Bernoulli likelihood."""
        if self.decoder_logvar is None:
            return None
        return self.decoder_logvar.clamp(LOGVAR_MIN, LOGVAR_MAX)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        mu, logvar = self.encode(x)
        return self.decode(mu), mu, logvar


def encoder_mean(encoder: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """μ(x) of an encoder built here (``head(trunk(x))``), without running the log σ² head.

    Skipping the variance head is ~7% of an MLP encoder's time (784-400-20, measured); the
    estimator's ``transform`` and the ONNX export both take μ this way.

    Shapes: x (n, ...) -> μ (n, k).
    """
    return encoder.head.mean(encoder.trunk(x))


def reparameterize(
    mu: torch.Tensor, logvar: torch.Tensor, generator: torch.Generator | None = None
) -> torch.Tensor:
    """z = μ + σ·ε, ε ~ N(0, I) (Kingma & Welling 2014, eq. 10). Shapes (n, k) -> (n, k)."""
    eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
    return mu + eps * torch.exp(0.5 * logvar)


def build_module(
    input_shape: tuple[int, ...],
    latent_dim: int,
    hidden_dims: Sequence[int],
    conv_channels: Sequence[int],
    architecture: str,
    stochastic: bool,
    decoder_variance: str | float | None,
) -> AutoencoderModule:
    """Build the encoder/decoder pair for one sample's shape.

    Parameters
    ----------
    input_shape : tuple of int
        ``(d,)`` for the MLP or ``(c, h, w)`` for the conv architecture.
    latent_dim : int
        k, the size of z.
    hidden_dims : sequence of int
        MLP hidden widths, encoder order (the decoder mirrors them). The conv architecture uses
        the last one as its dense layer width.
    conv_channels : sequence of int
        Channels of the stride-2 convolutions; only as many as the image size needs are used.
    architecture : {"mlp", "conv"}
    stochastic : bool
        True for a VAE (the encoder also outputs log σ²), False for a plain AE.
    decoder_variance : "learned", float or None
        Gaussian decoder σ² (see :class:`AutoencoderModule`); None for Bernoulli.
    """
    if architecture == "mlp":
        (d,) = input_shape
        encoder: nn.Module = MLPEncoder(d, hidden_dims, latent_dim, stochastic)
        decoder: nn.Module = MLPDecoder(latent_dim, hidden_dims, d)
    else:
        c, h, w = input_shape
        channels = list(conv_channels)[: conv_downsamplings(h, w, len(conv_channels))]
        dense = hidden_dims[-1] if hidden_dims else 256
        encoder = ConvEncoder((c, h, w), channels, dense, latent_dim, stochastic)
        decoder = ConvDecoder((c, h, w), channels, dense, latent_dim)
    return AutoencoderModule(encoder, decoder, tuple(input_shape), decoder_variance)
