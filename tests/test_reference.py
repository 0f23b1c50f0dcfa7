"""The references checked against themselves: each VJP against NumPy central differences.

No pyengine here: if a reference VJP were wrong, every backward test would compare against
a wrong answer, so the references get their own finite-difference check (float64, NumPy only).
"""

from __future__ import annotations

import numpy as np
import pytest
from helpers import numeric_vjp
from reference import elementwise as E
from reference import gemm as G
from reference import indexing as I
from reference import reduce as R
from reference import shape as S

rng = np.random.default_rng(0)


def _u(*shape, low=-2.0, high=2.0):
    return rng.uniform(low, high, shape)


def _distinct(*shape):
    n = int(np.prod(shape))
    return ((rng.permutation(n) - n / 2) * 0.1 + 0.01).reshape(shape)


# name: (forward, vjp, args, indices of args to differentiate)
CASES = {
    "add": (E.add, E.add_vjp, [_u(3, 1), _u(4)], [0, 1]),
    "sub": (E.sub, E.sub_vjp, [_u(3, 4), _u(1, 4)], [0, 1]),
    "mul": (E.mul, E.mul_vjp, [_u(2, 3), _u(3)], [0, 1]),
    "div": (E.div, E.div_vjp, [_u(2, 3), _u(3, low=0.5)], [0, 1]),
    "pow": (E.pow, E.pow_vjp, [_u(2, 3, low=0.3), _u(3)], [0, 1]),
    "maximum": (E.maximum, E.maximum_vjp, [_u(3, 4), _u(4)], [0, 1]),
    "minimum": (E.minimum, E.minimum_vjp, [_u(3, 4), _u(3, 1)], [0, 1]),
    "where": (E.where, E.where_vjp, [rng.random((3, 1)) < 0.5, _u(1, 4), _u(3, 4)], [1, 2]),
    "neg": (E.neg, E.neg_vjp, [_u(5)], [0]),
    "abs": (E.abs, E.abs_vjp, [_u(5, low=0.1) * np.array([1, -1, 1, -1, 1])], [0]),
    "exp": (E.exp, E.exp_vjp, [_u(5)], [0]),
    "log": (E.log, E.log_vjp, [_u(5, low=0.2)], [0]),
    "sqrt": (E.sqrt, E.sqrt_vjp, [_u(5, low=0.2)], [0]),
    "sin": (E.sin, E.sin_vjp, [_u(5)], [0]),
    "cos": (E.cos, E.cos_vjp, [_u(5)], [0]),
    "tanh": (E.tanh, E.tanh_vjp, [_u(5)], [0]),
    "sigmoid": (E.sigmoid, E.sigmoid_vjp, [_u(5, low=-6, high=6)], [0]),
    "relu": (E.relu, E.relu_vjp, [np.array([-1.0, 0.5, 2.0, -0.2])], [0]),
    "clamp": (
        lambda x: E.clamp(x, -0.5, 0.7),
        lambda g, x: E.clamp_vjp(g, x, -0.5, 0.7),
        [np.array([-1.0, -0.2, 0.3, 1.0])],
        [0],
    ),
    "matmul": (G.matmul, G.matmul_vjp, [_u(2, 1, 3, 4), _u(5, 4, 2)], [0, 1]),
    "matmul-vec": (G.matmul, G.matmul_vjp, [_u(4), _u(2, 4, 3)], [0, 1]),
    "matmul-vecvec": (G.matmul, G.matmul_vjp, [_u(4), _u(4)], [0, 1]),
    "matmul-matvec": (G.matmul, G.matmul_vjp, [_u(3, 4), _u(4)], [0, 1]),
    "sum": (lambda x: R.sum(x, (0, 2)), lambda g, x: R.sum_vjp(g, x, (0, 2)), [_u(2, 3, 4)], [0]),
    "mean": (lambda x: R.mean(x, 1, True), lambda g, x: R.mean_vjp(g, x, 1, True), [_u(2, 3)], [0]),
    "amax": (lambda x: R.amax(x, 1), lambda g, x: R.amax_vjp(g, x, 1), [_distinct(3, 4)], [0]),
    "amin": (lambda x: R.amin(x), lambda g, x: R.amin_vjp(g, x), [_distinct(3, 4)], [0]),
    "max_dim": (
        lambda x: R.max_dim(x, 0),
        lambda g, x: R.max_dim_vjp(g, x, 0),
        [_distinct(3, 4)],
        [0],
    ),
    "min_dim": (
        lambda x: R.min_dim(x, 1, True),
        lambda g, x: R.min_dim_vjp(g, x, 1, True),
        [_distinct(3, 4)],
        [0],
    ),
    "var": (lambda x: R.var(x, 1, 1), lambda g, x: R.var_vjp(g, x, 1, 1), [_u(3, 5)], [0]),
    "var-c0": (lambda x: R.var(x, None, 0), lambda g, x: R.var_vjp(g, x, None, 0), [_u(3, 5)], [0]),
    "std": (
        lambda x: R.std(x, 0, 2, True),
        lambda g, x: R.std_vjp(g, x, 0, 2, True),
        [_u(6, 2)],
        [0],
    ),
    "reshape": (
        lambda x: S.reshape(x, (6, 2)),
        lambda g, x: S.reshape_vjp(g, x, (6, 2)),
        [_u(3, 4)],
        [0],
    ),
    "permute": (
        lambda x: S.permute(x, (2, 0, 1)),
        lambda g, x: S.permute_vjp(g, x, (2, 0, 1)),
        [_u(2, 3, 4)],
        [0],
    ),
    "transpose": (
        lambda x: S.transpose(x, 0, 2),
        lambda g, x: S.transpose_vjp(g, x, 0, 2),
        [_u(2, 3, 4)],
        [0],
    ),
    "expand": (
        lambda x: S.expand(x, (2, 3, -1)),
        lambda g, x: S.expand_vjp(g, x, (2, 3, -1)),
        [_u(3, 1)],
        [0],
    ),
    "cat": (
        lambda a, b: S.cat([a, b], 1),
        lambda g, a, b: S.cat_vjp(g, [a, b], 1),
        [_u(2, 3), _u(2, 2)],
        [0, 1],
    ),
    "stack": (
        lambda a, b: S.stack([a, b], 1),
        lambda g, a, b: S.stack_vjp(g, [a, b], 1),
        [_u(2, 3), _u(2, 3)],
        [0, 1],
    ),
    "split": (
        lambda x: S.split(x, [1, 3], 1),
        lambda g, x: S.split_vjp(g, x, [1, 3], 1),
        [_u(2, 4)],
        [0],
    ),
    "chunk": (lambda x: S.chunk(x, 4, 0), lambda g, x: S.chunk_vjp(g, x, 4, 0), [_u(6, 2)], [0]),
    "pad": (
        lambda x: S.pad(x, (1, -1, 2, 0), "constant", 3.0),
        lambda g, x: S.pad_vjp(g, x, (1, -1, 2, 0), "constant", 3.0),
        [_u(3, 4)],
        [0],
    ),
    "pad-reflect": (
        lambda x: S.pad(x, (2, 3), "reflect"),
        lambda g, x: S.pad_vjp(g, x, (2, 3), "reflect"),
        [_u(2, 5)],
        [0],
    ),
    "pad-replicate": (
        lambda x: S.pad(x, (2, 3), "replicate"),
        lambda g, x: S.pad_vjp(g, x, (2, 3), "replicate"),
        [_u(2, 5)],
        [0],
    ),
    "pad-circular": (
        lambda x: S.pad(x, (2, 3), "circular"),
        lambda g, x: S.pad_vjp(g, x, (2, 3), "circular"),
        [_u(2, 5)],
        [0],
    ),
    "getitem": (
        lambda x: I.getitem(x, (np.array([0, 2, 0]), slice(1, None))),
        lambda g, x: I.getitem_vjp(g, x, (np.array([0, 2, 0]), slice(1, None))),
        [_u(3, 4)],
        [0],
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_reference_vjp_matches_finite_differences(name):
    f, vjp, args, diff = CASES[name]
    out = f(*args)
    outs = out if isinstance(out, tuple) else (out,)
    gs = tuple(
        rng.standard_normal(np.shape(o)) if np.asarray(o).dtype.kind == "f" else None for o in outs
    )
    g = gs if isinstance(out, tuple) else gs[0]
    grads = vjp(g, *args)
    for i in diff:
        num = numeric_vjp(f, args, i, g)
        np.testing.assert_allclose(
            grads[i], num, rtol=1e-6, atol=1e-8, err_msg=f"{name}: input {i}"
        )


def test_reference_known_values():
    """A few values worked out by hand."""
    np.testing.assert_allclose(G.gelu(np.array([0.0, 1.0])), [0.0, 0.8413447460685429], rtol=1e-15)
    np.testing.assert_array_equal(
        S.pad(np.array([1.0, 2.0, 3.0]), (2, 1), "reflect"), [3, 2, 1, 2, 3, 2]
    )
    np.testing.assert_array_equal(
        S.pad(np.array([1.0, 2.0, 3.0]), (2, 1), "replicate"), [1, 1, 1, 2, 3, 3]
    )
    np.testing.assert_array_equal(
        S.pad(np.array([1.0, 2.0, 3.0]), (2, 1), "circular"), [2, 3, 1, 2, 3, 1]
    )
    assert [len(c) for c in S.chunk(np.zeros(6), 4)] == [2, 2, 2]
    assert R.var(np.array([1.0, 2.0, 3.0, 4.0])) == pytest.approx(5 / 3)
    np.testing.assert_array_equal(R.amax_vjp(1.0, np.array([1.0, 3.0, 3.0]))[0], [0, 0.5, 0.5])
    np.testing.assert_array_equal(
        R.max_dim_vjp((np.array(1.0), None), np.array([1.0, 3.0, 3.0]), 0)[0], [0, 1, 0]
    )
