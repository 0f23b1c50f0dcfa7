"""Reference for elementwise ops: forward and vector-Jacobian product, float64.

Each ``f`` has ``f_vjp(g, *inputs) -> tuple`` (one gradient per input, None for a
non-differentiable input), derived from the derivative formula; broadcasting is
undone by summing (``unbroadcast``). Python scalars are constants (gradient None).
"""

from __future__ import annotations

import numpy as np

from ._util import unbroadcast


def _f(x):
    return np.asarray(x, dtype=np.float64)


def _is_arr(x):
    return isinstance(x, np.ndarray)


def _ub(g, x):
    """Gradient w.r.t. an array input (summed over broadcasting), None for scalars."""
    return unbroadcast(g, x.shape) if _is_arr(x) else None


# --------------------------------------------------------------------- binary


def add(x, y):
    return _f(x) + _f(y)


def add_vjp(g, x, y):  # d(x+y)/dx = 1, d/dy = 1
    return _ub(g, x), _ub(g, y)


def sub(x, y):
    return _f(x) - _f(y)


def sub_vjp(g, x, y):  # d/dx = 1, d/dy = -1
    return _ub(g, x), _ub(-_f(g), y)


def mul(x, y):
    return _f(x) * _f(y)


def mul_vjp(g, x, y):  # d/dx = y, d/dy = x
    return _ub(g * _f(y), x), _ub(g * _f(x), y)


def div(x, y):
    return _f(x) / _f(y)


def div_vjp(g, x, y):  # d/dx = 1/y, d/dy = -x/y^2
    return _ub(g / _f(y), x), _ub(-g * _f(x) / _f(y) ** 2, y)


def pow(x, y):  # noqa: A001 - the op's name
    return _f(x) ** _f(y)


def pow_vjp(g, x, y):  # d/dx = y x^(y-1), d/dy = x^y ln x
    xf, yf = _f(x), _f(y)
    gx = _ub(g * yf * xf ** (yf - 1.0), x)
    gy = _ub(g * xf**yf * np.log(xf), y) if _is_arr(y) else None
    return gx, gy


def maximum(x, y):
    return np.maximum(_f(x), _f(y))


def maximum_vjp(g, x, y):
    """Gradient to the larger input; a tie splits it half and half (as torch.maximum)."""
    xf, yf = np.broadcast_arrays(_f(x), _f(y))
    wx = np.where(xf > yf, 1.0, np.where(xf == yf, 0.5, 0.0))
    return _ub(g * wx, x), _ub(g * (1.0 - wx), y)


def minimum(x, y):
    return np.minimum(_f(x), _f(y))


def minimum_vjp(g, x, y):
    xf, yf = np.broadcast_arrays(_f(x), _f(y))
    wx = np.where(xf < yf, 1.0, np.where(xf == yf, 0.5, 0.0))
    return _ub(g * wx, x), _ub(g * (1.0 - wx), y)


def where(cond, x, y):
    return np.where(np.asarray(cond, dtype=bool), _f(x), _f(y))


def where_vjp(g, cond, x, y):  # gradient goes to the selected branch
    c = np.broadcast_to(np.asarray(cond, dtype=bool), np.shape(g))
    return None, _ub(np.where(c, g, 0.0), x), _ub(np.where(c, 0.0, g), y)


# ---------------------------------------------------------------------- unary


def neg(x):
    return -_f(x)


def neg_vjp(g, x):
    return (-_f(g),)


def abs(x):  # noqa: A001
    return np.abs(_f(x))


def abs_vjp(g, x):  # d|x|/dx = sign(x) (0 at 0, as torch)
    return (g * np.sign(_f(x)),)


def exp(x):
    return np.exp(_f(x))


def exp_vjp(g, x):  # d e^x = e^x
    return (g * np.exp(_f(x)),)


def log(x):
    return np.log(_f(x))


def log_vjp(g, x):  # d ln x = 1/x
    return (g / _f(x),)


def sqrt(x):
    return np.sqrt(_f(x))


def sqrt_vjp(g, x):  # d sqrt x = 1 / (2 sqrt x)
    return (g / (2.0 * np.sqrt(_f(x))),)


def sin(x):
    return np.sin(_f(x))


def sin_vjp(g, x):
    return (g * np.cos(_f(x)),)


def cos(x):
    return np.cos(_f(x))


def cos_vjp(g, x):
    return (-g * np.sin(_f(x)),)


def tanh(x):
    return np.tanh(_f(x))


def tanh_vjp(g, x):  # d tanh = 1 - tanh^2
    t = np.tanh(_f(x))
    return (g * (1.0 - t * t),)


def sigmoid(x):
    x = _f(x)
    # 1 / (1 + e^-x), evaluated without overflow for large |x|
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def sigmoid_vjp(g, x):  # d s = s (1 - s)
    s = sigmoid(x)
    return (g * s * (1.0 - s),)


def relu(x):
    x = _f(x)
    return np.where(x > 0, x, 0.0)


def relu_vjp(g, x):  # 1 for x > 0, 0 otherwise (0 at 0, as torch)
    return (np.where(_f(x) > 0, g, 0.0),)


def clamp(x, min=None, max=None):  # noqa: A002
    x = _f(x)
    if min is not None:
        x = np.where(x < min, min, x)
    if max is not None:
        x = np.where(x > max, max, x)
    return x


def clamp_vjp(g, x, min=None, max=None):  # noqa: A002
    """1 where min <= x <= max (bounds inclusive, as torch), 0 outside."""
    x = _f(x)
    inside = np.ones_like(x, dtype=bool)
    if min is not None:
        inside &= x >= min
    if max is not None:
        inside &= x <= max
    return (np.where(inside, g, 0.0),)


# ------------------------------------------------------------------ compare


def eq(x, y):
    return _f(x) == _f(y)


def ne(x, y):
    return _f(x) != _f(y)


def lt(x, y):
    return _f(x) < _f(y)


def le(x, y):
    return _f(x) <= _f(y)


def gt(x, y):
    return _f(x) > _f(y)


def ge(x, y):
    return _f(x) >= _f(y)
