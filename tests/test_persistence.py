"""save / load: bitwise round trips, and one clear error for every broken model directory."""

from __future__ import annotations

import json
import pickle

import joblib
import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline

import vaekit
from vaekit import VAE, Autoencoder, load
from vaekit.errors import ModelFileError

QUICK = {"hidden_dims": (32,), "epochs": 3, "random_state": 0}


@pytest.fixture(scope="module")
def X():
    return load_digits().data


@pytest.fixture(scope="module")
def saved(tmp_path_factory, X):
    path = tmp_path_factory.mktemp("model") / "run"
    VAE(latent_dim=3, **QUICK).fit(X).save(path)
    return path


@pytest.mark.parametrize(
    ("cls", "images"), [(VAE, False), (VAE, True), (Autoencoder, False), (Autoencoder, True)]
)
def test_save_load_gives_bitwise_identical_outputs(tmp_path, X, cls, images):
    data = X.reshape(-1, 8, 8) / 16.0 if images else X
    model = cls(latent_dim=3, **QUICK).fit(data)
    model.save(tmp_path / "m")
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == [
        "config.json",
        "history.json",
        "model.safetensors",
    ]
    loaded = load(tmp_path / "m")
    assert type(loaded) is cls and loaded.get_params() == model.get_params()
    assert np.array_equal(loaded.transform(data), model.transform(data))
    assert np.array_equal(loaded.reconstruct(data[:5]), model.reconstruct(data[:5]))
    assert np.array_equal(loaded.score_samples(data[:5]), model.score_samples(data[:5]))
    assert loaded.history_ == model.history_
    assert loaded.architecture_ == model.architecture_


def test_loading_never_unpickles(saved, monkeypatch):
    def forbidden(*args, **kwargs):
        raise AssertionError("pickle was used while loading")

    monkeypatch.setattr(pickle, "load", forbidden)
    monkeypatch.setattr(pickle, "loads", forbidden)
    assert load(saved).latent_dim == 3


def _copy(saved, tmp_path):
    target = tmp_path / "copy"
    target.mkdir()
    for f in saved.iterdir():
        (target / f.name).write_bytes(f.read_bytes())
    return target


def test_truncated_weights(saved, tmp_path):
    run = _copy(saved, tmp_path)
    weights = run / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-100])
    with pytest.raises(ModelFileError, match="truncated, corrupted or was modified"):
        load(run)


def test_tampered_weights(saved, tmp_path):
    run = _copy(saved, tmp_path)
    data = bytearray((run / "model.safetensors").read_bytes())
    data[-5] ^= 0xFF  # one bit pattern inside a tensor: safetensors alone would not notice
    (run / "model.safetensors").write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match="checksum"):
        load(run)


def test_invalid_json(saved, tmp_path):
    run = _copy(saved, tmp_path)
    (run / "config.json").write_text("{not json")
    with pytest.raises(ModelFileError, match="not valid JSON"):
        load(run)


def test_model_from_a_newer_format(saved, tmp_path):
    run = _copy(saved, tmp_path)
    config = json.loads((run / "config.json").read_text())
    config["format_version"] = 99
    config["versions"]["vaekit"] = "9.0"
    (run / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelFileError, match="upgrade vaekit"):
        load(run)


def test_config_that_does_not_match_the_weights(saved, tmp_path):
    run = _copy(saved, tmp_path)
    config = json.loads((run / "config.json").read_text())
    config["params"]["latent_dim"] = 7
    (run / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelFileError, match="could not be rebuilt"):
        load(run)


@pytest.mark.parametrize("missing", ["config.json", "model.safetensors"])
def test_missing_files(saved, tmp_path, missing):
    run = _copy(saved, tmp_path)
    (run / missing).unlink()
    with pytest.raises(ModelFileError, match=missing.replace(".", r"\.")):
        load(run)


def test_not_a_directory(tmp_path):
    with pytest.raises(ModelFileError, match="not a model directory"):
        load(tmp_path / "nope")


def test_config_records_versions(saved):
    config = json.loads((saved / "config.json").read_text())
    assert config["versions"]["vaekit"] == vaekit.__version__
    assert config["class"] == "VAE" and config["fitted"]["likelihood_"] == "gaussian"


def test_pickle_and_joblib_round_trip(tmp_path, X):
    vae = VAE(latent_dim=3, **QUICK).fit(X)
    again = pickle.loads(pickle.dumps(vae))
    assert np.array_equal(again.transform(X), vae.transform(X))
    joblib.dump(vae, tmp_path / "m.joblib")
    assert np.array_equal(joblib.load(tmp_path / "m.joblib").transform(X), vae.transform(X))


def test_clone_pipeline_and_grid_search(X):
    y = load_digits().target
    vae = VAE(latent_dim=3, **QUICK)
    assert clone(vae).get_params() == vae.get_params()
    pipe = make_pipeline(VAE(latent_dim=4, **{**QUICK, "epochs": 30}), LogisticRegression())
    assert pipe.fit(X[:1000], y[:1000]).score(X[1000:], y[1000:]) > 0.5  # chance: 0.1
    search = GridSearchCV(VAE(**QUICK), {"latent_dim": [2, 4]}, cv=2).fit(X[:600])
    assert search.best_params_["latent_dim"] in (2, 4)
    assert np.isfinite(search.best_score_)


def test_numpy_scalar_params_save_and_checkpoint(tmp_path):
    """GridSearchCV hands estimators numpy scalars (param_grid={"latent_dim": np.arange(...)});
    they must save like Python numbers, and a save that fails must not damage a saved model."""
    X = load_digits().data[:300].astype(np.float32) / 16.0
    params = dict(hidden_dims=(np.int64(32),), epochs=1, random_state=0)
    model = VAE(latent_dim=np.int64(3), beta=np.float32(0.5), **params)
    model.fit(X, checkpoint_path=tmp_path / "checkpoint.safetensors")
    model.save(tmp_path / "run")
    loaded = load(tmp_path / "run")
    assert loaded.latent_dim == 3 and loaded.hidden_dims == (32,) and loaded.beta == 0.5
    np.testing.assert_array_equal(loaded.transform(X), model.transform(X))

    model.history_ = [{"epoch": object()}]  # cannot be written as JSON
    with pytest.raises(TypeError):
        model.save(tmp_path / "run")
    np.testing.assert_array_equal(load(tmp_path / "run").transform(X), loaded.transform(X))


def test_array_hidden_dims_save(tmp_path):
    X = load_digits().data[:200].astype(np.float32) / 16.0
    model = VAE(latent_dim=2, hidden_dims=np.array([16, 8]), epochs=1, random_state=0).fit(X)
    model.save(tmp_path / "run")
    assert load(tmp_path / "run").hidden_dims == (16, 8)


def test_column_names_of_a_table_survive_save_and_load(tmp_path):
    import pyarrow as pa

    X = load_digits().data[:200, :6] / 16.0
    names = ["a", "b", "c", "d", "e", "f"]
    table = pa.table({name: X[:, j] for j, name in enumerate(names)})
    model = VAE(latent_dim=2, hidden_dims=(8,), epochs=1, random_state=0).fit(table)
    model.save(tmp_path / "m")
    loaded = load(tmp_path / "m")
    assert list(loaded.feature_names_in_) == names
    np.testing.assert_array_equal(loaded.transform(table), model.transform(table))
    reordered = table.select(names[::-1])
    with pytest.raises(ValueError, match="feature names should match"):
        loaded.transform(reordered)  # as the model before saving does


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_a_model_saved_for_cuda_loads_on_the_cpu(tmp_path):
    X = load_digits().data[:200].astype(np.float32) / 16.0
    model = VAE(latent_dim=2, hidden_dims=(16,), epochs=1, random_state=0).fit(X)
    model.save(tmp_path / "run")
    config_path = tmp_path / "run" / "config.json"
    config = json.loads(config_path.read_text())
    config["params"]["device"] = "cuda"  # as written on a GPU machine
    config_path.write_text(json.dumps(config))
    loaded = load(tmp_path / "run")
    assert loaded.device == "cpu" and loaded.device_.type == "cpu"
    np.testing.assert_array_equal(loaded.transform(X), model.transform(X))
