"""pytest-benchmark suite for LSTM / GRU: `pytest bench/bench_lstm.py --benchmark-only`.

The cases are those of `python -m pyengine bench lstm` (pyengine/bench/lstm.py): whole layers
forward and forward+backward and one cell step; each is timed for pyengine and, when installed,
torch (oneDNN on the CPU), grouped side by side in pytest-benchmark's table.
"""

import pytest

from pyengine.bench import lstm as L
from pyengine.bench import optional_torch

CASES = L.cases(quick=False)
LIBS = ["pyengine", "torch"]


@pytest.mark.parametrize("mode", ["LSTM", "GRU"])
@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("lib", LIBS)
def bench_rnn(benchmark, case, lib, mode):
    name, kind, T, N, I, H = case
    torch = optional_torch()
    if lib == "torch" and torch is None:
        pytest.skip("torch is not installed")
    pf, tf = L._fns(mode, kind, T, N, I, H, torch)
    benchmark.group = f"{mode} {name}"
    benchmark(pf if lib == "pyengine" else tf)
