"""TensorDataset / DataLoader: batching, shuffling (seeded, new order each epoch), drop_last,
collation of generic datasets, and argument errors."""

from __future__ import annotations

import numpy as np
import pytest

import pyengine as pe
from pyengine.data import DataLoader, Dataset, TensorDataset, default_collate


def _ds(n=10):
    return TensorDataset(pe.arange(n), pe.randn(n, 3), pe.arange(n).float())


def test_tensor_dataset():
    ds = _ds()
    assert len(ds) == 10
    i, x, f = ds[3]
    assert i.item() == 3 and x.shape == (3,) and f.item() == 3.0
    with pytest.raises(ValueError, match="size mismatch"):
        TensorDataset(pe.zeros(3), pe.zeros(4))
    with pytest.raises(TypeError, match="must be a Tensor"):
        TensorDataset(np.zeros(3))
    with pytest.raises(ValueError, match="0-d"):
        TensorDataset(pe.tensor(1.0))


@pytest.mark.parametrize(
    "n, bs, drop, sizes",
    [
        (10, 4, False, [4, 4, 2]),
        (10, 4, True, [4, 4]),
        (8, 4, True, [4, 4]),
        (3, 5, False, [3]),
        (3, 5, True, []),
        (5, 1, False, [1] * 5),
    ],
)
def test_batches_in_order(n, bs, drop, sizes):
    ds = _ds(n)
    dl = DataLoader(ds, batch_size=bs, drop_last=drop)
    batches = list(dl)
    assert [b[0].shape[0] for b in batches] == sizes and len(dl) == len(sizes)
    if batches:
        idx = np.concatenate([b[0].numpy() for b in batches])
        np.testing.assert_array_equal(idx, np.arange(len(idx)))
        x = np.concatenate([b[1].numpy() for b in batches])
        np.testing.assert_array_equal(x, ds.tensors[1].numpy()[: len(idx)])
        assert isinstance(batches[0][1], pe.Tensor) and batches[0][1].dtype == pe.float32


def test_shuffle_is_a_permutation_seeded_and_changes_each_epoch():
    ds = _ds(50)
    dl = DataLoader(ds, batch_size=7, shuffle=True, seed=3)
    e1 = np.concatenate([b[0].numpy() for b in dl])
    e2 = np.concatenate([b[0].numpy() for b in dl])
    assert sorted(e1) == list(range(50)) and sorted(e2) == list(range(50))
    assert not np.array_equal(e1, np.arange(50)) and not np.array_equal(e1, e2)
    again = DataLoader(ds, batch_size=7, shuffle=True, seed=3)
    np.testing.assert_array_equal(np.concatenate([b[0].numpy() for b in again]), e1)
    # rows stay together: the features follow their index
    for idx, x, f in DataLoader(ds, batch_size=7, shuffle=True, seed=4):
        np.testing.assert_array_equal(x.numpy(), ds.tensors[1].numpy()[idx.numpy()])
        np.testing.assert_array_equal(f.numpy(), idx.numpy().astype(np.float32))
    # without seed: pyengine's global generator
    pe.manual_seed(9)
    a = np.concatenate([b[0].numpy() for b in DataLoader(ds, 8, shuffle=True)])
    pe.manual_seed(9)
    b = np.concatenate([b[0].numpy() for b in DataLoader(ds, 8, shuffle=True)])
    np.testing.assert_array_equal(a, b)


class Squares(Dataset):
    def __len__(self):
        return 5

    def __getitem__(self, i):
        return {"x": np.full(2, i, np.float32), "y": i * i, "t": (pe.tensor([float(i)]), i)}


def test_generic_dataset_collate():
    batches = list(DataLoader(Squares(), batch_size=2))
    assert len(batches) == 3
    b = batches[0]
    assert b["x"].shape == (2, 2) and b["y"].tolist() == [0, 1]
    assert b["t"][0].shape == (2, 1) and b["t"][1].tolist() == [0, 1]
    assert list(DataLoader(Squares(), batch_size=None))[4]["y"] == 16
    custom = list(DataLoader(Squares(), batch_size=3, collate_fn=len))
    assert custom == [3, 2]
    with pytest.raises(TypeError, match="cannot batch"):
        default_collate([object(), object()])


@pytest.mark.parametrize("bs", [0, -1, 2.5, True])
def test_bad_batch_size(bs):
    with pytest.raises(ValueError, match=r"\[DataLoader\] batch_size"):
        DataLoader(_ds(), batch_size=bs)


def test_bad_dataset():
    with pytest.raises(TypeError, match=r"\[DataLoader\] dataset"):
        DataLoader(5)
    with pytest.raises(ValueError, match="mutually exclusive"):
        DataLoader(_ds(), batch_size=None, drop_last=True)
