"""Elementwise ops: forward, backward (vs reference VJP) and gradcheck, with broadcasting."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import avoiding, check_op, nonzero, positive, ties, uniform
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import mutually_broadcastable_shapes
from reference import elementwise as E

import pyengine as pe

DTYPES = [pe.float32, pe.float64]
DT_IDS = ["f32", "f64"]

UNARY_SHAPES = [(), (1,), (0,), (7,), (3, 5), (1, 13), (2, 3, 4), (5, 1, 3), (2, 0, 3)]


def _sid(s):
    return "x".join(map(str, s)) or "scalar"


# name: (our op, reference, reference VJP, input maker)
UNARY = {
    "neg": (lambda x: -x, E.neg, E.neg_vjp, None),
    "abs": (pe.abs, E.abs, E.abs_vjp, nonzero()),
    "exp": (pe.exp, E.exp, E.exp_vjp, uniform(-3, 3)),
    "log": (pe.log, E.log, E.log_vjp, positive(0.05, 5)),
    "sqrt": (pe.sqrt, E.sqrt, E.sqrt_vjp, positive(0.05, 5)),
    "sin": (pe.sin, E.sin, E.sin_vjp, uniform(-4, 4)),
    "cos": (pe.cos, E.cos, E.cos_vjp, uniform(-4, 4)),
    "tanh": (pe.tanh, E.tanh, E.tanh_vjp, uniform(-3, 3)),
    "sigmoid": (pe.sigmoid, E.sigmoid, E.sigmoid_vjp, uniform(-6, 6)),
    "relu": (pe.relu, E.relu, E.relu_vjp, nonzero()),
    "clamp": (
        lambda x: pe.clamp(x, min=-0.5, max=0.7),
        lambda x: E.clamp(x, -0.5, 0.7),
        lambda g, x: E.clamp_vjp(g, x, -0.5, 0.7),
        avoiding([-0.5, 0.7]),
    ),
    "clamp_min": (
        lambda x: pe.clamp(x, min=0.25),
        lambda x: E.clamp(x, min=0.25),
        lambda g, x: E.clamp_vjp(g, x, min=0.25),
        avoiding([0.25]),
    ),
    "clamp_max": (
        lambda x: pe.clamp(x, max=-0.25),
        lambda x: E.clamp(x, max=-0.25),
        lambda g, x: E.clamp_vjp(g, x, max=-0.25),
        avoiding([-0.25]),
    ),
}


@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
@pytest.mark.parametrize("shape", UNARY_SHAPES, ids=[_sid(s) for s in UNARY_SHAPES])
@pytest.mark.parametrize("name", list(UNARY))
def test_unary(name, shape, dtype):
    op, ref, vjp, gen = UNARY[name]
    check_op(op, ref, vjp, [shape], dtype=dtype, gen=gen)


METHODS = {
    "abs": (lambda x: x.abs(), "abs"),
    "exp": (lambda x: x.exp(), "exp"),
    "log": (lambda x: x.log(), "log"),
    "sqrt": (lambda x: x.sqrt(), "sqrt"),
    "sin": (lambda x: x.sin(), "sin"),
    "cos": (lambda x: x.cos(), "cos"),
    "tanh": (lambda x: x.tanh(), "tanh"),
    "sigmoid": (lambda x: x.sigmoid(), "sigmoid"),
    "relu": (lambda x: x.relu(), "relu"),
    "clamp": (lambda x: x.clamp(min=-0.5, max=0.7), "clamp"),
}


@pytest.mark.parametrize("name", list(METHODS))
def test_unary_method_form(name):
    """x.exp() is the same op as pe.exp(x)."""
    op, key = METHODS[name]
    _, ref, vjp, gen = UNARY[key]
    check_op(op, ref, vjp, [(4, 3)], dtype=pe.float64, gen=gen)


def test_sigmoid_saturates_without_nan():
    x = pe.tensor([-1000.0, -100.0, 0.0, 100.0, 1000.0], requires_grad=True)
    y = pe.sigmoid(x)
    np.testing.assert_allclose(y.detach().numpy(), [0.0, 0.0, 0.5, 1.0, 1.0], atol=1e-30)
    y.sum().backward()
    assert np.all(np.isfinite(x.grad.numpy()))
    np.testing.assert_allclose(x.grad.numpy(), [0.0, 0.0, 0.25, 0.0, 0.0], atol=1e-30)


def test_relu_abs_gradient_at_zero_is_zero():
    """torch convention at the kink: relu'(0) = 0, abs'(0) = sign(0) = 0."""
    for f in (pe.relu, pe.abs):
        x = pe.tensor([0.0, 0.0], dtype=pe.float64, requires_grad=True)
        f(x).sum().backward()
        np.testing.assert_array_equal(x.grad.numpy(), [0.0, 0.0])


def test_clamp_gradient_at_bounds_passes_through():
    """torch: clamp's gradient is 1 for min <= x <= max, bounds included."""
    x = pe.tensor([-0.5, 0.7, 0.0, -1.0, 1.0], dtype=pe.float64, requires_grad=True)
    x.clamp(min=-0.5, max=0.7).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [1.0, 1.0, 1.0, 0.0, 0.0])


# ------------------------------------------------------------------ binary

BINARY_SHAPES = [
    ((3, 4), (3, 4)),
    ((3, 4), (4,)),
    ((3, 1), (1, 5)),
    ((2, 1, 3), (7, 1)),
    ((), (3, 2)),
    ((3, 2), ()),
    ((1,), (0,)),
    ((5, 0, 3), (1, 3)),
    ((2, 3, 1, 5), (3, 4, 1)),
    ((1, 1), (1,)),
    ((13,), (1,)),
]

BINARY = {
    "add": (lambda x, y: x + y, E.add, E.add_vjp, None),
    "sub": (lambda x, y: x - y, E.sub, E.sub_vjp, None),
    "mul": (lambda x, y: x * y, E.mul, E.mul_vjp, None),
    "div": (lambda x, y: x / y, E.div, E.div_vjp, [None, nonzero(0.5, 2.0)]),
    "pow": (lambda x, y: x**y, E.pow, E.pow_vjp, [positive(0.3, 2.0), uniform(-2, 2)]),
    "maximum": (pe.maximum, E.maximum, E.maximum_vjp, None),
    "minimum": (pe.minimum, E.minimum, E.minimum_vjp, None),
}


@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
@pytest.mark.parametrize(
    "shapes", BINARY_SHAPES, ids=["-".join(_sid(s) for s in p) for p in BINARY_SHAPES]
)
@pytest.mark.parametrize("name", list(BINARY))
def test_binary_broadcast(name, shapes, dtype):
    op, ref, vjp, gen = BINARY[name]
    check_op(op, ref, vjp, list(shapes), dtype=dtype, gen=gen)


def test_binary_same_tensor_twice():
    """x * x and x - x: both operand slots send a gradient to the same leaf."""
    check_op(
        lambda x: x * x, lambda x: x * x, lambda g, x: (2 * g * x,), [(3, 4)], dtype=pe.float64
    )
    check_op(
        lambda x: x - x,
        lambda x: x * 0,
        lambda g, x: (np.zeros_like(x),),
        [(3, 4)],
        dtype=pe.float64,
    )


@pytest.mark.parametrize("name", ["maximum", "minimum"])
def test_maximum_minimum_ties_split_gradient(name):
    """torch.maximum/minimum: on a tie each input receives half of the gradient."""
    op, ref, vjp, _ = BINARY[name]
    x = np.array([1.0, 2.0, 3.0, -1.0])
    y = np.array([1.0, 0.0, 3.0, 5.0])
    check_op(op, ref, vjp, [x, y], dtype=pe.float64, gradcheck=False)


# (our op, reference, VJP w.r.t. the tensor, input maker): Python scalars on either side
SCALAR = {
    "x+2": (
        lambda x: x + 2.0,
        lambda x: E.add(x, 2.0),
        lambda g, x: E.add_vjp(g, x, 2.0)[:1],
        None,
    ),
    "2+x": (
        lambda x: 2.0 + x,
        lambda x: E.add(2.0, x),
        lambda g, x: E.add_vjp(g, 2.0, x)[1:],
        None,
    ),
    "x-1.5": (
        lambda x: x - 1.5,
        lambda x: E.sub(x, 1.5),
        lambda g, x: E.sub_vjp(g, x, 1.5)[:1],
        None,
    ),
    "1.5-x": (
        lambda x: 1.5 - x,
        lambda x: E.sub(1.5, x),
        lambda g, x: E.sub_vjp(g, 1.5, x)[1:],
        None,
    ),
    "x*3": (lambda x: x * 3, lambda x: E.mul(x, 3.0), lambda g, x: E.mul_vjp(g, x, 3.0)[:1], None),
    "3*x": (lambda x: 3 * x, lambda x: E.mul(3.0, x), lambda g, x: E.mul_vjp(g, 3.0, x)[1:], None),
    "x/4": (
        lambda x: x / 4.0,
        lambda x: E.div(x, 4.0),
        lambda g, x: E.div_vjp(g, x, 4.0)[:1],
        None,
    ),
    "4/x": (
        lambda x: 4.0 / x,
        lambda x: E.div(4.0, x),
        lambda g, x: E.div_vjp(g, 4.0, x)[1:],
        nonzero(0.5, 2),
    ),
    "x**2": (lambda x: x**2, lambda x: E.pow(x, 2.0), lambda g, x: E.pow_vjp(g, x, 2.0)[:1], None),
    "x**3": (lambda x: x**3, lambda x: E.pow(x, 3.0), lambda g, x: E.pow_vjp(g, x, 3.0)[:1], None),
    "x**0.5": (
        lambda x: x**0.5,
        lambda x: E.pow(x, 0.5),
        lambda g, x: E.pow_vjp(g, x, 0.5)[:1],
        positive(),
    ),
    "x**-1": (
        lambda x: x**-1,
        lambda x: E.pow(x, -1.0),
        lambda g, x: E.pow_vjp(g, x, -1.0)[:1],
        nonzero(0.5, 2),
    ),
    "2**x": (
        lambda x: 2.0**x,
        lambda x: E.pow(2.0, x),
        lambda g, x: (g * 2.0**x * np.log(2.0),),
        None,
    ),
}


@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
@pytest.mark.parametrize("shape", [(), (7,), (2, 3)], ids=["scalar", "7", "2x3"])
@pytest.mark.parametrize("name", list(SCALAR))
def test_python_scalar_operand_keeps_dtype(name, shape, dtype):
    """A Python scalar does not promote: float32 op 2.0 stays float32 (check_op checks it)."""
    op, ref, vjp, gen = SCALAR[name]
    check_op(op, ref, vjp, [shape], dtype=dtype, gen=gen)


@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
@pytest.mark.parametrize(
    "shapes",
    [
        ((3, 4), (3, 4), (3, 4)),
        ((3, 1), (1, 4), (3, 4)),
        ((4,), (3, 1), ()),
        ((2, 1, 5), (3, 1), (1, 5)),
        ((0, 2), (2,), (1, 2)),
    ],
    ids=["same", "bcast", "scalar-y", "3d", "empty"],
)
def test_where(shapes, dtype):
    cshape, xshape, yshape = shapes
    cond = np.random.default_rng(1).random(cshape) < 0.5
    check_op(pe.where, E.where, E.where_vjp, [cond, xshape, yshape], dtype=dtype)


def test_where_with_comparison_condition():
    """Condition produced by a comparison on the tensor itself: where(x > 0, x, 0.1 x)."""
    check_op(
        lambda x: pe.where(x > 0, x, x * 0.1),
        lambda x: np.where(x > 0, x, 0.1 * x),
        lambda g, x: (np.where(x > 0, g, 0.1 * g),),
        [(5, 4)],
        dtype=pe.float64,
        gen=nonzero(),
    )


# -------------------------------------------------------------- comparisons

COMPARE = {
    "eq": (lambda x, y: x == y, E.eq),
    "ne": (lambda x, y: x != y, E.ne),
    "lt": (lambda x, y: x < y, E.lt),
    "le": (lambda x, y: x <= y, E.le),
    "gt": (lambda x, y: x > y, E.gt),
    "ge": (lambda x, y: x >= y, E.ge),
}


@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
@pytest.mark.parametrize(
    "shapes",
    [((3, 4), (3, 4)), ((3, 1), (4,)), ((), (2, 2)), ((0,), (1,))],
    ids=["same", "bcast", "scalar", "empty"],
)
@pytest.mark.parametrize("name", list(COMPARE))
def test_comparison(name, shapes, dtype):
    """bool result, no gradient; inputs drawn from {0, 1, 2} so that ties occur."""
    op, ref = COMPARE[name]
    check_op(op, ref, None, list(shapes), dtype=dtype, gen=ties(3))


@pytest.mark.parametrize("name", list(COMPARE))
def test_comparison_with_python_scalar(name):
    op, ref = COMPARE[name]
    check_op(lambda x: op(x, 1.0), lambda x: ref(x, 1.0), None, [(4, 5)], gen=ties(3))


def test_comparison_of_int64_tensors():
    a = pe.tensor([1, 5, 3])
    b = pe.tensor([2, 5, 1])
    assert (a < b).dtype == pe.bool
    np.testing.assert_array_equal((a < b).numpy(), [True, False, False])
    np.testing.assert_array_equal((a == b).numpy(), [False, True, False])


# ------------------------------------------------------------------ int64


def test_int64_arithmetic_is_exact():
    a = np.array([2**40 + 1, -7, 0, 3], dtype=np.int64)
    b = np.array([3, 2, -5, 2**20], dtype=np.int64)
    ta, tb = pe.tensor(a), pe.tensor(b)
    for got, want in [
        (ta + tb, a + b),
        (ta - tb, a - b),
        (ta * tb, a * b),
        (-ta, -a),
        (pe.abs(ta), np.abs(a)),
        (pe.maximum(ta, tb), np.maximum(a, b)),
        (ta + 1, a + 1),
        (2 * ta, 2 * a),
    ]:
        assert got.dtype == pe.int64
        np.testing.assert_array_equal(got.numpy(), want)


# -------------------------------------------------------------- hypothesis


@given(
    shapes=mutually_broadcastable_shapes(
        num_shapes=2, min_dims=0, max_dims=4, min_side=0, max_side=5
    ),
    name=st.sampled_from(["add", "sub", "mul", "div", "maximum"]),
    dtype=st.sampled_from(DTYPES),
    seed=st.integers(0, 2**16),
)
def test_binary_random_broadcast(shapes, name, dtype, seed):
    op, ref, vjp, gen = BINARY[name]
    check_op(
        op,
        ref,
        vjp,
        list(shapes.input_shapes),
        dtype=dtype,
        gen=gen,
        seed=seed,
        gradcheck=dtype == pe.float64,
    )


def test_composite_expression():
    """A small graph of several ops against the composed references (the chain rule)."""

    def ours(x, y):
        return pe.tanh(x * y + pe.exp(-x)) / (1.0 + y**2)

    def ref(x, y):
        return np.tanh(x * y + np.exp(-x)) / (1.0 + y**2)

    def vjp(g, x, y):
        u = x * y + np.exp(-x)
        t = np.tanh(u)
        d = 1.0 + y**2
        gu = g / d * (1 - t**2)
        gx = gu * (y - np.exp(-x))
        gy = gu * x - g * t * 2 * y / d**2
        return E.add_vjp(gx, x, y)[0], E.add_vjp(gy, x, y)[1]

    check_op(ours, ref, vjp, [(3, 1), (1, 4)], dtype=pe.float64)
    check_op(ours, ref, vjp, [(3, 4), (4,)], dtype=pe.float32)
