"""Activations (pyengine/ops/activation.py) and their nn layers vs reference/activation.py."""

from __future__ import annotations

import math

import numpy as np
import pytest
from helpers import assert_close, avoiding, check_op, uniform
from reference import activation as R

import pyengine as pe
import pyengine.functional as F
from pyengine import nn

DTYPES = [pe.float32, pe.float64]
DT_IDS = ["f32", "f64"]
SHAPES = [(7,), (3, 5), (2, 1, 3), ()]

# name -> (op, ref, vjp, kwargs, gen)
CASES = {
    "gelu": (F.gelu, R.gelu, R.gelu_vjp, {}, uniform(-4, 4)),
    "gelu_tanh": (F.gelu, R.gelu, R.gelu_vjp, {"approximate": "tanh"}, uniform(-4, 4)),
    "silu": (F.silu, R.silu, R.silu_vjp, {}, uniform(-6, 6)),
    "leaky_relu": (F.leaky_relu, R.leaky_relu, R.leaky_relu_vjp, {}, avoiding([0.0])),
    "leaky_relu_0.2": (
        F.leaky_relu,
        R.leaky_relu,
        R.leaky_relu_vjp,
        {"negative_slope": 0.2},
        avoiding([0.0]),
    ),
    "elu": (F.elu, R.elu, R.elu_vjp, {}, avoiding([0.0], low=-4, high=3)),
    "elu_0.5": (F.elu, R.elu, R.elu_vjp, {"alpha": 0.5}, avoiding([0.0], low=-4, high=3)),
    "selu": (F.selu, R.selu, R.selu_vjp, {}, avoiding([0.0], low=-4, high=3)),
    "softplus": (F.softplus, R.softplus, R.softplus_vjp, {}, uniform(-8, 8)),
    # beta x > threshold switches to x: both branches, away from the switch at x = 0.5
    "softplus_b2_t1": (
        F.softplus,
        R.softplus,
        R.softplus_vjp,
        {"beta": 2.0, "threshold": 1.0},
        avoiding([0.5], low=-3, high=3),
    ),
    "erf": (
        F.erf if hasattr(F, "erf") else pe.ops.activation.erf,
        R.erf,
        R.erf_vjp,
        {},
        uniform(-3, 3),
    ),
}


@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
@pytest.mark.parametrize("shape", SHAPES, ids=["7", "3x5", "2x1x3", "scalar"])
@pytest.mark.parametrize("name", list(CASES))
def test_activation(name, shape, dtype):
    op, ref, vjp, kw, gen = CASES[name]
    check_op(op, ref, vjp, [shape], dtype=dtype, kwargs=kw, gen=gen)


def test_kinks_follow_torch():
    x = pe.tensor(np.array([0.0, 1.0, -1.0]), requires_grad=True)
    F.leaky_relu(x, 0.1).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [0.1, 1.0, 0.1])
    x.grad = None
    F.elu(x, 2.0).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [2.0, 1.0, 2.0 * np.exp(-1.0)])


def test_extreme_values_are_finite():
    x = np.array([-1e4, -100.0, -30.0, 0.0, 30.0, 100.0, 1e4], dtype=np.float32)
    for fn in (F.gelu, F.silu, F.elu, F.selu, F.softplus, lambda t: F.gelu(t, "tanh")):
        xt = pe.tensor(x, requires_grad=True)
        y = fn(xt)
        assert np.isfinite(y.detach().numpy()).all()
        y.sum().backward()
        assert np.isfinite(xt.grad.numpy()).all()
    assert_close(F.softplus(pe.tensor(x)), R.softplus(x))
    assert_close(F.silu(pe.tensor(x)), R.silu(x))


@pytest.mark.parametrize("name", ["gelu", "gelu_tanh", "silu", "elu", "softplus"])
def test_second_order(name):
    op, _, _, kw, gen = CASES[name]
    x = pe.tensor(gen(np.random.default_rng(0), (5,)), requires_grad=True)

    def grad_fn(x_):
        with pe.enable_grad():
            return pe.autograd.grad(op(x_, **kw).sum(), (x_,), create_graph=True)[0]

    assert pe.autograd.gradcheck(grad_fn, (x,))


def test_match_torch():
    torch = pytest.importorskip("torch")
    x = np.linspace(-6, 6, 101)
    tf = torch.nn.functional
    pairs = [
        (F.gelu, tf.gelu, {}),
        (F.gelu, tf.gelu, {"approximate": "tanh"}),
        (F.silu, tf.silu, {}),
        (F.leaky_relu, tf.leaky_relu, {"negative_slope": 0.3}),
        (F.elu, tf.elu, {"alpha": 0.7}),
        (F.selu, tf.selu, {}),
        (F.softplus, tf.softplus, {"beta": 1.5, "threshold": 4.0}),
    ]
    for ours, theirs, kw in pairs:
        xt = torch.tensor(x, requires_grad=True)
        yt = theirs(xt, **kw)
        yt.sum().backward()
        xp = pe.tensor(x, requires_grad=True)
        yp = ours(xp, **kw)
        yp.sum().backward()
        np.testing.assert_allclose(
            yp.detach().numpy(), yt.detach().numpy(), rtol=1e-12, atol=1e-14, err_msg=str(ours)
        )
        np.testing.assert_allclose(
            xp.grad.numpy(), xt.grad.numpy(), rtol=1e-10, atol=1e-12, err_msg=str(ours)
        )


@pytest.mark.parametrize(
    "layer, ref",
    [
        (nn.ReLU(), lambda x: np.maximum(x, 0)),
        (nn.GELU(), R.gelu),
        (nn.GELU("tanh"), lambda x: R.gelu(x, "tanh")),
        (nn.SiLU(), R.silu),
        (nn.LeakyReLU(0.2), lambda x: R.leaky_relu(x, 0.2)),
        (nn.ELU(0.5), lambda x: R.elu(x, 0.5)),
        (nn.SELU(), R.selu),
        (nn.Softplus(2.0, 5.0), lambda x: R.softplus(x, 2.0, 5.0)),
        (nn.Sigmoid(), lambda x: 1 / (1 + np.exp(-x))),
        (nn.Tanh(), np.tanh),
    ],
)
def test_layers(layer, ref):
    x = np.random.default_rng(1).standard_normal((3, 4)).astype(np.float32) * 3
    assert_close(layer(pe.tensor(x)), ref(x.astype(np.float64)), what=repr(layer))


def test_inplace():
    x = pe.tensor(np.array([-1.0, 2.0], np.float32))
    y = nn.ReLU(inplace=True)(x)
    assert y is x and x.numpy().tolist() == [0.0, 2.0]
    with pytest.raises(RuntimeError, match=r"^\[silu\] "):
        F.silu(pe.ones(2, requires_grad=True), inplace=True)


@pytest.mark.parametrize(
    "call, exc, op",
    [
        (lambda: F.gelu(pe.ones(2), approximate="fast"), ValueError, "gelu"),
        (lambda: F.gelu(pe.ones(2, dtype=pe.int64)), TypeError, "gelu"),
        (lambda: F.silu(np.ones(2)), TypeError, "silu"),
        (lambda: F.leaky_relu(pe.ones(2), "a"), TypeError, "leaky_relu"),
        (lambda: F.softplus(pe.ones(2), beta=0), ValueError, "softplus"),
        (lambda: F.elu(pe.ones(2), alpha=None), TypeError, "elu"),
    ],
)
def test_errors(call, exc, op):
    with pytest.raises(exc, match=rf"^\[{op}\] "):
        call()


def test_erf_kernel_float32_within_3_ulp_on_every_isa(cpu_isa):
    """The vectorized float32 erf (portable: polynomial for |x| < 1, exp form up to 4; AVX-512:
    a 16-interval table; +-1 beyond 4) against math.erf on a dense grid, in units of float32
    spacing; special values as IEEE / libm say."""
    import math

    from pyengine import _C

    x = np.concatenate([np.linspace(-5, 5, 200_001), [1.0, -1.0, 4.0, 3.9999, 1e-30, -1e-38]])
    x = x.astype(np.float32)
    want = np.array([math.erf(float(v)) for v in x])
    got = _C.erf(x).astype(np.float64)
    ulp = np.abs(got - want) / np.spacing(np.abs(want).astype(np.float32)).astype(np.float64)
    assert ulp.max() <= 3.0, f"{ulp.max():.2f} ulp at x = {x[ulp.argmax()]!r}"
    special = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 7.0, -30.0], np.float32)
    y = _C.erf(special)
    assert np.isnan(y[0])
    np.testing.assert_array_equal(y[1:], [1.0, -1.0, 0.0, -0.0, 1.0, -1.0])
    assert np.signbit(y[4]) and not np.signbit(y[3])


def _sigmoid64(z):
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1 / (1 + e), e / (1 + e))


@pytest.mark.parametrize("lim", [10.0, 120.0], ids=["near0", "far"])
def test_gelu_tanh_and_silu_kernels_float32_on_every_isa(cpu_isa, lim):
    """The fused tanh GELU and SiLU and their backwards against float64 NumPy formulas written
    from the definitions (tanh form; x / (1 + exp(-x))), over [-lim, lim] (far: exp down to the
    subnormal range) and special values."""
    from pyengine import _C

    x = np.linspace(-lim, lim, 100_001).astype(np.float32)
    g = np.random.default_rng(0).standard_normal(x.shape).astype(np.float32)
    xd = x.astype(np.float64)
    # 0.5 (1 + tanh(u)) = sigmoid(2u) and 1 - tanh(u)^2 = 4 sigmoid(2u) sigmoid(-2u): the same
    # functions without the cancellation 1 + tanh(u) has in float64 for u below -19.
    k, a = math.sqrt(2 / math.pi), 0.044715
    u = k * (xd + a * xd**3)
    gelu = xd * _sigmoid64(2 * u)
    du = k * (1 + 3 * a * xd * xd)
    dgelu = _sigmoid64(2 * u) + 2 * xd * _sigmoid64(2 * u) * _sigmoid64(-2 * u) * du
    s = _sigmoid64(xd)
    # exp(z) has condition number |z|: the float32 argument's rounding (z up to ~100 here)
    # alone costs 100 * 2^-24 = 6e-6 relative, in any float32 implementation.
    tol = dict(rtol=2e-5, atol=1e-30)
    np.testing.assert_allclose(_C.gelu_tanh(x), gelu, **tol)
    np.testing.assert_allclose(_C.gelu_tanh_backward(x, g), g * dgelu, rtol=2e-5, atol=1e-7)
    np.testing.assert_allclose(_C.silu(x), xd * s, **tol)
    dsilu = s + xd * s * _sigmoid64(-xd)  # crosses 0 near x = -1.28: absolute error there
    np.testing.assert_allclose(_C.silu_backward(x, g), g * dsilu, rtol=2e-5, atol=1e-7)
    special = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0], np.float32)
    ones = np.ones(5, np.float32)
    for fwd, bwd in ((_C.gelu_tanh, _C.gelu_tanh_backward), (_C.silu, _C.silu_backward)):
        y, d = fwd(special), bwd(special, ones)
        # forward at -inf: -inf * sigmoid(-inf) = -inf * 0 is NaN in IEEE arithmetic, as in
        # torch's formulas; the backwards give the derivative's limits 1 and 0 at +-inf
        assert np.isnan(y[0]) and y[1] == np.inf and np.isnan(y[2]) and (y[3:] == 0).all()
        np.testing.assert_array_equal(d, [np.nan, 1.0, 0.0, 0.5, 0.5])
        huge = np.array([3e19, -3e19], np.float32)  # u' overflows: still the limits
        np.testing.assert_array_equal(bwd(huge, np.ones(2, np.float32)), [1.0, 0.0])


def test_gelu_kernels_float32_on_every_isa(cpu_isa):
    """The fused exact GELU and its backward against the float64 formulas
    x Phi(x) and g (Phi(x) + x phi(x)), over [-10, 10] and special values."""
    import math

    from pyengine import _C

    x = np.linspace(-10, 10, 100_001).astype(np.float32)
    g = np.random.default_rng(0).standard_normal(x.shape).astype(np.float32)
    xd = x.astype(np.float64)
    cdf = 0.5 * (1 + np.array([math.erf(v / math.sqrt(2)) for v in xd]))
    pdf = np.exp(-0.5 * xd * xd) / math.sqrt(2 * math.pi)
    np.testing.assert_allclose(_C.gelu(x), xd * cdf, rtol=2e-6, atol=1e-7)
    np.testing.assert_allclose(_C.gelu_backward(x, g), g * (cdf + xd * pdf), rtol=2e-6, atol=1e-7)
    special = np.array([np.nan, np.inf, -np.inf, 0.0], np.float32)
    y = _C.gelu(special)
    assert np.isnan(y[0]) and y[1] == np.inf and np.isnan(y[2]) and y[3] == 0.0
    # the formula in IEEE arithmetic (as torch): inf * phi(inf) = inf * 0 is NaN
    d = _C.gelu_backward(special, np.ones(4, np.float32))
    assert np.isnan(d[:3]).all() and d[3] == 0.5
