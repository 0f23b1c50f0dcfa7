"""Datasets and a batch loader (torch.utils.data's TensorDataset and DataLoader, simplified).

``DataLoader`` draws its shuffling permutation from pyengine's seeded generator
(``pyengine.manual_seed``) or, when ``seed`` is given, from its own generator seeded once, so
every epoch gets a new order and a run is reproducible. A ``TensorDataset`` is batched by
fancy indexing of its arrays (one gather per tensor per batch), other datasets item by item
through ``collate_fn`` (default: stack).
"""

from __future__ import annotations

import numbers
from typing import Any, Callable, Iterator, Optional, Sequence

import numpy as np

from .tensor import Tensor, _rng
from .tensor import tensor as _tensor

__all__ = ["Dataset", "TensorDataset", "DataLoader", "default_collate"]


class Dataset:
    """Anything with __getitem__(i) and __len__()."""

    def __getitem__(self, index: int) -> Any:
        raise NotImplementedError("[Dataset] subclasses must implement __getitem__")

    def __len__(self) -> int:
        raise NotImplementedError("[Dataset] subclasses must implement __len__")


class TensorDataset(Dataset):
    """Samples are the i-th rows of each tensor (all of the same length)."""

    def __init__(self, *tensors: Tensor) -> None:
        if not tensors:
            raise ValueError("[TensorDataset] needs at least one tensor")
        for i, t in enumerate(tensors):
            if not isinstance(t, Tensor):
                raise TypeError(
                    f"[TensorDataset] argument {i} must be a Tensor, got {type(t).__name__}"
                )
            if t.ndim == 0:
                raise ValueError(
                    f"[TensorDataset] argument {i} is 0-d; tensors need a first (sample) dimension"
                )
        n = tensors[0].shape[0]
        if any(t.shape[0] != n for t in tensors):
            raise ValueError(
                "[TensorDataset] size mismatch between tensors: first dimensions are "
                f"{[t.shape[0] for t in tensors]}"
            )
        self.tensors = tuple(tensors)

    def __getitem__(self, index) -> tuple:
        return tuple(t[index] for t in self.tensors)

    def __len__(self) -> int:
        return self.tensors[0].shape[0]


def default_collate(batch: Sequence[Any]) -> Any:
    """Stack a list of samples: Tensors/arrays/numbers into one Tensor with a leading batch
    dim; tuples, lists and dicts element-wise."""
    first = batch[0]
    if isinstance(first, Tensor):
        xp = first._xp
        return Tensor(xp.stack([b.detach().data for b in batch]))
    if isinstance(first, np.ndarray):
        return Tensor(np.stack(batch))
    if isinstance(first, (numbers.Number, np.generic)):
        return _tensor(list(batch))
    if isinstance(first, dict):
        return {k: default_collate([b[k] for b in batch]) for k in first}
    if isinstance(first, (tuple, list)):
        if any(len(b) != len(first) for b in batch):
            raise RuntimeError(
                "[default_collate] each element in list of batch should be of equal size"
            )
        return (
            type(first)(default_collate(list(s)) for s in zip(*batch))
            if isinstance(first, tuple)
            else [default_collate(list(s)) for s in zip(*batch)]
        )
    raise TypeError(f"[default_collate] cannot batch samples of type {type(first).__name__}")


class DataLoader:
    """Iterate over a dataset in batches of batch_size (optionally shuffled each epoch)."""

    def __init__(
        self,
        dataset,
        batch_size: Optional[int] = 1,
        shuffle: bool = False,
        drop_last: bool = False,
        seed: Optional[int] = None,
        collate_fn: Optional[Callable] = None,
    ) -> None:
        if batch_size is not None and (
            not isinstance(batch_size, numbers.Integral)
            or isinstance(batch_size, bool)
            or batch_size <= 0
        ):
            raise ValueError(
                f"[DataLoader] batch_size should be a positive integer value, but "
                f"got batch_size={batch_size!r}"
            )
        if batch_size is None and drop_last:
            raise ValueError(
                "[DataLoader] batch_size=None option disables auto-batching and is "
                "mutually exclusive with drop_last"
            )
        if not hasattr(dataset, "__len__") or not hasattr(dataset, "__getitem__"):
            raise TypeError("[DataLoader] dataset must define __len__ and __getitem__")
        self.dataset = dataset
        self.batch_size = batch_size
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        self.seed = seed
        self.collate_fn = collate_fn
        self._gen = np.random.default_rng(seed) if seed is not None else None

    def __len__(self) -> int:
        n = len(self.dataset)
        if self.batch_size is None:
            return n
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def _order(self) -> np.ndarray:
        n = len(self.dataset)
        if not self.shuffle:
            return np.arange(n)
        gen = self._gen if self._gen is not None else _rng()
        return gen.permutation(n)

    def __iter__(self) -> Iterator[Any]:
        order = self._order()
        if self.batch_size is None:
            for i in order:
                yield self.dataset[int(i)]
            return
        n, bs = len(order), self.batch_size
        stop = n - n % bs if self.drop_last else n
        fast = isinstance(self.dataset, TensorDataset) and self.collate_fn is None
        for start in range(0, stop, bs):
            idx = order[start : start + bs]
            if fast:
                batch = []
                for t in self.dataset.tensors:
                    ix = idx if t.device == "cpu" else t._xp.asarray(idx)
                    batch.append(Tensor(t.data[ix]))
                yield tuple(batch)
            else:
                items = [self.dataset[int(i)] for i in idx]
                yield (self.collate_fn or default_collate)(items)
