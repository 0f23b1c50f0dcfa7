"""Reductions (sum, mean, amax, amin, var, std, max/min, argmax/argmin) vs reference/reduce.py."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import check_op, distinct, ties
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes
from reference import reduce as R

import pyengine as pe

DTYPES = [pe.float32, pe.float64]
DT_IDS = ["f32", "f64"]

# (shape, dim): scalars, size 1, odd and prime sizes, negative dims, tuples
CASES = [
    ((), None),
    ((7,), None),
    ((7,), 0),
    ((7,), -1),
    ((3, 5), None),
    ((3, 5), 0),
    ((3, 5), 1),
    ((3, 5), (0, 1)),
    ((2, 3, 4), (0, 2)),
    ((2, 3, 4), -2),
    ((1, 13), 0),
    ((5, 1, 3), 1),
    ((2, 3, 4), (-1, 0)),
    ((3, 1, 1, 2), (1, 2)),
]
CASE_IDS = [f"{'x'.join(map(str, s)) or 'scalar'}-dim{d}" for s, d in CASES]
EMPTY_CASES = [((0, 3), 0), ((0, 3), 1), ((0,), None), ((2, 0, 3), (0, 2)), ((3, 0), None)]


def _method(name):
    return lambda x, **kw: getattr(x, name)(**kw)


@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
@pytest.mark.parametrize("keepdim", [False, True], ids=["", "keepdim"])
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
@pytest.mark.parametrize("name", ["sum", "mean"])
def test_sum_mean(name, case, keepdim, dtype):
    shape, dim = case
    check_op(
        _method(name),
        getattr(R, name),
        getattr(R, name + "_vjp"),
        [shape],
        dtype=dtype,
        kwargs=dict(dim=dim, keepdim=keepdim),
    )


@pytest.mark.parametrize("keepdim", [False, True], ids=["", "keepdim"])
@pytest.mark.parametrize("case", EMPTY_CASES, ids=[f"{s}-dim{d}" for s, d in EMPTY_CASES])
def test_sum_of_empty(case, keepdim):
    """Summing nothing gives 0; the gradient of an empty input is empty."""
    shape, dim = case
    check_op(_method("sum"), R.sum, R.sum_vjp, [shape], kwargs=dict(dim=dim, keepdim=keepdim))


def test_mean_over_empty_dim_of_nonempty_output_shape():
    """mean over a non-empty dim of a tensor with another dim 0: an empty result, no error."""
    check_op(_method("mean"), R.mean, R.mean_vjp, [(0, 3)], kwargs=dict(dim=1))


@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
@pytest.mark.parametrize("keepdim", [False, True], ids=["", "keepdim"])
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
@pytest.mark.parametrize("name", ["amax", "amin"])
def test_amax_amin_distinct(name, case, keepdim, dtype):
    shape, dim = case
    check_op(
        _method(name),
        getattr(R, name),
        getattr(R, name + "_vjp"),
        [shape],
        dtype=dtype,
        kwargs=dict(dim=dim, keepdim=keepdim),
        gen=distinct(),
    )


@pytest.mark.parametrize(
    "case",
    [((4, 6), None), ((4, 6), 1), ((3, 4, 5), (0, 2)), ((9,), 0)],
    ids=["all", "dim1", "dims02", "1d"],
)
@pytest.mark.parametrize("name", ["amax", "amin"])
def test_amax_amin_ties_split_gradient_evenly(name, case):
    """Inputs in {0, 1, 2}: ties everywhere; torch.amax sends g / (number of ties) to each."""
    shape, dim = case
    check_op(
        _method(name),
        getattr(R, name),
        getattr(R, name + "_vjp"),
        [shape],
        dtype=pe.float64,
        kwargs=dict(dim=dim),
        gen=ties(3),
        gradcheck=False,
    )


@pytest.mark.parametrize("name", ["max", "min"])
def test_max_min_without_dim(name):
    ref = getattr(R, name + "_all")
    vjp = getattr(R, name + "_all_vjp")
    for dtype in DTYPES:
        check_op(_method(name), ref, vjp, [(3, 7)], dtype=dtype, gen=distinct())
    # ties: the gradient is split evenly, as torch.max() without dim (== amax)
    check_op(_method(name), ref, vjp, [(4, 5)], dtype=pe.float64, gen=ties(2), gradcheck=False)
    x = np.array([[1.0, 3.0], [3.0, 3.0]])
    check_op(
        _method(name), ref, vjp, [x if name == "max" else -x], dtype=pe.float64, gradcheck=False
    )


MAXDIM_CASES = [
    ((7,), 0),
    ((3, 5), 0),
    ((3, 5), 1),
    ((3, 5), -1),
    ((2, 3, 4), 1),
    ((1, 6), 0),
    ((4, 1), 1),
]


@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
@pytest.mark.parametrize("keepdim", [False, True], ids=["", "keepdim"])
@pytest.mark.parametrize("case", MAXDIM_CASES, ids=[f"{s}-dim{d}" for s, d in MAXDIM_CASES])
@pytest.mark.parametrize("name", ["max", "min"])
def test_max_min_with_dim(name, case, keepdim, dtype):
    """(values, indices); indices are int64 and compared exactly."""
    shape, dim = case
    check_op(
        _method(name),
        getattr(R, name + "_dim"),
        getattr(R, name + "_dim_vjp"),
        [shape],
        dtype=dtype,
        kwargs=dict(dim=dim, keepdim=keepdim),
        gen=distinct(),
    )


@pytest.mark.parametrize("name", ["max", "min"])
@pytest.mark.parametrize("dim", [0, 1])
def test_max_min_with_dim_ties_go_to_first(name, dim):
    """With ties the index is that of the first extremum, and all of the gradient goes there."""
    check_op(
        _method(name),
        getattr(R, name + "_dim"),
        getattr(R, name + "_dim_vjp"),
        [(5, 6)],
        dtype=pe.float64,
        kwargs=dict(dim=dim),
        gen=ties(2),
        gradcheck=False,
    )


def test_max_with_dim_returns_named_tuple():
    x = pe.tensor([[1.0, 5.0, 2.0], [7.0, 0.0, 7.0]])
    out = x.max(dim=1)
    values, indices = out  # unpacks like a tuple
    np.testing.assert_array_equal(values.numpy(), out.values.numpy())
    np.testing.assert_array_equal(out.values.numpy(), [5.0, 7.0])
    np.testing.assert_array_equal(out.indices.numpy(), [1, 0])
    assert indices.dtype == pe.int64
    assert not indices.requires_grad


# keepdim with dim=None is left out: torch changed its meaning across versions
@pytest.mark.parametrize(
    "dim,keepdim", [(0, False), (1, False), (-1, False), (0, True), (1, True), (None, False)]
)
@pytest.mark.parametrize("name", ["argmax", "argmin"])
def test_argmax_argmin(name, dim, keepdim):
    """int64, not differentiable; ties resolved to the first occurrence."""
    for gen in (distinct(), ties(2)):
        check_op(
            _method(name),
            getattr(R, name),
            None,
            [(4, 6)],
            gen=gen,
            kwargs=dict(dim=dim, keepdim=keepdim),
        )


def test_argmax_over_all_is_flat_index():
    x = pe.tensor([[0.0, 1.0, 9.0], [9.0, 2.0, 3.0]])
    assert x.argmax().shape == ()
    assert x.argmax().item() == 2
    assert x.argmin().item() == 0


VAR_CASES = [((7,), None), ((3, 5), 1), ((3, 5), 0), ((4, 3, 5), (0, 2)), ((2, 9), -1), ((6,), 0)]


@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
@pytest.mark.parametrize("keepdim", [False, True], ids=["", "keepdim"])
@pytest.mark.parametrize("correction", [0, 1, 2])
@pytest.mark.parametrize("case", VAR_CASES, ids=[f"{s}-dim{d}" for s, d in VAR_CASES])
@pytest.mark.parametrize("name", ["var", "std"])
def test_var_std_correction(name, case, correction, keepdim, dtype):
    shape, dim = case
    check_op(
        lambda x, **kw: getattr(x, name)(dim=dim, correction=correction, keepdim=keepdim),
        lambda x: getattr(R, name)(x, dim, correction, keepdim),
        lambda g, x: getattr(R, name + "_vjp")(g, x, dim, correction, keepdim),
        [shape],
        dtype=dtype,
    )


@pytest.mark.parametrize("unbiased,correction", [(True, 1), (False, 0)])
@pytest.mark.parametrize("name", ["var", "std"])
def test_var_std_unbiased_flag(name, unbiased, correction):
    check_op(
        lambda x: getattr(x, name)(dim=1, unbiased=unbiased),
        lambda x: getattr(R, name)(x, 1, correction),
        lambda g, x: getattr(R, name + "_vjp")(g, x, 1, correction),
        [(3, 6)],
        dtype=pe.float64,
    )


def test_var_std_default_is_unbiased():
    check_op(
        lambda x: x.var(),
        lambda x: R.var(x, None, 1),
        lambda g, x: R.var_vjp(g, x, None, 1),
        [(4, 5)],
    )
    check_op(
        lambda x: x.std(dim=0),
        lambda x: R.std(x, 0, 1),
        lambda g, x: R.std_vjp(g, x, 0, 1),
        [(4, 5)],
    )


@pytest.mark.parametrize("name", ["sum", "mean", "amax", "amin"])
def test_function_form(name):
    """pe.sum(x, dim=...) is the same op as x.sum(dim=...)."""
    check_op(
        lambda x: getattr(pe, name)(x, dim=1, keepdim=True),
        lambda x: getattr(R, name)(x, 1, True),
        lambda g, x: getattr(R, name + "_vjp")(g, x, 1, True),
        [(3, 4)],
        dtype=pe.float64,
        gen=distinct(),
    )


def test_sum_float32_accuracy_on_long_rows():
    """A long float32 sum must not lose much more than a pairwise/blocked sum would."""
    rng = np.random.default_rng(0)
    x = rng.uniform(0.5, 1.5, 1 << 20).astype(np.float32)
    got = pe.tensor(x).sum().item()
    want = x.astype(np.float64).sum()
    assert abs(got - want) / want < 1e-4, (got, want)  # one naive float32 accumulator: ~1e-2


@given(
    shape=array_shapes(min_dims=1, max_dims=4, min_side=1, max_side=5),
    data=st.data(),
    name=st.sampled_from(["sum", "mean", "amax", "var"]),
    keepdim=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_reduce_random(shape, data, name, keepdim, seed):
    ndim = len(shape)
    dims = data.draw(
        st.lists(
            st.integers(-ndim, ndim - 1), min_size=1, max_size=ndim, unique_by=lambda d: d % ndim
        )
    )
    dim = dims[0] if len(dims) == 1 else tuple(dims)
    if name == "var" and np.prod([shape[d] for d in dims]) < 2:
        dim = None
        if np.prod(shape) < 2:
            return
    check_op(
        _method(name),
        getattr(R, name),
        getattr(R, name + "_vjp"),
        [shape],
        dtype=pe.float64,
        kwargs=dict(dim=dim, keepdim=keepdim),
        gen=distinct(),
        seed=seed,
    )
