"""Elementwise ops with NumPy broadcasting; backward written in Tensor ops (twice differentiable).

Contract: binary ops take two tensors of one dtype and device, or a tensor and a Python
scalar (which takes the tensor's dtype). Gradients of broadcast inputs are summed back to
the input's shape.
"""

from __future__ import annotations

import numbers

import numpy as np

from .. import _dtype
from .._checks import allocating, check_numel
from ..autograd import Function
from ..tensor import Tensor, _move

# ----------------------------------------------------------------------------- helpers


def _t(x, like: Tensor, op: str) -> Tensor:
    """x as a tensor matching like's dtype and device (Python scalars are converted)."""
    if isinstance(x, Tensor):
        if x.device != like.device:
            raise RuntimeError(
                f"[{op}] expected all tensors on one device, got {like.device} and {x.device}"
            )
        if x.dtype != like.dtype:
            raise TypeError(
                f"[{op}] dtypes differ: {like.dtype} and {x.dtype}; cast one explicitly "
                "with .to(dtype)"
            )
        return x
    if isinstance(x, (bool, np.bool_)) or isinstance(x, (numbers.Number, np.generic)):
        return Tensor(like._xp.asarray(x, dtype=like.dtype))
    if isinstance(x, np.ndarray):
        return _t(Tensor(x), like, op)
    raise TypeError(f"[{op}] unsupported operand type {type(x).__name__}")


def _pair(a, b, op: str):
    """Two operands as tensors of one dtype/device. An integer tensor meeting a Python float
    is promoted to the default float dtype, as torch does."""
    if not isinstance(a, Tensor):
        if not isinstance(b, Tensor):
            raise TypeError(f"[{op}] needs at least one Tensor")
        b_, a_ = _pair(b, a, op)
        return a_, b_
    if a.dtype.kind in "iub" and isinstance(b, (float, np.floating)) and not isinstance(b, Tensor):
        a = cast(a, _dtype.get_default_dtype())
    b = _t(b, a, op)
    if a.shape != b.shape:
        try:
            out_shape = np.broadcast_shapes(a.shape, b.shape)
        except ValueError:
            raise ValueError(
                f"[{op}] shapes {tuple(a.shape)} and {tuple(b.shape)} cannot be broadcast together"
            ) from None
        check_numel(op, out_shape, a.dtype)
    return a, b


def _check_tensor(x, op: str) -> None:
    if not isinstance(x, Tensor):
        raise TypeError(f"[{op}] expects a Tensor, got {type(x).__name__}")


def _check_float(x: Tensor, op: str) -> None:
    _check_tensor(x, op)
    if not x.is_floating_point():
        raise TypeError(f"[{op}] expects a floating-point tensor, got {x.dtype}")


def sum_to(g: Tensor, shape: tuple) -> Tensor:
    """Sum g over the dims that broadcasting added or expanded, so that it has shape."""
    shape = tuple(shape)
    if tuple(g.shape) == shape:
        return g
    lead = g.ndim - len(shape)
    dims = tuple(range(lead)) + tuple(
        lead + i for i, s in enumerate(shape) if s == 1 and g.shape[lead + i] != 1
    )
    out = g.sum(dim=dims, keepdim=True) if dims else g
    if lead:
        out = out.reshape(shape)
    return out.reshape(shape) if tuple(out.shape) != shape else out


def _mask(cond, like: Tensor) -> Tensor:
    """A non-differentiable 0/1 tensor of like's dtype from a boolean array."""
    return Tensor(cond.astype(like.dtype))


# ----------------------------------------------------------------------------- binary


class Add(Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.shapes = (a.shape, b.shape)
        return Tensor(a.data + b.data)

    @staticmethod
    def backward(ctx, g):
        sa, sb = ctx.shapes
        return sum_to(g, sa), sum_to(g, sb)


class Sub(Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.shapes = (a.shape, b.shape)
        return Tensor(a.data - b.data)

    @staticmethod
    def backward(ctx, g):
        sa, sb = ctx.shapes
        return sum_to(g, sa), sum_to(-g, sb)


class Mul(Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return Tensor(a.data * b.data)

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved_tensors
        ga = sum_to(g * b, a.shape) if ctx.needs_input_grad[0] else None
        gb = sum_to(g * a, b.shape) if ctx.needs_input_grad[1] else None
        return ga, gb


class Div(Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return Tensor(a.data / b.data)

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved_tensors
        ga = sum_to(g / b, a.shape) if ctx.needs_input_grad[0] else None
        gb = sum_to(-g * a / (b * b), b.shape) if ctx.needs_input_grad[1] else None
        return ga, gb


class Pow(Function):
    """a ** b for two tensors (b may be a scalar tensor)."""

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return Tensor(a._xp.power(a.data, b.data))

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved_tensors
        ga = gb = None
        if ctx.needs_input_grad[0]:
            ga = sum_to(g * b * a ** (b - 1), a.shape)
        if ctx.needs_input_grad[1]:
            # d/db a^b = a^b log a; where a == 0 the limit (b > 0) is 0.
            safe = where(a == 0, ones_like_t(a), a)
            gb = sum_to(g * a**b * log(safe), b.shape)
        return ga, gb


class PowScalar(Function):
    """a ** p for a Python number p."""

    @staticmethod
    def forward(ctx, a, p):
        ctx.save_for_backward(a)
        ctx.p = p
        return Tensor(a._xp.power(a.data, a._xp.asarray(p, dtype=a.dtype)))

    @staticmethod
    def backward(ctx, g):
        (a,) = ctx.saved_tensors
        p = ctx.p
        if p == 0:
            return g * 0.0, None
        return g * (p * a ** (p - 1)), None


def ones_like_t(x: Tensor) -> Tensor:
    return Tensor(x._xp.ones_like(x.data))


def add(a, b, alpha=1) -> Tensor:
    a, b = _pair(a, b, "add")
    if alpha != 1:
        b = mul(b, alpha)
    with allocating("add"):
        return Add.apply(a, b)


def sub(a, b, alpha=1) -> Tensor:
    a, b = _pair(a, b, "sub")
    if alpha != 1:
        b = mul(b, alpha)
    with allocating("sub"):
        return Sub.apply(a, b)


def mul(a, b) -> Tensor:
    a, b = _pair(a, b, "mul")
    with allocating("mul"):
        return Mul.apply(a, b)


def div(a, b) -> Tensor:
    a, b = _pair(a, b, "div")
    if not a.is_floating_point():
        a, b = cast(a, _dtype.get_default_dtype()), cast(b, _dtype.get_default_dtype())
    with allocating("div"):
        return Div.apply(a, b)


def pow(a, b) -> Tensor:  # noqa: A001
    if (
        isinstance(a, Tensor)
        and isinstance(b, (numbers.Number, np.generic))
        and not isinstance(b, bool)
    ):
        if a.dtype.kind in "iu" and isinstance(b, (float, np.floating)):
            a = cast(a, _dtype.get_default_dtype())
        return PowScalar.apply(a, b)
    a, b = _pair(a, b, "pow")
    return Pow.apply(a, b)


# ----------------------------------------------------------------------------- unary


def _unary(name, fwd, bwd, float_only=True):
    """Make a Function class for y = fwd(xp, x) with dy/dx * g = bwd(x, g) in Tensor ops."""

    def forward(ctx, x):
        _check_tensor(x, name)
        if float_only:
            _check_float(x, name)
        check_numel(name, x.shape, x.dtype)  # a broadcast view may be too large to compute
        ctx.save_for_backward(x)
        with allocating(name):
            return Tensor(fwd(x._xp, x.data))

    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return (bwd(x, g),)

    cls = type(
        name.capitalize(),
        (Function,),
        {
            "forward": staticmethod(forward),
            "backward": staticmethod(backward),
        },
    )
    return cls


Neg = _unary("neg", lambda xp, x: -x, lambda x, g: -g, float_only=False)
Abs = _unary("abs", lambda xp, x: xp.abs(x), lambda x, g: g * sign(x), float_only=False)
Exp = _unary("exp", lambda xp, x: xp.exp(x), lambda x, g: g * exp(x))
Log = _unary("log", lambda xp, x: xp.log(x), lambda x, g: g / x)
Sqrt = _unary("sqrt", lambda xp, x: xp.sqrt(x), lambda x, g: g / (2 * sqrt(x)))
Sin = _unary("sin", lambda xp, x: xp.sin(x), lambda x, g: g * cos(x))
Cos = _unary("cos", lambda xp, x: xp.cos(x), lambda x, g: -g * sin(x))
Tanh = _unary("tanh", lambda xp, x: xp.tanh(x), lambda x, g: g * (1 - tanh(x) ** 2))
Relu = _unary(
    "relu",
    lambda xp, x: xp.maximum(x, 0),
    lambda x, g: g * _mask(x.data > 0, x),
    float_only=False,
)


def _sigmoid(xp, x):
    # exp of a non-positive number only: no overflow for large |x|.
    e = xp.exp(-xp.abs(x))
    return xp.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype, copy=False)


def _sigmoid_grad(x, g):
    s = sigmoid(x)
    return g * s * (1 - s)


Sigmoid = _unary("sigmoid", _sigmoid, _sigmoid_grad)


def neg(x: Tensor) -> Tensor:
    return Neg.apply(x)


def abs(x: Tensor) -> Tensor:  # noqa: A001
    return Abs.apply(x)


def exp(x: Tensor) -> Tensor:
    return Exp.apply(x)


def log(x: Tensor) -> Tensor:
    return Log.apply(x)


def sqrt(x: Tensor) -> Tensor:
    return Sqrt.apply(x)


def sin(x: Tensor) -> Tensor:
    return Sin.apply(x)


def cos(x: Tensor) -> Tensor:
    return Cos.apply(x)


def tanh(x: Tensor) -> Tensor:
    return Tanh.apply(x)


def sigmoid(x: Tensor) -> Tensor:
    return Sigmoid.apply(x)


def relu(x: Tensor) -> Tensor:
    return Relu.apply(x)


def sign(x: Tensor) -> Tensor:
    """Sign of x; not differentiable (its derivative is zero almost everywhere)."""
    _check_tensor(x, "sign")
    return Tensor(x._xp.sign(x.data))


class Clamp(Function):
    @staticmethod
    def forward(ctx, x, lo, hi):
        ctx.save_for_backward(x)
        ctx.lo, ctx.hi = lo, hi
        return Tensor(x._xp.clip(x.data, lo, hi).astype(x.dtype, copy=False))

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        d = x.data
        keep = d == d  # all True (False for NaN)
        if ctx.lo is not None:
            keep &= d >= ctx.lo
        if ctx.hi is not None:
            keep &= d <= ctx.hi
        return g * _mask(keep, x), None, None


def clamp(x: Tensor, min=None, max=None) -> Tensor:  # noqa: A002
    """Limit x to [min, max]; the gradient passes where min <= x <= max (as torch)."""
    _check_tensor(x, "clamp")
    if min is None and max is None:
        raise ValueError("[clamp] at least one of min and max must be given")
    if isinstance(min, Tensor) or isinstance(max, Tensor):
        for bound in (min, max):  # validate here so that errors name clamp, not maximum
            if bound is not None:
                _pair(x, bound, "clamp")
        out = x
        if min is not None:
            out = maximum(out, min)
        if max is not None:
            out = minimum(out, max)
        return out
    return Clamp.apply(x, min, max)


clip = clamp


class Maximum(Function):
    """Elementwise max; at ties the gradient is split evenly, as torch.maximum."""

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return Tensor(a._xp.maximum(a.data, b.data))

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved_tensors
        w = _mask(a.data > b.data, a) + 0.5 * _mask(a.data == b.data, a)
        return sum_to(g * w, a.shape), sum_to(g * (1 - w), b.shape)


class Minimum(Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return Tensor(a._xp.minimum(a.data, b.data))

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved_tensors
        w = _mask(a.data < b.data, a) + 0.5 * _mask(a.data == b.data, a)
        return sum_to(g * w, a.shape), sum_to(g * (1 - w), b.shape)


def maximum(a, b) -> Tensor:
    a, b = _pair(a, b, "maximum")
    return Maximum.apply(a, b)


def minimum(a, b) -> Tensor:
    a, b = _pair(a, b, "minimum")
    return Minimum.apply(a, b)


class Where(Function):
    @staticmethod
    def forward(ctx, cond, a, b):
        ctx.cond = cond
        ctx.shapes = (a.shape, b.shape)
        return Tensor(a._xp.where(cond, a.data, b.data))

    @staticmethod
    def backward(ctx, g):
        sa, sb = ctx.shapes
        c = ctx.cond
        zero = Tensor(g._xp.zeros((), dtype=g.dtype))
        ga = sum_to(Where.apply(c, g, zero), sa)
        gb = sum_to(Where.apply(c, zero, g), sb)
        return None, ga, gb


def where(cond, a, b) -> Tensor:
    """Elements of a where cond is true, else of b (cond is not differentiated)."""
    c = cond.data if isinstance(cond, Tensor) else np.asarray(cond)
    if c.dtype != np.bool_:
        raise TypeError(f"[where] condition must be a bool tensor, got {c.dtype}")
    a, b = _pair(a, b, "where")
    try:
        np.broadcast_shapes(c.shape, a.shape)
    except ValueError:
        raise ValueError(
            f"[where] condition shape {tuple(c.shape)} cannot be broadcast with {tuple(a.shape)}"
        ) from None
    if isinstance(cond, Tensor) and cond.device != a.device:
        raise RuntimeError(f"[where] condition is on {cond.device} but x on {a.device}")
    return Where.apply(c, a, b)


# ----------------------------------------------------------------------------- copies


class Cast(Function):
    @staticmethod
    def forward(ctx, x, dtype):
        ctx.src = x.dtype
        return Tensor(x.data.astype(dtype))

    @staticmethod
    def backward(ctx, g):
        return cast(g, ctx.src), None


def cast(x: Tensor, dtype) -> Tensor:
    """x converted to dtype; differentiable between floating dtypes."""
    _check_tensor(x, "cast")
    try:
        dtype = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"[cast] {dtype!r} is not a dtype") from None
    if dtype.kind not in "fiub":
        raise TypeError(f"[cast] unsupported dtype {dtype}: use a float, integer or bool dtype")
    if x.dtype == dtype:
        return x
    return Cast.apply(x, dtype)


class ToDevice(Function):
    @staticmethod
    def forward(ctx, x, device):
        ctx.src = x.device
        return Tensor(_move(x.data, device))

    @staticmethod
    def backward(ctx, g):
        return to_device(g, ctx.src), None


def to_device(x: Tensor, device: str) -> Tensor:
    if x.device == device:
        return x
    return ToDevice.apply(x, device)


class Clone(Function):
    @staticmethod
    def forward(ctx, x):
        return Tensor(x._xp.array(x.data, copy=True, order="C"))

    @staticmethod
    def backward(ctx, g):
        return (g,)


def clone(x: Tensor) -> Tensor:
    """A C-contiguous copy of x, differentiable."""
    _check_tensor(x, "clone")
    check_numel("clone", x.shape, x.dtype)  # x may be a broadcast view
    with allocating("clone"):
        return Clone.apply(x)


# ----------------------------------------------------------------------------- comparisons


def _compare(name, fn):
    def op(a, b) -> Tensor:
        a, b = _pair(a, b, name)
        return Tensor(fn(a.data, b.data))

    op.__name__ = name
    op.__doc__ = f"Elementwise {name}; returns a bool tensor without gradient."
    return op


eq = _compare("eq", lambda a, b: a == b)
ne = _compare("ne", lambda a, b: a != b)
lt = _compare("lt", lambda a, b: a < b)
le = _compare("le", lambda a, b: a <= b)
gt = _compare("gt", lambda a, b: a > b)
ge = _compare("ge", lambda a, b: a >= b)


def logical_not(x: Tensor) -> Tensor:
    _check_tensor(x, "logical_not")
    return Tensor(x._xp.logical_not(x.data))


def isnan(x: Tensor) -> Tensor:
    _check_tensor(x, "isnan")
    return Tensor(x._xp.isnan(x.data))


def isfinite(x: Tensor) -> Tensor:
    _check_tensor(x, "isfinite")
    return Tensor(x._xp.isfinite(x.data))
