"""save / load: bitwise round trips, devices, scikit-learn.

A broken model directory (damaged weights, bad config, missing files) gets one clear error: those
cases are in the catalogue of tests/test_bad_inputs.py, with their messages.
"""

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
from vaekit.errors import ConfigError, DataError

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


def test_load_on_a_chosen_device(saved, X, monkeypatch):
    saved_model = load(saved)
    on_cpu = load(saved, device="cpu")
    assert on_cpu.device == "cpu" and on_cpu.device_ == torch.device("cpu")
    assert all(p.device.type == "cpu" for p in on_cpu.module_.parameters())
    np.testing.assert_array_equal(on_cpu.transform(X), saved_model.transform(X))
    # A device this machine lacks is one clear error, not a torch traceback at first use.
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # as on a CPU-only machine
    with pytest.raises(ConfigError, match="device='cuda' was requested but CUDA is not available"):
        load(saved, device="cuda")
    with pytest.raises(ConfigError, match="device='meta' was requested but meta is not available"):
        load(saved, device="meta")  # holds no data
    with pytest.raises(ConfigError, match="device='tpu' is not a torch device"):
        load(saved, device="tpu")


@pytest.mark.parametrize("cls", [VAE, Autoencoder])
def test_models_pickled_under_the_old_module_path_still_unpickle(X, cls, monkeypatch):
    """Until 2026-11-22 both classes lived in vaekit.estimator, and pickles name them so."""
    model = cls(latent_dim=2, **QUICK).fit(X[:200])
    monkeypatch.setattr(cls, "__module__", "vaekit.estimator")
    blob = pickle.dumps(model)
    monkeypatch.undo()
    assert b"vaekit.estimator" in blob
    again = pickle.loads(blob)
    assert type(again) is cls
    np.testing.assert_array_equal(again.transform(X[:5]), model.transform(X[:5]))


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
    # Each candidate is scored by VAE.score, the mean ELBO, on the held-out fold: recomputed
    # here for the first fold, with the same (unshuffled) KFold split and the same seed.
    scores = search.cv_results_["mean_test_score"]
    for i, k in enumerate(search.cv_results_["param_latent_dim"]):
        model = VAE(**{**QUICK, "latent_dim": int(k)}).fit(X[300:600])
        fold = model.score(X[:300])
        assert search.cv_results_["split0_test_score"][i] == pytest.approx(fold, rel=1e-6)
    assert scores[0] != scores[1]
    # The best is the candidate with the highest mean score, refit on all 600 rows with it.
    best = int(search.cv_results_["param_latent_dim"][np.argmax(scores)])
    assert search.best_params_ == {"latent_dim": best}
    assert search.best_score_ == scores.max()
    refit = search.best_estimator_
    assert refit.latent_dim == best and refit.transform(X[:5]).shape == (5, best)
    np.testing.assert_array_equal(
        refit.transform(X[:5]), VAE(**{**QUICK, "latent_dim": best}).fit(X[:600]).transform(X[:5])
    )


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
    order = r"X has the training columns in another order \(column 0 is 'f', in training 'a'\)"
    for est in (model, loaded):
        with pytest.raises(DataError, match=order):
            est.transform(reordered)
    renamed = table.rename_columns([*names[:5], "g"])
    with pytest.raises(DataError, match="missing 'f'; not in the training data: 'g'"):
        loaded.transform(renamed)


def test_set_output_survives_save_and_load(tmp_path, monkeypatch):
    """As pickle keeps it: a model set to return DataFrames still does after load, where
    pandas is installed; where it is not, load says so and transform returns arrays."""
    from vaekit import persistence

    X = load_digits().data[:100, :6] / 16.0
    model = VAE(latent_dim=2, hidden_dims=(8,), epochs=1, random_state=0).fit(X)
    model.save(tmp_path / "plain")
    assert not hasattr(load(tmp_path / "plain"), "_sklearn_output_config")
    model.set_output(transform="pandas")  # checked when transform runs (pandas not needed here)
    model.save(tmp_path / "m")
    installed = {"pandas": True}
    real_find_spec = persistence.importlib.util.find_spec
    monkeypatch.setattr(
        persistence.importlib.util,
        "find_spec",
        lambda name, *a: (
            (object() if installed[name] else None)
            if name in installed
            else real_find_spec(name, *a)
        ),
    )
    assert load(tmp_path / "m")._sklearn_output_config == {"transform": "pandas"}
    installed["pandas"] = False
    with pytest.warns(UserWarning, match="pandas is not installed here, so transform returns"):
        loaded = load(tmp_path / "m")
    np.testing.assert_array_equal(loaded.transform(X), model._mu(X))


def test_vaekit_own_callers_take_arrays_whatever_set_output_asks(tmp_path):
    """reconstruct, generation, latent diagnostics and `vaekit embed` index and stack μ(x);
    with set_output("pandas") the public transform gives a DataFrame (or, without pandas,
    an ImportError), which they used to get."""
    from vaekit.evaluation import active_units
    from vaekit.generation import interpolate, traverse
    from vaekit.jobs import embed_run

    X = load_digits().data[:200] / 16.0
    model = VAE(latent_dim=2, hidden_dims=(16,), epochs=1, random_state=0).fit(X)
    expected = model.reconstruct(X[:3])
    model.set_output(transform="pandas")
    np.testing.assert_array_equal(model.reconstruct(X[:3]), expected)
    assert interpolate(model, X[0], X[1], steps=4).shape == (4, 64)
    assert traverse(model, X[0], dim=0).shape[1:] == (64,)
    assert active_units(model, X)["variances"].shape == (2,)
    model.save(tmp_path / "run")
    np.save(tmp_path / "x.npy", X[:10].astype(np.float32))
    embed_run(tmp_path / "run", tmp_path / "x.npy", tmp_path / "mu.csv")
    assert len((tmp_path / "mu.csv").read_text().splitlines()) == 11


def test_a_network_parameter_changed_after_fit_is_not_saved_as_the_model(tmp_path):
    """set_params(latent_dim=...) before a refit: the fitted methods go on with the fitted
    network, and save refuses (load would rebuild another network around the weights)."""
    X = load_digits().data[:200] / 16.0
    model = VAE(latent_dim=2, hidden_dims=(16,), epochs=1, random_state=0).fit(X)
    model.set_params(latent_dim=5, hidden_dims=[32], beta=2.0)  # beta shapes no network
    assert model.transform(X[:3]).shape == (3, 2)
    assert len(model.get_feature_names_out()) == 2
    assert model.sample(2, random_state=0).shape == (2, 64)
    assert model.inverse_transform(np.zeros((1, 2))).shape == (1, 64)
    with pytest.raises(
        ConfigError,
        match=r"latent_dim=5, hidden_dims=\(32,\) were set after fit, but the fitted network "
        r"was built with latent_dim=2, hidden_dims=\(16,\): fit again, or set_params",
    ):
        model.save(tmp_path / "run")
    assert not (tmp_path / "run").exists()
    model.set_params(latent_dim=2, hidden_dims=(16,))
    model.save(tmp_path / "run")
    assert load(tmp_path / "run").beta == 2.0


def test_parameters_that_shape_no_part_of_the_fitted_network_may_change_before_save(tmp_path):
    """conv_channels in an MLP, the leading hidden_dims of a conv network (only the last sets
    its dense layer): best_params_ of a grid over both architectures copied onto a model."""
    X = load_digits().data[:200] / 16.0
    mlp = VAE(latent_dim=2, hidden_dims=(16,), epochs=1, random_state=0).fit(X)
    mlp.set_params(conv_channels=(8,))
    mlp.save(tmp_path / "mlp")
    conv = VAE(latent_dim=2, hidden_dims=(16,), conv_channels=(4,), epochs=1, random_state=0).fit(
        X.reshape(-1, 8, 8)
    )
    conv.set_params(hidden_dims=(64, 16))
    conv.save(tmp_path / "conv")
    assert load(tmp_path / "conv").hidden_dims == (64, 16)
    conv.set_params(hidden_dims=(32,))
    with pytest.raises(ConfigError, match=r"hidden_dims=\(32,\) was set after fit"):
        conv.save(tmp_path / "conv")


def test_save_refuses_a_parameter_that_load_would_refuse(tmp_path):
    X = load_digits().data[:200] / 16.0
    model = VAE(latent_dim=2, hidden_dims=(16,), epochs=1, random_state=0).fit(X)
    model.set_params(epochs=0)
    with pytest.raises(ConfigError, match="epochs must be a positive integer, got 0"):
        model.save(tmp_path / "run")
    assert not (tmp_path / "run").exists()
    # A GPU this machine lacks is not refused: load moves such a model to the CPU.
    if not torch.cuda.is_available():
        model.set_params(epochs=1, device="cuda")
        model.save(tmp_path / "run")
        assert load(tmp_path / "run").device_.type == "cpu"


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


def test_a_conv_model_with_the_old_decoder_layout_says_to_retrain(tmp_path):
    """Before the fix, a decoder layer with as many channels as the images had no ReLU after
    it: such a model's layers are numbered differently, and it must be trained again."""
    import hashlib

    from safetensors.torch import load as load_tensors
    from safetensors.torch import save as dump_tensors

    from vaekit.errors import ModelFileError

    images = np.random.default_rng(0).random((40, 1, 16, 16), dtype=np.float32)
    VAE(latent_dim=2, conv_channels=(1, 4), **QUICK).fit(images).save(tmp_path / "run")
    weights = tmp_path / "run" / "model.safetensors"
    tensors = load_tensors(weights.read_bytes())
    old = {k.replace("decoder.deconv.2.", "decoder.deconv.1."): v for k, v in tensors.items()}
    data = dump_tensors(old)
    weights.write_bytes(data)
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    config["weights_sha256"] = hashlib.sha256(data).hexdigest()
    (tmp_path / "run" / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelFileError, match=r"decoder lacked a ReLU .* train it again"):
        load(tmp_path / "run")
