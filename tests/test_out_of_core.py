"""Out-of-core data: a memory-mapped .npy is trained on and embedded batch by batch."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from vaekit import VAE
from vaekit.datasets import load_dataset
from vaekit.rows import MappedRows, memory_map_of
from vaekit.scaling import column_moments


@pytest.fixture(scope="module")
def digits_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "digits.npy"
    np.save(path, load_digits().data.astype(np.float32))
    return path


def test_npy_files_are_memory_mapped(digits_file):
    dataset = load_dataset(str(digits_file))
    assert memory_map_of(dataset.X) is not None


@pytest.mark.parametrize("dtype", [np.float64, np.int64, ">f4"])
def test_npy_files_of_other_dtypes_are_read_into_memory(tmp_path, dtype):
    """Converted to float32 in memory, so trained on like any array (not in 64-row blocks)."""
    path = tmp_path / "x.npy"
    values = load_digits().data[:200]
    np.save(path, values.astype(dtype))
    X = load_dataset(str(path)).X
    assert memory_map_of(X) is None and type(X) is np.ndarray
    np.testing.assert_array_equal(X, values.astype(np.float32))
    params = dict(latent_dim=2, hidden_dims=(16,), epochs=2, random_state=0)
    np.testing.assert_array_equal(
        VAE(**params).fit(X).transform(X), VAE(**params).fit(X.copy()).transform(X)
    )


def test_an_in_memory_copy_of_a_memory_map_is_not_one(digits_file):
    copy = np.load(digits_file, mmap_mode="r").astype(np.float64)  # numpy keeps the subclass
    assert isinstance(copy, np.memmap) and memory_map_of(copy) is None


def test_mapped_rows_serve_the_same_batches_as_the_array(digits_file):
    X = np.load(digits_file, mmap_mode="r")
    indices = np.arange(3, 1500, 2)
    rows = MappedRows(X, indices, lambda b: b * 2.0, torch.device("cpu"))
    assert rows.shape == (len(indices), 64)
    positions = torch.tensor([5, 0, 700])
    got = rows[positions]
    # Rows come back in file order; a batch is a set, its order does not matter.
    expected = np.sort(indices[positions.numpy()])
    np.testing.assert_array_equal(got.numpy(), np.asarray(X)[expected] * 2.0)
    np.testing.assert_array_equal(rows[10:13].numpy(), np.asarray(X)[indices[10:13]] * 2.0)


def test_a_view_of_a_memory_map_is_gathered_through_the_mapping(digits_file):
    X = np.load(digits_file, mmap_mode="r")[100:]  # a view: its file offset is not the array's
    indices = np.arange(0, 900, 3)
    rows = MappedRows(X, indices, lambda b: b, torch.device("cpu"))
    assert rows._reader is None
    np.testing.assert_array_equal(rows[torch.tensor([1, 50])].numpy(), np.asarray(X)[[3, 150]])


def test_shuffled_order_is_a_permutation_of_contiguous_blocks():
    from vaekit.rows import BLOCK_ROWS

    rows = MappedRows(np.zeros((1000, 2), np.float32), np.arange(1000), lambda b: b, "cpu")
    torch.manual_seed(0)
    order = rows.shuffled_order().numpy()
    assert sorted(order.tolist()) == list(range(1000))
    block_of = order // BLOCK_ROWS
    firsts = []
    for block in np.unique(block_of):  # each block's rows come together, in order...
        where = np.flatnonzero(block_of == block)
        assert (np.diff(where) == 1).all() and (np.diff(order[where]) == 1).all()
        firsts.append(where[0])
    assert not (np.diff(firsts) > 0).all()  # ...and the blocks come in a shuffled order


def test_fit_on_a_memory_map_streams_and_learns_like_in_memory(digits_file, monkeypatch):
    """A memmap is never copied whole: training reads it through MappedRows batch by batch."""
    X_map = np.load(digits_file, mmap_mode="r")
    X_mem = np.array(X_map)
    params = dict(latent_dim=4, hidden_dims=(64,), epochs=15, random_state=0)
    served = []
    real_getitem = MappedRows.__getitem__

    def counting_getitem(self, key):
        batch = real_getitem(self, key)
        served.append(batch.shape[0])
        return batch

    monkeypatch.setattr(MappedRows, "__getitem__", counting_getitem)
    streamed = VAE(**params).fit(X_map)
    # Mini-batches of 128 (and the 180-row validation split in one piece), never the whole
    # set; every epoch reads every training row.
    n_val = round(0.1 * len(X_mem))
    assert served and max(served) <= max(128, n_val)
    assert sum(served) >= 15 * (len(X_mem) - n_val)
    monkeypatch.undo()
    in_memory = VAE(**params).fit(X_mem)

    # Same scaling (chunked moments equal numpy's to float32 precision) and a model as good.
    np.testing.assert_allclose(streamed.mean_, in_memory.mean_, rtol=1e-6)
    np.testing.assert_allclose(streamed.scale_, in_memory.scale_, rtol=1e-5)
    elbo_streamed = streamed.score_samples(X_mem).mean()
    elbo_in_memory = in_memory.score_samples(X_mem).mean()
    assert elbo_streamed > elbo_in_memory - 0.05 * abs(elbo_in_memory)
    first, last = streamed.history_[0]["val_loss"], streamed.history_[-1]["val_loss"]
    assert last < first


def test_column_moments_match_numpy():
    X = np.random.default_rng(0).normal(3.0, 2.0, size=(50_000, 7)).astype(np.float32)
    mean, std = column_moments(X, chunk_rows=4096)
    np.testing.assert_allclose(mean, X.mean(0, dtype=np.float64), rtol=1e-10)
    np.testing.assert_allclose(std, X.std(0, dtype=np.float64), rtol=1e-8)


def test_nan_in_a_memory_map_is_one_clear_error(tmp_path):
    X = load_digits().data.astype(np.float32)
    X[1500, 3] = np.nan
    np.save(tmp_path / "bad.npy", X)
    from vaekit.errors import DataError

    mapped = np.load(tmp_path / "bad.npy", mmap_mode="r")
    with pytest.raises(DataError) as streamed:
        VAE(latent_dim=2, epochs=1).fit(mapped)
    with pytest.raises(DataError) as in_memory:  # the same words as for an array in memory
        VAE(latent_dim=2, epochs=1).fit(np.array(mapped))
    where = "has a missing (NaN) value in row 1500 (counting from 0), feature 3; drop or impute"
    assert str(streamed.value) == f"X (bad.npy) {where} the missing values first (e.g. " + (
        "sklearn.impute.SimpleImputer)."
    )
    assert str(in_memory.value) == str(streamed.value).replace("X (bad.npy)", "X")


@pytest.mark.filterwarnings("ignore::UserWarning")  # one epoch: posterior collapse is expected
def test_embed_of_a_memory_map_streams_it_batch_by_batch(tmp_path, monkeypatch):
    """`vaekit embed` on a .npy encodes slices of the memory map; the file is never read into
    memory whole, and the output is μ(x) of every row."""
    import tracemalloc

    from vaekit import jobs

    X = np.tile(load_digits().data.astype(np.float32) / 16.0, (12, 1))  # 21,564 rows, 5.5 MB
    np.save(tmp_path / "big.npy", X)
    model = VAE(latent_dim=3, hidden_dims=(32,), epochs=1, random_state=0).fit(X[:500])
    model.save(tmp_path / "run")
    batch, seen = 1000, []
    transform = VAE._mu

    def spy(self, rows):
        seen.append((len(rows), memory_map_of(rows) is not None))
        return transform(self, rows)

    monkeypatch.setattr(jobs, "_EMBED_BATCH", batch)
    monkeypatch.setattr(VAE, "_mu", spy)
    tracemalloc.start()  # numpy reports its allocations to tracemalloc
    try:
        result = jobs.embed_run(tmp_path / "run", tmp_path / "big.npy", tmp_path / "mu.npy")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    monkeypatch.undo()
    assert result["rows"] == len(X)
    # Each block a view of the file's memory map, never a copy of all of it; the largest
    # allocation at any time is of the order of a block (256 KB), not the file (5.5 MB).
    assert seen == [(batch, True)] * 21 + [(len(X) - 21 * batch, True)]
    assert peak < X.nbytes / 8, peak  # measured 0.14 MB
    mu = np.load(tmp_path / "mu.npy")
    assert mu.shape == (len(X), 3) and mu.dtype == np.float32
    np.testing.assert_allclose(mu, model.transform(X), rtol=1e-5, atol=1e-6)


def test_a_read_only_memory_map_is_encoded_without_torch_warnings(tmp_path):
    """torch warns about tensors over read-only memory ("undefined behavior"): every path that
    reads a memory-mapped .npy hands torch a writable batch."""
    import warnings

    X = np.random.default_rng(0).random((300, 6), dtype=np.float32)
    np.save(tmp_path / "x.npy", X)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = VAE(latent_dim=2, hidden_dims=(8,), epochs=1, random_state=0).fit(X)
    mapped = np.load(tmp_path / "x.npy", mmap_mode="r")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_array_equal(model.transform(mapped[:50]), model.transform(X[:50]))
        model.score_samples(mapped[:50])
        model.log_likelihood(mapped[:5], k=4)
