"""ONNX export of the μ-encoder: onnxruntime reproduces transform, batch size is free, errors are
one clear line and nothing half-written is left behind."""

from __future__ import annotations

import json
import os
import sys

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.exceptions import NotFittedError
from typer.testing import CliRunner

from vaekit import VAE, Autoencoder, load
from vaekit.cli import app
from vaekit.datasets import load_dataset
from vaekit.errors import ConfigError
from vaekit.export import export_onnx, export_run

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

TOL = 1e-5  # max |onnxruntime - transform|
TINY = {"latent_dim": 4, "hidden_dims": (32,), "conv_channels": (8,), "epochs": 2}
runner = CliRunner()
TRAIN_FAST = ["--epochs", "2", "--latent-dim", "4", "--quiet", "--json"]


@pytest.fixture(scope="module")
def digits() -> np.ndarray:
    return load_digits().data.astype(np.float32)  # (1797, 64), pixel values 0..16


def run_onnx(path, X: np.ndarray) -> np.ndarray:
    """μ from the graph, fed X in the dtype the graph declares for its input."""
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    declared = session.get_inputs()[0].type  # "tensor(float)" or "tensor(double)"
    dtype = np.float64 if declared == "tensor(double)" else np.float32
    (mu,) = session.run(["mu"], {"x": np.ascontiguousarray(X, dtype)})
    return mu


# (estimator, how to shape the digits, standardized in the graph)
CASES = {
    # raw 0..16 values: Gaussian likelihood, standardization (constant pixels too) in the graph
    "vae-mlp-tabular": (VAE, lambda X: X, True),
    "vae-conv-8x8": (VAE, lambda X: (X / 16).reshape(-1, 8, 8), False),
    "vae-conv-gaussian-1x8x8": (VAE, lambda X: X.reshape(-1, 1, 8, 8), True),
    "ae-mlp-tabular": (Autoencoder, lambda X: X, True),
    "ae-conv-8x8": (Autoencoder, lambda X: (X / 16).reshape(-1, 8, 8), False),
}


@pytest.mark.parametrize("case", CASES)
def test_onnxruntime_reproduces_transform(digits, tmp_path, case):
    cls, shape, standardized = CASES[case]
    X = shape(digits)
    model = cls(**TINY, random_state=0).fit(X[:400])
    path = tmp_path / "encoder.onnx"

    result = export_onnx(model, path)

    assert result["standardized"] is standardized
    assert result["input"]["shape"] == ["batch", *X.shape[1:]]
    assert result["output"]["shape"] == ["batch", 4]
    assert result["max_abs_diff"] <= TOL
    held_out = X[400:]
    diff = np.abs(run_onnx(path, held_out) - model.transform(held_out)).max()
    print(f"{case}: max abs diff {diff:.3g}")
    assert diff <= TOL
    onnx.checker.check_model(str(path))
    assert [p.name for p in tmp_path.iterdir()] == ["encoder.onnx"]  # no temporary file left


def test_a_gaussian_table_is_standardized_in_float64_in_the_graph(tmp_path):
    """A timestamp-like column (1.7e9 ± 10) has no variation left in float32: the graph takes
    float64 and standardizes in it, as transform does, and its μ matches transform's."""
    rng = np.random.default_rng(0)
    X = np.column_stack([1.7e9 + rng.uniform(-10, 10, 400), rng.normal(size=(400, 2))])
    model = VAE(latent_dim=2, hidden_dims=(16,), epochs=5, random_state=0).fit(X)
    result = export_onnx(model, tmp_path / "encoder.onnx")
    assert result["input"]["dtype"] == "float64"
    assert result["max_abs_diff"] <= TOL
    mu = model.transform(X)
    assert mu.std(0).max() > 0.05  # μ varies, so a wrong standardization would show
    np.testing.assert_allclose(run_onnx(tmp_path / "encoder.onnx", X), mu, rtol=0, atol=TOL)


def test_an_export_that_disagrees_with_transform_is_not_written(digits, tmp_path, monkeypatch):
    import vaekit.export as export

    model = VAE(**TINY, random_state=0).fit(digits[:200])
    monkeypatch.setattr(export, "_onnxruntime_check", lambda model, data: 0.5)
    with pytest.raises(ConfigError, match=r"differs from transform's by up to 0\.5"):
        export_onnx(model, tmp_path / "encoder.onnx")
    assert list(tmp_path.iterdir()) == []


def test_batch_dimension_is_dynamic(digits, tmp_path):
    X = (digits / 16).reshape(-1, 8, 8)
    model = VAE(**TINY, random_state=0).fit(X[:200])
    path = tmp_path / "encoder.onnx"
    export_onnx(model, path)

    graph = onnx.load(str(path)).graph
    assert graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    assert graph.output[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    for n in (1, 37):
        mu = run_onnx(path, X[:n])
        assert mu.shape == (n, 4)
        assert np.abs(mu - model.transform(X[:n])).max() <= TOL


def test_opset_is_chosen_and_checked(digits, tmp_path):
    model = Autoencoder(**TINY, random_state=0).fit(digits[:100])
    path = tmp_path / "encoder.onnx"
    assert export_onnx(model, path, opset=13)["opset"] == 13
    assert onnx.load(str(path)).opset_import[0].version == 13
    with pytest.raises(ConfigError, match="opset must be an integer from 11 to 20"):
        export_onnx(model, tmp_path / "other.onnx", opset=99)


def test_failures_leave_nothing_behind(digits, tmp_path, monkeypatch):
    model = Autoencoder(**TINY, random_state=0).fit(digits[:100])
    with pytest.raises(NotFittedError):
        export_onnx(Autoencoder(), tmp_path / "encoder.onnx")

    path = tmp_path / "encoder.onnx"
    path.write_bytes(b"previous export")

    def broken(_proto):
        raise RuntimeError("simulated failure")

    monkeypatch.setattr(onnx.checker, "check_model", broken)
    with pytest.raises(RuntimeError, match="simulated failure"):
        export_onnx(model, path)
    assert path.read_bytes() == b"previous export"  # not replaced by a half-made file
    assert [p.name for p in tmp_path.iterdir()] == ["encoder.onnx"]


def test_missing_onnx_package_is_one_clear_sentence(digits, tmp_path, monkeypatch):
    model = Autoencoder(**TINY, random_state=0).fit(digits[:100])
    monkeypatch.setitem(sys.modules, "onnx", None)  # import onnx now raises ImportError
    with pytest.raises(ConfigError) as info:
        export_onnx(model, tmp_path / "encoder.onnx")
    assert str(info.value) == "ONNX export needs the 'onnx' package: pip install 'vaekit[onnx]'"
    assert not any(tmp_path.iterdir())


# ------------------------------------------------------------------ job and command


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    run = tmp_path_factory.mktemp("export") / "run"
    result = runner.invoke(app, ["train", "digits:train", "--out", str(run), *TRAIN_FAST])
    assert result.exit_code == 0, result.output
    return run


def test_export_command_end_to_end(run_dir, tmp_path):
    out = tmp_path / "encoder.onnx"
    result = runner.invoke(app, ["export", str(run_dir), "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["path"] == str(out) and summary["format"] == "onnx"
    assert summary["run"] == str(run_dir) and summary["opset"] == 17

    X = load_dataset("digits:test").X
    diff = np.abs(run_onnx(out, X) - load(run_dir).transform(X)).max()
    print(f"cli run: max abs diff {diff:.3g}")
    assert diff <= TOL


def test_export_run_checks_the_output_before_loading(tmp_path):
    # The output folder is checked first: no model needs to be loaded to report it.
    with pytest.raises(ConfigError, match="is not an existing folder"):
        export_run(tmp_path / "no-run", tmp_path / "missing" / "encoder.onnx")


BAD_CALLS = [
    (["--format", "tflite"], "format must be one of onnx; got 'tflite'."),
    (["--out", "{tmp}/missing/encoder.onnx"], "is not an existing folder; create it first"),
    (["--out", "{tmp}/file.txt/encoder.onnx"], "is not an existing folder"),
    (["--out", "{tmp}"], "is a directory"),
    (["--opset", "5"], "opset must be an integer from 11 to 20"),
]


@pytest.mark.parametrize(("extra", "message"), BAD_CALLS, ids=[a[0] for a, _ in BAD_CALLS])
def test_user_errors_are_one_line_with_exit_code_2(run_dir, tmp_path, extra, message):
    (tmp_path / "file.txt").write_text("x")
    args = ["export", str(run_dir), "--out", str(tmp_path / "encoder.onnx")]
    args += [a.format(tmp=tmp_path) for a in extra]
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit)  # typer.Exit(2), not a crash
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), result.stderr
    assert message in " ".join(result.stderr.split())  # rich may wrap long paths
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file.txt"]


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root can write anywhere")
def test_unwritable_output_folder(run_dir, tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        result = runner.invoke(app, ["export", str(run_dir), "--out", str(locked / "e.onnx")])
    finally:
        locked.chmod(0o700)
    assert result.exit_code == 2
    assert "Cannot write" in result.stderr and "Permission denied" in result.stderr
    assert not any(locked.iterdir())


def test_unwritable_output_folder_as_any_user(run_dir, tmp_path, monkeypatch):
    # The same failure as above for root too: the write probe is refused.
    def refuse(path, *args, **kwargs):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr("vaekit.persistence.open", refuse, raising=False)
    result = runner.invoke(app, ["export", str(run_dir), "--out", str(tmp_path / "e.onnx")])
    assert result.exit_code == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: Cannot write"), result.stderr
    assert "Permission denied" in result.stderr
    assert not any(tmp_path.iterdir())
