"""CPU backend: turns NumPy arrays into calls of pyengine._C kernels."""

from __future__ import annotations

from typing import Optional

import numpy as np

from .. import _C

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


def gemm(
    transA,
    transB,
    M,
    N,
    K,
    alpha,
    A,
    lda,
    B,
    ldb,
    beta,
    C,
    ldc,
    *,
    bias=None,
    bias_kind="none",
    act="none",
):
    """BLAS-style GEMM on flat row-major buffers; C is overwritten (see csrc/cpu/gemm.h)."""
    _C.gemm(
        bool(transA),
        bool(transB),
        M,
        N,
        K,
        float(alpha),
        A,
        lda,
        B,
        ldb,
        float(beta),
        C,
        ldc,
        bias,
        bias_kind,
        act,
    )


def gemm_strided_batched(
    transA,
    transB,
    M,
    N,
    K,
    alpha,
    A,
    lda,
    strideA,
    B,
    ldb,
    strideB,
    beta,
    C,
    ldc,
    strideC,
    batch,
    *,
    bias=None,
    bias_kind="none",
    act="none",
):
    """Strided-batched GEMM on flat buffers: matrix b of A starts at A[b*strideA], etc."""
    _C.gemm_strided_batched(
        bool(transA),
        bool(transB),
        M,
        N,
        K,
        float(alpha),
        A,
        lda,
        strideA,
        B,
        ldb,
        strideB,
        float(beta),
        C,
        ldc,
        strideC,
        batch,
        bias,
        bias_kind,
        act,
    )


def _gemm_ready(a: np.ndarray) -> bool:
    """True if the kernel can read the trailing 2-D matrices of a in place."""
    if a.ndim < 2:
        return False
    if a.size == 0:
        return True
    item = a.itemsize
    rows, cols = a.shape[-2], a.shape[-1]
    s1, s2 = a.strides[-2], a.strides[-1]
    if min(a.strides, default=0) < 0:
        return False
    row_major = (s2 == item or cols <= 1) and (rows <= 1 or s1 >= max(cols, 1) * item)
    col_major = (s1 == item or rows <= 1) and (cols <= 1 or s2 >= max(rows, 1) * item)
    return row_major or col_major


def _merge_batch(a: np.ndarray, batch: tuple) -> Optional[np.ndarray]:
    """View a (already broadcast to batch + 2 dims) as (prod(batch), r, c) without copying,
    or None when its batch strides cannot be expressed as one stride."""
    nb = int(np.prod(batch)) if batch else 1
    if not batch:
        return a.reshape((1,) + a.shape)
    shape, strides = a.shape[: len(batch)], a.strides[: len(batch)]
    dims = [(n, s) for n, s in zip(shape, strides) if n != 1]
    if not dims:
        stride = 0
    elif all(s == 0 for _, s in dims):
        stride = 0
    else:
        for (_, s1), (n2, s2) in zip(dims, dims[1:]):
            if s1 != s2 * n2:
                return None
        stride = dims[-1][1]
    return np.lib.stride_tricks.as_strided(
        a, shape=(nb,) + a.shape[-2:], strides=(stride,) + a.strides[-2:], writeable=False
    )


def matmul(
    a: np.ndarray, b: np.ndarray, bias: Optional[np.ndarray] = None, act: str = "none"
) -> np.ndarray:
    """act(a @ b + bias) for arrays of ndim >= 2 with broadcast batch dims, in our GEMM.

    dtype and shape checks are the caller's (pyengine.ops.matmul); views are used in place
    when one of their two trailing strides is unit, else copied explicitly.
    """
    if a.ndim == 2 and b.ndim == 2 and _gemm_ready(a) and _gemm_ready(b):  # the common case
        out = np.empty((a.shape[0], b.shape[1]), dtype=a.dtype)
        if out.size:
            _C.matmul_into(a, b, out, bias, act)
        return out
    batch = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    M, N = a.shape[-2], b.shape[-1]
    out = np.empty(batch + (M, N), dtype=a.dtype)
    if out.size == 0:
        return out
    ops = []
    for x in (a, b):
        if not _gemm_ready(x):
            x = np.ascontiguousarray(x)
        x = np.broadcast_to(x, batch + x.shape[-2:])
        x3 = _merge_batch(x, batch)
        if x3 is None:
            x3 = np.ascontiguousarray(x).reshape((-1,) + x.shape[-2:])
        ops.append(x3)
    _C.matmul_into(ops[0], ops[1], out.reshape((-1, M, N)), bias, act)
    return out


# ----------------------------------------------------------------------------- conv
# The generalized convolution of csrc/cpu/conv.h; `geo` holds stride, pad_lo, pad_hi,
# dilation, input_dilation, groups, flip, wtrans; outputs are new C-contiguous arrays.


def conv_general(x, w, bias, geo: dict, op: str = "conv_general"):
    return _C.conv_general(x, w, bias, op=op, **geo)


def conv_general_grad_input(gy, w, input_shape, geo: dict, op: str = "conv_general"):
    return _C.conv_general_grad_input(gy, w, tuple(input_shape), op=op, **geo)


def conv_general_grad_weight(x, gy, weight_shape, geo: dict, op: str = "conv_general"):
    return _C.conv_general_grad_weight(x, gy, tuple(weight_shape), op=op, **geo)


def conv_general_grad_bias(gy, op: str = "conv_general"):
    return _C.conv_general_grad_bias(gy, op=op)


# ----------------------------------------------------------------------------- attention
# Fused scaled-dot-product attention of csrc/cpu/attention.h on (B, H, L, E) views.


def sdpa_forward(q, k, v, attn_mask, is_causal, scale, dropout_p, seed):
    """(out (B,H,Lq,Dv), lse (B,H,Lq)); attn_mask None or broadcast to (B,H,Lq,Lk)."""
    return _C.sdpa_forward(
        q, k, v, attn_mask, bool(is_causal), float(scale), float(dropout_p), int(seed)
    )


def sdpa_backward(q, k, v, attn_mask, is_causal, scale, dropout_p, seed, out, lse, grad_out):
    """(dq, dk, dv) from the forward's out and lse; grad_out (B,H,Lq,Dv) C-contiguous."""
    return _C.sdpa_backward(
        q,
        k,
        v,
        attn_mask,
        bool(is_causal),
        float(scale),
        float(dropout_p),
        int(seed),
        out,
        lse,
        grad_out,
    )


# ----------------------------------------------------------------------------- norm / softmax
# Kernels of csrc/cpu/norm.h, csrc/cpu/softmax.h and csrc/cpu/activation.h. Inputs are made
# C-contiguous here (an explicit copy only for non-contiguous views); outputs are new arrays.


def _c(a):
    return None if a is None else np.ascontiguousarray(a)


def batch_norm_forward(x, weight, bias, running_mean, running_var, training, momentum, eps):
    """(y, save_mean, save_invstd); running stats (contiguous arrays) updated in place."""
    return _C.batch_norm_forward(
        _c(x),
        _c(weight),
        _c(bias),
        running_mean,
        running_var,
        bool(training),
        float(momentum),
        float(eps),
    )


def batch_norm_backward(dy, x, weight, save_mean, save_invstd, training, needs):
    """(dx, dweight, dbias), None where needs[i] is False."""
    return _C.batch_norm_backward(
        _c(dy), _c(x), _c(weight), save_mean, save_invstd, bool(training), *map(bool, needs)
    )


def layer_norm_forward(x2, weight, bias, eps):
    """(y, mean, rstd) over the last dim of the 2-D array x2."""
    return _C.layer_norm_forward(_c(x2), _c(weight), _c(bias), float(eps))


def layer_norm_backward(dy2, x2, weight, mean, rstd, needs):
    return _C.layer_norm_backward(_c(dy2), _c(x2), _c(weight), mean, rstd, *map(bool, needs))


def softmax_forward(x, dim, log):
    return _C.softmax_forward(_c(x), int(dim), bool(log))


def softmax_backward(y, dy, dim, log):
    return _C.softmax_backward(_c(y), _c(dy), int(dim), bool(log))


def cross_entropy_forward(x, target, weight, ignore_index, label_smoothing, need_grad):
    """(loss, sample_weight, dlogits or None), unreduced; x (N, C, ...)."""
    return _C.cross_entropy_forward(
        _c(x), _c(target), _c(weight), int(ignore_index), float(label_smoothing), bool(need_grad)
    )


def nll_loss_forward(x, target, weight, ignore_index):
    return _C.nll_loss_forward(_c(x), _c(target), _c(weight), int(ignore_index))


def nll_loss_backward(x, target, weight, ignore_index, g):
    return _C.nll_loss_backward(_c(x), _c(target), _c(weight), int(ignore_index), _c(g))


def erf(x):
    return _C.erf(_c(x))


def gelu(x):
    return _C.gelu(_c(x))


def gelu_backward(x, g):
    return _C.gelu_backward(_c(x), _c(g))


def gelu_tanh(x):
    return _C.gelu_tanh(_c(x))


def gelu_tanh_backward(x, g):
    return _C.gelu_tanh_backward(_c(x), _c(g))


def silu(x):
    return _C.silu(_c(x))


def silu_backward(x, g):
    return _C.silu_backward(_c(x), _c(g))


# ----------------------------------------------------------------------------- lstm / gru
# One recurrent layer, one direction per call (csrc/cpu/lstm.h). Outputs and the arrays saved
# for backward are allocated by the caller (pyengine/ops/lstm.py) and passed in.


def lstm_layer_forward(
    x, w_ih, w_hh, b_ih, b_hh, h0, c0, y, y_offset, h_n, c_n, saved, batch_first, reverse, lengths
):
    """saved: None (inference) or (gates (T*N, 4H), c (T*N, H), h_prev (T*N, H))."""
    g, c, h = saved if saved is not None else (None, None, None)
    _C.lstm_layer_forward(
        x,
        w_ih,
        w_hh,
        b_ih,
        b_hh,
        h0,
        c0,
        y,
        int(y_offset),
        h_n,
        c_n,
        g,
        c,
        h,
        bool(batch_first),
        bool(reverse),
        lengths,
    )


def lstm_layer_backward(
    x,
    w_ih,
    w_hh,
    c0,
    saved,
    dy,
    y_offset,
    dh_n,
    dc_n,
    dx,
    dx_accumulate,
    dh0,
    dc0,
    dw_ih,
    dw_hh,
    db,
    batch_first,
    reverse,
    lengths,
):
    _C.lstm_layer_backward(
        x,
        w_ih,
        w_hh,
        c0,
        *saved,
        dy,
        int(y_offset),
        dh_n,
        dc_n,
        dx,
        bool(dx_accumulate),
        dh0,
        dc0,
        dw_ih,
        dw_hh,
        db,
        bool(batch_first),
        bool(reverse),
        lengths,
    )


def gru_layer_forward(
    x, w_ih, w_hh, b_ih, b_hh, h0, y, y_offset, h_n, saved, batch_first, reverse, lengths
):
    """saved: None (inference) or (gates (T*N, 3H), hn (T*N, H), h_prev (T*N, H))."""
    g, hn, h = saved if saved is not None else (None, None, None)
    _C.gru_layer_forward(
        x,
        w_ih,
        w_hh,
        b_ih,
        b_hh,
        h0,
        y,
        int(y_offset),
        h_n,
        g,
        hn,
        h,
        bool(batch_first),
        bool(reverse),
        lengths,
    )


def gru_layer_backward(
    x,
    w_ih,
    w_hh,
    saved,
    dy,
    y_offset,
    dh_n,
    dx,
    dx_accumulate,
    dh0,
    dw_ih,
    dw_hh,
    db_ih,
    db_hh,
    batch_first,
    reverse,
    lengths,
):
    _C.gru_layer_backward(
        x,
        w_ih,
        w_hh,
        *saved,
        dy,
        int(y_offset),
        dh_n,
        dx,
        bool(dx_accumulate),
        dh0,
        dw_ih,
        dw_hh,
        db_ih,
        db_hh,
        bool(batch_first),
        bool(reverse),
        lengths,
    )


# ----------------------------------------------------------------------------- pooling
# csrc/cpu/pool.h on 4-D NCHW arrays (pyengine.ops.pool reshapes 3-D inputs and checks the
# arguments first; _C checks them again). Outputs are new C-contiguous arrays.


def max_pool2d(x, kernel_size, stride, padding, dilation, ceil_mode, with_indices):
    """(y, indices or None); indices are int64 h*W + w within each plane."""
    return _C.max_pool2d(
        np.ascontiguousarray(x),
        kernel_size,
        stride,
        padding,
        dilation,
        bool(ceil_mode),
        bool(with_indices),
    )


def max_pool2d_backward(gy, indices, H, W):
    """Scatter-add of gy at indices into (N, C, H, W) zeros."""
    return _C.max_pool2d_backward(np.ascontiguousarray(gy), np.ascontiguousarray(indices), H, W)


def pool_gather(src, indices):
    """out[n, c, i, j] = src[n, c].flat[indices[n, c, i, j]]."""
    return _C.pool_gather(np.ascontiguousarray(src), np.ascontiguousarray(indices))


def avg_pool2d(x, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor):
    """divisor: 0 for none, else divisor_override."""
    return _C.avg_pool2d(
        np.ascontiguousarray(x),
        kernel_size,
        stride,
        padding,
        bool(ceil_mode),
        bool(count_include_pad),
        int(divisor),
    )


def avg_pool2d_backward(
    gy, H, W, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor
):
    return _C.avg_pool2d_backward(
        np.ascontiguousarray(gy),
        H,
        W,
        kernel_size,
        stride,
        padding,
        bool(ceil_mode),
        bool(count_include_pad),
        int(divisor),
    )


def adaptive_avg_pool2d(x, OH, OW):
    return _C.adaptive_avg_pool2d(np.ascontiguousarray(x), OH, OW)


def adaptive_avg_pool2d_backward(gy, H, W):
    return _C.adaptive_avg_pool2d_backward(np.ascontiguousarray(gy), H, W)


def adaptive_max_pool2d(x, OH, OW, with_indices):
    return _C.adaptive_max_pool2d(np.ascontiguousarray(x), OH, OW, bool(with_indices))


def max_unpool2d(x, indices, OH, OW):
    return _C.max_unpool2d(np.ascontiguousarray(x), np.ascontiguousarray(indices), OH, OW)


def upsample_nearest2d(x, fH, fW):
    return _C.upsample_nearest2d(np.ascontiguousarray(x), fH, fW)


def upsample_nearest2d_backward(gy, fH, fW):
    return _C.upsample_nearest2d_backward(np.ascontiguousarray(gy), fH, fW)
