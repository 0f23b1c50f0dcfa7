"""batch_norm / layer_norm (csrc/cpu/norm.h) vs reference/norm.py, nn.BatchNorm / nn.LayerNorm."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import assert_close, check_op, numeric_vjp, uniform
from reference import norm as R

import pyengine as pe
import pyengine.functional as F
from pyengine import nn

DTYPES = [pe.float32, pe.float64]
DT_IDS = ["f32", "f64"]

# (N, C, *): (N, C) uses the row path of the kernel, the others the per-channel path
BN_SHAPES = [
    (2, 3),
    (5, 4),
    (7, 1),
    (3, 2, 7),
    (1, 3, 5),
    (2, 3, 4, 5),
    (4, 1, 2, 3),
    (3, 2, 1, 1),
    (2, 2, 3, 1, 2),
]
LN_CASES = [
    ((3, 5), (5,)),
    ((2, 3, 4), (4,)),
    ((2, 3, 4), (3, 4)),
    ((7, 1), (1,)),
    ((11,), (11,)),
    ((1, 2, 3, 2), (2, 3, 2)),
    ((13, 17), (17,)),
]


def _ids(shapes):
    return ["x".join(map(str, s)) for s in shapes]


# ----------------------------------------------------------------- reference self-checks


@pytest.mark.parametrize("affine", [True, False])
def test_reference_vjps_match_finite_differences(affine):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 2, 4))
    w, b = (rng.standard_normal(2), rng.standard_normal(2)) if affine else (None, None)
    g = rng.standard_normal(x.shape)
    got = R.batch_norm_train_vjp(g, x, w, b)[0]
    np.testing.assert_allclose(
        got, numeric_vjp(lambda a: R.batch_norm_train(a, w, b), [x], 0, g), atol=1e-6
    )
    x2 = rng.standard_normal((3, 4, 5))
    w2 = rng.standard_normal((4, 5)) if affine else None
    g2 = rng.standard_normal(x2.shape)
    got = R.layer_norm_vjp(g2, x2, (4, 5), w2, None)[0]
    want = numeric_vjp(lambda a: R.layer_norm(a, (4, 5), w2, None), [x2], 0, g2)
    np.testing.assert_allclose(got, want, atol=1e-6)


# ----------------------------------------------------------------- batch_norm


def _bn_train(x, w, b, eps=1e-5):
    return F.batch_norm(x, None, None, w, b, training=True, eps=eps)


def _bn_train_noaffine(x, eps=1e-5):
    return F.batch_norm(x, None, None, training=True, eps=eps)


@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
@pytest.mark.parametrize("shape", BN_SHAPES, ids=_ids(BN_SHAPES))
def test_batch_norm_train(cpu_isa, shape, dtype):
    C = shape[1]
    check_op(
        _bn_train,
        R.batch_norm_train,
        R.batch_norm_train_vjp,
        [shape, (C,), (C,)],
        dtype=dtype,
        gen=[uniform(-2, 2), uniform(0.5, 2), uniform()],
        grad_atol=3e-5,
    )


@pytest.mark.parametrize("shape", [(4, 3), (2, 3, 5)], ids=["4x3", "2x3x5"])
def test_batch_norm_train_no_affine(cpu_isa, shape):
    check_op(
        _bn_train_noaffine,
        lambda x, eps: R.batch_norm_train(x, eps=eps),
        lambda g, x, eps: (R.batch_norm_train_vjp(g, x, eps=eps)[0],),
        [shape],
        dtype=pe.float64,
        kwargs={"eps": 1e-3},
    )


@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
@pytest.mark.parametrize("shape", [(3, 4), (2, 3, 5), (2, 3, 2, 3)], ids=["3x4", "2x3x5", "4d"])
def test_batch_norm_eval(cpu_isa, shape, dtype):
    C = shape[1]
    rng = np.random.default_rng(1)
    rm = rng.standard_normal(C).astype(dtype)
    rv = rng.uniform(0.5, 2.0, C).astype(dtype)
    rm_t, rv_t = pe.tensor(rm.copy()), pe.tensor(rv.copy())

    def op(x, w, b):
        if x.dtype != rm_t.dtype:  # gradcheck runs in float64
            return F.batch_norm(x, rm_t.double(), rv_t.double(), w, b, training=False)
        return F.batch_norm(x, rm_t, rv_t, w, b, training=False)

    def ref(x, w, b):
        return R.batch_norm_eval(x, rm, rv, w, b)

    def vjp(g, x, w, b):
        dx, _, _, dw, db = R.batch_norm_eval_vjp(g, x, rm, rv, w, b)
        return dx, dw, db

    check_op(op, ref, vjp, [shape, (C,), (C,)], dtype=dtype)
    np.testing.assert_array_equal(rm_t.numpy(), rm)  # eval leaves the running stats alone
    np.testing.assert_array_equal(rv_t.numpy(), rv)


def _stats_tensors(C, dtype):
    return pe.zeros(C, dtype=dtype), pe.ones(C, dtype=dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
@pytest.mark.parametrize("shape", [(6, 3), (4, 3, 5), (3, 2, 4, 4)], ids=["6x3", "4x3x5", "4d"])
def test_running_stats_after_steps(cpu_isa, shape, dtype):
    """Several training steps update the running stats with the unbiased variance; eval
    then normalizes with them."""
    rng = np.random.default_rng(2)
    C = shape[1]
    rm, rv = _stats_tensors(C, dtype)
    ref_m, ref_v = np.zeros(C), np.ones(C)
    for step in range(4):
        x = (rng.standard_normal(shape) * (step + 1) + step).astype(dtype)
        F.batch_norm(pe.tensor(x), rm, rv, training=True, momentum=0.3)
        ref_m, ref_v = R.running_update(ref_m, ref_v, x, 0.3)
        assert_close(rm, ref_m, dtype, what=f"running_mean after step {step}")
        assert_close(rv, ref_v, dtype, what=f"running_var after step {step}")
    x = rng.standard_normal(shape).astype(dtype)
    y = F.batch_norm(pe.tensor(x), rm, rv, training=False)
    assert_close(y, R.batch_norm_eval(x, ref_m, ref_v), dtype, what="eval output")


def test_batchnorm_module_momentum_and_cumulative():
    rng = np.random.default_rng(3)
    for momentum in (0.1, None):
        bn = nn.BatchNorm2d(3, momentum=momentum)
        ref_m, ref_v = np.zeros(3), np.ones(3)
        for step in range(5):
            x = rng.standard_normal((4, 3, 2, 3)).astype(np.float32) * 2 + step
            bn(pe.tensor(x))
            f = momentum if momentum is not None else 1.0 / (step + 1)
            ref_m, ref_v = R.running_update(ref_m, ref_v, x, f)
        assert bn.num_batches_tracked.item() == 5
        assert_close(bn.running_mean, ref_m, what=f"running_mean momentum={momentum}")
        assert_close(bn.running_var, ref_v, what=f"running_var momentum={momentum}")
        bn.eval()
        x = rng.standard_normal((2, 3, 2, 2)).astype(np.float32)
        assert_close(
            bn(pe.tensor(x)),
            R.batch_norm_eval(x, ref_m, ref_v, np.ones(3), np.zeros(3)),
            what="eval",
        )
        assert bn.num_batches_tracked.item() == 5


def test_batchnorm_module_no_running_stats_uses_batch_stats_in_eval():
    bn = nn.BatchNorm1d(4, track_running_stats=False, affine=False).eval()
    x = np.random.default_rng(4).standard_normal((5, 4)).astype(np.float32)
    assert bn.running_mean is None
    assert_close(bn(pe.tensor(x)), R.batch_norm_train(x), what="batch stats in eval")


def test_batchnorm_module_train_backward_and_state_dict():
    bn = nn.BatchNorm1d(3)
    x = pe.randn(6, 3, 4, requires_grad=True)
    bn(x).sum().backward()
    assert x.grad is not None and bn.weight.grad is not None and bn.bias.grad is not None
    keys = set(bn.state_dict())
    assert keys == {"weight", "bias", "running_mean", "running_var", "num_batches_tracked"}
    with pytest.raises(ValueError, match=r"^\[BatchNorm1d\] expected 2D or 3D input"):
        bn(pe.randn(2, 3, 4, 5))
    with pytest.raises(ValueError, match=r"^\[BatchNorm2d\] expected 4D input"):
        nn.BatchNorm2d(3)(pe.randn(2, 3, 4))


@pytest.mark.parametrize(
    "shape", [(1000, 40), (8, 16, 28, 28), (64, 5, 300)], ids=["rows", "nchw", "ncl"]
)
def test_batch_norm_large_threads(num_threads, shape):
    """Shapes big enough for the parallel paths (row partials and per-channel)."""
    rng = np.random.default_rng(5)
    C = shape[1]
    x = rng.standard_normal(shape).astype(np.float32) * 3 + 1
    w, b = rng.standard_normal(C).astype(np.float32), rng.standard_normal(C).astype(np.float32)
    g = rng.standard_normal(shape).astype(np.float32)
    xt = pe.tensor(x, requires_grad=True)
    wt, bt = pe.tensor(w, requires_grad=True), pe.tensor(b, requires_grad=True)
    rm, rv = _stats_tensors(C, pe.float32)
    y = F.batch_norm(xt, rm, rv, wt, bt, training=True)
    assert_close(y, R.batch_norm_train(x, w, b), what="forward")
    (y * pe.tensor(g)).sum().backward()
    dx, dw, db = R.batch_norm_train_vjp(g, x, w, b)
    assert_close(xt.grad, dx, atol=2e-5, what="dx")
    assert_close(wt.grad, dw, rtol=1e-4, what="dweight")
    assert_close(bt.grad, db, rtol=1e-4, what="dbias")
    m, v = R.running_update(np.zeros(C), np.ones(C), x, 0.1)
    assert_close(rm, m, what="running_mean")
    assert_close(rv, v, what="running_var")


# Outputs of 12 MiB or more are written a slab (n, c) at a time through a buffer with streaming
# stores (cpu/isa/rowwise_util.h, kStreamBytes); slabs of 91x91 values start at every alignment.
BN_STREAMED = {pe.float32: (16, 24, 91, 91), pe.float64: (8, 24, 91, 91)}


@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
def test_batch_norm_streamed_outputs(cpu_isa, training, dtype):
    rng = np.random.default_rng(11)
    shape = BN_STREAMED[dtype]
    assert np.prod(shape) * np.dtype(dtype).itemsize >= 12 << 20
    C = shape[1]
    x, g = rng.standard_normal(shape) * 2 + 1, rng.standard_normal(shape)
    w, b = rng.uniform(0.5, 2, C), rng.standard_normal(C)
    rm, rv = rng.standard_normal(C), rng.uniform(0.5, 2, C)
    xt = pe.tensor(x.astype(dtype), requires_grad=True)
    wt, bt = pe.tensor(w.astype(dtype), requires_grad=True), pe.tensor(b.astype(dtype))
    rmt, rvt = pe.tensor(rm.astype(dtype)), pe.tensor(rv.astype(dtype))
    y = F.batch_norm(xt, rmt, rvt, wt, bt, training=training)
    if training:
        want = R.batch_norm_train(x, w, b)
        dx, dw, _ = R.batch_norm_train_vjp(g, x, w, b)
    else:
        want = R.batch_norm_eval(x, rm, rv, w, b)
        dx, _, _, dw, _ = R.batch_norm_eval_vjp(g, x, rm, rv, w, b)
    assert_close(y, want, dtype, what="forward")
    y.backward(pe.tensor(g.astype(dtype)))
    f32 = dtype == pe.float32
    assert_close(xt.grad, dx, dtype, atol=2e-5 if f32 else None, what="dx")
    assert_close(wt.grad, dw, dtype, rtol=1e-4 if f32 else None, what="dweight")


@pytest.mark.parametrize("which", ["batch_norm", "layer_norm"])
def test_large_mean_is_stable(cpu_isa, which):
    """|mean| = 1e4 >> std = 1 in float32: two-pass statistics keep the output accurate."""
    rng = np.random.default_rng(6)
    x = (1e4 + rng.standard_normal((8, 4, 64))).astype(np.float32)
    if which == "batch_norm":
        y, ref = _bn_train_noaffine(pe.tensor(x)), R.batch_norm_train(x)
    else:
        y, ref = F.layer_norm(pe.tensor(x), 64), R.layer_norm(x, 64)
    assert_close(y, ref, rtol=1e-4, atol=1e-4, what=which)


def test_batch_norm_composed_double_backward():
    """create_graph=True uses the composed backward: values equal the fused kernel's, and
    grad-of-grad passes gradcheck."""
    rng = np.random.default_rng(7)
    x = pe.tensor(rng.standard_normal((3, 2, 4)), requires_grad=True)
    w = pe.tensor(rng.uniform(0.5, 2, 2), requires_grad=True)
    b = pe.tensor(rng.standard_normal(2), requires_grad=True)
    g = pe.tensor(rng.standard_normal((3, 2, 4)))
    fused = pe.autograd.grad(_bn_train(x, w, b), (x, w, b), g)
    composed = pe.autograd.grad(_bn_train(x, w, b), (x, w, b), g, create_graph=True)
    for a, c in zip(fused, composed):
        assert_close(a, c.detach().numpy(), pe.float64)

    def gx(x_, w_):
        with pe.enable_grad():  # gradcheck evaluates fn under no_grad for finite differences
            (d,) = pe.autograd.grad(_bn_train(x_, w_, None), (x_,), g, create_graph=True)
        return d

    assert pe.autograd.gradcheck(gx, (x, w))


# ----------------------------------------------------------------- layer_norm


def _ln(x, w, b, normalized_shape, eps=1e-5):
    return F.layer_norm(x, normalized_shape, w, b, eps)


def _ln_ref(x, w, b, normalized_shape, eps=1e-5):
    return R.layer_norm(x, normalized_shape, w, b, eps)


def _ln_vjp(g, x, w, b, normalized_shape, eps=1e-5):
    dx, _, dw, db = R.layer_norm_vjp(g, x, normalized_shape, w, b, eps)
    return dx, dw, db


@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
@pytest.mark.parametrize("case", LN_CASES, ids=[f"{_ids([s])[0]}-{len(n)}" for s, n in LN_CASES])
def test_layer_norm(cpu_isa, case, dtype):
    shape, ns = case
    check_op(
        _ln,
        _ln_ref,
        _ln_vjp,
        [shape, ns, ns],
        dtype=dtype,
        gen=[uniform(-2, 2), uniform(0.5, 2), uniform()],
        kwargs={"normalized_shape": ns},
        grad_atol=3e-5,
    )


@pytest.mark.parametrize("affine", ["none", "weight", "bias"])
def test_layer_norm_optional_affine(cpu_isa, affine):
    ns = (6,)

    def op(x, p=None):
        return F.layer_norm(
            x, ns, p if affine == "weight" else None, p if affine == "bias" else None
        )

    def ref(x, p=None):
        return R.layer_norm(
            x, ns, p if affine == "weight" else None, p if affine == "bias" else None
        )

    def vjp(g, x, p=None):
        dx, _, dw, db = R.layer_norm_vjp(
            g, x, ns, p if affine == "weight" else None, p if affine == "bias" else None
        )
        return (dx,) if p is None else (dx, dw if affine == "weight" else db)

    inputs = [(4, 6)] if affine == "none" else [(4, 6), (6,)]
    for dtype in DTYPES:
        check_op(op, ref, vjp, inputs, dtype=dtype)


@pytest.mark.parametrize("shape", [(8192, 96), (300, 768)], ids=["8192x96", "300x768"])
def test_layer_norm_large_threads(num_threads, shape):
    rng = np.random.default_rng(8)
    N = shape[1]
    x = rng.standard_normal(shape).astype(np.float32)
    w, b = rng.standard_normal(N).astype(np.float32), rng.standard_normal(N).astype(np.float32)
    g = rng.standard_normal(shape).astype(np.float32)
    xt = pe.tensor(x, requires_grad=True)
    wt, bt = pe.tensor(w, requires_grad=True), pe.tensor(b, requires_grad=True)
    y = F.layer_norm(xt, N, wt, bt)
    assert_close(y, R.layer_norm(x, N, w, b), what="forward")
    (y * pe.tensor(g)).sum().backward()
    dx, _, dw, db = R.layer_norm_vjp(g, x, N, w, b)
    assert_close(xt.grad, dx, atol=2e-5, what="dx")
    assert_close(wt.grad, dw, rtol=1e-4, what="dweight")
    assert_close(bt.grad, db, rtol=1e-4, what="dbias")


# Outputs of 12 MiB or more are built a row at a time in a buffer and written with streaming
# stores (cpu/isa/rowwise_util.h, kStreamBytes); rows of 1001 values start at every alignment,
# so the unaligned head and tail of each streamed row are exercised too.
STREAMED_ROWS = {pe.float32: 3200, pe.float64: 1600}


@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
def test_layer_norm_streamed_outputs(cpu_isa, dtype):
    rng = np.random.default_rng(10)
    shape = (STREAMED_ROWS[dtype], 1001)
    assert np.prod(shape) * np.dtype(dtype).itemsize >= 12 << 20
    x, g = rng.standard_normal(shape), rng.standard_normal(shape)
    w, b = rng.uniform(0.5, 2, shape[1]), rng.standard_normal(shape[1])
    xt = pe.tensor(x.astype(dtype), requires_grad=True)
    wt, bt = pe.tensor(w.astype(dtype), requires_grad=True), pe.tensor(b.astype(dtype))
    y = F.layer_norm(xt, shape[1:], wt, bt)
    assert_close(y, R.layer_norm(x, shape[1:], w, b), dtype, what="forward")
    y.backward(pe.tensor(g.astype(dtype)))
    dx, _, dw, _ = R.layer_norm_vjp(g, x, shape[1:], w, b)
    assert_close(xt.grad, dx, dtype, atol=3e-5 if dtype == pe.float32 else None, what="dx")
    assert_close(wt.grad, dw, dtype, rtol=1e-4 if dtype == pe.float32 else None, what="dweight")


def test_layer_norm_non_contiguous_input():
    x = np.random.default_rng(9).standard_normal((5, 4, 3))
    xt = pe.tensor(x).permute(2, 0, 1)
    assert_close(F.layer_norm(xt, (5, 4)), R.layer_norm(x.transpose(2, 0, 1), (5, 4)), pe.float64)


def test_layer_norm_composed_double_backward():
    rng = np.random.default_rng(10)
    x = pe.tensor(rng.standard_normal((3, 5)), requires_grad=True)
    w = pe.tensor(rng.uniform(0.5, 2, 5), requires_grad=True)
    b = pe.tensor(rng.standard_normal(5), requires_grad=True)
    g = pe.tensor(rng.standard_normal((3, 5)))
    fused = pe.autograd.grad(F.layer_norm(x, 5, w, b), (x, w, b), g)
    composed = pe.autograd.grad(F.layer_norm(x, 5, w, b), (x, w, b), g, create_graph=True)
    for a, c in zip(fused, composed):
        assert_close(a, c.detach().numpy(), pe.float64)

    def gx(x_, w_):
        with pe.enable_grad():  # gradcheck evaluates fn under no_grad for finite differences
            (d,) = pe.autograd.grad(F.layer_norm(x_, 5, w_, None), (x_,), g, create_graph=True)
        return d

    assert pe.autograd.gradcheck(gx, (x, w))


def test_layernorm_module():
    ln = nn.LayerNorm((3, 4))
    assert tuple(ln.weight.shape) == (3, 4) and tuple(ln.bias.shape) == (3, 4)
    x = np.random.default_rng(11).standard_normal((2, 3, 4)).astype(np.float32)
    assert_close(ln(pe.tensor(x)), R.layer_norm(x, (3, 4)), what="LayerNorm")
    assert nn.LayerNorm(4, bias=False).bias is None
    ln2 = nn.LayerNorm(4, elementwise_affine=False)
    assert ln2.weight is None and len(list(ln2.parameters())) == 0


def test_compare_with_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(12)
    x = rng.standard_normal((4, 3, 5, 5)).astype(np.float32)
    tb = torch.nn.BatchNorm2d(3)
    pb = nn.BatchNorm2d(3)
    for _ in range(3):
        yt = tb(torch.from_numpy(x)).detach().numpy()
        yp = pb(pe.tensor(x)).detach().numpy()
    np.testing.assert_allclose(yp, yt, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(pb.running_var.numpy(), tb.running_var.numpy(), rtol=1e-6)
    y = F.layer_norm(pe.tensor(x), (5, 5)).numpy()
    yt = torch.nn.functional.layer_norm(torch.from_numpy(x), (5, 5)).numpy()
    np.testing.assert_allclose(y, yt, rtol=1e-5, atol=1e-5)


# ----------------------------------------------------------------- group_norm / instance_norm

GN_CASES = [((2, 6, 5), 3), ((3, 4, 3, 2), 1), ((2, 4, 3, 3), 4), ((1, 6), 2), ((2, 8, 2, 2, 2), 2)]


def test_group_norm_reference_vjp_matches_finite_differences():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 4, 3))
    w, b = rng.standard_normal(4), rng.standard_normal(4)
    g = rng.standard_normal(x.shape)
    got = R.group_norm_vjp(g, x, 2, w, b)
    want = [
        numeric_vjp(lambda a, w_, b_: R.group_norm(a, 2, w_, b_), [x, w, b], i, g)
        for i in (0, 1, 2)
    ]
    np.testing.assert_allclose(got[0], want[0], atol=1e-6)
    np.testing.assert_allclose(got[2], want[1], atol=1e-6)
    np.testing.assert_allclose(got[3], want[2], atol=1e-6)


@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
@pytest.mark.parametrize("case", GN_CASES, ids=lambda c: f"{_ids([c[0]])[0]}-g{c[1]}")
def test_group_norm(cpu_isa, case, dtype):
    shape, groups = case
    C = shape[1]
    check_op(
        lambda x, w, b, groups: F.group_norm(x, groups, w, b),
        lambda x, w, b, groups: R.group_norm(x, groups, w, b),
        lambda g, x, w, b, groups: (lambda r: (r[0], r[2], r[3]))(
            R.group_norm_vjp(g, x, groups, w, b)
        ),
        [shape, (C,), (C,)],
        dtype=dtype,
        gen=[uniform(-2, 2), uniform(0.5, 2), uniform()],
        kwargs={"groups": groups},
        grad_atol=3e-5,
    )


def test_group_norm_without_affine_and_module():
    x = pe.randn(2, 6, 4, 3, dtype=pe.float64)
    np.testing.assert_allclose(F.group_norm(x, 3).numpy(), R.group_norm(x.numpy(), 3), atol=1e-12)
    m = nn.GroupNorm(3, 6, dtype=pe.float64)
    assert [n for n, _ in m.named_parameters()] == ["weight", "bias"]
    np.testing.assert_array_equal(m.weight.detach().numpy(), np.ones(6))
    np.testing.assert_allclose(m(x).detach().numpy(), R.group_norm(x.numpy(), 3), atol=1e-12)
    assert nn.GroupNorm(2, 4, affine=False).weight is None


@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
@pytest.mark.parametrize("shape", [(2, 3, 5), (3, 2, 4, 3)], ids=_ids([(2, 3, 5), (3, 2, 4, 3)]))
def test_instance_norm(cpu_isa, shape, dtype):
    C = shape[1]
    check_op(
        lambda x, w, b: F.instance_norm(x, weight=w, bias=b),
        R.instance_norm,
        R.instance_norm_vjp,
        [shape, (C,), (C,)],
        dtype=dtype,
        gen=[uniform(-2, 2), uniform(0.5, 2), uniform()],
        grad_atol=3e-5,
    )


def test_instance_norm_running_stats_and_eval():
    rng = np.random.default_rng(5)
    m = nn.InstanceNorm2d(3, affine=True, track_running_stats=True, dtype=pe.float64)
    rm, rv = np.zeros(3), np.ones(3)
    for _ in range(3):
        x = rng.standard_normal((4, 3, 5, 4)) * 2 + 1
        y = m(pe.tensor(x))
        np.testing.assert_allclose(y.detach().numpy(), R.instance_norm(x), atol=1e-12)
        rm, rv = R.instance_running_update(rm, rv, x, 0.1)
    np.testing.assert_allclose(m.running_mean.numpy(), rm, atol=1e-12)
    np.testing.assert_allclose(m.running_var.numpy(), rv, atol=1e-12)
    assert int(m.num_batches_tracked.item()) == 3
    m.eval()
    x = rng.standard_normal((2, 3, 5, 4))
    y = m(pe.tensor(x)).detach().numpy()
    np.testing.assert_allclose(y, R.batch_norm_eval(x, rm, rv), atol=1e-12)
    unbatched = nn.InstanceNorm1d(2)(pe.tensor(x[0, :2, :, 0]))  # (C, L)
    np.testing.assert_allclose(unbatched.numpy(), R.instance_norm(x[:1, :2, :, 0])[0], atol=1e-12)


def test_group_and_instance_norm_match_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(13)
    x = rng.standard_normal((3, 6, 5, 4)).astype(np.float32)
    w, b = rng.standard_normal(6).astype(np.float32), rng.standard_normal(6).astype(np.float32)
    t = torch.from_numpy
    got = F.group_norm(pe.tensor(x), 2, pe.tensor(w), pe.tensor(b)).numpy()
    want = torch.nn.functional.group_norm(t(x), 2, t(w), t(b)).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    rm_p, rv_p = pe.zeros(6), pe.ones(6)
    rm_t, rv_t = torch.zeros(6), torch.ones(6)
    got = F.instance_norm(pe.tensor(x), rm_p, rv_p, momentum=0.3).numpy()
    want = torch.nn.functional.instance_norm(t(x), rm_t, rv_t, momentum=0.3).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(rm_p.numpy(), rm_t.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(rv_p.numpy(), rv_t.numpy(), rtol=1e-5, atol=1e-6)


# ----------------------------------------------------------------- errors

_X = pe.ones(2, 3, 4)


@pytest.mark.parametrize(
    "call, exc, msg",
    [
        (lambda: F.batch_norm(_X, None, None, training=False), ValueError, "batch_norm"),
        (lambda: F.batch_norm(pe.ones(3), None, None, training=True), ValueError, "batch_norm"),
        (lambda: F.batch_norm(pe.ones(1, 3), None, None, training=True), ValueError, "batch_norm"),
        (lambda: F.batch_norm(_X, None, None, pe.ones(4), training=True), ValueError, "batch_norm"),
        (
            lambda: F.batch_norm(_X, None, None, pe.ones(3, dtype=pe.float64), training=True),
            TypeError,
            "batch_norm",
        ),
        (lambda: F.batch_norm(_X, pe.zeros(3), None, training=True), ValueError, "batch_norm"),
        (
            lambda: F.batch_norm(pe.ones(2, 3, dtype=pe.int64), None, None, training=True),
            TypeError,
            "batch_norm",
        ),
        (lambda: F.layer_norm(_X, (3,)), ValueError, "layer_norm"),
        (lambda: F.layer_norm(_X, ()), ValueError, "layer_norm"),
        (lambda: F.layer_norm(_X, 4, pe.ones(3)), ValueError, "layer_norm"),
        (lambda: F.layer_norm(_X, 4, pe.ones(4, dtype=pe.float64)), TypeError, "layer_norm"),
        (lambda: F.layer_norm(np.ones((2, 4)), 4), TypeError, "layer_norm"),
        (lambda: F.group_norm(_X, 2), ValueError, "group_norm"),
        (lambda: F.group_norm(_X, 3, pe.ones(4)), ValueError, "group_norm"),
        (lambda: F.group_norm(pe.ones(3), 1), ValueError, "group_norm"),
        (lambda: F.group_norm(_X, 1.5), TypeError, "group_norm"),
        (lambda: F.instance_norm(pe.ones(2, 3, 1)), ValueError, "instance_norm"),
        (lambda: F.instance_norm(pe.ones(2, 3)), ValueError, "instance_norm"),
        (lambda: F.instance_norm(_X, pe.zeros(3)), ValueError, "instance_norm"),
        (lambda: F.instance_norm(_X, use_input_stats=False), ValueError, "instance_norm"),
        (lambda: nn.GroupNorm(3, 4), ValueError, "GroupNorm"),
        (lambda: nn.InstanceNorm2d(3)(pe.ones(2, 3)), ValueError, "InstanceNorm2d"),
        (lambda: nn.InstanceNorm2d(4, affine=True)(_X), ValueError, "InstanceNorm2d"),
    ],
)
def test_errors(call, exc, msg):
    with pytest.raises(exc, match=rf"^\[{msg}\] "):
        call()


def test_binding_errors_before_writing():
    from pyengine import _C

    x = np.ones((2, 3), np.float32)
    rm = np.zeros(3, np.float32)
    with pytest.raises(ValueError, match=r"^\[batch_norm\] running_mean and running_var"):
        _C.batch_norm_forward(x, None, None, rm, None, True, 0.1, 1e-5)
    assert (rm == 0).all()
    with pytest.raises(ValueError, match=r"^\[layer_norm\] input must be a 2-D"):
        _C.layer_norm_forward(np.ones(3, np.float32), None, None, 1e-5)
    with pytest.raises(TypeError, match=r"^\[batch_norm\] "):
        _C.batch_norm_forward(x, np.ones(3), None, None, None, True, 0.1, 1e-5)


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
    "shape, scale, offset",
    [
        ((5, 4), 2, 1),
        ((3, 2, 7), 2, 1),
        ((2, 3, 4, 5), 2, 1),
        ((64, 5, 300), 2, 1),
        ((2, 3, 4100), 2, 1),  # three pieces per row, the last one short
        ((700, 1, 3), 2, 1),  # one channel: partial sums from many blocks
        ((40, 3, 50), 0.5, 1000),  # mean large against the spread
        ((40, 3, 50), 0.1, 5),  # ... and the kernel's shift (the first value, set to 0) far off
        ((4, 70000), 2, 1),  # more channels than a grid's y or z dimension holds
    ],
    ids=["5x4", "3x2x7", "4d", "ncl", "pieces", "slices", "offset", "shift", "wide"],
)
def test_cuda_batch_norm(gpu, shape, scale, offset, dtype):
    rng = np.random.default_rng(20)
    C = shape[1]
    x = (rng.standard_normal(shape) * scale + offset).astype(dtype)
    if scale == 0.1:
        x.reshape(shape[0], C, -1)[0, :, 0] = 0
    w, b = rng.standard_normal(C).astype(dtype), rng.standard_normal(C).astype(dtype)
    g = rng.standard_normal(shape).astype(dtype)
    xt, wt, bt = _to_gpu(x, True), _to_gpu(w, True), _to_gpu(b, True)
    rm, rv = _to_gpu(np.zeros(C, dtype)), _to_gpu(np.ones(C, dtype))
    y = F.batch_norm(xt, rm, rv, wt, bt, training=True, momentum=0.2)
    assert_close(_host(y), R.batch_norm_train(x, w, b), dtype, rtol=1e-4, atol=1e-4)
    (y * _to_gpu(g)).sum().backward()
    dx, dw, db = R.batch_norm_train_vjp(g, x, w, b)
    for got, want in ((xt.grad, dx), (wt.grad, dw), (bt.grad, db)):
        assert_close(_host(got), want, dtype, rtol=1e-4, atol=1e-4)
    m, v = R.running_update(np.zeros(C), np.ones(C), x, 0.2)
    assert_close(_host(rm), m, dtype, rtol=1e-4, atol=1e-5)
    assert_close(_host(rv), v, dtype, rtol=1e-4, atol=1e-5)
    ye = F.batch_norm(xt, rm, rv, wt, bt, training=False)
    assert_close(_host(ye), R.batch_norm_eval(x, m, v, w, b), dtype, rtol=1e-4, atol=1e-4)


@pytest.mark.cuda
@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
def test_cuda_batch_norm_eval_backward_without_affine(gpu, dtype):
    rng = np.random.default_rng(22)
    x = rng.standard_normal((6, 3, 40)).astype(dtype)
    g = rng.standard_normal(x.shape).astype(dtype)
    rm, rv = rng.standard_normal(3).astype(dtype), rng.uniform(0.5, 2, 3).astype(dtype)
    xt = _to_gpu(x, True)
    y = F.batch_norm(xt, _to_gpu(rm), _to_gpu(rv), None, None, training=False)
    ones, zeros = np.ones(3, dtype), np.zeros(3, dtype)
    assert_close(_host(y), R.batch_norm_eval(x, rm, rv, ones, zeros), dtype, rtol=1e-4, atol=1e-4)
    (y * _to_gpu(g)).sum().backward()
    dx = R.batch_norm_eval_vjp(g, x, rm, rv, ones, zeros)[0]
    assert_close(_host(xt.grad), dx, dtype, rtol=1e-4, atol=1e-4)
    # training without affine parameters or running statistics, through the same kernels
    xt = _to_gpu(x, True)
    y = F.batch_norm(xt, None, None, None, None, training=True)
    assert_close(_host(y), R.batch_norm_train(x, ones, zeros), dtype, rtol=1e-4, atol=1e-4)
    (y * _to_gpu(g)).sum().backward()
    dx = R.batch_norm_train_vjp(g, x, ones, zeros)[0]
    assert_close(_host(xt.grad), dx, dtype, rtol=1e-4, atol=1e-4)


@pytest.mark.cuda
@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
@pytest.mark.parametrize(
    "case",
    [
        ((3, 5), (5,)),
        ((2, 3, 4), (3, 4)),
        ((300, 768), (768,)),
        ((4, 257), (257,)),  # rows in registers, 2 per thread ...
        ((3, 1500), (1500,)),  # ... 8 per thread
        ((2, 4096), (4096,)),  # ... 16, full
        ((2, 5000), (5000,)),  # too long for registers: the streaming kernel
        ((3000, 70), (70,)),  # dweight / dbias: many row slices, a part-filled column block
        ((1, 33), (33,)),  # one row: one slice
    ],
    ids=["3x5", "2x3x4", "300x768", "257", "1500", "4096", "5000", "3000x70", "1x33"],
)
def test_cuda_layer_norm(gpu, case, dtype):
    shape, ns = case
    rng = np.random.default_rng(21)
    x = rng.standard_normal(shape).astype(dtype)
    w, b = rng.standard_normal(ns).astype(dtype), rng.standard_normal(ns).astype(dtype)
    g = rng.standard_normal(shape).astype(dtype)
    xt, wt, bt = _to_gpu(x, True), _to_gpu(w, True), _to_gpu(b, True)
    y = F.layer_norm(xt, ns, wt, bt)
    assert_close(_host(y), R.layer_norm(x, ns, w, b), dtype, rtol=1e-4, atol=1e-4)
    (y * _to_gpu(g)).sum().backward()
    dx, _, dw, db = R.layer_norm_vjp(g, x, ns, w, b)
    for got, want in ((xt.grad, dx), (wt.grad, dw), (bt.grad, db)):
        assert_close(_host(got), want, dtype, rtol=1e-4, atol=1e-4)


def test_instance_norm_momentum_none_is_a_cumulative_average():
    m = nn.InstanceNorm1d(2, momentum=None, track_running_stats=True, dtype=pe.float64)
    xs = [np.random.default_rng(i).standard_normal((3, 2, 5)) for i in range(3)]
    for x in xs:
        m(pe.tensor(x))
    want = np.mean([x.mean(axis=2).mean(axis=0) for x in xs], axis=0)
    np.testing.assert_allclose(m.running_mean.numpy(), want, atol=1e-12)
