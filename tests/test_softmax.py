"""softmax / log_softmax / cross_entropy / nll_loss (csrc/cpu/softmax.h) vs reference/softmax.py."""

from __future__ import annotations

import zlib

import numpy as np
import pytest
from helpers import assert_close, check_op, numeric_vjp, uniform
from reference import softmax as R

import pyengine as pe
import pyengine.functional as F
from pyengine import nn

DTYPES = [pe.float32, pe.float64]
DT_IDS = ["f32", "f64"]

# (shape, dim): last dim (fast path), inner > 1 (blocked path, incl. inner > 64), size 1, 0-d
SM_CASES = [
    ((7,), 0),
    ((3, 5), 1),
    ((3, 5), 0),
    ((3, 5), -1),
    ((2, 3, 4), 1),
    ((2, 3, 4), 0),
    ((2, 7, 67), 1),
    ((1, 1), 1),
    ((4, 1, 3), 1),
    ((2, 3, 2, 5), 2),
    ((), 0),
    ((2, 1030), 1),
]


def _sm_ids(cases):
    return [f"{'x'.join(map(str, s)) or 'scalar'}-dim{d}" for s, d in cases]


def _softmax(x, dim):
    return F.softmax(x, dim)


def _log_softmax(x, dim):
    return F.log_softmax(x, dim)


@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
@pytest.mark.parametrize("case", SM_CASES, ids=_sm_ids(SM_CASES))
@pytest.mark.parametrize("log", [False, True], ids=["softmax", "log_softmax"])
def test_softmax(cpu_isa, log, case, dtype):
    shape, dim = case
    op, ref, vjp = (
        (_log_softmax, R.log_softmax, R.log_softmax_vjp)
        if log
        else (_softmax, R.softmax, R.softmax_vjp)
    )
    numel = int(np.prod(shape))
    check_op(
        op,
        ref,
        vjp,
        [shape],
        dtype=dtype,
        kwargs={"dim": dim},
        gen=uniform(-4, 4),
        gradcheck=numel <= 300,
    )


@pytest.mark.parametrize("shape", [(4096, 257), (64, 33, 130)], ids=["rows", "blocked"])
@pytest.mark.parametrize("log", [False, True], ids=["softmax", "log_softmax"])
def test_softmax_large_threads(num_threads, shape, log):
    rng = np.random.default_rng(0)
    x = (rng.standard_normal(shape) * 3).astype(np.float32)
    g = rng.standard_normal(shape).astype(np.float32)
    xt = pe.tensor(x, requires_grad=True)
    y = (F.log_softmax if log else F.softmax)(xt, 1)
    assert_close(y, (R.log_softmax if log else R.softmax)(x, 1), what="forward")
    (y * pe.tensor(g)).sum().backward()
    want = (R.log_softmax_vjp if log else R.softmax_vjp)(g, x, 1)[0]
    assert_close(xt.grad, want, what="backward")


# A backward's dx of 12 MiB or more is built a row at a time in a buffer and written with
# streaming stores (cpu/isa/rowwise_util.h, kStreamBytes); rows of 1001 values start at every
# alignment, so each streamed row's unaligned head and tail are exercised too.
STREAMED_ROWS = {pe.float32: 3200, pe.float64: 1600}


@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
@pytest.mark.parametrize("log", [False, True], ids=["softmax", "log_softmax"])
def test_softmax_streamed_gradient(cpu_isa, log, dtype):
    rng = np.random.default_rng(1)
    shape = (STREAMED_ROWS[dtype], 1001)
    assert np.prod(shape) * np.dtype(dtype).itemsize >= 12 << 20
    x, g = rng.standard_normal(shape) * 3, rng.standard_normal(shape)
    xt = pe.tensor(x.astype(dtype), requires_grad=True)
    y = (F.log_softmax if log else F.softmax)(xt, 1)
    assert_close(y, (R.log_softmax if log else R.softmax)(x, 1), dtype, what="forward")
    y.backward(pe.tensor(g.astype(dtype)))
    want = (R.log_softmax_vjp if log else R.softmax_vjp)(g, x, 1)[0]
    assert_close(xt.grad, want, dtype, what="backward")


@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
def test_softmax_large_logits(cpu_isa, dtype):
    """Logits of +-1e4 neither overflow nor lose the small differences."""
    x = np.array([[1e4, 1e4 - 1, -1e4, 1e4 - 3], [-1e4, -1e4 + 2, -1e4 + 1, -1e4]], dtype=dtype)
    for dim in (1, 0):
        assert_close(F.softmax(pe.tensor(x), dim), R.softmax(x, dim), dtype)
        assert_close(F.log_softmax(pe.tensor(x), dim), R.log_softmax(x, dim), dtype)


def test_softmax_minus_inf(cpu_isa):
    x = np.array([[0.0, -np.inf, 1.0], [-np.inf, -np.inf, -np.inf]], dtype=np.float32)
    y = F.softmax(pe.tensor(x), 1).numpy()
    assert y[0, 1] == 0.0
    assert_close(y[0], R.softmax(x[:1], 1)[0])
    assert np.isnan(y[1]).all()  # as torch: a row that is all -inf has no distribution


def test_softmax_composed_double_backward():
    rng = np.random.default_rng(1)
    x = pe.tensor(rng.standard_normal((3, 4)), requires_grad=True)
    g = pe.tensor(rng.standard_normal((3, 4)))
    for fn in (F.softmax, F.log_softmax):
        fused = pe.autograd.grad(fn(x, 1), (x,), g)[0]
        composed = pe.autograd.grad(fn(x, 1), (x,), g, create_graph=True)[0]
        assert_close(fused, composed.detach().numpy(), pe.float64)

        def gx(x_, fn=fn):
            with pe.enable_grad():
                return pe.autograd.grad(fn(x_, 1), (x_,), g, create_graph=True)[0]

        assert pe.autograd.gradcheck(gx, (x,))


def test_softmax_legacy_dim_warns():
    with pytest.warns(UserWarning, match="Implicit dimension"):
        y = F.softmax(pe.ones(2, 3))
    assert_close(y, np.full((2, 3), 1 / 3))


# ----------------------------------------------------------------- cross_entropy / nll_loss


def _targets(rng, shape, C, ignore_index=None, frac=0.3):
    t = rng.integers(0, C, shape).astype(np.int64)
    if ignore_index is not None:
        t[rng.random(shape) < frac] = ignore_index
    return t


def _ce(x, t, w=None, **kw):
    return F.cross_entropy(x, t, w, **kw)


def _ce_ref(x, t, w=None, **kw):
    return R.cross_entropy(x, t, w, **kw)


def _ce_vjp(g, x, t, w=None, **kw):
    dx, dt, _ = R.cross_entropy_vjp(g, x, t, w, **kw)
    return (dx, dt) if w is None else (dx, dt, None)


# input shapes: (N, C), (N, C, d1), (N, C, d1, d2), unbatched (C,)
CE_SHAPES = [(5, 4), (1, 7), (3, 5, 2), (2, 3, 2, 3), (6,), (4, 1)]


@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("shape", CE_SHAPES, ids=["x".join(map(str, s)) for s in CE_SHAPES])
@pytest.mark.parametrize("variant", ["plain", "weight", "ignore", "smooth", "all"])
def test_cross_entropy_class_targets(cpu_isa, variant, shape, reduction, dtype):
    rng = np.random.default_rng(zlib.crc32(repr((variant, shape, reduction)).encode()))
    C = shape[1] if len(shape) > 1 else shape[0]
    tshape = (shape[0],) + shape[2:] if len(shape) > 1 else ()
    ignore = 1 if variant in ("ignore", "all") else -100
    t = _targets(rng, tshape, C, ignore if variant in ("ignore", "all") else None)
    if variant in ("ignore", "all") and (t == ignore).all():
        t.reshape(-1)[0] = 0
    kw = {
        "reduction": reduction,
        "ignore_index": ignore,
        "label_smoothing": 0.2 if variant in ("smooth", "all") else 0.0,
    }
    inputs = [shape, t]
    gens = [uniform(-3, 3), None]
    if variant in ("weight", "all"):
        inputs.append(rng.uniform(0.2, 2.0, C))
        gens.append(None)
    ops = (_ce, _ce_ref, _ce_vjp)
    if variant in ("weight", "all"):  # the weight is a constant: no gradient expected for it
        w = inputs.pop()
        gens.pop()
        wt = w.astype(dtype)

        def op(x, t_, **k):
            return F.cross_entropy(x, t_, pe.tensor(wt.astype(x.dtype)), **k)

        def ref(x, t_, **k):
            return R.cross_entropy(x, t_, wt, **k)

        def vjp(g, x, t_, **k):
            return R.cross_entropy_vjp(g, x, t_, wt, **k)[:2]

        ops = (op, ref, vjp)
    check_op(*ops, inputs, dtype=dtype, gen=gens, kwargs=kw)


@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("shape", [(4, 3), (2, 5, 3), (5,)], ids=["4x3", "2x5x3", "5"])
@pytest.mark.parametrize("smooth", [0.0, 0.25])
def test_cross_entropy_prob_targets(cpu_isa, smooth, shape, reduction, dtype):
    """Probability targets: the target gets a gradient too (check_op makes it require grad)."""
    rng = np.random.default_rng(3)
    q = rng.random(shape)
    q /= q.sum(axis=1 if len(shape) > 1 else 0, keepdims=True)
    kw = {"reduction": reduction, "label_smoothing": smooth}
    check_op(_ce, _ce_ref, _ce_vjp, [shape, q], dtype=dtype, gen=[uniform(-3, 3), None], kwargs=kw)


def test_cross_entropy_prob_targets_weight():
    rng = np.random.default_rng(4)
    w = rng.uniform(0.5, 2, 3)

    def op(x, q, **k):
        return F.cross_entropy(x, q, pe.tensor(w), **k)

    def ref(x, q, **k):
        return R.cross_entropy(x, q, w, **k)

    def vjp(g, x, q, **k):
        return R.cross_entropy_vjp(g, x, q, w, **k)[:2]

    q = rng.random((4, 3))
    check_op(
        op,
        ref,
        vjp,
        [(4, 3), q / q.sum(1, keepdims=True)],
        dtype=pe.float64,
        kwargs={"label_smoothing": 0.1},
    )


@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
def test_cross_entropy_large_logits(cpu_isa, dtype):
    x = np.array([[1e4, -1e4, 0.0, 1e4 - 2], [-1e4, -1e4 + 5, -1e4, -1e4]], dtype=dtype)
    t = np.array([3, 1])
    for ls in (0.0, 0.1):
        xt = pe.tensor(x, requires_grad=True)
        loss = F.cross_entropy(xt, pe.tensor(t), label_smoothing=ls, reduction="sum")
        ref = R.cross_entropy(x, t, reduction="sum", label_smoothing=ls)
        assert np.isfinite(loss.item())
        assert_close(loss, ref, dtype, rtol=1e-6 if dtype == pe.float32 else None)
        loss.backward()
        want = R.cross_entropy_vjp(1.0, x, t, reduction="sum", label_smoothing=ls)[0]
        assert_close(xt.grad, want, dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
def test_cross_entropy_many_positions(cpu_isa, num_threads, dtype):
    """(N, C, d) with d > 64: the blocked path over positions, with ignored targets, weights,
    label smoothing and probability targets."""
    rng = np.random.default_rng(11)
    x = (rng.standard_normal((3, 6, 150)) * 4).astype(dtype)
    t = rng.integers(0, 6, (3, 150))
    t[rng.random((3, 150)) < 0.2] = -100
    w = rng.uniform(0.5, 2, 6).astype(dtype)
    q = rng.random(x.shape).astype(dtype)
    for target, kw in ((t, {"label_smoothing": 0.15}), (t, {}), (q, {"label_smoothing": 0.1})):
        xt = pe.tensor(x, requires_grad=True)
        loss = F.cross_entropy(xt, pe.tensor(target), pe.tensor(w), **kw)
        assert_close(loss, R.cross_entropy(x, target, w, **kw), dtype)
        loss.backward()
        assert_close(xt.grad, R.cross_entropy_vjp(1.0, x, target, w, **kw)[0], dtype)


def test_cross_entropy_all_ignored_is_nan_with_zero_grad():
    x = pe.randn(3, 4, requires_grad=True)
    t = pe.tensor(np.array([-100, -100, -100]))
    loss = F.cross_entropy(x, t)
    assert np.isnan(loss.item())
    loss.backward()
    assert (x.grad.numpy() == 0).all()
    assert F.cross_entropy(x, t, reduction="sum").item() == 0.0


def test_cross_entropy_composed_double_backward():
    rng = np.random.default_rng(5)
    x = pe.tensor(rng.standard_normal((4, 3)), requires_grad=True)
    t = pe.tensor(np.array([0, 2, -100, 1]))
    w = pe.tensor(rng.uniform(0.5, 2, 3))
    for kw in ({}, {"weight": w, "label_smoothing": 0.2}, {"reduction": "none"}):
        g = pe.tensor(rng.standard_normal(4)) if kw.get("reduction") == "none" else None
        loss = F.cross_entropy(x, t, **kw)
        fused = pe.autograd.grad(loss, (x,), g)[0]
        loss = F.cross_entropy(x, t, **kw)
        composed = pe.autograd.grad(loss, (x,), g, create_graph=True)[0]
        assert_close(fused, composed.detach().numpy(), pe.float64)

        def gx(x_, kw=kw, g=g):
            with pe.enable_grad():
                return pe.autograd.grad(F.cross_entropy(x_, t, **kw), (x_,), g, create_graph=True)[
                    0
                ]

        assert pe.autograd.gradcheck(gx, (x,))


def _nll(x, t, **kw):
    return F.nll_loss(x, t, **kw)


def _nll_vjp(g, x, t, **kw):
    return R.nll_loss_vjp(g, x, t, **kw)[:2]


@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("shape", [(5, 4), (3, 5, 2), (6,)], ids=["5x4", "3x5x2", "6"])
def test_nll_loss(shape, reduction, dtype):
    rng = np.random.default_rng(6)
    C = shape[1] if len(shape) > 1 else shape[0]
    tshape = (shape[0],) + shape[2:] if len(shape) > 1 else ()
    t = _targets(rng, tshape, C, 2, frac=0.25)
    if (t == 2).all():
        t.reshape(-1)[0] = 0
    check_op(
        _nll,
        R.nll_loss,
        _nll_vjp,
        [shape, t],
        dtype=dtype,
        kwargs={"reduction": reduction, "ignore_index": 2},
    )


def test_nll_loss_weight_and_double_backward():
    rng = np.random.default_rng(7)
    w = rng.uniform(0.5, 2, 4)
    x = pe.tensor(rng.standard_normal((5, 4)), requires_grad=True)
    t = pe.tensor(np.array([0, 3, 3, 1, 2]))
    loss = F.nll_loss(x, t, pe.tensor(w))
    assert_close(loss, R.nll_loss(x.detach().numpy(), t.numpy(), w), pe.float64)
    g = pe.autograd.grad(loss, (x,), create_graph=True)[0]
    assert_close(g, R.nll_loss_vjp(1.0, x.detach().numpy(), t.numpy(), w)[0], pe.float64)


def test_losses_match_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(8)
    x = rng.standard_normal((6, 5, 3))
    t = rng.integers(0, 5, (6, 3))
    t[0, 0] = 4
    t[1, 2] = 4
    w = rng.uniform(0.5, 2, 5)
    for kw in (
        {},
        {"ignore_index": 4},
        {"label_smoothing": 0.3, "ignore_index": 4},
        {"reduction": "sum", "label_smoothing": 0.1},
        {"reduction": "none"},
    ):
        for weight in (None, w):
            xt = torch.tensor(x, requires_grad=True)
            lt = torch.nn.functional.cross_entropy(
                xt, torch.tensor(t), None if weight is None else torch.tensor(weight), **kw
            )
            lt.sum().backward()
            xp = pe.tensor(x, requires_grad=True)
            lp = F.cross_entropy(
                xp, pe.tensor(t), None if weight is None else pe.tensor(weight), **kw
            )
            lp.sum().backward()
            np.testing.assert_allclose(lp.detach().numpy(), lt.detach().numpy(), rtol=1e-10)
            np.testing.assert_allclose(xp.grad.numpy(), xt.grad.numpy(), rtol=1e-9, atol=1e-12)
    q = rng.random((6, 5, 3))
    lt = torch.nn.functional.cross_entropy(
        torch.tensor(x), torch.tensor(q), torch.tensor(w), label_smoothing=0.2
    )
    lp = F.cross_entropy(pe.tensor(x), pe.tensor(q), pe.tensor(w), label_smoothing=0.2)
    np.testing.assert_allclose(lp.item(), lt.item(), rtol=1e-10)


def test_reference_vjps_match_finite_differences():
    rng = np.random.default_rng(9)
    x = rng.standard_normal((3, 4, 2))
    t = np.array([[0, 1], [3, -100], [2, 2]])
    w = rng.uniform(0.5, 2, 4)
    g = rng.standard_normal(())
    for kw in ({}, {"label_smoothing": 0.3}):
        got = R.cross_entropy_vjp(g, x, t, w, **kw)[0]
        want = numeric_vjp(lambda a, kw=kw: R.cross_entropy(a, t, w, **kw), [x], 0, g)
        np.testing.assert_allclose(got, want, atol=1e-6)
    q = rng.random((3, 4, 2))
    got = R.cross_entropy_vjp(g, x, q, w, label_smoothing=0.2)[1]
    want = numeric_vjp(lambda b: R.cross_entropy(x, b, w, label_smoothing=0.2), [q], 0, g)
    np.testing.assert_allclose(got, want, atol=1e-6)
    gs = rng.standard_normal((3, 4))
    got = R.softmax_vjp(gs, x[:, :, 0], 1)[0]
    np.testing.assert_allclose(
        got, numeric_vjp(lambda a: R.softmax(a, 1), [x[:, :, 0]], 0, gs), atol=1e-6
    )


def test_loss_modules_use_these_ops():
    x = pe.randn(4, 3, requires_grad=True)
    t = pe.tensor(np.array([0, 1, 2, 1]))
    loss = nn.CrossEntropyLoss(label_smoothing=0.1)(x, t)
    ref = R.cross_entropy(x.detach().numpy(), t.numpy(), label_smoothing=0.1)
    assert_close(loss, ref)
    assert_close(nn.LogSoftmax(1)(x), R.log_softmax(x.detach().numpy(), 1))
    assert_close(nn.Softmax(dim=0)(x), R.softmax(x.detach().numpy(), 0))


# ----------------------------------------------------------------- errors

_X = pe.ones(3, 4)
_T = pe.tensor(np.array([0, 1, 2]))


@pytest.mark.parametrize(
    "call, exc, op",
    [
        (lambda: F.softmax(_X, 2), ValueError, "softmax"),
        (lambda: F.log_softmax(_X, -3), ValueError, "log_softmax"),
        (lambda: F.softmax(pe.ones(3, dtype=pe.int64), 0), TypeError, "softmax"),
        (lambda: F.softmax(_X, 1.5), TypeError, "softmax"),
        (lambda: F.cross_entropy(_X, pe.tensor(np.array([0, 4, 1]))), ValueError, "cross_entropy"),
        (lambda: F.cross_entropy(_X, pe.tensor(np.array([0, -1, 1]))), ValueError, "cross_entropy"),
        (
            lambda: F.cross_entropy(_X, pe.tensor(np.array([0, 1], np.int64))),
            ValueError,
            "cross_entropy",
        ),
        (
            lambda: F.cross_entropy(_X, pe.tensor(np.array([0, 1, 2], np.int32))),
            TypeError,
            "cross_entropy",
        ),
        (lambda: F.cross_entropy(_X, _T, reduction="avg"), ValueError, "cross_entropy"),
        (lambda: F.cross_entropy(_X, _T, label_smoothing=1.5), ValueError, "cross_entropy"),
        (lambda: F.cross_entropy(_X, _T, pe.ones(3)), ValueError, "cross_entropy"),
        (lambda: F.cross_entropy(_X, _T, pe.ones(4, dtype=pe.float64)), TypeError, "cross_entropy"),
        (lambda: F.cross_entropy(_X, pe.ones(3, 5)), ValueError, "cross_entropy"),
        (lambda: F.cross_entropy(_X, pe.ones(3, 4, dtype=pe.float64)), TypeError, "cross_entropy"),
        (lambda: F.cross_entropy(pe.ones(4), _T), ValueError, "cross_entropy"),
        (lambda: F.nll_loss(_X, pe.tensor(np.array([0, 9, 1]))), ValueError, "nll_loss"),
        (lambda: F.nll_loss(_X, _T, reduction="x"), ValueError, "nll_loss"),
        (lambda: F.nll_loss(np.ones((3, 4)), _T), TypeError, "nll_loss"),
    ],
)
def test_errors(call, exc, op):
    with pytest.raises(exc, match=rf"^\[{op}\] "):
        call()


# ----------------------------------------------------------------- CUDA (skipped without a GPU)

from pyengine.backend import cuda as _pcuda  # noqa: E402


@pytest.fixture
def gpu():
    if not _pcuda.is_available():
        pytest.skip(f"no CUDA GPU: {_pcuda.unavailable_reason()}")


def _to_gpu(a, rg=False):
    return pe.tensor(np.asarray(a), device="cuda", requires_grad=rg)


def _host(t):
    return t.detach().cpu().numpy()


@pytest.mark.cuda
@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
@pytest.mark.parametrize(
    "case",
    [
        ((3, 5), 1),
        ((2, 7, 67), 1),
        ((4, 1030), -1),
        ((2, 3), 0),
        ((5, 1), -1),
        ((3, 257), -1),
        ((3, 700), -1),
        ((2, 3, 2000), -1),
        ((2, 4096), -1),
        ((2, 4097), -1),
    ],
    ids=["3x5", "blocked", "rows", "dim0", "one", "257", "700", "2000", "4096", "4097"],
)
@pytest.mark.parametrize("log", [False, True], ids=["softmax", "log_softmax"])
def test_cuda_softmax(gpu, log, case, dtype):
    shape, dim = case
    rng = np.random.default_rng(30)
    x = (rng.standard_normal(shape) * 3).astype(dtype)
    g = rng.standard_normal(shape).astype(dtype)
    xt = _to_gpu(x, True)
    y = (F.log_softmax if log else F.softmax)(xt, dim)
    assert_close(
        _host(y), (R.log_softmax if log else R.softmax)(x, dim), dtype, rtol=1e-4, atol=1e-5
    )
    (y * _to_gpu(g)).sum().backward()
    want = (R.log_softmax_vjp if log else R.softmax_vjp)(g, x, dim)[0]
    assert_close(_host(xt.grad), want, dtype, rtol=1e-4, atol=1e-5)


@pytest.mark.cuda
@pytest.mark.parametrize("n", [5, 700, 5000], ids=["regs1", "regs4", "streamed"])
@pytest.mark.parametrize("log", [False, True], ids=["softmax", "log_softmax"])
def test_cuda_softmax_nonfinite_rows_match_cpu(gpu, log, n):
    """A NaN, a +inf and an all -inf row give on the GPU what they give on the CPU."""
    rng = np.random.default_rng(31)
    x = rng.standard_normal((4, n))
    x[0, n // 2] = np.nan
    x[1, n - 1] = np.inf
    x[2, :] = -np.inf
    f = F.log_softmax if log else F.softmax
    want = f(pe.tensor(x), -1).numpy()
    got = _host(f(_to_gpu(x), -1))
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_allclose(got[~np.isnan(want)], want[~np.isnan(want)], rtol=1e-12, atol=0)


@pytest.mark.cuda
@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize(
    "kw", [{}, {"label_smoothing": 0.2, "ignore_index": 1}], ids=["plain", "smooth-ignore"]
)
def test_cuda_cross_entropy_and_nll(gpu, kw, reduction, dtype):
    rng = np.random.default_rng(31)
    x = (rng.standard_normal((6, 5, 3)) * 3).astype(dtype)
    t = rng.integers(0, 5, (6, 3))
    w = rng.uniform(0.5, 2, 5).astype(dtype)
    xt = _to_gpu(x, True)
    loss = F.cross_entropy(xt, _to_gpu(t), _to_gpu(w), reduction=reduction, **kw)
    ref = R.cross_entropy(x, t, w, reduction=reduction, **kw)
    assert_close(_host(loss), ref, dtype, rtol=1e-4, atol=1e-5)
    gl = np.ones(np.shape(ref), dtype)
    loss.backward(_to_gpu(gl))
    assert_close(
        _host(xt.grad),
        R.cross_entropy_vjp(gl, x, t, w, reduction=reduction, **kw)[0],
        dtype,
        rtol=1e-4,
        atol=1e-5,
    )
    ii = kw.get("ignore_index", -100)
    nl = F.nll_loss(_to_gpu(x), _to_gpu(t), _to_gpu(w), reduction=reduction, ignore_index=ii)
    assert_close(
        _host(nl),
        R.nll_loss(x, t, w, reduction=reduction, ignore_index=ii),
        dtype,
        rtol=1e-4,
        atol=1e-5,
    )
    q = rng.random(x.shape).astype(dtype)
    lp = F.cross_entropy(_to_gpu(x), _to_gpu(q), reduction=reduction, label_smoothing=0.1)
    assert_close(
        _host(lp),
        R.cross_entropy(x, q, reduction=reduction, label_smoothing=0.1),
        dtype,
        rtol=1e-4,
        atol=1e-5,
    )
    with pytest.raises(ValueError, match=r"^\[cross_entropy\] target 7"):
        F.cross_entropy(_to_gpu(x), _to_gpu(np.full((6, 3), 7)))
