"""Differentiable tensor ops, one module per family; this module also gives Tensor its methods."""

from __future__ import annotations

import numpy as np

from .. import _C
from ..autograd import is_grad_enabled
from ..tensor import Tensor
from .elementwise import (
    abs,
    add,
    cast,
    clamp,
    clip,
    clone,
    cos,
    div,
    eq,
    exp,
    ge,
    gt,
    isfinite,
    isnan,
    le,
    log,
    logical_not,
    lt,
    maximum,
    minimum,
    mul,
    ne,
    neg,
    pow,
    relu,
    sigmoid,
    sign,
    sin,
    sqrt,
    sub,
    tanh,
    where,
)
from .indexing import index, index_select
from .matmul import bmm, matmul, mm
from .reduce import amax, amin, argmax, argmin, gather, max, mean, min, std, sum, var
from .shape import (
    broadcast_to,
    cat,
    chunk,
    concat,
    expand,
    flatten,
    pad,
    permute,
    reshape,
    split,
    squeeze,
    stack,
    transpose,
    unflatten,
    unsqueeze,
    view,
)
from .shape import t as _shape_t

__all__ = [
    "abs",
    "add",
    "amax",
    "amin",
    "argmax",
    "argmin",
    "bmm",
    "broadcast_to",
    "cast",
    "cat",
    "chunk",
    "clamp",
    "clip",
    "clone",
    "concat",
    "cos",
    "div",
    "eq",
    "exp",
    "expand",
    "flatten",
    "gather",
    "ge",
    "gt",
    "index",
    "index_select",
    "isfinite",
    "isnan",
    "le",
    "log",
    "logical_not",
    "lt",
    "matmul",
    "max",
    "maximum",
    "mean",
    "min",
    "minimum",
    "mm",
    "mul",
    "ne",
    "neg",
    "pad",
    "permute",
    "pow",
    "relu",
    "reshape",
    "sigmoid",
    "sign",
    "sin",
    "split",
    "sqrt",
    "squeeze",
    "stack",
    "std",
    "sub",
    "sum",
    "tanh",
    "transpose",
    "unflatten",
    "unsqueeze",
    "var",
    "view",
    "where",
]


def _rev(fn):
    return lambda self, other: fn(other, self)


def _matmul_operator(s, o):
    """Tensor @: a lean path for 2-D CPU products that record no graph, else ops.matmul."""
    if type(o) is Tensor and not ((s.requires_grad or o.requires_grad) and is_grad_enabled()):
        a, b = s.data, o.data
        if type(a) is np.ndarray and type(b) is np.ndarray and a.ndim == 2 and b.ndim == 2:
            return Tensor(_C.matmul2d(a, b))
    return matmul(s, o)


def _bind() -> None:
    T = Tensor
    # operators
    T.__add__ = lambda s, o: add(s, o)
    T.__radd__ = lambda s, o: add(o, s)
    T.__sub__ = lambda s, o: sub(s, o)
    T.__rsub__ = lambda s, o: sub(o, s)
    T.__mul__ = lambda s, o: mul(s, o)
    T.__rmul__ = lambda s, o: mul(o, s)
    T.__truediv__ = lambda s, o: div(s, o)
    T.__rtruediv__ = lambda s, o: div(o, s)
    T.__pow__ = lambda s, o: pow(s, o)
    T.__rpow__ = lambda s, o: pow(o, s)
    T.__neg__ = lambda s: neg(s)
    T.__pos__ = lambda s: s
    T.__abs__ = lambda s: abs(s)
    T.__matmul__ = _matmul_operator
    T.__rmatmul__ = lambda s, o: matmul(o, s)
    T.__eq__ = lambda s, o: eq(s, o)
    T.__ne__ = lambda s, o: ne(s, o)
    T.__lt__ = lambda s, o: lt(s, o)
    T.__le__ = lambda s, o: le(s, o)
    T.__gt__ = lambda s, o: gt(s, o)
    T.__ge__ = lambda s, o: ge(s, o)
    T.__invert__ = lambda s: logical_not(s)
    T.__getitem__ = lambda s, k: index(s, k)
    T.__iter__ = lambda s: (s[i] for i in range(len(s)))
    # methods with the same name as the function
    for name in (
        "add",
        "sub",
        "mul",
        "div",
        "pow",
        "neg",
        "abs",
        "exp",
        "log",
        "sqrt",
        "sin",
        "cos",
        "tanh",
        "sigmoid",
        "relu",
        "sign",
        "clamp",
        "clip",
        "maximum",
        "minimum",
        "sum",
        "mean",
        "var",
        "std",
        "amax",
        "amin",
        "max",
        "min",
        "argmax",
        "argmin",
        "gather",
        "reshape",
        "view",
        "permute",
        "transpose",
        "expand",
        "squeeze",
        "unsqueeze",
        "flatten",
        "unflatten",
        "split",
        "chunk",
        "matmul",
        "eq",
        "ne",
        "lt",
        "le",
        "gt",
        "ge",
        "isnan",
        "isfinite",
        "logical_not",
        "index_select",
        "mm",
        "bmm",
    ):
        setattr(T, name, globals()[name])
    T.where = lambda s, cond, other: where(cond, s, other)
    T.subtract = T.sub
    T.multiply = T.mul
    T.divide = T.div
    T.expand_as = lambda s, o: expand(s, *o.shape)
    T.reshape_as = lambda s, o: reshape(s, *o.shape)
    T.view_as = T.reshape_as
    T.square = lambda s: mul(s, s)
    T.rsqrt = lambda s: div(1.0, sqrt(s))
    T.reciprocal = lambda s: div(1.0, s)
    T.t = _shape_t
    T.T = property(lambda s: permute(s, *reversed(range(s.ndim))))
    T.mT = property(lambda s: transpose(s, -2, -1))


_bind()
