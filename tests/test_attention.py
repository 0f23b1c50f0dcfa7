"""F.scaled_dot_product_attention (fused, csrc/cpu/attention.cpp) vs tests/reference/attention.py.

Forward vs the materialized float64 softmax, backward vs its adjoint and by gradcheck, on every
CPU ISA path: shapes with Lq != Lk, D != Dv, size 1, odd and prime lengths, several blocks in
both directions, causal (top-left) with Lq != Lk, bool and additive masks broadcast, fully
masked rows, large logits, dropout (same seed -> same mask, replayed in backward), the error
table.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from helpers import assert_close, check_op, numeric_vjp
from hypothesis import given, settings
from hypothesis import strategies as st
from reference import attention as R

import pyengine as pe
from pyengine import _C
from pyengine.backend import cuda as pcuda
from pyengine.tensor import _rng

F = pe.functional
SDPA = F.scaled_dot_product_attention

# (batch dims, Lq, Lk, D, Dv): small enough for gradcheck in float64.
SMALL = [
    ((1, 1), 1, 1, 1, 1),
    ((2, 3), 5, 7, 4, 3),
    ((1, 2), 13, 13, 8, 8),
    ((2, 1), 11, 3, 5, 6),
    ((3,), 4, 9, 2, 7),  # 3-D input (N, L, E)
    ((2, 1, 2), 3, 5, 3, 2),  # 5-D input
]
# Several query blocks (64) and key blocks (256), ragged edges; no gradcheck.
LARGE = [
    ((1, 2), 130, 300, 16, 24),
    ((2, 1), 67, 513, 64, 64),
    ((1, 1), 300, 70, 32, 17),
    ((1, 1), 70, 300, 33, 64),
]
GRAD_TOL = {pe.float32: dict(grad_rtol=2e-4, grad_atol=2e-4), pe.float64: {}}


def _shapes(batch, Lq, Lk, D, Dv):
    return [batch + (Lq, D), batch + (Lk, D), batch + (Lk, Dv)]


def _run(case, dtype, gradcheck, **kw):
    batch, Lq, Lk, D, Dv = case
    return check_op(
        lambda q, k, v: SDPA(q, k, v, **kw),
        lambda q, k, v: R.scaled_dot_product_attention(q, k, v, **kw),
        lambda g, q, k, v: R.scaled_dot_product_attention_vjp(g, q, k, v, **kw),
        _shapes(batch, Lq, Lk, D, Dv),
        dtype=dtype,
        gradcheck=gradcheck and dtype == pe.float64,
        **GRAD_TOL[dtype],
    )


# ----------------------------------------------------------------- the reference itself


def test_reference_adjoint_matches_finite_differences():
    rng = np.random.default_rng(3)
    q, k, v = (
        rng.standard_normal((2, 3, 2)),
        rng.standard_normal((2, 4, 2)),
        rng.standard_normal((2, 4, 3)),
    )
    mask = rng.random((3, 4)) > 0.3
    mask[1] = False  # a fully masked row
    keep = rng.random((2, 3, 4)) > 0.4
    kw = dict(attn_mask=mask, dropout_p=0.4, keep=keep, scale=0.7)
    g = rng.standard_normal((2, 3, 3))
    grads = R.scaled_dot_product_attention_vjp(g, q, k, v, **kw)
    for i in range(3):
        num = numeric_vjp(lambda *a: R.scaled_dot_product_attention(*a, **kw), [q, k, v], i, g)
        np.testing.assert_allclose(grads[i], num, rtol=1e-6, atol=1e-8)
    out = R.scaled_dot_product_attention(q, k, v, **kw)
    assert np.all(out[:, 1] == 0)


# ----------------------------------------------------------------- shapes, every ISA


@pytest.mark.parametrize("causal", [False, True], ids=["full", "causal"])
@pytest.mark.parametrize("case", SMALL, ids=str)
@pytest.mark.parametrize("dtype", [pe.float32, pe.float64], ids=["f32", "f64"])
def test_small(cpu_isa, case, dtype, causal):
    _run(case, dtype, gradcheck=True, is_causal=causal)


@pytest.mark.parametrize("causal", [False, True], ids=["full", "causal"])
@pytest.mark.parametrize("case", LARGE, ids=str)
@pytest.mark.parametrize("dtype", [pe.float32, pe.float64], ids=["f32", "f64"])
def test_blocks(cpu_isa, case, dtype, causal):
    _run(case, dtype, gradcheck=False, is_causal=causal)


@pytest.mark.parametrize("case", [((1, 1), 40, 700, 16, 16), ((1, 3), 300, 600, 8, 8)], ids=str)
@pytest.mark.parametrize("causal", [False, True], ids=["full", "causal"])
def test_threads(num_threads, case, causal):
    """Fewer heads than threads splits the keys of a head: dQ is summed from partials."""
    _run(case, pe.float32, gradcheck=False, is_causal=causal)


@pytest.mark.parametrize("scale", [0.3, 2.0])
def test_scale(scale):
    _run(((2, 2), 6, 9, 4, 5), pe.float64, gradcheck=True, scale=scale)


def test_causal_lq_ne_lk_is_top_left():
    """Query i sees keys j <= i whatever Lq and Lk are (torch's is_causal)."""
    rng = np.random.default_rng(1)
    for Lq, Lk in [(3, 8), (8, 3)]:
        q, k, v = (rng.standard_normal(s) for s in [(1, 1, Lq, 4), (1, 1, Lk, 4), (1, 1, Lk, 2)])
        got = SDPA(pe.tensor(q), pe.tensor(k), pe.tensor(v), is_causal=True).numpy()
        tri = np.tril(np.ones((Lq, Lk), dtype=bool))
        want = R.scaled_dot_product_attention(q, k, v, attn_mask=tri)
        assert_close(got, want, pe.float64)
        # row 0 sees key 0 only
        np.testing.assert_allclose(got[0, 0, 0], v[0, 0, 0], rtol=1e-12)


def test_non_contiguous_views():
    """Permuted (L, N, H, E) -> (N, H, L, E) views, as MultiheadAttention makes them."""
    rng = np.random.default_rng(2)
    x = [rng.standard_normal((9, 2, 3, 8)).astype(np.float32) for _ in range(3)]
    ts = [pe.tensor(a, requires_grad=True) for a in x]
    views = [t.permute(1, 2, 0, 3) for t in ts]
    out = SDPA(*views, is_causal=True)
    ref_in = [a.transpose(1, 2, 0, 3).astype(np.float64) for a in x]
    assert_close(out, R.scaled_dot_product_attention(*ref_in, is_causal=True), pe.float32)
    g = rng.standard_normal(out.shape)
    (out * pe.tensor(g.astype(np.float32))).sum().backward()
    grads = R.scaled_dot_product_attention_vjp(g, *ref_in, is_causal=True)
    for t, rg in zip(ts, grads):
        assert_close(t.grad, rg.transpose(2, 0, 1, 3), pe.float32, rtol=1e-4, atol=1e-4)


# ----------------------------------------------------------------- masks

MASK_SHAPES = [(7, 9), (2, 1, 7, 9), (1, 3, 1, 9), (3, 7, 1), (9,)]


def _mask_case(kind, mshape, dtype, seed=0):
    rng = np.random.default_rng(seed)
    if kind == "bool":
        m = rng.random(mshape) > 0.3
    else:
        m = rng.standard_normal(mshape) * 2.0
        m[rng.random(mshape) < 0.2] = -np.inf
    return m


@pytest.mark.parametrize("mshape", MASK_SHAPES, ids=str)
@pytest.mark.parametrize("kind", ["bool", "float"])
@pytest.mark.parametrize("dtype", [pe.float32, pe.float64], ids=["f32", "f64"])
def test_masks(cpu_isa, kind, mshape, dtype):
    m = _mask_case(kind, mshape, dtype)
    mt = pe.tensor(m if kind == "bool" else m.astype(dtype))
    mr = m if kind == "bool" else m.astype(dtype).astype(np.float64)
    check_op(
        lambda q, k, v: SDPA(q, k, v, attn_mask=mt),
        lambda q, k, v: R.scaled_dot_product_attention(q, k, v, attn_mask=mr),
        lambda g, q, k, v: R.scaled_dot_product_attention_vjp(g, q, k, v, attn_mask=mr),
        _shapes((2, 3), 7, 9, 4, 5),
        dtype=dtype,
        gradcheck=dtype == pe.float64,
        **GRAD_TOL[dtype],
    )


@pytest.mark.parametrize("kind", ["bool", "float"])
def test_fully_masked_rows_give_zeros(cpu_isa, kind):
    rng = np.random.default_rng(4)
    Lq, Lk = 70, 300  # the dead rows span query blocks and key blocks
    m = rng.random((Lq, Lk)) > 0.5
    dead = [0, 5, 64, 69]
    m[dead] = False
    mask = m if kind == "bool" else np.where(m, 0.0, -np.inf).astype(np.float32)
    q, k, v = (pe.randn(2, 2, n, 8, requires_grad=True) for n in (Lq, Lk, Lk))
    out = SDPA(q, k, v, attn_mask=pe.tensor(mask))
    o = out.detach().numpy()
    assert np.isfinite(o).all()
    assert np.all(o[:, :, dead] == 0)
    out.sum().backward()
    assert np.all(q.grad.numpy()[:, :, dead] == 0)
    for t in (q, k, v):
        assert np.isfinite(t.grad.numpy()).all()
    ref = R.scaled_dot_product_attention(*(t.detach().numpy() for t in (q, k, v)), attn_mask=m)
    assert_close(o, ref, pe.float32)


def test_fully_masked_gradcheck():
    m = np.ones((4, 5), dtype=bool)
    m[2] = False
    mt = pe.tensor(m)
    _ = mt
    check_op(
        lambda q, k, v: SDPA(q, k, v, attn_mask=mt),
        lambda q, k, v: R.scaled_dot_product_attention(q, k, v, attn_mask=m),
        lambda g, q, k, v: R.scaled_dot_product_attention_vjp(g, q, k, v, attn_mask=m),
        _shapes((1, 2), 4, 5, 3, 3),
        dtype=pe.float64,
    )


def test_empty_keys_give_zeros():
    q, k, v = pe.randn(1, 2, 3, 4), pe.randn(1, 2, 0, 4), pe.randn(1, 2, 0, 5)
    out = SDPA(q, k, v)
    assert out.shape == (1, 2, 3, 5) and np.all(out.numpy() == 0)


@pytest.mark.parametrize("dtype", [pe.float32, pe.float64], ids=["f32", "f64"])
def test_large_logits(cpu_isa, dtype):
    """Scores near 1e4 overflow a naive exp; the online softmax must stay exact."""
    rng = np.random.default_rng(5)
    q = rng.standard_normal((1, 2, 70, 16)) * 30
    k = rng.standard_normal((1, 2, 300, 16)) * 30
    v = rng.standard_normal((1, 2, 300, 8))
    for causal in (False, True):
        out = SDPA(*(pe.tensor(a.astype(dtype)) for a in (q, k, v)), is_causal=causal).numpy()
        assert np.isfinite(out).all()
        qr, kr, vr = (a.astype(dtype).astype(np.float64) for a in (q, k, v))
        ref = R.scaled_dot_product_attention(qr, kr, vr, is_causal=causal)
        # scores ~1e3: float32 rounding of S itself moves P, so compare loosely in float32
        tol = 2e-3 if dtype == pe.float32 else 1e-9
        assert_close(out, ref, dtype, rtol=tol, atol=tol)


# ----------------------------------------------------------------- dropout


def _next_seed(s):
    """The seed the op will draw after pe.manual_seed(s) (one integers(0, 2**63) draw)."""
    pe.manual_seed(s)
    return int(_rng().integers(0, 2**63))


def test_dropout_same_seed_same_output():
    q, k, v = (pe.randn(2, 3, 20, 8) for _ in range(3))
    pe.manual_seed(7)
    a = SDPA(q, k, v, dropout_p=0.3).numpy()
    pe.manual_seed(7)
    b = SDPA(q, k, v, dropout_p=0.3).numpy()
    c = SDPA(q, k, v, dropout_p=0.3).numpy()  # the generator moved on
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_dropout_mask_statistics():
    keep = _C.sdpa_dropout_mask(123, 2, 4, 128, 256, 0.25)
    assert keep.shape == (2, 4, 128, 256) and keep.dtype == np.bool_
    assert abs(keep.mean() - 0.75) < 0.01
    # rows, columns and heads are not copies of each other
    assert not np.array_equal(keep[0, 0, 0], keep[0, 0, 1])
    assert not np.array_equal(keep[0, 0, :, 0], keep[0, 0, :, 1])
    assert not np.array_equal(keep[0, 0], keep[0, 1])
    assert not np.array_equal(keep, _C.sdpa_dropout_mask(124, 2, 4, 128, 256, 0.25))
    assert _C.sdpa_dropout_mask(1, 1, 1, 4, 4, 0.0).all()


@pytest.mark.parametrize("batch", [(2, 3), (1, 1)], ids=str)  # (1, 1): keys split over threads
@pytest.mark.parametrize("causal", [False, True], ids=["full", "causal"])
@pytest.mark.parametrize("dtype", [pe.float32, pe.float64], ids=["f32", "f64"])
def test_dropout_vs_reference(cpu_isa, dtype, causal, batch):
    """The kernel's mask is the one sdpa_dropout_mask reports, in forward and backward."""
    p = 0.35
    Lq, Lk = 70, 600
    seed = _next_seed(11)
    keep = _C.sdpa_dropout_mask(seed, *batch, Lq, Lk, p)

    def op(q, k, v):
        pe.manual_seed(11)
        return SDPA(q, k, v, dropout_p=p, is_causal=causal)

    kw = dict(dropout_p=p, is_causal=causal, keep=keep)
    check_op(
        op,
        lambda q, k, v: R.scaled_dot_product_attention(q, k, v, **kw),
        lambda g, q, k, v: R.scaled_dot_product_attention_vjp(g, q, k, v, **kw),
        _shapes(batch, Lq, Lk, 16, 8),
        dtype=dtype,
        gradcheck=False,
        **GRAD_TOL[dtype],
    )


def test_dropout_gradcheck():
    """With the seed fixed per call, the dropped function is smooth: finite differences agree."""
    p = 0.4

    def op(q, k, v):
        pe.manual_seed(3)
        return SDPA(q, k, v, dropout_p=p)

    seed = _next_seed(3)
    keep = _C.sdpa_dropout_mask(seed, 1, 2, 5, 6, p)
    kw = dict(dropout_p=p, keep=keep)
    check_op(
        op,
        lambda q, k, v: R.scaled_dot_product_attention(q, k, v, **kw),
        lambda g, q, k, v: R.scaled_dot_product_attention_vjp(g, q, k, v, **kw),
        _shapes((1, 2), 5, 6, 3, 4),
        dtype=pe.float64,
    )


# ----------------------------------------------------------------- torch parity


def test_matches_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(9)
    q, k, v = (rng.standard_normal(s) for s in [(2, 3, 33, 8), (2, 3, 40, 8), (2, 3, 40, 5)])
    mask = rng.random((33, 40)) > 0.2
    for kw in [dict(), dict(is_causal=True), dict(attn_mask=mask), dict(scale=0.2)]:
        tkw = dict(kw)
        pkw = dict(kw)
        if "attn_mask" in kw:
            tkw["attn_mask"] = torch.tensor(mask)
            pkw["attn_mask"] = pe.tensor(mask)
        want = torch.nn.functional.scaled_dot_product_attention(
            *(torch.tensor(a) for a in (q, k, v)), **tkw
        ).numpy()
        got = SDPA(*(pe.tensor(a) for a in (q, k, v)), **pkw).numpy()
        assert_close(got, want, pe.float64)


def test_no_double_backward():
    q, k, v = (pe.randn(1, 1, 3, 2, dtype=pe.float64, requires_grad=True) for _ in range(3))
    out = SDPA(q, k, v).sum()
    with pytest.raises(RuntimeError, match=r"^\[scaled_dot_product_attention\] "):
        pe.autograd.grad(out, [q], create_graph=True)


# ----------------------------------------------------------------- errors


def _t(*shape, dtype=pe.float32):
    return pe.ones(*shape, dtype=dtype)


ERRORS = {
    "rank 1": (lambda: SDPA(_t(4), _t(4), _t(4)), ValueError),
    "ranks differ": (lambda: SDPA(_t(1, 2, 3, 4), _t(2, 3, 4), _t(2, 3, 4)), ValueError),
    "batch differs": (lambda: SDPA(_t(2, 3, 4), _t(3, 3, 4), _t(3, 3, 4)), ValueError),
    "head dim": (lambda: SDPA(_t(1, 3, 4), _t(1, 5, 6), _t(1, 5, 6)), ValueError),
    "key/value length": (lambda: SDPA(_t(1, 3, 4), _t(1, 5, 4), _t(1, 6, 4)), ValueError),
    "mask shape": (
        lambda: SDPA(_t(1, 3, 4), _t(1, 5, 4), _t(1, 5, 4), attn_mask=_t(3, 4)),
        ValueError,
    ),
    "mask dtype": (
        lambda: SDPA(_t(1, 3, 4), _t(1, 5, 4), _t(1, 5, 4), attn_mask=_t(3, 5, dtype=pe.float64)),
        TypeError,
    ),
    "mask int": (
        lambda: SDPA(_t(1, 3, 4), _t(1, 5, 4), _t(1, 5, 4), attn_mask=_t(3, 5, dtype=pe.int64)),
        TypeError,
    ),
    "dtype mismatch": (
        lambda: SDPA(_t(1, 3, 4), _t(1, 5, 4, dtype=pe.float64), _t(1, 5, 4)),
        TypeError,
    ),
    "int inputs": (lambda: SDPA(*(_t(1, 3, 4, dtype=pe.int64) for _ in range(3))), TypeError),
    "not a tensor": (lambda: SDPA(np.ones((1, 3, 4)), _t(1, 3, 4), _t(1, 3, 4)), TypeError),
    "dropout 1.0": (lambda: SDPA(_t(1, 3, 4), _t(1, 3, 4), _t(1, 3, 4), dropout_p=1.0), ValueError),
    "dropout < 0": (
        lambda: SDPA(_t(1, 3, 4), _t(1, 3, 4), _t(1, 3, 4), dropout_p=-0.1),
        ValueError,
    ),
    "causal and mask": (
        lambda: SDPA(_t(1, 3, 4), _t(1, 3, 4), _t(1, 3, 4), attn_mask=_t(3, 3), is_causal=True),
        ValueError,
    ),
    "scale nan": (lambda: SDPA(_t(1, 3, 4), _t(1, 3, 4), _t(1, 3, 4), scale=math.nan), ValueError),
}


@pytest.mark.parametrize("name", list(ERRORS))
def test_errors(name):
    call, exc = ERRORS[name]
    with pytest.raises(exc, match=r"^\[scaled_dot_product_attention\] "):
        call()


@pytest.mark.parametrize(
    "call",
    [
        lambda: _C.sdpa_forward(
            np.ones((1, 1, 3, 4)), np.ones((1, 1, 3, 5)), np.ones((1, 1, 3, 4))
        ),
        lambda: _C.sdpa_forward(
            np.ones((1, 1, 3, 4)), np.ones((1, 1, 3, 4)), np.ones((1, 1, 2, 4))
        ),
        lambda: _C.sdpa_forward(np.ones((1, 3, 4)), np.ones((1, 3, 4)), np.ones((1, 3, 4))),
        lambda: _C.sdpa_forward(*(np.ones((1, 1, 3, 4)),) * 3, dropout_p=1.5),
        lambda: _C.sdpa_forward(*(np.ones((1, 1, 3, 4)),) * 3, np.ones((1, 1, 3, 2), bool)),
        lambda: _C.sdpa_forward(*(np.ones((1, 1, 3, 4)),) * 3, np.ones((1, 1, 3, 3), bool), True),
        lambda: _C.sdpa_forward(np.ones((1, 1, 3, 8))[..., ::2], *(np.ones((1, 1, 3, 4)),) * 2),
        lambda: _C.sdpa_backward(
            *(np.ones((1, 1, 3, 4)),) * 3,
            None,
            False,
            1.0,
            0.0,
            0,
            np.ones((1, 1, 3, 4)),
            np.ones((1, 1, 2)),
            np.ones((1, 1, 3, 4)),
        ),
    ],
)
def test_binding_errors(call):
    with pytest.raises(ValueError, match=r"^\[scaled_dot_product_attention\] "):
        call()


def test_binding_dtype_error():
    with pytest.raises(TypeError, match=r"^\[scaled_dot_product_attention\] "):
        _C.sdpa_forward(np.ones((1, 1, 3, 4), np.float32), *(np.ones((1, 1, 3, 4)),) * 2)


# ----------------------------------------------------------------- CUDA (skip without a GPU)

CUDA_OK = pcuda.is_available()


@pytest.fixture
def cp():
    if not CUDA_OK:
        pytest.skip(f"no CUDA GPU: {pcuda.unavailable_reason()}")
    import cupy

    return cupy


CUDA_CASES = SMALL + LARGE + [((2, 2), 65, 129, 128, 100)]


@pytest.mark.cuda
@pytest.mark.parametrize("causal", [False, True], ids=["full", "causal"])
@pytest.mark.parametrize("case", CUDA_CASES, ids=str)
@pytest.mark.parametrize("dtype", [pe.float32, pe.float64], ids=["f32", "f64"])
def test_cuda_vs_reference(cp, case, dtype, causal):
    batch, Lq, Lk, D, Dv = case
    rng = np.random.default_rng(0)
    arrs = [rng.standard_normal(s).astype(dtype) for s in _shapes(batch, Lq, Lk, D, Dv)]
    ts = [pe.tensor(a, requires_grad=True).cuda() for a in arrs]
    ts = [t.detach().requires_grad_() for t in ts]
    out = SDPA(*ts, is_causal=causal)
    ref_in = [a.astype(np.float64) for a in arrs]
    tol = dict(rtol=2e-4, atol=2e-4) if dtype == pe.float32 else {}
    assert_close(
        out.detach().cpu(), R.scaled_dot_product_attention(*ref_in, is_causal=causal), dtype, **tol
    )
    g = rng.standard_normal(out.shape).astype(dtype)
    (out * pe.tensor(g).cuda()).sum().backward()
    grads = R.scaled_dot_product_attention_vjp(g, *ref_in, is_causal=causal)
    for t, rg in zip(ts, grads):
        assert_close(t.grad.cpu(), rg, dtype, **tol)


@pytest.mark.cuda
@pytest.mark.parametrize("kind", ["bool", "float"])
def test_cuda_masks_and_dropout_match_cpu(cp, kind):
    """Same mask, same seed: the CUDA kernels drop the same elements as the CPU ones."""
    rng = np.random.default_rng(1)
    arrs = [rng.standard_normal(s) for s in _shapes((2, 3), 70, 90, 16, 8)]
    m = _mask_case(kind, (3, 70, 90), pe.float64)
    m[:, 3] = False if kind == "bool" else -np.inf  # fully masked rows
    results = []
    for dev in ("cpu", "cuda"):
        ts = [pe.tensor(a, requires_grad=True) for a in arrs]
        ts = [t if dev == "cpu" else t.detach().cuda().requires_grad_() for t in ts]
        mt = pe.tensor(m) if dev == "cpu" else pe.tensor(m).cuda()
        pe.manual_seed(4)
        out = SDPA(*ts, attn_mask=mt, dropout_p=0.25)
        out.sum().backward()
        results.append([out.detach().cpu().numpy()] + [t.grad.cpu().numpy() for t in ts])
    for a, b in zip(*results):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-9)


def test_enable_gqa():
    """Grouped-query attention: 6 query heads share 2 key/value heads (torch's enable_gqa)."""
    rng = np.random.default_rng(12)
    q = rng.standard_normal((2, 6, 5, 4))
    k, v = rng.standard_normal((2, 2, 7, 4)), rng.standard_normal((2, 2, 7, 3))
    rep = [np.repeat(a, 3, axis=1) for a in (k, v)]
    check_op(
        lambda q, k, v: SDPA(q, k, v, is_causal=True, enable_gqa=True),
        lambda q, k, v: R.scaled_dot_product_attention(q, *rep, is_causal=True),
        lambda g, q, k, v: (
            lambda d: (d[0], d[1].reshape(2, 2, 3, 7, 4).sum(2), d[2].reshape(2, 2, 3, 7, 3).sum(2))
        )(R.scaled_dot_product_attention_vjp(g, q, *rep, is_causal=True)),
        [q, k, v],
        dtype=pe.float64,
    )
    with pytest.raises(ValueError, match=r"^\[scaled_dot_product_attention\] "):
        SDPA(
            pe.tensor(q),
            pe.tensor(k[:, :1].repeat(4, 1)),
            pe.tensor(v[:, :1].repeat(4, 1)),
            enable_gqa=True,
        )


@settings(max_examples=20)
@given(
    st.integers(1, 3),
    st.integers(1, 3),
    st.integers(1, 80),
    st.integers(1, 300),
    st.integers(1, 20),
    st.integers(1, 20),
    st.booleans(),
)
def test_fuzzed_shapes(B, H, Lq, Lk, D, Dv, causal):
    rng = np.random.default_rng(B * 1000003 + H * 10007 + Lq * 101 + Lk + D + Dv)
    q, k, v = (rng.standard_normal(s) for s in [(B, H, Lq, D), (B, H, Lk, D), (B, H, Lk, Dv)])
    ts = [pe.tensor(a, requires_grad=True) for a in (q, k, v)]
    out = SDPA(*ts, is_causal=causal)
    assert_close(out, R.scaled_dot_product_attention(q, k, v, is_causal=causal), pe.float64)
    g = rng.standard_normal(out.shape)
    (out * pe.tensor(g)).sum().backward()
    for t, rg in zip(ts, R.scaled_dot_product_attention_vjp(g, q, k, v, is_causal=causal)):
        assert_close(t.grad, rg, pe.float64, rtol=1e-9, atol=1e-9)


@pytest.mark.cuda
@pytest.mark.parametrize("causal", [False, True], ids=["full", "causal"])
def test_cuda_float16(cp, causal):
    """float16 storage, float32 accumulation: within half-precision rounding of the reference."""
    rng = np.random.default_rng(2)
    arrs = [rng.standard_normal(s).astype(np.float16) for s in _shapes((2, 3), 70, 130, 64, 32)]
    ts = [pe.tensor(a).cuda().requires_grad_() for a in arrs]
    out = SDPA(*ts, is_causal=causal)
    assert out.dtype == np.float16
    ref_in = [a.astype(np.float64) for a in arrs]
    want = R.scaled_dot_product_attention(*ref_in, is_causal=causal)
    np.testing.assert_allclose(out.detach().cpu().numpy().astype(np.float64), want, atol=5e-3)
    g = rng.standard_normal(out.shape).astype(np.float16)
    (out * pe.tensor(g).cuda()).sum().backward()
    grads = R.scaled_dot_product_attention_vjp(g.astype(np.float64), *ref_in, is_causal=causal)
    for t, rg in zip(ts, grads):
        got = t.grad.cpu().numpy().astype(np.float64)
        np.testing.assert_allclose(got, rg, atol=2e-2 * max(1.0, np.abs(rg).max()))


def test_float16_on_cpu_is_refused():
    x = pe.ones(1, 2, 3, 4, dtype=pe.float16)
    with pytest.raises(TypeError, match=r"^\[scaled_dot_product_attention\] "):
        SDPA(x, x, x)
