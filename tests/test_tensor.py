"""Tensor creation, conversion, dtype rules, properties, NumPy/DLPack interop, manual_seed."""

from __future__ import annotations

import numpy as np
import pytest

import pyengine as pe


def _has_gpu() -> bool:
    devs = pe.info().get("cuda_devices")
    return bool(devs) if not isinstance(devs, int) else devs > 0


# ---------------------------------------------------------------- creation


@pytest.mark.parametrize(
    "data,dtype,shape",
    [
        ([1.0, 2.0], pe.float32, (2,)),
        ([[1.0], [2.5]], pe.float32, (2, 1)),
        ([1, 2, 3], pe.int64, (3,)),
        ([[1, 2], [3, 4]], pe.int64, (2, 2)),
        (3.5, pe.float32, ()),
        (7, pe.int64, ()),
        ([True, False], pe.bool, (2,)),
        (True, pe.bool, ()),
        ([1, 2.5], pe.float32, (2,)),
        ([], pe.float32, (0,)),
        (np.array([1.0, 2.0]), pe.float64, (2,)),
        (np.array([1.0, 2.0], np.float32), pe.float32, (2,)),
        (np.array([1, 2], np.int64), pe.int64, (2,)),
        (np.array([True]), pe.bool, (1,)),
    ],
    ids=[
        "floats",
        "nested",
        "ints",
        "int-matrix",
        "float-scalar",
        "int-scalar",
        "bools",
        "bool-scalar",
        "mixed",
        "empty",
        "np-f64",
        "np-f32",
        "np-i64",
        "np-bool",
    ],
)
def test_tensor_infers_dtype(data, dtype, shape):
    t = pe.tensor(data)
    assert t.dtype == dtype
    assert t.shape == shape
    np.testing.assert_array_equal(t.numpy(), np.asarray(data, dtype=dtype))


def test_tensor_explicit_dtype_device_requires_grad():
    t = pe.tensor([1, 2], dtype=pe.float64, device="cpu", requires_grad=True)
    assert t.dtype == pe.float64 and t.device == "cpu" and t.requires_grad
    np.testing.assert_array_equal(t.detach().numpy(), [1.0, 2.0])


def test_tensor_copies_its_numpy_input():
    """pe.tensor copies (as torch.tensor); from_numpy shares."""
    a = np.array([1.0, 2.0])
    t = pe.tensor(a)
    a[0] = 99.0
    assert t.numpy()[0] == 1.0


def test_tensor_of_tensor_list():
    t = pe.tensor([[1.0, 2.0]])
    assert pe.tensor(t).shape == (1, 2)


def test_dtypes_are_numpy_dtypes():
    assert pe.float32 == np.dtype(np.float32)
    assert pe.float64 == np.dtype(np.float64)
    assert pe.int64 == np.dtype(np.int64)
    assert pe.bool == np.dtype(np.bool_)


@pytest.mark.parametrize("fn,fill", [(pe.zeros, 0.0), (pe.ones, 1.0)])
def test_zeros_ones(fn, fill):
    for t in (fn(2, 3), fn((2, 3))):
        assert t.shape == (2, 3) and t.dtype == pe.float32
        np.testing.assert_array_equal(t.numpy(), np.full((2, 3), fill))
    assert fn(4, dtype=pe.int64).dtype == pe.int64
    assert fn(0, 3).shape == (0, 3)
    assert fn(2, requires_grad=True).requires_grad


def test_empty_and_full():
    e = pe.empty(3, 4, dtype=pe.float64)
    assert e.shape == (3, 4) and e.dtype == pe.float64
    f = pe.full((2, 3), 7.5)
    assert f.dtype == pe.float32
    np.testing.assert_array_equal(f.numpy(), np.full((2, 3), 7.5))
    fi = pe.full((2,), 7)
    assert fi.dtype == pe.int64  # Python int -> int64 (torch >= 1.8)
    np.testing.assert_array_equal(fi.numpy(), [7, 7])
    fd = pe.full((2,), 1, dtype=pe.float64)
    assert fd.dtype == pe.float64


@pytest.mark.parametrize(
    "args,kwargs,want",
    [
        ((5,), {}, np.arange(5)),
        ((2, 7), {}, np.arange(2, 7)),
        ((1, 10, 3), {}, np.arange(1, 10, 3)),
        ((0, 1, 0.25), {}, np.arange(0, 1, 0.25)),
        ((5, 0, -2), {}, np.arange(5, 0, -2)),
        ((0,), {}, np.arange(0)),
        ((3,), {"dtype": pe.float64}, np.arange(3.0)),
    ],
)
def test_arange(args, kwargs, want):
    t = pe.arange(*args, **kwargs)
    expect_dtype = kwargs.get(
        "dtype", pe.int64 if all(isinstance(a, int) for a in args) else pe.float32
    )
    assert t.dtype == expect_dtype
    np.testing.assert_allclose(t.numpy(), want)


def test_like_constructors_keep_shape_and_dtype():
    x = pe.tensor(np.zeros((2, 5)))  # float64
    for fn in (pe.zeros_like, pe.ones_like, pe.empty_like, pe.rand_like, pe.randn_like):
        y = fn(x)
        assert y.shape == (2, 5) and y.dtype == pe.float64, fn.__name__
    np.testing.assert_array_equal(pe.ones_like(x).numpy(), np.ones((2, 5)))
    np.testing.assert_array_equal(pe.zeros_like(x).numpy(), np.zeros((2, 5)))
    f = pe.full_like(x, 3.0)
    assert f.dtype == pe.float64
    np.testing.assert_array_equal(f.numpy(), np.full((2, 5), 3.0))
    assert pe.zeros_like(x, dtype=pe.float32).dtype == pe.float32


def test_from_numpy_shares_memory():
    a = np.arange(6.0).reshape(2, 3)
    t = pe.from_numpy(a)
    assert t.dtype == pe.float64 and t.shape == (2, 3)
    a[0, 0] = 42.0
    assert t.numpy()[0, 0] == 42.0


# ------------------------------------------------------------------- random


def test_manual_seed_reproducible():
    pe.manual_seed(123)
    a, b = pe.rand(50), pe.randn(3, 4)
    pe.manual_seed(123)
    a2, b2 = pe.rand(50), pe.randn(3, 4)
    np.testing.assert_array_equal(a.numpy(), a2.numpy())
    np.testing.assert_array_equal(b.numpy(), b2.numpy())
    pe.manual_seed(124)
    assert not np.array_equal(pe.rand(50).numpy(), a.numpy())


def test_rand_randn_distribution():
    pe.manual_seed(0)
    u = pe.rand(100_000).numpy()
    n = pe.randn(100_000).numpy()
    assert u.dtype == np.float32 and n.dtype == np.float32
    assert u.min() >= 0.0 and u.max() < 1.0
    # 5-sigma bounds on sample moments
    assert abs(u.mean() - 0.5) < 5 * np.sqrt(1 / 12 / 1e5)
    assert abs(n.mean()) < 5 / np.sqrt(1e5)
    assert abs(n.std() - 1.0) < 5 * np.sqrt(0.5 / 1e5)
    assert pe.rand(2, 3, dtype=pe.float64).dtype == pe.float64
    assert pe.randn((2, 3)).shape == (2, 3)
    assert pe.randn(2, requires_grad=True).requires_grad


# --------------------------------------------------------------- properties


def test_shape_properties():
    t = pe.zeros(2, 3, 5)
    assert t.shape == (2, 3, 5)
    assert isinstance(t.shape, tuple)
    assert t.ndim == 3 and t.dim() == 3
    assert t.numel() == 30
    assert t.size() == (2, 3, 5)
    assert t.size(1) == 3 and t.size(-1) == 5
    assert t.device == "cpu"
    s = pe.tensor(1.0)
    assert s.ndim == 0 and s.numel() == 1 and s.shape == ()


def test_item_and_tolist():
    assert pe.tensor(2.5).item() == 2.5
    assert isinstance(pe.tensor(2.5).item(), float)
    assert isinstance(pe.tensor(3).item(), int)
    assert pe.tensor([[4.0]]).item() == 4.0
    lst = pe.tensor([[1, 2], [3, 4]]).tolist()
    assert lst == [[1, 2], [3, 4]] and isinstance(lst[0][0], int)
    assert pe.tensor([0.5, 1.5]).tolist() == [0.5, 1.5]


def test_to_dtype_and_device():
    x = pe.tensor([1.5, 2.5])
    y = x.to(pe.float64)
    assert y.dtype == pe.float64
    np.testing.assert_array_equal(y.numpy(), [1.5, 2.5])
    assert x.to("cpu").device == "cpu"
    assert x.cpu().device == "cpu"
    assert x.double().dtype == pe.float64
    assert y.float().dtype == pe.float32
    assert x.to(pe.int64).dtype == pe.int64


def test_to_dtype_is_differentiable():
    x = pe.tensor([1.0, 2.0], requires_grad=True)
    y = x.to(pe.float64) * pe.tensor([3.0, 4.0], dtype=pe.float64)
    y.sum().backward()
    assert x.grad.dtype == pe.float32
    np.testing.assert_array_equal(x.grad.numpy(), [3.0, 4.0])


@pytest.mark.skipif(_has_gpu(), reason="this checks the error raised where there is no GPU")
def test_cuda_without_gpu_raises():
    x = pe.tensor([1.0])
    with pytest.raises(RuntimeError, match=r"\[(cuda|to)\]"):
        x.cuda()
    with pytest.raises(RuntimeError, match=r"\[(cuda|to)\]"):
        x.to("cuda")


def test_clone_is_independent_and_differentiable():
    x = pe.tensor([1.0, 2.0], requires_grad=True)
    c = x.clone()
    assert c.requires_grad and not c.is_leaf
    c.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [1.0, 1.0])
    y = pe.tensor([1.0, 2.0])
    d = y.clone()
    d.numpy()[0] = 9.0
    assert y.numpy()[0] == 1.0


def test_contiguous():
    x = pe.tensor(np.arange(6.0).reshape(2, 3))
    t = x.T.contiguous()
    assert np.asarray(t).flags.c_contiguous
    np.testing.assert_array_equal(t.numpy(), np.arange(6.0).reshape(2, 3).T)


def test_array_protocol():
    x = pe.tensor([[1.0, 2.0]], dtype=pe.float64)
    a = np.asarray(x)
    assert isinstance(a, np.ndarray) and a.dtype == np.float64
    np.testing.assert_array_equal(a, [[1.0, 2.0]])
    b = np.asarray(x, dtype=np.float32)
    assert b.dtype == np.float32
    np.testing.assert_array_equal(b, [[1.0, 2.0]])


def test_dlpack():
    x = pe.tensor(np.arange(6.0).reshape(2, 3))
    a = np.from_dlpack(x)
    np.testing.assert_array_equal(a, np.arange(6.0).reshape(2, 3))
    assert np.shares_memory(a, np.asarray(x)), "DLPack should not copy on the same device"
    y = pe.tensor(np.arange(6.0).reshape(2, 3)).T  # strided view
    np.testing.assert_array_equal(np.from_dlpack(y), np.arange(6.0).reshape(2, 3).T)


# --------------------------------------------------------------- dtype rules


@pytest.mark.parametrize("dtype", [pe.float32, pe.float64])
def test_python_scalars_do_not_promote(dtype):
    x = pe.tensor([1.0, 2.0], dtype=dtype)
    for y in (x + 1, x * 2.5, 3.0 - x, x / 2, 2**x, x**2, -x):
        assert y.dtype == dtype


def test_int_tensor_with_int_scalar_stays_int():
    x = pe.tensor([1, 2])
    assert (x + 1).dtype == pe.int64
    assert (x * 3).dtype == pe.int64


def test_reductions_keep_dtype():
    for dt in (pe.float32, pe.float64):
        x = pe.ones(3, 4, dtype=dt)
        for y in (x.sum(), x.mean(dim=0), x.amax(), x.var(), x.std(dim=1)):
            assert y.dtype == dt
    assert pe.ones(3, dtype=pe.int64).sum().dtype == pe.int64
