"""Reference for indexing x[idx]: forward is NumPy indexing (basic and advanced),
the VJP scatters the gradient back with np.add.at, so repeated indices accumulate."""

from __future__ import annotations

import numpy as np


def getitem(x, idx):
    return np.asarray(x, dtype=np.float64)[idx]


def getitem_vjp(g, x, idx):
    """d x[idx] / dx: each selected element of x gets the sum of the gradients taken from it."""
    gx = np.zeros(np.shape(x), dtype=np.float64)
    np.add.at(gx, idx, np.asarray(g, dtype=np.float64))
    return (gx,)
