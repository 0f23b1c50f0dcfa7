"""batch_norm and layer_norm: Functions over the fused kernels of csrc/cpu/norm.h (cuda/norm.cu);
group_norm and instance_norm: the layer_norm kernel on a grouped view plus a per-channel affine.

Forward runs one kernel (statistics, normalization and, for batch_norm in training, the running
statistics update); backward runs one fused kernel for the input, weight and bias gradients.
Under ``create_graph=True`` the backward is instead written in Tensor ops from the same formulas
(the composed reference of the fused kernel), so second-order gradients work.

Semantics follow torch: batch_norm normalizes with the biased batch variance and updates
running_var with the unbiased one; in evaluation mode it uses the running statistics.
"""

from __future__ import annotations

import numbers
from typing import Optional, Sequence, Union

import numpy as np

from ..autograd import Function, is_grad_enabled, no_grad
from ..backend import for_array
from ..tensor import Tensor

__all__ = ["batch_norm", "layer_norm", "group_norm", "instance_norm"]


# ----------------------------------------------------------------------------- helpers


def _kernel(x: Tensor, name: str, op: str):
    """The backend function `name` for x's device, or NotImplementedError naming the op."""
    fn = getattr(for_array(x.data), name, None)
    if fn is None:
        raise NotImplementedError(f"[{op}] no {x.device} kernel ({name}) is available")
    return fn


def _data(t: Optional[Tensor]):
    return None if t is None else t.data


def _check_input(op: str, x, min_ndim: int) -> None:
    if not isinstance(x, Tensor):
        raise TypeError(f"[{op}] input must be a Tensor, got {type(x).__name__}")
    if x.dtype.kind != "f" or x.dtype.itemsize not in (4, 8):
        raise TypeError(f"[{op}] input must be float32 or float64 but is {x.dtype}")
    if x.ndim < min_ndim:
        raise ValueError(
            f"[{op}] input must have at least {min_ndim} dimensions but has shape {tuple(x.shape)}"
        )


def _check_param(op: str, name: str, t, x: Tensor, shape: tuple) -> None:
    if t is None:
        return
    if not isinstance(t, Tensor):
        raise TypeError(f"[{op}] {name} must be a Tensor or None, got {type(t).__name__}")
    if t.device != x.device:
        raise RuntimeError(f"[{op}] {name} is on {t.device} but input is on {x.device}")
    if t.dtype != x.dtype:
        raise TypeError(
            f"[{op}] {name} has dtype {t.dtype} but input has {x.dtype} (no implicit casts)"
        )
    if tuple(t.shape) != tuple(shape):
        raise ValueError(f"[{op}] {name} must have shape {tuple(shape)} but has {tuple(t.shape)}")


def _check_channel_params(op: str, x: Tensor, running_mean, running_var, weight, bias) -> int:
    """The channel count C of x (N, C, ...) after checking the per-channel tensors (each (C,),
    x's dtype and device, or None) and that the running statistics come as a pair."""
    c = x.shape[1]
    for name, t in (
        ("running_mean", running_mean),
        ("running_var", running_var),
        ("weight", weight),
        ("bias", bias),
    ):
        _check_param(op, name, t, x, (c,))
    if (running_mean is None) != (running_var is None):
        raise ValueError(f"[{op}] running_mean and running_var must both be given or both None")
    return c


def _wrap(a) -> Optional[Tensor]:
    return None if a is None else Tensor(a)


# ----------------------------------------------------------------------------- batch_norm


class BatchNorm(Function):
    """y = batch_norm(x); the running statistics (arrays) are updated in place when training."""

    @staticmethod
    def forward(ctx, x, weight, bias, running_mean, running_var, training, momentum, eps):
        fwd = _kernel(x, "batch_norm_forward", "batch_norm")
        y, mean, invstd = fwd(
            x.data,
            _data(weight),
            _data(bias),
            _data(running_mean),
            _data(running_var),
            training,
            momentum,
            eps,
        )
        ctx.save_for_backward(x, weight, bias)
        ctx.stats = (mean, invstd)
        ctx.training = training
        ctx.eps = eps
        return Tensor(y)

    @staticmethod
    def backward(ctx, g):
        x, weight, bias = ctx.saved_tensors
        need = ctx.needs_input_grad
        need_w = need[1] and weight is not None
        need_b = need[2] and bias is not None
        rest = (None,) * 5
        if is_grad_enabled():  # create_graph: the composed formulas, differentiable again
            dx, dw, db = _batch_norm_backward_composed(ctx, g, x, weight)
            return (dx if need[0] else None, dw if need_w else None, db if need_b else None) + rest
        bwd = _kernel(x, "batch_norm_backward", "batch_norm")
        mean, invstd = ctx.stats
        dx, dw, db = bwd(
            g.data, x.data, _data(weight), mean, invstd, ctx.training, (need[0], need_w, need_b)
        )
        return (_wrap(dx), _wrap(dw), _wrap(db)) + rest


def _bn_axes(x: Tensor) -> tuple:
    return (0,) + tuple(range(2, x.ndim))


def _batch_norm_backward_composed(ctx, g, x, weight):
    """The three gradients of batch_norm written in Tensor ops (used under create_graph)."""
    ax = _bn_axes(x)
    cshape = (1, x.shape[1]) + (1,) * (x.ndim - 2)
    if ctx.training:
        mu = x.mean(dim=ax, keepdim=True)
        xc = x - mu
        invstd = ((xc * xc).mean(dim=ax, keepdim=True) + ctx.eps) ** -0.5
    else:
        mean, invstd_a = ctx.stats
        xc = x - Tensor(mean.reshape(cshape))
        invstd = Tensor(invstd_a.reshape(cshape))
    xhat = xc * invstd
    gw = g * weight.reshape(cshape) if weight is not None else g
    if ctx.training:
        gm = gw.mean(dim=ax, keepdim=True)
        gxm = (gw * xhat).mean(dim=ax, keepdim=True)
        dx = invstd * (gw - gm - xhat * gxm)
    else:
        dx = gw * invstd
    return dx, (g * xhat).sum(dim=ax), g.sum(dim=ax)


def batch_norm(
    input: Tensor,
    running_mean: Optional[Tensor],
    running_var: Optional[Tensor],
    weight: Optional[Tensor] = None,
    bias: Optional[Tensor] = None,
    training: bool = False,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> Tensor:
    """Batch normalization over (N, C, ...) per channel C (torch.nn.functional.batch_norm).

    training: batch mean / biased variance normalize; running_mean / running_var (if given)
    are updated in place with ``momentum`` and the unbiased variance. Otherwise the running
    statistics normalize (they are then required).
    """
    op = "batch_norm"
    _check_input(op, input, 2)
    C = _check_channel_params(op, input, running_mean, running_var, weight, bias)
    if not training and running_mean is None:
        raise ValueError(f"[{op}] running_mean and running_var must be given when training=False")
    if not isinstance(momentum, numbers.Real) or isinstance(momentum, bool):
        raise TypeError(f"[{op}] momentum must be a float, got {type(momentum).__name__}")
    if training:
        per_channel = input.numel() // max(C, 1)
        if per_channel <= 1:
            raise ValueError(
                f"[{op}] Expected more than 1 value per channel when training, got input size "
                f"{tuple(input.shape)}"
            )
    for t in (running_mean, running_var):
        if t is not None and t.requires_grad:
            raise ValueError(f"[{op}] running statistics must not require grad")
        if t is not None and not t.is_contiguous():
            raise ValueError(f"[{op}] running statistics must be contiguous")
    x = input if input.is_contiguous() else input.contiguous()
    return BatchNorm.apply(
        x, weight, bias, running_mean, running_var, bool(training), float(momentum), float(eps)
    )


# ----------------------------------------------------------------------------- layer_norm


class LayerNorm(Function):
    """y = layer_norm(x) over the trailing k dims (x viewed as (M, N))."""

    @staticmethod
    def forward(ctx, x, weight, bias, k, eps):
        fwd = _kernel(x, "layer_norm_forward", "layer_norm")
        n = int(np.prod(x.shape[x.ndim - k :], dtype=np.int64))
        m = x.numel() // n if n else int(np.prod(x.shape[: x.ndim - k], dtype=np.int64))
        x2 = x.data.reshape(m, n)
        w = None if weight is None else weight.data.reshape(n)
        b = None if bias is None else bias.data.reshape(n)
        y, mean, rstd = fwd(x2, w, b, eps)
        ctx.save_for_backward(x, weight, bias)
        ctx.stats = (mean, rstd)
        ctx.k, ctx.eps, ctx.mn = k, eps, (m, n)
        return Tensor(y.reshape(x.shape))

    @staticmethod
    def backward(ctx, g):
        x, weight, bias = ctx.saved_tensors
        need = ctx.needs_input_grad
        need_w = need[1] and weight is not None
        need_b = need[2] and bias is not None
        if is_grad_enabled():
            dx, dw, db = _layer_norm_backward_composed(g, x, weight, ctx.k, ctx.eps)
            dx = dx if need[0] else None
            return dx, dw if need_w else None, db if need_b else None, None, None
        bwd = _kernel(x, "layer_norm_backward", "layer_norm")
        m, n = ctx.mn
        mean, rstd = ctx.stats
        w = None if weight is None else weight.data.reshape(n)
        dx, dw, db = bwd(
            g.data.reshape(m, n), x.data.reshape(m, n), w, mean, rstd, (need[0], need_w, need_b)
        )
        pshape = x.shape[x.ndim - ctx.k :]
        return (
            None if dx is None else Tensor(dx.reshape(x.shape)),
            None if dw is None else Tensor(dw.reshape(pshape)),
            None if db is None else Tensor(db.reshape(pshape)),
            None,
            None,
        )


def _layer_norm_backward_composed(g, x, weight, k, eps):
    dims = tuple(range(x.ndim - k, x.ndim))
    lead = tuple(range(x.ndim - k))
    mu = x.mean(dim=dims, keepdim=True)
    xc = x - mu
    rstd = ((xc * xc).mean(dim=dims, keepdim=True) + eps) ** -0.5
    xhat = xc * rstd
    gw = g * weight if weight is not None else g
    gm = gw.mean(dim=dims, keepdim=True)
    gxm = (gw * xhat).mean(dim=dims, keepdim=True)
    dx = rstd * (gw - gm - xhat * gxm)
    dw = (g * xhat).sum(dim=lead) if lead else g * xhat
    db = g.sum(dim=lead) if lead else g
    return dx, dw, db


def layer_norm(
    input: Tensor,
    normalized_shape: Union[int, Sequence[int]],
    weight: Optional[Tensor] = None,
    bias: Optional[Tensor] = None,
    eps: float = 1e-5,
) -> Tensor:
    """Layer normalization over the trailing ``normalized_shape`` dims
    (torch.nn.functional.layer_norm); weight and bias have shape normalized_shape."""
    op = "layer_norm"
    _check_input(op, input, 0)
    if isinstance(normalized_shape, numbers.Integral):
        normalized_shape = (int(normalized_shape),)
    try:
        shape = tuple(int(s) for s in normalized_shape)
    except TypeError:
        raise TypeError(
            f"[{op}] normalized_shape must be an int or a sequence of ints, got "
            f"{normalized_shape!r}"
        ) from None
    k = len(shape)
    if k == 0:
        raise ValueError(f"[{op}] normalized_shape must have at least one dimension")
    if input.ndim < k or tuple(input.shape[input.ndim - k :]) != shape:
        raise ValueError(
            f"[{op}] input of shape {tuple(input.shape)} does not end with normalized_shape {shape}"
        )
    _check_param(op, "weight", weight, input, shape)
    _check_param(op, "bias", bias, input, shape)
    x = input if input.is_contiguous() else input.contiguous()
    return LayerNorm.apply(x, weight, bias, k, float(eps))


# ----------------------------------------------------------------------------- group / instance


def _channel_affine(y: Tensor, weight: Optional[Tensor], bias: Optional[Tensor]) -> Tensor:
    """y * weight[c] + bias[c] over the channel axis 1 of y (N, C, *)."""
    cshape = (1, y.shape[1]) + (1,) * (y.ndim - 2)
    if weight is not None:
        y = y * weight.reshape(cshape)
    if bias is not None:
        y = y + bias.reshape(cshape)
    return y


def _normalize_groups(x: Tensor, groups: int, eps: float) -> Tensor:
    """Each (sample, group of channels) of x (N, C, *) normalized over its channels and positions
    (mean, biased variance): the layer_norm kernel on the (N, G, C/G * prod(*)) view."""
    n = x.shape[0]
    per_group = int(np.prod(x.shape[1:], dtype=np.int64)) // groups
    x = x if x.is_contiguous() else x.contiguous()
    y = LayerNorm.apply(x.reshape(n, groups, per_group), None, None, 1, float(eps))
    return y.reshape(x.shape)


def group_norm(
    input: Tensor,
    num_groups: int,
    weight: Optional[Tensor] = None,
    bias: Optional[Tensor] = None,
    eps: float = 1e-5,
) -> Tensor:
    """Group normalization (torch.nn.functional.group_norm): the C channels of input (N, C, *)
    form num_groups groups; each (sample, group) is normalized over its channels and positions
    with the mean and the biased variance, then scaled and shifted per channel by weight and
    bias (C,). The statistics come from the layer_norm kernel; the affine is one broadcast."""
    op = "group_norm"
    _check_input(op, input, 2)
    if isinstance(num_groups, bool) or not isinstance(num_groups, numbers.Integral):
        raise TypeError(f"[{op}] num_groups must be an int, got {type(num_groups).__name__}")
    c = input.shape[1]
    if num_groups < 1 or c % num_groups != 0:
        raise ValueError(
            f"[{op}] num_groups must be positive and divide the {c} channels, got {num_groups}"
        )
    _check_param(op, "weight", weight, input, (c,))
    _check_param(op, "bias", bias, input, (c,))
    return _channel_affine(_normalize_groups(input, int(num_groups), eps), weight, bias)


def instance_norm(
    input: Tensor,
    running_mean: Optional[Tensor] = None,
    running_var: Optional[Tensor] = None,
    weight: Optional[Tensor] = None,
    bias: Optional[Tensor] = None,
    use_input_stats: bool = True,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> Tensor:
    """Instance normalization (torch.nn.functional.instance_norm): each (sample, channel) of
    input (N, C, *) normalized over its positions, then weight / bias (C,) per channel. With
    use_input_stats and running statistics given, those move by momentum towards the batch
    average of the per-instance means and unbiased variances (in place); without
    use_input_stats the running statistics normalize instead (as batch_norm in eval)."""
    op = "instance_norm"
    _check_input(op, input, 3)
    c = _check_channel_params(op, input, running_mean, running_var, weight, bias)
    if not use_input_stats:
        if running_mean is None:
            raise ValueError(f"[{op}] use_input_stats=False needs running_mean and running_var")
        x = input if input.is_contiguous() else input.contiguous()
        return BatchNorm.apply(
            x, weight, bias, running_mean, running_var, False, float(momentum), float(eps)
        )
    spatial = int(np.prod(input.shape[2:], dtype=np.int64))
    if spatial <= 1:
        raise ValueError(
            f"[{op}] expected more than 1 spatial element when using input statistics, got "
            f"input of shape {tuple(input.shape)}"
        )
    if running_mean is not None and input.shape[0] > 0:
        with no_grad():
            xi = input.data.reshape(input.shape[0], c, spatial)
            m = float(momentum)
            mean = xi.mean(axis=2).mean(axis=0)
            var = xi.var(axis=2, ddof=1).mean(axis=0)
            running_mean.data[...] = (1 - m) * running_mean.data + m * mean
            running_var.data[...] = (1 - m) * running_var.data + m * var
    return _channel_affine(_normalize_groups(input, c, eps), weight, bias)
