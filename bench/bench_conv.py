"""pytest-benchmark suite for convolutions: `pytest bench/bench_conv.py --benchmark-only`.

The cases are those of `python -m pyengine bench conv` (pyengine/bench/conv.py): forward and
forward+backward of each, for pyengine and (when installed) PyTorch, side by side in
pytest-benchmark's table.
"""

import numpy as np
import pytest

import pyengine as pe
from pyengine.bench import conv as C

CASES = C.cases(quick=False)


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("lib", ["pyengine", "torch"])
@pytest.mark.parametrize("pass_", ["fwd", "fwd+bwd"])
def bench_conv(benchmark, case, lib, pass_):
    name, transposed, N, Ci, Co, H, W, k, s, p, g = case
    x, w, b = C._operands(transposed, N, Ci, Co, H, W, k, np.random.default_rng(0), g)
    benchmark.group = f"{name} {pass_}"
    if lib == "pyengine":
        fwd, fwd_bwd = C._pyengine_fns(transposed, x, w, b, s, p, g)
    else:
        torch = pytest.importorskip("torch")
        torch.set_num_threads(pe.get_num_threads())
        fwd, fwd_bwd = C._torch_fns(torch, transposed, x, w, b, s, p, g)
    benchmark(fwd if pass_ == "fwd" else fwd_bwd)
