"""Reference for reductions: forward and vector-Jacobian product, float64.

``dim`` is None | int | tuple (None reduces everything); ``keepdim`` as torch.
VJPs put the reduced gradient back on the input's shape: sum -> broadcast,
mean -> broadcast / N, amax/amin -> split evenly among the tied extrema,
max/min with a dim -> all to the first extremum, var/std from their derivatives.
"""

from __future__ import annotations

from collections import namedtuple

import numpy as np

from ._util import norm_dims

MaxMin = namedtuple("MaxMin", ["values", "indices"])


def _f(x):
    return np.asarray(x, dtype=np.float64)


def _expand(g, x, dims, keepdim):
    """Broadcast a reduced gradient back to x's shape."""
    g = _f(g)
    if not keepdim:
        g = g.reshape([1 if i in dims else n for i, n in enumerate(x.shape)])
    return np.broadcast_to(g, x.shape)


def _count(x, dims):
    return int(np.prod([x.shape[d] for d in dims])) if dims else 1


def sum(x, dim=None, keepdim=False):  # noqa: A001
    x = _f(x)
    return np.sum(x, axis=norm_dims(dim, x.ndim), keepdims=keepdim)


def sum_vjp(g, x, dim=None, keepdim=False):  # d sum / dx_i = 1
    x = _f(x)
    return (_expand(g, x, norm_dims(dim, x.ndim), keepdim).copy(),)


def mean(x, dim=None, keepdim=False):
    x = _f(x)
    dims = norm_dims(dim, x.ndim)
    return np.sum(x, axis=dims, keepdims=keepdim) / _count(x, dims)


def mean_vjp(g, x, dim=None, keepdim=False):  # d mean / dx_i = 1/N
    x = _f(x)
    dims = norm_dims(dim, x.ndim)
    return (_expand(g, x, dims, keepdim) / _count(x, dims),)


def amax(x, dim=None, keepdim=False):
    x = _f(x)
    return np.max(x, axis=norm_dims(dim, x.ndim), keepdims=keepdim)


def amin(x, dim=None, keepdim=False):
    x = _f(x)
    return np.min(x, axis=norm_dims(dim, x.ndim), keepdims=keepdim)


def _extremum_vjp(g, x, dim, keepdim, fn):
    x = _f(x)
    dims = norm_dims(dim, x.ndim)
    m = fn(x, axis=dims, keepdims=True)
    hit = (x == m).astype(np.float64)
    count = np.sum(hit, axis=dims, keepdims=True)
    return (_expand(g, x, dims, keepdim) * hit / count,)


def amax_vjp(g, x, dim=None, keepdim=False):
    """Gradient split evenly among all positions equal to the maximum."""
    return _extremum_vjp(g, x, dim, keepdim, np.max)


def amin_vjp(g, x, dim=None, keepdim=False):
    return _extremum_vjp(g, x, dim, keepdim, np.min)


# max()/min() without dim: same as amax/amin over everything
def max_all(x):
    return amax(x)


def max_all_vjp(g, x):
    return amax_vjp(g, x)


def min_all(x):
    return amin(x)


def min_all_vjp(g, x):
    return amin_vjp(g, x)


def _dim_extremum(x, dim, keepdim, argfn):
    x = _f(x)
    d = norm_dims(dim, x.ndim)[0] if x.ndim else None
    if d is None:  # 0-d tensor
        return MaxMin(x.copy(), np.zeros((), np.int64))
    idx = argfn(x, axis=d, keepdims=True)  # first occurrence
    vals = np.take_along_axis(x, idx, axis=d)
    if not keepdim:
        vals, idx = np.squeeze(vals, d), np.squeeze(idx, d)
    return MaxMin(vals, idx.astype(np.int64))


def max_dim(x, dim, keepdim=False):
    """(values, indices) along dim; the index is that of the first maximum."""
    return _dim_extremum(x, dim, keepdim, np.argmax)


def min_dim(x, dim, keepdim=False):
    return _dim_extremum(x, dim, keepdim, np.argmin)


def _dim_extremum_vjp(gs, x, dim, keepdim, argfn):
    g = gs[0] if isinstance(gs, tuple) else gs  # only `values` is differentiable
    x = _f(x)
    gx = np.zeros_like(x)
    if x.ndim == 0:
        return (_f(g).copy(),)
    d = norm_dims(dim, x.ndim)[0]
    idx = argfn(x, axis=d, keepdims=True)
    g = _f(g) if keepdim else np.expand_dims(_f(g), d)
    np.put_along_axis(gx, idx, g, axis=d)
    return (gx,)


def max_dim_vjp(gs, x, dim, keepdim=False):
    """All of the gradient to the first maximum along dim."""
    return _dim_extremum_vjp(gs, x, dim, keepdim, np.argmax)


def min_dim_vjp(gs, x, dim, keepdim=False):
    return _dim_extremum_vjp(gs, x, dim, keepdim, np.argmin)


def argmax(x, dim=None, keepdim=False):
    x = _f(x)
    if dim is None:
        return np.int64(np.argmax(x.reshape(-1)))
    return np.argmax(x, axis=dim, keepdims=keepdim).astype(np.int64)


def argmin(x, dim=None, keepdim=False):
    x = _f(x)
    if dim is None:
        return np.int64(np.argmin(x.reshape(-1)))
    return np.argmin(x, axis=dim, keepdims=keepdim).astype(np.int64)


def var(x, dim=None, correction=1, keepdim=False):
    """sum((x - mean)^2) / (N - correction)."""
    x = _f(x)
    dims = norm_dims(dim, x.ndim)
    mu = np.mean(x, axis=dims, keepdims=True)
    return np.sum((x - mu) ** 2, axis=dims, keepdims=keepdim) / (_count(x, dims) - correction)


def var_vjp(g, x, dim=None, correction=1, keepdim=False):  # d var / dx_i = 2 (x_i - mean) / (N - c)
    x = _f(x)
    dims = norm_dims(dim, x.ndim)
    mu = np.mean(x, axis=dims, keepdims=True)
    return (_expand(g, x, dims, keepdim) * 2.0 * (x - mu) / (_count(x, dims) - correction),)


def std(x, dim=None, correction=1, keepdim=False):
    return np.sqrt(var(x, dim, correction, keepdim))


def std_vjp(g, x, dim=None, correction=1, keepdim=False):
    """d std / dx_i = (x_i - mean) / ((N - c) std)."""
    x = _f(x)
    dims = norm_dims(dim, x.ndim)
    mu = np.mean(x, axis=dims, keepdims=True)
    s = np.sqrt(var(x, dim, correction, keepdim=True))
    return (_expand(g, x, dims, keepdim) * (x - mu) / ((_count(x, dims) - correction) * s),)
