"""Mixed precision (``precision="bfloat16"``): bfloat16 matrix multiplies, float32 everything else.

bfloat16 keeps 8 bits of mantissa, so nothing here is bit-equal to float32: the checks are that
the arithmetic really changed (not silently float32) and that training still gets where float32
training gets.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from typer.testing import CliRunner

import vaekit.estimator
from vaekit import VAE, Autoencoder, load
from vaekit.cli import app
from vaekit.errors import ConfigError
from vaekit.mlp_step import MLPVAEStep
from vaekit.nn import build_module
from vaekit.training import Objective

from _helpers import forget_checkpoint_param


@pytest.fixture(scope="module")
def digits() -> np.ndarray:
    return load_digits().data.astype(np.float32) / 16.0


def _mlp(seed: int = 0):
    torch.manual_seed(seed)
    return build_module((64,), 4, (48,), (8,), "mlp", stochastic=True, decoder_variance=None)


def _cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(torch.nn.functional.cosine_similarity(a.flatten(), b.flatten(), dim=0))


def test_bfloat16_mlp_step_gives_float32_autograds_terms_and_gradients_to_bfloat16_rounding():
    module = _mlp()
    x = torch.rand(128, 64)
    for p in module.parameters():
        p.grad = None
    torch.manual_seed(3)
    expected = Objective("bernoulli", stochastic=True)(module, x, 1.0)
    expected.objective.backward()
    expected_grads = [p.grad.clone() for p in module.parameters()]

    results = {}
    for dtype in (torch.float32, torch.bfloat16):
        step = MLPVAEStep.build(module, "bernoulli", True, 0.0, compute_dtype=dtype)
        torch.manual_seed(3)  # the same ε
        terms = step(x, 1.0)
        grads = [p.grad.clone() for p in module.parameters()]
        results[dtype] = terms, grads
    objective, recon, kl_per_dim = results[torch.bfloat16][0]
    grads = results[torch.bfloat16][1]

    # Really bfloat16: the terms are not float32's to the last bit.
    assert not torch.equal(recon, results[torch.float32][0][1])
    assert objective.dtype == recon.dtype == kl_per_dim.dtype == torch.float32
    torch.testing.assert_close(objective, expected.objective.detach(), rtol=5e-3, atol=0)
    torch.testing.assert_close(recon, expected.recon.detach(), rtol=2e-2, atol=0.05)
    torch.testing.assert_close(kl_per_dim, expected.kl_per_dim.detach(), rtol=2e-2, atol=2e-3)
    for (name, p), grad, want in zip(module.named_parameters(), grads, expected_grads, strict=True):
        assert p.grad.dtype == torch.float32, name  # what Adam reads stays float32
        assert _cosine(grad, want) > 0.995, name
        assert float(grad.norm() / want.norm()) == pytest.approx(1.0, abs=0.02), name


@pytest.mark.parametrize(
    ("estimator", "architecture"),
    [(VAE, "mlp"), (VAE, "conv"), (Autoencoder, "mlp")],  # the MLP VAE takes the hand-derived step
)
def test_bfloat16_training_gets_where_float32_training_gets(digits, estimator, architecture):
    X = digits.reshape(-1, 8, 8) if architecture == "conv" else digits
    params = dict(latent_dim=4, hidden_dims=(64,), conv_channels=(16,), epochs=8)
    params.update(architecture=architecture, batch_size=64, random_state=0)
    float32 = estimator(**params).fit(X)
    bfloat16 = estimator(precision="bfloat16", **params).fit(X)

    losses = {m.precision: [h["val_loss"] for h in m.history_] for m in (float32, bfloat16)}
    assert losses["bfloat16"] != losses["float32"]  # the arithmetic did change
    assert losses["bfloat16"][-1] == pytest.approx(losses["float32"][-1], rel=0.03)
    assert losses["bfloat16"][-1] < 0.9 * losses["bfloat16"][0]  # and it trained
    assert all(p.dtype == torch.float32 for p in bfloat16.module_.parameters())
    Z = bfloat16.transform(X)  # μ(x) in float32, deterministic
    assert Z.dtype == np.float32
    np.testing.assert_array_equal(Z, bfloat16.transform(X))


def test_precision_is_checked_and_kept_by_save_and_load(digits, tmp_path):
    with pytest.raises(ConfigError, match="precision must be one of float32, bfloat16"):
        VAE(precision="float16", epochs=1).fit(digits[:50])
    model = VAE(latent_dim=2, hidden_dims=(16,), epochs=1, precision="bfloat16").fit(digits)
    model.save(tmp_path / "run")
    loaded = load(tmp_path / "run")
    assert loaded.precision == "bfloat16"
    np.testing.assert_array_equal(loaded.transform(digits), model.transform(digits))


def test_fit_warns_where_bfloat16_would_be_emulated(digits, monkeypatch):
    monkeypatch.setattr(
        vaekit.estimator, "emulated_bfloat16", lambda device: "this CPU has no bfloat16 units"
    )
    params = dict(latent_dim=2, hidden_dims=(16,), epochs=1, random_state=0)
    with pytest.warns(UserWarning, match="emulates bfloat16 arithmetic; pass precision='float32'"):
        VAE(precision="bfloat16", **params).fit(digits)
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message="precision=")
        VAE(**params).fit(digits)  # float32 does not care


def test_cli_train_precision_reaches_the_model(tmp_path):
    run = tmp_path / "run"
    args = ["train", "digits:train", "--out", str(run), "--epochs", "1", "--latent-dim", "2"]
    result = CliRunner().invoke(app, [*args, "--hidden-dims", "16", "--quiet"])
    assert result.exit_code == 0, result.output
    assert load(run).precision == "float32"
    result = CliRunner().invoke(
        app, [*args, "--hidden-dims", "16", "--quiet", "--overwrite", "--precision", "bfloat16"]
    )
    assert result.exit_code == 0, result.output
    assert load(run).precision == "bfloat16"
    result = CliRunner().invoke(
        app, [*args, "--hidden-dims", "16", "--quiet", "--overwrite", "--precision", "half"]
    )
    assert result.exit_code != 0
    assert "precision must be one of float32, bfloat16; got 'half'" in result.output


def test_resume_keeps_the_precision_and_accepts_checkpoints_from_before_it(digits, tmp_path):
    from vaekit.checkpoint import CHECKPOINT_FILE

    checkpoint = tmp_path / CHECKPOINT_FILE
    params = dict(latent_dim=2, hidden_dims=(16,), random_state=0)
    VAE(epochs=1, **params).fit(digits, checkpoint_path=checkpoint)
    with pytest.raises(ConfigError, match="precision='float32' \\(now 'bfloat16'\\)"):
        VAE(epochs=2, precision="bfloat16", **params).fit(
            digits, checkpoint_path=checkpoint, resume=True
        )
    # A checkpoint written before precision existed (float32, the only arithmetic then).
    forget_checkpoint_param(checkpoint, "precision")
    # Such a checkpoint is float32's: resuming it in bfloat16 is refused like any other
    # change of precision, in float32 it goes on.
    with pytest.raises(ConfigError, match="precision='float32' \\(now 'bfloat16'\\)"):
        VAE(epochs=2, precision="bfloat16", **params).fit(
            digits, checkpoint_path=checkpoint, resume=True
        )
    resumed = VAE(epochs=2, **params).fit(digits, checkpoint_path=checkpoint, resume=True)
    assert len(resumed.history_) == 2


@pytest.mark.parametrize(
    ("avx512_bf16", "amx", "emulated"),
    [(True, False, False), (False, True, False), (False, False, True)],
)
def test_bfloat16_counts_as_native_only_with_its_instructions(
    monkeypatch, avx512_bf16, amx, emulated
):
    """Not "any AVX-512 CPU", which oneDNN's own check accepts: there bfloat16 is emulated."""
    from vaekit.params import emulated_bfloat16

    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: avx512_bf16)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx)
    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: True, raising=False)
    reason = emulated_bfloat16(torch.device("cpu"))
    assert (reason is not None) == emulated
    if emulated:
        assert "no bfloat16 instructions (AVX512-BF16 or AMX)" in reason
