"""x[key] with ints, slices, None, Ellipsis, integer arrays and boolean masks.

Backward scatters the gradient into zeros of the input's shape; repeated integer indices
accumulate (scatter-add), as torch's index backward does.
"""

from __future__ import annotations

import numpy as np

from ..autograd import Function
from ..tensor import Tensor


def _is_advanced(k) -> bool:
    return hasattr(k, "dtype") and getattr(k, "ndim", 0) >= 0 and not isinstance(k, np.generic)


def normalize_key(key, x: Tensor):
    """key with Tensors and lists turned into arrays on x's device; checks index dtypes."""
    if not isinstance(key, tuple):
        key = (key,)
    out = []
    for k in key:
        if isinstance(k, Tensor):
            if k.dtype.kind not in "iub":
                raise IndexError(
                    f"[index] tensors used as indices must be integer or bool, got {k.dtype}"
                )
            if k.device != x.device:
                raise RuntimeError(f"[index] index is on {k.device} but the tensor on {x.device}")
            k = k.data
        elif isinstance(k, list):
            k = x._xp.asarray(k)
            if k.dtype.kind not in "iub":
                raise IndexError(f"[index] list indices must hold ints or bools, got {k.dtype}")
        elif isinstance(k, np.ndarray) and x.device != "cpu":
            k = x._xp.asarray(k)
        elif isinstance(k, float):
            raise IndexError(
                "[index] only integers, slices, None, Ellipsis, integer or bool "
                "arrays are valid indices"
            )
        out.append(k)
    return tuple(out)


def _has_advanced(key) -> bool:
    return any(_is_advanced(k) for k in key)


class Index(Function):
    @staticmethod
    def forward(ctx, x, key):
        ctx.shape, ctx.key = x.shape, key
        try:
            out = x.data[key]
        except IndexError as e:
            raise IndexError(f"[index] {e}") from None
        return Tensor(x._xp.asarray(out))

    @staticmethod
    def backward(ctx, g):
        return IndexPut.apply(g, ctx.key, ctx.shape), None


class IndexPut(Function):
    """zeros(shape) with src added at key; the adjoint of Index."""

    @staticmethod
    def forward(ctx, src, key, shape):
        ctx.key = key
        xp = src._xp
        out = xp.zeros(shape, dtype=src.dtype)
        if _has_advanced(key):
            if xp is np:
                np.add.at(out, key, src.data)
            else:
                import cupyx

                cupyx.scatter_add(out, key, src.data)
        else:
            out[key] = src.data
        return Tensor(out)

    @staticmethod
    def backward(ctx, g):
        return Index.apply(g, ctx.key), None, None


def index(x: Tensor, key) -> Tensor:
    return Index.apply(x, normalize_key(key, x))


def index_select(x: Tensor, dim: int, idx) -> Tensor:
    if not isinstance(x, Tensor):
        raise TypeError(f"[index_select] expects a Tensor, got {type(x).__name__}")
    if not -max(x.ndim, 1) <= dim < max(x.ndim, 1):
        raise IndexError(f"[index_select] dim {dim} is out of range for a tensor of {x.ndim} dims")
    d = dim % max(x.ndim, 1)
    i = idx.data if isinstance(idx, Tensor) else np.asarray(idx)
    if i.dtype.kind not in "iu":
        raise TypeError(f"[index_select] index must be an integer tensor, got {i.dtype}")
    if i.ndim > 1:
        raise ValueError(f"[index_select] index must be 0-D or 1-D, got {i.ndim}-D")
    size = x.shape[d] if x.ndim else 1
    if i.size and (int(i.min()) < -size or int(i.max()) >= size):
        raise IndexError(f"[index_select] index out of range for dim {d} of size {size}")
    return Index.apply(x, (slice(None),) * d + (x._xp.asarray(i),))
