"""Multi-process training: torchrun with 2 CPU processes (gloo), and the sharding it relies on."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from vaekit import load
from vaekit.distributed import World, shard


def test_shards_are_equal_and_disjoint():
    n, size = 1003, 4
    parts = [np.arange(n)[shard(n, World(rank, size, rank))] for rank in range(size)]
    assert {len(p) for p in parts} == {n // size}
    assert len(np.unique(np.concatenate(parts))) == (n // size) * size


def _torchrun() -> list[str]:
    exe = shutil.which("torchrun", path=str(Path(sys.executable).parent))
    return [exe] if exe else [sys.executable, "-m", "torch.distributed.run"]


def _torchrun_train(run: Path, *args: str) -> str:
    """``vaekit train digits --out RUN ARGS`` in 2 CPU processes under torchrun; its stderr."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    command = [
        *_torchrun(), "--standalone", "--nproc_per_node=2", "-m", "vaekit", "train", "digits",
        "--out", str(run), "--quiet", *args,
    ]  # fmt: skip
    # Its own process group, so that a hang (e.g. a rendezvous that never completes) is killed
    # with all of torchrun's workers instead of leaving them spinning after the test.
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True,
    )  # fmt: skip
    try:
        _, stderr = process.communicate(timeout=300)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        raise
    assert process.returncode == 0, stderr[-3000:]
    return stderr


def test_torchrun_two_cpu_processes_train_one_model(tmp_path):
    run = tmp_path / "run"
    _torchrun_train(run, "--epochs", "6", "--latent-dim", "8", "--seed", "0")

    summary = json.loads((run / "run.json").read_text())
    assert summary["world_size"] == 2
    history = json.loads((run / "history.json").read_text())
    assert len(history) == 6
    assert history[-1]["train_loss"] < 0.9 * history[0]["train_loss"]
    assert history[-1]["val_loss"] < history[0]["val_loss"]

    model = load(run)
    X = load_digits().data.astype(np.float32) / 16.0
    mu = model.transform(X)
    assert mu.shape == (len(X), 8) and np.isfinite(mu).all()
    # Rank 0 alone wrote the run: one model, one summary, no stray temporary files.
    assert sorted(p.name for p in run.iterdir()) == [
        "checkpoint.safetensors", "config.json", "history.json", "model.safetensors", "run.json",
    ]  # fmt: skip


def test_torchrun_validates_on_a_single_row_split(tmp_path):
    """One validation row between two processes: the rank without one still joins the sums,
    so the run has a validation loss (it had none, and no early stopping, without a word)."""
    run = tmp_path / "run"
    _torchrun_train(run, "--epochs", "2", "--latent-dim", "2", "--validation-fraction", "0.0006")
    history = json.loads((run / "history.json").read_text())
    assert all(np.isfinite(epoch["val_loss"]) for epoch in history)


def test_torchrun_ranks_end_with_the_same_weights(tmp_path):
    """DDP averages the gradients: ranks trained on different shards end identical (without
    the averaging each would fit its own shard and drift apart)."""
    script = tmp_path / "fit.py"
    script.write_text(
        "import os, sys\n"
        "import numpy as np\n"
        "from sklearn.datasets import load_digits\n"
        "from vaekit import VAE\n"
        "X = load_digits().data.astype(np.float32) / 16.0\n"
        "vae = VAE(latent_dim=3, hidden_dims=(32,), epochs=2, random_state=0).fit(X)\n"
        "weights = [p.detach().numpy().ravel() for p in vae.module_.parameters()]\n"
        "np.save(os.path.join(sys.argv[1], f\"rank{os.environ['RANK']}.npy\"), "
        "np.concatenate(weights))\n"
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    command = [*_torchrun(), "--standalone", "--nproc_per_node=2", str(script), str(tmp_path)]
    process = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert process.returncode == 0, process.stderr[-3000:]
    np.testing.assert_array_equal(np.load(tmp_path / "rank0.npy"), np.load(tmp_path / "rank1.npy"))


def test_torchrun_resume_equals_an_uninterrupted_run(tmp_path):
    """Each rank draws its own ε and batch order; the checkpoint keeps every rank's RNG state
    (not only rank 0's, which it used to restore on every rank), so a resumed job continues
    exactly."""
    args = ["--latent-dim", "4", "--hidden-dims", "32", "--batch-size", "64"]
    _torchrun_train(tmp_path / "whole", "--epochs", "3", "--seed", "5", *args)
    _torchrun_train(tmp_path / "parts", "--epochs", "2", "--seed", "5", *args)
    _torchrun_train(tmp_path / "parts", "--epochs", "3", "--seed", "5", "--resume", *args)
    whole, parts = load(tmp_path / "whole"), load(tmp_path / "parts")
    for key, value in whole.module_.state_dict().items():
        assert torch.equal(value, parts.module_.state_dict()[key]), key
    losses = [[h["train_loss"] for h in m.history_] for m in (whole, parts)]
    assert losses[0] == losses[1]

    # Resumed in one process, the run cannot equal either: it goes on, and says so.
    from typer.testing import CliRunner

    from vaekit.cli import app

    argv = ["train", "digits", "--out", str(tmp_path / "parts"), "--quiet", "--epochs", "4"]
    result = CliRunner().invoke(app, [*argv, "--seed", "5", "--resume", *args])
    assert result.exit_code == 0, result.output
    assert "written by 2 training process(es) and this run has 1" in result.stderr


def test_torchrun_prints_each_warning_once(tmp_path):
    """Every rank reads the same options; rank 0 alone prints what they warn about."""
    stderr = _torchrun_train(
        tmp_path / "run", "--epochs", "1", "--latent-dim", "2", "--kl-warmup-epochs", "5"
    )
    warnings = [line for line in stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "--kl-warmup-epochs" in warnings[0], stderr[-2000:]


def test_each_rank_trains_on_its_own_shard(monkeypatch):
    """Under torchrun each rank sees its own half of the training rows, every class among them,
    and the two halves do not overlap."""
    from vaekit import VAE
    from vaekit import estimator as estimator_module

    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setattr(estimator_module, "init_process_group", lambda device: None)
    digits = load_digits()
    X = digits.data.astype(np.float32) / 16.0
    # Row numbers travel in the first feature (as i / n, in [0, 1]), so the shards can be
    # compared row by row.
    X[:, 0] = np.arange(len(X)) / len(X)
    seen: dict[int, dict] = {}
    for rank in (0, 1):
        monkeypatch.setenv("RANK", str(rank))

        def fake_train(module, objective, X_train, X_val, config, rank=rank, **kwargs):
            def row_ids(T):
                return set(np.rint(T.reshape(len(T), -1)[:, 0].numpy() * len(X)).astype(int))

            seen[rank] = {"rows": row_ids(X_train), "val": row_ids(X_val)}
            return [{"epoch": 1, "train_loss": 0.0, "seconds": 0.0}]

        monkeypatch.setattr(estimator_module, "train", fake_train)
        vae = VAE(latent_dim=2, random_state=0, validation_fraction=0.1).fit(X)
    n_train = len(X) - round(0.1 * len(X))
    for rank in (0, 1):
        assert len(seen[rank]["rows"]) == n_train // 2
        assert len(seen[rank]["val"]) == round(0.1 * len(X)) // 2
        assert set(digits.target[sorted(seen[rank]["rows"])]) == set(range(10))
    assert not seen[0]["rows"] & seen[1]["rows"]
    # The validation shares cover the whole split, which is the same as in one process.
    assert seen[0]["val"] | seen[1]["val"] == set(vae._split(len(X), vae.seed_)[1].tolist())


def test_a_validation_split_smaller_than_the_process_count_is_measured_in_full(monkeypatch):
    """3 validation rows over 4 processes: shares of 1, 1, 1 and 0 rows, and every rank gets a
    validation set to evaluate (an empty one adds zeros to the sums), so none skips it."""
    from vaekit import VAE
    from vaekit import estimator as estimator_module

    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setattr(estimator_module, "init_process_group", lambda device: None)
    X = np.random.default_rng(0).uniform(size=(60, 3)).astype(np.float32)
    sizes = []
    for rank in range(4):
        monkeypatch.setenv("RANK", str(rank))

        def fake_train(module, objective, X_train, X_val, config, **kwargs):
            sizes.append(X_val.shape[0])
            return [{"epoch": 1, "train_loss": 0.0, "seconds": 0.0}]

        monkeypatch.setattr(estimator_module, "train", fake_train)
        VAE(latent_dim=2, random_state=0, validation_fraction=0.05).fit(X)
    assert sorted(sizes) == [0, 1, 1, 1]


def test_fewer_training_rows_than_processes_is_a_clear_error(monkeypatch):
    from vaekit import VAE
    from vaekit import estimator as estimator_module
    from vaekit.errors import DataError

    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setattr(estimator_module, "init_process_group", lambda device: None)
    X = np.random.default_rng(0).uniform(size=(4, 3)).astype(np.float32)
    with pytest.raises(DataError, match="3 training row\\(s\\) cannot be shared among 4"):
        VAE(latent_dim=2, epochs=1, validation_fraction=0.25, random_state=0).fit(X)


@pytest.mark.filterwarnings("ignore::UserWarning")  # one epoch: posterior collapse is expected
def test_only_rank_0_writes_the_run(monkeypatch, tmp_path):
    """`vaekit train` under torchrun: every rank trains, rank 0 alone saves the model, the
    checkpoint and run.json (two writers would race on the same files)."""
    from vaekit import estimator as estimator_module
    from vaekit.jobs import train_run

    monkeypatch.setenv("WORLD_SIZE", "2")
    # No process group: the collectives (all-reduce, broadcast, gather) are no-ops, so each
    # rank trains alone here, and only the file writing is left to tell the ranks apart.
    monkeypatch.setattr(estimator_module, "init_process_group", lambda device: None)
    params = dict(epochs=1, latent_dim=2, hidden_dims=(16,), random_state=0)
    summaries = {}
    for rank in (1, 0):
        monkeypatch.setenv("RANK", str(rank))
        monkeypatch.setenv("LOCAL_RANK", str(rank))
        summaries[rank] = train_run("digits", tmp_path / f"rank{rank}", **params)
    for rank in (0, 1):
        assert summaries[rank]["world_size"] == 2 and summaries[rank]["epochs_run"] == 1
    # Rank 1 trained (its summary says so) but wrote no file: no model, checkpoint or run.json.
    rank1 = tmp_path / "rank1"
    assert (list(rank1.rglob("*")) if rank1.exists() else []) == []
    assert sorted(p.name for p in (tmp_path / "rank0").iterdir()) == [
        "checkpoint.safetensors", "config.json", "history.json", "model.safetensors", "run.json",
    ]  # fmt: skip
    assert json.loads((tmp_path / "rank0" / "run.json").read_text())["world_size"] == 2
    assert load(tmp_path / "rank0").latent_dim == 2


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"WORLD_SIZE": "2"}, "RANK is not set, so this process cannot join a torchrun job"),
        ({"WORLD_SIZE": "two", "RANK": "0"}, "WORLD_SIZE is 'two', not an integer"),
        ({"WORLD_SIZE": "2", "RANK": "0", "LOCAL_RANK": "x"}, "LOCAL_RANK is 'x', not an integer"),
        ({"WORLD_SIZE": "2", "RANK": "2"}, r"RANK=2 is outside 0\.\.1"),
    ],
)
def test_a_half_set_torchrun_environment_is_one_clear_error(monkeypatch, env, message):
    """WORLD_SIZE without RANK (a pod that sets one, not the other) was a raw KeyError."""
    from vaekit.distributed import world
    from vaekit.errors import ConfigError

    for name in ("WORLD_SIZE", "RANK", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=message):
        world()


def test_a_torchrun_environment_without_its_master_address_is_one_clear_error(monkeypatch):
    """WORLD_SIZE and RANK but no MASTER_ADDR: torch's rendezvous raised a bare ValueError."""
    from vaekit import VAE
    from vaekit.errors import ConfigError

    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    for name in ("MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(name, raising=False)
    X = np.random.default_rng(0).uniform(size=(20, 3)).astype(np.float32)
    with pytest.raises(ConfigError, match="MASTER_ADDR and MASTER_PORT are not set, so this"):
        VAE(latent_dim=2, epochs=1).fit(X)
