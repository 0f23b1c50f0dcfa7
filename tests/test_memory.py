"""Memory: training keeps RSS flat after warm-up; autograd graphs die by reference counting."""

import gc
import os
import resource
import weakref

import numpy as np
import pytest

import pyengine as pe
from pyengine import nn


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _under_asan() -> bool:
    """AddressSanitizer (tools/sanitize.sh) keeps freed blocks in a quarantine of up to 256 MiB
    to catch use-after-free, so RSS grows until it is full whatever the program does."""
    try:
        with open("/proc/self/maps") as f:
            return "libasan" in f.read()
    except OSError:
        return False


class _CnnLstm(nn.Module):
    """A conv+pool+batch-norm feature extractor feeding an LSTM over image rows."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.pool = nn.MaxPool2d(2)
        self.lstm = nn.LSTM(16, 12, batch_first=True)
        self.head = nn.Linear(12, 10)

    def forward(self, x):
        h = self.pool(self.bn(self.conv(x)).relu())  # (N, 4, 4, 4)
        seq = h.permute(0, 2, 1, 3).reshape(x.shape[0], 4, 16)  # rows as time steps
        out, (h_n, _) = self.lstm(seq)
        return self.head(h_n[0])


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="needs Linux /proc")
@pytest.mark.skipif(_under_asan(), reason="AddressSanitizer's quarantine grows RSS by design")
def test_training_keeps_rss_flat_without_the_cycle_collector():
    pe.manual_seed(0)
    model = _CnnLstm()
    opt = pe.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    rng = np.random.default_rng(0)
    x = pe.tensor(rng.standard_normal((16, 1, 8, 8)), dtype=pe.float32)
    y = pe.tensor(rng.integers(0, 10, 16))
    gc.collect()
    gc.disable()  # graphs must be freed by reference counting alone
    try:
        rss = []
        for step in range(2000):
            opt.zero_grad()
            loss = pe.functional.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
            if step in (300, 1999):
                rss.append(_rss_bytes())
        garbage = gc.collect()
    finally:
        gc.enable()
    growth = rss[1] - rss[0]
    assert growth < 4 * 2**20, f"RSS grew by {growth / 2**20:.1f} MiB over 1700 steps"
    assert garbage < 100, f"the cycle collector found {garbage} objects: graphs hold cycles"


def test_graph_is_freed_when_the_output_dies():
    gc.disable()
    try:
        x = pe.randn(4, 4, requires_grad=True)
        y = ((x @ x).tanh() * 2).sum()
        node = weakref.ref(y.grad_fn)
        y.backward()
        del y
        assert node() is None, "the graph outlived its output"
    finally:
        gc.enable()


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="needs Linux /proc")
def test_large_arrays_are_reused_and_trim_memory_gives_them_back():
    if not pe.info()["allocator"].startswith("glibc: no mmap"):
        pytest.skip(f"allocator tuning not applied: {pe.info()['allocator']}")
    x = pe.randn(4096, 4096)  # 64 MiB: above glibc's largest mmap threshold
    pe.functional.softmax(x, dim=-1)  # its output is freed at once
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(5):
        y = pe.functional.softmax(x, dim=-1)
        del y
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults
    # Fresh 64 MiB outputs fault ~3000 times here (some as 2 MiB huge pages); reuse ~100.
    assert faults < 512, f"{faults} page faults: outputs were mapped fresh, not reused"
    del x
    held = _rss_bytes()
    assert pe.trim_memory() is True
    assert held - _rss_bytes() > 64 * 2**20, "trim_memory released less than the freed arrays"
