"""Conv1d, Conv2d and ConvTranspose2d (torch.nn's names, weight shapes, defaults and init)."""

from __future__ import annotations

import math
from typing import Optional, Sequence, Union

from .. import _dtype
from .. import functional as F
from ..tensor import Tensor, _parse_device, empty
from . import init
from .module import Module, Parameter

__all__ = ["Conv1d", "Conv2d", "ConvTranspose2d"]


def _ntuple(v, n: int, name: str, op: str) -> tuple:
    if isinstance(v, int) and not isinstance(v, bool):
        return (v,) * n
    if isinstance(v, (tuple, list)) and len(v) == n and all(isinstance(e, int) for e in v):
        return tuple(v)
    raise TypeError(f"[{op}] {name} must be an int or a tuple of {n} ints, got {v!r}")


def _factory(device, dtype, op: str) -> dict:
    dt = _dtype.to_dtype(dtype) or _dtype.get_default_dtype()
    if dt.kind != "f":
        raise TypeError(f"[{op}] parameters must be floating point, got dtype={dt}")
    return {"device": _parse_device(device), "dtype": dt}


class _ConvNd(Module):
    """Shared by the conv layers: arguments, parameters, torch's init, repr."""

    _op = "ConvNd"
    _transposed = False

    def _conv_forward(self, conv, input: Tensor) -> Tensor:
        """conv(input, ...) with this layer's arguments; a padding_mode other than 'zeros'
        pads explicitly first, then runs an unpadded conv, as torch does."""
        padding = self.padding
        if self.padding_mode != "zeros":
            input = F.pad(input, self._reversed_padding_repeated_twice, mode=self.padding_mode)
            padding = 0
        return conv(input, self.weight, self.bias, self.stride, padding, self.dilation, self.groups)

    def __init__(
        self,
        in_channels,
        out_channels,
        kernel_size,
        stride,
        padding,
        dilation,
        groups,
        bias,
        padding_mode,
        output_padding,
        n,
        device,
        dtype,
    ) -> None:
        super().__init__()
        op = self._op
        for name, v in (("in_channels", in_channels), ("out_channels", out_channels)):
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ValueError(f"[{op}] {name} must be a positive int, got {v!r}")
        if not isinstance(groups, int) or isinstance(groups, bool) or groups < 1:
            raise ValueError(f"[{op}] groups must be a positive int, got {groups!r}")
        if in_channels % groups:
            raise ValueError(
                f"[{op}] in_channels ({in_channels}) must be divisible by groups ({groups})"
            )
        if out_channels % groups:
            raise ValueError(
                f"[{op}] out_channels ({out_channels}) must be divisible by groups ({groups})"
            )
        kernel_size = _ntuple(kernel_size, n, "kernel_size", op)
        stride = _ntuple(stride, n, "stride", op)
        dilation = _ntuple(dilation, n, "dilation", op)
        if isinstance(padding, str):
            if padding not in ("same", "valid"):
                raise ValueError(
                    f"[{op}] padding must be 'same', 'valid', an int or a tuple, got {padding!r}"
                )
            if self._transposed:
                raise ValueError(f"[{op}] padding must be an int or a tuple, got {padding!r}")
            if padding == "same" and any(s != 1 for s in stride):
                raise ValueError(f"[{op}] padding='same' is not supported for strided convolutions")
        else:
            padding = _ntuple(padding, n, "padding", op)
        valid_modes = (
            ("zeros",) if self._transposed else ("zeros", "reflect", "replicate", "circular")
        )
        if padding_mode not in valid_modes:
            raise ValueError(
                f"[{op}] padding_mode must be one of {valid_modes}, got {padding_mode!r}"
            )
        output_padding = _ntuple(output_padding, n, "output_padding", op)
        for name, v, low in (
            ("kernel_size", kernel_size, 1),
            ("stride", stride, 1),
            ("dilation", dilation, 1),
            ("padding", () if isinstance(padding, str) else padding, 0),
            ("output_padding", output_padding, 0),
        ):
            if any(e < low for e in v):
                kind = "positive" if low else "non-negative"
                raise ValueError(f"[{op}] {name} must be {kind}, got {v}")
        if any(o >= max(s, d) for o, s, d in zip(output_padding, stride, dilation)):
            raise ValueError(
                f"[{op}] output_padding {output_padding} must be smaller than max(stride, "
                f"dilation) per dim (stride {stride}, dilation {dilation})"
            )
        fk = _factory(device, dtype, op)
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = kernel_size
        self.stride = stride
        self.padding = padding
        self.dilation = dilation
        self.transposed = self._transposed
        self.output_padding = output_padding
        self.groups = groups
        self.padding_mode = padding_mode
        # torch's layout for F.pad (last dim first), used when padding_mode != 'zeros'
        if isinstance(padding, str):
            lo_hi = [
                (d * (k - 1) // 2, d * (k - 1) - d * (k - 1) // 2) if padding == "same" else (0, 0)
                for d, k in zip(dilation, kernel_size)
            ]
        else:
            lo_hi = [(p, p) for p in padding]
        self._reversed_padding_repeated_twice = [v for lh in reversed(lo_hi) for v in lh]
        if self._transposed:
            wshape = (in_channels, out_channels // groups) + kernel_size
        else:
            wshape = (out_channels, in_channels // groups) + kernel_size
        self.weight = Parameter(empty(*wshape, **fk))
        if bias:
            self.bias = Parameter(empty(out_channels, **fk))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """torch's init: W ~ kaiming_uniform_(a=sqrt(5)); b ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in))
        with fan_in = weight.size(1) * prod(kernel_size)."""
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in = self.weight.shape[1] * math.prod(self.kernel_size)
            bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
            init.uniform_(self.bias, -bound, bound)

    def extra_repr(self) -> str:
        n = len(self.kernel_size)
        s = (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"stride={self.stride}"
        )
        if self.padding != (0,) * n:
            s += f", padding={self.padding}"  # torch prints 'same' unquoted too
        if self.dilation != (1,) * n:
            s += f", dilation={self.dilation}"
        if self.output_padding != (0,) * n:
            s += f", output_padding={self.output_padding}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        if self.padding_mode != "zeros":
            s += f", padding_mode={self.padding_mode}"
        return s


class Conv2d(_ConvNd):
    """2-D convolution over (N, C, H, W) or (C, H, W); weight (out, in/groups, kh, kw)."""

    _op = "Conv2d"

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: Union[int, tuple],
        stride: Union[int, tuple] = 1,
        padding: Union[int, tuple, str] = 0,
        dilation: Union[int, tuple] = 1,
        groups: int = 1,
        bias: bool = True,
        padding_mode: str = "zeros",
        device=None,
        dtype=None,
    ) -> None:
        super().__init__(
            in_channels,
            out_channels,
            kernel_size,
            stride,
            padding,
            dilation,
            groups,
            bias,
            padding_mode,
            0,
            2,
            device,
            dtype,
        )

    def forward(self, input: Tensor) -> Tensor:
        return self._conv_forward(F.conv2d, input)


class Conv1d(_ConvNd):
    """1-D convolution over (N, C, L) or (C, L); weight (out, in/groups, k)."""

    _op = "Conv1d"

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: Union[int, tuple],
        stride: Union[int, tuple] = 1,
        padding: Union[int, tuple, str] = 0,
        dilation: Union[int, tuple] = 1,
        groups: int = 1,
        bias: bool = True,
        padding_mode: str = "zeros",
        device=None,
        dtype=None,
    ) -> None:
        super().__init__(
            in_channels,
            out_channels,
            kernel_size,
            stride,
            padding,
            dilation,
            groups,
            bias,
            padding_mode,
            0,
            1,
            device,
            dtype,
        )

    def forward(self, input: Tensor) -> Tensor:
        return self._conv_forward(F.conv1d, input)


class ConvTranspose2d(_ConvNd):
    """Transposed 2-D convolution; weight (in, out/groups, kh, kw), as torch."""

    _op = "ConvTranspose2d"
    _transposed = True

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: Union[int, tuple],
        stride: Union[int, tuple] = 1,
        padding: Union[int, tuple] = 0,
        output_padding: Union[int, tuple] = 0,
        groups: int = 1,
        bias: bool = True,
        dilation: Union[int, tuple] = 1,
        padding_mode: str = "zeros",
        device=None,
        dtype=None,
    ) -> None:
        super().__init__(
            in_channels,
            out_channels,
            kernel_size,
            stride,
            padding,
            dilation,
            groups,
            bias,
            padding_mode,
            output_padding,
            2,
            device,
            dtype,
        )

    def _output_padding(self, input: Tensor, output_size: Optional[Sequence[int]]) -> tuple:
        """torch's rule: output_size (the last 2 entries) picks output_padding in
        [0, stride) per dim."""
        if output_size is None:
            return self.output_padding
        output_size = tuple(int(s) for s in output_size)[-2:]
        if len(output_size) != 2:
            raise ValueError(
                f"[{self._op}] output_size must have 2 or 4 entries, got {output_size}"
            )
        out = []
        for i, want in enumerate(output_size):
            n = input.shape[input.ndim - 2 + i]
            lo = (
                (n - 1) * self.stride[i]
                - 2 * self.padding[i]
                + self.dilation[i] * (self.kernel_size[i] - 1)
                + 1
            )
            hi = lo + self.stride[i] - 1
            if not lo <= want <= hi:
                raise ValueError(
                    f"[{self._op}] requested an output size of {output_size}, but valid sizes "
                    f"range from {lo} to {hi} in dim {i} (for an input of {tuple(input.shape)})"
                )
            out.append(want - lo)
        return tuple(out)

    def forward(self, input: Tensor, output_size: Optional[Sequence[int]] = None) -> Tensor:
        return F.conv_transpose2d(
            input,
            self.weight,
            self.bias,
            self.stride,
            self.padding,
            self._output_padding(input, output_size),
            self.groups,
            self.dilation,
        )
