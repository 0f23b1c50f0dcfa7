"""Reference for shape ops (views, joins, splits, padding): forward and VJP, float64.

Views move elements without changing them, so each VJP moves the gradient back
(the inverse permutation, the inverse reshape, ...); expand's VJP sums over the
broadcast axes; pad's VJP gathers the gradient of the source elements.
"""

from __future__ import annotations

import math

import numpy as np

from ._util import unbroadcast


def _f(x):
    return np.asarray(x, dtype=np.float64)


def reshape(x, shape):
    return _f(x).reshape(shape)


def reshape_vjp(g, x, shape):
    return (_f(g).reshape(np.shape(x)),)


def transpose(x, d0, d1):
    return np.swapaxes(_f(x), d0, d1)


def transpose_vjp(g, x, d0, d1):  # a swap is its own inverse
    return (np.swapaxes(_f(g), d0, d1),)


def permute(x, dims):
    return np.transpose(_f(x), dims)


def permute_vjp(g, x, dims):
    return (np.transpose(_f(g), np.argsort([d % np.ndim(x) for d in dims])),)


def flatten(x, start_dim=0, end_dim=-1):
    x = _f(x)
    if x.ndim == 0:
        return x.reshape(1)
    s, e = start_dim % x.ndim, end_dim % x.ndim
    return x.reshape(x.shape[:s] + (math.prod(x.shape[s : e + 1]),) + x.shape[e + 1 :])


def flatten_vjp(g, x, start_dim=0, end_dim=-1):
    return (_f(g).reshape(np.shape(x)),)


def squeeze(x, dim=None):
    """torch semantics: remove size-1 dims; a given dim of size != 1 is left alone."""
    x = _f(x)
    if dim is None:
        return x.reshape([n for n in x.shape if n != 1])
    dims = (dim,) if isinstance(dim, int) else tuple(dim)
    dims = {d % max(x.ndim, 1) for d in dims}
    return x.reshape([n for i, n in enumerate(x.shape) if not (i in dims and n == 1)])


def squeeze_vjp(g, x, dim=None):
    return (_f(g).reshape(np.shape(x)),)


def unsqueeze(x, dim):
    x = _f(x)
    return np.expand_dims(x, dim % (x.ndim + 1))


def unsqueeze_vjp(g, x, dim):
    return (_f(g).reshape(np.shape(x)),)


def expand(x, sizes):
    """torch.expand: -1 keeps a size; new dims are added in front."""
    x = _f(x)
    lead = len(sizes) - x.ndim
    shape = [x.shape[i - lead] if (s == -1 and i >= lead) else s for i, s in enumerate(sizes)]
    return np.broadcast_to(x, shape).copy()


def expand_vjp(g, x, sizes):  # sum over every broadcast axis
    return (unbroadcast(g, np.shape(x)),)


def cat(xs, dim=0):
    return np.concatenate([_f(x) for x in xs], axis=dim)


def cat_vjp(g, xs, dim=0):
    g = _f(g)
    edges = np.cumsum([np.shape(x)[dim] for x in xs])[:-1]
    return tuple(np.split(g, edges, axis=dim))


def stack(xs, dim=0):
    return np.stack([_f(x) for x in xs], axis=dim)


def stack_vjp(g, xs, dim=0):
    g = _f(g)
    return tuple(np.take(g, i, axis=dim) for i in range(len(xs)))


def _split_sizes(n, split_size_or_sections):
    if isinstance(split_size_or_sections, int):
        s = split_size_or_sections
        return [min(s, n - i) for i in range(0, n, s)] if n else [0]
    return list(split_size_or_sections)


def split(x, split_size_or_sections, dim=0):
    """torch.split: an int gives pieces of that size (the last may be smaller)."""
    x = _f(x)
    sizes = _split_sizes(x.shape[dim], split_size_or_sections)
    return tuple(np.split(x, np.cumsum(sizes)[:-1], axis=dim))


def split_vjp(gs, x, split_size_or_sections, dim=0):  # concatenate the pieces' gradients
    return (np.concatenate([_f(g) for g in gs], axis=dim),)


def chunk(x, chunks, dim=0):
    """torch.chunk: pieces of ceil(n / chunks); may return fewer than `chunks` pieces."""
    x = _f(x)
    n = x.shape[dim]
    if n == 0:
        raise ValueError("reference chunk: only defined here for a non-empty dim")
    return split(x, -(-n // chunks), dim)


def chunk_vjp(gs, x, chunks, dim=0):
    return (np.concatenate([_f(g) for g in gs], axis=dim),)


# ------------------------------------------------------------------------- pad


def _source_index(n, lo, hi, mode):
    """For each output position along one dim, the source position (or -1 for `value`)."""
    s = np.arange(-lo, n + hi)
    if mode == "constant":
        return np.where((s >= 0) & (s < n), s, -1)
    if mode == "reflect":  # mirror without repeating the edge
        s = np.abs(s)
        return np.where(s >= n, 2 * (n - 1) - s, s)
    if mode == "replicate":
        return np.clip(s, 0, n - 1)
    if mode == "circular":
        return np.mod(s, n)
    raise ValueError(mode)


def _pad_maps(shape, pad, mode):
    """pad = (last_lo, last_hi, second_last_lo, second_last_hi, ...) as torch."""
    maps = [np.arange(n) for n in shape]
    for i in range(len(pad) // 2):
        d = len(shape) - 1 - i
        maps[d] = _source_index(shape[d], pad[2 * i], pad[2 * i + 1], mode)
    return maps


def pad(x, pad, mode="constant", value=0.0):
    x = _f(x)
    maps = _pad_maps(x.shape, pad, mode)
    grids = np.meshgrid(*maps, indexing="ij") if maps else []
    valid = np.ones([len(m) for m in maps], dtype=bool)
    for gi in grids:
        valid &= gi >= 0
    safe = tuple(np.where(gi >= 0, gi, 0) for gi in grids)
    out = np.where(valid, x[safe] if x.size else 0.0, value)
    return out


def pad_vjp(g, x, pad, mode="constant", value=0.0):
    """Each source element receives the sum of the gradient of the outputs copied from it."""
    x = _f(x)
    g = _f(g)
    maps = _pad_maps(x.shape, pad, mode)
    grids = np.meshgrid(*maps, indexing="ij") if maps else []
    valid = np.ones(g.shape, dtype=bool)
    for gi in grids:
        valid &= gi >= 0
    gx = np.zeros_like(x)
    np.add.at(gx, tuple(gi[valid] for gi in grids), g[valid])
    return (gx,)
