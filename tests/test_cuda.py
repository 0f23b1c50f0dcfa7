"""CUDA GEMM (pyengine._cuda through pyengine.backend.cuda) vs a float64 NumPy reference.

Every test but the build check is marked `cuda`: it needs a GPU and CuPy and skips with the
reason otherwise. The build check runs everywhere.
"""

from __future__ import annotations

import importlib
import itertools
import math

import numpy as np
import pytest

from pyengine.backend import cuda as pcuda

AVAILABLE = pcuda.is_available()
REASON = pcuda.unavailable_reason()
SIZES = [1, 7, 16, 33, 127, 257]
TILES = ["64x64", "128x128"]  # float32 block tiles; float64 has one


@pytest.fixture
def cp():
    """CuPy, or skip the test: it needs a GPU."""
    if not AVAILABLE:
        pytest.skip(f"no CUDA GPU: {REASON}")
    import cupy

    return cupy


@pytest.fixture(params=TILES)
def tile(request, cp):
    """Force each float32 tile so that both kernels see every shape, then restore."""
    from pyengine import _cuda

    prev = _cuda.get_gemm_tile()
    _cuda.set_gemm_tile(request.param)
    try:
        yield request.param
    finally:
        _cuda.set_gemm_tile(prev)


def _rand(rng, shape, dtype):
    return rng.standard_normal(shape).astype(dtype)


def _tol(dtype, k):
    """(rtol, atol) for sums of k products of N(0, 1) values."""
    if np.dtype(dtype) == np.float32:
        return 1e-4, 1e-5 * max(k, 1) ** 0.5 * 10
    return 1e-11, 1e-12 * max(k, 1)


def _close(got, ref, dtype, k):
    rtol, atol = _tol(dtype, k)
    assert got.dtype == np.dtype(dtype)
    assert got.shape == ref.shape
    np.testing.assert_allclose(got, ref, rtol=rtol, atol=atol)


def _gelu(x):
    return 0.5 * x * (1.0 + np.vectorize(math.erf)(x / math.sqrt(2.0)))


# ---------------------------------------------------------------------------- build


def test_cuda_module_built_when_compiler_found():
    """Does not skip: a build that found nvcc (and was not told OFF) must ship pyengine._cuda."""
    bi = importlib.import_module("pyengine._build_info")
    if str(bi.CUDA_OPTION).upper() != "OFF" and bi.CUDA_COMPILER_FOUND:
        assert bi.CUDA_BUILT, "a CUDA compiler was found at build time but _cuda was not built"
    if bi.CUDA_BUILT:
        from pyengine import _cuda

        n = _cuda.device_count()
        assert isinstance(n, int) and n >= 0
        assert isinstance(_cuda.built_architectures(), str)
        assert _cuda.runtime_version() > 0
        assert len(_cuda.devices()) == n
    if not AVAILABLE:
        with pytest.raises(RuntimeError, match=r"^\[cuda\] "):
            pcuda.require()


# ---------------------------------------------------------------------------- matmul


@pytest.mark.parametrize("m,n,k", list(itertools.product(SIZES, SIZES, SIZES)))
@pytest.mark.cuda
def test_matmul_shapes_float32(cp, tile, m, n, k):
    rng = np.random.default_rng(m * 10007 + n * 101 + k)
    a, b = _rand(rng, (m, k), np.float32), _rand(rng, (k, n), np.float32)
    got = pcuda.matmul(cp.asarray(a), cp.asarray(b))
    _close(cp.asnumpy(got), a.astype(np.float64) @ b, np.float32, k)


@pytest.mark.parametrize("m,n,k", [(0, 5, 3), (4, 0, 3), (4, 5, 0), (0, 0, 0), (1, 1, 0)])
@pytest.mark.cuda
def test_matmul_size_zero(cp, m, n, k):
    a, b = cp.ones((m, k), cp.float32), cp.ones((k, n), cp.float32)
    got = cp.asnumpy(pcuda.matmul(a, b))
    assert got.shape == (m, n)
    assert (got == 0).all()  # K == 0: an empty sum, C not read


@pytest.mark.parametrize("ta,tb", list(itertools.product([False, True], repeat=2)))
@pytest.mark.parametrize("m,n,k", [(1, 7, 16), (33, 127, 7), (257, 33, 127), (130, 129, 131)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.cuda
def test_matmul_transposed_views(cp, tile, ta, tb, m, n, k, dtype):
    """a.T / b.T views reach the kernel as trans flags (no copy) and give the same product."""
    rng = np.random.default_rng(7)
    a = _rand(rng, (k, m) if ta else (m, k), dtype)
    b = _rand(rng, (n, k) if tb else (k, n), dtype)
    da, db = cp.asarray(a), cp.asarray(b)
    da, db = (da.T if ta else da), (db.T if tb else db)
    ra, rb = (a.T if ta else a), (b.T if tb else b)
    _close(cp.asnumpy(pcuda.matmul(da, db)), ra.astype(np.float64) @ rb, dtype, k)


STRIDED_VIEWS = {
    "row-step": (lambda a: a[::2, 3:28], lambda b: b[:, 5:29]),  # ld from the strides
    "no-unit-stride": (lambda a: a[::3, ::2][:, :12], lambda b: b[:12, ::4]),  # copied
    "transposed-step": (lambda a: a[5:30:2, :25].T[:, ::2], lambda b: b[::2, :7].T),
    "vectors": (lambda a: a[3, ::3], lambda b: b[:10, 7]),  # 1-D with any stride
}


@pytest.mark.parametrize("case", list(STRIDED_VIEWS))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.cuda
def test_matmul_strided_views(cp, case, dtype):
    fa, fb = STRIDED_VIEWS[case]
    rng = np.random.default_rng(3)
    a, b = _rand(rng, (40, 30), dtype), _rand(rng, (25, 48), dtype)
    got = cp.asnumpy(pcuda.matmul(fa(cp.asarray(a)), fb(cp.asarray(b))))
    ref = np.matmul(fa(a).astype(np.float64), fb(b).astype(np.float64))
    _close(got, np.asarray(ref), dtype, fa(a).shape[-1])


@pytest.mark.parametrize(
    "sa,sb",
    [
        ((2, 3, 7, 5), (5, 9)),
        ((7, 5), (4, 5, 9)),
        ((2, 1, 7, 5), (1, 3, 5, 9)),
        ((3, 1, 33, 16), (2, 16, 17)),
        ((5,), (2, 5, 9)),
        ((2, 3, 7, 5), (5,)),
        ((5,), (5,)),
        ((70000, 2, 3), (3, 2)),  # batch beyond one grid dimension
    ],
)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.cuda
def test_matmul_batched_broadcast(cp, sa, sb, dtype):
    rng = np.random.default_rng(11)
    a, b = _rand(rng, sa, dtype), _rand(rng, sb, dtype)
    got = cp.asnumpy(pcuda.matmul(cp.asarray(a), cp.asarray(b)))
    _close(got, np.matmul(a.astype(np.float64), b.astype(np.float64)), dtype, sa[-1])


@pytest.mark.cuda
def test_matmul_batch_dims_not_mergeable(cp):
    """Permuted batch dims cannot be one stride: several launches, still no copy needed."""
    rng = np.random.default_rng(5)
    a = _rand(rng, (3, 2, 9, 8), np.float32)
    b = _rand(rng, (2, 3, 8, 6), np.float32)
    da = cp.asarray(a).transpose(1, 0, 2, 3)
    got = cp.asnumpy(pcuda.matmul(da, cp.asarray(b)))
    _close(got, np.matmul(a.transpose(1, 0, 2, 3).astype(np.float64), b), np.float32, 8)


@pytest.mark.parametrize("m,n,k", [(1, 1, 1), (33, 257, 127), (257, 127, 33)])
@pytest.mark.cuda
def test_matmul_float64(cp, m, n, k):
    rng = np.random.default_rng(2)
    a, b = _rand(rng, (m, k), np.float64), _rand(rng, (k, n), np.float64)
    _close(cp.asnumpy(pcuda.matmul(cp.asarray(a), cp.asarray(b))), a @ b, np.float64, k)


@pytest.mark.cuda
def test_matmul_large_uses_big_tile(cp):
    """Big enough for the automatic choice of the 128x128 tile, with ragged edges."""
    rng = np.random.default_rng(9)
    m, n, k = 2053, 1543, 129
    a, b = _rand(rng, (m, k), np.float32), _rand(rng, (k, n), np.float32)
    got = cp.asnumpy(pcuda.matmul(cp.asarray(a), cp.asarray(b)))
    _close(got, a.astype(np.float64) @ b, np.float32, k)


@pytest.mark.cuda
def test_matmul_on_current_stream(cp):
    rng = np.random.default_rng(4)
    a, b = _rand(rng, (64, 48), np.float32), _rand(rng, (48, 80), np.float32)
    stream = cp.cuda.Stream(non_blocking=True)
    with stream:
        da, db = cp.asarray(a), cp.asarray(b)
        got = pcuda.matmul(da, db)
    stream.synchronize()
    _close(cp.asnumpy(got), a.astype(np.float64) @ b, np.float32, 48)


# ---------------------------------------------------------------------------- gemm


@pytest.mark.parametrize("ta,tb", list(itertools.product([False, True], repeat=2)))
@pytest.mark.parametrize("alpha,beta", [(1.0, 0.0), (0.5, 2.0), (-1.5, 1.0), (0.0, 0.5)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.cuda
def test_gemm_alpha_beta(cp, tile, ta, tb, alpha, beta, dtype):
    rng = np.random.default_rng(13)
    m, n, k = 37, 131, 29
    ldc = n + 3  # a padded C: ldc > N
    a = _rand(rng, (k, m) if ta else (m, k), dtype)
    b = _rand(rng, (n, k) if tb else (k, n), dtype)
    c = _rand(rng, (m, ldc), dtype)
    d_a, d_b, d_c = cp.asarray(a), cp.asarray(b), cp.asarray(c)
    if alpha == 0.0:
        d_a[...] = cp.nan  # alpha == 0: A and B are not read
    pcuda.gemm(ta, tb, m, n, k, alpha, d_a, a.shape[1], d_b, b.shape[1], beta, d_c, ldc)
    ra, rb = (a.T if ta else a), (b.T if tb else b)
    ref = c.astype(np.float64)
    ref[:, :n] = alpha * (ra.astype(np.float64) @ rb) + beta * c[:, :n]
    _close(cp.asnumpy(d_c), ref, dtype, k)  # the padding columns are untouched


@pytest.mark.parametrize("k", [3, 2048], ids=["one-pass", "split-k"])
@pytest.mark.cuda
def test_gemm_beta_zero_does_not_read_c(cp, k):
    a = cp.ones((4, k), cp.float32)
    b = cp.ones((k, 5), cp.float32)
    c = cp.full((4, 5), cp.nan, cp.float32)
    pcuda.gemm(False, False, 4, 5, k, 1.0, a, k, b, 5, 0.0, c, 5)
    assert (cp.asnumpy(c) == k).all()


def _epilogue_args(cp, rng, bias_kind, act, m, n, dtype):
    """A bias for bias_kind (rows m or columns n) and the gemm keywords that pass it."""
    bias = _rand(rng, (m if bias_kind == "row" else n,), dtype)
    kw = {"bias_kind": bias_kind, "act": act}
    if bias_kind != "none":
        kw["bias"] = cp.asarray(bias)
    return bias, kw


def _epilogue(ref, bias, bias_kind, act):
    """The GEMM epilogue on a float64 reference: + bias per row / column, then act."""
    if bias_kind == "row":
        ref = ref + bias[:, None]
    elif bias_kind == "col":
        ref = ref + bias[None, :]
    return {"none": ref, "relu": np.maximum(ref, 0), "gelu": _gelu(ref)}[act]


@pytest.mark.parametrize("bias_kind", ["none", "row", "col"])
@pytest.mark.parametrize("act", ["none", "relu", "gelu"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.cuda
def test_gemm_epilogue(cp, tile, bias_kind, act, dtype):
    rng = np.random.default_rng(17)
    m, n, k = 45, 67, 23
    a, b = _rand(rng, (m, k), dtype), _rand(rng, (k, n), dtype)
    c = _rand(rng, (m, n), dtype)
    bias, kw = _epilogue_args(cp, rng, bias_kind, act, m, n, dtype)
    d_c = cp.asarray(c)
    pcuda.gemm(False, False, m, n, k, 1.5, cp.asarray(a), k, cp.asarray(b), n, 0.5, d_c, n, **kw)
    ref = _epilogue(1.5 * (a.astype(np.float64) @ b) + 0.5 * c, bias, bias_kind, act)
    _close(cp.asnumpy(d_c), ref, dtype, k)


@pytest.mark.parametrize("ta,tb", list(itertools.product([False, True], repeat=2)))
@pytest.mark.parametrize("k", [1024, 1000], ids=["even-slices", "short-last-slice"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.cuda
def test_gemm_split_k(cp, ta, tb, k, dtype):
    """Few output tiles over a deep K: the product runs in K slices plus an ordered reduction,
    which applies alpha, beta, the bias and the activation (padded C: ldc > N)."""
    rng = np.random.default_rng(23)
    m, n, ldc = 70, 33, 40
    bias_kind, act = [("col", "relu"), ("row", "gelu"), ("none", "none"), ("col", "none")][
        2 * ta + tb
    ]
    a = _rand(rng, (k, m) if ta else (m, k), dtype)
    b = _rand(rng, (n, k) if tb else (k, n), dtype)
    c = _rand(rng, (m, ldc), dtype)
    bias, kw = _epilogue_args(cp, rng, bias_kind, act, m, n, dtype)
    d_c = cp.asarray(c)
    pcuda.gemm(
        ta,
        tb,
        m,
        n,
        k,
        0.75,
        cp.asarray(a),
        a.shape[1],
        cp.asarray(b),
        b.shape[1],
        0.5,
        d_c,
        ldc,
        **kw,
    )
    ra, rb = (a.T if ta else a), (b.T if tb else b)
    want = c.astype(np.float64)
    want[:, :n] = _epilogue(
        0.75 * (ra.astype(np.float64) @ rb) + 0.5 * c[:, :n], bias, bias_kind, act
    )
    _close(cp.asnumpy(d_c), want, dtype, k)  # the padding columns are untouched


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.cuda
def test_gemm_strided_batched_broadcast(cp, dtype):
    rng = np.random.default_rng(19)
    batch, m, n, k = 5, 19, 23, 17
    a = _rand(rng, (batch, m, k), dtype)
    b = _rand(rng, (k, n), dtype)  # stride 0: one B for every matrix of the batch
    bias = _rand(rng, (n,), dtype)
    d_c = cp.empty((batch, m, n), dtype)
    pcuda.gemm_strided_batched(
        False, False, m, n, k, 1.0, cp.asarray(a), k, m * k, cp.asarray(b), n, 0,
        0.0, d_c, n, m * n, batch, bias=cp.asarray(bias), bias_kind="col", act="relu",
    )  # fmt: skip
    _close(cp.asnumpy(d_c), np.maximum(a.astype(np.float64) @ b + bias, 0), dtype, k)


# ---------------------------------------------------------------------------- errors


@pytest.mark.cuda
def test_matmul_bad_input(cp):
    f32 = cp.ones((3, 4), cp.float32)
    with pytest.raises(ValueError, match=r"\[matmul\]"):
        pcuda.matmul(f32, cp.ones((5, 2), cp.float32))
    with pytest.raises(TypeError, match=r"\[matmul\]"):
        pcuda.matmul(f32, cp.ones((4, 2), cp.float64))
    with pytest.raises(TypeError, match=r"\[matmul\]"):
        pcuda.matmul(cp.ones((3, 4), cp.int32), cp.ones((4, 2), cp.int32))
    with pytest.raises(TypeError, match=r"\[matmul\]"):
        pcuda.matmul(np.ones((3, 4), np.float32), f32.T)
    with pytest.raises(ValueError, match=r"\[matmul\]"):
        pcuda.matmul(cp.ones((2, 3, 4), cp.float32), cp.ones((3, 4, 5), cp.float32))
    with pytest.raises(ValueError, match=r"\[matmul\]"):
        pcuda.matmul(cp.ones((), cp.float32), f32)


@pytest.mark.cuda
def test_gemm_bad_input(cp):
    from pyengine import _cuda

    a, b, c = (cp.ones(s, cp.float32) for s in [(4, 3), (3, 5), (4, 5)])
    ok = dict(transA=False, transB=False, M=4, N=5, K=3, alpha=1.0, A=a, lda=3, B=b, ldb=5,
              beta=0.0, C=c, ldc=5)  # fmt: skip
    bad = [
        (dict(M=-1), ValueError),
        (dict(lda=2), ValueError),
        (dict(ldc=4), ValueError),
        (dict(A=cp.ones(5, cp.float32)), ValueError),  # too small for M x K
        (dict(C=cp.ones((4, 10), cp.float32)[:, ::2]), ValueError),
        (dict(B=cp.ones((3, 5), cp.float64)), TypeError),
        (dict(act="tanh"), ValueError),
        (dict(bias_kind="col"), ValueError),  # no bias given
    ]
    for change, exc in bad:
        with pytest.raises(exc, match=r"\[gemm\]"):
            pcuda.gemm(**{**ok, **change})
    # the raw binding checks its own arguments too
    raw = (False, False, 4, 5, 3, 1.0, a.data.ptr, 3, b.data.ptr, 5, 0.0, c.data.ptr, 5)
    with pytest.raises(ValueError, match=r"\[gemm\] dtype"):
        _cuda.gemm(*raw, "float16", 0)
    with pytest.raises(ValueError, match=r"\[gemm\] lda"):
        _cuda.gemm(*raw[:7], 1, *raw[8:], "float32", 0)
    with pytest.raises(ValueError, match=r"\[gemm\] act"):
        _cuda.gemm(*raw, "float32", 0, 0, 0, 7)
