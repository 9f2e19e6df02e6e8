"""The vaekit command on its success paths not covered in test_cli.py: the dataset list, the
version, training options that must reach the saved model, visualize's scatter options, and a
sweep on a continuous target."""

from __future__ import annotations

import csv
import json
import re

import numpy as np
import pytest
from typer.testing import CliRunner

import vaekit
from vaekit import load
from vaekit.cli import app
from vaekit.datasets import DATASET_NAMES, load_dataset

runner = CliRunner()
TINY = ["--epochs", "1", "--latent-dim", "3", "--hidden-dims", "32", "--quiet"]


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A VAE with a 2-D latent space, where visualize's default scatter is the direct one."""
    run = tmp_path_factory.mktemp("paths") / "run"
    args = ["--epochs", "1", "--latent-dim", "2", "--hidden-dims", "32", "--quiet"]
    result = invoke("train", "digits:train", "--out", run, *args)
    assert result.exit_code == 0, result.output
    return run


def test_datasets_list_names_every_dataset_and_where_it_is_read_from():
    result = invoke("datasets", "list")
    assert result.exit_code == 0, result.output
    listed = dict(line.split(maxsplit=1) for line in result.output.splitlines())
    assert list(listed) == list(DATASET_NAMES)
    assert {"digits", "mnist", "fashion-mnist", "olivetti"} <= set(listed)
    assert listed["digits"] == "embedded (scikit-learn)"
    assert all(where == "--data-dir / $VAEKIT_DATA" for n, where in listed.items() if n != "digits")


def test_version():
    result = invoke("--version")
    assert result.exit_code == 0, result.output
    assert result.output == f"vaekit {vaekit.__version__}\n"
    assert re.fullmatch(r"\d+\.\d+\.\d+\S*", vaekit.__version__)


def test_train_overwrite_replaces_the_run(tmp_path):
    run = tmp_path / "run"
    assert invoke("train", "digits:train", "--out", run, *TINY).exit_code == 0
    before = {name: (run / name).read_bytes() for name in ("config.json", "model.safetensors")}
    refused = invoke("train", "digits:train", "--out", run, *TINY, "--latent-dim", "5")
    assert refused.exit_code == 2 and "already holds a model" in refused.stderr
    assert (run / "model.safetensors").read_bytes() == before["model.safetensors"]

    result = invoke(
        "train", "digits:train", "--out", run, *TINY, "--latent-dim", "5", "--overwrite"
    )
    assert result.exit_code == 0, result.output
    config = json.loads((run / "config.json").read_text())
    assert config["params"]["latent_dim"] == 5
    assert json.loads(before["config.json"])["params"]["latent_dim"] == 3
    assert (run / "model.safetensors").read_bytes() != before["model.safetensors"]
    assert json.loads((run / "run.json").read_text())["latent_dim"] == 5
    model = load(run)
    assert model.latent_dim == 5
    assert model.transform(load_dataset("digits:test").X[:4]).shape == (4, 5)


def test_train_kl_warmup_and_dynamic_binarization_reach_the_model(tmp_path):
    run = tmp_path / "run"
    args = ["--epochs", "2", "--latent-dim", "3", "--hidden-dims", "32", "--quiet"]
    result = invoke(
        "train", "digits:train", "--out", run, *args, "--kl-warmup-epochs", "2",
        "--dynamic-binarization",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    params = json.loads((run / "config.json").read_text())["params"]
    assert params["kl_warmup_epochs"] == 2.0 and params["dynamic_binarization"] is True
    model = load(run)
    assert model.kl_warmup_epochs == 2.0 and model.dynamic_binarization is True
    # The warm-up was trained with: β (recorded at each epoch's last step) still ramps up
    # over the two epochs (by default β is 1 from the first step).
    betas = [h["beta"] for h in model.history_]
    assert 0 < betas[0] < 0.5 < betas[1] < 1.0


def test_train_schedule_clipping_variance_and_contamination_reach_the_model(tmp_path):
    X = np.random.default_rng(0).normal(size=(120, 4))  # a Gaussian table
    np.save(tmp_path / "table.npy", X)
    run = tmp_path / "run"
    result = invoke(
        "train", tmp_path / "table.npy", "--out", run, *TINY, "--epochs", "4",
        "--kl-warmup-epochs", "1", "--kl-schedule", "cyclical", "--max-grad-norm", "5",
        "--output-variance", "0.5", "--contamination", "0.2",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    model = load(run)
    assert (model.kl_schedule, model.max_grad_norm) == ("cyclical", 5.0)
    assert (model.output_variance, model.contamination) == (0.5, 0.2)
    assert model.module_.output_logvar().item() == pytest.approx(np.log(0.5))
    # Cyclical: a 1-epoch ramp, a 1-epoch plateau, again; linear would hold β at 1 from epoch 2.
    betas = [h["beta"] for h in model.history_]
    assert betas[1] == pytest.approx(1.0) and betas[2] < 1.0
    # The same run with the default contamination (0.05): the same weights, and a threshold
    # that flags fewer rows (score_samples below offset_ are anomalies).
    same = tmp_path / "same"
    result = invoke(
        "train", tmp_path / "table.npy", "--out", same, *TINY, "--epochs", "4",
        "--kl-warmup-epochs", "1", "--kl-schedule", "cyclical", "--max-grad-norm", "5",
        "--output-variance", "0.5",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    default = load(same)
    np.testing.assert_array_equal(model.transform(X), default.transform(X))
    assert default.contamination == "auto" and default.offset_ < model.offset_
    assert (model.predict(X) == -1).sum() > (default.predict(X) == -1).sum()

    plain = tmp_path / "plain"
    assert invoke("train", tmp_path / "table.npy", "--out", plain, *TINY).exit_code == 0
    model = load(plain)
    assert (model.output_variance, model.kl_schedule, model.max_grad_norm) == (
        "learned",
        "linear",
        None,
    )
    for flag, value, message in [
        ("--output-variance", "big", "--output-variance must be learned or a number"),
        ("--contamination", "most", "--contamination must be auto or a number"),
        ("--contamination", "0.9", "contamination"),
    ]:
        result = invoke(
            "train", tmp_path / "table.npy", "--out", tmp_path / "x", *TINY, flag, value
        )
        assert result.exit_code == 2 and message in result.stderr, result.output
    result = invoke("train", tmp_path / "table.npy", "--out", tmp_path / "x", "--model", "ae",
                    *TINY, "--kl-schedule", "cyclical")  # fmt: skip
    assert result.exit_code == 2 and "--kl-schedule" in result.stderr


def test_visualize_tsne_uses_at_most_max_points(run_dir, tmp_path):
    for max_points in (60, 100):
        out = tmp_path / f"vis{max_points}"
        args = ["--method", "tsne", "--max-points", max_points, "--json"]
        result = invoke("visualize", run_dir, "digits:test", "--out", out, *args)
        assert result.exit_code == 0, result.output
        saved = json.loads((out / "results.json").read_text())
        summary = saved["summary"]
        assert summary["rows_in_data"] == 450 and summary["rows_used"] == max_points
        assert summary["scatter"] == "tsne"
        # One scatter, by t-SNE (not the direct plot a 2-D latent gets by default), of that
        # many points.
        scatters = [name for name in saved["figures"] if name.startswith("latent_")]
        assert scatters == ["latent_tsne"]
        assert f"t-SNE of {max_points} points" in saved["figures"]["latent_tsne"]["caption"]
        assert (out / "figures" / "latent_tsne.png").is_file()
        assert not (out / "figures" / "latent_direct.png").exists()
        assert json.loads(result.output)["summary"] == summary


def test_sweep_on_a_continuous_target_reports_r2(tmp_path):
    digits = load_dataset("digits")
    X = digits.X[:300]
    # A continuous label: how much ink a digit has (what a VAE's code captures first), plus noise.
    ink = X.mean(1)
    target = (ink - ink.mean()) / ink.std() + np.random.default_rng(0).normal(0, 0.1, len(X))
    data = tmp_path / "ink.csv"
    header = ",".join([*(f"p{j}" for j in range(64)), "ink"])
    rows = [",".join([*(f"{v:g}" for v in x), f"{t:.6f}"]) for x, t in zip(X, target, strict=True)]
    data.write_text("\n".join([header, *rows]) + "\n")
    out = tmp_path / "sweep"
    args = ["--label-column", "ink", "--latent-dims", "2,4", "--betas", "1", "--epochs", "2"]
    argv = ["sweep", str(data), *args, "--out", str(out), "--quiet", "--precision", "bfloat16"]
    result = runner.invoke(app, argv, env={"COLUMNS": "200"})  # the table's columns unclipped
    assert result.exit_code == 0, result.output
    saved = json.loads((out / "results.json").read_text())
    # Every VAE of the sweep trained in mixed precision, and the train command it prints says so.
    assert saved["params"]["precision"] == "bfloat16"
    assert "--precision bfloat16" in result.stdout
    assert saved["downstream"]["task"] == "regression" and saved["downstream"]["metric"] == "r2"
    assert "stratified" not in saved["split"]  # a continuous target is split at random
    rows = saved["comparison"]["rows"]
    assert [r["setting"] for r in rows] == ["k=2, β=1", "k=4, β=1"]
    for row in rows:
        assert -1 < row["downstream_score"] <= 1 and row["cv_score"] <= 1
    assert max(r["downstream_score"] for r in rows) > 0.3  # ink is in the code
    # The printed table heads its score columns R², with the scores of results.json.
    header = next(line for line in result.stdout.splitlines() if " k " in line and "β" in line)
    assert "test R²" in header and "CV R²" in header and "acc" not in header
    for row in rows:
        assert f"{row['downstream_score']:.3f}" in result.stdout
    with (out / "results.csv").open() as f:
        table = list(csv.DictReader(f))
    assert [float(r["downstream_score"]) for r in table] == pytest.approx(
        [r["downstream_score"] for r in rows], abs=1e-4
    )
    assert "test r2" in (out / "results.md").read_text()


def test_train_architecture_conv_on_digits_uses_the_recorded_image_shape(tmp_path):
    """digits loads as 64 columns with its 8x8 shape recorded: --architecture conv trains on
    the images (a shell user cannot reshape X), and later commands take the flat rows."""
    run = tmp_path / "run"
    result = runner.invoke(
        app,
        ["train", "digits", "--out", str(run), "--architecture", "conv", "--epochs", "1",
         "--latent-dim", "2", "--quiet"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    model = load(run)
    assert model.architecture_ == "conv" and model.input_shape_ == (8, 8)
    z = tmp_path / "z.npy"
    result = runner.invoke(app, ["embed", str(run), "digits:test", "--out", str(z)])
    assert result.exit_code == 0, result.output
    assert np.load(z).shape == (450, 2)


def test_best_epoch_is_the_one_whose_weights_the_model_keeps():
    from vaekit.jobs import best_epoch

    history = [{"epoch": e, "val_loss": v} for e, v in enumerate([3.0, 2.0, 2.5, 2.0, 2.2], 1)]
    assert best_epoch(history) == 2  # fit restores the first of equal losses
    history[1]["val_loss"] = float("nan")
    assert best_epoch(history) == 4
    assert best_epoch([{"epoch": 1}, {"epoch": 2}]) == 2  # no validation split: the last
    assert best_epoch([]) is None


def test_train_and_info_report_the_best_epoch(tmp_path):
    run = tmp_path / "run"
    result = runner.invoke(
        app, ["train", "digits", "--out", str(run), "--epochs", "3", "--quiet", "--json"]
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    history = json.loads((run / "history.json").read_text())
    losses = [h["val_loss"] for h in history]
    assert summary["best_epoch"] == 1 + losses.index(min(losses))
    info = json.loads(runner.invoke(app, ["info", str(run), "--json"]).stdout)
    assert info["best_epoch"] == summary["best_epoch"]
