"""Shape ops: reshape/view, permute/transpose, expand, squeeze/unsqueeze/flatten, cat/stack,
split/chunk, pad. Views share memory with their input where NumPy can express them."""

from __future__ import annotations

import numbers
from typing import Sequence, Union

import numpy as np

from .._checks import allocating, check_numel
from ..autograd import Function
from ..tensor import Tensor
from .elementwise import sum_to


def _shape_arg(shape) -> tuple:
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    return tuple(int(s) for s in shape)


def _dim(d: int, ndim: int, op: str) -> int:
    if not -ndim <= d < ndim:
        raise IndexError(f"[{op}] dim {d} is out of range for a tensor of {ndim} dims")
    return d % ndim


class Reshape(Function):
    @staticmethod
    def forward(ctx, x, shape):
        ctx.shape = x.shape
        return Tensor(x.data.reshape(shape))

    @staticmethod
    def backward(ctx, g):
        return g.reshape(ctx.shape), None


def reshape(x: Tensor, *shape) -> Tensor:
    shape = _shape_arg(shape)
    n_infer = sum(1 for s in shape if s == -1)
    known = int(np.prod([s for s in shape if s != -1])) if shape else 1
    ok = n_infer <= 1 and all(s >= -1 for s in shape)
    if ok and n_infer == 0:
        ok = known == x.numel()
    elif ok:
        ok = known != 0 and x.numel() % known == 0
    if not ok:
        raise ValueError(f"[reshape] shape {shape} is invalid for input of size {x.numel()}")
    if tuple(shape) == tuple(x.shape):
        return x
    return Reshape.apply(x, shape)


def view(x: Tensor, *shape) -> Tensor:
    """Like reshape; NumPy decides whether it can be a view (copying otherwise)."""
    return reshape(x, *shape)


class Permute(Function):
    @staticmethod
    def forward(ctx, x, dims):
        ctx.dims = dims
        return Tensor(x.data.transpose(dims))

    @staticmethod
    def backward(ctx, g):
        inv = tuple(np.argsort(ctx.dims))
        return Permute.apply(g, inv), None


def permute(x: Tensor, *dims) -> Tensor:
    dims = _shape_arg(dims)
    if sorted(d % max(x.ndim, 1) for d in dims) != list(range(x.ndim)):
        raise ValueError(f"[permute] {dims} is not a permutation of {x.ndim} dims")
    dims = tuple(d % x.ndim for d in dims)
    return Permute.apply(x, dims)


def transpose(x: Tensor, dim0: int, dim1: int) -> Tensor:
    if x.ndim == 0:
        return x
    d0, d1 = _dim(dim0, x.ndim, "transpose"), _dim(dim1, x.ndim, "transpose")
    dims = list(range(x.ndim))
    dims[d0], dims[d1] = dims[d1], dims[d0]
    return Permute.apply(x, tuple(dims))


def t(x: Tensor) -> Tensor:
    if x.ndim > 2:
        raise ValueError(f"[t] expects a tensor of at most 2 dims, got {x.ndim}")
    return transpose(x, 0, 1) if x.ndim == 2 else x


class Expand(Function):
    @staticmethod
    def forward(ctx, x, shape):
        ctx.shape = x.shape
        return Tensor(x._xp.broadcast_to(x.data, shape))

    @staticmethod
    def backward(ctx, g):
        return sum_to(g, ctx.shape), None


def expand(x: Tensor, *sizes, _op: str = "expand") -> Tensor:
    """A broadcast view of x with the given sizes (-1 keeps a size), as torch.expand."""
    sizes = _shape_arg(sizes)
    if len(sizes) < x.ndim:
        raise ValueError(f"[{_op}] {len(sizes)} sizes for a tensor of {x.ndim} dims")
    lead = len(sizes) - x.ndim
    shape = []
    for i, s in enumerate(sizes):
        if s == -1:
            if i < lead:
                raise ValueError(f"[{_op}] -1 is not allowed for a new leading dimension")
            s = x.shape[i - lead]
        elif s < 0:
            raise ValueError(f"[{_op}] sizes must be non-negative or -1, got {sizes}")
        elif i >= lead and x.shape[i - lead] not in (1, s):
            raise ValueError(f"[{_op}] cannot expand shape {tuple(x.shape)} to {sizes}")
        shape.append(s)
    shape = tuple(shape)
    if shape == tuple(x.shape):
        return x
    check_numel(_op, shape, x.dtype, allocates=False)  # NumPy's limit, for views too
    return Expand.apply(x, shape)


def broadcast_to(x: Tensor, shape) -> Tensor:
    return expand(x, *shape, _op="broadcast_to")


def squeeze(x: Tensor, dim=None) -> Tensor:
    if dim is None:
        shape = tuple(s for s in x.shape if s != 1)
    else:
        dims = (dim,) if isinstance(dim, numbers.Integral) else tuple(dim)
        dims = {_dim(d, max(x.ndim, 1), "squeeze") for d in dims}
        shape = tuple(s for i, s in enumerate(x.shape) if not (i in dims and s == 1))
    return reshape(x, shape)


def unsqueeze(x: Tensor, dim: int) -> Tensor:
    d = _dim(dim, x.ndim + 1, "unsqueeze")
    shape = list(x.shape)
    shape.insert(d, 1)
    return reshape(x, tuple(shape))


def flatten(x: Tensor, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    if x.ndim == 0:
        return reshape(x, (1,))
    s, e = _dim(start_dim, x.ndim, "flatten"), _dim(end_dim, x.ndim, "flatten")
    if s > e:
        raise ValueError("[flatten] start_dim must not come after end_dim")
    shape = x.shape[:s] + (int(np.prod(x.shape[s : e + 1])),) + x.shape[e + 1 :]
    return reshape(x, shape)


def unflatten(x: Tensor, dim: int, sizes) -> Tensor:
    d = _dim(dim, x.ndim, "unflatten")
    sizes = tuple(int(s) for s in sizes)
    known = int(np.prod([s for s in sizes if s != -1]))
    if sizes.count(-1) > 1 or (
        x.shape[d] != known if -1 not in sizes else (known == 0 or x.shape[d] % known)
    ):
        raise ValueError(f"[unflatten] sizes {sizes} do not multiply to {x.shape[d]} (dim {d})")
    return reshape(x, x.shape[:d] + tuple(sizes) + x.shape[d + 1 :])


class Cat(Function):
    @staticmethod
    def forward(ctx, dim, *xs):
        ctx.dim = dim
        ctx.sizes = [x.shape[dim] for x in xs]
        return Tensor(xs[0]._xp.concatenate([x.data for x in xs], axis=dim))

    @staticmethod
    def backward(ctx, g):
        out, start = [None], 0
        for n in ctx.sizes:
            idx = (slice(None),) * ctx.dim + (slice(start, start + n),)
            out.append(g[idx])
            start += n
        return tuple(out)


def _tensor_list(tensors, op: str) -> list:
    if isinstance(tensors, Tensor) or not hasattr(tensors, "__iter__"):
        raise TypeError(f"[{op}] expects a sequence of tensors, got {type(tensors).__name__}")
    tensors = list(tensors)
    if not tensors:
        raise ValueError(f"[{op}] expects a non-empty list of tensors")
    for t_ in tensors:
        if not isinstance(t_, Tensor):
            raise TypeError(f"[{op}] expects tensors, got {type(t_).__name__}")
        if t_.dtype != tensors[0].dtype:
            raise TypeError(f"[{op}] dtypes differ: {tensors[0].dtype} and {t_.dtype}")
        if t_.device != tensors[0].device:
            raise RuntimeError(f"[{op}] devices differ: {tensors[0].device} and {t_.device}")
    return tensors


def cat(tensors: Sequence[Tensor], dim: int = 0) -> Tensor:
    tensors = _tensor_list(tensors, "cat")
    first = tensors[0]
    d = _dim(dim, first.ndim, "cat")
    for t_ in tensors[1:]:
        if t_.ndim != first.ndim or any(
            a != b for i, (a, b) in enumerate(zip(t_.shape, first.shape)) if i != d
        ):
            raise ValueError(
                f"[cat] shapes {tuple(first.shape)} and {tuple(t_.shape)} differ outside dim {d}"
            )
    return Cat.apply(d, *tensors)


concat = cat


def stack(tensors: Sequence[Tensor], dim: int = 0) -> Tensor:
    tensors = _tensor_list(tensors, "stack")
    for t_ in tensors[1:]:
        if tuple(t_.shape) != tuple(tensors[0].shape):
            raise ValueError(
                f"[stack] all tensors must have one shape, got {tuple(tensors[0].shape)} and "
                f"{tuple(t_.shape)}"
            )
    d = _dim(dim, tensors[0].ndim + 1, "stack")
    return cat([unsqueeze(t_, d) for t_ in tensors], d)


def split(x: Tensor, split_size_or_sections: Union[int, Sequence[int]], dim: int = 0):
    d = _dim(dim, x.ndim, "split")
    n = x.shape[d]
    if isinstance(split_size_or_sections, numbers.Integral):
        size = int(split_size_or_sections)
        if size <= 0:
            raise ValueError(f"[split] split_size must be positive, got {size}")
        sizes = [min(size, n - s) for s in range(0, n, size)] or [0]
    else:
        sizes = [int(s) for s in split_size_or_sections]
        if any(s < 0 for s in sizes) or builtins_sum(sizes) != n:
            raise ValueError(f"[split] sections {sizes} do not add up to {n} along dim {d}")
    out, start = [], 0
    for s in sizes:
        out.append(x[(slice(None),) * d + (slice(start, start + s),)])
        start += s
    return tuple(out)


def chunk(x: Tensor, chunks: int, dim: int = 0):
    if chunks <= 0:
        raise ValueError(f"[chunk] chunks must be positive, got {chunks}")
    d = _dim(dim, x.ndim, "chunk")
    size = -(-x.shape[d] // chunks) if x.shape[d] else 1
    return split(x, max(size, 1), d)


def builtins_sum(xs) -> int:
    total = 0
    for v in xs:
        total += v
    return total


class Pad(Function):
    @staticmethod
    def forward(ctx, x, widths, value):
        ctx.widths = widths
        ctx.shape = x.shape
        xp = x._xp
        neg = any(lo < 0 or hi < 0 for lo, hi in widths)
        pos = [(max(lo, 0), max(hi, 0)) for lo, hi in widths]
        out = xp.pad(x.data, pos, mode="constant", constant_values=value)
        if neg:  # negative padding crops, as torch
            crop = tuple(
                slice(-min(lo, 0), out.shape[i] + min(hi, 0)) for i, (lo, hi) in enumerate(widths)
            )
            out = xp.ascontiguousarray(out[crop])
        return Tensor(out)

    @staticmethod
    def backward(ctx, g):
        neg = [(-lo, -hi) for lo, hi in ctx.widths]
        return Pad.apply(g, neg, 0.0), None, None


def pad(x: Tensor, pad: Sequence[int], mode: str = "constant", value: float = 0.0) -> Tensor:
    """Pad the last len(pad)//2 dims; pad = (left_last, right_last, left_prev, ...), as torch.

    mode: constant (negative pads crop), reflect, replicate or circular; unlike torch, the
    non-constant modes accept any number of padded trailing dims.
    """
    if not isinstance(x, Tensor):
        raise TypeError(f"[pad] expects a Tensor, got {type(x).__name__}")
    if any(isinstance(p, bool) or not isinstance(p, numbers.Integral) for p in pad):
        raise TypeError(f"[pad] pad must hold integers, got {tuple(pad)}")
    pad = tuple(int(p) for p in pad)
    if len(pad) % 2 or len(pad) // 2 > x.ndim:
        raise ValueError(
            f"[pad] pad must have an even length of at most 2*ndim ({2 * x.ndim}), got {len(pad)}"
        )
    widths = [(0, 0)] * x.ndim
    for i in range(len(pad) // 2):
        widths[x.ndim - 1 - i] = (pad[2 * i], pad[2 * i + 1])
    for (lo, hi), n in zip(widths, x.shape):
        if n + lo + hi < 0:
            raise ValueError(f"[pad] padding {pad} leaves a negative size for shape {x.shape}")
    check_numel("pad", [n + lo + hi for (lo, hi), n in zip(widths, x.shape)], x.dtype)
    with allocating("pad"):
        if mode != "constant":
            return _pad_by_index(x, widths, mode)
        return Pad.apply(x, widths, value)


_NP_MODE = {"reflect": "reflect", "replicate": "edge", "circular": "wrap"}


def _pad_by_index(x: Tensor, widths: list, mode: str) -> Tensor:
    """reflect / replicate / circular padding as a gather: each output element copies one
    source element, so the gradient is a scatter-add (ops.indexing's Index and its adjoint)."""
    if mode not in _NP_MODE:
        raise ValueError(
            f"[pad] mode must be 'constant', 'reflect', 'replicate' or 'circular', got {mode!r}"
        )
    maps = []
    for d, ((lo, hi), n) in enumerate(zip(widths, x.shape)):
        if lo < 0 or hi < 0:
            raise ValueError("[pad] negative padding is only supported in 'constant' mode")
        limit = {"reflect": n - 1, "circular": n, "replicate": n and max(lo, hi)}[mode]
        if (lo or hi) and (n == 0 or max(lo, hi) > limit):
            raise ValueError(
                f"[pad] {mode} padding ({lo}, {hi}) is too large for dim {d} of size {n}"
            )
        maps.append(np.pad(np.arange(n), (lo, hi), mode=_NP_MODE[mode]) if lo or hi else None)
    key = np.ix_(*[m if m is not None else np.arange(n) for m, n in zip(maps, x.shape)])
    from .indexing import index

    return index(x, key)
