"""Reference for batch_norm, layer_norm, group_norm and instance_norm: forward and
vector-Jacobian product, float64.

Written from the definitions (torch semantics): batch_norm normalizes each channel c of
x (N, C, *) over all axes but 1 with the batch mean and the biased variance; the running
statistics move by momentum towards the batch mean and the *unbiased* variance. layer_norm
normalizes over the trailing normalized_shape axes. Adjoints, with xhat = (x - mean) / sigma:
  dx = w / sigma * (g - mean(g) - xhat * mean(g * xhat)),  dw = sum(g * xhat),  db = sum(g).
"""

from __future__ import annotations

import numpy as np


def _f(x):
    return None if x is None else np.asarray(x, dtype=np.float64)


def _bn_axes(x):
    return (0,) + tuple(range(2, x.ndim))


def _cview(v, x):
    return v.reshape((1, x.shape[1]) + (1,) * (x.ndim - 2))


def batch_norm_stats(x):
    """Per-channel mean and biased variance of x (N, C, *)."""
    x = _f(x)
    ax = _bn_axes(x)
    return x.mean(axis=ax), x.var(axis=ax)


def batch_norm_train(x, weight=None, bias=None, eps=1e-5):
    """y of batch_norm in training mode (batch statistics)."""
    x = _f(x)
    mean, var = batch_norm_stats(x)
    y = (x - _cview(mean, x)) / np.sqrt(_cview(var, x) + eps)
    if weight is not None:
        y = y * _cview(_f(weight), x)
    if bias is not None:
        y = y + _cview(_f(bias), x)
    return y


def batch_norm_train_vjp(g, x, weight=None, bias=None, eps=1e-5):
    x, g = _f(x), _f(g)
    ax = _bn_axes(x)
    mean, var = batch_norm_stats(x)
    sigma = np.sqrt(_cview(var, x) + eps)
    xhat = (x - _cview(mean, x)) / sigma
    w = _cview(_f(weight), x) if weight is not None else 1.0
    dx = (
        w
        / sigma
        * (g - g.mean(axis=ax, keepdims=True) - xhat * (g * xhat).mean(axis=ax, keepdims=True))
    )
    dw = (g * xhat).sum(axis=ax) if weight is not None else None
    db = g.sum(axis=ax) if bias is not None else None
    return dx, dw, db


def batch_norm_eval(x, running_mean, running_var, weight=None, bias=None, eps=1e-5):
    x = _f(x)
    y = (x - _cview(_f(running_mean), x)) / np.sqrt(_cview(_f(running_var), x) + eps)
    if weight is not None:
        y = y * _cview(_f(weight), x)
    if bias is not None:
        y = y + _cview(_f(bias), x)
    return y


def batch_norm_eval_vjp(g, x, running_mean, running_var, weight=None, bias=None, eps=1e-5):
    """The running statistics are constants: y is affine in x."""
    x, g = _f(x), _f(g)
    ax = _bn_axes(x)
    sigma = np.sqrt(_cview(_f(running_var), x) + eps)
    xhat = (x - _cview(_f(running_mean), x)) / sigma
    w = _cview(_f(weight), x) if weight is not None else 1.0
    dw = (g * xhat).sum(axis=ax) if weight is not None else None
    db = g.sum(axis=ax) if bias is not None else None
    return g * w / sigma, None, None, dw, db


def running_update(running_mean, running_var, x, momentum):
    """New (running_mean, running_var) after one training step on x (unbiased variance)."""
    x = _f(x)
    mean, var = batch_norm_stats(x)
    m = x.size // x.shape[1]
    unbiased = var * m / (m - 1)
    return (
        (1 - momentum) * _f(running_mean) + momentum * mean,
        (1 - momentum) * _f(running_var) + momentum * unbiased,
    )


def _ln_axes(x, normalized_shape):
    k = 1 if isinstance(normalized_shape, int) else len(normalized_shape)
    return tuple(range(x.ndim - k, x.ndim)), tuple(range(x.ndim - k))


def layer_norm(x, normalized_shape, weight=None, bias=None, eps=1e-5):
    x = _f(x)
    ax, _ = _ln_axes(x, normalized_shape)
    mean = x.mean(axis=ax, keepdims=True)
    var = x.var(axis=ax, keepdims=True)
    y = (x - mean) / np.sqrt(var + eps)
    if weight is not None:
        y = y * _f(weight)
    if bias is not None:
        y = y + _f(bias)
    return y


def layer_norm_vjp(g, x, normalized_shape, weight=None, bias=None, eps=1e-5):
    x, g = _f(x), _f(g)
    ax, lead = _ln_axes(x, normalized_shape)
    mean = x.mean(axis=ax, keepdims=True)
    sigma = np.sqrt(x.var(axis=ax, keepdims=True) + eps)
    xhat = (x - mean) / sigma
    gw = g * _f(weight) if weight is not None else g
    dx = (
        gw - gw.mean(axis=ax, keepdims=True) - xhat * (gw * xhat).mean(axis=ax, keepdims=True)
    ) / sigma
    dw = (g * xhat).sum(axis=lead) if weight is not None else None
    db = g.sum(axis=lead) if bias is not None else None
    return dx, None, dw, db


def _groups(x, num_groups):
    """x (N, C, *) viewed as (N, G, C/G * prod(*)): the axes one group normalizes over."""
    x = _f(x)
    return x.reshape(x.shape[0], num_groups, -1)


def group_norm(x, num_groups, weight=None, bias=None, eps=1e-5):
    """Each (sample, group of C/G channels) normalized over its channels and positions with the
    mean and the biased variance; then weight[c] * . + bias[c] per channel."""
    x = _f(x)
    xg = _groups(x, num_groups)
    xhat = (xg - xg.mean(axis=2, keepdims=True)) / np.sqrt(xg.var(axis=2, keepdims=True) + eps)
    y = xhat.reshape(x.shape)
    if weight is not None:
        y = y * _cview(_f(weight), x)
    if bias is not None:
        y = y + _cview(_f(bias), x)
    return y


def group_norm_vjp(g, x, num_groups, weight=None, bias=None, eps=1e-5):
    """With xhat per group and gw = g * weight[c]: dx = (gw - mean(gw) - xhat mean(gw xhat)) /
    sigma over each group; dweight[c] = sum g xhat, dbias[c] = sum g over samples and positions."""
    x, g = _f(x), _f(g)
    xg = _groups(x, num_groups)
    sigma = np.sqrt(xg.var(axis=2, keepdims=True) + eps)
    xhat_g = (xg - xg.mean(axis=2, keepdims=True)) / sigma
    gw = g * _cview(_f(weight), x) if weight is not None else g
    gwg = gw.reshape(xg.shape)
    dx = (
        gwg - gwg.mean(axis=2, keepdims=True) - xhat_g * (gwg * xhat_g).mean(axis=2, keepdims=True)
    ) / sigma
    xhat = xhat_g.reshape(x.shape)
    ax = _bn_axes(x)
    dw = (g * xhat).sum(axis=ax) if weight is not None else None
    db = g.sum(axis=ax) if bias is not None else None
    return dx.reshape(x.shape), None, dw, db


def instance_norm(x, weight=None, bias=None, eps=1e-5):
    """Each (sample, channel) normalized over its positions: group_norm with one channel per
    group."""
    return group_norm(x, _f(x).shape[1], weight, bias, eps)


def instance_norm_vjp(g, x, weight=None, bias=None, eps=1e-5):
    dx, _, dw, db = group_norm_vjp(g, x, _f(x).shape[1], weight, bias, eps)
    return dx, dw, db


def instance_running_update(running_mean, running_var, x, momentum):
    """Running statistics after one training step of instance_norm: the per-instance means and
    unbiased variances, averaged over the batch, mixed in with momentum (torch's rule)."""
    x = _f(x)
    xi = x.reshape(x.shape[0], x.shape[1], -1)
    mean = xi.mean(axis=2).mean(axis=0)
    var = xi.var(axis=2, ddof=1).mean(axis=0)
    return (
        (1 - momentum) * _f(running_mean) + momentum * mean,
        (1 - momentum) * _f(running_var) + momentum * var,
    )
