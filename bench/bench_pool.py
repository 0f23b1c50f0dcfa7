"""pytest-benchmark suite for pooling: `pytest bench/bench_pool.py --benchmark-only`.

The cases are those of `python -m pyengine bench pool` (pyengine/bench/pool.py): one forward and
one backward per round, pyengine next to PyTorch (when installed) in pytest-benchmark's table.
"""

import numpy as np
import pytest

import pyengine as pe
import pyengine.functional as F
from pyengine.bench.pool import cases

CASES = cases(quick=False)


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("lib", ["pyengine", "torch"])
def bench_pool(benchmark, case, lib):
    name, shape, op, kw = case
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape, dtype=np.float32)
    benchmark.group = name
    if lib == "pyengine":
        px = pe.tensor(x, requires_grad=True)
        fn = getattr(F, op)
        g = pe.tensor(rng.standard_normal(tuple(fn(px, **kw).shape), dtype=np.float32))
    else:
        torch = pytest.importorskip("torch")
        torch.set_num_threads(pe.get_num_threads())
        px = torch.from_numpy(x).requires_grad_(True)
        fn = getattr(torch.nn.functional, op)
        g = torch.from_numpy(rng.standard_normal(tuple(fn(px, **kw).shape), dtype=np.float32))

    def step():
        px.grad = None
        fn(px, **kw).backward(g)

    benchmark(step)
