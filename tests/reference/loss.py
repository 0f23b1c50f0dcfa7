"""Reference losses (float64) and their vector-Jacobian products, from the definitions.

Elementwise losses l(x, y) are reduced by 'none' (identity), 'sum' or 'mean' (sum / numel);
the VJP of the reduction broadcasts g (divided by numel for 'mean').
"""

from __future__ import annotations

import numpy as np

from ._util import unbroadcast


def _f(a):
    return np.asarray(a, np.float64)


def _reduce(l, reduction):
    if reduction == "sum":
        return l.sum()
    if reduction == "mean":
        return l.mean()
    return l


def _dred(g, shape, reduction):
    """dL/dl for each element, given the upstream gradient of the reduced loss."""
    n = int(np.prod(shape))
    g = _f(g)
    if reduction == "sum":
        return np.full(shape, float(g))
    if reduction == "mean":
        return np.full(shape, float(g) / n)
    return g


def mse(x, y, reduction="mean"):
    return _reduce((_f(x) - _f(y)) ** 2, reduction)


def mse_vjp(g, x, y, reduction="mean"):
    d = _dred(g, np.shape(x), reduction) * 2 * (_f(x) - _f(y))  # d/dx (x - y)^2 = 2 (x - y)
    return d, -d


def l1(x, y, reduction="mean"):
    return _reduce(np.abs(_f(x) - _f(y)), reduction)


def l1_vjp(g, x, y, reduction="mean"):
    d = _dred(g, np.shape(x), reduction) * np.sign(_f(x) - _f(y))
    return d, -d


def bce(x, y, w=None, reduction="mean"):
    """-w (y log x + (1 - y) log(1 - x)), each log clamped below at -100."""
    x, y = _f(x), _f(y)
    with np.errstate(divide="ignore"):
        l = -(y * np.maximum(np.log(x), -100) + (1 - y) * np.maximum(np.log(1 - x), -100))
    return _reduce(l * (1.0 if w is None else _f(w)), reduction)


def bce_vjp(g, x, y, w=None, reduction="mean"):
    x, y = _f(x), _f(y)
    d = _dred(g, x.shape, reduction) * (1.0 if w is None else _f(w))
    gx = d * (x - y) / (x * (1 - x))  # d/dx of -(y log x + (1-y) log(1-x))
    gy = d * (np.log(1 - x) - np.log(x))
    gw = (
        None
        if w is None
        else unbroadcast(_dred(g, x.shape, reduction) * bce(x, y, None, "none"), np.shape(w))
    )
    return (gx, gy) if w is None else (gx, gy, gw)


def _log_sigmoid(x):
    return -np.logaddexp(0.0, -x)


def bce_logits(x, y, w=None, pos_weight=None, reduction="mean"):
    """-w (p y log s(x) + (1 - y) log(1 - s(x))), s the logistic function, p = pos_weight."""
    x, y = _f(x), _f(y)
    p = 1.0 if pos_weight is None else _f(pos_weight)
    l = -(p * y * _log_sigmoid(x) + (1 - y) * _log_sigmoid(-x))
    return _reduce(l * (1.0 if w is None else _f(w)), reduction)


def bce_logits_vjp(g, x, y, w=None, pos_weight=None, reduction="mean"):
    x, y = _f(x), _f(y)
    p = 1.0 if pos_weight is None else _f(pos_weight)
    s = 1 / (1 + np.exp(-x))
    d = _dred(g, x.shape, reduction)
    wt = 1.0 if w is None else _f(w)
    # d/dx: -(p y (1 - s) - (1 - y) s);  d/dy: -(p log s(x) - log(1 - s(x)));  d/dp: -y log s(x)
    gx = d * wt * (-(p * y * (1 - s)) + (1 - y) * s)
    gy = d * wt * (-(p * _log_sigmoid(x)) + _log_sigmoid(-x))
    out = [gx, gy]
    if w is not None:
        out.append(unbroadcast(d * bce_logits(x, y, None, pos_weight, "none"), np.shape(w)))
    if pos_weight is not None:
        gp = d * wt * (-y * _log_sigmoid(x))
        out.append(unbroadcast(gp, np.shape(pos_weight)))
    return tuple(out)
