"""Pooling: max / average / adaptive pooling, max-unpooling and nearest upsampling (NCHW).

The kernels are csrc/cpu/pool.h and cuda/pool.cu; this module checks arguments with PyTorch's
rules and messages, reshapes 3-D (C, H, W) inputs to a batch of one, and wires autograd.

Autograd: every backward is itself a Function whose backward is the forward's kernel again
(max pooling: scatter-add <-> gather at the saved indices; average pooling and upsampling:
the op and its adjoint), so gradients of gradients (``create_graph=True``) work.
"""

from __future__ import annotations

import math
import numbers
from typing import Optional, Sequence, Union

import numpy as np

from .._checks import allocating, check_numel
from ..autograd import Function, is_grad_enabled
from ..backend import for_array
from ..tensor import Tensor

__all__ = [
    "adaptive_avg_pool2d",
    "adaptive_max_pool2d",
    "avg_pool2d",
    "interpolate",
    "max_pool2d",
    "max_unpool2d",
    "pool_output_size",
    "upsample_nearest",
]

_IntOr2 = Union[int, Sequence[int]]
_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


# ----------------------------------------------------------------------------- arguments


def _is_int(v) -> bool:
    return isinstance(v, (numbers.Integral, np.integer)) and not isinstance(v, (bool, np.bool_))


def _pair(v, name: str, op: str, default=None) -> tuple:
    """An int or a sequence of 1 or 2 ints -> (a, b); None or () -> default."""
    if (v is None or (isinstance(v, (tuple, list)) and len(v) == 0)) and default is not None:
        return default
    if _is_int(v):
        return (int(v), int(v))
    if isinstance(v, (tuple, list)) and all(_is_int(e) for e in v):
        if len(v) == 1:
            return (int(v[0]), int(v[0]))
        if len(v) == 2:
            return (int(v[0]), int(v[1]))
        raise ValueError(
            f"[{op}] {name} must either be a single int, or a tuple of two ints, but got {tuple(v)}"
        )
    raise TypeError(
        f"[{op}] {name} must either be a single int, or a tuple of two ints, but got {v!r}"
    )


def pool_output_size(size: int, k: int, s: int, p: int, d: int, ceil_mode: bool) -> int:
    """PyTorch's pooling output size (may be < 1: the caller rejects that)."""
    num = size + 2 * p - d * (k - 1) - 1 + (s - 1 if ceil_mode else 0)
    out = num // s + 1  # floor division, as PyTorch's div_rtn
    if ceil_mode and (out - 1) * s >= size + p:
        out -= 1
    return out


def _check_input(input, op: str) -> None:
    if not isinstance(input, Tensor):
        raise TypeError(f"[{op}] input must be a Tensor, got {type(input).__name__}")
    if input.dtype not in _FLOATS:
        raise TypeError(f"[{op}] expects a float32 or float64 input, got {input.dtype}")
    shape = input.shape
    if len(shape) not in (3, 4) or 0 in shape[-3:]:
        raise ValueError(
            f"[{op}] Expected 3D or 4D (batch mode) tensor with optional 0 dim batch size for "
            f"input, but got: {tuple(input.shape)}"
        )


def _window(input, op: str, kernel_size, stride, padding, dilation, ceil_mode) -> dict:
    """Checked window geometry and output size (PyTorch's pool2d_shape_check)."""
    k = _pair(kernel_size, "kernel_size", op)
    s = _pair(stride, "stride", op, default=k)
    p = _pair(padding, "padding", op)
    d = _pair(dilation, "dilation", op)
    if min(k) <= 0:
        raise ValueError(
            f"[{op}] kernel size should be greater than zero, but got kH: {k[0]} kW: {k[1]}"
        )
    if min(s) <= 0:
        raise ValueError(
            f"[{op}] stride should be greater than zero, but got dH: {s[0]} dW: {s[1]}"
        )
    if min(d) <= 0:
        raise ValueError(
            f"[{op}] dilation should be greater than zero, but got dilationH: "
            f"{d[0]} dilationW: {d[1]}"
        )
    if min(p) < 0:
        raise ValueError(f"[{op}] padding must be non-negative, but got padH: {p[0]} padW: {p[1]}")
    if p[0] > k[0] // 2 or p[1] > k[1] // 2:
        raise ValueError(
            f"[{op}] pad should be smaller than or equal to half of kernel size, but got "
            f"padW = {p[1]}, padH = {p[0]}, kW = {k[1]}, kH = {k[0]}"
        )
    C, H, W = input.shape[-3:]
    oh = pool_output_size(H, k[0], s[0], p[0], d[0], bool(ceil_mode))
    ow = pool_output_size(W, k[1], s[1], p[1], d[1], bool(ceil_mode))
    if oh < 1 or ow < 1:
        raise ValueError(
            f"[{op}] Given input size: ({C}x{H}x{W}). Calculated output size: ({C}x{oh}x{ow}). "
            "Output size is too small"
        )
    return {
        "kernel_size": k,
        "stride": s,
        "padding": p,
        "dilation": d,
        "ceil_mode": bool(ceil_mode),
        "out": (oh, ow),
    }


def _batched(input: Tensor) -> tuple:
    """(4-D view, whether a batch dim was added)."""
    if input.ndim == 3:
        return input.unsqueeze(0), True
    return input, False


def _unbatch(t, added: bool):
    if t is None or not added:
        return t
    return t.squeeze(0)


def _needs_grad(*ts) -> bool:
    if not is_grad_enabled():
        return False
    for t in ts:
        if isinstance(t, Tensor) and t.requires_grad:
            return True
    return False


class _Ctx:
    """A stand-in context for a Function run without recording (nothing is saved for later)."""


def _run(fn, *args):
    """fn.apply(*args) when a graph must be recorded, else its forward directly (cheaper)."""
    if _needs_grad(*args):
        return fn.apply(*args)
    return fn.forward(_Ctx(), *args)


# ----------------------------------------------------------------------------- autograd


class _ScatterAdd(Function):
    """gx[n, c].flat[idx[o]] += g[o] into (H, W) zeros: the adjoint of max pooling."""

    @staticmethod
    def forward(ctx, g, idx, H, W):
        ctx.idx = idx
        return Tensor(for_array(g.data).max_pool2d_backward(g.data, idx.data, H, W))

    @staticmethod
    def backward(ctx, gg):
        return _run(_Gather, gg, ctx.idx), None, None, None


class _Gather(Function):
    """out[o] = src[n, c].flat[idx[o]]: the adjoint of _ScatterAdd and max_unpool2d's backward."""

    @staticmethod
    def forward(ctx, src, idx):
        ctx.idx = idx
        ctx.hw = tuple(src.shape[2:])
        return Tensor(for_array(src.data).pool_gather(src.data, idx.data))

    @staticmethod
    def backward(ctx, gg):
        return _run(_ScatterAdd, gg, ctx.idx, *ctx.hw), None


class _MaxPool2d(Function):
    @staticmethod
    def forward(ctx, x, geo, with_indices):
        y, idx = for_array(x.data).max_pool2d(
            x.data, geo["kernel_size"], geo["stride"], geo["padding"], geo["dilation"],
            geo["ceil_mode"], with_indices,
        )  # fmt: skip
        idx = None if idx is None else Tensor(idx)
        ctx.idx = idx
        ctx.hw = tuple(x.shape[2:])
        return Tensor(y), idx

    @staticmethod
    def backward(ctx, gy, _gidx):
        return _run(_ScatterAdd, gy, ctx.idx, *ctx.hw), None, None


class _AdaptiveMaxPool2d(Function):
    @staticmethod
    def forward(ctx, x, out_hw, with_indices):
        y, idx = for_array(x.data).adaptive_max_pool2d(x.data, *out_hw, with_indices)
        idx = None if idx is None else Tensor(idx)
        ctx.idx = idx
        ctx.hw = tuple(x.shape[2:])
        return Tensor(y), idx

    @staticmethod
    def backward(ctx, gy, _gidx):
        return _run(_ScatterAdd, gy, ctx.idx, *ctx.hw), None, None


def _avg_args(geo: dict) -> tuple:
    return (
        geo["kernel_size"],
        geo["stride"],
        geo["padding"],
        geo["ceil_mode"],
        geo["count_include_pad"],
        geo["divisor"],
    )


class _AvgPool2d(Function):
    @staticmethod
    def forward(ctx, x, geo):
        ctx.geo = geo
        ctx.hw = tuple(x.shape[2:])
        return Tensor(for_array(x.data).avg_pool2d(x.data, *_avg_args(geo)))

    @staticmethod
    def backward(ctx, gy):
        return _run(_AvgPool2dBackward, gy, ctx.geo, *ctx.hw), None


class _AvgPool2dBackward(Function):
    @staticmethod
    def forward(ctx, gy, geo, H, W):
        ctx.geo = geo
        return Tensor(for_array(gy.data).avg_pool2d_backward(gy.data, H, W, *_avg_args(geo)))

    @staticmethod
    def backward(ctx, gg):
        return _run(_AvgPool2d, gg, ctx.geo), None, None, None


class _AdaptiveAvgPool2d(Function):
    @staticmethod
    def forward(ctx, x, out_hw):
        ctx.hw = tuple(x.shape[2:])
        return Tensor(for_array(x.data).adaptive_avg_pool2d(x.data, *out_hw))

    @staticmethod
    def backward(ctx, gy):
        return _run(_AdaptiveAvgPool2dBackward, gy, *ctx.hw), None


class _AdaptiveAvgPool2dBackward(Function):
    @staticmethod
    def forward(ctx, gy, H, W):
        ctx.out_hw = tuple(gy.shape[2:])
        return Tensor(for_array(gy.data).adaptive_avg_pool2d_backward(gy.data, H, W))

    @staticmethod
    def backward(ctx, gg):
        return _run(_AdaptiveAvgPool2d, gg, ctx.out_hw), None, None


class _MaxUnpool2d(Function):
    """y[n, c].flat[idx[i]] = x[i]; the backward gathers, as PyTorch's (a duplicated index
    sends the gradient of its position to every input that named it)."""

    @staticmethod
    def forward(ctx, x, idx, out_hw):
        ctx.idx = idx
        return Tensor(for_array(x.data).max_unpool2d(x.data, idx.data, *out_hw))

    @staticmethod
    def backward(ctx, gy):
        return _run(_Gather, gy, ctx.idx), None, None


class _UpsampleNearest(Function):
    @staticmethod
    def forward(ctx, x, factors):
        ctx.factors = factors
        return Tensor(for_array(x.data).upsample_nearest2d(x.data, *factors))

    @staticmethod
    def backward(ctx, gy):
        return _run(_UpsampleNearestBackward, gy, ctx.factors), None


class _UpsampleNearestBackward(Function):
    @staticmethod
    def forward(ctx, gy, factors):
        ctx.factors = factors
        return Tensor(for_array(gy.data).upsample_nearest2d_backward(gy.data, *factors))

    @staticmethod
    def backward(ctx, gg):
        return _run(_UpsampleNearest, gg, ctx.factors), None


# ----------------------------------------------------------------------------- public ops


def max_pool2d(
    input: Tensor,
    kernel_size: _IntOr2,
    stride: Optional[_IntOr2] = None,
    padding: _IntOr2 = 0,
    dilation: _IntOr2 = 1,
    ceil_mode: bool = False,
    return_indices: bool = False,
):
    """2-D max pooling over (N, C, H, W) or (C, H, W); ties send the gradient to the first
    maximum; with return_indices, also the int64 argmax h*W + w of each output."""
    op = "max_pool2d"
    _check_input(input, op)
    geo = _window(input, op, kernel_size, stride, padding, dilation, ceil_mode)
    x, added = _batched(input)
    with_idx = bool(return_indices) or _needs_grad(input)
    y, idx = _run(_MaxPool2d, x, geo, with_idx)
    y = _unbatch(y, added)
    if return_indices:
        return y, _unbatch(idx, added)
    return y


def avg_pool2d(
    input: Tensor,
    kernel_size: _IntOr2,
    stride: Optional[_IntOr2] = None,
    padding: _IntOr2 = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
    divisor_override: Optional[int] = None,
) -> Tensor:
    """2-D average pooling over (N, C, H, W) or (C, H, W), PyTorch's divisor rules."""
    op = "avg_pool2d"
    _check_input(input, op)
    geo = _window(input, op, kernel_size, stride, padding, 1, ceil_mode)
    if divisor_override is not None:
        if not _is_int(divisor_override):
            raise TypeError(
                f"[{op}] divisor_override must be an int or None, got {divisor_override!r}"
            )
        if divisor_override == 0:
            raise ValueError(f"[{op}] divisor must be not zero")
    geo["count_include_pad"] = bool(count_include_pad)
    geo["divisor"] = 0 if divisor_override is None else int(divisor_override)
    x, added = _batched(input)
    return _unbatch(_run(_AvgPool2d, x, geo), added)


def _adaptive_size(input: Tensor, output_size, op: str) -> tuple:
    if type(output_size) is int and output_size >= 1:  # the common case, fast
        return (output_size, output_size)
    if _is_int(output_size) or output_size is None:
        output_size = (output_size, output_size)
    if not isinstance(output_size, (tuple, list)) or len(output_size) not in (1, 2):
        raise TypeError(
            f"[{op}] output_size must be an int or a tuple of two ints (or None), "
            f"got {output_size!r}"
        )
    if len(output_size) == 1:
        output_size = (output_size[0], output_size[0])
    out = []
    for v, n in zip(output_size, input.shape[-2:]):
        if v is None:
            out.append(int(n))
        elif _is_int(v):
            out.append(int(v))
        else:
            raise TypeError(f"[{op}] output_size must hold ints or None, got {output_size!r}")
    if min(out) < 1:
        raise ValueError(f"[{op}] output_size must be greater than zero, got {tuple(out)}")
    return tuple(out)


def adaptive_avg_pool2d(input: Tensor, output_size) -> Tensor:
    """Adaptive average pooling: window i spans [floor(i*In/Out), ceil((i+1)*In/Out))."""
    op = "adaptive_avg_pool2d"
    _check_input(input, op)
    out_hw = _adaptive_size(input, output_size, op)
    check_numel(op, (*input.shape[:-2], *out_hw), input.dtype)
    x, added = _batched(input)
    with allocating(op):
        return _unbatch(_run(_AdaptiveAvgPool2d, x, out_hw), added)


def adaptive_max_pool2d(input: Tensor, output_size, return_indices: bool = False):
    """Adaptive max pooling (windows as adaptive_avg_pool2d; max rules as max_pool2d)."""
    op = "adaptive_max_pool2d"
    _check_input(input, op)
    out_hw = _adaptive_size(input, output_size, op)
    check_numel(op, (*input.shape[:-2], *out_hw), np.int64)  # values and int64 indices
    x, added = _batched(input)
    with_idx = bool(return_indices) or _needs_grad(input)
    with allocating(op):
        y, idx = _run(_AdaptiveMaxPool2d, x, out_hw, with_idx)
    y = _unbatch(y, added)
    if return_indices:
        return y, _unbatch(idx, added)
    return y


def _unpool_size(input: Tensor, k, s, p, output_size, op: str) -> tuple:
    """PyTorch's _unpool_output_size: the default, or a checked explicit size."""
    default = tuple((input.shape[-2 + i] - 1) * s[i] + k[i] - 2 * p[i] for i in range(2))
    if output_size is None:
        out = default
    else:
        if isinstance(output_size, Tensor) or not isinstance(output_size, (tuple, list)):
            raise TypeError(f"[{op}] output_size must be a tuple of ints, got {output_size!r}")
        output_size = tuple(output_size)
        if len(output_size) == 4:
            output_size = output_size[2:]
        if len(output_size) != 2 or not all(_is_int(v) for v in output_size):
            raise ValueError(
                f"[{op}] output_size should be a sequence containing 2 or 4 "
                f"elements, but it has a length of '{len(output_size)}'"
            )
        for i in range(2):
            lo, hi = default[i] - s[i], default[i] + s[i]
            if not lo < output_size[i] < hi:
                raise ValueError(
                    f'[{op}] invalid output_size "{tuple(output_size)}" (dim {i} '
                    f"must be between {lo} and {hi})"
                )
        out = tuple(int(v) for v in output_size)
    if min(out) < 1:
        raise ValueError(f"[{op}] output size must be positive but is {out}")
    return out


def max_unpool2d(
    input: Tensor,
    indices: Tensor,
    kernel_size: _IntOr2,
    stride: Optional[_IntOr2] = None,
    padding: _IntOr2 = 0,
    output_size: Optional[Sequence[int]] = None,
) -> Tensor:
    """The partial inverse of max_pool2d: input values go to their indices, zeros elsewhere."""
    op = "max_unpool2d"
    _check_input(input, op)
    if not isinstance(indices, Tensor):
        raise TypeError(f"[{op}] indices must be a Tensor, got {type(indices).__name__}")
    if indices.dtype != np.int64:
        raise TypeError(f"[{op}] elements in indices should be type int64 but got: {indices.dtype}")
    if tuple(indices.shape) != tuple(input.shape):
        raise ValueError(
            f"[{op}] Expected shape of indices to be same as that of the input "
            f"tensor ({tuple(input.shape)}) but got indices tensor with shape: "
            f"{tuple(indices.shape)}"
        )
    if indices.device != input.device:
        raise RuntimeError(f"[{op}] input is on {input.device} but indices on {indices.device}")
    k = _pair(kernel_size, "kernel_size", op)
    s = _pair(stride, "stride", op, default=k)
    p = _pair(padding, "padding", op)
    if min(k) <= 0 or min(s) <= 0 or min(p) < 0:
        raise ValueError(
            f"[{op}] kernel_size and stride must be positive and padding "
            f"non-negative, got {k}, {s}, {p}"
        )
    out_hw = _unpool_size(input, k, s, p, output_size, op)
    check_numel(op, (*input.shape[:-2], *out_hw), input.dtype)
    x, added = _batched(input)
    idx, _ = _batched(indices)
    with allocating(op):
        return _unbatch(_run(_MaxUnpool2d, x, idx.detach(), out_hw), added)


_INTERP_MODES = ("nearest", "linear", "bilinear", "bicubic", "trilinear", "area", "nearest-exact")


def _integer_factors(op: str, in_sizes: tuple, size, scale_factor) -> tuple:
    """Integer upsampling factors per spatial dim from size or scale_factor."""
    n = len(in_sizes)
    if size is not None and scale_factor is not None:
        raise ValueError(f"[{op}] only one of size or scale_factor should be defined")
    if size is None and scale_factor is None:
        raise ValueError(f"[{op}] either size or scale_factor should be defined")
    if size is not None:
        sizes = tuple(size) if isinstance(size, (tuple, list)) else (size,) * n
        if len(sizes) != n or not all(_is_int(v) for v in sizes):
            raise ValueError(
                f"[{op}] size shape must match input shape. Input is {n}D, size is {len(sizes)}"
                if len(sizes) != n
                else f"[{op}] size must hold ints, got {size!r}"
            )
        if min(sizes) < 1:
            raise ValueError(
                f"[{op}] Input and output sizes should be greater than 0, but got "
                f"input ({', '.join(map(str, in_sizes))}) and output "
                f"({', '.join(map(str, sizes))})"
            )
        if any(o % i for o, i in zip(sizes, in_sizes)):
            raise NotImplementedError(
                f"[{op}] nearest interpolation is implemented for integer scale factors only: "
                f"size {sizes} is not a multiple of the input size {in_sizes}"
            )
        return tuple(o // i for o, i in zip(sizes, in_sizes))
    scales = tuple(scale_factor) if isinstance(scale_factor, (tuple, list)) else (scale_factor,) * n
    if len(scales) != n:
        raise ValueError(
            f"[{op}] scale_factor shape must match input shape. Input is {n}D, "
            f"scale_factor is {len(scales)}"
        )
    out = []
    for f in scales:
        if not isinstance(f, (numbers.Real, np.floating, np.integer)) or isinstance(f, bool):
            raise TypeError(
                f"[{op}] scale_factor must be a number or a tuple of numbers, got {scale_factor!r}"
            )
        if not math.isfinite(f) or f <= 0:
            raise ValueError(f"[{op}] scale_factor must be positive, got {scale_factor!r}")
        if float(f) != int(f):
            raise NotImplementedError(
                f"[{op}] nearest interpolation is implemented for integer scale factors only, "
                f"got scale_factor={scale_factor!r}"
            )
        out.append(int(f))
    return tuple(out)


def interpolate(
    input: Tensor,
    size=None,
    scale_factor=None,
    mode: str = "nearest",
    align_corners: Optional[bool] = None,
    recompute_scale_factor: Optional[bool] = None,
    antialias: bool = False,
) -> Tensor:
    """Resampling with torch.nn.functional.interpolate's signature. Implemented: mode='nearest'
    on 3-D (N, C, L) and 4-D (N, C, H, W) inputs by integer factors (a size that is an integer
    multiple of the input's); anything else raises NotImplementedError."""
    op = "interpolate"
    if not isinstance(input, Tensor):
        raise TypeError(f"[{op}] input must be a Tensor, got {type(input).__name__}")
    if mode not in _INTERP_MODES:
        raise NotImplementedError(
            f"[{op}] Input Error: Only 3D, 4D and 5D input Tensors supported (got "
            f"{input.ndim}D) for the modes: nearest | linear | bilinear | bicubic | trilinear | "
            f"area | nearest-exact (got {mode})"
        )
    if align_corners is not None and mode in ("nearest", "area", "nearest-exact"):
        raise ValueError(
            f"[{op}] align_corners option can only be set with the interpolating "
            "modes: linear | bilinear | bicubic | trilinear"
        )
    if antialias and mode not in ("bilinear", "bicubic"):
        raise ValueError(
            f"[{op}] Anti-alias option is restricted to bilinear and bicubic modes "
            "and requires a 4-D tensor as input"
        )
    if mode != "nearest":
        raise NotImplementedError(f"[{op}] mode={mode!r} is not implemented; only 'nearest' is")
    if input.dtype.kind != "f" or input.dtype.itemsize not in (4, 8):
        raise TypeError(f"[{op}] expects a float32 or float64 input, got {input.dtype}")
    if input.ndim == 5:
        raise NotImplementedError(
            f"[{op}] nearest interpolation of 5-D inputs is not implemented; 3-D and 4-D are"
        )
    if input.ndim not in (3, 4):
        raise ValueError(
            f"[{op}] expects a 3-D (N, C, L) or 4-D (N, C, H, W) input, got "
            f"shape {tuple(input.shape)}"
        )
    if any(n == 0 for n in input.shape[1:]):
        raise ValueError(f"[{op}] input has a zero-sized non-batch dimension: {tuple(input.shape)}")
    factors = _integer_factors(op, tuple(input.shape[2:]), size, scale_factor)
    out_sizes = [n * f for n, f in zip(input.shape[2:], factors)]
    check_numel(op, (*input.shape[:2], *out_sizes), input.dtype)
    with allocating(op):
        return upsample_nearest(input, factors)


def upsample_nearest(input: Tensor, factors: tuple) -> Tensor:
    """Nearest upsampling of a 3-D (N, C, L) or 4-D input by integer factors (one per dim)."""
    if input.ndim == 3:
        x = input.unsqueeze(2)
        return _run(_UpsampleNearest, x, (1, int(factors[0]))).squeeze(2)
    return _run(_UpsampleNearest, input, (int(factors[0]), int(factors[1])))
