"""Anomaly detection: decision_function, predict, offset_, reconstruction error, `vaekit detect`."""

from __future__ import annotations

import csv
import json
import warnings

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.metrics import roc_auc_score
from typer.testing import CliRunner

from vaekit import VAE, Autoencoder, load
from vaekit.anomaly import anomaly_scores, detect_run
from vaekit.cli import app
from vaekit.datasets import load_dataset
from vaekit.errors import ConfigError, DataError, PosteriorCollapseWarning

SMALL = {"latent_dim": 4, "hidden_dims": (64,), "random_state": 0}
TRAIN, TEST = load_dataset("digits:train"), load_dataset("digits:test")
NOT_ZERO = ",".join(str(c) for c in range(1, 10))
runner = CliRunner()


def _fit(cls, X, **params):
    with warnings.catch_warnings():  # tiny one-class fits may use few units; not the point here
        warnings.simplefilter("ignore", PosteriorCollapseWarning)
        return cls(**{**SMALL, **params}).fit(X)


@pytest.fixture(scope="module")
def one_class():
    """A VAE and an AE trained on the zeros of digits:train only (133 images)."""
    zeros = TRAIN.X[TRAIN.y == 0]
    return {cls: _fit(cls, zeros, epochs=60) for cls in (VAE, Autoencoder)}


@pytest.fixture(scope="module")
def run_dir(one_class, tmp_path_factory):
    path = tmp_path_factory.mktemp("detect") / "run"
    one_class[VAE].save(path)
    return path


@pytest.mark.parametrize("cls", [VAE, Autoencoder])
def test_one_class_digits_auroc(one_class, cls):
    model = one_class[cls]
    anomalous = TEST.y != 0  # 405 other digits against 45 zeros
    scores = {"elbo": -model.score_samples(TEST.X)} if cls is VAE else {}
    scores["recon"] = model.reconstruction_error(TEST.X)
    if cls is VAE:
        scores["nll"] = anomaly_scores(model, TEST.X, "nll", k=20, random_state=0)
    for name, s in scores.items():
        # Measured 1.000 for every score; chance is 0.5 ± 0.05 at these class sizes.
        assert roc_auc_score(anomalous, s) > 0.95, name
    assert np.array_equal(anomaly_scores(model, TEST.X), -model.score_samples(TEST.X))


@pytest.mark.parametrize("cls", [VAE, Autoencoder])
def test_predict_flags_about_the_contamination(cls):
    model = _fit(cls, TRAIN.X, epochs=30, contamination=0.1)
    decision = model.decision_function(TEST.X)
    np.testing.assert_array_equal(decision, model.score_samples(TEST.X) - model.offset_)
    labels = model.predict(TEST.X)
    assert labels.dtype == np.int64 and set(np.unique(labels)) == {-1, 1}
    np.testing.assert_array_equal(labels, np.where(decision < 0, -1, 1))
    # offset_ is the 10% quantile of 135 validation rows: new rows like them are flagged at
    # about that rate (standard error ~0.03).
    assert 0.03 < np.mean(labels == -1) < 0.2
    # "auto" is the 5% quantile, so the threshold is lower and fewer rows are flagged.
    auto = clone(model).set_params(contamination="auto").fit(TRAIN.X)
    assert auto.offset_ < model.offset_


def test_contamination_is_validated():
    for bad in (0, 0.6, -0.1, "most", True, float("nan")):
        with pytest.raises(ConfigError, match="contamination"):
            VAE(contamination=bad, epochs=1).fit(TRAIN.X[:20])
    assert VAE().get_params()["contamination"] == "auto"


@pytest.mark.parametrize("cls", [VAE, Autoencoder])
def test_offset_survives_save_and_load(one_class, cls, tmp_path):
    model = one_class[cls]
    model.save(tmp_path / "m")
    loaded = load(tmp_path / "m")
    assert loaded.offset_ == model.offset_
    np.testing.assert_array_equal(loaded.predict(TEST.X), model.predict(TEST.X))
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert config["fitted"]["offset_"] == model.offset_
    assert ("active_units_" in config["fitted"]) == (cls is VAE)


def test_models_saved_without_offset_still_load(one_class, tmp_path):
    one_class[VAE].save(tmp_path / "m")
    config_path = tmp_path / "m" / "config.json"
    config = json.loads(config_path.read_text())
    for name in ("offset_", "active_units_", "kl_per_dim_"):
        del config["fitted"][name]
    config_path.write_text(json.dumps(config))
    loaded = load(tmp_path / "m")
    assert loaded.score_samples(TEST.X[:3]).shape == (3,)
    with pytest.raises(ConfigError, match="no offset_"):
        loaded.predict(TEST.X[:3])
    with pytest.raises(ConfigError, match="without an anomaly threshold"):
        detect_run(tmp_path / "m", "digits:test", tmp_path / "s.csv")
    # With --contamination the threshold comes from DATA's own scores: the top 10% are flagged.
    result = detect_run(tmp_path / "m", "digits:test", tmp_path / "s.csv", contamination=0.1)
    scores = -loaded.score_samples(TEST.X)  # --score auto is the ELBO for a VAE
    assert result["rows"] == len(TEST.X) == 450 and result["score"] == "elbo"
    assert result["threshold"] == pytest.approx(np.sort(scores)[-45], rel=1e-6)  # the 45th
    assert result["anomalies"] == int((scores > result["threshold"]).sum()) == 45
    with (tmp_path / "s.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [int(r["index"]) for r in rows] == list(range(450))
    np.testing.assert_allclose([float(r["score"]) for r in rows], scores, rtol=1e-9)
    flagged = [int(r["is_anomaly"]) for r in rows]
    assert flagged == [int(s > result["threshold"]) for s in scores]
    assert [int(r["label"]) for r in rows] == TEST.y.tolist()


def test_reconstruction_error_per_feature():
    bernoulli = _fit(Autoencoder, TRAIN.X[:300], epochs=3)
    gaussian = _fit(VAE, TRAIN.X[:300] * 16.0, epochs=3)  # not in [0, 1]: standardized
    assert gaussian.likelihood_ == "gaussian"
    for model, X in ((bernoulli, TEST.X[:20]), (gaussian, TEST.X[:20] * 16.0)):
        total = model.reconstruction_error(X)
        per_feature = model.reconstruction_error(X, per_feature=True)
        assert total.shape == (20,) and per_feature.shape == (20, 64)
        np.testing.assert_allclose(per_feature.sum(1), total, rtol=1e-10)
    assert np.all(bernoulli.reconstruction_error(TEST.X[:20], per_feature=True) >= 0)  # BCE
    # An autoencoder's score_samples is minus its reconstruction error.
    np.testing.assert_array_equal(
        bernoulli.score_samples(TEST.X[:20]), -bernoulli.reconstruction_error(TEST.X[:20])
    )
    images = _fit(Autoencoder, TRAIN.X[:100].reshape(-1, 8, 8), epochs=1)
    assert images.reconstruction_error(TEST.X[:5].reshape(-1, 8, 8), True).shape == (5, 8, 8)


def test_detect_cli_end_to_end(run_dir, tmp_path):
    out = tmp_path / "scores.csv"
    result = runner.invoke(
        app, ["detect", str(run_dir), "digits:test", "--out", str(out), "--anomaly-label", NOT_ZERO]
    )
    assert result.exit_code == 0, result.output
    assert "auroc" in result.output and "average_precision" in result.output
    with out.open() as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["index", "score", "is_anomaly", "label"]
    assert len(rows) == 450 and [int(r["index"]) for r in rows] == list(range(450))
    assert [int(r["label"]) for r in rows] == TEST.y.tolist()
    model = load(run_dir)
    np.testing.assert_allclose(
        [float(r["score"]) for r in rows], -model.score_samples(TEST.X), rtol=1e-9
    )
    # Without --contamination the threshold is the one stored at fit: predict's.
    flagged = np.array([int(r["is_anomaly"]) for r in rows])
    np.testing.assert_array_equal(flagged == 1, model.predict(TEST.X) == -1)
    assert not list(tmp_path.glob(".*.tmp"))  # written through a temporary file


def test_detect_ranks_an_overflowed_score_first_and_refuses_nan(run_dir, tmp_path, monkeypatch):
    """A row extreme enough to overflow its score to inf is the most anomalous, and AUROC is
    still computed; a NaN score is a clear error, and no output is written."""
    import vaekit.anomaly as anomaly_module

    truth = TEST.y != 0
    scores = np.where(truth, 1.0, 0.0)
    scores[np.flatnonzero(truth)[0]] = np.inf
    monkeypatch.setattr(anomaly_module, "anomaly_scores", lambda *a, **k: scores.copy())
    result = detect_run(run_dir, "digits:test", tmp_path / "s.csv", anomaly_label=NOT_ZERO)
    assert result["auroc"] == 1.0

    scores[0] = np.nan
    with pytest.raises(DataError, match=r"1 row\(s\) of .* could not be scored \(NaN\)"):
        detect_run(run_dir, "digits:test", tmp_path / "new" / "s.csv", anomaly_label=NOT_ZERO)
    assert not (tmp_path / "new").exists()


def test_contamination_flags_tied_rows_together_and_no_row_below_half_a_row(run_dir, tmp_path):
    """Twenty copies of one odd row among 180: at 5% (10 rows) the threshold falls on their
    shared score, and a strict `>` flagged none of them; a threshold takes all of a tie group
    or none, whichever is nearer the count asked (all twenty here, on a draw), with a warning.
    A share under half a row flags nothing, and says so, where it flagged one row of two."""
    X = np.concatenate([TEST.X[:180], np.ones((20, TEST.X.shape[1]))])  # all ink: the odd row
    np.save(tmp_path / "stuck.npy", X)
    said = r"20 rows of stuck\.npy tie at the score of the last of the 10 rows .* so 20 rows"
    with pytest.warns(UserWarning, match=said):
        result = detect_run(run_dir, tmp_path / "stuck.npy", tmp_path / "s.csv", contamination=0.05)
    with (tmp_path / "s.csv").open() as f:
        flagged = [int(r["index"]) for r in csv.DictReader(f) if r["is_anomaly"] == "1"]
    assert flagged == list(range(180, 200)) and result["anomalies"] == 20
    assert "10 of 200 rows asked, 20 flagged (ties)" in result["threshold_source"]
    # Sixty tied rows where 10 are asked for: flagging none of them is nearer than all sixty.
    X = np.concatenate([TEST.X[:140], np.ones((60, TEST.X.shape[1]))])
    np.save(tmp_path / "many.npy", X)
    with pytest.warns(UserWarning, match=r"so 0 rows are flagged \(without them"):
        result = detect_run(run_dir, tmp_path / "many.npy", tmp_path / "s.csv", contamination=0.05)
    assert result["anomalies"] == 0
    np.save(tmp_path / "two.npy", TEST.X[:2])
    with pytest.warns(UserWarning, match=r"0\.05 of the 2 rows of two\.npy is under half a row"):
        result = detect_run(run_dir, tmp_path / "two.npy", tmp_path / "t.csv", contamination=0.05)
    assert result["anomalies"] == 0


@pytest.mark.parametrize("contamination", [None, 0.1])
def test_detect_flags_rows_outside_a_bernoulli_models_support(run_dir, tmp_path, contamination):
    """Rows with pixels above 1 score +inf (probability 0) and are flagged, with the stored
    threshold or with --contamination (a quantile next to +inf must not become NaN); a file
    whose every row is outside [0, 1] was not scaled, and is refused."""
    X = TEST.X[:40].copy()
    X[[3, 17, 21, 30, 33, 39]] *= 2.0  # 6 of 40 rows, more than the 10% contamination
    np.save(tmp_path / "rows.npy", X)
    args = [] if contamination is None else ["--contamination", str(contamination)]
    with pytest.warns(UserWarning, match="6 of 40 rows"):
        result = detect_run(
            run_dir, tmp_path / "rows.npy", tmp_path / "s.csv", contamination=contamination
        )
    with (tmp_path / "s.csv").open() as f:
        rows = list(csv.DictReader(f))
    flagged = {int(r["index"]) for r in rows if r["is_anomaly"] == "1"}
    assert {3, 17, 21, 30, 33, 39} <= flagged and np.isfinite(result["threshold"])
    finite = [float(r["score"]) for r in rows if float(r["score"]) != np.inf]
    assert result["threshold"] <= max(finite)  # not float64's largest number
    assert [float(rows[i]["score"]) for i in (3, 17)] == [np.inf, np.inf]
    np.save(tmp_path / "unscaled.npy", TEST.X[:40] * 255)
    cli = runner.invoke(app, ["detect", str(run_dir), str(tmp_path / "unscaled.npy"), *args])
    assert cli.exit_code == 2 and "Every row of unscaled.npy has values outside" in cli.stderr
    assert "divide by 255" in cli.stderr
    # embed refuses the same file: μ(x) of inputs 255 times what the encoder saw means nothing.
    out = tmp_path / "mu.npy"
    cli = runner.invoke(
        app, ["embed", str(run_dir), str(tmp_path / "unscaled.npy"), "--out", str(out)]
    )
    assert cli.exit_code == 2 and "Every row of unscaled.npy has values outside" in cli.stderr
    assert "divide by 255" in cli.stderr and not out.exists()
    # So do the commands that decode from μ(x) of its rows.
    for command in (["interpolate", "--from", "0", "--to", "1"], ["traverse", "--index", "0"]):
        out = tmp_path / f"{command[0]}.npy"
        cli = runner.invoke(
            app,
            [
                command[0],
                str(run_dir),
                str(tmp_path / "unscaled.npy"),
                *command[1:],
                "--out",
                str(out),
            ],
        )
        assert cli.exit_code == 2 and "divide by 255" in cli.stderr and not out.exists()
    np.save(tmp_path / "doubled.npy", TEST.X[:40] + 1.0)  # a maximum of 2: not 8-bit pixels
    cli = runner.invoke(app, ["detect", str(run_dir), str(tmp_path / "doubled.npy"), *args])
    assert cli.exit_code == 2 and "divide by 255" not in cli.stderr


def test_detect_json_with_contamination(run_dir, tmp_path):
    result = runner.invoke(
        app,
        [
            "detect", str(run_dir), "digits:test", "--out", str(tmp_path / "s.csv"),
            "--score", "nll", "--k", "10", "--contamination", "0.1",
            "--anomaly-label", NOT_ZERO, "--json",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["score"] == "nll" and summary["k"] == 10 and summary["rows"] == 450
    assert summary["anomalies"] == 45  # the top 10% of DATA's own scores
    assert summary["true_anomalies"] == 405
    assert summary["auroc"] > 0.95 and summary["average_precision"] > 0.95


def test_detect_excess_from_the_command_line(run_dir, tmp_path):
    out = tmp_path / "s.csv"
    args = ["--score", "excess", "--contamination", "0.1", "--anomaly-label", NOT_ZERO, "--json"]
    result = runner.invoke(app, ["detect", str(run_dir), "digits:test", "--out", str(out), *args])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["score"] == "excess" and "own entropy" in summary["score_meaning"]
    with out.open() as f:
        scores = [float(r["score"]) for r in csv.DictReader(f)]
    np.testing.assert_allclose(scores, anomaly_scores(load(run_dir), TEST.X, "excess"), rtol=1e-9)
    assert summary["auroc"] > 0.95


def test_an_auroc_below_one_half_suggests_the_label_is_the_normal_class(run_dir, tmp_path):
    """The model was trained on zeros: naming them the anomalies gives an AUROC near 0."""
    result = detect_run(run_dir, "digits:test", tmp_path / "s.csv", anomaly_label="0")
    assert result["auroc"] < 0.1
    assert result["note"].startswith("AUROC below 0.5: the rows labelled 0 score as more typical")
    right = detect_run(run_dir, "digits:test", tmp_path / "s.csv", anomaly_label=NOT_ZERO)
    assert "note" not in right


BAD_DETECT = [
    (["--score", "iwae"], "--score must be one of"),
    (["--contamination", "0.7"], "--contamination must be in (0, 0.5]"),
    (["--contamination", "0"], "--contamination must be in (0, 0.5]"),
    (["--anomaly-label", "12"], "'12' (in --anomaly-label) is not among digits:test's labels"),
    (["--anomaly-label", "0,12,1,x"], "'12', 'x' (in --anomaly-label) are not among"),
    (["--anomaly-label", ","], "--anomaly-label ',' names no label; give one or more of"),
    (["--anomaly-label", "0,1,2,3,4,5,6,7,8,9"], "needs normal rows too"),
    (["--score", "recon"], "pass --contamination to threshold --score recon"),
    (["--k", "0", "--score", "nll"], "--k must be a positive integer"),
]


@pytest.mark.parametrize(("args", "message"), BAD_DETECT, ids=[a[0] for a, _ in BAD_DETECT])
def test_detect_user_errors(run_dir, tmp_path, args, message):
    out = tmp_path / "s.csv"
    result = runner.invoke(app, ["detect", str(run_dir), "digits:test", "--out", str(out), *args])
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), result.output
    assert message in result.output
    assert not out.exists() and not list(tmp_path.iterdir())


def test_detect_errors_that_depend_on_model_and_data(one_class, tmp_path):
    one_class[Autoencoder].save(tmp_path / "ae")
    with pytest.raises(ConfigError, match=r"--score elbo needs a VAE; .*: use --score recon"):
        detect_run(tmp_path / "ae", "digits:test", tmp_path / "s.csv", score="elbo")
    result = detect_run(tmp_path / "ae", "digits:test", tmp_path / "s.csv", anomaly_label="3")
    assert result["score"] == "recon" and result["true_anomalies"] == 46
    np.save(tmp_path / "unlabelled.npy", TEST.X[:10])
    with pytest.raises(ConfigError, match="has no labels"):
        detect_run(
            tmp_path / "ae", tmp_path / "unlabelled.npy", tmp_path / "t.csv", anomaly_label="1"
        )
    with pytest.raises(ConfigError, match=r"--out must end in \.csv"):
        detect_run(tmp_path / "ae", "digits:test", tmp_path / "s.txt")
    assert not (tmp_path / "t.csv").exists() and not (tmp_path / "s.txt").exists()


def test_excess_is_the_elbo_minus_the_entropy_of_the_pixels(one_class):
    vae = one_class[VAE]
    X = TEST.X[:20].copy()
    p = np.clip(X.astype(np.float64), 1e-300, 1.0)
    q = np.clip(1.0 - X.astype(np.float64), 1e-300, 1.0)
    entropy = -(X * np.log(p) + (1 - X) * np.log(q)).sum(axis=1)
    excess = anomaly_scores(vae, X, "excess")
    np.testing.assert_allclose(excess, -vae.score_samples(X) - entropy, rtol=1e-9)
    # Cross-entropy >= entropy and KL >= 0: no row can score below zero.
    assert (anomaly_scores(vae, TEST.X, "excess") > 0).all()
    binary = (X > 0.5).astype(X.dtype)  # nothing to subtract from a black-and-white image
    np.testing.assert_allclose(
        anomaly_scores(vae, binary, "excess"), -vae.score_samples(binary), rtol=1e-9
    )


def test_excess_per_ink_divides_by_the_ink_of_each_row(one_class):
    vae = one_class[VAE]
    X = TEST.X[:20].copy()
    X[0] = 0.0  # an empty image: divided by 1, not by 0
    ink = np.maximum(X.reshape(len(X), -1).sum(1, dtype=np.float64), 1.0)
    np.testing.assert_allclose(
        anomaly_scores(vae, X, "excess_per_ink"), anomaly_scores(vae, X, "excess") / ink
    )


def test_excess_corrects_the_complexity_bias_of_the_elbo():
    """Under a model of 8s, simpler digits look typical to -ELBO; the excess sees through it.

    Measured on digits with seeds 0-3: AUROC -ELBO 0.905-0.910, excess 0.981-0.982.
    """
    eights = _fit(VAE, TRAIN.X[TRAIN.y == 8], epochs=60)
    anomalous = TEST.y != 8
    elbo = roc_auc_score(anomalous, anomaly_scores(eights, TEST.X, "elbo"))
    excess = roc_auc_score(anomalous, anomaly_scores(eights, TEST.X, "excess"))
    assert excess > 0.96 and excess > elbo + 0.04, (elbo, excess)


@pytest.mark.parametrize("score", ["excess", "excess_per_ink"])
def test_excess_needs_a_fitted_bernoulli_vae_and_inputs_in_the_unit_interval(one_class, score):
    # Named as the Python argument it was passed as, not as the command-line option.
    with pytest.raises(ConfigError, match=f"^score='{score}' needs a VAE; .*: use score='recon'"):
        anomaly_scores(one_class[Autoencoder], TEST.X, score)
    gaussian = _fit(VAE, np.random.default_rng(0).normal(size=(64, 3)), epochs=2)
    with pytest.raises(ConfigError, match=f"^score='{score}' is for inputs in \\[0, 1\\]"):
        anomaly_scores(gaussian, np.zeros((2, 3)), score)
    # Rows outside [0, 1] have probability 0: the most anomalous, with a warning.
    with pytest.warns(UserWarning, match="every row is: X was probably not scaled"):
        assert np.isposinf(anomaly_scores(one_class[VAE], TEST.X[:2] * 2, score)).all()
    rows = TEST.X[:4].copy()
    rows[2] *= 1.5  # the one with pixels above 1
    with pytest.warns(UserWarning, match=r"1 of 4 rows of X have values outside \[0, 1\]"):
        scores = anomaly_scores(one_class[VAE], rows, score)
    assert np.isposinf(scores[2]) and np.isfinite(np.delete(scores, 2)).all()
    np.testing.assert_allclose(
        np.delete(scores, 2), anomaly_scores(one_class[VAE], rows[[0, 1, 3]], score)
    )
    with pytest.raises(NotFittedError):
        anomaly_scores(VAE(), TEST.X[:2], score)


def test_named_classes_are_chosen_by_name_only():
    """Folders named "3" and "7": "7" is the folder; "1" (the code of folder "7") is refused
    instead of silently meaning it."""
    from types import SimpleNamespace

    from vaekit.anomaly import _true_anomalies

    dataset = SimpleNamespace(name="faces", y=np.array([0, 0, 1]), classes=["3", "7"])
    assert _true_anomalies(dataset, "7").tolist() == [False, False, True]
    with pytest.raises(ConfigError, match="not among faces's labels \\(3, 7\\)"):
        _true_anomalies(dataset, "1")


def test_a_class_name_with_a_comma_is_chosen_whole():
    """A folder "odd,one" could not be named: the option splits on commas."""
    from types import SimpleNamespace

    from vaekit.anomaly import _true_anomalies

    dataset = SimpleNamespace(name="imgs", y=np.array([0, 1, 2]), classes=["even", "odd,one", "z"])
    assert _true_anomalies(dataset, "odd,one").tolist() == [False, True, False]
    assert _true_anomalies(dataset, "even,z").tolist() == [True, False, True]
    with pytest.raises(ConfigError, match=r"not among imgs's labels \(even, 'odd,one', z\)"):
        _true_anomalies(dataset, "odd")


def test_float_labels_written_to_the_csv_are_accepted_back(run_dir, tmp_path):
    """A table whose labels are floats 0.0 / 1.0: the CSV shows "0" / "1", and
    --anomaly-label takes what it shows (or "1.0"); a value that is no label is refused."""
    X = TEST.X[:60]
    y = (TEST.y[:60] != 0).astype(np.float64)
    np.savez(tmp_path / "t.npz", X=X, y=y)
    out = tmp_path / "d.csv"
    for given in ("1", "1.0"):
        result = detect_run(run_dir, tmp_path / "t.npz", out=out, anomaly_label=given)
        assert result["true_anomalies"] == int(y.sum())
    with open(out, newline="") as f:
        assert {row["label"] for row in csv.DictReader(f)} == {"0", "1"}
    with pytest.raises(ConfigError, match=r"not among t\.npz's labels \(0, 1\)"):
        detect_run(run_dir, tmp_path / "t.npz", out=out, anomaly_label="2")


def test_detect_warns_when_the_stored_threshold_rests_on_few_rows(one_class, run_dir, tmp_path):
    """The one-class model held out 13 of its 133 rows: under 5 beyond the 5% quantile."""
    assert one_class[VAE].offset_rows_ == 13
    said = r"quantile of only 13 held-out scores, so the share of new rows that vaekit detect"
    with pytest.warns(UserWarning, match=said + r".*pass --contamination to flag that share"):
        detect_run(run_dir, "digits:test", out=tmp_path / "s.csv")
    with warnings.catch_warnings():  # a threshold from DATA's own scores needs no warning
        warnings.simplefilter("error", UserWarning)
        detect_run(run_dir, "digits:test", out=tmp_path / "s.csv", contamination=0.1)


@pytest.mark.parametrize("cls", [VAE, Autoencoder])
def test_a_value_beyond_float32_is_the_least_typical_row_not_an_inlier(cls):
    """float64 input is finite-checked, then standardized and cast to float32; 1e300 (a
    missing-value sentinel) overflowed there to inf, the score came out NaN, and predict
    called the row +1. Now the scoring methods score that row -inf (as a Bernoulli model does
    a row outside [0, 1]) without touching the others; transform, which has no such answer,
    refuses it."""
    X = TRAIN.X[:300].reshape(300, -1).astype(np.float64) * 16.0  # Gaussian, standardized
    model = _fit(cls, X, epochs=1)
    rows = X[:3].copy()
    clean = model.score_samples(rows)
    rows[1, 20] = 1e300
    with pytest.warns(UserWarning, match="1 of 3 rows of X hold values too large for the mod"):
        scores = model.score_samples(rows)
    assert scores[1] == -np.inf
    np.testing.assert_allclose(scores[[0, 2]], clean[[0, 2]], rtol=1e-6)
    with pytest.warns(UserWarning, match="if they are missing-value sentinels"):
        assert model.predict(rows)[1] == -1
    if cls is VAE:
        with pytest.warns(UserWarning, match="1 of 3 rows"):
            log_px = model.log_likelihood(rows, k=4)
        assert log_px[1] == -np.inf and np.isfinite(log_px[[0, 2]]).all()
    with pytest.warns(UserWarning, match="1 of 3 rows"):
        errors = model.reconstruction_error(rows, per_feature=True)
    assert np.isinf(errors).sum() == 1 and errors[1, 20] == np.inf
    for method in (model.transform, model.reconstruct):
        with pytest.raises(DataError, match=r"X holds 1e\+300 \(feature 20\), too large for"):
            method(rows)
    # Large but representable: scored, and far out.
    rows[1, 20] = 1e30
    assert model.predict(rows)[1] == -1


def test_a_sentinel_too_large_to_standardize_is_refused_at_fit():
    """Above ~1e154 the column's variance overflows float64: fit made scale_ inf and offset_
    NaN, then scored every row -inf."""
    X = TRAIN.X[:300].reshape(300, -1).astype(np.float64) * 16.0
    X[3, 7] = -1e160
    with pytest.raises(DataError, match=r"X holds -1e\+160 \(feature 7\), too large to stand"):
        VAE(latent_dim=2, hidden_dims=(8,), epochs=1).fit(X)


def test_a_stored_threshold_names_its_share_unrounded(tmp_path):
    """contamination=0.025 is "2.5%", not "2%" (a :.0% format)."""
    from vaekit.diagnostics import percent

    assert [percent(f) for f in (0.025, 0.05, 0.1, 1 / 3)] == ["2.5%", "5%", "10%", "33.3%"]
    X = load_dataset("digits").X[:300]
    VAE(latent_dim=2, epochs=1, contamination=0.025, random_state=0).fit(X).save(tmp_path / "m")
    np.save(tmp_path / "x.npy", X[:20])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # few held-out rows for 2.5%: said, and not the point
        result = detect_run(tmp_path / "m", tmp_path / "x.npy", out=tmp_path / "s.csv")
    assert "the least typical 2.5% of 30 rows of the validation split" in result["threshold_source"]
    # Without a validation split, the source says it was the training data, not either.
    VAE(latent_dim=2, epochs=1, validation_fraction=0, random_state=0).fit(X).save(tmp_path / "t")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = detect_run(tmp_path / "t", tmp_path / "x.npy", out=tmp_path / "s.csv")
    source = "the least typical 5% of 300 rows of the training data (no validation split)"
    assert source in result["threshold_source"]
