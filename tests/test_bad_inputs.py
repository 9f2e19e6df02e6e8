"""The bad-input catalogue: what a user can get wrong, and the one sentence vaekit answers with.

Each :class:`Case` builds one bad input in an empty folder, runs a ``vaekit`` command on it from
that folder (paths are relative, so messages read as a user would see them) and checks the house
rule (DESIGN.md, rule 10): exit code 2, stderr exactly one line ``error: <one sentence>``, no
traceback, and the folder left exactly as it was (no output, no empty run directory, no temporary
file). Where a Python call is the natural equivalent, it must raise the stated error class with
a one-sentence message too.

Every case runs in-process through typer's CliRunner (fast); a few also run as real
``python -m vaekit`` processes, the honest test of "no traceback". ``docs/make_bad_inputs.py``
runs the same catalogue and writes ``docs/bad_inputs.md``; ``test_docs_table_is_current`` fails
when that table no longer matches the messages.

The loaders' properties (random bytes under any name give a Dataset or a DataError, never
another exception) are at the end.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from typer.testing import CliRunner

from vaekit import VAE, Autoencoder, cli, load
from vaekit.cli import app
from vaekit.datasets import Dataset, load_dataset
from vaekit.errors import ConfigError, DataError, ModelFileError, VaekitError

DOC = Path(__file__).resolve().parents[1] / "docs" / "bad_inputs.md"
TABULAR_FEATURES = 5  # the runs below are trained on (n, 5) tables


# --- the trained runs the model cases start from ----------------------------------------------


def make_runs(folder: Path) -> Path:
    """Train a tiny VAE (``vae/``) and AE (``ae/``) on a 5-column table; return ``folder``."""
    X = np.random.default_rng(0).random((40, TABULAR_FEATURES), dtype=np.float32)
    quick = {"latent_dim": 3, "hidden_dims": (8,), "epochs": 1, "random_state": 0}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # posterior collapse after one epoch is expected
        VAE(**quick).fit(X).save(folder / "vae")
        Autoencoder(**quick).fit(X).save(folder / "ae")
    return folder


# --- builders: each writes its bad input into the case's folder d -----------------------------


def write(path: Path, data: bytes | str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


def npy(name: str, array: Any, **kwargs: Any) -> Callable[[Path], None]:
    return lambda d: np.save(d / name, array, **kwargs)


def text(name: str, content: str | bytes) -> Callable[[Path], None]:
    return lambda d: write(d / name, content) and None


def png(path: Path, height: int, width: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.zeros((height, width), np.uint8)).save(path)


def idx_bytes(arr: np.ndarray) -> bytes:
    """An IDX file of uint8 ``arr``: magic, big-endian uint32 dims, data."""
    return bytes([0, 0, 0x08, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape) + arr.tobytes()


def table(rows: int, cols: int = TABULAR_FEATURES, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((rows, cols)).astype(np.float32)


def with_nan(d: Path) -> None:
    X = table(10)
    X[3, 1] = np.nan
    np.save(d / "data.npy", X)


def mixed_sizes(d: Path) -> None:
    png(d / "images" / "a.png", 8, 8)
    png(d / "images" / "b.png", 9, 8)


def eight_by_eight_images(d: Path) -> None:
    for i in range(3):
        png(d / "images" / f"{i}.png", 8, 8)


def edit_run(model: str, change: Callable[[Path], None]) -> Callable[[Path], None]:
    """Builder: ``change`` the copy of run ``model`` (already in d)."""
    return lambda d: change(d / model)


def truncate_weights(run: Path) -> None:
    weights = run / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-64])


def tamper_weights(run: Path) -> None:
    data = bytearray((run / "model.safetensors").read_bytes())
    data[-3] ^= 0xFF  # inside a tensor: the file still parses, only the checksum tells
    (run / "model.safetensors").write_bytes(bytes(data))


def edit_config(change: Callable[[dict], Any]) -> Callable[[Path], None]:
    def apply(run: Path) -> None:
        config = json.loads((run / "config.json").read_text())
        change(config)
        (run / "config.json").write_text(json.dumps(config))

    return apply


def newer_format(config: dict) -> None:
    config["format_version"] = 99
    config["versions"]["vaekit"] = "9.0"


def other_latent_dim(config: dict) -> None:
    config["params"]["latent_dim"] = 7


def both(*builders: Callable[[Path], None]) -> Callable[[Path], None]:
    def build(d: Path) -> None:
        for b in builders:
            b(d)

    return build


# --- the catalogue ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One bad input.

    ``args`` is the command line after ``vaekit``, run from the case's folder; ``out`` the output
    it names, which must not exist afterwards; ``runs`` the trained runs ("vae", "ae") copied in
    first; ``api`` the equivalent Python call (run from the same folder), raising ``error``.
    """

    id: str
    input: str
    args: tuple[str, ...]
    build: Callable[[Path], None] | None = None
    out: str | None = None
    runs: tuple[str, ...] = ()
    api: Callable[[], Any] | None = None
    error: type[Exception] = VaekitError
    env: dict[str, str | None] = field(default_factory=dict)
    subprocess: bool = False  # also run as a real `python -m vaekit` process

    @property
    def command(self) -> str:
        return "vaekit " + " ".join(
            a if a and re.fullmatch(r"[\w./:=-]+", a) else repr(a) for a in self.args
        )


def fit(path: str, **params: Any) -> Callable[[], Any]:
    """API equivalent of ``vaekit train path``: load the file, fit a VAE."""
    return lambda: VAE(epochs=1, **params).fit(load_dataset(path).X)


def loads(path: str, **kwargs: Any) -> Callable[[], Any]:
    return lambda: load_dataset(path, **kwargs)


def fit_params(**params: Any) -> Callable[[], Any]:
    return lambda: VAE(**params).fit(table(10))


def transform(run: str, path: str) -> Callable[[], Any]:
    return lambda: load(run).transform(load_dataset(path).X)


TRAIN = ("train",)
OUT = ("--out", "run")
SCORES = ("--out", "scores.csv")

CASES: list[Case] = [
    # --- values and shapes ---
    Case(
        "nan",
        "a .npy table with a NaN value",
        (*TRAIN, "data.npy", *OUT),
        with_nan,
        "run",
        api=fit("data.npy"),
        error=DataError,
        subprocess=True,
    ),
    Case(
        "inf",
        "a CSV with an inf cell",
        (*TRAIN, "data.csv", *OUT),
        text("data.csv", "a,b\n1,2\n3,inf\n4,5\n"),
        "run",
        api=fit("data.csv"),
        error=DataError,
    ),
    Case(
        "1-d",
        "a 1-D .npy array (wrong dimensions)",
        (*TRAIN, "data.npy", *OUT),
        npy("data.npy", np.arange(10.0)),
        "run",
        api=loads("data.npy"),
        error=DataError,
    ),
    Case(
        "5-d",
        "a 5-D .npy array (wrong dimensions)",
        (*TRAIN, "data.npy", *OUT),
        npy("data.npy", np.zeros((4, 1, 2, 2, 2))),
        "run",
        api=loads("data.npy"),
        error=DataError,
    ),
    Case(
        "csv-strings",
        "a CSV with a text column",
        (*TRAIN, "data.csv", *OUT),
        text("data.csv", "name,x\nann,1\nbob,2\n"),
        "run",
        api=loads("data.csv"),
        error=DataError,
    ),
    Case(
        "csv-semicolons",
        "a .csv separated by semicolons (Excel in many locales)",
        (*TRAIN, "data.csv", *OUT),
        text("data.csv", "a;b;species\n1;2;x\n3;4;y\n"),
        "run",
        api=loads("data.csv"),
        error=DataError,
    ),
    Case(
        "csv-ragged",
        "a CSV with a ragged row",
        (*TRAIN, "data.csv", *OUT),
        text("data.csv", "a,b\n1,2\n3\n"),
        "run",
        api=loads("data.csv"),
        error=DataError,
    ),
    Case(
        "empty-file",
        "an empty file",
        (*TRAIN, "data.csv", *OUT),
        text("data.csv", ""),
        "run",
        api=loads("data.csv"),
        error=DataError,
    ),
    Case(
        "zero-rows",
        "a CSV with a header and zero rows",
        (*TRAIN, "data.csv", *OUT),
        text("data.csv", "a,b\n"),
        "run",
        api=loads("data.csv"),
        error=DataError,
    ),
    Case(
        "zero-rows-npy",
        "a .npy array with zero rows",
        (*TRAIN, "data.npy", *OUT),
        npy("data.npy", np.zeros((0, 3))),
        "run",
        api=loads("data.npy"),
        error=DataError,
    ),
    Case(
        "one-row",
        "a CSV with one row",
        (*TRAIN, "data.csv", *OUT),
        text("data.csv", "a,b\n1,2\n"),
        "run",
        api=fit("data.csv"),
        error=DataError,
    ),
    Case(
        "bernoulli-range",
        "--likelihood bernoulli on data outside [0, 1]",
        (*TRAIN, "data.npy", *OUT, "--likelihood", "bernoulli"),
        npy("data.npy", table(10) * 5),
        "run",
        api=fit("data.npy", likelihood="bernoulli"),
        error=DataError,
    ),
    # --- file formats ---
    Case(
        "parquet-text",
        "a .parquet file that is really text",
        (*TRAIN, "data.parquet", *OUT),
        text("data.parquet", "a,b\n1,2\n"),
        "run",
        api=loads("data.parquet"),
        error=DataError,
    ),
    Case(
        "npz-empty",
        "an .npz archive with no arrays",
        (*TRAIN, "data.npz", *OUT),
        lambda d: np.savez(d / "data.npz"),
        "run",
        api=loads("data.npz"),
        error=DataError,
    ),
    Case(
        "npz-labels",
        "an .npz whose labels do not match the samples",
        (*TRAIN, "data.npz", *OUT),
        lambda d: np.savez(d / "data.npz", X=table(4), y=np.arange(3)),
        "run",
        api=loads("data.npz"),
        error=DataError,
    ),
    Case(
        "npy-object",
        "an object-dtype .npy",
        (*TRAIN, "data.npy", *OUT),
        npy("data.npy", np.array([{"a": 1}, None], dtype=object), allow_pickle=True),
        "run",
        api=loads("data.npy"),
        error=DataError,
    ),
    Case(
        "npy-text",
        "a .npy file that is really text",
        (*TRAIN, "data.npy", *OUT),
        text("data.npy", "1,2,3\n"),
        "run",
        api=loads("data.npy"),
        error=DataError,
    ),
    Case(
        "gz-not-idx",
        "a .gz that is not IDX",
        (*TRAIN, "data.gz", *OUT),
        text("data.gz", gzip.compress(b"hello, world\n")),
        "run",
        api=loads("data.gz"),
        error=DataError,
    ),
    Case(
        "idx-truncated",
        "a truncated IDX file",
        (*TRAIN, "train-images-idx3-ubyte.gz", *OUT),
        text(
            "train-images-idx3-ubyte.gz",
            gzip.compress(idx_bytes(np.zeros((10, 4, 4), np.uint8))[:-5]),
        ),
        "run",
        api=loads("train-images-idx3-ubyte.gz"),
        error=DataError,
    ),
    Case(
        "unknown-suffix",
        "a file of an unsupported type",
        (*TRAIN, "data.xlsx", *OUT),
        text("data.xlsx", "PK"),
        "run",
        api=loads("data.xlsx"),
        error=DataError,
    ),
    Case(
        "label-column-missing",
        "--label-column naming no column",
        (*TRAIN, "data.csv", *OUT, "--label-column", "species"),
        text("data.csv", "a,b\n1,2\n3,4\n"),
        "run",
        api=loads("data.csv", label_column="species"),
        error=DataError,
    ),
    Case(
        "label-column-markup",
        "--label-column with square brackets (console markup)",
        (*TRAIN, "data.csv", *OUT, "--label-column", "[/b]"),
        text("data.csv", "a,b\n1,2\n3,4\n"),
        "run",
        api=loads("data.csv", label_column="[/b]"),
        error=DataError,
        subprocess=True,
    ),
    Case(
        "label-column-npy",
        "--label-column with a .npy file",
        (*TRAIN, "data.npy", *OUT, "--label-column", "y"),
        npy("data.npy", table(4)),
        "run",
        api=loads("data.npy", label_column="y"),
        error=DataError,
    ),
    # --- image folders ---
    Case(
        "images-empty",
        "an empty image folder",
        (*TRAIN, "images", *OUT),
        lambda d: (d / "images").mkdir(),
        "run",
        api=loads("images"),
        error=DataError,
    ),
    Case(
        "images-mixed-sizes",
        "an image folder with mixed sizes",
        (*TRAIN, "images", *OUT),
        mixed_sizes,
        "run",
        api=loads("images"),
        error=DataError,
    ),
    Case(
        "image-corrupt",
        "an image folder with a corrupt .png",
        (*TRAIN, "images", *OUT),
        text("images/a.png", "not a png"),
        "run",
        api=loads("images"),
        error=DataError,
    ),
    # --- names and paths ---
    Case(
        "unknown-dataset",
        "an unknown dataset name",
        (*TRAIN, "cifar10", *OUT),
        out="run",
        api=loads("cifar10"),
        error=DataError,
    ),
    Case(
        "unknown-split",
        "an unknown split of a named dataset",
        (*TRAIN, "digits:val", *OUT),
        out="run",
        api=loads("digits:val"),
        error=DataError,
    ),
    Case(
        "missing-path",
        "a path that does not exist",
        (*TRAIN, "nowhere/data.csv", *OUT),
        out="run",
        api=loads("nowhere/data.csv"),
        error=DataError,
    ),
    Case(
        "no-data-dir",
        "a named dataset with no data directory set",
        (*TRAIN, "mnist", *OUT),
        out="run",
        api=loads("mnist"),
        error=DataError,
        env={"VAEKIT_DATA": None},
    ),
    Case(
        "data-dir-empty",
        "a named dataset missing from --data-dir",
        (*TRAIN, "fashion-mnist", *OUT, "--data-dir", "data"),
        lambda d: (d / "data").mkdir(),
        "run",
        api=loads("fashion-mnist", data_dir="data"),
        error=DataError,
    ),
    Case(
        "out-not-writable",
        "an output directory that cannot be written (its parent is a file)",
        (*TRAIN, "digits", "--out", "notes.txt/run"),
        text("notes.txt", "x"),
        "notes.txt/run",
        error=ConfigError,
    ),
    Case(
        "out-nested-new",
        "--out in new nested folders, with data that then fails",
        (*TRAIN, "data.npy", "--out", "a/b/run"),
        with_nan,
        "a",
        error=DataError,
    ),
    Case(
        "out-exists",
        "--out holding a model already",
        (*TRAIN, "digits", "--out", "vae"),
        runs=("vae",),
        error=ConfigError,
    ),
    Case(
        "out-interrupted",
        "--out holding an interrupted run's checkpoint, without --resume",
        (*TRAIN, "digits", *OUT),
        text("run/checkpoint.safetensors", b"the checkpoint of an interrupted run"),
        error=ConfigError,
    ),
    Case(
        "resume-nothing",
        "--resume with no checkpoint to resume from",
        (*TRAIN, "data.npy", *OUT, "--resume"),
        npy("data.npy", table(10)),
        "run",
        api=lambda: VAE().fit(table(10), checkpoint_path="run/checkpoint.pt", resume=True),
        error=ModelFileError,
    ),
    # --- parameters ---
    Case(
        "latent-dim-0",
        "--latent-dim 0",
        (*TRAIN, "digits", *OUT, "--latent-dim", "0"),
        out="run",
        api=fit_params(latent_dim=0),
        error=ConfigError,
    ),
    Case(
        "epochs-0",
        "--epochs 0",
        (*TRAIN, "digits", *OUT, "--epochs", "0"),
        out="run",
        api=fit_params(epochs=0),
        error=ConfigError,
    ),
    Case(
        "batch-size-0",
        "--batch-size 0",
        (*TRAIN, "digits", *OUT, "--batch-size", "0"),
        out="run",
        api=fit_params(batch_size=0),
        error=ConfigError,
    ),
    Case(
        "beta-negative",
        "--beta -1",
        (*TRAIN, "digits", *OUT, "--beta", "-1"),
        out="run",
        api=fit_params(beta=-1.0),
        error=ConfigError,
    ),
    Case(
        "validation-fraction",
        "--validation-fraction 1.5",
        (*TRAIN, "digits", *OUT, "--validation-fraction", "1.5"),
        out="run",
        api=fit_params(validation_fraction=1.5),
        error=ConfigError,
    ),
    Case(
        "learning-rate-nan",
        "--learning-rate nan",
        (*TRAIN, "digits", *OUT, "--learning-rate", "nan"),
        out="run",
        api=fit_params(learning_rate=float("nan")),
        error=ConfigError,
    ),
    Case(
        "lr-schedule-unknown",
        "--lr-schedule step",
        (*TRAIN, "digits", *OUT, "--lr-schedule", "step"),
        out="run",
        api=fit_params(lr_schedule="step"),
        error=ConfigError,
    ),
    Case(
        "hidden-dims-text",
        "--hidden-dims 512,abc",
        (*TRAIN, "digits", *OUT, "--hidden-dims", "512,abc"),
        out="run",
        api=fit_params(hidden_dims=(512, "abc")),
        error=ConfigError,
    ),
    Case(
        "patience-negative",
        "--patience -1",
        (*TRAIN, "digits", *OUT, "--patience", "-1"),
        out="run",
        api=fit_params(patience=-1),
        error=ConfigError,
    ),
    Case(
        "free-bits-negative",
        "--free-bits -0.5",
        (*TRAIN, "digits", *OUT, "--free-bits", "-0.5"),
        out="run",
        api=fit_params(free_bits=-0.5),
        error=ConfigError,
    ),
    Case(
        "unknown-model",
        "--model gan",
        (*TRAIN, "digits", *OUT, "--model", "gan"),
        out="run",
        error=ConfigError,
    ),
    Case(
        "unknown-architecture",
        "--architecture transformer",
        (*TRAIN, "digits", *OUT, "--architecture", "transformer"),
        out="run",
        api=fit_params(architecture="transformer"),
        error=ConfigError,
    ),
    Case(
        "unknown-device",
        "--device tpu",
        (*TRAIN, "digits", *OUT, "--device", "tpu"),
        out="run",
        api=fit_params(device="tpu"),
        error=ConfigError,
    ),
    Case(
        "conv-on-table",
        "--architecture conv on tabular data",
        (*TRAIN, "data.npy", *OUT, "--architecture", "conv"),
        npy("data.npy", table(10)),
        "run",
        api=fit("data.npy", architecture="conv"),
        error=ConfigError,
    ),
    # --- saved models ---
    Case(
        "info-not-a-run",
        "vaekit info on a folder that is not a run",
        ("info", "folder"),
        lambda d: write(d / "folder" / "notes.txt", "x") and None,
        api=lambda: load("folder"),
        error=ModelFileError,
    ),
    Case(
        "info-missing",
        "vaekit info on a path that does not exist",
        ("info", "nowhere"),
        api=lambda: load("nowhere"),
        error=ModelFileError,
    ),
    Case(
        "weights-truncated",
        "a truncated model.safetensors",
        ("embed", "vae", "data.npy", "--out", "z.npy"),
        both(npy("data.npy", table(4)), edit_run("vae", truncate_weights)),
        "z.npy",
        runs=("vae",),
        api=lambda: load("vae"),
        error=ModelFileError,
    ),
    Case(
        "weights-tampered",
        "a tampered model.safetensors (one byte changed)",
        ("embed", "vae", "data.npy", "--out", "z.npy"),
        both(npy("data.npy", table(4)), edit_run("vae", tamper_weights)),
        "z.npy",
        runs=("vae",),
        api=lambda: load("vae"),
        error=ModelFileError,
        subprocess=True,
    ),
    Case(
        "weights-missing",
        "a run without model.safetensors",
        ("info", "vae"),
        edit_run("vae", lambda run: (run / "model.safetensors").unlink()),
        runs=("vae",),
        api=lambda: load("vae"),
        error=ModelFileError,
    ),
    Case(
        "config-missing",
        "a run without config.json",
        ("info", "vae"),
        edit_run("vae", lambda run: (run / "config.json").unlink()),
        runs=("vae",),
        api=lambda: load("vae"),
        error=ModelFileError,
    ),
    Case(
        "config-invalid",
        "a config.json that is not JSON",
        ("info", "vae"),
        edit_run("vae", lambda run: write(run / "config.json", "{not json")),
        runs=("vae",),
        api=lambda: load("vae"),
        error=ModelFileError,
    ),
    Case(
        "config-not-object",
        "a config.json holding a list",
        ("info", "vae"),
        edit_run("vae", lambda run: write(run / "config.json", "[1, 2]")),
        runs=("vae",),
        api=lambda: load("vae"),
        error=ModelFileError,
    ),
    Case(
        "config-newer",
        "a config.json from a newer model format",
        ("info", "vae"),
        edit_run("vae", edit_config(newer_format)),
        runs=("vae",),
        api=lambda: load("vae"),
        error=ModelFileError,
    ),
    Case(
        "config-mismatch",
        "a config.json that does not match the weights",
        ("info", "vae"),
        edit_run("vae", edit_config(other_latent_dim)),
        runs=("vae",),
        api=lambda: load("vae"),
        error=ModelFileError,
    ),
    # --- embed ---
    Case(
        "embed-suffix",
        "vaekit embed with an unknown output suffix",
        ("embed", "vae", "data.npy", "--out", "z.txt"),
        npy("data.npy", table(4)),
        "z.txt",
        runs=("vae",),
        error=ConfigError,
    ),
    Case(
        "embed-features",
        "data with a different feature count than the model at embed time",
        ("embed", "vae", "data.npy", "--out", "z.npy"),
        npy("data.npy", table(4, cols=3)),
        "z.npy",
        runs=("vae",),
        api=transform("vae", "data.npy"),
        error=DataError,
        subprocess=True,
    ),
    Case(
        "embed-images",
        "embedding image data with a tabular run",
        ("embed", "vae", "images", "--out", "z.csv"),
        eight_by_eight_images,
        "z.csv",
        runs=("vae",),
        api=transform("vae", "images"),
        error=DataError,
    ),
    Case(
        "embed-nan",
        "NaN values at embed time",
        ("embed", "vae", "data.npy", "--out", "z.parquet"),
        with_nan,
        "z.parquet",
        runs=("vae",),
        api=transform("vae", "data.npy"),
        error=DataError,
    ),
    Case(
        "embed-logvar-ae",
        "--with-logvar with a plain autoencoder",
        ("embed", "ae", "data.npy", "--out", "z.npy", "--with-logvar"),
        npy("data.npy", table(4)),
        "z.npy",
        runs=("ae",),
        error=ConfigError,
    ),
    Case(
        "embed-out-not-writable",
        "vaekit embed to a folder that cannot be written",
        ("embed", "vae", "data.npy", "--out", "notes.txt/z.npy"),
        both(npy("data.npy", table(4)), text("notes.txt", "x")),
        "notes.txt/z.npy",
        runs=("vae",),
        error=ConfigError,
    ),
    Case(
        "embed-new-folder",
        "vaekit embed into a new folder, with data that then fails",
        ("embed", "vae", "data.npy", "--out", "new/z.npy"),
        npy("data.npy", table(4, cols=3)),
        "new",
        runs=("vae",),
        error=DataError,
    ),
    # --- labels ---
    Case(
        "single-class",
        "a single class where labels are needed (vaekit evaluate)",
        ("evaluate", "vae", "data.csv", "--label-column", "y", "--out", "report"),
        text("data.csv", "a,b,c,d,e,y\n" + "0.1,0.2,0.3,0.4,0.5,cat\n" * 12),
        "report",
        runs=("vae",),
        error=DataError,
    ),
    Case(
        "evaluate-features",
        "labelled data with a different feature count than the model (vaekit evaluate)",
        ("evaluate", "vae", "data.csv", "--label-column", "y", "--out", "report"),
        text("data.csv", "a,b,y\n" + "0.1,0.2,cat\n0.3,0.4,dog\n" * 6),
        "report",
        runs=("vae",),
        error=DataError,
    ),
    Case(
        "no-labels",
        "unlabelled data where labels are needed (vaekit evaluate)",
        ("evaluate", "vae", "data.npy", "--out", "report"),
        npy("data.npy", table(12)),
        "report",
        runs=("vae",),
        error=DataError,
    ),
    Case(
        "anomaly-label-everywhere",
        "--anomaly-label that every row has (vaekit detect)",
        ("detect", "vae", "data.csv", "--label-column", "y", "--anomaly-label", "cat", *SCORES),
        text("data.csv", "a,b,c,d,e,y\n" + "0.1,0.2,0.3,0.4,0.5,cat\n" * 4),
        "scores.csv",
        runs=("vae",),
        error=ConfigError,
    ),
    Case(
        "contamination",
        "--contamination 0.9 (vaekit detect)",
        ("detect", "vae", "data.npy", "--contamination", "0.9", *SCORES),
        npy("data.npy", table(4)),
        "scores.csv",
        runs=("vae",),
        error=ConfigError,
    ),
    Case(
        "excess-range",
        "--score excess on data outside [0, 1] (vaekit detect)",
        ("detect", "vae", "data.npy", "--score", "excess", "--contamination", "0.1", *SCORES),
        npy("data.npy", table(4) * 255),
        "scores.csv",
        runs=("vae",),
        error=DataError,
    ),
    Case(
        "detect-new-folder",
        "vaekit detect into a new folder, with data that then fails",
        ("detect", "vae", "data.npy", "--out", "new/scores.csv"),
        npy("data.npy", table(4, cols=3)),
        "new",
        runs=("vae",),
        error=DataError,
    ),
    # --- other commands ---
    Case(
        "download-unknown",
        "vaekit datasets download of an unknown name",
        ("datasets", "download", "unknown", "--data-dir", "data"),
        out="data",
        error=DataError,
    ),
    Case(
        "download-olivetti",
        "vaekit datasets download olivetti (it cannot be downloaded)",
        ("datasets", "download", "olivetti", "--data-dir", "data"),
        out="data",
        error=DataError,
    ),
    Case(
        "visualize-method",
        "vaekit visualize --method of an unknown kind",
        ("visualize", "vae", "data.npy", "--method", "pca", "--out", "report"),
        npy("data.npy", table(12)),
        "report",
        runs=("vae",),
        error=ConfigError,
    ),
    Case(
        "visualize-direct",
        "vaekit visualize --method direct with a 3-D latent space",
        ("visualize", "vae", "data.npy", "--method", "direct", "--out", "report"),
        npy("data.npy", table(12)),
        "report",
        runs=("vae",),
        error=ConfigError,
    ),
    Case(
        "generate-n-0",
        "vaekit generate -n 0",
        ("generate", "vae", "-n", "0", "--out", "samples.npy"),
        out="samples.npy",
        runs=("vae",),
        error=ConfigError,
    ),
    Case(
        "generate-ae",
        "vaekit generate with a plain autoencoder",
        ("generate", "ae", "--out", "samples.npy"),
        out="samples.npy",
        runs=("ae",),
        error=ConfigError,
    ),
    Case(
        "interpolate-range",
        "vaekit interpolate --to a row that does not exist",
        ("interpolate", "vae", "data.npy", "--from", "0", "--to", "99", "--out", "path.npy"),
        npy("data.npy", table(4)),
        "path.npy",
        runs=("vae",),
        error=DataError,
    ),
    Case(
        "export-format",
        "vaekit export --format of an unknown kind",
        ("export", "vae", "--format", "tflite", "--out", "encoder.tflite"),
        out="encoder.tflite",
        runs=("vae",),
        error=ConfigError,
    ),
    Case(
        "export-no-run",
        "vaekit export of a run that does not exist, into its default --out",
        ("export", "norun"),
        out="norun",
        error=ModelFileError,
    ),
    Case(
        "report-nothing",
        "vaekit report on a folder without results",
        ("report", "folder"),
        lambda d: (d / "folder").mkdir(),
        error=ModelFileError,
    ),
]


# --- running a case ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    return make_runs(tmp_path_factory.mktemp("runs"))


def prepare(case: Case, folder: Path, runs: Path) -> None:
    """Copy the case's runs into ``folder`` and build its bad input there."""
    for name in case.runs:
        shutil.copytree(runs / name, folder / name)
    if case.build is not None:
        case.build(folder)


def snapshot(folder: Path) -> dict[str, bytes | None]:
    """Every path under ``folder`` with its content (None for a folder)."""
    return {
        str(p.relative_to(folder)): None if p.is_dir() else p.read_bytes()
        for p in sorted(folder.rglob("*"))
    }


def invoke_in(folder: Path, case: Case) -> tuple[int, str]:
    """Run the case's command in-process from ``folder``: (exit code, stderr).

    Also checks that the library function behind the command raised ``case.error``.
    """
    raised: list[BaseException] = []
    call = cli._call

    def recording_call(job: Callable[..., dict], *args: Any, **kwargs: Any) -> dict:
        def recorded(*args: Any, **kwargs: Any) -> dict:
            try:
                return job(*args, **kwargs)
            except BaseException as exc:
                raised.append(exc)
                raise

        return call(recorded, *args, **kwargs)

    cwd = Path.cwd()
    os.chdir(folder)
    try:
        with mock.patch.object(cli, "_call", recording_call):
            result = CliRunner(env=case.env).invoke(app, list(case.args))
    finally:
        os.chdir(cwd)
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        f"{type(result.exception).__name__}: {result.exception}"
    )
    assert raised and isinstance(raised[-1], case.error), (raised, case.error)
    return result.exit_code, result.stderr


def check_one_sentence(message: str) -> None:
    """One sentence: no line break, ends with '.', no '. X' inside, no array dump, not huge."""
    assert "\n" not in message.strip(), message
    assert message.endswith("."), message
    assert not re.search(r"[.!?]\s+[A-Z][a-z]* [a-z]", message[:-1]), message
    assert "Traceback" not in message and "array(" not in message and "array=[" not in message
    assert len(message) < 400, message


def check_cli_result(case: Case, code: int, stderr: str) -> str:
    """The house rule for one CLI run; return the message (without ``error: ``)."""
    assert code == 2, stderr
    assert "Traceback" not in stderr, stderr
    lines = stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    message = lines[0].removeprefix("error: ")
    check_one_sentence(message)
    return message


MESSAGES: dict[str, str] = {}  # id -> message, filled by test_cli_case for the docs check


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_cli_case(case: Case, tmp_path: Path, runs: Path):
    prepare(case, tmp_path, runs)
    before = snapshot(tmp_path)
    code, stderr = invoke_in(tmp_path, case)
    MESSAGES[case.id] = check_cli_result(case, code, stderr)
    if case.out is not None:
        assert not (tmp_path / case.out).exists()
    assert snapshot(tmp_path) == before  # nothing written, nothing left half-done


@pytest.mark.parametrize("case", [c for c in CASES if c.api], ids=[c.id for c in CASES if c.api])
def test_api_case(case: Case, tmp_path: Path, runs: Path, monkeypatch):
    prepare(case, tmp_path, runs)
    monkeypatch.chdir(tmp_path)
    for key, value in case.env.items():
        if value is None:
            monkeypatch.delenv(key, raising=False)
        else:
            monkeypatch.setenv(key, value)
    with pytest.raises(case.error) as info:
        case.api()
    check_one_sentence(str(info.value))


def test_catalogue_is_large_and_distinct():
    ids = [c.id for c in CASES]
    assert len(ids) == len(set(ids)) and len(CASES) >= 30
    assert len({c.input for c in CASES}) == len(CASES)


# --- real processes ---------------------------------------------------------------------------

SUBPROCESS_CASES = [c for c in CASES if c.subprocess]


@pytest.fixture(scope="module")
def subprocess_results(tmp_path_factory, runs) -> dict[str, tuple[Path, dict, int, str]]:
    """Start every subprocess case at once (each pays Python + torch start-up), then collect."""
    started = {}
    for case in SUBPROCESS_CASES:
        folder = tmp_path_factory.mktemp(case.id)
        prepare(case, folder, runs)
        env = {k: v for k, v in os.environ.items() if k not in case.env}
        env.update({k: v for k, v in case.env.items() if v is not None})
        process = subprocess.Popen(
            [sys.executable, "-m", "vaekit", *case.args],
            cwd=folder,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        started[case.id] = (folder, snapshot(folder), process)
    results = {}
    for key, (folder, before, process) in started.items():
        _, stderr = process.communicate(timeout=300)
        results[key] = (folder, before, process.returncode, stderr)
    return results


@pytest.mark.parametrize("case", SUBPROCESS_CASES, ids=[c.id for c in SUBPROCESS_CASES])
def test_subprocess_case(case: Case, subprocess_results):
    folder, before, code, stderr = subprocess_results[case.id]
    message = check_cli_result(case, code, stderr)
    if case.id in MESSAGES:  # the in-process run said the same
        assert message == MESSAGES[case.id]
    assert snapshot(folder) == before


# --- the docs table ---------------------------------------------------------------------------


def render_table(messages: dict[str, str]) -> str:
    """docs/bad_inputs.md from the catalogue and its messages."""

    def cell(value: str) -> str:
        return value.replace("|", "\\|")

    lines = [
        "# Bad inputs and what vaekit says",
        "",
        "Generated by `python docs/make_bad_inputs.py` from the catalogue in",
        "`tests/test_bad_inputs.py`; do not edit by hand. Each command runs from a folder holding",
        "the bad input (and, where it names one, a small trained run `vae/` or `ae/`). Every one",
        "exits with code 2, prints `error: ` and the message below as its only line on stderr,",
        "and leaves the folder as it was.",
        "",
        "| input | command | message |",
        "| --- | --- | --- |",
    ]
    for case in CASES:
        lines.append(f"| {cell(case.input)} | `{cell(case.command)}` | {cell(messages[case.id])} |")
    return "\n".join(lines) + "\n"


def test_docs_table_is_current():
    if len(MESSAGES) < len(CASES):
        pytest.skip("needs every test_cli_case to have run first")
    assert DOC.is_file() and DOC.read_text() == render_table(MESSAGES), (
        "docs/bad_inputs.md is out of date; run python docs/make_bad_inputs.py"
    )


# --- properties of the loaders ----------------------------------------------------------------

LOADER_NAMES = ["g.npy", "g.npz", "g.csv", "g.csv.gz", "g.parquet", "g.gz", "g-idx3-ubyte"]
MAGICS = [b"", b"\x93NUMPY\x01\x00", b"PK\x03\x04", b"PAR1", b"\x1f\x8b", b"\x00\x00\x08\x02"]


@pytest.fixture(scope="module")
def scratch(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("props")


def loads_or_data_error(path: Path) -> None:
    try:
        ds = load_dataset(path)
    except DataError as exc:
        check_one_sentence(str(exc))
        return
    assert isinstance(ds, Dataset) and ds.X.size > 0
    # Images are float32; a table float64 unless its source was float32.
    assert ds.X.dtype in (np.float32, np.float64) and (ds.X.ndim == 2 or ds.X.dtype == np.float32)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    magic=st.sampled_from(MAGICS),
    body=st.binary(max_size=200),
    name=st.sampled_from(LOADER_NAMES),
    gz=st.booleans(),
)
def test_random_bytes_give_a_dataset_or_a_data_error(scratch, magic, body, name, gz):
    data = magic + body
    (scratch / name).write_bytes(gzip.compress(data) if gz else data)
    loads_or_data_error(scratch / name)


cells = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers().map(str),
    st.text(alphabet=',"\n\r ab.-e', max_size=6),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=st.lists(st.lists(cells, min_size=0, max_size=4), min_size=0, max_size=5))
def test_random_csv_gives_a_dataset_or_a_data_error(scratch, rows):
    (scratch / "t.csv").write_text("\n".join(",".join(row) for row in rows))
    loads_or_data_error(scratch / "t.csv")


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    files=st.lists(
        st.tuples(st.integers(1, 4), st.integers(1, 4), st.booleans()), min_size=0, max_size=4
    )
)
def test_random_image_folders_give_a_dataset_or_a_data_error(tmp_path_factory, files):
    folder = tmp_path_factory.mktemp("imgs")
    for i, (h, w, corrupt) in enumerate(files):
        if corrupt:
            write(folder / f"{i}.png", b"\x89PNG" + bytes(h * w))
        else:
            png(folder / f"{i}.png", h, w)
    loads_or_data_error(folder)


def _valid_files() -> dict[str, bytes]:
    """One small valid file per format, as bytes, for the damage property below."""
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    X = table(6, cols=3)
    files = {}
    buffer = io.BytesIO()
    np.save(buffer, X)
    files["v.npy"] = buffer.getvalue()
    buffer = io.BytesIO()
    np.savez_compressed(buffer, X=X, y=np.arange(6))
    files["v.npz"] = buffer.getvalue()
    buffer = io.BytesIO()
    pq.write_table(pa.table({"a": X[:, 0], "b": X[:, 1], "y": list("abcabc")}), buffer)
    files["v.parquet"] = buffer.getvalue()
    files["v.csv"] = ("a,b,c\n" + "\n".join(",".join(map(repr, r.tolist())) for r in X)).encode()
    files["v.csv.gz"] = gzip.compress(files["v.csv"])
    files["v-idx3-ubyte.gz"] = gzip.compress(idx_bytes(np.zeros((6, 2, 2), np.uint8)))
    return files


VALID_FILES = _valid_files()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    name=st.sampled_from(sorted(VALID_FILES)),
    cut=st.floats(0, 1),
    flips=st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(1, 255)), max_size=3),
)
def test_damaged_valid_files_give_a_dataset_or_a_data_error(scratch, name, cut, flips):
    """A valid file cut short and with a few bytes changed: never another exception."""
    data = bytearray(VALID_FILES[name][: round(len(VALID_FILES[name]) * cut)])
    for where, mask in flips:
        if data:
            data[int(where * len(data))] ^= mask
    (scratch / name).write_bytes(bytes(data))
    loads_or_data_error(scratch / name)
