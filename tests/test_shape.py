"""Shape ops: views, joins, splits and pad vs tests/reference/shape.py (forward, VJP, gradcheck)."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import check_op
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes
from reference import shape as S

import pyengine as pe

DTYPES = [pe.float32, pe.float64]
DT_IDS = ["f32", "f64"]


def _id(x):
    return str(x).replace(" ", "")


# ------------------------------------------------------------------ views

RESHAPES = [
    ((2, 3, 4), (6, 4)),
    ((2, 3, 4), (4, -1)),
    ((2, 3, 4), (24,)),
    ((7,), (7, 1)),
    ((1,), ()),
    ((), (1, 1)),
    ((0, 3), (3, 0)),
    ((0, 3), (-1,)),
    ((5, 1, 3), (3, 5)),
    ((13,), (1, 13, 1)),
]


@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
@pytest.mark.parametrize("method", ["reshape", "view"])
@pytest.mark.parametrize("case", RESHAPES, ids=[_id(c) for c in RESHAPES])
def test_reshape_view(case, method, dtype):
    shape, new = case
    check_op(
        lambda x: getattr(x, method)(*new),
        lambda x: S.reshape(x, new),
        lambda g, x: S.reshape_vjp(g, x, new),
        [shape],
        dtype=dtype,
    )


def test_reshape_accepts_a_tuple():
    check_op(
        lambda x: x.reshape((3, 4)),
        lambda x: S.reshape(x, (3, 4)),
        lambda g, x: S.reshape_vjp(g, x, (3, 4)),
        [(2, 6)],
    )


def test_reshape_of_transposed_view():
    """reshape of a non-contiguous view (torch copies): values and gradient in order."""
    check_op(
        lambda x: x.T.reshape(6),
        lambda x: S.reshape(x.T, (6,)),
        lambda g, x: (S.reshape_vjp(g, x.T, (6,))[0].T,),
        [(2, 3)],
        dtype=pe.float64,
    )


TRANSPOSES = [
    ((3, 5), 0, 1),
    ((2, 3, 4), 0, 2),
    ((2, 3, 4), -1, -2),
    ((2, 3, 4), 1, 1),
    ((1, 7), 0, 1),
    ((0, 3), 0, 1),
]


@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
@pytest.mark.parametrize("case", TRANSPOSES, ids=[_id(c) for c in TRANSPOSES])
def test_transpose(case, dtype):
    shape, d0, d1 = case
    check_op(
        lambda x: x.transpose(d0, d1),
        lambda x: S.transpose(x, d0, d1),
        lambda g, x: S.transpose_vjp(g, x, d0, d1),
        [shape],
        dtype=dtype,
    )


def test_T_property():
    check_op(lambda x: x.T, lambda x: x.T, lambda g, x: (g.T,), [(3, 5)])


PERMUTES = [
    ((2, 3, 4), (2, 0, 1)),
    ((2, 3, 4), (0, 1, 2)),
    ((5, 1, 3, 2), (3, 1, 0, 2)),
    ((3, 5), (1, 0)),
    ((2, 3, 4), (-1, 0, 1)),
    ((0, 2, 3), (1, 2, 0)),
]


@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
@pytest.mark.parametrize("case", PERMUTES, ids=[_id(c) for c in PERMUTES])
def test_permute(case, dtype):
    shape, dims = case
    check_op(
        lambda x: x.permute(*dims),
        lambda x: S.permute(x, dims),
        lambda g, x: S.permute_vjp(g, x, dims),
        [shape],
        dtype=dtype,
    )


FLATTENS = [
    ((2, 3, 4), 0, -1),
    ((2, 3, 4), 1, -1),
    ((2, 3, 4), 0, 1),
    ((2, 3, 4, 5), 1, 2),
    ((7,), 0, -1),
    ((), 0, -1),
    ((2, 0, 3), 1, 2),
]


@pytest.mark.parametrize("case", FLATTENS, ids=[_id(c) for c in FLATTENS])
def test_flatten(case):
    shape, s, e = case
    check_op(
        lambda x: x.flatten(s, e),
        lambda x: S.flatten(x, s, e),
        lambda g, x: S.flatten_vjp(g, x, s, e),
        [shape],
        dtype=pe.float64,
    )


def test_flatten_default_is_all():
    check_op(
        lambda x: x.flatten(),
        lambda x: x.reshape(-1),
        lambda g, x: (g.reshape(x.shape),),
        [(2, 3, 4)],
    )


SQUEEZES = [
    ((1, 3, 1, 5), None),
    ((1, 3, 1, 5), 0),
    ((1, 3, 1, 5), 2),
    ((1, 3, 1, 5), -2),
    ((1, 3, 1, 5), 1),
    ((1, 1), None),
    ((1,), 0),
    ((3,), None),
    ((2, 1, 0), 1),
]


@pytest.mark.parametrize("case", SQUEEZES, ids=[_id(c) for c in SQUEEZES])
def test_squeeze(case):
    """torch: squeeze(dim) of a dim whose size is not 1 leaves the tensor as it is."""
    shape, dim = case
    if dim is None:
        op = lambda x: x.squeeze()  # noqa: E731
    else:
        op = lambda x: x.squeeze(dim)  # noqa: E731
    check_op(
        op,
        lambda x: S.squeeze(x, dim),
        lambda g, x: S.squeeze_vjp(g, x, dim),
        [shape],
        dtype=pe.float64,
    )


UNSQUEEZES = [((3, 5), 0), ((3, 5), 1), ((3, 5), 2), ((3, 5), -1), ((3, 5), -3), ((), 0), ((0,), 1)]


@pytest.mark.parametrize("case", UNSQUEEZES, ids=[_id(c) for c in UNSQUEEZES])
def test_unsqueeze(case):
    shape, dim = case
    check_op(
        lambda x: x.unsqueeze(dim),
        lambda x: S.unsqueeze(x, dim),
        lambda g, x: S.unsqueeze_vjp(g, x, dim),
        [shape],
        dtype=pe.float64,
    )


EXPANDS = [
    ((3, 1), (3, 4)),
    ((3, 1), (-1, 4)),
    ((1,), (5,)),
    ((), (2, 3)),
    ((2, 1, 3), (2, 4, 3)),
    ((1, 3), (2, 5, 3)),
    ((3,), (2, -1)),
    ((3, 1), (3, 0)),
    ((1, 1), (1, 1)),
]


@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
@pytest.mark.parametrize("case", EXPANDS, ids=[_id(c) for c in EXPANDS])
def test_expand(case, dtype):
    """The gradient of an expanded (stride-0) input sums over the copies."""
    shape, sizes = case
    check_op(
        lambda x: x.expand(*sizes),
        lambda x: S.expand(x, sizes),
        lambda g, x: S.expand_vjp(g, x, sizes),
        [shape],
        dtype=dtype,
    )


def test_expand_then_elementwise():
    """An expanded view feeding another op: gradient still sums over the copies."""
    check_op(
        lambda x: x.expand(3, 4) * 2.0,
        lambda x: np.broadcast_to(x, (3, 4)) * 2.0,
        lambda g, x: (2.0 * g.sum(axis=0, keepdims=True),),
        [(1, 4)],
        dtype=pe.float64,
    )


# ------------------------------------------------------------------ joins

CATS = [
    ([(2, 3), (4, 3)], 0),
    ([(2, 3), (2, 5), (2, 1)], 1),
    ([(2, 3), (2, 3)], -1),
    ([(3,)], 0),
    ([(0, 3), (2, 3)], 0),
    ([(2, 0), (2, 3), (2, 0)], 1),
    ([(1, 2, 3), (4, 2, 3), (2, 2, 3)], 0),
    ([(2, 1, 3), (2, 7, 3)], 1),
]


@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
@pytest.mark.parametrize("case", CATS, ids=[_id(c) for c in CATS])
def test_cat(case, dtype):
    shapes, dim = case
    check_op(
        lambda *xs: pe.cat(list(xs), dim=dim),
        lambda *xs: S.cat(xs, dim),
        lambda g, *xs: S.cat_vjp(g, xs, dim),
        shapes,
        dtype=dtype,
    )


STACKS = [
    ([(3,), (3,)], 0),
    ([(3,), (3,)], 1),
    ([(2, 3)] * 3, 1),
    ([(2, 3)] * 3, -1),
    ([(2, 3)], 0),
    ([()] * 4, 0),
    ([(0, 2)] * 2, 1),
]


@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
@pytest.mark.parametrize("case", STACKS, ids=[_id(c) for c in STACKS])
def test_stack(case, dtype):
    shapes, dim = case
    check_op(
        lambda *xs: pe.stack(list(xs), dim=dim),
        lambda *xs: S.stack(xs, dim),
        lambda g, *xs: S.stack_vjp(g, xs, dim),
        shapes,
        dtype=dtype,
    )


def test_cat_same_tensor_twice():
    """cat([x, x]): both copies send their gradient to x."""
    check_op(
        lambda x: pe.cat([x, x], dim=0),
        lambda x: np.concatenate([x, x]),
        lambda g, x: (g[:3] + g[3:],),
        [(3, 2)],
        dtype=pe.float64,
    )


# ----------------------------------------------------------------- splits

SPLITS = [
    ((7, 3), 2, 0),
    ((7, 3), 7, 0),
    ((7, 3), 10, 0),
    ((7, 3), 1, 1),
    ((7, 3), [2, 5], 0),
    ((7, 3), [3, 0, 4], 0),
    ((2, 9), [4, 5], -1),
    ((6,), 3, 0),
]


@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
@pytest.mark.parametrize("case", SPLITS, ids=[_id(c) for c in SPLITS])
def test_split(case, dtype):
    """torch.split: an int is the size of each piece (the last may be smaller), a list the sizes."""
    shape, sz, dim = case
    check_op(
        lambda x: x.split(sz, dim=dim),
        lambda x: S.split(x, sz, dim),
        lambda g, x: S.split_vjp(g, x, sz, dim),
        [shape],
        dtype=dtype,
    )


CHUNKS = [((6, 2), 3, 0), ((7, 2), 3, 0), ((6,), 4, 0), ((5,), 5, 0), ((2, 5), 2, 1), ((3,), 7, 0)]


@pytest.mark.parametrize("case", CHUNKS, ids=[_id(c) for c in CHUNKS])
def test_chunk(case):
    """torch.chunk: pieces of ceil(n/chunks), so 6 in 4 chunks gives 3 pieces of 2."""
    shape, chunks, dim = case
    check_op(
        lambda x: x.chunk(chunks, dim=dim),
        lambda x: S.chunk(x, chunks, dim),
        lambda g, x: S.chunk_vjp(g, x, chunks, dim),
        [shape],
        dtype=pe.float64,
    )


def test_split_pieces_used_partly():
    """Only some pieces reach the loss: the others' part of the gradient is zero."""
    check_op(
        lambda x: x.split(2, dim=0)[1] * 3.0,
        lambda x: x[2:4] * 3.0,
        lambda g, x: (np.concatenate([np.zeros((2, 3)), 3.0 * g, np.zeros((1, 3))]),),
        [(5, 3)],
        dtype=pe.float64,
    )


# -------------------------------------------------------------------- pad

PADS = [
    ((3, 4), (1, 2), 0.0),
    ((3, 4), (0, 0, 2, 1), 0.0),
    ((2, 3, 4), (1, 1, 1, 1, 1, 1), -1.5),
    ((5,), (3, 0), 2.0),
    ((1, 1), (2, 2, 2, 2), 0.0),
    ((2, 3), (0, 0), 0.0),
    ((0, 3), (1, 1), 0.0),
    ((2, 7), (2, 3), 7.0),
]


@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
@pytest.mark.parametrize("case", PADS, ids=[_id(c) for c in PADS])
def test_pad_constant(case, dtype):
    shape, pad, value = case
    check_op(
        lambda x: pe.functional.pad(x, pad, value=value),
        lambda x: S.pad(x, pad, "constant", value),
        lambda g, x: S.pad_vjp(g, x, pad, "constant", value),
        [shape],
        dtype=dtype,
    )


def test_pad_negative_crops():
    """torch's constant pad accepts negative amounts, which remove elements."""
    pad = (-1, 2, 1, -2)
    check_op(
        lambda x: pe.functional.pad(x, pad),
        lambda x: S.pad(x, pad),
        lambda g, x: S.pad_vjp(g, x, pad),
        [(4, 5)],
        dtype=pe.float64,
    )


@pytest.mark.parametrize("mode", ["reflect", "replicate", "circular"])
@pytest.mark.parametrize(
    "case",
    [((2, 5), (2, 3)), ((2, 3, 4), (1, 2, 2, 1)), ((1, 2, 6), (5, 0))],
    ids=["2d", "3d", "wide"],
)
def test_pad_modes(case, mode):
    """Modes other than 'constant': torch semantics; gradients of repeated sources accumulate."""
    shape, pad = case
    check_op(
        lambda x: pe.functional.pad(x, pad, mode=mode),
        lambda x: S.pad(x, pad, mode),
        lambda g, x: S.pad_vjp(g, x, pad, mode),
        [shape],
        dtype=pe.float64,
    )


# -------------------------------------------------------------- hypothesis


@given(
    shape=array_shapes(min_dims=1, max_dims=4, min_side=0, max_side=5),
    data=st.data(),
    seed=st.integers(0, 99),
)
def test_permute_then_reshape_random(shape, data, seed):
    """A random permutation followed by flattening: a non-contiguous view made contiguous."""
    dims = tuple(data.draw(st.permutations(range(len(shape)))))

    def ours(x):
        return x.permute(*dims).reshape(-1)

    def ref(x):
        return np.transpose(x, dims).reshape(-1)

    def vjp(g, x):
        return (np.transpose(g.reshape([shape[d] for d in dims]), np.argsort(dims)),)

    check_op(ours, ref, vjp, [shape], dtype=pe.float64, seed=seed)


def test_contiguous_of_view_keeps_gradient():
    check_op(
        lambda x: x.T.contiguous() * 1.0,
        lambda x: x.T.copy(),
        lambda g, x: (g.T,),
        [(3, 4)],
        dtype=pe.float64,
    )
