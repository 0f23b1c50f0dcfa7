"""Activations with gradients: gelu (exact / tanh), silu, leaky_relu, elu, selu, softplus, erf.

Forwards are NumPy / CuPy expressions, except erf, GELU (both forms) and SiLU, which run in
our fused kernels on the CPU (csrc/cpu/activation.h); backwards are written in Tensor ops, so
second-order gradients work (the fused backwards run when no graph is being recorded). Values
at kinks follow torch: leaky_relu and elu take the negative branch's slope at x == 0.
relu, sigmoid and tanh live in ops/elementwise.py and are re-exported here.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from ..autograd import Function, is_grad_enabled
from ..backend import for_array
from ..tensor import Tensor
from .elementwise import exp, relu, sigmoid, tanh, where

__all__ = [
    "elu",
    "erf",
    "gelu",
    "leaky_relu",
    "relu",
    "selu",
    "sigmoid",
    "silu",
    "softplus",
    "tanh",
]

_SQRT_2 = math.sqrt(2.0)
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


def _check(op: str, x) -> None:
    if not isinstance(x, Tensor):
        raise TypeError(f"[{op}] input must be a Tensor, got {type(x).__name__}")
    if x.dtype.kind != "f":
        raise TypeError(f"[{op}] input must be a floating-point tensor but is {x.dtype}")


def _scalar(op: str, name: str, v) -> float:
    if not isinstance(v, numbers.Real) or isinstance(v, bool):
        raise TypeError(f"[{op}] {name} must be a number, got {type(v).__name__}")
    return float(v)


def _arr(x: Tensor, v):
    """v as an array of x's dtype (so NumPy never promotes float32 to float64)."""
    return x._xp.asarray(v, dtype=x.dtype)


def _mask(x: Tensor, cond) -> Tensor:
    return Tensor(cond)


def _inplace(op: str, input: Tensor, out: Tensor) -> Tensor:
    """torch's inplace=True: write the result into input (outside autograd only)."""
    if input.requires_grad:
        raise RuntimeError(
            f"[{op}] inplace=True on a tensor that requires grad is not supported; "
            "use inplace=False"
        )
    input.data[...] = out.data
    return input


# ----------------------------------------------------------------------------- erf


def _erf_array(a):
    if isinstance(a, np.generic):  # 0-d arithmetic gives NumPy scalars
        a = np.asarray(a)
    fn = getattr(for_array(a), "erf", None)
    if fn is None:
        raise NotImplementedError("[erf] no kernel for this device")
    return fn(a).reshape(a.shape)


class Erf(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return Tensor(_erf_array(x.data))

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return (g * (2.0 / math.sqrt(math.pi)) * exp(-(x * x)),)


def erf(input: Tensor) -> Tensor:
    """The error function, elementwise (torch.erf)."""
    _check("erf", input)
    return Erf.apply(input)


# ----------------------------------------------------------------------------- gelu


def _fused(d, name: str):
    """The backend's fused elementwise kernel `name` for array d, or None (then the composed
    NumPy / CuPy form runs)."""
    return getattr(for_array(d), name, None)


class Gelu(Function):
    @staticmethod
    def forward(ctx, x, approximate):
        ctx.save_for_backward(x)
        ctx.approximate = approximate
        d = x.data
        fused = _fused(d, "gelu_tanh" if approximate == "tanh" else "gelu")  # one pass in C++
        if fused is not None:
            return Tensor(fused(d).reshape(d.shape))
        if approximate == "tanh":
            u = _arr(x, _SQRT_2_OVER_PI) * (d + _arr(x, 0.044715) * d * d * d)
            y = _arr(x, 0.5) * d * (_arr(x, 1.0) + x._xp.tanh(u))
        else:
            y = _arr(x, 0.5) * d * (_arr(x, 1.0) + _erf_array(d / _arr(x, _SQRT_2)))
        return Tensor(y.astype(x.dtype, copy=False))

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        tanh_form = ctx.approximate == "tanh"
        fused = _fused(x.data, "gelu_tanh_backward" if tanh_form else "gelu_backward")
        if fused is not None and not is_grad_enabled():  # create_graph: the composed form
            return Tensor(fused(x.data, g.data).reshape(x.shape)), None
        if tanh_form:
            u = _SQRT_2_OVER_PI * (x + 0.044715 * x * x * x)
            t = tanh(u)
            du = _SQRT_2_OVER_PI * (1.0 + 3 * 0.044715 * x * x)
            d = 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * du
        else:
            cdf = 0.5 * (1.0 + erf(x * (1.0 / _SQRT_2)))
            d = cdf + x * (_INV_SQRT_2PI * exp(-0.5 * x * x))
        return g * d, None


def gelu(input: Tensor, approximate: str = "none") -> Tensor:
    """x * Phi(x) (approximate='none') or its tanh approximation (torch.nn.functional.gelu)."""
    _check("gelu", input)
    if approximate not in ("none", "tanh"):
        raise ValueError(f"[gelu] approximate must be 'none' or 'tanh' but is {approximate!r}")
    return Gelu.apply(input, approximate)


# ----------------------------------------------------------------------------- silu


class Silu(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        fused = _fused(x.data, "silu")
        if fused is not None:
            return Tensor(fused(x.data).reshape(x.shape))
        return Tensor(x.data * sigmoid(x).data)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        fused = _fused(x.data, "silu_backward")
        if fused is not None and not is_grad_enabled():  # create_graph: the composed form
            return (Tensor(fused(x.data, g.data).reshape(x.shape)),)
        s = sigmoid(x)
        return (g * (s * (1.0 + x * (1.0 - s))),)


def silu(input: Tensor, inplace: bool = False) -> Tensor:
    """x * sigmoid(x) (torch.nn.functional.silu)."""
    _check("silu", input)
    out = Silu.apply(input)
    return _inplace("silu", input, out) if inplace else out


# ----------------------------------------------------------------------------- leaky_relu


class LeakyRelu(Function):
    @staticmethod
    def forward(ctx, x, slope):
        ctx.save_for_backward(x)
        ctx.slope = slope
        d = x.data
        return Tensor(x._xp.where(d > 0, d, d * _arr(x, slope)))

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        pos = x.data > 0
        return where(_mask(x, pos), g, g * ctx.slope), None


def leaky_relu(input: Tensor, negative_slope: float = 0.01, inplace: bool = False) -> Tensor:
    """x if x > 0 else negative_slope * x (torch.nn.functional.leaky_relu)."""
    _check("leaky_relu", input)
    slope = _scalar("leaky_relu", "negative_slope", negative_slope)
    out = LeakyRelu.apply(input, slope)
    return _inplace("leaky_relu", input, out) if inplace else out


# ----------------------------------------------------------------------------- elu / selu


class Elu(Function):
    """scale * (x if x > 0 else alpha * (exp(x) - 1))."""

    @staticmethod
    def forward(ctx, x, alpha, scale):
        ctx.save_for_backward(x)
        ctx.alpha, ctx.scale = alpha, scale
        d = x.data
        xp = x._xp
        neg = _arr(x, alpha) * xp.expm1(xp.minimum(d, _arr(x, 0.0)))
        return Tensor(_arr(x, scale) * xp.where(d > 0, d, neg))

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        pos = x.data > 0
        zero = Tensor(x._xp.zeros((), dtype=x.dtype))
        neg = (ctx.alpha * ctx.scale) * exp(where(_mask(x, pos), zero, x))
        return where(_mask(x, pos), g * ctx.scale, g * neg), None, None


def elu(input: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    """x if x > 0 else alpha * (exp(x) - 1) (torch.nn.functional.elu)."""
    _check("elu", input)
    out = Elu.apply(input, _scalar("elu", "alpha", alpha), 1.0)
    return _inplace("elu", input, out) if inplace else out


def selu(input: Tensor, inplace: bool = False) -> Tensor:
    """scale * elu(x, alpha) with torch's constants (torch.nn.functional.selu)."""
    _check("selu", input)
    out = Elu.apply(input, _SELU_ALPHA, _SELU_SCALE)
    return _inplace("selu", input, out) if inplace else out


# ----------------------------------------------------------------------------- softplus


class Softplus(Function):
    """log(1 + exp(beta x)) / beta, and x where beta x > threshold."""

    @staticmethod
    def forward(ctx, x, beta, threshold):
        ctx.save_for_backward(x)
        ctx.beta, ctx.threshold = beta, threshold
        d = x.data
        xp = x._xp
        bx = d * _arr(x, beta)
        sp = xp.logaddexp(_arr(x, 0.0), bx) / _arr(x, beta)
        return Tensor(xp.where(bx > _arr(x, threshold), d, sp).astype(x.dtype, copy=False))

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        lin = (x.data * x._xp.asarray(ctx.beta, dtype=x.dtype)) > ctx.threshold
        return where(_mask(x, lin), g, g * sigmoid(x * ctx.beta)), None, None


def softplus(input: Tensor, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    """log(1 + exp(beta x)) / beta, linear where beta x > threshold
    (torch.nn.functional.softplus)."""
    _check("softplus", input)
    beta = _scalar("softplus", "beta", beta)
    threshold = _scalar("softplus", "threshold", threshold)
    if beta == 0:
        raise ValueError("[softplus] beta must be non-zero")
    return Softplus.apply(input, beta, threshold)
