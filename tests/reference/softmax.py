"""Reference for softmax, log_softmax, cross_entropy and nll_loss, float64, from the definitions.

Losses follow torch: per sample s = (n, d1, ...) of input (N, C, d1, ...),
  nll:  l_s = -w[t_s] * x[n, t_s, ...], 0 where t_s == ignore_index; 'mean' divides the sum
        by sum_s w[t_s] over non-ignored samples (0/0 = NaN when all are ignored);
  cross_entropy with label smoothing eps: (1 - eps) * nll(log_softmax(x)) + eps / C * smooth,
        smooth_s = -sum_c w[c] * log_softmax(x)[n, c, ...] (0 where ignored), same divisor;
  probability targets q: l_s = -sum_c w[c] * q'_c * log_softmax(x)_c, q' = (1-eps) q + eps/C,
        'mean' divides by the number of samples.
The adjoints go through log p: d l / d logp first, then log_softmax's adjoint
(dx = dlogp - softmax(x) * sum_c dlogp), a different route from the fused kernel's formula.
"""

from __future__ import annotations

import numpy as np


def _f(x):
    return np.asarray(x, dtype=np.float64)


def softmax(x, dim):
    x = _f(x)
    e = np.exp(x - x.max(axis=dim, keepdims=True))
    return e / e.sum(axis=dim, keepdims=True)


def log_softmax(x, dim):
    x = _f(x)
    m = x.max(axis=dim, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=dim, keepdims=True))


def softmax_vjp(g, x, dim):
    y = softmax(x, dim)
    g = _f(g)
    return (y * (g - (g * y).sum(axis=dim, keepdims=True)),)


def log_softmax_vjp(g, x, dim):
    g = _f(g)
    return (g - softmax(x, dim) * g.sum(axis=dim, keepdims=True),)


def _cview(v, ndim):
    return np.asarray(v).reshape((1, -1) + (1,) * (ndim - 2))


def _per_sample(shape):
    return (shape[0],) + tuple(shape[2:])


def _class_terms(logp, target, weight, ignore_index, label_smoothing):
    """(per-sample loss, per-sample weight, d loss_s / d logp) for class-index targets."""
    n, c = logp.shape[0], logp.shape[1]
    t = np.asarray(target)
    keep = t != ignore_index
    tt = np.where(keep, t, 0)
    w = np.ones(c) if weight is None else _f(weight)
    onehot = np.arange(c).reshape((1, c) + (1,) * (logp.ndim - 2)) == tt[:, None]
    wt = np.where(keep, w[tt], 0.0)
    nll = -(logp * onehot).sum(axis=1) * wt
    smooth = -(logp * _cview(w, logp.ndim)).sum(axis=1) * keep
    eps = label_smoothing
    loss = (1 - eps) * nll + eps / c * smooth
    dlogp = -(1 - eps) * onehot * wt[:, None] - eps / c * _cview(w, logp.ndim) * keep[:, None]
    del n
    return loss, wt, dlogp


def _prob_terms(logp, target, weight, label_smoothing):
    c = logp.shape[1]
    w = np.ones(c) if weight is None else _f(weight)
    q = (1 - label_smoothing) * _f(target) + label_smoothing / c
    wq = q * _cview(w, logp.ndim)
    return -(wq * logp).sum(axis=1), -wq


def _reduce(loss, divisor, reduction):
    if reduction == "none":
        return loss
    total = loss.sum()
    if reduction == "sum":
        return np.asarray(total)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.asarray(total / divisor)


def _g_per_sample(g, loss_shape, divisor, reduction):
    g = _f(g)
    if reduction == "none":
        return g
    scale = 1.0 if reduction == "sum" else (1.0 / divisor if divisor != 0 else 0.0)
    return np.broadcast_to(g * scale, loss_shape)


def _unbatched(x, target):
    """(C,) input with a 0-d class target or a (C,) probability target: a batch of one."""
    x = _f(x)
    t = np.asarray(target)
    if x.ndim != 1:
        return x, t, False
    return x[None], t[None], True


def cross_entropy(x, target, weight=None, ignore_index=-100, reduction="mean", label_smoothing=0.0):
    x, target, unbatched = _unbatched(x, target)
    if unbatched:
        out = cross_entropy(x, target, weight, ignore_index, reduction, label_smoothing)
        return out[0] if reduction == "none" else out
    logp = log_softmax(x, 1)
    if np.asarray(target).dtype.kind == "f":
        loss, _ = _prob_terms(logp, target, weight, label_smoothing)
        return _reduce(loss, loss.size, reduction)
    loss, wt, _ = _class_terms(logp, target, weight, ignore_index, label_smoothing)
    return _reduce(loss, wt.sum(), reduction)


def cross_entropy_vjp(
    g, x, target, weight=None, ignore_index=-100, reduction="mean", label_smoothing=0.0
):
    """(dx, dtarget or None, None): through d loss / d logp and log_softmax's adjoint.
    An all-ignored 'mean' gets a zero gradient, as torch."""
    x, target, unbatched = _unbatched(x, target)
    if unbatched:
        g1 = np.asarray(g)[None] if reduction == "none" else g
        dx, dt, _ = cross_entropy_vjp(
            g1, x, target, weight, ignore_index, reduction, label_smoothing
        )
        return dx[0], None if dt is None else dt[0], None
    logp = log_softmax(x, 1)
    probs = np.asarray(target).dtype.kind == "f"
    if probs:
        loss, dlogp = _prob_terms(logp, target, weight, label_smoothing)
        divisor = loss.size
    else:
        loss, wt, dlogp = _class_terms(logp, target, weight, ignore_index, label_smoothing)
        divisor = wt.sum()
    gs = _g_per_sample(g, loss.shape, divisor, reduction)[:, None]
    dlogp = dlogp * gs
    dx = dlogp - np.exp(logp) * dlogp.sum(axis=1, keepdims=True)
    dt = None
    if probs:
        w = np.ones(x.shape[1]) if weight is None else _f(weight)
        dt = -(1 - label_smoothing) * _cview(w, x.ndim) * logp * gs
    return dx, dt, None


def nll_loss(x, target, weight=None, ignore_index=-100, reduction="mean"):
    x, target, unbatched = _unbatched(x, target)
    if unbatched:
        out = nll_loss(x, target, weight, ignore_index, reduction)
        return out[0] if reduction == "none" else out
    c = x.shape[1]
    t = np.asarray(target)
    keep = t != ignore_index
    tt = np.where(keep, t, 0)
    w = np.ones(c) if weight is None else _f(weight)
    picked = np.take_along_axis(x, tt[:, None], axis=1)[:, 0]
    wt = np.where(keep, w[tt], 0.0)
    return _reduce(-picked * wt, wt.sum(), reduction)


def nll_loss_vjp(g, x, target, weight=None, ignore_index=-100, reduction="mean"):
    x, target, unbatched = _unbatched(x, target)
    if unbatched:
        g1 = np.asarray(g)[None] if reduction == "none" else g
        return nll_loss_vjp(g1, x, target, weight, ignore_index, reduction)[0][0], None, None
    c = x.shape[1]
    t = np.asarray(target)
    keep = t != ignore_index
    tt = np.where(keep, t, 0)
    w = np.ones(c) if weight is None else _f(weight)
    wt = np.where(keep, w[tt], 0.0)
    gs = _g_per_sample(g, t.shape, wt.sum(), reduction)
    onehot = np.arange(c).reshape((1, c) + (1,) * (x.ndim - 2)) == tt[:, None]
    return -(onehot * (wt * gs)[:, None]), None, None
