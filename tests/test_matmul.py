"""Tensor matmul (`@`, pe.matmul): NumPy semantics; forward, backward vs reference, gradcheck.

Runs under every CPU ISA path (matmul runs in our GEMM).
"""

from __future__ import annotations

import numpy as np
import pytest
from helpers import check_op
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import mutually_broadcastable_shapes
from reference import gemm as R
from reference import shape as S

import pyengine as pe

DTYPES = [pe.float32, pe.float64]
DT_IDS = ["f32", "f64"]

SHAPE_PAIRS = [
    ((3,), (3,)),  # vector . vector -> 0-d
    ((1,), (1,)),
    ((4,), (4, 5)),  # 1-D promoted to a row, then removed
    ((4, 5), (5,)),  # 1-D promoted to a column, then removed
    ((2, 3, 4), (4,)),
    ((4,), (2, 4, 3)),
    ((1, 1), (1, 1)),
    ((7, 13), (13, 5)),
    ((1, 13), (13, 1)),
    ((17, 2), (2, 3)),
    ((0, 3), (3, 4)),  # empty rows
    ((3, 0), (0, 4)),  # K == 0: zeros
    ((3, 4), (4, 0)),
    ((2, 0, 3), (3, 4)),
    ((2, 3, 4), (4, 5)),  # batch on one side
    ((4, 5), (3, 5, 2)),
    ((2, 1, 3, 4), (5, 4, 2)),  # batch broadcasting both ways
    ((1, 3, 4), (2, 4, 1)),
    ((3, 2, 5, 7), (3, 2, 7, 3)),
    ((2, 3, 4), (1, 4, 2)),
]


def _ids(pairs):
    return ["@".join("x".join(map(str, s)) or "()" for s in p) for p in pairs]


@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
@pytest.mark.parametrize("shapes", SHAPE_PAIRS, ids=_ids(SHAPE_PAIRS))
def test_matmul_operator(cpu_isa, shapes, dtype):
    check_op(lambda a, b: a @ b, R.matmul, R.matmul_vjp, list(shapes), dtype=dtype)


@pytest.mark.parametrize(
    "shapes",
    [((4, 5), (5, 3)), ((2, 3), (3,)), ((2, 1, 1, 3), (4, 3, 2))],
    ids=_ids([((4, 5), (5, 3)), ((2, 3), (3,)), ((2, 1, 1, 3), (4, 3, 2))]),
)
def test_matmul_function(cpu_isa, shapes):
    check_op(pe.matmul, R.matmul, R.matmul_vjp, list(shapes), dtype=pe.float64)


@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
@pytest.mark.parametrize("shape", [(33, 65, 17), (127, 31, 64), (1, 257, 16), (64, 1, 129)])
def test_matmul_larger(cpu_isa, shape, dtype):
    m, k, n = shape
    check_op(
        lambda a, b: a @ b,
        R.matmul,
        R.matmul_vjp,
        [(m, k), (k, n)],
        dtype=dtype,
        gradcheck=False,
        rtol=1e-5,
        atol=1e-5 * np.sqrt(k),
    )


# ---------------------------------------------- views as operands (strides our GEMM must honour)
# The reference for a composed op is the composition of reference functions.


def _t_ref(a, b):
    return R.matmul(a.T, b)


def _t_vjp(g, a, b):
    ga_t, gb = R.matmul_vjp(g, a.T, b)
    return ga_t.T, gb


def _bt_ref(a, b):
    return R.matmul(a, np.swapaxes(b, -1, -2))


def _bt_vjp(g, a, b):
    ga, gbt = R.matmul_vjp(g, a, np.swapaxes(b, -1, -2))
    return ga, np.swapaxes(gbt, -1, -2)


def _perm_ref(a, b):  # a is (k, batch, m) permuted to (batch, m, k)
    return R.matmul(np.transpose(a, (1, 2, 0)), b)


def _perm_vjp(g, a, b):
    ga, gb = R.matmul_vjp(g, np.transpose(a, (1, 2, 0)), b)
    return S.permute_vjp(ga, a, (1, 2, 0))[0], gb


def _slice_ref(a, b):
    return R.matmul(a[::2, 1:], b[:, ::3])


def _slice_vjp(g, a, b):
    ga_s, gb_s = R.matmul_vjp(g, a[::2, 1:], b[:, ::3])
    ga, gb = np.zeros_like(a), np.zeros_like(b)
    ga[::2, 1:] = ga_s
    gb[:, ::3] = gb_s
    return ga, gb


def _expand_ref(a, b):  # a (3, 5) expanded to (4, 3, 5): stride-0 batch
    return R.matmul(np.broadcast_to(a, (4, 3, 5)), b)


def _expand_vjp(g, a, b):
    ga, gb = R.matmul_vjp(g, np.broadcast_to(a, (4, 3, 5)), b)
    return S.expand_vjp(ga, a, (4, 3, 5))[0], gb


VIEW_CASES = {
    "a.T@b": (lambda a, b: a.T @ b, _t_ref, _t_vjp, [(5, 3), (5, 4)]),
    "a@b.transpose": (
        lambda a, b: a @ b.transpose(-1, -2),
        _bt_ref,
        _bt_vjp,
        [(2, 3, 5), (2, 4, 5)],
    ),
    "a.T@b.T": (
        lambda a, b: a.T @ b.T,
        lambda a, b: R.matmul(a.T, b.T),
        lambda g, a, b: tuple(x.T for x in R.matmul_vjp(g, a.T, b.T)),
        [(7, 3), (2, 7)],
    ),
    "permuted": (lambda a, b: a.permute(1, 2, 0) @ b, _perm_ref, _perm_vjp, [(5, 2, 3), (5, 4)]),
    "sliced": (lambda a, b: a[::2, 1:] @ b[:, ::3], _slice_ref, _slice_vjp, [(7, 6), (5, 7)]),
    "expanded": (lambda a, b: a.expand(4, 3, 5) @ b, _expand_ref, _expand_vjp, [(3, 5), (4, 5, 2)]),
}


@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
@pytest.mark.parametrize("case", list(VIEW_CASES), ids=list(VIEW_CASES))
def test_matmul_of_views(cpu_isa, case, dtype):
    op, ref, vjp, shapes = VIEW_CASES[case]
    check_op(op, ref, vjp, shapes, dtype=dtype)


def test_matmul_same_tensor_both_sides(cpu_isa):
    """x @ x: both gradient contributions accumulate into x."""
    check_op(
        lambda a: a @ a,
        lambda a: R.matmul(a, a),
        lambda g, a: (sum(R.matmul_vjp(g, a, a)),),
        [(4, 4)],
        dtype=pe.float64,
    )


def test_matmul_under_no_grad(cpu_isa):
    a = pe.randn(3, 4, requires_grad=True)
    b = pe.randn(4, 2, requires_grad=True)
    with pe.no_grad():
        c = a @ b
    assert not c.requires_grad and c.grad_fn is None
    np.testing.assert_allclose(
        c.numpy(), a.detach().numpy().astype(np.float64) @ b.detach().numpy(), rtol=1e-5, atol=1e-6
    )


def test_matmul_with_constant_operand(cpu_isa):
    """Only the operand that requires grad gets a gradient: d sum(a @ b) / da = 1 @ b^T."""
    a = pe.randn(3, 4, dtype=pe.float64, requires_grad=True)
    b = np.random.default_rng(0).standard_normal((4, 2))
    c = a @ pe.tensor(b)
    assert c.requires_grad
    c.sum().backward()
    np.testing.assert_allclose(a.grad.numpy(), np.ones((3, 2)) @ b.T, rtol=1e-12)


@given(
    shapes=mutually_broadcastable_shapes(signature=np.matmul.signature, max_dims=3, max_side=5),
    dtype=st.sampled_from(DTYPES),
    seed=st.integers(0, 2**16),
)
def test_matmul_random_shapes(cpu_isa, shapes, dtype, seed):
    a_shape, b_shape = shapes.input_shapes
    check_op(
        lambda a, b: a @ b,
        R.matmul,
        R.matmul_vjp,
        [a_shape, b_shape],
        dtype=dtype,
        seed=seed,
        gradcheck=dtype == pe.float64,
    )
