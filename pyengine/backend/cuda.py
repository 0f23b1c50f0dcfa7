"""CUDA backend: glue between CuPy arrays and the kernels of ``pyengine._cuda``.

No kernel logic lives here: this module picks transpose flags, leading
dimensions and batch strides from CuPy array strides, allocates outputs with
CuPy and launches on CuPy's current stream. CuPy is imported lazily so that
importing pyengine works on machines without it.
"""

from __future__ import annotations

import itertools
from types import ModuleType
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import _cuda_state

if TYPE_CHECKING:  # pragma: no cover
    import cupy

__all__ = [
    "is_available",
    "unavailable_reason",
    "require",
    "matmul",
    "gemm",
    "gemm_strided_batched",
    "conv_general",
    "conv_general_grad_input",
    "conv_general_grad_weight",
    "conv_general_grad_bias",
]

_DTYPES = {np.dtype(np.float32): "float32", np.dtype(np.float64): "float64"}
_BIAS_KINDS = {"none": 0, "row": 1, "col": 2}  # as pyengine._C: per row (M) / per column (N)
_ACTS = {"none": 0, "relu": 1, "gelu": 2}


def is_available() -> bool:
    """True when pyengine._cuda is built, CuPy imports and at least one GPU is visible."""
    return _cuda_state.is_available()


def unavailable_reason() -> str | None:
    """Why CUDA cannot be used here (module not built / CuPy missing / no GPU), or None."""
    status = _cuda_state.status()["status"]
    return None if status == "ok" else status


def require() -> tuple[ModuleType, ModuleType]:
    """Return (pyengine._cuda, cupy), or raise RuntimeError("[cuda] ...") saying why not."""
    reason = unavailable_reason()
    if reason is not None:
        raise RuntimeError(f"[cuda] CUDA is not available: {reason}")
    import cupy

    from pyengine import _cuda

    return _cuda, cupy


# ----------------------------------------------------------------------------- helpers


def _dtype_name(op: str, *arrays: cupy.ndarray) -> str:
    dt = arrays[0].dtype
    for x in arrays[1:]:
        if x.dtype != dt:
            names = ", ".join(str(y.dtype) for y in arrays)
            raise TypeError(f"[{op}] operands must have the same dtype but have {names}")
    if dt not in _DTYPES:
        raise TypeError(f"[{op}] dtype must be float32 or float64 but is {dt}")
    return _DTYPES[dt]


def _check_cupy(op: str, cp: ModuleType, **arrays: Any) -> None:
    for name, x in arrays.items():
        if not isinstance(x, cp.ndarray):
            raise TypeError(f"[{op}] {name} must be a cupy.ndarray but is {type(x).__name__}")


def _matrix_layout(x: cupy.ndarray) -> tuple[bool, int] | None:
    """(trans, ld) describing the trailing 2-D matrix of x for the GEMM, or None.

    Not transposed: element (i, k) at i*ld + k. Transposed: at k*ld + i. Size-1
    dimensions impose nothing, so row/column vectors with any stride qualify.
    """
    rows, cols = x.shape[-2:]
    if rows == 0 or cols == 0:  # nothing is read
        return False, max(cols, 1)
    sr, sc = x.strides[-2:]
    e = x.itemsize
    if sr % e or sc % e:
        return None
    sr, sc = sr // e, sc // e
    if (cols <= 1 or sc == 1) and (rows <= 1 or sr >= max(cols, 1)):
        return False, (sr if rows > 1 else max(cols, 1))
    if (rows <= 1 or sr == 1) and (cols <= 1 or sc >= max(rows, 1)):
        return True, (sc if cols > 1 else max(rows, 1))
    return None


def _batch_strides(x: cupy.ndarray, batch: tuple[int, ...]) -> list[int] | None:
    """Element strides of x's batch dims broadcast to `batch` (0 where broadcast)."""
    nb = x.ndim - 2
    out = []
    for d, size in enumerate(batch):
        xd = d - (len(batch) - nb)
        if xd < 0 or x.shape[xd] == 1 or size == 1:
            out.append(0)
            continue
        s = x.strides[xd]
        if s % x.itemsize or s < 0:  # as _C: batch strides are >= 0
            return None
        out.append(s // x.itemsize)
    return out


def _operand(cp: ModuleType, x: cupy.ndarray, batch: tuple[int, ...]):
    """(x, trans, ld, batch strides), copying x to C order only when its strides cannot serve."""
    layout = _matrix_layout(x)
    strides = _batch_strides(x, batch)
    if layout is None or strides is None:
        x = cp.ascontiguousarray(x)  # the one explicit copy: no usable unit stride
        layout = _matrix_layout(x)
        strides = _batch_strides(x, batch)
    assert layout is not None and strides is not None
    return x, layout[0], layout[1], strides


def _merge_batch_dims(sizes: list[int], *strides: list[int]) -> tuple[list[int], list[list[int]]]:
    """Drop size-1 batch dims and merge neighbours that step uniformly for every operand."""
    keep = [d for d, n in enumerate(sizes) if n != 1]
    msizes = [sizes[d] for d in keep]
    mstrides = [[s[d] for d in keep] for s in strides]
    d = len(msizes) - 2
    while d >= 0:
        if all(s[d] == s[d + 1] * msizes[d + 1] for s in mstrides):
            msizes[d] *= msizes[d + 1]
            del msizes[d + 1]
            for s in mstrides:
                s[d] = s.pop(d + 1)  # the merged dim steps like the inner one
        d -= 1
    return msizes, mstrides


# ----------------------------------------------------------------------------- ops


def matmul(
    a: cupy.ndarray, b: cupy.ndarray, bias: cupy.ndarray | None = None, act: str = "none"
) -> cupy.ndarray:
    """``act(a @ b + bias)`` for CuPy arrays with NumPy's matmul semantics (float32 / float64).

    1-D operands are promoted (and the added dimension removed from the result),
    batch dimensions broadcast. Strided views are used in place when one of their
    two trailing strides is the element size; otherwise they are copied to C order.
    bias (optional) is a contiguous 1-D array of length N added to every row, as
    backend.cpu.matmul. Runs on CuPy's current stream.
    """
    mod, cp = require()
    _check_cupy("matmul", cp, a=a, b=b, **({} if bias is None else {"bias": bias}))
    dtype = _dtype_name("matmul", a, b, *([] if bias is None else [bias]))
    if act not in _ACTS:
        raise ValueError(f"[matmul] act must be 'none', 'relu' or 'gelu' but is {act!r}")
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError(
            f"[matmul] operands must have at least 1 dimension but have shapes {a.shape} and "
            f"{b.shape}"
        )
    if a.device != b.device:
        raise ValueError(f"[matmul] operands are on different devices: {a.device} and {b.device}")
    a2 = a[None, :] if a.ndim == 1 else a
    b2 = b[:, None] if b.ndim == 1 else b
    (m, k), (k2, n) = a2.shape[-2:], b2.shape[-2:]
    if k != k2:
        raise ValueError(
            f"[matmul] inner dimensions differ: a has shape {a.shape} (K={k}), b has shape "
            f"{b.shape} (K={k2})"
        )
    try:
        batch = tuple(np.broadcast_shapes(a2.shape[:-2], b2.shape[:-2]))
    except ValueError:
        raise ValueError(
            f"[matmul] batch dimensions do not broadcast: a has shape {a.shape}, b has shape "
            f"{b.shape}"
        ) from None

    if bias is not None and (
        bias.ndim != 1 or bias.shape[0] != n or (n > 1 and bias.strides[0] != bias.itemsize)
    ):
        raise ValueError(
            f"[matmul] bias must be a contiguous 1-D array of length {n} but has shape "
            f"{bias.shape} and strides {bias.strides}"
        )
    with a.device:
        c = cp.empty(batch + (m, n), dtype=a.dtype)
        if c.size:
            _batched_gemm(mod, cp, a2, b2, c, batch, dtype, bias, _ACTS[act])
    if b.ndim == 1:
        c = c[..., 0]
    if a.ndim == 1:
        c = c[..., 0] if b.ndim == 1 else c[..., 0, :]
    return c


def _batched_gemm(
    mod: ModuleType,
    cp: ModuleType,
    a: cupy.ndarray,
    b: cupy.ndarray,
    c: cupy.ndarray,
    batch: tuple[int, ...],
    dtype: str,
    bias: cupy.ndarray | None,
    act: int,
) -> None:
    """c[...] = a[...] @ b[...] over broadcast batch dims: one strided-batched launch per
    combination of the batch dims that cannot be merged into a single stride."""
    a, ta, lda, sa = _operand(cp, a, batch)
    b, tb, ldb, sb = _operand(cp, b, batch)
    sc = [s // c.itemsize for s in c.strides[:-2]]
    m, k = a.shape[-2:]  # logical op(A) is M x K whatever the storage
    n = c.shape[-1]
    sizes, (sa, sb, sc) = _merge_batch_dims(list(batch), sa, sb, sc)
    inner = sizes[-1] if sizes else 1
    isa, isb, isc = (sa[-1], sb[-1], sc[-1]) if sizes else (0, 0, 0)
    e = c.itemsize
    stream = cp.cuda.get_current_stream().ptr
    for idx in itertools.product(*(range(s) for s in sizes[:-1])):
        oa = sum(i * s for i, s in zip(idx, sa)) * e
        ob = sum(i * s for i, s in zip(idx, sb)) * e
        oc = sum(i * s for i, s in zip(idx, sc)) * e
        mod.gemm_strided_batched(
            ta, tb, m, n, k, 1.0,
            a.data.ptr + oa, lda, isa,
            b.data.ptr + ob, ldb, isb,
            0.0, c.data.ptr + oc, n, isc, inner, dtype, stream,
            0 if bias is None else bias.data.ptr, 0 if bias is None else 2, act,
        )  # fmt: skip


def _flat_checks(
    op: str,
    cp: ModuleType,
    ta: bool,
    tb: bool,
    M: int,
    N: int,
    K: int,
    A: cupy.ndarray,
    lda: int,
    sa: int,
    B: cupy.ndarray,
    ldb: int,
    sb: int,
    C: cupy.ndarray,
    ldc: int,
    sc: int,
    batch: int,
    bias: cupy.ndarray | None,
    bias_kind: str,
    act: str,
) -> tuple[str, int, int]:
    """The checks of pyengine._C's gemm on flat buffers, so no launch can touch memory outside
    A, B, C or bias. Returns (dtype name, bias kind code, act code)."""
    named = {"A": A, "B": B, "C": C} | ({} if bias is None else {"bias": bias})
    _check_cupy(op, cp, **named)
    dtype = _dtype_name(op, *named.values())
    for name, x in named.items():
        if not x.flags.c_contiguous:
            raise ValueError(f"[{op}] {name} must be C-contiguous (a flat buffer)")
        if x.device != C.device:
            raise ValueError(f"[{op}] {name} is on {x.device} but C is on {C.device}")
    if bias_kind not in _BIAS_KINDS:
        raise ValueError(f"[{op}] bias_kind must be 'none', 'row' or 'col' but is {bias_kind!r}")
    if act not in _ACTS:
        raise ValueError(f"[{op}] act must be 'none', 'relu' or 'gelu' but is {act!r}")
    if min(M, N, K, batch) < 0:
        raise ValueError(f"[{op}] M, N, K, batch must be >= 0 but are {M}, {N}, {K}, {batch}")

    def span(rows: int, cols: int, ld: int) -> int:
        return 0 if rows == 0 or cols == 0 else (rows - 1) * ld + cols

    def need(stride: int, extent: int) -> int:
        return 0 if batch == 0 or extent == 0 else (batch - 1) * stride + extent

    a_rows, a_cols = (K, M) if ta else (M, K)
    b_rows, b_cols = (N, K) if tb else (K, N)
    # ld and stride rules are checked by _cuda itself; extents need the array sizes.
    if (
        lda >= max(1, a_cols)
        and ldb >= max(1, b_cols)
        and ldc >= max(1, N)
        and min(sa, sb, sc) >= 0
    ):
        for name, x, stride, extent in (
            ("A", A, sa, span(a_rows, a_cols, lda)),
            ("B", B, sb, span(b_rows, b_cols, ldb)),
            ("C", C, sc, span(M, N, ldc)),
        ):
            if name != "C" and (K == 0 or M == 0 or N == 0):
                continue  # nothing read
            if x.size < need(stride, extent):
                raise ValueError(
                    f"[{op}] {name} holds {x.size} elements but {need(stride, extent)} are needed"
                )
    kind = _BIAS_KINDS[bias_kind]
    if kind:
        if bias is None:
            raise ValueError(f"[{op}] bias_kind={bias_kind!r} needs a bias array")
        n = M if kind == 1 else N
        if bias.size < n:
            raise ValueError(f"[{op}] bias holds {bias.size} elements but {n} are needed")
    elif bias is not None:
        raise ValueError(f"[{op}] a bias was given with bias_kind='none'")
    return dtype, kind, _ACTS[act]


def gemm(
    transA: bool,
    transB: bool,
    M: int,
    N: int,
    K: int,
    alpha: float,
    A: cupy.ndarray,
    lda: int,
    B: cupy.ndarray,
    ldb: int,
    beta: float,
    C: cupy.ndarray,
    ldc: int,
    *,
    bias: cupy.ndarray | None = None,
    bias_kind: str = "none",
    act: str = "none",
) -> None:
    """BLAS-style GEMM on flat row-major CuPy buffers; C is overwritten (see cuda/gemm.h).

    Same signature and checks as backend.cpu.gemm; enqueued on CuPy's current stream.
    """
    gemm_strided_batched(
        transA, transB, M, N, K, alpha, A, lda, 0, B, ldb, 0, beta, C, ldc, 0, 1,
        bias=bias, bias_kind=bias_kind, act=act,
    )  # fmt: skip


def gemm_strided_batched(
    transA: bool,
    transB: bool,
    M: int,
    N: int,
    K: int,
    alpha: float,
    A: cupy.ndarray,
    lda: int,
    strideA: int,
    B: cupy.ndarray,
    ldb: int,
    strideB: int,
    beta: float,
    C: cupy.ndarray,
    ldc: int,
    strideC: int,
    batch: int,
    *,
    bias: cupy.ndarray | None = None,
    bias_kind: str = "none",
    act: str = "none",
) -> None:
    """Strided-batched GEMM on flat CuPy buffers: matrix b of A starts at A[b*strideA], etc."""
    mod, cp = require()
    dtype, kind, act_code = _flat_checks(
        "gemm", cp, bool(transA), bool(transB), M, N, K, A, lda, strideA, B, ldb, strideB,
        C, ldc, strideC, batch, bias, bias_kind, act,
    )  # fmt: skip
    with C.device:
        mod.gemm_strided_batched(
            bool(transA), bool(transB), M, N, K, float(alpha),
            A.data.ptr, lda, strideA, B.data.ptr, ldb, strideB,
            float(beta), C.data.ptr, ldc, strideC, batch, dtype,
            cp.cuda.get_current_stream().ptr,
            bias.data.ptr if kind else 0, kind, act_code,
        )  # fmt: skip


# ----------------------------------------------------------------------------- conv
# The generalized convolution of cuda/conv.h with the signatures of backend.cpu's conv
# functions; `geo` holds stride, pad_lo, pad_hi, dilation, input_dilation, groups, flip,
# wtrans. Outputs are new C-contiguous CuPy arrays; inputs must be C-contiguous.


def _conv_arrays(op: str, cp: ModuleType, **arrays: Any) -> str:
    arrays = {k: v for k, v in arrays.items() if v is not None}
    _check_cupy(op, cp, **arrays)
    for name, x in arrays.items():
        if not x.flags.c_contiguous:
            raise ValueError(f"[{op}] {name} must be C-contiguous")
    return _dtype_name(op, *arrays.values())


def conv_general(x, w, bias, geo: dict, op: str = "conv_general"):
    mod, cp = require()
    dtype = _conv_arrays(op, cp, input=x, weight=w, bias=bias)
    shape = tuple(mod.conv_general_output_shape(tuple(x.shape), tuple(w.shape), op=op, **geo))
    if bias is not None and tuple(bias.shape) != (shape[1],):
        raise ValueError(f"[{op}] bias has shape {tuple(bias.shape)} but ({shape[1]},) is expected")
    with x.device:
        y = cp.empty(shape, dtype=x.dtype)
        mod.conv_general(
            x.data.ptr,
            w.data.ptr,
            0 if bias is None else bias.data.ptr,
            y.data.ptr,
            tuple(x.shape),
            tuple(w.shape),
            dtype=dtype,
            stream=cp.cuda.get_current_stream().ptr,
            op=op,
            **geo,
        )
    return y


def conv_general_grad_input(gy, w, input_shape, geo: dict, op: str = "conv_general"):
    mod, cp = require()
    dtype = _conv_arrays(op, cp, grad_output=gy, weight=w)
    input_shape = tuple(int(s) for s in input_shape)
    want = tuple(mod.conv_general_output_shape(input_shape, tuple(w.shape), op=op, **geo))
    if tuple(gy.shape) != want:
        raise ValueError(f"[{op}] grad_output has shape {tuple(gy.shape)} but {want} is expected")
    with gy.device:
        gx = cp.empty(input_shape, dtype=gy.dtype)
        mod.conv_general_grad_input(
            gy.data.ptr,
            w.data.ptr,
            gx.data.ptr,
            input_shape,
            tuple(w.shape),
            dtype=dtype,
            stream=cp.cuda.get_current_stream().ptr,
            op=op,
            **geo,
        )
    return gx


def conv_general_grad_weight(x, gy, weight_shape, geo: dict, op: str = "conv_general"):
    mod, cp = require()
    dtype = _conv_arrays(op, cp, input=x, grad_output=gy)
    weight_shape = tuple(int(s) for s in weight_shape)
    want = tuple(mod.conv_general_output_shape(tuple(x.shape), weight_shape, op=op, **geo))
    if tuple(gy.shape) != want:
        raise ValueError(f"[{op}] grad_output has shape {tuple(gy.shape)} but {want} is expected")
    with x.device:
        gw = cp.empty(weight_shape, dtype=x.dtype)
        mod.conv_general_grad_weight(
            x.data.ptr,
            gy.data.ptr,
            gw.data.ptr,
            tuple(x.shape),
            weight_shape,
            dtype=dtype,
            stream=cp.cuda.get_current_stream().ptr,
            op=op,
            **geo,
        )
    return gw


def conv_general_grad_bias(gy, op: str = "conv_general"):
    mod, cp = require()
    dtype = _conv_arrays(op, cp, grad_output=gy)
    if gy.ndim != 4:
        raise ValueError(f"[{op}] grad_output must be 4-D but has shape {tuple(gy.shape)}")
    with gy.device:
        gb = cp.empty((gy.shape[1],), dtype=gy.dtype)
        mod.conv_general_grad_bias(
            gy.data.ptr,
            gb.data.ptr,
            tuple(gy.shape),
            dtype,
            cp.cuda.get_current_stream().ptr,
            op=op,
        )
    return gb


# ----------------------------------------------------------------------------- attention
# Fused scaled-dot-product attention (cuda/attention.h) on (B, H, L, E) CuPy views; the same
# contract as backend.cpu.sdpa_forward / sdpa_backward. Runs on CuPy's current stream.


def _sdpa_view(cp, x):
    """(array, (sb, sh, sl) in elements) with a unit last stride, copying only when needed."""
    e = x.itemsize
    if x.size and (
        min(x.strides) < 0
        or any(s % e for s in x.strides)
        or (x.shape[3] > 1 and x.strides[3] != e)
        or (x.shape[2] > 1 and x.strides[2] < x.shape[3] * e)
    ):
        x = cp.ascontiguousarray(x)
    return x, [s // e for s in x.strides[:3]]


_SDPA_DTYPES = {**_DTYPES, np.dtype(np.float16): "float16"}


def _sdpa_acc(dtype):
    """The dtype of lse and rowdot: float32 for float16 inputs (float32 accumulation)."""
    return np.dtype(np.float32) if dtype == np.float16 else dtype


def _sdpa_args(cp, q, k, v, attn_mask, is_causal, scale, dropout_p, seed):
    op = "scaled_dot_product_attention"
    if not (q.dtype == k.dtype == v.dtype) or q.dtype not in _SDPA_DTYPES:
        raise TypeError(
            f"[{op}] q, k, v must share one dtype of float32, float64 or float16 "
            f"but are {q.dtype}, {k.dtype}, {v.dtype}"
        )
    dtype = _SDPA_DTYPES[q.dtype]
    (q, qs), (k, ks), (v, vs) = (_sdpa_view(cp, x) for x in (q, k, v))
    B, H, Lq, D = q.shape
    Lk, Dv = k.shape[2], v.shape[3]
    mptr, mkind, ms = 0, 0, [0, 0, 0, 0]
    if attn_mask is not None:
        mkind = 1 if attn_mask.dtype == np.bool_ else 2
        mptr = attn_mask.data.ptr
        ms = [s // attn_mask.itemsize for s in attn_mask.strides]
    keep = (q, k, v, attn_mask)  # alive until the launch is enqueued
    args = dict(
        dtype=dtype, B=B, H=H, Lq=Lq, Lk=Lk, D=D, Dv=Dv,
        q=q.data.ptr, q_strides=qs, k=k.data.ptr, k_strides=ks, v=v.data.ptr, v_strides=vs,
        mask=mptr, mask_kind=mkind, mask_strides=ms, is_causal=bool(is_causal),
        scale=float(scale), dropout_p=float(dropout_p), seed=int(seed),
    )  # fmt: skip
    return args, keep


def sdpa_forward(q, k, v, attn_mask, is_causal, scale, dropout_p, seed):
    """(out (B,H,Lq,Dv), lse (B,H,Lq)); attn_mask None or broadcast to (B,H,Lq,Lk)."""
    mod, cp = require()
    args, _keep = _sdpa_args(cp, q, k, v, attn_mask, is_causal, scale, dropout_p, seed)
    B, H, Lq, Dv = args["B"], args["H"], args["Lq"], args["Dv"]
    with q.device:
        out = cp.empty((B, H, Lq, Dv), dtype=q.dtype)
        lse = cp.empty((B, H, Lq), dtype=_sdpa_acc(q.dtype))
        mod.sdpa_forward(
            **args, out=out.data.ptr, lse=lse.data.ptr, stream=cp.cuda.get_current_stream().ptr
        )
    return out, lse


def sdpa_backward(q, k, v, attn_mask, is_causal, scale, dropout_p, seed, out, lse, grad_out):
    """(dq, dk, dv) from the forward's out and lse; grad_out (B,H,Lq,Dv) C-contiguous."""
    mod, cp = require()
    args, _keep = _sdpa_args(cp, q, k, v, attn_mask, is_causal, scale, dropout_p, seed)
    B, H, Lq, Lk, D, Dv = (args[n] for n in ("B", "H", "Lq", "Lk", "D", "Dv"))
    with q.device:
        out, lse, grad_out = (cp.ascontiguousarray(x) for x in (out, lse, grad_out))
        dq = cp.empty((B, H, Lq, D), dtype=q.dtype)
        dk = cp.empty((B, H, Lk, D), dtype=q.dtype)
        dv = cp.empty((B, H, Lk, Dv), dtype=q.dtype)
        rowdot = cp.empty((max(B * H * Lq, 1),), dtype=_sdpa_acc(q.dtype))
        mod.sdpa_backward(
            **args,
            out=out.data.ptr,
            lse=lse.data.ptr,
            grad_out=grad_out.data.ptr,
            rowdot=rowdot.data.ptr,
            dq=dq.data.ptr,
            dk=dk.data.ptr,
            dv=dv.data.ptr,
            stream=cp.cuda.get_current_stream().ptr,
        )
    return dq, dk, dv


# ----------------------------------------------------------------------------- lstm / gru
# One recurrent layer, one direction per call (cuda/lstm.h); same signatures as the CPU
# backend's. Saved arrays are required by the CUDA kernels, so inference allocates them here
# (as it does the scratch arrays); everything runs on CuPy's current stream.


def _rnn_ptr(a) -> int:
    return 0 if a is None else int(a.data.ptr)


def _rnn_check(op: str, cp: ModuleType, dt, arrays: dict) -> None:
    """arrays: name -> (array or None, expected shape); C-contiguous cupy arrays of dtype dt."""
    for name, (a, shape) in arrays.items():
        if a is None:
            continue
        if not isinstance(a, cp.ndarray):
            raise TypeError(f"[{op}] {name} must be a cupy.ndarray but is {type(a).__name__}")
        if a.dtype != dt:
            raise TypeError(f"[{op}] {name} has dtype {a.dtype} but {dt} was expected")
        if shape is not None and tuple(a.shape) != tuple(shape):
            raise ValueError(
                f"[{op}] {name} must have shape {tuple(shape)} but has {tuple(a.shape)}"
            )
        if not a.flags.c_contiguous:
            raise ValueError(f"[{op}] {name} must be C-contiguous")


def _rnn_common(op: str, G: int, x, w_ih, w_hh, y, y_offset, batch_first, lengths):
    _cuda, cp = require()
    if x.ndim != 3:
        raise ValueError(f"[{op}] input must be 3-D but has {x.ndim} dimensions")
    T, N = (x.shape[1], x.shape[0]) if batch_first else (x.shape[0], x.shape[1])
    I, H = x.shape[2], w_hh.shape[-1]
    dt = _dtype_name(op, x, w_ih, w_hh)
    _rnn_check(
        op,
        cp,
        x.dtype,
        {"input": (x, None), "weight_ih": (w_ih, (G * H, I)), "weight_hh": (w_hh, (G * H, H))},
    )
    ldy, yp = 0, 0
    if y is not None:
        _rnn_check(op, cp, x.dtype, {"output": (y, None)})
        if y.shape[:2] != x.shape[:2] or y.shape[2] < y_offset + H:
            raise ValueError(f"[{op}] output has shape {tuple(y.shape)}, too small")
        ldy, yp = y.shape[2], _rnn_ptr(y) + int(y_offset) * y.itemsize
    lens = None
    if lengths is not None:
        lens = cp.asarray(np.ascontiguousarray(lengths, dtype=np.int64))
        if lens.shape != (N,):
            raise ValueError(f"[{op}] lengths must have shape ({N},)")
    return _cuda, cp, dt, (T, N, I, H), ldy, yp, lens


def lstm_layer_forward(
    x, w_ih, w_hh, b_ih, b_hh, h0, c0, y, y_offset, h_n, c_n, saved, batch_first, reverse, lengths
):
    _cuda, cp, dt, (T, N, I, H), ldy, yp, lens = _rnn_common(
        "lstm", 4, x, w_ih, w_hh, y, y_offset, batch_first, lengths
    )
    if saved is None:
        saved = tuple(cp.empty((T * N, k * H), dtype=x.dtype) for k in (4, 1, 1))
    st = (N, H)
    _rnn_check(
        "lstm",
        cp,
        x.dtype,
        {
            "bias_ih": (b_ih, (4 * H,)),
            "bias_hh": (b_hh, (4 * H,)),
            "h0": (h0, st),
            "c0": (c0, st),
            "h_n": (h_n, st),
            "c_n": (c_n, st),
            "gates": (saved[0], (T * N, 4 * H)),
            "c_saved": (saved[1], (T * N, H)),
            "h_saved": (saved[2], (T * N, H)),
        },
    )
    _cuda.lstm_layer_forward(
        _rnn_ptr(x),
        _rnn_ptr(w_ih),
        _rnn_ptr(w_hh),
        _rnn_ptr(b_ih),
        _rnn_ptr(b_hh),
        _rnn_ptr(h0),
        _rnn_ptr(c0),
        yp,
        ldy,
        _rnn_ptr(h_n),
        _rnn_ptr(c_n),
        *map(_rnn_ptr, saved),
        T,
        N,
        I,
        H,
        bool(batch_first),
        bool(reverse),
        _rnn_ptr(lens),
        dt,
        cp.cuda.get_current_stream().ptr,
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
    _cuda, cp, dt, (T, N, I, H), ldy, dyp, lens = _rnn_common(
        "lstm", 4, x, w_ih, w_hh, dy, y_offset, batch_first, lengths
    )
    st = (N, H)
    _rnn_check(
        "lstm",
        cp,
        x.dtype,
        {
            "c0": (c0, st),
            "gates": (saved[0], (T * N, 4 * H)),
            "c_saved": (saved[1], (T * N, H)),
            "h_saved": (saved[2], (T * N, H)),
            "grad_h_n": (dh_n, st),
            "grad_c_n": (dc_n, st),
            "grad_input": (dx, x.shape),
            "grad_h0": (dh0, st),
            "grad_c0": (dc0, st),
            "grad_weight_ih": (dw_ih, (4 * H, I)),
            "grad_weight_hh": (dw_hh, (4 * H, H)),
            "grad_bias": (db, (4 * H,)),
        },
    )
    dgates = cp.empty((T * N, 4 * H), dtype=x.dtype)
    _cuda.lstm_layer_backward(
        _rnn_ptr(x),
        _rnn_ptr(w_ih),
        _rnn_ptr(w_hh),
        _rnn_ptr(c0),
        *map(_rnn_ptr, saved),
        dyp,
        ldy,
        _rnn_ptr(dh_n),
        _rnn_ptr(dc_n),
        _rnn_ptr(dx),
        bool(dx_accumulate),
        _rnn_ptr(dh0),
        _rnn_ptr(dc0),
        _rnn_ptr(dw_ih),
        _rnn_ptr(dw_hh),
        _rnn_ptr(db),
        _rnn_ptr(dgates),
        T,
        N,
        I,
        H,
        bool(batch_first),
        bool(reverse),
        _rnn_ptr(lens),
        dt,
        cp.cuda.get_current_stream().ptr,
    )


def gru_layer_forward(
    x, w_ih, w_hh, b_ih, b_hh, h0, y, y_offset, h_n, saved, batch_first, reverse, lengths
):
    _cuda, cp, dt, (T, N, I, H), ldy, yp, lens = _rnn_common(
        "gru", 3, x, w_ih, w_hh, y, y_offset, batch_first, lengths
    )
    if saved is None:
        saved = tuple(cp.empty((T * N, k * H), dtype=x.dtype) for k in (3, 1, 1))
    st = (N, H)
    _rnn_check(
        "gru",
        cp,
        x.dtype,
        {
            "bias_ih": (b_ih, (3 * H,)),
            "bias_hh": (b_hh, (3 * H,)),
            "h0": (h0, st),
            "h_n": (h_n, st),
            "gates": (saved[0], (T * N, 3 * H)),
            "hn_saved": (saved[1], (T * N, H)),
            "h_saved": (saved[2], (T * N, H)),
        },
    )
    gh = cp.empty((N, 3 * H), dtype=x.dtype)
    _cuda.gru_layer_forward(
        _rnn_ptr(x),
        _rnn_ptr(w_ih),
        _rnn_ptr(w_hh),
        _rnn_ptr(b_ih),
        _rnn_ptr(b_hh),
        _rnn_ptr(h0),
        yp,
        ldy,
        _rnn_ptr(h_n),
        *map(_rnn_ptr, saved),
        _rnn_ptr(gh),
        T,
        N,
        I,
        H,
        bool(batch_first),
        bool(reverse),
        _rnn_ptr(lens),
        dt,
        cp.cuda.get_current_stream().ptr,
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
    _cuda, cp, dt, (T, N, I, H), ldy, dyp, lens = _rnn_common(
        "gru", 3, x, w_ih, w_hh, dy, y_offset, batch_first, lengths
    )
    st = (N, H)
    _rnn_check(
        "gru",
        cp,
        x.dtype,
        {
            "gates": (saved[0], (T * N, 3 * H)),
            "hn_saved": (saved[1], (T * N, H)),
            "h_saved": (saved[2], (T * N, H)),
            "grad_h_n": (dh_n, st),
            "grad_input": (dx, x.shape),
            "grad_h0": (dh0, st),
            "grad_weight_ih": (dw_ih, (3 * H, I)),
            "grad_weight_hh": (dw_hh, (3 * H, H)),
            "grad_bias_ih": (db_ih, (3 * H,)),
            "grad_bias_hh": (db_hh, (3 * H,)),
        },
    )
    dgi = cp.empty((T * N, 3 * H), dtype=x.dtype)
    dgh = cp.empty((T * N, 3 * H), dtype=x.dtype)
    _cuda.gru_layer_backward(
        _rnn_ptr(x),
        _rnn_ptr(w_ih),
        _rnn_ptr(w_hh),
        *map(_rnn_ptr, saved),
        dyp,
        ldy,
        _rnn_ptr(dh_n),
        _rnn_ptr(dx),
        bool(dx_accumulate),
        _rnn_ptr(dh0),
        _rnn_ptr(dw_ih),
        _rnn_ptr(dw_hh),
        _rnn_ptr(db_ih),
        _rnn_ptr(db_hh),
        _rnn_ptr(dgi),
        _rnn_ptr(dgh),
        T,
        N,
        I,
        H,
        bool(batch_first),
        bool(reverse),
        _rnn_ptr(lens),
        dt,
        cp.cuda.get_current_stream().ptr,
    )


# ----------------------------------------------------------------------------- pooling
# cuda/pool.h with the signatures of backend.cpu's pooling functions: 4-D NCHW CuPy arrays
# (copied to C order when they are not), outputs allocated here, CuPy's current stream.


def _pool_prep(op: str, *arrays):
    """(module, cupy, dtype name, C-contiguous arrays); the first array sets the dtype."""
    mod, cp = require()
    _check_cupy(op, cp, **{f"arg{i}": a for i, a in enumerate(arrays)})
    dtype = _dtype_name(op, arrays[0])
    for a in arrays:
        if a.ndim != 4:
            raise ValueError(f"[{op}] expects 4-D (N, C, H, W) arrays but got shape {a.shape}")
    return mod, cp, dtype, [cp.ascontiguousarray(a) for a in arrays]


def _pool_idx(op: str, cp, idx):
    if idx.dtype != np.int64:
        raise TypeError(f"[{op}] indices must be int64 but are {idx.dtype}")
    return cp.ascontiguousarray(idx)


def max_pool2d(x, kernel_size, stride, padding, dilation, ceil_mode, with_indices):
    """(y, indices or None), as backend.cpu.max_pool2d."""
    mod, cp, dtype, (x,) = _pool_prep("max_pool2d", x)
    with x.device:
        shape = tuple(
            mod.pool2d_output_shape(
                tuple(x.shape),
                tuple(kernel_size),
                tuple(stride),
                tuple(padding),
                tuple(dilation),
                bool(ceil_mode),
                "max_pool2d",
            )
        )
        y = cp.empty(shape, dtype=x.dtype)
        idx = cp.empty(shape, dtype=np.int64) if with_indices else None
        mod.max_pool2d(
            x.data.ptr,
            y.data.ptr,
            0 if idx is None else idx.data.ptr,
            tuple(x.shape),
            tuple(kernel_size),
            tuple(stride),
            tuple(padding),
            tuple(dilation),
            bool(ceil_mode),
            dtype,
            cp.cuda.get_current_stream().ptr,
        )
    return y, idx


def max_pool2d_backward(gy, indices, H, W):
    mod, cp, dtype, (gy,) = _pool_prep("max_pool2d_backward", gy)
    idx = _pool_idx("max_pool2d_backward", cp, indices)
    if idx.shape != gy.shape:
        raise ValueError(
            f"[max_pool2d_backward] indices must have shape {gy.shape} but have {idx.shape}"
        )
    with gy.device:
        gx = cp.empty(gy.shape[:2] + (H, W), dtype=gy.dtype)
        mod.max_pool2d_backward(
            gy.data.ptr,
            idx.data.ptr,
            gx.data.ptr,
            tuple(gy.shape),
            H,
            W,
            dtype,
            cp.cuda.get_current_stream().ptr,
        )
    return gx


def pool_gather(src, indices):
    mod, cp, dtype, (src,) = _pool_prep("pool_gather", src)
    idx = _pool_idx("pool_gather", cp, indices)
    if idx.ndim != 4 or idx.shape[:2] != src.shape[:2]:
        raise ValueError(f"[pool_gather] indices {idx.shape} and src {src.shape} differ in N or C")
    with src.device:
        out = cp.empty(idx.shape, dtype=src.dtype)
        mod.pool_gather(
            src.data.ptr,
            idx.data.ptr,
            out.data.ptr,
            tuple(src.shape),
            tuple(idx.shape),
            dtype,
            cp.cuda.get_current_stream().ptr,
        )
    return out


def avg_pool2d(x, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor):
    mod, cp, dtype, (x,) = _pool_prep("avg_pool2d", x)
    with x.device:
        shape = tuple(
            mod.pool2d_output_shape(
                tuple(x.shape),
                tuple(kernel_size),
                tuple(stride),
                tuple(padding),
                (1, 1),
                bool(ceil_mode),
                "avg_pool2d",
            )
        )
        y = cp.empty(shape, dtype=x.dtype)
        mod.avg_pool2d(
            x.data.ptr,
            y.data.ptr,
            tuple(x.shape),
            tuple(kernel_size),
            tuple(stride),
            tuple(padding),
            bool(ceil_mode),
            bool(count_include_pad),
            int(divisor),
            False,
            dtype,
            cp.cuda.get_current_stream().ptr,
        )
    return y


def avg_pool2d_backward(
    gy, H, W, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor
):
    op = "avg_pool2d_backward"
    mod, cp, dtype, (gy,) = _pool_prep(op, gy)
    x_shape = tuple(gy.shape[:2]) + (H, W)
    with gy.device:
        want = tuple(
            mod.pool2d_output_shape(
                x_shape,
                tuple(kernel_size),
                tuple(stride),
                tuple(padding),
                (1, 1),
                bool(ceil_mode),
                op,
            )
        )
        if want != tuple(gy.shape):
            raise ValueError(
                f"[{op}] grad_output has shape {gy.shape} but the pooling gives {want}"
            )
        gx = cp.empty(x_shape, dtype=gy.dtype)
        mod.avg_pool2d(
            gy.data.ptr,
            gx.data.ptr,
            x_shape,
            tuple(kernel_size),
            tuple(stride),
            tuple(padding),
            bool(ceil_mode),
            bool(count_include_pad),
            int(divisor),
            True,
            dtype,
            cp.cuda.get_current_stream().ptr,
        )
    return gx


def adaptive_avg_pool2d(x, OH, OW):
    mod, cp, dtype, (x,) = _pool_prep("adaptive_avg_pool2d", x)
    with x.device:
        y = cp.empty(tuple(x.shape[:2]) + (OH, OW), dtype=x.dtype)
        mod.adaptive_avg_pool2d(
            x.data.ptr,
            y.data.ptr,
            tuple(x.shape),
            OH,
            OW,
            False,
            dtype,
            cp.cuda.get_current_stream().ptr,
        )
    return y


def adaptive_avg_pool2d_backward(gy, H, W):
    mod, cp, dtype, (gy,) = _pool_prep("adaptive_avg_pool2d_backward", gy)
    x_shape = tuple(gy.shape[:2]) + (H, W)
    with gy.device:
        gx = cp.empty(x_shape, dtype=gy.dtype)
        mod.adaptive_avg_pool2d(
            gy.data.ptr,
            gx.data.ptr,
            x_shape,
            gy.shape[2],
            gy.shape[3],
            True,
            dtype,
            cp.cuda.get_current_stream().ptr,
        )
    return gx


def adaptive_max_pool2d(x, OH, OW, with_indices):
    mod, cp, dtype, (x,) = _pool_prep("adaptive_max_pool2d", x)
    with x.device:
        shape = tuple(x.shape[:2]) + (OH, OW)
        y = cp.empty(shape, dtype=x.dtype)
        idx = cp.empty(shape, dtype=np.int64) if with_indices else None
        mod.adaptive_max_pool2d(
            x.data.ptr,
            y.data.ptr,
            0 if idx is None else idx.data.ptr,
            tuple(x.shape),
            OH,
            OW,
            dtype,
            cp.cuda.get_current_stream().ptr,
        )
    return y, idx


def max_unpool2d(x, indices, OH, OW):
    """Scatter x at indices into zeros. The indices are checked first, which synchronizes
    (an invalid index must raise before anything is written, as on the CPU)."""
    op = "max_unpool2d"
    mod, cp, dtype, (x,) = _pool_prep(op, x)
    idx = _pool_idx(op, cp, indices)
    if idx.shape != x.shape:
        raise ValueError(f"[{op}] indices must have shape {x.shape} but have {idx.shape}")
    with x.device:
        if idx.size:
            bad = (idx < 0) | (idx >= OH * OW)
            if bool(bad.any()):
                first = int(idx.reshape(-1)[int(cp.argmax(bad.reshape(-1)))])
                raise ValueError(
                    f"[{op}] Found an invalid max index: {first} (output volumes "
                    f"are of size {OH}x{OW})"
                )
        y = cp.empty(tuple(x.shape[:2]) + (OH, OW), dtype=x.dtype)
        mod.max_unpool2d(
            x.data.ptr,
            idx.data.ptr,
            y.data.ptr,
            tuple(x.shape),
            OH,
            OW,
            dtype,
            cp.cuda.get_current_stream().ptr,
        )
    return y


def upsample_nearest2d(x, fH, fW):
    mod, cp, dtype, (x,) = _pool_prep("upsample_nearest2d", x)
    with x.device:
        y = cp.empty(tuple(x.shape[:2]) + (x.shape[2] * fH, x.shape[3] * fW), dtype=x.dtype)
        mod.upsample_nearest2d(
            x.data.ptr,
            y.data.ptr,
            tuple(x.shape),
            fH,
            fW,
            False,
            dtype,
            cp.cuda.get_current_stream().ptr,
        )
    return y


def upsample_nearest2d_backward(gy, fH, fW):
    op = "upsample_nearest2d_backward"
    mod, cp, dtype, (gy,) = _pool_prep(op, gy)
    if gy.shape[2] % fH or gy.shape[3] % fW:
        raise ValueError(
            f"[{op}] grad_output {gy.shape} is not a multiple of the factors {fH}, {fW}"
        )
    x_shape = tuple(gy.shape[:2]) + (gy.shape[2] // fH, gy.shape[3] // fW)
    with gy.device:
        gx = cp.empty(x_shape, dtype=gy.dtype)
        mod.upsample_nearest2d(
            gy.data.ptr, gx.data.ptr, x_shape, fH, fW, True, dtype, cp.cuda.get_current_stream().ptr
        )
    return gx


# ----------------------------------------------------------------------------- norm / softmax
# cuda/norm.h and cuda/softmax.h: same signatures and return values as backend.cpu's functions
# of these families. Inputs are made C-contiguous (an explicit copy only for strided views);
# outputs are allocated with CuPy; launches go on CuPy's current stream.


def _nf_prep(op: str, *arrays):
    """(mod, cp, dtype name, contiguous arrays) for float operands of one dtype (None passes)."""
    mod, cp = require()
    present = [a for a in arrays if a is not None]
    _check_cupy(op, cp, **{f"arg{i}": a for i, a in enumerate(present)})
    dtype = _dtype_name(op, *present)
    return mod, cp, dtype, [None if a is None else cp.ascontiguousarray(a) for a in arrays]


def _p(a) -> int:
    return 0 if a is None else a.data.ptr


def _stream(cp) -> int:
    return cp.cuda.get_current_stream().ptr


def _bn_dims(x):
    N, C = x.shape[0], x.shape[1]
    S = 1
    for s in x.shape[2:]:
        S *= s
    return N, C, S


def batch_norm_forward(x, weight, bias, running_mean, running_var, training, momentum, eps):
    mod, cp, dt, (x, weight, bias) = _nf_prep("batch_norm", x, weight, bias)
    N, C, S = _bn_dims(x)
    for name, r in (("running_mean", running_mean), ("running_var", running_var)):
        if r is not None and (not r.flags.c_contiguous or r.dtype != x.dtype):
            raise ValueError(f"[batch_norm] {name} must be a contiguous {x.dtype} array")
    with x.device:
        y = cp.empty_like(x)
        mean = cp.empty((C,), dtype=x.dtype)
        invstd = cp.empty((C,), dtype=x.dtype)
        mod.batch_norm_forward(
            _p(x),
            _p(weight),
            _p(bias),
            _p(running_mean),
            _p(running_var),
            _p(y),
            _p(mean),
            _p(invstd),
            N,
            C,
            S,
            bool(training),
            float(momentum),
            float(eps),
            dt,
            _stream(cp),
        )
    return y, mean, invstd


def batch_norm_backward(dy, x, weight, save_mean, save_invstd, training, needs):
    mod, cp, dt, (dy, x, weight) = _nf_prep("batch_norm", dy, x, weight)
    N, C, S = _bn_dims(x)
    with x.device:
        dx = cp.empty_like(x) if needs[0] else None
        dw = cp.empty((C,), dtype=x.dtype) if needs[1] else None
        db = cp.empty((C,), dtype=x.dtype) if needs[2] else None
        mod.batch_norm_backward(
            _p(dy),
            _p(x),
            _p(weight),
            _p(save_mean),
            _p(save_invstd),
            _p(dx),
            _p(dw),
            _p(db),
            N,
            C,
            S,
            bool(training),
            dt,
            _stream(cp),
        )
    return dx, dw, db


def layer_norm_forward(x2, weight, bias, eps):
    mod, cp, dt, (x2, weight, bias) = _nf_prep("layer_norm", x2, weight, bias)
    M, N = x2.shape
    with x2.device:
        y = cp.empty_like(x2)
        mean = cp.empty((M,), dtype=x2.dtype)
        rstd = cp.empty((M,), dtype=x2.dtype)
        mod.layer_norm_forward(
            _p(x2),
            _p(weight),
            _p(bias),
            _p(y),
            _p(mean),
            _p(rstd),
            M,
            N,
            float(eps),
            dt,
            _stream(cp),
        )
    return y, mean, rstd


def layer_norm_backward(dy2, x2, weight, mean, rstd, needs):
    mod, cp, dt, (dy2, x2, weight) = _nf_prep("layer_norm", dy2, x2, weight)
    M, N = x2.shape
    with x2.device:
        dx = cp.empty_like(x2) if needs[0] else None
        dw = cp.empty((N,), dtype=x2.dtype) if needs[1] else None
        db = cp.empty((N,), dtype=x2.dtype) if needs[2] else None
        mod.layer_norm_backward(
            _p(dy2),
            _p(x2),
            _p(weight),
            _p(mean),
            _p(rstd),
            _p(dx),
            _p(dw),
            _p(db),
            M,
            N,
            dt,
            _stream(cp),
        )
    return dx, dw, db


def _split_dim(shape, dim):
    outer = inner = 1
    for s in shape[:dim]:
        outer *= s
    for s in shape[dim + 1 :]:
        inner *= s
    return outer, (shape[dim] if shape else 1), inner


def softmax_forward(x, dim, log):
    op = "log_softmax" if log else "softmax"
    mod, cp, dt, (x,) = _nf_prep(op, x)
    outer, d, inner = _split_dim(x.shape, dim % max(x.ndim, 1))
    with x.device:
        y = cp.empty_like(x)
        mod.softmax_forward(_p(x), _p(y), outer, d, inner, bool(log), dt, _stream(cp))
    return y


def softmax_backward(y, dy, dim, log):
    op = "log_softmax" if log else "softmax"
    mod, cp, dt, (y, dy) = _nf_prep(op, y, dy)
    outer, d, inner = _split_dim(y.shape, dim % max(y.ndim, 1))
    with y.device:
        dx = cp.empty_like(y)
        mod.softmax_backward(_p(y), _p(dy), _p(dx), outer, d, inner, bool(log), dt, _stream(cp))
    return dx


def _check_targets(op, cp, target, C, ignore_index):
    """Every class index in [0, C) or == ignore_index (one device reduction and a sync)."""
    if target.dtype != np.int64:
        raise TypeError(f"[{op}] class-index target must be int64 but is {target.dtype}")
    if target.size:
        bad = cp.logical_and(target != ignore_index, cp.logical_or(target < 0, target >= C))
        if bool(bad.any()):
            v = int(target[bad].ravel()[0])
            raise ValueError(
                f"[{op}] target {v} is out of bounds: expected a class index in "
                f"[0, {C}) or ignore_index ({ignore_index})"
            )


def cross_entropy_forward(x, target, weight, ignore_index, label_smoothing, need_grad):
    op = "cross_entropy"
    mod, cp, dt, (x, weight) = _nf_prep(op, x, weight)
    N, C, D = _bn_dims(x)
    target = cp.ascontiguousarray(target)
    probs = target.dtype.kind == "f"
    if probs:
        _dtype_name(op, x, target)
    else:
        _check_targets(op, cp, target, C, ignore_index)
    sshape = (x.shape[0],) + tuple(x.shape[2:])
    with x.device:
        loss = cp.empty(sshape, dtype=x.dtype)
        sw = cp.empty(sshape, dtype=x.dtype)
        dl = cp.empty_like(x) if need_grad else None
        mod.cross_entropy_forward(
            _p(x),
            0 if probs else _p(target),
            _p(target) if probs else 0,
            _p(weight),
            _p(loss),
            _p(sw),
            _p(dl),
            N,
            C,
            D,
            int(ignore_index),
            float(label_smoothing),
            dt,
            _stream(cp),
        )
    return loss, sw, dl


def nll_loss_forward(x, target, weight, ignore_index):
    op = "nll_loss"
    mod, cp, dt, (x, weight) = _nf_prep(op, x, weight)
    N, C, D = _bn_dims(x)
    target = cp.ascontiguousarray(target)
    _check_targets(op, cp, target, C, ignore_index)
    sshape = (x.shape[0],) + tuple(x.shape[2:])
    with x.device:
        loss = cp.empty(sshape, dtype=x.dtype)
        sw = cp.empty(sshape, dtype=x.dtype)
        mod.nll_loss_forward(
            _p(x),
            _p(target),
            _p(weight),
            _p(loss),
            _p(sw),
            N,
            C,
            D,
            int(ignore_index),
            dt,
            _stream(cp),
        )
    return loss, sw


def nll_loss_backward(x, target, weight, ignore_index, g):
    op = "nll_loss"
    mod, cp, dt, (x, weight, g) = _nf_prep(op, x, weight, g)
    N, C, D = _bn_dims(x)
    target = cp.ascontiguousarray(target)
    with x.device:
        dx = cp.empty_like(x)
        mod.nll_loss_backward(
            _p(target), _p(weight), _p(g), _p(dx), N, C, D, int(ignore_index), dt, _stream(cp)
        )
    return dx


def erf(x):
    """Elementwise erf (CuPy's special function kernel)."""
    require()
    from cupyx.scipy.special import erf as _erf

    return _erf(x)
