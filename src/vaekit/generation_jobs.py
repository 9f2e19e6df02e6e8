"""What ``vaekit generate``, ``interpolate`` and ``traverse`` do, as functions returning dicts.

Each loads a saved run, checks everything a user can get wrong (output suffix, a PNG of tabular
samples, row indices, latent dimensions) before any file is written, computes its array with
:mod:`vaekit.generation` or :meth:`VAE.sample <vaekit.VAE.sample>`, and writes it atomically
(temporary file + rename) to ``out``: ``.png`` draws an image grid, ``.npy`` saves the array of
decoder means in data space, shaped as ``inverse_transform`` returns them.
"""

from __future__ import annotations

import io
import math
import numbers
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .datasets import Dataset
from .errors import ConfigError, DataError
from .generation import INTERPOLATION_METHODS, interpolate, traversal_values, traverse
from .jobs import (
    default_output,
    drawn_shape,
    load_run_data,
    model_rows,
    refuse_overwriting_data,
    writable_dir,
)
from .params import check_seed
from .persistence import atomic_write_bytes, load_model, remove_new_folders
from .plots import figure_to_png, image_grid
from .vae import VAE

__all__ = [
    "OUTPUT_FORMATS",
    "generate_run",
    "interpolate_run",
    "parse_dims",
    "save_array",
    "save_image_grid",
    "traverse_run",
]

OUTPUT_FORMATS = (".png", ".npy")


# --------------------------------------------------------------------------------------------
# Writers
# --------------------------------------------------------------------------------------------


def save_image_grid(
    images: Any,
    path: str | os.PathLike,
    *,
    image_shape: Sequence[int] | None = None,
    nrows: int | None = None,
    title: str | None = None,
    row_labels: Sequence[str] | None = None,
    col_labels: Sequence[str] | None = None,
    dpi: int = 100,
) -> Path:
    """Write images as one PNG grid (:func:`vaekit.plots.image_grid`), atomically.

    Parameters
    ----------
    images : array-like of shape (n, h, w), (n, c, h, w), or (n, d) with ``image_shape``
    path : str or PathLike
        The PNG file; written through a temporary file in the same folder and a rename.
    image_shape, nrows, title, row_labels, col_labels
        As for :func:`~vaekit.plots.image_grid`.
    dpi : int, default=100

    Returns
    -------
    Path
    """
    figure = image_grid(
        images,
        nrows=nrows,
        title=title,
        image_shape=image_shape,
        row_labels=row_labels,
        col_labels=col_labels,
    )
    path = Path(path)
    atomic_write_bytes(path, figure_to_png(figure, dpi=dpi))
    return path


def save_array(array: Any, path: str | os.PathLike) -> Path:
    """Write ``array`` to a ``.npy`` file (no pickle), atomically.

    Parameters
    ----------
    array : array-like of any shape
    path : str or PathLike

    Returns
    -------
    Path
    """
    buffer = io.BytesIO()
    np.save(buffer, np.asarray(array), allow_pickle=False)
    path = Path(path)
    atomic_write_bytes(path, buffer.getvalue())
    return path


# --------------------------------------------------------------------------------------------
# Checks shared by the jobs
# --------------------------------------------------------------------------------------------


def _output(out: str | os.PathLike) -> tuple[Path, str]:
    out = Path(out).expanduser()
    suffix = out.suffix.lower()
    if suffix not in OUTPUT_FORMATS:
        raise ConfigError(
            f"--out must end in .png (an image grid) or .npy (the array); got {out.name!r}."
        )
    return out, suffix


def _resolve_output(
    out: str | os.PathLike | None,
    run: str | os.PathLike,
    command: str,
    image_shape: tuple[int, ...] | None,
    model: Any,
) -> tuple[Path, str]:
    """``--out`` and its suffix, checked against what the model's samples are.

    Without ``--out``, ``command``'s file in the run directory (``jobs.RUN_OUTPUTS``): ``.png``
    when the samples can be drawn, ``.npy`` otherwise.
    """
    if out is None:
        out = default_output(run, command).with_suffix(".png" if _drawable(image_shape) else ".npy")
    out, suffix = _output(out)
    _check_drawable(suffix, image_shape, model, out)
    return out, suffix


def _drawable(image_shape: tuple[int, ...] | None) -> bool:
    """Whether samples of this shape can be drawn as a PNG grid (1, 3 or 4 channels)."""
    return image_shape is not None and (len(image_shape) == 2 or image_shape[0] in (1, 3, 4))


def _check_drawable(
    suffix: str, image_shape: tuple[int, ...] | None, model: Any, out: Path
) -> None:
    """Refuse a .png ``out`` for samples that cannot be drawn, saying why."""
    if suffix != ".png" or _drawable(image_shape):
        return
    if image_shape is None:
        raise ConfigError(
            f"This model's samples are not images (each is a vector of {model.n_features_in_} "
            f"features), so they cannot be drawn as a PNG grid; use --out "
            f"{out.with_suffix('.npy')} to save the array."
        )
    raise ConfigError(
        f"This model's samples are images with {image_shape[0]} channels, which a PNG grid "
        f"cannot show (it draws 1, 3 or 4); use --out {out.with_suffix('.npy')} to "
        "save the array."
    )


def _check_steps(steps: Any) -> int:
    if not isinstance(steps, numbers.Integral) or isinstance(steps, bool) or steps < 2:
        raise ConfigError(f"--steps must be an integer >= 2, got {steps!r}.")
    return int(steps)


def _check_index(index: Any, flag: str, dataset: Dataset) -> int:
    n = dataset.X.shape[0]
    if not isinstance(index, numbers.Integral) or isinstance(index, bool) or not 0 <= index < n:
        rows = f"rows, numbered 0 to {n - 1}" if n else "rows"
        raise DataError(f"{flag} {index!r} is out of range: {dataset.name} has {n} {rows}.")
    return int(index)


def _label(dataset: Dataset, i: int) -> Any:
    """The row's label (class name when known), or None for unlabelled data."""
    if dataset.y is None:
        return None
    value = dataset.y[i].item()
    if dataset.classes and isinstance(value, int) and 0 <= value < len(dataset.classes):
        return dataset.classes[value]
    return value


def _write(out: Path, suffix: str, array: np.ndarray, grid: dict[str, Any]) -> None:
    """Save ``array`` (.npy) or ``grid['images']`` as a PNG grid, after checking the folder;
    a failure takes back the folders this call created."""
    created = writable_dir(out.parent, "output folder")
    try:
        if suffix == ".npy":
            save_array(array, out)
        else:
            save_image_grid(grid.pop("images"), out, **grid)
    except BaseException:
        remove_new_folders(created)
        raise


def parse_dims(text: str | int | Sequence[int] | None) -> list[int] | None:
    """``"0,1,2"`` -> ``[0, 1, 2]``; None or ``"all"`` -> None (every dimension).

    An empty list, or one that names a dimension twice (the same row twice in the figure),
    is a ConfigError, as ``vaekit sweep`` refuses ``--betas 1,1``.
    """
    if text is None:
        return None
    if not isinstance(text, str):
        items = [text] if isinstance(text, numbers.Integral) else list(text)
        if not all(isinstance(d, numbers.Integral) and not isinstance(d, bool) for d in items):
            raise ConfigError(f"dims must be latent dimensions (integers); got {text!r}.")
        dims = [int(d) for d in items]
    elif text.strip().lower() == "all":
        return None
    elif not text.strip():
        dims = []
    else:
        try:
            dims = [int(part) for part in text.split(",")]
        except ValueError:
            raise ConfigError(
                f"--dims must be comma-separated latent dimensions such as 0,1,2 (or all); "
                f"got {text!r}."
            ) from None
    if not dims:
        raise ConfigError("--dims is empty; give latent dimensions such as 0,1,2, or all.")
    twice = sorted({d for d in dims if dims.count(d) > 1})
    if twice:
        raise ConfigError(f"--dims lists {', '.join(map(str, twice))} twice; list each once.")
    return dims


# --------------------------------------------------------------------------------------------
# Jobs
# --------------------------------------------------------------------------------------------


def generate_run(
    run: str | os.PathLike, n: int, out: str | os.PathLike | None = None, seed: int | None = 0
) -> dict[str, Any]:
    """Decode ``n`` draws z ~ N(0, I) of the VAE in ``run`` and write them to ``out``.

    Parameters
    ----------
    run : str or PathLike
        A model directory written by ``vaekit train`` / :meth:`VAE.save`; must hold a VAE.
    n : int
        Number of samples.
    out : str or PathLike, optional
        ``.png`` (an about-square image grid) or ``.npy`` (the array (n, *input_shape));
        default ``samples.png`` in ``run`` (``samples.npy`` when samples are not images).
    seed : int or None, default=0
        Seeds the draws (None: fresh ones).

    Returns
    -------
    dict
        ``{"path", "format", "n_samples", "seed", "shape", "image_shape"}``.
    """
    if out is not None:
        _output(out)  # a wrong suffix is reported before the model is loaded
    if not isinstance(n, numbers.Integral) or isinstance(n, bool) or n < 1:
        raise ConfigError(f"-n must be a positive integer, got {n!r}.")
    check_seed("--seed", seed)
    model = load_model(run)
    if not isinstance(model, VAE):
        raise ConfigError(
            f"{run} holds a plain autoencoder, which has no prior to sample from; train a VAE "
            "(--model vae), or use vaekit interpolate or traverse with this one."
        )
    image_shape = drawn_shape(model, run)
    out, suffix = _resolve_output(out, run, "generate", image_shape, model)
    samples = model.sample(int(n), random_state=seed)  # (n, *input_shape_)
    title = f"{n} samples from the prior" + ("" if seed is None else f" (seed {seed})")
    _write(out, suffix, samples, {"images": samples, "image_shape": image_shape, "title": title})
    return {
        "path": str(out),
        "format": suffix.lstrip("."),
        "n_samples": int(n),
        "seed": seed,
        "shape": list(samples.shape),
        "image_shape": list(image_shape) if image_shape else None,
    }


def interpolate_run(
    run: str | os.PathLike,
    data: str | os.PathLike,
    i_from: int,
    i_to: int,
    steps: int = 10,
    *,
    out: str | os.PathLike | None = None,
    method: str = "both",
    data_dir: str | os.PathLike | None = None,
    label_column: str | None = None,
) -> dict[str, Any]:
    """Decode the latent path between μ of rows ``i_from`` and ``i_to`` of ``data``.

    Parameters
    ----------
    run : str or PathLike
        A model directory (VAE or autoencoder).
    data : str or PathLike
        Dataset name or file, as for training; see :func:`vaekit.datasets.load_dataset`.
    i_from, i_to : int
        Row indices into ``data``, 0-based.
    steps : int, default=10
        Points on each path, endpoints included.
    out : str or PathLike, optional
        ``.png``: one grid row per method. ``.npy``: (steps, *input_shape) for one
        method, (2, steps, *input_shape) for ``both`` (linear first). Default
        ``interpolation.png`` in ``run`` (``.npy`` when samples are not images).
    method : {"linear", "spherical", "both"}, default="both"
    data_dir, label_column
        Passed to :func:`~vaekit.datasets.load_dataset`; ``label_column`` defaults to the
        column the run was trained with, where the table has it (:func:`load_run_data`).

    Returns
    -------
    dict
        ``{"path", "format", "data", "from", "to", "steps", "methods", "shape", ...}`` plus
        ``from_label`` / ``to_label`` when the data has labels.
    """
    if out is not None:
        _output(out)  # a wrong suffix is reported before anything is loaded
    choices = (*INTERPOLATION_METHODS, "both")
    if method not in choices:
        raise ConfigError(f"--method must be one of {', '.join(choices)}; got {method!r}.")
    methods = list(INTERPOLATION_METHODS) if method == "both" else [method]
    steps = _check_steps(steps)
    model = load_model(run)
    dataset = load_run_data(run, data, data_dir=data_dir, label_column=label_column)
    rows = model_rows(model, dataset, run)
    i_from = _check_index(i_from, "--from", dataset)
    i_to = _check_index(i_to, "--to", dataset)
    image_shape = drawn_shape(model, run, dataset)
    out, suffix = _resolve_output(out, run, "interpolate", image_shape, model)
    refuse_overwriting_data(out, data)

    x_from, x_to = rows[i_from], rows[i_to]
    paths = np.stack([interpolate(model, x_from, x_to, steps, m) for m in methods])
    grid = {
        "images": paths.reshape(-1, *model.input_shape_),  # (len(methods) * steps, ...)
        "image_shape": image_shape,
        "nrows": len(methods),
        "row_labels": methods,
        "title": f"{dataset.name}: row {i_from} → row {i_to}, decoded path between μ(x)",
    }
    array = paths if method == "both" else paths[0]
    _write(out, suffix, array, grid)
    result: dict[str, Any] = {
        "path": str(out),
        "format": suffix.lstrip("."),
        "data": dataset.name,
        "from": i_from,
        "to": i_to,
        "steps": steps,
        "methods": methods,
        "shape": list(array.shape),
        "image_shape": list(image_shape) if image_shape else None,
    }
    if dataset.y is not None:
        result["from_label"], result["to_label"] = _label(dataset, i_from), _label(dataset, i_to)
    return result


def traverse_run(
    run: str | os.PathLike,
    out: str | os.PathLike | None = None,
    dims: str | Sequence[int] | None = None,
    values: Any = None,
    data: str | os.PathLike | None = None,
    index: int | None = None,
    *,
    limit: float = 3.0,
    steps: int = 9,
    data_dir: str | os.PathLike | None = None,
    label_column: str | None = None,
) -> dict[str, Any]:
    """Decode latent traversals of the model in ``run``: one dimension varied per grid row.

    Parameters
    ----------
    run : str or PathLike
        A model directory. A VAE is traversed around z = 0 unless ``data`` and ``index`` are
        given; an autoencoder needs them (it has no prior centre).
    out : str or PathLike, optional
        ``.png`` (a row per dimension, a column per value) or ``.npy``
        ((len(dims), len(values), *input_shape)); default ``traversal.png`` in ``run``
        (``.npy`` when samples are not images).
    dims : str, sequence of int or None
        Dimensions to vary (``"0,1,2"`` is accepted); None: all of them.
    values : array-like of shape (m,), optional
        Values each varied coordinate takes; default ``linspace(-limit, limit, steps)``.
    data, index : optional
        Centre the traversal on μ of row ``index`` of ``data`` (name or file).
    limit, steps
        The default values: ``steps`` points from ``-limit`` to ``limit``.
    data_dir, label_column
        Passed to :func:`~vaekit.datasets.load_dataset`; ``label_column`` defaults to the
        column the run was trained with, where the table has it (:func:`load_run_data`).

    Returns
    -------
    dict
        ``{"path", "format", "dims", "values", "centre", "shape", "image_shape"}``.
    """
    if out is not None:
        _output(out)  # a wrong suffix is reported before anything is loaded
    if (data is None) != (index is None):
        raise ConfigError(
            "Pass DATA and --index together to centre the traversal on that row's μ(x), or "
            "neither to centre it on z = 0."
        )
    if values is None:
        if not (isinstance(limit, numbers.Real) and math.isfinite(limit) and limit > 0):
            raise ConfigError(f"--range must be a positive number, got {limit!r}.")
        values = traversal_values(limit, _check_steps(steps))
    try:
        values = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise ConfigError(f"values must be numbers, got {values!r}.") from None
    dim_list = parse_dims(dims)
    model = load_model(run)
    if data is None and not isinstance(model, VAE):
        raise ConfigError(
            f"{run} holds a plain autoencoder, which has no prior, so z = 0 is an arbitrary "
            "centre; pass DATA --index I to traverse around that row's code."
        )
    if dim_list is None:
        dim_list = list(range(model.latent_dim))
    x, dataset, centre = None, None, "z = 0 (the prior mean)"
    if data is not None:
        dataset = load_run_data(run, data, data_dir=data_dir, label_column=label_column)
        rows = model_rows(model, dataset, run)
        index = _check_index(index, "--index", dataset)
        x, centre = rows[index], f"μ(x) of row {index} of {dataset.name}"
    image_shape = drawn_shape(model, run, dataset)
    out, suffix = _resolve_output(out, run, "traverse", image_shape, model)
    refuse_overwriting_data(out, data)

    decoded = traverse(model, x, dim_list, values)  # (len(dims), m, *input_shape_)
    grid = {
        "images": decoded.reshape(-1, *model.input_shape_),
        "image_shape": image_shape,
        "nrows": len(dim_list),
        "row_labels": [f"z{d}" for d in dim_list],
        "col_labels": [f"{v:.3g}" for v in values],
        "title": f"Latent traversal around {centre}",
    }
    _write(out, suffix, decoded, grid)
    return {
        "path": str(out),
        "format": suffix.lstrip("."),
        "dims": dim_list,
        "values": [float(v) for v in values],
        "centre": centre,
        "shape": list(decoded.shape),
        "image_shape": list(image_shape) if image_shape else None,
    }
