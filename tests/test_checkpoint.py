"""Checkpoints: an interrupted fit, resumed, ends exactly where an uninterrupted one does."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from vaekit import VAE, Autoencoder, load
from vaekit.checkpoint import CHECKPOINT_FILE, load_checkpoint
from vaekit.errors import ConfigError, ModelFileError

from _helpers import forget_checkpoint_param


@pytest.fixture(scope="module")
def digits() -> np.ndarray:
    return load_digits().data[:600].astype(np.float32) / 16.0


class Interrupt(Exception):
    pass


def _weights(model) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.module_.state_dict().items()}


def _assert_same_weights(a, b) -> None:
    wa, wb = _weights(a), _weights(b)
    assert wa.keys() == wb.keys()
    for key in wa:
        assert torch.equal(wa[key], wb[key]), key


@pytest.mark.parametrize(
    ("estimator", "lr_schedule", "augment", "precision"),
    [
        (VAE, "constant", None, "float32"),
        (Autoencoder, "constant", None, "float32"),
        (VAE, "cosine", None, "float32"),
        (VAE, "constant", "affine", "float32"),  # the augmentation's draws are replayed too
        (VAE, "constant", None, "bfloat16"),  # the hand-derived step in mixed precision
        (Autoencoder, "constant", None, "bfloat16"),  # autocast
    ],
)
def test_resumed_fit_equals_uninterrupted_fit(
    tmp_path, digits, monkeypatch, estimator, lr_schedule, augment, precision
):
    params = dict(latent_dim=3, hidden_dims=(32,), epochs=6, batch_size=64, random_state=0)
    params.update(lr_schedule=lr_schedule, augment=augment, precision=precision)
    if augment is not None:
        digits = digits.reshape(-1, 8, 8)
        params["conv_channels"] = (8,)
    if estimator is VAE:
        params["kl_warmup_epochs"] = 2
    full = estimator(**params).fit(digits)

    # Interrupt the first fit right after its third checkpoint is written.
    import vaekit.estimator as estimator_module

    real_save, saves = estimator_module.save_checkpoint, []

    def save_then_die(path, state, params):
        real_save(path, state, params)
        saves.append(len(state.history))
        if len(saves) == 3:
            raise Interrupt

    monkeypatch.setattr(estimator_module, "save_checkpoint", save_then_die)
    checkpoint = tmp_path / CHECKPOINT_FILE
    with pytest.raises(Interrupt):
        estimator(**params).fit(digits, checkpoint_path=checkpoint)
    monkeypatch.setattr(estimator_module, "save_checkpoint", real_save)

    state, _ = load_checkpoint(checkpoint, torch.device("cpu"))
    assert len(state.history) == 3
    resumed = estimator(**params).fit(digits, checkpoint_path=checkpoint, resume=True)
    _assert_same_weights(full, resumed)
    assert [h["train_loss"] for h in resumed.history_] == [h["train_loss"] for h in full.history_]
    np.testing.assert_array_equal(full.transform(digits), resumed.transform(digits))


def test_resume_can_extend_the_epochs(tmp_path, digits):
    params = dict(latent_dim=3, hidden_dims=(32,), batch_size=64, random_state=0, patience=None)
    full = VAE(epochs=5, **params).fit(digits)
    checkpoint = tmp_path / CHECKPOINT_FILE
    VAE(epochs=2, **params).fit(digits, checkpoint_path=checkpoint)
    extended = VAE(epochs=5, **params).fit(digits, checkpoint_path=checkpoint, resume=True)
    _assert_same_weights(full, extended)
    assert len(extended.history_) == 5


def test_resume_refuses_a_checkpoint_from_another_fit(tmp_path, digits):
    checkpoint = tmp_path / CHECKPOINT_FILE
    VAE(latent_dim=3, hidden_dims=(32,), epochs=1, random_state=0).fit(
        digits, checkpoint_path=checkpoint
    )
    with pytest.raises(ConfigError, match="latent_dim=3 \\(now 4\\)"):
        VAE(latent_dim=4, hidden_dims=(32,), epochs=2, random_state=0).fit(
            digits, checkpoint_path=checkpoint, resume=True
        )
    with pytest.raises(ConfigError, match="n_samples"):
        VAE(latent_dim=3, hidden_dims=(32,), epochs=2, random_state=0).fit(
            digits[:500], checkpoint_path=checkpoint, resume=True
        )


def test_a_damaged_or_missing_checkpoint_is_one_clear_error(tmp_path, digits):
    checkpoint = tmp_path / CHECKPOINT_FILE
    model = VAE(latent_dim=3, hidden_dims=(32,), epochs=1, random_state=0)
    with pytest.raises(ModelFileError, match="does not exist"):
        model.fit(digits, checkpoint_path=checkpoint, resume=True)
    model.fit(digits, checkpoint_path=checkpoint)
    checkpoint.write_bytes(checkpoint.read_bytes()[:-100])
    with pytest.raises(
        ModelFileError,
        match=r"not a readable vaekit checkpoint .*; start the run over with --overwrite",
    ):
        model.fit(digits, checkpoint_path=checkpoint, resume=True)
    with pytest.raises(ConfigError, match="checkpoint_path"):
        model.fit(digits, resume=True)


def test_a_checkpoint_path_that_cannot_be_written_fails_before_training(
    tmp_path, digits, monkeypatch
):
    import vaekit.estimator

    def no_training(*args, **kwargs):
        raise AssertionError("training started")

    monkeypatch.setattr(vaekit.estimator, "train", no_training)
    model = VAE(latent_dim=3, hidden_dims=(32,), epochs=1, random_state=0)
    with pytest.raises(ConfigError, match=r"is a directory; give a file name such as checkpoint"):
        model.fit(digits, checkpoint_path=tmp_path)
    with pytest.raises(ConfigError, match=r"missing is not an existing folder; create it first"):
        model.fit(digits, checkpoint_path=tmp_path / "missing" / CHECKPOINT_FILE)


def test_resume_refuses_fewer_epochs_than_the_checkpoint_holds(tmp_path, digits):
    checkpoint = tmp_path / CHECKPOINT_FILE
    params = dict(latent_dim=3, hidden_dims=(32,), random_state=0, patience=None)
    VAE(epochs=3, **params).fit(digits, checkpoint_path=checkpoint)
    with pytest.raises(ConfigError, match="already holds 3 epochs, more than epochs=2"):
        VAE(epochs=2, **params).fit(digits, checkpoint_path=checkpoint, resume=True)


def test_resume_warns_where_more_epochs_change_nothing_or_the_schedule(tmp_path, digits):
    checkpoint = tmp_path / CHECKPOINT_FILE
    # Early stopping fired: raising epochs trains nothing more.
    stopped = dict(latent_dim=3, hidden_dims=(32,), random_state=0, patience=1)
    model = VAE(epochs=60, **stopped).fit(digits, checkpoint_path=checkpoint)
    assert model.n_epochs_ < 60  # it did stop early
    with pytest.warns(UserWarning, match=f"stopped early after {model.n_epochs_} epochs"):
        again = VAE(epochs=80, **stopped).fit(digits, checkpoint_path=checkpoint, resume=True)
    assert again.n_epochs_ == model.n_epochs_
    # A cosine decay is laid out over epochs: more of them restart it.
    cosine = dict(latent_dim=3, hidden_dims=(32,), random_state=0, lr_schedule="cosine")
    VAE(epochs=2, **cosine).fit(digits, checkpoint_path=checkpoint)
    with pytest.warns(UserWarning, match="started with epochs=2, and epochs=4 lays the decay"):
        VAE(epochs=4, **cosine).fit(digits, checkpoint_path=checkpoint, resume=True)


def _train_command(run, epochs: int, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "vaekit", "train", "digits", "--out", str(run), "--latent-dim", "4",
        "--epochs", str(epochs), "--batch-size", "32", "--seed", "3", "--quiet", *extra,
    ]  # fmt: skip


def test_sigkill_mid_epoch_then_resume_matches_an_uninterrupted_run(tmp_path):
    """The CLI path: SIGKILL while training, `--resume`, same weights as a run never killed."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    epochs = 12
    straight = tmp_path / "straight"
    subprocess.run(_train_command(straight, epochs), check=True, env=env, capture_output=True)

    killed = tmp_path / "killed"
    process = subprocess.Popen(_train_command(killed, epochs), env=env)
    checkpoint = killed / CHECKPOINT_FILE
    deadline = time.monotonic() + 120
    try:
        while not checkpoint.exists():  # wait for the first epoch's checkpoint...
            assert process.poll() is None, "training ended before it could be killed"
            assert time.monotonic() < deadline
            time.sleep(0.01)
        first_write = checkpoint.stat().st_mtime_ns
        while checkpoint.stat().st_mtime_ns == first_write:  # ...and the second one's, so
            assert time.monotonic() < deadline  # that the kill lands mid-epoch, after a
            time.sleep(0.005)  # resume point exists
        time.sleep(0.05)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    assert not (killed / "model.safetensors").exists(), "the kill came too late to test resume"
    state, _ = load_checkpoint(checkpoint, torch.device("cpu"))
    assert 1 <= len(state.history) < epochs

    result = subprocess.run(
        _train_command(killed, epochs, "--resume"), env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    a, b = load(straight), load(killed)
    _assert_same_weights(a, b)
    X = load_digits().data.astype(np.float32)
    np.testing.assert_allclose(a.transform(X), b.transform(X), rtol=0, atol=1e-6)


def test_cli_resume_without_a_checkpoint_is_a_clear_error(tmp_path):
    result = subprocess.run(
        _train_command(tmp_path / "nothing", 2, "--resume"), capture_output=True, text=True
    )
    assert result.returncode == 2
    assert result.stderr.startswith("error:") and "Traceback" not in result.stderr
    assert "does not exist" in result.stderr


def test_resume_without_a_seed_keeps_the_first_runs_split(tmp_path, digits, monkeypatch):
    """random_state=None draws a new seed per fit; a resumed fit must reuse the checkpoint's,
    or rows it trained on would become validation rows."""
    import vaekit.estimator as estimator_module

    splits = []
    real_split = estimator_module._BaseAutoencoder._split

    def spy(self, n, seed):
        out = real_split(self, n, seed)
        splits.append(out[1].tolist())
        return out

    monkeypatch.setattr(estimator_module._BaseAutoencoder, "_split", spy)
    checkpoint = tmp_path / CHECKPOINT_FILE
    params = dict(latent_dim=3, hidden_dims=(32,), batch_size=64, patience=None)
    first = Autoencoder(epochs=2, **params).fit(digits, checkpoint_path=checkpoint)
    resumed = Autoencoder(epochs=3, **params).fit(digits, checkpoint_path=checkpoint, resume=True)
    assert resumed.seed_ == first.seed_
    assert splits[0] == splits[-1]  # the validation rows of both fits


def test_resume_refuses_a_checkpoint_of_the_other_estimator(tmp_path, digits):
    checkpoint = tmp_path / CHECKPOINT_FILE
    params = dict(latent_dim=3, hidden_dims=(32,), random_state=0)
    VAE(epochs=1, **params).fit(digits, checkpoint_path=checkpoint)
    with pytest.raises(ConfigError, match="a fit of VAE, and this fit is of Autoencoder"):
        Autoencoder(epochs=2, **params).fit(digits, checkpoint_path=checkpoint, resume=True)


def test_resume_refuses_other_data_of_the_same_shape(tmp_path, digits):
    """MNIST for Fashion-MNIST: the shapes agree, the values do not; resuming would go on from
    the other data's weights (and its best validation loss) without a word."""
    checkpoint = tmp_path / CHECKPOINT_FILE
    params = dict(latent_dim=3, hidden_dims=(32,), random_state=0)
    VAE(epochs=1, **params).fit(digits, checkpoint_path=checkpoint)
    other = np.roll(digits, 1, axis=0)  # the same rows, in another order
    with pytest.raises(ConfigError, match="trained on other data of the same shape"):
        VAE(epochs=2, **params).fit(other, checkpoint_path=checkpoint, resume=True)
    # The same values as float64 (a table read otherwise) are the same data.
    VAE(epochs=2, **params).fit(digits.astype(np.float64), checkpoint_path=checkpoint, resume=True)
    # A checkpoint from before the digest was recorded resumes as it did.
    forget_checkpoint_param(checkpoint, "data_digest")
    VAE(epochs=3, **params).fit(other, checkpoint_path=checkpoint, resume=True)


def test_a_checkpoint_whose_entries_do_not_fit_is_one_clear_error(tmp_path, digits):
    """Valid safetensors, but a tensor changed, a weight missing or reshaped, or a header entry
    missing: one ModelFileError, not torch's state_dict error, a KeyError or "Invalid mt19937
    state"."""
    import json

    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    checkpoint = tmp_path / CHECKPOINT_FILE
    params = dict(latent_dim=3, hidden_dims=(32,), random_state=0)
    VAE(epochs=1, **params).fit(digits, checkpoint_path=checkpoint)
    original = checkpoint.read_bytes()

    def drop_weight(tensors, meta):
        del tensors[next(k for k in tensors if k.startswith("module."))]

    def reshape_best(tensors, meta):
        tensors[next(k for k in tensors if k.startswith("best."))] = torch.zeros(3, 3)

    def drop_header_entry(tensors, meta):
        header = json.loads(meta["vaekit_checkpoint"])
        del header["optimizer_values"]
        meta["vaekit_checkpoint"] = json.dumps(header)

    def scale_rng(tensors, meta):  # a changed value: the RNG state torch would refuse
        tensors["rng.cpu"] = torch.zeros_like(tensors["rng.cpu"])

    def without_digest(edit):  # as a checkpoint written before the digest was
        def edited(tensors, meta):
            edit(tensors, meta)
            header = json.loads(meta["vaekit_checkpoint"])
            del header["tensors_sha256"]
            meta["vaekit_checkpoint"] = json.dumps(header)

        return edited

    modified = "does not match its own digest: its tensors were modified"
    cases = [
        (drop_weight, modified),
        (scale_rng, modified),
        (without_digest(drop_weight), "weights do not fit this model \\(Missing key"),
        (without_digest(reshape_best), "weights do not fit this model \\(best weights differ"),
        (drop_header_entry, "not a readable vaekit checkpoint \\(no 'optimizer_values'\\)"),
    ]
    for edit, message in cases:
        checkpoint.write_bytes(original)
        with safe_open(checkpoint, "pt") as f:
            meta = f.metadata()
        tensors = load_file(checkpoint)
        edit(tensors, meta)
        save_file(tensors, checkpoint, metadata=meta)
        with pytest.raises(ModelFileError, match=message):
            VAE(epochs=2, **params).fit(digits, checkpoint_path=checkpoint, resume=True)


def test_resume_refuses_data_that_auto_gives_the_other_likelihood(tmp_path, digits):
    """Same shape, values beyond [0, 1]: likelihood="auto" picks Gaussian, whose network has a
    decoder variance the Bernoulli checkpoint lacks (a raw state_dict error before)."""
    checkpoint = tmp_path / CHECKPOINT_FILE
    params = dict(latent_dim=3, hidden_dims=(32,), random_state=0)
    VAE(epochs=1, **params).fit(digits, checkpoint_path=checkpoint)
    with pytest.raises(ConfigError, match="likelihood_='bernoulli' \\(now 'gaussian'\\)"):
        VAE(epochs=2, **params).fit(digits * 16, checkpoint_path=checkpoint, resume=True)
    # A checkpoint from before the choice was recorded resumes as it did.
    forget_checkpoint_param(checkpoint, "likelihood_")
    VAE(epochs=2, **params).fit(digits, checkpoint_path=checkpoint, resume=True)


def test_rng_states_round_trip_per_rank_and_in_device_order(tmp_path):
    """Each rank's states come back to that rank; CUDA states by device number, not by name
    (as strings, cuda.10 sorts before cuda.2)."""
    from vaekit.checkpoint import TrainingState, save_checkpoint

    def fake(rank: int, devices: int) -> dict:
        cpu = torch.full((8,), rank, dtype=torch.uint8)
        return {"cpu": cpu, "cuda": [torch.full((4,), 16 * rank + i, dtype=torch.uint8)
                                     for i in range(devices)]}  # fmt: skip

    rngs = [fake(rank, 11) for rank in range(3)]
    state = TrainingState(
        module={"w": torch.zeros(2)}, optimizer={"state": {}, "param_groups": []}, history=[],
        best_loss=float("inf"), best_module=None, stale=0, restarts=0, stopped=False, rng=rngs,
    )  # fmt: skip
    path = tmp_path / CHECKPOINT_FILE
    save_checkpoint(path, state, {})
    loaded, _ = load_checkpoint(path, torch.device("cpu"))
    assert len(loaded.rng) == 3
    for want, got in zip(rngs, loaded.rng, strict=True):
        assert torch.equal(want["cpu"], got["cpu"])
        assert [int(t[0]) for t in got["cuda"]] == [int(t[0]) for t in want["cuda"]]


def test_a_checkpoint_with_losses_in_standardized_nats_resumes_in_the_new_units(tmp_path):
    """Checkpoints written before the history was in nats of the data hold standardized nats:
    resumed, they are shifted by Σ log scale_, so new epochs compare with the old best loss
    in one unit (a fixed offset made every resumed epoch look worse, and stopped the run)."""
    import json

    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 4)) @ rng.normal(size=(4, 6)) * 30 + 500  # Gaussian, scale_ ~ 60
    params = dict(latent_dim=2, hidden_dims=(16,), random_state=0, patience=3)
    whole = VAE(epochs=6, **params).fit(X)
    checkpoint = tmp_path / CHECKPOINT_FILE
    first = VAE(epochs=3, **params).fit(X, checkpoint_path=checkpoint)
    offset = float(np.log(first.scale_).sum())
    assert offset > 10
    # As the earlier code wrote it: no "losses" entry, every loss offset nats lower.
    with safe_open(checkpoint, "pt") as f:
        meta = f.metadata()
    header = json.loads(meta["vaekit_checkpoint"])
    del header["losses"]
    header["best_loss"] -= offset
    for record in header["history"]:
        for key in ("train_loss", "train_recon", "val_loss", "val_recon"):
            record[key] -= offset
    save_file(load_file(checkpoint), checkpoint, metadata={"vaekit_checkpoint": json.dumps(header)})
    resumed = VAE(epochs=6, **params).fit(X, checkpoint_path=checkpoint, resume=True)
    assert len(resumed.history_) == len(whole.history_)
    for a, b in zip(resumed.history_, whole.history_, strict=True):
        assert a["val_loss"] == pytest.approx(b["val_loss"], rel=1e-9)
    np.testing.assert_array_equal(resumed.transform(X), whole.transform(X))
