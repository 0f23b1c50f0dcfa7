"""softmax, log_softmax, cross_entropy and nll_loss over the kernels of csrc/cpu/softmax.h.

softmax / log_softmax: one forward kernel, one backward kernel from the saved output.
cross_entropy: one fused kernel computes the per-sample losses and d loss / d logits together;
backward only scales the saved dlogits by the incoming gradient (and 1 / the mean's divisor).
nll_loss: a gather forward and a scatter backward.

Under ``create_graph=True`` every backward is written in Tensor ops instead (softmax is
recomputed through the differentiable Function), so second-order gradients work.

Semantics are torch's: 'mean' with class weights divides by the sum of the weights of the
non-ignored targets (NaN when every target is ignored); label_smoothing mixes the target with
the uniform distribution; probability targets' 'mean' divides by the number of samples.
"""

from __future__ import annotations

import numbers
import warnings
from typing import Optional

import numpy as np

from ..autograd import Function, is_grad_enabled
from ..tensor import Tensor
from .norm import _kernel

__all__ = ["softmax", "log_softmax", "cross_entropy", "nll_loss"]

_REDUCTIONS = ("none", "mean", "sum")


def _check_float_input(op: str, x) -> None:
    if not isinstance(x, Tensor):
        raise TypeError(f"[{op}] input must be a Tensor, got {type(x).__name__}")
    if x.dtype.kind != "f" or x.dtype.itemsize not in (4, 8):
        raise TypeError(f"[{op}] input must be float32 or float64 but is {x.dtype}")


def _norm_dim(op: str, dim, ndim: int) -> int:
    if not isinstance(dim, numbers.Integral) or isinstance(dim, bool):
        raise TypeError(f"[{op}] dim must be an int, got {type(dim).__name__}")
    lo, hi = (-1, 0) if ndim == 0 else (-ndim, ndim - 1)
    if not lo <= dim <= hi:
        raise ValueError(
            f"[{op}] dim {dim} is out of range for a tensor of {ndim} dimensions "
            f"(expected [{lo}, {hi}])"
        )
    return int(dim) % max(ndim, 1)


def _legacy_dim(op: str, ndim: int) -> int:
    warnings.warn(
        f"[{op}] Implicit dimension choice for {op} has been deprecated (as in torch); "
        "pass dim explicitly",
        stacklevel=3,
    )
    return 0 if ndim in (0, 1, 3) else 1


# ----------------------------------------------------------------------------- softmax


class Softmax(Function):
    """softmax (log=False) or log_softmax (log=True) over dim."""

    @staticmethod
    def forward(ctx, x, dim, log):
        fwd = _kernel(x, "softmax_forward", "log_softmax" if log else "softmax")
        y = fwd(x.data, dim, log).reshape(x.shape)  # 0-d: the binding's array is (1,)
        ctx.save_for_backward(x)
        ctx.y, ctx.dim, ctx.log = y, dim, log
        return Tensor(y)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        dim, log = ctx.dim, ctx.log
        if is_grad_enabled():  # create_graph: Tensor ops (softmax recomputed, differentiable)
            p = Softmax.apply(x, dim, False)
            if log:
                return g - p * g.sum(dim=dim, keepdim=True), None, None
            return p * (g - (g * p).sum(dim=dim, keepdim=True)), None, None
        bwd = _kernel(x, "softmax_backward", "log_softmax" if log else "softmax")
        return Tensor(bwd(ctx.y, g.data, dim, log).reshape(x.shape)), None, None


def _softmax(op: str, input, dim, dtype, log: bool) -> Tensor:
    _check_float_input(op, input)
    if dtype is not None:
        input = input.to(dtype)
        _check_float_input(op, input)
    d = _legacy_dim(op, input.ndim) if dim is None else _norm_dim(op, dim, input.ndim)
    x = input if input.is_contiguous() else input.contiguous()
    return Softmax.apply(x, d, log)


def softmax(input: Tensor, dim: Optional[int] = None, _stacklevel: int = 3, dtype=None) -> Tensor:
    """exp(x) / sum(exp(x)) over dim (torch.nn.functional.softmax)."""
    return _softmax("softmax", input, dim, dtype, False)


def log_softmax(
    input: Tensor, dim: Optional[int] = None, _stacklevel: int = 3, dtype=None
) -> Tensor:
    """x - logsumexp(x) over dim (torch.nn.functional.log_softmax)."""
    return _softmax("log_softmax", input, dim, dtype, True)


# ----------------------------------------------------------------------------- losses


def _reduction(op: str, size_average, reduce, reduction: str) -> str:
    if size_average is not None or reduce is not None:  # torch's legacy arguments
        size_average = True if size_average is None else size_average
        reduce = True if reduce is None else reduce
        reduction = ("mean" if size_average else "sum") if reduce else "none"
    if reduction not in _REDUCTIONS:
        raise ValueError(f"[{op}] reduction must be 'none', 'mean' or 'sum' but is {reduction!r}")
    return reduction


def _check_weight(op: str, weight, x: Tensor, C: int) -> None:
    if weight is None:
        return
    if not isinstance(weight, Tensor):
        raise TypeError(f"[{op}] weight must be a Tensor or None, got {type(weight).__name__}")
    if weight.device != x.device:
        raise RuntimeError(f"[{op}] weight is on {weight.device} but input on {x.device}")
    if weight.dtype != x.dtype:
        raise TypeError(f"[{op}] weight has dtype {weight.dtype} but input has {x.dtype}")
    if tuple(weight.shape) != (C,):
        raise ValueError(
            f"[{op}] weight must have shape ({C},) (one per class) but has {tuple(weight.shape)}"
        )


def _check_class_target(op: str, target: Tensor, x: Tensor) -> None:
    if target.dtype != np.int64:
        raise TypeError(f"[{op}] class-index target must be int64 but is {target.dtype}")
    want = (x.shape[0],) + tuple(x.shape[2:])
    if tuple(target.shape) != want:
        raise ValueError(
            f"[{op}] target has shape {tuple(target.shape)} but input {tuple(x.shape)} needs a "
            f"class-index target of shape {want}"
        )


def _sample_view(a, x_ndim: int):
    """A per-sample array (N, d...) viewed to broadcast against (N, C, d...)."""
    return a.reshape((a.shape[0], 1) + a.shape[1:]) if x_ndim >= 2 else a


class CrossEntropy(Function):
    """Fused cross_entropy: forward computes the losses and dlogits in one kernel."""

    @staticmethod
    def forward(ctx, x, target, weight, ignore_index, label_smoothing, reduction, need_grad):
        fwd = _kernel(x, "cross_entropy_forward", "cross_entropy")
        w = None if weight is None else weight.data
        loss, sw, dl = fwd(x.data, target.data, w, ignore_index, label_smoothing, need_grad)
        xp = x._xp
        probs = target.dtype.kind == "f"
        if reduction == "none":
            out, denom = loss, 1.0
        else:
            total = loss.sum(dtype=np.float64)
            denom = 1.0
            if reduction == "mean":
                denom = float(sw.sum(dtype=np.float64)) if not probs else float(loss.size)
            with np.errstate(invalid="ignore", divide="ignore"):
                out = xp.asarray(total / denom if denom != 0 else total * np.nan, dtype=x.dtype)
        ctx.save_for_backward(x, target, weight)
        ctx.dl = dl
        ctx.scale = 1.0 / denom if denom != 0 else 0.0  # all ignored: zero gradient (as torch)
        ctx.args = (ignore_index, label_smoothing, reduction)
        return Tensor(out)

    @staticmethod
    def backward(ctx, g):
        x, target, weight = ctx.saved_tensors
        ignore_index, eps, reduction = ctx.args
        need_x, need_t = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        probs = target.dtype.kind == "f"
        if reduction == "none":
            gs = g if x.ndim < 2 else g.reshape((g.shape[0], 1) + tuple(g.shape[1:]))
        else:
            gs = g * ctx.scale
        dx = dt = None
        if is_grad_enabled():
            if need_x:
                dx = _ce_dlogits_composed(x, target, weight, ignore_index, eps) * gs
            if need_t:
                dt = _ce_dtarget(x, weight, eps, gs)
            return dx, dt, None, None, None, None, None
        if need_x:
            if ctx.dl is None:
                raise RuntimeError("[cross_entropy] dlogits were not computed in forward")
            dx = Tensor(ctx.dl * gs.data.astype(x.dtype, copy=False))
        if need_t and probs:
            dt = _ce_dtarget(x, weight, eps, gs)
        return dx, dt, None, None, None, None, None


def _weight_view(weight: Optional[Tensor], x: Tensor):
    if weight is None:
        return None
    return weight.reshape((1, x.shape[1]) + (1,) * (x.ndim - 2))


def _ce_dtarget(x: Tensor, weight, eps: float, gs) -> Tensor:
    """d loss / d probability target = -(1 - eps) * w_c * log_softmax(x)_c * g."""
    logp = Softmax.apply(x, 1, True)
    wv = _weight_view(weight, x)
    d = logp * (-(1.0 - eps))
    if wv is not None:
        d = d * wv
    return d * gs


def _ce_dlogits_composed(x: Tensor, target: Tensor, weight, ignore_index, eps) -> Tensor:
    """d loss[s] / d x in Tensor ops (see csrc/cpu/softmax.h for the formulas)."""
    C = x.shape[1]
    p = Softmax.apply(x, 1, False)
    xp = x._xp
    wv = _weight_view(weight, x)
    if target.dtype.kind == "f":
        q = target * (1.0 - eps) + eps / C
        wq = q * wv if wv is not None else q
        return p * wq.sum(dim=1, keepdim=True) - wq
    t = target.data
    keep = t != ignore_index
    tt = xp.where(keep, t, 0)
    w = weight.data if weight is not None else xp.ones(C, dtype=x.dtype)
    wt = xp.where(keep, w[tt], 0).astype(x.dtype)
    wsum = float(w.sum(dtype=np.float64))
    k1 = ((1 - eps) * wt + eps * wsum / C * keep).astype(x.dtype)
    onehot = xp.arange(C).reshape((1, C) + (1,) * (x.ndim - 2)) == _sample_view(tt, x.ndim)
    k2 = (eps / C) * w.reshape((1, C) + (1,) * (x.ndim - 2)) * _sample_view(keep, x.ndim)
    k2 = k2 + (1 - eps) * onehot * _sample_view(wt, x.ndim)
    return p * Tensor(_sample_view(k1, x.ndim)) - Tensor(k2.astype(x.dtype))


def _as_batched(op: str, input: Tensor, target: Tensor, class_target: bool):
    """Unbatched input (C,) with target () or (C,) becomes a batch of one."""
    if input.ndim == 1:
        if class_target and target.ndim == 0:
            return input.unsqueeze(0), target.reshape(1), True
        if not class_target and target.ndim == 1:
            return input.unsqueeze(0), target.unsqueeze(0), True
        raise ValueError(
            f"[{op}] unbatched input of shape {tuple(input.shape)} needs a 0-d class-index "
            f"target or a probability target of the same shape, got {tuple(target.shape)}"
        )
    if input.ndim == 0:
        raise ValueError(f"[{op}] input must have at least 1 dimension (C,) or (N, C, ...)")
    return input, target, False


def cross_entropy(
    input: Tensor,
    target: Tensor,
    weight: Optional[Tensor] = None,
    size_average=None,
    ignore_index: int = -100,
    reduce=None,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
) -> Tensor:
    """Cross entropy of logits (N, C, d...) (or (C,)) against class indices (N, d...) (int64)
    or class probabilities (input's shape) (torch.nn.functional.cross_entropy)."""
    op = "cross_entropy"
    _check_float_input(op, input)
    if not isinstance(target, Tensor):
        raise TypeError(f"[{op}] target must be a Tensor, got {type(target).__name__}")
    if target.device != input.device:
        raise RuntimeError(f"[{op}] target is on {target.device} but input on {input.device}")
    reduction = _reduction(op, size_average, reduce, reduction)
    if not isinstance(label_smoothing, numbers.Real) or not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"[{op}] label_smoothing must be in [0, 1] but is {label_smoothing!r}")
    class_target = target.dtype.kind != "f"
    x, t, unbatched = _as_batched(op, input, target, class_target)
    _check_weight(op, weight, x, x.shape[1])
    if class_target:
        _check_class_target(op, t, x)
        if t.requires_grad:
            raise ValueError(f"[{op}] a class-index target cannot require grad")
    else:
        if t.dtype != x.dtype:
            raise TypeError(
                f"[{op}] probability target has dtype {t.dtype} but input has {x.dtype}"
            )
        if tuple(t.shape) != tuple(x.shape):
            raise ValueError(
                f"[{op}] probability target must have the input's shape {tuple(x.shape)} but "
                f"has {tuple(t.shape)}"
            )
    x = x if x.is_contiguous() else x.contiguous()
    t = t if t.is_contiguous() else t.contiguous()
    need_grad = bool(is_grad_enabled() and x.requires_grad)
    out = CrossEntropy.apply(
        x, t, weight, int(ignore_index), float(label_smoothing), reduction, need_grad
    )
    if unbatched and reduction == "none":
        out = out.reshape(())
    return out


class NllLoss(Function):
    @staticmethod
    def forward(ctx, x, target, weight, ignore_index, reduction):
        fwd = _kernel(x, "nll_loss_forward", "nll_loss")
        w = None if weight is None else weight.data
        loss, sw = fwd(x.data, target.data, w, ignore_index)
        xp = x._xp
        denom = 1.0
        if reduction == "none":
            out = loss
        else:
            total = loss.sum(dtype=np.float64)
            if reduction == "mean":
                denom = float(sw.sum(dtype=np.float64))
            with np.errstate(invalid="ignore", divide="ignore"):
                out = xp.asarray(total / denom if denom != 0 else total * np.nan, dtype=x.dtype)
        ctx.save_for_backward(x, target, weight)
        ctx.scale = 1.0 / denom if denom != 0 else 0.0
        ctx.args = (ignore_index, reduction)
        return Tensor(out)

    @staticmethod
    def backward(ctx, g):
        x, target, weight = ctx.saved_tensors
        ignore_index, reduction = ctx.args
        xp = x._xp
        if reduction == "none":
            gs = g
        else:
            gs = (g * ctx.scale).expand(*target.shape)
        if is_grad_enabled():  # create_graph: dx = mask * g, linear in g
            t = target.data
            keep = t != ignore_index
            tt = xp.where(keep, t, 0)
            w = weight.data if weight is not None else xp.ones(x.shape[1], dtype=x.dtype)
            C = x.shape[1]
            onehot = xp.arange(C).reshape((1, C) + (1,) * (x.ndim - 2)) == _sample_view(tt, x.ndim)
            mask = -(onehot * _sample_view(xp.where(keep, w[tt], 0), x.ndim)).astype(x.dtype)
            return Tensor(mask) * _sample_view_t(gs, x.ndim), None, None, None, None
        bwd = _kernel(x, "nll_loss_backward", "nll_loss")
        w = None if weight is None else weight.data
        gd = xp.ascontiguousarray(gs.data.astype(x.dtype, copy=False))
        return Tensor(bwd(x.data, target.data, w, ignore_index, gd)), None, None, None, None


def _sample_view_t(g: Tensor, x_ndim: int) -> Tensor:
    return g.reshape((g.shape[0], 1) + tuple(g.shape[1:])) if x_ndim >= 2 else g


def nll_loss(
    input: Tensor,
    target: Tensor,
    weight: Optional[Tensor] = None,
    size_average=None,
    ignore_index: int = -100,
    reduce=None,
    reduction: str = "mean",
) -> Tensor:
    """Negative log-likelihood of log-probabilities (N, C, d...) (or (C,)) at class indices
    (N, d...) (torch.nn.functional.nll_loss)."""
    op = "nll_loss"
    _check_float_input(op, input)
    if not isinstance(target, Tensor):
        raise TypeError(f"[{op}] target must be a Tensor, got {type(target).__name__}")
    if target.device != input.device:
        raise RuntimeError(f"[{op}] target is on {target.device} but input on {input.device}")
    reduction = _reduction(op, size_average, reduce, reduction)
    x, t, unbatched = _as_batched(op, input, target, True)
    _check_weight(op, weight, x, x.shape[1])
    _check_class_target(op, t, x)
    x = x if x.is_contiguous() else x.contiguous()
    t = t if t.is_contiguous() else t.contiguous()
    out = NllLoss.apply(x, t, weight, int(ignore_index), reduction)
    if unbatched and reduction == "none":
        out = out.reshape(())
    return out
