"""Tensor: an n-d array (NumPy on "cpu", CuPy on "cuda") with autograd bookkeeping.

Arithmetic, reductions and shape ops are differentiable Functions in pyengine/ops/. Methods
here are thin: they forward to those ops. Binary ops between tensors require one dtype and one
device (no implicit casts); Python scalars take the tensor's dtype.
"""

from __future__ import annotations

import math
import numbers
from typing import Optional, Union

import numpy as np

from . import _dtype
from ._checks import allocating, check_numel, check_sizes, named_errors
from .autograd import backward as _autograd_backward
from .autograd import is_grad_enabled

__all__ = [
    "Tensor",
    "tensor",
    "as_tensor",
    "from_numpy",
    "from_dlpack",
    "zeros",
    "ones",
    "full",
    "empty",
    "arange",
    "linspace",
    "eye",
    "rand",
    "randn",
    "randint",
    "zeros_like",
    "ones_like",
    "full_like",
    "empty_like",
    "rand_like",
    "randn_like",
    "manual_seed",
]

# ----------------------------------------------------------------------------- devices


def _parse_device(device) -> str:
    if device is None:
        return "cpu"
    d = str(device)
    if d == "cpu":
        return "cpu"
    if d == "cuda" or d.startswith("cuda:"):
        if d not in ("cuda", "cuda:0"):
            raise ValueError(f"[device] only one CUDA device (cuda or cuda:0) is supported: {d}")
        return "cuda"
    raise ValueError(f"[device] expected 'cpu' or 'cuda' but got {device!r}")


def _xp_of_device(device: str):
    if device == "cpu":
        return np
    from ._cuda_state import require

    return require("to")


def _move(arr, device: str):
    """arr on device (a copy only when it changes device)."""
    if device == "cpu":
        return arr if isinstance(arr, np.ndarray) else arr.get()
    cp = _xp_of_device("cuda")
    return cp.asarray(arr)


# ----------------------------------------------------------------------------- Tensor


class Tensor:
    """An n-d array with a gradient. Construct with pyengine.tensor(...) or the factories."""

    __slots__ = ("data", "requires_grad", "grad", "grad_fn", "_output_nr", "__weakref__")
    __array_priority__ = 1000
    __array_ufunc__ = None  # ndarray <op> Tensor defers to Tensor's reflected operators

    def __init__(self, data, requires_grad: bool = False):
        if isinstance(data, np.generic):
            data = np.asarray(data)
        elif not (isinstance(data, np.ndarray) or _is_cupy(data)):
            raise TypeError(
                f"[Tensor] expects a NumPy or CuPy array, got {type(data).__name__}; "
                "use pyengine.tensor(data) to build one from Python data"
            )
        self.data = data
        self.grad: Optional[Tensor] = None
        self.grad_fn = None
        self._output_nr = 0
        self.requires_grad = False
        if requires_grad:
            self.requires_grad_(True)

    # ---- metadata
    @property
    def shape(self) -> tuple:
        return self.data.shape

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    @property
    def device(self) -> str:
        return "cpu" if isinstance(self.data, np.ndarray) else "cuda"

    @property
    def is_cuda(self) -> bool:
        return self.device == "cuda"

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def is_leaf(self) -> bool:
        return self.grad_fn is None

    @property
    def _xp(self):
        if isinstance(self.data, np.ndarray):
            return np
        import cupy

        return cupy

    def dim(self) -> int:
        return self.data.ndim

    def numel(self) -> int:
        return int(self.data.size)

    def size(self, dim: Optional[int] = None):
        if dim is None:
            return tuple(self.data.shape)
        with named_errors("size"):
            return self.data.shape[dim]

    def element_size(self) -> int:
        return self.data.itemsize

    def is_floating_point(self) -> bool:
        return self.data.dtype.kind == "f"

    def is_contiguous(self) -> bool:
        return bool(self.data.flags.c_contiguous)

    def stride(self, dim: Optional[int] = None):
        s = tuple(x // self.data.itemsize for x in self.data.strides)
        return s if dim is None else s[dim]

    def __len__(self) -> int:
        if self.ndim == 0:
            raise TypeError("[len] len() of a 0-d tensor")
        return self.shape[0]

    def __hash__(self) -> int:
        return id(self)

    # ---- autograd
    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
        if requires_grad and not self.is_floating_point():
            raise RuntimeError(
                f"[requires_grad_] only floating-point tensors can require grad, not {self.dtype}"
            )
        if not requires_grad and self.grad_fn is not None:
            raise RuntimeError("[requires_grad_] cannot turn off requires_grad of a non-leaf")
        self.requires_grad = bool(requires_grad)
        return self

    def retain_grad(self) -> None:
        """Keep .grad of this non-leaf tensor after backward."""
        import weakref

        if self.grad_fn is None:
            return
        if self.grad_fn._retained is None:
            self.grad_fn._retained = {}
        self.grad_fn._retained[self._output_nr] = weakref.ref(self)

    def backward(
        self, gradient=None, retain_graph: Optional[bool] = None, create_graph: bool = False
    ) -> None:
        """Accumulate the gradient of this tensor into the .grad of the leaves it depends on."""
        _autograd_backward(self, gradient, retain_graph, create_graph)

    def detach(self) -> Tensor:
        """A tensor sharing this one's data, outside the graph."""
        return Tensor(self.data)

    def detach_(self) -> Tensor:
        self.grad_fn = None
        self.requires_grad = False
        return self

    # ---- conversion
    def numpy(self) -> np.ndarray:
        if self.requires_grad and is_grad_enabled():
            raise RuntimeError(
                "[numpy] can't call numpy() on a tensor that requires grad; "
                "use tensor.detach().numpy()"
            )
        if self.device != "cpu":
            raise TypeError("[numpy] can't convert a cuda tensor to NumPy; use .cpu() first")
        return self.data

    def __array__(self, dtype=None, copy=None):
        if self.device != "cpu":
            raise TypeError("[__array__] can't convert a cuda tensor to NumPy; use .cpu() first")
        a = self.data
        if dtype is not None and np.dtype(dtype) != a.dtype:
            return a.astype(dtype)
        return a.copy() if copy else a

    def __dlpack__(self, *args, **kwargs):
        return self.data.__dlpack__(*args, **kwargs)

    def __dlpack_device__(self):
        return self.data.__dlpack_device__()

    def item(self) -> Union[float, int, bool]:
        if self.numel() != 1:
            raise ValueError(
                f"[item] only a one-element tensor can be converted to a Python scalar, "
                f"this one has {self.numel()} elements"
            )
        return self.data.reshape(-1)[0].item()

    def tolist(self):
        return _move(self.data, "cpu").tolist()

    def __float__(self) -> float:
        return float(self.item())

    def __int__(self) -> int:
        return int(self.item())

    def __bool__(self) -> bool:
        if self.numel() != 1:
            raise RuntimeError(
                "[bool] the truth value of a tensor with more than one element is ambiguous"
            )
        return bool(self.item())

    def __index__(self) -> int:
        if self.dtype.kind not in "iub" or self.numel() != 1:
            raise TypeError("[index] only one-element integer tensors can be used as an index")
        return int(self.item())

    def to(self, *args, **kwargs) -> Tensor:
        """to(device), to(dtype), to(device, dtype) or to(other_tensor); differentiable."""
        device = kwargs.pop("device", None)
        dtype = kwargs.pop("dtype", None)
        kwargs.pop("non_blocking", None)
        copy = kwargs.pop("copy", False)
        if kwargs:
            raise TypeError(f"[to] unexpected arguments {sorted(kwargs)}")
        for a in args:
            if isinstance(a, Tensor):
                device, dtype = a.device, a.dtype
            elif isinstance(a, str) and (a == "cpu" or a.startswith("cuda")):
                device = a
            else:
                dtype = a
        from .ops.elementwise import cast, to_device

        out = self
        if device is not None and _parse_device(device) != self.device:
            out = to_device(out, _parse_device(device))
        if dtype is not None and _dtype.to_dtype(dtype) != out.dtype:
            out = cast(out, _dtype.to_dtype(dtype))
        if copy and out is self:
            out = self.clone()
        return out

    def cpu(self) -> Tensor:
        return self.to("cpu")

    def cuda(self, device=None) -> Tensor:
        return self.to("cuda" if device is None else _parse_device(f"cuda:{device}"))

    def float(self) -> Tensor:
        return self.to(_dtype.float32)

    def double(self) -> Tensor:
        return self.to(_dtype.float64)

    def long(self) -> Tensor:
        return self.to(_dtype.int64)

    def int(self) -> Tensor:
        return self.to(_dtype.int32)

    def bool(self) -> Tensor:
        return self.to(_dtype.bool_)

    def type(self, dtype=None):
        if dtype is None:
            return str(self.dtype)
        return self.to(dtype)

    def clone(self) -> Tensor:
        from .ops.elementwise import clone

        return clone(self)

    def contiguous(self) -> Tensor:
        if self.is_contiguous():
            return self
        from .ops.elementwise import clone

        return clone(self)

    # ---- in-place updates: outside autograd (optimizers, initialization)
    def _check_inplace(self, op: str) -> None:
        if self.requires_grad and is_grad_enabled():
            what = "a leaf tensor" if self.is_leaf else "a tensor in the graph"
            raise RuntimeError(
                f"[{op}] {what} that requires grad is used in an in-place operation; "
                "wrap it in pyengine.no_grad()"
            )

    def _operand(self, other, op: str):
        if isinstance(other, Tensor):
            if other.device != self.device:
                raise RuntimeError(f"[{op}] tensors are on {self.device} and {other.device}")
            if other.dtype != self.dtype:
                raise TypeError(f"[{op}] dtype {other.dtype} does not match {self.dtype}")
            return other.data
        return other

    def zero_(self) -> Tensor:
        self._check_inplace("zero_")
        self.data[...] = 0
        return self

    def fill_(self, value) -> Tensor:
        self._check_inplace("fill_")
        with named_errors("fill_"):
            self.data[...] = value
        return self

    def copy_(self, src) -> Tensor:
        self._check_inplace("copy_")
        s = src.data if isinstance(src, Tensor) else src
        if isinstance(src, Tensor) and src.device != self.device:
            s = _move(s, self.device)
        if isinstance(src, Tensor) and src.dtype != self.dtype:
            raise TypeError(f"[copy_] dtype {src.dtype} does not match {self.dtype}")
        with named_errors("copy_"):
            self.data[...] = s
        return self

    def add_(self, other, alpha=1) -> Tensor:
        self._check_inplace("add_")
        o = self._operand(other, "add_")
        with named_errors("add_"):
            if alpha == 1:
                self.data += o
            else:
                self.data += alpha * o
        return self

    def sub_(self, other, alpha=1) -> Tensor:
        return self.add_(other, alpha=-alpha)

    def mul_(self, other) -> Tensor:
        self._check_inplace("mul_")
        with named_errors("mul_"):
            self.data *= self._operand(other, "mul_")
        return self

    def div_(self, other) -> Tensor:
        self._check_inplace("div_")
        with named_errors("div_"):
            self.data /= self._operand(other, "div_")
        return self

    def clamp_(self, min=None, max=None) -> Tensor:
        self._check_inplace("clamp_")
        if min is None and max is None:
            raise ValueError("[clamp_] at least one of min and max must be given")
        self._xp.clip(self.data, min, max, out=self.data)
        return self

    def uniform_(self, a: float = 0.0, b: float = 1.0) -> Tensor:
        self._check_inplace("uniform_")
        if self.dtype.kind != "f":
            raise TypeError(f"[uniform_] expects a floating-point tensor, got {self.dtype}")
        if not a <= b:
            raise ValueError(f"[uniform_] expects a <= b, got a={a}, b={b}")
        self.data[...] = _move(_rng().uniform(a, b, self.shape).astype(self.dtype), self.device)
        return self

    def normal_(self, mean: float = 0.0, std: float = 1.0) -> Tensor:
        self._check_inplace("normal_")
        if self.dtype.kind != "f":
            raise TypeError(f"[normal_] expects a floating-point tensor, got {self.dtype}")
        if not std >= 0:
            raise ValueError(f"[normal_] std must be non-negative, got {std}")
        r = _rng().standard_normal(self.shape) * std + mean
        self.data[...] = _move(r.astype(self.dtype), self.device)
        return self

    def __setitem__(self, key, value) -> None:
        self._check_inplace("setitem")
        from .ops.indexing import normalize_key

        v = self._operand(value, "setitem") if isinstance(value, Tensor) else value
        with named_errors("setitem"):
            self.data[normalize_key(key, self)] = v

    # ---- printing
    def __repr__(self) -> str:
        body = np.array2string(
            _move(self.data, "cpu"),
            separator=", ",
            prefix="tensor(",
            precision=4,
            threshold=1000,
        )
        extra = []
        if self.device != "cpu":
            extra.append("device='cuda'")
        if self.dtype not in (_dtype.float32, _dtype.int64, _dtype.bool_):
            extra.append(f"dtype={self.dtype}")
        if self.grad_fn is not None:
            extra.append(f"grad_fn=<{self.grad_fn.name()}>")
        elif self.requires_grad:
            extra.append("requires_grad=True")
        return "tensor(" + body + "".join(", " + e for e in extra) + ")"

    __str__ = __repr__


def _is_cupy(x) -> bool:
    return type(x).__module__.startswith("cupy")


# ----------------------------------------------------------------------------- factories


def _infer_dtype(arr: np.ndarray, from_python: bool):
    if from_python and arr.dtype.kind == "f":
        return _dtype.get_default_dtype()
    if from_python and arr.dtype.kind in "iu":
        return _dtype.int64
    return arr.dtype


def tensor(data, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """A new tensor holding a copy of data (Python numbers/lists, NumPy/CuPy arrays, tensors).

    Python floats become float32 (the default dtype), Python ints int64; arrays keep theirs.
    """
    device = _parse_device(device) if device is not None else None
    if isinstance(data, Tensor):
        arr, from_python = data.data, False
        device = device or data.device
    elif isinstance(data, np.ndarray) or _is_cupy(data):
        arr, from_python = data, False
        device = device or ("cpu" if isinstance(data, np.ndarray) else "cuda")
    else:
        if isinstance(data, (list, tuple)) and any(isinstance(x, Tensor) for x in data):
            data = [x.detach().cpu().data if isinstance(x, Tensor) else x for x in data]
        try:
            arr, from_python = np.asarray(data), True
        except (ValueError, TypeError) as e:
            raise type(e)(f"[tensor] {e}") from None
        device = device or "cpu"
        if arr.dtype == object:
            raise TypeError("[tensor] could not infer a numeric dtype from the data")
    dt = _dtype.to_dtype(dtype) or _infer_dtype(arr, from_python)
    if dt.kind not in "fiub":
        raise TypeError(f"[tensor] unsupported dtype {dt}: use a float, integer or bool dtype")
    xp = _xp_of_device(device)
    out = xp.array(_move(arr, device) if device == "cpu" else arr, dtype=dt, copy=True)
    return Tensor(out, requires_grad=requires_grad)


def as_tensor(data, dtype=None, device=None) -> Tensor:
    """Like tensor(), but shares memory with an array when dtype and device already match."""
    if isinstance(data, Tensor) and dtype is None and device is None:
        return data
    if isinstance(data, np.ndarray) and device in (None, "cpu") and dtype in (None, data.dtype):
        _check_array_dtype(data, "as_tensor")
        return Tensor(data)
    return tensor(data, dtype=dtype, device=device)


def from_numpy(arr: np.ndarray) -> Tensor:
    """A tensor sharing memory with a NumPy array (its dtype kept)."""
    if not isinstance(arr, np.ndarray):
        raise TypeError(f"[from_numpy] expected np.ndarray, got {type(arr).__name__}")
    _check_array_dtype(arr, "from_numpy")
    return Tensor(arr)


def from_dlpack(obj) -> Tensor:
    """A tensor sharing memory with any DLPack producer (CPU via NumPy, CUDA via CuPy)."""
    if not hasattr(obj, "__dlpack__"):
        raise TypeError(f"[from_dlpack] expected a DLPack producer, got {type(obj).__name__}")
    dev = obj.__dlpack_device__()[0] if hasattr(obj, "__dlpack_device__") else 1
    if dev == 1:  # kDLCPU
        return Tensor(np.from_dlpack(obj))
    cp = _xp_of_device("cuda")
    return Tensor(cp.from_dlpack(obj))


def _check_array_dtype(arr, op: str) -> None:
    if arr.dtype.kind not in "fiub":
        raise TypeError(f"[{op}] unsupported dtype {arr.dtype}: use a float, integer or bool dtype")


def _factory(fill, size, dtype, device, requires_grad, op: str = "tensor") -> Tensor:
    """fill(xp, shape, dtype); shape=None for the factories that compute their own (arange...).
    Sizes are checked (negative, overflowing) before anything is allocated."""
    device = _parse_device(device)
    dt = _dtype.to_dtype(dtype) or _dtype.get_default_dtype()
    shape = None if size is None else check_sizes(op, size)
    if shape is not None:
        check_numel(op, shape, dt)
    xp = _xp_of_device(device)
    with allocating(op):
        arr = fill(xp, shape, dt)
    return Tensor(arr, requires_grad=requires_grad)


def zeros(*size, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    return _factory(lambda xp, s, d: xp.zeros(s, d), size, dtype, device, requires_grad, "zeros")


def ones(*size, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    return _factory(lambda xp, s, d: xp.ones(s, d), size, dtype, device, requires_grad, "ones")


def empty(*size, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    return _factory(lambda xp, s, d: xp.empty(s, d), size, dtype, device, requires_grad, "empty")


def full(size, fill_value, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    if dtype is None and isinstance(fill_value, bool):
        dtype = _dtype.bool_
    elif dtype is None and isinstance(fill_value, numbers.Integral):
        dtype = _dtype.int64
    size = (size,) if isinstance(size, numbers.Integral) else tuple(size)
    return _factory(
        lambda xp, s, d: xp.full(s, fill_value, d), size, dtype, device, requires_grad, "full"
    )


def arange(start, end=None, step=1, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    if end is None:
        start, end = 0, start
    if dtype is None:
        ints = all(isinstance(v, numbers.Integral) for v in (start, end, step))
        dtype = _dtype.int64 if ints else _dtype.get_default_dtype()
    for v in (start, end, step):
        if not isinstance(v, numbers.Real) or not math.isfinite(v):
            raise ValueError(f"[arange] start, end and step must be finite numbers, got {v!r}")
    if step == 0:
        raise ValueError("[arange] step must be nonzero")
    if (end - start) * step < 0:
        raise ValueError(
            f"[arange] end {end} lies on the wrong side of start {start} for step {step}"
        )
    n = max(math.ceil((end - start) / step), 0)
    check_numel("arange", (n,), _dtype.to_dtype(dtype))
    return _factory(
        lambda xp, s, d: xp.arange(start, end, step, dtype=d),
        None,
        dtype,
        device,
        requires_grad,
        "arange",
    )


def linspace(
    start, end, steps: int, dtype=None, device=None, requires_grad: bool = False
) -> Tensor:
    (steps,) = check_sizes("linspace", (steps,))
    check_numel("linspace", (steps,), _dtype.to_dtype(dtype) or _dtype.get_default_dtype())
    return _factory(
        lambda xp, s, d: xp.linspace(start, end, steps, dtype=d),
        None,
        dtype,
        device,
        requires_grad,
        "linspace",
    )


def eye(
    n: int, m: Optional[int] = None, dtype=None, device=None, requires_grad: bool = False
) -> Tensor:
    n, m = check_sizes("eye", (n, n if m is None else m))
    check_numel("eye", (n, m), _dtype.to_dtype(dtype) or _dtype.get_default_dtype())
    return _factory(
        lambda xp, s, d: xp.eye(n, m, dtype=d), None, dtype, device, requires_grad, "eye"
    )


# ---- random: one global generator, seeded by manual_seed; drawn on the CPU so that a seed
# gives the same numbers on every device.
_GEN = {"rng": np.random.default_rng()}


def manual_seed(seed: int) -> None:
    """Seed pyengine's random generator (rand, randn, randint, dropout, init)."""
    _GEN["rng"] = np.random.default_rng(int(seed))


def _rng() -> np.random.Generator:
    return _GEN["rng"]


def _random(draw, size, dtype, device, requires_grad, op: str) -> Tensor:
    dt = _dtype.to_dtype(dtype) or _dtype.get_default_dtype()
    if dt.kind != "f":
        raise TypeError(f"[{op}] dtype must be floating point, got {dt}")
    shape = check_sizes(op, size)
    check_numel(op, shape, np.float64)  # drawn in float64, then cast
    with allocating(op):
        arr = draw(shape).astype(dt, copy=False)
    return Tensor(_move(arr, _parse_device(device)), requires_grad=requires_grad)


def rand(*size, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """Uniform samples in [0, 1)."""
    return _random(lambda s: _rng().random(s), size, dtype, device, requires_grad, "rand")


def randn(*size, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """Standard normal samples."""
    return _random(lambda s: _rng().standard_normal(s), size, dtype, device, requires_grad, "randn")


def randint(low, high=None, size=(), dtype=None, device=None) -> Tensor:
    if high is None:
        low, high = 0, low
    if low >= high:
        raise ValueError(f"[randint] low ({low}) must be less than high ({high})")
    size = check_sizes("randint", tuple(size))
    check_numel("randint", size, np.int64)
    with allocating("randint"):
        arr = _rng().integers(low, high, size=size, dtype=np.int64)
    dt = _dtype.to_dtype(dtype) or _dtype.int64
    return Tensor(_move(arr.astype(dt), _parse_device(device)))


def _check_like(t, op: str) -> None:
    if not isinstance(t, Tensor):
        raise TypeError(f"[{op}] expects a Tensor, got {type(t).__name__}")


def zeros_like(t: Tensor, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    _check_like(t, "zeros_like")
    return zeros(
        *t.shape, dtype=dtype or t.dtype, device=device or t.device, requires_grad=requires_grad
    )


def ones_like(t: Tensor, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    _check_like(t, "ones_like")
    return ones(
        *t.shape, dtype=dtype or t.dtype, device=device or t.device, requires_grad=requires_grad
    )


def empty_like(t: Tensor, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    _check_like(t, "empty_like")
    return empty(
        *t.shape, dtype=dtype or t.dtype, device=device or t.device, requires_grad=requires_grad
    )


def full_like(
    t: Tensor, fill_value, dtype=None, device=None, requires_grad: bool = False
) -> Tensor:
    _check_like(t, "full_like")
    return full(
        t.shape,
        fill_value,
        dtype=dtype or t.dtype,
        device=device or t.device,
        requires_grad=requires_grad,
    )


def rand_like(t: Tensor, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    _check_like(t, "rand_like")
    if (_dtype.to_dtype(dtype) or t.dtype).kind != "f":
        raise TypeError(
            f"[rand_like] dtype must be floating point, got {_dtype.to_dtype(dtype) or t.dtype}"
        )
    return rand(
        *t.shape, dtype=dtype or t.dtype, device=device or t.device, requires_grad=requires_grad
    )


def randn_like(t: Tensor, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    _check_like(t, "randn_like")
    if (_dtype.to_dtype(dtype) or t.dtype).kind != "f":
        raise TypeError(
            f"[randn_like] dtype must be floating point, got {_dtype.to_dtype(dtype) or t.dtype}"
        )
    return randn(
        *t.shape, dtype=dtype or t.dtype, device=device or t.device, requires_grad=requires_grad
    )
