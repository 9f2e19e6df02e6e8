"""showcase: evaluate, visualize, report and demo end to end, through the CLI and the library."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from threadpoolctl import threadpool_limits
from typer.testing import CliRunner

from vaekit import VAE, load
from vaekit.cli import app
from vaekit.datasets import load_dataset
from vaekit.errors import ModelFileError
from vaekit.evaluation import classification_scores
from vaekit.showcase import _leak_note, report_run, visualize_run

from _helpers import needs_chromium, probe_in_chromium

runner = CliRunner()
TRAIN_FAST = ["--epochs", "3", "--quiet", "--json"]
FEATURE_SETS = {"raw", "pca", "ae", "vae_mu", "vae_z"}
IMG_SRC = re.compile(r'<img src="([^"]*)"')


def invoke(*args):
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return result


def invoke_json(*args) -> dict:
    return json.loads(invoke(*args, "--json").output)


def _figures(out: Path) -> set[str]:
    return {p.name for p in (out / "figures").iterdir()}


def _assert_self_contained(report: Path, n_figures: int) -> None:
    page = report.read_text(encoding="utf-8")
    sources = IMG_SRC.findall(page)
    assert len(sources) == n_figures
    assert all(src.startswith("data:image/png;base64,") for src in sources)


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    # On a busy 2-core machine, torch's and OpenBLAS's spin-waiting worker threads make the tiny
    # trainings and models here many times slower (measured: 10 VAE epochs on digits took 2.6 s
    # with 1 torch thread, 13.6 s with 2). The demo sets its own limits; this file gets them here.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    with threadpool_limits(1, user_api="blas"):
        yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return tmp_path_factory.mktemp("showcase")


@pytest.fixture(scope="module")
def runs(root):
    """Two tiny VAEs on digits:train (3 epochs): latent 2 and latent 4."""
    paths = {}
    for k in (2, 4):
        paths[k] = root / f"run{k}"
        invoke("train", "digits:train", "--out", paths[k], "--latent-dim", k, *TRAIN_FAST)
    return paths


@pytest.fixture(scope="module")
def evaluated(root, runs):
    """`vaekit evaluate` on the latent-4 run, with VAE.fit forbidden: the run's VAE is reused."""

    def refuse(self, *args, **kwargs):
        raise AssertionError("evaluate retrained the VAE")

    out = root / "eval"
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(VAE, "fit", refuse)
        result = invoke_json(
            "evaluate", runs[4], "digits:train", "--test", "digits:test", "--out", out
        )
    return out, result


# ---------------------------------------------------------------------------------- evaluate
def test_evaluate_compares_five_feature_sets_on_both_tasks(evaluated):
    out, result = evaluated
    saved = json.loads((out / "results.json").read_text())
    assert saved == {k: v for k, v in result.items() if k != "report"}
    rows = result["comparison"]["rows"]
    assert {(r["features"], r["task"]) for r in rows} == {
        (f, t) for f in FEATURE_SETS for t in ("classification", "clustering")
    }
    models = {(r["task"], r["model"]) for r in rows}
    assert {m for t, m in models if t == "classification"} == {
        "logreg",
        "linear_svm",
        "knn",
        "random_forest",
    }
    assert {m for t, m in models if t == "clustering"} == {"kmeans", "agglomerative", "hdbscan"}
    assert [row["features"] for row in result["summary"]] == [
        "raw",
        "pca",
        "ae",
        "vae_mu",
        "vae_z",
    ]
    assert {r["dim"] for r in rows if r["features"] != "raw"} == {4}
    assert result["n_train"] == 1347 and result["n_test"] == 450
    protocol = result["comparison"]["protocol"]
    assert protocol["split"] == "train: digits:train, test: digits:test"
    assert "not retrained" in protocol["extractors"]["vae"]
    assert protocol["extractors"]["vae"].startswith("VAE(epochs=3, ")  # what it was trained with
    # The baseline AE has the saved VAE's budget (3 epochs), not the estimator default.
    assert "epochs=3" in protocol["extractors"]["ae"]
    assert "note" not in protocol  # the test split is data the VAE never saw
    assert Path(result["report"]) == out / "report.html"
    _assert_self_contained(out / "report.html", len(result["figures"]))
    assert _figures(out) == {"latent_tsne.png", "loss_vae.png", "loss_ae_baseline.png"}


def test_evaluate_reports_how_both_models_were_trained(evaluated, runs):
    out, result = evaluated
    vae_params = result["parameters"]["vae"]
    saved = {k: v for k, v in load(runs[4]).get_params().items() if k != "verbose"}
    assert vae_params == json.loads(json.dumps(saved))  # tuples read back as lists
    assert vae_params["latent_dim"] == 4 and vae_params["epochs"] == 3
    assert "verbose" not in vae_params
    # The baseline AE shares the run's training parameters (its budget included).
    baseline = result["parameters"]["ae_baseline"]
    assert baseline["epochs"] == 3 and baseline["lr_schedule"] == vae_params["lr_schedule"]
    page = (out / "report.html").read_text(encoding="utf-8")
    assert "<h3>parameters</h3>" in page and "lr_schedule" in page


def test_evaluate_scores_the_runs_own_mu(evaluated, runs):
    _, result = evaluated
    vae = load(runs[4])
    train, test = load_dataset("digits:train"), load_dataset("digits:test")
    expected = classification_scores(
        vae.transform(train.X), train.y, vae.transform(test.X), test.y, models=("logreg",)
    )["models"]["logreg"]
    (row,) = [
        r
        for r in result["comparison"]["rows"]
        if r["features"] == "vae_mu" and r["model"] == "logreg"
    ]
    assert row["accuracy"] == expected["accuracy"] and row["params"] == expected["params"]


def test_evaluate_splits_data_without_test_and_handles_regression(root):
    """A tabular CSV with a continuous target: 75/25 split, regression rows, a leakage note."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(160, 5))
    target = X @ np.array([1.0, -2.0, 0.5, 0.0, 3.0]) + 0.1 * rng.normal(size=160)
    csv = root / "table.csv"
    header = "a,b,c,d,e,target"
    np.savetxt(csv, np.column_stack([X, target]), delimiter=",", header=header, comments="")
    run = root / "table-run"
    invoke("train", csv, "--out", run, "--label-column", "target", "--latent-dim", 2, *TRAIN_FAST)
    assert json.loads((run / "run.json").read_text())["data_path"] == str(csv.resolve())
    out = root / "table-eval"
    result = invoke_json("evaluate", run, csv, "--label-column", "target", "--out", out)
    assert result["tasks"] == ["regression"]
    assert result["n_train"] == 120 and result["n_test"] == 40
    assert {(r["features"], r["model"]) for r in result["comparison"]["rows"]} == {
        (f, m) for f in FEATURE_SETS for m in ("ridge", "random_forest")
    }
    protocol = result["comparison"]["protocol"]
    assert "75/25" in protocol["split"] and "stratified" not in protocol["split"]
    assert "trained on" in protocol["note"]  # the VAE saw the rows scored as test
    raw_r2 = next(r["r2"] for r in result["comparison"]["rows"] if r["features"] == "raw")
    assert raw_r2 > 0.95  # ridge on the raw columns recovers a linear target
    # visualize on the same tabular run: per-feature reconstruction, no image figures
    vis = visualize_run(run, csv, out=root / "table-vis", label_column="target")
    assert _figures(root / "table-vis") == {
        "latent_direct.png",
        "reconstructions.png",
        "loss_curves.png",
        "kl_per_dimension.png",
    }
    assert "feature" in vis["figures"]["reconstructions"]["caption"]


def test_leak_note_compares_the_recorded_training_data(tmp_path, monkeypatch):
    named = ("digits:train", None)
    assert _leak_note("runs/r1", named, "digits:train").startswith("The model in runs/r1 was")
    assert _leak_note("runs/r1", named, "Digits:Train ")
    assert _leak_note("runs/r1", named, "digits")  # the whole dataset holds the training split
    assert _leak_note("runs/r1", ("mnist", None), "mnist:test")
    assert _leak_note("runs/r1", named, "digits:test") is None
    assert _leak_note("runs/r1", ("mnist:train", None), "fashion-mnist:train") is None
    assert _leak_note("runs/r1", (None, None), "digits") is None
    # A file, however its path is written, recognised from another folder by the absolute path
    # that `vaekit train` records.
    (tmp_path / "sub").mkdir()
    data = tmp_path / "x.npy"
    data.touch()
    monkeypatch.chdir(tmp_path)
    assert _leak_note("runs/r1", ("x.npy", None), "./x.npy")
    assert _leak_note("runs/r1", ("x.npy", None), "y.npy") is None
    monkeypatch.chdir(tmp_path / "sub")
    assert _leak_note("runs/r1", ("x.npy", str(data)), "../x.npy")
    assert _leak_note("runs/r1", ("x.npy", str(data)), "x.npy") is None  # sub/x.npy is another file


def test_evaluate_says_when_the_model_learnt_from_other_data_than_the_baselines(tmp_path):
    """A VAE trained on 900 rows against PCA and an AE fit on 672 other ones: the table mixes
    data with method, and said nothing about it."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    np.savez(tmp_path / "a.npz", X=digits.data[:900] / 16, y=digits.target[:900])
    np.savez(tmp_path / "b.npz", X=digits.data[900:] / 16, y=digits.target[900:])
    run = tmp_path / "run"
    train = ["train", tmp_path / "a.npz", "--out", run, "--epochs", "1", "--latent-dim", "2"]
    assert invoke(*train).exit_code == 0
    other = invoke_json("evaluate", run, tmp_path / "b.npz", "--out", tmp_path / "ev", "-j", "1")
    note = other["comparison"]["protocol"]["note"]
    assert f"learnt from 900 rows of {tmp_path / 'a.npz'}, and PCA and the AE here" in note
    assert "672 training rows" in note
    own = invoke_json("evaluate", run, tmp_path / "a.npz", "--out", tmp_path / "ev2", "-j", "1")
    assert "learnt from" not in own["comparison"]["protocol"]["note"]  # the leak note only


def test_task_overrides_what_the_labels_look_like(tmp_path):
    """A count from 0 to 4 looks like five classes; --task regression scores it as the
    quantity it is, in evaluate and sweep alike."""
    rng = np.random.default_rng(0)
    X = rng.random((200, 4))
    lines = ["a,b,c,d,count"] + [
        ",".join(f"{v:.6f}" for v in row) + f",{int(row[0] * 5)}" for row in X
    ]
    (tmp_path / "t.csv").write_text("\n".join(lines) + "\n")
    run = tmp_path / "run"
    train = ("train", tmp_path / "t.csv", "--label-column", "count", "--latent-dim", "2")
    invoke(*train, "--out", run, *TRAIN_FAST)
    args = ("--out", tmp_path / "ev", "-j", "1")
    auto = invoke_json("evaluate", run, tmp_path / "t.csv", *args)
    assert {row["task"] for row in auto["comparison"]["rows"]} == {"classification", "clustering"}
    asked = invoke_json("evaluate", run, tmp_path / "t.csv", *args, "--task", "regression")
    assert {row["task"] for row in asked["comparison"]["rows"]} == {"regression"}
    assert "stratified" not in asked["comparison"]["protocol"]["split"]
    swept = invoke_json(
        "sweep", tmp_path / "t.csv", "--label-column", "count", "--latent-dims", "2",
        "--betas", "1", "--epochs", "1", "--task", "regression", "--out", tmp_path / "sw",
    )  # fmt: skip
    assert swept["downstream"]["metric"] == "r2"


def test_the_leak_note_goes_by_the_rows_where_the_training_data_can_be_read(runs):
    """evaluate's 75/25 split of digits with seed 0 is digits:train / digits:test: a run
    trained on digits:train has seen none of its test rows, though the names overlap."""
    from sklearn.model_selection import train_test_split

    from vaekit.showcase import _training_rows_counter

    run, digits = runs[4], load_dataset("digits")
    model = load(run)
    run_data = ("digits:train", None)
    for seed, expected in ((0, 0), (1, None)):
        _, test_rows = train_test_split(
            np.arange(len(digits.X)), test_size=0.25, stratify=digits.y, random_state=seed
        )
        X_test = digits.X[test_rows]  # rows compare by value, whatever their shape
        count = _training_rows_counter(model, run, run_data, "digits", X_test, None)
        note = _leak_note(run, run_data, "digits", count)
        if expected == 0:
            assert count() == 0 and note is None
        else:  # another seed: some of digits:train is scored as test, and counted
            shared = count()
            assert 0 < shared < len(test_rows)
            assert f"holds {shared} of the test rows scored here" in note
    # Scored on the training data itself: every row counted, without reading it again.
    import vaekit.showcase

    def refuse(*args, **kwargs):
        raise AssertionError("read the training data again")

    X_train = load_dataset("digits:train").X[:30]
    count = _training_rows_counter(model, run, run_data, "Digits:Train", X_train, None)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(vaekit.showcase, "load_run_data", refuse)
        assert count() == 30


def test_count_shared_rows_counts_repeated_rows_of_x_each_time():
    from vaekit.datasets import count_shared_rows

    seen = np.arange(12, dtype=np.float64).reshape(4, 3)
    X = np.stack([seen[1], seen[1], seen[3] + 0.5, seen[0]]).astype(np.float32)
    assert count_shared_rows(X, seen) == 3  # the two copies of row 1, and row 0


# --------------------------------------------------------------------------------- visualize
def test_visualize_direct_on_a_2d_latent_writes_image_figures(root, runs):
    out = root / "vis2"
    result = invoke_json("visualize", runs[2], "digits:test", "--out", out, "--method", "direct")
    assert _figures(out) == {
        "latent_direct.png",
        "reconstructions.png",
        "samples_prior.png",
        "loss_curves.png",
        "kl_per_dimension.png",
    }
    summary = result["summary"]
    assert summary["latent_dim"] == 2 and summary["rows_used"] == 450
    assert result["parameters"]["latent_dim"] == 2 and result["parameters"]["epochs"] == 3
    assert summary["kl_source"] == "validation split, the kept weights"
    assert summary["kl_per_dim"] == [round(v, 4) for v in load(runs[2]).kl_per_dim_]
    _assert_self_contained(out / "report.html", 5)


def test_visualize_draws_a_file_of_flat_rows_as_the_runs_images(root, runs, tmp_path):
    """digits' 64 columns saved to a .npy: run.json records 8x8, so the rows are drawn as
    images (and prior samples too), not as a 64-bar chart per feature; the inputs shown are
    spread over the file, not its first rows."""
    digits = load_dataset("digits:test")
    np.save(tmp_path / "flat.npy", digits.X.reshape(len(digits.X), -1))
    out = tmp_path / "vis"
    result = invoke_json("visualize", runs[2], tmp_path / "flat.npy", "--out", out)
    assert "samples_prior.png" in _figures(out)
    caption = result["figures"]["reconstructions"]["caption"]
    assert caption.startswith("20 inputs spread over the data (top)")


def test_the_reconstructions_shown_are_spread_over_the_rows(monkeypatch):
    """Olivetti's file holds ten faces per person in a row: its first 20 are two people."""
    from types import SimpleNamespace

    from vaekit import plots, showcase

    drawn = {}

    def grid(shown, reconstructed, image_shape, n, per_row):
        drawn["rows"] = shown[:, 0, 0].round().astype(int).tolist()
        return "figure"

    monkeypatch.setattr(plots, "reconstruction_grid", grid)
    monkeypatch.setattr(plots, "figure_to_png", lambda figure: b"png")
    X = np.repeat(np.arange(400.0), 4).reshape(400, 2, 2)  # row i holds the value i
    model = SimpleNamespace(reconstruct=lambda rows: rows)
    showcase._add_reconstructions({}, {}, model, X, (2, 2), None)
    rows = drawn["rows"]
    assert len(rows) == 20 and rows[0] == 0 and rows[-1] == 399
    assert len({row // 10 for row in rows}) == 20  # twenty people of ten rows each


def test_visualize_direct_refuses_a_4d_latent_before_writing(root, runs):
    from vaekit.errors import ConfigError

    out = root / "vis-refused"
    with pytest.raises(ConfigError, match=r"needs a 2-D latent space.*4 dimensions"):
        visualize_run(runs[4], "digits:test", out=out, method="direct")
    assert not out.exists()


def test_visualize_kl_falls_back_to_the_data_without_a_validation_record(root, runs, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(runs[2], run)
    history = json.loads((run / "history.json").read_text())
    for record in history:
        record.pop("val_kl_per_dim", None)
    (run / "history.json").write_text(json.dumps(history))
    config = json.loads((run / "config.json").read_text())
    del config["fitted"]["kl_per_dim_"]  # as a model saved before fit measured it
    (run / "config.json").write_text(json.dumps(config))
    result = visualize_run(run, "digits:test", out=tmp_path / "out", max_points=100)
    vae = load(run)
    X = load_dataset("digits:test").X
    rows = np.sort(np.random.default_rng(0).choice(len(X), 100, replace=False))
    mu, logvar = vae.encode(X[rows])
    kl = (0.5 * (mu**2 + np.exp(logvar) - 1 - logvar)).mean(axis=0)
    assert result["summary"]["kl_source"] == "mean over 100 rows"
    np.testing.assert_allclose(result["summary"]["kl_per_dim"], kl, atol=1e-4)


# ---------------------------------------------------------------------------- user errors
USER_ERRORS = [
    (["evaluate", "{run}", "digits", "--test", "{tmp}/x64.npy"], "--test (x64.npy) has no labels"),
    (["evaluate", "{tmp}/no-run", "digits"], "not a model directory"),
    (["evaluate", "{run}", "{tmp}/lonely.csv", "--label-column", "y"], "Cannot split lonely.csv"),
    (["evaluate", "{run}", "digits", "--jobs", "0"], "--jobs must be a positive number"),
    (["visualize", "{run}", "digits", "--method", "pca"], "method must be one of"),
    (["visualize", "{run}", "{tmp}/three.csv"], "has 3 features per sample"),
]


@pytest.mark.parametrize(("args", "message"), USER_ERRORS, ids=[a[0] for a, _ in USER_ERRORS])
def test_user_errors_are_one_line_and_leave_no_output_folder(runs, tmp_path, args, message):
    # In-process for speed; tests/test_cli.py runs a few of these as real subprocesses.
    np.save(tmp_path / "x64.npy", np.random.default_rng(0).random((20, 64), dtype=np.float32))
    (tmp_path / "three.csv").write_text("a,b,c\n1,2,3\n4,5,6\n")
    # 64 features like digits, but class "c" has one row: no stratified split is possible.
    header = ",".join([*(f"p{j}" for j in range(64)), "y"])
    rows = [",".join([f"{i / 9:.3f}"] * 64 + [label]) for i, label in enumerate("aaaabbbbc")]
    (tmp_path / "lonely.csv").write_text("\n".join([header, *rows]) + "\n")
    # Two new folders deep: every folder the command created goes again, not just the last.
    argv = [a.format(run=runs[4], tmp=tmp_path) for a in args]
    argv += ["--out", tmp_path / "out" / "deeper"]
    result = runner.invoke(app, [str(a) for a in argv])
    assert result.exit_code == 2, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), result.stderr
    assert message in " ".join(result.stderr.split()), result.stderr
    assert not (tmp_path / "out").exists()


def test_report_on_a_missing_folder_is_a_user_error(tmp_path):
    result = runner.invoke(app, ["report", str(tmp_path / "nothing")])
    assert result.exit_code == 2 and "is not a folder" in result.stderr


# ------------------------------------------------------------------------------------ report
def test_report_rebuilds_the_same_page_without_rerunning(evaluated, root, tmp_path):
    out, _ = evaluated
    before = (out / "report.html").read_bytes()
    (out / "report.html").unlink()
    result = invoke_json("report", out)
    assert result["reports"] == [str(out / "report.html")]
    assert (out / "report.html").read_bytes() == before
    # A folder holding output folders (here: the runs' parent) rebuilds each of them.
    rebuilt = report_run(root)
    assert str(out / "report.html") in rebuilt["reports"]
    assert all(Path(p).parent.parent == root for p in rebuilt["reports"])
    # ... and so does a folder further up (a project holding runs/RUN/evaluate), down to three
    # levels, skipping hidden folders.
    project = tmp_path / "project"
    shutil.copytree(out, project / "runs" / "a" / "evaluate")
    shutil.copytree(out, project / "runs" / ".trash" / "evaluate")
    shutil.copytree(out, project / "runs" / "a" / "b" / "evaluate")  # 4 levels down
    rebuilt = report_run(project)["reports"]
    assert rebuilt == [str(project / "runs" / "a" / "evaluate" / "report.html")]


def test_report_over_many_folders_rebuilds_the_good_ones_past_a_broken_one(evaluated, tmp_path):
    out, _ = evaluated
    for name in ("a", "b", "c"):
        shutil.copytree(out, tmp_path / name / "evaluate")
        (tmp_path / name / "evaluate" / "report.html").unlink()
    (tmp_path / "b" / "evaluate" / "results.json").write_text("{not json")
    result = runner.invoke(app, ["report", str(tmp_path)])
    assert result.exit_code == 2, result.output
    assert [line.split()[0] for line in result.stdout.splitlines()] == ["rebuilt:", "rebuilt:"]
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and str(tmp_path / "b" / "evaluate") in " ".join(result.stderr.split())
    assert (tmp_path / "a" / "evaluate" / "report.html").exists()
    assert (tmp_path / "c" / "evaluate" / "report.html").exists()
    assert not (tmp_path / "b" / "evaluate" / "report.html").exists()
    # Python lists it; with nothing rebuildable at all it is an error.
    assert list(report_run(tmp_path)["failed"]) == [str(tmp_path / "b" / "evaluate")]
    shutil.rmtree(tmp_path / "a")
    shutil.rmtree(tmp_path / "c")
    (tmp_path / "d" / "evaluate").mkdir(parents=True)
    (tmp_path / "d" / "evaluate" / "results.json").write_text("[]")
    with pytest.raises(ModelFileError, match="None of the 2 reports"):
        report_run(tmp_path)


# -------------------------------------------------------------------------------------- demo
@pytest.fixture(scope="module")
def demo(root):
    out = root / "demo"
    return out, invoke_json("demo", "--out", out)


def test_demo_compares_five_feature_sets_for_classification_and_clustering(demo):
    out, result = demo
    assert list(result)[:2] == ["title", "summary"]
    assert [row["features"] for row in result["summary"]] == [
        "raw",
        "pca",
        "ae",
        "vae_mu",
        "vae_z",
    ]
    rows = result["comparison"]["rows"]
    for task in ("classification", "clustering"):
        assert {r["features"] for r in rows if r["task"] == task} == FEATURE_SETS
    assert {r["dim"] for r in rows if r["features"] != "raw"} == {8}
    assert result["n_train"] == 1347 and result["n_test"] == 450
    assert result["parameters"]["vae"]["latent_dim"] == result["parameters"]["ae"]["latent_dim"]
    assert "beta" in result["parameters"]["vae"] and "beta" not in result["parameters"]["ae"]
    # The AE's time is its own training, not the block that also fits PCA and encodes.
    ae_seconds, block = result["models"]["ae"]["fit_seconds"], result["timings"]
    assert 0 < ae_seconds < block["ae_and_pca_fit_seconds"]
    saved = json.loads((out / "results.json").read_text())
    assert saved == {k: v for k, v in result.items() if k != "report"}


def test_demo_vae_mu_beats_or_ties_pca_on_logistic_regression(demo):
    _, result = demo
    logreg = {row["features"]: row["logreg accuracy"] for row in result["summary"]}
    assert logreg["vae_mu"] >= logreg["pca"], logreg
    assert logreg["vae_mu"] > logreg["vae_z"]  # μ(x) is the feature, not a noisy draw


def test_demo_report_is_self_contained_with_summary_first(demo):
    out, result = demo
    assert _figures(out) == {
        "latent_tsne.png",
        "reconstructions.png",
        "samples_prior.png",
        "loss_vae.png",
        "loss_ae.png",
        "kl_per_dimension.png",
    }
    page = (out / "report.html").read_text(encoding="utf-8")
    _assert_self_contained(out / "report.html", 6)
    assert page.index('id="summary"') < page.index('id="comparison"')
    assert Path(result["report"]) == out / "report.html"


@needs_chromium
def test_demo_report_renders_in_headless_chromium(demo, tmp_path):
    out, _ = demo
    check = probe_in_chromium((out / "report.html").read_text(encoding="utf-8"), tmp_path)
    assert check["images"] == 6 and check["broken"] == [] and check["errors"] == [], check
    assert check["summaryRows"] == 5


def test_evaluate_of_a_latent_space_wider_than_the_data_says_to_retrain(tmp_path):
    """PCA cannot have more components than features: the comparison at the same size is
    impossible, and the message says what to train instead (evaluate has no --latent-dim)."""
    from vaekit.errors import ConfigError
    from vaekit.showcase import evaluate_run

    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(80, 5)), np.repeat([0, 1], 40)
    np.savez(tmp_path / "t.npz", X=X, y=y)
    VAE(latent_dim=6, hidden_dims=(8,), epochs=1, random_state=0).fit(X).save(tmp_path / "run")
    with pytest.raises(ConfigError, match="train the model with --latent-dim 5 or less"):
        evaluate_run(tmp_path / "run", tmp_path / "t.npz", out=tmp_path / "report")
    assert not (tmp_path / "report").exists()


def test_evaluate_of_a_bernoulli_model_saved_with_a_fixed_output_variance(tmp_path):
    """Fits before 2026-11-22 ignored a fixed output_variance under the Bernoulli likelihood;
    such a saved model still evaluates (its comparison AE is not refused for it)."""
    from vaekit.showcase import evaluate_run

    rng = np.random.default_rng(0)
    X, y = rng.uniform(size=(80, 6)), np.repeat([0, 1], 40)  # in [0, 1]: Bernoulli
    np.savez(tmp_path / "t.npz", X=X, y=y)
    vae = VAE(latent_dim=2, hidden_dims=(8,), epochs=1, random_state=0).fit(X)
    vae.output_variance = 0.5  # as an older vaekit fitted and saved it
    vae.save(tmp_path / "run")
    result = evaluate_run(tmp_path / "run", tmp_path / "t.npz", out=tmp_path / "report", n_jobs=1)
    assert "ae" in {row["features"] for row in result["comparison"]["rows"]}
