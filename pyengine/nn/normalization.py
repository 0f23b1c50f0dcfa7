"""BatchNorm1d/2d/3d, LayerNorm, GroupNorm, InstanceNorm1d/2d/3d (torch.nn's names, defaults,
buffers).

BatchNorm keeps the buffers running_mean, running_var and num_batches_tracked; in training it
normalizes with the batch statistics and the kernel updates the running ones in place
(momentum=None: cumulative average, momentum = 1 / num_batches_tracked, as torch). In eval, or
with track_running_stats=False, behaviour is torch's.
"""

from __future__ import annotations

import numbers
from typing import Optional, Sequence, Union

import numpy as np

from .. import _dtype
from .. import functional as F
from ..autograd import no_grad
from ..tensor import Tensor, _parse_device, empty, ones, tensor, zeros
from .module import Module, Parameter

__all__ = [
    "BatchNorm1d",
    "BatchNorm2d",
    "BatchNorm3d",
    "LayerNorm",
    "GroupNorm",
    "InstanceNorm1d",
    "InstanceNorm2d",
    "InstanceNorm3d",
]


def _factory(device, dtype) -> dict:
    dt = _dtype.to_dtype(dtype) or _dtype.get_default_dtype()
    if dt.kind != "f":
        raise TypeError(f"[nn] parameters must be floating point, got dtype={dt}")
    return {"device": _parse_device(device), "dtype": dt}


class _NormBase(Module):
    """Per-channel affine parameters and running statistics shared by BatchNorm and InstanceNorm
    (torch's _NormBase): weight ones and bias zeros when affine; running_mean, running_var and
    num_batches_tracked buffers when track_running_stats."""

    def __init__(
        self,
        num_features: int,
        eps: float,
        momentum: Optional[float],
        affine: bool,
        track_running_stats: bool,
        device,
        dtype,
    ) -> None:
        super().__init__()
        name = type(self).__name__
        if not isinstance(num_features, numbers.Integral) or num_features < 1:
            raise ValueError(f"[{name}] num_features must be a positive int, got {num_features!r}")
        fk = _factory(device, dtype)
        self.num_features = int(num_features)
        self.eps = eps
        self.momentum = momentum
        self.affine = affine
        self.track_running_stats = track_running_stats
        if affine:
            self.weight = Parameter(empty(num_features, **fk))
            self.bias = Parameter(empty(num_features, **fk))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        if track_running_stats:
            self.register_buffer("running_mean", zeros(num_features, **fk))
            self.register_buffer("running_var", ones(num_features, **fk))
            self.register_buffer(
                "num_batches_tracked", tensor(0, dtype=np.int64, device=fk["device"])
            )
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)
        self.reset_parameters()

    def reset_running_stats(self) -> None:
        if self.track_running_stats:
            with no_grad():
                self.running_mean.zero_()
                self.running_var.fill_(1)
                self.num_batches_tracked.zero_()

    def reset_parameters(self) -> None:
        self.reset_running_stats()
        if self.affine:
            with no_grad():
                self.weight.fill_(1)
                self.bias.zero_()

    def _momentum_step(self) -> float:
        """The momentum of this forward; counts the batch when training with running stats
        (momentum=None: cumulative average, 1 / num_batches_tracked, as torch)."""
        factor = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats:
            self.num_batches_tracked.data[...] += 1
            if self.momentum is None:
                factor = 1.0 / float(self.num_batches_tracked.item())
        return factor

    def extra_repr(self) -> str:
        return (
            f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
            f"affine={self.affine}, track_running_stats={self.track_running_stats}"
        )


class _BatchNorm(_NormBase):
    _ndims: tuple = ()

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: Optional[float] = 0.1,
        affine: bool = True,
        track_running_stats: bool = True,
        device=None,
        dtype=None,
    ) -> None:
        super().__init__(num_features, eps, momentum, affine, track_running_stats, device, dtype)

    def _check_input_dim(self, input: Tensor) -> None:
        if not isinstance(input, Tensor):
            raise TypeError(f"[{type(self).__name__}] input must be a Tensor")
        if input.ndim not in self._ndims:
            want = " or ".join(f"{n}D" for n in self._ndims)
            raise ValueError(
                f"[{type(self).__name__}] expected {want} input (got {input.ndim}D input)"
            )

    def forward(self, input: Tensor) -> Tensor:
        self._check_input_dim(input)
        factor = self._momentum_step()
        bn_training = self.training or (self.running_mean is None and self.running_var is None)
        use_stats = not self.training or self.track_running_stats
        return F.batch_norm(
            input,
            self.running_mean if use_stats else None,
            self.running_var if use_stats else None,
            self.weight,
            self.bias,
            bn_training,
            factor,
            self.eps,
        )


class BatchNorm1d(_BatchNorm):
    """Batch normalization of (N, C) or (N, C, L) input over N (and L), per channel."""

    _ndims = (2, 3)


class BatchNorm2d(_BatchNorm):
    """Batch normalization of (N, C, H, W) input over N, H, W, per channel."""

    _ndims = (4,)


class BatchNorm3d(_BatchNorm):
    """Batch normalization of (N, C, D, H, W) input over N, D, H, W, per channel."""

    _ndims = (5,)


class LayerNorm(Module):
    """Layer normalization over the trailing normalized_shape dims, with an optional
    elementwise affine transform (weight ones, bias zeros at init)."""

    def __init__(
        self,
        normalized_shape: Union[int, Sequence[int]],
        eps: float = 1e-5,
        elementwise_affine: bool = True,
        bias: bool = True,
        device=None,
        dtype=None,
    ) -> None:
        super().__init__()
        if isinstance(normalized_shape, numbers.Integral):
            normalized_shape = (int(normalized_shape),)
        self.normalized_shape = tuple(int(s) for s in normalized_shape)
        if any(s < 0 for s in self.normalized_shape):
            raise ValueError(
                f"[LayerNorm] normalized_shape must hold non-negative sizes, got "
                f"{self.normalized_shape}"
            )
        self.eps = eps
        self.elementwise_affine = elementwise_affine
        fk = _factory(device, dtype)
        if elementwise_affine:
            self.weight = Parameter(empty(*self.normalized_shape, **fk))
            if bias:
                self.bias = Parameter(empty(*self.normalized_shape, **fk))
            else:
                self.register_parameter("bias", None)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        with no_grad():
            if self.weight is not None:
                self.weight.fill_(1)
            if self.bias is not None:
                self.bias.zero_()

    def forward(self, input: Tensor) -> Tensor:
        return F.layer_norm(input, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return (
            f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}"
        )


class GroupNorm(Module):
    """Group normalization over groups of channels of (N, C, *) input (torch.nn.GroupNorm):
    per-channel affine weight (ones) and bias (zeros) when affine."""

    def __init__(
        self,
        num_groups: int,
        num_channels: int,
        eps: float = 1e-5,
        affine: bool = True,
        device=None,
        dtype=None,
    ) -> None:
        super().__init__()
        for name, v in (("num_groups", num_groups), ("num_channels", num_channels)):
            if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 1:
                raise ValueError(f"[GroupNorm] {name} must be a positive int, got {v!r}")
        if num_channels % num_groups != 0:
            raise ValueError(
                f"[GroupNorm] num_channels ({num_channels}) must be divisible by num_groups "
                f"({num_groups})"
            )
        fk = _factory(device, dtype)
        self.num_groups = int(num_groups)
        self.num_channels = int(num_channels)
        self.eps = eps
        self.affine = affine
        if affine:
            self.weight = Parameter(empty(num_channels, **fk))
            self.bias = Parameter(empty(num_channels, **fk))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        if self.affine:
            with no_grad():
                self.weight.fill_(1)
                self.bias.zero_()

    def forward(self, input: Tensor) -> Tensor:
        return F.group_norm(input, self.num_groups, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return f"{self.num_groups}, {self.num_channels}, eps={self.eps}, affine={self.affine}"


class _InstanceNorm(_NormBase):
    _ndim: int = 0  # dims of a batched input; one fewer is an unbatched input

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: Optional[float] = 0.1,
        affine: bool = False,
        track_running_stats: bool = False,
        device=None,
        dtype=None,
    ) -> None:
        super().__init__(num_features, eps, momentum, affine, track_running_stats, device, dtype)

    def forward(self, input: Tensor) -> Tensor:
        name = type(self).__name__
        if not isinstance(input, Tensor):
            raise TypeError(f"[{name}] input must be a Tensor")
        if input.ndim not in (self._ndim - 1, self._ndim):
            raise ValueError(
                f"[{name}] expected {self._ndim - 1}D (unbatched) or {self._ndim}D input "
                f"(got {input.ndim}D input)"
            )
        unbatched = input.ndim == self._ndim - 1
        x = input.unsqueeze(0) if unbatched else input
        if (self.affine or self.track_running_stats) and x.shape[1] != self.num_features:
            raise ValueError(
                f"[{name}] expected {self.num_features} channels, got input of shape "
                f"{tuple(input.shape)}"
            )
        use_input_stats = self.training or not self.track_running_stats
        factor = self._momentum_step()
        y = F.instance_norm(
            x,
            self.running_mean,
            self.running_var,
            self.weight,
            self.bias,
            use_input_stats,
            factor,
            self.eps,
        )
        return y.squeeze(0) if unbatched else y


class InstanceNorm1d(_InstanceNorm):
    """Instance normalization of (N, C, L) or unbatched (C, L) input over L, per channel."""

    _ndim = 3


class InstanceNorm2d(_InstanceNorm):
    """Instance normalization of (N, C, H, W) or unbatched (C, H, W) input over H, W."""

    _ndim = 4


class InstanceNorm3d(_InstanceNorm):
    """Instance normalization of (N, C, D, H, W) or unbatched (C, D, H, W) input over D, H, W."""

    _ndim = 5
