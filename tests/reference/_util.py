"""Small helpers shared by the references (NumPy only)."""

from __future__ import annotations

import numpy as np


def unbroadcast(g: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Sum ``g`` down to ``shape``: the adjoint of broadcasting ``shape`` to ``g.shape``."""
    g = np.asarray(g, dtype=np.float64)
    extra = g.ndim - len(shape)
    if extra > 0:
        g = g.sum(axis=tuple(range(extra)))
    axes = tuple(i for i, n in enumerate(shape) if n == 1 and g.shape[i] != 1)
    if axes:
        g = g.sum(axis=axes, keepdims=True)
    return g.reshape(shape)


def norm_dims(dim, ndim: int) -> tuple[int, ...]:
    """dim=None|int|tuple -> sorted tuple of non-negative axes (None means all)."""
    if dim is None:
        return tuple(range(ndim))
    if isinstance(dim, int):
        dim = (dim,)
    n = max(ndim, 1)  # a 0-d tensor accepts dim 0 / -1, as torch does
    return tuple(sorted({d % n for d in dim})) if ndim else ()
