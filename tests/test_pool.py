"""Pooling family vs the float64 reference (tests/reference/pool.py): forward, backward through
a random projection, gradcheck in float64, every CPU ISA path, error table. Where PyTorch is
installed, a few cases are also compared with it bit for bit (indices, NaN, ties)."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import assert_close, check_op, distinct, ties
from reference import pool as R

import pyengine as pe
import pyengine.functional as F
import pyengine.nn as nn

DTYPES = [pe.float32, pe.float64]

# (shape, kernel_size, stride, padding, dilation, ceil_mode)
MAX_CASES = [
    ((2, 3, 8, 8), 2, None, 0, 1, False),
    ((2, 3, 9, 9), 3, 2, 1, 1, False),
    ((1, 2, 11, 7), 3, 2, 1, 1, True),
    ((1, 2, 13, 17), (3, 2), (2, 1), (1, 0), 1, False),
    ((2, 1, 10, 12), 3, 1, 1, 2, False),
    ((1, 2, 7, 23), (2, 3), (3, 2), (1, 1), (2, 1), True),
    ((1, 1, 1, 19), (1, 3), (1, 3), 0, 1, True),
    ((3, 2, 5, 5), 5, 1, 2, 1, False),
    ((1, 1, 40, 37), 3, 2, 1, 1, True),  # vector body + tails
    ((2, 3, 6, 6), 2, 2, 0, 1, True),
    ((1, 1, 9, 41), 4, 3, 2, 1, True),
]


def _kw(case):
    _, k, s, p, d, c = case
    return {"kernel_size": k, "stride": s, "padding": p, "dilation": d, "ceil_mode": c}


def _small(shape):
    return int(np.prod(shape)) <= 600


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "case", MAX_CASES, ids=lambda c: f"{c[0]}-k{c[1]}s{c[2]}p{c[3]}d{c[4]}c{int(c[5])}"
)
def test_max_pool2d(cpu_isa, case, dtype):
    check_op(
        F.max_pool2d,
        R.max_pool2d,
        R.max_pool2d_vjp,
        [case[0]],
        dtype=dtype,
        gen=distinct(),
        kwargs=_kw(case),
        gradcheck=dtype == pe.float64 and _small(case[0]),
    )


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", MAX_CASES[:6], ids=lambda c: f"{c[0]}")
def test_max_pool2d_indices(cpu_isa, case, dtype):
    kw = dict(_kw(case), return_indices=True)
    check_op(
        F.max_pool2d,
        R.max_pool2d,
        R.max_pool2d_vjp,
        [case[0]],
        dtype=dtype,
        gen=distinct(),
        kwargs=kw,
        gradcheck=False,
    )


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", MAX_CASES, ids=lambda c: f"{c[0]}")
def test_max_pool2d_ties_go_to_first_max(cpu_isa, case, dtype):
    kw = dict(_kw(case), return_indices=True)
    check_op(
        F.max_pool2d,
        R.max_pool2d,
        R.max_pool2d_vjp,
        [case[0]],
        dtype=dtype,
        gen=ties(2),
        kwargs=kw,
        gradcheck=False,
    )


def test_max_pool2d_all_equal_window_picks_first():
    x = pe.zeros(1, 1, 4, 4, requires_grad=True)
    y, idx = F.max_pool2d(x, 2, return_indices=True)
    np.testing.assert_array_equal(idx.numpy()[0, 0], [[0, 2], [8, 10]])
    y.sum().backward()
    want = np.zeros((4, 4))
    want[[0, 0, 2, 2], [0, 2, 0, 2]] = 1
    np.testing.assert_array_equal(x.grad.numpy()[0, 0], want)


@pytest.mark.parametrize("dtype", DTYPES)
def test_max_pool2d_nan_and_inf(cpu_isa, dtype):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 3, 13, 29)).astype(dtype)
    x[rng.random(x.shape) < 0.08] = np.nan
    x[rng.random(x.shape) < 0.05] = -np.inf
    x[0, 0, :4, :4] = -np.inf  # windows with nothing above -inf: index = first position
    for kw in [
        dict(kernel_size=3, stride=2, padding=1),
        dict(kernel_size=2, stride=1),
        dict(kernel_size=3, stride=1, padding=1, dilation=2, ceil_mode=True),
    ]:
        y, idx = F.max_pool2d(pe.tensor(x), return_indices=True, **kw)
        ry, ri = R.max_pool2d(x, return_indices=True, **kw)
        np.testing.assert_array_equal(y.numpy(), ry.astype(dtype))
        np.testing.assert_array_equal(idx.numpy(), ri)


# (shape, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override)
AVG_CASES = [
    ((2, 3, 8, 8), 2, None, 0, False, True, None),
    ((2, 3, 9, 9), 3, 2, 1, False, True, None),
    ((2, 3, 9, 9), 3, 2, 1, False, False, None),
    ((1, 2, 11, 7), 3, 2, 1, True, True, None),
    ((1, 2, 11, 7), 3, 2, 1, True, False, None),
    ((1, 2, 13, 17), (3, 2), (2, 1), (1, 1), False, True, 5),
    ((1, 2, 10, 10), 4, 3, 2, True, False, -3),
    ((3, 1, 1, 19), (1, 3), (1, 3), 0, True, True, None),
    ((1, 1, 40, 37), 3, 1, 1, False, False, None),
    ((1, 1, 17, 44), 2, 2, 0, True, True, None),
    ((1, 1, 6, 9), 5, 4, 2, True, True, None),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "case", AVG_CASES, ids=lambda c: f"{c[0]}-k{c[1]}s{c[2]}p{c[3]}c{int(c[4])}i{int(c[5])}d{c[6]}"
)
def test_avg_pool2d(cpu_isa, case, dtype):
    shape, k, s, p, c, cip, div = case
    kw = {
        "kernel_size": k,
        "stride": s,
        "padding": p,
        "ceil_mode": c,
        "count_include_pad": cip,
        "divisor_override": div,
    }
    check_op(
        F.avg_pool2d,
        R.avg_pool2d,
        R.avg_pool2d_vjp,
        [shape],
        dtype=dtype,
        kwargs=kw,
        gradcheck=dtype == pe.float64 and _small(shape),
    )


ADAPTIVE_CASES = [
    ((2, 3, 7, 7), 1),
    ((2, 3, 8, 8), (2, 4)),
    ((1, 2, 10, 7), (3, 4)),
    ((1, 2, 5, 11), (7, 3)),  # output larger than input in one dim: overlapping windows
    ((2, 1, 13, 1), (5, 1)),
    ((1, 2, 9, 6), (None, 4)),
    ((1, 1, 32, 48), (5, 7)),
    ((1, 1, 16, 48), (4, 3)),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", ADAPTIVE_CASES, ids=lambda c: f"{c[0]}-{c[1]}")
def test_adaptive_avg_pool2d(cpu_isa, case, dtype):
    shape, out = case
    check_op(
        F.adaptive_avg_pool2d,
        R.adaptive_avg_pool2d,
        R.adaptive_avg_pool2d_vjp,
        [shape],
        dtype=dtype,
        kwargs={"output_size": out},
        gradcheck=dtype == pe.float64 and _small(shape),
    )


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", ADAPTIVE_CASES, ids=lambda c: f"{c[0]}-{c[1]}")
def test_adaptive_max_pool2d(cpu_isa, case, dtype):
    shape, out = case
    check_op(
        F.adaptive_max_pool2d,
        R.adaptive_max_pool2d,
        R.adaptive_max_pool2d_vjp,
        [shape],
        dtype=dtype,
        gen=distinct(),
        kwargs={"output_size": out, "return_indices": True},
        gradcheck=False,
    )
    if dtype == pe.float64 and _small(shape):
        check_op(
            F.adaptive_max_pool2d,
            R.adaptive_max_pool2d,
            R.adaptive_max_pool2d_vjp,
            [shape],
            dtype=dtype,
            gen=distinct(),
            kwargs={"output_size": out},
        )


@pytest.mark.parametrize("case", ADAPTIVE_CASES, ids=lambda c: f"{c[0]}-{c[1]}")
def test_adaptive_max_pool2d_ties_and_nan(cpu_isa, case):
    shape, out = case
    check_op(
        F.adaptive_max_pool2d,
        R.adaptive_max_pool2d,
        R.adaptive_max_pool2d_vjp,
        [shape],
        dtype=pe.float64,
        gen=ties(2),
        kwargs={"output_size": out, "return_indices": True},
        gradcheck=False,
    )
    x = np.random.default_rng(1).standard_normal(shape)
    x[np.random.default_rng(2).random(shape) < 0.1] = np.nan
    y, idx = F.adaptive_max_pool2d(pe.tensor(x), out, return_indices=True)
    ry, ri = R.adaptive_max_pool2d(x, out, return_indices=True)
    np.testing.assert_array_equal(y.numpy(), ry)
    np.testing.assert_array_equal(idx.numpy(), ri)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "case",
    [
        ((2, 3, 8, 8), 2, None, 0),
        ((1, 2, 9, 9), 3, 3, 0),
        ((1, 2, 9, 10), (3, 2), (3, 2), (1, 0)),
        ((2, 1, 4, 6), 2, 2, 0),
    ],
    ids=str,
)
def test_max_unpool2d(cpu_isa, case, dtype):
    shape, k, s, p = case
    rng = np.random.default_rng(0)
    x = distinct()(rng, shape).astype(dtype)
    y, idx = F.max_pool2d(pe.tensor(x), k, s, p, return_indices=True)
    kw = {"kernel_size": k, "stride": s, "padding": p, "output_size": shape[2:]}
    # non-overlapping windows: the indices are distinct, so the gather is the exact adjoint
    check_op(
        lambda a, i, **kw: F.max_unpool2d(a, i, **kw),
        R.max_unpool2d,
        R.max_unpool2d_vjp,
        [y.numpy().astype(np.float64), idx.numpy()],
        dtype=dtype,
        kwargs=kw,
        gradcheck=dtype == pe.float64,
    )


def test_max_unpool2d_round_trip():
    x = pe.tensor(distinct()(np.random.default_rng(1), (2, 3, 8, 10)) + 100.0)  # maxima > 0
    y, idx = F.max_pool2d(x, 2, return_indices=True)
    u = F.max_unpool2d(y, idx, 2)
    xn, un = x.numpy(), u.numpy()
    kept = un != 0
    assert kept.sum() == y.numel()
    np.testing.assert_array_equal(un[kept], xn[kept])
    np.testing.assert_array_equal(F.max_pool2d(u, 2).numpy(), y.numpy())
    # module form, unbatched (C, H, W)
    pool, unpool = nn.MaxPool2d(2, return_indices=True), nn.MaxUnpool2d(2)
    y3, i3 = pool(x[0])
    np.testing.assert_array_equal(unpool(y3, i3).numpy(), un[0])
    np.testing.assert_array_equal(unpool(y3, i3, output_size=(8, 10)).numpy(), un[0])


INTERP_CASES = [
    ((2, 3, 4, 5), {"scale_factor": 2}),
    ((1, 2, 3, 7), {"scale_factor": (3, 1)}),
    ((1, 2, 3, 7), {"scale_factor": (2.0, 3.0)}),
    ((2, 1, 5, 4), {"size": (10, 12)}),
    ((2, 1, 5, 4), {"size": 20}),
    ((2, 3, 9), {"scale_factor": 3}),
    ((2, 3, 9), {"size": 18}),
    ((1, 1, 17, 33), {"scale_factor": 2}),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", INTERP_CASES, ids=str)
def test_interpolate_nearest(cpu_isa, case, dtype):
    shape, kw = case
    check_op(
        F.interpolate,
        R.interpolate,
        R.interpolate_vjp,
        [shape],
        dtype=dtype,
        kwargs=kw,
        gradcheck=dtype == pe.float64 and _small(shape),
    )


def test_upsample_module():
    x = pe.randn(2, 3, 4, 5)
    m = nn.Upsample(scale_factor=2)
    assert "scale_factor=2.0" in repr(m)
    np.testing.assert_array_equal(m(x).numpy(), R.interpolate(x.numpy(), scale_factor=2))
    np.testing.assert_array_equal(
        nn.Upsample(size=(8, 15))(x).numpy(), R.interpolate(x.numpy(), size=(8, 15))
    )


# ------------------------------------------------------------------ layouts, batches, threads


@pytest.mark.parametrize(
    "op,kw",
    [
        (F.max_pool2d, {"kernel_size": 3, "stride": 2, "padding": 1}),
        (F.avg_pool2d, {"kernel_size": 3, "stride": 2, "padding": 1, "count_include_pad": False}),
        (F.adaptive_avg_pool2d, {"output_size": (3, 4)}),
        (F.adaptive_max_pool2d, {"output_size": (3, 4)}),
    ],
)
def test_unbatched_and_strided_and_empty_batch(op, kw):
    x = pe.randn(2, 3, 11, 13, dtype=pe.float64)
    want = op(x, **kw).numpy()
    np.testing.assert_array_equal(op(x[1], **kw).numpy(), want[1])
    xt = pe.tensor(np.ascontiguousarray(x.numpy().transpose(0, 1, 3, 2))).transpose(2, 3)
    np.testing.assert_array_equal(op(xt, **kw).numpy(), want)
    empty = op(pe.zeros(0, 3, 11, 13), **kw)
    assert tuple(empty.shape) == (0, 3) + want.shape[2:]
    x3 = pe.randn(3, 11, 13, requires_grad=True)
    op(x3, **kw).sum().backward()
    assert tuple(x3.grad.shape) == (3, 11, 13)


def test_threads_agree(num_threads):
    rng = np.random.default_rng(5)
    x = pe.tensor(rng.standard_normal((4, 16, 30, 30)).astype(np.float32), requires_grad=True)
    y, idx = F.max_pool2d(x, 3, 2, 1, return_indices=True)
    xn = x.detach().numpy()
    ry, ri = R.max_pool2d(xn, 3, 2, 1, return_indices=True)
    np.testing.assert_array_equal(idx.numpy(), ri)
    assert_close(y, ry)
    a = F.avg_pool2d(x, 2)
    assert_close(a, R.avg_pool2d(xn, 2))


def test_no_indices_without_grad():
    x = pe.randn(1, 2, 6, 6)
    with pe.no_grad():
        y = F.max_pool2d(x, 2)
    assert not y.requires_grad
    np.testing.assert_array_equal(y.numpy(), R.max_pool2d(x.numpy(), 2).astype(np.float32))


@pytest.mark.parametrize("which", ["max", "avg", "adaptive_avg", "adaptive_max", "upsample"])
def test_double_backward(which):
    """Gradients of gradients: backward Functions are differentiable (gradcheck of the VJP)."""
    ops = {
        "max": lambda t: F.max_pool2d(t, 3, 2, 1),
        "avg": lambda t: F.avg_pool2d(t, 3, 2, 1, count_include_pad=False),
        "adaptive_avg": lambda t: F.adaptive_avg_pool2d(t, (2, 3)),
        "adaptive_max": lambda t: F.adaptive_max_pool2d(t, (2, 3)),
        "upsample": lambda t: F.interpolate(t, scale_factor=2),
    }
    op = ops[which]
    rng = np.random.default_rng(0)
    x = pe.tensor(distinct()(rng, (1, 2, 5, 6)), requires_grad=True)
    g0 = op(x)
    g = pe.tensor(rng.standard_normal(tuple(g0.shape)), requires_grad=True)

    def vjp(gt):
        with pe.enable_grad():  # gradcheck's finite differences run under no_grad
            (gx,) = pe.autograd.grad(op(x), [x], grad_outputs=gt, create_graph=True)
        return gx

    assert pe.autograd.gradcheck(vjp, [g])


# ------------------------------------------------------------------ nn modules


def test_modules_match_functional():
    x = pe.randn(2, 3, 10, 10)
    cases = [
        (nn.MaxPool2d(3, 2, 1), F.max_pool2d(x, 3, 2, 1)),
        (nn.MaxPool2d(2, ceil_mode=True), F.max_pool2d(x, 2, ceil_mode=True)),
        (
            nn.AvgPool2d(3, 2, 1, count_include_pad=False),
            F.avg_pool2d(x, 3, 2, 1, count_include_pad=False),
        ),
        (nn.AdaptiveAvgPool2d((1, 1)), F.adaptive_avg_pool2d(x, 1)),
        (nn.AdaptiveMaxPool2d(3), F.adaptive_max_pool2d(x, 3)),
    ]
    for m, want in cases:
        np.testing.assert_array_equal(m(x).numpy(), want.numpy())
    assert repr(nn.MaxPool2d(3, 2, 1)) == (
        "MaxPool2d(kernel_size=3, stride=2, padding=1, dilation=1, ceil_mode=False)"
    )
    assert repr(nn.AdaptiveAvgPool2d((1, 1))) == "AdaptiveAvgPool2d(output_size=(1, 1))"
    y, i = nn.AdaptiveMaxPool2d(2, return_indices=True)(x)
    assert i.dtype == pe.int64


# ------------------------------------------------------------------ errors


def _x(*shape, dtype=pe.float32):
    return pe.zeros(*shape, dtype=dtype)


ERRORS = [
    (lambda: F.max_pool2d(_x(1, 1, 4, 4), 0), ValueError, "[max_pool2d] kernel size should be"),
    (lambda: F.max_pool2d(_x(1, 1, 4, 4), 2, 0), ValueError, "[max_pool2d] stride should be"),
    (lambda: F.max_pool2d(_x(1, 1, 4, 4), 2, 1, 0, 0), ValueError, "[max_pool2d] dilation"),
    (lambda: F.max_pool2d(_x(1, 1, 4, 4), 2, 1, 2), ValueError, "[max_pool2d] pad should be"),
    (lambda: F.max_pool2d(_x(1, 1, 4, 4), 3, padding=-1), ValueError, "[max_pool2d] padding"),
    (lambda: F.max_pool2d(_x(1, 1, 2, 2), 3), ValueError, "Output size is too small"),
    (lambda: F.max_pool2d(_x(4, 4), 2), ValueError, "[max_pool2d] Expected 3D or 4D"),
    (lambda: F.max_pool2d(_x(1, 1, 1, 4, 4), 2), ValueError, "[max_pool2d] Expected 3D or 4D"),
    (lambda: F.max_pool2d(_x(1, 0, 4, 4), 2), ValueError, "[max_pool2d] Expected 3D or 4D"),
    (lambda: F.max_pool2d(_x(1, 1, 4, 4), (2, 2, 2)), ValueError, "[max_pool2d] kernel_size"),
    (lambda: F.max_pool2d(_x(1, 1, 4, 4), 2.0), TypeError, "[max_pool2d] kernel_size"),
    (lambda: F.max_pool2d(pe.zeros(1, 1, 4, 4, dtype=pe.int64), 2), TypeError, "[max_pool2d]"),
    (lambda: F.max_pool2d(np.zeros((1, 1, 4, 4)), 2), TypeError, "[max_pool2d] input must be"),
    (
        lambda: F.avg_pool2d(_x(1, 1, 4, 4), 2, divisor_override=0),
        ValueError,
        "[avg_pool2d] divisor must be not zero",
    ),
    (lambda: F.avg_pool2d(_x(1, 1, 4, 4), 3, 1, 2), ValueError, "[avg_pool2d] pad should be"),
    (lambda: F.avg_pool2d(_x(1, 1, 4, 4), 5), ValueError, "[avg_pool2d] Given input size"),
    (lambda: F.adaptive_avg_pool2d(_x(1, 1, 4, 4), 0), ValueError, "[adaptive_avg_pool2d]"),
    (lambda: F.adaptive_avg_pool2d(_x(4, 4), 2), ValueError, "[adaptive_avg_pool2d] Expected"),
    (
        lambda: F.adaptive_max_pool2d(_x(1, 1, 4, 4), (2, 2, 2)),
        TypeError,
        "[adaptive_max_pool2d] output_size",
    ),
    (
        lambda: F.max_unpool2d(_x(1, 1, 2, 2), pe.zeros(1, 1, 2, 2, dtype=pe.int32), 2),
        TypeError,
        "[max_unpool2d] elements in indices",
    ),
    (
        lambda: F.max_unpool2d(_x(1, 1, 2, 2), pe.zeros(1, 1, 2, 3, dtype=pe.int64), 2),
        ValueError,
        "[max_unpool2d] Expected shape of indices",
    ),
    (
        lambda: F.max_unpool2d(_x(1, 1, 2, 2), pe.full((1, 1, 2, 2), 16, dtype=pe.int64), 2),
        ValueError,
        "[max_unpool2d] Found an invalid max index: 16",
    ),
    (
        lambda: F.max_unpool2d(_x(1, 1, 2, 2), pe.full((1, 1, 2, 2), -1, dtype=pe.int64), 2),
        ValueError,
        "[max_unpool2d] Found an invalid max index: -1",
    ),
    (
        lambda: F.max_unpool2d(
            _x(1, 1, 2, 2), pe.zeros(1, 1, 2, 2, dtype=pe.int64), 2, output_size=(9, 4)
        ),
        ValueError,
        "[max_unpool2d] invalid output_size",
    ),
    (
        lambda: F.interpolate(_x(1, 1, 4, 4), scale_factor=1.5),
        NotImplementedError,
        "[interpolate] nearest interpolation is implemented for integer",
    ),
    (lambda: F.interpolate(_x(1, 1, 4, 4), size=(6, 8)), NotImplementedError, "[interpolate]"),
    (
        lambda: F.interpolate(_x(1, 1, 4, 4), scale_factor=2, mode="bilinear"),
        NotImplementedError,
        "[interpolate] mode='bilinear' is not implemented",
    ),
    (
        lambda: F.interpolate(_x(1, 1, 4, 4), scale_factor=2, align_corners=True),
        ValueError,
        "[interpolate] align_corners",
    ),
    (lambda: F.interpolate(_x(1, 1, 4, 4)), ValueError, "[interpolate] either size"),
    (
        lambda: F.interpolate(_x(1, 1, 4, 4), size=8, scale_factor=2),
        ValueError,
        "[interpolate] only one of",
    ),
    (
        lambda: F.interpolate(_x(1, 1, 4, 4), scale_factor=(2, 2, 2)),
        ValueError,
        "[interpolate] scale_factor shape",
    ),
    (
        lambda: F.interpolate(_x(1, 1, 2, 4, 4), scale_factor=2),
        NotImplementedError,
        "[interpolate] nearest interpolation of 5-D",
    ),
    (lambda: F.interpolate(_x(4, 4), scale_factor=2), ValueError, "[interpolate] expects"),
    (
        lambda: F.interpolate(_x(1, 1, 4, 4), scale_factor=2, mode="cubic"),
        NotImplementedError,
        "[interpolate]",
    ),
]


@pytest.mark.parametrize("call,exc,msg", ERRORS, ids=[e[2][:40] for e in ERRORS])
def test_errors(call, exc, msg):
    with pytest.raises(exc) as info:
        call()
    assert msg in str(info.value), str(info.value)
    assert str(info.value).startswith("[")


def test_binding_errors():
    """The _C bindings check their arguments on their own too."""
    from pyengine import _C

    x = np.zeros((1, 1, 4, 4), np.float32)
    with pytest.raises(ValueError, match=r"^\[max_pool2d\] pad should be"):
        _C.max_pool2d(x, (2, 2), (1, 1), (2, 2), (1, 1), False, False)
    with pytest.raises(ValueError, match=r"^\[max_pool2d\] input must be C-contiguous"):
        _C.max_pool2d(x.transpose(0, 1, 3, 2), (2, 2), (1, 1), (0, 0), (1, 1), False, False)
    with pytest.raises(TypeError, match=r"^\[avg_pool2d\] input must be float32 or float64"):
        _C.avg_pool2d(x.astype(np.int32), (2, 2), (2, 2), (0, 0), False, True, 0)
    with pytest.raises(ValueError, match=r"^\[max_pool2d_backward\] indices must have shape"):
        _C.max_pool2d_backward(x, np.zeros((1, 1, 4, 3), np.int64), 4, 4)
    with pytest.raises(ValueError, match=r"^\[avg_pool2d_backward\] grad_output has shape"):
        _C.avg_pool2d_backward(x, 4, 4, (2, 2), (2, 2), (0, 0), False, True, 0)
    with pytest.raises(ValueError, match=r"^\[upsample_nearest2d\] scale factors"):
        _C.upsample_nearest2d(x, 0, 2)


# ------------------------------------------------------------------ PyTorch parity (optional)


@pytest.mark.parametrize("dtype", DTYPES)
def test_matches_torch_bitwise(cpu_isa, dtype):
    torch = pytest.importorskip("torch")
    tf = torch.nn.functional
    rng = np.random.default_rng(7)
    for trial in range(40):
        H, W = (int(v) for v in rng.integers(3, 30, 2))
        k = int(rng.integers(1, 4))
        s = int(rng.integers(1, 4))
        p = int(rng.integers(0, k // 2 + 1))
        d = int(rng.integers(1, 3))
        c = bool(trial % 2)
        x = rng.integers(-2, 3, (2, 3, H, W)).astype(dtype)
        x[rng.random(x.shape) < 0.05] = np.nan
        try:
            ty, ti = tf.max_pool2d(torch.from_numpy(x), k, s, p, d, c, return_indices=True)
        except RuntimeError:
            continue
        y, i = F.max_pool2d(pe.tensor(x), k, s, p, d, c, return_indices=True)
        np.testing.assert_array_equal(y.numpy(), ty.numpy())
        np.testing.assert_array_equal(i.numpy(), ti.numpy())
        a = F.avg_pool2d(pe.tensor(x), k, s, p, c, bool(trial % 3))
        ta = tf.avg_pool2d(torch.from_numpy(x), k, s, p, c, bool(trial % 3))
        np.testing.assert_allclose(a.numpy(), ta.numpy(), rtol=1e-6, atol=1e-6)


# ------------------------------------------------------------------ CUDA (skip without a GPU)


def _cuda_or_skip():
    from pyengine.backend import cuda as pcuda

    if not pcuda.is_available():
        pytest.skip(f"no CUDA GPU: {pcuda.unavailable_reason()}")
    import cupy

    return pcuda, cupy


CUDA_CASES = [
    (
        "max_pool2d",
        R.max_pool2d,
        R.max_pool2d_vjp,
        (2, 3, 11, 13),
        {"kernel_size": 3, "stride": 2, "padding": 1, "return_indices": True},
    ),
    (
        "max_pool2d",
        R.max_pool2d,
        R.max_pool2d_vjp,
        (1, 2, 9, 10),
        {"kernel_size": (2, 3), "stride": 1, "padding": (1, 1), "dilation": 2, "ceil_mode": True},
    ),
    (
        "avg_pool2d",
        R.avg_pool2d,
        R.avg_pool2d_vjp,
        (2, 3, 11, 13),
        {
            "kernel_size": 3,
            "stride": 2,
            "padding": 1,
            "ceil_mode": True,
            "count_include_pad": False,
        },
    ),
    (
        "avg_pool2d",
        R.avg_pool2d,
        R.avg_pool2d_vjp,
        (1, 2, 8, 8),
        {"kernel_size": 2, "divisor_override": 3},
    ),
    (
        "adaptive_avg_pool2d",
        R.adaptive_avg_pool2d,
        R.adaptive_avg_pool2d_vjp,
        (2, 3, 10, 7),
        {"output_size": (3, 4)},
    ),
    (
        "adaptive_avg_pool2d",
        R.adaptive_avg_pool2d,
        R.adaptive_avg_pool2d_vjp,
        (2, 3, 7, 7),
        {"output_size": 1},
    ),
    (
        "adaptive_max_pool2d",
        R.adaptive_max_pool2d,
        R.adaptive_max_pool2d_vjp,
        (2, 3, 10, 7),
        {"output_size": (3, 4), "return_indices": True},
    ),
    ("interpolate", R.interpolate, R.interpolate_vjp, (2, 3, 4, 5), {"scale_factor": (2, 3)}),
]


@pytest.mark.cuda
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", CUDA_CASES, ids=lambda c: f"{c[0]}-{c[3]}")
def test_cuda_pool(case, dtype):
    _cuda_or_skip()
    name, ref, ref_vjp, shape, kw = case
    rng = np.random.default_rng(0)
    x = distinct()(rng, shape).astype(dtype)
    xt = pe.tensor(x).cuda().requires_grad_()
    out = getattr(F, name)(xt, **kw)
    outs = out if isinstance(out, tuple) else (out,)
    refs = ref(x, **kw)
    refs = refs if isinstance(refs, tuple) else (refs,)
    for o, r in zip(outs, refs):
        got = o.detach().cpu().numpy()
        if r.dtype.kind == "i":
            np.testing.assert_array_equal(got, r)
        else:
            assert_close(got, r, dtype)
    g = rng.standard_normal(refs[0].shape).astype(dtype)
    outs[0].backward(pe.tensor(g).cuda())
    want = ref_vjp((g, None) if len(refs) > 1 else g, x, **kw)[0]
    assert_close(xt.grad.cpu().numpy(), want, dtype)


@pytest.mark.cuda
def test_cuda_unpool_and_errors():
    _, cp = _cuda_or_skip()
    x = pe.tensor(distinct()(np.random.default_rng(1), (2, 3, 8, 10)) + 100.0).cuda()
    y, idx = F.max_pool2d(x, 2, return_indices=True)
    u = F.max_unpool2d(y, idx, 2)
    want = R.max_unpool2d(y.cpu().numpy(), idx.cpu().numpy(), 2)
    np.testing.assert_array_equal(u.cpu().numpy(), want)
    bad = pe.full(tuple(idx.shape), 80, dtype=pe.int64).cuda()
    with pytest.raises(ValueError, match=r"^\[max_unpool2d\] Found an invalid max index: 80"):
        F.max_unpool2d(y, bad, 2)
    with pytest.raises(ValueError, match=r"^\[max_pool2d\] pad should be"):
        F.max_pool2d(x, 2, 1, 2)


@pytest.fixture(scope="module")
def pool_emu(tmp_path_factory):
    """tests/cuda_emu/pool_emu.cu built with nvcc: cuda/pool.cu's element functions on the host."""
    import os
    import shutil
    import subprocess

    nvcc = shutil.which("nvcc") or (
        "/usr/local/cuda/bin/nvcc" if os.path.exists("/usr/local/cuda/bin/nvcc") else None
    )
    if nvcc is None:
        pytest.skip("nvcc not found")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    exe = str(tmp_path_factory.mktemp("pool_emu") / "pool_emu")
    subprocess.run(
        [nvcc, "-std=c++17", "-O1", "-arch=sm_80", "-w", "--expt-relaxed-constexpr",
         "-I" + root + "/csrc", "-I" + root + "/cuda", root + "/tests/cuda_emu/pool_emu.cu",
         "-o", exe],
        check=True, capture_output=True,
    )  # fmt: skip
    return exe


EMU_CASES = [
    (0, (2, 3, 11, 13), {"kernel_size": 3, "stride": 2, "padding": 1}),
    (
        0,
        (1, 2, 9, 10),
        {"kernel_size": (2, 3), "stride": 1, "padding": 1, "dilation": 2, "ceil_mode": True},
    ),
    (
        0,
        (1, 2, 7, 23),
        {
            "kernel_size": (2, 3),
            "stride": (3, 2),
            "padding": 1,
            "dilation": (2, 1),
            "ceil_mode": True,
        },
    ),
    (
        1,
        (2, 3, 11, 13),
        {
            "kernel_size": 3,
            "stride": 2,
            "padding": 1,
            "ceil_mode": True,
            "count_include_pad": False,
        },
    ),
    (1, (1, 2, 10, 10), {"kernel_size": 4, "stride": 3, "padding": 2, "ceil_mode": True}),
    (1, (1, 2, 8, 9), {"kernel_size": (2, 3), "stride": (2, 1), "divisor_override": 5}),
    (2, (2, 3, 10, 7), {"output_size": (3, 4)}),
    (2, (1, 2, 5, 11), {"output_size": (7, 3)}),
    (3, (2, 3, 10, 7), {"output_size": (3, 4)}),
    (3, (1, 2, 5, 11), {"output_size": (7, 3)}),
    (4, (2, 3, 4, 5), {"scale_factor": (2, 3)}),
    (5, (2, 3, 8, 10), {"kernel_size": 2}),
]


@pytest.mark.parametrize("case", EMU_CASES, ids=lambda c: f"op{c[0]}-{c[1]}")
def test_cuda_kernels_host_emulation(pool_emu, tmp_path, case):
    """cuda/pool.cu's per-element kernel bodies, run on the host, vs the float64 reference."""
    import subprocess

    op, shape, kw = case
    rng = np.random.default_rng(op)
    x = distinct()(rng, shape)
    refs = {
        0: (R.max_pool2d, R.max_pool2d_vjp), 1: (R.avg_pool2d, R.avg_pool2d_vjp),
        2: (R.adaptive_avg_pool2d, R.adaptive_avg_pool2d_vjp),
        3: (R.adaptive_max_pool2d, R.adaptive_max_pool2d_vjp),
        4: (R.interpolate, R.interpolate_vjp),
    }  # fmt: skip
    k = R._pair(kw.get("kernel_size", 1))
    head = dict(
        op=op, N=shape[0], C=shape[1], H=shape[2], W=shape[3], kH=k[0], kW=k[1],
        sH=R._pair(kw.get("stride"), k)[0], sW=R._pair(kw.get("stride"), k)[1],
        pH=R._pair(kw.get("padding", 0))[0], pW=R._pair(kw.get("padding", 0))[1],
        dH=R._pair(kw.get("dilation", 1))[0], dW=R._pair(kw.get("dilation", 1))[1],
        ceil=int(kw.get("ceil_mode", False)), cip=int(kw.get("count_include_pad", True)),
        div=kw.get("divisor_override") or 0, OH=0, OW=0, fH=1, fW=1,
    )  # fmt: skip
    extra = b""
    if op in (2, 3):
        head["OH"], head["OW"] = kw["output_size"]
    if op == 4:
        head["fH"], head["fW"] = kw["scale_factor"]
    if op == 5:
        x = x + 100.0
        y0, idx = R.max_pool2d(x, 2, return_indices=True)
        head["OH"], head["OW"] = shape[2:]
        x, extra = y0, idx.astype(np.int64).tobytes()
        head.update(N=y0.shape[0], C=y0.shape[1], H=y0.shape[2], W=y0.shape[3])
        want_y = R.max_unpool2d(x, idx, 2, output_size=shape[2:])
        want_i = None
    else:
        fwd, vjp = refs[op]
        out = fwd(x, **dict(kw, return_indices=True) if op in (0, 3) else kw)
        want_y, want_i = out if op in (0, 3) else (out, None)
    g = rng.standard_normal(want_y.shape)
    case_file, out_file = tmp_path / "case.bin", tmp_path / "out.bin"
    case_file.write_bytes(
        np.array(list(head.values()), np.int64).tobytes() + x.tobytes() + extra + g.tobytes()
    )
    res = subprocess.run([pool_emu, str(case_file), str(out_file)], capture_output=True, text=True)
    assert res.returncode == 0 and "ok" in res.stdout, res.stdout + res.stderr
    raw = out_file.read_bytes()
    ny = want_y.size
    y = np.frombuffer(raw[: 8 * ny], np.float64).reshape(want_y.shape)
    rest = raw[8 * ny :]
    assert_close(y, want_y, pe.float64)
    if want_i is not None:
        np.testing.assert_array_equal(
            np.frombuffer(rest[: 8 * ny], np.int64).reshape(want_y.shape), want_i
        )
        rest = rest[8 * ny :]
    gx = np.frombuffer(rest, np.float64).reshape(x.shape)
    if op == 5:
        want_g = R.max_unpool2d_vjp(g, x, idx, 2, output_size=shape[2:])[0]
    else:
        want_g = vjp(
            (g, None) if op in (0, 3) else g,
            x,
            **(dict(kw, return_indices=True) if op in (0, 3) else kw),
        )[0]
    assert_close(gx, want_g, pe.float64)
