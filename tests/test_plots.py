"""plots: every function returns a Figure with the expected axes, titles and artists."""

from __future__ import annotations

import ast
import inspect

import numpy as np
import pytest
from matplotlib.collections import PathCollection
from matplotlib.figure import Figure
from matplotlib.image import AxesImage

from vaekit import plots
from vaekit.errors import ConfigError, DataError

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def _vae_history(epochs=6, val=True):
    history = []
    for i in range(epochs):
        record = {
            "epoch": i + 1,
            "train_loss": 10.0 - i,
            "train_recon": 9.0 - i,
            "train_kl": 1.0 + 0.1 * i,
            "beta": min(1.0, i / 3),
            "lr": 1e-3,
            "seconds": 0.1,
        }
        if val:
            record.update(
                val_loss=10.5 - i, val_recon=9.4 - i, val_kl=1.1, val_kl_per_dim=[0.6, 0.0, 0.5]
            )
        history.append(record)
    return history


def _scatters(ax):
    return [c for c in ax.collections if isinstance(c, PathCollection)]


def test_module_never_uses_pyplot():
    # pyplot keeps global figures alive (a leak in long runs) and may want a display.
    tree = ast.parse(inspect.getsource(plots))
    imported = [
        alias.name if isinstance(node, ast.Import) else f"{node.module}.{alias.name}"
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    ]
    assert imported and not any("pyplot" in name for name in imported)


# -- embed_2d ---------------------------------------------------------------------------------


def test_embed_direct_returns_the_coordinates(rng):
    Z = rng.normal(size=(50, 2))
    E, idx = plots.embed_2d(Z, "direct")
    assert E.shape == (50, 2) and np.array_equal(idx, np.arange(50))
    np.testing.assert_array_equal(E, Z)


def test_embed_direct_refuses_more_than_two_dims(rng):
    with pytest.raises(ConfigError, match="tsne"):
        plots.embed_2d(rng.normal(size=(20, 5)), "direct")


def test_embed_subsamples_seeded_and_returns_indices(rng):
    Z = rng.normal(size=(100, 2))
    E, idx = plots.embed_2d(Z, "direct", max_points=30, random_state=3)
    assert E.shape == (30, 2) and idx.shape == (30,)
    assert np.all(np.diff(idx) > 0)  # increasing, no repeats
    np.testing.assert_array_equal(E, Z[idx])
    _, again = plots.embed_2d(Z, "direct", max_points=30, random_state=3)
    _, other = plots.embed_2d(Z, "direct", max_points=30, random_state=4)
    assert np.array_equal(idx, again) and not np.array_equal(idx, other)


def test_embed_tsne_shape_and_reproducible(rng):
    Z = np.concatenate([rng.normal(size=(20, 6)), rng.normal(size=(20, 6)) + 6.0])
    E, idx = plots.embed_2d(Z, "tsne", random_state=0)
    assert E.shape == (40, 2) and np.all(np.isfinite(E)) and idx.shape == (40,)
    E2, _ = plots.embed_2d(Z, "tsne", random_state=0)
    np.testing.assert_allclose(E, E2)
    # An embedding, not just any two columns: two well-separated blobs stay separated.
    centre_a, centre_b = E[:20].mean(0), E[20:].mean(0)
    spread = max(E[:20].std(0).max(), E[20:].std(0).max())
    assert np.linalg.norm(centre_a - centre_b) > 2 * spread


def test_embed_umap_tiny(rng):
    # One small call: numba compiles UMAP on first use (tens of seconds on 2 cores).
    Z = np.concatenate([rng.normal(size=(15, 4)), rng.normal(size=(15, 4)) + 6.0])
    E, idx = plots.embed_2d(Z, "umap", random_state=0)
    assert E.shape == (30, 2) and np.all(np.isfinite(E)) and np.array_equal(idx, np.arange(30))
    # Two well-separated blobs stay separated.
    centre_a, centre_b = E[:15].mean(0), E[15:].mean(0)
    spread = max(E[:15].std(0).max(), E[15:].std(0).max())
    assert np.linalg.norm(centre_a - centre_b) > 2 * spread


@pytest.mark.parametrize(
    "Z",
    [
        np.random.default_rng(0).normal(size=(20, 1)),  # a 1-D latent
        np.ones((10, 3)),  # identical codes: PCA initialisation divided by zero and crashed
    ],
    ids=["1-D", "identical"],
)
def test_embed_tsne_of_degenerate_codes(Z):
    E, _ = plots.embed_2d(Z, "tsne", random_state=0)
    assert E.shape == (len(Z), 2) and np.all(np.isfinite(E))


def test_embed_umap_of_three_points(rng):
    E, _ = plots.embed_2d(rng.normal(size=(3, 4)), "umap", random_state=0)
    assert E.shape == (3, 2) and np.all(np.isfinite(E))


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"method": "pca"}, ConfigError),
        ({"max_points": 0}, ConfigError),
        ({"n_jobs": 0}, ConfigError),
    ],
)
def test_embed_rejects_bad_parameters(rng, kwargs, error):
    with pytest.raises(error):
        plots.embed_2d(rng.normal(size=(10, 2)), **kwargs)


def test_embed_rejects_bad_data():
    with pytest.raises(DataError, match="NaN"):
        plots.embed_2d(np.array([[0.0, np.nan], [1.0, 2.0]]))
    with pytest.raises(DataError, match="2-D"):
        plots.embed_2d(np.zeros(5))


# -- latent_scatter ---------------------------------------------------------------------------


def test_latent_scatter_categorical_has_one_collection_and_legend_entry_per_class(rng):
    Z2 = rng.normal(size=(60, 2))
    y = np.repeat([0, 1, 2], 20)
    fig = plots.latent_scatter(Z2, y, title="t-SNE of μ(x)", class_names=["zero", "one", "two"])
    assert isinstance(fig, Figure) and len(fig.axes) == 1
    ax = fig.axes[0]
    assert ax.get_title() == "t-SNE of μ(x)"
    assert ax.get_xlabel() and ax.get_ylabel()
    assert len(_scatters(ax)) == 3
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["zero", "one", "two"]
    assert sum(c.get_offsets().shape[0] for c in _scatters(ax)) == 60


def test_latent_scatter_string_labels_and_dollar_names_render(rng):
    # "$...$" would be parsed as mathtext (and this one fails to parse) unless escaped.
    y = np.array(["$\\notacommand{x}$", "<b>b</b>"] * 10, dtype=object)
    fig = plots.latent_scatter(rng.normal(size=(20, 2)), y, title="$\\alsobad$")
    assert len(_scatters(fig.axes[0])) == 2
    assert plots.figure_to_png(fig).startswith(PNG)


def test_latent_scatter_continuous_labels_get_a_colorbar(rng):
    fig = plots.latent_scatter(rng.normal(size=(50, 2)), rng.normal(size=50))
    assert len(fig.axes) == 2  # the plot and its colorbar
    assert len(_scatters(fig.axes[0])) == 1 and fig.axes[0].get_legend() is None


def test_latent_scatter_many_classes_get_a_colorbar(rng):
    y = np.arange(60) % 30  # 30 classes > 20 categorical colours
    fig = plots.latent_scatter(rng.normal(size=(60, 2)), y)
    assert len(fig.axes) == 2 and len(_scatters(fig.axes[0])) == 1
    # Integer classes (Olivetti's 40 people) are classes, not a quantity on viridis.
    assert fig.axes[1].get_ylabel() == "class index (30 classes)"
    assert _scatters(fig.axes[0])[0].get_cmap().name == "turbo"
    quantity = plots.latent_scatter(rng.normal(size=(60, 2)), np.arange(60) * 7)
    assert quantity.axes[1].get_ylabel() == "label"


def test_latent_scatter_without_labels_and_bad_shapes(rng):
    fig = plots.latent_scatter(rng.normal(size=(10, 2)))
    assert len(_scatters(fig.axes[0])) == 1
    with pytest.raises(DataError, match="labels"):
        plots.latent_scatter(rng.normal(size=(10, 2)), np.zeros(9))
    with pytest.raises(DataError, match="2 columns"):
        plots.latent_scatter(rng.normal(size=(10, 3)))


# -- images -----------------------------------------------------------------------------------


def test_image_grid_tiles_grey_images_into_one_image(rng):
    fig = plots.image_grid(rng.random((16, 8, 8)), title="samples")
    (ax,) = fig.axes
    (image,) = ax.get_images()
    assert isinstance(image, AxesImage) and ax.get_title() == "samples"
    assert image.get_array().shape == (4 * 9 - 1, 4 * 9 - 1)  # 4 x 4 with 1-pixel gaps


def test_image_grid_fills_rows_left_to_right_with_gaps_between():
    """Image i sits at row i // ncols, column i % ncols (traversal grids rely on it)."""
    images = np.arange(6.0)[:, None, None] / 5.0 * np.ones((6, 4, 3))  # image i is all i / 5
    shown = plots.image_grid(images, nrows=2).axes[0].get_images()[0].get_array()
    tile = np.ma.filled(shown, np.nan)
    for i in range(6):
        r, c = divmod(i, 3)
        np.testing.assert_allclose(tile[r * 5 : r * 5 + 4, c * 4 : c * 4 + 3], i / 5.0)
    assert np.isnan(tile[4]).all() and np.isnan(tile[:, 3]).all()  # the gaps


def test_image_grid_channel_first_rgb_rows_and_flat_input(rng):
    fig = plots.image_grid(rng.random((6, 3, 10, 12)), nrows=2)
    assert fig.axes[0].get_images()[0].get_array().shape == (2 * 11 - 1, 3 * 13 - 1, 3)
    flat = plots.image_grid(rng.random((4, 64)), image_shape=(8, 8))
    assert flat.axes[0].get_images()[0].get_array().shape == (17, 17)
    with pytest.raises(DataError, match="image_shape"):
        plots.image_grid(rng.random((4, 64)))


@pytest.mark.parametrize(("shape", "tile"), [((1, 12, 4), (12, 4)), ((3, 4, 4), (4, 4, 3))])
def test_image_grid_reads_channels_first_when_the_last_axis_could_be_channels(rng, shape, tile):
    """vaekit's (c, h, w): a 12 x 4 grey image is not 1 x 12 RGBA, a 4 x 4 RGB not 3 x 4."""
    images = rng.random((1, *shape))
    shown = plots.image_grid(images, image_shape=shape).axes[0].get_images()[0].get_array()
    assert shown.shape == tile
    np.testing.assert_allclose(
        shown, np.moveaxis(images[0], 0, -1).squeeze(-1 if shape[0] == 1 else None)
    )


def test_reconstruction_grid_inputs_over_reconstructions(rng):
    X = rng.random((20, 64))
    fig = plots.reconstruction_grid(X, X * 0.5, (8, 8), n=12, per_row=6)
    top, bottom = fig.axes
    assert (top.get_ylabel(), bottom.get_ylabel()) == ("input", "reconstruction")
    for ax in (top, bottom):
        assert ax.get_images()[0].get_array().shape == (2 * 9 - 1, 6 * 9 - 1)
    # Pixels, not only shapes: inputs on top, their reconstructions below, one range ([0, 1]).
    first_in = np.asarray(top.get_images()[0].get_array())[:8, :8]
    first_out = np.asarray(bottom.get_images()[0].get_array())[:8, :8]
    np.testing.assert_allclose(first_in, X[0].reshape(8, 8))
    np.testing.assert_allclose(first_out, 0.5 * X[0].reshape(8, 8))
    assert fig.get_suptitle()
    with pytest.raises(DataError, match="same shape"):
        plots.reconstruction_grid(X, X[:10], (8, 8))


def test_feature_reconstruction_bars_per_feature_and_scatter(rng):
    X = rng.normal(size=(50, 5))
    X_hat = X + rng.normal(size=(50, 5)) * np.arange(5)  # feature 4 is the worst
    names = ["a", "b", "c", "d", "<e>$"]
    fig = plots.feature_reconstruction(X, X_hat, names, n_scatter=2)
    ax_bar, ax_sc = fig.axes
    assert len(ax_bar.patches) == 5
    assert [t.get_text() for t in ax_bar.get_yticklabels()] == ["a", "b", "c", "d", r"<e>\$"]
    assert ax_bar.get_xlabel().startswith("RMSE") and ax_sc.get_xlabel() == "input"
    assert len(_scatters(ax_sc)) == 2
    assert ax_sc.get_legend().get_texts()[0].get_text() == r"<e>\$"  # worst first
    assert plots.figure_to_png(fig).startswith(PNG)


def test_feature_reconstruction_keeps_the_worst_of_many_features(rng):
    X = rng.normal(size=(30, 50))
    fig = plots.feature_reconstruction(X, X * 0.9, max_features=10)
    assert len(fig.axes[0].patches) == 10
    with pytest.raises(DataError, match="names"):
        plots.feature_reconstruction(X, X, ["a"])


# -- training ---------------------------------------------------------------------------------


def test_loss_curves_vae_has_loss_recon_kl_and_beta_axis():
    fig = plots.loss_curves(_vae_history())
    assert len(fig.axes) == 4  # loss, reconstruction, KL and β's twin axis
    loss_ax, recon_ax, kl_ax, beta_ax = fig.axes
    assert [ax.get_title() for ax in (loss_ax, recon_ax, kl_ax)] == ["Loss", "Reconstruction", "KL"]
    assert all(ax.get_xlabel() == "epoch" for ax in (loss_ax, recon_ax, kl_ax))
    assert len(loss_ax.get_lines()) == 2 and len(kl_ax.get_lines()) == 2  # train + val
    assert len(beta_ax.get_lines()) == 1 and "beta" in beta_ax.get_ylabel()
    legend = [t.get_text() for t in kl_ax.get_legend().get_texts()]
    assert legend == ["train", "val", r"$\beta$"]
    np.testing.assert_allclose(loss_ax.get_lines()[0].get_xdata(), np.arange(1, 7))


def test_loss_curves_draw_a_changing_learning_rate_on_the_loss_panel():
    history = _vae_history()
    for i, record in enumerate(history):
        record["lr"] = 1e-3 * (1 + np.cos(np.pi * (i + 1) / 6)) / 2
    fig = plots.loss_curves(history)
    assert len(fig.axes) == 5  # the constant-rate figure's four, and the rate's twin axis
    loss_ax, lr_ax = fig.axes[0], fig.axes[4]
    np.testing.assert_allclose(lr_ax.get_lines()[0].get_ydata(), [r["lr"] for r in history])
    assert "learning rate" in lr_ax.get_ylabel()
    assert [t.get_text() for t in loss_ax.get_legend().get_texts()] == ["train", "val", "lr"]


def test_loss_curves_autoencoder_without_kl_or_validation():
    history = [
        {k: v for k, v in rec.items() if "kl" not in k} for rec in _vae_history(val=False)
    ]  # an AE record still has "beta"; it must not be drawn without a KL term
    fig = plots.loss_curves(history)
    assert len(fig.axes) == 2
    assert [len(ax.get_lines()) for ax in fig.axes] == [1, 1]
    with pytest.raises(DataError, match="history"):
        plots.loss_curves([])


# -- KL per dimension -------------------------------------------------------------------------


def test_kl_per_dimension_marks_active_units_by_threshold():
    fig = plots.kl_per_dimension([0.5, 0.001, 0.3, 0.0], threshold=0.01)
    (ax,) = fig.axes
    assert len(ax.patches) == 4
    assert "2 of 4 active" in ax.get_title()
    colors = [tuple(p.get_facecolor()) for p in ax.patches]
    assert colors[0] == colors[2] != colors[1] == colors[3]
    assert len(ax.get_lines()) == 1  # the threshold line
    assert ax.get_ylabel() and ax.get_xlabel()


def test_kl_per_dimension_explicit_mask_and_sorting():
    kl = [0.1, 0.9, 0.5]
    fig = plots.kl_per_dimension(kl, active=np.array([True, False, False]), sort=True)
    (ax,) = fig.axes
    assert "1 of 3 active" in ax.get_title()
    assert [t.get_text() for t in ax.get_xticklabels()] == ["1", "2", "0"]
    np.testing.assert_allclose([p.get_height() for p in ax.patches], [0.9, 0.5, 0.1])
    assert len(ax.get_lines()) == 0  # no threshold line for an explicit mask
    with pytest.raises(DataError, match="boolean"):
        plots.kl_per_dimension(kl, active=[1, 0])


def test_kl_per_dimension_names_its_criterion_and_keeps_the_legend_off_the_bars():
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    mask = np.array([False, True])
    fig = plots.kl_per_dimension([0.0, 2.0], active=mask, criterion="Var μ > 0.01")
    (ax,) = fig.axes
    assert ax.get_title().endswith("1 of 2 active (Var μ > 0.01)")
    renderer = FigureCanvasAgg(fig).get_renderer()
    fig.draw(renderer)
    legend = ax.get_legend().get_window_extent(renderer)
    assert legend.x0 >= ax.get_window_extent(renderer).x1  # beside the axes, not over a bar


# -- PNG --------------------------------------------------------------------------------------


def test_figure_to_png_returns_png_bytes_scaling_with_dpi():
    fig = plots.kl_per_dimension([0.5, 0.2])
    small, large = plots.figure_to_png(fig, dpi=50), plots.figure_to_png(fig, dpi=100)
    assert small.startswith(PNG) and large.startswith(PNG)
    width = int.from_bytes(small[16:20], "big"), int.from_bytes(large[16:20], "big")
    assert 1.8 < width[1] / width[0] < 2.2
    with pytest.raises(ConfigError):
        plots.figure_to_png(b"not a figure")
