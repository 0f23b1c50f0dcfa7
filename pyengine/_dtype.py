"""dtypes are NumPy dtype objects; these names mirror torch's."""

from __future__ import annotations

import numpy as np

float32 = np.dtype(np.float32)
float64 = np.dtype(np.float64)
float16 = np.dtype(np.float16)
int32 = np.dtype(np.int32)
int64 = np.dtype(np.int64)
bool_ = np.dtype(np.bool_)

float = float32  # noqa: A001  (torch.float)
double = float64
long = int64
half = float16

_DEFAULT_FLOAT = float32

__all__ = ["float32", "float64", "float16", "int32", "int64", "bool_", "double", "long", "half"]


def get_default_dtype() -> np.dtype:
    """The dtype of floating-point tensors made from Python data (float32)."""
    return _DEFAULT_FLOAT


def to_dtype(dtype) -> np.dtype:
    """Normalize a dtype-like (np.dtype, type, str, None) to np.dtype; None stays None."""
    if dtype is None:
        return None
    try:
        return np.dtype(dtype)
    except TypeError as e:
        raise TypeError(f"[dtype] not a dtype: {dtype!r}") from e


def is_floating(dtype) -> bool:
    return np.dtype(dtype).kind == "f"
