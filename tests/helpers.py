"""One call checks an op end to end (tinygrad-style): ``check_op``.

    check_op(pe.tanh, R.tanh, R.tanh_vjp, [(3, 5)], dtype=pe.float32)

1. the same seeded inputs go to our op (pyengine Tensors) and to the float64 NumPy
   reference (which sees the inputs *after* rounding to ``dtype``, so only the op's
   own rounding is measured);
2. output shape and dtype are asserted, the forward compared with a per-dtype
   tolerance; the inputs must be left unchanged;
3. backward through a seeded random projection, loss = sum(out * R), is compared
   with the reference's vector-Jacobian product ``ref_backward(R, *inputs)``;
4. ``pyengine.autograd.gradcheck`` (central differences, float64) on the same inputs.

Inputs are given as a list; each entry is a shape tuple (random floats from ``gen``),
a float ndarray (cast to ``dtype``, requires grad), a bool/int ndarray (a constant
Tensor, no grad) or anything else (passed unchanged to both sides, e.g. a scalar).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

import pyengine as pe

F32 = np.dtype(np.float32)
F64 = np.dtype(np.float64)
FLOAT_DTYPES = (pe.float32, pe.float64)

# (rtol, atol) per dtype; atol is scaled by max(1, max|expected|) in assert_close.
TOL = {F32: (1e-5, 1e-5), F64: (1e-10, 1e-10)}

# gradcheck runs 2 forwards per input element: keep it to small inputs.
GRADCHECK_MAX_NUMEL = 1000


# ----------------------------------------------------------------- comparisons


def to_numpy(x: Any) -> np.ndarray:
    if isinstance(x, pe.Tensor):
        return x.detach().numpy()
    return np.asarray(x)


def assert_close(actual, expected, dtype=F32, *, rtol=None, atol=None, what: str = "") -> None:
    """|actual - expected| <= atol * max(1, max|expected|) + rtol * |expected|, NaN == NaN."""
    actual = to_numpy(actual)
    expected = np.asarray(expected, dtype=np.float64)
    assert actual.shape == expected.shape, (
        f"{what}: shape {actual.shape} != expected {expected.shape}"
    )
    rt, at = TOL[np.dtype(dtype)]
    rt = rt if rtol is None else rtol
    at = at if atol is None else atol
    finite = expected[np.isfinite(expected)]
    scale = max(1.0, float(np.max(np.abs(finite)))) if finite.size else 1.0
    np.testing.assert_allclose(
        actual.astype(np.float64), expected, rtol=rt, atol=at * scale, err_msg=what
    )


# ---------------------------------------------------------------- input makers
# Each maker is gen(rng, shape) -> float64 ndarray.


def uniform(low: float = -2.0, high: float = 2.0) -> Callable:
    return lambda rng, shape: rng.uniform(low, high, shape)


def positive(low: float = 0.2, high: float = 3.0) -> Callable:
    return uniform(low, high)


def nonzero(low: float = 0.1, high: float = 2.0) -> Callable:
    """|x| in [low, high], random sign: keeps away from kinks at 0 (abs, relu)."""
    return lambda rng, shape: rng.choice([-1.0, 1.0], shape) * rng.uniform(low, high, shape)


def avoiding(points: Sequence[float], gap: float = 0.05, low=-2.0, high=2.0) -> Callable:
    """Uniform in [low, high] but at least `gap` away from each of `points` (kinks)."""

    def gen(rng, shape):
        x = rng.uniform(low, high, shape)
        for _ in range(1000):
            bad = np.zeros(x.shape, bool)
            for p in points:
                bad |= np.abs(x - p) < gap
            if not bad.any():
                return x
            x[bad] = rng.uniform(low, high, int(bad.sum()))
        raise RuntimeError("avoiding: could not draw values")

    return gen


def distinct(spacing: float = 0.1) -> Callable:
    """All values distinct, at least `spacing` apart (no ties for max/min/sort)."""

    def gen(rng, shape):
        n = int(np.prod(shape, dtype=np.int64))
        v = (rng.permutation(n) - n / 2) * spacing + rng.uniform(0, spacing / 4)
        return v.reshape(shape)

    return gen


def ties(k: int = 3) -> Callable:
    """Small integers as floats: many exact ties."""
    return lambda rng, shape: rng.integers(0, k, shape).astype(np.float64)


# ---------------------------------------------------------------- the checker


def _is_float_array(a) -> bool:
    return isinstance(a, np.ndarray) and a.dtype.kind == "f"


def _expected_dtype(ref_out: np.ndarray, dtype, out_dtype):
    kind = np.asarray(ref_out).dtype.kind
    if kind == "b":
        return pe.bool
    if kind in "iu":
        return pe.int64
    return np.dtype(out_dtype if out_dtype is not None else dtype)


def _as_list(out):
    return list(out) if isinstance(out, (tuple, list)) else [out]


def check_op(
    op: Callable,
    ref_forward: Callable,
    ref_backward: Callable | None,
    inputs: Sequence[Any],
    *,
    dtype=pe.float32,
    seed: int = 0,
    gradcheck: bool = True,
    gen: Callable | Sequence[Callable | None] | None = None,
    kwargs: dict | None = None,
    rtol: float | None = None,
    atol: float | None = None,
    grad_rtol: float | None = None,
    grad_atol: float | None = None,
    out_dtype=None,
):
    """Check ``op`` against ``ref_forward``/``ref_backward``; see the module docstring.

    ``kwargs`` go to op, ref_forward and ref_backward alike. ``ref_backward=None``
    means the op is not differentiable: its outputs must not require grad.
    Returns (outputs, input tensors) for extra assertions.
    """
    dtype = np.dtype(dtype)
    kwargs = kwargs or {}
    rng = np.random.default_rng(seed)
    gens = list(gen) if isinstance(gen, (list, tuple)) else [gen] * len(inputs)
    assert len(gens) == len(inputs), "check_op: one gen per input"

    # -- inputs: reference arrays (float64 after rounding to dtype) and our tensors
    ref_args, our_args, float_pos = [], [], []
    for i, (inp, g) in enumerate(zip(inputs, gens)):
        if isinstance(inp, tuple) and all(isinstance(n, (int, np.integer)) for n in inp):
            inp = np.asarray((g or uniform())(rng, inp), dtype=np.float64)
        if _is_float_array(inp):
            arr = np.asarray(inp).astype(dtype)
            ref_args.append(arr.astype(np.float64))
            our_args.append(pe.tensor(arr.copy(), requires_grad=True))
            float_pos.append(i)
        elif isinstance(inp, np.ndarray):
            ref_args.append(inp.copy())
            our_args.append(pe.tensor(inp.copy()))
        else:
            ref_args.append(inp)
            our_args.append(inp)
    before = {i: to_numpy(our_args[i]).copy() for i in float_pos}

    # -- forward
    out = op(*our_args, **kwargs)
    ref = ref_forward(*ref_args, **kwargs)
    outs, refs = _as_list(out), _as_list(ref)
    assert len(outs) == len(refs), f"op returned {len(outs)} outputs, reference {len(refs)}"
    float_out = []
    for k, (o, r) in enumerate(zip(outs, refs)):
        r = np.asarray(r)
        assert isinstance(o, pe.Tensor), f"output {k} is {type(o).__name__}, not a Tensor"
        assert tuple(o.shape) == r.shape, (
            f"output {k}: shape {tuple(o.shape)} != expected {r.shape}"
        )
        want = _expected_dtype(r, dtype, out_dtype)
        assert o.dtype == want, f"output {k}: dtype {o.dtype} != expected {want}"
        if r.dtype.kind == "f":
            assert_close(o, r, want, rtol=rtol, atol=atol, what=f"forward output {k}")
            float_out.append(k)
        else:
            np.testing.assert_array_equal(to_numpy(o), r, err_msg=f"forward output {k}")
            assert not o.requires_grad, f"output {k} ({o.dtype}) must not require grad"
    for i in float_pos:
        np.testing.assert_array_equal(
            to_numpy(our_args[i]), before[i], err_msg=f"op modified input {i}"
        )

    if ref_backward is None:
        for k, o in enumerate(outs):
            assert not o.requires_grad, f"output {k} of a non-differentiable op requires grad"
        return outs, our_args
    if not float_pos:
        return outs, our_args

    # -- backward through a random projection: loss = sum_k sum(out_k * R_k)
    for k in float_out:
        assert outs[k].requires_grad, f"output {k} does not require grad"
    projs = {
        k: np.asarray(rng.standard_normal(np.shape(refs[k]))).astype(outs[k].dtype)
        for k in float_out
    }
    loss = None
    for k in float_out:
        term = (outs[k] * pe.tensor(projs[k])).sum()
        loss = term if loss is None else loss + term
    loss.backward()
    gs = [projs[k].astype(np.float64) if k in projs else None for k in range(len(outs))]
    multi = isinstance(out, (tuple, list))
    ref_grads = ref_backward(tuple(gs) if multi else gs[0], *ref_args, **kwargs)
    ref_grads = _as_list(ref_grads)
    assert len(ref_grads) == len(inputs), "reference VJP must return one entry per input"
    for i in float_pos:
        rg = ref_grads[i]
        assert rg is not None, f"reference gives no gradient for float input {i}"
        got = our_args[i].grad
        assert got is not None, f"input {i}: .grad is None after backward"
        assert tuple(got.shape) == tuple(our_args[i].shape), (
            f"input {i}: grad shape {tuple(got.shape)}"
        )
        assert got.dtype == dtype, f"input {i}: grad dtype {got.dtype} != {dtype}"
        assert_close(got, rg, dtype, rtol=grad_rtol, atol=grad_atol, what=f"gradient of input {i}")

    # -- finite differences (float64)
    if gradcheck:
        run_gradcheck(op, ref_args, float_pos, kwargs, seed)
    return outs, our_args


def run_gradcheck(op, ref_args, float_pos, kwargs, seed=0):
    """pe.autograd.gradcheck of op on float64 copies of the float inputs."""
    numel = sum(int(np.asarray(ref_args[i]).size) for i in float_pos)
    if numel > GRADCHECK_MAX_NUMEL:
        raise ValueError(
            f"check_op: {numel} input elements is too many for gradcheck; "
            "use smaller shapes or gradcheck=False"
        )
    xs = [
        pe.tensor(np.asarray(ref_args[i], np.float64).copy(), requires_grad=True) for i in float_pos
    ]
    consts = [pe.tensor(a.copy()) if isinstance(a, np.ndarray) else a for a in ref_args]
    rng = np.random.default_rng(seed + 1)
    proj: dict[int, Any] = {}

    def fn(*ts):
        args = list(consts)
        for i, t in zip(float_pos, ts):
            args[i] = t
        out = op(*args, **kwargs)
        if not isinstance(out, (tuple, list)):
            return out
        # several outputs: check a random scalar projection of the float ones
        loss = None
        for k, o in enumerate(out):
            if o.dtype != pe.float64:
                continue
            if k not in proj:
                proj[k] = pe.tensor(np.asarray(rng.standard_normal(tuple(o.shape))))
            term = (o * proj[k]).sum()
            loss = term if loss is None else loss + term
        return loss

    ok = pe.autograd.gradcheck(fn, tuple(xs))
    assert ok, "gradcheck returned False"


# ------------------------------------------------ numpy-only finite differences
# Used to validate the references themselves (tests/test_reference.py).


def numeric_vjp(f: Callable, args: list, i: int, g: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """d/d args[i] of sum(f(*args) * g) by central differences, NumPy only."""
    x = np.array(args[i], dtype=np.float64)
    grad = np.zeros_like(x)
    for j in np.ndindex(x.shape):
        vals = []
        for s in (+eps, -eps):
            xp = x.copy()
            xp[j] += s
            a = list(args)
            a[i] = xp
            out = f(*a)
            outs = out if isinstance(out, (tuple, list)) else (out,)
            gs = g if isinstance(g, (tuple, list)) else (g,)
            vals.append(
                sum(
                    float(np.sum(np.asarray(o, np.float64) * gg))
                    for o, gg in zip(outs, gs)
                    if gg is not None
                )
            )
        grad[j] = (vals[0] - vals[1]) / (2 * eps)
    return grad
