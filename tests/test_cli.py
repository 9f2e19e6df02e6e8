"""The vaekit command: each command end to end, and user errors as one line with exit code 2."""

from __future__ import annotations

import csv
import json
import os
import re
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from vaekit import VAE, load, showcase
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
    assert summary["data"] == "digits:train" and summary["data_path"] is None  # a name, no file
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


def test_embed_syncs_its_rows_to_disk_before_the_final_name_appears(run_dir, tmp_path, monkeypatch):
    out, synced = tmp_path / "mu.npy", []
    fsync = os.fsync

    def spy(fd: int) -> None:
        synced.append((os.fstat(fd).st_size, out.exists()))
        fsync(fd)

    monkeypatch.setattr(os, "fsync", spy)
    assert invoke("embed", run_dir, "digits:test", "--out", out).exit_code == 0
    assert synced == [(out.stat().st_size, False)]  # the whole file, before the rename


@pytest.mark.parametrize(
    "command",
    [
        ["embed", "{run}", "{data}", "--out", "{data}"],
        ["detect", "{run}", "{data}", "--out", "{data}"],
        ["interpolate", "{run}", "{data}", "--from", "0", "--to", "1", "--out", "{data}"],
        ["traverse", "{run}", "{data}", "--index", "0", "--out", "{data}"],
    ],
    ids=["embed", "detect", "interpolate", "traverse"],
)
def test_a_command_never_writes_its_result_over_its_data(run_dir, tmp_path, command):
    """The atomic write replaced the input file with μ(x) or scores, exit code 0."""
    suffix = ".csv" if command[0] == "detect" else ".npy"
    data = tmp_path / f"x{suffix}"
    X = load_dataset("digits:test").X[:20]
    if suffix == ".npy":
        np.save(data, X)
    else:
        np.savetxt(data, X, delimiter=",", header=",".join(f"p{i}" for i in range(64)), comments="")
    before = data.read_bytes()
    result = invoke(*(part.format(run=run_dir, data=data) for part in command))
    assert result.exit_code == 2, result.output
    assert "is DATA itself; the result would replace your data" in result.stderr
    assert data.read_bytes() == before


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


def test_train_sets_widths_patience_and_lr_schedule(tmp_path):
    run = tmp_path / "run"
    result = invoke(
        "train", "digits", "--out", run, *TRAIN_FAST, "--hidden-dims", "32,16",
        "--patience", "0", "--lr-schedule", "cosine",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    model = load(run)
    assert tuple(model.hidden_dims) == (32, 16) and model.patience is None
    assert model.lr_schedule == "cosine"
    assert model.history_[-1]["lr"] < model.history_[0]["lr"] < model.learning_rate
    assert model.module_.encoder.body[0].out_features == 32


def test_train_augments_images_and_refuses_to_augment_a_table(tmp_path):
    images = np.random.default_rng(0).random((60, 8, 8), dtype=np.float32)
    np.save(tmp_path / "images.npy", images)
    run = tmp_path / "run"
    result = invoke(
        "train", tmp_path / "images.npy", "--out", run, *TRAIN_FAST, "--augment", "affine"
    )
    assert result.exit_code == 0, result.output
    assert load(run).augment == "affine" and load(run).architecture_ == "conv"
    # digits' 64 columns are 8x8 images (recorded): augmented as such.
    result = invoke("train", "digits", "--out", tmp_path / "d", *TRAIN_FAST, "--augment", "affine")
    assert result.exit_code == 0, result.output
    assert load(tmp_path / "d").input_shape_ == (8, 8)
    np.save(tmp_path / "table.npy", images.reshape(60, 64))  # rows with no image shape
    result = invoke(
        "train", tmp_path / "table.npy", "--out", tmp_path / "flat", "--augment", "affine"
    )
    message = " ".join(result.output.split())
    assert result.exit_code == 2 and "moves images" in message and "drop --augment." in message
    assert not (tmp_path / "flat").exists()


@pytest.mark.parametrize(
    "option, value, message",
    [
        ("--hidden-dims", "32,x", "--hidden-dims must be comma-separated positive integers"),
        ("--conv-channels", "0,8", "--conv-channels must be comma-separated positive integers"),
        ("--patience", "-1", "--patience must be 0 (never stop early) or more"),
        ("--hidden-dims", "64,²", "--hidden-dims must be comma-separated positive integers"),
        ("--beta", "4", "--beta only applies to --model vae"),
        ("--free-bits", "0.5", "--free-bits only applies to --model vae"),
    ],
)
def test_train_rejects_bad_widths_and_patience(tmp_path, option, value, message):
    model = ["--model", "ae"] if "--model vae" in message else []
    result = invoke("train", "digits", "--out", tmp_path / "run", option, value, *model)
    assert result.exit_code == 2 and message in " ".join(result.output.split())
    assert not (tmp_path / "run").exists()


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
    assert "chance: 0.1" in result.output  # 10 digits: random clusters match about 0.17
    assert "demo 4/4 figures drawn" in result.stderr  # a log gets a line per step
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


# User errors (one `error:` line, exit code 2, nothing left behind) for every command are the
# catalogue in tests/test_bad_inputs.py, which also runs a few as real `python -m vaekit` processes.


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["train", "digits", "--out", "r", "--epochs", "abc"],
            "error: Invalid value for '--epochs': Input should be a valid integer, unable to "
            "parse string as an integer; see `vaekit train --help`.",
        ),
        (["train", "digits"], "error: Missing option '--out'; see `vaekit train --help`."),
        (["nosuchcmd"], "error: No such command 'nosuchcmd'; see `vaekit --help`."),
    ],
)
def test_command_line_mistakes_are_one_error_line(argv, message, capsys, tmp_path, monkeypatch):
    """Parsing errors too: typer's own usage panel was five lines."""
    from vaekit.cli import main

    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as stop:
        main(argv)
    out, err = capsys.readouterr()
    assert stop.value.code == 2
    assert out == ""
    assert err.splitlines() == [message]
    assert list(tmp_path.iterdir()) == []


def test_main_exits_0_after_a_command_and_2_after_a_user_error(capsys):
    from vaekit.cli import main

    with pytest.raises(SystemExit) as stop:
        main(["--version"])
    assert stop.value.code == 0 and capsys.readouterr().out.startswith("vaekit ")
    with pytest.raises(SystemExit) as stop:
        main(["info", "no-such-run"])
    assert stop.value.code == 2
    assert capsys.readouterr().err.startswith("error: no-such-run is not a model directory")


def test_commands_that_read_a_run_write_into_it_without_out(run_dir, tmp_path):
    """DESIGN.md's `vaekit evaluate RUN DATA`, `generate RUN -n 64`, ... without --out: each
    writes into RUN, and `vaekit report RUN` rebuilds every report there."""
    import shutil

    run = tmp_path / "run"
    shutil.copytree(run_dir, run)
    commands = [
        (["evaluate", run, "digits:test", "--jobs", "1", "--quiet"], "evaluate/report.html"),
        (["visualize", run, "digits:test", "--max-points", "60"], "visualize/report.html"),
        (["detect", run, "digits:test"], "anomaly_scores.csv"),
        (["export", run], "encoder.onnx"),
        (["generate", run, "-n", "4"], "samples.png"),
        (["interpolate", run, "digits:test", "--from", "0", "--to", "1"], "interpolation.png"),
        (["traverse", run, "--dims", "0"], "traversal.png"),
    ]
    for args, written in commands:
        result = invoke(*args, "--json")
        assert result.exit_code == 0, result.output
        assert (run / written).is_file(), written
    assert json.loads(invoke("detect", run, "digits:test", "--json").output)["path"] == str(
        run / "anomaly_scores.csv"
    )
    rebuilt = json.loads(invoke("report", run, "--json").output)["reports"]
    assert sorted(rebuilt) == [str(run / f"{job}/report.html") for job in ("evaluate", "visualize")]
    # A run of a table (no image shape) gets arrays, not PNGs.
    X = np.random.default_rng(0).random((60, 5))
    np.save(tmp_path / "t.npy", X)
    table_run = tmp_path / "table_run"
    assert invoke("train", tmp_path / "t.npy", "--out", table_run, *TRAIN_FAST).exit_code == 0
    assert invoke("generate", table_run, "-n", "3").exit_code == 0
    assert np.load(table_run / "samples.npy").shape == (3, 5)


def test_a_new_model_in_the_run_removes_the_old_ones_outputs(tmp_path):
    """What evaluate, detect, generate... wrote into RUN describes the model they read: after
    `train --overwrite` it would be stale (an encoder.onnx of latent size 3 beside a model of 5),
    and `vaekit report RUN` would rebuild a report of a model that is gone."""
    run = tmp_path / "run"
    assert invoke("train", "digits", "--out", run, *TRAIN_FAST).exit_code == 0
    for args in (["detect", run, "digits:test"], ["generate", run, "-n", "4"], ["export", run]):
        assert invoke(*args).exit_code == 0
    (run / "evaluate").mkdir()
    (run / "evaluate" / "results.json").write_text("{}")
    (run / "notes.txt").write_text("mine")  # not vaekit's: kept
    (run / "encoder.png").write_text("mine too")  # only encoder.onnx is export's
    # The same settings and seed: the same weights, but --overwrite replaces the run, and what
    # the outputs depend on besides the weights (--contamination) may differ.
    result = invoke("train", "digits", "--out", run, *TRAIN_FAST, "--overwrite", "--json")
    assert result.exit_code == 0, result.output
    removed = json.loads(result.stdout)["removed_outputs"]
    assert sorted(removed) == ["anomaly_scores.csv", "encoder.onnx", "evaluate", "samples.png"]
    assert sorted(p.name for p in run.iterdir()) == [
        "checkpoint.safetensors",
        "config.json",
        "encoder.png",
        "history.json",
        "model.safetensors",
        "notes.txt",
        "run.json",
    ]


def test_a_first_model_in_a_folder_removes_nothing(tmp_path):
    """Files named like run outputs in a folder that held no model are the user's own."""
    run = tmp_path / "mine"
    run.mkdir()
    for name in ("samples.npy", "encoder.onnx", "anomaly_scores.csv"):
        (run / name).write_text("mine")
    result = invoke("train", "digits", "--out", run, *TRAIN_FAST, "--json")
    assert result.exit_code == 0, result.output
    assert "removed_outputs" not in json.loads(result.stdout)
    assert (run / "samples.npy").read_text() == "mine" and (run / "encoder.onnx").exists()


def test_a_resume_that_trains_nothing_keeps_the_runs_outputs(tmp_path):
    """Resuming a finished run leaves its weights as they were, so what evaluate or export
    wrote still describes them; a resume that trains on replaces the model and removes them."""
    run = tmp_path / "run"
    assert invoke("train", "digits", "--out", run, *TRAIN_FAST).exit_code == 0
    assert invoke("export", run).exit_code == 0
    result = invoke("train", "digits", "--out", run, *TRAIN_FAST, "--resume", "--json")
    assert result.exit_code == 0, result.output
    assert "removed_outputs" not in json.loads(result.stdout) and (run / "encoder.onnx").exists()
    # Nothing trained, but another stored threshold: the outputs that use it are stale.
    assert invoke("detect", run, "digits:test").exit_code == 0
    result = invoke(
        "train", "digits", "--out", run, *TRAIN_FAST, "--resume", "--contamination", "0.2", "--json"
    )
    assert result.exit_code == 0, result.output
    assert "anomaly_scores.csv" in json.loads(result.stdout)["removed_outputs"]
    assert invoke("export", run).exit_code == 0
    more = [a if a != "3" else "4" for a in TRAIN_FAST]  # --epochs 4
    result = invoke("train", "digits", "--out", run, *more, "--resume", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["removed_outputs"] == ["encoder.onnx"]


def test_existing_run_is_not_overwritten_without_asking(run_dir):
    before = (run_dir / "model.safetensors").read_bytes()
    result = invoke("train", "digits", "--out", run_dir, *TRAIN_FAST)
    assert result.exit_code == 2
    assert (run_dir / "model.safetensors").read_bytes() == before


def test_paths_with_brackets_are_printed_as_written(run_dir, tmp_path):
    """Rich reads [..] as markup: a path like exp[v2] lost its brackets, and [/x] crashed the
    command after its work was done."""
    import shutil

    run = tmp_path / "exp[v2]"
    shutil.copytree(run_dir, run)
    result = invoke("info", run)
    assert result.exit_code == 0, result.output
    assert "exp[v2]" in result.output
    out = tmp_path / "emb[/x].npy"
    result = invoke("embed", run, "digits:test", "--out", out)
    assert result.exit_code == 0, result.output
    assert str(out) in "".join(result.output.split("\n")) and out.exists()


def test_out_naming_an_existing_folder_is_one_line(run_dir, tmp_path):
    (tmp_path / "grid.png").mkdir()
    result = invoke("generate", run_dir, "-n", "4", "--out", tmp_path / "grid.png")
    assert result.exit_code == 2, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "grid.png: is a directory." in lines[0], result.stderr
    assert [p.name for p in tmp_path.iterdir()] == ["grid.png"]  # no temporary file left


def test_info_survives_a_damaged_run_summary(run_dir, tmp_path):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(run_dir, run)
    for text in ('{"data": 5', "[1, 2]"):
        (run / "run.json").write_text(text)
        result = invoke("info", run, "--json")
        assert result.exit_code == 0, result.output
        info = json.loads(result.stdout)
        assert info["epochs_run"] == 3 and info["data"] is None
        assert "run.json is damaged" in result.stderr


def test_embed_writes_class_names_not_their_codes(run_dir, tmp_path):
    """Text labels are numbered by sorted name ("eight" = 0); the user's names go out."""
    test = load_dataset("digits:test")
    names = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
    header = ",".join([*(f"p{j}" for j in range(64)), "digit"])
    pairs = zip(test.X, test.y, strict=True)
    rows = [",".join([*(f"{v:g}" for v in x), names[c]]) for x, c in pairs]
    (tmp_path / "named.csv").write_text("\n".join([header, *rows]) + "\n")
    for suffix in (".csv", ".parquet"):
        out = tmp_path / f"mu{suffix}"
        args = ["--label-column", "digit", "--out", out]
        result = invoke("embed", run_dir, tmp_path / "named.csv", *args)
        assert result.exit_code == 0, result.output
        if suffix == ".csv":
            written = [line.rsplit(",", 1)[1] for line in out.read_text().splitlines()[1:]]
        else:
            written = pq.read_table(out)["label"].to_pylist()
        assert written == [names[c] for c in test.y]


def _write_table(path: Path, columns: list[str], X: np.ndarray) -> Path:
    """A CSV of X with a header, plus a label column ``y`` (classes 0 and 1)."""
    y = np.arange(len(X)) % 2
    np.savetxt(
        path,
        np.column_stack([X, y]),
        delimiter=",",
        header=",".join([*columns, "y"]),
        comments="",
        fmt="%.6f",
    )
    return path


def test_column_names_pass_between_python_and_the_shell(tmp_path):
    """A model fitted in Python on a table is checked by the commands against its column names,
    with no warning about an array without names; a run trained on a CSV file with a header
    gives its model those names (feature_names_in_), one without a header does not."""
    import pyarrow as pa

    X = np.random.default_rng(0).uniform(size=(60, 3))
    names = ["a", "b", "c"]
    model = VAE(latent_dim=2, hidden_dims=(8,), epochs=1, random_state=0)
    model.fit(pa.table({n: X[:, j] for j, n in enumerate(names)})).save(tmp_path / "py")
    same = _write_table(tmp_path / "abc.csv", names, X)  # with a label column "y"
    swapped = _write_table(tmp_path / "cba.csv", names[::-1], X[:, ::-1])
    labels = ["--label-column", "y"]
    result = invoke("embed", tmp_path / "py", same, "--out", tmp_path / "z.npy", *labels)
    assert result.exit_code == 0, result.output
    assert "feature names" not in result.output
    result = invoke("embed", tmp_path / "py", swapped, "--out", tmp_path / "z.npy", *labels)
    assert result.exit_code == 2 and "in another order (column 0 is 'c'" in result.output

    run = tmp_path / "run"
    result = invoke("train", same, "--out", run, *TRAIN_FAST, *labels)
    assert result.exit_code == 0, result.output
    assert list(load(run).feature_names_in_) == names
    np.savetxt(tmp_path / "headerless.csv", X, delimiter=",", fmt="%.6f")
    result = invoke("train", tmp_path / "headerless.csv", "--out", tmp_path / "bare", *TRAIN_FAST)
    assert result.exit_code == 0, result.output
    assert not hasattr(load(tmp_path / "bare"), "feature_names_in_")


def test_later_commands_refuse_a_table_whose_columns_do_not_line_up(tmp_path):
    # The model reads features by position: a reordered table would encode without complaint.
    X = np.random.default_rng(0).normal(size=(80, 4))
    names = ["age", "height", "weight", "income"]
    train = _write_table(tmp_path / "train.csv", names, X)
    run = tmp_path / "run"
    labels = ["--label-column", "y"]
    assert invoke("train", train, "--out", run, *TRAIN_FAST, *labels).exit_code == 0
    assert json.loads((run / "run.json").read_text())["feature_names"] == names

    same = _write_table(tmp_path / "same.csv", names, X[:10])
    result = invoke("embed", run, same, "--out", tmp_path / "ok.npy", *labels)
    assert result.exit_code == 0, result.output

    swapped = _write_table(tmp_path / "swapped.csv", ["height", "age", "weight", "income"], X)
    renamed = _write_table(tmp_path / "renamed.csv", ["age", "height", "weight", "salary"], X)
    cases = [
        (
            swapped,
            "has the training columns in another order (column 0 is 'height', in training 'age')",
        ),
        (
            renamed,
            "columns differ from the training data's (missing 'income'; not in the "
            "training data: 'salary')",
        ),
    ]
    for table, message in cases:
        for command in (
            ["embed", run, table, "--out", tmp_path / "z.npy"],
            ["detect", run, table, "--out", tmp_path / "scores.csv"],
            ["evaluate", run, table, "--out", tmp_path / "eval"],
        ):
            result = invoke(*command, *labels)
            assert result.exit_code == 2 and message in " ".join(result.output.split()), (
                command,
                result.output,
            )
    assert not {"z.npy", "scores.csv", "eval"} & {p.name for p in tmp_path.iterdir()}

    # A run whose loader kept pandas' unnamed row-index column as a feature (vaekit before
    # 2026-11-22 did): that is what the message says, not "missing ''".
    summary = json.loads((run / "run.json").read_text())
    (run / "run.json").write_text(json.dumps({**summary, "feature_names": ["", *names]}))
    result = invoke("embed", run, same, "--out", tmp_path / "z.npy", *labels)
    assert result.exit_code == 2
    assert "trained with the row index that pandas wrote" in " ".join(result.stderr.split())


def test_a_run_that_read_pandas_default_names_as_a_sample_is_told_to_retrain(tmp_path):
    """vaekit before 2026-12-06 read the header 0,1,2 of pd.DataFrame(X).to_csv(index=False)
    as a sample and named the columns f0, f1, f2; it now reads that row as the header."""
    X = np.random.default_rng(0).normal(size=(40, 3))
    table = tmp_path / "frame.csv"
    np.savetxt(table, X, delimiter=",", header="0,1,2", comments="")
    run = tmp_path / "run"
    assert invoke("train", table, "--out", run, *TRAIN_FAST).exit_code == 0
    summary = json.loads((run / "run.json").read_text())
    as_then = {**summary, "feature_names": ["f0", "f1", "f2"], "n_samples": 41}  # + the header
    (run / "run.json").write_text(json.dumps(as_then))
    result = invoke("embed", run, table, "--out", tmp_path / "z.npy")
    assert result.exit_code == 2
    message = " ".join(result.stderr.split())
    assert "pandas' default column names (0, 1, ...)" in message and "train it again" in message
    # A headerless run of today, given another file with that header: not this story.
    (run / "run.json").write_text(json.dumps({**as_then, "n_samples": 40}))
    result = invoke("embed", run, table, "--out", tmp_path / "z.npy")
    assert result.exit_code == 2 and "columns differ" in " ".join(result.stderr.split())


def test_later_commands_read_labels_from_the_column_the_run_was_trained_with(tmp_path):
    X = np.random.default_rng(1).normal(size=(80, 6))
    names = ["age", "height", "weight", "income", "rent", "commute"]
    train = _write_table(tmp_path / "train.csv", names, X)
    run = tmp_path / "run"
    assert invoke("train", train, "--out", run, *TRAIN_FAST, "--label-column", "y").exit_code == 0
    assert json.loads((run / "run.json").read_text())["label_column"] == "y"
    assert json.loads(invoke("info", run, "--json").stdout)["label_column"] == "y"

    # Without --label-column, `y` is the labels again, not a fourth feature the model never saw.
    result = invoke("embed", run, train, "--out", tmp_path / "mu.csv")
    assert result.exit_code == 0, result.output
    with (tmp_path / "mu.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [float(r["label"]) for r in rows] == [float(i % 2) for i in range(80)]
    result = invoke("detect", run, train, "--anomaly-label", "1", "--json")
    assert result.exit_code == 0, result.output
    assert 0.0 <= json.loads(result.stdout)["auroc"] <= 1.0  # AUROC needs the labels
    result = invoke("evaluate", run, train, "--out", tmp_path / "eval", "--json")
    assert result.exit_code == 0, result.output

    # New rows without the column are read as they are, unlabelled.
    np.savetxt(
        tmp_path / "new.csv", X[:5], delimiter=",", header=",".join(names), comments="", fmt="%g"
    )
    result = invoke("embed", run, tmp_path / "new.csv", "--out", tmp_path / "new.csv.npy")
    assert result.exit_code == 0, result.output
    assert np.load(tmp_path / "new.csv.npy").shape == (5, 4)
    # Nor is a table whose label column is empty in every row (new rows from the same export).
    (tmp_path / "blank.csv").write_text(
        ",".join([*names, "y"])
        + "\n"
        + "\n".join(",".join(f"{v:g}" for v in row) + "," for row in X[:5])
        + "\n"
    )
    result = invoke("embed", run, tmp_path / "blank.csv", "--out", tmp_path / "blank.npy")
    assert result.exit_code == 0, result.output
    np.testing.assert_allclose(np.load(tmp_path / "blank.npy"), np.load(tmp_path / "new.csv.npy"))
    # Labelled in some rows only: embed and detect need no labels, and say why there are none;
    # evaluate, which does, refuses.
    (tmp_path / "some.csv").write_text(
        ",".join([*names, "y"])
        + "\n"
        + "\n".join(
            ",".join(f"{v:g}" for v in row) + ("," if i % 2 else ",1")
            for i, row in enumerate(X[:5])
        )
        + "\n"
    )
    for command in (["embed", "--out", tmp_path / "some.npy"], ["detect", "--json"]):
        result = invoke(command[0], run, tmp_path / "some.csv", *command[1:])
        assert result.exit_code == 0, result.output
        assert "Label column 'y' of some.csv is blank in 2 of 5 rows" in result.stderr
    np.testing.assert_allclose(np.load(tmp_path / "some.npy"), np.load(tmp_path / "new.csv.npy"))
    result = invoke("evaluate", run, tmp_path / "some.csv", "--out", tmp_path / "e2")
    assert result.exit_code == 2 and "has no labels" in result.stderr
    assert "is blank in 2 of 5 rows" in result.stderr
    # A column named on the command line must be there.
    result = invoke(
        "embed", run, tmp_path / "new.csv", "--out", tmp_path / "z.npy", "--label-column", "y"
    )
    assert result.exit_code == 2 and "Label column 'y' is not in new.csv" in result.stderr


def test_embed_and_detect_on_an_image_folder_name_each_rows_file(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    files = [f"{c}/{name}.png" for c in ("cat", "dog") for name in ("a", "b,c", "d")]
    for name in files:
        (tmp_path / "pets" / name).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (8, 8), dtype=np.uint8)).save(tmp_path / "pets" / name)
    run = tmp_path / "run"
    args = ["--epochs", "1", "--latent-dim", "2", "--hidden-dims", "16", "--quiet"]
    assert invoke("train", tmp_path / "pets", "--out", run, *args).exit_code == 0
    expected = load(run).transform(load_dataset(tmp_path / "pets").X)

    result = invoke("embed", run, tmp_path / "pets", "--out", tmp_path / "mu.csv")
    assert result.exit_code == 0, result.output
    with (tmp_path / "mu.csv").open() as f:
        rows = list(csv.DictReader(f))  # "b,c.png" is quoted, not split
    assert [r["file"] for r in rows] == files and [r["label"] for r in rows] == ["cat"] * 3 + [
        "dog"
    ] * 3
    np.testing.assert_allclose(
        [[float(r["vae0"]), float(r["vae1"])] for r in rows], expected, rtol=1e-6
    )
    result = invoke("embed", run, tmp_path / "pets", "--out", tmp_path / "mu.parquet")
    assert result.exit_code == 0, result.output
    assert pq.read_table(tmp_path / "mu.parquet")["file"].to_pylist() == files
    result = invoke("embed", run, tmp_path / "pets", "--out", tmp_path / "mu.npy")
    assert result.exit_code == 0 and np.load(tmp_path / "mu.npy").shape == (6, 2)  # numbers only

    result = invoke(
        "detect", run, tmp_path / "pets", "--contamination", "0.2", "--out", tmp_path / "s.csv"
    )
    assert result.exit_code == 0, result.output
    with (tmp_path / "s.csv").open() as f:
        scored = list(csv.DictReader(f))
    assert [r["file"] for r in scored] == files and [r["index"] for r in scored] == list("012345")

    # A file name that is not UTF-8 (Latin-1 bytes, as Linux allows) is written escaped.
    latin = tmp_path / "pets" / "dog" / os.fsdecode(b"caf\xe9.png")
    Image.fromarray(rng.integers(0, 256, (8, 8), dtype=np.uint8)).save(latin)
    result = invoke("embed", run, tmp_path / "pets", "--out", tmp_path / "mu.parquet")
    assert result.exit_code == 0, result.output
    assert "dog/caf\\xe9.png" in pq.read_table(tmp_path / "mu.parquet")["file"].to_pylist()
    result = invoke(
        "detect", run, tmp_path / "pets", "--contamination", "0.2", "--out", tmp_path / "s.csv"
    )
    assert result.exit_code == 0 and "dog/caf\\xe9.png" in (tmp_path / "s.csv").read_text("utf-8")


# --- review fixes: each command's behaviour as a shell user meets it -------------------------


def test_train_json_prints_nothing_but_the_json(tmp_path):
    result = invoke("train", "digits", "--out", tmp_path / "run", "--epochs", "2", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["epochs_run"] == 2  # --json also turns the bar off


@pytest.mark.parametrize("command", ["evaluate", "sweep"])
def test_a_test_set_that_overlaps_data_is_refused(run_dir, tmp_path, command):
    args = [run_dir] if command == "evaluate" else []
    result = invoke(command, *args, "digits", "--test", "digits:test", "--out", tmp_path / "o")
    assert result.exit_code == 2
    assert "--test digits:test holds rows of DATA digits" in " ".join(result.stderr.split())
    assert not (tmp_path / "o").exists()


def test_one_label_column_for_a_named_dataset_and_a_labelled_table(tmp_path):
    test = load_dataset("digits:test")
    header = ",".join([*(f"p{j}" for j in range(64)), "label"])
    table = np.column_stack([test.X, test.y])
    np.savetxt(tmp_path / "test.csv", table, delimiter=",", header=header, comments="", fmt="%g")
    result = invoke(
        "sweep", "digits:train", "--test", tmp_path / "test.csv", "--label-column", "label",
        "--latent-dims", "2", "--betas", "1", "--epochs", "1", "--out", tmp_path / "s", "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["n_test"] == len(test.y)


def test_detect_writes_class_names_as_embed_does(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.random((60, 3))
    names = np.where(np.arange(60) % 3 == 0, "cat, wild", "dog")  # a name with a comma
    with (tmp_path / "pets.csv").open("w") as f:
        f.write("a,b,c,species\n")
        for row, name in zip(X, names, strict=True):
            f.write(",".join(f"{v:.6f}" for v in row) + f',"{name}"\n')
    run = tmp_path / "run"
    labels = ["--label-column", "species"]
    assert invoke("train", tmp_path / "pets.csv", "--out", run, *TRAIN_FAST, *labels).exit_code == 0
    out = tmp_path / "scores.csv"
    result = invoke("detect", run, tmp_path / "pets.csv", "--out", out, *labels)
    assert result.exit_code == 0, result.output
    with out.open() as f:
        rows = list(csv.DictReader(f))
    assert [r["label"] for r in rows] == list(names)


def test_new_images_are_read_in_the_colour_mode_the_model_was_trained_in(tmp_path):
    """A folder reads as RGB when one of its images is in colour: new images for a model may
    come in the other mode, and are converted to the model's (gray as Pillow's "L")."""
    from PIL import Image

    rng = np.random.default_rng(0)
    gray = [rng.integers(0, 256, (8, 8), dtype=np.uint8) for _ in range(6)]
    rgb = [rng.integers(0, 256, (8, 8, 3), dtype=np.uint8) for _ in range(2)]
    for folder, images in (("mixed", gray[:4] + rgb), ("gray", gray), ("colour", gray[:1] + rgb)):
        (tmp_path / folder).mkdir()
        for i, pixels in enumerate(images):
            Image.fromarray(pixels).save(tmp_path / folder / f"{i}.png")
    args = ["--epochs", "1", "--latent-dim", "2", "--hidden-dims", "16", "--quiet"]
    for folder in ("mixed", "gray"):
        result = invoke("train", tmp_path / folder, "--out", tmp_path / f"run_{folder}", *args)
        assert result.exit_code == 0, result.output

    # An RGB model, all-gray images: each gray image on the three channels.
    result = invoke("embed", tmp_path / "run_mixed", tmp_path / "gray", "--out", tmp_path / "a.npy")
    assert result.exit_code == 0, result.output
    as_rgb = np.repeat(np.stack(gray)[:, None] / np.float32(255), 3, axis=1)
    expected = load(tmp_path / "run_mixed").transform(as_rgb)
    np.testing.assert_allclose(np.load(tmp_path / "a.npy"), expected, rtol=1e-6, atol=1e-7)

    # A gray model, a folder with colour images: those converted as Pillow converts them.
    out = tmp_path / "b.npy"
    result = invoke("embed", tmp_path / "run_gray", tmp_path / "colour", "--out", out)
    assert result.exit_code == 0, result.output
    assert "Converted 2 colour image(s) of colour to grayscale" in " ".join(result.stderr.split())
    luma = [np.asarray(Image.fromarray(p).convert("L")) for p in rgb]
    as_gray = np.stack(gray[:1] + luma) / np.float32(255)
    expected = load(tmp_path / "run_gray").transform(as_gray)
    np.testing.assert_allclose(np.load(out), expected, rtol=1e-6, atol=1e-7)


def test_embed_and_detect_take_images_for_a_model_of_flat_rows(run_dir, tmp_path):
    images = load_dataset("digits:test").X[:20].reshape(20, 8, 8)
    np.save(tmp_path / "images.npy", images)
    for command, out in (("embed", "z.npy"), ("detect", "s.csv")):
        result = invoke(command, run_dir, tmp_path / "images.npy", "--out", tmp_path / out)
        assert result.exit_code == 0, result.output
    flat = load(run_dir).transform(images.reshape(20, 64))
    np.testing.assert_array_equal(np.load(tmp_path / "z.npy"), flat)


def test_warnings_are_one_line_and_errors_name_the_flags(tmp_path):
    result = invoke("train", "digits", "--out", tmp_path / "r", "--epochs", "1", "--beta", "50")
    assert result.exit_code == 0, result.output
    assert "warning: Posterior collapse" in result.stderr
    assert ".py:" not in result.stderr  # not Python's file:line and source line
    warning = " ".join(result.stderr.split())
    assert "(--kl-warmup-epochs) or --free-bits" in warning and "lower beta" in warning
    result = invoke("train", "digits", "--out", tmp_path / "r2", "--seed", "-3")
    assert result.exit_code == 2
    assert "error: --seed must be an integer in [0, 2**32 - 1], got -3." in result.stderr
    cases = [
        (["--precision", "float16"], "error: --precision must be one of"),
        (["--max-grad-norm", "0"], "error: --max-grad-norm must be a positive number, got"),
        (["--likelihood", "gaussian", "--dynamic-binarization"], "error: --dynamic-binarization"),
        (["--model", "ae", "--beta", "2"], "--beta only applies to --model vae; drop it"),
    ]
    for args, message in cases:
        result = invoke("train", "digits", "--out", tmp_path / "r3", "--epochs", "1", *args)
        assert result.exit_code == 2 and message in " ".join(result.stderr.split()), args


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["train", "./digits", "--out", "x"], "./digits does not exist"),
        (["train", "digits", "--out", "x", "--conv-channels", "8,16"], "--conv-channels sets"),
    ],
)
def test_options_that_would_be_ignored_or_misread_are_refused(tmp_path, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    result = invoke(*args)
    assert result.exit_code == 2 and message in " ".join(result.stderr.split())
    assert not (tmp_path / "x").exists()


def test_detect_refuses_k_for_a_score_that_ignores_it(run_dir, tmp_path):
    result = invoke("detect", run_dir, "digits:test", "--out", tmp_path / "s.csv", "--k", "5")
    assert result.exit_code == 2
    assert "--k sets the importance samples of --score nll" in " ".join(result.stderr.split())


def test_a_history_file_of_the_wrong_shape_is_one_error(run_dir, tmp_path):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(run_dir, run)
    (run / "history.json").write_text("[1, 2]")
    result = invoke("info", run)
    assert result.exit_code == 2 and "not a list of per-epoch records" in result.stderr


def test_messages_name_flags_but_leave_paths_alone():
    from vaekit.cli import _as_flags

    assert _as_flags("random_state must be None") == "--seed must be None"
    assert (
        _as_flags("likelihood='bernoulli' needs [0, 1]; use likelihood='gaussian'.")
        == "--likelihood 'bernoulli' needs [0, 1]; use --likelihood 'gaussian'."
    )
    assert _as_flags("Cannot write runs/beta=4/x") == "Cannot write runs/beta=4/x"
    assert _as_flags("beta=4 is not a model directory") == "beta=4 is not a model directory"
    assert _as_flags("Cannot read runs beta=4.5/x") == "Cannot read runs beta=4.5/x"
    assert (
        _as_flags("more than epochs=2; patience=3 epochs, learning_rate=1e-05 (now 0.001).")
        == "more than --epochs 2; --patience 3 epochs, --learning-rate 1e-05 (now 0.001)."
    )
    assert (
        _as_flags("(validation_fraction=0.001 of 9 rows)")
        == "(--validation-fraction 0.001 of 9 rows)"
    )
    assert (  # numbers too, as a resume refusal lists them
        _as_flags("a different fit: batch_size=128 (now 64), random_state=0 (now 3)")
        == "a different fit: --batch-size 128 (now 64), --seed 0 (now 3)"
    )
    assert _as_flags("unknown_thing must be 1") == "unknown_thing must be 1"
    assert (  # named inside a sentence, or switched on as in Python
        _as_flags("use a warm-up (kl_warmup_epochs) or free_bits, dynamic_binarization=True")
        == "use a warm-up (--kl-warmup-epochs) or --free-bits, --dynamic-binarization"
    )
    assert _as_flags("lower beta") == "lower beta"  # prose: only names with an underscore
    assert _as_flags("Cannot write runs/free_bits/x") == "Cannot write runs/free_bits/x"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["train", "digits", "--augment", "rotate"], "error: --augment must be one of affine;"),
        (["evaluate", "RUN", "digits", "--jobs", "0"], "or -1 for one per CPU core; got 0."),
    ],
)
def test_messages_offer_only_what_a_flag_can_be(run_dir, tmp_path, args, message):
    """Python's None (no augmentation, the default n_jobs) cannot be typed."""
    args = [str(run_dir) if a == "RUN" else a for a in args]
    result = invoke(*args, "--out", tmp_path / "out")
    assert result.exit_code == 2, result.output
    assert message in result.stderr and "None" not in result.stderr


def test_commands_on_a_run_refuse_images_laid_out_otherwise(tmp_path):
    """As many values per sample in another shape are not the model's images: channels-last
    RGB and 8x32 images for a 16x16 model are refused with the shape, not reshaped."""
    rng = np.random.default_rng(0)
    rgb = rng.uniform(size=(40, 3, 16, 16)).astype(np.float32)
    np.save(tmp_path / "rgb.npy", rgb)
    np.save(tmp_path / "last.npy", np.ascontiguousarray(rgb.transpose(0, 2, 3, 1)))
    np.save(tmp_path / "wide.npy", rgb[:, 0].reshape(40, 8, 32))
    np.save(tmp_path / "gray.npy", rgb[:, 0])
    small = ["--epochs", "1", "--latent-dim", "2", "--conv-channels", "4", "--hidden-dims", "8"]
    for name in ("rgb", "gray"):
        result = invoke("train", tmp_path / f"{name}.npy", "--out", tmp_path / name, *small, "-q")
        assert result.exit_code == 0, result.output
    cases = [
        ("rgb", "last", "they look channels-last"),
        ("gray", "wide", r"shape \(8, 32\), but the model .* \(16, 16\)"),
    ]
    for run, data, message in cases:
        for command in (["embed", "--out", tmp_path / "z.npy"], ["detect"]):
            result = invoke(command[0], tmp_path / run, tmp_path / f"{data}.npy", *command[1:])
            assert result.exit_code == 2, result.output
            assert re.search(message, " ".join(result.output.split())), result.output
    assert not (tmp_path / "z.npy").exists()
    # The same images with their channel axis ((n, 1, h, w) for an (h, w) model) are taken.
    np.save(tmp_path / "gray1.npy", rgb[:, :1])
    out = tmp_path / "z1.npy"
    assert invoke("embed", tmp_path / "gray", tmp_path / "gray1.npy", "--out", out).exit_code == 0
    assert np.load(out).shape == (40, 2)


def test_ctrl_c_suggests_resume_only_where_a_checkpoint_was_kept(tmp_path, monkeypatch):
    import vaekit.jobs

    def interrupted(data, out, **kwargs):
        if kwargs.get("epochs") == 2:  # after a finished epoch: its checkpoint is there
            out.mkdir()
            (out / "checkpoint.safetensors").write_bytes(b"")
        raise KeyboardInterrupt

    monkeypatch.setattr(vaekit.jobs, "train_run", interrupted)
    hints = (("1", "nothing was kept: the same command starts over"), ("2", "--resume"))
    for epochs, hint in hints:
        result = invoke("train", "digits", "--out", tmp_path / epochs, "--epochs", epochs)
        assert result.exit_code == 130 and hint in " ".join(result.stderr.split()), result.stderr

    # --overwrite over an earlier run: its checkpoint is not this run's.
    def interrupted_over(data, out, **kwargs):
        if kwargs.get("epochs") == 2:  # a finished epoch replaces the file
            (out / "new").write_bytes(b"")
            (out / "new").replace(out / "checkpoint.safetensors")
        raise KeyboardInterrupt

    monkeypatch.setattr(vaekit.jobs, "train_run", interrupted_over)
    earlier = tmp_path / "earlier"
    earlier.mkdir()
    hints = (
        ("1", "nothing was kept: the same command starts over"),
        ("2", "run the same command with --resume instead of --overwrite"),
    )
    for epochs, hint in hints:
        (earlier / "checkpoint.safetensors").write_bytes(b"the earlier run's")
        result = invoke("train", "digits", "--out", earlier, "--epochs", epochs, "--overwrite")
        assert result.exit_code == 130 and hint in " ".join(result.stderr.split()), result.stderr


def test_train_refuses_resume_with_overwrite_and_warns_of_a_warmup_past_the_end(tmp_path):
    result = invoke("train", "digits", "--out", tmp_path / "r", "--resume", "--overwrite")
    assert result.exit_code == 2 and "pass one" in result.stderr
    args = ["--epochs", "2", "--kl-warmup-epochs", "5", "--latent-dim", "2"]
    result = invoke("train", "digits", "--out", tmp_path / "w", *args)
    assert result.exit_code == 0, result.output
    warning = " ".join(result.stderr.split())
    assert "--kl-warmup-epochs (5) is longer than the 2 epochs of training" in warning, warning
    assert "β never reaches beta (it ends at 0.4)" in warning


def test_a_value_too_large_to_standardize_is_one_error_line_not_a_numpy_warning_first(tmp_path):
    # A float64 table is read as float64 (1e40 trains); 1e200's variance overflows float64.
    np.save(tmp_path / "big.npy", np.random.default_rng(2).normal(size=(60, 3)) * 1e200)
    result = invoke("train", tmp_path / "big.npy", "--out", tmp_path / "run", *TRAIN_FAST)
    assert result.exit_code == 2, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: X holds"), lines
    assert "too large to standardize" in " ".join(result.stderr.split())


def test_a_damaged_run_json_is_said_once(run_dir, tmp_path):
    """It was ignored in silence: the label column recorded there was lost, and the error
    that followed blamed the data file."""
    import shutil

    run = tmp_path / "run"
    shutil.copytree(run_dir, run)
    (run / "run.json").write_text("{bad")
    result = invoke("embed", run, "digits:test", "--out", tmp_path / "z.npy")
    assert result.exit_code == 0, result.output
    warned = [line for line in result.stderr.splitlines() if "run.json is damaged" in line]
    assert len(warned) == 1 and "--label-column" in result.stderr


def test_a_dataset_name_in_a_caption_is_not_an_emoji_code(capsys):
    """rich reads ":train:" as an emoji code: "mnist:train: t-SNE" printed as "mnist🚋 t-SNE"."""
    from vaekit import cli

    cli.out_console.print("VAE μ(x) of mnist:train: t-SNE of 1500 points", markup=False)
    cli.err_console.print("warning: mnist:train: 3 rows", markup=False)
    captured = capsys.readouterr()
    assert "mnist:train: t-SNE" in captured.out and "mnist:train: 3 rows" in captured.err


def test_a_missing_value_is_named_by_file_row_and_column(tmp_path, run_dir):
    """scikit-learn's "Input X contains NaN" names none of them; a CSV of thousands of rows
    leaves the user to search."""
    table = tmp_path / "t.csv"
    rows = ["a,b,c"] + [f"{i},{i + 1},{i + 2}" for i in range(8)]
    rows[5] = "4,,6"  # data row 4: column b is blank
    table.write_text("\n".join(rows) + "\n")
    result = invoke("train", table, "--out", tmp_path / "run", "--epochs", "1")
    assert result.exit_code == 2
    said = "error: t.csv has a missing (NaN) value in row 4 (counting from 0), column 'b'; drop"
    assert result.stderr.startswith(said)
    digits = load_dataset("digits:test").X.reshape(450, -1)[:5].astype(np.float64)
    digits[3, 7] = np.inf
    np.save(tmp_path / "d.npy", digits)
    result = invoke("detect", run_dir, tmp_path / "d.npy", "--out", tmp_path / "s.csv")
    said = "d.npy has an infinite value (inf) in row 3 (counting from 0), feature 7"
    assert said in result.stderr


def test_scoring_warnings_and_errors_name_the_file_not_x(tmp_path, run_dir):
    """The estimators' messages call the data X; on the command line it is a file."""
    rows = load_dataset("digits:test").X.reshape(450, -1)[:50].astype(np.float64)
    rows[3, 5] = 1.5
    np.save(tmp_path / "one_out.npy", rows)
    result = invoke("detect", run_dir, tmp_path / "one_out.npy", "--out", tmp_path / "s.csv")
    assert result.exit_code == 0, result.output
    said = "warning: 1 of 50 rows of one_out.npy have values outside [0, 1] (one_out.npy ranges"
    assert said in " ".join(result.stderr.split())
