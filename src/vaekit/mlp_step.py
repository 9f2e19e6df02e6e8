"""The MLP VAE's loss and gradients in one hand-derived pass, without autograd.

For the default tabular model (an MLP VAE with a Bernoulli likelihood) most of a small-batch
training step on a CPU is not arithmetic: autograd records every op of the forward pass,
allocates its saved tensors and gradient buffers, and replays the graph backwards op by op.
This module computes the same per-sample terms as :class:`vaekit.training.Objective` and writes
the same gradients into ``p.grad`` with one matrix multiply per weight and per layer input,
reusing the gradient buffers from step to step. Measured on the 784-400-20 model at batch 128 on
2 CPU cores, see the README's speed section.

Only the configuration whose derivative is written out below takes this path:
:meth:`MLPVAEStep.build` returns None for anything else (conv models, the Gaussian likelihood,
free bits, a plain autoencoder, frozen parameters), and :func:`vaekit.training.train` then uses
autograd. ``tests/test_mlp_step.py`` checks the terms and gradients against autograd's.

Mixed precision (``compute_dtype=torch.bfloat16``): the matrix multiplies of the hidden and
output layers take bfloat16 operands and give bfloat16 results, as under ``torch.autocast``.
The Gaussian heads μ and log σ² multiply in float32 (autocast would use bfloat16 there too),
though from the bfloat16 output of the encoder body, so the KL term is not float32's either
(a few percent apart per row, measured). The weights, Adam's state, the gradient buffers Adam
reads (holding the bfloat16-rounded products) and the loss terms, computed from the logits
taken back to float32, are float32. CPUs with AVX512-BF16 multiply bfloat16 matrices at about
twice the float32 rate; see the README's speed section for what it gives a whole step.

Notation (one batch of n rows; every ReLU layer ``h = relu(a)``, ``a = h_prev Wᵀ + b``)::

    μ, ℓ = heads(h_enc)             ℓ = log σ², clamped to [LOGVAR_MIN, LOGVAR_MAX]
    z = μ + ε·exp(ℓ/2)              ε ~ N(0, I), drawn exactly as ``reparameterize`` draws it
    logits = decoder(z)
    L = mean_i [ BCE(logits_i, x_i) + β Σ_j ½(μ² + e^ℓ - 1 - ℓ)_ij ]

    ∂L/∂logits = (σ(logits) - x) / n
    ∂L/∂μ = ∂L/∂z + β μ / n
    ∂L/∂ℓ = [∂L/∂z · ε·exp(ℓ/2) / 2 + β (e^ℓ - 1) / (2n)] · 1[ℓ not clamped]
    through a linear layer: ∂L/∂W = δᵀ h_prev, ∂L/∂b = Σ_rows δ, ∂L/∂h_prev = δ W
    through a ReLU: δ = ∂L/∂h · 1[h > 0]
"""

from __future__ import annotations

import torch

from .losses import gaussian_kl, reconstruction_nll
from .nn import LOGVAR_MAX, LOGVAR_MIN, AutoencoderModule, MLPDecoder, MLPEncoder


def _linears(body: torch.nn.Sequential) -> list[torch.nn.Linear]:
    return [layer for layer in body if isinstance(layer, torch.nn.Linear)]


class MLPVAEStep:
    """Loss terms and gradients of one batch for an MLP VAE with a Bernoulli likelihood.

    Build it with :meth:`build`; call it once per step instead of the objective plus
    ``backward()``. Calling it overwrites every parameter's ``.grad``.
    """

    def __init__(
        self, module: AutoencoderModule, compute_dtype: torch.dtype = torch.float32
    ) -> None:
        self.compute_dtype = compute_dtype
        encoder, decoder = module.encoder, module.decoder
        self.encoder_layers = _linears(encoder.body)
        self.mu_head, self.logvar_head = encoder.head.mu, encoder.head.logvar
        self.decoder_layers = [*_linears(decoder.body), decoder.out]  # the output layer last
        linears = [*self.encoder_layers, self.mu_head, self.logvar_head, *self.decoder_layers]
        self.parameters = [p for layer in linears for p in (layer.weight, layer.bias)]

    @classmethod
    def build(
        cls,
        module: AutoencoderModule,
        likelihood: str,
        stochastic: bool,
        free_bits: float,
        compute_dtype: torch.dtype = torch.float32,
    ) -> MLPVAEStep | None:
        """The step for ``module`` under this objective, or None where it does not apply.

        ``compute_dtype`` is the dtype of the hidden and output layers' matrix-multiply
        operands: float32, or bfloat16 for mixed precision (see the module docstring).
        """
        applies = (
            type(module.encoder) is MLPEncoder
            and type(module.decoder) is MLPDecoder
            and likelihood == "bernoulli"
            and stochastic
            and free_bits <= 0
            and module.encoder.head.logvar is not None
        )
        if not applies:
            return None
        step = cls(module, compute_dtype)
        # Every parameter must be one this step writes a gradient for, and be trained.
        ours = {id(p) for p in step.parameters}
        everything = list(module.parameters())
        if len(everything) != len(ours) or any(
            id(p) not in ours or not p.requires_grad for p in everything
        ):
            return None
        return step

    @torch.no_grad()
    def __call__(
        self, x: torch.Tensor, beta: float
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Forward and backward for one batch; gradients land in each parameter's ``.grad``.

        Parameters
        ----------
        x : Tensor, shape (n, d)
        beta : float
            The KL weight of this step.

        Returns
        -------
        objective : Tensor, shape ()
            Mean over the batch of reconstruction + β·KL, the value that was differentiated.
        recon : Tensor, shape (n,)
            -log p(x | z) per sample.
        kl_per_dim : Tensor, shape (n, k)
            KL(q(z|x) || p(z)) per sample and latent dimension.
        """
        for p in self.parameters:
            if p.grad is None:
                p.grad = torch.empty_like(p)
        n = x.shape[0]
        # Each layer's weight and bias as its matrix multiply reads them: the body layers' in
        # the compute dtype, cast once per step (for float32 the parameters themselves, `to`
        # does not copy then), the heads' in float32.
        cast = {
            layer: (layer.weight.to(self.compute_dtype), layer.bias.to(self.compute_dtype))
            for layer in (*self.encoder_layers, *self.decoder_layers)
        }
        for head in (self.mu_head, self.logvar_head):
            cast[head] = (head.weight, head.bias)
        # Forward, keeping each layer's input for the weight gradients.
        encoder_inputs = [x.to(self.compute_dtype)]
        for layer in self.encoder_layers:
            encoder_inputs.append(_affine(cast[layer], encoder_inputs[-1]).relu_())
        h_cast = encoder_inputs.pop()  # the encoder body's output, in the compute dtype
        h = h_cast.float() if self.encoder_layers else x  # what the float32 heads read
        mu = _affine(cast[self.mu_head], h)
        logvar_raw = _affine(cast[self.logvar_head], h)
        logvar = logvar_raw.clamp(LOGVAR_MIN, LOGVAR_MAX)
        eps = torch.randn(mu.shape, device=mu.device, dtype=mu.dtype)  # as reparameterize draws
        std = torch.exp(0.5 * logvar)
        z = torch.addcmul(mu, eps, std)
        decoder_inputs = [z.to(self.compute_dtype)]
        for layer in self.decoder_layers[:-1]:
            decoder_inputs.append(_affine(cast[layer], decoder_inputs[-1]).relu_())
        logits = _affine(cast[self.decoder_layers[-1]], decoder_inputs[-1]).float()
        recon = reconstruction_nll("bernoulli", x, logits)
        kl_per_dim = gaussian_kl(mu, logvar)
        objective = (recon + beta * kl_per_dim.sum(1)).mean()

        # Backward. `delta` is ∂L/∂(pre-activation) of the layer being visited.
        delta = torch.sigmoid(logits).sub_(x).div_(n).to(self.compute_dtype)
        delta = _backward_through(self.decoder_layers, cast, delta, decoder_inputs)
        grad_z = (delta @ cast[self.decoder_layers[0]][0]).float()
        kl_weight = beta / n
        grad_mu = grad_z.add(mu, alpha=kl_weight)
        grad_logvar = (grad_z * eps).mul_(std).add_(torch.expm1(logvar), alpha=kl_weight).mul_(0.5)
        grad_logvar.mul_((logvar_raw >= LOGVAR_MIN) & (logvar_raw <= LOGVAR_MAX))
        _weight_grads(self.mu_head, grad_mu, h)
        _weight_grads(self.logvar_head, grad_logvar, h)
        if self.encoder_layers:  # ∂L/∂h of the heads' input, then down the encoder body
            grad_h = torch.addmm(
                grad_mu @ self.mu_head.weight, grad_logvar, self.logvar_head.weight
            ).to(self.compute_dtype)
            delta = _relu_backward(grad_h, h_cast)
            _backward_through(self.encoder_layers, cast, delta, encoder_inputs)
        return objective, recon, kl_per_dim


def _affine(weight_bias: tuple[torch.Tensor, torch.Tensor], h: torch.Tensor) -> torch.Tensor:
    """``h Wᵀ + b`` in one fused multiply-add, (n, in) -> (n, out)."""
    weight, bias = weight_bias
    return torch.addmm(bias, h, weight.t())


def _relu_backward(grad: torch.Tensor, relu_output: torch.Tensor) -> torch.Tensor:
    """∂L/∂a from ∂L/∂h for h = relu(a): grad where h > 0, else 0.

    The ATen kernel autograd itself uses for ReLU: one pass, where ``grad.mul_(h > 0)`` first
    builds a boolean mask and converts it (measured 12.6 vs 81-111 µs on 128 x 400, 2 threads).
    """
    return torch.ops.aten.threshold_backward(grad, relu_output, 0)


def _weight_grads(layer: torch.nn.Linear, delta: torch.Tensor, h_in: torch.Tensor) -> None:
    """Write ∂L/∂W = δᵀ h_in and ∂L/∂b = Σ_rows δ into the layer's existing ``.grad`` buffers.

    The buffers are float32 whatever the operands' dtype. With bfloat16 operands both come out
    rounded to bfloat16 (the sums accumulate in float32 inside the kernels): a float32 matrix
    multiply output cannot be asked of bfloat16 operands on a CPU, and the bias sum is then
    rounded alike, which is 3x faster than summing a bfloat16 tensor into float32.
    """
    weight_grad, bias_grad = layer.weight.grad, layer.bias.grad
    if delta.dtype == weight_grad.dtype:
        torch.mm(delta.t(), h_in, out=weight_grad)
        torch.sum(delta, 0, out=bias_grad)
    else:
        weight_grad.copy_(delta.t() @ h_in)
        bias_grad.copy_(delta.sum(0))


def _backward_through(
    layers: list[torch.nn.Linear],
    cast: dict[torch.nn.Linear, tuple[torch.Tensor, torch.Tensor]],
    delta: torch.Tensor,
    inputs: list[torch.Tensor],
) -> torch.Tensor:
    """Back-propagate δ of ``layers[-1]`` down a stack whose lower layers end in a ReLU.

    ``inputs[i]`` is the input of ``layers[i]`` (for i > 0 the ReLU output of the layer below),
    ``cast[layer]`` its weight and bias in the compute dtype. Writes every layer's weight
    gradients and returns δ of ``layers[0]``; its input gradient is the caller's to take (the
    decoder needs ∂L/∂z, the encoder's input is the data).
    """
    for i in range(len(layers) - 1, 0, -1):
        _weight_grads(layers[i], delta, inputs[i])
        delta = _relu_backward(delta @ cast[layers[i]][0], inputs[i])
    _weight_grads(layers[0], delta, inputs[0])
    return delta
