"""Indexing x[...]: NumPy/torch semantics forward; scatter-add backward (repeats accumulate)."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import check_op
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes, basic_indices
from reference import indexing as I

import pyengine as pe

DTYPES = [pe.float32, pe.float64]
DT_IDS = ["f32", "f64"]

_ = slice(None)
IDX = np.array([2, 0, 2, 1])  # repeated index: gradients must accumulate
MASK = np.array([True, False, True, True, False])

# name: (input shape, index as NumPy sees it, index as we pass it, or None for the same)
CASES = {
    "int": ((5,), 3, None),
    "neg-int": ((5,), -1, None),
    "int-int": ((4, 5), (1, -2), None),
    "row": ((4, 5), 2, None),
    "col": ((4, 5), (_, 1), None),
    "slice": ((7,), slice(1, 6), None),
    "slice-step": ((9, 4), (slice(1, None, 3), slice(None, 3)), None),
    "slice-past-end": ((5,), slice(3, 100), None),
    "slice-empty": ((5, 2), slice(3, 3), None),
    "none": ((3, 4), (None, _, None), None),
    "ellipsis": ((2, 3, 4), (Ellipsis, 1), None),
    "ellipsis-mid": ((2, 3, 4, 5), (0, Ellipsis, slice(1, 3)), None),
    "ellipsis-none": ((2, 3), (Ellipsis, None), None),
    "scalar-all": ((), (), None),
    "scalar-ellipsis": ((), Ellipsis, None),
    "int-array": ((5, 3), IDX, None),
    "int-list": ((5, 3), [4, 4, 0], None),
    "int-tensor": ((5, 3), IDX, "tensor"),
    "int-array-dim1": ((3, 5), (_, IDX), None),
    "int-array-2d": ((5,), np.array([[0, 1], [1, 1]]), None),
    "two-arrays": ((4, 5), (np.array([0, 3, 3]), np.array([1, 1, 4])), None),
    "arrays-broadcast": ((4, 5), (np.array([[0], [3]]), np.array([1, 4, 1])), None),
    "array-slice-array": (
        (3, 4, 5),
        (np.array([0, 2, 2]), _, np.array([1, 4, 1])),
        None,
    ),  # dims moved to front
    "array-int": ((4, 5), (IDX, 2), None),
    "neg-array": ((5,), np.array([-1, -5, -1]), None),
    "empty-array": ((5, 2), np.array([], dtype=np.int64), None),
    "mask": ((5,), MASK, None),
    "mask-rows": ((5, 3), MASK, None),
    "mask-tensor": ((5, 3), MASK, "tensor"),
    "mask-2d": ((2, 3), np.array([[True, False, True], [False, False, True]]), None),
    "mask-all-false": ((5,), np.zeros(5, bool), None),
    "mask-dim1": ((3, 5), (_, MASK), None),
    "ellipsis-array": ((2, 3, 5), (Ellipsis, IDX), None),
}


def _our_index(idx, how):
    if how != "tensor":
        return idx
    return pe.tensor(idx)


@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
@pytest.mark.parametrize("name", list(CASES))
def test_getitem(name, dtype):
    shape, idx, how = CASES[name]
    ours = _our_index(idx, how)
    check_op(
        lambda x: x[ours],
        lambda x: I.getitem(x, idx),
        lambda g, x: I.getitem_vjp(g, x, idx),
        [shape],
        dtype=dtype,
    )


def test_repeated_index_accumulates():
    """x[[1, 1, 1]].sum() -> gradient 3 at position 1 (not 1: a scatter, not an assignment)."""
    x = pe.tensor(np.zeros(4), requires_grad=True)
    x[[1, 1, 1]].sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [0.0, 3.0, 0.0, 0.0])


def test_index_with_bool_tensor_from_comparison():
    """x[x > 0]: mask computed by our own comparison."""
    check_op(
        lambda x: x[x > 0],
        lambda x: x[x > 0],
        lambda g, x: I.getitem_vjp(g, x, x > 0),
        [(4, 5)],
        dtype=pe.float64,
    )


def test_int_tensor_index_is_not_differentiated():
    idx = pe.tensor([0, 2])
    x = pe.tensor(np.arange(6.0).reshape(3, 2), requires_grad=True)
    y = x[idx]
    assert y.requires_grad
    assert not idx.requires_grad
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [[1.0, 1.0], [0.0, 0.0], [1.0, 1.0]])


def test_chained_indexing():
    check_op(
        lambda x: x[1:][:, IDX][0],
        lambda x: x[1:][:, IDX][0],
        _chained_vjp,
        [(4, 3)],
        dtype=pe.float64,
    )


def _chained_vjp(g, x):
    """Compose the reference VJPs of the three indexing steps, last step first."""
    a = x[1:]
    b = a[:, IDX]
    gb = I.getitem_vjp(g, b, 0)[0]
    ga = I.getitem_vjp(gb, a, (slice(None), IDX))[0]
    return I.getitem_vjp(ga, x, slice(1, None))


def test_indexing_result_does_not_alias_gradient_of_other_uses():
    """y = x[0] used twice and x used directly: all three paths accumulate into x.grad."""
    check_op(
        lambda x: x[0] * x[0] + x[1],
        lambda x: x[0] * x[0] + x[1],
        lambda g, x: (np.stack([2 * g * x[0], g, np.zeros_like(x[2])]),),
        [(3, 4)],
        dtype=pe.float64,
    )


@given(shape=array_shapes(min_dims=1, max_dims=4, min_side=1, max_side=5), data=st.data())
def test_basic_indices_random(shape, data):
    """Random basic indices (ints, slices with positive steps, None, Ellipsis)."""
    idx = data.draw(basic_indices(shape, allow_newaxis=True, allow_ellipsis=True))
    idx = _positive_steps(idx, shape)
    check_op(
        lambda x: x[idx],
        lambda x: I.getitem(x, idx),
        lambda g, x: I.getitem_vjp(g, x, idx),
        [shape],
        dtype=pe.float64,
    )


def _positive_steps(idx, shape):
    """torch has no negative slice steps; rewrite them as a positive step of the same size."""
    items = idx if isinstance(idx, tuple) else (idx,)
    out = []
    for it in items:
        if isinstance(it, slice) and it.step is not None and it.step < 0:
            it = slice(None, None, -it.step)
        out.append(it)
    return tuple(out) if isinstance(idx, tuple) else out[0]


@given(shape=st.tuples(st.integers(1, 6), st.integers(1, 4)), data=st.data())
def test_integer_array_index_random(shape, data):
    """Random (possibly repeated, negative) integer indices along dim 0."""
    n = shape[0]
    idx = np.array(
        data.draw(st.lists(st.integers(-n, n - 1), min_size=0, max_size=8)), dtype=np.int64
    )
    check_op(
        lambda x: x[idx],
        lambda x: I.getitem(x, idx),
        lambda g, x: I.getitem_vjp(g, x, idx),
        [shape],
        dtype=pe.float64,
    )
