"""What the ``vaekit`` commands do, as library functions that return plain dicts.

The CLI (``cli.py``) only parses arguments, calls one of these and prints the dict; a notebook
can call them directly. Each checks what a user can get wrong *before* any long work starts
(an output that cannot be written is reported before training, not after).
"""

from __future__ import annotations

import contextlib
import csv
import json
import math
import os
import shutil
import tempfile
import time
import uuid
import warnings
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from .autoencoder import Autoencoder
from .checkpoint import CHECKPOINT_FILE
from .datasets import (
    Dataset,
    is_dataset_name,
    load_dataset,
    refuse_non_finite,
    release_pages,
    takes_label_column,
)
from .distributed import is_main_process, world
from .errors import ConfigError, DataError, user_stacklevel
from .image_folder import as_model_channels
from .persistence import (
    CONFIG_FILE,
    RESULTS_FILE,
    atomic_write_json,
    library_versions,
    load_model,
    remove_new_folders,
)
from .scaling import every_row_outside_unit_interval, reaches_8_bit_range, value_range
from .vae import VAE
from .validation import column_difference, conform_samples

RUN_FILE = "run.json"  # what a `vaekit train` run was: data, timings, final losses
# What the commands that read a run write into it when given no --out (generate, interpolate
# and traverse add .png or .npy). They describe the model: training a new one in its place
# (--overwrite, or a --resume that trains on) removes them; a first model removes nothing.
RUN_OUTPUTS = {
    "evaluate": "evaluate",
    "visualize": "visualize",
    "detect": "anomaly_scores.csv",
    "export": "encoder.onnx",
    "generate": "samples",
    "interpolate": "interpolation",
    "traverse": "traversal",
}


# The estimators' messages call the data "X"; a command on a file says which file, in these
# phrases only (advice such as "X / 255" stays Python).
_X_PHRASES = ("rows of X ", "(X ranges over ", "X holds ", "Every row of X ")


@contextlib.contextmanager
def data_named(name: str) -> Iterator[None]:
    """Within it, the estimators' warnings and DataErrors name data ``name`` instead of X."""

    def named(text: str) -> str:
        for phrase in _X_PHRASES:
            text = text.replace(phrase, phrase.replace("X", name))
        return text

    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                yield
            except DataError as exc:
                raise DataError(named(str(exc))) from None
    finally:
        for warning in caught:  # again, once the recording is over, in the command's words
            warnings.warn(
                named(str(warning.message)), warning.category, stacklevel=user_stacklevel()
            )


def default_output(run: str | os.PathLike, command: str) -> Path:
    """Where ``command`` writes in the run directory ``run`` when given no ``--out``."""
    return Path(run).expanduser() / RUN_OUTPUTS[command]


def _remove_run_outputs(run: Path) -> list[str]:
    """Remove what commands wrote into ``run`` by default (see ``RUN_OUTPUTS``): the outputs
    of a model that a new one replaces. Returns the names removed."""
    removed = []
    for command, name in RUN_OUTPUTS.items():
        path = run / name
        if command in ("evaluate", "visualize"):
            if (path / RESULTS_FILE).is_file():  # a report folder vaekit wrote
                shutil.rmtree(path)
                removed.append(name)
            continue
        # A name without suffix (samples) is written as .png or .npy; others as they are.
        files = [path] if path.suffix else [path.with_suffix(".png"), path.with_suffix(".npy")]
        for candidate in files:
            if candidate.is_file():
                candidate.unlink()
                removed.append(candidate.name)
    return removed


EMBED_FORMATS = (".npy", ".csv", ".parquet")
_EMBED_BATCH = 4096


def refuse_overwriting_data(out: Path, data: str | os.PathLike | None) -> None:
    """A ConfigError where ``out`` is the very file DATA is read from: the result written
    there would replace the user's data (an atomic write makes no exception for it)."""
    if data is None:
        return
    source = Path(data).expanduser()
    try:
        same = out.is_file() and source.is_file() and os.path.samefile(out, source)
    except OSError:  # unreadable: the write itself will say what is wrong
        return
    if same:
        raise ConfigError(
            f"--out {out} is DATA itself; the result would replace your data: choose another "
            "file name."
        )


def writable_dir(path: Path, what: str) -> list[Path]:
    """Create ``path`` if needed and prove a file can be written in it.

    Returns the folders this call created, deepest first, for
    :func:`~vaekit.persistence.remove_new_folders` to take back when the work then fails.
    """
    created = [p for p in (path, *path.parents) if not p.exists()]
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".vaekit-write-test-"):
            pass
    except OSError as exc:
        remove_new_folders(created)
        blocker = next((p for p in (path, *path.parents) if p.exists() and not p.is_dir()), None)
        reason = f"{blocker} is a file" if blocker else (exc.strerror or str(exc)).lower()
        raise ConfigError(
            f"Cannot write the {what} {path} ({reason}); choose a folder you can write to."
        ) from None
    return created


def train_run(
    data: str | os.PathLike,
    out: str | os.PathLike,
    *,
    model: str = "vae",
    data_dir: str | os.PathLike | None = None,
    label_column: str | None = None,
    overwrite: bool = False,
    resume: bool = False,
    **params: Any,
) -> dict[str, Any]:
    """Train a VAE or AE on ``data`` and save it, with a run summary, to directory ``out``.

    Parameters
    ----------
    data : str or PathLike
        Dataset name (``digits``, ``mnist:train``...) or a file; see
        :func:`vaekit.datasets.load_dataset`.
    out : str or PathLike
        Run directory: ``model.safetensors``, ``config.json``, ``history.json``, ``run.json``,
        and ``checkpoint.safetensors``, rewritten after every epoch.
    model : {"vae", "ae"}
    data_dir, label_column
        Passed to :func:`~vaekit.datasets.load_dataset`; ``label_column`` is recorded in
        ``run.json``, where the later commands on the run take it from.
    overwrite : bool
        Replace a model already saved in ``out``.
    resume : bool
        Continue the interrupted (or finished, with more ``epochs``) run in ``out`` from its
        checkpoint; ``data`` and the parameters must be the ones it was started with.
    **params
        Estimator parameters (``latent_dim``, ``beta``, ``epochs``...).

    Returns
    -------
    dict
        The run summary written to ``run.json``.
    """
    estimators = {"vae": VAE, "ae": Autoencoder}
    if model not in estimators:
        raise ConfigError(f"model must be 'vae' or 'ae', got {model!r}.")
    out = Path(out).expanduser()
    if overwrite and resume:
        raise ConfigError(
            "--overwrite starts the run in --out over and --resume goes on with it; pass one."
        )
    if (out / CONFIG_FILE).exists() and not (overwrite or resume):
        raise ConfigError(f"{out} already holds a model; pass --overwrite or choose another --out.")
    if (out / CHECKPOINT_FILE).exists() and not (overwrite or resume):
        raise ConfigError(
            f"{out} holds the checkpoint of an interrupted run; pass --resume to continue it, "
            "--overwrite to start over, or choose another --out."
        )
    try:
        estimator = estimators[model](**params)
    except TypeError as exc:
        raise ConfigError(f"Unknown parameter for {model}: {exc}.") from None
    estimator._check_params()  # a bad parameter is reported before anything is created
    dataset = load_dataset(data, data_dir=data_dir, label_column=label_column)
    refuse_non_finite(dataset)
    if (
        params.get("conv_channels") is not None
        and dataset.X.ndim == 2
        and params.get("architecture", "auto") != "conv"
    ):
        raise ConfigError(
            f"--conv-channels sets the convolutional architecture, but {dataset.name} holds "
            f"flat rows of {dataset.X.shape[1]} features, which train an MLP: drop "
            "--conv-channels (the MLP's widths are --hidden-dims)."
        )

    X = dataset.X
    as_images = params.get("architecture") == "conv" or params.get("augment") is not None
    if as_images and X.ndim == 2 and dataset.image_shape:
        X = X.reshape(len(X), *dataset.image_shape)  # digits' 64 columns are 8x8 images
    created = writable_dir(out, "run directory")  # checked before training, not after it
    # The model this training replaces, if any (--overwrite, --resume): its outputs go with it.
    # Its config.json holds the weights' sha256 and the stored threshold (--contamination).
    config = out / CONFIG_FILE
    before = config.read_bytes() if config.is_file() else None
    tic = time.perf_counter()
    try:
        estimator.fit(X, checkpoint_path=out / CHECKPOINT_FILE, resume=resume)
    except BaseException:
        remove_new_folders(created)  # leave nothing behind for a run that never trained
        raise
    seconds = time.perf_counter() - tic
    if dataset.named_columns and dataset.feature_names:
        # As fit on a DataFrame would: a model loaded in Python then checks a table's columns.
        estimator.feature_names_in_ = np.asarray(dataset.feature_names, dtype=object)
    last = estimator.history_[-1]
    summary = {
        "model": model,
        "data": str(data),
        # Where that was, for a later `evaluate` run from another folder to recognise it.
        "data_path": None if is_dataset_name(data) else str(Path(data).expanduser().resolve()),
        "dataset": dataset.name,
        "n_samples": int(dataset.X.shape[0]),
        # A table's column names, for later commands to check that a table lines up with them.
        "feature_names": dataset.feature_names,
        # Runs without this key read tables as float32 (see load_run_data).
        "table_dtype": "float64",
        # Later commands on this run read a table's labels from it unless told otherwise.
        "label_column": label_column,
        "input_shape": list(estimator.input_shape_),
        "image_shape": list(dataset.image_shape) if dataset.image_shape else None,
        "architecture": estimator.architecture_,
        "likelihood": estimator.likelihood_,
        "latent_dim": estimator.latent_dim,
        "epochs_run": estimator.n_epochs_,
        "best_epoch": best_epoch(estimator.history_),
        "resumed": resume,
        "train_seconds": round(seconds, 3),
        "seconds_per_epoch": round(float(np.median([h["seconds"] for h in estimator.history_])), 3),
        "final": {k: v for k, v in last.items() if not isinstance(v, list)},
        "versions": library_versions(),
        "path": str(out),
    }
    job = world()
    if job is not None:
        summary["world_size"] = job.size
    if is_main_process():  # under torchrun, rank 0 alone writes the run
        estimator.save(out)
        atomic_write_json(out / RUN_FILE, summary)
        # The outputs describe the model just replaced: unless there was none (files in a
        # folder that held no model are the user's), or a resume trained nothing more (a
        # finished or early-stopped run), which leaves the same weights and valid outputs.
        # --overwrite always replaces them: an equal retrain may differ in what they depend
        # on besides the weights (--contamination sets the stored anomaly threshold).
        if before is not None and (not resume or before != config.read_bytes()):
            removed = _remove_run_outputs(out)
            if removed:
                summary["removed_outputs"] = removed
    return summary


def embed_run(
    run: str | os.PathLike,
    data: str | os.PathLike,
    out: str | os.PathLike,
    *,
    with_logvar: bool = False,
    data_dir: str | os.PathLike | None = None,
    label_column: str | None = None,
) -> dict[str, Any]:
    """Write μ(x) (and optionally log σ²) of ``data`` under the model in ``run`` to ``out``.

    The output is written batch by batch to a temporary file beside ``out`` and renamed into
    place at the end, so an interrupted run never leaves a partial file under the final name.

    Parameters
    ----------
    run : str or PathLike
        A model directory written by ``vaekit train`` / :meth:`VAE.save`.
    data : str or PathLike
        Dataset name or file, as for training.
    out : str or PathLike
        ``.npy`` (float32 array of shape (n, k), or (n, 2k) with log σ² after μ), ``.csv`` or
        ``.parquet`` (columns ``vae0..``, ``logvar0..``, ``label`` when the data has labels,
        and ``file``, each image's path in the folder, for a folder of images).
    with_logvar : bool
        Also write the encoder's log σ² (VAE only).
    data_dir, label_column
        Passed to :func:`~vaekit.datasets.load_dataset`; ``label_column`` defaults to the
        column the run was trained with, where the table has it (:func:`load_run_data`).

    Returns
    -------
    dict
        ``{"path", "rows", "columns", "format"}``.
    """
    out = Path(out).expanduser()
    suffix = out.suffix.lower()
    if suffix not in EMBED_FORMATS:
        raise ConfigError(f"--out must end in {', '.join(EMBED_FORMATS)}; got {out.name!r}.")
    refuse_overwriting_data(out, data)
    model = load_model(run)
    if with_logvar and not isinstance(model, VAE):
        raise ConfigError("--with-logvar needs a VAE; this run holds a plain autoencoder.")
    dataset = load_run_data(run, data, data_dir=data_dir, label_column=label_column)
    n = dataset.X.shape[0]
    if n == 0:
        raise DataError(f"{dataset.name} has no rows to embed.")
    X = model_rows(model, dataset, run)  # flattened images reshaped; columns, scale checked
    created = writable_dir(out.parent if str(out.parent) else Path("."), "output folder")

    columns = list(model.get_feature_names_out())
    if with_logvar:
        columns += [f"logvar{j}" for j in range(model.latent_dim)]
    label_dtype = None if dataset.y is None else dataset.y.dtype
    # Text labels and class folders are numbered by sorted name; write the names, not those
    # codes (named datasets' classes are their digits: the codes already read the same).
    classes = dataset.classes if dataset.y is not None else None
    if classes is not None and classes == [str(i) for i in range(len(classes))]:
        classes = None
    files = None if suffix == ".npy" else dataset.files  # an image folder's, to join on
    writer = _EmbeddingWriter(out, n, columns, label_dtype, classes, files is not None)
    try:
        for start in range(0, n, _EMBED_BATCH):
            rows = X[start : start + _EMBED_BATCH]
            with data_named(dataset.name):
                if with_logvar:
                    mu, logvar = model.encode(rows)
                    block = np.concatenate([mu, logvar], axis=1)
                else:
                    block = model._mu(rows)
            labels = None if dataset.y is None else dataset.y[start : start + _EMBED_BATCH]
            writer.write(
                block, labels, None if files is None else files[start : start + _EMBED_BATCH]
            )
            release_pages(dataset.X)  # a memory-mapped input stays out of resident memory
        writer.commit()
    except BaseException:
        writer.abort()
        remove_new_folders(created)
        raise
    return {"path": str(out), "rows": n, "columns": columns, "format": suffix.lstrip(".")}


class _EmbeddingWriter:
    """Streams row blocks to a temporary file in ``out``'s folder; ``commit`` renames it."""

    def __init__(
        self,
        out: Path,
        n: int,
        columns: list[str],
        label_dtype: np.dtype | None,
        classes: list[str] | None = None,
        with_files: bool = False,
    ) -> None:
        self.out, self.columns, self.label_dtype = out, columns, label_dtype
        # Class names indexed by label code: the label column holds these strings.
        self.classes = None if classes is None else np.asarray(classes, dtype=object)
        # Same folder, so the final rename is atomic; plain umask permissions (not mkstemp's 0600).
        self.tmp = out.with_name(f".{out.name}.{uuid.uuid4().hex}.tmp")
        self.row = 0
        self.kind = out.suffix.lower()
        if self.kind == ".npy":
            # Header now, rows appended with plain writes: unlike a writable memory map, the
            # written rows do not stay in this process's resident memory.
            self.file = self.tmp.open("xb")
            header = {"descr": "<f4", "fortran_order": False, "shape": (n, len(columns))}
            np.lib.format.write_array_header_1_0(self.file, header)
        elif self.kind == ".csv":
            self.file = self.tmp.open("x", encoding="utf-8", newline="")
            header = self.columns + (["label"] if label_dtype is not None else [])
            header += ["file"] if with_files else []
            self.file.write(",".join(header) + "\n")
        else:
            import pyarrow as pa
            import pyarrow.parquet as pq

            fields = [pa.field(c, pa.float32()) for c in columns]
            if label_dtype is not None:
                kind = pa.string() if classes is not None else pa.from_numpy_dtype(label_dtype)
                fields.append(pa.field("label", kind))
            if with_files:
                fields.append(pa.field("file", pa.string()))
            self.schema = pa.schema(fields)
            self.parquet = pq.ParquetWriter(self.tmp, self.schema)

    def write(
        self, block: np.ndarray, labels: np.ndarray | None, files: list[str] | None = None
    ) -> None:
        """Append rows: ``block`` (m, columns), their labels (m,) and files (m), when kept."""
        if self.kind == ".npy":
            self.file.write(np.ascontiguousarray(block, dtype="<f4").tobytes())
        elif self.kind == ".csv" and labels is None and files is None:
            np.savetxt(self.file, block, fmt="%.9g", delimiter=",")  # reads back the same float32
        elif self.kind == ".csv":
            # Class names and file names may hold commas or quotes: the csv module quotes them.
            cells = [] if labels is None else [self._label_cells(labels)]
            cells += [] if files is None else [files]
            rows = csv.writer(self.file, lineterminator="\n")
            for values, *text in zip(block, *cells, strict=True):
                rows.writerow([*(f"{v:.9g}" for v in values), *text])
        else:
            import pyarrow as pa

            arrays = [pa.array(block[:, j]) for j in range(block.shape[1])]
            if labels is not None:
                names = None if self.classes is None else self.classes[labels].tolist()
                arrays.append(pa.array(labels if names is None else names))
            if files is not None:
                arrays.append(pa.array(files, pa.string()))
            self.parquet.write_table(pa.Table.from_arrays(arrays, schema=self.schema))
        self.row += len(block)

    def _label_cells(self, labels: np.ndarray) -> list[str]:
        """Labels as the CSV shows them: class names, integer codes, or floats that read back
        exactly (17 significant digits)."""
        if self.classes is not None:
            return self.classes[labels].tolist()
        if np.issubdtype(labels.dtype, np.integer):
            return [str(int(v)) for v in labels]
        return [f"{float(v):.17g}" for v in labels]

    def _close(self) -> None:
        if self.kind in (".npy", ".csv"):
            self.file.close()
        else:
            self.parquet.close()

    def commit(self) -> None:
        self._close()
        # As atomic_write_bytes does: the rows reach the disk before the name points at them, so
        # a crash right after the rename cannot leave a truncated file under the final name.
        with self.tmp.open("rb") as f:
            os.fsync(f.fileno())
        os.replace(self.tmp, self.out)

    def abort(self) -> None:
        try:
            self._close()
        finally:
            self.tmp.unlink(missing_ok=True)


def check_columns(ds: Dataset, run: str | os.PathLike, model: Any) -> None:
    """Refuse a table whose column names differ from those of the table the run trained on.

    The model reads features by position: the same columns in another order would be encoded
    without complaint into meaningless codes. Checked where both sides have names: a CSV or
    Parquet file, against the names ``vaekit train`` recorded in run.json or, for a model
    saved from Python, its ``feature_names_in_`` (a DataFrame's columns).
    """
    summary = run_summary(run)
    trained = summary.get("feature_names")
    if not trained and getattr(model, "feature_names_in_", None) is not None:
        trained = [str(name) for name in model.feature_names_in_]
    if not trained or ds.feature_names is None:
        return
    given = list(ds.feature_names)
    if trained[1:] == given and trained[0] in ("", "__index_level_0__"):
        raise DataError(
            f"The model in {run} was trained with the row index that pandas wrote into its "
            f"table as a feature ({trained[0]!r}, which vaekit now leaves out); train it again "
            "on this file."
        )
    headerless = [f"f{j}" for j in range(len(trained))]
    pandas_names = given == [str(j) for j in range(len(given))]
    # That run counted the header as one more row than this file now has.
    header_as_sample = summary.get("n_samples") == len(ds.X) + 1
    if trained == headerless and pandas_names and header_as_sample:
        raise DataError(
            f"The model in {run} was trained when vaekit read the header row of pandas' default "
            f"column names (0, 1, ...) of {ds.name} as a sample, which it now reads as the "
            "header; train it again on this file."
        )
    difference = column_difference(given, list(trained), ds.name)
    if difference:
        raise DataError(difference)


def refuse_unscaled(model: Any, X: np.ndarray, name: str) -> None:
    """Refuse a file (of more than one row) whose every row is outside a Bernoulli model's
    [0, 1]: it was not scaled as the training data was (8-bit pixels, say), which anomaly
    scores (every row flagged) and μ(x) (an encoder fed values it never saw) would hide. The
    estimator itself scores such rows -inf with a warning, whatever the other rows."""
    if getattr(model, "likelihood_", None) != "bernoulli" or not every_row_outside_unit_interval(X):
        return
    lo, hi = value_range(X)
    raise DataError(
        f"Every row of {name} has values outside [0, 1] (they range over [{lo:.4g}, "
        f"{hi:.4g}]), where this model's Bernoulli likelihood is 0; scale {name} as the "
        "training data was"
        + (" (8-bit pixels: divide by 255)." if reaches_8_bit_range(hi) else ".")
    )


def model_rows(model: VAE | Autoencoder, ds: Dataset, run: str | os.PathLike) -> np.ndarray:
    """``ds.X`` shaped as the model's samples, (n, *input_shape_), for every command on a run.

    Flattened images (digits' 64 columns for an 8x8 model) are reshaped back, and so is a
    single channel axis (:func:`~vaekit.validation.same_samples`); a folder's images are put in
    the model's colour mode (:func:`~vaekit.image_folder.as_model_channels`). A DataError for other
    shapes, for a table's columns where they differ from the training table's (see
    :func:`check_columns`), and for a file that was not scaled as a Bernoulli model's training
    data was (:func:`refuse_unscaled`).
    """
    check_columns(ds, run, model)
    trained_on = f"the model in {run} was trained on"
    X = ds.X
    if ds.files is not None:  # a folder of images: gray or RGB depends on which files it holds
        X = as_model_channels(X, tuple(model.input_shape_), ds.name)
    X = conform_samples(X, tuple(model.input_shape_), ds.name, trained_on)
    refuse_unscaled(model, X, ds.name)
    return X


def load_run_data(
    run: str | os.PathLike,
    data: str | os.PathLike,
    *,
    data_dir: str | os.PathLike | None = None,
    label_column: str | None = None,
) -> Dataset:
    """DATA for a command on RUN: a table's labels from the column RUN was trained with.

    ``label_column`` given wins (and must be in the table). Without it, a CSV / Parquet file
    that has the column recorded in ``RUN/run.json`` is read with that column as labels, not
    as a feature the model never saw; a table without it, or with it empty in every row (new,
    unlabelled rows), is read without labels. For a run trained before tables were read as
    float64 (no ``table_dtype`` in its run.json), a table is read as float32, as it was then.
    """
    summary: dict[str, Any] | None = None  # read once, and only where needed

    def recorded() -> dict[str, Any]:
        nonlocal summary
        summary = run_summary(run) if summary is None else summary
        return summary

    asked = label_column is None and takes_label_column(data)
    column = recorded().get("label_column") if asked else None
    if isinstance(column, str):
        ds = load_dataset(data, data_dir=data_dir, label_column=column, label_optional=True)
    else:
        ds = load_dataset(data, data_dir=data_dir, label_column=label_column)
    refuse_non_finite(ds)
    table = ds.X.ndim == 2 and ds.X.dtype != np.float32
    if table and recorded() and "table_dtype" not in recorded():
        # A run trained before tables were read as float64 saw them as float32 (a timestamp
        # column constant): read so too, for the model they trained to see the same values.
        ds = replace(ds, X=ds.X.astype(np.float32))
    return ds


def run_summary(run: str | os.PathLike) -> dict[str, Any]:
    """What ``vaekit train`` recorded in ``RUN/run.json``; ``{}`` for a model saved by
    ``VAE.save`` (which writes none), or, with a warning, for a damaged file: the model itself
    is in other files, and this costs only what it would tell (the label column, the image
    shape), which the warning names, as an error about DATA would not."""
    path = Path(run).expanduser() / RUN_FILE
    try:
        summary = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        summary = exc
    if not isinstance(summary, dict):
        why = str(summary) if isinstance(summary, Exception) else "not a JSON object"
        warnings.warn(
            f"{path} is damaged ({why}), so what vaekit train recorded there (the label "
            "column, the image shape) is not used; pass --label-column again where the data "
            "has one.",
            UserWarning,
            stacklevel=user_stacklevel(),
        )
        return {}
    return summary


def best_epoch(history: list[dict]) -> int | None:
    """The epoch (1-based) whose weights a fitted model holds: the one with the lowest finite
    validation loss, which fit restores at the end; the last one without a validation split.
    ``final`` in a run summary is the last epoch, which early stopping leaves up to
    ``patience`` epochs later."""
    scored = [
        (h["val_loss"], h["epoch"]) for h in history if math.isfinite(h.get("val_loss", math.nan))
    ]
    if scored:
        return min(scored)[1]  # the first of equal losses: fit keeps only strict improvements
    return history[-1]["epoch"] if history else None


def run_info(run: str | os.PathLike) -> dict[str, Any]:
    """Describe a saved model: parameters, fitted metadata, versions, final losses."""
    model = load_model(run)  # checks config.json and the weights, with clear errors
    config = json.loads((Path(run).expanduser() / CONFIG_FILE).read_text())
    summary = run_summary(run)
    history = model.history_
    return {
        "path": str(run),
        "class": type(model).__name__,
        "params": config["params"],
        "fitted": config["fitted"],
        "versions": config.get("versions", {}),
        "epochs_run": len(history),
        "best_epoch": best_epoch(history),
        "final": {
            k: v for k, v in (history[-1] if history else {}).items() if not isinstance(v, list)
        },
        "data": summary.get("data"),
        "label_column": summary.get("label_column"),  # what later commands read labels from
        "n_samples": summary.get("n_samples"),
        "train_seconds": summary.get("train_seconds"),
    }


def demo(
    out: str | os.PathLike = "vaekit-demo", *, seed: int = 0, verbose: bool = False
) -> dict[str, Any]:
    """The showcase on digits; see :func:`vaekit.showcase.demo` (kept here for old callers)."""
    from .showcase import demo as showcase_demo  # lazy: showcase imports this module

    return showcase_demo(out, seed=seed, verbose=verbose)


def _recorded_image_shape(run: str | os.PathLike) -> tuple[int, ...] | None:
    """The image shape ``vaekit train`` recorded for the run's data (digits: (8, 8)), if any."""
    shape = run_summary(run).get("image_shape")
    try:
        return tuple(int(s) for s in shape) if shape else None
    except (ValueError, TypeError):  # a damaged run.json
        return None


def drawn_shape(
    model: Any, run: str | os.PathLike, dataset: Dataset | None = None
) -> tuple[int, ...] | None:
    """Shape to draw one sample of the model in ``run`` as an image: the model's own, else the
    one ``vaekit train`` recorded for its data, else ``dataset``'s (digits' 64 columns: 8x8);
    None for a table."""
    shape = tuple(model.input_shape_)
    if len(shape) >= 2:
        return shape
    for candidate in (_recorded_image_shape(run), dataset and dataset.image_shape):
        if candidate and math.prod(candidate) == model.n_features_in_:
            return tuple(int(s) for s in candidate)
    return None
