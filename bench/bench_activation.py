"""pytest-benchmark suite for the activation family: `pytest bench/bench_activation.py
--benchmark-only`.

The cases are those of `python -m pyengine bench activation` (pyengine/bench/activation.py);
each is timed for pyengine and PyTorch (when installed) so that they sit side by side.
"""

import numpy as np
import pytest

from pyengine.bench import optional_torch
from pyengine.bench.activation import _fns, cases

CASES = cases(quick=True)
LIBS = ["pyengine"] + (["torch"] if optional_torch() is not None else [])


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("lib", LIBS)
def bench_activation(benchmark, case, lib):
    name, kind, shape, backward = case
    benchmark.group = name
    fn = _fns(kind, shape, backward, lib, optional_torch(), np.random.default_rng(0))
    benchmark(fn)
