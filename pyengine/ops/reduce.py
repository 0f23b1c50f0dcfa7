"""Reductions: sum, mean, var, std, amax/amin, max/min (with indices), argmax/argmin, gather.

dim is None (all dims), an int or a tuple of ints; negative dims count from the end.
"""

from __future__ import annotations

import builtins
from collections import namedtuple
from typing import Optional, Union

import numpy as np

from ..autograd import Function
from ..tensor import Tensor
from .elementwise import _check_float, _mask

Dims = Optional[Union[int, tuple, list]]

values_indices = namedtuple("values_indices", ["values", "indices"])


def norm_dims(dim: Dims, ndim: int, op: str) -> tuple:
    """dim as a sorted tuple of non-negative, distinct dims (all dims for None)."""
    if dim is None:
        return tuple(range(ndim))
    dims = (dim,) if isinstance(dim, (int, np.integer)) else tuple(dim)
    out = []
    for d in dims:
        d = int(d)
        if not -builtins.max(ndim, 1) <= d < builtins.max(ndim, 1):
            raise IndexError(f"[{op}] dim {d} is out of range for a tensor of {ndim} dims")
        out.append(d % builtins.max(ndim, 1) if ndim else 0)
    if len(set(out)) != len(out):
        raise ValueError(f"[{op}] dim {dims} repeats a dimension")
    return tuple(sorted(out)) if ndim else ()


def _keep_shape(shape: tuple, dims: tuple) -> tuple:
    return tuple(1 if i in dims else s for i, s in enumerate(shape))


class Sum(Function):
    @staticmethod
    def forward(ctx, x, dims, keepdim):
        ctx.shape, ctx.dims = x.shape, dims
        return Tensor(x._xp.asarray(x.data.sum(axis=dims, keepdims=keepdim)))

    @staticmethod
    def backward(ctx, g):
        return g.reshape(_keep_shape(ctx.shape, ctx.dims)).expand(*ctx.shape), None, None


def sum(x: Tensor, dim: Dims = None, keepdim: bool = False, dtype=None) -> Tensor:  # noqa: A001
    if dtype is not None:
        x = x.to(dtype)
    return Sum.apply(x, norm_dims(dim, x.ndim, "sum"), keepdim)


def mean(x: Tensor, dim: Dims = None, keepdim: bool = False) -> Tensor:
    _check_float(x, "mean")
    dims = norm_dims(dim, x.ndim, "mean")
    n = int(np.prod([x.shape[d] for d in dims])) if dims else 1
    return (
        Sum.apply(x, dims, keepdim) / builtins.max(n, 1)
        if n
        else Sum.apply(x, dims, keepdim) * np.nan
    )


def _correction(unbiased, correction) -> float:
    if correction is not None:
        return float(correction)
    return 1.0 if unbiased in (None, True) else 0.0


def var(
    x: Tensor,
    dim: Dims = None,
    unbiased: Optional[bool] = None,
    keepdim: bool = False,
    *,
    correction: Optional[float] = None,
) -> Tensor:
    """Variance with Bessel's correction by default (correction=1), as torch.var."""
    _check_float(x, "var")
    dims = norm_dims(dim, x.ndim, "var")
    n = int(np.prod([x.shape[d] for d in dims])) if dims else 1
    c = _correction(unbiased, correction)
    d = x - mean(x, dims, keepdim=True)
    ss = Sum.apply(d * d, dims, keepdim)
    return ss / (n - c) if n - c > 0 else ss * np.inf


def std(
    x: Tensor,
    dim: Dims = None,
    unbiased: Optional[bool] = None,
    keepdim: bool = False,
    *,
    correction: Optional[float] = None,
) -> Tensor:
    _check_float(x, "std")
    norm_dims(dim, x.ndim, "std")
    return var(x, dim, unbiased, keepdim, correction=correction).sqrt()


class Amax(Function):
    """max over dims; the gradient is split evenly among tied maxima (torch.amax)."""

    @staticmethod
    def forward(ctx, x, dims, keepdim, largest):
        if x.numel() == 0:
            raise ValueError("[amax] reduction over an empty tensor has no identity")
        xp = x._xp
        red = xp.max if largest else xp.min
        out = xp.asarray(red(x.data, axis=dims, keepdims=True))
        ctx.save_for_backward(x)
        ctx.out, ctx.dims = out, dims
        return Tensor(
            out if keepdim else out.reshape([s for i, s in enumerate(out.shape) if i not in dims])
        )

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        hit = _mask(x.data == ctx.out, x)
        count = hit.sum(dim=ctx.dims, keepdim=True)
        gk = g.reshape(_keep_shape(x.shape, ctx.dims))
        return gk * hit / count, None, None, None


def _check_nonempty(x: Tensor, op: str) -> None:
    if not isinstance(x, Tensor):
        raise TypeError(f"[{op}] expects a Tensor, got {type(x).__name__}")
    if x.numel() == 0:
        raise ValueError(f"[{op}] reduction over an empty tensor has no identity")


def amax(x: Tensor, dim: Dims = None, keepdim: bool = False) -> Tensor:
    _check_nonempty(x, "amax")
    return Amax.apply(x, norm_dims(dim, x.ndim, "amax"), keepdim, True)


def amin(x: Tensor, dim: Dims = None, keepdim: bool = False) -> Tensor:
    _check_nonempty(x, "amin")
    return Amax.apply(x, norm_dims(dim, x.ndim, "amin"), keepdim, False)


def argmax(x: Tensor, dim: Optional[int] = None, keepdim: bool = False) -> Tensor:
    """Index of the first maximum (over the flattened tensor when dim is None)."""
    return _arg(x, dim, keepdim, "argmax")


def argmin(x: Tensor, dim: Optional[int] = None, keepdim: bool = False) -> Tensor:
    return _arg(x, dim, keepdim, "argmin")


def _arg(x: Tensor, dim, keepdim, op) -> Tensor:
    if x.numel() == 0:
        raise ValueError(f"[{op}] of an empty tensor")
    fn = x._xp.argmax if op == "argmax" else x._xp.argmin
    if dim is None:
        out = x._xp.asarray(fn(x.data.reshape(-1)))
        if keepdim:
            out = out.reshape((1,) * x.ndim)
    else:
        (d,) = norm_dims(dim, x.ndim, op)
        out = fn(x.data, axis=d, keepdims=keepdim)
    return Tensor(x._xp.asarray(out, dtype=np.int64))


class Gather(Function):
    """out[i][j] = x[i][index[i][j]] along dim (torch.gather); backward scatter-adds."""

    @staticmethod
    def forward(ctx, x, dim, index):
        ctx.dim, ctx.index, ctx.shape = dim, index, x.shape
        return Tensor(x._xp.take_along_axis(x.data, index, axis=dim))

    @staticmethod
    def backward(ctx, g):
        return ScatterAdd.apply(g, ctx.dim, ctx.index, ctx.shape), None, None


class ScatterAdd(Function):
    """zeros(shape) with src added at index along dim; the adjoint of Gather."""

    @staticmethod
    def forward(ctx, src, dim, index, shape):
        ctx.dim, ctx.index = dim, index
        xp = src._xp
        out = xp.zeros(shape, dtype=src.dtype)
        idx = list(xp.indices(index.shape, sparse=True))
        idx[dim] = index
        if xp is np:
            np.add.at(out, tuple(idx), src.data)
        else:
            import cupyx

            cupyx.scatter_add(out, tuple(idx), src.data)
        return Tensor(out)

    @staticmethod
    def backward(ctx, g):
        return Gather.apply(g, ctx.dim, ctx.index), None, None, None


def gather(x: Tensor, dim: int, index) -> Tensor:
    idx = index.data if isinstance(index, Tensor) else np.asarray(index)
    if idx.dtype.kind not in "iu":
        raise TypeError(f"[gather] index must be an integer tensor, got {idx.dtype}")
    if idx.ndim != x.ndim:
        raise ValueError(f"[gather] index has {idx.ndim} dims but input has {x.ndim}")
    (d,) = norm_dims(dim, x.ndim, "gather")
    if idx.size and (idx.min() < -x.shape[d] or idx.max() >= x.shape[d]):
        raise IndexError(f"[gather] index out of range for dim {d} of size {x.shape[d]}")
    return Gather.apply(x, d, idx % builtins.max(x.shape[d], 1))


def _max_min(x: Tensor, dim, keepdim, largest: bool, op: str):
    _check_nonempty(x, op)
    if dim is None:
        return Amax.apply(x, norm_dims(None, x.ndim, op), False, largest)
    (d,) = norm_dims(dim, x.ndim, op)
    idx = _arg(x, d, True, "argmax" if largest else "argmin")
    vals = Gather.apply(x, d, idx.data)
    if not keepdim:
        vals = vals.squeeze(d)
        idx = Tensor(idx.data.squeeze(d) if x.ndim else idx.data)
    return values_indices(vals, idx)


def max(x: Tensor, dim: Optional[int] = None, keepdim: bool = False):  # noqa: A001
    """max() -> the largest value; max(dim) -> (values, indices), gradient to the first max."""
    if isinstance(dim, Tensor):
        from .elementwise import maximum

        return maximum(x, dim)
    return _max_min(x, dim, keepdim, True, "max")


def min(x: Tensor, dim: Optional[int] = None, keepdim: bool = False):  # noqa: A001
    if isinstance(dim, Tensor):
        from .elementwise import minimum

        return minimum(x, dim)
    return _max_min(x, dim, keepdim, False, "min")
