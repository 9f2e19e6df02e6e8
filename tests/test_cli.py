"""The vaekit command: each command end to end, and user errors as one line with exit code 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from vaekit import load, showcase
from vaekit.cli import app
from vaekit.datasets import load_dataset

runner = CliRunner()
TRAIN_FAST = ["--epochs", "3", "--latent-dim", "4", "--quiet"]


def invoke(*args: str):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    run = tmp_path_factory.mktemp("cli") / "run"
    result = invoke("train", "digits:train", "--out", run, *TRAIN_FAST, "--json")
    assert result.exit_code == 0, result.output
    return run


def test_train_writes_a_complete_run(run_dir):
    names = {p.name for p in run_dir.iterdir()}
    assert {"model.safetensors", "config.json", "history.json", "run.json"} <= names
    summary = json.loads((run_dir / "run.json").read_text())
    assert summary["n_samples"] == 1347 and summary["epochs_run"] == 3
    assert summary["architecture"] == "mlp" and summary["likelihood"] == "bernoulli"
    assert load(run_dir).latent_dim == 4


def test_info(run_dir):
    result = invoke("info", run_dir, "--json")
    assert result.exit_code == 0, result.output
    info = json.loads(result.output)
    assert info["class"] == "VAE" and info["epochs_run"] == 3 and info["data"] == "digits:train"


@pytest.mark.parametrize("suffix", [".npy", ".csv", ".parquet"])
def test_embed_writes_mu_in_every_format(run_dir, tmp_path, suffix):
    out = tmp_path / f"mu{suffix}"
    result = invoke("embed", run_dir, "digits:test", "--out", out)
    assert result.exit_code == 0, result.output
    test = load_dataset("digits:test")
    expected = load(run_dir).transform(test.X)
    if suffix == ".npy":
        got = np.load(out)
    elif suffix == ".csv":
        table = np.loadtxt(out, delimiter=",", skiprows=1)
        got, labels = table[:, :4], table[:, 4]
        np.testing.assert_array_equal(labels, test.y)
        assert out.read_text().splitlines()[0] == "vae0,vae1,vae2,vae3,label"
    else:
        table = pq.read_table(out)
        assert table.column_names == ["vae0", "vae1", "vae2", "vae3", "label"]
        got = np.column_stack([table[c].to_numpy() for c in table.column_names[:4]])
    np.testing.assert_array_equal(got.astype(np.float32), expected)
    assert [p.name for p in tmp_path.iterdir()] == [out.name]  # no temporary file left


def test_embed_with_logvar(run_dir, tmp_path):
    out = tmp_path / "mu.npy"
    assert invoke("embed", run_dir, "digits", "--out", out, "--with-logvar").exit_code == 0
    got = np.load(out)
    mu, logvar = load(run_dir).encode(load_dataset("digits").X)
    assert got.shape == (1797, 8)
    np.testing.assert_array_equal(got, np.concatenate([mu, logvar], axis=1))


def test_train_ae_and_files(tmp_path):
    X = np.random.default_rng(0).normal(size=(120, 5)).astype(np.float32)
    np.save(tmp_path / "x.npy", X)
    run = tmp_path / "ae"
    result = invoke("train", tmp_path / "x.npy", "--out", run, "--model", "ae", *TRAIN_FAST)
    assert result.exit_code == 0, result.output
    model = load(run)
    assert type(model).__name__ == "Autoencoder" and model.likelihood_ == "gaussian"


def test_demo_prints_the_comparison(tmp_path, monkeypatch):
    # The table and the report path, not the numbers: a short training budget is enough here
    # (tests/test_showcase.py runs the real demo and checks its numbers).
    monkeypatch.setitem(showcase.DEMO_PARAMS, "epochs", 2)
    out = tmp_path / "demo"
    result = invoke("demo", "--out", out)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    for title in ("classification (accuracy, test split)", "clustering (accuracy / nmi, test"):
        assert any(line.startswith(title) for line in lines), result.output
    for features in ("raw", "pca", "ae", "vae_mu", "vae_z"):
        assert sum(line.startswith(f"│ {features} ") for line in lines) == 2, result.output
    assert "VAE: 2 epochs" in result.output
    assert lines[-1] == f"report: {out / 'report.html'}"
    assert (out / "report.html").is_file() and (out / "results.json").is_file()


def test_datasets_download_from_a_mirror(tmp_path):
    source = Path(os.environ.get("VAEKIT_DATA", Path(__file__).parents[2] / "shared" / "data"))
    if not (source / "mnist").is_dir():
        pytest.skip(f"no MNIST files in {source}")
    mirror = (source / "mnist").as_uri()
    result = invoke("datasets", "download", "mnist", "--data-dir", tmp_path, "--base-url", mirror)
    assert result.exit_code == 0, result.output
    assert len(list((tmp_path / "mnist").glob("*.gz"))) == 4


BAD_CALLS = [
    (["train", "no-such-dataset", "--out", "{tmp}/r"], "no-such-dataset"),
    (["train", "{tmp}/missing.csv", "--out", "{tmp}/r"], "missing.csv"),
    (["train", "digits", "--out", "{tmp}/r", "--latent-dim", "0"], "latent_dim must be"),
    (["train", "digits", "--out", "{tmp}/r", "--beta", "-1"], "beta must be"),
    (["train", "digits", "--out", "{tmp}/r", "--epochs", "0"], "epochs must be"),
    (["train", "digits", "--out", "{tmp}/r", "--batch-size", "0"], "batch_size must be"),
    (["train", "digits", "--out", "{tmp}/r", "--model", "gan"], "model must be"),
    (["train", "digits", "--out", "{tmp}/file.txt/r"], "Cannot write the run directory"),
    (["train", "{tmp}/nan.npy", "--out", "{tmp}/r"], "NaN"),
    (["train", "{tmp}/empty.csv", "--out", "{tmp}/r"], "empty"),
    (["embed", "{tmp}/no-run", "digits", "--out", "{tmp}/z.npy"], "not a model directory"),
    (["embed", "{run}", "digits", "--out", "{tmp}/z.txt"], "--out must end in"),
    (["embed", "{run}", "{tmp}/three.csv", "--out", "{tmp}/z.npy"], "features"),
    (["info", "{tmp}/no-run"], "not a model directory"),
    (["datasets", "download", "olivetti", "--data-dir", "{tmp}"], "placed by hand"),
    # The showcase commands; tests/test_showcase.py runs more of their errors in-process.
    (["evaluate", "{run}", "{tmp}/x64.npy", "--out", "{tmp}/out"], "has no labels"),
    (
        ["evaluate", "{run}", "{tmp}/three.csv", "--label-column", "c", "--out", "{tmp}/out"],
        "has 2 features per sample, but the model",
    ),
    (["visualize", "{run}", "digits", "--out", "{tmp}/out", "--method", "direct"], "2-D latent"),
    (["report", "{tmp}"], "no results.json"),
]


@pytest.mark.parametrize(
    ("args", "message"), BAD_CALLS, ids=[" ".join(a[:2]) for a, _ in BAD_CALLS]
)
def test_user_errors_are_one_line_with_exit_code_2(tmp_path, run_dir, args, message):
    (tmp_path / "file.txt").write_text("x")
    np.save(tmp_path / "nan.npy", np.array([[1.0, np.nan], [2.0, 3.0], [1.0, 1.0]]))
    (tmp_path / "empty.csv").write_text("")
    (tmp_path / "three.csv").write_text("a,b,c\n1,2,3\n4,5,6\n")
    np.save(tmp_path / "x64.npy", np.random.default_rng(0).random((20, 64), dtype=np.float32))
    argv = [a.format(tmp=tmp_path, run=run_dir) for a in args]
    result = subprocess.run(
        [sys.executable, "-m", "vaekit", *argv], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), result.stderr
    assert message in result.stderr
    assert not (tmp_path / "r").exists() and not (tmp_path / "z.npy").exists()
    assert not (tmp_path / "out").exists()  # no empty output folder left behind either


def test_existing_run_is_not_overwritten_without_asking(run_dir):
    before = (run_dir / "model.safetensors").read_bytes()
    result = invoke("train", "digits", "--out", run_dir, *TRAIN_FAST)
    assert result.exit_code == 2
    assert (run_dir / "model.safetensors").read_bytes() == before
