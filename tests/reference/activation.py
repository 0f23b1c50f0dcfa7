"""Reference for the activations: forward and vector-Jacobian product, float64, from the
formulas (torch's definitions; at a kink x == 0 leaky_relu and elu take the negative branch)."""

from __future__ import annotations

import math

import numpy as np

_erf = np.vectorize(math.erf, otypes=[np.float64])
SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946


def _f(x):
    return np.asarray(x, dtype=np.float64)


def _sigmoid(x):
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def erf(x):
    return _erf(_f(x))


def erf_vjp(g, x):
    x = _f(x)
    return (_f(g) * 2.0 / math.sqrt(math.pi) * np.exp(-x * x),)


def gelu(x, approximate="none"):
    x = _f(x)
    if approximate == "tanh":
        return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))
    return 0.5 * x * (1 + _erf(x / math.sqrt(2)))


def gelu_vjp(g, x, approximate="none"):
    x = _f(x)
    if approximate == "tanh":
        k = math.sqrt(2 / math.pi)
        t = np.tanh(k * (x + 0.044715 * x**3))
        d = 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * k * (1 + 3 * 0.044715 * x * x)
    else:
        d = 0.5 * (1 + _erf(x / math.sqrt(2))) + x * np.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)
    return (_f(g) * d,)


def silu(x):
    x = _f(x)
    return x * _sigmoid(x)


def silu_vjp(g, x):
    x = _f(x)
    s = _sigmoid(x)
    return (_f(g) * (s + x * s * (1 - s)),)


def leaky_relu(x, negative_slope=0.01):
    x = _f(x)
    return np.where(x > 0, x, negative_slope * x)


def leaky_relu_vjp(g, x, negative_slope=0.01):
    return (_f(g) * np.where(_f(x) > 0, 1.0, negative_slope),)


def elu(x, alpha=1.0):
    x = _f(x)
    return np.where(x > 0, x, alpha * (np.exp(np.minimum(x, 0)) - 1))


def elu_vjp(g, x, alpha=1.0):
    x = _f(x)
    return (_f(g) * np.where(x > 0, 1.0, alpha * np.exp(np.minimum(x, 0))),)


def selu(x):
    return SELU_SCALE * elu(x, SELU_ALPHA)


def selu_vjp(g, x):
    return (SELU_SCALE * elu_vjp(g, x, SELU_ALPHA)[0],)


def softplus(x, beta=1.0, threshold=20.0):
    x = _f(x)
    bx = beta * x
    return np.where(bx > threshold, x, np.log1p(np.exp(np.minimum(bx, threshold))) / beta)


def softplus_vjp(g, x, beta=1.0, threshold=20.0):
    x = _f(x)
    bx = beta * x
    return (_f(g) * np.where(bx > threshold, 1.0, _sigmoid(np.minimum(bx, threshold))),)
