"""pytest-benchmark suite for the softmax family: `pytest bench/bench_softmax.py --benchmark-only`.

The cases are those of `python -m pyengine bench softmax` (pyengine/bench/softmax.py); each is
timed for pyengine and PyTorch (when installed) so that they sit side by side in one table.
"""

import numpy as np
import pytest

from pyengine.bench import optional_torch
from pyengine.bench.softmax import _fns, cases

CASES = cases(quick=True)
LIBS = ["pyengine"] + (["torch"] if optional_torch() is not None else [])


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("lib", LIBS)
def bench_softmax(benchmark, case, lib):
    name, op, shape, dim, backward = case
    benchmark.group = name
    fn = _fns(op, shape, dim, backward, lib, optional_torch(), np.random.default_rng(0))
    benchmark(fn)
