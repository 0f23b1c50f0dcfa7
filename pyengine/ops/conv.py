"""conv2d, conv_transpose2d and conv1d on one generalized convolution kernel.

Every op here is ``conv_general`` (csrc/cpu/conv.h, cuda/conv.cu) with different parameters:

- ``conv2d``: stride, pad_lo/pad_hi (asymmetric for ``padding='same'``), dilation, groups.
- ``conv_transpose2d``: input_dilation = stride, the kernel flipped and read in the
  transposed (in, out/groups, kh, kw) layout, pad_lo = dilation*(k-1) - padding and
  pad_hi = pad_lo + output_padding, stride 1.
- ``conv1d``: a height-1 conv2d.

Autograd: the forward, its grad-input and its grad-weight are three Functions whose backward
calls the other two (the three are slices of one bilinear form), so gradients of gradients
(``create_graph=True``) work to any order. The bias gradient is a fourth (a per-channel sum in
our kernel, linear in gy; its backward broadcasts).
"""

from __future__ import annotations

import numbers
from typing import Optional, Union

import numpy as np

from .._checks import allocating, check_numel
from ..autograd import Function
from ..backend import for_array
from ..tensor import Tensor

__all__ = ["conv1d", "conv2d", "conv_transpose2d", "conv_general"]

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


# ----------------------------------------------------------------------------- autograd


def _c(t: Tensor):
    return t._xp.ascontiguousarray(t.data)


class _ConvForward(Function):
    """y = conv_general(x, w) + b."""

    @staticmethod
    def forward(ctx, x, w, b, geo, op):
        ctx.save_for_backward(x, w)
        ctx.geo, ctx.op = geo, op
        be = for_array(x.data)
        return Tensor(be.conv_general(_c(x), _c(w), None if b is None else _c(b), geo, op))

    @staticmethod
    def backward(ctx, gy):
        x, w = ctx.saved_tensors
        need = ctx.needs_input_grad
        gx = _ConvGradInput.apply(gy, w, tuple(x.shape), ctx.geo, ctx.op) if need[0] else None
        gw = _ConvGradWeight.apply(x, gy, tuple(w.shape), ctx.geo, ctx.op) if need[1] else None
        gb = _ConvGradBias.apply(gy, ctx.op) if need[2] else None
        return gx, gw, gb, None, None


class _ConvGradBias(Function):
    """gb = gy summed over the batch and the positions (one value per channel), linear in gy."""

    @staticmethod
    def forward(ctx, gy, op):
        ctx.gy_shape = tuple(gy.shape)
        return Tensor(for_array(gy.data).conv_general_grad_bias(_c(gy), op=op))

    @staticmethod
    def backward(ctx, ggb):
        return ggb.reshape(1, -1, 1, 1).expand(*ctx.gy_shape), None


class _ConvGradInput(Function):
    """gx = d<gy, conv(x, w)>/dx, linear in gy and in w."""

    @staticmethod
    def forward(ctx, gy, w, x_shape, geo, op):
        ctx.save_for_backward(gy, w)
        ctx.geo, ctx.op = geo, op
        be = for_array(gy.data)
        return Tensor(be.conv_general_grad_input(_c(gy), _c(w), x_shape, geo, op))

    @staticmethod
    def backward(ctx, ggx):
        gy, w = ctx.saved_tensors
        need = ctx.needs_input_grad
        d_gy = _ConvForward.apply(ggx, w, None, ctx.geo, ctx.op) if need[0] else None
        d_w = _ConvGradWeight.apply(ggx, gy, tuple(w.shape), ctx.geo, ctx.op) if need[1] else None
        return d_gy, d_w, None, None, None


class _ConvGradWeight(Function):
    """gw = d<gy, conv(x, w)>/dw, linear in x and in gy."""

    @staticmethod
    def forward(ctx, x, gy, w_shape, geo, op):
        ctx.save_for_backward(x, gy)
        ctx.geo, ctx.op = geo, op
        be = for_array(x.data)
        return Tensor(be.conv_general_grad_weight(_c(x), _c(gy), w_shape, geo, op))

    @staticmethod
    def backward(ctx, ggw):
        x, gy = ctx.saved_tensors
        need = ctx.needs_input_grad
        d_x = _ConvGradInput.apply(gy, ggw, tuple(x.shape), ctx.geo, ctx.op) if need[0] else None
        d_gy = _ConvForward.apply(x, ggw, None, ctx.geo, ctx.op) if need[1] else None
        return d_x, d_gy, None, None, None


# ----------------------------------------------------------------------------- checks


def _is_int(v) -> bool:
    # type(v) is int first: the ABC check behind numbers.Integral costs ~0.5 us a call
    return type(v) is int or (isinstance(v, numbers.Integral) and not isinstance(v, bool))


def _tuple(v, n: int, name: str, op: str) -> tuple:
    """An int or a length-n sequence of ints as an n-tuple (torch's _pair / _single)."""
    if type(v) is int:
        return (v,) * n
    if type(v) is tuple and len(v) == n and all(type(e) is int for e in v):
        return v
    if _is_int(v):
        return (int(v),) * n
    if isinstance(v, (tuple, list)) and len(v) in (1, n) and all(_is_int(e) for e in v):
        return tuple(int(e) for e in v) * (n if len(v) == 1 else 1)  # torch expands 1 entry
    raise TypeError(f"[{op}] {name} must be an int or a tuple of {n} ints, got {v!r}")


def _check_tensors(op: str, input, weight, bias, dims: int) -> None:
    for name, t in (("input", input), ("weight", weight)):
        if not isinstance(t, Tensor):
            raise TypeError(f"[{op}] {name} must be a Tensor, got {type(t).__name__}")
    if bias is not None and not isinstance(bias, Tensor):
        raise TypeError(f"[{op}] bias must be a Tensor or None, got {type(bias).__name__}")
    for name, t in (("input", input), ("weight", weight), ("bias", bias)):
        if t is not None and t.dtype not in _FLOATS:
            raise TypeError(f"[{op}] {name} must be float32 or float64, got {t.dtype}")
    for name, t in (("weight", weight), ("bias", bias)):
        if t is None:
            continue
        if t.dtype != input.dtype:
            raise TypeError(
                f"[{op}] input is {input.dtype} but {name} is {t.dtype}; cast one explicitly"
            )
        if t.device != input.device:
            raise TypeError(f"[{op}] input is on {input.device} but {name} is on {t.device}")
    if input.ndim not in (dims + 1, dims + 2):
        raise ValueError(
            f"[{op}] expected a {dims + 1}-D (unbatched) or {dims + 2}-D (batched) input, got "
            f"{input.ndim}-D input of shape {tuple(input.shape)}"
        )
    if weight.ndim != dims + 2:
        raise ValueError(
            f"[{op}] weight must be {dims + 2}-D, got {weight.ndim}-D of shape "
            f"{tuple(weight.shape)}"
        )
    if bias is not None and bias.ndim != 1:
        raise ValueError(f"[{op}] bias must be 1-D, got shape {tuple(bias.shape)}")


def _check_geometry(op: str, stride, dilation, groups) -> None:
    if not _is_int(groups) or groups < 1:
        raise ValueError(f"[{op}] groups must be a positive int, got {groups!r}")
    if min(stride) < 1:
        raise ValueError(f"[{op}] stride must be positive, got {stride}")
    if min(dilation) < 1:
        raise ValueError(f"[{op}] dilation must be positive, got {dilation}")


def _out_size(n, k, s, lo, hi, d, di=1) -> int:
    return ((n - 1) * di + 1 + lo + hi - ((k - 1) * d + 1)) // s + 1


def _apply(op, x, weight, bias, geo, kh_kw) -> Tensor:
    """Run the forward after the last shape check (the kernel fits)."""
    out_hw = []
    for i, n in enumerate(x.shape[2:]):
        size = _out_size(
            n,
            kh_kw[i],
            geo["stride"][i],
            geo["pad_lo"][i],
            geo["pad_hi"][i],
            geo["dilation"][i],
            geo["input_dilation"][i],
        )
        if size < 1 or n < 1:
            raise ValueError(
                f"[{op}] kernel size {tuple(kh_kw)} (dilation {geo['dilation']}) is larger than "
                f"the padded input {tuple(x.shape[2:])}: the output would be empty"
            )
        out_hw.append(size)
    out_ch = weight.shape[1] * geo["groups"] if geo["wtrans"] else weight.shape[0]
    check_numel(op, (x.shape[0], out_ch, *out_hw), x.dtype)
    with allocating(op):
        return _ConvForward.apply(x, weight, bias, geo, op)


# ----------------------------------------------------------------------------- public ops


def _conv2d(op: str, input, weight, bias, stride, padding, dilation, groups, dims: int = 2):
    _check_tensors(op, input, weight, bias, dims)
    stride = _tuple(stride, dims, "stride", op)
    dilation = _tuple(dilation, dims, "dilation", op)
    _check_geometry(op, stride, dilation, groups)
    ksize = tuple(weight.shape[2:])
    if isinstance(padding, str):
        if padding == "valid":
            lo = hi = (0,) * dims
        elif padding == "same":
            if max(stride) != 1:
                raise ValueError(f"[{op}] padding='same' is not supported for strided convolutions")
            total = [d * (k - 1) for d, k in zip(dilation, ksize)]
            lo = tuple(t // 2 for t in total)  # the odd element goes to the high side, as torch
            hi = tuple(t - t // 2 for t in total)
        else:
            raise ValueError(
                f"[{op}] padding must be 'same', 'valid', an int or a tuple, got {padding!r}"
            )
    else:
        lo = hi = _tuple(padding, dims, "padding", op)
        if min(lo) < 0:
            raise ValueError(f"[{op}] padding must be non-negative, got {padding!r}")
    unbatched = input.ndim == dims + 1
    c_in = input.shape[0 if unbatched else 1]
    out_ch = weight.shape[0]
    if c_in % groups != 0:
        raise ValueError(f"[{op}] input channels ({c_in}) must be divisible by groups ({groups})")
    if out_ch % groups != 0:
        raise ValueError(
            f"[{op}] output channels ({out_ch}) must be divisible by groups ({groups})"
        )
    if weight.shape[1] * groups != c_in:
        raise ValueError(
            f"[{op}] weight of shape {tuple(weight.shape)} with groups={groups} expects "
            f"{weight.shape[1] * groups} input channels, but the input of shape "
            f"{tuple(input.shape)} has {c_in}"
        )
    if min(ksize) < 1:
        raise ValueError(f"[{op}] kernel size must be positive, got {ksize}")
    if bias is not None and bias.shape[0] != out_ch:
        raise ValueError(f"[{op}] bias must have {out_ch} elements, got {bias.shape[0]}")
    x = input.unsqueeze(0) if unbatched else input
    w = weight
    if dims == 1:  # a height-1 2-D convolution
        x, w = x.unsqueeze(2), w.unsqueeze(2)
        stride, dilation, lo, hi, ksize = (
            (1,) + stride,
            (1,) + dilation,
            (0,) + lo,
            (0,) + hi,
            (1,) + ksize,
        )
    geo = dict(
        stride=stride,
        pad_lo=lo,
        pad_hi=hi,
        dilation=dilation,
        input_dilation=(1, 1),
        groups=int(groups),
        flip=False,
        wtrans=False,
    )
    y = _apply(op, x, w, bias, geo, ksize)
    if dims == 1:
        y = y.squeeze(2)
    return y.squeeze(0) if unbatched else y


def conv2d(
    input: Tensor,
    weight: Tensor,
    bias: Optional[Tensor] = None,
    stride: Union[int, tuple] = 1,
    padding: Union[int, tuple, str] = 0,
    dilation: Union[int, tuple] = 1,
    groups: int = 1,
) -> Tensor:
    """2-D convolution (cross-correlation) as torch.nn.functional.conv2d.

    input (N, C, H, W) or (C, H, W); weight (O, C/groups, kh, kw); padding an int, a pair,
    'valid' or 'same' (stride 1; an odd total padding puts the extra element at the end).
    """
    return _conv2d("conv2d", input, weight, bias, stride, padding, dilation, groups, 2)


def conv1d(
    input: Tensor,
    weight: Tensor,
    bias: Optional[Tensor] = None,
    stride: Union[int, tuple] = 1,
    padding: Union[int, tuple, str] = 0,
    dilation: Union[int, tuple] = 1,
    groups: int = 1,
) -> Tensor:
    """1-D convolution as torch.nn.functional.conv1d: input (N, C, L), weight (O, C/groups, k)."""
    return _conv2d("conv1d", input, weight, bias, stride, padding, dilation, groups, 1)


def conv_transpose2d(
    input: Tensor,
    weight: Tensor,
    bias: Optional[Tensor] = None,
    stride: Union[int, tuple] = 1,
    padding: Union[int, tuple] = 0,
    output_padding: Union[int, tuple] = 0,
    groups: int = 1,
    dilation: Union[int, tuple] = 1,
) -> Tensor:
    """Transposed 2-D convolution as torch.nn.functional.conv_transpose2d.

    input (N, C, H, W) or (C, H, W); weight (C, O/groups, kh, kw); output size
    (H-1)*stride - 2*padding + dilation*(kh-1) + output_padding + 1.
    """
    op = "conv_transpose2d"
    _check_tensors(op, input, weight, bias, 2)
    stride = _tuple(stride, 2, "stride", op)
    dilation = _tuple(dilation, 2, "dilation", op)
    _check_geometry(op, stride, dilation, groups)
    if isinstance(padding, str):
        raise ValueError(f"[{op}] padding must be an int or a tuple, got {padding!r}")
    padding = _tuple(padding, 2, "padding", op)
    output_padding = _tuple(output_padding, 2, "output_padding", op)
    if min(padding) < 0:
        raise ValueError(f"[{op}] padding must be non-negative, got {padding}")
    for op_, s, d in zip(output_padding, stride, dilation):
        if op_ < 0 or op_ >= max(s, d):
            raise ValueError(
                f"[{op}] output_padding {output_padding} must be non-negative and smaller than "
                f"max(stride, dilation) per dim (stride {stride}, dilation {dilation})"
            )
    unbatched = input.ndim == 3
    c_in = input.shape[0 if unbatched else 1]
    if c_in % groups != 0:
        raise ValueError(f"[{op}] input channels ({c_in}) must be divisible by groups ({groups})")
    if weight.shape[0] != c_in:
        raise ValueError(
            f"[{op}] weight of shape {tuple(weight.shape)} expects {weight.shape[0]} input "
            f"channels, but the input of shape {tuple(input.shape)} has {c_in}"
        )
    ksize = tuple(weight.shape[2:])
    if min(ksize) < 1:
        raise ValueError(f"[{op}] kernel size must be positive, got {ksize}")
    out_ch = weight.shape[1] * groups
    if bias is not None and bias.shape[0] != out_ch:
        raise ValueError(f"[{op}] bias must have {out_ch} elements, got {bias.shape[0]}")
    kext = tuple(d * (k - 1) for d, k in zip(dilation, ksize))
    geo = dict(
        stride=(1, 1),
        pad_lo=tuple(e - p for e, p in zip(kext, padding)),
        pad_hi=tuple(e - p + o for e, p, o in zip(kext, padding, output_padding)),
        dilation=dilation,
        input_dilation=stride,
        groups=int(groups),
        flip=True,
        wtrans=True,
    )
    x = input.unsqueeze(0) if unbatched else input
    y = _apply(op, x, weight, bias, geo, ksize)
    return y.squeeze(0) if unbatched else y


def conv_general(
    input: Tensor,
    weight: Tensor,
    bias: Optional[Tensor] = None,
    *,
    stride=(1, 1),
    pad_lo=(0, 0),
    pad_hi=(0, 0),
    dilation=(1, 1),
    input_dilation=(1, 1),
    groups: int = 1,
    flip: bool = False,
    wtrans: bool = False,
) -> Tensor:
    """The generalized convolution itself (NCHW), differentiable; see csrc/cpu/conv.h.

    Pads may be negative (they crop). No torch equivalent: for tests and new conv-shaped ops.
    """
    op = "conv_general"
    _check_tensors(op, input, weight, bias, 2)
    if input.ndim != 4:
        raise ValueError(f"[{op}] input must be 4-D, got shape {tuple(input.shape)}")
    geo = dict(
        stride=_tuple(stride, 2, "stride", op),
        pad_lo=_tuple(pad_lo, 2, "pad_lo", op),
        pad_hi=_tuple(pad_hi, 2, "pad_hi", op),
        dilation=_tuple(dilation, 2, "dilation", op),
        input_dilation=_tuple(input_dilation, 2, "input_dilation", op),
        groups=int(groups),
        flip=bool(flip),
        wtrans=bool(wtrans),
    )
    _check_geometry(op, geo["stride"], geo["dilation"], groups)
    if min(geo["input_dilation"]) < 1:
        raise ValueError(f"[{op}] input_dilation must be positive, got {input_dilation}")
    return _apply(op, input, weight, bias, geo, tuple(weight.shape[2:]))
