"""vaekit sweep: one VAE per (k, β), the table, the suggestion and why, the files, the CLI."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from matplotlib.figure import Figure
from sklearn.model_selection import train_test_split
from typer.testing import CliRunner

from vaekit import VAE, plots
from vaekit.cli import app
from vaekit.datasets import load_dataset
from vaekit.errors import ConfigError, DataError
from vaekit.sweep import (
    ROW_FIELDS,
    SUGGESTION_RULE,
    parse_grid,
    setting_label,
    suggest,
    sweep,
    sweep_run,
)

FAST = {"epochs": 3, "hidden_dims": (64,)}
DIMS, BETAS = (2, 4), (1.0, 4.0)
runner = CliRunner()


@pytest.fixture(scope="module")
def split():
    ds = load_dataset("digits")
    return train_test_split(ds.X, ds.y, test_size=0.25, stratify=ds.y, random_state=0)


@pytest.fixture(scope="module")
def result(split):
    X_train, X_test, y_train, y_test = split
    return sweep(X_train, X_test, y_train, y_test, latent_dims=DIMS, betas=BETAS, **FAST)


def _no_training(monkeypatch):
    """Make any fit fail loudly: bad input must be caught before training."""

    def fit(self, *args, **kwargs):
        raise AssertionError("a VAE was trained before the input was checked")

    monkeypatch.setattr(VAE, "fit", fit)


# ------------------------------------------------------------------------------ library
def test_one_row_per_setting_with_every_field(result):
    rows = result["rows"]
    assert [(r["latent_dim"], r["beta"]) for r in rows] == [(2, 1.0), (2, 4.0), (4, 1.0), (4, 4.0)]
    for row in rows:
        assert tuple(row) == ROW_FIELDS
        assert row["setting"] == f"k={row['latent_dim']}, β={row['beta']:g}"
        assert 0 <= row["active_units"] <= row["latent_dim"]
        assert isinstance(row["collapsed"], bool)  # counted on the validation split
        assert row["test_kl"] >= 0 and np.isfinite(row["test_recon_nll"])
        assert row["test_neg_elbo"] == pytest.approx(
            row["test_recon_nll"] + row["test_kl"], abs=1e-3
        )
        assert 0 <= row["downstream_score"] <= 1 and row["epochs_run"] == 3
        assert 0 <= row["cv_score"] <= 1
        # The validation rows come from the same digits as the test rows.
        assert row["val_neg_elbo"] == pytest.approx(row["test_neg_elbo"], rel=0.2)
        kl = result["kl_per_dim"][row["setting"]]
        assert len(kl) == row["latent_dim"] and sum(kl) == pytest.approx(row["test_kl"], abs=1e-3)
    assert result["n_train"] == 1347 and result["n_test"] == 450
    assert result["downstream"]["metric"] == "accuracy"
    json.dumps(result)  # JSON-ready as returned


def test_higher_beta_gives_lower_kl(result):
    # Measured (3 epochs, hidden (64,)): KL 1.20 nats at β=1 and 0.07-0.10 at β=4, for k=2 and 4.
    kl = {(r["latent_dim"], r["beta"]): r["test_kl"] for r in result["rows"]}
    for k in DIMS:
        assert kl[k, 4.0] < 0.5 * kl[k, 1.0]


def test_suggestion_is_a_setting_and_says_why(result):
    s = result["suggestion"]
    by_setting = {r["setting"]: r for r in result["rows"]}
    assert s["setting"] in by_setting and s["rule"] == SUGGESTION_RULE
    assert (s["latent_dim"], s["beta"]) == (
        by_setting[s["setting"]]["latent_dim"],
        by_setting[s["setting"]]["beta"],
    )
    assert s["reason"].startswith(s["setting"]) and "cross-validated accuracy" in s["reason"]
    picked = by_setting[s["setting"]]
    assert f"On the test split: test accuracy {picked['downstream_score']:.3f}" in s["reason"]
    healthy = [r for r in result["rows"] if not r["collapsed"]] or result["rows"]
    assert not picked["collapsed"] or not any(not r["collapsed"] for r in result["rows"])
    assert picked["cv_score"] >= max(r["cv_score"] for r in healthy) - 0.005 - 1e-12


def _row(k, beta, score, neg_elbo, collapsed=False, test_score=0.5, test_neg_elbo=25.0):
    """A sweep row: ``score`` and ``neg_elbo`` are what the suggestion reads (CV score and
    validation -ELBO); the test numbers are only reported."""
    return {
        "setting": f"k={k}, β={beta:g}",
        "latent_dim": k,
        "beta": beta,
        "val_neg_elbo": neg_elbo,
        "collapsed": collapsed,
        "cv_score": score,
        "downstream_score": None if score is None else test_score,
        "test_neg_elbo": test_neg_elbo,
    }


def test_settings_that_the_grid_keeps_apart_have_their_own_labels():
    assert setting_label(2, 1.0) == "k=2, β=1" and setting_label(2, 0.5) == "k=2, β=0.5"
    assert setting_label(2, 1.0) != setting_label(2, 1.0000001)


def test_suggest_follows_the_rule():
    # The best score wins, but never a collapsed setting.
    rows = [_row(2, 1, 0.80, 30.0), _row(8, 1, 0.90, 31.0), _row(8, 4, 0.95, 29.0, True)]
    s = suggest(rows)
    assert s["setting"] == "k=8, β=1" and "k=8, β=4" in s["reason"]
    # Within the tolerance it is a tie, and the lower -ELBO wins.
    rows = [_row(2, 1, 0.900, 30.0), _row(8, 1, 0.903, 31.0), _row(16, 1, 0.85, 20.0)]
    s = suggest(rows)
    assert s["setting"] == "k=2, β=1" and "tied with k=8, β=1" in s["reason"]
    # A setting without a finite -ELBO can still be picked, and said so.
    rows = [_row(2, 1, 0.9, None)]
    assert "no finite -ELBO" in suggest(rows)["reason"]
    # Exactly 0.005 apart is tied too (best - 0.005 rounded above 0.4956 for best 0.5006).
    rows = [_row(2, 1, 0.5006, 30.0), _row(8, 1, 0.4956, 20.0)]
    assert suggest(rows)["setting"] == "k=8, β=1"
    # No labels: the lowest -ELBO.
    rows = [_row(2, 1, None, 30.0), _row(8, 1, None, 28.0), _row(16, 4, None, 20.0, True)]
    s = suggest(rows, None)
    assert s["setting"] == "k=8, β=1" and "no downstream score" in s["reason"]
    # Everything collapsed: rank them all, and say what to do.
    rows = [_row(2, 4, 0.5, 30.0, True), _row(8, 4, 0.6, 31.0, True)]
    s = suggest(rows)
    assert s["setting"] == "k=8, β=4" and "lower β" in s["reason"]


def test_suggest_never_reads_the_test_numbers():
    # The test columns favour k=2 by far; the training-split measures favour k=8.
    rows = [
        _row(2, 1, 0.80, 30.0, test_score=0.99, test_neg_elbo=10.0),
        _row(8, 1, 0.90, 31.0, test_score=0.60, test_neg_elbo=50.0),
    ]
    s = suggest(rows)
    assert s["setting"] == "k=8, β=1"
    assert "cross-validated accuracy 0.900" in s["reason"]
    assert "On the test split: test accuracy 0.600, test -ELBO 50.00 nats." in s["reason"]


def test_table_cells_keep_the_digits_a_tie_break_reads():
    from vaekit.sweep import _cell

    assert _cell(27.6312) == "27.6312" and _cell(27.57) == "27.57"  # not both "27.6"
    assert _cell(0.9733) == "0.9733" and _cell(4.0) == "4" and _cell(0.0002) == "0.0002"
    assert _cell(None) == "-" and _cell(True) == "yes"


def test_unlabelled_data_skips_downstream_and_says_so(split, tmp_path):
    X = split[0][:300]
    np.save(tmp_path / "x.npy", X)
    out = tmp_path / "out"
    result = sweep_run(tmp_path / "x.npy", out, [2], [1.0], **FAST)
    assert result["comparison"]["rows"][0]["downstream_score"] is None
    assert "No labels" in result["downstream"]["note"]
    assert result["n_train"] == 225 and result["n_test"] == 75  # 25% held out, seeded
    assert "-ELBO" in result["summary"]["reason"]
    markdown = (out / "results.md").read_text()
    assert "Note: No labels" in markdown
    assert "downstream" not in markdown.split("| k |")[1].splitlines()[0]  # no empty columns
    cli = runner.invoke(
        app, ["sweep", str(tmp_path / "x.npy"), "--latent-dims", "2", "--betas", "1",
              "--epochs", "1", "--out", str(tmp_path / "cli")],
    )  # fmt: skip
    assert cli.exit_code == 0, cli.output
    header = next(line for line in cli.stdout.splitlines() if "recon NLL" in line)
    assert "CV" not in header and "val -ELBO" in header


def test_sweep_figure_has_a_panel_per_measure(result):
    fig = plots.sweep_figure(result["rows"], suggested=(2, 1.0))
    assert isinstance(fig, Figure)
    titles = [ax.get_title() for ax in fig.axes]
    assert titles == [
        "Reconstruction (test)",
        "KL (test)",
        "Active units (test)",
        "Downstream accuracy (test)",
    ]
    assert all(len(ax.get_lines()) >= len(DIMS) for ax in fig.axes)
    unlabelled = [{**r, "downstream_score": None} for r in result["rows"]]
    assert len(plots.sweep_figure(unlabelled).axes) == 3
    assert plots.figure_to_png(fig).startswith(b"\x89PNG")
    with pytest.raises(DataError):
        plots.sweep_figure([])
    with pytest.raises(DataError, match="test_kl"):
        plots.sweep_figure([{"latent_dim": 2, "beta": 1, "test_recon_nll": 1, "active_units": 1}])


@pytest.mark.parametrize(
    ("text", "kind", "expected"),
    [("2, 8,16", int, (2, 8, 16)), ("0.5,1,4", float, (0.5, 1.0, 4.0)), ([0, 1], float, (0, 1))],
)
def test_parse_grid(text, kind, expected):
    assert parse_grid(text, "x", kind) == expected


@pytest.mark.parametrize(
    ("text", "kind", "message"),
    [
        ("", int, "is empty"),
        ("0", int, "positive integers"),
        ("a,b", int, "comma-separated"),
        ("1.5", int, "comma-separated"),
        ("2,2", int, "twice"),
        ("-1", float, ">= 0"),
        ("nan", float, "comma-separated"),
        ([], float, "is empty"),
    ],
)
def test_parse_grid_rejects(text, kind, message):
    with pytest.raises(ConfigError, match=message):
        parse_grid(text, "x", kind)


def test_bad_input_is_caught_before_training(split, monkeypatch):
    X_train, X_test, _, y_test = split
    _no_training(monkeypatch)
    with pytest.raises(ConfigError, match="latent_dims"):
        sweep(X_train, X_test, latent_dims=[0, 2])
    with pytest.raises(ConfigError, match="epochs"):
        sweep(X_train, X_test, latent_dims=[2], betas=[1], epochs=0)
    with pytest.raises(ConfigError, match="set by the sweep grid"):
        sweep(X_train, X_test, latent_dims=[2], betas=[1], beta=2.0)
    with pytest.raises(ConfigError, match="Unknown VAE parameter"):
        sweep(X_train, X_test, latent_dims=[2], betas=[1], epoch=3)
    with pytest.raises(DataError, match="same features"):
        sweep(X_train, X_test[:, :10], latent_dims=[2], betas=[1])
    with pytest.raises(DataError, match="single class"):
        sweep(X_train, X_test, np.zeros(len(X_train)), y_test, latent_dims=[2], betas=[1])


# ---------------------------------------------------------------------------------- CLI
def test_cli_end_to_end(tmp_path):
    out = tmp_path / "sweep"
    args = ["sweep", "digits", "--latent-dims", "2,4", "--betas", "1,4", "--epochs", "3"]
    result = runner.invoke(app, [*args, "--out", str(out)])
    assert result.exit_code == 0, result.output
    names = {p.relative_to(out).as_posix() for p in out.rglob("*")}
    assert {
        "results.json",
        "results.md",
        "results.csv",
        "report.html",
        "figures/sweep.png",
    } <= names
    saved = json.loads((out / "results.json").read_text())
    rows = saved["comparison"]["rows"]
    assert [r["setting"] for r in rows] == ["k=2, β=1", "k=2, β=4", "k=4, β=1", "k=4, β=4"]
    assert saved["n_train"] == 1347 and saved["n_test"] == 450  # stratified 25% held out
    assert "stratified" in saved["split"]
    summary = saved["summary"]
    assert summary["suggested"] in [r["setting"] for r in rows]
    assert summary["rule"] == SUGGESTION_RULE and summary["reason"]
    with (out / "results.csv").open() as f:
        table = list(csv.DictReader(f))
    assert len(table) == 4 and tuple(table[0]) == ROW_FIELDS
    markdown = (out / "results.md").read_text()
    assert f"**Suggested: {summary['suggested']}.**" in markdown and "Rule:" in markdown
    # The printed table, the suggestion and the rule.
    assert "accuracy" in result.stdout and "suggested:" in result.stdout
    assert "rule:" in result.stdout and "report.html" in result.stdout
    # The title whole at 80 columns (as a rich table title it lost a character per wrap).
    title = "(test split, but for the CV and val columns, which the suggestion reads; nats per"
    assert title in " ".join(result.stdout.split())
    k, beta = summary["latent_dim"], summary["beta"]
    train = f"vaekit train digits --latent-dim {k} --beta {beta:g} --epochs 3 --seed 0 --out RUN"
    assert train in " ".join(result.stdout.split())
    assert runner.invoke(app, ["report", str(out)]).exit_code == 0  # rebuilt from results.json


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--latent-dims", "0"], "positive integers"),
        (["--betas", "-1"], "numbers >= 0"),
        (["--latent-dims", "a,b"], "comma-separated"),
        (["--betas", ""], "is empty"),
        (["--epochs", "0"], "epochs must be a positive integer"),
    ],
)
def test_cli_bad_input_is_one_line_with_exit_code_2(tmp_path, monkeypatch, extra, message):
    _no_training(monkeypatch)
    out = tmp_path / "out"
    result = runner.invoke(app, ["sweep", "digits", "--out", str(out), *extra])
    assert result.exit_code == 2, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), result.stderr
    assert message in result.stderr
    assert not out.exists()


def test_cli_test_file_with_other_features_is_named_before_training(tmp_path, monkeypatch):
    _no_training(monkeypatch)
    np.save(tmp_path / "t.npy", np.zeros((20, 10), np.float32))
    out = tmp_path / "out"
    result = runner.invoke(
        app, ["sweep", "digits", "--test", str(tmp_path / "t.npy"), "--out", str(out)]
    )
    assert result.exit_code == 2, result.output
    assert "t.npy has 10 features per sample, but digits has 64" in result.stderr
    assert not out.exists()


def test_cli_unwritable_out_is_reported_before_training(tmp_path, monkeypatch):
    _no_training(monkeypatch)
    (tmp_path / "file").write_text("x")
    result = runner.invoke(app, ["sweep", "digits", "--out", str(tmp_path / "file" / "out")])
    assert result.exit_code == 2 and "Cannot write the output folder" in result.stderr
