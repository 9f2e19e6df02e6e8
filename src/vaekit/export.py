"""Export the μ-encoder of a fitted model for serving (ONNX).

The exported graph is exactly :meth:`VAE.transform` / :meth:`Autoencoder.transform` without
Python: it takes the raw samples a user gives ``transform`` (float32, shape ``(n, *input_shape_)``:
``(n, d)`` tables, ``(n, h, w)`` or ``(n, c, h, w)`` images), applies the stored standardization
when the model uses the Gaussian likelihood, reshapes to what the network expects and returns
μ(x), shape ``(n, latent_dim)``. The batch dimension ``n`` is dynamic.
"""

from __future__ import annotations

import copy
import io
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.utils.validation import check_is_fitted
from torch import nn

from . import __version__
from .errors import ConfigError
from .nn import encoder_mean
from .persistence import atomic_write_bytes, check_output_file

EXPORT_FORMATS = ("onnx",)
# Opset 17 is read by every onnxruntime since 1.13 and by most other runtimes; the encoder only
# needs Gemm, Conv, Relu, Sub, Div, Flatten and Unsqueeze, all stable long before it. 20 is the
# newest opset torch's TorchScript exporter writes.
DEFAULT_OPSET, MIN_OPSET, MAX_OPSET = 17, 11, 20
INPUT_NAME, OUTPUT_NAME, BATCH_AXIS = "x", "mu", "batch"
_ONNX_MISSING = "ONNX export needs the 'onnx' package: pip install 'vaekit[onnx]'"
_CHECK_ROWS = 8  # rows of the post-export check against onnxruntime
# What that check allows between the graph's μ and transform's: float32 rounding through a few
# layers is ~1e-6; a graph that standardized differently would be off by far more.
_CHECK_TOLERANCE = 1e-4


class _MuEncoder(nn.Module):
    """Raw samples (n, *input_shape) -> μ (n, k): scaling, reshape and encoder in one graph."""

    def __init__(
        self,
        encoder: nn.Module,
        input_shape: tuple[int, ...],
        module_shape: tuple[int, ...],
        mean: np.ndarray | None,
        scale: np.ndarray | None,
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.input_shape = tuple(input_shape)
        self.module_shape = tuple(module_shape)
        self.standardize = mean is not None
        self.input_dtype = input_dtype(input_shape, standardized=self.standardize)
        if mean is not None and scale is not None:
            # The (x - mean) / scale of the estimator's _to_model_input, in its precision, so
            # the graph matches transform to rounding (folding it into the first layer's
            # weights would not): float64 for a table, where a column such as timestamps
            # (1.7e9 ± 10) has no variation left in float32.
            self.register_buffer("mean", torch.from_numpy(np.array(mean, self.input_dtype)))
            self.register_buffer("scale", torch.from_numpy(np.array(scale, self.input_dtype)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.standardize:
            x = (x - self.mean) / self.scale  # (n, *input_shape), broadcast per feature
        x = x.float()  # the network's precision
        # Batch-independent reshapes only, so the batch axis stays symbolic in the graph.
        if len(self.module_shape) == 1 and len(self.input_shape) > 1:
            x = torch.flatten(x, 1)  # MLP on images: (n, h, w) or (n, c, h, w) -> (n, d)
        elif len(self.module_shape) == 3 and len(self.input_shape) == 2:
            x = x.unsqueeze(1)  # conv on greyscale: (n, h, w) -> (n, 1, h, w)
        return encoder_mean(self.encoder, x)  # (n, k)


def input_dtype(input_shape: tuple[int, ...], *, standardized: bool) -> type[np.floating]:
    """The graph input's dtype: float64 for a standardized table, float32 otherwise.

    Images and [0, 1] data lose nothing in float32 (``transform`` reads them so); a Gaussian
    table is standardized in float64, as ``transform`` does for float64 tables.
    """
    return np.float64 if standardized and len(input_shape) == 1 else np.float32


def _mu_encoder(model: Any) -> _MuEncoder:
    """A CPU copy of the fitted model's encoder, wrapped with its input preprocessing."""
    gaussian = model.likelihood_ == "gaussian"
    wrapper = _MuEncoder(
        copy.deepcopy(model.module_.encoder).cpu(),  # the fitted model is left where it is
        model.input_shape_,
        model._module_input_shape(),
        model.mean_ if gaussian else None,
        model.scale_ if gaussian else None,
    )
    return wrapper.eval()


def _check_opset(opset: int | None) -> int:
    if opset is None:
        return DEFAULT_OPSET
    if isinstance(opset, bool) or not isinstance(opset, int) or not MIN_OPSET <= opset <= MAX_OPSET:
        raise ConfigError(
            f"opset must be an integer from {MIN_OPSET} to {MAX_OPSET}, got {opset!r}."
        )
    return opset


def _onnxruntime_check(model: Any, onnx_bytes: bytes) -> float | None:
    """Max |ONNX - transform| on a few seeded probe rows; None without onnxruntime."""
    try:
        import onnxruntime as ort
    except ImportError:
        return None
    rng = np.random.default_rng(0)
    shape = (_CHECK_ROWS, *model.input_shape_)
    dtype = input_dtype(model.input_shape_, standardized=model.likelihood_ == "gaussian")
    if model.likelihood_ == "gaussian":  # rows at the data's own offset and spread
        probe = (model.mean_ + model.scale_ * rng.standard_normal(shape)).astype(dtype)
    else:
        probe = rng.random(shape).astype(dtype)  # Bernoulli data lives in [0, 1]
    session = ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
    (got,) = session.run([OUTPUT_NAME], {INPUT_NAME: probe})
    return float(np.max(np.abs(got - model._mu(probe))))


def export_onnx(model: Any, path: str | os.PathLike, *, opset: int | None = None) -> dict[str, Any]:
    """Write the μ-encoder of a fitted model as an ONNX graph with a dynamic batch axis.

    The graph reproduces ``model.transform``: same raw input (the model's standardization of
    Gaussian data is part of the graph), same output.

    Parameters
    ----------
    model : VAE or Autoencoder
        A fitted estimator, MLP or conv, on any device.
    path : str or PathLike
        Output file (for example ``encoder.onnx``); its folder must exist. Written to a
        temporary file beside it and renamed into place, so a failed export leaves nothing.
    opset : int, optional
        ONNX opset version, from 11 to 20; default 17.

    Returns
    -------
    dict
        ``path``, ``format``, ``opset``, ``class``, ``architecture``, ``standardized``,
        ``input`` / ``output`` (name, dtype and shape, ``"batch"`` for the dynamic axis),
        ``bytes``, and ``max_abs_diff`` against ``model.transform`` on 8 seeded probe rows
        (None when onnxruntime is not installed).

    Notes
    -----
    Graph input ``x`` of shape ``(batch, *model.input_shape_)``, i.e. ``(n, d)``, ``(n, h, w)``
    or ``(n, c, h, w)``: float64 for a table with the Gaussian likelihood (standardized in
    float64, as ``transform`` does, so that a large-offset column keeps its variation), float32
    otherwise; ``input.dtype`` in the result says which. Graph output ``mu``: float32 of shape
    ``(batch, latent_dim)`` (for an Autoencoder, its code). Unlike ``transform``, the graph does
    not convert dtypes or check for NaN: feed it the input dtype.

    The export is checked with onnxruntime (when installed) on probe rows at the data's offset
    and spread, and refused when the graph's μ differs from ``transform``'s by more than 1e-4
    (for a model on the CPU; on a GPU, whose kernels round differently, it is only reported).

    Examples
    --------
    >>> import onnxruntime as ort                                      # doctest: +SKIP
    >>> info = export_onnx(vae, "encoder.onnx")                        # doctest: +SKIP
    >>> session = ort.InferenceSession("encoder.onnx")                 # doctest: +SKIP
    >>> x = X.astype(info["input"]["dtype"])                           # doctest: +SKIP
    >>> (mu,) = session.run(["mu"], {"x": x})                          # doctest: +SKIP
    """
    check_is_fitted(model, "module_")
    opset = _check_opset(opset)
    path = Path(path).expanduser()
    check_output_file(path, "encoder.onnx")
    try:
        import onnx
    except ImportError:
        raise ConfigError(_ONNX_MISSING) from None

    wrapper = _mu_encoder(model)
    dtype_name = np.dtype(wrapper.input_dtype).name  # "float32" or "float64"
    # Any batch size: the axis is made dynamic.
    example = torch.zeros(2, *model.input_shape_, dtype=getattr(torch, dtype_name))
    buffer = io.BytesIO()
    # The TorchScript exporter (dynamo=False), not torch 2.13's default torch.export-based one:
    # that one needs the onnxscript package on top of onnx and re-traces through torch.export,
    # while this encoder is a fixed feed-forward graph that the tracer captures exactly, offline,
    # in milliseconds, with nothing but torch. Its deprecation warnings are silenced here only;
    # when a future torch drops it, switch to dynamo=True and add onnxscript to the extra.
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            wrapper,
            (example,),
            buffer,
            dynamo=False,
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_axes={INPUT_NAME: {0: BATCH_AXIS}, OUTPUT_NAME: {0: BATCH_AXIS}},
            opset_version=opset,
            do_constant_folding=True,
        )
    proto = onnx.load_from_string(buffer.getvalue())
    proto.producer_name, proto.producer_version = "vaekit", __version__
    proto.doc_string = (
        f"mu(x) of a fitted vaekit {type(model).__name__}: input '{INPUT_NAME}' {dtype_name} "
        f"(batch, {', '.join(map(str, model.input_shape_))}) as given to transform, output "
        f"'{OUTPUT_NAME}' float32 (batch, {model.module_.latent_dim})."
    )
    meta = {
        "vaekit_class": type(model).__name__,
        "architecture": model.architecture_,
        "likelihood": model.likelihood_,
        "input_shape": ",".join(map(str, model.input_shape_)),
        "latent_dim": str(model.module_.latent_dim),
    }
    onnx.helper.set_model_props(proto, meta)
    onnx.checker.check_model(proto)
    data = proto.SerializeToString()
    max_abs_diff = _onnxruntime_check(model, data)
    # On a GPU, transform's own kernels (TF32 convolutions, say) may differ from a CPU's by
    # more than the tolerance: the check then only reports.
    on_cpu = model.device_.type == "cpu"
    if on_cpu and max_abs_diff is not None and not max_abs_diff <= _CHECK_TOLERANCE:
        raise ConfigError(
            f"The exported graph's μ differs from transform's by up to {max_abs_diff:.3g} on "
            f"probe rows (tolerance {_CHECK_TOLERANCE:g}), so nothing was written; please "
            "report this model's parameters as a vaekit bug."
        )
    try:
        atomic_write_bytes(path, data)
    except OSError as exc:
        raise ConfigError(f"Cannot write {path}: {exc.strerror}.") from None
    return {
        "path": str(path),
        "format": "onnx",
        "opset": opset,
        "class": type(model).__name__,
        "architecture": model.architecture_,
        "standardized": wrapper.standardize,
        "input": {
            "name": INPUT_NAME,
            "dtype": dtype_name,
            "shape": [BATCH_AXIS, *model.input_shape_],
        },
        "output": {
            "name": OUTPUT_NAME,
            "dtype": "float32",
            "shape": [BATCH_AXIS, model.module_.latent_dim],
        },
        "bytes": len(data),
        "max_abs_diff": max_abs_diff,
    }


def export_run(
    run: str | os.PathLike,
    out: str | os.PathLike | None = None,
    *,
    format: str = "onnx",
    opset: int | None = None,
) -> dict[str, Any]:
    """Export the μ-encoder of the model saved in ``run`` to the file ``out``.

    Parameters
    ----------
    run : str or PathLike
        A model directory written by ``vaekit train`` / :meth:`VAE.save`.
    out : str or PathLike, optional
        Output file; its folder must exist and be writable. Default ``encoder.onnx`` in
        ``run``.
    format : {"onnx"}
        Export format.
    opset : int, optional
        ONNX opset (see :func:`export_onnx`).

    Returns
    -------
    dict
        What :func:`export_onnx` returns, plus ``run``.
    """
    from .jobs import default_output
    from .persistence import load_model

    if str(format).lower() not in EXPORT_FORMATS:
        raise ConfigError(f"format must be one of {', '.join(EXPORT_FORMATS)}; got {format!r}.")
    _check_opset(opset)
    if out is None:  # inside RUN: whether RUN is a model directory is the first question
        model = load_model(run, device="cpu")
        out = default_output(run, "export")
        check_output_file(out, "encoder.onnx")
    else:
        out = Path(out).expanduser()
        check_output_file(out, "encoder.onnx")  # before loading anything
        model = load_model(run, device="cpu")
    return {"run": str(run), **export_onnx(model, out, opset=opset)}


__all__ = ["DEFAULT_OPSET", "EXPORT_FORMATS", "export_onnx", "export_run"]
