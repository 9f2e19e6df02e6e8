"""Generation: latent paths (linear, slerp), traversals, the PNG / .npy writers and the commands."""

from __future__ import annotations

import json
import re

import matplotlib.image as mpimg
import numpy as np
import pytest
from typer.testing import CliRunner

from vaekit import VAE, Autoencoder, load
from vaekit.cli import app
from vaekit.datasets import load_dataset
from vaekit.errors import ConfigError, DataError
from vaekit.generation import (
    interpolate,
    latent_path,
    traversal_latents,
    traversal_values,
    traverse,
)
from vaekit.generation_jobs import parse_dims, save_array, save_image_grid
from vaekit.jobs import train_run
from vaekit.plots import PNG_SIGNATURE, image_grid

runner = CliRunner()
SMALL = {"epochs": 2, "latent_dim": 4, "hidden_dims": (32,), "random_state": 0}


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Tiny runs: a VAE and an AE on digits (MLP, 64 features, recorded as 8x8), and a VAE on a
    5-column table."""
    root = tmp_path_factory.mktemp("generation")
    table = np.random.default_rng(0).normal(size=(60, 5)).astype(np.float32)
    np.save(root / "table.npy", table)
    train_run("digits:train", root / "vae", model="vae", **SMALL)
    train_run("digits:train", root / "ae", model="ae", **SMALL)
    train_run(root / "table.npy", root / "table", model="vae", **SMALL)
    two_channel = np.random.default_rng(1).random((24, 2, 8, 8), dtype=np.float32)
    np.save(root / "two_channel.npy", two_channel)
    train_run(root / "two_channel.npy", root / "two_channel", model="vae", **SMALL)
    return root


@pytest.fixture(scope="module")
def digits_vae(runs):
    return load(runs / "vae")


@pytest.fixture(scope="module")
def image_vae():
    """A conv VAE on (n, 1, 8, 8) images: outputs keep the channel axis."""
    X = np.random.default_rng(1).random((24, 1, 8, 8), dtype=np.float32)
    return VAE(latent_dim=3, conv_channels=(4,), hidden_dims=(16,), epochs=1, random_state=0).fit(
        X
    ), X


# -- latent paths --------------------------------------------------------------------------------


def test_linear_path_endpoints_and_even_steps():
    z0, z1 = np.array([0.0, 1.0, -2.0]), np.array([4.0, 1.0, 2.0])
    path = latent_path(z0, z1, steps=5)
    assert path.shape == (5, 3) and path.dtype == np.float32
    np.testing.assert_array_equal(path[0], z0)
    np.testing.assert_array_equal(path[-1], z1)
    np.testing.assert_allclose(np.diff(path, axis=0), np.tile((z1 - z0) / 4, (4, 1)), atol=1e-6)


def test_slerp_keeps_the_norm_and_moves_at_constant_angular_speed():
    rng = np.random.default_rng(0)
    z0, z1 = rng.normal(size=16), rng.normal(size=16)
    z0, z1 = 2 * z0 / np.linalg.norm(z0), 2 * z1 / np.linalg.norm(z1)  # equal norms
    path = latent_path(z0, z1, steps=11, method="spherical").astype(np.float64)
    np.testing.assert_allclose(path[0], z0, rtol=1e-6)
    np.testing.assert_allclose(path[-1], z1, rtol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(path, axis=1), 2.0, rtol=1e-6)
    unit = path / np.linalg.norm(path, axis=1, keepdims=True)
    angles = np.arccos(np.clip(np.sum(unit[:-1] * unit[1:], axis=1), -1, 1))
    np.testing.assert_allclose(angles, angles[0], rtol=1e-4)
    # The linear path cuts through the interior: its midpoint is shorter.
    assert np.linalg.norm(latent_path(z0, z1, steps=11)[5]) < 2.0 - 1e-3


def test_slerp_between_orthogonal_unit_vectors():
    mid = latent_path([1.0, 0.0], [0.0, 1.0], steps=3, method="spherical")[1]
    np.testing.assert_allclose(mid, [2**-0.5, 2**-0.5], rtol=1e-6)


@pytest.mark.parametrize(
    "z1",
    [[2.0, 4.0, 6.0], [1.0 + 1e-9, 2.0, 3.0], [-1.0, -2.0, -3.0], [0.0, 0.0, 0.0]],
    ids=["parallel", "nearly-parallel", "antiparallel", "zero"],
)
def test_slerp_falls_back_to_linear_when_the_angle_is_undefined(z1):
    z0 = [1.0, 2.0, 3.0]
    spherical = latent_path(z0, z1, steps=7, method="spherical")
    assert np.all(np.isfinite(spherical))
    np.testing.assert_allclose(spherical, latent_path(z0, z1, steps=7), atol=1e-6)


@pytest.mark.parametrize("gap", [1e-5, 1e-3, 0.3])
def test_slerp_of_unequal_nearly_opposite_codes_stays_between_their_norms(gap):
    """Slerp of the codes themselves runs out to ~1/sin Ω for nearly opposite codes of unequal
    norm (21,588 for codes of norm < 3, measured); the norm goes linearly between the ends."""
    z0 = np.array([1.0, 0.0])
    z1 = -2.5 * np.array([np.cos(gap), np.sin(gap)])  # angle π - gap to z0
    path = latent_path(z0, z1, steps=9, method="spherical").astype(np.float64)
    norms = np.linalg.norm(path, axis=1)
    np.testing.assert_allclose(norms, np.linspace(1.0, 2.5, 9), rtol=1e-5)
    angles = np.arctan2(path[:, 1], path[:, 0])  # a great-circle direction, at constant speed
    assert np.all(np.abs(np.abs(np.diff(np.unwrap(angles))) - (np.pi - gap) / 8) < 1e-4)


def test_latent_path_rejects_bad_arguments():
    with pytest.raises(ConfigError, match="steps must be"):
        latent_path([0.0], [1.0], steps=1)
    with pytest.raises(ConfigError, match="method must be"):
        latent_path([0.0], [1.0], method="cubic")
    with pytest.raises(DataError, match="same shape"):
        latent_path([0.0, 1.0], [1.0])
    with pytest.raises(DataError, match="NaN"):
        latent_path([np.nan], [1.0])


# -- interpolate / traverse on fitted models -------------------------------------------------------


@pytest.mark.parametrize("method", ["linear", "spherical"])
@pytest.mark.parametrize("kind", ["vae", "ae"])
def test_interpolation_endpoints_decode_to_the_reconstructions(runs, method, kind):
    model = load(runs / kind)
    X = load_dataset("digits:test").X
    path = interpolate(model, X[3], X[7], steps=6, method=method)
    assert path.shape == (6, 64) and path.dtype == np.float32
    recon = model.reconstruct(X[[3, 7]])
    np.testing.assert_allclose(path[[0, -1]], recon, atol=1e-6)
    mu = model.transform(X[[3, 7]])
    expected = model.inverse_transform(latent_path(mu[0], mu[1], 6, method))
    np.testing.assert_allclose(path, expected, atol=1e-6)


def test_interpolate_accepts_a_batch_of_one_and_rejects_other_shapes(digits_vae):
    X = load_dataset("digits:test").X
    np.testing.assert_array_equal(
        interpolate(digits_vae, X[:1], X[1:2], steps=3), interpolate(digits_vae, X[0], X[1], 3)
    )
    with pytest.raises(DataError, match="one sample of shape"):
        interpolate(digits_vae, X[:2], X[2], steps=3)


def test_python_interpolate_and_traverse_take_flat_images_and_table_rows(image_vae):
    model, X = image_vae  # (n, 1, 8, 8) images
    flat = X.reshape(len(X), -1)
    np.testing.assert_array_equal(
        interpolate(model, flat[0], flat[1:2], steps=3), interpolate(model, X[0], X[1], steps=3)
    )
    np.testing.assert_array_equal(traverse(model, flat[2], 0), traverse(model, X[2], 0))
    # An (8, 8) image without its channel axis, as transform takes (n, 8, 8).
    np.testing.assert_array_equal(
        interpolate(model, X[0, 0], X[1, 0], steps=3), interpolate(model, X[0], X[1], steps=3)
    )
    with pytest.raises(DataError, match="one sample of shape"):
        interpolate(model, flat[0, :10], X[1], steps=3)


def test_traverse_dim_takes_numpy_integers_and_names_other_types(image_vae):
    model, X = image_vae
    np.testing.assert_array_equal(traverse(model, X[0], np.array(1)), traverse(model, X[0], 1))
    np.testing.assert_array_equal(traverse(model, X[0], np.int64(1)), traverse(model, X[0], 1))
    for bad, message in [
        (1.0, "dim must be an integer, a list of integers or None; got 1.0"),
        ("0", "dim must be an integer, a list of integers or None; got '0'"),
        (True, "Latent dimensions are integers; got True"),
        ([0, 1.5], "Latent dimensions are integers; got 1.5"),
        (3, "Latent dimension 3 is out of range: the latent space has 3 dimensions"),
    ]:
        with pytest.raises(ConfigError, match=re.escape(message)):
            traverse(model, X[0], bad)
    # A model fitted on a named table (a pyarrow Table, as a DataFrame would be) takes its rows
    # without scikit-learn's "X does not have valid feature names" warning.
    import warnings

    import pyarrow as pa

    rows = np.random.default_rng(0).random((40, 3))
    table = pa.table({name: rows[:, j] for j, name in enumerate("abc")})
    named = VAE(latent_dim=2, hidden_dims=(8,), epochs=1, random_state=0).fit(table)
    assert list(named.feature_names_in_) == ["a", "b", "c"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        interpolate(named, rows[0], rows[1], steps=3)
        traverse(named, rows[0], 0)


def test_traversal_grid_changes_only_the_chosen_dimension():
    base = np.array([0.5, -1.0, 2.0, 0.25], np.float32)
    values = np.linspace(-2, 2, 5)
    grid = traversal_latents(base, [2, 0], values)
    assert grid.shape == (2, 5, 4) and grid.dtype == np.float32
    for row, d in enumerate([2, 0]):
        np.testing.assert_allclose(grid[row, :, d], values)
        others = np.delete(grid[row], d, axis=1)
        np.testing.assert_array_equal(others, np.tile(np.delete(base, d), (5, 1)))


def test_traverse_decodes_that_grid(digits_vae):
    x = load_dataset("digits:test").X[0]
    values = traversal_values(2.0, 5)
    got = traverse(digits_vae, x, dim=[0, 3], values=values)
    assert got.shape == (2, 5, 64)
    grid = traversal_latents(digits_vae.transform(x[None])[0], [0, 3], values)
    expected = digits_vae.inverse_transform(grid.reshape(-1, 4)).reshape(2, 5, 64)
    np.testing.assert_allclose(got, expected, atol=1e-6)
    # Around z = 0 by default; one int dim gives one row; None gives every dimension.
    one = traverse(digits_vae, dim=1)
    assert one.shape == (9, 64)
    zero_grid = traversal_latents(np.zeros(4), [1], np.linspace(-3, 3, 9))[0]
    np.testing.assert_allclose(one, digits_vae.inverse_transform(zero_grid), atol=1e-6)
    assert traverse(digits_vae).shape == (4, 9, 64)


def test_traverse_errors(runs, digits_vae):
    with pytest.raises(ConfigError, match="out of range"):
        traverse(digits_vae, dim=4)
    with pytest.raises(ConfigError, match="values must be"):
        traverse(digits_vae, dim=0, values=[])
    with pytest.raises(ConfigError, match="values must be finite numbers; got inf"):
        traverse(digits_vae, dim=0, values=[0.0, np.inf])
    with pytest.raises(ConfigError, match="no prior"):
        traverse(load(runs / "ae"), dim=0)  # an AE needs x
    with pytest.raises(ConfigError, match="limit must be"):
        traversal_values(0.0)


def test_shapes_for_image_and_tabular_models(runs, image_vae):
    model, X = image_vae
    assert interpolate(model, X[0], X[1], steps=4, method="spherical").shape == (4, 1, 8, 8)
    assert traverse(model, X[0]).shape == (3, 9, 1, 8, 8)
    assert traverse(model, dim=2, values=[0.0, 1.0]).shape == (2, 1, 8, 8)
    table = load(runs / "table")
    rows = np.load(runs / "table.npy")
    assert interpolate(table, rows[0], rows[1], steps=5).shape == (5, 5)
    assert traverse(table, rows[0], dim=[1]).shape == (1, 9, 5)
    ae = Autoencoder(latent_dim=2, hidden_dims=(8,), epochs=1, random_state=0).fit(rows)
    assert traverse(ae, rows[0]).shape == (2, 9, 5)


# -- writers ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(6, 8, 8), (6, 1, 8, 8), (6, 3, 10, 12)])
def test_png_grid_is_written_atomically_and_readable(tmp_path, shape):
    images = np.random.default_rng(0).random(shape)
    out = save_image_grid(images, tmp_path / "grid.png", nrows=2, row_labels=["a", "b"])
    assert out.read_bytes().startswith(PNG_SIGNATURE)
    pixels = mpimg.imread(out)
    assert pixels.ndim == 3 and pixels.shape[0] > 50 and pixels.shape[1] > 50
    assert [p.name for p in tmp_path.iterdir()] == ["grid.png"]  # no temporary file left
    with pytest.raises(ConfigError, match="row labels"):
        save_image_grid(images, tmp_path / "bad.png", nrows=2, row_labels=["a"])
    assert not (tmp_path / "bad.png").exists()


def test_image_grid_row_and_column_labels_sit_at_tile_centres():
    fig = image_grid(np.zeros((6, 8, 8)), nrows=2, row_labels=["z0", "$z3"], col_labels="abc")
    (ax,) = fig.axes
    assert [t.get_text() for t in ax.get_yticklabels()] == ["z0", r"\$z3"]  # literal, no mathtext
    np.testing.assert_allclose(ax.get_yticks(), [3.5, 12.5])  # 8-pixel tiles, 1-pixel gaps
    np.testing.assert_allclose(ax.get_xticks(), [3.5, 12.5, 21.5])
    assert not image_grid(np.zeros((4, 8, 8))).axes[0].get_yticks().size  # unchanged default


def test_npy_round_trip(tmp_path):
    array = np.random.default_rng(0).random((2, 3, 8, 8)).astype(np.float32)
    out = save_array(array, tmp_path / "a.npy")
    got = np.load(out)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, array)
    assert [p.name for p in tmp_path.iterdir()] == ["a.npy"]


def test_parse_dims():
    assert parse_dims("0, 2,3") == [0, 2, 3]
    assert parse_dims(None) is None and parse_dims("all") is None
    with pytest.raises(ConfigError, match="comma-separated"):
        parse_dims("0;1")
    assert parse_dims(0) == [0] and parse_dims((1, 2)) == [1, 2]
    with pytest.raises(ConfigError, match="--dims is empty"):
        parse_dims("")
    with pytest.raises(ConfigError, match="--dims lists 0 twice"):
        parse_dims("0,1,0")
    for bad in ([1.7], [True], ["x"]):  # 1.7 used to become dimension 1, silently
        with pytest.raises(ConfigError, match="dims must be latent dimensions"):
            parse_dims(bad)


# -- the commands ----------------------------------------------------------------------------------


def test_cli_generate(runs, tmp_path):
    result = invoke("generate", runs / "vae", "-n", 12, "--out", tmp_path / "s.npy", "--seed", 3)
    assert result.exit_code == 0, result.output
    samples = np.load(tmp_path / "s.npy")
    np.testing.assert_array_equal(samples, load(runs / "vae").sample(12, random_state=3))
    result = invoke("generate", runs / "vae", "-n", 16, "--out", tmp_path / "s.png", "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["image_shape"] == [8, 8] and summary["shape"] == [16, 64]
    assert mpimg.imread(tmp_path / "s.png").ndim == 3


def test_a_failed_write_leaves_no_folders_behind(runs, tmp_path, monkeypatch):
    import vaekit.generation_jobs as jobs
    from vaekit.generation_jobs import generate_run

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(jobs, "save_image_grid", disk_full)
    with pytest.raises(OSError):
        generate_run(runs / "vae", 4, tmp_path / "new" / "deeper" / "s.png")
    assert list(tmp_path.iterdir()) == []


def test_cli_interpolate(runs, tmp_path):
    args = ["interpolate", runs / "vae", "digits:test", "--from", 2, "--to", 9, "--steps", 5]
    result = invoke(*args, "--out", tmp_path / "both.npy", "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["methods"] == ["linear", "spherical"] and summary["shape"] == [2, 5, 64]
    test = load_dataset("digits:test")
    assert (summary["from_label"], summary["to_label"]) == (str(test.y[2]), str(test.y[9]))
    both = np.load(tmp_path / "both.npy")
    X = test.X
    model = load(runs / "vae")
    for row, method in enumerate(["linear", "spherical"]):
        np.testing.assert_allclose(both[row], interpolate(model, X[2], X[9], 5, method), atol=1e-6)
    result = invoke(*args, "--method", "spherical", "--out", tmp_path / "s.npy")
    assert result.exit_code == 0, result.output
    np.testing.assert_array_equal(np.load(tmp_path / "s.npy"), both[1])
    result = invoke(*args, "--out", tmp_path / "both.png")
    assert result.exit_code == 0, result.output
    assert mpimg.imread(tmp_path / "both.png").ndim == 3


def test_cli_traverse(runs, tmp_path):
    result = invoke(
        "traverse", runs / "vae", "--out", tmp_path / "t.npy", "--dims", "0,2", "--range", 2,
        "--steps", 5, "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["dims"] == [0, 2] and summary["values"] == [-2.0, -1.0, 0.0, 1.0, 2.0]
    model = load(runs / "vae")
    expected = traverse(model, dim=[0, 2], values=np.linspace(-2, 2, 5))
    np.testing.assert_allclose(np.load(tmp_path / "t.npy"), expected, atol=1e-6)
    # Centred on a row of DATA; an AE works that way too.
    test = load_dataset("digits:test")
    for kind in ("vae", "ae"):
        out = tmp_path / f"{kind}.png"
        result = invoke("traverse", runs / kind, "digits:test", "--index", 4, "--out", out)
        assert result.exit_code == 0, result.output
        assert mpimg.imread(out).ndim == 3
        # Around μ(x) of that very row (the others fixed there), not of any other.
        model = load(runs / kind)
        centred = {}
        for index in (4, 5):
            out = tmp_path / f"{kind}-{index}.npy"
            args = ["traverse", runs / kind, "digits:test", "--index", index, "--out", out]
            result = invoke(*args, "--dims", "1,3", "--steps", 3, "--json")
            assert result.exit_code == 0, result.output
            assert json.loads(result.output)["centre"] == f"μ(x) of row {index} of digits:test"
            centred[index] = np.load(out)
            expected = traverse(model, test.X[index], [1, 3], np.linspace(-3, 3, 3))
            assert centred[index].shape == (2, 3, 64)
            np.testing.assert_allclose(centred[index], expected, atol=1e-6)
        assert np.abs(centred[4] - centred[5]).max() > 1e-3


PNG, NPY = ["--out", "{tmp}/x.png"], ["--out", "{tmp}/x.npy"]


def _between(run: str, data: str, i: str, j: str) -> list[str]:
    return ["interpolate", run, data, "--from", i, "--to", j]


BAD_CALLS = [
    (["generate", "{ae}", *PNG], "no prior to sample from"),
    (["generate", "{table}", *PNG], "/x.npy to save the array"),  # --out with its folder
    (["generate", "{vae}", "--out", "{tmp}/x.jpg"], "--out must end in .png"),
    (["generate", "{vae}", "-n", "0", *PNG], "-n must be a positive"),
    (
        ["generate", "{vae}", "--seed", "-1", *PNG],
        "--seed must be an integer in [0, 2**32 - 1], got -1.",
    ),
    (["generate", "{tmp}/no-run", *PNG], "not a model directory"),
    (
        [*_between("{vae}", "digits:test", "0", "450"), *PNG],
        "--to 450 is out of range: digits:test has 450 rows, numbered 0 to 449",
    ),
    ([*_between("{vae}", "digits", "-1", "3"), *NPY], "--from -1 is out of range"),
    ([*_between("{table}", "{table_data}", "0", "1"), *PNG], "not images"),
    ([*_between("{vae}", "digits", "0", "1"), "--method", "cubic", *PNG], "--method must be"),
    ([*_between("{vae}", "digits", "0", "1"), "--steps", "1", *PNG], "--steps must be"),
    (
        [*_between("{vae}", "{table_data}", "0", "1"), *NPY],
        "table.npy has 5 features per sample, but the model",
    ),
    (["traverse", "{vae}", "--dims", "0,7", *PNG], "dimension 7 is out of range"),
    (["traverse", "{vae}", "--dims", "a", *PNG], "comma-separated"),
    (["traverse", "{vae}", "--range", "0", *PNG], "--range must be"),
    (["traverse", "{vae}", "digits", *PNG], "DATA and --index together"),
    (["traverse", "{ae}", *PNG], "pass DATA --index"),
    (["traverse", "{table}", *PNG], "/x.npy to save the array"),
    (["generate", "{two_channel}", *PNG], "images with 2 channels, which a PNG grid cannot show"),
    (["traverse", "{vae}", "digits", "--index", "1797", *NPY], "--index 1797 is out of range"),
]


@pytest.mark.parametrize(
    ("args", "message"), BAD_CALLS, ids=[f"{a[0]}-{m[:20]}" for a, m in BAD_CALLS]
)
def test_user_errors_are_one_line_with_exit_code_2(runs, tmp_path, args, message):
    paths = {k: runs / k for k in ("vae", "ae", "table", "two_channel")}
    argv = [a.format(tmp=tmp_path, table_data=runs / "table.npy", **paths) for a in args]
    result = runner.invoke(app, argv)
    assert result.exit_code == 2, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), result.stderr
    assert message in " ".join(result.stderr.split()), result.stderr  # rich may wrap
    assert not list(tmp_path.iterdir())  # nothing written


def test_an_image_model_interpolates_and_traverses_flattened_rows(tmp_path):
    """digits is (n, 64), recorded as 8x8: a model trained on the 8x8 images takes its rows."""
    digits = load_dataset("digits")
    np.save(tmp_path / "images.npy", digits.X.reshape(-1, 8, 8))
    train_run(tmp_path / "images.npy", tmp_path / "run", model="vae", **SMALL)
    out = tmp_path / "path.npy"
    result = invoke(*_between(tmp_path / "run", "digits", "0", "1"), "--out", out)
    assert result.exit_code == 0, result.output
    model = load(tmp_path / "run")
    first = model.reconstruct(digits.X[:1].reshape(1, 8, 8))[0]
    np.testing.assert_allclose(np.load(out)[0, 0], first, atol=1e-6)  # (methods, steps, 8, 8)
    result = invoke("traverse", tmp_path / "run", "digits", "--index", "3", "--out", out)
    assert result.exit_code == 0, result.output


def test_interpolate_and_traverse_check_a_tables_column_names():
    """As transform does: a row of a DataFrame with its columns reordered or renamed is
    refused, not read by position into another model's features."""
    pd = pytest.importorskip("pandas")
    rng = np.random.default_rng(0)
    df = pd.DataFrame(rng.normal(size=(80, 3)) * [1, 10, 100], columns=["a", "b", "c"])
    model = VAE(latent_dim=2, hidden_dims=(8,), epochs=2, random_state=0).fit(df)
    reordered, renamed = df[["c", "b", "a"]], df.rename(columns={"a": "z"})
    with pytest.raises(DataError, match="another order"):
        interpolate(model, reordered.iloc[0], reordered.iloc[1], steps=3)
    with pytest.raises(DataError, match="columns differ"):
        interpolate(model, renamed.iloc[0], renamed.iloc[1], steps=3)
    unnamed = pd.DataFrame(df.to_numpy())  # columns 0, 1, 2: not the training names either
    with pytest.raises(DataError, match="columns differ"):
        interpolate(model, unnamed.iloc[[0]], unnamed.iloc[[1]], steps=3)
    with pytest.raises(DataError, match="another order"):
        traverse(model, reordered.iloc[[0]], dim=0)
    path = interpolate(model, df.iloc[0], df.iloc[1], steps=3)  # the training order: taken
    np.testing.assert_allclose(path[0], model.reconstruct(df.iloc[[0]])[0], rtol=1e-5)
    # A pyarrow Table's .columns are its data, not its names: read by name all the same.
    pa = pytest.importorskip("pyarrow")
    rows = [pa.Table.from_pandas(df.iloc[[i]], preserve_index=False) for i in (0, 1)]
    np.testing.assert_allclose(interpolate(model, *rows, steps=3), path, rtol=1e-6)
    with pytest.raises(DataError, match="another order"):
        interpolate(model, rows[0].select(["c", "b", "a"]), rows[1], steps=3)


def test_more_samples_than_memory_holds_is_one_clear_error(tmp_path):
    """Not torch's allocator failure (a traceback) or the kernel stopping the process."""
    model = VAE(latent_dim=2, hidden_dims=(8,), epochs=1, random_state=0).fit(
        np.random.default_rng(0).uniform(size=(40, 3))
    )
    with pytest.raises(ConfigError, match=r"n_samples must be at most .* would take .* GiB"):
        model.sample(10**12)
    assert model.sample(5).shape == (5, 3)
    model.save(tmp_path / "run")
    result = CliRunner().invoke(app, ["generate", str(tmp_path / "run"), "-n", str(10**12)])
    assert result.exit_code == 2 and "--n-samples must be at most" in result.output
