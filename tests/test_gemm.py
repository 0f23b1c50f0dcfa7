"""Kernel-level GEMM: pe.gemm / pe.gemm_strided_batched against tests/reference/gemm.py.

Every test runs under each CPU ISA path (fixture ``cpu_isa``). Buffers are flat
row-major; the elements a call must not touch are poisoned: gaps of A and B hold
NaN (they must not reach the result) and gaps of C hold a sentinel (they must
survive unchanged). Tolerance is the classical bound for a dot product of length
K: |C - C_ref| <= (K + 4) eps (|alpha| |op(A)| |op(B)| + |beta| |C| + |bias|).
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from reference import gemm as R

import pyengine as pe

SIZES = [0, 1, 2, 7, 15, 16, 17, 31, 33, 127, 257]
TRANS = [(False, False), (False, True), (True, False), (True, True)]
TRANS_IDS = ["NN", "NT", "TN", "TT"]
DTYPES = [np.float32, np.float64]
SENTINEL = 12345.0


def _triples():
    """Each size in each position at least twice, in varied company (a Latin design), plus cubes."""
    n = len(SIZES)
    out = []
    for a, b in [(3, 7), (5, 2)]:
        for i in range(n):
            out.append((SIZES[i], SIZES[(i + a) % n], SIZES[(i + b) % n]))
    out += [(1, 1, 1), (16, 16, 16), (17, 17, 17), (33, 31, 257), (257, 257, 257)]
    return out


TRIPLES = _triples()


# ------------------------------------------------------------------ problems


def _matrix_buffer(rng, rows, rowlen, ld, dtype, gap_value=np.nan, extra=0):
    """Flat buffer of rows x ld (+ extra): the rows x rowlen block random, the rest gap_value."""
    buf = np.full(rows * ld + extra, gap_value, dtype=dtype)
    if rows and rowlen:
        buf[: rows * ld].reshape(rows, ld)[:, :rowlen] = rng.uniform(-1, 1, (rows, rowlen))
    return buf


class Problem:
    """One gemm call: the buffers, their layout, and what to compare after the call."""

    def __init__(
        self,
        rng,
        transA,
        transB,
        M,
        N,
        K,
        dtype,
        *,
        alpha=1.0,
        beta=0.0,
        pad=(0, 0, 0),
        c_values=None,
        bias_kind="none",
        act="none",
    ):
        self.transA, self.transB, self.M, self.N, self.K = transA, transB, M, N, K
        self.alpha, self.beta, self.dtype = alpha, beta, np.dtype(dtype)
        rowsA, rowlenA = (K, M) if transA else (M, K)
        rowsB, rowlenB = (N, K) if transB else (K, N)
        self.lda = max(rowlenA, 1) + pad[0]
        self.ldb = max(rowlenB, 1) + pad[1]
        self.ldc = max(N, 1) + pad[2]
        self.A = _matrix_buffer(rng, rowsA, rowlenA, self.lda, dtype)
        self.B = _matrix_buffer(rng, rowsB, rowlenB, self.ldb, dtype)
        self.C = _matrix_buffer(rng, M, N, self.ldc, dtype, gap_value=SENTINEL)
        if c_values is not None:  # e.g. NaN / Inf to show beta == 0 does not read C
            self.C[R.c_indices(M, N, self.ldc)] = c_values
        self.bias_kind, self.act = bias_kind, act
        n_bias = {"row": M, "col": N}.get(bias_kind)
        self.bias = rng.uniform(-1, 1, n_bias).astype(dtype) if n_bias is not None else None
        self.C0, self.A0, self.B0 = self.C.copy(), self.A.copy(), self.B.copy()

    def args(self):
        return (
            self.transA,
            self.transB,
            self.M,
            self.N,
            self.K,
            self.alpha,
            self.A,
            self.lda,
            self.B,
            self.ldb,
            self.beta,
            self.C,
            self.ldc,
        )

    def kw(self):
        return dict(bias=self.bias, bias_kind=self.bias_kind, act=self.act)

    def run(self):
        return pe.gemm(*self.args(), **self.kw())

    def check(self, C=None):
        C = self.C if C is None else np.asarray(C)
        ref = R.gemm(
            self.transA,
            self.transB,
            self.M,
            self.N,
            self.K,
            self.alpha,
            self.A0,
            self.lda,
            self.B0,
            self.ldb,
            self.beta,
            self.C0,
            self.ldc,
            **self.kw(),
        )
        tol = gemm_tolerance(self, self.C0)
        check_c(C, ref, tol, self.M, self.N, self.ldc, self.C0)
        np.testing.assert_array_equal(self.A, self.A0, err_msg="gemm modified A")
        np.testing.assert_array_equal(self.B, self.B0, err_msg="gemm modified B")


def gemm_tolerance(p, C0, offA=0, offB=0, offC=0):
    """Elementwise bound on |C - C_ref| for the M x N block (see module docstring)."""
    eps = float(np.finfo(p.dtype).eps)
    absA = np.nan_to_num(np.abs(p.A0.astype(np.float64)), nan=0.0)
    absB = np.nan_to_num(np.abs(p.B0.astype(np.float64)), nan=0.0)
    absC = np.nan_to_num(np.abs(C0.astype(np.float64)), nan=0.0, posinf=0.0)
    bias = None if p.bias is None else np.abs(p.bias)
    mag = R.gemm(
        p.transA,
        p.transB,
        p.M,
        p.N,
        p.K,
        abs(p.alpha),
        absA,
        p.lda,
        absB,
        p.ldb,
        abs(p.beta),
        absC,
        p.ldc,
        bias=bias,
        bias_kind=p.bias_kind,
        act="none",
        offA=offA,
        offB=offB,
        offC=offC,
    )
    mag = mag[R.c_indices(p.M, p.N, p.ldc, offC)]
    tol = (p.K + 4) * eps * mag
    if p.act == "gelu":  # |gelu'| <= 1.13, plus the error of evaluating erf
        tol = 1.13 * tol + 16 * eps * (1.0 + mag)
    return tol + 1e-300


def check_c(C, ref, tol, M, N, ldc, C0, offC=0):
    """The M x N block within tol of the reference, every other element of C untouched."""
    C = np.asarray(C).reshape(-1)
    idx = R.c_indices(M, N, ldc, offC)
    got = C[idx].astype(np.float64)
    want = ref[idx]
    assert np.all(np.isfinite(got) == np.isfinite(want)), (
        "non-finite values differ from the reference"
    )
    err = np.abs(got - want)
    bad = ~(err <= tol)
    if bad.any():
        i, j = np.argwhere(bad)[0]
        raise AssertionError(
            f"{int(bad.sum())} of {M}x{N} elements off; first at ({i},{j}): got {got[i, j]!r}, "
            f"expected {want[i, j]!r}, |err| {err[i, j]:.3g} > tol {tol[i, j]:.3g}"
        )
    untouched = np.ones(C.size, bool)
    untouched[idx.reshape(-1)] = False
    np.testing.assert_array_equal(
        C[untouched],
        np.asarray(C0).reshape(-1)[untouched],
        err_msg="gemm wrote outside the M x N block of C",
    )


# --------------------------------------------------------------------- tests


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("trans", TRANS, ids=TRANS_IDS)
@pytest.mark.parametrize(
    "case", list(enumerate(TRIPLES)), ids=[f"{m}x{n}x{k}" for m, n, k in TRIPLES]
)
def test_gemm_shapes(cpu_isa, case, trans, dtype):
    """The size grid; alpha, beta and ld padding vary with the case so that each path is hit."""
    i, (M, N, K) = case
    alpha = [1.0, -0.5, 2.0][i % 3]
    beta = [0.0, 1.0, -0.5][(i // 3) % 3]
    pad = [(0, 0, 0), (3, 1, 5)][i % 2]
    rng = np.random.default_rng(1000 + i)
    c_values = np.nan if beta == 0 else None
    p = Problem(rng, *trans, M, N, K, dtype, alpha=alpha, beta=beta, pad=pad, c_values=c_values)
    p.run()
    p.check()


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("trans", TRANS, ids=TRANS_IDS)
@pytest.mark.parametrize(
    "alpha,beta", [(1.0, 0.0), (1.0, 1.0), (0.5, -2.0), (-1.5, 0.25), (0.0, 0.75), (0.0, 0.0)]
)
def test_gemm_alpha_beta(cpu_isa, alpha, beta, trans, dtype):
    p = Problem(np.random.default_rng(7), *trans, 17, 33, 31, dtype, alpha=alpha, beta=beta)
    p.run()
    p.check()


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("fill", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("M,N,K", [(7, 5, 3), (33, 17, 16), (1, 1, 1), (16, 31, 0)])
def test_gemm_beta_zero_does_not_read_c(cpu_isa, M, N, K, fill, dtype):
    """beta == 0: C is overwritten, NaN or Inf there must not propagate (also with K == 0)."""
    p = Problem(
        np.random.default_rng(3), False, True, M, N, K, dtype, alpha=1.0, beta=0.0, c_values=fill
    )
    p.run()
    assert np.all(np.isfinite(p.C[R.c_indices(M, N, p.ldc)])), (
        "NaN/Inf from C leaked into the result"
    )
    p.check()


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("trans", TRANS, ids=TRANS_IDS)
@pytest.mark.parametrize("pad", [(1, 0, 0), (0, 1, 0), (0, 0, 1), (5, 9, 13), (64, 3, 17)])
def test_gemm_leading_dims_larger_than_minimal(cpu_isa, pad, trans, dtype):
    """Gaps in A and B hold NaN (must not be read into the result); gaps in C must survive."""
    p = Problem(np.random.default_rng(11), *trans, 15, 17, 33, dtype, alpha=1.0, beta=0.5, pad=pad)
    p.run()
    p.check()


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("act", ["none", "relu", "gelu"])
@pytest.mark.parametrize("bias_kind", ["none", "row", "col"])
@pytest.mark.parametrize(
    "trans,beta,shape",
    [
        ((False, False), 0.0, (15, 17, 33)),
        ((True, True), 1.0, (33, 7, 16)),
        ((False, True), 0.5, (1, 31, 2)),
        ((True, False), 0.0, (16, 16, 0)),
    ],
)
def test_gemm_epilogue(cpu_isa, shape, trans, beta, bias_kind, act, dtype):
    """C = act(alpha*AB + beta*C + bias), bias per row (length M) or per column (length N)."""
    M, N, K = shape
    p = Problem(
        np.random.default_rng(5),
        *trans,
        M,
        N,
        K,
        dtype,
        alpha=1.25,
        beta=beta,
        pad=(2, 0, 3),
        bias_kind=bias_kind,
        act=act,
    )
    p.run()
    p.check()


def test_gemm_gelu_is_exact_erf_form(cpu_isa):
    """K == 1, A = 1: C = gelu(B) exactly; tanh-approximate GELU differs by up to ~5e-4 here."""
    x = np.linspace(-4, 4, 161)
    A = np.ones(1)
    C = np.zeros(161)
    pe.gemm(False, False, 1, 161, 1, 1.0, A, 1, x.copy(), 161, 0.0, C, 161, act="gelu")
    np.testing.assert_allclose(C, R.gelu(x), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("trans", [(False, False), (True, True)], ids=["NN", "TT"])
@pytest.mark.parametrize(
    "shape", [(389, 263, 611), (200, 3600, 700)], ids=["whole_panel", "panel_per_slice"]
)
def test_gemm_large_crosses_cache_blocks(cpu_isa, num_threads, trans, dtype, shape):
    """Sizes past the MC/KC/NC blocks and the thread partition, with ragged edges. With 2
    threads splitting rows, a shared B panel of at most 2M elements is packed for every K slice
    at once (whole_panel in cpu/gemm.cpp), a larger one slice by slice."""
    p = Problem(
        np.random.default_rng(17),
        *trans,
        *shape,
        dtype,
        alpha=0.75,
        beta=0.5,
        pad=(3, 0, 1),
        bias_kind="col",
        act="relu",
    )
    p.run()
    p.check()


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("shape", [(127, 33, 257), (2, 257, 17), (257, 2, 31)])
def test_gemm_threads(cpu_isa, num_threads, shape, dtype):
    p = Problem(np.random.default_rng(19), False, False, *shape, dtype, alpha=1.0, beta=1.0)
    p.run()
    p.check()


@given(
    M=st.sampled_from(SIZES[:-1]),
    N=st.sampled_from(SIZES[:-1]),
    K=st.sampled_from(SIZES),
    trans=st.sampled_from(TRANS),
    dtype=st.sampled_from(DTYPES),
    alpha=st.sampled_from([1.0, -1.0, 0.5, 3.0]),
    beta=st.sampled_from([0.0, 1.0, -0.25]),
    pad=st.tuples(*[st.integers(0, 9)] * 3),
    bias_kind=st.sampled_from(["none", "row", "col"]),
    act=st.sampled_from(["none", "relu", "gelu"]),
    seed=st.integers(0, 2**31 - 1),
)
def test_gemm_random(cpu_isa, M, N, K, trans, dtype, alpha, beta, pad, bias_kind, act, seed):
    p = Problem(
        np.random.default_rng(seed),
        *trans,
        M,
        N,
        K,
        dtype,
        alpha=alpha,
        beta=beta,
        pad=pad,
        c_values=np.nan if beta == 0 else None,
        bias_kind=bias_kind,
        act=act,
    )
    p.run()
    p.check()


def test_gemm_accepts_tensors_and_writes_c_in_place(cpu_isa):
    p = Problem(np.random.default_rng(23), False, True, 7, 15, 17, np.float32, alpha=1.0, beta=1.0)
    Ct = pe.from_numpy(p.C)  # shares memory with p.C
    pe.gemm(
        p.transA,
        p.transB,
        p.M,
        p.N,
        p.K,
        p.alpha,
        pe.tensor(p.A),
        p.lda,
        pe.tensor(p.B),
        p.ldb,
        p.beta,
        Ct,
        p.ldc,
    )
    p.check(Ct.numpy())
    p.check()  # the NumPy array behind the tensor holds the result


def test_gemm_accepts_2d_c_contiguous_arrays(cpu_isa):
    rng = np.random.default_rng(29)
    A = rng.uniform(-1, 1, (7, 5))
    B = rng.uniform(-1, 1, (5, 3))
    C = np.full((7, 3), np.nan)
    pe.gemm(False, False, 7, 3, 5, 1.0, A, 5, B, 3, 0.0, C, 3)
    np.testing.assert_allclose(C, A @ B, rtol=1e-13, atol=1e-14)


def test_gemm_noncontiguous_c_is_rejected_or_written_in_place(cpu_isa):
    """A strided C is no flat buffer: raise ValueError or write the array itself (no copy)."""
    A = np.ones(6)
    B = np.ones(6)
    big = np.zeros(12)
    C = big[::2]
    try:
        pe.gemm(False, False, 2, 3, 2, 1.0, A, 2, B, 3, 0.0, C, 3)
    except ValueError as e:
        assert str(e).startswith("[gemm]"), str(e)
        return
    np.testing.assert_array_equal(C, np.full(6, 2.0))


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("trans", TRANS, ids=TRANS_IDS)
def test_gemm_nan_in_a_or_b_propagates(cpu_isa, trans, dtype):
    """IEEE semantics: a NaN in op(A)(i, k) poisons row i of C, one in op(B)(k, j) column j."""
    M, N, K = 17, 19, 33
    p = Problem(np.random.default_rng(47), *trans, M, N, K, dtype, alpha=1.0, beta=0.0)
    a_idx = R.op_matrix(np.arange(p.A.size), p.transA, M, K, p.lda).astype(int)
    b_idx = R.op_matrix(np.arange(p.B.size), p.transB, K, N, p.ldb).astype(int)
    p.A[a_idx[5, 30]] = np.nan
    p.B[b_idx[2, 11]] = np.nan
    p.run()
    C = p.C[R.c_indices(M, N, p.ldc)]
    want_nan = np.zeros((M, N), bool)
    want_nan[5, :] = True
    want_nan[:, 11] = True
    np.testing.assert_array_equal(np.isnan(C), want_nan)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_gemm_is_deterministic(cpu_isa, num_threads, dtype):
    """The same call twice gives bitwise the same C (no order-dependent reduction)."""
    p = Problem(np.random.default_rng(53), False, True, 131, 97, 301, dtype, alpha=1.0, beta=0.0)
    p.run()
    first = p.C.copy()
    p.C[:] = p.C0
    p.run()
    np.testing.assert_array_equal(p.C, first)


def test_gemm_from_several_python_threads(cpu_isa):
    """The GIL is released and workspaces are per thread: concurrent calls must not interfere."""
    import threading

    shapes = [(33, 17, 129), (64, 64, 64), (7, 257, 31), (127, 15, 16)]
    problems = [
        Problem(np.random.default_rng(60 + i), i % 2 == 0, i % 3 == 0, *s, np.float32, beta=0.5)
        for i, s in enumerate(shapes * 2)
    ]
    errors = []

    def work(p):
        try:
            for _ in range(5):
                p.C[:] = p.C0
                p.run()
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(p,)) for p in problems]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    for p in problems:
        p.check()


# --------------------------------------------------------------- batched


def _batched(
    rng,
    transA,
    transB,
    M,
    N,
    K,
    batch,
    dtype,
    *,
    strideA=None,
    strideB=None,
    strideC=None,
    alpha=1.0,
    beta=0.0,
    pad=(0, 0, 0),
    gap=(0, 0, 0),
    bias_kind="none",
    act="none",
):
    """One strided-batched problem; stride None = one matrix plus `gap` elements of NaN/sentinel."""
    p = Problem(
        rng,
        transA,
        transB,
        M,
        N,
        K,
        dtype,
        alpha=alpha,
        beta=beta,
        pad=pad,
        bias_kind=bias_kind,
        act=act,
    )
    rowsA = K if transA else M
    rowsB = N if transB else K
    sA = rowsA * p.lda + gap[0] if strideA is None else strideA
    sB = rowsB * p.ldb + gap[1] if strideB is None else strideB
    sC = M * p.ldc + gap[2] if strideC is None else strideC
    rowlenA = M if transA else K
    rowlenB = K if transB else N

    def stack(stride, rows, rowlen, ld, gap_value):
        n = max(batch - 1, 0) * stride + rows * ld
        buf = np.full(n, gap_value, dtype=dtype)
        for b in range(batch if stride else min(batch, 1)):
            blk = _matrix_buffer(rng, rows, rowlen, ld, dtype, gap_value)
            buf[b * stride : b * stride + rows * ld] = blk
        return buf

    p.A = stack(sA, rowsA, rowlenA, p.lda, np.nan)
    p.B = stack(sB, rowsB, rowlenB, p.ldb, np.nan)
    p.C = stack(sC, M, N, p.ldc, SENTINEL)
    p.A0, p.B0, p.C0 = p.A.copy(), p.B.copy(), p.C.copy()
    p.strides, p.batch = (sA, sB, sC), batch
    return p


def _run_batched(p):
    sA, sB, sC = p.strides
    pe.gemm_strided_batched(
        p.transA,
        p.transB,
        p.M,
        p.N,
        p.K,
        p.alpha,
        p.A,
        p.lda,
        sA,
        p.B,
        p.ldb,
        sB,
        p.beta,
        p.C,
        p.ldc,
        sC,
        p.batch,
        **p.kw(),
    )


def _check_batched(p):
    sA, sB, sC = p.strides
    ref = R.gemm_strided_batched(
        p.transA,
        p.transB,
        p.M,
        p.N,
        p.K,
        p.alpha,
        p.A0,
        p.lda,
        sA,
        p.B0,
        p.ldb,
        sB,
        p.beta,
        p.C0,
        p.ldc,
        sC,
        p.batch,
        **p.kw(),
    )
    C = p.C.reshape(-1)
    written = np.zeros(C.size, bool)
    for b in range(p.batch):
        tol = gemm_tolerance(p, p.C0, offA=b * sA, offB=b * sB, offC=b * sC)
        idx = R.c_indices(p.M, p.N, p.ldc, b * sC)
        got, want = C[idx].astype(np.float64), ref[idx]
        bad = ~(np.abs(got - want) <= tol)
        assert not bad.any(), (
            f"batch {b}: {int(bad.sum())} elements off, e.g. got {got[bad][0]!r} "
            f"want {want[bad][0]!r}"
        )
        written[idx.reshape(-1)] = True
    np.testing.assert_array_equal(
        C[~written], p.C0[~written], err_msg="wrote outside the C matrices"
    )
    np.testing.assert_array_equal(p.A, p.A0)
    np.testing.assert_array_equal(p.B, p.B0)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("trans", TRANS, ids=TRANS_IDS)
@pytest.mark.parametrize(
    "shape,batch",
    [
        ((7, 5, 3), 3),
        ((16, 17, 33), 5),
        ((1, 1, 1), 1),
        ((15, 2, 31), 4),
        ((0, 3, 2), 3),
        ((3, 4, 0), 2),
        ((2, 2, 2), 0),
    ],
)
def test_gemm_strided_batched(cpu_isa, shape, batch, trans, dtype):
    p = _batched(
        np.random.default_rng(31),
        *trans,
        *shape,
        batch,
        dtype,
        alpha=0.5,
        beta=1.0,
        pad=(1, 2, 3),
        gap=(4, 5, 6),
    )
    _run_batched(p)
    _check_batched(p)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("which", ["A", "B", "AB"])
@pytest.mark.parametrize(
    "trans", [(False, False), (True, False), (False, True)], ids=["NN", "TN", "NT"]
)
def test_gemm_strided_batched_stride_zero_broadcasts(cpu_isa, trans, which, dtype):
    """strideA or strideB == 0: the same matrix serves every batch."""
    p = _batched(
        np.random.default_rng(37),
        *trans,
        17,
        15,
        33,
        4,
        dtype,
        strideA=0 if "A" in which else None,
        strideB=0 if "B" in which else None,
        alpha=1.0,
        beta=0.0,
    )
    _run_batched(p)
    _check_batched(p)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize(
    "bias_kind,act", [("row", "relu"), ("col", "gelu"), ("none", "gelu"), ("col", "none")]
)
def test_gemm_strided_batched_epilogue(cpu_isa, bias_kind, act, dtype):
    """The bias (shared by all batches) and activation apply to every batch."""
    p = _batched(
        np.random.default_rng(41),
        False,
        True,
        15,
        16,
        17,
        3,
        dtype,
        alpha=1.0,
        beta=0.5,
        bias_kind=bias_kind,
        act=act,
        gap=(1, 1, 1),
    )
    _run_batched(p)
    _check_batched(p)


def test_gemm_strided_batched_threads(cpu_isa, num_threads):
    """Many small matrices: the batch loop itself is the parallel one."""
    p = _batched(
        np.random.default_rng(43), True, False, 7, 9, 5, 64, np.float32, beta=1.0, gap=(0, 1, 2)
    )
    _run_batched(p)
    _check_batched(p)


# ---------------------------------------------------------------- errors


def _gemm_args(dtype=np.float64, M=4, N=5, K=3, sizes=None, lds=None):
    """Valid NN arguments; `sizes` overrides buffer lengths, `lds` the leading dimensions."""
    lda, ldb, ldc = lds or (K, N, N)
    nA, nB, nC = sizes or (M * lda, K * ldb, M * ldc)
    return [
        False,
        False,
        M,
        N,
        K,
        1.0,
        np.ones(nA, dtype),
        lda,
        np.ones(nB, dtype),
        ldb,
        0.0,
        np.zeros(nC, dtype),
        ldc,
    ]


GEMM_VALUE_ERRORS = {
    "A too small": dict(sizes=(4 * 3 - 1, 15, 20)),
    "B too small": dict(sizes=(12, 3 * 5 - 1, 20)),
    "C too small": dict(sizes=(12, 15, 4 * 5 - 1)),
    "lda < K": dict(lds=(2, 5, 5), sizes=(100, 100, 100)),
    "ldb < N": dict(lds=(3, 4, 5), sizes=(100, 100, 100)),
    "ldc < N": dict(lds=(3, 5, 4), sizes=(100, 100, 100)),
    "empty A": dict(sizes=(0, 15, 20)),
}


@pytest.mark.parametrize("case", list(GEMM_VALUE_ERRORS), ids=list(GEMM_VALUE_ERRORS))
def test_gemm_rejects_bad_sizes(case):
    args = _gemm_args(**GEMM_VALUE_ERRORS[case])
    C0 = args[11].copy()
    with pytest.raises(ValueError, match=r"^\[gemm\] "):
        pe.gemm(*args)
    np.testing.assert_array_equal(args[11], C0, err_msg="C was touched before the error")


@pytest.mark.parametrize("trans", TRANS, ids=TRANS_IDS)
def test_gemm_too_small_for_transposed_layout(trans):
    """M=4, N=5, K=3: a transposed A is K rows of M; minimal buffers minus one element must fail."""
    tA, tB = trans
    M, N, K = 4, 5, 3
    lda = M if tA else K
    ldb = K if tB else N
    nA = (K if tA else M) * lda
    nB = (N if tB else K) * ldb
    for bad in range(2):
        sizes = [nA, nB]
        sizes[bad] -= 1
        A, B, C = np.ones(sizes[0]), np.ones(sizes[1]), np.zeros(M * N)
        with pytest.raises(ValueError, match=r"^\[gemm\] "):
            pe.gemm(tA, tB, M, N, K, 1.0, A, lda, B, ldb, 0.0, C, N)
    # lda smaller than the transposed row length
    with pytest.raises(ValueError, match=r"^\[gemm\] "):
        pe.gemm(
            tA, tB, M, N, K, 1.0, np.ones(100), lda - 1, np.ones(100), ldb, 0.0, np.zeros(100), N
        )


def test_gemm_negative_size():
    args = _gemm_args()
    args[2] = -1
    with pytest.raises(ValueError, match=r"^\[gemm\] "):
        pe.gemm(*args)


@pytest.mark.parametrize("which", [6, 8, 11], ids=["A", "B", "C"])
def test_gemm_dtype_mismatch(which):
    args = _gemm_args(np.float32)
    args[which] = args[which].astype(np.float64)
    with pytest.raises(TypeError, match=r"^\[gemm\] "):
        pe.gemm(*args)


@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.float16])
def test_gemm_unsupported_dtype(dtype):
    args = _gemm_args(dtype)
    with pytest.raises(TypeError, match=r"^\[gemm\] "):
        pe.gemm(*args)


@pytest.mark.parametrize(
    "kw",
    [
        dict(bias=np.ones(4), bias_kind="col"),  # col bias needs N = 5 elements
        dict(bias=np.ones(3), bias_kind="row"),  # row bias needs M = 4 elements
        dict(bias=None, bias_kind="row"),
        dict(bias=np.ones(5), bias_kind="none"),  # a bias that would be ignored
        dict(bias=np.ones(5), bias_kind="diagonal"),
        dict(act="swish"),
    ],
    ids=["col-short", "row-short", "row-none", "bias-with-none", "bad-kind", "bad-act"],
)
def test_gemm_bad_epilogue(kw):
    with pytest.raises(ValueError, match=r"^\[gemm\] "):
        pe.gemm(*_gemm_args(), **kw)


def test_gemm_bias_dtype_mismatch():
    with pytest.raises(TypeError, match=r"^\[gemm\] "):
        pe.gemm(*_gemm_args(np.float64), bias=np.ones(5, np.float32), bias_kind="col")


BATCHED_RE = r"^\[gemm(_strided_batched)?\] "


def _batched_args(nA=None, nB=None, nC=None, strides=(12, 15, 20), batch=3):
    M, N, K = 4, 5, 3
    sA, sB, sC = strides
    nb = max(batch, 1)
    nA = nA if nA is not None else (nb - 1) * sA + M * K
    nB = nB if nB is not None else (nb - 1) * sB + K * N
    nC = nC if nC is not None else (nb - 1) * sC + M * N
    return [
        False,
        False,
        M,
        N,
        K,
        1.0,
        np.ones(nA),
        K,
        sA,
        np.ones(nB),
        N,
        sB,
        0.0,
        np.zeros(nC),
        N,
        sC,
        batch,
    ]


def test_gemm_strided_batched_minimal_buffers_are_accepted():
    args = _batched_args()
    pe.gemm_strided_batched(*args)
    np.testing.assert_array_equal(args[13].reshape(3, 20)[:, :20], np.full((3, 20), 3.0))


@pytest.mark.parametrize(
    "kw",
    [
        dict(nA=2 * 12 + 12 - 1),
        dict(nB=2 * 15 + 15 - 1),
        dict(nC=2 * 20 + 20 - 1),
        dict(strides=(12, 15, 0)),  # every batch would write the same C
        dict(batch=-1),
    ],
    ids=["A", "B", "C", "strideC0", "batch-neg"],
)
def test_gemm_strided_batched_rejects(kw):
    with pytest.raises(ValueError, match=BATCHED_RE):
        pe.gemm_strided_batched(*_batched_args(**kw))


def test_gemm_strided_batched_dtype_mismatch():
    args = _batched_args()
    args[9] = args[9].astype(np.float32)
    with pytest.raises(TypeError, match=BATCHED_RE):
        pe.gemm_strided_batched(*args)


@pytest.mark.parametrize("trans", list(itertools.product([False, True], repeat=2)))
def test_gemm_reference_matches_numpy_matmul(trans):
    """Sanity of the reference itself: with minimal ld it is op(A) @ op(B)."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((4, 3))
    b = rng.standard_normal((3, 5))
    A = (a.T if trans[0] else a).copy()
    B = (b.T if trans[1] else b).copy()
    out = R.gemm(*trans, 4, 5, 3, 1.0, A, A.shape[1], B, B.shape[1], 0.0, np.zeros(20), 5)
    np.testing.assert_allclose(out.reshape(4, 5), a @ b, rtol=1e-14)
