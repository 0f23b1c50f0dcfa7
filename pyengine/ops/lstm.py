"""LSTM and GRU: cells and whole (stacked, bidirectional) layers in fused kernels.

One layer and one direction is one kernel call (csrc/cpu/lstm.h): the input projection of all
time steps is a single GEMM, then per step one GEMM with W_hh and one fused pointwise pass;
backward runs through time inside the kernel and ends with single GEMMs for dW_ih, dW_hh, dx.
A cell is the same kernel with one time step.

Formulas, gate order and weight shapes are torch's: LSTM gates (i, f, g, o), weight_ih
(4H, I), weight_hh (4H, H); GRU gates (r, z, n), n = tanh(W_in x + b_in + r * (W_hn h + b_hn)).

pyengine extension: ``lengths`` (per-sequence lengths in [1, T]) gives what torch computes for
a packed sequence: outputs past a sequence's end are 0 and its final state is the state after
its last valid step (the reverse direction starts at that step).

Autograd: each layer is one Function; its backward is the fused kernel, so gradients of
gradients (``create_graph=True``) are not supported through it (they are constants).
"""

from __future__ import annotations

import numbers
from typing import Optional, Sequence, Tuple

import numpy as np

from ..autograd import Function, is_grad_enabled
from ..backend import for_array
from ..tensor import Tensor

__all__ = ["lstm_cell", "gru_cell", "lstm", "gru"]

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))
_GATES = {"lstm": 4, "gru": 3}


def _arr(t: Optional[Tensor]):
    return None if t is None else t._xp.ascontiguousarray(t.data)


def _no_double_backward(op: str) -> None:
    """Backward runs under grad mode only for create_graph=True: not supported here."""
    if is_grad_enabled():
        raise NotImplementedError(
            f"[{op}] double backward (create_graph=True) through the fused {op} kernel is not "
            "implemented"
        )


def _needs_save(*tensors) -> bool:
    return is_grad_enabled() and any(isinstance(t, Tensor) and t.requires_grad for t in tensors)


# ----------------------------------------------------------------------------- Functions


class _LSTMLayer(Function):
    """One LSTM layer, D = len(weights) // 4 directions: (y, h_n (D,N,H), c_n (D,N,H))."""

    @staticmethod
    def forward(ctx, x, h0, c0, *weights, batch_first, lengths, save):
        xd, h0d, c0d = _arr(x), _arr(h0), _arr(c0)
        be, xp = for_array(xd), x._xp
        D, H = len(weights) // 4, weights[1].shape[1]
        T, N = (xd.shape[1], xd.shape[0]) if batch_first else xd.shape[:2]
        y = xp.empty(xd.shape[:2] + (D * H,), dtype=xd.dtype)
        h_n = xp.empty((D, N, H), dtype=xd.dtype)
        c_n = xp.empty((D, N, H), dtype=xd.dtype)
        ws, saved = [], []
        for d in range(D):
            w = [_arr(t) for t in weights[4 * d : 4 * d + 4]]
            sv = None
            if save:
                sv = tuple(xp.empty((T * N, k * H), dtype=xd.dtype) for k in (4, 1, 1))
            be.lstm_layer_forward(
                xd, *w, h0d[d], c0d[d], y, d * H, h_n[d], c_n[d], sv, batch_first, d == 1, lengths
            )
            ws.append(w)
            saved.append(sv)
        if save:
            ctx.save_for_backward(x, h0, c0, *weights)
            ctx.arrays = (xd, c0d, ws, saved)
            ctx.batch_first, ctx.lengths = batch_first, lengths
        return Tensor(y), Tensor(h_n), Tensor(c_n)

    @staticmethod
    def backward(ctx, gy, gh, gc):
        _ = ctx.saved_tensors  # raises if the graph was freed
        _no_double_backward("lstm")
        xd, c0d, ws, saved = ctx.arrays
        be, xp = for_array(xd), gy._xp
        need = ctx.needs_input_grad
        gyd, ghd, gcd = _arr(gy), _arr(gh), _arr(gc)
        D, N, H = ghd.shape
        dx = xp.empty_like(xd) if need[0] else None
        dh0 = xp.empty((D, N, H), dtype=xd.dtype)
        dc0 = xp.empty((D, N, H), dtype=xd.dtype)
        grads = []
        for d in range(D):
            w_ih, w_hh, b_ih, b_hh = ws[d]
            dw_ih, dw_hh = xp.empty_like(w_ih), xp.empty_like(w_hh)
            has_bias = b_ih is not None or b_hh is not None
            db = xp.empty((4 * H,), dtype=xd.dtype) if has_bias else None
            be.lstm_layer_backward(
                xd,
                w_ih,
                w_hh,
                c0d[d],
                saved[d],
                gyd,
                d * H,
                ghd[d],
                gcd[d],
                dx,
                d == 1,
                dh0[d],
                dc0[d],
                dw_ih,
                dw_hh,
                db,
                ctx.batch_first,
                d == 1,
                ctx.lengths,
            )
            grads += [
                Tensor(dw_ih),
                Tensor(dw_hh),
                None if b_ih is None else Tensor(db),
                None if b_hh is None else Tensor(db.copy() if b_ih is not None else db),
            ]
        return (None if dx is None else Tensor(dx), Tensor(dh0), Tensor(dc0), *grads)


class _GRULayer(Function):
    """One GRU layer, D = len(weights) // 4 directions: (y, h_n (D,N,H))."""

    @staticmethod
    def forward(ctx, x, h0, *weights, batch_first, lengths, save):
        xd, h0d = _arr(x), _arr(h0)
        be, xp = for_array(xd), x._xp
        D, H = len(weights) // 4, weights[1].shape[1]
        T, N = (xd.shape[1], xd.shape[0]) if batch_first else xd.shape[:2]
        y = xp.empty(xd.shape[:2] + (D * H,), dtype=xd.dtype)
        h_n = xp.empty((D, N, H), dtype=xd.dtype)
        ws, saved = [], []
        for d in range(D):
            w = [_arr(t) for t in weights[4 * d : 4 * d + 4]]
            sv = None
            if save:
                sv = tuple(xp.empty((T * N, k * H), dtype=xd.dtype) for k in (3, 1, 1))
            be.gru_layer_forward(xd, *w, h0d[d], y, d * H, h_n[d], sv, batch_first, d == 1, lengths)
            ws.append(w)
            saved.append(sv)
        if save:
            ctx.save_for_backward(x, h0, *weights)
            ctx.arrays = (xd, ws, saved)
            ctx.batch_first, ctx.lengths = batch_first, lengths
        return Tensor(y), Tensor(h_n)

    @staticmethod
    def backward(ctx, gy, gh):
        _ = ctx.saved_tensors  # raises if the graph was freed
        _no_double_backward("gru")
        xd, ws, saved = ctx.arrays
        be, xp = for_array(xd), gy._xp
        need = ctx.needs_input_grad
        gyd, ghd = _arr(gy), _arr(gh)
        D, N, H = ghd.shape
        dx = xp.empty_like(xd) if need[0] else None
        dh0 = xp.empty((D, N, H), dtype=xd.dtype)
        grads = []
        for d in range(D):
            w_ih, w_hh, b_ih, b_hh = ws[d]
            dw_ih, dw_hh = xp.empty_like(w_ih), xp.empty_like(w_hh)
            db_ih = None if b_ih is None else xp.empty_like(b_ih)
            db_hh = None if b_hh is None else xp.empty_like(b_hh)
            be.gru_layer_backward(
                xd,
                w_ih,
                w_hh,
                saved[d],
                gyd,
                d * H,
                ghd[d],
                dx,
                d == 1,
                dh0[d],
                dw_ih,
                dw_hh,
                db_ih,
                db_hh,
                ctx.batch_first,
                d == 1,
                ctx.lengths,
            )
            grads += [Tensor(dw_ih), Tensor(dw_hh)]
            grads += [None if g is None else Tensor(g) for g in (db_ih, db_hh)]
        return (None if dx is None else Tensor(dx), Tensor(dh0), *grads)


# ----------------------------------------------------------------------------- checks


def _check_tensors(op: str, named: Sequence[Tuple[str, Optional[Tensor]]]) -> None:
    """All given tensors: Tensor, float32/float64, one dtype, one device."""
    ref = None
    for name, t in named:
        if t is None:
            continue
        if not isinstance(t, Tensor):
            raise TypeError(f"[{op}] {name} must be a Tensor, got {type(t).__name__}")
        if t.dtype not in _FLOATS:
            raise TypeError(f"[{op}] {name} must be float32 or float64, got {t.dtype}")
        if ref is None:
            ref = (name, t)
            continue
        if t.dtype != ref[1].dtype:
            raise TypeError(
                f"[{op}] {name} has dtype {t.dtype} but {ref[0]} has {ref[1].dtype}; "
                "cast explicitly (no implicit casts)"
            )
        if t.device != ref[1].device:
            raise RuntimeError(f"[{op}] {name} is on {t.device} but {ref[0]} is on {ref[1].device}")


def _check_shape(op: str, name: str, t: Tensor, shape: tuple) -> None:
    if tuple(t.shape) != tuple(shape):
        raise ValueError(f"[{op}] expected {name} of shape {tuple(shape)}, got {tuple(t.shape)}")


def _check_weights(
    op: str, mode: str, weights: Sequence, count: int, input_size: int, hidden_size: int
) -> None:
    G = _GATES[mode]
    if len(weights) != 4 * count:
        raise ValueError(
            f"[{op}] expected {4 * count} weights (w_ih, w_hh, b_ih, b_hh per layer "
            f"and direction), got {len(weights)}"
        )
    for k in range(count):
        w_ih, w_hh, b_ih, b_hh = weights[4 * k : 4 * k + 4]
        if w_ih is None or w_hh is None:
            raise ValueError(f"[{op}] weight_ih and weight_hh must be given")
        _check_shape(op, "weight_ih", w_ih, (G * hidden_size, input_size))
        _check_shape(op, "weight_hh", w_hh, (G * hidden_size, hidden_size))
        for name, b in (("bias_ih", b_ih), ("bias_hh", b_hh)):
            if b is not None:
                _check_shape(op, name, b, (G * hidden_size,))


def _lengths_array(op: str, lengths, T: int, N: int):
    if lengths is None:
        return None
    if isinstance(lengths, Tensor):
        lengths = lengths.detach().cpu().numpy() if hasattr(lengths, "cpu") else lengths.numpy()
    arr = np.asarray(lengths)
    if arr.dtype.kind not in "iu" and not (arr.dtype.kind == "f" and np.all(arr == np.round(arr))):
        raise TypeError(f"[{op}] lengths must be integers, got dtype {arr.dtype}")
    arr = np.ascontiguousarray(arr, dtype=np.int64)
    if arr.shape != (N,):
        raise ValueError(
            f"[{op}] lengths must have shape ({N},) (one per sequence), got {arr.shape}"
        )
    if N and (arr.min() < 1 or arr.max() > T):
        raise ValueError(
            f"[{op}] lengths must lie in [1, {T}], got min {arr.min()} and max {arr.max()}"
        )
    return arr


# ----------------------------------------------------------------------------- cells


def _cell(mode: str, input: Tensor, hx, w_ih, w_hh, b_ih, b_hh):
    op = f"{mode}_cell"
    if mode == "lstm":
        if not isinstance(hx, (tuple, list)) or len(hx) != 2:
            raise TypeError(f"[{op}] hx must be a tuple (h, c)")
        h, c = hx
    else:
        h, c = hx, None
    _check_tensors(
        op,
        [
            ("input", input),
            ("h", h),
            ("c", c),
            ("w_ih", w_ih),
            ("w_hh", w_hh),
            ("b_ih", b_ih),
            ("b_hh", b_hh),
        ],
    )
    if input.ndim not in (1, 2):
        raise ValueError(f"[{op}] expected input of 1 or 2 dimensions, got {input.ndim}")
    batched = input.ndim == 2
    x = input if batched else input.unsqueeze(0)
    H = w_hh.shape[-1]
    _check_weights(op, mode, [w_ih, w_hh, b_ih, b_hh], 1, x.shape[1], H)
    N = x.shape[0]
    states = [h] if mode == "gru" else [h, c]
    states = [s if batched else s.unsqueeze(0) for s in states]
    for name, s in zip(("h", "c"), states):
        _check_shape(op, name, s, (N, H))
    x3 = x.unsqueeze(0)
    s3 = [s.unsqueeze(0) for s in states]
    save = _needs_save(x, *states, w_ih, w_hh, b_ih, b_hh)
    fn = _LSTMLayer if mode == "lstm" else _GRULayer
    outs = fn.apply(x3, *s3, w_ih, w_hh, b_ih, b_hh, batch_first=False, lengths=None, save=save)
    finals = [o[0] if batched else o[0, 0] for o in outs[1:]]
    return tuple(finals) if mode == "lstm" else finals[0]


def lstm_cell(
    input: Tensor,
    hx: Tuple[Tensor, Tensor],
    w_ih: Tensor,
    w_hh: Tensor,
    b_ih: Optional[Tensor] = None,
    b_hh: Optional[Tensor] = None,
):
    """One LSTM step (torch.lstm_cell): (h', c') for input (N, I) or (I,), hx = (h, c)."""
    return _cell("lstm", input, hx, w_ih, w_hh, b_ih, b_hh)


def gru_cell(
    input: Tensor,
    hx: Tensor,
    w_ih: Tensor,
    w_hh: Tensor,
    b_ih: Optional[Tensor] = None,
    b_hh: Optional[Tensor] = None,
) -> Tensor:
    """One GRU step (torch.gru_cell): h' for input (N, I) or (I,) and hx (N, H) or (H,)."""
    return _cell("gru", input, hx, w_ih, w_hh, b_ih, b_hh)


# ----------------------------------------------------------------------------- layers


def _rnn(
    mode: str,
    input: Tensor,
    hx,
    weights: Sequence,
    num_layers: int,
    bidirectional: bool,
    batch_first: bool,
    dropout: float,
    training: bool,
    lengths,
):
    op = mode
    if not isinstance(num_layers, numbers.Integral) or num_layers < 1:
        raise ValueError(f"[{op}] num_layers must be a positive int, got {num_layers!r}")
    D = 2 if bidirectional else 1
    weights = list(weights)
    if mode == "lstm":
        if hx is not None and (not isinstance(hx, (tuple, list)) or len(hx) != 2):
            raise TypeError(f"[{op}] hx must be None or a tuple (h_0, c_0)")
        h0, c0 = (None, None) if hx is None else hx
    else:
        h0, c0 = hx, None
    _check_tensors(
        op,
        [("input", input), ("h_0", h0), ("c_0", c0)]
        + [(f"weight {k}", w) for k, w in enumerate(weights)],
    )
    if input.ndim not in (2, 3):
        raise ValueError(
            f"[{op}] expected input of 2 (unbatched) or 3 dimensions, got {input.ndim}"
        )
    batched = input.ndim == 3
    if not batched:  # (L, I): torch ignores batch_first for unbatched input
        input = input.unsqueeze(1)
        batch_first_eff = False
        h0 = None if h0 is None else h0.unsqueeze(1)
        c0 = None if c0 is None else c0.unsqueeze(1)
    else:
        batch_first_eff = bool(batch_first)
    if len(weights) != 4 * num_layers * D:
        raise ValueError(f"[{op}] expected {4 * num_layers * D} weights, got {len(weights)}")
    H = weights[1].shape[-1]
    T, N = (input.shape[1], input.shape[0]) if batch_first_eff else input.shape[:2]
    I = input.shape[2]
    if weights[0].ndim != 2 or weights[0].shape[1] != I:
        raise ValueError(
            f"[{op}] input.size(-1) must be equal to input_size. Expected "
            f"{weights[0].shape[-1]}, got {I}"
        )
    for layer in range(num_layers):
        size = I if layer == 0 else D * H
        _check_weights(op, mode, weights[4 * D * layer : 4 * D * (layer + 1)], D, size, H)
    if T < 1:
        raise ValueError(f"[{op}] input must have at least one time step")
    lens = _lengths_array(op, lengths, T, N)
    state_shape = (num_layers * D, N, H)
    from ..tensor import zeros

    states = []
    for name, s in (("h_0", h0), ("c_0", c0)):
        if mode == "gru" and name == "c_0":
            continue
        if s is None:
            s = zeros(*state_shape, dtype=input.dtype, device=input.device)
        _check_shape(op, name, s, state_shape)
        states.append(s)
    if not isinstance(dropout, numbers.Real) or not 0 <= dropout <= 1:
        raise ValueError(f"[{op}] dropout must be a number in [0, 1], got {dropout!r}")

    fn = _LSTMLayer if mode == "lstm" else _GRULayer
    x = input
    finals = [[] for _ in states]
    for layer in range(num_layers):
        if layer > 0 and dropout > 0 and training:
            from .dropout import dropout as _dropout

            x = _dropout(x, dropout, True)
        sl = slice(layer * D, (layer + 1) * D)
        st = [s[sl] for s in states]
        w = weights[4 * D * layer : 4 * D * (layer + 1)]
        save = _needs_save(x, *st, *w)
        out = fn.apply(x, *st, *w, batch_first=batch_first_eff, lengths=lens, save=save)
        x = out[0]
        for k, o in enumerate(out[1:]):
            finals[k].append(o)
    from .shape import cat

    finals = [f[0] if len(f) == 1 else cat(f, 0) for f in finals]
    if not batched:
        x = x.squeeze(1)
        finals = [f.squeeze(1) for f in finals]
    return x, (tuple(finals) if mode == "lstm" else finals[0])


def lstm(
    input: Tensor,
    hx,
    weights: Sequence,
    num_layers: int = 1,
    bidirectional: bool = False,
    batch_first: bool = False,
    dropout: float = 0.0,
    training: bool = False,
    lengths=None,
):
    """Stacked LSTM over input (T, N, I) ((N, T, I) if batch_first; (T, I) unbatched).

    hx: None (zeros) or (h_0, c_0), each (num_layers * D, N, H). weights: torch's flat order,
    per layer and direction [w_ih, w_hh, b_ih, b_hh] (biases may be None). Returns
    (output, (h_n, c_n)). lengths (pyengine extension): per-sequence lengths in [1, T]; outputs
    past a sequence's end are 0 and h_n / c_n are taken at its last valid step.
    """
    return _rnn(
        "lstm",
        input,
        hx,
        weights,
        num_layers,
        bidirectional,
        batch_first,
        dropout,
        training,
        lengths,
    )


def gru(
    input: Tensor,
    hx,
    weights: Sequence,
    num_layers: int = 1,
    bidirectional: bool = False,
    batch_first: bool = False,
    dropout: float = 0.0,
    training: bool = False,
    lengths=None,
):
    """Stacked GRU; as lstm, with hx None or h_0 and the result (output, h_n)."""
    return _rnn(
        "gru",
        input,
        hx,
        weights,
        num_layers,
        bidirectional,
        batch_first,
        dropout,
        training,
        lengths,
    )
