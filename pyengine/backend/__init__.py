"""Per-device dispatch: cpu.py calls pyengine._C, cuda.py calls pyengine._cuda. No kernel logic."""

from __future__ import annotations

import numpy as np


def for_array(a):
    """The backend module for an ndarray (cpu) or a CuPy array (cuda)."""
    if isinstance(a, np.ndarray):
        from . import cpu

        return cpu
    from . import cuda

    return cuda
