"""pyengine: a tensor engine with its own C++/CUDA kernels and a PyTorch-shaped API."""

from __future__ import annotations

import os as _os
import sys as _sys


def _extend_path_to_compiled() -> None:
    """Imported from a source checkout (e.g. `python -m pyengine` in the repo root), this
    package has no compiled modules; borrow them from the installed copy on sys.path."""
    from importlib.machinery import EXTENSION_SUFFIXES

    here = _os.path.dirname(_os.path.abspath(__file__))
    if any(_os.path.exists(_os.path.join(here, "_C" + s)) for s in EXTENSION_SUFFIXES):
        return
    for entry in _sys.path:
        cand = _os.path.join(_os.path.abspath(entry or "."), "pyengine")
        if cand == here:
            continue
        if any(_os.path.exists(_os.path.join(cand, "_C" + s)) for s in EXTENSION_SUFFIXES):
            __path__.append(cand)
            return
    raise ImportError(
        "pyengine's compiled module _C was not found: build and install it with `pip install .`"
    )


_extend_path_to_compiled()

from . import (  # noqa: E402,F401  # noqa: E402,F401
    _C,  # noqa: E402
    autograd,
    backend,
    data,
    functional,
    nn,  # noqa: E402,F401
    ops,  # noqa: E402  (binds Tensor methods)
    optim,
)
from ._dtype import (
    bool_,
    double,
    float16,
    float32,
    float64,
    get_default_dtype,
    half,
    int32,
    int64,
    long,
)
from ._dtype import bool_ as bool  # noqa: A001,F401  (torch.bool)
from ._dtype import float as float  # noqa: A001,F401  (torch.float)
from ._info import (
    get_cpu_isa,
    get_num_threads,
    info,
    set_cpu_isa,
    set_num_threads,
    supported_cpu_isas,
    trim_memory,
)
from .autograd import enable_grad, is_grad_enabled, no_grad, set_grad_enabled
from .kernels import gemm, gemm_strided_batched  # noqa: E402
from .ops import *  # noqa: E402,F401,F403
from .serialization import load, save  # noqa: E402
from .tensor import *  # noqa: E402,F401,F403  (Tensor, the creation functions, manual_seed)
from .tensor import __all__ as _tensor_all  # noqa: E402

__version__ = _C.__version__

__all__ = [
    *_tensor_all,
    "float32",
    "float64",
    "float16",
    "int32",
    "int64",
    "bool_",
    "double",
    "half",
    "long",
    "get_default_dtype",
    "no_grad",
    "enable_grad",
    "is_grad_enabled",
    "set_grad_enabled",
    "info",
    "set_num_threads",
    "get_num_threads",
    "set_cpu_isa",
    "get_cpu_isa",
    "supported_cpu_isas",
    "trim_memory",
    "gemm",
    "gemm_strided_batched",
    "autograd",
    "functional",
    "nn",
    *ops.__all__,
    "data",
    "optim",
    "save",
    "load",
]
