"""LSTM, GRU, LSTMCell and GRUCell (torch.nn's names, parameters, shapes and defaults).

Parameters are named as torch names them (weight_ih_l0, weight_hh_l0, bias_ih_l0, bias_hh_l0,
``_reverse`` for the second direction, l1, l2, ... for stacked layers), so a torch state dict
converted to NumPy loads with ``load_state_dict``. All are initialized U(-1/sqrt(H), 1/sqrt(H)).
The layers run in the fused kernels of pyengine/ops/lstm.py.
"""

from __future__ import annotations

import math
import numbers
import warnings
from typing import List, Optional

from .. import _dtype
from ..ops import lstm as _ops
from ..tensor import Tensor, _parse_device, empty, zeros
from . import init
from .module import Module, Parameter

__all__ = ["RNNBase", "LSTM", "GRU", "RNNCellBase", "LSTMCell", "GRUCell"]


def _factory(device, dtype) -> dict:
    dt = _dtype.to_dtype(dtype) or _dtype.get_default_dtype()
    if dt.kind != "f":
        raise TypeError(f"[nn] parameters must be floating point, got dtype={dt}")
    return {"device": _parse_device(device), "dtype": dt}


def _positive_int(op: str, name: str, v, minimum: int = 1) -> None:
    if not isinstance(v, numbers.Integral) or isinstance(v, bool) or v < minimum:
        raise ValueError(f"[{op}] {name} must be an int >= {minimum}, got {v!r}")


class RNNBase(Module):
    """Shared by LSTM and GRU: parameters, init, state-dict names and the forward."""

    _GATES = {"LSTM": 4, "GRU": 3}

    def __init__(
        self,
        mode: str,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        proj_size: int = 0,
        device=None,
        dtype=None,
    ) -> None:
        super().__init__()
        _positive_int(mode, "input_size", input_size, 0)
        _positive_int(mode, "hidden_size", hidden_size)
        _positive_int(mode, "num_layers", num_layers)
        if (
            not isinstance(dropout, numbers.Real)
            or isinstance(dropout, bool)
            or not 0 <= dropout <= 1
        ):
            raise ValueError(
                f"[{mode}] dropout should be a number in range [0, 1] representing "
                f"the probability of an element being zeroed, got {dropout!r}"
            )
        if not isinstance(proj_size, int) or proj_size < 0 or proj_size >= hidden_size:
            raise ValueError(
                f"[{mode}] proj_size must be an int in [0, hidden_size), got {proj_size!r}"
            )
        if proj_size != 0:
            raise NotImplementedError(
                f"[{mode}] proj_size != 0 (LSTM with projections) is not implemented in pyengine"
            )
        if dropout > 0 and num_layers == 1:
            warnings.warn(
                f"[{mode}] dropout option adds dropout after all but last recurrent "
                f"layer, so non-zero dropout expects num_layers greater than 1, but got "
                f"dropout={dropout} and num_layers={num_layers}",
                stacklevel=3,
            )
        fk = _factory(device, dtype)
        self.mode = mode
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.bias = bool(bias)
        self.batch_first = bool(batch_first)
        self.dropout = float(dropout)
        self.bidirectional = bool(bidirectional)
        self.proj_size = 0
        D = 2 if bidirectional else 1
        G = self._GATES[mode] * hidden_size
        self._flat_weights_names: List[str] = []
        self._all_weights: List[List[str]] = []
        for layer in range(num_layers):
            for d in range(D):
                size = input_size if layer == 0 else D * hidden_size
                sfx = f"_l{layer}" + ("_reverse" if d == 1 else "")
                names = [f"weight_ih{sfx}", f"weight_hh{sfx}"]
                setattr(self, names[0], Parameter(empty(G, size, **fk)))
                setattr(self, names[1], Parameter(empty(G, hidden_size, **fk)))
                if bias:
                    names += [f"bias_ih{sfx}", f"bias_hh{sfx}"]
                    setattr(self, names[2], Parameter(empty(G, **fk)))
                    setattr(self, names[3], Parameter(empty(G, **fk)))
                self._flat_weights_names += names
                self._all_weights.append(names)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        stdv = 1.0 / math.sqrt(self.hidden_size) if self.hidden_size > 0 else 0.0
        for w in self.parameters():
            init.uniform_(w, -stdv, stdv)

    @property
    def all_weights(self) -> List[List[Parameter]]:
        return [[getattr(self, n) for n in names] for names in self._all_weights]

    def _weights(self) -> list:
        """Flat list in the kernel's order: per layer and direction [w_ih, w_hh, b_ih, b_hh]."""
        out = []
        for names in self._all_weights:
            ps = [getattr(self, n) for n in names]
            out += ps if self.bias else ps + [None, None]
        return out

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if not self.bias:
            s += ", bias=False"
        if self.batch_first:
            s += ", batch_first=True"
        if self.dropout != 0:
            s += f", dropout={self.dropout}"
        if self.bidirectional:
            s += ", bidirectional=True"
        return s


class LSTM(RNNBase):
    """torch.nn.LSTM: multi-layer (bidirectional) LSTM; gate order i, f, g, o.

    forward(input, hx=None, lengths=None) -> (output, (h_n, c_n)).
    input: (T, N, I), or (N, T, I) if batch_first, or (T, I) unbatched; hx: None (zeros) or
    (h_0, c_0) of shape (num_layers * D, N, H) ((num_layers * D, H) unbatched); output:
    (T, N, D * H) (batch_first: (N, T, D * H)). proj_size != 0 raises NotImplementedError.

    ``lengths`` is a pyengine extension in place of torch's PackedSequence: a sequence of N
    ints in [1, T] (list, NumPy array or integer Tensor). Outputs past a sequence's end are 0,
    and h_n / c_n are the states after each sequence's last valid step (the reverse direction
    starts there), exactly what torch gives for ``pack_padded_sequence(input, lengths,
    enforce_sorted=False)`` followed by ``pad_packed_sequence``.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        proj_size: int = 0,
        device=None,
        dtype=None,
    ) -> None:
        super().__init__(
            "LSTM",
            input_size,
            hidden_size,
            num_layers,
            bias,
            batch_first,
            dropout,
            bidirectional,
            proj_size,
            device,
            dtype,
        )

    def forward(self, input: Tensor, hx=None, lengths=None):
        return _ops.lstm(
            input,
            hx,
            self._weights(),
            self.num_layers,
            self.bidirectional,
            self.batch_first,
            self.dropout,
            self.training,
            lengths,
        )


class GRU(RNNBase):
    """torch.nn.GRU: multi-layer (bidirectional) GRU; gate order r, z, n.

    forward(input, hx=None, lengths=None) -> (output, h_n); shapes and the ``lengths``
    extension as for LSTM (h_n after each sequence's last valid step, outputs past it 0).
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        device=None,
        dtype=None,
    ) -> None:
        super().__init__(
            "GRU",
            input_size,
            hidden_size,
            num_layers,
            bias,
            batch_first,
            dropout,
            bidirectional,
            0,
            device,
            dtype,
        )

    def forward(self, input: Tensor, hx: Optional[Tensor] = None, lengths=None):
        return _ops.gru(
            input,
            hx,
            self._weights(),
            self.num_layers,
            self.bidirectional,
            self.batch_first,
            self.dropout,
            self.training,
            lengths,
        )


class RNNCellBase(Module):
    """Shared by LSTMCell and GRUCell: weight_ih (G*H, I), weight_hh (G*H, H), biases."""

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool,
        num_chunks: int,
        device=None,
        dtype=None,
    ) -> None:
        super().__init__()
        name = type(self).__name__
        _positive_int(name, "input_size", input_size, 0)
        _positive_int(name, "hidden_size", hidden_size)
        fk = _factory(device, dtype)
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.bias = bool(bias)
        G = num_chunks * hidden_size
        self.weight_ih = Parameter(empty(G, input_size, **fk))
        self.weight_hh = Parameter(empty(G, hidden_size, **fk))
        if bias:
            self.bias_ih = Parameter(empty(G, **fk))
            self.bias_hh = Parameter(empty(G, **fk))
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        stdv = 1.0 / math.sqrt(self.hidden_size) if self.hidden_size > 0 else 0.0
        for w in self.parameters():
            init.uniform_(w, -stdv, stdv)

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        return s if self.bias else s + ", bias=False"

    def _zeros(self, input: Tensor) -> Tensor:
        shape = (input.shape[0], self.hidden_size) if input.ndim == 2 else (self.hidden_size,)
        return zeros(*shape, dtype=input.dtype, device=input.device)


class LSTMCell(RNNCellBase):
    """torch.nn.LSTMCell: forward(input (N, I) or (I,), hx=None or (h, c)) -> (h', c')."""

    def __init__(
        self, input_size: int, hidden_size: int, bias: bool = True, device=None, dtype=None
    ) -> None:
        super().__init__(input_size, hidden_size, bias, 4, device, dtype)

    def forward(self, input: Tensor, hx=None):
        if hx is None and isinstance(input, Tensor):
            z = self._zeros(input)
            hx = (z, z)
        return _ops.lstm_cell(input, hx, self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh)


class GRUCell(RNNCellBase):
    """torch.nn.GRUCell: forward(input (N, I) or (I,), hx=None or h) -> h'."""

    def __init__(
        self, input_size: int, hidden_size: int, bias: bool = True, device=None, dtype=None
    ) -> None:
        super().__init__(input_size, hidden_size, bias, 3, device, dtype)

    def forward(self, input: Tensor, hx: Optional[Tensor] = None) -> Tensor:
        if hx is None and isinstance(input, Tensor):
            hx = self._zeros(input)
        return _ops.gru_cell(input, hx, self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh)
