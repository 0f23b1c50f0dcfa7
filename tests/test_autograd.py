"""Autograd engine semantics: accumulation, retain_graph, no_grad, leaves, custom Functions,
autograd.grad, double backward against analytic second derivatives, and gradcheck
catching a wrong backward."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import check_op

import pyengine as pe

F64 = pe.float64


def leaf(values, dtype=F64):
    return pe.tensor(np.asarray(values, dtype=np.float64), dtype=dtype, requires_grad=True)


def g_np(t):
    assert t.grad is not None, "no gradient"
    return t.grad.numpy()


# ------------------------------------------------------------------ basics


def test_leaf_flags():
    x = leaf([1.0, 2.0])
    y = x * 2.0
    c = pe.tensor([1.0, 2.0])
    assert x.is_leaf and x.grad_fn is None and x.requires_grad
    assert not y.is_leaf and y.grad_fn is not None and y.requires_grad
    assert c.is_leaf and not c.requires_grad
    d = c * 2.0  # no input requires grad: the result is a leaf without history, as torch
    assert d.is_leaf and d.grad_fn is None and not d.requires_grad


def test_backward_scalar_gradient_is_one():
    x = leaf([1.0, -2.0, 3.0])
    (x * x).sum().backward()
    np.testing.assert_array_equal(g_np(x), [2.0, -4.0, 6.0])


def test_backward_with_explicit_gradient():
    x = leaf([1.0, 2.0, 3.0])
    y = x * x
    y.backward(pe.tensor([1.0, 0.5, -1.0], dtype=F64))
    np.testing.assert_array_equal(g_np(x), [2.0, 2.0, -6.0])


def test_backward_non_scalar_without_gradient_raises():
    y = leaf([1.0, 2.0]) * 2.0
    with pytest.raises(RuntimeError, match=r"\[backward\]"):
        y.backward()


def test_backward_on_tensor_without_grad_raises():
    y = pe.tensor([1.0, 2.0]).sum()
    with pytest.raises(RuntimeError, match=r"^\[\w+\] "):
        y.backward()


def test_gradients_accumulate_across_backward_calls():
    x = leaf([1.0, 2.0])
    (x * 3.0).sum().backward()
    (x * x).sum().backward()
    np.testing.assert_array_equal(g_np(x), [3.0 + 2.0, 3.0 + 4.0])


def test_grad_can_be_reset_to_none():
    x = leaf([1.0, 2.0])
    (x * 3.0).sum().backward()
    x.grad = None
    (x * 5.0).sum().backward()
    np.testing.assert_array_equal(g_np(x), [5.0, 5.0])


def test_backward_twice_without_retain_graph_raises():
    x = leaf([1.0, 2.0])
    y = (x.exp() * x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match=r"^\[\w+\] "):
        y.backward()


def test_backward_twice_with_retain_graph_accumulates():
    x = leaf([0.5, -1.0])
    y = (x.exp() * x).sum()
    y.backward(retain_graph=True)
    first = g_np(x).copy()
    y.backward()
    xv = np.array([0.5, -1.0])
    np.testing.assert_allclose(first, np.exp(xv) * (1 + xv), rtol=1e-14)
    np.testing.assert_allclose(g_np(x), 2 * first, rtol=1e-14)


def test_shared_subgraph_backward_twice_through_different_heads():
    """Two losses sharing y = tanh(x): the second backward needs retain_graph on the first."""
    x = leaf([0.3, -0.7])
    y = x.tanh()
    (y * 2.0).sum().backward(retain_graph=True)
    (y * y).sum().backward()
    xv = np.array([0.3, -0.7])
    t = np.tanh(xv)
    np.testing.assert_allclose(g_np(x), 2 * (1 - t**2) + 2 * t * (1 - t**2), rtol=1e-13)


def test_diamond_graph():
    """x -> a, b -> c: both paths meet again; d/dx [sin(x) * exp(x)] = (cos + sin) exp."""
    x = leaf([0.1, 1.3, -2.0])
    a = x.sin()
    b = x.exp()
    (a * b).sum().backward()
    xv = np.array([0.1, 1.3, -2.0])
    np.testing.assert_allclose(g_np(x), (np.cos(xv) + np.sin(xv)) * np.exp(xv), rtol=1e-13)


def test_deep_chain_and_wide_fanout():
    """y = x; 200 times y = y * 1.01 + x: the gradient is a sum of powers of 1.01."""
    x = leaf([1.0, 2.0])
    y = x
    for _ in range(200):
        y = y * 1.01 + x
    y.sum().backward()
    want = sum(1.01**k for k in range(201))
    np.testing.assert_allclose(g_np(x), [want, want], rtol=1e-12)


def test_very_deep_graph_does_not_hit_recursion_limit():
    x = leaf([1.0])
    y = x
    for _ in range(5000):
        y = y + 1.0
    y.sum().backward()
    np.testing.assert_array_equal(g_np(x), [1.0])


def test_intermediate_grad_is_not_kept_unless_retain_grad():
    x = leaf([1.0, 2.0])
    y = x * 3.0
    z = y * y
    y.retain_grad()
    w = x * 2.0
    (z.sum() + w.sum()).backward()
    np.testing.assert_array_equal(y.grad.numpy(), 2 * np.array([3.0, 6.0]))
    assert w.grad is None


def test_grad_dtype_matches_leaf():
    for dt in (pe.float32, pe.float64):
        x = leaf([1.0, 2.0], dtype=dt)
        (x * x).sum().backward()
        assert x.grad.dtype == dt


def test_requires_grad_false_input_gets_no_grad():
    x = leaf([1.0, 2.0])
    c = pe.tensor([3.0, 4.0], dtype=F64)
    (x * c).sum().backward()
    assert c.grad is None
    np.testing.assert_array_equal(g_np(x), [3.0, 4.0])


def test_requires_grad_inplace_setter():
    x = pe.tensor([1.0, 2.0], dtype=F64)
    assert x.requires_grad_() is x
    assert x.requires_grad
    (x * 2.0).sum().backward()
    np.testing.assert_array_equal(g_np(x), [2.0, 2.0])


# ----------------------------------------------------------------- no_grad


def test_no_grad_context():
    x = leaf([1.0, 2.0])
    assert pe.is_grad_enabled()
    with pe.no_grad():
        assert not pe.is_grad_enabled()
        y = x * 2.0
    assert pe.is_grad_enabled()
    assert not y.requires_grad and y.grad_fn is None
    np.testing.assert_array_equal(y.numpy(), [2.0, 4.0])


def test_enable_grad_inside_no_grad():
    x = leaf([1.0, 2.0])
    with pe.no_grad():
        with pe.enable_grad():
            assert pe.is_grad_enabled()
            y = x * 2.0
        assert not pe.is_grad_enabled()
    assert y.requires_grad
    y.sum().backward()
    np.testing.assert_array_equal(g_np(x), [2.0, 2.0])


def test_no_grad_restores_state_after_exception():
    with pytest.raises(ZeroDivisionError):
        with pe.no_grad():
            1 / 0  # noqa: B018
    assert pe.is_grad_enabled()


def test_no_grad_as_decorator():
    @pe.no_grad()
    def f(t):
        return t * 2.0

    y = f(leaf([1.0]))
    assert not y.requires_grad
    assert pe.is_grad_enabled()


def test_detach_cuts_the_graph():
    x = leaf([1.0, 2.0])
    d = x.detach()
    assert not d.requires_grad and d.grad_fn is None
    np.testing.assert_array_equal(d.numpy(), [1.0, 2.0])
    (x * d).sum().backward()  # d is a constant: gradient x -> d only
    np.testing.assert_array_equal(g_np(x), [1.0, 2.0])


# ---------------------------------------------------------- autograd.grad


def test_autograd_grad_returns_and_does_not_accumulate():
    x = leaf([1.0, 2.0])
    y = leaf([3.0, 4.0])
    out = (x * y).sum()
    gx, gy = pe.autograd.grad(out, [x, y])
    np.testing.assert_array_equal(gx.numpy(), [3.0, 4.0])
    np.testing.assert_array_equal(gy.numpy(), [1.0, 2.0])
    assert x.grad is None and y.grad is None


def test_autograd_grad_with_grad_outputs():
    x = leaf([1.0, 2.0])
    (gx,) = pe.autograd.grad(x * x, [x], grad_outputs=[pe.tensor([1.0, -1.0], dtype=F64)])
    np.testing.assert_array_equal(gx.numpy(), [2.0, -4.0])


def test_autograd_grad_unused_input():
    x = leaf([1.0])
    u = leaf([2.0])
    with pytest.raises(RuntimeError, match=r"^\[\w+\] "):
        pe.autograd.grad((x * 2.0).sum(), [x, u])
    gx, gu = pe.autograd.grad((x * 2.0).sum(), [x, u], allow_unused=True)
    np.testing.assert_array_equal(gx.numpy(), [2.0])
    assert gu is None


def test_autograd_grad_of_intermediate():
    x = leaf([1.0, 2.0])
    y = x * 3.0
    (gy,) = pe.autograd.grad((y * y).sum(), [y])
    np.testing.assert_array_equal(gy.numpy(), [6.0, 12.0])


# ---------------------------------------------------------- double backward
# (f, f', f'') on a grid, analytic

SECOND = {
    "tanh": (
        pe.tanh,
        lambda x: 1 - np.tanh(x) ** 2,
        lambda x: -2 * np.tanh(x) * (1 - np.tanh(x) ** 2),
    ),
    "sin": (pe.sin, np.cos, lambda x: -np.sin(x)),
    "exp": (pe.exp, np.exp, np.exp),
    "log": (pe.log, lambda x: 1 / x, lambda x: -1 / x**2),
    "sigmoid": (
        pe.sigmoid,
        lambda x: _s(x) * (1 - _s(x)),
        lambda x: _s(x) * (1 - _s(x)) * (1 - 2 * _s(x)),
    ),
    "cube": (lambda t: t**3, lambda x: 3 * x**2, lambda x: 6 * x),
    "sqrt": (pe.sqrt, lambda x: 0.5 / np.sqrt(x), lambda x: -0.25 * x**-1.5),
    "recip": (lambda t: 1.0 / t, lambda x: -1 / x**2, lambda x: 2 / x**3),
    "x*exp(x)": (
        lambda t: t * t.exp(),
        lambda x: (1 + x) * np.exp(x),
        lambda x: (2 + x) * np.exp(x),
    ),
    "cos(x)^2": (
        lambda t: t.cos() * t.cos(),
        lambda x: -np.sin(2 * x),
        lambda x: -2 * np.cos(2 * x),
    ),
}


def _s(x):
    return 1 / (1 + np.exp(-x))


@pytest.mark.parametrize("name", list(SECOND))
def test_second_derivative(name):
    f, d1, d2 = SECOND[name]
    xv = np.array([0.3, 0.9, 1.7, 2.5])
    x = leaf(xv)
    (g,) = pe.autograd.grad(f(x).sum(), [x], create_graph=True)
    np.testing.assert_allclose(g.detach().numpy(), d1(xv), rtol=1e-12)
    assert g.requires_grad, "create_graph=True must give a differentiable gradient"
    (h,) = pe.autograd.grad(g.sum(), [x])
    np.testing.assert_allclose(h.numpy(), d2(xv), rtol=1e-10, atol=1e-12)


def test_second_derivative_via_backward_create_graph():
    xv = np.array([0.5, -1.2])
    x = leaf(xv)
    (x**3).sum().backward(create_graph=True)
    gx = x.grad
    np.testing.assert_allclose(gx.detach().numpy(), 3 * xv**2, rtol=1e-14)
    x.grad = None
    gx.sum().backward()
    np.testing.assert_allclose(g_np(x), 6 * xv, rtol=1e-14)


def test_hessian_vector_product_through_matmul():
    """f(x) = sum(tanh(W x)); H v = W^T diag(-2 t (1 - t^2)) W v with t = tanh(W x)."""
    rng = np.random.default_rng(0)
    W = rng.standard_normal((5, 3))
    xv = rng.standard_normal(3)
    v = rng.standard_normal(3)
    x = leaf(xv)
    f = (pe.tensor(W) @ x).tanh().sum()
    (g,) = pe.autograd.grad(f, [x], create_graph=True)
    (hv,) = pe.autograd.grad((g * pe.tensor(v)).sum(), [x])
    t = np.tanh(W @ xv)
    want = W.T @ (-2 * t * (1 - t**2) * (W @ v))
    np.testing.assert_allclose(hv.numpy(), want, rtol=1e-10)


def test_mixed_second_derivative_two_inputs():
    """f = sum(x^2 y^3): d2f/dxdy = 6 x y^2."""
    xv, yv = np.array([1.5, -0.5]), np.array([0.7, 2.0])
    x, y = leaf(xv), leaf(yv)
    (gx,) = pe.autograd.grad((x * x * y * y * y).sum(), [x], create_graph=True)
    (gxy,) = pe.autograd.grad(gx.sum(), [y])
    np.testing.assert_allclose(gxy.numpy(), 6 * xv * yv**2, rtol=1e-13)


def test_second_order_through_reduction_and_broadcast():
    """f = sum((x - mean(x))^2): Hessian = 2 (I - 1/n), so row 0 of it is 2 (e0 - 1/n)."""
    xv = np.array([1.0, 4.0, -2.0, 0.5])
    x = leaf(xv)
    f = ((x - x.mean()) ** 2).sum()
    (g,) = pe.autograd.grad(f, [x], create_graph=True)
    np.testing.assert_allclose(g.detach().numpy(), 2 * (xv - xv.mean()), rtol=1e-13)
    (h0,) = pe.autograd.grad(g[0], [x])
    e0 = np.eye(4)[0]
    np.testing.assert_allclose(h0.numpy(), 2 * (e0 - 0.25), atol=1e-14)


# ---------------------------------------------------------- custom Function


class Cube(pe.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x * x

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * 3.0 * x * x


class WrongCube(pe.autograd.Function):
    """Deliberately wrong derivative (2x^2 instead of 3x^2)."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x * x

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * 2.0 * x * x


class ScaleBy(pe.autograd.Function):
    """Two inputs, one of them maybe not requiring grad; records needs_input_grad."""

    seen = None

    @staticmethod
    def forward(ctx, x, s):
        ctx.save_for_backward(x, s)
        ScaleBy.seen = tuple(ctx.needs_input_grad)
        return x * s

    @staticmethod
    def backward(ctx, g):
        x, s = ctx.saved_tensors
        gx = g * s if ctx.needs_input_grad[0] else None
        gs = (g * x).sum() if ctx.needs_input_grad[1] else None
        return gx, gs


def test_custom_function_forward_backward():
    check_op(
        lambda x: Cube.apply(x), lambda x: x**3, lambda g, x: (3 * g * x**2,), [(3, 4)], dtype=F64
    )


def test_custom_function_output_has_grad_fn():
    x = leaf([1.0, 2.0])
    y = Cube.apply(x)
    assert y.requires_grad and y.grad_fn is not None
    with pe.no_grad():
        z = Cube.apply(x)
    assert not z.requires_grad


def test_custom_function_needs_input_grad_and_none_gradient():
    x = leaf([1.0, 2.0])
    s = pe.tensor(3.0, dtype=F64)
    ScaleBy.apply(x, s).sum().backward()
    assert ScaleBy.seen == (True, False)
    np.testing.assert_array_equal(g_np(x), [3.0, 3.0])
    s2 = pe.tensor(3.0, dtype=F64, requires_grad=True)
    ScaleBy.apply(x.detach(), s2).sum().backward()
    assert ScaleBy.seen == (False, True)
    np.testing.assert_array_equal(g_np(s2), 3.0)


def test_custom_function_in_larger_graph():
    """Cube inside a chain: d/dx sin(cube(x) * 2) = cos(2x^3) * 6x^2."""
    xv = np.array([0.2, -0.6, 1.1])
    x = leaf(xv)
    (Cube.apply(x) * 2.0).sin().sum().backward()
    np.testing.assert_allclose(g_np(x), np.cos(2 * xv**3) * 6 * xv**2, rtol=1e-13)


# ---------------------------------------------------------------- gradcheck


def test_gradcheck_passes_correct_backward():
    x = leaf(np.random.default_rng(0).standard_normal((3, 2)))
    assert pe.autograd.gradcheck(lambda t: Cube.apply(t), (x,)) is True


def test_gradcheck_catches_wrong_backward():
    x = leaf(np.random.default_rng(0).standard_normal((3, 2)))
    with pytest.raises(pe.autograd.GradcheckError):
        pe.autograd.gradcheck(lambda t: WrongCube.apply(t), (x,))
    assert issubclass(pe.autograd.GradcheckError, RuntimeError)
    assert pe.autograd.gradcheck(lambda t: WrongCube.apply(t), (x,), raise_exception=False) is False


def test_gradcheck_catches_wrong_backward_of_one_input_among_several():
    class WrongSecond(pe.autograd.Function):
        @staticmethod
        def forward(ctx, a, b):
            ctx.save_for_backward(a, b)
            return a * b

        @staticmethod
        def backward(ctx, g):
            a, b = ctx.saved_tensors
            return g * b, g * a * 1.01  # 1% off for b only

    a = leaf([1.0, 2.0])
    b = leaf([3.0, -1.0])
    assert (
        pe.autograd.gradcheck(lambda x, y: WrongSecond.apply(x, y), (a, b), raise_exception=False)
        is False
    )


def test_gradcheck_multiple_inputs_and_non_scalar_output():
    rng = np.random.default_rng(1)
    a = leaf(rng.standard_normal((2, 3)))
    b = leaf(rng.standard_normal((3, 4)))
    assert pe.autograd.gradcheck(lambda x, y: (x @ y).tanh(), (a, b)) is True
