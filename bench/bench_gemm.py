"""pytest-benchmark suite for GEMM: `pytest bench/bench_gemm.py --benchmark-only`.

The cases are those of `python -m pyengine bench gemm` (pyengine/bench/gemm.py); each is timed
for pyengine and NumPy so that the two sit side by side in pytest-benchmark's table.
"""

import numpy as np
import pytest

import pyengine as pe
from pyengine.bench.gemm import cases

CASES = [c for c in cases(quick=False) if c[2] * c[3] * c[4] * max(c[1], 1) <= 1024**3]


def _operands(batch, M, N, K, ta, tb):
    rng = np.random.default_rng(0)
    lead = (batch,) if batch else ()
    a = rng.standard_normal(lead + ((K, M) if ta else (M, K)), dtype=np.float32)
    b = rng.standard_normal(lead + ((N, K) if tb else (K, N)), dtype=np.float32)
    a = np.swapaxes(a, -1, -2) if ta else a
    b = np.swapaxes(b, -1, -2) if tb else b
    return a, b


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("lib", ["pyengine", "numpy"])
def bench_gemm(benchmark, case, lib):
    name, batch, M, N, K, ta, tb = case
    a, b = _operands(batch, M, N, K, ta, tb)
    benchmark.group = name
    if lib == "pyengine":
        pa, pb = pe.from_numpy(a), pe.from_numpy(b)
        out = benchmark(lambda: pa @ pb)
        np.testing.assert_allclose(out.numpy(), a @ b, rtol=1e-3, atol=1e-3 * K**0.5)
    else:
        benchmark(lambda: a @ b)
