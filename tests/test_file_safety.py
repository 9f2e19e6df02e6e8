"""Files and paths: a replaced model is all old or all new, ~ is home, memory maps keep float64."""

from __future__ import annotations

import os
import signal
import time

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from typer.testing import CliRunner

import vaekit.persistence as persistence
from vaekit import VAE, load
from vaekit.cli import app
from vaekit.interrupts import sigterm_as_interrupt
from vaekit.rows import MappedRows

QUICK = {"latent_dim": 2, "hidden_dims": (16,), "epochs": 1, "random_state": 0}


@pytest.fixture(scope="module")
def X():
    return load_digits().data[:300] / 16.0


def _saved_pair(tmp_path, X):
    path = tmp_path / "run"
    old = VAE(**QUICK).fit(X)
    old.save(path)
    return path, old, VAE(**{**QUICK, "random_state": 1}).fit(X)


def _model_files(path):
    return sorted(p.name for p in path.iterdir())


def test_an_interrupted_resave_leaves_the_old_model_whole(tmp_path, X, monkeypatch):
    """Ctrl-C while the config is being written: the weights must not have been replaced yet."""
    path, old, new = _saved_pair(tmp_path, X)
    real_fsync, files = persistence.os.fsync, []

    def fsync_then_interrupt(fd):
        real_fsync(fd)
        files.append(fd)
        if len(files) == 3:  # weights, history, config: interrupted on the last one
            raise KeyboardInterrupt

    monkeypatch.setattr(persistence.os, "fsync", fsync_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        new.save(path)
    monkeypatch.undo()
    assert _model_files(path) == ["config.json", "history.json", "model.safetensors"]
    np.testing.assert_array_equal(load(path).transform(X), old.transform(X))


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_during_the_renames_waits_until_all_are_done(tmp_path, X, monkeypatch, signum):
    """A real SIGINT (or SIGTERM, as the CLI handles it) between two renames is held back:
    the new model is complete, then the KeyboardInterrupt arrives."""
    path, _, new = _saved_pair(tmp_path, X)
    real_replace = persistence.os.replace

    def replace_with_a_signal(src, dst):
        real_replace(src, dst)
        if str(dst).endswith("model.safetensors"):
            signal.raise_signal(signum)

    monkeypatch.setattr(persistence.os, "replace", replace_with_a_signal)
    with pytest.raises(KeyboardInterrupt), sigterm_as_interrupt():
        new.save(path)
    monkeypatch.undo()
    assert _model_files(path) == ["config.json", "history.json", "model.safetensors"]
    np.testing.assert_array_equal(load(path).transform(X), new.transform(X))


def test_a_write_removes_what_a_killed_write_of_the_same_file_left(tmp_path, X):
    """SIGKILL between writing a temporary file and renaming it leaves the temporary file;
    the next save of that file removes it once it is old, and never a fresh one (a write
    in progress) or a file of the user's."""
    path, _, new = _saved_pair(tmp_path, X)
    abandoned = path / f".model.safetensors.{'a' * 32}.tmp"
    in_progress = path / f".model.safetensors.{'b' * 32}.tmp"
    users = path / ".model.safetensors.notes.tmp"
    for file in (abandoned, in_progress, users):
        file.write_bytes(b"partial")
    hour_ago = time.time() - 3600
    for file in (abandoned, users):
        os.utime(file, (hour_ago, hour_ago))
    new.save(path)
    assert not abandoned.exists()
    assert in_progress.exists() and users.exists()


def test_tilde_means_home_for_save_load_and_the_cli(tmp_path, X, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    model = VAE(**QUICK).fit(X)
    model.save("~/saved")
    assert (tmp_path / "home" / "saved" / "config.json").is_file()
    assert not (tmp_path / "~").exists()
    np.testing.assert_array_equal(load("~/saved").transform(X), model.transform(X))
    # `--out=~/run`: no shell expands a ~ after "=".
    result = CliRunner().invoke(
        app, ["train", "digits", "--out=~/run", "--epochs", "1", "--hidden-dims", "16"]
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / "home" / "run" / "model.safetensors").is_file()
    assert not (tmp_path / "~").exists()


def test_a_float64_memory_map_is_standardized_in_float64(tmp_path):
    """A memory-mapped float64 table gives the model the inputs the in-memory table gives it:
    a timestamp-like column (1.7e9 ± 10) keeps its variation, which float32 would round away."""
    rng = np.random.default_rng(0)
    X = np.column_stack([1.7e9 + rng.normal(0, 10, 400), rng.normal(size=(400, 2))])
    np.save(tmp_path / "t.npy", X)
    mapped = np.load(tmp_path / "t.npy", mmap_mode="r")
    model = VAE(**QUICK).fit(X)
    rows = np.arange(0, 400, 7)
    served = MappedRows(mapped, rows, model._to_model_input, torch.device("cpu"))
    batch = served[torch.arange(len(rows))].numpy()
    expected = model._to_model_input(X[rows])
    np.testing.assert_allclose(batch, expected, rtol=0, atol=1e-6)
    assert batch[:, 0].std() > 0.5  # the column still varies once standardized


def test_sigterm_ends_a_command_blocked_in_native_code(tmp_path):
    """Python runs a signal handler only between bytecodes: a main thread waiting in C++ for
    a torchrun peer that never comes would ignore SIGTERM for good; the watcher ends it."""
    import socket
    import subprocess
    import sys
    import time

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens there: the store client retries in C++
    script = tmp_path / "blocked.py"
    script.write_text(
        "from datetime import timedelta\n"
        "import torch.distributed as dist\n"
        "from vaekit.interrupts import sigterm_as_interrupt\n"
        "with sigterm_as_interrupt(grace=1.0):\n"
        "    print('ready', flush=True)\n"
        f"    dist.TCPStore('127.0.0.1', {port}, 2, False, timeout=timedelta(seconds=120))\n"
    )
    process = subprocess.Popen(
        [sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    try:
        assert process.stdout.readline().strip() == "ready"
        time.sleep(1.0)  # inside TCPStore's constructor
        process.send_signal(signal.SIGTERM)
        tic = time.monotonic()
        assert process.wait(timeout=30) == 143
        assert time.monotonic() - tic < 15
    finally:
        process.kill()
        process.wait()
